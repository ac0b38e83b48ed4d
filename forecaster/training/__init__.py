"""The training layer: one loop (:mod:`~forecaster.training.loop`) and its parts.

Settings (:mod:`.settings`), learning-rate schedules (:mod:`.schedules`), batch sources
(:mod:`.sources`), one optimiser step (:mod:`.step`), validation and prediction passes
(:mod:`.forward`), early stopping and the time budget (:mod:`.stopping`), weight averaging
(:mod:`.averaging`), progress (:mod:`.progress`), fit and epoch callbacks
(:mod:`.callbacks`), the checkpoint format (:mod:`.checkpoint`) and an estimator's
checkpoint files (:mod:`.checkpoint_directory`), out-of-memory handling (:mod:`.memory`), the
random generators a fit seeds (:mod:`.seeding`) and data-parallel training under torchrun
(:mod:`.distributed`). This layer imports only from the
layers below it (base, persistence, data, nn).
"""

from __future__ import annotations

from forecaster.training.averaging import resolve_ema_decay
from forecaster.training.callbacks import (
    FIT_HOOKS,
    FitCallback,
    FitCallbackFactory,
    FitCallbackHandle,
    after_fit_end,
    call_fit_end,
    call_hook,
    call_in_turn,
    default_callbacks_withheld,
    default_fit_callbacks,
    epoch_callables,
    register_fit_callback,
    registered_fit_callbacks,
    unregister_fit_callback,
    without_default_callbacks,
)
from forecaster.training.distributed import (
    DistributedError,
    all_gather_objects,
    all_reduce_sum,
    any_rank,
    init_from_env,
    is_distributed,
    is_launched,
    is_main_process,
    launched_world_size,
    rank,
    seed_this_rank,
    shard,
    world_size,
)
from forecaster.training.loop import (
    LOSSES,
    LR_SCHEDULES,
    ON_OOM,
    CheckpointDirectory,
    Checkpointer,
    CheckpointError,
    EpochRecord,
    GPUOutOfMemoryError,
    StopTraining,
    TrainingDivergedError,
    TrainingHistory,
    TrainingState,
    TrainSettings,
    digest_arrays,
    evaluate,
    latest_checkpoint,
    loss_function,
    predict_batched,
    read_checkpoint,
    remove_checkpoints,
    resolve_device,
    run_training,
    train,
)
from forecaster.training.progress import progress_enabled
from forecaster.training.seeding import seed_generators, seeded_generators

__all__ = [
    "FIT_HOOKS",
    "LOSSES",
    "LR_SCHEDULES",
    "ON_OOM",
    "CheckpointDirectory",
    "CheckpointError",
    "Checkpointer",
    "DistributedError",
    "EpochRecord",
    "FitCallback",
    "FitCallbackFactory",
    "FitCallbackHandle",
    "GPUOutOfMemoryError",
    "StopTraining",
    "TrainSettings",
    "TrainingDivergedError",
    "TrainingHistory",
    "TrainingState",
    "after_fit_end",
    "all_gather_objects",
    "all_reduce_sum",
    "any_rank",
    "call_fit_end",
    "call_hook",
    "call_in_turn",
    "default_callbacks_withheld",
    "default_fit_callbacks",
    "digest_arrays",
    "epoch_callables",
    "evaluate",
    "init_from_env",
    "is_distributed",
    "is_launched",
    "is_main_process",
    "latest_checkpoint",
    "launched_world_size",
    "loss_function",
    "predict_batched",
    "progress_enabled",
    "rank",
    "read_checkpoint",
    "register_fit_callback",
    "registered_fit_callbacks",
    "remove_checkpoints",
    "resolve_device",
    "resolve_ema_decay",
    "run_training",
    "seed_generators",
    "seed_this_rank",
    "seeded_generators",
    "shard",
    "train",
    "unregister_fit_callback",
    "without_default_callbacks",
    "world_size",
]

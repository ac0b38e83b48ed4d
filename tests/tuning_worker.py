"""Helpers of tests/test_tuning.py, and the entry point of its subprocess runs.

    python tests/tuning_worker.py STORAGE_URL STUDY_NAME N_TRIALS SLEEP_PER_EPOCH [GRACE_PERIOD
        [N_WORKERS]]

runs :func:`forecaster.tuning.tune` on a tiny frame with a forecaster that sleeps after every
epoch (so that a test can kill it mid-trial), and prints the number of finished trials. With
GRACE_PERIOD, the storage beats every second and fails a trial without a heartbeat for that
many seconds (instead of the defaults, 10 and 60 seconds); with N_WORKERS, the trials run in
that many worker processes.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

from forecaster import RNNForecaster

TINY_SPACE: dict[str, Any] = {"hidden_size": [4, 8], "lr": (1e-3, 1e-2, "log")}


def tiny_frame(n_series: int = 2, length: int = 160) -> pl.DataFrame:
    """Noisy sines, long format: id, time, y."""
    rng = np.random.default_rng(0)
    t = np.arange(length)
    return pl.concat(
        pl.DataFrame(
            {
                "id": [f"s{k}"] * length,
                "time": t,
                "y": (np.sin(2 * np.pi * t / 12 + k) + 0.1 * rng.normal(size=length)).astype(
                    np.float32
                ),
            }
        )
        for k in range(n_series)
    )


def tiny_model(cls: type = RNNForecaster, **params: Any) -> Any:
    """A forecaster that fits in well under a second on one CPU thread."""
    settings: dict[str, Any] = {
        "target": "y",
        "id_col": "id",
        "time_col": "time",
        "lookback": 24,
        "horizon": 6,
        "hidden_size": 8,
        "segment_length": 6,
        "max_epochs": 2,
        "batch_size": 64,
        "windows_per_epoch": 128,
        "progress": False,
    }
    settings.update(params)
    return cls(**settings)


SLEEP_VARIABLE = "FORECASTER_TEST_EPOCH_SLEEP"
"""The environment variable of :class:`SlowForecaster`'s pause: worker processes inherit it."""


class SlowForecaster(RNNForecaster):
    """RNNForecaster that sleeps ``sleep`` seconds after every epoch (by default the seconds
    in the environment variable :data:`SLEEP_VARIABLE`: also in the worker processes of
    ``tune(n_workers=...)``, which import this class afresh)."""

    sleep: ClassVar[float | None] = None

    def fit(self, frame, y=None, *, callbacks=()):
        seconds = type(self).sleep
        if seconds is None:
            seconds = float(os.environ.get(SLEEP_VARIABLE, "0"))

        def pause(record, network):
            time.sleep(seconds)

        return super().fit(frame, y, callbacks=[*callbacks, pause])


def wait_for_two_pids(study: Any, trial: Any, timeout: float = 60.0) -> None:
    """Study callback: wait until trials of two processes exist (both workers took part)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = {t.user_attrs.get("pid") for t in study.get_trials(deepcopy=False)}
        if len(pids - {None}) >= 2:
            return
        time.sleep(0.05)


class TwoArgumentError(Exception):
    """An exception that pickles but does not unpickle (``__init__`` takes two arguments and
    ``args`` holds one): many libraries' exceptions are like it."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")


def raise_two_argument_error(study: Any, trial: Any) -> None:
    """Study callback: raise :class:`TwoArgumentError` (in the worker that ran the trial)."""
    raise TwoArgumentError(7, "the callback failed")


def main(argv: list[str]) -> int:
    import torch

    from forecaster.tuning import make_storage, tune

    torch.set_num_threads(1)
    url, name, n_trials, sleep = argv[0], argv[1], int(argv[2]), float(argv[3])
    storage = url
    if len(argv) > 4:
        storage = make_storage(url, heartbeat_interval=1, grace_period=int(argv[4]))
    n_workers = int(argv[5]) if len(argv) > 5 else 1
    os.environ[SLEEP_VARIABLE] = str(sleep)  # the worker processes' too
    result = tune(
        tiny_model(SlowForecaster),
        tiny_frame(),
        n_trials=n_trials,
        storage=storage,
        study_name=name,
        search_space=TINY_SPACE,
        pruner="none",
        random_state=0,
        refit=False,
        track=False,
        show_progress=False,
        n_workers=n_workers,
    )
    print(f"finished {result.n_trials_finished} run {result.n_trials_run}", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main(sys.argv[1:]))

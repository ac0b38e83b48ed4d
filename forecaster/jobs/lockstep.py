"""The ranks of a pipeline run under torchrun follow the decision of rank 0.

Rank 0 takes the output lock, reads the outputs under it and decides: skip (the outputs are
there), run (fit and write), or stop (an error: another run holds the lock, the outputs are
not forecaster's to replace, bad data, ...). Every other rank waits for that decision
(:func:`follow_rank_zero`) instead of reading the outputs without the lock: a rank that
trained while rank 0 skipped or stopped would wait forever in the training's first
collective. Without torchrun there is one process and every helper here is a no-op.

Ranks other than 0 wait in a collective while rank 0 waits for the lock (``--wait``); the
process group's timeout (30 minutes, see
:func:`forecaster.training.distributed.init_from_env`) bounds that wait.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from forecaster._validation import resolve_device
from forecaster.exceptions import ForecasterError
from forecaster.jobs.outputs import PipelineResult
from forecaster.training import distributed

__all__ = ["RankZeroDecision", "follow_rank_zero", "join_ranks", "rank_zero_decides"]

RUN, SKIP, STOP = "run", "skip", "stop"
"""The decisions rank 0 shares."""


def join_ranks(estimator: Any) -> None:
    """Under torchrun, join the process group on the estimator's device (gloo on the CPU,
    NCCL on CUDA), before any rank decides; a fit later finds the group joined. Does nothing
    in a single process."""
    if distributed.is_launched():
        distributed.init_from_env(resolve_device(estimator.device))


class RankZeroDecision:
    """What rank 0 (or the single process) tells the other ranks: :meth:`skip` or
    :meth:`run`, at most once; see :func:`rank_zero_decides`."""

    def __init__(self) -> None:
        self.shared = False

    def skip(self, result: PipelineResult) -> None:
        """The outputs are there: every rank returns ``result``."""
        self._share((SKIP, result))

    def run(self) -> None:
        """Fit and write (rank 0): every other rank trains in lockstep."""
        self._share((RUN, None))

    def stop(self, error: BaseException) -> None:
        """``error`` stops rank 0 before it decided: every other rank raises it too."""
        kind = type(error) if isinstance(error, ForecasterError) else ForecasterError
        self._share((STOP, (kind, f"{type(error).__name__}: {error}")))

    def _share(self, decision: tuple[str, Any]) -> None:
        if self.shared:
            raise RuntimeError("rank 0 shares one decision per run")
        self.shared = True
        distributed.all_gather_objects(decision)


@contextlib.contextmanager
def rank_zero_decides() -> Iterator[RankZeroDecision]:
    """Rank 0's side: the block (which takes the lock) calls ``skip`` or ``run`` of the
    decision it is given; an error that leaves the block before either tells the other ranks
    to stop with that error (after ``run`` they are training, and learn of it as the
    training's collectives fail)."""
    decision = RankZeroDecision()
    try:
        yield decision
    except BaseException as exc:
        if not decision.shared:
            # rank 0's own error is the one to report, not a failure to tell the others
            with contextlib.suppress(Exception):
                decision.stop(exc)
        raise


def follow_rank_zero() -> PipelineResult | None:
    """The other ranks' side: rank 0's skipped result, None to train in lockstep, or rank
    0's error raised here (its class when it is one of forecaster's, else
    :class:`~forecaster.exceptions.ForecasterError`)."""
    kind, payload = distributed.all_gather_objects(None)[0]
    if kind == SKIP:
        return payload  # type: ignore[no-any-return]
    if kind == RUN:
        return None
    error_class, text = payload
    message = f"Rank 0 stopped this run before training ({text}); its log says more."
    try:
        error = error_class(message)
    except TypeError:  # an error class that needs more than a message
        error = ForecasterError(message)
    raise error

"""The progress bar of a training run (rank 0 only, in a terminal or a notebook)."""

from __future__ import annotations

import sys
from typing import Any

from forecaster.training.records import EpochRecord

__all__ = ["ProgressBar", "progress_enabled"]


def progress_enabled(progress: bool | None) -> bool:
    """Whether to show progress: ``progress`` when given, else whether a terminal or a
    notebook kernel is attached.

    Examples
    --------
    >>> progress_enabled(False)
    False
    """
    if progress is not None:
        return bool(progress)
    try:  # a notebook kernel
        from IPython import get_ipython

        if get_ipython() is not None and "IPKernelApp" in get_ipython().config:
            return True
    except Exception:
        pass
    return sys.stderr.isatty()


class ProgressBar:
    """A tqdm bar over epochs showing the losses and throughput; does nothing when disabled.

    Parameters
    ----------
    total : int
        Epochs in the run.
    initial : int
        Epochs done before (a resumed run).
    description : str
    enabled : bool

    Examples
    --------
    >>> bar = ProgressBar(total=3, initial=0, description="training", enabled=False)
    >>> bar.update(EpochRecord(1, 0.5, None, 1e-3, 1.0, 10.0))
    >>> bar.close()
    """

    def __init__(self, *, total: int, initial: int, description: str, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total, initial=initial, desc=description, unit="epoch", leave=False
            )

    def update(self, record: EpochRecord) -> None:
        """Advance one epoch and show its losses."""
        if self._bar is None:
            return
        shown = {"train": f"{record.train_loss:.4f}", "win/s": f"{record.windows_per_second:,.0f}"}
        if record.val_loss is not None:
            shown["val"] = f"{record.val_loss:.4f}"
        self._bar.set_postfix(shown)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

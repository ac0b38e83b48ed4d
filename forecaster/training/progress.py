"""Progress of a training run or a tuning study (rank 0 only): a tqdm bar where one can be
drawn, one log line per step where it cannot.

Where progress goes
    In a notebook kernel the bar is tqdm's notebook widget (``tqdm.auto`` picks it when
    ``ipywidgets`` is installed; without it, a text bar in the cell's output); in a terminal
    (standard error is a TTY) a text bar that redraws itself. Anywhere else (a log file, a
    scheduler, captured output, CI) a redrawn bar would write a carriage return per update
    into the log, so each epoch (or finished trial) is one line at ``INFO`` on the logger
    ``forecaster.training.progress`` instead: the ``forecaster`` command shows it on standard
    error (``--quiet`` hides it); a library user sees it after configuring logging (e.g.
    ``logging.basicConfig(level=logging.INFO)``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

from forecaster.training.records import EpochRecord

__all__ = ["ProgressBar", "progress_enabled", "progress_style"]

logger = logging.getLogger(__name__)


def _in_notebook() -> bool:
    try:  # a notebook kernel
        from IPython import get_ipython

        shell = get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:
        return False


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
    return _in_notebook() or sys.stderr.isatty()


def progress_style() -> Literal["bar", "log"]:
    """How progress is shown here: ``"bar"`` (a tqdm bar) in a notebook kernel or when
    standard error is a terminal, else ``"log"`` (one log line per step, no carriage
    returns).

    Examples
    --------
    >>> progress_style() in ("bar", "log")
    True
    """
    return "bar" if _in_notebook() or sys.stderr.isatty() else "log"


class ProgressBar:
    """Progress over epochs (showing the losses and throughput) or trials: a tqdm bar, or
    one log line per step (see the module docstring); does nothing when disabled.

    Parameters
    ----------
    total : int or None
        Steps in the run (None: unknown, e.g. a study with only a timeout).
    initial : int
        Steps done before (a resumed run).
    description : str
    enabled : bool
    unit : str, default "epoch"
    style : {"bar", "log"}, optional
        Default :func:`progress_style`.

    Examples
    --------
    >>> import logging
    >>> handler = logging.StreamHandler(sys.stdout)
    >>> logger.addHandler(handler)
    >>> logger.setLevel(logging.INFO)
    >>> bar = ProgressBar(total=3, initial=0, description="training", enabled=True, style="log")
    >>> bar.update(EpochRecord(1, 0.5, None, 1e-3, 1.0, 10.0))
    training: epoch 1/3, train 0.5000, 10 windows/s, 1.0 s
    >>> bar.close()
    >>> logger.removeHandler(handler)
    >>> logger.setLevel(logging.NOTSET)
    """

    def __init__(
        self,
        *,
        total: int | None,
        initial: int,
        description: str,
        enabled: bool,
        unit: str = "epoch",
        style: Literal["bar", "log"] | None = None,
    ) -> None:
        self._bar: Any = None
        self.enabled, self.total, self.n = enabled, total, initial
        self.description, self.unit = description, unit
        self.style = (style or progress_style()) if enabled else None
        if self.style == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=description, unit=unit, leave=False)

    def _of_total(self) -> str:
        return f"{self.n}/{self.total}" if self.total is not None else str(self.n)

    def update(self, record: EpochRecord) -> None:
        """Advance one epoch and show its losses."""
        if not self.enabled:
            return
        self.n += 1
        if self._bar is not None:
            shown = {
                "train": f"{record.train_loss:.4f}",
                "win/s": f"{record.windows_per_second:,.0f}",
            }
            if record.val_loss is not None:
                shown["val"] = f"{record.val_loss:.4f}"
            self._bar.set_postfix(shown)
            self._bar.update(1)
            return
        val = "" if record.val_loss is None else f", val {record.val_loss:.4f}"
        logger.info(
            "%s: %s %s, train %.4f%s, %s windows/s, %.1f s",
            self.description, self.unit, self._of_total(), record.train_loss, val,
            f"{record.windows_per_second:,.0f}", record.seconds,
        )  # fmt: skip

    def set_count(self, n: int, detail: str = "") -> None:
        """Show ``n`` steps done (a study's finished trials), with an optional ``detail``
        (e.g. the best value so far); a log line only when the count moved."""
        if not self.enabled:
            return
        moved, self.n = n != self.n, n
        if self._bar is not None:
            self._bar.n = n
            if detail:
                self._bar.set_postfix_str(detail, refresh=False)
            self._bar.refresh()
        elif moved:
            logger.info(
                "%s: %s %s%s", self.description, self.unit, self._of_total(),
                f", {detail}" if detail else "",
            )  # fmt: skip

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

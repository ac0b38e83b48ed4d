"""The checkpoint files of an estimator's fit: one per training run in a folder, and their
clean-up (only files proven to be forecaster checkpoints are ever deleted)."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import forecaster._io as _io
import forecaster.training.distributed as distributed
from forecaster.exceptions import CheckpointError
from forecaster.training.checkpoint import Checkpointer, TrainingState, is_checkpoint

__all__ = [
    "CheckpointDirectory",
    "clone_without_checkpoints",
    "latest_checkpoint",
    "remove_checkpoints",
]


def clone_without_checkpoints(estimator: Any) -> Any:
    """An unfitted clone of ``estimator`` (:func:`sklearn.base.clone`) that writes no
    checkpoints (``checkpoint_dir=None``, ``checkpoint_every=1``), for the fits the library
    makes of copies of the user's model (a backtest's folds, a tuning trial): a fresh fit
    replaces the checkpoints of the folder it is given, and ``checkpoint_dir`` holds those of
    the user's own fit (two trials fitting at once would also delete each other's).

    Parameters
    ----------
    estimator : estimator
        The user's model, fitted or not; left as it is.

    Returns
    -------
    estimator
        The clone.
    """
    from sklearn.base import clone

    model = clone(estimator)
    if model.get_params(deep=False).get("checkpoint_dir") is not None:
        model.set_params(checkpoint_dir=None, checkpoint_every=1)
    return model


class CheckpointDirectory:
    """The checkpoints of one estimator fit: ``checkpoint-{k}.safetensors`` for its k-th
    training run (an ensemble trains several), and the fit's seed.

    A fresh fit (``resume=False``) deletes the checkpoints of an earlier fit; a resumed fit
    needs ``checkpoint-0`` and takes the seed of the interrupted fit from it (so a fit with
    ``random_state=None`` resumes with the same data order), then resumes each run from its
    file (a run whose file does not exist yet starts from scratch).

    A folder that is, or lies inside, a folder forecaster wrote (a saved model, a pipeline
    run: its manifest would no longer list what it holds) is refused with
    :class:`CheckpointError` at :meth:`start`. A fresh fit deletes only files named
    ``checkpoint-<k>.safetensors`` that are forecaster checkpoints (refusing, before deleting
    any, when one of those names holds anything else), and temporary files of exactly the
    names :func:`forecaster._io.write_atomic` gives them; nothing else in the folder.

    Parameters
    ----------
    directory : path
    every : int
        See :class:`Checkpointer`.
    fingerprint : mapping
        The fit's parameters and a digest of its data.
    resume : bool
    """

    PATTERN = "checkpoint-{}.safetensors"
    NAME = r"checkpoint-\d+\.safetensors"
    """The names of the files :attr:`PATTERN` gives (a regular expression)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        every: int = 1,
        fingerprint: Mapping[str, Any],
        resume: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.every = every
        self.fingerprint = fingerprint
        self.resume = resume
        self.seed: int | None = None
        self._runs = 0
        self._first: TrainingState | None = None
        self.resumed_seconds = 0.0
        """Training seconds recorded in the checkpoints the runs so far resumed from (a
        fit's ``max_time`` counts them with its own)."""

    def path(self, run: int) -> Path:
        return self.directory / self.PATTERN.format(run)

    def start(self, seed: int) -> int:
        """Begin the fit; returns the seed to use (the interrupted fit's when resuming)."""
        _io.as_path(self.directory, "checkpoint_dir")
        if self.directory.exists() and not self.directory.is_dir():
            raise CheckpointError(
                f"checkpoint_dir={str(self.directory)!r} is a file; pass a folder path."
            )
        _refuse_owned_folder(self.directory)
        if self.resume:
            first = self.path(0)
            if not first.is_file():
                raise CheckpointError(
                    f"resume=True, but {self.directory} holds no checkpoint ({first.name} is "
                    "missing): the interrupted fit wrote none yet, or checkpoint_dir points "
                    "elsewhere. Fit without resume=True to start from scratch."
                )
            self._first = Checkpointer(first, fingerprint=self.fingerprint).load()
            saved = self._first.extra.get("fit_seed")
            self.seed = int(saved) if saved is not None else seed
        else:
            self.seed = seed
            if distributed.is_main_process() and self.directory.is_dir():
                self._remove_earlier()
        if distributed.is_main_process():
            for stale in _io.temporary_files(self.directory, self.NAME):
                stale.unlink(missing_ok=True)  # left by a process killed while writing
        return self.seed

    def _remove_earlier(self) -> None:
        """Delete the checkpoints of an earlier fit; refuse, before deleting any, when a file
        of that name is not a forecaster checkpoint (it would be overwritten)."""
        earlier = _checkpoint_names(self.directory)
        foreign = [file.name for file in earlier if not is_checkpoint(file)]
        if foreign:
            raise CheckpointError(
                f"checkpoint_dir={str(self.directory)!r} holds {foreign} that forecaster did not "
                "write (not checkpoints, or links), and a fit would overwrite them. Move them "
                "away or pass another checkpoint_dir."
            )
        for file in earlier:
            file.unlink(missing_ok=True)

    def next_run(self, seed: int) -> tuple[Checkpointer, TrainingState | None]:
        """The checkpointer of the next training run and the state to resume it from."""
        if self.seed is None:
            raise RuntimeError("CheckpointDirectory.start() must be called first.")
        run = self._runs
        self._runs += 1
        checkpointer = Checkpointer(
            self.path(run),
            every=self.every,
            fingerprint=self.fingerprint,
            extra={"fit_seed": self.seed, "seed": int(seed), "run": run},
        )
        state = None
        if self.resume:
            if run == 0:
                state, self._first = self._first, None  # not kept alive after the fit
            elif checkpointer.exists():
                state = checkpointer.load()
        if state is not None:
            self.resumed_seconds += float(state.elapsed)
        return checkpointer, state


def _checkpoint_names(directory: Path) -> list[Path]:
    """The entries of ``directory`` named as :class:`CheckpointDirectory` names its files
    (``checkpoint-<k>.safetensors``, whatever they are)."""
    pattern = re.compile(CheckpointDirectory.NAME)
    try:
        return sorted(p for p in directory.iterdir() if pattern.fullmatch(p.name))
    except OSError:
        return []


def _refuse_owned_folder(directory: Path) -> None:
    """Refuse a ``checkpoint_dir`` that is, or lies inside, a folder forecaster wrote (a saved
    model, a pipeline run): checkpoint files there are files its manifest does not list, and
    forecaster would then refuse to replace or delete that folder."""
    candidates = [directory]
    with contextlib.suppress(OSError, RuntimeError):
        candidates.insert(0, directory.resolve())  # where a link leads first: name that folder
    for candidate in candidates:
        owner = _io.owning_folder(candidate / CheckpointDirectory.PATTERN.format(0))
        if owner is not None:
            folder, kind = owner
            where = "is" if folder == Path(os.path.abspath(candidate)) else "is inside"
            raise CheckpointError(
                f"checkpoint_dir={str(directory)!r} {where} {folder}, a {kind} folder "
                "forecaster wrote: checkpoint files there would be files its manifest does not "
                f'list, and forecaster would then refuse to replace or delete that {kind} ("not '
                'written by forecaster"). Pass a checkpoint_dir outside it.'
            )


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """The first checkpoint file of a fit in ``directory`` (what ``resume=True`` needs), or
    None when there is none."""
    first = Path(directory) / CheckpointDirectory.PATTERN.format(0)
    return first if first.is_file() else None


def remove_checkpoints(directory: str | os.PathLike[str]) -> None:
    """Delete the checkpoint files of a fit in ``directory`` (those :class:`CheckpointDirectory`
    writes, proven by their content, and the temporary files of interrupted writes, of exactly
    the names :func:`forecaster._io.write_atomic` gives them; nothing else), then the folder
    itself if that left it empty."""
    folder = Path(directory)
    if not folder.is_dir() or folder.is_symlink():
        return
    for file in _checkpoint_names(folder):
        if is_checkpoint(file):
            file.unlink(missing_ok=True)
    for file in _io.temporary_files(folder, CheckpointDirectory.NAME):
        file.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when empty: files someone else put there stay

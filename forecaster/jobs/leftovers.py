"""What dead runs of a spec left beside its output folder, removed by its next run.

A run killed before it published (``kill -9``, a lost machine) leaves its staging folder
``.<folder>.staging-<hex>`` and, when it fitted with checkpoints, the checkpoint files in
``.<folder>.checkpoints`` beside the output folder. The next run of the spec and as-of removes
them, whether it writes the outputs or finds them written (``skipped``), but only with proof:

- it holds the output folder's lock (:func:`forecaster.jobs.outputs.output_lock`), taken
  without waiting: while another run of the spec and as-of lives, nothing is removed;
- a staging folder is removed only when its name is exactly one forecaster generates, it holds
  forecaster's marker and the marker's lock is free (:func:`forecaster._io.remove_staging`);
- only the checkpoint folder forecaster names after the output folder is cleaned (a
  ``model.checkpoint_dir`` of the spec is shared by every as-of, whose runs hold other locks:
  it is left alone), and in it only files that are forecaster checkpoints, proven by their
  content, and the temporary files of their interrupted writes
  (:func:`forecaster.training.loop.remove_checkpoints`; the folder goes when that empties
  it). A user's file there, and the lock file, stay.
"""

from __future__ import annotations

import re
from pathlib import Path

import forecaster._io as _io
from forecaster.exceptions import ForecasterError
from forecaster.jobs.output_locks import output_lock
from forecaster.jobs.outputs import Job
from forecaster.training.checkpoint_directory import CheckpointDirectory
from forecaster.training.loop import remove_checkpoints

__all__ = ["own_checkpoint_folder", "remove_leftovers"]


def own_checkpoint_folder(out_dir: Path, checkpoints: Path) -> Path | None:
    """``checkpoints`` when it is the folder forecaster names after the output folder
    ``out_dir`` (``.<name>.checkpoints`` beside it, used only by runs writing ``out_dir``);
    None for a spec's own ``model.checkpoint_dir``."""
    return checkpoints if checkpoints == out_dir.parent / f".{out_dir.name}.checkpoints" else None


def remove_leftovers(job: Job, checkpoints: Path, *, locked: bool = False) -> list[Path]:
    """Remove what dead runs writing ``job.out_dir`` left beside it (see this module's
    docstring); return what was removed. ``checkpoints``: the run's checkpoint folder
    (:func:`forecaster.jobs.placement.checkpoint_folder`). ``locked``: the caller holds the
    output lock already; else it is taken without waiting, and a live run holding it means
    nothing is removed. Never raises: a skipped run must not fail over its clean-up."""
    own = own_checkpoint_folder(job.out_dir, checkpoints)
    if not _has_leftovers(job.out_dir, own):
        return []  # nothing to do: the lock is not taken (a run starting now is not delayed)
    try:
        if locked:
            return _remove(job, own)
        with output_lock(job.out_dir, 0.0, f"the pipeline {job.name!r} ({job.out_dir})"):
            return _remove(job, own)
    except (ForecasterError, OSError):
        return []  # a live run holds the lock, or the lock cannot be taken: left for later


def _remove(job: Job, checkpoints: Path | None) -> list[Path]:
    removed = _io.remove_staging(job.out_dir)
    if checkpoints is not None and _checkpoint_names(checkpoints):
        remove_checkpoints(checkpoints)  # only files proven checkpoints by their content
        if not _checkpoint_names(checkpoints):
            removed.append(checkpoints)
    for path in removed:
        job.log(f"cleanup  removed {path}, left by a run that died before it published")
    return removed


def _has_leftovers(out_dir: Path, checkpoints: Path | None) -> bool:
    """Whether something named like a staging folder of ``out_dir`` or a checkpoint file is
    there (a cheap look by name: what is removed is proven afterwards, under the lock)."""
    prefix = f".{out_dir.name}.staging-"
    try:
        staging = any(entry.name.startswith(prefix) for entry in out_dir.parent.iterdir())
    except OSError:
        staging = False
    return staging or (checkpoints is not None and bool(_checkpoint_names(checkpoints)))


def _checkpoint_names(folder: Path) -> list[Path]:
    """The entries of ``folder`` named as checkpoint files or their interrupted writes."""
    pattern = CheckpointDirectory.NAME
    try:
        named = [p for p in folder.iterdir() if re.fullmatch(pattern, p.name)]
    except OSError:
        return []
    return named + _io.temporary_files(folder, pattern)

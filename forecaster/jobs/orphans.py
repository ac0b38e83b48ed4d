"""A run's output folder that lost its ``manifest.json`` (the other files still there).

The manifest, written last, is what proves a run folder forecaster's. Without it the folder
is not reported as this spec's outputs (nothing can check its files), and ``--force`` writes
them anew only when the rest proves it a run folder of the same pipeline: every entry is a
file a run writes (:data:`RUN_ENTRIES`, no links), its ``summary.json`` names the pipeline,
and its ``model/`` is a model forecaster saved, unchanged since (that folder's own manifest
checks every file in it). Even then the top-level files cannot be checked (a user may have
edited ``forecasts.parquet``), so the folder is moved aside (:func:`set_aside`), not
deleted. Anything else in it stops ``--force`` too, and the message names it.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path

import forecaster._io as _io
from forecaster.exceptions import ForecasterError, OwnershipError

__all__ = [
    "RUN_ENTRIES",
    "SUMMARY_LIMIT",
    "LostManifest",
    "lost_manifest",
    "rebuildable",
    "set_aside",
]


RUN_ENTRIES = frozenset(
    {
        "forecasts.parquet",
        "backtest.parquet",
        "backtest_by_step.parquet",
        "forecast.png",
        "summary.json",
        "model",
    }
)
"""The top-level entries of a run's output folder, other than its ``manifest.json``."""


SUMMARY_LIMIT = 4 * 2**20
"""Largest ``summary.json`` read (bytes), here and by
:func:`forecaster.jobs.outputs.read_summary`, and written: the writer cuts its lists of series
to fit (:func:`forecaster.jobs.summaries.fitted`)."""


@dataclasses.dataclass(frozen=True)
class LostManifest:
    """A folder whose ``summary.json`` names the pipeline, without a ``manifest.json``."""

    folder: Path
    name: str
    as_of: str | None
    foreign: tuple[str, ...]
    """What in the folder forecaster cannot vouch for (empty: ``--force`` may replace it)."""

    @property
    def rebuildable(self) -> bool:
        return not self.foreign

    def message(self) -> str:
        """What is missing, where, and what to do about it."""
        which = f" as of {self.as_of}" if self.as_of else ""
        lost = (
            f"{self.folder} holds outputs of the pipeline {self.name!r}{which} (by its "
            f"summary.json), but their manifest {self.folder / _io.MANIFEST} is missing: "
            "forecaster writes it last, and without it nothing can check that the files are "
            "the ones it wrote"
        )
        if self.rebuildable:
            return (
                f"{lost}. Run again with --force to write these outputs anew (every file in "
                "the folder is one a run writes and its model is intact: forecaster moves the "
                "folder aside, beside it, and says where), or move the folder away yourself."
            )
        more = f" and {len(self.foreign) - 5} more" if len(self.foreign) > 5 else ""
        return (
            f"{lost}, and it also holds what forecaster cannot prove it wrote: "
            f"{', '.join(self.foreign[:5])}{more}, so --force will not replace it either. "
            "Move those entries out of the folder and run again with --force, or move the "
            "folder away (or delete it yourself) to write the outputs anew."
        )


def lost_manifest(folder: Path, name: str) -> LostManifest | None:
    """The run folder of the pipeline ``name`` at ``folder`` that has no ``manifest.json``
    (its ``summary.json`` a JSON object naming ``name``), with what in it is not a run's;
    None when ``folder`` is no such folder (a manifest there, even a damaged one, or no
    summary of that pipeline)."""
    if folder.is_symlink() or not folder.is_dir() or os.path.lexists(folder / _io.MANIFEST):
        return None
    try:
        data = _io.read_file_bounded(folder / "summary.json", SUMMARY_LIMIT, what="summary")
        summary = _io.load_json_bounded(data, source=str(folder / "summary.json"))
    except (OSError, ForecasterError):
        return None
    if not isinstance(summary, dict) or summary.get("name") != name:
        return None
    as_of = summary.get("as_of")
    return LostManifest(
        folder, name, as_of if isinstance(as_of, str) else None, tuple(_foreign(folder))
    )


def rebuildable(folder: Path, name: str) -> bool:
    """Whether ``folder`` is a run folder of ``name`` that lost only its manifest, which
    ``--force`` may replace (see this module's docstring)."""
    lost = lost_manifest(folder, name)
    return lost is not None and lost.rebuildable


def set_aside(lost: LostManifest) -> Path:
    """Move the folder of ``lost`` to a new hidden folder beside it,
    ``.<name>.without-manifest-<hex>`` (never onto an existing entry); return where."""
    folder = lost.folder
    while True:
        target = folder.parent / f".{folder.name}.without-manifest-{secrets.token_hex(4)}"
        if not os.path.lexists(target):
            os.rename(folder, target)
            return target


def _foreign(folder: Path) -> list[str]:
    """The entries of the run folder ``folder`` that are not what a run writes there."""
    found: list[str] = []
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as exc:
        return [f"{folder} (cannot list it: {exc.strerror or exc})"]
    for entry in entries:
        if entry.name not in RUN_ENTRIES:
            found.append(f"{entry.name} (not written by forecaster)")
        elif entry.is_symlink():
            found.append(f"{entry.name} (a link forecaster did not write)")
        elif entry.name != "model" and not entry.is_file(follow_symlinks=False):
            found.append(f"{entry.name} (not a regular file)")
    model = folder / "model"
    if not os.path.lexists(model):
        found.append("model (missing: no model forecaster saved vouches for the folder)")
    elif model.is_symlink():
        pass  # listed above
    elif not model.is_dir():
        found.append("model (not a folder)")
    else:
        try:
            if _io.check_replaceable(model, "model", purpose="replace") is None:
                found.append("model (empty)")
        except OwnershipError as exc:
            found.append(f"model (not a model forecaster saved, or changed since: {exc})")
    return found

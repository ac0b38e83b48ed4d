"""The summaries of the commands: what each forecast or scored, and what it left out and why.

``forecaster run`` writes ``summary.json`` in its output folder; ``forecaster predict`` and
``forecaster backtest`` write ``<file>.summary.json`` beside their Parquet file (the name of
that file without ``.parquet``: ``outputs/NAME/AS_OF.forecasts.summary.json`` beside the
default ``outputs/NAME/AS_OF.forecasts.parquet``). Each is a :class:`PipelineResult` as JSON,
built by :func:`job_result` and written atomically by :func:`write_summary`, so a scheduler
reads one record, whatever the command: its ``command``, the as-of, the series with their
rows, the series it left out (``dropped_series`` and ``dropped_reasons``, ``excluded_series``)
and those that end before the as-of (``stale_series``, ``stale_steps``), the data's
fingerprint (``data``) and, for a backtest (a run's too), its scores (``metrics``) and the
series no fold scored (``unscored_series``). A summary is at most
:data:`~forecaster.jobs.orphans.SUMMARY_LIMIT` bytes, what its reader accepts: longer lists
of series are cut to their first entries (:func:`fitted`, ``listed_counts``).

The summary of ``predict`` or ``backtest`` describes the Parquet file beside it: it is removed
before that file is replaced and written after it (:func:`write_with_summary`), so a file
without a summary is one a command did not finish writing, and it records the size and
sha256 of that file as written (``parquet_bytes``, ``parquet_sha256``): a file that does not
match them is another command's, written in between. A summary there is replaced only
when it is a summary of the same pipeline and command (:func:`check_summary_file`, before any
work and again as it is replaced): a link, a folder or any other file is refused
(``OwnershipError``, exit 2) and left as it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import polars as pl

import forecaster._io as _io
from forecaster.exceptions import ForecasterError, ForecasterWarning, OwnershipError, warn_at_caller
from forecaster.jobs.data import AsOf
from forecaster.jobs.entries import existing_file
from forecaster.jobs.hashing import spec_hashes
from forecaster.jobs.orphans import SUMMARY_LIMIT
from forecaster.jobs.outputs import (
    Job,
    PipelineResult,
    adopt_legacy,
    data_record,
    dropped_series,
    manifest_details,
    read_summary,
    same_pipeline,
)
from forecaster.jobs.placement import out_problem
from forecaster.jobs.schedule import DropReason, absent_series, id_text, max_staleness
from forecaster.jobs.spec import Spec, first_line
from forecaster.jobs.stale import STALE_LISTED

__all__ = [
    "SERIES_LISTS",
    "SUMMARY_SUFFIX",
    "check_summary_file",
    "command_result",
    "fitted",
    "job_result",
    "made_counts",
    "rewrite_run_summary",
    "summary_file",
    "unscored",
    "write_summary",
    "write_with_summary",
]

logger = logging.getLogger(__name__)

SUMMARY_SUFFIX = ".summary.json"
"""What names the summary of a ``predict`` or ``backtest`` file (:func:`summary_file`)."""


def job_result(
    job: Job,
    status: Literal["completed", "dry-run"],
    dropped: dict[str, DropReason],
    *,
    rows: int,
    series: int,
    **fields: Any,
) -> PipelineResult:
    """What a command did on ``job``'s data: ``rows`` and ``series`` it used, the series it
    ``dropped`` (id -> why; those it lists and counts as stale are the others), the data's
    record and the job's as-of; ``fields``: what it wrote (paths, scores, ``command``: a
    backtest, which forecasts from no as-of, records no ``max_staleness`` nor
    ``stale_policy``)."""
    when = job.when.without(dropped)
    series_spec = job.spec.series
    forecasts = fields.get("command", "run") != "backtest"  # from the as-of: stale policy
    return PipelineResult(
        name=job.name,
        as_of=when.label,
        requested_as_of=when.requested,
        effective_as_of=when.effective,
        status=status,
        output_dir=str(job.out_dir),
        rows=rows,
        series=series,
        spec_hash=job.digest,
        stale_series=dict(when.stale),
        stale_series_count=when.stale_count,
        stale_steps=dict(when.stale_steps),
        excluded_series=list(when.excluded),
        dropped_series=list(dropped),
        dropped_reasons=dropped,
        data=data_record(job),
        max_staleness=max_staleness(job.spec) if series_spec.id and forecasts else None,
        stale_policy=series_spec.stale if forecasts else None,
        **fields,
    )


def command_result(
    command: Literal["predict", "backtest"],
    spec: Spec,
    spec_path: Path,
    root: Path,
    frame: pl.DataFrame,
    when: AsOf,
    file: Path,
    made: pl.DataFrame,
    started: float,
    **fields: Any,
) -> PipelineResult:
    """The summary of ``predict`` or ``backtest`` (the spec at ``spec_path``, its data
    ``frame`` as of ``when``), which wrote ``file`` and made ``made``: the forecast of
    ``predict`` (a series of the data absent from it is ``too_short``, as a run's) or the
    folds of ``backtest`` (one row per fold and series forecast: ``series`` counts those it
    scored, ``unscored_series`` lists the others, each named in a warning of the backtest);
    ``rows`` counts the rows of the series ``series`` counts (:func:`made_counts`).
    A backtest forecasts from no as-of, so it excludes no stale series and drops only the
    series of the source it uses no row of (:attr:`AsOf.left_out`). ``fields``:
    the paths it wrote (``forecasts`` or ``backtest``, ``model_dir``) and its scores
    (``metrics``)."""
    if command == "backtest":
        when = dataclasses.replace(when, excluded=())
    hashes = spec_hashes(spec)
    job = Job(spec, spec_path, root, frame, when, file.parent, hashes, logger.info, started)
    id_col = spec.series.id
    if command == "predict":
        dropped = dropped_series(job, None, made)
    else:
        dropped = {key: why for key, why in when.left_out}
        fields["unscored_series"] = unscored(frame, made, spec)
    rows, series = made_counts(frame, made, id_col)
    return job_result(
        job,
        "completed",
        dropped,
        rows=rows,
        series=series,
        command=command,
        seconds=round(time.perf_counter() - started, 2),
        **fields,
    )


def unscored(frame: pl.DataFrame, folds: pl.DataFrame, spec: Spec) -> list[str]:
    """The series of ``frame`` (ids as text) with no row in the ``folds`` of its backtest:
    those no fold forecast, each named in a warning of the backtest (``unscored_series`` of
    ``forecaster backtest``'s summary and of a run's; none without an id column)."""
    id_col = spec.series.id
    return [] if id_col is None else absent_series(frame, folds, id_col)


def made_counts(frame: pl.DataFrame, made: pl.DataFrame, id_col: str | None) -> tuple[int, int]:
    """The rows of ``frame`` and the series of the forecast or folds ``made``, which they
    are of: those a command forecast or scored (not the data's, which ``data`` records)."""
    if id_col is None:
        return (frame.height, 1) if made.height else (0, 0)
    counted = made.select(id_text(id_col)).unique()
    rows = frame.select(id_text(id_col)).join(counted, on=id_col, how="semi").height
    return rows, counted.height


def summary_file(file: Path) -> Path:
    """The summary of the Parquet ``file`` of ``predict`` or ``backtest``, beside it: its name
    without ``.parquet``, then :data:`SUMMARY_SUFFIX`. Only files named ``*.parquet``
    (lowercase) are written (:mod:`forecaster.jobs.commands` refuses another ``--out``), so
    no two files share a summary."""
    stem = file.name.removesuffix(".parquet")
    return file.with_name(stem + SUMMARY_SUFFIX)


def check_summary_file(path: Path, command: str, spec: Spec, root: Path) -> None:
    """Refuse (``OwnershipError``) to write the summary of ``command`` at ``path`` when the
    spec's ``source.path`` would read it as data, or when something is there but a summary of
    the same pipeline and command: a link, a folder, another file, or another command's or
    pipeline's summary is left as it is."""
    problem = out_problem(spec, root, path, folder=False)
    if problem:
        raise OwnershipError(f"Refusing to write the summary {path}: {problem}.")
    fix = "Choose another file with --out (its summary goes beside it), or move this one away."
    if not existing_file(path, "a summary", fix):
        return
    try:
        found = read_summary(path)
    except (OSError, ForecasterError) as exc:
        raise OwnershipError(
            f"Refusing to replace {path}: it is not a summary forecaster wrote "
            f"({first_line(exc)}). {fix}"
        ) from None
    if (found.name, found.command) != (spec.pipeline.name, command):
        raise OwnershipError(
            f"Refusing to replace {path}: it is the summary of {found.command} of the pipeline "
            f"{found.name!r}, not of {command} of {spec.pipeline.name!r}. {fix}"
        )


SERIES_LISTS = (
    "dropped_series",
    "dropped_reasons",
    "excluded_series",
    "unscored_series",
    "stale_series",
    "stale_steps",
)
"""The fields of a summary that list series (one entry per series): cut by :func:`fitted`."""


def write_summary(
    path: Path, result: PipelineResult, check: Callable[[Path], None] | None = None
) -> PipelineResult:
    """Write ``result`` as JSON to ``path`` atomically (``check``: called on what is there
    just before it is replaced, see :func:`forecaster._io.write_atomic`), its lists of
    series cut when it would be larger than :data:`SUMMARY_LIMIT` (:func:`fitted`): never a
    summary :func:`~forecaster.jobs.outputs.read_summary` refuses. Returns what it wrote."""
    written, data = fitted(result)
    _io.write_atomic(path, lambda tmp: tmp.write_bytes(data), replace_check=check)
    return written


def rewrite_run_summary(
    job: Job,
    summary: PipelineResult,
    model_as_of: str | None = None,
    publication: _io.Publication | None = None,
    **changes: Any,
) -> PipelineResult:
    """Publish ``job``'s run folder again with its ``summary`` changed by ``changes`` (e.g.
    the ``registration`` that really happened once the outputs were published): a staging
    folder with the published files (hard links, or copies where the file system has none),
    the summary rewritten and its ``manifest.json`` (``model_as_of`` as
    :func:`~forecaster.jobs.outputs.manifest_details` takes it), put in place in one step
    (:func:`forecaster._io.publish_directory`). A run killed on the way leaves the folder as
    it was published, never a summary its manifest does not vouch for (which the next run
    would call damaged). ``publication``: the run's first publication of the folder, told
    of this one (:meth:`~forecaster._io.Publication.also`), so that the outputs published
    again still count as published (an interrupt then ends the MLflow run FINISHED). The
    caller holds the outputs' lock. Returns what it wrote; when the folder cannot be
    published again (a file was added to it meanwhile), a warning, the folder as it was
    published (its summary.json says what the run planned), and ``summary`` with
    ``changes``: what happened."""
    changed = summary.model_copy(update=changes)
    staging: Path | None = None
    try:
        staging = _io.staging_directory(job.out_dir)
        manifest = _io.read_manifest(job.out_dir)
        if manifest is None:  # just published with one: not the run's folder any more
            raise ForecasterError(f"{job.out_dir} has no manifest forecaster wrote")
        for name in manifest["files"]:
            if name != "summary.json":
                _link_or_copy(job.out_dir / name, staging / name)
        written = write_summary(staging / "summary.json", changed)
        _io.write_manifest(staging, "run", manifest_details(job, model_as_of))
        if publication is not None:
            publication.also(staging)
        _io.publish_directory(
            staging, job.out_dir, kind="run", same=same_pipeline(job.name),
            adopt=adopt_legacy(job.name),
        )  # fmt: skip
    except (OSError, ForecasterError) as exc:
        if staging is not None:
            _io.discard_staging(staging)
        warn_at_caller(
            f"Could not rewrite the summary of {job.out_dir} with {sorted(changes)} "
            f"({first_line(exc)}): its summary.json says what the run planned.",
            ForecasterWarning,
        )
        return changed
    except BaseException:
        if staging is not None:
            _io.discard_staging(staging)
        raise
    return written


def _link_or_copy(source: Path, target: Path) -> None:
    """``target``, a hard link to the file ``source`` (a copy where the file system links
    none); its folders made. The run's files are replaced whole, never written in place, so a
    link shares no later change."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def fitted(result: PipelineResult, limit: int = SUMMARY_LIMIT) -> tuple[PipelineResult, bytes]:
    """``result`` and its JSON, at most ``limit`` bytes: as it is when it fits, else with
    each list of :data:`SERIES_LISTS` cut to its first entries (at most
    :data:`~forecaster.jobs.stale.STALE_LISTED`, halved until it fits), ``listed_counts``
    giving the length of each list cut and a ``ForecasterWarning`` saying so (each command
    named its series in warnings too)."""
    data = _json(result)
    listed = STALE_LISTED
    while len(data) > limit:
        short = _cut(result, listed)
        data = _json(short)
        if len(data) <= limit:
            counts = ", ".join(f"{k} {v:,}" for k, v in (short.listed_counts or {}).items())
            warn_at_caller(
                f"The summary of {result.name} as of {result.as_of} lists only the first "
                f"{listed:,} entries of its lists of series ({counts} in all: its "
                f"listed_counts), to stay within the {limit:,} bytes forecaster reads back.",
                ForecasterWarning,
            )
            return short, data
        if listed == 0:  # nothing else grows with the data
            raise ForecasterError(
                f"The summary of {result.name} as of {result.as_of} holds {len(data):,} bytes "
                f"without its lists of series, more than the {limit:,} it may have. This is "
                "a bug in forecaster: report it."
            )
        listed //= 2
    return result, data


def _cut(result: PipelineResult, listed: int) -> PipelineResult:
    """``result`` with each list of :data:`SERIES_LISTS` longer than ``listed`` cut to its
    first ``listed`` entries, and their lengths in ``listed_counts``: of the stale series,
    ``stale_series_count``, as their lists already held at most
    :data:`~forecaster.jobs.stale.STALE_LISTED` of them."""
    cut = {
        name: value
        for name in SERIES_LISTS
        if (value := getattr(result, name)) is not None and len(value) > listed
    }
    shorter = {
        name: value[:listed] if isinstance(value, list) else dict(list(value.items())[:listed])
        for name, value in cut.items()
    }
    stale = dict.fromkeys(("stale_series", "stale_steps"), result.stale_series_count)
    counts = {name: max(len(value), stale.get(name, 0)) for name, value in cut.items()}
    return result.model_copy(update={**shorter, "listed_counts": counts})


def _json(result: PipelineResult) -> bytes:
    return result.model_dump_json(indent=2).encode()


def write_with_summary(
    write: Callable[[], dict[str, Any]],
    result: PipelineResult,
    spec: Spec,
    root: Path,
    file: Path,
) -> PipelineResult:
    """``write()`` the Parquet ``file`` of ``result.command``, then its summary beside it
    (:func:`summary_file`, checked by :func:`check_summary_file` as it is replaced), with
    the ``parquet_bytes`` and ``parquet_sha256`` ``write`` returns
    (:func:`~forecaster.jobs.parquet_files.write_parquet`); returns the summary written. The
    summary already there is removed first: a summary always describes the file beside it,
    and names the bytes it holds (two commands writing one file at once may leave one's
    summary beside the other's file: its size or sha256 then differs)."""
    path = summary_file(file)
    command = str(result.command)
    check_summary_file(path, command, spec, root)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    done = result.model_copy(update=write())
    return write_summary(path, done, lambda there: check_summary_file(there, command, spec, root))

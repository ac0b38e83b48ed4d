"""The outputs of a run: its folder, summary, manifest, lock, and the reuse of its model.

``<output.dir>/`` (the template expanded with ``name`` and ``as_of``)
    ``forecasts.parquet`` (id, time, origin, targets, stale_steps, model_version, run_id; see
    :mod:`forecaster.jobs.schedule`), ``backtest.parquet``
    (metrics by fold, series and step), ``forecast.png``, ``model/`` (a saved model),
    ``summary.json`` (what ran, the requested and the effective as-of, the series that end
    before it and those left out of the forecast, metrics, paths) and ``manifest.json``,
    written last: the pipeline, spec hash and as-of, and the sha256 of every file, which
    proves the folder forecaster's.

Ownership
    The folder is written in a hidden staging folder beside it and put in place in one step
    (:func:`forecaster._io.publish_directory`). A folder already there is replaced only when
    its manifest proves it the outputs of the same pipeline, with no file added or changed
    since; anything else is refused with an ``OwnershipError`` (exit 2) and left as it is.
    Outputs written before run folders had a manifest (only the files a run writes, and a
    ``summary.json`` of the same pipeline) are recognised as the pipeline's.
Idempotency and concurrency
    A spec and as-of label produce their outputs once: a rerun reports them (status
    ``skipped``, with the paths of the folder as it is now) unless ``force=True``, after
    checking every file against the manifest: a file missing or changed is refused
    (``OwnershipError``, exit 2, naming the files; missing only: ``--force`` writes them
    again; changed: move them out, forecaster never replaces what it did not write). Outputs
    of another version of the spec (their summary's ``spec_hash`` is not the spec's
    :func:`forecaster.jobs.spec.spec_hash`, a hash of the parsed spec: comments and layout do
    not count) are refused too (``OwnershipError``, exit 2, both hashes; ``--force`` replaces
    them), never reported as this spec's. A file
    added beside intact outputs does not stop the report (``--force`` refuses it). A
    template without ``{as_of}`` keeps the latest as-of: a run of a later as-of replaces its
    outputs, one of an earlier as-of (a backfill) needs ``force`` (``OwnershipError``, exit 2,
    naming both as-ofs). Runs writing one output folder are serialised by the lock file
    ``.<folder name>.lock`` beside it (:func:`output_lock`; left in place: deleting a lock file
    that another process waits on would break the lock; a link or folder there is refused,
    exit 2): a second run stops at once with a ``ConcurrentRunError`` (exit 4, "busy"), or
    with ``wait`` queues behind the first and then finds its outputs (``skipped``). Staging
    folders of killed runs are removed by the next run, while it holds that lock.
Reusing the latest model (``training.reuse_model``)
    ``models/<name>/latest.json`` points at the model of the pipeline's latest run, with the
    as-of of its data. It is read bounded and checked: same spec hash, inside a run folder of
    this pipeline whose files are unchanged, trained on data up to this run's effective as-of
    at most (a backfill never gets a model that saw later data), a model that loads. When one
    of these fails the run says why (a ``ForecasterWarning``) and trains a new
    model: reuse is a shortcut, and a scheduled run should not fail because a cache went
    stale. A backfill does not move the pointer back to its older model. ``tune=True``
    (``--tune``) wins over ``reuse_model`` (a log line says so); the spec's ``training.tune``
    applies when no model is reused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ValidationError

import forecaster._io as _io
from forecaster._version import __version__
from forecaster.evaluation.plots import plot_forecast
from forecaster.exceptions import ForecasterError, ForecasterWarning, OwnershipError
from forecaster.jobs.data import AsOf, is_later
from forecaster.jobs.spec import Spec, first_line, normal_path
from forecaster.persistence import load as load_model

__all__ = [
    "POINTER_LIMIT",
    "SUMMARY_LIMIT",
    "Job",
    "PipelineResult",
    "adopt_legacy",
    "check_not_later",
    "check_outputs_replaceable",
    "latest_pointer",
    "legacy_summary",
    "manifest_details",
    "output_lock",
    "remember_model",
    "reused_label",
    "reused_model",
    "same_pipeline",
    "skipped_result",
    "write_forecast_plot",
]


SUMMARY_LIMIT = 4 * 2**20
"""Largest ``summary.json`` read (bytes)."""


POINTER_LIMIT = 64 * 2**10
"""Largest ``models/<name>/latest.json`` read (bytes)."""


class PipelineResult(BaseModel):
    """What a run did (also written as ``summary.json``)."""

    name: str
    as_of: str
    status: Literal["completed", "skipped", "dry-run"]
    output_dir: str
    requested_as_of: str | None = None
    effective_as_of: str | None = None
    forecasts: str | None = None
    backtest: str | None = None
    plot: str | None = None
    model_dir: str | None = None
    run_id: str | None = None
    tracking_uri: str | None = None
    model_version: str | None = None
    resolved_params: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    rows: int = 0
    series: int = 0
    stale_series: dict[str, str] = {}
    stale_series_count: int = 0
    stale_steps: dict[str, int] = {}
    excluded_series: list[str] = []
    max_staleness: int | None = None
    stale_policy: str | None = None
    seconds: float = 0.0
    spec_hash: str = ""
    package_version: str = __version__


@dataclasses.dataclass
class Job:
    """What one run works on, passed to the steps of :func:`run_pipeline`."""

    spec: Spec
    file: Path
    root: Path
    frame: pl.DataFrame
    when: AsOf
    out_dir: Path
    digest: str
    log: Callable[[str], None]
    started: float
    wait: float | None = 0.0

    @property
    def name(self) -> str:
        return self.spec.pipeline.name


def same_pipeline(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    """For :func:`forecaster._io.check_replaceable`: refuse another pipeline's outputs."""

    def same(manifest: Mapping[str, Any]) -> str | None:
        other = manifest.get("details", {}).get("pipeline")
        if other == name:
            return None
        return (
            f"it holds the outputs of the pipeline {other!r}, not of {name!r}. Give each "
            "pipeline its own output.dir."
        )

    return same


_RUN_FILES = frozenset(
    {
        "forecasts.parquet",
        "backtest.parquet",
        "backtest_by_step.parquet",
        "forecast.png",
        "summary.json",
        "model/config.json",
        "model/weights.safetensors",
        "model/keys.parquet",
    }
)
"""The files of a run's outputs before they had a manifest."""


def legacy_summary(folder: Path, name: str) -> PipelineResult | None:
    """The summary of outputs of ``name`` written before run folders had a manifest: only
    files a run writes (no links), and a readable ``summary.json`` of that pipeline."""
    found: set[str] = set()
    try:
        for current, folders, files in os.walk(folder):
            base = Path(current).relative_to(folder)
            if any(Path(current, entry).is_symlink() for entry in [*folders, *files]):
                return None
            found.update((base / entry).as_posix() for entry in files)
            if len(found) > len(_RUN_FILES):
                return None
        if "summary.json" not in found or not found <= _RUN_FILES:
            return None
        summary = _read_summary(folder / "summary.json")
    except (OSError, ForecasterError):
        return None
    return summary if summary.name == name else None


def _read_summary(path: Path) -> PipelineResult:
    data = _io.read_file_bounded(path, SUMMARY_LIMIT, what="summary")
    try:
        return PipelineResult.model_validate_json(data)
    except ValidationError as exc:
        raise ForecasterError(f"{path} is not a summary forecaster wrote: {exc}") from None


def _previous_outputs(out: Path, name: str, label: str) -> PipelineResult | None:
    """The summary of the outputs of ``name`` as of ``label`` at ``out``, if there are any."""
    manifest = _io.read_manifest(out)
    if manifest is None:
        legacy = legacy_summary(out, name) if out.is_dir() else None
        return legacy if legacy is not None and legacy.as_of == label else None
    details = manifest["details"]
    if manifest["kind"] != "run" or details.get("pipeline") != name:
        return None
    if details.get("as_of") != label:
        return None
    try:
        return _read_summary(out / "summary.json")
    except (OSError, ForecasterError) as exc:
        raise OwnershipError(
            f"{out} holds the outputs of {name} as of {label}, but its summary.json cannot be "
            f"read ({exc}); forecaster did not leave it so. Restore it, or run again with "
            "--force to write these outputs anew (the folder's other files are replaced)."
        ) from None


def _lock_file(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def output_lock(
    destination: Path, wait: float | None, what: str
) -> contextlib.AbstractContextManager[None]:
    """The lock that serialises the writers of ``destination`` (a run's outputs, a model): the
    file ``.<name>.lock`` beside it, held for the block (see
    :func:`forecaster._io.exclusive_lock`). ``wait``: seconds (None: as long as it takes).

    Raises
    ------
    OwnershipError
        When the lock path holds a link, a folder or a special file (not a lock file
        forecaster made).
    ConcurrentRunError
        When another process holds the lock beyond ``wait``.
    """
    lock_file = _lock_file(destination)
    try:
        info = os.lstat(lock_file)
    except (FileNotFoundError, NotADirectoryError):
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = "a link" if stat.S_ISLNK(info.st_mode) else "a folder or special file"
        raise OwnershipError(
            f"Refusing to use the lock file {lock_file}: it is {kind}, not a lock file "
            "forecaster made (forecaster never follows a link there). Remove it, then run again."
        )
    return _io.exclusive_lock(
        lock_file,
        timeout=wait,
        what=what,
        hint="Wait for it to finish, or pass --wait [SECONDS] (after the spec path) to queue "
        "behind it.",
    )


def skipped_result(job: Job) -> PipelineResult | None:
    """The result of a rerun that finds the outputs of its spec and as-of whole (else None);
    outputs with a file missing or changed, or made by another version of the spec (another
    spec hash in their summary), are refused (``OwnershipError``, exit 2)."""
    previous = _previous_outputs(job.out_dir, job.name, job.when.label)
    if previous is None:
        return None
    missing, changed = _damage(job.out_dir)
    if missing or changed:
        listed = [f"{name} (missing)" for name in missing] + [
            f"{name} (changed since forecaster wrote it)" for name in changed
        ]
        more = f" and {len(listed) - 5} more" if len(listed) > 5 else ""
        fix = (
            "Move the changed files out of the folder (forecaster replaces only what it wrote), "
            "then run again with --force"
            if changed
            else "Run again with --force to write them again"
        )
        raise OwnershipError(
            f"{job.file}: key 'output.dir': the outputs of {job.name} as of {job.when.label} in "
            f"{job.out_dir} are damaged: {', '.join(listed[:5])}{more}. {fix}."
        )
    if previous.spec_hash and previous.spec_hash != job.digest:
        raise OwnershipError(
            f"{job.file}: the outputs of {job.name} as of {job.when.label} in {job.out_dir} "
            f"were made by another version of the spec (spec hash {previous.spec_hash}; the "
            f"spec now has {job.digest}), so they are not this spec's results. Run again with "
            "--force to replace them with this spec's, or put the spec back as it was."
        )
    job.log(
        f"outputs for {job.name} as of {job.when.label} already exist: {job.out_dir} "
        "(use --force to replace them)"
    )
    out = job.out_dir
    moved = {  # the paths of the folder as it is now (the project may have moved)
        key: str(out / name) if getattr(previous, key) else None
        for key, name in (
            ("forecasts", "forecasts.parquet"),
            ("backtest", "backtest.parquet"),
            ("plot", "forecast.png"),
            ("model_dir", "model"),
        )
    }
    return previous.model_copy(update={"status": "skipped", "output_dir": str(out), **moved})


def _damage(folder: Path) -> tuple[list[str], list[str]]:
    """``(missing, changed)``: the files of the run folder that its manifest lists and that
    are gone, or differ from what forecaster wrote (read from one version of the folder).
    Outputs written before manifests: the forecasts and the model's config, if missing."""
    with _io.PinnedDirectory(folder, error=OwnershipError) as pinned:
        manifest = _io.read_manifest(folder, pinned=pinned)
        if manifest is None:
            needed = ("forecasts.parquet", "model/config.json")
            return [name for name in needed if not pinned.exists(name)], []
        found = {name: (kind, digest) for name, kind, digest in pinned.walk()}
    listed: dict[str, str] = manifest["files"]
    missing = sorted(name for name in listed if name not in found)
    changed = sorted(
        name for name, digest in listed.items() if name in found and found[name] != ("file", digest)
    )
    return missing, changed


def check_not_later(job: Job) -> None:
    """With a ``dir`` template without ``{as_of}`` the folder keeps the latest as-of: outputs
    of a later as-of there are replaced only with ``force`` (``OwnershipError`` otherwise)."""
    if "{as_of}" in job.spec.output.dir or not job.out_dir.is_dir():
        return
    manifest = _io.read_manifest(job.out_dir)
    if manifest is not None:
        details = manifest["details"]
        other_label, other = details.get("as_of"), details.get("effective_as_of")
    else:
        legacy = legacy_summary(job.out_dir, job.name)
        if legacy is None:
            return
        other_label, other = legacy.as_of, legacy.effective_as_of
    other = other or other_label  # written before effective as-ofs were recorded: the label
    later = is_later(other, job.when.effective)
    if later is False:
        return
    reason = "a later as-of than" if later else "an as-of that cannot be compared with"
    raise OwnershipError(
        f"{job.file}: key 'output.dir' ({job.spec.output.dir!r}) has no {{as_of}}, so "
        f"{job.out_dir} keeps the latest as-of, and it holds the outputs as of {other_label} "
        f"(data up to {other}), {reason} this run's {job.when.label} (data up to "
        f"{job.when.effective}). Pass --force to replace them with this older as-of, or put "
        "{as_of} in output.dir to keep both."
    )


def adopt_legacy(name: str) -> Callable[[Path], bool]:
    return lambda folder: legacy_summary(folder, name) is not None


def check_outputs_replaceable(job: Job) -> None:
    """Before training: the outputs already at the folder (if any) may be replaced."""
    try:
        _io.check_replaceable(
            job.out_dir,
            "run",
            same=same_pipeline(job.name),
            purpose="replace the outputs in",
            adopt=adopt_legacy(job.name),
        )
    except OwnershipError as exc:
        raise OwnershipError(f"{job.file}: key 'output.dir': {exc}") from None


def manifest_details(job: Job) -> dict[str, Any]:
    spec_file = normal_path(job.file)
    return {
        "pipeline": job.name,
        "spec_hash": job.digest,
        "as_of": job.when.label,
        "requested_as_of": job.when.requested,
        "effective_as_of": job.when.effective,
        "spec": (
            spec_file.relative_to(normal_path(job.root)).as_posix()
            if spec_file.is_relative_to(normal_path(job.root))
            else str(spec_file)
        ),
    }


def latest_pointer(root: Path, name: str) -> Path:
    return root / "models" / name / "latest.json"


_POINTER_OWNER = "forecaster latest-model pointer"

REUSED = "reused "
"""How a run's model was made when ``reuse_model`` took a run's model: ``reused <its folder>``
(``<outputs of the run>/model``: the run's as-of label is the folder's parent's name)."""


def reused_label(how: str) -> str | None:
    """The as-of label of the run whose model was reused (``how``: see :data:`REUSED`), else
    None (the model was fitted or tuned by this run)."""
    return Path(how[len(REUSED) :]).parent.name if how.startswith(REUSED) else None


def remember_model(job: Job) -> None:
    """Point ``models/<name>/latest.json`` at the run's model (relative to the project) with
    the as-of of its data, unless that file or its folder is not forecaster's to write, or it
    points at a model of a later as-of (a backfill does not move it back); say why then."""
    pointer = latest_pointer(job.root, job.name)
    problem = None
    if _io.owning_folder(pointer, stop=job.root) is not None or pointer.is_symlink():
        problem = f"{pointer.parent} is a folder forecaster wrote, or {pointer} is a link"
    elif pointer.exists():
        saved, why = _read_pointer(pointer)
        if why is not None:
            problem = f"{pointer} is not a pointer forecaster wrote"
        elif (
            saved is not None
            and saved["spec_hash"] == job.digest
            and is_later(saved.get("effective_as_of"), job.when.effective)
        ):
            job.log(
                f"model    {pointer} keeps the model as of {saved.get('as_of')}, later than "
                f"this run's {job.when.label}"
            )
            return
    if problem is None:
        payload = {
            "owner": _POINTER_OWNER,
            "spec_hash": job.digest,
            "model_dir": (job.out_dir / "model").relative_to(normal_path(job.root)).as_posix(),
            "as_of": job.when.label,
            "effective_as_of": job.when.effective,
        }
        try:
            _io.write_bytes_atomic(pointer, json.dumps(payload, indent=2).encode("utf-8"))
            return
        except OSError as exc:
            problem = f"cannot write {pointer} ({exc.strerror or exc})"
    _say(f"not recording the latest model: {problem}; reuse_model will retrain")


_POINTER_KEYS = frozenset({"spec_hash", "model_dir"})


_POINTER_OPTIONAL = frozenset({"owner", "as_of", "effective_as_of"})


def _read_pointer(pointer: Path) -> tuple[dict[str, str] | None, str | None]:
    """``(pointer, None)``, or ``(None, why it is not a forecaster pointer)``."""
    try:
        data = _io.read_file_bounded(pointer, POINTER_LIMIT, what="latest-model pointer")
        value = _io.load_json_bounded(data, source=str(pointer), max_depth=2)
    except (OSError, ForecasterError) as exc:
        return None, str(exc)
    if not (
        isinstance(value, dict)
        and _POINTER_KEYS <= set(value) <= _POINTER_KEYS | _POINTER_OPTIONAL
        and value.get("owner", _POINTER_OWNER) == _POINTER_OWNER
        and all(isinstance(item, str) for item in value.values())
    ):
        return None, f"{pointer} is not a latest-model pointer forecaster wrote"
    return value, None


def reused_model(job: Job) -> tuple[Any, str] | None:
    """The model the pointer names, when it is this spec's, intact, and trained on data up to
    this run's as-of at most; else None (after saying why, when the pointer is there but
    cannot be followed or names a model of later data)."""
    pointer = latest_pointer(job.root, job.name)
    if not pointer.exists() and not pointer.is_symlink():
        return None
    saved, problem = _read_pointer(pointer)
    if saved is not None and saved["spec_hash"] != job.digest:
        return None  # another spec: a new model is due, nothing to report
    if saved is not None:
        model_dir = normal_path(job.root / saved["model_dir"])
        problem = _reuse_problem(job, model_dir)
        if problem is None:
            try:
                return load_model(model_dir), f"{REUSED}{model_dir}"
            except ForecasterError as exc:
                problem = f"the model in {model_dir} does not load ({first_line(exc)})"
    _say(f"not reusing the latest model: {problem}; training a new one")
    return None


def _reuse_problem(job: Job, model_dir: Path) -> str | None:
    """Why the model folder the pointer names is not this pipeline's intact model of data up
    to this run's as-of."""
    run = model_dir.parent
    if model_dir.name != "model" or not run.is_dir():
        return f"{model_dir} is not the model of a run's outputs"
    manifest = _io.read_manifest(run)
    if manifest is None:
        legacy = legacy_summary(run, job.name)
        if legacy is None or legacy.spec_hash != job.digest:
            return f"{run} holds no outputs of this pipeline and spec"
        effective = legacy.effective_as_of
    elif manifest["details"].get("spec_hash") != job.digest:
        return f"{run} holds no outputs of this pipeline and spec"
    else:
        effective = manifest["details"].get("effective_as_of")
        try:
            _io.check_replaceable(run, "run", same=same_pipeline(job.name), purpose="reuse")
        except OwnershipError as exc:
            return str(exc)
    later = is_later(effective, job.when.effective)
    if later is None:
        return (
            f"the model in {model_dir} does not record the as-of of its data (it was written by "
            "an older forecaster), so it may have seen data after this run's as-of "
            f"{job.when.label}"
        )
    if later:
        return (
            f"the model in {model_dir} was trained on data up to {effective}, after this run's "
            f"as-of {job.when.label} ({job.when.effective}): a backfill must not see later data"
        )
    return None


def _say(message: str) -> None:
    """A ``ForecasterWarning`` (the ``forecaster`` command shows it as one ``warning:`` line
    on standard error)."""
    warnings.warn(message[0].upper() + message[1:] + ".", ForecasterWarning, stacklevel=3)


def write_forecast_plot(
    frame: pl.DataFrame,
    forecast: pl.DataFrame,
    model: Any,
    path: Path,
    n: int,
    levels: list[float] | None = None,
) -> bool:
    """``forecast.png`` of a run, drawn by :func:`forecaster.evaluation.plots.plot_forecast`:
    for the first ``n`` series of the forecast (the spec's ``[output] plot_series``, one row
    each) and the first three targets (one column each), the last ``4 * horizon + lookback``
    rows of history, the forecast joined to them and, with ``levels``, its shaded bands.
    False: nothing drawn (``n == 0``, or matplotlib is not installed)."""
    if n == 0:
        return False
    targets = [model.target] if isinstance(model.target, str) else list(model.target)
    try:
        figure = plot_forecast(
            frame,
            forecast,
            target=targets[:3],
            id_col=model.id_col,
            time_col=model.time_col,
            levels=list(levels) if levels else None,
            max_series=n,
            tail=4 * int(model.horizon) + model.lookback_,
        )
    except ImportError:  # no matplotlib: no plot (it ships with the track extra)
        warnings.warn(
            f"No forecast.png: [output] plot_series = {n} asks for a plot, and matplotlib is "
            'not installed. Install it with pip install "forecaster[track]", or set '
            "plot_series = 0.",
            ForecasterWarning,
            stacklevel=2,
        )
        return False
    _io.write_atomic(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    return True

"""The outputs of a run: its folder, summary, manifest, lock, and the reuse of its model.

``<output.dir>/`` (the template expanded with ``name`` and ``as_of``)
    ``forecasts.parquet`` (id, time, origin, targets, stale_steps, model_version, run_id; see
    :mod:`forecaster.jobs.schedule`), ``backtest.parquet``
    (metrics by fold, series and step), ``forecast.png``, ``model/`` (a saved model),
    ``summary.json`` (what ran, the requested and the effective as-of, the series that end
    before it and those left out of the forecast, with why: :class:`PipelineResult`;
    metrics, paths) and ``manifest.json``,
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
    ``.<folder name>.lock`` beside it (:func:`forecaster.jobs.output_locks.output_lock`; left
    in place: deleting a lock file that another process waits on would break the lock; a link
    or folder there is refused, exit 2): a second run stops at once with a
    ``ConcurrentRunError`` (exit 4, "busy"), or with ``wait`` queues behind the first and then
    finds its outputs (``skipped``). Staging folders of killed runs are removed by the next
    run, while it holds that lock.
Reusing the latest model (``training.reuse_model``)
    See :mod:`forecaster.jobs.pointer`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ValidationError, model_validator

import forecaster._io as _io
from forecaster._version import __version__
from forecaster.data.panel import Panel
from forecaster.evaluation.plots import plot_forecast
from forecaster.exceptions import (
    ForecasterError,
    ForecasterWarning,
    OwnershipError,
    silenced,
    warn_at_caller,
)
from forecaster.jobs.data import AsOf
from forecaster.jobs.hashing import SpecHashes, same_spec
from forecaster.jobs.orphans import SUMMARY_LIMIT, lost_manifest, rebuildable, set_aside
from forecaster.jobs.schedule import DropReason, absent_series
from forecaster.jobs.spec import COLUMN_PARAMS, Spec, first_line, normal_path
from forecaster.tracking.fingerprint import dataset_fingerprint, same_data_hash

__all__ = [
    "Job",
    "PipelineResult",
    "adopt_legacy",
    "check_outputs_replaceable",
    "data_record",
    "dropped_series",
    "forecast_ids",
    "legacy_summary",
    "manifest_details",
    "read_summary",
    "same_pipeline",
    "skipped_result",
    "write_forecast_plot",
]


class PipelineResult(BaseModel):
    """What a run did (also written as ``summary.json``), or a ``command`` of the command
    line (``predict``, ``backtest``: :mod:`forecaster.jobs.summaries`).

    ``dropped_series`` lists the series of the data neither fitted nor forecast (but those
    in ``excluded_series``) and ``dropped_reasons`` says why, in the same order: series id
    -> a :data:`~forecaster.jobs.schedule.DropReason` code (``too_short``, ``no_target``,
    ``no_log_return``, ``after_as_of``, ``before_window``; both from
    :func:`dropped_series`). None: a summary written before the reasons were recorded.
    ``unscored_series``: of a ``backtest``, and of a run that backtests
    (``evaluation.backtest_folds`` > 0), the series of its data that no fold forecast; None
    when nothing was backtested (``predict``, a run without folds, a dry run, a summary
    written before runs recorded it).
    ``parquet_bytes`` and ``parquet_sha256``: of ``predict`` and ``backtest``, the size and
    sha256 of the Parquet file the summary describes, as it was written: a file whose size or
    sha256 differs is not the one this summary records (another command's, written in
    between). None for a run (its ``manifest.json`` records the sha256 of every file).
    ``registration``: with ``tracking.register_as``, what the run did in the model registry
    (:func:`forecaster.jobs.pointer.registration_plan`, then what
    :func:`forecaster.jobs.registration.register_run_model` did: ``name``, ``new_version``,
    ``reason`` why not, as an untracked run or a failed registration, ``latest_as_of`` of a
    backfill); else None.
    ``calibration``: how a run's point model was calibrated for the spec's ``levels``
    (:meth:`forecaster.jobs.calibration_plan.Plan.record`); ``backtest_calibration``: the
    same record of the backtest's clone, calibrated by the same rules on the data before the
    first fold (of a run or ``backtest`` with levels and a point model; else None), so the
    backtest's interval scores say which intervals they scored.
    ``backtest_tuning``: of a run or ``backtest`` of a spec that tunes, the parameters its
    backtest scored and the data they were tuned on, the rows before the first fold
    (:attr:`forecaster.jobs.tuned_backtest.BacktestTuning.record`: ``study``,
    ``tuned_until``, ``held_out_steps``, ``trials``, ``best_params``); else None.
    ``series`` and ``rows``: the series forecast (``run``, ``predict``; a dry run's, those
    it would forecast) or scored (``backtest``) and their rows of the data;
    ``fitted_series`` and ``fitted_rows``: of a run, those of the series its model was fitted
    on (fewer where a series too short for a training window is still forecast from its
    last lookback rows; with ``training.reuse_model``, those the run would fit on); None for
    ``predict`` and ``backtest``, which fit nothing, and in a summary written before runs
    recorded them.
    ``listed_counts``: None when every list of series is whole; else the summary would have
    been larger than :data:`SUMMARY_LIMIT`, so its lists of series hold their first entries
    only, and this gives the length of each list cut (``forecaster.jobs.summaries.fitted``;
    of ``stale_series`` and ``stale_steps``: ``stale_series_count``, every stale series).
    """

    name: str
    as_of: str
    status: Literal["completed", "skipped", "dry-run"]
    command: Literal["run", "predict", "backtest"] = "run"
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
    registration: dict[str, Any] | None = None
    resolved_params: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    calibration: dict[str, Any] | None = None
    backtest_calibration: dict[str, Any] | None = None
    backtest_tuning: dict[str, Any] | None = None
    rows: int = 0
    series: int = 0
    fitted_rows: int | None = None
    fitted_series: int | None = None
    stale_series: dict[str, str] = {}
    stale_series_count: int = 0
    stale_steps: dict[str, int] = {}
    excluded_series: list[str] = []
    dropped_series: list[str] = []
    dropped_reasons: dict[str, DropReason] | None = None
    unscored_series: list[str] | None = None
    parquet_bytes: int | None = None
    parquet_sha256: str | None = None
    listed_counts: dict[str, int] | None = None
    data: dict[str, Any] | None = None
    max_staleness: int | None = None
    stale_policy: str | None = None
    seconds: float = 0.0
    spec_hash: str = ""
    package_version: str = __version__

    @model_validator(mode="after")
    def _reasons_of_the_dropped(self) -> PipelineResult:
        if self.dropped_reasons is not None and list(self.dropped_reasons) != self.dropped_series:
            raise ValueError(
                f"dropped_reasons names the series {list(self.dropped_reasons)}, expected those "
                f"of dropped_series {self.dropped_series}, in their order"
            )
        return self


@dataclasses.dataclass
class Job:
    """What one run works on, passed to the steps of :func:`run_pipeline`."""

    spec: Spec
    file: Path
    root: Path
    frame: pl.DataFrame
    when: AsOf
    out_dir: Path
    hashes: SpecHashes
    log: Callable[[str], None]
    started: float
    wait: float | None = 0.0

    @property
    def name(self) -> str:
        return self.spec.pipeline.name

    @property
    def digest(self) -> str:
        """The spec's hash, as what the run writes records it."""
        return self.hashes.current

    def same_spec(self, recorded: object) -> bool:
        """Whether a recorded hash is the spec's: its current or its legacy hash (from before
        the description and the way paths are written were left out of it)."""
        return same_spec(recorded, self.hashes)


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
        summary = read_summary(folder / "summary.json")
    except (OSError, ForecasterError):
        return None
    return summary if summary.name == name else None


def read_summary(path: Path) -> PipelineResult:
    """The summary at ``path`` (read bounded), or a ``ForecasterError`` saying why not."""
    data = _io.read_file_bounded(path, SUMMARY_LIMIT, what="summary")
    try:
        return PipelineResult.model_validate_json(data)
    except ValidationError as exc:
        raise ForecasterError(f"{path} is not a summary forecaster wrote: {exc}") from None


def _previous_outputs(job: Job) -> PipelineResult | None:
    """The summary of the outputs of the job's pipeline and as-of in its folder, if there are
    any; a folder of them with a file missing or changed is refused (:func:`_refuse_damaged`:
    a changed ``summary.json`` too, which cannot be read)."""
    out, name, label = job.out_dir, job.name, job.when.label
    manifest = _io.read_manifest(out)
    if manifest is None:
        legacy = legacy_summary(out, name) if out.is_dir() else None
        if legacy is not None:
            return legacy if legacy.as_of == label else None
        lost = lost_manifest(out, name)
        if lost is not None:  # never reported as intact: nothing can check its files
            raise OwnershipError(lost.message())
        return None
    details = manifest["details"]
    if manifest["kind"] != "run" or details.get("pipeline") != name:
        return None
    if details.get("as_of") != label:
        return None
    _refuse_damaged(job)
    try:
        return read_summary(out / "summary.json")
    except (OSError, ForecasterError) as exc:  # as forecaster wrote it: an unreadable file
        raise OwnershipError(
            f"{out} holds the outputs of {name} as of {label}, but its summary.json cannot be "
            f"read ({first_line(exc)}). Run again with --force to write these outputs anew "
            "(the folder's other files are replaced)."
        ) from None


def _refuse_damaged(job: Job) -> None:
    """``OwnershipError`` (exit 2) when the job's outputs have a file missing or changed since
    forecaster wrote it, with what to do: ``--force`` writes missing files again, and replaces
    only what forecaster wrote (so changed files are moved out first)."""
    missing, changed = _damage(job.out_dir)
    if not (missing or changed):
        return
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


def skipped_result(job: Job) -> PipelineResult | None:
    """The result of a rerun that finds the outputs of its spec and as-of whole (else None);
    outputs with a file missing or changed, or made by another version of the spec (another
    spec hash in their summary), are refused (``OwnershipError``, exit 2)."""
    previous = _previous_outputs(job)
    if previous is None:
        return None
    if previous.spec_hash and not job.same_spec(previous.spec_hash):
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
    _warn_data_changed(job, previous.data)
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


def data_record(job: Job) -> dict[str, Any]:
    """What identifies the data a run used (``summary.json``'s ``data``): rows, series, first
    and last time, and a content hash (stable for one Polars version, which is recorded); with
    future covariates also ``future``, the content hash of their values over the horizon,
    read beyond the as-of (the forecasts depend on them as much as on the history).

    The hash is of every column of ``job.frame``, those the model does not read too: a
    tracked run's MLflow ``data.hash`` (the fit's fingerprint,
    :func:`~forecaster.tracking.fingerprint.fingerprint_for`) is of the model's columns
    only, so the two differ where the source has other columns. Kept so: the records of
    outputs written before are compared with it as a rerun skips them."""
    return _data_fingerprints(job)[0]


def _data_fingerprints(job: Job) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`data_record`, and the fingerprints it is made of (``"data"``, and ``"future"``
    with future covariates), whose ``legacy_hash`` a record an earlier version wrote may hold
    (:func:`~forecaster.tracking.fingerprint.same_data_hash`)."""
    series = job.spec.series
    fingerprints = {"data": dataset_fingerprint(job.frame, id_col=series.id, time_col=series.time)}
    record = {k: fingerprints["data"][k] for k in ("rows", "series", "start", "end", "hash")}
    if job.when.future is not None:
        future = dataset_fingerprint(job.when.future, id_col=series.id, time_col=series.time)
        fingerprints["future"], record["future"] = future, future["hash"]
    return {**record, "polars": pl.__version__}, fingerprints


def forecast_ids(job: Job, estimator: Any, lookback: int) -> pl.DataFrame | None:
    """The series a forecast of ``job``'s data would be made for (a frame of the id column;
    None without one): those with at least ``lookback`` steps on the grid, as ``predict``
    keeps them. What a dry run, which forecasts nothing, passes :func:`dropped_series`."""
    id_col = job.spec.series.id
    if id_col is None:
        return None
    options = {k: v for k, v in estimator.get_params().items() if k in COLUMN_PARAMS}
    with silenced(ForecasterWarning):  # the series it leaves out are named by the fit's panel
        panel = Panel.from_frame(job.frame, **options, min_length=lookback)
    return pl.DataFrame({id_col: panel.keys[panel.id_name]})


def dropped_series(job: Job, panel: Any, forecast: pl.DataFrame | None) -> dict[str, DropReason]:
    """The series of the data, but those the stale policy excluded, that the run leaves out,
    each with why (:data:`~forecaster.jobs.schedule.DropReason`; ``summary.json``'s
    ``dropped_series`` are its keys, ``dropped_reasons`` itself): ``too_short``, those absent
    from its ``forecast``, too short for the model (with a warning; neither fitted nor
    forecast: a series with the lookback's rows but fewer than lookback + horizon is left out
    of the fit, yet forecast; a dry run passes :func:`forecast_ids`), without one those the
    ``panel`` of the fit leaves out; then the series of the source none of whose rows the run
    uses (``job.when.left_out``, each named in a warning too: no target value or log return,
    no row up to the as-of, none in the ``features.history_days`` window)."""
    id_col = job.spec.series.id
    if id_col is None:
        return {}
    made = pl.DataFrame({id_col: panel.keys[panel.id_name]}) if forecast is None else forecast
    absent = absent_series(job.frame, made, id_col)
    short: list[tuple[str, DropReason]] = [(key, "too_short") for key in absent]
    excluded = set(job.when.excluded)
    return {key: why for key, why in [*short, *job.when.left_out] if key not in excluded}


def _warn_data_changed(job: Job, recorded: Mapping[str, Any] | None) -> None:
    """Warn when a skipped run's data differ from those its outputs were made from (a clip or
    a series added, values corrected): the outputs stay those of the older data."""
    if not recorded:
        return  # written before runs recorded their data
    now, fingerprints = _data_fingerprints(job)
    shape = [k for k in ("rows", "series", "start", "end") if recorded.get(k) != now[k]]
    same_polars = recorded.get("polars") == now["polars"]
    # "future": recorded since future covariates were fingerprinted (older outputs lack it);
    # a Categorical or Enum id's hash as an earlier version recorded it is the same data
    values = [
        key
        for key, fingerprint in (("hash", "data"), ("future", "future"))
        if key in recorded and not same_data_hash(recorded[key], fingerprints.get(fingerprint, {}))
    ]
    if not shape and (not values or not same_polars):
        return
    what = ", ".join(
        [f"{k} {recorded.get(k)} -> {now[k]}" for k in shape]
        + (["values changed"] if "hash" in values and not shape else [])
        + (["future covariate values changed"] if "future" in values else [])
    )
    warn_at_caller(
        f"The data of {job.name} as of {job.when.label} changed since its outputs in "
        f"{job.out_dir} were written ({what}); they stay the outputs of the older data. Run "
        "again with --force to make them from the data as they are now.",
        ForecasterWarning,
    )


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


def adopt_legacy(name: str) -> Callable[[Path], bool]:
    """For :func:`forecaster._io.check_replaceable`: vouch for a folder of ``name`` without a
    manifest: outputs written before run folders had one, or a run folder that lost it and
    holds only what a run writes (:func:`forecaster.jobs.orphans.rebuildable`)."""
    return lambda folder: legacy_summary(folder, name) is not None or rebuildable(folder, name)


def check_outputs_replaceable(job: Job, set_aside_lost: bool = False) -> None:
    """Before training: the outputs already at the folder (if any) may be replaced. With
    ``set_aside_lost`` (a run, under the outputs' lock, not a dry run), a run folder that lost
    its manifest is moved aside first (:func:`forecaster.jobs.orphans.set_aside`)."""
    lost = lost_manifest(job.out_dir, job.name)
    legacy = legacy_summary(job.out_dir, job.name) is not None
    if lost is not None and not lost.rebuildable and not legacy:
        raise OwnershipError(f"{job.file}: key 'output.dir': {lost.message()}")
    if lost is not None and not legacy and set_aside_lost:
        kept = set_aside(lost)
        job.log(
            f"outputs  {job.out_dir} had lost its manifest: moved it to {kept} (its files "
            "could not be checked; delete it once you no longer need it)"
        )
        return
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


def manifest_details(job: Job, model_as_of: str | None = None) -> dict[str, Any]:
    """The ``details`` of a run's manifest; ``model_as_of``: the as-of label of the run that
    fitted a model this run reused (recorded only then: the model's version names it)."""
    spec_file = normal_path(job.file)
    fitted = {} if model_as_of is None else {"model_as_of": model_as_of}
    return {
        **fitted,
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
    each) and every target (one column each), the last ``4 * horizon + lookback``
    rows of history, the forecast joined to them and, with ``levels``, its shaded bands.
    False: nothing drawn (``n == 0``, or matplotlib is not installed)."""
    if n == 0:
        return False
    targets = [model.target] if isinstance(model.target, str) else list(model.target)
    try:
        figure = plot_forecast(
            frame,
            forecast,
            target=targets,
            id_col=model.id_col,
            time_col=model.time_col,
            levels=list(levels) if levels else None,
            max_series=n,
            tail=4 * int(model.horizon) + model.lookback_,
        )
    except ImportError:  # no matplotlib: no plot (it ships with the track extra)
        warn_at_caller(
            f"No forecast.png: [output] plot_series = {n} asks for a plot, and matplotlib is "
            'not installed. Install it with pip install "forecaster-rnn[track]", or set '
            "plot_series = 0.",
            ForecasterWarning,
        )
        return False
    _io.write_atomic(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    return True

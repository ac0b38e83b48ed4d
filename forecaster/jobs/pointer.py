"""The pointer ``models/<name>/latest.json`` to a pipeline's latest model, and its reuse.

``models/<name>/latest.json`` points at the model of the pipeline's latest run, with the
as-of of its data. It is read bounded and checked: same spec hash, inside a run folder of
this pipeline whose files are unchanged, trained on data up to this run's effective as-of
at most (a backfill never gets a model that saw later data), a model that loads and reads
the run's data (the dtypes it was fitted on). When one of these fails the run says why (a
``ForecasterWarning``) and trains a new model: reuse is a shortcut, and a scheduled run
should not fail because a cache went stale. A backfill does not move the pointer back to
its older model. ``tune=True`` (``--tune``) wins over ``reuse_model`` (a log line says so);
the spec's ``training.tune`` applies when no model is reused.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import forecaster._io as _io
from forecaster.data.dtypes import align_time
from forecaster.data.frames import check_schema
from forecaster.exceptions import (
    DataValidationError,
    ForecasterError,
    ForecasterWarning,
    OwnershipError,
    warn_at_caller,
)
from forecaster.jobs.data import is_later
from forecaster.jobs.output_locks import output_lock
from forecaster.jobs.outputs import Job, legacy_summary, same_pipeline
from forecaster.jobs.spec import first_line, normal_path
from forecaster.persistence import load as load_model

__all__ = [
    "POINTER_LIMIT",
    "REUSED",
    "later_model_as_of",
    "latest_pointer",
    "registration_plan",
    "remember_model",
    "remember_skipped",
    "reused_label",
    "reused_model",
]


POINTER_LIMIT = 64 * 2**10
"""Largest ``models/<name>/latest.json`` read (bytes)."""


def latest_pointer(root: Path, name: str) -> Path:
    return root / "models" / name / "latest.json"


_POINTER_OWNER = "forecaster latest-model pointer"

REUSED = "reused "
"""How a run's model was made when ``reuse_model`` took a run's model: ``reused <its folder>``
(``<outputs of the run>/model``; the as-of of the run that fitted it: :func:`reused_label`)."""


def reused_label(job: Job, how: str) -> str | None:
    """The as-of label of the run that fitted the model this run reused (``how``: see
    :data:`REUSED`), else None (the model was fitted or tuned by this run): the reused run's
    manifest's ``model_as_of`` (the run that fitted it, when that run reused it too), else
    its ``as_of``; outputs written before manifests: their summary's ``as_of``. The name of
    the run's folder is no as-of when ``output.dir`` names its folder otherwise
    (``outputs/{as_of}/{name}``, ``outputs/{name}/current``)."""
    if not how.startswith(REUSED):
        return None
    run = Path(how[len(REUSED) :]).parent
    manifest = _io.read_manifest(run)
    if manifest is not None:
        details = manifest["details"]
        label = details.get("model_as_of") or details.get("as_of")
    else:
        legacy = legacy_summary(run, job.name)
        label = legacy.as_of if legacy is not None else None
    return str(label) if label else run.name  # read by the reuse just before: never none


def remember_model(job: Job) -> None:
    """Point ``models/<name>/latest.json`` at the run's model (relative to the project) with
    the as-of of its data, unless its folder is not forecaster's to write, it is a link, a
    folder or anything but a file of a pointer's size, or it points at a model of a later
    as-of (a backfill does not move it back), but for one in the folder this run replaced
    (``output.dir`` without ``{as_of}``: that model is gone); say why then. A pointer that
    cannot be read (a write cut short, an edit gone wrong) is the package's own file: it is
    rewritten, through :func:`forecaster._io.write_atomic`, and a warning says so. The read,
    the comparison and the write hold the lock ``models/<name>/.latest.json.lock``, so runs of
    two as-ofs finishing at once leave the pointer at the later model."""
    pointer = latest_pointer(job.root, job.name)
    problem: str | None
    if _io.owning_folder(pointer, stop=job.root) is not None or pointer.is_symlink():
        problem = f"{pointer.parent} is a folder forecaster wrote, or {pointer} is a link"
    else:
        try:
            with output_lock(pointer, None, f"an update of the latest-model pointer {pointer}"):
                problem, rewritten = _update_pointer(job, pointer)
        except ForecasterError as exc:  # the lock's path holds a link, a folder, ...
            problem, rewritten = _clause(first_line(exc)), None
        if rewritten is not None:
            _say(rewritten)
    if problem is not None:
        _say(f"not recording the latest model: {problem}; reuse_model will retrain")


def remember_skipped(job: Job) -> None:
    """For a rerun that finds its outputs whole (and skips): :func:`remember_model` when the
    pointer names no model of this spec as new as theirs (missing, another spec's, or of an
    earlier as-of: a run stopped after publishing its outputs, before it moved the pointer).
    Not for outputs whose run reused a model (it stays the pointer's), nor for outputs
    written before manifests."""
    manifest = _io.read_manifest(job.out_dir)
    if manifest is None or manifest["details"].get("model_as_of") is not None:
        return
    pointer = latest_pointer(job.root, job.name)
    saved = _read_pointer(pointer)[0] if pointer.is_file() else None
    newer = saved is None or is_later(job.when.effective, saved.get("effective_as_of"))
    if saved is not None and job.same_spec(saved["spec_hash"]) and not newer:
        return  # as new as these outputs, or newer (or of an unknown as-of: left be)
    remember_model(job)


def _update_pointer(job: Job, pointer: Path) -> tuple[str | None, str | None]:
    """:func:`remember_model` under the pointer's lock: ``(why the pointer could not be
    written, None)``, or ``(None, what to say of an unreadable pointer it rewrote)`` (both None:
    the pointer names the run's model, or keeps a later one)."""
    problem = unreadable = None
    model_dir = (job.out_dir / "model").relative_to(normal_path(job.root)).as_posix()
    if pointer.exists():
        saved, why = _read_pointer(pointer)
        if why is not None:
            problem = _pointer_blocker(pointer) or _foreign_pointer(pointer)
            unreadable = why
        elif saved is not None and _names_a_later_model(job, saved):
            if not _names_this_folder(job, saved):
                job.log(
                    f"model    {pointer} keeps the model as of {saved.get('as_of')}, later "
                    f"than this run's {job.when.label}"
                )
                return None, None
            job.log(
                f"model    {pointer} named the model as of {saved.get('as_of')} in "
                f"{job.out_dir}, which now holds this run's: it names this run's model"
            )
    if problem is not None:
        return problem, None
    payload = {
        "owner": _POINTER_OWNER,
        "spec_hash": job.digest,
        "model_dir": model_dir,
        "as_of": job.when.label,
        "effective_as_of": job.when.effective,
    }
    data = json.dumps(payload, indent=2).encode("utf-8")
    try:
        _io.write_atomic(pointer, lambda tmp: tmp.write_bytes(data), replace_check=_check)
    except OSError as exc:
        return f"cannot write {pointer} ({exc.strerror or exc})", None
    except OwnershipError as exc:
        return str(exc).rstrip("."), None
    if unreadable is None:
        return None, None
    return None, (
        f"{pointer} could not be read as a latest-model pointer ({_clause(unreadable)}); "
        f"rewrote it to point at this run's model {model_dir}"
    )


def _names_a_later_model(job: Job, saved: dict[str, str]) -> bool:
    """Whether the pointer ``saved`` names a model of this spec fitted on data of a later
    as-of than ``job``'s (the backfill rule of :func:`remember_model`)."""
    later = is_later(saved.get("effective_as_of"), job.when.effective)  # None: unknown
    return job.same_spec(saved["spec_hash"]) and bool(later)


def _names_this_folder(job: Job, saved: dict[str, str]) -> bool:
    """Whether the pointer ``saved`` names the model folder of ``job``'s outputs."""
    return normal_path(job.root / saved["model_dir"]) == normal_path(job.out_dir / "model")


def later_model_as_of(job: Job) -> str | None:
    """The as-of of the later model ``models/<name>/latest.json`` keeps rather than naming
    this run's (:func:`remember_model`'s rule: a backfill does not move it back), else None
    (also for a pointer that is missing or cannot be read). The registry follows the same
    rule: such a run registers no version of ``tracking.register_as``."""
    pointer = latest_pointer(job.root, job.name)
    if not pointer.is_file() or pointer.is_symlink():
        return None
    saved = _read_pointer(pointer)[0]
    if saved is None or not _names_a_later_model(job, saved) or _names_this_folder(job, saved):
        return None
    return saved.get("as_of") or saved.get("effective_as_of")


def registration_plan(job: Job, run_id: str | None, reused: str | None) -> dict[str, Any] | None:
    """What the run does with ``tracking.register_as`` (the summary's ``registration``):
    None without it; else ``name``, ``new_version`` (True: a version is to be registered once
    the outputs are published, tagged with the run's as-of; the summary records what the
    registration did, see :func:`~forecaster.jobs.registration.register_run_model`) and
    ``reason`` (why not: the run is not tracked, ``run_id`` None, as when MLflow is
    unreachable; a reused model, whose as-of is ``reused``, which only the run that fitted
    it may have registered; or a later model the pointer and registry keep, whose as-of is
    ``latest_as_of``)."""
    name = job.spec.tracking.register_as
    if not name:
        return None
    if run_id is None:  # register_as needs tracking.enabled: MLflow unavailable (warned)
        reason = (
            "the run is not tracked (MLflow was unavailable: see the run's warning), and a "
            "version is registered only of a model logged in the run's MLflow run"
        )
        return {"name": name, "new_version": False, "reason": reason}
    if reused is not None:
        reason = (
            f"the model is reused from the run of {reused}: a version is registered by the "
            "run that fits a model (none where that run was untracked or registered none)"
        )
        return {"name": name, "new_version": False, "reason": reason}
    later = later_model_as_of(job)
    if later is not None:
        reason = (
            f"the latest model is as of {later}, later than this run's {job.when.label}: a "
            f"backfill registers no version, as it does not move models/{job.name}/latest.json"
        )
        return {"name": name, "new_version": False, "reason": reason, "latest_as_of": later}
    return {"name": name, "new_version": True, "reason": None}


def _pointer_blocker(pointer: Path) -> str | None:
    """Why the entry at ``pointer`` may not be replaced by a pointer (None: it may: nothing is
    there, or a regular file no larger than a pointer may be)."""
    try:
        info = os.lstat(pointer)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot examine {pointer} ({exc.strerror or exc})"
    if not stat.S_ISREG(info.st_mode):
        return (
            f"{pointer} is not a regular file (a link, a folder or a special file), which "
            "forecaster never replaces: move it away so that the next run can write the pointer"
        )
    if info.st_size > POINTER_LIMIT:
        return (
            f"{pointer} holds {info.st_size} bytes, more than a pointer ({POINTER_LIMIT} at "
            "most), so forecaster does not replace it: move it away so that the next run can "
            "write the pointer"
        )
    return None


def _foreign_pointer(pointer: Path) -> str | None:
    """Why an unreadable pointer is not the package's to rewrite (None: it is: its text is
    not JSON, as a write cut short leaves it, or it is a JSON object that forecaster's owner
    marks, or one of a pointer's keys alone, as older pointers were written)."""
    try:
        value = json.loads(_io.read_file_bounded(pointer, POINTER_LIMIT, what="pointer"))
    except (OSError, ForecasterError, ValueError):
        return None
    if isinstance(value, dict) and (
        value.get("owner") == _POINTER_OWNER
        or ("owner" not in value and set(value) <= _POINTER_KEYS | _POINTER_OPTIONAL)
    ):
        return None
    return (
        f"{pointer} holds JSON that is not a latest-model pointer forecaster wrote, so "
        "forecaster does not replace it: move it away so that the next run can write the pointer"
    )


def _check(pointer: Path) -> None:
    """``replace_check`` of the pointer's write (see :func:`_pointer_blocker`)."""
    blocker = _pointer_blocker(pointer)
    if blocker is not None:
        raise OwnershipError(blocker)


def _clause(text: str) -> str:
    """``text`` as a clause inside a sentence (without its final full stop)."""
    return text.strip().rstrip(".")


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
    if saved is not None and not job.same_spec(saved["spec_hash"]):
        return None  # another spec: a new model is due, nothing to report
    if saved is not None:
        model_dir = normal_path(job.root / saved["model_dir"])
        problem = _reuse_problem(job, model_dir)
        if problem is None:
            try:
                model = load_model(model_dir)
            except ForecasterError as exc:
                problem = f"the model in {model_dir} does not load ({first_line(exc)})"
            else:
                problem = _data_problem(job, model, model_dir)
                if problem is None:
                    return model, f"{REUSED}{model_dir}"
    if saved is None:  # the pointer cannot be read: the package's own file, rewritten
        blocker = _pointer_blocker(pointer)
        then = "this run rewrites it when it succeeds" if blocker is None else _clause(blocker)
        _say(
            f"not reusing the latest model: {pointer} cannot be read as a latest-model pointer "
            f"({_clause(problem or '')}); training a new one, and {then}"
        )
        return None
    _say(f"not reusing the latest model: {problem}; training a new one")
    return None


def _data_problem(job: Job, model: Any, model_dir: Path) -> str | None:
    """Why the loaded ``model`` cannot read this run's data, None when it can: a column's
    dtype changed since it was fitted (CSV ids are read as integers when every id is one, so
    a series with a text id dropping out of the source, or one appearing, changes them). The
    same instants in another time unit (a Parquet source rewritten by pandas: ns for us) are
    not a change: the model reads them, as the library's ``predict`` does
    (:func:`~forecaster.data.dtypes.align_time`)."""
    try:
        frame = align_time(job.frame, model.schema_, model.time_col)
        check_schema(frame, model.schema_, id_col=model.id_col, time_col=model.time_col)
    except DataValidationError as exc:
        what = first_line(exc).split(". ")[0]  # what differs, without the Python advice
        return f"the model in {model_dir} cannot read this run's data ({what})"
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
        if legacy is None or not job.same_spec(legacy.spec_hash):
            return f"{run} holds no outputs of this pipeline and spec"
        effective = legacy.effective_as_of
    elif not job.same_spec(manifest["details"].get("spec_hash")):
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
    warn_at_caller(message[0].upper() + message[1:] + ".", ForecasterWarning)

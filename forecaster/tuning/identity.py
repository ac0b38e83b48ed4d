"""What a study is for (its identity), recorded when it is created and checked when reused.

A study records its task, its search space, the template's other fixed parameters and the
fingerprint of its data as JSON study user attributes; a later call for another task or space
is refused, naming both, and other fixed parameters or other data give a warning. Default study
names digest the task, the space and the data's fingerprint.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import warnings
from collections.abc import Mapping
from typing import Any

import polars as pl

from forecaster._hashing import sha256_bytes, sha256_hasher
from forecaster._warnings import catching_warnings
from forecaster.data import frame_schema
from forecaster.data.frames import counted
from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    warn_at_caller,
)
from forecaster.persistence.migration import PARAMS_ADDED
from forecaster.tracking.fingerprint import dataset_fingerprint, same_data_hash
from forecaster.tuning.common import import_optuna, plain, qualname
from forecaster.tuning.conditions import RUN_PARAMS
from forecaster.tuning.space import TASK_PARAMS, UNIT_PARAMS, same_kind

__all__ = [
    "default_study_name",
    "open_study",
    "study_data",
    "study_identity",
]

_TASK_ATTR = "forecaster.task"
_SPACE_ATTR = "forecaster.search_space"
_FIXED_ATTR = "forecaster.fixed_params"
_DATA_ATTR = "forecaster.data"  # the fingerprint of the data the study was created on
# The study identity: what defines the task and the objective's units (a difference refuses
# the reuse of a study). covariates and calendar (inputs) are part of it too; lookback and the
# network and training parameters are not (they change how good a trial is, not what its value
# measures): they are recorded in _FIXED_ATTR and a difference is a warning.
# quantiles is in the identity of a quantile-loss study only (the only loss that reads it: the
# others refuse it), and static_covariates in that of a study with statics only, so that the
# names and records of other studies stay as they were.
_IDENTITY_PARAMS = (
    *TASK_PARAMS, *UNIT_PARAMS, "covariates", "future_covariates", "static_covariates",
    "calendar",
)  # fmt: skip
# Fixed parameters recorded since a later version: a study recorded without one is not warned
# about it (random_state: the refit of best_params uses this call's seed).
_RECORDED_LATER = ("random_state",)


def study_identity(
    estimator: Any,
    space: Any,
    metric: Any,
    direction: str,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """What a study is for, as JSON study user attributes: the task (estimator class, the
    parameters that define the task and the objective's units, metric, direction), the search
    space, and the template's other fixed parameters (see :data:`_IDENTITY_PARAMS`), with the
    ``overrides`` every trial fits with (the seed of ``tune(random_state=...)``). Callables
    (a metric, a search space) are named by :func:`_callable_key`."""
    params = {**estimator.get_params(deep=False), **(overrides or {})}
    task: dict[str, Any] = {"estimator": type(estimator).__name__}
    keys = [k for k in _IDENTITY_PARAMS if k in params]
    if params.get("loss") != "quantile":  # quantiles are read by the quantile loss alone
        keys = [k for k in keys if k != "quantiles"]
    if not params.get("static_covariates"):  # none: the records of studies before they were in
        keys = [k for k in keys if k != "static_covariates"]
    task.update({k: _json_value(params[k]) for k in keys})
    task["metric"] = _callable_key(metric) if callable(metric) else metric
    task["direction"] = direction
    if isinstance(space, Mapping):
        optuna = import_optuna()
        space_json: Any = {
            k: json.loads(optuna.distributions.distribution_to_json(v))
            for k, v in sorted(space.items())
        }
    else:
        space_json = {"callable": _callable_key(space)}
    sampled = set(space) if isinstance(space, Mapping) else set()
    skip = {*keys, *RUN_PARAMS, *sampled}  # run settings: neither identity nor fixed
    fixed = {k: _json_value(v) for k, v in params.items() if k not in skip}
    return {
        _TASK_ATTR: json.dumps(task, sort_keys=True),
        _SPACE_ATTR: json.dumps(space_json, sort_keys=True),
        _FIXED_ATTR: json.dumps(fixed, sort_keys=True),
    }


def _callable_key(obj: Any) -> dict[str, str]:
    """A callable's stable name: its qualified name and a digest of its code (bytecode,
    constants, names, nested functions) and of the plain values it captures (defaults,
    closure cells, ``functools.partial`` arguments, an instance's attributes). Two lambdas
    of one module differ by their code; the same function gives the same key in every process
    of one Python version (a new Python version compiles other bytecode: another key)."""
    digest = sha256_hasher()
    _digest_callable(obj, digest, 0)
    return {"name": qualname(obj), "code": digest.hexdigest()[:16]}


def _digest_callable(obj: Any, digest: Any, depth: int) -> None:
    if depth > 3:
        return
    if isinstance(obj, functools.partial):
        _digest_callable(obj.func, digest, depth + 1)
        digest.update(_stable_repr((obj.args, obj.keywords)).encode())
        return
    function = obj
    if not hasattr(obj, "__code__"):  # a callable object: its class's __call__
        found = (k.__dict__["__call__"] for k in type(obj).__mro__ if "__call__" in k.__dict__)
        function = next(found, None)
    code = getattr(function, "__code__", None)
    if code is not None:
        _digest_code(code, digest)
    defaults = getattr(function, "__defaults__", None), getattr(function, "__kwdefaults__", None)
    digest.update(_stable_repr(defaults).encode())
    for cell in getattr(function, "__closure__", None) or ():
        with contextlib.suppress(ValueError):  # an empty cell
            value = cell.cell_contents
            if callable(value) and hasattr(value, "__code__"):
                _digest_callable(value, digest, depth + 1)
            else:
                digest.update(_stable_repr(value).encode())
    if function is not obj:  # a callable object: its state too
        digest.update(_stable_repr(getattr(obj, "__dict__", None)).encode())


def _digest_code(code: Any, digest: Any) -> None:
    digest.update(code.co_code)
    digest.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _digest_code(const, digest)
        else:
            digest.update(_stable_repr(const).encode())


def _stable_repr(value: Any, depth: int = 0) -> str:
    """``repr`` of plain values (numbers, text, containers of them); a type name for anything
    whose repr would hold a memory address (different in every process)."""
    value = plain(value)
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return repr(value)
    if depth < 4 and isinstance(value, list | tuple | set | frozenset):
        items = [_stable_repr(v, depth + 1) for v in value]
        if isinstance(value, set | frozenset):
            items.sort()
        return f"{type(value).__name__}({', '.join(items)})"
    if depth < 4 and isinstance(value, dict):
        items = sorted(
            f"{_stable_repr(k, depth + 1)}: {_stable_repr(v, depth + 1)}" for k, v in value.items()
        )
        return "{" + ", ".join(items) + "}"
    text = repr(value)
    if " at 0x" in text or " object at " in text or len(text) > 1000:
        return f"<{type(value).__module__}.{type(value).__qualname__}>"
    return text


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    value = plain(value)
    return value if value is None or isinstance(value, bool | int | float | str) else repr(value)


def open_study(
    storage: Any,
    name: str,
    direction: str,
    pruner: Any,
    identity: Mapping[str, str],
    space: Any,
    url: str | None,
    data: Mapping[str, Any] | None = None,
) -> Any:
    """Create the study, or load it when it exists and is for the same task and search space
    (refused otherwise, naming both); ``data``: the :func:`study_data` of this call, recorded
    in a new study, compared with an existing one's (:func:`_compare_data`)."""
    optuna = import_optuna()
    with catching_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            storage=storage, study_name=name, direction=direction, load_if_exists=True,
            pruner=pruner,
        )  # fmt: skip
    where = f" in the storage {url!r}" if url else ""
    directions = [d.name.lower() for d in study.directions]
    if directions != [direction]:
        raise DataValidationError(
            f"The study {name!r}{where} is to {' and '.join(directions)}, not to {direction}. "
            "Use another study_name."
        )
    recorded = study.user_attrs
    missing = [key for key in (_TASK_ATTR, _SPACE_ATTR) if recorded.get(key) is None]
    if missing:
        if len(missing) == 2:
            _check_existing_space(study, space)  # a study written before the attributes existed
        for key, value in identity.items():  # those another process has not written yet
            if recorded.get(key) is None:  # (it writes them one by one)
                study.set_user_attr(key, value)
        recorded = study.user_attrs  # read again: another process may have been first
    differences = _identity_differences(recorded, identity)
    if differences:
        raise DataValidationError(
            f"The study {name!r}{where} was created for another task or search space, and its "
            f"trials cannot be mixed with this call's: {'; '.join(differences)}. Use another "
            f"study_name for this task (or delete the old study with "
            f"optuna.delete_study(study_name={name!r}, storage=...))."
        )
    _compare_fixed(study, recorded, identity[_FIXED_ATTR], identity[_TASK_ATTR], f"{name!r}{where}")
    if data is not None:
        _compare_data(study, recorded, data, f"{name!r}{where}")
    return study


def study_data(estimator: Any, data: Any) -> dict[str, Any]:
    """What a study records of the data it is created on (study user attribute
    ``forecaster.data``, JSON), and what a default study name digests: the ``hash`` of the
    :func:`~forecaster.tracking.fingerprint.dataset_fingerprint` of every column of ``data``
    (a trial of a space over covariates reads columns the template does not; as ``log_study``
    logs it), with its ``legacy_hash`` for a Categorical or Enum id, and the rows, series
    and time span that a warning shows. The same data read another way hashes the same
    (:func:`_as_hashed`): rows (the fingerprint's sum) or columns in another order, datetimes
    in another time unit."""
    roles = {k: getattr(estimator, k, None) for k in ("id_col", "time_col")}
    fingerprint = dataset_fingerprint(_as_hashed(data), **roles)
    keys = ("hash", "legacy_hash", "rows", "series", "start", "end")
    return {k: fingerprint[k] for k in keys if fingerprint.get(k) is not None}


def _as_hashed(data: Any) -> Any:
    """A polars frame ``data`` as :func:`study_data` hashes it: its columns by name (a source
    rewritten with its columns in another order holds the same data), its datetime columns in
    microseconds (``Datetime("ns")`` from pandas or a Parquet file, ``"us"`` from a CSV read:
    the same instants; a difference below a microsecond is none to a forecaster). A lazy
    frame stays lazy (the fingerprint's one pass reads it); arrays are returned as they are."""
    if not isinstance(data, pl.DataFrame | pl.LazyFrame):
        return data
    schema = frame_schema(data, what="data")
    return data.select(
        pl.col(name).dt.cast_time_unit("us") if isinstance(schema[name], pl.Datetime) else name
        for name in sorted(schema.names())
    )


def _compare_data(
    study: Any, recorded: Mapping[str, Any], data: Mapping[str, Any], shown: str
) -> None:
    """Warn when the study was created on other data than ``data`` (:func:`study_data`): its
    trials and best value were measured on that data. A study without the record (created
    before it was kept) gets this call's, with a warning when it has finished trials (on data
    that was not recorded)."""
    optuna = import_optuna()
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    n_finished = len(study.get_trials(deepcopy=False, states=states))
    finished = counted(n_finished, "trial", "trials")
    old_text = recorded.get(_DATA_ATTR)
    if old_text is None:
        study.set_user_attr(_DATA_ATTR, json.dumps(dict(data), sort_keys=True))
        if n_finished:
            warn_at_caller(
                f"The study {shown} was created by an earlier version, which did not record "
                f"its data: its finished {finished} may have been measured on other data than "
                f"this call's ({_describe_data(data)}), now recorded as the study's. Use "
                "another study_name (or the default) to tune on this data from scratch.",
                ForecasterWarning,
            )
        return
    try:
        old = json.loads(old_text)
    except (TypeError, ValueError):
        old = {}
    old = old if isinstance(old, dict) else {}
    if same_data_hash(old.get("hash"), data):
        return
    warn_at_caller(
        f"The study {shown} was created on other data ({_describe_data(old)}) than this "
        f"call's ({_describe_data(data)}). Its finished {finished} and its best value were "
        "measured on that data: the best trial may be one of them (its best_params refitted on "
        "this call's data). To tune on this data from scratch, leave "
        "study_name out (the default name is this data's own study) or use another one, or "
        f"delete the old study with optuna.delete_study(study_name={study.study_name!r}, "
        "storage=...).",
        ForecasterWarning,
    )


def _describe_data(data: Mapping[str, Any]) -> str:
    """``320 rows, 2 series from 0 to 159, hash 1a2b3c4d5e`` of a :func:`study_data`."""
    text = f"{data.get('rows', '?')} rows"
    if data.get("series") is not None:
        text += f", {data['series']} series"
    if data.get("start") is not None:
        text += f" from {data['start']} to {data.get('end')}"
    return f"{text}, hash {str(data.get('hash', '?'))[:10]}"


def _compare_fixed(
    study: Any, recorded: Mapping[str, Any], fixed: str, task: str, shown: str
) -> None:
    """Warn when the template's fixed parameters (not sampled, not part of the identity)
    differ from those the study was created with: its earlier trials were measured in the same
    units but with other settings. A study without the record gets this call's; a parameter
    added since the study was recorded (:data:`~forecaster.persistence.migration.PARAMS_ADDED`)
    counts as the value it had before, e.g. ``target_feature=0``."""
    old_text = recorded.get(_FIXED_ATTR)
    if old_text is None:
        study.set_user_attr(_FIXED_ATTR, fixed)
        return
    try:
        old = json.loads(old_text)
    except (TypeError, ValueError):
        old = {}
    new = json.loads(fixed)
    if not isinstance(old, dict):
        old = {}
    for key in json.loads(task):  # compared with the task (a study recorded before it was in it)
        old.pop(key, None)
    for key in _RECORDED_LATER:  # not recorded by the version that created the study
        if key not in old:
            new.pop(key, None)
    for key, before in PARAMS_ADDED.items():  # a parameter added since: the study's trials
        if key in new and key not in old:  # were fitted with the value older versions had
            old[key] = before
    changed = [
        f"{k}: the study has {_show(old[k]) if k in old else 'none'}, this call "
        f"{_show(new[k]) if k in new else 'none'}"
        for k in sorted(set(old) | set(new))
        if old.get(k, ...) != new.get(k, ...)
    ]
    if changed:
        shown_changes = "; ".join(changed[:8]) + (
            f"; and {len(changed) - 8} more" if len(changed) > 8 else ""
        )
        warn_at_caller(
            f"The study {shown} was created with other fixed parameters ({shown_changes}). Its "
            "earlier trials were fitted with the old values: their losses are in the same units "
            "but the best trial may be one of them, and best_params are refitted with this "
            "call's values. Use another study_name to keep the two apart.",
            ForecasterWarning,
        )


def _identity_differences(recorded: Mapping[str, Any], identity: Mapping[str, str]) -> list[str]:
    """What differs between a study's recorded task and space and this call's, one item per
    key: ``"horizon: the study has 6, this call 12"``."""

    def parse(text: Any) -> dict[str, Any]:
        try:
            value = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            value = None
        return value if isinstance(value, dict) else {"(unreadable)": text}

    out = []
    legacy = parse(recorded.get(_FIXED_ATTR, "{}"))  # a study recorded before a key moved
    for key, label in ((_TASK_ATTR, ""), (_SPACE_ATTR, "search space ")):
        old, new = parse(recorded.get(key)), parse(identity[key])
        if key == _TASK_ATTR:  # e.g. quantiles, a fixed parameter before it was a unit one
            moved = [k for k in _IDENTITY_PARAMS if k in new or legacy.get(k)]  # (set: statics)
            old.update({k: legacy[k] for k in moved if k not in old and k in legacy})
        for name in sorted(set(old) | set(new), key=str):
            if name not in new or name not in old or old[name] != new[name]:
                before = _show(old[name]) if name in old else "none"
                after = _show(new[name]) if name in new else "none"
                out.append(f"{label}{name}: the study has {before}, this call {after}")
    if len(out) > 8:
        out = [*out[:8], f"and {len(out) - 8} more"]
    return out


def _show(value: Any) -> str:
    if isinstance(value, dict) and "name" in value and "attributes" in value:  # a distribution
        attributes = ", ".join(f"{k}={v!r}" for k, v in value["attributes"].items())
        return f"{value['name']}({attributes})"
    if isinstance(value, dict) and set(value) == {"name", "code"}:  # a callable
        return f"{value['name']} (code {value['code']})"
    return repr(value)


def _check_existing_space(study: Any, space: Any) -> None:
    if not isinstance(space, Mapping):
        return
    optuna = import_optuna()
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    for trial in study.get_trials(deepcopy=False, states=states):
        for pname, old in trial.distributions.items():
            if pname in space and not same_kind(old, space[pname]):
                raise DataValidationError(
                    f"The study {study.study_name!r} sampled {pname!r} from {old!r}, and this "
                    f"search space has {space[pname]!r}: a study keeps the kind and categorical "
                    "choices of each parameter. Use a new study_name for the new space."
                )


def default_study_name(
    estimator: Any,
    space: Any,
    metric: Any,
    direction: str,
    data: Mapping[str, Any] | None = None,
) -> str:
    """``<class>-<target>-h<horizon>-<digest>``: the digest covers the study identity (task,
    units, metric, direction and search space: see :func:`study_identity`), so a call that
    would be refused on a named study gets a study of its own, and the ``hash`` of ``data``
    (:func:`study_data`), so a call on other data (a named study warns of it) gets one too."""
    params = estimator.get_params(deep=False)
    identity = study_identity(estimator, space, metric, direction)
    key = {k: identity[k] for k in (_TASK_ATTR, _SPACE_ATTR)}
    if data is not None:
        key[_DATA_ATTR] = data["hash"]
    digest = sha256_bytes(json.dumps(key, sort_keys=True).encode())
    target = params.get("target")
    target = target if isinstance(target, str) or target is None else "+".join(map(str, target))
    label = re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(target))[:40] if target is not None else ""
    horizon = f"h{params['horizon']}" if "horizon" in params else ""
    parts = [type(estimator).__name__, label, horizon]
    return "-".join(p for p in parts if p) + "-" + digest[:10]

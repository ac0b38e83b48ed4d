"""The spec hash: which version of a pipeline's spec made an output, a model or a study.

:func:`spec_hash` is a short content hash of the validated spec, the same on every operating
system (``docs/pipelines.md`` lists what it covers). :func:`spec_hashes` adds the hash the
spec had before cosmetic edits stopped changing it (its ``description`` included, its paths
as written): what an output, ``latest.json`` or study of that version recorded is still the
same spec's (:func:`same_spec`), so an upgrade retrains nothing and restarts no study.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any, NamedTuple

from forecaster._hashing import sha256_bytes
from forecaster.jobs.spec import ESTIMATORS, Spec, TrainingSpec, sqlite_file

__all__ = ["SpecHashes", "same_spec", "spec_hash", "spec_hashes"]

_LATER_KEYS: dict[tuple[str, str], Any] = {
    ("output", "levels"): None,
    ("training", "objective"): "val_loss",
    ("series", "static_covariates"): [],
    ("series", "max_staleness"): None,
    ("series", "stale"): "exclude",
    ("series", "holidays"): [],
    ("source", "decimal_comma"): False,
}
"""Keys added after the first release, with their defaults: left out of :func:`spec_hash` when
a spec keeps the default, so a spec without them keeps the hash it always had."""

_PATH_KEYS = (("source", "path"), ("output", "dir"), ("model", "checkpoint_dir"))


class SpecHashes(NamedTuple):
    """The hash of a spec (:func:`spec_hash`), and the one it had before the description and
    the way its paths are written were left out (the same when neither changes it)."""

    current: str
    legacy: str


def spec_hash(spec: Spec) -> str:
    """A short content hash of the validated spec: keys at their default value, the
    documentation-only ``pipeline.description`` and, when ``training.tune`` is false, the
    tuning budget ``trials`` / ``timeout`` leave it be; paths count as normalised (``./a//b``
    and ``a\\b`` are ``a/b``, the same on every operating system). ``docs/pipelines.md``
    lists what the hash covers."""
    data = _hashed(spec)
    data["pipeline"]["description"] = ""  # what the spec says of itself changes no result
    if spec.features.log_returns:  # absent business days: return 0 since 2026-12 (not the
        data["features"]["absent_days_return"] = 0  # day before's): other data than before
    if not spec.training.tune:  # read only by --tune and forecaster tune (not in the hash)
        data["training"].update(trials=TrainingSpec().trials, timeout=TrainingSpec().timeout)
    for section, key in _PATH_KEYS:
        if isinstance(data[section].get(key), str):
            data[section][key] = _normal(data[section][key])
    file = sqlite_file(spec.training.storage)
    if file is not None:  # the file of a sqlite:/// URL, as storage_url reads it
        scheme, rest = spec.training.storage.split(":///", 1)
        data["training"]["storage"] = f"{scheme}:///{_normal(file)}{rest[len(file) :]}"
    return _digest(data)


def spec_hashes(spec: Spec) -> SpecHashes:
    """:func:`spec_hash`, and the spec's legacy hash: computed as before forecaster left the
    description, the tuning budget of a spec that does not tune and the way paths are written
    out of it (every bundled spec has a description: each got a new hash with the upgrade).
    A spec with ``[features] log_returns`` has no legacy hash (the current one twice): the same
    upgrade gave the business days its source lacks a return of 0 (they repeated the day
    before's), so its earlier outputs, models and studies were made from other data."""
    current = spec_hash(spec)
    return SpecHashes(current, current if spec.features.log_returns else _digest(_hashed(spec)))


def same_spec(recorded: object, hashes: SpecHashes) -> bool:
    """Whether a hash an output, a pointer or a study recorded is the spec's (its current or
    its legacy hash)."""
    return isinstance(recorded, str) and recorded in hashes


def _hashed(spec: Spec) -> dict[str, Any]:
    """The spec as JSON, without the later keys and the ``[model]`` keys at their default."""
    data = spec.model_dump(mode="json")
    for (section, key), default in _LATER_KEYS.items():
        if data[section][key] == default:
            del data[section][key]
    data["model"] = _model_without_defaults(data["model"])
    return data


def _digest(data: dict[str, Any]) -> str:
    return sha256_bytes(json.dumps(data, sort_keys=True).encode())[:12]


def _normal(path: str) -> str:
    """``path`` normalised the same way on every operating system: ``\\`` read as ``/`` (a
    spec written on Windows), then POSIX rules (``os.path`` on Windows would turn every ``/``
    into ``\\``)."""
    return posixpath.normpath(path.replace("\\", "/"))


def _model_without_defaults(model: dict[str, Any]) -> dict[str, Any]:
    """``[model]`` without the keys at the estimator's default (``dropout = 0.1``: no key)."""
    params = ESTIMATORS[model.get("estimator", "RNNForecaster")]().get_params()
    defaults = {**json.loads(json.dumps(params, default=str)), "estimator": "RNNForecaster"}

    def same(value: Any, default: Any) -> bool:  # True == 1, but a bool is no int's default
        return value == default and isinstance(value, bool) == isinstance(default, bool)

    return {k: v for k, v in model.items() if not (k in defaults and same(v, defaults[k]))}

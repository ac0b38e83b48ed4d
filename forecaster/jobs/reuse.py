"""The checks on a saved model passed to ``--model`` (``forecaster forecast``, ``backtest``
and ``score``), and what a pipeline records with the models it saves so they can be checked.

A saved model is reused only for the data it was made for: :func:`check_model_matches_spec`
refuses one fitted from other targets, columns, frequency, missing-value policy, horizon or
``[features]`` (:func:`data_provenance`, :func:`features_differ`), and
:func:`check_fitted_before` one fitted on data after the time the forecast (or the first
backtest fold) starts from, whose results would be in-sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from forecaster.evaluation.origins import uses_calendar
from forecaster.exceptions import ArgumentError, ForecasterWarning, warn_at_caller
from forecaster.jobs.data import iso_text
from forecaster.jobs.spec import SERIES_KEYS, FeaturesSpec, Spec, build_estimator
from forecaster.persistence import saved_provenance

__all__ = [
    "check_fitted_before",
    "check_model_matches_spec",
    "data_provenance",
    "features_differ",
]


def check_fitted_before(model: Any, history: pl.DataFrame, folder: str, origin: str) -> None:
    """Refuse (``ArgumentError`` naming ``--model``) a saved ``model`` (from ``folder``) that
    was fitted on data after ``history``, the data the forecast starts from (``origin``: "the
    as-of ..." or "the first backtest fold"): it has seen what followed, so its forecast (or
    backtest) would be in-sample. Date and datetime series share one calendar: a model
    fitted on any series (one missing from ``history`` too) past the last time of
    ``history`` is refused, as a global model has seen that period of every series (the
    rule of ``score`` and ``backtest``, :func:`~forecaster.evaluation.fitted.in_sample_ends`);
    integer steps (independent sequences): a series fitted past its own last time there. A
    model that does not record its last fitted times (``train_end_``, saved by an old
    version) gets a warning. The rule of ``training.reuse_model`` (a backfill must not see
    later data), read from the model's own ``train_end_``."""
    ends = model.__dict__.get("train_end_")
    if ends is None:
        warn_at_caller(
            f"The model in {folder} does not record the last time of the data it was fitted "
            f"on (saved by an older forecaster), so it may have seen data after {origin}. "
            "Fit it again to have this checked.",
            ForecasterWarning,
        )
        return
    time_col, id_col = model.time_col, model.id_col
    if id_col is None or uses_calendar("auto", history[time_col]):  # one calendar: the as-of
        ids = [None] if id_col is None else model.keys_[model.keys_.columns[0]].to_list()
        table = pl.DataFrame({"id": ids, "end": ends}, strict=False).with_columns(
            pl.lit(history[time_col].max()).alias("last")
        )
    else:
        table = history.group_by(id_col).agg(pl.col(time_col).max().alias("last"))
        table = table.rename({id_col: "id"}).with_columns(
            model.train_end_of(table[id_col]).alias("end")
        )
        table = table.filter(pl.col("end").is_not_null())
    dtype = history.schema[time_col]
    later = table.filter(pl.col("end").cast(dtype, strict=False) > pl.col("last"))
    if later.height == 0:
        return
    latest = later.sort("end", "id", descending=[True, False])
    key, end, last = latest.select("id", "end", "last").row(0)
    last, end = iso_text(last), iso_text(end)  # as the CLI reads them back (no space)
    which = "" if id_col is None else f" of {later.height} series (e.g. {key!r})"
    raise ArgumentError(
        f"argument --model ({folder}): the model was fitted on data{which} up to {end}, after "
        f"{origin} (data up to {last}): it has seen what followed, so its results would be "
        f"in-sample (a backfill must not see later data). Fit a model on the data up to then "
        f"(forecaster fit SPEC --as-of {last}) and pass it, or leave out --model."
    )


def check_model_matches_spec(model: Any, spec: Spec, folder: str) -> None:
    """Refuse (``ArgumentError`` naming ``--model``) a saved ``model`` (from ``folder``) that
    describes other data than ``spec``: other targets, columns, frequency, missing-value
    policy or horizon (its forecasts would be written and scored as the spec's). Training
    parameters (``lookback``, ``hidden_size``, a tuned ``lr``, ...) may differ."""
    expected = build_estimator(spec, False).get_params()
    saved = model.get_params()
    keys = {**SERIES_KEYS, "horizon": "model.horizon"}

    def plain(value: Any) -> Any:  # "y" and ["y"], None and [], [a, b] and [b, a]: the same
        if value is None or isinstance(value, str | list | tuple):  # columns (read by name)
            return sorted([value] if isinstance(value, str) else list(value or []))
        return value

    differ = [p for p in keys if p in saved and plain(saved[p]) != plain(expected.get(p))]
    _check_features(folder, spec)
    if differ:
        found = ", ".join(f"{p}={saved[p]!r}" for p in differ)
        wanted = ", ".join(f"{keys[p]} = {expected.get(p)!r}" for p in differ)
        raise _other_model(
            folder, f"with {found}", f"has {wanted}", "its forecasts would be written and "
            "scored as this spec's",
        )  # fmt: skip


def data_provenance(spec: Spec) -> dict[str, Any]:
    """What a pipeline records with the models it saves (``provenance``): its ``[features]``
    that change what the target columns hold (``log_returns``, ``mfcc``), not how much
    history is read (``history_days``)."""
    return {"features": _features_record(spec.features)}


def _features_record(features: FeaturesSpec) -> dict[str, Any]:
    record = features.model_dump(exclude={"history_days"})
    record["log_returns"] = sorted(record["log_returns"])
    return record


def features_differ(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """The ``[features]`` keys whose recorded value (:func:`data_provenance`) is not the
    wanted one; a key a model's record lacks (added to the spec since) counts as its default,
    so models saved before a new key stay usable where the key is left at its default."""
    defaults = _features_record(FeaturesSpec())
    return sorted(
        k for k in {*recorded, *wanted} if recorded.get(k, defaults.get(k)) != wanted.get(k)
    )


def _check_features(folder: str, spec: Spec) -> None:
    """Refuse a model saved by a pipeline whose ``[features]`` made its data otherwise than
    ``spec``'s (a model saved without a record of them is not checked)."""
    recorded = (saved_provenance(folder) or {}).get("features")
    if not isinstance(recorded, dict):
        return
    wanted = data_provenance(spec)["features"]
    differ = features_differ(recorded, wanted)
    if differ:
        found = ", ".join(f"{k}={recorded.get(k)!r}" for k in differ)
        given = ", ".join(f"{k}={wanted.get(k)!r}" for k in differ)
        raise _other_model(
            folder, f"on data made with [features] {found}", f"makes them with {given}",
            "the same columns would hold other values",
        )  # fmt: skip


def _other_model(folder: str, fitted: str, spec: str, consequence: str) -> ArgumentError:
    """The refusal of a ``--model`` from ``folder`` made for other data than the spec's."""
    return ArgumentError(
        f"argument --model: the model in {folder} was fitted {fitted}, but the spec {spec}: "
        f"{consequence}. Give --model a model fitted from this spec (forecaster fit SPEC), or "
        "leave out --model."
    )

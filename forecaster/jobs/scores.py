"""The scores a spec may name: ``[evaluation] metrics`` and the tuning objective
``training.objective``, checked against ``[output] levels`` and the model before any data is
read.

``[evaluation] metrics``
    Point scores (``mae``, ``rmse``, ``mse``, ``mape``, ``smape``, ``mase``) and the scores of
    the prediction intervals of ``[output] levels``: ``coverage_<L>``, ``width_<L>``,
    ``winkler_<L>``, ``msis_<L>`` for a level ``L`` listed in ``levels`` (written as in
    ``levels``: ``coverage_80``, ``coverage_80.0`` and ``coverage_080`` are one score, named
    ``coverage_80``), and ``pinball`` / ``scrps`` (pinball loss averaged over the quantiles and
    the scaled CRPS), which need ``levels``. A per-level score of a level not in ``levels``,
    or ``pinball`` / ``scrps`` without ``levels``, is a ``SpecError`` naming the key. With
    ``levels`` every per-level score of every level is computed (as before); listing them only
    checks them. ``pinball`` and ``scrps`` are computed when listed (each in the summary and
    the score tables only when listed: :func:`listed_scores_only`): over the model's own
    quantiles for a quantile model (``[model] loss = "quantile"``); for a point model, over
    its conformal quantiles at the levels' bounds and 0.5 (the point plus the split-conformal
    quantile of the calibration's signed residuals: ``predict(quantiles=...)``'s columns), not
    over the published symmetric bounds ``<target>_lo_<L>`` / ``_hi_<L>`` and the point,
    whose pinball loss is exactly ``(sum_L (1 - L/100)/2 * winkler_L + mae/2) / (2 n_L + 1)``
    (scored already) and which the baselines' pinball, of their signed conformal quantiles,
    would not match (docs/pipelines.md). ``backtest --level`` replaces the levels:
    :func:`check_given_levels` refuses levels that leave out a listed per-level score.
``training.objective``
    What ``run --tune`` and ``forecaster tune`` minimise: ``"val_loss"`` (the default, the best
    validation loss) or a probabilistic score of a quantile model on its validation span
    (:mod:`forecaster.tuning.scores`): ``pinball``, ``scrps``, ``winkler_<L>`` or ``msis_<L>``
    for a level of ``levels``. Lower is better for each. Coverage and width are refused as
    objectives: the widest intervals cover best and the narrowest are the thinnest, so
    neither alone ranks models (the Winkler score and MSIS weigh one against the other). A
    point model has no quantiles while it is tuned (its intervals come from the calibration
    after the fit), so a probabilistic objective needs ``loss = "quantile"``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from forecaster._validation import MIN_LEVEL
from forecaster.estimators.forecaster import DEFAULT_QUANTILES, RNNForecaster
from forecaster.evaluation.array_metrics import METRICS
from forecaster.evaluation.intervals import INTERVAL_METRICS, level_bounds
from forecaster.evaluation.score_names import BASELINES, INTERVAL_COUNTS
from forecaster.exceptions import ArgumentError, SpecError
from forecaster.tracking.records import backtest_key, target_key_parts

__all__ = [
    "LEVEL_SCORES",
    "OBJECTIVES",
    "POINT_METRICS",
    "QUANTILE_SCORES",
    "backtest_metrics",
    "backtest_scores",
    "check_given_levels",
    "check_levels",
    "check_scores",
    "is_quantile_model",
    "level_quantiles",
    "listed_scores_only",
    "metric_name",
    "model_quantiles",
    "objective_name",
    "point_metrics",
    "score_level",
    "score_lines",
    "score_quantiles",
]

POINT_METRICS = METRICS
"""The point scores of ``[evaluation] metrics``."""

QUANTILE_SCORES = ("pinball", "scrps")
"""Scores of quantile forecasts (they need ``[output] levels``)."""

LEVEL_SCORES = INTERVAL_METRICS
"""Scores of one interval, named ``<score>_<level>``."""

OBJECTIVES = ("val_loss", "pinball", "scrps", "winkler_<L>", "msis_<L>")
"""What ``training.objective`` may be (``<L>`` a level of ``[output] levels``)."""


_PER_LEVEL = re.compile(rf"({'|'.join(LEVEL_SCORES)})_(\d+(?:\.\d*)?)")

_METRIC_HINT = (
    f"expected one of {list(POINT_METRICS)}, {list(QUANTILE_SCORES)}, or a score of a level of "
    f"[output] levels: {', '.join(f'{s}_<L>' for s in LEVEL_SCORES)} (e.g. coverage_80)"
)


def metric_name(value: Any) -> str:
    """A name of ``[evaluation] metrics``, a per-level score written as ``<score>_<L:g>``;
    ``ValueError`` (pydantic's message) for anything else."""
    if not isinstance(value, str):
        raise ValueError(f"{_METRIC_HINT}, got {type(value).__name__} {value!r}")
    if value in POINT_METRICS or value in QUANTILE_SCORES:
        return value
    match = _PER_LEVEL.fullmatch(value)
    if match is None:
        raise ValueError(f"{_METRIC_HINT}, got {value!r}")
    level = float(match.group(2))
    if not MIN_LEVEL < level < 100:
        raise ValueError(f"{_METRIC_HINT}; the level of {value!r} is not in (1, 100)")
    return f"{match.group(1)}_{level:g}"


def score_level(name: str) -> float | None:
    """The level of a per-level score name (``"msis_80"`` -> 80.0), else None."""
    match = _PER_LEVEL.fullmatch(name)
    return None if match is None else float(match.group(2))


def point_metrics(metrics: list[str]) -> list[str]:
    """The point scores among ``metrics`` (what :func:`forecaster.evaluation.backtest.backtest`
    takes as ``metrics``)."""
    return [m for m in metrics if m in POINT_METRICS]


def backtest_metrics(spec: Any) -> list[str]:
    """The ``metrics`` of a run's backtest: the point scores of ``[evaluation] metrics``, or
    MAE when it lists none (the interval scores come with the levels)."""
    return point_metrics(spec.evaluation.metrics) or ["mae"]


def level_quantiles(levels: Any) -> list[float]:
    """The quantiles bounding the intervals of ``levels`` (percent): ``(1 - L/100)/2`` and
    ``1 - (1 - L/100)/2`` (80 -> 0.1 and 0.9), rounded to 10 decimals."""
    return sorted({round(q, 10) for level in levels for q in level_bounds(float(level))})


def is_quantile_model(spec: Any) -> bool:
    """Whether the spec's model emits quantiles (``[model] loss = "quantile"``)."""
    return spec.model.get("loss") == "quantile"


def model_quantiles(params: dict[str, Any]) -> list[float]:
    """The quantiles a quantile model with the parameters ``params`` emits."""
    quantiles = params.get("quantiles")
    return [float(q) for q in (quantiles if quantiles is not None else DEFAULT_QUANTILES)]


def score_quantiles(spec: Any, model: Any) -> list[float] | None:
    """The quantiles a backtest of ``spec`` with ``model`` forecasts for ``pinball`` /
    ``scrps`` (None when neither is in ``[evaluation] metrics`` or no level is asked): a
    quantile model's own, else the levels' bounds and the median, which a point model
    forecasts as its conformal quantiles (the point plus the conformal quantile of its signed
    residuals), not as its published symmetric interval bounds and point (see the module
    docstring)."""
    levels = spec.output.levels
    if not levels or not set(QUANTILE_SCORES) & set(spec.evaluation.metrics):
        return None
    params = model.get_params(deep=False)
    if params.get("loss") == "quantile":
        return model_quantiles(params)
    return sorted({*level_quantiles(levels), 0.5})


def check_levels(file: Path, spec: Any) -> None:
    """A quantile model's intervals are read from its quantiles: every level's bounds must be
    among them."""
    levels = spec.output.levels
    if levels is None or not is_quantile_model(spec):
        return
    quantiles = model_quantiles(spec.model)
    missing = [q for q in level_quantiles(levels) if q not in {round(q, 10) for q in quantiles}]
    if missing:
        raise SpecError(
            f"{file}: key 'output.levels': the levels {[f'{v:g}' for v in levels]} need the "
            f'quantiles {[f"{q:g}" for q in missing]}, which the model (loss = "quantile") '
            f"does not emit (its quantiles: {[f'{q:g}' for q in quantiles]}). Add them to "
            "'model.quantiles' (e.g. [0.025, 0.1, 0.5, 0.9, 0.975] for levels = [80, 95])."
        )


def _shown(levels: Any) -> str:
    return "not set" if levels is None else f"{[f'{v:g}' for v in levels]}"


def check_scores(file: Path, spec: Any) -> None:
    """``[evaluation] metrics`` and ``training.objective`` against ``[output] levels`` and the
    model (see the module docstring); ``SpecError`` naming the file and the key."""
    levels = spec.output.levels
    have = {float(v) for v in levels or ()}
    for name in spec.evaluation.metrics:
        level = score_level(name)
        if name in QUANTILE_SCORES and levels is None:
            raise SpecError(
                f"{file}: key 'evaluation.metrics': {name!r} scores quantile forecasts, which "
                "a run makes only for prediction intervals, and [output] levels is not set. "
                "Add e.g. levels = [80, 95] to [output], or drop it from the metrics."
            )
        if level is not None and level not in have:
            raise SpecError(
                f"{file}: key 'evaluation.metrics': {name!r} scores the {level:g} % interval, "
                f"and [output] levels is {_shown(levels)}. Add {level:g} to [output] levels, "
                f"or drop {name!r} from the metrics."
            )
    _check_objective(file, spec, have)


def check_given_levels(spec: Any, levels: list[float]) -> None:
    """Refuse (``ArgumentError`` naming ``--level``) the levels given on the command line when
    ``[evaluation] metrics`` lists a per-level score of a level not among them: the backtest
    scores only the levels it is given, so the score would be left out without a word (the
    spec's own ``[output] levels`` were checked at load by :func:`check_scores`)."""
    have = {float(v) for v in levels}
    scored = {name: score_level(name) for name in spec.evaluation.metrics}
    unscored = [name for name, level in scored.items() if level is not None and level not in have]
    if not unscored:
        return
    missing = sorted({level for level in scored.values() if level is not None} - have)
    several = len(unscored) > 1
    intervals = " and ".join(f"{v:g} %" for v in missing) + (
        " intervals" if len(missing) > 1 else " interval"
    )
    raise ArgumentError(
        f"argument --level: key 'evaluation.metrics' lists {', '.join(map(repr, unscored))}, "
        f"{'scores' if several else 'a score'} of the {intervals}, and --level asks for the "
        f"levels {_shown(levels)} only (they replace the spec's [output] levels, "
        f"{_shown(spec.output.levels)}), so {'they' if several else 'it'} would not be scored. "
        f"Add {' '.join(f'--level {v:g}' for v in missing)}, leave out --level (the spec's "
        f"levels), or drop {'them' if several else 'it'} from evaluation.metrics."
    )


def _check_objective(file: Path, spec: Any, have: set[float]) -> None:
    objective = spec.training.objective
    if objective == "val_loss":
        return
    kind = objective.split("_", 1)[0]
    if kind in ("coverage", "width"):
        raise SpecError(
            f"{file}: key 'training.objective': {objective!r} cannot rank models: the widest "
            "intervals cover best and the narrowest are the thinnest. Use a score that weighs "
            "coverage against width: " + _objective_hint(spec) + "."
        )
    level = score_level(objective)
    if level is not None and level not in have:
        raise SpecError(
            f"{file}: key 'training.objective': {objective!r} scores the {level:g} % interval, "
            f"and [output] levels is {_shown(spec.output.levels)}. Add {level:g} to [output] "
            "levels, or choose another objective."
        )
    if not is_quantile_model(spec):
        raise SpecError(
            f"{file}: key 'training.objective': {objective!r} scores the quantile forecasts "
            f"of the tuning trials, and the model emits none (loss = "
            f"{spec.model.get('loss', RNNForecaster().loss)!r}; a point model's intervals come "
            'from its calibration after the fit). Set [model] loss = "quantile", or tune on '
            "objective = 'val_loss'."
        )
    # validation_size = 0: refused where the spec tunes, by tune's one rule for every
    # objective (forecaster.jobs.fitting.search_plan), not here


def _objective_hint(spec: Any) -> str:
    levels = spec.output.levels or [80.0]
    return f"'winkler_{levels[0]:g}', 'msis_{levels[0]:g}', 'pinball' or 'scrps'"


def objective_name(value: Any) -> str:
    """A ``training.objective``: ``"val_loss"`` or a score name of :func:`metric_name` that
    is not a point score; ``ValueError`` (pydantic's message) for anything else."""
    expected = (
        f"expected one of {list(OBJECTIVES)} (<L> a level of [output] levels, e.g. "
        "'winkler_80'); a point score is not a tuning objective (tune on 'val_loss')"
    )
    if value == "val_loss":
        return value
    if not isinstance(value, str) or value in POINT_METRICS:
        raise ValueError(f"{expected}, got {value!r}")
    try:
        return metric_name(value)
    except ValueError:
        raise ValueError(f"{expected}, got {value!r}") from None


def backtest_scores(spec: Any, result: Any) -> dict[str, float]:
    """``backtest_<name>``: each point score of ``[evaluation] metrics`` of the backtest
    ``result``'s target over all its folds, series and steps, followed by its baselines'
    scores and skill ratios on the same points (``backtest_<name>_naive``,
    ``backtest_<name>_skill_naive`` and, with ``seasonality > 1``, ``_snaive`` and
    ``_skill_snaive``: see :func:`forecaster.evaluation.backtest.backtest`; a skill ratio is
    left out where the baseline's score is 0), then the interval scores it computed: every
    per-level score (``coverage_80``, ...) of every level, and ``pinball`` and ``scrps`` each
    only when listed (the backtest computes both from the same quantiles), and with them the
    counts of the points the baselines' interval scores are over
    (``backtest_n_interval_naive``, ``_snaive``: of
    :data:`~forecaster.evaluation.score_names.INTERVAL_COUNTS`; fewer than the model's where
    an origin's history is too short for the baseline's intervals). With several
    targets, each target's own scores, ``backtest_<target>_<name>`` (the target as its MLflow
    keys write it, :func:`~forecaster.tracking.records.target_key_parts`): targets of other
    units are never pooled or averaged into one score."""
    listed = spec.evaluation.metrics
    overall = result.aggregate  # one row per target
    names = [f"{n}{suffix}" for n in point_metrics(listed) for suffix in ("", *_BASELINE_SUFFIXES)]
    intervals = [n for n in overall.columns if score_level(n) is not None]
    intervals += [n for n in QUANTILE_SCORES if n in listed and n in overall.columns]
    counts = [n for n in INTERVAL_COUNTS if n in overall.columns] if intervals else []
    names = [n for n in names if n in overall.columns] + intervals + counts
    targets = overall["target"].to_list()
    parts = target_key_parts(targets) if len(targets) > 1 else {}
    return {
        backtest_key(name, parts.get(row["target"])): float(row[name])
        for row in overall.iter_rows(named=True)
        for name in names
        if row[name] is not None
    }


_BASELINE_SUFFIXES = tuple(f"_{skill}{base}" for base in BASELINES for skill in ("", "skill_"))


def listed_scores_only(spec: Any, result: Any) -> Any:
    """The backtest ``result`` without the columns of ``pinball`` or ``scrps`` where
    ``[evaluation] metrics`` does not list it (nor its baselines' scores and skill ratios,
    ``pinball_naive``, ``pinball_skill_naive``, ...) in its score tables (``metrics``,
    ``by_step``, ``aggregate``, ``baselines``): the backtest computes both from the same
    quantiles, and the tables a run and ``forecaster backtest`` write (``backtest.parquet``,
    ``backtest_by_step.parquet``) hold what the spec lists, as the summary does
    (:func:`backtest_scores`)."""
    listed = spec.evaluation.metrics
    unlisted = {
        f"{name}{suffix}"
        for name in QUANTILE_SCORES
        if name not in listed
        for suffix in ("", *_BASELINE_SUFFIXES)
    }

    def kept(frame: Any) -> Any:
        return frame.drop([c for c in frame.columns if c in unlisted])

    return dataclasses.replace(
        result,
        metrics=kept(result.metrics),
        by_step=kept(result.by_step),
        aggregate=kept(result.aggregate),
        baselines=kept(result.baselines),
    )


def score_lines(metrics: dict[str, float]) -> list[tuple[str, str]]:
    """``(name, text)`` per score of a run's ``metrics``, with the baselines' scores and skill
    ratios in the text of their score rather than on lines of their own: ``("backtest_mase",
    "5.234 (naive 5.1, skill 1.026)")``. Skill is the model's score over the baseline's on
    the points the baseline forecast (below 1: the model is better): not the ratio of the two
    scores shown where the seasonal naive lacks some (origins with fewer than ``m`` values).

    Examples
    --------
    >>> score_lines({"backtest_mae": 2.0, "backtest_mae_naive": 1.6,
    ...              "backtest_mae_skill_naive": 1.25})
    [('backtest_mae', '2 (naive 1.6, skill 1.250)')]
    """
    rows = []
    for key, value in metrics.items():
        if any(key.endswith(s) and key[: -len(s)] in metrics for s in _BASELINE_SUFFIXES):
            continue
        parts = []
        for base in BASELINES:
            if f"{key}_{base}" in metrics:
                shown, skill = metrics[f"{key}_{base}"], metrics.get(f"{key}_skill_{base}")
                ratio = f", skill {skill:.3f}" if skill is not None else ""
                parts.append(f"{base} {shown:.4g}{ratio}")
        rows.append((key, f"{value:.4g}" + (f" ({'; '.join(parts)})" if parts else "")))
    return rows

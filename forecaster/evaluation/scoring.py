"""Frame metrics (Polars in, Polars out): :func:`evaluate` scores a long forecast frame
against the actual values per series and target (MASE scaled by each series' in-sample
history, errors optionally divided by :func:`error_scale_frame`)."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from forecaster._columns import temporary_names
from forecaster._validation import Real, check, describe_value
from forecaster.data.checks import check_values
from forecaster.data.frames import SERIES_ID, id_order
from forecaster.data.validate import validate_frame
from forecaster.evaluation.array_metrics import mase_scales
from forecaster.evaluation.frames import (
    TARGET_COLUMN,
    PointColumns,
    align_keys,
    check_by,
    check_metric_names,
    check_scale_used,
    checked_frame,
    summarize_points,
    warn_infinite_scores,
)
from forecaster.evaluation.intervals import IntervalColumns
from forecaster.evaluation.score_names import reads_as_score
from forecaster.exceptions import DataValidationError, ForecasterWarning, warn_at_caller

__all__ = ["error_scale_frame", "evaluate"]


def _series_missing(points: pl.DataFrame, column: str, id_name: str) -> list[Any]:
    """Ids of the series whose rows in ``points`` have no ``column`` (after a left join)."""
    absent = points.filter(pl.col(column).is_null())
    return absent[id_name].unique(maintain_order=True).to_list()


def _mase_scales(
    insample: pl.DataFrame,
    id_name: str,
    time_col: str,
    targets: Sequence[str],
    m: int,
    column: str,
) -> pl.DataFrame:
    """Per (id, target): the mean of ``|y_t - y_{t-m}|`` over the in-sample rows in time order
    (NaN values count as missing, like nulls), in the column ``column`` (see
    :func:`~forecaster.evaluation.array_metrics.mase_scales`); series in the order of
    :func:`~forecaster.data.frames.id_order` (text ids by their text, an Enum's too)."""
    data = insample.select(id_name, time_col, *targets)
    data = data.sort(id_order(data[id_name]), data[time_col])
    values = data.select(pl.col(t).cast(pl.Float64).fill_nan(None) for t in targets).to_numpy()
    runs = data[id_name].rle().struct.unnest()
    offsets = np.concatenate([[0], np.cumsum(runs["len"].to_numpy())])
    scales = mase_scales(values.reshape(len(data), len(targets)), offsets, m)
    ids = runs["value"].alias(id_name)
    return pl.concat(
        [
            pl.DataFrame([ids, pl.Series(column, scales[:, j], dtype=pl.Float64)]).with_columns(
                pl.lit(t).alias(TARGET_COLUMN)
            )
            for j, t in enumerate(targets)
        ]
    ).select(id_name, TARGET_COLUMN, column)


def _checked_keys(
    by: Any, id_col: str | None, time_col: str, targets: list[str], names: list[str]
) -> list[str]:
    """The ``by`` columns, checked; key columns named like a column of the result (the
    target column, ``n``, a metric, an interval score: polars refused the duplicate) or one
    that :func:`~forecaster.evaluation.pooling.aggregate` reads as a count or score
    (:func:`~forecaster.evaluation.score_names.reads_as_score`) are refused."""
    if TARGET_COLUMN in (id_col, time_col):
        raise DataValidationError(
            f"'{TARGET_COLUMN}' is the name of an output column; rename that key column."
        )
    keys = {time_col: "the time column", **({id_col: "the id column"} if id_col else {})}
    both = [t for t in targets if t in keys]
    if both:
        raise DataValidationError(
            f"target {both[0]!r} is also {keys[both[0]]}: a target is a column of values to "
            "score, apart from the id and time columns. Pass the value column as target (and "
            "id_col / time_col for the keys)."
        )
    reserved = {time_col: "the time column", TARGET_COLUMN: "the name of an output column"}
    reserved.update({t: "a target" for t in targets})
    if id_col is not None:
        reserved[id_col] = "the id column"
    by = check_by(by, reserved)
    clash = [c for c in (id_col, *by) if c is not None and (c in names or reads_as_score(c))]
    if clash:
        what = (
            f"an output column of the scores (n and the metrics {names})"
            if clash[0] in ("n", *names)
            else "a column that aggregate reads as a count or score (n_scaled, a metric, a "
            "baseline's score or skill ratio, an interval score): aggregate would pool the "
            "keys as its values"
        )
        raise DataValidationError(
            f"Key column {clash[0]!r} has the name of {what}; rename it, e.g. "
            f"frame.rename({{{clash[0]!r}: 'series'}})."
        )
    return by


def _check_insample_before(
    frames: dict[str, pl.DataFrame], id_name: str, time_col: str, has_id: bool
) -> None:
    """Refuse in-sample rows at or after a series' first forecast time: MASE's scale (and
    MSIS's, sCRPS's) would be measured on the values being scored, and on later ones, a
    look-ahead that no forecast had (``insample=frame`` for ``insample=history``). The series
    named is the first by :func:`~forecaster.data.frames.id_order` (text ids by their text,
    whatever their dtype), as everywhere else."""
    last, first = temporary_names([id_name, time_col], "__last__", "__first__")
    ends = frames["insample"].group_by(id_name).agg(pl.col(time_col).max().alias(last))
    starts = frames["forecast"].group_by(id_name).agg(pl.col(time_col).min().alias(first))
    late = ends.join(starts, on=id_name).filter(pl.col(last) >= pl.col(first))
    late = late.sort(id_order(late[id_name]))
    if late.height:
        row = late.row(0, named=True)
        which = f"series {row[id_name]!r}: " if has_id else ""
        raise DataValidationError(
            f"The insample frame reaches into the forecasts for {late.height} series ({which}"
            f"insample up to {row[last]}, forecasts from {row[first]}): MASE's scale would be "
            "measured on the values being scored and later ones, which no forecast saw. Pass "
            "the history the forecasts were made from, e.g. insample=frame.filter("
            f"pl.col({time_col!r}) < <first forecast time>)."
        )


def _scaled_scores(mase: bool, interval: tuple[str, ...]) -> tuple[str, str]:
    """What the in-sample scale scales and how to score without it, for the messages about
    it: MASE when among the metrics (``mase``), the ``interval`` scores of the forecast's
    interval and quantile columns (MSIS, sCRPS: :func:`_interval_scores`)."""
    names = [*(["MASE"] if mase else []), *interval]
    scores = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    if not interval:
        return scores, "or drop 'mase' from metrics"
    shown = " and ".join(interval)
    leave = f"leave insample out ({shown} {'is' if len(interval) == 1 else 'are'} then not scored)"
    return scores, f"or drop 'mase' from metrics and {leave}" if mase else f"or {leave}"


def _interval_scores(intervals: IntervalColumns | None) -> tuple[str, ...]:
    """The scores of the ``intervals`` columns that the in-sample scale scales: MSIS of the
    interval columns, sCRPS of the quantile columns."""
    if intervals is None:
        return ()
    return tuple(n for n, on in (("MSIS", intervals.levels), ("sCRPS", intervals.quantiles)) if on)


def _check_insample_grid(
    insample: pl.DataFrame, id_name: str, time_col: str, uses: tuple[bool, tuple[str, ...]]
) -> None:
    """Refuse an insample whose times are not on one regular grid per series (a missing step,
    an off-grid time): MASE's scale pairs the values ``m`` rows apart, which are then not
    ``m`` steps apart. The one grid check of :func:`~forecaster.data.validate.validate_frame`,
    on the times alone (missing values are allowed: they count as missing), of the series
    of each smallest step apart: each series has a grid of its own (hourly and daily series
    in one frame are each regular). ``uses``: the arguments of :func:`_scaled_scores`."""
    value, step = temporary_names([id_name, time_col], "__grid__", "__step__")
    times = insample.select(id_name, time_col, pl.lit(0.0).alias(value))
    times = times.filter(pl.len().over(id_name) > 1)  # one row: no step to miss (nor a grid)
    if times.height == 0:  # the scale's own check says why MASE is undefined
        return
    smallest = pl.col(time_col).sort().diff().min().over(id_name).alias(step)
    try:
        for group in times.with_columns(smallest).partition_by(step, include_key=False):
            validate_frame(group, target=value, time_col=time_col, id_col=id_name, freq="auto")
    except DataValidationError as exc:
        found = str(exc).split(" Pass missing=")[0].rstrip(".")
        scores, drop = _scaled_scores(*uses)
        raise DataValidationError(
            f"The in-sample scale of {scores} pairs each in-sample value with "
            f"the one m rows before it, so the insample frame must hold every step of each "
            f"series' regular grid: {found}. Add the missing steps with null values (they "
            f"count as missing), {drop}."
        ) from None


def _check_mase_scales(
    points: pl.DataFrame,
    ids: tuple[str, bool],
    m: int,
    columns: PointColumns,
    uses: tuple[bool, tuple[str, ...]],
) -> None:
    """Refuse series without in-sample rows, or too few for a difference at lag ``m`` (a
    scale of 0 is :func:`warn_infinite_scores`'s, once scored). ``ids``: the id column's name
    and whether the user gave one; ``uses``: the arguments of :func:`_scaled_scores`."""
    id_name, has_id = ids
    scores, drop = _scaled_scores(*uses)
    one = " and " not in scores  # the verbs' number
    scored = points.filter(pl.col(columns.actual).is_not_null())
    absent = _series_missing(scored, columns.mase_scale, id_name)
    if absent:
        raise DataValidationError(
            f"The insample frame has no rows for {len(absent)} forecast series: "
            f"{absent[:10]}. {scores} scale{'s' if one else ''} each series by its own "
            f"history: pass the history of every forecast series as insample, {drop}."
        )
    short = scored.filter(pl.col(columns.mase_scale).is_nan())
    if short.height:
        which = short[id_name].unique(maintain_order=True).head(10).to_list()
        named = f"series {which}" if has_id else "the series"
        raise DataValidationError(
            f"The in-sample scale of {scores} (the mean of |y_t - y_(t-{m})| over "
            f"insample) is undefined for {named}: at most m={m} observed values. Pass a longer "
            f"insample or a smaller m, {drop}."
        )


_SCALE = Real(low=0.0, low_open=True, hint="It divides the errors of MAE, MSE and RMSE.")


def error_scale_frame(
    scale: Any,
    id_name: str,
    targets: Sequence[str],
    has_id: bool,
    series: pl.Series | None = None,
    *,
    column: str,
) -> tuple[pl.DataFrame, list[str]]:
    """``scale=`` as a long frame ([id,] target, ``column``) and its join keys.

    Every divisor must be a finite number > 0; a frame must have one row per series and a row
    for every id of ``series`` (the scored series), cast to their dtype."""
    if isinstance(scale, Mapping):
        missing = [t for t in targets if t not in scale]
        stray = [key for key in scale if key not in targets]
        if stray:  # first: a misspelt target is both stray and missing
            raise DataValidationError(
                f"scale has values for {stray}, which are not targets of the scored frames "
                f"(targets: {list(targets)}). Pass one value per target, e.g. "
                f"scale={{{targets[0]!r}: 1.0}}."
            )
        if missing:
            raise DataValidationError(
                f"scale has no value for the targets {missing}. Pass one value per target, "
                f"e.g. scale={{{missing[0]!r}: 1.0}}."
            )
        values = [_SCALE.check(f"scale[{t!r}]", scale[t]) for t in targets]
        frame = pl.DataFrame({TARGET_COLUMN: list(targets), column: values})
        return frame, [TARGET_COLUMN]
    if isinstance(scale, pl.DataFrame | pl.LazyFrame):
        keys = [id_name] if has_id else []
        data = checked_frame(scale, "scale", keys=keys, numbers=targets)
        values = data.select(*keys, pl.col(list(targets)).cast(pl.Float64))
        _check_scale_values(values, keys, targets)
        if not has_id:
            if values.height != 1:
                raise DataValidationError(
                    "A scale frame for frames without an id column must have exactly one row; "
                    f"it has {values.height}."
                )
            frame = values.unpivot(on=list(targets), variable_name=TARGET_COLUMN, value_name=column)
            return frame, [TARGET_COLUMN]
        if series is not None:
            values = align_keys({"scale": values, "forecast": series.to_frame()}, keys)["scale"]
            needed = series.to_frame().with_columns(pl.col(id_name).cast(values.schema[id_name]))
            absent = needed.join(values, on=id_name, how="anti")[id_name].unique().to_list()
            if absent:
                raise DataValidationError(
                    f"The scale frame has no row for {len(absent)} scored series: "
                    f"{sorted(absent, key=str)[:10]}. Add a divisor for each of them."
                )
        frame = values.unpivot(
            index=id_name, on=list(targets), variable_name=TARGET_COLUMN, value_name=column
        )
        return frame, [id_name, TARGET_COLUMN]
    if isinstance(scale, numbers.Real) and not isinstance(scale, bool | np.bool_):
        value = _SCALE.check("scale", scale)
        frame = pl.DataFrame({TARGET_COLUMN: list(targets), column: [value] * len(targets)})
        return frame, [TARGET_COLUMN]
    raise DataValidationError(
        "scale must be a number, a dict {target: number} or a polars DataFrame with the id "
        f"column and one column per target; got {describe_value(scale)}."
    )


def _check_scale_values(values: pl.DataFrame, keys: list[str], targets: Sequence[str]) -> None:
    """Refuse divisors that are null, NaN, infinite or not > 0."""
    wrong = [
        pl.col(t).is_null() | pl.col(t).is_nan() | pl.col(t).is_infinite() | (pl.col(t) <= 0)
        for t in targets
    ]
    bad = values.select(pl.any_horizontal(wrong).fill_null(True)).to_series()
    if not bad.any():
        return
    row = values.filter(bad).row(0, named=True)
    where = f" for {row[keys[0]]!r}" if keys else ""
    shown = {t: row[t] for t in targets}
    raise DataValidationError(
        f"The scale frame holds {int(bad.sum())} rows with divisors that are not finite "
        f"numbers > 0, e.g. {shown}{where}. Every divisor of the errors must be positive "
        "(e.g. a training standard deviation); a constant series has none: leave scale out "
        "for it or use a relative metric."
    )


def evaluate(
    forecast: pl.DataFrame | pl.LazyFrame,
    actual: pl.DataFrame | pl.LazyFrame,
    *,
    target: str | Sequence[str],
    time_col: str = "time",
    id_col: str | None = None,
    insample: pl.DataFrame | pl.LazyFrame | None = None,
    m: int = 1,
    metrics: Sequence[str] | str | None = None,
    scale: float | Mapping[str, float] | pl.DataFrame | None = None,
    by: Sequence[str] = (),
) -> pl.DataFrame:
    """Score a long forecast frame against the actual values, per series and target.

    Forecast and actual rows are matched on (id, time). Forecast values without an actual
    value (no actual row, or a null or NaN there: NaN counts as missing, like null) are left
    out, with a warning when some, an error when all. Forecasts are the model's output, so a
    null, NaN or infinite forecast is refused (naming the target, series and time), never
    skipped: ``n`` is the number of points scored, the points every metric is the mean over.

    Every frame goes through one check (:func:`checked_frame`): a polars DataFrame or
    LazyFrame with the key and target columns, numeric targets, and one row per key (``by``, id,
    time); key columns may differ in integer width or between text, Categorical and Enum, other
    dtype differences are refused. Actual and in-sample values must not be infinite.

    Parameters
    ----------
    forecast : polars.DataFrame or polars.LazyFrame
        Long format as returned by :meth:`~forecaster.RNNForecaster.predict`: id (optional),
        time and one column per target.
    actual : polars.DataFrame or polars.LazyFrame
        Frame with the true values (id, time, targets); extra rows (e.g. the history) are fine.
    target : str or sequence of str
    time_col : str, default "time"
    id_col : str or None, default None
        ``None`` when the frames hold one series.
    insample : polars.DataFrame or polars.LazyFrame, optional
        The history each series was forecast from (id, time, targets), for MASE's scale. Every
        scored series needs more than ``m`` observed values there; a series whose values do
        not change at lag ``m`` has an infinite MASE where its forecast misses (with a warning
        naming it; an exact forecast scores 0). So has MAPE where an actual value is 0.
    m : int, default 1
        Seasonal period of MASE's scale (M4: 24 for hourly, 1 for weekly and daily data);
        refused without ``insample``. Values are compared in float64: integers above 2**53
        lose their last digits.
    metrics : sequence of str, optional
        Names from :data:`METRICS`; default all, MASE only when ``insample`` is given (which
        is refused when no chosen score, nor an interval column, uses it).
    scale : float, dict or polars.DataFrame, optional
        Divisor of the errors of MAE, MSE and RMSE, to report them on another scale, e.g. the
        training standard deviation of each target for the ETT protocol's z-scale MSE / MAE: a
        number, ``{target: number}``, or a frame with the id column and one column per target
        (one divisor per series, a row for every scored series). Every divisor must be a
        finite number > 0. The relative metrics (MAPE, sMAPE, MASE) do not use it.
    by : sequence of str, default ()
        Extra key columns of ``forecast`` to group by as well (e.g. ``"model"``, ``"fold"``);
        ``actual`` is still matched on (id, time). Not the id, time or target columns.

    Returns
    -------
    polars.DataFrame
        One row per (``*by``, id, target): those columns, ``n`` (points scored) and one column
        per metric, in the order of the forecast frame; then the scores of its interval
        (``y_lo_80``, ...) and quantile (``y_q10``, ...) columns: ``coverage_80``, ``width_80``,
        ``winkler_80``, ``msis_80`` ..., ``pinball``, ``scrps`` (MSIS and sCRPS scaled like
        MASE, with ``insample``; see :mod:`forecaster.evaluation.intervals`).

    Examples
    --------
    >>> import polars as pl
    >>> actual = pl.DataFrame({"time": [0, 1, 2, 3, 4], "y": [1.0, 2.0, 4.0, 7.0, 5.0]})
    >>> forecast = pl.DataFrame({"time": [4], "y": [6.0]})
    >>> evaluate(forecast, actual, target="y", insample=actual.head(4), metrics=["mae", "mase"])
    shape: (1, 4)
    ┌────────┬─────┬─────┬──────┐
    │ target ┆ n   ┆ mae ┆ mase │
    │ ---    ┆ --- ┆ --- ┆ ---  │
    │ str    ┆ i64 ┆ f64 ┆ f64  │
    ╞════════╪═════╪═════╪══════╡
    │ y      ┆ 1   ┆ 1.0 ┆ 0.5  │
    └────────┴─────┴─────┴──────┘
    """
    targets = list(check("target", target))
    time_col, id_col = check("time_col", time_col), check("id_col", id_col)
    m = check("m", m)
    names = check_metric_names(metrics, insample is not None)
    check_scale_used(scale, names)
    by = _checked_keys(by, id_col, time_col, targets, names)
    keys = [c for c in (id_col, time_col) if c is not None]
    frames = {
        "forecast": checked_frame(forecast, "forecast", keys=[*by, *keys], numbers=targets),
        "actual": checked_frame(actual, "actual", keys=keys, numbers=targets),
    }
    intervals = _interval_columns(frames["forecast"], targets)
    scaled = "mase" in names or (intervals is not None and insample is not None)
    _check_scale_inputs(insample, m, scaled, names)
    if scaled:
        frames["insample"] = checked_frame(insample, "insample", keys=keys, numbers=targets)
    frames, id_name = align_keys(frames, keys), id_col
    if id_col is None:  # one series: a constant id, named unlike any column of the frames
        (id_name,) = temporary_names([c for f in frames.values() for c in f.columns], SERIES_ID)
        frames = {n: f.with_columns(pl.lit(0, pl.UInt8).alias(id_name)) for n, f in frames.items()}
    _check_frame_values(frames, targets, id_name, time_col, intervals)
    columns = PointColumns.avoiding([*by, id_name, time_col, TARGET_COLUMN, *targets])
    points = _matched_points(
        frames["forecast"], frames["actual"], by, id_name, time_col, targets, columns, intervals
    )
    if scaled:
        _check_insample_before(frames, id_name, time_col, id_col is not None)
        uses = ("mase" in names, _interval_scores(intervals))  # what the in-sample scale scales
        _check_insample_grid(frames["insample"], id_name, time_col, uses)
        scales = _mase_scales(frames["insample"], id_name, time_col, targets, m, columns.mase_scale)
        points = points.join(scales, on=[id_name, TARGET_COLUMN], how="left", maintain_order="left")
        _check_mase_scales(points, (id_name, id_col is not None), m, columns, uses)
    if scale is not None:
        points = _with_error_scale(points, scale, id_name, targets, id_col is not None, columns)
    out = summarize_points(points, [*by, id_name, TARGET_COLUMN], names, columns, intervals)
    warn_infinite_scores(out, id_name, id_col is not None, m)
    return out.drop(id_name) if id_col is None else out


def _check_scale_inputs(insample: Any, m: int, scaled: bool, names: list[str]) -> None:
    """Refuse ``insample`` and ``m`` when nothing is scaled by MASE's scale: they would be
    ignored without a word (``metrics`` without ``"mase"``, no interval columns)."""
    if scaled:
        return
    if insample is not None:
        raise DataValidationError(
            f"insample is used only for MASE's scale (and MSIS / sCRPS of interval columns), "
            f"and metrics={names} computes none of them. Add 'mase' to metrics, or leave "
            "insample out."
        )
    if m != 1:
        raise DataValidationError(
            f"m={m} is the seasonal period of MASE's scale, which needs insample (and 'mase' "
            "in metrics): pass insample=<the history before the forecasts>, or leave m out."
        )


def _interval_columns(forecast: pl.DataFrame, targets: list[str]) -> IntervalColumns | None:
    """The interval and quantile columns of the forecast frame (numeric), None without."""
    avoid = [*forecast.columns, TARGET_COLUMN, *PointColumns.avoiding(forecast.columns)]
    intervals = IntervalColumns.find(forecast.columns, targets, avoid=avoid)
    if intervals is not None:
        sources = [c for t in targets for c in intervals.sources(t)]
        checked_frame(forecast, "forecast", numbers=sources, unique=False)
    return intervals


def _with_error_scale(
    points: pl.DataFrame,
    scale: Any,
    id_name: str,
    targets: list[str],
    has_id: bool,
    columns: PointColumns,
) -> pl.DataFrame:
    """``points`` with the divisor of each point's errors (``scale=`` of :func:`evaluate`)."""
    scored = points.filter(pl.col(columns.actual).is_not_null())[id_name].unique()
    divisors, on = error_scale_frame(
        scale, id_name, targets, has_id, scored, column=columns.error_scale
    )
    if has_id and id_name in on:
        divisors = divisors.with_columns(pl.col(id_name).cast(points.schema[id_name]))
    return points.join(divisors, on=on, how="left", maintain_order="left")


def _check_frame_values(
    frames: dict[str, pl.DataFrame],
    targets: list[str],
    id_name: str,
    time_col: str,
    intervals: IntervalColumns | None = None,
) -> None:
    """Forecasts must be finite numbers (the model's output: a null, NaN or infinite forecast
    is refused, not skipped), and so must interval bounds (with ``lo <= hi``) and quantiles;
    actual and in-sample values must not be infinite (null or NaN ones are not scored)."""
    if intervals is not None:
        intervals.check_values(frames["forecast"], targets, id_name=id_name, time_col=time_col)
    check_values(
        frames["forecast"],
        targets,
        id_name=id_name,
        time_col=time_col,
        what="forecast frame",
        fix="Every forecast row is scored, so each needs a finite forecast: drop the rows the "
        "model could not forecast first (e.g. forecast.drop_nulls().filter(pl.col(c)"
        ".is_finite())), or fix the model. n counts the points scored.",
    )
    for name in ("actual", "insample"):
        if name in frames:
            floats = [t for t in targets if frames[name].schema[t].is_float()]
            check_values(
                frames[name],
                floats,
                id_name=id_name,
                time_col=time_col,
                what=f"{name} frame",
                missing=False,
                fix="Replace them with null (not scored) or fix the source.",
            )


def _matched_points(
    forecast: pl.DataFrame,
    actual: pl.DataFrame,
    by: list[str],
    id_name: str,
    time_col: str,
    targets: list[str],
    columns: PointColumns,
    intervals: IntervalColumns | None = None,
) -> pl.DataFrame:
    """One row per (forecast row, target) with its forecast and actual value (null when there
    is none, NaN counting as none), and its interval bounds and quantile forecasts; warns when
    some rows have none, refuses when all do."""
    extra = [c for t in targets for c in intervals.sources(t)] if intervals is not None else []
    observed = temporary_names(
        [*by, id_name, time_col, *targets], *[f"{t}__actual__" for t in targets]
    )
    joined = forecast.select(*by, id_name, time_col, *targets, *extra).join(
        actual.select(
            id_name,
            time_col,
            *[pl.col(t).cast(pl.Float64).alias(o) for t, o in zip(targets, observed, strict=True)],
        ),
        on=[id_name, time_col],
        how="left",
        maintain_order="left",
    )
    nan = joined.select(pl.any_horizontal(pl.col(c).is_nan() for c in observed)).to_series()
    joined = joined.with_columns(pl.col(c).fill_nan(None) for c in observed)
    matched = joined.select(pl.any_horizontal(pl.col(c).is_not_null() for c in observed))
    matched = matched.to_series()
    if not matched.any():
        raise DataValidationError(
            f"No forecast row has an actual value: none of the {forecast.height} forecast "
            "(id, time) pairs is in the actual frame with a value"
            + (f" ({int(nan.sum())} are NaN there)" if nan.any() else "")
            + ". Pass the frame that holds the future values, with the same id and time columns."
        )
    unscored = dict(zip(targets, joined.select(pl.col(observed).null_count()).row(0), strict=True))
    if any(unscored.values()):  # per target: one may lack actual values the others have
        n_nan = int((nan & ~matched).sum())
        of = (lambda t: f" ({t!r})") if len(targets) > 1 else (lambda t: "")
        counts = ", ".join(f"{n}{of(t)}" for t, n in unscored.items() if n)
        wholly = [t for t, n in unscored.items() if n == forecast.height]
        warn_at_caller(
            f"{counts} of {forecast.height} forecast rows have no actual value "
            "(no row in the actual frame, or null or NaN there"
            + (f": {n_nan} NaN, which counts as missing" if n_nan else "")
            + ") and are not scored"
            + (f"; {wholly} has none, so the result has no row for it" if wholly else "")
            + ".",
            ForecasterWarning,
        )
    return pl.concat(
        [
            joined.select(
                *by,
                id_name,
                pl.lit(t).alias(TARGET_COLUMN),
                pl.col(t).cast(pl.Float64).alias(columns.forecast),
                pl.col(o).alias(columns.actual),
                *(intervals.renamed(t) if intervals is not None else []),
            )
            for t, o in zip(targets, observed, strict=True)
        ]
    )

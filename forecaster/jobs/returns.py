"""Log returns of a pipeline (``[features] log_returns``): computed on the source's rows,
and 0 on the rows of the grid the source lacks.

A log return is the change of the log price since the series' previous observed price, so
the returns of a series sum to the change of its log price. The rows the source lacks (a
holiday on business days: the exchange published no row) are on the grid the model trains
on, so they exist in the model's data whatever the pipeline does: filled by ``[series]
missing``, a return there would repeat the previous day's move (``ffill``) or read the next
one's (``interpolate``). :func:`with_absent_rows` adds them with a return of 0 (no price
change observed) before the model sees them, their other values empty for ``missing`` to
fill as before; the first observed row after them already holds the return over the whole
gap.
"""

from __future__ import annotations

import polars as pl

from forecaster._columns import temporary_names
from forecaster.data.absent import absent_rows
from forecaster.data.frames import format_list
from forecaster.exceptions import ForecasterWarning, warn_at_caller
from forecaster.jobs.schedule import sorted_by_series
from forecaster.jobs.spec import Spec, logret_column

__all__ = ["with_absent_rows", "with_log_returns"]


def with_log_returns(frame: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """``frame`` sorted by (id, time) with a ``<c>_logret`` column per ``[features]
    log_returns`` column ``c``; the only rows dropped are those before each series' first
    return (usually its first row alone).

    The log return of a row is the change of the log price since the series' previous
    observed price (not null, not NaN): over a gap, the return over the whole gap, on the
    first row observed after it, so the returns sum to the change of the price. A row whose
    price is missing has a return of 0 with a ``[series] missing`` policy that fills (the
    price did not move as far as the data say: the forward-filled price's return; a return
    filled forward or interpolated would repeat a move or anticipate the next price), and
    none (null) with ``missing = "error"``, which refuses it like any missing value. Rows
    absent from the source (grid gaps: holidays on ``freq = "1bd"``) get a return of 0 too:
    :func:`with_absent_rows` adds them to the data a command uses. A row before a
    series' first return of every column (its first row, or the rows up to the first
    observed price) has none and is dropped; a ``ForecasterWarning`` names the rows with a
    target value dropped so, but the last of each series (usually its first row: the
    row of its first observed price, which every series loses). A series with fewer than two
    observed prices of a column that is also a target is dropped whole, named as a series
    with no log return (after its one price it has no value of that target to fit).

    Parameters
    ----------
    frame : polars.DataFrame
        The source, its log-return columns checked (positive numbers).
    spec : Spec
        The pipeline's spec (its ``[series]`` and ``[features] log_returns``).

    Returns
    -------
    polars.DataFrame
        ``frame`` sorted by (id, time), from each series' first row with every log return,
        with the ``<c>_logret`` columns (Float64) added.
    """
    series = spec.series
    frame = sorted_by_series(frame, series.id, series.time)

    def per_series(expr: pl.Expr) -> pl.Expr:
        return expr.over(series.id) if series.id else expr

    returns, started, priced = [], [], []
    for column in spec.features.log_returns:
        price = pl.col(column).cast(pl.Float64)
        log_price = pl.when(price.is_not_null() & ~price.is_nan()).then(price.log())
        before = per_series(log_price.forward_fill().shift(1))  # the last observed price
        change = log_price - before
        if series.missing != "error":
            change = change.fill_null(0.0)
        returns.append(pl.when(before.is_not_null()).then(change).alias(logret_column(column)))
        started.append(before.is_not_null())
        if column in series.targets:  # one price: no target value is left after it
            priced.append(per_series(log_price.is_not_null().sum()) >= 2)
    begun = pl.all_horizontal(started)  # once true, true for the rest of the series
    flags = frame.select(
        (begun & pl.all_horizontal(priced or [pl.lit(True)])).alias("used"),
        (~begun & per_series(begun.shift(-1)).fill_null(True)).alias("last"),
    )
    _warn_dropped_rows(frame.filter(~begun & ~flags["last"]), spec)
    _warn_dropped_series(frame, flags["used"], spec)
    return frame.with_columns(returns).filter(flags["used"])


def _warn_dropped_series(frame: pl.DataFrame, used: pl.Series, spec: Spec) -> None:
    """Warn of the series of ``frame`` none of whose rows is ``used`` (without every log
    return: one observed price, or none), which are dropped whole."""
    id_col = spec.series.id
    if id_col is None:
        return  # no row left: the run refuses an empty source
    kept = frame.select(id_col).with_columns(used.alias("used"))
    counts = kept.group_by(id_col, maintain_order=True).agg(pl.col("used").any())
    gone = counts.filter(~pl.col("used"))[id_col]
    if gone.len():
        warn_at_caller(
            f"features.log_returns: {gone.len()} series have no log return of "
            f"{spec.features.log_returns} (a log return needs two observed prices): "
            f"{format_list(gone.to_list())}. None of their rows is used: they are neither "
            "fitted nor forecast. Give them more prices, or remove log_returns.",
            ForecasterWarning,
        )


def _warn_dropped_rows(dropped: pl.DataFrame, spec: Spec) -> None:
    """Warn of the ``dropped`` rows (before a series' first log return) that hold a target."""
    series = spec.series
    held = dropped.filter(pl.any_horizontal(pl.col(series.targets).is_not_null()))
    if held.height == 0:
        return
    where = [c for c in (series.id, series.time) if c]
    shown = ", ".join(
        " ".join(str(v) for v in row) for row in held.select(where).head(5).iter_rows()
    )
    warn_at_caller(
        f"features.log_returns: dropped {held.height} rows with target values before their "
        f"series' first log return of {spec.features.log_returns} (e.g. {shown}): a log "
        "return needs an earlier observed price, and those prices are missing up to there. "
        "Fill those prices in the source, or remove log_returns.",
        ForecasterWarning,
    )


def with_absent_rows(frame: pl.DataFrame, spec: Spec) -> pl.DataFrame:
    """``frame`` (sorted by (id, time)) with the rows of its regular grid it lacks, when it has
    log returns and ``[series] missing`` fills: each with a log return of 0, its static
    covariates those of its series and its other values empty (``missing`` fills them, as
    it would fill the rows it made up).

    The grid is the estimator's (:func:`~forecaster.data.absent.absent_rows` with the spec's
    ``freq``, declared or inferred), so the estimator makes up no row: a holiday row's return
    is 0 whatever the policy, not the previous return (``ffill``) or one read from the next
    row (``interpolate``). ``absent_rows`` warns when the rows added are more than a fifth of
    the grid, as filling them would have. With ``missing = "error"`` the estimator refuses
    the gaps, so no row is added; call this after ``check_holiday_rows``, which refuses rows
    on listed holidays in the source, not these.
    """
    series = spec.series
    if not spec.features.log_returns or series.missing == "error":
        return frame
    absent = absent_rows(
        frame, time_col=series.time, id_col=series.id, freq=series.freq, missing=series.missing
    )
    if absent.height == 0:
        return frame
    (added,) = temporary_names(frame.columns, "__added__")
    returns = [pl.lit(0.0, pl.Float64).alias(logret_column(c)) for c in spec.features.log_returns]
    rows = absent.with_columns(*returns, pl.lit(True).alias(added))
    merged = pl.concat([frame.with_columns(pl.lit(False).alias(added)), rows], how="diagonal")
    merged = sorted_by_series(merged, series.id, series.time, maintain_order=True)
    statics = []
    for name in series.static_covariates:  # the value of the series' row before
        last = pl.col(name).forward_fill()
        last = last.over(series.id) if series.id else last
        statics.append(pl.when(pl.col(added)).then(last).otherwise(pl.col(name)).alias(name))
    return merged.with_columns(statics).drop(added)

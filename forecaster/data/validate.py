"""Validate long-format frames: :func:`validate_frame` checks and cleans one (columns, dtypes,
values, sorting, duplicates, the regular time grid, gaps and missing values) in named stages.

A *long* frame has one row per (series, time step): an optional id column, a time column
(datetime, date or integer step), one or more target columns and optional covariate columns.
Everything is vectorised: no Python loop over series or rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import polars as pl

from forecaster._validation import MISSING_POLICIES, check
from forecaster.data.checks import (
    check_float32_range,
    check_roles,
    check_values,
    missing_columns_message,
    not_numeric_message,
    row_examples,
)
from forecaster.data.flat_values import warn_flat_in_float32
from forecaster.data.frames import (
    SERIES_ID,
    collect_frame,
    format_list,
    frame_schema,
    id_order,
)
from forecaster.data.frequency import Frequency
from forecaster.data.gaps import fill_gaps, integer_dates_advice
from forecaster.data.grid import TimeGrid, check_grid, row_mask
from forecaster.data.suspicious import warn_trailing_missing
from forecaster.data.time_span import check_time_span
from forecaster.data.times import check_time_dtype
from forecaster.exceptions import DataValidationError

__all__ = [
    "MISSING_POLICIES",
    "MISSING_VALUES_ERROR",
    "ValidatedFrame",
    "validate_frame",
    "validate_frame_cells",
]

# MISSING_POLICIES (from the parameter table): how gaps in the time grid and missing values
# (NaN / null) are handled.

MISSING_VALUES_ERROR = "Missing values (NaN or null) in "
"""What the error of ``missing="error"`` about missing values in a frame begins with: where
``fit`` gives a frame's rows ahead its own advice
(:func:`~forecaster.estimators.rows_ahead.rows_ahead_fit_error`)."""


def validate_frame_cells(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    target: str | Sequence[str],
    time_col: str,
    id_col: str | None = None,
    covariates: str | Sequence[str] | None = None,
    future_covariates: str | Sequence[str] | None = None,
    freq: str | int | None = "auto",
    missing: str = "error",
    continues: bool = False,
    ends: str = "frame",
) -> ValidatedFrame:
    """:func:`validate_frame`, also saying which cells ``missing="interpolate"`` filled.

    A forecast from an origin inside a run of interpolated values must not see them (they lean
    on the first observation after the run): :class:`~forecaster.data.panel.Panel` keeps the
    cells to forecast as of each origin.

    Parameters
    ----------
    frame, target, time_col, id_col, covariates, future_covariates, freq, missing, continues
        As in :func:`validate_frame`.
    ends : {"frame", "training", "cutoff", "origins"}, default "frame"
        What the end of each series is, for the warning about targets missing there
        (:func:`~forecaster.data.suspicious.warn_missing_ends`): a frame's, which predict
        forecasts from; ``fit``'s training data's; the rows' up to predict's cutoff; or no
        forecast's start (``"origins"``: forecasts from origins inside the frame, checked as
        such, so nothing is said of its end).

    Returns
    -------
    ValidatedFrame
        ``data`` and ``freq`` as :func:`validate_frame` returns them, and ``interpolated``.

    Examples
    --------
    >>> import polars as pl
    >>> raw = pl.DataFrame({"t": [1, 2, 3], "y": [1.0, None, 3.0]})
    >>> checked = validate_frame_cells(raw, target="y", time_col="t", missing="interpolate")
    >>> checked.data["y"].to_list(), checked.interpolated[:, 0].tolist()
    ([1.0, 2.0, 3.0], [False, True, False])
    """
    roles = check_roles(
        target=target,
        time_col=time_col,
        id_col=id_col,
        covariates=covariates,
        future_covariates=future_covariates,
    )
    check("missing", missing)
    check("ends", ends)
    value_cols = [*roles["target"], *roles["covariate"], *roles["future covariate"]]
    _check_reserved_name(id_col, time_col, value_cols)
    _check_columns(frame, roles, id_col=id_col, time_col=time_col, value_cols=value_cols)
    data = _read_rows(frame, id_col=id_col, time_col=time_col, value_cols=value_cols)
    id_name = id_col if id_col is not None else SERIES_ID
    data = _clean_values(data, id_name=id_name, time_col=time_col, value_cols=value_cols)
    data, t, lengths = _sort_series(data, id_name, time_col)
    warn_flat_in_float32(data, lengths, id_name, value_cols)
    grid = check_grid(
        data,
        t,
        lengths,
        freq,
        id_col=id_col,
        time_col=time_col,
        continues=continues,
        source=frame,
        used=[time_col, *value_cols],
    )
    if missing != "error":
        targets, covariates = list(roles["target"]), roles["covariate"]
        covariates = [*covariates, *roles["future covariate"]]  # both read up to the origin
        warn_trailing_missing(data, targets, id_name, time_col, missing, ends, covariates)
    data, interpolated = _handle_missing(
        data, grid, value_cols, missing, id_col=id_col, time_col=time_col
    )
    data = data.with_columns(pl.col(value_cols).cast(pl.Float32))
    return ValidatedFrame(data, grid.freq, interpolated)


def validate_frame(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    target: str | Sequence[str],
    time_col: str,
    id_col: str | None = None,
    covariates: str | Sequence[str] | None = None,
    future_covariates: str | Sequence[str] | None = None,
    freq: str | int | None = "auto",
    missing: str = "error",
    continues: bool = False,
) -> tuple[pl.DataFrame, Frequency]:
    """Check a long frame and return it cleaned, sorted and cast to float32.

    Parameters
    ----------
    frame : polars.DataFrame or polars.LazyFrame
        Long format: one row per (series, time step). Only the named columns are read.
    target : str or sequence of str
        Column(s) to forecast.
    time_col : str
        Datetime, date or integer time step column.
    id_col : str, optional
        Series identifier. When ``None`` the frame holds a single series.
    covariates : str or sequence of str, optional
        Past-observed covariates (known up to the forecast origin only).
    future_covariates : str or sequence of str, optional
        Future-known covariates such as calendar features (known over the horizon too).
    freq : str or int, default "auto"
        The sampling frequency (see :class:`~forecaster.data.frequency.Frequency` for the
        grammar); ``"auto"`` infers the most common step. A declared frequency states how the data
        are sampled, it does not resample them: a frame in which no two consecutive rows of any
        series are one step apart (weekly or monthly data with ``freq="1d"``; a daily model's
        ``predict`` on weekly data) is refused, whatever ``missing`` is.
    missing : {"error", "ffill", "zero", "interpolate"}, default "error"
        Policy for gaps in the time grid and NaN / null values. ``"ffill"`` and
        ``"interpolate"`` drop a series' leading rows until every column is observed (there is
        nothing to fill from), then fill forward / linearly (trailing values forward).
        ``"zero"`` fills with 0. Infinite values are always an error. Observed rows keep
        their times; a missing step gets the series' first time moved forward by its number
        of steps (month steps on the series' day of the month: month-ends stay month-ends,
        see :func:`~forecaster.data.steps.future_times`).
    continues : bool, default False
        True for rows that continue series checked before (a stream's update, whose few new
        rows may all span a gap): a declared ``freq`` is not refused for being finer than
        every step of these rows alone.

    Returns
    -------
    frame : polars.DataFrame
        Columns ``[id, time, *targets, *covariates, *future_covariates]``, sorted by
        (id, time), values as Float32, on a regular grid of ``freq``. When ``id_col`` is None the
        id column is a constant named ``"__series__"``.
    freq : Frequency
        The declared or inferred frequency.

    Raises
    ------
    DataValidationError
        With a message saying what was expected, what was found (a few offending ids and
        timestamps) and how to fix it.

    Examples
    --------
    >>> import polars as pl
    >>> raw = pl.DataFrame({"t": [3, 1, 2], "y": [3.0, 1.0, None]})
    >>> clean, freq = validate_frame(raw, target="y", time_col="t", missing="interpolate")
    >>> clean["y"].to_list(), str(freq)
    ([1.0, 2.0, 3.0], '1i')
    """
    checked = validate_frame_cells(
        frame,
        target=target,
        time_col=time_col,
        id_col=id_col,
        covariates=covariates,
        future_covariates=future_covariates,
        freq=freq,
        missing=missing,
        continues=continues,
    )
    return checked.data, checked.freq


class ValidatedFrame(NamedTuple):
    """What :func:`validate_frame_cells` returns.

    Attributes
    ----------
    data : polars.DataFrame
        The checked, sorted and filled frame (as :func:`validate_frame` returns it).
    freq : Frequency
        Its frequency.
    interpolated : numpy.ndarray or None
        With ``missing="interpolate"``, which cells of the value columns (targets, then
        covariates, then future covariates: shape ``(rows, n_value_columns)``) were filled;
        None for the other policies and when nothing was filled.
    """

    data: pl.DataFrame
    freq: Frequency
    interpolated: np.ndarray | None


# --------------------------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------------------------


def _check_reserved_name(id_col: str | None, time_col: str, value_cols: list[str]) -> None:
    """A frame without an id column may not use the name of the series column it gets."""
    if id_col is None and SERIES_ID in (time_col, *value_cols):
        raise DataValidationError(
            f"Column name {SERIES_ID!r} is reserved: it names the series of a frame without an "
            f"id column (id_col=None). Rename the column, e.g. frame.rename({{{SERIES_ID!r}: "
            "'value'}), or pass it as id_col if it identifies the series."
        )


def _check_columns(
    frame: pl.DataFrame | pl.LazyFrame,
    roles: dict[str, tuple[str, ...]],
    *,
    id_col: str | None,
    time_col: str,
    value_cols: list[str],
) -> None:
    """Check the schema before reading any row: the frame is not empty, has every named
    column, a time column of a time dtype, numeric values and an id of one value per row."""
    schema = frame_schema(frame)
    if isinstance(frame, pl.DataFrame) and frame.height == 0:
        raise DataValidationError(
            f"The frame is empty (0 rows; columns {format_list(frame.columns, 20)}). Expected "
            "at least lookback + horizon rows per series: check the file (a header without "
            "data rows?) or the filters applied before."
        )
    available = list(schema.names())
    for role, names in roles.items():
        missing_cols = [c for c in names if c not in schema]
        if missing_cols:
            raise DataValidationError(missing_columns_message(missing_cols, available, role))

    check_time_dtype(schema[time_col], time_col)
    for name in value_cols:
        dtype = schema[name]
        if not (dtype.is_numeric() or dtype == pl.Boolean):
            raise DataValidationError(not_numeric_message(frame, name, dtype))

    if id_col is not None and (schema[id_col].is_nested() or schema[id_col] == pl.Object):
        raise DataValidationError(
            f"Id column {id_col!r} must hold one text, number or date per row, got "
            f"{schema[id_col]}. Build a text id first, e.g. pl.col({id_col!r}).cast(pl.String) "
            "or pl.concat_str(...) of the key columns."
        )


def _read_rows(
    frame: pl.DataFrame | pl.LazyFrame, *, id_col: str | None, time_col: str, value_cols: list[str]
) -> pl.DataFrame:
    """Collect the named columns (a constant id for a single series) and refuse rows without
    an id or a time, and times out of the range the package computes in."""
    id_name = id_col if id_col is not None else SERIES_ID
    selected = [pl.col(time_col), *(pl.col(c) for c in value_cols)]
    selected.insert(
        0, pl.col(id_col) if id_col is not None else pl.lit(0, pl.UInt8).alias(SERIES_ID)
    )
    data = collect_frame(frame, columns=selected)

    if data.height == 0:
        raise DataValidationError(
            "The frame is empty (0 rows). Expected at least lookback + horizon rows per series."
        )
    null_id = data[id_name].null_count()
    if data[id_name].dtype.is_float():
        null_id += int(data[id_name].is_nan().sum())
    if null_id:
        raise DataValidationError(
            f"Id column {id_col!r} has {null_id} null or NaN values. Every row needs a series "
            "id: fill or drop those rows (e.g. frame.drop_nulls(id_col).drop_nans(id_col))."
        )
    null_time = data[time_col].null_count()
    if null_time:
        raise DataValidationError(
            f"Time column {time_col!r} has {null_time} null values. Every row needs a time: "
            "fill or drop those rows."
        )
    check_time_span(data[time_col], time_col)
    return data


def _clean_values(
    data: pl.DataFrame, *, id_name: str, time_col: str, value_cols: list[str]
) -> pl.DataFrame:
    """Cast values to float (Float32 and Float64 stay as they are until the end), NaN to null;
    refuse infinities and values beyond the float32 range."""
    schema = data.schema
    floats = [c for c in value_cols if schema[c].is_float()]
    others = [c for c in value_cols if not schema[c].is_float()]
    if others:
        data = data.with_columns(pl.col(others).cast(pl.Float64))
    if floats:
        check_values(data, floats, id_name=id_name, time_col=time_col, missing=False)
        nan_cols = [
            c
            for c, n in zip(floats, data.select(pl.col(floats).is_nan().sum()).row(0), strict=True)
            if n
        ]
        if nan_cols:
            data = data.with_columns(pl.col(nan_cols).fill_nan(None))
    check_float32_range(data, [c for c in value_cols if data.schema[c] == pl.Float64])
    _check_spread(data, id_name, value_cols)
    return data


def _check_spread(data: pl.DataFrame, id_name: str, value_cols: list[str]) -> None:
    """Each series' spread (max - min) must fit float32 too: scalers divide by it."""
    limit = float(np.finfo(np.float32).max)
    wide = [pl.col(c).cast(pl.Float64) for c in value_cols]
    spread = data.select(
        [(w.max() - w.min()).alias(c) for w, c in zip(wide, value_cols, strict=True)]
    )
    suspects = [
        c for c, v in zip(value_cols, spread.row(0), strict=True) if v is not None and v > limit
    ]
    if not suspects:
        return  # the common case: one pass over the frame, no per-series statistics
    per_series = data.group_by(id_name).agg(
        (pl.col(c).cast(pl.Float64).max() - pl.col(c).cast(pl.Float64).min()).alias(c)
        for c in suspects
    )
    bad = [c for c in suspects if (per_series[c] > limit).any()]
    if bad:
        raise DataValidationError(
            f"Values in {format_list(bad)} spread over more than the float32 range within a "
            "series (max - min > 3.4e38); scaling divides by that spread and training runs in "
            "float32. Rescale those columns (e.g. divide by a constant or take a log)."
        )


def _sort_series(
    data: pl.DataFrame, id_name: str, time_col: str
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Rows sorted by (id, time) (sorted only when they are not), the physical time of every
    row (int64) and the number of rows of every series.

    The series come in ascending id order whatever the frame's order of rows and the id's
    dtype (text ids by their text, an Enum's too: :func:`~forecaster.data.frames.id_order`):
    the same rows give the same panel, windows, batches, model and output rows for a seed.
    The check reads the runs of ids (strictly ascending) and the times within them; a sorted
    frame is not copied.
    """
    runs = id_order(data[id_name]).rle().struct.unnest()
    t = data[time_col].to_physical().cast(pl.Int64).to_numpy()
    boundary = np.zeros(len(t), dtype=bool)
    boundary[np.cumsum(runs["len"].to_numpy())[:-1]] = True
    backwards = np.zeros(len(t), dtype=bool)
    backwards[1:] = (t[1:] < t[:-1]) & ~boundary[1:]
    ids = runs["value"]  # a new Series: no sorted flag of the frame's column to trust
    unsorted = ids.n_unique() != runs.height or not ids.is_sorted() or backwards.any()
    del boundary, backwards
    if unsorted:
        data = data.sort([id_order(data[id_name]), time_col])
        runs = id_order(data[id_name]).rle().struct.unnest()
        t = data[time_col].to_physical().cast(pl.Int64).to_numpy()
    return data, t, runs["len"].to_numpy().astype(np.int64)


def _handle_missing(
    data: pl.DataFrame,
    grid: TimeGrid,
    value_cols: list[str],
    missing: str,
    *,
    id_col: str | None,
    time_col: str,
) -> tuple[pl.DataFrame, np.ndarray | None]:
    """Refuse gaps and missing values (``missing="error"``) or fill them by the policy; also
    the cells interpolated (see :func:`~forecaster.data.gaps.fill_gaps`)."""
    id_name = id_col if id_col is not None else SERIES_ID
    gap = grid.gap_rows.size > 0
    null_counts = data.select(pl.col(value_cols).null_count()).row(0)
    if missing == "error":
        if gap:
            advice = integer_dates_advice(data[time_col])
            if advice is not None:  # not "pass missing='ffill'": it would make up the months
                raise DataValidationError(
                    f"{grid.n_missing} time steps are missing from the regular {grid.freq} "
                    f"grid. {advice}"
                )
            raise DataValidationError(
                f"{grid.n_missing} time steps are missing from the regular {grid.freq} grid "
                f"(gaps after "
                f"{row_examples(data, row_mask(len(grid.t), grid.gap_rows), id_name, time_col)}). "
                "Pass missing='ffill', 'zero' or 'interpolate' to fill them, or a different freq=."
            )
        if any(null_counts):
            bad = {c: n for c, n in zip(value_cols, null_counts, strict=True) if n}
            mask = data.select(pl.any_horizontal(pl.col(list(bad)).is_null())).to_series()
            raise DataValidationError(
                f"{MISSING_VALUES_ERROR}{bad}, e.g. at "
                f"{row_examples(data, mask, id_name, time_col)}. Pass missing='ffill', 'zero' or "
                "'interpolate' to fill them, or clean the data first."
            )
        return data, None
    if not (gap or any(null_counts)):
        return data, None
    periods = grid.periods
    if periods is None:
        step = grid.freq.step_in(data[time_col].dtype)
        t, starts, lengths = grid.t, grid.offsets[:-1], np.diff(grid.offsets)
        periods = (t - np.repeat(t[starts], lengths)) // step
    return fill_gaps(data, id_name, time_col, value_cols, periods, grid.offsets, grid.freq, missing)

"""Checks of column roles, keys and values, with messages that name a few offending rows.

The one check of each kind, shared by :func:`~forecaster.data.validate.validate_frame`, the
``future`` frame of ``predict`` and the frames of :mod:`forecaster.evaluation.metrics`.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import polars as pl

from forecaster._columns import BACKTEST_KEYS, FOLD_COLUMNS, actual_column, is_bound_column
from forecaster._polars import collect
from forecaster._validation import check
from forecaster.data.frames import MAX_EXAMPLES, READ_ERRORS, SERIES_ID, format_list
from forecaster.data.wording import setting, settings_named
from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    TooFewRowsError,
    warn_at_caller,
)

__all__ = [
    "check_float32_range",
    "check_output_names",
    "check_roles",
    "check_unique_keys",
    "check_values",
    "dropped_series_to",
    "frame_rename",
    "in_frame",
    "long_enough",
    "missing_columns_message",
    "no_training_window",
    "not_numeric_message",
    "row_examples",
    "warn_dropped",
]


def check_roles(
    *,
    target: Any,
    time_col: Any,
    id_col: Any = None,
    covariates: Any = None,
    future_covariates: Any = None,
    static_covariates: Any = None,
) -> dict[str, tuple[str, ...]]:
    """Check the column arguments (parameter table) and that no column has two roles.

    Returns
    -------
    dict
        Role name to column names: ``target``, ``covariate``, ``future covariate``, ``id``
        (when given), ``time`` and ``static covariate`` (when given).

    Examples
    --------
    >>> check_roles(target="y", time_col="t", covariates="y")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: Column 'y' is used both as target and as \
covariate. Each column can have one role only: pass target=..., covariates=... without it.
    """
    if target is None:
        raise DataValidationError(
            "target is required: the name of the column to forecast (or a list of names), "
            "e.g. target='close'."
        )
    roles = {
        "target": check("target", target),
        "covariate": check("covariates", covariates) or (),
        "future covariate": check("future_covariates", future_covariates) or (),
    }
    if check("id_col", id_col) is not None:
        roles["id"] = (id_col,)
    roles["time"] = (check("time_col", time_col),)
    if check("static_covariates", static_covariates):
        roles["static covariate"] = check("static_covariates", static_covariates)
    arguments = {
        "target": "target",
        "covariate": "covariates",
        "future covariate": "future_covariates",
        "id": "id_col",
        "time": "time_col",
        "static covariate": "static_covariates",
    }
    seen: dict[str, str] = {}
    for role, names in roles.items():
        for name in names:
            if name in seen:
                raise DataValidationError(
                    f"Column {name!r} is used both as {seen[name]} and as {role}. Each column "
                    f"can have one role only: pass {arguments[seen[name]]}=..., "
                    f"{arguments[role]}=... without it."
                )
            seen[name] = role
    return roles


def frame_rename(name: str, several: bool = False) -> str:
    """The fix of a column ``name`` :func:`check_output_names` refuses (``several``: one of
    them): rename it in the frame.

    Examples
    --------
    >>> frame_rename("fold")
    "Rename the column (e.g. frame.rename({'fold': 'fold_value'}))."
    """
    which = "them" if several else "the column"
    return f"Rename {which} (e.g. frame.rename({{{name!r}: {name + '_value'!r}}}))."


def check_output_names(
    roles: dict[str, tuple[str, ...]],
    *,
    backtests: bool = True,
    fix: Callable[[str, bool], str] = frame_rename,
) -> None:
    """Refuse target, id and time columns (``roles`` from :func:`check_roles`) named like a
    column forecasts carry beside them: ``origin`` (a list of cutoffs), ``stale_steps`` (a
    pipeline's or a served model's forecasts of a series that ends early), a target's
    interval and quantile columns (``<target>_lo_<L>``, ``<target>_hi_<L>``,
    ``<target>_q<P>``), which would replace them in the forecasts, a target's actual values
    (``<target>_actual``, in the forecasts of ``backtest`` and ``calibrate``), the other
    columns of those forecasts (:data:`~forecaster._columns.BACKTEST_KEYS`: ``fold``,
    ``cutoff``, ``step``) and, for the id, those of a backtest's folds frame beside it
    (:data:`~forecaster._columns.FOLD_COLUMNS`: ``model``, ``train_start``, ...). The one
    check of these names: ``fit`` (``check_used_params``) and the backtests make it, so that
    a model is never fitted on columns a later call of it refuses. With ``backtests=False``
    only the names ``predict`` writes (``validate_params``, which ``load`` asks too: a model
    saved before a name was refused still loads and forecasts; its backtests refuse it).
    Covariates are in none of these frames: any name of theirs is accepted. ``fix``: the
    sentence that says how to rename a refused column (:func:`frame_rename`; a pipeline names
    its spec key instead).

    Examples
    --------
    >>> check_output_names({"target": ("a", "a_lo_80"), "time": ("t",)})
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: Column 'a_lo_80' (target) is named like the \
interval or quantile column predict writes for target 'a': the forecasts would replace one \
with the other. Rename the column (e.g. frame.rename({'a_lo_80': 'a_lo_80_value'})).
    """
    targets = roles["target"]
    named = [(name, role) for role in ("target", "id", "time") for name in roles.get(role, ())]
    for name, role in named:
        if name in ("origin", "stale_steps"):
            raise DataValidationError(
                f"Column {name!r} ({role}) is named like a column forecasts carry beside the "
                "targets (origin: each forecast's origin, with a list of cutoffs; stale_steps: "
                "how far a series' data ends before the as-of, in a pipeline's or a served "
                f"model's forecasts): one would replace the other. {fix(name, False)}"
            )
        for target in targets:
            _check_target_outputs(name, role, target, (backtests, fix))
    if not backtests:
        return
    clash = [n for n, role in named if n in BACKTEST_KEYS or (role == "id" and n in FOLD_COLUMNS)]
    if clash:
        raise DataValidationError(
            f"Columns {clash} clash with the output columns of a backtest {BACKTEST_KEYS} or, "
            f"for the id, {FOLD_COLUMNS} (covariates may have any name): every backtest and "
            f"calibrate of the model would refuse them. {fix(clash[0], True)}"
        )


def _check_target_outputs(
    name: str, role: str, target: str, checks: tuple[bool, Callable[[str, bool], str]]
) -> None:
    """Refuse the column ``name`` (of ``role``) named like an interval or quantile column of
    ``target`` or, with ``backtests``, its actual values column (``checks``: ``backtests``
    and the ``fix`` of :func:`check_output_names`)."""
    backtests, fix = checks
    if is_bound_column(name, target):
        raise DataValidationError(
            f"Column {name!r} ({role}) is named like the interval or quantile column "
            f"predict writes for target {target!r}: the forecasts would replace one "
            f"with the other. {fix(name, False)}"
        )
    if backtests and name == actual_column(target):
        raise DataValidationError(
            f"Column {name!r} ({role}) is named like the column of the actual values "
            f"of target {target!r} that backtest and calibrate write beside its "
            "forecasts: one would replace the other, and the model could be neither "
            f"backtested nor calibrated. {fix(name, False)}"
        )


_RENAME_COLUMNS = "Pass the right column names or rename the frame's columns."
"""The fix :func:`missing_columns_message` gives by default (a library call's)."""


def missing_columns_message(
    missing: list[str], available: list[str], role: str, fix: str | None = None
) -> str:
    """The message for columns of ``role`` missing from a frame: close names, the available
    columns, ``fix`` (default: pass the right names or rename the frame's columns) and a hint
    when the file looks read with the wrong delimiter."""
    hints = []
    for name in missing:
        close = difflib.get_close_matches(name, available, n=1)
        if close:
            hints.append(f"{name!r} (did you mean {close[0]!r}?)")
        else:
            hints.append(repr(name))
    delimiter = ""
    for separator, label in ((";", "';'"), ("\t", "a tab"), ("|", "'|'")):
        if any(separator in column for column in available):
            delimiter = (
                f" A column name contains {label}: the file looks {label}-delimited but was "
                f"read as comma-separated; read it with separator={separator!r} (in a pipeline "
                "spec: source.separator)."
            )
            break
    return (
        f"The frame has no {role} column {', '.join(hints)}. "
        f"Available columns: {format_list(available, 20)}. "
        f"{fix or _RENAME_COLUMNS}{delimiter}"
    )


def not_numeric_message(
    frame: pl.DataFrame | pl.LazyFrame,
    name: str,
    dtype: Any,
    *,
    role: str = "",
    fix: str | None = None,
    decimal_comma: bool = False,
) -> str:
    """Why a value column is not numeric, with a few offending values for text columns.
    ``role``: what the column is (``"target"``: "Target column 'y' ..."); ``fix``: how to
    make it numbers (default: how to convert a frame's column); ``decimal_comma``: the
    numbers are written with a decimal comma, as the CSV reader's ``decimal_comma`` reads them
    (``9,868`` is a number, ``1234.5`` and ``1.234,5`` are offending values)."""
    column = f"{role.capitalize()} column {name!r}" if role else f"Column {name!r}"
    fix = fix or (
        f"Convert it, e.g. pl.col({name!r}).cast(pl.Float64, strict=False) (unparseable "
        "values become null), read the file with null_values=[...] for placeholders such as "
        "'n/a', or drop the column from the columns."
    )
    if not (dtype in (pl.String, pl.Categorical, pl.Null) or isinstance(dtype, pl.Enum)):
        return (
            f"{column} must be numeric, got {dtype}. Convert it to a number column "
            "(integer, float or boolean) or drop it from the columns."
        )
    if dtype == pl.Null:
        return (
            f"{column} must be numeric, got Null: every value is missing. Cast it, e.g. "
            f"pl.col({name!r}).cast(pl.Float64), and choose a missing= policy, or drop it."
        )
    text = pl.col(name).cast(pl.String)
    number = text.cast(pl.Float64, strict=False)
    if decimal_comma:  # a point is not read there: 1234.5 is text, as 1.234,5
        written = text.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)
        number = pl.when(text.str.contains(".", literal=True)).then(None).otherwise(written)
    bad = text.filter(text.is_not_null() & number.is_null())
    try:
        lazy = frame.lazy().select(bad.unique(maintain_order=True).head(MAX_EXAMPLES))
        examples = collect(lazy, streaming=True).to_series().to_list()
    except READ_ERRORS:
        examples = []
    if examples:
        return (
            f"{column} must be numeric, got {dtype} with values that are not "
            f"numbers, e.g. {format_list(examples)}. {fix}"
        )
    return f"{column} must be numeric, got {dtype}. {fix}"


def row_examples(
    frame: pl.DataFrame, mask: pl.Series | np.ndarray, id_col: str, time_col: str
) -> str:
    """A few (series, time) of the rows of ``mask``, for messages."""
    rows = frame.filter(pl.Series(mask)).select(id_col, time_col).head(MAX_EXAMPLES)
    parts = []
    for key, ts in rows.iter_rows():
        parts.append(f"({time_col}={ts})" if id_col == SERIES_ID else f"({key!r}, {ts})")
    return ", ".join(parts)


def in_frame(what: str) -> str:
    """The words " of the <what>" for a message, nothing for the plain ``"frame"``."""
    return "" if what == "frame" else f" of the {what}"


def check_unique_keys(frame: pl.DataFrame, keys: Sequence[str], *, what: str = "frame") -> None:
    """Refuse a frame with more than one row per key (e.g. (id, time)), naming a few.

    Used for every frame that is matched on its keys without going through
    :func:`~forecaster.data.validate.validate_frame` (which finds duplicates while it sorts):
    the ``future`` frame of ``predict`` and the frames of :mod:`forecaster.evaluation.metrics`.

    Examples
    --------
    >>> check_unique_keys(pl.DataFrame({"t": [1, 1], "y": [1.0, 2.0]}), ["t"], what="actual frame")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: 2 rows of the actual frame share their (t), \
e.g. (1,). Expected one row per (t): aggregate or drop the duplicates first, e.g. \
frame.unique(subset=['t'], keep='last').
    """
    keys = list(keys)
    if not keys or frame.height < 2:
        return
    repeated = frame.select(pl.struct(keys).is_duplicated()).to_series()
    if not repeated.any():
        return
    examples = frame.filter(repeated).select(keys).unique(maintain_order=True).head(3).rows()
    label = ", ".join(keys)
    raise DataValidationError(
        f"{int(repeated.sum())} rows{in_frame(what)} share their ({label}), e.g. "
        f"{', '.join(map(repr, examples))}. Expected one row per ({label}): aggregate or drop "
        f"the duplicates first, e.g. frame.unique(subset={keys}, keep='last')."
    )


def check_float32_range(frame: pl.DataFrame, columns: Sequence[str], what: str = "") -> None:
    """Refuse values of ``columns`` (Float64) that float32, which the networks compute in,
    cannot hold: beyond ±3.4e38, or nonzero below 1.2e-38 (made 0 or imprecise). ``what``
    names the frame in the message (e.g. ``" of the future frame"``).

    Examples
    --------
    >>> check_float32_range(pl.DataFrame({"x": [1e-50, 0.0]}), ["x"])
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: Values in 'x' are nonzero but below the \
float32 range (1.2e-38) used for training, which makes them 0 or loses their precision. \
Rescale those columns (e.g. multiply by a constant).
    """
    if not columns:
        return
    info, size = np.finfo(np.float32), pl.col(columns).abs()
    counts = frame.select(
        (size > float(info.max)).sum().name.suffix("_big"),
        ((size > 0) & (size < float(info.tiny))).sum().name.suffix("_small"),
    ).row(0)
    for found, problem, fix in (
        (counts[: len(columns)], "exceed the float32 range (±3.4e38) used for training",
         "divide by a constant or take a log"),
        (counts[len(columns) :], "are nonzero but below the float32 range (1.2e-38) used for "
         "training, which makes them 0 or loses their precision", "multiply by a constant"),
    ):  # fmt: skip
        bad = [c for c, n in zip(columns, found, strict=True) if n]
        if bad:
            raise DataValidationError(
                f"Values in {format_list(bad)}{what} {problem}. Rescale those columns (e.g. {fix})."
            )


def check_values(
    frame: pl.DataFrame,
    columns: Sequence[str],
    *,
    id_name: str,
    time_col: str,
    what: str = "frame",
    missing: bool = True,
    fix: str = "",
) -> None:
    """Refuse infinite values and, with ``missing=True``, null or NaN values in ``columns``,
    naming the columns and a few (series, time) where they are.

    The one check of value columns: :func:`~forecaster.data.validate.validate_frame`
    (infinities; its ``missing=`` policy handles the rest), the ``future`` frame of ``predict`` and
    the actual values of :func:`forecaster.evaluation.backtest.evaluate`. ``id_name`` is
    ``"__series__"`` for a single series.

    Examples
    --------
    >>> frame = pl.DataFrame({"__series__": [0, 0], "t": [1, 2], "x": [1.0, float("nan")]})
    >>> check_values(frame, ["x"], id_name="__series__", time_col="t", what="future frame")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.DataValidationError: Missing values (NaN or null) in {'x': 1} of \
the future frame, e.g. at (t=2). Expected a number at every step.
    """
    columns = list(columns)
    floats = [c for c in columns if frame.schema[c].is_float()]
    if floats:
        inf_counts = frame.select(pl.col(floats).is_infinite().sum()).row(0)
        if any(inf_counts):
            bad = [c for c, n in zip(floats, inf_counts, strict=True) if n]
            mask = frame.select(pl.any_horizontal(pl.col(bad).is_infinite())).to_series()
            raise DataValidationError(
                f"Infinite values in {format_list(bad)}{in_frame(what)}: e.g. at "
                f"{row_examples(frame, mask, id_name, time_col)}. Expected finite numbers. "
                + (
                    fix
                    or "Replace them (e.g. pl.when(pl.col(c).is_infinite()).then(None)) and "
                    "choose a missing= policy, or fix the source."
                )
            )
    if not missing:
        return
    nan = [pl.col(c).is_nan() if c in floats else pl.lit(False) for c in columns]
    holes = [(pl.col(c).is_null() | n).alias(c) for c, n in zip(columns, nan, strict=True)]
    flags = frame.select(holes)
    counts = flags.sum().row(0)
    if any(counts):
        bad = {c: int(n) for c, n in zip(columns, counts, strict=True) if n}
        mask = flags.select(pl.any_horizontal(list(bad))).to_series()
        raise DataValidationError(
            f"Missing values (NaN or null) in {bad}{in_frame(what)}, e.g. at "
            f"{row_examples(frame, mask, id_name, time_col)}. "
            + (fix or "Expected a number at every step.")
        )


def long_enough(
    lengths: np.ndarray,
    ids: pl.Series,
    min_length: int,
    length_reason: str,
) -> np.ndarray:
    """Which series have at least ``min_length`` rows: the shorter ones are named in one
    :class:`~forecaster.exceptions.ForecasterWarning` ("Dropped ..."), and a
    :class:`~forecaster.exceptions.DataValidationError` says when none has. The one rule of
    :meth:`Panel.from_frame <forecaster.data.panel.Panel.from_frame>` (its ``min_length``)
    and of a fit's series too short for a training window.

    Parameters
    ----------
    lengths : numpy.ndarray
        Rows per series.
    ids : polars.Series
        The series' ids, one per series, for the warning.
    min_length : int
        The fewest rows a series keeps.
    length_reason : str
        What ``min_length`` is (e.g. ``"lookback + horizon"``), for the messages; one that
        starts with ``"the fitted "`` is a fitted model's and cannot be made shorter.

    Returns
    -------
    numpy.ndarray
        Boolean, one per series: True for those kept.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     long_enough(np.array([3, 1]), pl.Series(["a", "b"]), 2, "two rows").tolist()
    [True, False]
    >>> str(caught[0].message)
    "Dropped 1 series shorter than 2 rows (two rows): 'b'."
    """
    keep = np.asarray(lengths) >= min_length
    if keep.all():
        return keep
    if not keep.any():
        fix = (
            "Pass more history of each series (or refit the model with a shorter lookback)."
            if length_reason.startswith("the fitted ")
            else f"Use a shorter {settings_named(length_reason.replace(' + ', ' or '))}, or "
            "provide more history."
        )
        raise TooFewRowsError(
            f"Every series is shorter than the {min_length} rows needed "
            f"({length_reason}); the longest has {int(np.max(lengths))} rows. {fix}"
        )
    warn_dropped([(ids.filter(pl.Series(~keep)).to_list(), min_length, length_reason)])
    return keep


def no_training_window(estimator: Any, lookback: int, before: np.ndarray) -> TooFewRowsError:
    """The error of a fit whose validation hold-out leaves no series a training window
    (``before``: the rows before each series' hold-out), naming what a window takes and what
    to change (not the lookback that ``lookback="auto"`` chose)."""
    horizon, auto = int(estimator.horizon), estimator.lookback == "auto"
    room = int(np.max(before, initial=0))
    chosen = (
        f"{setting('lookback', 'auto')} chose {lookback}" if auto else setting("lookback", lookback)
    )
    return TooFewRowsError(
        f"No training windows remain after holding out the last validation steps of "
        f"every series ({setting('validation_size', estimator.validation_size)}): a window "
        f"takes {lookback + horizon} rows before the hold-out ({chosen}, "
        f"{setting('horizon', horizon)}), and no series has more than {room}. Lower "
        f"{setting('validation_size')} (0: no validation split), "
        f"{settings_named('the horizon' if auto else 'lookback or horizon')}, or provide "
        "longer series."
    )


DroppedGroups = list[tuple[list[Any], int, str]]
"""Series left out for being short: ``(ids, min_length, length_reason)`` per group."""

_receiver: contextvars.ContextVar[Callable[[DroppedGroups], None] | None] = contextvars.ContextVar(
    "forecaster_dropped_series_receiver", default=None
)


@contextlib.contextmanager
def dropped_series_to(receive: Callable[[DroppedGroups], None]) -> Iterator[None]:
    """Within the block (of this thread), the series that :func:`warn_dropped` would name
    for being too short for a training window go to ``receive`` (its ``groups``) instead of
    a warning: the caller (a pipeline run) names them in its own words. Those shorter than a
    fitted model's lookback (a reason that starts with ``"the fitted "``: not forecast) are
    still warned about.

    Examples
    --------
    >>> told = []
    >>> with dropped_series_to(told.extend):
    ...     warn_dropped([(["a"], 5, "lookback + horizon")])
    >>> told
    [(['a'], 5, 'lookback + horizon')]
    """
    token = _receiver.set(receive)
    try:
        yield
    finally:
        _receiver.reset(token)


def warn_dropped(groups: DroppedGroups) -> None:
    """One :class:`~forecaster.exceptions.ForecasterWarning` ("Dropped ...") naming the series
    left out for being short: ``groups`` of ``(ids, min_length, length_reason)``, the ids of
    the series shorter than ``min_length`` rows (``length_reason``), as :func:`long_enough`
    names them; groups of the same rows and reason are named together (a fit that leaves out
    series in several rounds warns once). Nothing when no series is named. Within a
    :func:`dropped_series_to` block, the groups go to its receiver instead (but a fitted
    model's).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_dropped([(["a"], 5, "r"), (["b"], 7, "s"), (["c"], 5, "r")])
    >>> str(caught[0].message)
    "Dropped 3 series: 2 shorter than 5 rows (r): 'a', 'c'; 1 shorter than 7 rows (s): 'b'."
    """
    receive = _receiver.get()
    if receive is not None:
        fitted = [group for group in groups if group[2].startswith("the fitted ")]
        told = [group for group in groups if group not in fitted and group[0]]
        if told:
            receive(told)
        groups = fitted
    merged: dict[tuple[int, str], list[Any]] = {}
    for ids, min_length, length_reason in groups:
        merged.setdefault((int(min_length), length_reason), []).extend(ids)
    parts = [
        f"{len(ids)} series shorter than {min_length} rows ({reason}): {format_list(ids, 10)}"
        for (min_length, reason), ids in merged.items()
        if ids
    ]
    total = sum(len(ids) for ids in merged.values())
    if len(parts) == 1:
        message = f"Dropped {parts[0]}."
    elif parts:
        message = (
            f"Dropped {total} series: "
            + "; ".join(p.replace(" series", "", 1) for p in parts)
            + "."
        )
    else:
        return
    warn_at_caller(message, ForecasterWarning)

"""Cross-validation over time cutoffs of a long frame: :class:`TemporalSplit`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

from forecaster._validation import check
from forecaster.data.frames import polars_frame
from forecaster.evaluation.origins import uses_calendar
from forecaster.exceptions import (
    CrossSeriesWarning,
    DataValidationError,
    ForecasterWarning,
    TooFewRowsError,
    warn_at_caller,
)

__all__ = ["TemporalSplit"]


class TemporalSplit:
    """Cross-validation over time cutoffs of a long frame (for ``GridSearchCV``).

    Fold ``k`` trains on the rows up to its cutoff and tests each series on its rows up to the
    cutoff plus its next ``test_size`` steps (the history the forecast needs plus the
    unseen steps), so :meth:`RNNForecaster.score` forecasts exactly the unseen steps: all
    ``test_size`` of them, also when they are more than the forecaster's ``horizon`` (from
    origins every ``horizon`` steps back from the fold's end: ``test_size=24`` and
    ``horizon=6`` score four forecasts per series, from the cutoff and 6, 12 and 18 steps
    after it; a ``test_size`` that is no multiple of ``horizon`` has its first forecast start
    before the cutoff, and scores its steps after the cutoff only).
    The own cutoffs of a series are the ``n_splits`` last multiples of ``test_size`` steps
    before its own last row. Where the folds are on a panel (``id_col``) is ``origins``, as in
    :func:`~forecaster.evaluation.backtest.backtest`:

    - ``"calendar"``: fold ``k`` has one cutoff ``T_k`` for all series, the latest of the
      series' own fold-``k`` cutoffs (that of the series that end last). It trains on every
      series' rows at or before ``T_k``, and tests each series on its rows up to its last
      row at or before ``T_k`` plus its next ``test_size`` steps (fewer for a series that
      ends within them: ``score`` leaves such a series out, with a warning). A series with
      no row after ``T_k`` (it ended at or before it) is left out of the fold's test rows,
      its rows still trained on (one warning per ``split`` counts those (fold, series)
      pairs). No fold's model sees a row after ``T_k``, and every tested step is after it.
      Every series the folds keep has rows up to ``T_k`` (``T_k`` is at or after its own
      cutoff), so none is left out for want of history.
    - ``"series"``: fold ``k`` trains on each series' rows up to its own cutoff and tests it
      on the next ``test_size`` steps: every series gets ``test_size`` new steps in every
      fold, but series that end at different times have cutoffs at different times, and the
      fold's (global) model may be trained on one series' rows after another's test steps
      (a warning counts those (series, fold) pairs when ``"series"`` is passed).
    - ``"auto"``: ``"calendar"`` for a Date or Datetime time column (series that share a
      calendar), ``"series"`` for integer steps (independent sequences, whose positions are
      not times; no warning).

    For a panel whose series end together (on one grid) both give the same folds.

    A step is a distinct time of a series (a series with gaps counts its rows, which span at
    least as many steps of its regular grid). With ``id_col=None`` the whole frame is one
    timeline of its distinct times: right for one series, or for a panel whose series share
    their times, but a panel whose series are dated differently (one on the 1st of the month,
    one on the 15th) or end at different times needs ``id_col``, or its series get fewer (or
    no) new steps in some folds: ``split`` warns when the rows per time vary over the test
    times or are there fewer than at some earlier time (a series ended before them).
    :meth:`RNNForecaster.score` leaves out of a fold's score a series whose held-out steps
    are all or partly training rows of the fold when other series' are all new, with a
    warning.

    Parameters
    ----------
    time_col : str, default "time"
    n_splits : int, default 3
    test_size : int, default 24
        Steps per series per test fold (the forecaster's ``horizon``, or a multiple of it:
        each step is scored once, see above). A forecaster whose ``horizon`` is longer refuses
        to score such a fold (the held-out steps of every series would include rows it was
        fitted on): see :meth:`RNNForecaster.score`.
    id_col : str or None, default None
        The series column of a panel (the forecaster's ``id_col``): the folds count each
        series' own steps. A series with no more than ``n_splits * test_size`` steps (none
        left to train on in the first fold) is left out of every fold, with a
        :class:`~forecaster.exceptions.ForecasterWarning`, as a backtest leaves out series too
        short for its folds; when no series is long enough, ``split`` raises
        :class:`~forecaster.exceptions.TooFewRowsError`.
    origins : {"auto", "calendar", "series"}, default "auto"
        Where a panel's folds are (with ``id_col``): one cutoff per fold for all series
        (``"calendar"``) or each series' own (``"series"``); see above. Without ``id_col``
        the frame is one timeline whose cutoffs are common times, the same folds under
        every choice (as ``backtest`` takes ``origins="series"`` for one series).

    Notes
    -----
    ``split(X, y=None, groups=None)`` yields ``(train, test)`` arrays of row positions in
    ``X`` (in frame order; the frame need not be sorted); ``y`` and ``groups`` are ignored.
    ``get_params`` and ``set_params`` follow scikit-learn's estimator contract, so
    ``sklearn.base.clone`` copies a splitter.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"time": range(10), "y": [0.0] * 10})
    >>> [(len(tr), len(te)) for tr, te in TemporalSplit("time", 2, 3).split(frame)]
    [(4, 7), (7, 10)]

    Two series dated apart (even and odd times), the second ending two steps earlier: each
    gets three new steps per fold.

    >>> panel = pl.DataFrame({"id": ["a"] * 10 + ["b"] * 8,
    ...                       "time": [*range(0, 20, 2), *range(1, 17, 2)]})
    >>> cv = TemporalSplit("time", n_splits=2, test_size=3, id_col="id")
    >>> [(panel[tr].group_by("id").len().sort("id")["len"].to_list(),
    ...   panel[te].group_by("id").len().sort("id")["len"].to_list())
    ...  for tr, te in cv.split(panel)]
    [([4, 2], [7, 5]), ([7, 5], [10, 8])]
    """

    def __init__(
        self,
        time_col: str = "time",
        n_splits: int = 3,
        test_size: int = 24,
        id_col: str | None = None,
        origins: str = "auto",
    ) -> None:
        self.time_col = time_col
        self.n_splits = n_splits
        self.test_size = test_size
        self.id_col = id_col
        self.origins = origins

    def __repr__(self) -> str:
        """The constructor call with every parameter, as scikit-learn's splitters show theirs
        (``GridSearchCV``'s repr shows it too)."""
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _PARAMS)
        return f"{type(self).__name__}({shown})"

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters, as given (scikit-learn's contract: ``clone``).

        Parameters
        ----------
        deep : bool, default True
            Not read: the splitter holds no estimators.
        """
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> TemporalSplit:
        """Set constructor parameters (checked in ``split``, as the estimators check theirs
        in ``fit``).

        Parameters
        ----------
        **params : object
            New values of parameters named as in the constructor (``origins="series"``).

        Returns
        -------
        TemporalSplit
            This splitter.

        Raises
        ------
        ValueError
            For a name that is not a parameter of the splitter.
        """
        unknown = sorted(set(params) - set(_PARAMS))
        if unknown:
            raise ValueError(
                f"TemporalSplit has no parameter(s) {unknown}; its parameters are {list(_PARAMS)}."
            )
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """The number of folds, ``n_splits``.

        Parameters
        ----------
        X, y, groups : object, optional
            Not read: scikit-learn's splitter protocol passes them.
        """
        return self.n_splits

    def split(
        self, X: pl.DataFrame, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` row positions of ``X`` per fold, oldest cutoff first.

        Parameters
        ----------
        X : polars.DataFrame or pandas.DataFrame
            The frame, with the time column (and ``id_col``), in any row order (a pandas
            frame is read as :meth:`RNNForecaster.fit` reads it; the positions are its rows').
        y, groups : object, optional
            Not read: scikit-learn's splitter protocol passes them.

        Yields
        ------
        (numpy.ndarray, numpy.ndarray)
            The positions of the fold's training rows and of its test rows.

        Raises
        ------
        DataValidationError
            For a frame that is not a polars or pandas DataFrame with the time column (and
            ``id_col``), a time column that is not Datetime, Date or integer or has nulls, an
            ``id_col`` with nulls.
        TooFewRowsError
            For too few steps for the folds (every series too short with ``id_col``), as a
            backtest's; a subclass of ``DataValidationError``.
        """
        n_splits, test_size = check("n_splits", self.n_splits), check("test_size", self.test_size)
        time_col, id_col = check("time_col", self.time_col), check("id_col", self.id_col)
        origins = check("origins", self.origins)
        X = polars_frame(X, what="frame of TemporalSplit")  # pandas: the rows in their order
        self._check_frame(X, time_col, id_col)
        needed = n_splits * test_size
        if id_col is None:
            rank = X[time_col].rank("dense").to_numpy().astype(np.int64)
            n_times = int(rank.max()) if rank.size else 0
            if needed >= n_times:
                raise TooFewRowsError(
                    f"{n_splits} folds of {test_size} steps need more than {needed} time "
                    f"steps; the frame has {n_times}. Use fewer folds or a smaller test_size."
                )
            self._warn_uneven(rank, n_times, needed, time_col)
            from_end = n_times - rank
        else:
            from_end = self._steps_from_end(X, time_col, id_col, n_splits, test_size)
            if uses_calendar(origins, X[time_col]):
                yield from _calendar_folds(X, time_col, id_col, from_end, n_splits, test_size)
                return
        folds = _own_folds(from_end, n_splits, test_size)
        if id_col is not None and origins == "series":
            _warn_cross_series(X, time_col, id_col, folds)
        yield from folds

    def _check_frame(self, X: Any, time_col: str, id_col: str | None) -> None:
        """Refuse a frame that is not a polars DataFrame (pandas frames are converted before)
        with the time (and id) column, a time column that is not temporal or integer or has
        nulls, or ids with nulls."""
        required = [time_col] if id_col is None else [time_col, id_col]
        if not isinstance(X, pl.DataFrame) or not set(required) <= set(X.columns):
            names = f"the time column {time_col!r}" + (
                f" and the id column {id_col!r}" if id_col is not None else ""
            )
            raise DataValidationError(
                f"TemporalSplit needs a polars or pandas DataFrame with {names}, got "
                f"{type(X).__module__}.{type(X).__name__}"
                + (f" with columns {X.columns}" if isinstance(X, pl.DataFrame) else "")
                + (
                    ". Collect a LazyFrame first (GridSearchCV indexes rows)."
                    if isinstance(X, pl.LazyFrame)
                    else "."
                )
            )
        dtype = X.schema[time_col]
        if not (dtype.is_temporal() or dtype.is_integer()) or X[time_col].null_count():
            raise DataValidationError(
                f"TemporalSplit's time column {time_col!r} must be Datetime, Date or an "
                f"integer step without nulls, got {dtype} with "
                f"{X[time_col].null_count()} nulls."
            )
        if id_col is not None and X[id_col].null_count():
            raise DataValidationError(
                f"TemporalSplit's id column {id_col!r} must name the series of every row, got "
                f"{X[id_col].null_count()} nulls. Fill or drop the rows without a series."
            )

    def _steps_from_end(
        self, X: pl.DataFrame, time_col: str, id_col: str, n_splits: int, test_size: int
    ) -> np.ndarray:
        """Per row, how many steps of its series follow it (0 for the series' last time);
        -1 for the rows of series too short for the folds, which are left out with a
        warning (refused when every series is)."""
        needed = n_splits * test_size
        step = pl.col(time_col).rank("dense").over(id_col)
        per_row = X.select(
            (step.max().over(id_col) - step).cast(pl.Int64).alias("from_end"),
            step.max().over(id_col).cast(pl.Int64).alias("steps"),
        )
        keep = per_row["steps"] > needed
        if not keep.any():
            longest = (
                X.group_by(id_col, maintain_order=True)
                .agg(pl.col(time_col).n_unique().alias("steps"))
                .sort("steps", descending=True, maintain_order=True)
                .head(1)
            )
            has = (
                "the frame has no rows"
                if not longest.height
                else "the longest series ({!r}) has {}".format(*longest.row(0))
            )
            raise TooFewRowsError(
                f"{n_splits} folds of {test_size} steps need more than {needed} time steps "
                f"per series (test_size steps per fold and at least one to train on); {has}. "
                "Use fewer folds or a smaller test_size."
            )
        if not keep.all():
            short = (
                X.filter(~keep)
                .group_by(id_col, maintain_order=True)
                .agg(pl.col(time_col).n_unique().alias("steps"))
            )
            shown = ", ".join(f"{k!r} ({n})" for k, n in short.head(10).iter_rows())
            warn_at_caller(
                f"TemporalSplit left out {short.height} series with no more than the {needed} "
                f"time steps that {n_splits} folds of {test_size} steps test on (steps in "
                f"parentheses): {shown}{', ...' if short.height > 10 else ''}. Their rows are "
                "in no fold; use fewer folds or a smaller test_size to keep them.",
                ForecasterWarning,
            )
        return np.where(keep.to_numpy(), per_row["from_end"].to_numpy(), -1)

    def _warn_uneven(self, rank: np.ndarray, n_times: int, needed: int, time_col: str) -> None:
        """Without ``id_col``: warn when the number of rows per time varies over the folds'
        test times of a frame with repeated times, or is there below its most at any time (a
        panel whose series end at different times, before the test times too, or miss rows
        there: they get fewer, or no, new steps in some folds)."""
        if rank.size == n_times:  # every time once: one series
            return
        counts = np.bincount(rank, minlength=n_times + 1)
        rows, most = counts[n_times - needed + 1 :], int(counts.max())
        if rows.min() != rows.max() or rows.max() < most:
            there = f"{rows.min()}" + (f" to {rows.max()}" if rows.min() != rows.max() else "")
            warn_at_caller(
                f"TemporalSplit without id_col counts the distinct {time_col!r} times of the "
                f"whole frame, and the rows per time vary over its last {needed}, which the "
                f"folds test on (rows per time: {there} there, up to {most} in the whole "
                "frame): series that end before or among them or miss rows there get fewer "
                "(or no) new steps in some folds (score leaves such a series out, with a "
                "warning, when its model was fitted on some or all of its held-out steps and "
                "other series' are new; it refuses the fold when no series' are all new). "
                "Pass id_col (the series column) to give each series test_size new steps per "
                "fold.",
                ForecasterWarning,
            )


_PARAMS = ("time_col", "n_splits", "test_size", "id_col", "origins")
"""The constructor's parameters (``get_params``, ``set_params``)."""


def _own_folds(
    from_end: np.ndarray, n_splits: int, test_size: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds at each series' own cutoffs (``origins="series"``, or one timeline), oldest
    first: a row is in fold k's training rows when at least k * test_size steps of its series
    follow it, and in its test rows when at least (k - 1) * test_size do (``from_end`` -1,
    the rows of series left out: in none)."""
    return [
        (
            np.flatnonzero(from_end >= k * test_size),
            np.flatnonzero(from_end >= (k - 1) * test_size),
        )
        for k in range(n_splits, 0, -1)
    ]


def _physical_times(X: pl.DataFrame, time_col: str) -> np.ndarray:
    """The time column as int64 (dates' days, datetimes' instants: their order)."""
    return X[time_col].to_physical().to_numpy().astype(np.int64, copy=False)


def _calendar_folds(
    X: pl.DataFrame, time_col: str, id_col: str, from_end: np.ndarray, n_splits: int, test_size: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``origins="calendar"`` folds (see :class:`TemporalSplit`), oldest first, from
    ``from_end`` (per row, the steps of its series after it; -1 for series left out): fold
    k's cutoff ``T_k`` is the latest time of the rows ``k * test_size`` steps before their
    series' end; it trains on the kept rows at or before ``T_k`` and tests each series with a
    row after ``T_k`` on its rows up to ``test_size`` steps after its last row at or before
    ``T_k``. Warns once about the (fold, series) pairs left out of the test rows."""
    times = _physical_times(X, time_col)
    kept = from_end >= 0
    data = pl.DataFrame({"id": X[id_col], "t": times, "from_end": from_end})
    folds, cutoffs, ended_ids = [], [], []
    for k in range(n_splits, 0, -1):
        at_own_cut = np.flatnonzero(from_end == k * test_size)  # every kept series has one
        cut_row = at_own_cut[np.argmax(times[at_own_cut])]
        cutoff = times[cut_row]
        # per row: the steps of its series after its last row at or before the cutoff (0:
        # the series ended by then; -1: a series left out)
        last = (
            data.select(
                pl.col("from_end")
                .filter((pl.col("t") <= cutoff) & (pl.col("from_end") >= 0))
                .min()
                .over("id")
                .fill_null(-1)
            )
            .to_series()
            .to_numpy()
        )
        folds.append(
            (
                np.flatnonzero(kept & (times <= cutoff)),
                np.flatnonzero((last > 0) & (from_end >= last - test_size)),
            )
        )
        cutoffs.append(cut_row)
        ended_ids.append(X[id_col].filter(pl.Series(kept & (last == 0))).unique())
    ended = pl.concat(ended_ids)
    if ended.len():
        first, final = X[time_col].gather([cutoffs[0], cutoffs[-1]])
        shown = ended.unique(maintain_order=True).head(10).to_list()
        warn_at_caller(
            f"TemporalSplit (origins='calendar': one cutoff per fold for every series, the "
            f"latest of the series' own, from {first} to {final}) left {ended.len()} (fold, "
            f"series) pairs of {ended.n_unique()} series out of the folds' test rows: those "
            f"series have no row after the fold's cutoff (they ended at or before it): "
            f"{shown}{' ...' if ended.n_unique() > 10 else ''}. Their rows up to each cutoff "
            "are still trained on. Pass origins='series' to test every series on the last "
            "steps before its own end (the folds' models may then train on other series' "
            "rows after its test steps).",
            ForecasterWarning,
        )
    return folds


def _warn_cross_series(
    X: pl.DataFrame, time_col: str, id_col: str, folds: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    """Warn (``origins="series"`` passed) when a fold's training rows reach the first new
    test time of some series of the fold: its cutoffs are the series' own, at different
    times for series that end at different times, and the fold's model sees the other
    series' rows there."""
    times = _physical_times(X, time_col)
    leaked, where = 0, []
    for k, (train, test) in enumerate(folds):
        new = np.setdiff1d(test, train, assume_unique=True)
        first_new = (
            pl.DataFrame({"id": X[id_col].gather(new), "t": times[new]})
            .group_by("id")
            .agg(pl.col("t").min())["t"]
            .to_numpy()
        )
        pairs = int((first_new <= times[train].max()).sum()) if train.size else 0
        leaked += pairs
        where += [k] if pairs else []
    if leaked:
        warn_at_caller(
            "TemporalSplit(origins='series') counts each series' folds back from its own end, "
            f"and the series end at different times: in {leaked} (series, fold) pairs (folds "
            f"{where[:10]}) the fold's training rows (of other series) reach at or past the "
            "series' first test time, so a global model's scores may be optimistic. Pass "
            "origins='calendar' (the default for date and datetime time columns) for folds "
            "at common cutoffs that no training row passes.",
            CrossSeriesWarning,
        )

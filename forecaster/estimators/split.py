"""Cross-validation over time cutoffs of a long frame: :class:`TemporalSplit`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

from forecaster._validation import check
from forecaster.exceptions import DataValidationError

__all__ = ["TemporalSplit"]


class TemporalSplit:
    """Cross-validation over time cutoffs of a long frame (for ``GridSearchCV``).

    Fold ``k`` trains on the rows with time up to cutoff ``c_k`` and tests on the rows up to
    ``c_k`` plus the next ``test_size`` time steps (the history the forecast needs plus the
    held-out horizon), so :meth:`RNNForecaster.score` forecasts exactly the unseen steps. The
    cutoffs are the ``n_splits`` last multiples of ``test_size`` time steps before the end.

    Parameters
    ----------
    time_col : str
    n_splits : int, default 3
    test_size : int, default 24
        Time steps per test fold (use the forecaster's ``horizon``). A forecaster whose
        ``horizon`` is longer refuses to score such a fold (its held-out steps would include
        rows it was fitted on): see :meth:`RNNForecaster.score`.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"time": range(10), "y": [0.0] * 10})
    >>> [(len(tr), len(te)) for tr, te in TemporalSplit("time", 2, 3).split(frame)]
    [(4, 7), (7, 10)]
    """

    def __init__(self, time_col: str = "time", n_splits: int = 3, test_size: int = 24) -> None:
        self.time_col = time_col
        self.n_splits = n_splits
        self.test_size = test_size

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def split(
        self, X: pl.DataFrame, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n_splits, test_size = check("n_splits", self.n_splits), check("test_size", self.test_size)
        check("time_col", self.time_col)
        if not isinstance(X, pl.DataFrame) or self.time_col not in X.columns:
            raise DataValidationError(
                f"TemporalSplit needs a polars DataFrame with the time column {self.time_col!r}"
                f", got {type(X).__name__}"
                + (f" with columns {X.columns}" if isinstance(X, pl.DataFrame) else "")
                + ". Collect a LazyFrame first (GridSearchCV indexes rows)."
            )
        dtype = X.schema[self.time_col]
        if not (dtype.is_temporal() or dtype.is_integer()) or X[self.time_col].null_count():
            raise DataValidationError(
                f"TemporalSplit's time column {self.time_col!r} must be Datetime, Date or an "
                f"integer step without nulls, got {dtype} with "
                f"{X[self.time_col].null_count()} nulls."
            )
        rank = X[self.time_col].rank("dense").to_numpy().astype(np.int64)
        n_times = int(rank.max()) if rank.size else 0
        needed = n_splits * test_size
        if needed >= n_times:
            raise DataValidationError(
                f"{n_splits} folds of {test_size} steps need more than {needed} time "
                f"steps; the frame has {n_times}. Use fewer folds or a smaller test_size."
            )
        for k in range(n_splits, 0, -1):
            cutoff = n_times - k * test_size
            yield (
                np.flatnonzero(rank <= cutoff),
                np.flatnonzero(rank <= cutoff + test_size),
            )


# ------------------------------------------------------------------------------------------
# RNNRegressor

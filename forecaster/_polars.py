"""The one way the package collects a Polars ``LazyFrame``: with Polars' in-memory engine.

``LazyFrame.collect()`` with Polars' default engine (``"auto"``, which runs the streaming
engine in Polars 2.1) sums floats in an order that changes from run to run: the means of a
lazy group-by by several keys, or even the sum of one column over a large frame, can differ
in their last bits between two runs of the same query on the same data, at one Polars thread
as at several. The in-memory engine (the one Polars' own eager methods use) gives the same
bits every run, at about the same speed here (the scores of a backtest: see
``docs/benchmarks.md``), so a backtest's scores, ``evaluate``, ``score`` and every statistic
the package computes are reproducible. Every ``collect`` of the package goes through
:func:`collect` (``tests/test_architecture.py`` refuses any other), and Polars' global
configuration is left alone: the user's own queries keep the engine the user chose.

One case of the in-memory engine (and of Polars' eager methods) still adds in another order
each run, at two threads or more: a group-by of more than about 600,000 rows into fewer than
about 500 groups whose every aggregation Polars can compute by parts (sums, means and counts,
of a column or of an elementwise expression, filtered or not: ``pl.len()`` is one, while
``pl.len().cast(pl.Int64)``, a standard deviation or the root of a mean are not), which it
runs on its partitioned path. No group-by of float values in the package is of that kind
(``evaluation.frames`` pools its scores beside the count cast to ``Int64``; a test of
``evaluate`` over 720,000 points fails without that cast); a new one must not be either.

A query whose every value is exact in any order of the rows (counts, lengths, distinct
values, minimum and maximum, sums of integers or of row hashes), over a frame that may be a
scan not yet read, keeps Polars' default engine (``streaming=True``): it reads a scan in
batches instead of holding it whole (over a 50,000,000-row Parquet scan, the rows per series
peak at 0.3 GB of memory instead of 3.0 GB, the dataset fingerprint at 0.5 GB instead of
4.7 GB and in a third of the time).
"""

from __future__ import annotations

__all__ = ["collect"]

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl


def collect(lazy: pl.LazyFrame, *, streaming: bool = False) -> pl.DataFrame:
    """``lazy`` collected by Polars' in-memory engine: the same bits every run.

    Parameters
    ----------
    lazy : polars.LazyFrame
        The query (a scan, a group-by, ...).
    streaming : bool, default False
        True: Polars' default engine (streaming), for a query whose every value is exact in
        any order of the rows (counts, distinct values, min / max, integer or hash sums) and
        whose source may be a large scan: never for a float sum or mean.

    Returns
    -------
    polars.DataFrame
        Its result; its float reductions (sums, means) add in one order, run after run.

    Examples
    --------
    >>> import polars as pl
    >>> collect(pl.LazyFrame({"g": [1, 1, 2], "v": [1.0, 2.0, 4.0]}).group_by("g").len()).height
    2
    """
    if streaming:
        return lazy.collect()
    return lazy.collect(engine="in-memory")

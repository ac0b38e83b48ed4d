"""The window index and batch gathering.

A *window* is ``lookback`` input steps followed by ``horizon`` target steps of one series.
:func:`make_windows` lists every valid window of a :class:`~forecaster.data.panel.Panel` as one
row of a Polars frame ``(series, start, cutoff)``; it never copies values. Splits and backtest
folds are Polars filters on that frame by time, and :meth:`Windows.gather` builds a batch of
tensors by indexing the panel's values on the target device with ``start + arange(lookback +
horizon)``. Memory is linear in the data: the index costs 16 bytes per window (12 with Date
times) whatever the window length, where materialising all windows would cost
``4 * (lookback + horizon) * n_features`` bytes each.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import polars as pl
import torch

from forecaster._validation import Flag, check, describe_value, resolve_device
from forecaster.data.known_windows import (  # importable here as before
    KnownWindows,
    known_windows,
    origins_in_runs,
    window_spread,
)
from forecaster.data.panel import Panel
from forecaster.data.scaling_tensors import ScalingTensors
from forecaster.data.tensors import read_only_tensor
from forecaster.data.times import to_time_point
from forecaster.exceptions import DataValidationError, ForecasterWarning, warn_at_caller

__all__ = [
    "Batch",
    "KnownWindows",
    "Windows",
    "known_windows",
    "make_windows",
    "origins_in_runs",
    "window_spread",
]


class Batch(NamedTuple):
    """Tensors of a batch of windows.

    Attributes
    ----------
    x : torch.Tensor
        ``(B, lookback, n_features)``: every column over the input steps.
    y : torch.Tensor
        ``(B, horizon, n_targets)``: the targets over the forecast steps.
    future : torch.Tensor or None
        ``(B, horizon, n_future)``: future-known covariates over the forecast steps, or ``None``
        when the panel has none.
    series : torch.Tensor
        ``(B,)`` int64 series number of each window.
    """

    x: torch.Tensor
    y: torch.Tensor
    future: torch.Tensor | None
    series: torch.Tensor


@dataclass(frozen=True, eq=False)
class Windows:
    """The valid windows of a panel, as a Polars index frame.

    Attributes
    ----------
    panel : Panel
        The data the windows point into.
    index : polars.DataFrame
        One row per window: ``series`` (Int32, series number), ``start`` (row of the first input
        step in ``panel.values``; Int32, or Int64 for panels of 2**31 rows or more) and
        ``cutoff`` (the time of the last input step, i.e. the forecast origin), sorted by
        (series, start).
    lookback, horizon, stride : int

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"t": range(10), "y": [float(i) for i in range(10)]})
    >>> panel = Panel.from_frame(frame, target="y", time_col="t")
    >>> windows = make_windows(panel, lookback=3, horizon=2)
    >>> len(windows), windows.index["cutoff"].to_list()[:3]
    (6, [2, 3, 4])
    >>> batch = windows.gather([0, 5])
    >>> batch.x[:, :, 0].tolist(), batch.y[:, :, 0].tolist()
    ([[0.0, 1.0, 2.0], [5.0, 6.0, 7.0]], [[3.0, 4.0], [8.0, 9.0]])
    """

    panel: Panel
    index: pl.DataFrame
    lookback: int
    horizon: int
    stride: int = 1

    def __len__(self) -> int:
        return self.index.height

    @property
    def window_length(self) -> int:
        """``lookback + horizon``."""
        return self.lookback + self.horizon

    # -- times ---------------------------------------------------------------------------
    def target_start_time(self) -> pl.Series:
        """Time of the first forecast step of every window."""
        return self.panel.time.gather(self.index["start"] + self.lookback)

    def target_end_time(self) -> pl.Series:
        """Time of the last forecast step of every window."""
        return self.panel.time.gather(self.index["start"] + (self.window_length - 1))

    # -- selection -----------------------------------------------------------------------
    def filter(self, *predicates: pl.Expr | pl.Series | np.ndarray) -> Windows:
        """Windows whose index rows match every predicate: Polars expressions on the index
        columns (``series``, ``start``, ``cutoff``) or boolean masks of one entry per window.

        Anything else (an expression naming another column or not giving booleans, a mask of
        another length, integer positions) raises
        :class:`~forecaster.exceptions.DataValidationError`.

        Examples
        --------
        >>> import polars as pl
        >>> frame = pl.DataFrame({"t": range(10), "y": [0.0] * 10})
        >>> w = make_windows(Panel.from_frame(frame, target="y", time_col="t"), 3, 2)
        >>> len(w.filter(pl.col("cutoff") >= 5))
        3
        """
        preds = [p if isinstance(p, pl.Expr) else self._mask(p) for p in predicates]
        if not preds:
            return self
        try:
            return self.with_index(self.index.filter(*preds))
        except pl.exceptions.PolarsError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataValidationError(
                f"Cannot filter the windows with {', '.join(map(str, predicates))}: {first}. "
                "Predicates are "
                f"expressions on the index columns {self.index.columns} that give booleans, "
                "e.g. pl.col('cutoff') >= 5, or boolean masks of one entry per window."
            ) from exc

    def _mask(self, predicate: Any) -> pl.Series:
        """A boolean mask of one entry per window, or DataValidationError."""
        if isinstance(predicate, pl.Series):
            mask = predicate.to_numpy() if predicate.null_count() == 0 else None
        elif isinstance(predicate, np.ndarray | list | tuple):
            mask = np.asarray(predicate)
        else:
            mask = None
        if mask is None or mask.dtype != np.bool_ or mask.shape != (len(self),):
            found = describe_value(predicate)
            if mask is not None and mask.dtype.kind in "iu":
                found += " (integer positions: select them with a mask, e.g. "
                found += "np.isin(np.arange(len(windows)), positions))"
            elif mask is not None and mask.dtype == np.bool_:
                found += f" of shape {mask.shape}"
            raise DataValidationError(
                f"A window mask must be booleans without nulls, one per window ({len(self)}), "
                f"got {found}. Or pass an expression on the index columns {self.index.columns}."
            )
        return pl.Series(mask)

    def targets_between(self, after: Any = None, until: Any = None) -> Windows:
        """Windows whose every target time ``t`` satisfies ``after < t <= until``.

        Inputs may reach back before ``after`` (they are the past); targets never cross the
        bounds, so nothing after ``until`` is ever seen by these windows. The bounds are
        converted to the time column's dtype by :func:`forecaster.data.times.to_time_point` (dates,
        datetimes, ISO text, ``pl.date(...)``, ints for integer steps).
        """
        dtype = self.panel.time.dtype
        mask = np.ones(len(self), dtype=bool)
        if after is not None:
            bound = pl.lit(to_time_point(after, dtype, name="after"), dtype=dtype)
            mask &= self._times(self.lookback).select(pl.col("t") > bound).to_series().to_numpy()
        if until is not None:
            bound = pl.lit(to_time_point(until, dtype, name="until"), dtype=dtype)
            last = self._times(self.window_length - 1)
            mask &= last.select(pl.col("t") <= bound).to_series().to_numpy()
        return self.filter(mask)

    def _times(self, step: int) -> pl.DataFrame:
        """Frame ``t``: the time of each window's row ``start + step``."""
        return pl.DataFrame({"t": self.panel.time.gather(self.index["start"] + step)})

    def split(self, train_end: Any, val_end: Any = None) -> tuple[Windows, ...]:
        """Leak-free time-ordered split by target times.

        Parameters
        ----------
        train_end : date, datetime, ISO text, pl.date(...) or int
            Last time a training target may have (converted by
            :func:`forecaster.data.times.to_time_point`; a value of another kind raises
            :class:`~forecaster.exceptions.DataValidationError`).
        val_end : same, optional
            Last time a validation target may have; windows with targets after it form the test
            split.

        Returns
        -------
        tuple of Windows
            ``(train, val)`` or, with ``val_end``, ``(train, val, test)``. No target of a later
            split is inside an earlier split's windows (inputs or targets). Bounds between
            two grid times split there; a split that comes out empty (a bound before or after
            the data) gives a :class:`~forecaster.exceptions.ForecasterWarning` with the span
            of the windows' targets. No later value leaks into a split's values either: each
            reads the panel as known at its end (:meth:`~forecaster.data.panel.Panel.known_by`:
            a run ``missing="interpolate"`` filled across it holds the value before it).

        Examples
        --------
        >>> import polars as pl
        >>> frame = pl.DataFrame({"t": range(20), "y": [0.0] * 20})
        >>> w = make_windows(Panel.from_frame(frame, target="y", time_col="t"), 4, 2)
        >>> [len(s) for s in w.split(train_end=11, val_end=15)]
        [7, 3, 3]
        """
        dtype = self.panel.time.dtype
        train_end = to_time_point(train_end, dtype, name="train_end")
        if val_end is not None:
            val_end = to_time_point(val_end, dtype, name="val_end")
            if val_end <= train_end:
                raise DataValidationError(
                    f"val_end ({val_end!r}) must be after train_end ({train_end!r})."
                )
        train, val = (replace(self, panel=self.panel.known_by(e)) for e in (train_end, val_end))
        parts = {"train": train.targets_between(until=train_end)}
        parts["val"] = val.targets_between(after=train_end, until=val_end)
        if val_end is not None:
            parts["test"] = self.targets_between(after=val_end)
        empty = [name for name, part in parts.items() if len(self) and not len(part)]
        if empty:
            first, last = self.target_start_time().min(), self.target_end_time().max()
            warn_at_caller(
                f"split(train_end={train_end!r}, val_end={val_end!r}) leaves the {empty} "
                f"split(s) without windows; the windows' targets span {first} to {last}.",
                ForecasterWarning,
            )
        return tuple(parts.values())

    def with_index(self, index: pl.DataFrame) -> Windows:
        """The windows of ``index`` (e.g. some rows of :attr:`index`) on the same panel, with
        the same lookback, horizon and stride."""
        return Windows(self.panel, index, self.lookback, self.horizon, self.stride)

    # -- gathering -------------------------------------------------------------------------
    def _column_tensor(self, name: str) -> torch.Tensor:
        """An index column as a CPU tensor sharing the index's memory (read-only use)."""
        return read_only_tensor(self.index[name].to_numpy())

    def gather(
        self,
        rows: np.ndarray | torch.Tensor | list[int],
        device: str | torch.device = "cpu",
        scaling: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> Batch:
        """Tensors for the windows at positions ``rows`` of the index.

        Values are gathered on ``device`` from the panel's device copy (moved there once) by
        ``start + arange(lookback + horizon)``; nothing else is materialised. The inputs are
        those known at the window's origin (:meth:`~forecaster.data.panel.Panel.known_values`:
        a run that ``missing="interpolate"`` filled up to the origin holds the value before it).

        Parameters
        ----------
        rows : array-like of int
            Positions in :attr:`index` (not start rows), from 0 to ``len(self) - 1``: a 1-D
            list, NumPy array, torch tensor or polars Series of integers. Floats, booleans
            (pass ``np.flatnonzero(mask)``), nested lists and positions outside the index raise
            :class:`~forecaster.exceptions.DataValidationError`.
        device : str or torch.device, default "cpu"
            Checked by :func:`forecaster._validation.resolve_device`.
        scaling : (center, scale), optional
            Per-series tensors ``(n_series, n_features)``, row ``i`` for series ``i`` of
            :attr:`panel`, moved to ``device`` as float32; the batch is scaled. Those of
            ``PanelScaler.tensors`` carry their series and columns, which must be the panel's
            (``tensors(device, panel=windows.panel)`` builds them for any panel the scaler
            knows); of another pair only the shape is checked.
        """
        device = resolve_device(device)
        rows_t = torch.from_numpy(self._positions(rows))
        scaling = self._check_scaling(scaling, device)
        starts = self._column_tensor("start")[rows_t].long().to(device)
        series = self._column_tensor("series")[rows_t].long().to(device)
        return self._gather_starts(starts, series, device, scaling)

    def _positions(self, rows: Any) -> np.ndarray:
        """``rows`` as int64 positions in the index, or DataValidationError."""
        try:
            if isinstance(rows, torch.Tensor):
                array = rows.detach().cpu().numpy()
            elif isinstance(rows, pl.Series):
                array = rows.to_numpy() if rows.null_count() == 0 else None
            else:
                array = np.asarray(rows)
        except (TypeError, ValueError, RuntimeError):  # ragged nesting, odd tensors
            array = None
        integral = array is not None and (array.dtype.kind in "iu" or array.size == 0)
        if not integral or array.ndim != 1:
            hint = ""
            if array is not None and array.dtype == np.bool_:
                hint = " For a boolean mask, pass np.flatnonzero(mask)."
            raise DataValidationError(
                f"rows must be a 1-D list or array of window positions (integers from 0 to "
                f"{len(self) - 1}), got {describe_value(rows)}.{hint}"
            )
        positions = array.astype(np.int64)
        outside = (positions < 0) | (positions >= len(self))
        if outside.any():
            raise DataValidationError(
                f"rows must be window positions from 0 to {len(self) - 1} ({len(self)} "
                f"windows), got {int(positions[outside][0]):,}. Positions index Windows.index, "
                "not panel rows."
            )
        return positions

    def _check_scaling(
        self, scaling: Any, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``scaling`` as float32 tensors on ``device``, or DataValidationError."""
        if scaling is None:
            return None
        if isinstance(scaling, ScalingTensors):  # its series and columns: this panel's?
            scaling.check_panel(self.panel)
        shape = (self.panel.n_series, self.panel.n_features)
        pair = isinstance(scaling, tuple | list) and len(scaling) == 2
        if not pair or not all(
            isinstance(t, torch.Tensor) and tuple(t.shape) == shape for t in scaling
        ):
            raise DataValidationError(
                f"scaling must be None or a (center, scale) pair of tensors of shape "
                f"(n_series, n_features) = {shape}, e.g. "
                f"PanelScaler().fit(panel).tensors(device); got {describe_value(scaling)}."
            )
        center, scale = (t.to(device=device, dtype=torch.float32) for t in scaling)
        return center, scale

    def _gather_starts(
        self,
        starts: torch.Tensor,
        series: torch.Tensor,
        device: torch.device,
        scaling: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> Batch:
        rows = starts[:, None] + torch.arange(self.window_length, device=device)
        origins = rows[:, self.lookback - 1 : self.lookback]  # inputs as known there (a view)
        window = self.panel.known_values_on(device, rows, origins)
        if scaling is not None:
            center, scale = scaling
            window = (window - center[series][:, None, :]) / scale[series][:, None, :]
        lb, nt, nf = self.lookback, self.panel.n_targets, self.panel.n_future
        future = window[:, lb:, window.shape[2] - nf :] if nf else None
        return Batch(window[:, :lb], window[:, lb:, :nt], future, series)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int | None = None,
        device: str | torch.device = "cpu",
        scaling: tuple[torch.Tensor, torch.Tensor] | None = None,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """Iterate over all windows in batches.

        The order is a permutation drawn on the CPU from ``seed`` (the same on every device), so
        the same seed gives the same batches. The start rows are moved to ``device`` once.
        Arguments are checked before the first batch: ``seed`` an integer in ``[0, 2**63)`` or
        None, ``shuffle`` and ``drop_last`` bools, ``device`` and ``scaling`` as in
        :meth:`gather`.

        Examples
        --------
        >>> import polars as pl
        >>> frame = pl.DataFrame({"t": range(10), "y": [float(i) for i in range(10)]})
        >>> w = make_windows(Panel.from_frame(frame, target="y", time_col="t"), 3, 2)
        >>> [b.x.shape[0] for b in w.batches(4, seed=0)]
        [4, 2]
        """
        batch_size = check("batch_size", batch_size)
        seed = check("seed", seed)
        shuffle, drop_last = Flag().check("shuffle", shuffle), Flag().check("drop_last", drop_last)
        device = resolve_device(device)
        scaling = self._check_scaling(scaling, device)
        n = len(self)
        starts = self._column_tensor("start").to(device)
        series = self._column_tensor("series").to(device)
        if shuffle:
            generator = torch.Generator().manual_seed(
                int(seed) if seed is not None else int(torch.randint(2**62, (1,)).item())
            )
            order = torch.randperm(n, generator=generator, dtype=torch.int32).to(device)
        else:
            order = torch.arange(n, device=device, dtype=torch.int32)
        stop = n - n % batch_size if drop_last else n
        for lo in range(0, stop, batch_size):
            rows = order[lo : lo + batch_size]
            yield self._gather_starts(starts[rows].long(), series[rows].long(), device, scaling)

    def __repr__(self) -> str:
        return (
            f"Windows(n={len(self)}, lookback={self.lookback}, horizon={self.horizon}, "
            f"stride={self.stride}, series={self.panel.n_series})"
        )


def make_windows(
    panel: Panel, lookback: int, horizon: int, stride: int = 1, *, holdout: Any = 0
) -> Windows:
    """Index every window of ``lookback + horizon`` consecutive rows inside each series.

    Windows never cross a series boundary nor reach into its last ``holdout`` rows. With
    ``stride > 1`` the windows are aligned to the last row before those, so the most recent
    window is always included.

    Parameters
    ----------
    panel : Panel
        Built by :meth:`Panel.from_frame` (a frame is refused with a hint to build one).
    lookback : int
        Number of input steps (>= 1).
    horizon : int
        Number of forecast steps (>= 1).
    stride : int, default 1
        Step between the starts of consecutive windows of a series.
    holdout : int or array of int, default 0
        Rows at the end of each series (one count, or one per series) that no window reaches,
        e.g. a validation hold-out: the windows end at the last row before them.

    Returns
    -------
    Windows

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"id": ["a"] * 6 + ["b"] * 4, "t": [*range(6), *range(4)],
    ...                       "y": [0.0] * 10})
    >>> panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    >>> make_windows(panel, lookback=2, horizon=2).index["start"].to_list()
    [0, 1, 2, 6]
    >>> make_windows(panel, 2, 2, stride=2, holdout=np.array([1, 0])).index["start"].to_list()
    [1, 6]
    """
    if not isinstance(panel, Panel):
        raise DataValidationError(
            f"make_windows needs a Panel, got {describe_value(panel)}. Build one from a long "
            "frame first: Panel.from_frame(frame, target=..., time_col=..., id_col=...)."
        )
    lookback, horizon = check("lookback", lookback), check("horizon", horizon)
    if lookback == "auto":
        raise DataValidationError(
            "make_windows needs an integer lookback, got 'auto' (the estimators resolve "
            "lookback='auto' on the data; see RNNForecaster.lookback_for). Pass a number."
        )
    stride, held = check("stride", stride), np.asarray(holdout)
    if held.dtype.kind not in "iu" or held.shape not in {(), (panel.n_series,)} or np.any(held < 0):
        raise DataValidationError(
            f"holdout must be an integer >= 0 or an array of one per series "
            f"({panel.n_series}), got {describe_value(holdout)}: the rows at the end of each "
            "series that no window may reach. Pass e.g. 0 (none) or np.array([12, 12, ...])."
        )
    last = panel.lengths - held - (lookback + horizon)  # last valid local start of each series
    valid = last >= 0
    first = last % stride  # aligned so that the last window of each series is included
    counts = np.where(valid, (last - first) // stride + 1, 0)
    total = int(counts.sum())
    row_dtype = np.int32 if panel.offsets[-1] < 2**31 else np.int64
    # start = offset + first + stride * (position within the series), built in place in the
    # index dtype so that no int64 temporaries of the full window count are created.
    series = np.repeat(np.arange(panel.n_series, dtype=np.int32), counts)
    starts = np.arange(total, dtype=row_dtype)
    starts -= np.repeat((np.cumsum(counts) - counts).astype(row_dtype), counts)
    if stride > 1:
        starts *= stride
    starts += np.repeat((panel.offsets[:-1] + first).astype(row_dtype), counts)
    index = pl.DataFrame({"series": series, "start": starts}, nan_to_null=False)
    del series, starts
    cutoff = panel.time.gather(index["start"] + (lookback - 1)).alias("cutoff")
    return Windows(panel, index.with_columns(cutoff), lookback, horizon, stride)

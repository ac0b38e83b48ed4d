"""A panel's values as its forecast origins knew them (the :class:`KnownValues` of
:class:`~forecaster.data.panel.Panel`).

A cell that ``missing="interpolate"`` filled leans on the first observation after its run of
filled cells, which an origin inside the run (or at its last cell) had not seen: read as known
at the origin, each cell of the run up to the origin holds the run's last observed value
before it (what ``predict`` fills at the end of a series); rows after the origin (targets) are
left as they are. Forecasts from origins inside the data, the training windows and the
statistics of each series' history up to an origin read the panel through these methods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl
import torch

from forecaster._validation import resolve_device

__all__ = ["KnownValues", "past_cells"]


class KnownValues:
    """The panel's values as known at forecast origins (a mixin of
    :class:`~forecaster.data.panel.Panel`, which holds the values, the series' offsets, the
    times and the interpolated cells it reads)."""

    # what Panel holds (a dataclass) and gives
    __dataclass_fields__: ClassVar[dict[str, Any]]
    values: np.ndarray
    offsets: np.ndarray
    time: pl.Series
    interpolated: np.ndarray | None
    _device_runs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]]
    values_on: Callable[[str | torch.device], torch.Tensor]

    def known_values(self, rows: np.ndarray, as_of: np.ndarray) -> np.ndarray:
        """``values[rows]`` as they were known at the rows ``as_of`` (broadcast against
        ``rows``; both global row numbers of the same series): a cell that
        ``missing="interpolate"`` filled in a run reaching ``as_of`` leaned on the first
        observation after the run, so it holds the run's last observed value before it (the
        filled values at the end of a series). Rows after ``as_of`` (targets) are left as they
        are. The rows of every forecast origin inside the data (``predict`` with a list of
        cutoffs, backtests, baselines) are read through it.

        Parameters
        ----------
        rows : numpy.ndarray
            Global row numbers (any shape).
        as_of : numpy.ndarray
            Global row numbers of the origins, broadcast against ``rows``.

        Returns
        -------
        numpy.ndarray
            ``rows.shape + (n_features,)``.

        Examples
        --------
        >>> import polars as pl
        >>> from forecaster.data.panel import Panel
        >>> frame = pl.DataFrame({"t": [0, 1, 2, 3, 4], "y": [0.0, None, None, 6.0, 8.0]})
        >>> panel = Panel.from_frame(frame, target="y", time_col="t", missing="interpolate")
        >>> panel.values[:, 0].tolist()
        [0.0, 2.0, 4.0, 6.0, 8.0]
        >>> rows = np.arange(5)
        >>> panel.known_values(rows, as_of=np.array(1))[:, 0].tolist()  # origin at t=1
        [0.0, 0.0, 4.0, 6.0, 8.0]
        >>> panel.known_values(rows, as_of=np.array(3))[:, 0].tolist()  # t=3 is observed
        [0.0, 2.0, 4.0, 6.0, 8.0]
        """
        if self.interpolated is None:
            return self.values[np.asarray(rows, dtype=np.int64)]
        rows_t, as_of_t = (torch.tensor(np.asarray(a, dtype=np.int64)) for a in (rows, as_of))
        return self.known_values_on("cpu", rows_t, as_of_t).numpy()

    def known_values_on(
        self, device: str | torch.device, rows: torch.Tensor, as_of: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`known_values` as a tensor on ``device`` from int64 tensors of rows there,
        gathered from :meth:`values_on` (the training batches' windows are read through it).

        Parameters
        ----------
        device : str or torch.device
        rows, as_of : torch.Tensor
            int64 on ``device``, as :meth:`known_values` takes them.

        Returns
        -------
        torch.Tensor
        """
        values = self.values_on(device)
        out = values[rows]
        if self.interpolated is None:
            return out
        as_of = torch.broadcast_to(as_of, rows.shape)
        for column, (first, last) in enumerate(self._runs_on(device)):
            if first.numel() == 0:
                continue
            run = (torch.searchsorted(first, rows.contiguous(), right=True) - 1).clamp_min(0)
            unknown = (rows >= first[run]) & (rows <= as_of) & (last[run] >= as_of)
            before = values[first[run] - 1, column]
            out[..., column] = torch.where(unknown, before, out[..., column])
        return out

    def _runs_on(self, device: str | torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """For each past-observed column, the first and the last row of each of its runs of
        interpolated cells (int64 tensors on ``device``, computed once per device)."""
        key = str(resolve_device(device))
        if key not in self._device_runs:
            runs = []
            for column in self.interpolated.T if self.interpolated is not None else ():
                filled = np.flatnonzero(column)
                first, last = filled, filled
                if filled.size:
                    breaks = np.flatnonzero(np.diff(filled) != 1)
                    first, last = filled[np.r_[0, breaks + 1]], filled[np.r_[breaks, -1]]
                runs.append((torch.from_numpy(first).to(key), torch.from_numpy(last).to(key)))
            self._device_runs[key] = runs
        return self._device_runs[key]

    def known_at(self, ends: np.ndarray) -> Self:
        """The panel as it was known when series ``i`` ended at its global row ``ends[i]``
        (its rows up to there as :meth:`known_values` reads them; later rows as they are):
        for statistics of each series' history up to an origin. Only the runs that reach an
        end change (one copy of :attr:`values`); the panel itself when none does.

        Parameters
        ----------
        ends : numpy.ndarray
            One global row number per series.
        """
        if self.interpolated is None:
            return self
        ends = np.asarray(ends, dtype=np.int64)
        values = None
        for column, (first_t, last_t) in enumerate(self._runs_on("cpu")):
            first, last = first_t.numpy(), last_t.numpy()
            if first.size == 0:  # nothing filled in this column
                continue
            run = np.maximum(np.searchsorted(first, ends, side="right") - 1, 0)
            hit = (ends >= self.offsets[:-1]) & (ends >= first[run]) & (ends <= last[run])
            if not hit.any():
                continue
            starts, stops = first[run[hit]], ends[hit]  # each run up to its series' end
            counts = stops - starts + 1
            cells = np.repeat(starts - np.cumsum(np.r_[0, counts[:-1]]), counts)
            cells += np.arange(int(counts.sum()))
            values = self.values.copy() if values is None else values
            values[cells, column] = self.values[np.repeat(starts - 1, counts), column]
        if values is None:
            return self
        return dataclasses.replace(self, values=values, _device_values={})

    def known_through(self, rows: np.ndarray | None) -> Self:
        """The panel as known at each series' last row marked in ``rows`` (a boolean mask of
        the panel's rows; :meth:`known_at` those rows): for statistics fitted on the marked
        rows, which must not lean on the rows after them. The panel itself when ``rows`` is
        None or nothing was interpolated.

        Parameters
        ----------
        rows : numpy.ndarray or None
            Boolean, one per row.
        """
        if rows is None or self.interpolated is None:
            return self
        marked = np.where(rows, np.arange(len(rows), dtype=np.int64), -1)
        return self.known_at(np.maximum.reduceat(marked, self.offsets[:-1]))

    def known_by(self, end: Any) -> Self:
        """The panel as known at each series' last row at or before the time ``end`` (a value
        of the time column's dtype; :meth:`known_through` those rows): for windows whose
        targets end there (:meth:`~forecaster.data.windows.Windows.split`). The panel itself
        when ``end`` is None or nothing was interpolated.

        Parameters
        ----------
        end : object or None
            A time of the time column's dtype.

        Examples
        --------
        >>> from forecaster.data.panel import Panel
        >>> frame = pl.DataFrame({"t": [0, 1, 2, 3], "y": [0.0, None, None, 6.0]})
        >>> panel = Panel.from_frame(frame, target="y", time_col="t", missing="interpolate")
        >>> panel.known_by(1).values[:, 0].tolist()  # at t=1 nothing after t=0 was observed
        [0.0, 0.0, 4.0, 6.0]
        """
        if end is None or self.interpolated is None:
            return self
        until = pl.col("t") <= pl.lit(end, dtype=self.time.dtype)
        return self.known_through(self.time.to_frame("t").select(until).to_series().to_numpy())


def past_cells(interpolated: np.ndarray | None, past: int) -> np.ndarray | None:
    """The interpolated cells of the first ``past`` value columns (``interpolated``: boolean,
    rows by value columns); None when there are none."""
    if interpolated is None or not interpolated[:, :past].any():
        return None
    return np.ascontiguousarray(interpolated[:, :past])

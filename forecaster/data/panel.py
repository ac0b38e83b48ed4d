"""The :class:`Panel`: every series of a validated long frame in one contiguous float32 array,
with the series keys and timestamps kept in Polars.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import torch

from forecaster._validation import check, describe_value, resolve_device
from forecaster.data.checks import check_roles, long_enough
from forecaster.data.frames import SERIES_ID, column_tuple
from forecaster.data.frequency import Frequency
from forecaster.data.known_values import KnownValues, past_cells
from forecaster.data.panel_values import panel_observed_values
from forecaster.data.statics import read_statics
from forecaster.data.steps import future_times
from forecaster.data.validate import validate_frame_cells
from forecaster.exceptions import DataValidationError

__all__ = ["Panel"]


@dataclass(eq=False)
class Panel(KnownValues):
    """All series of a long frame in one contiguous float32 array.

    Row ``r`` of :attr:`values` belongs to series ``i`` when ``offsets[i] <= r < offsets[i+1]``;
    rows of one series are consecutive and in time order, on a regular grid of :attr:`freq`.
    Columns are ``[*targets, *covariates, *static_columns, *future_covariates]``
    (``static_columns``: the encoded static covariates a model appends, none in a panel read
    from a frame).

    Build it with :meth:`from_frame`. Batches of windows are gathered from it by index
    (see :mod:`forecaster.data.windows`); it is never expanded into all windows.
    Its values as forecast origins knew them (:meth:`known_values`, :meth:`known_at`, ...)
    are read by :class:`~forecaster.data.known_values.KnownValues`.

    Attributes
    ----------
    values : numpy.ndarray
        float32 array of shape ``(total_rows, n_features)``, C-contiguous.
    offsets : numpy.ndarray
        int64 array of shape ``(n_series + 1,)``.
    keys : polars.DataFrame
        One row per series: the id column (``"__series__"`` for a single unnamed series).
    time : polars.Series
        The timestamp of every row of ``values``.
    id_col, time_col : str or None, str
        The frame's id column (None: one series) and time column.
    targets, covariates, future_covariates, static_columns : tuple of str
        The names of the columns of :attr:`values`, in that order but ``future_covariates``
        last.
    freq : Frequency
        The grid of every series.
    statics : polars.DataFrame or None
        The static covariates read with ``static_covariates=``: one row per series (row ``i``
        is series ``i``), checked constant within each series (see
        :func:`~forecaster.data.statics.read_statics`); None without.
    interpolated : numpy.ndarray or None
        With ``missing="interpolate"``, which cells of the past-observed columns (targets and
        covariates, the first columns of :attr:`values`) were filled: boolean, shape
        ``(total_rows, n_targets + n_covariates)``; None when no cell was. Read it through
        :meth:`known_values`, which forecasts from an origin inside a filled run see.
    unobserved : numpy.ndarray or None
        Set by :meth:`exact_targets`: which cells of its targets the frame read holds no
        value for (a row or a value the ``missing`` policy made up), boolean, shape
        ``(total_rows, n_targets)``; None when it holds every one, and for other panels.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"id": ["a"] * 3 + ["b"] * 2, "t": [1, 2, 3, 1, 2],
    ...                       "y": [1.0, 2.0, 3.0, 10.0, 20.0]})
    >>> panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    >>> panel.n_series, panel.offsets.tolist(), panel.values[:, 0].tolist()
    (2, [0, 3, 5], [1.0, 2.0, 3.0, 10.0, 20.0])
    """

    values: np.ndarray
    offsets: np.ndarray
    keys: pl.DataFrame
    time: pl.Series
    id_col: str | None
    time_col: str
    targets: tuple[str, ...]
    covariates: tuple[str, ...]
    future_covariates: tuple[str, ...]
    freq: Frequency
    _device_values: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    statics: pl.DataFrame | None = field(default=None, repr=False)
    static_columns: tuple[str, ...] = ()
    interpolated: np.ndarray | None = field(default=None, repr=False)
    _device_runs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = field(
        default_factory=dict, repr=False
    )
    unobserved: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_frame(
        cls,
        frame: pl.DataFrame | pl.LazyFrame,
        *,
        target: str | Sequence[str],
        time_col: str,
        id_col: str | None = None,
        covariates: str | Sequence[str] | None = None,
        future_covariates: str | Sequence[str] | None = None,
        freq: str | int | None = "auto",
        missing: str = "error",
        min_length: int = 1,
        length_reason: str = "lookback + horizon",
        static_covariates: str | Sequence[str] | None = None,
        continues: bool = False,
        ends: str = "frame",
    ) -> Panel:
        """Validate a long frame (see :func:`~forecaster.data.validate.validate_frame`) and pack it.

        Parameters
        ----------
        min_length : int, default 1
            An integer >= 1 (numpy integers too; anything else is a
            :class:`~forecaster.exceptions.DataValidationError`). Series with fewer rows (e.g.
            ``lookback + horizon``) are dropped with a
            :class:`~forecaster.exceptions.ForecasterWarning` that names them; an error is
            raised when none remain.
        length_reason : str, default "lookback + horizon"
            What ``min_length`` is, for those messages (e.g. ``"lookback"`` when predicting).
        static_covariates : str or list of str, optional
            Columns with one value per series, read into :attr:`statics` (not into
            :attr:`values`), checked by :func:`~forecaster.data.statics.read_statics`.
        frame, target, time_col, id_col, covariates, future_covariates, freq, missing, continues
            As in :func:`~forecaster.data.validate.validate_frame`.
        ends : str, default "frame"
            As in :func:`~forecaster.data.validate.validate_frame_cells`.
        """
        min_length = check("min_length", min_length)
        if not isinstance(length_reason, str):
            raise DataValidationError(
                f"length_reason must be text (what min_length is, e.g. 'lookback'), got "
                f"{describe_value(length_reason)}."
            )
        static_names = check_roles(
            target=target,
            time_col=time_col,
            id_col=id_col,
            covariates=covariates,
            future_covariates=future_covariates,
            static_covariates=static_covariates,
        ).get("static covariate", ())
        data, frequency, interpolated = validate_frame_cells(
            frame,
            target=target,
            time_col=time_col,
            id_col=id_col,
            covariates=covariates,
            future_covariates=future_covariates,
            freq=freq,
            missing=missing,
            continues=continues,
            ends=ends,
        )
        id_name = id_col if id_col is not None else SERIES_ID
        runs = data[id_name].rle().struct.unnest()
        lengths = runs["len"].to_numpy().astype(np.int64)
        keys = pl.DataFrame(runs["value"].alias(id_name))
        keep = long_enough(lengths, keys[id_name], min_length, length_reason)
        value_cols = [
            *column_tuple(target),
            *column_tuple(covariates),
            *column_tuple(future_covariates),
        ]
        values = np.require(data.select(value_cols).to_numpy(), np.float32, ["C", "W"])
        if values.ndim == 1:
            values = values.reshape(-1, 1)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        statics = None
        if static_names:
            read = read_statics(frame, id_col=id_col, names=static_names)
            read = read.with_columns(pl.col(id_name).cast(keys.schema[id_name]))
            statics = keys.join(read, on=id_name, how="left", maintain_order="left")
            statics = statics.select(static_names)
        return cls(
            values=values,
            offsets=offsets,
            keys=keys,
            time=data[time_col],
            id_col=id_col,
            time_col=time_col,
            targets=column_tuple(target),
            covariates=column_tuple(covariates),
            future_covariates=column_tuple(future_covariates),
            freq=frequency,
            statics=statics,
            interpolated=past_cells(
                interpolated, len(column_tuple(target) + column_tuple(covariates))
            ),
        ).select_series(keep)

    def select_series(self, keep: np.ndarray) -> Panel:
        """The panel of the series marked in ``keep`` (one bool per series); itself for all.

        Parameters
        ----------
        keep : numpy.ndarray
        """
        if (keep := np.asarray(keep)).dtype != bool or keep.shape != (self.n_series,):
            raise DataValidationError(
                f"select_series takes one bool per series ({self.n_series}), got an array "
                f"of {keep.dtype} of shape {keep.shape}. Pass a boolean numpy array."
            )
        if keep.all():
            return self
        rows, kept = np.repeat(keep, self.lengths), pl.Series(keep)

        def cut(cells: np.ndarray | None) -> np.ndarray | None:  # the kept rows' filled cells
            return None if cells is None else past_cells(cells[rows], cells.shape[1])

        return dataclasses.replace(
            self,
            values=np.ascontiguousarray(self.values[rows]),
            offsets=np.concatenate([[0], np.cumsum(self.lengths[keep])]).astype(np.int64),
            keys=self.keys.filter(kept),
            time=self.time.filter(pl.Series(rows)),
            statics=None if self.statics is None else self.statics.filter(kept),
            interpolated=cut(self.interpolated),
            unobserved=cut(self.unobserved),
            _device_values={},
            _device_runs={},
        )

    # -- shape ---------------------------------------------------------------------------
    @property
    def n_series(self) -> int:
        """Number of series."""
        return len(self.offsets) - 1

    @property
    def n_features(self) -> int:
        """Number of value columns (targets + covariates + static columns + future
        covariates)."""
        return self.values.shape[1]

    @property
    def n_targets(self) -> int:
        """Number of target columns (the first columns of :attr:`values`)."""
        return len(self.targets)

    @property
    def n_future(self) -> int:
        """Number of future-known covariate columns (the last columns of :attr:`values`)."""
        return len(self.future_covariates)

    @property
    def columns(self) -> list[str]:
        """Names of the columns of :attr:`values`."""
        return [*self.targets, *self.covariates, *self.static_columns, *self.future_covariates]

    @property
    def lengths(self) -> np.ndarray:
        """Number of rows of every series."""
        return np.diff(self.offsets)

    @property
    def id_name(self) -> str:
        """Name of the id column in :attr:`keys` (``"__series__"`` for an unnamed series)."""
        return self.id_col if self.id_col is not None else SERIES_ID

    def series_of_rows(self) -> np.ndarray:
        """Series number of every row (int64, length ``total_rows``)."""
        return np.repeat(np.arange(self.n_series, dtype=np.int64), self.lengths)

    def leading_ends(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Each series' end (the row after its last, an index into :attr:`values`) when only
        its leading rows marked in ``rows`` count (a boolean mask of the panel's rows whose
        true rows start every series, e.g. those before a validation hold-out); every
        series' own end when ``rows`` is None.

        Parameters
        ----------
        rows : numpy.ndarray, optional
            Boolean, one per row.

        Returns
        -------
        numpy.ndarray
            int64, one per series.

        Examples
        --------
        >>> import polars as pl
        >>> frame = pl.DataFrame({"id": [1, 1, 1, 2, 2], "t": [0, 1, 2, 0, 1], "y": [1.0] * 5})
        >>> panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
        >>> panel.leading_ends(np.array([True, True, False, True, False])).tolist()
        [2, 4]
        """
        if rows is None:
            return self.offsets[1:].copy()
        starts = self.offsets[:-1]
        return starts + np.add.reduceat(rows.astype(np.int64), starts)

    def values_on(self, device: str | torch.device) -> torch.Tensor:
        """The values as a tensor on ``device``, moved there once and cached.

        On CPU the tensor shares memory with :attr:`values` (no copy). ``device`` is checked
        by :func:`forecaster._validation.resolve_device` (``"auto"``, ``"cpu"``, ``"cuda"``,
        ``"cuda:N"``, ``"mps"``, a ``torch.device``).

        Parameters
        ----------
        device : str or torch.device
        """
        device = resolve_device(device)
        key = str(device)
        if key not in self._device_values:
            tensor = torch.from_numpy(self.values)
            self._device_values[key] = tensor if device.type == "cpu" else tensor.to(device)
        return self._device_values[key]

    def rows_until(self, ends: np.ndarray) -> np.ndarray:
        """Boolean mask of the rows of series ``i`` up to its global row ``ends[i]``
        (inclusive; none of it when ``ends[i]`` is before its first row).

        Parameters
        ----------
        ends : numpy.ndarray
            One global row number per series.

        Returns
        -------
        numpy.ndarray
            Boolean, one per row.

        Examples
        --------
        >>> frame = pl.DataFrame({"id": [1, 1, 1, 2, 2], "t": [0, 1, 2, 0, 1], "y": [1.0] * 5})
        >>> panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
        >>> panel.rows_until(np.array([1, 2])).tolist()
        [True, True, False, False, False]
        """
        rows = np.arange(int(self.offsets[-1]), dtype=np.int64)
        return rows <= np.asarray(ends, dtype=np.int64)[self.series_of_rows()]

    def exact_targets(self, frame: pl.DataFrame | pl.LazyFrame) -> Panel:
        """The panel's target columns only, holding the values of ``frame`` (the frame the
        panel was read from; a LazyFrame is collected for its keys and targets only) as
        float64, not float32: for scores, which compare forecasts with what was observed, not
        with its float32 rounding (1e8 + 1 reads 1e8 in float32).
        A cell ``frame`` holds no value for (a row or a value the ``missing`` policy made up)
        keeps the panel's value and is marked in :attr:`unobserved`. Same rows, series, times
        and filled cells (:meth:`known_values` reads it as it reads the panel); linear in the
        rows (:func:`~forecaster.data.panel_values.panel_observed_values`).

        Parameters
        ----------
        frame : polars.DataFrame
            The frame the panel was read from, with its id, time and target columns.

        Examples
        --------
        >>> frame = pl.DataFrame({"t": [0, 1, 2], "y": [1e8, 1e8 + 1, 1e8 + 2]})
        >>> panel = Panel.from_frame(frame, target="y", time_col="t")
        >>> panel.values[:, 0].tolist(), panel.exact_targets(frame).values[:, 0].tolist()
        ([100000000.0, 100000000.0, 100000000.0], [100000000.0, 100000001.0, 100000002.0])
        >>> holed = pl.DataFrame({"t": [0, 1, 3], "y": [0.1, 0.2, 0.4]})  # t=2 filled
        >>> exact = Panel.from_frame(holed, target="y", time_col="t", missing="ffill", freq=1)
        >>> exact = exact.exact_targets(holed)
        >>> exact.values[:, 0].tolist(), exact.unobserved[:, 0].tolist()
        ([0.1, 0.2, 0.20000000298023224, 0.4], [False, False, True, False])
        """
        values = panel_observed_values(self, frame)  # a join, or index arithmetic on a grid
        unobserved = np.isnan(values)
        filled = self.values[:, : self.n_targets]
        if unobserved.any():  # the policy's value (the panel's)
            values[unobserved] = filled[unobserved]
        return dataclasses.replace(
            self,
            values=np.ascontiguousarray(values),
            unobserved=unobserved if unobserved.any() else None,
            covariates=(),
            future_covariates=(),
            static_columns=(),
            statics=None,
            interpolated=past_cells(self.interpolated, self.n_targets),
            _device_values={},
            _device_runs={},
        )

    def future_times(self, horizon: int) -> pl.Series:
        """The ``horizon`` times after each series' last row, series after series (see
        :func:`~forecaster.data.steps.future_times`, the one rule for times beyond the data).

        Parameters
        ----------
        horizon : int
            Steps per series, >= 1.

        Returns
        -------
        polars.Series
            ``n_series * horizon`` times.

        Examples
        --------
        >>> f = pl.DataFrame({"t": [1, 2, 3], "y": [1.0, 2.0, 3.0]})
        >>> Panel.from_frame(f, target="y", time_col="t").future_times(2).to_list()
        [4, 5]
        """
        return future_times(self.time, self.offsets, self.freq, horizon)

    def to_frame(self) -> pl.DataFrame:
        """The panel as a long frame (id, time, value columns) again.

        Examples
        --------
        >>> import polars as pl
        >>> f = pl.DataFrame({"t": [1, 2], "y": [1.0, 2.0]})
        >>> Panel.from_frame(f, target="y", time_col="t").to_frame().columns
        ['t', 'y']
        """
        ids = self.keys[self.id_name].gather(self.series_of_rows())
        frame = pl.DataFrame([ids, self.time.alias(self.time_col)])
        frame = frame.with_columns(
            pl.Series(name, self.values[:, j]) for j, name in enumerate(self.columns)
        )
        return frame if self.id_col is not None else frame.drop(SERIES_ID)

    def __repr__(self) -> str:
        lengths = self.lengths
        return (
            f"Panel(n_series={self.n_series}, rows={int(self.offsets[-1])}, "
            f"features={self.columns}, freq='{self.freq}', "
            f"length min/max={int(lengths.min())}/{int(lengths.max())})"
        )

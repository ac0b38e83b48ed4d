"""Per-series scaling fitted on the training span only, with an exact inverse.

A :class:`PanelScaler` learns one affine map ``(x - center) / scale`` per series and per column
from the rows of a :class:`~forecaster.data.panel.Panel` up to a cutoff time, so that no value of a
validation or test span leaks into the statistics. It can scale a whole panel, or (cheaper, and
what training does) only the gathered batches, by series number.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import polars as pl
import torch

import forecaster._validation as _validation
from forecaster._validation import PARAMETERS, resolve_device
from forecaster.data.frames import format_list, match_keys
from forecaster.data.panel import Panel
from forecaster.data.scaling_tensors import ScalingTensors
from forecaster.data.spans import floor_spread
from forecaster.data.times import to_time_point
from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    NotFittedError,
    warn_at_caller,
)

__all__ = [
    "MIN_SCALE",
    "SCALING_METHODS",
    "PanelScaler",
    "input_scale",
    "spread_scale",
]

MIN_SCALE = 1e-6
"""Smallest scale relative to a series' level (the absolute value of its center): a spread
below ``MIN_SCALE * |center|`` is raised to it, so that a nearly constant series is not blown
up to float32 noise, while a series in small units (values near 1e-11) keeps its own scale.
A constant series (a spread of exactly 0) gets this floor too, so its scale does not depend
on its units; only a series whose center is 0 (all zeros) gets 1
(:func:`~forecaster.data.spans.floor_spread`)."""

_FIT_CHUNK_ROWS = 1 << 22
"""Rows per block of series in :meth:`PanelScaler.fit` (a series is never split)."""

SCALING_METHODS = _validation.SCALING_METHODS
"""``standard``: mean / std; ``robust``: median / inter-quartile range; ``minmax``: min / range
(to [0, 1]); ``none``: identity."""


def spread_scale(spread: np.ndarray, center: np.ndarray) -> np.ndarray:
    """The scales of spreads around ``center``: ``max(spread, MIN_SCALE * |center|)``
    (:func:`~forecaster.data.spans.floor_spread`, the one rule of a flat series' scale), so
    that the scale is continuous in the spread and relative to the level, whatever the units:
    a constant series (spread 0) is scaled by :data:`MIN_SCALE` of its level, as one that
    varies by float noise is. A spread below float32's smallest normal number (1.2e-38: float32
    noise, whose inverse overflows) or not finite counts as 0. A scale is at least that
    smallest normal number where the center is one (a constant 1e-35), and 1, absolute, only
    where there is no level to relate to (a center below it: a series of zeros).

    Examples
    --------
    >>> spread_scale(np.array([2.0, 1e-9, 0.0, 1e-14, 0.0]), np.array([0.0, 10.0, 5.0, 1e-14, 0.0]))
    array([2.e+00, 1.e-05, 5.e-06, 1.e-14, 1.e+00])
    """
    spread, center = np.asarray(spread, np.float64), np.asarray(center, np.float64)
    tiny = float(np.finfo(np.float32).tiny)
    spread = np.where(np.isfinite(spread) & (spread >= tiny), spread, 0.0)
    level = np.where(np.isfinite(center), np.abs(center), 0.0)
    return floor_spread(spread, level, MIN_SCALE)


def input_scale(spread: np.ndarray, center: np.ndarray) -> np.ndarray:
    """The scales of inputs (covariates, a regressor's features): 1 where an input is constant
    in the training span (a spread at or below :data:`MIN_SCALE` of its level: float noise),
    as scikit-learn's ``StandardScaler``, else the spread. A target's floor protects what is
    forecast from its units; a constant input carries nothing to learn, and its later change
    (a flag always 1 that turns 0) reaches the network as itself, not a millionfold.

    >>> input_scale(np.array([2.0, 1e-9, 0.0]), np.array([0.0, 10.0, 1.0]))
    array([2., 1., 1.])
    """
    scale = spread_scale(spread, center)
    return np.where(scale <= np.asarray(spread, np.float64), scale, 1.0)  # NaN: 1


class PanelScaler:
    """Scale every series and column of a panel with statistics of its training span.

    Parameters
    ----------
    method : {"standard", "robust", "minmax", "none"}, default "standard"
        ``standard`` subtracts the mean and divides by the standard deviation (ddof=0);
        ``robust`` uses the median and the inter-quartile range; ``minmax`` maps the training
        range to [0, 1]. Spreads below ``MIN_SCALE`` (1e-6) times the absolute center
        are raised to it, a zero spread (a constant series) too, so a constant series is
        scaled relative to its level whatever its units (:func:`spread_scale`); only a series
        of zeros (center 0) gets a scale of 1. A ``robust`` series whose inter-quartile range
        is 0 but which is not constant (intermittent demand: more than half zeros) is scaled
        by its standard deviation, as is one whose inter-quartile range is below
        ``MIN_SCALE`` times its standard deviation (float noise between equal quartiles:
        1e-38 among zeros and a -4 would scale the -4 beyond float32's range).

    Attributes
    ----------
    center_ : numpy.ndarray
        float64, shape ``(n_series, n_features)``.
    scale_ : numpy.ndarray
        float64, shape ``(n_series, n_features)``, strictly positive.
    columns_ : list of str
        The panel's columns at fit (targets, covariates, encoded statics, future covariates):
        :meth:`transform` refuses a panel whose columns differ.
    keys_ : polars.DataFrame or None
        The fitted series (one id column, row ``i`` is row ``i`` of ``center_``):
        :meth:`transform` finds each series of a panel here by its id and refuses one it
        does not hold. None for a scaler rebuilt without its keys (:meth:`from_state` without
        ``keys``, or a :meth:`to_dict` of an older version): such a scaler matches series by
        position and checks only their number.

    Examples
    --------
    >>> import polars as pl
    >>> from forecaster.data.panel import Panel
    >>> frame = pl.DataFrame({"t": range(6), "y": [1.0, 2.0, 3.0, 4.0, 100.0, 200.0]})
    >>> panel = Panel.from_frame(frame, target="y", time_col="t")
    >>> scaler = PanelScaler("minmax").fit(panel, until=3)   # rows t <= 3 only
    >>> scaler.transform(panel).values[:, 0].astype(float).round(3).tolist()
    [0.0, 0.333, 0.667, 1.0, 33.0, 66.333]
    """

    def __init__(self, method: str = "standard") -> None:
        self.method = method

    # ------------------------------------------------------------------------------------
    def fit(self, panel: Panel, until: Any = None, mask: np.ndarray | None = None) -> PanelScaler:
        """Learn the statistics from the rows of each series with ``time <= until``.

        Parameters
        ----------
        panel : Panel
            Built by :meth:`~forecaster.data.panel.Panel.from_frame` (a frame is refused with a
            hint).
        until : date, datetime, ISO text, pl.date(...), int or None
            Last time of the training span (inclusive), converted by
            :func:`forecaster.data.times.to_time_point`. ``None`` uses every row.
            A series with no row in the span gets the identity map and a warning.
        mask : numpy.ndarray of bool, optional
            Instead of ``until``: which rows of the panel form the training span (e.g. all but
            the last validation steps of every series): booleans, one per panel row (integers
            are refused, not read as truth values). Passing both is refused
            (:class:`~forecaster.exceptions.DataValidationError`): combine them into one mask.
            A mask that selects no row leaves every series unscaled, with a warning saying so.
        """
        PARAMETERS["scaling"].check("method", self.method)  # the rule of scaling=, its name
        _need_panel(panel, "PanelScaler.fit")
        n, f = panel.n_series, panel.n_features
        total = int(panel.offsets[-1])
        center = np.zeros((n, f))
        scale = np.ones((n, f))
        counts = np.zeros(n, dtype=np.int64)
        if mask is not None and until is not None:
            raise DataValidationError(
                f"PanelScaler.fit takes until= or mask=, not both (got until={until!r} and a "
                "mask): each chooses the training rows on its own. Pass one, e.g. "
                "mask=your_mask & (panel.time <= until).to_numpy() to combine them."
            )
        if mask is not None:
            mask = _row_mask(mask, total)
        elif until is not None:
            dtype = panel.time.dtype
            bound = pl.lit(to_time_point(until, dtype, name="until"), dtype=dtype)
            mask = pl.DataFrame({"t": panel.time}).select(pl.col("t") <= bound).to_series()
            mask = mask.to_numpy()
        panel = panel.known_through(mask)  # "interpolate": the span as known at its end
        # Statistics per block of whole series (about _FIT_CHUNK_ROWS rows each), so that the
        # per-row series numbers and float64 copies never exist for the whole panel at once.
        cols = [f"c{j}" for j in range(f)]
        lengths = panel.lengths
        for s0, s1 in _series_blocks(panel.offsets, _FIT_CHUNK_ROWS):
            lo, hi = int(panel.offsets[s0]), int(panel.offsets[s1])
            block = None if mask is None else mask[lo:hi]
            series = np.repeat(np.arange(s1 - s0, dtype=np.int32), lengths[s0:s1])
            if block is not None:
                series = series[block]
            counts[s0:s1] = np.bincount(series, minlength=s1 - s0)
            if self.method == "none" or series.size == 0:
                continue
            values = panel.values[lo:hi]
            data = pl.DataFrame(
                {
                    "s": series,
                    **{
                        c: values[:, j] if block is None else values[block, j]
                        for j, c in enumerate(cols)
                    },
                }
            )
            del series
            stats = self._statistics(data, cols)
            del data
            rows = s0 + stats["s"].to_numpy()
            center[rows] = stats.select([f"{c}_center" for c in cols]).to_numpy()
            spread = stats.select([f"{c}_scale" for c in cols]).to_numpy()
            if self.method == "robust":  # no spread between the quartiles: the std
                std = stats.select([f"{c}_std" for c in cols]).to_numpy()
                spread = np.where(spread > MIN_SCALE * std, spread, std)
            scale[rows] = spread_scale(spread, center[rows])
            t = panel.n_targets  # the covariates after the targets: inputs, flat ones scaled 1
            scale[rows, t:] = input_scale(spread[:, t:], center[rows, t:])
        empty = counts == 0
        if self.method != "none" and empty.any():
            names = panel.keys[panel.id_name].filter(pl.Series(empty)).to_list()
            if mask is not None and until is None and not mask.any():
                message = (
                    f"The mask selects no row of the panel, so the scaler has nothing to fit: "
                    f"all {n} series are left unscaled."
                )
            else:
                rows = f"up to until={until!r}" if until is not None else "selected by the mask"
                message = (
                    f"{int(empty.sum())} of {n} series have no rows {rows} to fit the scaler "
                    f"and are left unscaled: {names[:5]}."
                )
            warn_at_caller(message, ForecasterWarning)
        k = len(panel.static_columns)  # encoded static covariates: never scaled per series
        first = panel.n_features - panel.n_future - k
        center[:, first : first + k], scale[:, first : first + k] = 0.0, 1.0
        self.center_ = center
        self.scale_ = scale
        self.n_fit_rows_ = counts
        self.columns_ = panel.columns
        self.keys_: pl.DataFrame | None = panel.keys.select(panel.id_name)
        self._tensors: dict[str, ScalingTensors] = {}
        return self

    def _statistics(self, data: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
        col = pl.col
        if self.method == "standard":
            aggs = [
                e
                for c in cols
                for e in (
                    col(c).mean().alias(f"{c}_center"),
                    col(c).std(ddof=0).alias(f"{c}_scale"),
                )
            ]
        elif self.method == "robust":
            aggs = [
                e
                for c in cols
                for e in (
                    col(c).median().alias(f"{c}_center"),
                    (col(c).quantile(0.75, "linear") - col(c).quantile(0.25, "linear")).alias(
                        f"{c}_scale"
                    ),
                    col(c).std(ddof=0).alias(f"{c}_std"),
                )
            ]
        else:  # minmax
            aggs = [
                e
                for c in cols
                for e in (
                    col(c).min().alias(f"{c}_center"),
                    (col(c).max() - col(c).min()).alias(f"{c}_scale"),
                )
            ]
        data = data.with_columns(pl.col(cols).cast(pl.Float64))
        return data.group_by("s").agg(aggs).sort("s")

    # ------------------------------------------------------------------------------------
    def _check(self) -> None:
        if not hasattr(self, "center_"):
            raise NotFittedError("This PanelScaler is not fitted yet. Call fit(panel) first.")

    def rows_of(self, panel: Panel) -> np.ndarray:
        """The scaler row (fitted series) of every series of ``panel``, found by its id.

        Raises
        ------
        DataValidationError
            When the panel's columns are not those of the fit (names and order: a target and a
            covariate in swapped roles would be scaled with each other's statistics), its id
            column is another, or it holds series the scaler was not fitted on. A scaler
            without keys (see ``keys_``) takes the series by position and refuses another
            number of series.
        """
        self._check()
        _need_panel(panel, "PanelScaler")
        if list(panel.columns) != list(self.columns_):
            raise DataValidationError(
                f"The scaler was fitted on the columns {self.columns_}, got a panel of "
                f"{panel.columns}. Build the panel with the same target, covariates and future "
                "covariates (in the same order), or fit the scaler on this panel."
            )
        keys = getattr(self, "keys_", None)  # a scaler pickled before keys_: by position
        if keys is None:
            if panel.n_series != self.center_.shape[0]:
                raise DataValidationError(
                    f"The scaler was fitted on {self.center_.shape[0]} series and has no keys "
                    f"(saved without them), so it matches series by position; got a panel of "
                    f"{panel.n_series} series. Fit the scaler on this panel."
                )
            return np.arange(panel.n_series, dtype=np.int64)
        name = keys.columns[0]
        if panel.id_name != name:
            raise DataValidationError(
                f"The scaler was fitted on series identified by {name!r}, got a panel whose "
                f"series are identified by {panel.id_name!r}. Build the panel with "
                f"id_col={name!r}, or fit the scaler on this panel."
            )
        rows, known = match_keys(keys, panel.keys, name)
        if not known.all():
            unknown = panel.keys[name].filter(pl.Series(~known)).to_list()
            raise DataValidationError(
                f"{len(unknown)} of the panel's {panel.n_series} series were not seen when the "
                f"scaler was fitted, so it has no statistics for them: "
                f"{format_list(unknown)}. Drop them, or fit the scaler on a panel that holds "
                "them."
            )
        return rows

    def transform_values(
        self, values: np.ndarray, series: np.ndarray, columns: slice | np.ndarray = slice(None)
    ) -> np.ndarray:
        """Scale ``values`` (float, ``(..., n_columns)``) of the given series (first axis).

        ``series`` has one entry per row of ``values`` (shape ``values.shape[0]``): the
        scaler's rows (fitted series numbers, see :meth:`rows_of` to find them from a panel's
        ids); ``columns`` selects which of the fitted columns the last axis holds (all by
        default).
        """
        self._check()
        center, scale = self._broadcast(values, series, columns)
        return ((values.astype(np.float64) - center) / scale).astype(np.float32)

    def inverse_transform_values(
        self, values: np.ndarray, series: np.ndarray, columns: slice | np.ndarray = slice(None)
    ) -> np.ndarray:
        """Undo :meth:`transform_values` (computed in float64, returned as float32)."""
        self._check()
        center, scale = self._broadcast(values, series, columns)
        return (values.astype(np.float64) * scale + center).astype(np.float32)

    def _broadcast(
        self, values: np.ndarray, series: np.ndarray, columns: slice | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        series = np.asarray(series, dtype=np.int64)
        shape = (len(series),) + (1,) * (values.ndim - 2) + (-1,)
        center = self.center_[series][:, columns].reshape(shape)
        scale = self.scale_[series][:, columns].reshape(shape)
        return center, scale

    def transform(self, panel: Panel) -> Panel:
        """A new panel with scaled float32 values (keys and times shared).

        Each series is scaled with the statistics of the fitted series of the same id, checked
        as :meth:`rows_of` checks (unknown series and other columns are refused).
        """
        series = self.rows_of(panel)[panel.series_of_rows()]
        return _with_values(panel, self.transform_values(panel.values, series))

    def inverse_transform(self, panel: Panel) -> Panel:
        """A new panel with the scaling undone (series matched as :meth:`transform` does)."""
        series = self.rows_of(panel)[panel.series_of_rows()]
        values = self.inverse_transform_values(panel.values, series)
        return _with_values(panel, values)

    def tensors(self, device: str | torch.device, panel: Panel | None = None) -> ScalingTensors:
        """``(center, scale)`` as float32 tensors ``(n_series, n_features)`` on ``device``.

        Used to scale gathered batches on the device instead of a scaled copy of the panel
        (:meth:`~forecaster.data.windows.Windows.gather`, whose row ``i`` scales series ``i`` of
        its panel). Without ``panel`` the rows are the fitted series in fit's order (right for
        the panel the scaler was fitted on); with ``panel`` they are that panel's series, found
        by id and checked as :meth:`rows_of` checks. The pair carries those series' ids and the
        columns (:class:`~forecaster.data.scaling_tensors.ScalingTensors`): ``gather`` and
        ``batches`` refuse it for windows of other series. ``device`` is checked by
        :func:`forecaster._validation.resolve_device`.
        """
        self._check()
        device = resolve_device(device)
        if panel is not None:
            rows = torch.from_numpy(self.rows_of(panel)).to(device)
            center, scale = self.tensors(device)
            ids = panel.keys.select(panel.id_name)
            return ScalingTensors(center[rows], scale[rows], ids, self.columns_)
        key = str(device)
        if key not in self._tensors:
            self._tensors[key] = ScalingTensors(
                torch.as_tensor(self.center_, dtype=torch.float32, device=device),
                torch.as_tensor(self.scale_, dtype=torch.float32, device=device),
                getattr(self, "keys_", None),  # a scaler pickled before keys_: by position
                self.columns_,
            )
        return self._tensors[key]

    # ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state, arrays and keys included (see :meth:`state` for the arrays
        apart). Ids that are neither numbers nor text are stored as their text, which
        :meth:`transform` matches to the panel's ids by their text."""
        self._check()
        state: dict[str, Any] = {
            "method": self.method,
            "columns": list(self.columns_),
            "center": self.center_.tolist(),
            "scale": self.scale_.tolist(),
            "n_fit_rows": self.n_fit_rows_.tolist(),
        }
        keys = getattr(self, "keys_", None)  # a scaler pickled before keys_ has none
        if keys is not None:
            ids = keys.to_series()
            ids = ids if ids.dtype.is_numeric() else ids.cast(pl.String)
            state["keys"] = {"name": ids.name, "values": ids.to_list()}
        return state

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The fitted state as ``(meta, arrays)``: the method and columns (JSON values, a size
        that does not grow with the number of series) and the arrays ``center``, ``scale``
        (float64, ``(n_series, n_columns)``) and ``n_fit_rows`` (int64, ``(n_series,)``).
        :meth:`from_state` rebuilds the scaler (``save`` stores the arrays as tensors). The
        fitted series' ids (``keys_``) are not part of it: save them apart (a model saves its
        ``keys_``, which are these) and pass them back to :meth:`from_state`."""
        self._check()
        meta = {"method": self.method, "columns": list(self.columns_)}
        arrays = {
            "center": np.ascontiguousarray(self.center_, dtype=np.float64),
            "scale": np.ascontiguousarray(self.scale_, dtype=np.float64),
            "n_fit_rows": np.ascontiguousarray(self.n_fit_rows_, dtype=np.int64),
        }
        return meta, arrays

    @classmethod
    def from_state(
        cls, meta: Any, arrays: dict[str, np.ndarray], keys: pl.DataFrame | None = None
    ) -> PanelScaler:
        """Rebuild a fitted scaler from :meth:`state`, checking what a fitted scaler is.

        ``keys`` are the fitted series' ids (the ``keys_`` of the scaler saved: one column, one
        row per series); without them the scaler matches series by position (see ``keys_``).

        Raises
        ------
        DataValidationError
            When the method is unknown, the columns are not a list of names, the arrays do
            not have the shapes, dtypes and values (finite, scale > 0, counts >= 0) of a fit,
            or ``keys`` is not a frame of one column and one row per series.

        Examples
        --------
        >>> import numpy as np
        >>> arrays = {"center": np.zeros((2, 1)), "scale": np.ones((2, 1)),
        ...           "n_fit_rows": np.array([3, 4])}
        >>> PanelScaler.from_state({"method": "standard", "columns": ["y"]}, arrays).scale_.shape
        (2, 1)
        >>> arrays["scale"][0, 0] = 0.0
        >>> PanelScaler.from_state({"method": "standard", "columns": ["y"]}, arrays)
        Traceback (most recent call last):
        ...
        forecaster.exceptions.DataValidationError: Invalid scaler state: scale must be ...
        """
        if not isinstance(meta, dict) or set(meta) - {"method", "columns"}:
            raise DataValidationError("Invalid scaler state: expected {method, columns}.")
        method, columns = meta.get("method"), meta.get("columns")
        if method not in SCALING_METHODS:
            raise DataValidationError(
                f"Invalid scaler state: method {method!r} is not one of {SCALING_METHODS}."
            )
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise DataValidationError("Invalid scaler state: columns must be a list of names.")
        center, scale = arrays.get("center"), arrays.get("scale")
        counts = arrays.get("n_fit_rows")
        shape = (center.shape[0] if isinstance(center, np.ndarray) else -1, len(columns))
        for name, array, dtype, expected in (
            ("center", center, np.float64, shape),
            ("scale", scale, np.float64, shape),
            ("n_fit_rows", counts, np.int64, shape[:1]),
        ):
            if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != expected:
                found = (array.dtype, array.shape) if isinstance(array, np.ndarray) else array
                raise DataValidationError(
                    f"Invalid scaler state: {name} must be {np.dtype(dtype)} of shape {expected} "
                    f"(n_series, {len(columns)} columns); found {found!r}."
                )
        if not np.isfinite(center).all():
            raise DataValidationError("Invalid scaler state: center must be finite.")
        if not (np.isfinite(scale).all() and (scale > 0).all()):
            raise DataValidationError("Invalid scaler state: scale must be finite and > 0.")
        if (counts < 0).any():
            raise DataValidationError("Invalid scaler state: n_fit_rows must be >= 0.")
        if keys is not None and not (
            isinstance(keys, pl.DataFrame) and keys.width == 1 and keys.height == shape[0]
        ):
            raise DataValidationError(
                f"Invalid scaler state: keys must be a polars DataFrame of one id column and "
                f"{shape[0]} rows (one per series); found "
                f"{_validation.describe_value(keys)}."
            )
        scaler = cls(method)
        scaler.keys_ = keys
        scaler.center_, scaler.scale_, scaler.n_fit_rows_ = center, scale, counts
        scaler.columns_ = list(columns)
        scaler._tensors = {}
        return scaler

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> PanelScaler:
        """Rebuild a fitted scaler from :meth:`to_dict` output (checked as :meth:`from_state`)."""
        try:
            meta = {"method": state["method"], "columns": list(state["columns"])}
            center = np.asarray(state["center"], dtype=np.float64)
            arrays = {
                "center": center,
                "scale": np.asarray(state["scale"], dtype=np.float64),
                "n_fit_rows": np.asarray(
                    state.get("n_fit_rows", [0] * len(center)), dtype=np.int64
                ),
            }
            keys = state.get("keys")  # absent in the state of an older version: by position
            if keys is not None:
                keys = pl.DataFrame({str(keys["name"]): list(keys["values"])})
        except (KeyError, TypeError, ValueError, OverflowError, pl.exceptions.PolarsError) as exc:
            raise DataValidationError(f"Invalid scaler state: {exc!r}.") from exc
        return cls.from_state(meta, arrays, keys)

    def __repr__(self) -> str:
        return f"PanelScaler(method={self.method!r})"


def _need_panel(panel: Any, where: str) -> None:
    """Refuse anything but a :class:`~forecaster.data.panel.Panel`, saying how to build one."""
    if not isinstance(panel, Panel):
        kind = type(panel)
        raise DataValidationError(
            f"{where} needs a Panel, got a {kind.__module__.split('.')[0]}.{kind.__name__}. "
            "Build one from a long frame first: Panel.from_frame(frame, target=..., "
            "time_col=..., id_col=...)."
        )


def _row_mask(mask: Any, total: int) -> np.ndarray:
    """``mask`` as a boolean array of one entry per panel row, or DataValidationError."""
    if isinstance(mask, pl.Series):
        array = mask.to_numpy() if mask.null_count() == 0 else None
    else:
        try:
            array = np.asarray(mask)
        except (TypeError, ValueError):
            array = None
    if array is None or array.dtype != np.bool_ or array.shape != (total,):
        shape = "" if array is None else f" of dtype {array.dtype} and shape {array.shape}"
        raise DataValidationError(
            f"mask must be booleans, one per panel row ({total}), got "
            f"{_validation.describe_value(mask)}{shape}. Build it from the panel, e.g. "
            "(panel.time <= cutoff).to_numpy()."
        )
    return array


def _series_blocks(offsets: np.ndarray, rows: int) -> list[tuple[int, int]]:
    """Consecutive ranges ``[s0, s1)`` of series covering every series, each starting at the
    first series that begins at or after a multiple of ``rows`` (so about ``rows`` rows each,
    more when one series is longer).

    Examples
    --------
    >>> _series_blocks(np.array([0, 3, 5, 9, 10]), 4)
    [(0, 2), (2, 3), (3, 4)]
    """
    n = len(offsets) - 1
    edges = np.searchsorted(offsets, np.arange(rows, int(offsets[-1]), rows), side="left")
    bounds = np.unique(np.concatenate([[0], edges, [n]]).clip(0, n))
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def _with_values(panel: Panel, values: np.ndarray) -> Panel:
    return Panel(
        values=np.ascontiguousarray(values, dtype=np.float32),
        offsets=panel.offsets,
        keys=panel.keys,
        time=panel.time,
        id_col=panel.id_col,
        time_col=panel.time_col,
        targets=panel.targets,
        covariates=panel.covariates,
        future_covariates=panel.future_covariates,
        freq=panel.freq,
        statics=panel.statics,
        static_columns=panel.static_columns,
        interpolated=panel.interpolated,
    )

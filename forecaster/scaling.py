"""Per-series scaling fitted on the training span only, with an exact inverse.

A :class:`PanelScaler` learns one affine map ``(x - center) / scale`` per series and per column
from the rows of a :class:`~forecaster.data.Panel` up to a cutoff time, so that no value of a
validation or test span leaks into the statistics. It can scale a whole panel, or (cheaper, and
what training does) only the gathered batches, by series number.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import polars as pl
import torch

from forecaster.data import Panel
from forecaster.exceptions import DataValidationError, ForecasterWarning, NotFittedError

__all__ = ["MIN_SCALE", "SCALING_METHODS", "PanelScaler"]

MIN_SCALE = 1e-6
"""Smallest scale used: a spread below it is raised to it so that scaled values stay finite in
float32 (a spread of exactly 0, a constant series, gets a scale of 1)."""

SCALING_METHODS = ("standard", "robust", "minmax", "none")
"""``standard``: mean / std; ``robust``: median / inter-quartile range; ``minmax``: min / range
(to [0, 1]); ``none``: identity."""


class PanelScaler:
    """Scale every series and column of a panel with statistics of its training span.

    Parameters
    ----------
    method : {"standard", "robust", "minmax", "none"}, default "standard"
        ``standard`` subtracts the mean and divides by the standard deviation (ddof=0);
        ``robust`` uses the median and the inter-quartile range; ``minmax`` maps the training
        range to [0, 1]. A zero spread (constant series) gets a scale of 1, so such a series is
        only shifted; spreads below ``MIN_SCALE`` (1e-6) are raised to it.

    Attributes
    ----------
    center_ : numpy.ndarray
        float64, shape ``(n_series, n_features)``.
    scale_ : numpy.ndarray
        float64, shape ``(n_series, n_features)``, strictly positive.

    Examples
    --------
    >>> import polars as pl
    >>> from forecaster.data import Panel
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
        until : datetime, date, int or None
            Last time of the training span (inclusive). ``None`` uses every row.
            A series with no row in the span gets the identity map and a warning.
        mask : numpy.ndarray of bool, optional
            Instead of ``until``: which rows of the panel form the training span (e.g. all but
            the last validation steps of every series).
        """
        if self.method not in SCALING_METHODS:
            raise DataValidationError(
                f"scaling={self.method!r} is not a scaling method. Expected one of "
                f"{SCALING_METHODS}."
            )
        n, f = panel.n_series, panel.n_features
        center = np.zeros((n, f))
        scale = np.ones((n, f))
        series = panel.series_of_rows()
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != series.shape:
                raise DataValidationError(
                    f"mask must have one entry per panel row ({len(series)}), got {mask.shape}."
                )
        elif until is None:
            mask = np.ones(len(series), dtype=bool)
        else:
            try:
                mask = (panel.time <= until).to_numpy()
            except Exception as exc:
                raise DataValidationError(
                    f"Cannot compare the time column ({panel.time.dtype}) with until={until!r}. "
                    "Pass a value of the same kind as the time column."
                ) from exc
        counts = np.bincount(series[mask], minlength=n)
        if self.method != "none":
            cols = [f"c{j}" for j in range(f)]
            data = pl.DataFrame(
                {"s": series[mask], **{c: panel.values[mask, j] for j, c in enumerate(cols)}}
            )
            stats = self._statistics(data, cols)
            rows = stats["s"].to_numpy()
            center[rows] = stats.select([f"{c}_center" for c in cols]).to_numpy()
            spread = stats.select([f"{c}_scale" for c in cols]).to_numpy()
            valid = np.isfinite(spread) & (spread > 0)
            spread = np.where(valid, np.maximum(spread, MIN_SCALE), 1.0)
            scale[rows] = spread
            empty = counts == 0
            if empty.any():
                names = panel.keys[panel.id_name].filter(pl.Series(empty)).to_list()
                warnings.warn(
                    f"{int(empty.sum())} series have no rows up to {until!r} to fit the scaler "
                    f"and are left unscaled: {names[:5]}.",
                    ForecasterWarning,
                    stacklevel=2,
                )
        self.center_ = center
        self.scale_ = scale
        self.n_fit_rows_ = counts
        self.columns_ = panel.columns
        self._tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
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
    def _check(self, panel: Panel | None = None) -> None:
        if not hasattr(self, "center_"):
            raise NotFittedError("This PanelScaler is not fitted yet. Call fit(panel) first.")
        if panel is not None and (
            panel.n_series != self.center_.shape[0] or panel.n_features != self.center_.shape[1]
        ):
            raise DataValidationError(
                f"The scaler was fitted on {self.center_.shape[0]} series x "
                f"{self.center_.shape[1]} columns, got a panel of {panel.n_series} x "
                f"{panel.n_features}. Fit the scaler on this panel."
            )

    def transform_values(
        self, values: np.ndarray, series: np.ndarray, columns: slice | np.ndarray = slice(None)
    ) -> np.ndarray:
        """Scale ``values`` (float, ``(..., n_columns)``) of the given series (first axis).

        ``series`` has one entry per row of ``values`` (shape ``values.shape[0]``); ``columns``
        selects which of the fitted columns the last axis holds (all by default).
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
        """A new panel with scaled float32 values (keys and times shared)."""
        self._check(panel)
        return _with_values(panel, self.transform_values(panel.values, panel.series_of_rows()))

    def inverse_transform(self, panel: Panel) -> Panel:
        """A new panel with the scaling undone."""
        self._check(panel)
        values = self.inverse_transform_values(panel.values, panel.series_of_rows())
        return _with_values(panel, values)

    def tensors(self, device: str | torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(center, scale)`` as float32 tensors ``(n_series, n_features)`` on ``device``.

        Used to scale gathered batches on the device instead of a scaled copy of the panel.
        """
        self._check()
        key = str(torch.device(device))
        if key not in self._tensors:
            self._tensors[key] = (
                torch.as_tensor(self.center_, dtype=torch.float32, device=device),
                torch.as_tensor(self.scale_, dtype=torch.float32, device=device),
            )
        return self._tensors[key]

    # ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (used by ``save``)."""
        self._check()
        return {
            "method": self.method,
            "columns": list(self.columns_),
            "center": self.center_.tolist(),
            "scale": self.scale_.tolist(),
            "n_fit_rows": self.n_fit_rows_.tolist(),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> PanelScaler:
        """Rebuild a fitted scaler from :meth:`to_dict` output."""
        try:
            scaler = cls(state["method"])
            scaler.center_ = np.asarray(state["center"], dtype=np.float64)
            scaler.scale_ = np.asarray(state["scale"], dtype=np.float64)
            scaler.columns_ = list(state["columns"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataValidationError(f"Invalid scaler state: {exc!r}.") from exc
        if scaler.center_.shape != scaler.scale_.shape or scaler.center_.ndim != 2:
            raise DataValidationError("Invalid scaler state: center and scale shapes differ.")
        scaler.n_fit_rows_ = np.asarray(
            state.get("n_fit_rows", [0] * scaler.center_.shape[0]), dtype=np.int64
        )
        scaler._tensors = {}
        return scaler

    def __repr__(self) -> str:
        return f"PanelScaler(method={self.method!r})"


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
    )

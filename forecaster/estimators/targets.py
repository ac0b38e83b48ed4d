"""The target transform of :class:`~forecaster.estimators.forecaster.RNNForecaster` and the
panels the network sees.

``fit`` resolves ``target_transform`` on the training panel (``"auto"``: ``log`` when every
target is > 0, :func:`~forecaster.data.transforms.resolve_target_transform`), checks the domain
and fits the Box-Cox lambdas; ``fit`` and ``predict`` then build the network's panel the same
way (targets transformed, static covariates encoded, calendar features appended), and
``predict`` inverts the transform on the forecasts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from forecaster.data.calendar import calendar_features, calendar_values
from forecaster.data.frames import column_tuple, counted, read_once
from forecaster.data.panel import Panel
from forecaster.data.scaling import PanelScaler
from forecaster.data.suspicious import warn_flat_covariates, warn_unscaled_targets
from forecaster.data.transforms import (
    boxcox_ceiling,
    check_target_domain,
    fit_boxcox_lambdas,
    inverse_targets,
    raise_to_positive,
    resolve_target_transform,
    transform_targets,
)
from forecaster.data.validate import MISSING_VALUES_ERROR
from forecaster.estimators.rows_ahead import (
    missing_before_rows_ahead,
    rows_ahead_fit_error,
    rows_ahead_span,
)
from forecaster.estimators.sampling import rows_before_holdout, validation_holdout
from forecaster.exceptions import DataValidationError, ForecasterWarning, warn_at_caller

__all__ = ["TargetPanels"]


class TargetPanels:
    """The fitted target transform and the network's panels (a mixin of ``RNNForecaster``,
    which holds the parameters and the fitted attributes it reads)."""

    target: Any
    id_col: str | None
    time_col: str
    future_covariates: Any
    target_transform: str
    head: str
    horizon: int
    calendar: Any
    freq: Any
    missing: str
    scaling: str
    validation_size: int | float
    column_roles: Callable[[], dict[str, Any]]
    model_columns: Callable[[], tuple[str, ...]]
    windowed_panel: Callable[..., tuple[Panel, int]]
    target_lambdas_: np.ndarray | None
    _with_statics: Callable[[Panel], Panel]
    _fitted_rows: Callable[[Panel], tuple[np.ndarray, np.ndarray]]

    def _fitted_transform(self) -> str:
        """The fitted transform (``target_transform_``; a model loaded from files saved before
        ``"auto"`` existed has its parameter)."""
        return self.__dict__.get("target_transform_", self.target_transform)

    def _linear_skip(self, value: bool | str) -> bool:
        """``linear_skip`` resolved: ``"auto"`` is on with a log transform (``head`` permitting).
        Before a fit resolves the transform (the memory check, when the fit has no fitted
        attributes yet) it reads the parameter: the skip's few weights are all that differ."""
        if value != "auto":
            return bool(value)
        return self._fitted_transform() == "log" and self.head != "recursive"

    def _training_panel(
        self, frame: Any
    ) -> tuple[Panel, np.ndarray, np.ndarray | None, tuple[str, ...], int]:
        """The validated panel of ``frame``, the mask of its rows before the validation
        hold-out, the Box-Cox lambdas fitted on those rows (None for other transforms), the
        calendar features and the lookback (``"auto"`` resolved on the panel)."""
        options = {**self.column_roles(), "freq": self.freq, "missing": self.missing}
        try:
            raw, lookback = self.windowed_panel(frame, **options, ends="training")
        except DataValidationError as refused:  # rows ahead: not "pass missing='ffill'"
            if not str(refused).startswith(MISSING_VALUES_ERROR):
                raise
            targets, future = column_tuple(self.target), column_tuple(self.future_covariates)
            roles: dict[str, Any] = {"id_col": self.id_col, "time_col": self.time_col}
            span = rows_ahead_span(frame, targets, (), **roles)
            checked = (*column_tuple(options["covariates"]), *future)  # refused up to there too
            if span is None or missing_before_rows_ahead(frame, targets, checked, **roles):
                raise  # a gap before the rows ahead: the error names it
            raise rows_ahead_fit_error(span, targets, future, **roles) from None
        calendar = calendar_features(self.calendar, raw.freq, raw.time.dtype)
        holdout = validation_holdout(self.validation_size, raw, int(self.horizon))
        fit_rows = rows_before_holdout(raw, holdout)
        covariates = [*raw.covariates, *raw.future_covariates]
        known = raw.known_through(fit_rows)  # "interpolate": not leaning on the held-out rows
        values = known.values[:, raw.n_targets : raw.n_targets + len(covariates)]
        warn_flat_covariates(values, raw.lengths, covariates, fit_rows, self.scaling)
        lambdas = self._fit_target_transform(raw, fit_rows)  # sets target_transform_
        return raw, fit_rows, lambdas, calendar, lookback

    def _read_fit_frame(self, frame: Any) -> Any:
        """``frame`` as ``fit`` reads it: a LazyFrame collected once, the columns of the
        model's roles (:func:`~forecaster.data.frames.read_once`), so that the training panel
        and the baseline check after training read the same rows."""
        return read_once(frame, self.model_columns())

    def _fit_scaler(self, panel: Panel, fit_rows: np.ndarray) -> PanelScaler:
        """The scaler of ``scaling`` fitted on the ``fit_rows`` of the network's ``panel``,
        with a warning when ``scaling="none"`` leaves targets far from unit scale (both read
        the rows as known at their end, :meth:`Panel.known_through`)."""
        targets = panel.known_through(fit_rows).values[:, : panel.n_targets]
        names = panel.columns[: panel.n_targets]
        warn_unscaled_targets(targets, panel.lengths, names, fit_rows, self.scaling)
        return PanelScaler(self.scaling).fit(panel, mask=fit_rows)

    def _fit_target_transform(self, raw: Panel, fit_rows: np.ndarray) -> np.ndarray | None:
        """Set ``target_transform_`` (``target_transform`` resolved on the training panel
        ``raw``), check ``raw``'s targets are in its domain, and return the Box-Cox lambdas
        fitted on ``fit_rows`` (the rows before the validation hold-out; None for the other
        transforms)."""
        self.target_transform_ = resolve_target_transform(self.target_transform, raw, fit_rows)
        check_target_domain(self.target_transform_, raw)
        if self.target_transform_ != "boxcox":
            return None
        return fit_boxcox_lambdas(raw, mask=fit_rows)

    def _model_panel(
        self, raw: Panel, calendar: Sequence[str], lambdas: np.ndarray | None
    ) -> Panel:
        """The panel the network sees: targets transformed (``lambdas`` per series of ``raw``
        for Box-Cox), the encoded statics (:mod:`~forecaster.estimators.statics`) and the
        calendar features appended as future-known covariates."""
        panel = self._with_statics(transform_targets(self._fitted_transform(), raw, lambdas))
        if not calendar:
            return panel
        extra = calendar_values(panel.time, calendar)
        names = tuple(f"{name}_{part}" for name in calendar for part in ("sin", "cos"))
        clash = [n for n in names if n in panel.columns]
        if clash:
            raise DataValidationError(
                f"Columns {clash} clash with the calendar features' names. Rename them or set "
                "calendar=None."
            )
        return dataclasses.replace(
            panel,
            values=np.ascontiguousarray(np.hstack([panel.values, extra])),
            future_covariates=(*panel.future_covariates, *names),
            _device_values={},
        )

    def _predict_panel(
        self, raw: Panel, history: np.ndarray | None = None, before: np.ndarray | None = None
    ) -> tuple[Panel, np.ndarray | None]:
        """:meth:`_model_panel` for a prediction panel, and the Box-Cox lambdas per series
        (None for other transforms): fitted ones for series seen in ``fit``, for the others
        lambdas fitted on each series' rows up to its global row ``history[i]`` as known
        there (:meth:`Panel.known_through`; all rows when None). ``before``: the smallest positive
        target of each series in rows before ``raw`` (a stream's)."""
        if self.target_transform == "auto" and self._fitted_transform() == "log":
            raw = self._raise_to_positive(raw, before)
        check_target_domain(self._fitted_transform(), raw)
        lambdas = None
        if self._fitted_transform() == "boxcox":
            fitted, known = self._fitted_rows(raw)
            lambdas = np.empty((raw.n_series, raw.n_targets))
            lambdas[known] = np.asarray(self.target_lambdas_)[fitted[known]]
            if (~known).any():
                mask = None if history is None else raw.rows_until(history)
                own = fit_boxcox_lambdas(raw, mask=mask)
                lambdas[~known] = own[~known]
        return self._model_panel(raw, getattr(self, "calendar_", ()), lambdas), lambdas

    def _raise_to_positive(self, raw: Panel, before: np.ndarray | None = None) -> Panel:
        """``raw`` with its target values <= 0 raised to the smallest positive value before
        them (:func:`~forecaster.data.transforms.raise_to_positive`), with a warning that names
        them: a model whose ``"auto"`` transform is the log forecasts such data, never silently."""
        raised, mask = raise_to_positive(raw, before)
        if not mask.any():
            return raw
        row, col = np.argwhere(mask)[0]
        series = raw.series_of_rows()[np.flatnonzero(mask.any(axis=1))]
        keys = raw.keys[raw.id_name].gather(np.unique(series)).to_list()
        warn_at_caller(
            f"target_transform='auto' chose the log in fit (every training target was > 0), "
            f"but this frame has {counted(int(mask.sum()), 'target value', 'target values')} "
            f"<= 0 in "
            f"{len(keys)} series, e.g. {float(raw.values[row, col]):g} in column "
            f"{raw.targets[col]!r} of series {keys[0]!r}: each was raised to the smallest "
            "positive value before it in its series (in the column when its series has none "
            "yet, 1 when neither has) to forecast. Refit on data like this one "
            "(target_transform='auto' then keeps the targets' scale), or fit with "
            "target_transform='none'.",
            ForecasterWarning,
        )
        return raised

    def _inverse_targets(
        self, pred: np.ndarray, lambdas: np.ndarray | None, ids: pl.Series
    ) -> np.ndarray:
        """Forecasts ``(B, horizon, n_targets)`` of the transformed targets on the targets'
        own scale (``lambdas``: the Box-Cox lambdas of each row's series, ``ids``: its
        series), inside the transform's domain. A negative Box-Cox lambda (fitted by a
        release before lambdas were limited to [0, 2]) cannot invert a forecast at or above
        its ceiling ``-1/lambda``: refused, naming the series, the lambda and the fix."""
        transform = self._fitted_transform()
        if transform == "boxcox" and lambdas is not None:
            ceiling = boxcox_ceiling(lambdas)[:, None, :]
            with np.errstate(invalid="ignore"):
                above = np.isfinite(ceiling) & (pred >= ceiling)
            if above.any():
                row, step, col = np.argwhere(above)[0]
                series = ids.gather(np.unique(np.nonzero(above)[0])).unique(maintain_order=True)
                where = "the series" if self.id_col is None else f"series {series[0]!r}"
                raise DataValidationError(
                    f"target_transform='boxcox' cannot invert the forecast of {where} at step "
                    f"{int(step) + 1}, target {column_tuple(self.target)[col]!r} "
                    f"({len(series)} series in all): its lambda {float(lambdas[row, col]):.4g} "
                    "is negative, so its transformed values never exceed -1/lambda = "
                    f"{float(ceiling[row, 0, col]):.4g}, and the network's forecast is "
                    f"{float(pred[row, step, col]):.4g}, whose inverse is infinite. This "
                    "model was fitted by a release that allowed negative lambdas; lambdas "
                    "are now fitted in [0, 2] (0 is the log). Refit it, or fit with "
                    "target_transform='log'."
                )
        return inverse_targets(transform, pred, lambdas)

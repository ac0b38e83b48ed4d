"""Static covariates of :class:`~forecaster.estimators.forecaster.RNNForecaster`: the fitted
:class:`~forecaster.data.statics.StaticEncoding` and the model panel's static columns.

``static_covariates=[...]`` names columns with one value per series. ``fit`` reads them
(checked constant within each series), fits their encoding (vocabularies of the categorical
ones, mean and standard deviation over series of the numeric ones) and appends the encoded
values to the model panel as columns after the past covariates, which the per-series scaler
leaves unscaled; the network turns each window's statics into the initial state of its
encoder (:mod:`forecaster.nn.statics`), for every head. ``predict`` reads them from its frame
the same way: a category unseen in ``fit`` gets the unknown category (code 0), with a
:class:`~forecaster.exceptions.ForecasterWarning`.
"""

from __future__ import annotations

__all__ = ["StaticCovariates"]

import dataclasses
from typing import Any

import numpy as np

from forecaster.data.panel import Panel
from forecaster.data.statics import StaticEncoding
from forecaster.nn.statics import decodes_from_statics


class StaticCovariates:
    """The static covariates of a frame estimator (a mixin of ``RNNForecaster``)."""

    static_covariates: Any

    def _fit_statics(self, raw: Panel) -> None:
        """Fit the encoding of ``raw``'s statics (``static_encoding_``; None without)."""
        statics = raw.statics
        self.static_encoding_ = None if statics is None else StaticEncoding.fit(statics)

    def _static_network_config(self) -> dict[str, Any]:
        """The network arguments of the fitted statics (none without)."""
        encoding = self.__dict__.get("static_encoding_")
        if encoding is None:
            return {}
        config = encoding.network_config()
        if decodes_from_statics(getattr(self, "head", None), bool(config)):
            config["static_at_horizon"] = True
        return config

    def _with_statics(self, panel: Panel) -> Panel:
        """``panel`` with its encoded statics appended after the past covariates (one row per
        panel row); a model without static covariates returns it as it is."""
        encoding = self.__dict__.get("static_encoding_")
        if encoding is None or panel.statics is None:
            return panel
        ids = panel.keys[panel.id_name] if panel.id_col is not None else None
        codes = encoding.transform(panel.statics.select(encoding.names), ids=ids)
        first = panel.n_targets + len(panel.covariates)
        values = np.concatenate(
            [
                panel.values[:, :first],
                np.repeat(codes, panel.lengths, axis=0),
                panel.values[:, first:],
            ],
            axis=1,
        )
        return dataclasses.replace(
            panel,
            values=np.ascontiguousarray(values, dtype=np.float32),
            static_columns=tuple(encoding.names),
            _device_values={},
        )

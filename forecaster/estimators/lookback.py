"""The input window of a forecaster: ``lookback`` as given, or the one ``"auto"`` chooses.

:class:`AutoLookback` gives :class:`~forecaster.estimators.forecaster.RNNForecaster` its
fitted ``lookback_`` (the window of the fitted network, set by ``fit`` and ``load``) and
:meth:`~AutoLookback.lookback_for` (the window a fit on a panel uses), so that every code path
that needs the window length (fitting, prediction, backtest fold placement, pipelines,
tracking) asks one place.
"""

from __future__ import annotations

__all__ = ["AutoLookback"]

from typing import Any

import numpy as np

from forecaster.data.checks import long_enough
from forecaster.data.panel import Panel
from forecaster.data.seasons import auto_lookback, panel_seasons
from forecaster.estimators.sampling import (
    fit_min_length,
    no_training_window,
    validation_steps,
)


class AutoLookback:
    """Mixin: the lookback of a frame forecaster (``lookback`` an int or ``"auto"``)."""

    lookback_: int
    """The input window of the fitted network: ``lookback``, or what ``"auto"`` chose (set by
    ``fit`` and ``load``)."""

    def lookback_for(self, panel: Any, span: tuple[np.ndarray, np.ndarray] | None = None) -> int:
        """The lookback a fit on ``panel`` uses: ``lookback`` itself, or for ``"auto"`` the
        window :func:`~forecaster.data.seasons.auto_lookback` chooses from the panel's
        frequency (or, when it implies no cycle, the season found in the data before the
        validation hold-out: :func:`~forecaster.data.seasons.panel_seasons`), the horizon and
        a typical series' length and validation hold-out.

        Parameters
        ----------
        panel : Panel
            The data of the fit.
        span : (numpy.ndarray, numpy.ndarray), optional
            ``(start, stop)``, arrays of positions within each series: the lookback of a fit
            given only rows ``start[i]:stop[i]`` of series ``i`` (a backtest fold's training
            span; clipped to the series), without the series whose span is too short for one
            window (``horizon + 1`` rows before its validation hold-out), as such a fit leaves
            them out. Default: every row.

        Returns
        -------
        int

        Examples
        --------
        >>> import polars as pl
        >>> from forecaster import RNNForecaster
        >>> from forecaster.data import Panel
        >>> frame = pl.DataFrame({"time": pl.datetime_range(pl.datetime(2024, 1, 1),
        ...     pl.datetime(2024, 3, 1), "1h", eager=True)}).with_columns(y=pl.lit(1.0))
        >>> panel = Panel.from_frame(frame, target="y", time_col="time")
        >>> RNNForecaster(target="y").lookback_for(panel)
        336
        """
        if self.lookback != "auto":  # type: ignore[attr-defined]
            return int(self.lookback)  # type: ignore[attr-defined]
        horizon = int(self.horizon)  # type: ignore[attr-defined]
        size = self.validation_size  # type: ignore[attr-defined]
        start, stop = (np.zeros_like(panel.lengths), panel.lengths) if span is None else span
        stop = np.clip(stop, 0, panel.lengths)
        start = np.clip(start, 0, stop)
        lengths = stop - start
        before = np.maximum(stop - validation_steps(size, lengths, horizon), start)
        kept = before - start > horizon  # the series a fit keeps: room for one window
        typical = np.array([int(np.median(lengths[kept]))]) if kept.any() else np.zeros(0)
        holdout = validation_steps(size, typical, horizon)
        starts = panel.offsets[:-1] + start
        ends = np.where(kept, panel.offsets[:-1] + before, starts)  # left out: nothing read
        seasons = panel_seasons(panel, ends, starts)  # or detected before the hold-out
        return auto_lookback(
            panel.freq,
            horizon,
            lengths[kept],
            int(holdout.max(initial=0)),
            detected=seasons[0] if seasons else 1,
        )

    def windowed_panel(self, frame: Any, **options: Any) -> tuple[Panel, int]:
        """``Panel.from_frame(frame, **options)`` without the series too short for one
        training window (``lookback + horizon`` rows before the validation hold-out,
        :func:`~forecaster.estimators.sampling.fit_min_length`), dropped and named in one
        warning as :class:`~forecaster.data.panel.Panel` does
        (:func:`~forecaster.data.checks.long_enough`), and the lookback (:meth:`lookback_for`
        the panel). The frame is read once (its data warnings given once). When no series is
        long enough, the error says whether the hold-out is what left them too short.

        Parameters
        ----------
        frame : polars.DataFrame
        **options
            The other arguments of :meth:`Panel.from_frame
            <forecaster.data.panel.Panel.from_frame>` but ``min_length`` and
            ``length_reason``.

        Returns
        -------
        (Panel, int)
        """
        horizon, auto = int(self.horizon), self.lookback == "auto"  # type: ignore[attr-defined]
        size = self.validation_size  # type: ignore[attr-defined]
        panel = Panel.from_frame(frame, **options)  # all series: the short ones go below
        lookback = self.lookback_for(panel)
        needed = fit_min_length(size, lookback, horizon)
        short = panel.lengths < needed
        if not short.any():
            return panel, lookback
        least = (1 if auto else lookback) + horizon  # without a hold-out
        held = bool(size)
        if short.all() and (panel.lengths < least).all():
            needed, held = least, False  # too short without a hold-out: Panel refuses them
        elif short.all() and held:  # the hold-out left them too short
            before = panel.lengths - validation_steps(size, panel.lengths, horizon)
            raise no_training_window(self, lookback, before)
        reason = "lookback + horizon" + (" + the validation_size hold-out" if held else "")
        keep = long_enough(panel.lengths, panel.keys[panel.id_name], needed, reason)
        return panel.select_series(keep), lookback

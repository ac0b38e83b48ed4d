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
import polars as pl

from forecaster.data.checks import long_enough, no_training_window, warn_dropped
from forecaster.data.panel import Panel
from forecaster.data.seasons import auto_lookback, panel_seasons
from forecaster.estimators.sampling import (
    check_validation_size,
    fit_min_length,
    holds_out_one_time,
    kept_series,
    validation_holdout,
    validation_steps,
)
from forecaster.evaluation.folds import LOOKBACK_ROUNDS


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
        a typical series' length and validation hold-out, of the series the fit keeps.

        A fit leaves out the series with fewer than ``lookback + horizon`` rows before the
        validation hold-out (:func:`~forecaster.estimators.sampling.kept_series`), and on a
        date panel that moves the hold-out time, which the window is sized from: the lookback
        and the series kept are settled in turn until they agree (at most
        :data:`~forecaster.evaluation.folds.LOOKBACK_ROUNDS` rounds; when they do not, the
        longest lookback seen). The first round places the hold-out on every series and reads
        those with room for a window of one row before it.

        Parameters
        ----------
        panel : Panel
            The data of the fit.
        span : (numpy.ndarray, numpy.ndarray), optional
            ``(start, stop)``, arrays of positions within each series: the lookback of a fit
            given only rows ``start[i]:stop[i]`` of series ``i`` (a backtest fold's training
            span; clipped to the series), of the series such a fit keeps. Default: every
            row.

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
        keep, seen = stop > start, []
        for _ in range(LOOKBACK_ROUNDS):  # the lookback and the series kept, in turn
            lookback = self._auto_lookback(panel, start, np.where(keep, stop, start))
            kept, _ = kept_series(size, panel, lookback, horizon, span=(start, stop))
            if not kept.any() or (kept == keep).all():
                return lookback  # none kept (the fit says so), or the two agree
            if lookback in seen:  # a cycle
                break
            seen.append(lookback)
            keep = kept
        return max(seen)

    def series_kept(
        self, panel: Panel, lookback: int, span: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The series a fit on ``panel`` with ``lookback`` keeps (those with ``lookback +
        horizon`` rows before its validation hold-out) and the rows each holds out:
        :func:`~forecaster.estimators.sampling.kept_series` of its ``validation_size``. A
        backtest checks its folds' training spans with it before any fit, so it refuses what
        ``fit`` refuses before reading any row: a ``validation_size`` of fewer steps than the
        horizon (:func:`~forecaster.estimators.sampling.check_validation_size`), whatever the
        span.

        Parameters
        ----------
        panel : Panel
        lookback : int
        span : (numpy.ndarray, numpy.ndarray), optional
            ``(start, stop)`` positions within each series, as for :meth:`lookback_for`.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            One bool per series (kept), and the rows each kept series holds out.

        Raises
        ------
        DataValidationError
            For an integer ``validation_size`` below the horizon (not a length problem).
        """
        size = self.validation_size  # type: ignore[attr-defined]
        horizon = int(self.horizon)  # type: ignore[attr-defined]
        check_validation_size(size, horizon)  # as fit: no span has room for its validation
        return kept_series(size, panel, int(lookback), horizon, span=span)

    def _auto_lookback(self, panel: Panel, start: np.ndarray, stop: np.ndarray) -> int:
        """What ``lookback="auto"`` chooses for a fit given rows ``start[i]:stop[i]`` of each
        series, from the series with room for a window of one row before the validation
        hold-out of those spans."""
        horizon = int(self.horizon)  # type: ignore[attr-defined]
        size = self.validation_size  # type: ignore[attr-defined]
        lengths = stop - start
        held = validation_holdout(size, panel, horizon, span=(start, stop))
        before = np.maximum(stop - held, start)
        kept = before - start > horizon  # room for one window
        typical = np.array([int(np.median(lengths[kept]))]) if kept.any() else np.zeros(0)
        if not holds_out_one_time(panel):  # a typical series' own hold-out
            holdout = validation_steps(size, typical, horizon)
        else:  # the panel's one hold-out time: the most rows a series holds out
            holdout = held[kept]
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
        least = (1 if auto else lookback) + horizon  # without a hold-out
        ids = panel.keys[panel.id_name]
        dropped: dict[tuple[int, str], list[np.ndarray]] = {}  # each round's, by reason

        def warn_rounds() -> None:  # the series of every round so far, in one warning
            groups = [
                (ids.gather(np.concatenate(rows)).to_list(), *why) for why, rows in dropped.items()
            ]
            warn_dropped(groups)
            dropped.clear()

        def name_short(keep: np.ndarray, held: np.ndarray, short: np.ndarray) -> None:
            lengths, before = panel.lengths[keep], (panel.lengths - held)[keep]
            last = bool(short[keep].all())  # none left: refused, after the rounds before
            if last:
                warn_rounds()
            if last and (lengths < least).all():  # Panel refuses them
                values, needed, reason = lengths, least, "lookback + horizon"
            elif last and size:  # the hold-out left them too short
                raise no_training_window(self, lookback, before)
            elif (held[keep] == validation_steps(size, lengths, horizon)).all():  # their own
                values, needed = lengths, fit_min_length(size, lookback, horizon)
                reason = "lookback + horizon" + (" + the validation_size hold-out" if size else "")
            else:  # a date panel's one hold-out time: the rows before it
                values, needed = before, lookback + horizon
                reason = "lookback + horizon before the panel's validation hold-out time"
            if last:
                long_enough(values, ids.filter(pl.Series(keep)), needed, reason)  # refuses
            dropped.setdefault((int(needed), reason), []).append(np.flatnonzero(short))

        keep, _ = kept_series(size, panel, lookback, horizon, on_short=name_short)
        warn_rounds()
        return panel.select_series(keep), lookback

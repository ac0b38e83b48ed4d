"""``RNNForecaster.score``: the negative MAE of a forecast of each series' last ``horizon``
steps (of all its steps after the data the model was fitted on, when they are more: from
origins every ``horizon`` steps back from its end), refusing or leaving out held-out steps that
the model was fitted on (or after)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from forecaster._busy import uses_fitted_state
from forecaster._columns import temporary_names
from forecaster.data import trained_frame
from forecaster.data.frames import (
    SERIES_ID,
    check_schema,
    collect_frame,
    column_tuple,
    format_list,
    observed_values,
)
from forecaster.data.frequency import Frequency
from forecaster.data.statics import with_static_columns
from forecaster.data.suspicious import MADE_UP_ENDS, missing_ends, warn_missing_ends
from forecaster.data.validate import validate_frame_cells
from forecaster.estimators.base import refuse_y
from forecaster.estimators.cutoffs import SHORT_SERIES
from forecaster.estimators.future import warn_made_up_future
from forecaster.evaluation.fitted import in_sample_ends
from forecaster.exceptions import (
    DataValidationError,
    ForecasterWarning,
    InSampleWarning,
    UnscoredPointsWarning,
    silenced,
    warn_at_caller,
)

__all__ = ["ForecastScoring"]

_OWN_IN_SAMPLE_ONLY = r"^In-sample forecasts: (?!.*in sample only through the other series)"
"""predict's :class:`InSampleWarning` of origins before their own series' fitted end only."""


class ForecastScoring:
    """``score`` (a mixin of ``RNNForecaster``, which holds the parameters, the fitted
    attributes and ``predict``)."""

    # what RNNForecaster holds (parameters, fitted attributes) and gives
    target: Any
    time_col: str
    id_col: str | None
    covariates: Any
    future_covariates: Any
    horizon: int
    missing: str
    lookback_: int
    schema_: dict[str, str]
    freq_: Frequency
    check_fitted: Callable[[str], None]
    column_roles: Callable[[], dict[str, Any]]
    predict: Callable[..., pl.DataFrame]
    _match_keys: Callable[[pl.DataFrame, str], tuple[np.ndarray, np.ndarray]]

    @uses_fitted_state("score with")
    def score(self, frame: pl.DataFrame | pl.LazyFrame, y: None = None) -> float:
        """Negative mean absolute error of a forecast of each series' last ``horizon`` steps,
        or of all its steps after the data the model was fitted on when they are more.

        The frame is read as ``fit`` reads it (the model's frequency and ``missing=`` policy,
        so gaps are filled on the regular grid); the last ``horizon`` steps of every series on
        that grid are held out, the model forecasts them from the steps before, and the score
        is ``-MAE`` over series, steps and targets in the targets' units (higher is better, as
        scikit-learn expects), against the frame's own values (float64): the mean absolute
        error of all scored points together. A held-out value the frame does not hold (a gap
        the ``missing=`` policy filled) is not scored, with a warning (the zeros of
        ``missing="zero"`` are data, and scored). The forecast sees the history as it was
        known at the last step before the held-out ones: with ``missing="interpolate"``, a
        gap that reaches into the held-out steps is filled forward, not interpolated towards
        the first held-out value. Used by ``GridSearchCV``
        with :class:`TemporalSplit`.

        A series with more than ``horizon`` steps after the fitted data (a fold of
        :class:`TemporalSplit` with ``test_size > horizon``, newer data) holds out all of
        them, each scored once: forecast in one batched ``predict(frame, cutoff=...)`` from
        origins ``horizon``, ``2 * horizon``, ... steps before its end (the earliest at or
        before the fitted end; seen steps are not scored), the held-out values before each
        known; ``predict`` names the origins it leaves out or that start after made-up values.
        scikit-learn's ``scoring=`` strings (``"neg_mean_absolute_error"``, ...) compare
        ``predict(X)`` with a ``y``, which a frame forecaster does not take: leave
        ``scoring=None``, which calls this method (scikit-learn's own error says a ``y_true``
        is missing otherwise).

        Parameters
        ----------
        frame : polars.DataFrame, polars.LazyFrame or pandas.DataFrame
            The series with the steps to hold out at their ends, in the columns of ``fit``.
        y : None
            Must be None (scikit-learn passes ``y=None``): the targets are columns of ``frame``.

        Returns
        -------
        float
            ``-MAE``: higher is better.

        Raises
        ------
        DataValidationError
            When the model was fitted on data of a series after its held-out steps (a
            cross-validation split that is not in time order, such as scikit-learn's default
            ``KFold``, trains on rows after the test rows: use :class:`TemporalSplit`), or when
            some, but not all, held-out steps of a series are in the data the model was fitted
            on and no series' held-out steps are all new (e.g. :class:`TemporalSplit` with
            ``test_size < horizon``): such a score would mix in-sample and out-of-sample
            steps. Also for a ``y`` that is not None (the targets are columns of ``frame``).

        Warns
        -----
        ForecasterWarning
            When the held-out steps of some series are all or partly in the data the model
            was fitted on while the other series' are all new: those series are left out of
            the score, which is over new steps only (e.g. a series that ends before or inside
            a fold's test steps of :class:`TemporalSplit` without ``id_col``). When every
            series' held-out steps are all in the fitted data, which ends with them (e.g. a
            score of the training frame): the score is in-sample, and scored. When the
            targets at some series' step before its held-out ones (where its forecast starts)
            are not in the frame: the forecast starts after the values the ``missing=``
            policy made up there (as ``predict`` warns of a cutoff there). When other series
            of the frame have no scored point (fewer than ``lookback_`` rows before their
            held-out steps, or no held-out value in the frame): named once, with why, and
            over how many series the score is (counting those named in a warning of their
            own: left out as the frame is read, or in-sample). When the ``missing=`` policy
            made up values of the future covariates at held-out steps (the frame holds none
            there): the forecasts read them as known, as ``predict(frame, cutoff=...)``
            warns (``future=`` refuses them).
        UnscoredPointsWarning
            When some held-out values are not in the frame (filled by the ``missing=``
            policy): they are not scored.
        """
        refuse_y(self, "score", y)
        self.check_fitted("score with")
        frame = trained_frame(frame, self.schema_, id_col=self.id_col, time_col=self.time_col)
        check_schema(frame, self.schema_, id_col=self.id_col, time_col=self.time_col)
        roles = self.column_roles()
        statics = roles.pop("static_covariates", None)
        frame = collect_frame(frame, columns=list(self.schema_))
        data, _, interpolated = validate_frame_cells(  # its end is held out: no forecast's start
            frame, **roles, freq=str(self.freq_), missing=self.missing, ends="origins"
        )
        data = with_static_columns(data, frame, id_col=self.id_col, names=statics)
        horizon = int(self.horizon)
        id_name = self.id_col if self.id_col is not None else SERIES_ID  # validate_frame's
        # rows are sorted by (id, time): a row's position from its series' end, as a mask
        from_end = data.select(pl.int_range(pl.len()).reverse().over(id_name)).to_series()
        value_cols = [
            *column_tuple(roles["target"]),
            *column_tuple(roles.get("covariates")),
            *column_tuple(roles.get("future_covariates")),
        ]
        held = self._held_out_steps(data, id_name, from_end)
        inputs = _unfilled(data, value_cols, interpolated)  # as predict fills them
        history, actual = inputs.filter(from_end >= held), data.filter(from_end < held)
        in_sample = self._check_held_out(actual, id_name)
        if in_sample is not None:  # scored: the series with new held-out steps only
            new = ~pl.col(id_name).is_in(in_sample.implode())
            history, actual = history.filter(new), actual.filter(new)
        keys = [c for c in (self.id_col, self.time_col) if c]
        self._warn_made_up_origins(history, frame, id_name, keys)
        # more new steps than one horizon somewhere: forecast from every horizon back
        rolling = _rolling_inputs(inputs, from_end, held, horizon, in_sample, id_name, keys)
        if self.id_col is None:
            history, actual = history.drop(id_name), actual.drop(id_name)
        forecast = self._forecast_held_out(history, actual, rolling, keys)
        self._warn_held_out_future(forecast, frame, keys)
        targets = list(column_tuple(self.target))
        true = temporary_names([*keys, *targets], *[f"{t}_true" for t in targets])
        observed = self._observed_held_out(actual.select(keys), frame, targets, true)
        joined = forecast.join(observed, on=keys)
        if joined.height == 0:
            raise DataValidationError("No forecast step matched the held-out rows of the frame.")
        self._warn_unscored(frame, data, history, joined.select(*keys, *true), in_sample)
        # one mean over every scored point (as evaluate and aggregate pool), not a mean of
        # per-target means: a target with unscored held-out values would weigh its points more
        errors = [(pl.col(t) - pl.col(o)).abs() for t, o in zip(targets, true, strict=True)]
        return -float(joined.select(pl.concat_list(errors).explode().mean()).item())

    def _forecast_held_out(
        self,
        history: pl.DataFrame,
        actual: pl.DataFrame,
        rolling: tuple[pl.DataFrame, pl.DataFrame] | None,
        keys: list[str],
    ) -> pl.DataFrame:
        """The forecast of the held-out steps: from ``history``'s end (the future covariates
        read from ``actual``), or from each origin of ``rolling`` (:func:`_rolling_inputs`)
        in one batched call (the future covariates read from the rows after each)."""
        future = column_tuple(self.future_covariates)  # only what predict reads from future=
        # the made-up ends are named by score, as origins; the short series, as not scored
        with silenced(ForecasterWarning, MADE_UP_ENDS), silenced(ForecasterWarning, SHORT_SERIES):
            if rolling is not None:
                inputs, origins = rolling
                inputs = inputs if self.id_col else inputs.drop(SERIES_ID)
                cutoff = origins if self.id_col else origins[self.time_col].unique()
                # the earliest origin is at or before the fitted end by design (its seen steps
                # are not scored): predict's in-sample note of it is none of the user's; one
                # in sample through the other series (a shared calendar) is still shown
                with silenced(InSampleWarning, _OWN_IN_SAMPLE_ONLY):
                    return self.predict(inputs, cutoff=cutoff).drop("origin")
            return self.predict(history, future=actual.select(*keys, *future) if future else None)

    def _held_out_steps(self, data: pl.DataFrame, id_name: str, from_end: pl.Series) -> pl.Series:
        """Each row's count of held-out steps of its series (``data`` sorted by series and
        time, ``from_end`` each row's position from its series' end): ``horizon``, or the
        steps after the data the model was fitted on when they are more (a fold of
        :class:`TemporalSplit` with ``test_size > horizon``, newer data), all scored. The
        fitted ends are read once per series, not per row."""
        horizon = int(self.horizon)
        last = np.flatnonzero(from_end.to_numpy() == 0)  # each series' last row
        seen = in_sample_ends(self, data[id_name].gather(last))
        if seen is None:  # a model loaded from a folder that does not record it
            return pl.repeat(horizon, data.height, eager=True)
        counts = np.diff(last, prepend=-1)
        row_series = np.repeat(np.arange(len(last)), counts)
        times = data[self.time_col]
        new = (times > seen.cast(times.dtype, strict=False).gather(row_series)).fill_null(False)
        n_new = np.add.reduceat(new.to_numpy().astype(np.int64), last - counts + 1)
        return pl.Series("held", np.maximum(n_new, horizon)[row_series], dtype=pl.Int64)

    def _warn_held_out_future(
        self, forecast: pl.DataFrame, frame: pl.DataFrame, keys: list[str]
    ) -> None:
        """Warn when ``missing=`` made up values of the future covariates at the steps of
        ``forecast`` (each series' held-out steps, whose future covariates ``score`` hands
        ``predict`` from the frame as read): ``frame`` holds no value there, where
        ``predict(frame, future=...)`` refuses them and ``predict(frame, cutoff=...)`` warns
        (:func:`~forecaster.estimators.future.warn_made_up_future`)."""
        names = list(column_tuple(self.future_covariates))
        horizon = int(self.horizon)
        if not names or self.missing == "error" or forecast.height == 0:
            return
        made = np.isnan(observed_values(forecast.select(keys), frame, names))
        n = forecast.height // horizon  # horizon rows per series, sorted by (id, time)
        ids = None if self.id_col is None else forecast[self.id_col].gather_every(horizon)
        warn_made_up_future(
            made.reshape(n, horizon, len(names)),
            ids,
            forecast[self.time_col],
            names=names,
            missing=self.missing,
            fix="score reads the future covariates of each series' held-out steps (its last "
            "horizon steps) from the frame: fill them there with the values known ahead.",
        )

    def _warn_made_up_origins(
        self, history: pl.DataFrame, frame: pl.DataFrame, id_name: str, keys: list[str]
    ) -> None:
        """Warn once about the forecast origins of ``score`` (each series' last ``history``
        row: the step before its held-out ones) whose targets (or past covariates) the
        ``missing=`` policy made up, as ``predict`` warns of its cutoffs there: the forecasts
        start after them. The
        held-out steps' own made-up values are the :class:`UnscoredPointsWarning`'s. A series
        with fewer than ``lookback_`` history rows is not forecast (predict drops it, and
        says so): its last row is no origin."""
        history = history.filter(pl.len().over(id_name) >= self.lookback_)
        if self.missing == "error" or history.height == 0:
            return
        targets = list(column_tuple(self.target))
        past = [*column_tuple(self.covariates), *column_tuple(self.future_covariates)]
        names = [*targets, *past]
        values = observed_values(history.select(keys), frame, names)  # NaN: made up
        seen = history.select(id_name, self.time_col).with_columns(
            pl.Series(c, values[:, j]).fill_nan(None) for j, c in enumerate(names)
        )
        ends = missing_ends(seen, targets, id_name, self.time_col, past)
        keys_of = (id_name, self.time_col)
        warn_missing_ends(ends, targets, *keys_of, self.missing, at="score", covariates=past)

    def _warn_unscored(
        self,
        frame: pl.DataFrame,
        data: pl.DataFrame,
        history: pl.DataFrame,
        scored: pl.DataFrame,
        in_sample: pl.Series | None,
    ) -> None:
        """Warn of the series of ``frame`` with no scored point, each with why
        (:meth:`_unscored_reason`), and over how many series the score is: ``scored`` holds
        the forecasts' keys and the observed held-out values. Those named in a warning of
        their own already (left out as the frame was read, or ``in_sample``) are counted,
        not named again; nothing when they are all such (and without an id column: a single
        series is scored, or refused)."""
        id_col = self.id_col
        if id_col is None:
            return
        given = frame[id_col].unique(maintain_order=True)
        values = [c for c in scored.columns if c not in (id_col, self.time_col)]
        kept = scored.filter(pl.any_horizontal(pl.col(values).is_not_null()))[id_col].unique()
        missing = given.filter(~given.is_in(kept.implode()))
        if missing.len() == 0:
            return
        why, named = self._unscored_reason(missing, data, history, scored, in_sample)
        reasons = pl.DataFrame({"id": missing}).group_by(why.alias("why"), maintain_order=True)
        groups = reasons.agg("id").rows()
        if all(reason in named for reason, _ in groups):
            return
        parts = [
            f"{len(keys)} {reason}" + ("" if reason in named else f": {format_list(keys)}")
            for reason, keys in groups
        ]
        warn_at_caller(
            f"score: {missing.len()} of the {given.len()} series in the frame "
            f"{'is' if missing.len() == 1 else 'are'} not scored "
            f"({'; '.join(parts)}): the score is over {kept.len()} of them only.",
            ForecasterWarning,
        )

    def _unscored_reason(
        self,
        missing: pl.Series,
        data: pl.DataFrame,
        history: pl.DataFrame,
        scored: pl.DataFrame,
        in_sample: pl.Series | None,
    ) -> tuple[pl.Expr, tuple[str, str]]:
        """Why a series (column ``id``, one of ``missing``) has no scored point: ``data`` (the
        frame as read) has no row of it, it is ``in_sample``, ``history`` (before the held-out
        steps) has fewer than ``lookback_`` rows of it, or ``scored`` none of its values; and
        the two first reasons, those of a series named in a warning of its own (the frame's,
        the in-sample steps')."""
        id_col = str(self.id_col)
        ids = pl.col("id")
        dropped = (
            f"left out whole as the frame was read (no row where every value is observed: "
            f"missing={self.missing!r} cannot fill before one), named above"
        )
        trained = "with held-out steps in the data the model was fitted on, named above"
        inside = pl.lit(False) if in_sample is None else ids.is_in(in_sample.implode())
        rows = history.filter(pl.col(id_col).is_in(missing.implode())).group_by(id_col).len()
        long = rows.filter(pl.col("len") >= self.lookback_)[id_col]
        why = (
            pl.when(~ids.is_in(data[id_col].unique().implode())).then(pl.lit(dropped))
            .when(inside).then(pl.lit(trained))
            .when(~ids.is_in(long.implode()))
            .then(pl.lit(f"with fewer than lookback_={self.lookback_} rows before their last "
                         f"horizon={self.horizon} steps"))
            .when(ids.is_in(scored[id_col].implode()))
            .then(pl.lit("with none of their held-out values in the frame"))
            .otherwise(pl.lit("with no forecast"))
        )  # fmt: skip
        return why, (dropped, trained)

    def _observed_held_out(
        self, rows: pl.DataFrame, frame: pl.DataFrame, targets: list[str], names: Sequence[str]
    ) -> pl.DataFrame:
        """The held-out ``rows`` (keys) with the user's values of ``targets`` (float64, as
        ``names``): a cell the ``missing=`` policy filled is null, so not scored (the zeros of
        ``missing="zero"`` are data, and scored); a warning says how many; an error when no
        held-out cell was observed."""
        values = observed_values(rows, frame, targets)
        unobserved = np.isnan(values)
        if self.missing == "zero":
            values, unobserved = np.where(unobserved, 0.0, values), unobserved & False
        if unobserved.all():
            raise DataValidationError(
                f"score holds out the last horizon={self.horizon} steps of every series, and "
                f"the frame holds none of their {'/'.join(targets)} values (every one was "
                f"filled by missing={self.missing!r}): there is nothing to score. Score on a "
                "frame whose last steps were observed."
            )
        if unobserved.any():
            warn_at_caller(
                f"score: {int(unobserved.sum())} of {unobserved.size} held-out target values "
                f"are not in the frame (filled by missing={self.missing!r}); they are not "
                "scored.",
                UnscoredPointsWarning,
            )
        columns = [pl.Series(name, values[:, j]).fill_nan(None) for j, name in enumerate(names)]
        return rows.with_columns(columns)

    def _check_held_out(self, actual: pl.DataFrame, id_name: str) -> pl.Series | None:
        """Refuse held-out steps of a series that the model was fitted on data after (its
        training frame ran past them: a cross-validation split that is not in time order).
        Return the series whose held-out steps are all or partly in the fitted data (their
        ids), which ``score`` leaves out, with a warning, when other series' are all new (a
        score over new steps only); None when every series is scored. When no series' are
        all new: refuse partly in-sample steps (a score that mixes in-sample and new steps),
        and warn of an in-sample score when every series' are all in the fitted data (e.g.
        a score of the training frame)."""
        ids = actual[id_name]
        seen = in_sample_ends(self, ids)  # the model's last training time for a date panel
        if seen is None:  # a model loaded from a folder that does not record it
            return None
        times = actual[self.time_col]
        own = self.train_end_of(ids)  # type: ignore[attr-defined]
        trained = (times <= seen.cast(times.dtype, strict=False)).fill_null(False)
        if not trained.any():
            return None
        before_own = (times <= own.cast(times.dtype, strict=False)).fill_null(False)
        counts = (
            pl.DataFrame(
                {
                    "id": ids,
                    "t": times,
                    "trained": trained,
                    "end": own,
                    "seen": seen,
                    "cross": trained & ~before_own,
                }
            )
            .filter(pl.Series(seen.is_not_null()))
            .group_by("id", maintain_order=True)
            .agg(
                pl.col("trained").sum(),
                pl.len(),
                pl.col("end").first(),
                pl.col("t").min().alias("first"),
                pl.col("t").max().alias("last"),
                pl.col("seen").first(),
                pl.col("cross").any(),
            )
        )
        self._refuse_future(counts.filter(pl.col("end") > pl.col("last")))
        partial = counts.filter((pl.col("trained") > 0) & (pl.col("trained") < pl.col("len")))
        inside = counts.filter(pl.col("trained") == pl.col("len"))
        n_series = ids.n_unique()
        cross = _through_others(pl.concat([partial, inside]), self.time_col)
        if partial.height + inside.height < n_series:  # others have new steps only
            self._warn_left_out(partial, inside, n_series, cross)
            return pl.concat([partial["id"], inside["id"]])
        if partial.height:
            key, n, total = partial.row(0)[:3]
            which = "" if self.id_col is None else f"{key!r}: "
            raise DataValidationError(
                f"score holds out the last horizon={self.horizon} steps of every series, but "
                f"for {partial.height} series some of them are in the data the model was "
                f"fitted on (e.g. {which}{n} of {total} held-out steps at or before "
                f"{partial['seen'][0]}, up to which the model has seen its period), and no "
                f"series has only new held-out steps, so the score would mix in-sample and new "
                f"steps.{cross} With TemporalSplit, use test_size >= horizon ({self.horizon})"
                + ("" if self.id_col is None else f" and id_col={self.id_col!r}")
                + "; otherwise score on a frame that runs at least horizon steps past the "
                "fitted data."
            )
        warn_at_caller(
            f"score: the held-out steps of {inside.height} series are all in the data the "
            f"model was fitted on (e.g. {inside['id'].head(5).to_list()}): an in-sample "
            f"score.{cross}",
            ForecasterWarning,
        )
        return None

    def _warn_left_out(
        self, partial: pl.DataFrame, inside: pl.DataFrame, n_series: int, cross: str
    ) -> None:
        """Warn that ``score`` leaves out the series whose held-out steps are partly
        (``partial``) or all (``inside``) in the fitted data (rows: id, trained, len, ...)
        while the others' are new (``cross``: the note on those in sample through the other
        series, or "")."""
        fitted_on = "in the data the model was fitted on"
        if partial.height:
            key, n, total = partial.row(0)[:3]
            partly = f"{key!r}: {n} of its {total}"
        ids = inside["id"].head(5).to_list()
        if partial.height and inside.height:
            how = (
                f"{fitted_on}, partly for {partial.height} (e.g. {partly}) and all for "
                f"{inside.height} (e.g. {ids})"
            )
        elif partial.height:
            how = f"partly {fitted_on} (e.g. {partly})"
        else:
            how = f"all {fitted_on} (e.g. {ids})"
        warn_at_caller(
            f"score: the held-out steps of {partial.height + inside.height} of the "
            f"{n_series} series are {how}; they are left out of the score, which is over "
            "the new steps of the other series (an in-sample step would overstate the "
            f"accuracy of forecasts of new data).{cross} In cross-validation, a series that ends "
            "before or inside a fold's test steps has fewer than horizon new steps there: "
            f"pass TemporalSplit(..., id_col={self.id_col!r}), whose folds give every series "
            "test_size new steps.",
            ForecasterWarning,
        )

    def _refuse_future(self, later: pl.DataFrame) -> None:
        """Refuse a score whose held-out steps of some series (rows of ``later``: id,
        trained, len, end, first, last) come before the end of the data the model was fitted
        on: it has seen what followed them."""
        if not later.height:
            return
        key, _, _, end, first, last = later.row(0)[:6]
        which = "" if self.id_col is None else f" {key!r}"
        raise DataValidationError(
            f"score forecasts the last horizon={self.horizon} steps of every series, but the "
            f"model was fitted on later data of {later.height} series (e.g.{which}: fitted up "
            f"to {self.time_col}={end}, held-out steps {first} to {last}): it has seen what "
            "followed them, so the score would be better than any real forecast. A "
            "cross-validation splitter that is not in time order (cross_val_score(model, "
            "frame, cv=3) or GridSearchCV(..., cv=3) use KFold) trains on rows after the test "
            f"rows: pass cv=TemporalSplit({self.time_col!r}, n_splits=3, "
            f"test_size={self.horizon}"
            + ("" if self.id_col is None else f", id_col={self.id_col!r}")
            + "), which trains each fold on the past of its test "
            "steps only; or score on a frame that ends at or after the fitted data."
        )


def _through_others(counts: pl.DataFrame, time_col: str) -> str:
    """The note of ``score``'s messages on the series (rows of ``counts``: id, ..., seen,
    cross) whose held-out steps are in sample only through the other series: after their
    own last fitted time (or unseen in fit), at or before the model's last training time of
    a date panel; "" when there are none."""
    through = counts.filter(pl.col("cross"))
    if not through.height:
        return ""
    return (
        f" For {through.height} of them (e.g. {through['id'].head(5).to_list()}) some of those "
        f"steps are after the series' own last fitted time (or it was not seen in fit) but at "
        f"or before {time_col}={through['seen'][0]}, the model's last training time: the "
        "series share one calendar, and a global model fitted on the other series' rows up "
        "to then has learnt that period."
    )


def _rolling_inputs(
    inputs: pl.DataFrame,
    from_end: pl.Series,
    held: pl.Series,
    horizon: int,
    in_sample: pl.Series | None,
    id_name: str,
    keys: list[str],
) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """``(inputs, origins)`` of a score whose series hold out more than ``horizon`` steps
    (``held``, per row, with ``from_end`` its position from its series' end): the rows of the
    series scored (not those of ``in_sample``) and their origins, the steps ``horizon``,
    ``2 * horizon``, ... before each series' end, over all its held-out steps (the
    ``keys`` of those rows); None when every series holds out ``horizon`` steps."""
    if not bool((held > horizon).any()):
        return None
    back = (from_end >= horizon) & (from_end % horizon == 0) & (from_end < held + horizon)
    if in_sample is not None:
        keep = ~inputs[id_name].is_in(in_sample.implode())
        inputs, back = inputs.filter(keep), back.filter(keep)
    return inputs, inputs.filter(back).select(keys)


def _unfilled(
    data: pl.DataFrame, names: list[str], interpolated: np.ndarray | None
) -> pl.DataFrame:
    """``data`` with the values ``missing="interpolate"`` filled (``interpolated``: the cells
    of the value columns ``names``) null again, for a frame cut before some rows to be filled
    as ``predict`` fills it: from its own rows."""
    if interpolated is None:
        return data
    return data.with_columns(
        pl.when(pl.Series(interpolated[:, j])).then(None).otherwise(pl.col(name)).alias(name)
        for j, name in enumerate(names)
    )

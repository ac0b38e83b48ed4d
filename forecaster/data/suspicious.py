"""Data that validates but would give forecasts a user does not expect, each named in a
``ForecasterWarning`` by :func:`~forecaster.data.validate.validate_frame`: series whose last
rows hold no target value (or not every one of several, or lack a covariate), which a
``missing`` policy fills (:func:`warn_trailing_missing`), and forecast origins at such rows
(:func:`warn_missing_ends`). The warnings of values the networks cannot learn from as given
(flat in float32, flat covariates, unscaled targets) are
:mod:`~forecaster.data.flat_values`', importable here as before."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import polars as pl

from forecaster.data.flat_values import (  # importable here as before
    FLOAT32_STEPS,
    UNSCALED_SPREAD,
    series_extremes,
    warn_flat_covariates,
    warn_flat_in_float32,
    warn_unscaled_targets,
)
from forecaster.data.frames import SERIES_ID, counted, format_list
from forecaster.exceptions import ForecasterWarning, warn_at_caller

__all__ = [
    "EVERY_TARGET",
    "EVERY_VALUE",
    "FLOAT32_STEPS",
    "MADE_UP_ENDS",
    "MADE_UP_ORIGINS",
    "UNSCALED_SPREAD",
    "missing_ends",
    "series_extremes",
    "warn_flat_covariates",
    "warn_flat_in_float32",
    "warn_missing_ends",
    "warn_trailing_missing",
    "warn_unscaled_targets",
]


def warn_trailing_missing(
    data: pl.DataFrame,
    targets: list[str],
    id_name: str,
    time_col: str,
    missing: str,
    ends: str = "frame",
    covariates: Sequence[str] = (),
) -> None:
    """Warn about series whose last row holds no target value: ``missing`` fills it, so what
    starts from the end of these data starts after made-up values; of several targets, about
    series whose last row holds some but not others; and about those whose last row lacks
    some of the ``covariates`` (past and future). :func:`warn_missing_ends` of each series'
    last row, which is ``ends`` (see there); with ``"origins"`` nothing is said here: no
    forecast starts at the end, and the origins are checked as such."""
    if ends == "origins":
        return
    last = missing_ends(data, targets, id_name, time_col, covariates)
    warn_missing_ends(last, targets, id_name, time_col, missing, at=ends, covariates=covariates)


def missing_ends(
    data: pl.DataFrame,
    targets: list[str],
    id_name: str,
    time_col: str,
    covariates: Sequence[str] = (),
) -> pl.DataFrame:
    """The ends of the series of ``data`` (sorted by series and time; a value null where it
    is not observed), as :func:`warn_missing_ends` reads them: per series the time of its last
    row, each target's (and covariate's) last time observed (null: never), :data:`EVERY_TARGET`
    and, with ``covariates``, :data:`EVERY_VALUE`."""
    values = [*targets, *covariates]
    every = pl.all_horizontal(pl.col(t).is_not_null() for t in targets)
    every_value = pl.all_horizontal(pl.col(c).is_not_null() for c in values)
    return data.group_by(id_name, maintain_order=True).agg(
        pl.col(time_col).last(),
        *(pl.col(time_col).filter(pl.col(c).is_not_null()).last().alias(c) for c in values),
        pl.col(time_col).filter(every).last().alias(EVERY_TARGET),
        *([pl.col(time_col).filter(every_value).last().alias(EVERY_VALUE)] if covariates else []),
    )


EVERY_TARGET = "__every_target_observed__"
"""The column of :func:`warn_missing_ends`' ``ends`` holding the last time at or before each
row at which every target is observed (null: there is none): the cutoff its warnings name.
Of several targets, the last time one of them is observed is no such cutoff where another
one is missing then."""

EVERY_VALUE = "__every_value_observed__"
"""The column of :func:`warn_missing_ends`' ``ends`` (with ``covariates``) holding the last time
at or before each row at which every target and covariate is observed (null: there is none):
the cutoff its warning of made-up covariates names."""

_MADE_UP = {
    "frame": (
        "a forecast from these data starts after made-up values, not after the last observed one",
        "{their} forecasts start from made-up zeros",
    ),
    "training": (
        "the model trains on made-up values there, not on observed values only",
        "the model trains on those zeros as if they were data",
    ),
    "cutoff": (
        "the forecasts from the cutoff start after made-up values, not after the last observed "
        "ones",
        "{their} forecasts from the cutoff start from made-up zeros",
    ),
    "origins": (
        "the forecasts from those origins start after made-up values, not after the last "
        "observed ones",
        "the forecasts from those origins start from made-up zeros",
    ),
}
_MADE_UP["score"] = _MADE_UP["backtest"] = _MADE_UP["origins"]
"""What a ``missing`` policy's filling of the targets at the ends that :func:`warn_missing_ends`
names does, by what those ends are (its ``at``): after the last observed targets, then of
``missing="zero"`` where no target was observed at all."""

_ORIGINS = ("origins", "score", "backtest")
"""The ``at`` of :func:`warn_missing_ends` whose ends are forecast origins: a list of
cutoffs', or those ``score`` and ``backtest`` chose themselves (their warnings begin with
their name, and say what to do about origins the user did not pass)."""

_CHOSEN = {
    "score": "score forecasts each series' last horizon steps from the step before them: to "
    "score forecasts from observed values only, score a frame that ends horizon steps after "
    "a step at which {which} observed (such as {cutoff}).",
    "backtest": "The backtest scores those forecasts as the model makes them after a gap: "
    "to score forecasts from observed values only, place the folds (folds=, step=) at "
    "origins at which {which} observed (such as {cutoff}).",
}
"""What to do about the origins that :data:`_ORIGINS`' ``score`` and ``backtest`` chose
(``which``: what must be observed there; ``cutoff``: the last such time)."""


def _cutoff_remedies(which: str, cutoff: Any) -> dict[str, str]:
    """What to do, by :func:`warn_missing_ends`' ``at``, about ends where ``which`` (``"the
    targets are"``, ``"every target is"``) not observed, for the ``at`` whose remedy is a
    cutoff at which they are: ``"cutoff"``, ``"origins"`` and :data:`_CHOSEN`'s."""
    return {
        "cutoff": f"Pass a cutoff at which {which} observed (e.g. {cutoff}).",
        "origins": f"Pass cutoffs at which {which} observed (e.g. {cutoff}).",
        **{by: text.format(which=which, cutoff=cutoff) for by, text in _CHOSEN.items()},
    }


def warn_missing_ends(
    ends: pl.DataFrame,
    targets: list[str],
    id_name: str,
    time_col: str,
    missing: str,
    *,
    at: str = "frame",
    covariates: Sequence[str] = (),
) -> None:
    """Warn about the histories of ``ends`` whose last row lacks target values: of several
    targets, those whose last row holds some but not others (the forecasts of those start
    after made-up values), then, of ``missing="zero"``, those without any target observed
    (filled whole: ``"ffill"`` and ``"interpolate"`` leave them out, and their own warning
    names them), then those whose last row holds none (the whole forecast starts after
    made-up values). One row per history: its series (``id_name``), the time of its last row
    (``time_col``), per target the last time at or before it that the target was observed
    (null: never), and :data:`EVERY_TARGET`. The one warning of the ends of a frame
    (:func:`warn_trailing_missing`) and of forecast origins.

    ``at`` says what those ends are, and so what the warning says the filling does
    (:data:`_MADE_UP`) and what to do: ``"frame"``, the end of a frame, which predict
    forecasts from (pass it a cutoff at which the targets are observed, or leave out the rows
    after it); ``"training"``, of ``fit``'s data (the model trains on the made-up values:
    leave out the rows after each series' last observed target); ``"cutoff"``, of the rows up
    to predict's cutoff (pass one at which they are observed); ``"origins"``, the origins of
    ``predict(frame, cutoff=[...])``, named as origins (their count, series and times: the
    frame's rows after them are no trailing rows to drop; :data:`MADE_UP_ORIGINS` matches
    them); ``"score"`` and ``"backtest"``, the origins those chose themselves (each
    series' step before its held-out ones, the folds' origins), named as origins with the
    call's name first, since the user passed no cutoff. A history without any observed
    target has no cutoff to name: leave it out, or pass its values. With ``covariates`` (the
    past and future covariates, each a column of ``ends`` as a target is, and
    :data:`EVERY_VALUE`), the histories whose last row lacks some of them are named too: the
    forecasts read made-up values of them there (a future covariate is read up to the
    origin as a past one is). Each row is named once: a row whose targets are observed by
    the covariates' warning (:func:`_warn_made_up_covariates`); a row whose targets are made
    up too by the targets' warning, which names its covariates as well where one is missing
    since before the cutoff it would name, and then names one at which every target and
    covariate is observed (:func:`_earlier_clause`)."""
    lacks = [pl.col(t).is_null() | (pl.col(t) != pl.col(time_col)) for t in targets]
    earlier = _covariates_lacking(covariates, missing)
    observed = ends.filter(~pl.any_horizontal(lacks))
    _warn_made_up_covariates(observed, earlier, id_name, time_col, missing, at)
    if len(targets) > 1:
        some = ends.filter(pl.any_horizontal(lacks) & ~pl.all_horizontal(lacks))
        _warn_lagging_targets(some, targets, (id_name, time_col), missing, at, earlier)
    late = ends.filter(pl.all_horizontal(lacks))
    last_seen = pl.max_horizontal(targets)
    if missing == "zero":
        _warn_never_observed(late.filter(last_seen.is_null()), id_name, time_col, at)
    late = late.filter(last_seen.is_not_null())
    _warn_late_targets(late, targets, (id_name, time_col), missing, at, earlier)


def _warn_late_targets(
    late: pl.DataFrame,
    targets: list[str],
    keys: tuple[str, str],
    missing: str,
    at: str,
    earlier: dict[str, pl.Expr],
) -> None:
    """Warn about the histories of ``late`` (rows of :func:`warn_missing_ends`' ``ends``, which
    are ``at``; ``keys``: its id and time columns) whose last row holds no target, one of
    which was observed before: ``missing`` fills them, so what starts there starts after
    made-up values. Covariates missing there since before the last time every target was
    (``earlier``, :func:`_covariates_lacking`) are named in the same warning
    (:func:`_earlier_clause`), with a cutoff at which every target and covariate is
    observed."""
    if late.height == 0:
        return
    id_name, time_col = keys
    late, also = _earlier_clause(late, earlier)
    last_seen = pl.max_horizontal(targets)
    key, observed = _named(late[id_name][0], id_name), late.select(last_seen).item(0, 0)
    seen = f"last observed at {observed}"
    which, every = ("every target and covariate is", EVERY_VALUE) if also else ("", EVERY_TARGET)
    cutoff = late[every][0]
    if at in (*_ORIGINS, "cutoff"):
        example = f"e.g. {_at(key, late[time_col][0])}, {seen}"
    else:
        example = f"e.g. {key}, {seen}" if key else seen
    subject = (
        f"{_origins_of(late, id_name, at)} rows"
        if at in _ORIGINS
        else f"{_series_end(late, id_name)} at the cutoff with rows"
        if at == "cutoff"
        else f"{_series_end(late, id_name)} with rows"
    )
    after = f"the last time {which} observed" if also else "its last observed target"
    remedy = {
        "frame": "To forecast from the last observed value, pass predict a cutoff at which "
        f"{which or 'the targets are'} observed (e.g. {cutoff}), or leave out the rows after it.",
        "training": f"To train on observed values only, leave out each series' rows after {after} "
        f"(e.g. {f'those of {key}' if key else 'the rows'} after {cutoff}).",
        **_cutoff_remedies(which or "the targets are", cutoff),
    }[at]
    if cutoff is None:  # no time with every target (and covariate) observed
        remedy = _never_complete(late.row(0, named=True), targets, key, at)
    warn_at_caller(
        f"{subject} whose targets are missing ({example}){also}: missing={missing!r} fills "
        f"them, so {_MADE_UP[at][0]}. {remedy}",
        ForecasterWarning,
    )


def _covariates_lacking(covariates: Sequence[str], missing: str) -> dict[str, pl.Expr]:
    """Per covariate, whether a row of :func:`warn_missing_ends`' ``ends`` lacks it since
    before the last time every target was observed (:data:`EVERY_TARGET`: the row's own time
    where its targets are observed), so that a cutoff there still reads a made-up value of
    it. A history without a time at which every value is observed counts only for
    ``missing="zero"``: ``"ffill"`` and ``"interpolate"`` leave such a series out whole
    (their own warning names it), so nothing is forecast from made-up values of it."""
    complete = pl.col(EVERY_TARGET)
    kept = pl.col(EVERY_VALUE).is_not_null() | pl.lit(missing == "zero")
    return {
        c: kept & complete.is_not_null() & (pl.col(c).is_null() | (pl.col(c) < complete))
        for c in covariates
    }


def _earlier_clause(rows: pl.DataFrame, earlier: dict[str, pl.Expr]) -> tuple[pl.DataFrame, str]:
    """``rows`` (of a warning of made-up targets) with those that lack covariates since
    before the targets' last complete time (``earlier``, :func:`_covariates_lacking`) first,
    and the clause that names those covariates in the same warning (``""``: none): one
    warning per row, naming what ``missing`` made up there."""
    lacking = pl.any_horizontal(list(earlier.values())) if earlier else pl.lit(False)
    flagged = rows.filter(lacking)
    if flagged.height == 0:
        return rows, ""
    names = [c for c, lack in earlier.items() if flagged.select(lack.any()).item()]
    first = flagged.row(0, named=True)
    column = next(c for c in names if flagged.head(1).select(earlier[c]).item())
    seen = f"was last observed at {first[column]}" if first[column] is not None else "has no value"
    clause = (
        f" and whose covariates {format_list(names)} are missing since before that (its "
        f"{column!r} {seen})"
    )
    return pl.concat([flagged, rows.filter(~lacking)]), clause


def _never_complete(row: dict[str, Any], targets: list[str], key: str, at: str) -> str:
    """What to do about the history of ``row`` (of :func:`warn_missing_ends`' ``ends``)
    without a time at which every target (:func:`_never_all_observed`), or every target and
    covariate (:data:`EVERY_VALUE` null), is observed: no cutoff to name."""
    if row[EVERY_TARGET] is None:
        return _never_all_observed(row, targets, key, at)
    return (
        f"No time of {key or 'the series'} has every target and covariate observed: pass "
        "the missing values, or leave the series out."
    )


def _warn_made_up_covariates(
    ends: pl.DataFrame,
    lacks: dict[str, pl.Expr],
    id_name: str,
    time_col: str,
    missing: str,
    at: str,
) -> None:
    """Warn about the histories of ``ends`` (see :func:`warn_missing_ends`, which are ``at``;
    the rows whose targets are observed: the others are named by the targets' warnings,
    with their covariates) whose last row lacks some covariates (``lacks``, per covariate,
    from :func:`_covariates_lacking`): ``missing`` fills them, so what starts there reads
    made-up values of them (named, with the last time one was observed and the last time
    every target and covariate was: :data:`EVERY_VALUE`)."""
    if not lacks:
        return
    rows = ends.filter(pl.any_horizontal(list(lacks.values())))
    wording = _Lacking(
        what="whose covariates {names} are missing",
        which="every target and covariate is",
        cutoff=EVERY_VALUE,
        reads="the forecasts read made-up values of {names} up to their origin, not observed ones",
    )

    def never(first: dict[str, Any], key: str) -> str:
        return _never_complete(first, [], key, at)

    _warn_lacking(rows, lacks, (id_name, time_col), missing, at, wording, never)


class _Lacking(NamedTuple):
    """How :func:`_warn_lacking` words its warning: ``what`` the rows lack (a format of
    ``names``, the columns named), ``which`` values a cutoff it names has observed, the column
    of ``ends`` holding the last such time (``cutoff``), what the forecasts from those
    rows do (``reads``, a format of ``names``), and what else they lack, said after the
    example (``also``, :func:`_earlier_clause`)."""

    what: str
    which: str
    cutoff: str
    reads: str
    also: str = ""


def _warn_lacking(
    rows: pl.DataFrame,
    lacks: dict[str, pl.Expr],
    keys: tuple[str, str],
    missing: str,
    at: str,
    wording: _Lacking,
    never: Callable[[dict[str, Any], str], str],
) -> None:
    """The one warning of the histories ``rows`` (of :func:`warn_missing_ends`' ``ends``,
    which are ``at``; ``keys``: its id and time columns) whose last row lacks some of the
    columns of ``lacks`` (each column's condition), missing values that ``missing`` fills:
    those columns, the first row's history and the last time one of them was observed there,
    and a cutoff at which ``wording.which`` observed (``never``: what to do where there is none,
    from the first row and its series' name), worded by ``wording``."""
    if rows.height == 0:
        return
    id_name, time_col = keys
    named = [c for c, lack in lacks.items() if rows.select(lack.any()).item()]
    first = rows.row(0, named=True)
    column = next(c for c in named if rows.head(1).select(lacks[c]).item())
    seen = f"was last observed at {first[column]}" if first[column] is not None else "has no value"
    key, names, cutoff = _named(first[id_name], id_name), format_list(named), first[wording.cutoff]
    if at in _ORIGINS:
        subject = f"{_origins_of(rows, id_name, at)} rows"
        example = f"e.g. {_at(key, first[time_col])}, whose {column!r} {seen}"
    else:
        cut = " at the cutoff" if at == "cutoff" else ""
        subject = f"{_series_end(rows, id_name)}{cut} with rows"
        whose = f"e.g. {key}, whose " if key else ""
        example = f"{whose}{column!r} {seen}, its last row at {first[time_col]}"
    which = wording.which
    remedy = {
        "frame": f"Forecast from the last time {which} observed (predict(frame, cutoff=...), "
        f"e.g. {cutoff}), or once their values are in.",
        "training": "To train on observed values only, leave out each series' rows after the "
        f"last time {which} observed ({f'those of {key}' if key else 'the rows'} after "
        f"{cutoff}).",
        **_cutoff_remedies(which, cutoff),
    }[at]
    made_up = (
        f"the model trains on made-up values of {names} there, not on observed values only"
        if at == "training"
        else wording.reads.format(names=names)
    )
    warn_at_caller(
        f"{subject} {wording.what.format(names=names)} ({example}){wording.also}: "
        f"missing={missing!r} fills "
        f"them, so {made_up}. {remedy if cutoff is not None else never(first, key)}",
        ForecasterWarning,
    )


def _never_all_observed(row: dict[str, Any], targets: list[str], key: str, at: str) -> str:
    """What to do about the history of ``row`` (of :func:`warn_missing_ends`' ``ends``) where
    no time has every target observed (:data:`EVERY_TARGET` null): no cutoff starts a
    forecast after observed values only."""
    never = [t for t in targets if row[t] is None]
    verb = "is" if len(never) == 1 else "are"
    which = f" ({format_list(never)} {verb} never observed there)" if never else ""
    upto = " up to that origin" if at in _ORIGINS else " up to the cutoff" if at == "cutoff" else ""
    avoid = (
        "leaving out its last rows does not avoid made-up values"
        if at == "training"
        else "no cutoff starts a forecast after observed values only"
    )
    return (
        f"No time of {key or 'the series'}{upto} has every target observed{which}, so {avoid}: "
        "pass the missing values, or leave the series out."
    )


def _series_end(rows: pl.DataFrame, id_name: str) -> str:
    """``"2 series end"``: the subject of a warning about the series of ``rows`` (``"1 series
    ends"``)."""
    return counted(rows[id_name].n_unique(), "series ends", "series end")


def _warn_never_observed(never: pl.DataFrame, id_name: str, time_col: str, at: str) -> None:
    """Warn about the histories of ``never`` (rows of :func:`warn_missing_ends`' ``ends``)
    without any target observed, which ``missing="zero"`` fills whole: there is no observed
    target to forecast from, so the remedy is to leave them out or to pass their values."""
    if never.height == 0:
        return
    key, n = _named(never[id_name][0], id_name), never[id_name].n_unique()
    them, their = ("it", "its") if n == 1 else ("them", "their")
    example = f" (e.g. {key})" if key else ""
    where = {"frame": "", "training": " of the training data", "cutoff": " up to the cutoff"}
    subject = (
        f"{_origins_of(never, id_name, at)} rows before which no target is observed "
        f"(e.g. {_at(key, never[time_col][0])})"
        if at in _ORIGINS
        else f"No target is observed in {n} series{where[at]}{example}"
    )
    remedy = {
        "origins": "Pass cutoffs at which the targets are observed, or leave those series out.",
        "cutoff": f"Leave {them} out, or pass a later cutoff if {their} targets are observed "
        "after this one.",
    }.get(at, f"Leave {them} out, or pass {their} target values.")
    warn_at_caller(
        f"{subject}: missing='zero' fills every target there with 0, so "
        f"{_MADE_UP[at][1].format(their=their)}. "
        f"{remedy}",
        ForecasterWarning,
    )


MADE_UP_ORIGINS = r"^\d+ forecast origins? of \d+ series lies? at rows "
"""What the warnings of :func:`warn_missing_ends` about forecast origins (``at="origins"``)
begin with (a regular expression): what a call forecasting from origins it chose itself (a
backtest's folds, a tuning trial's validation origins) silences, its scores being those of
the ``missing=`` policy as the model is used with it."""


MADE_UP_ENDS = r"^\d+ series ends? with rows "
"""What the warnings of :func:`warn_missing_ends` about the end of a frame (``at="frame"``)
begin with (a regular expression): what ``score`` silences in its forecast of the steps
before the held-out ones, whose made-up ends it names as its origins itself."""


def _named(key: Any, id_name: str) -> str:
    """A series named in a warning (``"'x'"``); nothing for the one series of a frame
    without ids (its internal id, 0, means nothing to the user)."""
    return "" if id_name == SERIES_ID else repr(key)


def _at(key: str, time: Any) -> str:
    """An origin named in a warning: its series (:func:`_named`) at its ``time``."""
    return f"{key} at {time}" if key else f"at {time}"


def _origins_of(rows: pl.DataFrame, id_name: str, at: str = "origins") -> str:
    """``"3 forecast origins of 2 series lie at"``: the start of a warning about the forecast
    origins of ``rows`` (one per origin), matched by :data:`MADE_UP_ORIGINS`; ``"score: 3
    forecast ..."`` for origins a call (``at``: ``score``, ``backtest``) chose itself."""
    n, series = rows.height, rows[id_name].n_unique()
    verb = "origins of {} series lie" if n > 1 else "origin of {} series lies"
    return f"{'' if at == 'origins' else f'{at}: '}{n} forecast {verb.format(series)} at"


def _warn_lagging_targets(
    some: pl.DataFrame,
    targets: list[str],
    keys: tuple[str, str],
    missing: str,
    at: str,
    earlier: dict[str, pl.Expr],
) -> None:
    """Warn about the histories of ``some`` (rows of :func:`warn_missing_ends`' ``ends``, which
    are ``at``; ``keys``: its id and time columns) whose last row holds some of the
    ``targets`` but not others: ``missing`` fills the others, so what starts there starts
    after made-up values. Covariates missing there since before the last time every target
    was (``earlier``) are named in the same warning (:func:`_earlier_clause`), with a cutoff
    at which every target and covariate is observed."""
    lacks = {t: pl.col(t).is_null() | (pl.col(t) != pl.col(keys[1])) for t in targets}
    some, also = _earlier_clause(some, earlier)
    wording = _Lacking(
        what="that hold some targets but not {names}",
        which="every target and covariate is" if also else "every target is",
        cutoff=EVERY_VALUE if also else EVERY_TARGET,
        reads="the forecasts of {names} start after made-up values, not after their last "
        "observed ones",
        also=also,
    )

    def never(first: dict[str, Any], key: str) -> str:
        return _never_complete(first, targets, key, at)

    _warn_lacking(some, lacks, keys, missing, at, wording, never)

"""The series of the source a run uses no row of, each with why it is left out.

Series a run uses no row of
    Every series of the source is forecast or named as left out with its reason: a series with no
    target value (:func:`~forecaster.jobs.schedule.observed_rows`; with several targets, also one
    with no value of one of them: :func:`~forecaster.jobs.schedule.without_empty_targets`) or no log
    return (a single price), one whose first row is after the as-of (a ticker listed later, a
    backfill of an as-of before it) and one whose data end before the ``history_days`` window are
    each named in a ``ForecasterWarning`` and in a run's ``dropped_series``
    (:func:`left_out_series`; but a stale series the stale policy excludes, in ``excluded_series``),
    with its reason in ``dropped_reasons`` (id -> a :data:`~forecaster.jobs.schedule.DropReason`
    code).
"""

from __future__ import annotations

import polars as pl

from forecaster.data.frames import counted
from forecaster.exceptions import ForecasterWarning, warn_at_caller
from forecaster.jobs.schedule import DropReason, has_target, id_text, iso_text
from forecaster.jobs.spec import Spec

__all__ = ["left_out_series"]


def left_out_series(
    read: pl.DataFrame, source: pl.DataFrame, observed: pl.DataFrame, cut: pl.DataFrame,
    kept: pl.DataFrame, spec: Spec, as_of: str,
) -> tuple[tuple[str, DropReason], ...]:  # fmt: skip
    """The series of the source none of whose rows a run uses, each with why
    (:data:`~forecaster.jobs.schedule.DropReason`): ``(id as text, code)`` pairs, in the order of
    the steps that lose them.

    ``read`` is the source as read, ``source`` the same with its features: a series of ``read``
    absent from it has no log return (:func:`forecaster.jobs.returns.with_log_returns` names it),
    one absent from ``observed`` only no target value
    (:func:`~forecaster.jobs.schedule.observed_rows` names it), both in the order of ``read``; then
    the series of ``observed`` with no row in ``cut``, the rows up to the as-of (labelled ``as_of``:
    their first row is after it, or with log returns their only price up to it:
    :func:`_late_series`), and those of ``cut`` with no row in ``kept``, the rows of the
    :func:`~forecaster.jobs.schedule.history_window` (their data end before it), both named in a
    ``ForecasterWarning`` here. A single series (no id column) is never left out: the data reach the
    as-of and no window ends before it."""
    id_col = spec.series.id
    if id_col is None:
        return ()
    no_return = set(_absent(read, source, spec, first=True)[id_col].to_list())
    empty = _absent(read, observed, spec, first=True)[id_col].to_list()
    late = _late_series(read, observed, cut, spec, as_of)
    early = _absent(cut, kept, spec, first=False).sort("time", maintain_order=True)  # longest
    _warn_early(early, spec, as_of)
    reasons: list[tuple[str, DropReason]] = [
        (key, "no_log_return" if key in no_return else "no_target") for key in empty
    ]
    reasons += [(key, "after_as_of") for key in late[id_col].to_list()]
    reasons += [(key, "before_window") for key in early[id_col].to_list()]
    return tuple(reasons)


def _warn_early(early: pl.DataFrame, spec: Spec, as_of: str) -> None:
    """Name the series whose data (``early``: id, last time) end before the
    ``features.history_days`` window before the as-of ``as_of``."""
    if early.height:
        days = spec.features.history_days
        warn_at_caller(
            f"features.history_days = {days} keeps the {days} days before the as-of {as_of}: "
            f"{counted(early.height, 'series ends', 'series end')} before them, so none of "
            f"{'its' if early.height == 1 else 'their'} rows is used and "
            f"{'it is' if early.height == 1 else 'they are'} neither fitted nor forecast: "
            f"{_ids_and_times(early, 'last')}. Raise history_days to use "
            f"{'it' if early.height == 1 else 'them'}, or drop "
            f"{'it' if early.height == 1 else 'them'} from the source.",
            ForecasterWarning,
        )


def _late_series(
    source: pl.DataFrame, observed: pl.DataFrame, cut: pl.DataFrame, spec: Spec, as_of: str
) -> pl.DataFrame:
    """The series of ``observed`` with no row in ``cut`` (the rows up to the as-of, labelled
    ``as_of``) and the time of their first row in ``source`` (as read: with log returns a
    series' first price, whose row has no return and is not in ``observed``), named in a
    ``ForecasterWarning``: their first row is after the as-of or, with log returns, their
    one price up to it gives no return."""
    late = _absent(observed, cut, spec, first=True)
    if late.height == 0:
        return late
    id_col = str(spec.series.id)
    late = _absent(source.filter(has_target(source, spec)), cut, spec, first=True).join(
        late.select(id_col), on=id_col, how="semi", nulls_equal=True, maintain_order="left"
    )
    why = f"no row at or before the as-of {as_of}: their first rows are after it"
    if spec.features.log_returns:
        why = (
            f"no log return of {spec.features.log_returns} at or before the as-of {as_of} (a "
            "log return needs two observed prices up to it)"
        )
    warn_at_caller(
        f"{late.height} series have {why}, so they are neither fitted nor forecast: "
        f"{_ids_and_times(late, 'first')}. Pass a later --as-of to use them.",
        ForecasterWarning,
    )
    return late


def _absent(frame: pl.DataFrame, kept: pl.DataFrame, spec: Spec, first: bool) -> pl.DataFrame:
    """The series of ``frame`` with no row in ``kept`` (a subset of its rows), in the order of
    ``frame``: their id as text (:func:`~forecaster.jobs.schedule.id_text`) and the ``time`` of
    their ``first`` row (else of their last)."""
    id_col, time_col = str(spec.series.id), spec.series.time
    if kept.height == frame.height:
        return frame.select(id_text(id_col), pl.col(time_col).alias("time")).clear()
    time = pl.col(time_col).min() if first else pl.col(time_col).max()
    ids = frame.group_by(id_text(id_col), maintain_order=True).agg(time.alias("time"))
    used = kept.select(id_text(id_col)).unique()
    return ids.join(used, on=id_col, how="anti", nulls_equal=True, maintain_order="left")


def _ids_and_times(series: pl.DataFrame, which: str) -> str:
    """The first five rows of ``series`` (id, time) as ``a (first 2024-03-02)``, with how many
    more there are."""
    shown = ", ".join(f"{key} ({which} {iso_text(t)})" for key, t in series.head(5).iter_rows())
    return shown + (f" and {series.height - 5} more" if series.height > 5 else "")

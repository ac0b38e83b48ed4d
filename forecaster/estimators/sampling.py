"""How a fit samples its training data: the hold-out split, the data digest that checkpoints
compare, and each process's share of the windows and batches under torchrun."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import polars as pl
import torch

from forecaster._hashing import digest_arrays
from forecaster.data.checks import no_training_window
from forecaster.data.frames import format_list
from forecaster.data.frequency import MONTHS_PER_UNIT
from forecaster.data.panel import Panel
from forecaster.data.steps import anchor_days, ends_on_one_grid, steps_behind
from forecaster.data.windows import Windows, make_windows
from forecaster.evaluation.origins import uses_calendar
from forecaster.exceptions import DataValidationError, ForecasterWarning, warn_at_caller
from forecaster.training import distributed

__all__ = [
    "check_validated",
    "check_validation_size",
    "epoch_seed",
    "fit_min_length",
    "holdout_split",
    "holds_out_one_time",
    "kept_series",
    "panel_digest",
    "rank_batch_size",
    "rank_batches",
    "rank_share",
    "rows_before_holdout",
    "steps_per_epoch",
    "training_windows",
    "validation_counts",
    "validation_holdout",
    "validation_origins",
    "validation_sample",
    "validation_steps",
    "validation_windows",
    "window_sources",
]


def panel_digest(panel: Panel) -> str:
    """A digest of what a fit trains on: values, series boundaries, times and keys."""
    keys = "\x1e".join(map(repr, panel.keys.rows()))
    return digest_arrays(
        panel.values, panel.offsets, panel.time.to_physical().to_numpy(), keys, repr(panel.columns)
    )


def rank_batch_size(batch_size: int) -> int:
    """Windows per batch in this process: ``batch_size`` split over the torchrun ranks, so that
    one step of all ranks together sees ``batch_size`` windows."""
    world = distributed.world_size()
    if world > 1 and batch_size % world:
        warn_at_caller(
            f"batch_size={batch_size} is not a multiple of the {world} processes: each takes "
            f"batches of {max(batch_size // world, 1)}. Use a multiple of {world} for the same "
            "global batch as one process.",
            ForecasterWarning,
        )
    return max(batch_size // world, 1)


def rank_share(windows: Windows) -> Windows:
    """This process's share of ``windows`` under torchrun (every ``world_size``-th window);
    all of them in a single process."""
    if distributed.world_size() == 1:
        return windows
    return windows.with_index(
        windows.index[distributed.shard(np.arange(len(windows)), equal=False)]
    )


def rank_batches(
    windows: Windows, batch_size: int, *, seed: int, device: torch.device, scaling: Any
) -> Iterator[Any]:
    """An epoch's batches. In one process: all windows in an order drawn from ``seed``. Under
    torchrun: every rank draws the same permutation and takes every ``world_size``-th window of
    it (equal counts), in batches of ``batch_size // world_size``, so that the ranks' batches
    of one step together are the single-process batch of that step."""
    if distributed.world_size() == 1:
        return windows.batches(batch_size, seed=seed, device=device, scaling=scaling)
    generator = torch.Generator().manual_seed(int(seed))
    order = torch.randperm(len(windows), generator=generator, dtype=torch.int32).numpy()
    mine = windows.with_index(windows.index[distributed.shard(order)])
    return mine.batches(rank_batch_size(batch_size), shuffle=False, device=device, scaling=scaling)


def epoch_seed(member_seed: int, epoch: int, member: int) -> int:
    """The seed of the batch order of ``epoch`` for ensemble member ``member``, seeded
    ``member_seed`` (``seed + member``). The first member (a single network) takes
    ``member_seed + epoch``; the others draw theirs from the pair (NumPy's ``SeedSequence``),
    so that no two members share an order (``member_seed + epoch`` for every member gave
    member ``k``'s epoch ``e`` the order of member ``k + 1``'s epoch ``e - 1``).

    Examples
    --------
    >>> epoch_seed(5, 3, member=0)
    8
    >>> epoch_seed(6, 2, member=1) == epoch_seed(5, 3, member=0)
    False
    """
    if member == 0:
        return int(member_seed) + int(epoch)
    return int(np.random.SeedSequence([int(member_seed), int(epoch)]).generate_state(1)[0])


def steps_per_epoch(n_windows: int, batch_size: int) -> int:
    """Optimiser steps per epoch (per process under torchrun)."""
    world = distributed.world_size()
    return math.ceil((n_windows // world if world > 1 else n_windows) / rank_batch_size(batch_size))


def holdout_split(windows: Windows, holdout: np.ndarray) -> tuple[Windows, Windows]:
    """Per series: training windows end before the last ``holdout`` rows; validation windows
    have every target inside them."""
    panel = windows.panel
    series = windows.index["series"].to_numpy()
    start = windows.index["start"].to_numpy()
    # Per series, the last start of a training window and the first start of a validation
    # window, as global rows in the index's dtype: one gather and one mask per window, no
    # int64 temporaries of the window count.
    end = panel.offsets[1:] - holdout
    last_train = (end - windows.window_length).astype(start.dtype)
    first_val = np.where(holdout > 0, end - windows.lookback, panel.offsets[-1]).astype(start.dtype)
    train = windows.filter(start <= last_train[series])
    val = windows.filter(start >= first_val[series])
    return train, val


def rows_before_holdout(panel: Panel, holdout: np.ndarray) -> np.ndarray:
    """The mask of each series' rows before its last ``holdout`` rows (a fit's training rows)."""
    keep = np.clip(panel.lengths - holdout, 0, panel.lengths)  # leading rows of each series
    runs = np.stack([keep, panel.lengths - keep], axis=1).ravel()
    return np.repeat(np.tile(np.array([True, False]), panel.n_series), runs)  # 1 byte per row


def validation_origins(
    panel: Panel, holdout: np.ndarray, lookback: int, horizon: int
) -> np.ndarray:
    """The global rows of ``panel`` that end the inputs of a fit's validation windows (each
    origin whose ``horizon`` targets lie in the last ``holdout`` rows of its series), as
    :func:`holdout_split` keeps them before any stride: per series that a fit keeps (with
    ``lookback + horizon`` rows before its hold-out, :func:`validation_counts`), from the last
    row before its hold-out to the row ``horizon`` before its end; series by series, in time
    order.

    Examples
    --------
    >>> import polars as pl
    >>> frame = pl.DataFrame({"id": ["a"] * 8 + ["b"] * 6 + ["c"] * 3,
    ...                       "t": [*range(8), *range(6), *range(3)], "y": [0.0] * 17})
    >>> panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    >>> validation_origins(panel, np.array([3, 3, 3]), lookback=2, horizon=2).tolist()
    [4, 5]
    """
    lengths = panel.lengths
    first = np.maximum(lengths - holdout - 1, lookback - 1)
    counts = validation_counts(lengths, holdout, lookback, horizon)
    starts = np.repeat(panel.offsets[:-1] + first - np.cumsum(counts) + counts, counts)
    return (starts + np.arange(int(counts.sum()))).astype(np.int64)


def validation_counts(
    lengths: np.ndarray, holdout: np.ndarray, lookback: int, horizon: int
) -> np.ndarray:
    """The validation windows of a fit in each series of ``lengths`` (those of
    :func:`validation_origins`): one per origin from the last row before the ``holdout`` to
    the row ``horizon`` before the series' end; none without a hold-out, and none in a series
    with fewer than ``lookback + horizon`` rows before its hold-out, which has no training
    window, so that a fit leaves it out (:func:`fit_min_length`).

    Examples
    --------
    >>> validation_counts(np.array([8, 6, 3]), np.array([3, 3, 3]), 3, 2).tolist()
    [2, 0, 0]
    >>> validation_counts(np.array([8, 6, 3]), np.array([3, 3, 3]), 2, 1).tolist()
    [3, 3, 0]
    """
    first = np.maximum(lengths - holdout - 1, lookback - 1)
    last = lengths - 1 - horizon
    fitted = lengths - holdout >= lookback + horizon  # the others are left out of the fit
    return np.where((holdout > 0) & fitted, np.clip(last - first + 1, 0, None), 0)


def validation_windows(panel: Panel, holdout: np.ndarray, lookback: int, horizon: int) -> Windows:
    """Every validation window of a fit (those of :func:`validation_origins`), whatever the
    ``stride`` of its training windows: the stride thins the training windows only, so that
    fits of different strides are validated (early stopping, ``val_loss_``) on the same
    windows. The same index as :func:`holdout_split` keeps of stride-1 windows."""
    origins = validation_origins(panel, holdout, lookback, horizon)
    row_dtype = np.int32 if panel.offsets[-1] < 2**31 else np.int64
    starts = (origins - (lookback - 1)).astype(row_dtype)
    series = (np.searchsorted(panel.offsets, starts, side="right") - 1).astype(np.int32)
    index = pl.DataFrame({"series": series, "start": starts}, nan_to_null=False)
    cutoff = panel.time.gather(origins).alias("cutoff")
    return Windows(panel, index.with_columns(cutoff), lookback, horizon, 1)


def window_sources(
    train_windows: Windows,
    val_windows: Windows,
    *,
    batch_size: int,
    per_epoch: int | None,
    device: torch.device,
    scaling: Any,
) -> Callable[[int, int], tuple[Any, Any]]:
    """``sources(member_seed, member)``: the ``(train_source, val_source)`` of an ensemble member,
    ``source(epoch)`` yielding ``(x, future, y)`` batches. Each epoch trains on ``per_epoch``
    windows drawn from ``member_seed`` and the epoch (all when None or fewer); validation
    (None without validation windows) runs this process's share in batches of
    ``4 * batch_size``."""
    val_rank = rank_share(val_windows)  # this process's share under torchrun

    def val_source(epoch: int) -> Iterator[Any]:
        for b in val_rank.batches(4 * batch_size, shuffle=False, device=device, scaling=scaling):
            yield b.x, b.future, b.y

    def sources(member_seed: int, member: int) -> tuple[Any, Any]:
        def train_source(epoch: int) -> Iterator[Any]:
            windows_e = train_windows
            if per_epoch is not None and per_epoch < len(train_windows):
                rng = np.random.default_rng([member_seed, epoch, 1])
                rows = np.sort(rng.choice(len(train_windows), size=per_epoch, replace=False))
                windows_e = train_windows.with_index(train_windows.index[rows])
            for b in rank_batches(
                windows_e,
                batch_size,
                seed=epoch_seed(member_seed, epoch, member),
                device=device,
                scaling=scaling,
            ):
                yield b.x, b.future, b.y

        return train_source, val_source if len(val_windows) else None

    return sources


def validation_sample(windows: Windows, per_epoch: int | None, seed: int | None) -> Windows:
    """At most ``per_epoch`` of the validation ``windows`` (all when None or fewer): a fixed
    random sample drawn from ``seed``, so that every epoch is compared on the same windows.
    ``seed=None`` (a fit without ``random_state``) draws the sample of ``seed=0``: every fit of
    the same data validates on the same windows (a fresh seed per fit gave each trial of a
    tuning study its own sample, and the study ranked samples, not models)."""
    if per_epoch is None or len(windows) <= per_epoch:
        return windows
    seed = 0 if seed is None else seed
    rows = np.random.default_rng([seed, 2]).choice(len(windows), per_epoch, replace=False)
    return windows.with_index(windows.index[np.sort(rows)])


def check_validation_size(validation_size: Any, horizon: int) -> None:
    """Refuse a number of held-out steps below the horizon: it fits no validation window, so
    validation, early stopping and ``baseline="auto"`` would be off while its rows are still
    kept from training (a fraction is raised to the horizon instead; 0 means none)."""
    steps = isinstance(validation_size, numbers.Integral) and not isinstance(validation_size, bool)
    size = int(validation_size) if steps else 0
    if 0 < size < horizon:
        raise DataValidationError(
            f"validation_size={size} holds out the last {size} steps of every series, but "
            f"a validation window needs horizon={horizon} steps after its origin: none "
            "would fit, so validation, early stopping and baseline='auto' would be off "
            f"while those rows are still kept from training. Use validation_size >= "
            f"{horizon}, a fraction (held-out steps are at least the horizon), or 0 for no "
            "validation."
        )


def fit_min_length(validation_size: Any, lookback: int, horizon: int) -> int:
    """The fewest rows of a series that a fit keeps: ``lookback + horizon`` rows (one
    training window) before the hold-out of a checked ``validation_size``
    (:func:`validation_steps`). A series with fewer gives no training window, so a fit leaves
    it out (training, validation and ``keys_``) and ``predict`` scales it with its own
    history, as any series unseen in ``fit``. The rows before a fractional hold-out never
    decrease with the length, so the series kept are those of at least this many rows.

    Examples
    --------
    >>> fit_min_length(0, 8, 4), fit_min_length(20, 8, 4), fit_min_length(0.1, 8, 4)
    (12, 32, 16)
    >>> fit_min_length(0.5, 8, 4)
    24
    """
    window = int(lookback) + int(horizon)
    if validation_size == 0:
        return window
    if isinstance(validation_size, numbers.Integral):
        return window + int(validation_size)
    # The rows before the hold-out, length - ceil(length * fraction), are at most
    # length * (1 - fraction): no length below window / (1 - fraction) has room.
    length = max(window + int(horizon), int(window / (1.0 - float(validation_size))) - 1)
    while length - int(validation_steps(validation_size, np.array([length]), horizon)[0]) < window:
        length += 1
    return length


def validation_steps(validation_size: Any, lengths: np.ndarray, horizon: int) -> np.ndarray:
    """The validation hold-out of every series (its last steps), from a checked
    ``validation_size``: a number of steps, or a fraction of each series' length (at least one
    ``horizon``)."""
    if validation_size == 0:
        return np.zeros_like(lengths)
    if isinstance(validation_size, numbers.Integral):
        return np.full_like(lengths, int(validation_size))
    fraction = np.ceil(lengths * float(validation_size)).astype(np.int64)
    return np.maximum(fraction, horizon)


def holds_out_one_time(panel: Panel) -> bool:
    """Whether a fit of ``panel`` holds out one time for all its series
    (:func:`validation_holdout`): for a date or datetime time column, by the rule that places
    a backtest's calendar folds (:func:`~forecaster.evaluation.origins.uses_calendar`)."""
    return uses_calendar("auto", panel.time)


def validation_holdout(
    validation_size: Any,
    panel: Panel,
    horizon: int,
    *,
    span: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The rows of every series of ``panel`` that a fit holds out for validation (its last
    rows), from a checked ``validation_size``: the one rule of the hold-out, for the fit's
    windows, its scaler's and target transform's rows, ``lookback="auto"`` and ``tune``.

    - Date and datetime time columns (series share a calendar): one hold-out time ``V`` for
      the panel, ``n`` grid steps before its last time (``n`` the integer
      ``validation_size``; a fraction: of the longest series' rows, at least ``horizon``).
      Each series holds out its rows after ``V`` (none for a series that ends at or before
      ``V``: all its rows train; a series that ends fewer than ``horizon`` steps after ``V``
      holds them out without a validation window: they neither train nor validate), so no
      series trains on targets that another validates on.
      A panel whose series all end at the same time holds out ``n`` rows of each.
    - Integer steps (independent sequences): each series' own last steps
      (:func:`validation_steps`: ``n``, or the fraction of its own length).

    ``span``, ``(start, stop)`` positions within each series: the hold-out of a fit given
    only rows ``start[i]:stop[i]`` of series ``i`` (empty spans hold out nothing).

    Examples
    --------
    >>> import datetime as dt
    >>> frame = pl.DataFrame({"id": ["a"] * 10 + ["b"] * 6,
    ...     "t": pl.concat([pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 10), eager=True),
    ...                     pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 6), eager=True)]),
    ...     "y": [0.0] * 16})
    >>> panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    >>> validation_holdout(3, panel, 2).tolist(), validation_holdout(5, panel, 2).tolist()
    ([3, 0], [5, 1])
    """
    start, stop = (np.zeros_like(panel.lengths), panel.lengths) if span is None else span
    lengths = np.asarray(stop - start, dtype=np.int64)
    if validation_size == 0 or not holds_out_one_time(panel) or not lengths.any():
        return validation_steps(validation_size, lengths, horizon)
    present = np.flatnonzero(lengths > 0)
    ends, days = _span_ends(panel, start, stop, present)
    return _held_after(validation_size, panel.freq, horizon, lengths, ends, days)


def _span_ends(
    panel: Panel, start: np.ndarray, stop: np.ndarray, present: np.ndarray
) -> tuple[pl.Series, np.ndarray | None]:
    """The last time of the span ``start:stop`` of each series of ``present`` (none empty)
    and, for month, quarter and year steps, the day of the month each steps on, read from all
    rows of its span (:func:`~forecaster.data.steps.anchor_days`: a series on the 28th that
    ends on February 28 steps on the 28th, not on month-ends); None for other steps. The one
    reading of the ends of :func:`validation_holdout` and :func:`_holdout_rule`."""
    first = panel.offsets[:-1][present] + start[present]
    counts = np.asarray(stop - start, dtype=np.int64)[present]
    ends = panel.time.gather(first + counts - 1)
    if panel.freq.unit not in MONTHS_PER_UNIT:
        return ends, None
    offsets = np.concatenate([[0], np.cumsum(counts)])
    rows = np.repeat(first - offsets[:-1], counts) + np.arange(offsets[-1])
    return ends, anchor_days(panel.time.gather(rows), offsets)


def _held_after(
    validation_size: Any,
    freq: Any,
    horizon: int,
    lengths: np.ndarray,
    ends: pl.Series,
    days: np.ndarray | None,
) -> np.ndarray:
    """:func:`validation_holdout` of a date panel's spans of ``lengths`` (some not empty),
    whose non-empty ones end at ``ends``, stepping on ``days`` (:func:`_span_ends`)."""
    steps = int(validation_steps(validation_size, lengths.max(keepdims=True), horizon)[0])
    behind = np.zeros_like(lengths)
    behind[lengths > 0] = steps_behind(ends, np.arange(len(ends) + 1), freq, ends.max(), days=days)
    return np.where(lengths > 0, np.maximum(steps - behind, 0), 0)


def kept_series(
    validation_size: Any,
    panel: Panel,
    lookback: int,
    horizon: int,
    *,
    span: tuple[np.ndarray, np.ndarray] | None = None,
    on_short: Callable[[np.ndarray, np.ndarray, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The series a fit of ``panel`` with ``lookback`` keeps, and the rows each holds out: the
    one rule of the series a fit leaves out, for the fit itself
    (:meth:`~forecaster.estimators.lookback.AutoLookback.windowed_panel`), ``lookback="auto"``
    and ``tune``'s checks and scores.

    A series with fewer than ``lookback + horizon`` rows before its validation hold-out
    (:func:`validation_holdout`) has no training window and is left out. Leaving out the
    series that end last moves a date panel's hold-out time, so the hold-out is recomputed
    on the series kept, and the short ones left out again, until none is short (or none is
    left).

    Parameters
    ----------
    validation_size : int or float
        A checked ``validation_size``.
    panel : Panel
    lookback, horizon : int
    span : (numpy.ndarray, numpy.ndarray), optional
        ``(start, stop)`` positions within each series: a fit given only rows
        ``start[i]:stop[i]`` of series ``i`` (an empty span: the series is not kept), as in
        :func:`validation_holdout`. Default: every row.
    on_short : callable, optional
        ``on_short(keep, holdout, short)``, called in each round that finds short series
        (``short``, among those of ``keep``, with that round's ``holdout``) before they are
        left out: a fit names them in a warning, or refuses.

    Returns
    -------
    keep : numpy.ndarray
        One bool per series: those the fit keeps.
    holdout : numpy.ndarray
        The rows each kept series holds out (the last of its span; 0 for the others).

    Examples
    --------
    >>> import datetime as dt
    >>> frame = pl.DataFrame({"id": ["a"] * 10 + ["b"] * 5,
    ...     "t": pl.concat([pl.date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 10), eager=True),
    ...                     pl.date_range(dt.date(2024, 1, 11), dt.date(2024, 1, 15), eager=True)]),
    ...     "y": [0.0] * 15})
    >>> panel = Panel.from_frame(frame, target="y", time_col="t", id_col="id")
    >>> validation_holdout(4, panel, 2).tolist()  # b ends 5 days after a: V = January 11
    [0, 4]
    >>> [a.tolist() for a in kept_series(4, panel, 2, 2)]  # b is too short: a holds out 4
    [[True, False], [4, 0]]
    """
    start, stop = (np.zeros_like(panel.lengths), panel.lengths) if span is None else span
    lengths = stop - start
    keep = lengths > 0
    holdout = _holdout_rule(validation_size, panel, horizon, start, stop)
    while True:
        held = holdout(keep)
        short = keep & (lengths - held < lookback + horizon)
        if not short.any():
            return keep, held
        if on_short is not None:
            on_short(keep, held, short)
        keep = keep & ~short


def _holdout_rule(
    validation_size: Any, panel: Panel, horizon: int, start: np.ndarray, stop: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    """``holdout(keep)``: :func:`validation_holdout` of the spans ``start:stop`` of the series
    of ``keep`` (0 for the others), for the rounds of :func:`kept_series`. On a date panel
    whose series end on one grid of its frequency
    (:func:`~forecaster.data.steps.ends_on_one_grid`) the steps each
    series ends behind the others are counted once (one :func:`steps_behind`), so that a
    round is NumPy only: a series ``p`` steps behind the panel's last time is ``p - q`` steps
    behind a series ``q`` steps behind it. Else each round takes :func:`validation_holdout`'s
    rule on the ends read once (:func:`_span_ends`)."""
    lengths = np.asarray(stop - start, dtype=np.int64)
    present = np.flatnonzero(lengths > 0)

    def asked(keep: np.ndarray) -> np.ndarray:
        spans = (start, np.where(keep, stop, start))
        return np.where(keep, validation_holdout(validation_size, panel, horizon, span=spans), 0)

    if validation_size == 0 or not holds_out_one_time(panel) or len(present) < 2:
        return asked
    ends, days = _span_ends(panel, start, stop, present)  # read once for every round
    if not ends_on_one_grid(ends, panel.freq, days):

        def each_round(keep: np.ndarray) -> np.ndarray:
            kept = keep[present] & (lengths[present] > 0)
            if not kept.any():
                return np.zeros_like(lengths)
            spans = np.where(keep, lengths, 0)
            mine = None if days is None else days[kept]
            return _held_after(validation_size, panel.freq, horizon, spans, ends.filter(kept), mine)

        return each_round
    behind = np.zeros_like(lengths)
    behind[present] = steps_behind(
        ends, np.arange(len(present) + 1), panel.freq, ends.max(), days=days
    )

    def counted(keep: np.ndarray) -> np.ndarray:
        kept = keep & (lengths > 0)
        if not kept.any():
            return np.zeros_like(lengths)
        steps = int(validation_steps(validation_size, lengths[kept].max(keepdims=True), horizon)[0])
        last = behind[kept].min()  # the series that end last, V's reference
        return np.where(kept, np.maximum(steps - (behind - last), 0), 0)

    return counted


def training_windows(
    panel: Panel, estimator: Any, holdout: np.ndarray, lookback: int
) -> tuple[Windows, Windows]:
    """The training and validation windows of ``panel`` (the validation ones in the last
    ``holdout`` rows of each series) of ``lookback`` steps, for ``estimator``'s horizon; the
    training windows at its stride, aligned to the last row before each series' hold-out (its
    newest training window is always kept: aligned to the series' end, a stride longer than
    the hold-out dropped it, or all), the validation windows all of them
    (:func:`validation_windows`). The training windows read the panel as known at the end of
    each series' training rows (:meth:`~forecaster.data.panel.Panel.known_through`, as the
    scaler and the target transform are fitted): a run that ``missing="interpolate"`` filled
    across the start of the hold-out holds the last value before it there, not values that
    lean on the held-out observations (a copy of the values when a run does; none else)."""
    known = panel.known_through(rows_before_holdout(panel, holdout))
    horizon = int(estimator.horizon)
    train_w = make_windows(known, lookback, horizon, estimator.stride, holdout=holdout)
    val_w = validation_windows(panel, holdout, lookback, horizon)
    if len(train_w) == 0:
        raise no_training_window(estimator, lookback, panel.lengths - holdout)
    check_validated(panel, estimator, holdout, lookback)
    return train_w, val_w


def check_validated(panel: Panel, estimator: Any, holdout: np.ndarray, lookback: int) -> None:
    """Warn when some series a fit trains on have no validation window (a date panel's series
    that end at or just after its hold-out time, :func:`validation_holdout`), and refuse a
    validation hold-out that leaves every series without one (nothing to validate on, while
    the rows after the hold-out time are still kept from training)."""
    if not holdout.any():  # no validation split
        return
    horizon = int(estimator.horizon)
    fitted = panel.lengths - holdout >= lookback + horizon
    counts = validation_counts(panel.lengths, holdout, lookback, horizon)
    missing = fitted & (counts == 0)
    if not missing.any():
        return
    inside = np.flatnonzero((holdout > 0) & (holdout < panel.lengths))[:1]
    rows = panel.offsets[inside] + panel.lengths[inside] - holdout[inside] - 1
    when = "".join(f" {time}" for time in panel.time.gather(rows))  # V, when a series shows it
    ids = format_list(panel.keys[panel.id_name].filter(pl.Series(missing)).to_list(), 5)
    if not counts.any():
        raise DataValidationError(
            f"validation_size={estimator.validation_size!r} holds out the panel's last steps, "
            "one hold-out time for every series, but no series the fit trains on has a "
            f"validation window (lookback={lookback} rows up to an origin and "
            f"horizon={horizon} targets after the hold-out time{when}): {ids} end before it "
            "or too soon after it. Use a larger validation_size (more steps), cut the series "
            "to a common end, or 0 for no validation."
        )
    warn_at_caller(
        f"{int(missing.sum())} of the {int(fitted.sum())} series the fit trains on "
        f"{'has' if missing.sum() == 1 else 'have'} no validation window: "
        f"{'it ends' if missing.sum() == 1 else 'they end'} at or within horizon={horizon} "
        f"steps after the "
        f"validation hold-out time{when} (validation_size={estimator.validation_size!r}, one "
        f"hold-out time for the panel), so none validates: their rows up to that time train, "
        f"and those after it (too few for a window of horizon={horizon} targets) neither "
        f"train nor validate: {ids}. Early stopping, val_loss_ and baseline='auto' read the "
        "other series.",
        ForecasterWarning,
    )

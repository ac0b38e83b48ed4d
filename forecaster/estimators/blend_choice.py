"""How the ``baseline`` check (:mod:`~forecaster.estimators.baseline_blend`) turns the
validation errors of its candidate blends into the blend it keeps.

A candidate is ``w * network + (1 - w) * partner`` for a partner
(:mod:`~forecaster.estimators.blend_partners`) and a weight ``w`` of :data:`WEIGHTS`;
:func:`blend_errors` scores every one on the validation windows, per target. Two rules read
those scores: :func:`best_blend` keeps the single best candidate (``baseline="best"``;
:func:`choose_blend`), :func:`pool_blend` averages every candidate near the best and shrinks
that average toward the better of the naive and the seasonal naive (``baseline="auto"`` where
the validation evidence is under :data:`POOL_EVIDENCE` horizons, :func:`pools`; with more it
keeps the single best too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from forecaster.estimators.blend_partners import Partner

__all__ = [
    "FORM_MARGIN",
    "POOL_EVIDENCE",
    "POOL_MARGIN",
    "SHRINK",
    "TIE",
    "WEIGHTS",
    "Pool",
    "alone_errors",
    "best_blend",
    "blend_errors",
    "choose_blend",
    "combined",
    "pool_blend",
    "pool_margin",
    "pool_weight",
    "pooled_forecast",
    "pools",
    "validation_evidence",
]

WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)
"""The network's weights tried in the blend, the network alone first (it wins ties)."""

TIE = 1e-6
"""Scaled errors (in units of the in-sample naive error) this close are equal in the choice of
the blend: what separates them is rounding, not skill."""

FORM_MARGIN = 0.01
"""A partner on the mean season replaces the choice before it (the seasonal naive or the naive,
with or without drift) only when its blend lowers the validation error by more than this
fraction: a smaller gain is within the noise of choosing among more partners (measured on the
ETT benchmark panels: mean-season gains of 0.1-0.2 % on validation that did not hold on the
test split). The drift partners, chosen without a margin since they came, keep competing
without one (with it, the audio job's backtest refits lost their drift partner: MAE 5.954 ->
6.243)."""


POOL_MARGIN = 0.2
"""``baseline="auto"`` averages, per target, every distinct candidate blend whose validation
error is at most ``1 + POOL_MARGIN / sqrt(n)`` times the lowest, ``n`` the validation evidence
in horizons (:func:`validation_evidence`; a pool trimmed by a threshold, after Aiolfi and
Timmermann's trimmed combinations and Kourentzes, Barrow and Petropoulos' forecast pooling,
the threshold narrowing as a difference of mean errors becomes surer). Chosen in session 34
by replaying the blend choice on recorded validation and tail forecasts
(``benchmarks/bench_blend_replay.py``): the fixed margin (rule ``near0.2+shrink0.1``), designed
on sets A-D of ``benchmarks/results/accuracy_variants.md`` and scored once on two fresh,
pre-registered sets of 94 M4 Hourly / Weekly series, cut the series over 1.1x the seasonal
naive on the held-out tails from 13 to 7, but as a default it made both bundled jobs (panels
with 104 and 20 horizons of evidence) worse: hence the ``1 / sqrt(n)`` (rule
``near0.2s+shrink0.1``; its own checks in the same file)."""

POOL_EVIDENCE = 2.0
"""``baseline="auto"`` pools (:func:`pool_blend`) only where the validation evidence is under
this many horizons (:func:`validation_evidence`): one series' few validation windows, at most
``horizon`` of them (a 700-row hourly series with a 10 % hold-out, 70 steps, and
``horizon=48`` has 70 / 48 = 1.46), where a choice among blends a few per cent apart is a coin
flip. With more (two or more series with validation windows, each worth at least 1 horizon,
or a hold-out of two horizons) it keeps the single best blend (:func:`best_blend`), as
``baseline="best"`` does, bit for bit. Pooled on every fit, both bundled jobs' backtests were
worse (stocks MAE 151.7 -> 156.2, audio 5.853 -> 5.87x; evidence 104 and 20 horizons); pooled
under 10 horizons, ETTh1-M at ``horizon=336`` (8.6) was (test MSE 0.437 -> 0.442). On the 263
replayed single series of sessions 29-30, binned by their evidence, the pool's gain in the
worst cases is under 2 horizons (180 series: total log excess over 1.1x the seasonal naive
10.9 -> 6.2) and none from 2 on (83 series: 0.81 -> 0.86;
``benchmarks/results/accuracy_variants.md``, session 34). A blend that weighs the network by 1
also skips the join of the frame's own values at predict."""

SHRINK = 0.1
"""The pooled blend weighs ``n / (n + SHRINK)`` and the better of the naive and the seasonal
naive on validation the rest, ``n`` the validation evidence in horizons
(:func:`validation_evidence`, at least 1): that naive takes ``SHRINK / (n + SHRINK)``, at
most 9 % (a single validation window, ``n = 1``) and under 1 % from ``n = 10`` horizons. From
the same replay as :data:`POOL_MARGIN`."""


@dataclass(frozen=True)
class Pool:
    """The coefficients of the pooled blend of :func:`pool_blend`, per target: ``network``
    ``(T,)``, each partner's ``(T,)`` in ``partners`` (those with a coefficient above 0 for
    some target, in the order of the candidates), summing to 1 per target; ``sizes``: how many
    candidates each target's pool averaged."""

    network: np.ndarray
    partners: dict[Partner, np.ndarray]
    sizes: tuple[int, ...]


def blend_errors(
    model: np.ndarray,
    partners: Iterable[tuple[Partner, np.ndarray]],
    error: Callable[[np.ndarray], np.ndarray],
) -> dict[Partner, np.ndarray]:
    """The ``error`` ``(len(WEIGHTS), T)`` of each partner's blend with the network's
    forecasts ``model`` at each weight of :data:`WEIGHTS`, in the order of ``partners``
    (``(m, drift, level)`` and its forecasts ``(B, horizon, T)`` like ``model``, read one at a
    time: each is as large as the validation forecasts), each blend formed by
    :func:`combined`, the one arithmetic of a blend (as predict applies it)."""
    return {
        partner: np.stack(
            [
                error(combined(model, np.asarray(w), [(np.asarray(1.0 - w), forecast)]))
                for w in WEIGHTS
            ]
        )
        for partner, forecast in partners
    }


def best_blend(
    table: dict[Partner, np.ndarray],
) -> tuple[Partner, tuple[float, ...], np.ndarray]:
    """The partner of ``table`` (:func:`blend_errors`) and per target the weight of
    :data:`WEIGHTS` whose blend has the lowest error, and those errors ``(T,)``. Ties (errors
    within :data:`TIE` of the lowest) go to the larger weight, then to the partner that comes
    first; a partner on the mean season must beat the choice before it by
    :data:`FORM_MARGIN`."""
    best: tuple[Partner, tuple[float, ...], np.ndarray] | None = None
    for partner, errors in table.items():
        pick = np.argmax(errors <= errors.min(axis=0) + TIE, axis=0)  # the first: larger w
        chosen = errors[pick, np.arange(len(pick))]
        margin = FORM_MARGIN if partner[2] else 0.0  # the mean season: see FORM_MARGIN
        if best is None or chosen.sum() < best[2].sum() * (1.0 - margin) - TIE:
            best = (partner, tuple(WEIGHTS[k] for k in pick), chosen)
    if best is None:
        raise ValueError("choose_blend needs at least one partner")
    return best


def choose_blend(
    model: np.ndarray,
    partners: Iterable[tuple[Partner, np.ndarray]],
    error: Callable[[np.ndarray], np.ndarray],
) -> tuple[Partner, tuple[float, ...], np.ndarray, dict[Partner, float]]:
    """:func:`best_blend` of the blends of ``partners`` with ``model``
    (:func:`blend_errors`), and each partner's own mean error (its blend at ``w = 0``)."""
    table = blend_errors(model, partners, error)
    return (*best_blend(table), alone_errors(table))


def alone_errors(table: dict[Partner, np.ndarray]) -> dict[Partner, float]:
    """Each partner's own mean error in ``table`` (:func:`blend_errors`): its blend at
    ``w = 0``, averaged over the targets."""
    return {partner: float(errors[WEIGHTS.index(0.0)].mean()) for partner, errors in table.items()}


def validation_evidence(series: np.ndarray, origins: np.ndarray, horizon: int) -> float:
    """How much the validation windows tell, in horizons: the steps their forecasts cover
    (``series`` and ``origins``: each window's series and the row of its origin), over
    ``horizon``, summed over the series (a panel's evidence grows with its series). A series'
    ``w`` consecutive windows cover ``w + horizon - 1`` steps; windows scored from a sample of
    them (``windows_per_epoch``, :data:`~forecaster.estimators.baseline_blend.CHECK_WINDOWS`)
    cover the steps between them too (up to ``horizon`` from each): what they forecast, not
    only as many steps as consecutive windows would.

    Examples
    --------
    >>> validation_evidence(np.zeros(3, np.int64), np.array([10, 11, 12]), 4)  # 6 steps
    1.5
    >>> validation_evidence(np.zeros(3, np.int64), np.array([10, 12, 20]), 4)  # 2 + 4 + 4
    2.5
    """
    if len(series) == 0:
        return 0.0
    order = np.lexsort((origins, series))
    ids, rows = np.asarray(series)[order], np.asarray(origins, dtype=np.int64)[order]
    same = ids[1:] == ids[:-1]  # a window after another of its series
    steps = np.minimum(np.diff(rows)[same], horizon).sum() + horizon * (1 + (~same).sum())
    return float(steps / horizon)


def pool_margin(evidence: float) -> float:
    """How far above the lowest validation error a candidate may be and still join the pool,
    as a fraction: :data:`POOL_MARGIN` over the square root of the validation ``evidence`` in
    horizons (:func:`validation_evidence`; at most :data:`POOL_MARGIN`).

    Examples
    --------
    >>> pool_margin(1.0), round(pool_margin(400.0), 3)
    (0.2, 0.01)
    """
    return POOL_MARGIN / float(np.sqrt(max(evidence, 1.0)))


def pool_weight(evidence: float) -> float:
    """The share of the pooled blend that goes to the pool's average on this much validation
    ``evidence`` (horizons), ``evidence / (evidence + SHRINK)``; the better naive takes the
    rest (:data:`SHRINK`).

    Examples
    --------
    >>> round(1 - pool_weight(1.0), 4)
    0.0909
    """
    return evidence / (evidence + SHRINK)


def pools(evidence: float) -> bool:
    """Whether ``baseline="auto"`` pools on this much validation ``evidence`` (horizons):
    under :data:`POOL_EVIDENCE`.

    Examples
    --------
    >>> pools(1.5), pools(8.6), pools(104.0)
    (True, False, False)
    """
    return evidence < POOL_EVIDENCE


def pool_blend(table: dict[Partner, np.ndarray], evidence: float, main: int) -> Pool:
    """The pooled blend of ``baseline="auto"`` from ``table`` (:func:`blend_errors`), per
    target: the equal-weight average of every distinct candidate (the network alone, ``w =
    1``, counted once whatever the partner) whose error is at most ``1 + POOL_MARGIN /
    sqrt(evidence)`` times the lowest, then weighed by ``lam = evidence / (evidence +
    SHRINK)`` against the better on validation of the naive ``(1, False, False)`` and the
    seasonal naive ``(main, False, False)`` (ties: the seasonal naive), which takes ``1 -
    lam``."""
    partners = list(table)
    errors = np.stack([table[p] for p in partners])  # (P, W, T)
    weights = np.asarray(WEIGHTS)
    network = WEIGHTS.index(1.0)
    distinct = np.ones(errors.shape[:2], dtype=bool)
    distinct[1:, network] = False  # the network alone once: with the first partner
    usable = distinct[..., None] & ~np.isnan(errors)  # NaN: a partner beyond float64
    scored = np.where(usable, errors, np.inf)
    pool = scored <= scored.min(axis=(0, 1)) * (1.0 + pool_margin(evidence))
    sizes = pool.sum(axis=(0, 1))
    lam = pool_weight(evidence)
    own = lam * (pool * weights[None, :, None]).sum(axis=(0, 1)) / sizes
    shares = lam * (pool * (1.0 - weights)[None, :, None]).sum(axis=1) / sizes  # (P, T)
    alone = errors[:, WEIGHTS.index(0.0)]
    naive, seasonal = partners.index((1, False, False)), partners.index((main, False, False))
    reference = np.where(alone[seasonal] <= alone[naive], seasonal, naive)
    shares[reference, np.arange(errors.shape[2])] += 1.0 - lam
    return Pool(
        network=own,
        partners={p: shares[k] for k, p in enumerate(partners) if shares[k].any()},
        sizes=tuple(int(n) for n in sizes),
    )


def pooled_forecast(
    model: np.ndarray, partners: Iterable[tuple[Partner, np.ndarray]], pool: Pool
) -> np.ndarray:
    """The forecasts of ``pool`` from the network's ``model`` and the partners' forecasts
    (read one at a time, as :func:`blend_errors` reads them): :func:`combined` with each
    pooled partner's coefficients."""
    terms = ((pool.partners[p], forecast) for p, forecast in partners if p in pool.partners)
    return combined(model, pool.network, terms)


def combined(
    model: np.ndarray, network: np.ndarray, terms: Iterable[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """``network * model`` plus each term's coefficients ``(T,)`` times its forecasts (like
    ``model``, read one at a time): the arithmetic of a blend, that the validation check
    scores (:func:`pooled_forecast`) and that every point forecast applies
    (:func:`~forecaster.estimators.baseline_blend.blend_forecasts`). The coefficients are a
    convex combination (at least 0, summing to 1), so the blend lies between the least and the
    greatest of the forecasts it weighs above 0; the rounding of the sum may step out of that
    range by a unit in the last place, which is put back: forecasts that agree (a constant
    target's partners, 5.0) give their value, not 5.000000000000001.

    Examples
    --------
    >>> shares = [0.24242424242424246] + [0.15151515151515152] * 5
    >>> five = [(np.array([c]), np.array([5.0])) for c in shares]
    >>> float(combined(np.array([4.7]), np.array([0.0]), five)[0])  # network weight 0
    5.0
    """
    out = network * model
    low, high = _weighed(network, model, None)
    for coefficients, forecast in terms:
        out = out + coefficients * forecast
        low, high = _weighed(coefficients, forecast, (low, high))
    return np.minimum(np.maximum(out, low), high)


def _weighed(
    coefficients: np.ndarray, forecast: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """The least and the greatest forecasts weighed above 0 so far, with ``forecast`` (its
    ``coefficients`` per target): ``bounds`` widened (None: the first term)."""
    weighed = coefficients > 0
    low = np.where(weighed, forecast, np.inf)
    high = np.where(weighed, forecast, -np.inf)
    if bounds is None:
        return low, high
    return np.minimum(bounds[0], low), np.maximum(bounds[1], high)

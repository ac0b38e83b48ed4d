"""Never much worse than the seasonal naive: the check of a fitted model against the naive and
seasonal-naive forecasts on its validation windows, and the blend that the ``baseline``
parameter of :class:`~forecaster.estimators.forecaster.RNNForecaster` chooses there.

At the end of ``fit`` (when there is a validation split), :meth:`BaselineCheck._check_baselines`
forecasts the validation windows that the fit used for early stopping, from the same origins,
and scores the network, the naive forecast (the last value) and the seasonal naive (the last
``m`` values repeated, ``m`` from the frequency, or found in the data when the frequency
implies none: :func:`~forecaster.data.seasons.panel_seasons`) in the targets' own units,
on the frame's own float64 values as a backtest scores them
(:meth:`~forecaster.data.panel.Panel.exact_targets`): each series' mean absolute error
divided by its in-sample naive error (the MASE scale), averaged over the series and the
targets, so that no series weighs by its units. It sets ``validation_baselines_`` and
``validation_skill_`` and warns when the network is worse than either baseline.

It also scores, on those windows only, every candidate blend ``w * network + (1 - w) *
partner`` (:func:`~forecaster.estimators.blend_choice.blend_errors`): each partner
(:func:`~forecaster.estimators.blend_partners.partner_forecast`: the seasonal naive of each
period, or the last value moved along the window's mean season, each with or without the
window's trend; the drift method for ``m = 1``; never below the bound of a
``target_transform``: :func:`~forecaster.data.transforms.within_domain`) at each weight ``w``
of :data:`~forecaster.estimators.blend_choice.WEIGHTS`, per target. ``baseline="auto"`` keeps,
where the validation evidence is under
:data:`~forecaster.estimators.blend_choice.POOL_EVIDENCE` horizons
(:func:`~forecaster.estimators.blend_choice.validation_evidence`), per target the average of
every candidate within :func:`~forecaster.estimators.blend_choice.pool_margin` of the lowest
error (20 % over the square root of the evidence), shrunk toward the better of the naive and
the seasonal naive by the evidence (:func:`~forecaster.estimators.blend_choice.pool_blend`),
and with more evidence what ``"best"`` keeps; ``baseline="best"`` the single
candidate with the lowest error (ties go to the network, ``w = 1``, whose forecasts are then
unchanged bit for bit, then to the simpler partner:
:func:`~forecaster.estimators.blend_choice.best_blend`): ``baseline_``, a
:class:`BaselineBlend` of coefficients per target for the network and each partner.
:func:`blend_forecasts` applies it in the one network path of every forecast
(``ForecastInference._forecast_windows``, so ``predict``, cutoff lists, ``backtest``,
``calibrate``, ``score``, the pipelines and the MLflow pyfunc) and in a stream's forecast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from forecaster.data.frames import counted
from forecaster.data.panel import Panel
from forecaster.data.seasons import panel_seasons, seasonal_periods, shown_periods
from forecaster.data.transforms import domain_bound, inverse_targets, within_domain
from forecaster.data.windows import Windows
from forecaster.estimators.baseline_warning import baseline_warning
from forecaster.estimators.blend_choice import (
    POOL_EVIDENCE,
    Pool,
    alone_errors,
    best_blend,
    blend_errors,
    combined,
    pool_blend,
    pool_margin,
    pool_weight,
    pooled_forecast,
    pools,
    validation_evidence,
)
from forecaster.estimators.blend_partners import (
    Partner,
    known_partners,
    partner_forecast,
    partner_name,
)
from forecaster.estimators.validation_scores import naive_scales, scaled_error, series_means
from forecaster.evaluation.folds import unscored_cells
from forecaster.exceptions import (
    BaselineWarning,
    DataValidationError,
    ForecasterWarning,
    warn_at_caller,
)

__all__ = [
    "CHECK_WINDOWS",
    "BaselineBlend",
    "BaselineCheck",
    "BlendTerm",
    "blend_forecasts",
]

CHECK_WINDOWS = 65536
"""At most this many validation windows are scored (evenly spaced over them when there are
more, e.g. with ``windows_per_epoch=None`` on a large panel), bounding the check's memory."""


@dataclass(frozen=True)
class BlendTerm:
    """One partner of a blend and its coefficient per target: the seasonal naive of period
    ``m`` (``m = 1``: the naive forecast), or with ``level`` the last value moved along the
    window's mean season, moved on by each window's trend when ``drift``
    (:func:`~forecaster.estimators.blend_partners.partner_forecast`)."""

    m: int
    drift: bool
    level: bool
    coefficients: tuple[float, ...]

    @property
    def partner(self) -> Partner:
        """``(m, drift, level)``."""
        return (self.m, self.drift, self.level)

    def config(self) -> dict[str, Any]:
        """The JSON form of the term (in a saved model and in ``validation_baselines_``)."""
        return {
            "m": int(self.m),
            "drift": bool(self.drift),
            "level": bool(self.level),
            "coefficients": [float(c) for c in self.coefficients],
        }


@dataclass(frozen=True)
class BaselineBlend:
    """The blend kept on validation: for target ``j``, ``network[j]`` times the network's
    forecast plus, for each of ``terms``, its ``coefficients[j]`` times its partner's
    (the coefficients of a target sum to 1). ``baseline="best"`` keeps one term
    (:meth:`single`: the network at weight ``w``, the partner at ``1 - w``);
    ``baseline="auto"`` a pool of them (:func:`~forecaster.estimators.blend_choice.pool_blend`).
    ``m``, ``drift`` and ``level`` name the main term (the largest coefficients in all) and
    ``weights`` is ``network``, as a blend of one partner read them."""

    network: tuple[float, ...]
    terms: tuple[BlendTerm, ...]

    @classmethod
    def single(
        cls, m: int, weights: tuple[float, ...], drift: bool = False, level: bool = False
    ) -> BaselineBlend:
        """The blend ``weights[j] * network + (1 - weights[j]) * partner`` of one partner."""
        coefficients = tuple(1.0 - float(w) for w in weights)
        return cls(tuple(float(w) for w in weights), (BlendTerm(m, drift, level, coefficients),))

    @classmethod
    def pooled(cls, pool: Pool) -> BaselineBlend:
        """The blend of a :class:`~forecaster.estimators.blend_choice.Pool`."""
        terms = (
            BlendTerm(int(m), bool(drift), bool(level), tuple(float(c) for c in shares))
            for (m, drift, level), shares in pool.partners.items()
        )
        return cls(tuple(float(c) for c in pool.network), tuple(terms))

    @property
    def weights(self) -> tuple[float, ...]:
        """The network's coefficient per target (the weight ``w`` of a single blend)."""
        return self.network

    @property
    def main(self) -> BlendTerm:
        """The term with the largest coefficients in all (the first of those)."""
        return max(self.terms, key=lambda term: sum(term.coefficients))

    @property
    def m(self) -> int:
        """The period of the main term's partner (:attr:`main`)."""
        return self.main.m

    @property
    def drift(self) -> bool:
        """Whether the main term's partner moves on with the trend."""
        return self.main.drift

    @property
    def level(self) -> bool:
        """Whether the main term's partner is the last value moved along the mean season."""
        return self.main.level

    @property
    def is_identity(self) -> bool:
        """Whether the network weighs 1 for every target (its forecasts, unchanged)."""
        return all(w == 1.0 for w in self.network)

    def config(self) -> dict[str, Any]:
        """The JSON entry saved with the model."""
        return {
            "network": [float(w) for w in self.network],
            "terms": [term.config() for term in self.terms],
        }

    def describe(self) -> str:
        """The blend in words, e.g. ``"0.25 x network + 0.75 x seasonal naive (m=24)"``
        (a list per term for several targets)."""

        def amount(values: tuple[float, ...]) -> str:
            shown = ", ".join(f"{v:.3g}" for v in values)
            return shown if len(values) == 1 else f"[{shown}]"

        parts = [f"{amount(self.network)} x network"] + [
            f"{amount(t.coefficients)} x {partner_name(t.m, t.drift, t.level)}" for t in self.terms
        ]
        return " + ".join(parts)


def blend_forecasts(
    forecast: np.ndarray,
    window: np.ndarray,
    blend: BaselineBlend,
    *,
    transform: str,
    lambdas: np.ndarray | None,
    median_index: int | None = None,
    observed: np.ndarray | None = None,
) -> np.ndarray:
    """``forecast`` (targets' units: ``(B, horizon, T)``, or ``(B, horizon, T, Q)`` for a
    quantile model) blended as ``blend`` says with its partners
    (:func:`~forecaster.estimators.blend_partners.partner_forecast`), formed one at a time
    from the input windows ``window`` (``(B, lookback, T)`` on the network's side of
    ``target_transform``, inverted here with ``lambdas``; ``observed``: the same windows as
    the frame holds them, float64 in the targets' units, NaN where it holds none, read
    instead where given and within the transform's domain:
    :func:`~forecaster.estimators.origins.observed_windows`): each partner is formed in the
    targets' units, as the validation check scored it, and kept within the transform's
    domain (:func:`~forecaster.data.transforms.within_domain`). A quantile model's quantiles
    all move by what its median (``median_index``) moves (``sum_p c_p * (partner_p -
    median)``), so they keep their order and their spread, but none goes below the
    transform's bound (``within_domain``). Returns float64, as ``predict`` returns
    forecasts."""
    horizon = forecast.shape[1]
    with np.errstate(over="ignore", invalid="ignore"):  # refused below, naming the cause
        partners = (
            (
                np.asarray(term.coefficients, dtype=np.float64),
                _term_partner(term, window, horizon, transform, lambdas, observed),
            )
            for term in blend.terms
        )
        if forecast.ndim == 4:
            median = forecast[..., median_index].astype(np.float64)
            shift: np.ndarray | float = 0.0
            for k, (coefficients, season) in enumerate(partners):
                moved = coefficients * (season - median)
                shift = moved if k == 0 else shift + moved
            blended = forecast + np.asarray(shift)[..., None]
        else:
            blended = combined(forecast, np.asarray(blend.network, dtype=np.float64), partners)
        blended = within_domain(blended, transform)  # a lower quantile moved below the floor
    out = np.asarray(blended, dtype=np.float64)
    if not np.isfinite(out).all():  # a drift or a seasonal swing beyond the float64 range
        _refuse_not_finite(out, blend)
    return out


def _term_partner(
    term: BlendTerm,
    window: np.ndarray,
    horizon: int,
    transform: str,
    lambdas: np.ndarray | None,
    observed: np.ndarray | None,
) -> np.ndarray:
    """The forecasts of ``term``'s partner for :func:`blend_forecasts` (its arguments), in the
    targets' units and within the transform's domain."""
    whole = term.drift or term.level  # the trend and the mean season read the whole window
    values = np.asarray(window if whole else window[:, -term.m :], dtype=np.float64)
    values = inverse_targets(transform, values, lambdas)
    if observed is not None:  # the frame's values, but those made up or raised (not NaN)
        own = observed if whole else observed[:, -term.m :]
        bound = domain_bound(transform)
        usable = ~np.isnan(own) if bound is None else own > bound  # False for NaN too
        values = np.where(usable, own, values)
    season = partner_forecast(values, term.m, horizon, term.drift, term.level)
    return within_domain(season, transform)


def _refuse_not_finite(out: np.ndarray, blend: BaselineBlend) -> None:
    """Refuse the blended forecasts ``out`` that are not all finite, naming the cause."""
    terms = [t for t in blend.terms if any(c != 0.0 for c in t.coefficients)] or blend.terms
    causes = [
        "the trend of the input window carried over the horizon"
        if any(t.drift for t in terms)
        else "",
        "the mean season's swing added to the last value" if any(t.level for t in terms) else "",
    ]
    cause = " and ".join(c for c in causes if c) or "the partner"
    names = " and the ".join(partner_name(t.m, t.drift, t.level) for t in terms)
    raise DataValidationError(
        f"The forecast blended with the {names} "
        f"is not a finite number (e.g. {float(out[~np.isfinite(out)][0]):g}): "
        f"{cause} passes about 1.8e308. "
        "Divide the target by a constant before fitting (e.g. pl.col(target) / 1e30) and "
        "multiply the forecasts back, or fit with baseline='none'."
    )


class BaselineCheck:
    """The validation check against the baselines and the blend it chooses (a mixin of
    ``RNNForecaster``, which holds the parameters and fitted attributes it reads)."""

    baseline: str
    missing: str
    lookback_: int
    horizon: int
    _fitted_transform: Callable[[], str]
    network_: Any
    _forecast_origins: Callable[[Panel, np.ndarray, np.ndarray], np.ndarray]
    _point_of: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]

    def _blends(self) -> bool:
        """Whether ``baseline_`` changes the network's forecasts (a weight below 1)."""
        blend = self.__dict__.get("baseline_")
        return blend is not None and not blend.is_identity

    def _reads_network(self) -> bool:
        """Whether the forecasts read the network's outputs: not where ``baseline_`` weighs it
        by 0 for every target of a point model (a quantile model's quantiles move around its
        own median, whatever the weight)."""
        blend = self.__dict__.get("baseline_")
        if blend is None or any(w != 0.0 for w in blend.network):
            return True
        return getattr(self.network_, "quantiles", None) is not None

    def _partner_alone(
        self, x: torch.Tensor | np.ndarray, lambdas: np.ndarray | None, observed: np.ndarray | None
    ) -> np.ndarray:
        """The forecasts of a blend that does not read the network (:meth:`_reads_network`
        false): the partner's alone, from :meth:`_blend_baseline` reading zeros in the
        network's place (``x``, ``lambdas``, ``observed``: as it takes them). Every forecast
        path (``predict``, a stream's ``forecast``) forms them here, so none refuses a
        network output that no forecast reads."""
        nt = len(self.__dict__["baseline_"].network)
        return self._blend_baseline(np.zeros((len(x), int(self.horizon), nt)), x, lambdas, observed)

    def _blend_baseline(
        self,
        forecast: np.ndarray,
        x: torch.Tensor | np.ndarray,
        lambdas: np.ndarray | None,
        observed: np.ndarray | None = None,
    ) -> np.ndarray:
        """``forecast`` blended as ``baseline_`` says (unchanged without one or when every
        weight is 1); ``x``: the input windows ``(B, lookback, n_features)``, targets first,
        on the network's side of ``target_transform``; ``observed``: the targets' windows as
        the frame holds them (:func:`~forecaster.estimators.origins.observed_windows`; a
        partner formed from ``x``'s float32 values alone is off by their rounding, up to 512
        near 1.2e10)."""
        if not self._blends():
            return forecast
        window = x[:, :, : forecast.shape[2]]
        return blend_forecasts(
            forecast,
            window.numpy() if isinstance(window, torch.Tensor) else window,
            self.__dict__["baseline_"],
            transform=self._fitted_transform(),
            lambdas=lambdas,
            median_index=getattr(self.network_, "median_index", None),
            observed=observed,
        )

    def _check_baselines(
        self, raw: Panel, windows: Windows, fit_rows: np.ndarray, frame: Any
    ) -> None:
        """Score the fitted network, the naive and the seasonal naive on the validation
        ``windows`` of ``raw`` (the validated training panel of ``frame``; ``fit_rows``: its
        rows before the hold-out) over the actual values ``frame`` holds (not those the
        ``missing`` policy made up), with the partners and the naive scales read from its
        float64 values too (:meth:`~forecaster.data.panel.Panel.exact_targets`), and set
        ``validation_baselines_``, ``validation_skill_`` and ``baseline_`` (all None without
        validation windows, or without an observed value in them), warning when the network
        is the worse."""
        self.baseline_ = self.validation_baselines_ = self.validation_skill_ = None
        if len(windows) == 0:
            return
        exact = raw.exact_targets(frame)  # scored on the frame's values, not float32's
        made_up = unscored_cells(exact, self.missing)
        if len(windows) > CHECK_WINDOWS:
            spaced = np.linspace(0, len(windows) - 1, CHECK_WINDOWS).round().astype(np.int64)
            windows = windows.with_index(windows.index[spaced])
        lookback, horizon, nt = int(self.lookback_), int(self.horizon), raw.n_targets
        series = windows.index["series"].to_numpy().astype(np.int64)
        rows = windows.index["start"].to_numpy().astype(np.int64) + lookback - 1
        try:
            forecasts = self._forecast_origins(raw, series, rows)
        except DataValidationError as exc:  # forecasts that are not finite: predict says so too
            warn_at_caller(
                f"The baselines were not checked: the network's validation forecasts are not "
                f"finite numbers ({str(exc).split('. ')[0]}). predict will refuse "
                "them the same way.",
                ForecasterWarning,
            )
            return
        model = self._point_of(forecasts)[0].astype(np.float64)
        steps = rows[:, None] + np.arange(1, horizon + 1)
        actual = exact.values[steps]
        observed = None if made_up is None else ~made_up[steps]
        if observed is not None and not observed.any(axis=(0, 1)).all():
            warn_at_caller(
                f"The baselines were not checked and baseline={self.baseline!r} chose no "
                f"blend: the frame holds none of the actual values of a target in the "
                f"{counted(len(windows), 'validation window', 'validation windows')} "
                f"(missing={self.missing!r} made them up). "
                "Hold out steps that were observed (validation_size), or fill the gaps first.",
                ForecasterWarning,
            )
            return
        scales = naive_scales(exact, fit_rows, made_up)
        error = scaled_error(series, actual, scales, observed)
        found = panel_seasons(raw, raw.leading_ends(fit_rows))  # or detected before the hold-out
        periods = [m for m in found if m <= lookback]
        periods = shown_periods(exact, fit_rows, periods, horizon, scales)  # a week that repeats
        center = series_means(exact, exact.values)
        transform = self._fitted_transform()  # the partners as predict forms them

        def partners() -> Iterator[tuple[Partner, np.ndarray]]:  # one pass over them a call
            found = known_partners(exact, series, rows, (lookback, horizon, periods), center)
            return ((p, within_domain(forecast, transform)) for p, forecast in found)

        table = blend_errors(model, partners(), error)
        main = periods[0] if periods else 1
        alone = alone_errors(table)
        scores = {
            "model": float(error(model).mean()),
            "naive": alone[(1, False, False)],
            "seasonal_naive": alone[(main, False, False)],
        }
        evidence = validation_evidence(series, rows, horizon)
        margin = pool_margin(evidence) if self._pooled(evidence) else None  # "none": auto's
        best = best_blend(table)  # the single best: "best"'s rule, and the report's entry
        scored = (model, partners, error)
        rule, blended, sizes = self._rule_blend(best, table, scored, (evidence, margin), main)
        if self.baseline != "none":
            self.baseline_ = rule
        kept = self.baseline_ or BaselineBlend.single(main, (1.0,) * nt)  # the forecasts' own
        skill = _ratio(scores["model"], scores["seasonal_naive"])
        self.validation_skill_ = skill
        self.validation_baselines_ = {
            "m": main,
            "season": _season_source(raw, periods),
            **scores,
            "skill": skill,
            "blend_m": kept.m,
            "blend_drift": kept.drift,
            "blend_level": kept.level,
            "weights": list(kept.network),
            "blend_terms": [term.config() for term in kept.terms],
            "pool": list(sizes) if self.baseline_ else [1] * nt,
            "evidence": evidence,
            "pool_margin": None if self.baseline_ is None else margin,  # None: none pooled
            "best": _best_entry(best),
            "blended": float((blended if self.baseline_ else error(model)).mean()),
            "windows": len(windows),
            "series": int(np.unique(series).size),
        }
        if scores["model"] > min(scores["naive"], scores["seasonal_naive"]):
            rule_error = float(blended.mean())
            report = self.validation_baselines_
            self._warn_baselines(report, (rule, rule_error, margin, sizes), raw.time.dtype)

    def _rule_blend(
        self,
        best: tuple[Partner, tuple[float, ...], np.ndarray],
        table: dict[Partner, np.ndarray],
        scored: tuple[
            np.ndarray,
            Callable[[], Iterator[tuple[Partner, np.ndarray]]],
            Callable[[np.ndarray], np.ndarray],
        ],
        pooling: tuple[float, float | None],
        main: int,
    ) -> tuple[BaselineBlend, np.ndarray, tuple[int, ...]]:
        """The blend of the ``baseline`` parameter's rule (``"none"``: that of ``"auto"``,
        which its warning names) from the candidates' validation errors ``table``
        (:func:`~forecaster.estimators.blend_choice.blend_errors` of ``scored``: the
        network's validation forecasts, a new pass over the partners' at each call and the
        error), its validation error per target and how many candidates each target's pool
        averaged: ``"best"``, the single best blend ``best``
        (:func:`~forecaster.estimators.blend_choice.best_blend` of ``table``); ``"auto"``, the
        pooled blend (:func:`~forecaster.estimators.blend_choice.pool_blend`; ``pooling``: the
        validation evidence in horizons and the pool's margin, None where the rule does not
        pool; ``main``: the main seasonal period), scored on a second pass over the
        partners, where the evidence is short of
        :data:`~forecaster.estimators.blend_choice.POOL_EVIDENCE`, else the single best."""
        evidence, margin = pooling
        if margin is None:  # "best", or much evidence: the single best blend
            (m, drift, level), weights, errors = best
            return BaselineBlend.single(int(m), weights, drift, level), errors, (1,) * len(weights)
        model, partners, error = scored
        pool = pool_blend(table, evidence, main)
        pooled = error(pooled_forecast(model, partners(), pool))
        return BaselineBlend.pooled(pool), pooled, pool.sizes

    def _pooled(self, evidence: float) -> bool:
        """Whether the blend of the ``baseline`` parameter's rule is a pool on this much
        validation ``evidence`` (``"none"``: whether ``"auto"``'s would be)."""
        return self.baseline != "best" and pools(evidence)

    def _warn_baselines(
        self,
        report: dict[str, Any],
        rule: tuple[BaselineBlend, float, float | None, tuple[int, ...]],
        time_dtype: Any,
    ) -> None:
        """The warning of a network worse than a baseline on validation
        (:func:`~forecaster.estimators.baseline_warning.baseline_warning`): ``report`` (the
        ``validation_baselines_`` it sets), ``rule``: the blend the ``baseline`` parameter's
        rule keeps there (``"none"``: that of ``"auto"``, which it says it would blend), its
        scaled error, its pool's margin (None: the single best blend) and size per target (not
        the report's: ``"none"`` pools nothing), ``time_dtype``: the time column's (calendar
        features need a date or time)."""
        main, (blend, error, margin, sizes) = report["m"], rule
        pooled = (margin, report["evidence"], list(sizes)) if margin is not None else None
        described = _described(blend, error, pooled, listed=self.baseline != "none")
        advice = ["more history", "more epochs", "a smaller network (hidden_size) on short series"]
        if time_dtype.is_temporal() and not self.__dict__.get("calendar_"):
            advice.insert(0, "calendar='auto'")
        if main > 1 and int(self.lookback_) < 2 * main:
            advice.insert(0, f"a lookback of at least two seasons ({2 * main} steps)")
        text = baseline_warning(
            report,
            baseline=self.baseline,
            auto=None if blend.is_identity else described,
            advice=advice,
        )
        warn_at_caller(text, BaselineWarning)


def _described(
    blend: BaselineBlend,
    error: float,
    pooled: tuple[float, float, list[int]] | None,
    *,
    listed: bool,
) -> str:
    """How the warning of :meth:`BaselineCheck._warn_baselines` names ``blend`` (its scaled
    validation error ``error``): the single best blend (``pooled`` None) by its partner and
    weights, a pool (``pooled``: its :func:`~forecaster.estimators.blend_choice.pool_margin`,
    the validation evidence in horizons and how many blends each target's pool averaged) by
    its size, the evidence that made it pool, its share of the better naive and its main
    partner, pointing at ``baseline_.terms`` for the others where ``listed`` (not for
    ``baseline="none"``, which keeps no ``baseline_``)."""
    if pooled is None:  # the single best blend (much evidence, or "best")
        weights = ", ".join(f"{w:g}" for w in blend.weights)
        name = partner_name(blend.m, blend.drift, blend.level)
        return (
            f"the {name} at network weight {weights} (per target), chosen on these windows "
            f"(scaled error {error:.3g})"
        )
    # brief: near-copies (a backtest's refits) tell one fact
    margin, evidence, sizes = pooled
    network = ", ".join(f"{w:.3g}" for w in blend.network)
    main_term, others = blend.main, len(blend.terms) - 1
    shares = ", ".join(f"{c:.3g}" for c in main_term.coefficients)
    name = partner_name(main_term.m, main_term.drift, main_term.level)
    where = (
        "every partner in baseline_.terms"
        if listed
        else f"{others} other partner{'' if others == 1 else 's'} beside it"
    )
    count = str(sizes[0]) if len(set(sizes)) == 1 else f"[{', '.join(map(str, sizes))}]"
    pool = "the one blend" if count == "1" else f"the average of the {count} blends"
    naive = 1.0 - pool_weight(evidence)
    return (
        f"{pool} within {margin:.1%} of the best on these windows "
        f"(a pool, not the single best: the validation evidence, {evidence:.3g} horizons, is "
        f"under {POOL_EVIDENCE:g}), then {naive:.1%} moved to the better naive: "
        f"network weight {network} (per target), mainly the {name} ({shares}; {where}), "
        f"scaled error {error:.3g}"
    )


def _best_entry(best: tuple[Partner, tuple[float, ...], np.ndarray]) -> dict[str, Any]:
    """What ``baseline="best"`` keeps on the same windows (``best``:
    :func:`~forecaster.estimators.blend_choice.best_blend`'s, whatever the rule), for the
    report: its partner, its network weight per target and its scaled validation error, so
    that the two rules compare on one fit."""
    (m, drift, level), weights, errors = best
    entry = {"m": int(m), "drift": bool(drift), "level": bool(level), "weights": list(weights)}
    return {**entry, "blended": float(errors.mean())}


def _season_source(raw: Panel, periods: list[int]) -> str:
    """Where the check's seasonal periods came from: ``"frequency"``, ``"detected"`` (in the
    data, the frequency implying none) or ``"none"``."""
    if not periods:
        return "none"
    return "frequency" if seasonal_periods(raw.freq) else "detected"


def _ratio(a: float, b: float) -> float:
    """``a / b``, 1 when both are 0 and inf when only ``b`` is."""
    if b == 0:
        return 1.0 if a == 0 else float("inf")
    return a / b

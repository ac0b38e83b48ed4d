"""Replay rules of the ``baseline="auto"`` blend choice on single series without refitting.

The default blend (:mod:`forecaster.estimators.baseline_blend`) is chosen on the fit's
validation windows. A rule for that choice (a margin, a choice on the latest windows only, ...)
is judged by what it picks on many series and how the pick does on each series' held-out tail.
Fitting a network per series and rule is slow; the choice itself is not. So this script works
in two steps:

``record``
    For each series (a name of ``bench_robust.SERIES``, or ``m4_h<N>`` / ``m4_w<N>``: any M4
    Hourly / Weekly training series), fit ``RNNForecaster(target="y", time_col="time",
    horizon=H, random_state=0, baseline="best")`` on the series without its tail
    (``bench_robust.test_origins``, one torch thread), recording every blend candidate's
    forecasts of the validation windows (``blend_errors``' inputs) with their actual values
    and scales, then forecast every origin of the tail with the network alone and with each
    partner alone (``baseline_`` set to the partner at weight 0). One ``<name>.npz`` and
    ``<name>.json`` per series in ``--cache`` (default ``benchmarks/.cache/blend_replay``,
    git-ignored).
``replay``
    For each set of recorded series (``--set NAME=s1,s2,...``), the MAE over the seasonal
    naive's on the tails (geometric mean, series over 1.1, worst) of: the library's single
    choice (``baseline="best"``, the default before session 34's pooled blend; checked to
    reproduce the fitted model's own forecasts), the network alone, and a
    significance margin "sig c" (keep the choice only when it beats the better of the plain
    naive and seasonal naive by more than ``c / sqrt(n)`` of its error, ``n`` the validation
    span in horizons), and damped drift partners (``--damped PHIS/MARGIN``: each drift
    partner's trend damped at ``phi`` per step after the origin, formed from the recorded
    partners with and without drift, beside the undamped ones behind a margin or instead of
    them; :func:`damped_rule`), and session 34's rules from the forecast-combination
    literature (``--rules``, comma-separated; :func:`parse_rule`):

    - ``top<k>``: the equal-weight average of the ``k`` blends with the lowest mean
      validation error (the network alone counted once); ``top<k>p``: of the best blend of
      each of the ``k`` best partners (``top0p``: of every partner's best);
    - ``near<margin>``: of every blend within ``margin`` (a fraction) of the lowest error, a
      pool trimmed by a threshold (after Aiolfi and Timmermann's trimmed combinations and
      Kourentzes, Barrow and Petropoulos' forecast pooling);
    - ``median`` / ``trim<fraction>``: ``choose_blend``'s choice by the median / trimmed mean
      of the per-window errors instead of their mean;
    - ``shrink<k>`` / ``shrinkw<k>``: the library's choice averaged with the better of the
      naive and seasonal naive on validation, the choice weighing ``n / (n + k)``, ``n`` the
      validation span in horizons / the number of windows; ``<rule>+shrink<k>``: a rule's
      forecasts shrunk the same way (``near0.2+shrink0.1``: ``baseline="auto"`` since
      session 34, :func:`~forecaster.estimators.blend_choice.pool_blend`).

    Writes ``blend_replay.{json,md}`` to ``--out``. ``--margins ""``, ``--damped ""`` and
    ``--rules ""`` leave those rules out.

Sessions 29, 30 and 34's use of it is in ``benchmarks/results/accuracy_variants.md``. Run from
the repository root::

    .venv/bin/python benchmarks/bench_blend_replay.py record m4_h176 m4_w313 airpassengers \\
        --extra-python /tmp/robust-venv/bin/python
    .venv/bin/python benchmarks/bench_blend_replay.py replay --set hourly=m4_h176 \\
        --set other=m4_w313,airpassengers --out /tmp/replay
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_robust
from _machine import machine_info, write_result

import forecaster.estimators.baseline_blend as blend_module
from forecaster import RNNForecaster
from forecaster.data.seasons import seasonal_periods
from forecaster.data.transforms import domain_floor
from forecaster.estimators.blend_choice import WEIGHTS, choose_blend
from forecaster.estimators.blend_partners import drift_steps
from forecaster.estimators.validation_scores import scaled_error
from forecaster.evaluation.baselines import origin_forecasts

DAMPED = ["0.95/0.05", "0.95,0.98,0.99/-", "/0.05"]  # session 30's rules R1, R2, R0
RULES = ["near0.1", "near0.2", "near0.2+shrink0.1"]  # session 34's rules (parse_rule)
CACHE = bench_robust.ROOT / "benchmarks" / ".cache" / "blend_replay"
Candidate = tuple[str, float, np.ndarray, np.ndarray]  # partner, weight, val errors, test fc


class Recorder:
    """Wraps ``blend_errors`` (the one pass over the candidates) and ``scaled_error`` of the
    blend module to keep their inputs."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}
        score, scaled = blend_module.blend_errors, blend_module.scaled_error

        def scaled_error(series: Any, actual: Any, scales: Any, observed: Any = None) -> Any:
            self.seen.update(series=series, actual=actual, scales=scales, observed=observed)
            return scaled(series, actual, scales, observed)

        def blend_errors(model: Any, partners: Any, error: Any) -> Any:
            self.seen.update(model=model, partners=list(partners))
            return score(model, iter(self.seen["partners"]), error)

        blend_module.scaled_error = scaled_error
        blend_module.blend_errors = blend_errors


def record(name: str, cache: Path, data: Path, extra: str | None, recorder: Recorder) -> str:
    """Fit series ``name``, save its candidates' validation and tail forecasts; a line."""
    if name not in bench_robust.SERIES:  # any M4 Hourly / Weekly series
        bench_robust.SERIES[name] = (48 if name.startswith("m4_h") else 13, name)
    horizon = bench_robust.SERIES[name][0]
    frame, reading = bench_robust.load_series(name, data, extra)
    model = RNNForecaster(  # "best": the single choice, which ``library`` replays
        target="y",
        time_col="time",
        horizon=horizon,
        random_state=0,
        progress=False,
        baseline="best",
        **reading,
    )
    panel = model.read_frame(frame, as_fitted=False)[1]
    values, times = panel.values[:, 0].astype(np.float64), panel.time
    n_fit, origins = bench_robust.test_origins(len(values), horizon)
    recorder.seen.clear()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(frame.filter(pl.col("time") <= times[n_fit - 1]))
        seconds = time.perf_counter() - start
        cutoffs = times.gather(origins)

        def tail(blend: Any) -> np.ndarray:  # the model's tail forecasts with this blend
            variant = copy.deepcopy(model)
            variant.baseline_ = blend
            return variant.predict(frame, cutoff=cutoffs)["y"].to_numpy().reshape(-1, horizon)

        arrays = {"test_net": tail(None), "test_auto": tail(model.baseline_)}
        for (m, drift, level), _ in recorder.seen.get("partners", []):
            partner = blend_module.BaselineBlend.single(int(m), (0.0,), drift, level)
            arrays[f"test_p_{m}|{int(drift)}|{int(level)}"] = tail(partner)
    periods = [m for m in seasonal_periods(panel.freq) if m <= int(model.lookback_)]
    m = periods[0] if periods else 1
    starts = np.zeros(len(origins), dtype=np.int64)
    season = origin_forecasts(values[:, None], starts, origins, horizon, m)[..., 0]
    arrays["test_actual"] = values[origins[:, None] + np.arange(1, horizon + 1)]
    arrays["test_snaive"] = season
    if "model" in recorder.seen:  # choose_blend's inputs, one target: (windows, horizon, 1)
        seen = recorder.seen
        arrays.update(
            val_model=seen["model"],
            val_actual=seen["actual"],
            val_series=seen["series"],
            val_scales=np.asarray(seen["scales"], dtype=np.float64),
        )
        if seen["observed"] is not None:
            arrays["val_observed"] = seen["observed"]
        for (pm, drift, level), forecast in seen["partners"]:
            arrays[f"val_p_{pm}|{int(drift)}|{int(level)}"] = forecast
    np.savez_compressed(cache / f"{name}.npz", **arrays)
    meta = {"name": name, "horizon": horizon, "m": m, "rows": len(values), "fit_s": seconds}
    meta["validation"] = model.validation_baselines_
    write_result(cache / f"{name}.json", json.dumps(meta, default=str))
    ratio = _ratio(arrays["test_auto"], arrays)
    return f"{name}: default / seasonal naive {ratio:.3f}, fit {seconds:.1f} s"


def _ratio(forecast: np.ndarray, z: dict[str, np.ndarray]) -> float:
    """MAE of ``forecast`` on the tail over the seasonal naive's."""
    actual = z["test_actual"]
    return float(np.abs(forecast - actual).mean() / np.abs(z["test_snaive"] - actual).mean())


def _partner_key(partner: tuple[int, Any, bool]) -> str:
    """``m|drift|level``: drift 0 / 1, or ``d<phi>`` for a damped drift (:func:`damped`)."""
    m, drift, level = partner
    label = drift if isinstance(drift, str) else str(int(drift))
    return f"{m}|{label}|{int(level)}"


def candidates(z: dict[str, np.ndarray]) -> list[Candidate]:
    """Every (partner, weight) blend in ``choose_blend``'s order, with its scaled error per
    validation window and its tail forecasts."""
    out: list[Candidate] = []
    for key in (k[6:] for k in z if k.startswith("val_p_")):
        for w in WEIGHTS:
            blended = w * z["val_model"][..., 0] + (1 - w) * z["val_p_" + key][..., 0]
            out.append((key, w, window_errors(z, blended), tail_of(z, key, w)))
    return out


def window_errors(z: dict[str, np.ndarray], forecast: np.ndarray) -> np.ndarray:
    """The scaled mean absolute error of each validation window of ``forecast`` ``(windows,
    horizon)``, over its observed steps (one target, one series)."""
    errors = np.abs(forecast - z["val_actual"][..., 0])
    observed = z.get("val_observed")
    if observed is not None:
        kept = np.where(observed[..., 0], errors, 0.0).sum(1)
        per_window = kept / np.maximum(observed[..., 0].sum(1), 1)
    else:
        per_window = errors.mean(1)
    return per_window / float(z["val_scales"].ravel()[0])


def tail_of(z: dict[str, np.ndarray], key: str, w: float) -> np.ndarray:
    """The tail forecasts of the blend of partner ``key`` at network weight ``w``."""
    return w * z["test_net"] + (1 - w) * z["test_p_" + key]


def choose(
    z: dict[str, np.ndarray], keys: list[str], error: Callable[..., np.ndarray] | None = None
) -> tuple[str, float, float]:
    """:func:`~forecaster.estimators.baseline_blend.choose_blend` over the partners ``keys``
    (in that order) on the recorded inputs, by ``error`` (a forecast ``(windows, horizon, 1)``
    -> ``(1,)``; the library's scaled error if None): the partner's key, the network's weight
    and the chosen blend's validation error."""
    if error is None:
        error = scaled_error(
            z["val_series"], z["val_actual"], z["val_scales"], z.get("val_observed")
        )
    partners = []
    for key in keys:
        m, drift, level = key.split("|")
        flag = drift if drift.startswith("d") else drift == "1"  # a damped one keeps its label
        partners.append(((int(m), flag, level == "1"), z["val_p_" + key]))
    partner, weights, errors, _ = choose_blend(z["val_model"], iter(partners), error)
    return _partner_key(partner), weights[0], float(errors.sum())


def library_rule(z: dict[str, np.ndarray]) -> tuple[str, float]:
    """The library's own choice on the recorded partners: the partner's key and the network's
    weight."""
    return choose(z, [k[6:] for k in z if k.startswith("val_p_")])[:2]


def significance_rule(c: float) -> Callable[..., Candidate]:
    """The choice, kept only when it beats the better plain naive / seasonal naive by more
    than ``c / sqrt(n)`` of its error (``n``: validation span in horizons)."""

    def rule(z: dict[str, np.ndarray], cands: list[Candidate], m: int, n: float) -> Candidate:
        plain = [x for x in cands if x[1] == 0.0 and x[0] in (f"{m}|0|0", "1|0|0")]
        reference = min(plain, key=lambda x: x[2].mean())
        choice = next(x for x in cands if (x[0], x[1]) == library_rule(z))
        keep = choice[2].mean() < reference[2].mean() * (1 - c / np.sqrt(n))
        return choice if keep else reference

    return rule


FLOORS = tuple(domain_floor(t) for t in ("log", "log1p"))  # where partners are floored


def _at_floor(values: np.ndarray) -> np.ndarray:
    """Where a recorded partner sits at a target transform's floor (``within_domain``)."""
    return np.isin(values, FLOORS)


def drift_slopes(z: dict[str, np.ndarray], prefix: str, m: int, horizon: int) -> np.ndarray:
    """Per window (``prefix``: ``val_p_`` or ``test_p_``), the trend per step of period
    ``m``'s drift partners: their difference from the same partner without drift over
    ``drift_steps``, the median over the steps where neither sits at a floor; where every
    step does, the steepest slope the floor allows (an upper bound)."""
    steps = drift_steps(m, horizon)
    found: np.ndarray | None = None
    bound: np.ndarray | None = None
    for level in (0, 1):
        if f"{prefix}{m}|1|{level}" not in z:
            continue
        drift, plain = (z[f"{prefix}{m}|{d}|{level}"].reshape(-1, horizon) for d in (1, 0))
        per_step = (drift - plain) / steps
        usable = np.where(_at_floor(drift) | _at_floor(plain), np.nan, per_step)
        found = usable if found is None else np.where(np.isnan(found), usable, found)
        bound = per_step.min(axis=1) if bound is None else bound
    if found is None or bound is None:
        raise ValueError(f"no drift partner of period {m} was recorded")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows all NaN: the bound below
        slope = np.nanmedian(found, axis=1)
    return np.where(np.isnan(slope), bound, slope)


def damped_steps(m: int, horizon: int, phi: float) -> np.ndarray:
    """The steps of trend a drift partner damped at ``phi`` per step adds at each forecast
    step ``h``: those of ``drift_steps`` before the origin (``m * ceil(h / m) - h``, where the
    seasonal naive's source value lies) in full, then ``phi + phi**2 + ... + phi**h``."""
    h = np.arange(1, horizon + 1)
    after = h.astype(np.float64) if phi == 1 else phi * (1 - phi**h) / (1 - phi)
    return drift_steps(m, horizon) - h + after


def damped(z: dict[str, np.ndarray], phi: float, horizon: int) -> dict[str, np.ndarray]:
    """Every recorded drift partner damped at ``phi`` (:func:`damped_steps`) on the
    validation windows and the tail, keyed ``val_p_<m>|d<phi>|<level>`` / ``test_p_...``:
    the recorded partner less the trend it no longer adds (from its period's slope,
    :func:`drift_slopes`), or where it sits at a floor, the partner without drift plus the
    damped trend; floored again, and at the floor where both sit there (the damped trend
    lies between the two). ``phi = 1`` gives the recorded partners back."""
    out: dict[str, np.ndarray] = {}
    for key in [k[6:] for k in z if k.startswith("val_p_") and k.split("|")[1] == "1"]:
        m, _, level = key.split("|")
        kept = damped_steps(int(m), horizon, phi)
        for prefix in ("val_p_", "test_p_"):
            drift = z[prefix + key].reshape(-1, horizon)
            plain = z[f"{prefix}{m}|0|{level}"].reshape(-1, horizon)
            slope = drift_slopes(z, prefix, int(m), horizon)[:, None]
            less = drift_steps(int(m), horizon) - kept
            value = np.where(_at_floor(drift), plain + slope * kept, drift - slope * less)
            value = np.where(_at_floor(drift) & _at_floor(plain), drift, value)  # both below it
            floors = [f for f in FLOORS if (drift == f).any() or (plain == f).any()]
            value = np.maximum(value, floors[0]) if floors else value
            out[f"{prefix}{m}|d{phi:g}|{level}"] = value.reshape(z[prefix + key].shape)
    return out


def damped_rule(phis: tuple[float, ...], margin: float | None) -> Callable[..., np.ndarray]:
    """The tail forecasts of a choice with the drift partners damped at each of ``phis``
    (:func:`damped`; each right after its undamped one), by ``choose_blend`` with the other
    partners: ``margin`` None: instead of the undamped drift partners; else beside them, an
    undamped one kept only when its blend's validation error is more than ``margin`` below
    the best blend of the others (``phis`` empty: a margin on drift alone)."""

    def rule(z: dict[str, np.ndarray], horizon: int) -> np.ndarray:
        extended, order = dict(z), []
        for phi in phis:
            extended.update(damped(z, phi, horizon))
        for key in (k[6:] for k in z if k.startswith("val_p_")):
            m, drift, level = key.split("|")
            if drift != "1":
                order.append(key)
                continue
            order += ([] if margin is None else [key]) + [f"{m}|d{p:g}|{level}" for p in phis]
        pick = choose(extended, order)
        if margin is not None:
            rest = choose(extended, [k for k in order if k.split("|")[1] != "1"])
            pick = pick if pick[2] < rest[2] * (1 - margin) else rest
        key, w, _ = pick
        return w * z["test_net"] + (1 - w) * extended["test_p_" + key]

    return rule


def damped_label(spec: str) -> str:
    """A column name for the damped rule ``spec`` (``PHIS/MARGIN``, see ``--damped``)."""
    phis, margin = spec.split("/")
    damp = f"damped {phis.replace(',', '/')}" if phis else "undamped"
    return damp + ("" if margin == "-" else f", drift +{float(margin):.0%}")


def parse_damped(spec: str) -> Callable[..., np.ndarray]:
    """:func:`damped_rule` of ``PHIS/MARGIN`` (``0.95/0.05``, ``0.95,0.98/-``, ``/0.05``)."""
    phis, margin = spec.split("/")
    values = tuple(float(p) for p in phis.split(",")) if phis else ()
    return damped_rule(values, None if margin == "-" else float(margin))


def distinct(cands: list[Candidate]) -> list[Candidate]:
    """``cands`` by mean validation error (stable: ``choose_blend``'s order breaks ties), the
    network alone (every partner's blend at weight 1) kept once."""
    out = [x for i, x in enumerate(cands) if x[1] != 1.0 or i == _first_network(cands)]
    return sorted(out, key=lambda x: float(x[2].mean()))


def _first_network(cands: list[Candidate]) -> int:
    """The index of the first blend at network weight 1 in ``cands``."""
    return next(i for i, x in enumerate(cands) if x[1] == 1.0)


def top_k(k: int, per_partner: bool) -> Callable[..., np.ndarray]:
    """The equal-weight average of the tail forecasts of the ``k`` blends with the lowest mean
    validation error (``per_partner``: of each of the ``k`` best partners' best blend, so
    that neighbouring weights of one partner do not fill the pool; ``k = 0``: every
    partner's)."""

    def rule(z: dict[str, np.ndarray], cands: list[Candidate], **_: Any) -> np.ndarray:
        ranked = distinct(cands)
        if per_partner:
            best: dict[Any, Candidate] = {}
            for x in ranked:  # the network alone stands for every partner it wins
                best.setdefault("net" if x[1] == 1.0 else x[0], x)
            ranked = list(best.values())
        pool = ranked if k == 0 else ranked[:k]
        return np.mean([x[3] for x in pool], axis=0)

    return rule


def near_best(margin: float, per_evidence: bool = False) -> Callable[..., np.ndarray]:
    """The equal-weight average of every distinct blend whose mean validation error is within
    ``margin`` (a fraction) of the lowest: a pool trimmed by a threshold; ``per_evidence``:
    within ``margin / sqrt(n)``, ``n`` the validation evidence in horizons (the library's
    :func:`~forecaster.estimators.blend_choice.validation_evidence`)."""

    def rule(z: dict[str, np.ndarray], cands: list[Candidate], n: float, **_: Any) -> np.ndarray:
        ranked = distinct(cands)
        low = float(ranked[0][2].mean())
        within = margin / np.sqrt(n) if per_evidence else margin
        return np.mean([x[3] for x in ranked if x[2].mean() <= low * (1 + within)], axis=0)

    return rule


def robust_choice(trim: float) -> Callable[..., np.ndarray]:
    """``choose_blend``'s choice (its ties and mean-season margin) by the ``trim``-trimmed
    mean of the per-window scaled errors (``trim`` of the windows cut at each end; 0.5: the
    median) instead of their mean."""

    def aggregate(errors: np.ndarray) -> float:
        if trim >= 0.5:
            return float(np.median(errors))
        cut = int(np.floor(trim * len(errors)))
        return float(np.sort(errors)[cut : len(errors) - cut].mean())

    def rule(z: dict[str, np.ndarray], **_: Any) -> np.ndarray:
        def error(forecast: np.ndarray) -> np.ndarray:
            return np.array([aggregate(window_errors(z, forecast[..., 0]))])

        key, w, _error = choose(z, [k[6:] for k in z if k.startswith("val_p_")], error)
        return tail_of(z, key, w)

    return rule


def shrunk(
    k: float, unit: str, base: Callable[..., np.ndarray] | None = None
) -> Callable[..., np.ndarray]:
    """The tail forecasts of rule ``base`` (the library's choice if None) averaged with those
    of the better (on validation) of the naive and the seasonal naive, ``base`` weighing
    ``n / (n + k)``: ``n`` the validation evidence, ``unit`` "horizons" (the span the
    windows cover, in horizons) or "windows" (their count)."""

    def rule(
        z: dict[str, np.ndarray], cands: list[Candidate], m: int, n: float, **_: Any
    ) -> np.ndarray:
        plain = [x for x in cands if x[1] == 0.0 and x[0] in (f"{m}|0|0", "1|0|0")]
        reference = min(plain, key=lambda x: x[2].mean())
        evidence = n if unit == "horizons" else float(z["val_model"].shape[0])
        weight = evidence / (evidence + k)
        chosen = tail_of(z, *library_rule(z)) if base is None else base(z=z, cands=cands, m=m, n=n)
        return weight * chosen + (1 - weight) * reference[3]

    return rule


def gated(rule: Callable[..., np.ndarray], threshold: float) -> Callable[..., np.ndarray]:
    """``rule`` where the validation evidence ``n`` (horizons) is below ``threshold``, else
    the library's single best choice (``<rule>@<threshold>``)."""

    def choice(z: dict[str, np.ndarray], n: float, **rest: Any) -> np.ndarray:
        return rule(z=z, n=n, **rest) if n < threshold else tail_of(z, *library_rule(z))

    return choice


def parse_rule(spec: str) -> Callable[..., np.ndarray]:
    """The rule of ``spec`` (see ``--rules``): ``top<k>``, ``top<k>p``, ``near<margin>``,
    ``median``, ``trim<fraction>``, ``shrink<k>``, ``shrinkw<k>``, or ``<rule>+shrink<k>`` /
    ``<rule>+shrinkw<k>`` (rule's forecasts shrunk instead of the library's choice)."""
    if "@" in spec:  # the rule below T horizons of validation evidence, else the library's
        rule, threshold = spec.rsplit("@", 1)
        return gated(parse_rule(rule), float(threshold))
    base, _, shrink = spec.rpartition("+")
    if shrink.startswith("shrink"):
        unit = "windows" if shrink.startswith("shrinkw") else "horizons"
        k = float(shrink[7 if unit == "windows" else 6 :])
        return shrunk(k, unit, parse_rule(base) if base else None)
    if spec.startswith("top"):
        return top_k(int(spec[3:].rstrip("p") or 0), per_partner=spec.endswith("p"))
    if spec.startswith("near"):
        return near_best(float(spec[4:].rstrip("s")), per_evidence=spec.endswith("s"))
    if spec.startswith("trim") or spec == "median":
        return robust_choice(0.5 if spec == "median" else float(spec[4:]))
    raise ValueError(
        f"Unknown replay rule {spec!r}: expected top<k>, top<k>p, near<margin>, median, "
        "trim<fraction>, shrink<k> or shrinkw<k>, or a rule followed by +shrink<k> / "
        "+shrinkw<k> (e.g. top3, top2p, near0.02, trim0.2, shrink1, near0.2+shrink0.1)."
    )


def replay(
    names: list[str],
    cache: Path,
    margins: list[float],
    damped_specs: list[str],
    rule_specs: Sequence[str] = (),
) -> dict[str, dict[str, float]]:
    """Tail ratios per series of each rule on the recorded series ``names``."""
    rows = {}
    for name in names:
        with np.load(cache / f"{name}.npz") as data:
            z = {k: data[k] for k in data.files}
        if "val_model" not in z:  # no validation windows: nothing was chosen
            continue
        meta = json.loads((cache / f"{name}.json").read_text())
        cands, horizon = candidates(z), meta["horizon"]
        n = (z["val_model"].shape[0] + horizon - 1) / horizon
        m = (meta["validation"] or {}).get("m", 1)
        chosen = next(x for x in cands if (x[0], x[1]) == library_rule(z))
        if not np.allclose(chosen[3], z["test_auto"], rtol=1e-9, atol=1e-9):
            raise RuntimeError(f"{name}: the replayed choice is not the model's own blend")
        row = {"library": _ratio(chosen[3], z), "network": _ratio(z["test_net"], z), "n": n}
        for c in margins:
            row[f"sig {c}"] = _ratio(significance_rule(c)(z, cands, m, n)[3], z)
        for spec in damped_specs:
            row[damped_label(spec)] = _ratio(parse_damped(spec)(z, horizon), z)
        for spec in rule_specs:
            row[spec] = _ratio(parse_rule(spec)(z=z, cands=cands, m=m, n=n), z)
        rows[name] = row
    return rows


def summary(rows: dict[str, dict[str, float]]) -> dict[str, str]:
    """Per rule: geometric mean / series over 1.1 / worst."""
    out = {}
    for rule in (k for k in next(iter(rows.values())) if k != "n"):
        v = np.array([r[rule] for r in rows.values()])
        out[rule] = f"{np.exp(np.log(v).mean()):.3f} / {(v > 1.1).sum()} / {v.max():.2f}"
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=["record", "replay"])
    parser.add_argument("series", nargs="*", help="record: the series to fit")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--data", type=Path, default=bench_robust.DEFAULT_DATA)
    parser.add_argument("--extra-python", default=None)
    parser.add_argument("--set", action="append", default=[], help="replay: NAME=s1,s2,...")
    parser.add_argument("--margins", default="0.1,0.3,1.0", help="replay: c of 'sig c'")
    parser.add_argument(
        "--damped",
        action="append",
        default=None,
        help="replay: damped drift rule PHIS/MARGIN (0.95/0.05: damped at 0.95 per step beside "
        "undamped drift, which needs a 5 %% margin; 0.95,0.98/-: damped ones instead)",
    )
    parser.add_argument(
        "--rules",
        default=",".join(RULES),
        help="replay: session 34's rules, comma-separated (top3: the average of the 3 best "
        "blends; top2p: of the best blends of the 2 best partners; near0.02: of every blend "
        "within 2 %% of the best; median / trim0.2: the choice by the median / 20 %%-trimmed "
        "mean of the per-window errors; shrink1 / shrinkw4: the choice averaged with the "
        "better naive at weight n / (n + k), n in horizons / windows); empty for none",
    )
    parser.add_argument("--out", type=Path, default=bench_robust.RESULTS)
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.step == "record":
        torch.set_num_threads(1)
        recorder = Recorder()
        for name in args.series:
            try:
                print(record(name, args.cache, args.data, args.extra_python, recorder), flush=True)
            except Exception as exc:  # a series that does not load: said, the others go on
                print(f"{name}: not recorded ({type(exc).__name__}: {exc})", flush=True)
        return
    margins = [float(c) for c in args.margins.split(",") if c]
    rule_specs = [r for r in args.rules.split(",") if r]
    for spec in rule_specs:
        parse_rule(spec)  # an unknown rule is refused before any replay
    sets = dict(s.split("=", 1) for s in args.set)
    report: dict[str, Any] = {"sets": {}, "machine": machine_info()}
    specs = DAMPED if args.damped is None else [d for d in args.damped if d]
    rules = ["library", "network alone", *[f"sig {c}" for c in margins]]
    rules += [damped_label(spec) for spec in specs] + rule_specs
    lines = ["| set | series | " + " | ".join(rules) + " |", "|---|---:|" + "---|" * len(rules)]
    for label, names in sets.items():
        rows = replay(names.split(","), args.cache, margins, specs, rule_specs)
        report["sets"][label] = {"rows": rows, "summary": summary(rows)}
        lines.append(f"| {label} | {len(rows)} | " + " | ".join(summary(rows).values()) + " |")
    args.out.mkdir(parents=True, exist_ok=True)
    write_result(args.out / "blend_replay.json", json.dumps(report, indent=1))
    table = "\n".join(lines)
    note = "Cells: geometric mean of MAE over the seasonal naive's on the tails / over 1.1 / worst."
    write_result(args.out / "blend_replay.md", f"{table}\n\n{note}\n")
    print(table)


if __name__ == "__main__":
    main()

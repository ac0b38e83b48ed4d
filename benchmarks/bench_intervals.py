"""Prediction intervals on M4 Hourly and ETTh1: coverage, MSIS, scaled CRPS against a baseline.

Methods (one row each, per seed where a network is fitted)
----------------------------------------------------------
``snaive+conformal``
    The baseline, computed here in the same run: the seasonal naive forecast (repeat the last
    24 hours) with split-conformal intervals per horizon step, from the absolute residuals at
    the same calibration origins as the networks, each divided by its series' in-sample
    seasonal-naive MAE (m = 24) and pooled across series (so one interval width per step, in
    units of each series' scale), with the finite-sample rank ceil((n + 1) L / 100). Its
    quantiles (for pinball / CRPS) are the snaive forecast plus the empirical quantiles of
    the scaled signed residuals at that step.
``snaive+conformal rolling=720`` (ETTh1)
    The same baseline recalibrated at every test origin on the 720 latest stride-1 windows
    whose actuals the origin has seen (the baseline of the networks' ``rolling=720`` rows).
``snaive+conformal (library: per-series in-sample)``
    ``forecaster.evaluation.baselines.seasonal_naive(level=..., quantiles=...)``: the same
    forecast with each series' own split-conformal intervals from its in-sample residuals (for
    ETTh1 one call per test origin, on the rows up to it).
``point+conformal``
    ``RNNForecaster`` with library defaults (``loss="mae"``), fitted on the data before the
    calibration span, then ``model.calibrate(frame, folds=..., step=...)`` (split conformal
    on the calibration span's origins, ``refit=False``, residuals normalised by each
    series' scale: the default ``normalize="series"``), ``predict(level=[80, 95],
    quantiles=Q)``. Variants: ``per-series`` (``per_series=True``; on M4 24 origins 4 steps
    apart in the same span: the library needs 20 residuals per series), ``window``
    (``normalize="window"``: residuals divided by the input window's spread), ``plain``
    (M4, ``normalize=None``: raw residuals; on ETTh1, one series, the default is the same as
    plain), and on ETTh1 ``rolling=720`` (calibrated on every stride-1 origin of validation
    and test with ``rolling=720``: each test origin uses the 720 latest windows whose
    actuals it has seen, so nothing after the origin is used).
``quantile``
    The same with ``loss="quantile", quantiles=Q`` (Q = 0.025, 0.1, 0.5, 0.9, 0.975: the
    80 % and 95 % intervals are its own 0.1/0.9 and 0.025/0.975 quantiles), uncalibrated.
``quantile+CQR``
    That same fitted quantile model after ``calibrate`` with each variant above
    (conformalised quantile regression).

Protocols
---------
M4 Hourly: the 414 training series and the official 48-step test set, one origin (the end of
each training series, as the competition). Calibration span: the last ``48 + 4 x 24`` = 144
training steps of each series, 5 origins 24 steps apart whose forecasts cover it; the networks
are fitted on the training series without those 144 steps (their own early-stopping split is
the default last 10 % of that), then forecast the test set from the full training series.
Each series' time index is shifted so that all training series end at the same step (the
M4 series share no calendar; this lets one cutoff stand for "the end of the fitting data").

ETTh1 (target OT only, univariate), the standard 12/4/4-month split (train rows
``[0, 8640)``, validation ``[8640, 11520)``, test ``[11520, 14400)``), H = 96, rolling
origins: every stride-1 test window (2,785 origins, the published LTSF protocol). The networks
are fitted on the training rows (their early-stopping split: the last 10 % of them), the
validation rows are the calibration span (stride-1 origins whose forecasts lie inside it),
then every test origin is forecast in one batched ``predict(cutoff=[...])``.

Nothing is selected on the test set: every method and option is fixed before it is scored,
and the test set is forecast once per fitted model.

Scores (numpy, here; cross-checked against ``forecaster.evaluation.metrics`` where it has
them): empirical coverage of the 80 % and 95 % intervals (all series / windows and steps
pooled; target: within +-3 points of nominal), mean width divided by the scale, MSIS (M4
guide: per series mean of ``(U - L) + 2/a (L - y) 1{y < L} + 2/a (y - U) 1{y > U}`` divided by
the in-sample seasonal-naive MAE with m = 24, then averaged over series; a = 0.05 for the 95 %
interval, also given at a = 0.2), scaled CRPS (2 x the mean pinball loss over Q, divided by the
same scale, averaged over series / windows), mean scaled pinball, and the point forecast's
MASE. For ETTh1 the scale is the training rows' seasonal-naive MAE (one series).

Run from the repository root::

    .venv/bin/python benchmarks/bench_intervals.py --quick           # smoke run, < 1 min
    .venv/bin/python benchmarks/bench_intervals.py --threads 1 --seeds 0,1 \
        --max-epochs 8 --windows-per-epoch 8192

Writes ``benchmarks/results/intervals.{json,md}`` (``intervals_quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import itertools
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from _machine import Timed, write_result
from bench_accuracy import (
    DEFAULT_DATA,
    M4_START,
    RESULTS,
    ROOT,
    ett_borders,
    machine,
    read_ett,
    read_m4,
)

from forecaster import RNNForecaster
from forecaster.evaluation.baselines import seasonal_naive

QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)
LEVELS = (80, 95)
SEASON = 24
M4_H, ETT_H = 48, 96
M4_CAL_FOLDS, M4_CAL_STEP = 5, 24
ETT_ROLLING = 720  # calibration windows at each test origin (30 days of hourly origins)
LOOKBACK = {"m4": 192, "etth1": 336}  # as bench_accuracy's default preset


def qname(target: str, q: float) -> str:
    return f"{target}_q{100 * q:g}"


# --------------------------------------------------------------------------------------------
# scores (arrays: n rows = series or windows, H columns = steps; scale: one per row)
# --------------------------------------------------------------------------------------------


def pinball(y: np.ndarray, pred: np.ndarray, q: float) -> np.ndarray:
    diff = y - pred
    return np.maximum(q * diff, (q - 1) * diff)


def msis_rows(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: float) -> np.ndarray:
    """The M4 guide's interval score per row, before scaling (mean over steps)."""
    a = 1 - level / 100
    score = (hi - lo) + 2 / a * (lo - y) * (y < lo) + 2 / a * (y - hi) * (y > hi)
    return score.mean(axis=1)


def score(forecast: dict[str, Any], y: np.ndarray, scale: np.ndarray) -> dict[str, Any]:
    """Every interval / probabilistic score of one method's arrays."""
    out: dict[str, Any] = {
        "mase": float((np.abs(y - forecast["point"]).mean(axis=1) / scale).mean())
    }
    for level in LEVELS:
        lo, hi = forecast["lo"][level], forecast["hi"][level]
        inside = (y >= lo) & (y <= hi)
        out[f"coverage_{level}"] = float(100 * inside.mean())
        out[f"coverage_{level}_by_step"] = [round(float(v), 2) for v in 100 * inside.mean(axis=0)]
        out[f"width_{level}"] = float(((hi - lo).mean(axis=1) / scale).mean())
        out[f"msis_{level}"] = float((msis_rows(y, lo, hi, level) / scale).mean())
    quantiles = forecast["q"]
    losses = {q: pinball(y, quantiles[q], q).mean(axis=1) / scale for q in QUANTILES}
    out["pinball"] = float(np.mean([v.mean() for v in losses.values()]))
    out["scrps"] = 2 * out["pinball"]
    out["crossing"] = int(
        sum((quantiles[a] > quantiles[b] + 1e-9).sum() for a, b in itertools.pairwise(QUANTILES))
    )
    out["library_check"] = library_check(forecast, y, scale, out)
    return out


def library_check(
    forecast: dict[str, Any], y: np.ndarray, scale: np.ndarray, ours: dict[str, Any]
) -> dict[str, Any] | str:
    """Where ``forecaster.evaluation.metrics`` has the issue-13 metrics, recompute with them
    (per row, rows averaged) and report the largest relative difference from ours."""
    try:
        from forecaster.evaluation import metrics as lib
    except ImportError:  # pragma: no cover
        return "forecaster.evaluation.metrics not importable"
    missing = [n for n in ("coverage", "msis", "scaled_crps") if not hasattr(lib, n)]
    if missing:
        return f"not in forecaster.evaluation.metrics yet: {', '.join(missing)}"
    diffs: dict[str, float] = {}
    try:
        lo, hi = forecast["lo"][95], forecast["hi"][95]
        cov = float(lib.coverage(y.ravel(), lo.ravel(), hi.ravel()))
        cov = 100 * cov if cov <= 1 else cov
        diffs["coverage_95"] = abs(cov - ours["coverage_95"]) / 100
        # msis per row needs an in-sample series; pass a constant-step one whose seasonal-naive
        # MAE is the row's scale: [0]*m + [scale] * ... (|y_t - y_{t-m}| = scale for m steps)
        lib_msis = []
        for i in range(y.shape[0]):
            insample = np.concatenate([np.zeros(SEASON), np.full(SEASON, scale[i])])
            lib_msis.append(float(lib.msis(y[i], lo[i], hi[i], insample, m=SEASON, level=95)))
        diffs["msis_95"] = abs(np.mean(lib_msis) - ours["msis_95"]) / ours["msis_95"]
        preds = np.stack([forecast["q"][q] for q in QUANTILES], axis=-1)
        lib_crps = [
            float(lib.scaled_crps(y[i], preds[i], list(QUANTILES), scale[i]))
            for i in range(y.shape[0])
        ]
        diffs["scrps"] = abs(np.mean(lib_crps) - ours["scrps"]) / ours["scrps"]
    except Exception as exc:  # the library's signature moved: say so, keep our numbers
        return f"library metrics failed: {type(exc).__name__}: {exc}"
    return {k: float(f"{v:.2e}") for k, v in diffs.items()}


# --------------------------------------------------------------------------------------------
# the baseline: seasonal naive + split conformal (scaled residuals pooled across series)
# (kept beside the library's per-series baseline: this one uses the networks' calibration
# origins, so the two calibrations differ only in the forecaster)
# --------------------------------------------------------------------------------------------


def snaive_path(values: np.ndarray, origin: int, horizon: int) -> np.ndarray:
    """Seasonal naive from the row ``origin`` (last observed): repeat the last 24 rows."""
    steps = np.arange(horizon)
    return values[origin - SEASON + 1 + steps % SEASON]


def conformal_rank(n: int, level: float) -> int:
    """Index (0-based) of the finite-sample split-conformal quantile ceil((n+1)L/100)/n."""
    return min(n, math.ceil((n + 1) * level / 100)) - 1


def snaive_conformal(
    series: list[np.ndarray],
    cal_origins: list[np.ndarray],
    test_origins: list[np.ndarray],
    scale: np.ndarray,
    horizon: int,
) -> dict[str, Any]:
    """Baseline arrays for every (series, test origin) row, in that order."""
    residuals = np.concatenate(
        [
            (values[o + 1 : o + 1 + horizon] - snaive_path(values, o, horizon))[None, :] / s
            for values, origins, s in zip(series, cal_origins, scale, strict=True)
            for o in origins
        ]
    )  # (n calibration windows, horizon), on each series' scale
    n = residuals.shape[0]
    abs_sorted = np.sort(np.abs(residuals), axis=0)
    half = {level: abs_sorted[conformal_rank(n, level)] for level in LEVELS}
    signed = {q: np.quantile(residuals, q, axis=0) for q in QUANTILES}
    rows = [
        (snaive_path(values, o, horizon), s)
        for values, origins, s in zip(series, test_origins, scale, strict=True)
        for o in origins
    ]
    point = np.stack([p for p, _ in rows])
    row_scale = np.array([s for _, s in rows])[:, None]
    return {
        "point": point,
        "lo": {lv: point - half[lv] * row_scale for lv in LEVELS},
        "hi": {lv: point + half[lv] * row_scale for lv in LEVELS},
        "q": {q: point + signed[q] * row_scale for q in QUANTILES},
        "calibration_windows": n,
    }


def snaive_rolling(
    values: np.ndarray,
    origins: np.ndarray,
    tests: np.ndarray,
    scale: float,
    horizon: int,
    window: int,
) -> dict[str, Any]:
    """The baseline recalibrated at every test origin (one series): split conformal on the
    scaled residuals of the ``window`` latest ``origins`` whose forecast ends at or before
    the test origin (as ``calibrate(rolling=window)`` does for the networks)."""
    residuals = np.stack(
        [
            (values[o + 1 : o + 1 + horizon] - snaive_path(values, o, horizon)) / scale
            for o in origins
        ]
    )
    stops = np.searchsorted(origins + horizon, tests, side="right")
    point = np.stack([snaive_path(values, o, horizon) for o in tests])
    lo = {lv: np.empty_like(point) for lv in LEVELS}
    hi = {lv: np.empty_like(point) for lv in LEVELS}
    q = {qq: np.empty_like(point) for qq in QUANTILES}
    for row, stop in enumerate(stops):
        block = residuals[max(0, stop - window) : stop]
        absolute = np.sort(np.abs(block), axis=0)
        for lv in LEVELS:
            half = absolute[conformal_rank(len(block), lv)] * scale
            lo[lv][row], hi[lv][row] = point[row] - half, point[row] + half
        for qq in QUANTILES:
            q[qq][row] = point[row] + np.quantile(block, qq, axis=0) * scale
    return {"point": point, "lo": lo, "hi": hi, "q": q, "calibration_windows": window}


def snaive_scale(values: np.ndarray) -> float:
    return float(np.mean(np.abs(values[SEASON:] - values[:-SEASON])))


# --------------------------------------------------------------------------------------------
# the networks
# --------------------------------------------------------------------------------------------


LIB_SNAIVE = "snaive+conformal (library: per-series in-sample)"


def has_features() -> dict[str, bool]:
    calibrate = hasattr(RNNForecaster, "calibrate")
    library_snaive = "level" in inspect.signature(seasonal_naive).parameters
    try:
        RNNForecaster(loss="quantile", quantiles=QUANTILES)
        quantile = True
    except Exception:
        quantile = False
    return {"calibrate": calibrate, "quantile_loss": quantile, "library_snaive": library_snaive}


def make_model(task: str, args: argparse.Namespace, seed: int, **options: Any) -> RNNForecaster:
    extra: dict[str, Any] = {}
    if args.max_epochs is not None:
        extra["max_epochs"] = args.max_epochs
    if args.windows_per_epoch is not None:
        extra["windows_per_epoch"] = args.windows_per_epoch
    if args.quick:
        extra.update(max_epochs=2, windows_per_epoch=1024)
    return RNNForecaster(
        lookback=LOOKBACK[task], random_state=seed, progress=False, **options, **extra
    )


def arrays_from(frame: pl.DataFrame, target: str, n_rows: int, horizon: int) -> dict[str, Any]:
    """A prediction frame (sorted by row then step) as the score arrays."""

    def grid(column: str) -> np.ndarray:
        return frame[column].to_numpy().astype(np.float64).reshape(n_rows, horizon)

    return {
        "point": grid(target),
        "lo": {level: grid(f"{target}_lo_{level}") for level in LEVELS},
        "hi": {level: grid(f"{target}_hi_{level}") for level in LEVELS},
        "q": {q: grid(qname(target, q)) for q in QUANTILES},
    }


def fit_and_score(
    task: str,
    args: argparse.Namespace,
    seed: int,
    features: dict[str, bool],
    fit_frame: pl.DataFrame,
    calibrate: dict[str, Any],
    forecast: Any,
    y: np.ndarray,
    scale: np.ndarray,
    columns: dict[str, Any],
) -> list[dict[str, Any]]:
    """Fit the point and the quantile model, calibrate, forecast the test set, score.

    ``calibrate``: the keyword arguments of ``model.calibrate``; ``forecast(model)`` returns the
    test-set prediction frame with interval and quantile columns, sorted like ``y``."""
    rows: list[dict[str, Any]] = []
    variants = [("point+conformal", {})]
    if features["quantile_loss"]:
        variants.append(("quantile", {"loss": "quantile", "quantiles": QUANTILES}))
    for name, loss in variants:
        model = make_model(task, args, seed, **columns, **loss)
        with Timed() as fit_t:
            model.fit(fit_frame)
        common = {
            "seed": seed,
            "fit_seconds": round(fit_t.seconds, 1),
            "fit_other_cpus": fit_t.other_cpus,
            "epochs": len(model.history_),
            "options": {k: v for k, v in model.get_params().items() if k in OPTIONS},
        }
        stages: list[tuple[str, dict[str, Any] | None]] = []
        if name == "quantile":
            stages.append(("quantile", None))
        if features["calibrate"]:
            base = "point+conformal" if name == "point+conformal" else "quantile+CQR"
            stages += [(base + suffix, kw) for suffix, kw in calibrate["variants"]]
        for method, kwargs in stages:
            calibrated = kwargs is not None
            with Timed() as cal_t:
                if kwargs is not None:
                    options = dict(kwargs)
                    model.calibrate(options.pop("frame", calibrate["frame"]), **options)
            with Timed() as pred_t:
                predicted = forecast(model)
            row = {"method": method, **common, **score(predicted, y, scale)}
            row.update(
                calibrate_seconds=round(cal_t.seconds, 1) if calibrated else None,
                predict_seconds=round(pred_t.seconds, 1),
                predict_other_cpus=pred_t.other_cpus,
            )
            rows.append(row)
            print(f"  {task} seed {seed} {method}: {brief(row)}", flush=True)
    return rows


OPTIONS = ("loss", "quantiles", "max_epochs", "windows_per_epoch", "lookback", "horizon")


def brief(row: dict[str, Any]) -> str:
    keys = ("coverage_80", "coverage_95", "msis_95", "scrps", "mase")
    return " ".join(f"{k}={row[k]:.3f}" for k in keys if k in row)


# --------------------------------------------------------------------------------------------
# tasks
# --------------------------------------------------------------------------------------------


def run_m4(args: argparse.Namespace, features: dict[str, bool]) -> dict[str, Any]:
    train = read_m4(args.data, test=False)
    test = read_m4(args.data, test=True)
    ids = sorted(train["id"].unique().to_list(), key=lambda s: int(s[1:]))
    if args.quick:
        ids = ids[:20]
    train, test = train.filter(pl.col("id").is_in(ids)), test.filter(pl.col("id").is_in(ids))
    # align every series' end on one step: t = position + (longest - length) hours
    lengths = train.group_by("id").agg(pl.len().alias("n"))
    longest = int(lengths["n"].max())
    shift = pl.duration(hours=longest - pl.col("n"))
    train = train.join(lengths, on="id").with_columns(pl.col("t") + shift)
    test = test.join(lengths, on="id").with_columns(pl.col("t") + pl.duration(hours=longest))
    train, test = train.drop("n").sort("id", "t"), test.drop("n").sort("id", "t")
    order = pl.DataFrame({"id": ids, "row": np.arange(len(ids))})
    train = train.join(order, on="id").sort("row", "t").drop("row")
    test = test.join(order, on="id").sort("row", "t").drop("row")

    series = [g["y"].to_numpy() for _, g in train.group_by("id", maintain_order=True)]
    y = test["y"].to_numpy().reshape(len(ids), M4_H)
    scale = np.array([snaive_scale(v) for v in series])
    span = M4_H + (M4_CAL_FOLDS - 1) * M4_CAL_STEP
    cal_origins = [len(v) - M4_H - 1 - M4_CAL_STEP * np.arange(M4_CAL_FOLDS)[::-1] for v in series]
    test_origins = [np.array([len(v) - 1]) for v in series]
    rows = [
        {
            "method": "snaive+conformal",
            "seed": None,
            **score(snaive_conformal(series, cal_origins, test_origins, scale, M4_H), y, scale),
        }
    ]
    print(f"  m4 snaive+conformal: {brief(rows[0])}", flush=True)
    if features["library_snaive"]:
        pred = seasonal_naive(
            train,
            M4_H,
            m=SEASON,
            target="y",
            time_col="t",
            id_col="id",
            level=list(LEVELS),
            quantiles=list(QUANTILES),
        )
        pred = pred.join(order, on="id").sort("row", "t")
        lib = arrays_from(pred, "y", len(ids), M4_H)
        rows.append({"method": LIB_SNAIVE, "seed": None, **score(lib, y, scale)})
        print(f"  m4 {LIB_SNAIVE}: {brief(rows[-1])}", flush=True)
    columns = {"target": "y", "time_col": "t", "id_col": "id", "horizon": M4_H}
    fit_frame = train.filter(pl.col("t") < M4_START + dt.timedelta(hours=longest - span))
    # pooled: 5 origins 24 apart (the span's daily origins); per series: 24 origins 4 apart in
    # the same span (the library needs >= 20 residuals per series and step for its own)
    calibrate = {
        "frame": train,
        "variants": [
            ("", {"folds": M4_CAL_FOLDS, "step": M4_CAL_STEP}),
            (" per-series", {"folds": 24, "step": 4, "per_series": True}),
            (" window", {"folds": M4_CAL_FOLDS, "step": M4_CAL_STEP, "normalize": "window"}),
            (" plain", {"folds": M4_CAL_FOLDS, "step": M4_CAL_STEP, "normalize": None}),
        ],
    }

    def forecast(model: RNNForecaster) -> dict[str, Any]:
        pred = model.predict(train, level=list(LEVELS), quantiles=list(QUANTILES))
        pred = pred.join(order, on="id").sort("row", "t")
        return arrays_from(pred, "y", len(ids), M4_H)

    if features["calibrate"] or features["quantile_loss"]:
        for seed in args.seeds:
            rows += fit_and_score(
                "m4", args, seed, features, fit_frame, calibrate, forecast, y, scale, columns
            )
    return {
        "task": "m4",
        "dataset": "M4 Hourly",
        "horizon": M4_H,
        "n_series": len(ids),
        "protocol": (
            "official test set, one origin per series; calibration span = last 144 training "
            "steps (5 origins, step 24); networks fitted on the training series without it"
        ),
        "rows": rows,
    }


def run_etth1(args: argparse.Namespace, features: dict[str, bool]) -> dict[str, Any]:
    frame = read_ett(args.data, "etth1")
    train_end, val_end, test_end = ett_borders("etth1")
    frame = frame.head(test_end).select("time", "OT")
    values = frame["OT"].to_numpy().astype(np.float64)
    cal = np.arange(train_end - 1, val_end - ETT_H)  # origins whose forecasts lie in validation
    tests = np.arange(val_end - 1, test_end - ETT_H)  # every stride-1 test window
    if args.quick:  # every 50th test window
        tests = tests[::50]
    scale = np.array([snaive_scale(values[:train_end])])
    y = np.stack([values[o + 1 : o + 1 + ETT_H] for o in tests])
    row_scale = np.full(len(tests), scale[0])
    base = snaive_conformal([values], [cal], [tests], scale, ETT_H)
    rows = [{"method": "snaive+conformal", "seed": None, **score(base, y, row_scale)}]
    print(f"  etth1 snaive+conformal: {brief(rows[0])}", flush=True)
    every = 8 if args.quick else 1
    rolled = snaive_rolling(
        values,
        np.arange(train_end - 1, test_end - ETT_H, every),
        tests,
        float(scale[0]),
        ETT_H,
        ETT_ROLLING // every,
    )
    method = f"snaive+conformal rolling={ETT_ROLLING}"
    rows.append({"method": method, "seed": None, **score(rolled, y, row_scale)})
    print(f"  etth1 {method}: {brief(rows[-1])}", flush=True)
    if features["library_snaive"]:  # one call per origin on the history up to it
        parts = [
            seasonal_naive(
                frame.head(o + 1),
                ETT_H,
                m=SEASON,
                target="OT",
                level=list(LEVELS),
                quantiles=list(QUANTILES),
            )
            for o in tests
        ]
        lib = arrays_from(pl.concat(parts), "OT", len(tests), ETT_H)
        rows.append({"method": LIB_SNAIVE, "seed": None, **score(lib, y, row_scale)})
        print(f"  etth1 {LIB_SNAIVE}: {brief(rows[-1])}", flush=True)
    columns = {"target": "OT", "time_col": "time", "horizon": ETT_H}
    fit_frame = frame.head(train_end)
    # calibration origins: the last len(cal) origins of the validation rows, stride 1
    kwargs = {"folds": 200, "step": 8} if args.quick else {"folds": len(cal), "step": 1}
    # rolling: calibrate on every origin of validation and test (stride 1), each test origin
    # using only the ETT_ROLLING latest windows observed by it (nothing after it leaks)
    rolling = {
        "folds": len(range(train_end - 1, test_end - ETT_H, every)),
        "step": every,
        "rolling": ETT_ROLLING // every,
        "frame": frame,
    }
    calibrate = {
        "frame": frame.head(val_end),
        "variants": [
            ("", kwargs),
            (f" rolling={ETT_ROLLING}", rolling),
            (" window", {**kwargs, "normalize": "window"}),
            (f" window rolling={ETT_ROLLING}", {**rolling, "normalize": "window"}),
        ],
    }
    cutoffs = frame["time"].gather(tests)

    def forecast(model: RNNForecaster) -> dict[str, Any]:
        pred = model.predict(
            frame, cutoff=cutoffs, level=list(LEVELS), quantiles=list(QUANTILES)
        ).sort("origin", "time")
        if pred["origin"].unique().len() != len(tests):
            raise RuntimeError("predict(cutoff=[...]) did not forecast every test origin")
        return arrays_from(pred, "OT", len(tests), ETT_H)

    if features["calibrate"] or features["quantile_loss"]:
        for seed in args.seeds:
            rows += fit_and_score(
                "etth1",
                args,
                seed,
                features,
                fit_frame,
                calibrate,
                forecast,
                y,
                row_scale,
                columns,
            )
    return {
        "task": "etth1",
        "dataset": "ETTh1 (OT)",
        "horizon": ETT_H,
        "test_windows": len(tests),
        "calibration_windows": len(cal) if not args.quick else 200,
        "protocol": (
            "train rows [0, 8640) for fit (early stopping on their last 10 %), validation rows "
            "[8640, 11520) calibrate (stride-1 origins), every stride-1 test window scored"
        ),
        "rows": rows,
    }


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------

METRICS = (
    "coverage_80",
    "coverage_95",
    "width_80",
    "width_95",
    "msis_80",
    "msis_95",
    "pinball",
    "scrps",
    "mase",
)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread (min, max) over seeds per method."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        group = [r for r in rows if r["method"] == method]
        entry: dict[str, Any] = {"method": method, "seeds": [r["seed"] for r in group]}
        for m in METRICS:
            vals = [r[m] for r in group]
            entry[m] = {"mean": float(np.mean(vals)), "min": min(vals), "max": max(vals)}
        entry["fit_seconds"] = [r.get("fit_seconds") for r in group]
        entry["epochs"] = [r.get("epochs") for r in group]
        out.append(entry)
    return out


def cell(entry: dict[str, Any], metric: str) -> str:
    v = entry[metric]
    if v["min"] == v["max"]:
        return f"{v['mean']:.3f}" if "coverage" not in metric else f"{v['mean']:.1f}"
    digits = 1 if "coverage" in metric else 3
    return f"{v['mean']:.{digits}f} ({v['min']:.{digits}f}-{v['max']:.{digits}f})"


def markdown(results: list[dict[str, Any]]) -> str:
    lines = []
    for res in results:
        facts = res["machine"]
        dirty = " + uncommitted changes" if facts.get("uncommitted_changes") else ""
        lines += [f"### {res['dataset']}, H = {res['horizon']}", "", res["protocol"] + ".", ""]
        lines += [
            f"`{res['command']}` ({facts['date']}, commit {facts['commit']}{dirty}, "
            f"torch threads {facts['torch_threads']}; {res['seconds']:.0f} s, other processes used "
            f"{res['other_cpus']} CPUs on average meanwhile)",
            "",
        ]
        lines += [
            "| method | seeds | cov 80 | cov 95 | width 80 | width 95 | MSIS 80 | MSIS 95 "
            "| pinball | sCRPS | MASE | fit (s) | epochs |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for e in res["summary"]:
            seeds = ",".join(str(s) for s in e["seeds"] if s is not None) or "-"
            fits = ",".join(f"{s:.0f}" for s in e["fit_seconds"] if s is not None) or "-"
            epochs = ",".join(str(s) for s in e["epochs"] if s is not None) or "-"
            lines.append(
                f"| {e['method']} | {seeds} | "
                + " | ".join(cell(e, m) for m in METRICS)
                + f" | {fits} | {epochs} |"
            )
        lines.append("")
    lines += [
        "Coverage in % (target: nominal +-3 points); width, MSIS, pinball and sCRPS divided by "
        "the in-sample seasonal-naive MAE (m = 24); several seeds: mean (min-max).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="m4,etth1")
    parser.add_argument("--seeds", default="0", help="comma-separated random states")
    parser.add_argument("--max-epochs", type=int, default=None, help="default: the library's")
    parser.add_argument("--windows-per-epoch", type=int, default=None)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--tag", default="", help="suffix of the output names")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 series, 2 epochs")
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python benchmarks/bench_intervals.py " + " ".join(argv or sys.argv[1:])
    facts = machine()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True
    )
    facts["uncommitted_changes"] = bool(status.stdout.strip())
    features = has_features()
    print(f"features: {features}", flush=True)
    results = []
    started = time.perf_counter()
    for task in args.tasks.split(","):
        with Timed() as run_t:
            res = run_m4(args, features) if task == "m4" else run_etth1(args, features)
        res.update(seconds=round(run_t.seconds, 1), other_cpus=run_t.other_cpus)
        res["summary"] = summarise(res["rows"])
        results.append(res)
    name = ("intervals_quick" if args.quick else "intervals") + (f"_{args.tag}" if args.tag else "")
    args.out.mkdir(parents=True, exist_ok=True)
    for res in results:
        res.update(command=command, machine=facts, features=features)
    # merge: a rerun of one task replaces that task's entry and keeps the others
    path = args.out / f"{name}.json"
    old = json.loads(path.read_text())["results"] if path.exists() else []
    tasks = {r["task"] for r in results}
    merged = [r for r in old if r["task"] not in tasks] + results
    merged.sort(key=lambda r: r["task"] != "m4")
    payload = {"quantiles": list(QUANTILES), "levels": list(LEVELS), "results": merged}
    write_result(path, json.dumps(payload, indent=1))
    write_result(args.out / f"{name}.md", markdown(merged))
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)
    print((args.out / f"{name}.md").read_text())


if __name__ == "__main__":
    main()

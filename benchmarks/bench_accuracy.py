"""Accuracy on the standard benchmarks: M4 Hourly and ETTh1 / ETTm1, under the published protocols.

Tasks
-----
``m4``
    M4 Hourly: 414 series, horizon 48, official sMAPE / MASE (m = 24) / OWA against Naive2
    (18.383 / 2.395, reproduced by ``tests/test_metrics.py``). One global model is fitted on
    the training files (its validation split is the last 10 % of each training series, the
    estimator's default) and forecasts the 48 test steps after each series.
``etth1``, ``ettm1`` with ``--mode M`` (7 -> 7), ``--mode S`` (OT -> OT) or ``--mode MS`` (OT
with the six loads HUFL HULL MUFL MULL LUFL LULL as past covariates -> OT)
    The protocol of the Informer / Autoformer / LTSF-Linear / PatchTST / SegRNN code
    (``data_loader.py``): train rows ``[0, 8640)``, validation ``[8640, 11520)``, test
    ``[11520, 14400)`` (x4 for the 15-minute ETTm1); the validation and test inputs start
    ``lookback`` rows before their border. MSE and MAE are on the z-scale of a standard scaler
    (ddof=0) fitted on the training rows only, averaged over all stride-1 test windows, steps
    and channels (no dropped last batch). MS and S are scored on OT only, so their rows compare
    directly: what the six load covariates add to the same default model.

How the protocol maps onto the estimator: ``fit`` sees only the training and validation rows
(``validation_size`` = the validation length, so the model's own scaler is fitted on the
training rows, and early stopping and best-epoch selection use the validation windows only).
The test rows are never passed to ``fit``: they are forecast afterwards by
:func:`forecaster.evaluation.backtest` with the fitted model (``refit=False``: every test
origin in batched forward passes). A seasonal-naive forecast (repeat the last day) is scored
under the same protocol as a reference.

Presets
-------
``default``
    ``RNNForecaster`` with only target, columns and horizon (plus ``random_state`` and the
    protocol's ``validation_size``): the out-of-the-box result. ``lookback="auto"`` chooses the
    window from the data's frequency (hourly M4 and ETTh1: 336; 15-minute ETTm1: 720; M4's
    steps are given as hours from 2000-01-01, the data having no dates).
``fast``
    A reduced CPU configuration for the horizon sweeps (see ``PRESETS``): lookback 96,
    4,096 windows per epoch, at most 30 epochs, patience 4. (Eight such epochs were tried
    first and are not enough: ETTm1-M 0.537 at H=192 and 0.602 at H=336, worse than the
    seasonal naive.)
``ema``
    The defaults with ``ema_decay=0.99`` (validation, early stopping and the fitted network use
    a moving average of the weights) whatever the steps per epoch. The default
    ``ema_decay="auto"`` is the same on every M4 and ETT default row (25 or more batches per
    epoch); rows record the decay used (``ema_decay``).
``no-ema``
    The defaults before ``ema_decay="auto"`` (``ema_decay=None``). Rows measured as
    ``default`` before that change carry this preset (and ``command_as_run``).
``seg24`` / ``seg48`` / ``seg96`` / ``seg144``
    A fixed ``segment_length``: 24 (the default before ``"auto"``), 48 (``"auto"``'s choice
    for the 720-step windows of ETTm1 and ETTh1-M H = 720 from session 10 to 18), 96 and 144.
    Rows measured as ``default`` with another segment length than today's ``"auto"`` carry
    the preset of the length they used (``command_as_run``). Since session 19 ``"auto"``
    takes a day of sub-daily steps for windows of 4 to 32 days: 96 on ETTm1, 24 on hourly
    720-step windows.
``l720``
    A 720-step window (SegRNN's) on hourly data too, segments as ``"auto"`` chooses.

Run from the repository root::

    .venv/bin/python benchmarks/bench_accuracy.py m4
    .venv/bin/python benchmarks/bench_accuracy.py etth1 --mode M --horizons 96,192,336,720
    .venv/bin/python benchmarks/bench_accuracy.py ettm1 --mode S --preset fast
    .venv/bin/python benchmarks/bench_accuracy.py etth1 --mode MS --horizons 96 --threads 1
    .venv/bin/python benchmarks/bench_accuracy.py etth1 --horizons 96 --quick   # smoke run

Results are merged into ``benchmarks/results/accuracy.json`` (one row per task, dataset, mode,
horizon and preset; a rerun replaces its row) and the table ``accuracy.md`` is rewritten from
all rows. ``--quick`` runs write ``accuracy_quick.*`` instead. The shared data folder is
``../shared/data`` beside the repository (``--data`` or ``FORECASTER_SHARED_DATA`` to change).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from _machine import Timed, write_result
from bench_robust import with_best_blend

import forecaster
from forecaster import RNNForecaster
from forecaster.evaluation.backtest import backtest
from forecaster.evaluation.metrics import aggregate, evaluate, owa_score
from forecaster.training.loop import resolve_device

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("FORECASTER_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"
IDLE_CPUS = 0.2  # a row is "idle" when other processes used less CPU than this during it

M4_HORIZON = 48
M4_NAIVE2 = (18.383, 2.395)  # official Naive2 sMAPE / MASE on M4 Hourly
ETT_COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
ETT_LOADS = ETT_COLUMNS[:-1]  # the past covariates of the MS setting
ETT_FILES = {"etth1": "ETTh1.csv", "ettm1": "ETTm1.csv.gz"}
ETT_STEPS_PER_HOUR = {"etth1": 1, "ettm1": 4}

M4_START = dt.datetime(2000, 1, 1)  # M4 Hourly has no dates: its steps are hours from here

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},  # lookback="auto": 336 for these hourly data, 720 for ETTm1 (15-minute)
    # reduced CPU configuration for the horizon sweeps: a quarter of the default windows per
    # epoch (and of the validation windows), a shorter patience, lookback 96
    "fast": {"lookback": 96, "windows_per_epoch": 4096, "patience": 4, "max_epochs": 30},
    # the defaults with a moving average of the weights at any number of steps per epoch
    # (ema_decay="auto", the default, chooses 0.99 from 25 per epoch: every default row here)
    "ema": {"ema_decay": 0.99},
    # the defaults before ema_decay="auto" (no moving average)
    "no-ema": {"ema_decay": None},
    # the linear skip whatever the target transform (linear_skip="auto" turns it on with the
    # log only)
    "skip": {"linear_skip": True},
    # fixed segment lengths; segment_length="auto" takes a day of sub-daily steps for windows
    # of 4 to 32 days (ETTm1 at 720: 96; hourly: 24), else 24 doubled up to 16 segments.
    # 24 was the default before "auto"; 48 at lookback 720 (SegRNN's ETTm1 setting) was
    # "auto"'s choice for ETTm1 and hourly 720 before session 19
    "seg24": {"segment_length": 24},
    "seg48": {"segment_length": 48},
    "seg96": {"segment_length": 96},
    "seg144": {"segment_length": 144},
    # SegRNN's window on hourly data too (segment_length="auto": 24, a day)
    "l720": {"lookback": 720},
    # SegRNN's dropout (0.5) on the decoder's output, the defaults otherwise
    "drop5": {"dropout": 0.5},
    # the learning rate halved after 3 epochs without improvement (ReduceLROnPlateau)
    "plateau": {"lr_schedule": "plateau"},
    # a wider recurrent state (the default is 128; SegRNN uses 512)
    "h256": {"hidden_size": 256},
}

# Published numbers (../shared/data/published_results.md), MSE / MAE on the z-scale. "SegRNN"
# is its paper's Table II (lookback 720), "SegRNN L=96" its README table (lookback 96, after the
# drop_last fix): the like-for-like reference for our lookback-96 rows.
PUBLISHED_ETT: dict[tuple[str, str, int], dict[str, tuple[float, float]]] = {
    ("etth1", "M", 96): {
        "SegRNN L=96": (0.368, 0.395),
        "SegRNN": (0.351, 0.392),
        "PatchTST/64": (0.370, 0.400),
        "DLinear": (0.375, 0.399),
        "GRU (SegRNN paper)": (1.135, 0.844),
    },
    ("etth1", "M", 192): {
        "SegRNN L=96": (0.408, 0.419),
        "SegRNN": (0.392, 0.414),
        "PatchTST/64": (0.413, 0.429),
        "DLinear": (0.405, 0.416),
        "GRU (SegRNN paper)": (1.123, 0.814),
    },
    ("etth1", "M", 336): {
        "SegRNN L=96": (0.444, 0.440),
        "SegRNN": (0.423, 0.433),
        "PatchTST/64": (0.422, 0.440),
        "DLinear": (0.439, 0.443),
        "GRU (SegRNN paper)": (1.080, 0.807),
    },
    ("etth1", "M", 720): {
        "SegRNN L=96": (0.446, 0.457),
        "SegRNN": (0.466, 0.472),
        "PatchTST/64": (0.447, 0.468),
        "DLinear": (0.472, 0.490),
        "GRU (SegRNN paper)": (1.089, 0.822),
    },
    ("ettm1", "M", 96): {
        "SegRNN L=96": (0.330, 0.369),
        "SegRNN": (0.293, 0.354),
        "PatchTST/42": (0.290, 0.342),
        "DLinear": (0.299, 0.343),
        "GRU (SegRNN paper)": (0.953, 0.740),
    },
    ("ettm1", "M", 192): {
        "SegRNN L=96": (0.369, 0.392),
        "SegRNN": (0.328, 0.378),
        "PatchTST/42": (0.332, 0.369),
        "DLinear": (0.335, 0.365),
        "GRU (SegRNN paper)": (1.124, 0.847),
    },
    ("ettm1", "M", 336): {
        "SegRNN L=96": (0.399, 0.412),
        "SegRNN": (0.357, 0.399),
        "PatchTST/42": (0.366, 0.392),
        "DLinear": (0.369, 0.386),
        "GRU (SegRNN paper)": (1.200, 0.881),
    },
    ("ettm1", "M", 720): {
        "SegRNN L=96": (0.454, 0.443),
        "SegRNN": (0.410, 0.430),
        "PatchTST/42": (0.420, 0.424),
        "DLinear": (0.425, 0.421),
        "GRU (SegRNN paper)": (1.173, 0.858),
    },
    ("etth1", "S", 96): {"NLinear": (0.053, 0.177), "DLinear": (0.056, 0.180)},
    # no MS numbers in published_results.md: the S ones score the same OT windows
    ("etth1", "MS", 96): {"NLinear (S)": (0.053, 0.177), "DLinear (S)": (0.056, 0.180)},
    ("etth1", "S", 192): {"NLinear": (0.069, 0.204), "DLinear": (0.071, 0.204)},
    ("etth1", "S", 336): {"NLinear": (0.081, 0.226), "DLinear": (0.098, 0.244)},
    ("etth1", "S", 720): {"NLinear": (0.080, 0.226), "DLinear": (0.189, 0.359)},
    ("ettm1", "S", 96): {"NLinear": (0.026, 0.122), "DLinear": (0.028, 0.123)},
    ("ettm1", "S", 192): {"NLinear": (0.039, 0.149), "DLinear": (0.045, 0.156)},
    ("ettm1", "S", 336): {"NLinear": (0.052, 0.172), "DLinear": (0.061, 0.182)},
    ("ettm1", "S", 720): {"NLinear": (0.073, 0.207), "DLinear": (0.080, 0.210)},
}
PUBLISHED_M4 = {
    "ES-RNN (M4 winner)": 0.440,
    "best Hourly (Doornik et al.)": 0.410,
    "sNaive": 0.627,
    "Theta": 1.006,
    "M4 RNN benchmark": 1.036,
}


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def read_m4(data: Path, test: bool) -> pl.DataFrame:
    """M4 Hourly as a long frame (id, t, y), ``t`` hourly from ``M4_START`` (the data has no
    dates); test rows continue each series' time (see :func:`run_m4`)."""
    path = data / "m4" / ("Hourly-test.csv" if test else "Hourly-train.csv.gz")
    wide = pl.read_csv(path, infer_schema_length=0)
    values = wide.drop("V1").cast(pl.Float64).to_numpy()
    present = ~np.isnan(values)
    return pl.DataFrame(
        {
            "id": np.repeat(wide["V1"].to_numpy(), present.sum(axis=1)),
            "t": np.nonzero(present)[1],
            "y": values[present],
        }
    ).with_columns((pl.lit(M4_START) + pl.duration(hours=pl.col("t"))).alias("t"))


def read_ett(data: Path, dataset: str) -> pl.DataFrame:
    frame = pl.read_csv(data / "ett" / ETT_FILES[dataset], try_parse_dates=True)
    return frame.rename({"date": "time"}).with_columns(pl.col(ETT_COLUMNS).cast(pl.Float64))


def ett_borders(dataset: str) -> tuple[int, int, int]:
    """(end of train, end of validation, end of test) rows of the standard split."""
    month = 30 * 24 * ETT_STEPS_PER_HOUR[dataset]
    return 12 * month, 16 * month, 20 * month


# --------------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------------


def make_model(task: str, horizon: int, preset: str, seed: int, **columns: Any) -> RNNForecaster:
    options = dict(PRESETS[preset])
    return RNNForecaster(**columns, horizon=horizon, random_state=seed, progress=False, **options)


def run_m4(data: Path, preset: str, seed: int, quick: bool) -> dict[str, Any]:
    train = read_m4(data, test=False)
    lengths = train.group_by("id").agg(pl.len().alias("n"))
    test = (
        read_m4(data, test=True)
        .join(lengths, on="id")
        .with_columns(pl.col("t") + pl.duration(hours=pl.col("n")))
        .drop("n")
    )
    if quick:
        keep = train["id"].unique(maintain_order=True).head(40).implode()
        train, test = train.filter(pl.col("id").is_in(keep)), test.filter(pl.col("id").is_in(keep))
    model = make_model("m4", M4_HORIZON, preset, seed, target="y", time_col="t", id_col="id")
    if quick:
        model.set_params(max_epochs=2, windows_per_epoch=2048)
    started = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    forecast = model.predict(train)
    predict_seconds = time.perf_counter() - started
    kw = {"target": "y", "time_col": "t", "id_col": "id"}

    def m4_scores(forecast: pl.DataFrame) -> tuple[float, float, float]:
        scores = evaluate(forecast, test, insample=train, m=24, metrics=["smape", "mase"], **kw)
        total = aggregate(scores)
        smape, mase = float(total["smape"].item()), float(total["mase"].item())
        return smape, mase, owa_score(smape, mase, *M4_NAIVE2)

    smape, mase, owa_value = m4_scores(forecast)
    best = with_best_blend(model)  # baseline="best"'s blend on the same fit
    best_owa = None if best is None else m4_scores(best.predict(train))[2]
    return {
        "task": "m4",
        "dataset": "M4 Hourly",
        "mode": "S",
        "horizon": M4_HORIZON,
        "n_series": int(train["id"].n_unique()),
        "smape": smape,
        "mase": mase,
        "owa": owa_value,
        "best_blend_owa": best_owa,
        "published_owa": PUBLISHED_M4,
        **_fit_facts(model, fit_seconds, predict_seconds),
    }


def run_ett(
    data: Path, dataset: str, mode: str, horizon: int, preset: str, seed: int, quick: bool
) -> dict[str, Any]:
    frame = read_ett(data, dataset)
    train_end, val_end, test_end = ett_borders(dataset)
    targets = ETT_COLUMNS if mode == "M" else ["OT"]
    covariates = ETT_LOADS if mode == "MS" else []
    frame = frame.head(test_end).select("time", *targets, *covariates)
    train_rows = frame.head(train_end)
    mean = {c: float(train_rows[c].mean()) for c in targets}
    std = {c: float(train_rows[c].std(ddof=0)) for c in targets}
    columns: dict[str, Any] = {"target": targets, "time_col": "time"}
    if covariates:
        columns["covariates"] = covariates
    model = make_model(dataset, horizon, preset, seed, **columns)
    model.set_params(validation_size=val_end - train_end)
    if quick:
        model.set_params(max_epochs=2, windows_per_epoch=1024)
    # fit sees the training and validation rows only: the test rows cannot influence it
    started = time.perf_counter()
    model.fit(frame.head(val_end))
    fit_seconds = time.perf_counter() - started
    n_test = test_end - val_end
    started = time.perf_counter()
    result = backtest(model, frame, folds=n_test - horizon + 1, step=1, metrics=["mse", "mae"])
    predict_seconds = time.perf_counter() - started
    forecasts = result.forecasts
    if forecasts["cutoff"].min() != frame["time"][val_end - 1]:
        raise RuntimeError("the first test origin is not the last validation row")
    mse, mae = _z_errors(forecasts, targets, std)
    best = with_best_blend(model)  # baseline="best"'s blend on the same fit
    best_errors = (None, None)
    if best is not None:
        folds = n_test - horizon + 1
        again = backtest(best, frame, folds=folds, step=1, metrics=["mse", "mae"])
        best_errors = _z_errors(again.forecasts, targets, std)
    published = PUBLISHED_ETT.get((dataset, mode, horizon), {})
    naive_mse, naive_mae = seasonal_naive_errors(frame, targets, mean, std, horizon, dataset)
    return {
        "task": dataset,
        "dataset": {"etth1": "ETTh1", "ettm1": "ETTm1"}[dataset],
        "mode": mode,
        "horizon": horizon,
        "test_windows": int(forecasts["fold"].n_unique()),
        "mse": mse,
        "mae": mae,
        "best_blend_mse": best_errors[0],
        "best_blend_mae": best_errors[1],
        "seasonal_naive_mse": naive_mse,
        "seasonal_naive_mae": naive_mae,
        "published": {k: list(v) for k, v in published.items()},
        **_fit_facts(model, fit_seconds, predict_seconds),
    }


def _z_errors(
    forecasts: pl.DataFrame, targets: list[str], std: dict[str, float]
) -> tuple[float, float]:
    """MSE and MAE of all test windows, steps and channels on the train z-scale."""
    errors = forecasts.select(
        ((pl.col(c) - pl.col(f"{c}_actual")) / std[c]).cast(pl.Float64).alias(c) for c in targets
    )
    squared = errors.select(pl.col(targets).pow(2).mean()).row(0)
    absolute = errors.select(pl.col(targets).abs().mean()).row(0)
    return float(np.mean(squared)), float(np.mean(absolute))


def seasonal_naive_errors(
    frame: pl.DataFrame,
    targets: list[str],
    mean: dict[str, float],
    std: dict[str, float],
    horizon: int,
    dataset: str,
) -> tuple[float, float]:
    """Repeat the last day: z-scale MSE / MAE over the same stride-1 test windows."""
    _, val_end, test_end = ett_borders(dataset)
    period = 24 * ETT_STEPS_PER_HOUR[dataset]
    z = np.column_stack([(frame[c].to_numpy() - mean[c]) / std[c] for c in targets])
    origins = np.arange(val_end - 1, test_end - horizon)  # last observed row of each window
    steps = np.arange(1, horizon + 1)
    source = origins[:, None] - period + 1 + (steps[None, :] - 1) % period
    error = z[source] - z[origins[:, None] + steps[None, :]]
    return float(np.mean(error**2)), float(np.mean(np.abs(error)))


def _fit_facts(model: RNNForecaster, fit_seconds: float, predict_seconds: float) -> dict[str, Any]:
    history = model.history_
    best = min(
        (r for r in history if r["val_loss"] is not None),
        key=lambda r: r["val_loss"],
        default=None,
    )
    options = {
        k: v
        for k, v in model.get_params().items()
        if k not in ("target", "time_col", "id_col", "covariates", "progress", "device")
    }
    defaults = RNNForecaster().get_params()
    changed = {k: v for k, v in options.items() if defaults.get(k) != v}
    return {
        "lookback": int(model.lookback_),
        "target_transform": model.target_transform_,  # "auto" resolved on the data
        "linear_skip": bool(model.network_.linear_skip),
        "segment_length": int(model.network_.segment_length),  # "auto" resolved (lookback)
        "options": changed,
        "fit_seconds": round(fit_seconds, 1),
        "predict_seconds": round(predict_seconds, 1),
        "epochs": len(history),
        "epoch_seconds": [round(r["seconds"], 1) for r in history],
        "training_seconds": round(sum(r["seconds"] for r in history), 1),
        "best_epoch": None if best is None else best["epoch"],
        # the fit's own validation loss (the scaled training loss on the hold-out): what a
        # choice between configurations may use; the test scores may not
        "best_val_loss": None if best is None else best["val_loss"],
        "ema_decay": model.ema_decay_,  # ema_decay="auto" resolved (steps per epoch)
        "device": resolve_device(model.device).type,
        # the fit's validation losses per epoch: what another patience would have stopped at
        "val_losses": [r["val_loss"] for r in history],
        # the check against the baselines on the validation windows and the blend it chose
        "baseline": model.validation_baselines_,
    }


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "forecaster": forecaster.__version__,
        "torch": torch.__version__,
        "polars": pl.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def row_key(row: dict[str, Any]) -> tuple:
    return (
        row["task"],
        row["mode"],
        row["horizon"],
        row["preset"],
        row.get("device", "cpu"),
        row.get("seed", 0),
    )


def merge(path: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    old = json.loads(path.read_text()) if path.exists() else []
    keys = {row_key(r) for r in rows}
    merged = [r for r in old if row_key(r) not in keys] + rows
    merged.sort(
        key=lambda r: (
            r["task"] != "m4",
            r["task"],
            r["mode"],
            r["preset"],
            r["horizon"],
            r.get("seed", 0),
        )
    )
    write_result(path, json.dumps(merged, indent=2))
    return merged


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["## M4 Hourly (414 series, h = 48)", ""]
    lines += [
        "| preset | seed | lookback | options | sMAPE | MASE | OWA | published OWA | fit (s) "
        "| other CPUs | device | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in rows if r["task"] == "m4"):
        published = ", ".join(f"{k} {v:.3f}" for k, v in r["published_owa"].items())
        lines.append(
            f"| {r['preset']} | {r.get('seed', 0)} | {r['lookback']} | {_options(r)} "
            f"| {r['smape']:.3f} | {r['mase']:.3f} | **{r['owa']:.3f}** | {published} "
            f"| {r['fit_seconds']:.0f} | {_load(r)} | {r['device']} | `{r['command']}` |"
        )
    lines += ["", "## ETTh1 / ETTm1 (MSE / MAE on the train z-scale, all stride-1 test windows)"]
    lines += [
        "",
        "| data | mode | H | preset: options | seed | lookback | ours | seasonal naive "
        "| published | fit (s) | other CPUs | epochs (best) | device | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in rows if r["task"] != "m4"):
        published = ", ".join(f"{k} {v[0]:.3f}/{v[1]:.3f}" for k, v in r["published"].items())
        lines.append(
            f"| {r['dataset']} | {r['mode']} | {r['horizon']} | {r['preset']}: {_options(r)} "
            f"| {r.get('seed', 0)} | {r['lookback']} "
            f"| **{r['mse']:.3f}**/{r['mae']:.3f} | {r['seasonal_naive_mse']:.3f}/"
            f"{r['seasonal_naive_mae']:.3f} | {published} | {r['fit_seconds']:.0f} | "
            f"{_load(r)} | {r['epochs']} ({r['best_epoch']}) | {r['device']} "
            f"| `{r['command']}` |"
        )
    return "\n".join(lines + seed_spread(rows)) + "\n"


def _load(row: dict[str, Any]) -> str:
    """Other processes' CPU use during the row's fit and test forecast ("?" for old rows)."""
    other = row.get("other_cpus")
    if other is None:
        return "?"
    return f"{other:.2f} (idle)" if other < IDLE_CPUS else f"{other:.2f} (loaded)"


def seed_spread(rows: list[dict[str, Any]]) -> list[str]:
    """Mean, standard deviation and range over seeds for every configuration run with 2+ seeds."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(row_key(r)[:-1], []).append(r)
    lines = []
    for key, group in groups.items():
        if len(group) < 2:
            continue
        metric = "owa" if key[0] == "m4" else "mse"
        values = np.array([r[metric] for r in group])
        fits = np.array([r["fit_seconds"] for r in group])
        lines.append(
            f"| {group[0]['dataset']} | {key[1]} | {key[2]} | {key[3]} | {metric.upper()} "
            f"| {sorted(r.get('seed', 0) for r in group)} | {values.mean():#.3g} "
            f"| {values.std(ddof=1):.2g} | {values.min():#.3g}-{values.max():#.3g} "
            f"| {fits.mean():.0f} |"
        )
    if not lines:
        return []
    header = [
        "",
        "## Seed spread (configurations run with two or more seeds)",
        "",
        "| data | mode | H | preset | metric | seeds | mean | std | range | mean fit (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    return header + lines


def _options(row: dict[str, Any]) -> str:
    protocol = ("random_state", "horizon", "validation_size")  # a preset's lookback is shown
    shown = {k: v for k, v in row["options"].items() if k not in protocol}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "defaults"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=["m4", "etth1", "ettm1"])
    parser.add_argument("--mode", choices=["M", "S", "MS"], default="M")
    parser.add_argument("--horizons", default="96,192,336,720")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="smoke run (2 short epochs)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python benchmarks/bench_accuracy.py " + " ".join(argv or sys.argv[1:])
    facts = machine()
    rows = []
    horizons = [M4_HORIZON] if args.task == "m4" else [int(h) for h in args.horizons.split(",")]
    for horizon in horizons:
        with Timed() as load:
            if args.task == "m4":
                row = run_m4(args.data, args.preset, args.seed, args.quick)
            else:
                row = run_ett(
                    args.data, args.task, args.mode, horizon, args.preset, args.seed, args.quick
                )
        row.update(preset=args.preset, seed=args.seed, command=command, machine=facts)
        row.update(other_cpus=load.other_cpus)
        rows.append(row)
        shown = {k: row[k] for k in ("mse", "mae", "seasonal_naive_mse", "owa") if k in row}
        print(
            f"{row['dataset']} {row['mode']} H={horizon} {args.preset}: "
            + " ".join(f"{k}={v:.4f}" for k, v in shown.items())
            + f" fit {row['fit_seconds']:.0f}s epochs {row['epochs']} (best {row['best_epoch']})",
            flush=True,
        )
        args.out.mkdir(parents=True, exist_ok=True)
        name = "accuracy_quick" if args.quick else "accuracy"
        merged = merge(args.out / f"{name}.json", [row])
        write_result(args.out / f"{name}.md", markdown(merged))


if __name__ == "__main__":
    main()

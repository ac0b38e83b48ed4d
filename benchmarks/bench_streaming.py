"""Streaming speed: ``state.update(rows)`` + ``state.forecast()`` against ``predict``.

Setup: ``--series`` (100) hourly series with ``--history`` (2,000) steps each, the default
``RNNForecaster`` network (segment GRU, hidden 128, horizon 24, ``segment_length=24``: the
recorded results predate ``"auto"``, which picks 48 at 720) at each ``--lookbacks`` (96 and
720), trained briefly (1 epoch of 2,048 windows: accuracy is not the point). Then ``--updates``
(50) live steps: each brings one new row per series, and three methods give the next horizon
of every series:

``stream``
    ``state.update(new_rows)`` then ``state.forecast()`` (timed apart: the update's cost is the
    new rows only; the forecast reruns the cell over the window's lookback / 24 segments).
``predict (full history)``
    ``model.predict(history)`` on the whole history so far, the call a stream replaces.
``predict (last lookback rows)``
    ``model.predict(tail)`` on only the rows the forecast reads, a stronger reference that a
    user must trim by hand.

The stream's forecasts are checked against ``predict`` at every update (largest absolute
difference). Rows are medians over the updates; throughput is series-updates per second
(rows in, forecasts out). Every timed block records the other processes' CPU load
(``other_cpus``); on a shared 2-core machine a value well above 0 means the timings are
contended.

Run (from the repository root)::

    .venv/bin/python benchmarks/bench_streaming.py            # 100 series, L = 96 and 720
    .venv/bin/python benchmarks/bench_streaming.py --quick    # smoke run, seconds

Writes ``<out>/streaming[_quick].json`` (every number, machine info) and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from _machine import Timed, machine_info, wait_for_idle, write_result

from forecaster import RNNForecaster
from forecaster.nn.streaming import SegmentStream

HORIZON = 24
RESULTS = Path(__file__).parent / "results"


def make_frame(n_series: int, n_steps: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)
    phase = rng.uniform(0, 24, n_series)[:, None]
    level = rng.uniform(5, 50, n_series)[:, None]
    values = level + np.sin(2 * np.pi * (t[None, :] + phase) / 24) * level / 5
    values += rng.normal(0, 0.1, (n_series, n_steps)).cumsum(axis=1) * level / 50
    start = dt.datetime(2020, 1, 1)
    times = pl.datetime_range(start, start + dt.timedelta(hours=n_steps - 1), "1h", eager=True)
    return pl.DataFrame(
        {
            "id": np.repeat([f"s{i:04d}" for i in range(n_series)], n_steps),
            "time": pl.concat([times] * n_series),
            "y": values.ravel(),
        }
    )


def summary(blocks: list[Timed], n_series: int) -> dict[str, Any]:
    seconds = [b.seconds for b in blocks]
    load = [b.other_cpus for b in blocks if b.other_cpus is not None]
    median = statistics.median(seconds)
    return {
        "median_ms": round(median * 1e3, 3),
        "p90_ms": round(float(np.quantile(seconds, 0.9)) * 1e3, 3),
        "series_per_s": round(n_series / median, 1),
        "other_cpus_mean": round(statistics.fmean(load), 3) if load else None,
        "other_cpus_max": round(max(load), 3) if load else None,
    }


def network_rows(model: RNNForecaster, args: argparse.Namespace) -> dict[str, Any]:
    """Network level, without the frames: ``SegmentStream.update`` (one value per series) and
    ``forecast`` against the network's forward pass on the same windows (best of the repeats,
    the least contended)."""
    net = model.network_.eval()
    lookback, n = int(model.lookback_), args.series
    rng = np.random.default_rng(0)
    state = SegmentStream(net, rng.normal(size=(n, lookback, 1)))
    windows = torch.from_numpy(rng.normal(size=(n, lookback, 1))).float()
    blocks: dict[str, list[Timed]] = {"update": [], "forecast": [], "forward": []}
    series = np.arange(n)
    for _ in range(args.updates):
        with Timed() as t_update:
            state.update(series, rng.normal(size=(n, 1)))
        with Timed() as t_forecast:
            state.forecast()
        with torch.no_grad(), Timed() as t_forward:
            net(windows)
        for name, block in zip(blocks, (t_update, t_forecast, t_forward), strict=True):
            blocks[name].append(block)
    best = {name: min(b.seconds for b in bs) for name, bs in blocks.items()}
    return {name: round(value * 1e3, 3) for name, value in best.items()}


def run_lookback(frame: pl.DataFrame, lookback: int, args: argparse.Namespace) -> dict[str, Any]:
    model = RNNForecaster(
        target="y",
        id_col="id",
        lookback=lookback,
        horizon=HORIZON,
        segment_length=24,
        max_epochs=1,
        windows_per_epoch=2048,
        random_state=0,
        progress=False,
        device="cpu",
    ).fit(frame.filter(pl.col("time") < frame["time"].min() + dt.timedelta(hours=args.history)))
    times = frame["time"].unique().sort()
    start = times[args.history]
    state = model.stream(frame.filter(pl.col("time") < start))
    state.forecast()  # warm-up, untimed
    model.predict(frame.filter(pl.col("time") < start))
    blocks: dict[str, list[Timed]] = {"update": [], "forecast": [], "full": [], "tail": []}
    worst = 0.0
    idle = wait_for_idle(args.wait_idle, threshold=0.3)
    embedded = []
    for k in range(args.updates):
        now = times[args.history + k]
        rows = frame.filter(pl.col("time") == now)
        history = frame.filter(pl.col("time") <= now)
        tail = frame.filter(pl.col("time") > times[args.history + k - lookback])
        before = state.steps_embedded
        with Timed() as t_update:
            state.update(rows)
        embedded.append(state.steps_embedded - before)
        with Timed() as t_forecast:
            got = state.forecast()
        with Timed() as t_full:
            expected = model.predict(history)
        with Timed() as t_tail:
            model.predict(tail)
        for name, block in zip(blocks, (t_update, t_forecast, t_full, t_tail), strict=True):
            blocks[name].append(block)
        worst = max(worst, float((got["y"] - expected["y"]).abs().max()))
    both = [
        _sum(u, f) for u, f in zip(blocks["update"], blocks["forecast"], strict=True)
    ]  # update + forecast
    n = args.series
    rows = {
        "stream update": summary(blocks["update"], n),
        "stream forecast": summary(blocks["forecast"], n),
        "stream update + forecast": summary(both, n),
        "predict (full history)": summary(blocks["full"], n),
        "predict (last lookback rows)": summary(blocks["tail"], n),
    }
    ref = rows["stream update + forecast"]["median_ms"]
    for row in rows.values():
        row["x_stream"] = round(row["median_ms"] / ref, 2)
    return {
        "lookback": lookback,
        "rows": rows,
        "network_best_ms": network_rows(model, args),
        "max_abs_diff_vs_predict": worst,
        "steps_embedded_per_update": sorted(set(embedded)),
        "wait_for_idle": idle,
    }


def _sum(a: Timed, b: Timed) -> Timed:
    out = Timed()
    out.seconds = a.seconds + b.seconds
    loads = [x for x in (a.other_cpus, b.other_cpus) if x is not None]
    out.other_cpus = max(loads) if loads else None
    return out


def markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [
        f"Streaming: {cfg['series']} hourly series, history {cfg['history']} steps, "
        f"{cfg['updates']} live updates of one row per series, default segment GRU (hidden "
        f"128, H = {HORIZON}), CPU, torch threads {report['machine']['torch_threads']}.",
        "",
        "| lookback | method | median ms / update | p90 ms | series / s | x stream "
        "| other CPUs (mean / max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for res in report["results"]:
        for name, row in res["rows"].items():
            lines.append(
                f"| {res['lookback']} | {name} | {row['median_ms']} | {row['p90_ms']} | "
                f"{row['series_per_s']} | {row['x_stream']} | {row['other_cpus_mean']} / "
                f"{row['other_cpus_max']} |"
            )
    lines.append("")
    for res in report["results"]:
        lines.append(
            f"L = {res['lookback']}: largest |stream - predict| over every update "
            f"{res['max_abs_diff_vs_predict']:.3g}; segment projections computed per update "
            f"{res['steps_embedded_per_update']} (one per new row, whatever the lookback)."
        )
    lines.append("")
    lines.append(
        "Network level (no frames; best of the updates, ms): "
        + "; ".join(
            f"L = {res['lookback']}: SegmentStream.update {res['network_best_ms']['update']}, "
            f"forecast {res['network_best_ms']['forecast']}, network forward on the windows "
            f"{res['network_best_ms']['forward']}"
            for res in report["results"]
        )
        + "."
    )
    m = report["machine"]
    lines += [
        "",
        f"Measured {m['date']} on {m.get('cpu_model', '?')} ({m['cpu_count']} CPUs), Python "
        f"{m['python']}, numpy {m['numpy']}, polars {m['polars']}, torch {m['torch']}. "
        "Reproduce: `python benchmarks/bench_streaming.py`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--history", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=50)
    parser.add_argument("--lookbacks", default="96,720")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    parser.add_argument("--wait-idle", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 series, 5 updates")
    args = parser.parse_args(argv)
    if args.quick:
        args.series, args.history, args.updates, args.wait_idle = 10, 800, 5, 0.0
        args.lookbacks = "48,192"
    if args.threads:
        torch.set_num_threads(args.threads)
    frame = make_frame(args.series, args.history + args.updates)
    lookbacks = [int(v) for v in args.lookbacks.split(",")]
    results = [run_lookback(frame, lookback, args) for lookback in lookbacks]
    report = {
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "machine": machine_info(),
        "results": results,
    }
    report["config"]["out"] = str(args.out)
    name = "streaming" + ("_quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    write_result(args.out / f"{name}.json", json.dumps(report, indent=2, default=str) + "\n")
    write_result(args.out / f"{name}.md", markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()

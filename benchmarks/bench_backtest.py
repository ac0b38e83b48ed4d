"""Backtest speed: batched rolling-origin forecasts against one ``predict`` call per origin.

Setup: ``--series`` (100) hourly series, ``--origins`` (50) forecast origins spaced one horizon
apart, the default ``RNNForecaster`` network (segment GRU, hidden 128, lookback 96, horizon 24)
trained briefly (1 epoch of 2,048 windows: the model's accuracy is not the point) on the first
fold's training span. Both methods then use the same fitted model, without refits:

``batched``
    ``forecaster.evaluation.backtest(model, frame, folds=origins)``: one Panel, every
    (series, origin) input window gathered by index and run through the network in large
    batches (:func:`forecaster.estimators.origins.chunk_size`: all 5,000 windows in one call
    here), plus the forecast frame and the metric frames (by fold and series, by step,
    total).
``per-origin``
    ``model.predict(frame, cutoff=c)`` for each of the origins (forecasts only, no metrics).

Both produce the same forecasts (checked: largest absolute difference and the count of
bit-identical values; the network's own forecasts, below, can differ by float32 rounding
where the batch size changes its sums).

The model's default ``baseline="auto"`` blends this one-epoch network with the seasonal naive
forecast, here at network weight 0: the forecasts are the seasonal naive's, and neither method
runs the network at all (a blend that weighs it by 0 skips its forward), so the default rows
time the data preparation, the blend's partner and (batched) the scores. Two more rows (skip
them with ``--no-variant``) time both methods for the same model fitted with
``baseline="none"``, whose forecasts are the network's own: the path a user's backtest of a
network that beats the baselines runs, the same code plus the network's forward (the "network
forward only" rows: its floor).

Rows are medians of ``--repeats`` runs, alternating the two methods.
The other processes' CPU load during each timed block is recorded (``other_cpus``); on this
2-core machine a value well above 0 means the timings are contended. This process's CPU
seconds (``cpu_seconds``, all its threads) are recorded too.

Target: batched >= 10x faster than per-origin.

Run (from the repository root)::

    .venv/bin/python benchmarks/bench_backtest.py            # 100 series x 50 origins
    .venv/bin/python benchmarks/bench_backtest.py --quick    # smoke run, a few seconds

Writes ``<out>/backtest[_quick][_cuda].json`` (every number, machine info) and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from _machine import Timed, machine_info, wait_for_idle, write_result

from forecaster import RNNForecaster
from forecaster.evaluation.backtest import backtest

LOOKBACK = 96
HORIZON = 24
TARGET_SPEEDUP = 10.0


def make_frame(n_series: int, n_steps: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)
    phase = rng.uniform(0, 24, n_series)[:, None]
    level = rng.uniform(5, 50, n_series)[:, None]
    values = level + np.sin(2 * np.pi * (t[None, :] + phase) / 24) * level / 5
    values += rng.normal(0, 0.1, (n_series, n_steps)) * level / 5
    start = dt.datetime(2020, 1, 1)
    times = pl.datetime_range(start, start + dt.timedelta(hours=n_steps - 1), "1h", eager=True)
    return pl.DataFrame(
        {
            "id": np.repeat([f"s{i:04d}" for i in range(n_series)], n_steps),
            "time": pl.concat([times] * n_series),
            "y": values.ravel(),
        }
    )


def per_origin(model: RNNForecaster, frame: pl.DataFrame, cutoffs: list[Any]) -> pl.DataFrame:
    return pl.concat(
        [model.predict(frame, cutoff=c).with_columns(cutoff=pl.lit(c)) for c in cutoffs]
    )


def fitted_model(
    frame: pl.DataFrame, args: argparse.Namespace, *, baseline: str
) -> tuple[RNNForecaster, list[Any]]:
    """The benchmark's model (``baseline``: its blend with the naive forecasts), fitted by a
    first backtest on fold 0's training span, and the backtest's cutoffs."""
    model = RNNForecaster(
        target="y",
        id_col="id",
        lookback=LOOKBACK,
        horizon=HORIZON,
        max_epochs=1,
        windows_per_epoch=2048,
        random_state=0,
        progress=False,
        device=args.device,
        baseline=baseline,
    )
    first = backtest(model, frame, folds=args.origins)  # fits a clone on fold 0's span
    cutoffs = first.folds["cutoff"].unique().sort().to_list()
    assert len(cutoffs) == args.origins
    return first.estimators[0], cutoffs


def same_forecasts(
    result: Any, reference: pl.DataFrame, args: argparse.Namespace
) -> dict[str, Any]:
    """Check that the batched and per-origin forecasts agree; their largest difference and
    the count of bit-identical values."""
    joined = result.forecasts.join(
        reference.rename({"y": "y_ref"}), on=["cutoff", "id", "time"], how="inner"
    )
    assert joined.height == result.forecasts.height == args.series * args.origins * HORIZON
    got, ref = joined["y"].to_numpy(), joined["y_ref"].to_numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * float(np.abs(ref).max()))
    return {
        "forecasts": int(joined.height),
        "max_abs_diff": float(np.abs(got - ref).max()),
        "bit_identical": int((got == ref).sum()),
        "max_abs_value": float(np.abs(ref).max()),
    }


def baseline_none(frame: pl.DataFrame, args: argparse.Namespace) -> dict[str, Any]:
    """The two methods for a model fitted with ``baseline="none"``: its forecasts are the
    network's own (the default ``"auto"`` blends this one-epoch network at weight 0 with the
    seasonal naive forecast), timed as the main rows, repeats alternating."""
    fitted, cutoffs = fitted_model(frame, args, baseline="none")
    backtest(fitted, frame, folds=args.origins)  # warm-up, untimed
    runs: dict[str, list[dict[str, Any]]] = {"batched": [], "per_origin": []}
    result = reference = None
    for _ in range(args.repeats):
        wait_for_idle(args.wait_idle, threshold=0.3)
        result, reference = timed_pair(fitted, frame, cutoffs, args, runs)
    speedups = pair_speedups(runs)
    return {
        "network_weights": network_weights(fitted),
        "batched_s": statistics.median(r["seconds"] for r in runs["batched"]),
        "per_origin_s": statistics.median(r["seconds"] for r in runs["per_origin"]),
        "speedup": statistics.median(speedups),
        "speedups": speedups,
        "runs": runs,
        "check": same_forecasts(result, reference, args),
    }


def network_weights(fitted: RNNForecaster) -> list[float] | None:
    """The fitted blend's weight of the network per target (``baseline_.network``; None: the
    network's forecasts alone). At 0 for every target the forecasts are the partner's alone
    and ``predict`` does not run the network."""
    blend = fitted.baseline_
    return None if blend is None else list(blend.network)


def timed_pair(
    fitted: Any,
    frame: pl.DataFrame,
    cutoffs: list[Any],
    args: argparse.Namespace,
    runs: dict[str, list[dict[str, Any]]],
) -> tuple[Any, pl.DataFrame]:
    """One repeat: the batched backtest, then one ``predict`` per origin, each timed into
    ``runs`` (``"batched"``, ``"per_origin"``); their results, for the forecasts' check."""
    with Timed() as t_batched:
        result = backtest(fitted, frame, folds=args.origins)
    runs["batched"].append(_record(t_batched))
    with Timed() as t_ref:
        reference = per_origin(fitted, frame, cutoffs)
    runs["per_origin"].append(_record(t_ref))
    return result, reference


def pair_speedups(runs: dict[str, list[dict[str, Any]]]) -> list[float]:
    """Each repeat's per-origin time over its batched time."""
    return [
        r["seconds"] / b["seconds"]
        for b, r in zip(runs["batched"], runs["per_origin"], strict=True)
    ]


def _record(timed: Timed) -> dict[str, Any]:
    """A timed block's wall seconds, the other processes' CPU load meanwhile and this
    process's CPU seconds (all its threads): under contention the CPU seconds move less
    than the wall time."""
    return {
        "seconds": timed.seconds,
        "other_cpus": timed.other_cpus,
        "cpu_seconds": round(time.process_time() - timed.p0, 4),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    n_steps = args.steps or LOOKBACK + HORIZON + (args.origins - 1) * HORIZON + 200
    frame = make_frame(args.series, n_steps)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    fitted, cutoffs = fitted_model(frame, args, baseline="auto")
    fit_and_first_s = time.perf_counter() - t0

    # warm-up of both paths (allocations, kernels), untimed
    backtest(fitted, frame, folds=args.origins)
    per_origin(fitted, frame, cutoffs[:2])

    # The network alone on inputs of the same shapes: the compute neither method can avoid
    # (all windows in one call, as the batched path runs them, or one call per origin).
    network = fitted.network_.eval()
    inputs = torch.randn(args.series * args.origins, LOOKBACK, 1)

    def network_batched() -> None:
        with torch.inference_mode():
            network(inputs)

    def network_per_origin() -> None:
        with torch.inference_mode():
            for lo in range(0, len(inputs), args.series):
                network(inputs[lo : lo + args.series])

    network_batched()
    network_per_origin()

    runs: dict[str, list[dict[str, Any]]] = {
        "batched": [],
        "per_origin": [],
        "network_batched": [],
        "network_per_origin": [],
    }
    result = reference = None
    idle = []
    for _ in range(args.repeats):
        idle.append(wait_for_idle(args.wait_idle, threshold=0.3))
        result, reference = timed_pair(fitted, frame, cutoffs, args, runs)
        for name, fn in (
            ("network_batched", network_batched),
            ("network_per_origin", network_per_origin),
        ):
            with Timed() as t_net:
                fn()
            runs[name].append(_record(t_net))

    check = same_forecasts(result, reference, args)
    variant = baseline_none(frame, args) if args.variant else None
    network_batched_s = statistics.median(r["seconds"] for r in runs["network_batched"])
    if variant is not None:  # its forecasts need the forward: the bound that binds
        variant["speedup_bound"] = variant["per_origin_s"] / network_batched_s

    batched_s = statistics.median(r["seconds"] for r in runs["batched"])
    reference_s = statistics.median(r["seconds"] for r in runs["per_origin"])
    speedups = pair_speedups(runs)
    speedup = statistics.median(speedups)
    windows = args.series * args.origins
    return {
        "benchmark": "backtest",
        "config": {
            "series": args.series,
            "origins": args.origins,
            "steps_per_series": n_steps,
            "lookback": LOOKBACK,
            "horizon": HORIZON,
            "step": HORIZON,
            "model": "RNNForecaster defaults (segment GRU, hidden 128), 1 epoch x 2048 windows",
            "device": args.device,
            "repeats": args.repeats,
        },
        "fit_and_first_backtest_s": fit_and_first_s,
        "network_weights": network_weights(fitted),
        "batched_s": batched_s,
        "per_origin_s": reference_s,
        "speedup": speedup,
        "speedups": speedups,
        "network_batched_s": network_batched_s,
        "network_per_origin_s": statistics.median(r["seconds"] for r in runs["network_per_origin"]),
        "speedup_bound": reference_s / network_batched_s,
        "batched_cpu_s": statistics.median(r["cpu_seconds"] for r in runs["batched"]),
        "per_origin_cpu_s": statistics.median(r["cpu_seconds"] for r in runs["per_origin"]),
        "batched_windows_per_s": windows / batched_s,
        "per_origin_windows_per_s": windows / reference_s,
        "runs": runs,
        "wait_for_idle": idle,
        "check": check,
        "baseline_none": variant,
        "loadavg": {"before": load_before, "after": os.getloadavg()},
        "target_speedup": TARGET_SPEEDUP,
        "passed": speedup >= TARGET_SPEEDUP,
        "machine": machine_info(),
    }


def _variant_rows(report: dict[str, Any]) -> list[str]:
    """The table rows of the ``baseline="none"`` model (none when it was not run)."""
    variant = report.get("baseline_none")
    if not variant:
        return []
    c, windows = report["config"], report["config"]["series"] * report["config"]["origins"]
    check = variant["check"]

    def cpu(name: str) -> str:
        return f"{statistics.median(r['cpu_seconds'] for r in variant['runs'][name]):.3f} s"

    return [
        f'| `baseline="none"` model: `predict(frame, cutoff=c)` once per origin | '
        f"{variant['per_origin_s']:.2f} s | {cpu('per_origin')} | "
        f"{windows / variant['per_origin_s']:,.0f} | "
        "1.0x |",
        f'| `baseline="none"` model: `backtest(model, frame, folds={c["origins"]})`, '
        f"batched | {variant['batched_s']:.3f} s | {cpu('batched')} | "
        f"{windows / variant['batched_s']:,.0f} | "
        f"**{variant['speedup']:.1f}x** (same forecasts: {check['bit_identical']:,} of "
        f"{check['forecasts']:,} bit-identical) |",
    ]


def _verdict(speedup: float, target: float) -> str:
    return f"{'PASS' if speedup >= target else 'FAIL'} ({speedup:.1f}x)"


def _network_note(report: dict[str, Any]) -> str:
    """Which rows run the network, and the speedup its forward alone allows batching."""
    weights = report.get("network_weights")
    skipped = weights is not None and all(w == 0 for w in weights)
    variant = report.get("baseline_none")
    default = (
        f"The default model's blend weighs its network by {weights} (per target): its "
        "forecasts are the seasonal naive's and neither of its methods runs the network. "
        if skipped
        else f"The default model's blend weighs its network by {weights}: both methods run it. "
    )
    if variant and "speedup_bound" in variant:
        return default + (
            "The `baseline=\"none\"` model's forecasts are the network's: its rows run the same "
            "code plus the forward, so even with no data preparation or metrics at all its "
            f"batched backtest could be at most {variant['speedup_bound']:.1f}x faster than its "
            "per-origin loop here (per-origin time / the forward of all windows at once)."
        )
    return default + (
        "With no data preparation or metrics at all, a model whose forecasts run the network "
        f"could be batched at most {report['speedup_bound']:.1f}x faster here (the per-origin "
        "time above / the forward of all windows at once)."
    )


def render_markdown(report: dict[str, Any], command: str) -> str:
    c = report["config"]
    check = report["check"]
    contention = max((r["other_cpus"] or 0.0) for rs in report["runs"].values() for r in rs)
    note = "idle machine" if contention <= 0.25 else "**contended: rerun on an idle machine**"

    def cpu(name: str) -> str:  # median CPU seconds of this process (all threads)
        seconds = [r["cpu_seconds"] for r in report["runs"][name] if "cpu_seconds" in r]
        return f"{statistics.median(seconds):.3f} s" if seconds else "–"

    lines = [
        f"**Backtest without refit: {c['series']} series x {c['origins']} origins** "
        f"(L={c['lookback']}, H={c['horizon']}, step {c['step']}, {c['steps_per_series']:,} "
        f"hourly steps per series; {c['model']}; device {c['device']}; medians of "
        f"{c['repeats']})",
        "",
        "| method | time | CPU time | windows/s | speedup |",
        "|---|---:|---:|---:|---:|",
        f"| `predict(frame, cutoff=c)` once per origin (forecasts only) | "
        f"{report['per_origin_s']:.2f} s | {cpu('per_origin')} | "
        f"{report['per_origin_windows_per_s']:,.0f} | 1.0x |",
        f"| `backtest(model, frame, folds={c['origins']})`, batched (forecasts + metrics) | "
        f"{report['batched_s']:.3f} s | {cpu('batched')} | "
        f"{report['batched_windows_per_s']:,.0f} | **{report['speedup']:.1f}x** |",
        *_variant_rows(report),
        f"| network forward only, one call per origin ({c['series']} windows each) | "
        f"{report['network_per_origin_s']:.3f} s | {cpu('network_per_origin')} | "
        f"{c['series'] * c['origins'] / report['network_per_origin_s']:,.0f} | – |",
        f"| network forward only, all {c['series'] * c['origins']:,} windows in one call | "
        f"{report['network_batched_s']:.3f} s | {cpu('network_batched')} | "
        f"{c['series'] * c['origins'] / report['network_batched_s']:,.0f} | – |",
        "",
        "Speedup: median over the repeats of the per-repeat ratio (the two methods run back to "
        "back in each repeat). CPU time: this process's, all threads (the part of the time "
        "other processes cannot inflate much). The last two rows are the network's compute "
        "alone on inputs of the same shapes (no data preparation).",
        "",
        _network_note(report),
        "",
        f"Same forecasts: {check['forecasts']:,} values, largest absolute difference "
        f"{check['max_abs_diff']:.2e} (values up to {check['max_abs_value']:.1f}), "
        f"{check['bit_identical']:,} bit-identical.",
        "",
        f"Target: batched >= {report['target_speedup']:.0f}x faster: "
        f"{_verdict(report['speedup'], report['target_speedup'])}"
        + (
            f', `baseline="none"` model {_verdict(variant["speedup"], report["target_speedup"])}'
            if (variant := report.get("baseline_none"))
            else ""
        )
        + f". Other processes' CPU load during the timed blocks: at most {contention:.2f} CPUs "
        f"({note}).",
        "",
        f"Measured {report['machine']['date']} on {report['machine'].get('cpu_model', '?')} "
        f"({report['machine']['cpu_count']} CPUs, torch {report['machine']['torch']}, "
        f"{report['machine']['torch_threads']} threads), polars {report['machine']['polars']}. "
        f"Reproduce: `{command}`.",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--origins", type=int, default=50)
    parser.add_argument(
        "--steps",
        type=int,
        default=0,
        help="rows per series (0: the origins' span + 200 rows before the first origin)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch intra-op threads (0: torch's default); 1 is steadier on a shared machine",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=60.0,
        help="seconds to wait, before each repeat, for other processes to go idle",
    )
    parser.add_argument(
        "--no-variant",
        dest="variant",
        action="store_false",
        help='skip the rows of a model fitted with baseline="none" (the network alone)',
    )
    parser.add_argument("--quick", action="store_true", help="10 series x 5 origins, 1 repeat")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.series, args.origins, args.repeats, args.wait_idle = 10, 5, 1, 0.0
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report = run(args)
    name = (
        "backtest" + ("_quick" if args.quick else "") + ("_cuda" if "cuda" in args.device else "")
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/bench_backtest.py" + (" --quick" if args.quick else "")
    if args.steps:
        name += f"_steps{args.steps}"
        command += f" --steps {args.steps}"
    if args.threads:
        name += f"_t{args.threads}"
        command += f" --threads {args.threads}"
    if not args.variant:
        command += " --no-variant"
    if args.device != "cpu":
        command += f" --device {args.device}"
    write_result(out / f"{name}.json", json.dumps(report, indent=2, default=str) + "\n")
    markdown = render_markdown(report, command)
    write_result(out / f"{name}.md", markdown)
    print(markdown)


if __name__ == "__main__":
    main()

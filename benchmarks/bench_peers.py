"""Peers measured in the same run: neuralforecast and darts beside forecaster and a raw loop.

Opt-in: it needs the peer environment (``benchmarks/peers/requirements.txt``), which
``make bench-peers`` creates in ``benchmarks/peers/.venv`` (never part of ``make test``).

Workloads
---------
``train``
    The standard training workload of ``bench_train.py`` (its data generator and its two
    loops are imported, not copied): 100 series x 2,000 hourly steps of a noisy daily sine,
    lookback 48, horizon 24, LSTM 2 layers x 64, batch 256, Adam lr 1e-3, MSE, 400 measured
    optimiser steps after 20 warm-up steps. Methods: the raw PyTorch loop on pre-built window
    tensors (the reference), ``LSTMForecaster`` (direct head), darts ``BlockRNNModel(model=
    "LSTM")`` and neuralforecast ``LSTM`` in their closest configuration (``TRAIN_METHODS``
    says what each ran and what could not be matched). Windows/s over the measured steps and
    its ratio to the raw loop of the same repetition, the whole fit's wall time (from the long
    Polars frame to a fitted model), peak RSS of the process.
``m4``
    M4 Hourly (414 series, h = 48, official test files), scored exactly as
    ``bench_accuracy.run_m4`` (sMAPE, MASE with m = 24, OWA against Naive2). The peers'
    recurrent models run with their documented defaults and ``input_size`` /
    ``input_chunk_length`` 192 (our lookback), each stopped by a wall-clock budget
    (Lightning's ``max_time``, checked after every step) unless their own step or epoch limit
    comes first. Without ``--m4-budget`` our row *is* ``run_m4`` with the default preset (early
    stopping decides) and the peers' budget is its fit time in the same run; with
    ``--m4-budget S`` every method, ours included (``max_time=S``, checked after every epoch),
    gets S seconds.

Every method runs in a fresh process (``--method``), the methods interleaved within each
repetition, with ``torch.set_num_threads(--threads)``. Each child waits (at most
``--wait-idle`` s) for the rest of the machine to go idle and records what other processes used
during its timed block (``other_cpus``, ``benchmarks/_machine.py``); a row with other_cpus
above 0.25 is marked contended (as bench_windows).

Run from the repository root::

    make bench-peers                                   # both workloads, full size
    make bench-peers PEERS_ARGS="--quick"              # smoke run (a few minutes)
    benchmarks/peers/.venv/bin/python benchmarks/bench_peers.py --workload m4 --m4-budget 180

Results: ``benchmarks/results/peers.{json,md}`` (``peers_quick.*`` for ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# bench_accuracy's default, without importing it (it imports forecaster, which the raw loop's
# process must not, so that its peak RSS is the loop's own)
DEFAULT_DATA = Path(os.environ.get("FORECASTER_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULT_PREFIX = "PEER-RESULT "
CONTENDED = 0.25  # other processes' CPUs above which a timing is marked contended
FULL_SIZES = {"series": 100, "steps": 2000, "train_steps": 400, "repeats": 2}
TRAIN_OPTIONS = ("series", "steps", "train_steps", "repeats", "warmup", "train_methods")
M4_OPTIONS = ("m4_budget", "m4_repeats", "m4_methods")
QUICK_SIZES = {"series": 10, "steps": 500, "train_steps": 30, "repeats": 1}

TRAIN_METHODS = {
    "raw": "raw PyTorch loop (bench_train.run_raw): window tensors built once and standardised "
    "globally, nn.LSTM(1, 64, 2 layers) + Linear(64, 24) on the last hidden state, Adam 1e-3, "
    "MSE, random batches of 256 by index, after the warm-up steps",
    "ours": "forecaster LSTMForecaster.fit (bench_train.run_ours): head='direct' (Linear(64, 24) "
    "on the last hidden state), normalization='none', loss='mse', grad_clip=None, "
    "validation_size=0, windows_per_epoch = timed steps x 256, after a warm-up fit",
    "darts_blockrnn": "darts BlockRNNModel(model='LSTM', input_chunk_length=48, "
    "output_chunk_length=24, hidden_dim=64, n_rnn_layers=2, dropout=0, batch_size=256, "
    "Adam lr 1e-3 (its default), MSELoss (its default), no scaler), one fit of max_steps = "
    "warm-up + timed steps. Not matched: its forecast for step k is a Linear(64, 1) readout "
    "of the LSTM's output at input position 24 + k (darts 0.48's design), not a "
    "Linear(64, 24) on the last one; it draws batches from a shuffled epoch of all windows "
    "(ours and raw draw random windows) and builds every sample in Python (its dataset's "
    "__getitem__)",
    "nf_lstm": "neuralforecast LSTM(h=24, input_size=48, encoder_n_layers=2, "
    "encoder_hidden_size=64, decoder_layers=1, loss=MSE(), scaler_type='identity', "
    "windows_batch_size=256, learning_rate=1e-3 (its default), no lr decay (its default)), "
    "one fit of max_steps = warm-up + timed steps. Not matched: its direct (non-recurrent) "
    "forecast for step k is a linear readout (decoder_layers=1: Linear(64, 1)) of the LSTM's "
    "output at input position 24 + k, as darts, not a Linear(64, 24) on the last one; each batch "
    "samples its 256 windows from 32 series drawn per step (its default batch_size)",
}
M4_METHODS = {
    "ours": "forecaster RNNForecaster, defaults (lookback='auto': 336 here; "
    "bench_accuracy.make_model, preset 'default'): early stopping on the last 10 % of each "
    "training series; without --m4-budget the row is bench_accuracy.run_m4 itself, with it "
    "max_time = the budget",
    "nf_lstm": "neuralforecast LSTM(h=48, input_size=192), defaults otherwise (max_steps=1000, "
    "MAE loss, robust scaler, batch_size=32 series, windows_batch_size=128, no validation)",
    "nf_gru": "neuralforecast GRU(h=48, input_size=192), defaults otherwise (as nf_lstm)",
    "nf_rnn": "neuralforecast RNN(h=48, input_size=192), defaults otherwise (as nf_lstm)",
    "darts_blockrnn": "darts BlockRNNModel(model='LSTM', input_chunk_length=192, "
    "output_chunk_length=48), defaults otherwise (hidden_dim=25, 1 layer, n_epochs=100, "
    "batch_size=32, MSE), on series scaled by darts' Scaler (per-series min-max fitted on the "
    "training series, forecasts inverse-transformed)",
    "darts_rnn": "darts RNNModel(model='LSTM', input_chunk_length=192, training_length=240), "
    "defaults otherwise (hidden_dim=25, 1 layer, n_epochs=100, batch_size=32, MSE), same "
    "Scaler; forecasts the 48 steps autoregressively",
}


# --------------------------------------------------------------------------------------------
# children: one method in a fresh process
# --------------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak resident set of this process (the kernel's high-water mark), in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_config(args: argparse.Namespace) -> argparse.Namespace:
    """The namespace ``bench_train.run_raw`` / ``run_ours`` read."""
    return argparse.Namespace(
        series=args.series,
        steps=args.steps,
        lookback=48,
        horizon=24,
        hidden=64,
        layers=2,
        batch=256,
        train_steps=args.train_steps,
        warmup=args.warmup,
        device="cpu",
    )


def child_train(args: argparse.Namespace) -> dict[str, Any]:
    """Run one method of the training workload; windows/s, fit wall time, peak RSS, load."""
    import bench_train
    from _machine import Timed

    config = train_config(args)
    with Timed() as load:
        if args.method == "raw":
            result = bench_train.run_raw(config)
        elif args.method == "ours":
            result = bench_train.run_ours(config, grad_clip=None)
        else:
            from peers.models import fit_train_peer

            result = fit_train_peer(args.method, bench_train.make_frame, config)
    result.update(other_cpus=load.other_cpus, peak_rss_mb=peak_rss_mb())
    return result


def child_m4(args: argparse.Namespace) -> dict[str, Any]:
    """Fit and score one method on M4 Hourly (or its first 40 series with ``--quick``)."""
    from _machine import Timed

    with Timed() as load:
        if args.method == "ours":
            result = fit_m4_ours(args)
        else:
            from peers.models import fit_m4_peer

            result = fit_m4_peer(args.method, args.data, args.seed, args.quick, args.m4_budget)
    result.update(other_cpus=load.other_cpus, peak_rss_mb=peak_rss_mb())
    return result


def fit_m4_ours(args: argparse.Namespace) -> dict[str, Any]:
    """``bench_accuracy.run_m4`` itself; with ``--m4-budget``, the same default model and
    scoring with ``max_time`` = the budget (the peers' budget, so that all share one)."""
    import bench_accuracy

    if args.m4_budget is None:
        row = bench_accuracy.run_m4(args.data, "default", args.seed, args.quick)
        keys = ("n_series", "smape", "mase", "owa", "fit_seconds", "predict_seconds", "epochs")
        return {**{k: row[k] for k in keys}, "best_epoch": row["best_epoch"]}
    from peers.models import m4_frames, m4_scores

    train, test = m4_frames(args.data, args.quick)
    columns = {"target": "y", "time_col": "t", "id_col": "id"}
    model = bench_accuracy.make_model(
        "m4", bench_accuracy.M4_HORIZON, "default", args.seed, **columns
    )
    model.set_params(max_time=args.m4_budget)
    if args.quick:
        model.set_params(max_epochs=2, windows_per_epoch=2048)  # as run_m4's quick run
    started = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    forecast = model.predict(train)
    predict_seconds = time.perf_counter() - started
    scored = [r for r in model.history_ if r["val_loss"] is not None]
    return {
        "n_series": int(train["id"].n_unique()),
        **m4_scores(forecast, train, test),
        "fit_seconds": round(fit_seconds, 1),
        "predict_seconds": round(predict_seconds, 1),
        "epochs": len(model.history_),
        "best_epoch": min(scored, key=lambda r: r["val_loss"])["epoch"] if scored else None,
    }


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    result = child_train(args) if args.workload == "train" else child_m4(args)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --------------------------------------------------------------------------------------------
# parent: interleaved fresh processes
# --------------------------------------------------------------------------------------------


def spawn(args: argparse.Namespace, workload: str, method: str, budget: float | None) -> dict:
    """Run one method in a fresh process (after waiting for the machine to go idle)."""
    from _machine import wait_for_idle

    idle = wait_for_idle(args.wait_idle)
    cmd = [
        sys.executable,
        __file__,
        "--child",
        f"--workload={workload}",
        f"--method={method}",
        f"--series={args.series}",
        f"--steps={args.steps}",
        f"--train-steps={args.train_steps}",
        f"--warmup={args.warmup}",
        f"--threads={args.threads}",
        f"--seed={args.seed}",
        f"--data={args.data}",
    ]
    if budget is not None:
        cmd.append(f"--m4-budget={budget}")
    if args.quick:
        cmd.append("--quick")
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    lines = [x for x in out.stdout.splitlines() if x.startswith(RESULT_PREFIX)]
    if out.returncode != 0 or not lines:
        tail = "\n".join((out.stdout + out.stderr).splitlines()[-40:])
        sys.exit(f"{workload}/{method} failed (exit {out.returncode}):\n{tail}")
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    result.update(idle, process_seconds=round(time.perf_counter() - started, 1))
    result["contended"] = bool((result.get("other_cpus") or 0.0) > CONTENDED)
    return result


def run_train(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """Interleave the training methods ``--repeats`` times; ratios within each repetition."""
    runs: dict[str, list[dict]] = {m: [] for m in args.train_methods}
    summary["train"] = {
        **provenance(args),
        "runs": runs,
        "methods": {m: TRAIN_METHODS[m] for m in runs},
    }
    for rep in range(args.repeats):
        for method in args.train_methods:
            runs[method].append(spawn(args, "train", method, None))
            print(f"train rep {rep + 1} {method:15} {runs[method][-1]}", flush=True)
        for method in args.train_methods:
            raw = runs["raw"][rep]["windows_per_second"]
            runs[method][rep]["ratio_to_raw"] = runs[method][rep]["windows_per_second"] / raw
        write_results(args, summary)


def run_m4(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """Ours first (its fit time is the peers' budget unless ``--m4-budget``), then the peers."""
    runs: dict[str, list[dict]] = {m: [] for m in args.m4_methods}
    summary["m4"] = {**provenance(args), "runs": runs, "methods": {m: M4_METHODS[m] for m in runs}}
    for rep in range(args.m4_repeats):
        budget = args.m4_budget
        for method in args.m4_methods:
            runs[method].append(spawn(args, "m4", method, budget))
            if method == "ours" and budget is None:
                budget = float(np.ceil(runs["ours"][-1]["fit_seconds"]))
            print(f"m4 rep {rep + 1} {method:15} {runs[method][-1]}", flush=True)
            summary["m4"]["budget_seconds"] = budget
            write_results(args, summary)


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------


def median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{unit}"


def train_table(summary: dict[str, Any]) -> list[str]:
    train = summary["train"]
    lines = [
        "| method | windows/s (runs) | ratio to raw (median) | fit wall time | peak RSS "
        "| other CPUs (max) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method, rows in train["runs"].items():
        if not rows or "ratio_to_raw" not in rows[-1]:
            continue
        speeds = ", ".join(f"{r['windows_per_second']:,.0f}" for r in rows)
        load = max((r.get("other_cpus") or 0.0) for r in rows)
        mark = " (contended)" if any(r["contended"] for r in rows) else ""
        lines.append(
            f"| `{method}` | {speeds} | {median(rows, 'ratio_to_raw'):.2f}x "
            f"| {fmt(median(rows, 'fit_wall_seconds'), '.1f', ' s')} "
            f"| {median(rows, 'peak_rss_mb'):,.0f} MB | {load:.2f}{mark} |"
        )
    return lines


def m4_table(summary: dict[str, Any]) -> list[str]:
    lines = [
        "| method | sMAPE | MASE | OWA | fit (s) | steps / epochs | peak RSS | other CPUs |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for method, rows in summary["m4"]["runs"].items():
        for r in rows:
            trained = (
                f"{r['epochs']} epochs (best {r['best_epoch']})"
                if "epochs" in r
                else f"{r['steps']} steps, stopped by {r['stopped_by']}"
            )
            mark = " (contended)" if r["contended"] else ""
            lines.append(
                f"| `{method}` | {r['smape']:.3f} | {r['mase']:.3f} | **{r['owa']:.3f}** "
                f"| {r['fit_seconds']:.0f} | {trained} | {r['peak_rss_mb']:,.0f} MB "
                f"| {fmt(r.get('other_cpus'), '.2f')}{mark} |"
            )
    return lines


def provenance_line(section: dict[str, Any]) -> str:
    info, cfg = section["machine"], section["config"]
    return (
        f"Measured {info['date']} on {info.get('cpu_model', info['processor'])} "
        f"({info['cpu_count']} CPUs, load average {info['load_average'][0]:.1f} at the start), "
        f"torch {info['torch']} ({cfg['threads']} threads), neuralforecast "
        f"{section['versions'].get('neuralforecast')}, darts {section['versions'].get('darts')}, "
        f"forecaster {info['forecaster']}, commit {section['commit']}. "
        f"Command: `{section['command']}`."
    )


def markdown(summary: dict[str, Any]) -> str:
    lines = []
    if "train" in summary:
        train = summary["train"]
        cfg = train["config"]
        lines += [
            f"**Training workload**: {cfg['series']} series x {cfg['steps']} steps, L=48, H=24, "
            f"LSTM 2x64, batch 256, {cfg['train_steps']} timed steps after {cfg['warmup']} "
            f"warm-up, {cfg['repeats']} interleaved run(s) in fresh processes; ratio to the raw "
            "loop of the same run. " + provenance_line(train),
            "",
            *train_table(summary),
            "",
        ]
        lines += [f"- `{m}`: {d}" for m, d in train["methods"].items()] + [""]
    if "m4" in summary:
        m4 = summary["m4"]
        lines += [
            f"**M4 Hourly** (h = 48, {'first 40' if m4['config']['quick'] else 'all 414'} "
            f"series), wall-clock budget {fmt(m4.get('budget_seconds'), '.0f', ' s')} "
            + ("for every method. " if m4["config"]["m4_budget"] else "for the peers. ")
            + provenance_line(m4),
            "",
            *m4_table(summary),
            "",
        ]
        lines += [f"- `{m}`: {d}" for m, d in m4["methods"].items()] + [""]
    return "\n".join(lines)


def write_results(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """Both files, atomically (the package's one writer), after every finished child. A
    workload this run does not measure keeps its section from the file already there."""
    from _machine import write_result

    name = "peers_quick" if args.quick else "peers"
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged = {k: v for k, v in merged.items() if k in ("train", "m4")} | summary
    text = json.dumps(merged, indent=2)
    write_result(path, text)
    table = markdown(merged)
    write_result(args.out / f"{name}.md", table)


def provenance(args: argparse.Namespace) -> dict[str, Any]:
    """What a workload's numbers were measured with: command, commit, machine, versions."""
    from _machine import machine_info

    info = machine_info()
    info["load_average"] = os.getloadavg()
    return {
        "command": "python benchmarks/bench_peers.py " + " ".join(sys.argv[1:]),
        "commit": commit(),
        "machine": info,
        "versions": versions(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }


def versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {}
    for name in ("neuralforecast", "darts", "pytorch-lightning", "lightning", "pandas"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return out.stdout.strip()


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def methods(text: str, known: dict[str, str], option: str) -> list[str]:
    chosen = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in known]
    if unknown or not chosen:
        sys.exit(
            f"{option}: expected a comma-separated list of {', '.join(known)}; got {text!r}. "
            f"Pass names from that list."
        )
    return chosen


def refuse_other_workload(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options of a workload this run does not measure are refused, never ignored."""
    given = {
        name
        for name in (*TRAIN_OPTIONS, *M4_OPTIONS)
        if getattr(args, name) != parser.get_default(name)
    }
    unused = {"train": M4_OPTIONS, "m4": TRAIN_OPTIONS, "all": ()}[args.workload]
    passed = sorted(f"--{n.replace('_', '-')}" for n in given.intersection(unused))
    if passed:
        other = "m4" if args.workload == "train" else "train"
        parser.error(
            f"{', '.join(passed)} only apply to the {other} workload, which --workload "
            f"{args.workload} does not run: drop them, or pass --workload {other} or all"
        )


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", choices=["train", "m4", "all"], default="all")
    parser.add_argument("--train-methods", default=",".join(TRAIN_METHODS))
    parser.add_argument("--m4-methods", default=",".join(M4_METHODS))
    parser.add_argument("--series", type=int, help="100 (--quick: 10)")
    parser.add_argument("--steps", type=int, help="2000 (--quick: 500)")
    parser.add_argument("--train-steps", type=int, help="timed steps: 400 (--quick: 30)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, help="training workload runs: 2 (--quick: 1)")
    parser.add_argument("--m4-repeats", type=int, default=1)
    parser.add_argument(
        "--m4-budget", type=float, default=None, help="peers' seconds (default: our fit's)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wait-idle", type=float, default=30.0)
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="shared data folder (holds m4/)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.child:
        refuse_other_workload(parser, args)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    for name, value in sizes.items():  # what the user passed wins over the preset
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ("series", "steps", "train_steps", "repeats", "m4_repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0 or args.wait_idle < 0:
        parser.error("--warmup and --wait-idle must be >= 0")
    if args.m4_budget is not None and not args.m4_budget > 0:
        parser.error(f"--m4-budget must be > 0 seconds, got {args.m4_budget}")
    args.train_methods = methods(args.train_methods, TRAIN_METHODS, "--train-methods")
    args.m4_methods = methods(args.m4_methods, M4_METHODS, "--m4-methods")
    if "raw" not in args.train_methods:
        parser.error("--train-methods must include raw: every ratio is to the raw loop")
    if args.quick and args.m4_budget is None:
        args.m4_budget = 20.0
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.child:
        child(args)
        return
    summary: dict[str, Any] = {}
    if args.workload in ("train", "all"):
        run_train(args, summary)
    if args.workload in ("m4", "all"):
        run_m4(args, summary)
    write_results(args, summary)
    print(markdown(summary))


if __name__ == "__main__":
    main()

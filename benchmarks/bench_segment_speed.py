"""Training speed of the default segment network: today's code against a base commit, same run.

The workload is the default ``RNNForecaster`` fit of ETTh1-M (the seven columns as targets,
lookback 336, horizon 96, ``validation_size=2880``, the standard train + validation rows: the
first 16 months): a segment GRU of hidden size 128, segment length 24, batch 256; every epoch
trains on all 8,209 training windows (33 steps) and validates on the 2,785 validation windows.
Each run fits ``--epochs`` epochs with early stopping off (``patience=None``), same
``random_state``, so both codes do exactly the same work. Optionally (``--tasks etth1,m4``) the
default M4 Hourly fit (414 series, lookback 192, horizon 48, 32,768 windows per epoch).

The base code is a git worktree of ``--base`` (default ``e66c079``, the commit before the speed
work) made under ``--base-dir``; each run is a fresh subprocess with ``PYTHONPATH`` pointing at
one of the two trees, the two codes alternating (A B B A ...), so that both see the same machine
load. Per run it records the seconds of every epoch (training and validation; the first epoch
separately, it includes warm-up), the training windows per second, the validation loss after
each epoch and the fit's wall time, and the CPU use of other processes meanwhile
(``benchmarks/_machine.py``). The speed-up is taken within each pair of runs (base / new,
median epoch seconds) and the median over pairs is compared with 2x.

Run from the repository root::

    python benchmarks/bench_segment_speed.py                      # ETTh1-M, 3 epochs, 2 pairs
    python benchmarks/bench_segment_speed.py --tasks etth1,m4 --pairs 3
    python benchmarks/bench_segment_speed.py --threads 1          # one torch thread
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

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("FORECASTER_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"
ETT_COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
TARGET_SPEEDUP = 2.0


# --------------------------------------------------------------------------------------------
# one run (child process)
# --------------------------------------------------------------------------------------------


def _etth1(data: Path) -> tuple[Any, dict[str, Any]]:
    import polars as pl

    frame = pl.read_csv(data / "ett" / "ETTh1.csv", try_parse_dates=True)
    frame = frame.rename({"date": "time"}).with_columns(pl.col(ETT_COLUMNS).cast(pl.Float64))
    month = 30 * 24
    frame = frame.head(16 * month).select("time", *ETT_COLUMNS)  # train + validation rows
    params = {"target": ETT_COLUMNS, "time_col": "time", "lookback": 336, "horizon": 96}
    return frame, {**params, "validation_size": 4 * month}


def _m4(data: Path) -> tuple[Any, dict[str, Any]]:
    import numpy as np
    import polars as pl

    wide = pl.read_csv(data / "m4" / "Hourly-train.csv.gz", infer_schema_length=0)
    values = wide.drop("V1").cast(pl.Float64).to_numpy()
    present = ~np.isnan(values)
    frame = pl.DataFrame(
        {
            "id": np.repeat(wide["V1"].to_numpy(), present.sum(axis=1)),
            "t": np.nonzero(present)[1],
            "y": values[present],
        }
    )
    return frame, {"target": "y", "time_col": "t", "id_col": "id", "lookback": 192, "horizon": 48}


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Fit the task's default model for ``args.epochs`` epochs; the run's facts."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch
    from _machine import Timed, machine_info

    import forecaster
    from forecaster import RNNForecaster

    if args.threads:
        torch.set_num_threads(args.threads)
    frame, params = {"etth1": _etth1, "m4": _m4}[args.task](args.data)
    model = RNNForecaster(
        **params, max_epochs=args.epochs, patience=None, random_state=args.seed, progress=False
    )
    cpu = time.process_time()
    with Timed() as timed:
        model.fit(frame)
    cpu = time.process_time() - cpu
    history = model.history_
    return {
        "forecaster_file": forecaster.__file__,
        "fit_seconds": timed.seconds,
        "fit_cpu_seconds": cpu,
        "other_cpus": timed.other_cpus,
        "epoch_seconds": [r["seconds"] for r in history],
        "windows_per_second": [r["windows_per_second"] for r in history],
        "train_loss": [r["train_loss"] for r in history],
        "val_loss": [r["val_loss"] for r in history],
        "torch_threads": torch.get_num_threads(),
        "machine": machine_info(),
    }


# --------------------------------------------------------------------------------------------
# the comparison (parent process)
# --------------------------------------------------------------------------------------------


def base_tree(base: str, base_dir: Path) -> Path:
    """A git worktree of ``base`` at ``base_dir`` (made once, reused after)."""
    if not (base_dir / "forecaster" / "__init__.py").exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base_dir), base], cwd=ROOT, check=True
        )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=base_dir, check=True, capture_output=True, text=True
    )
    return base_dir if head.stdout.strip().startswith(base) else _wrong_base(base_dir, base)


def _wrong_base(base_dir: Path, base: str) -> Path:
    raise SystemExit(f"{base_dir} is not a checkout of {base}: remove it or pass --base-dir.")


def run_child(tree: Path, task: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", "--task", task,
        "--epochs", str(args.epochs), "--seed", str(args.seed), "--threads", str(args.threads),
        "--data", str(args.data),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the {tree} run failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["forecaster_file"].startswith(str(tree)):
        raise SystemExit(f"the run imported {result['forecaster_file']}, not the code in {tree}")
    return result


def steady(run: dict[str, Any]) -> float:
    """Median seconds of the epochs after the first (the first, when there is one only)."""
    seconds = run["epoch_seconds"]
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def compare(task: str, trees: dict[str, Path], args: argparse.Namespace) -> dict[str, Any]:
    """``args.pairs`` pairs of runs, the codes alternating; the per-pair speed-ups."""
    pairs = []
    for i in range(args.pairs):
        order = ["base", "new"] if i % 2 == 0 else ["new", "base"]
        runs = {}
        for code in order:
            runs[code] = run_child(trees[code], task, args)
            print(
                f"{task} pair {i + 1} {code}: epochs {runs[code]['epoch_seconds']} s, "
                f"val {runs[code]['val_loss']}, other CPUs {runs[code]['other_cpus']}",
                flush=True,
            )
        pairs.append(
            {
                "order": order,
                "runs": runs,
                "epoch_speedup": steady(runs["base"]) / steady(runs["new"]),
                "fit_speedup": runs["base"]["fit_seconds"] / runs["new"]["fit_seconds"],
                "cpu_speedup": runs["base"]["fit_cpu_seconds"] / runs["new"]["fit_cpu_seconds"],
            }
        )
    speedup = statistics.median(p["epoch_speedup"] for p in pairs)
    return {
        "task": task,
        "pairs": pairs,
        "epoch_speedup": speedup,
        "fit_speedup": statistics.median(p["fit_speedup"] for p in pairs),
        "cpu_speedup": statistics.median(p["cpu_speedup"] for p in pairs),
        "verdict": "PASS" if speedup >= TARGET_SPEEDUP else "FAIL",
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Segment network training speed: new code against the base commit, same run",
        "",
        f"Base `{result['base']}`, new `{result['new']}`; {result['epochs']} epochs per run "
        f"(early stopping off), seed {result['seed']}, torch threads "
        f"{result['threads'] or 'default'}; command `{result['command']}`; "
        f"{result['machine'].get('cpu_count')} CPUs ({result['machine'].get('cpu_model')}), "
        f"torch {result['machine'].get('torch')}, {result['machine'].get('date')}.",
        "",
        "Epoch seconds include validation; `fit CPU s` is the fit's own CPU time (with one "
        "thread, the least load-sensitive measure); `other CPUs` is the CPU use of other "
        "processes during the fit (in CPUs, of the machine's 2): timings under load are "
        "pessimistic.",
        "",
        "| task | pair | code | epoch s (first; median of the rest) | windows/s (median) | "
        "fit s | fit CPU s | val loss per epoch | other CPUs | epoch speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task in result["tasks"]:
        for i, pair in enumerate(task["pairs"], 1):
            for code in pair["order"]:
                run = pair["runs"][code]
                first = run["epoch_seconds"][0]
                val = ", ".join(f"{v:.4f}" for v in run["val_loss"] if v is not None)
                lines.append(
                    f"| {task['task']} | {i} | {code} | {first:.1f}; {steady(run):.1f} | "
                    f"{statistics.median(run['windows_per_second']):.0f} | "
                    f"{run['fit_seconds']:.1f} | {run['fit_cpu_seconds']:.1f} | {val} | "
                    f"{run['other_cpus']} | "
                    + (f"{pair['epoch_speedup']:.2f}x |" if code == pair["order"][-1] else " |")
                )
        lines.append(
            f"\n**{task['task']}: median epoch speed-up {task['epoch_speedup']:.2f}x, fit "
            f"speed-up {task['fit_speedup']:.2f}x (CPU time {task['cpu_speedup']:.2f}x): "
            f"{task['verdict']}** against "
            f"{TARGET_SPEEDUP:.0f}x.\n"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="etth1", help="comma-separated: etth1, m4")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--base", default="e66c079")
    parser.add_argument("--base-dir", type=Path, default=Path("/tmp/forecaster-speed-base"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", default="segment_speed", help="results file stem")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--task", default="etth1", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _machine import machine_info, write_result

    trees = {"base": base_tree(args.base, args.base_dir), "new": ROOT}
    new = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    started = time.perf_counter()
    tasks = [compare(task, trees, args) for task in args.tasks.split(",")]
    result = {
        "base": args.base, "new": new, "epochs": args.epochs, "seed": args.seed,
        "threads": args.threads, "command": "python " + " ".join(sys.argv),
        "machine": machine_info(), "seconds": time.perf_counter() - started, "tasks": tasks,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    write_result(RESULTS / f"{args.out}.json", json.dumps(result, indent=1) + "\n")
    write_result(RESULTS / f"{args.out}.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()

"""Training throughput of ``LSTMForecaster.fit`` against a raw PyTorch loop.

The standard configuration: 100 series x 2,000 hourly steps, lookback 48, horizon 24, an LSTM
of 2 layers x 64 with a direct (linear) head, batch 256, Adam(W) lr 1e-3, MSE, a fixed number of
optimizer steps. The reference is the plainest possible loop over *pre-built* window tensors
already on the device (random batches by index, forward, loss, backward, step). Our number is
``LSTMForecaster.fit`` end to end on the long Polars frame, with windows gathered by index from
the panel on the device and scaled per series on the fly; its throughput is the number of
windows trained divided by the training epoch's time, and the fit's wall time (validation,
panel, index and all) is reported too.

Each method runs in its own fresh subprocess (so that its peak RSS, the kernel's high-water
mark, is its own), the methods interleaved within each of ``--repeats`` repetitions; the rows
are medians and the ratios (throughput and peak RSS, ours / raw) are taken within each
repetition. Every child also reports its RSS after its imports and after building the frame,
which attributes the peak to libraries, data and training. A second reference,
``raw_lean``, is the same raw loop with its windows built in one float32 copy (standardised in
place, inputs and targets views of it): the least memory a raw loop over pre-built windows
needs, reported for peak RSS only. The other processes' CPU use during each child and the load
average are recorded (``_machine.py``).

Targets: ours >= 0.95x the raw loop's windows/s on CPU (0.8x on CUDA), and ours' peak RSS
<= 1.2x the raw loop's.

Run::

    python benchmarks/bench_train.py                 # CPU, 2 threads
    python benchmarks/bench_train.py --device cuda   # GPU (bf16 autocast in both loops)
    python benchmarks/bench_train.py --quick         # smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _machine import Timed, machine_info, wait_for_idle, write_result


def make_frame(n_series: int, n_steps: int, seed: int = 0):
    import polars as pl

    rng = np.random.default_rng(seed)
    t = np.arange(n_steps)
    phase = rng.uniform(0, 24, n_series)[:, None]
    values = np.sin(2 * np.pi * (t[None, :] + phase) / 24) + rng.normal(0, 0.1, (n_series, n_steps))
    start = dt.datetime(2020, 1, 1)
    times = pl.datetime_range(start, start + dt.timedelta(hours=n_steps - 1), "1h", eager=True)
    return pl.DataFrame(
        {
            "id": np.repeat([f"s{i:04d}" for i in range(n_series)], n_steps),
            "time": pl.concat([times] * n_series),
            "y": values.astype(np.float32).ravel(),
        }
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """This process's resident set now (``VmRSS``), in MB; 0.0 where /proc is unavailable."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def raw_windows(frame, args, lean: bool):
    """The raw loop's standardised input and target tensors ``(x, y)``, every window built once.

    The plain way (``lean=False``, the throughput reference) materialises the windows with
    NumPy and copies inputs and targets out of them; ``lean=True`` makes one float32 copy,
    standardises it in place and takes inputs and targets as views of it."""
    import torch

    values = frame["y"].to_numpy().reshape(args.series, args.steps)
    L, H = args.lookback, args.horizon
    if lean:
        windows = torch.tensor(values).unfold(1, L + H, 1).reshape(-1, L + H)
        mean, std = windows.mean(), windows.std()
        windows.sub_(mean).div_(std)
        return windows[:, :L, None], windows[:, L:]
    windows = np.lib.stride_tricks.sliding_window_view(values, L + H, axis=1)
    windows = windows.reshape(-1, L + H).astype(np.float32)
    mean, std = windows.mean(), windows.std()
    windows = (windows - mean) / std
    return torch.from_numpy(windows[:, :L, None].copy()), torch.from_numpy(windows[:, L:].copy())


def run_raw(args, lean: bool = False) -> dict:
    import torch
    from torch import nn

    rss_imports = rss_mb()
    torch.manual_seed(0)
    device = torch.device(args.device)
    frame = make_frame(args.series, args.steps)
    rss_frame = rss_mb()
    H = args.horizon
    x, y = raw_windows(frame, args, lean)
    x, y = x.to(device), y.to(device)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(1, args.hidden, num_layers=args.layers, batch_first=True)
            self.out = nn.Linear(args.hidden, H)

        def forward(self, inputs):
            _, (h, _) = self.lstm(inputs)
            return self.out(h[-1])

    net = Net().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    amp = device.type == "cuda"
    gen = torch.Generator().manual_seed(0)

    def step():
        rows = torch.randint(0, len(x), (args.batch,), generator=gen).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = nn.functional.mse_loss(net(x[rows]), y[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.train_steps):
        loss = step()
    float(loss.detach())  # wait for the device
    seconds = time.perf_counter() - t0
    return {
        "windows_per_second": args.train_steps * args.batch / seconds,
        "seconds": seconds,
        "n_windows": len(x),
        "rss_after_imports_mb": rss_imports,
        "rss_after_frame_mb": rss_frame,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_ours(args, grad_clip) -> dict:
    import torch

    from forecaster import LSTMForecaster

    rss_imports = rss_mb()
    frame = make_frame(args.series, args.steps)
    rss_frame = rss_mb()
    common = {
        "target": "y",
        "id_col": "id",
        "time_col": "time",
        "lookback": args.lookback,
        "horizon": args.horizon,
        "head": "direct",
        "hidden_size": args.hidden,
        "num_layers": args.layers,
        "dropout": 0.0,
        "normalization": "none",
        "loss": "mse",
        "lr": 1e-3,
        "batch_size": args.batch,
        "validation_size": 0,
        "grad_clip": grad_clip,
        "device": args.device,
        "random_state": 0,
        "progress": False,
    }
    # Warm-up fit (allocator, cuDNN autotune), then the measured one.
    LSTMForecaster(**common, max_epochs=1, windows_per_epoch=args.warmup * args.batch).fit(frame)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    model = LSTMForecaster(
        **common, max_epochs=1, windows_per_epoch=args.train_steps * args.batch
    ).fit(frame)
    wall = time.perf_counter() - t0
    epoch = model.history_[0]
    return {
        "windows_per_second": epoch["windows_per_second"],
        "seconds": epoch["seconds"],
        "fit_wall_seconds": wall,
        "n_windows": model.n_train_windows_,
        "rss_after_imports_mb": rss_imports,
        "rss_after_frame_mb": rss_frame,
        "peak_rss_mb": peak_rss_mb(),
    }


def child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.method in ("raw", "raw_lean"):
        result = run_raw(args, lean=args.method == "raw_lean")
    elif args.method == "ours":
        result = run_ours(args, grad_clip=None)
    else:
        result = run_ours(args, grad_clip=1.0)
    print(json.dumps(result))


RSS_TARGET = 1.2
METHODS = {
    "raw": "raw PyTorch loop, pre-built tensors on the device",
    "raw_lean": "raw loop, windows built in one float32 copy (memory reference)",
    "ours": "LSTMForecaster.fit (same model, no clipping)",
    "ours_clip": "LSTMForecaster.fit (default grad_clip=1.0)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--lookback", type=int, default=48)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--train-steps", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument(
        "--wait-idle", type=float, default=20.0, help="seconds to wait for an idle machine"
    )
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help="comma-separated subset of " + ", ".join(METHODS) + " (raw, raw_lean, ours always)",
    )
    parser.add_argument("--method", choices=list(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    chosen = {m.strip() for m in args.methods.split(",") if m.strip()}
    if not chosen <= set(METHODS):
        parser.error(f"--methods: unknown {sorted(chosen - set(METHODS))}; known: {list(METHODS)}")
    args.methods = ",".join(m for m in METHODS if m in chosen | {"raw", "raw_lean", "ours"})
    if args.quick:
        args.series, args.steps, args.train_steps, args.repeats = 10, 500, 30, 1
    if args.method:
        child(args)
        return

    import torch

    results = run_children(args)
    summary = summarise(args, results, torch.__version__)
    table = report(args, summary)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.device == "cpu" else "_" + args.device.split(":")[0]
    if args.quick:
        suffix += "_quick"
    write_result(out / f"train{suffix}.json", json.dumps(summary, indent=2))
    write_result(out / f"train{suffix}.md", table)


def run_children(args) -> dict[str, list[dict]]:
    """Every method in its own fresh process, interleaved within each repetition (the order
    rotates between repetitions), with the other processes' CPU use meanwhile."""
    methods = args.methods.split(",")
    results: dict[str, list[dict]] = {m: [] for m in methods}
    for rep in range(args.repeats):
        idle = wait_for_idle(args.wait_idle, threshold=0.3) if args.wait_idle > 0 else {}
        shift = rep % len(methods)
        for method in methods[shift:] + methods[:shift]:
            cmd = [sys.executable, __file__, "--method", method] + [
                f"--{k.replace('_', '-')}={v}"
                for k, v in vars(args).items()
                if k not in ("method", "methods", "quick", "out", "wait_idle") and v is not None
            ]
            with Timed() as load:
                out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                sys.exit(f"{method} failed:\n{out.stderr}")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row.update(other_cpus=load.other_cpus, loadavg_1min=os.getloadavg()[0], **idle)
            results[method].append(row)
            print(f"rep {rep + 1} {method:10} {row}", flush=True)
    return results


def summarise(args, results: dict[str, list[dict]], torch_version: str) -> dict:
    """Medians per method and the per-repetition ratios to the raw loop (throughput, and
    peak RSS against both raw references)."""

    def ratio(method: str, key: str, reference: str = "raw") -> float:
        return statistics.median(
            results[method][i][key] / results[reference][i][key] for i in range(args.repeats)
        )

    medians = {
        m: {
            key: statistics.median(r[key] for r in rows)
            for key in rows[0]
            if isinstance(rows[0][key], int | float) and not isinstance(rows[0][key], bool)
        }
        for m, rows in results.items()
    }
    info = machine_info()
    device_name = info.get("gpu") if args.device.startswith("cuda") else info.get("cpu_model")
    return {
        "config": {k: v for k, v in vars(args).items() if k not in ("method",)},
        "device": device_name or platform.machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "torch": torch_version,
        "python": platform.python_version(),
        "machine": info,
        "results": results,
        "medians": medians,
        "ratio_to_raw": {m: ratio(m, "windows_per_second") for m in results},
        "rss_ratio_to_raw": {m: ratio(m, "peak_rss_mb") for m in results},
        "rss_ratio_to_raw_lean": {m: ratio(m, "peak_rss_mb", "raw_lean") for m in results},
    }


def report(args, summary: dict) -> str:
    """The markdown table and the two verdicts."""
    medians, ratios = summary["medians"], summary["ratio_to_raw"]
    rows = [
        "| method | windows/s | ratio to raw | fit wall time | RSS after imports | "
        "+ frame | peak RSS | peak / raw | other CPUs (max) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in summary["results"]:
        label, med = METHODS[m], medians[m]
        wall = f"{med['fit_wall_seconds']:.1f} s" if "fit_wall_seconds" in med else "–"
        busy = max((r["other_cpus"] or 0.0) for r in summary["results"][m])
        rows.append(
            f"| {label} | {med['windows_per_second']:,.0f} | {ratios[m]:.2f}x | {wall} | "
            f"{med['rss_after_imports_mb']:,.0f} MB | {med['rss_after_frame_mb']:,.0f} MB | "
            f"{med['peak_rss_mb']:,.0f} MB | {summary['rss_ratio_to_raw'][m]:.2f}x | "
            f"{busy:.2f} |"
        )
    target = 0.95 if args.device == "cpu" else 0.9  # issue 15: >= 0.9x a raw cuDNN loop
    speed = "PASS" if ratios["ours"] >= target else "FAIL"
    rss = summary["rss_ratio_to_raw"]["ours"]
    lean = summary["rss_ratio_to_raw_lean"]["ours"]
    title = (
        f"**Training throughput and memory on {args.device} ({summary['device']}, "
        f"{args.threads} threads)**: {args.series} series x {args.steps} steps, "
        f"L={args.lookback}, H={args.horizon}, LSTM {args.layers}x{args.hidden}, batch "
        f"{args.batch}, {args.train_steps} steps; each method a fresh process, medians of "
        f"{args.repeats} interleaved repetitions."
    )
    loads = [r["loadavg_1min"] for rows in summary["results"].values() for r in rows]
    note = (
        f"Targets: ours >= {target:.2f}x raw windows/s: {speed} ({ratios['ours']:.2f}x); ours' "
        f"peak RSS <= {RSS_TARGET:.1f}x the raw loop's: "
        f"{'PASS' if rss <= RSS_TARGET else 'FAIL'} ({rss:.2f}x; {lean:.2f}x the lean raw "
        f"loop's). Other processes used up to "
        f"{max((r['other_cpus'] or 0.0) for rows in summary['results'].values() for r in rows):.2f}"
        f" CPUs during a child; 1-min load average {min(loads):.2f}-{max(loads):.2f}. Measured "
        f"{summary['date']}, torch {summary['torch']}. Reproduce: "
        f"`python benchmarks/bench_train.py --device {args.device}`."
    )
    busiest = max((r["other_cpus"] or 0.0) for rows in summary["results"].values() for r in rows)
    if busiest > 0.5:
        note += (
            f" CONTENDED: other processes used up to {busiest:.2f} CPUs while a method ran, so "
            "the windows/s and their ratios are not reliable (peak RSS does not depend on it); "
            "rerun on an idle machine for the throughput target."
        )
    return "\n".join([title, "", *rows, "", note, ""])


if __name__ == "__main__":
    main()

"""Training throughput of ``LSTMForecaster.fit`` against a raw PyTorch loop.

The standard configuration: 100 series x 2,000 hourly steps, lookback 48, horizon 24, an LSTM
of 2 layers x 64 with a direct (linear) head, batch 256, Adam(W) lr 1e-3, MSE, a fixed number of
optimizer steps. The reference is the plainest possible loop over *pre-built* window tensors
already on the device (random batches by index, forward, loss, backward, step). Our number is
``LSTMForecaster.fit`` end to end on the long Polars frame, with windows gathered by index from
the panel on the device and scaled per series on the fly; its throughput is the number of
windows trained divided by the training epoch's time, and the fit's wall time (validation,
panel, index and all) is reported too.

Each method runs in its own subprocess (so that peak RSS is its own); the rows are medians of
``--repeats`` repetitions and the ratio is taken within each repetition.

Run::

    python benchmarks/bench_train.py                 # CPU, 2 threads
    python benchmarks/bench_train.py --device cuda   # GPU (bf16 autocast in both loops)
    python benchmarks/bench_train.py --quick         # smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


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


def run_raw(args) -> dict:
    import torch
    from torch import nn

    torch.manual_seed(0)
    device = torch.device(args.device)
    frame = make_frame(args.series, args.steps)
    values = frame["y"].to_numpy().reshape(args.series, args.steps)
    L, H = args.lookback, args.horizon
    windows = np.lib.stride_tricks.sliding_window_view(values, L + H, axis=1)
    windows = windows.reshape(-1, L + H).astype(np.float32)
    mean, std = windows.mean(), windows.std()
    windows = (windows - mean) / std
    x = torch.from_numpy(windows[:, :L, None].copy()).to(device)
    y = torch.from_numpy(windows[:, L:].copy()).to(device)

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
    float(loss)  # wait for the device
    seconds = time.perf_counter() - t0
    return {
        "windows_per_second": args.train_steps * args.batch / seconds,
        "seconds": seconds,
        "n_windows": len(x),
        "peak_rss_mb": peak_rss_mb(),
    }


def run_ours(args, grad_clip) -> dict:
    import torch

    from forecaster import LSTMForecaster

    frame = make_frame(args.series, args.steps)
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
        "peak_rss_mb": peak_rss_mb(),
    }


def child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.method == "raw":
        result = run_raw(args)
    elif args.method == "ours":
        result = run_ours(args, grad_clip=None)
    else:
        result = run_ours(args, grad_clip=1.0)
    print(json.dumps(result))


METHODS = {
    "raw": "raw PyTorch loop, pre-built tensors on the device",
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
    parser.add_argument("--method", choices=list(METHODS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.series, args.steps, args.train_steps, args.repeats = 10, 500, 30, 1
    if args.method:
        child(args)
        return

    import torch

    results: dict[str, list[dict]] = {m: [] for m in METHODS}
    for rep in range(args.repeats):
        for method in METHODS:
            cmd = [sys.executable, __file__, "--method", method] + [
                f"--{k.replace('_', '-')}={v}"
                for k, v in vars(args).items()
                if k not in ("method", "quick", "out") and v is not None
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                sys.exit(f"{method} failed:\n{out.stderr}")
            results[method].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"rep {rep + 1} {method:10} {results[method][-1]}", flush=True)

    def median(method, key):
        return statistics.median(r[key] for r in results[method])

    ratios = {
        m: statistics.median(
            results[m][i]["windows_per_second"] / results["raw"][i]["windows_per_second"]
            for i in range(args.repeats)
        )
        for m in METHODS
    }
    device_name = (
        torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor()
    )
    summary = {
        "config": {k: v for k, v in vars(args).items() if k not in ("method",)},
        "device": device_name or platform.machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "results": results,
        "ratio_to_raw": ratios,
    }
    target = 0.95 if args.device == "cpu" else 0.8
    rows = [
        "| method | windows/s | ratio to raw | fit wall time | peak RSS |",
        "|---|---:|---:|---:|---:|",
    ]
    for m, label in METHODS.items():
        wall = (
            f"{median(m, 'fit_wall_seconds'):.1f} s" if "fit_wall_seconds" in results[m][0] else "–"
        )
        rows.append(
            f"| {label} | {median(m, 'windows_per_second'):,.0f} | {ratios[m]:.2f}x | {wall} | "
            f"{median(m, 'peak_rss_mb'):,.0f} MB |"
        )
    verdict = "PASS" if ratios["ours"] >= target else "FAIL"
    title = (
        f"**Training throughput on {args.device} ({summary['device']}, {args.threads} threads)**: "
        f"{args.series} series x {args.steps} steps, L={args.lookback}, H={args.horizon}, "
        f"LSTM {args.layers}x{args.hidden}, batch {args.batch}, {args.train_steps} steps, "
        f"medians of {args.repeats}."
    )
    note = (
        f"Target: ours >= {target:.2f}x raw: {verdict} ({ratios['ours']:.2f}x). "
        f"Measured {summary['date']}, torch {torch.__version__}. Reproduce: "
        f"`python benchmarks/bench_train.py --device {args.device}`."
    )
    table = "\n".join([title, "", *rows, "", note, ""])
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.device == "cpu" else "_" + args.device.split(":")[0]
    (out / f"train{suffix}.json").write_text(json.dumps(summary, indent=2))
    (out / f"train{suffix}.md").write_text(table)


if __name__ == "__main__":
    main()

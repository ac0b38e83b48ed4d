"""Overhead of MLflow tracking on a fit: the same fit with and without an active run.

The fit: ``RNNForecaster`` (default segment GRU, hidden 128) on 100 hourly series x 2,000 steps,
lookback 96, horizon 24, a fixed 20 epochs of 8,192 windows (no early stopping): about 30 s on 2
CPU cores. The tracked fit runs inside ``mlflow.start_run()`` with a ``tracking.FitLogger()``
callback, on a local SQLite store (a fresh ``sqlite:///<tmp>/mlflow.db``, artifacts next to it)
and logs what every tracked fit logs: params,
dataset fingerprint, per-epoch metrics (live), final metrics, the forecast plot and the pyfunc
model.

Two measurements, in one process after a warm-up (imports, store creation, first logging):

- *in-fit tracking time*: the wall time spent inside the tracking callback during the tracked fit
  (run start, the per-epoch callback, the end-of-fit logging), measured by timing those calls.
  This is the overhead itself, and short blocks are little affected by other processes.
- *paired difference*: plain and tracked fits alternate (plain, tracked, tracked, plain, ...) and
  the overhead is tracked minus plain wall time, over the pairs where neither fit was contended
  (other processes below 0.25 CPUs). On a shared 2-core machine, another process running
  during one fit of a pair swamps a ~1 s difference, so contended pairs are reported but not
  used.

The target (overhead <= 5 % of the fit) is judged on the in-fit tracking time. The one-time
costs per process (``import mlflow``, creating the store, the first tracked fit) are reported
separately, as is ``tracking.log_fit`` alone (the end-of-fit part).

Run::

    .venv/bin/python benchmarks/bench_tracking.py            # about 5 min
    .venv/bin/python benchmarks/bench_tracking.py --quick    # smoke run, under a minute

Writes ``benchmarks/results/tracking[_quick].{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import Timed, wait_for_idle, write_result

TARGET = 0.05
SMOKE_NOTE = " (smoke run: the fit is far too short for this ratio to mean anything)"
CONTENDED = 0.25  # other processes' CPUs above which a timing counts as contended


def instrument(tracking: Any) -> dict[str, float]:
    """Time the fit callback's hooks (run start, per-epoch logging, end-of-fit logging)."""
    spent: dict[str, float] = {}
    cls = tracking.FitLogger

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    cls.on_fit_start = timed("start", cls.on_fit_start)
    cls.on_epoch_end = timed("epochs", cls.on_epoch_end)
    cls.on_fit_end = timed("finish", cls.on_fit_end)
    return spent


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (tiny fits)")
    parser.add_argument("--repeats", type=int, default=None, help="paired repetitions (3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=180.0,
        help="seconds to wait, before each timed fit, for other processes to go idle (180)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.quick:
        cfg = dict(series=10, steps=400, lookback=48, horizon=12, hidden=16, epochs=3, windows=512)
        repeats = args.repeats or 1
    else:
        cfg = dict(series=100, steps=2000, lookback=96, horizon=24, hidden=128, epochs=20)
        cfg["windows"] = 8192
        repeats = args.repeats or 3

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    t0 = time.perf_counter()
    import mlflow

    import_mlflow_s = time.perf_counter() - t0
    from forecaster import RNNForecaster, tracking

    frame = make_frame(cfg["series"], cfg["steps"])

    def model(**overrides: Any) -> RNNForecaster:
        params = dict(
            target="y", id_col="id", time_col="time", lookback=cfg["lookback"],
            horizon=cfg["horizon"], hidden_size=cfg["hidden"], max_epochs=cfg["epochs"],
            patience=None, windows_per_epoch=cfg["windows"], random_state=0, progress=False,
            device="cpu",
        )  # fmt: skip
        return RNNForecaster(**{**params, **overrides})

    store = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    t0 = time.perf_counter()
    target = tracking.configure(f"sqlite:///{store}/mlflow.db", "bench-tracking")
    create_store_s = time.perf_counter() - t0

    # warm-up: imports (matplotlib, MLflow's model code), torch's first optimizer, first logging
    small = make_frame(4, 300)
    with Timed() as first, mlflow.start_run():
        warm = model(lookback=24, horizon=6, hidden_size=8, max_epochs=1, windows_per_epoch=64)
        warm.fit(small, callbacks=[tracking.FitLogger()])
    first_tracked_small_s = first.seconds
    model(max_epochs=1, windows_per_epoch=256).fit(frame)

    spent = instrument(tracking)
    rows: list[dict[str, Any]] = []
    for rep in range(repeats):
        order = ("plain", "tracked") if rep % 2 == 0 else ("tracked", "plain")
        pair: dict[str, Any] = {"repeat": rep}
        for arm in order:
            estimator = model()
            pair[f"{arm}_waited_s"] = wait_for_idle(args.wait_idle, threshold=0.25)["waited_s"]
            spent.clear()
            with Timed() as timer:
                if arm == "tracked":
                    with mlflow.start_run():
                        estimator.fit(frame, callbacks=[tracking.FitLogger()])
                else:
                    estimator.fit(frame)
            pair[f"{arm}_s"] = timer.seconds
            pair[f"{arm}_other_cpus"] = timer.other_cpus
            if arm == "tracked":
                log = tracking.last_fit()
                assert log is not None and not log.not_logged, log
                pair["epochs"] = len(estimator.history_)
                pair["tracking_s"] = {k: round(v, 4) for k, v in spent.items()}
                pair["tracking_total_s"] = sum(spent.values())
        pair["difference_s"] = pair["tracked_s"] - pair["plain_s"]
        pair["contended"] = any(
            (pair[f"{arm}_other_cpus"] or 0.0) > CONTENDED for arm in ("plain", "tracked")
        )
        rows.append(pair)
        print(
            f"[bench_tracking] repeat {rep}: plain {pair['plain_s']:.2f} s, tracked "
            f"{pair['tracked_s']:.2f} s (tracking code {pair['tracking_total_s']:.2f} s), "
            f"difference {pair['difference_s']:+.2f} s"
            + (" [contended]" if pair["contended"] else ""),
            flush=True,
        )

    # the end-of-fit part alone: log the last fitted estimator into a new run
    log_fit_s = []
    for _ in range(repeats):
        with Timed() as timer:
            tracking.log_fit(estimator, frame)
        log_fit_s.append(timer.seconds)

    clean = [r for r in rows if not r["contended"]]
    # the fit's own time: other processes only ever add to it, so the least contended estimate
    # is the minimum over every fit (tracked ones without their tracking time)
    fit_times = [r["plain_s"] for r in rows] + [
        r["tracked_s"] - r["tracking_total_s"] for r in rows
    ]
    plain = min(fit_times)
    tracked = min(r["tracked_s"] for r in rows)
    in_fit = statistics.median(r["tracking_total_s"] for r in rows)
    parts = {
        k: statistics.median(r["tracking_s"].get(k, 0.0) for r in rows)
        for k in ("start", "epochs", "finish")
    }
    overhead = in_fit / plain
    difference = statistics.median(r["difference_s"] for r in clean) if clean else None
    other = max((r[k] or 0.0) for r in rows for k in ("plain_other_cpus", "tracked_other_cpus"))
    import forecaster

    report = {
        "benchmark": "tracking",
        "quick": args.quick,
        "config": {**cfg, "threads": args.threads, "repeats": repeats},
        "store": target.tracking_uri,
        "rows": rows,
        "fit_s": plain,
        "fit_s_note": "minimum over all fits (tracked ones minus their tracking time)",
        "tracked_fit_s": tracked,
        "in_fit_tracking_s": in_fit,
        "in_fit_tracking_parts_s": parts,
        "overhead": overhead,
        "paired_difference_s": difference,
        "uncontended_pairs": len(clean),
        "target": TARGET,
        "passed": overhead <= TARGET,
        "log_fit_s": statistics.median(log_fit_s),
        "one_time": {
            "import_mlflow_s": import_mlflow_s,
            "create_store_s": create_store_s,
            "first_tracked_small_fit_s": first_tracked_small_s,
        },
        "max_other_cpus": other,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "versions": {
            "forecaster": forecaster.__version__,
            "mlflow": mlflow.__version__,
            "torch": torch.__version__,
        },
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    size = (
        f"{cfg['series']} series x {cfg['steps']} hourly steps, L={cfg['lookback']}, "
        f"H={cfg['horizon']}, segment GRU {cfg['hidden']}, {cfg['epochs']} epochs x "
        f"{cfg['windows']} windows"
    )

    def share(seconds: float) -> str:
        return f"{100 * seconds / plain:.1f} %"

    paired = (
        f"{difference:+.2f} | {share(difference)}"
        if difference is not None
        else "– (every pair was contended) | –"
    )
    md = [
        f"**Tracking overhead on a fit** ({platform.machine()}, {args.threads} threads): {size}; "
        f"local SQLite store; {repeats} repetitions (fit times: the least contended one; "
        "tracking times: medians).",
        "",
        "| | seconds | share of the plain fit |",
        "|---|---:|---:|",
        f"| fit (no tracking) | {plain:.2f} | 100 % |",
        f"| fit inside `mlflow.start_run()` | {tracked:.2f} | {share(tracked)} |",
        f"| **tracking time inside the tracked fit** | **{in_fit:.2f}** | **{share(in_fit)}** |",
        f"| - run start: params, dataset fingerprint | {parts['start']:.2f} | "
        f"{share(parts['start'])} |",
        f"| - per-epoch metrics ({cfg['epochs']} epochs) | {parts['epochs']:.2f} | "
        f"{share(parts['epochs'])} |",
        f"| - end of fit: final metrics, plot, pyfunc model | {parts['finish']:.2f} | "
        f"{share(parts['finish'])} |",
        f"| paired wall-time difference, uncontended pairs ({len(clean)} of {repeats}) | "
        f"{paired} |",
        f"| `tracking.log_fit` alone (for comparison) | {report['log_fit_s']:.2f} | "
        f"{share(report['log_fit_s'])} |",
        "",
        f"Target: tracking time <= {100 * TARGET:.0f} % of a ~30 s fit: "
        f"{'PASS' if report['passed'] else 'FAIL'} ({100 * overhead:.1f} %)"
        f"{SMOKE_NOTE if args.quick else ''}. "
        "One-time costs "
        f"per process, not included: `import mlflow` {import_mlflow_s:.1f} s, creating the "
        f"SQLite store {create_store_s:.1f} s, first tracked fit (imports matplotlib and "
        f"MLflow's model code) {first_tracked_small_s:.1f} s for a 1-epoch toy fit. Other "
        f"processes used up to {other:.2f} CPUs during the timed fits (pairs above "
        f"{CONTENDED} are left out of the paired difference). Measured "
        f"{report['measured_at']}, mlflow {mlflow.__version__}, torch {torch.__version__}. "
        f"Reproduce: `python benchmarks/bench_tracking.py{' --quick' if args.quick else ''}`.",
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "tracking_quick" if args.quick else "tracking"
    write_result(args.out / f"{stem}.json", json.dumps(report, indent=2) + "\n")
    write_result(args.out / f"{stem}.md", "\n".join(md))
    print("\n".join(md))
    print(f"[bench_tracking] wrote {args.out / stem}.json and .md")


if __name__ == "__main__":
    sys.exit(main())

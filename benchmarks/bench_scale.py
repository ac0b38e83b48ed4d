"""Benchmark: large panels (memory and time of fit / predict) and inference throughput.

Two parts (``--mode memory``, ``--mode throughput``, or both: ``--mode all``, the default), each
step in a fresh subprocess so that every peak RSS is clean:

``--mode memory``
    A Parquet dataset of ``S`` series x ``T`` hourly steps (default 10,000 x 5,000 = 50M rows:
    ``id`` String ``"s00000"``, ``time`` Datetime[us], ``value`` Float64; daily and weekly
    seasonality, trend, level shifts and AR(1) noise, different per series) is generated once
    into ``--cache`` (several files, several row groups each; reused by later runs). Then

    ``fit``
        ``RNNForecaster(target="value", id_col="id", max_epochs=1).fit(pl.scan_parquet(...))``
        with the defaults otherwise (segment GRU 128, ``windows_per_epoch=32768``, 10 %
        validation): wall time and peak RSS, broken down by stage (validation + Panel, window
        index, hold-out split, scaler, training epoch, validation pass); the model is saved.
    ``predict``
        ``forecaster.load(model).predict(pl.scan_parquet(...))``: all ``S`` series, ``H = 24``.

    Peak RSS is the kernel's high-water mark (``ru_maxrss``) of the worker; a sampling thread
    (every 5 ms) attributes it to the stages. Both are compared with the raw data: the Parquet
    files, the in-memory frame (Arrow) and the float32 values (``S * T * 4`` bytes).

``--mode throughput``
    Inference throughput: ``predict`` for all ``S`` series (``H = 24``) on ``--device``, for the
    default model (segment GRU 128) and for an LSTM (128) with a direct head, each fitted
    briefly on the last 500 steps of every series. Series/s of ``model.predict(frame)`` on a
    frame holding the last ``lookback`` steps of every series (end to end: validation, Panel,
    scaling, network, output frame) and of the network's forward pass alone on pre-built input
    tensors (the floor), medians of ``--repeats`` after a warm-up.

Run (from the repository root)::

    .venv/bin/python benchmarks/bench_scale.py                            # both, 50M rows
    .venv/bin/python benchmarks/bench_scale.py --mode memory              # fit + predict only
    .venv/bin/python benchmarks/bench_scale.py --mode throughput          # CPU
    .venv/bin/python benchmarks/bench_scale.py --mode throughput --device cuda
    .venv/bin/python benchmarks/bench_scale.py --quick                    # smoke run, both modes

Outputs ``<out>/bench_scale[_<mode>][_<device>][_quick].json`` (mode and device only when not
the defaults ``all`` and ``cpu``) (every number, machine info) and
``.md`` (tables ready for docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import io
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _machine import Timed, machine_info, wait_for_idle, write_result

MB = 2**20
RESULT_TAG = "BENCH_RESULT_JSON:"
HORIZON = 24
ROWS_PER_GROUP = 1_000_000
SERIES_PER_FILE = 1_000
THROUGHPUT_STEPS = 500
START = dt.datetime(2020, 1, 1)
REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# Memory probes (Linux; psutil elsewhere)
# --------------------------------------------------------------------------------------------


def rss_bytes() -> int:
    """Current resident set size of this process."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss)


def peak_bytes() -> int:
    """Peak RSS of this process (the kernel's high-water mark)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


class RssMonitor:
    """Samples the RSS every ``interval`` seconds in a thread and attributes peaks to stages.

    Stages nest; the peak of a stage is the largest RSS seen while it was open (sampled, plus
    one sample at its start and end). The process-wide peak is the kernel's exact high-water
    mark (:func:`peak_bytes`); sampling can miss a spike shorter than ``interval``.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.open: dict[int, dict[str, Any]] = {}
        self.stages: list[dict[str, Any]] = []
        self.max_sampled = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> int:
        rss = rss_bytes()
        with self._lock:
            self.max_sampled = max(self.max_sampled, rss)
            for stage in self.open.values():
                stage["peak"] = max(stage["peak"], rss)
        return rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, Any]]:
        rss = self._sample()
        record = {"name": name, "depth": len(self.open), "rss0": rss, "peak": rss}
        key = id(record)
        with self._lock:
            self.open[key] = record
        t0 = time.perf_counter()
        try:
            yield record
        finally:
            seconds = time.perf_counter() - t0
            rss = self._sample()
            with self._lock:
                del self.open[key]
            self.stages.append(
                {
                    "name": name,
                    "depth": record["depth"],
                    "seconds": seconds,
                    "rss_before_mb": record["rss0"] / MB,
                    "peak_mb": record["peak"] / MB,
                    "peak_increase_mb": (record["peak"] - record["rss0"]) / MB,
                    "rss_after_mb": rss / MB,
                    "order": t0,
                }
            )

    def wrap(self, owner: Any, attr: str, name: str, kind: str = "function") -> None:
        """Replace ``owner.attr`` by a wrapper that runs it inside ``stage(name)``.

        Does nothing when ``owner`` has no such attribute (the package may have moved it).
        """
        if not hasattr(owner, attr):
            return
        original = owner.__dict__.get(attr) if kind != "function" else getattr(owner, attr)
        monitor = self
        if kind == "classmethod":
            func = original.__func__

            def wrapped_cm(cls: Any, *args: Any, **kwargs: Any) -> Any:
                with monitor.stage(name):
                    return func(cls, *args, **kwargs)

            setattr(owner, attr, classmethod(wrapped_cm))
            return
        func = original

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with monitor.stage(name):
                return func(*args, **kwargs)

        setattr(owner, attr, wrapped)

    def wrap_iterator(self, owner: Any, attr: str, name: str) -> None:
        """Like :meth:`wrap` for a function returning a generator: the stage spans the
        iteration (so a training or validation pass is measured as a whole)."""
        if not hasattr(owner, attr):
            return
        func = getattr(owner, attr)
        monitor = self

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with monitor.stage(name):
                yield from func(*args, **kwargs)

        setattr(owner, attr, wrapped)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def table(self) -> list[dict[str, Any]]:
        """Stages in start order, each once per call (repeated calls are kept apart)."""
        rows = sorted(self.stages, key=lambda s: s["order"])
        for row in rows:
            row.pop("order", None)
        return rows


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


def dataset_dir(cache: Path, n_series: int, n_steps: int) -> Path:
    return cache / f"panel_s{n_series}_t{n_steps}"


def series_values(first: int, n: int, n_steps: int, seed: int = 0) -> Any:
    """``(n, n_steps)`` float64 values of series ``first .. first + n - 1`` (deterministic).

    Level (10 .. 1000, log-uniform) x (1 + daily and weekly seasonality with random amplitudes
    and phases + a linear trend + one level shift at a random time) + AR(1) noise (phi in
    0.3 .. 0.9, 2 .. 10 % of the level).
    """
    import numpy as np
    from scipy.signal import lfilter

    rng = np.random.default_rng([seed, first])
    t = np.arange(n_steps, dtype=np.float64)
    col = (n, 1)
    level = np.exp(rng.uniform(np.log(10), np.log(1000), col))
    daily = rng.uniform(0.05, 0.4, col) * np.sin(2 * np.pi * (t / 24 + rng.uniform(0, 1, col)))
    weekly = rng.uniform(0.0, 0.2, col) * np.sin(2 * np.pi * (t / 168 + rng.uniform(0, 1, col)))
    trend = rng.uniform(-0.3, 0.3, col) * t / n_steps
    shift = rng.uniform(-0.2, 0.2, col) * (t >= rng.integers(0, n_steps, col))
    out = daily
    out += weekly
    out += trend
    out += shift
    out += 1.0
    del weekly, trend, shift
    phi = rng.uniform(0.3, 0.9, n)
    noise = rng.standard_normal((n, n_steps))
    for i in range(n):  # one IIR filter call per series (generation only, not benchmarked)
        noise[i] = lfilter([1.0], [1.0, -phi[i]], noise[i])
    noise *= (rng.uniform(0.02, 0.1, n) * np.sqrt(1 - phi**2))[:, None]
    out += noise
    out *= level
    return out


def generate(cache: Path, n_series: int, n_steps: int) -> dict[str, Any]:
    """Write the Parquet dataset once (files of 1,000 series, row groups of 1M rows).

    ``meta.json`` is written last: a folder without it is incomplete and is rebuilt.
    """
    import numpy as np
    import polars as pl

    folder = dataset_dir(cache, n_series, n_steps)
    meta_file = folder / "meta.json"
    if meta_file.exists():
        return json.loads(meta_file.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    t0 = time.perf_counter()
    hours = pl.datetime_range(
        START, START + dt.timedelta(hours=n_steps - 1), "1h", time_unit="us", eager=True
    )
    files = []
    for k, first in enumerate(range(0, n_series, SERIES_PER_FILE)):
        n = min(SERIES_PER_FILE, n_series - first)
        values = series_values(first, n, n_steps)
        ids = pl.Series("id", [f"s{i:05d}" for i in range(first, first + n)])
        frame = pl.DataFrame(
            {
                "id": ids.gather(np.repeat(np.arange(n, dtype=np.int32), n_steps)),
                "time": pl.Series(np.tile(hours.to_numpy(), n)).cast(pl.Datetime("us")),
                "value": values.reshape(-1),
            }
        )
        del values
        path = folder / f"part-{k:03d}.parquet"
        buffer = io.BytesIO()
        frame.write_parquet(buffer, row_group_size=ROWS_PER_GROUP)
        write_result(path, buffer.getvalue())
        del buffer
        files.append(path.name)
        print(f"[bench_scale] wrote {path} ({frame.height:,} rows)", flush=True)
        del frame
    parquet_bytes = sum((folder / f).stat().st_size for f in files)
    meta = {
        "series": n_series,
        "steps": n_steps,
        "rows": n_series * n_steps,
        "files": files,
        "row_group_size": ROWS_PER_GROUP,
        "parquet_bytes": parquet_bytes,
        "schema": {"id": "String", "time": "Datetime(us)", "value": "Float64"},
        "generated_s": time.perf_counter() - t0,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    write_result(meta_file, json.dumps(meta, indent=2) + "\n")
    return meta


def scan(folder: Path, categorical_id: bool = False) -> Any:
    """The dataset as a LazyFrame (``id`` cast to Categorical on the fly when asked)."""
    import polars as pl

    frame = pl.scan_parquet(folder / "*.parquet")
    return frame.with_columns(pl.col("id").cast(pl.Categorical)) if categorical_id else frame


# --------------------------------------------------------------------------------------------
# Workers (each runs in its own subprocess)
# --------------------------------------------------------------------------------------------


def instrument(monitor: RssMonitor) -> None:
    """Wrap the stages of fit / predict so that their time and peak RSS are recorded.

    The wrappers only time and sample; they do not change what runs.
    """
    from forecaster.data import panel as data
    from forecaster.data import scaling as scaling
    from forecaster.estimators import base as estimator_base
    from forecaster.estimators import forecaster as estimators
    from forecaster.training import loop as training

    monitor.wrap(data, "validate_frame", "validate_frame (collect, checks, sort)")
    monitor.wrap(data.Panel, "from_frame", "Panel.from_frame", kind="classmethod")
    monitor.wrap(estimators, "make_windows", "make_windows (window index)")
    monitor.wrap(estimators, "holdout_split", "hold-out split (train / val index)")
    monitor.wrap(estimators, "rows_before_holdout", "training-span row mask")
    monitor.wrap(scaling.PanelScaler, "fit", "PanelScaler.fit")
    monitor.wrap(estimator_base, "train", "train (1 epoch + validation pass)")
    monitor.wrap(training, "evaluate", "validation pass")
    monitor.wrap(estimators.RNNForecaster, "_scaling_for", "per-series scaling")
    monitor.wrap(estimators.RNNForecaster, "_future_times", "forecast timestamps")


def worker_fit(args: argparse.Namespace, out: dict[str, Any]) -> None:
    import torch

    from forecaster import RNNForecaster

    folder = dataset_dir(args.cache, args.series, args.steps)
    monitor = RssMonitor()
    instrument(monitor)
    model = RNNForecaster(
        target="value",
        id_col="id",
        time_col="time",
        max_epochs=1,
        device=args.device,
        random_state=0,
        progress=False,
    )
    out["params"] = {k: v for k, v in model.get_params().items() if _jsonable(v)}
    with Timed() as load, monitor.stage("fit (total)"):
        model.fit(scan(folder, args.categorical_id))
    out["other_cpus"] = load.other_cpus
    out["history"] = model.history_
    out["n_train_windows"] = model.n_train_windows_
    out["n_val_windows"] = model.n_val_windows_
    out["peak_mb"] = peak_bytes() / MB
    out["rss_end_mb"] = rss_bytes() / MB
    monitor.close()
    out["stages"] = monitor.table()
    out["max_sampled_mb"] = monitor.max_sampled / MB
    if torch.cuda.is_available():
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / MB
    model_dir = folder / "model"
    t0 = time.perf_counter()
    model.save(model_dir)
    out["save_s"] = time.perf_counter() - t0


def worker_predict(args: argparse.Namespace, out: dict[str, Any]) -> None:
    import numpy as np
    import polars as pl
    import torch

    import forecaster

    folder = dataset_dir(args.cache, args.series, args.steps)
    model = forecaster.load(folder / "model")
    model.set_params(device=args.device)
    monitor = RssMonitor()
    instrument(monitor)
    gc.collect()
    out["rss_after_load_mb"] = rss_bytes() / MB
    with Timed() as load, monitor.stage("predict (total)"):
        forecast = model.predict(scan(folder, args.categorical_id))
    out["other_cpus"] = load.other_cpus
    out["peak_mb"] = peak_bytes() / MB
    out["rss_end_mb"] = rss_bytes() / MB
    monitor.close()
    out["stages"] = monitor.table()
    out["max_sampled_mb"] = monitor.max_sampled / MB
    out["forecast_rows"] = forecast.height
    out["forecast_series"] = forecast["id"].n_unique()
    out["forecast_finite"] = bool(np.isfinite(forecast["value"].to_numpy()).all())
    out["forecast_sum"] = float(forecast["value"].cast(pl.Float64).sum())  # to compare runs
    out["forecast_first_time"] = str(forecast["time"].min())
    first = START + dt.timedelta(hours=args.steps)  # the step after every series' last one
    out["forecast_starts_after_history"] = forecast["time"].min() == first
    if torch.cuda.is_available():
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / MB


def worker_throughput(args: argparse.Namespace, out: dict[str, Any]) -> None:
    import numpy as np
    import polars as pl
    import torch

    from forecaster import RNNForecaster
    from forecaster.training.loop import resolve_device

    folder = dataset_dir(args.cache, args.series, args.steps)
    device = resolve_device(args.device)
    out["device"] = str(device)
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    steps = min(THROUGHPUT_STEPS, args.steps)
    last = START + dt.timedelta(hours=args.steps - 1)
    t0 = time.perf_counter()
    recent = scan(folder).filter(pl.col("time") > last - dt.timedelta(hours=steps)).collect()
    out["load_recent_s"] = time.perf_counter() - t0
    models = {
        "segment GRU 128 (default)": {},
        "LSTM 128, direct head": {"cell": "lstm", "head": "direct"},
    }
    out["models"] = {}
    for label, params in models.items():
        model = RNNForecaster(
            target="value",
            id_col="id",
            max_epochs=1,
            windows_per_epoch=4096,
            validation_size=0,
            device=str(device),
            random_state=0,
            progress=False,
            **params,
        )
        t0 = time.perf_counter()
        model.fit(recent)
        fit_s = time.perf_counter() - t0
        lookback = int(model.lookback_)
        history = recent.filter(pl.col("time") > last - dt.timedelta(hours=lookback))
        if history.height != args.series * lookback:
            raise SystemExit(
                f"expected {args.series * lookback} history rows, got {history.height}"
            )
        rec: dict[str, Any] = {"params": params, "fit_s": fit_s, "lookback": lookback}

        def predict(model: Any = model, history: Any = history) -> Any:
            return model.predict(history)

        forecast = predict()  # warm-up
        rec["forecast_rows"] = forecast.height
        rec["forecast_finite"] = bool(np.isfinite(forecast["value"].to_numpy()).all())
        rec["predict"] = _repeat(predict, args.repeats, device)

        # The floor: the network alone on pre-built scaled inputs, same batching as predict.
        from forecaster.estimators.base import PREDICT_BATCH

        network = model._network_on(device)
        x = torch.randn(args.series, lookback, 1).to(device)

        def forward(network: Any = network, x: Any = x) -> None:
            with torch.no_grad():
                for lo in range(0, x.shape[0], PREDICT_BATCH):
                    network(x[lo : lo + PREDICT_BATCH], None).float().cpu()

        forward()  # warm-up
        rec["network_forward"] = _repeat(forward, args.repeats, device)
        rec["predict_batch"] = PREDICT_BATCH
        for key in ("predict", "network_forward"):
            rec[key]["series_per_s"] = args.series / rec[key]["median_s"]
        out["models"][label] = rec
        del model, network, x
        gc.collect()
    out["peak_mb"] = peak_bytes() / MB


def _repeat(func: Callable[[], Any], repeats: int, device: Any) -> dict[str, Any]:
    import statistics

    import torch

    times, loads = [], []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        with Timed() as load:
            t0 = time.perf_counter()
            func()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        loads.append(load.other_cpus)
    return {
        "seconds": times,
        "median_s": statistics.median(times),
        "other_cpus": max((v for v in loads if v is not None), default=None),
    }


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def worker(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import polars as pl
    import torch

    import forecaster  # imported here so that the baseline RSS includes it

    if args.threads:
        torch.set_num_threads(args.threads)
    gc.collect()
    out: dict[str, Any] = {
        "worker": args.worker,
        "rss_baseline_mb": rss_bytes() / MB,
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "polars": pl.__version__,
            "torch": torch.__version__,
            "forecaster": getattr(forecaster, "__version__", "?"),
        },
        "forecaster_file": forecaster.__file__,
    }
    t0 = time.perf_counter()
    {"fit": worker_fit, "predict": worker_predict, "throughput": worker_throughput}[args.worker](
        args, out
    )
    out["worker_s"] = time.perf_counter() - t0
    return out


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


def spawn(args: argparse.Namespace, name: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--series",
        str(args.series),
        "--steps",
        str(args.steps),
        "--cache",
        str(args.cache),
        "--device",
        args.device,
        "--repeats",
        str(args.repeats),
        "--threads",
        str(args.threads),
        *(["--categorical-id"] if args.categorical_id else []),
    ]
    idle = wait_for_idle(args.wait_idle)
    print(
        f"[bench_scale] {name}: {args.series:,} x {args.steps:,} on {args.device} (other "
        f"processes' load before start: {idle['other_cpus_before_start']} CPUs)",
        flush=True,
    )
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-20000:])
        raise SystemExit(f"worker {name} failed with exit code {proc.returncode}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    result = json.loads(lines[-1][len(RESULT_TAG) :])
    result["subprocess_wall_s"] = time.perf_counter() - t0
    result["idle_wait"] = idle
    peak = result.get("peak_mb", 0.0)
    print(
        f"[bench_scale]   done in {result['subprocess_wall_s']:.1f} s, peak RSS {peak:.0f} MB",
        flush=True,
    )
    return result


def in_memory_size(folder: Path) -> dict[str, float]:
    """Size of the dataset as a Polars frame, measured per file (never all at once)."""
    import polars as pl

    sizes = {"id": 0.0, "time": 0.0, "value": 0.0}
    for path in sorted(folder.glob("*.parquet")):
        frame = pl.read_parquet(path)
        for name in sizes:
            sizes[name] += frame[name].estimated_size() / MB
        del frame
    return sizes


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    wall0 = time.perf_counter()
    meta = generate(args.cache, args.series, args.steps)
    folder = dataset_dir(args.cache, args.series, args.steps)
    rows = args.series * args.steps
    report: dict[str, Any] = {
        "benchmark": "scale",
        "mode": args.mode,
        "command": command_line(args),
        "config": {
            "series": args.series,
            "steps": args.steps,
            "rows": rows,
            "horizon": HORIZON,
            "device": args.device,
            "threads": args.threads,
            "repeats": args.repeats,
            "quick": args.quick,
            "categorical_id": args.categorical_id,
        },
        "dataset": meta,
        "machine": machine_info(),
        "results": {},
    }
    if args.mode in ("memory", "all"):
        columns_mb = in_memory_size(folder)
        report["raw"] = {
            "parquet_mb": meta["parquet_bytes"] / MB,
            "frame_mb": sum(columns_mb.values()),
            "frame_columns_mb": columns_mb,
            "float32_values_mb": rows * 4 / MB,
        }
        report["results"]["fit"] = spawn(args, "fit")
        report["results"]["predict"] = spawn(args, "predict")
    if args.mode in ("throughput", "all"):
        report["results"]["throughput"] = spawn(args, "throughput")
    any_result = next(iter(report["results"].values()))
    report["versions"] = any_result["versions"]
    report["forecaster_file"] = any_result.get("forecaster_file")
    report["wall_s"] = time.perf_counter() - wall0
    return report


def command_line(args: argparse.Namespace) -> str:
    parts = ["python benchmarks/bench_scale.py"]
    if args.quick:
        parts.append("--quick")
    elif (args.series, args.steps) != (10_000, 5_000):
        parts.append(f"--series {args.series} --steps {args.steps}")
    if args.mode != "all":
        parts.append(f"--mode {args.mode}")
    if args.device != "cpu":
        parts.append(f"--device {args.device}")
    if args.categorical_id:
        parts.append("--categorical-id")
    if args.tag:
        parts.append(f"--tag {args.tag}")
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def fmt_mb(mb: float) -> str:
    return f"{mb / 1024:.2f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


def render_memory(report: dict[str, Any]) -> list[str]:
    cfg, raw, res = report["config"], report["raw"], report["results"]
    fit, pred = res["fit"], res["predict"]
    f32 = raw["float32_values_mb"]
    lines = [
        f"**Large panel: {cfg['series']:,} series x {cfg['steps']:,} hourly steps = "
        f"{cfg['rows']:,} rows** from {len(report['dataset']['files'])} Parquet files "
        f"({fmt_mb(raw['parquet_mb'])} on disk; {fmt_mb(raw['frame_mb'])} as a Polars frame: "
        f"id String, time Datetime, value Float64; {fmt_mb(f32)} as float32 values"
        + ("; id cast to Categorical in the scan" if cfg.get("categorical_id") else "")
        + "). "
        f"RNNForecaster defaults (segment GRU 128, L=96, H={cfg['horizon']}), "
        f"`max_epochs=1`, `windows_per_epoch=32768`, device {cfg['device']}, "
        f"{fit['torch_threads']} threads.",
        "",
        "| step | wall time | peak RSS | peak - baseline | x frame | x float32 values |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, r in (
        ("`fit(pl.scan_parquet(...))`, 1 epoch", fit),
        (f"`predict(pl.scan_parquet(...))`, {cfg['series']:,} series", pred),
    ):
        total = next(s for s in r["stages"] if s["depth"] == 0)
        inc = r["peak_mb"] - r["rss_baseline_mb"]
        lines.append(
            f"| {label} | {fmt_s(total['seconds'])} | {fmt_mb(r['peak_mb'])} | {fmt_mb(inc)} | "
            f"{inc / raw['frame_mb']:.1f}x | {inc / f32:.1f}x |"
        )
    lines += [
        "",
        "| stage | wall time | RSS at start | peak during | increase |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, r in (("fit", fit), ("predict", pred)):
        for s in r["stages"]:
            if s["depth"] == 0:
                continue
            indent = "&nbsp;&nbsp;" * (s["depth"] - 1)
            lines.append(
                f"| {label}: {indent}{s['name']} | {fmt_s(s['seconds'])} | "
                f"{fmt_mb(s['rss_before_mb'])} | {fmt_mb(s['peak_mb'])} | "
                f"+{fmt_mb(max(0.0, s['peak_increase_mb']))} |"
            )
    hist = fit["history"][-1] if fit["history"] else {}
    contended = max(fit["other_cpus"] or 0.0, pred["other_cpus"] or 0.0) > 0.25
    lines += [
        "",
        f"Training windows {fit['n_train_windows']:,} (32,768 sampled per epoch), validation "
        f"windows {fit['n_val_windows']:,}; epoch train loss {hist.get('train_loss', 0):.4f}, "
        f"val loss {hist.get('val_loss', 0) or 0:.4f}. Forecast: {pred['forecast_rows']:,} rows "
        f"for {pred['forecast_series']:,} series, all finite: {pred['forecast_finite']}. "
        f"Baseline RSS (interpreter + libraries): {fit['rss_baseline_mb']:.0f} MB; fit peak "
        f"sampled {fit['max_sampled_mb']:.0f} MB vs kernel high-water mark "
        f"{fit['peak_mb']:.0f} MB. Other processes' CPU load: fit {fit['other_cpus']}, predict "
        f"{pred['other_cpus']} CPUs"
        + (" (**contended**: times are pessimistic)." if contended else " (idle machine)."),
    ]
    return lines


def render_throughput(report: dict[str, Any]) -> list[str]:
    cfg, thr = report["config"], report["results"]["throughput"]
    where = thr.get("gpu") or f"CPU, {thr['torch_threads']} threads"
    lines = [
        f"**Inference throughput: {cfg['series']:,} series, H={cfg['horizon']}, on "
        f"{thr['device']} ({where})**, medians of {cfg['repeats']} after a warm-up.",
        "",
        "| model | `predict(frame)` end to end | series/s | network forward only | series/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, rec in thr["models"].items():
        p, n = rec["predict"], rec["network_forward"]
        lines.append(
            f"| {label} | {fmt_s(p['median_s'])} | {p['series_per_s']:,.0f} | "
            f"{fmt_s(n['median_s'])} | {n['series_per_s']:,.0f} |"
        )
    loads = [
        v
        for rec in thr["models"].values()
        for v in (rec["predict"]["other_cpus"],)
        if v is not None
    ]
    lines += [
        "",
        f"`predict` gets a frame of the last {next(iter(thr['models'].values()))['lookback']} "
        "steps of every series (the lookback) and returns the forecast frame: validation, Panel, "
        "scaling, network (batches of "
        f"{next(iter(thr['models'].values()))['predict_batch']:,} series) and the output frame. "
        "The models are fitted for one short epoch on the last "
        f"{THROUGHPUT_STEPS} steps of every series (speed does not depend on the weights). "
        f"Other processes' CPU load: up to {max(loads, default=0.0)} CPUs"
        + (
            " (**contended**: times are pessimistic)."
            if max(loads, default=0.0) > 0.25
            else " (idle machine)."
        ),
    ]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    lines: list[str] = []
    if "fit" in report["results"]:
        lines += [*render_memory(report), ""]
    if "throughput" in report["results"]:
        lines += [*render_throughput(report), ""]
    mach, ver = report["machine"], report["versions"]
    lines += [
        f"Measured {mach['date']} on {mach.get('cpu_model', mach['processor'])} "
        f"({mach['cpu_count']} CPUs, {mach.get('mem_total_gb', 0):.0f} GB), Python "
        f"{mach['python']}, polars {ver['polars']}, torch {ver['torch']}. Each step runs in a "
        f"fresh process. Reproduce: `{report['command']}`.",
        "",
    ]
    source = report.get("forecaster_file") or ""
    if source and not source.startswith(str(REPO)):
        lines[-1:-1] = [f"The package was imported from `{source}` (not this checkout).", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("memory", "throughput", "all"), default="all")
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=5_000)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads in the workers (0: torch's default)"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=REPO / "benchmarks" / ".cache",
        help="where the Parquet dataset is generated once (git-ignored)",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=60.0,
        help="seconds to wait at most, before each step, for other processes to go idle",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument(
        "--categorical-id",
        action="store_true",
        help="memory part: cast the id column to Categorical in the scan (fit and predict)",
    )
    parser.add_argument(
        "--tag", default="", help="appended to the output file names, e.g. 'before_fixes'"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 x 1000")
    parser.add_argument("--worker", choices=("fit", "predict", "throughput"), help="internal")
    args = parser.parse_args(argv)
    if args.quick and args.worker is None:
        args.series, args.steps = 200, 1000
    return args


def output_stem(args: argparse.Namespace) -> str:
    stem = "bench_scale"
    if args.mode != "all":
        stem += f"_{args.mode}"
    if args.device != "cpu":
        stem += f"_{args.device}"
    if args.quick:
        stem += "_quick"
    elif (args.series, args.steps) != (10_000, 5_000):
        stem += f"_s{args.series}_t{args.steps}"
    if args.categorical_id:
        stem += "_catid"
    if args.tag:
        stem += f"_{args.tag}"
    return stem


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        print(RESULT_TAG + json.dumps(worker(args), default=str), flush=True)
        return
    report = orchestrate(args)
    stem = output_stem(args)
    args.out.mkdir(parents=True, exist_ok=True)
    for suffix, text in (
        (".json", json.dumps(report, indent=2, default=str) + "\n"),
        (".md", render_markdown(report)),
    ):
        write_result(args.out / f"{stem}{suffix}", text)
    print(render_markdown(report))
    print(f"[bench_scale] wrote {args.out / stem}.json and .md in {report['wall_s']:.0f} s")


if __name__ == "__main__":
    main()

"""What the benchmark scripts share: how busy the rest of the machine is while they time, and
how they write their results.

These 2-core machines run other jobs; a timing taken while another process uses a CPU is
pessimistic. Every script records ``other_cpus`` (CPU use of all other processes during a timed
block, in CPUs) and can wait for the machine to go idle before a measurement. Every results
file is written with :func:`write_result` (atomically), so that a benchmark stopped while it
writes leaves the previous file whole.
"""

from __future__ import annotations

import os
import time
from typing import Any


def write_result(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write a results (or generated data) file atomically with the package's one writer: a
    temporary file beside ``path``, flushed and renamed over it, so that a reader sees the old
    file or the new one, never a part (``accuracy.json`` holds every row measured so far)."""
    from forecaster._io import write_bytes_atomic

    write_bytes_atomic(path, data.encode() if isinstance(data, str) else data)


def machine_busy_s() -> float | None:
    """CPU seconds all processes of the machine have spent busy so far (``/proc/stat``)."""
    try:
        with open("/proc/stat") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait


def _own_cpu_s() -> float:
    """CPU seconds of this process and of its children that have ended (a benchmark that
    runs each method in a child process: the child's work is not another process's load)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class Timed:
    """Wall time of a block (``seconds``) and the other processes' CPU use meanwhile
    (``other_cpus``, None where ``/proc/stat`` is unavailable)."""

    other_cpus: float | None = None
    seconds: float = 0.0

    def __enter__(self) -> Timed:
        self.m0, self.p0, self.t0 = machine_busy_s(), _own_cpu_s(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        m1 = machine_busy_s()
        if self.m0 is not None and m1 is not None and self.seconds > 0:
            own = _own_cpu_s() - self.p0
            self.other_cpus = round(max(0.0, (m1 - self.m0 - own) / self.seconds), 3)


def wait_for_idle(max_wait: float, threshold: float = 0.2) -> dict[str, Any]:
    """Wait (at most ``max_wait`` s) until other processes use < ``threshold`` CPUs over a
    2-second probe; returns the seconds waited and the last probe's load."""
    t0 = time.perf_counter()
    while True:
        with Timed() as load:
            time.sleep(2.0)
        waited = time.perf_counter() - t0
        if load.other_cpus is None or load.other_cpus < threshold or waited >= max_wait:
            return {"waited_s": round(waited, 1), "other_cpus_before_start": load.other_cpus}
        time.sleep(3.0)


def machine_info() -> dict[str, Any]:
    """What a result was measured on: date, platform, CPUs (and the ones this process may use),
    CPU model, memory, library versions, torch threads and the GPU when there is one."""
    import datetime as dt
    import platform

    import numpy as np
    import polars as pl
    import torch

    import forecaster

    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "polars": pl.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "forecaster": forecaster.__version__,
    }
    if hasattr(os, "sched_getaffinity"):
        info["affinity_cpus"] = len(os.sched_getaffinity(0))
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            info["mem_total_gb"] = int(fh.readline().split()[1]) / 2**20
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info

"""Shared test settings."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny networks run faster on one thread, and the 2-core CI machine is not oversubscribed
    by torch's intra-op threads fighting subprocesses started by other tests."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _sigint_as_in_a_terminal():
    """Every test gets Ctrl-C as in a terminal or notebook (Python's handler raising
    KeyboardInterrupt): a test run started in the background by a non-interactive shell (a CI
    job, ``nohup ... &``) inherits an ignored SIGINT, Python then installs no handler, and a
    test that sends itself a SIGINT saw nothing (it passed or failed by where it was run). A
    test may still set another disposition: it is put back after each test."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if signal.getsignal(signal.SIGINT) is not previous and previous is not None:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def device_seeding_calls(monkeypatch) -> list[str]:
    """The calls that seed a device's generator (CUDA, MPS, XPU), recorded instead of run;
    ``torch.manual_seed`` makes them all (CUDA's queued for its initialisation when CUDA has
    not started)."""
    calls: list[str] = []
    for module, name in (
        (torch.cuda, "manual_seed"),
        (torch.cuda, "manual_seed_all"),
        (torch.mps, "manual_seed"),
        (torch.xpu, "manual_seed"),
        (torch.xpu, "manual_seed_all"),
    ):
        label = f"{module.__name__}.{name}"
        monkeypatch.setattr(module, name, lambda seed, label=label: calls.append(label))
    return calls


def tree_digest(root: Path, *, ignore: tuple[str, ...] = ()) -> dict[str, str]:
    """Every entry below ``root`` (links not followed) with a digest of what it is: the sha256
    of a file, the target of a link, ``dir`` for a folder. Paths starting with one of
    ``ignore`` (relative, posix) are left out."""
    digest: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if any(relative == p or relative.startswith(p.rstrip("/") + "/") for p in ignore):
            continue
        if path.is_symlink():
            digest[relative] = f"link:{os.readlink(path)}"
        elif path.is_dir():
            digest[relative] = "dir"
        elif path.is_file():
            digest[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest[relative] = "special"
    return digest


class TreeGuard:
    """A snapshot of a folder tree; :meth:`changes` lists what differs from it now, outside
    the paths a run may write (see the ``tree_guard`` fixture)."""

    def __init__(self, root: Path, allowed: tuple[str, ...]) -> None:
        self.root, self.allowed = root, allowed
        self.before = tree_digest(root, ignore=allowed)

    def changes(self, *also_allowed: str) -> list[str]:
        after = tree_digest(self.root, ignore=(*self.allowed, *also_allowed))
        changed = []
        for key in sorted(set(self.before) | set(after)):
            if key not in self.before:
                changed.append(f"{key}: added")
            elif key not in after:
                changed.append(f"{key}: removed")
            elif self.before[key] != after[key]:
                changed.append(f"{key}: changed")
        return changed

    def assert_unchanged(self, *also_allowed: str) -> None:
        changed = self.changes(*also_allowed)
        assert not changed, f"files outside the run's own changed under {self.root}: {changed}"


@pytest.fixture
def tree_guard():
    """``tree_guard(root, allowed=("outputs/x",))`` snapshots ``root`` now; call
    ``.assert_unchanged()`` after the action under test: nothing outside ``allowed`` (and
    ``mlflow/``, the tracking store) may have been added, removed or changed."""

    def snapshot(root: Path, allowed: tuple[str, ...] = ()) -> TreeGuard:
        return TreeGuard(Path(root), (*allowed, "mlflow", ".pytest_cache", "__pycache__"))

    return snapshot


# ------------------------------------------------------------------------------------------
# MLflow and tracking state (tests of tracking, tuning with track=True, tracked pipelines)
# ------------------------------------------------------------------------------------------

MLFLOW_VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_RUN_ID",  # names the run fits log into when none is active
)


def reset_mlflow_state(
    monkeypatch: pytest.MonkeyPatch, cwd: Path, *, clear: tuple[str, ...] = ()
) -> None:
    """Fresh MLflow and forecaster tracking state in the working directory ``cwd``, through
    public APIs only: the MLflow variables (and ``clear``) removed from the environment
    (``mlflow.set_tracking_uri`` / ``set_experiment`` write them, so the monkeypatch restores
    what an earlier test set), ``mlflow.set_tracking_uri(None)`` (forgets a URI set in this
    process), tracking's own reset and autolog off. No tracking URI is set: a test that reaches
    a store names an absolute one (MLflow caches its stores by URI, so the relative default URI
    could reach an earlier test's folder)."""
    import mlflow
    from forecaster import tracking
    from forecaster.tracking import config

    monkeypatch.chdir(cwd)
    for name in (*MLFLOW_VARIABLES, *clear):
        monkeypatch.setenv(name, "")  # records the original so that teardown restores it
        monkeypatch.delenv(name)
    mlflow.set_tracking_uri(None)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    config.state.reset()
    tracking.autolog(False)


def forget_mlflow_state() -> None:
    """End what a test left: its active runs, autolog, the tracking URI it set."""
    import mlflow
    from forecaster import tracking
    from forecaster.tracking import config

    while mlflow.active_run() is not None:
        mlflow.end_run()
    tracking.autolog(False)
    config.state.reset()
    mlflow.set_tracking_uri(None)


# ------------------------------------------------------------------------------------------
# pipeline specs (the small spec the pipeline, CLI, output and concurrency tests run)
# ------------------------------------------------------------------------------------------

MINI_SPEC_SECTIONS: dict[str, dict[str, object]] = {
    "pipeline": {"name": "mini"},
    "source": {"path": "data/*.csv", "format": "csv"},
    "series": {"id": "id", "time": "date", "targets": ["y"]},
    "model": {"lookback": 4, "horizon": 2, "hidden_size": 4, "max_epochs": 1, "random_state": 0},
    "evaluation": {"backtest_folds": 0},
    "tracking": {"enabled": False},
    "output": {"plot_series": 0},
}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def mini_spec(**sections: dict[str, object] | str | None) -> str:
    """The TOML text of the small pipeline spec (:data:`MINI_SPEC_SECTIONS`: two daily series,
    a tiny network, one epoch, no backtest, no tracking, no plots). Each keyword names a section:
    a dict adds (or replaces) keys, ``None`` as a key's value drops it; a string is TOML text
    added at the end of the section as it is; ``None`` drops the section."""
    merged: dict[str, list[str]] = {}
    for name in {**MINI_SPEC_SECTIONS, **sections}:
        keys = dict(MINI_SPEC_SECTIONS.get(name, {}))
        extra = sections.get(name, {})
        if name in sections and extra is None:
            continue
        if isinstance(extra, dict):
            keys.update(extra)
        lines = [f"{key} = {_toml_value(v)}" for key, v in keys.items() if v is not None]
        merged[name] = lines + ([extra] if isinstance(extra, str) and extra else [])
    return "".join(
        f"[{name}]\n" + "".join(f"{line}\n" for line in lines) + "\n"
        for name, lines in merged.items()
    )


def sine_panel(
    n_series: int = 2, n_steps: int = 160, *, start: dt.date = dt.date(2020, 1, 1), period: int = 4
) -> pl.DataFrame:
    """A small daily panel (``id``, ``date``, ``y``): series ``i`` is
    ``sin(t / (period + i)) + i``."""
    t = np.arange(n_steps)
    dates = pl.date_range(start, start + dt.timedelta(days=n_steps - 1), "1d", eager=True)
    return pl.DataFrame(
        {
            "id": np.repeat([f"s{i}" for i in range(n_series)], n_steps),
            "date": pl.concat([dates] * n_series),
            "y": np.concatenate([np.sin(t / (period + i)) + i for i in range(n_series)]),
        }
    )


TINY_DAILY_MODEL = {
    "target": "y", "id_col": "id", "time_col": "date", "freq": "1d", "lookback": 8,
    "horizon": 3, "hidden_size": 4, "max_epochs": 1, "windows_per_epoch": 32,
    "batch_size": 32, "random_state": 0, "progress": False, "baseline": "none",
}  # fmt: skip
"""Parameters of a tiny daily model of :func:`sine_panel` without the baseline blend (a fit
of a second or so, for tests of what a fit warns or logs)."""


def staggered_copies(ends: dict[str, int], *, integer: bool = False) -> pl.DataFrame:
    """Series ``s0`` of :func:`sine_panel` (200 days) under each name of ``ends``, cut after
    its first ``ends[name]`` rows (``date``: days, or integer steps 0, 1, ... with
    ``integer``): a global model fitted on one copy up to a later time than another's own
    end has seen that other series' period after its end (the very values, for a copy)."""
    one = sine_panel(1, 200)
    if integer:
        one = one.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("date"))
    return pl.concat(one.head(end).with_columns(id=pl.lit(name)) for name, end in ends.items())


STAGGERED_MODEL = {**TINY_DAILY_MODEL, "validation_size": 0}
"""A tiny model of :func:`staggered_copies` (dates; drop ``freq`` for integer steps)."""


GAPPY_MODEL = {
    "target": "y", "id_col": "id", "time_col": "date", "freq": "1d", "lookback": 8,
    "horizon": 3, "hidden_size": 4, "max_epochs": 1, "windows_per_epoch": 64,
    "batch_size": 32, "random_state": 0, "progress": False, "missing": "ffill",
}  # fmt: skip
"""Parameters of a tiny daily model that fills the gaps of :func:`gappy_panel` (with a
warning in every fit: a third of the days are made up)."""


def gappy_panel() -> pl.DataFrame:
    """:func:`sine_panel` without every third day of the month (a third of its rows)."""
    return sine_panel().filter(pl.col("date").dt.day() % 3 != 0)


def forecaster_warning_kinds(caught: list[warnings.WarningMessage]) -> Counter:
    """How often each kind of ForecasterWarning was caught: (category, message with its
    numbers masked, so near-copies count as one kind)."""
    from forecaster.exceptions import ForecasterWarning

    return Counter(
        (w.category.__name__, re.sub(r"\d+(?:\.\d+)?", "#", str(w.message)))
        for w in caught
        if issubclass(w.category, ForecasterWarning)
    )


def repeated_calls_script(call: str, fit_on: str = "frame") -> str:
    """A script for :func:`stderr_under_default_warnings`: a tiny model of two sine series
    (``frame``, integer times ``t``) fitted on ``fit_on``, then three times the user's own
    ``UserWarning`` raised at one line followed by ``call`` (of ``model`` and ``frame``)."""
    return f"""
import warnings
import numpy as np, polars as pl, torch
from forecaster import RNNForecaster
torch.set_num_threads(1)
torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])  # sympy's import: catch_warnings
t = np.arange(120)
frame = pl.DataFrame(
    {{"id": np.repeat(["a", "b"], 120), "t": np.tile(t, 2), "y": np.sin(np.tile(t, 2) / 4)}}
)
model = RNNForecaster(
    target="y", id_col="id", time_col="t", freq=1, lookback=8, horizon=3, hidden_size=4,
    max_epochs=1, windows_per_epoch=32, batch_size=32, random_state=0, progress=False,
    baseline="none",
).fit({fit_on})
for _ in range(3):
    warnings.warn("the user's own note", UserWarning)
    {call}
"""


def stderr_under_default_warnings(script: str) -> str:
    """The stderr of ``script`` run in a fresh interpreter under Python's default warning
    filter (no PYTHONWARNINGS; pytest records a test's warnings with its own filters), with
    this checkout's forecaster; fails the test when the script fails."""
    import forecaster

    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = str(Path(forecaster.__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
        check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stderr


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a test server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    """Whether ``url`` answers HTTP 200 within 2 s (a server's health or ping endpoint)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def resign_manifest(folder: Path) -> None:
    """Rewrite a saved model's manifest for the files now in ``folder``: a tamper that also
    forges the manifest, so that the checks behind it are reached."""
    from forecaster import _io

    details = json.loads((folder / "manifest.json").read_text())["details"]
    (folder / "manifest.json").unlink()
    _io.write_manifest(folder, "model", details)


def edit_saved_config(folder: Path, edit: Callable[[dict], object], resign: bool = True) -> None:
    """Apply ``edit`` to a saved model's parsed config in place (its return value is ignored),
    and re-sign the manifest (``resign``)."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    if resign and (folder / "manifest.json").exists():
        resign_manifest(folder)


def for_head(params: dict, head: str) -> dict:
    """``params`` with ``head``, without ``segment_length`` unless the head is the segment
    head (fit refuses a segment_length another head would ignore)."""
    kept = {k: v for k, v in params.items() if k != "segment_length" or head == "segment"}
    return {**kept, "head": head}


def write_checkpoint(path: Path) -> None:
    """A real forecaster checkpoint file at ``path`` (one epoch of a tiny network)."""
    from forecaster.nn import RecurrentNet
    from forecaster.training.checkpoint import Checkpointer
    from forecaster.training.loop import train

    torch.manual_seed(0)
    net = RecurrentNet(n_features=1, n_targets=1, lookback=4, horizon=1, hidden_size=2)
    x, y = torch.randn(8, 4, 1), torch.randn(8, 1, 1)
    train(
        net, lambda e: [(x, None, y)], max_epochs=1, checkpoint=Checkpointer(path), progress=False
    )


@pytest.fixture
def python_sigint_handler():
    """Python's own SIGINT handler (raises KeyboardInterrupt), as in a terminal or notebook,
    for the test: a process started in the background by a non-interactive shell (a CI job,
    ``nohup ... &``) ignores SIGINT, and Python then installs no handler at all."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn`` of a child process that must take Ctrl-C as a terminal's would: SIGINT's
    default disposition (a child inherits an ignored SIGINT from a background parent, and
    Python then installs no handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ctrl_c_as_runs_are_created(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run MLflow creates (``MlflowClient.create_run``, which ``mlflow.start_run`` calls
    too) gets a Ctrl-C (SIGINT) once the store has created it, before the call returns."""
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    create = TrackingServiceClient.create_run

    def create_then_ctrl_c(*args: Any, **kwargs: Any) -> Any:
        run = create(*args, **kwargs)  # the run is in the store
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, in the main thread
        return run

    monkeypatch.setattr(TrackingServiceClient, "create_run", create_then_ctrl_c)

"""Runs the Python code blocks of README.md and docs/*.md as tests (Sybil).

Every fenced ``python`` block is one test item; the blocks of one page share a namespace and
run in order, as a reader would run them, in a fresh temporary working directory (so that
``model.save("models/...")`` and the MLflow store land there, never in the repository). A block
that cannot run here (a server, a GPU, an Airflow installation) is preceded by an explicit
``<!-- skip: next -->`` comment and stays visible in the page. Each block is marked ``slow``
(they train small networks) and has a timeout of :data:`BLOCK_TIMEOUT` seconds.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from sybil import Sybil
from sybil.integration.pytest import SybilItem
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

# Each block runs in well under 60 s on the 2-core CI machine (docs/development.md lists the
# slowest); the timeout leaves room for a loaded machine.
BLOCK_TIMEOUT = 120

_SAVED = "_docs_saved_state"


def _setup(namespace: dict[str, Any]) -> None:
    """A fresh working directory and MLflow store for one page, one torch thread."""
    import torch

    workdir = Path(tempfile.mkdtemp(prefix="forecaster-docs-"))
    namespace[_SAVED] = {
        "cwd": os.getcwd(),
        "workdir": workdir,
        "env": {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI",)},
        "threads": torch.get_num_threads(),
    }
    os.chdir(workdir)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir / 'mlflow' / 'mlflow.db'}"
    (workdir / "mlflow").mkdir()
    torch.set_num_threads(1)


def _teardown(namespace: dict[str, Any]) -> None:
    """Back to the directory, environment and tracking state from before the page."""
    import torch

    saved = namespace.pop(_SAVED)
    if "mlflow" in sys.modules:
        import mlflow

        from forecaster import tracking

        while mlflow.active_run() is not None:
            mlflow.end_run()
        tracking.autolog(False)
        mlflow.set_tracking_uri(None)
    os.chdir(saved["cwd"])
    for name, value in saved["env"].items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    torch.set_num_threads(saved["threads"])
    namespace.clear()
    shutil.rmtree(saved["workdir"], ignore_errors=True)


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["README.md", "docs/*.md"],
    setup=_setup,
    teardown=_teardown,
    name="docs",
).pytest()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, SybilItem):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.timeout(BLOCK_TIMEOUT))

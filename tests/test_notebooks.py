"""The example notebooks in ``docs/notebooks``: committed executed, small, and still running.

The notebooks are committed *with* their outputs (small PNG figures, short tables) because the
docs site renders them without executing them (mkdocs-jupyter, ``execute: false``). So two kinds
of tests:

- fast: every committed notebook is valid nbformat, was executed top to bottom (every code cell
  has an output count, in order), has no error output, no widget state, imports no private
  forecaster name, and is under :data:`SIZE_CAP` bytes;
- slow: every notebook is executed again with nbclient on a fresh kernel (this interpreter:
  ipykernel's ``python3`` kernel runs ``sys.executable``) in an empty working folder, and fails on
  any error, on a file the notebook left in the folder it was run from (a notebook writes only
  into temporary folders it makes) and on a ``forecaster-*`` temporary folder it did not remove.
  The wall and CPU time of each are recorded (``record_property`` and printed).

Refresh the committed outputs after changing a notebook (or the library's output) with::

    python tests/test_notebooks.py                  # all four
    python tests/test_notebooks.py quickstart       # one

which executes each notebook the way the slow test does and writes it back in place.
"""

from __future__ import annotations

import json
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "docs" / "notebooks"
NOTEBOOKS = ("quickstart", "audio_mfcc", "tuning_tracking", "scheduled_pipeline")
SIZE_CAP = 400_000
"""Bytes a committed notebook may take (its figures are base64 PNGs at 72 dpi)."""
CELL_TIMEOUT = 240
"""Seconds one cell may run before nbclient stops the notebook."""
NOTEBOOK_TIMEOUT = 300
"""Seconds one notebook may take in the slow test (they take about 20 to 60 s each)."""

# A private forecaster name: ``forecaster._x``, ``forecaster.x._y`` or ``from forecaster...
# import _x`` (dunder names such as ``forecaster.__version__`` are public).
_PRIVATE = re.compile(
    r"\bforecaster(?:\.\w+)*\._[^\W_]\w*|^\s*from\s+forecaster[\w.]*\s+import\s+[^#\n]*\b_[^\W_]",
    re.MULTILINE,
)


# An absolute path of the machine that ran a notebook (its temporary folders, home, checkout),
# as a stored output may show one: a file's location in a warning, a temporary folder, an
# MLflow URI. The docs site would publish it.
_MACHINE_PATH = re.compile(
    r"(?<![\w.~-])/(?:tmp|var/folders|private|home|Users|root|work|mnt|opt|srv)/[^\s'\"<>)]*"
    r"|\b[A-Za-z]:\\{1,2}(?:Users|Windows|Temp)\b[^\s'\"<>)]*"
)


def notebook_path(name: str) -> Path:
    return NOTEBOOK_DIR / f"{name}.ipynb"


def execute(name: str, workdir: Path, tmpdir: Path | None = None) -> tuple[Any, float, float]:
    """Execute a notebook on a fresh kernel with ``workdir`` as its working folder (and
    ``tmpdir`` as its ``TMPDIR``, when given); return the executed notebook, its wall time and
    the CPU time of the kernel and the processes it started (user + system), in seconds: on a
    shared machine the wall time grows with the load, the CPU time does not. Raises nbclient's
    CellExecutionError at the first cell that fails."""
    import nbclient
    import nbformat

    nb = nbformat.read(notebook_path(name), as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        record_timing=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    kernel = {} if tmpdir is None else {"env": {**os.environ, "TMPDIR": str(tmpdir)}}
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    client.execute(**kernel)  # the kernel has exited (and was waited for) when this returns
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return nb, wall, cpu


def error_outputs(nb: Any) -> list[str]:
    """'cell N: ename: evalue' for every error output of the notebook."""
    return [
        f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_valid_executed_and_small(name: str) -> None:
    nbformat = pytest.importorskip("nbformat", reason="pip install 'forecaster-rnn[notebooks]'")
    path = notebook_path(name)
    size = path.stat().st_size
    assert size <= SIZE_CAP, (
        f"{path.name} is {size:,} bytes, over the cap of {SIZE_CAP:,}: shrink its figures "
        f"(dpi, fewer series) or tables, then refresh it with python tests/test_notebooks.py {name}"
    )
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "widgets" not in nb.metadata, f"{path.name} holds widget state (a progress bar?)"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and any(cell.cell_type == "markdown" for cell in nb.cells)
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name} is not executed top to bottom (execution counts {counts}): refresh it "
        f"with python tests/test_notebooks.py {name}"
    )
    assert not error_outputs(nb), error_outputs(nb)
    images = [
        out
        for cell in code
        for out in cell.outputs
        if "image/png" in out.get("data", {})  # a figure: the site shows them inline
    ]
    assert images, f"{path.name} shows no figure"
    private = [m.group(0) for cell in code for m in _PRIVATE.finditer(cell.source)]
    assert not private, f"{path.name} uses private names: {private}"


def machine_paths(nb: Any) -> list[str]:
    """'cell N: path' for every absolute path of a machine (:data:`_MACHINE_PATH`, and this
    checkout's and home folder's own) in the stored outputs' text (not in figures)."""
    own = [str(Path(__file__).resolve().parents[1]), str(Path.home())]
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else ():
            texts = [out.get("text", ""), out.get("evalue", ""), *out.get("traceback", [])]
            texts += [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
            text = "\n".join("".join(t) if isinstance(t, list) else str(t) for t in texts)
            paths = [m.group(0) for m in _MACHINE_PATH.finditer(text)]
            paths += [p for p in own if len(p) > 1 and p in text]
            found += [f"cell {i}: {p}" for p in paths]
    return found


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_shows_no_machine_path(name: str) -> None:
    """The stored outputs showed /tmp/forecaster-tuning-.../artifacts (an MLflow artifact
    URI), /tmp/forecaster-pipeline-... (a pipeline's output paths) and
    /work/main/forecaster/evaluation/backtest.py (a warning's file): paths of the machine
    that ran the notebook, published by the docs site."""
    nbformat = pytest.importorskip("nbformat", reason="pip install 'forecaster-rnn[notebooks]'")
    found = machine_paths(nbformat.read(notebook_path(name), as_version=4))
    assert not found, (
        f"{name}.ipynb's outputs show paths of the machine that ran it: {found[:5]}. Show "
        f"them relative to a folder the notebook names, then refresh it with python "
        f"tests/test_notebooks.py {name}"
    )


def test_machine_path_pattern() -> None:
    """The pattern of the check above finds absolute paths of a machine, and nothing else."""
    for text in (
        "/tmp/ipykernel_12/345.py:3: UnscoredPointsWarning: ...",
        "'file:///tmp/forecaster-tuning-mg4v24xh/artifacts/x'",
        "sqlite:////home/me/mlflow.db",
        "PosixPath('/Users/me/project')",
        "/var/folders/x/T/forecaster-pipeline-1",
        r"C:\\Users\\me\\AppData",
    ):
        assert _MACHINE_PATH.search(text), text
    for text in ("outputs/daily_close/2018-06-29", "<project>/outputs", "a/tmp/b", "1/home/2"):
        assert not _MACHINE_PATH.search(text), text


def test_private_name_pattern() -> None:
    """The pattern of the check above finds what it should, and nothing else."""
    assert _PRIVATE.search("from forecaster._io.atomic import write_atomic")
    assert _PRIVATE.search("x = forecaster.data._frames.f()")
    assert _PRIVATE.search("from forecaster.jobs import run_pipeline, _helper")
    assert not _PRIVATE.search("from forecaster.jobs import run_pipeline")
    assert not _PRIVATE.search("forecaster.__version__ and my_forecaster._x_private")
    assert not _PRIVATE.search("from forecaster import __version__")


def test_every_notebook_is_listed() -> None:
    """A notebook added to docs/notebooks is executed and checked here too."""
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.slow
@pytest.mark.timeout(NOTEBOOK_TIMEOUT)
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name: str, tmp_path: Path, record_property: Any) -> None:
    pytest.importorskip("nbclient", reason="pip install 'forecaster-rnn[notebooks]'")
    pytest.importorskip("ipykernel", reason="pip install 'forecaster-rnn[notebooks]'")
    workdir, tmpdir = tmp_path / "cwd", tmp_path / "tmp"
    workdir.mkdir()
    tmpdir.mkdir()
    nb, seconds, cpu = execute(name, workdir, tmpdir)
    record_property("seconds", round(seconds, 1))
    record_property("cpu_seconds", round(cpu, 1))
    print(f"{name}.ipynb executed in {seconds:.1f} s ({cpu:.1f} s of CPU)")
    assert not error_outputs(nb), error_outputs(nb)
    left = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*"))
    assert not left, f"{name}.ipynb wrote into the folder it ran from: {left}"
    made = sorted(p.name for p in tmpdir.iterdir() if p.name.startswith("forecaster-"))
    assert not made, f"{name}.ipynb left its temporary folders behind: {made}"


def refresh(names: list[str]) -> None:
    """Execute the notebooks and write them back with their outputs (see the module doc)."""
    import nbformat

    from forecaster._io.atomic import write_bytes_atomic

    for name in names:
        if name not in NOTEBOOKS:
            raise SystemExit(f"unknown notebook {name!r}: expected one of {', '.join(NOTEBOOKS)}")
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"notebook-{name}-") as workdir:
            nb, seconds, cpu = execute(name, Path(workdir))
        errors = error_outputs(nb)
        if errors:
            raise SystemExit(f"{name}.ipynb has errors, not written: {errors}")
        nb.metadata.pop("widgets", None)
        text = nbformat.writes(nb) + "\n"
        json.loads(text)  # written as nbformat wrote it, parsed back as a check
        write_bytes_atomic(notebook_path(name), text.encode())
        size = notebook_path(name).stat().st_size
        print(f"{name}.ipynb: executed in {seconds:.1f} s ({cpu:.1f} s of CPU), {size:,} bytes")


if __name__ == "__main__":
    refresh(sys.argv[1:] or list(NOTEBOOKS))

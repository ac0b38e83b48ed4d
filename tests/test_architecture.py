"""The house rules of the package, read from its import statements (every one, those inside
functions included): imports run one way through the layers, no module imports the package
facade, no import circle, no private name imported from another module, modules and functions of
a size a reader can hold, every ``LazyFrame`` collected by one helper (``forecaster._polars``:
the in-memory engine, whose float sums are the same bits every run); and every MLflow call
that writes the tracking store goes through ``forecaster.tracking.records``
(:func:`tracking_writes`).

The layers, from the bottom (a module may import its own layer and the layers below it):

    base (forecaster._*, forecaster.exceptions) -> persistence -> data (+ datasets) -> nn
    -> training -> evaluation -> estimators -> tracking -> tuning -> jobs -> the facade
    (forecaster/__init__.py, forecaster/__main__.py)
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "forecaster"

LAYERS = (
    "base",
    "persistence",
    "data",
    "nn",
    "training",
    "evaluation",
    "estimators",
    "tracking",
    "tuning",
    "jobs",
    "facade",
)
_LAYER_OF_TOP_NAME = {"datasets": "data", "exceptions": "base"}
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 120
# Functions allowed over MAX_FUNCTION_LINES: name -> the reason (also written at their top).
LONG_FUNCTIONS: dict[str, str] = {}
# The one module that runs a Polars LazyFrame; the methods that run one (``collect_schema``
# reads no data).
COLLECTOR = "forecaster._polars"
RUNS_A_QUERY = ("collect", "collect_all", "collect_async", "collect_batches", "profile")


@dataclass(frozen=True)
class Import:
    """One import statement of a module of the package, resolved to modules of the package."""

    module: str  # the importing module, e.g. "forecaster.data.panel"
    target: str  # the imported module of the package, e.g. "forecaster._io"
    names: tuple[str, ...]  # names taken from it (empty for ``import x``)
    line: int


def module_name(path: Path, root: Path) -> str:
    """Dotted name of the module in ``path`` of the package in ``root``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file, for every module of the package in ``root``."""
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def layer_of(module: str) -> str:
    """The layer of a module of the package (see the module docstring)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return "facade"
    top = parts[1]
    if top in _LAYER_OF_TOP_NAME:
        return _LAYER_OF_TOP_NAME[top]
    if top.startswith("_"):
        return "base"
    if top not in LAYERS:
        raise AssertionError(f"{module} belongs to no layer: add {top!r} to LAYERS")
    return top


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import of a module of the package in ``path`` (relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "forecaster":
                    found.append(Import(module, alias.name, (), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] != "forecaster":
                continue
            plain = []
            for alias in node.names:  # ``from pkg import submodule`` imports that module
                if f"{base}.{alias.name}" in modules:
                    found.append(Import(module, f"{base}.{alias.name}", (), node.lineno))
                else:
                    plain.append(alias.name)
            if plain:
                found.append(Import(module, base, tuple(plain), node.lineno))
    return found


def all_imports(root: Path) -> list[Import]:
    modules = package_modules(root)
    return [imp for name, path in modules.items() for imp in imports_of(name, path, modules)]


def upward_imports(imports: list[Import]) -> list[str]:
    """Imports of a module of a higher layer (or of the facade) than the importer's."""
    bad = []
    for imp in imports:
        if imp.module.split(".")[-1] == "__main__":
            continue
        mine, theirs = LAYERS.index(layer_of(imp.module)), LAYERS.index(layer_of(imp.target))
        if theirs > mine or (imp.target == "forecaster" and imp.module != "forecaster"):
            bad.append(
                f"{imp.module}:{imp.line} ({layer_of(imp.module)}) imports {imp.target} "
                f"({layer_of(imp.target)})"
            )
    return bad


def _ancestors(module: str) -> set[str]:
    """The packages enclosing ``module`` below the facade (importing it runs their
    ``__init__``)."""
    parts = module.split(".")
    return {".".join(parts[:k]) for k in range(2, len(parts))}


def import_cycles(imports: list[Import], modules: dict[str, Path]) -> list[list[str]]:
    """Strongly connected groups of modules (Tarjan) over the import statements: an import of a
    module is an edge to it and to the packages enclosing it (their ``__init__`` runs first and
    runs what it imports), except the importer's own packages, which are already being imported
    when their ``__init__`` imports the module."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for imp in imports:
        own = _ancestors(imp.module) | {imp.module}
        for target in {imp.target} | _ancestors(imp.target):
            if target not in own and target in graph:
                graph[imp.module].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def private_imports(imports: list[Import]) -> list[str]:
    """Private names (``_x``) taken from another module."""
    return [
        f"{imp.module}:{imp.line} imports {name} from {imp.target}"
        for imp in imports
        for name in imp.names
        if name.startswith("_") and not name.startswith("__") and imp.target != imp.module
    ]


def oversized(root: Path) -> list[str]:
    """Modules over MAX_MODULE_LINES and functions over MAX_FUNCTION_LINES (not listed in
    LONG_FUNCTIONS)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            found.append(f"{path.relative_to(root.parent)}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES and node.name not in LONG_FUNCTIONS:
                    found.append(f"{path.relative_to(root.parent)}:{node.name}: {length} lines")
    return found


def bare_collects(root: Path) -> list[str]:
    """Calls that run a Polars query (``.collect()``, ``pl.collect_all``, ``.sink_parquet``, ...)
    outside :data:`COLLECTOR`: Polars' default engine sums floats in another order from run
    to run, so the package collects through ``forecaster._polars.collect``."""
    found = []
    for name, path in package_modules(root).items():
        if name == COLLECTOR:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            method = node.func.attr
            if method in RUNS_A_QUERY or method.startswith("sink_"):
                found.append((str(path.relative_to(root.parent)), node.lineno, method))
    return [f"{path}:{line}: .{method}(" for path, line, method in sorted(found)]


MLFLOW_WRITES = frozenset({
    "log_batch", "log_param", "log_params", "log_metric", "log_metrics", "log_input",
    "log_inputs", "log_outputs", "log_model", "log_table", "log_artifact", "log_artifacts",
    "log_dict", "log_text", "log_figure", "log_image", "set_tag", "set_tags", "delete_tag",
    "set_terminated", "update_run", "create_run", "delete_run", "restore_run", "start_run",
    "end_run", "create_experiment", "restore_experiment", "delete_experiment",
    "set_experiment_tag", "register_model", "create_registered_model", "create_model_version",
    "initialize_logged_model", "finalize_logged_model", "set_logged_model_tags",
})  # fmt: skip
"""Methods of ``MlflowClient`` and functions of ``mlflow`` that write the tracking store (and
``Model.log``): a SIGTERM or Ctrl-C raised inside one of its SQLite transactions left the
database's write lock held, and the run's cleanups then failed with "database is locked"."""

HOLDING_WRITES = frozenset({"tracking_write", "created_run"})
"""The functions of WRITES_MODULE that make the write they are given (their first argument)
with an interrupt held until it ends (``created_run``: through ``tracking_write``)."""

WRITES_MODULE = "forecaster/tracking/records.py"
"""The one module that calls them directly (``tracking_write``, the batched writes)."""

ARTIFACT_UPLOADS = frozenset(
    {"log_artifact", "log_artifacts", "log_dict", "log_text", "log_figure", "log_image"}
)
"""Writes allowed anywhere: uploads of files to the artifact store, which can be long (the
interrupt is not held through them) and write no database row (MLflow 3.17 on a SQLite store:
no INSERT, UPDATE or DELETE; the run's artifact location is read, then the files copied), so
an interrupt in one leaves no lock. ``Model.log`` uploads files too, but then writes rows (the
run's output, the model's state, a registration): it goes through ``tracking_write``."""


def _write_name(node: ast.AST) -> str | None:
    """The MLflow write ``node`` refers to (an attribute such as ``client.set_tag`` or
    ``mlflow.models.Model.log``), None for anything else."""
    if not isinstance(node, ast.Attribute):
        return None
    if node.attr in MLFLOW_WRITES:
        return node.attr
    owner = node.value
    owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
    return "Model.log" if node.attr == "log" and owner_name == "Model" else None


def tracking_writes(root: Path) -> list[str]:
    """MLflow writes outside WRITES_MODULE: an attribute of MLFLOW_WRITES (called or passed on)
    that is not the call one of HOLDING_WRITES makes (its first argument), or an import of one
    from ``mlflow``; ARTIFACT_UPLOADS are allowed."""
    found: list[tuple[str, int, str]] = []
    for path in sorted(root.rglob("*.py")):
        where = path.relative_to(root.parent).as_posix()
        if where == WRITES_MODULE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        held = {
            id(node.args[0])
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in HOLDING_WRITES
            and node.args
        }
        for node in ast.walk(tree):
            name = _write_name(node)
            if name is not None and name not in ARTIFACT_UPLOADS and id(node) not in held:
                found.append((where, node.lineno, ast.unparse(node)))
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlflow"):
                found += [
                    (where, node.lineno, f"from {node.module} import {alias.name}")
                    for alias in node.names
                    if alias.name in MLFLOW_WRITES - ARTIFACT_UPLOADS
                ]
    return [f"{where}:{line}: {text}" for where, line, text in sorted(found)]


# ------------------------------------------------------------------------------------------
# the package
# ------------------------------------------------------------------------------------------


def test_imports_run_one_way_through_the_layers():
    assert upward_imports(all_imports(PACKAGE_ROOT)) == []


def test_no_import_circle():
    modules = package_modules(PACKAGE_ROOT)
    assert import_cycles(all_imports(PACKAGE_ROOT), modules) == []


def test_no_private_name_is_imported_from_another_module():
    assert private_imports(all_imports(PACKAGE_ROOT)) == []


def test_modules_and_functions_fit_a_reader():
    assert oversized(PACKAGE_ROOT) == []


def test_every_query_is_collected_by_the_one_helper():
    assert bare_collects(PACKAGE_ROOT) == []


def test_every_tracking_write_holds_interrupts_until_it_ends():
    """A SIGTERM or Ctrl-C inside an MLflow write (a SQLite transaction) waits for its end:
    every write goes through ``forecaster.tracking.records`` (``tracking_write``, the batched
    ``log_params``, ``log_tags``, ``log_metrics``, ``end_run``). Some did not (a run's
    creation, a study run's deletion, a model claim, the pipeline's metrics, its run's start
    and end, a model's registration)."""
    assert tracking_writes(PACKAGE_ROOT) == []


def test_every_module_belongs_to_a_layer():
    for name in package_modules(PACKAGE_ROOT):
        assert layer_of(name) in LAYERS


# ------------------------------------------------------------------------------------------
# the checks themselves catch what they are for
# ------------------------------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "forecaster"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def tangled(tmp_path: Path) -> Path:
    """A package that breaks every rule once."""
    return _tree(
        tmp_path,
        {
            "__init__.py": "from forecaster.estimators.core import Model\n",
            "_io.py": "def _write():\n    pass\n",
            "data/__init__.py": "",
            "data/panel.py": "def f():\n    from forecaster.estimators.core import Model\n",
            "estimators/__init__.py": "",
            "estimators/core.py": (
                "from forecaster.evaluation import backtest\nfrom forecaster._io import _write\n"
                "import forecaster\nclass Model:\n    pass\n"
            ),
            "evaluation/__init__.py": "from .backtest import run\n",
            "evaluation/backtest.py": "from ..estimators.core import Model\ndef run():\n    pass\n",
            "nn/__init__.py": "",
            "nn/big.py": "def long():\n" + "    x = 1\n" * 130 + "\n" * 500,
            "data/read.py": (
                "import polars as pl\n"
                "def read(lazy):\n    return lazy.select(pl.len()).collect().item()\n"
                "def both(a, b):\n    return pl.collect_all([a, b])\n"
                "def write(lazy, path):\n    lazy.sink_parquet(path)\n"
            ),
        },
    )


def test_the_checks_find_upward_imports_cycles_private_names_and_sizes(tangled: Path):
    imports = all_imports(tangled)
    upward = upward_imports(imports)
    assert any(
        "forecaster.data.panel:2 (data) imports forecaster.estimators.core" in u for u in upward
    )
    assert any("forecaster.evaluation.backtest:1" in u for u in upward)  # relative import
    assert any("imports forecaster (facade)" in u for u in upward)
    cycles = import_cycles(imports, package_modules(tangled))
    circle = {
        "forecaster.estimators.core",
        "forecaster.evaluation",
        "forecaster.evaluation.backtest",
    }
    assert any(circle <= set(group) for group in cycles)
    assert private_imports(imports) == [
        "forecaster.estimators.core:2 imports _write from forecaster._io"
    ]
    assert oversized(tangled) == [
        "forecaster/nn/big.py: 631 lines",
        "forecaster/nn/big.py:long: 131 lines",
    ]
    assert bare_collects(tangled) == [
        "forecaster/data/read.py:3: .collect(",
        "forecaster/data/read.py:5: .collect_all(",
        "forecaster/data/read.py:7: .sink_parquet(",
    ]


def test_a_clean_package_passes(tmp_path: Path):
    root = _tree(
        tmp_path,
        {
            "__init__.py": "from forecaster.estimators.core import Model\n",
            "_io.py": "def write():\n    pass\n",
            "_polars.py": "def collect(lazy):\n    return lazy.collect(engine='in-memory')\n",
            "estimators/__init__.py": "",
            "estimators/core.py": (
                "from forecaster import _io\nfrom forecaster._polars import collect\n"
                "class Model:\n    def n(self, lazy):\n        return collect(lazy).height\n"
            ),
        },
    )
    imports = all_imports(root)
    assert upward_imports(imports) == []
    assert import_cycles(imports, package_modules(root)) == []
    assert private_imports(imports) == []
    assert oversized(root) == []
    assert bare_collects(root) == []


def test_the_tracking_write_check_finds_direct_writes(tmp_path: Path):
    root = _tree(
        tmp_path,
        {
            "tracking/records.py": "def f(client):\n    client.log_batch('r', [])\n",
            "tracking/bad.py": (
                "from mlflow import log_metric\n"
                "def f(client, mlflow, outcome):\n"
                "    client.set_terminated('r', 'KILLED')\n"
                "    outcome.remote('tag', client.set_tag, 'r', 'k', 'v')\n"
                "    mlflow.models.Model.log(name='model')\n"
                "    tracking_write(client.create_run, '0')\n"
                "    client.log_artifact('r', 'file')\n"
            ),
        },
    )
    assert tracking_writes(root) == [
        "forecaster/tracking/bad.py:1: from mlflow import log_metric",
        "forecaster/tracking/bad.py:3: client.set_terminated",
        "forecaster/tracking/bad.py:4: client.set_tag",
        "forecaster/tracking/bad.py:5: mlflow.models.Model.log",
    ]

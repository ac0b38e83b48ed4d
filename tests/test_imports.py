"""What ``import forecaster`` and the ``forecaster`` command line load, and that the lazily
imported public names (forecaster._lazy) all resolve.

The import checks run in fresh interpreters: in this process the other tests have long imported
everything.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import forecaster
import forecaster.exceptions
import forecaster.jobs

REPO = Path(__file__).resolve().parents[1]

# Heavy dependencies that none of these needs before a name that uses them is read.
HEAVY = ("torch", "polars", "numpy", "sklearn", "scipy", "pandas", "pyarrow", "optuna", "mlflow")
HEAVY += ("matplotlib", "pydantic", "safetensors")

CONSOLE_SCRIPT = "import sys; from forecaster.jobs.cli import main; sys.exit(main())"
"""What the ``forecaster`` console script (``forecaster.jobs.cli:main``) runs."""


def imported_by(*args: str, code: int = 0) -> tuple[set[str], str]:
    """The top-level modules a fresh ``python -X importtime ARGS`` imported (read from its
    import-time report), and its standard output; the process must exit with ``code``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        cwd=REPO,
        check=False,
    )
    assert done.returncode == code, done.stderr[-2000:]
    names = {
        line.rpartition("|")[2].strip().partition(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "forecaster" in names, done.stderr[-2000:]
    return names, done.stdout


def test_import_forecaster_loads_no_heavy_dependency():
    loaded, _ = imported_by("-c", "import forecaster")
    assert loaded & set(HEAVY) == set()


def test_a_name_is_imported_when_first_used():
    loaded, _ = imported_by("-c", "import forecaster; forecaster.DataValidationError")
    assert loaded & set(HEAVY) == set()
    loaded, _ = imported_by("-c", "import forecaster; forecaster.LSTMForecaster")
    assert {"torch", "polars", "sklearn"} <= loaded


COMMANDS = ["run", "fit", "predict", "backtest", "tune", "datasets"]


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_of_the_command_line_loads_no_heavy_dependency(command):
    argv = [command, "--help"] if command else ["--help"]
    loaded, out = imported_by("-c", CONSOLE_SCRIPT, *argv)
    assert out.startswith("usage: forecaster")
    assert loaded & set(HEAVY) == set()


def test_python_dash_m_forecaster_answers_help_without_heavy_dependencies():
    loaded, out = imported_by("-m", "forecaster", "--help")
    assert out.startswith("usage: forecaster") and "Exit codes" in out
    assert loaded & set(HEAVY) == set()


def test_version_and_a_usage_error_load_no_heavy_dependency():
    loaded, out = imported_by("-c", CONSOLE_SCRIPT, "--version")
    assert out.strip() == f"forecaster {forecaster.__version__}"
    assert loaded & set(HEAVY) == set()
    loaded, _ = imported_by("-c", CONSOLE_SCRIPT, "nonsense", code=2)
    assert loaded & set(HEAVY) == set()


def test_a_command_that_runs_imports_what_it_needs():
    loaded, out = imported_by("-c", CONSOLE_SCRIPT, "datasets")
    assert "stocks" in out and "polars" in loaded


def test_every_command_names_a_handler():
    from forecaster.jobs import commands
    from forecaster.jobs.parser import build_parser

    parser = build_parser()
    arguments = {"predict": ["spec.toml", "--model", "m"], "datasets": []}
    for command in COMMANDS:
        args = parser.parse_args([command, *arguments.get(command, ["spec.toml"])])
        assert callable(getattr(commands, args.handler)), command


# ------------------------------------------------------------------------------------------
# the public names
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("package", [forecaster, forecaster.jobs, forecaster.exceptions])
def test_every_public_name_resolves_and_is_listed(package):
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    assert set(package.__all__) <= set(dir(package))


@pytest.mark.parametrize("package", [forecaster, forecaster.jobs])
def test_the_lazy_table_and_all_agree(package):
    table = vars(package)["_ORIGINS"]
    assert set(table) == set(package.__all__) - {"__version__"}
    for name, origin in table.items():
        module = sys.modules.get(origin) or __import__(origin, fromlist=["_"])
        expected = module if origin == f"{package.__name__}.{name}" else getattr(module, name)
        assert getattr(package, name) is expected, name


def test_from_import_and_attribute_give_the_same_objects():
    from forecaster import LSTMForecaster, datasets, load
    from forecaster.estimators import LSTMForecaster as Direct

    assert LSTMForecaster is Direct is forecaster.LSTMForecaster
    assert datasets is forecaster.datasets and load is forecaster.persistence.load


@pytest.mark.parametrize("package", [forecaster, forecaster.jobs, forecaster.exceptions])
def test_a_misspelt_name_raises_attribute_error_naming_the_module(package):
    with pytest.raises(AttributeError, match=rf"module '{package.__name__}' has no attribute"):
        package.LSTMForecastr  # noqa: B018
    with pytest.raises(ImportError, match="LSTMForecastr"):
        exec(f"from {package.__name__} import LSTMForecastr", {})
    assert not hasattr(package, "__wrapped__")


def test_subpackages_are_attributes_as_before():
    assert forecaster.tracking.__name__ == "forecaster.tracking"
    assert forecaster.jobs.commands.__name__ == "forecaster.jobs.commands"


# ------------------------------------------------------------------------------------------
# NotFittedError: scikit-learn's contract without scikit-learn at import
# ------------------------------------------------------------------------------------------


def test_not_fitted_error_is_ours_and_scikit_learns():
    import sklearn.exceptions

    error = forecaster.NotFittedError("not fitted")
    assert isinstance(error, sklearn.exceptions.NotFittedError)
    assert isinstance(error, forecaster.ForecasterError)
    assert isinstance(error, ValueError) and isinstance(error, AttributeError)
    assert forecaster.exceptions.NotFittedError is forecaster.NotFittedError
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is forecaster.NotFittedError and str(again) == "not fitted"
    assert repr(forecaster.NotFittedError) == "<class 'forecaster.exceptions.NotFittedError'>"


def test_an_unfitted_estimator_raises_it():
    import sklearn.exceptions

    with pytest.raises(sklearn.exceptions.NotFittedError):
        forecaster.LSTMForecaster(target="y").predict(None)


def test_not_fitted_error_is_made_once_across_threads():
    code = """
import threading
import forecaster.exceptions as exceptions
seen, gate = [], threading.Barrier(8)
def take():
    gate.wait()
    seen.append(exceptions.NotFittedError)
threads = [threading.Thread(target=take) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
assert len({id(c) for c in seen}) == 1 and seen[0] is exceptions.NotFittedError
"""
    loaded, _ = imported_by("-c", code)
    assert "sklearn" in loaded


# ------------------------------------------------------------------------------------------
# a saved model loads in a fresh process (the classes register when the estimators import)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    import numpy as np

    folder = tmp_path_factory.mktemp("model") / "m"
    X = np.random.default_rng(0).normal(size=(64, 6, 1)).astype(np.float32)
    model = forecaster.RNNRegressor(hidden_size=4, max_epochs=1, random_state=0, device="cpu")
    forecaster.save(model.fit(X, X[:, -1, 0]), folder)
    return folder


@pytest.mark.parametrize(
    "code",
    [
        "import forecaster; forecaster.load(sys.argv[1])",
        "from forecaster import load; load(sys.argv[1])",
        "from forecaster.tracking.pyfunc import load_model_directory as f; f(sys.argv[1])",
    ],
)
def test_a_fresh_process_loads_a_saved_model(saved_model, code):
    imported_by("-c", f"import sys; {code}", str(saved_model))

"""The built distribution on its own: a wheel and an sdist built from this checkout, the wheel
installed into a fresh virtual environment outside the repository, then used there as a user
would (bundled data, a fit and predict, the ``forecaster`` command on a spec of its own).

The virtual environment with CPU torch and the core dependencies is cached across runs (it
takes minutes to build, the wheel seconds to reinstall) in
``$FORECASTER_WHEEL_SMOKE_CACHE`` (default ``~/.cache/forecaster``), in a folder named after a
hash of the Python version, the Makefile's ``TORCH_SPEC`` and the package's dependencies: a
change to any of them builds a new one. A cached environment that cannot serve (missing marker,
an interpreter that does not start, dependencies ``pip check`` finds unmet) is rebuilt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from filelock import FileLock, Timeout

from forecaster import __version__

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "forecaster" / "datasets" / "data"
CACHE_ENV = "FORECASTER_WHEEL_SMOKE_CACHE"
# Bump to throw away every cached environment (a change in how it is built below). 2: the
# distribution was renamed forecaster -> forecaster-rnn (an old environment holds the old one).
RECIPE = 2
# The distribution's name (the index's "forecaster" is an unrelated project) and its name in
# the file names of wheels, sdists and .dist-info folders; the import name stays "forecaster".
DISTRIBUTION = "forecaster-rnn"
FILE_PREFIX = f"forecaster_rnn-{__version__}"
# The license texts that go with the copies of the bundled data (pyproject's license-files).
LICENSE_FILES = (
    "LICENSE",
    *(f"{DATA.relative_to(REPO)}/{n}" for n in ("stocks/LICENSES.md", "audio/README.md")),
)
# Variables that would make the installed package read the checkout instead of itself.
LEAKS = ("PYTHONPATH", "PYTHONHOME", "FORECASTER_DATASETS_DIR", "VIRTUAL_ENV", "PYTHONSTARTUP")


def _run(
    cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _check(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (
        f"{' '.join(map(str, result.args))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result


def _torch_spec() -> list[str]:
    """The Makefile's ``TORCH_SPEC`` (the CPU build), so the test installs what ``make`` does."""
    found = re.search(r"^TORCH_SPEC \?= *(.+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert found, "Makefile lost its `TORCH_SPEC ?= ...` line"
    return found.group(1).split()


def _core_dependencies() -> list[str]:
    with (REPO / "pyproject.toml").open("rb") as file:
        return list(tomllib.load(file)["project"]["dependencies"])


def _cache_key() -> str:
    recipe = {
        "recipe": RECIPE,
        "python": sys.version,
        "base": sys.base_prefix,
        "torch": _torch_spec(),
        "dependencies": _core_dependencies(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a user with ``venv`` activated: nothing pointing at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKS}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONNOUSERSITE"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    return env


# --------------------------------------------------------------------------------------------
# Building the distributions
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``python -m build`` on the checkout: the sdist, then the wheel built from the sdist."""
    out = tmp_path_factory.mktemp("dist")
    started = time.perf_counter()
    # --no-isolation: the running environment's setuptools (the dev extra), no download.
    _check(
        _run(
            [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
            cwd=out,
        )
    )
    print(f"built in {time.perf_counter() - started:.1f} s")
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert [p.name for p in wheels] == [f"{FILE_PREFIX}-py3-none-any.whl"]
    assert [p.name for p in sdists] == [f"{FILE_PREFIX}.tar.gz"]
    return wheels[0], sdists[0]


def _data_files() -> dict[str, bytes]:
    files = {
        p.relative_to(REPO).as_posix(): p.read_bytes()
        for p in DATA.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    # 5 price files, 20 clips, the manifest, 3 data cards, the price files' license texts
    assert len(files) >= 30, sorted(files)
    return files


def test_wheel_holds_the_package_and_its_data_and_nothing_else(dists: tuple[Path, Path]) -> None:
    wheel, _ = dists
    dist_info = f"{FILE_PREFIX}.dist-info"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name, content in _data_files().items():
            assert name in names, f"{name} is not in the wheel: add its pattern to package-data"
            assert zf.read(name) == content, name
        modules = {
            p.relative_to(REPO).as_posix()
            for p in (REPO / "forecaster").rglob("*.py")
            if "__pycache__" not in p.parts
        }
        assert modules <= names, sorted(modules - names)
        licenses = {name: zf.read(f"{dist_info}/licenses/{name}") for name in LICENSE_FILES}
        metadata = zf.read(f"{dist_info}/METADATA").decode()
    assert b"Copyright (c) 2026 The forecaster developers" in licenses["LICENSE"]
    # the data's licenses go with the copies (was: MIT only, the LICENSE alone)
    assert licenses == {name: (REPO / name).read_bytes() for name in LICENSE_FILES}
    fields = metadata.split("\n\n", 1)[0].splitlines()
    assert f"Name: {DISTRIBUTION}" in fields
    expression = "License-Expression: MIT AND NCSA AND LicenseRef-Matplotlib AND CC-BY-SA-4.0"
    assert expression in fields
    assert {f"License-File: {name}" for name in LICENSE_FILES} <= set(fields)
    # the extras name this distribution: `all` never resolves the index's "forecaster"
    assert f'Requires-Dist: {DISTRIBUTION}[audio,track,tune]; extra == "all"' in fields
    strays = sorted(n for n in names if not n.startswith(("forecaster/", f"{dist_info}/")))
    assert strays == []  # no tests, benchmarks, pipelines, mlflow or top-level datasets
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_sdist_holds_license_changelog_and_data(dists: tuple[Path, Path]) -> None:
    _, sdist = dists
    root = FILE_PREFIX
    with tarfile.open(sdist) as tar:
        names = {m.name.removeprefix(f"{root}/") for m in tar.getmembers() if m.isfile()}
    documents = {"LICENSE", "CHANGELOG.md", "CONTRIBUTING.md", "README.md", "pyproject.toml"}
    assert documents <= names
    assert set(_data_files()) <= names
    specs = {p.relative_to(REPO).as_posix() for p in (REPO / "pipelines").glob("*.toml")}
    assert specs and specs <= names  # the example specs (the docs: a clone or the sdist)
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "mlflow/"))]


# --------------------------------------------------------------------------------------------
# The fresh environment
# --------------------------------------------------------------------------------------------


def _build_venv(venv: Path) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    env = _clean_env(venv)
    started = time.perf_counter()
    _check(_run([sys.executable, "-m", "venv", str(venv)], cwd=venv.parent, env=env))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _check(_run([*pip, *_torch_spec()], cwd=venv.parent, env=env, timeout=480))
    _check(_run([*pip, *_core_dependencies()], cwd=venv.parent, env=env, timeout=480))
    (venv / "wheel-smoke.json").write_text(json.dumps({"key": _cache_key()}))
    print(f"fresh environment built in {time.perf_counter() - started:.1f} s at {venv}")


def _install_wheel(venv: Path, wheel: Path) -> subprocess.CompletedProcess[str]:
    """Replace the package (only) with ``wheel``, then let pip check its dependencies."""
    env, python = _clean_env(venv), str(venv / "bin" / "python")
    install = [python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)]
    _check(_run(install, cwd=venv.parent, env=env))
    return _run([python, "-m", "pip", "check"], cwd=venv.parent, env=env)


def _usable(venv: Path) -> bool:
    marker = venv / "wheel-smoke.json"
    if not marker.is_file() or json.loads(marker.read_text()).get("key") != _cache_key():
        return False
    probe = [str(venv / "bin" / "python"), "-c", "import torch, polars"]
    return _run(probe, cwd=venv.parent, env=_clean_env(venv)).returncode == 0


def _drop_stale_caches(cache: Path, keep: Path) -> None:
    """Remove the environments of other keys (1.4 GB each: a dependency change leaves one
    behind), except those another run holds the lock of."""
    for other in cache.glob("wheel-smoke-*"):
        if other == keep or not other.is_dir():
            continue
        lock = FileLock(str(other) + ".lock", timeout=0)
        try:
            with lock:
                shutil.rmtree(other, ignore_errors=True)
        except Timeout:
            continue  # in use; its empty lock file stays (removing it would race a waiter)


@pytest.fixture(scope="module")
def venv(dists: tuple[Path, Path]) -> Iterator[Path]:
    """The cached environment with this checkout's wheel installed; locked while in use."""
    cache = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "forecaster")
    cache.mkdir(parents=True, exist_ok=True)
    folder = cache / f"wheel-smoke-{_cache_key()}"
    with FileLock(str(folder) + ".lock", timeout=900):
        started = time.perf_counter()
        fresh = not _usable(folder)
        if fresh:
            _drop_stale_caches(cache, folder)
            _build_venv(folder)
        checked = _install_wheel(folder, dists[0])
        if checked.returncode != 0 and not fresh:  # a broken cache: build it once more
            print(f"cached environment broken ({checked.stdout.strip()[:200]}): rebuilding")
            fresh = True
            _build_venv(folder)
            checked = _install_wheel(folder, dists[0])
        _check(checked)
        print(f"environment ready in {time.perf_counter() - started:.1f} s (fresh: {fresh})")
        yield folder


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """A working directory outside the repository, as a user's would be."""
    assert not tmp_path.resolve().is_relative_to(REPO)
    return tmp_path


def _python(venv: Path, code: str, cwd: Path) -> dict:
    result = _check(
        _run(
            [str(venv / "bin" / "python"), "-c", textwrap.dedent(code)],
            cwd=cwd,
            env=_clean_env(venv),
        )
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# Using the installed wheel
# --------------------------------------------------------------------------------------------


def test_installed_wheel_loads_its_data_fits_and_predicts(venv: Path, user_dir: Path) -> None:
    # One interpreter for all of it: starting one (torch, polars) is most of the cost.
    found = _python(
        venv,
        """
        import datetime as dt, json
        from importlib import metadata
        import polars as pl
        import forecaster
        from forecaster import RNNForecaster, datasets

        prices = datasets.load_stocks(["SPX", "MSFT"]).filter(pl.col("date") >= dt.date(2016, 1, 1))
        model = RNNForecaster(
            target="close", id_col="ticker", time_col="date", freq="1bd", missing="ffill",
            lookback=20, horizon=5, hidden_size=8, max_epochs=2, random_state=0,
        )
        forecast = model.fit(prices).predict(prices)
        print(json.dumps({
            "file": forecaster.__file__,
            "version": forecaster.__version__,
            "distributions": metadata.packages_distributions().get("forecaster"),
            "dist_version": metadata.version("forecaster-rnn"),
            "data": str(datasets.datasets_dir()),
            "rows": datasets.list_datasets().select("name", "rows").rows(),
            "columns": forecast.columns,
            "shape": list(forecast.shape),
            "last": dict(prices.group_by("ticker").agg(pl.col("date").max().cast(str)).rows()),
            "dates": {t: [str(d) for d in g["date"]] for (t,), g in forecast.group_by("ticker")},
            "finite": bool(forecast["close"].is_finite().all()),
        }))
        """,
        user_dir,
    )
    # The package and its data come from the fresh environment, not from the checkout.
    site = Path(found["file"]).resolve().parents[1]
    assert site.is_relative_to(venv.resolve()), found["file"]
    assert not Path(found["file"]).resolve().is_relative_to(REPO)
    data = Path(found["data"]).resolve()
    assert data == site / "forecaster" / "datasets" / "data"
    assert "Data card: daily stock and index prices" in (data / "stocks" / "README.md").read_text()
    assert found["version"] == __version__ == found["dist_version"]
    assert found["distributions"] == [DISTRIBUTION]  # the package and its name, alone
    assert found["rows"] == [["stocks", 21954], ["audio", 871]]
    # The forecast: five finite values per series on the next five business days after each
    # series' last row (MSFT ends on Friday 2017-11-10, SPX on Monday 2018-12-31).
    assert found["columns"] == ["ticker", "date", "close"]
    assert found["shape"] == [10, 3]
    assert found["finite"]
    assert found["last"] == {"MSFT": "2017-11-10", "SPX": "2018-12-31"}
    business_days = {
        "MSFT": [dt.date(2017, 11, d) for d in (13, 14, 15, 16, 17)],
        "SPX": [dt.date(2019, 1, d) for d in (1, 2, 3, 4, 7)],
    }
    dates = {t: [dt.date.fromisoformat(d) for d in v] for t, v in found["dates"].items()}
    assert dates == business_days


def test_installed_command_lists_the_bundled_data(venv: Path, user_dir: Path) -> None:
    command = [str(venv / "bin" / "forecaster"), "datasets"]
    listing = _check(_run(command, cwd=user_dir, env=_clean_env(venv)))
    for expected in ("stocks", "audio", "21954", "871", "CC BY-SA 4.0"):
        assert expected in listing.stdout, listing.stdout


SPEC = """\
[pipeline]
name = "smoke"

[source]
dataset = "stocks"

[series]
id = "ticker"
time = "date"
targets = ["close"]
freq = "1bd"
missing = "ffill"

[features]
history_days = 400

[model]
lookback = 20
horizon = 3
hidden_size = 8
max_epochs = 1
random_state = 0

[evaluation]
backtest_folds = 1

[tracking]
enabled = false

[output]
plot_series = 0
"""


def test_installed_command_runs_a_pipeline_spec(venv: Path, user_dir: Path) -> None:
    spec = user_dir / "smoke.toml"
    spec.write_text(SPEC)
    command = [str(venv / "bin" / "forecaster"), "run", str(spec), "--as-of", "2017-06-30"]
    result = _check(_run([*command, "--no-progress"], cwd=user_dir, env=_clean_env(venv)))
    out = user_dir / "outputs" / "smoke" / "2017-06-30"
    assert f"forecast {out / 'forecasts.parquet'}" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["as_of"] == "2017-06-30"
    assert (out / "model" / "weights.safetensors").is_file()
    assert (out / "backtest.parquet").is_file()
    forecasts = pl.read_parquet(out / "forecasts.parquet")
    # GOOG and NDX end years before the as-of: left out (the default stale policy).
    assert sorted(forecasts["ticker"].unique()) == ["IXIC", "MSFT", "SPX"]
    days = [dt.date(2017, 7, d) for d in (3, 4, 5)]  # no holidays listed: July 4 is one
    assert forecasts["date"].unique().sort().to_list() == days

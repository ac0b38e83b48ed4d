"""End-to-end runs of the ``forecaster`` command in subprocesses, on the shipped specs."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.slow  # full pipelines in subprocesses

REPO = Path(__file__).resolve().parents[2]
FAST = {"max_epochs = 30": "max_epochs = 2\nhidden_size = 16", "max_epochs = 40": "max_epochs = 2"}


def project(tmp_path: Path, spec: str, replace: dict[str, str] | None = None) -> Path:
    """A copy of a shipped spec in a temporary project, made fast to train."""
    text = (REPO / "pipelines" / spec).read_text()
    for old, new in {**FAST, **(replace or {})}.items():
        text = text.replace(old, new)
    (tmp_path / "pipelines").mkdir(exist_ok=True)
    path = tmp_path / "pipelines" / spec
    path.write_text(text)
    return path


def cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow' / 'mlflow.db'}",
        "PYTHONUNBUFFERED": "1",
    }
    (cwd / "mlflow").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "forecaster", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def stocks_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("stocks")
    spec = project(root, "stocks_daily.toml", {"history_days = 3650": "history_days = 900"})
    first = cli("run", str(spec), "--as-of", "2017-06-30", "--no-progress", cwd=root)
    return root, spec, first


def test_run_stocks_writes_all_outputs(stocks_run):
    root, _, result = stocks_run
    assert result.returncode == 0, result.stderr
    out = root / "outputs" / "stocks_daily" / "2017-06-30"
    forecasts = pl.read_parquet(out / "forecasts.parquet")
    assert forecasts.columns == [
        "ticker", "date", "origin", "close", "stale_steps", "model_version", "run_id"
    ]  # fmt: skip
    # NDX and GOOG end years before the as-of: left out (series.stale = "exclude")
    assert sorted(forecasts["ticker"].unique()) == ["IXIC", "MSFT", "SPX"]
    assert forecasts["date"].min() > dt.date(2017, 6, 30)
    assert forecasts["stale_steps"].unique().to_list() == [0]
    assert forecasts["origin"].unique().to_list() == [dt.date(2017, 6, 30)]
    # the five business days after Friday 2017-06-30 skip Independence Day (series.holidays)
    days = [dt.date(2017, 7, d) for d in (3, 5, 6, 7, 10)]
    assert forecasts["date"].unique().sort().to_list() == days
    assert forecasts.group_by("ticker").len()["len"].unique().to_list() == [5]
    assert (out / "backtest.parquet").is_file()
    assert (out / "model" / "weights.safetensors").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["as_of"] == "2017-06-30"
    # NDX and GOOG end years before the as-of: named, not silently forecast from their end
    assert summary["stale_series"] == {"NDX": "2001-04-30", "GOOG": "2008-10-14"}
    assert summary["excluded_series"] == ["NDX", "GOOG"]
    assert "2 series end before the as-of 2017-06-30" in result.stderr
    assert "forecast " in result.stdout and "summary " in result.stdout
    hidden = [p.name for p in out.parent.iterdir() if p.name.startswith(".")]
    assert hidden == [".2017-06-30.lock"]  # no staging or checkpoint folder, the lock file stays
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "run" and manifest["details"]["as_of"] == "2017-06-30"
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == files - {"manifest.json"}


def test_rerun_is_idempotent_and_force_replaces(stocks_run):
    root, spec, _ = stocks_run
    out = root / "outputs" / "stocks_daily" / "2017-06-30"
    before = (out / "forecasts.parquet").stat().st_mtime_ns
    again = cli("run", str(spec), "--as-of", "2017-07-02", cwd=root)  # a Sunday: same rows
    assert again.returncode == 0, again.stderr
    assert "outputs for stocks_daily as of 2017-06-30 already exist" in again.stderr  # a step
    assert (out / "forecasts.parquet").stat().st_mtime_ns == before
    forced = cli("run", str(spec), "--as-of", "2017-06-30", "--force", "--quiet", cwd=root)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout == ""
    assert (out / "forecasts.parquet").stat().st_mtime_ns != before


@pytest.mark.parametrize("before", [False, True])
def test_json_logs(stocks_run, before):
    root, spec, _ = stocks_run
    args = ["run", str(spec), "--as-of", "20170630"]
    args = ["--json-logs", *args] if before else [*args, "--json-logs"]
    result = cli(*args, cwd=root)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records and all({"ts", "level", "msg"} <= set(r) for r in records)
    assert records[0]["level"] == "warning" and "series end before" in records[0]["msg"]
    # NDX and GOOG end before the history_days window too: named in a second warning
    assert records[1]["level"] == "warning" and "history_days = 900" in records[1]["msg"]
    assert "already exist" in records[2]["msg"]  # 20170630 is the as-of 2017-06-30


def test_predict_default_file_sits_beside_the_run_folder(stocks_run):
    root, spec, _ = stocks_run
    out = root / "outputs" / "stocks_daily"
    model = out / "2017-06-30" / "model"
    result = cli(
        "--quiet", "predict", str(spec), "--model", str(model), "--as-of", "2017-06-30", cwd=root
    )
    assert result.returncode == 0, result.stderr
    written = out / "2017-06-30.forecasts.parquet"
    assert json.loads(pl.read_parquet_metadata(written)["forecaster"])["kind"] == "forecast"
    foreign = root / "notes.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(foreign)
    refused = cli("predict", str(spec), "--model", str(model), "--out", str(foreign), cwd=root)
    assert refused.returncode == 2 and "not a file forecaster wrote" in refused.stderr


def test_audio_mfcc_pipeline(tmp_path):
    spec = project(tmp_path, "audio_mfcc.toml")
    result = cli("run", str(spec), "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    parent = tmp_path / "outputs" / "audio_mfcc"
    outputs = [p for p in parent.iterdir() if not p.name.startswith(".")]  # not the lock file
    assert [p.name for p in outputs] == ["82"]  # integer frames: the as-of is the last frame
    forecasts = pl.read_parquet(outputs[0] / "forecasts.parquet")
    assert forecasts.height == 20 * 4  # series.stale = "forecast": every clip from its end
    assert (forecasts["stale_steps"] > 0).sum() == 4 * 19  # clips end before the longest
    assert [c for c in forecasts.columns if c.startswith("mfcc_")] == [
        f"mfcc_{i}" for i in range(13)
    ]


@pytest.mark.parametrize(
    ("replace", "pattern"),
    [
        ({"targets = [": "targetz = ["}, r"unknown key 'series.targetz'"),
        ({"trials = 20": 'trials = "x"'}, r"key 'training.trials'"),
        ({'missing = "ffill"': 'missing = "drop"'}, r"key 'series.missing'"),
    ],
)
def test_bad_specs_exit_2_with_one_clear_line(tmp_path, replace, pattern):
    spec = project(tmp_path, "stocks_daily.toml", replace)
    result = cli("run", str(spec), cwd=tmp_path)
    assert result.returncode == 2
    assert re.search(pattern, result.stderr)
    assert "Traceback" not in result.stderr


def test_missing_spec_file_and_bad_arguments(tmp_path):
    missing = cli("run", str(tmp_path / "none.toml"), cwd=tmp_path)
    assert missing.returncode == 2 and "no such spec file" in missing.stderr
    bad_arg = cli("run", "--bogus", cwd=tmp_path)
    assert bad_arg.returncode == 2
    bad_date = cli(
        "run",
        str(REPO / "pipelines" / "stocks_daily.toml"),
        "--as-of",
        "yesterday",
        "--dry-run",
        cwd=tmp_path,
    )
    assert bad_date.returncode == 2 and "--as-of" in bad_date.stderr


def test_bad_data_exits_3(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "AAA.csv").write_text("date,close\n2020-01-02,1.0\n2020-01-02,2.0\n2020-01-03,3.0\n")
    spec = project(
        tmp_path,
        "stocks_daily.toml",
        {'dataset = "stocks"': 'path = "data/*.csv"\nformat = "csv"\nid_from_filename = "ticker"'},
    )
    result = cli("run", str(spec), cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "duplicate" in result.stderr and "Traceback" not in result.stderr


def test_help_and_version(tmp_path):
    for command in ([], ["run"], ["fit"], ["predict"], ["backtest"], ["tune"], ["datasets"]):
        result = cli(*command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "usage:" in result.stdout
    version = cli("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("forecaster ")
    listing = cli("datasets", cwd=tmp_path)
    assert listing.returncode == 0 and "stocks" in listing.stdout


def test_fit_then_predict_with_saved_model(tmp_path):
    spec = project(tmp_path, "stocks_daily.toml", {"history_days = 3650": "history_days = 600"})
    fitted = cli("fit", str(spec), "--as-of", "2016-12-30", "--out", "m", "--quiet", cwd=tmp_path)
    assert fitted.returncode == 0, fitted.stderr
    predicted = cli(
        "predict",
        str(spec),
        "--model",
        "m",
        "--as-of",
        "2016-12-30",
        "--out",
        "f.parquet",
        "--quiet",
        cwd=tmp_path,
    )
    assert predicted.returncode == 0, predicted.stderr
    forecast = pl.read_parquet(tmp_path / "f.parquet")
    assert forecast.height == 3 * 5  # NDX and GOOG end years before: left out (series.stale)
    assert sorted(forecast["ticker"].unique()) == ["IXIC", "MSFT", "SPX"]


def test_sigkill_mid_run_leaves_no_partial_output_and_next_run_is_clean(tmp_path):
    spec = project(
        tmp_path, "stocks_daily.toml", {"max_epochs = 2": "max_epochs = 200\npatience = 200"}
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'm.db'}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "forecaster", "run", str(spec), "--as-of", "2017-06-30"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    parent = tmp_path / "outputs" / "stocks_daily"
    deadline = time.time() + 120
    while time.time() < deadline and not (parent.is_dir() and any(parent.iterdir())):
        time.sleep(0.2)
    time.sleep(1.0)  # training is under way, staging folder exists
    process.send_signal(signal.SIGKILL)
    process.wait()
    out = parent / "2017-06-30"
    assert not out.exists()
    staging = [p for p in parent.iterdir() if ".staging-" in p.name]
    assert staging, "expected the killed run's staging folder"
    rerun = cli(
        "run",
        str(project(tmp_path, "stocks_daily.toml")),
        "--as-of",
        "2017-06-30",
        "--quiet",
        cwd=tmp_path,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert (out / "summary.json").is_file()
    assert [p.name for p in parent.iterdir() if p.name.startswith(".")] == [".2017-06-30.lock"]


def test_stocks_run_with_prediction_intervals(tmp_path):
    """``[output] levels``: interval columns, their backtest scores in summary.json and
    MLflow, the bands in forecast.png, and ``predict --level`` with the run's saved model."""
    spec = project(
        tmp_path,
        "stocks_daily.toml",
        {"history_days = 3650": "history_days = 900", "plot_series = 5": "levels = [80, 95]"},
    )
    run = cli("run", str(spec), "--as-of", "2017-06-30", "--no-progress", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    # 22 folds, not the minimum 20: market holidays' filled steps leave out residuals, and
    # with 20 folds no series had the 20 of its own that per-series intervals need; counted
    # from the filled steps before calibrating, so one calibration (was: 20, then 23 folds)
    assert "calibrate conformal intervals per series from 22 calibration folds (" in run.stderr
    out = tmp_path / "outputs" / "stocks_daily" / "2017-06-30"
    summary = json.loads((out / "summary.json").read_text())
    calibration = summary["calibration"]
    assert (calibration["own_series"], calibration["pooled_series"]) == (3, 0), calibration
    assert (calibration["calibrations"], calibration["first_folds"]) == (1, 22), calibration
    assert calibration["folds_reason"].endswith(
        "20 folds would give 0 of the 3 series it forecasts the 20 residuals per step of their "
        "own that per-series intervals need, 22 give 3 (counted from the filled steps before "
        "calibrating)"
    ), calibration
    # the backtest's clone, on 15 fewer days, by the same rules: its folds reach back over
    # more Monday holidays (the same step of every fold), so it needs 25 (was: pooled from
    # 23 after a second calibration), and the summary says which intervals were scored
    tested = summary["backtest_calibration"]
    assert (tested["folds"], tested["own_series"], tested["pooled_series"]) == (25, 3, 0), tested
    assert (tested["calibrations"], tested["recalibration_reason"]) == (1, ""), tested
    forecasts = pl.read_parquet(out / "forecasts.parquet")
    bounds = ["close_lo_80", "close_hi_80", "close_lo_95", "close_hi_95"]
    assert forecasts.columns == [
        "ticker", "date", "origin", "close", *bounds, "stale_steps", "model_version", "run_id"
    ]  # fmt: skip
    nested = forecasts.select(
        (pl.col("close_lo_95") <= pl.col("close_lo_80"))
        & (pl.col("close_lo_80") <= pl.col("close"))
        & (pl.col("close") <= pl.col("close_hi_80"))
        & (pl.col("close_hi_80") <= pl.col("close_hi_95"))
    )
    assert nested.to_series().all()
    metrics = json.loads((out / "summary.json").read_text())["metrics"]
    for name in ("coverage_80", "width_80", "winkler_80", "msis_80", "coverage_95", "msis_95"):
        assert f"backtest_{name}" in metrics, sorted(metrics)
    assert 0 <= metrics["backtest_coverage_80"] <= metrics["backtest_coverage_95"] <= 1
    assert (out / "forecast.png").stat().st_size > 0

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("stocks_daily")
    (logged,) = client.search_runs([experiment.experiment_id])
    assert "pipeline_backtest_coverage_95" in logged.data.metrics

    args = ["--model", str(out / "model"), "--as-of", "2017-06-30", "--out", "f.parquet"]
    predicted = cli("predict", str(spec), *args, "--level", "80", "--quiet", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    again = pl.read_parquet(tmp_path / "f.parquet")
    assert again.columns == [
        "ticker", "date", "origin", "close", "close_lo_80", "close_hi_80", "stale_steps"
    ]  # fmt: skip
    assert again["close_lo_80"].to_list() == forecasts["close_lo_80"].to_list()

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest
from conftest import (
    ctrl_c_as_runs_are_created,
    mini_spec,
    reset_mlflow_state,
    sigint_as_in_a_terminal,
)

import forecaster
from forecaster.exceptions import ArgumentError, ForecasterError, ForecasterWarning
from forecaster.jobs.cli import main
from forecaster.jobs.run import SpecError, load_spec, prepare_data, run_pipeline, spec_hash

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "pipelines").glob("*.toml"))


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "pipelines"
    folder.mkdir(exist_ok=True)
    path = folder / "spec.toml"
    path.write_text(text)
    return path


MINIMAL = """
[pipeline]
name = "mini"

[source]
dataset = "stocks"

[series]
id = "ticker"
time = "date"
targets = ["close"]
"""


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_specs_are_valid(path):
    spec, root = load_spec(path)
    assert root == REPO
    assert spec.pipeline.name == path.stem


def test_minimal_spec_gets_defaults_and_root(tmp_path):
    spec, root = load_spec(write(tmp_path, MINIMAL))
    assert root == tmp_path.resolve()
    assert spec.series.missing == "error"
    assert spec.output.dir == "outputs/{name}/{as_of}"
    assert len(spec_hash(spec)) == 12


def test_typo_key_names_file_key_and_suggestion(tmp_path):
    path = write(tmp_path, MINIMAL.replace("targets", "targetz"))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message
    assert "unknown key 'series.targetz' (did you mean 'targets'?)" in message
    assert "missing required key 'series.targets'" in message


def test_wrong_type_and_allowed_values(tmp_path):
    path = write(tmp_path, MINIMAL + '\n[training]\ntrials = "many"\n')
    with pytest.raises(SpecError, match=r"key 'training.trials'.*integer.*received 'many'"):
        load_spec(path)
    path = write(
        tmp_path, MINIMAL.replace('targets = ["close"]', 'targets = ["close"]\nmissing = "drop"')
    )
    with pytest.raises(
        SpecError, match=r"key 'series.missing'.*'error', 'ffill', 'zero' or 'interpolate'"
    ):
        load_spec(path)


def test_unknown_model_parameter(tmp_path):
    path = write(tmp_path, MINIMAL + "\n[model]\nhidden_sise = 4\n")
    with pytest.raises(
        SpecError, match=r"unknown key 'model.hidden_sise' \(did you mean 'hidden_size'\?\)"
    ):
        load_spec(path)
    path = write(tmp_path, MINIMAL + '\n[model]\ntarget = "close"\n')
    with pytest.raises(SpecError, match=r"'model.target' belongs in \[series\]"):
        load_spec(path)
    path = write(tmp_path, MINIMAL + '\n[model]\nestimator = "XGBoost"\n')
    with pytest.raises(SpecError, match=r"model\.estimator"):
        load_spec(path)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "nope.toml")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(write(tmp_path, "[pipeline\nname="))


def test_source_rules(tmp_path):
    both = MINIMAL.replace('dataset = "stocks"', 'dataset = "stocks"\npath = "x.csv"')
    with pytest.raises(SpecError, match="exactly one of 'dataset'"):
        load_spec(write(tmp_path, both))
    outside = MINIMAL.replace('dataset = "stocks"', 'path = "../../etc/*.csv"\nformat = "csv"')
    with pytest.raises(SpecError, match="outside the project"):
        load_spec(write(tmp_path, outside))
    no_format = MINIMAL.replace('dataset = "stocks"', 'path = "data/*.csv"')
    with pytest.raises(SpecError, match=r"'source\.format' is required"):
        load_spec(write(tmp_path, no_format))


def test_output_template_placeholders(tmp_path):
    for template in ("out/{nme}", "{as_of.year}", "{0}", "{name!r}"):
        path = write(tmp_path, MINIMAL + f'\n[output]\ndir = "{template}"\n')
        with pytest.raises(SpecError, match=r"key 'output\.dir'.*placeholders"):
            load_spec(path)


def test_a_tracked_spec_without_mlflow_or_matplotlib_warns(tmp_path, monkeypatch):
    """A missing [track] extra left the run untracked and without forecast.png with only a
    step line (none under --quiet or in JSON logs as a warning)."""
    import sys

    import forecaster.jobs.outputs as outputs
    from forecaster.exceptions import MissingExtraError
    from forecaster.jobs.tracked import tracked_run

    spec = load_spec(write(tmp_path, MINIMAL))[0]  # [tracking] enabled by default
    monkeypatch.setitem(sys.modules, "mlflow", None)
    warned = pytest.warns(ForecasterWarning, match=r"not tracked: .*forecaster-rnn\[track\]")
    with (
        warned,
        tracked_run(spec, "2024-01-01", lambda line: None, kind="run", root=tmp_path) as ids,
    ):
        assert ids == (None, None)

    def no_matplotlib(*args, **kwargs):
        raise MissingExtraError("plot needs matplotlib")

    monkeypatch.setattr(outputs, "plot_forecast", no_matplotlib)
    attributes = {"target": "y", "horizon": 2, "lookback_": 4, "id_col": None, "time_col": "t"}
    model = type("M", (), attributes)()
    with pytest.warns(ForecasterWarning, match=r"No forecast.png: .*plot_series = 3"):
        assert not outputs.write_forecast_plot(None, None, model, tmp_path / "f.png", 3)


def test_model_values_are_checked_at_load(tmp_path):
    path = write(tmp_path, MINIMAL + '\n[model]\nhorizon = "five"\n')
    with pytest.raises(SpecError, match=r"spec\.toml: key 'model\.horizon': horizon must be"):
        load_spec(path)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('head = "direct"\nsegment_length = 4', r"key 'model\.segment_length': segment_length=4"),
        ("validation_size = 0\npatience = 3", r"key 'model\.patience': patience=3 is set with"),
        ('device = "mps"', r"key 'model\.device': device='mps'"),
    ],
)
def test_model_relations_and_device_are_checked_at_load(tmp_path, keys, message):
    """What fit would refuse without reading data is refused with the spec (exit 2, a dry run
    says so): these passed the dry run, then the run exited 3 as invalid data."""
    with pytest.raises(SpecError, match=rf"spec\.toml: {message}"):
        load_spec(write(tmp_path, MINIMAL + f"\n[model]\n{keys}\n"))
    # checkpoint_every needs no checkpoint_dir in a spec: the run gives its fits one
    load_spec(write(tmp_path, MINIMAL + "\n[model]\ncheckpoint_every = 2\n"))


def test_output_dir_must_be_a_folder_of_its_own(tmp_path):
    for folder, reason in ((".", "project folder itself"), ("pipelines", "holds the spec file")):
        path = write(tmp_path, MINIMAL + f'\n[output]\ndir = "{folder}"\n')
        with pytest.raises(SpecError, match=rf"key 'output\.dir' .*{reason}"):
            load_spec(path)


# ------------------------------------------------------------------------------------------
# hostile and broken input through the pipeline and the CLI: a clear error, the documented
# exit code (2 bad spec or model, 3 bad data) and no output written
# ------------------------------------------------------------------------------------------

CSV_SPEC = """
[pipeline]
name = "hostile"

[source]
path = "data/*.csv"
format = "csv"
{source}

[series]
id = "id"
time = "date"
targets = ["y"]
{series}

[model]
lookback = 4
horizon = 2
hidden_size = 4
max_epochs = 1
random_state = 0
{model}

[evaluation]
backtest_folds = 0

[tracking]
enabled = false
"""


def csv_project(
    tmp_path: Path, text: str | bytes, *, source: str = "", series: str = "", model: str = ""
) -> Path:
    """A project folder with one data file and a CSV spec; returns the spec path."""
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    data = tmp_path / "data" / "prices.csv"
    if isinstance(text, bytes):
        data.write_bytes(text)
    else:
        data.write_text(text)
    return write(tmp_path, CSV_SPEC.format(source=source, series=series, model=model))


def rows(n: int = 12, ids: tuple[str, ...] = ("a", "b"), sep: str = ",") -> str:
    lines = [sep.join(["id", "date", "y"])]
    for k, key in enumerate(ids):
        for i in range(n):
            lines.append(sep.join([key, f"2024-01-{i + 1:02d}", f"{10 * k + i + 0.5}"]))
    return "\n".join(lines) + "\n"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main([*args, "--no-progress"])
    return code, capsys.readouterr().err


def test_help_says_an_interrupted_run_ends_killed_unless_its_outputs_were_published():
    """``forecaster --help``'s exit codes said an interrupted command's MLflow run ends KILLED;
    one whose outputs were published ends FINISHED, tagged ``forecaster.interrupted``."""
    from forecaster.jobs.parser import build_parser

    text = " ".join(build_parser().format_help().split())
    assert (
        "the MLflow run ends KILLED unless its outputs were already published: then FINISHED, "
        "tagged forecaster.interrupted" in text
    )


@pytest.mark.slow
def test_a_spec_with_checkpoint_every_runs_backtests_calibrates_and_tunes(
    tmp_path, capsys, monkeypatch
):
    """[model] checkpoint_every = 2: the pipeline's other fits (backtest and calibration
    clones, tuning trials) drop the run's checkpoint_dir, and fit refuses checkpoint_every
    without one; they drop both (run and backtest exited 3, tune failed every trial)."""
    monkeypatch.chdir(tmp_path)  # the default study storage is in the working directory
    spec = csv_project(tmp_path, rows(24), model="checkpoint_every = 2")
    text = spec.read_text().replace("backtest_folds = 0", "backtest_folds = 2")
    spec.write_text(text + "\n[output]\nlevels = [50]\nplot_series = 0\n")
    for command in (("run",), ("backtest",), ("tune", "--trials", "1")):
        code, err = run_cli(capsys, *command, str(spec))
        assert code == 0, (command, err)
    saved = next((tmp_path / "outputs").rglob("model"))
    assert forecaster.load(saved).checkpoint_every == 2  # the spec's, kept on the run's model


def assert_no_outputs(tmp_path: Path) -> None:
    """Nothing but the inputs: no output, model or staging folder was left behind (the empty
    lock file of a fit that started, ``.<as-of>.lock``, stays by design)."""
    left = sorted(
        str(p.relative_to(tmp_path))
        for p in tmp_path.rglob("*")
        if p.is_file()
        and p.parent.name not in ("data", "pipelines")
        and not (p.name.startswith(".") and p.name.endswith(".lock") and p.stat().st_size == 0)
    )
    assert left == []


BROKEN_CSV: dict[str, tuple[str | bytes, str]] = {
    "empty-file": ("", r"a file is empty \(no header, no rows\)"),
    "header-only": ("id,date,y\n", r"has no data rows, only a header \(id, date, y\)"),
    "wrong-delimiter": (
        rows(sep=";"),
        r"no id column 'id'.*'id;date;y'.*looks ';'-delimited.*source\.separator",
    ),
    "mixed-types": (
        rows().replace("2.5\n", "n/a\n", 1),
        r"'y' must be numeric, got String with values that are not numbers, e\.g\. 'n/a'",
    ),
    "ragged-lines": (rows() + "a,2024-02-01,1.0,extra\n", r"Cannot read source\.path.*as csv"),
    "duplicate-timestamps": (rows() + "a,2024-01-03,9.5\n", r"1 duplicate \(id, time\) rows"),
    "binary-garbage": (b"\x00\xff\xfe" * 50, r"only a header \('\\x00"),
    "time-zones-mixed-with-naive": (
        "id,date,y\na,2024-01-01T00:00:00+01:00,1.0\na,2024-01-02T00:00:00,2.0\n",
        r"Time column 'date' must be Datetime.*got String.*source\.time_format",
    ),
}


@pytest.mark.parametrize("command", ["run", "fit"])
@pytest.mark.parametrize("case", list(BROKEN_CSV))
def test_hostile_broken_csv_exits_3_and_writes_nothing(tmp_path, capsys, case, command):
    text, message = BROKEN_CSV[case]
    spec = csv_project(tmp_path, text)
    code, err = run_cli(capsys, command, str(spec))
    assert code == 3, err
    assert err.startswith("error: invalid data: ")
    assert re.search(message, err, re.S), err
    assert "Traceback" not in err
    assert_no_outputs(tmp_path)


def test_hostile_documented_fixes_for_delimiter_and_placeholders(tmp_path, capsys):
    spec = csv_project(tmp_path, rows(sep=";"), source='separator = ";"')
    assert run_cli(capsys, "run", str(spec), "--dry-run")[0] == 0
    placeholders = rows().replace("2.5\n", "n/a\n", 1)
    spec = csv_project(
        tmp_path, placeholders, source='null_values = ["n/a"]', series='missing = "interpolate"'
    )
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 0, err


def test_hostile_time_zones_across_series_are_read_as_utc(tmp_path, capsys):
    lines = ["id,date,y"]
    for key, offset in (("paris", "+01:00"), ("tokyo", "+09:00")):
        lines += [f"{key},2024-01-{d:02d}T00:00:00{offset},{d}.0" for d in range(1, 13)]
    spec, root = load_spec(csv_project(tmp_path, "\n".join(lines) + "\n"))
    # Tokyo's last row (15:00 UTC) is its local midnight of January 11, as Paris' (23:00
    # UTC): not stale (was "1 series end before": its next step, 15:00 on the 11th, is after
    # the as-of)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", r"\d+ series ends? before", ForecasterWarning)
        frame, when = prepare_data(spec, root, "2024-01-10")
    assert when.stale_count == 0
    assert frame.schema["date"] == pl.Datetime("us", "UTC")
    assert when.label == "2024-01-10T23-00-00"  # the effective as-of: Paris' midnight in UTC
    assert when.effective == "2024-01-10T23:00:00+00:00"  # the last time used
    # --as-of on a zoned column is read in that zone: up to 2024-01-10 23:59:59 UTC, which
    # is after midnight of January 11 in Paris (23:00 UTC) and in Tokyo (15:00 UTC).
    assert frame.group_by("id").len().sort("id")["len"].to_list() == [11, 11]
    assert run_cli(capsys, "run", str(tmp_path / "pipelines" / "spec.toml"), "--dry-run")[0] == 0


def test_hostile_failure_inside_the_run_leaves_no_partial_output(tmp_path, capsys):
    # Valid for the data checks, but every series is too short to hold out a validation
    # span: fit fails after the staging folder was created.
    spec = csv_project(tmp_path, rows(n=6), model="validation_size = 0.5")
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 3, err
    assert "No training windows remain" in err
    outputs = tmp_path / "outputs" / "hostile"  # no as-of folder, no staging: the lock only
    assert [p.name for p in outputs.iterdir()] == [".2024-01-06.lock"]
    assert_no_outputs(tmp_path)


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ('path = "/etc/*.csv"', "source.path"),
        ('path = "../../elsewhere/*.csv"', "source.path"),
        ('path = "data/../../x.csv"', "source.path"),
    ],
)
def test_hostile_source_path_outside_the_project(tmp_path, capsys, source, key):
    spec = csv_project(tmp_path, rows())
    spec.write_text(spec.read_text().replace('path = "data/*.csv"', source))
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 2
    assert f"key '{key}' points outside the project" in err
    assert_no_outputs(tmp_path)


def test_the_forecasts_are_sorted_by_id_and_time(tmp_path, capsys):
    """A data file holding series b before a gave forecasts.parquet b before a (predict kept
    the frame's order of series, while its docstring says sorted by (id, time)), and another
    model than the same rows with a before b (the windows follow the series' positions)."""
    b = [f"b,2024-01-{i + 1:02d},{i * i % 7 + 0.5}" for i in range(12)]  # another shape
    a = [f"a,2024-01-{i + 1:02d},{i + 10.5}" for i in range(12)]
    forecasts = []
    for folder, block in (("grouped", [*b, *a]), ("sorted", [*a, *b])):
        data = "\n".join(["id,date,y", *block]) + "\n"
        spec = csv_project(tmp_path / folder, data, model='baseline = "none"')  # the network's
        code, err = run_cli(capsys, "run", str(spec))
        assert code == 0, err
        found = next((tmp_path / folder / "outputs").rglob("forecasts.parquet"))
        forecasts.append(pl.read_parquet(found))
    assert forecasts[0]["id"].unique(maintain_order=True).to_list() == ["a", "b"]
    assert forecasts[0].equals(forecasts[0].sort("id", "date"))
    assert forecasts[0].equals(forecasts[1])


def test_the_forecasts_of_a_large_level_are_float64_not_its_float32_rounding(tmp_path, capsys):
    """Revenue near 1.2345678900e10 with cents: forecasts.parquet (and predict's file) held
    Float32 forecasts, rounded to float32's steps of 1024 there; they are Float64 now."""
    lines = ["id,date,y"] + [
        f"{key},2024-01-{i + 1:02d},{12345678900.37 + 1e5 * k + 2e3 * (i % 7)}"
        for k, key in enumerate("ab")
        for i in range(24)
    ]
    spec = csv_project(tmp_path, "\n".join(lines) + "\n")
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    out = tmp_path / "p.parquet"
    model = next((tmp_path / "outputs").rglob("model"))
    code, err = run_cli(capsys, "predict", str(spec), "--model", str(model), "--out", str(out))
    assert code == 0, err
    for path in (next((tmp_path / "outputs").rglob("forecasts.parquet")), out):
        forecasts = pl.read_parquet(path)
        assert forecasts.schema["y"] == pl.Float64, path
        assert (forecasts["y"] % 1024 != 0).all(), path  # float32 values: all multiples


@pytest.mark.parametrize("folder", ["../outside/{name}", "/tmp/{name}/{as_of}"])
def test_hostile_output_dir_outside_the_project(tmp_path, capsys, folder):
    spec = csv_project(tmp_path, rows())
    spec.write_text(spec.read_text() + f'\n[output]\ndir = "{folder}"\n')
    with pytest.raises(SpecError, match=r"key 'output.dir' points outside the project"):
        load_spec(spec)
    assert run_cli(capsys, "run", str(spec))[0] == 2
    assert not (tmp_path.parent / "outside").exists()


def test_hostile_a_link_placed_inside_the_project_is_followed(tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "prices.csv").write_text(rows())
    project = tmp_path / "project"
    spec = csv_project(project, rows())
    (project / "data" / "prices.csv").unlink()
    (project / "data" / "linked").symlink_to(elsewhere)
    spec.write_text(spec.read_text().replace("data/*.csv", "data/linked/*.csv"))
    assert run_cli(capsys, "run", str(spec), "--dry-run")[0] == 0


def test_hostile_column_typo_and_log_returns_on_bad_values(tmp_path, capsys):
    spec = csv_project(tmp_path, rows())
    spec.write_text(spec.read_text().replace('time = "date"', 'time = "dates"'))
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 3 and "no time column 'dates' (did you mean 'date'?)" in err
    spec = csv_project(tmp_path, rows().replace("0.5\n", "-0.5\n", 1))
    spec.write_text(spec.read_text() + '\n[features]\nlog_returns = ["y"]\n')
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 3 and "column 'y' has 1 values <= 0" in err
    assert_no_outputs(tmp_path)


def test_a_model_fitted_on_other_features_is_refused_by_predict_and_backtest(tmp_path, capsys):
    """[features] change what the target columns hold (log returns, MFCC settings): a model
    fitted on log returns forecast prices (and one fitted at hop_length 160 forecast frames
    of 80) without a word. The pipeline records its features with the model; --model refuses
    a model whose record differs, and one saved without a record is not checked."""
    from forecaster.persistence import saved_provenance

    spec = csv_project(tmp_path, rows(24))
    returns = spec.read_text() + '\n[features]\nlog_returns = ["y"]\n'
    spec.write_text(returns)
    model = tmp_path / "m"
    assert run_cli(capsys, "fit", str(spec), "--out", str(model))[0] == 0
    assert saved_provenance(model)["features"]["log_returns"] == ["y"]
    spec.write_text(returns.replace('\n[features]\nlog_returns = ["y"]\n', "\n"))
    for command in ("predict", "backtest"):
        code, err = run_cli(capsys, command, str(spec), "--model", str(model))
        assert code == 2 and "[features] log_returns=['y'], but the spec makes" in err, err
    spec.write_text(returns)
    code, err = run_cli(capsys, "predict", str(spec), "--model", str(model))
    assert code == 0, err


def gapped_prices(missing: str, tmp_path: Path) -> pl.DataFrame:
    """``prepare_data`` of daily closes with log returns (the rows a command uses): a
    (100 + t, from 2024-01-01) without its close of 01-31 and without the row of 01-10, b
    (200 + t) without its second-to-last close."""
    lines = ["id,date,close"]
    for key, base, n, gap in (("a", 100, 34, 30), ("b", 200, 6, 4)):
        for i in range(n):
            if key == "a" and i == 9:
                continue  # a row absent: a grid gap
            close = "" if i == gap else f"{base + i}.0"
            lines.append(f"{key},{dt.date(2024, 1, 1) + dt.timedelta(days=i)},{close}")
    series = {"targets": ["close"], "freq": "1d", "missing": missing}
    path = scheduled_project(
        tmp_path, "\n".join(lines) + "\n", series=series, features={"log_returns": ["close"]}
    )
    spec, root = load_spec(path)
    with pytest.warns(ForecasterWarning, match="1 series ends before the as-of"):
        return prepare_data(spec, root, None)[0]


@pytest.mark.parametrize(
    ("missing", "at_gap"), [("ffill", 0.0), ("zero", 0.0), ("interpolate", 0.0), ("error", None)]
)
def test_log_returns_keep_every_row_and_span_a_missing_price(tmp_path, missing, at_gap):
    """A missing close deleted its row and the next one, a real observation (its return was
    null, the close before it being null), so missing = "ffill" then replaced that close by
    the one before the gap; a null second-to-last close deleted the last observation. Every
    row is kept but each series' first: the first one observed after a gap has the return over
    the whole gap, as after an absent row, and a missing close has a return of 0 (none with
    missing = "error", which refuses it), as has the absent row, added with an empty close
    (was: left absent, the estimator filled its return by the policy: ffill repeated the
    previous return; missing = "error" refuses the gap, so it is not added)."""
    frame = gapped_prices(missing, tmp_path)
    a, b = (frame.filter(pl.col("id") == key) for key in ("a", "b"))
    days = [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(33)]
    assert a["date"].to_list() == [d for d in days if d != dt.date(2024, 1, 10) or at_gap == 0]
    assert b["date"].to_list() == days[:5]  # it still ends at its last observation
    at = {d: r for d, r in zip(a["date"], a["close_logret"], strict=True)}
    assert at[dt.date(2024, 1, 31)] == at_gap
    assert at.get(dt.date(2024, 1, 10)) == at_gap  # the absent row: added with a return of 0
    assert at[dt.date(2024, 2, 1)] == pytest.approx(np.log(131 / 129))  # over the gap
    assert at[dt.date(2024, 1, 11)] == pytest.approx(np.log(110 / 108))  # after the absent row
    assert at[dt.date(2024, 1, 2)] == pytest.approx(np.log(101 / 100))
    assert b["close_logret"][-1] == pytest.approx(np.log(205 / 203))
    assert b["close"][-1] == 205.0 and frame["close"].null_count() == 2 + (at_gap == 0)


def holiday_prices(listed: bool) -> str:
    """Closes of a and b on the business days 2024-01-02 .. 2024-01-12 with a sector each: a
    without Thursday 01-04 (100, 110, -, 121, ...), b without Tuesday 01-09 (and without
    01-04 when it is a ``listed`` holiday)."""
    closes = {"a": [100, 110, None, 121, 125, 130, 128, 131, 135], "b": [50 + i for i in range(9)]}
    days = pl.date_range(dt.date(2024, 1, 2), dt.date(2024, 1, 12), eager=True)
    days = days.filter(days.dt.weekday() <= 5).to_list()
    lines = ["id,date,close,sector"]
    for key, prices in closes.items():
        for day, close in zip(days, prices, strict=True):
            if close is None or (key == "b" and day.day in ((4, 9) if listed else (9,))):
                continue
            lines.append(f"{key},{day},{close},{'tech' if key == 'a' else 'energy'}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("listed", [False, True])
@pytest.mark.parametrize(
    ("missing", "filled"), [("ffill", 110), ("interpolate", 115.5), ("zero", 0)]
)
def test_log_returns_are_zero_on_a_business_day_the_source_lacks(tmp_path, missing, filled, listed):
    # was: the estimator made the holiday row up and filled its return by the policy: ffill
    # repeated the previous return (a: 0.0953, so the returns over 01-03 .. 01-05 summed to
    # 0.286, not log(121 / 100) = 0.19), interpolate read it from the next row's
    """What the model gets (prepare_data, then the estimator's validate_frame): the absent row
    has a return of 0 whatever the policy, its close filled by the policy as before and its
    sector its series'; the next row's return spans the gap, so the returns sum to the change
    of the log close. Rows added on listed holidays are not refused as rows of the data."""
    from forecaster.data import validate_frame

    series = {"freq": "1bd", "missing": missing, "targets": ["close"]}
    series |= {"static_covariates": ["sector"], "holidays": ["2024-01-04"] if listed else []}
    path = scheduled_project(
        tmp_path, holiday_prices(listed), series=series, features={"log_returns": ["close"]}
    )
    spec, root = load_spec(path)
    frame, _ = prepare_data(spec, root, None)
    clean, _ = validate_frame(
        frame, target="close", time_col="date", id_col="id", covariates=["close_logret"],
        freq="1bd", missing=missing,
    )  # fmt: skip
    a, b = (clean.filter(pl.col("id") == key) for key in ("a", "b"))
    at = dict(zip(a["date"], a["close_logret"].cast(pl.Float64), strict=True))
    assert at[dt.date(2024, 1, 4)] == 0.0
    assert a.filter(pl.col("date") == dt.date(2024, 1, 4))["close"].item() == filled
    assert at[dt.date(2024, 1, 5)] == pytest.approx(np.log(121 / 110))
    assert sum(at.values()) == pytest.approx(np.log(135 / 100), rel=1e-5)
    at = dict(zip(b["date"], b["close_logret"].cast(pl.Float64), strict=True))
    assert at[dt.date(2024, 1, 9)] == 0.0 and (at[dt.date(2024, 1, 4)] == 0.0) == listed
    assert sum(at.values()) == pytest.approx(np.log(58 / 50), rel=1e-5)
    assert clean.height == frame.height == 16  # nothing left for the estimator to make up
    added = frame.join(pl.read_csv(root / "data" / "prices.csv", try_parse_dates=True),
                       on=["id", "date"], how="anti")  # fmt: skip
    assert added["sector"].to_list() == ["tech", *(["energy"] * listed), "energy"]


def test_log_returns_count_the_rows_they_add_as_made_up_and_a_run_fits_on_them(tmp_path, capsys):
    """The estimator warned when filling made up over a fifth of the grid; the rows are added
    before it now, so prepare_data warns of them in its words, and a run fits on them (the
    added rows carry their series' static covariate, which the estimator requires)."""
    lines = ["id,date,y,p,sector"]
    for key, absent in (("a", range(3, 11)), ("b", range(15, 18))):
        for i in range(24):
            if i not in absent:
                day = dt.date(2024, 1, 1) + dt.timedelta(days=i)
                lines.append(f"{key},{day},{i % 5 + 0.5},{10 + i},{key.upper()}")
    series = {"freq": "1d", "missing": "ffill", "static_covariates": ["sector"]}
    path = scheduled_project(
        tmp_path, "\n".join(lines) + "\n", series=series, features={"log_returns": ["p"]}
    )
    spec, root = load_spec(path)
    with pytest.warns(ForecasterWarning, match=r"missing='ffill' made up 11 of the 46 rows"):
        frame, _ = prepare_data(spec, root, None)
    assert frame.height == 46 and frame.filter(pl.col("p").is_null())["p_logret"].sum() == 0
    code, err = run_cli(capsys, "run", str(path))
    assert code == 0 and "made up 11 of the 46 rows" in err, err


def test_the_shipped_ohlcv_job_returns_sum_to_the_change_of_the_log_close():
    # was: each business day the bundled data lack (393 rows of the 5 tickers: holidays,
    # listed or not) repeated the previous day's return (missing = "ffill"): GOOG's returns
    # summed to 1.337 over a change of its log close of 1.209
    """The returns the model reads (prepare_data, then the estimator's validate_frame) sum, for
    every ticker, to the change of its log close, the listed holidays holding a return of 0."""
    from forecaster.data import validate_frame

    spec, root = load_spec(REPO / "pipelines" / "stocks_ohlcv.toml")
    series = spec.series
    with pytest.warns(ForecasterWarning, match="3 series end before the as-of"):
        frame, _ = prepare_data(spec, root, None)
    clean, _ = validate_frame(
        frame, target=series.targets, time_col=series.time, id_col=series.id,
        covariates=[*series.covariates, "close_logret"], freq=series.freq, missing=series.missing,
    )  # fmt: skip
    assert clean.height == frame.height
    for (ticker,), rows in clean.group_by(series.id):
        close = rows["close"].cast(pl.Float64)
        change = np.log(close[-1] / close[0])  # the first row's return is before its close
        total = rows["close_logret"].cast(pl.Float64)[1:].sum()
        assert total == pytest.approx(change, abs=1e-5), ticker
    holidays = clean.filter(pl.col(series.time).is_in(series.holidays))
    assert holidays.height == 45 and (holidays["close_logret"] == 0).all()


def test_log_returns_warn_of_target_rows_dropped_before_the_first_price(tmp_path):
    """Rows before a series' first log return are dropped: each series' first row, and rows
    holding targets while the price is not yet observed, which are named (they were dropped
    without a word)."""
    from forecaster.jobs.data import load_data

    lines = ["id,date,y,price"] + [
        f"{key},2024-01-{i + 1:02d},{i + 0.5},{'' if key == 'a' and i < 2 else 10 + i}"
        for key in ("a", "b")
        for i in range(8)
    ]
    series = {"covariates": ["price"], "missing": "ffill"}
    returns = {"log_returns": ["price"]}
    path = scheduled_project(tmp_path, "\n".join(lines) + "\n", series=series, features=returns)
    spec, root = load_spec(path)
    with pytest.warns(ForecasterWarning, match=r"dropped 2 rows with target values") as caught:
        frame = load_data(spec, root)
    assert "a 2024-01-01, a 2024-01-02)" in str(caught[0].message)
    starts = frame.group_by("id").agg(pl.col("date").min()).sort("id")["date"]
    assert starts.to_list() == [dt.date(2024, 1, 4), dt.date(2024, 1, 2)]


def price_rows(prices: list[str], *, own: bool = False) -> str:
    """Daily rows of one series a: y and the price column p (and a column p_logret of the
    source's own when ``own``)."""
    header = "id,date,y,p" + (",p_logret" if own else "")
    lines = [header] + [
        f"a,2024-01-{i + 1:02d},{i + 0.5},{p}" + (",9" if own else "") for i, p in enumerate(prices)
    ]
    return "\n".join(lines) + "\n"


def test_log_returns_refuse_a_source_column_they_would_replace(tmp_path, capsys):
    """A source with p and p_logret and log_returns = ["p"]: its own p_logret was replaced by
    the returns of p without a word. A spec that names p_logret is refused (exit 2, naming
    the key), a source that merely has it when read (exit 3), each saying how to fix it."""
    prices = [f"{10 + i}.0" for i in range(12)]
    returns = {"log_returns": ["p"]}
    for series, key in (
        ({"covariates": ["p_logret"]}, "series.covariates"),
        ({"targets": ["p_logret"]}, "series.targets"),
        ({"future_covariates": ["p_logret"]}, "series.future_covariates"),
        ({}, "features.log_returns"),
    ):
        features = {"log_returns": ["p", "p_logret"]} if not series else returns
        path = scheduled_project(
            tmp_path, price_rows(prices, own=True), series=series, features=features
        )
        code, err = run_cli(capsys, "run", str(path))
        assert code == 2, err
        assert f"key '{key}' names 'p_logret', the column that features.log_returns" in err
        assert "rename it (in the source and the spec)" in err
    path = scheduled_project(tmp_path, price_rows(prices, own=True), features=returns)
    code, err = run_cli(capsys, "run", str(path))
    assert code == 3, err
    assert "the source has a column 'p_logret' of its own, which it would replace" in err
    assert "Rename the source's column 'p_logret'" in err
    assert_no_outputs(tmp_path)


def test_log_returns_refuse_an_infinite_price_naming_the_price_column(tmp_path, capsys):
    """A price of inf passed the check of prices <= 0, and validation refused its returns
    (inf, -inf), naming p_logret, not the price p the user must fix. NaN stays missing."""
    prices = [f"{10 + i}.0" for i in range(12)]
    series = {"missing": "ffill"}
    codes = {}
    for value in ("inf", "NaN"):
        path = scheduled_project(
            tmp_path,
            price_rows([*prices[:3], value, *prices[4:]]),
            series=series,
            features={"log_returns": ["p"]},
        )
        codes[value], err = run_cli(capsys, "run", str(path), "--dry-run")
        if value == "inf":
            assert "column 'p' has 1 values <= 0 or infinite (e.g. inf at date=2024-01-04)" in err
            assert "p_logret" not in err
    assert codes == {"inf": 3, "NaN": 0}


def test_predict_model_reads_columns_by_name_whatever_their_order_in_the_spec(tmp_path, capsys):
    """A model fitted with log_returns = ["y", "x"] was refused for a spec listing ["x", "y"]:
    the derived covariates were compared in order, although they are read by name."""
    lines = ["id,date,y,x"] + [
        f"{k},2024-01-{i + 1:02d},{10 + i + j},{20 + 2 * i + j}"
        for j, k in enumerate("ab")
        for i in range(24)
    ]
    spec = csv_project(tmp_path, "\n".join(lines) + "\n", series='covariates = ["x"]')
    text = spec.read_text()
    spec.write_text(text + '\n[features]\nlog_returns = ["y", "x"]\n')
    model = tmp_path / "m"
    assert run_cli(capsys, "fit", str(spec), "--out", str(model))[0] == 0
    spec.write_text(text + '\n[features]\nlog_returns = ["x", "y"]\n')
    code, err = run_cli(capsys, "predict", str(spec), "--model", str(model))
    assert code == 0, err


@pytest.mark.parametrize("command", ["predict", "backtest"])
def test_a_model_of_text_ids_reads_them_once_every_id_is_an_integer(tmp_path, capsys, command):
    """CSV ids are read as integers when every id is one: a model fitted while the series
    'x9' was in the source (ids as text) was refused by predict / backtest --model once 'x9'
    had left it, "Column dtypes differ from training (id: trained on String, got Int64). Cast
    them ... pl.col(name).cast(...)", advice a command line cannot follow, for the ids '7'
    and '8' the model knows. They are read as its text ids again: the same forecasts."""
    spec = scheduled_project(tmp_path, uneven_rows({"7": 12, "8": 12, "x9": 12}))
    model, before, after = tmp_path / "m", tmp_path / "before.parquet", tmp_path / "after.parquet"
    assert run_cli(capsys, "fit", str(spec), "--as-of", "2024-01-08", "--out", str(model))[0] == 0
    args = ["--model", str(model), *(["--folds", "1"] if command == "backtest" else [])]
    assert run_cli(capsys, command, str(spec), *args, "--out", str(before))[0] == 0
    (tmp_path / "data" / "prices.csv").write_text(uneven_rows({"7": 12, "8": 12}))
    code, err = run_cli(capsys, command, str(spec), *args, "--out", str(after))
    assert code == 0, err
    if command == "predict":
        expected = pl.read_parquet(before).filter(pl.col("id") != "x9")
        assert pl.read_parquet(after).equals(expected)


@pytest.mark.parametrize("command", ["predict", "backtest"])
def test_a_model_of_integer_ids_refuses_text_ids_as_the_command_line_can_read(
    tmp_path, capsys, command
):
    """The mirror of the test above: a model fitted while every CSV id was an integer (read
    as Int64) was refused once a series 'x9' joined the source (every id read as text) with
    "Column dtypes differ from training (id: trained on Int64, got String). Cast them ...
    pl.col(name).cast(...)", advice a command line cannot follow (and no cast reads 'x9').
    It names the ids and what to do instead."""
    spec = scheduled_project(tmp_path, uneven_rows({"7": 12, "8": 12}))
    model = tmp_path / "m"
    assert run_cli(capsys, "fit", str(spec), "--as-of", "2024-01-08", "--out", str(model))[0] == 0
    (tmp_path / "data" / "prices.csv").write_text(uneven_rows({"7": 12, "8": 12, "x9": 12}))
    args = ["--model", str(model), *(["--folds", "1"] if command == "backtest" else [])]
    code, err = run_cli(capsys, command, str(spec), *args, "--out", str(tmp_path / "o.parquet"))
    assert code == 2, err
    assert "was fitted on integer ids (Int64), but the source now holds ids that are" in err
    assert "not integers, e.g. ['x9']" in err and "Fit a model on this data" in err, err
    assert "pl.col(name).cast" not in err


def test_a_features_key_added_later_counts_as_its_default_in_an_older_record():
    from forecaster.jobs.reuse import features_differ

    older = {"log_returns": ["y"], "mfcc": None}
    assert features_differ(older, {**older, "log_returns": ["y"]}) == []
    assert features_differ(older, {**older, "smoothing": None}) == []  # a new key at default
    assert features_differ(older, {**older, "smoothing": 3}) == ["smoothing"]
    assert features_differ(older, {"log_returns": [], "mfcc": None}) == ["log_returns"]


def test_hostile_predict_with_a_tampered_model_exits_2(tmp_path, capsys):
    spec = csv_project(tmp_path, rows())
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{not json")
    out = tmp_path / "forecast.parquet"
    code, err = run_cli(capsys, "predict", str(spec), "--model", str(model), "--out", str(out))
    assert code == 2, err
    assert err.startswith("error: invalid model: ") and "not valid JSON" in err
    assert not out.exists()


# ------------------------------------------------------------------------------------------
# tracking as the spec declares it: the run's model logs into the run's own MLflow run
# ------------------------------------------------------------------------------------------


def _tracked_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    spec = csv_project(tmp_path, rows(16))
    text = spec.read_text().replace("backtest_folds = 0", "backtest_folds = 1")
    spec.write_text(text.replace("enabled = false", 'enabled = true\nexperiment = "tracked"'))
    monkeypatch.chdir(tmp_path)
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:  # a URI an earlier test left set would win over the variable, and
        mlflow.set_tracking_uri(None)  # run_pipeline puts back what it found (that URI)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    return spec


def test_a_pipelines_default_stores_are_its_projects_from_any_working_directory(
    tmp_path, monkeypatch
):
    """The MLflow store and the Optuna storage ("default") of a pipeline are
    ``mlflow/mlflow.db`` and ``mlflow/optuna.db`` in its project folder, as absolute URIs,
    whatever the working directory (were: the working directory's, as relative
    ``sqlite:///mlflow/mlflow.db``: a spec run from elsewhere logged there and started its
    study anew). ``MLFLOW_TRACKING_URI`` wins, a relative SQLite file read from the working
    directory (as MLflow reads it), and the study goes beside a SQLite store."""
    from forecaster.jobs.spec import storage_url
    from forecaster.jobs.tracked import tracking_uri

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    spec, root = load_spec(write(project, MINIMAL))
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(root) == f"sqlite:///{project}/mlflow/mlflow.db"
    assert storage_url(spec, root) == f"sqlite:///{project}/mlflow/optuna.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///runs/mlflow.db")
    assert tracking_uri(root) == f"sqlite:///{Path.cwd()}/runs/mlflow.db"
    assert storage_url(spec, root) == f"sqlite:///{Path.cwd()}/runs/optuna.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert tracking_uri(root) == "http://tracking.example:5000"
    assert storage_url(spec, root) == f"sqlite:///{project}/mlflow/optuna.db"
    assert not (elsewhere / "mlflow").exists()


def test_a_pipelines_unlogged_fits_go_to_its_projects_fallback_folder(tmp_path, monkeypatch):
    """Within a pipeline's tracked run or study, a fit that could not be logged leaves its
    records in ``mlflow/unlogged`` of the project folder, beside its store (was: the working
    directory's, ``/mlflow/unlogged`` for a scheduler started in ``/``);
    ``tracking.configure(fallback_dir=...)`` still wins, and outside the block the working
    directory's is used as before (the Python API)."""
    pytest.importorskip("mlflow")
    from forecaster import tracking
    from forecaster.jobs.tracked import study_tracking, tracked_run
    from forecaster.tracking.resilience import fallback_root

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    file = csv_project(project, rows(16))
    file.write_text(file.read_text().replace("enabled = false", "enabled = true"))
    spec, root = load_spec(file)
    reset_mlflow_state(monkeypatch, elsewhere)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    ours = project / "mlflow" / "unlogged"
    with tracked_run(spec, "2024-01-02", lambda line: None, kind="run", root=root) as ids:
        assert ids[0] is not None
        assert fallback_root().absolute() == ours
    with study_tracking(spec, root) as tracked:
        assert tracked and fallback_root().absolute() == ours
    assert fallback_root().absolute() == elsewhere / "mlflow" / "unlogged"
    tracking.configure(fallback_dir=tmp_path / "mine")
    with tracked_run(spec, "2024-01-03", lambda line: None, kind="run", root=root):
        assert fallback_root() == tmp_path / "mine"


@pytest.mark.slow
def test_a_tracked_run_started_elsewhere_logs_to_its_projects_store(tmp_path, capsys, monkeypatch):
    """``forecaster run project/pipelines/spec.toml`` from another directory, without
    ``MLFLOW_TRACKING_URI``: the run goes to ``project/mlflow/mlflow.db``, whose absolute URI
    summary.json and the browse line name (were: ``elsewhere/mlflow/mlflow.db``, recorded as
    the relative ``sqlite:///mlflow/mlflow.db``, which names no store from the project)."""
    pytest.importorskip("mlflow")
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    spec = csv_project(project, rows(16))
    spec.write_text(spec.read_text().replace("enabled = false", "enabled = true"))
    reset_mlflow_state(monkeypatch, elsewhere)  # no MLFLOW_TRACKING_URI
    code = main(["run", str(spec), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    store = f"sqlite:///{project / 'mlflow' / 'mlflow.db'}"
    assert (project / "mlflow" / "mlflow.db").is_file()
    assert not (elsewhere / "mlflow").exists()
    (summary,) = project.glob("outputs/hostile/*/summary.json")
    assert json.loads(summary.read_text())["tracking_uri"] == store
    assert f"at {store} (browse: mlflow ui --backend-store-uri {store})" in out + err


@pytest.mark.slow
def test_run_pipeline_leaves_the_processs_mlflow_uri_and_experiment_as_they_were(
    tmp_path, monkeypatch
):
    """A notebook that chose its experiment on MLflow's default store, then called
    ``run_pipeline`` of a tracked spec: MLflow's tracking URI stayed the project's store
    (``mlflow/mlflow.db`` of the project), and its experiment the one carried there, so the
    user's later ``mlflow.start_run()`` went to the project's store. Both are restored when
    the pipeline returns, and when it raises."""
    mlflow = pytest.importorskip("mlflow")
    from forecaster.exceptions import ForecasterError

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    spec = csv_project(project, rows(16))
    spec.write_text(spec.read_text().replace("enabled = false", "enabled = true"))
    reset_mlflow_state(monkeypatch, elsewhere)  # no tracking URI set
    default = mlflow.get_tracking_uri()
    chosen = mlflow.set_experiment("notebook").experiment_id

    def as_before() -> None:
        assert not mlflow.is_tracking_uri_set(), mlflow.get_tracking_uri()
        assert mlflow.get_tracking_uri() == default
        assert os.environ.get("MLFLOW_EXPERIMENT_ID") == chosen
        with mlflow.start_run() as run:  # the user's own run: their store and experiment
            assert run.info.experiment_id == chosen
        assert mlflow.get_run(run.info.run_id).info.experiment_id == chosen

    result = run_pipeline(spec, progress=False)
    assert result.status == "completed" and result.tracking_uri is not None
    assert result.tracking_uri.endswith(f"{project}/mlflow/mlflow.db")
    as_before()

    def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("forecaster.jobs.run.log_outputs", failing)
    with pytest.raises(ForecasterError):
        run_pipeline(spec, progress=False, force=True)
    as_before()


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["a b", "a%20b", "a?b", "a#b"])
def test_a_project_path_a_sqlite_url_cannot_hold_is_refused_not_misread(
    tmp_path, capsys, monkeypatch, folder
):
    """The default MLflow store of a project in ``/tmp/a%20b/project`` was
    ``sqlite:////tmp/a%20b/...``, which SQLAlchemy reads as ``/tmp/a b/...``: the run logged
    into another folder's store; one in ``/tmp/a?b/project`` opened ``/tmp/a``. Such a path
    is refused with a message naming the character (the run goes on untracked, as with any
    store it cannot use); a space and ``#`` are read as written, so those runs log into
    the project's own store."""
    pytest.importorskip("mlflow")
    project, elsewhere = tmp_path / folder / "project", tmp_path / "elsewhere"
    project.mkdir(parents=True)
    elsewhere.mkdir()
    spec = csv_project(project, rows(16))
    spec.write_text(spec.read_text().replace("enabled = false", "enabled = true"))
    reset_mlflow_state(monkeypatch, elsewhere)  # no MLFLOW_TRACKING_URI
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    (summary,) = project.glob("outputs/hostile/*/summary.json")
    recorded = json.loads(summary.read_text())["tracking_uri"]
    stores = sorted(tmp_path.rglob("*.db"))
    if "?" in folder or "%" in folder:
        assert recorded is None and stores == [], (recorded, stores)
        assert "Cannot name the MLflow tracking store" in err, err
        assert ("starts a URL's query" if "?" in folder else "'%20' reads as a space") in err
    else:
        assert recorded == f"sqlite:///{project / 'mlflow' / 'mlflow.db'}"
        assert stores == [project / "mlflow" / "mlflow.db"], stores


def _runs(tmp_path: Path) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tracked")
    return client.search_runs([experiment.experiment_id]) if experiment else []


@pytest.mark.slow
def test_a_tracked_spec_logs_the_run_model_into_its_run(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    spec = _tracked_project(tmp_path, monkeypatch)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    runs = _runs(tmp_path)
    assert len(runs) == 1, [r.info.run_name for r in runs]  # the backtest's fit logs no run
    run = runs[0]
    assert run.info.run_name == "hostile-2024-01-16" and run.info.status == "FINISHED"
    assert run.data.tags["pipeline"] == "hostile" and run.data.tags["as_of"] == "2024-01-16"
    assert run.data.params["hidden_size"] == "4"  # the fit logged its parameters into the run
    assert run.data.tags["forecaster.kind"] == "run"  # its own kind (was "fit", as fit's)
    assert "pipeline_backtest_mae" in run.data.metrics
    assert "pipeline_backtest_mae_skill_naive" in run.data.metrics  # beside it, its baseline's
    assert "backtest_mae_naive_by_step" in run.data.metrics
    forecasts = pl.read_parquet(
        tmp_path / "outputs" / "hostile" / "2024-01-16" / "forecasts.parquet"
    )
    assert forecasts["run_id"].unique().to_list() == [run.info.run_id]


def test_a_ctrl_c_once_the_outputs_are_published_still_points_latest_at_the_model(
    tmp_path, capsys, monkeypatch
):
    """A Ctrl-C (or a scheduler's SIGTERM) once a run's outputs are published waits for
    their logging, then stopped the command before it pointed models/<name>/latest.json at
    the run's model: the rerun skips the published outputs, so no run ever recorded it, and
    reuse_model went on reusing the model before (or retrained). The pointer is now written
    in the same wait."""
    import json
    import signal

    import forecaster._io as io_module

    spec = scheduled_project(
        tmp_path, uneven_rows({"a": 12, "b": 12}), training={"reuse_model": True}
    )
    publish = io_module.publish_directory

    def publish_then_ctrl_c(*args: Any, **kwargs: Any) -> Any:
        done = publish(*args, **kwargs)
        if kwargs.get("kind") == "run":  # the run's outputs (not the model saved in them)
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, in the main thread
        return done

    monkeypatch.setattr(io_module, "publish_directory", publish_then_ctrl_c)
    code, err = run_cli(capsys, "run", str(spec), "--as-of", "2024-01-10")
    assert code == 130 and "interrupted (Ctrl-C)" in err, err
    assert (tmp_path / "outputs" / "mini" / "2024-01-10" / "forecasts.parquet").is_file()
    pointer = json.loads((tmp_path / "models" / "mini" / "latest.json").read_text())
    assert pointer["as_of"] == "2024-01-10" and pointer["model_dir"].endswith("2024-01-10/model")


@pytest.mark.slow
def test_a_ctrl_c_once_the_outputs_are_published_waits_for_their_logging(
    tmp_path, capsys, monkeypatch
):
    """A Ctrl-C between publishing a run's outputs and logging them left the MLflow run KILLED
    without its metrics and artifacts, and the rerun of the as-of skipped (its outputs exist),
    so nothing ever logged them. The logging now finishes first, then the Ctrl-C stops the
    command (exit 130, its outputs logged). The run ends FINISHED, as its summary.json says
    completed (it ended KILLED), tagged with the interruption."""
    import json
    import signal

    pytest.importorskip("mlflow")
    import forecaster._io as io_module
    from forecaster.jobs.tracked import INTERRUPTED_TAG

    reset_mlflow_state(monkeypatch, tmp_path)
    spec = _tracked_project(tmp_path, monkeypatch)
    publish = io_module.publish_directory

    def publish_then_ctrl_c(*args: Any, **kwargs: Any) -> Any:
        done = publish(*args, **kwargs)
        if kwargs.get("kind") == "run":  # the run's outputs (not the model saved in them)
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, in the main thread
        return done

    monkeypatch.setattr(io_module, "publish_directory", publish_then_ctrl_c)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 130 and "interrupted (Ctrl-C)" in err, err
    # the run is complete: the line says so (it said "run the command again to finish it")
    assert "run the command again to finish" not in err, err
    assert "the outputs are complete, published in " in err, err
    assert "(every step after it ran); running the command again skips them" in err, err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    (run,) = _runs(tmp_path)
    (written,) = tmp_path.glob(f"outputs/*/{run.data.tags['as_of']}/summary.json")
    summary = json.loads(written.read_text())
    assert summary["status"] == "completed" and run.info.status == "FINISHED"
    assert run.data.tags[INTERRUPTED_TAG].startswith("KeyboardInterrupt once the outputs were")
    assert "pipeline_backtest_mae" in run.data.metrics, err
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "outputs")}
    assert "outputs/summary.json" in logged, logged
    monkeypatch.setattr(io_module, "publish_directory", publish)
    code, err = run_cli(capsys, "run", str(spec))  # the rerun skips: nothing left to log
    assert code == 0 and "already exist" in err + capsys.readouterr().out, err


@pytest.mark.slow
def test_a_second_ctrl_c_once_the_outputs_are_in_place_ends_the_run_finished(
    tmp_path, capsys, monkeypatch
):
    """A second Ctrl-C inside publish_directory, after the run's folder was put in place (as
    it returned), left the MLflow run KILLED while its outputs were published
    and summary.json says completed. It ends FINISHED, tagged with the interruption, as after
    a single Ctrl-C once published: what the destination holds decides, not a flag set after
    publish_directory returned."""
    import json
    import signal

    pytest.importorskip("mlflow")
    import forecaster._io as io_module
    import forecaster._io.publishing as publishing
    from forecaster.jobs.tracked import INTERRUPTED_TAG

    reset_mlflow_state(monkeypatch, tmp_path)
    spec = _tracked_project(tmp_path, monkeypatch)
    publish, rename = io_module.publish_directory, publishing.rename2
    kinds: list[str] = []

    def publish_noting_kind(*args: Any, **kwargs: Any) -> Any:
        kinds.append(kwargs.get("kind", ""))
        return publish(*args, **kwargs)

    def rename_then_two_ctrl_c(*args: Any) -> bool:
        done = rename(*args)
        if done and kinds and kinds[-1] == "run":  # the run's folder is in place
            os.kill(os.getpid(), signal.SIGINT)  # held until the logging is done ...
            os.kill(os.getpid(), signal.SIGINT)  # ... and the second one raises at once
        return done

    monkeypatch.setattr(io_module, "publish_directory", publish_noting_kind)
    monkeypatch.setattr(publishing, "rename2", rename_then_two_ctrl_c)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 130 and "interrupted (Ctrl-C)" in err, err
    (run,) = _runs(tmp_path)
    (written,) = tmp_path.glob(f"outputs/*/{run.data.tags['as_of']}/summary.json")
    assert json.loads(written.read_text())["status"] == "completed"
    assert run.info.status == "FINISHED", run.info.status
    assert run.data.tags[INTERRUPTED_TAG].startswith("KeyboardInterrupt once the outputs were")


@pytest.mark.slow
def test_a_second_ctrl_c_before_the_registration_says_what_it_left_undone(
    tmp_path, capsys, monkeypatch
):
    """A second Ctrl-C once the outputs are published, as the model is about to be
    registered: no version is registered and latest.json is not written, while summary.json
    says completed with a version to register, and a rerun skips the outputs. The run's
    forecaster.interrupted tag said only that the logging of the outputs may have been cut
    short; it names the registration and the pointer too, and --force, which redoes them."""
    import json
    import signal

    pytest.importorskip("mlflow")
    import forecaster.jobs.run as run_module
    from forecaster.jobs.tracked import INTERRUPTED_TAG
    from mlflow import MlflowClient

    reset_mlflow_state(monkeypatch, tmp_path)
    spec = _tracked_project(tmp_path, monkeypatch)
    named = 'experiment = "tracked"'
    spec.write_text(spec.read_text().replace(named, named + '\nregister_as = "twice"'))
    register = run_module.register_run_model

    def two_ctrl_c_then_register(*args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signal.SIGINT)  # held until the registration is done ...
        os.kill(os.getpid(), signal.SIGINT)  # ... and the second one raises at once
        return register(*args, **kwargs)

    monkeypatch.setattr(run_module, "register_run_model", two_ctrl_c_then_register)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 130 and "interrupted (Ctrl-C)" in err, err
    assert "run the command again to finish" not in err, err  # what is done, what is left:
    left = "not done: registering the model version, logging the outputs to the MLflow run, "
    assert "the outputs are complete, published in " in err and left in err, err
    assert "(--force writes them anew)" in err, err
    (run,) = _runs(tmp_path)
    (written,) = tmp_path.glob(f"outputs/*/{run.data.tags['as_of']}/summary.json")
    summary = json.loads(written.read_text())
    assert summary["status"] == "completed" and summary["registration"]["new_version"] is True
    assert MlflowClient().search_model_versions("name='twice'") == []
    assert not list(tmp_path.rglob("latest.json"))
    assert run.info.status == "FINISHED", run.info.status
    tag = run.data.tags[INTERRUPTED_TAG]
    assert "the model's registration" in tag and "latest.json" in tag, tag
    assert "--force" in tag, tag
    monkeypatch.setattr(run_module, "register_run_model", register)
    code, err = run_cli(capsys, "run", str(spec))  # a rerun skips: the tag's advice holds
    assert code == 0 and "already exist" in err, err


@pytest.mark.slow
def test_a_tracked_run_logs_its_summary_json_as_an_artifact_of_its_run(
    tmp_path, capsys, monkeypatch
):
    """A scheduler reading the MLflow run sees what summary.json says (the dropped and stale
    series, why): it is logged beside the forecasts, as written (it was not logged at all)."""
    mlflow = pytest.importorskip("mlflow")
    reset_mlflow_state(monkeypatch, tmp_path)
    spec = _tracked_project(tmp_path, monkeypatch)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # maintenance mode in MLflow 3
    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    with (tmp_path / "data" / "prices.csv").open("a") as data:  # "c" too short for the model
        data.write("c,2024-01-15,1.5\nc,2024-01-16,2.5\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # MLflow's file store is deprecated
        code, err = run_cli(capsys, "run", str(spec))
        assert code == 0, err
        client = mlflow.tracking.MlflowClient(store)
        (run,) = client.search_runs([client.get_experiment_by_name("tracked").experiment_id])
        logged = Path(client.download_artifacts(run.info.run_id, "outputs/summary.json", tmp_path))
    written = tmp_path / "outputs" / "hostile" / "2024-01-16" / "summary.json"
    assert logged.read_bytes() == written.read_bytes()
    summary = json.loads(logged.read_text())
    assert summary["run_id"] == run.info.run_id and summary["dropped_reasons"] == {"c": "too_short"}


@pytest.mark.slow
def test_a_tracked_spec_logs_targets_named_unlike_a_metric_key(tmp_path, capsys, monkeypatch):
    """Targets "y" and "temp (°C)": the key backtest_temp (°C)_mae_by_step made MLflow refuse
    the run's outputs (metrics by step, forecasts, backtest and plot artifacts), with a
    warning."""
    pytest.importorskip("mlflow")
    spec = _tracked_project(tmp_path, monkeypatch)
    data = pl.read_csv(tmp_path / "data" / "prices.csv")
    data.with_columns((pl.col("y") * 2).alias("temp (°C)")).write_csv(
        tmp_path / "data" / "prices.csv"
    )
    spec.write_text(spec.read_text().replace('targets = ["y"]', 'targets = ["y", "temp (°C)"]'))
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert "Could not log" not in err
    (run,) = _runs(tmp_path)
    assert "backtest_temp __C__mae_by_step" in run.data.metrics
    assert "backtest_y_mae_by_step" in run.data.metrics


@pytest.mark.slow
def test_a_tracked_spec_logs_the_fit_command_into_its_run(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    spec = _tracked_project(tmp_path, monkeypatch)
    code, err = run_cli(capsys, "fit", str(spec), "--out", str(tmp_path / "models" / "m"))
    assert code == 0, err
    runs = _runs(tmp_path)
    assert len(runs) == 1 and runs[0].data.params["hidden_size"] == "4"
    assert runs[0].data.tags["forecaster.kind"] == "fit"


@pytest.mark.slow
def test_a_tracked_run_with_tune_logs_the_refit_not_the_trials(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    pytest.importorskip("optuna")
    spec = _tracked_project(tmp_path, monkeypatch)
    spec.write_text(spec.read_text() + "\n[training]\ntrials = 2\n")
    code, err = run_cli(capsys, "run", str(spec), "--tune")
    assert code == 0, err
    runs = _runs(tmp_path)
    assert len(runs) == 1, [r.info.run_name for r in runs]  # no run per trial
    assert runs[0].info.run_name == "hostile-2024-01-16" and "hidden_size" in runs[0].data.params


def test_a_tracked_run_without_its_store_warns_at_the_callers_line(tmp_path, monkeypatch):
    """An unreachable tracking store is a warning (pointing at the user's call), and the
    pipeline runs without tracking."""
    pytest.importorskip("mlflow")
    reset_mlflow_state(monkeypatch, tmp_path)
    spec = _tracked_project(tmp_path, monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    with pytest.warns(ForecasterWarning, match="tracking is unavailable.*runs without it") as got:
        result = forecaster.jobs.run_pipeline(spec, progress=False, log=lambda line: None)
    assert result.status == "completed" and result.run_id is None
    unavailable = [w for w in got if "tracking is unavailable" in str(w.message)]
    assert {Path(w.filename).name for w in unavailable} == {Path(__file__).name}


def test_a_tracked_run_leaves_a_deleted_experiment_deleted_and_warns(tmp_path, monkeypatch):
    """A scheduled run restored the MLflow experiment its user had deleted (and every run in
    it), silently. It is left deleted now, as mlflow.set_experiment leaves it: a tracking
    warning names the experiment and the ways out, the outputs are published untracked."""
    mlflow = pytest.importorskip("mlflow")
    reset_mlflow_state(monkeypatch, tmp_path)
    spec = _tracked_project(tmp_path, monkeypatch)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    experiment_id = client.create_experiment("tracked")
    client.delete_experiment(experiment_id)
    with pytest.warns(ForecasterWarning, match="'tracked'.* is deleted") as got:
        result = forecaster.jobs.run_pipeline(spec, progress=False, log=lambda line: None)
    assert result.status == "completed" and result.run_id is None
    message = next(str(w.message) for w in got if "is deleted" in str(w.message))
    assert "Restore it" in message and "delete it permanently" in message
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    summary = json.loads((Path(result.output_dir) / "summary.json").read_text())
    assert summary["run_id"] is None


@pytest.mark.slow
def test_a_tracked_run_leaves_the_users_mlflow_experiment_as_it_was(tmp_path, capsys, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    reset_mlflow_state(monkeypatch, tmp_path)
    spec = _tracked_project(tmp_path, monkeypatch)
    mlflow.set_experiment("mine")  # the user's own choice, before the pipeline runs
    chosen = os.environ["MLFLOW_EXPERIMENT_ID"]
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert [r.info.run_name for r in _runs(tmp_path)] == ["hostile-2024-01-16"]
    assert os.environ["MLFLOW_EXPERIMENT_ID"] == chosen  # it was the pipeline's experiment
    with mlflow.start_run() as run:  # went to the pipeline's experiment "tracked"
        assert run.info.experiment_id == chosen


@pytest.mark.slow
def test_a_tracked_study_chooses_no_mlflow_experiment_for_the_process(
    tmp_path, capsys, monkeypatch
):
    pytest.importorskip("mlflow")
    pytest.importorskip("optuna")
    reset_mlflow_state(monkeypatch, tmp_path)
    spec = _tracked_project(tmp_path, monkeypatch)
    spec.write_text(spec.read_text() + "\n[training]\ntrials = 1\n")
    code, err = run_cli(capsys, "tune", str(spec))
    assert code == 0, err
    assert _runs(tmp_path), "the study logs into the spec's experiment"
    # before: MLFLOW_EXPERIMENT_ID named the spec's experiment, so a user's later
    # mlflow.start_run() on another store failed with "No Experiment with id=..."
    assert "MLFLOW_EXPERIMENT_ID" not in os.environ
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    experiments = {e.name: e.experiment_id for e in client.search_experiments()}
    models = {name: client.search_logged_models([i]) for name, i in experiments.items()}
    # the best model is in its study run's experiment (MLflow put it in the process's own)
    assert [len(models[name]) for name in ("tracked", "Default")] == [1, 0], models


@pytest.mark.slow
@pytest.mark.parametrize("enabled", [False, True])
def test_tune_model_with_track_follows_the_specs_tracking_section(tmp_path, monkeypatch, enabled):
    """forecaster.jobs.tune_model(track=True) logs only when [tracking] is enabled, into its
    experiment (a regression of the scope change logged into the process's experiment)."""
    pytest.importorskip("mlflow")
    pytest.importorskip("optuna")
    reset_mlflow_state(monkeypatch, tmp_path)
    spec_path = _tracked_project(tmp_path, monkeypatch)
    if not enabled:
        text = spec_path.read_text().replace(
            'enabled = true\nexperiment = "tracked"', "enabled = false"
        )
        spec_path.write_text(text)
    spec, root = load_spec(spec_path)
    frame, when = prepare_data(spec, root, None)
    forecaster.jobs.tune_model(spec, root, frame, when, n_trials=1, track=True)
    store = tmp_path / "mlflow" / "mlflow.db"
    if not enabled:
        assert not store.exists() or not _all_runs(store)
        return
    assert _runs(tmp_path) and set(_all_runs(store)) == {"tracked"}


def _all_runs(store: Path) -> dict[str, int]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store}")
    experiments = client.search_experiments()
    counts = {e.name: len(client.search_runs([e.experiment_id])) for e in experiments}
    return {name: n for name, n in counts.items() if n}


# ------------------------------------------------------------------------------------------
# a run stopped by SIGTERM or killed outright: its MLflow run does not stay RUNNING
# ------------------------------------------------------------------------------------------


def _endless_tracked_project(tmp_path: Path) -> Path:
    """A tracked project whose fit runs until it is stopped (one log line per epoch)."""
    spec = csv_project(tmp_path, rows(16))
    text = spec.read_text().replace("max_epochs = 1", "max_epochs = 100000\npatience = 100000")
    spec.write_text(text.replace("enabled = false", 'enabled = true\nexperiment = "tracked"'))
    return spec


def _start_run_process(spec: Path, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """``forecaster run SPEC`` of this checkout in a subprocess, in the middle of its fit
    (its third epoch logged) when this returns; its standard error goes to the file returned."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),  # this checkout, not another one installed
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}",
    }
    err = tmp_path / "stderr.txt"
    with open(err, "wb") as stream:
        process = subprocess.Popen(
            [sys.executable, "-m", "forecaster", "run", str(spec)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stream,
            preexec_fn=sigint_as_in_a_terminal,  # Ctrl-C taken even when run in the background
        )
    deadline = time.monotonic() + 120
    while "epoch 3/" not in err.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run did not reach its fit:\n{err.read_text(errors='replace')}")
        time.sleep(0.1)
    return process, err


@pytest.mark.slow
def test_sigterm_mid_fit_ends_the_mlflow_run_killed_and_exits_143(tmp_path):
    pytest.importorskip("mlflow")
    spec = _endless_tracked_project(tmp_path)
    process, err = _start_run_process(spec, tmp_path)
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=120)
    finally:
        process.kill()
    stderr = err.read_text(errors="replace")
    assert code == 143, stderr  # 128 + 15, after its cleanups (not -15: killed by the signal)
    assert stderr.splitlines()[-1].startswith("error: terminated (SIGTERM)"), stderr
    runs = _runs(tmp_path)
    assert [r.info.status for r in runs] == ["KILLED"], stderr
    # no staging folder or outputs left, the checkpoints kept for --resume
    left = sorted(p.name for p in (tmp_path / "outputs" / "hostile").iterdir())
    assert left == [".2024-01-16.checkpoints", ".2024-01-16.lock"]
    assert any((tmp_path / "outputs" / "hostile" / left[0]).iterdir())


@pytest.mark.slow
def test_ctrl_c_mid_fit_ends_the_mlflow_run_killed_and_exits_130(tmp_path):
    """Ctrl-C (SIGINT) exits 130 (128 + 2, as SIGTERM exits 143) after the same cleanups: the
    MLflow run KILLED, no staging folder or outputs, the checkpoints kept (was: exit 1)."""
    pytest.importorskip("mlflow")
    spec = _endless_tracked_project(tmp_path)
    process, err = _start_run_process(spec, tmp_path)
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=120)
    finally:
        process.kill()
    stderr = err.read_text(errors="replace")
    assert code == 130, stderr
    assert stderr.splitlines()[-1].startswith("error: interrupted (Ctrl-C)"), stderr
    assert [r.info.status for r in _runs(tmp_path)] == ["KILLED"], stderr
    left = sorted(p.name for p in (tmp_path / "outputs" / "hostile").iterdir())
    assert left == [".2024-01-16.checkpoints", ".2024-01-16.lock"]
    assert any((tmp_path / "outputs" / "hostile" / left[0]).iterdir())


@pytest.mark.slow
def test_a_run_left_running_by_a_killed_process_is_closed_by_the_next_run(
    tmp_path, capsys, monkeypatch
):
    pytest.importorskip("mlflow")
    spec = _endless_tracked_project(tmp_path)
    process, _ = _start_run_process(spec, tmp_path)
    process.kill()  # kill -9: no handler runs, the run stays RUNNING
    process.wait(timeout=60)
    (left,) = _runs(tmp_path)
    assert left.info.status == "RUNNING"
    spec.write_text(spec.read_text().replace("max_epochs = 100000", "max_epochs = 1"))
    reset_mlflow_state(monkeypatch, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    status = {r.info.run_id: r.info.status for r in _runs(tmp_path)}
    assert status.pop(left.info.run_id) == "KILLED", err
    assert list(status.values()) == ["FINISHED"]
    assert f"run {left.info.run_id} of hostile as of 2024-01-16 was left RUNNING" in err
    assert "which is gone; marked KILLED" in err


def test_a_ctrl_c_as_a_tracked_run_starts_ends_its_run_killed(
    tmp_path, monkeypatch, python_sigint_handler
):
    """A Ctrl-C in the write that starts a pipeline's MLflow run (``mlflow.start_run``) was
    held until the write ended, then raised before the run was known: it stayed RUNNING for
    good, and the process's active run. It ends KILLED, and is no longer active."""
    mlflow = pytest.importorskip("mlflow")
    from forecaster.jobs.tracked import tracked_run

    reset_mlflow_state(monkeypatch, tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    spec = load_spec(write(tmp_path, MINIMAL + '[tracking]\nexperiment = "ctrl-c"\n'))[0]
    ctrl_c_as_runs_are_created(monkeypatch)
    with (
        pytest.raises(KeyboardInterrupt),
        tracked_run(spec, "2024-01-02", lambda line: None, kind="run", root=tmp_path),
    ):
        pass  # not reached
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("ctrl-c").experiment_id])
    assert [run.info.status for run in runs] == ["KILLED"]
    assert mlflow.active_run() is None


def test_a_tracked_run_puts_back_the_mlflow_logger_level_and_progress_bar_setting(
    tmp_path, monkeypatch
):
    """A tracked run quiets MLflow (its logger at WARNING, no artifact progress bars) for the
    run only: run_pipeline called from Python left both changed for the rest of the process,
    overriding the user's own logger level."""
    import logging

    pytest.importorskip("mlflow")
    from forecaster.jobs.tracked import tracked_run

    reset_mlflow_state(monkeypatch, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    spec = load_spec(write(tmp_path, MINIMAL + '[tracking]\nexperiment = "quiet"\n'))[0]
    logger = logging.getLogger("mlflow")
    before = logger.level
    logger.setLevel(logging.DEBUG)  # the user's own choice
    try:
        with tracked_run(spec, "2024-01-02", lambda line: None, kind="run", root=tmp_path) as (
            run_id,
            _,
        ):
            assert run_id is not None
            assert logger.level == logging.WARNING
            assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
        assert logger.level == logging.DEBUG
        assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ
        monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")  # the user's, kept
        with tracked_run(spec, "2024-01-03", lambda line: None, kind="run", root=tmp_path):
            assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"
        assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"
        logger.setLevel(logging.ERROR)  # stricter than the run's WARNING: kept (was lowered)
        with tracked_run(spec, "2024-01-04", lambda line: None, kind="run", root=tmp_path):
            assert logger.level == logging.ERROR
        assert logger.level == logging.ERROR
    finally:
        logger.setLevel(before)


def test_only_runs_of_dead_processes_of_this_host_pipeline_and_as_of_are_closed(
    tmp_path, monkeypatch
):
    """The next run (under the run's lock) marks KILLED the runs of its pipeline and as-of
    whose process on this host is gone; a live process's run, another host's, one that
    recorded no process, and another as-of's stay RUNNING."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from forecaster.jobs.tracked import HOST_TAG, PID_TAG, tracked_run

    reset_mlflow_state(monkeypatch, tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    spec = load_spec(write(tmp_path, MINIMAL + '[tracking]\nexperiment = "kills"\n'))[0]
    lines: list[str] = []
    with tracked_run(spec, "2024-01-02", lines.append, kind="run", root=tmp_path) as (first, _):
        pass
    client = MlflowClient(uri)
    host = client.get_run(first).data.tags[HOST_TAG]
    experiment = client.get_run(first).info.experiment_id
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    dead = gone.stdout.strip()
    left = {
        "dead": {HOST_TAG: host, PID_TAG: dead},
        "alive": {HOST_TAG: host, PID_TAG: str(os.getppid())},
        "elsewhere": {HOST_TAG: "another-host", PID_TAG: dead},
        "untagged": {},
        "other as-of": {HOST_TAG: host, PID_TAG: dead, "as_of": "2024-01-01"},
    }
    ids = {
        what: client.create_run(
            experiment, tags={"pipeline": "mini", "as_of": "2024-01-02", **tags}
        ).info.run_id
        for what, tags in left.items()
    }
    with tracked_run(spec, "2024-01-02", lines.append, kind="run", root=tmp_path) as (second, _):
        assert client.get_run(second).info.status == "RUNNING"  # its own run: not closed
    status = {what: client.get_run(run_id).info.status for what, run_id in ids.items()}
    assert status == {
        "dead": "KILLED",
        "alive": "RUNNING",
        "elsewhere": "RUNNING",
        "untagged": "RUNNING",
        "other as-of": "RUNNING",
    }
    assert client.get_run(second).info.status == "FINISHED"
    assert any(f"run {ids['dead']} of mini" in line and "marked KILLED" in line for line in lines)
    assert any(ids["elsewhere"] in line and "left as it is" in line for line in lines)


def test_sigterm_during_a_command_unwinds_it_and_exits_143(tmp_path, capsys, monkeypatch):
    """Under ``main``, SIGTERM is an interrupt that runs the command's cleanups; the handler
    of before the command is back afterwards (and was used by nothing else)."""
    import forecaster.jobs.run as run_module

    cleaned = []

    def terminated_run(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # the signal arrives in this sleep
        finally:
            cleaned.append(True)

    def before(signum, frame):
        raise AssertionError("the SIGTERM reached the handler of before the command")

    monkeypatch.setattr(run_module, "run_pipeline", terminated_run)
    previous = signal.signal(signal.SIGTERM, before)
    try:
        started = time.monotonic()
        code, err = run_cli(capsys, "run", str(tmp_path / "spec.toml"))
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143 and cleaned and time.monotonic() - started < 20, err
    assert err.strip().startswith("error: terminated (SIGTERM)")


def test_ctrl_c_during_a_command_unwinds_it_and_exits_130(
    tmp_path, capsys, monkeypatch, python_sigint_handler
):
    """Ctrl-C under ``main`` runs the command's cleanups and exits 130, the shell's code of a
    process SIGINT ended (was 1, the code of a failure); Python's handler is back after it."""
    import forecaster.jobs.run as run_module

    cleaned = []

    def interrupted_run(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)  # the signal arrives in this sleep
        finally:
            cleaned.append(True)

    monkeypatch.setattr(run_module, "run_pipeline", interrupted_run)
    started = time.monotonic()
    code, err = run_cli(capsys, "run", str(tmp_path / "spec.toml"))
    assert code == 130 and cleaned and time.monotonic() - started < 20, err
    assert err.strip().startswith("error: interrupted (Ctrl-C)"), err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ------------------------------------------------------------------------------------------
# prediction intervals: [output] levels and predict --level (issue 13)
# ------------------------------------------------------------------------------------------


def test_levels_are_calibrated_when_missing_filled_a_step_of_the_calibration(tmp_path, capsys):
    """The calibration leaves out residuals at steps missing= filled, so the plan's folds
    (exactly the 19 residuals per step of a 95 % level) fell short and the run failed (exit 3,
    advising model.calibrate(folds=...), which a spec cannot pass): it calibrates on more."""
    (tmp_path / "data").mkdir()
    n = 120
    dates = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    frame = pl.DataFrame({"date": dates, "y": np.random.default_rng(0).normal(5, 1, n)})
    frame.filter(pl.col("date") != dates[112]).write_csv(tmp_path / "data" / "a.csv")
    series = {"id": None, "time": "date", "targets": ["y"], "missing": "ffill", "freq": "1d"}
    spec = write(tmp_path, mini_spec(series=series, output={"plot_series": 0, "levels": [95]}))
    code, err = run_cli(capsys, "run", str(spec), "--no-progress")
    assert code == 0, err
    forecasts = pl.read_parquet(next((tmp_path / "outputs").rglob("forecasts.parquet")))
    assert forecasts["y_lo_95"].is_finite().all() and forecasts["y_hi_95"].is_finite().all()


def test_a_run_with_levels_and_no_backtest_calibrates_an_id_named_like_a_score(tmp_path, capsys):
    """The calibration's backtest scores nothing, but an id column named ``n`` (a column of a
    backtest's scores) was refused before the fit of a run with levels and no backtest."""
    (tmp_path / "data").mkdir()
    n = 120
    dates = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    rng = np.random.default_rng(0)
    pl.DataFrame(
        {"n": ["a"] * n + ["b"] * n, "date": dates * 2, "y": rng.normal(5, 1, 2 * n)}
    ).write_csv(tmp_path / "data" / "a.csv")
    series = {"id": "n", "time": "date", "targets": ["y"], "freq": "1d"}
    spec = write(tmp_path, mini_spec(series=series, output={"plot_series": 0, "levels": [80]}))
    code, err = run_cli(capsys, "run", str(spec), "--no-progress")
    assert code == 0, err
    forecasts = pl.read_parquet(next((tmp_path / "outputs").rglob("forecasts.parquet")))
    assert forecasts["n"].unique().sort().to_list() == ["a", "b"]
    assert (forecasts["y_hi_80"] > forecasts["y_lo_80"]).all()


def test_a_calibration_that_fails_for_another_cause_than_length_says_the_cause(
    tmp_path, capsys, monkeypatch
):
    """Every DataValidationError of the run's calibration came out as "... Use longer series,
    lower levels or a shorter horizon", advice that cannot help when the cause is another
    (here the missing= policy made up every actual value the folds are scored on): the
    cause's own message comes through after the levels; only a length error gets that
    advice."""
    from forecaster.estimators import RNNForecaster
    from forecaster.exceptions import DataValidationError

    cause = "calibrate: the frame holds none of the 40 actual values (missing='ffill')"

    def fails(*args, **kwargs):
        raise DataValidationError(cause)

    (tmp_path / "data").mkdir()
    n = 120
    dates = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    frame = pl.DataFrame({"date": dates, "y": np.random.default_rng(0).normal(5, 1, n)})
    frame.write_csv(tmp_path / "data" / "a.csv")
    series = {"id": None, "time": "date", "targets": ["y"], "freq": "1d"}
    spec = write(tmp_path, mini_spec(series=series, output={"plot_series": 0, "levels": [80]}))
    monkeypatch.setattr(RNNForecaster, "calibrate", fails)
    code, err = run_cli(capsys, "run", str(spec), "--no-progress")
    assert code == 3, err
    assert (
        f"Cannot calibrate the intervals of [output] levels = ['80'] (or backtest --level): {cause}"
        in err
    )
    assert "Use longer series" not in err, err


@pytest.mark.slow
def test_a_calibration_too_long_for_the_data_gives_the_spec_advice_only(tmp_path, capsys):
    """The backtest's advice ("Use fewer folds, a smaller step, ...": arguments a spec does
    not set) was glued before the run's own: only the spec's fixes are given."""
    (tmp_path / "data").mkdir()
    n = 120
    dates = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    frame = pl.DataFrame({"date": dates, "y": np.random.default_rng(0).normal(5, 1, n)})
    frame.write_csv(tmp_path / "data" / "a.csv")
    series = {"id": None, "time": "date", "targets": ["y"], "freq": "1d"}
    spec = write(tmp_path, mini_spec(series=series, output={"plot_series": 0, "levels": [99]}))
    code, err = run_cli(capsys, "run", str(spec), "--no-progress")
    assert code == 3, err
    fact = r", and too few rows for \d+ folds: .* the longest has 120\. Use longer series"
    assert re.search(fact, err), err
    assert "Use fewer folds" not in err and "smaller step" not in err, err


@pytest.mark.parametrize(
    ("change", "advice"),
    [
        (
            ("lookback = 4", "lookback = 30"),
            "Use a shorter [model] lookback or [model] horizon, or provide more history.",
        ),
        (
            ("backtest_folds = 0", "backtest_folds = 8"),
            "Use fewer [evaluation] backtest_folds, or a shorter [model] lookback or [model] "
            "horizon.",
        ),
    ],
)
def test_too_few_rows_are_refused_with_the_spec_keys_not_python_arguments(
    tmp_path, capsys, change, advice
):
    """A spec whose lookback or backtest needs more rows than its series have was told to
    "Use a shorter lookback or horizon" or "Use fewer folds, a smaller step, ...": Python's
    arguments (a spec has no step). Under the command and run_pipeline the advice names the
    spec's keys, as the duplicate rows' does; from Python it names the arguments."""
    spec = csv_project(tmp_path, rows(16))
    text = spec.read_text()
    assert change[0] in text, text
    spec.write_text(text.replace(*change))
    dry = "lookback" in change[1]  # the backtest's folds are placed only by a real run
    code, err = run_cli(capsys, "run", str(spec), *(["--dry-run"] if dry else []))
    assert code == 3, err
    assert advice in err and "smaller step" not in err, err
    with pytest.raises(forecaster.exceptions.TooFewRowsError) as info:
        run_pipeline(spec, dry_run=dry, progress=False, log=lambda line: None)
    assert advice in str(info.value), info.value


def test_too_few_rows_for_the_folds_of_backtest_folds_option_name_the_option(tmp_path, capsys):
    """``forecaster backtest spec --folds 9`` on series too short for 9 folds was told to "Use
    fewer [evaluation] backtest_folds", a key that --folds overrides: editing the spec changed
    nothing. The advice names the option it was given by; without it, the spec's key."""
    spec = csv_project(tmp_path, rows(16))
    code, err = run_cli(capsys, "backtest", str(spec), "--folds", "9")
    assert code == 3, err
    assert "Too few rows for 9 folds" in err and "Use fewer --folds, or a shorter" in err, err
    assert "backtest_folds" not in err, err
    spec.write_text(spec.read_text().replace("backtest_folds = 0", "backtest_folds = 9"))
    code, err = run_cli(capsys, "backtest", str(spec))
    assert code == 3, err
    assert "Use fewer [evaluation] backtest_folds, or a shorter" in err, err


def test_repeated_times_are_refused_with_the_spec_key_not_the_python_argument(tmp_path, capsys):
    """A panel read without series.id was told to "pass id_col='store'", a Python argument
    that a spec has not; the run names the spec's key (and a DST hour the source's times)."""
    (tmp_path / "data").mkdir()
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(30)]
    frame = pl.DataFrame(
        {"store": np.repeat(["a", "b"], 30), "date": days * 2, "y": np.arange(60.0) % 7}
    )
    frame.write_csv(tmp_path / "data" / "a.csv")
    series = {"id": None, "time": "date", "targets": ["y"], "freq": "1d"}
    spec = write(tmp_path, mini_spec(series=series, output={"plot_series": 0}))
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3, err
    assert "30 duplicate (time) rows" in err and "set series.id = 'store' in the spec" in err
    assert "id_col" not in err and "frame.unique" not in err, err
    # run_pipeline from Python reads the same spec: its fix is the spec's key too (it was
    # "pass id_col='store'", an argument run_pipeline has not)
    with pytest.raises(forecaster.exceptions.DataValidationError) as info:
        run_pipeline(spec, dry_run=True, progress=False, log=lambda line: None)
    assert "set series.id = 'store' in the spec" in str(info.value), info.value
    assert "id_col" not in str(info.value), info.value


def test_per_series_levels_with_a_filled_step_keep_a_calibration_with_no_room_for_more(
    tmp_path, capsys
):
    """Per series, a series short of its own residuals falls back to the pooled ones: a step
    missing= filled must not make the calibration ask for folds the data have no room for
    (a first fix retried with 22 folds and exited 3: "No training windows remain")."""
    (tmp_path / "data").mkdir()
    rng, first = np.random.default_rng(0), dt.date(2024, 1, 1)
    rows = [
        (key, first + dt.timedelta(days=i), float(rng.normal(5, 1)))
        for key in "ab"
        for i in range(97)
        if not (key == "b" and i == 97 - 3 * 4 - 1)
    ]
    pl.DataFrame(rows, schema=["id", "date", "y"], orient="row").write_csv(
        tmp_path / "data" / "a.csv"
    )
    model = {"lookback": 4, "horizon": 4, "hidden_size": 4, "max_epochs": 1, "random_state": 0}
    text = mini_spec(
        series={"missing": "ffill", "freq": "1d"},
        model=model,
        output={"plot_series": 0, "levels": [80]},
    )
    code, err = run_cli(capsys, "run", str(write(tmp_path, text)), "--no-progress")
    assert code == 0, err
    assert (  # the series short of its own (b) uses the pooled residuals, and the line says so
        "per series for 1 series, pooled for the 1 with too few residuals of their own from 20 "
        "calibration folds (40 forecast windows of 2 series; "
    ) in err


@pytest.mark.parametrize("main_rank", [True, False])
def test_the_calibration_of_levels_warns_on_rank_zero_only(tmp_path, monkeypatch, main_rank):
    """Under torchrun every rank calibrates the model for [output] levels, and a rank other than
    0 repeated each of calibrate's warnings (here: the residuals at the value missing= filled,
    left out) that rank 0 gives; it shows none now, as its fit shows none."""
    from forecaster.jobs.intervals import calibrate_for_levels
    from forecaster.jobs.spec import build_estimator
    from forecaster.training import distributed

    (tmp_path / "data").mkdir()
    rng, first = np.random.default_rng(0), dt.date(2024, 1, 1)
    rows = [
        (key, first + dt.timedelta(days=i), float(rng.normal(5, 1)))
        for key in "ab"
        for i in range(60)
        if not (key == "b" and i == 55)
    ]
    pl.DataFrame(rows, schema=["id", "date", "y"], orient="row").write_csv(
        tmp_path / "data" / "a.csv"
    )
    text = mini_spec(series={"missing": "ffill", "freq": "1d"}, output={"levels": [80]})
    spec, root = load_spec(write(tmp_path, text))
    frame, _ = prepare_data(spec, root, None, forecasts=False)
    with warnings.catch_warnings():  # the fit's own (a baseline's): not what this test counts
        warnings.simplefilter("ignore")
        model = build_estimator(spec, False).fit(frame)
    monkeypatch.setattr(distributed, "is_main_process", lambda: main_rank)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert calibrate_for_levels(spec, model, frame, lambda line: None) is not None
    shown = [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]
    if main_rank:
        assert any("residuals" in message for message in shown), shown
    else:
        assert shown == []


def test_the_calibration_log_line_counts_the_windows_its_residuals_came_from(tmp_path, capsys):
    """The line "calibrate conformal intervals ... from 4 backtest folds" gave the plan's
    folds as "backtest folds" (the spec asks for 2), and not what the calibration was made
    of: the backtest clone's calendar folds forecast series b, which ends 10 days early, at
    one of its 4 folds. It now counts the calibration folds' forecast windows and series,
    and the fewest and most of a series where they differ."""
    (tmp_path / "data").mkdir()
    n, short = 120, 10
    dates = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    ids = ["a"] * n + ["b"] * (n - short) + ["c"] * short
    y = np.random.default_rng(0).normal(5, 1, 2 * n)
    pl.DataFrame({"id": ids, "date": dates * 2, "y": y}).write_csv(tmp_path / "data" / "a.csv")
    series = {"id": "id", "time": "date", "targets": ["y"], "freq": "1d"}
    output, evaluation = {"plot_series": 0, "levels": [80]}, {"backtest_folds": 2}
    spec = write(tmp_path, mini_spec(series=series, output=output, evaluation=evaluation))
    code, err = run_cli(capsys, "run", str(spec), "--no-progress")
    assert code == 0, err
    assert "pooled across series from 3 calibration folds (6 forecast windows of 2 series; " in err
    clone = "from 4 calibration folds (5 forecast windows of 2 series, 1 to 4 per series; a refit"
    assert f"calibrate the clone's conformal intervals pooled across series {clone}" in err


LEVELS_MESSAGE = r"key 'output\.levels'.*distinct numbers in \(1, 100\), in increasing order"


@pytest.mark.parametrize(
    "value",
    [
        "[0]",
        "[0.8]",
        "[100]",
        "[-5]",
        "[95, 80]",
        "[80, 80]",
        '["80"]',
        "[true]",
        "80",
        "[]",
        "[nan]",
    ],
)
def test_output_levels_are_validated_naming_the_key(tmp_path, capsys, value):
    path = write(tmp_path, MINIMAL + f"\n[output]\nlevels = {value}\n")
    with pytest.raises(SpecError, match=LEVELS_MESSAGE):
        load_spec(path)
    code, err = run_cli(capsys, "run", str(path), "--dry-run")
    assert code == 2 and err.startswith("error: invalid spec: "), err
    assert "output.levels" in err and "Traceback" not in err


def test_output_levels_default_to_none_and_keep_the_spec_hash(tmp_path):
    spec, _ = load_spec(write(tmp_path, MINIMAL))
    assert spec.output.levels is None
    assert spec_hash(spec) == "3e0a47ba140e"  # the hash before levels existed: same outputs
    with_levels, _ = load_spec(write(tmp_path, MINIMAL + "\n[output]\nlevels = [80, 95.5]\n"))
    assert with_levels.output.levels == [80.0, 95.5]
    assert spec_hash(with_levels) != spec_hash(spec)  # other outputs: another model, study


def test_levels_of_a_quantile_model_must_be_among_its_quantiles(tmp_path):
    text = MINIMAL + '\n[model]\nloss = "quantile"\n\n[output]\nlevels = [80, 95]\n'
    with pytest.raises(
        SpecError, match=r"key 'output\.levels'.*need the quantiles \['0\.025', '0\.975'\]"
    ):
        load_spec(write(tmp_path, text))
    ok = text.replace(
        'loss = "quantile"', 'loss = "quantile"\nquantiles = [0.025, 0.1, 0.5, 0.9, 0.975]'
    )
    assert load_spec(write(tmp_path, ok))[0].output.levels == [80.0, 95.0]
    assert load_spec(write(tmp_path, text.replace("[80, 95]", "[80]")))[0].output.levels == [80.0]


def test_level_quantiles_and_calibration_plan():
    from forecaster.jobs.calibration_plan import calibration_plan
    from forecaster.jobs.spec import level_quantiles

    assert level_quantiles([80, 95]) == [0.025, 0.1, 0.9, 0.975]
    assert level_quantiles([50]) == [0.25, 0.75]

    def plan(levels, folds, n_series, shortest=0, window=0, horizon=1):
        spec = type("S", (), {})()
        spec.output = type("O", (), {"levels": levels})()
        spec.evaluation = type("E", (), {"backtest_folds": folds})()
        found = calibration_plan(spec, n_series, shortest, window, horizon)
        return found.folds, found.refit, found.per_series

    assert plan([80, 95], 3, 20) == (3, True, False)  # 60 errors per step: enough for 95 %
    assert plan([80, 95], 3, 5) == (4, 2, False)  # 19 errors per step needed for 95 %: 4 folds
    assert plan([80], 0, 1) == (4, 2, False)  # 80 %: 4 errors per step
    assert plan([95], 5, 1) == (19, 4, False)  # at most max(backtest_folds, 3) models
    assert plan([99], 3, 1)[0] == 99
    # per series when every series has room for 20 origins after 2 windows of training
    assert plan([80, 95], 3, 5, shortest=644, window=65, horizon=5) == (20, 7, True)
    assert plan([80, 95], 3, 5, shortest=229, window=65, horizon=5)[2] is False
    assert plan([80, 95], 3, 5, shortest=230, window=65, horizon=5)[2] is True
    assert plan([80], 3, 1, shortest=10_000, window=65, horizon=5)[2] is False  # one series


def _clip_rows(lengths: dict[str, int]) -> str:
    """A CSV of independent integer-step clips (``clip,frame,y``), each numbered from 0."""
    lines = ["clip,frame,y"]
    for k, (clip, n) in enumerate(lengths.items()):
        lines += [f"{clip},{i},{np.sin(i / 3 + k) * (k + 1) + 0.01 * i}" for i in range(n)]
    return "\n".join(lines) + "\n"


def test_a_run_with_levels_on_clips_too_short_for_the_calibration_folds_has_intervals(
    tmp_path, capsys
):
    """Integer-step clips too short for the calibration's folds (3 folds of lookback 4 and
    horizon 2 need 10 rows) got no residuals and no series scale: the run (levels = [80])
    failed with exit 3 ("normalize='series': ... have no calibration residuals ... calendar
    folds"). The plan now scales by each input window's spread (normalize="window") and says
    why; every clip's forecast has its interval."""
    lengths = {"a": 30, "b": 34, "c": 28, "d": 32, "short1": 12, "short2": 9}
    spec = csv_project(
        tmp_path,
        _clip_rows(lengths),
        series='stale = "forecast"\nfreq = "1i"',
        model="validation_size = 0",
    )
    text = spec.read_text().replace('id = "id"', 'id = "clip"').replace('"date"', '"frame"')
    text = text.replace("backtest_folds = 0", "backtest_folds = 2")
    spec.write_text(text + "\n[output]\nlevels = [80]\nplot_series = 0\n")
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert "normalize='window'" in err, err
    assert "1 of the 6 series the run forecasts is shorter than the 10 rows" in err, err
    (path,) = (tmp_path / "outputs").rglob("forecasts.parquet")
    forecasts = pl.read_parquet(path)
    assert sorted(forecasts["clip"].unique()) == sorted(lengths)
    bounds = forecasts.select("y_lo_80", "y_hi_80")
    assert bounds.null_count().sum_horizontal().item() == 0
    assert (forecasts["y_hi_80"] > forecasts["y_lo_80"]).all()


def test_the_calibration_plan_scales_by_the_window_when_a_forecast_series_gets_no_residual():
    """scaled_plan: normalize="series" while every series the run forecasts (at least
    lookback rows, not excluded) is long enough for the plan's folds (the backtest's rule,
    fold_rows) and seen in fit; else "window", saying how many and why."""
    from forecaster.jobs.calibration_plan import Plan, scaled_plan

    spec = type("S", (), {})()
    spec.series = type("Se", (), {"id": "clip"})()
    model = type("M", (), {"lookback_": 4, "horizon": 2})()  # no train_end_: all seen
    plan = Plan(3, True, False)  # 3 folds: 4 + 2 + 2 * 2 = 10 rows

    def frame(*lengths):
        return pl.DataFrame({"clip": [f"c{k}" for k, n in enumerate(lengths) for _ in range(n)]})

    assert scaled_plan(plan, spec, model, frame(10, 30)).normalize == "series"
    assert scaled_plan(plan, spec, model, frame(3, 30)).normalize == "series"  # not forecast
    found = scaled_plan(plan, spec, model, frame(9, 30, 40))
    assert found.normalize == "window" and found.folds == 3
    assert "1 of the 3 series the run forecasts is shorter than the 10 rows" in found.short
    assert scaled_plan(plan, spec, model, frame(9, 30), excluded=("c0",)).normalize == "series"


def _filled_project(tmp_path: Path, targets: str, filled: str, levels: str = "[80]") -> Path:
    """Three daily series of 80 rows (``targets``: ``y``, or ``y`` and ``z``) with
    ``missing = "ffill"``, whose column ``filled`` of series c is missing from row 30 to 78
    (observed at row 79 when it is ``y``; ``z`` is missing to the end); two backtest folds."""
    lines = [f"id,date,{targets}"]
    for k, key in enumerate("abc"):
        for i in range(80):
            y = f"{np.sin(i / 3 + k) * (k + 1) + 5 + 0.01 * i:.4f}"
            z = f"{2 * float(y) + 1:.4f}"
            gap = key == "c" and i >= 30 and (i < 79 or filled == "z")
            values = {"y": "" if gap and filled == "y" else y, "z": "" if gap else z}
            row = [values[t] for t in targets.split(",")]
            lines.append(",".join([key, str(dt.date(2024, 1, 1) + dt.timedelta(days=i)), *row]))
    spec = csv_project(
        tmp_path, "\n".join(lines) + "\n", series='missing = "ffill"', model="validation_size = 0"
    )
    text = spec.read_text().replace('targets = ["y"]', f"targets = {targets.split(',')!r}")
    text = text.replace("'", '"').replace("backtest_folds = 0", "backtest_folds = 2")
    spec.write_text(text + f"\n[output]\nlevels = {levels}\nplot_series = 0\n")
    return spec


@pytest.mark.parametrize(
    ("targets", "filled", "where"),
    [("y", "y", "backtest: calibrate the clone's"), ("y,z", "z", "calibrate conformal")],
)
def test_a_series_whose_calibration_errors_all_fall_on_filled_values_gets_intervals(
    tmp_path, capsys, targets, filled, where
):
    """missing = "ffill" and series c's values filled over every calibration fold's targets
    (its ``y`` from row 30 to 78, observed at row 79: the backtest's calibration on the data
    before its first fold; or its second target ``z`` from row 30 on: the run's calibration):
    every error of c fell on a filled value and was left out, so c got no scale and the run
    exited 3 ("normalize='series': ... 1 series ('c') have no calibration residuals"). The
    calibration now checks afterwards that every series it forecasts got an observed residual
    of every target, and calibrates again by each input window's spread, naming c."""
    spec = _filled_project(tmp_path, targets, filled)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    line = next(x for x in err.splitlines() if x.startswith(where))
    assert "normalize='window'" in line and "1 series ('c') gets no observed error" in line, err
    assert "filled by missing='ffill'" in line, line
    (path,) = (tmp_path / "outputs").rglob("forecasts.parquet")
    forecasts = pl.read_parquet(path)
    assert sorted(forecasts["id"].unique()) == ["a", "b", "c"]
    for target in targets.split(","):
        bounds = forecasts.select(f"{target}_lo_80", f"{target}_hi_80")
        assert bounds.null_count().sum_horizontal().item() == 0
        assert (forecasts[f"{target}_hi_80"] > forecasts[f"{target}_lo_80"]).all()
    assert _summary(tmp_path)["calibration"]["normalize"] == (
        "window" if filled == "z" else "series"
    )


def test_backtest_level_logs_the_clones_calibration_as_a_step(tmp_path, capsys):
    """``forecaster backtest --level``: the line of its clone's calibration is a step (an
    INFO record of the ``forecaster`` logger, on standard error), as ``run`` and ``fit`` log
    their calibration, not one of the command's results on standard output (it was printed
    among them, and with ``--json-logs`` was a result record without its logger)."""
    import json

    spec = _filled_project(tmp_path, "y", "y")
    out = tmp_path / "b.parquet"
    args = ["backtest", str(spec), "--level", "80", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "backtest: calibrate the clone's" not in captured.out, captured.out
    assert "backtest: calibrate the clone's" in captured.err, captured.err
    assert main([*args, "--json-logs"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (line,) = [r for r in records if r["msg"].startswith("backtest: calibrate the clone's")]
    assert line["level"] == "info" and line["logger"].startswith("forecaster"), line


def test_unscaled_series_names_the_forecast_series_without_an_observed_residual():
    """unscaled_series: of the series the run forecasts (at least lookback_ rows, not
    excluded), those whose residuals of some target are all NaN (filled), and those with none
    (absent from the calibration, or unseen in fit: row -1)."""
    from forecaster.jobs.calibration_plan import unscaled_series

    nan = np.nan
    residuals = np.ones((5, 2, 2, 1))  # (calibration row, step, target, quantile)
    residuals[1, :, 1] = nan  # b: its second target filled at every step of its one row
    residuals[2, 0, 0] = nan  # c: one step filled, the other observed: a scale
    model = type("M", (), {})()
    model.conformal_ = {"residuals": residuals, "series": np.array([0, 1, 2, 0, -1])}
    model.keys_ = pl.DataFrame({"id": ["a", "b", "c", "d"]})
    model.lookback_ = 2
    frame = pl.DataFrame({"id": ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e", "f"]})
    assert unscaled_series(model, frame, "id") == (["b"], ["d", "e"])  # f: too short
    assert unscaled_series(model, frame, "id", excluded=("b", "e")) == ([], ["d"])
    model.conformal_ = {"residuals": residuals[1:2], "series": np.array([0])}  # one series
    assert unscaled_series(model, frame, None) == (["the series"], [])
    model.conformal_ = {"residuals": residuals[:1], "series": np.array([0])}
    assert unscaled_series(model, frame, None) == ([], [])


def test_the_calibration_record_says_what_the_intervals_use_not_what_was_asked():
    """summary.json and the MLflow param calibration.per_series said true where calibrate
    warned that no series had enough residuals of its own (the filled steps' residuals are
    left out): every series used the pooled ones. The record is read from the calibrated
    model now: how many series use their own residuals and how many the pooled ones."""
    from types import SimpleNamespace

    from forecaster.jobs.calibration_plan import Plan, with_own_counts

    spec = SimpleNamespace(output=SimpleNamespace(levels=[80.0]))
    residuals = np.ones((40, 2, 1))  # 20 folds of 2 series, horizon 2, one target
    residuals[[0, 1, 20], 1, 0] = np.nan  # filled steps: series 0 keeps 18, 1 keeps 19
    conformal = {"residuals": residuals, "series": np.repeat([0, 1], 20)}
    model = SimpleNamespace(keys_=pl.Series(["a", "b"]), conformal_=conformal)
    plan = with_own_counts(Plan(20, True, per_series=True), spec, model)
    assert (plan.own_series, plan.pooled_series) == (0, 2)
    assert plan.record()["per_series"] is False
    assert plan.where().startswith("pooled across series (per series asked for, but no series")
    residuals[[0, 1], 1, 0] = 1.0  # series 0 whole again: its own residuals
    plan = with_own_counts(Plan(20, True, per_series=True), spec, model)
    assert (plan.own_series, plan.pooled_series, plan.record()["per_series"]) == (1, 1, True)


def test_a_plan_calibrated_again_counts_its_calibrations_and_says_why_each_ran():
    """A calibration run again (more folds, or normalize="window") costs about as much as
    the first and was named nowhere: the plan counts the calibrations, keeps the folds of
    the first and the reason of each later one, which the record and the log line give."""
    from forecaster.jobs.calibration_plan import Plan

    first = Plan(20, True, per_series=True)
    assert (first.record()["calibrations"], first.record()["first_folds"]) == (1, 20)
    assert first.record()["recalibration_reason"] == "" and first.recalibrated() == ""
    window = Plan(20, True, per_series=True, normalize="window", short="b has no scale")
    second = first.again(window, "normalize='window', as b has no scale")
    third = second.again(Plan(23, 8, per_series=True, normalize="window"), "23 folds, as ...")
    record = third.record()
    assert (record["calibrations"], record["first_folds"], record["folds"]) == (3, 20, 23)
    assert record["recalibration_reason"] == (
        "normalize='window', as b has no scale; then 23 folds, as ..."
    )
    assert third.recalibrated() == (
        "; 3 calibrations ran, each refitting its clones (the first of 20 folds): "
        "normalize='window', as b has no scale; then 23 folds, as ..."
    )


def _holed_calibration(
    tmp_path: Path, levels: str, holes: dict[str, list[int]], days: int = 120
) -> Any:
    """A spec (daily, ``missing="ffill"``, lookback 4, horizon 2, ``levels``), ``days`` days
    of two series whose days counted back from the last (0: the last) in ``holes`` are absent
    (filled), and a model fitted on them."""
    rng = np.random.default_rng(0)
    lines = ["id,date,y"]
    start = dt.date(2024, 1, 1)
    for key in ("a", "b"):
        for i in range(days):
            if days - 1 - i not in holes.get(key, []):
                lines.append(f"{key},{start + dt.timedelta(days=i)},{rng.normal(10, 1):.3f}")
    spec_file = csv_project(
        tmp_path,
        "\n".join(lines) + "\n",
        series='freq = "1d"\nmissing = "ffill"',
    )
    spec_file.write_text(spec_file.read_text() + f"\n[output]\nlevels = {levels}\n")
    spec = load_spec(spec_file)[0]
    frame = pl.read_csv(tmp_path / "data" / "prices.csv", try_parse_dates=True)
    model = forecaster.RNNForecaster(
        target="y", id_col="id", time_col="date", lookback=4, horizon=2, hidden_size=4,
        max_epochs=1, freq="1d", missing="ffill", random_state=0, progress=False,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(frame)
    return spec, frame, model


def test_the_folds_are_counted_from_the_filled_steps_so_one_calibration_suffices(tmp_path):
    """With filled steps (missing="ffill"), the plan's 20 folds gave every series fewer
    than the 20 residuals of its own that per-series intervals need, and the run calibrated
    again (refitting its clones) with folds raised in proportion, which could still fall
    short. The filled steps are known before any fit: the folds are counted from them, the
    fewest that give every series its own, and one calibration suffices."""
    from forecaster.estimators.own_residuals import own_residuals
    from forecaster.jobs.calibration_plan import Plan, counted_plan
    from forecaster.jobs.intervals import calibrate_for_levels

    # the first step of the 4th latest fold (7 days back) filled in both series; b's hole 45
    # days back is in the 23rd latest fold, beyond the 21 counted
    spec, frame, model = _holed_calibration(tmp_path, "[80]", {"a": [7], "b": [7, 45]})
    plan = counted_plan(spec, model, frame, Plan(20, True, per_series=True))
    assert plan.folds == 21, plan
    assert plan.folds_reason == (
        "missing='ffill' filled steps whose residuals are left out, so 20 folds would give "
        "0 of the 2 series it forecasts the 20 residuals per step of their own that "
        "per-series intervals need, 21 give 2 (counted from the filled steps before "
        "calibrating)"
    )
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrated = calibrate_for_levels(spec, model, frame, lines.append)
    assert calibrated is not None
    record = calibrated.record()
    assert (record["folds"], record["calibrations"], record["own_series"]) == (21, 1, 2), record
    assert record["folds_reason"] == plan.folds_reason and record["recalibration_reason"] == ""
    assert own_residuals(model.conformal_, 2).tolist() == [20, 20]  # the count was exact
    (line,) = lines
    assert line.endswith(f", as {plan.folds_reason}"), line
    # a's second hole (9 days back) is in the 5th latest fold too: 22 folds
    spec, frame, model = _holed_calibration(tmp_path / "far", "[80]", {"a": [7, 9], "b": [7]})
    plan = counted_plan(spec, model, frame, Plan(20, True, per_series=True))
    assert plan.folds == 22, plan  # a lost 2 residuals at step 1


def test_counted_folds_that_leave_a_fold_no_training_window_fall_back_to_the_plan(tmp_path):
    """Pooled, on short series: the folds counted from the filled steps (12 where the plan's
    10 keep 16 of the 19 residuals the 95 % level needs) left the first fold's model too few
    rows to train on, and the run, which calibrated with the plan's folds before (the more
    folds it then tried did not fit either, so the first calibration stayed), failed: it
    calibrates with the plan's folds, and the record says so (no ``folds_reason``)."""
    from forecaster.jobs.calibration_plan import Plan, counted_plan
    from forecaster.jobs.intervals import calibrate_for_levels

    holes = {"a": [1, 3], "b": [1, 3]}
    spec, frame, model = _holed_calibration(tmp_path, "[95]", holes, days=30)
    assert counted_plan(spec, model, frame, Plan(10, True, per_series=False)).folds == 12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrated = calibrate_for_levels(spec, model, frame, lambda line: None)
    assert calibrated is not None
    record = calibrated.record()
    assert (record["folds"], record["per_series"], record["folds_reason"]) == (10, False, ""), (
        record
    )


def test_a_calibration_run_again_keeps_why_the_first_had_more_folds():
    """The safety net's second calibration replaced the plan by a new one of more folds,
    which lost why the first had more folds than the plan's (counted from the filled
    steps): the record keeps it, beside why the second ran."""
    from forecaster.jobs.calibration_plan import Plan

    first = Plan(22, 8, per_series=True, folds_reason="counted")
    again = first.again(Plan(30, 10, per_series=True), "30 folds, as the count missed")
    record = again.record()
    assert (record["folds"], record["first_folds"], record["calibrations"]) == (30, 22, 2)
    assert record["folds_reason"] == "counted", record


def test_the_counted_folds_give_the_pooled_residuals_a_level_needs(tmp_path):
    """Pooled: 95 % needs 19 residuals per step; 10 folds of 2 series with a filled second
    step in each keep 18, so 11 are counted (not a second calibration). Without filled steps
    the plan is as it was, and a series that the run does not forecast is not counted."""

    from forecaster.jobs.calibration_plan import Plan, counted_plan

    spec, frame, model = _holed_calibration(tmp_path, "[95]", {"a": [1], "b": [3]})
    plan = counted_plan(spec, model, frame, Plan(10, True, per_series=False))
    assert (plan.folds, plan.refit) == (11, 4), plan
    assert "10 folds would keep 18 pooled residuals at a step, fewer than the 19 the 95 % " in (
        plan.folds_reason
    )
    whole = Plan(20, True, per_series=True)
    assert counted_plan(spec, model, frame, Plan(12, True, per_series=False)).folds == 12
    spec, frame, model = _holed_calibration(tmp_path / "whole", "[80]", {})
    assert counted_plan(spec, model, frame, whole) == whole
    spec, frame, model = _holed_calibration(tmp_path / "b", "[80]", {"b": [7]})
    assert counted_plan(spec, model, frame, whole).folds == 21
    assert counted_plan(spec, model, frame, whole, excluded=["b"]) == whole


@pytest.mark.slow
def test_a_run_asks_for_more_folds_where_filled_steps_leave_series_short_of_their_own(tmp_path):
    """1bd with missing='ffill': the residuals of filled holidays are left out, and the plan
    asked for exactly the 20 folds per-series intervals need, so every series kept 18 and all
    used the pooled residuals (while the summary said per_series true). The run asks for
    more folds when the data have room, counted from the filled steps before it calibrates,
    and the series get their own."""
    spec = tmp_path / "pipelines" / "cal.toml"
    spec.parent.mkdir()
    spec.write_text(
        '[pipeline]\nname = "cal"\n[source]\ndataset = "stocks"\n[series]\nid = "ticker"\n'
        'time = "date"\ntargets = ["close"]\nfreq = "1bd"\nmissing = "ffill"\n[model]\n'
        "hidden_size = 4\nmax_epochs = 1\nwindows_per_epoch = 64\nhorizon = 5\nlookback = 30\n"
        "random_state = 0\n[evaluation]\nbacktest_folds = 0\n[tracking]\nenabled = false\n"
        "[output]\nlevels = [80]\nplot_series = 0\n"
    )
    lines: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = forecaster.jobs.run_pipeline(
            spec, as_of="2017-06-30", progress=False, log=lines.append
        )
    recorded = result.calibration
    assert recorded is not None and recorded["folds"] > 20, recorded
    assert recorded["own_series"] > 0 and recorded["per_series"] is True, recorded
    (line,) = [x for x in lines if x.startswith("calibrate conformal intervals per series")]
    # counted from the filled steps before calibrating: one calibration (no second one, at
    # about the cost of the first), and the record and the log line say why more folds
    assert (recorded["calibrations"], recorded["first_folds"]) == (1, recorded["folds"])
    why = recorded["folds_reason"]
    assert why.startswith("missing='ffill' filled steps whose residuals are left out, so 20 "), why
    assert "folds would give 0 of the 3 series it forecasts the 20 residuals per step" in why
    assert recorded["recalibration_reason"] == "" and line.endswith(f", as {why}"), line


@pytest.mark.slow
def test_a_tracked_run_records_how_it_calibrated(tmp_path, capsys, monkeypatch):
    """The plan of a run's calibration (normalize, folds, refit, per_series, origins and why
    it scales by the window) was only in a log line: it is now in summary.json
    (``calibration``) and the run's MLflow params (``calibration.<key>``)."""
    pytest.importorskip("mlflow")
    spec = _tracked_project(tmp_path, monkeypatch)
    spec.write_text(spec.read_text() + "\n[output]\nlevels = [80]\nplot_series = 0\n")
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    recorded = _summary(tmp_path)["calibration"]
    assert recorded == {
        "normalize": "series",
        "folds": 3,
        "refit": True,
        "per_series": False,
        "own_series": 0,
        "pooled_series": 2,
        "origins": "auto",
        "window_reason": "",
        "calibrations": 1,
        "first_folds": 3,
        "recalibration_reason": "",
        "folds_reason": "",
    }
    (run,) = _runs(tmp_path)
    params = {k: v for k, v in run.data.params.items() if k.startswith("calibration.")}
    assert params == {f"calibration.{k}": str(v) for k, v in recorded.items()}
    # the backtest's clone's calibration (summary.json's backtest_calibration) was not logged
    tested = _summary(tmp_path)["backtest_calibration"]
    assert tested is not None, "the backtest scored no intervals"
    logged = {k: v for k, v in run.data.params.items() if k.startswith("backtest_calibration.")}
    assert logged == {f"backtest_calibration.{k}": str(v) for k, v in tested.items()}


@pytest.mark.slow
def test_the_summary_records_how_the_backtests_intervals_were_calibrated(tmp_path, capsys):
    """The backtest's clone (fitted on less data) is calibrated by the run's rules, and may
    come out otherwise (the stocks job: the run's per series, the clone's pooled), so its
    interval scores scored intervals of a kind the summary did not say: it records the
    clone's calibration (``backtest_calibration``) beside the run's, as the log lines do.
    ``forecaster backtest``'s summary records it too."""
    (tmp_path / "data").mkdir()
    n, short = 120, 10
    dates = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    ids = ["a"] * n + ["b"] * (n - short) + ["c"] * short
    y = np.random.default_rng(0).normal(5, 1, 2 * n)
    pl.DataFrame({"id": ids, "date": dates * 2, "y": y}).write_csv(tmp_path / "data" / "a.csv")
    series = {"id": "id", "time": "date", "targets": ["y"], "freq": "1d"}
    output, evaluation = {"plot_series": 0, "levels": [80]}, {"backtest_folds": 2}
    spec = write(tmp_path, mini_spec(series=series, output=output, evaluation=evaluation))
    code, err = run_cli(capsys, "run", str(spec), "--no-progress")
    assert code == 0, err
    summary = _summary(tmp_path)
    assert (summary["calibration"]["folds"], summary["calibration"]["per_series"]) == (3, False)
    tested = summary["backtest_calibration"]
    assert tested is not None, "the backtest's calibration is not recorded"
    assert set(tested) == set(summary["calibration"]), tested
    assert (tested["folds"], tested["per_series"], tested["pooled_series"]) == (4, False, 2)
    out = tmp_path / "b.parquet"
    code, err = run_cli(capsys, "backtest", str(spec), "--out", str(out), "--no-progress")
    assert code == 0, err
    recorded = json.loads((tmp_path / "b.summary.json").read_text())["backtest_calibration"]
    assert recorded == tested


@pytest.mark.slow
def test_a_refused_calibration_param_does_not_lose_the_runs_outputs(tmp_path, capsys, monkeypatch):
    """MLflow refusing the calibration.* params (e.g. a run of `mlflow run` that already holds
    other values) skipped the run's metrics, files and model with them: they are logged
    first, and the refusal is a warning."""
    mlflow = pytest.importorskip("mlflow")
    from forecaster.tracking import records

    def refusing(original):
        def log(*args):
            if any(k.startswith("calibration.") for k in args[-1]):
                raise mlflow.exceptions.MlflowException("param value changed")
            return original(*args)

        return log

    monkeypatch.setattr(mlflow, "log_params", refusing(mlflow.log_params))
    monkeypatch.setattr(records, "log_params", refusing(records.log_params))
    spec = _tracked_project(tmp_path, monkeypatch)
    spec.write_text(spec.read_text() + "\n[output]\nlevels = [80]\nplot_series = 0\n")
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert "Could not log the calibration plan" in err, err
    (run,) = _runs(tmp_path)
    assert any(k.startswith("pipeline_") for k in run.data.metrics), run.data.metrics
    assert not any(k.startswith("calibration.") for k in run.data.params)


def test_before_folds_keeps_each_series_before_the_first_target():
    """Integer steps (``origins="auto"``: each series' own folds): all but each series' own
    last ``folds * horizon`` rows."""
    from forecaster import RNNForecaster
    from forecaster.jobs.intervals import before_folds

    frame = pl.DataFrame(
        {
            "id": ["a"] * 6 + ["b"] * 4,
            "t": [*range(6), *range(4)],
            "y": [float(i) for i in range(10)],
        }
    )
    model = RNNForecaster(id_col="id", time_col="t", target="y", lookback=1, horizon=1)
    kept = before_folds(frame.reverse(), model, 2)
    assert kept.rows() == [
        ("a", 0, 0.0),
        ("a", 1, 1.0),
        ("a", 2, 2.0),
        ("a", 3, 3.0),
        ("b", 0, 6.0),
        ("b", 1, 7.0),
    ]
    model.set_params(id_col=None)
    assert before_folds(frame.filter(pl.col("id") == "a"), model, 3)["t"].to_list() == [0, 1, 2]


def test_before_folds_of_dates_cut_at_the_first_calendar_cutoff_for_every_series():
    """Dates (calendar folds): the backtest's first target is the day after its first cutoff
    ``T_0`` for every series, so the data before it are the rows up to ``T_0``; "b", which
    ended before ``T_0``, lost its own last ``folds * horizon`` rows, and a saved model
    fitted on all the data up to ``T_0`` was refused as fitted past them."""
    from forecaster import RNNForecaster
    from forecaster.jobs.intervals import before_folds
    from forecaster.jobs.reuse import check_fitted_before

    days = pl.date_range(dt.date(2020, 1, 1), dt.date(2020, 3, 31), "1d", eager=True)
    y = np.sin(np.arange(len(days)) / 5.0) + 2.0
    frame = pl.concat(
        [
            pl.DataFrame({"id": "a", "t": days, "y": y}),
            pl.DataFrame({"id": "b", "t": days, "y": y}).filter(
                pl.col("t") <= dt.date(2020, 3, 10)
            ),
        ]
    )
    params = {"id_col": "id", "time_col": "t", "target": "y", "freq": "1d", "horizon": 7}
    model = RNNForecaster(
        **params, lookback=7, hidden_size=4, max_epochs=1, windows_per_epoch=16,
        baseline="none", progress=False, random_state=0,
    )  # fmt: skip
    history = before_folds(frame.sample(fraction=1.0, shuffle=True, seed=0), model, 2)
    ends = history.group_by("id").agg(pl.col("t").max()).sort("id")["t"].to_list()
    assert ends == [dt.date(2020, 3, 17), dt.date(2020, 3, 10)]  # T_0 = 03-31 - 14 days
    assert history.height == frame.filter(pl.col("t") <= dt.date(2020, 3, 17)).height
    model.fit(history)  # what `forecaster backtest --model` is given: fitted up to T_0
    check_fitted_before(model, before_folds(frame, model, 2), "m", "the first fold")
    with pytest.raises(ArgumentError, match="fitted on data of 1 series"):
        check_fitted_before(model, before_folds(frame, model, 3), "m", "the first fold")


def test_a_saved_model_fitted_past_the_as_of_on_a_series_the_history_lacks_is_refused():
    """Dates share one calendar: a model fitted on "a" up to 03-31 has seen that period of
    every series, so reusing it on a history of "b" alone up to 03-10 (a backfill) is
    refused, though "b" was fitted only up to 03-10; integer steps (independent clips)
    compare each series with its own end, so the same shapes pass."""
    from forecaster import RNNForecaster
    from forecaster.jobs.reuse import check_fitted_before

    days = pl.date_range(dt.date(2020, 1, 1), dt.date(2020, 3, 31), "1d", eager=True)
    y = np.sin(np.arange(len(days)) / 5.0) + 2.0
    a = pl.DataFrame({"id": "a", "t": days, "y": y})
    frame = pl.concat(
        [a, a.with_columns(id=pl.lit("b")).filter(pl.col("t") <= dt.date(2020, 3, 10))]
    )
    params = {"id_col": "id", "target": "y", "horizon": 7, "lookback": 7, "hidden_size": 4}
    quick = {"max_epochs": 1, "windows_per_epoch": 16, "progress": False, "random_state": 0}
    model = RNNForecaster(**params, **quick, time_col="t", freq="1d", baseline="none")
    model.fit(frame)
    only_b = frame.filter(pl.col("id") == "b")
    with pytest.raises(ArgumentError, match=r"of 1 series \(e.g. 'a'\) up to 2020-03-31"):
        check_fitted_before(model, only_b, "m", "the as-of 2020-03-10")
    check_fitted_before(model, frame, "m", "the as-of 2020-03-31")  # not past the data
    steps = frame.with_columns(t=pl.col("t").rank("ordinal").over("id").cast(pl.Int64))
    clips = RNNForecaster(**params, **quick, time_col="t", baseline="none").fit(steps)
    check_fitted_before(clips, steps.filter(pl.col("id") == "b"), "m", "the first fold")


class _RecordingModel:
    """A saved model stand-in for ``predict``: records the keyword arguments of each call."""

    calls: ClassVar[list[dict]] = []
    conformal_: ClassVar[dict] = {"residuals": None}  # calibrated
    schema_: ClassVar[dict] = {"id": "String", "date": "Date", "y": "Float64"}  # of rows()

    def get_params(self):
        return {}  # no data parameters: check_model_matches_spec has none to compare

    def predict(self, frame, **kwargs):
        self.calls.append(kwargs)
        last = frame.group_by("id").agg(pl.col("date").max())
        out = last.with_columns(pl.lit(1.0).alias("y"))
        for level in kwargs.get("level") or []:
            out = out.with_columns(
                pl.lit(0.0).alias(f"y_lo_{level:g}"), pl.lit(2.0).alias(f"y_hi_{level:g}")
            )
        return out


def test_predict_level_reaches_the_model_and_the_file(tmp_path, capsys, monkeypatch):
    import forecaster.jobs.commands as commands

    monkeypatch.setattr(commands, "load_model", lambda path: _RecordingModel())
    _RecordingModel.calls = []
    spec = csv_project(tmp_path, rows())
    out = tmp_path / "f.parquet"
    code, err = run_cli(capsys, "predict", str(spec), "--model", "m", "--out", str(out))
    assert code == 0, err
    assert _RecordingModel.calls == [{}]  # no level asked: predict(frame), as before
    args = ("--level", "95", "--level", "80", "--out", str(out))
    code, err = run_cli(capsys, "predict", str(spec), "--model", "m", *args)
    assert code == 0, err
    assert _RecordingModel.calls[-1] == {"level": [80.0, 95.0]}
    assert {"y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"} <= set(pl.read_parquet(out).columns)
    spec.write_text(spec.read_text() + "\n[output]\nlevels = [90]\n")  # the spec's default
    assert run_cli(capsys, "predict", str(spec), "--model", "m", "--out", str(out))[0] == 0
    assert _RecordingModel.calls[-1] == {"level": [90.0]}


def test_a_saved_model_fitted_after_the_as_of_or_the_first_fold_exits_2(tmp_path, capsys):
    # was: predict --as-of 2024-01-10 with a model fitted to 2024-01-20 wrote forecasts "from
    # 2024-01-10"; backtest --model scored its folds in-sample; neither said a word
    spec = csv_project(tmp_path, rows(20))
    late, early = tmp_path / "late", tmp_path / "early"
    assert run_cli(capsys, "fit", str(spec), "--out", str(late))[0] == 0
    out = tmp_path / "f.parquet"
    code, err = run_cli(
        capsys,
        "predict",
        str(spec),
        "--model",
        str(late),
        "--as-of",
        "2024-01-10",
        "--out",
        str(out),
    )
    assert code == 2 and not out.exists(), err
    assert f"argument --model ({late})" in err and "up to 2024-01-20, after the as-of " in err
    assert "forecaster fit SPEC --as-of 2024-01-10" in err
    code, err = run_cli(
        capsys, "backtest", str(spec), "--model", str(late), "--folds", "2", "--out", str(out)
    )
    assert code == 2 and not out.exists(), err
    assert "after the origin of the first of 2 folds (data up to 2024-01-16)" in err
    # a model fitted up to the first fold's origin, or before the as-of, is used as it is
    args = ("--as-of", "2024-01-16", "--out", str(early))
    assert run_cli(capsys, "fit", str(spec), *args)[0] == 0
    code, err = run_cli(
        capsys, "backtest", str(spec), "--model", str(early), "--folds", "2", "--out", str(out)
    )
    assert code == 0 and out.exists(), err
    forecasts = tmp_path / "p.parquet"  # not over the backtest's file: that is refused
    code, err = run_cli(
        capsys, "predict", str(spec), "--model", str(early), "--out", str(forecasts)
    )
    assert code == 0, err


def test_the_model_refusal_suggests_an_as_of_the_cli_reads_when_pasted(tmp_path, capsys):
    """The --model refusal's hint printed ``--as-of 2024-03-31 05:00:00+02:00`` (str of a
    datetime): the shell splits it, so the pasted command failed. It prints the CLI's ISO
    form, and that command fits a model the refused predict then takes."""
    hours = pl.datetime_range(
        dt.datetime(2024, 3, 30), dt.datetime(2024, 4, 1), "1h", time_zone="Europe/Berlin",
        eager=True,
    )  # fmt: skip
    _, root = _zoned_project(tmp_path, _ragged(hours, 0), {"freq": "1h"})
    spec, late = str(root / "pipelines" / "spec.toml"), tmp_path / "late"
    assert run_cli(capsys, "fit", spec, "--out", str(late))[0] == 0
    predict = ("predict", spec, "--as-of", "2024-03-31T05:00", "--out", str(tmp_path / "f.parquet"))
    code, err = run_cli(capsys, *predict, "--model", str(late))
    assert code == 2, err
    assert "(data up to 2024-03-31T05:00:00+02:00)" in err, err
    hint = re.search(r"\(forecaster fit SPEC (--as-of \S+)\) and pass it", err)
    assert hint is not None and hint.group(1) == "--as-of 2024-03-31T05:00:00+02:00", err
    early = tmp_path / "early"
    code, err = run_cli(capsys, "fit", spec, *hint.group(1).split(" "), "--out", str(early))
    assert code == 0, err
    assert run_cli(capsys, *predict, "--model", str(early))[0] == 0


def test_a_saved_model_of_another_horizon_or_frequency_exits_2(tmp_path, capsys):
    # was: predict and backtest --model wrote the model's own targets and horizon as the
    # spec's (y forecasts in the file of a spec of x; 2 steps for a spec of 3)
    spec = csv_project(tmp_path, rows(20))
    model = tmp_path / "m"
    assert run_cli(capsys, "fit", str(spec), "--as-of", "2024-01-16", "--out", str(model))[0] == 0
    out = tmp_path / "f.parquet"
    text = spec.read_text()
    for old, new, named in [
        ("horizon = 2", "horizon = 3", "horizon=2, but the spec has model.horizon = 3"),
        ('id = "id"', 'id = "id"\nfreq = "2d"', "freq='auto', but the spec has series.freq = '2d'"),
    ]:
        spec.write_text(text.replace(old, new))
        for command in ("predict", "backtest"):
            code, err = run_cli(
                capsys, command, str(spec), "--model", str(model), "--out", str(out)
            )
            assert code == 2 and not out.exists(), err
            assert f"argument --model: the model in {model} was fitted with {named}" in err
    spec.write_text(text.replace("hidden_size = 4", "hidden_size = 8"))  # training: may differ
    code, err = run_cli(capsys, "predict", str(spec), "--model", str(model), "--out", str(out))
    assert code == 0, err


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        (["0"], r"argument --level: expected a level in percent.*got '0'"),
        (["0.8"], r"argument --level: expected a level in percent, a number in \(1, 100\)"),
        (["100"], r"argument --level: expected a level in percent"),
        (["eighty"], r"argument --level: expected a level in percent"),
        (["nan"], r"argument --level: expected a level in percent"),
        (["80", "80"], r"argument --level: each level once"),
    ],
)
def test_predict_bad_level_exits_2(tmp_path, capsys, levels, message):
    spec = csv_project(tmp_path, rows())
    out = tmp_path / "f.parquet"
    flags = [item for level in levels for item in ("--level", level)]
    code, err = run_cli(capsys, "predict", str(spec), "--model", "m", "--out", str(out), *flags)
    assert code == 2, err
    assert re.search(message, err), err
    assert not out.exists()


@pytest.mark.slow
def test_a_tracked_spec_with_levels_logs_the_interval_scores(tmp_path, capsys, monkeypatch):
    pytest.importorskip("mlflow")
    spec = _tracked_project(tmp_path, monkeypatch)
    spec.write_text(spec.read_text() + "\n[output]\nlevels = [80]\nplot_series = 0\n")
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    (run,) = _runs(tmp_path)
    for name in ("coverage_80", "width_80", "winkler_80", "msis_80"):
        assert f"pipeline_backtest_{name}" in run.data.metrics, sorted(run.data.metrics)
    forecasts = pl.read_parquet(
        tmp_path / "outputs" / "hostile" / "2024-01-16" / "forecasts.parquet"
    )
    assert {"y_lo_80", "y_hi_80"} <= set(forecasts.columns)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "fit"])
def test_a_tracked_spec_with_levels_logs_and_registers_the_calibrated_model(
    tmp_path, capsys, monkeypatch, command
):
    """The model a run (or fit) logs, and registers, is the calibrated one: its pyfunc takes
    params={"level": [80]} (it was logged before the calibration, which refused them)."""
    mlflow = pytest.importorskip("mlflow")
    spec = _tracked_project(tmp_path, monkeypatch)
    named = 'experiment = "tracked"'
    text = spec.read_text().replace(named, named + '\nregister_as = "hostile-levels"')
    spec.write_text(text + "\n[output]\nlevels = [80]\nplot_series = 0\n")
    out = ["--out", str(tmp_path / "models" / "m")] if command == "fit" else []
    code, err = run_cli(capsys, command, str(spec), *out)
    assert code == 0, err
    (run,) = _runs(tmp_path)
    (logged,) = run.outputs.model_outputs
    uris = [f"models:/{logged.model_id}"]
    if command == "run":  # [tracking] register_as: run registers the model it logged
        uris.append("models:/hostile-levels/1")
    frame = pl.read_csv(tmp_path / "data" / "prices.csv", try_parse_dates=True)
    for uri in uris:
        forecast = mlflow.pyfunc.load_model(uri).predict(frame, params={"level": [80]})
        assert {"y_lo_80", "y_hi_80"} <= set(forecast.columns), uri
        assert len(forecast) == 4  # two series, horizon 2


def _registered_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """:func:`_tracked_project` whose run registers its model as ``hostile-registered``."""
    spec = _tracked_project(tmp_path, monkeypatch)
    named = 'experiment = "tracked"'
    spec.write_text(spec.read_text().replace(named, named + '\nregister_as = "hostile-registered"'))
    return spec


def _versions(tmp_path: Path) -> list[tuple[str, str]]:
    """``(version, status of its run)`` of each version of ``hostile-registered``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    found = client.search_model_versions("name = 'hostile-registered'")
    return sorted((str(v.version), client.get_run(v.run_id).info.status) for v in found)


@pytest.mark.slow
def test_a_run_that_fails_to_publish_registers_no_model_version(tmp_path, capsys, monkeypatch):
    """The model is registered once the outputs are published: a run that fails before adds
    no version of a FAILED run to the registry (was: one per retry, each a deployable
    "latest" version whose outputs were never written)."""
    pytest.importorskip("mlflow")
    from forecaster import _io
    from forecaster.exceptions import OwnershipError

    spec = _registered_project(tmp_path, monkeypatch)
    publish = _io.publish_directory

    def refused(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("kind") == "run":  # the run folder, not the logged model's
            raise OwnershipError("refused: a file appeared in the outputs")
        return publish(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(_io, "publish_directory", refused)
        code, err = run_cli(capsys, "run", str(spec))
    assert code == 2, err
    assert [run.info.status for run in _runs(tmp_path)] == ["FAILED"]
    assert _versions(tmp_path) == []
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert _versions(tmp_path) == [("1", "FINISHED")]


@pytest.mark.slow
def test_a_registering_run_prints_nothing_with_quiet_and_only_json_with_json_logs(
    tmp_path, capsys, monkeypatch
):
    """MLflow prints "Successfully registered model ..." / "Created version ..." on standard
    error: those lines are the run's steps (was: printed under --quiet, and as plain text
    among the JSON records of --json-logs)."""
    pytest.importorskip("mlflow")
    spec = _registered_project(tmp_path, monkeypatch)
    assert main(["run", str(spec), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "", captured
    assert main(["run", str(spec), "--force", "--json-logs"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in (captured.out + captured.err).splitlines() if line]
    assert all(line.startswith("{") for line in lines), lines
    assert "tracking: Created version '2' of model 'hostile-registered'." in captured.out
    assert _versions(tmp_path) == [("1", "FINISHED"), ("2", "FINISHED")]


@pytest.mark.slow
def test_a_backfill_registers_no_version_and_versions_carry_their_as_of(
    tmp_path, capsys, monkeypatch
):
    """A backfill (--as-of before the latest run's) registered a new version, so
    models:/<name>/latest served the model fitted on older data while latest.json kept the
    later one. It registers none now (a step line and the summary's registration say why),
    and the version a run registers is tagged with its as-of and kind."""
    mlflow = pytest.importorskip("mlflow")
    spec = _registered_project(tmp_path, monkeypatch)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    code, err = run_cli(capsys, "run", str(spec), "--as-of", "2024-01-12")
    assert code == 0, err
    assert "no new version of 'hostile-registered' registered" in err, err
    assert _versions(tmp_path) == [("1", "FINISHED")]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    tags = client.get_model_version("hostile-registered", "1").tags
    assert (tags["forecaster.as_of"], tags["forecaster.run_kind"]) == ("2024-01-16", "fit")
    summaries = sorted((tmp_path / "outputs").rglob("summary.json"))
    plans = {
        json.loads(p.read_text())["as_of"]: json.loads(p.read_text())["registration"]
        for p in summaries
    }
    registered = {"name": "hostile-registered", "new_version": True, "reason": None}
    assert plans["2024-01-16"] == registered
    backfill = plans["2024-01-12"]
    assert (backfill["new_version"], backfill["latest_as_of"]) == (False, "2024-01-16")


@pytest.mark.slow
def test_a_failed_registration_is_what_the_summary_and_its_manifest_say(
    tmp_path, capsys, monkeypatch
):
    """The summary said ``new_version: true`` as it was written before the registration,
    which MLflow then refused: it says what happened now (no version, and why), and the
    manifest vouches for the summary rewritten (the outputs are not taken as damaged)."""
    mlflow = pytest.importorskip("mlflow")
    import hashlib

    spec = _registered_project(tmp_path, monkeypatch)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("registry is read-only")

    monkeypatch.setattr(mlflow, "register_model", refused)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert "Could not register the run's model as 'hostile-registered'" in err, err
    out = tmp_path / "outputs" / "hostile" / "2024-01-16"
    registration = json.loads((out / "summary.json").read_text())["registration"]
    assert registration["new_version"] is False, registration
    assert registration["reason"].startswith("the registration in MLflow failed ("), registration
    assert "registry is read-only" in registration["reason"], registration
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert files["summary.json"] == hashlib.sha256((out / "summary.json").read_bytes()).hexdigest()
    assert _versions(tmp_path) == []
    (run,) = _runs(tmp_path)  # the summary logged into the MLflow run is the one rewritten
    logged = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="outputs/summary.json", dst_path=str(tmp_path / "a")
    )
    assert json.loads(Path(logged).read_text())["registration"] == registration
    code, err = run_cli(capsys, "run", str(spec))  # the outputs are whole: skipped
    assert code == 0 and "damaged" not in err, err


@pytest.mark.slow
def test_a_run_killed_while_it_rewrites_the_summary_leaves_its_outputs_whole(
    tmp_path, capsys, monkeypatch
):
    """After a refused registration the run rewrote summary.json, then manifest.json, in the
    published folder: killed between the two, it left a summary its manifest did not vouch
    for, and the next run refused the outputs as damaged (move summary.json out, --force).
    The folder is published again in one step now: killed on the way, it stays as it was."""
    mlflow = pytest.importorskip("mlflow")
    from forecaster import _io

    spec = _registered_project(tmp_path, monkeypatch)

    calls: list[Path] = []

    def refused(*args: Any, **kwargs: Any) -> Any:
        calls.append(Path("registered"))
        raise RuntimeError("registry is read-only")

    class Killed(BaseException):
        pass

    written = _io.write_manifest

    def killed_after_the_registration(folder: Any, *args: Any, **kwargs: Any) -> Any:
        if calls:  # the manifest of the rewritten summary: killed before it is written
            calls.append(Path(folder))
            raise Killed
        return written(folder, *args, **kwargs)

    monkeypatch.setattr(mlflow, "register_model", refused)
    monkeypatch.setattr(_io, "write_manifest", killed_after_the_registration)
    with pytest.raises(Killed):
        run_cli(capsys, "run", str(spec))
    monkeypatch.setattr(_io, "write_manifest", written)
    out = tmp_path / "outputs" / "hostile" / "2024-01-16"
    assert (out / "summary.json").is_file() and len(calls) == 2, calls
    code, err = run_cli(capsys, "run", str(spec))  # whole: skipped, not refused as damaged
    assert code == 0 and "damaged" not in err, err
    assert "already exist" in err, err


@pytest.mark.slow
def test_a_ctrl_c_after_the_summary_is_rewritten_ends_the_run_finished(
    tmp_path, capsys, monkeypatch
):
    """After a refused registration the run's folder is published again with the summary
    rewritten (a new folder in its place), and the MLflow run, told whether the outputs were
    published by the identity of the folder first put there, called them unpublished: a
    Ctrl-C then ended it KILLED while its outputs are complete and summary.json says
    completed. The folder published again is the run's too: FINISHED, tagged."""
    mlflow = pytest.importorskip("mlflow")
    import forecaster.jobs.run as run_module
    from forecaster.jobs.tracked import INTERRUPTED_TAG

    reset_mlflow_state(monkeypatch, tmp_path)
    spec = _registered_project(tmp_path, monkeypatch)

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("registry is read-only")

    logged = run_module.log_outputs

    def ctrl_c_then_log(*args: Any, **kwargs: Any) -> Any:
        os.kill(os.getpid(), signal.SIGINT)  # held until the logging is done
        return logged(*args, **kwargs)

    monkeypatch.setattr(mlflow, "register_model", refused)
    monkeypatch.setattr(run_module, "log_outputs", ctrl_c_then_log)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 130 and "interrupted (Ctrl-C)" in err, err
    (run,) = _runs(tmp_path)
    (written,) = tmp_path.glob(f"outputs/*/{run.data.tags['as_of']}/summary.json")
    summary = json.loads(written.read_text())
    assert summary["registration"]["new_version"] is False, summary  # rewritten
    assert run.info.status == "FINISHED", run.info.status
    assert run.data.tags[INTERRUPTED_TAG].startswith("KeyboardInterrupt once the outputs were")


@pytest.mark.slow
def test_a_summary_that_cannot_be_rewritten_is_a_warning_and_the_result_says_what_happened(
    tmp_path, monkeypatch
):
    """A refused registration whose summary cannot be rewritten (a file was added to the
    published folder meanwhile, which is the user's: the folder is not replaced) leaves the
    folder as published, with a warning naming it; the result the run returns says what
    happened (no new version, and why), not what was planned, and its staging folder is
    gone."""
    mlflow = pytest.importorskip("mlflow")
    from forecaster.exceptions import ForecasterWarning

    reset_mlflow_state(monkeypatch, tmp_path)
    spec = _registered_project(tmp_path, monkeypatch)
    out = tmp_path / "outputs" / "hostile" / "2024-01-16"

    def refused(*args: Any, **kwargs: Any) -> Any:
        (out / "notes.txt").write_text("mine")  # a user's file, added once published
        raise RuntimeError("registry is read-only")

    monkeypatch.setattr(mlflow, "register_model", refused)
    with pytest.warns(ForecasterWarning, match="Could not rewrite the summary of ") as caught:
        result = run_pipeline(spec, progress=False, log=lambda line: None)
    (message,) = [str(w.message) for w in caught if "Could not rewrite" in str(w.message)]
    assert "notes.txt" in message and "registration" in message, message
    assert result.registration is not None and result.registration["new_version"] is False
    assert "registry is read-only" in result.registration["reason"], result.registration
    planned = json.loads((out / "summary.json").read_text())["registration"]
    assert planned["new_version"] is True, planned  # the folder as it was published
    assert (out / "notes.txt").read_text() == "mine"
    assert [p.name for p in out.parent.iterdir() if ".staging-" in p.name] == []


@pytest.mark.slow
def test_a_rewrite_that_cannot_stage_its_folder_is_the_same_warning(tmp_path, monkeypatch):
    """The staging folder of the rewritten summary was made outside the block that turns a
    failure into a warning: a file system refusing it failed the run after its outputs were
    published (and logged nothing to MLflow). It is the warning of any other failure."""
    mlflow = pytest.importorskip("mlflow")
    from forecaster import _io
    from forecaster.exceptions import ForecasterWarning

    reset_mlflow_state(monkeypatch, tmp_path)
    spec = _registered_project(tmp_path, monkeypatch)
    refusals: list[str] = []
    staged = _io.staging_directory

    def refused(*args: Any, **kwargs: Any) -> Any:
        refusals.append("registration")
        raise RuntimeError("registry is read-only")

    def full_disk(destination: Any) -> Any:
        if refusals:  # the rewrite's, after the refused registration
            raise OSError(28, "No space left on device")
        return staged(destination)

    monkeypatch.setattr(mlflow, "register_model", refused)
    monkeypatch.setattr(_io, "staging_directory", full_disk)
    with pytest.warns(ForecasterWarning, match="No space left on device"):
        result = run_pipeline(spec, progress=False, log=lambda line: None)
    assert result.status == "completed" and result.registration is not None
    assert result.registration["new_version"] is False, result.registration


def test_an_untracked_run_with_register_as_says_why_it_registered_nothing(tmp_path, monkeypatch):
    """With MLflow unreachable, the summary's ``registration`` was null, as if the spec had
    no ``register_as``: it says no version was registered, and why, as the other reasons."""
    pytest.importorskip("mlflow")
    reset_mlflow_state(monkeypatch, tmp_path)
    spec = _registered_project(tmp_path, monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    lines: list[str] = []
    with pytest.warns(ForecasterWarning, match="tracking is unavailable"):
        result = forecaster.jobs.run_pipeline(spec, progress=False, log=lines.append)
    assert result.run_id is None
    registration = result.registration
    assert registration is not None, "registration: null says nothing of register_as"
    assert (registration["name"], registration["new_version"]) == ("hostile-registered", False)
    assert registration["reason"].startswith("the run is not tracked"), registration
    out = tmp_path / "outputs" / "hostile" / "2024-01-16"
    assert json.loads((out / "summary.json").read_text())["registration"] == registration
    told = "tracking: no new version of 'hostile-registered' registered: the run is not tracked"
    assert any(line.startswith(told) for line in lines), lines


def test_registrations_in_two_threads_log_their_own_lines_and_leave_stderr_alone(monkeypatch):
    """Two in-process runs registering at once (A starts, B starts, A ends, B ends): the
    registration's contextlib.redirect_stderr swapped the process's stream, so B's MLflow
    line went to the terminal instead of B's log, a line another thread printed meanwhile
    into A's log, and B put back A's buffer as sys.stderr for good. Each registering thread
    now captures its own lines only, and the stream is put back."""
    mlflow = pytest.importorskip("mlflow")
    import io
    import threading
    from types import SimpleNamespace

    import forecaster.tracking as tracking
    from forecaster.jobs.registration import register_run_model

    real = io.StringIO()
    monkeypatch.setattr(sys, "stderr", real)
    monkeypatch.setattr(tracking, "last_fit", lambda: SimpleNamespace(run_id="r", model_uri="m"))
    a_in, b_in, a_done, other_done = (threading.Event() for _ in range(4))

    def register(uri: str, name: str, tags: Any = None) -> None:  # prints on sys.stderr
        if name == "a":
            a_in.set()
            b_in.wait(5)
            other_done.wait(5)
        else:
            b_in.set()
            a_done.wait(5)
        print(f"Created version '1' of model {name!r}.", file=sys.stderr)

    monkeypatch.setattr(mlflow, "register_model", register)
    logs: dict[str, list[str]] = {"a": [], "b": []}

    def run(name: str) -> None:
        plan = {"name": name, "new_version": True, "reason": None}
        register_run_model("r", plan, {}, logs[name].append)
        if name == "a":
            a_done.set()

    threads = [threading.Thread(target=run, args=(name,)) for name in "ab"]
    threads[0].start()
    a_in.wait(5)
    threads[1].start()
    b_in.wait(5)
    print("error: another command's failure", file=sys.stderr)  # this thread: not registering
    other_done.set()
    for thread in threads:
        thread.join(10)
    assert logs == {
        "a": ["tracking: Created version '1' of model 'a'."],
        "b": ["tracking: Created version '1' of model 'b'."],
    }
    assert sys.stderr is real
    assert real.getvalue() == "error: another command's failure\n"


@pytest.mark.slow
def test_a_tracked_fit_whose_model_cannot_be_saved_ends_its_mlflow_run_failed(
    tmp_path, capsys, monkeypatch
):
    """`forecaster fit` saves its model before its MLflow run ends: a save that fails (a full
    disk) ends it FAILED, as `run` ends its run when it cannot publish (was: FINISHED, with
    the command's exit 1 and no model saved)."""
    pytest.importorskip("mlflow")
    spec = _tracked_project(tmp_path, monkeypatch)
    out = tmp_path / "models" / "m"
    save = forecaster.RNNForecaster.save

    def full_disk(model: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(path) == out:  # the command's save, not the logged model's copy
            raise OSError(28, "No space left on device", str(path))
        return save(model, path, *args, **kwargs)

    monkeypatch.setattr(forecaster.RNNForecaster, "save", full_disk)
    code, err = run_cli(capsys, "fit", str(spec), "--out", str(out))
    assert code == 1 and "No space left on device" in err, err
    assert [run.info.status for run in _runs(tmp_path)] == ["FAILED"]
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("failure", "code", "status"),
    [(OSError(28, "No space left on device"), 1, "FAILED"), (KeyboardInterrupt(), 130, "KILLED")],
)
def test_a_tracked_tuning_whose_model_cannot_be_saved_ends_its_study_run_failed(
    tmp_path, capsys, monkeypatch, failure, code, status
):
    """`forecaster tune` saved its best model after the study's MLflow run had ended FINISHED:
    a save that failed (a full disk; exit 1, no model) or was interrupted left a FINISHED
    run, as `fit` did before its save moved inside its run. The study's run now ends FAILED
    (KILLED when interrupted) when the save fails, once (a failed save ended it FINISHED,
    then FAILED milliseconds later). The next tune ends it FINISHED, and the earlier end
    stays as a tag."""
    pytest.importorskip("optuna")
    pytest.importorskip("mlflow")
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    spec = _tracked_project(tmp_path, monkeypatch)
    out = tmp_path / "models" / "hostile" / "2024-01-16-tuned"
    save, end, ends = forecaster.RNNForecaster.save, TrackingServiceClient.set_terminated, []

    def failing(model: Any, path: Any, *args: Any, **kwargs: Any) -> Any:
        if Path(path) == out:  # the command's save, not the logged model's copy
            raise failure
        return save(model, path, *args, **kwargs)

    def ending(client: Any, run_id: str, *args: Any, **kwargs: Any) -> Any:
        ends.append((run_id, args[0] if args else kwargs.get("status")))
        return end(client, run_id, *args, **kwargs)

    monkeypatch.setattr(forecaster.RNNForecaster, "save", failing)
    monkeypatch.setattr(TrackingServiceClient, "set_terminated", ending)
    exit_code, err = run_cli(capsys, "tune", str(spec), "--trials", "1")
    assert exit_code == code, err
    studies = [r for r in _runs(tmp_path) if r.data.tags.get("forecaster.kind") == "study"]
    assert [run.info.status for run in studies] == [status], err
    assert [s for run_id, s in ends if run_id == studies[0].info.run_id] == [status]
    assert not out.exists()
    monkeypatch.undo()  # a rerun that saves ends the study's run FINISHED again
    spec = _tracked_project(tmp_path, monkeypatch)
    exit_code, err = run_cli(capsys, "tune", str(spec), "--trials", "1")
    assert exit_code == 0 and out.is_dir(), err
    studies = [r for r in _runs(tmp_path) if r.data.tags.get("forecaster.kind") == "study"]
    assert [run.info.status for run in studies] == ["FINISHED"], err
    earlier = [v for k, v in studies[0].data.tags.items() if "earlier_end" in k]
    assert earlier == [status]


@pytest.mark.slow
def test_ctrl_c_in_the_trials_of_a_tracked_tuning_ends_its_study_run_killed(
    tmp_path, capsys, monkeypatch
):
    """Ctrl-C in the trials of `forecaster tune` (here in the second, after one finished) left
    the study's MLflow run RUNNING for good: the final logging that ends it was deferred to
    the command's block, which drops it after an interrupt, and the command knew the run only
    once the study returned. It ends KILLED, as the command exits 130."""
    pytest.importorskip("optuna")
    pytest.importorskip("mlflow")
    spec = _tracked_project(tmp_path, monkeypatch)
    fit, calls = forecaster.RNNForecaster.fit, []

    def interrupted(model: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(True)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fit(model, *args, **kwargs)

    monkeypatch.setattr(forecaster.RNNForecaster, "fit", interrupted)
    exit_code, err = run_cli(capsys, "tune", str(spec), "--trials", "3")
    assert exit_code == 130, err
    status = {r.data.tags.get("forecaster.kind"): r.info.status for r in _runs(tmp_path)}
    assert status == {"study": "KILLED", "trial": "FINISHED"}, err


@pytest.mark.slow
def test_a_tracked_tuning_with_levels_logs_the_calibrated_best_model(tmp_path, capsys, monkeypatch):
    """The best model `forecaster tune` logs on its study's run is the calibrated one (it was
    logged inside tune, before the command calibrated it, and refused the level)."""
    mlflow = pytest.importorskip("mlflow")
    spec = _tracked_project(tmp_path, monkeypatch)
    spec.write_text(spec.read_text() + "\n[output]\nlevels = [80]\nplot_series = 0\n")
    code, err = run_cli(capsys, "tune", str(spec), "--no-progress", "--trials", "1")
    assert code == 0, err
    logged = [m for run in _runs(tmp_path) for m in run.outputs.model_outputs]
    assert len(logged) == 1, logged  # the study's run: the trials log no model
    frame = pl.read_csv(tmp_path / "data" / "prices.csv", try_parse_dates=True)
    model = mlflow.pyfunc.load_model(f"models:/{logged[0].model_id}")
    forecast = model.predict(frame, params={"level": [80]})
    assert {"y_lo_80", "y_hi_80"} <= set(forecast.columns)


# ------------------------------------------------------------------------------------------
# interval scores as [evaluation] metrics and as the tuning objective; backtest --level
# ------------------------------------------------------------------------------------------


def test_evaluation_metrics_take_interval_scores_of_the_levels(tmp_path):
    metrics = '["mae", "coverage_80.0", "winkler_080", "msis_95", "pinball", "scrps"]'
    text = MINIMAL + f"\n[evaluation]\nmetrics = {metrics}\n\n[output]\nlevels = [80, 95]\n"
    spec, _ = load_spec(write(tmp_path, text))
    assert spec.evaluation.metrics == [
        "mae", "coverage_80", "winkler_80", "msis_95", "pinball", "scrps",
    ]  # fmt: skip
    assert spec.training.objective == "val_loss"


@pytest.mark.parametrize(
    ("metrics", "levels", "message"),
    [
        ('["coverage_95"]', "[80]", r"'coverage_95' scores the 95 % interval.*levels is \['80'\]"),
        ('["width_80"]', None, r"'width_80' scores the 80 % interval.*levels is not set"),
        ('["pinball"]', None, r"'pinball' scores quantile forecasts.*levels is not set"),
        ('["coverage_0"]', "[80]", r"the level of 'coverage_0' is not in \(1, 100\)"),
        ('["coverage"]', "[80]", r"expected one of .*coverage_<L>.*got 'coverage'"),
        ('["crps"]', "[80]", r"expected one of.*got 'crps'"),
        ('["mae", "mae"]', None, r"each metric once, got \['mae'\]"),
        ('["coverage_80", "coverage_80.0"]', "[80]", r"each metric once"),
        ("[]", None, r"at least 1 item"),
        ('"mae"', None, r"expected a list of metric names"),
        ("[80]", None, r"got int 80"),
    ],
)
def test_bad_evaluation_metrics_exit_2_naming_the_key(tmp_path, capsys, metrics, levels, message):
    output = f"\n[output]\nlevels = {levels}\n" if levels else ""
    path = write(tmp_path, MINIMAL + f"\n[evaluation]\nmetrics = {metrics}\n" + output)
    with pytest.raises(SpecError, match=r"key 'evaluation\.metrics(\.\d+)?'") as info:
        load_spec(path)
    assert re.search(message, str(info.value)), info.value
    code, err = run_cli(capsys, "run", str(path), "--dry-run")
    assert code == 2 and str(path) in err and "evaluation.metrics" in err, err


QUANTILE_MODEL = '\n[model]\nloss = "quantile"\n'


@pytest.mark.parametrize(
    ("objective", "model", "levels", "message"),
    [
        ("coverage_80", QUANTILE_MODEL, "[80]", r"cannot rank models.*'winkler_80', 'msis_80'"),
        ("width_80", QUANTILE_MODEL, "[80]", r"cannot rank models"),
        ("mae", QUANTILE_MODEL, "[80]", r"a point score is not a tuning objective"),
        ("winkler_95", QUANTILE_MODEL, "[80]", r"scores the 95 % interval.*levels is \['80'\]"),
        ("msis_80", QUANTILE_MODEL, None, r"levels is not set"),
        ("pinball", "", "[80]", r"the model emits none \(loss = 'mae'"),
        ("loss", QUANTILE_MODEL, None, r"expected one of \['val_loss', 'pinball'"),
        (3, QUANTILE_MODEL, None, r"expected one of .*got 3"),
    ],
)
def test_bad_tuning_objective_exits_2_naming_the_key(
    tmp_path, capsys, objective, model, levels, message
):
    value = f'"{objective}"' if isinstance(objective, str) else objective
    output = f"\n[output]\nlevels = {levels}\n" if levels else ""
    path = write(tmp_path, MINIMAL + model + f"\n[training]\nobjective = {value}\n" + output)
    with pytest.raises(SpecError, match=r"key 'training\.objective'") as info:
        load_spec(path)
    assert re.search(message, str(info.value)), info.value
    code, err = run_cli(capsys, "run", str(path), "--dry-run")
    assert code == 2 and "training.objective" in err, err


def test_a_score_objective_without_a_validation_split_is_refused_by_tunes_one_rule(
    tmp_path, capsys
):
    """objective = "pinball" with [model] validation_size = 0 was refused at load by a copy
    of tune's rule with its own message, also in a spec that does not tune (while
    "val_loss" was not). Tune's one rule refuses it, for every objective, where the spec
    tunes (training.tune, run --tune, tune): one message; a spec that does not tune loads."""
    model = QUANTILE_MODEL + "validation_size = 0\n"
    path = write(tmp_path, MINIMAL + model + '\n[training]\nobjective = "pinball"\n')
    load_spec(path)  # no tuning: the objective is not read
    for args in (("run", "--tune", "--dry-run"), ("tune",)):
        code, err = run_cli(capsys, args[0], str(path), *args[1:])
        assert code == 2, (args, err)
        assert "tune ranks the trials by 'pinball', measured on the validation split" in err
    path.write_text(path.read_text() + "tune = true\n")
    code, err = run_cli(capsys, "run", str(path), "--dry-run")
    assert code == 2 and "key 'training.tune' is true, but tune ranks the trials" in err, err


def test_the_tuning_objective_reaches_the_study_and_its_name(tmp_path, monkeypatch):
    import forecaster.tuning as tuning
    from forecaster.jobs.fitting import study_name, tune_model

    calls = []
    monkeypatch.setattr(tuning, "tune", lambda estimator, frame, **kw: calls.append(kw))
    spec_path = csv_project(tmp_path, rows(), model='loss = "quantile"')
    plain, root = load_spec(spec_path)
    text = (
        spec_path.read_text()
        + '\n[training]\nobjective = "winkler_80"\n\n[output]\nlevels = [80]\n'
    )
    spec_path.write_text(text)
    spec, root = load_spec(spec_path)
    frame, when = prepare_data(spec, root, None)
    tune_model(spec, root, frame, when)
    tune_model(plain, root, frame, when)
    assert [c["metric"] for c in calls] == ["winkler_80", "val_loss"]
    assert calls[0]["study_name"] == study_name(spec, when) != study_name(plain, when)


def _point_model(loss=None, conformal=None):
    attributes = {"loss": loss, "quantiles": None, "conformal_": conformal}
    attributes["schema_"] = {"id": "String", "date": "Date", "y": "Float64"}  # of rows()
    return type("Saved", (), {**attributes, "get_params": lambda self: {}})()


@pytest.mark.parametrize(
    ("model", "levels", "message"),
    [
        (_point_model(), ["80"], r"argument --level: the model in m was saved without calib"),
        (
            _point_model("quantile"),
            ["95"],
            r"argument --level: the model in m emits the quantiles \[0\.1, 0\.5, 0\.9\].*"
            r"need \[0\.025, 0\.975\]",
        ),
    ],
    ids=["uncalibrated", "quantiles"],
)
def test_backtest_level_a_saved_model_cannot_give_exits_2(
    tmp_path, capsys, monkeypatch, model, levels, message
):
    import forecaster.jobs.commands as commands

    monkeypatch.setattr(commands, "load_model", lambda path: model)
    spec = csv_project(tmp_path, rows())
    out = tmp_path / "b.parquet"
    flags = [item for level in levels for item in ("--level", level)]
    code, err = run_cli(capsys, "backtest", str(spec), "--model", "m", "--out", str(out), *flags)
    assert code == 2 and re.search(message, err), err
    assert not out.exists()


def test_a_calendar_the_declared_freq_cannot_show_is_a_spec_error(tmp_path, capsys):
    """Was: `run --dry-run` exited 0 and the run read the data, then exited 3 ("invalid data:
    calendar feature 'hour' repeats every day")."""
    series = 'targets = ["close"]\nfreq = "1bd"\nmissing = "ffill"'
    spec = write(tmp_path, MINIMAL.replace('targets = ["close"]', series) + "[model]\n")
    spec.write_text(spec.read_text() + 'calendar = ["hour"]\n')
    message = r"key 'model.calendar': calendar feature 'hour' repeats every day, .* every 1bd"
    with pytest.raises(SpecError, match=message):
        load_spec(spec)
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 2 and re.search(message, err), err


def test_backtest_level_the_spec_model_cannot_give_exits_2(tmp_path, capsys):
    spec = csv_project(tmp_path, rows(), model='loss = "quantile"')
    out = tmp_path / "b.parquet"
    for flags, message in (
        (["--level", "95"], r"argument --level: the spec's model emits the quantiles"),
        (["--level", "0"], r"argument --level: expected a level in percent"),
        (["--level", "80", "--level", "80"], r"argument --level: each level once"),
    ):
        code, err = run_cli(capsys, "backtest", str(spec), "--out", str(out), *flags)
        assert code == 2 and re.search(message, err), err
        assert not out.exists()


def test_backtest_level_without_a_listed_scores_level_exits_2(tmp_path, capsys):
    """``[evaluation] metrics`` lists ``winkler_95`` (``levels = [80, 95]``) and ``backtest
    --level 80`` replaces the levels: was exit 0 with ``winkler_95`` in neither the table nor
    the summary, without a word. Refused before any data is read, naming the score, --level
    and the spec's key (the spec's own levels were checked at load)."""
    spec = csv_project(tmp_path, long_rows())  # long enough: the backtest ran (exit 0)
    text = spec.read_text().replace(
        "backtest_folds = 0", 'backtest_folds = 2\nmetrics = ["mae", "coverage_80", "winkler_95"]'
    )
    spec.write_text(text + "\n[output]\nlevels = [80, 95]\nplot_series = 0\n")
    out = tmp_path / "b.parquet"
    code, err = run_cli(capsys, "backtest", str(spec), "--level", "80", "--out", str(out))
    message = (
        r"argument --level: key 'evaluation.metrics' lists 'winkler_95', a score of the 95 % "
        r"interval, and --level asks for the levels \['80'\] only \(they replace the spec's "
        r"\[output\] levels, \['80', '95'\]\), so it would not be scored\. Add --level 95"
    )
    assert code == 2 and re.search(message, err), err
    assert not out.exists()


def test_check_given_levels_names_every_score_of_a_level_not_given(tmp_path):
    from forecaster.jobs.scores import check_given_levels

    metrics = ["mae", "coverage_80", "winkler_95", "msis_95", "pinball"]
    path = write(
        tmp_path,
        mini_spec(evaluation={"metrics": metrics}, output={"levels": [80, 95]}),
    )
    spec, _ = load_spec(path)
    check_given_levels(spec, [80.0, 95.0])  # every listed level given: nothing to say
    check_given_levels(spec, [50.0, 80.0, 95.0])  # more levels: scored too
    message = (
        r"lists 'coverage_80', 'winkler_95', 'msis_95', scores of the 80 % and 95 % intervals"
        r".* Add --level 80 --level 95, leave out --level \(the spec's levels\), or drop them"
    )
    with pytest.raises(ArgumentError, match=message):
        check_given_levels(spec, [50.0])


def long_rows(n: int = 40) -> str:
    import datetime as dt

    lines = ["id,date,y"]
    for k, key in enumerate(("a", "b")):
        for i in range(n):
            day = dt.date(2024, 1, 1) + dt.timedelta(days=i)
            lines.append(f"{key},{day},{10 * k + (i * 7) % 5 + 0.1 * i}")
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_backtest_level_scores_the_intervals_as_the_run_does(tmp_path, capsys):
    import json

    spec = csv_project(tmp_path, long_rows())
    text = spec.read_text().replace(
        "backtest_folds = 0", 'backtest_folds = 2\nmetrics = ["mae", "pinball"]'
    )
    spec.write_text(text + "\n[output]\nlevels = [80]\nplot_series = 0\n")
    out = tmp_path / "b.parquet"
    assert main(["backtest", str(spec), "--out", str(out), "--no-progress", "--json-logs"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = next(line["summary"] for line in lines if "summary" in line)["metrics"]
    scores = ["coverage_80", "width_80", "winkler_80", "msis_80", "pinball", "scrps"]
    baselines = ["mae_naive", "mae_skill_naive"]  # seasonality 1: the naive baseline only
    listed = ["mae", *baselines, *scores[:-1]]  # scrps is not listed: not reported
    listed.append("n_interval_naive")  # the points of the naive's interval scores
    assert sorted(summary) == sorted(f"backtest_{s}" for s in listed)
    table = pl.read_parquet(out)  # the backtest's table: the scores the summary has
    assert set(scores[:-1]) <= set(table.columns) and table["fold"].n_unique() == 2
    # scrps is not listed: not in the table either (was, with its baselines' columns)
    assert not [c for c in table.columns if c.startswith("scrps")], table.columns
    assert {"pinball_naive", "pinball_skill_naive"} <= set(table.columns)
    # the run's own backtest: the same scores in summary.json, and its tables
    assert run_cli(capsys, "run", str(spec))[0] == 0
    run = json.loads(next((tmp_path / "outputs").rglob("summary.json")).read_text())["metrics"]
    for name in ("backtest.parquet", "backtest_by_step.parquet"):
        written = pl.read_parquet(next((tmp_path / "outputs").rglob(name))).columns
        assert "pinball" in written and not [c for c in written if c.startswith("scrps")]
    assert run["backtest_coverage_80"] == summary["backtest_coverage_80"]
    assert run["backtest_pinball"] == pytest.approx(summary["backtest_pinball"])
    # --level replaces the spec's levels
    args = ("--out", str(out), "--level", "95", "--level", "50", "--folds", "1")
    code, err = run_cli(capsys, "backtest", str(spec), *args)
    assert code == 0, err
    columns = pl.read_parquet(out).columns
    assert {"coverage_50", "msis_95", "pinball"} <= set(columns) and "coverage_80" not in columns


# ------------------------------------------------------------------------------------------
# baselines: the backtest's naive and seasonal-naive scores and skill ratios in the summary
# ------------------------------------------------------------------------------------------


def test_a_run_with_levels_forecasts_a_series_stale_before_the_calibration_folds(tmp_path, capsys):
    """stale = "forecast" with [output] levels: "b" ends 20 days before the as-of, before the
    first common cutoff of the calibration's calendar folds, which gave it no residuals, and
    predict refused the whole forecast (exit 3). The run forecasts it from its own last time
    (by a model that has seen "a"'s later data), so its calibration counts the folds from
    each series' own end, as before the calendar folds, and says so (without the backtest's
    warning that origins='series' leaks across series and advice to pass origins='calendar',
    which a spec cannot: the run chose those folds on purpose)."""
    import json

    day = dt.date(2024, 1, 1)
    lines = [f"a,{day + dt.timedelta(days=i)},{(i * 7) % 5 + 0.1 * i}" for i in range(43)]
    lines += [f"b,{day + dt.timedelta(days=i)},{i % 3 + 0.5}" for i in range(23)]
    text = "id,date,y\n" + "\n".join(lines) + "\n"  # a: to 02-12, b: to 01-23
    spec = csv_project(tmp_path, text, series='stale = "forecast"')
    spec.write_text(spec.read_text() + "\n[output]\nlevels = [80]\nplot_series = 0\n")
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert "counted from each series' own end (the stale series ['b']" in err
    assert "origins='series' counts each series' folds" not in err
    forecasts = pl.read_parquet(next((tmp_path / "outputs").rglob("forecasts.parquet")))
    b = forecasts.filter(pl.col("id") == "b")
    assert b.height == 2 and b["y_lo_80"].is_finite().all() and (b["y_hi_80"] > b["y"]).all()
    summary = json.loads(next((tmp_path / "outputs").rglob("summary.json")).read_text())
    assert summary["stale_steps"] == {"b": 20}


def test_a_run_with_levels_silences_the_calibrations_warnings_by_class(
    tmp_path, capsys, monkeypatch
):
    """The run dropped the calibration's cross-series warning (origins='series', which it
    chose for its stale series) by a regular expression of its message: reworded, it was
    shown again. It is dropped by its class, CrossSeriesWarning, whatever its words."""
    import importlib

    from forecaster.exceptions import CrossSeriesWarning, warn_at_caller

    backtest_module = importlib.import_module("forecaster.evaluation.fold_forecasts")

    def reworded(*args: Any) -> None:
        warn_at_caller("Reworded: a fold's model saw other series' later rows.", CrossSeriesWarning)

    monkeypatch.setattr(backtest_module, "warn_cross_series", reworded)
    day = dt.date(2024, 1, 1)
    lines = [f"a,{day + dt.timedelta(days=i)},{(i * 7) % 5 + 0.1 * i}" for i in range(43)]
    lines += [f"b,{day + dt.timedelta(days=i)},{i % 3 + 0.5}" for i in range(23)]
    spec = csv_project(
        tmp_path, "id,date,y\n" + "\n".join(lines) + "\n", series='stale = "forecast"'
    )
    spec.write_text(spec.read_text() + "\n[output]\nlevels = [80]\nplot_series = 0\n")
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert "counted from each series' own end" in err and "Reworded" not in err


def test_a_run_with_levels_and_a_stale_series_tells_each_warning_once(tmp_path):
    """One run fits the data three times and more (the run's fit, the calibration's
    clones, the backtest's clone and its calibration's clones), and each fit told its
    warnings again, with other dates: the validation hold-out warning of the stale series b
    and the calendar folds' "Left out 1 series" came three times each, the BaselineWarning
    four times. Each fact is told once per run."""
    day = dt.date(2024, 1, 1)
    lines = [f"a,{day + dt.timedelta(days=i)},{(i * 7) % 5 + 0.1 * i}" for i in range(60)]
    lines += [f"c,{day + dt.timedelta(days=i)},{(i * 3) % 4 + 0.2 * i}" for i in range(60)]
    lines += [f"b,{day + dt.timedelta(days=i)},{i % 3 + 0.5}" for i in range(50)]
    spec = csv_project(tmp_path, "id,date,y\n" + "\n".join(lines) + "\n")  # b: 10 days stale
    text = spec.read_text().replace("backtest_folds = 0", "backtest_folds = 2")
    spec.write_text(text + "\n[output]\nlevels = [80]\nplot_series = 0\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_pipeline(spec, progress=False, log=lambda line: None)
    told = [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]
    facts = {
        "stale": "1 series ends before the as-of",
        "hold-out": "has no validation window",
        "calendar": "Left out 1 series that no calendar fold forecasts",
        "baseline": "the network's error is",
    }
    counts = {fact: sum(text in m for m in told) for fact, text in facts.items()}
    assert counts == dict.fromkeys(facts, 1), told


def test_summary_names_the_series_too_short_to_model_as_dropped(tmp_path, capsys):
    """A series with fewer rows than lookback + horizon was left out of the fit and the
    forecast with a warning only, and summary.json listed it among the stale series that
    stale = "forecast" forecasts: a reader took it as forecast."""
    import json

    text = rows(12, ids=("a", "b")) + "c,2024-01-01,1.5\nc,2024-01-02,2.5\n"
    spec = csv_project(tmp_path, text, series='stale = "forecast"')
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    summary = json.loads(next((tmp_path / "outputs").rglob("summary.json")).read_text())
    assert summary["dropped_series"] == ["c"] and summary["series"] == 2
    assert "c" not in summary["stale_series"] and "c" not in summary["stale_steps"]
    forecasts = pl.read_parquet(next((tmp_path / "outputs").rglob("forecasts.parquet")))
    assert sorted(forecasts["id"].unique()) == ["a", "b"]


def test_the_stale_warning_does_not_promise_a_forecast_to_a_series_too_short(tmp_path, capsys):
    """A stale series too short for the model was named in the warning as "forecast from its
    own last time", then dropped by the panel: the warning promised a forecast never made."""
    text = rows(12, ids=("a", "b")) + "c,2024-01-01,1.5\nc,2024-01-02,2.5\n"
    spec = csv_project(tmp_path, text, series='stale = "forecast"')
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    stale = next(line for line in err.splitlines() if "ends before the as-of" in line)
    assert "c (last 2024-01-02)" in stale and "too short for the model" in stale, stale
    assert "not forecast" in stale and "dropped_series" in stale, stale


def _summary(tmp_path: Path) -> dict:
    import json

    return json.loads(next((tmp_path / "outputs").rglob("summary.json")).read_text())


def test_a_series_too_short_to_fit_but_long_enough_to_forecast_is_not_dropped(tmp_path, capsys):
    """A stale series with the lookback's rows (5) but fewer than lookback + horizon (6) is
    left out of the fit but forecast: summary.json listed it in dropped_series ("neither
    fitted nor forecast") and not among the stale series, while forecasts.parquet held it."""
    lines = "".join(f"c,2024-01-0{i},{i}.5\n" for i in range(1, 6))
    spec = csv_project(tmp_path, rows(12, ids=("a", "b")) + lines, series='stale = "forecast"')
    dry = forecaster.jobs.run_pipeline(spec, dry_run=True, progress=False, log=lambda line: None)
    assert dry.dropped_series == []  # as the run below (it read the fit's panel: ["c"])
    assert dry.stale_series == {"c": "2024-01-05"} and dry.stale_series_count == 1
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    forecasts = pl.read_parquet(next((tmp_path / "outputs").rglob("forecasts.parquet")))
    assert sorted(forecasts["id"].unique()) == ["a", "b", "c"]
    summary = _summary(tmp_path)
    assert summary["dropped_series"] == []
    assert summary["stale_series"] == {"c": "2024-01-05"} and summary["stale_steps"] == {"c": 7}
    assert summary["stale_series_count"] == 1


@pytest.mark.parametrize(
    "short", ["2024-01-01", "2024-01-10"], ids=["listed-first", "after-the-listed"]
)
def test_the_stale_count_leaves_out_every_dropped_series(tmp_path, capsys, monkeypatch, short):
    """The stale count left out the dropped series only among the first STALE_LISTED (1,000)
    listed: one listed later was still counted; and a dropped series listed first left the
    list shorter than the stale series that were there to list."""
    import forecaster.jobs.stale as stale_module

    monkeypatch.setattr(stale_module, "STALE_LISTED", 1)
    start = dt.date.fromisoformat(short)
    lines = "".join(f"c,{start + dt.timedelta(days=i)},{i}.5\n" for i in range(2))
    text = rows(12, ids=("a",)) + rows(9, ids=("b",)).split("\n", 1)[1] + lines
    spec = csv_project(tmp_path, text, series='stale = "forecast"')
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    summary = _summary(tmp_path)
    assert summary["dropped_series"] == ["c"]
    assert summary["stale_series"] == {"b": "2024-01-09"} and summary["stale_steps"] == {"b": 3}
    assert summary["stale_series_count"] == 1


def test_a_skipped_run_warns_when_the_data_changed_since_its_outputs(tmp_path, capsys):
    """A rerun of the same as-of skips: a clip or a series added to the data (the as-of of
    audio rarely moves), or a value corrected, kept the old outputs without a word."""
    spec = csv_project(tmp_path, rows(12, ids=("a", "b")))
    assert run_cli(capsys, "run", str(spec))[0] == 0
    code, err = run_cli(capsys, "run", str(spec))  # the same data: quiet
    assert code == 0 and "already exist" in err and "changed since" not in err, err
    data = tmp_path / "data" / "prices.csv"
    data.write_text(rows(12, ids=("a", "b", "c")))
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0 and re.search(r"warning: .* changed since .*series 2 -> 3.*--force", err)
    data.write_text(rows(12, ids=("a", "b")).replace("0.5\n", "0.75\n", 1))
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0 and re.search(r"changed since .*\(values changed\)", err), err


@pytest.mark.parametrize("dtype", [pl.Categorical, pl.Enum(["a", "b"])], ids=str)
def test_a_skipped_run_takes_an_earlier_versions_hash_of_its_text_ids_for_the_same_data(
    tmp_path, capsys, monkeypatch, dtype
):
    """Outputs of a Parquet source with a Categorical or Enum id, written by a version that
    hashed the id's own dtype (summary.json's data.hash is the fingerprint's legacy_hash
    now): a rerun of the same data warned that its data changed since ("values changed").
    The legacy hash is the same data."""
    import forecaster.jobs.outputs as outputs_module

    (tmp_path / "data").mkdir()
    frame = pl.read_csv(io.StringIO(rows(12)), try_parse_dates=True)
    frame.with_columns(pl.col("id").cast(dtype)).write_parquet(tmp_path / "data" / "p.parquet")
    spec = write(
        tmp_path,
        CSV_SPEC.format(source="", series="", model="").replace(
            'path = "data/*.csv"\nformat = "csv"', 'path = "data/*.parquet"\nformat = "parquet"'
        ),
    )
    fingerprint, legacy = outputs_module.dataset_fingerprint, []

    def as_an_earlier_version(*args: Any, **kwargs: Any) -> dict[str, Any]:
        found = dict(fingerprint(*args, **kwargs))
        legacy.append(found.pop("legacy_hash"))  # the id reached the fingerprint as it was
        return {**found, "hash": legacy[-1]}

    monkeypatch.setattr(outputs_module, "dataset_fingerprint", as_an_earlier_version)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0 and legacy, err
    assert _summary(tmp_path)["data"]["hash"] == legacy[-1]
    monkeypatch.setattr(outputs_module, "dataset_fingerprint", fingerprint)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0 and "already exist" in err and "changed since" not in err, err
    frame.with_columns(pl.col("id").cast(dtype), pl.col("y") + 1).write_parquet(
        tmp_path / "data" / "p.parquet"
    )
    code, err = run_cli(capsys, "run", str(spec))  # other values: still told
    assert code == 0 and re.search(r"changed since .*\(values changed\)", err), err


def test_the_validation_score_is_shown_beside_its_baselines(tmp_path, capsys):
    """Without a backtest, the run's summary showed val_loss alone: no naive or seasonal
    naive score on the same validation windows to judge it by."""
    import json

    spec = csv_project(tmp_path, rows(24, ids=("a", "b")))
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    metrics = json.loads(next((tmp_path / "outputs").rglob("summary.json")).read_text())["metrics"]
    names = (
        "validation_model",
        "validation_naive",
        "validation_seasonal_naive",
        "validation_skill",
    )
    assert all(name in metrics for name in names), metrics
    skill = metrics["validation_model"] / metrics["validation_seasonal_naive"]
    assert metrics["validation_skill"] == pytest.approx(skill)


def test_summary_json_has_the_baseline_scores_and_skill_of_every_metric(tmp_path, capsys):
    import json

    spec = csv_project(tmp_path, rows(16))  # straight lines: the baselines' errors are exact
    text = spec.read_text().replace(
        "backtest_folds = 0", 'backtest_folds = 1\nmetrics = ["mae", "rmse"]\nseasonality = 2'
    )
    spec.write_text(text)
    code = main(["run", str(spec), "--no-progress"])
    logged = capsys.readouterr()
    assert code == 0, logged.err
    folder = tmp_path / "outputs" / "hostile" / "2024-01-16"
    summary = json.loads((folder / "summary.json").read_text())
    metrics = summary["metrics"]
    # what the fit chose for the parameters left to the data: the saved model's own choices,
    # and the device it trained on (not saved: None for a loaded model)
    model = forecaster.load(folder / "model")
    assert summary["resolved_params"]["device_"] in ("cpu", "cuda")
    assert {**summary["resolved_params"], "device_": None} == model.resolved_params()
    assert summary["resolved_params"]["lookback_"] == model.lookback_
    assert set(summary["resolved_params"]) >= {"target_transform_", "ema_decay_", "baseline_"}
    for name in ("mae", "rmse"):
        for base in ("naive", "snaive"):
            assert metrics[f"backtest_{name}_skill_{base}"] == pytest.approx(
                metrics[f"backtest_{name}"] / metrics[f"backtest_{name}_{base}"]
            )
    # horizon 2 on lines of slope 1: naive misses by 1 and 2, seasonal naive (m=2) by 2 and 2
    assert metrics["backtest_mae_naive"] == pytest.approx(1.5)
    assert metrics["backtest_rmse_naive"] == pytest.approx(2.5**0.5)
    assert metrics["backtest_mae_snaive"] == pytest.approx(2.0)
    assert "backtest_mase_naive" not in metrics  # only the listed metrics
    shown = f"naive {metrics['backtest_mae_naive']:.4g}, skill"
    table = (logged.out + logged.err).split("summary  ")[-1]  # the CLI's summary table
    assert shown in table and "backtest_mae_skill_naive" not in table
    by_step = pl.read_parquet(folder / "backtest_by_step.parquet")
    assert {"mae_naive", "mae_skill_naive", "mae_snaive", "mae_skill_snaive"} <= set(
        by_step.columns
    )


# ------------------------------------------------------------------------------------------
# scheduled data: future covariates beyond the as-of, stale series, origin, holidays
# ------------------------------------------------------------------------------------------


def scheduled_project(root: Path, data: str, **sections: object) -> Path:
    """A project with ``data`` as its one CSV file and the small spec (``sections``)."""
    from conftest import mini_spec

    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "prices.csv").write_text(data)
    return write(root, mini_spec(**sections))  # type: ignore[arg-type]


def promo_rows(observed: int = 12, scheduled: int = 2, promo: int = 1, drop: int = 0) -> str:
    """Daily rows of a and b from 2024-01-01: ``observed`` with y and promo, then
    ``scheduled`` with promo only (the last ``drop`` of b's left out)."""
    import datetime as dt

    lines = ["id,date,y,promo"]
    for k, key in enumerate(("a", "b")):
        for i in range(observed + scheduled - (drop if key == "b" else 0)):
            y = f"{10 * k + i % 5 + 0.5}" if i < observed else ""
            value = i % 3 if i < observed else promo * (i % 3)
            lines.append(f"{key},{dt.date(2024, 1, 1) + dt.timedelta(days=i)},{y},{value}")
    return "\n".join(lines) + "\n"


def forecasts_of(root: Path, name: str = "mini") -> pl.DataFrame:
    (path,) = (root / "outputs" / name).glob("*/forecasts.parquet")
    return pl.read_parquet(path)


FUTURE = {"series": {"future_covariates": ["promo"]}}


def test_future_covariates_are_read_from_the_source_beyond_the_as_of(tmp_path, capsys):
    # was: fit and backtest, then exit 3 at the forecast (no future frame)
    import datetime as dt

    # the network's forecasts (baseline = "auto" may replace them by the naive's)
    network = {**FUTURE, "model": {"baseline": "none"}}
    spec = scheduled_project(tmp_path / "one", promo_rows(promo=1), **network)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    first = forecasts_of(tmp_path / "one")
    assert first["date"].to_list() == [dt.date(2024, 1, 13), dt.date(2024, 1, 14)] * 2
    assert first["origin"].unique().to_list() == [dt.date(2024, 1, 12)]
    # other future values give another forecast: they are used
    spec = scheduled_project(tmp_path / "two", promo_rows(promo=50), **network)
    assert run_cli(capsys, "run", str(spec))[0] == 0
    assert (forecasts_of(tmp_path / "two")["y"] - first["y"]).abs().max() > 1e-4


def test_a_backfill_reads_only_the_future_covariates_of_later_rows(tmp_path, capsys):
    full = promo_rows(observed=14, scheduled=0)
    spec = scheduled_project(tmp_path / "full", full, **FUTURE)
    assert run_cli(capsys, "run", str(spec), "--as-of", "2024-01-12")[0] == 0
    # the same data with the targets after the as-of blanked: the same forecast
    blanked = promo_rows(observed=12, scheduled=2, promo=1)
    spec = scheduled_project(tmp_path / "blank", blanked, **FUTURE)
    assert run_cli(capsys, "run", str(spec))[0] == 0
    a, b = forecasts_of(tmp_path / "full"), forecasts_of(tmp_path / "blank")
    assert a.drop("model_version").equals(b.drop("model_version"))


def test_a_skipped_run_warns_when_its_future_covariates_changed(tmp_path, capsys):
    """The data record fingerprinted the history only: a promo changed inside the horizon
    (the forecasts read it) left a rerun quiet, reporting outputs of the old promo."""
    spec = scheduled_project(tmp_path, promo_rows(promo=1), **FUTURE)
    assert run_cli(capsys, "run", str(spec))[0] == 0
    code, err = run_cli(capsys, "run", str(spec))  # the same data: quiet
    assert code == 0 and "already exist" in err and "changed since" not in err, err
    (tmp_path / "data" / "prices.csv").write_text(promo_rows(promo=50))
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0 and "already exist" in err, err
    assert re.search(r"changed since .*\(future covariate values changed\).*--force", err), err


def test_future_covariates_with_log_returns_keep_their_scheduled_rows(tmp_path, capsys):
    """The scheduled rows (targets empty, promo filled) have no price, so no log return: they
    were deleted before the forecast read them, and every run and predict exited 3 ("no
    values of the future covariates ['promo'] for 4 of the 4 forecast steps ... Add those
    rows")."""
    returns = {"features": {"log_returns": ["y"]}}
    spec = scheduled_project(tmp_path, promo_rows(), **FUTURE, **returns)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    forecast = forecasts_of(tmp_path)
    assert forecast["date"].to_list() == [dt.date(2024, 1, 13), dt.date(2024, 1, 14)] * 2
    assert forecast["origin"].unique().to_list() == [dt.date(2024, 1, 12)]


def test_missing_future_covariate_steps_exit_3_before_the_fit(tmp_path, capsys, tree_guard):
    spec = scheduled_project(tmp_path, promo_rows(drop=1), **FUTURE)
    guard = tree_guard(tmp_path)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 3, err
    assert "future covariates ['promo'] for 1 of the 4 forecast steps" in err
    assert "b 2024-01-14" in err and "fitted" not in err
    guard.assert_unchanged()
    # fitting and backtesting need no future values (backtest read them and exited 3);
    # predicting with the fitted model does
    assert run_cli(capsys, "fit", str(spec), "--out", str(tmp_path / "m"))[0] == 0
    out = tmp_path / "bt.parquet"
    code, err = run_cli(capsys, "backtest", str(spec), "--folds", "1", "--out", str(out))
    assert code == 0 and out.exists(), err
    code, err = run_cli(capsys, "predict", str(spec), "--model", str(tmp_path / "m"))
    assert code == 3 and "b 2024-01-14" in err, err


@pytest.mark.slow
def test_missing_future_steps_of_a_stale_series_say_they_fall_before_the_as_of(tmp_path, capsys):
    """A series whose data end 3 days before the as-of, under stale = "forecast": its
    forecast steps (after its own last row) lack future covariates. The error spoke of
    "forecast steps after the as-of" for times before it; it says they are at or before the
    as-of, why (the series is forecast from its own last row) and the [series] keys that
    leave it out."""
    import datetime as dt

    lines = ["id,date,y,promo"]
    for key, observed, scheduled in (("a", 14, 2), ("b", 11, 0)):
        for i in range(observed + scheduled):
            y = f"{i % 5 + 0.5}" if i < observed else ""
            lines.append(f"{key},{dt.date(2024, 1, 1) + dt.timedelta(days=i)},{y},{i % 3}")
    stale = {"series": {"future_covariates": ["promo"], "stale": "forecast"}}
    spec = scheduled_project(tmp_path, "\n".join(lines) + "\n", **stale)
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3, err
    assert "for 2 of the 4 forecast steps: b 2024-01-12, b 2024-01-13." in err, err
    assert "after the as-of" not in err, err
    assert "2 of those steps are at or before the as-of 2024-01-14: series 'b' ends" in err, err
    assert 'set stale = "exclude" (the default) with max_staleness below' in err, err


def uneven_rows(ends: dict[str, int]) -> str:
    import datetime as dt

    lines = ["id,date,y"]
    for k, (key, n) in enumerate(ends.items()):
        day = dt.date(2024, 1, 1)
        lines += [f"{key},{day + dt.timedelta(days=i)},{10 * k + i % 4 + 0.5}" for i in range(n)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("series", "kept", "excluded"),
    [
        ({}, ["a", "c"], ["b"]),  # default: exclude series more than a horizon (2) behind
        ({"stale": "forecast"}, ["a", "b", "c"], []),
        ({"max_staleness": 3}, ["a", "b", "c"], []),
        ({"max_staleness": 0}, ["a"], ["b", "c"]),
    ],
)
def test_stale_series_are_excluded_or_forecast_by_the_policy(
    tmp_path, capsys, series, kept, excluded
):
    # was: GOOG and NDX forecast from 2008 and 2001 as of 2018, no column said so
    import datetime as dt
    import json

    spec = scheduled_project(tmp_path, uneven_rows({"a": 12, "b": 9, "c": 11}), series=series)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert "2 series end before the as-of 2024-01-12" in err and "b (last 2024-01-09)" in err
    forecast = forecasts_of(tmp_path)
    assert forecast["id"].unique(maintain_order=True).to_list() == kept
    assert forecast.columns[:3] == ["id", "date", "origin"] and "stale_steps" in forecast.columns
    steps = dict(forecast.select("id", "stale_steps").unique().iter_rows())
    assert steps == {k: {"a": 0, "b": 3, "c": 1}[k] for k in kept}
    ends = {"a": dt.date(2024, 1, 12), "b": dt.date(2024, 1, 9), "c": dt.date(2024, 1, 11)}
    assert all(origin == ends[key] for key, origin in forecast.select("id", "origin").rows())
    # a forecast dated on or before the as-of is always marked stale
    early = forecast.filter(pl.col("date") <= dt.date(2024, 1, 12))
    assert (early["stale_steps"] > 0).all()
    summary = json.loads(next((tmp_path / "outputs").rglob("summary.json")).read_text())
    assert summary["stale_steps"] == {"b": 3, "c": 1}
    assert summary["excluded_series"] == excluded
    assert summary["stale_policy"] == series.get("stale", "exclude")
    assert summary["max_staleness"] == series.get("max_staleness", 2)


class _EveryInputSeries:
    """A stand-in model: one forecast row per series of the frame it is given."""

    def predict(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.group_by("id", maintain_order=True).agg(
            pl.col("date").max().dt.offset_by("1d"), y=pl.lit(0.0)
        )


@pytest.mark.parametrize(
    ("ids", "dtype", "text"),
    [
        (("2021-06-01T09:30:00", "2022-01-01T00:00:00"), pl.Datetime, "2021-06-01 09:30:00"),
        (("true", "false"), pl.Boolean, "true"),
        (("2021-06-01", "2022-01-01"), pl.Date, "2021-06-01"),
        (("7", "8"), pl.Int64, "7"),
        (("a", "b"), pl.String, "a"),
    ],
)
def test_a_stale_series_is_excluded_whatever_its_id_dtype(tmp_path, ids, dtype, text):
    # was: a Datetime or Boolean id was named in excluded_series and still forecast (the ids
    # were compared as Python text, '... 09:30:00' / 'True', with Polars' '....000000' / 'true')
    import io

    from conftest import mini_spec

    from forecaster.jobs.run import forecast_as_of

    # typed ids come from Parquet (a CSV's ids are text, or integers written plainly)
    data = uneven_rows(dict(zip(ids, (9, 12), strict=True)))
    (tmp_path / "data").mkdir()
    typed = pl.read_csv(io.StringIO(data), try_parse_dates=True)
    typed.write_parquet(tmp_path / "data" / "prices.parquet")
    source = {"path": "data/*.parquet", "format": "parquet"}
    spec_file = write(tmp_path, mini_spec(source=source, series={"max_staleness": 1}))
    spec, root = load_spec(spec_file)
    with pytest.warns(ForecasterWarning, match="1 series ends before the as-of"):
        frame, when = prepare_data(spec, root, None)
    assert frame.schema["id"] == dtype
    assert len(when.excluded) == 1 and when.excluded[0].startswith(text)
    assert [key for key, _ in when.stale] == list(when.excluded)  # one naming of the ids
    forecast = forecast_as_of(_EveryInputSeries(), frame, spec=spec, when=when)
    fresh = frame.filter(pl.col("date") == pl.col("date").max())["id"]
    assert forecast["id"].to_list() == fresh.to_list()


@pytest.mark.parametrize("dtype", [pl.Enum(["c", "b", "a"]), pl.Categorical])
def test_a_parquet_source_lists_stale_series_in_the_order_of_a_csv_one(tmp_path, dtype):
    # was: the stale series of a Parquet source with Enum ids were listed in the Enum's
    # category order (c before b) in the warning and summary.json, while the library and a
    # CSV source of the same rows order series by the text of their ids (b before c)
    import io

    from conftest import mini_spec

    found: dict[tuple[str, str], Any] = {}
    for case, ends, features in [
        ("stale", {"c": 9, "b": 9, "a": 12}, {}),
        ("one price", {"c": 1, "b": 1, "a": 12}, {"log_returns": ["y"]}),  # dropped: named
    ]:
        data = uneven_rows(ends)
        for kind in ("csv", "parquet"):
            root = tmp_path / case / kind
            (root / "data").mkdir(parents=True)
            if kind == "csv":
                (root / "data" / "prices.csv").write_text(data)
            else:
                typed = pl.read_csv(io.StringIO(data), try_parse_dates=True)
                typed = typed.with_columns(pl.col("id").cast(dtype))
                typed.write_parquet(root / "data" / "prices.parquet")
            source = {"path": f"data/*.{kind}", "format": kind}
            spec, root = load_spec(write(root, mini_spec(source=source, features=features)))
            with pytest.warns(ForecasterWarning, match="2 series") as caught:
                _, when = prepare_data(spec, root, None)
            messages = [str(w.message) for w in caught if "2 series" in str(w.message)]
            found[case, kind] = ([key for key, _ in when.stale], messages)
    assert found["stale", "parquet"] == found["stale", "csv"]
    assert found["stale", "csv"][0] == ["b", "c"]
    assert found["one price", "parquet"] == found["one price", "csv"]
    assert "'b', 'c'" in found["one price", "csv"][1][0]


def business_rows(last: str = "2024-12-31", skip: tuple[str, ...] = ("2024-11-28",)) -> str:
    import datetime as dt

    lines, day, end = ["id,date,y"], dt.date(2024, 11, 1), dt.date.fromisoformat(last)
    i = 0
    while day <= end:
        if day.weekday() < 5 and str(day) not in skip:
            lines += [f"a,{day},{10 + i % 5}.5", f"b,{day},{20 + i % 3}.5"]
            i += 1
        day += dt.timedelta(days=1)
    return "\n".join(lines) + "\n"


BUSINESS = {"freq": "1bd", "missing": "ffill"}


def test_holidays_move_the_forecast_dates_past_them(tmp_path, capsys):
    # was: the five business days after 2018-12-31 included New Year's Day
    import datetime as dt

    holidays = {**BUSINESS, "holidays": ["2024-11-28", "2025-01-01"]}
    spec = scheduled_project(tmp_path / "h", business_rows(), series=holidays)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    dates = forecasts_of(tmp_path / "h")["date"].unique().sort().to_list()
    assert dates == [dt.date(2025, 1, 2), dt.date(2025, 1, 3)]
    spec = scheduled_project(tmp_path / "plain", business_rows(), series=BUSINESS)
    assert run_cli(capsys, "run", str(spec))[0] == 0
    plain = forecasts_of(tmp_path / "plain")
    assert plain["date"].unique().sort().to_list() == [dt.date(2025, 1, 1), dt.date(2025, 1, 2)]
    # the same model values, only the dates move
    assert forecasts_of(tmp_path / "h")["y"].to_list() == plain["y"].to_list()


@pytest.mark.slow
def test_a_tracked_run_with_holidays_says_its_logged_model_does_not_skip_them(
    tmp_path, capsys, monkeypatch
):
    """was: the logged model recorded freq 1bd only, and its pyfunc dated the step after a
    holiday on the holiday, unlike forecasts.parquet, with nothing saying so."""
    mlflow = pytest.importorskip("mlflow")
    from forecaster.jobs.tracked import HOLIDAYS_PARAM

    reset_mlflow_state(monkeypatch, tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    series = {**BUSINESS, "holidays": ["2024-11-28", "2025-01-01"]}
    tracking = {"enabled": True, "experiment": "holidays"}
    spec = scheduled_project(tmp_path, business_rows(), series=series, tracking=tracking)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert (
        f"not dated past series.holidays as forecasts.parquet is (param {HOLIDAYS_PARAM})" in err
    ), err
    client = mlflow.tracking.MlflowClient(uri)
    experiment = client.get_experiment_by_name("holidays").experiment_id
    (model,) = mlflow.search_logged_models(experiment_ids=[experiment], output_format="list")
    stated = model.params[HOLIDAYS_PARAM]
    assert stated.startswith("false: ") and "2 series.holidays (2024-11-28 to 2025-01-01)" in stated


def test_holidays_count_stale_steps_and_warn_past_the_listed_years(tmp_path, capsys):
    rows_ = business_rows(skip=("2024-11-28", "2024-12-25")).splitlines()
    data = (
        "\n".join(r for r in rows_ if not (r.startswith("b,") and r[:12] > "b,2024-12-20")) + "\n"
    )
    series = {**BUSINESS, "holidays": ["2024-11-28", "2024-12-25"], "stale": "forecast"}
    spec_file = scheduled_project(tmp_path, data, series=series)
    spec, root = load_spec(spec_file)
    with pytest.warns(ForecasterWarning, match=r"b \(last 2024-12-20\) 6 steps behind"):
        _, when = prepare_data(spec, root, None)  # 23, 24, 26, 27, 30, 31: not the 25th
    assert dict(when.stale_steps) == {"b": 6}
    code, err = run_cli(capsys, "run", str(spec_file))
    assert code == 0 and "lists dates up to 2024, but the forecast reaches 2025-01-02" in err, err


def test_a_row_on_a_listed_holiday_exits_3(tmp_path, capsys, tree_guard):
    series = {**BUSINESS, "holidays": ["2024-12-02"]}
    spec = scheduled_project(tmp_path, business_rows(), series=series)
    guard = tree_guard(tmp_path)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 3 and "rows on dates listed in series.holidays (2024-12-02)" in err, err
    guard.assert_unchanged()


def test_the_shipped_main_job_excludes_the_delisted_tickers():
    spec, root = load_spec(REPO / "pipelines" / "stocks_daily.toml")
    with pytest.warns(ForecasterWarning, match="3 series end before the as-of 2018-12-31"):
        _, when = prepare_data(spec, root, None)
    assert set(when.excluded) == {"GOOG", "NDX", "MSFT"}
    assert 2019 in {day.year for day in spec.series.holidays}


def test_model_keys_at_their_defaults_keep_the_spec_hash(tmp_path):
    """docs/pipelines.md: keys written at their default value do not change the hash. [model]
    is a free table: dropout = 0.1 or estimator = "RNNForecaster" changed it (a new study,
    and the outputs refused as made by another version of the spec)."""
    base = spec_hash(load_spec(write(tmp_path, MINIMAL))[0])
    for keys in ('estimator = "RNNForecaster"', "dropout = 0.1", "lr = 1e-3\nnum_layers = 1"):
        explicit = _with_keys(MINIMAL, "[model]", keys)
        assert spec_hash(load_spec(write(tmp_path, explicit))[0]) == base, keys
    for keys in ("dropout = 0.2", 'estimator = "LSTMForecaster"', "num_layers = 2"):
        other = _with_keys(MINIMAL, "[model]", keys)
        assert spec_hash(load_spec(write(tmp_path, other))[0]) != base, keys
    lstm = _with_keys(MINIMAL, "[model]", 'estimator = "LSTMForecaster"')
    lstm_default = _with_keys(lstm, "[model]", "dropout = 0.1")  # LSTMForecaster's default
    assert spec_hash(load_spec(write(tmp_path, lstm_default))[0]) == spec_hash(
        load_spec(write(tmp_path, lstm))[0]
    )


def test_cosmetic_edits_keep_the_spec_hash_and_the_study(tmp_path, capsys):
    """A description added under [pipeline], a path written "./data/..." or the tuning
    budget of a spec that does not tune changed the hash: the scheduled rerun exited 2 ("made
    by another version of the spec"), reuse_model retrained and the study restarted."""
    from forecaster.jobs.fitting import study_name

    spec_path = csv_project(tmp_path, rows())
    base = spec_path.read_text()
    assert run_cli(capsys, "run", str(spec_path))[0] == 0
    spec, root = load_spec(spec_path)
    _, when = prepare_data(spec, root, None)
    digest, named = spec_hash(spec), study_name(spec, when)
    for text in (
        base.replace('name = "hostile"', 'name = "hostile"\ndescription = "typo fixed"'),
        base.replace('path = "data/*.csv"', 'path = "./data//*.csv"'),
        base + '\n[output]\ndir = "./outputs/{name}/{as_of}/"\n',
        base + "\n[training]\ntrials = 5\ntimeout = 60\n",  # tune = false: not read
    ):
        spec_path.write_text(text)
        edited = load_spec(spec_path)[0]
        assert spec_hash(edited) == digest and study_name(edited, when) == named, text
        code, err = run_cli(capsys, "run", str(spec_path))
        assert code == 0 and "already exist" in err, err
    spec_path.write_text(base + '\n[training]\nstorage = "sqlite:///optuna.db"\n')
    stored = spec_hash(load_spec(spec_path)[0])
    spec_path.write_text(base + '\n[training]\nstorage = "sqlite:///./optuna.db"\n')
    assert spec_hash(load_spec(spec_path)[0]) == stored
    tuned = base + "\n[training]\ntune = true\n"
    spec_path.write_text(tuned)
    budget = spec_hash(load_spec(spec_path)[0])
    spec_path.write_text(tuned + "trials = 5\n")  # a tuning spec's outputs depend on it
    assert spec_hash(load_spec(spec_path)[0]) != budget


def test_schedule_keys_at_their_defaults_keep_the_spec_hash(tmp_path):
    base = spec_hash(load_spec(write(tmp_path, MINIMAL))[0])
    explicit = MINIMAL + 'stale = "exclude"\nholidays = []\n'
    assert spec_hash(load_spec(write(tmp_path, explicit))[0]) == base
    other = MINIMAL + 'stale = "forecast"\n'
    assert spec_hash(load_spec(write(tmp_path, other))[0]) != base


# ------------------------------------------------------------------------------------------
# keys the spec's other choices leave unused (forecaster.jobs.unused) and the dry run's plan
# ------------------------------------------------------------------------------------------

PARQUET = MINIMAL.replace('dataset = "stocks"', 'path = "data/*.parquet"\nformat = "parquet"')
WAV = MINIMAL.replace('dataset = "stocks"', 'path = "clips"\nformat = "wav"')
AUDIO = MINIMAL.replace('"stocks"', '"audio"')
NO_ID = MINIMAL.replace('id = "ticker"\n', "")


@pytest.mark.parametrize(
    ("mfcc", "message"),
    [("n_fft = 70000", "n_fft must be an integer <= 65,536"), ("n_mfcc = 50", "n_mfcc must be <=")],
)
def test_mfcc_keys_out_of_range_are_spec_errors(tmp_path, capsys, mfcc, message):
    """Bad [features.mfcc] values were exit 3 "invalid data" naming a Python argument: a
    scheduler reads exit 3 as a data problem. They are the spec's: exit 2, naming the key."""
    shipped = (REPO / "pipelines" / "audio_mfcc.toml").read_text()
    shipped = shipped.replace('experiment = "audio_mfcc"', "enabled = false")
    key = mfcc.split(" = ")[0]
    spec = write(tmp_path, re.sub(rf"(?m)^{key} = \d+", mfcc, shipped))
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 2 and f"invalid spec: key 'features.mfcc': {message}" in err, err


UNUSED_KEYS = [  # was: each accepted and ignored
    (PARQUET, "[source]", 'separator = ";"', "source.separator", "format = 'parquet'"),
    (PARQUET, "[source]", 'null_values = ["NA"]', "source.null_values", "format = 'parquet'"),
    (PARQUET, "[source]", 'separator = ","', "source.separator", "format = 'parquet'"),
    (MINIMAL, "[source]", 'format = "csv"', "source.format", "dataset = 'stocks'"),
    (MINIMAL, "[source]", 'separator = ";"', "source.separator", "dataset = 'stocks'"),
    (MINIMAL, "[source]", 'null_values = ["-"]', "source.null_values", "dataset = 'stocks'"),
    (MINIMAL, "[source]", 'time_format = "%d/%m/%Y"', "source.time_format", "dataset = 'stocks'"),
    (AUDIO, "[source]", 'time_format = "%Y"', "source.time_format", "dataset = 'audio'"),
    (WAV, "[source]", 'separator = ";"', "source.separator", "format = 'wav'"),
    (AUDIO, "[features]", "history_days = 5", "features.history_days", "dataset = 'audio'"),
    (MINIMAL, "[series]", 'max_staleness = 2\nstale = "forecast"', "series.max_staleness",
     "stale = 'forecast'"),
    (NO_ID, "[series]", "max_staleness = 2", "series.max_staleness", "no series.id"),
    # was: the column of the file names read and left unused beside another id
    (PARQUET, "[source]", 'id_from_filename = "f"', "source.id_from_filename",
     "series.id = 'ticker'"),
    (PARQUET.replace('id = "ticker"\n', ""), "[source]", 'id_from_filename = "f"',
     "source.id_from_filename", "no series.id"),
    (NO_ID, "[series]", 'stale = "forecast"', "series.stale", "no series.id"),
    (MINIMAL, "[tracking]", 'enabled = false\nexperiment = "e"', "tracking.experiment",
     "enabled = false"),
]  # fmt: skip


def _with_keys(text: str, section: str, keys: str) -> str:
    if section in text:
        return text.replace(f"{section}\n", f"{section}\n{keys}\n", 1)
    return f"{text}\n{section}\n{keys}\n"


@pytest.mark.parametrize(
    ("base", "section", "keys", "key", "actual"),
    UNUSED_KEYS,
    ids=[f"{case[3]} with {case[4]}" for case in UNUSED_KEYS],
)
def test_a_key_the_other_choices_leave_unused_is_refused(
    tmp_path, base, section, keys, key, actual
):
    text = _with_keys(base, section, keys)
    if "features.mfcc" not in text and 'format = "wav"' in text:
        text += "\n[features.mfcc]\nn_mfcc = 4\n"
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, text))
    message = str(info.value)
    assert f"key {key!r} is used only with" in message and f"this spec has {actual}" in message
    assert f"Remove {key}" in message


def test_the_keys_each_source_uses_are_accepted(tmp_path):
    csv = CSV_SPEC.format(
        source='separator = ","\nnull_values = ["NA"]\ntime_format = "%Y-%m-%d"\n'
        'id_from_filename = "id"',
        series='stale = "forecast"',
        model="",
    )
    load_spec(write(tmp_path, csv))
    parquet = _with_keys(PARQUET, "[source]", 'time_format = "%Y"\nid_from_filename = "ticker"')
    load_spec(write(tmp_path, _with_keys(parquet, "[series]", "max_staleness = 2")))
    tracked = _with_keys(MINIMAL, "[tracking]", 'enabled = true\nexperiment = "e"')
    load_spec(write(tmp_path, _with_keys(tracked, "[features]", "history_days = 5")))


def integer_rows(n: int = 12) -> str:
    lines = ["id,date,y"] + [f"{key},{i},{i % 4 + 0.5}" for key in "ab" for i in range(n)]
    return "\n".join(lines) + "\n"


def test_history_days_on_an_integer_time_column_exits_2(tmp_path, capsys, tree_guard):
    # was: "the last 5 days" of integer steps kept every row
    spec = csv_project(tmp_path, integer_rows(), series='freq = "1i"')
    assert run_cli(capsys, "run", str(spec), "--dry-run")[0] == 0
    spec.write_text(spec.read_text() + "\n[features]\nhistory_days = 5\n")
    guard = tree_guard(tmp_path)
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 2, err
    assert "key 'features.history_days' is used only with a Date or Datetime time column" in err
    assert "time column 'date' of type Int64" in err and "Remove features.history_days" in err
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("times", "dtype"),
    [
        (pl.col("date").str.to_date(), "Date"),
        (pl.col("date").str.to_datetime(time_unit="us"), "Datetime(time_unit='us'"),
    ],
)
def test_time_format_with_a_typed_parquet_time_column_exits_2(
    tmp_path, capsys, tree_guard, times, dtype
):
    """source.time_format with Parquet files whose time column is already typed (dates,
    datetimes) was silently unused; a key is used or refused, even at a value
    that reads as right. Refused where the files' schema is known (--dry-run too), naming the
    key, the column's dtype and the fix; a time column of text is still parsed with it."""
    import io

    (tmp_path / "data").mkdir()
    text = pl.read_csv(io.StringIO(rows()), schema_overrides={"date": pl.String})
    spec = write(tmp_path, PARQUET_SPEC)
    text.write_parquet(tmp_path / "data" / "prices.parquet")
    assert run_cli(capsys, "run", str(spec), "--dry-run")[0] == 0  # text: parsed
    text.with_columns(times).write_parquet(tmp_path / "data" / "prices.parquet")
    guard = tree_guard(tmp_path)
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 2, err
    assert "key 'source.time_format' = '%Y-%m-%d' parses a time column of text" in err, err
    where = "time column 'date' of the files of source.path 'data/*.parquet' is of type"
    assert f"{where} {dtype}" in err, err
    assert "Remove source.time_format" in err, err
    guard.assert_unchanged()


@pytest.mark.parametrize("kind", ["categorical", "enum"])
def test_time_format_parses_a_parquet_time_column_of_categorical_text(tmp_path, capsys, kind):
    """A Parquet time column of text stored as Categorical or Enum (e.g. written by pandas)
    with source.time_format was refused as "nothing to parse ... Remove source.time_format",
    which left times of text no check reads. It is text: parsed with the key, as String is,
    into the same forecasts."""
    import io

    (tmp_path / "data").mkdir()
    text = pl.read_csv(io.StringIO(rows()), schema_overrides={"date": pl.String})
    spec = write(tmp_path, PARQUET_SPEC)
    dtype = pl.Categorical() if kind == "categorical" else pl.Enum(text["date"].unique())
    text.with_columns(pl.col("date").cast(dtype)).write_parquet(tmp_path / "data" / "p.parquet")
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 0, err
    assert "source.time_format" not in err, err


TIME_FORMAT = 'time_format = "%Y%m%d"'


@pytest.mark.parametrize("dtype", [pl.Int64, pl.UInt32, pl.Int32])
def test_time_format_parses_parquet_integer_times_as_a_csv_file_does(tmp_path, capsys, dtype):
    """Integers such as 20240101 with time_format = "%Y%m%d" in Parquet were refused ("of
    type Int64: there is nothing to parse"), while a CSV file of the same values was read
    (its time column is read as text with the key). Both are parsed by the integers'
    decimal text: the same panel and as-of, --dry-run and run alike."""
    import io

    (tmp_path / "data").mkdir()
    text = pl.read_csv(io.StringIO(rows()), schema_overrides={"date": pl.String})
    spec = write(tmp_path, PARQUET_SPEC.replace("%Y-%m-%d", "%Y%m%d"))
    times = pl.col("date").str.replace_all("-", "").cast(dtype)
    text.with_columns(times).write_parquet(tmp_path / "data" / "prices.parquet")
    code, parquet = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 0, parquet
    csv_spec = csv_project(tmp_path / "csv", rows().replace("-", ""), source=TIME_FORMAT)
    code, csv_err = run_cli(capsys, "run", str(csv_spec), "--dry-run")
    assert code == 0, csv_err
    for prefix in ("data ", "plan "):  # the same panel, and the same as-of (its outputs' name)
        (line,) = [line for line in parquet.splitlines() if line.startswith(prefix)]
        (same,) = [line for line in csv_err.splitlines() if line.startswith(prefix)]
        assert line.replace(str(tmp_path), "") == same.replace(str(tmp_path / "csv"), ""), line
    assert "freq='1d', length min/max=12/12" in parquet and "hostile/2024-01-12" in parquet


def test_time_format_with_parquet_float_times_exits_2(tmp_path, capsys, tree_guard):
    """Float times (20240101.0) with time_format: a float's text fits no format. Refused
    before the run, naming the column's type and the fix (integers or text)."""
    import io

    (tmp_path / "data").mkdir()
    text = pl.read_csv(io.StringIO(rows()), schema_overrides={"date": pl.String})
    spec = write(tmp_path, PARQUET_SPEC.replace("%Y-%m-%d", "%Y%m%d"))
    times = pl.col("date").str.replace_all("-", "").cast(pl.Float64)
    text.with_columns(times).write_parquet(tmp_path / "data" / "prices.parquet")
    guard = tree_guard(tmp_path)
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 2, err
    assert "source.path 'data/*.parquet' is of type Float64: a float's text" in err, err
    assert "Write the column as integers (e.g. pl.col(...).cast(pl.Int64)) or as text" in err
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("times", "dtype"),
    [
        (pl.col("date").str.replace_all("-", "").cast(pl.Decimal(10, 0)), "Decimal("),
        (pl.col("date").str.ends_with("1"), "Boolean"),
    ],
)
def test_time_format_with_parquet_times_neither_text_nor_integers_names_the_fix(
    tmp_path, capsys, tree_guard, times, dtype
):
    """A Parquet time column of decimals or Booleans with time_format was told "there is
    nothing to parse ... Remove source.time_format (the files store the times typed)": they
    are not times, and without the key the column is refused as not a time. The fix named is
    the float's: integers or text."""
    import io

    (tmp_path / "data").mkdir()
    text = pl.read_csv(io.StringIO(rows()), schema_overrides={"date": pl.String})
    spec = write(tmp_path, PARQUET_SPEC.replace("%Y-%m-%d", "%Y%m%d"))
    text.with_columns(times).write_parquet(tmp_path / "data" / "prices.parquet")
    guard = tree_guard(tmp_path)
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 2, err
    assert f"is of type {dtype}" in err and "the files store the times typed" not in err, err
    assert "it holds neither text nor integers, the values a format reads. Write the column" in err
    guard.assert_unchanged()


@pytest.mark.parametrize("time_format", [None, "%Y-%m-%d"])
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_time_column_without_values_is_named(tmp_path, capsys, fmt, time_format):
    """A time column with no value (a Parquet column of type Null, a CSV column left empty)
    was refused as "of type Null: there is nothing to parse" (with time_format) or as "No
    series has a value of the target" (without): it is named as having no values, with the
    fix."""
    frame = pl.DataFrame({"id": ["a"] * 12, "date": [None] * 12, "y": [1.5] * 12})
    (tmp_path / "data").mkdir()
    source = f'time_format = "{time_format}"' if time_format else ""
    spec = write(tmp_path, CSV_SPEC.format(source=source, series="", model=""))
    if fmt == "parquet":
        frame.write_parquet(tmp_path / "data" / "p.parquet")
        text = spec.read_text().replace("*.csv", "*.parquet")
        spec.write_text(text.replace('"csv"', '"parquet"'))
    else:
        frame.write_csv(tmp_path / "data" / "p.csv")
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3, err
    assert f"Time column 'date' of source.path 'data/*.{fmt}' has no values: all 12 rows are " in (
        err
    )
    assert "write the times into the column, or set [series] time to the column" in err, err
    assert "of type Null:" not in err and "No series has a value" not in err, err


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_times_before_the_year_1_are_refused_naming_the_fix(tmp_path, capsys, tree_guard, fmt):
    """Text -20240101 read with time_format = "%Y%m%d" (the year -2024), and a Parquet Date
    column 4050 years back, crashed the run (exit 1, "This is a bug in forecaster": "year
    -2024 is out of range" when the as-of was taken). Refused before it (exit 3), naming the
    column, the rows out of range with a few of their times, and the spec's fix."""
    (tmp_path / "data").mkdir()
    if fmt == "csv":
        spec = csv_project(tmp_path, rows().replace("2024-01-", "-202401"), source=TIME_FORMAT)
        shown, key = "-2024-01-01, -2024-01-02, -2024-01-03", " (or source.time_format '%Y%m%d'"
    else:
        spec = write(tmp_path, PARQUET_SPEC.replace('time_format = "%Y-%m-%d"', ""))
        frame = pl.read_csv(rows().encode(), try_parse_dates=True)
        frame = frame.with_columns(pl.col("date").dt.offset_by("-4050y"))
        frame.write_parquet(tmp_path / "data" / "prices.parquet")
        shown, key = "-2026-01-01, -2026-01-02, -2026-01-03", ", or drop their rows."
    guard = tree_guard(tmp_path)
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3, err
    assert "Time column 'date' holds times out of range: from -20" in err, err
    assert "(0001-01-01 to 9999-12-31: the years of Python's datetime)" in err, err
    assert (
        f"24 rows are out of it, e.g. {shown}. Fix those times in source.path 'data/*.{fmt}'"
        in (err)
    )
    assert key in err and "This is a bug" not in err, err
    guard.assert_unchanged()


PARQUET_SPEC = CSV_SPEC.format(source='time_format = "%Y-%m-%d"', series="", model="").replace(
    'path = "data/*.csv"\nformat = "csv"', 'path = "data/*.parquet"\nformat = "parquet"'
)


def test_tune_without_a_validation_split_exits_2_before_the_data(tmp_path, capsys, tree_guard):
    """[model] validation_size = 0 with [training] tune = true passed --dry-run, and the run
    read the data and exited 3 advising "pass a metric callable", which a spec cannot. The
    spec check refuses it (tune's own rule), as do run --tune and the tune command."""
    spec = csv_project(tmp_path, rows(), model="validation_size = 0")
    guard = tree_guard(tmp_path)
    for args in (("run", "--tune", "--dry-run"), ("run", "--tune"), ("tune",)):
        code, err = run_cli(capsys, args[0], str(spec), *args[1:])
        assert code == 2, (args, err)
        assert "tune ranks the trials by 'val_loss', measured on the validation split" in err
        assert "validation_size=0 disables it" in err and "metric callable" not in err, err
        assert "Set validation_size > 0 (e.g. 0.1), or run without --tune" in err, err
    guard.assert_unchanged()
    spec.write_text(spec.read_text() + "\n[training]\ntune = true\n")
    guard = tree_guard(tmp_path)
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 2, err
    assert "key 'training.tune' is true, but tune ranks the trials by 'val_loss'" in err, err
    guard.assert_unchanged()


def plan_of(capsys: pytest.CaptureFixture[str], spec: Path, *flags: str) -> str:
    code, err = run_cli(capsys, "run", str(spec), "--dry-run", *flags)
    assert code == 0, err
    return next(line for line in err.splitlines() if line.startswith("plan"))


def test_the_dry_run_plans_what_tune_resume_reuse_and_force_would_do(tmp_path, capsys):
    # was: "fit RNNForecaster ..., write ..." whatever the flags asked for
    spec = csv_project(tmp_path, rows())
    assert "plan     fit RNNForecaster (lookback 4, horizon 2), backtest 0 folds, write " in (
        plan_of(capsys, spec)
    )
    tuned = plan_of(capsys, spec, "--tune", "--resume")
    assert tuned.startswith("plan     tune RNNForecaster (20 trials, no time limit, over ")
    assert "over cell, head, segment_length, nonlinearity, num_layers, " in tuned
    assert "[model] fixes lookback = 4, hidden_size = 4; minimising val_loss) in the study " in (
        tuned
    )
    assert " in the study hostile-" in tuned
    assert "--resume: nothing to resume" in tuned
    assert "from the start (--resume: no checkpoint in " in plan_of(capsys, spec, "--resume")
    text = spec.read_text()
    spec.write_text(text.replace("[model]", "[training]\ntune = true\ntrials = 3\n\n[model]"))
    assert "tune RNNForecaster (3 trials" in plan_of(capsys, spec)
    spec.write_text(text.replace("[model]", "[training]\nreuse_model = true\n\n[model]"))
    assert "plan     reuse the model models/hostile/latest.json names" in plan_of(capsys, spec)
    spec.write_text(text)
    assert run_cli(capsys, "run", str(spec))[0] == 0
    assert "plan     nothing: the outputs in " in plan_of(capsys, spec)
    assert ", replace (--force) " in plan_of(capsys, spec, "--force")


# the command line's logging of Optuna, reruns of an edited spec, --out placement
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("json_logs", [False, True])
def test_the_cli_routes_optuna_records_and_puts_optuna_logging_back(capfd, json_logs):
    """Optuna's records go through the command's logging (none with --quiet, JSON lines with
    --json-logs), and Optuna's own handler is back afterwards (was: Optuna printed them
    itself on stderr, whatever the options)."""
    import json
    import logging

    with capfd.disabled():  # Optuna's own handler takes the stderr of its first import
        optuna = pytest.importorskip("optuna")
    from forecaster.jobs.cli import _logging_to

    record = optuna.logging.get_logger("optuna.study.study")
    handlers = list(logging.getLogger("optuna").handlers)
    with _logging_to(quiet=True, verbose=False, json_logs=json_logs, optuna=True):
        record.info("Trial 0 finished with value: 1.0")
    out, err = capfd.readouterr()
    assert err == ""
    if json_logs:
        (line,) = out.splitlines()
        assert json.loads(line)["logger"] == "optuna.study.study" and "Trial 0" in line
    else:
        assert out == ""
    assert logging.getLogger("optuna").handlers == handlers  # forecaster.tune keeps Optuna's


@pytest.mark.slow
def test_tune_quiet_prints_nothing_and_json_logs_only_json_lines(tmp_path, capfd, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)  # the default study storage is in the working directory

    with capfd.disabled():  # Optuna's own handler takes the stderr of its first import
        pytest.importorskip("optuna")
    spec = csv_project(tmp_path, rows(24))
    assert main(["tune", str(spec), "--trials", "1", "--quiet"]) == 0
    assert capfd.readouterr() == ("", "")  # was: "[I ...] A new study created in RDB ..."
    assert main(["run", str(spec), "--tune", "--json-logs"]) == 0
    out, err = capfd.readouterr()
    records = [json.loads(line) for line in (out + err).splitlines()]
    assert any(record.get("logger", "").startswith("optuna") for record in records)


def test_a_rerun_of_an_edited_spec_refuses_the_old_outputs(tmp_path, capsys):
    """The outputs of another version of the spec are refused, naming both hashes, and
    --force replaces them (was: exit 0 reporting the old spec's forecasts); a comment
    leaves the hash as it was, so such a rerun still reports its outputs."""
    import json

    spec = csv_project(tmp_path, rows(12))
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    folder = tmp_path / "outputs" / "hostile" / "2024-01-12"
    before = json.loads((folder / "summary.json").read_text())["spec_hash"]
    spec.write_text("# a comment\n" + spec.read_text())
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0 and "already exist" in err, err
    spec.write_text(spec.read_text().replace("horizon = 2", "horizon = 3"))
    after = spec_hash(load_spec(spec)[0])
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 2 and "made by another version of the spec" in err, err
    assert f"spec hash {before}; the spec now has {after}" in err and "--force" in err
    code, err = run_cli(capsys, "run", str(spec), "--force")
    assert code == 0, err
    assert json.loads((folder / "summary.json").read_text())["spec_hash"] == after
    assert pl.read_parquet(folder / "forecasts.parquet").group_by("id").len()["len"].max() == 3


_READ_AS_DATA = "source.path 'data/**/*.csv' would read"
_RUN_OUTPUTS = "output.dir ('outputs/{name}/{as_of}') names for the outputs of a run"


@pytest.mark.parametrize(
    ("command", "out", "message"),
    [
        (("predict", "--model", "models/none"), "data/forecast.csv", _READ_AS_DATA),
        (("backtest",), "data/backtest.csv", _READ_AS_DATA),
        (("fit",), "data/model", _READ_AS_DATA),  # the glob below reads data/model/*.csv
        (("fit",), "outputs/hostile/2024-01-12/model", _RUN_OUTPUTS),
        (("fit",), "outputs/hostile/2023-12-31", _RUN_OUTPUTS),
        (
            ("predict", "--model", "models/none"),
            "outputs/hostile/2024-01-12/forecasts.parquet",
            _RUN_OUTPUTS,
        ),
        (("backtest",), "outputs/hostile/2024-01-12/b.parquet", _RUN_OUTPUTS),
    ],
)
def test_out_that_a_run_would_read_or_owns_exits_2(
    tmp_path, capsys, tree_guard, command, out, message
):
    """``--out`` where the spec's source.path glob would read it (was: written, and every
    later run failed on it), or inside (for a model: or being) a folder output.dir names for
    the outputs of a run (was: fit saved there, and the run of that as-of was blocked), is
    refused before any work, as output.dir is."""
    spec = csv_project(tmp_path, rows(12))
    spec.write_text(spec.read_text().replace('"data/*.csv"', '"data/**/*.csv"'))
    guard = tree_guard(tmp_path)
    args = (*command[1:], "--out", str(tmp_path / out))
    code, err = run_cli(capsys, command[0], str(spec), *args)
    assert code == 2 and "argument --out" in err, err
    assert message in err, err
    guard.assert_unchanged()


@pytest.mark.parametrize("storage", ["outputs/mini/2024-01-12/optuna.db", "outputs/mini/x/s.db"])
def test_a_study_storage_inside_a_run_folder_is_refused_when_the_spec_loads(
    tmp_path, capsys, tree_guard, storage
):
    """training.storage inside a folder output.dir names for a run's outputs: `run --tune`
    tuned and fitted into it, then exited 2 at publish ("folder forecaster did not write ...
    Choose a new or empty folder") without naming the key. Refused up front now, as --out is
    there, naming training.storage."""
    spec = scheduled_project(tmp_path, rows(12), training={"storage": f"sqlite:///{storage}"})
    (tmp_path / "outputs" / "mini" / "2024-01-12").mkdir(parents=True)
    guard = tree_guard(tmp_path)
    code, err = run_cli(capsys, "run", str(spec), "--as-of", "2024-01-12", "--tune")
    assert code == 2 and "key 'training.storage'" in err, err
    assert "names for the outputs of a run" in err and "studies/optuna.db" in err, err
    guard.assert_unchanged()  # no study, no model
    # beside the run folders (no folder of an as-of) is a path of its own
    spec.write_text(spec.read_text().replace(storage, "outputs/mini/optuna.db"))
    assert load_spec(spec)[0].training.storage == "sqlite:///outputs/mini/optuna.db"


def test_a_foreign_folder_at_the_default_output_dir_gets_other_advice(tmp_path, capsys):
    """A spec with the default output.dir is not told to use it (was: "Give the outputs a
    folder of their own, such as 'outputs/{name}/{as_of}'", the value it has)."""
    spec = csv_project(tmp_path, rows(12))
    folder = tmp_path / "outputs" / "hostile" / "2024-01-12"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 2 and "forecaster did not write (it holds notes.txt)" in err, err
    assert "such as 'outputs/{name}/{as_of}'" not in err and "out of the way" in err, err


# ------------------------------------------------------------------------------------------
# audio sources: format = "wav" paths, a missing audio extra, the stale-series advice
# ------------------------------------------------------------------------------------------

WAV_SPEC = """
[pipeline]
name = "wav"

[source]
path = "{path}"
format = "wav"

[features.mfcc]
n_mfcc = 3
n_mels = 10

[series]
id = "clip"
time = "frame"
targets = ["mfcc_0", "mfcc_1", "mfcc_2"]
freq = "1i"
{series}

[model]
lookback = 8
horizon = 2
max_epochs = 1
"""


def _clips(folder: Path, names: dict[str, int], sr: int = 8000) -> None:
    """Write ``names`` (file name -> samples) as tones in ``folder``."""
    import numpy as np

    sf = pytest.importorskip("soundfile")
    pytest.importorskip("librosa")
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in names.items():
        sf.write(str(folder / name), 0.5 * np.sin(np.arange(n) * 0.3), sr, subtype="PCM_16")


def _wav_spec(tmp_path: Path, path: str, series: str = 'stale = "forecast"') -> Path:
    return write(tmp_path, WAV_SPEC.format(path=path, series=series))


@pytest.mark.filterwarnings("ignore:1 series ends before the as-of")
@pytest.mark.parametrize(
    ("path", "clips"),
    [
        ("clips/*.wav", ["a", "b"]),
        ("clips/a.wav", ["a"]),
        ("clips", ["a", "b"]),  # a folder: its .wav files
        ("upper/*.WAV", ["C", "D"]),
        ("upper", ["C", "D"]),  # in any case
    ],
)
def test_a_wav_source_path_is_a_glob_a_file_or_a_folder(tmp_path, path, clips):
    # was: only a folder, and only its lower-case *.wav (Audio folder .../clips/*.wav does not
    # exist or is not a folder ... pass an existing folder as `path`)
    _clips(tmp_path / "clips", {"a.wav": 1600, "b.wav": 2400})
    _clips(tmp_path / "upper", {"C.WAV": 1600, "D.WAV": 2400})
    (tmp_path / "clips" / "notes.txt").write_text("not audio")
    spec, root = load_spec(_wav_spec(tmp_path, path))
    frame, _ = prepare_data(spec, root, None)
    assert sorted(frame["clip"].unique()) == clips
    assert frame.filter(clip=clips[0]).height == 1 + 1600 // 80


def test_wav_source_errors_speak_of_source_path(tmp_path):
    _clips(tmp_path / "clips" / "x", {"a.wav": 1600})
    _clips(tmp_path / "clips" / "y", {"a.wav": 1600})
    spec, root = load_spec(_wav_spec(tmp_path, "clips/**/*.wav"))
    with pytest.raises(forecaster.DataValidationError, match="clip name") as info:
        prepare_data(spec, root, None)
    assert "Narrow source.path" in str(info.value) and "pattern" not in str(info.value)
    (tmp_path / "clips" / "y" / "a.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    spec, root = load_spec(_wav_spec(tmp_path, "clips/y/*.wav"))
    with pytest.raises(forecaster.DataValidationError, match=r"a\.wav") as info:
        prepare_data(spec, root, None)
    assert "narrow source.path" in str(info.value) and "`pattern`" not in str(info.value)
    spec, root = load_spec(_wav_spec(tmp_path, "nowhere/*.wav"))
    with pytest.raises(forecaster.DataValidationError, match=r"No file matches source\.path"):
        prepare_data(spec, root, None)


@pytest.mark.filterwarnings("ignore:1 series ends before the as-of")
def test_wav_clips_of_different_rates_warn_with_the_spec_key(tmp_path):
    _clips(tmp_path / "clips", {"a.wav": 1600})
    _clips(tmp_path / "clips", {"b.wav": 3200}, sr=16000)
    spec, root = load_spec(_wav_spec(tmp_path, "clips/*.wav"))
    with pytest.warns(ForecasterWarning, match=r"different sample rates") as record:
        prepare_data(spec, root, None)
    message = "\n".join(str(w.message) for w in record)
    assert "8,000 Hz: a; 16,000 Hz: b" in message
    assert "[features.mfcc] sample_rate = 8000" in message


def test_stale_advice_fits_the_source(tmp_path):
    # was: "Drop them from the source (e.g. source.tickers, a narrower source.path)" for audio
    _clips(tmp_path / "clips", {"a.wav": 1600, "b.wav": 2400})
    spec, root = load_spec(_wav_spec(tmp_path, "clips", series=""))
    with pytest.warns(ForecasterWarning, match="series ends? before the as-of") as record:
        prepare_data(spec, root, None)
    message = "\n".join(str(w.message) for w in record)
    assert "source.tickers" not in message
    assert "series.stale = 'forecast' forecasts each from its own end" in message
    assert "a narrower source.path drops clips" in message
    assert message.startswith("1 series ends before the as-of 30"), message  # was "1 ... end"
    assert (  # was "All of them end more than ... and are left out ... forecasts them"
        "It ends more than max_staleness=2 steps before it and is left out of the forecast "
        "(series.stale = 'exclude'; 'forecast' forecasts it from its last time)."
    ) in message, message
    spec, root = load_spec(write(tmp_path, MINIMAL))
    with pytest.warns(ForecasterWarning, match="series ends? before the as-of") as record:
        prepare_data(spec, root, None)
    assert "Drop them from the source (source.tickers)" in str(record[0].message)


def test_a_missing_audio_extra_is_a_clean_error_naming_the_extra(tmp_path, capsys, monkeypatch):
    # was: "Unexpected ImportError in the pipeline run: ... This is a bug in forecaster"
    import sys

    monkeypatch.setitem(sys.modules, "librosa", None)  # the audio extra is not installed
    (tmp_path / "pipelines").mkdir()
    spec = tmp_path / "pipelines" / "audio_mfcc.toml"
    spec.write_text((REPO / "pipelines" / "audio_mfcc.toml").read_text())
    _clips_free = _wav_spec(tmp_path, "clips/*.wav")
    for path in (spec, _clips_free):
        code, err = run_cli(capsys, "run", str(path), "--dry-run")
        assert code == 1, err
        assert 'pip install "forecaster-rnn[audio]"' in err
        assert "bug in forecaster" not in err


def test_tune_without_optuna_says_only_that_the_extra_is_missing(tmp_path, capsys, monkeypatch):
    # was: the data's stale-series warning and "MLflow tracking is unavailable (...); the study
    # is not logged" first, then the missing extra
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)  # neither the tune extra ...
    monkeypatch.setitem(sys.modules, "mlflow", None)  # ... nor the track extra is installed
    code, err = run_cli(capsys, "tune", str(write(tmp_path, MINIMAL)), "--trials", "1")
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and 'pip install "forecaster-rnn[tune]"' in lines[0]
    assert not (tmp_path / "models").exists()


def test_an_import_error_of_no_extra_is_still_a_bug():
    from forecaster.jobs.entry_errors import translated_errors

    bug = pytest.raises(forecaster.ForecasterError, match=r"Unexpected ImportError.*a bug")
    with bug, translated_errors("the pipeline run"):
        raise ImportError("cannot import name 'x' from 'forecaster.nowhere'")
    # the extra is recognised by the error's class, not by a hint in its text
    with bug, translated_errors("the pipeline run"):
        raise ImportError('no module named x; pip install "forecaster-rnn[tune]"')


@pytest.mark.parametrize(
    ("module", "importer", "extra"),
    [
        ("optuna", "forecaster.tuning.common:import_optuna", "tune"),
        ("mlflow", "forecaster.tracking.config:import_mlflow", "track"),
        ("librosa", "forecaster.data.audio:import_audio_backend", "audio"),
    ],
)
def test_each_missing_extra_is_a_missing_extra_error_that_runs_translate(
    monkeypatch, module, importer, extra
):
    import importlib
    import sys

    from forecaster.exceptions import MissingExtraError
    from forecaster.jobs.entry_errors import translated_errors

    monkeypatch.setitem(sys.modules, module, None)  # not installed
    path, name = importer.split(":")
    load = getattr(importlib.import_module(path), name)
    with pytest.raises(ImportError) as caught:  # what `except ImportError` code expects
        load()
    assert isinstance(caught.value, MissingExtraError)
    assert f"forecaster-rnn[{extra}]" in str(caught.value)
    clean = pytest.raises(forecaster.ForecasterError, match=r"An optional dependency .* stops")
    with clean as raised, translated_errors("the pipeline run"):
        load()
    assert "bug" not in str(raised.value)


def test_csv_dates_with_day_and_month_in_an_unsaid_order_are_refused(tmp_path, capsys):
    """US month-starts 01/01/2024 ... 12/01/2024 were read day first (January 1 to 12): the
    run detected daily data and forecast January 13-15 "as of 2024-01-12", without a word."""
    lines = ["id,date,y"] + [f"a,{m:02d}/01/2024,{m}.5" for m in range(1, 13)]
    spec = csv_project(tmp_path, "\n".join(lines) + "\n")
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3 and "so their day and month can be read either way" in err, err
    assert "'%m/%d/%Y' for month first" in err
    spec.write_text(spec.read_text().replace("[source]", '[source]\ntime_format = "%m/%d/%Y"'))
    assert load_spec(spec)[0].source.time_format == "%m/%d/%Y"
    frame, when = prepare_data(*load_spec(spec), None)
    assert frame["date"].to_list()[:2] == [dt.date(2024, 1, 1), dt.date(2024, 2, 1)]
    assert when.label == "2024-12-01"


@pytest.mark.parametrize(
    ("files", "refusal"),
    [
        # an ISO file sorted first hid a US file's month-starts, read as January 1-12
        ({"a": "2024-01-{d:02d}", "b": "{m:02d}/01/2024"}, r"of b\.csv .* can be read either way"),
        # a day above 12 settles the order: day first is read, month first refused
        ({"a": "{d}/01/2024"}, None),
        ({"a": "{d}.01.2024 10:00"}, None),
        ({"a": "2024-01-{d:02d}", "b": "{d}/01/2024"}, None),
        ({"a": "01/{d}/2024"}, r"such as '01/13/2024', month first"),
        ({"a": "{m:02d}/{d}/2024"}, r"both '28/12/2024' \(day first\) and '01/13/2024'"),
        # a day above 12, but a year of two digits: read as the year 24
        ({"a": "{d}/01/24"}, r"such as '13/01/24', whose year has fewer than four digits"),
    ],
)
def test_csv_day_and_month_order_is_settled_by_each_file(tmp_path, files, refusal):
    """The check read one value, the first of the first file: day-first dates that a day
    above 12 settles (13/01/2024) were refused as ambiguous, and a second file's US dates
    were read day first."""
    (tmp_path / "data").mkdir()
    for name, pattern in files.items():
        days = [pattern.format(d=13 + i, m=1 + i % 12) for i in range(12)]
        if name == "a" and "{m" in pattern and "{d}" in pattern:
            days.append("28/12/2024")  # one day-first date among month-first ones
        body = "".join(f"{name},{day},{i}.5\n" for i, day in enumerate(days))
        (tmp_path / "data" / f"{name}.csv").write_text("id,date,y\n" + body)
    spec = write(tmp_path, CSV_SPEC.format(source="", series="", model=""))
    if refusal is None:
        frame, _ = prepare_data(*load_spec(spec), None)
        for name in files:
            dates = frame.filter(pl.col("id") == name)["date"].cast(pl.Date)
            assert (dates.min(), dates.max()) == (dt.date(2024, 1, 13), dt.date(2024, 1, 24))
        return
    with pytest.raises(forecaster.ForecasterError, match=refusal):
        prepare_data(*load_spec(spec), None)


def test_csv_time_format_with_a_full_iso_datetime_keeps_the_time(tmp_path):
    """time_format="%+" (a whole ISO 8601 timestamp) was read as dates: hours were dropped."""
    lines = ["id,date,y"] + [f"a,2024-01-01T{h:02d}:00:00+00:00,{h}.5" for h in range(12)]
    spec = csv_project(tmp_path, "\n".join(lines) + "\n", source='time_format = "%+"')
    frame, _ = prepare_data(*load_spec(spec), None)
    assert frame["date"].dt.hour().to_list() == list(range(12))


def test_csv_ids_keep_their_leading_zeros(tmp_path):
    """Ids 007, 010 and 100 were read as the integers 7, 10 and 100 (and 07 and 7 would have
    been one series); ids written as plain integers are still read as integers."""
    text = rows(6, ids=("007", "010", "100"))
    frame, _ = prepare_data(*load_spec(csv_project(tmp_path, text)), None)
    assert frame.schema["id"] == pl.String
    assert sorted(frame["id"].unique().to_list()) == ["007", "010", "100"]
    plain = tmp_path / "plain"
    frame, _ = prepare_data(*load_spec(csv_project(plain, rows(6, ids=("7", "10")))), None)
    assert frame.schema["id"] == pl.Int64 and sorted(frame["id"].unique()) == [7, 10]


def test_a_series_whose_last_values_are_missing_is_stale_as_if_its_rows_were_absent(tmp_path):
    """b's last 5 rows held no y: with missing='ffill' it was filled forward and forecast from
    the last row present, neither stale nor warned about, while the same data without those
    rows was 5 steps behind and excluded."""
    header, *present = uneven_rows({"a": 12, "b": 12}).splitlines()
    late = {f"b,2024-01-{day:02d}" for day in range(8, 13)}  # b's last 5 rows, y left empty
    lines = [header] + [row[:12] + "," if row[:12] in late else row for row in present]
    spec_file = scheduled_project(
        tmp_path, "\n".join(lines) + "\n", series={"max_staleness": 1, "missing": "ffill"}
    )
    with pytest.warns(ForecasterWarning, match=r"b \(last 2024-01-07\) 5 steps behind"):
        frame, when = prepare_data(*load_spec(spec_file), None)
    assert when.excluded == ("b",) and when.label == "2024-01-12"
    assert frame.filter(pl.col("id") == "b")["date"].max() == dt.date(2024, 1, 7)


def test_the_summary_scores_each_target_of_a_run_on_its_own():
    """Two targets (load in MW: mae 100, naive 50; temp in degrees: 1, 2) were averaged into
    backtest_mae 50.5 (naive 26, "targets' mean skill 1.250"), a number of no unit: each
    target's scores are summary.json's backtest_<target>_<score>, as its MLflow keys; one
    target keeps backtest_<score>."""
    from types import SimpleNamespace

    from forecaster.jobs.run import backtest_scores, score_lines

    spec = SimpleNamespace(evaluation=SimpleNamespace(metrics=["mae"]))
    aggregate = pl.DataFrame(
        {
            "target": ["load", "temp (°C)"],
            "n": [10, 10],
            "n_naive": [10, 10],
            "mae": [100.0, 1.0],
            "mae_naive": [50.0, 2.0],
            "mae_skill_naive": [2.0, 0.5],
        }
    )
    two = backtest_scores(spec, SimpleNamespace(aggregate=aggregate))
    assert two == {
        "backtest_load_mae": 100.0,
        "backtest_load_mae_naive": 50.0,
        "backtest_load_mae_skill_naive": 2.0,
        "backtest_temp __C__mae": 1.0,
        "backtest_temp __C__mae_naive": 2.0,
        "backtest_temp __C__mae_skill_naive": 0.5,
    }
    assert score_lines(two)[0] == ("backtest_load_mae", "100 (naive 50, skill 2.000)")
    one = backtest_scores(spec, SimpleNamespace(aggregate=aggregate.head(1)))
    assert one == {
        "backtest_mae": 100.0,
        "backtest_mae_naive": 50.0,
        "backtest_mae_skill_naive": 2.0,
    }
    assert score_lines(one) == [("backtest_mae", "100 (naive 50, skill 2.000)")]


def test_the_study_is_named_after_what_its_trials_scores_depend_on(tmp_path):
    """Raising [training] trials (or changing [evaluation], [tracking], [output]) in the spec
    started a new study from trial 0 beside the old one; --trials extended it. The model,
    data and objective still name another study."""
    from forecaster.jobs.fitting import study_name

    spec_path = csv_project(tmp_path, rows())
    base = spec_path.read_text()
    spec, root = load_spec(spec_path)
    _, when = prepare_data(spec, root, None)
    named = study_name(spec, when)
    for extra in ("\n[training]\ntrials = 50\ntimeout = 60\n", "\n[output]\nplot_series = 1\n"):
        spec_path.write_text(base + extra)
        assert study_name(load_spec(spec_path)[0], when) == named, extra
    spec_path.write_text(base.replace("hidden_size = 4", "hidden_size = 8"))
    assert study_name(load_spec(spec_path)[0], when) != named


def _study_trials(root: Path) -> dict[str, list[dict[str, object]]]:
    """The params of each finished trial of each study in the project's ``studies.db``."""
    import optuna

    storage = f"sqlite:///{root / 'studies.db'}"
    return {
        summary.study_name: [
            trial.params
            for trial in optuna.load_study(study_name=summary.study_name, storage=storage).trials
        ]
        for summary in optuna.get_all_study_summaries(storage)
    }


TUNED = {"storage": "sqlite:///studies.db"}  # the project's own study storage


@pytest.mark.slow
def test_tune_keeps_the_model_parameters_the_spec_sets(tmp_path, capsys):
    """[model] hidden_size = 4, lookback = 4: `forecaster tune` sampled hidden_size 32 to 256
    and the lookback from the default search space, and saved a model with them, without a
    word. The spec's values are kept (a conditional parameter their fixed parent leaves
    unused is not searched either), and the command says so."""
    pytest.importorskip("optuna")
    spec = scheduled_project(tmp_path, rows(24), model={"head": "direct"}, training=TUNED)
    code, err = run_cli(capsys, "tune", str(spec), "--trials", "2")
    assert code == 0, err
    model = forecaster.load(tmp_path / "models" / "mini" / "2024-01-24-tuned")
    assert (model.hidden_size, model.lookback, model.head) == (4, 4, "direct")
    (trials,) = _study_trials(tmp_path).values()
    assert len(trials) == 2 and all("num_layers" in params for params in trials)
    fixed = {"hidden_size", "lookback", "head", "segment_length"}
    assert not fixed & {name for params in trials for name in params}, trials
    assert "tune     over cell, nonlinearity, num_layers, " in err, err
    assert "[model] fixes head = 'direct', lookback = 4, hidden_size = 4, so not searched " in err
    assert "segment_length (unused with head = 'direct')" in err


@pytest.mark.slow
def test_a_spec_that_fixes_one_more_parameter_tunes_a_study_of_its_own(tmp_path, capsys):
    """lr = 0.001 (its default) added to [model] leaves the spec's hash as it was, but the
    study then searches another space: it is a study of its own, not a resumed one whose
    trials sampled lr (or a refusal naming a study_name the spec cannot change)."""
    pytest.importorskip("optuna")
    from forecaster.jobs.fitting import study_name

    spec = scheduled_project(tmp_path, rows(24), training={**TUNED, "trials": 1})
    code, err = run_cli(capsys, "tune", str(spec))
    assert code == 0, err
    first, root = load_spec(spec)
    spec.write_text(spec.read_text().replace("[model]\n", "[model]\nlr = 0.001\n"))
    second, _ = load_spec(spec)
    assert spec_hash(second) == spec_hash(first)
    _, when = prepare_data(second, root, None)
    assert study_name(second, when) != study_name(first, when)
    code, err = run_cli(capsys, "run", str(spec), "--tune")
    assert code == 0, err
    assert "[model] fixes lookback = 4, hidden_size = 4, lr = 0.001\n" in err, err
    studies = _study_trials(tmp_path)
    assert [len(studies[study_name(s, when)]) for s in (first, second)] == [1, 1], studies
    assert "lr" in studies[study_name(first, when)][0]
    assert "lr" not in studies[study_name(second, when)][0]


FIXES_EVERY_SEARCHED = {
    "cell": "gru", "head": "direct", "num_layers": 1, "dropout": 0.0,
    "normalization": "last", "lr": 0.001, "weight_decay": 0.0, "batch_size": 32,
}  # fmt: skip
"""[model] values that fix every parameter of the default search space (with the small spec)."""


def test_a_spec_that_fixes_every_searched_parameter_is_refused_before_tuning(
    tmp_path, capsys, tree_guard
):
    """A tune of a spec whose [model] sets every parameter of the default search space has
    nothing to search: exit 2 naming them (was: every one of them sampled over the spec's)."""
    pytest.importorskip("optuna")
    spec = scheduled_project(tmp_path, rows(24), model=FIXES_EVERY_SEARCHED, training=TUNED)
    guard = tree_guard(tmp_path)
    for command in (("run", "--tune", "--dry-run"), ("tune", "--trials", "1")):
        code, err = run_cli(capsys, command[0], str(spec), *command[1:])
        assert code == 2, (command, err)
        assert "[model] sets every parameter the tuning searches (cell = 'gru', " in err, err
        assert "Remove from [model] those you want tuned" in err
    guard.assert_unchanged()
    (tmp_path / "data" / "prices.csv").unlink()  # run --tune refuses it before the data
    code, err = run_cli(capsys, "run", str(spec), "--tune")
    assert code == 2 and "[model] sets every parameter the tuning searches" in err, err
    spec.write_text(spec.read_text().replace("num_layers = 1\n", ""))
    (tmp_path / "data" / "prices.csv").write_text(rows(24))
    assert "over num_layers; [model] fixes cell = 'gru'" in plan_of(capsys, spec, "--tune")


def test_a_spec_that_tunes_with_nothing_to_search_is_refused_when_loaded(
    tmp_path, capsys, tree_guard, monkeypatch
):
    """training.tune = true with a [model] that fixes every searched parameter: refused when
    the spec is loaded (exit 2 naming the file and training.tune, before the data is read or
    a lock taken, by every command). It was refused by each run after the data read and the
    lock: every scheduled run failed the same way."""
    pytest.importorskip("optuna")
    training = {**TUNED, "tune": True}
    spec = scheduled_project(tmp_path, rows(24), model=FIXES_EVERY_SEARCHED, training=training)
    with pytest.raises(SpecError, match=r"key 'training.tune' is true, but \[model\] sets every"):
        load_spec(spec)
    guard = tree_guard(tmp_path)
    for command in (("run",), ("run", "--dry-run"), ("fit",)):
        code, err = run_cli(capsys, *command[:1], str(spec), *command[1:])
        assert code == 2 and f"{spec}: key 'training.tune' is true" in err, (command, err)
        assert "[model] sets every parameter the tuning searches (cell = 'gru', " in err, err
        assert "data " not in err  # refused before the data is read
    guard.assert_unchanged()
    spec.write_text(spec.read_text().replace("tune = true\n", "tune = false\n"))
    load_spec(spec)  # a spec that does not tune may fix them all
    spec.write_text(spec.read_text().replace("tune = false\n", "tune = true\n"))
    from forecaster.exceptions import MissingExtraError
    from forecaster.tuning import space

    def no_optuna() -> None:
        raise MissingExtraError("optuna is not installed")

    monkeypatch.setattr(space, "import_optuna", no_optuna)
    load_spec(spec)  # without Optuna only a tuning run needs it (and says how to install it)


def test_fit_out_replaces_only_a_model_of_the_same_parameters(tmp_path, capsys):
    """fit --out over a model of another spec (a copy kept aside, another pipeline's) replaced
    it without a word; a refit of the same spec's model there (a daily fit --out) still
    replaces it."""
    spec = csv_project(tmp_path, rows())
    kept = tmp_path / "models" / "kept"
    assert run_cli(capsys, "fit", str(spec), "--out", str(kept))[0] == 0
    weights = (kept / "weights.safetensors").read_bytes()
    assert run_cli(capsys, "fit", str(spec), "--out", str(kept))[0] == 0  # the same model
    spec.write_text(spec.read_text().replace("lookback = 4", "lookback = 3"))
    code, err = run_cli(capsys, "fit", str(spec), "--out", str(kept))
    assert code == 2 and "fitted with other parameters (lookback=4 (this fit: 3))" in err, err
    assert (kept / "weights.safetensors").read_bytes() == weights  # random_state = 0: same bytes


def test_fit_default_folder_replaces_only_a_model_of_the_same_parameters(tmp_path, capsys):
    """Without --out, fit saves to models/<name>/<as-of>: a model of another version of the
    spec there (hidden_size changed) was replaced without a word; --out refused it."""
    spec = csv_project(tmp_path, rows())
    assert run_cli(capsys, "fit", str(spec))[0] == 0
    folder = tmp_path / "models" / "hostile" / "2024-01-12"  # the as-of of rows()
    weights = (folder / "weights.safetensors").read_bytes()
    assert run_cli(capsys, "fit", str(spec))[0] == 0  # the same spec's model, refitted
    spec.write_text(spec.read_text().replace("hidden_size = 4", "hidden_size = 6"))
    code, err = run_cli(capsys, "fit", str(spec))
    assert code == 2 and "other parameters (hidden_size=4 (this fit: 6))" in err, err
    assert "default folder of fit" in err and "--out" in err, err
    assert (folder / "weights.safetensors").read_bytes() == weights


def test_tune_replaces_only_a_tuned_model_of_the_same_fixed_parameters(
    tmp_path, capsys, monkeypatch
):
    """tune saves to models/<name>/<as-of>-tuned: the tuned model of another version of the
    spec there (a [model] value changed) was replaced without a word. The parameters the
    study searches may differ: a tuning of the same spec replaces its model."""
    pytest.importorskip("optuna")
    monkeypatch.chdir(tmp_path)  # the default study storage is in the working directory
    spec = csv_project(tmp_path, rows(24))
    assert run_cli(capsys, "tune", str(spec), "--trials", "1")[0] == 0
    (folder,) = (tmp_path / "models" / "hostile").glob("*-tuned")
    assert run_cli(capsys, "tune", str(spec), "--trials", "1")[0] == 0  # the same spec
    weights = (folder / "weights.safetensors").read_bytes()
    spec.write_text(spec.read_text().replace("lookback = 4", "lookback = 3"))
    code, err = run_cli(capsys, "tune", str(spec), "--trials", "1")
    assert code == 2 and "other parameters (lookback=4 (this fit: 3))" in err, err
    assert (folder / "weights.safetensors").read_bytes() == weights


def test_fit_out_refuses_a_model_of_the_same_parameters_on_other_features(tmp_path, capsys):
    """Two audio specs that differ only in [features.mfcc] hop_length fit estimators of the
    same parameters: fit --out of one replaced the other's model without a word."""
    shipped = (REPO / "pipelines" / "audio_mfcc.toml").read_text()
    small = (
        shipped.replace("hidden_size = 64", "hidden_size = 4")
        .replace("max_epochs = 40", "max_epochs = 1")
        .replace('experiment = "audio_mfcc"', "enabled = false")  # no MLflow store here
    )
    spec = write(tmp_path, small)
    kept = tmp_path / "models" / "kept"
    assert run_cli(capsys, "fit", str(spec), "--out", str(kept))[0] == 0
    weights = (kept / "weights.safetensors").read_bytes()
    spec.write_text(small.replace("hop_length = 80", "hop_length = 160"))
    code, err = run_cli(capsys, "fit", str(spec), "--out", str(kept))
    assert code == 2 and "other parameters ([features]=" in err and "160" in err, err
    assert (kept / "weights.safetensors").read_bytes() == weights


def test_a_reused_model_keeps_its_version_and_the_pointer(tmp_path, capsys):
    """A run as of 01-12 that reused the model fitted as of 01-10 wrote model_version
    "...-2024-01-12-..." on every forecast row and moved latest.json to its copy, whose
    weights saw data to 01-10 only (a backfill as of 01-11 then refused that model)."""
    import json

    spec = scheduled_project(
        tmp_path, uneven_rows({"a": 12, "b": 12}), training={"reuse_model": True}
    )
    for as_of in ("2024-01-10", "2024-01-12"):
        assert run_cli(capsys, "run", str(spec), "--as-of", as_of)[0] == 0
    forecasts = pl.read_parquet(tmp_path / "outputs" / "mini" / "2024-01-12" / "forecasts.parquet")
    assert forecasts["model_version"].unique().to_list() == [
        f"mini-2024-01-10-{spec_hash(load_spec(spec)[0])}"
    ]
    pointer = json.loads((tmp_path / "models" / "mini" / "latest.json").read_text())
    assert pointer["as_of"] == "2024-01-10" and pointer["model_dir"].endswith("2024-01-10/model")


@pytest.mark.parametrize(("before", "after"), [("7,8,x9", "7,8"), ("7,8", "7,8,x9")])
def test_a_reused_model_that_cannot_read_the_data_is_not_reused(tmp_path, capsys, before, after):
    """CSV ids are read as integers when every id is one: once the series with a text id
    left the source (or one appeared), the ids of the same series were Int64 (String), and
    every scheduled run with reuse_model failed, exit 3 "Column dtypes differ from training
    (id: trained on String, got Int64)", until someone removed latest.json."""
    spec = scheduled_project(
        tmp_path, uneven_rows(dict.fromkeys(before.split(","), 12)), training={"reuse_model": True}
    )
    assert run_cli(capsys, "run", str(spec), "--as-of", "2024-01-10")[0] == 0
    (tmp_path / "data" / "prices.csv").write_text(uneven_rows(dict.fromkeys(after.split(","), 12)))
    code, err = run_cli(capsys, "run", str(spec), "--as-of", "2024-01-12")
    assert code == 0, err
    assert "Not reusing the latest model" in err and "cannot read this run's data" in err, err
    assert "id: trained on" in err and "training a new one" in err, err
    assert "model    reused" not in err and "model    fitted" in err, err


def test_a_reused_model_reads_times_of_another_unit(tmp_path, capsys):
    """A Parquet source rewritten by pandas (times in ns where they were in us) was "data
    the model cannot read" ("date: trained on Datetime(time_unit='us' ...), got ...'ns'"):
    reuse_model retrained, though the model (as the library's predict) reads the same
    instants in another unit."""
    import io

    from conftest import mini_spec

    frame = pl.read_csv(io.StringIO(uneven_rows({"a": 12, "b": 12})), try_parse_dates=True)
    frame = frame.with_columns(pl.col("date").cast(pl.Datetime("us")))
    (tmp_path / "data").mkdir()
    frame.write_parquet(tmp_path / "data" / "prices.parquet")
    source = {"path": "data/*.parquet", "format": "parquet"}
    spec = write(tmp_path, mini_spec(source=source, training={"reuse_model": True}))
    assert run_cli(capsys, "run", str(spec), "--as-of", "2024-01-10")[0] == 0
    frame = frame.with_columns(pl.col("date").dt.cast_time_unit("ns"))
    frame.write_parquet(tmp_path / "data" / "prices.parquet")
    code, err = run_cli(capsys, "run", str(spec), "--as-of", "2024-01-12")
    assert code == 0, err
    assert "Not reusing" not in err and "model    reused" in err, err


@pytest.mark.parametrize("folder", ["outputs/{as_of}/{name}", "outputs/{name}/current"])
def test_a_reused_model_is_versioned_by_the_as_of_of_the_run_that_fitted_it(
    tmp_path, capsys, folder
):
    """The version took the name of the reused run's folder's parent as its as-of:
    "mini-mini-<hash>" with outputs/{as_of}/{name}, "mini-current-<hash>" with
    outputs/{name}/current (whose model, reused twice, stays the one fitted as of 01-10)."""
    import json

    spec = scheduled_project(
        tmp_path,
        uneven_rows({"a": 12, "b": 12}),
        training={"reuse_model": True},
        output={"dir": folder},
    )
    for as_of in ("2024-01-10", "2024-01-11", "2024-01-12"):
        assert run_cli(capsys, "run", str(spec), "--as-of", as_of)[0] == 0
    out = tmp_path / folder.format(name="mini", as_of="2024-01-12")
    version = f"mini-2024-01-10-{spec_hash(load_spec(spec)[0])}"
    assert pl.read_parquet(out / "forecasts.parquet")["model_version"].unique().to_list() == [
        version
    ]
    assert json.loads((out / "summary.json").read_text())["model_version"] == version


def test_a_backfill_that_replaces_the_pointers_model_moves_the_pointer(tmp_path, capsys):
    """With outputs/{name}/current, a --force backfill as of 01-10 replaced the model of
    01-12 that latest.json named, and the pointer kept saying "as of 2024-01-12": the next
    reuse took the 01-10 model for a model of data to 01-12."""
    import json

    spec = scheduled_project(
        tmp_path, uneven_rows({"a": 12, "b": 12}), output={"dir": "outputs/{name}/current"}
    )
    assert run_cli(capsys, "run", str(spec), "--as-of", "2024-01-12")[0] == 0
    code, err = run_cli(capsys, "run", str(spec), "--as-of", "2024-01-10", "--force")
    assert code == 0 and "keeps the model" not in err, err
    pointer = json.loads((tmp_path / "models" / "mini" / "latest.json").read_text())
    manifest = json.loads((tmp_path / "outputs" / "mini" / "current" / "manifest.json").read_text())
    assert pointer["as_of"] == manifest["details"]["as_of"] == "2024-01-10", pointer
    assert pointer["model_dir"] == "outputs/mini/current/model"


def test_predict_output_names_the_model_that_made_it(tmp_path, capsys):
    """<as-of>.forecasts.parquet had no model version, run id or digest: a later predict with
    another model replaced it with other numbers and nothing recorded the change."""
    import json

    spec = csv_project(tmp_path, rows())
    model = tmp_path / "models" / "m"
    assert run_cli(capsys, "fit", str(spec), "--out", str(model))[0] == 0
    out = tmp_path / "f.parquet"
    assert run_cli(capsys, "predict", str(spec), "--model", str(model), "--out", str(out))[0] == 0
    marker = json.loads(pl.read_parquet_metadata(out)["forecaster"])
    manifest = json.loads((model / "manifest.json").read_text())
    assert marker["model"] == str(model) and marker["model_digest"] == manifest["digest"]


@pytest.mark.parametrize("command", ["predict", "backtest"])
def test_a_backfill_of_predict_or_backtest_needs_force_to_replace_a_later_as_ofs_file(
    tmp_path, capsys, command
):
    """With an output.dir without {as_of}, the default file of predict / backtest is the same
    for every as-of: a backfill replaced the latest forecasts unasked (the check compared only
    kind and pipeline), where `run` refuses it without --force. Now the same rule: refused
    (exit 2, naming the file, both as-ofs and the fix), replaced with --force; the same goes
    for one --out shared by every as-of."""
    import json

    spec = scheduled_project(tmp_path, rows(12), output={"dir": "outputs/{name}/latest"})
    model = tmp_path / "models" / "m"
    assert run_cli(capsys, "fit", str(spec), "--as-of", "2024-01-08", "--out", str(model))[0] == 0
    extra = ("--model", str(model)) if command == "predict" else ("--folds", "1")
    kind = "forecasts" if command == "predict" else "backtest"
    default = tmp_path / "outputs" / "mini" / f"latest.{kind}.parquet"
    given = tmp_path / f"shared.{kind}.parquet"
    for out in ((), ("--out", str(given))):
        file = given if out else default
        code, err = run_cli(capsys, command, str(spec), "--as-of", "2024-01-12", *extra, *out)
        assert code == 0, err
        written = file.read_bytes()
        code, err = run_cli(capsys, command, str(spec), "--as-of", "2024-01-10", *extra, *out)
        assert code == 2 and f"Refusing to replace {file}" in err, err
        assert "as of 2024-01-12 (data up to 2024-01-12), a later as-of than" in err, err
        assert "2024-01-10" in err and "Pass --force" in err, err
        assert ("give --out a file of its own" if out else "put {as_of} in output.dir") in err
        assert file.read_bytes() == written  # left as it was
        forced = (*extra, *out, "--force")
        code, err = run_cli(capsys, command, str(spec), "--as-of", "2024-01-10", *forced)
        assert code == 0, err
        assert json.loads(pl.read_parquet_metadata(file)["forecaster"])["as_of"] == "2024-01-10"
        # a later as-of replaces an earlier one's file, as run replaces its outputs
        code, err = run_cli(capsys, command, str(spec), "--as-of", "2024-01-11", *extra, *out)
        assert code == 0, err


@pytest.mark.parametrize(
    ("zone", "every", "later", "earlier"),
    [
        ("Europe/Berlin", "1d", "2024-01-20", "2024-01-18"),
        (None, "1h", "2024-01-03T10:00", "2024-01-03T08:00"),
    ],
)
def test_a_predict_file_without_its_effective_as_of_is_compared_by_its_label(
    tmp_path, capsys, zone, every, later, earlier
):
    """A file predict wrote before its metadata recorded the effective as-of was compared by
    its label with this command's effective as-of: a zoned one carries a UTC offset
    (2024-01-20T00:00:00+01:00), an intraday label writes its time with '-'
    (2024-01-03T10-00-00), so rerunning the same as-of after the upgrade was refused as "an
    as-of that cannot be compared" (exit 2, --force asked). Labels are compared with labels."""
    import json

    end = dt.datetime(2024, 1, 30) if every == "1d" else dt.datetime(2024, 1, 4)
    times = pl.datetime_range(dt.datetime(2024, 1, 1), end, every, time_zone=zone, eager=True)
    _, root = _zoned_project(tmp_path, _ragged(times, 0), {"freq": every})
    spec, model, out = str(root / "pipelines" / "spec.toml"), tmp_path / "m", tmp_path / "f.parquet"
    assert run_cli(capsys, "fit", spec, "--as-of", earlier, "--out", str(model))[0] == 0
    predict = ("predict", spec, "--model", str(model), "--out", str(out))
    assert run_cli(capsys, *predict, "--as-of", later)[0] == 0
    marker = json.loads(pl.read_parquet_metadata(out)["forecaster"])
    del marker["effective_as_of"]  # as the previous version wrote it
    pl.read_parquet(out).write_parquet(out, metadata={"forecaster": json.dumps(marker)})
    code, err = run_cli(capsys, *predict, "--as-of", later)
    assert code == 0, err  # the same as-of
    code, err = run_cli(capsys, *predict, "--as-of", earlier)
    assert code == 2 and "a later as-of than this command's" in err, err  # a backfill


# ------------------------------------------------------------------------------------------
# what dead runs and hand edits leave: staging and checkpoint folders, a run folder that
# lost its manifest, an unreadable latest.json
# ------------------------------------------------------------------------------------------


def _dead_run_leftovers(parent: Path, label: str) -> tuple[Path, Path]:
    """What a run of ``label`` killed while it fitted leaves beside its outputs: a marked
    staging folder whose writer is gone, and a checkpoint folder (with a user's file)."""
    import json

    from forecaster import _io

    staging = parent / f".{label}.staging-0123456789ab"
    staging.mkdir()
    (staging / "forecasts.parquet").write_bytes(b"half")
    (staging / _io.STAGING_MARKER).write_text(json.dumps({"owner": "forecaster", "pid": 1}))
    checkpoints = parent / f".{label}.checkpoints"
    checkpoints.mkdir()
    from conftest import write_checkpoint

    write_checkpoint(checkpoints / "checkpoint-0.safetensors")
    (checkpoints / ".checkpoint-1.safetensors.0123456789ab.tmp").write_bytes(b"half")
    return staging, checkpoints


def test_a_skipped_run_removes_what_a_dead_run_of_its_outputs_left(tmp_path, capsys):
    """A --force run killed mid-fit left its staging and checkpoint folders; the next plain
    run found the outputs intact, skipped, and left them there until some later --force.
    Only what forecaster proves its own goes: a user's files and look-alikes stay."""
    spec = csv_project(tmp_path, rows())
    assert run_cli(capsys, "run", str(spec))[0] == 0
    parent = tmp_path / "outputs" / "hostile"
    staging, checkpoints = _dead_run_leftovers(parent, "2024-01-12")
    (checkpoints / "notes.txt").write_text("mine")
    lookalike = parent / ".2024-01-12.staging-mybackup"
    lookalike.mkdir()
    (lookalike / "notes.txt").write_text("mine too")
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0 and "already exist" in err, err
    assert not staging.exists()
    assert sorted(p.name for p in checkpoints.iterdir()) == ["notes.txt"]
    assert (lookalike / "notes.txt").read_text() == "mine too"
    assert f"cleanup  removed {staging}" in err


def test_a_run_leaves_the_leftovers_while_a_live_run_holds_the_lock(tmp_path, capsys):
    """The outputs are read, and the clean-up done, under the outputs' lock: while a run of
    the same outputs lives (holds the lock, e.g. replacing them with --force), a plain run is
    busy (exit 4; it was a skip that read the outputs being replaced) and the live run keeps
    its staging folder and checkpoints; once the lock is free, the skip removes them."""
    from forecaster.jobs.output_locks import output_lock

    spec = csv_project(tmp_path, rows())
    assert run_cli(capsys, "run", str(spec))[0] == 0
    out = tmp_path / "outputs" / "hostile" / "2024-01-12"
    staging, checkpoints = _dead_run_leftovers(out.parent, "2024-01-12")
    with output_lock(out, 0.0, "a live run"):
        code, err = run_cli(capsys, "run", str(spec))
    assert code == 4 and "error: busy" in err, err
    assert staging.exists() and (checkpoints / "checkpoint-0.safetensors").exists()
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0 and "already exist" in err and f"cleanup  removed {staging}" in err, err
    assert not staging.exists()


# ------------------------------------------------------------------------------------------
# torchrun: every rank follows what rank 0 decides under the output lock
# ------------------------------------------------------------------------------------------


def _decisions(shared: list[object]) -> list[tuple[str, object]]:
    """The decisions among the objects a run shared with ``all_gather_objects`` (a fit's
    checkpoints share random states too)."""
    return [d for d in shared if isinstance(d, tuple) and len(d) == 2 and isinstance(d[0], str)]


def test_rank_zero_decides_under_the_lock_and_tells_the_other_ranks(tmp_path, capsys, monkeypatch):
    """Under torchrun rank 0 tells the other ranks what it decided under the output lock:
    run (fresh outputs), skip with its result (they exist), stop with its error (another run
    holds the lock: exit 4). It told them nothing: they read the outputs without the lock,
    and trained while rank 0 skipped or was busy, then waited in a collective forever."""
    from forecaster.exceptions import ConcurrentRunError
    from forecaster.jobs.output_locks import output_lock
    from forecaster.training import distributed

    shared: list[object] = []
    monkeypatch.setattr(distributed, "all_gather_objects", lambda obj: shared.append(obj) or [obj])
    spec = csv_project(tmp_path, rows())
    assert run_cli(capsys, "run", str(spec))[0] == 0
    assert _decisions(shared) == [("run", None)]
    assert run_cli(capsys, "run", str(spec))[0] == 0
    kind, result = _decisions(shared)[-1]
    assert kind == "skip" and result.status == "skipped" and result.as_of == "2024-01-12"
    out = tmp_path / "outputs" / "hostile" / "2024-01-12"
    with output_lock(out, 0.0, "a live run"):
        code, err = run_cli(capsys, "run", str(spec), "--force")
    assert code == 4 and "error: busy" in err, err
    kind, (error_class, text) = _decisions(shared)[-1]
    assert kind == "stop" and error_class is ConcurrentRunError, (kind, error_class)
    assert "Another process is running the pipeline 'hostile'" in text, text
    assert len(_decisions(shared)) == 3


@pytest.mark.parametrize("decision", ["run", "skip", "stop"])
def test_the_other_ranks_do_what_rank_zero_decided(tmp_path, monkeypatch, decision):
    """A rank other than 0 trains, skips with rank 0's result or raises rank 0's error as
    rank 0 decided, whatever it would read in the outputs without the lock (here: the
    opposite; a --force run elsewhere is replacing them). It decided from its own unlocked
    read: it trained while rank 0 skipped or was busy (and hung), or skipped while rank 0
    trained."""
    import shutil

    from forecaster.exceptions import ConcurrentRunError
    from forecaster.jobs import run as pipelines
    from forecaster.training import distributed

    spec = csv_project(tmp_path, rows())
    pipelines.run_pipeline(spec, progress=False)
    skipped = pipelines.run_pipeline(spec, progress=False)
    assert skipped.status == "skipped"
    out = tmp_path / "outputs" / "hostile" / "2024-01-12"
    if decision != "run":  # rank 0 finds the outputs (skip) or the lock taken (stop)
        shutil.move(out, tmp_path / "aside")
    told = {
        "run": ("run", None),
        "skip": ("skip", skipped),
        "stop": ("stop", (ConcurrentRunError, "ConcurrentRunError: a live run holds the lock")),
    }[decision]
    monkeypatch.setattr(distributed, "is_main_process", lambda: False)
    monkeypatch.setattr(distributed, "all_gather_objects", lambda obj: [told, obj])
    trained: list[object] = []
    real_make_model = pipelines.make_model
    monkeypatch.setattr(
        pipelines, "make_model", lambda *a, **k: trained.append(1) or real_make_model(*a, **k)
    )
    if decision == "stop":
        with pytest.raises(ConcurrentRunError, match=r"Rank 0 stopped.*a live run holds"):
            pipelines.run_pipeline(spec, progress=False)
    else:
        result = pipelines.run_pipeline(spec, progress=False)
        assert result.status == ("completed" if decision == "run" else "skipped")
        assert result == (result if decision == "run" else skipped)
    assert trained == ([1] if decision == "run" else [])
    assert out.exists() == (decision == "run")  # a rank other than 0 writes nothing


@pytest.mark.slow
def test_under_torchrun_every_rank_skips_when_rank_zero_finds_the_outputs_under_the_lock(
    tmp_path,
):
    """``torchrun --nproc_per_node=2 -m forecaster run`` (gloo, CPU) while another run holds
    the outputs' lock and they are away (being replaced): rank 0 waits for the lock, finds
    them and skips, and rank 1 skips with it (exit 0). Rank 1 read the outputs without the
    lock, found none and trained: it waited for rank 0 in its first collective until the
    group's timeout (30 minutes)."""
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from forecaster.jobs.output_locks import output_lock

    spec = csv_project(tmp_path, rows())
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}  # this checkout's code
    command = [sys.executable, "-m", "forecaster", "run", str(spec), "--no-progress"]
    assert subprocess.run(command, cwd=tmp_path, env=env, timeout=300).returncode == 0
    out = tmp_path / "outputs" / "hostile" / "2024-01-12"
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    with output_lock(out, 0.0, "a --force run replacing the outputs"):
        shutil.move(out, tmp_path / "aside")
        ranks = subprocess.Popen(
            [*launch, "-m", "forecaster", "run", str(spec), "--no-progress", "--wait", "300"],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # torchrun and its ranks: one process group to end
        )
        time.sleep(15)  # both ranks read the data and wait: rank 0 for the lock
        shutil.move(tmp_path / "aside", out)
    try:
        _, err = ranks.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(ranks.pid, signal.SIGKILL)
        ranks.communicate()
        pytest.fail("the ranks did not finish: one of them trained while rank 0 skipped")
    assert ranks.returncode == 0 and "already exist" in err, err[-3000:]


@pytest.mark.slow
def test_a_force_run_killed_mid_fit_is_cleaned_up_by_the_next_plain_run(tmp_path):
    """The defect as it happened: ``run --force`` killed (SIGKILL) while it fitted, then a
    plain run of the spec, which skips: its staging and checkpoint folders are gone."""
    import os
    import signal
    import subprocess
    import sys
    import time

    spec = csv_project(tmp_path, rows(), model="max_time = 4.0\npatience = 100000")
    text = spec.read_text().replace("max_epochs = 1\n", "max_epochs = 100000\n")
    spec.write_text(text.replace("[model]", "[model]\ncheckpoint_every = 1"))
    command = [sys.executable, "-m", "forecaster", "run", str(spec), "--no-progress", "--quiet"]
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}  # this checkout's code
    assert subprocess.run(command, cwd=tmp_path, env=env, timeout=300).returncode == 0
    parent = tmp_path / "outputs" / "hostile"
    checkpoints = parent / ".2024-01-12.checkpoints"
    forced = subprocess.Popen([*command, "--force"], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (checkpoints / "checkpoint-0.safetensors").exists():
            assert forced.poll() is None and time.monotonic() < deadline, "no checkpoint seen"
            time.sleep(0.05)
        forced.send_signal(signal.SIGKILL)
    finally:
        forced.wait(timeout=60)
    assert list(parent.glob(".2024-01-12.staging-*")), "the killed run left no staging folder"
    plain = command[:-1]  # without --quiet: the skip's lines
    done = subprocess.run(plain, cwd=tmp_path, env=env, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0 and "already exist" in done.stderr, done.stderr
    assert not list(parent.glob(".2024-01-12.staging-*"))
    assert not checkpoints.exists()


def test_a_run_folder_that_lost_its_manifest_says_so_and_force_rebuilds_only_ours(tmp_path, capsys):
    """Without its manifest.json a run folder got "invalid spec ... a folder forecaster did
    not write", which --force could not repair. The message now names the missing manifest;
    --force rebuilds a folder holding only what a run writes (its model intact), and refuses
    one with anything else in it, naming it."""
    from forecaster import _io

    spec = csv_project(tmp_path, rows())
    assert run_cli(capsys, "run", str(spec))[0] == 0
    run = tmp_path / "outputs" / "hostile" / "2024-01-12"
    (run / "manifest.json").unlink()
    for flags in ((), ("--dry-run",)):
        code, err = run_cli(capsys, "run", str(spec), *flags)
        assert code == 2 and f"their manifest {run / 'manifest.json'} is missing" in err, err
        assert "Run again with --force" in err and "invalid spec" not in err
    (run / "notes.txt").write_text("mine")
    code, err = run_cli(capsys, "run", str(spec), "--force")
    assert code == 2 and "notes.txt (not written by forecaster)" in err, err
    assert "Move those entries out of the folder" in err
    assert (run / "notes.txt").read_text() == "mine"
    (run / "notes.txt").unlink()
    config = run / "model" / "config.json"
    original = config.read_bytes()
    config.write_bytes(original + b" ")
    code, err = run_cli(capsys, "run", str(spec), "--force")
    assert code == 2 and "model (not a model forecaster saved, or changed since" in err, err
    config.write_bytes(original)
    edited = pl.read_parquet(run / "forecasts.parquet").with_columns(pl.col("y") * 2)
    edited.write_parquet(run / "forecasts.parquet")  # a user's edit: nothing can check it
    code, err = run_cli(capsys, "run", str(spec), "--force")
    assert code == 0, err
    assert _io.read_manifest(run) is not None
    (kept,) = run.parent.glob(".2024-01-12.without-manifest-*")  # moved aside, not deleted
    assert f"moved it to {kept}" in err
    assert pl.read_parquet(kept / "forecasts.parquet").equals(edited)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0 and "already exist" in err, err


def test_an_unreadable_latest_pointer_is_rewritten_by_the_next_run(tmp_path, capsys):
    """A corrupted models/<name>/latest.json was never rewritten: every reuse_model run
    retrained, with a warning that did not say what to do. The next successful run rewrites
    it (the package's own file) and says so; the run after it reuses the model."""
    import json

    spec = csv_project(tmp_path, rows())
    spec.write_text(spec.read_text() + "\n[training]\nreuse_model = true\n")
    assert run_cli(capsys, "run", str(spec))[0] == 0
    pointer = tmp_path / "models" / "hostile" / "latest.json"
    pointer.write_text('{"spec_hash": "abc", "model_di')  # a write cut short
    code, said = run_cli(capsys, "run", str(spec), "--force")
    assert code == 0, said
    assert f"{pointer} cannot be read as a latest-model pointer" in said, said
    assert "this run rewrites it when it succeeds" in said
    assert "rewrote it to point at this run's model" in said
    assert json.loads(pointer.read_text())["model_dir"] == "outputs/hostile/2024-01-12/model"
    code, err = run_cli(capsys, "run", str(spec), "--force")
    assert code == 0 and "reused" in err, err


@pytest.mark.parametrize(
    "text", ['{"owner": "alice", "spec_hash": "x", "model_dir": "m"}', '{"my": "notes"}', "[1]"]
)
def test_a_latest_json_of_someone_else_is_not_rewritten(tmp_path, capsys, text):
    """The rewrite of an unreadable pointer also replaced JSON that says it is not
    forecaster's (another owner, other keys): only a file cut short or forecaster's own
    pointer is rewritten; anything else is left, and the warning says to move it away."""
    spec = csv_project(tmp_path, rows())
    spec.write_text(spec.read_text() + "\n[training]\nreuse_model = true\n")
    pointer = tmp_path / "models" / "hostile" / "latest.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_text(text)
    code, said = run_cli(capsys, "run", str(spec))
    assert code == 0, said
    assert "not a latest-model pointer forecaster wrote" in said and "move it away" in said
    assert pointer.read_text() == text


def test_an_oversized_latest_pointer_is_not_replaced_and_the_warning_says_why(tmp_path, capsys):
    """A file at the pointer's path larger than any pointer is not one forecaster wrote: it
    is left as it is, and the warning says to move it away."""
    spec = csv_project(tmp_path, rows())
    spec.write_text(spec.read_text() + "\n[training]\nreuse_model = true\n")
    pointer = tmp_path / "models" / "hostile" / "latest.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_bytes(b"x" * (64 * 2**10 + 1))
    code, said = run_cli(capsys, "run", str(spec))
    assert code == 0, said
    assert "more than a pointer" in said and "move it away" in said, said
    assert pointer.read_bytes() == b"x" * (64 * 2**10 + 1)


@pytest.mark.parametrize("command", ["predict", "backtest"])
def test_a_missing_model_folder_is_refused_before_the_data_is_read(
    tmp_path, capsys, monkeypatch, command
):
    """predict / backtest --model DIR read (and prepared) all the data before refusing a
    model folder that does not exist: the cheap check comes first now."""
    import forecaster.jobs.commands as commands

    read = []
    monkeypatch.setattr(commands, "prepare_data", lambda *a, **k: read.append(a) or 1 / 0)
    spec = csv_project(tmp_path, rows())
    code, err = run_cli(capsys, command, str(spec), "--model", str(tmp_path / "nowhere"))
    assert code == 2 and "is not a saved forecaster model" in err, err
    assert read == []


def test_stale_steps_follows_the_frequency_grid_of_each_series(tmp_path):
    """A daily series measured at midnight is not stale because another is measured at noon
    of the same day: the step after its last time (the next midnight) is after the data's
    last time. The pipeline called it stale by one step (its rule was "ends before the last
    time"), while native ``predict`` and the pyfunc, which shared ``Frequency.ends_before``,
    did not; a series a whole day behind is stale in all three (one rule now:
    ``forecaster.data.steps.steps_behind``)."""
    from forecaster.jobs.schedule import stale_steps

    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(mini_spec(series={"freq": "1d"}))
    spec, _ = load_spec(spec_path)
    start = dt.datetime(2024, 1, 1)
    frame = pl.DataFrame(
        {
            "id": ["midnight"] * 5 + ["noon"] * 5 + ["behind"] * 4,
            "date": [start + dt.timedelta(days=i) for i in range(5)]
            + [start + dt.timedelta(days=i, hours=12) for i in range(5)]
            + [start + dt.timedelta(days=i) for i in range(4)],
            "y": np.arange(14, dtype=float),
        }
    )
    stale = stale_steps(frame, spec)
    assert stale["id"].to_list() == ["behind"] and stale["__steps__"].to_list() == [1]


def test_commands_that_make_no_forecast_do_not_describe_one_for_stale_series(tmp_path, capsys):
    """fit (and backtest, tune) warned that a stale series "is forecast from its own last
    time (stale_steps in forecasts.parquet)", though they write no forecast."""
    spec = scheduled_project(tmp_path, uneven_rows({"a": 12, "b": 11}))
    code, err = run_cli(capsys, "fit", str(spec), "--out", str(tmp_path / "m"))
    assert code == 0, err
    assert "1 series ends before the as-of" in err and "b (last 2024-01-11)" in err, err
    assert "forecasts.parquet" not in err and "makes no forecast" in err, err
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0 and "stale_steps in forecasts.parquet" in err, err


# ------------------------------------------------------------------------------------------
# the outputs are read under their lock; the scores a spec lists; --out's default named
# ------------------------------------------------------------------------------------------


def _edited(spec: Path) -> None:
    """Another version of the spec (another spec hash): the same model, another seed."""
    spec.write_text(spec.read_text().replace("random_state = 0", "random_state = 1"))


def test_a_run_waits_for_the_lock_before_it_reads_the_outputs(tmp_path, capsys):
    """While another run holds the outputs' lock (a --force run of the edited spec replacing
    them), a plain run of the edited spec is busy (exit 4, or waits with --wait), not refused
    over the outputs it is about to replace (was: exit 2 "made by another version of the
    spec" at once, --wait or not); without the lock, an unchanged spec still skips."""
    import time

    from forecaster import _io

    spec = csv_project(tmp_path, rows())
    assert run_cli(capsys, "run", str(spec))[0] == 0
    lock = tmp_path / "outputs" / "hostile" / ".2024-01-12.lock"
    _edited(spec)
    with _io.exclusive_lock(lock):
        code, err = run_cli(capsys, "run", str(spec))
        assert code == 4 and "error: busy" in err and "another version" not in err, err
        started = time.monotonic()
        code, err = run_cli(capsys, "run", str(spec), "--wait", "1")
        assert code == 4 and time.monotonic() - started >= 1, err
    code, err = run_cli(capsys, "run", str(spec))  # the lock is free: the outputs are read
    assert code == 2 and "made by another version of the spec" in err, err
    spec.write_text(spec.read_text().replace("random_state = 1", "random_state = 0"))
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0 and "already exist" in err, err


@pytest.mark.slow
def test_a_plain_run_with_wait_finds_what_a_force_run_of_the_edited_spec_wrote(tmp_path, capsys):
    """The race as it happened, in two processes: ``run --force`` of the edited spec fits in a
    subprocess; ``run --wait`` of that spec, started meanwhile, waits for it and skips with
    its outputs (was: exit 2 "made by another version of the spec" before the force run
    published)."""
    import json
    import subprocess
    import sys
    import time

    spec = csv_project(tmp_path, rows(), model="max_time = 6.0\npatience = 100000")
    assert run_cli(capsys, "run", str(spec))[0] == 0
    spec.write_text(spec.read_text().replace("max_epochs = 1\n", "max_epochs = 100000\n"))
    command = [sys.executable, "-m", "forecaster", "run", str(spec), "--no-progress", "--quiet"]
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}  # this checkout's code
    parent = tmp_path / "outputs" / "hostile"
    forced = subprocess.Popen([*command, "--force"], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 120
        while not list(parent.glob(".2024-01-12.staging-*")):  # it holds the lock, fitting
            assert forced.poll() is None and time.monotonic() < deadline, "no staging seen"
            time.sleep(0.05)
        code, err = run_cli(capsys, "run", str(spec), "--wait", "300")
    finally:
        forced.wait(timeout=300)
    assert forced.returncode == 0
    assert code == 0 and "already exist" in err, err
    summary = json.loads((parent / "2024-01-12" / "summary.json").read_text())
    assert summary["spec_hash"] == spec_hash(load_spec(spec)[0])


def test_backtest_scores_are_those_the_spec_lists(tmp_path):
    """``pinball`` listed without ``scrps``: only ``backtest_pinball`` (was: scrps too, which
    the backtest computes from the same quantiles); every per-level score of every level is
    reported whenever levels is set (documented), listed or not."""
    from types import SimpleNamespace

    from forecaster.jobs.run import backtest_scores

    path = write(
        tmp_path,
        mini_spec(
            evaluation={"backtest_folds": 2, "metrics": ["mae", "coverage_80", "pinball"]},
            output={"levels": [80]},
        ),
    )
    spec, _ = load_spec(path)
    per_level = ["coverage_80", "width_80", "winkler_80", "msis_80"]
    scores = ["mae", "mae_naive", "mae_skill_naive", "rmse", *per_level, "pinball", "scrps"]
    counts = {"n": [9], "n_naive": [9], "n_interval_naive": [7]}  # as the library's scores
    result = SimpleNamespace(
        aggregate=pl.DataFrame({"target": ["y"]} | counts | {n: [2.0] for n in scores})
    )
    got = backtest_scores(spec, result)
    # the baselines' interval counts beside the interval scores (were left out)
    expected = ["mae", "mae_naive", "mae_skill_naive", *per_level, "pinball", "n_interval_naive"]
    assert list(got) == [f"backtest_{n}" for n in expected]
    assert got["backtest_pinball"] == 2.0 and got["backtest_n_interval_naive"] == 7
    points = result.aggregate.drop(*per_level, "pinball", "scrps")  # no interval scores
    assert list(backtest_scores(spec, SimpleNamespace(aggregate=points))) == [
        "backtest_mae", "backtest_mae_naive", "backtest_mae_skill_naive",
    ]  # fmt: skip
    metrics = {"metrics": ["mae", "scrps"]}
    spec = spec.model_copy(update={"evaluation": spec.evaluation.model_copy(update=metrics)})
    assert "backtest_scrps" in backtest_scores(spec, result)
    assert "backtest_pinball" not in backtest_scores(spec, result)


def test_backtest_tables_hold_the_listed_quantile_score_only(tmp_path):
    """``pinball`` or ``scrps`` listed alone: the score tables a run and ``forecaster
    backtest`` write (``metrics``, ``by_step``; and ``aggregate``, ``baselines``) drop the
    other one and its baselines' scores and skill ratios (both were written: the backtest
    computes both from the same quantiles), and keep every other column as it is."""
    from dataclasses import dataclass

    from forecaster.jobs.scores import listed_scores_only

    @dataclass
    class Tables:
        metrics: pl.DataFrame
        by_step: pl.DataFrame
        aggregate: pl.DataFrame
        baselines: pl.DataFrame

    quantile = [f"{n}{s}" for n in ("pinball", "scrps") for s in ("", "_naive", "_skill_naive")]
    others = ["n", "mae", "mae_naive", "winkler_80", "n_interval_naive", "pinballs", "scrps_id"]
    frame = pl.DataFrame({c: [1.0] for c in [*others, *quantile]})
    result = Tables(frame, frame, frame, frame.drop("pinball_skill_naive", "scrps_skill_naive"))
    path = write(
        tmp_path,
        mini_spec(evaluation={"metrics": ["mae", "scrps"]}, output={"levels": [80]}),
    )
    spec, _ = load_spec(path)
    kept = listed_scores_only(spec, result)
    expected = [*others, "scrps", "scrps_naive", "scrps_skill_naive"]
    for table in (kept.metrics, kept.by_step, kept.aggregate):
        assert table.columns == expected
    assert kept.baselines.columns == [*others, "scrps", "scrps_naive"]
    both = {"metrics": ["mae", "pinball", "scrps"]}
    spec = spec.model_copy(update={"evaluation": spec.evaluation.model_copy(update=both)})
    assert listed_scores_only(spec, result).metrics.columns == frame.columns


def test_fit_without_out_names_the_default_it_refuses_not_the_flag(tmp_path, capsys):
    # was: "argument --out ('<path>') resolves to ...", a flag the user never passed
    spec = csv_project(tmp_path, rows())
    spec.write_text(spec.read_text() + '\n[output]\ndir = "models/{name}/{as_of}"\n')
    code, err = run_cli(capsys, "fit", str(spec))
    assert code == 2 and "the default output resolves to" in err, err
    assert "argument --out" not in err, err
    assert_no_outputs(tmp_path)


def test_a_series_whose_target_is_all_missing_is_dropped_with_a_warning(tmp_path):
    """A series with no target value (every row empty) left the data without a word: not in
    the forecasts, nor in the warnings, nor in dropped_series. Now it is named, with why."""
    empty = "".join(f"b,2024-01-{i + 1:02d},\n" for i in range(12))  # never observed
    spec, root = load_spec(csv_project(tmp_path, rows(ids=("a", "c")) + empty))
    with pytest.warns(ForecasterWarning, match=r"1 series with no target value.*'b'") as caught:
        frame, _ = prepare_data(spec, root, None)
    assert "b" not in frame["id"].to_list() and frame["id"].n_unique() == 2
    message = str(caught[0].message)
    assert "'a'" not in message and "'c'" not in message and "null or NaN" in message
    assert "It has no history" in message and "They have" not in message  # one series


def _zoned_project(
    tmp_path: Path, frame: pl.DataFrame, series: dict[str, object], **sections: object
) -> tuple[Any, Path]:
    """A project with ``frame`` as its one Parquet file (the small spec with ``series`` keys
    and ``sections``); its spec and root."""
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    frame.write_parquet(tmp_path / "data" / "d.parquet")
    source = {"path": "data/*.parquet", "format": "parquet"}
    text = mini_spec(source=source, series=series, **sections)  # type: ignore[arg-type]
    return load_spec(write(tmp_path, text))


def _ragged(times: pl.Series, behind: int) -> pl.DataFrame:
    """Series a over ``times`` and series b ``behind`` steps shorter."""
    n = len(times)
    return pl.concat(
        [
            pl.DataFrame({"id": "a", "date": times, "y": np.arange(n, dtype=float)}),
            pl.DataFrame({"id": "b", "date": times[: n - behind], "y": np.ones(n - behind)}),
        ]
    )


def test_stale_steps_of_monthly_series_on_the_30th_and_of_days_across_dst(tmp_path):
    """Monthly data on the 30th: b ends on April 30 (a month-end), a step behind May 30, and
    was not stale (the step after a month-end read as May 31). A daily Europe/Berlin series
    4 days behind across spring-forward was counted 3 (elapsed time / 24 h), so
    max_staleness = 3 kept it."""
    from forecaster.jobs.schedule import stale_steps

    months = pl.date_range(dt.date(2023, 1, 30), dt.date(2024, 5, 30), "1mo", eager=True)
    spec, _ = _zoned_project(tmp_path / "m", _ragged(months, 1), {"freq": "1mo"})
    stale = stale_steps(_ragged(months, 1), spec)
    assert stale.rows() == [("b", dt.date(2024, 4, 30), 1)]
    days = pl.datetime_range(
        dt.datetime(2024, 3, 1), dt.datetime(2024, 4, 2), "1d", time_zone="Europe/Berlin",
        eager=True,
    )  # fmt: skip
    spec, root = _zoned_project(
        tmp_path / "d", _ragged(days, 4), {"freq": "1d", "max_staleness": 3}
    )
    assert stale_steps(_ragged(days, 4), spec)["__steps__"].to_list() == [4]
    with pytest.warns(ForecasterWarning, match="max_staleness=3"):
        _, when = prepare_data(spec, root, None)
    assert when.excluded == ("b",) and when.stale_steps == (("b", 4),)


def test_as_of_a_local_time_the_clocks_skip_or_repeat_exits_2_asking_for_an_offset(
    tmp_path, capsys
):
    """--as-of 2024-03-31T02:30 on Europe/Berlin data (no such local time) ran at 03:00, and
    2024-10-27T02:30 (twice that day) took the first, silently; predict(cutoff=...) refuses
    both asking for a UTC offset. With one, the as-of is that instant."""
    hours = pl.datetime_range(
        dt.datetime(2024, 10, 26), dt.datetime(2024, 10, 28), "1h", time_zone="Europe/Berlin",
        eager=True,
    )  # fmt: skip
    spec, root = _zoned_project(tmp_path, _ragged(hours, 0), {"freq": "1h"})
    for text, offset in (("2024-10-27T02:30", "+02:00"), ("2024-03-31T02:30", "+01:00")):
        with pytest.raises(ArgumentError, match="does not name one instant") as caught:
            prepare_data(spec, root, text)
        assert f"--as-of {text}{offset}" in str(caught.value)
    code, err = run_cli(capsys, "run", str(root / "pipelines" / "spec.toml"), "--as-of",
                        "2024-10-27T02:30")  # fmt: skip
    assert code == 2 and "UTC offset" in err, err
    frame, when = prepare_data(spec, root, "2024-10-27T02:30+01:00")  # the second 02:30
    assert when.effective == "2024-10-27T02:00:00+01:00"
    utc = frame["date"].dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    assert utc.max() == dt.datetime(2024, 10, 27, 1)


def test_history_days_keeps_calendar_days_across_daylight_saving(tmp_path):
    """[features] history_days = 7 kept 8 daily rows of Europe/Berlin data across
    spring-forward (7 fixed 24-hour days reach back past the 23-hour day's midnight)."""
    days = pl.datetime_range(
        dt.datetime(2024, 3, 1), dt.datetime(2024, 4, 2), "1d", time_zone="Europe/Berlin",
        eager=True,
    )  # fmt: skip
    features = {"history_days": 7}
    spec, root = _zoned_project(tmp_path, _ragged(days, 0), {"freq": "1d"}, features=features)
    frame, _ = prepare_data(spec, root, None)
    assert frame.group_by("id").len()["len"].to_list() == [7, 7]
    assert frame["date"].min() == dt.datetime(
        2024, 3, 27, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")
    )


@pytest.mark.parametrize("stale", ["forecast", "exclude"])
def test_history_days_is_a_window_before_the_as_of_for_every_series(tmp_path, capsys, stale):
    """history_days counted back from each series' own last row: a stale series kept its own
    last N days (b from 01-10, the 8 rows of c, which ended 22 days before the as-of), where
    the shipped spec says "the last 10 years before the as-of date". It is one window before
    the as-of now; a series with no row in it is named in a warning and left out (a run's
    dropped_series, or excluded_series under its stale policy)."""
    features = {"history_days": 15}  # the days after 2024-01-15
    series = {"stale": stale}
    data = uneven_rows({"a": 30, "b": 24, "c": 8})
    spec = scheduled_project(tmp_path, data, features=features, series=series)
    loaded, root = load_spec(spec)
    named = r"15 days before the as-of 2024-01-30: 1 series ends before them.*c \(last 2024-01-08"
    with pytest.warns(ForecasterWarning, match=named) as caught:
        frame, when = prepare_data(loaded, root, None)
    (told,) = [str(w.message) for w in caught if "series end before the as-of" in str(w.message)]
    if stale == "forecast":  # c is not forecast (was: "Each is forecast from its own last time")
        assert "or it ends before the features.history_days window" in told, told
    first = dict(frame.group_by("id").agg(pl.col("date").min()).iter_rows())
    assert first == {"a": dt.date(2024, 1, 16), "b": dt.date(2024, 1, 16)}, first
    assert when.left_out == (("c", "before_window"),)
    assert when.stale_count == 2  # b and c, named as stale
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    summary = _summary(tmp_path)
    if stale == "forecast":
        assert summary["dropped_series"] == ["c"] and summary["excluded_series"] == []
        assert list(summary["stale_series"]) == ["b"]
    else:  # both more than max_staleness (the horizon, 2) behind
        assert summary["dropped_series"] == [] and sorted(summary["excluded_series"]) == ["b", "c"]
    assert summary["fitted_series"] == 2  # a and b fitted
    assert summary["series"] == (2 if stale == "forecast" else 1)  # b forecast, or excluded


@pytest.mark.parametrize(("role", "name"), [("target", "run_id"), ("id", "model_version")])
def test_a_column_named_like_a_runs_own_forecasts_column_is_refused(tmp_path, capsys, role, name):
    """A target named run_id ran (exit 0) and forecasts.parquet held nulls in its place (the
    run's run_id); an id named model_version had every series' id replaced by the model's
    version. Both are refused when the spec is read, naming the key; a covariate of that name
    (not written there) runs."""
    header = {"target": f"id,date,{name}", "id": f"{name},date,y"}[role]
    data = uneven_rows({"a": 20, "b": 20}).replace("id,date,y", header, 1)
    series = {"target": {"targets": [name]}, "id": {"id": name}}[role]
    spec = scheduled_project(tmp_path, data, series=series)
    code, err = run_cli(capsys, "run", str(spec))
    key = {"target": "series.targets", "id": "series.id"}[role]
    assert code == 2 and f"key '{key}' names '{name}', a column a run writes" in err, err
    assert not (tmp_path / "outputs").exists()
    copies = "".join(f"{line},{line.rsplit(',', 1)[1]}\n" for line in data.splitlines()[1:])
    spec = scheduled_project(tmp_path, f"id,date,y,{name}\n{copies}", series={"covariates": [name]})
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert forecasts_of(tmp_path)["run_id"].null_count() == 4  # (no tracking: no run id)


@pytest.mark.parametrize(
    ("series", "header", "key", "message"),
    [
        ({"time": "step", "freq": None}, "id,step,y", "series.time", "Columns ['step'] clash"),
        ({"id": "model"}, "model,date,y", "series.id", "Columns ['model'] clash"),
        ({"id": "y_actual"}, "y_actual,date,y", "series.id", "Column 'y_actual' (id) is named"),
    ],
)
def test_a_column_named_like_an_output_column_is_refused_naming_its_key(
    tmp_path, capsys, series, header, key, message
):
    """A spec whose time column is named step (or id model: a backtest's columns, which fit
    refuses) was refused naming key 'series.covariates' (the message's "covariates may have
    any name"), and an id named y_actual key 'series.targets': the key is the column's."""
    data = uneven_rows({"a": 20, "b": 20}).replace("id,date,y", header, 1)
    if "step" in header:  # integer steps
        data = header + "\n" + "".join(f"{k},{i},{i % 4}.5\n" for k in "ab" for i in range(20))
    spec = scheduled_project(tmp_path, data, series=series)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 2 and f"key '{key}': {message}" in err, err


@pytest.mark.parametrize(
    ("line", "key", "example"),
    [
        ('time = "origin"', "series.time", "'origin' to 'origin_value'"),
        ('time = "fold"', "series.time", "'fold' to 'fold_value'"),
        ('time = "y_actual"', "series.time", "'y_actual' to 'y_actual_value'"),
        ('id = "stale_steps"', "series.id", "'stale_steps' to 'stale_steps_value'"),
        ('targets = ["y", "y_lo_80"]', "series.targets", "'y_lo_80' to 'y_lo_80_value'"),
    ],
)
def test_a_column_named_like_an_output_column_gets_the_fix_of_a_spec(
    tmp_path, capsys, line, key, example
):
    """A spec whose time column is named origin (or fold, y_actual; an id stale_steps, a
    target y_lo_80) was told "Rename the column (e.g. frame.rename({'origin': ...}))", which a
    pipeline user cannot do: the spec names the source's columns. The message names the
    column to rename in the source and the spec key to change."""
    spec = csv_project(tmp_path, rows())
    field = line.split(" = ")[0]
    text = re.sub(rf"(?m)^{field} = .*$", line, spec.read_text(), count=1)
    spec.write_text(text)
    with pytest.raises(SpecError) as refused:
        load_spec(spec)
    message = str(refused.value)
    assert "frame.rename" not in message, message
    assert message.endswith(
        f"Rename the column in the source (e.g. {example}) and give its new name in {key}."
    ), message
    assert f"key '{key}': " in message
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 2 and "frame.rename" not in err, err


@pytest.mark.parametrize("key", ["series.time", "series.id"])
def test_an_id_or_time_named_target_gets_the_spec_fix_before_a_backtest(tmp_path, capsys, key):
    """time = "target" (or id) with a backtest: the run and forecaster backtest failed on the
    data (exit 3) with the library's fix, frame.rename, which a pipeline user cannot apply.
    Both refuse the spec (exit 2) naming the key and the source's column to rename, before
    any data is read; a run without a backtest (folds = 0) is not refused."""
    header = "id,target,y" if key == "series.time" else "target,date,y"
    role = {"time": "target"} if key == "series.time" else {"id": "target"}
    data = uneven_rows({"a": 20, "b": 20}).replace("id,date,y", header, 1)
    fix = (
        "Rename the column in the source (e.g. 'target' to 'target_value') and give its new "
        f"name in {key}."
    )
    for folds, command in ((2, "run"), (0, "backtest")):
        spec = scheduled_project(tmp_path, data, series=role, evaluation={"backtest_folds": folds})
        code, err = run_cli(capsys, command, str(spec))
        assert code == 2 and f"key '{key}' names 'target'" in err, err
        assert fix in err and "frame.rename" not in err, err
    code, err = run_cli(capsys, "run", str(spec))  # folds = 0: nothing scores
    assert code == 0, err


def test_an_id_named_target_is_refused_only_by_the_commands_that_backtest(tmp_path, capsys):
    """The refusal of an id (or time) column named target was made when any spec was
    read, for every command: fit and predict of a spec with evaluation.backtest_folds,
    which never backtest and ran (exit 0), were refused (exit 2). Only run, which
    backtests, refuses it."""
    data = uneven_rows({"a": 20, "b": 20}).replace("id,date,y", "target,date,y", 1)
    evaluation = {"backtest_folds": 2}
    spec = scheduled_project(tmp_path, data, series={"id": "target"}, evaluation=evaluation)
    model = tmp_path / "m"
    code, err = run_cli(capsys, "fit", str(spec), "--out", str(model))
    assert code == 0, err
    out = str(tmp_path / "p.parquet")
    code, err = run_cli(capsys, "predict", str(spec), "--model", str(model), "--out", out)
    assert code == 0, err
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 2 and "key 'series.id' names 'target'" in err, err


def test_a_series_with_no_log_return_is_named_and_listed_as_dropped(tmp_path, capsys):
    """[features] log_returns drops each series' first row (no earlier price): a series with
    one row (listed on the as-of) vanished whole without a word, in no warning and not in
    dropped_series. It is named (features.log_returns: 1 series have no log return) and
    listed."""
    data = uneven_rows({"a": 20, "b": 20}) + "new,2024-01-20,5.0\n"
    spec = scheduled_project(tmp_path, data, features={"log_returns": ["y"]})
    loaded, root = load_spec(spec)
    with pytest.warns(ForecasterWarning, match=r"1 series have no log return of \['y'\].*'new'"):
        frame, when = prepare_data(loaded, root, None)
    assert sorted(frame["id"].unique()) == ["a", "b"]
    assert when.left_out == (("new", "no_log_return"),)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert _summary(tmp_path)["dropped_series"] == ["new"]


@pytest.mark.parametrize(
    ("targets", "prices"),
    [(["y"], "y"), (["y", "p"], "p")],
    ids=["price-is-the-target", "price-is-one-target"],
)
def test_a_series_with_one_price_of_a_target_is_dropped_for_no_log_return(
    tmp_path, targets, prices
):
    """A series with one observed price of a log_returns column that is also a target, and
    rows after it without one, lost its price row to the log returns and its other rows to
    the empty target: dropped as no_target, with a warning that every row of the target was
    null, though its one price was in the source. It is dropped as no_log_return, named by
    the log returns' warning."""
    lines = [f"{k},2024-01-{i:02d},{i % 4 + 0.5},{i % 3 + 1}" for k in "ab" for i in range(1, 21)]
    new = "new,2024-01-19,4.0,1\nnew,2024-01-20,,\n" if prices == "y" else ""
    new = new or "new,2024-01-19,4.0,1\nnew,2024-01-20,5.0,\n"
    data = "id,date,y,p\n" + "\n".join(lines) + "\n" + new
    spec = scheduled_project(
        tmp_path, data, series={"targets": targets}, features={"log_returns": [prices]}
    )
    loaded, root = load_spec(spec)
    with pytest.warns(ForecasterWarning, match=r"1 series have no log return.*'new'"):
        frame, when = prepare_data(loaded, root, None)
    assert when.left_out == (("new", "no_log_return"),)
    assert sorted(frame["id"].unique()) == ["a", "b"]


def test_a_series_listed_on_the_as_of_with_log_returns_is_named_with_its_first_price(tmp_path):
    """With log returns, a series listed on the as-of (its first price on 2024-01-21, more
    after it in a backfill) was named "no row at or before the as-of 2024-01-21: their first
    rows are after it ... new (first 2024-01-22)": the date of its first log return, not of
    its first row, which is at the as-of. It is named with its first row and the reason: no
    log return up to the as-of (one price)."""
    import datetime as dt

    lines = uneven_rows({"a": 30, "b": 30}).splitlines()
    day = dt.date(2024, 1, 1)
    lines += [f"new,{day + dt.timedelta(days=i)},{i % 3 + 0.5}" for i in range(20, 30)]
    spec = scheduled_project(tmp_path, "\n".join(lines) + "\n", features={"log_returns": ["y"]})
    loaded, root = load_spec(spec)
    named = (
        r"^1 series have no log return of \['y'\] at or before the as-of 2024-01-21 \(a log "
        r"return needs two observed prices up to it\), so they are neither fitted nor "
        r"forecast: new \(first 2024-01-21\)\. Pass a later --as-of"
    )
    with pytest.warns(ForecasterWarning, match=named):
        frame, when = prepare_data(loaded, root, "2024-01-21")
    assert sorted(frame["id"].unique()) == ["a", "b"] and when.left_out == (("new", "after_as_of"),)


def test_a_series_with_no_row_up_to_the_as_of_is_named_and_listed_as_dropped(tmp_path, capsys):
    """A series whose first row is after the as-of (listed later) disappeared from a run's
    outputs without a word: no warning, not in dropped_series. A series with no target value
    was named in a warning but missing from dropped_series too. Both are now named (the late
    one with its first time) and listed, as the series before the history_days window are."""
    import datetime as dt
    import json

    lines = uneven_rows({"a": 30, "b": 30}).splitlines()
    day = dt.date(2024, 1, 1)
    lines += [f"late,{day + dt.timedelta(days=i)},{i % 3 + 0.5}" for i in range(20, 30)]
    lines += [f"empty,{day + dt.timedelta(days=i)}," for i in range(30)]
    spec = scheduled_project(tmp_path, "\n".join(lines) + "\n")
    loaded, root = load_spec(spec)
    named = r"1 series have no row at or before the as-of 2024-01-15.*late \(first 2024-01-21\)"
    with pytest.warns(ForecasterWarning, match=named):
        frame, when = prepare_data(loaded, root, "2024-01-15")
    assert sorted(frame["id"].unique()) == ["a", "b"]
    assert when.left_out == (("empty", "no_target"), ("late", "after_as_of"))
    for dry in (True, False):
        with pytest.warns(ForecasterWarning, match=named):
            result = run_pipeline(spec, as_of="2024-01-15", dry_run=dry, progress=False)
        assert result.dropped_series == ["empty", "late"], (dry, result.dropped_series)
    assert sorted(forecasts_of(tmp_path)["id"].unique()) == ["a", "b"]
    assert _summary(tmp_path)["dropped_series"] == ["empty", "late"]
    code, err = run_cli(capsys, "run", str(spec))  # as of its last time: late is forecast
    assert code == 0 and "no row at or before" not in err, err
    summary = json.loads((tmp_path / "outputs/mini/2024-01-30/summary.json").read_text())
    assert summary["dropped_series"] == ["empty"]


def two_target_rows(empty: dict[str, str], ids: tuple[str, ...] = ("a", "b", "c")) -> str:
    """Daily rows of ``ids`` from 2024-01-01 to 01-16 with targets y and z; the target
    ``empty[id]`` of a series has no value (empty in the CSV)."""
    lines = ["id,date,y,z"]
    for k, key in enumerate(ids):
        for i in range(16):
            y, z = f"{10 * k + i % 4 + 0.5}", f"{k + i % 3 + 0.25}"
            values = {"y": y, "z": z, empty.get(key, ""): ""}
            lines.append(
                f"{key},{dt.date(2024, 1, 1) + dt.timedelta(days=i)},{values['y']},{values['z']}"
            )
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("missing", ["error", "ffill", "zero"])
def test_a_series_with_one_target_empty_is_named_and_listed_as_dropped(tmp_path, capsys, missing):
    """Targets y and z, and series b with no value of z (its y observed): missing = "error"
    failed the whole run ("Missing values ... in {'z': 16}", exit 3) over that one series,
    "ffill" dropped it calling it too_short, "zero" forecast a z of 0 made up from nothing.
    It is dropped as a series with no target value is: named with its empty target in a
    warning, in dropped_series with reason no_target; the others are forecast."""
    data = two_target_rows({"b": "z"})
    spec = scheduled_project(tmp_path, data, series={"targets": ["y", "z"], "missing": missing})
    loaded, root = load_spec(spec)
    named = r"Dropped 1 series with no value of a target in the rows up to the as-of 2024-01-16"
    with pytest.warns(ForecasterWarning, match=rf"{named}.*'b' \(no 'z'\)") as caught:
        frame, when = prepare_data(loaded, root, None)
    message = str(caught[0].message)  # one series, worded as one
    assert "its other targets" in message and "it is neither" in message, message
    assert "they are" not in message and "their" not in message, message
    assert sorted(frame["id"].unique()) == ["a", "c"] and when.left_out == (("b", "no_target"),)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert sorted(forecasts_of(tmp_path)["id"].unique()) == ["a", "c"]
    summary = _summary(tmp_path)
    assert summary["dropped_reasons"] == {"b": "no_target"} and summary["series"] == 2


@pytest.mark.parametrize(
    ("empty", "series", "message"),
    [
        ({"a": "z"}, {"id": None}, r"The series has no value of 'z' in the rows up to the as-of"),
        (
            {"a": "z", "b": "y"},
            {},
            r"No series has values of every target in the rows up to the as-of 2024-01-16: "
            r"each lacks one of 'y', 'z'",
        ),
    ],
)
def test_a_target_with_no_value_in_any_series_is_refused_naming_it(
    tmp_path, capsys, empty, series, message
):
    """With no series left to forecast every target of (a single series without z, or
    each series lacking one), the refusal names the target, not "Missing values"."""
    ids = ("a",) if series.get("id", "id") is None else ("a", "b")
    data = two_target_rows(empty, ids)
    if "id" in series:
        data = "\n".join(line.split(",", 1)[1] for line in data.splitlines()) + "\n"
    spec = scheduled_project(tmp_path, data, series={"targets": ["y", "z"], **series})
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 3 and re.search(message, err), err
    assert "leave that target out of series.targets" in err and "Missing values" not in err


def _leaving_out_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    """a and b to 2024-01-16; c with 2 rows (too short), d with no target value, e ending on
    01-11 (5 steps behind: stale, excluded by the default policy); a model fitted on it."""
    text = rows(16, ids=("a", "b")) + "c,2024-01-15,1.5\nc,2024-01-16,2.5\n"
    text += "d,2024-01-01,\nd,2024-01-02,\n"
    text += "".join(f"e,2024-01-{i:02d},{i}.5\n" for i in range(1, 12))
    spec = csv_project(tmp_path, text)
    model = tmp_path / "models" / "m"
    assert run_cli(capsys, "fit", str(spec), "--out", str(model))[0] == 0
    return spec, model


def test_predict_and_backtest_write_a_summary_of_what_they_left_out_beside_their_file(
    tmp_path, capsys
):
    """predict and backtest wrote their Parquet file and no summary: a scheduler had the exit
    code and warnings in words, no record of the series left out and why (run has
    summary.json). Each writes <file>.summary.json beside it, a PipelineResult as run's."""
    spec, model = _leaving_out_project(tmp_path, capsys)
    folder = tmp_path / "outputs" / "hostile"
    for command in (["predict", "--model", str(model)], ["backtest"]):
        code = main([command[0], str(spec), *command[1:], "--json-logs", "--no-progress"])
        out = capsys.readouterr().out
        assert code == 0, out
        (record,) = [
            r
            for r in map(json.loads, out.splitlines())
            if r["msg"].startswith(("wrote", "backtest over"))
        ]
        kind = "forecasts" if command[0] == "predict" else "backtest"
        summary = json.loads((folder / f"2024-01-16.{kind}.summary.json").read_text())
        assert summary["command"] == command[0] and summary["status"] == "completed"
        assert summary[kind] == str(folder / f"2024-01-16.{kind}.parquet")
        assert summary["stale_series"] == {"e": "2024-01-11"}
        assert summary["spec_hash"] == spec_hash(load_spec(spec)[0])  # the spec's own
        # was: backtest's record held only its scores (no parquet_sha256, no series)
        assert record["summary"] == summary and len(summary["parquet_sha256"]) == 64
    # and run's record is its summary.json
    assert main(["run", str(spec), "--json-logs", "--no-progress"]) == 0
    records = map(json.loads, capsys.readouterr().out.splitlines())
    (record,) = [r for r in records if r["msg"].startswith("summary ")]
    assert record["summary"] == _summary(tmp_path)
    predicted = json.loads((folder / "2024-01-16.forecasts.summary.json").read_text())
    assert predicted["dropped_reasons"] == {"c": "too_short", "d": "no_target"}
    assert predicted["excluded_series"] == ["e"] and predicted["series"] == 2
    assert predicted["model_dir"] == str(model) and predicted["unscored_series"] is None
    scored = json.loads((folder / "2024-01-16.backtest.summary.json").read_text())
    assert scored["dropped_reasons"] == {"d": "no_target"} and scored["excluded_series"] == []
    assert scored["unscored_series"] == ["c", "e"] and scored["series"] == 2
    assert scored["metrics"]["backtest_mae"] >= 0 and scored["max_staleness"] is None
    # rows: those of the series counted (a and b, 16 each), not the data's (data.rows)
    assert predicted["rows"] == scored["rows"] == 32 and predicted["data"]["rows"] == 45


def test_a_runs_summary_lists_the_series_its_backtest_did_not_score(tmp_path, capsys):
    """run's summary.json had no unscored_series while backtest's summary had it: a scheduler
    could not read one record whatever the command. A run that backtests lists the series
    no fold forecast, as backtest does; without a backtest it is null, as predict's."""
    spec, _ = _leaving_out_project(tmp_path, capsys)
    assert run_cli(capsys, "run", str(spec))[0] == 0
    assert _summary(tmp_path)["unscored_series"] is None
    spec.write_text(spec.read_text().replace("backtest_folds = 0", "backtest_folds = 1"))
    code, err = run_cli(capsys, "run", str(spec), "--force")
    assert code == 0, err
    summary = _summary(tmp_path)
    assert summary["unscored_series"] == ["c", "e"] and summary["metrics"]["backtest_mae"] >= 0


@pytest.mark.parametrize("name", ["f", "f.PARQUET", "f.pq"])
def test_out_names_no_two_files_with_one_summary(tmp_path, capsys, tree_guard, name):
    """--out f and --out f.parquet (or f.PARQUET, a file of its own where case counts) wrote
    one summary, f.summary.json: each replaced the other's record, and the summary beside
    f.parquet described another file. A name that does not end with .parquet is refused
    (exit 2, before any work), with the name to give."""
    spec, model = _leaving_out_project(tmp_path, capsys)
    predict = ("predict", str(spec), "--model", str(model), "--out")
    assert run_cli(capsys, *predict, str(tmp_path / "f.parquet"))[0] == 0
    guard = tree_guard(tmp_path)
    code, err = run_cli(capsys, *predict, str(tmp_path / name))
    assert code == 2 and "argument --out" in err, err
    assert "name the file f.parquet" in err, err
    assert f"{name}.summary.json, would be that of {name}.parquet too" in err, err
    guard.assert_unchanged()


def test_out_naming_a_folder_is_told_to_name_a_file_inside_it(tmp_path, capsys, tree_guard):
    """--out of predict naming a folder (no .parquet) was told to name the file
    <folder>.parquet, beside the folder: the advice for a file name, which the user did not
    give. It is refused (exit 2, before any work) as a folder, to name a file inside."""
    spec, model = _leaving_out_project(tmp_path, capsys)
    (tmp_path / "results").mkdir()
    guard = tree_guard(tmp_path)
    code, err = run_cli(
        capsys, "predict", str(spec), "--model", str(model), "--out", str(tmp_path / "results")
    )
    assert code == 2 and "argument --out" in err, err
    assert f"it is a folder: name a file inside it, such as {tmp_path / 'results'}" in err, err
    assert "name the file results.parquet" not in err, err
    guard.assert_unchanged()


def test_the_parquet_file_and_its_summary_are_checked_alike(tmp_path):
    """check_parquet_destination and check_summary_file made the same lstat checks apart:
    below a path that is a file (a folder replaced by a file since --out was checked) the
    Parquet file was refused ("cannot inspect it") and its summary was not. One check
    (existing_file) decides for both: nothing is there, the write reports the folder; a
    folder there is refused alike."""
    from forecaster.exceptions import OwnershipError
    from forecaster.jobs.parquet_files import check_parquet_destination
    from forecaster.jobs.summaries import check_summary_file, summary_file

    spec, root = load_spec(scheduled_project(tmp_path, rows(12)))
    (tmp_path / "file").write_text("x")
    below = tmp_path / "file" / "f.parquet"
    assert check_parquet_destination(below, "forecast", spec) is None
    assert check_summary_file(summary_file(below), "predict", spec, root) is None
    folder = tmp_path / "g.parquet"
    for path in (folder, summary_file(folder)):
        path.mkdir()
    for check in (
        lambda: check_parquet_destination(folder, "forecast", spec),
        lambda: check_summary_file(summary_file(folder), "predict", spec, root),
    ):
        with pytest.raises(OwnershipError, match=r"Refusing to replace .*: it is a folder or"):
            check()


def test_a_summary_names_the_bytes_of_its_parquet_file(tmp_path, capsys):
    """Two predicts into one file could leave one's Parquet file beside the other's summary,
    and nothing told them apart. The summary records the size and sha256 of the file it
    describes (hashed as it was written): the file beside it must match them."""
    import hashlib

    spec, model = _leaving_out_project(tmp_path, capsys)
    for command in (("predict", "--model", str(model)), ("backtest",)):
        out = tmp_path / f"{command[0]}.parquet"
        assert run_cli(capsys, command[0], str(spec), *command[1:], "--out", str(out))[0] == 0
        summary = json.loads((tmp_path / f"{command[0]}.summary.json").read_text())
        data = out.read_bytes()
        assert summary["parquet_bytes"] == len(data)
        assert summary["parquet_sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("error", "exit_code", "message"),
    [(OSError(28, "No space left on device"), 1, "No space left on device. Check that"),
     (KeyboardInterrupt(), 130, "interrupted")],
    ids=["full-disk", "interrupt"],
)  # fmt: skip
def test_a_parquet_file_that_cannot_be_written_says_why(
    tmp_path, capsys, monkeypatch, error, exit_code, message
):
    """The Parquet file of predict is hashed as Polars writes it through a Python file:
    Polars turned what that file raised into a ComputeError ("underlying IO error: [Errno
    28]", or nothing for an interrupt), which the command reported as a bug (exit 1
    "Unexpected ComputeError"), a full disk (written by Polars to a path: "(os error 28)")
    and an interrupt (exit 130) alike. What the write raised is raised as it was."""
    import io

    from forecaster.jobs import parquet_files

    spec, model = _leaving_out_project(tmp_path, capsys)

    class Failing(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            raise error

    def failing_open(path: Any, mode: str = "r", *args: Any) -> Any:  # reads pass
        return Failing() if "w" in mode else open(path, mode, *args)

    monkeypatch.setattr(parquet_files, "open", failing_open, raising=False)
    out = tmp_path / "f.parquet"
    code, err = run_cli(capsys, "predict", str(spec), "--model", str(model), "--out", str(out))
    assert code == exit_code and message in err and "Unexpected" not in err, err
    assert not out.exists() and not out.with_name("f.summary.json").exists()


@pytest.mark.parametrize("width", [8, 20_000], ids=["many-series", "long-ids"])
def test_a_summary_too_large_to_read_back_is_written_with_its_lists_cut(tmp_path, width):
    """A summary of 200,000 dropped series (or of 1,000 with ids of 20,000 characters) was
    written whole, over the 4 MiB read_summary reads: the package refused its own record (a
    rerun could not report the outputs). The writer keeps it within the limit: each list
    of series holds its first entries, listed_counts their lengths, and a warning says so."""
    from forecaster.jobs.orphans import SUMMARY_LIMIT
    from forecaster.jobs.outputs import PipelineResult, read_summary
    from forecaster.jobs.summaries import write_summary

    n = 200_000 if width == 8 else 1_000
    ids = [f"{i:0{width}d}" for i in range(n)]
    result = PipelineResult(
        name="big", as_of="2024-01-12", status="completed", output_dir=str(tmp_path),
        dropped_series=ids, dropped_reasons=dict.fromkeys(ids, "too_short"),
        excluded_series=ids[:10], unscored_series=ids,
    )  # fmt: skip
    path = tmp_path / "summary.json"
    with pytest.warns(ForecasterWarning, match="lists only the first .* listed_counts"):
        written = write_summary(path, result)
    assert path.stat().st_size <= SUMMARY_LIMIT
    back = read_summary(path)
    assert back == written and back.excluded_series == ids[:10]
    assert back.listed_counts == {"dropped_series": n, "dropped_reasons": n, "unscored_series": n}
    kept = len(back.dropped_series)
    assert 0 < kept <= 1000 and back.dropped_series == ids[:kept] == list(back.dropped_reasons)
    small = result.model_copy(update={"dropped_series": [], "dropped_reasons": {}})
    small = small.model_copy(update={"unscored_series": None})
    assert write_summary(path, small) == small and read_summary(path).listed_counts is None


def test_a_summary_cut_counts_every_stale_series_in_listed_counts(tmp_path):
    """The stale series of a summary are listed up to 1,000 and counted whole
    (stale_series_count). Cut to fit the 4 MiB, listed_counts (and its warning) gave the
    length of the list already cut, 1,000, as the count of all 5,000 stale series."""
    from forecaster.jobs.outputs import PipelineResult
    from forecaster.jobs.summaries import write_summary

    ids = [f"{i:020000d}" for i in range(1_000)]
    result = PipelineResult(
        name="big", as_of="2024-01-12", status="completed", output_dir=str(tmp_path),
        stale_series=dict.fromkeys(ids, "2024-01-01"), stale_series_count=5_000,
        stale_steps=dict.fromkeys(ids, 11),
    )  # fmt: skip
    with pytest.warns(ForecasterWarning, match="stale_series 5,000, stale_steps 5,000 in all"):
        written = write_summary(tmp_path / "summary.json", result)
    assert written.listed_counts == {"stale_series": 5_000, "stale_steps": 5_000}
    assert written.stale_series_count == 5_000 and 0 < len(written.stale_series) < 1_000


def test_a_summary_beside_a_file_is_replaced_only_when_it_is_that_commands(
    tmp_path, capsys, monkeypatch
):
    """The summary of predict is written only where nothing is, or a summary of predict of
    the same pipeline: a file of the user's (or another command's summary) is refused
    (exit 2) before any work and left as it is. It is removed before the Parquet file is
    replaced: a file whose writing failed has no summary that describes an older one."""
    import forecaster.jobs.commands as commands

    spec, model = _leaving_out_project(tmp_path, capsys)
    out = tmp_path / "elsewhere" / "f.parquet"
    beside = out.with_name("f.summary.json")
    beside.parent.mkdir()
    beside.write_text('{"mine": 1}')
    predict = ("predict", str(spec), "--model", str(model), "--out", str(out))
    code, err = run_cli(capsys, *predict)
    assert code == 2 and f"Refusing to replace {beside}: it is not a summary" in err, err
    assert beside.read_text() == '{"mine": 1}' and not out.exists()
    beside.unlink()
    assert run_cli(capsys, "backtest", str(spec), "--out", str(out.with_name("b.parquet")))[0] == 0
    out.with_name("b.summary.json").rename(beside)  # a backtest's summary is not predict's
    code, err = run_cli(capsys, *predict)
    assert code == 2 and "the summary of backtest of the pipeline 'hostile'" in err, err
    beside.unlink()
    assert run_cli(capsys, *predict)[0] == 0
    assert json.loads(beside.read_text())["command"] == "predict"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(commands, "write_parquet", full_disk)
    code, err = run_cli(capsys, *predict, "--force")
    assert code == 1 and "No space left on device" in err, err
    assert out.exists() and not beside.exists()


def test_rows_without_an_id_are_refused_beside_a_series_dropped_for_an_empty_target(
    tmp_path, capsys
):
    """Targets y and z, b without z, and 16 rows with no id (y and z observed): the rows
    without an id vanished with b (a filter's is_in of a null is null), exit 0 with a and c
    forecast and not a word of them. They reach the model's check of ids, as without b."""
    data = two_target_rows({"b": "z"}, ("a", "b", "c"))
    data += "".join(
        line.replace("c,", ",", 1) + "\n" for line in data.splitlines() if line.startswith("c,")
    )
    spec = scheduled_project(tmp_path, data, series={"targets": ["y", "z"]})
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 3 and "Id column 'id' has 16 null" in err, err


@pytest.mark.parametrize("tail", ["\n", ",,,\n", "\n,,,\n"])
def test_blank_lines_of_a_csv_are_skipped_and_named(tmp_path, capsys, tail):
    """A CSV ending in an empty line (or a line of separators only) was read as a row with no
    id and no value, dropped as a series named None: every command then failed with exit 1,
    "Unexpected ValidationError ... a bug in forecaster". Such rows are skipped, named in a
    warning, and the run forecasts what it forecasts without them."""
    data = two_target_rows({})
    clean = scheduled_project(tmp_path / "clean", data, series={"targets": ["y", "z"]})
    blank = scheduled_project(tmp_path / "blank", data + tail, series={"targets": ["y", "z"]})
    assert run_cli(capsys, "run", str(clean))[0] == 0
    code, err = run_cli(capsys, "run", str(blank))
    assert code == 0 and "with no value in any column" in err, err
    written = [sorted((root / "outputs").rglob("forecasts.parquet")) for root in
               (tmp_path / "clean", tmp_path / "blank")]  # fmt: skip
    assert pl.read_parquet(written[0][0]).equals(pl.read_parquet(written[1][0]))


def test_a_row_without_an_id_or_a_target_is_refused_naming_the_file(tmp_path, capsys):
    """A row with a time but no id and no target (",2024-01-05,,") was dropped as a series
    named None, and the run failed with exit 1 as a bug in forecaster: exit 3, naming the
    id column, the file and the row's time."""
    data = two_target_rows({}) + ",2024-01-05,,\n"
    spec = scheduled_project(tmp_path, data, series={"targets": ["y", "z"]})
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3 and "Id column 'id' has 1 null" in err and "source.path" in err, err
    assert "2024-01-05" in err, err


@pytest.mark.parametrize(
    ("series", "key"),
    [({"targets": ["y", "revenue"]}, "[series] targets"),
     ({"targets": ["y"], "future_covariates": ["promo"]}, "[series] future_covariates")],
)  # fmt: skip
def test_a_spec_column_the_source_lacks_is_told_the_spec_key_and_the_file(
    tmp_path, capsys, series, key
):
    """A target or future covariate the CSV lacks was told "rename the frame's columns",
    which a pipeline user cannot do, naming neither the spec key nor the file."""
    spec = scheduled_project(tmp_path, two_target_rows({}), series=series)
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3 and f"Fix {key} in the spec" in err and "source.path" in err, err
    assert "rename the frame" not in err, err


def test_predict_refuses_rows_without_an_id_beside_an_excluded_series(tmp_path, capsys):
    """A series excluded as stale (e) and 16 rows with no id: predict dropped the rows without
    an id with e (a filter's is_in of a null is null), then failed building its summary, exit
    1 "Unexpected ValidationError ... a bug in forecaster". The rows reach the model's check
    of ids: exit 3 naming the column, nothing written."""
    spec, model = _leaving_out_project(tmp_path, capsys)
    with (tmp_path / "data" / "prices.csv").open("a") as data:
        data.write("".join(f",2024-01-{i:02d},{i}.5\n" for i in range(1, 17)))
    code, err = run_cli(capsys, "predict", str(spec), "--model", str(model))
    assert code == 3 and "Id column 'id' has 16 null" in err, err
    assert not list((tmp_path / "outputs").glob("hostile/*.forecasts.*"))


def _reasons_data() -> str:
    """a and b to 2024-01-30 (prices p, target y); as of 2024-01-15 with history_days = 10:
    short too short for the lookback (4), empty with no y, new with one price (no log return
    of p), late first on 01-21, old ending on 01-04, before the window."""
    day = dt.date(2024, 1, 1)

    def lines(key: str, days: range, y: bool = True) -> list[str]:
        return [
            f"{key},{day + dt.timedelta(days=i)},{f'{i % 4 + 0.5}' if y else ''},{i % 3 + 1}"
            for i in days
        ]

    text = ["id,date,y,p", *lines("a", range(30)), *lines("b", range(30))]
    text += lines("short", range(12, 15)) + lines("empty", range(30), y=False)
    text += lines("new", range(14, 15)) + lines("late", range(20, 30)) + lines("old", range(4))
    return "\n".join(text) + "\n"


REASONS = {
    "short": "too_short",
    "empty": "no_target",
    "new": "no_log_return",
    "late": "after_as_of",
    "old": "before_window",
}


def test_summary_json_says_why_each_series_was_dropped(tmp_path, capsys):
    """summary.json listed the dropped series without why: a scheduler could not tell a
    series too short for the model from one whose data stopped arriving (the reasons were in
    warnings only). dropped_reasons gives each its code, in the order of dropped_series (kept
    as it was), in a dry run, summary.json and the --json-logs summary alike."""
    import json
    from typing import get_args

    from forecaster.jobs.schedule import DROP_REASONS, DropReason

    assert tuple(DROP_REASONS) == get_args(DropReason)
    assert set(REASONS.values()) == set(DROP_REASONS)  # every reason below
    features = {"log_returns": ["p"], "history_days": 10}
    spec = scheduled_project(
        tmp_path, _reasons_data(), series={"stale": "forecast"}, features=features
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)  # each named: tested above
        dry = run_pipeline(spec, as_of="2024-01-15", dry_run=True, progress=False)
    assert dry.dropped_reasons == REASONS and dry.dropped_series == list(REASONS)
    code = main(["run", str(spec), "--as-of", "2024-01-15", "--json-logs", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    summary = _summary(tmp_path)
    assert summary["dropped_reasons"] == REASONS and summary["dropped_series"] == list(REASONS)
    assert list(summary["dropped_reasons"]) == summary["dropped_series"]  # the same order
    assert summary["series"] == 2 and summary["stale_series"] == {}
    records = [json.loads(line) for line in out.splitlines()]
    (logged,) = [record["summary"] for record in records if "summary" in record]
    assert logged["dropped_reasons"] == REASONS


def test_a_summary_written_before_dropped_reasons_is_read_without_them(tmp_path, capsys):
    """summary.json of an older forecaster has dropped_series and no dropped_reasons: its
    outputs are still reported (a rerun skips them), with dropped_reasons null, never an
    empty dict that would say "no reason". Reasons that name other series than
    dropped_series are refused: the two cannot disagree."""
    import json

    from forecaster import _io
    from forecaster.jobs.outputs import PipelineResult

    text = rows(12, ids=("a", "b")) + "c,2024-01-11,1.5\nc,2024-01-12,2.5\n"
    spec = csv_project(tmp_path, text)
    assert run_cli(capsys, "run", str(spec))[0] == 0
    (path,) = (tmp_path / "outputs").rglob("summary.json")
    summary = json.loads(path.read_text())
    assert summary["dropped_reasons"] == {"c": "too_short"}
    del summary["dropped_reasons"]  # as an older forecaster wrote it
    path.write_text(json.dumps(summary, indent=2))
    details = _io.read_manifest(path.parent)["details"]  # type: ignore[index]
    _io.write_manifest(path.parent, "run", details)
    result = run_pipeline(spec, progress=False)
    assert result.status == "skipped" and result.dropped_series == ["c"]
    assert result.dropped_reasons is None
    with pytest.raises(ValueError, match="dropped_reasons names the series"):
        PipelineResult.model_validate({**summary, "dropped_reasons": {"a": "too_short"}})


@pytest.mark.slow
def test_a_second_tune_accepts_conditional_parameters_reset_by_a_searched_parent(
    tmp_path, capsys, monkeypatch
):
    """[model] segment_length = 1 with head searched: a trial with head = "direct" resets it
    to its default (it would be unused), so the tuned model has segment_length = "auto". A
    second `forecaster tune` of the unchanged spec exited 2 ("Refusing to replace the model
    saved in ...-tuned ... segment_length='auto' (this fit: 1)"): the conditional parameters
    of a searched parent are free, as the searched ones are (nonlinearity with cell too: a
    spec refuses it with a cell it does not fix to "rnn", so only the rule is checked)."""
    optuna = pytest.importorskip("optuna")
    import forecaster.tuning as tuning
    from forecaster.tuning.conditions import dependents

    real = tuning.default_search_space

    def space(estimator: Any, frame: Any = None) -> dict[str, Any]:
        choice = optuna.distributions.CategoricalDistribution  # every trial: head "direct"
        return {**real(estimator, frame), "head": choice(["direct"])}

    monkeypatch.setattr(tuning, "default_search_space", space)
    assert dependents({"head", "cell"}) == {"segment_length", "nonlinearity"}
    model = {k: v for k, v in FIXES_EVERY_SEARCHED.items() if k != "head"}
    model.update(segment_length=1)
    spec = scheduled_project(tmp_path, rows(24), model=model, training=TUNED)
    for attempt in (1, 2):
        code, err = run_cli(capsys, "tune", str(spec), "--trials", "1")
        assert code == 0, (attempt, err)
        saved = forecaster.load(tmp_path / "models" / "mini" / "2024-01-24-tuned")
        assert (saved.head, saved.segment_length) == ("direct", "auto")


def test_the_spec_hash_is_the_same_on_every_operating_system(tmp_path, monkeypatch):
    """spec_hash normalised paths with os.path.normpath: on Windows every "/" became "\\",
    so the same spec hashed differently there (study names, latest.json, the check of
    outputs on a shared drive). Paths count as normalised by POSIX rules everywhere, a "\\"
    (a spec written on Windows) as a "/"."""
    import ntpath
    import types

    import forecaster.jobs.spec as spec_module

    spec_path = csv_project(tmp_path, rows())
    base = spec_path.read_text()
    extra = '\n[training]\nstorage = "sqlite:///{db}"\n\n[output]\ndir = "{out}"\n'
    spec_path.write_text(base + extra.format(db="studies/optuna.db", out="outputs/{name}/x"))
    spec = load_spec(spec_path)[0]
    posix = spec_hash(spec)
    monkeypatch.setattr(spec_module, "os", types.SimpleNamespace(path=ntpath))  # as on Windows
    assert spec_hash(spec) == posix
    monkeypatch.undo()
    windows = extra.format(db="studies\\\\optuna.db", out="outputs\\\\{name}\\\\x")
    spec_path.write_text(base + windows)
    assert spec_hash(load_spec(spec_path)[0]) == posix


def test_a_spec_with_log_returns_has_no_legacy_hash(tmp_path):
    """The upgrade that accepts a spec's legacy hash also gave the business days a source
    lacks a log return of 0 (they repeated the day before's): outputs, models and studies of a
    spec with log returns from before it were made from other data, so only its current hash
    names it; a spec without log returns keeps its legacy hash (it has a description)."""
    from forecaster.jobs.hashing import spec_hashes

    spec_path = csv_project(tmp_path, rows())
    spec_path.write_text(
        spec_path.read_text().replace("[pipeline]\n", '[pipeline]\ndescription = "d"\n', 1)
    )
    plain = spec_hashes(load_spec(spec_path)[0])
    assert plain.legacy != plain.current
    spec_path.write_text(spec_path.read_text() + '\n[features]\nlog_returns = ["y"]\n')
    returns = spec_hashes(load_spec(spec_path)[0])
    assert returns.legacy == returns.current
    shipped = (REPO / "pipelines" / "stocks_ohlcv.toml").read_text()
    (tmp_path / "pipelines" / "ohlcv.toml").write_text(
        "\n".join(line for line in shipped.splitlines() if not line.startswith("description"))
    )
    undescribed = load_spec(tmp_path / "pipelines" / "ohlcv.toml")[0]  # nothing cosmetic
    assert spec_hash(undescribed) != "86149cef1060"  # its hash before: not the same spec


def test_dead_runs_are_closed_only_on_a_machine_that_tells_itself_apart(tmp_path, monkeypatch):
    """forecaster.host was `<hostname> pid:[4026531836]`: the first process-id namespace of
    every Linux host, so a machine named `localhost` took another `localhost`'s live run for
    one of its own dead processes and marked it KILLED. The tag names the machine identity;
    where none can be read, no run is closed (its host cannot be told apart)."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    import forecaster.jobs.tracked as tracked

    identity = tmp_path / "machine-id"
    identity.write_text("0123456789abcdef0123456789abcdef\n")
    monkeypatch.setattr(tracked, "MACHINE_ID_FILES", (str(identity),))
    host = tracked.HOST_TAG
    assert " machine:0123456789abcdef0123456789abcdef" in tracked._process_tags()[host]
    reset_mlflow_state(monkeypatch, tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    spec = load_spec(write(tmp_path, MINIMAL + '[tracking]\nexperiment = "kills"\n'))[0]
    lines: list[str] = []
    with tracked.tracked_run(spec, "2024-01-02", lines.append, kind="run", root=tmp_path) as (
        first,
        _,
    ):
        pass
    client = MlflowClient(uri)
    experiment = client.get_run(first).info.experiment_id
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    tags = {"pipeline": "mini", "as_of": "2024-01-02", tracked.PID_TAG: gone.stdout.strip()}
    mine = client.get_run(first).data.tags[host]
    twin = mine.replace("machine:0123456789abcdef", "machine:fedcba9876543210")
    bare = mine.replace(" machine:0123456789abcdef0123456789abcdef", "")  # the tag it had
    ids = {
        what: client.create_run(experiment, tags={**tags, host: value}).info.run_id
        for what, value in (("twin", twin), ("mine", mine), ("bare", bare))
    }
    monkeypatch.setattr(tracked, "MACHINE_ID_FILES", (str(tmp_path / "none"),))
    with tracked.tracked_run(spec, "2024-01-02", lines.append, kind="run", root=tmp_path):
        pass  # no machine identity: nothing closed, not even a run tagged as this host was
    assert {client.get_run(r).info.status for r in ids.values()} == {"RUNNING"}
    monkeypatch.setattr(tracked, "MACHINE_ID_FILES", (str(identity),))
    with tracked.tracked_run(spec, "2024-01-02", lines.append, kind="run", root=tmp_path):
        pass
    status = {what: client.get_run(run_id).info.status for what, run_id in ids.items()}
    assert status == {"twin": "RUNNING", "mine": "KILLED", "bare": "RUNNING"}


def test_outputs_and_pointer_of_the_legacy_spec_hash_are_the_same_spec(
    tmp_path, capsys, monkeypatch
):
    """Every spec with a description got a new hash with the upgrade that left it out: the
    rerun of an as-of already written exited 2 ("made by another version of the spec") and
    reuse_model retrained. What the spec's legacy hash recorded is the same spec's."""
    import forecaster.jobs.run as run_module
    from forecaster.jobs.hashing import SpecHashes, spec_hashes

    spec = scheduled_project(
        tmp_path,
        uneven_rows({"a": 12, "b": 12}),
        pipeline={"description": "daily prices"},
        training={"reuse_model": True},
    )
    hashes = spec_hashes(load_spec(spec)[0])
    assert hashes.current != hashes.legacy
    old = SpecHashes(hashes.legacy, hashes.legacy)  # what the version before wrote
    monkeypatch.setattr(run_module, "spec_hashes", lambda spec: old)
    assert run_cli(capsys, "run", str(spec), "--as-of", "2024-01-10")[0] == 0
    monkeypatch.undo()
    code, err = run_cli(capsys, "run", str(spec), "--as-of", "2024-01-10")
    assert code == 0 and "already exist" in err, err
    code, err = run_cli(capsys, "run", str(spec), "--as-of", "2024-01-12")
    assert code == 0 and "reused" in err, err


@pytest.mark.slow
def test_a_study_named_with_the_legacy_spec_hash_is_resumed(tmp_path, capsys, monkeypatch):
    """The study name holds the spec hash: after the upgrade every bundled spec's study
    restarted from trial 0 under a new name. A study of the spec's legacy hash with finished
    trials in the storage is resumed, with a log line."""
    pytest.importorskip("optuna")
    import forecaster.jobs.fitting as fitting
    from forecaster.jobs.hashing import SpecHashes, spec_hashes

    spec = scheduled_project(
        tmp_path, rows(24), pipeline={"description": "daily prices"}, training=TUNED
    )

    def legacy(spec: Any) -> SpecHashes:
        return SpecHashes(spec_hashes(spec).legacy, spec_hashes(spec).legacy)

    monkeypatch.setattr(fitting, "spec_hashes", legacy)  # as the version before named it
    assert run_cli(capsys, "tune", str(spec), "--trials", "1")[0] == 0
    (named,) = _study_trials(tmp_path)
    monkeypatch.undo()
    code, err = run_cli(capsys, "tune", str(spec), "--trials", "2")
    assert code == 0, err
    assert f"resuming the study {named} (named with the spec's hash of before" in err, err
    assert {k: len(v) for k, v in _study_trials(tmp_path).items()} == {named: 2}


def test_an_interrupt_before_the_outputs_are_published_ends_the_mlflow_run_killed(
    tmp_path, capsys, monkeypatch
):
    """The MLflow run ended FINISHED (outputs logged) before the run's folder was published:
    SIGTERM while publishing exited 143 with no outputs, but MLflow said FINISHED. The run
    ends once the outputs are published: KILLED when they were not."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    import forecaster._io as io_module

    reset_mlflow_state(monkeypatch, tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    tracking = {"enabled": True, "experiment": "kills"}
    spec = scheduled_project(tmp_path, rows(12), tracking=tracking)

    publish = io_module.publish_directory

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("kind") == "run":  # the run's folder (not the model saved in it)
            raise KeyboardInterrupt  # SIGTERM under the forecaster command
        return publish(*args, **kwargs)

    monkeypatch.setattr(io_module, "publish_directory", interrupted)
    code, err = run_cli(capsys, "run", str(spec))
    assert code != 0, err
    assert not (tmp_path / "outputs" / "mini" / "2024-01-12").exists()
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("kills")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "KILLED"


def test_a_run_whose_publishing_fails_logs_no_completed_summary_to_mlflow(
    tmp_path, capsys, monkeypatch
):
    """A tracked run logged its metrics and summary.json ("status": "completed") to MLflow
    before publishing its outputs: when publishing failed, the MLflow run (FAILED) still
    held a summary claiming outputs that were never written. The outputs are logged once
    published: none here."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    import forecaster._io as io_module

    reset_mlflow_state(monkeypatch, tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    spec = scheduled_project(tmp_path, rows(12), tracking={"enabled": True, "experiment": "fails"})
    publish = io_module.publish_directory

    def refused(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("kind") == "run":  # the run's folder (not the model saved in it)
            raise OSError(28, "No space left on device")
        return publish(*args, **kwargs)

    monkeypatch.setattr(io_module, "publish_directory", refused)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 1 and "No space left on device" in err, err
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("fails").experiment_id])
    assert run.info.status == "FAILED"
    assert client.list_artifacts(run.info.run_id, "outputs") == []
    assert not any(key.startswith("pipeline_") for key in run.data.metrics)


def test_a_rerun_after_an_interrupt_before_the_pointer_moves_it(tmp_path, capsys, monkeypatch):
    """Stopped after publishing its outputs, before latest.json named their model: the rerun
    skipped ("already exist") and never moved the pointer, so reuse_model kept an older model
    (or none). The skip now moves it when it names no model as new as the outputs'."""
    import json

    import forecaster.jobs.run as run_module

    spec = scheduled_project(tmp_path, uneven_rows({"a": 12, "b": 12}))
    assert run_cli(capsys, "run", str(spec), "--as-of", "2024-01-10")[0] == 0

    def interrupted(job: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "remember_model", interrupted)
    code, err = run_cli(capsys, "run", str(spec), "--as-of", "2024-01-12")
    assert code != 0 and (tmp_path / "outputs" / "mini" / "2024-01-12" / "model").is_dir(), err
    pointer = tmp_path / "models" / "mini" / "latest.json"
    assert json.loads(pointer.read_text())["as_of"] == "2024-01-10"
    monkeypatch.undo()
    code, err = run_cli(capsys, "run", str(spec), "--as-of", "2024-01-12")
    assert code == 0 and "already exist" in err, err
    assert json.loads(pointer.read_text())["as_of"] == "2024-01-12"
    before = pointer.stat().st_mtime_ns
    assert run_cli(capsys, "run", str(spec), "--as-of", "2024-01-10")[0] == 0  # a backfill
    assert json.loads(pointer.read_text())["as_of"] == "2024-01-12"
    assert pointer.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("unit", "zone", "history_days"),
    [("ns", None, 150_000), ("ns", None, 10**8), ("us", "Europe/Berlin", 10**8)],
)
def test_history_days_reaching_past_the_dtypes_range_keeps_every_row(
    tmp_path, unit, zone, history_days
):
    """A history_days window that starts before the range of the time column's dtype (1677
    for nanoseconds) kept no row of a nanosecond column (the cutoff wrapped around), and
    panicked in Rust on a zoned column; it keeps every row, and a short window still cuts."""
    days = pl.datetime_range(
        dt.datetime(2024, 1, 1), dt.datetime(2024, 4, 1), "1d", time_unit=unit, time_zone=zone,
        eager=True,
    )  # fmt: skip
    frame = _ragged(days, 0)
    spec, root = _zoned_project(tmp_path, frame, {"freq": "1d"},
                                features={"history_days": history_days})  # fmt: skip
    kept, _ = prepare_data(spec, root, None)
    assert kept.height == frame.height
    spec, root = _zoned_project(tmp_path / "short", frame, {"freq": "1d"},
                                features={"history_days": 5})  # fmt: skip
    kept, _ = prepare_data(spec, root, None)
    assert sorted(kept.group_by("id").len().rows()) == [("a", 5), ("b", 5)]


def test_max_staleness_keeps_month_ends_exactly_that_many_steps_behind(tmp_path):
    """Month-ends to April 30 with the as-of June 1 (the data's last time, month-starts):
    only May 31 of their steps is at or before it, but stale_steps counted 2 (the months
    between), so max_staleness = 1 left the series out."""
    from forecaster.jobs.schedule import stale_steps

    starts = pl.date_range(dt.date(2023, 1, 1), dt.date(2024, 6, 1), "1mo", eager=True)
    ends = pl.date_range(dt.date(2023, 1, 1), dt.date(2024, 4, 1), "1mo", eager=True)
    frame = pl.concat(
        [
            pl.DataFrame({"id": "a", "date": starts, "y": np.arange(len(starts), dtype=float)}),
            pl.DataFrame({"id": "b", "date": ends.dt.month_end(), "y": np.ones(len(ends))}),
        ]
    )
    spec, root = _zoned_project(tmp_path, frame, {"freq": "1mo", "max_staleness": 1})
    assert stale_steps(frame, spec).rows() == [("b", dt.date(2024, 4, 30), 1)]
    with pytest.warns(ForecasterWarning, match="b \\(last 2024-04-30\\) 1 step behind"):
        _, when = prepare_data(spec, root, None)
    assert when.excluded == () and when.stale_steps == (("b", 1),)


def test_as_of_refusals_lead_with_the_command_line_form(tmp_path):
    """A local --as-of the clocks skip was refused with the Python forms of predict(cutoff=)
    first and the --as-of form last; a time past a nanosecond column's range raised Polars'
    own conversion error."""
    hours = pl.datetime_range(
        dt.datetime(2024, 3, 30), dt.datetime(2024, 4, 1), "1h", time_zone="Europe/Berlin",
        time_unit="ns", eager=True,
    )  # fmt: skip
    spec, root = _zoned_project(tmp_path, _ragged(hours, 0), {"freq": "1h"})
    with pytest.raises(ArgumentError) as caught:
        prepare_data(spec, root, "2024-03-31T02:30")
    message = str(caught.value)
    assert message.startswith("--as-of '2024-03-31T02:30' does not name one instant")
    assert message.index("--as-of 2024-03-31T02:30+01:00") < message.index("datetime.datetime(")
    with pytest.raises(ArgumentError, match=r"outside the range of Datetime\(time_unit='ns'"):
        prepare_data(spec, root, "2300-01-01T00:00")


def test_the_as_of_warning_about_stale_series_is_a_stale_series_warning(tmp_path):
    """prepare_data's warning about the series that end before the as-of was a plain
    ForecasterWarning, while predict's about the same fact is a StaleSeriesWarning: a filter
    on StaleSeriesWarning silenced one and not the other."""
    from forecaster.exceptions import StaleSeriesWarning

    lines = ["id,date,y"]
    for key, n in (("a", 30), ("b", 27)):
        lines += [f"{key},{dt.date(2024, 1, 1) + dt.timedelta(days=i)},{i}.0" for i in range(n)]
    spec, root = load_spec(scheduled_project(tmp_path, "\n".join(lines) + "\n"))
    with pytest.warns(StaleSeriesWarning, match="1 series ends before the as-of"):
        prepare_data(spec, root, None)


def test_the_log_line_names_the_series_of_a_panel_without_ids_as_such():
    """A panel without an id column: the calibration's log line said "1 series ('the
    series') gets ..."; it says "the series gets ..."."""
    from forecaster.jobs.intervals import _named

    assert _named(["the series"]) == "the series"
    assert _named(["a", "b"]) == "2 series ('a', 'b')"


def test_a_run_shows_the_backtests_own_cutoffs_of_a_series_ending_early(tmp_path, capsys):
    """ "b" ends 2 days before "a": the run's calibration and its backtest each left it out of
    the calendar folds after its end, with one warning each naming their cutoffs, and a log
    tells a fact once (dates masked), so the run showed the calibration's cutoffs, from folds
    of no backtest. The calibration's is silenced by its class (CalendarFoldsWarning; its plan
    handles the series and its log line names its folds): the run shows the backtest's."""
    day = dt.date(2024, 1, 1)
    lines = [f"a,{day + dt.timedelta(days=i)},{(i * 7) % 5 + 0.1 * i}" for i in range(60)]
    lines += [f"b,{day + dt.timedelta(days=i)},{i % 3 + 0.5}" for i in range(58)]
    spec = csv_project(tmp_path, "id,date,y\n" + "\n".join(lines) + "\n")
    text = spec.read_text().replace("backtest_folds = 0", "backtest_folds = 3")
    spec.write_text(text + "\n[output]\nlevels = [80]\nplot_series = 0\n")
    cutoffs = re.compile(r"Left out \d+ \(fold, series\) forecasts .* \(cutoffs (\S+ to \S+)\)")
    code, err = run_cli(capsys, "backtest", str(spec))
    assert code == 0, err
    assert len(backtest := cutoffs.findall(err)) == 1, err
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert cutoffs.findall(err) == backtest, err


@pytest.mark.slow
def test_a_run_logs_no_infinite_score_to_mlflow_nor_json(tmp_path, capsys, monkeypatch):
    """Intermittent demand scored by MAPE: the backtest's MAPE is inf (with a warning), which
    summary.json writes null and the fit's own backtest metrics leave out, but the run logged
    it to MLflow, whose SQL store keeps 1.8e308 for inf (pipeline_backtest_mape and
    backtest_mape_by_step): it is left out there too; the finite scores are logged. The
    backtest command's --json-logs summary writes it null, as summary.json."""
    import json

    pytest.importorskip("mlflow")
    spec = _tracked_project(tmp_path, monkeypatch)
    lines = rows(16).splitlines()  # series a: 0 but for a 5 every fourth day
    zeros = [f"a,{d},{5.0 if i % 4 == 3 else 0.0}" for i, d in enumerate(
        line.split(",")[1] for line in lines[1:17])]  # fmt: skip
    (tmp_path / "data" / "prices.csv").write_text("\n".join([lines[0], *zeros, *lines[17:]]))
    text = spec.read_text().replace(
        "backtest_folds = 1", 'backtest_folds = 1\nmetrics = ["mae", "mape"]'
    )
    spec.write_text(text)
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    assert "MAPE is infinite for series ['a']" in err, err
    summary = json.loads(next((tmp_path / "outputs").rglob("summary.json")).read_text())
    assert summary["metrics"]["backtest_mape"] is None, summary["metrics"]
    (run,) = _runs(tmp_path)
    logged = run.data.metrics
    assert "pipeline_backtest_mae" in logged and "backtest_mae_by_step" in logged, logged
    assert not [k for k, v in logged.items() if not v < 1e300], logged
    # --json-logs wrote it as Infinity, which is not JSON (jq and strict parsers refuse it)
    out = tmp_path / "b.parquet"
    assert main(["backtest", str(spec), "--out", str(out), "--no-progress", "--json-logs"]) == 0

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in a JSON log line")

    lines = [
        json.loads(line, parse_constant=refuse) for line in capsys.readouterr().out.splitlines()
    ]
    shown = next(line["summary"] for line in lines if "summary" in line)["metrics"]
    assert shown["backtest_mape"] is None and shown["backtest_mae"] > 0, shown


def test_run_pipelines_as_of_hint_admits_every_kind_it_reads():
    """run_pipeline's ``as_of`` was hinted ``str | None`` though it reads dates, datetimes,
    ints, numpy integers and datetime64, polars literals and one-value Series (a type
    checker refused ``as_of=datetime.date(...)``): the hint admits each of them."""
    import typing

    from forecaster.jobs.data import as_of_text

    hint = typing.get_type_hints(run_pipeline)["as_of"]
    day = dt.date(2024, 1, 5)
    values = [
        "2024-01-05", day, dt.datetime(2024, 1, 5, 12), 5, np.int64(5),
        np.datetime64("2024-01-05"), pl.date(2024, 1, 5), pl.Series([day]),
    ]  # fmt: skip
    for value in values:
        assert as_of_text(value) is not None, value
        assert isinstance(value, hint), (value, hint)
    assert isinstance(None, hint)


def test_a_backfill_reads_the_targets_as_the_run_on_its_as_of_did(tmp_path):
    """Each series was cut at its last target value over the whole source, then at the
    as-of: a series whose values up to the as-of end in nulls, filled later (g: none from
    01-12 to 01-21), failed a backfill as missing values while the run on the as-of, whose
    data ended there, took it as stale; one with no target value up to the as-of (x: its
    first on 01-21) failed it too, where that run dropped it. The rows after the as-of
    decided. Now each series ends at its last target value up to the as-of: g stale, x
    dropped as after_as_of (named with its first value), as on the as-of itself."""
    day = dt.date(2024, 1, 1)

    def lines(key: str, days: range, known: Callable[[int], bool]) -> list[str]:
        value = lambda i: f"{i % 4 + 0.5}" if known(i) else ""  # noqa: E731
        return [f"{key},{day + dt.timedelta(days=i)},{value(i)}" for i in days]

    def data(days: range) -> str:
        text = ["id,date,y", *lines("a", days, lambda i: True), *lines("b", days, lambda i: True)]
        text += lines("g", days, lambda i: not 10 < i <= 20) + lines("x", days, lambda i: i > 19)
        return "\n".join(text) + "\n"

    results = []
    for name, days in (("live", range(15)), ("backfill", range(30))):
        spec = scheduled_project(tmp_path / name, data(days), series={"stale": "forecast"})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = run_pipeline(spec, as_of="2024-01-15", dry_run=True, progress=False)
        results.append(result)
        told = " ".join(str(w.message) for w in caught)
    live, backfill = results
    assert backfill.stale_series == live.stale_series == {"g": "2024-01-11"}
    assert backfill.series == live.series == 3
    assert backfill.dropped_reasons == {"x": "after_as_of"}
    assert "x (first 2024-01-21)" in told, told


# numbers written with a decimal comma, CSV read errors (scheduler hunt leftovers)
# ------------------------------------------------------------------------------------------


def decimal_comma_rows(sep: str = ",", future: bool = False) -> str:
    """Daily rows of a and b from 2024-01-01, y written with a decimal comma (``"9,868"``,
    quoted when ``sep`` is ','); with ``future``, a promo column and two rows per series of
    promo only (the target written as the empty text ``""``, as such exports write it)."""
    quote = '"' if sep == "," else ""
    lines = [sep.join(["id", "date", "y", *(["promo"] if future else [])])]
    for k, key in enumerate(("a", "b")):
        for i in range(14 if future else 12):
            y = f"{quote}{10 * k + i % 5},{868 + i}{quote}" if i < 12 else '""'
            promo = [str(i % 3)] if future else []
            lines.append(
                sep.join([key, f"{dt.date(2024, 1, 1) + dt.timedelta(days=i)}", y, *promo])
            )
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("future", [False, True])
def test_decimal_comma_targets_are_refused_naming_the_column_and_the_spec_key(
    tmp_path, capsys, future
):
    """Targets written "9,868" with future covariates were refused blaming the future
    covariates (the rows of promo only, "" as their target, moved the as-of to the last of
    them); without, the message offered only a Python fix. Both name the target column, a few
    of its texts and source.decimal_comma, before any as-of is taken."""
    series = {"future_covariates": ["promo"]} if future else {}
    spec = scheduled_project(tmp_path, decimal_comma_rows(future=future), series=series)
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3, err
    assert "Target column 'y' must be numeric, got String" in err, err
    assert "e.g. '0,868', '1,869'" in err and "decimal_comma = true" in err, err
    assert "future covariates" not in err and "pl.col" not in err, err


@pytest.mark.parametrize("sep", [",", ";"])
@pytest.mark.parametrize("future", [False, True])
def test_source_decimal_comma_reads_csv_numbers_with_a_comma(tmp_path, capsys, sep, future):
    """source.decimal_comma = true reads 9,868 as 9.868 (polars' decimal_comma): unquoted
    with separator ';', quoted with ','. The empty texts of the rows ahead are listed in
    null_values, as the refusal says."""
    series = {"future_covariates": ["promo"]} if future else {}
    source = {"separator": sep, "decimal_comma": True, "null_values": [""] if future else None}
    data = decimal_comma_rows(sep, future)
    spec = scheduled_project(tmp_path, data, source=source, series=series)
    loaded, root = load_spec(spec)
    frame, when = prepare_data(loaded, root, None)
    assert frame.schema["y"] == pl.Float64 and when.label == "2024-01-12"
    assert frame.filter(pl.col("id") == "b")["y"].head(2).to_list() == [10.868, 11.869]
    assert run_cli(capsys, "run", str(spec), "--dry-run")[0] == 0


def test_source_decimal_comma_tells_its_limits_and_keeps_the_spec_hash(tmp_path, capsys):
    """With decimal_comma = true a number with a thousands separator (1.234,5) is not read
    as one: the refusal says how such numbers are written. Written false, the key leaves the
    spec's hash as it was (outputs, models and studies stay the spec's)."""
    data = decimal_comma_rows(";").replace("b;2024-01-03;12,870", "b;2024-01-03;1.234,5")
    source = {"separator": ";", "decimal_comma": True}
    spec = scheduled_project(tmp_path, data, source=source)
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3 and "e.g. '1.234,5'" in err and "without a thousands separator" in err, err
    assert "'0,868'" not in err, err  # the numbers it reads are not named
    keys: list[dict[str, object]] = [{}, {"decimal_comma": False}, {"decimal_comma": True}]
    hashes = [
        spec_hash(load_spec(scheduled_project(tmp_path / str(k), "", source=key))[0])
        for k, key in enumerate(keys)
    ]
    assert hashes[0] == hashes[1] == "6036297bb8e1" != hashes[2]  # the hash before the key


def test_source_decimal_comma_is_refused_for_parquet(tmp_path, capsys, tree_guard):
    """Parquet columns have their types: decimal_comma there would be ignored, so it is
    refused (exit 2) naming the key and format = 'csv', before any data is read."""
    spec = scheduled_project(
        tmp_path, "", source={"path": "data/*.parquet", "format": "parquet", "decimal_comma": True}
    )
    guard = tree_guard(tmp_path)
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 2, err
    assert "key 'source.decimal_comma' is used only with format = 'csv'" in err, err
    guard.assert_unchanged()


@pytest.mark.slow
def test_the_dry_run_of_a_tuning_counts_the_trials_the_study_has(tmp_path, capsys):
    """`run --tune --dry-run` planned "3 trials" whatever the study held, though its resume
    runs only the trials still missing (none once it has them all). The plan counts the
    study's finished trials as the resume does, and says how many would run."""
    pytest.importorskip("optuna")
    training = {**TUNED, "trials": 3}
    spec = scheduled_project(tmp_path, rows(24), training=training)
    assert "tune RNNForecaster (3 trials, no time limit, " in plan_of(capsys, spec, "--tune")
    code, err = run_cli(capsys, "tune", str(spec), "--trials", "2")
    assert code == 0, err
    tuned = plan_of(capsys, spec, "--tune")
    assert "(1 more trial: the study has 2 of the 3 finished, no time limit, " in tuned, tuned
    spec.write_text(spec.read_text().replace("trials = 3", "trials = 2"))
    tuned = plan_of(capsys, spec, "--tune")
    assert "(no trial: the study has 2 finished trials of the 2 wanted, " in tuned, tuned
    code, err = run_cli(capsys, "run", str(spec), "--tune")
    assert code == 0, err
    (trials,) = _study_trials(tmp_path).values()
    assert len(trials) == 2  # the run ran none, as planned


def test_the_backtest_log_and_summary_name_the_same_series_left_unscored(tmp_path, capsys):
    """Series too short for the folds: the backtest's summary listed them in unscored_series
    (dropped_series: []), while its log said "Dropped 3 series shorter than 6 rows (lookback
    + horizon before the panel's validation hold-out time)": the warning of a check of all the
    data, which the backtest never fits, by another rule than its folds'. The log names them
    as the summary does: left out of the folds, unscored_series."""
    lengths = {"a": 30, "b": 30, "c": 5, "d": 3, "e": 7}
    lines = ["id,date,y"] + [
        f"{key},{dt.date(2024, 1, 30) - dt.timedelta(days=n - 1 - i)},{k + i % 5 + 0.5}"
        for k, (key, n) in enumerate(lengths.items())
        for i in range(n)
    ]
    spec = scheduled_project(tmp_path, "\n".join(lines) + "\n", evaluation={"backtest_folds": 2})
    code = main(["backtest", str(spec), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Dropped" not in err, err
    assert "Left out 3 series shorter than the 8 rows that 2 folds need: ['c', 'd', 'e']" in err
    assert "; no fold scored 3 series (unscored_series): 'c', 'd', 'e'\n" in out, out
    summary = json.loads(
        (tmp_path / "outputs" / "mini" / "2024-01-30.backtest.summary.json").read_text()
    )
    assert summary["unscored_series"] == ["c", "d", "e"] and summary["dropped_series"] == []


SHORT_SERIES_LOG = (
    "The model is fitted without 3 series shorter than a training window (lookback 4 + horizon "
    "2 rows before the validation hold-out): 'c', 'd', 'e'. It still forecasts 2 of them from "
    "their last 4 rows (its lookback): 'c', 'e'. 1 has fewer rows than the lookback and is "
    "neither fitted nor forecast (dropped_series): 'd'."
)


@pytest.mark.parametrize(
    "args", [("--dry-run",), pytest.param((), marks=pytest.mark.slow)], ids=["dry-run", "run"]
)
def test_the_run_log_names_the_short_series_it_still_forecasts(tmp_path, capsys, args):
    """A run logged the fit's "Dropped 3 series shorter than 6 rows (lookback + horizon before
    the panel's validation hold-out time): 'c', 'd', 'e'", yet forecast 'c' and 'e' (the
    fitted model reads a series' last lookback rows: only 'd', shorter than the lookback, is
    dropped, as summary.json's dropped_series says). The log says what the run does with
    each: left out of the fit, still forecast, or neither."""
    lengths = {"a": 30, "b": 30, "c": 5, "d": 3, "e": 7}
    lines = ["id,date,y"] + [
        f"{key},{dt.date(2024, 1, 30) - dt.timedelta(days=n - 1 - i)},{k + i % 5 + 0.5}"
        for k, (key, n) in enumerate(lengths.items())
        for i in range(n)
    ]
    spec = scheduled_project(tmp_path, "\n".join(lines) + "\n")
    code, err = run_cli(capsys, "run", str(spec), *args)
    assert code == 0, err
    assert SHORT_SERIES_LOG in err, err
    assert "Dropped 3 series" not in err, err
    if args:
        return
    assert "Dropped 1 series shorter than 4 rows (the fitted lookback): 'd'." in err, err
    (folder,) = (tmp_path / "outputs" / "mini").glob("2024-01-30")
    forecast = pl.read_parquet(folder / "forecasts.parquet")
    assert sorted(forecast["id"].unique()) == ["a", "b", "c", "e"]
    assert json.loads((folder / "summary.json").read_text())["dropped_series"] == ["d"]


def short_series_project(tmp_path: Path, **sections: Any) -> Path:
    """The project of :data:`SHORT_SERIES_LOG`: a and b fitted, c and e forecast only, d
    neither."""
    lengths = {"a": 30, "b": 30, "c": 5, "d": 3, "e": 7}
    lines = ["id,date,y"] + [
        f"{key},{dt.date(2024, 1, 30) - dt.timedelta(days=n - 1 - i)},{k + i % 5 + 0.5}"
        for k, (key, n) in enumerate(lengths.items())
        for i in range(n)
    ]
    return scheduled_project(tmp_path, "\n".join(lines) + "\n", **sections)


@pytest.mark.parametrize(
    "args", [("--dry-run",), pytest.param((), marks=pytest.mark.slow)], ids=["dry-run", "run"]
)
def test_the_summary_counts_the_series_forecast_and_those_fitted(tmp_path, capsys, args):
    """summary.json's series (and the log's "summary ... 2 series") counted the fitted series
    while the run forecast 4 (c and e, too short for a training window, are forecast from
    their last lookback rows): series counts those forecast, as predict's summary does,
    fitted_series those fitted."""
    spec = short_series_project(tmp_path)
    code = main(["run", str(spec), *args, "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    line = "dry run  mini" if args else "summary  mini"
    assert f"{line} as of 2024-01-30: 4 series forecast (2 fitted), 72 rows" in out, out
    if args:
        return
    summary = json.loads(
        (tmp_path / "outputs" / "mini" / "2024-01-30" / "summary.json").read_text()
    )
    assert (summary["series"], summary["rows"]) == (4, 72)
    assert (summary["fitted_series"], summary["fitted_rows"]) == (2, 60)


def test_a_run_that_reuses_a_model_does_not_say_it_fitted_one(tmp_path, capsys):
    """With training.reuse_model the run said "The model is fitted without 3 series shorter
    than a training window ...", of a model it reuses, not fits: it says what a fit on this
    data would leave out."""
    spec = short_series_project(tmp_path, training={"reuse_model": True})
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 0, err
    assert "The model is fitted without" not in err, err
    assert (
        "3 series are shorter than a training window (lookback 4 + horizon 2 rows before the "
        "validation hold-out): 'c', 'd', 'e': a model fitted on this data leaves them out "
        "(training.reuse_model forecasts with the latest model, fitted on earlier data, where "
        "there is one to reuse). The run still forecasts 2 of them"
    ) in err, err
    code, err = run_cli(capsys, "run", str(spec), "--dry-run", "--tune")
    assert SHORT_SERIES_LOG in err, err  # --tune: no model is reused


@pytest.mark.slow
def test_summary_json_names_integer_ids_as_the_same_text_in_every_field(tmp_path, capsys):
    """excluded_series listed integer ids as text (['42']) and was taken for a slip: every
    field of summary.json names a series by the same text (the keys of stale_series,
    stale_steps and dropped_reasons can be nothing else in JSON), so a reader matches them
    with one conversion, str(id)."""
    series = {42: (30, 20), 7: (20, 20), 1000: (30, 2)}  # id: (last day of January, rows)
    lines = ["id,date,y"] + [  # 7: stale, excluded; 1000: too short, dropped
        f"{key},{dt.date(2024, 1, end) - dt.timedelta(days=n - 1 - i)},{i % 5 + 0.5}"
        for key, (end, n) in series.items()
        for i in range(n)
    ]
    spec = scheduled_project(tmp_path, "\n".join(lines) + "\n")
    code, err = run_cli(capsys, "run", str(spec))
    assert code == 0, err
    summary = json.loads(
        (tmp_path / "outputs" / "mini" / "2024-01-30" / "summary.json").read_text()
    )
    assert summary["excluded_series"] == ["7"] and list(summary["stale_series"]) == ["7"], summary
    assert list(summary["stale_steps"]) == ["7"] and summary["dropped_series"] == ["1000"]
    assert summary["dropped_reasons"] == {"1000": "too_short"}, summary


def rows_with_line(line: int, text: str, n: int = 150) -> str:
    """:func:`rows` of ``n`` days per series, the line ``line`` (1: the header) replaced by
    ``text``."""
    lines = rows(n).splitlines()
    lines[line - 1] = text
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("line", "text", "told"),
    [
        (181, "b,2024-01-31,3.5,7", "line 181 has 4 fields, where the header has 3"),
        (281, "b,2024-05-09,abc", "line 281 has 'abc' in column 'y', read as f64"),
        (221, 'b,2024-03-11,"5', "line 221: a quoted field starts on it and is never closed"),
    ],
    ids=["ragged", "text-in-numbers", "unclosed-quote"],
)
@pytest.mark.parametrize("files", [1, 2])
def test_csv_read_errors_name_the_file_and_the_line(tmp_path, capsys, line, text, told, files):
    """A CSV read error named source.path and the reader's words only ("found more fields
    than defined in 'Schema'", "CSV malformed: ... in chunk starting at row_offset 219"):
    it names the file and the line (counted from the header, line 1), exit 3 as before; with
    two files, the one that holds it (b's rows in b.csv)."""
    data = rows_with_line(line, text)
    spec = scheduled_project(tmp_path, data)
    name = "data/prices.csv"
    if files == 2:
        header, *body = data.splitlines()
        (tmp_path / name).unlink()
        for key in "ab":
            kept = [row for row in body if row.startswith(f"{key},")]
            (tmp_path / "data" / f"{key}.csv").write_text("\n".join([header, *kept]) + "\n")
        name, told = "data/b.csv", told.replace(f"line {line}", f"line {line - 150}")
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3, err
    assert f"In {name}, {told}" in err, err


def test_bad_line_reads_gzip_files_and_long_unclosed_quotes(tmp_path):
    """The line of a gzip CSV is named too, and a quote left open above a long tail (more
    than the csv module's field limit) is named as never closed, not as a long field."""
    from forecaster.jobs.csv_lines import bad_line

    spec, _ = load_spec(scheduled_project(tmp_path, rows()))
    packed = tmp_path / "data" / "p.csv.gz"
    with gzip.open(packed, "wt") as file:
        file.write("id,date,y\na,2024-01-01,1\na,2024-01-02,2,3\n")
    assert bad_line(packed, spec, "found more fields") == (
        "line 3 has 4 fields, where the header has 3 (','-separated; a value holding ',' is quoted)"
    )
    tail = "".join(f"a,2024-01-01,{i}\n" for i in range(20_000))
    long = tmp_path / "data" / "long.csv"
    long.write_text(f'id,date,y\na,2024-01-01,1\na,2024-01-02,"2\n{tail}')
    assert bad_line(long, spec, "CSV malformed") == (
        "line 3: a quoted field starts on it and is never closed (a '\"' missing)"
    )


def test_bad_line_stops_a_quote_never_closed_at_its_field_limit(tmp_path):
    """The csv module's field limit was lifted to 2**31 - 1 characters: a quote never closed
    near the top of a large file held the rest of the file in the module's buffer (4 bytes a
    character: 390 MB more and 2.7 s for a 100 MB file, where the read stopped at once). The
    limit is 16,777,216 characters: a longer run is named as such."""
    from forecaster.jobs.csv_lines import bad_line

    spec, _ = load_spec(scheduled_project(tmp_path, rows()))
    long = tmp_path / "data" / "long.csv"
    tail = "a,2024-01-01,1.5\n" * (2**24 // 17 + 1000)  # past 2**24 characters
    long.write_text(f'id,date,y\na,2024-01-01,1\na,2024-01-02,"2\n{tail}')
    assert bad_line(long, spec, "CSV malformed") == (
        "line 3: a field starts on it and runs past 16,777,216 characters (a quote never "
        "closed, or not a text file)"
    )
    assert csv.field_size_limit() == 131_072


@pytest.mark.parametrize("files", [1, 2])
@pytest.mark.parametrize(
    ("text", "told"),
    [
        ("b,2024-01-31", "line 181 has 2 fields, where the header has 3 (','-separated)"),
        ('"b"', "line 181 has 1 field, where the header has 3 (','-separated)"),
    ],
    ids=["one-missing", "id-only"],
)
def test_a_csv_line_with_too_few_fields_is_refused(tmp_path, capsys, text, told, files):
    """A line with fewer fields than the header was read with its missing fields as empty
    values (y null, then filled by missing="ffill" or refused as a gap elsewhere): silently
    wrong. Refused naming the file, the line and the field counts, exit 3; with two files,
    the one that holds it. A last column left empty on purpose ('b,2024-01-07,') is still
    read."""
    data = rows_with_line(181, text)
    spec = scheduled_project(tmp_path, data, series={"missing": "ffill"})
    name = "data/prices.csv"
    if files == 2:
        header, *body = data.splitlines()
        (tmp_path / name).unlink()
        for key in "ab":
            kept = [row for row in body if row.startswith((f"{key},", f'"{key}"'))]
            (tmp_path / "data" / f"{key}.csv").write_text("\n".join([header, *kept]) + "\n")
        name, told = "data/b.csv", told.replace("line 181", "line 31")
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3, err
    assert f"Cannot read source.path 'data/*.csv' as csv: in {name}, {told}. The reader" in err
    assert "Write every field of the line" in err, err
    fine = rows().replace("b,2024-01-07,16.5\n", "b,2024-01-07,\n")
    assert fine != rows()
    spec = scheduled_project(tmp_path / "fine", fine, series={"missing": "ffill"})
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 0, err


def test_a_short_line_of_a_zstd_file_without_quotes_is_refused(tmp_path, capsys):
    """A .zst file's short line was read with its missing fields empty, without a word (the
    csv module, which named it in other files, does not open .zst): a file without a quote is
    read by Polars as whole lines, .zst too, and the line is named."""
    pa = pytest.importorskip("pyarrow")
    data = rows().replace("b,2024-01-12,21.5\n", "b,2024-01-12\n")
    assert data != rows()
    spec = scheduled_project(tmp_path, data, series={"missing": "ffill"})
    spec.write_text(spec.read_text().replace("data/*.csv", "data/*.csv.zst"))
    (tmp_path / "data" / "prices.csv").unlink()
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data.encode())
    (tmp_path / "data" / "prices.csv.zst").write_bytes(sink.getvalue().to_pybytes())
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3, err
    told = "in data/prices.csv.zst, line 25 has 2 fields, where the header has 3 (','-separated)"
    assert told in err, err


@pytest.mark.parametrize(
    ("text", "told"),
    [
        ("id,date,y\r\na,1,2\r\n\r\n \r\na,3\r\n", "line 4 has 1 field"),  # CRLF, blank
        ("id,date,y\n\na,1,\na,2,3\nb,4\n", "line 5 has 2 fields"),  # an empty last value
        ("\ufeffid;date;y\na;1;2\na;2\n", "line 3 has 2 fields"),  # BOM, ';'
        ("id,date,y,\na,1,2\n", "line 2 has 3 fields, where the header has 4 (','-separated;"),
        ("id,date,y\na,1,2\na,2,\n", None),
    ],
)
def test_short_line_by_lines_and_by_records_agree(tmp_path, text, told):
    """short_line reads a file without a quote as whole lines (Polars), one with a quote
    record by record (csv module): the same line is named either way."""
    from forecaster.jobs.csv_lines import short_line

    separator = ";" if ";" in text else ","
    spec, _ = load_spec(scheduled_project(tmp_path, rows(), source={"separator": separator}))
    plain, quoted = tmp_path / "plain.csv", tmp_path / "quoted.csv"
    plain.write_bytes(text.encode())
    first = text.split("\n", 1)
    quoted.write_bytes((first[0] + "\n" + first[1].replace("a", '"a"', 1)).encode())
    found = [short_line(path, spec) for path in (plain, quoted)]
    if told is None:
        assert found == [None, None]
    else:
        assert found[0] == found[1] and found[0].startswith(told), found


def test_csv_read_errors_name_an_empty_extra_field_and_an_unnamed_last_column(tmp_path):
    """Too many fields where the extra one is empty (a separator at the end of a line), and
    a header ending with a separator (every line one field short), are named as such."""
    from forecaster.jobs.csv_lines import bad_line, short_line

    spec, _ = load_spec(scheduled_project(tmp_path, rows()))
    data = tmp_path / "data" / "p.csv"
    data.write_text("id,date,y\na,2024-01-01,1\na,2024-01-02,2,\n")
    assert bad_line(data, spec, "found more fields") == (
        "line 3 has 4 fields, where the header has 3 (','-separated; a value holding ',' is "
        "quoted; the extra field is empty: a separator at the end of the line?)"
    )
    data.write_text("id,date,y,\na,2024-01-01,1\n")
    assert short_line(data, spec) == (
        "line 2 has 3 fields, where the header has 4 (','-separated; the header's last field "
        "is empty: a separator at the end of it?)"
    )


def test_bad_line_reads_past_a_long_quoted_field(tmp_path):
    """A legal quoted field longer than the csv module's field limit (131,072 characters: a
    long note, an embedded document) was named as "a quoted field ... never closed" when a
    line below it failed the read: the line named is the one that fails, the field is read."""
    from forecaster.jobs.csv_lines import bad_line

    spec, _ = load_spec(scheduled_project(tmp_path, rows()))
    note = "x" * 200_000
    data = tmp_path / "data" / "notes.csv"
    data.write_text(
        f'id,date,y,note\na,2024-01-01,1,"{note}"\na,2024-01-02,2,"{note}\n{note}"\n'
        "a,2024-01-03,3,ok,extra\n"
    )
    assert bad_line(data, spec, "found more fields") == (
        "line 5 has 5 fields, where the header has 4 (','-separated; a value holding ',' is quoted)"
    )
    assert csv.field_size_limit() == 131_072  # the module's limit is put back


def test_source_decimal_comma_names_the_numbers_written_with_a_point(tmp_path, capsys):
    """With decimal_comma = true the reader does not read 1234.5 (a decimal point) as a
    number: the column stays text. The refusal named no value then ("got String." alone, the
    check took 1234.5 for a number), though such values are what is to be fixed."""
    data = decimal_comma_rows(";").replace("b;2024-01-03;12,870", "b;2024-01-03;1234.5")
    spec = scheduled_project(tmp_path, data, source={"separator": ";", "decimal_comma": True})
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3, err
    assert "got String with values that are not numbers, e.g. '1234.5'." in err, err
    assert "'0,868'" not in err, err  # the numbers it reads are not named


@pytest.mark.parametrize(
    ("text", "told"),
    [
        ('b,2024-05-09,"n/a"', "line 281 has 'n/a' in column 'y', read as f64"),
        ('b,2024-05-09,"1""5"', "line 281 has '1\"5' in column 'y', read as f64"),
    ],
    ids=["quoted", "quoted-quote"],
)
def test_csv_read_errors_name_the_line_of_a_quoted_value(tmp_path, capsys, text, told):
    """The reader names a quoted value that does not fit its column with its quotes
    ("could not parse `"n/a"`"), the csv module reads it without them: no line was named
    (exports that quote every field, numbers written "9,868" with decimal_comma)."""
    spec = scheduled_project(tmp_path, rows_with_line(281, text))
    code, err = run_cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3, err
    assert f"In data/prices.csv, {told}." in err, err


def test_the_registration_of_a_reused_model_claims_no_version_it_cannot_know():
    """A run reusing a model (training.reuse_model) said in summary.json's registration that
    the run that fitted it "registered it", which is false where that run was untracked or
    had no register_as: no version of it exists. The reason says who registers, not that
    a version exists."""
    from types import SimpleNamespace

    from forecaster.jobs.pointer import registration_plan

    job = SimpleNamespace(spec=SimpleNamespace(tracking=SimpleNamespace(register_as="m")))
    plan = registration_plan(job, "run-id", "2024-01-16")  # type: ignore[arg-type]
    assert plan is not None and plan["new_version"] is False
    assert "which registered it" not in plan["reason"]
    assert plan["reason"].startswith("the model is reused from the run of 2024-01-16: "), plan


@pytest.mark.slow
def test_a_tuned_run_names_the_series_its_tuned_lookback_leaves_out_of_the_fit(
    tmp_path, capsys, monkeypatch
):
    """The run names the series too short for the spec's model (fit_short, with the lookback
    'auto' chose: 12) and silenced the fit's "Dropped ..." in make_model, the tuned refit's
    too: the series a tuned model (lookback 8, needing 10 rows) leaves out of its fit were
    named with the spec's model's windows only. The tuned model's fit names them again."""
    import types

    import forecaster.tuning as tuning

    def tune(estimator, frame, **kwargs):  # a study whose best trial chose lookback 8
        model = estimator.set_params(lookback=8).fit(frame)
        study = types.SimpleNamespace(trials=[None])
        best = {"lookback": 8}
        return types.SimpleNamespace(
            best_estimator=model, study=study, study_name="s", best_params=best
        )

    monkeypatch.setattr(tuning, "tune", tune)
    lengths = {"a": 30, "b": 30, "f": 12}
    lines = ["id,date,y"] + [
        f"{key},{dt.date(2024, 1, 30) - dt.timedelta(days=n - 1 - i)},{k + i % 5 + 0.5}"
        for k, (key, n) in enumerate(lengths.items())
        for i in range(n)
    ]
    spec = scheduled_project(tmp_path, "\n".join(lines) + "\n", model={"lookback": None})
    code, err = run_cli(capsys, "run", str(spec), "--tune")
    assert code == 0, err
    assert "tune     over cell, head, lookback," in err, err  # the spec leaves it to the study
    dropped = "Dropped 1 series shorter than 10 rows (lookback + horizon before the panel's "
    assert f"{dropped}validation hold-out time): 'f'." in err, err
    assert err.index(dropped) > err.index("tune     over"), err  # the tuned model's fit's


def _tuned_backtest_project(folder: Path, factor: float) -> Path:
    """A spec that tunes (3 trials of 1 epoch; lookback and hidden_size searched) and
    backtests 2 folds of 2 days on 40 days of 2 series, their values from the first fold's
    first target on (2024-02-06: the first fold's cutoff is 2024-02-05) times ``factor``."""
    lines, start = ["id,date,y"], dt.date(2024, 1, 1)
    for k, key in enumerate("ab"):
        for i in range(40):
            value = 10 * k + i + 0.5 + 3 * (i % 3)
            lines.append(
                f"{key},{start + dt.timedelta(days=i)},{value * (factor if i >= 36 else 1)}"
            )
    spec = csv_project(folder, "\n".join(lines) + "\n")
    text = spec.read_text().replace("lookback = 4\n", "").replace("hidden_size = 4\n", "")
    spec.write_text(
        text.replace("backtest_folds = 0", "backtest_folds = 2") + "\n[training]\ntune = true\n"
        "trials = 3\n"
    )
    return spec


def _trial_counts(spec_path: Path) -> dict[str, int]:
    import optuna

    from forecaster.jobs.spec import storage_url

    spec, root = load_spec(spec_path)
    storage = storage_url(spec, root)
    return {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}


@pytest.mark.slow
def test_a_tuned_runs_backtest_scores_parameters_tuned_before_its_first_fold(
    tmp_path, monkeypatch, capsys
):
    """A run that tunes picked its parameters on the validation hold-out of all its data,
    which holds every backtest fold's targets, and its backtest scored them: changing only the
    values after the first fold's cutoff changed the parameters the backtest scored from it.
    The backtest's parameters are tuned on the rows before its first fold now, in a study of
    its own: the values after the cutoff change the run's model, not what the backtest
    scores (its parameters, its earliest fold's forecasts, bit for bit); the summary and the
    log say on what data they were chosen, a rerun resumes both studies without a trial and
    ``forecaster backtest`` of the spec scores the same parameters."""
    pytest.importorskip("optuna")
    import forecaster.jobs.run as run_module

    scored = []
    original = run_module.spec_backtest

    def spying(spec: Any, model: Any, frame: pl.DataFrame, **kwargs: Any) -> Any:
        result = original(spec, model, frame, **kwargs)
        scored.append((model.get_params(), result[0].forecasts.filter(pl.col("fold") == 0)))
        return result

    monkeypatch.setattr(run_module, "spec_backtest", spying)
    summaries, lines, specs = [], [], []
    for factor in (1.0, -3.0):
        specs.append(_tuned_backtest_project(tmp_path / f"x{factor}", factor))
        result = run_pipeline(specs[-1], progress=False, log=lines.append)
        summaries.append(json.loads((Path(result.output_dir) / "summary.json").read_text()))
    # the run's own model is tuned on all its data: the later values changed its choice
    assert summaries[0]["resolved_params"] != summaries[1]["resolved_params"]
    (params, earliest), (params_changed, earliest_changed) = scored
    assert params == params_changed
    actual = [name for name in earliest.columns if name.endswith("_actual")]
    assert earliest.drop(actual).equals(earliest_changed.drop(actual))
    tuning = summaries[0]["backtest_tuning"]
    assert tuning == summaries[1]["backtest_tuning"]
    assert tuning["tuned_until"] == "2024-02-05" and tuning["held_out_steps"] == 4
    assert tuning["trials"] == 3 and tuning["study"].endswith("-2024-02-09-backtest2")
    assert {k: params[k] for k in tuning["best_params"]} == tuning["best_params"]
    told = "backtest tuned on the rows up to 2024-02-05 (before the first of 2 folds; 3 trials"
    assert sum(line.startswith(told) for line in lines) == 2, lines
    counts = _trial_counts(specs[0])
    assert sorted(counts.values()) == [3, 3] and tuning["study"] in counts, counts
    plan = plan_of(capsys, specs[0], "--force")  # says the backtest's study runs no trial
    assert (
        "first fold, no trial: the study has 3 finished trials of the 3 wanted, in the study "
        f"{tuning['study']})"
    ) in plan, plan
    rerun = run_pipeline(specs[0], force=True, progress=False, log=lines.append)
    assert rerun.backtest_tuning == tuning and _trial_counts(specs[0]) == counts  # no trial
    code, err = run_cli(capsys, "backtest", str(specs[1]))
    assert code == 0, err
    command = json.loads(
        next((tmp_path / "x-3.0" / "outputs").rglob("*.backtest.summary.json")).read_text()
    )
    assert command["backtest_tuning"] == tuning
    assert command["metrics"] == {
        k: v for k, v in summaries[1]["metrics"].items() if k.startswith("backtest_")
    }


def test_the_backtests_tuning_has_a_study_of_its_own_per_count_of_folds(tmp_path, capsys):
    """The backtest's trials (scored on the rows before its first fold) never join the run's
    study, nor those of another count of folds (which the spec's hash leaves out); a dry run
    names the study."""
    from forecaster.jobs.fitting import study_name
    from forecaster.jobs.tuned_backtest import backtest_study_name

    path = csv_project(tmp_path, rows(16))
    spec, root = load_spec(path)
    _, when = prepare_data(spec, root, None)
    names = {study_name(spec, when)}
    for folds in (1, 2):
        evaluation = spec.evaluation.model_copy(update={"backtest_folds": folds})
        names.add(backtest_study_name(spec.model_copy(update={"evaluation": evaluation}), when))
    assert len(names) == 3 and f"{study_name(spec, when)}-backtest2" in names
    text = path.read_text().replace("backtest_folds = 0", "backtest_folds = 1")
    path.write_text(text + "\n[training]\ntune = true\n")
    assert (
        ", backtest 1 folds (its parameters tuned on the data before the first fold, 20 "
        f"trials, in the study {study_name(spec, when)}-backtest1)"
    ) in plan_of(capsys, path)


def test_the_backtests_tuning_ends_before_the_first_fold_of_any_lookback_it_may_choose(
    tmp_path, monkeypatch
):
    """The backtest's first cutoff on a date column is counted back from the last time of the
    series long enough for its folds: a tuned lookback longer than the spec's leaves out a
    short series that ends last ("b", 25 days, a day after the others), and the backtest of that
    choice starts a day earlier. Its tuning was given the rows up to the spec's lookback's
    cutoff, that day included: a target of the backtest it chose for. It ends at the earliest
    cutoff of the lookbacks it searches now (no training: the study is replaced)."""
    from types import SimpleNamespace

    import forecaster.tuning as tuning
    from forecaster.jobs.fitting import search_plan
    from forecaster.jobs.intervals import first_cutoff
    from forecaster.jobs.spec import build_estimator
    from forecaster.jobs.tuned_backtest import tune_for_backtest

    given = []

    def study(estimator: Any, frame: pl.DataFrame, **kwargs: Any) -> Any:
        given.append(frame)
        return SimpleNamespace(best_params={}, n_trials_finished=0)

    monkeypatch.setattr(tuning, "tune", study)
    lines, start = ["id,date,y"], dt.date(2024, 1, 1)
    series = [(f"a{k}", 0, 120) for k in range(9)] + [("b", 96, 25)]  # b ends on 2024-04-30
    for key, first, days in series:
        for i in range(first, first + days):
            lines.append(f"{key},{start + dt.timedelta(days=i)},{i % 5 + 0.5}")
    path = csv_project(tmp_path, "\n".join(lines) + "\n")
    text = path.read_text().replace("lookback = 4\n", "").replace("hidden_size = 4\n", "")
    path.write_text(text.replace("backtest_folds = 0", "backtest_folds = 2"))
    spec, root = load_spec(path)
    frame, when = prepare_data(spec, root, None)
    estimator = build_estimator(spec, False)
    choices = search_plan(spec, estimator, frame).space["lookback"].choices
    cutoffs = {first_cutoff(frame, estimator.set_params(lookback=c), 2) for c in choices}
    assert len(cutoffs) == 2, cutoffs  # the case: a choice that moves the first fold earlier
    tuned = tune_for_backtest(spec, root, frame, when, wait=0, progress=False, log=print)
    assert given[0]["date"].max() == min(cutoffs) == dt.date(2024, 4, 25)
    assert tuned.record["tuned_until"] == "2024-04-25"


def test_a_run_under_torchrun_refuses_a_backtest_that_would_tune_before_reading_data(
    tmp_path, monkeypatch
):
    """A spec that tunes and reuses its model (``reuse_model``: no tuning of its own) runs
    under torchrun; its backtest's tuning stopped rank 0 alone (tuning runs in one process),
    after the model, while the other ranks waited in the backtest's training. Every rank
    refuses it now, before the data are read, and says how to backtest it."""
    import forecaster.jobs.run as run_module

    read = []
    monkeypatch.setattr(run_module, "prepare_data", lambda *a, **k: read.append(a))
    path = csv_project(tmp_path, rows(16))
    text = path.read_text().replace("backtest_folds = 0", "backtest_folds = 1")
    path.write_text(text + "\n[training]\ntune = true\nreuse_model = true\ntrials = 1\n")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ForecasterError, match="cannot backtest a spec that tunes") as caught:
        run_pipeline(path, progress=False)
    assert "set [evaluation] backtest_folds = 0 for the torchrun run" in str(caught.value)
    assert "backtest_folds = 1" in str(caught.value) and not read
    monkeypatch.setattr(run_module, "prepare_data", prepare_data)
    path.write_text(
        text.replace("backtest_folds = 1", "backtest_folds = 0") + "\n[training]\n"
        "tune = true\nreuse_model = true\ntrials = 1\n"
    )
    with pytest.raises(ForecasterError, match="Tuning under torchrun is not supported"):
        run_pipeline(path, progress=False)  # no backtest: the run's own tuning refuses it


def test_a_backtest_that_tunes_says_how_to_get_past_a_tuning_that_holds_its_lock(tmp_path, capsys):
    """``forecaster backtest`` of a spec that tunes takes the lock of the as-of's tuning and
    does not wait: a run tuning the same as-of stopped it (exit 4) with "pass --wait", an
    option ``backtest`` refuses, and called the other process's tuning "its backtest's". It
    says to run the backtest again once that tuning ends, and names the tuning plainly."""
    from forecaster.jobs.fitting import tuned_model_dir
    from forecaster.jobs.output_locks import output_lock

    path = csv_project(tmp_path, rows(24))
    path.write_text(path.read_text() + "\n[training]\ntune = true\ntrials = 1\n")
    spec, root = load_spec(path)
    _, when = prepare_data(spec, root, None)
    with output_lock(tuned_model_dir(spec, root, when), 0.0, "a run's tuning"):
        code, err = run_cli(capsys, "backtest", str(path))
    assert code == 4, err
    text = " ".join(err.split())
    assert "running a tuning of 'hostile' as of 2024-01-24 (it holds the lock" in text, text
    assert "then run the backtest again (it does not queue)." in text and "--wait" not in text


def test_the_backtests_tuning_and_clone_end_before_the_first_fold_of_an_auto_lookback(
    tmp_path, monkeypatch
):
    """``[model] lookback = "auto"`` (kept, not searched) is chosen by the backtest's first fit
    (51 days here), which leaves out a short series that ends last ("b", 12 days, a day after
    the others), so the first fold's cutoff is a day earlier than with a one-row window. The
    first cutoff counted "auto" as 1: the backtest's tuning (and the rows a run's backtest
    with levels fits its clone on) reached a day into the first fold's targets. Both end at
    the backtest's own first cutoff now (no tuning: the study is replaced)."""
    from types import SimpleNamespace

    import forecaster.tuning as tuning
    from forecaster.evaluation.backtest import backtest
    from forecaster.jobs.intervals import before_folds
    from forecaster.jobs.spec import build_estimator
    from forecaster.jobs.tuned_backtest import tune_for_backtest

    given = []

    def study(estimator: Any, frame: pl.DataFrame, **kwargs: Any) -> Any:
        given.append(frame)
        return SimpleNamespace(best_params={}, n_trials_finished=0)

    monkeypatch.setattr(tuning, "tune", study)
    lines, start = ["id,date,y"], dt.date(2024, 1, 1)
    for key, first, days in [(f"a{k}", 0, 120) for k in range(9)] + [("b", 109, 12)]:
        for i in range(first, first + days):
            lines.append(f"{key},{start + dt.timedelta(days=i)},{i % 5 + 0.5}")
    path = csv_project(tmp_path, "\n".join(lines) + "\n")
    text = path.read_text().replace("lookback = 4\n", 'lookback = "auto"\n')
    path.write_text(text.replace("backtest_folds = 0", "backtest_folds = 2"))
    spec, root = load_spec(path)
    frame, when = prepare_data(spec, root, None)
    estimator = build_estimator(spec, False)
    with pytest.warns(ForecasterWarning):  # "b" is left out of the folds
        result = backtest(estimator, frame, folds=2, refit=False, metrics=["mae"])
    first = result.forecasts["cutoff"].min()
    assert first == dt.date(2024, 4, 25) and "b" not in result.forecasts["id"].to_list()
    tuned = tune_for_backtest(spec, root, frame, when, wait=0, progress=False, log=print)
    assert given[0]["date"].max() == first and tuned.record["tuned_until"] == "2024-04-25"
    assert before_folds(frame, estimator, 2)["date"].max() == first


def test_a_backtest_that_tunes_with_too_many_folds_says_to_use_fewer(tmp_path, capsys):
    """``forecaster backtest --folds 12`` of a spec that tunes, on 24 days: its tuning, on the
    rows before the first fold (one day), stopped it with "Cannot infer the frequency ... Pass
    freq explicitly", which no freq fixes (the backtest of a spec that does not tune says
    "Too few rows for 12 folds"). The error says on what rows the backtest's tuning ran, before
    how many folds, and to use fewer."""
    path = csv_project(tmp_path, rows(24))
    path.write_text(path.read_text() + "\n[training]\ntune = true\ntrials = 1\n")
    code, err = run_cli(capsys, "backtest", str(path), "--folds", "12")
    assert code == 3, err
    text = " ".join(err.split())
    assert (
        "The backtest's tuning, on the rows up to 2024-01-01 (before the first of 12 folds: the "
        "longest series has 1 row there), cannot run: " in text
    ), text
    assert text.endswith(
        "Or use fewer folds ([evaluation] backtest_folds; forecaster backtest --folds), which "
        "leave it more rows."
    ), text


def test_a_wildcard_in_the_project_path_matches_no_sibling_project(tmp_path):
    """A ``?`` in the project's path was a wildcard when the root was joined to
    ``source.path``: a run in ``a?b/`` read the CSV of its sibling ``a b/`` too."""
    from forecaster.jobs.sources import source_files

    own, sibling = tmp_path / "a?b", tmp_path / "a b"
    spec = csv_project(own, rows(12))
    csv_project(sibling, rows(12))
    loaded, root = load_spec(spec)
    assert source_files(loaded, root) == [own / "data" / "prices.csv"]


def test_an_as_of_with_a_utc_offset_on_a_date_column_names_the_offset(tmp_path):
    """``--as-of 2024-01-10T00:00+02:00`` (Airflow's ``{{ ts }}``) on a Date column was refused
    as "a Date column has no time of day", while ``2024-01-10T00:00`` was accepted: the cause
    is the UTC offset, and the date alone (``{{ ds }}``) is what to pass."""
    spec = csv_project(tmp_path, rows(12))
    with pytest.raises(ArgumentError) as caught:
        run_pipeline(spec, as_of="2024-01-10T00:00+02:00", dry_run=True, progress=False)
    message = str(caught.value)
    assert "UTC offset" in message and "--as-of 2024-01-10" in message
    assert "{{ ds }}" in message and "no time of day" not in message


def test_dates_written_as_integers_in_a_csv_name_the_spec_time_format(tmp_path):
    """A CSV with yyyymmdd integer dates: the gap error recommended missing='ffill' and never
    named ``[source] time_format``; under a spec it names that key."""
    lines = ["id,date,y"] + [
        f"a,{(dt.date(2024, 1, 1) + dt.timedelta(i)):%Y%m%d},{i}.5" for i in range(60)
    ]
    spec = csv_project(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(forecaster.exceptions.DataValidationError) as caught:
        run_pipeline(spec, dry_run=True, progress=False)
    message = str(caught.value)
    assert "[source] time_format = '%Y%m%d'" in message and "missing='ffill'" not in message


@pytest.mark.parametrize(
    ("command", "has", "has_not"),
    [
        ("predict", ["0 ok;", "3 invalid data"], ["4 busy", "--wait", "already written"]),
        ("backtest", ["0 ok;", "3 invalid data"], ["4 busy", "--wait", "already written"]),
        ("fit", ["0 ok;", "4 busy", "--wait queues"], ["already written"]),
        ("run", ["outputs already written", "4 busy", "--wait queues"], []),
        ("datasets", ["0 ok;", "2 bad arguments"], ["3 invalid data", "4 busy"]),
    ],
)
def test_each_command_help_lists_only_its_own_exit_codes(capsys, command, has, has_not):
    """Every command's ``--help`` had one shared epilog: ``predict`` and ``backtest`` said
    "4 busy (... --wait queues behind it)" without a ``--wait``, and ``fit`` "0 ok (also:
    outputs already written)" though a second fit refits."""
    from forecaster.jobs.parser import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    epilog = text[text.index("Exit codes:") :]
    assert all(part in epilog for part in has), epilog
    assert not any(part in epilog for part in has_not), epilog


def test_a_rerun_of_complete_outputs_in_a_read_only_folder_finds_them(tmp_path, monkeypatch):
    """A rerun of a finished as-of on a read-only outputs folder exited 1 (it could not
    create its lock file) while --dry-run said there was nothing to do: it finds the
    outputs whole under a reader's lock and is skipped, writing nothing."""
    import errno

    import filelock

    spec = csv_project(tmp_path, rows(16))
    out = Path(run_pipeline(spec, progress=False).output_dir)
    access = os.access

    def read_only(path, mode, *args, **kwargs):
        if mode & os.W_OK and Path(path) == out.parent:
            return False
        return access(path, mode, *args, **kwargs)

    def refused(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "access", read_only)
    monkeypatch.setattr(filelock.FileLock, "acquire", refused)  # no writer's lock there
    before = sorted(p.name for p in out.parent.iterdir())
    again = run_pipeline(spec, progress=False)
    assert again.status == "skipped" and Path(again.output_dir) == out
    assert sorted(p.name for p in out.parent.iterdir()) == before


@pytest.mark.slow
def test_sigterm_to_a_run_queued_with_wait_says_it_waited_and_did_nothing(tmp_path):
    """A run queued with --wait logged nothing while it waited, and a SIGTERM then said "run
    the command again to finish it (... --resume continues an interrupted fit ...)" for a
    run that never started."""
    pytest.importorskip("mlflow")
    spec = _endless_tracked_project(tmp_path)
    holder, _ = _start_run_process(spec, tmp_path)
    queued_err = tmp_path / "queued.txt"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    try:
        with open(queued_err, "wb") as stream:
            queued = subprocess.Popen(
                [sys.executable, "-m", "forecaster", "run", str(spec), "--wait"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stream,
            )
        deadline = time.monotonic() + 120
        while "waiting " not in queued_err.read_text(errors="replace"):
            assert queued.poll() is None and time.monotonic() < deadline, queued_err.read_text()
            time.sleep(0.1)
        queued.send_signal(signal.SIGTERM)
        code = queued.wait(timeout=120)
    finally:
        for process in (holder, *([queued] if "queued" in locals() else [])):
            process.kill()
            process.wait()
    stderr = queued_err.read_text(errors="replace")
    assert code == 143, stderr
    waiting, last = stderr.splitlines()[0], stderr.splitlines()[-1]
    assert waiting.startswith("waiting  for the pipeline 'hostile'") and ".lock is held" in waiting
    assert f"by process {holder.pid} on this machine" in waiting, stderr
    assert last.startswith("error: terminated (SIGTERM); it was waiting for another process's")
    assert "did nothing" in last and "--resume" not in last, stderr

"""Hostile command lines: global options in either place, explicit counts used as given or
refused with exit 2 (never replaced by the spec's value), every error type mapped to its
documented exit code with one line on stderr, and nothing written by a refused command."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from conftest import mini_spec

import forecaster._io
import forecaster.jobs.run
import forecaster.tuning
from forecaster.exceptions import (
    ConcurrentRunError,
    DataValidationError,
    ForecasterError,
    ModelFormatError,
    OwnershipError,
)
from forecaster.jobs import cli as cli
from forecaster.jobs.run import PipelineResult, SpecError

SPEC = mini_spec(training={"trials": 7, "timeout": 99.0})


@pytest.fixture
def spec(tmp_path: Path) -> str:
    (tmp_path / "data").mkdir()
    lines = ["id,date,y"] + [
        f"a,{dt.date(2024, 1, 1) + dt.timedelta(days=i)},{i}.5" for i in range(12)
    ]
    (tmp_path / "data" / "prices.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "pipelines").mkdir()
    path = tmp_path / "pipelines" / "spec.toml"
    path.write_text(SPEC)
    return str(path)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Record the arguments of run_pipeline and tune instead of running them."""
    seen: list[dict] = []

    def fake_run(spec_path, **kwargs):
        seen.append(kwargs)
        return PipelineResult(name="mini", as_of="x", status="dry-run", output_dir="o")

    def fake_tune(estimator, frame, **kwargs):
        seen.append(kwargs)
        raise ForecasterError("stop after recording")

    monkeypatch.setattr(forecaster.jobs.run, "run_pipeline", fake_run)
    monkeypatch.setattr(forecaster.tuning, "tune", fake_tune)
    return seen


# ------------------------------------------------------------------------------------------
# global options before or after the command
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_and_json_logs_work_before_the_command(tmp_path, spec, capsys, tree_guard, where):
    guard = tree_guard(tmp_path)
    for option in ("--quiet", "--json-logs"):
        args = [option, "run", spec, "--dry-run"]
        if where == "after":
            args = ["run", spec, "--dry-run", option]
        assert cli.main(args) == 0
        out = capsys.readouterr().out
        if option == "--quiet":
            assert out == ""
        else:
            assert out and all(line.startswith('{"ts": ') for line in out.splitlines())
    guard.assert_unchanged()


def test_a_failure_under_json_logs_is_one_json_line_on_stderr(tmp_path, capsys):
    """docs/pipelines.md: a failure prints one line on stderr; with --json-logs it went to
    stdout, and a scheduler that keeps stderr for failures got nothing."""
    assert cli.main(["--json-logs", "run", str(tmp_path / "nope.toml")]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert json.loads(line)["level"] == "error" and "nope.toml" in line
    assert "error" not in captured.out


@pytest.mark.parametrize(
    "args",
    [
        ["--no-progress", "run", "S"],
        ["run", "S", "--no-progress"],
        ["--quiet", "run", "S"],
        ["--json-logs", "run", "S", "--verbose"],
    ],
)
def test_no_progress_is_honoured_wherever_it_is(spec, calls, args):
    assert cli.main([spec if a == "S" else a for a in args]) == 0
    assert calls[-1]["progress"] is False


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ForecasterError("boom"), 1),
        (SpecError("boom"), 2),
        (DataValidationError("boom"), 3),
        (ConcurrentRunError("boom"), 4),
        (RuntimeError("boom"), 1),
    ],
)
@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_shows_the_traceback_and_keeps_the_exit_code(
    spec, capsys, monkeypatch, error, code, where
):
    # was: --verbose re-raised, so every failure exited 1 whatever its documented code
    monkeypatch.setattr(forecaster.jobs.run, "run_pipeline", _raiser(error))
    args = ["--verbose", "run", spec] if where == "before" else ["run", spec, "--verbose"]
    assert cli.main(args) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "boom" in err
    assert "Traceback (most recent call last)" in err and "_raiser" not in err.splitlines()[0]
    assert cli.main(["run", spec]) == code
    assert "Traceback" not in capsys.readouterr().err


def test_an_option_after_the_command_does_not_reset_one_before(spec, calls):
    assert cli.main(["--quiet", "run", spec, "--json-logs"]) == 0
    args = cli.build_parser().parse_args(["--quiet", "run", spec, "--json-logs"])
    assert args.quiet and args.json_logs and args.progress


# ------------------------------------------------------------------------------------------
# explicit counts: used as given, or exit 2; never the spec's value instead
# ------------------------------------------------------------------------------------------

BAD_COUNTS = [
    ("tune", "--trials", "0"),
    ("tune", "--trials", "-1"),
    ("tune", "--trials", "2.5"),
    ("tune", "--trials", "many"),
    ("tune", "--trials", "1e400"),
    ("tune", "--timeout", "0"),
    ("tune", "--timeout", "-5"),
    ("tune", "--timeout", "nan"),
    ("tune", "--timeout", "inf"),
    ("backtest", "--folds", "0"),
    ("backtest", "--folds", "-2"),
    ("backtest", "--folds", "1.5"),
    ("run", "--wait", "-1"),
    ("run", "--wait", "nan"),
]


@pytest.mark.parametrize(("command", "option", "value"), BAD_COUNTS)
def test_a_bad_count_exits_2_naming_the_option(
    tmp_path, spec, capsys, tree_guard, calls, command, option, value
):
    guard = tree_guard(tmp_path)
    assert cli.main([command, spec, option, value]) == 2
    err = capsys.readouterr().err
    assert f"argument {option}: expected" in err and repr(value) in err, err
    assert calls == []
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], {"n_trials": 7, "timeout": 99.0}),
        (["--trials", "1"], {"n_trials": 1, "timeout": 99.0}),
        (["--trials", "3.0"], {"n_trials": 3, "timeout": 99.0}),  # MLflow's float parameters
        (["--timeout", "0.5"], {"n_trials": 7, "timeout": 0.5}),
    ],
)
def test_explicit_tuning_counts_replace_the_specs(
    tmp_path, spec, capsys, tree_guard, calls, args, expected
):
    guard = tree_guard(tmp_path, allowed=("models",))  # the lock file of the tuning
    assert cli.main(["tune", spec, *args]) == 1  # the fake tune stops after recording
    assert {k: calls[-1][k] for k in expected} == expected
    guard.assert_unchanged()


@pytest.mark.parametrize(("args", "wait"), [([], 0.0), (["--wait"], None), (["--wait", "3"], 3.0)])
def test_wait_is_passed_as_given(spec, calls, args, wait):
    assert cli.main(["run", spec, *args]) == 0
    assert calls[-1]["wait"] == wait


# ------------------------------------------------------------------------------------------
# exit codes: one line on stderr, the documented code
# ------------------------------------------------------------------------------------------


def _raiser(error: BaseException):
    def fail(*args, **kwargs):
        raise error

    return fail


@pytest.mark.parametrize(
    ("error", "code", "prefix"),
    [
        (SpecError("bad spec"), 2, "error: invalid spec: bad spec"),
        (OwnershipError("not ours"), 2, "error: refused: not ours"),
        (ModelFormatError("broken model"), 2, "error: invalid model: broken model"),
        (DataValidationError("bad data"), 3, "error: invalid data: bad data"),
        (ConcurrentRunError("held"), 4, "error: busy: held"),
        (ForecasterError("other"), 1, "error: failed: other"),
        (
            RuntimeError("bug"),
            1,
            "error: failed: Unexpected RuntimeError in forecaster run: bug. This is a bug in "
            "forecaster: rerun with --verbose and report the traceback.",
        ),
    ],
)
def test_each_error_type_has_its_exit_code(
    tmp_path, spec, capsys, tree_guard, monkeypatch, error, code, prefix
):
    monkeypatch.setattr(forecaster.jobs.run, "run_pipeline", _raiser(error))
    guard = tree_guard(tmp_path)
    assert cli.main(["run", spec]) == code
    err = capsys.readouterr().err
    assert err == prefix + "\n"
    guard.assert_unchanged()


def test_help_documents_exit_code_4_and_wait(capsys):
    for args in (["--help"], ["run", "--help"]):
        assert cli.main(args) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "4 busy" in out and "--wait" in out
    assert "4 busy" in cli.__doc__ and "--wait" in cli.__doc__


@pytest.mark.parametrize("args", [["run"], ["run", "S", "--bogus"], ["nothing"], []])
def test_bad_usage_exits_2(tmp_path, spec, capsys, tree_guard, args):
    guard = tree_guard(tmp_path)
    assert cli.main([spec if a == "S" else a for a in args]) == 2
    assert "usage:" in capsys.readouterr().err
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# every command: the same error wrapping as run, the tracking section honoured
# ------------------------------------------------------------------------------------------


def _fitted(tmp_path: Path, spec: str, *as_of: str) -> str:
    model = tmp_path / "models" / "m"
    assert cli.main(["fit", spec, *as_of, "--out", str(model), "--quiet", "--no-progress"]) == 0
    return str(model)


@pytest.mark.slow
def test_no_command_writes_to_mlflow_when_tracking_is_off(tmp_path, spec, capsys, monkeypatch):
    # was: `forecaster tune` ignored [tracking] enabled = false and created mlflow/mlflow.db
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    text = Path(spec).read_text().replace("trials = 7\ntimeout = 99.0", "trials = 1")
    Path(spec).write_text(text)
    model = _fitted(tmp_path, spec)
    for args in (
        ["run", spec],
        ["predict", spec, "--model", model],
        ["backtest", spec, "--folds", "1"],
        ["tune", spec, "--trials", "1"],
    ):
        code = cli.main([*args, "--quiet", "--no-progress"])
        assert code == 0, (args, capsys.readouterr().err)
        assert not (tmp_path / "mlflow" / "mlflow.db").exists(), args
        assert not (tmp_path / "mlruns").exists(), args


def _tuning_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    seen: list[dict] = []

    def fake_tune(estimator, frame, **kwargs):
        seen.append(kwargs)
        raise ForecasterError("stop after recording")

    monkeypatch.setattr(forecaster.tuning, "tune", fake_tune)
    return seen


def test_a_study_holds_the_trials_of_one_as_of(tmp_path, spec, capsys, monkeypatch):
    # was: tune as of 2024-01-12, then as of 2024-01-08, reused the study measured on later data
    seen = _tuning_calls(monkeypatch)
    for as_of in ("2024-01-12", "2024-01-08", "2024-01-08"):
        assert cli.main(["tune", spec, "--as-of", as_of]) == 1
    assert cli.main(["run", spec, "--as-of", "2024-01-08", "--tune", "--no-progress"]) == 1
    names = [call["study_name"] for call in seen]
    digest = names[0].split("-")[1]  # the spec's, without its tuning budget (study_name)
    assert names[0] == f"mini-{digest}-2024-01-12" and names[1] == f"mini-{digest}-2024-01-08"
    assert names[1] == names[2] == names[3]  # run --tune and tune share the as-of's study
    assert all(call["track"] is False for call in seen)  # [tracking] enabled = false


def test_relative_sqlite_storage_is_in_the_project(tmp_path, spec, capsys, monkeypatch):
    # was: sqlite:///studies/optuna.db was resolved against the working directory
    Path(spec).write_text(
        Path(spec).read_text().replace("trials = 7", 'trials = 7\nstorage = "sqlite:///s/o.db"')
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    seen = _tuning_calls(monkeypatch)
    assert cli.main(["tune", spec]) == 1
    assert seen[0]["storage"] == f"sqlite:///{tmp_path / 's' / 'o.db'}"


@pytest.mark.parametrize("value", ["1", "5"])
def test_a_stray_rank_variable_does_not_silence_fit_and_run(
    tmp_path, spec, capsys, tree_guard, monkeypatch, value
):
    # was: RANK=1 without a torchrun launch made fit and run silent no-ops that exited 0
    from forecaster.training import distributed as distributed

    for name in ("WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RANK", value)
    monkeypatch.setattr(distributed, "_STRAY_WARNED", set())
    guard = tree_guard(tmp_path, allowed=("outputs", "models"))
    assert cli.main(["run", spec, "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "outputs" / "mini" / "2024-01-12" / "forecasts.parquet").is_file()
    assert f"RANK={value}" in captured.err and "no distributed launch" in captured.err
    assert "summary" in captured.out  # not silenced as a non-zero rank would be
    assert cli.main(["fit", spec, "--no-progress", "--quiet"]) == 0
    assert (tmp_path / "models" / "mini" / "2024-01-12" / "manifest.json").is_file()
    guard.assert_unchanged()


@pytest.mark.parametrize("command", ["predict", "backtest", "run"])
def test_a_full_disk_is_the_systems_message_with_exit_1(
    tmp_path, spec, capsys, tree_guard, monkeypatch, command
):
    # was: predict --out raised a raw Polars ComputeError; run said "Unexpected ... bug"
    model = _fitted(tmp_path, spec)
    try:
        pl.DataFrame({"a": list(range(100_000))}).write_parquet("/dev/full")
    except pl.exceptions.ComputeError as exc:
        full = exc
    else:  # pragma: no cover - a system without /dev/full
        pytest.skip("no /dev/full")

    def disk_full(self, *args, **kwargs):
        raise full

    monkeypatch.setattr(pl.DataFrame, "write_parquet", disk_full)
    guard = tree_guard(tmp_path, allowed=("outputs",))
    args = {"predict": ["--model", model], "backtest": ["--folds", "1"]}
    code = cli.main([command, spec, *args.get(command, []), "--no-progress"])
    err = capsys.readouterr().err
    last = err.splitlines()[-1]  # after the command's step lines
    assert code == 1 and last.startswith("error: failed: No space left on device"), err
    assert "Unexpected" not in err and "Traceback" not in err
    assert not list((tmp_path / "outputs").rglob("*.parquet"))
    guard.assert_unchanged()


@pytest.mark.parametrize("command", ["predict", "backtest"])
def test_a_read_only_folder_is_the_systems_message_with_exit_1(
    tmp_path, spec, capsys, tree_guard, monkeypatch, command
):
    # was: a raw PermissionError escaped predict and backtest (run wrapped it)
    # (backtest: a model of the data before its one fold; a later one is refused)
    model = _fitted(tmp_path, spec, *(["--as-of", "2024-01-10"] if command == "backtest" else []))

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(forecaster._io, "write_atomic", denied)
    guard = tree_guard(tmp_path)
    extra = ["--folds", "1"] if command == "backtest" else []
    code = cli.main([command, spec, "--model", model, *extra, "--out", str(tmp_path / "f.parquet")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: failed: Permission denied: "), err
    assert str(tmp_path / "f.parquet") in err
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "S", "--model", "M", "--out", ""], "argument --out: expected a path"),
        (["predict", "S", "--model", "", "--out", "x"], "argument --model: expected a path"),
        (["fit", "S", "--out", "  "], "argument --out: expected a path"),
        (["run", ""], "argument spec: expected a path"),
        (["fit", "S", "--out", "F/model"], "goes through"),
        (["predict", "S", "--model", "M", "--out", "F/x.parquet"], "goes through"),
        (["backtest", "S", "--out", "F/x.parquet"], "goes through"),
        (["fit", "S", "--out", "x" * 300], "300 bytes"),
        (["predict", "S", "--model", "M", "--out", "y" * 240], "a name can have"),
    ],
    ids=[
        "predict-empty-out",
        "empty-model",
        "fit-blank-out",
        "empty-spec",
        "fit-under-a-file",
        "predict-under-a-file",
        "backtest-under-a-file",
        "fit-name-too-long",
        "predict-name-too-long",
    ],
)
def test_path_arguments_that_name_no_usable_path_exit_2(
    tmp_path, spec, capsys, tree_guard, monkeypatch, args, message
):
    # was: --out "" wrote the default path (exit 0); fit --out afile/model a raw
    # FileExistsError (exit 1); a name over 255 bytes a raw OSError 36
    monkeypatch.chdir(tmp_path)
    model = _fitted(tmp_path, spec)
    (tmp_path / "F").write_text("a file")
    replace = {"S": spec, "M": model}
    guard = tree_guard(tmp_path)
    code = cli.main([replace.get(a, a) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    guard.assert_unchanged()


def test_a_tilde_after_an_equals_sign_is_the_home_folder(
    tmp_path, spec, capsys, tree_guard, monkeypatch
):
    # was: --out=~/x (no shell expansion after '=') created a folder literally named '~'
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    model = _fitted(tmp_path, spec)
    guard = tree_guard(tmp_path, allowed=("home",))
    assert cli.main(["predict", spec, "--model", model, "--out=~/f.parquet", "--quiet"]) == 0
    assert cli.main(["fit", spec, "--out=~/m", "--quiet", "--no-progress"]) == 0
    assert (home / "f.parquet").is_file() and (home / "m" / "manifest.json").is_file()
    assert not any(p.name == "~" for p in tmp_path.rglob("*"))
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# predict --level (issue 13): a model saved without calibration is refused (exit 2, nothing
# written); fit calibrates when the spec sets [output] levels, predict then writes the bounds
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_predict_level_needs_a_calibrated_model(tmp_path, spec, capsys, tree_guard):
    lines = ["id,date,y"] + [
        f"a,{dt.date(2024, 1, 1) + dt.timedelta(days=i)},{(i * 7) % 5}.5" for i in range(40)
    ]
    (tmp_path / "data" / "prices.csv").write_text("\n".join(lines) + "\n")
    plain = _fitted(tmp_path, spec)
    out = tmp_path / "f.parquet"
    guard = tree_guard(tmp_path)
    args = ["predict", spec, "--model", plain, "--out", str(out), "--level", "80", "--quiet"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "argument --level: the model in" in err and "saved without calibration" in err
    guard.assert_unchanged()
    Path(spec).write_text(Path(spec).read_text().replace("[output]", "[output]\nlevels = [80]"))
    model = tmp_path / "models" / "calibrated"
    assert cli.main(["fit", spec, "--out", str(model), "--quiet", "--no-progress"]) == 0
    assert cli.main(["predict", spec, "--model", str(model), "--out", str(out), "--quiet"]) == 0
    forecast = pl.read_parquet(out)
    assert [c for c in forecast.columns if c not in ("origin", "stale_steps")] == [
        "id",
        "date",
        "y",
        "y_lo_80",
        "y_hi_80",
    ]
    assert (forecast["y_lo_80"] < forecast["y_hi_80"]).all()


# ------------------------------------------------------------------------------------------
# --level junk (predict and backtest): exit 2 naming --level before any work, nothing written;
# the commands without intervals do not take it
# ------------------------------------------------------------------------------------------

JUNK_LEVELS = {
    "abc": ["abc"],
    "zero": ["0"],
    "hundred": ["100"],
    "negative": ["-5"],
    "nan": ["nan"],
    "inf": ["inf"],
    "percent sign": ["80%"],
    "empty": [""],
    "a list": ["80,95"],
    "hundred as 1e2": ["1e2"],
    "repeated": ["80", "80"],
    "repeated as 80.0": ["80", "80.0"],
}


@pytest.mark.parametrize("command", ["predict", "backtest"])
@pytest.mark.parametrize("case", list(JUNK_LEVELS))
def test_junk_level_exits_2_naming_it_and_writes_nothing(
    tmp_path, spec, capsys, tree_guard, command, case
):
    out = tmp_path / "out.parquet"
    flags = [f"--level={level}" for level in JUNK_LEVELS[case]]
    model = ["--model", str(tmp_path / "no-model")] if command == "predict" else []
    guard = tree_guard(tmp_path)
    code = cli.main([command, spec, *model, "--out", str(out), *flags, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "argument --level" in err and "Traceback" not in err, err
    guard.assert_unchanged()


@pytest.mark.parametrize("command", ["run", "fit", "tune"])
def test_commands_without_intervals_refuse_level(tmp_path, spec, capsys, tree_guard, command):
    guard = tree_guard(tmp_path)
    assert cli.main([command, spec, "--level", "80", "--no-progress"]) == 2
    assert "unrecognized arguments: --level" in capsys.readouterr().err
    guard.assert_unchanged()


def test_tune_minimises_the_spec_objective(tmp_path, spec, calls, capsys):
    text = Path(spec).read_text().replace("random_state = 0", 'random_state = 0\nloss = "quantile"')
    text = text.replace("trials = 7", 'trials = 7\nobjective = "msis_80"')
    Path(spec).write_text(text.replace("[output]", "[output]\nlevels = [80]"))
    assert cli.main(["tune", spec, "--no-progress"]) == 1  # the fake tune stops after recording
    assert calls[-1]["metric"] == "msis_80"

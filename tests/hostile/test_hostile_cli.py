"""Hostile command lines: global options in either place, explicit counts used as given or
refused with exit 2 (never replaced by the spec's value), every error type mapped to its
documented exit code with one line on stderr, and nothing written by a refused command."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import forecaster.pipelines
import forecaster.tuning
from forecaster import cli
from forecaster.exceptions import (
    ConcurrentRunError,
    DataValidationError,
    ForecasterError,
    OwnershipError,
)
from forecaster.persistence import ModelFormatError
from forecaster.pipelines import PipelineResult, SpecError

SPEC = """
[pipeline]
name = "mini"

[source]
path = "data/*.csv"
format = "csv"

[series]
id = "id"
time = "date"
targets = ["y"]

[model]
lookback = 4
horizon = 2
hidden_size = 4
max_epochs = 1
random_state = 0

[training]
trials = 7
timeout = 99.0

[evaluation]
backtest_folds = 0

[tracking]
enabled = false

[output]
plot_series = 0
"""


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

    monkeypatch.setattr(forecaster.pipelines, "run_pipeline", fake_run)
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


def test_verbose_before_the_command_shows_the_traceback(spec, monkeypatch):
    monkeypatch.setattr(forecaster.pipelines, "run_pipeline", _raiser(ForecasterError("boom")))
    with pytest.raises(ForecasterError, match="boom"):
        cli.main(["--verbose", "run", spec])
    assert cli.main(["run", spec]) == 1


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
    guard = tree_guard(tmp_path)
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
        (RuntimeError("bug"), 1, "error: RuntimeError: bug"),
    ],
)
def test_each_error_type_has_its_exit_code(
    tmp_path, spec, capsys, tree_guard, monkeypatch, error, code, prefix
):
    monkeypatch.setattr(forecaster.pipelines, "run_pipeline", _raiser(error))
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

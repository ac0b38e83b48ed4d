"""Logging: the library's diagnostics go to the ``forecaster`` logger and its per-module
children (only a NullHandler of its own); the ``forecaster`` command shows them on standard
error (JSON lines on standard output with ``--json-logs``, nothing with ``--quiet``) and
keeps its results (paths, summaries) on standard output."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest
from conftest import mini_spec

import forecaster
from forecaster.jobs import cli
from forecaster.jobs.run import run_pipeline


@pytest.fixture
def spec(tmp_path: Path) -> str:
    (tmp_path / "data").mkdir()
    lines = ["id,date,y"] + [
        f"a,{dt.date(2024, 1, 1) + dt.timedelta(days=i)},{i % 5}.5" for i in range(40)
    ]
    (tmp_path / "data" / "prices.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "pipelines").mkdir()
    path = tmp_path / "pipelines" / "spec.toml"
    path.write_text(mini_spec())
    return str(path)


def test_the_library_adds_only_a_null_handler():
    handlers = logging.getLogger(forecaster.__name__).handlers
    assert [type(h) for h in handlers] == [logging.NullHandler]


def test_run_pipeline_logs_its_steps_to_the_module_logger(spec, caplog, capsys):
    caplog.set_level(logging.INFO, logger="forecaster")
    result = run_pipeline(spec, dry_run=True, progress=False)
    steps = [r for r in caplog.records if r.name == "forecaster.jobs.run"]
    assert [r.getMessage().split()[0] for r in steps] == ["data", "plan"]
    assert all(r.levelno == logging.INFO for r in steps)
    assert result.status == "dry-run"
    assert capsys.readouterr() == ("", "")  # nothing printed by the library itself


def test_run_pipeline_log_callable_still_receives_the_lines(spec, caplog):
    caplog.set_level(logging.INFO, logger="forecaster")
    lines: list[str] = []
    run_pipeline(spec, dry_run=True, progress=False, log=lines.append)
    assert [line.split()[0] for line in lines] == ["data", "plan"]
    assert not [r for r in caplog.records if r.name == "forecaster.jobs.run"]


def test_cli_steps_on_stderr_results_on_stdout(spec, tmp_path, capsys):
    assert cli.main(["run", spec, "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[0].startswith("data     Panel(")
    assert any(line.startswith("model    fitted in") for line in err.splitlines())
    assert "summary  mini as of 2024-02-09" in out and "\nforecast " in out
    assert "data " not in out and "summary" not in err
    # a rerun: the steps say the outputs exist (stderr), the result lists them (stdout)
    assert cli.main(["run", spec, "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "outputs for mini as of 2024-02-09 already exist" in err
    assert "already exist" not in out and "summary  mini" in out


def test_cli_dry_run_prints_its_plan_on_stderr_and_a_result_line(spec, capsys):
    assert cli.main(["run", spec, "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("dry run  mini as of 2024-02-09: 1 series, 40 rows; nothing written")
    assert err.splitlines()[1].startswith("plan     fit RNNForecaster")


def test_cli_quiet_hides_the_steps_and_verbose_shows_them(spec, capsys):
    assert cli.main(["--quiet", "run", spec, "--dry-run"]) == 0
    assert capsys.readouterr() == ("", "")
    assert cli.main(["run", spec, "--dry-run", "--verbose"]) == 0
    assert "plan     fit" in capsys.readouterr().err


def test_cli_json_logs_puts_steps_and_results_on_stdout_as_json(spec, capsys):
    assert cli.main(["run", spec, "--dry-run", "--json-logs"]) == 0
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert err == ""
    steps = [r for r in records if r.get("logger", "").startswith("forecaster.")]
    assert [r["msg"].split()[0] for r in steps] == ["data", "plan"]
    assert all(r["level"] == "info" and {"ts", "msg"} <= set(r) for r in records)
    assert records[-1]["msg"].startswith("dry run") and records[-1]["summary"]["name"] == "mini"


def test_cli_removes_its_handler_afterwards(spec, capsys):
    root = logging.getLogger("forecaster")
    before = (list(root.handlers), root.level)
    assert cli.main(["run", spec, "--dry-run"]) == 0
    assert cli.main(["run", "missing.toml"]) == 2
    assert (list(root.handlers), root.level) == before
    capsys.readouterr()


def test_cli_quiet_json_logs_still_records_every_step(spec, capsys):
    """The documented cron line (--quiet --json-logs >> file) keeps a full JSON log."""
    assert cli.main(["--quiet", "--json-logs", "run", spec, "--dry-run"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["msg"].split()[0] for r in records] == ["data", "plan", "dry"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--json-logs", "run"], "the following arguments are required: spec"),
        (["run", "--json-logs", "--bogus", "x.toml"], "unrecognized arguments: --bogus"),
        (["--json-logs", "predict", "s.toml", "--level", "0.8"], "expected a level in percent"),
    ],
)
def test_cli_json_logs_writes_a_usage_error_as_one_json_record(argv, message, capsys):
    """argparse printed its usage text and error line, which a scheduler reading JSON lines
    cannot parse; with --json-logs it is one record on standard error, exit code 2."""
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    (record,) = [json.loads(line) for line in err.splitlines()]
    assert out == "" and record["level"] == "error" and message in record["msg"]
    assert record["usage"].startswith("usage: forecaster")
    assert cli.main(["run"]) == 2  # without --json-logs: argparse's own text, as before
    assert "usage: forecaster run" in capsys.readouterr().err


def test_cli_datasets_with_json_logs_gives_one_record_per_data_set(capsys):
    """The catalogue was printed as a table whatever --json-logs and --quiet said."""
    assert cli.main(["--json-logs", "datasets"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["name"] for r in records} >= {"stocks", "audio"} and all(r["rows"] for r in records)
    assert cli.main(["--json-logs", "datasets", "stocks"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["name"] == "stocks" and record["data_card"].endswith("README.md")
    assert cli.main(["--quiet", "datasets"]) == 0 and capsys.readouterr().out == ""


@pytest.mark.parametrize("flags", [["--quiet"], []])
def test_cli_shows_only_its_own_threads_warnings_and_passes_the_others_on(
    spec, flags, monkeypatch, capsys
):
    """``main`` in a process of the caller's (a notebook, a service): its warning printer is
    the process's ``warnings.showwarning`` while it runs, and it printed (or with --quiet
    dropped) the warnings of the caller's other threads too. A warning of another thread now
    goes to the ``showwarning`` there was before; the command's own are printed as before."""
    import threading
    import warnings

    from forecaster.jobs import commands

    shown: list[str] = []
    go, done = threading.Event(), threading.Event()

    def other_thread() -> None:
        go.wait(60)
        warnings.warn("from another thread", UserWarning, stacklevel=1)
        done.set()

    run = commands.run_command

    def run_command(args, log):
        warnings.warn("from the command", UserWarning, stacklevel=1)
        go.set()
        done.wait(60)
        return run(args, log)

    monkeypatch.setattr(commands, "run_command", run_command)
    thread = threading.Thread(target=other_thread)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *args, **kwargs: shown.append(str(message))
        thread.start()
        assert cli.main([*flags, "run", spec, "--dry-run"]) == 0
        thread.join()
    assert shown == ["from another thread"]
    err = capsys.readouterr().err
    assert ("warning: from the command" in err) is not bool(flags)
    assert "from another thread" not in err


def _cli_beside(other, spec: str, monkeypatch):
    """Run ``forecaster run SPEC --dry-run`` in-process while ``other(started)`` runs in
    another thread: the command goes on once ``other`` set ``started``. Returns the thread
    (running still, or ended)."""
    import threading

    from forecaster.jobs import commands

    go, started = threading.Event(), threading.Event()
    run = commands.run_command

    def run_command(args, log):
        go.set()
        assert started.wait(60)
        return run(args, log)

    def waited() -> None:
        assert go.wait(60)
        other(started)

    monkeypatch.setattr(commands, "run_command", run_command)
    thread = threading.Thread(target=waited, daemon=True)
    thread.start()
    assert cli.main(["run", spec, "--dry-run"]) == 0
    return thread


def test_cli_keeps_a_filter_another_thread_added_while_it_ran(spec, monkeypatch):
    """``main`` ran the command in ``warnings.catch_warnings()``, which put back the whole
    process's filters when the command ended: a filter that the caller's other thread added
    meanwhile was lost. Only ``warnings.showwarning`` is set now."""
    import warnings

    def other(started) -> None:
        warnings.filterwarnings("error", message="the caller's own rule")
        started.set()

    with warnings.catch_warnings():
        _cli_beside(other, spec, monkeypatch).join(60)
        with pytest.raises(UserWarning, match="the caller's own rule"):
            warnings.warn("the caller's own rule", UserWarning, stacklevel=1)


def test_cli_printer_passes_warnings_on_once_the_command_ended(spec, monkeypatch, capsys):
    """A ``catch_warnings`` block of another thread that started while the command ran and
    ended after it put the command's printer back for good: the caller's later warnings were
    printed as the command's (``warning: ...`` on stderr). The printer now passes every
    warning on to the ``showwarning`` there was before once the command has ended."""
    import threading
    import warnings

    end = threading.Event()

    def other(started) -> None:
        with warnings.catch_warnings():  # saves the command's printer, puts it back after
            started.set()
            assert end.wait(60)

    shown: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *args, **kwargs: shown.append(str(message))
        thread = _cli_beside(other, spec, monkeypatch)
        end.set()
        thread.join(60)
        warnings.warn("after the command", UserWarning, stacklevel=1)
    assert shown == ["after the command"]
    assert "after the command" not in capsys.readouterr().err


def test_cli_commands_overlapping_in_threads_leave_no_printer_behind(spec, monkeypatch, capsys):
    """Two in-process commands in two threads, the first ending while the second's printer
    was set on top of its own: the second put back the first's (ended) printer when it
    ended, which stayed ``warnings.showwarning`` for good (one more per such overlap). The
    ``showwarning`` there was before both is back now; each command showed its own warning."""
    import threading
    import warnings

    from forecaster.jobs import commands

    first_in, second_in, first_done = threading.Event(), threading.Event(), threading.Event()
    run, codes = commands.run_command, {}

    def run_command(args, log):
        name = threading.current_thread().name
        warnings.warn(f"from the {name} command", UserWarning, stacklevel=1)
        (first_in if name == "first" else second_in).set()
        assert (second_in if name == "first" else first_done).wait(60)
        return run(args, log)

    def command(name: str) -> None:
        codes[name] = cli.main(["run", spec, "--dry-run"])
        if name == "first":
            first_done.set()

    monkeypatch.setattr(commands, "run_command", run_command)
    first = threading.Thread(target=command, args=("first",), name="first", daemon=True)
    second = threading.Thread(target=command, args=("second",), name="second", daemon=True)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        before = warnings.showwarning
        first.start()
        assert first_in.wait(60)
        second.start()
        first.join(60)
        second.join(60)
        after = warnings.showwarning
    assert codes == {"first": 0, "second": 0}
    assert after is before
    err = capsys.readouterr().err
    assert err.count("warning: from the first command") == 1
    assert err.count("warning: from the second command") == 1


@pytest.mark.slow
def test_the_cron_line_of_a_tracked_spec_keeps_a_json_log_without_mlflows_own_lines(
    tmp_path: Path,
):
    """The documented cron line (--quiet --json-logs ... 2>&1) on a spec with tracking on and
    a fresh SQLite store: MLflow's import set its logger to INFO with its own handler after
    forecaster had quieted it, so "INFO mlflow.store.db.utils: Creating initial MLflow database
    tables..." and "INFO mlflow.pyfunc: Validating input example ..." were plain lines on
    standard error. Every line of both streams is a JSON record now, none of MLflow's INFO; and
    --quiet alone prints nothing on success."""
    import os
    import subprocess
    import sys

    (tmp_path / "data").mkdir()
    lines = ["id,date,y"] + [
        f"{key},{dt.date(2024, 1, 1) + dt.timedelta(days=i)},{(i * (k + 3)) % 7}.5"
        for k, key in enumerate(("a", "b"))
        for i in range(40)
    ]
    (tmp_path / "data" / "prices.csv").write_text("\n".join(lines) + "\n")
    spec = tmp_path / "spec.toml"
    spec.write_text(mini_spec(tracking={"enabled": True}))
    repo = str(Path(forecaster.__file__).parents[1])  # this checkout's code
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "forecaster", "--quiet", "--json-logs", "run", str(spec)]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, timeout=300, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()  # a fresh store, tracked
    records = [json.loads(line) for line in (done.stdout + done.stderr).splitlines()]
    assert any(r["msg"].startswith("mlflow   run ") for r in records)
    assert not [r for r in records if r.get("logger", "").startswith("mlflow")]
    quiet = [
        sys.executable,
        "-m",
        "forecaster",
        "--quiet",
        "fit",
        str(spec),
        "--as-of",
        "2024-02-08",
    ]
    done = subprocess.run(quiet, cwd=tmp_path, env=env, timeout=300, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.slow
def test_plain_tune_of_a_tracked_spec_shows_none_of_mlflows_info_lines(tmp_path: Path):
    """Plain-mode ``forecaster tune`` on a spec with tracking on and a fresh SQLite store
    printed MLflow's INFO lines ("Creating initial MLflow database tables...", "Validating
    input example ...") on standard error, which ``run`` and ``fit`` keep out: the study's
    tracking now quiets MLflow the way a run's does."""
    import os
    import subprocess
    import sys

    (tmp_path / "data").mkdir()
    lines = ["id,date,y"] + [
        f"{key},{dt.date(2024, 1, 1) + dt.timedelta(days=i)},{(i * (k + 3)) % 7}.5"
        for k, key in enumerate(("a", "b"))
        for i in range(40)
    ]
    (tmp_path / "data" / "prices.csv").write_text("\n".join(lines) + "\n")
    spec = tmp_path / "spec.toml"
    spec.write_text(mini_spec(tracking={"enabled": True}, training={"trials": 1}))
    repo = str(Path(forecaster.__file__).parents[1])  # this checkout's code
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "forecaster", "tune", str(spec), "--no-progress"]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, timeout=300, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()  # a fresh store, tracked
    assert "best model refitted and saved" in done.stdout + done.stderr
    assert " INFO mlflow" not in done.stdout + done.stderr

"""Hostile output folders: a pipeline's outputs never replace, delete or change what forecaster
did not write (the project, the spec, the data, another pipeline's outputs, a user's files),
and the command line's files never replace a file it did not write.

Every case runs the ``forecaster`` command in-process on a small project under ``tmp_path``
and checks, with ``tree_guard``, that nothing outside the run's own files changed."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from conftest import mini_spec

from forecaster import _io
from forecaster.jobs.cli import main

LAST = "2024-01-12"
OWN = ("project/outputs/mini", "project/models/mini")


def rows(n: int = 12) -> str:
    lines = ["id,date,y"]
    for k, key in enumerate(("a", "b")):
        for i in range(n):
            day = dt.date(2024, 1, 1) + dt.timedelta(days=i)
            lines.append(f"{key},{day},{10 * k + i + 0.5}")
    return "\n".join(lines) + "\n"


def make_project(root: Path, *, name: str = "mini", output: str = "") -> Path:
    """A project with data, a spec, a user's files and another pipeline's outputs."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "prices.csv").write_text(rows())
    (root / "pipelines").mkdir(exist_ok=True)
    spec = root / "pipelines" / "spec.toml"
    spec.write_text(
        mini_spec(pipeline={"name": name}, training={"reuse_model": True}, output=output)
    )
    (root / ".git").mkdir(exist_ok=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "app.py").write_text("print('mine')\n")
    other = root / "outputs" / "other" / LAST
    other.mkdir(parents=True, exist_ok=True)
    (other / "forecasts.parquet").write_bytes(b"other pipeline's forecasts")
    _io.write_manifest(other, "run", {"pipeline": "other", "as_of": LAST})
    return spec


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def completed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with one completed run of ``mini`` (copied by each test that needs one)."""
    base = tmp_path_factory.mktemp("completed")
    spec = make_project(base / "project")
    assert main(["run", str(spec), "--no-progress", "--quiet"]) == 0
    return base


@pytest.fixture
def done(completed: Path, tmp_path: Path) -> Path:
    shutil.copytree(completed / "project", tmp_path / "project", symlinks=True)
    return tmp_path / "project"


def spec_of(project: Path) -> str:
    return str(project / "pipelines" / "spec.toml")


# ------------------------------------------------------------------------------------------
# output.dir that would swallow something: refused before anything is read or written
# ------------------------------------------------------------------------------------------

SWALLOWING = {
    ".": "project folder itself",
    "": "project folder itself",
    "..": "points outside the project",
    "./data/..": "project folder itself",
    "{name}/..": "project folder itself",
    "outputs": "existing folder forecaster did not write (it holds other)",
    "data": "that is the data of source.path",
    "pipelines": "that folder holds the spec file",
    "pipelines/spec.toml": "that is the spec file",
    "datalink": "that is the data of source.path",
    "src": "existing folder forecaster did not write (it holds app.py)",
    "models": "holds the pointer to the pipeline's latest model",
    "models/{name}": "holds the pointer to the pipeline's latest model",
    "outputs/other/{as_of}": "holds the outputs of the pipeline 'other'",
    "outputs/other/{as_of}/{name}": "inside",
    "/tmp/{name}/{as_of}": "points outside the project",
    "pipelines/spec.toml/{name}": "goes through",
    "loop/{name}": "a link that leads nowhere (or in a loop)",
    "broken/{as_of}": "a link that leads nowhere (or in a loop)",
}


@pytest.mark.parametrize("folder", list(SWALLOWING), ids=[repr(k) for k in SWALLOWING])
def test_output_dir_that_would_swallow_something_is_refused(tmp_path, capsys, tree_guard, folder):
    project = tmp_path / "project"
    make_project(project, output=f'dir = "{folder}"')
    (project / "datalink").symlink_to(project / "data")
    (project / "loop").symlink_to(project / "loop")
    (project / "broken").symlink_to(project / "nowhere")
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", spec_of(project))
    assert code == 2, err
    assert "key 'output.dir'" in err and SWALLOWING[folder] in err, err
    assert "Traceback" not in err
    guard.assert_unchanged()


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "", "x" * 101])
def test_pipeline_name_that_is_not_a_folder_name_is_refused(tmp_path, capsys, tree_guard, name):
    project = tmp_path / "project"
    make_project(project, name=name)
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", spec_of(project))
    assert code == 2 and "key 'pipeline.name'" in err and "not starting with '.'" in err, err
    assert "Value error" not in err  # pydantic's label, not ours
    suggested = re.search(r"e\.g\. name = '([^']*)'", err)
    assert suggested and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", suggested[1]), err
    guard.assert_unchanged()


def test_a_dedicated_folder_is_accepted_and_only_it_changes(tmp_path, capsys, tree_guard):
    project = tmp_path / "project"
    spec = make_project(project, output='dir = "results/{name}/{as_of}"')
    guard = tree_guard(tmp_path, allowed=("project/results", "project/models"))
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 0, err
    folder = project / "results" / "mini" / LAST
    manifest = _io.read_manifest(folder)
    assert manifest["kind"] == "run" and manifest["details"]["pipeline"] == "mini"
    assert manifest["details"]["spec"] == "pipelines/spec.toml"
    assert _io.check_replaceable(folder, "run") is not None  # every file as listed
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# replacing a run's outputs: only the pipeline's own, unchanged
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "message", "rerun"),
    [
        (
            lambda f: (f / "notes.txt").write_text("mine"),
            "notes.txt (not written by forecaster)",
            "already exist",
        ),
        (
            lambda f: (f / "forecasts.parquet").write_bytes(b"edited"),
            "forecasts.parquet (changed",
            "forecasts.parquet (changed since forecaster wrote it). Move the changed files out",
        ),
        (
            lambda f: (f / "model" / "mine.txt").write_text("x"),
            "model/mine.txt (not written",
            "already exist",
        ),
    ],
    ids=["file-added", "file-changed", "file-added-in-model"],
)
def test_force_refuses_outputs_holding_what_forecaster_did_not_write(
    done, capsys, tree_guard, tamper, message, rerun
):
    tamper(done / "outputs" / "mini" / LAST)
    guard = tree_guard(done.parent)
    code, out, err = cli(capsys, "run", spec_of(done), "--force")
    assert code == 2, err
    last = err.splitlines()[-1]  # after the run's step lines
    assert last.startswith("error: refused: ") and "key 'output.dir'" in err and message in err
    guard.assert_unchanged()
    # without --force: a file added beside intact outputs is reported as done (exit 0); a
    # changed output is damaged (exit 2); nothing changes either way
    code, out, err = cli(capsys, "run", spec_of(done))
    assert (code, rerun in out + err) == (0 if rerun == "already exist" else 2, True), err
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("damage", "message", "forced"),
    [
        (lambda f: (f / "forecasts.parquet").unlink(), "forecasts.parquet (missing)", 0),
        (lambda f: shutil.rmtree(f / "model"), "model/config.json (missing)", 0),
        (
            lambda f: (f / "summary.json").write_text((f / "summary.json").read_text() + " "),
            "summary.json (changed since forecaster wrote it)",
            2,
        ),
        (  # no longer a summary: was four lines with pydantic's, "Restore it, or ... --force"
            lambda f: (f / "summary.json").write_text((f / "summary.json").read_text() + "x\n"),
            "summary.json (changed since forecaster wrote it)",
            2,
        ),
        (
            lambda f: (f / "model" / "weights.safetensors").write_bytes(b"x"),
            "model/weights.safetensors (changed",
            2,
        ),
    ],
    ids=[
        "forecasts-deleted",
        "model-deleted",
        "summary-edited",
        "summary-unreadable",
        "weights-corrupted",
    ],
)
def test_a_damaged_run_folder_is_never_reported_complete(
    done, capsys, tree_guard, damage, message, forced
):
    # was: "already exist", a path that did not exist, and exit 0
    folder = done / "outputs" / "mini" / LAST
    damage(folder)
    guard = tree_guard(done.parent)
    code, out, err = cli(capsys, "run", spec_of(done))
    assert code == 2 and "already exist" not in out + err, out
    assert err.startswith("error: refused: ") and "are damaged" in err and message in err, err
    hint = "Move the changed files out" if forced else "Run again with --force"
    assert hint in err and len(err.splitlines()) == 1 and "pydantic" not in err, err
    guard.assert_unchanged()
    # missing files only: --force writes the outputs again; a changed file is never replaced
    guard = tree_guard(done.parent, allowed=OWN if forced == 0 else ())
    code, out, err = cli(capsys, "run", spec_of(done), "--force")
    assert code == forced, err
    if forced == 0:
        assert _io.check_replaceable(folder, "run") is not None
        assert (folder / "forecasts.parquet").is_file()
    guard.assert_unchanged()


def test_a_skipped_run_reports_the_paths_of_the_folder_as_it_is_now(tmp_path, completed, capsys):
    moved = tmp_path / "moved"  # the whole project moved: summary.json holds the old paths
    shutil.copytree(completed / "project", moved, symlinks=True)
    code, out, err = cli(capsys, "run", spec_of(moved))
    assert code == 0 and "already exist" in err, err  # a step: stderr
    printed = [
        line.split(maxsplit=1)[1] for line in out.splitlines() if line.startswith("forecast ")
    ]
    assert printed == [str(moved / "outputs" / "mini" / LAST / "forecasts.parquet")]
    assert Path(printed[0]).is_file()


def test_outputs_of_an_older_version_are_recognised_skipped_and_replaced(done, capsys, tree_guard):
    folder = done / "outputs" / "mini" / LAST
    for name in ("manifest.json", "model/manifest.json", "model/state.safetensors"):
        (folder / name).unlink(missing_ok=True)  # what runs wrote before manifests
    guard = tree_guard(done.parent)
    code, _out, err = cli(capsys, "run", spec_of(done))
    assert code == 0 and "already exist" in err, err
    guard.assert_unchanged()
    guard = tree_guard(done.parent, allowed=OWN)
    code, _out, err = cli(capsys, "run", spec_of(done), "--force")
    assert code == 0, err
    assert _io.read_manifest(folder)["details"]["as_of"] == LAST
    guard.assert_unchanged()


def test_a_template_without_as_of_keeps_the_latest_as_of(tmp_path, capsys, tree_guard):
    project = tmp_path / "project"
    spec = make_project(project, output='dir = "outputs/{name}/latest"')
    guard = tree_guard(tmp_path, allowed=("project/outputs/mini", "project/models"))
    assert cli(capsys, "run", str(spec), "--as-of", "2024-01-11")[0] == 0
    code, out, err = cli(capsys, "run", str(spec))
    assert code == 0 and "already exist" not in out + err, err
    summary = json.loads((project / "outputs" / "mini" / "latest" / "summary.json").read_text())
    assert summary["as_of"] == LAST
    guard.assert_unchanged()


def test_stale_staging_is_removed_and_user_files_beside_it_stay(done, capsys, tree_guard):
    parent = done / "outputs" / "mini"
    stale = parent / ".2024-01-11.staging-0123456789ab"  # what a killed run leaves
    stale.mkdir()
    (stale / "forecasts.parquet").write_bytes(b"half")
    (stale / _io.STAGING_MARKER).write_text(json.dumps({"owner": "forecaster", "pid": 1}))
    keep = parent / ".2024-01-11.keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    checkpoints = parent / ".2024-01-11.checkpoints"
    checkpoints.mkdir()
    (checkpoints / "notes.txt").write_text("mine too")
    guard = tree_guard(
        done.parent,
        allowed=(
            "project/outputs/mini/2024-01-11",
            "project/outputs/mini/.2024-01-11.lock",
            "project/outputs/mini/.2024-01-11.staging-0123456789ab",
            "project/models/mini",
        ),
    )
    code, _, err = cli(capsys, "run", spec_of(done), "--as-of", "2024-01-11")
    assert code == 0, err
    assert not stale.exists()
    assert (keep / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["notes.txt"]
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# the latest-model pointer of reuse_model: bounded, checked, and a problem means retraining
# ------------------------------------------------------------------------------------------


def test_reuse_follows_an_intact_pointer(done, capsys, tree_guard):
    guard = tree_guard(done.parent, allowed=OWN)
    code, _out, err = cli(capsys, "run", spec_of(done), "--as-of", LAST, "--force")
    assert code == 0 and f"reused {done / 'outputs' / 'mini' / LAST / 'model'}" in err, err
    pointer = json.loads((done / "models" / "mini" / "latest.json").read_text())
    assert (pointer["as_of"], pointer["effective_as_of"]) == (LAST, LAST)
    guard.assert_unchanged()


def test_a_backfill_never_reuses_a_model_of_later_data(done, capsys, tree_guard):
    # was: reuse_model gave the run as of 2024-01-11 the model trained on data up to 01-12
    pointer = done / "models" / "mini" / "latest.json"
    before = pointer.read_bytes()
    allowed = ("project/outputs/mini/2024-01-11", "project/outputs/mini/.2024-01-11.lock")
    guard = tree_guard(done.parent, allowed=allowed)
    code, out, err = cli(capsys, "run", spec_of(done), "--as-of", "2024-01-11")
    assert code == 0, err
    assert "trained on data up to 2024-01-12, after this run's as-of 2024-01-11" in err, err
    assert "fitted in" in err and "reused" not in out + err
    assert pointer.read_bytes() == before  # the pointer does not move back to the backfill
    assert "keeps the model as of 2024-01-12" in err
    guard.assert_unchanged()


def test_a_pointer_without_the_as_of_of_its_data_is_not_followed(done, capsys, tree_guard):
    pointer = done / "models" / "mini" / "latest.json"
    saved = json.loads(pointer.read_text())
    pointer.write_text(json.dumps({k: saved[k] for k in ("owner", "spec_hash", "model_dir")}))
    run = done / "outputs" / "mini" / LAST
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["details"]["effective_as_of"]  # a run of an older forecaster
    manifest["digest"] = _io.manifest_digest(manifest)
    (run / "manifest.json").write_bytes(_io.manifest_bytes(manifest))
    guard = tree_guard(done.parent, allowed=OWN)
    code, _out, err = cli(capsys, "run", spec_of(done), "--as-of", LAST, "--force")
    assert code == 0 and "does not record the as-of of its data" in err, err
    assert "fitted in" in err
    guard.assert_unchanged()


def test_explicit_tune_wins_over_reuse_model(done, capsys, tree_guard, monkeypatch):
    from forecaster.exceptions import ForecasterError
    from forecaster.jobs import fitting

    seen = []

    def fake_tune(spec, root, frame, when, **kwargs):
        seen.append(fitting.study_name(spec, when))
        raise ForecasterError("stop after recording")

    monkeypatch.setattr(fitting, "tune_model", fake_tune)
    guard = tree_guard(done.parent, allowed=OWN)
    code, out, err = cli(capsys, "run", spec_of(done), "--force", "--tune")
    assert code == 1 and "stop after recording" in err, err
    assert "--tune asks for a new tuned model: training.reuse_model is not used" in err
    assert "reused" not in out + err and seen and seen[0].endswith(f"-{LAST}")
    guard.assert_unchanged()


def _garbage(pointer: Path, project: Path) -> None:
    pointer.write_text("{not json")


def _elsewhere(pointer: Path, project: Path) -> None:
    saved = json.loads(pointer.read_text())
    pointer.write_text(json.dumps({**saved, "model_dir": "src"}))


def _tampered_run(pointer: Path, project: Path) -> None:
    summary = project / "outputs" / "mini" / LAST / "summary.json"
    summary.write_text(summary.read_text() + " ")


def _fifo(pointer: Path, project: Path) -> None:
    pointer.unlink()
    os.mkfifo(pointer)


@pytest.mark.parametrize(
    ("damage", "message", "kept"),
    [
        (_garbage, "not valid JSON", False),  # the package's own file: rewritten
        (_elsewhere, "is not the model of a run's outputs", False),
        (_tampered_run, "summary.json (changed since forecaster wrote it)", False),
        (_fifo, "a FIFO", True),
    ],
    ids=["garbage", "points-elsewhere", "run-tampered", "fifo"],
)
def test_a_pointer_that_cannot_be_followed_means_retraining(
    done, capsys, tree_guard, damage, message, kept
):
    pointer = done / "models" / "mini" / "latest.json"
    damage(pointer, done)
    allowed = ("project/outputs/mini/2024-01-11", "project/outputs/mini/.2024-01-11.lock")
    guard = tree_guard(done.parent, allowed=allowed if kept else (*allowed, "project/models"))
    code, _out, err = cli(capsys, "run", spec_of(done), "--as-of", "2024-01-11")
    assert code == 0, err
    # the warning (one line on stderr) and the steps (stderr too)
    assert "warning: Not reusing the latest model" in err and message in err, err
    assert "fitted in" in err
    guard.assert_unchanged()  # a link, folder or FIFO at the pointer is left as it is


# ------------------------------------------------------------------------------------------
# files of predict / backtest / fit: never over a file or folder forecaster did not write
# ------------------------------------------------------------------------------------------


def _predict(capsys, project: Path, *out: str) -> tuple[int, str, str]:
    model = str(project / "outputs" / "mini" / LAST / "model")
    return cli(capsys, "predict", spec_of(project), "--model", model, *out)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        # the source's own data, and a run's folder: refused as places for --out at all
        ("data/prices.csv", "invalid argument: argument --out ('"),
        ("data/prices.csv", "source.path 'data/*.csv' would read the files written there"),
        ("foreign.parquet", "refused: Refusing to replace"),
        ("foreign.parquet", "not a file forecaster wrote (no 'forecaster' Parquet metadata)"),
        ("folder.parquet", "a folder or special file"),
        ("link.parquet", "it is a link"),
        ("preds.csv", "the command writes Parquet, not .csv, and names the summary"),
        ("preds.csv", "name the file preds.parquet"),
        (f"outputs/mini/{LAST}/extra.parquet", "invalid argument: argument --out ('"),
        (f"outputs/mini/{LAST}/extra.parquet", "names for the outputs of a run"),
    ],
    ids=[
        "csv-data",
        "csv-data-source",
        "foreign-parquet",
        "foreign-parquet-metadata",
        "folder",
        "link",
        "csv-name",
        "csv-name-fix",
        "inside-run",
        "inside-run-output-dir",
    ],
)
def test_predict_out_never_replaces_what_forecaster_did_not_write(
    done, capsys, tree_guard, target, message
):
    pl.DataFrame({"a": [1]}).write_parquet(done / "foreign.parquet")
    (done / "link.parquet").symlink_to(done / "foreign.parquet")
    (done / "folder.parquet").mkdir()
    guard = tree_guard(done.parent)
    code, _, err = _predict(capsys, done, "--out", str(done / target))
    assert code == 2 and err.startswith("error: ") and message in err, err
    guard.assert_unchanged()


@pytest.mark.parametrize("command", ["predict", "backtest"])
@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("y.parquet/", "it ends with a path separator (or '.'), which names a folder"),
        ("y.parquet/.", "name the file without it, such as"),
        (".parquet", "its name has nothing but dots before '.parquet' (a hidden file"),
        ("sub/.parquet", "its summary the hidden .summary.json"),
        ("..parquet", "its name has nothing but dots before '.parquet'"),  # was: written
    ],
)
def test_out_naming_a_folder_or_a_hidden_file_exits_2_before_any_work(
    done, capsys, tree_guard, monkeypatch, command, target, message
):
    # was: --out y.parquet/ wrote the file y.parquet, and --out .parquet the hidden files
    # .parquet and .summary.json
    from forecaster.jobs import commands

    (done / "sub").mkdir()
    guard = tree_guard(done.parent)
    monkeypatch.setattr(commands, "prepare_data", _no_work)  # refused before the data
    model = ["--model", str(done / "outputs" / "mini" / LAST / "model")]
    out = ["--out", f"{done}/{target}"]
    code, _, err = cli(
        capsys, command, spec_of(done), *(model if command == "predict" else []), *out
    )
    assert code == 2 and err.startswith("error: ") and message in err, err
    guard.assert_unchanged()


def _no_work(*args: object, **kwargs: object) -> None:
    raise AssertionError("the data was read before --out was checked")


def test_predict_replaces_its_own_file_and_marks_it(done, capsys, tree_guard):
    guard = tree_guard(done.parent, allowed=("project/f.parquet", "project/f.summary.json"))
    for _ in range(2):
        code, _, err = _predict(capsys, done, "--out", str(done / "f.parquet"))
        assert code == 0, err
    marker = json.loads(pl.read_parquet_metadata(done / "f.parquet")["forecaster"])
    assert marker["kind"] == "forecast" and marker["as_of"] == LAST
    guard.assert_unchanged()


def test_out_never_replaces_a_file_of_another_kind_or_pipeline(done, capsys, tree_guard):
    """--out over a forecast file: a backtest replaced it without a word (the forecasts
    lost), and so did a predict of another spec."""
    guard = tree_guard(done.parent, allowed=("project/f.parquet", "project/f.summary.json"))
    assert _predict(capsys, done, "--out", str(done / "f.parquet"))[0] == 0
    before = (done / "f.parquet").read_bytes()
    code, _, err = cli(capsys, "backtest", spec_of(done), "--out", str(done / "f.parquet"))
    assert code == 2 and "holds the forecast of the pipeline 'mini'" in err, err
    assert "not a backtest of 'mini'" in err
    other = Path(spec_of(done)).with_name("other.toml")
    other.write_text(Path(spec_of(done)).read_text().replace('name = "mini"', 'name = "other"'))
    code, _, err = cli(
        capsys, "predict", str(other), "--model", "m", "--out", str(done / "f.parquet")
    )
    assert code == 2 and "not a forecast of 'other'" in err, err
    assert (done / "f.parquet").read_bytes() == before
    other.unlink()
    guard.assert_unchanged()


def test_default_predict_and_backtest_files_sit_beside_the_run_folder(done, capsys, tree_guard):
    allowed = tuple(
        f"project/outputs/mini/{LAST}.{k}.{suffix}"
        for k in ("forecasts", "backtest")
        for suffix in ("parquet", "summary.json")
    )
    guard = tree_guard(done.parent, allowed=allowed)
    assert _predict(capsys, done)[0] == 0
    code, _, err = cli(capsys, "backtest", spec_of(done), "--folds", "1")
    assert code == 0, err
    for kind in ("forecasts", "backtest"):
        assert (done / "outputs" / "mini" / f"{LAST}.{kind}.parquet").is_file()
        assert (done / "outputs" / "mini" / f"{LAST}.{kind}.summary.json").is_file()
    assert _io.check_replaceable(done / "outputs" / "mini" / LAST, "run")  # manifest still true
    guard.assert_unchanged()


def test_backtest_out_over_a_foreign_file_is_refused(done, capsys, tree_guard):
    (done / "src" / "app.parquet").write_bytes((done / "src" / "app.py").read_bytes())
    guard = tree_guard(done.parent)
    for name in ("app.py", "app.parquet"):  # app.py: no Parquet name (its summary's)
        code, _, err = cli(capsys, "backtest", spec_of(done), "--out", str(done / "src" / name))
        refusal = "name the file app.py.parquet" if name == "app.py" else "not a file forecaster"
        assert code == 2 and refusal in err, err
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        # folders the source's glob reaches into, and a run's folder: no place for --out
        (".", "argument --out ('.') resolves to"),
        (".", "source.path 'data/*.csv' would read the files written there"),
        ("data", "source.path 'data/*.csv' would read the files written there"),
        ("src", "refused: Refusing to save the model into"),
        ("src", "a folder forecaster did not write"),
        ("src/app.py", "it is a file"),
        (f"outputs/mini/{LAST}/model2", "argument --out"),
        (f"outputs/mini/{LAST}/model2", "names for the outputs of a run"),
    ],
    ids=[
        "project",
        "project-source",
        "data",
        "foreign",
        "foreign-folder",
        "a-file",
        "inside-run",
        "inside-run-output-dir",
    ],
)
def test_fit_out_is_checked_before_training(done, capsys, tree_guard, monkeypatch, target, message):
    monkeypatch.chdir(done)
    guard = tree_guard(done.parent)
    code, out, err = cli(capsys, "fit", spec_of(done), "--out", target)
    assert code == 2 and err.startswith("error: ") and message in err, err
    assert "fitted" not in out + err
    guard.assert_unchanged()


@pytest.mark.parametrize(
    "files",
    [
        {"config.json": "{}", "main.py": "print('mine')\n"},
        {"config.json": '{"format": "other-tool"}', "notes.txt": "x"},
        {"config.json": "not json", "data.csv": "a,b\n"},
    ],
    ids=["empty-config", "other-format", "garbage-config"],
)
def test_fit_out_a_user_folder_with_a_config_json_is_refused_before_training(
    done, capsys, tree_guard, files
):
    # was: any folder holding a config.json passed the check and was refused only after training
    folder = done / "mine"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    guard = tree_guard(done.parent)
    code, out, err = cli(capsys, "fit", spec_of(done), "--out", str(folder))
    assert code == 2 and "a folder forecaster did not write" in err, err
    assert "fitted" not in out + err
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("template", "folder"),
    [
        pytest.param("outputs/{name}/latest", "latest", id="latest"),
        pytest.param(
            "outputs/{name}/{{as_of}}", "{as_of}", id="escaped-as-of", marks=pytest.mark.slow
        ),
    ],
)
def test_a_backfill_never_replaces_the_outputs_of_a_later_as_of(
    tmp_path, capsys, tree_guard, template, folder
):
    # was: with dir = "outputs/{name}/latest" a run as of an earlier date replaced them; with
    # "{{as_of}}" (the text {as_of}: one folder for every as-of) it still did, unasked
    project = tmp_path / "project"
    spec = make_project(project, output=f'dir = "{template}"')
    assert cli(capsys, "run", str(spec))[0] == 0
    guard = tree_guard(tmp_path, allowed=(f"project/outputs/mini/.{folder}.lock",))
    code, _, err = cli(capsys, "run", str(spec), "--as-of", "2024-01-11")
    assert code == 2 and err.splitlines()[-1].startswith("error: refused: "), err
    assert "holds the outputs as of 2024-01-12" in err and "this run's 2024-01-11" in err
    assert "--force" in err
    guard.assert_unchanged()
    guard = tree_guard(tmp_path, allowed=("project/outputs/mini", "project/models"))
    code, _, err = cli(capsys, "run", str(spec), "--as-of", "2024-01-11", "--force")
    assert code == 0, err
    summary = json.loads((project / "outputs" / "mini" / folder / "summary.json").read_text())
    assert summary["as_of"] == "2024-01-11"
    guard.assert_unchanged()


def test_fit_removes_the_checkpoints_of_a_spec_checkpoint_dir(tmp_path, capsys, tree_guard):
    # was: only the default hidden folder was cleaned; a spec's checkpoint_dir kept them
    project = tmp_path / "project"
    spec = make_project(project)
    spec.write_text(
        spec.read_text().replace("random_state = 0", 'random_state = 0\ncheckpoint_dir = "ckpt"')
    )
    guard = tree_guard(tmp_path, allowed=("project/models", "project/ckpt"))
    code, _, err = cli(capsys, "fit", str(spec))
    assert code == 0, err
    assert not (project / "ckpt").exists()
    config = json.loads((project / "models" / "mini" / LAST / "config.json").read_text())
    assert config["params"]["checkpoint_dir"] == "ckpt"  # as the spec wrote it
    guard.assert_unchanged()

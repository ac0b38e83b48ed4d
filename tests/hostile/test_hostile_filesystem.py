"""Hostile file systems under model folders and checkpoints: FIFOs, devices, links to
``/dev/zero``, folders where files belong, sparse files of a terabyte, paths under files, names
too long, folders forecaster did not write. ``load`` and ``read_checkpoint`` refuse them with
``ModelFormatError`` / ``CheckpointError`` without hanging or reading them into memory; ``save``
refuses a destination it does not own before writing anything (``OwnershipError``) and wraps
what the operating system refuses (``ModelSaveError``, never a raw ``OSError``); a fresh fit
overwrites only checkpoint files it wrote.

Every case checks, with ``tree_guard``, that nothing outside the files the case itself wrote
changed (for refused saves: the destination is byte for byte what it was)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import safetensors.torch
import torch
from conftest import write_checkpoint

import forecaster
from forecaster import _io
from forecaster.exceptions import OwnershipError
from forecaster.persistence import ModelFormatError, ModelSaveError
from forecaster.training.loop import (
    CheckpointError,
    read_checkpoint,
    remove_checkpoints,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file kinds")
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def regressor() -> forecaster.RNNRegressor:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 6, 2)).astype(np.float32)
    return forecaster.RNNRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X, X[:, -1, 0])


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "id": np.repeat(["a", "b"], 30),
            "time": np.tile(np.arange(30), 2),
            "y": rng.normal(size=60),
        }
    )
    model = forecaster.RNNForecaster(
        target="y", id_col="id", lookback=6, horizon=2, hidden_size=4, segment_length=3,
        max_epochs=1, random_state=0, progress=False,
    )  # fmt: skip
    return model.fit(frame).save(tmp_path_factory.mktemp("hostile-fs") / "model")


@pytest.fixture
def model_copy(saved: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "model"))


def replace_with(kind: str) -> Callable[[Path], None]:
    """Put something that is not a regular file in place of ``path``."""

    def put(path: Path) -> None:
        path.unlink()
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dev-zero":
            path.symlink_to("/dev/zero")
        elif kind == "dev-urandom":
            path.symlink_to("/dev/urandom")
        elif kind == "folder":
            path.mkdir()
            (path / "inner").write_bytes(b"x")
        elif kind == "sparse-terabyte":
            with open(path, "wb") as handle:
                handle.truncate(2**40)
        elif kind == "dangling-link":
            path.symlink_to(path.with_name("nowhere"))

    return put


KINDS = {
    "fifo": "FIFO",
    "dev-zero": "a device",
    "dev-urandom": "a device",
    "folder": "a folder",
    "sparse-terabyte": "bytes, more than the",
    "dangling-link": "is missing",
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("file", ["weights.safetensors", "config.json", "manifest.json"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_model_file_that_is_not_a_regular_file_is_refused_without_reading_it(
    kind: str, file: str, model_copy: Path, tmp_path: Path, tree_guard
) -> None:
    replace_with(kind)(model_copy / file)
    # (the guard hashes files: a terabyte is left out of it, its size is checked instead)
    guard = tree_guard(tmp_path, allowed=(f"model/{file}",) if "sparse" in kind else ())
    message = KINDS[kind] if file != "manifest.json" or kind != "dangling-link" else "missing"
    with pytest.raises(ModelFormatError, match=message) as info:
        forecaster.load(model_copy)
    assert file in str(info.value)
    guard.assert_unchanged()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("file", ["state.safetensors", "keys.parquet"])
def test_state_and_keys_fifos_are_refused_too(
    file: str, model_copy: Path, tmp_path: Path, tree_guard
) -> None:
    replace_with("fifo")(model_copy / file)
    guard = tree_guard(tmp_path)
    with pytest.raises(ModelFormatError, match=rf"{file} is a FIFO"):
        forecaster.load(model_copy)
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda t: (t / "file").write_text("x") and t / "file", "it is a file, not a folder"),
        (lambda t: (t / "file").write_text("x") and t / "file" / "model", "a part of the path"),
        (lambda t: t / "absent", "no such folder"),
        (lambda t: (t / "link").symlink_to(t / "nowhere") or t / "link", "a link to nothing"),
        (lambda t: t / ("n" * 300), "File name too long"),
        (lambda t: (t / "empty").mkdir() or t / "empty", r"config.json \(the model config\)"),
    ],
    ids=["a-file", "under-a-file", "absent", "broken-link", "name-too-long", "empty-folder"],
)
def test_loading_a_path_that_is_no_model_folder_is_refused(
    make: Callable[[Path], Path], match: str, tmp_path: Path, tree_guard
) -> None:
    path = make(tmp_path)
    guard = tree_guard(tmp_path)
    with pytest.raises(ModelFormatError, match=match):
        forecaster.load(path)
    guard.assert_unchanged()


def test_a_link_to_a_model_folder_loads(saved: Path, tmp_path: Path, tree_guard) -> None:
    (tmp_path / "link").symlink_to(saved, target_is_directory=True)
    guard = tree_guard(tmp_path)
    assert type(forecaster.load(tmp_path / "link")) is forecaster.RNNForecaster
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# saving: ownership before deletion, operating-system errors wrapped
# ------------------------------------------------------------------------------------------


def user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    return folder


def model_with_a_users_file(tmp_path: Path, regressor: forecaster.RNNRegressor) -> Path:
    folder = regressor.save(tmp_path / "model")
    (folder / "sub").mkdir()
    (folder / "sub" / "results.csv").write_text("a,b\n")
    return folder


def model_with_a_changed_file(tmp_path: Path, regressor: forecaster.RNNRegressor) -> Path:
    folder = regressor.save(tmp_path / "model")
    with open(folder / "config.json", "a") as handle:
        handle.write(" ")
    return folder


def run_folder(tmp_path: Path, regressor: forecaster.RNNRegressor) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "forecast.csv").write_text("x\n")
    _io.write_manifest(folder, "run")
    return folder


def fifo(tmp_path: Path, regressor: forecaster.RNNRegressor) -> Path:
    os.mkfifo(tmp_path / "pipe")
    return tmp_path / "pipe"


def link_to_folder(tmp_path: Path, regressor: forecaster.RNNRegressor) -> Path:
    (tmp_path / "link").symlink_to(user_folder(tmp_path), target_is_directory=True)
    return tmp_path / "link"


def link_to_model(tmp_path: Path, regressor: forecaster.RNNRegressor) -> Path:
    (tmp_path / "link").symlink_to(regressor.save(tmp_path / "model"), target_is_directory=True)
    return tmp_path / "link"


def dangling_link(tmp_path: Path, regressor: forecaster.RNNRegressor) -> Path:
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    return tmp_path / "link"


def format_2_with_a_users_file(tmp_path: Path, regressor: forecaster.RNNRegressor) -> Path:
    fixture = Path(__file__).parents[1] / "fixtures" / "regressor_format2"
    folder = Path(shutil.copytree(fixture, tmp_path / "old"))
    (folder / "README.md").write_text("how I trained it")
    return folder


REFUSED_DESTINATIONS = {
    "a-users-folder": (lambda t, r: user_folder(t), "has no forecaster manifest.json"),
    "a-file": (lambda t, r: (t / "f").write_text("x") and t / "f", "it is a file"),
    "a-fifo": (fifo, "it is a file"),
    "a-link-to-a-folder": (link_to_folder, "it is a link"),
    "a-link-to-a-model": (link_to_model, "it is a link"),
    "a-dangling-link": (dangling_link, "it is a link"),
    "a-model-with-a-users-file": (model_with_a_users_file, r"sub/results.csv \(not written"),
    "a-model-with-a-changed-file": (model_with_a_changed_file, r"config.json \(changed since"),
    "a-pipeline-run": (run_folder, "it holds a forecaster run, not a model"),
    "a-format-2-model-with-a-users-file": (format_2_with_a_users_file, "has no forecaster"),
    "inside-a-model-folder": (
        lambda t, r: r.save(t / "model") / "nested",
        r"it is inside .*model, a model folder forecaster wrote",
    ),
    "inside-a-pipeline-run": (
        lambda t, r: run_folder(t, r) / "models" / "m",
        r"it is inside .*run, a run folder forecaster wrote",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED_DESTINATIONS))
def test_save_refuses_a_destination_it_does_not_own_and_writes_nothing(
    case: str, regressor: forecaster.RNNRegressor, tmp_path: Path, tree_guard, monkeypatch
) -> None:
    make, match = REFUSED_DESTINATIONS[case]
    destination = make(tmp_path, regressor)
    guard = tree_guard(tmp_path)
    serialised: list[str] = []
    monkeypatch.setattr(_io, "staging_directory", lambda d: serialised.append(d))
    with pytest.raises(OwnershipError, match=match):
        regressor.save(destination)
    assert serialised == []  # refused before anything was serialised or staged
    guard.assert_unchanged()


def test_save_over_an_unchanged_format_2_model_upgrades_it(
    regressor: forecaster.RNNRegressor, tmp_path: Path, tree_guard
) -> None:
    fixture = Path(__file__).parents[1] / "fixtures" / "regressor_format2"
    folder = Path(shutil.copytree(fixture, tmp_path / "old"))
    guard = tree_guard(tmp_path, allowed=("old",))
    regressor.save(folder)
    assert json.loads((folder / "config.json").read_text())["format_version"] == 3
    guard.assert_unchanged()


def read_only_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    parent = tmp_path / "ro"
    parent.mkdir()
    if ROOT:  # root writes anywhere: make creating anything in the folder fail as it would
        real_mkdir = os.mkdir

        def denied(path: object, *args: object, **kwargs: object) -> None:
            if Path(os.fspath(path)).parent == parent:  # type: ignore[arg-type]
                raise PermissionError(13, "Permission denied", str(path))
            real_mkdir(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "mkdir", denied)
    else:
        parent.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return parent / "model"


SAVE_ERRORS = {
    "under-a-file": (
        lambda t, m: (t / "file").write_text("x") and t / "file" / "model",
        "Not a directory|File exists",
    ),
    "read-only-folder": (read_only_parent, "Permission denied"),
    "name-too-long": (lambda t, m: t / ("m" * 300), "File name too long"),
    "parent-name-too-long": (lambda t, m: t / ("p" * 300) / "model", "File name too long"),
}


@pytest.mark.parametrize("case", list(SAVE_ERRORS))
def test_save_wraps_what_the_operating_system_refuses(
    case: str, regressor: forecaster.RNNRegressor, tmp_path: Path, tree_guard, monkeypatch
) -> None:
    make, match = SAVE_ERRORS[case]
    destination = make(tmp_path, monkeypatch)
    guard = tree_guard(tmp_path)
    with pytest.raises(ModelSaveError, match=rf"Cannot save the model to .*({match})"):
        regressor.save(destination)
    monkeypatch.undo()
    (tmp_path / "ro").exists() and (tmp_path / "ro").chmod(0o755)
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------


def lying_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:8] = (len(data) * 10).to_bytes(8, "little")
    path.write_bytes(bytes(data))


def extra_bytes(path: Path) -> None:
    with open(path, "ab") as handle:
        handle.write(b"\0" * 1000)


CHECKPOINT_CASES = {
    "fifo": (replace_with("fifo"), "FIFO"),
    "dev-zero": (replace_with("dev-zero"), "a device"),
    "folder": (replace_with("folder"), "a folder"),
    "sparse-terabyte": (replace_with("sparse-terabyte"), "more than the"),
    "header-length-lies": (lying_header, "its header claims"),
    "bytes-appended": (extra_bytes, "its tensors take"),
    "another-safetensors-file": (
        lambda p: safetensors.torch.save_file({"w": torch.zeros(2)}, p),
        "has no 'forecaster_checkpoint' metadata",
    ),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", list(CHECKPOINT_CASES))
def test_read_checkpoint_refuses_what_is_no_checkpoint_without_reading_it(
    case: str, tmp_path: Path, tree_guard
) -> None:
    path = tmp_path / "run.safetensors"
    write_checkpoint(path)
    corrupt, match = CHECKPOINT_CASES[case]
    corrupt(path)
    guard = tree_guard(tmp_path, allowed=("run.safetensors",) if "sparse" in case else ())
    size = os.lstat(path).st_size
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint(path)
    assert os.lstat(path).st_size == size
    guard.assert_unchanged()


def test_a_fresh_fit_refuses_to_overwrite_a_foreign_checkpoint_file(
    tmp_path: Path, tree_guard
) -> None:
    """A checkpoint_dir pointed at a folder holding another program's checkpoint-0.safetensors
    (e.g. a downloaded model): the fit refuses before training, the file stays."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    safetensors.torch.save_file({"w": torch.ones(3)}, folder / "checkpoint-0.safetensors")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 4, 1)).astype(np.float32)
    model = forecaster.RNNRegressor(hidden_size=2, max_epochs=1, checkpoint_dir=str(folder))
    guard = tree_guard(tmp_path)
    with pytest.raises(CheckpointError, match=r"\['checkpoint-0.safetensors'\] that forecaster"):
        model.fit(X, X[:, -1, 0])
    guard.assert_unchanged()


def test_remove_checkpoints_leaves_files_that_are_not_checkpoints(
    tmp_path: Path, tree_guard
) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    write_checkpoint(folder / "checkpoint-0.safetensors")
    safetensors.torch.save_file({"w": torch.ones(3)}, folder / "checkpoint-1.safetensors")
    (folder / "checkpoint-2.safetensors").symlink_to(folder / "checkpoint-0.safetensors")
    guard = tree_guard(tmp_path)
    remove_checkpoints(folder)
    assert guard.changes() == ["ckpt/checkpoint-0.safetensors: removed"]


def test_a_checkpoint_under_a_file_is_a_checkpoint_error(tmp_path: Path, tree_guard) -> None:
    (tmp_path / "file").write_text("x")
    guard = tree_guard(tmp_path)
    with pytest.raises(CheckpointError, match="Cannot write the checkpoint"):
        write_checkpoint(tmp_path / "file" / "run.safetensors")
    guard.assert_unchanged()


def test_stale_temporary_files_of_a_fit_are_the_only_ones_deleted(tmp_path, tree_guard) -> None:
    """Regression: a fit deleted any ``.checkpoint-*.safetensors.*.tmp`` (a user's
    ``.checkpoint-1.safetensors.notes.tmp`` too) and a folder of such a name made it raise a
    raw IsADirectoryError. Only files of exactly the names write_atomic gives are deleted."""
    folder = tmp_path / "ckd"
    folder.mkdir()
    (folder / ".checkpoint-1.safetensors.notes.tmp").write_text("my notes")
    (folder / ".checkpoint-0.safetensors.mine.tmp").mkdir()
    (folder / ".checkpoint-0.safetensors.mine.tmp" / "keep.txt").write_text("mine")
    (folder / ".checkpoint-0.safetensors.0123456789ab.tmp").mkdir()  # exact name, a folder
    (folder / ".checkpoint-0.safetensors.0123456789ab.tmp" / "keep.txt").write_text("mine")
    stale = folder / ".checkpoint-0.safetensors.ba9876543210.tmp"  # left by a killed write
    stale.write_bytes(b"half a checkpoint")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 4, 1)).astype(np.float32)
    model = forecaster.RNNRegressor(hidden_size=2, max_epochs=1, checkpoint_dir=str(folder))
    guard = tree_guard(tmp_path, allowed=("ckd/checkpoint-0.safetensors",))
    model.fit(X, X[:, -1, 0])
    assert guard.changes() == ["ckd/.checkpoint-0.safetensors.ba9876543210.tmp: removed"]
    stale.write_bytes(b"half a checkpoint")
    remove_checkpoints(folder)
    assert guard.changes() == ["ckd/.checkpoint-0.safetensors.ba9876543210.tmp: removed"]


OWNED_CHECKPOINT_DIRS = {
    "a-saved-model": (lambda t, r: r.save(t / "model"), r"is .*model, a model folder"),
    "inside-a-saved-model": (
        lambda t, r: r.save(t / "model") / "ckpt",
        r"is inside .*model, a model folder",
    ),
    "inside-a-pipeline-run": (
        lambda t, r: run_folder(t, r) / "checkpoints",
        r"is inside .*run, a run folder",
    ),
    "a-link-to-a-saved-model": (
        lambda t, r: (t / "link").symlink_to(r.save(t / "model")) or t / "link",
        r"is .*model, a model folder",
    ),
}


@pytest.mark.parametrize("case", list(OWNED_CHECKPOINT_DIRS))
def test_a_checkpoint_dir_in_a_folder_forecaster_wrote_is_refused(
    case: str, regressor: forecaster.RNNRegressor, tmp_path: Path, tree_guard
) -> None:
    """Regression: checkpoints written into a saved model (or a run folder) made a later save
    or ``run --force`` over it fail with a false "not written by forecaster"."""
    make, match = OWNED_CHECKPOINT_DIRS[case]
    folder = make(tmp_path, regressor)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 4, 1)).astype(np.float32)
    model = forecaster.RNNRegressor(hidden_size=2, max_epochs=1, checkpoint_dir=str(folder))
    guard = tree_guard(tmp_path)
    with pytest.raises(CheckpointError, match=rf"checkpoint_dir='{folder}' {match}") as info:
        model.fit(X, X[:, -1, 0])
    assert "Pass a checkpoint_dir outside it" in str(info.value)
    guard.assert_unchanged()
    if case == "a-saved-model":
        regressor.save(folder)  # still ours to replace


# ------------------------------------------------------------------------------------------
# what the ownership check cannot read
# ------------------------------------------------------------------------------------------

UNREADABLE_SAVE = """
import sys
import forecaster
from forecaster.exceptions import OwnershipError
try:
    forecaster.load(sys.argv[1]).save(sys.argv[2])
except OwnershipError as exc:
    print("OwnershipError:", exc)
else:
    print("saved")
"""


def unreadable_subfolder(folder: Path) -> Path:
    (folder / "mine").mkdir()
    (folder / "mine" / "notes.txt").write_text("data")
    return folder / "mine"


def unreadable_weights(folder: Path) -> Path:
    return folder / "weights.safetensors"


@pytest.mark.skipif(ROOT and shutil.which("setpriv") is None, reason="needs setpriv as root")
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (unreadable_subfolder, r"mine \(cannot read it: Permission denied\)"),
        (unreadable_weights, r"weights.safetensors \(cannot read it: Permission denied\)"),
    ],
    ids=["subfolder-mode-000", "weights-mode-000"],
)
@pytest.mark.slow
def test_save_over_a_folder_with_an_unreadable_entry_is_refused(
    make: Callable[[Path], Path], match: str, saved: Path, tmp_path: Path, tree_guard
) -> None:
    """Regression: the ownership check walked with os.fwalk, which skips folders it cannot
    open, so ``save`` moved a user's unreadable folder into a hidden staging folder; an
    unreadable weights file gave a raw PermissionError. Without the capability to read
    everything (root runs the save under ``setpriv`` without CAP_DAC_OVERRIDE), both are an
    OwnershipError naming the entry, and nothing moves."""
    target = Path(shutil.copytree(saved, tmp_path / "m2"))
    entry = make(target)
    guard = tree_guard(tmp_path)
    entry.chmod(0)
    command = [sys.executable, "-c", UNREADABLE_SAVE, str(saved), str(target)]
    if ROOT:
        drop = "-dac_override,-dac_read_search,-fowner"
        command = ["setpriv", f"--bounding-set={drop}", *command]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        entry.chmod(0o755 if entry.is_dir() else 0o644)
    assert result.stdout.startswith("OwnershipError:"), result.stdout + result.stderr
    assert re.search(match, result.stdout), result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m2"]  # no staging left
    guard.assert_unchanged()

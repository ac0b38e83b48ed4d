"""The shared filesystem primitives: atomic writes, manifests, publication, bounded reads, locks."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from forecaster import _io
from forecaster.exceptions import ConcurrentRunError, ForecasterError, OwnershipError


def staged(destination: Path, files: dict[str, bytes], kind: str = "thing") -> Path:
    staging = _io.staging_directory(destination)
    for name, data in files.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_bytes(data)
    _io.write_manifest(staging, kind, {"files": len(files)})
    return staging


def test_write_atomic_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a" / "file.bin"
    assert _io.write_bytes_atomic(path, b"one") == _io.sha256_bytes(b"one")
    _io.write_bytes_atomic(path, b"two")
    assert path.read_bytes() == b"two"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]


def test_write_atomic_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"old")

    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        _io.write_atomic(path, broken)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


def test_manifest_lists_every_file_with_its_hash(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b")
    (tmp_path / "a.txt").write_text("a")
    manifest = _io.write_manifest(tmp_path, "thing", {"k": 1})
    assert manifest["files"] == {
        "a.txt": _io.sha256_bytes(b"a"),
        "sub/b.txt": _io.sha256_bytes(b"b"),
    }
    assert _io.read_manifest(tmp_path) == manifest


@pytest.mark.parametrize(
    "text",
    [b"{}", b"[]", b'{"owner": "someone", "kind": "x", "files": {}}', b"\xff", b"{" * 5000],
)
def test_a_manifest_that_is_not_ours_proves_nothing(tmp_path, text):
    (tmp_path / _io.MANIFEST).write_bytes(text)
    assert _io.read_manifest(tmp_path) is None


def test_read_consistent_fails_at_once_on_a_missing_folder_beside_a_stale_staging_one(tmp_path):
    """A save killed part-way leaves a staging folder; reading a folder that is not there (or
    failing inside one nobody replaces) must not wait out the 30 s meant for a folder that
    keeps being replaced."""
    (tmp_path / ".model.staging-deadbeef").mkdir()
    started = time.monotonic()
    with pytest.raises(FileNotFoundError):
        _io.read_consistent(tmp_path / "model", lambda pinned: None)
    (tmp_path / "model").mkdir()

    def broken(pinned):
        raise FileNotFoundError("config.json")

    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        _io.read_consistent(tmp_path / "model", broken)
    assert time.monotonic() - started < 5.0


def test_publish_to_a_free_place_then_replace_our_own(tmp_path):
    destination = tmp_path / "out"
    _io.publish_directory(staged(destination, {"x": b"1"}), destination, kind="thing")
    assert (destination / "x").read_bytes() == b"1"
    _io.publish_directory(staged(destination, {"x": b"2"}), destination, kind="thing")
    assert (destination / "x").read_bytes() == b"2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda d: (d / "notes.txt").write_text("mine"), "did not write"),
        (lambda d: (d / "x").write_bytes(b"edited"), "changed since"),
        (lambda d: (d / "extra.csv").write_text("1,2"), "not written by forecaster"),
        (lambda d: (d / "sub").mkdir() or (d / "sub" / "deep.txt").write_text("z"), "deep.txt"),
        (lambda d: os.symlink("/etc", d / "link"), "link"),
        # was: an empty folder someone added was deleted with the version it was in
        (lambda d: (d / "empty").mkdir(), r"empty/ \(a folder forecaster did not write\)"),
        (lambda d: (d / "a" / "b").mkdir(parents=True), r"a/ \(a folder"),
    ],
)
def test_publish_refuses_what_is_not_provably_ours(tmp_path, prepare, message):
    destination = tmp_path / "out"
    if message != "did not write":
        _io.publish_directory(staged(destination, {"x": b"1"}), destination, kind="thing")
    else:
        destination.mkdir()
    prepare(destination)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(OwnershipError, match=message):
        _io.publish_directory(staged(destination, {"x": b"2"}), destination, kind="thing")
    assert _io.remove_owned(destination, "thing") is False
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_folder_that_holds_written_files_is_ours(tmp_path):
    """Sub-folders that hold listed files (a run's model/) are the package's: replaced."""
    destination = tmp_path / "out"
    files = {"x": b"1", "model/deep/y": b"2"}
    _io.publish_directory(staged(destination, files), destination, kind="thing")
    _io.publish_directory(staged(destination, {"x": b"3"}), destination, kind="thing")
    assert sorted(p.name for p in destination.iterdir()) == ["manifest.json", "x"]


def test_publish_refuses_another_kind_a_file_and_a_link(tmp_path):
    destination = tmp_path / "out"
    _io.publish_directory(staged(destination, {"x": b"1"}, "model"), destination, kind="model")
    with pytest.raises(OwnershipError, match="holds a forecaster model, not a run"):
        _io.publish_directory(staged(destination, {"x": b"2"}, "run"), destination, kind="run")
    file = tmp_path / "file"
    file.write_text("data")
    with pytest.raises(OwnershipError, match="is a file"):
        _io.publish_directory(staged(file, {"x": b"2"}), file, kind="thing")
    link = tmp_path / "link"
    link.symlink_to(destination)
    with pytest.raises(OwnershipError, match="is a link"):
        _io.publish_directory(staged(link, {"x": b"2"}, "model"), link, kind="model")
    assert file.read_text() == "data"
    assert (destination / "x").read_bytes() == b"1"


def test_publish_checks_the_callers_rule(tmp_path):
    destination = tmp_path / "out"
    _io.publish_directory(staged(destination, {"x": b"1"}), destination, kind="thing")
    with pytest.raises(OwnershipError, match="belongs to another pipeline"):
        _io.publish_directory(
            staged(destination, {"x": b"2"}),
            destination,
            kind="thing",
            same=lambda manifest: "it belongs to another pipeline",
        )


def test_remove_owned_leaves_foreign_folders(tmp_path):
    ours = tmp_path / "ours"
    _io.publish_directory(staged(ours, {"x": b"1"}), ours, kind="thing")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "data.csv").write_text("1")
    assert _io.remove_owned(ours, "thing") is True
    assert not ours.exists()
    assert _io.remove_owned(theirs, "thing") is False
    assert (theirs / "data.csv").read_text() == "1"


def test_concurrent_publishers_all_succeed_and_readers_see_whole_versions(tmp_path):
    """Writers keep replacing a folder of two files that must match; readers pinned to the
    folder never see a missing file or a mix of two versions."""
    destination = tmp_path / "out"
    _io.publish_directory(staged(destination, {"a": b"0", "b": b"0"}, "t"), destination, kind="t")
    errors: list[BaseException] = []
    stop = time.monotonic() + 2.0

    def write(tag: int) -> None:
        k = 0
        while time.monotonic() < stop:
            k += 1
            value = f"{tag}-{k}".encode()
            try:
                staging = staged(destination, {"a": value, "b": value}, "t")
                _io.publish_directory(staging, destination, kind="t")
            except BaseException as exc:
                errors.append(exc)
                return

    def read() -> None:
        while time.monotonic() < stop:
            try:

                def both(pinned: _io.PinnedDirectory) -> tuple[bytes, bytes]:
                    return pinned.read("a", 100), pinned.read("b", 100)

                a, b = _io.read_consistent(destination, both)
                if a != b:
                    errors.append(AssertionError(f"mixed versions {a!r} {b!r}"))
                    return
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.parametrize("kind", ["fifo", "device", "folder", "too_large"])
def test_bounded_reading_refuses_what_is_not_a_small_regular_file(tmp_path, kind):
    path = tmp_path / "weights"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    else:
        with open(path, "wb") as handle:
            handle.truncate(10**12)  # sparse: a terabyte that occupies no disk
    started = time.monotonic()
    with pytest.raises(ForecasterError, match="weights"):
        _io.read_file_bounded(path, 1000, what="weights")
    assert time.monotonic() - started < 5


def test_bounded_reading_of_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        _io.read_file_bounded(tmp_path / "nope", 10)


@pytest.mark.parametrize(
    "data",
    [b"[" * 65 + b"]" * 65, b"[" * 100000 + b"]" * 100000, b'{"a": NaN}', b"\xff\xfe", b"{"],
)
def test_json_is_parsed_only_when_valid_and_shallow(data):
    with pytest.raises(ValueError, match="config"):
        _io.load_json_bounded(data, source="config", error=ValueError)


def test_lock_refuses_a_second_holder_and_can_wait(tmp_path):
    lock = tmp_path / ".job.lock"
    released = threading.Event()

    def hold() -> None:
        with _io.exclusive_lock(lock):
            released.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    with pytest.raises(ConcurrentRunError, match="Another process"), _io.exclusive_lock(lock):
        pass
    threading.Timer(0.3, released.set).start()
    with _io.exclusive_lock(lock, timeout=10):
        pass
    holder.join()


def test_files_and_folders_get_the_users_umask(tmp_path):
    """Published outputs are readable as any file the user writes (not tempfile's 0600/0700)."""
    previous = os.umask(0o022)
    try:
        destination = tmp_path / "out"
        _io.publish_directory(staged(destination, {"x": b"1"}), destination, kind="thing")
        file = tmp_path / "file.bin"
        _io.write_bytes_atomic(file, b"1")
    finally:
        os.umask(previous)
    assert destination.stat().st_mode & 0o777 == 0o755
    assert (destination / "x").stat().st_mode & 0o777 == 0o644
    assert (destination / _io.MANIFEST).stat().st_mode & 0o777 == 0o644
    assert file.stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------------------------------------------
# time of check and time of use
# ------------------------------------------------------------------------------------------


@pytest.fixture(params=["exchange", "two-renames"])
def exchange_kind(request, monkeypatch) -> str:
    """Run a test with renameat2's exchange and with the two-rename fallback."""
    if request.param == "two-renames":
        monkeypatch.setattr(_io.renaming, "_RENAMEAT2", None)
    return request.param


def test_a_file_dropped_between_the_check_and_the_exchange_is_put_back(
    tmp_path, monkeypatch, exchange_kind
):
    """The ownership check passed; the user's file appears before the exchange: it travels
    with the old folder to the staging path, is found there, and the old folder goes back."""
    destination = tmp_path / "out"
    _io.publish_directory(staged(destination, {"x": b"1"}), destination, kind="thing")
    real_exchange = _io.publishing.exchange
    calls: list[int] = []

    def user_writes_first(staging: Path, target: Path) -> None:
        if not calls:
            (target / "user.txt").write_text("mine")
        calls.append(1)
        real_exchange(staging, target)

    monkeypatch.setattr(_io.publishing, "exchange", user_writes_first)
    with pytest.raises(OwnershipError, match=r"user.txt \(not written by forecaster\).*put back"):
        _io.publish_directory(staged(destination, {"x": b"2"}), destination, kind="thing")
    assert len(calls) == 2  # exchanged, found the file, exchanged back
    assert (destination / "user.txt").read_text() == "mine"
    assert (destination / "x").read_bytes() == b"1"  # the old version, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left


def test_an_empty_folder_that_fills_before_the_exchange_is_put_back(
    tmp_path, monkeypatch, exchange_kind
):
    destination = tmp_path / "out"
    destination.mkdir()
    real_exchange = _io.publishing.exchange
    calls: list[int] = []

    def user_writes_first(staging: Path, target: Path) -> None:
        if not calls:
            (target / "draft.txt").write_text("mine")
        calls.append(1)
        real_exchange(staging, target)

    monkeypatch.setattr(_io.publishing, "exchange", user_writes_first)
    with pytest.raises(OwnershipError, match="did not write"):
        _io.publish_directory(staged(destination, {"x": b"2"}), destination, kind="thing")
    assert len(calls) == 2
    assert sorted(p.name for p in destination.iterdir()) == ["draft.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_when_another_publisher_replaced_the_folder_meanwhile_the_users_file_is_kept(
    tmp_path, monkeypatch
):
    """The user's file appeared in the old version and another process published its own
    version before the old one could go back: the old one is kept under a new name, named in
    the error, never deleted."""
    destination = tmp_path / "out"
    _io.publish_directory(staged(destination, {"x": b"1"}), destination, kind="thing")
    real_exchange = _io.publishing.exchange
    calls: list[int] = []

    def race(staging: Path, target: Path) -> None:
        calls.append(1)
        if len(calls) == 1:
            (target / "user.txt").write_text("mine")
            real_exchange(staging, target)
            other = staged(target, {"x": b"3"})
            _io.publishing._unmark(other)  # a third publisher swaps in its version ...
            real_exchange(other, target)
            shutil.rmtree(other)  # ... and deletes ours after checking it
        else:
            real_exchange(staging, target)

    monkeypatch.setattr(_io.publishing, "exchange", race)
    with pytest.raises(OwnershipError, match=r"kept at .*\.out\.kept-") as info:
        _io.publish_directory(staged(destination, {"x": b"2"}), destination, kind="thing")
    kept = Path(str(info.value).split("kept at ")[1].rstrip(".)"))
    assert (kept / "user.txt").read_text() == "mine" and (kept / "x").read_bytes() == b"1"
    assert (destination / "x").read_bytes() == b"3"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", kept.name])


POLLER = """
import glob, os, sys, time
work, target = sys.argv[1], sys.argv[2]
open(os.path.join(work, "poller.ready"), "w").close()
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    if glob.glob(os.path.join(work, ".out.staging-*", "manifest.json")):
        time.sleep(0.005)
        descriptor = os.open(os.path.join(target, "user.txt"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(descriptor, b"mine")
        os.close(descriptor)
        print("created")
        sys.exit(0)
print("missed")
"""


@pytest.mark.timeout(120)
def test_a_file_written_by_another_process_during_publication_is_never_lost(tmp_path):
    """A second process waits for the staging folder's manifest, then writes a file into the
    destination; a 30 MB file makes the ownership check take long enough for the race (before
    the fix: the file was deleted with the old folder in 9 tries out of 10)."""
    import subprocess
    import sys

    destination = tmp_path / "out"
    big = os.urandom(1024) * 30_000
    _io.publish_directory(staged(destination, {"big": big}), destination, kind="t")
    outcomes = []
    for _ in range(6):
        ready = tmp_path / "poller.ready"
        ready.unlink(missing_ok=True)
        poller = subprocess.Popen(
            [sys.executable, "-c", POLLER, str(tmp_path), str(destination)],
            stdout=subprocess.PIPE,
            text=True,
        )
        while not ready.exists():
            time.sleep(0.01)
        try:
            _io.publish_directory(staged(destination, {"big": big}), destination, kind="t")
            outcomes.append("published")
        except OwnershipError:
            outcomes.append("refused")
        said = poller.communicate(timeout=60)[0].strip()
        if said == "created":  # wherever it landed, the user's file is in the destination
            assert (destination / "user.txt").read_text() == "mine", outcomes
            (destination / "user.txt").unlink()
        assert (destination / "big").read_bytes() == big
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "poller.ready"], outcomes


# ------------------------------------------------------------------------------------------
# write_atomic(replace_check=...)
# ------------------------------------------------------------------------------------------


def ours_only(path: Path) -> None:
    """A replace_check: a file may be replaced only when it starts with b'ours'."""
    if path.exists() and not path.read_bytes().startswith(b"ours"):
        raise OwnershipError(f"{path.name} is not ours")


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "link-fallback"])
def test_write_atomic_with_a_check_replaces_only_what_it_approved(tmp_path, monkeypatch, renameat2):
    if not renameat2:
        monkeypatch.setattr(_io.renaming, "_RENAMEAT2", None)
    path = tmp_path / "out.bin"
    _io.write_bytes_atomic(path, b"ours 1")
    _io.write_atomic(path, lambda tmp: tmp.write_bytes(b"ours 2"), replace_check=ours_only)
    assert path.read_bytes() == b"ours 2"
    path.write_bytes(b"users")
    with pytest.raises(OwnershipError, match="not ours"):
        _io.write_atomic(path, lambda tmp: tmp.write_bytes(b"ours 3"), replace_check=ours_only)
    assert path.read_bytes() == b"users" and no_temporaries(tmp_path)


@pytest.mark.parametrize("renameat2", [True, False], ids=["renameat2", "link-fallback"])
@pytest.mark.parametrize("when", ["during-the-check", "after-the-check"])
def test_write_atomic_never_replaces_a_file_that_appeared_after_the_check(
    tmp_path, monkeypatch, renameat2, when
):
    """The path was free when checked; the user's file appears during the check or right
    after it (before the rename): it is not replaced (RENAME_NOREPLACE, or a hard link); it
    is checked in turn and refused."""
    if not renameat2:
        monkeypatch.setattr(_io.renaming, "_RENAMEAT2", None)
    path = tmp_path / "out.bin"
    checked: list[bool] = []

    def check(file: Path) -> None:
        ours_only(file)
        checked.append(file.exists())
        if when == "during-the-check" and len(checked) == 1:
            file.write_bytes(b"users")

    real_place = _io.atomic._place_new_file

    def user_writes_before_the_rename(tmp: Path, target: Path) -> bool:
        if when == "after-the-check" and not target.exists():
            target.write_bytes(b"users")
        return real_place(tmp, target)

    monkeypatch.setattr(_io.atomic, "_place_new_file", user_writes_before_the_rename)
    with pytest.raises(OwnershipError, match="not ours"):
        _io.write_atomic(path, lambda tmp: tmp.write_bytes(b"ours"), replace_check=check)
    assert checked == [False]  # approved a free path; the file that came is refused
    assert path.read_bytes() == b"users" and no_temporaries(tmp_path)


def test_write_atomic_puts_back_a_file_swapped_in_between_check_and_exchange(tmp_path, monkeypatch):
    path = tmp_path / "out.bin"
    _io.write_bytes_atomic(path, b"ours 1")
    real_rename2 = _io.renaming.rename2
    calls: list[int] = []

    def user_swaps_first(source: Path, target: Path, flags: int) -> bool:
        if flags == _io.renaming.RENAME_EXCHANGE and not calls:
            os.unlink(target)
            target.write_bytes(b"users file")  # another inode, other bytes
        calls.append(flags)
        return real_rename2(source, target, flags)

    monkeypatch.setattr(_io.atomic, "rename2", user_swaps_first)
    with pytest.raises(OwnershipError, match="not ours"):
        _io.write_atomic(path, lambda tmp: tmp.write_bytes(b"ours 2"), replace_check=ours_only)
    assert calls == [_io.renaming.RENAME_EXCHANGE] * 2  # exchanged, saw another file, put it back
    assert path.read_bytes() == b"users file" and no_temporaries(tmp_path)


# ------------------------------------------------------------------------------------------
# ownership checks see everything
# ------------------------------------------------------------------------------------------


def deny(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make opening ``name`` (relative to a folder descriptor, as the walk does) fail as it
    does without read permission (root reads everything, so the denial is simulated)."""
    real_open = os.open

    def open_denied(path, flags, mode=0o777, *, dir_fd=None):
        if dir_fd is not None and os.fspath(path) == name:
            raise PermissionError(13, "Permission denied", name)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    monkeypatch.setattr(os, "open", open_denied)
    monkeypatch.setattr(os, "supports_dir_fd", os.supports_dir_fd | {open_denied})


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda d: (d / "mine").mkdir() or (d / "mine" / "notes.txt").write_text("z"), "mine"),
        (lambda d: None, "x"),  # the listed file itself cannot be read
    ],
    ids=["unreadable-subfolder", "unreadable-file"],
)
def test_what_the_check_cannot_read_is_a_reason_to_refuse(tmp_path, monkeypatch, prepare, message):
    destination = tmp_path / "out"
    _io.publish_directory(staged(destination, {"x": b"1"}), destination, kind="thing")
    prepare(destination)
    staging = staged(destination, {"x": b"2"})
    deny(monkeypatch, message)
    with pytest.raises(OwnershipError, match=rf"{message} \(cannot read it: Permission denied"):
        _io.publish_directory(staging, destination, kind="thing")
    assert _io.remove_owned(destination, "thing") is False
    monkeypatch.undo()
    assert (destination / "x").read_bytes() == b"1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_unreadable_subfolder_in_an_otherwise_empty_folder_is_not_empty(tmp_path, monkeypatch):
    destination = tmp_path / "out"
    (destination / "mine").mkdir(parents=True)
    deny(monkeypatch, "mine")
    with pytest.raises(OwnershipError, match="did not write"):
        _io.check_replaceable(destination, "thing")


# ------------------------------------------------------------------------------------------
# cleanup by proof, not by name
# ------------------------------------------------------------------------------------------


def abandoned_staging(destination: Path) -> Path:
    """A staging folder whose process exited without publishing it (as if killed): made in a
    forked child that exits at once, so the operating system releases its lock."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover  (the child)
        try:
            os.write(write, os.fsencode(_io.staging_directory(destination)))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        path = Path(os.fsdecode(pipe.read()))
    os.waitpid(child, 0)
    return path


@pytest.mark.skipif(_io.fcntl is None, reason="flock")
def test_remove_staging_deletes_only_marked_folders_whose_writer_is_gone(tmp_path):
    destination = tmp_path / "out"
    dead = abandoned_staging(destination)
    (dead / "half.parquet").write_bytes(b"half")
    live = _io.staging_directory(destination)  # this process still writes it
    users = tmp_path / ".out.staging-mybackup"  # a user's folder of a similar name
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    unmarked = tmp_path / ".out.staging-0123456789ab"  # the exact name, no marker
    unmarked.mkdir()
    (unmarked / "keep.txt").write_text("mine")
    forged = tmp_path / ".out.staging-ba9876543210"  # a marker that is not ours
    forged.mkdir()
    (forged / _io.STAGING_MARKER).write_text('{"owner": "someone"}')
    other = abandoned_staging(tmp_path / "other")  # another destination's
    assert _io.remove_staging(destination) == [dead]
    assert not dead.exists() and live.is_dir() and other.is_dir()
    assert (users / "keep.txt").read_text() == (unmarked / "keep.txt").read_text() == "mine"
    assert forged.is_dir()
    _io.discard_staging(live)
    assert not live.exists()


def test_the_marker_is_not_published_and_not_listed(tmp_path):
    destination = tmp_path / "out"
    staging = staged(destination, {"x": b"1"})
    assert (staging / _io.STAGING_MARKER).is_file()
    assert sorted(_io.read_manifest(staging)["files"]) == ["x"]
    _io.publish_directory(staging, destination, kind="thing")
    assert sorted(p.name for p in destination.iterdir()) == ["manifest.json", "x"]
    assert _io.remove_staging(destination) == []


def test_temporary_files_are_only_those_write_atomic_names(tmp_path):
    names = [
        ".checkpoint-0.safetensors.0123456789ab.tmp",  # ours
        ".checkpoint-1.safetensors.notes.tmp",  # a user's
        ".checkpoint-1.safetensors.0123456789AB.tmp",  # not our digits
        ".checkpoint-x.safetensors.0123456789ab.tmp",  # not a checkpoint name
        "checkpoint-0.safetensors.0123456789ab.tmp",  # not hidden
    ]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / ".checkpoint-2.safetensors.0123456789ab.tmp").mkdir()  # a folder
    (tmp_path / ".checkpoint-3.safetensors.0123456789ab.tmp").symlink_to(tmp_path / names[1])
    found = _io.temporary_files(tmp_path, r"checkpoint-\d+\.safetensors")
    assert [p.name for p in found] == [names[0]]
    given: list[str] = []
    _io.write_atomic(tmp_path / "a.bin", lambda tmp: given.append(tmp.name) or tmp.write_text("1"))
    (tmp_path / given[0]).write_bytes(b"")  # as a killed writer leaves it
    assert [p.name for p in _io.temporary_files(tmp_path, r"a\.bin")] == given


# ------------------------------------------------------------------------------------------
# arguments and locks
# ------------------------------------------------------------------------------------------


class BytesPath:
    def __fspath__(self) -> bytes:
        return b"m"


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (None, r"must be a path: a str or os.PathLike .*got None \(a NoneType\)"),
        (123, r"got 123 \(a int\)"),
        (b"m", r"got b'm' \(a bytes\)"),
        (BytesPath(), r"\(a BytesPath\)"),
        (["m"], r"\(a list\)"),
        ("", "is an empty path"),
        ("a\x00b", "contains a NUL character"),
    ],
)
def test_as_path_refuses_what_is_not_a_path_naming_the_argument(value, match):
    from forecaster.exceptions import DataValidationError

    with pytest.raises(DataValidationError, match=rf"^dest\b.*{match}"):
        _io.as_path(value, "dest")


@pytest.mark.parametrize("kind", ["link", "dangling-link", "folder"])
def test_a_lock_path_that_cannot_be_a_lock_is_our_error(tmp_path, kind):
    lock = tmp_path / ".job.lock"
    if kind == "link":
        (tmp_path / "target").write_text("x")
        lock.symlink_to(tmp_path / "target")
    elif kind == "dangling-link":
        lock.symlink_to(tmp_path / "nowhere")
    else:
        lock.mkdir()
    with (
        pytest.raises(ForecasterError, match="Cannot take the lock") as info,
        _io.exclusive_lock(lock, what="the job"),
    ):
        pass
    assert str(lock) in str(info.value) and not isinstance(info.value, ConcurrentRunError)
    if kind == "link":
        assert (tmp_path / "target").read_text() == "x"


def _held_by_a_thread(lock: Path, seconds: float) -> threading.Thread:
    """A thread that holds ``lock`` for ``seconds`` (started; the lock held when this returns)."""
    taken = threading.Event()

    def hold() -> None:
        with _io.exclusive_lock(lock):
            taken.set()
            time.sleep(seconds)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(10)
    return holder


def test_a_wait_for_the_lock_is_logged_with_its_holder_and_how_long(tmp_path):
    """A run queued with --wait logged nothing while it waited."""
    lock = tmp_path / ".job.lock"
    holder = _held_by_a_thread(lock, 0.5)
    lines: list[str] = []
    with _io.exclusive_lock(lock, timeout=10, what="the job", log=lines.append):
        pass
    holder.join()
    assert len(lines) == 2, lines
    assert lines[0].startswith("waiting") and str(lock) in lines[0] and "the job" in lines[0]
    if os.path.exists("/proc/locks"):  # Linux: the holder's process is named
        assert f"process {os.getpid()} on this machine" in lines[0]
    assert lines[1].startswith("waited") and " s for the lock" in lines[1]


def test_no_wait_for_a_free_lock_is_logged(tmp_path):
    lines: list[str] = []
    with _io.exclusive_lock(tmp_path / ".job.lock", timeout=10, log=lines.append):
        pass
    assert lines == []


def test_an_interrupt_while_waiting_for_the_lock_says_it_did_nothing(tmp_path):
    """An interrupt while queued said "run the command again to finish it (... --resume
    continues an interrupted fit ...)" for a run that never started: its note says it was
    waiting and did nothing."""
    import _thread

    lock = tmp_path / ".job.lock"
    holder = _held_by_a_thread(lock, 1.5)
    threading.Timer(0.3, _thread.interrupt_main).start()
    with pytest.raises(KeyboardInterrupt) as caught, _io.exclusive_lock(lock, timeout=10):
        pass
    holder.join()
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert f"waiting for another process's lock {lock}" in notes
    assert "did nothing" in notes and "nothing to resume" in notes


@pytest.mark.parametrize(
    ("name", "says"),
    [("EROFS", "is on a read-only file system"), ("EACCES", "is not writable by this user")],
)
def test_a_lock_in_a_folder_that_cannot_be_written_names_the_cause(
    tmp_path, monkeypatch, name, says
):
    """The lock error of a read-only folder advised removing what is at the lock's path."""
    import errno

    import filelock

    number = getattr(errno, name)

    def refused(*args, **kwargs):
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(filelock.FileLock, "acquire", refused)
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    with pytest.raises(ForecasterError) as caught, _io.exclusive_lock(tmp_path / ".job.lock"):
        pass
    message = str(caught.value)
    assert f"the folder {tmp_path} {says}" in message and "remove what is at" not in message


def test_a_shared_lock_waits_for_the_writer_and_needs_no_write_access(tmp_path):
    """The reader's lock of a rerun in a read-only folder: refused (or queued) while a writer
    holds the exclusive lock, taken on the lock file opened read-only, and nothing to wait
    for where there is no lock file."""
    lock = tmp_path / ".job.lock"
    with _io.shared_lock(lock):  # no lock file: no writer ever took it
        pass
    assert not lock.exists()
    holder = _held_by_a_thread(lock, 1.0)
    with pytest.raises(ConcurrentRunError, match="Another process"), _io.shared_lock(lock):
        pass
    lines: list[str] = []
    with _io.shared_lock(lock, timeout=10, log=lines.append):
        pass
    holder.join()
    assert [line.split()[0] for line in lines] == ["waiting", "waited"]
    os.chmod(lock, 0o444)  # opened read-only
    with _io.shared_lock(lock), _io.shared_lock(lock):  # readers share it
        pass

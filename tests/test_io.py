"""The shared filesystem primitives: atomic writes, manifests, publication, bounded reads, locks."""

from __future__ import annotations

import os
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
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


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

"""Manifests: the package's proof of ownership and integrity of the folders it writes.

:func:`write_manifest` / :func:`read_manifest`: a folder the package creates holds a
``manifest.json`` naming its kind (``"model"``, ``"run"``, ...) and the sha256 of every file in
it (and of the manifest's own entries, its ``digest``). A folder is replaced
(:func:`check_replaceable`) or deleted (:func:`remove_owned`) only when its manifest says the
package wrote it and no file in it was added or changed since. Ownership checks read every
entry: one that cannot be listed or read (a folder of mode 000) is a reason to refuse, never
skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from forecaster._hashing import json_digest, sha256_file
from forecaster._io.atomic import write_bytes_atomic
from forecaster._io.paths import OWNER, STAGING_MARKER
from forecaster._io.reading import PinnedDirectory, load_json_bounded, read_file_bounded
from forecaster._version import __version__
from forecaster.exceptions import ForecasterError, OwnershipError

__all__ = [
    "MANIFEST",
    "MANIFEST_LIMIT",
    "check_pinned",
    "check_replaceable",
    "manifest_bytes",
    "manifest_digest",
    "owning_folder",
    "read_manifest",
    "remove_owned",
    "write_manifest",
]

MANIFEST = "manifest.json"
"""Name of the ownership and integrity manifest in every folder the package creates."""


MANIFEST_LIMIT = 16 * 2**20
"""Largest manifest read (bytes)."""


def _entries(folder: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every entry below ``folder`` as (relative posix path, entry), links not followed."""
    stack = [(folder, "")]
    while stack:
        current, prefix = stack.pop()
        with os.scandir(current) as listing:
            for entry in listing:
                relative = f"{prefix}{entry.name}"
                yield relative, entry
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), f"{relative}/"))


def write_manifest(
    folder: str | os.PathLike[str], kind: str, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``folder/manifest.json``: the kind of folder, ``details`` (JSON values) and the
    sha256 of every file below it; return the manifest.

    Call it last, on a folder the package has just written (a staging folder).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.txt").write_text("hi")
    >>> sorted(write_manifest(folder, "example")["files"])
    ['a.txt']
    """
    folder = Path(folder)
    files: dict[str, str] = {}
    for relative, entry in sorted(_entries(folder), key=lambda item: item[0]):
        if relative in (MANIFEST, STAGING_MARKER) or entry.is_dir(follow_symlinks=False):
            continue  # (the marker of a staging folder is removed when it is published)
        if not entry.is_file(follow_symlinks=False):
            raise ForecasterError(f"{entry.path} is not a regular file; cannot list it.")
        files[relative] = sha256_file(Path(entry.path))
    manifest = {
        "owner": OWNER,
        "kind": kind,
        "package_version": __version__,
        "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "details": dict(details or {}),
        "files": files,
    }
    manifest["digest"] = manifest_digest(manifest)
    write_bytes_atomic(folder / MANIFEST, manifest_bytes(manifest))
    return manifest


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The bytes :func:`write_manifest` writes for ``manifest`` (a reader can compare a
    manifest file with them: any other bytes were edited)."""
    return json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False).encode("utf-8")


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """The sha256 of a manifest's entries other than ``digest`` (canonical JSON), which
    :func:`write_manifest` stores as its ``digest``: an edit of the manifest itself shows."""
    body = {key: value for key, value in manifest.items() if key != "digest"}
    return json_digest(body)


def read_manifest(
    folder: str | os.PathLike[str], *, pinned: PinnedDirectory | None = None
) -> dict[str, Any] | None:
    """The package's manifest in ``folder``, or None when there is none (or it is not ours).

    A manifest that exists but is unreadable, too large or malformed also gives None: such a
    folder is not provably the package's.
    """
    try:
        if pinned is not None:
            data = pinned.read(MANIFEST, MANIFEST_LIMIT, what="manifest")
        else:
            data = read_file_bounded(Path(folder) / MANIFEST, MANIFEST_LIMIT, what="manifest")
        manifest = load_json_bounded(data, source=f"{folder}/{MANIFEST}")
    except (OSError, ForecasterError):
        return None
    if not (
        isinstance(manifest, dict)
        and manifest.get("owner") == OWNER
        and isinstance(manifest.get("kind"), str)
        and isinstance(manifest.get("files"), dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in manifest["files"].items())
        and isinstance(manifest.get("details", {}), dict)
        and manifest.get("digest", manifest_digest(manifest)) == manifest_digest(manifest)
    ):
        return None
    return manifest


def _ownership_problems(pinned: PinnedDirectory, manifest: Mapping[str, Any]) -> list[str]:
    """What in the pinned folder its manifest does not vouch for: files added, changed, not
    regular or unreadable, and sub-folders that hold none of its files (a folder someone
    added, even an empty one, is theirs: replacing the folder would delete it)."""
    listed: dict[str, str] = manifest["files"]
    written = {parent for name in listed for parent in _parents(name)}
    problems = []
    for relative, kind, digest in pinned.walk():
        if relative == MANIFEST or (kind == "dir" and relative in written):
            continue
        if kind == "dir":
            problems.append(f"{relative}/ (a folder forecaster did not write)")
            continue
        if kind == "unreadable":
            problems.append(f"{relative} (cannot read it: {digest})")
        elif kind == "link":
            problems.append(f"{relative} (a link forecaster did not write)")
        elif relative not in listed:
            problems.append(f"{relative} (not written by forecaster)")
        elif kind != "file":
            problems.append(f"{relative} (not a regular file)")
        elif digest != listed[relative]:
            problems.append(f"{relative} (changed since forecaster wrote it)")
    return problems


def _parents(relative: str) -> Iterator[str]:
    """The folders above a relative posix path: ``a/b/c`` -> ``a/b``, ``a``."""
    parts = relative.split("/")[:-1]
    for end in range(len(parts), 0, -1):
        yield "/".join(parts[:end])


def _refusal(destination: Path, kind: str, purpose: str) -> str | None:
    """Why ``destination`` can never be replaced by a ``kind`` folder, or None."""
    if destination.is_symlink():
        return (
            f"Refusing to {purpose} {destination}: it is a link (to {os.readlink(destination)}), "
            "not a folder forecaster wrote. Pass the real folder or a new path."
        )
    if destination.exists() and not destination.is_dir():
        return (
            f"Refusing to {purpose} {destination}: it is a file, not a {kind} folder written by "
            "forecaster. Choose a new path, or move the file away."
        )
    return None


def check_pinned(
    pinned: PinnedDirectory,
    kind: str,
    same: Callable[[Mapping[str, Any]], str | None] | None,
    purpose: str,
    adopt: Callable[[Path], bool] | None = None,
    shown: Path | None = None,
) -> dict[str, Any] | None:
    """The manifest of the pinned folder when it may be replaced (None: empty or adopted), else
    ``OwnershipError``. Messages name ``shown`` (default: the folder's path)."""
    destination = shown if shown is not None else pinned.path
    if not any(True for _ in pinned.walk(hash_files=False)):
        return None  # an empty folder holds nothing to lose
    manifest = read_manifest(pinned.path, pinned=pinned)
    if manifest is None and adopt is not None and adopt(pinned.path):
        return None
    if manifest is None:
        raise OwnershipError(
            f"Refusing to {purpose} {destination}: it is a folder forecaster did not write (it "
            f"has no forecaster {MANIFEST}), and replacing it would delete what it holds. "
            "Choose a new or empty folder."
        )
    if manifest["kind"] != kind:
        raise OwnershipError(
            f"Refusing to {purpose} {destination}: it holds a forecaster {manifest['kind']}, "
            f"not a {kind}. Choose another folder."
        )
    reason = same(manifest) if same is not None else None
    if reason:
        raise OwnershipError(f"Refusing to {purpose} {destination}: {reason}")
    problems = _ownership_problems(pinned, manifest)
    if problems:
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise OwnershipError(
            f"Refusing to {purpose} {destination}: it holds what forecaster did not write there "
            f"or cannot check: {', '.join(problems[:5])}{more}. Move those out (or delete the "
            "folder yourself), then run again."
        )
    return manifest


def check_replaceable(
    destination: str | os.PathLike[str],
    kind: str,
    *,
    same: Callable[[Mapping[str, Any]], str | None] | None = None,
    purpose: str = "replace",
    adopt: Callable[[Path], bool] | None = None,
) -> dict[str, Any] | None:
    """Raise :class:`~forecaster.exceptions.OwnershipError` unless ``destination`` may be
    replaced by a new folder of ``kind``; return its manifest (None when it is free).

    It may when it does not exist, is an empty folder, or holds a folder of the same kind that
    the package wrote (its manifest) in which no file was added or changed since, nor a folder
    that holds none of its files (an empty folder a user added is theirs). ``same`` can
    refuse further (e.g. the outputs of another pipeline): it returns a reason, or None.
    ``adopt(folder)`` can vouch for a folder without a manifest (one an older version of the
    package wrote before it wrote manifests). The folder is checked as one version: when
    another process replaces it meanwhile, the check runs again on the new one.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "notes.txt").write_text("mine")
    >>> check_replaceable(folder, "model")
    Traceback (most recent call last):
    ...
    forecaster.exceptions.OwnershipError: ...
    """
    destination = Path(destination)
    for _ in range(16):
        refusal = _refusal(destination, kind, purpose)
        if refusal:
            raise OwnershipError(refusal)
        try:
            with PinnedDirectory(destination, error=OwnershipError) as pinned:
                try:
                    return check_pinned(pinned, kind, same, purpose, adopt)
                except (OwnershipError, OSError):
                    if not pinned.replaced():
                        raise
        except FileNotFoundError:
            if not destination.exists():
                return None
        except NotADirectoryError:
            if not destination.exists():
                return None  # a part of its path is a file: there is nothing to replace
            continue  # replaced by a file meanwhile: _refusal says so
    raise OwnershipError(
        f"Refusing to {purpose} {destination}: other processes kept replacing it while it was "
        "checked. Write to separate destinations."
    )


def remove_owned(folder: str | os.PathLike[str], kind: str) -> bool:
    """Delete ``folder`` when :func:`check_replaceable` proves it the package's ``kind``
    folder; return whether it was deleted. A folder that is not provably ours is left alone.
    """
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return False
    try:
        check_replaceable(folder, kind, purpose="delete")
    except OwnershipError:
        return False
    shutil.rmtree(folder)
    return True


def owning_folder(
    path: str | os.PathLike[str], *, stop: str | os.PathLike[str] | None = None
) -> tuple[Path, str] | None:
    """The nearest folder above ``path`` (not ``path`` itself; up to ``stop`` included, else
    up to the file system's root) that the package wrote, with its kind; None when there is
    none. Writing into such a folder would add a file its manifest does not list.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_manifest(folder, "run")
    >>> owning_folder(folder / "sub" / "file.txt") == (folder, "run")
    True
    """
    path = Path(os.path.normpath(Path(path).absolute()))
    limit = None if stop is None else Path(os.path.normpath(Path(stop).absolute()))
    for folder in path.parents:
        if limit is not None and not folder.is_relative_to(limit):
            break
        if (folder / MANIFEST).is_file():
            manifest = read_manifest(folder)
            if manifest is not None:
                return folder, manifest["kind"]
    return None

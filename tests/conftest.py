"""Shared test settings."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny networks run faster on one thread, and the 2-core CI machine is not oversubscribed
    by torch's intra-op threads fighting subprocesses started by other tests."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tree_digest(root: Path, *, ignore: tuple[str, ...] = ()) -> dict[str, str]:
    """Every entry below ``root`` (links not followed) with a digest of what it is: the sha256
    of a file, the target of a link, ``dir`` for a folder. Paths starting with one of
    ``ignore`` (relative, posix) are left out."""
    digest: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if any(relative == p or relative.startswith(p.rstrip("/") + "/") for p in ignore):
            continue
        if path.is_symlink():
            digest[relative] = f"link:{os.readlink(path)}"
        elif path.is_dir():
            digest[relative] = "dir"
        elif path.is_file():
            digest[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest[relative] = "special"
    return digest


class TreeGuard:
    """A snapshot of a folder tree; :meth:`changes` lists what differs from it now, outside
    the paths a run may write (see the ``tree_guard`` fixture)."""

    def __init__(self, root: Path, allowed: tuple[str, ...]) -> None:
        self.root, self.allowed = root, allowed
        self.before = tree_digest(root, ignore=allowed)

    def changes(self, *also_allowed: str) -> list[str]:
        after = tree_digest(self.root, ignore=(*self.allowed, *also_allowed))
        changed = []
        for key in sorted(set(self.before) | set(after)):
            if key not in self.before:
                changed.append(f"{key}: added")
            elif key not in after:
                changed.append(f"{key}: removed")
            elif self.before[key] != after[key]:
                changed.append(f"{key}: changed")
        return changed

    def assert_unchanged(self, *also_allowed: str) -> None:
        changed = self.changes(*also_allowed)
        assert not changed, f"files outside the run's own changed under {self.root}: {changed}"


@pytest.fixture
def tree_guard():
    """``tree_guard(root, allowed=("outputs/x",))`` snapshots ``root`` now; call
    ``.assert_unchanged()`` after the action under test: nothing outside ``allowed`` (and
    ``mlflow/``, the tracking store) may have been added, removed or changed."""

    def snapshot(root: Path, allowed: tuple[str, ...] = ()) -> TreeGuard:
        return TreeGuard(Path(root), (*allowed, "mlflow", ".pytest_cache", "__pycache__"))

    return snapshot

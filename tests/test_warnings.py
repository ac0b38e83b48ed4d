"""``forecaster._warnings.catching_warnings``: the package's blocks that change the warning
filters never overlap in two threads, so they leave the process's filters as they were."""

from __future__ import annotations

import ast
import os
import signal
import threading
import time
import warnings
from pathlib import Path

import pytest

import forecaster
from forecaster._warnings import catching_warnings

PACKAGE = Path(forecaster.__file__).parent

OWN_BLOCKS = {"_warnings.py", "jobs/cli.py"}
"""The modules that may call ``warnings.catch_warnings`` themselves: the helper, and the
command line's block around a whole command (it restores ``showwarning`` and the filters the
command leaves; holding the helper's lock for a whole command would stall other threads)."""


def test_blocks_of_two_threads_leave_the_warning_filters_as_they_were():
    """Two threads each open many blocks that add an ``"ignore"`` filter: with plain
    ``catch_warnings`` the blocks overlap and restore each other's lists out of order, which
    can leave ``("ignore", None, Warning, None, 0)`` first; serialised, they cannot."""
    before = list(warnings.filters)
    inside: list[bool] = []

    def blocks() -> None:
        for _ in range(100):
            with catching_warnings():
                warnings.simplefilter("ignore")
                time.sleep(0.001)  # another library's call: the other thread runs meanwhile
                inside.append(warnings.filters[0][:3] == ("ignore", None, Warning))

    for _ in range(3):
        threads = [threading.Thread(target=blocks) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert warnings.filters == before
    assert all(inside) and len(inside) == 600  # each block saw its own filter throughout


def test_a_block_records_and_nests():
    with catching_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with catching_warnings():  # the same thread: no deadlock
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.warn("dropped", DeprecationWarning, stacklevel=1)
        warnings.warn("kept", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["kept"]


def test_no_module_of_the_package_opens_catch_warnings_itself():
    """Every other block of the package goes through ``catching_warnings`` (or needs no
    filter: ``np.errstate``, ``silenced``)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "catch_warnings"
                and name not in OWN_BLOCKS
            ):
                found.append(f"{name}:{node.lineno}")
    assert found == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_process_forked_while_another_thread_holds_a_block_can_open_one():
    """A child forked while another thread was inside a catching_warnings block inherited
    the held lock with no thread to release it: its first block waited forever."""
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with catching_warnings():
            inside.set()
            leave.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(10)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads warns
            pid = os.fork()
        if pid == 0:  # the child: one block, then exit at once (code 0 if it got through)
            code = 1
            try:
                with catching_warnings():
                    code = 0
            finally:
                os._exit(code)
        deadline = time.monotonic() + 20
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if done[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        assert done[0] == pid and os.waitstatus_to_exitcode(done[1]) == 0, "the child hung"
    finally:
        leave.set()
        holder.join()

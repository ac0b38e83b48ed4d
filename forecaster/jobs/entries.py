"""What is at a path a command writes or locks, checked one way for every such path.

:func:`existing_file` decides, for the Parquet file of ``predict`` or ``backtest``
(:func:`forecaster.jobs.parquet_files.check_parquet_destination`), its summary
(:func:`forecaster.jobs.summaries.check_summary_file`) and the lock file of a run, a fit or a
tuning (:func:`forecaster.jobs.output_locks.output_lock`): nothing there, a regular file the
caller then checks further, or an entry refused and left as it is (a link, never followed,
a folder, a special file, one that cannot be inspected).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from forecaster.exceptions import OwnershipError

__all__ = ["existing_file"]


def existing_file(path: Path, what: str, fix: str, *, action: str = "replace") -> bool:
    """Whether a regular file is at ``path`` (a link is not followed), which a command may
    ``action`` (replace, use) once it checked the file is ``what`` it writes (a Parquet file
    of the command line, a summary, a lock file). False: nothing is there (nor, in a race, a
    folder above it: the write reports that). A link, a folder, a special file or an entry
    that cannot be inspected is refused (``OwnershipError`` with ``fix``) and left as it is.

    Parameters
    ----------
    path : Path
        The path to inspect.
    what : str
        What a file there must be, in words (``"a summary"``), for the refusal.
    fix : str
        What the user can do, ending the refusal.
    action : str, default "replace"
        What the command would do with the file, in the refusal ("Refusing to <action> ...").

    Returns
    -------
    bool
        True: a regular file is there; False: nothing is.

    Raises
    ------
    OwnershipError
        When ``path`` holds anything else, or cannot be inspected.
    """
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise OwnershipError(
            f"Refusing to {action} {path}: cannot inspect it ({exc}). {fix}"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a link" if stat.S_ISLNK(info.st_mode) else "a folder or special file"
        raise OwnershipError(f"Refusing to {action} {path}: it is {kind}, not {what}. {fix}")
    return True

"""The backfill rule: outputs of a later as-of are replaced by those of an earlier one
(a backfill into a folder or file that every as-of shares) only with ``--force``.

:func:`later_as_of` is the one rule, :func:`check_not_later` applies it to a run's output
folder (an ``output.dir`` without ``{as_of}``) and
:func:`forecaster.jobs.parquet_files.check_not_later_file` to the Parquet file of
``predict`` or ``backtest``.
"""

from __future__ import annotations

from typing import Any

import forecaster._io as _io
from forecaster.exceptions import OwnershipError
from forecaster.jobs.data import AsOf, is_later
from forecaster.jobs.outputs import Job, legacy_summary
from forecaster.jobs.spec import splits_by_as_of

__all__ = ["check_not_later", "later_as_of"]


def check_not_later(job: Job) -> None:
    """With a ``dir`` template without ``{as_of}`` the folder keeps the latest as-of: outputs
    of a later as-of there are replaced only with ``force`` (``OwnershipError`` otherwise).
    ``{{as_of}}`` in the template is no placeholder but a folder named ``{as_of}``
    (:func:`~forecaster.jobs.spec.splits_by_as_of`)."""
    if splits_by_as_of(job.spec.output.dir) or not job.out_dir.is_dir():
        return
    manifest = _io.read_manifest(job.out_dir)
    if manifest is not None:
        details = manifest["details"]
        other_label, other = details.get("as_of"), details.get("effective_as_of")
    else:
        legacy = legacy_summary(job.out_dir, job.name)
        if legacy is None:
            return
        other_label, other = legacy.as_of, legacy.effective_as_of
    later = later_as_of(other_label, other, job.when, "this run's")
    if later is None:
        return
    literal = " ({{as_of}} is the text '{as_of}')" if "{{as_of}}" in job.spec.output.dir else ""
    raise OwnershipError(
        f"{job.file}: key 'output.dir' ({job.spec.output.dir!r}) has no {{as_of}}{literal}, so "
        f"{job.out_dir} keeps the latest as-of, and it holds the outputs {later}. Pass --force "
        "to replace them with this older as-of, or put {as_of} in output.dir to keep both."
    )


def later_as_of(label: Any, effective: Any, when: AsOf, whose: str) -> str | None:
    """The one rule of a backfill: outputs as of ``label`` (data up to ``effective``) are
    replaced by those of ``when`` only with ``--force`` when theirs is a later as-of, or one
    that cannot be compared with it. Outputs written before effective as-ofs were recorded
    (``effective`` None) are compared by the labels: a label is the local time of the data's
    zone without its offset, which an effective as-of of zoned data carries (so the same
    as-of of zoned or intraday data was "an as-of that cannot be compared"). Returns what
    they are, in words (``"as of ... (data up to ...), a later as-of than <whose> ..."``),
    for the refusal; None when they may be replaced."""
    other = effective or label
    later = is_later(effective, when.effective) if effective else is_later(label, when.label)
    if later is False:
        return None
    reason = "a later as-of than" if later else "an as-of that cannot be compared with"
    return (
        f"as of {label} (data up to {other}), {reason} {whose} {when.label} (data up to "
        f"{when.effective})"
    )

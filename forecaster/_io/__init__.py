"""Filesystem primitives shared by every module that writes or reads files.

One mechanism per job, used by models, checkpoints, pipeline outputs, the CLI and tracking,
one module per job (every name is importable from here, as ``_io.<name>``):

- :mod:`~forecaster._io.atomic`: :func:`write_bytes_atomic` / :func:`write_atomic`: a file is
  written under a temporary name in its folder, flushed to disk and renamed over its
  destination, so a reader sees the old file or the new one, never a part.
- :mod:`~forecaster._io.manifests`: :func:`write_manifest` / :func:`read_manifest`: a folder the
  package creates holds a ``manifest.json`` naming its kind (``"model"``, ``"run"``, ...) and
  the sha256 of every file in it (and of the manifest's own entries, its ``digest``). It is the
  package's proof of ownership: a folder is replaced or deleted only when its manifest says
  the package wrote it and no file in it was added or changed since.
- :mod:`~forecaster._io.publishing`: :func:`publish_directory`: a folder written in a staging
  place is put at its destination in one step: ``rename`` when the destination is free, else
  an atomic exchange (``renameat2(RENAME_EXCHANGE)`` on Linux) after :func:`check_replaceable`
  proved the destination ours. Readers that pin the folder (:class:`PinnedDirectory`) see the
  old or the new version whole. Where the exchange is not available (not Linux), two renames
  are used and a reader may, for a moment, find no folder; :func:`read_consistent` retries
  then.
- :mod:`~forecaster._io.reading`: :func:`read_file_bounded` / :func:`load_json_bounded`:
  untrusted files are read only when they are regular files within a size limit (no FIFOs,
  devices or endless links), JSON only up to a nesting depth;
  :func:`read_safetensors_header`, :class:`PinnedDirectory`, :func:`read_consistent`.
- :mod:`~forecaster._io.paths`: :func:`exclusive_lock`: one writer at a time for a key (a
  pipeline run of one spec and as-of date), on an operating-system lock that dies with its
  process (``filelock``); :func:`as_path`: a path argument is a ``str`` or ``os.PathLike``,
  never empty, without NUL characters; anything else is a
  :class:`~forecaster.exceptions.DataValidationError` naming the argument.
- :mod:`~forecaster._io.renaming`: the platform's atomic renames (``renameat2``).

Time of check and time of use. Checking a destination and then replacing it leaves a moment in
which a user's file can appear. Both replacements close it: :func:`publish_directory` checks the
earlier folder again *after* the exchange (it now sits at the staging path, which no one else
writes) and exchanges back, with an ``OwnershipError``, when anything appeared in it;
:func:`write_atomic` with ``replace_check`` exchanges the files and verifies that the file it
replaced is the one it checked (a new file at a free path is never replaced:
``RENAME_NOREPLACE``). Ownership checks read every entry: one that cannot be listed or read (a
folder of mode 000) is a reason to refuse, never skipped.

Cleanup by proof, not by name. A staging folder holds a marker file (:data:`STAGING_MARKER`)
on which its writer holds an operating-system lock (``flock``) until it publishes or discards
the folder; :func:`remove_staging` deletes only folders of exactly the generated name whose
marker is there and whose lock is free (the writer died). :func:`publish_directory` removes
the marker first, so a writer killed while publishing leaves an unmarked folder (it may hold
the earlier version, with a user's file): hidden, harmless, never deleted.
:func:`temporary_files` lists only files of exactly the names :func:`write_atomic` generates.

Functions are looked up where they are used: a test that replaces one for a call made inside
this package patches the module that calls it (e.g. ``forecaster._io.publishing.exchange``).
"""

from __future__ import annotations

from forecaster._hashing import sha256_bytes
from forecaster._io.atomic import temporary_files, write_atomic, write_bytes_atomic
from forecaster._io.manifests import (
    MANIFEST,
    MANIFEST_LIMIT,
    check_replaceable,
    manifest_bytes,
    manifest_digest,
    owning_folder,
    read_manifest,
    remove_owned,
    write_manifest,
)
from forecaster._io.paths import (
    OWNER,
    STAGING_MARKER,
    as_path,
    exclusive_lock,
    fsync_directory,
    lock_holder,
    shared_lock,
)
from forecaster._io.publishing import (
    Publication,
    discard_staging,
    fcntl,
    publish_directory,
    remove_staging,
    staging_directory,
)
from forecaster._io.reading import (
    JSON_MAX_DEPTH,
    SAFETENSORS_HEADER_LIMIT,
    PinnedDirectory,
    is_memory_sqlite,
    load_json_bounded,
    read_consistent,
    read_file_bounded,
    read_safetensors_header,
    sqlite_file_problem,
    sqlite_url,
)

__all__ = [
    "JSON_MAX_DEPTH",
    "MANIFEST",
    "MANIFEST_LIMIT",
    "OWNER",
    "SAFETENSORS_HEADER_LIMIT",
    "STAGING_MARKER",
    "PinnedDirectory",
    "Publication",
    "as_path",
    "check_replaceable",
    "discard_staging",
    "exclusive_lock",
    "fcntl",
    "fsync_directory",
    "is_memory_sqlite",
    "load_json_bounded",
    "lock_holder",
    "manifest_bytes",
    "manifest_digest",
    "owning_folder",
    "publish_directory",
    "read_consistent",
    "read_file_bounded",
    "read_manifest",
    "read_safetensors_header",
    "remove_owned",
    "remove_staging",
    "sha256_bytes",
    "shared_lock",
    "sqlite_file_problem",
    "sqlite_url",
    "staging_directory",
    "temporary_files",
    "write_atomic",
    "write_bytes_atomic",
    "write_manifest",
]

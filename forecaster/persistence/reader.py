"""Reading a model folder: :func:`load` reads one version of the folder into a
:class:`ModelState` (migrating formats 1 and 2) and asks the registered class to build the
estimator from it (``cls._from_state(state)``)."""

from __future__ import annotations

__all__ = ["load", "saved_provenance"]

import io
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import safetensors.numpy
import safetensors.torch
from safetensors import SafetensorError

import forecaster._io as _io
import forecaster.persistence.migration as migration
from forecaster._hashing import sha256_bytes
from forecaster._polars import collect
from forecaster._version import DISTRIBUTION, __version__
from forecaster.exceptions import ForecasterWarning, ModelFormatError, warn_at_caller
from forecaster.persistence.format import (
    CONFIG,
    CONFIG_LIMIT,
    ENVELOPE,
    ENVELOPE_REQUIRED,
    FORMAT,
    FORMAT_VERSION,
    HEADER_LIMIT,
    ITEM_SIZE,
    KEYS,
    KEYS_BYTES_PER_SERIES,
    KEYS_LIMIT,
    KIND,
    LEGACY_CONFIG_LIMIT,
    MANIFEST,
    MANIFEST_LIMIT,
    MIN_FORMAT_VERSION,
    OPTIONAL_ENTRIES,
    STATE,
    WEIGHTS,
    first_lines,
    is_int,
    listed,
)
from forecaster.persistence.state import (
    ModelState,
    StateError,
    StateLayout,
    TensorSpec,
    registered_model_classes,
)


def load(path: str | os.PathLike[str]) -> Any:
    """Load an estimator written by :func:`~forecaster.persistence.save` (no pickle is
    involved).

    Models of an older format are migrated with a warning (see :mod:`forecaster.persistence`);
    anything else that does not match what this version writes is refused. Every file is read
    from one version of the folder, so a concurrent :func:`~forecaster.persistence.save` to
    the same path is seen whole or not at all.

    Parameters
    ----------
    path : str or os.PathLike
        The folder :func:`~forecaster.persistence.save` wrote.

    Returns
    -------
    estimator
        The fitted estimator, of the class that was saved.

    Raises
    ------
    DataValidationError
        When ``path`` is not a path (a non-empty ``str`` or ``os.PathLike`` without NUL).
    ModelFormatError
        When the path is missing, is not a folder or is not a forecaster model; was written in
        a newer format; has a file that is not a regular file, is too large, or does not match
        the manifest; has a config with missing, unknown, mistyped or inconsistent entries; or
        has weights, state or keys that do not fit the network and config. The message names
        the file, says which format version was found, which this package reads, and what to do.

    Examples
    --------
    >>> import numpy as np, tempfile, forecaster
    >>> X, y = np.random.default_rng(0).normal(size=(32, 8)), np.zeros(32)
    >>> model = forecaster.RNNRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X, y)
    >>> loaded = forecaster.load(model.save(tempfile.mkdtemp() + "/model"))
    >>> bool((loaded.predict(X) == model.predict(X)).all())
    True
    """
    folder = _io.as_path(path, "path")
    try:
        estimator, notice = _io.read_consistent(
            folder, lambda pinned: _Reader(folder, pinned).estimator(), error=ModelFormatError
        )
    except FileNotFoundError as exc:
        missing = "a link to nothing" if folder.is_symlink() else "no such folder"
        raise ModelFormatError(
            f"{folder} is not a saved forecaster model: {missing}. "
            "Pass the folder written by model.save(path)."
        ) from exc
    except NotADirectoryError as exc:
        raise ModelFormatError(
            f"{folder} is not a saved forecaster model: it is a file, not a folder (or a part "
            "of the path is a file). Pass the folder written by model.save(path)."
        ) from exc
    except OSError as exc:
        raise ModelFormatError(
            f"Cannot read {folder}: {exc.strerror or exc}. Pass the folder written by "
            "model.save(path), readable by this user."
        ) from exc
    if notice:
        warn_at_caller(notice, ForecasterWarning)
    return estimator


class _Reader:
    """Reads one version of a model folder (pinned) and builds the estimator it holds."""

    def __init__(self, folder: Path, pinned: _io.PinnedDirectory) -> None:
        self.folder = folder
        self.pinned = pinned
        self.digests: dict[str, str] | None = None
        self.digest_source = MANIFEST
        self.origin = ""
        self.checksums: Any = None
        self.newer: str | None = None  # the package version that saved it, if newer

    # -- files ------------------------------------------------------------------------------
    def refuse(self, problem: str, *, integrity: bool = False) -> ModelFormatError:
        """The error of a folder this version cannot read because of ``problem``; once the
        config's versions are read, with them and what to do: a model saved by a newer
        forecaster (:func:`newer_than_this`), upgrade, unless the problem is one no version
        saves (``integrity``: a file that does not match its checksum, a file the manifest
        lists that is missing, a missing manifest, a manifest and config that disagree)."""
        if not self.origin:
            return ModelFormatError(f"{self.folder}: {problem}.")
        if self.newer is not None and not integrity:
            return ModelFormatError(
                f"{self.folder} was saved by forecaster {self.newer}, newer than this one "
                f"({__version__}), which cannot read it: {problem} {self.origin}. {_UPGRADE}"
            )
        return ModelFormatError(
            f"{self.folder}: {problem} {self.origin}. The model was edited, is corrupt or comes "
            "from a different forecaster version: restore the folder from a backup, refit and "
            "save it again with this version, or load it with the version that wrote it."
        )

    def read(self, name: str, limit: int, what: str) -> bytes:
        """The bytes of the file ``name`` (a regular file of at most ``limit`` bytes), checked
        against its sha256 when the folder lists one."""
        try:
            data = self.pinned.read(name, limit, what=what)
        except FileNotFoundError:
            raise self.refuse(f"{name} (the {what}) is missing", integrity=True) from None
        except ModelFormatError as exc:
            raise self.refuse(str(exc).rstrip(".")) from exc
        if self.digests is not None:
            expected, found = self.digests.get(name), sha256_bytes(data)
            if expected != found:
                raise self.refuse(
                    f"{name} does not match its sha256 in {self.digest_source} ({expected!r} "
                    f"expected, {found!r} found): the file was modified, truncated or swapped "
                    "after it was saved",
                    integrity=True,
                )
        return data

    def manifest(self) -> dict[str, Any] | None:
        """The model's manifest (format 3), checked whole; None when there is none."""
        if not self.pinned.exists(MANIFEST):
            return None
        data = self.read(MANIFEST, MANIFEST_LIMIT, "manifest")
        manifest = _io.load_json_bounded(
            data, source=f"{self.folder}/{MANIFEST}", error=ModelFormatError
        )
        files = manifest.get("files") if isinstance(manifest, dict) else None
        details = manifest.get("details") if isinstance(manifest, dict) else None
        if not (
            isinstance(manifest, dict)
            and manifest.get("owner") == "forecaster"
            and manifest.get("kind") == KIND
            and isinstance(files, dict)
            and all(isinstance(v, str) for v in files.values())
            and isinstance(details, dict)
            and details.get("format") == FORMAT
        ):
            raise self.refuse(f"{MANIFEST} is not the manifest of a forecaster model")
        if manifest.get("digest") != _io.manifest_digest(manifest) or data != _io.manifest_bytes(
            manifest
        ):
            raise self.refuse(
                f"{MANIFEST} was edited after the model was saved (it does not match its own "
                "digest); restore the folder from a backup, or refit and save the model again"
            )
        return manifest

    # -- the estimator ------------------------------------------------------------------------
    def estimator(self) -> tuple[Any, str | None]:
        """The estimator and, for an older format, the warning to give."""
        manifest = self.manifest()
        limit = CONFIG_LIMIT if manifest is not None else LEGACY_CONFIG_LIMIT
        if manifest is not None:
            self.digests = dict(manifest["files"])
        config = _io.load_json_bounded(
            self.read(CONFIG, limit, "model config"),
            source=f"{self.folder}/{CONFIG}",
            error=ModelFormatError,
        )
        version, cls = self.version(config, manifest)
        try:
            state = self.state(cls, config, version)
            layout = cls._state_layout(state)
            notice = self.files(state, layout, manifest)
            state.arrays = self.arrays(state, layout)
            state.weights = self.weights(layout)
            state.keys = self.keys(layout)
            return cls._from_state(state), notice
        except StateError as exc:
            raise self.refuse(str(exc)) from exc

    def version(self, config: Any, manifest: dict[str, Any] | None) -> tuple[int, type]:
        """The format version and the estimator class, after checking that this package reads
        them."""
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise self.refuse(f"it holds no forecaster model ({CONFIG} has another format)")
        version = config.get("format_version")
        listed_version = manifest["details"].get("format_version") if manifest else None
        written = f"forecaster {config.get('package_version', '(unknown version)')}"
        reads = (
            f"this forecaster ({__version__}) reads model formats "
            f"{MIN_FORMAT_VERSION} to {FORMAT_VERSION}"
        )
        if is_int(version) and version > FORMAT_VERSION:
            raise ModelFormatError(
                f"{self.folder} was written with model format {version} by {written}; {reads}. "
                f"{_UPGRADE}"
            )
        if not is_int(version) or version < MIN_FORMAT_VERSION:
            raise ModelFormatError(
                f"{self.folder}: {CONFIG} has an invalid format_version {version!r} (written by "
                f"{written}); {reads}. The config was edited or is corrupt: restore it, or refit "
                "and save the model again."
            )
        self.origin = f"(model format {version}, written by {written}; {reads})"
        self.newer = newer_than_this(config.get("package_version"))
        if manifest is None and version >= 3:
            problem = f"{MANIFEST} is missing (a format-{version} model has one)"
            raise self.refuse(problem, integrity=True)
        if manifest is not None and (listed_version != version or version < 3):
            raise self.refuse(
                f"{MANIFEST} names model format {listed_version!r} but {CONFIG} format {version!r}",
                integrity=True,
            )
        classes = registered_model_classes()
        name = config.get("estimator")
        if not isinstance(name, str) or name not in classes:
            raise self.refuse(
                f"{CONFIG} names an unknown estimator class {name!r}; this version knows "
                f"{', '.join(sorted(classes))}"
            )
        if manifest is not None and manifest["details"].get("estimator") != name:
            raise self.refuse(f"{MANIFEST} and {CONFIG} name different estimators", integrity=True)
        return version, classes[name]

    def state(self, cls: type, config: dict[str, Any], version: int) -> ModelState:
        """The state of the config (parameters and entries, no tensors yet), its entries
        checked and migrated to the current format."""
        entries = frozenset(cls._state_entries())  # type: ignore[attr-defined]
        if version < FORMAT_VERSION:
            entries -= set(migration.ENTRIES_ADDED)
        missing = sorted((ENVELOPE_REQUIRED[version] | entries) - set(config))
        known = migration.LEGACY_ENTRIES.get(version, ENVELOPE_REQUIRED[version] | entries)
        unknown = sorted(set(config) - known - OPTIONAL_ENTRIES)
        if missing or unknown:
            detail = listed(missing=missing, unknown=unknown)
            raise self.refuse(f"{CONFIG} does not have the entries this version expects ({detail})")
        self.checksums = config.get("checksums")
        params = migration.params(config["params"], cls().get_params())
        rest = {k: v for k, v in config.items() if k not in ENVELOPE and k != "checksums"}
        if version < FORMAT_VERSION:
            rest = migration.entries(rest, cls._state_entries())  # type: ignore[attr-defined]
        return ModelState(
            estimator=config["estimator"],
            params=params,
            config=migration.network(rest),
            format_version=version,
            package_version=config.get("package_version"),
        )

    def files(
        self, state: ModelState, layout: StateLayout, manifest: dict[str, Any] | None
    ) -> str | None:
        """Check which files the folder vouches for; the warning an older format gets."""
        expected = {CONFIG, WEIGHTS} | ({KEYS} if layout.keys_rows is not None else set())
        if manifest is not None:
            listed_files, expected = set(manifest["files"]), expected | {STATE}
            if listed_files != expected:
                detail = listed(
                    missing=sorted(expected - listed_files),
                    unknown=sorted(listed_files - expected),
                )
                raise self.refuse(
                    f"{MANIFEST} does not list the files of a {state.estimator} ({detail})"
                )
            return None
        package = state.package_version or "?"
        if state.format_version == 1:
            return (
                f"{self.folder} was saved in model format 1 (forecaster {package}), which has no "
                "checksums: its files are loaded without an integrity check. Save it again to "
                f"upgrade it to format {FORMAT_VERSION}."
            )
        checksums = self.checksums
        if not isinstance(checksums, dict) or set(checksums) != expected - {CONFIG}:
            raise self.refuse(f"the checksums in {CONFIG} are not a mapping of file name to sha256")
        self.digests, self.digest_source = dict(checksums), CONFIG
        return (
            f"{self.folder} was saved in model format 2 (forecaster {package}): its weights and "
            f"keys are checked, but {CONFIG} (scaler state, frequency, schema, calendar) is not "
            "integrity-checked. Save the model again to upgrade it to format "
            f"{FORMAT_VERSION}, which covers every file."
        )

    def arrays(self, state: ModelState, layout: StateLayout) -> dict[str, np.ndarray]:
        """The arrays fitted beside the network (from ``state.safetensors``, or the JSON of
        formats 1 and 2), with the shapes the config and network imply."""
        if state.format_version < 3:
            arrays, state.config = migration.arrays(state.config, layout.arrays)
            return arrays
        data = self.read(STATE, _safetensors_limit(layout.arrays), "fitted state")
        self.check_tensors(data, STATE, layout.arrays, "the state the config describes")
        try:
            return dict(safetensors.numpy.load(data))
        except (SafetensorError, ValueError) as exc:
            raise self.refuse(f"{STATE} cannot be read ({exc})") from exc

    def weights(self, layout: StateLayout) -> dict[str, Any]:
        """The network's tensors, exactly those the network configuration describes."""
        data = self.read(WEIGHTS, _safetensors_limit(layout.weights), "weights")
        self.check_tensors(data, WEIGHTS, layout.weights, f"the network configuration in {CONFIG}")
        try:
            return safetensors.torch.load(data)
        except (SafetensorError, ValueError) as exc:
            raise self.refuse(f"the weights in {WEIGHTS} cannot be read ({exc})") from exc

    def keys(self, layout: StateLayout) -> pl.DataFrame | None:
        """The series keys, as many rows as the state has series (None without a keys file)."""
        n_series = layout.keys_rows
        if n_series is None:
            return None
        data = self.read(KEYS, KEYS_LIMIT + KEYS_BYTES_PER_SERIES * n_series, "series keys")
        try:
            rows = collect(pl.scan_parquet(io.BytesIO(data)).select(pl.len())).item()
            if rows == n_series:
                return pl.read_parquet(io.BytesIO(data))
        except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
            raise self.refuse(f"{KEYS} cannot be read ({first_lines(exc, 1)})") from exc
        raise self.refuse(
            f"keys and scaler state disagree: {KEYS} has {rows} series, the scaler {n_series}"
        )

    def check_tensors(
        self, data: bytes, name: str, expected: dict[str, TensorSpec], what: str
    ) -> None:
        """The safetensors header of ``data`` is sane and lists exactly ``expected``."""
        header, _ = _io.read_safetensors_header(
            data, source=f"{self.folder}/{name}", error=ModelFormatError, max_header=HEADER_LIMIT
        )
        found = {key: (entry["dtype"], entry["shape"]) for key, entry in header.items()}
        missing = sorted(set(expected) - set(found))
        unknown = sorted(set(found) - set(expected))
        differ = [
            f"{key} is {found[key][0]} {found[key][1]}, expected {expected[key][0]} "
            f"{expected[key][1]}"
            for key in sorted(set(found) & set(expected))
            if found[key] != expected[key]
        ]
        if missing or unknown or differ:
            detail = listed(**{"missing tensors": missing[:5], "unexpected tensors": unknown[:5]})
            detail = "; ".join(part for part in (detail, "; ".join(differ[:5])) if part)
            if name == WEIGHTS:
                raise self.refuse(
                    f"the weights in {WEIGHTS} do not match the network configuration in "
                    f"{CONFIG} ({detail})"
                )
            raise self.refuse(f"{name} does not hold {what} ({detail})")


_UPGRADE = (
    "Upgrade forecaster to load it, from a newer wheel or a clone (`pip install --upgrade <the "
    f"newer forecaster_rnn wheel, or a clone's folder>`; {DISTRIBUTION} is not on the package "
    "index), or refit and save the model with this version."
)
"""What to do with a model saved by a newer forecaster (a newer format, or entries this
version does not know)."""


def newer_than_this(version: Any) -> str | None:
    """``version`` (a saved config's ``package_version``) where its release numbers are above
    this package's (``"0.2.0"``, ``"0.1.1.dev3"`` against 0.1.0), else None (the same, older,
    or not a version).

    Examples
    --------
    >>> newer_than_this("99.0.0"), newer_than_this("0.0.9"), newer_than_this(None)
    ('99.0.0', None, None)
    """
    if not isinstance(version, str):
        return None
    saved, own = _release(version), _release(__version__)
    return version if saved is not None and own is not None and saved > own else None


def _release(version: str) -> tuple[int, ...] | None:
    """The release numbers that a version starts with (``"0.2.0rc1"``: ``(0, 2, 0)``)."""
    found = re.match(r"v?(\d+(?:\.\d+)*)", version.strip())
    if found is None:
        return None
    numbers = tuple(int(n) for n in found.group(1).split("."))
    return numbers + (0,) * (3 - len(numbers)) if len(numbers) < 3 else numbers


def saved_provenance(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``provenance`` recorded when the model in ``path`` was saved
    (:func:`~forecaster.persistence.save`), or None: none recorded, a model saved before
    provenance existed, or no model forecaster saved there (its manifest unreadable)."""
    manifest = _io.read_manifest(_io.as_path(path, "path"))
    if manifest is None or manifest.get("kind") != KIND:
        return None
    value = manifest["details"].get("provenance")
    return value if isinstance(value, dict) else None


def _safetensors_limit(expected: dict[str, TensorSpec]) -> int:
    """Largest size of a safetensors file holding exactly ``expected``."""
    data = sum(ITEM_SIZE.get(dtype, 8) * math.prod(shape) for dtype, shape in expected.values())
    return 8 + HEADER_LIMIT + data

"""The wheel of the running forecaster, shipped inside every logged model so that
``mlflow models serve`` can install the package without an index that has it.

:func:`package_wheel` finds it, in this order:

1. ``$FORECASTER_WHEEL`` (:data:`WHEEL_ENV`), the path of a wheel you built yourself
   (``python -m build --wheel``); it must hold this version of forecaster.
2. A source tree (a clone, an editable install): the package folder's parent holds a
   ``pyproject.toml`` of the project ``forecaster-rnn`` (the distribution's name; the import
   name is ``forecaster``). Its top-level files and the package folder
   are copied to a temporary folder and built there with the build backend that
   ``pyproject.toml`` names (setuptools), without network access and without touching the
   tree.
3. An install from a wheel: the installed files listed in the distribution's ``RECORD`` are
   packed back into a wheel (a pure-Python package: nothing to compile).

Built and packed wheels are cached in :func:`wheel_cache_dir`, keyed by a digest of the files
they are made of, so repeated fits of the same code reuse one wheel (only the
:data:`CACHE_KEEP` most recently used are kept). Their names carry a build tag of that digest
(``forecaster_rnn-0.1.0-1<12 hex digits>-py3-none-any.whl``): MLflow reuses a fresh
environment for every model whose requirements read the same, so models of different code must
name different wheels. Every wheel is checked before use: a zip archive named
``forecaster_rnn-<version>-<tags>.whl`` holding this version's
``forecaster/tracking/pyfunc.py`` (the loader module of the logged models) and its metadata.

Examples
--------
>>> wheel = package_wheel()
>>> wheel.name.startswith("forecaster_rnn-0.1.0-1"), wheel.name.endswith("-py3-none-any.whl")
(True, True)
>>> check_wheel(wheel) == wheel
True
"""

from __future__ import annotations

import base64
import csv
import importlib.metadata
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from filelock import FileLock, Timeout

from forecaster._hashing import sha256_hasher
from forecaster._io.atomic import write_atomic
from forecaster._io.manifests import check_replaceable, write_manifest
from forecaster._version import DISTRIBUTION, __version__
from forecaster.exceptions import ForecasterError, OwnershipError

__all__ = [
    "BUILD_TIMEOUT",
    "CACHE_ENV",
    "CACHE_KEEP",
    "WHEEL_ENV",
    "WheelError",
    "check_wheel",
    "package_wheel",
    "wheel_cache_dir",
]


WHEEL_ENV = "FORECASTER_WHEEL"
"""Environment variable: the path of a forecaster wheel to ship with logged models."""


CACHE_ENV = "FORECASTER_WHEEL_CACHE"
"""Environment variable: the folder of the wheel cache (see :func:`wheel_cache_dir`)."""


CACHE_KEEP = 5
"""Wheels kept in the cache (the most recently used)."""


BUILD_TIMEOUT = 300.0
"""Seconds a wheel build (or the wait for another process's build) may take at most."""


PACKAGE = "forecaster"  # the import name; the distribution's is DISTRIBUTION
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../forecaster
_LOADER_FILE = f"{PACKAGE}/tracking/pyfunc.py"
_WHEEL_PREFIX = DISTRIBUTION.replace("-", "_")  # the name in wheel and .dist-info file names
_TAGS = r"-(?P<version>[^-]+)-(?:\d[^-]*-)?[^-]+-[^-]+-[^-]+\.whl$"
_WHEEL_NAME = re.compile(rf"^{_WHEEL_PREFIX}{_TAGS}")
# the wheels the cache held when the distribution was named like the package (pruned as its own)
_FORMER_WHEEL_NAME = re.compile(rf"^{PACKAGE}{_TAGS}")
_SKIPPED_DIRS = {"__pycache__"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_HOW_TO_SET = (
    f"build a wheel yourself (`python -m build --wheel` in the repository) and set "
    f"{WHEEL_ENV}=/path/to/{_WHEEL_PREFIX}-{__version__}-py3-none-any.whl"
)


class WheelError(ForecasterError):
    """The package's wheel could not be found, built or checked (the message says why and how
    to fix it)."""


def package_wheel() -> Path:
    """The wheel of the running forecaster (see the module): ``$FORECASTER_WHEEL``, else one
    built from the source tree, else one packed from the installed files; cached.

    Returns
    -------
    pathlib.Path
        A checked wheel file (see :func:`check_wheel`).

    Raises
    ------
    WheelError
        ``$FORECASTER_WHEEL`` is not a wheel of this version, the build failed, or forecaster
        is installed in a way that gives neither a source tree nor an installed file list.
    """
    override = os.environ.get(WHEEL_ENV, "").strip()
    if override:
        return check_wheel(Path(override).expanduser(), what=f"{WHEEL_ENV}={override!r}")
    root = _PACKAGE_DIR.parent
    if _is_source_tree(root):
        files = _source_files(root)
        return _cached(files, lambda out: _build(root, files, out), what=f"the source tree {root}")
    installed = _installed_files()
    if installed is not None:
        dist_info, files = installed
        return _cached(
            files, lambda out: _repack(dist_info, files, out), what="the installed package"
        )
    raise WheelError(
        f"Cannot make a wheel of forecaster {__version__} loaded from {_PACKAGE_DIR}: it is "
        f"neither a source tree (no pyproject.toml of {DISTRIBUTION!r} in {root}) nor an installed "
        f"distribution with a file list (RECORD). To ship the package with logged models, "
        f"{_HOW_TO_SET}."
    )


def check_wheel(path: Path, *, what: str = "the wheel") -> Path:
    """``path`` if it is a wheel of this version of forecaster, else a :class:`WheelError`
    saying what is wrong.

    Examples
    --------
    >>> import tempfile
    >>> bad = Path(tempfile.mkdtemp()) / "forecaster_rnn-0.1.0-py3-none-any.whl"
    >>> _ = bad.write_bytes(b"not a zip")
    >>> check_wheel(bad)
    Traceback (most recent call last):
    ...
    forecaster.tracking.wheel.WheelError: the wheel (...) is not a zip archive ...
    """
    path = Path(path)
    if not path.is_file():
        raise WheelError(f"{what} is not an existing file ({path}). Fix the path, or unset it.")
    match = _WHEEL_NAME.match(path.name)
    if match is None:
        raise WheelError(
            f"{what} is not named like a wheel of forecaster ({path.name!r}; expected "
            f"'{_WHEEL_PREFIX}-{__version__}-py3-none-any.whl', of the distribution "
            f"{DISTRIBUTION}): pip installs a wheel only under its own name. Point it at the "
            "file that `python -m build --wheel` wrote (a 'forecaster-*.whl' is of the former "
            "distribution name or of an unrelated project)."
        )
    version = match.group("version")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise WheelError(
            f"{what} ({path}) is not a zip archive ({exc}); a wheel is one. Rebuild it with "
            "`python -m build --wheel`."
        ) from None
    metadata = f"{_WHEEL_PREFIX}-{version}.dist-info/METADATA"
    missing = [name for name in (_LOADER_FILE, metadata) if name not in names]
    if missing:
        raise WheelError(
            f"{what} ({path}) lacks {missing}: it is not a complete wheel of forecaster. "
            "Rebuild it with `python -m build --wheel`."
        )
    if version != __version__:
        raise WheelError(
            f"{what} ({path}) holds forecaster {version}, but this is forecaster {__version__}: "
            f"a model saved by one version is served by the same version. Build the wheel of "
            f"this version, or unset {WHEEL_ENV} to let forecaster make it."
        )
    return path


def wheel_cache_dir() -> Path:
    """The folder of the wheel cache: ``$FORECASTER_WHEEL_CACHE`` when set, else
    ``$XDG_CACHE_HOME/forecaster/wheels`` (``~/.cache/forecaster/wheels``).

    Examples
    --------
    >>> import os
    >>> wheel_cache_dir().name == "wheels" or CACHE_ENV in os.environ
    True
    """
    override = os.environ.get(CACHE_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base).expanduser() / PACKAGE / "wheels"


# ------------------------------------------------------------------------------------------
# the cache
# ------------------------------------------------------------------------------------------


def _cached(files: dict[str, Path], make: Callable[[Path], Path], *, what: str) -> Path:
    """The cached wheel of ``files`` (``{name in the wheel or tree: path}``), made with
    ``make(out_dir) -> wheel`` under the cache's lock when missing."""
    hasher = sha256_hasher(__version__.encode())
    for name in sorted(files):
        hasher.update(f"\0{name}\0".encode())
        hasher.update(files[name].read_bytes())
    key = hasher.hexdigest()[:24]
    cache = wheel_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WheelError(
            f"Cannot create the wheel cache {cache} ({exc}). Set {CACHE_ENV} to a writable "
            f"folder, or {_HOW_TO_SET}."
        ) from None
    try:
        with FileLock(cache / ".lock", timeout=BUILD_TIMEOUT):
            found = sorted((cache / key).glob(f"{_WHEEL_PREFIX}-*.whl"))
            if found:
                try:
                    check_wheel(found[0], what=f"the cached wheel of {what}")
                except WheelError:  # damaged since it was written whole: made again
                    found[0].unlink(missing_ok=True)
                else:
                    os.utime(found[0])  # recently used: kept by the pruning
                    return found[0]
            with tempfile.TemporaryDirectory(prefix="forecaster-wheel-") as tmp:
                built = check_wheel(make(Path(tmp)), what=f"the wheel built from {what}")
                target = cache / key / _tagged(built.name, key)
                write_atomic(target, lambda out: shutil.copyfile(built, out))
            write_manifest(cache / key, _CACHE_KIND)  # the proof that pruning may delete it
            _prune(cache)
            return target
    except Timeout:
        raise WheelError(
            f"Waited {BUILD_TIMEOUT:.0f} s for another process building forecaster's wheel in "
            f"{cache} (its lock file {cache / '.lock'}). Try again, or {_HOW_TO_SET}."
        ) from None


def _tagged(name: str, key: str) -> str:
    """``forecaster_rnn-0.1.0-1<12 hex digits of key>-py3-none-any.whl``: the wheel's name with a
    build tag of its content. MLflow names a fresh environment after the text of the model's
    requirements, so without it two models of different code of one version would share the
    environment built for the first one (and serve its code)."""
    match = _WHEEL_NAME.match(name)
    if match is None:  # checked before: cannot happen
        raise WheelError(f"{name!r} is not a wheel name of forecaster.")
    version = match.group("version")
    rest = name[len(f"{_WHEEL_PREFIX}-{version}-") :].split("-")[-3:]
    return "-".join([_WHEEL_PREFIX, version, f"1{key[:12]}", *rest])


_CACHE_KIND = "wheel"
"""The kind of a cache entry's manifest (see :func:`forecaster._io.write_manifest`)."""


def _prune(cache: Path) -> None:
    """Keep the :data:`CACHE_KEEP` most recently used wheels of the cache. Only entries the
    cache provably wrote are counted and deleted (their manifest, or the shape of an entry
    from before manifests: :func:`_is_old_entry`): a folder of the user's that holds a
    forecaster wheel (``FORECASTER_WHEEL_CACHE`` pointed at a releases folder) is left alone.
    Entries of the former distribution name (``forecaster-*.whl``) are counted too."""
    entries = [wheel for wheel in cache.glob("*/*.whl") if _is_wheel_name(wheel.name)]
    entries = [wheel for wheel in entries if _is_entry(wheel.parent)]
    entries.sort(key=lambda wheel: wheel.stat().st_mtime, reverse=True)
    for wheel in entries[CACHE_KEEP:]:
        shutil.rmtree(wheel.parent, ignore_errors=True)


def _is_entry(folder: Path) -> bool:
    """Whether ``folder`` is a cache entry whose files are as the cache wrote them."""
    try:
        check_replaceable(folder, _CACHE_KIND, purpose="delete", adopt=_is_old_entry)
    except (OwnershipError, OSError):
        return False
    return True


def _is_old_entry(folder: Path) -> bool:
    """An entry written before entries had a manifest: a folder named by its 24 hex digits of
    content key that holds one forecaster wheel and nothing else."""
    files = [path.name for path in folder.iterdir()]
    one_wheel = len(files) == 1 and _is_wheel_name(files[0])
    return one_wheel and re.fullmatch(r"[0-9a-f]{24}", folder.name) is not None


def _is_wheel_name(name: str) -> bool:
    """A file name of a cached wheel: of this distribution name, or of the former one."""
    return any(pattern.match(name) for pattern in (_WHEEL_NAME, _FORMER_WHEEL_NAME))


# ------------------------------------------------------------------------------------------
# from a source tree
# ------------------------------------------------------------------------------------------


def _is_source_tree(root: Path) -> bool:
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return project.get("project", {}).get("name") == DISTRIBUTION


_BUILD_FILES = ("pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in")
_LICENSE_FILES = ("LICEN[CS]E*", "COPYING*", "NOTICE*", "AUTHORS*")  # setuptools' default


def _source_files(root: Path) -> dict[str, Path]:
    """What a build reads: the build files, the readme and the license files that
    pyproject.toml names (or setuptools' default license patterns) and the package folder,
    without caches (the build is made from a copy of these)."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    readme = project.get("readme")
    readme = readme.get("file") if isinstance(readme, dict) else readme
    patterns = [*project.get("license-files", _LICENSE_FILES)]
    patterns += [readme] if isinstance(readme, str) else []
    files = {name: root / name for name in _BUILD_FILES if (root / name).is_file()}
    for pattern in patterns:
        files |= {p.relative_to(root).as_posix(): p for p in root.glob(pattern) if p.is_file()}
    for path in _PACKAGE_DIR.rglob("*"):
        relative = path.relative_to(root)
        skipped = _SKIPPED_DIRS.intersection(relative.parts) or path.suffix in _SKIPPED_SUFFIXES
        if path.is_file() and not skipped:
            files[relative.as_posix()] = path
    return files


_BUILD_SCRIPT = """
import importlib, sys
name, _, attribute = sys.argv[1].partition(":")
sys.path[:0] = sys.argv[3:]
backend = importlib.import_module(name)
for part in filter(None, attribute.split(".")):
    backend = getattr(backend, part)
backend.build_wheel(sys.argv[2])
"""


def _build(root: Path, files: dict[str, Path], out: Path) -> Path:
    """Build the wheel of a copy of ``files`` with the backend of its pyproject.toml (no
    build isolation: no network; the backend must be installed)."""
    system = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    system = system.get("build-system", {})
    backend = system.get("build-backend", "setuptools.build_meta:__legacy__")
    module = backend.partition(":")[0]
    in_tree = [str(out / "src" / p) for p in system.get("backend-path", [])]
    if not in_tree and importlib.util.find_spec(module.partition(".")[0]) is None:
        requires = " ".join(repr(r) for r in system.get("requires", [])) or module
        raise WheelError(
            f"Building forecaster's wheel from {root} needs its build backend {module!r}, "
            f"which is not installed in this environment ({sys.executable}): "
            f"`pip install {requires}`, or {_HOW_TO_SET}."
        )
    source, dist = out / "src", out / "dist"
    for name, path in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, source / name)
    dist.mkdir()
    command = [sys.executable, "-c", _BUILD_SCRIPT, backend, str(dist), *in_tree]
    try:
        done = subprocess.run(
            command, cwd=source, capture_output=True, text=True, timeout=BUILD_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise WheelError(
            f"Building forecaster's wheel from {root} took over {BUILD_TIMEOUT:.0f} s; "
            f"{_HOW_TO_SET}."
        ) from None
    wheels = sorted(dist.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        tail = (done.stderr or done.stdout).strip()[-1500:]
        raise WheelError(
            f"Building forecaster's wheel from {root} with {backend} failed (exit code "
            f"{done.returncode}, wheels written: {[w.name for w in wheels]}). Its output ends "
            f"with:\n{tail}\nFix the build, or {_HOW_TO_SET}."
        )
    return wheels[0]


# ------------------------------------------------------------------------------------------
# from an installed wheel
# ------------------------------------------------------------------------------------------


def _installed_files() -> tuple[str, dict[str, Path]] | None:
    """``(dist-info folder name, {name in the wheel: installed path})`` of the installed
    distribution whose files are the ones running, or None."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    listed = dist.files or []
    init = Path(str(dist.locate_file(f"{PACKAGE}/__init__.py"))).resolve()
    if init != _PACKAGE_DIR / "__init__.py":
        return None
    dist_info = f"{_WHEEL_PREFIX}-{dist.version}.dist-info"
    skipped = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    files = {}
    for item in listed:
        parts = item.parts
        cached = _SKIPPED_DIRS.intersection(parts) or item.suffix in _SKIPPED_SUFFIXES
        in_package = parts[0] == PACKAGE and not cached
        in_metadata = parts[0] == dist_info and parts[-1] not in skipped
        path = Path(str(dist.locate_file(item)))
        if (in_package or in_metadata) and path.is_file():
            files[item.as_posix()] = path
    if f"{dist_info}/METADATA" not in files or f"{dist_info}/WHEEL" not in files:
        return None
    return dist_info, files


def _repack(dist_info: str, files: dict[str, Path], out: Path) -> Path:
    """Write the installed ``files`` as a wheel (with a new RECORD) into ``out``."""
    tags = _wheel_tags(files[f"{dist_info}/WHEEL"].read_text(encoding="utf-8"))
    wheel = out / f"{dist_info.removesuffix('.dist-info')}-{tags}.whl"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in _wheel_order(files):
            data = files[name].read_bytes()
            archive.writestr(name, data)
            digest = base64.urlsafe_b64encode(sha256_hasher(data).digest()).rstrip(b"=")
            writer.writerow([name, f"sha256={digest.decode()}", len(data)])
        writer.writerow([f"{dist_info}/RECORD", "", ""])
        archive.writestr(f"{dist_info}/RECORD", record.getvalue())
    return wheel


def _wheel_tags(text: str) -> str:
    """``py3-none-any`` from a WHEEL file (its ``Tag:`` lines, compressed), or our error."""
    tags = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]
    if not tags:
        raise WheelError(f"The installed WHEEL file names no tag; {_HOW_TO_SET}.")
    parts = [tag.split("-") for tag in tags]
    return "-".join(".".join(dict.fromkeys(p[i] for p in parts)) for i in range(3))


def _wheel_order(files: Iterable[str]) -> list[str]:
    """The package's files first, the .dist-info folder last (as the wheel format advises)."""
    return sorted(files, key=lambda name: (".dist-info/" in name, name))

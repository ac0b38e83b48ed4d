"""Where a spec's outputs and side files may go, checked before any data is read.

Where outputs may go
    ``output.dir`` must name a folder of its own inside the project: not the project folder;
    not a folder holding the spec, the ``pipelines/`` folder, the data the source reads or the
    pointer ``models/<name>/latest.json``; not a folder that ``source.path`` would read as data;
    not inside a folder forecaster wrote (another run's outputs, a model); not an existing
    folder forecaster did not write, nor one holding another pipeline's outputs.
    :func:`load_spec` checks this before reading data (with the as-of still open), the run
    again with its as-of, before training. A ``SpecError`` (exit 2) names ``output.dir``, what
    it resolves to and why.
Where the command line's ``--out`` may go
    Not where ``source.path`` would read it as data (the check ``output.dir`` gets), and not
    inside a folder ``output.dir`` names for a run's outputs of any as-of (a model folder: nor
    one of those folders), which only ``run`` writes (:func:`out_problem`). A SQLite
    ``training.storage`` file and ``model.checkpoint_dir`` get the same check when the spec
    loads.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import itertools
import os
from pathlib import Path

import forecaster._io as _io
from forecaster.datasets import datasets_dir
from forecaster.exceptions import ForecasterError, MissingExtraError, SpecError
from forecaster.jobs.fitting import search_plan
from forecaster.jobs.orphans import lost_manifest
from forecaster.jobs.outputs import legacy_summary
from forecaster.jobs.pointer import latest_pointer
from forecaster.jobs.schedule import check_schedule
from forecaster.jobs.sources import source_glob
from forecaster.jobs.spec import (
    Spec,
    build_estimator,
    normal_path,
    output_dir,
    parse_spec,
    spec_file,
    spec_path,
    splits_by_as_of,
    sqlite_file,
)
from forecaster.jobs.unused import check_unused_keys

__all__ = [
    "NAME_MAX",
    "check_checkpoints",
    "check_output",
    "checkpoint_folder",
    "data_problem",
    "load_spec",
    "out_problem",
    "path_problem",
]


NAME_MAX = 255
"""Longest file name (bytes) forecaster writes (the limit of common file systems)."""


_NAME_ROOM = 40
"""Bytes the last part of an output path leaves free for the names derived from it
(``.<name>.staging-<hex>``, ``.<name>.lock``, ``<name>.forecasts.parquet`` and its temporary
file)."""


def path_problem(path: str | os.PathLike[str]) -> str | None:
    """Why forecaster cannot write a file or folder at ``path`` (None when it can): a NUL
    character, a part longer than file systems allow (the last one leaves room for the names
    derived from it), or a part of the path that is a file or a link that leads nowhere."""
    text = os.fspath(path)
    if "\x00" in text:
        return "it contains a NUL character (\\x00), which no file name can hold"
    parts = Path(text).parts
    for index, part in enumerate(parts):
        size = len(os.fsencode(part))
        limit = NAME_MAX - (_NAME_ROOM if index == len(parts) - 1 else 0)
        if size > limit:
            return (
                f"its part {part[:40]!r}... has {size} bytes, more than the {limit} a name can "
                "have here; shorten it"
            )
    if len(os.fsencode(text)) > 3800:
        return "it is longer than file systems allow (4096 bytes with the names inside it)"
    for folder in Path(text).parents:
        try:
            if folder.exists() and not folder.is_dir():
                return f"that path goes through {folder}, which is a file"
            if folder.is_symlink() and not folder.exists():
                return f"that path goes through {folder}, a link that leads nowhere (or in a loop)"
        except OSError:  # not searchable: writing there reports the system's reason
            return None
    return None


def load_spec(path: str | os.PathLike[str]) -> tuple[Spec, Path]:
    """Read and validate a TOML spec; return it and the project root it is relative to.

    The project root is the parent of the ``pipelines/`` folder holding the spec (or the
    spec's own folder otherwise), taken from the spec's path *as given* (made absolute, a
    leading ``~`` expanded, links not followed): a project whose ``pipelines/`` is a link to
    another project's specs runs them on its own data and writes its own outputs. Every
    path-valued key (``source.path``, ``output.dir``, ``model.checkpoint_dir``, the file of a
    ``sqlite:///`` ``training.storage``; a leading ``~`` expanded) is relative to that root,
    must stay inside it, and is checked against the placement rules above,
    as are the ``[model]`` parameters (by the estimator), the keys the spec's other choices
    would leave unused (:mod:`forecaster.jobs.unused`) and, with ``training.tune = true``,
    that ``[model]`` leaves the tuning something to search
    (:func:`forecaster.jobs.fitting.search_plan`), before any data is read.

    Raises
    ------
    SpecError
        Naming the file, the key, what was expected and what was received.
    """
    file = spec_file(path)
    spec, root = parse_spec(file)
    check_unused_keys(file, spec)
    check_schedule(file, spec)
    check_output(file, spec, root, None)
    _check_side_paths(file, spec, root)
    _check_tuning(file, spec)
    return spec, root


def _check_tuning(file: Path, spec: Spec) -> None:
    """A spec that tunes (``training.tune = true``) whose ``[model]`` fixes every parameter
    the tuning searches is refused here, not by each of its runs after the data read."""
    if not spec.training.tune:
        return
    try:
        search_plan(spec, build_estimator(spec, False))
    except MissingExtraError:
        return  # no Optuna: a run that tunes says how to install it (other commands need none)
    except SpecError as exc:
        raise SpecError(f"{file}: key 'training.tune' is true, but {exc}") from None


_PROBE_LABEL = "2000-01-01"
"""The as-of used to check ``output.dir`` before the real one is known (labels hold no ``/``
and are never ``.`` or ``..``, so only the folder's last parts can differ)."""


def check_output(file: Path, spec: Spec, root: Path, label: str | None) -> Path:
    """The output folder for ``label`` (None: before the as-of is known) after checking the
    placement rules of this module's docstring; ``SpecError`` naming ``output.dir`` otherwise."""
    out = output_dir(spec, root, label or _PROBE_LABEL)
    why = path_problem(out)
    if why is None and not out.is_relative_to(normal_path(root)):
        raise SpecError(
            f"{file}: key 'output.dir' points outside the project ({out}); outputs are "
            f"written under {root}. Use a relative folder such as 'outputs/{{name}}/{{as_of}}'."
        )
    if why is None:
        why = _placement_problem(out, file, spec, root)
    if why is None and (label is not None or not splits_by_as_of(spec.output.dir)):
        why = _occupant_problem(out, spec.pipeline.name)
    if why:
        fix = "Give the outputs a folder of their own, such as 'outputs/{name}/{as_of}'"
        if spec.output.dir == _DEFAULT_DIR:  # the advice would be the value it has
            fix = (
                f"Move what is at {out} out of the way (forecaster replaces only what it "
                "wrote), or give the outputs another folder of their own in output.dir"
            )
        raise SpecError(
            f"{file}: key 'output.dir' ({spec.output.dir!r}) resolves to {out}: {why}. {fix}."
        )
    return out


_DEFAULT_DIR = "outputs/{name}/{as_of}"
"""The default ``output.dir``, which :func:`check_output` suggests to a spec with another."""


def _placement_problem(out: Path, file: Path, spec: Spec, root: Path) -> str | None:
    if out == normal_path(root):
        return "that is the project folder itself, which the outputs would replace"
    real = _resolved(out)
    for path, what in _protected_paths(file, spec, root):
        for mine, theirs in ((out, normal_path(path)), (real, _resolved(path))):
            if mine == theirs:
                return f"that is {what} ({path})"
            if theirs.is_relative_to(mine):
                return f"that folder holds {what} ({path}), which the outputs would replace"
    return data_problem(spec, root, out, folder=True) or _owner_problem(out, root)


def _owner_problem(path: Path, root: Path, *, itself: bool = False) -> str | None:
    """Why ``path`` is inside (or, with ``itself``, is) a folder forecaster wrote, whose
    manifest would no longer list what it holds; None when it is not."""
    owner = _io.owning_folder(path, stop=root)
    if owner is None and itself and path.is_dir() and not path.is_symlink():
        manifest = _io.read_manifest(path)
        if manifest is not None:
            return (
                f"that is a {manifest['kind']} folder forecaster wrote, whose manifest lists "
                "what it holds"
            )
    if owner is not None:
        return (
            f"that is inside {owner[0]}, a {owner[1]} folder forecaster wrote, which would "
            "then hold files its manifest does not list"
        )
    return None


def _resolved(path: Path) -> Path:
    """``path`` with its links followed (as written when they loop)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return normal_path(path)


def _protected_paths(file: Path, spec: Spec, root: Path) -> list[tuple[Path, str]]:
    """Paths an output folder must neither be nor hold, with what they are."""
    paths = [
        (normal_path(file), "the spec file"),
        (normal_path(file).parent, "the folder of the spec file"),
        (root / "pipelines", "the pipelines folder"),
        (latest_pointer(root, spec.pipeline.name), "the pointer to the pipeline's latest model"),
    ]
    source = spec.source
    if source.path is not None:
        paths.append((source_glob(spec, root)[1], f"the data of source.path {source.path!r}"))
    else:
        with contextlib.suppress(ForecasterError, OSError):
            paths.append((datasets_dir(), "the bundled data sets"))
    return paths


def _source_pattern(spec: Spec, root: Path) -> tuple[str, ...] | None:
    """The parts of the ``source.path`` glob relative to the project (None: no files read)."""
    if spec.source.path is None:
        return None
    full = spec_path(root, spec.source.path)
    if not full.is_relative_to(normal_path(root)):
        return None
    pattern = full.relative_to(normal_path(root)).parts
    # a wav folder stands for its clips; anything below it or below a match, conservatively
    return (*pattern, "**") if spec.source.format == "wav" else pattern


def data_problem(spec: Spec, root: Path, path: Path, *, folder: bool) -> str | None:
    """Why forecaster must not write at ``path``: ``source.path`` would read what it writes
    there as data in the next run (a ``folder``: any file below it the glob can reach; a file:
    the file itself), as written or with its links followed. None when it would not.

    The one check of what the outputs (``output.dir``), the side paths
    (``model.checkpoint_dir``, a SQLite ``training.storage``) and the command line's ``--out``
    write."""
    pattern = _source_pattern(spec, root)
    if pattern is None:
        return None
    places = ((normal_path(path), normal_path(root)), (_resolved(path), _resolved(root)))
    for place, base in places:
        if not place.is_relative_to(base):
            continue
        parts = place.relative_to(base).parts
        if _pattern_reaches(pattern, parts) if folder else _glob_matches(pattern, parts):
            return (
                f"source.path {spec.source.path!r} would read the files written there as data "
                "in the next run"
            )
    return None


def out_problem(spec: Spec, root: Path, path: Path, *, folder: bool) -> str | None:
    """Why a command's ``--out`` (``path``: a file, or a model ``folder``) must not be written
    there: ``source.path`` would read it as data (:func:`data_problem`, as for
    ``output.dir``), or it is inside a folder that ``output.dir`` names for the outputs of a
    run of some as-of (a ``folder``: or is one), which ``forecaster run`` writes and replaces
    as a whole. None when it may."""
    return data_problem(spec, root, path, folder=folder) or _run_folder_problem(
        spec, root, path, folder=folder
    )


_ANY_LABEL = "\x00"
"""Stands for the as-of in ``output.dir`` while it is made a glob (no path holds it)."""


def _run_folder_problem(spec: Spec, root: Path, path: Path, *, folder: bool) -> str | None:
    """Why ``path`` is inside (a ``folder``: or is) a folder that ``output.dir`` names for a
    run's outputs, whatever the as-of (as written, or with the links followed)."""
    for base in dict.fromkeys((normal_path(root), _resolved(root))):
        template = output_dir(spec, base, _ANY_LABEL).parts
        pattern = [glob.escape(part).replace(_ANY_LABEL, "*") for part in template]
        for place in dict.fromkeys((normal_path(path), _resolved(path))):
            parts = place.parts
            if len(parts) < len(pattern) + (0 if folder else 1):
                continue
            run = Path(*parts[: len(pattern)])
            if all(map(fnmatch.fnmatchcase, run.parts, pattern)):
                where = "a folder" if place == run else f"inside {run}, a folder"
                return (
                    f"that is {where} that output.dir ({spec.output.dir!r}) names for the "
                    "outputs of a run, which `forecaster run` writes and replaces as a whole "
                    "(the run would then refuse that folder, or fail when it publishes)"
                )
    return None


def _pattern_reaches(pattern: tuple[str, ...], folder: tuple[str, ...]) -> bool:
    """Whether the glob ``pattern`` (parts relative to the project) can match a file below
    ``folder`` (parts): every part of the folder matches the pattern's part at its depth, and
    the pattern goes deeper (``**`` reaches any depth)."""
    for depth, part in enumerate(folder):
        if depth < len(pattern) and pattern[depth] == "**":
            return True
        if depth >= len(pattern) - 1 or not fnmatch.fnmatchcase(part, pattern[depth]):
            return False
    return True


def _glob_matches(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """Whether the glob ``pattern`` (parts; ``**`` any number of folders) matches ``parts``."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_glob_matches(pattern[1:], parts[skip:]) for skip in range(len(parts) + 1))
    return (
        bool(parts)
        and fnmatch.fnmatchcase(parts[0], pattern[0])
        and _glob_matches(pattern[1:], parts[1:])
    )


def side_paths(spec: Spec, root: Path) -> list[tuple[str, str, Path, bool]]:
    """``(key, value, path, is_folder)`` of the spec's path-valued keys other than the source
    and the outputs."""
    paths = []
    folder = spec.model.get("checkpoint_dir")
    if isinstance(folder, str) and folder:
        paths.append(("model.checkpoint_dir", folder, spec_path(root, folder), True))
    file = sqlite_file(spec.training.storage)
    if file is not None:
        paths.append(("training.storage", file, spec_path(root, file), False))
    return paths


def _check_side_paths(file: Path, spec: Spec, root: Path) -> None:
    """``model.checkpoint_dir`` and a SQLite ``training.storage`` file: inside the project,
    writable names, not inside (or being) a folder forecaster wrote, not read as data; the
    storage a file that can hold a SQLite database, as ``tune`` checks it when it opens; and
    neither inside (nor being) a folder ``output.dir`` names for a run's outputs
    (:func:`out_problem`, the check ``--out`` gets: a run of another as-of, a fit or a tuning
    would write into it, then that as-of's run refuse to publish over it)."""
    storage = spec.training.storage
    if _io.is_memory_sqlite(storage):
        raise SpecError(
            f"{file}: key 'training.storage' ({storage!r}) is an in-memory SQLite database, "
            "which lives with one connection: a study needs several, and could not be resumed. "
            "Use a file such as 'sqlite:///studies/optuna.db' (relative to the project folder)."
        )
    for key, value, path, is_folder in side_paths(spec, root):
        why = path_problem(path)
        if why is None and not path.is_relative_to(normal_path(root)):
            raise SpecError(
                f"{file}: key {key!r} points outside the project ({path}); it is relative to "
                f"the project folder {root} and must stay inside it. Use a relative path such "
                f"as {'checkpoints' if is_folder else 'studies/optuna.db'!r}"
                f"{'' if is_folder else ' (or a postgresql:// URL for a shared study)'}."
            )
        if why is None:
            why = _owner_problem(path, root, itself=True)
        if why is None and path == normal_path(root) and is_folder:
            why = "that is the project folder itself"
        if why is None:  # not read as data (a checkpoint folder: the files it holds) ...
            probe = path / "checkpoint-0.safetensors" if is_folder else path
            why = data_problem(spec, root, probe, folder=False)
        if why is None:  # ... nor inside (or being) a run's folder: out_problem, as --out
            why = _run_folder_problem(spec, root, path, folder=is_folder)
        if why is None and not is_folder:
            why = _io.sqlite_file_problem(path)
        if why:
            raise SpecError(
                f"{file}: key {key!r} ({value!r}) resolves to {path}: {why}. Give it a path of "
                "its own in the project, such as "
                f"{'checkpoints' if is_folder else 'studies/optuna.db'!r}."
            )


def check_checkpoints(file: Path, spec: Spec, root: Path, out: Path, key: str) -> None:
    """The checkpoint folder of a spec neither holds nor is inside the folder ``out`` that
    the run (or fit) publishes: one would add files to the other."""
    folder = checkpoint_folder(out, spec, root)
    if folder.is_relative_to(out) or out.is_relative_to(folder):
        raise SpecError(
            f"{file}: key 'model.checkpoint_dir' resolves to {folder}, which "
            f"{'is inside' if folder.is_relative_to(out) else 'holds'} {out} ({key}): the "
            "checkpoints and the published folder would mix. Give the checkpoints a folder of "
            "their own, such as 'checkpoints'."
        )


def _occupant_problem(out: Path, name: str) -> str | None:
    """Why the folder now at ``out`` cannot take the pipeline's outputs (None when it can)."""
    if out.is_symlink():
        return f"that is a link (to {os.readlink(out)}), not a folder forecaster wrote"
    if not out.exists():
        return None
    if not out.is_dir():
        return "that is a file"
    manifest = _io.read_manifest(out)
    if manifest is None:
        if legacy_summary(out, name) is not None or lost_manifest(out, name) is not None:
            return None  # a run folder that lost its manifest: the run says what to do
        with os.scandir(out) as listing:
            names = sorted(entry.name for entry in itertools.islice(listing, 6))
        if not names:
            return None
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        return (
            f"that is an existing folder forecaster did not write (it holds {shown}), which the "
            "outputs would replace"
        )
    if manifest["kind"] != "run":
        return f"that folder holds a forecaster {manifest['kind']}, not a pipeline's outputs"
    other = manifest["details"].get("pipeline")
    if other != name:
        return f"that folder holds the outputs of the pipeline {other!r}"
    return None


def checkpoint_folder(
    output: str | os.PathLike[str], spec: Spec | None = None, root: Path | None = None
) -> Path:
    """Where the ``forecaster`` command keeps the training checkpoints of the model it writes
    to ``output`` (a model folder or a run's output folder): the spec's ``model.checkpoint_dir``
    (relative to the project ``root``) when it names one, else the hidden folder
    ``.<name>.checkpoints`` next to ``output``. A command that fitted removes its checkpoint
    files there once it succeeds (:func:`forecaster.training.loop.remove_checkpoints`)."""
    folder = None if spec is None else spec.model.get("checkpoint_dir")
    if isinstance(folder, str) and folder and root is not None:
        return spec_path(root, folder)
    output = Path(output)
    return output.parent / f".{output.name}.checkpoints"

"""The documentation: the API pages cover every public name, the navigation lists every page and
notebook, and every Python block of README.md and docs/*.md runs as written.

The site itself is built by ``make docs`` (``mkdocs build --strict``, run by ``.ci/run``). The
code blocks are read by Sybil's Markdown parsers and run page by page, in order, sharing one
namespace per page as a reader's session would, in a temporary working directory (so that
``model.save("models/...")`` and the MLflow store land there). A block that cannot run here (an
Airflow DAG file) is preceded by ``<!-- skip: next "reason" -->`` and counted as skipped.
"""

from __future__ import annotations

import importlib
import re
import time
import unittest
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml
from conftest import forget_mlflow_state, reset_mlflow_state
from sybil import Sybil
from sybil.evaluators.skip import Skipper
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

import forecaster

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API_PAGES = sorted((DOCS / "api").glob("*.md"))
IDENTIFIER = re.compile(r"^:::\s+(\S+)\s*$", re.MULTILINE)
FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([^\s`]*)", re.MULTILINE)
# Languages that look like Python but are not run (Sybil runs blocks labelled "python" only).
UNRUN_PYTHON_LABELS = {"py", "python3", "pycon", "ipython", "py3"}
EXAMPLE_PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
# Every block runs in well under a minute on the 2-core CI machine (the slowest, the tuning
# example, in about 20 s unloaded); the bound leaves room for a loaded machine.
BLOCK_SECONDS = 120
# The only blocks that may be skipped, by the start of their stated reason.
SKIP_REASON_PREFIXES = ("an Airflow DAG file",)


def rendered_identifiers(pages: list[Path]) -> dict[str, Path]:
    """Every ``::: identifier`` of the pages, with its page."""
    found: dict[str, Path] = {}
    for page in pages:
        for identifier in IDENTIFIER.findall(page.read_text(encoding="utf-8")):
            found[identifier] = page
    return found


def resolve(identifier: str) -> Any:
    """The object a dotted identifier names: the longest importable module prefix, then
    attributes."""
    parts = identifier.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(f"no module in {identifier!r}")


def missing_public_names(identifiers: dict[str, Path]) -> list[str]:
    """Names of ``forecaster.__all__`` that no identifier renders: one must end in the name and
    resolve to the very object ``forecaster.<name>`` is."""
    rendered: dict[str, list[Any]] = {}
    for identifier in identifiers:
        rendered.setdefault(identifier.rsplit(".", 1)[-1], []).append(resolve(identifier))
    return [
        name
        for name in forecaster.__all__
        if not any(obj is getattr(forecaster, name) for obj in rendered.get(name, []))
    ]


def test_api_pages_cover_every_public_name() -> None:
    identifiers = rendered_identifiers(API_PAGES)
    missing = missing_public_names(identifiers)
    assert not missing, (
        f"names in forecaster.__all__ with no '::: <module>.<name>' entry in docs/api/*.md: "
        f"{missing}; add one to the page of its group (docs/api/index.md lists the groups)"
    )


def test_coverage_check_fails_on_a_missing_name() -> None:
    identifiers = rendered_identifiers(API_PAGES)
    without = {k: v for k, v in identifiers.items() if not k.endswith((".tune", ".backtest"))}
    assert missing_public_names(without) == ["backtest", "tune"]
    # another path to the same object counts; a different object of the same name does not
    other_paths = {
        **without,
        "forecaster.tuning.tune": DOCS,
        "forecaster.estimators.forecaster.RNNForecaster.backtest": DOCS,
    }
    assert missing_public_names(other_paths) == ["backtest"]


@pytest.mark.parametrize("page", API_PAGES, ids=lambda p: p.name)
def test_api_identifiers_resolve(page: Path) -> None:
    for identifier in IDENTIFIER.findall(page.read_text(encoding="utf-8")):
        resolve(identifier)  # raises, naming the attribute or module, when it does not


def nav_paths(nav: Any) -> list[str]:
    """The file paths of a mkdocs ``nav`` tree."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [path for entry in nav for path in nav_paths(entry)]
    if isinstance(nav, dict):
        return [path for value in nav.values() for path in nav_paths(value)]
    raise TypeError(f"unexpected nav entry {nav!r}")


def mkdocs_config() -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


def test_nav_lists_every_page_and_nothing_else() -> None:
    listed = nav_paths(mkdocs_config()["nav"])
    assert len(listed) == len(set(listed)), f"pages listed twice: {listed}"
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    notebooks = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.ipynb")}
    assert set(listed) == pages | notebooks, (
        f"not in mkdocs.yml's nav: {sorted((pages | notebooks) - set(listed))}; "
        f"in the nav but not in docs/: {sorted(set(listed) - pages - notebooks)}"
    )
    expected_notebooks = {
        f"notebooks/{name}.ipynb"
        for name in ("quickstart", "audio_mfcc", "tuning_tracking", "scheduled_pipeline")
    }
    assert expected_notebooks <= notebooks


@pytest.mark.parametrize(
    "notebook", sorted((DOCS / "notebooks").glob("*.ipynb")), ids=lambda p: p.name
)
def test_notebooks_are_valid_and_rendered_unexecuted(notebook: Path) -> None:
    nbformat.validate(nbformat.read(notebook, as_version=4))
    plugins = mkdocs_config()["plugins"]
    jupyter = next(
        p["mkdocs-jupyter"] for p in plugins if isinstance(p, dict) and "mkdocs-jupyter" in p
    )
    assert jupyter["execute"] is False  # the suite executes them; the site renders what is stored


def code_fences(text: str) -> list[tuple[int, str]]:
    """(line, language) of every opening code fence."""
    fences, inside = [], None
    for match in FENCE.finditer(text):
        marker, label = match.group(1), match.group(2).lower()
        if inside is None:
            fences.append((text.count("\n", 0, match.start()) + 1, label))
            inside = marker
        elif marker.startswith(inside) and not label:
            inside = None
    return fences


def test_python_blocks_are_labelled_python() -> None:
    wrong = [
        f"{page.relative_to(ROOT)}:{line}: {label}"
        for page in EXAMPLE_PAGES
        for line, label in code_fences(page.read_text(encoding="utf-8"))
        if label in UNRUN_PYTHON_LABELS
    ]
    assert not wrong, f"label Python blocks 'python' so that the suite runs them: {wrong}"


# What names this package for pip or importlib.metadata by its import name "forecaster", the
# name of an unrelated project on the package index: the distribution is "forecaster-rnn".
WRONG_DISTRIBUTION = re.compile(
    r"\bforecaster\[(?:[a-z,]+|\.\.\.)\]"  # an extra: pip install "forecaster[tune]"
    r"|\bforecaster==|(?:dist|code)/forecaster-"  # a pin; a wheel's name (forecaster_rnn-*)
    r"|pip (?:install|uninstall)\b[^\n`]*?[ \t][\"']?forecaster(?![\w\[-])"  # pip install -U
    r"|(?:version|distribution|metadata)\(\s*[\"']forecaster[\"']"  # importlib.metadata
)
# Lines that name the other project on purpose (the warnings against it, the migration) say so
# on the line or the line above.
ON_PURPOSE = ("unrelated", "former")


def texts_naming_the_package() -> dict[str, str]:
    """Every text a user reads a pip command in: the package's messages and data cards, the
    pages, the notebooks' cells, the README, the Makefile, pyproject.toml and the changelog's
    "Unreleased" section (not its released ones, which tell the history)."""
    files = [
        *(ROOT / "forecaster").rglob("*.py"),
        *(ROOT / "forecaster").rglob("*.md"),
        *DOCS.rglob("*.md"),
        *(ROOT / "pipelines").glob("*.toml"),
        *(ROOT / name for name in ("README.md", "CONTRIBUTING.md", "Makefile", "pyproject.toml")),
    ]
    texts = {shown(path): path.read_text(encoding="utf-8") for path in files}
    for notebook in DOCS.rglob("*.ipynb"):
        cells = nbformat.read(notebook, as_version=4).cells
        texts[shown(notebook)] = "\n".join(cell.source for cell in cells)
    texts["CHANGELOG.md"] = unreleased_part((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))
    return texts


def unreleased_part(changelog: str) -> str:
    """The changelog from its start to the end of its "Unreleased" section (so that line
    numbers stay the file's)."""
    start = changelog.index("## [Unreleased]")
    end = changelog.find("\n## [", start + 1)
    return changelog if end < 0 else changelog[:end]


def test_pip_commands_name_the_distribution_not_the_import_name() -> None:
    """was: `pip install "forecaster[tune]"`, `pip install -U forecaster`, `pip install
    --force-reinstall forecaster` in messages and pages: pip installs the index's unrelated
    "forecaster" project."""
    wrong = [
        f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {match.group(0)}"
        for name, text in texts_naming_the_package().items()
        for match in WRONG_DISTRIBUTION.finditer(text)
        if not any(word in _line_of(text, match.start()) for word in ON_PURPOSE)
    ]
    assert not wrong, f"name the distribution forecaster-rnn: {wrong}"


def _line_of(text: str, at: int) -> str:
    """The line of the offset ``at`` and the line above it."""
    start = text.rfind("\n", 0, max(text.rfind("\n", 0, at), 0)) + 1
    end = text.find("\n", at)
    return text[start : len(text) if end < 0 else end]


def test_the_distribution_check_finds_the_import_name_in_pip_commands() -> None:
    for text in (
        'pip install "forecaster[tune]"',
        "pip install -U forecaster",
        "(`pip install --force-reinstall forecaster`)",
        "pip install dist/forecaster-*.whl",
        "code/forecaster-0.1.0-1abc-py3-none-any.whl",
        "forecaster==0.1.0",
        'importlib.metadata.version("forecaster")',
        "reason=\"pip install 'forecaster[notebooks]'\"",
    ):
        assert WRONG_DISTRIBUTION.search(text), text
    for text in (
        'pip install "forecaster-rnn[tune]"',
        "pip install -U forecaster-rnn",
        "pip install dist/forecaster_rnn-*.whl",
        "from forecaster[\\w.]* import",
        "forecaster run pipelines/stocks_daily.toml",
    ):
        assert not WRONG_DISTRIBUTION.search(text), text


def pages_with_python() -> list[Path]:
    return [
        page
        for page in EXAMPLE_PAGES
        if any(label == "python" for _, label in code_fences(page.read_text(encoding="utf-8")))
    ]


def shown(page: Path) -> str:
    """A page's path as a reader finds it: relative to the repository when inside it."""
    return page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else str(page)


def run_page(page: Path) -> tuple[list[tuple[int, float]], list[tuple[int, str]]]:
    """Run the Python blocks of a page in order in one namespace: (line, seconds) of each block
    run, (line, reason) of each block skipped. A failing block raises, naming its line."""
    document = Sybil(parsers=[PythonCodeBlockParser(), SkipParser()]).parse(page)
    ran: list[tuple[int, float]] = []
    skipped: list[tuple[int, str]] = []
    for example in document.examples():
        directive = isinstance(example.region.evaluator, Skipper)
        start = time.perf_counter()
        try:
            example.evaluate()
        except unittest.SkipTest as skip:
            skipped.append((example.line, str(skip)))
            continue
        except Exception as exc:
            raise AssertionError(
                f"the Python block at {shown(page)}:{example.line} failed: {exc!r}"
            ) from exc
        if not directive:
            ran.append((example.line, time.perf_counter() - start))
    return ran, skipped


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("page", pages_with_python(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_code_blocks_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    reset_mlflow_state(monkeypatch, tmp_path)  # also the working directory: tmp_path
    (tmp_path / "mlflow").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    try:
        ran, skipped = run_page(page)
    finally:
        forget_mlflow_state()
    name = shown(page)
    with capsys.disabled():  # the times, for docs/development.md's table
        lines = [f"{name}:{line}: {seconds:.1f} s" for line, seconds in ran]
        lines += [f"{name}:{line}: skipped ({reason})" for line, reason in skipped]
        print("\n" + "\n".join(lines))
    python_fences = [
        line for line, label in code_fences(page.read_text(encoding="utf-8")) if label == "python"
    ]
    assert len(ran) + len(skipped) == len(python_fences), (
        f"{name}: {len(python_fences)} Python blocks (lines {python_fences}), but {len(ran)} ran "
        f"and {len(skipped)} were skipped"
    )
    slow = [f"line {line}: {seconds:.0f} s" for line, seconds in ran if seconds > BLOCK_SECONDS]
    assert not slow, f"{name}: blocks slower than {BLOCK_SECONDS} s: {slow}; make them smaller"
    assert all(reason.startswith(SKIP_REASON_PREFIXES) for _, reason in skipped), skipped


def test_code_fences_are_read_as_they_render() -> None:
    text = "a\n```python\nx = 1\n```\n\n  ```bash\n  ls\n  ```\n````md\n```python\n```\n````\n"
    assert code_fences(text) == [(2, "python"), (6, "bash"), (9, "md")]


def test_a_failing_block_names_its_line_and_a_skip_is_counted(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        'x\n\n```python\na = 1\n```\n\n<!-- skip: next "needs a server" -->\n'
        "```python\nraise SystemExit\n```\n\n```python\nassert a == 2\n```\n",
        encoding="utf-8",
    )
    with pytest.raises(AssertionError, match=r"page.md:12 failed: AssertionError"):
        run_page(page)
    page.write_text(page.read_text(encoding="utf-8").replace("a == 2", "a == 1"))
    ran, skipped = run_page(page)
    assert [line for line, _ in ran] == [3, 12]
    assert skipped == [(8, "needs a server")]

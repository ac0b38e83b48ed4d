"""Hostile pipeline specs, as-of dates and sources: refused with exit 2 naming the key (before
any data is read), or handled by the documented rule; never a foreign exception, and nothing
outside the run's own files changes."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import mini_spec
from hypothesis import given, settings
from hypothesis import strategies as st

from forecaster.exceptions import DataValidationError, ForecasterError, ForecasterWarning
from forecaster.jobs import run as pipelines
from forecaster.jobs.cli import main
from forecaster.jobs.run import SpecError, load_spec, prepare_data
from forecaster.jobs.sources import read_files

FIRST, LAST = dt.date(2024, 1, 1), dt.date(2024, 1, 12)
OWN = ("outputs", "models")  # a fresh project: the run creates both folders


def rows(times: list[str] | None = None) -> str:
    times = times or [str(FIRST + dt.timedelta(days=i)) for i in range(12)]
    lines = ["id,date,y"]
    for k, key in enumerate(("a", "b")):
        lines += [f"{key},{t},{10 * k + i + 0.5}" for i, t in enumerate(times)]
    return "\n".join(lines) + "\n"


def project(
    root: Path,
    *,
    source: str = "data/*.csv",
    model: str = "",
    training: str = "",
    output: str = "",
    data: str | None = None,
) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data" / "prices.csv").write_text(rows() if data is None else data)
    (root / "pipelines").mkdir(exist_ok=True)
    spec = root / "pipelines" / "spec.toml"
    spec.write_text(
        mini_spec(source={"path": source}, model=model, training=training, output=output)
    )
    return spec


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ------------------------------------------------------------------------------------------
# [model], [training] and [output] values: exit 2 naming the file and the key, before data
# ------------------------------------------------------------------------------------------

BAD_MODEL = {
    'horizon = "five"': "model.horizon",
    'max_epochs = "two"': "model.max_epochs",
    "hidden_size = -3": "model.hidden_size",
    "lookback = 1e9": "model.lookback",
    "dropout = 2.0": "model.dropout",
    'cell = "transformer"': "model.cell",
    "validation_size = -1": "model.validation_size",
    'estimator = ["RNNForecaster"]': "model.estimator",
    "progress = true": "model.progress",
    'device = "tpu"': "model.device",
    'baseline = "off"': "model.baseline",
    "hiden_size = 8": "model.hiden_size",  # unknown: "did you mean 'hidden_size'?"
}


@pytest.mark.parametrize("line", list(BAD_MODEL))
def test_bad_model_values_exit_2_naming_the_key_before_reading_data(
    tmp_path, capsys, tree_guard, line
):
    # the source matches nothing: reading the data would be exit 3, so 2 proves the order
    spec = project(tmp_path, source="none/*.csv")
    key = line.split(" = ")[0]
    text = spec.read_text()
    if re.search(rf"^{key} = ", text, re.M):
        text = re.sub(rf"^{key} = .*$", line, text, flags=re.M)
    else:
        text = text.replace("random_state = 0", f"random_state = 0\n{line}")
    spec.write_text(text)
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2, err
    assert str(spec) in err and f"'{BAD_MODEL[line]}'" in err, err
    guard.assert_unchanged()


def test_a_bad_series_value_is_named_by_its_series_key(tmp_path):
    spec = project(tmp_path)
    spec.write_text(spec.read_text().replace('targets = ["y"]', "targets = [3]"))
    with pytest.raises(SpecError, match=r"series\.targets"):
        load_spec(spec)


LOOSE_TYPES = [  # was: each converted (true -> 1 day / 1 step, "yes" -> true, "20" -> 20)
    ("features", "history_days", True, "expected an integer; received True (a bool)"),
    ("features", "history_days", 30.0, "expected an integer; received 30.0 (a float)"),
    ("series", "max_staleness", True, "expected an integer; received True (a bool)"),
    ("training", "reuse_model", "yes", "expected true or false; received 'yes' (a str)"),
    ("training", "tune", 1, "expected true or false; received 1 (an int)"),
    ("training", "trials", "20", "expected an integer; received '20' (a str)"),
    ("training", "timeout", "60", "expected a number; received '60' (a str)"),
    ("training", "timeout", True, "expected a number; received True (a bool)"),
    ("evaluation", "backtest_folds", False, "expected an integer; received False (a bool)"),
    ("tracking", "enabled", "false", "expected true or false; received 'false' (a str)"),
    ("output", "plot_series", 1.5, "expected an integer; received 1.5 (a float)"),
    ("pipeline", "description", 3, "expected a text in quotes; received 3 (an int)"),
]


@pytest.mark.parametrize(("section", "key", "value", "message"), LOOSE_TYPES)
def test_a_value_of_the_wrong_type_is_refused_not_converted(
    tmp_path, capsys, tree_guard, section, key, value, message
):
    spec = project(tmp_path)
    # the source matches nothing: reading the data would be exit 3, so 2 proves the order
    spec.write_text(mini_spec(source={"path": "none/*.csv"}, **{section: {key: value}}))
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2, err
    advice = "Write it in quotes" if "a text" in message else "Write it without quotes"
    assert f"key '{section}.{key}': {message}" in err and advice in err, err
    guard.assert_unchanged()


LIST_ITEMS = [  # was: "key 'source.tickers.1': expected a text in quotes; received 3 (an int).
    # Write it without quotes or conversion, e.g. "daily"", advice that contradicts itself
    (
        {"source": {"path": None, "format": None, "dataset": "stocks", "tickers": ["msft", 3]}},
        "key 'source.tickers', item 2: expected a text in quotes; received 3 (an int). "
        'Write it in quotes, e.g. "3" (a number or true is not a text).',
    ),
    (
        {"series": {"targets": ["y", 1]}},
        "key 'series.targets', item 2: expected a text in quotes; received 1 (an int). "
        'Write it in quotes, e.g. "1"',
    ),
    (
        {"series": {"covariates": [True]}},
        "key 'series.covariates', item 1: expected a text in quotes; received True (a bool). "
        'Write it in quotes, e.g. "true"',
    ),
    (
        {"series": {"targets": "y"}},
        "key 'series.targets': expected a list in brackets; received 'y' (a str). "
        'Write it in brackets, e.g. ["y"] (a single value is not a list).',
    ),
    (
        {"evaluation": {"metrics": ["mae", 2]}},
        "key 'evaluation.metrics': expected one of ['mae', ",
    ),
    ({"series": {"holidays": [1]}}, "key 'series.holidays': expected a list of dates"),
    (  # was: 'Write it in quotes, e.g. "daily" (a number or true is not a text)' for a list
        {"series": {"id": ["a"]}},
        "key 'series.id': expected a text in quotes; received ['a'] (a list). Write one value "
        'in quotes, e.g. "daily" (a list is not a text).',
    ),
]


@pytest.mark.parametrize(("sections", "message"), LIST_ITEMS)
def test_a_list_of_the_wrong_type_or_with_an_item_of_it_is_named_with_right_advice(
    tmp_path, capsys, tree_guard, sections, message
):
    spec = project(tmp_path)
    spec.write_text(mini_spec(**{"source": {"path": "none/*.csv"}, **sections}))
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2 and message in err, err
    assert "without quotes" not in err, err
    guard.assert_unchanged()


def test_a_table_where_a_list_belongs_is_not_called_a_single_value(tmp_path, capsys):
    # was: "Write it in brackets, e.g. [...] (a single value is not a list)" for a table
    spec = project(tmp_path)
    text = mini_spec(source={"path": "none/*.csv"}, series={"targets": None})
    spec.write_text(text.replace("[series]\n", "[series]\ntargets = {a = 1}\n"))
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2 and "received {'a': 1} (a dict). Write it in brackets, e.g. [...] (a " in err
    assert "a table or a date is not a list" in err and "single value" not in err, err


IGNORED_KEYS = [  # was: each accepted and ignored (every series read, no MFCCs, nothing registered)
    ({"source": {"tickers": ["MSFT"]}}, "source.tickers", "format = 'csv'"),
    ({"features": "[features.mfcc]\nn_mfcc = 4"}, "features.mfcc", "format = 'csv'"),
    (
        {"source": {"dataset": "stocks", "path": None, "format": None, "id_from_filename": "t"}},
        "source.id_from_filename",
        "dataset = 'stocks'",
    ),
    ({"tracking": {"register_as": "m"}}, "tracking.register_as", "enabled = false"),
]


@pytest.mark.parametrize(("sections", "key", "actual"), IGNORED_KEYS)
def test_a_key_that_does_not_apply_is_refused_not_ignored(
    tmp_path, capsys, tree_guard, sections, key, actual
):
    spec = project(tmp_path)
    spec.write_text(mini_spec(**sections))
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2, err
    assert f"key {key!r} is used only with" in err and f"this spec has {actual}" in err, err
    assert f"Remove {key}" in err
    guard.assert_unchanged()


def test_an_integer_is_a_number_and_paths_stay_text(tmp_path):
    spec = project(tmp_path, training="timeout = 60", output="levels = [80, 95]")
    loaded, _ = load_spec(spec)
    assert loaded.training.timeout == 60.0 and loaded.output.levels == [80.0, 95.0]
    assert loaded.source.path == "data/*.csv"


TEMPLATES = ["out/{nme}", "{as_of.year}", "{0}", "{name!r}", "{name:>10}", "{}", "out/{name"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_output_template_naming_an_unknown_field_is_a_spec_error(
    tmp_path, capsys, tree_guard, template
):
    spec = project(tmp_path, output=f'dir = "{template}"')
    guard = tree_guard(tmp_path)
    with pytest.raises(SpecError, match=r"key 'output\.dir'.*placeholders \{name\} and \{as_of\}"):
        load_spec(spec)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2 and "Traceback" not in err
    guard.assert_unchanged()


@pytest.mark.parametrize(
    "url", ["ftp://host/db", "nonsense", "mongodb://host/db", "sqlite", "://x"]
)
def test_unsupported_storage_url_exits_2_naming_the_key(tmp_path, capsys, tree_guard, url):
    spec = project(tmp_path, training=f'storage = "{url}"')
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2 and "key 'training.storage'" in err and "SQLAlchemy" in err, err
    guard.assert_unchanged()


def test_storage_url_password_is_not_echoed(tmp_path):
    spec = project(tmp_path, training='storage = "ftp://me:s3cret@host/db"')
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert "s3cret" not in str(info.value) and "me:***@" in str(info.value)


@pytest.mark.parametrize(
    ("source", "folder", "refused"),
    [
        ("data/**/*.csv", "data/out/{name}/{as_of}", True),
        ("data/*/*.csv", "data/{name}", True),
        ("*/*.csv", "results", True),
        ("data/*.csv", "data/out/{name}/{as_of}", False),
        ("data/prices.csv", "data/{name}", False),
    ],
)
def test_output_dir_that_the_source_would_read_as_data_is_refused(
    tmp_path, capsys, tree_guard, source, folder, refused
):
    spec = project(tmp_path, source=source, output=f'dir = "{folder}"')
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec), "--dry-run")
    if refused:
        assert code == 2 and "would read the files written there as data" in err, err
    else:
        assert code == 0, err
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[pipeline\nname=", "not valid TOML"),
        ("a = " + "[" * 5000 + "]" * 5000, "not valid TOML"),
        ("# " + "x" * (2**20 + 10), "more than the"),
        ("fifo", "is a FIFO (named pipe), not a regular file"),
        ("folder", "is a folder, not a regular file"),
    ],
    ids=["broken", "deeply-nested", "huge", "fifo", "folder"],
)
def test_unreadable_spec_file_exits_2(tmp_path, capsys, tree_guard, text, message):
    (tmp_path / "pipelines").mkdir()
    spec = tmp_path / "pipelines" / "spec.toml"
    if text == "fifo":
        os.mkfifo(spec)  # a reader that opened it normally would wait forever
    elif text == "folder":
        spec.mkdir()
    else:
        spec.write_text(text)
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2 and message in err, err
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# canonical as-of labels
# ------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(day=st.dates(min_value=FIRST, max_value=LAST), form=st.sampled_from(range(4)))
def test_every_spelling_of_a_date_is_one_label_on_a_date_column(tmp_path_factory, day, form):
    root = tmp_path_factory.mktemp("asof")
    spec, root = load_spec(project(root))
    text = [day.isoformat(), day.strftime("%Y%m%d"), f"{day}T00:00", f"{day} 00:00:00"][form]
    frame, when = prepare_data(spec, root, text)
    assert when.label == when.effective == day.isoformat()
    assert when.requested == text
    assert frame["date"].max() == day


def test_idempotency_is_keyed_on_the_parsed_as_of(tmp_path, capsys, tree_guard):
    spec = project(tmp_path)
    guard = tree_guard(tmp_path, allowed=OWN)
    code, out, err = cli(capsys, "run", str(spec), "--as-of", "20240110")
    assert code == 0 and "already exist" not in out + err, err
    for text in ("2024-01-10", "2024-01-10T00:00"):
        code, out, err = cli(capsys, "run", str(spec), "--as-of", text)
        assert code == 0 and "already exist" in err, err
    folder = tmp_path / "outputs" / "mini"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["2024-01-10"]
    summary = json.loads((folder / "2024-01-10" / "summary.json").read_text())
    assert summary["requested_as_of"] == "20240110" and summary["effective_as_of"] == "2024-01-10"
    guard.assert_unchanged()


def _datetime_project(root: Path, zone: str = "") -> tuple[pipelines.Spec, Path]:
    times = [f"2024-01-{1 + i // 24:02d}T{i % 24:02d}:00:00{zone}" for i in range(72)]
    spec, root = load_spec(project(root, data=rows(times)))
    return spec, root


@pytest.mark.parametrize(
    ("text", "label", "last"),
    [  # the label is the effective as-of: the last time of the rows selected
        ("2024-01-02", "2024-01-02T23-00-00", "2024-01-02T23:00:00"),
        ("20240102", "2024-01-02T23-00-00", "2024-01-02T23:00:00"),
        ("2024-01-02T00:00", "2024-01-02", "2024-01-02T00:00:00"),  # midnight: the date
        ("2024-01-02T00:59", "2024-01-02", "2024-01-02T00:00:00"),
        ("2024-01-02T10:30", "2024-01-02T10-00-00", "2024-01-02T10:00:00"),
        ("2024-01-02T10:30:00.5", "2024-01-02T10-00-00", "2024-01-02T10:00:00"),
        ("2024-01-02T10:00", "2024-01-02T10-00-00", "2024-01-02T10:00:00"),
    ],
)
def test_datetime_labels_are_canonical_and_filesystem_safe(tmp_path, text, label, last):
    spec, root = _datetime_project(tmp_path)
    _, when = prepare_data(spec, root, text)
    assert (when.label, when.effective) == (label, last)
    assert ":" not in when.label


def test_an_offset_is_converted_to_the_columns_zone(tmp_path):
    spec, root = _datetime_project(tmp_path, zone="+00:00")
    frame, when = prepare_data(spec, root, "2024-01-02T12:00+02:00")
    assert when.label == "2024-01-02T10-00-00"
    assert frame["date"].max() == dt.datetime(2024, 1, 2, 10, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-01-05T15:00", "a Date column has no time of day"),
        ("2024-01-05T00:00+01:00", "it carries a UTC offset"),
        ("yesterday", "expected an ISO date"),
        ("", "expected an ISO date"),
        ("2024-13-01", "expected an ISO date"),
    ],
)
def test_an_as_of_that_does_not_fit_the_column_exits_2(tmp_path, capsys, tree_guard, text, message):
    spec = project(tmp_path)
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec), "--as-of", text)
    assert code == 2 and "--as-of" in err and message in err, err
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("value", "label"),
    [
        (dt.date(2024, 1, 5), "2024-01-05"),
        (dt.datetime(2024, 1, 5), "2024-01-05"),
        (np.datetime64("2024-01-05"), "2024-01-05"),  # as predict(cutoff=) takes them:
        (pl.date(2024, 1, 5), "2024-01-05"),  # both were refused
        (np.datetime64("NaT"), None),
        (object(), None),
    ],
    ids=["date", "datetime", "datetime64", "polars-literal", "NaT", "object"],
)
def test_as_of_given_as_a_python_value(tmp_path, value, label):
    spec, root = load_spec(project(tmp_path))
    if label is None:
        with pytest.raises(SpecError, match="as_of must be an ISO date"):
            prepare_data(spec, root, value)
    else:
        assert prepare_data(spec, root, value)[1].label == label


@pytest.mark.parametrize(("text", "ok"), [("+5", True), ("2.5", False), ("1e3", False)])
def test_integer_steps(tmp_path, text, ok):
    data = "id,date,y\n" + "".join(f"a,{i},{i}.5\n" for i in range(12))
    spec, root = load_spec(project(tmp_path, data=data))
    if ok:
        assert prepare_data(spec, root, text)[1].label == "5"
    else:
        with pytest.raises(SpecError, match="expected an integer step"):
            prepare_data(spec, root, text)


@pytest.mark.parametrize("text", ["2024-02-01", "2999-12-31", "29991231"])
def test_an_as_of_after_the_data_is_labelled_as_the_datas_last_time(tmp_path, text):
    spec, root = load_spec(project(tmp_path))
    with pytest.warns(ForecasterWarning, match=r"after the last time in the data \(2024-01-12\)"):
        frame, when = prepare_data(spec, root, text)
    assert when.label == when.effective == "2024-01-12" and when.requested == text
    assert frame.height == 24


def test_a_future_as_of_reuses_the_outputs_of_the_last_time(tmp_path, capsys, tree_guard):
    spec = project(tmp_path)
    guard = tree_guard(tmp_path, allowed=OWN)
    assert cli(capsys, "run", str(spec))[0] == 0
    code, _out, err = cli(capsys, "run", str(spec), "--as-of", "2999-01-01")
    assert code == 0 and "already exist" in err, err
    assert "warning: --as-of 2999-01-01 is after the last time in the data" in err
    guard.assert_unchanged()


def test_an_as_of_before_the_data_exits_3(tmp_path, capsys, tree_guard):
    spec = project(tmp_path)
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec), "--as-of", "1999-12-31")
    assert code == 3 and "the data starts at 2024-01-01" in err, err
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# sources that change or are not files
# ------------------------------------------------------------------------------------------


def test_files_that_disappear_between_scan_and_collect_exit_3(
    tmp_path, capsys, tree_guard, monkeypatch
):
    spec = project(tmp_path)
    scan = pl.scan_csv

    def scan_then_delete(paths, **kwargs):
        lazy = scan(paths, **kwargs)
        for path in paths:
            os.remove(path)
        return lazy

    monkeypatch.setattr(pl, "scan_csv", scan_then_delete)
    guard = tree_guard(tmp_path, allowed=("data",))
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 3 and "disappeared or became unreadable" in err, err
    assert "Traceback" not in err
    guard.assert_unchanged()


@pytest.mark.parametrize("kind", ["fifo", "folder", "dangling-link"])
def test_a_source_match_that_is_not_a_regular_file_exits_3(tmp_path, capsys, tree_guard, kind):
    spec = project(tmp_path)
    odd = tmp_path / "data" / "zz.csv"
    if kind == "fifo":
        os.mkfifo(odd)  # would block a reader forever
    elif kind == "folder":
        odd.mkdir()
    else:
        odd.symlink_to(tmp_path / "gone.csv")
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 3 and "zz.csv" in err, err
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# several files that do not agree: the files named, never read into other types
# ------------------------------------------------------------------------------------------


def _series(key: str, start: int = 0, days: int = 12, **columns: object) -> pl.DataFrame:
    """``days`` daily rows of the series ``key`` from FIRST + ``start`` days."""
    dates = [FIRST + dt.timedelta(days=start + i) for i in range(days)]
    frame = pl.DataFrame({"id": [key] * days, "date": dates, "y": [i + 0.5 for i in range(days)]})
    return frame.with_columns(**columns)


def _files(root: Path, files: dict[str, pl.DataFrame | str]) -> Path:
    """A project whose ``data/`` holds ``files`` (a frame is written as Parquet, text as it
    is) and whose spec reads ``data/*`` in the format of the first file's extension."""
    (root / "data").mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, str):
            (root / "data" / name).write_text(content)
        else:
            content.write_parquet(root / "data" / name)
    fmt = next(iter(files)).rsplit(".", 1)[1]
    (root / "pipelines").mkdir()
    spec = root / "pipelines" / "spec.toml"
    spec.write_text(mini_spec(source={"path": f"data/*.{fmt}", "format": fmt}))
    return spec


def test_a_header_only_csv_among_several_is_left_out_with_a_warning(tmp_path):
    # was: every column read as text (the header-only file's columns are String, and String
    # is the type that holds both), refused as "got String. Give its format as
    # source.time_format" without a word about the file
    data = {"a.csv": _series("a").write_csv(), "b.csv": _series("b").write_csv()}
    spec = _files(tmp_path, {**data, "new.csv": "id,date,y\n"})
    with pytest.warns(ForecasterWarning, match=r"data/new\.csv has a header but no data rows"):
        frame, when = prepare_data(*load_spec(spec), None)
    assert frame.schema == {"id": pl.String, "date": pl.Date, "y": pl.Float64}
    assert frame.height == 24 and when.label == "2024-01-12"
    # its header must still be the others': a file of another layout is not data to skip
    (tmp_path / "data" / "new.csv").write_text("id,y,date\n")
    with pytest.raises(DataValidationError, match=r"data/new\.csv: id, y, date \(the same"):
        prepare_data(*load_spec(spec), None)


def test_a_csv_column_empty_in_one_file_keeps_the_type_of_the_others(tmp_path):
    # was: a file of scheduled rows (y not known yet) or dates left blank made the column
    # text in every file, as a header-only file did
    plan = _series("b", y=None).write_csv()
    spec = _files(tmp_path, {"a.csv": _series("a").write_csv(), "plan.csv": plan})
    assert read_files(*load_spec(spec)).schema == {
        "id": pl.String,
        "date": pl.Date,
        "y": pl.Float64,
    }
    (tmp_path / "data" / "plan.csv").write_text(_series("b", date=None).write_csv())
    assert read_files(*load_spec(spec)).schema["date"] == pl.Date


def test_a_zero_byte_csv_among_several_is_named(tmp_path):
    spec = _files(tmp_path, {"a.csv": _series("a").write_csv(), "b.csv": ""})
    with pytest.raises(DataValidationError, match=r"data/b\.csv is empty \(no header, no rows\)"):
        prepare_data(*load_spec(spec), None)


@pytest.mark.parametrize(
    ("header", "difference"),
    [
        ("id,y,date", "the same columns in another order"),  # was: "schema names differ"
        ("id,date,y,x", "also x"),  # was: "schema lengths differ", naming no file
        ("id,date", "without y"),
    ],
)
def test_csv_files_with_other_headers_are_refused_naming_them(tmp_path, header, difference):
    other = _series("b").with_columns(x=pl.lit(1.5)).select(header.split(",")).write_csv()
    spec = _files(tmp_path, {"a.csv": _series("a").write_csv(), "b.csv": other})
    with pytest.raises(DataValidationError) as raised:
        prepare_data(*load_spec(spec), None)
    message = str(raised.value)
    assert "do not all have the same header" in message
    assert f"data/a.csv: id, date, y; data/b.csv: {header.replace(',', ', ')} ({difference})" in (
        message
    )
    assert "same columns in the same order" in message


def test_parquet_numbers_of_different_widths_are_read_as_one_type(tmp_path):
    # was: "data type mismatch for column y: incoming: Int64 != target: Float64, hint: pass
    # cast_options=pl.ScanCastOptions(...)", which no spec can pass (CSV read the same data)
    files = {
        "a.parquet": _series("a"),
        "b.parquet": _series("b", y=pl.int_range(12)),  # Int64
        "c.parquet": _series("c", y=pl.col("y").cast(pl.Float32)),
        "0.parquet": _series("d", y=None),  # no value: a Null column, read first
    }
    frame = read_files(*load_spec(_files(tmp_path, files)))
    assert frame.schema == {"id": pl.String, "date": pl.Date, "y": pl.Float64}
    values = frame.sort("id", "date").group_by("id", maintain_order=True).agg("y")
    assert values["y"].to_list() == [
        [i + 0.5 for i in range(12)],
        [float(i) for i in range(12)],
        [i + 0.5 for i in range(12)],
        [None] * 12,
    ]
    integers = {"a.parquet": _series("a", y=pl.int_range(12, dtype=pl.Int32))}
    integers["b.parquet"] = _series("b", y=pl.int_range(12))
    assert read_files(*load_spec(_files(tmp_path / "int", integers))).schema["y"] == pl.Int64


@pytest.mark.parametrize(
    ("other", "refusal"),
    [
        (
            _series("b", date=pl.col("date").cast(pl.Datetime)),
            r"Column 'date' has other types .*: Date in data/a\.parquet; "
            r"Datetime\[us, no time zone\] in data/b\.parquet",
        ),
        (  # was: read, the UTC times made naive without a word
            _series("b", date=pl.col("date").cast(pl.Datetime("us", "UTC"))),
            r"Datetime\[us, no time zone\] in data/a\.parquet; Datetime\[us, UTC\] in data/b",
        ),
        (_series("b", id=pl.lit(7)), r"Column 'id' has other types .*String in data/a\.parquet"),
        (
            _series("b", x=pl.lit(1.0)),  # was: "pass extra_columns='ignore' in scan options"
            r"do not all have the same columns: data/a\.parquet: id, date, y; data/b\.parquet: "
            r"id, date, y, x \(also x\)",
        ),
    ],
    ids=["date-datetime", "naive-utc", "id-type", "extra-column"],
)
def test_parquet_files_that_disagree_are_refused_naming_column_and_files(tmp_path, other, refusal):
    files = {"a.parquet": _series("a"), "b.parquet": other}
    if "Datetime" in refusal and "Date in" not in refusal:
        files["a.parquet"] = _series("a", date=pl.col("date").cast(pl.Datetime))
    spec = _files(tmp_path, files)
    with pytest.raises(DataValidationError, match=refusal):
        prepare_data(*load_spec(spec), None)


@pytest.mark.parametrize(
    ("column", "kinds", "refusal"),
    [  # was: read as Float64, the ids 2**53 + 1 and 2**53 one series
        ("id", (pl.UInt64, pl.Int64), r"Column 'id' .*: UInt64 in data/a\.parquet; Int64 in"),
        ("id", (pl.Int64, pl.Float64), r"Column 'id' .*: Int64 in data/a\.parquet; Float64 in"),
        ("date", (pl.Int64, pl.Float64), r"Column 'date' .*: Int64 in data/a\.parquet; Float64"),
    ],
)
def test_parquet_id_and_time_of_other_number_kinds_are_refused(tmp_path, column, kinds, refusal):
    ids = {"id": (2**53 + 1, 2**53), "date": (7, 8)}[column]
    files = {
        f"{name}.parquet": _series("a", start=3 * i, days=3).with_columns(
            id=pl.lit(ids[i], kinds[i]) if column == "id" else pl.lit("a"),
            date=pl.int_range(3 * i, 3 * i + 3).cast(kinds[i]) if column == "date" else "date",
        )
        for i, name in enumerate("ab")
    }
    spec = _files(tmp_path, files)
    with pytest.raises(DataValidationError, match=refusal + r".*integers that Int64 holds"):
        read_files(*load_spec(spec))


def test_parquet_ids_of_integer_widths_that_int64_holds_are_read_as_int64(tmp_path):
    files = {
        "a.parquet": _series("a", id=pl.lit(2**31 + 5, pl.UInt32)),
        "b.parquet": _series("b", id=pl.lit(2**31 + 4, pl.Int64)),
    }
    frame = read_files(*load_spec(_files(tmp_path, files)))
    assert frame.schema["id"] == pl.Int64
    assert sorted(frame["id"].unique().to_list()) == [2**31 + 4, 2**31 + 5]


def test_parquet_text_kinds_and_datetime_units_are_read_as_one_type(tmp_path):
    """A Categorical id beside a String one and ns beside us times (pandas and Arrow writers
    differ) were refused; they hold the same values."""
    hours = pl.col("date").cast(pl.Datetime("us", "UTC")) + pl.duration(hours=pl.int_range(12))
    files = {
        "a.parquet": _series("a", id=pl.lit("a", pl.Categorical), date=hours),
        "b.parquet": _series("b", date=hours.dt.cast_time_unit("ns")),
    }
    spec = _files(tmp_path, files)
    frame = read_files(*load_spec(spec))
    assert frame.schema["id"] == pl.String and frame.schema["date"] == pl.Datetime("ns", "UTC")
    expected = _series("a", date=hours)["date"].dt.cast_time_unit("ns").to_list()
    assert frame.filter(pl.col("id") == "b")["date"].to_list() == expected
    assert sorted(frame["id"].unique().to_list()) == ["a", "b"]
    prepared, when = prepare_data(*load_spec(spec), None)
    assert prepared.height == 24 and when.stale_count == 0
    # times that the finest unit cannot hold: the reader's message and what to do (was the
    # CSV advice "Check the files (format, separator, ...)")
    late = _series("a", date=pl.col("date").cast(pl.Datetime("us")) + pl.duration(days=100_000))
    files = {
        "a.parquet": late,
        "b.parquet": _series("b", date=pl.col("date").cast(pl.Datetime("ns"))),
    }
    with pytest.raises(DataValidationError) as raised:
        read_files(*load_spec(_files(tmp_path / "late", files)))
    message = str(raised.value)
    assert "write the column in one time unit" in message and "separator" not in message


def _rows(key: str, days: int, column: object) -> str:
    """CSV text of ``days`` rows of ``key`` with a column ``x``: ``column(day)``."""
    lines = [f"{key},{FIRST + dt.timedelta(days=i)},{i}.5,{column(i)}" for i in range(days)]  # type: ignore[operator]
    return "id,date,y,x\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("a", "b", "x"),
    [  # was: each refused, one file's first rows forcing their type on the other file
        (lambda i: "x" if i == 150 else i, lambda i: "" if i < 100 else i, pl.String),
        (lambda i: FIRST, lambda i: "" if i < 100 else f"{FIRST} 10:30:00", pl.String),
        (lambda i: "n/a" if i == 150 else i, lambda i: "n/a" if i == 3 else i, pl.String),
    ],
    ids=["unused-text-column", "dates-then-datetimes", "n/a-in-both"],
)
def test_csv_values_below_the_first_rows_are_read_as_by_the_reader(tmp_path, a, b, x):
    spec = _files(tmp_path, {"a.csv": _rows("a", 200, a), "b.csv": _rows("b", 200, b)})
    frame = read_files(*load_spec(spec))
    assert frame.height == 400 and frame.schema["x"] == x


def test_a_forced_type_that_a_later_value_breaks_leaves_the_other_forced_types(tmp_path):
    """Only the column whose later value does not fit loses its forced type (the fallback
    read every column as the reader alone types them, so a y empty in one file's first rows
    became text); an integer column with a decimal further down is read as Float64."""
    later = "id,date,y,x\n" + "".join(
        f"a,{FIRST + dt.timedelta(days=200 + i)},,{i}\n" for i in range(3)
    )  # scheduled rows: y not known yet, x numbers
    text = _rows("a", 200, lambda i: "" if i < 100 else ("late" if i == 150 else i))
    spec = _files(tmp_path, {"later.csv": later, "history.csv": text})
    frame = read_files(*load_spec(spec))
    assert frame.schema["y"] == pl.Float64 and frame.schema["x"] == pl.String
    decimal = _rows("a", 200, lambda i: "" if i < 100 else (2.5 if i == 150 else i))
    spec = _files(tmp_path / "decimal", {"later.csv": later, "history.csv": decimal})
    frame = read_files(*load_spec(spec))
    assert frame.schema["y"] == pl.Float64 and frame.schema["x"] == pl.Float64
    assert frame["x"].drop_nulls().sum() == pytest.approx(sum(range(100, 200)) - 150 + 2.5 + 3)


def test_a_csv_value_that_does_not_parse_is_not_blamed_on_the_layout(tmp_path):
    # was: "could not parse `n/a` as dtype `f64` ... Check the files (format, separator, a
    # consistent number of fields per line)": the file's layout is fine
    data = _rows("a", 200, lambda i: i).replace(",150.5,", ",n/a,")
    spec = _files(tmp_path, {"a.csv": data})
    with pytest.raises(DataValidationError) as raised:
        read_files(*load_spec(spec))
    message = str(raised.value)
    assert "could not parse `n/a` as dtype `f64` at column 'y'" in message
    assert "source.null_values" in message and "separator" not in message


def test_a_csv_value_that_does_not_parse_names_its_file_among_several(tmp_path):
    # was: polars' "could not parse `n/a` as dtype `f64` at column 'y'" with no file; then
    # "The value is in data/b.csv." with no line
    good = _rows("a", 200, lambda i: i)
    bad = _rows("b", 200, lambda i: i).replace(",150.5,", ",n/a,")
    spec = _files(tmp_path, {"a.csv": good, "b.csv": bad, "c.csv": _rows("c", 200, str)})
    with pytest.raises(DataValidationError) as raised:
        read_files(*load_spec(spec))
    message = str(raised.value)
    assert "could not parse `n/a`" in message, message
    line = next(n for n, text in enumerate(bad.splitlines(), 1) if ",n/a," in text)
    assert f"In data/b.csv, line {line} has 'n/a' in column 'y', read as f64." in message


def test_csv_times_with_and_without_a_time_zone_name_the_files(tmp_path):
    # was: "failed to determine supertype of datetime[μs] and datetime[μs, UTC]", no file
    naive = _series("a", date=pl.col("date").cast(pl.Datetime)).write_csv()
    zoned = _series("b", date=pl.col("date").cast(pl.Datetime("us", "UTC"))).write_csv()
    spec = _files(tmp_path, {"a.csv": naive, "b.csv": zoned})
    refusal = (
        r"column 'date' is Datetime\[us, no time zone\] in data/a\.csv; "
        r"Datetime\[us, UTC\] in data/b\.csv"
    )
    with pytest.raises(DataValidationError, match=refusal):
        prepare_data(*load_spec(spec), None)


def test_files_that_share_times_or_ids_but_no_id_and_time_are_read(tmp_path):
    """Only an (id, time) in two files is refused: files of other series over the same days,
    files of the same series over other days, and days interleaved between two files are
    one table."""
    days = pl.concat([_series("a"), _series("b")]).with_columns(odd=pl.col("date").dt.day() % 2)
    files = {
        "odd.csv": days.filter(pl.col("odd") == 1).drop("odd").write_csv(),
        "even.csv": days.filter(pl.col("odd") == 0).drop("odd").write_csv(),
        "c.csv": _series("c").write_csv(),  # the same days, another series
        "later.csv": _series("c", start=12).write_csv(),  # the same series, later days
    }
    frame = read_files(*load_spec(_files(tmp_path, files)))
    assert frame.height == 48 and frame.select("id", "date").is_unique().all()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_id_and_time_in_two_files_is_refused_naming_them(tmp_path, capsys, tree_guard, fmt):
    # was: "12 duplicate (id, time) rows ... frame.unique(subset=[...], keep='last')", as if
    # one file held them twice
    both = pl.concat([_series("a"), _series("b")])
    overlap = pl.concat([_series("a", start=10, days=4), _series("b", start=10, days=4)])
    files = {"jan.csv": both, "jan-copy.csv": both, "feb.csv": overlap}
    write = (lambda f: f) if fmt == "parquet" else (lambda f: f.write_csv())
    spec = _files(tmp_path, {n.replace("csv", fmt): write(f) for n, f in files.items()})
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 3, err
    assert f"Rows of 24 (id, date) are in more than one file of source.path 'data/*.{fmt}'" in err
    assert f"20 in both data/jan-copy.{fmt} and data/jan.{fmt} (e.g. ('a', 2024-01-01))" in err
    assert f"4 in each of data/feb.{fmt}, data/jan-copy.{fmt} and data/jan.{fmt}" in err
    guard.assert_unchanged()
    # rows repeated within one file are not blamed on the files (validation names them)
    (tmp_path / "data" / f"jan-copy.{fmt}").unlink()
    (tmp_path / "data" / f"feb.{fmt}").unlink()
    twice = pl.concat([_series("c"), _series("c", start=11, days=1)])
    (tmp_path / "data" / f"mar.{fmt}").unlink(missing_ok=True)
    if fmt == "parquet":
        twice.write_parquet(tmp_path / "data" / "mar.parquet")
    else:
        (tmp_path / "data" / "mar.csv").write_text(twice.write_csv())
    code, _, err = cli(capsys, "run", str(spec), "--dry-run")
    assert code == 3 and "1 duplicate (id, time) rows, e.g. ('c', 2024-01-12)" in err, err


# ------------------------------------------------------------------------------------------
# only forecaster's types leave run_pipeline
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (RuntimeError("boom"), "Unexpected RuntimeError in the pipeline run: boom"),
        (OSError(28, "No space left on device", "x.parquet"), "No space left on device"),
        (KeyError("k"), "Unexpected KeyError"),
    ],
    ids=["runtime", "disk-full", "key"],
)
def test_foreign_exceptions_are_wrapped(tmp_path, monkeypatch, tree_guard, error, message):
    spec = project(tmp_path)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(pipelines, "_write_outputs", fail)
    guard = tree_guard(tmp_path, allowed=OWN)
    with pytest.raises(ForecasterError, match=message) as info:
        pipelines.run_pipeline(spec, progress=False, log=lambda line: None)
    assert type(info.value) is ForecasterError and info.value.__cause__ is error
    guard.assert_unchanged()


def _file_per_series(root: Path, names: list[str], fmt: str) -> Path:
    """A project whose ``data/`` holds one file per series, named ``names``, without an id
    column: ``source.id_from_filename = "id"`` names the series."""
    (root / "data").mkdir(parents=True)
    for k, name in enumerate(names):
        days = [FIRST + dt.timedelta(days=i) for i in range(12)]
        frame = pl.DataFrame({"date": days, "y": [10.0 * k + i for i in range(12)]})
        if fmt == "parquet":
            frame.write_parquet(root / "data" / name)
        else:
            text = frame.write_csv().encode()
            (root / "data" / name).write_bytes(gzip.compress(text) if ".gz" in name else text)
    (root / "pipelines").mkdir()
    spec = root / "pipelines" / "spec.toml"
    source = {"path": "data/*", "format": fmt, "id_from_filename": "id"}
    spec.write_text(mini_spec(source=source))
    return spec


@pytest.mark.parametrize(
    ("names", "fmt", "ids"),
    [
        (["shop.north.csv", "shop.south.csv"], "csv", ["shop.north", "shop.south"]),
        (["BRK.A.csv", "BRK.B.CSV.gz"], "csv", ["BRK.A", "BRK.B"]),
        (["BRK.A.parquet", "BRK.B.pq"], "parquet", ["BRK.A", "BRK.B"]),
        (["v1.2", "v1.3"], "csv", ["v1.2", "v1.3"]),  # no csv extension: kept whole
    ],
)
def test_id_from_filename_strips_only_the_formats_extension(tmp_path, names, fmt, ids):
    # was: everything after the first dot dropped: shop.north and shop.south merged into one
    # series "shop"; BRK.A and BRK.B both "BRK", refused as duplicates
    spec, root = load_spec(_file_per_series(tmp_path, names, fmt))
    frame, _ = prepare_data(spec, root, None)
    counts = frame.group_by("id").len().sort("id")
    assert counts["id"].to_list() == ids and counts["len"].to_list() == [12, 12]


def test_id_from_filename_naming_a_column_of_the_data_exits_3(tmp_path, capsys, tree_guard):
    # was: the file names silently replaced the data's own id column
    spec = project(tmp_path)
    text = spec.read_text().replace('format = "csv"', 'format = "csv"\nid_from_filename = "id"')
    spec.write_text(text)
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 3, err
    assert "source.id_from_filename = 'id'" in err and "already have a column 'id'" in err
    assert "Traceback" not in err
    guard.assert_unchanged()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_time_format_that_fits_iso_dates_reads_them(tmp_path, fmt):
    # was: "invalid series dtype: expected String, got date" (the CSV reader had parsed the
    # ISO dates already, then time_format parsed them again)
    spec_file = _file_per_series(tmp_path, [f"a.{fmt}", f"b.{fmt}"], fmt)
    text = spec_file.read_text().replace("[source]", '[source]\ntime_format = "%Y-%m-%d"')
    spec_file.write_text(text)
    spec, root = load_spec(spec_file)
    if fmt == "parquet":  # typed dates: nothing to parse, so the key is refused, not ignored
        with pytest.raises(SpecError, match=r"'source\.time_format' .* is of type Date"):
            prepare_data(spec, root, None)
        return
    frame, when = prepare_data(spec, root, None)
    assert frame["date"].dtype == pl.Date and when.label == "2024-01-12"  # was: Datetime
    assert frame["date"].max() == LAST and frame.height == 24
    if fmt == "csv":  # a day-first format reads dates; a time of day reads datetimes
        dated = _file_per_series(tmp_path / "dmy", [f"a.{fmt}", f"b.{fmt}"], fmt)
        for path in (tmp_path / "dmy" / "data").glob("*.csv"):
            head, *lines = path.read_text().splitlines()
            day_first = ["/".join(reversed(x[:10].split("-"))) + x[10:] for x in lines]
            path.write_text("\n".join([head, *day_first]) + "\n")
        dated.write_text(
            dated.read_text().replace("[source]", '[source]\ntime_format = "%d/%m/%Y"')
        )
        spec, root = load_spec(dated)
        assert prepare_data(spec, root, None)[0]["date"].dtype == pl.Date
    if fmt == "csv":  # a format that does not fit the text is still named
        spec_file.write_text(text.replace("%Y-%m-%d", "%d/%m/%Y"))
        spec, root = load_spec(spec_file)
        with pytest.raises(DataValidationError, match=r"source\.time_format"):
            prepare_data(spec, root, None)


def test_a_bad_wait_is_a_spec_error(tmp_path):
    spec = project(tmp_path)
    for wait in (-1, float("nan"), float("inf"), "5", True):
        with pytest.raises(SpecError, match="wait must be"):
            pipelines.run_pipeline(spec, wait=wait, log=lambda line: None)


def test_data_errors_keep_their_type(tmp_path):
    spec = project(tmp_path, data="id,date,y\n")
    with warnings.catch_warnings(), pytest.raises(DataValidationError, match="no data rows"):
        pipelines.run_pipeline(spec, log=lambda line: None)


# ------------------------------------------------------------------------------------------
# series that end before the as-of: named in a warning and in summary.json
# ------------------------------------------------------------------------------------------


def _uneven(ends: dict[str, int]) -> str:
    """Daily rows from FIRST, ``ends[key]`` of them per series."""
    lines = ["id,date,y"]
    for k, (key, n) in enumerate(ends.items()):
        lines += [f"{key},{FIRST + dt.timedelta(days=i)},{10 * k + i + 0.5}" for i in range(n)]
    return "\n".join(lines) + "\n"


def test_series_ending_before_the_as_of_are_named_by_run_predict_and_backtest(
    tmp_path, capsys, tree_guard
):
    # was: forecasts dated months before the as-of (NDX 2001, GOOG 2008 as of 2018), no word
    spec = project(tmp_path, data=_uneven({"a": 12, "b": 9}))
    guard = tree_guard(tmp_path, allowed=OWN)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 0, err
    message = "1 series ends before the as-of 2024-01-12"
    assert message in err and "b (last 2024-01-09)" in err, err
    assert "before the frame's last time" not in err  # named once, not again by predict
    summary = json.loads(
        (tmp_path / "outputs" / "mini" / "2024-01-12" / "summary.json").read_text()
    )
    assert summary["stale_series"] == {"b": "2024-01-09"} and summary["stale_series_count"] == 1
    model = str(tmp_path / "outputs" / "mini" / "2024-01-12" / "model")
    code, _, err = cli(capsys, "predict", str(spec), "--model", model)
    assert code == 0 and message in err and "b (last 2024-01-09)" in err, err
    assert "before the frame's last time" not in err
    code, _, err = cli(capsys, "backtest", str(spec), "--folds", "1")  # fits before the fold
    assert code == 0 and message in err, err
    guard.assert_unchanged()


@settings(max_examples=25, deadline=None)
@given(ends=st.lists(st.integers(min_value=7, max_value=12), min_size=1, max_size=6))
def test_every_series_ending_before_the_as_of_is_counted(tmp_path_factory, ends):
    root = tmp_path_factory.mktemp("stale")
    names = {f"s{i}": n for i, n in enumerate(ends)}
    spec, root = load_spec(project(root, data=_uneven(names)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, when = prepare_data(spec, root, None)
    stale = {key: str(FIRST + dt.timedelta(days=n - 1)) for key, n in names.items()}
    stale = {key: end for key, end in stale.items() if names[key] < max(ends)}
    assert dict(when.stale) == stale and when.stale_count == len(stale)
    assert when.effective == str(FIRST + dt.timedelta(days=max(ends) - 1))
    named = [str(w.message) for w in caught if re.match(r"\d+ series ends? before", str(w.message))]
    assert len(named) == (1 if stale else 0)


# ------------------------------------------------------------------------------------------
# the as-of label is the effective as-of: the same rows always give the same run
# ------------------------------------------------------------------------------------------


def test_midnight_datetimes_spelled_two_ways_are_one_run(tmp_path, capsys, tree_guard):
    # was: --as-of 2024-01-10 and 2024-01-10T00:00 on daily datetimes wrote two folders
    spec = project(
        tmp_path, data=rows([f"{FIRST + dt.timedelta(days=i)}T00:00:00" for i in range(12)])
    )
    guard = tree_guard(tmp_path, allowed=OWN)
    assert cli(capsys, "run", str(spec), "--as-of", "2024-01-10")[0] == 0
    code, _out, err = cli(capsys, "run", str(spec), "--as-of", "2024-01-10T00:00")
    assert code == 0 and "already exist" in err, err
    folders = [p.name for p in (tmp_path / "outputs" / "mini").iterdir() if p.name[0] != "."]
    assert folders == ["2024-01-10"]
    guard.assert_unchanged()


def test_dates_that_select_the_same_rows_are_one_run(tmp_path, capsys, tree_guard):
    # business days: Friday, Saturday and Sunday select the same rows (was: three folders)
    days = [FIRST + dt.timedelta(days=i) for i in range(21)]
    weekdays = [str(d) for d in days if d.weekday() < 5]  # 2024-01-12 is a Friday
    spec = project(tmp_path, data=rows(weekdays))
    spec.write_text(spec.read_text().replace('targets = ["y"]', 'targets = ["y"]\nfreq = "1bd"'))
    guard = tree_guard(tmp_path, allowed=OWN)
    assert cli(capsys, "run", str(spec), "--as-of", "2024-01-12")[0] == 0
    for text in ("2024-01-13", "20240114"):
        code, _out, err = cli(capsys, "run", str(spec), "--as-of", text)
        assert code == 0 and "outputs for mini as of 2024-01-12 already exist" in err, err
        assert "warning" not in err  # inside the data: no warning, just the same rows
    folders = [p.name for p in (tmp_path / "outputs" / "mini").iterdir() if p.name[0] != "."]
    assert folders == ["2024-01-12"]
    summary = json.loads(
        (tmp_path / "outputs" / "mini" / "2024-01-12" / "summary.json").read_text()
    )
    assert summary["requested_as_of"] == "2024-01-12" and summary["effective_as_of"] == "2024-01-12"
    guard.assert_unchanged()


@settings(max_examples=25, deadline=None)
@given(hour=st.integers(min_value=0, max_value=71), minute=st.integers(0, 59))
def test_the_label_is_the_last_time_selected(tmp_path_factory, hour, minute):
    spec, root = _datetime_project(tmp_path_factory.mktemp("label"))
    moment = dt.datetime(2024, 1, 1) + dt.timedelta(hours=hour, minutes=minute)
    frame, when = prepare_data(spec, root, moment.isoformat())
    last = frame["date"].max()
    assert last == moment.replace(minute=0)
    assert when.label == pipelines.as_of_label(last) and ":" not in when.label
    again = prepare_data(spec, root, last.isoformat())[1]
    assert again.label == when.label  # the same rows, the same run


def test_an_ambiguous_local_time_gets_its_offset():
    # 02:00 happens twice in Berlin on 2024-10-27 (clocks go back at 03:00 CEST): two runs
    utc = [dt.datetime(2024, 10, 26, 23, tzinfo=dt.UTC) + dt.timedelta(hours=i) for i in range(3)]
    local = pl.Series(utc).cast(pl.Datetime("us", "Europe/Berlin"))
    labels = [pipelines.as_of_label(moment) for moment in local]
    assert labels == [
        "2024-10-27T01-00-00",
        "2024-10-27T02-00-00+0200",
        "2024-10-27T02-00-00+0100",
    ]


# ------------------------------------------------------------------------------------------
# run_pipeline's arguments: used as documented, or refused naming them
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("force", "no", "force must be True or False, got str 'no'"),
        ("dry_run", "false", "dry_run must be True or False, got str 'false'"),
        ("resume", 1, "resume must be True or False, got int 1"),
        ("progress", None, "progress must be True or False, got NoneType None"),
        ("tune", "yes", "tune must be True, False or None, got str 'yes'"),
        ("as_of", True, "as_of must be an ISO date"),
        ("as_of", 2.5, "as_of must be an ISO date"),
        ("log", None, "log must be a callable"),
        ("log", "print", "log must be a callable"),
        ("wait", "5", "wait must be"),
    ],
)
def test_run_pipeline_refuses_arguments_of_the_wrong_type(
    tmp_path, tree_guard, argument, value, message
):
    # was: force="no" replaced outputs, dry_run="false" did a dry run, log=None a "bug"
    spec = project(tmp_path)
    guard = tree_guard(tmp_path)
    kwargs = {"log": lambda line: None, argument: value}
    with pytest.raises(SpecError, match=re.escape(message)):
        pipelines.run_pipeline(spec, **kwargs)
    guard.assert_unchanged()


@pytest.mark.parametrize("value", [None, b"pipelines/spec.toml", 3, ""])
def test_run_pipeline_refuses_a_spec_path_that_is_no_path(tmp_path, tree_guard, value):
    guard = tree_guard(tmp_path)
    with pytest.raises(SpecError, match="spec_path"):
        pipelines.run_pipeline(value, log=lambda line: None)
    guard.assert_unchanged()


def test_tickers_empty_list_exits_2_naming_the_key(tmp_path, capsys, tree_guard):
    # was: exit 3 "pass None", impossible in TOML
    spec = project(tmp_path)
    text = spec.read_text().replace(
        'path = "data/*.csv"\nformat = "csv"', 'dataset = "stocks"\ntickers = []'
    )
    spec.write_text(text)
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec), "--dry-run")
    assert code == 2 and "key 'source.tickers'" in err and "at least one ticker" in err, err
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# path-valued keys: relative to the project root (never the working directory), inside it
# ------------------------------------------------------------------------------------------


def test_paths_are_relative_to_the_project_not_the_working_directory(
    tmp_path, capsys, tree_guard, monkeypatch
):
    # was: checkpoint_dir = "ckpt" wrote ./ckpt in the working directory, and it stayed
    project_root = tmp_path / "project"
    spec = project(project_root, model='checkpoint_dir = "ckpt"')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    guard = tree_guard(tmp_path, allowed=("project/outputs", "project/models", "project/ckpt"))
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 0, err
    assert not (elsewhere / "ckpt").exists() and not (project_root / "ckpt").exists()
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("section", "line", "key", "message"),
    [
        ("model", 'checkpoint_dir = "../ckpt"', "model.checkpoint_dir", "points outside"),
        ("model", 'checkpoint_dir = "/tmp/forecaster-ckpt"', "model.checkpoint_dir", "outside"),
        ("model", 'checkpoint_dir = "~/ckpt"', "model.checkpoint_dir", "points outside"),
        ("model", 'checkpoint_dir = "data"', "model.checkpoint_dir", "would read the files"),
        ("model", 'checkpoint_dir = "x\\u0000y"', "model.checkpoint_dir", "NUL"),
        ("model", f'checkpoint_dir = "{"c" * 300}"', "model.checkpoint_dir", "300 bytes"),
        ("model", 'checkpoint_dir = "outputs/mini/x/ck"', "model.checkpoint_dir", "of a run"),
        ("training", 'storage = "sqlite:///../studies.db"', "training.storage", "outside"),
        ("training", 'storage = "sqlite:////tmp/x/optuna.db"', "training.storage", "outside"),
        ("training", 'storage = "sqlite:///data/x.csv"', "training.storage", "would read"),
        ("training", 'storage = "sqlite:///a\\u0000b"', "training.storage", "NUL"),
        ("training", 'storage = "sqlite:///outputs/mini/x/o.db"', "training.storage", "of a run"),
        ("output", 'dir = "outputs/\\u0000{as_of}"', "output.dir", "NUL"),
        ("output", f'dir = "outputs/{"o" * 300}/{{as_of}}"', "output.dir", "300 bytes"),
        ("output", f'dir = "outputs/{{name}}/{"o" * 230}{{as_of}}"', "output.dir", "a name can"),
    ],
)
def test_path_valued_keys_that_cannot_work_exit_2_naming_the_key(
    tmp_path, capsys, tree_guard, monkeypatch, section, line, key, message
):
    # was: resolved against the working directory, unchecked; a NUL "Unexpected ValueError";
    # a name over 255 bytes exit 1 with a raw OSError
    monkeypatch.setenv("HOME", str(tmp_path.parent))
    spec = project(tmp_path, source="data/*", **{section: line})
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2 and f"'{key}'" in err and message in err, err
    assert "Traceback" not in err and "Unexpected" not in err
    guard.assert_unchanged()


def test_a_tilde_in_a_spec_path_is_the_home_folder(tmp_path, capsys, tree_guard, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the project is the home folder here
    spec = project(tmp_path, output='dir = "~/results/{name}/{as_of}"')
    guard = tree_guard(tmp_path, allowed=("results", "models"))
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 0, err
    assert (tmp_path / "results" / "mini" / "2024-01-12" / "forecasts.parquet").is_file()
    assert not any(p.name == "~" for p in tmp_path.rglob("*"))
    guard.assert_unchanged()


@pytest.mark.parametrize(
    "folder", ["outputs/mini/2024-01-12/ckpt", "outputs/mini/2024-01-12", "models/m", "models/m/c"]
)
def test_checkpoint_dir_inside_a_folder_forecaster_wrote_exits_2_at_load(
    tmp_path, capsys, tree_guard, folder
):
    # was: checkpoints written into a run's outputs or a model folder, breaking its manifest
    spec = project(tmp_path)
    assert cli(capsys, "run", str(spec))[0] == 0
    assert cli(capsys, "fit", str(spec), "--out", str(tmp_path / "models" / "m"))[0] == 0
    text = spec.read_text().replace(
        "random_state = 0", f'random_state = 0\ncheckpoint_dir = "{folder}"'
    )
    spec.write_text(text)
    guard = tree_guard(tmp_path)
    with pytest.raises(SpecError, match=r"key 'model\.checkpoint_dir'.*folder forecaster wrote"):
        load_spec(spec)
    code, _, err = cli(capsys, "run", str(spec), "--force")
    assert code == 2 and "'model.checkpoint_dir'" in err, err
    guard.assert_unchanged()


def test_checkpoint_dir_inside_this_runs_output_folder_exits_2(tmp_path, capsys, tree_guard):
    spec = project(tmp_path, model='checkpoint_dir = "outputs/mini/2024-01-12/ckpt"')
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2 and "'model.checkpoint_dir'" in err and "is inside" in err, err
    guard.assert_unchanged()


def test_resume_with_checkpoints_of_other_data_starts_from_scratch(
    tmp_path, capsys, tree_guard, monkeypatch
):
    # was: the checkpoints of a failed run stayed, and the next day's --resume exited 1
    # "written for other data"; a scheduler that always passes --resume was stuck
    spec = project(tmp_path, model='checkpoint_dir = "ckpt"')

    def fail(*args, **kwargs):
        raise ForecasterError("the backtest failed")

    with monkeypatch.context() as patch:
        patch.setattr(pipelines, "_evaluate", fail)
        code, _, err = cli(capsys, "run", str(spec), "--as-of", "2024-01-11")
    assert code == 1 and list((tmp_path / "ckpt").iterdir()), err
    guard = tree_guard(tmp_path, allowed=(*OWN, "ckpt"))
    code, _out, err = cli(capsys, "run", str(spec), "--resume")
    assert code == 0, err
    assert "cannot resume from the checkpoint in" in err and "training from the start" in err
    assert not (tmp_path / "ckpt").exists()  # removed on success, whatever the folder
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# the project root comes from the spec path as given
# ------------------------------------------------------------------------------------------


def test_a_linked_pipelines_folder_serves_the_project_that_links_it(
    tmp_path, capsys, tree_guard, monkeypatch
):
    # was: projW/pipelines -> projZ/pipelines read projZ's data and planned projZ's outputs
    theirs = tmp_path / "projZ"
    project(theirs)
    mine = tmp_path / "projW"
    (mine / "data").mkdir(parents=True)
    (mine / "data" / "prices.csv").write_text(_uneven({"w": 12}))
    (mine / "pipelines").symlink_to(theirs / "pipelines")
    monkeypatch.chdir(mine)
    assert load_spec("pipelines/spec.toml")[1] == mine
    guard = tree_guard(tmp_path)
    code, _out, err = cli(capsys, "run", "pipelines/spec.toml", "--dry-run")
    assert code == 0, err
    assert f"write {mine / 'outputs' / 'mini' / '2024-01-12'}" in err  # the plan: a step
    assert "n_series=1" in err  # projW's one series, not projZ's two
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# [output] levels (issue 13): bad values before any data is read, calibration that the data
# cannot hold fails cleanly, and intervals never change the point forecasts
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "levels", ["[80, 150]", "[95, 80]", "[80, 80.0]", '"80"', "[inf]", "[-0.0]", "[[80]]"]
)
def test_bad_levels_exit_2_naming_the_key_before_reading_data(tmp_path, capsys, tree_guard, levels):
    spec = project(tmp_path, output=f"levels = {levels}", data="not,a,csv\n")
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2, err
    assert "key 'output.levels'" in err and "in increasing order" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    guard.assert_unchanged()


def test_levels_that_the_data_cannot_calibrate_exit_3_and_write_nothing(
    tmp_path, capsys, tree_guard
):
    # 95 % over 2 series needs 10 folds of 2 steps: 12 rows per series hold fewer
    spec = project(tmp_path, output="levels = [95]")
    guard = tree_guard(tmp_path, allowed=OWN)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 3, err
    assert "Cannot calibrate the intervals of [output] levels = ['95']" in err, err
    assert "10 origins of 2 steps" in err
    guard.assert_unchanged()
    assert not list((tmp_path / "outputs").rglob("*.parquet"))


@pytest.mark.slow
def test_levels_add_intervals_and_scores_without_changing_the_point_forecast(tmp_path, capsys):
    days = [str(FIRST + dt.timedelta(days=i)) for i in range(40)]
    data = rows(days)
    outputs = {}
    for name, output in (("plain", ""), ("levels", "levels = [80, 95]")):
        root = tmp_path / name
        spec = project(root, output=output, data=data)
        text = spec.read_text().replace("backtest_folds = 0", "backtest_folds = 2")
        spec.write_text(text.replace("plot_series = 0", "plot_series = 2"))
        code, _, err = cli(capsys, "run", str(spec))
        assert code == 0, err
        outputs[name] = root / "outputs" / "mini" / "2024-02-09"
    plain = pl.read_parquet(outputs["plain"] / "forecasts.parquet")
    banded = pl.read_parquet(outputs["levels"] / "forecasts.parquet")
    scheduled = ("origin", "stale_steps")  # [series] schedule columns, with or without levels
    plain_columns = [c for c in plain.columns if c not in scheduled]
    assert plain_columns == ["id", "date", "y", "model_version", "run_id"]
    bounds = ["y_lo_80", "y_hi_80", "y_lo_95", "y_hi_95"]
    banded_columns = [c for c in banded.columns if c not in scheduled]
    assert banded_columns == ["id", "date", "y", *bounds, "model_version", "run_id"]
    assert banded["y"].to_list() == plain["y"].to_list()  # intervals leave the point alone
    assert (banded["y_lo_95"] <= banded["y_lo_80"]).all()
    assert (banded["y_lo_80"] <= banded["y"]).all() and (banded["y"] <= banded["y_hi_80"]).all()
    assert (banded["y_hi_80"] <= banded["y_hi_95"]).all()
    summary = json.loads((outputs["levels"] / "summary.json").read_text())
    for level in (80, 95):
        for score in ("coverage", "width", "winkler", "msis"):
            assert f"backtest_{score}_{level}" in summary["metrics"], summary["metrics"]
    assert 0 <= summary["metrics"]["backtest_coverage_95"] <= 1
    assert not any(
        "coverage" in k
        for k in json.loads((outputs["plain"] / "summary.json").read_text())["metrics"]
    )
    assert (outputs["levels"] / "forecast.png").stat().st_size > 0


@pytest.mark.parametrize(
    "levels",
    [
        '"80, 95"',  # a string
        "[[80], [95]]",  # nested lists
        "true",
        "[true, 95]",  # a bool inside
        "[0]",
        "[100]",
        "[nan]",
        "[80, 95, 80]",  # duplicates
        "[95.5, 95]",  # unsorted
        "[]",
        "{ lo = 80 }",  # a table
        '[80, "95"]',
        "1e400",
        "80",
    ],
)
def test_more_bad_levels_exit_2_naming_the_key_and_change_nothing(
    tmp_path, capsys, tree_guard, levels
):
    spec = project(tmp_path, output=f"levels = {levels}", data="not,a,csv\n")
    guard = tree_guard(tmp_path)
    with pytest.raises(SpecError, match=r"key 'output\.levels'.*in increasing order"):
        load_spec(spec)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2 and str(spec) in err and "key 'output.levels'" in err, err
    assert "Traceback" not in err
    guard.assert_unchanged()


# [evaluation] metrics and training.objective with interval scores: exit 2 naming the key,
# before the data is read (the data here is not CSV: reading it would be exit 3)
BAD_SCORES = {
    'metrics = ["coverage_95"]': ("[80]", "evaluation.metrics", "95 % interval"),
    'metrics = ["msis_80"]': (None, "evaluation.metrics", "levels is not set"),
    'metrics = ["scrps"]': (None, "evaluation.metrics", "levels is not set"),
    'metrics = ["coverage_nan"]': ("[80]", "evaluation.metrics", "expected one of"),
    'metrics = ["coverage_-5"]': ("[80]", "evaluation.metrics", "expected one of"),
    'metrics = ["coverage_100"]': ("[80]", "evaluation.metrics", "not in (1, 100)"),
    'metrics = ["coverage_0.8"]': ("[80]", "evaluation.metrics", "not in (1, 100)"),
    'metrics = ["COVERAGE_80"]': ("[80]", "evaluation.metrics", "expected one of"),
    'metrics = ["pinball", "pinball"]': ("[80]", "evaluation.metrics", "each metric once"),
    'metrics = [["mae"]]': (None, "evaluation.metrics", "expected one of"),
    "metrics = [true]": (None, "evaluation.metrics", "expected one of"),
    'metrics = { a = "mae" }': (None, "evaluation.metrics", "expected a list"),
}


@pytest.mark.parametrize("line", list(BAD_SCORES))
def test_bad_interval_metrics_exit_2_naming_the_key(tmp_path, capsys, tree_guard, line):
    levels, key, message = BAD_SCORES[line]
    spec = project(tmp_path, output=f"levels = {levels}" if levels else "", data="not,a,csv\n")
    spec.write_text(spec.read_text().replace("backtest_folds = 0", f"backtest_folds = 1\n{line}"))
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2 and str(spec) in err and f"key '{key}" in err and message in err, err
    guard.assert_unchanged()


BAD_OBJECTIVES = {
    '"coverage_80"': "cannot rank models",
    '"width_80"': "cannot rank models",
    '"rmse"': "a point score is not a tuning objective",
    '"winkler_95"': "95 % interval",
    '"pinball "': "expected one of",
    '""': "expected one of",
    "0.5": "expected one of",
    '["pinball"]': "expected one of",
    "true": "expected one of",
}


@pytest.mark.parametrize("value", list(BAD_OBJECTIVES))
def test_bad_tuning_objectives_exit_2_naming_the_key(tmp_path, capsys, tree_guard, value):
    spec = project(
        tmp_path,
        model={"loss": "quantile"},
        training=f"objective = {value}",
        output="levels = [80]",
        data="not,a,csv\n",
    )
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec), "--tune")
    assert code == 2 and "key 'training.objective'" in err, err
    assert BAD_OBJECTIVES[value] in err, err
    guard.assert_unchanged()


@pytest.mark.slow
def test_a_run_with_levels_is_serialised_like_any_run(tmp_path, capsys, tree_guard):
    # the concurrent case without processes (see test_hostile_concurrency_runs.py): while the
    # lock is held, a run with levels exits 4 before it fits or calibrates; once the outputs
    # are written, a second run finds them (exit 0, skipped) and changes nothing
    from forecaster import _io

    days = [str(FIRST + dt.timedelta(days=i)) for i in range(30)]
    spec = project(tmp_path, output="levels = [80]", data=rows(days))
    lock = tmp_path / "outputs" / "mini" / ".2024-01-30.lock"
    lock.parent.mkdir(parents=True)
    guard = tree_guard(tmp_path, allowed=("outputs/mini/.2024-01-30.lock",))
    with _io.exclusive_lock(lock):
        code, _, err = cli(capsys, "run", str(spec))
    assert code == 4 and "error: busy" in err, err
    guard.assert_unchanged()
    code, out, err = cli(capsys, "run", str(spec))
    assert code == 0 and "calibrate conformal intervals" in err, err
    guard = tree_guard(tmp_path)
    code, out, err = cli(capsys, "run", str(spec))
    assert code == 0 and "calibrate" not in out + err, (out, err)
    guard.assert_unchanged()
    forecasts = pl.read_parquet(tmp_path / "outputs" / "mini" / "2024-01-30" / "forecasts.parquet")
    assert {"y_lo_80", "y_hi_80"} <= set(forecasts.columns)


# ------------------------------------------------------------------------------------------
# [series] max_staleness, stale and holidays: exit 2 naming the key, before the data is read
# ------------------------------------------------------------------------------------------

BAD_SCHEDULE = {
    'stale = "sometimes"': "series.stale",
    "max_staleness = -1": "series.max_staleness",
    'max_staleness = "five"': "series.max_staleness",
    "max_staleness = 1.5": "series.max_staleness",
    'holidays = ["someday"]': "series.holidays",
    'holidays = "2024-01-01"': "series.holidays",
    "holidays = [2024-01-01]": "series.holidays",  # freq "auto": not business days
    'freq = "1d"\nholidays = [2024-01-01]': "series.holidays",
    'freq = "1bd"\nholidays = [2024-01-01, 2024-01-01]': "series.holidays",
    'freq = "1bd"\nholidays = [2024-01-01]\nfuture_covariates = ["x"]': "series.holidays",
}


@pytest.mark.parametrize("calendar", [["dayofweek"], "dayofyear", "auto"])
@pytest.mark.parametrize("command", ["run --dry-run", "fit", "predict", "backtest"])
def test_holidays_with_calendar_features_exit_2_naming_both_keys(
    tmp_path, capsys, tree_guard, calendar, command
):
    """was: accepted; the model computed each step's calendar features on its weekday grid
    (holidays included) and the run dated the step past the holidays: Friday's value was
    published as Monday's, silently."""
    (tmp_path / "pipelines").mkdir()
    spec = tmp_path / "pipelines" / "spec.toml"
    series = 'freq = "1bd"\nholidays = [2024-01-01]'
    model = {"calendar": calendar}
    spec.write_text(mini_spec(source={"path": "none/*.csv"}, series=series, model=model))
    guard = tree_guard(tmp_path)
    model_dir = ["--model", str(tmp_path)] if command == "predict" else []
    code, _, err = cli(capsys, *command.split(), str(spec), *model_dir)
    assert code == 2, err
    assert "key 'series.holidays' cannot be used with model.calendar" in err, err
    assert "Remove series.holidays, or model.calendar." in err, err
    if calendar == "auto":
        assert "['dayofweek', 'dayofyear'] (what calendar = 'auto' adds)" in err, err
    guard.assert_unchanged()


@pytest.mark.parametrize("lines", list(BAD_SCHEDULE))
def test_bad_schedule_keys_exit_2_naming_the_key_before_reading_data(
    tmp_path, capsys, tree_guard, lines
):
    (tmp_path / "pipelines").mkdir()
    spec = tmp_path / "pipelines" / "spec.toml"
    spec.write_text(mini_spec(source={"path": "none/*.csv"}, series=lines))  # no data: exit 3
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 2, err
    assert str(spec) in err and f"'{BAD_SCHEDULE[lines]}'" in err, err
    guard.assert_unchanged()


@pytest.mark.parametrize("command", ["fit", "predict", "backtest", "tune"])
def test_every_command_checks_the_model_keys_before_reading_data(
    tmp_path, capsys, tree_guard, command
):
    spec = project(tmp_path, source="none/*.csv", model='max_epochs = "two"')
    spec.write_text(spec.read_text().replace("max_epochs = 1\n", ""))
    guard = tree_guard(tmp_path)
    extra = ["--model", str(tmp_path / "m")] if command == "predict" else []
    code, _, err = cli(capsys, command, str(spec), *extra)
    assert code == 2 and "key 'model.max_epochs'" in err and str(spec) in err, err
    guard.assert_unchanged()


def test_stale_series_never_get_forecasts_dated_before_the_as_of_silently(tmp_path, capsys):
    # was: forecasts dated days before the as-of, with no column to tell them apart
    spec = project(tmp_path, data=_uneven({"a": 12, "b": 11}))  # b: 1 step behind
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 0 and "b (last 2024-01-11) 1 step behind" in err, err
    (path,) = (tmp_path / "outputs" / "mini").glob("*/forecasts.parquet")
    early = pl.read_parquet(path).filter(pl.col("date") <= LAST)
    assert early.height and early["stale_steps"].to_list() == [1] * early.height
    assert set(early["id"]) == {"b"} and set(early["origin"]) == {dt.date(2024, 1, 11)}


def test_a_future_covariate_step_given_twice_is_refused_not_picked(tmp_path, capsys):
    lines = ["id,date,y,promo"]
    for key in ("a", "b"):
        lines += [f"{key},{FIRST + dt.timedelta(days=i)},{i % 4 + 0.5},{i % 2}" for i in range(12)]
        lines += [f"{key},2024-01-13,,1", f"{key},2024-01-14,,0"]
    lines.append("b,2024-01-14,,5")  # the same step again, another value
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "prices.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "pipelines").mkdir()
    spec = tmp_path / "pipelines" / "spec.toml"
    spec.write_text(mini_spec(series={"future_covariates": ["promo"]}))
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 3 and "2 rows of the source after the as-of share" in err, err
    assert "share their (id, date)" in err and "2024, 1, 14" in err and "fitted" not in err


@pytest.mark.parametrize(
    ("url", "prepare", "message"),
    [
        ("sqlite://rel.db", None, "is an in-memory SQLite database"),
        ("sqlite:///:memory:", None, "is an in-memory SQLite database"),
        ("sqlite:///studies", "folder", "is a folder, not a database file"),
        ("sqlite:///notes.db", "text", "is not a SQLite database"),
        ("sqlite:///a/b/optuna.db", None, "does not exist"),
    ],
)
def test_a_storage_that_tune_refuses_is_refused_by_the_dry_run_too(
    tmp_path, capsys, tree_guard, url, prepare, message
):
    """The dry run said yes to storages the run then refused (it checked only the URL's
    scheme): now both refuse them when the spec loads, naming the key, before any data."""
    spec = project(tmp_path, training=f'storage = "{url}"')
    if prepare == "folder":
        (tmp_path / "studies").mkdir()
    elif prepare == "text":
        (tmp_path / "notes.db").write_text("my notes")
    guard = tree_guard(tmp_path)
    for args in (["run", str(spec), "--tune", "--dry-run"], ["tune", str(spec)]):
        code, _, err = cli(capsys, *args)
        assert code == 2 and "key 'training.storage'" in err and message in err, (args, err)
    guard.assert_unchanged()  # the notes file too


# ------------------------------------------------------------------------------------------
# columns named like a backtest's output columns; source.tickers of the stocks data set
# ------------------------------------------------------------------------------------------

RESERVED_NAMES = [("time", "step"), ("target", "fold"), ("id", "n"), ("id", "model")]


@pytest.mark.parametrize(("role", "new"), RESERVED_NAMES)
def test_a_column_named_like_a_backtest_output_is_refused_before_any_fit(
    tmp_path, capsys, monkeypatch, role, new
):
    # was: accepted by --dry-run; `run` exited 3 after the fit (with --tune after the whole
    # tuning), `backtest --level 80` after the fit of its interval clone; an id named like a
    # column of the scores ("n") or of result.folds ("model", a polars SchemaError) too
    from forecaster.estimators import RNNForecaster

    header = {"time": "id,step,y", "id": f"{new},date,y", "target": "id,date,fold"}[role]
    spec = project(tmp_path, data=rows().replace("id,date,y", header, 1))
    series = {"time": {"time": new}, "id": {"id": new}, "target": {"targets": [new]}}[role]
    sections = {"source": {"path": "data/*.csv"}, "series": series}
    spec.write_text(mini_spec(**sections, evaluation={"backtest_folds": 2}))  # type: ignore[arg-type]

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before the columns were checked")

    monkeypatch.setattr(RNNForecaster, "fit", no_fit)
    commands = [("run", "--dry-run"), ("run",), ("run", "--tune"), ("backtest", "--level", "80")]

    def refused(*command: str) -> None:
        code, _, err = cli(capsys, *command, str(spec))
        # a name every backtest and calibrate refuse is the spec's fault, as fit refuses it:
        # exit 2 when the spec is read (was: exit 3 from the backtest's check of the data)
        assert code == (3 if new == "n" else 2), (command, err)
        scores = f"The id column '{new}' has the name of a column of the backtest's scores"
        assert (scores if new == "n" else f"Columns ['{new}'] clash with the output") in err, err
        assert new != "n" or "[series] id" in err, err  # how a spec renames it
        assert "Use longer series" not in err, err

    for command in commands:
        refused(*command)
    # no backtest, but levels: the calibration backtests (was: refused after the fit, with
    # "Use longer series, lower levels or a shorter horizon"); it scores nothing, so an id
    # named like a score ("n") calibrates (it was refused too)
    spec.write_text(mini_spec(**sections, output={"plot_series": 0, "levels": [80]}))  # type: ignore[arg-type]
    if new != "n":
        refused("run")
        return
    code, _, err = cli(capsys, "run", "--dry-run", str(spec))
    assert code == 0, err
    assert not list((tmp_path / "outputs").rglob("*.parquet"))
    monkeypatch.undo()
    # without a backtest nothing clashes: the run writes its outputs
    spec.write_text(mini_spec(**sections))  # type: ignore[arg-type]
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 0, err


def test_covariates_named_like_a_backtests_output_columns_run(tmp_path, capsys):
    """Covariates named ``fold`` and ``step`` (copies of y) were refused by the backtest and
    the calibration ("clash with the output columns of a backtest"), though no output frame
    holds a covariate: a run that backtests and calibrates writes its outputs."""
    lines = rows([str(FIRST + dt.timedelta(days=i)) for i in range(40)]).splitlines()
    copies = [f"{line},{y},{y}" for line in lines[1:] for y in [line.rsplit(",", 1)[1]]]
    spec = project(tmp_path, data="\n".join([lines[0] + ",fold,step", *copies]) + "\n")
    series = {"covariates": ["fold", "step"]}
    sections = {"source": {"path": "data/*.csv"}, "series": series}
    output = {"plot_series": 0, "levels": [80]}
    spec.write_text(mini_spec(**sections, evaluation={"backtest_folds": 2}, output=output))  # type: ignore[arg-type]
    code, _, err = cli(capsys, "run", str(spec))
    assert code == 0, err
    assert list((tmp_path / "outputs").rglob("*.parquet"))


def stocks_spec(root: Path, tickers: list[str]) -> Path:
    (root / "pipelines").mkdir(parents=True, exist_ok=True)
    spec = root / "pipelines" / "spec.toml"
    spec.write_text(
        mini_spec(
            source={"path": None, "format": None, "dataset": "stocks", "tickers": tickers},
            series={"id": "ticker", "time": "date", "targets": ["close"]},
        )
    )
    return spec


@pytest.mark.parametrize(
    ("tickers", "message"),
    [
        (["SPX", "FOO"], r"Unknown ticker\(s\) \['FOO'\]\. Available tickers: GOOG, .*SPX"),
        (["SPX", "SPX"], r"Ticker 'SPX' is listed more than once \(again as 'SPX'"),
        (["SPX", " spx"], r"Ticker 'SPX' is listed more than once \(again as ' spx'; .*case"),
    ],
    ids=["unknown", "twice", "twice-in-other-case"],
)
def test_source_tickers_unknown_or_twice_exit_2_naming_the_key(
    tmp_path, capsys, tree_guard, tickers, message
):
    # was: exit 3 "invalid data: Unknown ticker(s) ['FOO']" (no key named); a ticker listed
    # twice was read once, under another spec hash than the list without it
    spec = stocks_spec(tmp_path, tickers)
    guard = tree_guard(tmp_path)
    code, _, err = cli(capsys, "run", str(spec), "--dry-run")
    assert code == 2 and "key 'source.tickers'" in err, err
    assert re.search(message, err), err
    guard.assert_unchanged()


def test_source_tickers_are_matched_ignoring_case_as_load_stocks_does(tmp_path):
    spec, _ = load_spec(stocks_spec(tmp_path, ["spx", "MSFT "]))
    assert spec.source.tickers == ["spx", "MSFT "]

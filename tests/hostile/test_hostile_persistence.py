"""Hostile saved models: whatever was changed in a model folder (a byte of any file, a value
of the wrong JSON type at any level, a file from another model, a newer format), ``load``
refuses it with a ``ModelFormatError`` that names the file and what is wrong, never another
exception and never a silently different model; and neither ``load`` nor a refused ``save``
changes anything outside the model's own folder.

Every case checks, with ``tree_guard``, that nothing outside the files the case itself wrote
changed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forecaster
from forecaster import _io
from forecaster.persistence import FORMAT_VERSION, ModelFormatError

N = 40


def panel(seed: int = 0, n_series: int = 2) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "id": np.repeat([f"s{i}" for i in range(n_series)], N),
            "time": np.tile(np.arange(N), n_series),
            "y": rng.normal(size=N * n_series).cumsum(),
        }
    )


def tiny(**overrides: object) -> forecaster.RNNForecaster:
    params: dict[str, object] = {
        "target": "y",
        "id_col": "id",
        "lookback": 8,
        "horizon": 2,
        "hidden_size": 4,
        "segment_length": 4,
        "max_epochs": 1,
        "random_state": 0,
        "progress": False,
    }
    params.update(overrides)
    return forecaster.RNNForecaster(**params)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return panel()


@pytest.fixture(scope="module")
def saved(frame: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny().fit(frame).save(tmp_path_factory.mktemp("hostile-persistence") / "model")


@pytest.fixture(scope="module")
def saved_regressor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(32, 6, 2)).astype(np.float32)
    model = forecaster.RNNRegressor(hidden_size=4, max_epochs=1, random_state=0)
    return model.fit(X, X[:, -1, 0]).save(tmp_path_factory.mktemp("hostile-regressor") / "r")


@pytest.fixture
def model_copy(saved: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "model"))


def resign(folder: Path) -> None:
    """Forge the manifest for the files now in the folder, so the deeper checks are reached."""
    details = json.loads((folder / "manifest.json").read_text())["details"]
    (folder / "manifest.json").unlink()
    _io.write_manifest(folder, "model", details)


def edit_config(folder: Path, edit: Callable[[dict], object]) -> None:
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    resign(folder)


def refused(folder: Path, match: str) -> str:
    """Load ``folder``, expecting a ModelFormatError matching ``match``; return its message."""
    with pytest.raises(ModelFormatError, match=match) as info:
        forecaster.load(folder)
    return str(info.value)


# ------------------------------------------------------------------------------------------
# a changed byte anywhere
# ------------------------------------------------------------------------------------------

FILES = ["config.json", "weights.safetensors", "state.safetensors", "keys.parquet", "manifest.json"]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    file=st.sampled_from(FILES),
    where=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    flip=st.integers(min_value=1, max_value=255),
    truncate=st.booleans(),
)
def test_a_changed_or_truncated_byte_in_any_file_is_refused_by_name(
    saved: Path, tmp_path: Path, tree_guard, file: str, where: float, flip: int, truncate: bool
) -> None:
    folder = tmp_path / "flip"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(saved, folder)
    data = bytearray((folder / file).read_bytes())
    position = int(where * len(data))
    if truncate:
        del data[position:]
    else:
        data[position] ^= flip
    (folder / file).write_bytes(bytes(data))
    guard = tree_guard(tmp_path)
    with pytest.raises(ModelFormatError) as info:
        forecaster.load(folder)
    assert file in str(info.value), str(info.value)
    guard.assert_unchanged()


def test_a_regressor_with_a_changed_state_byte_is_refused(
    saved_regressor: Path, tmp_path: Path, tree_guard
) -> None:
    folder = Path(shutil.copytree(saved_regressor, tmp_path / "r"))
    data = bytearray((folder / "state.safetensors").read_bytes())
    data[-1] ^= 0x40  # the last byte of x_scale: a value, not the header
    (folder / "state.safetensors").write_bytes(bytes(data))
    guard = tree_guard(tmp_path)
    refused(folder, r"state.safetensors does not match its sha256 in manifest.json")
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# values of the wrong JSON type, at any level (with a forged manifest)
# ------------------------------------------------------------------------------------------

POOLED_TERM = {"m": 2, "drift": False, "level": False, "coefficients": [0.5]}
"""A term of a saved pooled blend (``baseline.blend.terms``), the seasonal naive of period 2."""

WRONG_TYPES: dict[str, tuple[Callable[[dict], object], str]] = {
    "format-a-list": (lambda c: c.update(format=["forecaster-model"]), "another format"),
    "params-a-list": (lambda c: c.update(params=[1, 2]), "parameters are list, not a dict"),
    "lookback-a-string": (
        lambda c: c["params"].update(lookback="8"),
        r"parameters in config.json are invalid \(lookback must be an integer",
    ),
    "lookback-a-bool": (
        lambda c: (c["params"].update(lookback=True), c["network"].update(lookback=True)),
        r"parameters in config.json are invalid \(lookback must be an integer",
    ),
    "hidden-size-absurd": (
        lambda c: (c["params"].update(hidden_size=10**12), c["network"].update(hidden_size=10**12)),
        r"parameters in config.json are invalid \(hidden_size must be",
    ),
    "network-hidden-size-a-float": (
        lambda c: c["network"].update(hidden_size=4.0),
        r"network configuration in config.json is invalid \(hidden_size must be an integer",
    ),
    "network-members-a-string": (
        lambda c: c["network"].update(n_members="1"),
        r"disagree \(n_members 1 vs network '1'\)",
    ),
    "n-series-a-float": (lambda c: c.update(n_series=2.0), r"n_series is 2.0; expected an integer"),
    "n-series-negative": (lambda c: c.update(n_series=-2), r"n_series is -2; expected an integer"),
    "scaler-a-list": (lambda c: c.update(scaler=[]), "scaler state in config.json is list"),
    "scaler-columns-numbers": (
        lambda c: c["scaler"].update(columns=[1]),
        r"scaler.columns is \[1\]; expected a list of names",
    ),
    "calendar-a-dict": (lambda c: c.update(calendar={"a": 1}), "calendar is {'a': 1}"),
    "schema-values-numbers": (
        lambda c: c.update(schema={"id": 1}),
        "schema in config.json is not a mapping of column to dtype",
    ),
    "history-a-dict": (lambda c: c.update(history={}), "history in config.json is not a list"),
    "history-rows-numbers": (lambda c: c.update(history=[1, 2]), "history in config.json"),
    "windows-huge": (
        lambda c: c.update(n_val_windows=10**40),
        r"n_val_windows is 10{40}; expected an integer",
    ),
    "freq-a-number": (lambda c: c.update(freq=7), "the frequency is invalid"),
    "baseline-a-list": (
        lambda c: c.update(baseline=[1]),
        r"the baseline entry is \[1\]; expected blend and validation",
    ),
    "baseline-weight-off-the-grid": (
        lambda c: c["baseline"].update(blend={"m": 1, "weights": [0.3]}),
        r"baseline.blend.weights is \[0.3\]; expected 1 of \(1.0, 0.75, 0.5, 0.25, 0.0\)",
    ),
    "baseline-weights-per-target-count": (
        lambda c: c["baseline"].update(blend={"m": 1, "weights": [0.5, 0.5]}),
        r"baseline.blend.weights is \[0.5, 0.5\]; expected 1 of",
    ),
    "baseline-m-a-string": (
        lambda c: c["baseline"].update(blend={"m": "24", "weights": [0.5]}),
        r"baseline.blend.m is '24'; expected an integer >= 1",
    ),
    "baseline-m-beyond-lookback": (
        lambda c: c["baseline"].update(blend={"m": 99, "weights": [0.5]}),
        r"baseline.blend.m is 99: m is beyond lookback=8",
    ),
    "baseline-drift-a-string": (
        lambda c: c["baseline"].update(blend={"m": 2, "weights": [0.5], "drift": "yes"}),
        r"baseline.blend.drift is 'yes'; expected true or false",
    ),
    "baseline-drift-beyond-lookback": (
        lambda c: c["baseline"].update(blend={"m": 5, "weights": [0.5], "drift": True}),
        r"baseline.blend.m is 5: 2 \* m \(with drift or level\) is beyond lookback=8",
    ),
    "baseline-level-a-number": (
        lambda c: c["baseline"].update(blend={"m": 2, "weights": [0.5], "level": 1}),
        r"baseline.blend.level is 1; expected true or false",
    ),
    "baseline-level-beyond-lookback": (
        lambda c: c["baseline"].update(blend={"m": 5, "weights": [0.5], "level": True}),
        r"baseline.blend.m is 5: 2 \* m \(with drift or level\) is beyond lookback=8",
    ),
    "baseline-blend-unknown-key": (
        lambda c: c["baseline"].update(blend={"m": 2, "weights": [0.5], "trend": True}),
        r"baseline.blend is .*; expected network and terms \(or, saved before the pooled blend, "
        r"m, weights, drift and level\)",
    ),
    "baseline-pooled-coefficients-off-one": (
        lambda c: c["baseline"].update(
            blend={"network": [0.5], "terms": [{**POOLED_TERM, "coefficients": [0.25]}]}
        ),
        r"baseline.blend's coefficients sum to \[0.75\] per target; expected 1",
    ),
    "baseline-pooled-coefficient-negative": (
        lambda c: c["baseline"].update(
            blend={"network": [1.5], "terms": [{**POOLED_TERM, "coefficients": [-0.5]}]}
        ),
        r"baseline.blend.network is \[1.5\]; expected 1 numbers in \[0, 1\]",
    ),
    "baseline-pooled-term-beyond-lookback": (
        lambda c: c["baseline"].update(
            blend={"network": [0.5], "terms": [{**POOLED_TERM, "m": 9, "coefficients": [0.5]}]}
        ),
        r"baseline.blend.terms\[0\].m is 9: m is beyond lookback=8",
    ),
    "baseline-report-without-skill": (
        lambda c: c["baseline"].update(validation={"model": 1.0}),
        r"baseline.validation is \{'model': 1.0\}; expected a report",
    ),
    "baseline-report-skill-a-string": (
        lambda c: c["baseline"].update(validation={"skill": "inf"}),
        r"baseline.validation is \{'skill': 'inf'\}; expected a report",
    ),
    "estimator-a-list": (lambda c: c.update(estimator=["RNNForecaster"]), "unknown estimator"),
    "format-version-a-float": (
        lambda c: c.update(format_version=3.0),
        "invalid format_version 3.0",
    ),
}


@pytest.mark.parametrize("case", list(WRONG_TYPES))
def test_a_config_value_of_the_wrong_type_is_refused(
    case: str, model_copy: Path, tmp_path: Path, tree_guard
) -> None:
    edit, match = WRONG_TYPES[case]
    edit_config(model_copy, edit)
    guard = tree_guard(tmp_path)
    message = refused(model_copy, match)
    assert str(model_copy) in message
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (b'{"format": NaN}', "NaN is not a JSON value"),
        (b'{"format": Infinity}', "Infinity is not a JSON value"),
        (b"[" * 5000 + b"]" * 5000, "nested deeper than 64 levels"),
        (b"", "not valid JSON"),
        (b'"forecaster-model"', "another format"),
    ],
    ids=["nan", "infinity", "deep", "empty", "a-string"],
)
def test_a_config_that_is_not_plain_json_is_refused(
    text: bytes, match: str, model_copy: Path, tmp_path: Path, tree_guard
) -> None:
    (model_copy / "config.json").write_bytes(text)
    resign(model_copy)
    guard = tree_guard(tmp_path)
    message = refused(model_copy, match)
    assert "config.json" in message
    guard.assert_unchanged()


def test_a_regressor_state_of_the_wrong_type_is_refused(
    saved_regressor: Path, tmp_path: Path, tree_guard
) -> None:
    folder = Path(shutil.copytree(saved_regressor, tmp_path / "r"))
    edit_config(folder, lambda c: c["regressor"].update(y_ndim=True, y_mean="0.5"))
    guard = tree_guard(tmp_path)
    refused(folder, r"regressor.y_mean in config.json is '0.5'; expected a finite number")
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# files of several models, formats
# ------------------------------------------------------------------------------------------


def test_weights_and_manifest_of_another_model_are_refused(
    model_copy: Path, frame: pl.DataFrame, tmp_path: Path, tree_guard
) -> None:
    """Weights (and a manifest vouching for them) copied from a model of another size."""
    other = tiny(hidden_size=6).fit(frame).save(tmp_path / "other")
    for name in ("weights.safetensors", "manifest.json"):
        shutil.copy(other / name, model_copy / name)
    guard = tree_guard(tmp_path)
    refused(model_copy, r"config.json does not match its sha256 in manifest.json")
    guard.assert_unchanged()
    resign(model_copy)  # a forged manifest: the weights still do not fit the network
    guard = tree_guard(tmp_path)
    refused(model_copy, r"weights in weights.safetensors do not match the network configuration")
    guard.assert_unchanged()


def test_a_newer_format_in_the_manifest_asks_to_upgrade(
    model_copy: Path, tmp_path: Path, tree_guard
) -> None:
    manifest = json.loads((model_copy / "manifest.json").read_text())
    (model_copy / "manifest.json").unlink()
    details = {**manifest["details"], "format_version": FORMAT_VERSION + 1}
    _io.write_manifest(model_copy, "model", details)
    edit_config(model_copy, lambda c: c.update(format_version=FORMAT_VERSION + 1))
    guard = tree_guard(tmp_path)
    refused(model_copy, rf"written with model format {FORMAT_VERSION + 1} .*Upgrade forecaster")
    guard.assert_unchanged()


def test_an_ensemble_round_trips_and_its_member_count_is_checked(
    frame: pl.DataFrame, tmp_path: Path, tree_guard
) -> None:
    model = tiny(n_ensemble=2).fit(frame)
    folder = model.save(tmp_path / "ensemble")
    assert forecaster.load(folder).predict(frame).equals(model.predict(frame))
    edit_config(
        folder, lambda c: (c["params"].update(n_ensemble=3), c["network"].update(n_members=3))
    )
    guard = tree_guard(tmp_path)
    refused(folder, r"missing tensors \['members.2.")
    guard.assert_unchanged()


def test_a_box_cox_model_keeps_its_lambdas_in_the_state_file(tmp_path: Path, tree_guard) -> None:
    frame = panel(1).with_columns(pl.col("y").abs() + 1)
    model = tiny(target_transform="boxcox").fit(frame)
    folder = model.save(tmp_path / "boxcox")
    assert "target_lambdas" not in json.loads((folder / "config.json").read_text())
    loaded = forecaster.load(folder)
    np.testing.assert_array_equal(loaded.target_lambdas_, model.target_lambdas_)
    assert loaded.predict(frame).equals(model.predict(frame))
    edit_config(folder, lambda c: c["params"].update(target_transform="log"))
    guard = tree_guard(tmp_path)
    refused(folder, r"state.safetensors does not hold .*unexpected tensors \['target_lambdas'\]")
    guard.assert_unchanged()


def test_a_format_2_model_with_an_edited_config_loads_with_the_documented_warning(
    tmp_path: Path, tree_guard
) -> None:
    """Format 2 did not cover config.json: an edited scaler cannot be noticed. It loads with a
    warning that says so and how to upgrade (documented, not refused)."""
    folder = Path(
        shutil.copytree(Path(__file__).parents[1] / "fixtures" / "model_format2", tmp_path / "m")
    )
    config = json.loads((folder / "config.json").read_text())
    config["scaler"]["center"][0][0] += 1.0
    (folder / "config.json").write_text(json.dumps(config))
    guard = tree_guard(tmp_path)
    with pytest.warns(forecaster.ForecasterWarning, match=r"not integrity-checked.*Save the model"):
        forecaster.load(folder)
    guard.assert_unchanged()


class BytesPath:
    """An os.PathLike whose path is bytes (os.fspath gives b'model')."""

    def __fspath__(self) -> bytes:
        return b"model"


NOT_PATHS = {
    "None": (None, r"got None \(a NoneType\)"),
    "int": (123, r"got 123 \(a int\)"),
    "bytes": (b"m", r"got b'm' \(a bytes\)"),
    "bytes-pathlike": (BytesPath(), r"\(a BytesPath\)"),
    "list": (["m"], r"\(a list\)"),
    "empty": ("", "is an empty path"),
    "nul": ("a\x00b", "contains a NUL character"),
}


@pytest.mark.parametrize("call", ["model.save", "forecaster.save", "forecaster.load"])
@pytest.mark.parametrize("case", list(NOT_PATHS))
def test_a_path_argument_that_is_no_path_is_our_error_naming_it(
    case: str, call: str, saved_regressor: Path, tmp_path: Path, tree_guard, monkeypatch
) -> None:
    """Regression: ``save(None)``, ``save(123)``, ``save(b"m")`` and ``load(None)`` raised a
    raw TypeError, ``save("a\\x00b")`` a raw ValueError."""
    value, match = NOT_PATHS[case]
    model = forecaster.load(saved_regressor)
    monkeypatch.chdir(tmp_path)
    guard = tree_guard(tmp_path)
    with pytest.raises(forecaster.DataValidationError, match=rf"^path\b.*{match}") as info:
        if call == "model.save":
            model.save(value)
        elif call == "forecaster.save":
            forecaster.save(model, value)
        else:
            forecaster.load(value)
    if case not in ("empty", "nul"):
        assert "str or os.PathLike" in str(info.value)
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda k: k.with_columns(pl.col("__train_end__").cast(pl.Utf8)), "as Int64"),
        (
            lambda k: k.with_columns(pl.lit(None, pl.Int64).alias("__train_end__")),
            "1 nulls|2 nulls",
        ),
        (lambda k: k.with_columns(pl.lit(1).alias("colour")), r"has the columns \['id'"),
    ],
    ids=["text", "nulls", "extra-column"],
)
def test_keys_with_a_forged_last_fitted_time_are_refused(
    change: Callable[[pl.DataFrame], pl.DataFrame],
    match: str,
    model_copy: Path,
    tmp_path: Path,
    tree_guard,
) -> None:
    """The last fitted time of each series (``train_end_``, which ``score`` checks held-out
    steps against) travels in keys.parquet; a forged column of another type is refused."""
    keys = pl.read_parquet(model_copy / "keys.parquet")
    change(keys).write_parquet(model_copy / "keys.parquet")
    resign(model_copy)
    guard = tree_guard(tmp_path)
    with pytest.raises(ModelFormatError, match=match):
        forecaster.load(model_copy)
    guard.assert_unchanged()


# ------------------------------------------------------------------------------------------
# a hand-edited calibration
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_calibrated(frame: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tiny().fit(frame.filter(pl.col("time") < 20))
    model.calibrate(frame, folds=6, step=2, rolling=3, origins="calendar")  # aligned series
    return model.save(tmp_path_factory.mktemp("hostile-calibrated") / "model")


@pytest.mark.parametrize(
    "edit",
    [
        {"normalize": "yes"},
        {"normalize": True},
        {"per_series": 1},
        {"window": 0},
        {"window": 2.5},
        {"window": True},
        {"window": 10**19},  # would overflow NumPy at predict
        {"ends": False},  # a window without the windows' ends
    ],
    ids=lambda edit: "-".join(f"{k}={v}" for k, v in edit.items()),
)
def test_an_edited_calibration_entry_is_refused(saved_calibrated: Path, tmp_path: Path, edit):
    folder = Path(shutil.copytree(saved_calibrated, tmp_path / "model"))
    edit_config(folder, lambda config: config["conformal"].update(edit))
    refused(folder, "calibration")


def test_a_calibrated_model_round_trips(saved_calibrated: Path, frame: pl.DataFrame):
    loaded = forecaster.load(saved_calibrated)
    assert loaded.conformal_["window"] == 3 and loaded.conformal_["normalize"] == "series"
    assert (np.diff(loaded.conformal_["ends"]) >= 0).all()
    assert {"y_lo_80", "y_hi_80"} <= set(loaded.predict(frame, level=80).columns)

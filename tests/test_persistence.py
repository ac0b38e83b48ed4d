"""Tests for forecaster.persistence: round trips, fresh-process reloads, the on-disk format,
atomic writes, overwrite safety and clear errors for every kind of broken model directory."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import safetensors
import safetensors.numpy
import safetensors.torch
import torch
from conftest import edit_saved_config, resign_manifest

import forecaster
import forecaster.persistence as persistence
from forecaster import (
    DataValidationError,
    ForecasterWarning,
    LSTMForecaster,
    ModelFormatError,
    NotFittedError,
    RNNForecaster,
    RNNRegressor,
    _io,
)
from forecaster.exceptions import OwnershipError
from forecaster.persistence import FORMAT, FORMAT_VERSION, ModelSaveError
from forecaster.persistence.migration import PARAMS_ADDED

N = 96
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny networks: thread start-up costs more than it saves (and CI cores may be busy)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_frame(seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    parts = []
    for k, name in enumerate(["alpha", "beta"]):
        parts.append(
            pl.DataFrame(
                {
                    "id": [name] * N,
                    "time": t,
                    "y": 10 * k + np.sin(2 * np.pi * t / 12 + k) + 0.1 * rng.normal(size=N),
                    "x": rng.normal(size=N),
                }
            )
        )
    return pl.concat(parts)


def make_forecaster(**overrides: object) -> RNNForecaster:
    params: dict[str, object] = {
        "target": "y",
        "id_col": "id",
        "covariates": ["x"],
        "lookback": 24,
        "horizon": 6,
        "hidden_size": 8,
        "segment_length": 6,
        "max_epochs": 2,
        "random_state": 0,
        "progress": False,
    }
    params.update(overrides)
    return RNNForecaster(**params)  # type: ignore[arg-type]


def regressor_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(48, 12, 2)).astype(np.float32)
    y = np.stack([X[:, -1, 0], X[:, -2, 1], X[:, -1, 0] + X[:, -3, 1]], axis=1)
    return X, y


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def fitted(frame: pl.DataFrame) -> RNNForecaster:
    return make_forecaster().fit(frame)


@pytest.fixture(scope="module")
def regressor() -> RNNRegressor:
    X, y = regressor_data()
    return RNNRegressor(hidden_size=8, max_epochs=2, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def saved(fitted: RNNForecaster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return forecaster.save(fitted, tmp_path_factory.mktemp("saved") / "model")


@pytest.fixture
def model_copy(saved: Path, tmp_path: Path) -> Path:
    """A private copy of the saved forecaster to corrupt."""
    return Path(shutil.copytree(saved, tmp_path / "copy"))


def fitted_attributes(estimator: object) -> set[str]:
    return {k for k in vars(estimator) if k.endswith("_") and not k.startswith("__")}


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert sa[name].dtype == sb[name].dtype, name
        assert torch.equal(sa[name], sb[name]), name


# ------------------------------------------------------------------------------------------
# round trips
# ------------------------------------------------------------------------------------------


def test_forecaster_round_trip_is_exact(
    fitted: RNNForecaster, frame: pl.DataFrame, tmp_path: Path
) -> None:
    before = fitted.predict(frame)
    fitted.save(str(tmp_path / "m"))
    loaded = forecaster.load(tmp_path / "m")
    assert type(loaded) is RNNForecaster
    assert loaded.predict(frame).equals(before)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.history_ == fitted.history_
    assert loaded.scaler_.to_dict() == fitted.scaler_.to_dict()
    assert loaded.scaler_.keys_.equals(fitted.keys_)  # transform finds series by id
    assert loaded.keys_.equals(fitted.keys_) and loaded.keys_.schema == fitted.keys_.schema
    assert str(loaded.freq_) == str(fitted.freq_)
    assert loaded.schema_ == fitted.schema_
    assert loaded.n_train_windows_ == fitted.n_train_windows_
    assert loaded.n_val_windows_ == fitted.n_val_windows_
    assert fitted_attributes(loaded) == fitted_attributes(fitted)
    assert loaded.val_loss_ == fitted.val_loss_ is not None  # tune and tracking read it
    assert loaded.train_end_.equals(fitted.train_end_)  # score's in-sample check needs it
    assert_same_state(loaded.network_, fitted.network_)
    assert not loaded.network_.training


def test_load_draws_nothing_from_the_callers_torch_generator(
    fitted: RNNForecaster, saved: Path, frame: pl.DataFrame
) -> None:
    """A load builds the network without initialising it at random (the saved weights replace
    it): the caller's seeded draws (and a concurrent fit's in another thread) are as without
    the load, and the loaded tensors are ordinary trainable CPU float32 tensors."""
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    loaded = forecaster.load(saved)
    assert torch.equal(torch.rand(3), expected)
    tensors = list(loaded.network_.parameters())
    assert {(t.device.type, t.dtype, t.requires_grad) for t in tensors} == {
        ("cpu", torch.float32, True)
    }
    assert loaded.predict(frame).equals(fitted.predict(frame))


def test_an_ensemble_cut_short_by_max_time_loads_as_it_was_fitted(
    frame: pl.DataFrame, tmp_path: Path
) -> None:
    """max_time ended the ensemble after its first member (n_members_ 1 of n_ensemble 3):
    the folder loads and forecasts as the model did (load refused the member count)."""
    X, y = regressor_data()
    models = [
        RNNRegressor(hidden_size=8, max_epochs=2, n_ensemble=3, max_time=1e-6, random_state=0),
        make_forecaster(n_ensemble=3, max_time=1e-6),
    ]
    for model, data in zip(models, [(X, y), (frame,)], strict=True):
        with pytest.warns(ForecasterWarning, match="max_time"):
            model.fit(*data)
        assert model.n_members_ == 1
        loaded = forecaster.load(forecaster.save(model, tmp_path / type(model).__name__))
        assert loaded.n_members_ == 1 and loaded.n_ensemble == 3
        before, after = model.predict(data[0]), loaded.predict(data[0])
        assert (
            np.array_equal(before, after)
            if isinstance(before, np.ndarray)
            else after.equals(before)
        )


def test_forecaster_round_trip_with_a_cutoff(
    fitted: RNNForecaster, frame: pl.DataFrame, saved: Path
) -> None:
    loaded = forecaster.load(saved)
    assert loaded.predict(frame, cutoff=70).equals(fitted.predict(frame, cutoff=70))


def test_fixed_cell_subclass_and_single_series_datetime_round_trip(tmp_path: Path) -> None:
    start = datetime(2024, 1, 1)
    times = pl.datetime_range(start, start.replace(day=5), "1h", eager=True).head(N)
    rng = np.random.default_rng(1)
    single = pl.DataFrame({"ts": times, "load": rng.normal(size=N).cumsum()})
    model = LSTMForecaster(
        target="load",
        time_col="ts",
        lookback=24,
        horizon=6,
        hidden_size=8,
        max_epochs=1,
        random_state=0,
        progress=False,
    ).fit(single)
    model.save(str(tmp_path / "lstm"))
    loaded = forecaster.load(tmp_path / "lstm")
    assert type(loaded) is LSTMForecaster
    assert loaded.get_params() == model.get_params()
    assert loaded.network_.cell == "lstm"
    assert str(loaded.freq_) == "1h"
    prediction = loaded.predict(single)
    assert prediction.equals(model.predict(single))
    assert prediction.columns == ["ts", "load"]


@pytest.mark.parametrize("one_d", [False, True], ids=["2d-y", "1d-y"])
def test_regressor_round_trip_is_exact(one_d: bool, tmp_path: Path) -> None:
    X, y = regressor_data()
    model = RNNRegressor(hidden_size=8, max_epochs=2, random_state=0)
    model.fit(X, y[:, 0] if one_d else y)
    forecaster.save(model, tmp_path / "r")
    loaded = forecaster.load(str(tmp_path / "r"))
    assert type(loaded) is RNNRegressor
    expected = model.predict(X)
    assert expected.shape == ((48,) if one_d else (48, 3))
    np.testing.assert_array_equal(loaded.predict(X), expected)
    assert loaded.get_params() == model.get_params()
    assert loaded.history_ == model.history_
    for name in ("x_mean_", "x_scale_", "y_mean_", "y_scale_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    for name in ("y_mean_", "y_scale_"):  # a float for 1-D y, one per output for 2-D y
        assert np.shape(getattr(loaded, name)) == (() if one_d else (3,)), name
    for name in ("n_features_in_", "n_channels_", "lookback_", "horizon_"):
        assert getattr(loaded, name) == getattr(model, name), name
    assert fitted_attributes(loaded) == fitted_attributes(model)
    assert_same_state(loaded.network_, model.network_)


def test_a_regressor_saved_with_one_moment_for_all_outputs_loads_and_predicts_as_before(
    regressor: RNNRegressor, tmp_path: Path
) -> None:
    """Models fitted on a 2-D y before each output had its own moments saved one float for all
    outputs: they load with it and predict as they did (network output * scale + mean)."""
    X, _ = regressor_data()
    folder = forecaster.save(regressor, tmp_path / "r")
    edit_saved_config(folder, lambda c: c["regressor"].update(y_mean=2.5, y_scale=4.0))
    loaded = forecaster.load(folder)
    assert loaded.y_mean_ == 2.5 and loaded.y_scale_ == 4.0
    per_output = regressor.predict(X)
    standardised = (per_output - regressor.y_mean_) / regressor.y_scale_
    np.testing.assert_allclose(loaded.predict(X), standardised * 4.0 + 2.5, rtol=1e-6, atol=1e-6)
    edit_saved_config(folder, lambda c: c["regressor"].update(y_scale=[1.0, 2.0]))
    with pytest.raises(ModelFormatError, match=r"y_scale in config.json holds 2 numbers.*horizon"):
        forecaster.load(folder)
    edit_saved_config(folder, lambda c: c["regressor"].update(y_scale=[1.0, 2.0, None]))
    with pytest.raises(ModelFormatError, match=r"y_scale .* expected a finite number"):
        forecaster.load(folder)
    edit_saved_config(folder, lambda c: c["regressor"].update(y_scale=[1.0, 2.0, 0.0]))
    with pytest.raises(ModelFormatError, match=r"y_scale or y_ndim in config.json is out of"):
        forecaster.load(folder)


def test_regressor_fitted_on_a_dataframe_keeps_its_feature_names(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    X, y = regressor_data()
    frame_x = pd.DataFrame(X[:, :, 0], columns=[f"lag_{i}" for i in range(12)])
    model = RNNRegressor(hidden_size=8, max_epochs=1, random_state=0).fit(frame_x, y[:, 0])
    model.save(str(tmp_path / "r"))
    loaded = forecaster.load(tmp_path / "r")
    np.testing.assert_array_equal(loaded.feature_names_in_, model.feature_names_in_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "fitted without feature names" warning
        np.testing.assert_array_equal(loaded.predict(frame_x), model.predict(frame_x))


@pytest.mark.slow
def test_fresh_process_predicts_identically(
    fitted: RNNForecaster,
    regressor: RNNRegressor,
    frame: pl.DataFrame,
    saved: Path,
    tmp_path: Path,
) -> None:
    X, _ = regressor_data()
    forecaster.save(regressor, tmp_path / "reg")
    frame.write_parquet(tmp_path / "frame.parquet")
    np.save(tmp_path / "X.npy", X)
    code = (
        "import sys, numpy as np, polars as pl, torch, forecaster\n"
        "torch.set_num_threads(int(sys.argv[1]))\n"
        "model = forecaster.load(sys.argv[2])\n"
        "model.predict(pl.read_parquet(sys.argv[3])).write_parquet(sys.argv[4])\n"
        "reg = forecaster.load(sys.argv[5])\n"
        "np.save(sys.argv[7], reg.predict(np.load(sys.argv[6])))\n"
    )
    args = [
        str(torch.get_num_threads()),
        str(saved),
        str(tmp_path / "frame.parquet"),
        str(tmp_path / "forecast.parquet"),
        str(tmp_path / "reg"),
        str(tmp_path / "X.npy"),
        str(tmp_path / "reg_pred.npy"),
    ]
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert pl.read_parquet(tmp_path / "forecast.parquet").equals(fitted.predict(frame))
    np.testing.assert_array_equal(np.load(tmp_path / "reg_pred.npy"), regressor.predict(X))


def test_save_function_and_method_write_the_same_model(
    fitted: RNNForecaster, frame: pl.DataFrame, tmp_path: Path
) -> None:
    returned = forecaster.save(fitted, str(tmp_path / "by_function"))
    assert returned == tmp_path / "by_function"
    fitted.save(tmp_path / "by_method")  # a Path works too
    a = json.loads((tmp_path / "by_function" / "config.json").read_text())
    b = json.loads((tmp_path / "by_method" / "config.json").read_text())
    assert a == b
    assert (tmp_path / "by_function" / "weights.safetensors").read_bytes() == (
        tmp_path / "by_method" / "weights.safetensors"
    ).read_bytes()
    assert forecaster.load(tmp_path / "by_method").predict(frame).equals(fitted.predict(frame))


def test_provenance_is_recorded_with_the_model_and_read_back(
    fitted: RNNForecaster, frame: pl.DataFrame, tmp_path: Path
) -> None:
    from forecaster.persistence import saved_provenance

    made = {"features": {"log_returns": ["y"], "mfcc": None}}
    folder = fitted.save(tmp_path / "with", provenance=made)
    assert saved_provenance(folder) == made
    assert forecaster.load(folder).predict(frame).equals(fitted.predict(frame))
    plain = fitted.save(tmp_path / "without")
    assert saved_provenance(plain) is None  # as every model saved before it
    assert (plain / "config.json").read_bytes() == (folder / "config.json").read_bytes()
    assert saved_provenance(tmp_path / "nowhere") is None
    with pytest.raises(forecaster.DataValidationError, match="provenance must be a mapping"):
        fitted.save(tmp_path / "bad", provenance={"path": tmp_path})
    assert not (tmp_path / "bad").exists()


def test_save_creates_missing_parent_directories(regressor: RNNRegressor, tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "model"
    forecaster.save(regressor, target)
    assert (target / "config.json").is_file()


# ------------------------------------------------------------------------------------------
# the on-disk format
# ------------------------------------------------------------------------------------------


def _strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_saved_directory_contents(fitted: RNNForecaster, saved: Path) -> None:
    assert sorted(p.name for p in saved.iterdir()) == [
        "config.json",
        "keys.parquet",
        "manifest.json",
        "state.safetensors",
        "weights.safetensors",
    ]
    config = _strict_json((saved / "config.json").read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    assert config["format"] == FORMAT == "forecaster-model"
    assert config["format_version"] == FORMAT_VERSION
    assert config["package_version"] == forecaster.__version__
    assert config["estimator"] == "RNNForecaster"
    # quantiles=None (a point model) and static_covariates=None are not written: its files
    # stay those of before they existed (so are linear_skip=False and ema_decay=None; their
    # defaults are now "auto", written with the choice: ema_decay in the config)
    assert config["params"] == {
        k: v
        for k, v in fitted.get_params(deep=False).items()
        if k not in ("quantiles", "static_covariates")
    }
    assert config["params"]["ema_decay"] == "auto"
    assert config["ema_decay"] == fitted.ema_decay_ is None  # a few batches per epoch
    assert config["network"] == fitted.network_.get_config()
    assert config["history"] == fitted.history_
    with safetensors.safe_open(str(saved / "weights.safetensors"), framework="pt") as weights:
        assert set(weights.keys()) == set(fitted.network_.state_dict())
        assert weights.metadata() == {"format": FORMAT}
    assert (saved / "keys.parquet").read_bytes()[:4] == b"PAR1"
    keys = pl.read_parquet(saved / "keys.parquet")
    assert keys.drop(persistence.TRAIN_END).equals(fitted.keys_)
    assert keys[persistence.TRAIN_END].equals(fitted.train_end_, check_names=False)
    # the arrays that grow with the series are tensors, not JSON
    assert config["scaler"] == {"method": "standard", "columns": ["y", "x"]}
    assert config["n_series"] == 2
    state = safetensors.numpy.load_file(str(saved / "state.safetensors"))
    assert set(state) == {"scaler.center", "scaler.scale", "scaler.n_fit_rows"}
    np.testing.assert_array_equal(state["scaler.center"], fitted.scaler_.center_)
    assert state["scaler.n_fit_rows"].dtype == np.int64


def test_config_size_does_not_grow_with_the_number_of_series(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sizes = {}
    for n_series in (2, 200):
        frame = pl.DataFrame(
            {
                "id": np.repeat([f"s{i}" for i in range(n_series)], 40),
                "time": np.tile(np.arange(40), n_series),
                "y": rng.normal(size=40 * n_series),
            }
        )
        model = make_forecaster(covariates=None, lookback=8, horizon=2, max_epochs=1)
        folder = model.fit(frame).save(tmp_path / f"m{n_series}")
        sizes[n_series] = (folder / "config.json").stat().st_size
    assert abs(sizes[200] - sizes[2]) < 64  # only n_series' digits and the timings differ


def test_regressor_directory_has_no_keys_file(regressor: RNNRegressor, tmp_path: Path) -> None:
    folder = forecaster.save(regressor, tmp_path / "r")
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "manifest.json",
        "state.safetensors",
        "weights.safetensors",
    ]
    config = _strict_json((folder / "config.json").read_text(encoding="utf-8"))
    assert config["estimator"] == "RNNRegressor"  # type: ignore[index]


def test_save_and_load_never_pickle(
    fitted: RNNForecaster, frame: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle / torch.load / torch.save must not be used")

    for name in ("load", "loads", "dump", "dumps", "Unpickler", "Pickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(torch, "save", forbidden)
    fitted.save(str(tmp_path / "m"))
    loaded = forecaster.load(tmp_path / "m")
    monkeypatch.undo()
    assert loaded.predict(frame).equals(fitted.predict(frame))
    assert not [p for p in (tmp_path / "m").rglob("*") if p.suffix in {".pkl", ".pickle", ".pt"}]


def test_persistence_source_mentions_no_pickle_or_torch_load() -> None:
    package = Path(persistence.__file__).parent
    sources = [*package.glob("*.py"), package.parent / "estimators" / "state.py"]
    assert len(sources) > 2
    for path in sources:
        source = path.read_text(encoding="utf-8")
        code = source.split('"""', 2)[2]  # skip the module docstring, which says "no pickle"
        assert "import pickle" not in code and "pickle." not in code, path
        # safetensors' load / load_file parse tensors only; torch.load would unpickle
        assert re.search(r"(?<!safetensors\.)\btorch\.load\s*\(", code) is None, path


# ------------------------------------------------------------------------------------------
# atomic writes and overwrite safety
# ------------------------------------------------------------------------------------------


def test_saving_over_a_model_replaces_it(
    fitted: RNNForecaster, frame: pl.DataFrame, tmp_path: Path
) -> None:
    other = make_forecaster(random_state=1).fit(frame)
    # different networks (their forecasts may both be the seasonal naive that the baseline
    # check blends a 2-epoch network into, so the weights are compared)
    weights = lambda model: next(iter(model.network_.state_dict().values()))  # noqa: E731
    assert not torch.equal(weights(other), weights(fitted))
    target = tmp_path / "model"
    fitted.save(str(target))
    other.save(str(target))
    loaded = forecaster.load(target)
    assert torch.equal(weights(loaded), weights(other))
    assert loaded.predict(frame).equals(other.predict(frame))
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging or old copies


def test_failed_save_leaves_the_old_model_and_no_temp_dirs(
    fitted: RNNForecaster,
    regressor: RNNRegressor,
    frame: pl.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "model"
    fitted.save(str(target))
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    written: list[str] = []
    real_write = _io.write_bytes_atomic

    def disk_full(file: Path, data: bytes) -> str:
        if written:  # the first file (the config) fits, the next one does not
            raise OSError(28, "No space left on device", str(file))
        written.append(Path(file).name)
        return real_write(file, data)

    monkeypatch.setattr(_io, "write_bytes_atomic", disk_full)
    with pytest.raises(ModelSaveError, match=r"Cannot save the model to .*No space left"):
        regressor.save(str(target))
    written.clear()
    with pytest.raises(ModelSaveError, match="No space left"):
        forecaster.save(regressor, tmp_path / "new")
    assert written == ["config.json"]
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert forecaster.load(target).predict(frame).equals(fitted.predict(frame))


def test_failed_exchange_rolls_back_to_the_old_model(
    fitted: RNNForecaster,
    regressor: RNNRegressor,
    frame: pl.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the atomic exchange is not available, two renames replace the model; when the
    second fails, the first is undone and the error is ours."""
    target = tmp_path / "model"
    fitted.save(str(target))
    monkeypatch.setattr(_io.renaming, "_RENAMEAT2", None)  # no renameat2: the two-rename fallback
    real_replace = os.replace
    calls: list[tuple[str, str]] = []

    def flaky_replace(src: object, dst: object) -> None:
        if Path(src).parent == tmp_path:  # type: ignore[arg-type]  (not the files' renames)
            calls.append((Path(src).name, Path(dst).name))  # type: ignore[arg-type]
            if len(calls) == 2:  # staging -> destination, after the old model was moved aside
                raise OSError("rename failed")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(ModelSaveError, match="rename failed"):
        regressor.save(str(target))
    monkeypatch.undo()
    assert len(calls) == 3 and calls[2][1] == "model"  # the old model was moved back
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert type(forecaster.load(target)) is RNNForecaster
    assert forecaster.load(target).predict(frame).equals(fitted.predict(frame))


def test_refuses_to_overwrite_a_directory_that_is_not_a_model(
    regressor: RNNRegressor, tmp_path: Path
) -> None:
    precious = tmp_path / "project"
    precious.mkdir()
    (precious / "notes.txt").write_text("do not delete")
    with pytest.raises(OwnershipError, match=r"Refusing to save a model over .*did not write"):
        regressor.save(str(precious))
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["project"]


def test_refuses_to_overwrite_a_directory_with_a_foreign_config_json(
    regressor: RNNRegressor, tmp_path: Path
) -> None:
    # Regression: any directory holding a config.json used to count as a model and was replaced.
    precious = tmp_path / "project"
    precious.mkdir()
    (precious / "config.json").write_text('{"name": "my project"}')
    (precious / "data.csv").write_text("a,b\n1,2\n")
    with pytest.raises(OwnershipError, match="did not write"):
        forecaster.save(regressor, precious)
    assert sorted(p.name for p in precious.iterdir()) == ["config.json", "data.csv"]


def test_refuses_to_overwrite_a_model_folder_holding_a_users_file(
    regressor: RNNRegressor, tmp_path: Path
) -> None:
    # Regression: saving over an earlier model deleted every other file in its folder.
    folder = forecaster.save(regressor, tmp_path / "model")
    (folder / "notes.txt").write_text("results of the last review")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(OwnershipError, match=r"notes\.txt \(not written by forecaster\)"):
        forecaster.save(regressor, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_refuses_to_overwrite_a_model_folder_holding_a_users_empty_folder(
    regressor: RNNRegressor, tmp_path: Path
) -> None:
    # Regression: saving over an earlier model deleted an empty folder a user had added to it
    # (a file there was refused and kept).
    folder = forecaster.save(regressor, tmp_path / "model")
    (folder / "results").mkdir()
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(OwnershipError, match=r"results/ \(a folder forecaster did not write\)"):
        forecaster.save(regressor, folder)
    assert sorted(p.name for p in folder.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_refuses_to_overwrite_a_file(regressor: RNNRegressor, tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.write_text("a file")
    with pytest.raises(OwnershipError, match="it is a file"):
        forecaster.save(regressor, target)
    assert target.read_text() == "a file"


def test_an_empty_directory_can_be_saved_into(regressor: RNNRegressor, tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    forecaster.save(regressor, target)
    assert type(forecaster.load(target)) is RNNRegressor


def test_saving_an_unfitted_estimator_raises(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError, match="fit"):
        forecaster.save(RNNForecaster(target="y"), tmp_path / "f")
    with pytest.raises(NotFittedError):
        RNNRegressor().save(str(tmp_path / "r"))
    assert list(tmp_path.iterdir()) == []


def test_saving_something_else_raises(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    with pytest.raises(DataValidationError, match="LinearRegression"):
        forecaster.save(LinearRegression(), tmp_path / "m")


# ------------------------------------------------------------------------------------------
# clear errors for broken model directories
# ------------------------------------------------------------------------------------------


def _write(folder: Path, name: str, data: bytes, resign: bool = True) -> None:
    (folder / name).write_bytes(data)
    if resign:
        resign_manifest(folder)


def _edit_weights(folder: Path, edit: Callable[[dict[str, torch.Tensor]], None]) -> None:
    path = folder / "weights.safetensors"
    state = safetensors.torch.load_file(path)
    edit(state)
    safetensors.torch.save_file(state, path)


def _edit_keys(folder: Path, edit: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    path = folder / "keys.parquet"
    edit(pl.read_parquet(path)).write_parquet(path)
    resign_manifest(folder)


def _edit_state(folder: Path, edit: Callable[[dict[str, np.ndarray]], None]) -> None:
    path = folder / "state.safetensors"
    state = safetensors.numpy.load_file(str(path))
    edit(state)
    safetensors.numpy.save_file(state, str(path))
    resign_manifest(folder)


def _drop_first_tensor(state: dict[str, torch.Tensor]) -> None:
    del state[sorted(state)[0]]


def _reshape_first_tensor(state: dict[str, torch.Tensor]) -> None:
    name = sorted(state)[0]
    state[name] = torch.zeros(*state[name].shape[:-1], state[name].shape[-1] + 1)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _scale_first_tensor(state: dict[str, torch.Tensor]) -> None:
    name = sorted(state)[0]
    state[name] = state[name] * 1.5  # same shape: only a checksum can notice


def _set_first(key: str, value: float) -> Callable[[dict[str, np.ndarray]], None]:
    def edit(state: dict[str, np.ndarray]) -> None:
        state[key] = state[key].copy()
        state[key].flat[0] = value

    return edit


FILE_EDITS: dict[str, Callable[[Path], object]] = {
    "weights-truncated": lambda d: _truncate(d / "weights.safetensors"),
    "weights-garbage": lambda d: (d / "weights.safetensors").write_bytes(os.urandom(64)),
    "weights-values-changed": lambda d: _edit_weights(d, _scale_first_tensor),
    "tensor-removed": lambda d: _edit_weights(d, _drop_first_tensor),
    "tensor-extra": lambda d: _edit_weights(d, lambda s: s.update(extra=torch.zeros(3))),
    "tensor-wrong-shape": lambda d: _edit_weights(d, _reshape_first_tensor),
    "keys-corrupt": lambda d: (d / "keys.parquet").write_bytes(b"PAR1 not parquet"),
    "keys-too-many": lambda d: pl.DataFrame({"id": ["a", "b", "c"]}).write_parquet(
        d / "keys.parquet"
    ),
    "state-truncated": lambda d: _truncate(d / "state.safetensors"),
    "config-scaler-edited": lambda d: edit_saved_config(
        d, lambda c: c["scaler"].update(method="robust"), resign=False
    ),
    "config-freq-edited": lambda d: edit_saved_config(
        d, lambda c: c.update(freq="2"), resign=False
    ),
}
"""Edits of any file but the manifest; the manifest's sha256 notices every one of them."""

_WEIGHTS_MISMATCH = (
    "weights in weights.safetensors do not match the network configuration in config.json"
)
_NOT_SAFETENSORS = r"weights.safetensors is not a safetensors file"

_COLUMNS_DISAGREE = (
    r"the scaler's columns \['y', 'x'\] and the network's 0 future inputs disagree with the "
    r"target, covariates, static_covariates, future_covariates and calendar in config.json, "
    r"which give the columns "
)
_KEYS_INVALID = r"keys.parquet must hold each series' id once, without nulls, as "


CORRUPTIONS: dict[str, tuple[Callable[[Path], object], str]] = {
    "missing-dir": (lambda d: shutil.rmtree(d), "no such folder"),
    "no-config": (
        lambda d: (d / "config.json").unlink(),
        r"config.json \(the model config\) is missing",
    ),
    "invalid-json": (lambda d: _write(d, "config.json", b"{not json"), "not valid JSON"),
    "binary-config": (lambda d: _write(d, "config.json", b"\xff\xfe\x00"), "not valid"),
    "json-list": (lambda d: _write(d, "config.json", b"[1, 2]"), "another format"),
    "other-format": (
        lambda d: edit_saved_config(d, lambda c: c.update(format="keras-model")),
        "another format",
    ),
    "newer-version": (
        lambda d: edit_saved_config(d, lambda c: c.update(format_version=FORMAT_VERSION + 1)),
        rf"written with model format {FORMAT_VERSION + 1} by forecaster .*reads model formats "
        rf"1 to {FORMAT_VERSION}\. Upgrade forecaster to load it, from a newer wheel or a clone "
        r"\(`pip install --upgrade <the newer forecaster_rnn wheel, or a clone's folder>`; "
        r"forecaster-rnn is not on the package index\)",  # was: pip install -U forecaster-rnn
    ),
    "version-zero": (
        lambda d: edit_saved_config(d, lambda c: c.update(format_version=0)),
        rf"invalid format_version 0 .*reads model formats 1 to {FORMAT_VERSION}.*refit",
    ),
    "bad-version": (
        lambda d: edit_saved_config(d, lambda c: c.update(format_version="one")),
        "invalid format_version 'one'",
    ),
    "version-disagrees-with-manifest": (
        lambda d: edit_saved_config(d, lambda c: c.update(format_version=2)),
        "manifest.json names model format 3 but config.json format 2",
    ),
    "unknown-class": (
        lambda d: edit_saved_config(d, lambda c: c.update(estimator="ProphetForecaster")),
        r"unknown estimator class 'ProphetForecaster'; this version knows GRUForecaster",
    ),
    "unknown-key": (
        lambda d: edit_saved_config(d, lambda c: c.update(surprise=1)),
        r"does not have the entries this version expects \(unknown \['surprise'\]\)",
    ),
    "scaler-missing": (
        lambda d: edit_saved_config(d, lambda c: c.pop("scaler")),
        r"\(missing \['scaler'\]\)",
    ),
    "n-series-missing": (
        lambda d: edit_saved_config(d, lambda c: c.pop("n_series")),
        r"\(missing \['n_series'\]\)",
    ),
    "checksums-of-format-2": (
        lambda d: edit_saved_config(d, lambda c: c.update(checksums={})),
        r"\(unknown \['checksums'\]\)",
    ),
    "unknown-param": (
        lambda d: edit_saved_config(d, lambda c: c["params"].update(colour="red")),
        r"parameters in config.json differ from this version's \(unknown to this version: "
        r"\['colour'\]\)",
    ),
    "missing-param": (
        lambda d: edit_saved_config(d, lambda c: c["params"].pop("hidden_size")),
        r"\(missing: \['hidden_size'\]\)",
    ),
    "invalid-param": (
        lambda d: edit_saved_config(d, lambda c: c["params"].update(cell="transformer")),
        r"parameters in config.json are invalid \(cell.*'transformer'",
    ),
    "param-disagrees-with-network": (
        lambda d: edit_saved_config(d, lambda c: c["params"].update(cell="lstm")),
        r"disagree \(cell 'lstm' vs network 'gru'\)",
    ),
    "params-disagree-with-network": (
        lambda d: edit_saved_config(d, lambda c: c["params"].update(lookback=48, horizon=3)),
        r"disagree \(lookback 48 vs network 24, horizon 3 vs network 6\)",
    ),
    "network-hidden-size": (
        lambda d: edit_saved_config(d, lambda c: c["network"].update(hidden_size=16)),
        r"disagree \(hidden_size 8 vs network 16\)",
    ),
    "network-and-params-hidden-size": (
        lambda d: edit_saved_config(
            d, lambda c: (c["network"].update(hidden_size=16), c["params"].update(hidden_size=16))
        ),
        _WEIGHTS_MISMATCH + r" \(.* is F32 \[.*\], expected F32 \[",
    ),
    "network-members": (
        lambda d: edit_saved_config(d, lambda c: c["network"].update(n_members=2)),
        r"disagree \(n_members 1 vs network 2\)",
    ),
    "network-unknown-entry": (
        lambda d: edit_saved_config(d, lambda c: c["network"].update(attention=True)),
        "network configuration in config.json is invalid",
    ),
    "network-not-a-dict": (
        lambda d: edit_saved_config(d, lambda c: c.update(network=[1])),
        "network configuration is list",
    ),
    "weights-missing": (
        lambda d: (d / "weights.safetensors").unlink(),
        r"weights.safetensors \(the weights\) is missing",
    ),
    "keys-missing": (
        lambda d: (d / "keys.parquet").unlink(),
        r"keys.parquet \(the series keys\) is missing",
    ),
    "state-missing": (
        lambda d: (d / "state.safetensors").unlink(),
        r"state.safetensors \(the fitted state\) is missing",
    ),
    "manifest-missing": (
        lambda d: (d / "manifest.json").unlink(),
        "manifest.json is missing",
    ),
    "manifest-edited": (
        lambda d: (d / "manifest.json").write_text(
            (d / "manifest.json").read_text().replace('"written": "2', '"written": "1')
        ),
        "manifest.json was edited after the model was saved",
    ),
    "manifest-reformatted": (
        lambda d: (d / "manifest.json").write_text(
            json.dumps(json.loads((d / "manifest.json").read_text()))
        ),
        "manifest.json was edited after the model was saved",
    ),
    "manifest-of-a-run": (
        lambda d: ((d / "manifest.json").unlink(), _io.write_manifest(d, "run")),
        "manifest.json is not the manifest of a forecaster model",
    ),
    "manifest-lists-a-users-file": (
        lambda d: _write(d, "notes.txt", b"mine", resign=True),
        r"manifest.json does not list the files of a RNNForecaster \(unknown \['notes.txt'\]\)",
    ),
    "freq-invalid": (
        lambda d: edit_saved_config(d, lambda c: c.update(freq="every now and then")),
        "the frequency is invalid",
    ),
    "schema-not-a-dict": (
        lambda d: edit_saved_config(d, lambda c: c.update(schema=["y"])),
        "schema in config.json is not a mapping",
    ),
    "n-series-string": (
        lambda d: edit_saved_config(d, lambda c: c.update(n_series="2")),
        r"n_series is '2'; expected an integer >= 1",
    ),
    "n-series-bool": (
        lambda d: edit_saved_config(d, lambda c: c.update(n_series=True)),
        r"n_series is True; expected an integer >= 1",
    ),
    "n-series-huge": (
        lambda d: edit_saved_config(d, lambda c: c.update(n_series=10**30)),
        r"n_series is 10{30}; expected an integer",
    ),
    "n-series-wrong": (
        lambda d: edit_saved_config(d, lambda c: c.update(n_series=3)),
        r"state.safetensors does not hold the state the config describes \(scaler.center is "
        r"F64 \[2, 2\], expected F64 \[3, 2\]",
    ),
    "scaler-columns-not-a-list": (
        lambda d: edit_saved_config(d, lambda c: c["scaler"].update(columns="y")),
        r"scaler.columns is 'y'; expected a list of names",
    ),
    "scaler-columns-too-few": (
        lambda d: edit_saved_config(d, lambda c: c["scaler"].update(columns=["y"])),
        r"disagree \(n_features 1 vs network 2\)",
    ),
    "scaler-method-unknown": (
        lambda d: edit_saved_config(d, lambda c: c["scaler"].update(method="magic")),
        r"the scaler state is invalid \(Invalid scaler state: method 'magic'",
    ),
    "scaler-columns-swapped": (
        lambda d: edit_saved_config(d, lambda c: c["scaler"].update(columns=["x", "y"])),
        r"scaler's columns \['x', 'y'\] and the network's 0 future inputs disagree with the "
        r"target, .* which give the columns \['y', 'x'\]",
    ),
    "history-not-a-list": (
        lambda d: edit_saved_config(d, lambda c: c.update(history="long")),
        "history in config.json is not a list of records",
    ),
    "ema-decay-out-of-range": (
        lambda d: edit_saved_config(d, lambda c: c.update(ema_decay=1.5)),
        r"the config's ema_decay 1.5 is not None or in \[0, 1\)",
    ),
    "ema-decay-text": (
        lambda d: edit_saved_config(d, lambda c: c.update(ema_decay="0.99")),
        r"the config's ema_decay '0.99' is not None or in \[0, 1\)",
    ),
    "ema-decay-missing": (
        lambda d: edit_saved_config(d, lambda c: c.pop("ema_decay")),
        r"ema_decay='auto' needs the decay chosen in fit",
    ),
    "ema-decay-disagrees": (
        lambda d: edit_saved_config(
            d, lambda c: c["params"].update(ema_decay=0.5) or c.update(ema_decay=0.9)
        ),
        r"the config's ema_decay 0.9 is not 0.5",
    ),
    "windows-a-string": (
        lambda d: edit_saved_config(d, lambda c: c.update(n_train_windows="5")),
        r"n_train_windows is '5'; expected an integer >= 0",
    ),
    "state-scale-zero": (
        lambda d: _edit_state(d, _set_first("scaler.scale", 0.0)),
        r"Invalid scaler state: scale must be finite and > 0",
    ),
    "state-center-nan": (
        lambda d: _edit_state(d, _set_first("scaler.center", float("nan"))),
        r"Invalid scaler state: center must be finite",
    ),
    "state-counts-negative": (
        lambda d: _edit_state(d, _set_first("scaler.n_fit_rows", -1)),
        r"Invalid scaler state: n_fit_rows must be >= 0",
    ),
    "state-float32": (
        lambda d: _edit_state(
            d, lambda s: s.update({"scaler.center": s["scaler.center"].astype(np.float32)})
        ),
        r"scaler.center is F32 \[2, 2\], expected F64 \[2, 2\]",
    ),
    "state-extra-tensor": (
        lambda d: _edit_state(d, lambda s: s.update(extra=np.zeros(2))),
        r"state.safetensors does not hold .*unexpected tensors \['extra'\]",
    ),
    "state-lambdas-without-boxcox": (
        lambda d: _edit_state(d, lambda s: s.update(target_lambdas=np.zeros((2, 1)))),
        r"unexpected tensors \['target_lambdas'\]",
    ),
    **{
        edit: (fn, r"does not match its sha256 in manifest.json \('[0-9a-f]{64}' expected")
        for edit, fn in FILE_EDITS.items()
    },
    # The same edits with the manifest forged too: the deeper checks still refuse them.
    "resigned-weights-truncated": (
        lambda d: (_truncate(d / "weights.safetensors"), resign_manifest(d)),
        _NOT_SAFETENSORS + ": its tensors take",
    ),
    "resigned-weights-garbage": (
        lambda d: _write(d, "weights.safetensors", os.urandom(64)),
        _NOT_SAFETENSORS,
    ),
    "resigned-tensor-removed": (
        lambda d: (_edit_weights(d, _drop_first_tensor), resign_manifest(d)),
        _WEIGHTS_MISMATCH + r" \(missing tensors \['",
    ),
    "resigned-tensor-extra": (
        lambda d: (_edit_weights(d, lambda s: s.update(extra=torch.zeros(3))), resign_manifest(d)),
        _WEIGHTS_MISMATCH + r" \(unexpected tensors \['extra'\]",
    ),
    "resigned-tensor-wrong-shape": (
        lambda d: (_edit_weights(d, _reshape_first_tensor), resign_manifest(d)),
        _WEIGHTS_MISMATCH + r" \(.* is F32 \[.*\], expected F32",
    ),
    "resigned-keys-corrupt": (
        lambda d: _write(d, "keys.parquet", b"PAR1 not parquet"),
        "keys.parquet cannot be read",
    ),
    "resigned-keys-too-many": (
        lambda d: (FILE_EDITS["keys-too-many"](d), resign_manifest(d)),
        "keys and scaler state disagree: keys.parquet has 3 series, the scaler 2",
    ),
    "resigned-keys-other-column": (
        lambda d: (
            pl.DataFrame({"ticker": ["a", "b"]}).write_parquet(d / "keys.parquet"),
            resign_manifest(d),
        ),
        r"keys.parquet has the columns \['ticker'\], expected \['id'\]",
    ),
    # the parameters that name the scaler's columns, edited and re-signed: each was loaded
    # (covariates=None then died in predict with a numpy error; another name forecast with
    # another column; a past covariate made future-known was fed to the wrong inputs)
    "resigned-covariates-dropped": (
        lambda d: edit_saved_config(d, lambda c: c["params"].update(covariates=None)),
        _COLUMNS_DISAGREE + r"\['y'\] and 0 future inputs",
    ),
    "resigned-covariates-renamed": (
        lambda d: edit_saved_config(d, lambda c: c["params"].update(covariates=["z"])),
        _COLUMNS_DISAGREE + r"\['y', 'z'\] and 0 future inputs",
    ),
    "resigned-covariates-made-future": (
        lambda d: edit_saved_config(
            d, lambda c: c["params"].update(covariates=None, future_covariates=["x"])
        ),
        _COLUMNS_DISAGREE + r"\['y', 'x'\] and 1 future inputs",
    ),
    # the series keys, edited and re-signed: a repeated id was loaded and died in predict with
    # a numpy IndexError; a null id or ids of another dtype than fit's forecast every series as
    # unseen (their fitted scaling dropped)
    "resigned-keys-repeated": (
        lambda d: _edit_keys(d, lambda k: k.with_columns(pl.lit("alpha").alias("id"))),
        _KEYS_INVALID + r"String .* holds String with 0 nulls and the ids \['alpha'\] more",
    ),
    "resigned-keys-null": (
        lambda d: _edit_keys(d, lambda k: k.with_columns(pl.col("id").replace({"alpha": None}))),
        _KEYS_INVALID + r"String .* holds String with 1 nulls and the ids \[\] more",
    ),
    "resigned-keys-other-dtype": (
        lambda d: _edit_keys(d, lambda k: k.with_columns(pl.Series("id", [1, 2]))),
        _KEYS_INVALID + r"String .* holds Int64 with 0 nulls",
    ),
    # time_col renamed: "must hold the last fitted time of each series as None"
    "resigned-time-col-renamed": (
        lambda d: edit_saved_config(d, lambda c: c["params"].update(time_col="when")),
        r"as the dtype of time_col 'when', a column config.json lacks, without nulls",
    ),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_hostile_tampered_model_directories(corruption: str, model_copy: Path) -> None:
    corrupt, message = CORRUPTIONS[corruption]
    corrupt(model_copy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused, not loaded with a warning
        with pytest.raises(ModelFormatError, match=message) as info:
            forecaster.load(model_copy)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, forecaster.ForecasterError)
    assert str(model_copy) in str(info.value)
    if "reads model formats" in str(info.value):
        # which version was found, which this package reads, what to do
        assert f"reads model formats 1 to {FORMAT_VERSION}" in str(info.value)
        assert re.search(r"refit|Restore|Upgrade", str(info.value))


def test_a_model_saved_by_a_newer_forecaster_says_upgrade_not_only_what_it_lacks(
    model_copy: Path,
) -> None:
    """A config of the current format from a newer forecaster, with an entry or a value this
    version does not know, was refused as "edited, is corrupt or comes from a different
    forecaster version", naming only the entry: it now says who saved it and to upgrade. The
    same config from this version, or a changed file, keeps its own words."""
    newer = "99.1.0"
    edit_saved_config(model_copy, lambda c: c.update(package_version=newer, future_entry=1))
    expected = (
        rf"was saved by forecaster {newer}, newer than this one \({forecaster.__version__}\), "
        r"which cannot read it: config.json does not have the entries this version expects "
        r"\(unknown \['future_entry'\]\) .*Upgrade forecaster to load it"
    )
    with pytest.raises(ModelFormatError, match=expected):
        forecaster.load(model_copy)
    edit_saved_config(model_copy, lambda c: c.update(package_version=forecaster.__version__))
    with pytest.raises(ModelFormatError, match=r"unknown \['future_entry'\]") as info:
        forecaster.load(model_copy)
    assert "newer than this one" not in str(info.value) and "edited, is corrupt" in str(info.value)
    edit_saved_config(model_copy, lambda c: c.update(package_version=newer))
    edit_saved_config(model_copy, lambda c: c.pop("future_entry"))  # loads: nothing unknown
    assert forecaster.load(model_copy).predict is not None
    with open(model_copy / "weights.safetensors", "ab") as f:  # any version: a changed file
        f.write(b"x")
    with pytest.raises(ModelFormatError, match="does not match its sha256") as info:
        forecaster.load(model_copy)
    assert "newer than this one" not in str(info.value)


@pytest.mark.parametrize("damage", ["weights gone", "manifest gone", "estimators differ"])
def test_a_damaged_model_from_a_newer_forecaster_is_not_told_to_upgrade(
    damage: str, model_copy: Path
) -> None:
    """A folder no version saves (a file its manifest lists is missing, no manifest, a
    manifest naming another estimator than the config) said "saved by forecaster 99.1.0,
    newer than this one ... Upgrade" when its config came from a newer forecaster: an
    upgrade would not read it either. It keeps the words of a damaged folder."""
    edit_saved_config(model_copy, lambda c: c.update(package_version="99.1.0"))
    if damage == "weights gone":
        (model_copy / "weights.safetensors").unlink()
    elif damage == "manifest gone":
        (model_copy / "manifest.json").unlink()
    else:
        manifest = json.loads((model_copy / "manifest.json").read_text())
        manifest["details"]["estimator"] = "RNNRegressor"
        (model_copy / "manifest.json").unlink()
        from forecaster import _io

        _io.write_manifest(model_copy, "model", manifest["details"])
    with pytest.raises(ModelFormatError, match=r"missing|different estimators") as info:
        forecaster.load(model_copy)
    message = str(info.value)
    assert "newer than this one" not in message and "Upgrade" not in message, message
    assert "is corrupt" in message


def test_a_regressor_config_without_its_state_is_refused(
    regressor: RNNRegressor, tmp_path: Path
) -> None:
    folder = forecaster.save(regressor, tmp_path / "r")
    edit_saved_config(folder, lambda c: c["regressor"].pop("y_scale"))
    with pytest.raises(ModelFormatError, match=r"regressor.y_scale in config.json is None"):
        forecaster.load(folder)
    edit_saved_config(folder, lambda c: c.pop("regressor"))
    with pytest.raises(ModelFormatError, match=r"missing \['regressor'\]"):
        forecaster.load(folder)


def test_hostile_regressor_params_disagreeing_with_its_network(
    regressor: RNNRegressor, tmp_path: Path
) -> None:
    folder = forecaster.save(regressor, tmp_path / "r")
    edit_saved_config(folder, lambda c: c["regressor"].update(lookback=99))
    with pytest.raises(ModelFormatError, match=r"disagree \(lookback 99 vs network 12\)"):
        forecaster.load(folder)


def test_the_manifest_covers_every_file(saved: Path) -> None:
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["kind"] == "model" and manifest["owner"] == "forecaster"
    assert manifest["details"] == {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "estimator": "RNNForecaster",
    }
    files = {p.name for p in saved.iterdir()} - {"manifest.json"}
    assert (
        set(manifest["files"])
        == files
        == {
            "config.json",
            "weights.safetensors",
            "state.safetensors",
            "keys.parquet",
        }
    )
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((saved / name).read_bytes()).hexdigest() == digest


# ------------------------------------------------------------------------------------------
# older formats: a documented migration
# ------------------------------------------------------------------------------------------


def as_legacy(folder: Path, version: int, drop_params: tuple[str, ...] = ()) -> None:
    """Rewrite a saved model the way format ``version`` (1 or 2) wrote it: the state arrays
    in config.json, no manifest; format 2 with checksums, format 1 without and with fewer
    parameters."""
    config = json.loads((folder / "config.json").read_text())
    state = safetensors.numpy.load_file(str(folder / "state.safetensors"))
    config.update(format_version=version, package_version="0.0.9")
    if "regressor" in config:
        config["regressor"].update(
            x_mean=state["x_mean"].tolist(), x_scale=state["x_scale"].tolist()
        )
    else:
        for key in ("center", "scale", "n_fit_rows"):
            config["scaler"][key] = state[f"scaler.{key}"].tolist()
        lambdas = state.get("target_lambdas")
        config["target_lambdas"] = None if lambdas is None else lambdas.tolist()
        del config["n_series"]
    (folder / "manifest.json").unlink()
    (folder / "state.safetensors").unlink()
    if version == 2:
        config["checksums"] = {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.iterdir()
            if p.name != "config.json"
        }
    for name in drop_params:
        config["params"].pop(name, None)
    if version == 1:
        config["network"].pop("channel_independent", None)
    (folder / "config.json").write_text(json.dumps(config))


def test_hostile_format_1_model_is_migrated_with_a_warning(
    fitted: RNNForecaster, frame: pl.DataFrame, model_copy: Path, tmp_path: Path
) -> None:
    added = [p for p in PARAMS_ADDED if p in fitted.get_params()]
    assert added  # the parameters added since format 1 exist on the estimator
    as_legacy(model_copy, 1, drop_params=tuple(added))
    with pytest.warns(
        ForecasterWarning, match=r"model format 1 \(forecaster 0.0.9\).*no checksums"
    ):
        loaded = forecaster.load(model_copy)
    assert loaded.predict(frame).equals(fitted.predict(frame))
    assert {p: loaded.get_params()[p] for p in added} == {p: PARAMS_ADDED[p] for p in added}
    # Saving it again upgrades it: manifest, current version, no warning on load.
    upgraded = loaded.save(tmp_path / "upgraded")
    assert json.loads((upgraded / "config.json").read_text())["format_version"] == FORMAT_VERSION
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert forecaster.load(upgraded).predict(frame).equals(fitted.predict(frame))


def test_hostile_format_2_model_is_migrated_and_upgraded_in_place(
    fitted: RNNForecaster, frame: pl.DataFrame, model_copy: Path
) -> None:
    as_legacy(model_copy, 2)
    with pytest.warns(ForecasterWarning, match=r"model format 2 .*config.json .*not integrity"):
        loaded = forecaster.load(model_copy)
    assert loaded.predict(frame).equals(fitted.predict(frame))
    loaded.save(model_copy)  # over the format-2 folder itself: it is provably a model
    assert (model_copy / "manifest.json").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert forecaster.load(model_copy).predict(frame).equals(fitted.predict(frame))


def test_hostile_format_2_checksums_still_refuse_changed_weights(model_copy: Path) -> None:
    as_legacy(model_copy, 2)
    _edit_weights(model_copy, _scale_first_tensor)
    with pytest.raises(
        ModelFormatError, match=r"weights.safetensors does not match its sha256 in config.json"
    ):
        forecaster.load(model_copy)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["scaler"].update(center="oops"), "scaler.center in config.json is 'oops'"),
        (lambda c: c["scaler"].update(center=[["1.5", 2.0]] * 2), "not an array of numbers"),
        (lambda c: c["scaler"].update(scale=[[True, 1.0]] * 2), "not an array of numbers"),
        (lambda c: c["scaler"].update(n_fit_rows=[10**30, 1]), "out of range"),
        (lambda c: c["scaler"].update(n_fit_rows=[1.5, 1]), "not an array of integers"),
        (lambda c: c.update(scaler=[1, 2]), "scaler state in config.json is list, not a dict"),
        (lambda c: c.update(target_lambdas=[[0.5], [0.5]]), "has target_lambdas but"),
        (lambda c: c.update(checksums=["abc"]), "checksums in config.json are not a mapping"),
    ],
    ids=[
        "center-a-string",
        "numbers-as-strings",
        "booleans",
        "huge-int",
        "float-count",
        "scaler-a-list",
        "lambdas-without-boxcox",
        "checksums-a-list",
    ],
)
def test_hostile_format_2_config_of_the_wrong_types_is_refused(
    model_copy: Path, edit: Callable[[dict], object], message: str
) -> None:
    as_legacy(model_copy, 2)
    edit_saved_config(model_copy, edit)
    with pytest.raises(ModelFormatError, match=message) as info:
        forecaster.load(model_copy)
    assert "model format 2" in str(info.value)


def test_hostile_format_1_model_missing_an_unlisted_parameter_is_refused(
    model_copy: Path,
) -> None:
    as_legacy(model_copy, 1, drop_params=("normalization",))
    with pytest.raises(ModelFormatError, match=r"missing: \['normalization'\]\) \(model format 1"):
        forecaster.load(model_copy)


def test_hostile_format_1_model_from_the_repository_history(frame: pl.DataFrame) -> None:
    """A model that format-1 code really wrote (tests/fixtures/model_format1, from an MLflow run
    of the package's history) still loads."""
    folder = REPO / "tests" / "fixtures" / "model_format1"
    assert json.loads((folder / "config.json").read_text())["format_version"] == 1
    with pytest.warns(ForecasterWarning, match="model format 1"):
        model = forecaster.load(folder)
    assert model.network_.get_config()["lookback"] == model.lookback


def test_hostile_format_2_model_from_the_repository_history(tmp_path: Path) -> None:
    """A Box-Cox, calendar forecaster and a regressor that format-2 code really wrote
    (tests/fixtures/*_format2) load, predict what they predicted then, and save as format 3."""
    fixtures = REPO / "tests" / "fixtures"
    frame = pl.read_csv(fixtures / "model_format2_input.csv", try_parse_dates=True)
    expected = pl.read_csv(fixtures / "model_format2_forecast.csv", try_parse_dates=True)
    with pytest.warns(ForecasterWarning, match="model format 2"):
        model = forecaster.load(fixtures / "model_format2")
    forecast = model.predict(frame)
    assert forecast.select("id", "time").equals(expected.select("id", "time"))
    np.testing.assert_allclose(forecast["y"].to_numpy(), expected["y"].to_numpy(), rtol=1e-6)
    assert model.target_lambdas_ is not None and model.calendar_ == ("dayofweek", "dayofyear")
    with pytest.warns(ForecasterWarning, match="model format 2"):
        regressor = forecaster.load(fixtures / "regressor_format2")
    X = np.random.default_rng(0).normal(size=(40, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(
        regressor.predict(X[:2]),
        [[-0.2703146, -0.35584194], [-0.2488845, -0.34309558]],
        rtol=1e-5,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reloaded = forecaster.load(model.save(tmp_path / "m"))
        assert reloaded.predict(frame).equals(forecast)
        assert np.array_equal(
            forecaster.load(regressor.save(tmp_path / "r")).predict(X), regressor.predict(X)
        )


def test_format_3_models_of_the_code_before_the_restructure_predict_bit_identically(
    tmp_path: Path,
) -> None:
    """tests/fixtures/*_format3 were saved by the last version before the package became layers
    (commit 95eb8cf: a two-layer GRU seq2seq forecaster with a covariate, a future covariate,
    an hour-of-day calendar and robust scaling, and a regressor), with their forecasts. They
    load without a warning and forecast the same values (to float32 rounding: the forecasts
    were made on another CPU, whose kernels may round the last bit differently; on one
    machine they are the same bits); saving again gives the same files (the keys' Parquet file
    the same table: its bytes name the polars version that wrote it)."""
    fixtures = REPO / "tests" / "fixtures"
    frame = pl.read_parquet(fixtures / "model_format3_input.parquet")
    future = pl.read_parquet(fixtures / "model_format3_future.parquet")
    expected = pl.read_parquet(fixtures / "model_format3_forecast.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = forecaster.load(fixtures / "model_format3")
        regressor = forecaster.load(fixtures / "regressor_format3")
    forecast = model.predict(frame, future=future)
    assert forecast.select("id", "time").equals(expected.select("id", "time"))
    np.testing.assert_allclose(forecast["y"].to_numpy(), expected["y"].to_numpy(), rtol=1e-5)
    X = np.random.default_rng(0).normal(size=(40, 6, 2)).astype(np.float32)
    expected_regression = np.load(fixtures / "regressor_format3_prediction.npy")
    np.testing.assert_allclose(regressor.predict(X[:5]), expected_regression, rtol=1e-5)
    model.save(tmp_path / "again")
    for name in ("config.json", "state.safetensors", "weights.safetensors"):
        assert (tmp_path / "again" / name).read_bytes() == (
            fixtures / "model_format3" / name
        ).read_bytes(), name
    # a Parquet file names the polars version that wrote it (and its layout may change between
    # versions), so the keys are compared as a table: the same columns, types and values
    keys_again = pl.read_parquet(tmp_path / "again" / "keys.parquet")
    keys_saved = pl.read_parquet(fixtures / "model_format3" / "keys.parquet")
    assert keys_again.schema == keys_saved.schema
    assert keys_again.equals(keys_saved)


# ------------------------------------------------------------------------------------------
# saving never leaves a half-written model
# ------------------------------------------------------------------------------------------


def test_hostile_unserialisable_parameter_refused_before_writing(
    fitted: RNNForecaster, tmp_path: Path
) -> None:
    broken = copy.deepcopy(fitted)
    # an array is not a JSON value (a run setting: written as it is now, not as fitted)
    broken.set_params(progress=np.array([False]))
    with pytest.raises(DataValidationError, match=r"Cannot save this RNNForecaster.*plain values"):
        broken.save(tmp_path / "new" / "m")
    assert list(tmp_path.iterdir()) == []  # not even the parent folder


def test_quantiles_given_as_an_array_are_saved_as_a_list_and_load_back(frame, tmp_path):
    """quantiles=np.array([...]) fitted and predicted, but save crashed comparing the array
    with its default (numpy's "truth value of an array is ambiguous")."""
    model = make_forecaster(
        loss="quantile", quantiles=np.array([0.1, 0.5, 0.9]), baseline="none"
    ).fit(frame)
    folder = forecaster.save(model, tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    assert config["params"]["quantiles"] == [0.1, 0.5, 0.9]
    loaded = forecaster.load(folder)
    assert loaded.get_params()["quantiles"] == [0.1, 0.5, 0.9]
    asked = {"level": 80, "quantiles": [0.1, 0.5, 0.9]}
    assert loaded.predict(frame, **asked).equals(model.predict(frame, **asked))


@pytest.mark.slow
def test_persistence_load_in_a_fresh_process_knows_the_packages_classes(
    saved: Path, tmp_path: Path
) -> None:
    """forecaster.persistence.load in an interpreter that had imported no estimator (the
    registry is filled when they are imported; only forecaster.load imported them first)
    refused a saved RNNForecaster as "an unknown estimator class 'RNNForecaster'; this
    version knows " with an empty list. The registry imports the package's estimators when
    first asked: the model loads, and another class is refused naming the known ones."""
    unknown = tmp_path / "unknown"
    shutil.copytree(saved, unknown)
    edit_saved_config(unknown, lambda c: c.update(estimator="ProphetForecaster"))
    code = (
        "import sys\n"
        "from forecaster.persistence import load\n"
        "print(type(load(sys.argv[1])).__name__)\n"
        "try:\n"
        "    load(sys.argv[2])\n"
        "except Exception as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(saved), str(unknown)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    loaded, refused = result.stdout.splitlines()[:2]
    assert loaded == "RNNForecaster"
    known = "GRUForecaster, LSTMForecaster, RNNForecaster, RNNRegressor, SimpleRNNForecaster"
    assert f"unknown estimator class 'ProphetForecaster'; this version knows {known} (" in refused

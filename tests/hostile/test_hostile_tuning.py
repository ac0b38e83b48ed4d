"""Hostile tuning settings, storages, search spaces and trials: a reused study of another task
or space is refused naming both; counts and durations are honoured or refused (never replaced
by a default); storages that cannot hold a study are a StorageError naming them; a torch error
inside a trial fails that trial with a readable reason; nothing but our error types escapes
``tune``, and nothing outside the study's own storage changes."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

optuna = pytest.importorskip("optuna")

from forecaster import LSTMForecaster, RNNForecaster  # noqa: E402
from forecaster.exceptions import DataValidationError, ForecasterError  # noqa: E402
from forecaster.tuning import (  # noqa: E402
    StorageError,
    _resolve_space,
    default_search_space,
    make_storage,
    tune,
)

SPACE = {"hidden_size": [4, 8]}


def tiny_frame() -> pl.DataFrame:
    t = np.arange(120)
    return pl.DataFrame(
        {
            "id": np.repeat(["a", "b"], 120),
            "time": np.concatenate([t, t]),
            "y": np.concatenate([np.sin(t / 4), np.cos(t / 5)]).astype(np.float32),
            "z": np.concatenate([np.cos(t / 3), np.sin(t / 6)]).astype(np.float32),
        }
    )


def tiny_model(cls: type = RNNForecaster, **overrides):
    params = dict(
        target="y", id_col="id", time_col="time", lookback=12, horizon=4, hidden_size=4,
        max_epochs=1, windows_per_epoch=64, batch_size=32, random_state=0, progress=False,
    )  # fmt: skip
    if cls is RNNForecaster:
        params["segment_length"] = 4
    return cls(**{**params, **overrides})


FRAME = tiny_frame()


def quick(estimator=None, **kwargs):
    options = dict(
        n_trials=1, storage=None, search_space=SPACE, random_state=0, track=False,
        show_progress=False, refit=False, pruner="none",
    )  # fmt: skip
    options.update(kwargs)
    return tune(estimator if estimator is not None else tiny_model(), FRAME, **options)


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'studies' / 'optuna.db'}"


# ------------------------------------------------------------------------------------------
# a reused study_name of another task or search space
# ------------------------------------------------------------------------------------------


def _metric(estimator, frame) -> float:
    return float(estimator.history_[-1]["train_loss"])


REUSED = {
    "estimator class": ({"estimator": tiny_model(LSTMForecaster)}, "estimator: the study has"),
    "target": ({"estimator": tiny_model(target="z")}, "target: the study has 'y', this call 'z'"),
    "horizon": ({"estimator": tiny_model(horizon=3)}, "horizon: the study has 4, this call 3"),
    "loss": ({"estimator": tiny_model(loss="mse")}, "loss: the study has 'mae', this call 'mse'"),
    "metric": ({"metric": _metric}, "metric: the study has 'val_loss'"),
    "direction": ({"metric": _metric, "direction": "maximize"}, "is to minimize, not to maximize"),
    "space choices": ({"search_space": {"hidden_size": [4, 16]}}, "search space hidden_size"),
    "space parameter": (
        {"search_space": {**SPACE, "lr": (1e-3, 1e-2, "log")}},
        "search space lr: the study has none, this call FloatDistribution",
    ),
    "space callable": (
        {"search_space": lambda trial: {"hidden_size": trial.suggest_categorical("h", [4])}},
        "search space callable: the study has none",
    ),
}


@pytest.mark.parametrize("case", list(REUSED))
def test_a_reused_study_of_another_task_or_space_is_refused_naming_both(
    tmp_path, db, tree_guard, case
):
    quick(storage=db, study_name="shared")
    guard = tree_guard(tmp_path, allowed=("studies",))
    kwargs, expected = REUSED[case]
    with pytest.raises(DataValidationError) as info:
        quick(storage=db, study_name="shared", n_trials=2, **kwargs)
    message = str(info.value)
    assert "'shared'" in message and expected in message, message
    assert "Use another study_name" in message
    study = optuna.load_study(study_name="shared", storage=db)
    assert len(study.trials) == 1  # no trial of the other task was mixed in
    guard.assert_unchanged()


def test_the_same_task_and_space_resumes_and_records_its_identity(db):
    quick(storage=db, study_name="same")
    result = quick(storage=db, study_name="same", n_trials=2)
    assert (result.n_trials_run, result.n_trials_finished) == (1, 2)
    attrs = result.study.user_attrs
    assert '"horizon": 4' in attrs["forecaster.task"]
    assert "hidden_size" in attrs["forecaster.search_space"]


def test_a_study_of_several_objectives_is_refused(tmp_path):
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(storage=db, study_name="multi", directions=["minimize", "maximize"])
    with pytest.raises(DataValidationError, match="is to minimize and maximize, not to minimize"):
        quick(storage=db, study_name="multi")


def test_an_older_study_without_a_record_is_checked_by_its_trials(tmp_path):
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(storage=db, study_name="legacy")
    study.optimize(lambda t: t.suggest_categorical("hidden_size", [4, 16]) * 0.1, n_trials=1)
    with pytest.raises(DataValidationError, match="keeps the kind and categorical choices"):
        quick(storage=db, study_name="legacy")
    optuna.create_study(storage=db, study_name="legacy-empty")
    assert quick(storage=db, study_name="legacy-empty").n_trials_finished == 1


# ------------------------------------------------------------------------------------------
# counts, durations and settings: honoured or refused, never replaced by a default
# ------------------------------------------------------------------------------------------

BAD_SETTINGS = [
    ("n_trials", 0),
    ("n_trials", -1),
    ("n_trials", 2.5),
    ("n_trials", 2.0),
    ("n_trials", True),
    ("n_trials", "3"),
    ("n_trials", float("nan")),
    ("timeout", 0),
    ("timeout", -5),
    ("timeout", float("nan")),
    ("timeout", float("inf")),
    ("timeout", True),
    ("timeout", "10"),
    ("n_workers", 0),
    ("random_state", -1),
    ("random_state", 2**32),
    ("random_state", "0"),
    ("refit", "yes"),
    ("track", "no"),
    ("show_progress", 1.5),
    ("study_name", ""),
    ("study_name", "x" * 600),
    ("study_name", 5),
    ("callbacks", [1]),
    ("callbacks", [lambda study: None]),
    ("callbacks", "print"),
    ("direction", "up"),
    ("metric", "mape"),
    ("pruner", "sometimes"),
]


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS, ids=lambda v: repr(v)[:20])
def test_a_setting_tune_cannot_honour_is_refused_before_anything_runs(
    tmp_path, tree_guard, name, value
):
    guard = tree_guard(tmp_path)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    with pytest.raises(DataValidationError) as info:
        quick(storage=storage, **{name: value})
    assert name.split("_")[0] in str(info.value) or "callback" in str(info.value)
    assert not (tmp_path / "optuna.db").exists()
    guard.assert_unchanged()


@settings(max_examples=25, deadline=None)
@given(
    n_trials=st.one_of(st.integers(max_value=0), st.floats(), st.booleans(), st.text(max_size=3))
)
def test_property_any_invalid_n_trials_is_refused(n_trials):
    with pytest.raises(DataValidationError, match="n_trials"):
        quick(n_trials=n_trials)


# ------------------------------------------------------------------------------------------
# storages
# ------------------------------------------------------------------------------------------


def _storages(root: Path) -> dict[str, str]:
    (root / "notdb.db").write_text("these are my notes, not a database")
    (root / "folder.db").mkdir()
    ro = root / "ro.db"
    sqlite3.connect(ro).close()
    return {
        "mongodb": "mongodb://db.example/optuna",
        "redis": "redis://localhost:6379/0",
        "http": "http://optuna.example/db",
        "no scheme": "studies/optuna.db",
        "missing folders": "sqlite:////nonexistent/dir/x.db",
        "not a database": f"sqlite:///{root / 'notdb.db'}",
        "a folder": f"sqlite:///{root / 'folder.db'}",
        "a device": "sqlite:////dev/null",
        "read-only": f"sqlite:///file:{ro}?mode=ro&uri=true",
        "refused server": "postgresql+psycopg://user:secret@127.0.0.1:1/optuna",
        "missing driver": "mysql://user@127.0.0.1:1/optuna",
    }


STORAGE_CASES = [
    "mongodb", "redis", "http", "no scheme", "missing folders", "not a database", "a folder",
    "a device", "read-only", "refused server", "missing driver",
]  # fmt: skip


@pytest.mark.parametrize("case", STORAGE_CASES)
def test_a_storage_that_cannot_hold_a_study_is_a_storage_error_naming_it(
    tmp_path, tree_guard, case
):
    storage = _storages(tmp_path)[case]
    guard = tree_guard(tmp_path)
    with pytest.raises(StorageError) as info:
        quick(storage=storage)
    message = str(info.value)
    assert isinstance(info.value, DataValidationError)
    assert "secret" not in message  # the password is masked
    shown = storage.replace("secret", "***")
    assert shown in message or repr(storage) in message, message
    assert "sqlite:///" in message  # what is supported
    assert not Path("/nonexistent").exists()
    guard.assert_unchanged()


def test_a_path_to_a_folder_is_refused_as_a_storage(tmp_path, tree_guard):
    (tmp_path / "studies").mkdir()
    guard = tree_guard(tmp_path)
    with pytest.raises(StorageError, match="is a folder, not a database file"):
        quick(storage=tmp_path / "studies")
    guard.assert_unchanged()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"grace_period": -60}, "grace_period"),
        ({"grace_period": "60"}, "grace_period"),
    ],
)
def test_make_storage_refuses_bad_heartbeat_settings(tmp_path, kwargs, match):
    with pytest.raises(DataValidationError, match=match):
        make_storage(f"sqlite:///{tmp_path / 'optuna.db'}", **kwargs)
    assert not (tmp_path / "optuna.db").exists()


def test_the_storage_breaking_mid_study_is_our_error_and_keeps_the_finished_trials(tmp_path):
    path = tmp_path / "optuna.db"

    def break_storage(study, trial):
        with sqlite3.connect(path) as connection:
            connection.execute("DROP TABLE trial_values")

    with pytest.raises(ForecasterError, match="failed while tuning") as info:
        quick(storage=f"sqlite:///{path}", n_trials=3, callbacks=[break_storage])
    assert not isinstance(info.value, StorageError)
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------------------
# trials that fail
# ------------------------------------------------------------------------------------------


class ExplodingForecaster(RNNForecaster):
    """Runs out of (GPU) memory for the larger network of the search space."""

    def fit(self, frame, y=None, *, callbacks=(), resume=False):
        if self.hidden_size == 8:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return super().fit(frame, y, callbacks=callbacks)


class BrokenForecaster(RNNForecaster):
    def fit(self, frame, y=None, *, callbacks=(), resume=False):
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({self.hidden_size}x3)")


def test_a_torch_error_in_a_trial_fails_that_trial_with_its_reason():
    model = ExplodingForecaster(**tiny_model().get_params())
    result = quick(model, n_trials=3, search_space={"hidden_size": [4, 8]})
    failed = [t for t in result.study.trials if t.state.name == "FAIL"]
    assert failed and all(t.params["hidden_size"] == 8 for t in failed)
    assert failed[0].user_attrs["error"].startswith("OutOfMemoryError: CUDA out of memory")
    assert result.best_params == {"hidden_size": 4} and result.n_trials_finished == 3


def test_when_every_trial_fails_tune_raises_our_error_naming_the_first_reasons():
    model = BrokenForecaster(**tiny_model().get_params())
    with pytest.raises(ForecasterError, match=r"No trial .* completed \(10 fail\)") as info:
        quick(model, n_trials=2, search_space={"hidden_size": [4, 8]})
    message = str(info.value)
    assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied" in message
    assert "trial 0:" in message


@pytest.mark.parametrize(
    ("metric", "reason"),
    [
        (lambda est, frame: 1 / 0, "ZeroDivisionError: division by zero"),
        (lambda est, frame: float("nan"), "not a finite number"),
        (lambda est, frame: None, "must return a real number, got NoneType"),
        (lambda est, frame: "0.5", "must return a real number, got str"),
    ],
)
def test_a_metric_that_fails_or_returns_no_number_fails_its_trial(metric, reason):
    with pytest.raises(ForecasterError, match="No trial") as info:
        quick(metric=metric)
    assert reason in str(info.value)


# ------------------------------------------------------------------------------------------
# search spaces: refused before any trial runs
# ------------------------------------------------------------------------------------------

BAD_SPACES = {
    "low > high": {"lr": (1e-2, 1e-3)},
    "log, low = 0": {"lr": (0.0, 1.0, "log")},
    "log, low < 0": {"hidden_size": (-4, 8, "log")},
    "empty choices": {"hidden_size": []},
    "unknown parameter": {"hiden_size": [4, 8]},
    "a list as a choice": {"covariates": [["z"], []]},
    "NaN bound": {"dropout": (float("nan"), 0.5)},
    "infinite bound": {"lr": (1e-4, float("inf"))},
    "repeated choice": {"hidden_size": [4, 4]},
    "not a distribution": {"lr": "fast"},
    "empty space": {},
}


@pytest.mark.parametrize("case", list(BAD_SPACES))
def test_an_invalid_search_space_is_refused_before_any_trial(tmp_path, tree_guard, case):
    guard = tree_guard(tmp_path)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    with pytest.raises(DataValidationError, match="search_space"):
        quick(storage=storage, search_space=BAD_SPACES[case])
    assert not (tmp_path / "optuna.db").exists()  # refused before the study existed
    guard.assert_unchanged()


finite = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=25, deadline=None)
@given(low=st.one_of(finite, st.integers(-10, 10)), high=st.one_of(finite, st.integers(-10, 10)),
       log=st.booleans())  # fmt: skip
def test_property_a_range_is_a_valid_distribution_or_refused(low, high, log):
    spec = (low, high, "log") if log else (low, high)
    try:
        (distribution,) = _resolve_space({"lr": spec}, tiny_model(), None).values()
    except DataValidationError:
        return
    assert math.isfinite(distribution.low) and math.isfinite(distribution.high)
    assert distribution.low < distribution.high and (not log or distribution.low > 0)


def test_a_default_space_of_an_invalid_template_is_our_error():
    with pytest.raises(DataValidationError, match="horizon"):
        tune(tiny_model(horizon="five"), FRAME, n_trials=1, storage=None, track=False)
    with pytest.raises(DataValidationError, match="horizon"):
        default_search_space(tiny_model(horizon=0))
    with pytest.raises(DataValidationError, match="needs a forecaster estimator"):
        default_search_space("RNNForecaster")

"""Hostile tuning settings, storages, search spaces and trials: a reused study of another task
or space is refused naming both; counts and durations are honoured or refused (never replaced
by a default); storages that cannot hold a study are a StorageError naming them; a torch error
inside a trial fails that trial with a readable reason; nothing but our error types escapes
``tune``, and nothing outside the study's own storage changes."""

from __future__ import annotations

import math
import os
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
from forecaster.exceptions import (  # noqa: E402
    DataValidationError,
    ForecasterError,
    ForecasterWarning,
)
from forecaster.tuning import (  # noqa: E402
    StorageError,
    default_search_space,
    make_storage,
    tune,
)
from forecaster.tuning.space import resolve_space  # noqa: E402

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
        (lambda est, frame: float("-inf"), "not a finite number"),
    ],
)
def test_a_metric_that_raises_or_returns_nan_fails_its_trial(metric, reason):
    """A metric may fail for one trial's model (a diverged fit): that trial FAILs, the study
    goes on."""
    with pytest.raises(ForecasterError, match="No trial") as info:
        quick(metric=metric)
    assert reason in str(info.value)


# ------------------------------------------------------------------------------------------
# a metric callable: its signature before any trial, its type at the first trial
# ------------------------------------------------------------------------------------------


class _NoFrame:
    def __call__(self, estimator):
        return 1.0


WRONG_SIGNATURES = {
    "one argument": lambda estimator: 1.0,
    "no argument": lambda: 1.0,
    "three arguments": lambda estimator, frame, folds: 1.0,
    "keyword-only frame": lambda estimator, *, frame: 1.0,
    "a callable object of one argument": _NoFrame(),
    "a builtin of one argument": len,
}


@pytest.mark.parametrize("case", list(WRONG_SIGNATURES))
def test_a_metric_that_cannot_take_estimator_and_frame_is_refused_before_any_trial(
    tmp_path, tree_guard, case
):
    """Was: ``metric=lambda e: 1.0`` trained ten full trials, then failed "takes 1 positional
    argument but 2 were given"."""
    guard = tree_guard(tmp_path)
    with pytest.raises(
        DataValidationError, match=r"cannot be called as metric\(fitted_estimator, "
    ):
        quick(storage=f"sqlite:///{tmp_path / 'o.db'}", metric=WRONG_SIGNATURES[case])
    assert not (tmp_path / "o.db").exists()  # before the study existed
    guard.assert_unchanged()


@pytest.mark.parametrize(
    "metric",
    [
        lambda estimator, frame, extra=1: 1.0,
        lambda *args: 1.0,
        lambda estimator, frame=None: 1.0,
    ],
    ids=["a default", "varargs", "frame with a default"],
)
def test_a_metric_that_can_take_estimator_and_frame_is_accepted(metric):
    assert quick(metric=metric).best_value == 1.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (torch.tensor(0.25), 0.25),
        (torch.tensor([0.25]), 0.25),
        (np.array([0.25]), 0.25),
        (np.float32(0.25), 0.25),
        (np.int64(2), 2.0),
    ],
    ids=["0-d tensor", "1-element tensor", "1-element array", "float32", "int64"],
)
def test_a_metric_returning_one_number_in_a_tensor_or_array_is_taken_as_a_float(value, expected):
    result = quick(metric=lambda estimator, frame: value)
    assert result.best_value == expected and type(result.best_value) is float


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, "got bool True"),
        (np.bool_(False), "got bool np.False_"),
        (None, "got NoneType None"),
        ("0.5", "got str '0.5'"),
        (torch.tensor([0.25, 0.5]), "got Tensor tensor([0.2500, 0.5000])"),
        ([0.25], "got list [0.25]"),
        ({"mae": 0.25}, "got dict"),
    ],
    ids=["bool", "numpy bool", "None", "text", "2-element tensor", "list", "dict"],
)
def test_a_metric_returning_no_number_stops_the_study_at_its_first_trial(tmp_path, value, shown):
    """Was: ten identical failed trials (a tensor or a bool burnt them all)."""
    db = f"sqlite:///{tmp_path / 'o.db'}"
    with pytest.raises(DataValidationError, match="must return a real number") as info:
        quick(storage=db, study_name="m", n_trials=5, metric=lambda estimator, frame: value)
    message = str(info.value)
    assert shown in message and "stopped at the first trial whose metric" in message
    study = optuna.load_study(study_name="m", storage=db)
    assert [t.state.name for t in study.trials] == ["FAIL"]


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
        (distribution,) = resolve_space({"lr": spec}, tiny_model(), None).values()
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


# ------------------------------------------------------------------------------------------
# search spaces over the task or the objective's units
# ------------------------------------------------------------------------------------------

TASK_SPACES = {
    "target": {"target": ["y", "z"]},
    "horizon": {"horizon": [3, 6]},
    "time_col": {"time_col": ["time", "id"]},
    "id_col": {"id_col": ["id", None]},
    "freq": {"freq": ["auto", "2i"]},
    "missing": {"missing": ["error", "zero"]},
}
UNIT_SPACES = {
    "scaling": {"scaling": ["none", "standard", "minmax"]},
    "target_transform": {"target_transform": ["none", "log1p"]},
    "loss": {"loss": ["mse", "mae"]},
    "validation_size": {"validation_size": [0.1, 0.5]},
}


@pytest.mark.parametrize("case", [*TASK_SPACES, *UNIT_SPACES])
def test_a_space_over_the_task_or_the_units_of_the_loss_is_refused(tmp_path, tree_guard, case):
    """Was: trial values in different units ranked together (446.7 for scaling="none",
    0.25 for "minmax": the best was the unit with the smallest numbers), and trials of
    different tasks mixed in one study."""
    guard = tree_guard(tmp_path)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    space = {**TASK_SPACES, **UNIT_SPACES}[case]
    with pytest.raises(DataValidationError) as info:
        quick(storage=storage, search_space=space, n_trials=3)
    message = str(info.value)
    assert f"samples {case!r}" in message
    assert "study of its own" in message or "separate studies" in message
    assert not (tmp_path / "optuna.db").exists()
    guard.assert_unchanged()


def test_a_space_over_units_is_allowed_with_a_metric_on_the_original_scale():
    result = quick(
        search_space={"scaling": ["standard", "minmax"]},
        metric=lambda model, frame: float(model.history_[-1]["train_loss"]),
        n_trials=2,
    )
    assert result.n_trials_finished == 2
    with pytest.raises(DataValidationError, match="samples 'horizon'"):  # the task: never
        quick(search_space={"horizon": [3, 4]}, metric=lambda model, frame: 1.0)


@pytest.mark.parametrize(
    ("space", "match"),
    [
        (lambda trial: {"scaling": trial.suggest_categorical("s", ["none", "minmax"])},
         "callable samples 'scaling'"),
        (lambda trial: {"horizon": 3}, "callable samples 'horizon'"),
        (lambda trial: 1 / 0, "callable raised ZeroDivisionError"),
        (lambda trial: {"hidden_size": trial.suggest_float("h", 4.0, 8.0)},
         "callable returned hidden_size=.*must be an integer"),
        (lambda trial: {"colour": "red"}, "unknown parameter"),
        (lambda trial: ["hidden_size", 4], "must return a dict"),
    ],
)  # fmt: skip
def test_a_callable_space_that_is_wrong_stops_at_its_first_trial(tmp_path, space, match):
    """Was: ten failed trials (MAX_CONSECUTIVE_FAILURES) before tune gave up."""
    db = f"sqlite:///{tmp_path / 'optuna.db'}"
    with pytest.raises(DataValidationError, match=match) as info:
        quick(storage=db, search_space=space, study_name="callable", n_trials=5)
    assert "stopped at the first trial" in str(info.value)
    study = optuna.load_study(study_name="callable", storage=db)
    assert [t.state.name for t in study.trials] == ["FAIL"]


# ------------------------------------------------------------------------------------------
# values a parameter does not accept, frames an estimator does not fit on
# ------------------------------------------------------------------------------------------

WRONG_VALUES = {
    "floats for an int": ({"hidden_size": (4.0, 8.0)}, "hidden_size must be an integer"),
    "a mixed tuple": ({"hidden_size": (4, 8.5)}, "hidden_size must be an integer"),
    "float choices for an int": ({"num_layers": [1.5, 2]}, "num_layers must be an integer"),
    "dropout up to 1": ({"dropout": (0.0, 1.0)}, r"dropout must be a finite number in \[0, 1\)"),
    "numbers for a choice": ({"cell": [1, 2]}, "cell must be one of"),
    "a zero learning rate": ({"lr": [0.0, 0.1]}, "lr must be"),
    "float epochs": ({"max_epochs": (1.0, 3.0)}, "max_epochs must be an integer"),
    "patience 0": ({"patience": [0, 2]}, "patience must be"),
    "an unknown cell": ({"cell": ["gru", "lstmm"]}, "did you mean 'lstm'"),
}


@pytest.mark.parametrize("case", list(WRONG_VALUES))
def test_a_space_that_can_sample_a_refused_value_is_refused_before_any_trial(
    tmp_path, tree_guard, case
):
    """Was: ``{"hidden_size": (4.0, 8.0)}`` refused only after ten failed trials."""
    guard = tree_guard(tmp_path)
    space, match = WRONG_VALUES[case]
    with pytest.raises(DataValidationError, match=match) as info:
        quick(storage=f"sqlite:///{tmp_path / 'optuna.db'}", search_space=space)
    assert str(info.value).startswith(f"search_space[{next(iter(space))!r}]")
    assert not (tmp_path / "optuna.db").exists()
    guard.assert_unchanged()


@settings(max_examples=25, deadline=None)
@given(
    choices=st.lists(
        st.one_of(st.integers(-3, 300), st.floats(-3, 300), st.text(max_size=3), st.none()),
        min_size=1,
        max_size=4,
        unique_by=repr,
    )
)
def test_property_every_choice_of_an_accepted_space_passes_the_parameter_table(choices):
    from forecaster._validation import check

    try:
        space = resolve_space({"hidden_size": choices}, tiny_model(), None)
    except DataValidationError:
        return
    for choice in space["hidden_size"].choices:
        assert check("hidden_size", choice) == choice


def test_a_template_parameter_no_fit_accepts_is_refused_before_any_trial(tmp_path):
    with pytest.raises(DataValidationError, match="max_epochs must be an integer"):
        quick(tiny_model(max_epochs="two"), storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert not (tmp_path / "optuna.db").exists()


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        ("pandas with text times", r"pd\.to_datetime\(frame\['time'\]\)"),
        ("no target", r"lacks the columns \['y'\]"),
        ("a list", "must be a polars DataFrame"),
        ("arrays", "must be a polars DataFrame"),
    ],
)
def test_a_frame_the_estimator_cannot_fit_on_is_refused_before_any_trial(
    tmp_path, tree_guard, frame, match
):
    """Was: a pandas frame refused only after ten failed trials (tune now reads pandas as fit
    does: one whose times are text is refused with fit's pandas advice)."""
    guard = tree_guard(tmp_path)
    data = {
        "pandas with text times": FRAME.to_pandas().astype({"time": str}),
        "no target": FRAME.drop("y"),
        "a list": FRAME.rows(),
        "arrays": (np.zeros((4, 3)), np.zeros(4)),
    }[frame]
    with pytest.raises(DataValidationError, match=match):
        tune(tiny_model(), data, n_trials=2, storage=f"sqlite:///{tmp_path / 'o.db'}",
             search_space=SPACE, track=False)  # fmt: skip
    assert not (tmp_path / "o.db").exists()
    guard.assert_unchanged()


def test_a_regressor_is_tuned_on_arrays_only():
    from forecaster import RNNRegressor

    with pytest.raises(DataValidationError, match=r"pass frame=\(X, y\)"):
        tune(RNNRegressor(hidden_size=4), FRAME, n_trials=1, storage=None, track=False,
             search_space=SPACE)  # fmt: skip


# ------------------------------------------------------------------------------------------
# the study identity: every parameter that changes the objective, callables by their code
# ------------------------------------------------------------------------------------------

REUSED_2 = {
    "scaling": ({"scaling": "minmax"}, "scaling: the study has 'standard', this call 'minmax'"),
    "target_transform": ({"target_transform": "log1p"}, "target_transform: the study has"),
    "missing": ({"missing": "zero"}, "missing: the study has 'error', this call 'zero'"),
    "freq": ({"freq": 1}, "freq: the study has 'auto', this call 1"),
    "calendar": ({"calendar": "auto"}, "calendar: the study has None, this call 'auto'"),
    "covariates": ({"covariates": ["z"]}, "covariates: the study has None, this call ['z']"),
}


@pytest.mark.parametrize("case", list(REUSED_2))
def test_a_reused_study_with_another_scaling_transform_or_data_policy_is_refused(
    db, tree_guard, tmp_path, case
):
    """Was: a study of scaling="standard" resumed with scaling="minmax" (values in other
    units mixed)."""
    quick(storage=db, study_name="units")
    guard = tree_guard(tmp_path, allowed=("studies",))
    overrides, expected = REUSED_2[case]
    with pytest.raises(DataValidationError) as info:
        quick(tiny_model(**overrides), storage=db, study_name="units", n_trials=2)
    assert expected in str(info.value), str(info.value)
    assert len(optuna.load_study(study_name="units", storage=db).trials) == 1
    guard.assert_unchanged()


def test_two_lambdas_are_two_metrics_and_the_same_one_resumes(db):
    """Was: every lambda was "<module>.<lambda>", so a study of one metric resumed with
    another."""
    first = lambda model, frame: 1.0  # noqa: E731
    second = lambda model, frame: 2.0  # noqa: E731
    quick(storage=db, study_name="metric", metric=first)
    assert quick(storage=db, study_name="metric", metric=first, n_trials=2).n_trials_run == 1
    with pytest.raises(DataValidationError, match=r"metric: the study has .*<lambda> \(code"):
        quick(storage=db, study_name="metric", metric=second, n_trials=3)


def test_two_callable_spaces_are_told_apart_by_their_code(db):
    small = lambda trial: {"hidden_size": trial.suggest_categorical("hidden_size", [4])}  # noqa: E731
    large = lambda trial: {"hidden_size": trial.suggest_categorical("hidden_size", [8])}  # noqa: E731
    quick(storage=db, study_name="space", search_space=small)
    with pytest.raises(DataValidationError, match="search space callable: the study has"):
        quick(storage=db, study_name="space", search_space=large, n_trials=2)


def test_another_fixed_parameter_resumes_with_a_warning(db):
    """lookback, the network and training parameters outside the space do not change the
    objective's units: a resumed study with another value warns, naming it."""
    quick(storage=db, study_name="fixed")
    with pytest.warns(ForecasterWarning, match="lookback: the study has 12, this call 8"):
        result = quick(tiny_model(lookback=8), storage=db, study_name="fixed", n_trials=2)
    assert result.n_trials_finished == 2


def test_default_study_names_differ_by_scaling_so_both_studies_run(db):
    one = quick(storage=db, study_name=None)
    two = quick(tiny_model(scaling="minmax"), storage=db, study_name=None)
    assert one.study_name != two.study_name
    assert (one.n_trials_finished, two.n_trials_finished) == (1, 1)


# ------------------------------------------------------------------------------------------
# in-memory SQLite, more workers than cores or trials
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "storage",
    ["sqlite:///:memory:", "sqlite://", "sqlite:///file:studies?mode=memory&uri=true",
     "sqlite+pysqlite:///:memory:"],
)  # fmt: skip
def test_an_in_memory_sqlite_storage_is_refused_pointing_at_storage_none(storage):
    """Was: accepted, then heartbeat tracebacks ("no such table: trial_heartbeats") and,
    with n_workers=2, a KeyError with the advice to rerun the same call."""
    with pytest.raises(StorageError, match="Pass storage=None for an in-memory study"):
        quick(storage=storage)


def test_a_sqlite_url_with_a_driver_is_checked_like_sqlite(tmp_path):
    (tmp_path / "notes.db").write_text("my notes")
    with pytest.raises(StorageError, match="is not a SQLite database"):
        quick(storage=f"sqlite+pysqlite:///{tmp_path / 'notes.db'}")
    assert (tmp_path / "notes.db").read_text() == "my notes"


def test_more_workers_than_trials_is_reduced_with_a_warning(tmp_path):
    """Was: n_trials=1, n_workers=6 spawned six processes importing torch on two cores."""
    with pytest.warns(ForecasterWarning, match=r"n_workers=6 reduced to 1: 1 trial\(s\) remain"):
        result = quick(storage=f"sqlite:///{tmp_path / 'o.db'}", n_workers=6)
    assert result.n_trials_run == 1
    assert {t.user_attrs["pid"] for t in result.study.trials} == {os.getpid()}  # no process


def test_more_workers_than_cores_is_reduced_with_a_warning(tmp_path, monkeypatch):
    from forecaster.tuning import trials

    monkeypatch.setattr(trials, "available_cores", lambda: 1)
    with pytest.warns(ForecasterWarning, match="reduced to 1: this process may run on 1 CPU"):
        result = quick(storage=f"sqlite:///{tmp_path / 'o.db'}", n_workers=3, n_trials=2)
    assert {t.user_attrs["pid"] for t in result.study.trials} == {os.getpid()}


# ------------------------------------------------------------------------------------------
# what depends on the data: checked once before any trial
# ------------------------------------------------------------------------------------------

# FRAME: two series of 120 steps; horizon 4; validation_size 0.1 holds out 12 steps: the
# longest lookback with a training window is 120 - 12 - 4 = 104.
TOO_LONG = {
    "one choice": ({"lookback": [200]}, None, r"search_space\['lookback'\] = \[200\] can sample"),
    "one choice of two": ({"lookback": [12, 105]}, None, r"too long for the data \(\[105\]\)"),
    "a range": ({"lookback": (8, 150)}, None, r"= \(8, 150\) can sample lookbacks too long"),
    "the template's": (SPACE, {"lookback": 105}, r"lookback=105 \(the estimator's; the space"),
    "the default space": (None, {"horizon": 60}, r"The default search space \(lookback"),
}


@pytest.mark.parametrize("case", list(TOO_LONG))
def test_lookbacks_too_long_for_every_series_are_refused_before_any_trial(
    tmp_path, tree_guard, case
):
    """Was: ``search_space={"lookback": [100]}`` on 40-step series burnt ten identical trials."""
    guard = tree_guard(tmp_path)
    space, overrides, match = TOO_LONG[case]
    with pytest.raises(DataValidationError, match=match) as info:
        quick(tiny_model(**(overrides or {})), storage=f"sqlite:///{tmp_path / 'o.db'}",
              search_space=space)  # fmt: skip
    message = str(info.value)
    assert "the longest series has 120 steps" in message and "No trial was run" in message
    if case != "the default space":
        assert "lookback can be at most 104" in message
    assert not (tmp_path / "o.db").exists()
    guard.assert_unchanged()


def test_the_longest_lookback_the_data_has_room_for_is_accepted():
    assert quick(search_space={"lookback": [104]}).best_params == {"lookback": 104}


def test_a_callable_space_that_leaves_a_too_long_lookback_stops_at_its_first_trial(tmp_path):
    db = f"sqlite:///{tmp_path / 'o.db'}"
    with pytest.raises(DataValidationError, match="sets no lookback") as info:
        quick(tiny_model(lookback=105), storage=db, study_name="c", n_trials=5,
              search_space=lambda trial: {"hidden_size": trial.suggest_int("h", 4, 8)})  # fmt: skip
    assert "room for lookbacks up to 104" in str(info.value)
    study = optuna.load_study(study_name="c", storage=db)
    assert [t.state.name for t in study.trials] == ["FAIL"]


BAD_DATA = {
    "a missing target": (
        FRAME.with_columns(pl.when(pl.col("time") == 5).then(None).otherwise("y").alias("y")),
        "Missing values",
    ),
    "an infinite target": (
        FRAME.with_columns(pl.when(pl.col("time") == 5).then(np.inf).otherwise("y").alias("y")),
        "Infinite values",
    ),
    "duplicate rows": (pl.concat([FRAME, FRAME.head(3)]), "duplicate"),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_data_every_fit_would_refuse_is_refused_before_any_trial(tmp_path, tree_guard, case):
    """Was: ten failed trials, then "No trial completed" quoting the same data error."""
    guard = tree_guard(tmp_path)
    frame, match = BAD_DATA[case]
    with pytest.raises(DataValidationError, match=match) as info:
        tune(tiny_model(), frame, n_trials=3, storage=f"sqlite:///{tmp_path / 'o.db'}",
             search_space=SPACE, track=False)  # fmt: skip
    assert str(info.value).startswith("tune reads the frame as each trial's fit would")
    assert not (tmp_path / "o.db").exists()
    guard.assert_unchanged()

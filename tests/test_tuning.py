"""Tests of forecaster.tuning: search spaces, studies, pruning, storage, resume and workers."""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import sqlalchemy
import torch
from sklearn.base import clone

optuna = pytest.importorskip("optuna")

from conftest import (  # noqa: E402
    GAPPY_MODEL,
    forecaster_warning_kinds,
    gappy_panel,
    reset_mlflow_state,
    tree_digest,
)
from tuning_worker import (  # noqa: E402
    SLEEP_VARIABLE,
    TINY_SPACE,
    SlowForecaster,
    raise_two_argument_error,
    tiny_frame,
    tiny_model,
    wait_for_two_pids,
)

from forecaster import LSTMForecaster, RNNForecaster, RNNRegressor  # noqa: E402
from forecaster.exceptions import (  # noqa: E402
    DataValidationError,
    ForecasterError,
    ForecasterWarning,
    StorageError,
)
from forecaster.training import register_fit_callback, unregister_fit_callback  # noqa: E402
from forecaster.tuning import (  # noqa: E402
    TuneResult,
    default_search_space,
    default_storage_url,
    make_storage,
    tune,
)
from forecaster.tuning.conditions import trial_params  # noqa: E402
from forecaster.tuning.identity import study_identity  # noqa: E402
from forecaster.tuning.space import resolve_space, sample_params  # noqa: E402
from forecaster.tuning.trials import (  # noqa: E402
    PruningReporter,
    available_cores,
    make_pruner,
    make_sampler,
)

WORKER = Path(__file__).with_name("tuning_worker.py")


def _worker_env() -> dict[str, str]:
    """The environment of a ``tuning_worker.py`` process: this checkout's code (its script
    folder comes first on its path, not the working directory), on one thread."""
    path = os.pathsep.join(filter(None, [str(WORKER.parents[1]), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


COMPLETE, PRUNED, FAIL, RUNNING = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
    optuna.trial.TrialState.RUNNING,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny networks are fastest (and not slowed by busy cores) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def frame():
    return tiny_frame()


def quick(estimator=None, frame=None, **kwargs) -> TuneResult:
    settings = {
        "n_trials": 2,
        "storage": None,
        "search_space": TINY_SPACE,
        "random_state": 0,
        "show_progress": False,
        "refit": False,
    }
    settings.update(kwargs)
    return tune(estimator or tiny_model(), frame if frame is not None else tiny_frame(), **settings)


# ------------------------------------------------------------------------------------------
# search spaces
# ------------------------------------------------------------------------------------------


def test_default_space_rnn_forecaster():
    space = default_search_space(RNNForecaster(target="y", horizon=24))
    expected = {"cell", "head", "lookback", "segment_length", "nonlinearity", "hidden_size"}
    assert expected | {"num_layers", "dropout", "lr", "weight_decay", "batch_size"} <= set(space)
    assert "loss" not in space and "max_epochs" not in space and "target" not in space
    assert space["lookback"].choices == (48, 72, 96, 144, 192)
    assert space["segment_length"].choices == (12, 24, 48)
    assert space["lr"].log and space["weight_decay"].log


def test_default_space_samples_only_settings_that_can_act():
    """A batch larger than windows_per_epoch holds windows_per_epoch windows (64, 128 and 256
    gave bit-identical trials), and a cosine schedule acts after an epoch (max_epochs=1)."""
    space = default_search_space(RNNForecaster(target="y", windows_per_epoch=64, max_epochs=1))
    assert space["batch_size"].choices == (32, 64) and "lr_schedule" not in space
    space = default_search_space(RNNForecaster(target="y"))
    assert space["batch_size"].choices == (32, 64, 128, 256) and "lr_schedule" in space


def test_default_space_lookback_fits_the_data():
    model = RNNForecaster(target="y", id_col="id", lookback=24, horizon=6)
    assert default_search_space(model, tiny_frame())["lookback"].choices == (16, 24, 32, 48, 64)
    short = default_search_space(model, tiny_frame(length=80))
    assert short["lookback"].choices == (16, 24, 32)
    assert max(short["segment_length"].choices) <= 16


@pytest.mark.parametrize("cls", [RNNForecaster, LSTMForecaster])
def test_default_space_sampling(cls):
    model = cls(target="y", horizon=12, lookback=48)
    space = default_search_space(model)
    assert ("cell" in space) == (cls is RNNForecaster)
    assert ("nonlinearity" in space) == (cls is RNNForecaster)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_heads = set()
    for _ in range(30):
        trial = study.ask()
        params = sample_params(trial, space, model)
        head = params["head"]
        seen_heads.add(head)
        assert ("segment_length" in params) == (head == "segment")
        assert ("nonlinearity" in params) == (params.get("cell") == "rnn")
        assert params["lookback"] in space["lookback"].choices
        assert params.get("segment_length", 0) <= min(space["lookback"].choices)
        fitted = clone(model).set_params(**params)  # every sampled name is a parameter
        assert fitted.get_params()["hidden_size"] == params["hidden_size"]
        study.tell(trial, 0.0)
    assert seen_heads == {"segment", "direct", "seq2seq"}


def test_user_space_shorthand_and_distributions():
    model = tiny_model()
    space = resolve_space(
        {
            "hidden_size": [4, 8],
            "num_layers": (1, 2),
            "lr": (1e-3, 1e-2, "log"),
            "dropout": (0.0, 0.3),
            "batch_size": optuna.distributions.CategoricalDistribution((32, 64)),
            "lookback": (16, 64, "log"),
        },
        model,
        None,
    )
    dist = optuna.distributions
    assert space["hidden_size"] == dist.CategoricalDistribution((4, 8))
    assert space["num_layers"] == dist.IntDistribution(1, 2)
    assert space["lr"] == dist.FloatDistribution(1e-3, 1e-2, log=True)
    assert space["dropout"] == dist.FloatDistribution(0.0, 0.3)
    assert space["lookback"] == dist.IntDistribution(16, 64, log=True)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(10):
        params = sample_params(study.ask(), space, model)
        assert params["hidden_size"] in (4, 8) and 1 <= params["num_layers"] <= 2
        assert 1e-3 <= params["lr"] <= 1e-2 and 0.0 <= params["dropout"] <= 0.3
        assert isinstance(params["lookback"], int) and 16 <= params["lookback"] <= 64
        assert "segment_length" not in params  # not in the user's space


@pytest.mark.parametrize(
    "spec",
    [(1e-2, 1e-3), "fast", [], (1, 2, "cubic"), (1, 2, 3, 4), (True, False), (0.0, 1.0, "log")],
)
def test_bad_space_spec(spec):
    with pytest.raises(DataValidationError, match=r"is not a distribution|empty list|low"):
        resolve_space({"lr": spec}, tiny_model(), None)


def test_a_conditional_parameter_no_trial_would_use_is_refused():
    """segment_length with a direct head, nonlinearity with an LSTM: every trial skipped them
    and fit the same model, and best_params left them out."""
    direct = tiny_model(head="direct")
    with pytest.raises(DataValidationError, match=r"'segment_length', used only with head="):
        resolve_space({"segment_length": [2, 4]}, direct, None)
    with pytest.raises(DataValidationError, match=r"head is sampled from \['direct', 'seq2seq'\]"):
        resolve_space({"segment_length": [2, 4], "head": ["direct", "seq2seq"]}, direct, None)
    with pytest.raises(DataValidationError, match=r"'nonlinearity', used only with cell='rnn'"):
        resolve_space({"nonlinearity": ["tanh", "relu"]}, tiny_model(LSTMForecaster), None)
    space = resolve_space({"segment_length": [2, 4], "head": ["direct", "segment"]}, direct, None)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    heads = [sample_params(study.ask(), space, direct) for _ in range(12)]
    assert all(("segment_length" in p) == (p["head"] == "segment") for p in heads)
    assert {p["head"] for p in heads} == {"direct", "segment"}


def test_a_template_setting_a_conditional_parameter_tunes_its_parent(frame):
    """A template with segment_length=4 (or nonlinearity='relu') and a space sampling the
    head (the cell): trials whose head leaves it unused fit with the default instead (fit
    refuses a parameter it would ignore), and so does the refit of the best; a template whose
    own head leaves it unused is refused before any trial."""
    template = tiny_model(segment_length=4)
    assert trial_params({"head": "direct"}, template) == {
        "head": "direct",
        "segment_length": "auto",
    }
    assert trial_params({"head": "segment"}, template) == {"head": "segment"}
    relu = tiny_model(RNNForecaster, nonlinearity="relu")
    assert trial_params({"cell": "gru"}, relu) == {"cell": "gru", "nonlinearity": "tanh"}
    result = quick(
        template, frame, search_space={"head": ["direct", "segment"]}, n_trials=4, refit=True
    )
    states = {t.params["head"]: t.state for t in result.study.trials}
    assert states == {"direct": COMPLETE, "segment": COMPLETE}, states
    best = result.best_estimator
    assert best.segment_length == (4 if best.head == "segment" else "auto")
    with pytest.raises(DataValidationError, match=r"sets segment_length=4, used only with head="):
        quick(tiny_model(segment_length=4, head="direct"), frame, search_space={"lr": [1e-3]})


def test_a_space_without_one_valid_combination_is_refused_before_any_trial(frame):
    """Every trial of it failed the same check (linear_skip=True with a recursive head), and
    the study stopped after its failed-trial limit; a space with one valid combination runs."""
    recursive = tiny_model(head="recursive", segment_length="auto")
    with pytest.raises(DataValidationError, match=r"linear_skip=True is not.*no combination"):
        resolve_space({"linear_skip": [True], "lr": (1e-4, 1e-2)}, recursive, None)
    space = resolve_space({"linear_skip": [True], "head": ["recursive", "direct"]}, recursive, None)
    assert set(space) == {"linear_skip", "head"}


def test_a_template_every_trial_would_fail_is_refused_before_any_trial(tmp_path, frame):
    """checkpoint_every without checkpoint_dir, on_oom='split' on the CPU: fit refuses them
    whatever a trial samples, and the study wrote 10 FAIL trials before it stopped."""
    url = f"sqlite:///{tmp_path}/optuna.db"
    for settings in ({"checkpoint_every": 5}, {"on_oom": "split", "device": "cpu"}):
        with pytest.raises(DataValidationError) as fitted:
            tiny_model(**settings).fit(frame)
        for space in (TINY_SPACE, None):  # a dict space, the default one
            with pytest.raises(DataValidationError, match="every trial's fit would") as tuned:
                quick(tiny_model(**settings), frame, storage=url, search_space=space)
            assert str(tuned.value).startswith(str(fitted.value))  # fit's own message
    assert not (tmp_path / "optuna.db").exists()  # refused before the study was opened

    def space(trial):
        return {"hidden_size": trial.suggest_categorical("hidden_size", [4, 8])}

    with pytest.raises(DataValidationError, match="stopped at the first trial") as tuned:
        quick(tiny_model(checkpoint_every=5), frame, storage=url, study_name="c",
              search_space=space)  # fmt: skip
    assert str(tuned.value).startswith("checkpoint_every=5 is set without checkpoint_dir")
    assert [t.state for t in optuna.load_study(study_name="c", storage=url).trials] == [FAIL]


def test_a_template_the_default_space_leaves_to_every_trial_is_refused_with_fits_message(
    tmp_path, frame
):
    """lr_schedule='cosine' with max_epochs=1 (the default space samples no lr_schedule then),
    static_covariates with id_col=None: fit refused them in every trial, and the default
    space's study wrote 10 FAIL trials (only run settings were checked)."""
    url = f"sqlite:///{tmp_path}/optuna.db"
    one_series = frame.filter(pl.col("id") == "s0").drop("id").with_columns(g=pl.lit(1.0))
    cases = [
        (tiny_model(max_epochs=1, lr_schedule="cosine"), frame),
        (tiny_model(max_epochs=1, id_col=None, static_covariates="g"), one_series),
    ]
    for model, data in cases:
        with pytest.raises(DataValidationError) as fitted:
            clone(model).fit(data)
        with pytest.raises(DataValidationError, match="whatever the default search space") as tuned:
            quick(model, data, storage=url, search_space=None)
        assert str(tuned.value).startswith(str(fitted.value))  # fit's own message
    assert not (tmp_path / "optuna.db").exists()  # refused before the study was opened
    # what the default space samples can make a trial valid: not refused
    resolve_space(None, tiny_model(channel_independent=True), frame)  # head="segment" fits
    resolve_space(None, tiny_model(max_epochs=6, lr_schedule="plateau", patience=1), frame)


def test_a_space_every_combination_of_which_fit_refuses_gets_fits_message(frame):
    model = tiny_model(max_epochs=1)
    with pytest.raises(DataValidationError) as fitted:
        clone(model).set_params(lr_schedule="cosine").fit(frame)
    with pytest.raises(DataValidationError, match="every trial's fit would refuse it") as tuned:
        resolve_space({"lr_schedule": ["cosine"], "hidden_size": [4, 8]}, model, frame)
    assert str(tuned.value).startswith(str(fitted.value))
    resolve_space({"lr_schedule": ["cosine"], "max_epochs": [1, 2]}, model, frame)  # 2 fits


def test_unknown_parameter_names(frame):
    with pytest.raises(DataValidationError) as info:
        quick(frame=frame, search_space={"hiden_size": [8], "learning_rate": (1e-3, 1e-2)})
    message = str(info.value)
    assert "'hiden_size' (did you mean hidden_size" in message
    assert (
        "'learning_rate' (did you mean lr?)" in message and "lookback" in message
    )  # the known names are listed
    with pytest.raises(DataValidationError, match="search_space must be"):
        quick(frame=frame, search_space=[("lr", 0.1)])


# ------------------------------------------------------------------------------------------
# studies
# ------------------------------------------------------------------------------------------


def test_tiny_study_refits_the_best_estimator(frame):
    result = quick(frame=frame, n_trials=3, refit=True)
    assert result.n_trials_finished == 3 and result.n_trials_run == 3
    assert set(result.best_params) == {"hidden_size", "lr"}
    assert result.best_value == min(t.value for t in result.study.trials)
    best = result.best_estimator
    assert best.hidden_size == result.best_params["hidden_size"]
    assert best.random_state == 0  # tune's seed, as the template had none
    forecast = best.predict(frame)
    assert forecast.shape == (12, 3) and np.isfinite(forecast["y"].to_numpy()).all()
    trial = result.study.trials[0]
    assert trial.user_attrs["pid"] == os.getpid()
    assert [r["epoch"] for r in trial.user_attrs["history"]] == [1, 2]
    assert sorted(trial.intermediate_values) == [1, 2]
    table = result.trials_frame()
    assert table.height == 3 and {"params_hidden_size", "params_lr", "state"} <= set(table.columns)


@pytest.mark.parametrize("seed", [2**32, -1, 1.5])
def test_tune_refuses_a_seed_with_the_estimators_message(frame, seed):
    """One rule for a seed: the estimator's and tune's messages are one, and say the range
    (2**32 got the generic "far beyond any size this package can allocate")."""
    with pytest.raises(DataValidationError) as by_fit:
        tiny_model(random_state=seed).fit(frame)
    with pytest.raises(DataValidationError) as by_tune:
        quick(frame=frame, random_state=seed)
    assert str(by_tune.value) == str(by_fit.value)
    assert "Seeds go from 0 to 2**32 - 1" in str(by_tune.value)
    assert "far beyond" not in str(by_tune.value)


def test_tune_reads_a_pandas_frame_as_fit_does(frame):
    """tune refused any pandas frame ("must be a polars DataFrame or LazyFrame ... Convert
    it with pl.from_pandas(frame)"), where fit converts it and advises in pandas code for a
    time column to parse: tune now converts it as fit does, with the same advice."""
    pd = pytest.importorskip("pandas")
    dated = frame.with_columns(pl.datetime(2024, 1, 1) + pl.duration(hours=pl.col("time")))
    pdf = dated.to_pandas()
    texts = pdf.assign(time=pdf["time"].astype(str))
    with pytest.raises(DataValidationError) as by_fit:
        tiny_model().fit(texts)
    with pytest.raises(DataValidationError) as by_tune:
        quick(frame=texts)
    assert str(by_tune.value) == str(by_fit.value)
    assert "pd.to_datetime(frame['time'])" in str(by_tune.value)
    periods = pdf.assign(time=pd.to_datetime(pdf["time"]).dt.to_period("h"))
    with pytest.raises(DataValidationError, match=r"frame\['time'\]\.dt\.to_timestamp\(\)"):
        quick(frame=periods)
    result = quick(frame=pdf, n_trials=1)
    assert result.n_trials_finished == 1


def test_default_space_end_to_end(frame):
    model = tiny_model(LSTMForecaster, max_epochs=1, windows_per_epoch=64)
    result = tune(model, frame, n_trials=2, storage=None, random_state=3, track=False, refit=False)
    assert result.n_trials_finished == 2
    assert "lookback" in result.best_params and "cell" not in result.best_params


def test_regressor_on_arrays():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 8, 2)).astype(np.float32)
    y = X[:, -1, 0] + 0.5 * X[:, -2, 1]
    model = RNNRegressor(max_epochs=2, batch_size=32)
    space = default_search_space(model)
    assert "lookback" not in space and space["head"].choices == ("direct", "seq2seq")
    result = quick(model, (X, y), refit=True)
    assert result.n_trials_finished == 2 and result.best_estimator.predict(X).shape == (96,)


def test_pruned_trials_are_recorded(frame):
    class PruneOdd(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number % 2 == 1

    result = quick(frame=frame, n_trials=3, pruner=PruneOdd())
    states = [t.state for t in result.study.trials]
    assert states == [COMPLETE, PRUNED, COMPLETE]
    pruned = result.study.trials[1]
    assert list(pruned.intermediate_values) == [1]  # pruned after its first epoch
    assert len(pruned.user_attrs["history"]) == 1
    assert result.n_trials_finished == 3


def test_a_pruned_trial_shows_no_objective_value(frame):
    """Optuna gives a pruned trial its last intermediate value, the running best validation
    loss (negated in a maximize study): other units than a metric callable's objective."""

    class PruneOdd(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number % 2 == 1

    def score(model, data):  # higher is better, in other units than the loss
        return 1000.0 - float(model.val_loss_)

    result = quick(frame=frame, n_trials=3, pruner=PruneOdd(), metric=score,
                   direction="maximize")  # fmt: skip
    table = result.trials_frame()
    assert table["state"].to_list() == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert table["value"][1] is None  # not the negated loss Optuna holds
    assert result.study.trials[1].value < 0
    first_epoch_loss = result.study.trials[1].user_attrs["history"][0]["val_loss"]
    assert table["best_val_loss"][1] == pytest.approx(first_epoch_loss)  # where it stopped
    assert (table["value"][[0, 2]] > 900).all() and (table["best_val_loss"] > 0).all()
    assert result.best_value == max(table["value"][[0, 2]])


def test_pruner_choices():
    assert isinstance(make_pruner("median", 50), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband", 50), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("none", 50), optuna.pruners.NopPruner)
    own = optuna.pruners.PercentilePruner(25.0)
    assert make_pruner(own, 50) is own
    with pytest.raises(DataValidationError, match="pruner='sometimes'"):
        make_pruner("sometimes", 50)


def test_median_pruner_prunes_a_bad_trial():
    """The reporter's running best loss against the median of earlier trials."""
    from forecaster.training.loop import EpochRecord

    study = optuna.create_study(pruner=make_pruner("median", 10))
    for _ in range(5):  # good trials
        trial = study.ask()
        reporter = PruningReporter(trial, 1.0)
        for epoch in range(1, 6):
            reporter(EpochRecord(epoch, 1.0, 1.0 / epoch, 1e-3, 0.1, 1.0), None)
        study.tell(trial, 0.2)
    trial = study.ask()
    reporter = PruningReporter(trial, 1.0)
    with pytest.raises(optuna.TrialPruned, match="after epoch 3"):
        for epoch in range(1, 6):  # epochs 1 and 2 are the warm-up
            reporter(EpochRecord(epoch, 1.0, 5.0, 1e-3, 0.1, 1.0), None)


def test_an_ensembles_trial_is_scored_as_the_ensemble_not_its_best_member():
    """The objective was the best epoch over every member's history: an ensemble trial scored
    as its luckiest network, so tune preferred more members whatever they did together."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 12, 2)).astype("float32")
    y = x[:, -1, 0] + x[:, -2, 1]
    params = dict(hidden_size=8, max_epochs=3, random_state=0, n_ensemble=2)
    model = RNNRegressor(**params).fit(x, y)
    fit_rows = len(x) - round(0.1 * len(x))  # the last 10 % validate (scaled squared error)
    errors = (model.predict(x[fit_rows:]) - y[fit_rows:]) / y[:fit_rows].std()
    assert model.val_loss_ == pytest.approx(float(np.mean(errors**2)), rel=1e-4)
    assert model.val_loss_ != pytest.approx(min(r["val_loss"] for r in model.history_))
    result = tune(
        RNNRegressor(**params), (x, y), n_trials=1, search_space={"hidden_size": [8]},
        storage=None, random_state=0, show_progress=False, refit=False,
    )  # fmt: skip
    assert result.study.best_value == pytest.approx(model.val_loss_, rel=1e-6)


def test_bad_arrays_of_a_regressor_are_refused_before_any_trial(tmp_path):
    """(X, y) of different lengths, or NaN in X: ten trials failed the same way, and stayed
    in the study, before tune said so."""
    x = np.random.default_rng(0).normal(size=(60, 8, 2)).astype("float32")
    y, nan_x = x[:, -1, 0], np.where(np.arange(60)[:, None, None] == 0, np.nan, x)
    url = f"sqlite:///{tmp_path}/optuna.db"
    for data, message in (((x, y[:50]), "inconsistent numbers"), ((nan_x, y), "contains NaN")):
        with pytest.raises(
            DataValidationError, match=f"every trial would fail as fit does: .*{message}"
        ):
            tune(
                RNNRegressor(hidden_size=4, max_epochs=1), data, n_trials=2,
                search_space={"hidden_size": [4, 8]}, storage=url, study_name="arrays",
                show_progress=False,
            )  # fmt: skip
    studies = optuna.get_all_study_summaries(url) if (tmp_path / "optuna.db").exists() else []
    assert all(summary.n_trials == 0 for summary in studies)


def test_tune_refuses_an_estimator_that_is_not_forecasters():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    pipeline = make_pipeline(FunctionTransformer(), RNNRegressor(hidden_size=4))
    x = np.zeros((20, 4, 1), dtype="float32")
    with pytest.raises(DataValidationError, match="forecaster's estimators, not a Pipeline"):
        tune(pipeline, (x, x[:, -1, 0]), n_trials=1, storage=None, show_progress=False)


def test_pruning_follows_the_first_member_of_an_ensemble_only():
    from forecaster.training.loop import EpochRecord

    study = optuna.create_study(pruner=make_pruner("none", 10))
    trial = study.ask()
    reporter = PruningReporter(trial, 1.0)
    first, second = object(), object()
    for epoch, network, loss in [(1, first, 0.5), (2, first, 0.4), (3, second, 0.1)]:
        reporter(EpochRecord(epoch, 1.0, loss, 1e-3, 0.1, 1.0), network)
    assert study.trials[0].intermediate_values == {1: 0.5, 2: 0.4}
    assert len(reporter.history) == 3  # every epoch is kept in the trial's history


def test_same_random_state_same_params(frame):
    space = {**TINY_SPACE, "lookback": [16, 24]}
    runs = [quick(frame=frame, n_trials=3, search_space=space) for _ in range(2)]
    params = [[t.params for t in r.study.trials] for r in runs]
    assert params[0] == params[1]
    assert [t.value for t in runs[0].study.trials] == [t.value for t in runs[1].study.trials]


def test_samplers_of_processes_sharing_a_study_draw_from_their_trial_numbers(tmp_path):
    """Two processes' samplers on one study (same random_state): each trial's draw is seeded by
    its number, so interleaved trials differ, and a study run by one process alone repeats."""
    url = f"sqlite:///{tmp_path}/optuna.db"
    optuna.create_study(storage=url, study_name="shared")
    processes = [
        optuna.load_study(study_name="shared", storage=url, sampler=make_sampler(0))
        for _ in range(2)
    ]
    distribution = optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    shared = []
    for _ in range(3):  # both processes ask before either tells, as they do side by side
        trials = [study.ask({"lr": distribution}) for study in processes]
        shared += [t.params["lr"] for t in trials]
        for study, trial in zip(processes, trials, strict=True):
            study.tell(trial, 1.0)
    assert len(set(shared)) == len(shared)
    alone = optuna.create_study(sampler=make_sampler(0))
    assert [alone.ask({"lr": distribution}).params["lr"] for _ in range(6)] == shared
    assert isinstance(make_sampler(0), optuna.samplers.BaseSampler)


def test_two_calls_joining_one_study_at_once_do_not_repeat_trials(monkeypatch, tmp_path, frame):
    """The documented multi-machine recipe: the same tune(..., random_state=0) call, started
    at the same moment by two processes (here two threads, held together until both have
    looked at the study and before either samples) on one storage: no trial repeats the
    parameters of another."""
    import threading

    from forecaster.tuning import study as study_module

    barrier, real = threading.Barrier(2, timeout=60), study_module.bounded_workers

    def together(*args):  # called by tune after it looked at the study, before any trial
        barrier.wait()
        return real(*args)

    monkeypatch.setattr(study_module, "bounded_workers", together)
    url, results, errors = f"sqlite:///{tmp_path}/optuna.db", [], []
    make_storage(url)  # the tables exist before the two calls open the storage

    def call():
        try:
            results.append(quick(frame=frame, n_trials=4, storage=url, study_name="shared"))
        except Exception as exc:  # shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(results) == 2, errors
    drawn = [(t.params["hidden_size"], t.params["lr"]) for t in _trials(url, "shared")]
    assert len(drawn) >= 4 and len(set(drawn)) == len(drawn), drawn


def test_a_study_whose_identity_another_process_is_writing_is_joined(tmp_path, frame):
    """A process that created the study writes its identity one attribute at a time; another
    one starting the same call then finds the task but not yet the search space."""
    url, model = f"sqlite:///{tmp_path}/optuna.db", tiny_model()
    space = resolve_space(TINY_SPACE, model, frame, "val_loss")
    identity = study_identity(model, space, "val_loss", "minimize")
    study = optuna.create_study(storage=url, study_name="half")
    study.set_user_attr("forecaster.task", identity["forecaster.task"])
    result = quick(model, frame, storage=url, study_name="half", n_trials=1)
    assert result.study.user_attrs["forecaster.search_space"] == identity["forecaster.search_space"]


def test_failed_trials_do_not_stop_the_study(frame):
    def space(trial):  # the first trial's lookback is longer than the series
        return {"lookback": 1000 if trial.number == 0 else 24}

    result = quick(frame=frame, search_space=space)
    states = [t.state for t in result.study.trials]
    assert states == [FAIL, COMPLETE, COMPLETE]
    assert "shorter than" in result.study.trials[0].user_attrs["error"]
    assert result.best_params == {"lookback": 24}


def test_no_completed_trial_is_an_error(frame):
    with pytest.raises(ForecasterError, match=r"No trial .* completed \(10 fail\).*shorter than"):
        quick(frame=frame, search_space=lambda trial: {"lookback": 1000})


def test_metric_callable_and_settings_errors(frame):
    result = quick(frame=frame, n_trials=1, metric=lambda est, data: float(len(est.history_)))
    assert result.best_value == 2.0
    with pytest.raises(DataValidationError, match="validation_size=0"):
        quick(tiny_model(validation_size=0), frame)
    with pytest.raises(DataValidationError, match="metric='mape'"):
        quick(frame=frame, metric="mape")
    with pytest.raises(DataValidationError, match="direction='minimize'"):
        quick(frame=frame, direction="maximize")
    with pytest.raises(DataValidationError, match="n_trials, timeout or both"):
        quick(frame=frame, n_trials=None)
    with pytest.raises(DataValidationError, match="storage=None"):
        quick(frame=frame, n_workers=2)


def test_missing_optuna_names_the_extra(monkeypatch, frame):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r'pip install "forecaster-rnn\[tune\]"'):
        quick(frame=frame)
    with pytest.raises(ImportError, match=r"forecaster\.tune"):
        default_search_space(tiny_model())


# ------------------------------------------------------------------------------------------
# storage and resume
# ------------------------------------------------------------------------------------------


def test_default_storage_path(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_storage_url() == f"sqlite:///{tmp_path}/mlflow/optuna.db"
    storage = make_storage("default")
    assert (tmp_path / "mlflow").is_dir()
    assert storage.heartbeat_interval == 10 and storage.grace_period == 60
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///tracking/mlflow.db")
    assert default_storage_url() == f"sqlite:///{tmp_path}/tracking/optuna.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/abs/mlflow.db")
    assert default_storage_url() == f"sqlite:///{tmp_path}/abs/optuna.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert default_storage_url() == f"sqlite:///{tmp_path}/mlflow/optuna.db"
    assert make_storage(None) is None


def test_default_storage_of_a_project_is_in_its_folder_unless_the_tracking_store_is_sqlite(
    monkeypatch, tmp_path
):
    """``default_storage_url(root)`` (a pipeline's): ``mlflow/optuna.db`` under the project
    folder, whatever the working directory (was: always the working directory's ``mlflow/``,
    so a spec run from another directory never found its study); beside a SQLite
    ``MLFLOW_TRACKING_URI`` still (a relative one read from the working directory, as MLflow
    reads it)."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_storage_url(project) == f"sqlite:///{project}/mlflow/optuna.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert default_storage_url(project) == f"sqlite:///{project}/mlflow/optuna.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///tracking/mlflow.db")
    assert default_storage_url(project) == f"sqlite:///{Path.cwd()}/tracking/optuna.db"
    assert make_storage(tmp_path / "db" / "x.db").url == f"sqlite:///{tmp_path}/db/x.db"
    with pytest.raises(DataValidationError, match="not a database URL"):
        make_storage("studies/optuna.db")


def _schema_race() -> Exception:
    import sqlalchemy.exc

    orig = Exception("UNIQUE constraint failed: alembic_version.version_num")
    return sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version ...", {}, orig)


def test_the_schema_creation_retry_leaves_the_callers_random_state_alone(monkeypatch, tmp_path):
    """The retry's pause is jittered with a generator of its own, not the random module's
    (whose state the caller may have seeded)."""
    real, calls = optuna.storages.RDBStorage, []

    def racing(url, **kwargs):
        calls.append(url)
        if len(calls) == 1:
            raise _schema_race()
        return real(url, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    random.seed(3)
    state = random.getstate()
    make_storage(f"sqlite:///{tmp_path}/optuna.db")
    assert len(calls) == 2 and random.getstate() == state


def test_make_storage_retries_the_schema_creation_race(monkeypatch, tmp_path):
    """Another process creating the same new database's tables at the same moment: the loser's
    IntegrityError is retried (it then finds the tables), and when it never stops the error
    says so instead of blaming the database."""
    real = optuna.storages.RDBStorage
    calls = []

    def racing(url, **kwargs):
        calls.append(url)
        if len(calls) <= failures:
            raise _schema_race()
        return real(url, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    failures, url = 2, f"sqlite:///{tmp_path}/optuna.db"
    assert isinstance(make_storage(url), real) and len(calls) == 3
    calls.clear()
    failures = 99
    with pytest.raises(StorageError, match="creating its tables at the same moment") as info:
        make_storage(f"sqlite:///{tmp_path}/other.db")
    assert "alembic_version" in str(info.value) and "exists and is writable" not in str(info.value)
    assert "make_storage(" in str(info.value) and len(calls) == 5
    calls.clear()
    import sqlalchemy.exc

    def unwritable(url, **kwargs):  # another database error is not retried
        calls.append(url)
        raise sqlalchemy.exc.OperationalError(
            "CREATE TABLE", {}, Exception("attempt to write a readonly database")
        )

    monkeypatch.setattr(optuna.storages, "RDBStorage", unwritable)
    with pytest.raises(StorageError, match="exists and is writable"):
        make_storage(f"sqlite:///{tmp_path}/third.db")
    assert len(calls) == 1


def _open_storage(url, barrier, queue):  # a process of the test below
    from forecaster.tuning import make_storage

    barrier.wait()
    try:
        make_storage(url)
        queue.put("ok")
    except Exception as exc:
        queue.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.slow
def test_processes_opening_one_new_storage_at_once_all_succeed(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    results = []
    for attempt in range(3):  # the race is lost in most rounds without the retry
        url = f"sqlite:///{tmp_path}/optuna{attempt}.db"
        barrier, queue = context.Barrier(3), context.Queue()
        processes = [
            context.Process(target=_open_storage, args=(url, barrier, queue)) for _ in range(3)
        ]
        for process in processes:
            process.start()
        results += [queue.get(timeout=120) for _ in processes]
        for process in processes:
            process.join(timeout=60)
    assert results == ["ok"] * 9, results


def test_resume_runs_only_the_missing_trials(monkeypatch, tmp_path, frame):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = quick(frame=frame, storage="default")
    assert (tmp_path / "mlflow" / "optuna.db").is_file()
    assert first.study_name.startswith("RNNForecaster-y-h6-")
    assert first.storage_url == f"sqlite:///{tmp_path}/mlflow/optuna.db"
    second = quick(frame=frame, storage="default", n_trials=3)
    assert second.study_name == first.study_name
    assert (second.n_trials_run, second.n_trials_finished) == (1, 3)
    again = quick(frame=frame, storage="default", n_trials=3)
    assert (again.n_trials_run, again.n_trials_finished) == (0, 3)
    params = [t.params for t in again.study.trials]
    assert params[2] not in params[:2]  # the resumed sampler does not replay the first draws
    with pytest.raises(DataValidationError, match="another task or search space") as info:
        quick(
            frame=frame,
            storage="default",
            study_name=first.study_name,
            search_space={"hidden_size": [4, 16]},
        )
    assert "choices=[4, 8]), this call CategoricalDistribution(choices=[4, 16])" in str(info.value)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.slow
def test_stale_trial_of_another_machine_fails_after_the_grace_period(tmp_path, frame):
    storage = make_storage(f"sqlite:///{tmp_path}/optuna.db", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="stale")
    orphan = study.ask()
    orphan.suggest_categorical("hidden_size", [4, 8])
    orphan.set_user_attr("host", "another-machine")
    orphan_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name("stale"), orphan.number
    )
    storage.record_heartbeat(orphan_id)  # what optimize does while a trial runs
    time.sleep(2.5)
    result = quick(frame=frame, storage=storage, study_name="stale", n_trials=1)
    failed, retry = result.study.trials
    assert (failed.state, retry.state) == (FAIL, COMPLETE)
    assert result.n_trials_run == 1  # the retry that this call queued and ran
    # the stale trial is queued again with its parameters (Optuna's retry callback)
    retried = optuna.storages.RetryFailedTrialCallback.retried_trial_number(retry)
    assert retried == failed.number and retry.params["hidden_size"] == failed.params["hidden_size"]


def _storage_without_heartbeat(kind: str, folder: Path):
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(str(folder / "journal.log")))
    return optuna.storages.RDBStorage(f"sqlite:///{folder}/optuna.db")  # no heartbeat_interval


@pytest.mark.parametrize("kind", ["journal", "rdb"])
def test_a_running_trial_its_storage_cannot_judge_does_not_block_the_study(kind, tmp_path, frame):
    """A storage without heartbeat keeps the trial of a killed process RUNNING forever: it is
    not counted toward n_trials (counted, no rerun ever completed the study), with a warning
    that says how to fix it."""
    storage = _storage_without_heartbeat(kind, tmp_path)
    optuna.create_study(storage=storage, study_name="j").ask()  # its process was killed
    with pytest.warns(ForecasterWarning, match=r"1 RUNNING trial\(s\) \[0\]") as caught:
        result = quick(frame=frame, storage=storage, study_name="j", n_trials=2)
    assert (result.n_trials_finished, result.n_trials_run) == (2, 2)
    message = next(str(w.message) for w in caught if "RUNNING" in str(w.message))
    assert "does not count them toward n_trials" in message
    assert "study.tell(n, state=optuna.trial.TrialState.FAIL)" in message
    assert "heartbeat_interval" in message and "grace_period" in message
    again = quick(frame=frame, storage=storage, study_name="j", n_trials=2)  # complete now
    assert (again.n_trials_finished, again.n_trials_run) == (2, 0)


def _trials(storage, name: str):
    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except KeyError:  # not created yet
        return []


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.slow
def test_sigkill_mid_study_then_resume(tmp_path):
    """A real process killed with SIGKILL in its second trial; a rerun after the grace period
    fails the trial (no heartbeat), runs it again with its parameters and completes the study."""
    url, name = f"sqlite:///{tmp_path}/optuna.db", "killed"
    storage = optuna.storages.RDBStorage(url)  # the tables exist before two processes open it
    grace = 2  # seconds (the worker's storage beats every second)
    command = [sys.executable, str(WORKER), url, name, "3", "0.25", str(grace)]
    env = _worker_env()
    log = tmp_path / "first.log"
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            trials = _trials(storage, name)
            complete = [t for t in trials if t.state == COMPLETE]
            running = [t for t in trials if t.state == RUNNING and "params" in t.user_attrs]
            if complete and running:
                break
            assert process.poll() is None, f"the worker ended early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no trial completed in time:\n{log.read_text()}"
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    before = {t.number: (t.state, t.value) for t in _trials(storage, name)}
    interrupted = [n for n, (state, _) in before.items() if state == RUNNING]
    assert len(interrupted) == 1

    time.sleep(grace + 1)  # no heartbeat for the grace period: the trial's process is gone
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = {t.number: t for t in _trials(storage, name)}
    for number, (state, value) in before.items():
        if state == COMPLETE:  # finished trials are kept as they were
            assert (after[number].state, after[number].value) == (state, value)
    lost = after[interrupted[0]]
    assert lost.state == FAIL
    (retry,) = [
        t
        for t in after.values()
        if optuna.storages.RetryFailedTrialCallback.retried_trial_number(t) == lost.number
    ]
    assert retry.state == COMPLETE and retry.params == lost.params  # run again, same params
    assert sum(t.state == COMPLETE for t in after.values()) == 3
    assert f"finished 3 run {len(after) - len(before)}" in rerun.stdout  # the retry included


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.slow
def test_sigint_mid_trial_then_resume_runs_its_parameters_again_once(tmp_path):
    """Ctrl-C (a real SIGINT) in a process's second trial left it FAIL, and a rerun never
    evaluated its parameters (a SIGKILLed trial's run again through the heartbeat). The rerun
    queues them again, once, through Optuna's retry callback, and runs no more than n_trials."""
    url, name = f"sqlite:///{tmp_path}/optuna.db", "interrupted"
    storage = optuna.storages.RDBStorage(url)  # the tables exist before two processes open it
    command = [sys.executable, str(WORKER), url, name, "3", "0.25"]
    env = _worker_env()
    log = tmp_path / "first.log"
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            trials = _trials(storage, name)
            complete = [t for t in trials if t.state == COMPLETE]
            running = [t for t in trials if t.state == RUNNING and "params" in t.user_attrs]
            if complete and running:
                break
            assert process.poll() is None, f"the worker ended early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no trial completed in time:\n{log.read_text()}"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0, log.read_text()
    before = {t.number: t for t in _trials(storage, name)}
    (lost,) = [t for t in before.values() if t.state == FAIL]
    assert lost.user_attrs["forecaster.interrupted"] is True
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = _trials(storage, name)
    (retry,) = [
        t
        for t in after
        if optuna.storages.RetryFailedTrialCallback.retried_trial_number(t) == lost.number
    ]
    assert retry.state == COMPLETE and retry.params == lost.params  # run again, same params
    assert sum(t.state == COMPLETE for t in after) == 3  # n_trials, not one more
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and len(_trials(storage, name)) == len(after)  # once only


def test_an_interrupted_trial_is_queued_again_once_within_the_trials_missing():
    """The rule of retry_interrupted_trials: a FAIL trial marked interrupted is queued again
    as a WAITING trial with its parameters (Optuna's retry callback: failed_trial and
    retry_history name it), once; not a trial that failed of its own error, nor more trials
    than ``limit``, nor a retry that was interrupted too (MAX_RETRY = 1)."""
    from forecaster.tuning.storage import INTERRUPTED_ATTR, retry_interrupted_trials

    study = optuna.create_study()
    distributions = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}

    def failed(x: float, **attrs: Any) -> None:
        study.add_trial(
            optuna.trial.create_trial(
                state=FAIL, params={"x": x}, distributions=distributions, user_attrs=attrs
            )
        )

    failed(0.1, **{INTERRUPTED_ATTR: True})
    failed(0.2, error="a lookback too long for the data")  # its own failure: not queued
    failed(0.3, **{INTERRUPTED_ATTR: True})
    assert retry_interrupted_trials(study, limit=0) == []
    assert retry_interrupted_trials(study, limit=1) == [0]
    assert retry_interrupted_trials(study, limit=1) == []  # the WAITING retry of 0 fills it
    assert retry_interrupted_trials(study, limit=2) == [2]  # 0 is queued already
    assert retry_interrupted_trials(study) == []
    waiting = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.WAITING]
    assert [(t.params, t.system_attrs["failed_trial"]) for t in waiting] == [
        ({"x": 0.1}, 0),
        ({"x": 0.3}, 2),
    ]
    study.add_trial(  # the retry of trial 0, interrupted too: not queued a second time
        optuna.trial.create_trial(
            state=FAIL,
            params={"x": 0.1},
            distributions=distributions,
            user_attrs={INTERRUPTED_ATTR: True},
            system_attrs={"failed_trial": 0, "retry_history": [0]},
        )
    )
    assert retry_interrupted_trials(study) == []


def _interrupted_study(n_complete: int) -> Any:
    """An in-memory study of ``n_complete`` COMPLETE trials and one interrupted FAIL trial."""
    from forecaster.tuning.storage import INTERRUPTED_ATTR

    study = optuna.create_study()
    distributions = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    for n in range(n_complete):
        study.add_trial(
            optuna.trial.create_trial(params={"x": n / 10}, distributions=distributions, value=n)
        )
    study.add_trial(
        optuna.trial.create_trial(
            state=FAIL,
            params={"x": 0.9},
            distributions=distributions,
            user_attrs={INTERRUPTED_ATTR: True},
        )
    )
    return study


def test_waiting_trials_take_the_missing_trials_before_an_interrupted_ones_retry():
    """retry_interrupted_trials counted the trials missing from n_trials without the WAITING
    ones (a killed process's trial that fail_stale_trials had just queued again, or the
    user's enqueue_trial): both were queued for the one trial missing, and one was left
    WAITING in the storage once the study had its n_trials."""
    from forecaster.tuning.storage import retry_interrupted_trials

    study = _interrupted_study(2)
    study.enqueue_trial({"x": 0.5})  # queued already: the one trial of 3 missing
    assert retry_interrupted_trials(study, limit=1) == []
    waiting = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.WAITING]
    assert [t.system_attrs["fixed_params"] for t in waiting] == [{"x": 0.5}]


def test_the_trial_loop_of_each_worker_process_queues_no_interrupted_trial():
    """run_trials, which each of tune(n_workers=N)'s worker processes runs, queued the
    interrupted trials again: N workers resuming at the same moment each read the study
    before another queued, so the same parameters were queued (and run) up to N times.
    tune() queues them once, before any worker starts; the loop does not."""
    from forecaster.tuning.trials import run_trials

    study = _interrupted_study(1)
    run_trials(study, lambda trial: trial.suggest_float("x", 0.0, 1.0), 2, None, [])
    assert [t.system_attrs.get("failed_trial") for t in study.get_trials()] == [None] * 3
    assert sum(t.state == COMPLETE for t in study.get_trials()) == 2


def test_workers_refuse_what_does_not_pickle_before_the_storage_is_opened(
    monkeypatch, tmp_path, frame
):
    """The workers failed to unpickle a lambda after an empty study was created, advising to
    rerun the same call."""
    import forecaster.tuning.trials as trials

    monkeypatch.setattr(trials, "available_cores", lambda: 4)
    url = f"sqlite:///{tmp_path}/optuna.db"
    with pytest.raises(DataValidationError, match=r"receive the metric .* cannot be pickled"):
        quick(frame=frame, storage=url, n_workers=2, metric=lambda model, data: 1.0)

    def local_callback(study, trial):
        pass

    with pytest.raises(DataValidationError, match=r"callbacks\[0\] .*module level"):
        quick(frame=frame, storage=url, n_workers=2, callbacks=[local_callback])
    assert not (tmp_path / "optuna.db").exists()  # checked before the storage was opened


def test_workers_check_pickling_only_when_a_worker_process_would_start(
    monkeypatch, tmp_path, frame
):
    """A lambda metric with n_workers=2 was refused where the trials run in this process: one
    trial wanted, or a study already complete (bounded_workers starts no worker then)."""
    import forecaster.tuning.trials as trials

    monkeypatch.setattr(trials, "available_cores", lambda: 4)
    url = f"sqlite:///{tmp_path}/optuna.db"

    def run(**kwargs):
        with warnings.catch_warnings():  # n_workers=2 reduced to 1
            warnings.simplefilter("ignore", ForecasterWarning)
            return quick(frame=frame, storage=url, study_name="s", metric=metric, **kwargs)

    metric = lambda model, data: float(model.val_loss_)  # noqa: E731
    assert run(n_trials=1, n_workers=2).n_trials_finished == 1
    assert run(n_trials=2).n_trials_finished == 2
    assert run(n_trials=2, n_workers=2).n_trials_run == 0  # complete: nothing runs
    with pytest.raises(DataValidationError, match=r"receive the metric .* cannot be pickled"):
        run(n_trials=4, n_workers=2)  # two trials missing: two workers would start


@pytest.mark.slow
def test_two_worker_processes_share_one_study(tmp_path, frame):
    result = quick(
        frame=frame,
        n_trials=3,
        storage=f"sqlite:///{tmp_path}/optuna.db",
        n_workers=2,
        pruner="none",
        callbacks=[wait_for_two_pids],
    )
    complete = result.study.get_trials(states=(COMPLETE,))
    assert 3 <= len(complete) <= 4 and result.n_trials_finished == len(complete)
    pids = {t.user_attrs["pid"] for t in complete}
    assert len(pids) == 2 and os.getpid() not in pids


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_worker_error_that_does_not_unpickle_is_reported_with_its_text(tmp_path, frame):
    """A worker's exception that pickles but does not unpickle (an __init__ of two arguments)
    broke the caller's receive: tune raised "TypeError: TwoArgumentError.__init__() missing 1
    required positional argument", which named neither the worker nor the error. The worker
    sends its text instead, and tune raises it as a worker's failure."""
    with pytest.raises(ForecasterError, match=r"TwoArgumentError: code 7: the callback failed"):
        quick(
            frame=frame, n_trials=4, storage=f"sqlite:///{tmp_path}/optuna.db", n_workers=2,
            pruner="none", callbacks=[raise_two_argument_error],
        )  # fmt: skip


UNGUARDED_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from tuning_worker import TINY_SPACE, tiny_frame, tiny_model
from forecaster.tuning import tune
tune(tiny_model(max_epochs=1), tiny_frame(), n_trials=4, storage={url!r}, study_name="x",
     search_space=TINY_SPACE, pruner="none", refit=False, track=False, show_progress=False,
     n_workers=2)
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_workers_that_exit_with_a_code_are_not_blamed_on_the_oom_killer(tmp_path):
    """A script calling tune(n_workers=2) without if __name__ == "__main__": each spawned
    worker imports it again and fails (exit code 1) before it can report. tune said only
    "Every tuning worker process died ... (killed, e.g. by the kernel's OOM killer)" and
    advised fewer n_workers; it now says what an exit code means and names the guard."""
    script = tmp_path / "unguarded.py"
    url = f"sqlite:///{tmp_path}/optuna.db"
    script.write_text(UNGUARDED_SCRIPT.format(tests=str(WORKER.parent), url=url))
    done = subprocess.run(
        [sys.executable, str(script)], env=_worker_env(), cwd=tmp_path, capture_output=True,
        text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert "Every tuning worker process died" in last and "exit code 1" in last
    assert 'if __name__ == "__main__":' in last


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return False
    except OSError:  # no /proc: alive as far as os.kill can tell
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _worker_trial(storage, name: str, caller: int, timeout: float = 120.0):
    """The first RUNNING trial of the study with sampled parameters and a pid other than
    ``caller``'s (a worker's); it fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t in _trials(storage, name):
            pid = t.user_attrs.get("pid")
            if t.state == RUNNING and "params" in t.user_attrs and pid not in (None, caller):
                return t
        time.sleep(0.05)
    raise AssertionError(f"no worker ran a trial of {name!r} in {timeout} s")


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.skipif(available_cores() < 2, reason="needs two CPU cores")
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_killed_worker_leaves_the_others_to_complete_the_study(monkeypatch, tmp_path, frame):
    """kill -9 of one worker of tune(n_workers=2) (the kernel's OOM killer) broke the process
    pool: the healthy worker was ended too, tune raised "2 of 2 workers failed" and both trials
    stayed RUNNING. The other worker goes on, fails the killed trial once it sent no heartbeat
    for the grace period and runs it again (Optuna's retry), and tune returns the complete
    study with a warning naming the dead worker and its signal."""
    monkeypatch.setenv(SLEEP_VARIABLE, "0.3")  # the workers' trials take a second or two
    url, name = f"sqlite:///{tmp_path}/optuna.db", "killed-worker"
    storage = make_storage(url, heartbeat_interval=1, grace_period=2)
    killed = []

    def kill_one():
        trial = _worker_trial(storage, name, os.getpid())
        os.kill(trial.user_attrs["pid"], signal.SIGKILL)
        killed.append((trial.user_attrs["pid"], trial.number))

    killer = threading.Thread(target=kill_one, daemon=True)
    killer.start()
    model = tiny_model(SlowForecaster, max_epochs=3)
    with pytest.warns(ForecasterWarning, match="1 of 2 tuning worker processes died") as caught:
        result = quick(
            model, frame, n_trials=4, storage=storage, study_name=name, n_workers=2,
            pruner="none",
        )  # fmt: skip
    killer.join(timeout=5)
    ((pid, number),) = killed
    message = next(str(w.message) for w in caught if "worker processes died" in str(w.message))
    assert f"(pid {pid}, killed by signal 9 (SIGKILL))" in message
    trials = {t.number: t for t in result.study.get_trials()}
    assert trials[number].state == FAIL
    (retry,) = [
        t
        for t in trials.values()
        if optuna.storages.RetryFailedTrialCallback.retried_trial_number(t) == number
    ]
    assert retry.state == COMPLETE and retry.params == trials[number].params
    assert retry.user_attrs["pid"] != pid  # run again by the worker left
    assert result.n_trials_finished == 4 == sum(t.state == COMPLETE for t in trials.values())


@pytest.mark.skipif(available_cores() < 2, reason="needs two CPU cores")
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_interrupted_caller_ends_its_workers(
    monkeypatch, tmp_path, frame, python_sigint_handler
):
    """Ctrl-C (or SIGTERM under the command line, an interrupt too) in the caller of
    tune(n_workers=2) waited for the workers to finish the whole study. The caller terminates
    them and re-raises at once."""
    monkeypatch.setenv(SLEEP_VARIABLE, "0.3")
    url, name = f"sqlite:///{tmp_path}/optuna.db", "interrupted"
    optuna.storages.RDBStorage(url)  # the tables exist before the watching thread reads them
    main, pids, sent = threading.main_thread().ident, [], []

    def interrupt():
        pids.append(_worker_trial(url, name, os.getpid()).user_attrs["pid"])
        sent.append(time.monotonic())
        signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C, in the thread that waits

    threading.Thread(target=interrupt, daemon=True).start()
    model = tiny_model(SlowForecaster, max_epochs=3)
    with pytest.raises(KeyboardInterrupt):
        quick(model, frame, n_trials=40, storage=url, study_name=name, n_workers=2, pruner="none")
    assert time.monotonic() - sent[0] < 20  # not after the 40 trials
    assert not _alive(pids[0])
    finished = [t for t in _trials(url, name) if t.state in (COMPLETE, PRUNED)]
    assert len(finished) < 40


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_workers_end_when_their_caller_is_killed(tmp_path):
    """kill -9 of the caller of tune(n_workers=2) left its workers running (re-parented, they
    finished the whole study and stayed, idle). Each worker ends once its caller is gone."""
    url, name = f"sqlite:///{tmp_path}/optuna.db", "orphans"
    optuna.storages.RDBStorage(url)  # the tables exist before the processes open it
    command = [sys.executable, str(WORKER), url, name, "200", "0.3", "2", "2"]
    env = _worker_env()
    log = tmp_path / "caller.log"
    with open(log, "w") as out:
        caller = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    pids: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while len(pids) < 2:  # both workers run trials
            assert caller.poll() is None, f"the caller ended early:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no two workers in time:\n{log.read_text()}"
            pids |= {t.user_attrs.get("pid") for t in _trials(url, name)} - {None}
            time.sleep(0.1)
        os.kill(caller.pid, signal.SIGKILL)
        caller.wait()
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in pids if _alive(pid)], "workers outlived their caller"
    finally:
        if caller.poll() is None:
            caller.kill()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


OTHER_PARAMS = {"hidden_size": 8, "lr": 0.005}


def _other_process_trial(storage, name: str, value: float, beats: int, ready: threading.Event):
    """What another process does on the study: run a trial (:data:`OTHER_PARAMS`) that beats
    every 0.5 s ``beats`` times, then finishes with ``value`` (None: the process was killed;
    its trial stays RUNNING; killed before its first heartbeat with ``beats=0``)."""
    study = optuna.load_study(study_name=name, storage=storage)
    study.enqueue_trial(OTHER_PARAMS)
    trial = study.ask()
    trial.suggest_categorical("hidden_size", TINY_SPACE["hidden_size"])
    trial.suggest_float("lr", *TINY_SPACE["lr"][:2], log=True)
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(name), trial.number
    )
    ready.set()
    for _ in range(beats):
        storage.record_heartbeat(trial_id)
        time.sleep(0.5)
    if value is not None:
        study.tell(trial, value)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("other", ["alive", "killed", "killed before its first heartbeat"])
def test_tune_waits_for_the_trials_other_processes_run(other, tmp_path, frame):
    """Processes that share one study (several machines) stopped once finished + running
    trials reached n_trials and returned at once: a best_value that was not the study's (the
    other process's trial became best afterwards), or a study short of n_trials (the other
    process was killed). Each process waits for those trials: a live one until it ends, a dead
    one until the heartbeat's grace period fails it (one killed before Optuna recorded its
    first heartbeat too, which Optuna never finds stale), and then runs it again."""
    storage = make_storage(f"sqlite:///{tmp_path}/optuna.db", heartbeat_interval=1, grace_period=2)
    settings = {"storage": storage, "study_name": "shared", "pruner": "none"}
    quick(frame=frame, n_trials=1, **settings)  # creates the study
    ready = threading.Event()
    value, beats = {"alive": (1e-9, 12), "killed": (None, 1)}.get(other, (None, 0))
    thread = threading.Thread(
        target=_other_process_trial, args=(storage, "shared", value, beats, ready), daemon=True
    )
    thread.start()
    assert ready.wait(30)
    result = quick(frame=frame, n_trials=3, **settings)
    thread.join(timeout=30)
    states = [t.state for t in result.study.get_trials()]
    if other == "alive":  # its trial is the study's best, and this call returns it
        assert states == [COMPLETE, COMPLETE, COMPLETE]
        assert (result.best_value, result.best_params) == (1e-9, OTHER_PARAMS)
    else:  # its trial failed after the grace period, and run again here
        assert states[1] == FAIL and states.count(COMPLETE) == 3 and len(states) == 4
        retried = optuna.storages.RetryFailedTrialCallback.retried_trial_number
        (retry,) = [t for t in result.study.get_trials() if retried(t) == 1]
        assert retry.state == COMPLETE and retry.params == OTHER_PARAMS
    assert result.n_trials_finished == 3 and result.best_value == result.study.best_value


def test_the_best_trial_and_the_counts_are_read_at_one_moment(tmp_path, frame):
    """n_trials_finished was read after the refit, the best trial before it: a trial another
    process finished meanwhile was counted but not in the best. Both are read at one moment."""
    url, name, intruded = f"sqlite:///{tmp_path}/optuna.db", "moment", []

    def intruder(estimator, data):  # another process finishes a trial during the refit
        if not intruded:
            study = optuna.load_study(study_name=name, storage=url)
            study.tell(study.ask(), 1e-9)
            intruded.append(True)

    handle = register_fit_callback(intruder)
    try:
        result = quick(frame=frame, n_trials=2, storage=url, study_name=name, refit=True)
    finally:
        unregister_fit_callback(handle)
    assert intruded and len(result.study.trials) == 3  # the refit ran after it
    assert result.n_trials_finished == 2 and result.n_trials_run == 2
    assert result.best_value > 1e-9


@pytest.mark.skipif(available_cores() < 2, reason="needs two CPU cores")
def test_best_estimator_refits_at_the_thread_count_of_its_trial(tmp_path):
    """CPU results depend on torch's thread count (the trials of n_workers > 1 run with fewer
    threads than the caller): the refit runs at the best trial's count, so it is that trial's
    model again, bit for bit, and the caller's count is restored after it."""
    rng = np.random.default_rng(0)
    t = np.arange(150)
    frame = pl.concat(
        pl.DataFrame({"id": f"s{i}", "time": t, "y": i + np.sin(t / 4) + rng.normal(0, 0.2, 150)})
        for i in range(3)
    )  # fmt: skip
    model = tiny_model(
        hidden_size=64, head="direct", segment_length="auto", baseline="none", dropout=0.2,
        windows_per_epoch=None,
    )  # fmt: skip
    settings = {"storage": f"sqlite:///{tmp_path}/optuna.db", "study_name": "threads"}
    settings |= {"search_space": {"lr": (1e-3, 1e-2, "log")}, "pruner": "none"}
    threads = []

    class Threads:
        def on_fit_start(self, estimator, data):
            threads.append(torch.get_num_threads())

    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        first = quick(model, frame, **settings)  # the trials, at two threads
        torch.set_num_threads(1)
        handle = register_fit_callback(lambda estimator, data: Threads())
        try:
            result = quick(model, frame, refit=True, **settings)  # the refit only
        finally:
            unregister_fit_callback(handle)
        assert torch.get_num_threads() == 1  # the caller's count
    finally:
        torch.set_num_threads(previous)
    assert {t.user_attrs["torch_threads"] for t in first.study.trials} == {2}
    assert result.n_trials_run == 0 and threads == [2]
    assert result.best_estimator.val_loss_ == result.best_value  # the trial's model again


# ------------------------------------------------------------------------------------------
# tracking hooks
# ------------------------------------------------------------------------------------------


def test_tracking_hooks_are_called_when_present(monkeypatch, frame):
    """track=True calls tracking's public API (log_study, trial_callback, paused). The final
    log_study names the trial the best model was refitted from (another process tuning the
    study may have found a better one by the time it logs)."""
    tracking = pytest.importorskip("forecaster.tracking")
    pytest.importorskip("mlflow")
    calls = {"study": [], "trials": [], "paused": 0}
    refitted_from, statuses = [], []

    def log_study(
        study, estimator, frame, best_estimator=None, experiment=None, *, storage=None,
        intermediate_key="intermediate_value", negate_intermediate=None, best_trial=None,
        status=None,
    ):  # fmt: skip
        assert intermediate_key == "best_val_loss"  # trials it backfills: as trial_callback's
        assert negate_intermediate is False  # a minimize study: the loss as it was reported
        calls["study"].append(best_estimator)
        refitted_from.append(best_trial)
        statuses.append(status)
        return "parent-run"

    def trial_callback(
        parent_run_id, *, tracking_uri=None, intermediate_key="value", negate_intermediate=None,
        **limits,
    ):  # fmt: skip
        assert intermediate_key == "best_val_loss" and negate_intermediate is False
        return lambda study, trial: calls["trials"].append((parent_run_id, trial.number))

    @contextlib.contextmanager
    def paused():
        calls["paused"] += 1
        yield

    monkeypatch.setattr(tracking, "log_study", log_study)
    monkeypatch.setattr(tracking, "trial_callback", trial_callback)
    monkeypatch.setattr(tracking, "paused", paused)
    result = quick(frame=frame, track=True, refit=True)
    assert calls["study"][0] is None and calls["study"][1] is result.best_estimator
    assert refitted_from == [None, result.study.best_trial.number]
    assert statuses == ["RUNNING", "FINISHED"]  # opened (a resumed study's again), then ended
    assert calls["trials"] == [("parent-run", 0), ("parent-run", 1)]
    assert calls["paused"] == 3  # two trial fits and the refit

    calls = {"study": [], "trials": [], "paused": 0}
    quick(frame=frame, n_trials=1)  # track=False by default: nothing logged
    assert calls == {"study": [], "trials": [], "paused": 1}  # the trial's fit is paused

    def broken(*args, **kwargs):
        raise ConnectionError("tracking server unreachable")

    monkeypatch.setattr(tracking, "log_study", broken)
    monkeypatch.setattr(tracking, "trial_callback", broken)
    with pytest.warns(ForecasterWarning, match="tracking server unreachable"):
        result = quick(frame=frame, track=True, n_trials=1)
    assert result.n_trials_finished == 1


def test_track_without_mlflow_names_the_extra(monkeypatch, frame):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match=r"pip install 'forecaster-rnn\[track\]'"):
        quick(frame=frame, track=True)


@pytest.mark.slow
def test_study_logged_to_mlflow(monkeypatch, tmp_path, frame):
    """With the real forecaster.tracking: a parent run and a nested run per trial."""
    mlflow = pytest.importorskip("mlflow")
    reset_mlflow_state(monkeypatch, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    result = quick(frame=frame, track=True, refit=True, storage="default")
    assert (tmp_path / "optuna.db").is_file()  # next to the tracking store
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    parents = [r for r in runs if r.data.tags.get("forecaster.study") == result.study_name]
    assert len(parents) == 1 and len(children) == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}


@pytest.mark.slow
def test_a_resumed_tracked_tune_opens_its_study_run_again_and_keeps_its_earlier_end(
    monkeypatch, tmp_path, frame
):
    """A tune stopped by Ctrl-C left its study's run FINISHED (a), and a later tune of the
    study set a KILLED (or FAILED) run FINISHED as it started (c): its trials were logged
    into a FINISHED run, and the earlier end was lost. The run ends KILLED; the resumed tune
    opens it again (RUNNING while its trials run, as MLflow resumes a run), ends it with its
    own status, and the earlier end stays as tag forecaster.earlier_end.<its end time>."""
    mlflow = pytest.importorskip("mlflow")
    reset_mlflow_state(monkeypatch, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    client = mlflow.MlflowClient()
    settings = {"frame": frame, "track": True, "storage": "default", "study_name": "resumed"}

    def ctrl_c(study, trial):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        quick(**settings, callbacks=[ctrl_c])
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                filter_string="tags.`forecaster.kind` = 'study'")  # fmt: skip
    assert run.info.status == "KILLED"
    seen = []
    result = quick(
        **settings, callbacks=[lambda s, t: seen.append(client.get_run(run.info.run_id))]
    )
    assert result.run_id == run.info.run_id
    assert {r.info.status for r in seen} == {"RUNNING"}  # its trials: in a live run
    resumed = client.get_run(run.info.run_id)
    assert resumed.info.status == "FINISHED"
    ended = dt.datetime.fromtimestamp(run.info.end_time / 1000, dt.UTC)
    when = ended.strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"  # no colon (Windows)
    earlier = {k: v for k, v in resumed.data.tags.items() if "earlier_end" in k}
    assert earlier == {f"forecaster.earlier_end.{when}": "KILLED"}


@pytest.mark.slow
def test_a_maximize_study_logs_the_validation_loss_not_its_negation(monkeypatch, tmp_path, frame):
    """A maximize study's trials report their running best val_loss negated to Optuna (its
    pruner ranks them in the study's direction); their runs log the loss itself."""
    mlflow = pytest.importorskip("mlflow")
    reset_mlflow_state(monkeypatch, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")

    def score(estimator, data):  # higher is better
        return -float(estimator.history_[-1]["val_loss"])

    result = quick(frame=frame, track=True, direction="maximize", metric=score, pruner="none")
    client = mlflow.MlflowClient()
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(children) == 2
    for run in children:
        trial = result.study.trials[int(run.data.tags["optuna.trial_number"])]
        losses = [r["val_loss"] for r in trial.user_attrs["history"]]
        best = {epoch: min(losses[:epoch]) for epoch in range(1, len(losses) + 1)}
        assert trial.intermediate_values == pytest.approx({k: -v for k, v in best.items()})
        assert trial.value == pytest.approx(-losses[-1])  # the metric, as the study maximizes it
        logged = client.get_metric_history(run.info.run_id, "best_val_loss")
        assert {m.step: m.value for m in logged} == pytest.approx(best)
        assert min(m.value for m in logged) > 0
        assert run.data.metrics["value"] == pytest.approx(trial.value)


# ------------------------------------------------------------------------------------------
# PostgreSQL (a throw-away local server, when initdb, pg_ctl and psycopg are installed)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_url():
    # Debian keeps the server binaries off PATH, in /usr/lib/postgresql/<version>/bin.
    search = os.pathsep.join([os.environ.get("PATH", ""), *glob.glob("/usr/lib/postgresql/*/bin")])
    initdb, pg_ctl = shutil.which("initdb", path=search), shutil.which("pg_ctl", path=search)
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl)")
    pytest.importorskip("psycopg")
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="forecaster-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user")
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = root / "data"
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        subprocess.run(
            [*prefix, initdb, "-D", str(data), "--auth=trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        start = ["-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]
        subprocess.run(
            [*prefix, pg_ctl, *start],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"cannot start a local PostgreSQL server: {exc.stderr!r}")
    yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], check=False)
    shutil.rmtree(root, ignore_errors=True)


def test_postgresql_storage_resumes(postgres_url, frame):
    first = quick(frame=frame, storage=postgres_url, study_name="resumed")
    assert first.storage_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    second = quick(frame=frame, storage=postgres_url, study_name="resumed", n_trials=3)
    assert (second.n_trials_run, second.n_trials_finished) == (1, 3)


@pytest.mark.slow
def test_postgresql_storage_with_two_workers(postgres_url, frame):
    result = quick(
        frame=frame,
        n_trials=4,
        storage=postgres_url,
        study_name="two-workers",
        n_workers=2,
        pruner="none",
        callbacks=[wait_for_two_pids],
    )
    complete = result.study.get_trials(states=(COMPLETE,))
    assert len(complete) >= 4 and len({t.user_attrs["pid"] for t in complete}) == 2


# ------------------------------------------------------------------------------------------
# probabilistic objectives (issue 13): metric="pinball", "scrps", "msis", "winkler", ...
# ------------------------------------------------------------------------------------------


def test_score_column_names():
    from forecaster.tuning.scores import score_column

    assert score_column("pinball") == "pinball" and score_column("scrps") == "scrps"
    assert score_column("msis") == "msis_95" and score_column("winkler") == "winkler_95"
    assert score_column("msis_80") == "msis_80" and score_column("winkler_97.5") == "winkler_97.5"
    for other in ("val_loss", "msis_0", "msis_100", "coverage_80", "mae", None, 3):
        assert score_column(other) is None


@pytest.mark.parametrize(
    ("model", "kwargs", "message"),
    [
        ({}, {"metric": "pinball"}, r"metric='pinball' scores quantile forecasts.*loss='mae'"),
        ({"loss": "quantile"}, {"metric": "msis"}, r"95 % interval.*0\.025 and 0\.975"),
        (
            {"loss": "quantile"},
            {"metric": "pinball", "direction": "maximize"},
            r"'pinball' is minimized",
        ),
        ({"loss": "quantile", "validation_size": 0}, {"metric": "scrps"}, r"validation_size=0"),
        ({}, {"metric": "crps"}, r"metric='crps' is not supported.*'pinball'"),
    ],
)
def test_probabilistic_metric_refusals(model, kwargs, message):
    with pytest.raises(DataValidationError, match=message):
        quick(tiny_model(**model), **kwargs)


@pytest.mark.parametrize("metric", ["pinball", "scrps", "winkler_80", "msis"])
def test_tune_on_a_probabilistic_score(frame, metric):
    quantiles = [0.025, 0.1, 0.5, 0.9, 0.975]
    result = quick(tiny_model(loss="quantile", quantiles=quantiles), frame, metric=metric)
    values = [t.value for t in result.study.trials if t.value is not None]
    assert len(values) == 2 and all(np.isfinite(values)) and all(v > 0 for v in values)


def test_pinball_score_matches_a_hand_computed_value(frame):
    from forecaster.tuning.scores import probabilistic_score

    model = tiny_model(loss="quantile", validation_size=8).fit(frame)
    score = probabilistic_score(model, frame, "pinball")
    # origins whose 6 targets lie in the last 8 rows: positions 151, 152, 153 of each series
    origins = [151, 152, 153]
    forecast = model.predict(frame, cutoff=origins, quantiles=[0.1, 0.5, 0.9])
    joined = forecast.join(frame, on=["id", "time"], suffix="_actual")
    assert joined.height == 2 * 3 * 6
    losses = []
    for q, column in ((0.1, "y_q10"), (0.5, "y_q50"), (0.9, "y_q90")):
        error = (joined["y_actual"] - joined[column]).cast(pl.Float64).to_numpy()
        losses.append(np.maximum(q * error, (q - 1) * error).mean())
    assert score == pytest.approx(float(np.mean(losses)), rel=1e-6)


def test_a_probabilistic_score_of_the_validation_span_does_not_warn_it_is_in_sample(frame):
    """The validation origins lie inside the trial's training frame (before its train_end_),
    as the fit's validation windows do: the score does not pass on predict's InSampleWarning
    of them, which the user's own predict from those origins gets."""
    from forecaster.exceptions import InSampleWarning
    from forecaster.tuning.scores import probabilistic_score

    model = tiny_model(loss="quantile", validation_size=8).fit(frame)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probabilistic_score(model, frame, "pinball")
    assert not [w for w in caught if issubclass(w.category, InSampleWarning)]
    with pytest.warns(InSampleWarning, match="In-sample forecasts"):
        model.predict(frame, cutoff=[151], quantiles=[0.5])


@pytest.mark.parametrize(
    ("name", "metric"), [("mse", "pinball"), ("n_scaled", "scrps"), ("mae_naive", "pinball")]
)
def test_a_probabilistic_objective_scores_an_id_named_like_a_score_aggregate_reads(
    frame, name, metric
):
    """An id column named like a score that aggregate reads (``mse``, ``n_scaled``, a
    baseline's score) is refused by evaluate (session 34: its scores would be pooled as that
    column), and the trials' pinball, which scores through evaluate by id and origin, failed
    every trial after its fit ("10 trials failed in a row"), though the trial pools nothing
    under the id's name. The id is only the trial's join key: the trials complete, with the
    score of the same data under the id "id"."""
    model = tiny_model(loss="quantile", validation_size=24)
    expected = quick(model, frame, metric=metric, n_trials=1).study.trials[0].value
    renamed = frame.rename({"id": name})
    result = quick(model.set_params(id_col=name), renamed, metric=metric, n_trials=1)
    assert [t.value for t in result.study.trials] == [pytest.approx(expected, rel=1e-6)]


def test_a_probabilistic_objective_refuses_sampling_what_it_scores(frame):
    model = tiny_model(loss="quantile")
    for name, values in (("quantiles", [[0.1, 0.5, 0.9], [0.2, 0.5, 0.8]]), ("loss", ["mae"])):
        with pytest.raises(DataValidationError, match=rf"samples '{name}' while the objective"):
            quick(model, frame, metric="pinball", search_space={name: values})
    result = quick(model, frame, metric="pinball", search_space={"scaling": ["standard", "none"]})
    assert all(t.value is not None for t in result.study.trials)  # original scale: comparable


def _gapped_frame() -> pl.DataFrame:
    """tiny_frame's two series with every other step missing over their last 30 steps, the
    second one 20 steps shorter: the rows no longer count the steps of the grid."""
    parts = []
    for k, length in enumerate((160, 140)):
        series = tiny_frame().filter(pl.col("id") == f"s{k}").head(length)
        late = pl.col("time") >= length - 30
        parts.append(series.filter(~(late & (pl.col("time") % 2 == 1))))
    return pl.concat(parts)


@pytest.mark.parametrize(("missing", "metric"), [("ffill", "pinball"), ("interpolate", "scrps")])
def test_a_probabilistic_score_forecasts_only_the_validation_steps_of_the_grid(
    monkeypatch, missing, metric
):
    from forecaster.tuning.scores import probabilistic_score

    gapped = _gapped_frame()
    model = tiny_model(loss="quantile", freq=1, missing=missing, validation_size=10).fit(gapped)
    cutoffs = []
    predict = model.predict

    def spy(frame, **kwargs):
        cutoffs.append(kwargs["cutoff"])
        return predict(frame, **kwargs)

    monkeypatch.setattr(model, "predict", spy)
    assert np.isfinite(probabilistic_score(model, gapped, metric))
    (cutoff,) = cutoffs
    # the fit holds out the last 10 steps of each series' grid (ending at 158 and 138, the
    # last rows): the origins are the steps from the one before them to the 6th (the horizon)
    # before the end, whether the frame has a row there or not (the last 10 rows span 20
    # steps: counted by rows, the origins reach into the training span)
    for key, end in (("s0", 158), ("s1", 138)):
        origins = cutoff.filter(pl.col("id") == key)["time"].to_list()
        assert origins == list(range(end - 10, end - 6 + 1))
    assert cutoff.height == model.n_val_windows_  # the fit's own validation windows


def test_a_probabilistic_score_of_a_lazy_frame(monkeypatch, frame):
    import forecaster.tuning.trials as trials

    read = []
    score = trials.probabilistic_score

    def spy(model, data, metric):
        read.append(type(data))
        return score(model, data, metric)

    monkeypatch.setattr(trials, "probabilistic_score", spy)
    model = tiny_model(loss="quantile", quantiles=[0.1, 0.5, 0.9])
    eager = quick(model, frame, n_trials=1, metric="pinball")
    lazy = quick(model, frame.lazy(), n_trials=1, metric="pinball")
    assert lazy.best_value == pytest.approx(eager.best_value)
    assert read == [pl.DataFrame, pl.DataFrame]  # collected once, before the trials


def test_val_loss_refuses_sampling_quantiles(frame):
    """The validation loss of a quantile model averages the pinball loss over its quantiles:
    trials of other quantiles are in other units (extreme quantiles lower the average)."""
    model = tiny_model(loss="quantile", quantiles=[0.5])
    with pytest.raises(DataValidationError, match="samples 'quantiles' while the objective"):
        quick(model, frame, search_space={"quantiles": [[0.5], [0.1, 0.5, 0.9]]})

    def space(trial):
        choice = trial.suggest_categorical("tails", [False, True])
        return {"quantiles": [0.02, 0.5, 0.98] if choice else [0.5]}

    with pytest.raises(DataValidationError, match="callable samples 'quantiles'"):
        quick(model, frame, search_space=space)


def _long_and_short(long: int = 150, short: int = 50, n_long: int = 1) -> pl.DataFrame:
    short_series = tiny_frame(1, short).with_columns(pl.lit("short").alias("id"))
    return pl.concat([tiny_frame(n_long, long), short_series])


def _window_warnings(caught) -> list:
    """The warnings of lookbacks scored on different validation windows; each must point at
    this file's line that called tune."""
    found = [w for w in caught if "different validation windows" in str(w.message)]
    assert all(w.filename == __file__ for w in found), [(w.filename, w.lineno) for w in found]
    return found


def test_lookbacks_scored_on_other_validation_windows_are_warned_of_not_refused():
    """A fit keeps a series with lookback + horizon steps before its validation split only:
    lookback 46 scored only the long series (7 of the 14 windows), and so does any lookback
    above 32 (the short series has 38 steps before its split, horizon 6). A dict space
    sampling it was refused (the default space, edited as its docs suggest, too, for 1
    window of 100): now a warning, once, at the line that called tune."""
    frame, model = _long_and_short(), tiny_model(validation_size=12)
    with pytest.warns(ForecasterWarning, match="different validation windows") as caught:
        result = quick(model, frame, n_trials=1, search_space={"lookback": [12, 46]})
    assert result.n_trials_finished == 1
    (warning,) = _window_warnings(caught)
    assert "lookback=46 leaves out 7 (all those of 1 series)" in str(warning.message)
    assert "Sample lookbacks up to 32" in str(warning.message)
    with pytest.warns(ForecasterWarning, match="lookback=46 leaves out 7") as caught:
        quick(tiny_model(validation_size=12, loss="quantile"), frame, metric="pinball",
              n_trials=1, search_space={"lookback": [12, 46]})  # fmt: skip
    assert len(_window_warnings(caught)) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quick(model, frame, n_trials=1, search_space={"lookback": [12, 32]})
    assert _window_warnings(caught) == []
    with pytest.warns(ForecasterWarning, match="lookback=38 leaves out 7"):  # no training window
        quick(model, frame, n_trials=1, search_space={"lookback": [12, 38]})


def test_a_callable_space_is_compared_with_its_first_trial_and_warned_of_once():
    """Each trial was compared with lookback 1 and failed: a constant lookback that leaves
    out a window failed every trial. Now the trials of the call are compared with the first
    one's windows, and one warning names the lookbacks (none when they score the same)."""
    frame, model = _long_and_short(), tiny_model(validation_size=12)

    def constant(trial):
        return {"lookback": 46, "lr": trial.suggest_float("lr", 1e-3, 1e-2, log=True)}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = quick(model, frame, search_space=constant)
    assert [t.state for t in result.study.trials] == [COMPLETE, COMPLETE]
    assert _window_warnings(caught) == []

    def changing(trial):
        return {"lookback": 46 if trial.number == 0 else 12}

    with pytest.warns(ForecasterWarning, match="different validation windows") as caught:
        result = quick(model, frame, n_trials=3, search_space=changing)
    assert [t.state for t in result.study.trials] == [COMPLETE] * 3
    (warning,) = _window_warnings(caught)
    assert "callable (its trials' lookbacks [12, 46])" in str(warning.message)
    assert "lookback=46 leaves out 7 (all those of 1 series)" in str(warning.message)
    assert "Sample lookbacks up to 32" in str(warning.message)


def test_the_default_space_warns_at_the_line_that_called_tune():
    """The warning pointed at tune's own line in study.py."""
    frame = _long_and_short(long=400, short=60, n_long=9)
    model = tiny_model(validation_size=12, max_epochs=1)
    space = default_search_space(model, frame)
    assert 64 in space["lookback"].choices  # more than the short series has before its split
    match = "lookback=48 leaves out 7 .*lookback=64 leaves out 7 .*up to 42"  # 48 - horizon 6
    with pytest.warns(ForecasterWarning, match=match) as caught:
        quick(model, frame, n_trials=1, search_space=None)
    (warning,) = _window_warnings(caught)
    assert str(warning.message).startswith("The default search space (lookback [")


def test_val_loss_refuses_windows_per_epoch_that_samples_the_validation_windows(frame):
    """windows_per_epoch also caps the validation windows: trials of 8 were scored on a
    random sample of 8 of the 22, the others on all of them."""
    with pytest.raises(
        DataValidationError,
        match=r"\[8, 64\] .*the data has 22, so trials of windows_per_epoch below 22",
    ):
        quick(frame=frame, search_space={"windows_per_epoch": [8, 64]})
    quick(frame=frame, n_trials=1, search_space={"windows_per_epoch": [32, 64]})
    quick(frame=frame, n_trials=1, metric=lambda model, data: model.val_loss_,
          search_space={"windows_per_epoch": [8, 64]})  # fmt: skip  # its own choice

    def space(trial):
        return {"windows_per_epoch": 8 if trial.number == 0 else 64}

    result = quick(frame=frame, n_trials=1, search_space=space)
    first, second = result.study.trials
    assert (first.state, second.state) == (FAIL, COMPLETE)
    assert "windows_per_epoch=8 also caps" in first.user_attrs["error"]


def test_a_study_resumed_with_other_quantiles_is_refused(tmp_path, frame):
    url = f"sqlite:///{tmp_path}/optuna.db"
    model = tiny_model(loss="quantile", quantiles=[0.5])
    quick(model, frame, storage=url, study_name="q", n_trials=1)
    with pytest.raises(DataValidationError, match=r"quantiles: the study has \[0.5\], this call"):
        other = clone(model).set_params(quantiles=[0.02, 0.5, 0.98])
        quick(other, frame, storage=url, study_name="q", n_trials=2)
    names = {quick(m, frame, n_trials=1).study_name for m in (model, other)}
    assert len(names) == 2  # default names: a study each


def test_static_covariates_are_part_of_the_study_identity(tmp_path, frame):
    """Studies with and without statics shared one default name, and one study's trials."""
    import json

    url = f"sqlite:///{tmp_path}/optuna.db"
    kinds = frame.with_columns(
        kind=pl.when(pl.col("id") == "s0").then(pl.lit("a")).otherwise(pl.lit("b"))
    )
    plain_model, static_model = tiny_model(), tiny_model(static_covariates="kind")
    names = {quick(m, kinds, n_trials=1).study_name for m in (plain_model, static_model)}
    assert len(names) == 2  # default names: a study each
    quick(plain_model, kinds, storage=url, study_name="s", n_trials=1)
    with pytest.raises(
        DataValidationError, match="static_covariates: the study has None, this call 'kind'"
    ):
        quick(static_model, kinds, storage=url, study_name="s", n_trials=2)
    space = resolve_space(TINY_SPACE, plain_model, kinds)
    task = json.loads(study_identity(plain_model, space, "val_loss", "minimize")["forecaster.task"])
    assert "static_covariates" not in task  # the records of studies without statics: as before
    with pytest.raises(DataValidationError, match=r"lacks the columns \['kind'\]"):
        quick(static_model, frame)  # before any trial (every fit refused it)


def test_a_study_recorded_before_quantiles_were_its_identity_resumes(tmp_path, frame):
    """A study whose record has quantiles among its fixed parameters (written before they were
    part of its task) resumes with the same quantiles, without a warning, and is refused with
    others."""
    import json
    import warnings

    url = f"sqlite:///{tmp_path}/optuna.db"
    model = tiny_model(loss="quantile", quantiles=[0.1, 0.5, 0.9])
    study = quick(model, frame, storage=url, study_name="old", n_trials=1).study
    task = json.loads(study.user_attrs["forecaster.task"])
    fixed = json.loads(study.user_attrs["forecaster.fixed_params"])
    fixed["quantiles"] = task.pop("quantiles")  # the record as it was written before
    study.set_user_attr("forecaster.task", json.dumps(task, sort_keys=True))
    study.set_user_attr("forecaster.fixed_params", json.dumps(fixed, sort_keys=True))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "The study .* other fixed parameters", ForecasterWarning)
        assert quick(model, frame, storage=url, study_name="old", n_trials=2).n_trials_run == 1
    with pytest.raises(DataValidationError, match="quantiles: the study has"):
        quick(clone(model).set_params(quantiles=[0.5]), frame, storage=url, study_name="old")
    space = resolve_space(TINY_SPACE, tiny_model(), frame, "val_loss")
    point = study_identity(tiny_model(), space, "val_loss", "minimize")
    assert "quantiles" not in json.loads(point["forecaster.task"])  # names and records kept
    assert "quantiles" in json.loads(point["forecaster.fixed_params"])  # as before


def test_a_study_recorded_before_static_covariates_were_its_identity_resumes(tmp_path, frame):
    import json
    import warnings

    url = f"sqlite:///{tmp_path}/optuna.db"
    kinds = frame.with_columns(kind=pl.col("id"))
    model = tiny_model(static_covariates="kind")
    study = quick(model, kinds, storage=url, study_name="old", n_trials=1).study
    task = json.loads(study.user_attrs["forecaster.task"])
    fixed = json.loads(study.user_attrs["forecaster.fixed_params"])
    fixed["static_covariates"] = task.pop("static_covariates")  # the record written before
    study.set_user_attr("forecaster.task", json.dumps(task, sort_keys=True))
    study.set_user_attr("forecaster.fixed_params", json.dumps(fixed, sort_keys=True))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "The study .* other fixed parameters", ForecasterWarning)
        assert quick(model, kinds, storage=url, study_name="old", n_trials=2).n_trials_run == 1
    with pytest.raises(DataValidationError, match="static_covariates: the study has 'kind'"):
        quick(tiny_model(), kinds, storage=url, study_name="old")


def test_a_study_resumed_with_another_seed_warns(tmp_path, frame):
    """Resumed with another random_state, the study kept its best value while best_estimator
    was refitted with the new seed (val_loss_ 0.97 against best_value 0.90), without a word; a
    study recorded before the seed was recorded resumes quietly."""
    import json
    import warnings

    url = f"sqlite:///{tmp_path}/optuna.db"
    study = quick(tiny_model(), frame, storage=url, study_name="s", n_trials=1, random_state=0)
    with pytest.warns(ForecasterWarning, match=r"random_state: the study has 0, this call 1"):
        quick(tiny_model(), frame, storage=url, study_name="s", n_trials=1, random_state=1)
    fixed = json.loads(study.study.user_attrs["forecaster.fixed_params"])
    del fixed["random_state"]  # as a study recorded before it was
    study.study.set_user_attr("forecaster.fixed_params", json.dumps(fixed, sort_keys=True))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "The study .* other fixed parameters", ForecasterWarning)
        quick(tiny_model(), frame, storage=url, study_name="s", n_trials=1, random_state=1)


def test_tune_warns_each_kind_of_its_trials_once_naming_them():
    model = RNNForecaster(**{**GAPPY_MODEL, "baseline": "none"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tune(model, gappy_panel(), n_trials=4, storage=None, show_progress=False,
             search_space={"hidden_size": [2, 4, 8]}, random_state=0)  # fmt: skip
    kinds = forecaster_warning_kinds(caught)
    assert set(kinds.values()) == {1}, kinds  # before: the fill warning of every fit
    fills = [str(w.message) for w in caught if "made up" in str(w.message)]
    assert len(fills) == 1, fills  # one summary
    assert fills[0].startswith(
        "In 4 of 4 tuning trials (trials 0, 1, 2, 3) and the refit of the best trial: "
        "missing='ffill' made up 102 of the 320 rows"
    ), fills
    summaries = [w for w in caught if str(w.message).startswith("In ")]
    assert {w.filename for w in summaries} == {__file__}  # at the user's line


def test_finished_trials_leaves_a_sqlite_file_without_optuna_tables_untouched(tmp_path):
    """A dry run asks how many trials a study of the spec's storage finished; an existing
    SQLite file without Optuna's tables (empty, or another program's) got Optuna's tables
    written into it. It holds no study: 0, and the file is not changed."""
    from forecaster.tuning.storage import finished_trials

    empty = tmp_path / "empty.db"
    empty.touch()
    assert finished_trials(f"sqlite:///{empty}", "study") == 0
    assert empty.stat().st_size == 0


def test_a_tune_stopped_by_a_callbacks_error_ends_the_studys_run_with_its_trials(
    monkeypatch, frame
):
    """A callback that raised after trial 0 left the study's MLflow run RUNNING (the summary
    was logged only on success) and trial 0 without its run (the user's callbacks came before
    the logger's). The trial is logged first, and the run ends with the trials so far."""
    tracking = pytest.importorskip("forecaster.tracking")
    pytest.importorskip("mlflow")
    calls: dict[str, list] = {"study": [], "trials": [], "status": []}

    def log_study(study, estimator, frame, best_estimator=None, **kwargs):
        calls["study"].append(len(study.get_trials()))
        calls["status"].append(kwargs.get("status"))
        return "parent-run"

    def trial_callback(parent_run_id, **kwargs):
        return lambda study, trial: calls["trials"].append(trial.number)

    def stop(study, trial):
        raise RuntimeError("my callback failed")

    monkeypatch.setattr(tracking, "log_study", log_study)
    monkeypatch.setattr(tracking, "trial_callback", trial_callback)
    with pytest.raises(RuntimeError, match="my callback failed"):
        quick(frame=frame, track=True, callbacks=[stop])
    # started, then ended with trial 0: FAILED, once (was: FINISHED)
    assert calls == {"study": [0, 1], "trials": [0], "status": ["RUNNING", "FAILED"]}


def _fake_study_logging(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """``forecaster.tracking``'s study logging replaced: the ``status`` of each ``log_study``
    call (its run is "parent-run") and each run ended by ``end_study_run``."""
    tracking = pytest.importorskip("forecaster.tracking")
    import forecaster.tracking.studyrun as studyrun

    calls: dict[str, list] = {"status": [], "ended": []}

    def log_study(study, estimator, frame, best_estimator=None, **kwargs):
        calls["status"].append(kwargs.get("status"))
        return "parent-run"

    def end_study_run(run_id, status, elsewhere=()):
        calls["ended"].append((run_id, status))

    monkeypatch.setattr(tracking, "log_study", log_study)
    monkeypatch.setattr(tracking, "trial_callback", lambda run, **kwargs: lambda s, t: None)
    monkeypatch.setattr(studyrun, "end_study_run", end_study_run)
    return calls


def test_ctrl_c_in_a_tracked_tune_ends_its_study_run_killed_as_the_command_does(monkeypatch, frame):
    """tune(track=True) stopped by Ctrl-C logged the summary of its trials and ended its
    study's run FINISHED, where `forecaster tune` ends it KILLED (its deferred block drops
    the summary after an interrupt). Both end it KILLED at once, without the summary, by one
    mechanism (StudyLogger.killed)."""
    pytest.importorskip("mlflow")
    calls = _fake_study_logging(monkeypatch)

    def ctrl_c(study, trial):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        quick(frame=frame, track=True, callbacks=[ctrl_c])
    assert calls == {"status": ["RUNNING"], "ended": [("parent-run", "KILLED")]}


@pytest.mark.parametrize(
    ("failure", "ended"),
    [(OSError(28, "No space left on device"), []), (KeyboardInterrupt(), ["KILLED"])],
)
def test_a_tracked_tune_whose_deferred_block_fails_ends_its_study_run_once(
    monkeypatch, frame, failure, ended
):
    """`forecaster tune` logs the study's end in a deferred block (its best model is logged
    calibrated) and saves the model in it: a save that failed ended the study's run FINISHED
    (the block's deferred logging), then FAILED (the command's own cleanup) milliseconds
    later. The deferred logging ends it FAILED itself now, once (KILLED when interrupted)."""
    tracking = pytest.importorskip("forecaster.tracking")
    pytest.importorskip("mlflow")
    calls = _fake_study_logging(monkeypatch)
    with pytest.raises(type(failure)), tracking.deferred():
        quick(frame=frame, track=True)
        raise failure  # the command's save of the best model
    logged = ["RUNNING", "FAILED"] if not ended else ["RUNNING"]  # no summary when interrupted
    assert calls == {"status": logged, "ended": [("parent-run", s) for s in ended]}


def test_a_tracked_tune_where_no_trial_completes_ends_its_study_run_failed(monkeypatch, frame):
    """tune(track=True) whose trials all failed raised "No trial ... completed" and ended its
    study's run FINISHED (`forecaster tune`: FAILED, its deferred block failed). It ends
    FAILED, with the summary of the trials, as after any error."""
    pytest.importorskip("mlflow")
    calls = _fake_study_logging(monkeypatch)
    with pytest.raises(ForecasterError, match=r"No trial .* completed"):
        quick(frame=frame, track=True, search_space=lambda trial: {"lookback": 1000})
    assert calls == {"status": ["RUNNING", "FAILED"], "ended": []}


@pytest.mark.parametrize("deferred", [False, True])
def test_a_ctrl_c_in_a_tracked_tunes_final_logging_ends_its_study_run_killed_once(
    monkeypatch, frame, deferred
):
    """A Ctrl-C while tune's final log_study logged the summary: inside tracking.deferred()
    (`forecaster tune`), nothing ended the study's run (the block's stop calls are of the
    entries after the one interrupted), so it stayed RUNNING for good. It ends KILLED, once
    (the interrupted logging's own end of the run is not made again: end_study_run)."""
    tracking = pytest.importorskip("forecaster.tracking")
    pytest.importorskip("mlflow")
    calls = _fake_study_logging(monkeypatch)
    logged = tracking.log_study

    def interrupted_at_the_end(*args, **kwargs):
        run_id = logged(*args, **kwargs)
        if kwargs.get("status") != "RUNNING":
            raise KeyboardInterrupt
        return run_id

    monkeypatch.setattr(tracking, "log_study", interrupted_at_the_end)
    block = tracking.deferred() if deferred else contextlib.nullcontext()
    with pytest.raises(KeyboardInterrupt), block:
        quick(frame=frame, track=True)
    assert calls == {"status": ["RUNNING", "FINISHED"], "ended": [("parent-run", "KILLED")]}


@pytest.mark.slow
def test_a_ctrl_c_as_a_tracked_tune_logs_its_best_model_ends_its_study_run_once(
    monkeypatch, tmp_path, frame
):
    """A Ctrl-C while tune's final log_study logged the refitted model: the logging ended the
    study's run KILLED (its own run), then tune ended it KILLED again. Once now."""
    mlflow = pytest.importorskip("mlflow")
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    import forecaster.tracking.fitlog as fitlog

    reset_mlflow_state(monkeypatch, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    end, ends = TrackingServiceClient.set_terminated, []

    def ending(client, run_id, *args, **kwargs):
        ends.append((run_id, args[0] if args else kwargs.get("status")))
        return end(client, run_id, *args, **kwargs)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(TrackingServiceClient, "set_terminated", ending)
    monkeypatch.setattr(fitlog, "_upload", interrupted)  # the model's files
    with pytest.raises(KeyboardInterrupt), warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)  # the model kept in a fallback
        quick(frame=frame, track=True, refit=True)
    (run,) = mlflow.search_runs(search_all_experiments=True, output_format="list",
                                filter_string="tags.`forecaster.kind` = 'study'")  # fmt: skip
    assert run.info.status == "KILLED"
    assert [s for run_id, s in ends if run_id == run.info.run_id] == ["KILLED"]


def test_a_tune_stopped_by_an_error_keeps_it_when_the_final_logging_fails(monkeypatch, frame):
    """The run's summary logged as tune stops may fail, and its warning be an error (pytest's
    filterwarnings = error): the callback's own error reached the user only as the context
    of that warning. It propagates, with the logging failure in its notes."""
    tracking = pytest.importorskip("forecaster.tracking")
    pytest.importorskip("mlflow")
    calls: list[int] = []

    def log_study(study, estimator, frame, best_estimator=None, **kwargs):
        calls.append(len(study.get_trials()))
        if len(calls) > 1:
            raise ConnectionError("tracking server unreachable")
        return "parent-run"

    def stop(study, trial):
        raise RuntimeError("my callback failed")

    monkeypatch.setattr(tracking, "log_study", log_study)
    monkeypatch.setattr(tracking, "trial_callback", lambda run, **kwargs: lambda s, t: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        with pytest.raises(RuntimeError, match="my callback failed") as error:
            quick(frame=frame, track=True, callbacks=[stop])
    assert "tracking server unreachable" in "\n".join(error.value.__notes__)
    assert calls == [0, 1]


def _days(spec: dict[str, tuple[str, str]]) -> pl.DataFrame:
    """Daily random walks, long format (id, time, y): ``{id: (first day, last day)}``."""
    rng, parts = np.random.default_rng(0), []
    for sid, (first, last) in spec.items():
        times = pl.date_range(pl.lit(first).str.to_date(), pl.lit(last).str.to_date(), eager=True)
        walk = 10 + rng.normal(size=len(times)).cumsum()
        parts.append(pl.DataFrame({"id": sid, "time": times, "y": walk}))
    return pl.concat(parts)


def _day_model(**params):
    return tiny_model(lookback=3, horizon=2, max_epochs=1, hidden_size=4, baseline="none", **params)


@pytest.mark.parametrize("c_start", ["2024-02-12", "2024-02-16"])
def test_a_probabilistic_score_reads_the_hold_out_of_the_series_the_fit_keeps(c_start):
    """a and b end on February 9, c (6 days) 8 or 12 days later: the fit leaves c out (too
    short for a training window) and holds out a's and b's last 10 days (18 validation
    windows). The score placed the hold-out time on the whole panel, c included: it scored
    2 of the 18 windows, or (c ending 12 days later) failed: "No series has a validation
    origin". Now it scores the fit's windows: the score of the frame without c."""
    from forecaster.tuning.scores import probabilistic_score

    frame = _days({"a": ("2024-01-01", "2024-02-09"), "b": ("2024-01-01", "2024-02-09")})
    c_end = str((np.datetime64(c_start) + np.timedelta64(5, "D")).astype("datetime64[D]"))
    with_c = pl.concat([frame, _days({"c": (c_start, c_end)})])
    with pytest.warns(ForecasterWarning, match="Dropped 1 series"):
        model = _day_model(loss="quantile", validation_size=10).fit(with_c)
    assert model.keys_["id"].to_list() == ["a", "b"] and model.n_val_windows_ == 18
    score = probabilistic_score(model, with_c, "pinball")
    assert score == probabilistic_score(model, frame, "pinball")


def _late_short_c() -> pl.DataFrame:
    """a, b: 40 days to February 9; c: 12 days to February 12 (3 days after them)."""
    return _days({"a": ("2024-01-01", "2024-02-09"), "b": ("2024-01-01", "2024-02-09"),
                  "c": ("2024-02-01", "2024-02-12")})  # fmt: skip


def test_tune_counts_each_lookbacks_validation_windows_on_the_hold_out_the_fit_keeps():
    """With c the hold-out time is February 7 (validation_size=5) and a, b hold out 2 days;
    lookback 6 leaves c out (too short), and a, b then hold out 5 days: 8 validation windows,
    where tune counted 2 (the windows of the lookback warning and the windows_per_epoch
    refusal). Now each lookback's count is its fit's."""
    from forecaster.tuning.data_checks import check_data

    frame, model = _late_short_c(), _day_model(validation_size=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        _, span = check_data(model, frame, {}, "val_loss", default_space=False)
        for lookback in (3, 6):
            fit = clone(model).set_params(lookback=lookback).fit(frame)
            assert int(span.counts(lookback).sum()) == fit.n_val_windows_  # 6 and 8
    assert span.counts(6).tolist() == [4, 4, 0]


def test_tune_refuses_the_lookbacks_every_fit_refuses_when_the_hold_out_moves():
    """A fit of lookback 30 (validation_size=10, horizon 2) leaves c out, and a, b then hold
    out 10 days: 30 days before it, no room (28 at most). tune placed the hold-out on the
    whole panel (a, b holding out 7 days) and allowed lookbacks up to 36, so every trial of
    30 failed; now it refuses them before any trial, with the fit's bound."""
    frame, model = _late_short_c(), _day_model(validation_size=10)
    with pytest.raises(DataValidationError, match=r"lookbacks too long .*\(\[30\]\).* at most 28"):
        quick(model, frame, search_space={"lookback": [20, 30]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        with pytest.raises(DataValidationError, match="No training windows remain"):
            clone(model).set_params(lookback=29).fit(frame)
        assert clone(model).set_params(lookback=28).fit(frame).keys_["id"].to_list() == ["a", "b"]


@pytest.mark.parametrize(
    ("metric", "unscaled"), [("scrps", "winkler_95"), ("msis_80", "winkler_80")]
)
def test_a_scaled_score_refuses_a_series_flat_before_its_validation_span(metric, unscaled):
    """A series that does not change before its validation origins has an in-sample naive
    MAE of 0: every trial's sCRPS / MSIS was inf ("The trial's scrps is inf") until the study
    stopped after its failed trials. Now refused before any trial, naming the series; the
    unscaled metrics still tune on it."""
    flat = tiny_frame(n_series=3).with_columns(
        y=pl.when(pl.col("id") == "s2").then(5.0).otherwise(pl.col("y"))
    )
    model = tiny_model(
        loss="quantile", quantiles=[0.1, 0.5, 0.9], validation_size=8, baseline="none"
    )
    expected = rf"series \['s2'\] \(1 in all\) do not change.*metric='{unscaled}'.*No trial"
    with pytest.raises(DataValidationError, match=expected):
        quick(model, flat, metric=metric, n_trials=1)
    result = quick(model, flat, metric="pinball", n_trials=1)
    assert np.isfinite(result.study.best_value)


def test_tune_checks_ask_for_each_lookbacks_series_once(monkeypatch):
    """The checks of a dict space (the lookback warning, its counts and the longest lookback
    keeping every window) asked kept_series again and again for the same lookback: on a date
    panel each call runs the hold-out's rounds. Now once per lookback for the span."""
    from forecaster.tuning import data_checks

    frame, model = _late_short_c(), _day_model(validation_size=5)
    asked = []
    kept_series = data_checks.kept_series
    monkeypatch.setattr(
        data_checks, "kept_series", lambda *a, **k: asked.append(a[2]) or kept_series(*a, **k)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        _, span = data_checks.check_data(model, frame, {}, "val_loss", default_space=False)
    asked.clear()
    assert span.lookback_warning([3, 6, 6, 3], "tune") is not None
    assert span.keeping(3) >= 3 and span.counts(6).tolist() == [4, 4, 0]
    assert sorted(asked) == [3, 6]  # was several calls per lookback


def test_a_scaled_score_refuses_a_series_without_two_observed_steps_in_a_row():
    """A series observed every other step, its gaps filled by missing='ffill', has no
    in-sample naive difference (filled steps are not scored): its scale is undefined, not 0,
    and the check let it through; every trial then failed ("MASE's scale ... is undefined")
    until the study stopped. Now refused before any trial, naming the series."""
    frame = tiny_frame(n_series=3).filter((pl.col("id") != "s2") | (pl.col("time") % 2 == 0))
    model = tiny_model(
        loss="quantile", quantiles=[0.1, 0.5, 0.9], validation_size=8, baseline="none",
        missing="ffill",
    )  # fmt: skip
    expected = r"series \['s2'\] \(1 in all\) .*no two observed steps in a row.*No trial"
    with pytest.raises(DataValidationError, match=expected):
        quick(model, frame, metric="scrps", n_trials=1)


def test_a_trials_undefined_scale_names_the_metric_and_the_unscaled_ones():
    """A trial whose sCRPS / MSIS scale is undefined (a series with no two observed steps in
    a row before its origins, e.g. at a lookback other than the template's, which tune's
    check reads) failed with evaluate's "... or drop 'mase' from metrics", a metric the user
    never asked for; now the error names the user's metric and the unscaled ones to tune on.
    Winkler, unscaled, was refused by the same check (its insample was passed): it scores."""
    from forecaster.tuning.scores import probabilistic_score

    frame = tiny_frame(n_series=3).filter((pl.col("id") != "s2") | (pl.col("time") % 2 == 0))
    model = tiny_model(
        loss="quantile", quantiles=[0.1, 0.5, 0.9], validation_size=8, baseline="none",
        missing="ffill",
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        model.fit(frame)
        for metric, unscaled in (("scrps", "winkler_95"), ("msis_80", "winkler_80")):
            expected = (
                rf"metric='{metric}' divides .*series \['s2'\] .*this trial's score "
                rf"\(lookback=24\).*metric='pinball' or metric='{unscaled}'"
            )
            with pytest.raises(DataValidationError, match=expected) as caught:
                probabilistic_score(model, frame, metric)
            assert "mase" not in str(caught.value)
        assert np.isfinite(probabilistic_score(model, frame, "winkler_80"))


def _short_flat_series() -> pl.DataFrame:
    """tiny_frame's s0, s1 (160 steps) and a flat s2 of their last 40 steps: a fit holding
    out 8 steps keeps s2 up to lookback 26 (lookback + horizon 6 <= 32 steps before it)."""
    frame = tiny_frame(n_series=2)
    flat = pl.DataFrame(
        {"id": "s2", "time": np.arange(120, 160), "y": np.full(40, 5.0, dtype=np.float32)}
    )
    return pl.concat([frame, flat])


def test_a_scaled_score_is_checked_at_every_lookback_the_space_samples():
    """The flat-series check of sCRPS / MSIS ran at the template's lookback (36: s2 left out)
    only; trials of lookbacks that keep the flat s2 were fitted, then failed one by one. Now
    refused before any trial, naming the lookbacks that score s2 and those that do not."""
    model = tiny_model(loss="quantile", validation_size=8, baseline="none", lookback=36)
    expected = (
        r"series \['s2'\].*trials of lookback 12-26 \(search_space\['lookback'\] = "
        r"\(12, 36\)\).*sample only lookbacks 27-36 .*No trial was run"
    )
    with pytest.raises(DataValidationError, match=expected):
        quick(model, _short_flat_series(), metric="scrps", search_space={"lookback": (12, 36)})
    with pytest.raises(DataValidationError, match=r"trials of lookback 12 \(.*lookbacks 36 "):
        quick(model, _short_flat_series(), metric="msis_80", search_space={"lookback": [12, 36]})


def test_a_scaled_score_is_not_refused_for_the_template_lookback_no_trial_uses():
    """The template's lookback (12) keeps the flat s2, but the space samples only lookbacks
    that leave it out: tune refused ("every trial's score would be infinite") though every
    trial scores; now it runs."""
    model = tiny_model(loss="quantile", validation_size=8, baseline="none", lookback=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)  # s2 dropped by the fits
        result = quick(
            model, _short_flat_series(), metric="scrps", search_space={"lookback": [30, 36]}
        )
    assert np.isfinite(result.study.best_value)


def test_a_callable_spaces_trial_of_a_flat_lookback_fails_before_its_fit():
    """A callable space's trial whose lookback keeps the flat s2 was fitted, then failed on
    its infinite score; now it fails before its fit (no history), the others score. A
    callable that sets no lookback leaves every trial the template's: the study stops."""
    model = tiny_model(loss="quantile", validation_size=8, baseline="none", lookback=36)
    frame = _short_flat_series()

    def space(trial):
        return {"lookback": trial.suggest_categorical("lookback", [12, 36])}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecasterWarning)
        result = quick(model, frame, metric="scrps", n_trials=2, search_space=space)
    failed = [t for t in result.study.trials if t.state.name == "FAIL"]
    assert failed and all(t.params["lookback"] == 12 for t in failed)
    assert all("history" not in t.user_attrs for t in failed)  # refused before the fit
    assert all("this trial's score (lookback=12)" in t.user_attrs["error"] for t in failed)
    with pytest.raises(DataValidationError, match=r"sets no lookback.*lookback=12\).*stopped"):
        quick(
            model.set_params(lookback=12), frame, metric="scrps", n_trials=2,
            search_space=lambda trial: {"hidden_size": trial.suggest_int("hidden_size", 4, 8)},
        )  # fmt: skip


def test_trials_scored_at_validation_origins_missing_filled_do_not_warn_of_made_up_origins():
    """A quantile model's pinball score predicts from the fit's validation origins, steps of
    the grid missing="ffill" fills (2020-06-03 of gappy_panel): every trial warned "2 series
    end with rows whose targets are missing ... Drop those trailing rows", though the frame
    ends on observed rows and the fit's own validation loss reads the same origins without a
    word."""
    model = RNNForecaster(**{**GAPPY_MODEL, "baseline": "none", "loss": "quantile"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tune(model, gappy_panel(), n_trials=2, storage=None, show_progress=False,
             search_space={"hidden_size": [2, 4]}, metric="pinball", random_state=0,
             refit=False)  # fmt: skip
    told = [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]
    assert any("made up 102 of the 320 rows" in m for m in told), told  # the fill: named
    assert not [m for m in told if "targets are missing" in m], told


def test_a_scaled_score_refused_at_some_default_lookbacks_names_the_default_space():
    """Without a search_space, the default space's lookbacks 16 and 24 keep a short flat
    series (the 13th): the refusal said "search_space['lookback'] = [16, 24, ...] ... Or
    sample only lookbacks 32, 36, 48, 64", of a search space the user never passed."""
    flat = pl.DataFrame(
        {"id": "flat", "time": np.arange(120, 160), "y": np.full(40, 5.0, dtype=np.float32)}
    )
    frame = pl.concat([tiny_frame(n_series=12), flat])
    model = tiny_model(loss="quantile", validation_size=8, baseline="none", lookback=36)
    expected = (
        r"series \['flat'\].*trials of lookback 16, 24 \(the default search space's lookbacks "
        r"\[16, 24, 32, 36, 48, 64\]\).*Or pass a search_space whose lookbacks are among 32, "
        r"36, 48, 64 .*No trial was run"
    )
    with pytest.raises(DataValidationError, match=expected) as caught:
        quick(model, frame, metric="scrps", search_space=None)
    assert "search_space['lookback']" not in str(caught.value)


@pytest.mark.parametrize("n_workers", [1, 2])
def test_trials_leave_the_templates_checkpoint_folder_as_it_was(tmp_path, n_workers):
    """Each trial's clone fitted into the template's ``checkpoint_dir``: a fresh fit replaces
    its folder's checkpoints, so the trials replaced those of the user's own fit (and two
    trials fitting at once wrote one folder). Trials fit without checkpoints."""
    folder = tmp_path / "checkpoints"
    model = tiny_model(checkpoint_dir=str(folder), checkpoint_every=2)
    frame = tiny_frame()
    model.fit(frame)
    before = tree_digest(folder)
    assert before  # the fit's own checkpoint
    result = tune(
        model,
        frame,
        n_trials=2,
        n_workers=n_workers,
        search_space=TINY_SPACE,
        storage=f"sqlite:///{tmp_path}/optuna.db",
        refit=False,
        show_progress=False,
    )
    assert [t.state.name for t in result.study.trials] == ["COMPLETE", "COMPLETE"]
    assert tree_digest(folder) == before
    assert model.get_params()["checkpoint_dir"] == str(folder)  # the template is unchanged


def test_the_refit_keeps_the_templates_checkpoints_and_says_where_its_own_are(tmp_path):
    """``tune(refit=True)`` refitted the best trial into the template's ``checkpoint_dir``: a
    fresh fit replaces its folder's checkpoints, those of the user's own fit of the template.
    The refit's checkpoints go to a new subfolder, which the returned model names."""
    folder = tmp_path / "checkpoints"
    model = tiny_model(checkpoint_dir=str(folder), checkpoint_every=2)
    frame = tiny_frame()
    model.fit(frame)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert before  # the fit's own checkpoint
    result = quick(model, frame, n_trials=1, refit=True, study_name="refit study")
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    refit_folder = Path(result.best_estimator.checkpoint_dir)
    assert refit_folder.parent == folder and refit_folder.name.endswith("-refit_study")
    assert [p.name for p in refit_folder.iterdir()] == ["checkpoint-0.safetensors"]
    assert model.get_params()["checkpoint_dir"] == str(folder)  # the template is unchanged


@pytest.mark.slow
def test_a_dead_trial_of_another_machine_in_a_storage_without_heartbeat_never_keeps_the_run_open(
    monkeypatch, tmp_path, frame
):
    """A storage without heartbeat (here an RDB storage opened without one) held a RUNNING
    trial of a process that died on another machine: tune warns it cannot tell it dead or
    alive, and does not count it. Its Ctrl-C, the only live process's, left the study's run
    RUNNING for good ("trials 0 still ran elsewhere"): nothing would ever end it. It ends
    KILLED, as a storage without heartbeat cannot say that another machine still tunes."""
    mlflow = pytest.importorskip("mlflow")
    reset_mlflow_state(monkeypatch, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/optuna.db")
    study = optuna.create_study(study_name="zombie", storage=storage)
    study.ask().set_user_attr("host", "a-machine-that-died")

    def ctrl_c(study, trial):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), pytest.warns(ForecasterWarning, match="RUNNING"):
        quick(frame=frame, track=True, storage=storage, study_name="zombie", callbacks=[ctrl_c])
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    parents = [r for r in runs if r.data.tags.get("forecaster.kind") == "study"]
    assert [r.info.status for r in parents] == ["KILLED"]


def test_the_check_for_trials_running_elsewhere_gives_up_on_a_storage_that_hangs(monkeypatch):
    """running_elsewhere, which runs as a tracked tune is interrupted, read the storage with
    no bound: a database that did not answer held up the Ctrl-C for as long. It waits
    ``timeout`` seconds, then warns that it cannot tell and returns None (unknown)."""
    from forecaster.tuning.study_log import running_elsewhere

    study = optuna.create_study(study_name="hung")
    study.ask().set_user_attr("host", "another-machine")
    assert running_elsewhere(study, heartbeat=True) == [0]  # it answers: that trial
    released = threading.Event()
    monkeypatch.setattr(study, "get_trials", lambda **kwargs: released.wait(60))
    started = time.perf_counter()
    try:
        with pytest.warns(ForecasterWarning, match=r"'hung' \(its storage did not answer within"):
            assert running_elsewhere(study, heartbeat=True, timeout=0.3) is None
        assert time.perf_counter() - started < 10
    finally:
        released.set()  # the reader thread ends


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_storage_that_hangs_as_stale_trials_are_failed_holds_no_warnings_lock(tmp_path):
    """running_elsewhere's reader thread, left blocked on a storage that hangs as its stale
    trials are failed, held forecaster's process-wide warnings lock (fail_stale_trials read
    the storage inside a catching_warnings block): every later catching_warnings block of
    the process (a fit, a calibration, an in-process command) waited for that storage,
    forever. The storage is now read outside any warnings block."""
    from forecaster._warnings import catching_warnings
    from forecaster.tuning.study_log import running_elsewhere

    storage = make_storage(f"sqlite:///{tmp_path}/optuna.db", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="hung")
    released = threading.Event()
    # the storage hangs as the stale trials are failed (after its stale trials were read)
    storage.get_heartbeat_stale_trial_callback = lambda: released.wait(60)
    entered = threading.Event()

    def enter_a_warnings_block() -> None:
        with catching_warnings():
            entered.set()

    try:
        with pytest.warns(ForecasterWarning, match=r"'hung' \(its storage did not answer within"):
            assert running_elsewhere(study, heartbeat=True, timeout=0.3) is None
        other = threading.Thread(target=enter_a_warnings_block, daemon=True)
        other.start()
        assert entered.wait(10), "a catching_warnings block waited for the hung storage"
    finally:
        released.set()  # the reader thread ends
    with warnings.catch_warnings():
        warnings.simplefilter("error", optuna.exceptions.ExperimentalWarning)
        assert running_elsewhere(study, heartbeat=True) == []  # Optuna's warning still hidden


def test_the_refit_folder_of_a_long_non_ascii_study_name_can_be_created(tmp_path):
    """The refit's folder kept the study name's first 80 characters, any letters: 80 CJK
    characters are 240 bytes in UTF-8, and the folder name went over the 255 bytes a file
    name may have on Linux and macOS, so the refit after the whole study failed ("File name
    too long"). Only ASCII letters, digits, ``_``, ``.`` and ``-`` are kept."""
    from forecaster.tuning.trials import refit_clone

    model = refit_clone(tiny_model(checkpoint_dir=str(tmp_path)), "需求预测" * 20)
    folder = Path(model.checkpoint_dir)
    assert folder.parent == tmp_path and len(folder.name.encode()) <= 255
    folder.mkdir()


def _series_second(n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Windows of a covariate (X's first feature) and a level (its second), y the level's
    next value."""
    rng = np.random.default_rng(0)
    level, other = 100 + np.cumsum(rng.normal(size=n + 8)), rng.normal(size=n + 8)
    x = np.stack([np.stack([other[i : i + 8], level[i : i + 8]], -1) for i in range(n)])
    return x.astype("float32"), level[8 : n + 8]


@pytest.mark.parametrize("callable_space", [False, True])
def test_a_search_space_sampling_target_feature_is_refused(callable_space):
    """target_feature says which feature of X the series y continues: a space sampling it
    ran trials reading another feature as the target's level (normalization='last') and
    ranked them with the others. It is refused, naming the estimator's parameter instead."""
    x, y = _series_second()
    model = RNNRegressor(hidden_size=4, max_epochs=1, normalization="last", target_feature=1)
    space = (
        (lambda trial: {"target_feature": trial.suggest_int("tf", 0, 1)})
        if (callable_space)
        else {"target_feature": [0, 1]}
    )
    with pytest.raises(DataValidationError, match=r"samples 'target_feature', the index of the "):
        tune(model, (x, y), n_trials=2, search_space=space, storage=None, show_progress=False)


def test_a_regressors_study_recorded_before_target_feature_resumes_quietly(tmp_path):
    """A study of an RNNRegressor recorded before target_feature existed (no such fixed
    parameter) warned on its resume "target_feature: the study has none, this call 0",
    though its trials had the target first. Such a study resumes quietly with 0, and warns
    naming the value it had with another."""
    import json

    x, y = _series_second()
    url = f"sqlite:///{tmp_path}/optuna.db"
    model = RNNRegressor(hidden_size=4, max_epochs=1, random_state=0)
    run = dict(search_space={"hidden_size": [4, 8]}, storage=url, study_name="old")
    study = tune(model, (x, y), n_trials=1, show_progress=False, **run).study
    fixed = json.loads(study.user_attrs["forecaster.fixed_params"])
    del fixed["target_feature"]  # the record as it was written before
    study.set_user_attr("forecaster.fixed_params", json.dumps(fixed, sort_keys=True))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "The study .* other fixed parameters", ForecasterWarning)
        tune(model, (x, y), n_trials=2, show_progress=False, **run)
    with pytest.warns(ForecasterWarning, match=r"target_feature: the study has 0, this call 1"):
        tune(clone(model).set_params(target_feature=1), (x, y), n_trials=3, **run)


def test_a_regressors_target_feature_beyond_x_is_refused_before_any_trial(tmp_path):
    """RNNRegressor(target_feature=5) on X of 2 features: ten trials failed as every fit
    refuses it, and stayed in the study, before tune said so. It is refused before any."""
    x, y = _series_second(60)
    url = f"sqlite:///{tmp_path}/optuna.db"
    with pytest.raises(
        DataValidationError, match=r"every trial would fail as fit does: target_feature=5 is the"
    ):
        tune(
            RNNRegressor(hidden_size=4, max_epochs=1, target_feature=5), (x, y), n_trials=2,
            search_space={"hidden_size": [4, 8]}, storage=url, show_progress=False,
        )  # fmt: skip
    studies = optuna.get_all_study_summaries(url) if (tmp_path / "optuna.db").exists() else []
    assert all(summary.n_trials == 0 for summary in studies)
    with pytest.raises(DataValidationError, match=r"target_feature must be an integer >= 0"):
        tune(
            RNNRegressor(hidden_size=4, max_epochs=1, target_feature="1"), (x, y), n_trials=1,
            search_space={"hidden_size": [4, 8]}, storage=None, show_progress=False,
        )  # fmt: skip


def test_a_retried_interrupted_trial_does_not_claim_it_was_interrupted():
    """Optuna's retry callback copies the user attributes of the trial it retries, so the
    retry of an interrupted trial said forecaster.interrupted=True: WAITING, once it ran, and
    when it then failed of its own error it would be queued again as interrupted. The retry
    has no such attribute; Optuna's system attributes name the trial it retries; a retry
    queued by an earlier version (the attribute copied) gets it False as it starts."""
    from forecaster.tuning.storage import INTERRUPTED_ATTR, retry_interrupted_trials

    study = optuna.create_study()
    distributions = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    study.add_trial(
        optuna.trial.create_trial(
            state=FAIL,
            params={"x": 0.4},
            distributions=distributions,
            user_attrs={INTERRUPTED_ATTR: True, "host": "h"},
        )
    )
    assert retry_interrupted_trials(study) == [0]
    (retry,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert INTERRUPTED_ATTR not in retry.user_attrs and retry.user_attrs["host"] == "h"
    assert (retry.system_attrs["failed_trial"], retry.system_attrs["retry_history"]) == (0, [0])
    from forecaster.tuning.retries import check_retry

    def fails(trial: Any) -> float:
        check_retry(trial)
        raise ValueError("its own error")

    study.optimize(fails, n_trials=1, catch=(ValueError,))
    assert study.trials[1].state == FAIL and not study.trials[1].user_attrs.get(INTERRUPTED_ATTR)
    assert retry_interrupted_trials(study) == []  # failed of its own error: not queued again
    study.add_trial(  # queued by an earlier version: the attribute copied
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params={"x": 0.6},
            distributions=distributions,
            user_attrs={INTERRUPTED_ATTR: True},
            system_attrs={"failed_trial": 7, "retry_history": [7]},
        )
    )
    study.optimize(lambda trial: (check_retry(trial), trial.suggest_float("x", 0, 1))[1], 1)
    assert study.trials[2].state == COMPLETE
    assert study.trials[2].user_attrs[INTERRUPTED_ATTR] is False


def test_two_processes_queue_an_interrupted_trial_once_and_run_it_once():
    """Two ``tune`` processes resuming a study at the same moment both read it before either
    queued the interrupted trial, and both queued it: its parameters were fitted twice. The
    study is read again just before the trial is queued (a retry queued meanwhile is seen),
    and when both still queue it (the same moment, to the storage's read), the later-numbered
    retry is not run: it fails at once, naming both, and the first one runs."""
    from forecaster.exceptions import TrialFailedError
    from forecaster.tuning.storage import INTERRUPTED_ATTR, retry_interrupted_trials

    study = optuna.create_study()
    distributions = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    study.add_trial(
        optuna.trial.create_trial(
            state=FAIL,
            params={"x": 0.4},
            distributions=distributions,
            user_attrs={INTERRUPTED_ATTR: True},
        )
    )

    class ReadBeforeTheOther:  # this process's first read came before the other's queueing
        def __init__(self, first_read: list[Any]) -> None:
            self.first_read: list[Any] | None = first_read

        def get_trials(self, **kwargs: Any) -> list[Any]:
            read, self.first_read = self.first_read, None
            return study.get_trials(**kwargs) if read is None else read

        def add_trial(self, trial: Any) -> None:
            study.add_trial(trial)

    late = ReadBeforeTheOther(study.get_trials())
    assert retry_interrupted_trials(study) == [0]  # the other process
    assert retry_interrupted_trials(late) == []  # this one: seen just before queueing
    assert len(study.trials) == 2
    from forecaster.tuning.retries import check_retry

    study.add_trial(  # both queued it at the same moment: two WAITING retries of trial 0
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.WAITING,
            params={"x": 0.4},
            distributions=distributions,
            system_attrs={"failed_trial": 0, "retry_history": [0]},
        )
    )

    def objective(trial: Any) -> float:
        check_retry(trial)
        return trial.suggest_float("x", 0, 1)

    study.optimize(objective, n_trials=2, catch=(TrialFailedError,))
    assert [t.state for t in study.trials[1:]] == [COMPLETE, FAIL]
    assert study.trials[1].params == {"x": 0.4}
    assert (
        study.trials[2]
        .user_attrs["error"]
        .startswith("trial 2 retries trial 0, which trial 1 retries already")
    )


def test_queueing_retries_leaves_the_retry_history_of_the_trials_it_read_as_it_was():
    """A retry that was itself interrupted is not queued again (MAX_RETRY), but Optuna's
    retry callback appended its number to the retry_history list it was handed, which
    get_trials(deepcopy=False) shares with the storage: an in-memory study's trial then said
    it retried itself ([3, 0]), and a later check took it for no retry of trial 3."""
    from forecaster.exceptions import TrialFailedError
    from forecaster.tuning.retries import INTERRUPTED_ATTR, check_retry, retry_interrupted_trials

    study = optuna.create_study()
    distributions = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    for number in (0, 1):  # two retries of trial 3 (queued at one moment): 0 ran, interrupted
        study.add_trial(
            optuna.trial.create_trial(
                state=FAIL if number == 0 else optuna.trial.TrialState.WAITING,
                params={"x": 0.4},
                distributions=distributions,
                user_attrs={INTERRUPTED_ATTR: True} if number == 0 else {},
                system_attrs={"failed_trial": 3, "retry_history": [3]},
            )
        )
    assert retry_interrupted_trials(study) == []  # a retry is not retried (MAX_RETRY)
    assert retry_interrupted_trials(study) == []
    assert study.trials[0].system_attrs["retry_history"] == [3]
    trial = study.ask()  # the second retry of trial 3: not run, trial 0 retried it first
    assert trial.number == 1
    with pytest.raises(TrialFailedError, match="trial 1 retries trial 3, which trial 0 retries"):
        check_retry(trial)


# ------------------------------------------------------------------------------------------
# the data a study is for, the n_trials quota, the seed of a trial that nothing seeds
# ------------------------------------------------------------------------------------------


def _other_data(frame: pl.DataFrame) -> pl.DataFrame:
    """Other data for the same task: other series names and values."""
    return frame.with_columns(id=pl.col("id") + "_other", y=pl.col("y") * 2 + 1)


def test_tune_on_other_data_gets_a_default_study_of_its_own(monkeypatch, tmp_path, frame):
    """Before: the default name covered the task and space only, so tune on other data
    resumed the first data's study, ran 0 trials and returned its best value, quietly."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = quick(frame=frame, storage="default")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "The study .*", ForecasterWarning)
        other = quick(frame=_other_data(frame), storage="default")
    assert other.study_name != first.study_name
    assert (other.n_trials_run, other.n_trials_finished) == (2, 2)
    record = json.loads(other.study.user_attrs["forecaster.data"])
    assert (record["rows"], record["series"]) == (320, 2)
    again = quick(frame=frame, storage="default")  # the first data's study again
    assert (again.study_name, again.n_trials_run) == (first.study_name, 0)


def test_a_named_study_resumed_on_other_data_warns(tmp_path, frame):
    url = f"sqlite:///{tmp_path}/optuna.db"
    quick(frame=frame, storage=url, study_name="s", n_trials=1)
    with pytest.warns(ForecasterWarning, match="was created on other data") as caught:
        resumed = quick(frame=_other_data(frame), storage=url, study_name="s", n_trials=2)
    assert resumed.n_trials_run == 1  # resumed, as a study with other fixed parameters is
    message = next(str(w.message) for w in caught if "other data" in str(w.message))
    assert "(320 rows, 2 series from 0 to 159, hash " in message
    assert "Its finished 1 trial and its best value were measured on that data" in message
    assert "leave study_name out" in message and "optuna.delete_study(study_name='s'" in message
    with warnings.catch_warnings():  # the data it was created on: no warning
        warnings.filterwarnings("error", "The study .*", ForecasterWarning)
        quick(frame=frame.sample(fraction=1.0, shuffle=True, seed=1), storage=url, study_name="s")


def test_the_same_data_read_another_way_is_the_studys_data(tmp_path, frame):
    """Before: the record hashed the frame's columns in their order and datetimes in their
    unit, so a rerun on the same rows from a rewritten source (its columns in another order,
    a pandas or Parquet Datetime("ns") for a CSV's "us") warned of "other data"."""
    from forecaster.tuning.identity import study_data

    model = tiny_model()
    steps = pl.datetime_range(dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2), "1h", eager=True)
    timed = frame.filter(pl.col("time") < len(steps)).with_columns(
        time=pl.col("time").map_elements(lambda i: steps[i], return_dtype=pl.Datetime("us"))
    )
    recorded = study_data(model, timed)["hash"]
    for unit in ("ns", "ms"):
        assert (
            study_data(model, timed.with_columns(pl.col("time").dt.cast_time_unit(unit)))["hash"]
            == recorded
        )
    assert study_data(model, timed.select(reversed(timed.columns)).lazy())["hash"] == recorded
    assert study_data(model, timed.with_columns(y=pl.col("y") + 1))["hash"] != recorded
    url = f"sqlite:///{tmp_path}/optuna.db"
    quick(frame=frame, storage=url, study_name="s", n_trials=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "The study .*", ForecasterWarning)
        again = quick(frame=frame.select(reversed(frame.columns)), storage=url, study_name="s")
    assert again.n_trials_run == 1


def test_a_study_recorded_before_its_data_resumes_with_a_note_and_records_it(tmp_path, frame):
    url = f"sqlite:///{tmp_path}/optuna.db"
    quick(frame=frame, storage=url, study_name="old", n_trials=1)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:  # a study of an earlier version: no record
        connection.execute(
            sqlalchemy.text("DELETE FROM study_user_attributes WHERE key = 'forecaster.data'")
        )
    engine.dispose()
    assert "forecaster.data" not in optuna.load_study(study_name="old", storage=url).user_attrs
    with pytest.warns(ForecasterWarning, match="which did not record its data: its finished 1"):
        resumed = quick(frame=frame, storage=url, study_name="old", n_trials=2)
    assert resumed.n_trials_run == 1
    assert "forecaster.data" in resumed.study.user_attrs
    with pytest.warns(ForecasterWarning, match="was created on other data"):
        quick(frame=_other_data(frame), storage=url, study_name="old", n_trials=2)


def test_a_trial_started_past_n_trials_by_a_racing_process_ends_before_it_runs(
    monkeypatch, tmp_path, frame
):
    """Two processes that read the study's counts at the same moment both started a trial:
    6 finished for n_trials=5 (the forced-timing repro). Here the other process starts and
    finishes its trial right after this process's count, which is then out of date."""
    import forecaster.tuning.trials as trials_module

    url = f"sqlite:///{tmp_path}/optuna.db"
    real_counts, raced = trials_module.trial_counts, []

    def counts_then_race(study, ignore=()):
        counts = real_counts(study, ignore)
        if counts == (1, 0) and not raced:  # the check before the last trial wanted
            other = optuna.load_study(study_name="race", storage=url)  # another process
            other.tell(other.ask(), 1e9)
            raced.append(True)
        return counts  # read before the other process's trial

    monkeypatch.setattr(trials_module, "trial_counts", counts_then_race)
    ran = []
    register = lambda study, trial: ran.append(trial.number)  # noqa: E731
    result = quick(frame=frame, storage=url, study_name="race", n_trials=2, callbacks=[register])
    assert raced and result.n_trials_finished == 2  # before: 3
    states = {t.number: t.state for t in result.study.trials}
    assert states == {0: COMPLETE, 1: COMPLETE, 2: FAIL}
    surplus = result.study.trials[2]
    assert surplus.user_attrs["surplus"] == 2 and "params" not in surplus.user_attrs  # not run
    assert surplus.user_attrs["error"].startswith("not run: the study had 2 finished, running")
    assert ran == [0, 2]


def test_the_refit_repeats_the_best_trial_when_nothing_seeds_it(frame):
    """Before: without a seed in the template or in tune, each trial's fit drew its own, and
    the refit drew another: best_estimator was not the best trial's model again."""
    model = tiny_model(random_state=None)
    result = quick(model, frame, random_state=None, refit=True, n_trials=2)
    best = result.study.best_trial
    assert isinstance(best.user_attrs["seed"], int)
    assert result.best_estimator.random_state == best.user_attrs["seed"]
    assert result.best_estimator.val_loss_ == pytest.approx(result.best_value, rel=1e-6)
    assert model.random_state is None  # the template is left as it was
    seeded = quick(tiny_model(random_state=3), frame, random_state=None, n_trials=1)
    assert "seed" not in seeded.study.best_trial.user_attrs  # a seeded fit draws none


def test_the_default_storage_beside_a_relative_tracking_uri_of_the_users_is_relative_too(
    tmp_path, monkeypatch
):
    """In a working directory whose path holds '%', with the user's relative
    ``MLFLOW_TRACKING_URI=sqlite:///mlflow.db``, the default study storage was refused
    although the user had chosen where the stores go: it is ``sqlite:///optuna.db``, beside
    that store as MLflow reads it. Without the user's URI such a folder is still refused."""
    from forecaster.exceptions import ForecasterError
    from forecaster.tuning.storage import default_storage_url

    folder = tmp_path / "a%20b"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    assert default_storage_url(folder) == "sqlite:///optuna.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(ForecasterError, match="'%20' reads as a space"):
        default_storage_url(folder)

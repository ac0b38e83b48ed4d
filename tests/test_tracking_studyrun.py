"""The study's run when several processes tune one study (``forecaster.tracking.studyrun``):
one parent run per study, and one best model per best trial, on a local store of the test's
own. The races are forced, not timed: a search that misses the run another process created
meanwhile, a process whose best trial another one has overtaken."""

from __future__ import annotations

import datetime as dt
import logging
import time
import warnings

import polars as pl
import pytest
from conftest import forget_mlflow_state, reset_mlflow_state, sine_panel

from forecaster import RNNForecaster, tracking
from forecaster.exceptions import BaselineWarning, DataValidationError, ForecasterWarning

optuna = pytest.importorskip("optuna")
mlflow = pytest.importorskip("mlflow")


@pytest.fixture(params=["sqlite", "file"])
def store(request, tmp_path, monkeypatch):
    """A fresh tracking store of the test's own: a SQLite database or a file store."""
    reset_mlflow_state(monkeypatch, tmp_path)
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    else:  # in maintenance mode in MLflow 3: refused unless allowed
        monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # MLflow's file store is deprecated
        warnings.simplefilter("ignore", BaselineWarning)  # a tiny model: not tested here
        yield uri
    forget_mlflow_state()


def make_model(**overrides) -> RNNForecaster:
    params = dict(
        target="y", id_col="id", time_col="date", lookback=12, horizon=3, hidden_size=4,
        max_epochs=1, windows_per_epoch=32, batch_size=32, random_state=0, progress=False,
        baseline="none",
    )  # fmt: skip
    return RNNForecaster(**{**params, **overrides})


def study_of(values: list[float]):
    """An in-memory study whose complete trials have ``values``."""
    study = optuna.create_study(study_name="shared", direction="minimize")
    dist = {"hidden_size": optuna.distributions.IntDistribution(2, 8)}
    for i, value in enumerate(values):
        params = {"hidden_size": 2 + i}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dist, value=value))
    return study


def study_runs(run_id: str, view: str = "ACTIVE_ONLY") -> list:
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    key = run.data.tags["forecaster.study_key"]
    return client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`forecaster.study_key` = '{key}'",
        run_view_type=getattr(mlflow.entities.ViewType, view),
    )


def test_processes_starting_one_study_at_once_share_the_earliest_study_run(store, monkeypatch):
    """Two processes started one new tracked study at once: each searched for the study's run,
    found none (neither was created yet), and created one, so the study had two parent runs
    with one key; the first stayed RUNNING with its own trial runs. Now a process creates,
    searches again, and the earliest run is the study's: the later one is deleted unused."""
    frame, study = sine_panel(2, 80), study_of([1.0])
    first = tracking.log_study(study, make_model(), frame)  # another process's, just before
    time.sleep(0.01)  # a later start time
    real, missed = mlflow.MlflowClient.search_runs, []

    def search_missing_the_other(self, *args, **kwargs):  # searched before it was visible
        where = kwargs.get("filter_string") or (args[1] if len(args) > 1 else "")
        if "forecaster.study_key" in where and not missed:
            missed.append(where)
            return []
        return real(self, *args, **kwargs)

    monkeypatch.setattr(mlflow.MlflowClient, "search_runs", search_missing_the_other)
    second = tracking.log_study(study, make_model(), frame)
    monkeypatch.setattr(mlflow.MlflowClient, "search_runs", real)
    assert missed, "the forced miss did not happen"
    assert second == first
    assert [r.info.run_id for r in study_runs(first)] == [first]
    deleted = [r.info.run_id for r in study_runs(first, "DELETED_ONLY")]
    assert len(deleted) == 1 and deleted[0] != first  # the loser's own, never used


def logged_models(run) -> list:
    return mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}'",
        output_format="list",
    )


def test_processes_ending_with_one_best_log_its_model_once(store):
    """Three processes ended one study and each logged its summary and refitted best model on
    the study's run: three models on one run. Now the model of a best trial is logged once,
    by the first process that claims it; the run's best tags name that trial."""
    frame, study = sine_panel(2, 80), study_of([1.0, 0.5])
    best = make_model().fit(frame)
    parent = tracking.log_study(study, make_model(), frame)
    for _ in range(3):  # three processes, each with the study's best as it logs
        with warnings.catch_warnings():
            warnings.simplefilter("error", ForecasterWarning)
            assert tracking.log_study(study, make_model(), frame, best_estimator=best) == parent
    run = mlflow.MlflowClient().get_run(parent)
    assert len(logged_models(run)) == 1
    assert run.data.tags["best.trial_number"] == run.data.tags["forecaster.best_model_trial"]
    assert run.data.tags["best.trial_number"] == "1"
    assert run.data.metrics["best_value"] == 0.5
    claims = [k for k in run.data.params if k.startswith("forecaster.model_claim.")]
    assert claims == ["forecaster.model_claim.1"]


def test_a_process_whose_best_was_overtaken_logs_no_best(store):
    """A process refitted its best trial while another process's trial beat it: its summary
    and model landed beside the better trial's (best_value of one trial beside another
    refit's val_loss). Now it logs no best (a warning names the better trial) and the run
    keeps the better trial's best, whichever process logs last."""
    frame, study = sine_panel(2, 80), study_of([1.0, 0.5])
    best = make_model().fit(frame)
    parent = tracking.log_study(study, make_model(), frame, best_estimator=best, best_trial=1)
    with pytest.warns(ForecasterWarning, match="found trial 1"):  # refitted trial 0, overtaken
        assert tracking.log_study(study, make_model(), frame, best_estimator=best, best_trial=0)
    run = mlflow.MlflowClient().get_run(parent)
    assert len(logged_models(run)) == 1
    assert run.data.tags["forecaster.best_model_trial"] == run.data.tags["best.trial_number"]
    assert run.data.tags["best.trial_number"] == "1"
    assert run.data.metrics["best_value"] == 0.5


def test_log_study_refuses_a_best_trial_it_cannot_use(store):
    """best_trial names the complete trial best_estimator was refitted from: anything else
    is refused before anything is logged."""
    frame, study = sine_panel(2, 80), study_of([1.0])
    best = make_model().fit(frame)
    with pytest.raises(DataValidationError, match="no best_estimator was given"):
        tracking.log_study(study, make_model(), frame, best_trial=0)
    for wrong in (5, True, "0"):
        with pytest.raises(DataValidationError, match="complete trial of the study"):
            tracking.log_study(study, make_model(), frame, best_estimator=best, best_trial=wrong)
    assert mlflow.MlflowClient().search_experiments(filter_string="name = 'forecaster'") == []


def test_a_retried_log_study_logs_the_model_its_failed_upload_lost(store, monkeypatch):
    """A call claimed the model of its best trial, then the model's upload failed (kept
    locally, with a warning); a retry found the claim taken and logged nothing, silently. Now
    the failed claim is marked on the run and the retry claims the model again and logs it."""
    import forecaster.tracking.fitlog as fitlog

    frame, study = sine_panel(2, 80), study_of([1.0])
    best = make_model().fit(frame)

    def store_down(*args, **kwargs):
        raise OSError("artifact store down")

    with monkeypatch.context() as patch:
        patch.setattr(fitlog, "log_model", store_down)
        with pytest.warns(ForecasterWarning, match="artifact store down"):
            parent = tracking.log_study(study, make_model(), frame, best_estimator=best)
    run = mlflow.MlflowClient().get_run(parent)
    assert logged_models(run) == [] and "forecaster.best_model_trial" not in run.data.tags
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        assert tracking.log_study(study, make_model(), frame, best_estimator=best) == parent
    run = mlflow.MlflowClient().get_run(parent)
    assert len(logged_models(run)) == 1
    assert run.data.tags["forecaster.best_model_trial"] == "0"
    with warnings.catch_warnings():  # logged now: a third call logs no second model
        warnings.simplefilter("error", ForecasterWarning)
        tracking.log_study(study, make_model(), frame, best_estimator=best)
    assert len(logged_models(mlflow.MlflowClient().get_run(parent))) == 1


def test_a_model_claimed_by_a_call_that_never_logged_it_is_warned_about(store):
    """Another call claimed the model and never recorded it as logged (killed mid-upload):
    this call's model was dropped without a word. Now a warning says it was not logged,
    why, and how to log it."""
    frame, study = sine_panel(2, 80), study_of([1.0])
    best = make_model().fit(frame)
    parent = tracking.log_study(study, make_model(), frame)
    mlflow.MlflowClient().log_param(parent, "forecaster.model_claim.0", "0123456789abcdef")
    with pytest.warns(ForecasterWarning, match=r"trial 0 was not logged.*log_fit\(best_estimator"):
        assert tracking.log_study(study, make_model(), frame, best_estimator=best) == parent
    assert logged_models(mlflow.MlflowClient().get_run(parent)) == []


def test_log_study_takes_a_numpy_integer_trial_number(store):
    """best_trial read from a trials frame is a numpy integer: it was refused as "not the
    number of a complete trial" while naming that very trial (the table's integer rules take
    numpy integers everywhere else)."""
    import numpy as np

    frame, study = sine_panel(2, 80), study_of([1.0, 0.5])
    best = make_model().fit(frame)
    parent = tracking.log_study(
        study, make_model(), frame, best_estimator=best, best_trial=np.int64(1)
    )
    run = mlflow.MlflowClient().get_run(parent)
    assert run.data.tags["forecaster.best_model_trial"] == "1"
    assert len(logged_models(run)) == 1


def _earlier_ends(run) -> dict[str, str]:
    return {k: v for k, v in run.data.tags.items() if k.startswith("forecaster.earlier_end.")}


def _utc(end_time: int) -> str:
    ended = dt.datetime.fromtimestamp(end_time / 1000, dt.UTC)
    return ended.strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"  # no colon (Windows)


def test_a_resumed_study_opens_its_run_again_and_keeps_each_earlier_failure(store):
    """The first log_study of a resumed study (tune's, before its trials) ended its run
    FINISHED as soon as the study had a finished trial: a KILLED or FAILED run was FINISHED
    again before the resumed trials ran, and nothing showed it had failed. status="RUNNING"
    opens it again, as MLflow resumes a run; each FAILED or KILLED end it changes stays as a
    tag named by its end time; a FINISHED end leaves none."""
    frame, study = sine_panel(2, 80), study_of([1.0])
    client = mlflow.MlflowClient()
    parent = tracking.log_study(study, make_model(), frame, status="KILLED")
    ends = {}
    for status in ("FAILED", "FINISHED", "KILLED"):  # a session per status, each resumed
        before = client.get_run(parent).info
        if before.status != "FINISHED":
            ends[f"forecaster.earlier_end.{_utc(before.end_time)}"] = before.status
        assert tracking.log_study(study, make_model(), frame, status="RUNNING") == parent
        run = client.get_run(parent)
        assert run.info.status == "RUNNING" and _earlier_ends(run) == ends
        time.sleep(0.002)  # end times a millisecond apart, at least
        tracking.log_study(study, make_model(), frame, status=status)
        assert client.get_run(parent).info.status == status
    assert tracking.log_study(study, make_model(), frame) == parent  # default: FINISHED
    run = client.get_run(parent)
    assert run.info.status == "FINISHED" and len(_earlier_ends(run)) == 3


def test_log_study_refuses_a_status_it_cannot_give(store):
    frame, study = sine_panel(2, 80), study_of([1.0])
    for wrong in ("DONE", "finished", 1):
        with pytest.raises(DataValidationError, match=r"status must be one of \['RUNNING'"):
            tracking.log_study(study, make_model(), frame, status=wrong)
    best = make_model().fit(frame)
    with pytest.raises(DataValidationError, match="opens the study's run for a session"):
        tracking.log_study(study, make_model(), frame, best_estimator=best, status="RUNNING")
    assert mlflow.MlflowClient().search_experiments(filter_string="name = 'forecaster'") == []


@pytest.mark.parametrize("status", ["RUNNING", None])
def test_a_log_study_interrupted_once_it_found_its_run_ends_the_run_killed(
    store, monkeypatch, status
):
    """A Ctrl-C while log_study logged the summary (tune's first call, which opens the run,
    or a call that ends it) left the study's run RUNNING for good: tune did not have its ID
    yet to end it. It ends KILLED, as MLflow ends an interrupted ``start_run`` block."""
    import forecaster.tracking.optuna as study_logging

    frame, study = sine_panel(2, 80), study_of([1.0])
    parent = tracking.log_study(study, make_model(), frame)  # a resumed study's FINISHED run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(study_logging, "log_metrics", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tracking.log_study(study, make_model(), frame, status=status)
    assert mlflow.MlflowClient().get_run(parent).info.status == "KILLED"


def test_a_resumed_studys_earlier_end_is_a_tag_name_mlflow_takes_on_windows(store, monkeypatch):
    """The tag of an earlier end was named by its ISO time (``...T07:47:30.573Z``): MLflow
    refuses a colon in a tag's name on Windows, so there a resumed study's KILLED run was
    never opened again (its trials logged into a KILLED run) and each call warned."""
    import mlflow.utils.validation as validation

    monkeypatch.setattr(validation, "is_windows", lambda: True)  # MLflow's rules on Windows
    frame, study = sine_panel(2, 80), study_of([1.0])
    parent = tracking.log_study(study, make_model(), frame, status="KILLED")
    ended = mlflow.MlflowClient().get_run(parent).info.end_time
    with warnings.catch_warnings():
        warnings.simplefilter("error", ForecasterWarning)
        tracking.log_study(study, make_model(), frame, status="RUNNING")
    run = mlflow.MlflowClient().get_run(parent)
    assert run.info.status == "RUNNING"
    assert _earlier_ends(run) == {f"forecaster.earlier_end.{_utc(ended)}": "KILLED"}


def _all_study_runs(study) -> list:
    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(experiments, filter_string="tags.`forecaster.kind` = 'study'")
    return [r for r in found if r.data.tags.get("forecaster.study") == study.study_name]


@pytest.mark.parametrize("where", ["second search", "after the search"])
def test_a_new_study_run_interrupted_before_log_study_knew_it_ends_killed(
    store, monkeypatch, where
):
    """A Ctrl-C after the write that created a new study's run returned and before the call
    kept its ID (in the search for an earlier run of the study that follows the creation, or
    as the run's ID was handed back) left the run RUNNING for good: nothing knew it. The
    call keeps the ID as the creating write returns, and ends the run KILLED."""
    import forecaster.tracking.studyrun as studyrun

    frame, study = sine_panel(2, 80), study_of([1.0])
    real_search, real_run, searches = studyrun._earliest_run, studyrun._study_run, []

    def search(*args, **kwargs):
        searches.append(args)
        if where == "second search" and len(searches) == 2:
            raise KeyboardInterrupt
        return real_search(*args, **kwargs)

    def study_run(*args, **kwargs):  # the interrupt lands as _study_run returns
        found = real_run(*args, **kwargs)
        raise KeyboardInterrupt(found)

    monkeypatch.setattr(studyrun, "_earliest_run", search)
    if where == "after the search":
        monkeypatch.setattr(studyrun, "_study_run", study_run)
    with pytest.raises(KeyboardInterrupt):
        tracking.log_study(study, make_model(), frame, status="RUNNING")
    assert [r.info.status for r in _all_study_runs(study)] == ["KILLED"]


def test_a_new_study_run_whose_second_search_failed_is_kept_for_the_process_using_it(
    store, monkeypatch
):
    """The search after a new study's run was created failed (the store went away). The run
    was deleted as "holding nothing": but it was the study's earliest run, which another
    process had found meanwhile and logged its trials into; they were deleted with it. The
    run is kept: the other process's records stay, and the next call finds and uses it."""
    import forecaster.tracking.studyrun as studyrun

    frame, study = sine_panel(2, 80), study_of([1.0])
    real_search, searches, other = studyrun._earliest_run, [], []

    def search(*args, **kwargs):
        searches.append(args)
        if len(searches) == 2:  # another process starts the study, then our search fails
            monkeypatch.setattr(studyrun, "_earliest_run", real_search)
            other.append(tracking.log_study(study, make_model(), frame, status="RUNNING"))
            raise mlflow.exceptions.MlflowException("the store went away")
        return real_search(*args, **kwargs)

    monkeypatch.setattr(studyrun, "_earliest_run", search)
    with pytest.warns(ForecasterWarning, match="store went away"):
        assert tracking.log_study(study, make_model(), frame, status="RUNNING") is None
    runs = _all_study_runs(study)
    assert [r.info.run_id for r in runs] == other  # active: not deleted
    client = mlflow.MlflowClient()
    children = client.search_runs(
        [runs[0].info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{other[0]}'"
    )
    assert [r.data.tags["optuna.trial_number"] for r in children] == ["0"]  # its trial's run
    assert tracking.log_study(study, make_model(), frame) == other[0]
    assert client.get_run(other[0]).info.status == "FINISHED"


@pytest.mark.parametrize("error", [KeyboardInterrupt(), OSError("disk full")])
def test_a_trial_run_cut_off_after_its_creation_is_logged_whole_by_the_next_log_study(
    store, monkeypatch, error
):
    """A Ctrl-C (or a failed write) after a trial's run was created and before it ended
    left it RUNNING for good, half logged; ended KILLED (FAILED) instead, it still counted as
    the trial's run, and the next log_study never logged the trial's value: a COMPLETE trial
    showed KILLED without its value for good. The half-logged run is deleted, and the next
    log_study logs the trial whole (the trial itself had ended: Optuna calls its callbacks
    once the trial's state is stored)."""
    import forecaster.tracking.trialruns as trialruns

    frame, study = sine_panel(2, 80), study_of([])
    parent = tracking.log_study(study, make_model(), frame, status="RUNNING")
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=1.0))
    real_log_metrics = trialruns.log_metrics

    def cut_off(*args, **kwargs):
        raise error

    monkeypatch.setattr(trialruns, "log_metrics", cut_off)
    callback = tracking.trial_callback(parent)
    if isinstance(error, KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):
            callback(study, study.trials[0])
    else:
        with pytest.warns(ForecasterWarning, match="disk full"):
            callback(study, study.trials[0])
    client = mlflow.MlflowClient()

    def trial_runs() -> list:
        return client.search_runs(
            [client.get_run(parent).info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent}'",
        )

    assert trial_runs() == []  # not left RUNNING, nor counted as logged
    assert study.trials[0].state.name == "COMPLETE"
    monkeypatch.setattr(trialruns, "log_metrics", real_log_metrics)
    tracking.log_study(study, make_model(), frame)
    assert [(r.info.status, r.data.metrics.get("value")) for r in trial_runs()] == [
        ("FINISHED", 1.0)
    ]


@pytest.mark.parametrize(
    "where",
    [
        "elsewhere",
        "here",
        "elsewhere, in the final call",
        "elsewhere, in a storage without heartbeat",
    ],
)
def test_a_ctrl_c_of_one_machine_leaves_the_study_run_running_while_others_tune_it(
    store, monkeypatch, where
):
    """A Ctrl-C of one process tuning a study ended the study's run KILLED while other
    machines still ran its trials (and then logged them into a KILLED run): the last writer
    set the status. The run shows the study: it stays RUNNING while trials run on other
    machines (reopened, its end kept as a tag, when the interrupted final log_study had
    ended it), with a tag naming the stopped process; the last process ends it. Trials of
    this machine do not count: a Ctrl-C stops its processes together. Nor do those of a
    storage without heartbeat, which cannot tell a dead process's trial (RUNNING for good
    there) from a live one: counted, the study's run stayed RUNNING for good."""
    import socket

    import forecaster.tracking.optuna as study_logging
    from forecaster.tuning.study_log import StudyLogger

    frame, study = sine_panel(2, 80), study_of([1.0])
    heartbeat = not where.endswith("without heartbeat")  # as the storage records them or not
    logger = StudyLogger(True, study, make_model(), frame, "in-memory", heartbeat=heartbeat)
    logger.start()
    running = study.ask()  # a trial running in another process
    elsewhere = where.startswith("elsewhere") and heartbeat
    running.set_user_attr("host", "another-machine" if elsewhere else socket.gethostname())
    if where.endswith("final call"):

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(study_logging, "log_metrics", interrupted)
        with pytest.raises(KeyboardInterrupt):
            logger.finish()
    else:
        logger.finish_stopped(KeyboardInterrupt())
    run = mlflow.MlflowClient().get_run(logger.run_id)
    stopped = {k: v for k, v in run.data.tags.items() if k.startswith("forecaster.stopped.")}
    if not elsewhere:
        assert (run.info.status, stopped) == ("KILLED", {})
        return
    assert run.info.status == "RUNNING"
    assert [v.split("; ")[1] for v in stopped.values()] == ["trials 1 still ran elsewhere"]
    assert len(_earlier_ends(run)) == (1 if where.endswith("final call") else 0)


def test_a_stopped_process_never_reopens_a_study_run_another_process_finished(store):
    """A process stopped by Ctrl-C read the trials of another machine as running; that
    process finished them and ended the study's run FINISHED just before this one read the
    run's status: the stopped process reopened the FINISHED run (as it reopens a run its own
    final log_study ended KILLED), and nothing would ever end it again. A run another
    process ended is left as it is, with the tag naming the stopped process."""
    from forecaster.tracking.studyrun import end_study_run

    frame, study = sine_panel(2, 80), study_of([1.0])
    run_id = tracking.log_study(study, make_model(), frame)  # the other process's final call
    end_study_run(run_id, "KILLED", [3])
    run = mlflow.MlflowClient().get_run(run_id)
    stopped = [k for k in run.data.tags if k.startswith("forecaster.stopped.")]
    assert (run.info.status, len(stopped), _earlier_ends(run)) == ("FINISHED", 1, {})


def test_log_study_without_a_frame_logs_all_but_the_dataset_fingerprint(store, caplog):
    """A study made by ``forecaster tune``: the user never held its frame, which log_study
    required for the fingerprint alone. Without it, the study is logged (params, trials,
    best value and params) but no data.* tags or dataset.json, and an INFO record says so;
    a best model still needs its frame."""
    frame, study = sine_panel(2, 80), study_of([1.0, 0.5])
    with caplog.at_level(logging.INFO, logger="forecaster.tracking.optuna"):
        parent = tracking.log_study(study, make_model())
    assert parent is not None
    assert "dataset fingerprint (tags data.*" in caplog.text
    run = mlflow.MlflowClient().get_run(parent)
    assert run.info.status == "FINISHED" and run.data.params["study_name"] == "shared"
    assert run.data.metrics["n_complete"] == 2 and run.data.tags["best.hidden_size"] == "3"
    assert not [k for k in (*run.data.tags, *run.data.params) if k.startswith("data.")]
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(parent)}
    assert "dataset.json" not in logged and "best_params.json" in logged
    best = make_model().fit(frame)
    with pytest.raises(DataValidationError, match="needs frame, the data the best model"):
        tracking.log_study(study, make_model(), best_estimator=best)


def test_a_study_fingerprint_covers_the_covariates_its_space_chose(store):
    """A study whose space chooses the covariates (the template names none): its
    fingerprint was of the template's columns only (id, date, y), so the covariate its best
    model reads was in no data.hash, and a change in it went unrecorded (a resumed study on
    the changed data logged no new data version). A study's fingerprint is of the whole
    tuning frame, a DataFrame's and a LazyFrame's alike."""
    frame, study = sine_panel(2, 80), study_of([1.0, 0.5])
    frame = frame.with_columns((pl.col("y") * 2).alias("x"))  # covariates=["x"] in a trial
    parent = tracking.log_study(study, make_model(), frame)
    client = mlflow.MlflowClient()
    params = client.get_run(parent).data.params
    assert params["data.0.columns"] == "id,date,y,x", params
    tracking.log_study(study, make_model(), frame.with_columns(pl.col("x") + 1).lazy())
    params = client.get_run(parent).data.params
    assert params["data.1.hash"] != params["data.0.hash"]  # the covariate changed: recorded


def test_a_study_resumed_on_its_categorical_data_logs_no_new_data_version(store):
    """A study logged with a Categorical id before fingerprints hashed an id as its text
    (data.0.hash the legacy hash), resumed on the same data: it logged data.1.* as if the
    data had changed. The earlier version's hash is recognised (the fingerprint's
    legacy_hash); other data add a version. (The same data with a String id cannot know the
    Categorical id's legacy hash: it adds one version, which a Categorical id then matches.)"""
    from forecaster.tracking.fingerprint import dataset_fingerprint
    from forecaster.tracking.studyrun import log_data_version

    frame, study = sine_panel(2, 80), study_of([1.0])
    categorical = frame.with_columns(pl.col("id").cast(pl.Categorical))
    run_id = tracking.log_study(study, make_model())  # no frame: no data version yet
    fp = dataset_fingerprint(categorical, id_col="id", time_col="date")
    client = mlflow.MlflowClient()
    log_data_version(client, run_id, {**fp, "hash": fp["legacy_hash"]})  # an earlier version
    log_data_version(client, run_id, fp)
    params = client.get_run(run_id).data.params
    assert sorted(k for k in params if k.endswith(".hash")) == ["data.0.hash"], params
    changed = frame.with_columns(pl.col("y") + 1)
    log_data_version(client, run_id, dataset_fingerprint(changed, id_col="id", time_col="date"))
    as_enum = changed.with_columns(pl.col("id").cast(pl.Enum(["s1", "s0"])))
    log_data_version(client, run_id, dataset_fingerprint(as_enum, id_col="id", time_col="date"))
    params = client.get_run(run_id).data.params
    assert sorted(k for k in params if k.endswith(".hash")) == ["data.0.hash", "data.1.hash"]


def test_a_trial_ended_before_it_ran_is_no_failed_trial_run(store):
    """A trial past n_trials that a racing process started ends FAIL before it runs (user
    attribute ``surplus``, tuning.quota). Before: log_study gave it a FAILED child run and
    counted it in the study run's ``n_fail``, as if a fit had failed."""
    frame, study = sine_panel(2, 80), study_of([1.0, 2.0])
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL, user_attrs={"surplus": 2, "error": "not run"}
        )
    )
    failed = optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL)
    study.add_trial(failed)  # a trial that did fail
    parent = tracking.log_study(study, make_model(), frame)
    client = mlflow.MlflowClient()
    children = client.search_runs(
        [client.get_run(parent).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent}'",
    )
    assert sorted(int(r.data.tags["optuna.trial_number"]) for r in children) == [0, 1, 3]
    metrics = client.get_run(parent).data.metrics
    assert (metrics["n_fail"], metrics["n_not_run"], metrics["n_complete"]) == (1, 1, 2)

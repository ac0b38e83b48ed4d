"""Progress of training and tuning (forecaster.training.progress): a tqdm bar in a terminal
or a notebook, one log line per epoch or trial anywhere else (log files, schedulers,
captured output), never a carriage-return flood."""

from __future__ import annotations

import logging
import sys
import types

import optuna
import pytest
import torch

from forecaster.nn import RecurrentNet
from forecaster.training.loop import train
from forecaster.training.progress import ProgressBar, progress_enabled, progress_style
from forecaster.training.records import EpochRecord
from forecaster.tuning.trials import run_trials

LOGGER = "forecaster.training.progress"


def tiny_train(max_epochs: int, progress_flag: bool | None) -> list[EpochRecord]:
    torch.manual_seed(0)
    net = RecurrentNet(n_features=1, n_targets=1, lookback=8, horizon=2, hidden_size=4)
    x, y = torch.randn(16, 8, 1), torch.randn(16, 2, 1)
    return train(
        net, lambda epoch: [(x, None, y)], max_epochs=max_epochs, progress=progress_flag,
        description="tiny",
    )  # fmt: skip


def progress_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_captured_output_gets_one_log_line_per_epoch_and_no_carriage_return(caplog, capfd):
    """progress=True (what the command line passes) where standard error is no terminal:
    one INFO line per epoch, nothing written to the streams by tqdm."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    history = tiny_train(3, True)
    lines = progress_lines(caplog)
    assert len(lines) == len(history) == 3
    assert [line.split(",")[0] for line in lines] == [
        "tiny: epoch 1/3",
        "tiny: epoch 2/3",
        "tiny: epoch 3/3",
    ]
    assert all("train " in line and "windows/s" in line for line in lines)
    captured = capfd.readouterr()
    assert "\r" not in captured.err + captured.out
    assert "%|" not in captured.err  # no tqdm bar


def test_auto_progress_in_captured_output_is_silent(caplog, capfd):
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert progress_enabled(None) is False and progress_style() == "log"
    tiny_train(2, None)
    assert progress_lines(caplog) == []
    assert capfd.readouterr().err == ""


def test_a_terminal_gets_a_tqdm_bar(monkeypatch, caplog, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert progress_style() == "bar" and progress_enabled(None) is True
    bar = ProgressBar(total=2, initial=0, description="tiny", enabled=True)
    bar.update(EpochRecord(1, 0.5, 0.4, 1e-3, 1.0, 10.0))
    bar.close()
    err = capsys.readouterr().err
    assert "tiny" in err and "val=0.4000" in err  # the bar, with the losses
    assert progress_lines(caplog) == []


def test_a_notebook_kernel_gets_the_bar(monkeypatch):
    """In a notebook kernel (IPython with an IPKernelApp) progress is a bar even though
    standard error is no terminal: tqdm.auto draws the notebook widget when ipywidgets is
    installed."""
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    assert progress_style() == "bar" and progress_enabled(None) is True
    shell.config = {}  # a plain IPython shell in a pipe: not a notebook
    assert progress_style() == "log"


def test_disabled_progress_does_nothing(caplog, capsys):
    caplog.set_level(logging.INFO, logger=LOGGER)
    bar = ProgressBar(total=2, initial=0, description="off", enabled=False, style="log")
    bar.update(EpochRecord(1, 0.5, None, 1e-3, 1.0, 10.0))
    bar.set_count(2)
    bar.close()
    assert progress_lines(caplog) == [] and capsys.readouterr() == ("", "")


def test_tuning_logs_one_line_per_finished_trial(caplog):
    """The study's progress in a log: one line per finished trial with the best value so far
    (run_trials, the trial loop of tune)."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    bar = ProgressBar(
        total=3, initial=0, description="study", enabled=True, unit="trial", style="log"
    )
    run_trials(study, lambda trial: trial.suggest_float("x", 0.0, 1.0), 3, None, [], bar)
    lines = progress_lines(caplog)
    assert [line.split(",")[0] for line in lines] == [
        "study: trial 1/3",
        "study: trial 2/3",
        "study: trial 3/3",
    ]
    assert lines[-1].endswith(f"best {study.best_value:.4g}")

"""The peers' side of ``bench_peers.py``: neuralforecast and darts fits on the two workloads.

Imported only in the children of ``bench_peers.py`` that run a peer, so the main environment
(which has neither library) never imports it. Each function returns the same keys as
forecaster's row of the same workload.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

M4_INPUT = 192  # the peers' input size: 4 x the horizon (our lookback was 192 until "auto")


class StepTimes:
    """When the timed optimiser steps started and ended, and how many there were.

    One per process, held outside the callback: neuralforecast fits a deep copy of the model
    (and of its trainer options), so a callback object passed in is not the one called.
    """

    started: float | None = None
    ended: float | None = None
    steps = 0
    stopped_by: str | None = None  # "max_steps", "max_epochs" or "max_time"


def step_timer(warmup: int) -> Any:
    """A Lightning callback that times, in :class:`StepTimes`, the optimiser steps after the
    first ``warmup``."""
    import pytorch_lightning as pl_lightning

    class StepTimer(pl_lightning.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if StepTimes.started is None and trainer.global_step >= warmup:
                StepTimes.started = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if StepTimes.started is not None:
                StepTimes.steps += 1
                StepTimes.ended = time.perf_counter()

        def on_train_end(self, trainer, pl_module) -> None:
            max_steps, max_epochs = trainer.max_steps, trainer.max_epochs
            if max_steps not in (None, -1) and trainer.global_step >= max_steps:
                StepTimes.stopped_by = "max_steps"
            elif max_epochs not in (None, -1) and trainer.current_epoch >= max_epochs:
                StepTimes.stopped_by = "max_epochs"
            else:
                StepTimes.stopped_by = "max_time"

    return StepTimer()


def quiet_trainer(**extra: Any) -> dict[str, Any]:
    """Lightning Trainer options shared by every peer: CPU, no progress bar, logger or
    checkpoints (so the timings hold no file writes of their own)."""
    return {
        "accelerator": "cpu",
        "devices": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        "enable_checkpointing": False,
        **extra,
    }


def per_series(frame: pl.DataFrame, id_col: str, time_col: str) -> tuple[list, list[np.ndarray]]:
    """Ids and float32 value arrays of a long frame, series in first-seen order."""
    frame = frame.sort(id_col, time_col, maintain_order=True)
    ids, arrays = [], []
    for (key,), part in frame.group_by(id_col, maintain_order=True):
        ids.append(key)
        arrays.append(part["y"].to_numpy().astype(np.float32))
    return ids, arrays


# --------------------------------------------------------------------------------------------
# training workload
# --------------------------------------------------------------------------------------------


def fit_train_peer(
    method: str, make_frame: Callable[..., pl.DataFrame], config: argparse.Namespace
) -> dict[str, Any]:
    """Fit one peer on the standard training workload for ``warmup + train_steps`` steps."""
    frame = make_frame(config.series, config.steps)
    timer = step_timer(config.warmup)
    max_steps = config.warmup + config.train_steps
    started = time.perf_counter()
    if method == "darts_blockrnn":
        n_windows = fit_train_darts(frame, config, timer, max_steps)
    elif method == "nf_lstm":
        n_windows = fit_train_nf(frame, config, timer, max_steps)
    else:
        raise ValueError(f"unknown training peer {method!r}; expected darts_blockrnn or nf_lstm")
    wall = time.perf_counter() - started
    if StepTimes.started is None or StepTimes.steps == 0:
        raise RuntimeError(
            f"{method} trained fewer than warmup={config.warmup} + 1 steps: nothing was timed"
        )
    seconds = StepTimes.ended - StepTimes.started
    return {
        "windows_per_second": StepTimes.steps * config.batch / seconds,
        "seconds": seconds,
        "timed_steps": StepTimes.steps,
        "fit_wall_seconds": wall,
        "n_windows": n_windows,
    }


def fit_train_darts(frame: pl.DataFrame, config: argparse.Namespace, timer: Any, steps: int) -> int:
    import torch
    from darts import TimeSeries
    from darts.models import BlockRNNModel

    _, arrays = per_series(frame, "id", "time")
    series = [TimeSeries.from_values(a) for a in arrays]
    model = BlockRNNModel(
        model="LSTM",
        input_chunk_length=config.lookback,
        output_chunk_length=config.horizon,
        hidden_dim=config.hidden,
        n_rnn_layers=config.layers,
        dropout=0.0,
        batch_size=config.batch,
        n_epochs=steps,  # max_steps stops it first (an epoch is at least one step)
        loss_fn=torch.nn.MSELoss(),
        optimizer_kwargs={"lr": 1e-3},
        random_state=0,
        pl_trainer_kwargs=quiet_trainer(max_steps=steps, callbacks=[timer]),
    )
    model.fit(series, verbose=False)
    return sum(len(a) - config.lookback - config.horizon + 1 for a in arrays)


def fit_train_nf(frame: pl.DataFrame, config: argparse.Namespace, timer: Any, steps: int) -> int:
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MSE
    from neuralforecast.models import LSTM

    model = LSTM(
        h=config.horizon,
        input_size=config.lookback,
        encoder_n_layers=config.layers,
        encoder_hidden_size=config.hidden,
        decoder_layers=1,
        decoder_hidden_size=config.hidden,
        loss=MSE(),
        scaler_type="identity",
        windows_batch_size=config.batch,
        learning_rate=1e-3,
        max_steps=steps,
        random_seed=0,
        **quiet_trainer(callbacks=[timer]),
    )
    data = frame.rename({"id": "unique_id", "time": "ds"}).to_pandas()
    NeuralForecast(models=[model], freq="h").fit(data)
    return config.series * (config.steps - config.lookback - config.horizon + 1)


# --------------------------------------------------------------------------------------------
# M4 Hourly
# --------------------------------------------------------------------------------------------


def m4_frames(data: Path, quick: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The training and test frames of ``bench_accuracy.run_m4`` with ``t`` as integer hours
    (the peers' time: ``read_m4`` dates them from ``M4_START``; test times continue each
    series' time; ``quick``: its first 40 series)."""
    from bench_accuracy import M4_START, read_m4

    hours = (pl.col("t") - pl.lit(M4_START)).dt.total_hours()
    train = read_m4(data, test=False).with_columns(hours)
    lengths = train.group_by("id").agg(pl.len().alias("n"))
    test = (
        read_m4(data, test=True)
        .with_columns(hours)
        .join(lengths, on="id")
        .with_columns(pl.col("t") + pl.col("n"))
        .drop("n")
    )
    if quick:
        keep = train["id"].unique(maintain_order=True).head(40).implode()
        train, test = train.filter(pl.col("id").is_in(keep)), test.filter(pl.col("id").is_in(keep))
    return train, test


def m4_scores(forecast: pl.DataFrame, train: pl.DataFrame, test: pl.DataFrame) -> dict[str, float]:
    """sMAPE, MASE (m = 24) and OWA, computed as ``bench_accuracy.run_m4`` does."""
    from bench_accuracy import M4_NAIVE2

    from forecaster.evaluation.metrics import aggregate, evaluate, owa_score

    kw = {"target": "y", "time_col": "t", "id_col": "id"}
    scores = evaluate(forecast, test, insample=train, m=24, metrics=["smape", "mase"], **kw)
    total = aggregate(scores)
    smape, mase = float(total["smape"].item()), float(total["mase"].item())
    return {"smape": smape, "mase": mase, "owa": owa_score(smape, mase, *M4_NAIVE2)}


def fit_m4_peer(
    method: str, data: Path, seed: int, quick: bool, budget: float | None
) -> dict[str, Any]:
    """Fit one peer on M4 Hourly within ``budget`` seconds (Lightning ``max_time``), forecast
    48 steps after each training series and score them."""
    from bench_accuracy import M4_HORIZON

    if budget is None:
        raise ValueError("the M4 peers need a time budget (--m4-budget or ours' fit seconds)")
    train, test = m4_frames(data, quick)
    timer = step_timer(0)
    trainer = {"max_time": {"seconds": budget}, "callbacks": [timer]}
    if quick:
        trainer["max_steps"] = 20
    started = time.perf_counter()
    if method.startswith("nf_"):
        predict = fit_m4_nf(method, train, seed, trainer)
    elif method.startswith("darts_"):
        predict = fit_m4_darts(method, train, seed, trainer)
    else:
        raise ValueError(f"unknown M4 peer {method!r}")
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    forecast = predict(M4_HORIZON)
    predict_seconds = time.perf_counter() - started
    return {
        "n_series": int(train["id"].n_unique()),
        **m4_scores(forecast, train, test),
        "fit_seconds": round(fit_seconds, 1),
        "predict_seconds": round(predict_seconds, 1),
        "steps": StepTimes.steps,
        "stopped_by": StepTimes.stopped_by,
        "budget_hit": StepTimes.stopped_by == "max_time",
    }


def fit_m4_nf(
    method: str, train: pl.DataFrame, seed: int, trainer: dict[str, Any]
) -> Callable[[int], pl.DataFrame]:
    from bench_accuracy import M4_HORIZON
    from neuralforecast import NeuralForecast
    from neuralforecast.models import GRU, LSTM, RNN

    cls = {"nf_lstm": LSTM, "nf_gru": GRU, "nf_rnn": RNN}[method]
    model = cls(h=M4_HORIZON, input_size=M4_INPUT, random_seed=seed, **quiet_trainer(**trainer))
    forecaster = NeuralForecast(models=[model], freq=1)
    forecaster.fit(train.rename({"id": "unique_id", "t": "ds"}).to_pandas())

    def predict(horizon: int) -> pl.DataFrame:
        if horizon != M4_HORIZON:
            raise ValueError(f"the model was built for h={M4_HORIZON}, asked for {horizon}")
        out = pl.from_pandas(forecaster.predict())
        return out.select(
            pl.col("unique_id").alias("id"),
            pl.col("ds").cast(pl.Int64).alias("t"),
            pl.col(str(model)).cast(pl.Float64).alias("y"),
        )

    return predict


def fit_m4_darts(
    method: str, train: pl.DataFrame, seed: int, trainer: dict[str, Any]
) -> Callable[[int], pl.DataFrame]:
    from bench_accuracy import M4_HORIZON
    from darts import TimeSeries
    from darts.dataprocessing.transformers import Scaler
    from darts.models import BlockRNNModel, RNNModel

    ids, arrays = per_series(train, "id", "t")
    scaler = Scaler()
    series = scaler.fit_transform([TimeSeries.from_values(a) for a in arrays])
    common = {"input_chunk_length": M4_INPUT, "random_state": seed}
    if method == "darts_blockrnn":
        model = BlockRNNModel(
            model="LSTM",
            output_chunk_length=M4_HORIZON,
            **common,
            pl_trainer_kwargs=quiet_trainer(**trainer),
        )
    else:
        model = RNNModel(
            model="LSTM",
            training_length=M4_INPUT + M4_HORIZON,
            **common,
            pl_trainer_kwargs=quiet_trainer(**trainer),
        )
    model.fit(series, verbose=False)

    def predict(horizon: int) -> pl.DataFrame:
        forecasts = scaler.inverse_transform(model.predict(n=horizon, series=series, verbose=False))
        return pl.DataFrame(
            {
                "id": np.repeat(ids, horizon),
                "t": np.concatenate([len(a) + np.arange(horizon) for a in arrays]),
                "y": np.concatenate([f.values()[:, 0] for f in forecasts]).astype(np.float64),
            }
        )

    return predict

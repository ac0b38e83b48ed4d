"""Entry point of the subprocess runs of tests/test_training.py (checkpoints and torchrun).

    python tests/training_worker.py OUT_DIR [--checkpoint-dir DIR] [--resume] [--sleep S]
                                             [--epochs N] [--dropout P] [--device DEVICE]
                                             [--ensemble N]
    python -m torch.distributed.run --standalone --nproc_per_node=2 \\
        tests/training_worker.py OUT_DIR --dropout 0

fits a small forecaster (one torch thread, fixed seed) on noisy sines, sleeping ``S`` seconds
after every epoch so that a test can SIGKILL it mid-training. The main process (rank 0 under
torchrun) then writes ``OUT_DIR/forecast.parquet``, ``OUT_DIR/history.json`` and the model in
``OUT_DIR/model``; every rank writes ``OUT_DIR/rank-<r>.json`` (world size, its loss history, its
``val_loss_``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

N_SERIES = 4
LENGTH = 240


def frame(n_series: int = N_SERIES, length: int = LENGTH) -> pl.DataFrame:
    """Noisy sines of different phases and periods, long format: id, time, y."""
    rng = np.random.default_rng(7)
    t = np.arange(length)
    return pl.concat(
        pl.DataFrame(
            {
                "id": [f"s{k}"] * length,
                "time": t,
                "y": (
                    np.sin(2 * np.pi * t / (12 + 2 * k) + k) + 0.1 * rng.normal(size=length)
                ).astype(np.float32),
            }
        )
        for k in range(n_series)
    )


def model(**params: Any) -> Any:
    """A forecaster small enough for a few seconds of CPU, with dropout by default (whose
    random state a resume must restore)."""
    from forecaster import RNNForecaster

    settings: dict[str, Any] = {
        "target": "y",
        "id_col": "id",
        "time_col": "time",
        "lookback": 24,
        "horizon": 6,
        "cell": "gru",
        "head": "direct",
        "hidden_size": 16,
        "num_layers": 2,
        "dropout": 0.2,
        "batch_size": 64,
        "windows_per_epoch": 512,
        "max_epochs": 8,
        "patience": 4,
        "lr": 3e-3,
        "lr_schedule": "cosine",
        "device": "cpu",
        "random_state": 0,
        "progress": False,
    }
    settings.update(params)
    if settings["max_epochs"] == 1 and "lr_schedule" not in params:
        settings["lr_schedule"] = "none"  # a cosine schedule acts after an epoch: refused
    return RNNForecaster(**settings)


def main(argv: list[str]) -> int:
    import torch

    from forecaster.training import distributed as distributed

    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ensemble", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def pause(record: Any, network: Any) -> None:
        time.sleep(args.sleep)

    estimator = model(
        checkpoint_dir=args.checkpoint_dir,
        max_epochs=args.epochs,
        dropout=args.dropout,
        device=args.device,
        n_ensemble=args.ensemble,
    )
    estimator.fit(frame(), callbacks=[pause] if args.sleep else [], resume=args.resume)
    losses = [[r["train_loss"], r["val_loss"]] for r in estimator.history_]
    record = {
        "rank": distributed.rank(),
        "world_size": distributed.world_size(),
        "losses": losses,
        "val_loss_": estimator.val_loss_,
    }
    (out / f"rank-{distributed.rank()}.json").write_text(json.dumps(record))
    if distributed.is_main_process():
        estimator.predict(frame()).write_parquet(out / "forecast.parquet")
        (out / "history.json").write_text(json.dumps(estimator.history_))
        estimator.save(out / "model")
    print(f"rank {distributed.rank()} done: {len(losses)} epochs", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main(sys.argv[1:]))

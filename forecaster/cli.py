"""The ``forecaster`` command line.

Commands
--------
``forecaster demo``
    The main job on bundled data: validate the bundled daily stock prices, window them, train
    the default forecaster on every ticker's close, report validation error against a naive
    forecast, forecast the next business days and save the model (no pickle).
``forecaster datasets [NAME]``
    List the bundled data sets, or describe one.

Exit codes: 0 success, 2 bad arguments, 3 data validation failure, 1 other failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl

import forecaster
from forecaster.exceptions import DataValidationError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_DATA = 0, 1, 2, 3


def _demo(args: argparse.Namespace) -> int:
    from forecaster import datasets
    from forecaster.data import Panel
    from forecaster.windows import make_windows

    prices = datasets.load_stocks()
    columns = {"target": "close", "id_col": "ticker", "time_col": "date"}
    panel = Panel.from_frame(prices, **columns, freq="1bd", missing="ffill")
    windows = make_windows(panel, args.lookback, args.horizon)
    print(f"data     {panel}")
    print(
        f"windows  {len(windows):,} of {args.lookback}+{args.horizon} steps, index "
        f"{windows.index.estimated_size() / 1e6:.1f} MB (values {panel.values.nbytes / 1e6:.1f} MB)"
    )

    recent = prices.filter(
        pl.col("date") >= pl.col("date").max().over("ticker") - pl.duration(days=args.days)
    )
    model = forecaster.RNNForecaster(
        **columns,
        freq="1bd",
        missing="ffill",
        lookback=args.lookback,
        horizon=args.horizon,
        max_epochs=args.epochs,
        random_state=0,
        progress=not args.quiet,
    )
    started = time.perf_counter()
    model.fit(recent)
    seconds = time.perf_counter() - started
    best = min(
        (r for r in model.history_ if r["val_loss"] is not None),
        key=lambda r: r["val_loss"],
        default=model.history_[-1],
    )
    print(
        f"trained  {len(model.history_)} epochs in {seconds:.1f} s on {model.n_train_windows_:,} "
        f"windows; best validation MAE (scaled) {best['val_loss']:.4f} at epoch {best['epoch']}"
    )

    # Hold out each ticker's last horizon, compare with the naive (last value) forecast.
    score = -model.score(recent)
    naive = _naive_mae(recent, args.horizon)
    print(f"holdout  MAE of the last {args.horizon} days: model {score:.3f}, naive {naive:.3f}")

    forecast = model.predict(recent)
    with pl.Config(tbl_rows=40, tbl_hide_dataframe_shape=True):
        print(forecast)
    out = Path(args.out)
    model.save(out)
    print(f"model    saved to {out}/ (config.json + weights.safetensors)")
    return EXIT_OK


def _naive_mae(frame: pl.DataFrame, horizon: int) -> float:
    ranked = frame.with_columns(
        pl.col("date").rank("ordinal", descending=True).over("ticker").alias("_k")
    )
    last_seen = ranked.filter(pl.col("_k") == horizon + 1).select(
        "ticker", pl.col("close").alias("_n")
    )
    held = ranked.filter(pl.col("_k") <= horizon).join(last_seen, on="ticker")
    return float((held["close"] - held["_n"]).abs().mean())


def _datasets(args: argparse.Namespace) -> int:
    from forecaster import datasets

    catalogue = datasets.list_datasets()
    if args.name is None:
        with pl.Config(fmt_str_lengths=80, tbl_hide_dataframe_shape=True):
            print(catalogue)
        return EXIT_OK
    chosen = catalogue.filter(pl.col("name") == args.name)
    if chosen.height == 0:
        names = catalogue["name"].to_list()
        print(f"error: no bundled data set {args.name!r}; choose one of {names}", file=sys.stderr)
        return EXIT_USAGE
    for key, value in chosen.row(0, named=True).items():
        print(f"{key:12} {value}")
    card = datasets.datasets_dir() / args.name / "README.md"
    if card.is_file():
        print(f"{'data card':12} {card}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forecaster", description="Recurrent neural network forecasting on Polars panels."
    )
    parser.add_argument(
        "--version", action="version", version=f"forecaster {forecaster.__version__}"
    )
    parser.add_argument("--verbose", action="store_true", help="show tracebacks on failure")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="train and forecast on the bundled stock prices")
    demo.add_argument("--lookback", type=int, default=60, help="input days (default 60)")
    demo.add_argument("--horizon", type=int, default=5, help="forecast days (default 5)")
    demo.add_argument("--epochs", type=int, default=20, help="maximum epochs (default 20)")
    demo.add_argument("--days", type=int, default=3650, help="calendar days of history per ticker")
    demo.add_argument("--out", default="models/stocks_demo", help="model directory")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_demo)

    data = commands.add_parser("datasets", help="list or describe the bundled data sets")
    data.add_argument("name", nargs="?", help="a data set to describe")
    data.set_defaults(func=_datasets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``forecaster`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DataValidationError as exc:
        print(f"error: invalid data: {exc}", file=sys.stderr)
        if args.verbose:
            raise
        return EXIT_DATA
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if args.verbose:
            raise
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

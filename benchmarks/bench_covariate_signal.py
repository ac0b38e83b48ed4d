"""Do ETTh1's six load columns carry signal for OT at H = 96? A linear check, network-free.

The issue-14 acceptance asks the default network with the loads as past covariates (the "MS"
setting) to beat the same network on OT alone (the "S" setting). The network with covariates
scored MSE 0.0541 against 0.0518 without them (``benchmarks/results/accuracy.md``). This
script asks the same question of the simplest model that can use them: ridge regression of
the next 96 OT values (z-scaled by the training rows, minus the window's last OT value, as
NLinear) on the last 336 OT values, with and without the last 336 values of the six loads
(every 4th lag, each minus its last value). The ridge penalty is chosen on the validation
rows, the test rows (every stride-1 window of the standard 12/4/4 split) are scored once.

Run from the repository root::

    .venv/bin/python benchmarks/bench_covariate_signal.py

Writes ``benchmarks/results/covariate_signal.{json,md}``.
"""

from __future__ import annotations

import json

import numpy as np
from _machine import write_result
from bench_accuracy import DEFAULT_DATA, RESULTS, ett_borders, machine, read_ett

LOADS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL"]
LOOKBACK, HORIZON, LOAD_STRIDE = 336, 96, 4
PENALTIES = (1.0, 10.0, 100.0, 1_000.0, 10_000.0)


def windows(z: np.ndarray, lo: int, hi: int, loads: bool) -> tuple[np.ndarray, np.ndarray]:
    """Features and targets of every window whose origin lies in ``[lo, hi - HORIZON)``."""
    origins = np.arange(max(lo, LOOKBACK - 1), hi - HORIZON)
    lags = origins[:, None] + np.arange(-LOOKBACK + 1, 1)
    last = z[origins, -1][:, None]
    parts = [z[lags, -1] - last]
    if loads:
        moved = z[lags][:, :, :-1] - z[origins][:, None, :-1]
        parts.append(moved[:, ::LOAD_STRIDE].reshape(len(origins), -1))
    targets = z[origins[:, None] + np.arange(1, HORIZON + 1), -1] - last
    return np.concatenate(parts, axis=1), targets


def main() -> None:
    frame = read_ett(DEFAULT_DATA, "etth1")
    train_end, val_end, test_end = ett_borders("etth1")
    values = frame.select([*LOADS, "OT"]).to_numpy().astype(np.float64)[:test_end]
    z = (values - values[:train_end].mean(0)) / values[:train_end].std(0)
    rows = []
    for loads in (False, True):
        x, y = windows(z, 0, train_end, loads)
        xv, yv = windows(z, train_end - 1, val_end, loads)
        xt, yt = windows(z, val_end - 1, test_end, loads)
        gram, cross = x.T @ x, x.T @ y
        fits = []
        for penalty in PENALTIES:
            weights = np.linalg.solve(gram + penalty * np.eye(len(gram)), cross)
            fits.append((float(((xv @ weights - yv) ** 2).mean()), penalty, weights))
        val_mse, penalty, weights = min(fits, key=lambda fit: fit[0])
        error = xt @ weights - yt
        rows.append(
            {
                "inputs": "OT + six loads (MS)" if loads else "OT (S)",
                "features": int(x.shape[1]),
                "penalty": penalty,
                "val_mse": round(val_mse, 4),
                "test_mse": round(float((error**2).mean()), 4),
                "test_mae": round(float(np.abs(error).mean()), 4),
                "test_windows": len(yt),
            }
        )
        print(rows[-1], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), "rows": rows}
    write_result(RESULTS / "covariate_signal.json", json.dumps(payload, indent=2) + "\n")
    lines = [
        "### ETTh1 OT, H = 96: ridge regression with and without the loads",
        "",
        f"`python benchmarks/bench_covariate_signal.py` ({payload['machine']['date']}, commit "
        f"{payload['machine']['commit']})",
        "",
        "| inputs | features | penalty (chosen on validation) | val MSE | test MSE | test MAE |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['inputs']} | {r['features']} | {r['penalty']:g} | {r['val_mse']} | "
            f"{r['test_mse']} | {r['test_mae']} |"
            for r in rows
        ),
    ]
    write_result(RESULTS / "covariate_signal.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

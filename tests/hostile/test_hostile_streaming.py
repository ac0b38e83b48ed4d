"""Hostile input to ``model.stream(frame)`` and ``state.update(rows)``: every refusal names
what was expected and how to fix it, and a refused update leaves the stream as it was."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from forecaster import RNNForecaster
from forecaster.exceptions import DataValidationError

T = np.arange(70)
DATA = pl.DataFrame(
    {"id": np.repeat(["a", "b"], 70), "t": np.tile(T, 2), "y": 10 + np.sin(np.tile(T, 2) / 3)}
)


def fit(missing: str = "error") -> RNNForecaster:
    return RNNForecaster(
        target="y",
        time_col="t",
        id_col="id",
        lookback=12,
        horizon=3,
        segment_length=4,
        hidden_size=4,
        max_epochs=1,
        missing=missing,
        random_state=0,
    ).fit(DATA)


@pytest.fixture(scope="module")
def model():
    return fit()


def new_rows(start: int = 50, stop: int = 55) -> pl.DataFrame:
    return DATA.filter(pl.col("t").is_between(start, stop - 1))


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (None, r"must be a polars DataFrame or LazyFrame"),
        ([1.0, 2.0], r"must be a polars DataFrame or LazyFrame"),
        (new_rows().drop("y"), r"lacks the columns \['y'\]"),
        (new_rows().with_columns(pl.col("y").cast(pl.String)), r"dtypes differ from training"),
        (pl.concat([new_rows(), new_rows().head(1)]), r"(?i)duplicate"),
        (new_rows().with_columns(y=pl.lit(float("nan"))), r"Missing values \(NaN or null\)"),
        (new_rows().to_pandas().set_index(["id", "t"]), r"pandas DataFrame.*reset_index"),
        (
            new_rows().filter(pl.col("id") == "a").with_columns(id=pl.lit("zz")),
            r"series \[.zz.\] that are not in the stream",
        ),
        (new_rows(52, 55), r"starts at 52, but its next step is 50"),
    ],
    ids=[
        "None",
        "list",
        "no-target",
        "text-target",
        "duplicate",
        "nan",
        "pandas-index",
        "unknown-series",
        "gap",
    ],
)
def test_junk_updates_are_refused_and_leave_the_stream_as_it_was(model, rows, message):
    state = model.stream(DATA.filter(pl.col("t") < 50))
    before = state.forecast()
    with pytest.raises(DataValidationError, match=message):
        state.update(rows)
    assert state.forecast().equals(before)
    state.update(new_rows())  # still usable
    expected = model.predict(DATA.filter(pl.col("t") < 55))
    np.testing.assert_allclose(state.forecast()["y"], expected["y"], rtol=1e-5)


@pytest.mark.parametrize(
    ("missing", "null_at", "message"),
    [
        ("ffill", 50, r"first new row of series 'a' has a missing target.*missing='ffill'"),
        ("interpolate", 50, r"first new row of series 'a'.*rows before it"),
        ("interpolate", 54, r"last new row of series 'a'.*rows after it"),
    ],
)
def test_missing_targets_that_predict_fills_from_other_rows_are_refused(missing, null_at, message):
    model = fit(missing)
    state = model.stream(DATA.filter(pl.col("t") < 50))
    rows = new_rows().with_columns(
        y=pl.when((pl.col("id") == "a") & (pl.col("t") == null_at)).then(None).otherwise("y")
    )
    with pytest.raises(DataValidationError, match=message):
        state.update(rows)
    inside = new_rows().with_columns(  # a missing value inside the update is filled as predict does
        y=pl.when((pl.col("id") == "a") & (pl.col("t") == 52)).then(None).otherwise("y")
    )
    state.update(inside)
    expected = model.predict(pl.concat([DATA.filter(pl.col("t") < 50), inside]))
    np.testing.assert_allclose(state.forecast()["y"], expected["y"], rtol=1e-5)

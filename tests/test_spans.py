from __future__ import annotations

import numpy as np
import pytest

from forecaster.data.spans import series_cumsum, span_sums


def test_series_cumsum_restarts_at_every_series():
    values = np.array([[1e16, 1.0], [1.0, 2.0], [1e-3, 3.0], [2e-3, np.nan], [5.0, 1.0]])
    got = series_cumsum(values, np.array([0, 2, 2, 4, 5]))  # series 1 is empty
    want = [[1e16, 1.0], [1e16, 3.0], [1e-3, 3.0], [3e-3, np.nan], [5.0, 1.0]]
    np.testing.assert_array_equal(got, np.array(want))
    assert series_cumsum(np.zeros((0, 2)), np.array([0])).shape == (0, 2)
    with pytest.raises(ValueError, match="offsets"):
        series_cumsum(values, np.array([0, 4]))


def test_span_sums_match_a_loop_over_the_spans():
    rng = np.random.default_rng(0)
    lengths = np.array([7, 0, 1, 12, 5])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    values = (
        rng.normal(size=(offsets[-1], 2)) * np.repeat(10.0 ** (4 * np.arange(5)), lengths)[:, None]
    )
    values[rng.random(values.shape) < 0.2] = np.nan
    series = np.repeat(np.arange(5), lengths)
    last = rng.integers(0, offsets[-1], 40)
    first = np.maximum(last - rng.integers(-2, 6, 40), offsets[series[last]])
    total, count = span_sums(values, offsets, first, last)
    for i in range(40):
        span = values[first[i] : last[i] + 1]
        np.testing.assert_allclose(total[i], np.nansum(span, axis=0), rtol=1e-12, atol=0)
        np.testing.assert_array_equal(count[i], (~np.isnan(span)).sum(axis=0))
    assert count.dtype == np.int64

"""The words of the warning that ``fit``'s validation check
(:mod:`~forecaster.estimators.baseline_blend`) gives when the network is worse than the naive
or the seasonal naive on its validation windows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["baseline_warning", "times_that_of"]


def times_that_of(a: float, b: float, name: str) -> str:
    """The error ``a`` against ``b``, that of the baseline ``name``: ``"1.003x that of
    {name}"``, with as many digits as show on which side of 1 the ratio lies (2.83 against
    2.82 is not "1x"), or the words for a baseline without error (not "infx").

    Examples
    --------
    >>> times_that_of(2.83, 2.82, "the naive forecast"), times_that_of(0.5, 1.0, "the naive")
    ('1.004x that of the naive forecast', '0.5x that of the naive')
    >>> times_that_of(0.2, 0.0, "the seasonal naive (m=12)")
    'above that of the seasonal naive (m=12), which is exact on these windows (error 0)'
    """
    if b == 0:
        side = "above" if a > 0 else "equal to"
        return f"{side} that of {name}, which is exact on these windows (error 0)"
    ratio = a / b
    text = f"{ratio:.3g}"
    for digits in range(4, 18):  # rounded to 1 while it is not: one more digit
        if np.sign(float(text) - 1.0) == np.sign(ratio - 1.0):
            break
        text = f"{ratio:.{digits}g}"
    return f"{text}x that of {name}"


def baseline_warning(
    report: dict[str, Any], *, baseline: str, auto: str | None, advice: Sequence[str]
) -> str:
    """The warning of a network worse than a baseline on validation: ``report``: the
    ``validation_baselines_`` the check sets; ``baseline``: the parameter; ``auto``: how its
    rule blends there (None where it keeps the network's forecasts), e.g. "the pool of the
    blends within 20% of the best ...: network weight 0.8 (per target), mainly the naive
    forecast (0.2; ...), ..." for ``"auto"``, "the naive forecast with drift at network
    weight 0 (per target), ..." for ``"best"``, for ``baseline="none"`` how ``"auto"`` would
    blend; ``advice``: the ways to improve the network that apply to these data."""
    main = report["m"]
    naive = times_that_of(report["model"], report["naive"], "the naive forecast")
    if main > 1:  # with m = 1 the seasonal naive is the naive forecast
        name = f"the seasonal naive (m={main})"
        ratios = f"{times_that_of(report['model'], report['seasonal_naive'], name)} and {naive}"
        errors = f"seasonal naive {report['seasonal_naive']:.3g}, "
    else:
        ratios, errors = naive, ""
    if baseline == "none":
        would = (
            "would keep them too: no blend scored better"
            if auto is None
            else (f"would blend them with {auto}")
        )
        done = f"baseline='none': the forecasts are the network's alone. baseline='auto' {would}"
    elif auto is None:
        done = f"baseline={baseline!r} kept the network's forecasts: no blend scored better"
    else:
        done = f"baseline={baseline!r} blends them with {auto}"
    return (
        f"On its {report['windows']} validation windows ({report['series']} series), the "
        f"network's error is {ratios} (mean absolute error over each series' in-sample "
        f"naive error: network {report['model']:.3g}, {errors}naive {report['naive']:.3g}). "
        f"{done}; see validation_baselines_. To improve the network: "
        f"{', '.join(advice[:-1])} or {advice[-1]}."
    )

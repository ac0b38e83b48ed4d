"""The arrays of :class:`~forecaster.estimators.regressor.RNNRegressor`: checked (scikit-learn's
``validate_data``, with advice), kept in float64 until standardised, then float32."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.utils.validation import validate_data

from forecaster.data.scaling import input_scale, spread_scale
from forecaster.exceptions import DataValidationError

__all__ = ["as_3d", "checked_arrays", "moments", "scaled", "y_moments"]


_FINITE_HINT = (
    "{name} must hold finite numbers: drop or impute the windows with NaN or infinite values "
    "first, e.g. keep = np.isfinite({name}).reshape(len({name}), -1).all(axis=1); "
    "X, y = X[keep], y[keep]."
)
_SHAPE_HINT = (
    "Expected X of shape (n_samples, lookback) or (n_samples, lookback, n_features) and y "
    "of shape (n_samples,) or (n_samples, horizon)."
)
_ARRAY_HINTS = (
    (("input x contains nan", "input x contains infinity"), _FINITE_HINT.format(name="X")),
    (("input y contains nan", "input y contains infinity"), _FINITE_HINT.format(name="y")),
    (
        ("inconsistent numbers of samples",),
        "X and y need one row per window: X of shape (n_samples, lookback[, n_features]) and "
        "y of shape (n_samples,) or (n_samples, horizon).",
    ),
    (
        ("feature names",),
        "Pass X with the columns of fit, named and ordered as in fit (feature_names_in_), "
        "e.g. X[list(model.feature_names_in_)].",
    ),
    (
        ("features, but",),
        "Pass windows of the length the model was fitted with (X.shape[1] is the lookback).",
    ),
    (("sample(s)",), "{method} needs at least {minimum} (samples)."),
    (
        ("expected 2d array", "dim ", "array-like", "shape", "requires y to be passed"),
        _SHAPE_HINT,
    ),
    (
        (
            "could not convert",
            "dtype",
            "complex data",
            "numeric",
            "sparse",
            "could not be promoted",
        ),
        "X and y must be dense arrays of real numbers.",
    ),
)
"""scikit-learn's messages, matched by whole phrases (lowercase), and the advice each gets;
the first match wins, else the shape advice."""


class _ArrayTypeError(DataValidationError, TypeError):
    """A :class:`DataValidationError` that stays the ``TypeError`` scikit-learn raised (its
    estimator checks expect one for, e.g., a dict inside an object array)."""


_FLOATS = (np.float64, np.float32)
"""The dtypes ``validate_data`` keeps (float32 data needs no float64 copy: its moments and its
standardisation are computed in float64 block by block); anything else becomes float64, so
that nothing is rounded to float32 before it is standardised (an offset of 1e8 left one
distinct float32 value of 400)."""


def checked_arrays(estimator: Any, X: Any, *y: Any) -> Any:
    """scikit-learn's ``validate_data`` for fit (``y`` given) or predict, its ``ValueError`` and
    ``TypeError`` turned into a :class:`DataValidationError` (still a ``ValueError``, and
    still starting with scikit-learn's own words, which its estimator checks look for) that
    says which method, what was expected and how to fix it. The arrays come back as float64
    (float32 ones as they are), their values within float32's normal range (the standardised
    values are trained in float32)."""
    method = "fit" if y else "predict"  # fit passes y, even when it is None
    where = f"{type(estimator).__name__}.{method}"
    for name, values in (("X", X), *((("y", y[0]),) if y else ())):
        _refuse_times(name, values, where)
    try:
        if not y:
            X = validate_data(estimator, X, reset=False, allow_nd=True, dtype=_FLOATS)
            _refuse_beyond_float32("X", X, where)
            return X
        X, target = validate_data(
            estimator,
            X,
            y[0],
            allow_nd=True,
            dtype=_FLOATS,
            multi_output=True,
            y_numeric=True,
            ensure_min_samples=2,
        )
        target = np.asarray(target, dtype=np.float64)  # text that is no number: refused here
    except (ValueError, TypeError) as exc:
        if isinstance(exc, DataValidationError):
            raise
        text = " ".join(str(exc).split())
        if "contains NaN" in text:  # drop scikit-learn's advice to use another estimator
            text = text.split(". ")[0].rstrip(".") + "."
        lowered = text.lower()
        hint = next(
            (fix for words, fix in _ARRAY_HINTS if any(w in lowered for w in words)),
            _SHAPE_HINT,
        )
        minimum = "2 windows" if method == "fit" else "1 window"
        hint = hint.format(method=method.capitalize(), minimum=minimum)
        kind = _ArrayTypeError if isinstance(exc, TypeError) else DataValidationError
        raise kind(f"{text} ({where}: {hint})") from exc
    _refuse_beyond_float32("X", X, where)
    _refuse_beyond_float32("y", target, where)
    return X, target


def _refuse_times(name: str, values: Any, where: str) -> None:
    """Refuse dates and durations (numpy, pandas or polars dtypes, of an array, a series, a
    frame's columns or a list's first element): scikit-learn would read dates as day numbers."""
    if hasattr(values, "dtype"):
        dtypes = [values.dtype]
    elif hasattr(values, "dtypes"):  # a frame: one per column
        dtypes = list(values.dtypes)
    elif isinstance(values, list | tuple) and values:
        try:
            dtypes = [np.asarray(values[:1]).dtype]
        except (TypeError, ValueError):  # ragged or not numbers: validate_data says so
            return
    else:
        return
    for dtype in dtypes:
        temporal = getattr(dtype, "is_temporal", None)  # polars
        if temporal() if callable(temporal) else getattr(dtype, "kind", "") in ("m", "M"):
            raise DataValidationError(
                f"{name} holds {dtype} values, which are no numeric dtype ({where}: X and y "
                "must be dense arrays of real numbers; pass the dates' features, e.g. day of "
                "week or hour, or elapsed times as floats)."
            )


def _refuse_beyond_float32(name: str, array: np.ndarray, where: str) -> None:
    """Refuse values outside float32's normal range: nonzero ones below 1.2e-38 and ones above
    3.4e38 (the frame estimators refuse them too). Checked block by block on the validated
    array, whatever container it came in."""
    info = np.finfo(np.float32)
    for block in _row_blocks(array):
        size = np.abs(block)
        if (size > info.max).any():
            raise DataValidationError(
                f"{name} holds values too large for float32 (beyond 3.4e38), the precision "
                f"used for training ({where}). Rescale {name} (e.g. divide by a constant)."
            )
        if ((size > 0) & (size < info.tiny)).any():
            raise DataValidationError(
                f"{name} holds nonzero values below the float32 range (1.2e-38) used for "
                f"training, which makes them 0 ({where}). Rescale {name} (e.g. multiply by a "
                "constant)."
            )


def y_moments(y2: np.ndarray, per_output: bool) -> tuple[Any, Any]:
    """The mean and scale of the training targets ``y2`` (rows, outputs): floats over all of
    it for a 1-D ``y``, one per output column for a 2-D ``y`` (pooled, an output near 1000
    beside one near 0 was scaled by their gap, 500, and learnt nothing of its own spread)."""
    mean, scale = moments(y2, per_channel=per_output)
    return (mean, scale) if per_output else (float(mean), float(scale))


def as_3d(X: np.ndarray) -> np.ndarray:
    if X.ndim == 2:
        return X[:, :, None]
    if X.ndim == 3:
        if X.shape[1] == 0:
            raise DataValidationError(
                f"X has windows of 0 time steps (shape {X.shape}); expected at least 1: pass X "
                "of shape (n_samples, lookback, n_features) with lookback >= 1."
            )
        if X.shape[2] == 0:
            raise DataValidationError(
                f"X has 0 features per time step (shape {X.shape}); expected at least 1: "
                "pass X of shape (n_samples, lookback, n_features) with n_features >= 1, or "
                "(n_samples, lookback) for one feature."
            )
        return X
    raise DataValidationError(
        f"X must have shape (n_samples, lookback) or (n_samples, lookback, n_features); got an "
        f"array with {X.ndim} dimensions."
    )


def scaled(a: np.ndarray, mean: Any, scale: Any) -> np.ndarray:
    """``(a - mean) / scale`` computed in float64 and stored as float32, block by block (no
    float64 copy of all of ``a``)."""
    out = np.empty(a.shape, dtype=np.float32)
    step = _rows_per_block(a)
    for lo in range(0, len(a), step):
        out[lo : lo + step] = (a[lo : lo + step].astype(np.float64) - mean) / scale
    return out


def _rows_per_block(a: np.ndarray) -> int:
    return max(_MOMENT_BLOCK // max(math.prod(a.shape[1:]), 1), 1)


def _row_blocks(a: np.ndarray) -> list[np.ndarray]:
    """Views of ``a``'s rows, about :data:`_MOMENT_BLOCK` values each."""
    step = _rows_per_block(a)
    return [a[lo : lo + step] for lo in range(0, len(a), step)]


_MOMENT_BLOCK = 1 << 20
"""Values per block of :func:`moments`' float64 copies (8 MiB), so that no float64 copy of
the whole training array is made."""


def moments(
    a: np.ndarray, per_channel: bool, inputs: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (a scale: :func:`~forecaster.data.scaling.spread_scale`,
    or for ``inputs``, features, :func:`~forecaster.data.scaling.input_scale`) of ``a``, as
    float64: per channel (the last axis) over all other axes, or over all of ``a`` (scalars).
    Summed in float64 block by block (float32 sums lost the mean of 300 + N(0, 1) over 14
    million values: 280.7, a scale of 19.2), in two passes: the mean, then the squared
    deviations from it."""
    flat = a.reshape(-1, a.shape[-1] if per_channel else 1)
    step = max(_MOMENT_BLOCK // flat.shape[1], 1)
    blocks = [flat[lo : lo + step] for lo in range(0, len(flat), step)]
    mean = sum(b.sum(axis=0, dtype=np.float64) for b in blocks) / len(flat)
    squares = sum(np.square(b.astype(np.float64) - mean).sum(axis=0) for b in blocks)
    std = np.sqrt(squares / len(flat))
    if not per_channel:
        mean, std = mean[0], std[0]
    scale = (input_scale if inputs else spread_scale)(std, mean)
    return np.asarray(mean, dtype=np.float64), scale

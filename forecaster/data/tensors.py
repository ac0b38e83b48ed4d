"""Tensors over the memory of NumPy arrays that may be read-only (a Polars column's)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["read_only_tensor"]


def read_only_tensor(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor sharing ``array``'s memory, for reading only, even where ``array`` is not
    writable (``Series.to_numpy()`` of a Polars column without nulls).

    ``torch.from_numpy`` warns about a read-only array; silencing that warning with
    ``warnings.catch_warnings()`` on every call reset Python's record of the warnings already
    shown (the default filter then repeated every later warning of each fit). DLPack shares the
    memory without the warning; where this NumPy or PyTorch cannot export a read-only array
    through it, the array is copied.

    Examples
    --------
    >>> import polars as pl
    >>> read_only_tensor(pl.Series([1, 2, 3]).to_numpy()).tolist()
    [1, 2, 3]
    """
    if array.flags.writeable:
        return torch.from_numpy(array)
    try:
        return torch.from_dlpack(array)
    except (BufferError, TypeError, RuntimeError):  # an older NumPy refuses read-only exports
        return torch.from_numpy(np.array(array))

"""The recurrent networks: cells, heads, per-window normalisation, ensembles.

Modules: :mod:`~forecaster.nn.config` (the accepted values and defaults),
:mod:`~forecaster.nn.checks` (configuration and memory checks), :mod:`~forecaster.nn.cells`,
:mod:`~forecaster.nn.normalization`, :mod:`~forecaster.nn.heads` (one module per head),
:mod:`~forecaster.nn.unrolled` (the segment head's cell calls at inference),
:mod:`~forecaster.nn.inputs` (the checks of a network's input tensors),
:mod:`~forecaster.nn.recurrent` (:class:`RecurrentNet`), :mod:`~forecaster.nn.ensemble`;
:mod:`~forecaster.nn` re-exports the public names.
"""

from __future__ import annotations

from forecaster.nn.checks import (
    MemoryEstimate,
    OutOfMemoryError,
    check_memory,
    check_network_config,
    count_parameters,
    estimate_memory,
    memory_limit,
    out_of_memory,
    parameter_count,
)
from forecaster.nn.config import (
    CELLS,
    HEADS,
    NONLINEARITIES,
    NORMALIZATIONS,
    auto_segment_length,
)
from forecaster.nn.ensemble import EnsembleNet, network_from_config
from forecaster.nn.recurrent import RecurrentNet

__all__ = [
    "CELLS",
    "HEADS",
    "NONLINEARITIES",
    "NORMALIZATIONS",
    "EnsembleNet",
    "MemoryEstimate",
    "OutOfMemoryError",
    "RecurrentNet",
    "auto_segment_length",
    "check_memory",
    "check_network_config",
    "count_parameters",
    "estimate_memory",
    "memory_limit",
    "network_from_config",
    "out_of_memory",
    "parameter_count",
]

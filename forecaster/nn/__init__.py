"""The recurrent networks: cells, heads, per-window normalisation, ensembles."""

from __future__ import annotations

from forecaster.nn.core import (
    CELLS,
    HEADS,
    NONLINEARITIES,
    NORMALIZATIONS,
    EnsembleNet,
    MemoryEstimate,
    OutOfMemoryError,
    RecurrentNet,
    check_memory,
    check_network_config,
    count_parameters,
    estimate_memory,
    memory_limit,
    network_from_config,
    out_of_memory,
    parameter_count,
)

__all__ = [
    "CELLS",
    "HEADS",
    "NONLINEARITIES",
    "NORMALIZATIONS",
    "EnsembleNet",
    "MemoryEstimate",
    "OutOfMemoryError",
    "RecurrentNet",
    "check_memory",
    "check_network_config",
    "count_parameters",
    "estimate_memory",
    "memory_limit",
    "network_from_config",
    "out_of_memory",
    "parameter_count",
]

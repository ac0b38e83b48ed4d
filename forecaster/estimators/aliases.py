"""The cell aliases of :class:`~forecaster.estimators.forecaster.RNNForecaster`
(``LSTMForecaster``, ``GRUForecaster``, ``SimpleRNNForecaster``): subclasses whose ``cell`` is
fixed."""

from __future__ import annotations

__all__ = ["fixed_cell"]

import inspect
from typing import Any

from forecaster.exceptions import DataValidationError


def fixed_cell(base: type[Any], cell: str, doc_name: str) -> type[Any]:
    """A subclass of ``base`` (RNNForecaster) whose ``cell`` is fixed (not a parameter)."""
    params = [p for p in inspect.signature(base.__init__).parameters.values() if p.name != "cell"]

    def __init__(self, target=None, **kwargs):
        given = kwargs.pop("cell", cell)
        if given != cell:  # not a parameter: a call that cannot mean what it says
            raise DataValidationError(
                f"{doc_name}Forecaster fixes cell={cell!r}, got cell={given!r}. Use "
                f"RNNForecaster(cell={given!r}, ...) (or the class of that cell), or leave "
                "cell out."
            )
        base.__init__(self, target, cell=cell, **kwargs)

    __init__.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    doc = (
        f"{doc_name} forecaster: :class:`RNNForecaster` with ``cell={cell!r}`` fixed.\n\n"
        "``cell`` is not one of its parameters (``get_params`` does not list it); passing "
        f"``cell={cell!r}`` is accepted, another cell raises "
        ":class:`~forecaster.exceptions.DataValidationError`.\n\n"
        "All other parameters, attributes and methods are those of :class:`RNNForecaster`.\n"
    )
    return type(doc_name + "Forecaster", (base,), {"__init__": __init__, "__doc__": doc})

"""The ``(center, scale)`` tensors of a fitted scaler, labelled with the series and columns
their rows and columns are for.

:meth:`~forecaster.data.scaling.PanelScaler.tensors` returns a :class:`ScalingTensors`;
:meth:`~forecaster.data.windows.Windows.gather` and
:meth:`~forecaster.data.windows.Windows.batches` scale series ``i`` of their panel with row
``i``, so they check the labels against their panel first (:meth:`ScalingTensors.check_panel`):
tensors built for another panel's series would scale every series with another one's
statistics.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from forecaster.data.frames import format_list, match_keys
from forecaster.data.panel import Panel
from forecaster.exceptions import DataValidationError

__all__ = ["ScalingTensors"]


class ScalingTensors(tuple[torch.Tensor, torch.Tensor]):
    """``(center, scale)``: float32 tensors ``(n_series, n_features)``, a pair that unpacks as
    a tuple, with the ids of the series their rows scale and the names of their columns.

    Parameters
    ----------
    center, scale : torch.Tensor
        float32, ``(n_series, n_features)``: row ``i`` scales series ``i`` as
        ``(x - center) / scale``.
    keys : polars.DataFrame or None
        One id column, row ``i`` the series that row ``i`` scales (kept as the attribute
        ``keys``); None for a scaler without keys (it matches series by position: only their
        number is checked).
    columns : list of str
        The columns the tensors' columns scale, in order (the attribute ``columns``).

    Examples
    --------
    >>> pair = ScalingTensors(torch.zeros(2, 1), torch.ones(2, 1), pl.DataFrame({"id": ["a", "b"]}),
    ...                       ["y"])
    >>> center, scale = pair
    >>> tuple(center.shape), pair.columns
    ((2, 1), ['y'])
    """

    keys: pl.DataFrame | None
    columns: list[str]

    def __new__(
        cls,
        center: torch.Tensor,
        scale: torch.Tensor,
        keys: pl.DataFrame | None,
        columns: list[str],
    ) -> ScalingTensors:
        return super().__new__(cls, (center, scale))

    def __init__(
        self,
        center: torch.Tensor,
        scale: torch.Tensor,
        keys: pl.DataFrame | None,
        columns: list[str],
    ) -> None:  # the pair itself is made by __new__ (a tuple); here its labels
        self.keys, self.columns = keys, list(columns)

    def __getnewargs__(self) -> tuple[torch.Tensor, torch.Tensor, pl.DataFrame | None, list[str]]:
        return self[0], self[1], self.keys, self.columns

    def check_panel(self, panel: Panel) -> None:
        """Refuse a panel whose series (by id, in order) or columns are not those of the
        tensors' rows and columns, saying how to build tensors for it.

        Parameters
        ----------
        panel : Panel
            The panel of the windows to scale (:attr:`Windows.panel
            <forecaster.data.windows.Windows.panel>`).

        Raises
        ------
        DataValidationError
            When the columns differ, or the panel's series are not the tensors' series in the
            same order (a scaler without keys: another number of series).
        """
        advice = (
            "Build the tensors for this panel: scaler.tensors(device, panel=windows.panel) "
            "finds each of its series' statistics by id."
        )
        if list(panel.columns) != self.columns:
            raise DataValidationError(
                f"The scaling tensors are for the columns {self.columns}, got windows of a panel "
                f"of {list(panel.columns)}. {advice}"
            )
        n = int(self[0].shape[0])
        if self.keys is None:
            if panel.n_series != n:
                raise DataValidationError(
                    f"The scaling tensors are for {n} series (a scaler without keys, matched "
                    f"by position), got windows of a panel of {panel.n_series} series. {advice}"
                )
            return
        name = self.keys.columns[0]
        ids = panel.keys.select(panel.id_name)
        if self.keys.equals(ids):  # the panel the tensors were built for: one vectorised check
            return
        same = panel.id_name == name and panel.n_series == n
        if same:
            rows, known = match_keys(self.keys, ids, name)
            same = bool(known.all() and (rows == np.arange(n)).all())
        if not same:
            mine, theirs = self.keys[name].to_list(), panel.keys[panel.id_name].to_list()
            raise DataValidationError(
                f"The scaling tensors are for the series {format_list(mine)} (row i scales "
                f"series i), got windows of a panel of the series {format_list(theirs)}: each "
                f"series would be scaled with another one's statistics. {advice}"
            )

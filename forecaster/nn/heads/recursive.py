"""The ``"recursive"`` head (sequence-to-sequence, many-to-many): a one-step model that
predicts at every step the next value of every past-observed channel, trained with teacher
forcing over every time step and rolled out autoregressively for the forecast.

The cell's input at the step that forecasts time ``s`` is the past-observed channels at
``s - 1`` (observed in the lookback, the model's own forecast in the roll-out, the truth in
training) beside the future-known covariates (and calendar features) at ``s``, the step being
forecast, as in DeepAR: the lookback's last step reads the first horizon step's covariates,
and the roll-out's last step the last horizon step's. Networks with ``future_at_step=False``
(models saved before this alignment) read them at ``s - 1`` instead, as they were trained.
"""

from __future__ import annotations

__all__ = ["RecursiveHead"]

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from forecaster.nn.cells import cell_parameters
from forecaster.nn.heads.base import (
    ChannelwiseHead,
    LossFn,
    MakeCell,
    normalize_input,
    split_channels,
)
from forecaster.nn.statics import initial_state


class RecursiveHead(ChannelwiseHead):
    """One-step model: teacher-forced loss at training, autoregressive roll-out at forecast
    (see :meth:`forecaster.nn.recurrent.RecurrentNet.training_loss`)."""

    name = "recursive"
    decodes_horizon = True

    def build(self, net: Any, make_cell: MakeCell) -> None:
        net.rnn = make_cell(net.core_past + net.n_future)
        net.out = nn.Linear(net.hidden_size, net.core_past)

    def parameter_count(self, c: Mapping[str, Any], core_targets: int, core_past: int) -> int:
        hidden = c["hidden_size"]
        total = cell_parameters(c["cell"], core_past + c["n_future"], hidden, c["num_layers"])
        return total + hidden * core_past + core_past

    def forward_core(self, net: Any, x: Tensor, future: Tensor | None, state: Any = None) -> Tensor:
        xn, stats = normalize_input(net, x)
        shift = int(net.future_at_step)
        if future is not None and shift:  # each lookback step reads the next step's covariates
            n_past = net.core_past
            ahead = torch.cat([xn[:, shift:, n_past:], future[:, :shift]], dim=1)
            xn = torch.cat([xn[..., :n_past], ahead], dim=-1)
        out, state = net.rnn(xn, state)
        step = net.out(net.output_dropout(out[:, -1]))  # (B, n_past): horizon step 0
        steps = [step]
        for k in range(1, net.horizon):  # the only per-step loop: batched, state carried
            inp = step if future is None else torch.cat([step, future[:, k - 1 + shift]], dim=-1)
            out, state = net.rnn(inp.unsqueeze(1), state)
            step = net.out(net.output_dropout(out[:, 0]))
            steps.append(step)
        y = net.norm.inverse(torch.stack(steps, dim=1), stats)
        return y[..., : net.core_targets]

    def training_loss(
        self,
        net: Any,
        x: Tensor,
        future: Tensor | None,
        y: Tensor,
        loss_fn: LossFn,
        static: Tensor | None = None,
    ) -> Tensor:
        """The teacher-forced many-to-many loss: one fused run over the lookback followed by
        the true horizon, loss on the channels known at each step.

        The cell runs once over the lookback and the horizon but its last step, where the
        horizon rows hold the true targets ``y`` and, for the past covariates (whose horizon
        values are unknown), the last observed value of each past covariate repeated; beside
        each row go the future covariates of the next step, the one it forecasts (of the same
        step with ``future_at_step=False``). At every step the model predicts the next row's
        past-observed channels; the loss is the mean over time steps of ``loss_fn`` on the
        channels known at that step: all past-observed channels for the ``lookback - 1`` next
        values inside the lookback, the targets only for the ``horizon`` steps. Losses are
        computed on the original (de-normalized) scale, as for the other heads. At forecast
        time the roll-out feeds back its own predictions for all past-observed channels,
        covariates included.
        """
        state = initial_state(net, static)
        if net.core_targets != net.n_targets:  # channel independent: channels -> batch
            x, future = split_channels(net, x, future)
            y = y.transpose(1, 2).reshape(-1, net.horizon, 1)
            state = initial_state(net, static, net.n_targets)
        n_past, n_t, lookback, horizon = net.core_past, net.core_targets, net.lookback, net.horizon
        stats = net.norm.stats(x)
        last_covariates = x[:, -1:, n_t:n_past].expand(-1, horizon, -1)
        teacher_raw = torch.cat([y, last_covariates], dim=-1)  # (B, H, n_past)
        sequence = torch.cat([x[..., :n_past], teacher_raw], dim=1)  # (B, L + H, n_past)
        inputs = net.norm.transform(sequence, stats)[:, :-1]  # (B, L + H - 1, n_past)
        if future is not None:  # beside each row: the covariates of the step it forecasts
            shift = int(net.future_at_step)
            all_future = torch.cat([x[..., n_past:], future], dim=1)
            ahead = all_future[:, shift : shift + lookback + horizon - 1]
            inputs = torch.cat([inputs, ahead], dim=-1)
        out, _ = net.rnn(inputs, state)  # (B, L + H - 1, H)
        pred = net.norm.inverse(net.out(net.output_dropout(out)), stats)

        horizon_loss = loss_fn(pred[:, lookback - 1 :, :n_t], y)
        n_inside = lookback - 1
        if n_inside == 0:
            return horizon_loss
        inside_loss = loss_fn(pred[:, :n_inside], x[:, 1:, :n_past])
        return (n_inside * inside_loss + horizon * horizon_loss) / (n_inside + horizon)

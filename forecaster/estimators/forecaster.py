"""The frame estimator: :class:`RNNForecaster` and its cell aliases :class:`LSTMForecaster`,
:class:`GRUForecaster` and :class:`SimpleRNNForecaster`.

Polars frame in, forecast frame out: ``fit`` (:mod:`forecaster.estimators.forecaster_fit`)
builds the :class:`~forecaster.data.panel.Panel` and the window index, owns the per-series
scaler and trains one global network over all series; ``predict`` is
:mod:`forecaster.estimators.inference`, ``score`` :mod:`forecaster.estimators.scoring`. Frames
are read through :mod:`forecaster.data` (:func:`~forecaster.data.frames.check_schema`,
:func:`~forecaster.data.frames.collect_frame`), so a lazy source that disappeared or a
non-polars object is a :class:`~forecaster.exceptions.DataValidationError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from forecaster._validation import check
from forecaster.data import calendar_for_freq, trained_frame
from forecaster.data.checks import check_output_names, check_roles
from forecaster.data.dtypes import training_frame
from forecaster.data.frames import check_schema, collect_frame, column_tuple
from forecaster.data.frequency import Frequency
from forecaster.data.panel import Panel
from forecaster.estimators.aliases import fixed_cell
from forecaster.estimators.base import RecurrentEstimator
from forecaster.estimators.baseline_blend import BaselineCheck
from forecaster.estimators.calibration import ForecastIntervals
from forecaster.estimators.forecaster_fit import ForecasterFit
from forecaster.estimators.lookback import AutoLookback
from forecaster.estimators.scoring import ForecastScoring
from forecaster.estimators.state import ForecasterState
from forecaster.estimators.statics import StaticCovariates
from forecaster.estimators.streaming import ForecastStreaming
from forecaster.evaluation.backtest import backtest as run_backtest
from forecaster.exceptions import DataValidationError
from forecaster.persistence import register_model_class

__all__ = [
    "DEFAULT_QUANTILES",
    "GRUForecaster",
    "LSTMForecaster",
    "RNNForecaster",
    "SimpleRNNForecaster",
]


DEFAULT_QUANTILES = (0.1, 0.5, 0.9)
"""The quantiles of ``loss="quantile"`` when ``quantiles=None``."""


class RNNForecaster(
    ForecastIntervals,
    ForecastStreaming,
    ForecastScoring,
    ForecasterState,
    StaticCovariates,
    BaselineCheck,
    AutoLookback,
    ForecasterFit,
    RecurrentEstimator,
):
    """Global recurrent forecaster for one or many series in a long Polars frame.

    One network is trained on the windows of every series (a *global* model). Each series and
    column is scaled with statistics of its own training span; by default each input window is
    also normalised by its last value (``normalization="last"``). The default network is a
    segment-wise GRU (SegRNN), which is accurate and the fastest of the heads.

    Parameters
    ----------
    target : str or list of str
        Column(s) to forecast (several for a multivariate target, e.g. 13 MFCCs).
    time_col : str, default "time"
        Datetime, date or integer time column.
    id_col : str or None, default None
        Series identifier; ``None`` for a frame that holds one series.
    covariates : str or list of str, optional
        Past-observed covariates (inputs known up to the forecast origin only).
    future_covariates : str or list of str, optional
        Future-known covariates (e.g. promotions); :meth:`predict` reads their values over the
        horizon from ``future`` (with a list of cutoffs: the frame's rows after each origin).
    static_covariates : str or list of str, optional
        Columns with one value per series (sector, region, sensor type), checked constant
        within each series in ``fit`` and ``predict``. String, Categorical, Enum, Boolean and
        integer columns are categories (an embedding each); Float columns are numbers,
        standardised over the training series (never per series). Every head starts its
        encoder from a state computed from them (:mod:`forecaster.nn.statics`). A category
        unseen in ``fit`` gets the unknown category (a zero embedding) in ``predict``, with a
        :class:`~forecaster.exceptions.ForecasterWarning` naming the column and the series.
    lookback : int or "auto", default "auto"
        Input window length. ``"auto"`` chooses it from the data's frequency and the horizon
        (:func:`~forecaster.data.seasons.auto_lookback`: hourly 336, daily 56, business days
        60, weekly 52, monthly 36, integer steps 4 cycles of a season found in the data, >= 96;
        at least the horizon, at most 720, shorter for short series); fitted: ``lookback_``.
    horizon : int, default 24
        Number of steps forecast at once.
    cell : {"gru", "lstm", "rnn"}, default "gru"
    head : {"segment", "direct", "seq2seq", "recursive"}, default "segment"
        See :class:`~forecaster.nn.recurrent.RecurrentNet`.
    hidden_size : int, default 128
    num_layers : int, default 1
    dropout : float, default 0.1
    segment_length : int or "auto", default "auto"
        Segment length of the ``"segment"`` head. ``"auto"``: one day of steps (24 or more a
        day) when the window holds 4 to 32 days, else 24 doubled until at most 16 segments
        (:func:`~forecaster.nn.config.auto_segment_length`; ``resolved_params()`` says which).
        ``fit`` refuses a number with another head, which would ignore it.
    normalization : {"last", "revin", "none"}, default "last"
        Per-window normalisation inside the network.
    channel_independent : bool or None, default None
        Each target column as its own series, shared weights (covariates beside every
        channel). ``None``: True for ``"segment"`` (always), else False (True needs 2 targets).
    linear_skip : bool or "auto", default "auto"
        Add a linear map of each target's window (minus its last value) straight to the
        horizon to the head's forecast (LSTNet's autoregressive highway; see
        :class:`~forecaster.nn.recurrent.RecurrentNet`); ``head="recursive"`` refuses it.
        ``"auto"``: on with a log target transform (a linear autoregression of the logs: M4
        Hourly's errors fell with it, ``docs/benchmarks.md``), off otherwise (ETTh1's rose);
        the fitted network's ``linear_skip`` says which.
    nonlinearity : {"tanh", "relu"}, default "tanh"
        For ``cell="rnn"`` only.
    scaling : {"standard", "robust", "minmax", "none"}, default "standard"
        Per-series scaling fitted on the training span. ``"none"``: values as they are; ``fit``
        warns about a target whose typical spread is over 100 times above or below 1.
    target_transform : {"auto", "none", "log", "log1p", "boxcox"}, default "auto"
        Transform of the targets before scaling, inverted on the forecasts: ``log`` and
        ``boxcox`` need targets > 0, ``log1p`` targets > -1. ``"auto"``: ``log`` when every
        training target is > 0 and the typical series spans a factor (95th percentile >= 1.5
        times the 5th) with swings that grow with its level (Guerrero's lambda < 0.5), else
        ``none`` (:func:`~forecaster.data.transforms.resolve_target_transform`; fitted:
        ``target_transform_``). Box-Cox fits one lambda per series and target on the
        training span (series unseen in ``fit`` get theirs from their own history). Forecasts
        of a log-scale model are median-type forecasts.
    calendar : None, "auto", str or list of str, default None
        Calendar features added as future-known covariates (sine/cosine of the position in
        each cycle, see :data:`forecaster.data.calendar.CALENDAR_FEATURES`): ``"hour"``,
        ``"dayofweek"``, ``"dayofmonth"``, ``"dayofyear"``, ``"month"``, ``"minute"``.
        ``"auto"`` picks them from the frequency. They are computed from the time column
        (Date, or Datetime with or without a time zone: the local clock), so :meth:`predict`
        needs no ``future`` frame for them. A feature whose cycle is not longer than one step
        (``"hour"`` on daily data, ``"dayofweek"`` on weekly data) is refused (by
        ``validate_params`` when ``freq`` is declared), and so is any calendar on an integer
        time column (see :func:`forecaster.data.calendar.calendar_features`).
    loss : {"mae", "mse", "huber", "quantile"}, default "mae"
        ``"quantile"``: the pinball loss averaged over ``quantiles``; the network emits one
        value per quantile (they never cross) and the point forecast is the median.
    quantiles : list of float or None, default None
        The quantiles of ``loss="quantile"`` (0.5 must be among them); None means
        ``[0.1, 0.5, 0.9]``. Refused with another loss.
    lr : float, default 1e-3
    weight_decay : float, default 0.0
    batch_size : int, default 256
    max_epochs : int, default 50
    patience : int or None, default 8
        Early stopping patience on the validation loss (best weights restored).
    grad_clip : float or None, default 1.0
    lr_schedule : {"none", "cosine", "plateau", "onecycle"}, default "none"
        ``"plateau"``: halve the rate after 3 flat epochs (sooner below ``patience=4``).
    ema_decay : float, "auto" or None, default "auto"
        Validate, early-stop on and keep an exponential moving average of the weights
        (Polyak, after every batch; batch n decays by min(ema_decay, (1 + n) / (10 + n)), so
        0.99 acts from about 900 batches, 0.999 from 9,000) instead of the last batch's.
        ``"auto"``: 0.99 when an epoch has at least 25 batches, else None (``ema_decay_``).
    validation_size : int or float, default 0.1
        Held out for early stopping: steps (int, >= ``horizon``), a share (float, >= ``horizon``)
        or 0 (none). Date panels: the steps after one time for all series (a share of the
        longest); integer steps: each series' own last steps (see ``validation_holdout``).
    baseline : {"auto", "best", "none"}, default "auto"
        With a validation split, ``fit`` scores the network, the naive and the seasonal naive
        on the validation windows and warns when the network is worse; it also scores every
        blend ``w * network + (1 - w) * partner`` (naive, seasonal naive or mean season, with
        or without drift; ``w`` 0, 0.25, ..., 1 per target). ``"auto"``: where validation
        tells little (under 2 horizons of validation evidence: one series whose hold-out is
        under two horizons; ``blend_choice.POOL_EVIDENCE``), per target the average of the
        blends within ``0.2 / sqrt(evidence)`` of the best there, shrunk toward the better
        naive by the evidence (``blend_choice.pool_blend``); with more, the single best blend,
        as ``"best"``. ``"best"``: the single best blend (ties: ``w = 1``; the former
        ``"auto"``). ``"none"``: the network alone. Without validation windows
        (``validation_size=0``) there is nothing to choose on: ``"auto"`` forecasts with the
        network alone (``baseline_`` None), and ``"best"`` is refused in ``fit``.
    stride : int, default 1
        Step between training windows of a series, back from the newest before its hold-out
        (validation uses every validation window whatever the stride: fits compare on the same).
    windows_per_epoch : int or None, default 32768
        Training windows sampled (without replacement) per epoch; all windows when None or
        when there are fewer. Overlapping stride-1 windows are highly redundant, so a bounded
        epoch (about 3 s on 2 CPU cores by default) gives frequent validation and early
        stopping, and a fit time that does not grow with the panel. It also caps validation:
        a larger split is scored on a fixed sample of this many windows (every epoch), drawn
        from ``random_state``; without one, every fit takes that of ``random_state=0``.
    n_ensemble : int, default 1
        Number of networks trained with seeds ``random_state + k`` (initialisation, batch
        order, dropout; the first is the single network), averaged. ``max_time`` bounds all of them
        together: when it runs out first (or a callback raises ``StopTraining``), the members
        trained so far form the ensemble, with a ``ForecasterWarning``; ``n_members_`` and
        ``stopped_by_`` say how many and why.
    freq : str, default "auto"
        Sampling frequency (see :class:`~forecaster.data.frequency.Frequency`).
    missing : {"error", "ffill", "zero", "interpolate"}, default "error"
        Policy for gaps and missing values.
    max_time : float or None, default None
        Training time budget in seconds (checked after every epoch).
    checkpoint_dir : str or None, default None
        Folder for training checkpoints: the whole training state is written there atomically
        (safetensors + JSON, no pickle) every ``checkpoint_every`` epochs and when training
        ends, and ``fit(frame, resume=True)`` continues an interrupted fit from it with the
        result of an uninterrupted one. A fit without ``resume`` starts over and replaces the
        folder's checkpoints: use one folder per fit. The clones that ``backtest`` and
        ``calibrate`` refit (``refit=True``) and ``tune``'s trials write none: the folder
        keeps this fit's.
    checkpoint_every : int, default 1
        Epochs between checkpoints (another value without ``checkpoint_dir`` is refused).
    on_oom : {"raise", "split"}, default "raise"
        When a training batch runs out of GPU memory: raise
        :class:`~forecaster.training.loop.GPUOutOfMemoryError`, which names a batch size that fits,
        or split every batch into parts and accumulate their gradients (the same effective
        batch, slower). Prediction and validation batches are split automatically. It acts
        on a GPU only: ``"split"`` with a CPU ``device`` is refused in ``fit``, and with
        ``device="auto"`` on a machine without a GPU the fit warns that it has no effect
        (the same parameters keep it where ``auto`` finds a GPU).
    device : str, default "auto"
        ``"auto"`` trains on CUDA when available; the fitted network is kept on the CPU.
    random_state : int or None, default None
        A seed from 0 to 2**32 - 1. It fixes initialisation, batch order and dropout: same
        seed, same predictions on CPU at the same torch thread count (``torch.get_num_threads()``;
        a sum split over more threads rounds differently: the workers of scikit-learn's ``loky``
        and of ``tune(n_workers=...)`` run fewer), also for fits run in threads at once
        (``ThreadPoolExecutor``): their training is serialised by a lock, as initial weights
        and dropout come from torch's process-wide generator; processes train in parallel.
        See "Reproducibility" in the concepts page.
    progress : bool or None, default None
        Progress bar; ``None`` shows it in a terminal or notebook.

    Attributes
    ----------
    network_ : RecurrentNet or EnsembleNet
    scaler_ : PanelScaler
    target_transform_, ema_decay_ : str, float or None
        The target transform and weight-average decay used (``"auto"`` resolved on the data).
    target_lambdas_ : numpy.ndarray or None
        Box-Cox lambdas, shape ``(n_series, n_targets)`` (``target_transform="boxcox"`` only).
    calendar_, device_ : tuple of str, str
        The calendar features used; the device trained on (``"auto"`` resolved; None: loaded).
    static_encoding_ : StaticEncoding or None
        The vocabularies and statistics of the static covariates (None without).
    keys_ : polars.DataFrame
        The series seen in ``fit`` (row ``i`` is scaler row ``i``).
    train_end_ : polars.Series
        The last time of each series of ``keys_`` in the fitted frame; :meth:`score` refuses
        held-out steps partly at or before it. Saved with the model (in ``keys.parquet``).
    n_members_, stopped_by_ : int, str
        Networks trained (``n_ensemble``, or fewer: see it); what ended training (not saved).
    conformal_ : dict
        Set by :meth:`calibrate` (saved): the out-of-sample residuals per horizon step that
        ``predict(frame, level=[...])`` turns into intervals.
    freq_ : Frequency
    baseline_ : BaselineBlend or None
        The blend kept by ``"auto"`` / ``"best"`` (``network`` and ``terms``' coefficients per
        target; ``m``, ``weights``, ``drift``, ``level`` name the main partner; saved). None:
        the network forecasts alone (``baseline="none"``, or ``"auto"`` without validation
        windows, ``validation_size=0``, or without an observed value in them).
    validation_baselines_, validation_skill_ : dict or None, float or None
        Scaled validation errors of ``model``, ``naive``, ``seasonal_naive`` (``m``, ``season``),
        ``blended``; the blend (``blend_terms``, ``pool``; ``best``: the single best blend);
        ``evidence`` (horizons) and ``pool_margin`` (None where nothing is pooled); ``skill``
        (model over seasonal naive; inf if that is exact).
    history_ : list of dict
        ``epoch``, ``train_loss``, ``val_loss``, ``lr``, ``seconds``, ``windows_per_second``.
    schema_ : dict
        Column name to dtype of the training frame, checked by :meth:`predict`.
    fitted_params_ : dict
        The parameters of the last successful fit (``get_params()`` when it started; set by
        :func:`forecaster.load` too): :meth:`predict`, :meth:`score`, ``backtest`` and
        :func:`forecaster.save` refuse when a parameter that shapes predictions differs.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> t = np.arange(400)
    >>> frame = pl.DataFrame({"time": t, "y": np.sin(2 * np.pi * t / 24)})
    >>> model = RNNForecaster(target="y", lookback=48, horizon=12, hidden_size=16,
    ...                       max_epochs=2, random_state=0, progress=False).fit(frame)
    >>> model.predict(frame).shape
    (12, 2)
    """

    def __init__(
        self,
        target: str | Sequence[str] | None = None,
        *,
        time_col: str = "time",
        id_col: str | None = None,
        covariates: str | Sequence[str] | None = None,
        future_covariates: str | Sequence[str] | None = None,
        static_covariates: str | Sequence[str] | None = None,
        lookback: int | str = "auto",
        horizon: int = 24,
        cell: str = "gru",
        head: str = "segment",
        hidden_size: int = 128,
        num_layers: int = 1,
        dropout: float = 0.1,
        segment_length: int | str = "auto",
        normalization: str = "last",
        channel_independent: bool | None = None,
        linear_skip: bool | str = "auto",
        nonlinearity: str = "tanh",
        scaling: str = "standard",
        target_transform: str = "auto",
        calendar: str | Sequence[str] | None = None,
        loss: str = "mae",
        quantiles: Sequence[float] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 256,
        max_epochs: int = 50,
        patience: int | None = 8,
        grad_clip: float | None = 1.0,
        lr_schedule: str = "none",
        ema_decay: float | str | None = "auto",
        validation_size: int | float = 0.1,
        baseline: str = "auto",
        stride: int = 1,
        windows_per_epoch: int | None = 32768,
        n_ensemble: int = 1,
        freq: str = "auto",
        missing: str = "error",
        max_time: float | None = None,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 1,
        on_oom: str = "raise",
        device: str = "auto",
        random_state: int | None = None,
        progress: bool | None = None,
    ) -> None:
        self.target = target
        self.time_col = time_col
        self.id_col = id_col
        self.covariates = covariates
        self.future_covariates = future_covariates
        self.static_covariates = static_covariates
        self.lookback = lookback
        self.horizon = horizon
        self.cell = cell
        self.head = head
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.segment_length = segment_length
        self.normalization = normalization
        self.channel_independent = channel_independent
        self.linear_skip = linear_skip
        self.nonlinearity = nonlinearity
        self.scaling = scaling
        self.target_transform = target_transform
        self.calendar = calendar
        self.loss = loss
        self.quantiles = quantiles
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.grad_clip = grad_clip
        self.lr_schedule = lr_schedule
        self.ema_decay = ema_decay
        self.validation_size = validation_size
        self.baseline = baseline
        self.stride = stride
        self.windows_per_epoch = windows_per_epoch
        self.n_ensemble = n_ensemble
        self.freq = freq
        self.missing = missing
        self.max_time = max_time
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.on_oom = on_oom
        self.device = device
        self.random_state = random_state
        self.progress = progress

    _FIT_CALL = "fit(frame)"

    _PREDICTION_PARAMS = (
        "target", "time_col", "id_col", "covariates", "future_covariates", "static_covariates",
        "lookback", "horizon", "freq", "missing", "scaling", "target_transform", "calendar",
        "baseline",
    )  # fmt: skip

    # -- checks ---------------------------------------------------------------------------
    def _check_columns(self, backtests: bool = False) -> None:
        check_output_names(check_roles(**self.column_roles()), backtests=backtests)

    def _check_relations(self) -> None:
        if self.channel_independent is False and self.head == "segment":
            raise DataValidationError(
                "channel_independent=False is not possible with head='segment', which is "
                "always channel independent. Leave channel_independent=None, or pick "
                "head='direct', 'seq2seq' or 'recursive' to mix the channels."
            )
        if self.freq is not None and str(self.freq).strip().lower() != "auto":  # declared:
            calendar_for_freq(self.calendar, Frequency.parse(self.freq))  # fit's calendar check
        if self.quantiles is not None and self.loss != "quantile":
            raise DataValidationError(
                f"quantiles={self.quantiles!r} is set with loss={self.loss!r}, which would ignore "
                "it. Pass loss='quantile' to train quantile forecasts, or leave quantiles=None "
                "(a point model gets intervals from model.calibrate(frame))."
            )

    def _network_args(self, lookback: int) -> dict[str, Any]:
        args = super()._network_args(lookback)
        args["linear_skip"] = self._linear_skip(check("linear_skip", self.linear_skip))
        if self.loss == "quantile":
            quantiles = DEFAULT_QUANTILES if self.quantiles is None else self.quantiles
            args["quantiles"] = list(check("quantiles", quantiles))
        return args

    def _network_shape(self) -> dict[str, Any]:
        calendar = self.calendar
        n_calendar = 0 if calendar in (None, "auto") else len(column_tuple(calendar))
        n_targets = len(column_tuple(self.target))
        n_future = len(column_tuple(self.future_covariates)) + 2 * n_calendar
        return self._network_config(
            {
                "n_features": n_targets + len(column_tuple(self.covariates)) + n_future,
                "n_targets": n_targets,
                "n_future": n_future,
                "lookback": 1 if self.lookback == "auto" else self.lookback,
                "horizon": self.horizon,
                "channel_independent": self.head == "segment" or bool(self.channel_independent),
            }
        )

    def column_roles(self) -> dict[str, Any]:
        """The column parameters by role (``target``, ``time_col``, ``id_col``,
        ``covariates``, ``future_covariates``, ``static_covariates``), as
        :meth:`Panel.from_frame <forecaster.data.panel.Panel.from_frame>` takes them."""
        return {
            "target": self.target,
            "time_col": self.time_col,
            "id_col": self.id_col,
            "covariates": self.covariates,
            "future_covariates": self.future_covariates,
            "static_covariates": self.static_covariates,
        }

    def model_columns(self) -> tuple[str, ...]:
        """The columns ``fit`` reads, one each: targets, covariates, future covariates, id,
        time and static covariates (the parameters checked: a column with two roles is
        refused). ``fit`` reads no other column of its frame, and the dataset fingerprint
        that tracking logs is of these columns only.

        Examples
        --------
        >>> from forecaster import RNNForecaster
        >>> RNNForecaster(target="y", time_col="t", id_col="id", covariates="x").model_columns()
        ('y', 'x', 'id', 't')
        """
        roles = check_roles(**self.column_roles())
        return tuple(dict.fromkeys(name for names in roles.values() for name in names))

    def read_frame(self, frame: Any, *, as_fitted: bool) -> tuple[pl.DataFrame, Panel]:
        """``frame`` collected, and its panel as this estimator reads it (for
        :func:`~forecaster.evaluation.backtest.backtest`: forecasts from origins inside it, so
        targets missing at its end are not warned about as a forecast's start; the points
        made up there are unscored, and said so).

        Parameters
        ----------
        frame : polars.DataFrame or polars.LazyFrame
        as_fitted : bool
            Check ``frame`` against the training schema and read it at the fitted frequency
            (the estimator must be fitted); False: read it at the ``freq`` parameter.
        """
        if as_fitted:  # a time unit of the same instants cast to the fitted one
            frame = trained_frame(frame, self.schema_, self.id_col, self.time_col)
            check_schema(frame, self.schema_, id_col=self.id_col, time_col=self.time_col)
        frame = collect_frame(frame)
        roles = {**self.column_roles(), "missing": self.missing, "ends": "origins"}  # the folds'
        panel = Panel.from_frame(frame, **roles, freq=str(self.freq_) if as_fitted else self.freq)
        return frame, panel

    # -- backtest ---------------------------------------------------------------------------
    def backtest(self, frame: pl.DataFrame | pl.LazyFrame, **kwargs: Any) -> Any:
        """Rolling-origin backtest of this estimator on ``frame`` (it is not modified).

        Parameters
        ----------
        frame : polars.DataFrame, polars.LazyFrame or pandas.DataFrame
        **kwargs
            The keywords of :func:`forecaster.evaluation.backtest`, which this is short for:
            ``folds``, ``step``, ``gap``, ``window``, ``train_size``, ``refit``, ``metrics``, ``m``,
            ``scale``, ``level``, ``quantiles``.

        Returns
        -------
        forecaster.evaluation.backtest.BacktestResult
            ``forecasts``, ``metrics`` (by fold and series), ``by_step``, ``aggregate``. Their
            times are in ``frame``'s time dtype where a fitted model read it cast to the
            trained one (another unit, or an equivalent zone): they join back on ``frame``.
        """
        if kwargs.get("refit") or not self.__dict__.get("schema_"):  # the folds' models fit
            return run_backtest(self, training_frame(frame, self.time_col), **kwargs)  # as fit
        return run_backtest(self, frame, **kwargs)  # read_frame: the fitted dtypes, times as given


LSTMForecaster = fixed_cell(RNNForecaster, "lstm", "LSTM")
GRUForecaster = fixed_cell(RNNForecaster, "gru", "GRU")
SimpleRNNForecaster = fixed_cell(RNNForecaster, "rnn", "SimpleRNN")
for _saved in (RNNForecaster, LSTMForecaster, GRUForecaster, SimpleRNNForecaster):
    register_model_class(_saved)  # forecaster.load builds them by name
for _cls in (LSTMForecaster, GRUForecaster, SimpleRNNForecaster):
    _cls.__module__ = __name__

"""Static covariates (one value per series): the network's StaticEncoder and every head's use
of it, the estimator's encoding, checks, unseen categories, persistence, clone and the
pipeline spec key."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from conftest import for_head
from sklearn.base import clone

import forecaster
from forecaster import DataValidationError, ForecasterWarning, RNNForecaster
from forecaster.data.statics import StaticEncoding, read_statics
from forecaster.nn import RecurrentNet, count_parameters, network_from_config
from forecaster.nn.checks import check_network_config, parameter_count

HEADS = ["segment", "direct", "seq2seq", "recursive"]
TINY = {
    "target": "y",
    "id_col": "id",
    "time_col": "t",
    "lookback": 8,
    "horizon": 4,
    "segment_length": 4,
    "hidden_size": 8,
    "max_epochs": 1,
    "validation_size": 0,
    "random_state": 0,
    "progress": False,
    "device": "cpu",
}


def panel_frame(n: int = 30) -> pl.DataFrame:
    """Three series with a region (categorical) and a size (numeric), constant per series."""
    t = np.arange(n)
    parts = [
        pl.DataFrame(
            {"id": key, "t": t, "y": np.sin(t / 3 + i) + i, "region": region, "size": size}
        )
        for i, (key, region, size) in enumerate([("a", "n", 1.0), ("b", "s", 5.0), ("c", "n", 9.0)])
    ]
    return pl.concat(parts)


def with_region(frame: pl.DataFrame, series: str, region: str) -> pl.DataFrame:
    changed = pl.when(pl.col("id") == series).then(pl.lit(region)).otherwise(pl.col("region"))
    return frame.with_columns(changed.alias("region"))


def network(head: str, cell: str = "gru", **kw) -> RecurrentNet:
    torch.manual_seed(0)
    config = dict(n_features=3, n_targets=2, n_future=1, lookback=8, horizon=4, hidden_size=8)
    config.update(head=head, cell=cell, segment_length=4, **kw)
    return RecurrentNet(**config).eval()


# -- network -------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("head", HEADS)
def test_every_head_uses_the_static_covariates(head, cell):
    net = network(head, cell, static_cardinalities=[3], n_static_numeric=1, num_layers=2)
    x = torch.randn(2, 8, 5)  # [2 targets | 1 past | code, number | 1 future]
    x[..., 2], x[..., 3] = 1.0, 0.5
    future = torch.randn(2, 4, 1)
    base = net(x, future)
    other_category, other_number = x.clone(), x.clone()
    other_category[..., 2] = 2.0
    other_number[..., 3] = -1.0
    assert (net(other_category, future) - base).abs().min() > 0
    assert (net(other_number, future) - base).abs().min() > 0
    # the training loss reaches the category's embedding
    net.train().training_loss(
        x, future, torch.randn(2, 4, 2), torch.nn.functional.l1_loss
    ).backward()
    grad = net.static_encoder.embeddings[0].weight.grad
    assert grad[1].abs().sum() > 0 and grad[0].abs().sum() == 0 and grad[2].abs().sum() == 0


@pytest.mark.parametrize("head", HEADS)
def test_unknown_category_starts_from_the_zero_state(head):
    net = network(head, static_cardinalities=[3])
    x = torch.randn(2, 8, 4)
    x[..., 2] = 0.0  # the unknown category: a zero embedding, the cell's zero state
    future = torch.randn(2, 4, 1)
    core = torch.cat([x[..., :2], x[..., 3:]], dim=-1)
    assert torch.equal(net(x, future), net.forecast(core, future, None))


@pytest.mark.parametrize("head", HEADS)
def test_a_network_without_statics_is_unchanged(head):
    plain, with_statics = network(head), network(head, static_cardinalities=[2], n_static_numeric=1)
    assert "static_cardinalities" not in plain.get_config() and plain.static_encoder is None
    assert not any(k.startswith("static") for k in plain.state_dict())
    shared = with_statics.state_dict()
    assert all(torch.equal(v, shared[k]) for k, v in plain.state_dict().items())  # same draws
    config = with_statics.get_config()
    assert config["static_cardinalities"] == [2] and config["n_static_numeric"] == 1
    assert parameter_count(check_network_config(config)) == count_parameters(with_statics)
    assert network_from_config(config).n_static == 2


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_seq2seq_decoder_starts_from_the_statics_state_too(cell):
    """The statics set only the encoder's first state: over a 64-step window a seq2seq
    network forgot them (the forecast did not move at all when the category changed); with
    static_at_horizon its decoder starts from them too."""
    x = torch.randn(4, 64, 2)
    x[..., 1] = 1.0
    other = x.clone()
    other[..., 1] = 2.0
    moved = {}
    for flag in (False, True):
        torch.manual_seed(0)
        net = RecurrentNet(
            n_features=1, n_targets=1, lookback=64, horizon=4, hidden_size=8, head="seq2seq",
            cell=cell, static_cardinalities=[3], static_at_horizon=flag,
        ).eval()  # fmt: skip
        moved[flag] = float((net(x) - net(other)).abs().max())
        config = net.get_config()
        assert config.get("static_at_horizon", False) is flag  # absent when off, as before
        rebuilt = network_from_config(config)
        rebuilt.load_state_dict(net.state_dict())
        assert torch.equal(rebuilt.eval()(x), net(x))
    assert moved[False] < 1e-6 and moved[True] > 1e-2, moved
    for wrong in ({"head": "direct", "static_cardinalities": [3]}, {"head": "seq2seq"}):
        with pytest.raises(DataValidationError, match="static_at_horizon=True"):
            RecurrentNet(
                n_features=1, n_targets=1, lookback=8, horizon=2, static_at_horizon=True, **wrong
            )


@pytest.mark.parametrize("head", HEADS)
def test_only_a_seq2seq_forecaster_sets_static_at_horizon(head, tmp_path):
    frame = panel_frame()
    model = RNNForecaster(**for_head(TINY, head), static_covariates=["region"])
    model.fit(frame)
    assert model.network_.static_at_horizon is (head == "seq2seq")
    loaded = forecaster.load(forecaster.save(model, tmp_path / "m"))
    assert loaded.network_.static_at_horizon is (head == "seq2seq")
    assert loaded.predict(frame).equals(model.predict(frame))


class _Stop(Exception):
    pass


def _stop_at_epoch_two(record, network):
    if record.epoch == 2:
        raise _Stop


def test_a_seq2seq_checkpoint_from_before_static_at_horizon_is_not_resumed(tmp_path):
    """A fit interrupted before the decoder started from the statics' state resumed under
    the new decoder without a word (its first epochs trained without it)."""
    from forecaster.training.checkpoint import Checkpointer, CheckpointError, read_checkpoint

    frame = panel_frame()
    params = {**for_head(TINY, "seq2seq"), "max_epochs": 4, "checkpoint_dir": str(tmp_path)}
    model = RNNForecaster(**params, static_covariates=["region"])
    with pytest.raises(_Stop):
        model.fit(frame, callbacks=[_stop_at_epoch_two])
    (path,) = tmp_path.glob("checkpoint-*.safetensors")
    state = read_checkpoint(path)
    assert state.fingerprint["static_at_horizon"] is True
    older = {k: v for k, v in state.fingerprint.items() if k != "static_at_horizon"}
    Checkpointer(path, fingerprint=older).save(state)  # as written before the change
    with pytest.raises(CheckpointError, match="static_at_horizon: checkpoint None"):
        RNNForecaster(**params, static_covariates=["region"]).fit(frame, resume=True)
    direct = {**for_head(TINY, "direct"), "max_epochs": 4, "checkpoint_dir": str(tmp_path / "d")}
    with pytest.raises(_Stop):
        RNNForecaster(**direct, static_covariates=["region"]).fit(
            frame, callbacks=[_stop_at_epoch_two]
        )
    (other,) = (tmp_path / "d").glob("checkpoint-*.safetensors")
    assert "static_at_horizon" not in read_checkpoint(other).fingerprint  # unchanged


def test_network_refuses_codes_outside_the_vocabulary():
    net = network("direct", static_cardinalities=[3])
    x = torch.randn(1, 8, 4)
    x[..., 2] = 7.0
    with pytest.raises(DataValidationError, match="integer codes from 0"):
        net(x, torch.randn(1, 4, 1))
    with pytest.raises(DataValidationError, match="static_cardinalities"):
        network("direct", static_cardinalities=[0])


# -- data ------------------------------------------------------------------------------------


def test_statics_must_be_constant_within_each_series():
    frame = panel_frame().with_columns(
        pl.when((pl.col("id") == "b") & (pl.col("t") == 5))
        .then(pl.lit("w"))
        .otherwise(pl.col("region"))
        .alias("region")
    )
    with pytest.raises(DataValidationError, match=r"'region' must have one value per series.*'b'"):
        RNNForecaster(**TINY, static_covariates=["region"]).fit(frame)
    nulls = pl.when(pl.col("id") == "c").then(None).otherwise(pl.col("size")).alias("size")
    with pytest.raises(DataValidationError, match=r"'size' has 30 null.*series 'c'"):
        read_statics(panel_frame().with_columns(nulls), id_col="id", names=["size"])
    with pytest.raises(DataValidationError, match="Static covariate 't2' has dtype Date"):
        frame = panel_frame().with_columns(pl.date(2024, 1, 1).alias("t2"))
        RNNForecaster(**TINY, static_covariates=["t2"]).fit(frame)


def test_encoding_standardises_numbers_over_series_not_within():
    encoding = StaticEncoding.fit(pl.DataFrame({"region": ["n", "s"], "size": [1.0, 3.0]}))
    assert encoding.numeric == {"size": (2.0, 1.0)} and encoding.cardinalities == [2]
    model = RNNForecaster(**TINY, static_covariates=["region", "size"]).fit(panel_frame())
    k = model.scaler_.columns_.index("size")
    assert model.scaler_.center_[:, k].tolist() == [0.0] * 3  # not scaled per series
    assert model.scaler_.scale_[:, k].tolist() == [1.0] * 3
    assert model.static_encoding_.numeric["size"][0] == pytest.approx(5.0)


# -- estimator -----------------------------------------------------------------------------


@pytest.mark.parametrize("head", HEADS)
def test_changing_a_series_category_changes_only_its_forecast(head):
    frame = panel_frame()
    model = RNNForecaster(**for_head(TINY, head), static_covariates="region").fit(frame)
    base = model.predict(frame)
    moved = model.predict(with_region(frame, "a", "s"))
    diff = (base["y"] - moved["y"]).abs().to_numpy().reshape(3, -1)
    assert diff[0].max() > 0 and diff[1:].max() == 0


def test_unseen_category_gets_the_unknown_code_with_a_warning():
    frame = panel_frame()
    model = RNNForecaster(**TINY, static_covariates=["region"]).fit(frame)
    with pytest.warns(ForecasterWarning, match=r"'region' has categories unseen.*'zz'.*'b'"):
        forecast = model.predict(with_region(frame, "b", "zz"))
    assert forecast["y"].is_finite().all()


def test_save_load_clone_and_params(tmp_path):
    frame = panel_frame()
    model = RNNForecaster(**TINY, static_covariates=["region", "size"]).fit(frame)
    path = forecaster.save(model, tmp_path / "m")
    loaded = forecaster.load(path)
    assert loaded.predict(frame).equals(model.predict(frame))
    assert loaded.static_encoding_ == model.static_encoding_
    assert loaded.get_params()["static_covariates"] == ["region", "size"]
    assert clone(model).get_params()["static_covariates"] == ["region", "size"]
    model.set_params(static_covariates=["region"])
    with pytest.raises(DataValidationError, match="static_covariates"):
        model.predict(frame)


def test_a_column_has_one_role():
    for clash in ({"covariates": "region"}, {"target": "region"}, {"id_col": "region"}):
        with pytest.raises(DataValidationError, match=r"both as .* static covariate"):
            RNNForecaster(**{**TINY, **clash}, static_covariates="region").validate_params()


def test_pipeline_spec_key(tmp_path):
    from conftest import mini_spec

    from forecaster.jobs.run import load_spec, spec_hash
    from forecaster.jobs.spec import build_estimator

    plain, static = tmp_path / "plain.toml", tmp_path / "static.toml"
    plain.write_text(mini_spec())
    static.write_text(mini_spec(series={"static_covariates": ["region"]}))
    spec, _ = load_spec(static)
    assert build_estimator(spec, progress=False).static_covariates == ["region"]
    plain_spec, _ = load_spec(plain)
    assert build_estimator(plain_spec, progress=False).static_covariates is None
    assert spec_hash(plain_spec) != spec_hash(spec)
    # a spec without the key hashes as before the key existed
    assert "static_covariates" not in plain.read_text()


def test_score_backtest_calibrate_and_many_origins_read_the_statics():
    frame = panel_frame(40)
    model = RNNForecaster(**TINY, static_covariates=["region", "size"])
    model.fit(frame.filter(pl.col("t") < 36))
    assert np.isfinite(model.score(frame))
    result = model.backtest(frame, folds=2)
    assert result.forecasts.height == 2 * 3 * 4
    many = model.predict(frame, cutoff=[30, 35])
    one = model.predict(frame, cutoff=35)["y"].to_numpy()
    np.testing.assert_allclose(many.filter(pl.col("origin") == 35)["y"], one, atol=1e-5)
    model.calibrate(frame, folds=1)
    assert model.predict(frame, level=50).columns[-2:] == ["y_lo_50", "y_hi_50"]


def test_static_covariates_of_a_single_series_are_refused():
    """One series (id_col=None) has one value of each static covariate: they were accepted
    and changed nothing; now refused before any data is read."""
    frame = panel_frame().filter(pl.col("id") == "a").drop("id")
    model = RNNForecaster(**{**TINY, "id_col": None}, static_covariates="region")
    with pytest.raises(DataValidationError, match=r"describe how series differ.*id_col=None"):
        model.fit(frame)


def test_a_static_covariate_with_one_value_in_every_series_warns():
    """A static column equal in every training series tells them apart in no way: the fit
    says so (its statistics are the same for every series)."""
    frame = panel_frame().with_columns(pl.lit(3.0).alias("size"))
    with pytest.warns(ForecasterWarning, match=r"Static covariates \['size'\] have one value"):
        RNNForecaster(**TINY, static_covariates=["region", "size"]).fit(frame)


def test_tracking_logs_the_static_covariates():
    from forecaster.tracking.records import estimator_params  # what FitLogger / log_fit log

    params = estimator_params(RNNForecaster(**TINY, static_covariates=["region", "size"]))
    assert params["static_covariates"] == '["region", "size"]'


def test_integer_categories_read_as_floats_keep_their_codes():
    encoding = StaticEncoding.fit(pl.DataFrame({"code": [1, 2, 3]}))
    with pytest.warns(ForecasterWarning, match=r"'code' has categories unseen in fit \('2.5'\)"):
        codes = encoding.transform(pl.DataFrame({"code": [1.0, 3.0, 2.5]}))
    assert codes[:, 0].tolist() == [1.0, 3.0, 0.0]


def test_a_pipeline_with_static_covariates_runs_and_refuses_varying_ones(tmp_path, capsys):
    import datetime as dt

    from conftest import mini_spec

    from forecaster.jobs.cli import main

    def project(root, vary: bool):
        (root / "data").mkdir(parents=True)
        lines = ["id,date,y,region"]
        for k, key in enumerate(("a", "b")):
            for i in range(30):
                region = "w" if vary and key == "b" and i > 20 else ("n" if key == "a" else "s")
                day = dt.date(2024, 1, 1) + dt.timedelta(days=i)
                lines.append(f"{key},{day},{10 * k + i}.5,{region}")
        (root / "data" / "prices.csv").write_text("\n".join(lines) + "\n")
        (root / "pipelines").mkdir()
        spec = root / "pipelines" / "spec.toml"
        spec.write_text(mini_spec(series={"static_covariates": ["region"]}))
        return spec

    good = project(tmp_path / "good", vary=False)
    assert main(["run", str(good), "--no-progress"]) == 0
    forecasts = list((tmp_path / "good" / "outputs").rglob("forecasts.parquet"))
    assert len(forecasts) == 1 and pl.read_parquet(forecasts[0]).height == 4
    bad = project(tmp_path / "bad", vary=True)
    assert main(["run", str(bad), "--no-progress"]) == 3
    assert "Static covariate 'region' must have one value per series" in capsys.readouterr().err


def test_columns_named_like_internal_ones_are_the_users():
    """A static covariate called ``__code__`` made fit fail with a polars SchemaError, and an
    id column called ``__series__`` made a cutoff frame fail with a DuplicateError: both
    names were literal temporary columns of a join."""
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "__series__": np.repeat(["a", "b"], 80),
            "time": np.tile(np.arange(80), 2),
            "y": rng.normal(size=160),
            "__code__": np.repeat(["p", "q"], 80),
        }
    )
    settings = {"lookback": 12, "horizon": 4, "hidden_size": 8, "max_epochs": 1}
    model = RNNForecaster(
        target="y",
        id_col="__series__",
        time_col="time",
        static_covariates="__code__",
        random_state=0,
        progress=False,
        baseline="none",
        **settings,
    ).fit(frame)
    pairs = pl.DataFrame({"__series__": ["b", "a"], "time": [60, 50]})
    forecast = model.predict(frame, cutoff=pairs)
    assert forecast["__series__"].to_list() == ["b"] * 4 + ["a"] * 4
    by_list = model.predict(frame, cutoff=[60]).filter(pl.col("__series__") == "b")
    assert forecast.head(4)["y"].to_list() == by_list["y"].to_list()


@pytest.mark.parametrize("id_col", ["__unknown__", "__observed__"])
def test_an_id_named_like_the_trailing_missing_check_columns_is_the_users(id_col):
    """An id called ``__unknown__`` failed fit with a polars DuplicateError where a series
    ends with a missing target (the check that warns about it named its columns so)."""
    frame = pl.DataFrame(
        {
            id_col: np.repeat(["a", "b"], 40),
            "time": np.tile(np.arange(40), 2),
            "y": np.r_[np.sin(np.arange(79) / 3.0), np.nan],
        }
    ).with_columns(pl.col("y").fill_nan(None))
    model = RNNForecaster(
        target="y", id_col=id_col, time_col="time", lookback=8, horizon=2, hidden_size=4,
        max_epochs=1, missing="ffill", random_state=0, progress=False,
    )  # fmt: skip
    with pytest.warns(
        ForecasterWarning, match=r"1 series ends with rows whose targets are missing"
    ):
        model.fit(frame)

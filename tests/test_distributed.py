"""Tests for forecaster.training.distributed without torchrun (the two-process run under
torchrun is in tests/test_training.py)."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
import torch
import torch.distributed as dist
from conftest import TINY_DAILY_MODEL, sine_panel

from forecaster import RNNForecaster
from forecaster.exceptions import ForecasterError, ForecasterWarning
from forecaster.training import distributed as distributed
from forecaster.training.distributed import DistributedError
from forecaster.training.step import training_compute


@pytest.fixture
def no_torchrun(monkeypatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)


def test_shard_takes_every_world_size_th_element_with_equal_counts() -> None:
    indices = np.random.default_rng(0).permutation(103)
    shards = [distributed.shard(indices, rank=r, world_size=4) for r in range(4)]
    assert {len(s) for s in shards} == {25}  # 103 // 4; the last 3 are left out
    together = np.concatenate(shards)
    assert len(np.unique(together)) == 100 and set(together) <= set(indices[:100])
    uneven = [distributed.shard(indices, rank=r, world_size=4, equal=False) for r in range(4)]
    assert sorted(np.concatenate(uneven).tolist()) == list(range(103))


def test_without_a_process_group_everything_is_one_process(no_torchrun) -> None:
    assert (distributed.rank(), distributed.world_size()) == (0, 1)
    assert distributed.is_main_process() and not distributed.is_distributed()
    assert distributed.launched_world_size() == 1
    indices = np.arange(5)
    assert distributed.shard(indices) is indices
    tensor = torch.tensor([1.0, 2.0])
    assert distributed.all_reduce_sum(tensor) is tensor and tensor.tolist() == [1.0, 2.0]
    assert distributed.any_rank(True, torch.device("cpu"))
    assert not distributed.any_rank(False, torch.device("cpu"))
    assert distributed.all_gather_objects({"a": 1}) == [{"a": 1}]
    assert distributed.init_from_env(torch.device("cpu")) == torch.device("cpu")


def test_rank_comes_from_the_environment_before_the_group_exists(monkeypatch) -> None:
    launch = {"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    for name, value in launch.items():
        monkeypatch.setenv(name, value)
    assert distributed.rank() == 1 and not distributed.is_main_process()


@pytest.mark.parametrize("value", ["two", "-1"])
def test_a_garbled_torchrun_environment_is_a_clear_error(monkeypatch, value) -> None:
    monkeypatch.setenv("WORLD_SIZE", value)
    with pytest.raises(DistributedError, match="WORLD_SIZE"):
        distributed.launched_world_size()


def test_world_size_two_without_a_rendezvous_is_a_clear_error(monkeypatch, no_torchrun) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(DistributedError, match="torchrun --nproc_per_node") as caught:
        distributed.init_from_env(torch.device("cpu"))
    assert isinstance(caught.value, ForecasterError)
    assert not distributed.is_distributed()


def test_seed_this_rank_leaves_a_single_process_stream_alone(no_torchrun) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(5)
        expected = torch.rand(3)
        torch.manual_seed(5)
        distributed.seed_this_rank()
        assert torch.equal(torch.rand(3), expected)


def test_seed_this_rank_gives_other_ranks_their_own_stream(monkeypatch) -> None:
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    with torch.random.fork_rng():
        torch.manual_seed(5)
        main_stream = torch.rand(3)
        torch.manual_seed(5)
        distributed.seed_this_rank()
        assert torch.initial_seed() == 5 + 7919
        assert not torch.equal(torch.rand(3), main_stream)


def test_seed_this_rank_seeds_no_other_device(monkeypatch, device_seeding_calls) -> None:
    """A rank's stream is its CPU generator's and its training device's (on the CPU: no
    device's); torch.manual_seed seeded every GPU's."""
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(5)
        distributed.seed_this_rank(torch.device("cpu"))
        assert torch.initial_seed() == 5 + 7919
    assert device_seeding_calls == []


def _short_series_fit() -> None:
    frame = pl.concat([sine_panel(2, 60), sine_panel(1, 5).with_columns(id=pl.lit("tiny"))])
    RNNForecaster(**TINY_DAILY_MODEL).fit(frame)


@pytest.mark.parametrize("this_rank", [0, 1])
def test_fit_warns_on_rank_0_only(monkeypatch, no_torchrun, this_rank) -> None:
    """Under torchrun every rank fits the same model on the same data: rank 0 reports its
    ForecasterWarnings, the other ranks (which printed every one again) do not, as the
    ``forecaster`` command's other ranks do not."""
    monkeypatch.setattr(distributed, "rank", lambda: this_rank)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _short_series_fit()
    ours = [str(w.message) for w in caught if issubclass(w.category, ForecasterWarning)]
    if this_rank == 0:
        assert any("shorter than" in text for text in ours), ours
    else:
        assert ours == []


def test_data_parallel_training_ignores_only_ddps_grad_stride_note_and_adds_it_once(
    no_torchrun,
) -> None:
    """A data-parallel fit ignores DDP's note about gradient strides raised by
    ``torch.autograd`` only (it ignored the text from any module, a user's model's included)
    and adds that filter once per process (adding it at every fit cleared Python's record of
    the warnings shown, so the default filter repeated them)."""
    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        with warnings.catch_warnings():
            network = torch.nn.Linear(2, 1)
            training_compute(
                network, torch.nn.functional.mse_loss, torch.device("cpu"), data_parallel=True
            )
            after_first = list(warnings.filters)
            training_compute(
                network, torch.nn.functional.mse_loss, torch.device("cpu"), data_parallel=True
            )
            assert warnings.filters == after_first  # not added (nor moved) again
            notes = [f for f in after_first if f[1] is not None and "Grad strides" in f[1].pattern]
            assert len(notes) == 1
            assert notes[0][3] is not None and notes[0][3].match("torch.autograd.graph")
            assert not notes[0][3].match("my_model")
    finally:
        dist.destroy_process_group()

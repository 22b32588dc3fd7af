"""``train(..., init_from=RUN)``: a new run starts from another run's weights (a warm start)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from domrand.errors import CheckpointError
from domrand.policies.checkpoint import load_policy
from domrand.policies.config import TrainConfig
from domrand.policies.train import train

CFG = TrainConfig(total_steps=128, num_envs=2, num_steps=64, hidden=8, epochs=1, batch_size=64,
                  seq_len=16, checkpoint_every=10**9)  # fmt: skip


def test_a_warm_start_begins_from_the_source_weights(tmp_path: Path) -> None:
    train(CFG, tmp_path / "a", progress=False)
    source, _ = load_policy(tmp_path / "a")
    # a learning rate of ~0 leaves the weights where they started
    train(CFG.replace(seed=1, learning_rate=1e-12), tmp_path / "b", progress=False,
          init_from=tmp_path / "a")  # fmt: skip
    warm, _ = load_policy(tmp_path / "b")
    train(CFG.replace(seed=1, learning_rate=1e-12), tmp_path / "c", progress=False)
    cold, _ = load_policy(tmp_path / "c")
    for name, value in source.state_dict().items():
        if name.startswith("obs_norm"):
            continue  # the normalizer goes on counting the new run's observations
        torch.testing.assert_close(warm.state_dict()[name], value, atol=1e-6, rtol=0)
    assert not torch.allclose(cold.actor.weight, source.actor.weight)
    assert warm.obs_norm.count > source.obs_norm.count  # carried over, then updated


def test_a_warm_start_needs_the_same_network(tmp_path: Path) -> None:
    train(CFG, tmp_path / "a", progress=False)
    with pytest.raises(CheckpointError, match="another network"):
        train(CFG.replace(hidden=16), tmp_path / "b", progress=False, init_from=tmp_path / "a")

"""The Active-DR discriminator separates a separable case and rewards "randomized-looking" data."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from domrand.errors import ConfigError
from domrand.guided.discriminator import Discriminator, DiscriminatorConfig, transition_features


def _data(seed: int, n: int = 600, dim: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    randomized = rng.normal(size=(n, dim)) + np.r_[3.0, 0.0, -2.0, 0.0, 1.0, 0.0]
    reference = rng.normal(size=(n, dim)) * 0.7
    return randomized.astype(np.float32), reference.astype(np.float32)


def _disc(dim: int = 6, updates: int = 150) -> Discriminator:
    cfg = DiscriminatorConfig(updates=updates)
    return Discriminator(dim, cfg, torch.Generator().manual_seed(0))


def test_separates_a_clearly_separable_case() -> None:
    disc = _disc()
    rand, ref = _data(0)
    disc.fit(rand, ref)
    test_rand, test_ref = _data(1)  # held-out samples of the same two distributions
    acc = 0.5 * (
        np.mean(disc.probability(test_rand) > 0.5) + np.mean(disc.probability(test_ref) < 0.5)
    )
    assert acc > 0.95
    # the particle reward: log(mean D) - log 0.5, positive for randomized-looking trajectories
    assert disc.reward(test_rand[:50]) > 0.5
    assert disc.reward(test_ref[:50]) < -0.5
    assert disc.reward(test_rand[:50]) <= math.log(2.0)


def test_untrained_reward_is_near_zero_and_empty_trajectory_is_zero() -> None:
    disc = _disc()
    rand, _ = _data(0)
    assert abs(disc.reward(rand[:100])) < 0.3
    assert disc.reward(rand[:0]) == 0.0


def test_transition_features_are_s_a_next_s() -> None:
    obs = np.arange(8, dtype=np.float32).reshape(4, 2)  # T + 1 = 4 observations
    act = np.array([[10.0], [11.0], [12.0]])
    x = transition_features(obs, act)
    assert x.shape == (3, 5)
    np.testing.assert_array_equal(x[1], [2, 3, 11, 4, 5])


def test_state_round_trips_through_a_weights_only_checkpoint() -> None:
    disc = _disc(updates=5)
    rand, ref = _data(0)
    disc.fit(rand, ref)
    buf = io.BytesIO()
    torch.save(disc.full_state(), buf)
    buf.seek(0)
    other = _disc(updates=5)
    other.load_full_state(torch.load(buf, weights_only=True))
    np.testing.assert_array_equal(other.probability(rand[:20]), disc.probability(rand[:20]))
    # the optimizer and the minibatch generator came along: the next fit is identical too
    disc.fit(rand, ref)
    other.fit(rand, ref)
    np.testing.assert_array_equal(other.probability(ref[:20]), disc.probability(ref[:20]))


def test_bad_settings_and_inputs_raise_typed_errors() -> None:
    with pytest.raises(ConfigError):
        DiscriminatorConfig(batch_size=0)
    with pytest.raises(ConfigError):
        DiscriminatorConfig(lr=float("nan"))
    with pytest.raises(ConfigError):
        _disc().fit(np.zeros((0, 6)), np.zeros((4, 6)))

"""``reset(options={"state": obs})``: an episode can start from a given (e.g. real) state."""

from __future__ import annotations

import numpy as np
import pytest

import domrand


@pytest.mark.parametrize(("env_id", "act_dim"), [("domrand/CartPole-v0", 1),
                                                 ("domrand/Pusher-v0", 2)])  # fmt: skip
def test_a_trajectory_replays_from_its_first_observation(env_id: str, act_dim: int) -> None:
    a, b = domrand.make(env_id, seed=3), domrand.make(env_id, seed=99)
    actions = np.random.default_rng(0).uniform(-1, 1, (40, act_dim)).astype(np.float32)
    first, _ = a.reset()
    real = [first] + [a.step(u)[0] for u in actions]
    start, _ = b.reset(options={"state": first})
    np.testing.assert_allclose(start, first, atol=1e-6)
    replay = [start] + [b.step(u)[0] for u in actions]
    # float32 observations restore the float64 state to ~1e-8; the rest is identical physics
    np.testing.assert_allclose(np.array(replay), np.array(real), atol=1e-5)
    a.close()
    b.close()


def test_the_state_option_leaves_seeded_resets_unchanged() -> None:
    a, b = domrand.make("domrand/Pusher-v0", seed=5), domrand.make("domrand/Pusher-v0", seed=5)
    np.testing.assert_array_equal(a.reset()[0], b.reset()[0])
    a.close()
    b.close()


def test_bad_states_and_envs_without_the_hook_are_value_errors() -> None:
    env = domrand.make("domrand/CartPole-v0")
    with pytest.raises(ValueError, match="x_dot"):
        env.reset(options={"state": [0.0, 0.0]})
    env.close()
    kuka = domrand.make("domrand/KukaReach-v0")
    with pytest.raises(ValueError, match="cannot be reset to a given state"):
        kuka.reset(options={"state": np.zeros(kuka.observation_space.shape)})
    kuka.close()

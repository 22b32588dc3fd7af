"""``reset(options={"state": obs})``: an episode can start from a given (e.g. real) state."""

from __future__ import annotations

import numpy as np
import pytest

import domrand


@pytest.mark.parametrize(("env_id", "act_dim"), [("domrand/CartPole-v0", 1),
                                                 ("domrand/Pusher-v0", 2),
                                                 ("domrand/KukaReach-v0", 6)])  # fmt: skip
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
    with pytest.raises(ValueError, match="27 observation entries"):
        kuka.reset(options={"state": np.zeros(26)})
    kuka.close()
    loc = domrand.make("domrand/Localization-v0")
    with pytest.raises(ValueError, match="cannot be reset to a given state"):
        loc.reset(options={"state": np.zeros(loc.observation_space.shape)})
    loc.close()


def test_a_contact_rich_replay_does_not_depend_on_what_the_env_did_before() -> None:
    """A push (tip into puck, contacts made and broken) replayed from one state in envs with
    different histories and seeds gives bit-identical observations: the broadphase pairs are
    sorted and a state reset draws nothing. (Unsorted, successive replays alternated between two
    paths, up to 0.6 apart after 40 steps.)"""
    env_id = "domrand/Pusher-v0"
    rec = domrand.make(env_id, seed=0)
    obs, _ = rec.reset()
    states, actions = [obs], []
    for _ in range(40):  # drive the tip into the puck
        u = np.clip((obs[4:6] - obs[0:2]) / 0.04, -1.0, 1.0).astype(np.float32)
        obs = rec.step(u)[0]
        states.append(obs)
        actions.append(u)
    rec.close()
    envs = [domrand.make(env_id, seed=s) for s in (1, 2)]
    rng = np.random.default_rng(7)
    envs[1].reset()
    for _ in range(5):  # a different history for the second env
        envs[1].step(rng.uniform(-1, 1, 2).astype(np.float32))

    def replay(env: object) -> np.ndarray:
        out = []
        for start in (0, 10, 20):  # restarts mid-push, as SimOpt's multiple shooting does
            o, _ = env.reset(options={"state": states[start], "domain": {"puck.mass": 0.3}})  # type: ignore[attr-defined]
            out.append(o)
            out += [env.step(u)[0] for u in actions[start : start + 10]]  # type: ignore[attr-defined]
        return np.array(out)

    first = replay(envs[0])
    for env in (envs[0], envs[1], envs[0]):
        np.testing.assert_array_equal(replay(env), first)
    for env in envs:
        env.close()

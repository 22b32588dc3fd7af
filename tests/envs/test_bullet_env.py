"""BulletEnv: the common step-phase knobs, action handling, knob access and physics faults.

CartPole is the concrete env used; the behaviour tested here lives in ``envs/bullet_env.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import gymnasium as gym
import numpy as np
import pytest

import domrand
from domrand.envs import BulletEnv, CartPoleEnv
from domrand.errors import KnobError

ENV_ID = "domrand/CartPole-v0"
ACTIONS = np.random.default_rng(123).uniform(-1.0, 1.0, size=(25, 1)).astype(np.float32)
#: a domain where zero action keeps the pole up for a long time (no gravity, no friction)
FLOATING = {"gravity": 0.0}


@pytest.fixture
def env() -> Iterator[gym.Env]:
    e = domrand.make(ENV_ID)
    yield e
    e.close()


def rollout(
    env: gym.Env,
    domain: dict | None = None,
    actions: Sequence[np.ndarray] | np.ndarray = ACTIONS,
    seed: int = 7,
) -> np.ndarray:
    """Observations of a seeded open-loop rollout, stopping at the end of the episode."""
    obs, _ = env.reset(seed=seed, options={"domain": dict(domain or {})})
    traj = [obs]
    for a in actions:
        obs, _, terminated, truncated, _ = env.step(np.asarray(a, dtype=np.float32))
        traj.append(obs)
        if terminated or truncated:
            break
    return np.stack(traj)


# ---------------------------------------------------------------------- construction
def test_cartpole_is_a_bullet_env_with_common_knobs(env: gym.Env) -> None:
    u = env.unwrapped
    assert isinstance(u, BulletEnv)
    for name in ("gravity", "sim.timestep", "action.delay", "action.noise", "obs.noise"):
        assert name in u.knobs
    assert u.domain == u.nominal_domain == u.knobs.nominal()


def test_bad_render_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="render_mode"):
        CartPoleEnv(render_mode="human")


def test_close_twice_is_allowed() -> None:
    e = CartPoleEnv()
    e.close()
    e.close()


# ---------------------------------------------------------------------- knob access
def test_set_knobs_validates_and_applies(env: gym.Env) -> None:
    u = env.unwrapped
    env.reset(seed=0)
    u.set_knobs({"motor.gain": 20.0})
    assert u.domain["motor.gain"] == 20.0
    with pytest.raises(KnobError, match=r"did you mean 'motor\.gain'"):
        u.set_knobs({"motor.gian": 20.0})
    with pytest.raises(KnobError, match="outside valid range"):
        u.set_knobs({"obs.noise": -1.0})
    with pytest.raises(KnobError, match="outside valid range"):
        u.set_knobs({"pole.mass": float("nan")})
    with pytest.raises(KnobError, match="whole numbers"):
        u.set_knobs({"action.delay": 1.5})


def test_unpinned_knobs_revert_to_nominal_at_reset(env: gym.Env) -> None:
    u = env.unwrapped
    _, info = env.reset(seed=0, options={"domain": {"pole.mass": 0.5, "action.delay": 3}})
    assert info["domain"]["pole.mass"] == 0.5
    assert info["domain"]["action.delay"] == 3
    u.set_knobs({"motor.gain": 50.0})
    _, info = env.reset(seed=0)
    assert info["domain"] == u.nominal_domain
    assert u._p.getDynamicsInfo(u._cartpole, 1)[0] == pytest.approx(0.1)


def test_reset_applies_pinned_values_to_the_simulation(env: gym.Env) -> None:
    u = env.unwrapped
    env.reset(seed=0, options={"domain": {"pole.mass": 0.4, "cart.mass": 2.5}})
    assert u._p.getDynamicsInfo(u._cartpole, 1)[0] == pytest.approx(0.4)
    assert u._p.getDynamicsInfo(u._cartpole, 0)[0] == pytest.approx(2.5)


def test_integer_knob_is_coerced_to_int(env: gym.Env) -> None:
    _, info = env.reset(seed=0, options={"domain": {"action.delay": 2.0}})
    assert info["domain"]["action.delay"] == 2
    assert isinstance(info["domain"]["action.delay"], int)


# ---------------------------------------------------------------------- actions
def test_wrong_action_length_is_rejected(env: gym.Env) -> None:
    env.reset(seed=0)
    with pytest.raises(ValueError, match="expected 1"):
        env.step(np.zeros(2, dtype=np.float32))


def test_out_of_bounds_actions_are_clipped(env: gym.Env) -> None:
    big = np.sign(ACTIONS) * 5.0
    np.testing.assert_array_equal(rollout(env, actions=big), rollout(env, actions=np.sign(ACTIONS)))


def test_nan_action_acts_as_zero(env: gym.Env) -> None:
    nan = np.full((10, 1), np.nan, dtype=np.float32)
    zero = np.zeros((10, 1), dtype=np.float32)
    traj = rollout(env, actions=nan)
    assert np.all(np.isfinite(traj))
    np.testing.assert_array_equal(traj, rollout(env, actions=zero))


@pytest.mark.parametrize("delay", [1, 3])
def test_action_delay_shifts_actions_and_pads_with_zero(env: gym.Env, delay: int) -> None:
    """With delay N the env applies action t-N; the first N steps apply zero force."""
    delayed = rollout(env, {"action.delay": delay})
    shifted = np.concatenate([np.zeros((delay, 1), np.float32), ACTIONS[:-delay]])
    reference = rollout(env, actions=shifted)
    n = min(len(delayed), len(reference))
    np.testing.assert_array_equal(delayed[:n], reference[:n])
    # ... and it is not simply the undelayed rollout
    assert not np.array_equal(delayed[:n], rollout(env)[:n])


def test_action_noise_is_applied_before_clipping(env: gym.Env) -> None:
    """Huge action noise still cannot push harder than a full +-1 action."""
    zero = np.zeros((1,), np.float32)
    obs0, _ = env.reset(seed=3, options={"domain": {"gravity": 0.0}})
    full, *_ = env.step(np.ones(1, np.float32))
    max_dv = abs(full[1] - obs0[1])
    obs, _ = env.reset(seed=3, options={"domain": {"gravity": 0.0, "action.noise": 10.0}})
    dvs = []
    for _ in range(20):
        nxt, *_ = env.step(zero)
        dvs.append(abs(nxt[1] - obs[1]))
        obs = nxt
    assert max(dvs) <= max_dv * 1.05
    assert max(dvs) > 0.5 * max_dv  # noise of std 10 saturates the actuator often


# ---------------------------------------------------------------------- observations
def test_obs_bias_shifts_every_entry_by_exactly_the_bias(env: gym.Env) -> None:
    clean = rollout(env)
    biased = rollout(env, {"obs.bias": 0.75})
    assert clean.shape == biased.shape
    np.testing.assert_allclose(biased - clean, 0.75, atol=1e-6)


def test_obs_noise_has_the_requested_std(env: gym.Env) -> None:
    std, bias = 0.1, -0.3
    zero = np.zeros((150, 1), np.float32)
    clean = rollout(env, FLOATING, actions=zero)
    noisy = rollout(env, {**FLOATING, "obs.noise": std, "obs.bias": bias}, actions=zero)
    assert clean.shape == noisy.shape == (151, 4)  # the dynamics are untouched by obs noise
    err = (noisy.astype(np.float64) - clean).ravel()
    assert abs(err.mean() - bias) < 4 * std / math.sqrt(err.size)
    assert err.std() == pytest.approx(std, rel=0.1)
    # fresh noise every step, not one draw per episode
    assert len(np.unique(np.round(err, 6))) > 0.9 * err.size


def test_observation_is_float32_and_in_space(env: gym.Env) -> None:
    obs, _ = env.reset(seed=0, options={"domain": {"obs.noise": 0.5}})
    assert obs.dtype == np.float32
    assert env.observation_space.contains(obs)


# ---------------------------------------------------------------------- sim.timestep
@pytest.mark.parametrize("dt", [1e-4, 0.001, 0.004, 0.0099, 0.0101, 0.0133, 0.0134, 0.02])
def test_sim_timestep_never_changes_the_control_period(env: gym.Env, dt: float) -> None:
    """A push lasts one control period (0.02 s) whatever the physics substep."""
    u = env.unwrapped
    push = np.ones((5, 1), np.float32)
    ref = rollout(env, FLOATING, actions=push)
    traj = rollout(env, {**FLOATING, "sim.timestep": dt}, actions=push)
    assert u._substeps * u._p.getPhysicsEngineParameters()["fixedTimeStep"] == pytest.approx(
        u.control_period
    )
    assert u._p.getPhysicsEngineParameters()["fixedTimeStep"] <= dt * (1 + 1e-9)
    # same velocity gain per control step, up to integration error
    np.testing.assert_allclose(traj[-1, 1] - traj[0, 1], ref[-1, 1] - ref[0, 1], rtol=0.02)


# ---------------------------------------------------------------------- physics faults
def _run_until_done(env: gym.Env, steps: int = 5) -> tuple[np.ndarray, bool, dict]:
    obs, terminated, info = None, False, {}
    for _ in range(steps):
        obs, _, terminated, truncated, info = env.step(np.zeros(1, np.float32))
        if terminated or truncated:
            break
    return obs, terminated, info


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e9])
def test_physics_fault_ends_episode_and_next_reset_rebuilds_the_scene(
    monkeypatch: pytest.MonkeyPatch, bad: float
) -> None:
    domain = {"cart.friction": 1.0, "pole.damping": 0.05, "gravity": 7.0, "sim.timestep": 0.005}
    env = domrand.make(ENV_ID, domain=domain)
    fresh = domrand.make(ENV_ID, domain=domain)
    u = env.unwrapped
    real_state = u._state
    armed = {"on": False}

    def faulty_state() -> tuple[float, ...]:
        state = real_state()
        if armed["on"]:
            armed["on"] = False
            return (state[0], state[1], bad, state[3])
        return state

    monkeypatch.setattr(u, "_state", faulty_state)
    env.reset(seed=1)
    env.step(np.zeros(1, np.float32))
    armed["on"] = True
    obs, reward, terminated, truncated, info = env.step(np.zeros(1, np.float32))
    assert info.get("physics_fault") is True
    assert terminated is True and truncated is False
    assert reward == 0.0
    assert obs.shape == (4,) and obs.dtype == np.float32 and np.all(np.isfinite(obs))
    # The next episode is normal again: one body, knobs re-applied, bit-identical to a fresh env.
    after = rollout(env, seed=11)
    assert u._p.getNumBodies() == 1
    np.testing.assert_array_equal(after, rollout(fresh, seed=11))
    _, _, info = _run_until_done(env)
    assert "physics_fault" not in info
    env.close()
    fresh.close()


EXTREMES = [
    {"cart.mass": 1e-6, "pole.mass": 1e-6, "motor.gain": 1000.0, "sim.timestep": 0.02},
    {"pole.mass": 1e-6, "pole.damping": 10.0, "sim.timestep": 0.02, "gravity": 100.0},
    {"cart.mass": 100.0, "pole.mass": 10.0, "motor.gain": 1000.0, "cart.friction": 50.0},
    {"cart.mass": 1e-6, "motor.gain": 1000.0, "action.noise": 10.0, "action.delay": 20},
]


@pytest.mark.parametrize("domain", EXTREMES)
def test_extreme_valid_knobs_never_leak_non_finite_observations(domain: dict) -> None:
    """Bang-bang control at the edges of every range: each step is finite or a flagged fault."""
    env = domrand.make(ENV_ID).unwrapped  # no TimeLimit: keep stepping past termination
    env.reset(seed=0, options={"domain": domain})
    for t in range(120):
        obs, _, terminated, _, info = env.step(np.array([1.0 if (t // 3) % 2 else -1.0]))
        if info.get("physics_fault"):
            assert terminated
            env.reset(seed=0, options={"domain": domain})
        assert np.all(np.isfinite(obs))
    env.close()

"""domrand/CartPole-v0: every knob has an effect, in the physical direction; gymnasium's checks."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import domrand
import domrand.envs.cartpole as cartpole_module
from domrand.envs import CartPoleEnv
from domrand.knobs import Knob

ENV_ID = "domrand/CartPole-v0"
ACTIONS = np.random.default_rng(123).uniform(-1.0, 1.0, size=(25, 1)).astype(np.float32)


def _knob_names() -> tuple[str, ...]:
    """Read from the env itself, so a new knob is tested automatically."""
    probe = CartPoleEnv()
    try:
        return tuple(probe.knobs)
    finally:
        probe.close()


KNOB_NAMES = _knob_names()


@pytest.fixture(scope="module")
def env() -> Iterator[gym.Env]:
    e = domrand.make(ENV_ID)
    yield e
    e.close()


@pytest.fixture(scope="module")
def raw() -> Iterator[CartPoleEnv]:
    """The bare env: no time limit, and it keeps stepping past termination (for physics checks)."""
    e = CartPoleEnv()
    yield e
    e.close()


def rollout(
    env: gym.Env,
    domain: dict | None = None,
    actions: np.ndarray = ACTIONS,
    seed: int = 7,
    until_done: bool = True,
) -> np.ndarray:
    """Observations of a seeded open-loop rollout, stopping at the end of the episode."""
    obs, _ = env.reset(seed=seed, options={"domain": dict(domain or {})})
    traj = [obs]
    for a in actions:
        obs, _, terminated, truncated, _ = env.step(a)
        traj.append(obs)
        if until_done and (terminated or truncated):
            break
    return np.stack(traj)


def clearly_different(knob: Knob) -> float:
    """A valid value far from nominal: 3x (or 1/3x) nominal, or 10% into the range from 0."""
    if knob.nominal != 0:
        value = knob.nominal * 3.0
        if not knob.contains(value):
            value = knob.nominal / 3.0
    else:
        top = knob.high if math.isfinite(knob.high) and knob.high > knob.nominal else knob.low
        top = top if math.isfinite(top) else knob.nominal + 10.0
        value = knob.nominal + 0.1 * (top - knob.nominal)
    if knob.integer:
        value = float(max(round(value), knob.nominal + 1))
    assert knob.contains(value), (knob.name, value)
    return value


def test_the_knob_list_is_the_documented_one() -> None:
    required = {
        "cart.mass",
        "pole.mass",
        "cart.friction",
        "pole.damping",
        "motor.gain",
        "action.delay",
        "action.noise",
        "obs.noise",
        "gravity",
        "sim.timestep",
    }
    assert required <= set(KNOB_NAMES)


def test_docstring_has_the_required_sections_and_names_every_knob() -> None:
    doc = cartpole_module.__doc__ or ""
    sections = ("Description:", "Observation:", "Action:", "Reward:", "Knobs:", "Version history:")
    for section in sections:
        assert section in doc
    for name in KNOB_NAMES:
        assert f"``{name}``" in doc


@pytest.mark.parametrize("name", KNOB_NAMES)
def test_every_knob_changes_the_physics_or_the_observation(env: gym.Env, name: str) -> None:
    knob = env.unwrapped.knobs[name]
    value = clearly_different(knob)
    base = rollout(env)
    np.testing.assert_array_equal(base, rollout(env))  # noise floor: exactly zero
    _, info = env.reset(seed=7, options={"domain": {name: value}})
    assert info["domain"][name] == pytest.approx(value)
    changed = rollout(env, {name: value})
    n = min(len(base), len(changed))
    differs = len(base) != len(changed) or float(np.max(np.abs(base[:n] - changed[:n]))) > 1e-4
    assert differs, f"{name}={value} (nominal {knob.nominal}) left the rollout unchanged"


# ---------------------------------------------------------------------- physical directions
def _push(raw: CartPoleEnv, domain: dict, steps: int) -> np.ndarray:
    """Full push for ``steps`` control steps without gravity, past any termination."""
    push = np.ones((steps, 1), np.float32)
    return rollout(raw, {"gravity": 0.0, **domain}, actions=push, until_done=False)


def _velocity_gain(raw: CartPoleEnv, domain: dict) -> float:
    traj = _push(raw, domain, 1)
    return float(traj[-1, 1] - traj[0, 1])


def test_heavier_pole_responds_differently_to_the_same_push(raw: CartPoleEnv) -> None:
    light = _push(raw, {}, 5)
    heavy = _push(raw, {"pole.mass": 2.0}, 5)
    # a heavier pole adds inertia (a rod hinged at its end adds a quarter of its mass to the
    # cart's effective mass): the same push accelerates the cart less
    assert heavy[-1, 1] - heavy[0, 1] < 0.8 * (light[-1, 1] - light[0, 1])


def test_higher_motor_gain_accelerates_the_cart_more(raw: CartPoleEnv) -> None:
    dv = [_velocity_gain(raw, {"motor.gain": g}) for g in (5.0, 10.0, 20.0)]
    assert 0 < dv[0] < dv[1] < dv[2]
    assert dv[2] / dv[1] == pytest.approx(2.0, rel=0.05)  # force is gain * action


def test_heavier_cart_accelerates_less(raw: CartPoleEnv) -> None:
    assert _velocity_gain(raw, {"cart.mass": 4.0}) < 0.5 * _velocity_gain(raw, {})


def test_cart_friction_makes_the_cart_move_less(raw: CartPoleEnv) -> None:
    def travel(friction: float) -> tuple[float, float]:
        traj = _push(raw, {"cart.friction": friction}, 20)
        return abs(float(traj[-1, 0] - traj[0, 0])), abs(float(traj[-1, 1]))

    (free, _), (some, _), (stuck, v_stuck) = travel(0.0), travel(5.0), travel(11.0)
    assert free > some > stuck
    # Coulomb friction above the 10 N push: the cart stops within a step of its small
    # initial velocity and never slides
    assert stuck < 0.002
    assert v_stuck < 1e-6


def test_pole_damping_makes_the_angular_speed_decay(env: gym.Env) -> None:
    zero = np.zeros((25, 1), np.float32)
    free = rollout(env, {"gravity": 0.0}, actions=zero)
    damped = rollout(env, {"gravity": 0.0, "pole.damping": 0.5}, actions=zero)
    assert abs(free[0, 3]) > 1e-3  # the seeded start spins the pole a little
    assert abs(free[-1, 3]) > 0.5 * abs(free[0, 3])
    assert abs(damped[-1, 3]) < 0.01 * abs(damped[0, 3])


def test_without_gravity_the_pole_does_not_fall(env: gym.Env) -> None:
    zero = np.zeros((100, 1), np.float32)
    floating = rollout(env, {"gravity": 0.0}, actions=zero)
    falling = rollout(env, actions=zero)
    assert len(floating) == 101  # never terminated
    assert np.max(np.abs(floating[:, 2])) < CartPoleEnv.theta_limit
    assert np.max(np.abs(floating[:, 3])) < 0.1
    assert len(falling) < 101  # with gravity the same start falls over
    assert abs(falling[-1, 2]) > CartPoleEnv.theta_limit


def test_stronger_gravity_makes_the_pole_fall_sooner(env: gym.Env) -> None:
    zero = np.zeros((200, 1), np.float32)
    assert len(rollout(env, {"gravity": 30.0}, actions=zero)) < len(rollout(env, actions=zero))


def test_mass_changes_never_compound(env: gym.Env) -> None:
    u = env.unwrapped
    inertia0 = u._p.getDynamicsInfo(u._cartpole, 1)[2]
    for mass in (0.5, 2.0, 0.05, 0.1):
        env.reset(seed=0, options={"domain": {"pole.mass": mass}})
        info = u._p.getDynamicsInfo(u._cartpole, 1)
        assert info[0] == pytest.approx(mass)
        np.testing.assert_allclose(info[2], np.asarray(inertia0) * mass / 0.1, rtol=1e-9)


# ---------------------------------------------------------------------- task semantics
def test_reset_state_is_small_and_seeded(env: gym.Env) -> None:
    a, _ = env.reset(seed=5)
    b, _ = env.reset(seed=5)
    c, _ = env.reset(seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(np.abs(a) <= 0.05)


def test_reward_termination_and_truncation() -> None:
    env = domrand.make(ENV_ID)
    env.reset(seed=0)
    steps, total = 0, 0.0
    while True:
        obs, r, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
        steps, total = steps + 1, total + r
        if terminated or truncated:
            break
    assert terminated and not truncated
    assert total == steps
    assert abs(obs[2]) > CartPoleEnv.theta_limit or abs(obs[0]) > CartPoleEnv.x_limit
    # a pole that cannot fall lasts the full 500 steps and is truncated, not terminated
    env.reset(seed=0, options={"domain": {"gravity": 0.0, "pole.damping": 1.0}})
    for t in range(500):
        _, r, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
        assert not terminated
        assert truncated == (t == 499)
    env.close()


def test_render_rgb_array() -> None:
    env = domrand.make(ENV_ID, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    assert frame.std() > 0  # not a blank image
    env.close()


# ---------------------------------------------------------------------- gymnasium's checker
MAKE_VARIANTS = {
    "no spec": {},
    "default spec": {"spec": domrand.default_spec_path(ENV_ID)},
    "reality laggy": {"reality": "laggy"},
}
#: legitimate: the wrapper is what we check on purpose, and positions/velocities are unbounded
EXPECTED_WARNINGS = ("is different from the unwrapped version", "infinity")


def _check(env: gym.Env, **kwargs: bool) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, **kwargs)
    unexpected = [
        str(w.message)
        for w in caught
        if not any(text in str(w.message) for text in EXPECTED_WARNINGS)
    ]
    assert not unexpected


@pytest.mark.parametrize("kwargs", MAKE_VARIANTS.values(), ids=MAKE_VARIANTS.keys())
def test_check_env_passes_on_the_wrapper(kwargs: dict) -> None:
    env = domrand.make(ENV_ID, **kwargs)
    _check(env, skip_render_check=True, skip_close_check=True)
    env.close()


@pytest.mark.parametrize("kwargs", MAKE_VARIANTS.values(), ids=MAKE_VARIANTS.keys())
def test_check_env_passes_on_the_unwrapped_env(kwargs: dict) -> None:
    env = domrand.make(ENV_ID, **kwargs)
    _check(env.unwrapped)
    env.close()


@pytest.mark.parametrize("kwargs", MAKE_VARIANTS.values(), ids=MAKE_VARIANTS.keys())
def test_check_env_full_on_the_wrapper(kwargs: dict) -> None:
    env = domrand.make(ENV_ID, **kwargs)
    try:
        _check(env)
        again = gym.make(env.spec)
        assert isinstance(again, domrand.DomainRandomization)
        again.close()
    finally:
        env.close()

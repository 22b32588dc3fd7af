"""domrand/Pusher-v0 (and PusherPlace-v0): every knob acts, physical directions, feasibility,
seeding, checks."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import domrand
import domrand.envs.pusher as pusher_module
from domrand.envs._bullet import pybullet
from domrand.envs.pusher import PusherEnv, PusherPlaceEnv, push_target
from domrand.knobs import Knob
from domrand.spec import load_domain, load_spec

ENV_ID = "domrand/Pusher-v0"
ENABLERS = {"push.force": {"push.rate": 20.0}, "push.rate": {"push.force": 10.0}}
PROBES = {"push.rate": 10.0}  # 1/3 push per second may give no push at all in 2 s


def _knob_names() -> tuple[str, ...]:
    probe = PusherEnv()
    try:
        return tuple(probe.knobs)
    finally:
        probe.close()


KNOB_NAMES = _knob_names()


def scripted(obs: np.ndarray) -> np.ndarray:
    """The scripted push as a servo target (Pusher-v0's action is a position offset)."""
    tip, target = push_target(obs)
    return np.clip((target - tip) / PusherEnv.max_delta, -1.0, 1.0).astype(np.float32)


@pytest.fixture(scope="module")
def env() -> Iterator[gym.Env]:
    e = domrand.make(ENV_ID)
    yield e
    e.close()


@pytest.fixture(scope="module")
def raw() -> Iterator[PusherEnv]:
    e = PusherEnv()
    yield e
    e.close()


def rollout(env: gym.Env, domain: dict | None = None, seed: int = 3, steps: int = 40) -> np.ndarray:
    """Observations of a seeded closed-loop scripted push (it touches the puck within ~10 steps)."""
    obs, _ = env.reset(seed=seed, options={"domain": dict(domain or {})})
    traj = [obs]
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(scripted(obs))
        traj.append(obs)
        if terminated or truncated:
            break
    return np.stack(traj)


def clearly_different(knob: Knob) -> float:
    """A third of nominal (3x when a third is invalid), or 10% into the range for nominal 0."""
    if knob.nominal != 0:
        value = knob.nominal / 3.0
        if not knob.contains(value) or knob.integer:
            value = knob.nominal * 3.0
    else:
        top = knob.high if math.isfinite(knob.high) and knob.high > 0 else knob.low
        value = 0.1 * top
    if knob.integer:
        value = float(max(round(value), knob.nominal + 1))
    assert knob.contains(value), (knob.name, value)
    return value


# ---------------------------------------------------------------------- knobs
def test_the_knob_list_is_the_documented_one() -> None:
    required = {
        "puck.mass",
        "puck.friction",
        "puck.rolling_friction",
        "puck.spinning_friction",
        "puck.linear_damping",
        "puck.angular_damping",
        "table.friction",
        "pusher.kp",
        "pusher.kd",
        "pusher.max_force",
        "action.delay",
        "obs.noise",
    }
    assert required <= set(KNOB_NAMES)
    doc = pusher_module.__doc__ or ""
    for section in ("Description:", "Observation:", "Action:", "Reward:", "Knobs:", "Version"):
        assert section in doc
    for name in KNOB_NAMES:
        assert f"``{name}``" in doc, name
    for knob in domrand.knobs_for(ENV_ID).values():
        assert knob.unit and knob.doc and knob.contains(knob.nominal), knob.name


def test_nominal_values_come_from_the_urdfs(raw: PusherEnv) -> None:
    n = raw.nominal_domain
    assert (n["puck.mass"], n["puck.friction"], n["table.friction"]) == pytest.approx(
        (0.2, 0.4, 0.5)
    )
    assert (n["puck.rolling_friction"], n["puck.spinning_friction"]) == pytest.approx((1e-3, 2e-3))
    assert (n["pusher.mass"], n["pusher.damping"], n["pusher.max_force"]) == (0.5, 1.0, 20.0)
    assert n["puck.linear_damping"] == n["puck.angular_damping"] == PusherEnv.puck_damping


@pytest.mark.parametrize("name", KNOB_NAMES)
def test_every_knob_changes_the_physics_or_the_observation(env: gym.Env, name: str) -> None:
    knob = env.unwrapped.knobs[name]
    value = PROBES.get(name, clearly_different(knob))
    enable = ENABLERS.get(name, {})
    base = rollout(env, enable)
    np.testing.assert_array_equal(base, rollout(env, enable))
    changed = rollout(env, {**enable, name: value})
    n = min(len(base), len(changed))
    differs = len(base) != len(changed) or float(np.max(np.abs(base[:n] - changed[:n]))) > 1e-4
    assert differs, f"{name}={value} (nominal {knob.nominal}) left the rollout unchanged"


# ---------------------------------------------------------------------- physical directions
def _flick(raw: PusherEnv, domain: dict, force: float = 20.0, torque: float = 0.0) -> np.ndarray:
    """Kick the resting puck (+x force and/or z torque for one 5 ms substep); then 0.5 s of hold."""
    raw.reset(seed=0, options={"domain": domain})
    p, puck = raw._p, raw._puck
    pos = p.getBasePositionAndOrientation(puck)[0]
    p.applyExternalForce(puck, -1, (force, 0.0, 0.0), pos, pybullet.WORLD_FRAME)
    p.applyExternalTorque(puck, -1, (0.0, 0.0, torque), pybullet.WORLD_FRAME)
    return np.stack([raw.step(np.zeros(2, np.float32))[0] for _ in range(10)])


def _travel(raw: PusherEnv, domain: dict) -> float:
    traj = _flick(raw, domain)
    return float(traj[-1, 4] - traj[0, 4])


def test_a_heavier_puck_moves_less_under_the_same_push(raw: PusherEnv) -> None:
    light, nominal, heavy = (_travel(raw, {"puck.mass": m}) for m in (0.1, 0.2, 0.4))
    assert light > nominal > heavy > 0.0


@pytest.mark.parametrize("name", ["puck.friction", "table.friction", "puck.linear_damping"])
def test_more_friction_or_damping_slides_the_puck_less(raw: PusherEnv, name: str) -> None:
    nominal = raw.knobs[name].nominal
    low, mid, high = (_travel(raw, {name: f * nominal}) for f in (0.5, 1.0, 2.0))
    assert low > mid > high > 0.0


@pytest.mark.parametrize("name", ["puck.spinning_friction", "puck.angular_damping"])
def test_spinning_friction_and_angular_damping_stop_a_spin_sooner(
    raw: PusherEnv, name: str
) -> None:
    def spin(value: float) -> float:
        return float(_flick(raw, {name: value}, force=0.0, torque=2.0)[0, 8])

    nominal = raw.knobs[name].nominal
    assert spin(0.0) > spin(nominal) > spin(4 * nominal) > 0.0


def _tip_travel(raw: PusherEnv, domain: dict, steps: int = 2) -> float:
    obs0, _ = raw.reset(seed=0, options={"domain": {"gravity": 0.0, **domain}})
    obs = obs0
    for _ in range(steps):
        obs, *_ = raw.step(np.array([0.0, 1.0], np.float32))  # sideways: away from the puck
    return float(obs[1] - obs0[1])


def test_pusher_gains_mass_damping_and_force_bound_shape_its_motion(raw: PusherEnv) -> None:
    nominal = _tip_travel(raw, {})
    assert nominal > 0.01
    assert _tip_travel(raw, {"pusher.kp": 600.0}) > nominal > _tip_travel(raw, {"pusher.kp": 150.0})
    assert _tip_travel(raw, {"pusher.mass": 2.0}) < nominal
    assert _tip_travel(raw, {"pusher.damping": 10.0}) < nominal
    assert _tip_travel(raw, {"pusher.max_force": 0.5}) < 0.5 * nominal
    assert _tip_travel(raw, {"action.delay": 2}) == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------------- task
def solve(env: gym.Env, seed: int | None = None) -> tuple[bool, int]:
    obs, _ = env.reset(seed=seed)
    for t in range(1, 101):
        obs, _, terminated, truncated, info = env.step(scripted(obs))
        if terminated or truncated:
            return bool(info["is_success"]), t
    return False, 100


def test_a_scripted_push_solves_the_nominal_task() -> None:
    env = domrand.make(ENV_ID, seed=0)
    results = [solve(env) for _ in range(10)]
    env.close()
    assert all(ok for ok, _ in results), results


def test_reward_and_observation_layout() -> None:
    env = domrand.make(ENV_ID)
    obs, _ = env.reset(seed=4)
    u = env.unwrapped
    (px, py, _), _ = u._p.getBasePositionAndOrientation(u._puck)
    np.testing.assert_allclose(obs[4:6], (px, py), atol=1e-6)
    np.testing.assert_allclose(obs[9:11], u._goal, atol=1e-6)
    np.testing.assert_allclose(obs[11:13], obs[9:11] - obs[4:6], atol=1e-6)
    np.testing.assert_allclose(obs[13:15], obs[4:6] - obs[0:2], atol=1e-6)
    obs, r, terminated, truncated, info = env.step(np.zeros(2, np.float32))
    expected = -math.hypot(*obs[11:13]) - 0.5 * math.hypot(*obs[13:15])
    assert r == pytest.approx(expected, abs=1e-5)
    assert not (terminated or truncated or info["is_success"] or info["puck_fell"])
    env.close()


def test_a_puck_pushed_off_the_table_ends_the_episode(
    raw: PusherEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw.reset(seed=0)
    raw._p.resetBasePositionAndOrientation(raw._puck, (0.47, 0.0, 0.016), (0, 0, 0, 1))
    raw._p.resetBaseVelocity(raw._puck, (1.5, 0.0, 0.0), (0, 0, 0))
    for _ in range(20):
        _, r, terminated, _, info = raw.step(np.zeros(2, np.float32))
        if terminated:
            break
    assert terminated and info["puck_fell"] and not info["is_success"]
    # The fall is charged the step's cost for every step left: ending early saves nothing.
    obs = raw._observation(raw._state())
    cost = math.hypot(*obs[11:13]) + 0.5 * math.hypot(*obs[13:15])
    steps_left = PusherEnv.horizon - raw._steps
    assert 0 < steps_left < PusherEnv.horizon
    assert r == pytest.approx(-cost * (1 + steps_left), rel=1e-6)
    # revision 0's free fall (kept for benchmarks/pusher_fall.py): the step's cost alone
    monkeypatch.setattr(raw, "charge_fall", False)  # this test only: the fixture is shared
    assert raw._task_outcome(raw._state())[0] == pytest.approx(-cost, rel=1e-6)


def test_the_fall_charge_uses_the_registered_time_limit() -> None:
    from domrand.registry import ENVS

    for env_id in ("domrand/Pusher-v0", "domrand/PusherPlace-v0", "domrand/PusherForce-v0"):
        assert ENVS[env_id].max_episode_steps == PusherEnv.horizon, env_id


def test_success_pays_the_bonus_and_terminates(raw: PusherEnv) -> None:
    raw.reset(seed=0)
    (px, py, _), _ = raw._p.getBasePositionAndOrientation(raw._puck)
    raw._goal = (px + 0.01, py)
    _, r, terminated, _, info = raw.step(np.zeros(2, np.float32))
    assert terminated and info["is_success"] and r > PusherEnv.success_bonus - 1.0


def _puck_near_goal(env: PusherEnv, speed: float) -> tuple[float, bool, dict]:
    """Put the goal 1 cm ahead of the resting puck, give the puck ``speed`` along it, one step."""
    env.reset(seed=0)
    (px, py, _), _ = env._p.getBasePositionAndOrientation(env._puck)
    env._goal = (px + 0.01, py)
    env._p.resetBaseVelocity(env._puck, (speed, 0.0, 0.0), (0, 0, 0))
    _, r, terminated, _, info = env.step(np.zeros(2, np.float32))
    return r, terminated, info


def test_place_succeeds_only_when_the_puck_rests_on_the_goal() -> None:
    """Pusher-v0 counts a puck shot through the goal disc; PusherPlace-v0 does not."""
    v0, place = PusherEnv(), PusherPlaceEnv()
    try:
        r, terminated, info = _puck_near_goal(v0, 0.6)
        assert terminated and info["is_success"] and r > PusherEnv.success_bonus - 1.0
        r, terminated, info = _puck_near_goal(place, 0.6)
        assert info["puck_speed"] > PusherPlaceEnv.settle_speed
        assert not terminated and not info["is_success"] and r < 0
        r, terminated, info = _puck_near_goal(place, 0.0)
        assert info["puck_speed"] < PusherPlaceEnv.settle_speed
        assert terminated and info["is_success"] and r > PusherEnv.success_bonus - 1.0
    finally:
        v0.close()
        place.close()


def test_place_is_pusher_v0_with_another_success_rule() -> None:
    """Same knobs, nominal values, spec and realities; the same rollout until a success."""
    a, b = domrand.make(ENV_ID, seed=5), domrand.make("domrand/PusherPlace-v0", seed=5)
    try:
        assert a.unwrapped.nominal_domain == b.unwrapped.nominal_domain
        assert domrand.realities(ENV_ID) == domrand.realities("domrand/PusherPlace-v0")
        oa, _ = a.reset()
        ob, _ = b.reset()
        for _ in range(8):  # the scripted push has not reached the goal yet
            np.testing.assert_array_equal(oa, ob)
            oa, ra, *_ = a.step(scripted(oa))
            ob, rb, *_ = b.step(scripted(ob))
            assert ra == rb
    finally:
        a.close()
        b.close()


# ---------------------------------------------------------------------- seeding and faults
def _episodes(seed: int) -> tuple[list[np.ndarray], list[dict]]:
    env = domrand.make(ENV_ID, spec=domrand.default_spec_path(ENV_ID), seed=seed)
    trajs, domains = [], []
    for _ in range(3):
        obs, info = env.reset()
        domains.append(info["domain"])
        traj = [obs]
        for _ in range(20):
            obs, *_ = env.step(scripted(obs))
            traj.append(obs)
        trajs.append(np.stack(traj))
    env.close()
    return trajs, domains


def test_same_seed_same_domains_same_rollouts_bit_for_bit() -> None:
    a, da = _episodes(5)
    b, db = _episodes(5)
    _, dc = _episodes(6)
    assert da == db and da != dc
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_an_episode_does_not_depend_on_the_ones_before() -> None:
    """Same seed and domain after other episodes (other domains, contacts) = a fresh env."""
    used, fresh = domrand.make(ENV_ID), domrand.make(ENV_ID)
    obs, _ = used.reset(seed=1, options={"domain": {"puck.mass": 0.3}})
    for _ in range(15):  # stop mid-push: the puck is sliding, in contact with the tip
        obs, *_ = used.step(scripted(obs))
    used.reset(seed=9)
    for _ in range(5):  # the untouched puck rests where seed 9 puts it: contacts persist there
        used.step(np.zeros(2, np.float32))
    np.testing.assert_array_equal(rollout(used, seed=9), rollout(fresh, seed=9))
    used.close()
    fresh.close()


def test_a_physics_fault_rebuilds_the_scene(monkeypatch: pytest.MonkeyPatch) -> None:
    domain = {"pusher.mass": 1.5, "puck.mass": 0.3, "push.force": 5.0}
    env, fresh = domrand.make(ENV_ID, domain=domain), domrand.make(ENV_ID, domain=domain)
    u = env.unwrapped
    real_state = u._state
    monkeypatch.setattr(u, "_state", lambda: (math.inf, *real_state()[1:]))
    env.reset(seed=1)
    *_, terminated, _, info = env.step(np.zeros(2, np.float32))
    assert terminated and info["physics_fault"]
    monkeypatch.setattr(u, "_state", real_state)
    np.testing.assert_array_equal(rollout(env, seed=11), rollout(fresh, seed=11))
    assert u._p.getNumBodies() == 3
    env.close()
    fresh.close()


# ---------------------------------------------------------------------- spec and realities
def _randomized_bounds(spec: domrand.RandomizationSpec) -> dict[str, tuple[float, float]]:
    out = {}
    for name in spec.knob_names():
        lo, hi = spec.value_bounds(name)
        if hi > lo:
            out[name] = (lo, hi)
    return out


def test_default_spec_randomizes_the_puck_as_in_the_literature() -> None:
    knobs = domrand.knobs_for(ENV_ID)
    bounds = _randomized_bounds(load_spec(domrand.default_spec_path(ENV_ID)))
    assert bounds["puck.mass"] == pytest.approx((0.1, 0.4))  # Peng et al.
    for name in ("puck.friction", "puck.linear_damping", "pusher.kp", "pusher.kd"):
        nominal = knobs[name].nominal
        assert bounds[name] == pytest.approx((0.5 * nominal, 2.0 * nominal)), name
    assert bounds["action.delay"] == (0, 2)


def test_realities_stress_the_training_spec() -> None:
    table = domrand.realities(ENV_ID)
    assert len(table) >= 3
    knobs = domrand.knobs_for(ENV_ID)
    bounds = _randomized_bounds(load_spec(domrand.default_spec_path(ENV_ID)))
    unmodelled = set()
    for name, path in table.items():
        values = load_domain(path)
        tol = 1e-9
        stressing = [
            k
            for k, v in values.items()
            if k not in bounds or v <= bounds[k][0] + tol or v >= bounds[k][1] - tol
        ]
        assert stressing, f"reality {name} pins nothing at or beyond the training spec's edges"
        unmodelled |= set(values) - set(bounds)
        assert any(not math.isclose(v, knobs[k].nominal) for k, v in values.items())
    assert unmodelled


def test_the_hard_region_reality_is_mehtas() -> None:
    """Puck friction and damping at 0.4-0.5x of default (Mehta et al. 2019)."""
    knobs = domrand.knobs_for(ENV_ID)
    values = load_domain(domrand.realities(ENV_ID)["hard_region"])
    for name in ("puck.friction", "puck.linear_damping", "puck.angular_damping"):
        assert 0.4 <= values[name] / knobs[name].nominal <= 0.5, name


@pytest.mark.parametrize("name", sorted(domrand.realities(ENV_ID)))
def test_realities_load_through_make(name: str) -> None:
    env = domrand.make(ENV_ID, reality=name)
    _, info = env.reset(seed=0)
    for knob, value in load_domain(domrand.realities(ENV_ID)[name]).items():
        assert info["domain"][knob] == pytest.approx(value)
    env.step(np.zeros(2, np.float32))
    env.close()


# ---------------------------------------------------------------------- gymnasium's checker
MAKE_VARIANTS = {
    "no spec": {},
    "default spec": {"spec": domrand.default_spec_path(ENV_ID)},
    "reality": {"reality": "hard_region"},
}
EXPECTED_WARNINGS = ("is different from the unwrapped version", "infinity")


def _check(env: gym.Env, **kwargs: bool) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, **kwargs)
    unexpected = [
        str(w.message) for w in caught if not any(t in str(w.message) for t in EXPECTED_WARNINGS)
    ]
    assert not unexpected


@pytest.mark.parametrize("kwargs", MAKE_VARIANTS.values(), ids=MAKE_VARIANTS.keys())
def test_check_env_passes(kwargs: dict) -> None:
    env = domrand.make(ENV_ID, **kwargs)
    try:
        _check(env, skip_render_check=True, skip_close_check=True)
        _check(env.unwrapped)
    finally:
        env.close()


def test_render_rgb_array() -> None:
    env = domrand.make(ENV_ID, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8 and frame.std() > 0
    env.close()

"""domrand/KukaReach-v0: every knob acts, physical directions, feasibility, seeding, checks."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import domrand
import domrand.envs.kuka_reach as kuka_module
from domrand.envs.kuka_reach import KukaReachEnv
from domrand.knobs import Knob
from domrand.spec import Mode, load_domain, load_spec

ENV_ID = "domrand/KukaReach-v0"
_SIGNS = np.array([1, -1, 1, -1, 1, -1], np.float32)
#: sweeps every joint through most of its range and back, so limits and torque bounds are met
SWEEP = np.where((np.arange(40) // 14 % 2 == 0)[:, None], _SIGNS, -_SIGNS).astype(np.float32)
#: a knob that gates another effect is tested with that effect switched on
ENABLERS = {"push.force": {"push.rate": 20.0}, "push.rate": {"push.force": 100.0}}
#: 1/3 push per second may well give no push at all in a 2 s rollout: probe 10/s instead
PROBES = {"push.rate": 10.0}


def _knob_names() -> tuple[str, ...]:
    probe = KukaReachEnv()
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
def raw() -> Iterator[KukaReachEnv]:
    """No time limit, and it keeps stepping past success (for physics checks)."""
    e = KukaReachEnv()
    yield e
    e.close()


def rollout(
    env: gym.Env, domain: dict | None = None, actions: np.ndarray = SWEEP, seed: int = 7
) -> np.ndarray:
    obs, _ = env.reset(seed=seed, options={"domain": dict(domain or {})})
    traj = [obs]
    for a in actions:
        obs, _, terminated, truncated, _ = env.step(a)
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
        *(f"link{i}.mass" for i in range(1, 8)),
        "arm.mass_scale",
        "arm.damping",
        "arm.friction",
        "arm.kp",
        "arm.kd",
        "arm.max_force",
        "arm.limit_scale",
        "arm.limit_offset",
        "push.force",
        "push.rate",
        "action.delay",
        "action.noise",
        "obs.noise",
        "gravity",
    }
    assert required <= set(KNOB_NAMES)
    doc = kuka_module.__doc__ or ""
    for section in ("Description:", "Observation:", "Action:", "Reward:", "Knobs:", "Version"):
        assert section in doc
    for name in KNOB_NAMES:
        assert f"``{name}``" in doc or name.startswith("link"), name
    knobs = domrand.knobs_for(ENV_ID)
    for knob in knobs.values():
        assert knob.unit and knob.doc and knob.contains(knob.nominal), knob.name


def test_nominal_values_come_from_the_urdf(raw: KukaReachEnv) -> None:
    nominal = raw.nominal_domain
    masses = [nominal[f"link{i}.mass"] for i in range(1, 8)]
    assert masses == pytest.approx([4.0, 4.0, 3.0, 2.7, 1.7, 1.8, 0.3])
    assert nominal["arm.damping"] == 0.5 and nominal["arm.friction"] == 0.0
    assert nominal["arm.max_force"] == 300.0
    assert nominal["arm.kp"] == nominal["arm.kd"] == nominal["arm.limit_scale"] == 1.0


@pytest.mark.parametrize("name", KNOB_NAMES)
def test_every_knob_changes_the_physics_or_the_observation(env: gym.Env, name: str) -> None:
    knob = env.unwrapped.knobs[name]
    value = PROBES.get(name, clearly_different(knob))
    enable = ENABLERS.get(name, {})
    base = rollout(env, enable)
    np.testing.assert_array_equal(base, rollout(env, enable))  # noise floor: exactly zero
    changed = rollout(env, {**enable, name: value})
    n = min(len(base), len(changed))
    differs = len(base) != len(changed) or float(np.max(np.abs(base[:n] - changed[:n]))) > 1e-4
    assert differs, f"{name}={value} (nominal {knob.nominal}) left the rollout unchanged"


# ---------------------------------------------------------------------- physical directions
def _ramp(raw: KukaReachEnv, domain: dict, steps: int = 4) -> np.ndarray:
    """Move every setpoint by +-0.1 rad per step without gravity; the last observation."""
    traj = rollout(raw, {"gravity": 0.0, **domain}, actions=SWEEP[:steps])
    return traj[-1]


def test_higher_kp_tracks_the_setpoint_closer(raw: KukaReachEnv) -> None:
    lag = [float(np.abs(_ramp(raw, {"arm.kp": kp})[12:18]).sum()) for kp in (0.5, 1.0, 2.0)]
    assert lag[0] > lag[1] > lag[2] > 0


def test_higher_damping_slows_the_arm(raw: KukaReachEnv) -> None:
    def coast(damping: float) -> float:
        """Joint speed 0.1 s after a 1 rad/s kick, with the PD all but off and no gravity."""
        weak = {"gravity": 0.0, "arm.kp": 1e-6, "arm.kd": 1e-6, "arm.damping": damping}
        raw.reset(seed=0, options={"domain": weak})
        for j in range(6):
            q = raw._p.getJointState(raw._arm, j)[0]
            raw._p.resetJointState(raw._arm, j, q, 1.0)
        obs = rollout_steps(raw, 2)
        return float(np.abs(obs[6:12]).sum())

    speed = [coast(d) for d in (0.0, 0.5, 2.0)]
    assert speed[0] > speed[1] > speed[2]
    assert speed[2] < 0.7 * speed[0]


def rollout_steps(env: gym.Env, steps: int) -> np.ndarray:
    obs = None
    for _ in range(steps):
        obs, *_ = env.step(np.zeros(6, np.float32))
    return obs


def _sag(raw: KukaReachEnv, domain: dict) -> float:
    """Setpoint minus position of the shoulder (a2) after holding still for 1 s."""
    traj = rollout(raw, domain, actions=np.zeros((20, 6), np.float32))
    return float(traj[-1, 13])


def test_heavier_links_and_stronger_gravity_sag_more(raw: KukaReachEnv) -> None:
    nominal = _sag(raw, {})
    assert abs(_sag(raw, {"gravity": 0.0})) < 1e-3
    assert abs(_sag(raw, {"arm.mass_scale": 2.0})) > 1.8 * abs(nominal) > 0.02
    assert abs(_sag(raw, {"gravity": 15.0})) > 1.4 * abs(nominal)
    assert abs(_sag(raw, {"arm.kp": 2.0})) < 0.6 * abs(nominal)  # stiffer holds better


def test_latency_delays_the_response(raw: KukaReachEnv) -> None:
    now = _ramp(raw, {}, steps=2)
    late = _ramp(raw, {"action.delay": 2}, steps=2)
    still = _ramp(raw, {}, steps=0)
    assert np.abs(now[:6] - still[:6]).max() > 0.05
    np.testing.assert_allclose(late[:6], still[:6], atol=1e-6)  # nothing applied yet


def test_joint_friction_holds_the_joint_against_a_small_command(raw: KukaReachEnv) -> None:
    small = np.zeros((3, 6), np.float32)
    small[0, 0] = 0.5  # a1 setpoint +0.05 rad: at most kp * 0.05 = 20 N m
    free = rollout(raw, {"gravity": 0.0}, actions=small)
    stuck = rollout(raw, {"gravity": 0.0, "arm.friction": 30.0}, actions=small)
    assert abs(free[-1, 0] - free[0, 0]) > 0.03
    assert abs(stuck[-1, 0] - stuck[0, 0]) < 1e-4


def test_narrower_limits_stop_the_joints_earlier(raw: KukaReachEnv) -> None:
    up = np.tile(np.array([1, 1, 1, 1, 1, 1], np.float32), (30, 1))
    wide = rollout(raw, {"gravity": 0.0}, actions=up)
    narrow = rollout(raw, {"gravity": 0.0, "arm.limit_scale": 0.5}, actions=up)
    upper = np.array(raw._upper)
    assert np.all(narrow[-1, :6] <= 0.5 * upper + 0.02)
    assert wide[-1, 0] > 0.5 * upper[0] + 0.3


def test_pushes_knock_the_flange_off_its_path(raw: KukaReachEnv) -> None:
    hold = np.zeros((20, 6), np.float32)
    calm = rollout(raw, actions=hold)
    pushed = rollout(raw, {"push.force": 300.0, "push.rate": 20.0}, actions=hold)
    assert np.abs(pushed[:, 18:21] - calm[:, 18:21]).max() > 0.01


# ---------------------------------------------------------------------- task
def ik_controller(env: gym.Env) -> np.ndarray:
    """Joint targets for the episode's target from pybullet's IK (a7 held at 0)."""
    u = env.unwrapped
    lower, upper = [*u._lower, -3.05], [*u._upper, 3.05]
    q = u._p.calculateInverseKinematics(
        u._arm,
        6,
        list(u._target),
        lowerLimits=lower,
        upperLimits=upper,
        jointRanges=[h - lo for lo, h in zip(lower, upper)],
        restPoses=[*u.home, 0.0],
        maxNumIterations=200,
        residualThreshold=1e-5,
    )
    return np.asarray(q[:6])


def solve(env: gym.Env, seed: int | None = None) -> tuple[bool, int]:
    """Drive each joint towards its IK target: the setpoint integrates the remaining error."""
    obs, _ = env.reset(seed=seed)
    goal = ik_controller(env)
    for t in range(1, 151):
        action = np.clip(0.5 * (goal - obs[:6]) / KukaReachEnv.max_delta, -1.0, 1.0)
        obs, _, terminated, truncated, info = env.step(action.astype(np.float32))
        if terminated or truncated:
            return bool(info["is_success"]), t
    return False, 150


def test_a_scripted_ik_controller_solves_the_nominal_task() -> None:
    env = domrand.make(ENV_ID, seed=0)
    results = [solve(env) for _ in range(10)]
    env.close()
    assert all(ok for ok, _ in results), results
    assert max(t for _, t in results) < 60


def test_reward_success_and_truncation() -> None:
    env = domrand.make(ENV_ID)
    obs, _ = env.reset(seed=1)
    u = env.unwrapped
    ee = u._p.getLinkState(u._arm, 6, computeForwardKinematics=True)[4]
    np.testing.assert_allclose(obs[18:21], ee, atol=1e-6)
    np.testing.assert_allclose(obs[21:24], u._target, atol=1e-6)
    np.testing.assert_allclose(obs[24:27], obs[21:24] - obs[18:21], atol=1e-6)
    assert np.all(obs[21:24] >= KukaReachEnv.target_low)
    assert np.all(obs[21:24] <= KukaReachEnv.target_high)
    for t in range(150):  # zero action: the arm holds its pose and never gets there
        obs, r, terminated, truncated, info = env.step(np.zeros(6, np.float32))
        assert r == pytest.approx(-info["distance"]) and info["distance"] > 0.05
        assert not terminated and truncated == (t == 149)
    assert solve(env, seed=1)[0]
    env.close()


def test_success_pays_the_bonus_and_terminates(raw: KukaReachEnv) -> None:
    raw.reset(seed=2)
    raw._target = tuple(raw._link_state(raw._arm, 6)[4])  # the flange is already there
    _, r, terminated, _, info = raw.step(np.zeros(6, np.float32))
    assert terminated and info["is_success"]
    assert r == pytest.approx(KukaReachEnv.success_bonus - info["distance"])


# ---------------------------------------------------------------------- seeding and faults
def _episodes(seed: int) -> tuple[list[np.ndarray], list[dict]]:
    env = domrand.make(ENV_ID, spec=domrand.default_spec_path(ENV_ID), seed=seed)
    rng = np.random.default_rng(0)
    trajs, domains = [], []
    for _ in range(3):
        obs, info = env.reset()
        domains.append(info["domain"])
        traj = [obs]
        for _ in range(15):
            obs, *_ = env.step(rng.uniform(-1, 1, 6).astype(np.float32))
            traj.append(obs)
        trajs.append(np.stack(traj))
    env.close()
    return trajs, domains


def test_same_seed_same_domains_same_rollouts_bit_for_bit() -> None:
    a, da = _episodes(5)
    b, db = _episodes(5)
    c, dc = _episodes(6)
    assert da == db and da != dc
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_an_episode_does_not_depend_on_the_ones_before() -> None:
    """Same seed and domain after other episodes (other domains, contacts) = a fresh env."""
    used, fresh = domrand.make(ENV_ID), domrand.make(ENV_ID)
    for seed, domain in ((1, {"gravity": 5.0}), (2, {"action.delay": 1})):
        used.reset(seed=seed, options={"domain": domain})
        for _ in range(30):
            used.step(np.random.default_rng(1).uniform(-1, 1, 6).astype(np.float32))
    np.testing.assert_array_equal(rollout(used, seed=9), rollout(fresh, seed=9))
    used.close()
    fresh.close()


def test_a_physics_fault_rebuilds_the_arm_and_its_controller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the rebuild the controller's model is nominal again: bit-identical to a fresh env."""
    domain = {"link3.mass": 5.0, "arm.kp": 1.5}
    env, fresh = domrand.make(ENV_ID, domain=domain), domrand.make(ENV_ID, domain=domain)
    u = env.unwrapped
    real_state = u._state
    monkeypatch.setattr(u, "_state", lambda: (math.nan, *real_state()[1:]))
    env.reset(seed=1)
    *_, terminated, _, info = env.step(np.zeros(6, np.float32))
    assert terminated and info["physics_fault"]
    monkeypatch.setattr(u, "_state", real_state)
    np.testing.assert_array_equal(rollout(env, seed=11), rollout(fresh, seed=11))
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


def test_default_spec_is_peng_style_and_around_nominal() -> None:
    spec = load_spec(domrand.default_spec_path(ENV_ID))
    knobs = domrand.knobs_for(ENV_ID)
    bounds = _randomized_bounds(spec)
    for name in ("link2.mass", "arm.damping", "arm.kp", "arm.kd"):
        lo, hi = bounds[name]
        assert lo == pytest.approx(0.5 * knobs[name].nominal) and hi == pytest.approx(
            2.0 * knobs[name].nominal
        )
    assert bounds["action.delay"] == (0, 2)
    for p in spec.parameters:
        if p.mode is Mode.SCALE:
            lo, hi = spec.value_bounds(p.knob)
            assert lo <= knobs[p.knob].nominal <= hi, p.knob


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


@pytest.mark.parametrize("name", sorted(domrand.realities(ENV_ID)))
def test_realities_load_through_make(name: str) -> None:
    env = domrand.make(ENV_ID, reality=name)
    _, info = env.reset(seed=0)
    for knob, value in load_domain(domrand.realities(ENV_ID)[name]).items():
        assert info["domain"][knob] == pytest.approx(value)
    env.step(np.zeros(6, np.float32))
    env.close()


# ---------------------------------------------------------------------- gymnasium's checker
MAKE_VARIANTS = {
    "no spec": {},
    "default spec": {"spec": domrand.default_spec_path(ENV_ID)},
    "reality": {"reality": "laggy_biased"},
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

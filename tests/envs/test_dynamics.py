"""envs/dynamics.py and envs/pd.py: every factory changes pybullet state, resets, composes.

A small bench env (the Pusher's table, puck and x-y gantry) exposes every factory, so these tests
read pybullet state directly (``getDynamicsInfo``) or, where pybullet has no getter (damping,
joint friction, limits), measure the motion the knob must produce.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest

from domrand.envs import CartPoleEnv
from domrand.envs._bullet import pybullet
from domrand.envs.bullet_env import BulletEnv, KnobBinding
from domrand.envs.dynamics import Dynamics
from domrand.envs.pd import JointPD
from domrand.errors import KnobError
from domrand.registry import assets_dir

G = 9.81


class Bench(BulletEnv):
    """Table, puck and gantry. ``mode`` picks what the 2-d action drives each substep.

    ``"force"``: joint forces ``10 * action`` N on the gantry; ``"pd"``: PD setpoints
    ``0.3 * action`` m; ``"free"``: nothing (joints move freely, only the knobs act).
    """

    control_period: ClassVar[float] = 0.05
    nominal_timestep: ClassVar[float] = 0.005

    def __init__(self) -> None:
        self.mode = "free"
        super().__init__()
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (8,), dtype=np.float32)

    def _load(self) -> None:
        urdf, p = assets_dir() / "urdf", self._p
        flags = pybullet.URDF_USE_INERTIA_FROM_FILE
        self.table = p.loadURDF(str(urdf / "table.urdf"), useFixedBase=True)
        self.puck = p.loadURDF(str(urdf / "puck.urdf"), [0.0, 0.0, 0.016], flags=flags)
        self.gantry = p.loadURDF(str(urdf / "pusher.urdf"), useFixedBase=True, flags=flags)
        p.setJointMotorControlArray(self.gantry, [0, 1], pybullet.VELOCITY_CONTROL, forces=[0, 0])
        for link in (-1, 0, 1):
            p.setCollisionFilterPair(self.gantry, self.table, link, -1, 0)
        self.puck_start = [0.2, 0.3, 0.016]  # clear of the tip's path along y = 0

    def _task_bindings(self) -> list[KnobBinding]:
        puck, table, gantry = self.puck, self.table, self.gantry
        self.pd = JointPD(self._client_id, gantry, [0, 1], [300.0, 300.0], [30.0, 30.0])
        dyn = Dynamics(self)
        return [
            dyn.mass(puck, -1, "puck.mass"),
            dyn.mass_scale(puck, [-1], "puck.mass_scale"),
            dyn.inertia_scale(puck, [-1], "puck.inertia_scale"),
            dyn.lateral_friction(puck, -1, "puck.friction"),
            dyn.rolling_friction(puck, -1, "puck.rolling_friction"),
            dyn.spinning_friction(puck, -1, "puck.spinning_friction"),
            dyn.restitution(puck, -1, "puck.restitution"),
            dyn.lateral_friction(table, -1, "table.friction"),
            dyn.restitution(table, -1, "table.restitution"),
            dyn.linear_damping(puck, "puck.linear_damping"),
            dyn.angular_damping(puck, "puck.angular_damping"),
            dyn.mass(gantry, 1, "tip.mass"),
            dyn.joint_damping(gantry, [0, 1], "gantry.damping", unit="N s/m"),
            dyn.joint_friction(gantry, [0, 1], "gantry.friction", unit="N"),
            *dyn.pd_gains(self.pd, "gantry", units=("N/m", "N s/m", "N")),
            *dyn.joint_limits(gantry, [0, 1], "gantry", unit="m"),
            *dyn.external_push(puck, -1, "push", planar=True, high=100.0),
        ]

    def _reset_task(self) -> None:
        # drop the puck's contact manifold first (see PusherEnv._reset_task)
        self._p.resetBasePositionAndOrientation(self.puck, (0, 0, 10), (0, 0, 0, 1))
        self._p.performCollisionDetection()
        self._p.resetBasePositionAndOrientation(self.puck, self.puck_start, (0, 0, 0, 1))
        self._p.resetBaseVelocity(self.puck, (0, 0, 0), (0, 0, 0))
        for j in (0, 1):
            self._p.resetJointState(self.gantry, j, -0.3 if j == 0 else 0.0, 0.0)
        self.pd.set_targets([-0.3, 0.0], self.control_period / self._substeps)

    def _apply_action(self, action: list[float]) -> None:
        if self.mode == "force":
            self._p.setJointMotorControlArray(
                self.gantry, [0, 1], pybullet.TORQUE_CONTROL, forces=[10 * a for a in action]
            )
        elif self.mode == "pd":
            self.pd.set_targets([0.3 * a for a in action], self.control_period / self._substeps)
            self.pd.apply()

    def _state(self) -> tuple[float, ...]:
        (x, vx, _, _), (y, vy, _, _) = self._p.getJointStates(self.gantry, [0, 1])
        (px, py, _), _ = self._p.getBasePositionAndOrientation(self.puck)
        (pvx, pvy, _), _ = self._p.getBaseVelocity(self.puck)
        return (x, y, vx, vy, px, py, pvx, pvy)

    def _task_outcome(self, state: Sequence[float]) -> tuple[float, bool, dict[str, Any]]:
        return 0.0, False, {}

    # helpers for the tests
    def puck_velocity(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self._p.getBaseVelocity(self.puck)

    def run(self, steps: int, action: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
        obs = None
        for _ in range(steps):
            obs, *_ = self.step(np.asarray(action, dtype=np.float32))
        return obs


@pytest.fixture
def bench() -> Iterator[Bench]:
    env = Bench()
    yield env
    env.close()


def dyn_info(env: Bench, body: int, link: int = -1) -> tuple[Any, ...]:
    return env._p.getDynamicsInfo(body, link)


# ---------------------------------------------------------------------- inertial
def test_mass_sets_the_mass_scales_the_inertia_and_resets_to_nominal(bench: Bench) -> None:
    mass0, _, inertia0 = dyn_info(bench, bench.puck)[:3]
    assert bench.knobs["puck.mass"].nominal == mass0 == pytest.approx(0.2)
    bench.reset(seed=0, options={"domain": {"puck.mass": 0.5}})
    mass, _, inertia = dyn_info(bench, bench.puck)[:3]
    assert mass == pytest.approx(0.5)
    np.testing.assert_allclose(inertia, np.asarray(inertia0) * 2.5, rtol=1e-9)
    bench.reset(seed=0)
    mass, _, inertia = dyn_info(bench, bench.puck)[:3]
    assert mass == mass0
    np.testing.assert_allclose(inertia, inertia0, rtol=1e-12)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_mass_mass_scale_and_inertia_scale_compose_in_any_order(bench: Bench, order: int) -> None:
    _, _, inertia0 = dyn_info(bench, bench.puck)[:3]
    values = [("puck.mass", 0.4), ("puck.mass_scale", 1.5), ("puck.inertia_scale", 2.0)]
    bench.reset(seed=0)
    for name, value in values[order:] + values[:order]:
        bench.set_knobs({name: value})
    mass, _, inertia = dyn_info(bench, bench.puck)[:3]
    assert mass == pytest.approx(0.6)
    np.testing.assert_allclose(inertia, np.asarray(inertia0) * (0.6 / 0.2) * 2.0, rtol=1e-9)
    for _ in range(3):  # re-applying never compounds
        bench.reset(seed=0, options={"domain": dict(values)})
    assert dyn_info(bench, bench.puck)[0] == pytest.approx(0.6)


def test_mass_of_a_static_body_is_rejected(bench: Bench) -> None:
    with pytest.raises(ValueError, match="static"):
        Dynamics(bench).mass(bench.table, -1, "table.mass")


# ---------------------------------------------------------------------- contact
CONTACT = {
    "puck.friction": 1,
    "puck.restitution": 5,
    "puck.rolling_friction": 6,
    "puck.spinning_friction": 7,
}


@pytest.mark.parametrize("name", CONTACT)
def test_contact_knobs_change_dynamics_info_and_reset_to_nominal(bench: Bench, name: str) -> None:
    index = CONTACT[name]
    nominal = dyn_info(bench, bench.puck)[index]
    assert bench.knobs[name].nominal == nominal
    bench.reset(seed=0, options={"domain": {name: 0.7}})
    assert dyn_info(bench, bench.puck)[index] == pytest.approx(0.7)
    bench.reset(seed=0)
    assert dyn_info(bench, bench.puck)[index] == nominal


def _slide_accel(bench: Bench, force: float, domain: dict) -> float:
    """Mean x-acceleration of the puck under a constant horizontal force over 0.25 s."""
    bench.reset(seed=0, options={"domain": domain})
    bench.run(4)  # settle on the table
    p, puck = bench._p, bench.puck
    v0 = bench.puck_velocity()[0][0]
    for _ in range(50):
        pos = p.getBasePositionAndOrientation(puck)[0]
        p.applyExternalForce(puck, -1, (force, 0.0, 0.0), pos, pybullet.WORLD_FRAME)
        p.stepSimulation()
    return (bench.puck_velocity()[0][0] - v0) / (50 * bench.nominal_timestep)


def test_friction_is_one_coefficient_for_sticking_and_sliding(bench: Bench) -> None:
    """pybullet's mu serves static and dynamic friction alike, and a contact uses mu_a * mu_b."""
    m = 0.2
    mu = 0.4 * 0.5  # puck * table
    assert _slide_accel(bench, 0.9 * mu * m * G, {}) == pytest.approx(0.0, abs=1e-3)
    a = _slide_accel(bench, 1.5 * mu * m * G, {})
    assert a == pytest.approx(0.5 * mu * G, rel=0.1)  # (F - mu m g) / m once sliding
    # doubling the table's coefficient doubles the contact's friction: the same force now sticks
    assert _slide_accel(bench, 1.5 * mu * m * G, {"table.friction": 1.0}) == pytest.approx(
        0.0, abs=1e-3
    )


def _spin_after(bench: Bench, domain: dict, steps: int = 1) -> float:
    bench.reset(seed=0, options={"domain": domain})
    bench.run(4)
    bench._p.resetBaseVelocity(bench.puck, (0, 0, 0), (0, 0, 10.0))
    bench.run(steps)
    return bench.puck_velocity()[1][2]


def test_spinning_friction_and_angular_damping_slow_a_spin(bench: Bench) -> None:
    base = _spin_after(bench, {})
    assert base > 0.5
    assert _spin_after(bench, {"puck.spinning_friction": 0.05}) < 0.8 * base
    assert _spin_after(bench, {"puck.angular_damping": 2.0}) < 0.8 * base


def test_spinning_friction_needs_the_other_bodys_lateral_friction(bench: Bench) -> None:
    """Rolling/spinning friction combine as r_a * mu_b + r_b * mu_a."""
    slick = {"table.friction": 0.0, "puck.friction": 0.0}
    free = _spin_after(bench, slick)
    assert _spin_after(bench, {**slick, "puck.spinning_friction": 0.05}) == pytest.approx(free)


def test_rolling_friction_slows_a_rolling_puck(bench: Bench) -> None:
    """A puck rolling on its rim (rotation about a horizontal axis) is braked by it."""

    def roll(domain: dict) -> float:
        bench.reset(seed=0, options={"domain": {"gravity": 0.0, **domain}})
        p = bench._p
        p.resetBasePositionAndOrientation(bench.puck, (0.2, 0, 0.04), (0.7071068, 0, 0, 0.7071068))
        p.changeDynamics(bench.puck, -1, linearDamping=0.0, angularDamping=0.0)
        p.setGravity(0, 0, -G)
        p.resetBaseVelocity(bench.puck, (0, 0.3, 0), (-7.5, 0, 0))
        for _ in range(100):
            p.stepSimulation()
        return abs(bench.puck_velocity()[0][1])

    assert roll({"puck.rolling_friction": 0.05}) < 0.8 * roll({"puck.rolling_friction": 0.0})


def test_restitution_bounces_only_when_both_bodies_have_it(bench: Bench) -> None:
    def rebound(domain: dict) -> float:
        bench.reset(seed=0, options={"domain": domain})
        p = bench._p
        p.resetBasePositionAndOrientation(bench.puck, (0.2, 0, 0.2), (0, 0, 0, 1))
        best = 0.0
        for _ in range(60):
            p.stepSimulation()
            best = max(best, bench.puck_velocity()[0][2])
        return best

    one = rebound({"puck.restitution": 0.9})  # table restitution 0: the product is 0
    both = rebound({"puck.restitution": 0.9, "table.restitution": 0.9})
    assert both > 1.0  # falls 0.2 m at ~2 m/s and comes back up at most of that
    assert one < 0.2 * both  # what is left is penetration recovery, not a bounce


@pytest.mark.parametrize("name", ["puck.linear_damping", "puck.angular_damping"])
def test_body_damping_applies_its_nominal_and_slows_the_body(bench: Bench, name: str) -> None:
    def speed(domain: dict) -> float:
        bench.reset(seed=0, options={"domain": {"gravity": 0.0, **domain}})
        bench._p.resetBasePositionAndOrientation(bench.puck, (0.2, 0, 0.3), (0, 0, 0, 1))
        bench._p.resetBaseVelocity(bench.puck, (1.0, 0, 0), (0, 0, 5.0))
        bench.run(4)
        lin, ang = bench.puck_velocity()
        return lin[0] if name == "puck.linear_damping" else ang[2]

    nominal = speed({})
    assert nominal == pytest.approx(speed({name: 0.04}))  # pybullet's default is the nominal
    assert speed({name: 1.0}) < 0.9 * nominal
    assert nominal < speed({name: 0.0})


# ---------------------------------------------------------------------- joints
def test_group_knobs_need_equal_nominals_unless_scaled(bench: Bench) -> None:
    dyn = Dynamics(bench)
    # URDF nominals are equal (1 N s/m): an absolute knob works, and scale=True multiplies each
    knob = dyn.joint_damping(bench.gantry, [0, 1], "d", scale=True).knob
    assert (knob.nominal, knob.unit) == (1.0, "x nominal")
    cart = CartPoleEnv()
    try:
        pd = JointPD(cart._client_id, cart._cartpole, [0, 1], [1, 2], [1, 1], [10, 10])
        with pytest.raises(ValueError, match="different nominal"):
            Dynamics(cart).pd_gains(pd, "x")
        with pytest.raises(ValueError, match="no limits"):
            Dynamics(cart).joint_limits(cart._cartpole, [1], "hinge")
        with pytest.raises(ValueError, match="nominal is 0"):
            Dynamics(cart).joint_friction(cart._cartpole, [0], "f", scale=True)
    finally:
        cart.close()


def _coast(bench: Bench, domain: dict, v0: float = 0.5, steps: int = 4) -> float:
    """Velocity of the x joint after coasting from ``v0`` with no actuation."""
    bench.mode = "free"
    bench.reset(seed=0, options={"domain": {"gravity": 0.0, **domain}})
    bench._p.resetJointState(bench.gantry, 0, -0.3, v0)
    return float(bench.run(steps)[2])


def test_joint_damping_slows_the_joint(bench: Bench) -> None:
    nominal = _coast(bench, {})  # URDF damping 1 N s/m on 1 kg: v ~ v0 exp(-t)
    assert nominal == pytest.approx(0.5 * math.exp(-0.2), rel=0.05)
    # without it only pybullet's own body damping (0.04 (1 + |v|) per s) is left
    assert _coast(bench, {"gantry.damping": 0.0}) == pytest.approx(0.5, rel=0.02)
    assert _coast(bench, {"gantry.damping": 3.0}) == pytest.approx(0.5 * math.exp(-0.6), rel=0.05)
    assert _coast(bench, {}) == nominal  # and back to the URDF value at the next reset


def _pushed_travel(bench: Bench, domain: dict, force: float) -> float:
    """Travel of the x joint under a constant joint force ``10 * action`` for 0.2 s."""
    bench.mode = "force"
    obs0, _ = bench.reset(seed=0, options={"domain": {"gantry.damping": 0.0, **domain}})
    return float(bench.run(4, (force / 10.0, 0.0))[0] - obs0[0])


def test_joint_friction_holds_below_and_slides_above_its_value(bench: Bench) -> None:
    assert _pushed_travel(bench, {}, 2.0) > 0.01  # nominal friction 0
    assert abs(_pushed_travel(bench, {"gantry.friction": 2.5}, 2.0)) < 1e-6  # static
    # dynamic: net force 1 N on 1 kg for 0.2 s -> 0.02 m
    assert _pushed_travel(bench, {"gantry.friction": 2.5}, 3.5) == pytest.approx(0.02, rel=0.1)


def test_joint_friction_survives_a_change_of_timestep(bench: Bench) -> None:
    """pybullet stores force * timestep: a stale bound would hold 5x less after 1 ms -> 5 ms."""
    bench.reset(seed=0, options={"domain": {"gantry.friction": 2.5, "sim.timestep": 0.001}})
    assert abs(_pushed_travel(bench, {"gantry.friction": 2.5}, 2.0)) < 1e-6
    bench.reset(seed=0, options={"domain": {"gantry.friction": 2.5}})
    bench.set_knobs({"sim.timestep": 0.001})  # per-step re-draws take the same path
    bench.mode = "force"
    x0 = bench._state()[0]
    assert abs(float(bench.run(4, (0.2, 0.0))[0]) - x0) < 1e-6


def test_joint_limits_scale_and_offset_keep_lower_below_upper(bench: Bench) -> None:
    def stop(domain: dict, push: float) -> float:
        bench.mode = "force"
        bench.reset(seed=0, options={"domain": {"gantry.damping": 5.0, **domain}})
        return float(bench.run(40, (push, 0.0))[0])

    assert stop({}, 1.0) == pytest.approx(0.45, abs=0.01)  # URDF limit
    assert stop({"gantry.limit_scale": 0.5}, 1.0) == pytest.approx(0.225, abs=0.01)
    assert stop({"gantry.limit_offset": 0.1}, 1.0) == pytest.approx(0.55, abs=0.01)
    assert stop({"gantry.limit_offset": 0.1}, -1.0) == pytest.approx(-0.35, abs=0.01)
    assert stop({}, 1.0) == pytest.approx(0.45, abs=0.01)  # back to nominal
    with pytest.raises(KnobError):  # a zero width would make lower == upper
        bench.set_knobs({"gantry.limit_scale": 0.0})


# ---------------------------------------------------------------------- PD
def _track(bench: Bench, domain: dict, action: float = -0.9) -> float:
    """x after one control step towards the setpoint ``0.3 * action`` m, from -0.3 m."""
    bench.mode = "pd"
    bench.reset(seed=0, options={"domain": {"gravity": 0.0, **domain}})
    return float(bench.run(1, (action, 0.0))[0])


def test_pd_gain_knobs_reach_the_controller_and_reset(bench: Bench) -> None:
    bench.reset(seed=0, options={"domain": {"gantry.kp": 600.0, "gantry.max_force": 5.0}})
    assert bench.pd.kp == [600.0, 600.0] and bench.pd.max_force == [5.0, 5.0]
    bench.reset(seed=0)
    assert bench.pd.kp == bench.pd.kp0 and bench.pd.max_force == [20.0, 20.0]  # URDF effort


def test_higher_kp_tracks_faster_and_max_force_bounds_the_push(bench: Bench) -> None:
    strong = {"gantry.max_force": 200.0}  # no saturation: the gains alone decide
    soft, nominal, stiff = (_track(bench, {**strong, "gantry.kp": kp}) for kp in (100, 300, 900))
    assert -0.3 < soft < nominal < stiff < -0.27 + 0.005
    # 2 N on 1 kg (carriage + tip) for 10 semi-implicit substeps of 5 ms: at most
    # a h^2 (1 + 2 + ... + 10) = 2.75 mm
    assert _track(bench, {"gantry.max_force": 2.0}, action=1.0) + 0.3 <= 0.00275 + 1e-6


def test_stable_pd_stays_stable_where_explicit_pd_diverges(bench: Bench) -> None:
    """kd * dt / m = 300 * 0.005 / 0.5 = 3 > 2 on the y joint (and kp * dt^2 / m = 1.5)."""
    bench.mode = "pd"
    stiff = {"gravity": 0.0, "gantry.kp": 30000.0, "gantry.kd": 300.0, "gantry.max_force": 200.0}
    bench.reset(seed=0, options={"domain": stiff})
    obs = bench.run(10, (-1.0, 1.0))
    assert obs[1] == pytest.approx(0.3, abs=1e-3) and abs(obs[3]) < 1e-3
    # the same law evaluated explicitly, by hand, never settles: it chatters at the force bound
    p, g = bench._p, bench.gantry
    bench.reset(seed=0, options={"domain": stiff})
    speeds = []
    for _ in range(100):
        q, qd = p.getJointState(g, 1)[:2]
        tau = min(max(30000.0 * (0.3 - q) - 300.0 * qd, -200.0), 200.0)
        p.setJointMotorControl2(g, 1, pybullet.TORQUE_CONTROL, force=tau)
        p.stepSimulation()
        speeds.append(abs(p.getJointState(g, 1)[1]))
    assert min(speeds[-20:]) > 0.5


# ---------------------------------------------------------------------- pushes
def test_push_hook_is_installed_only_while_pushes_can_happen(bench: Bench) -> None:
    bench.reset(seed=0)
    assert bench._substep_hooks == []
    bench.reset(seed=0, options={"domain": {"push.force": 5.0}})
    assert len(bench._substep_hooks) == 1
    bench.reset(seed=0, options={"domain": {"push.force": 5.0, "push.rate": 0.0}})
    assert bench._substep_hooks == []
    bench.reset(seed=0)
    assert bench._substep_hooks == []


def _pushed_puck(bench: Bench, seed: int) -> np.ndarray:
    bench.mode = "free"
    bench.puck_start = [0.0, 0.0, 0.016]
    domain = {"push.force": 20.0, "push.rate": 10.0}
    bench.reset(seed=seed, options={"domain": domain})
    return np.stack([bench.run(1) for _ in range(20)])


def test_pushes_move_the_puck_horizontally_and_are_seeded(bench: Bench) -> None:
    a = _pushed_puck(bench, 1)
    np.testing.assert_array_equal(a, _pushed_puck(bench, 1))
    assert not np.array_equal(a, _pushed_puck(bench, 2))
    speeds = np.hypot(a[:, 6], a[:, 7])
    assert speeds.max() > 0.1  # 20 N for 5 ms on 0.2 kg: 0.5 m/s per push
    jumps = np.abs(np.diff(speeds))
    assert 3 <= int(np.sum(jumps > 0.2)) <= 25  # about rate * 1 s = 10 pushes
    lin, _ = bench.puck_velocity()
    assert abs(lin[2]) < 0.05  # planar: no vertical kick
    bench.reset(seed=1)
    calm = bench.run(20)
    assert np.hypot(calm[6], calm[7]) < 1e-3  # nominal: no pushes


def test_every_bench_knob_has_a_unit_a_doc_and_a_valid_nominal(bench: Bench) -> None:
    for knob in bench.knobs.values():
        assert knob.unit and knob.doc, knob.name
        assert knob.contains(knob.nominal), knob.name


def test_cartpole_still_reads_its_nominals_from_the_urdf() -> None:
    env = CartPoleEnv()
    try:
        nominal = env.nominal_domain
        assert (nominal["cart.mass"], nominal["pole.mass"]) == (1.0, 0.1)
        assert (nominal["cart.friction"], nominal["pole.damping"]) == (0.0, 0.0)
    finally:
        env.close()

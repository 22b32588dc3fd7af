"""``domrand/Pusher-v0``: push a puck across a table to a goal with a planar x-y pusher.

``domrand/PusherPlace-v0`` (:class:`PusherPlaceEnv`) is the same task with a stricter success
rule: the puck must come to rest on the goal. ``domrand/PusherForce-v0``
(:class:`PusherForceEnv`) is the same task with a force-controlled gantry and no servo.

Description:
    A round pusher tip (radius 2.5 cm, 0.5 kg on a 0.5 kg carriage) rides an x-y gantry of two
    prismatic joints and hovers 3 mm above a 1 x 1 m table (top at z = 0), so it touches only the
    puck: a free 0.2 kg cylinder (radius 4 cm, height 3 cm) that slides on the table with
    Coulomb friction. A stable joint-space PD (:class:`~domrand.envs.pd.JointPD`) drives the
    gantry. Each episode draws the tip start near (-0.3, 0), the puck in x in [-0.1, 0.05],
    y in [-0.15, 0.15] and the goal in x in [0.15, 0.35], y in [-0.25, 0.25] (metres). The
    assets are ``table.urdf``, ``puck.urdf`` and ``pusher.urdf`` in ``domrand.assets/urdf``.
Observation:
    ``Box(15)``: tip position (x, y) and velocity, puck position and velocity, puck angular
    velocity about z (rad/s), goal position, goal minus puck, puck minus tip; plus ``obs.noise``
    / ``obs.bias`` when randomized. ``obs_mode="image"``: ``Box(0, 255, (H, W, 3), uint8)``
    (``image_size``, default 84) from a fixed camera above the table, with a floor and a green
    goal disc that exist only when rendering; visual knobs ``table.*``/``puck.*``/``pusher.*``/
    ``goal.*``/``floor.*`` colours and textures, light, camera, ``distractors.count`` and
    ``image.*`` (see ``domrand.envs.visual``). ``render_mode="rgb_array"`` uses the same camera.
Action:
    ``Box(-1, 1, (2,))``: each control step (0.05 s) the PD setpoint is re-anchored at the tip's
    position plus ``0.04 * action`` metres (clipped to the gantry's nominal range), so an action
    acts like a bounded force command (at most ``kp * 0.04`` = 12 N before the force bound); a
    zero action brakes the tip.
Reward:
    ``-|goal - puck| - 0.5 * |puck - tip|`` in metres every step. The episode terminates when the
    puck is within 5 cm of the goal (bonus +10) or falls off the table; it is truncated after
    100 steps (5 s). The step on which the puck falls is charged that step's cost once for every
    step left to the time limit (since 2026-11-28; before, a fall cost nothing more, and
    policies learned to shove the puck off the table to end the per-step costs early). In v0
    a puck that slides through the goal disc at any speed succeeds; in ``PusherPlace-v0`` it
    must also be slower than 5 cm/s there, i.e. placed on the goal rather than shot across it.
Knobs:
    ``puck.mass`` (kg), ``puck.friction`` (lateral), ``puck.rolling_friction``,
    ``puck.spinning_friction``, ``puck.linear_damping`` and ``puck.angular_damping`` (1/s, via
    ``changeDynamics``), ``table.friction``; the pusher's ``pusher.mass`` (tip), ``pusher.damping``
    and ``pusher.friction`` (gantry joints), ``pusher.kp`` / ``pusher.kd`` / ``pusher.max_force``
    (PD); ``push.force`` / ``push.rate`` (random horizontal pushes on the puck); plus the common
    ``gravity``, ``sim.timestep``, ``action.delay``, ``action.noise``, ``obs.noise``,
    ``obs.bias``. A contact's friction is the product of both bodies' coefficients (nominal
    0.4 * 0.5 = 0.2); rolling friction acts only through the small tilt a push gives the puck.
    ``domrand knobs domrand/Pusher-v0`` lists them with units and ranges.
Version history:
    v0: first release. Amended 2026-11-28 in all three ids (the package is unreleased, so the
    ids stayed): a puck that falls off the table is charged the rest of the episode (see
    Reward). Policies and results from before that date used the free fall.
    ``reset(options={"state": obs})`` (start from a given state, e.g. a real trajectory's
    first observation) added without changing anything else.
    ``PusherForce-v0``: the action is the gantry motors' force, ``action * pusher.max_force``
    (nominal 5 N per joint, :attr:`PusherForceEnv.force_scale`), applied every substep; there is
    no PD servo, so ``pusher.kp`` / ``pusher.kd`` do not exist, a zero action coasts (only the
    gantry's damping and friction slow the tip), and the tip's mass, damping and friction shape
    every motion. Observation, reward, success rule and the puck/table knobs are Pusher-v0's; its
    spec and realities are its own (``assets/specs/pusher_force.yaml``,
    ``assets/realities/pusher_force``).
    ``PusherPlace-v0``: success (bonus and termination) also needs the puck slower than
    ``settle_speed`` (5 cm/s); everything else, knobs and the shipped spec and realities
    included, is Pusher-v0's. Under Pusher-v0's rule a puck that slides on past the goal still
    counts, so the dynamics that decide how far a puck slides (friction, damping, mass) change
    less of what succeeds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from domrand.envs._bullet import pybullet
from domrand.envs.bullet_env import BulletEnv, KnobBinding
from domrand.envs.dynamics import Dynamics
from domrand.envs.pd import JointPD
from domrand.envs.scene import Camera, Distractors, Light, VisualObject, VisualScene
from domrand.knobs import Knob
from domrand.registry import assets_dir

__all__ = ["PusherEnv", "PusherForceEnv", "PusherPlaceEnv", "push_target"]

_GANTRY = (0, 1)  # prismatic x, then y
_TIP = 1  # the link carried by joint y
_PUCK_Z = 0.016  # resting height of the puck's centre (half height + collision margin)


class PusherEnv(BulletEnv):
    """Planar puck pushing. See the module docstring."""

    control_period: ClassVar[float] = 0.05
    nominal_timestep: ClassVar[float] = 0.005
    kp: ClassVar[tuple[float, float]] = (300.0, 300.0)
    kd: ClassVar[tuple[float, float]] = (30.0, 30.0)
    max_delta: ClassVar[float] = 0.04
    puck_radius: ClassVar[float] = 0.04
    tip_radius: ClassVar[float] = 0.025
    success_radius: ClassVar[float] = 0.05
    success_bonus: ClassVar[float] = 10.0
    #: nominal puck damping (pybullet cannot report it; its own default is 0.04)
    puck_damping: ClassVar[float] = 0.5
    #: success needs the puck's planar speed below this (m/s); v0 has no such condition
    settle_speed: ClassVar[float] = math.inf
    #: the registered time limit (steps); a fallen puck is charged the steps left of it
    horizon: ClassVar[int] = 100
    #: 1: a fallen puck is charged the rest of the episode (2026-11-28)
    revision: ClassVar[int] = 1
    #: charge a fallen puck the rest of the episode (False: revision 0's free fall, kept only
    #: for ``benchmarks/pusher_fall.py``, which measures what the free fall taught policies)
    charge_fall: ClassVar[bool] = True

    def __init__(
        self,
        render_mode: str | None = None,
        obs_mode: str = "state",
        image_size: int | Sequence[int] = 84,
    ) -> None:
        super().__init__(render_mode=render_mode, obs_mode=obs_mode, image_size=image_size)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (15,), dtype=np.float32)

    # ------------------------------------------------------------------ scene
    def _load(self) -> None:
        p, cid = self._p, self._client_id
        urdf = assets_dir() / "urdf"
        flags = pybullet.URDF_USE_INERTIA_FROM_FILE
        self._table = p.loadURDF(str(urdf / "table.urdf"), useFixedBase=True)
        self._puck = p.loadURDF(str(urdf / "puck.urdf"), [0.0, 0.0, _PUCK_Z], flags=flags)
        self._pusher = p.loadURDF(str(urdf / "pusher.urdf"), useFixedBase=True, flags=flags)
        p.setJointMotorControlArray(
            self._pusher, _GANTRY, pybullet.VELOCITY_CONTROL, forces=[0.0, 0.0]
        )
        # The tip hovers 3 mm above the table: skip that pair in collision detection (it can never
        # touch, and its narrow phase would cost as much as the puck's own contacts).
        for link in (-1, *_GANTRY):
            p.setCollisionFilterPair(self._pusher, self._table, link, -1, 0)
        if hasattr(self, "pd"):  # a reload: fix the controller's model before knobs apply
            self.pd.reload()
        info = [p.getJointInfo(self._pusher, j) for j in _GANTRY]
        self._lower = [i[8] for i in info]
        self._upper = [i[9] for i in info]
        self._joint_states = functools.partial(pybullet.getJointStates, physicsClientId=cid)
        self._base_pose = functools.partial(
            pybullet.getBasePositionAndOrientation, physicsClientId=cid
        )
        self._base_velocity = functools.partial(pybullet.getBaseVelocity, physicsClientId=cid)
        if self.renders_images:  # visual-only bodies (no collision shape, no mass): no physics
            from domrand.envs.visual import textured_box

            floor = textured_box(cid, [3.0, 3.0, 0.01], [0.45, 0.45, 0.45, 1.0])
            self._floor = p.createMultiBody(0.0, -1, floor, [0.0, 0.0, -0.75])
            goal = p.createVisualShape(
                p.GEOM_CYLINDER, radius=0.05, length=0.002, rgbaColor=[0.1, 0.8, 0.2, 1.0]
            )
            self._goal_marker = p.createMultiBody(0.0, -1, goal, [0.25, 0.0, 0.001])

    def _task_bindings(self) -> list[KnobBinding]:
        puck, table, pusher = self._puck, self._table, self._pusher
        self.pd = JointPD(self._client_id, pusher, _GANTRY, self.kp, self.kd)
        dyn = Dynamics(self)
        damping = self.puck_damping
        return [
            dyn.mass(puck, -1, "puck.mass", high=10.0, doc="mass of the puck"),
            dyn.lateral_friction(puck, -1, "puck.friction", doc="friction coefficient of the puck"),
            dyn.rolling_friction(
                puck, -1, "puck.rolling_friction", doc="rolling friction of the puck"
            ),
            dyn.spinning_friction(
                puck, -1, "puck.spinning_friction", doc="spinning friction of the puck"
            ),
            dyn.linear_damping(
                puck, "puck.linear_damping", nominal=damping, doc="velocity damping of the puck"
            ),
            dyn.angular_damping(
                puck, "puck.angular_damping", nominal=damping, doc="spin damping of the puck"
            ),
            dyn.lateral_friction(
                table, -1, "table.friction", doc="friction coefficient of the table"
            ),
            dyn.mass(pusher, _TIP, "pusher.mass", high=50.0, doc="mass of the pusher tip"),
            dyn.joint_damping(
                pusher, _GANTRY, "pusher.damping", unit="N s/m", doc="viscous damping of the gantry"
            ),
            dyn.joint_friction(
                pusher, _GANTRY, "pusher.friction", unit="N", doc="Coulomb friction of the gantry"
            ),
            *dyn.pd_gains(self.pd, "pusher", units=("N/m", "N s/m", "N")),
            *dyn.external_push(puck, -1, "push", planar=True, high=100.0),
        ]

    # ------------------------------------------------------------------ episode
    def _reset_task(self) -> None:
        rng = self.np_random
        start = (-0.3 + rng.uniform(-0.05, 0.05), rng.uniform(-0.1, 0.1))
        puck = (rng.uniform(-0.1, 0.05), rng.uniform(-0.15, 0.15))
        goal = (float(rng.uniform(0.15, 0.35)), float(rng.uniform(-0.25, 0.25)))
        self._place(start, (0.0, 0.0), puck, (0.0, 0.0, 0.0), goal)

    def _set_state(self, state: np.ndarray) -> None:
        if state.shape != (15,):
            raise ValueError(f"a Pusher state has the 15 observation entries, got {state.shape}")
        x, y, vx, vy, px, py, pvx, pvy, wz, gx, gy = (float(v) for v in state[:11])
        self._place((x, y), (vx, vy), (px, py), (pvx, pvy, wz), (gx, gy))

    def _place(
        self,
        tip: tuple[float, float],
        tip_velocity: tuple[float, float],
        puck: tuple[float, float],
        puck_velocity: tuple[float, float, float],
        goal: tuple[float, float],
    ) -> None:
        """Put the tip, the puck (x, y, vx, vy, spin) and the goal where an episode starts."""
        for j, x, v in zip(_GANTRY, tip, tip_velocity):
            self._p.resetJointState(self._pusher, j, float(x), float(v))
        self.pd.targets = [float(x) for x in tip]
        # A contact manifold (points and warm-start impulses) survives a teleport: a puck put back
        # where it rested would start the episode with last episode's contact state. Lift it
        # clear, let collision detection drop its pairs, then place it: every episode starts
        # from the same physics state, whatever came before.
        self._p.resetBasePositionAndOrientation(self._puck, (0.0, 0.0, 10.0), (0.0, 0.0, 0.0, 1.0))
        self._p.performCollisionDetection()
        position = (float(puck[0]), float(puck[1]), _PUCK_Z)
        self._p.resetBasePositionAndOrientation(self._puck, position, (0.0, 0.0, 0.0, 1.0))
        vx, vy, wz = (float(v) for v in puck_velocity)
        self._p.resetBaseVelocity(self._puck, (vx, vy, 0.0), (0.0, 0.0, wz))
        self._goal = (float(goal[0]), float(goal[1]))
        self._substep = 0
        if self.renders_images:
            self._p.resetBasePositionAndOrientation(
                self._goal_marker, (*self._goal, 0.001), (0.0, 0.0, 0.0, 1.0)
            )

    def _apply_action(self, action: list[float]) -> None:
        pd = self.pd
        if self._substep == 0:  # first substep of a control step: re-anchor the setpoint
            d = self.max_delta
            states = self._joint_states(self._pusher, _GANTRY)
            targets = [
                min(max(s[0] + d * a, lo), hi)
                for s, a, lo, hi in zip(states, action, self._lower, self._upper)
            ]
            pd.set_targets(targets, self.control_period / self._substeps)
        self._substep = (self._substep + 1) % self._substeps
        pd.apply()

    def _state(self) -> tuple[float, ...]:
        (x, vx, _, _), (y, vy, _, _) = self._joint_states(self._pusher, _GANTRY)
        (px, py, pz), _ = self._base_pose(self._puck)
        (pvx, pvy, _), (_, _, wz) = self._base_velocity(self._puck)
        self._puck_z = pz
        gx, gy = self._goal
        return (x, y, vx, vy, px, py, pvx, pvy, wz, gx, gy, gx - px, gy - py, px - x, py - y)

    def _task_outcome(self, state: Sequence[float]) -> tuple[float, bool, dict[str, Any]]:
        dist = math.hypot(state[11], state[12])
        reach = math.hypot(state[13], state[14])
        speed = math.hypot(state[6], state[7])
        success = dist < self.success_radius and speed < self.settle_speed
        fell = self._puck_z < -0.05
        reward = -dist - 0.5 * reach + (self.success_bonus if success else 0.0)
        if fell and not success and self.charge_fall:
            # A lost puck stays lost: the step is charged its cost for every step left, as if
            # the episode ran on with the puck where it fell. Ending the episode for free would
            # pay a policy to shove the puck off the table and stop the per-step costs.
            reward *= 1 + max(self.horizon - self._steps, 0)
        info = {"distance": dist, "is_success": success, "puck_fell": fell, "puck_speed": speed}
        return reward, success or fell, info

    # ------------------------------------------------------------------ rendering
    def _visual_scene(self) -> VisualScene:
        links = tuple(sorted({shape[1] for shape in self._p.getVisualShapeData(self._pusher)}))
        return VisualScene(
            objects=(
                VisualObject("table", self._table),
                VisualObject("puck", self._puck),
                VisualObject("pusher", self._pusher, links),
                VisualObject("goal", self._goal_marker),
                VisualObject("floor", self._floor),
            ),
            camera=Camera(target=(0.0, 0.0, 0.0), distance=1.3, yaw=0.0, pitch=-60.0, fov=60.0),
            light=Light(azimuth=-120.0, elevation=60.0, distance=3.0),
            # along the far edge of the table, clear of the puck's and the goal's ranges
            distractors=Distractors(5, (-0.45, 0.45), (0.32, 0.45), 0.0, size=0.05),
        )


class PusherPlaceEnv(PusherEnv):
    """``domrand/PusherPlace-v0``: Pusher-v0, but the puck must come to rest on the goal."""

    settle_speed: ClassVar[float] = 0.05


class PusherForceEnv(PusherEnv):
    """``domrand/PusherForce-v0``: Pusher-v0 with force-controlled gantry motors (no servo).

    The action is the force of the two gantry motors as a fraction of ``pusher.max_force``
    (nominal :attr:`force_scale` N per joint), applied at every substep. Like a torque-controlled
    arm (Mehta et al. 2019's Pusher-3DOF), the policy itself must accelerate and brake the tip,
    so the tip's mass, the gantry's damping and friction and the motor strength change what an
    action does; under Pusher-v0's PD servo a stiff position loop hides most of them.
    """

    #: nominal motor force per unit action on each gantry joint (N); the ``pusher.max_force`` knob
    force_scale: ClassVar[float] = 5.0
    _SERVO_KNOBS: ClassVar[frozenset[str]] = frozenset(
        {"pusher.kp", "pusher.kd", "pusher.max_force"}
    )

    def _task_bindings(self) -> list[KnobBinding]:
        # The PD object stays (it switches the gantry's velocity motors off at every load), but
        # its gains are not knobs: nothing reads them.
        kept = [b for b in super()._task_bindings() if b.knob.name not in self._SERVO_KNOBS]
        self._force = self.force_scale
        self._motors = functools.partial(
            pybullet.setJointMotorControlArray, physicsClientId=self._client_id
        )

        def set_force(value: float) -> None:
            self._force = float(value)

        knob = Knob(
            "pusher.max_force",
            self.force_scale,
            "N",
            0.0,
            10.0 * self.force_scale,
            low_open=True,
            doc="gantry motor force at |action| = 1, per joint",
        )
        return [*kept, KnobBinding(knob, set_force)]

    def _apply_action(self, action: list[float]) -> None:
        f = self._force  # pybullet clears applied joint forces after every step: re-apply each
        self._motors(self._pusher, _GANTRY, pybullet.TORQUE_CONTROL, forces=[f * a for a in action])


def push_target(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A scripted push for any Pusher's state observation: line the tip up behind the puck (as
    seen from the goal), then push through it, going round the puck when beside or in front.

    Returns the tip's position and where it should go next (world x, y in m). A servo policy
    steers toward the target (Pusher-v0: ``(target - tip) / max_delta``); a force policy closes
    a PD around it (PusherForce-v0). The tests and benchmarks use it as a known-good controller.
    """
    reach = PusherEnv.puck_radius + PusherEnv.tip_radius  # centre distance when touching
    tip, puck, goal = (np.asarray(obs[i : i + 2], dtype=np.float64) for i in (0, 4, 9))
    d = goal - puck
    u = d / max(float(np.linalg.norm(d)), 1e-9)
    perp = np.array([-u[1], u[0]])
    along, lateral = float((tip - puck) @ u), float((tip - puck) @ perp)
    if along < -0.5 * reach and abs(lateral) < 0.02:
        target = puck + 0.1 * u - lateral * perp  # push, correcting the line
    elif along < -0.5 * reach:
        target = puck - (reach + 0.01) * u  # move behind
    else:  # beside or in front: go round, keeping clear of the puck
        side = 1.0 if lateral >= 0 else -1.0
        target = puck + side * (reach + 0.03) * perp - (reach + 0.02) * u
    return tip, target

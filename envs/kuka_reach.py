"""``domrand/KukaReach-v0``: a KUKA iiwa reaching random targets under joint-space PD control.

Description:
    The 7-joint KUKA LBR iiwa of pybullet_data (``kuka_iiwa/model.urdf``, fixed base at the
    origin) must bring its flange (the origin of ``lbr_iiwa_link_7``) within 5 cm of a target
    drawn uniformly from the box x in [0.35, 0.65], y in [-0.35, 0.35], z in [0.25, 0.75] m.
    Joints a1-a6 are actuated by a joint-space PD in torque mode with physical gains, evaluated
    at every 2.5 ms physics substep (the stable PD of :class:`~domrand.envs.pd.JointPD`, whose
    model of the arm is the nominal one) and without gravity compensation, so the arm sags by
    about ``g(q) / kp``: masses, gravity, damping and gains all change where a command lands.
    The flange joint a7 does not move the reach point; it is held at 0 by a stiff velocity servo
    because its 0.3 kg link (6e-4 kg m^2, no motor armature in the URDF) makes its own PD and
    the URDF's joint damping diverge at any affordable timestep. Masses far below nominal (about
    0.4x arm-wide) can make the stiff servo ring: the controller's model over-estimates the
    inertia (the physics-fault check ends such episodes).
Observation:
    ``Box(27)``: joint positions a1-a6 (rad), joint velocities (rad/s), PD setpoint minus
    position (rad), flange position (m), target position (m), target minus flange (m); plus
    ``obs.noise`` / ``obs.bias`` when randomized. ``obs_mode="image"``: ``Box(0, 255, (H, W, 3),
    uint8)`` (``image_size``, default 84) from a fixed camera, with a floor and a green target
    sphere that exist only when rendering; visual knobs ``arm.*``/``floor.*``/``target.*``
    colours and textures, light, camera, ``distractors.count`` and ``image.*`` (see
    ``domrand.envs.visual``). ``render_mode="rgb_array"`` uses the same camera.
Action:
    ``Box(-1, 1, (6,))``: setpoint increments. Each control step (0.05 s) the PD setpoint of
    joint i moves by ``0.1 * action[i]`` rad (at most 2 rad/s), clipped to the nominal joint
    limits; a zero action holds the setpoint. The setpoint starts at the initial pose.
Reward:
    ``-distance(flange, target)`` in metres every step; reaching within 5 cm ends the episode
    (terminated) with a bonus of +10. Truncated after 150 steps (7.5 s).
Knobs:
    ``link1.mass`` ... ``link7.mass`` (kg, inertia scales with mass) and ``arm.mass_scale`` (a
    multiplier on all seven), ``arm.damping`` (viscous damping of a1-a6), ``arm.friction``
    (Coulomb joint friction), ``arm.kp`` / ``arm.kd`` (multipliers on the nominal per-joint
    gains), ``arm.max_force`` (torque bound), ``arm.limit_scale`` / ``arm.limit_offset`` (the
    physical joint limits; the action is still clipped to the nominal ones), ``push.force`` /
    ``push.rate`` (random pushes on the flange), plus the common ``gravity``, ``sim.timestep``,
    ``action.delay``, ``action.noise``, ``obs.noise``, ``obs.bias``.
    ``domrand knobs domrand/KukaReach-v0`` lists them with units and ranges.
Version history:
    v0: first release.
    ``reset(options={"state": obs})`` (start from a given state: joints, their velocities and
    setpoint, and the target, as in the observation; a7 at rest) added without changing
    anything else.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pybullet_data

from domrand.envs._bullet import pybullet
from domrand.envs.bullet_env import BulletEnv, KnobBinding
from domrand.envs.dynamics import Dynamics
from domrand.envs.pd import JointPD
from domrand.envs.scene import Camera, Distractors, Light, VisualObject, VisualScene

__all__ = ["KukaReachEnv"]

_ARM = (0, 1, 2, 3, 4, 5)
_FLANGE = 6  # joint a7 and link lbr_iiwa_link_7, whose origin is the reach point


class KukaReachEnv(BulletEnv):
    """KUKA iiwa joint-space reaching. See the module docstring."""

    control_period: ClassVar[float] = 0.05
    nominal_timestep: ClassVar[float] = 0.0025
    #: nominal PD gains of a1-a6, sized to each joint's inertia (N m/rad, N m s/rad)
    kp: ClassVar[tuple[float, ...]] = (400.0, 400.0, 150.0, 250.0, 30.0, 30.0)
    kd: ClassVar[tuple[float, ...]] = (40.0, 40.0, 10.0, 20.0, 1.0, 1.0)
    max_delta: ClassVar[float] = 0.1
    success_radius: ClassVar[float] = 0.05
    success_bonus: ClassVar[float] = 10.0
    home: ClassVar[tuple[float, ...]] = (0.0, 0.6, 0.0, -1.3, 0.0, 0.9)
    target_low: ClassVar[tuple[float, float, float]] = (0.35, -0.35, 0.25)
    target_high: ClassVar[tuple[float, float, float]] = (0.65, 0.35, 0.75)

    def __init__(
        self,
        render_mode: str | None = None,
        obs_mode: str = "state",
        image_size: int | Sequence[int] = 84,
    ) -> None:
        super().__init__(render_mode=render_mode, obs_mode=obs_mode, image_size=image_size)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (len(_ARM),), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (27,), dtype=np.float32)

    # ------------------------------------------------------------------ scene
    def _load(self) -> None:
        p = self._p
        self._arm = p.loadURDF(
            pybullet_data.getDataPath() + "/kuka_iiwa/model.urdf", [0, 0, 0], useFixedBase=True
        )
        arm, cid = self._arm, self._client_id
        p.setJointMotorControlArray(arm, _ARM, pybullet.VELOCITY_CONTROL, forces=[0.0] * 6)
        # a7 is locked by a stiff velocity servo; its URDF damping is dropped (see docstring).
        p.changeDynamics(arm, _FLANGE, jointDamping=0.0)
        p.setJointMotorControl2(
            arm, _FLANGE, pybullet.VELOCITY_CONTROL, targetVelocity=0.0, force=300.0
        )
        if hasattr(self, "pd"):  # a reload: fix the controller's model before knobs apply
            self.pd.reload()
        info = [p.getJointInfo(arm, j) for j in _ARM]
        self._lower = [i[8] for i in info]
        self._upper = [i[9] for i in info]
        self._joint_states = functools.partial(pybullet.getJointStates, physicsClientId=cid)
        self._link_state = functools.partial(
            pybullet.getLinkState, computeForwardKinematics=True, physicsClientId=cid
        )
        if self.renders_images:  # visual-only bodies (no collision shape, no mass): no physics
            from domrand.envs.visual import textured_box

            floor = textured_box(cid, [3.0, 3.0, 0.01], [0.5, 0.5, 0.5, 1.0])
            self._floor = p.createMultiBody(0.0, -1, floor, [0.0, 0.0, -0.01])
            marker = p.createVisualShape(p.GEOM_SPHERE, radius=0.04, rgbaColor=[0.1, 0.8, 0.2, 1])
            self._marker = p.createMultiBody(0.0, -1, marker, [0.5, 0.0, 0.5])

    def _task_bindings(self) -> list[KnobBinding]:
        arm = self._arm
        self.pd = JointPD(self._client_id, arm, _ARM, self.kp, self.kd)
        dyn = Dynamics(self)
        links = range(7)
        return [
            *(
                dyn.mass(arm, i, f"link{i + 1}.mass", doc=f"mass of lbr_iiwa_link_{i + 1}")
                for i in links
            ),
            dyn.mass_scale(arm, list(links), "arm.mass_scale", doc="multiplier on all link masses"),
            dyn.joint_damping(arm, _ARM, "arm.damping", doc="viscous damping of joints a1-a6"),
            dyn.joint_friction(
                arm, _ARM, "arm.friction", high=300.0, doc="Coulomb friction of a1-a6"
            ),
            *dyn.pd_gains(self.pd, "arm", scale=True),
            *dyn.joint_limits(arm, _ARM, "arm"),
            *dyn.external_push(arm, _FLANGE, "push"),
        ]

    # ------------------------------------------------------------------ episode
    def _reset_task(self) -> None:
        rng = self.np_random
        q0 = [h + d for h, d in zip(self.home, rng.uniform(-0.1, 0.1, len(_ARM)).tolist())]
        target = rng.uniform(self.target_low, self.target_high).tolist()
        self._place(q0, [0.0] * len(_ARM), q0, target)

    def _set_state(self, state: np.ndarray) -> None:
        if state.shape != (27,):
            raise ValueError(
                f"a KukaReach state has the 27 observation entries, got {state.shape}"
            )
        q = state[0:6].tolist()
        setpoint = (state[12:18] + state[0:6]).tolist()  # the observation holds setpoint - q
        self._place(q, state[6:12].tolist(), setpoint, state[21:24].tolist())

    def _place(
        self,
        q: Sequence[float],
        velocity: Sequence[float],
        setpoint: Sequence[float],
        target: Sequence[float],
    ) -> None:
        """Put the arm (a1-a6 positions and velocities, a7 at rest at 0), the PD setpoint and
        the target where an episode starts."""
        for j, x, v in zip(_ARM, q, velocity):
            self._p.resetJointState(self._arm, j, float(x), float(v))
        self._p.resetJointState(self._arm, _FLANGE, 0.0, 0.0)
        self.pd.targets = [float(x) for x in setpoint]
        self._target = tuple(float(x) for x in target)
        self._substep = 0
        if self.renders_images:
            self._p.resetBasePositionAndOrientation(self._marker, self._target, (0, 0, 0, 1))

    def _apply_action(self, action: list[float]) -> None:
        pd = self.pd
        if self._substep == 0:  # first substep of a control step: move the setpoint once
            d = self.max_delta
            targets = [
                min(max(t + d * a, lo), hi)
                for t, a, lo, hi in zip(pd.targets, action, self._lower, self._upper)
            ]
            pd.set_targets(targets, self.control_period / self._substeps)
        self._substep = (self._substep + 1) % self._substeps
        pd.apply()

    def _state(self) -> tuple[float, ...]:
        states = self._joint_states(self._arm, _ARM)
        q = [s[0] for s in states]
        ee = self._link_state(self._arm, _FLANGE)[4]
        tx, ty, tz = self._target
        return (
            *q,
            *(s[1] for s in states),
            *(t - x for t, x in zip(self.pd.targets, q)),
            *ee,
            tx,
            ty,
            tz,
            tx - ee[0],
            ty - ee[1],
            tz - ee[2],
        )

    def _task_outcome(self, state: Sequence[float]) -> tuple[float, bool, dict[str, Any]]:
        dist = math.sqrt(state[24] ** 2 + state[25] ** 2 + state[26] ** 2)
        success = dist < self.success_radius
        reward = -dist + (self.success_bonus if success else 0.0)
        return reward, success, {"distance": dist, "is_success": success}

    # ------------------------------------------------------------------ rendering
    def _visual_scene(self) -> VisualScene:
        links = tuple(sorted({shape[1] for shape in self._p.getVisualShapeData(self._arm)}))
        return VisualScene(
            objects=(
                VisualObject("arm", self._arm, links),
                VisualObject("floor", self._floor),
                VisualObject("target", self._marker),
            ),
            camera=Camera(target=(0.35, 0.0, 0.35), distance=1.5, yaw=50.0, pitch=-30.0, fov=60.0),
            light=Light(azimuth=-120.0, elevation=55.0, distance=4.0),
            distractors=Distractors(5, (-0.3, 0.9), (-0.8, 0.8), 0.0, size=0.08),
        )

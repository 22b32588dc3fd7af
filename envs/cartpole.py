"""``domrand/CartPole-v0``: pybullet's cart-pole with a continuous force and randomizable physics.

Description:
    A pole hinged on a cart that slides on a rail (``cartpole.urdf`` from pybullet_data: cart
    1 kg, pole 0.1 kg and 1 m long). The agent pushes the cart to keep the pole upright.
Observation:
    ``Box(4)``: cart position x (m), cart velocity (m/s), pole angle theta (rad, 0 = upright),
    pole angular velocity (rad/s); plus ``obs.noise`` / ``obs.bias`` when randomized.
Action:
    ``Box(-1, 1, (1,))``: the force on the cart is ``motor.gain * action`` newtons. Actions outside
    the bounds are clipped (after ``action.noise``, before ``action.delay``).
Reward:
    +1 for every control step (0.02 s) the pole stays within 12 degrees and the cart within
    2.4 m; the episode terminates otherwise, and is truncated after 500 steps (max return 500).
Knobs:
    ``cart.mass``, ``pole.mass`` (inertia scales with mass), ``cart.friction`` (Coulomb friction
    of the rail), ``pole.damping`` (hinge viscous damping), ``motor.gain``, plus the common
    ``gravity``, ``sim.timestep``, ``action.delay``, ``action.noise``, ``obs.noise``,
    ``obs.bias``. ``domrand knobs domrand/CartPole-v0`` lists them with units and ranges.
Version history:
    v0: first release.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pybullet_data

from domrand.envs._bullet import pybullet
from domrand.envs.bullet_env import BulletEnv, KnobBinding
from domrand.knobs import Knob, Phase

__all__ = ["CartPoleEnv"]

_SLIDER, _HINGE = 0, 1


class CartPoleEnv(BulletEnv):
    """Cart-pole balancing with a continuous force. See the module docstring."""

    control_period: ClassVar[float] = 0.02
    nominal_timestep: ClassVar[float] = 0.004
    x_limit: ClassVar[float] = 2.4
    theta_limit: ClassVar[float] = 12 * 2 * np.pi / 360

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__(render_mode=render_mode)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), dtype=np.float32)

    # ------------------------------------------------------------------ scene
    def _load(self) -> None:
        p = self._p
        self._cartpole = p.loadURDF(
            pybullet_data.getDataPath() + "/cartpole.urdf", [0.0, 0.0, 0.0], useFixedBase=True
        )
        info_cart = p.getDynamicsInfo(self._cartpole, _SLIDER)
        info_pole = p.getDynamicsInfo(self._cartpole, _HINGE)
        self._inertia0 = {_SLIDER: info_cart[2], _HINGE: info_pole[2]}
        self._mass0 = {_SLIDER: info_cart[0], _HINGE: info_pole[0]}
        cid = self._client_id
        self._motor = functools.partial(pybullet.setJointMotorControl2, physicsClientId=cid)
        self._joint_states = functools.partial(pybullet.getJointStates, physicsClientId=cid)
        # Disable the default velocity motor on the hinge so the pole swings freely.
        p.setJointMotorControl2(self._cartpole, _HINGE, pybullet.VELOCITY_CONTROL, force=0.0)

    def _task_bindings(self) -> list[KnobBinding]:
        K = Knob
        return [
            KnobBinding(
                K(
                    "cart.mass",
                    1.0,
                    "kg",
                    0.0,
                    100.0,
                    Phase.RESET,
                    low_open=True,
                    doc="mass of the cart",
                ),
                lambda m: self._set_mass(_SLIDER, m),
            ),
            KnobBinding(
                K(
                    "pole.mass",
                    0.1,
                    "kg",
                    0.0,
                    10.0,
                    Phase.RESET,
                    low_open=True,
                    doc="mass of the pole (its inertia scales with it)",
                ),
                lambda m: self._set_mass(_HINGE, m),
            ),
            KnobBinding(
                K(
                    "cart.friction",
                    0.0,
                    "N",
                    0.0,
                    50.0,
                    Phase.RESET,
                    doc="Coulomb friction force of the rail",
                ),
                self._set_friction,
            ),
            KnobBinding(
                K(
                    "pole.damping",
                    0.0,
                    "N m s/rad",
                    0.0,
                    10.0,
                    Phase.RESET,
                    doc="viscous damping of the hinge",
                ),
                self._set_damping,
            ),
            KnobBinding(
                K(
                    "motor.gain",
                    10.0,
                    "N",
                    0.0,
                    1000.0,
                    Phase.STEP,
                    low_open=True,
                    doc="force on the cart per unit action",
                ),
                self._set_gain,
            ),
        ]

    def _set_mass(self, link: int, mass: float) -> None:
        ratio = float(mass) / self._mass0[link]
        inertia = [ratio * i for i in self._inertia0[link]]
        self._p.changeDynamics(self._cartpole, link, mass=float(mass), localInertiaDiagonal=inertia)

    def _set_friction(self, force: float) -> None:
        # A velocity motor with target 0 and bounded force is Coulomb joint friction.
        self._p.setJointMotorControl2(
            self._cartpole,
            _SLIDER,
            pybullet.VELOCITY_CONTROL,
            targetVelocity=0.0,
            force=float(force),
        )

    def _set_damping(self, damping: float) -> None:
        self._p.changeDynamics(self._cartpole, _HINGE, jointDamping=float(damping))

    def _set_gain(self, gain: float) -> None:
        self._gain = float(gain)

    # ------------------------------------------------------------------ episode
    def _reset_task(self) -> None:
        x, xd, th, thd = self.np_random.uniform(-0.05, 0.05, size=4)
        self._p.resetJointState(self._cartpole, _SLIDER, float(x), float(xd))
        self._p.resetJointState(self._cartpole, _HINGE, float(th), float(thd))

    def _apply_action(self, action: list[float]) -> None:
        # Joint torques are cleared after every stepSimulation, so this runs each substep.
        self._motor(self._cartpole, _SLIDER, pybullet.TORQUE_CONTROL, force=self._gain * action[0])

    def _state(self) -> tuple[float, float, float, float]:
        (x, xd, _, _), (th, thd, _, _) = self._joint_states(self._cartpole, (_SLIDER, _HINGE))
        return (x, xd, th, thd)

    def _task_outcome(self, state: Sequence[float]) -> tuple[float, bool, dict[str, Any]]:
        failed = abs(state[0]) > self.x_limit or abs(state[2]) > self.theta_limit
        return 1.0, failed, {}

    # ------------------------------------------------------------------ rendering
    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        x = self._p.getJointState(self._cartpole, _SLIDER)[0]
        view = self._p.computeViewMatrixFromYawPitchRoll([x, 0, 0.3], 3.0, 0, -10, 0, 2)
        proj = self._p.computeProjectionMatrixFOV(60, 4 / 3, 0.1, 20)
        _, _, rgba, _, _ = self._p.getCameraImage(
            160, 120, view, proj, renderer=pybullet.ER_TINY_RENDERER
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(120, 160, 4)[:, :, :3]

"""``domrand/CartPole-v0``: pybullet's cart-pole with a continuous force and randomizable physics.

Description:
    A pole hinged on a cart that slides on a rail (``cartpole.urdf`` from pybullet_data: cart
    1 kg, pole 0.1 kg and 1 m long). The agent pushes the cart to keep the pole upright.
Observation:
    ``obs_mode="state"`` (default): ``Box(4)``: cart position x (m), cart velocity (m/s), pole
    angle theta (rad, 0 = upright), pole angular velocity (rad/s); plus ``obs.noise`` /
    ``obs.bias`` when randomized.
    ``obs_mode="image"``: ``Box(0, 255, (H, W, 3), uint8)`` (``image_size``, default 84): a fixed
    camera that sees the whole +-2.4 m track in front of a floor and a backdrop wall; the reset
    ``info["state"]`` holds the 4 state numbers. ``render_mode="rgb_array"`` uses the same camera.
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
    When the env renders (image mode or ``rgb_array``) it also has the visual knobs of
    ``domrand.envs.visual`` for the objects ``rail``, ``cart``, ``pole``, ``floor`` and ``wall``
    (``cart.color.r``, ..., ``cart.texture``), the light, the camera, ``distractors.count`` (up to
    5, behind the track) and the ``image.*`` effects; in state mode without rendering they do not
    exist, because nothing would read them.
Version history:
    v0: first release. Image observation mode and visual knobs added later without changing
    state-mode dynamics or observations; ``render()`` now uses the image-mode camera.
    ``reset(options={"state": obs})`` (start from a given state, e.g. a real trajectory's
    first observation) added without changing anything else.
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
from domrand.envs.dynamics import Dynamics
from domrand.envs.scene import Camera, Distractors, Light, VisualObject, VisualScene
from domrand.knobs import Knob, Phase

__all__ = ["CartPoleEnv"]

_SLIDER, _HINGE = 0, 1


class CartPoleEnv(BulletEnv):
    """Cart-pole balancing with a continuous force. See the module docstring."""

    control_period: ClassVar[float] = 0.02
    nominal_timestep: ClassVar[float] = 0.004
    x_limit: ClassVar[float] = 2.4
    theta_limit: ClassVar[float] = 12 * 2 * np.pi / 360

    def __init__(
        self,
        render_mode: str | None = None,
        obs_mode: str = "state",
        image_size: int | Sequence[int] = 84,
    ) -> None:
        super().__init__(render_mode=render_mode, obs_mode=obs_mode, image_size=image_size)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), dtype=np.float32)

    # ------------------------------------------------------------------ scene
    def _load(self) -> None:
        p = self._p
        self._cartpole = p.loadURDF(
            pybullet_data.getDataPath() + "/cartpole.urdf", [0.0, 0.0, 0.0], useFixedBase=True
        )
        cid = self._client_id
        self._motor = functools.partial(pybullet.setJointMotorControl2, physicsClientId=cid)
        self._joint_states = functools.partial(pybullet.getJointStates, physicsClientId=cid)
        # Disable the default velocity motor on the hinge so the pole swings freely.
        p.setJointMotorControl2(self._cartpole, _HINGE, pybullet.VELOCITY_CONTROL, force=0.0)
        if self.renders_images:  # visual-only bodies (no collision shape, no mass): no physics
            from domrand.envs.visual import textured_box

            cid = self._client_id
            floor = textured_box(cid, [6.0, 6.0, 0.05], [0.45, 0.42, 0.38, 1.0])
            wall = textured_box(cid, [6.0, 0.05, 3.0], [0.25, 0.3, 0.35, 1.0])
            self._floor = p.createMultiBody(0.0, -1, floor, [0.0, 0.0, -0.35])
            self._wall = p.createMultiBody(0.0, -1, wall, [0.0, 1.6, 1.5])

    def _task_bindings(self) -> list[KnobBinding]:
        body, dyn = self._cartpole, Dynamics(self)
        return [
            dyn.mass(body, _SLIDER, "cart.mass", doc="mass of the cart"),
            dyn.mass(
                body, _HINGE, "pole.mass", doc="mass of the pole (its inertia scales with it)"
            ),
            dyn.joint_friction(
                body,
                [_SLIDER],
                "cart.friction",
                high=50.0,
                unit="N",
                doc="Coulomb friction force of the rail",
            ),
            dyn.joint_damping(body, [_HINGE], "pole.damping", doc="viscous damping of the hinge"),
            KnobBinding(
                Knob(
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

    def _set_gain(self, gain: float) -> None:
        self._gain = float(gain)

    # ------------------------------------------------------------------ episode
    def _reset_task(self) -> None:
        x, xd, th, thd = self.np_random.uniform(-0.05, 0.05, size=4)
        self._p.resetJointState(self._cartpole, _SLIDER, float(x), float(xd))
        self._p.resetJointState(self._cartpole, _HINGE, float(th), float(thd))

    def _set_state(self, state: np.ndarray) -> None:
        if state.shape != (4,):
            raise ValueError(f"a CartPole state is (x, x_dot, theta, theta_dot), got {state.shape}")
        x, xd, th, thd = (float(v) for v in state)
        self._p.resetJointState(self._cartpole, _SLIDER, x, xd)
        self._p.resetJointState(self._cartpole, _HINGE, th, thd)

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
    def _visual_scene(self) -> VisualScene:
        body = self._cartpole
        return VisualScene(
            objects=(
                VisualObject("rail", body, -1),
                VisualObject("cart", body, _SLIDER),
                VisualObject("pole", body, _HINGE),
                VisualObject("floor", self._floor),
                VisualObject("wall", self._wall),
            ),
            # Sees x in [-2.7, 2.7] m at the track's height with a square image.
            camera=Camera(target=(0.0, 0.0, 0.35), distance=4.6, yaw=0.0, pitch=-8.0, fov=62.0),
            light=Light(azimuth=-120.0, elevation=50.0, distance=6.0),  # front-left, above
            distractors=Distractors(max_count=5, x=(-3.0, 3.0), y=(0.7, 1.3), z=-0.3, size=0.3),
        )

"""``domrand/Localization-v0``: find an object on a table from one randomized image (Tobin 2017).

Description:
    A table (0.8 x 0.6 m, top at 0.75 m) in front of a backdrop wall, on a floor. An 8 cm target
    cube stands at a random place on the table with a random yaw, among 0..10 smaller distractor
    objects (spheres, cylinders, capsules: never cubes, so the target is always identifiable by
    its shape, whatever its colour). As in Tobin et al. 2017, every appearance is a knob:
    colours and bank textures of floor, wall, table and target, the light, the camera, the
    distractors and the post-render image effects. A CNN trained on these renders to regress the
    target's position is meant to work on images it never saw (the shipped "realities").
Observation:
    ``Box(0, 255, (H, W, 3), uint8)``, ``image_size`` default 84 x 84: the randomized camera image.
    Image mode is the only mode. ``info["label"]`` (reset and step) is the target's ``(x, y)`` on
    the table in metres, ``float32``, in the table frame (origin at the table centre, x to the
    camera's right, y away from the camera); ``x`` in [-0.3, 0.3] and ``y`` in [-0.2, 0.2].
Action:
    ``Box([-0.4, -0.3], [0.4, 0.3])``: a guess of the label (the table's extent). The episode is a
    single step: it evaluates a localization policy the gymnasium way. Collecting a training set
    needs no step at all: ``reset()`` returns the image and the label (see ``domrand dataset``).
Reward:
    Minus the distance in metres between the guess (clipped to the action bounds) and the label;
    ``info["error"]`` holds the distance. Every episode terminates after its one step.
Knobs:
    Appearance of the floor, the wall, the table and the target (colour channels multiply the
    texture; ``.texture`` indexes the 1,024-texture bank, -1 = plain colour; TinyRenderer draws
    any opacity above 0 as opaque and hides an object at 0): ``floor.color.r``,
    ``floor.color.g``, ``floor.color.b``, ``floor.color.a``, ``floor.texture``,
    ``wall.color.r``, ``wall.color.g``, ``wall.color.b``, ``wall.color.a``, ``wall.texture``,
    ``table.color.r``, ``table.color.g``, ``table.color.b``, ``table.color.a``,
    ``table.texture``, ``target.color.r``, ``target.color.g``, ``target.color.b``,
    ``target.color.a``, ``target.texture``. Light: ``light.azimuth``, ``light.elevation``,
    ``light.r``, ``light.g``, ``light.b``, ``light.ambient``, ``light.diffuse``,
    ``light.specular``, ``light.shadow``. Camera: ``camera.eye_dx``, ``camera.eye_dy``,
    ``camera.eye_dz``, ``camera.target_dx``, ``camera.target_dy``, ``camera.target_dz``,
    ``camera.fov``, ``camera.roll``. Clutter: ``distractors.count`` (0..10; each episode draws
    the distractors' shape, colour, texture and pose from the env's visual stream). Image
    effects: ``image.noise``, ``image.blur``, ``image.brightness``, ``image.contrast``,
    ``image.gamma``, ``image.hue``, ``image.saturation``, ``image.value``,
    ``image.jpeg_quality``, ``image.cutout``, ``image.cutout_size``; and ``obs.noise``,
    ``obs.bias`` (pixel units). The scene is static, so the physics knobs of other envs
    (gravity, timestep, action delay and noise) do not exist here.
Version history:
    v0: first release.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from domrand.envs.bullet_env import BulletEnv, KnobBinding
from domrand.envs.scene import Camera, Distractors, Light, VisualObject, VisualScene
from domrand.envs.visual import CUBE_OBJ, textured_box

__all__ = ["LocalizationEnv"]

TABLE_HALF = (0.4, 0.3)  # m, x and y
TABLE_TOP = 0.75  # m
TARGET_HALF = 0.04  # m
#: where the target's centre is drawn (a 10 cm margin inside the table edge)
TARGET_RANGE = ((-0.3, 0.3), (-0.2, 0.2))


class LocalizationEnv(BulletEnv):
    """Object localization from a randomized image. See the module docstring."""

    max_distractors: ClassVar[int] = 10
    render_size: ClassVar[tuple[int, int]] = (240, 240)

    def __init__(
        self,
        render_mode: str | None = None,
        obs_mode: str = "image",
        image_size: int | Sequence[int] = 84,
    ) -> None:
        if obs_mode != "image":
            raise ValueError("Localization-v0 only has image observations (obs_mode='image')")
        self._target_pose = (0.0, 0.0, 0.0)
        super().__init__(render_mode=render_mode, obs_mode=obs_mode, image_size=image_size)
        hx, hy = TABLE_HALF
        self.action_space = gym.spaces.Box(
            np.array([-hx, -hy], np.float32), np.array([hx, hy], np.float32), dtype=np.float32
        )
        self._last_obs: np.ndarray | None = None

    # ------------------------------------------------------------------ scene
    def _load(self) -> None:
        p, cid = self._p, self._client_id
        # Everything is visual-only (no collision shape, no mass): the scene never moves.
        floor = textured_box(cid, [3.0, 3.0, 0.01], [0.55, 0.55, 0.55, 1.0])
        wall = textured_box(cid, [3.0, 0.01, 1.5], [0.8, 0.8, 0.78, 1.0])
        self._floor = p.createMultiBody(0.0, -1, floor, [0.0, 0.0, -0.01])
        self._wall = p.createMultiBody(0.0, -1, wall, [0.0, 1.2, 1.5])
        self._table = self._make_table()
        target = textured_box(cid, [TARGET_HALF] * 3, [0.85, 0.1, 0.1, 1.0])
        self._target = p.createMultiBody(0.0, -1, target, [0.0, 0.0, TABLE_TOP + TARGET_HALF])

    def _make_table(self) -> int:
        hx, hy = TABLE_HALF
        leg = TABLE_TOP - 0.04
        corners = [(sx * (hx - 0.05), sy * (hy - 0.05)) for sx in (-1, 1) for sy in (-1, 1)]
        shape = self._p.createVisualShapeArray(
            shapeTypes=[self._p.GEOM_MESH] * 5,
            fileNames=[CUBE_OBJ] * 5,
            meshScales=[[2 * hx, 2 * hy, 0.04]] + [[0.05, 0.05, leg]] * 4,
            visualFramePositions=[[0.0, 0.0, -0.02]]
            + [[x, y, -0.04 - leg / 2] for x, y in corners],
        )
        table = self._p.createMultiBody(0.0, -1, shape, [0.0, 0.0, TABLE_TOP])
        self._p.changeVisualShape(table, -1, rgbaColor=[0.62, 0.47, 0.32, 1.0])
        return int(table)

    def _visual_scene(self) -> VisualScene:
        (x0, x1), (y0, y1) = ((-h + 0.05, h - 0.05) for h in TABLE_HALF)
        return VisualScene(
            objects=(
                VisualObject("floor", self._floor),
                VisualObject("wall", self._wall),
                VisualObject("table", self._table),
                VisualObject("target", self._target),
            ),
            camera=Camera(
                target=(0.0, 0.0, TABLE_TOP),
                distance=1.0,
                yaw=0.0,
                pitch=-55.0,
                fov=50.0,
                near=0.05,
                far=10.0,
            ),
            light=Light(azimuth=-120.0, elevation=60.0, distance=3.0),  # front-left, above
            distractors=Distractors(
                self.max_distractors,
                (x0, x1),
                (y0, y1),
                TABLE_TOP,
                size=0.05,
                shapes=("sphere", "cylinder", "capsule"),
            ),
        )

    def _common_bindings(self) -> list[KnobBinding]:
        # A static scene: only the observation knobs of the common set can act.
        return [b for b in super()._common_bindings() if b.knob.name.startswith("obs.")]

    # ------------------------------------------------------------------ episode
    def _reset_task(self) -> None:
        (x0, x1), (y0, y1) = TARGET_RANGE
        x, y = self.np_random.uniform((x0, y0), (x1, y1)).tolist()
        yaw = float(self.np_random.uniform(-math.pi, math.pi))
        self._target_pose = (x, y, yaw)
        orn = (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))
        self._p.resetBasePositionAndOrientation(self._target, [x, y, TABLE_TOP + TARGET_HALF], orn)

    def _distractor_keepout(self) -> Sequence[tuple[float, float, float]]:
        # Distractors never cover the target, so the label stays visible.
        x, y, _ = self._target_pose
        return ((x, y, 0.1),)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = super().reset(seed=seed, options=options)
        info["label"] = self.label
        self._last_obs = obs
        return obs, info

    @property
    def label(self) -> np.ndarray:
        """The target's ``(x, y)`` on the table, metres, ``float32``."""
        return np.array(self._target_pose[:2], dtype=np.float32)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._last_obs is None:
            raise RuntimeError("call reset() before step()")
        guess = np.asarray(action, dtype=np.float64).ravel()
        if guess.shape != (2,):
            raise ValueError(f"action has {guess.size} entries, expected 2")
        guess = np.nan_to_num(guess, nan=0.0)
        guess = np.clip(guess, self.action_space.low, self.action_space.high)  # type: ignore[attr-defined]
        label = self.label
        error = float(np.hypot(*(guess - label)))
        info = {"label": label, "error": error}
        return self._last_obs.copy(), -error, True, False, info

    # Unused: the one-step episode is handled by step() above (there is no dynamics).
    def _apply_action(self, action: list[float]) -> None:
        pass

    def _state(self) -> tuple[float, float, float]:
        return self._target_pose

    def _task_outcome(self, state: Sequence[float]) -> tuple[float, bool, dict[str, Any]]:
        return 0.0, True, {}

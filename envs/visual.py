"""``VisualRandomizer``: visual knobs and headless rendering for any ``BulletEnv`` scene.

An env describes its scene (:class:`~domrand.envs.scene.VisualScene`); the randomizer turns it into
knobs (per-object colour and texture, the light, the camera, a distractor pool and the post-render
``image.*`` effects) and renders with pybullet's CPU TinyRenderer.

Costs are paid only when a frame is rendered: a knob's apply function just records the value, and
:meth:`VisualRandomizer.render` pushes whatever changed to pybullet before drawing (one
``changeVisualShape`` per changed object, however many of its colour channels moved).

Nothing is created per reset: the texture bank is loaded once when the scene is built, and every
reset only binds loaded textures (``pybullet.changeTexture`` does not reach TinyRenderer, see
``domrand.textures``); ``resetSimulation`` frees the bank's pixels and a rebuilt scene loads it
again. The distractors are a fixed pool of visual-only bodies created at load, shown or parked
out of sight. Distractor shape, colour, texture and pose are drawn once per episode
(:meth:`VisualRandomizer.new_episode`) from the generator the env passes in (``BulletEnv``: its
visual stream, derived from the reset seed).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pybullet_data

from domrand.envs._bullet import pybullet
from domrand.envs.bullet_env import KnobBinding
from domrand.envs.scene import Camera, VisualScene, parse_image_size
from domrand.image import ImageAug, augment, image_knobs
from domrand.knobs import Knob, Phase
from domrand.textures import TextureBank, bank_files, texture_bank, white_texture_file

__all__ = ["CUBE_OBJ", "VisualRandomizer", "parse_image_size", "textured_box"]

#: parked distractors sit this far below the scene: beyond any far plane, so never drawn
_PARK = (0.0, 0.0, -1000.0)
CUBE_OBJ = pybullet_data.getDataPath() + "/cube.obj"  # a unit cube with per-face UVs


def textured_box(client_id: int, half_extents: Sequence[float], rgba: Sequence[float]) -> int:
    """A visual shape for a box whose every face shows the whole texture (for bank textures)."""
    return pybullet.createVisualShape(
        pybullet.GEOM_MESH,
        fileName=CUBE_OBJ,
        meshScale=[2.0 * h for h in half_extents],
        rgbaColor=list(rgba),
        physicsClientId=client_id,
    )


def _view_matrix(eye: np.ndarray, target: np.ndarray, roll_deg: float) -> list[float]:
    """Look from ``eye`` at ``target`` with the image rotated by ``roll`` about the view axis."""
    forward = target - eye
    forward = forward / max(1e-9, float(np.linalg.norm(forward)))
    up = np.array([0.0, 0.0, 1.0])
    up = up - forward * float(up @ forward)
    if np.linalg.norm(up) < 1e-6:  # looking straight up or down: any horizontal up will do
        up = np.array([0.0, 1.0, 0.0])
    up = up / float(np.linalg.norm(up))
    r = math.radians(roll_deg)
    up = up * math.cos(r) + np.cross(forward, up) * math.sin(r)
    return list(pybullet.computeViewMatrix(eye.tolist(), target.tolist(), up.tolist()))


class VisualRandomizer:
    """Visual knobs, texture bank, distractor pool and rendering for one env's scene.

    Args:
        client_id: the env's pybullet client.
        scene: the scene as just loaded.
        image_size: default ``(H, W)`` of :meth:`render`.
        bank: texture bank (default: the shared 1,024-texture bank).
    """

    def __init__(
        self,
        client_id: int,
        scene: VisualScene,
        image_size: tuple[int, int],
        bank: TextureBank | None = None,
    ) -> None:
        self._cid = client_id
        self.image_size = image_size
        self.bank = bank if bank is not None else texture_bank()
        self._files = bank_files(self.bank)  # written once per machine, checked per env
        kw = {"physicsClientId": client_id}
        self._change_visual = functools.partial(pybullet.changeVisualShape, **kw)
        self._move = functools.partial(pybullet.resetBasePositionAndOrientation, **kw)
        self._camera_image = functools.partial(
            pybullet.getCameraImage,
            renderer=pybullet.ER_TINY_RENDERER,
            flags=pybullet.ER_NO_SEGMENTATION_MASK,
            **kw,
        )
        reserved = {"light", "camera", "distractors", "image", "obs", "action", "sim"}
        for o in scene.objects:
            if not o.name.isidentifier() or o.name in reserved:
                raise ValueError(f"visual object name {o.name!r} must be a plain, unreserved word")
        self._build(scene)
        self._link_colors = {
            o.name: [self._read_color(o.body, link) for link in o.links] for o in scene.objects
        }
        self._nominal_colors = {name: colors[0] for name, colors in self._link_colors.items()}
        self._knobs = self._declare(scene)
        self._values: dict[str, Any] = {k.name: k.nominal for k in self._knobs}
        self._dirty: set[str] = {"camera", "light", "image", "distractors"}
        self._aug = ImageAug()
        self._layout: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ scene resources
    def _build(self, scene: VisualScene) -> None:
        """Load the texture bank and create the distractor pool (after every scene load)."""
        self.scene = scene
        cid = self._cid
        self._tex_ids = [pybullet.loadTexture(f, physicsClientId=cid) for f in self._files]
        if min(self._tex_ids) < 0:  # files deleted under us (a temp cleaner): rewrite, retry
            self._files = bank_files(self.bank, repair=True)
            self._tex_ids = [pybullet.loadTexture(f, physicsClientId=cid) for f in self._files]
            if min(self._tex_ids) < 0:
                raise RuntimeError(f"pybullet cannot load the texture bank from {self._files[0]}")
        self._white = pybullet.loadTexture(white_texture_file(), physicsClientId=cid)
        self._objects = {o.name: o for o in scene.objects}
        # What pybullet currently shows (fresh bodies: their own colour, no texture).
        self._applied_color: dict[str, tuple[float, ...]] = {}
        self._applied_tex = {o.name: -1 for o in scene.objects}
        self._pool: list[list[int]] = []
        self._shown: list[int | None] = []
        self._replace_distractors = True
        d = scene.distractors
        if d is not None and d.max_count > 0:
            # Each slot owns one body of every allowed shape; an episode shows one of them.
            shapes = [self._distractor_shape(kind, d.size) for kind in d.shapes]
            self._pool = [
                [
                    pybullet.createMultiBody(0.0, -1, s, list(_PARK), physicsClientId=cid)
                    for s in shapes
                ]
                for _ in range(d.max_count)
            ]
            self._shown = [None] * d.max_count
        s = d.size if d is not None else 0.0
        # half height of each shape, so distractors stand on the surface
        half = {"box": 0.5 * s, "sphere": 0.5 * s, "cylinder": 0.75 * s, "capsule": 0.85 * s}
        self._half_heights = [half[kind] for kind in (d.shapes if d is not None else ())]

    def _distractor_shape(self, kind: str, size: float) -> int:
        cid, grey = self._cid, [0.5, 0.5, 0.5, 1.0]
        if kind == "box":
            return textured_box(cid, [0.5 * size] * 3, grey)
        if kind == "sphere":
            g, extra = pybullet.GEOM_SPHERE, {"radius": 0.5 * size}
        elif kind == "cylinder":
            g, extra = pybullet.GEOM_CYLINDER, {"radius": 0.4 * size, "length": 1.5 * size}
        else:
            g, extra = pybullet.GEOM_CAPSULE, {"radius": 0.35 * size, "length": size}
        return pybullet.createVisualShape(g, rgbaColor=grey, physicsClientId=cid, **extra)

    def _read_color(self, body: int, link: int) -> tuple[float, float, float, float]:
        for shape in pybullet.getVisualShapeData(body, physicsClientId=self._cid):
            if shape[1] == link:
                r, g, b, a = shape[7]
                return (float(r), float(g), float(b), float(a))
        raise ValueError(f"body {body} link {link} has no visual shape to randomize")

    def reload(self, scene: VisualScene) -> None:
        """Re-create resources after ``resetSimulation`` (which freed textures and bodies)."""
        names = [o.name for o in scene.objects]
        if names != list(self._objects):
            raise ValueError(f"reloaded scene has objects {names}, expected {list(self._objects)}")
        self._build(scene)
        self._dirty = {"camera", "light", "image", "distractors"}
        self._dirty.update(f"obj:{n}" for n in names)

    # ------------------------------------------------------------------ knobs
    def _declare(self, scene: VisualScene) -> list[Knob]:
        def k(name: str, nominal: float, unit: str, lo: float, hi: float, doc: str) -> Knob:
            whole = name.endswith((".texture", ".shadow", ".count"))  # indices, flags, counts
            nominal = int(nominal) if whole else float(nominal)
            return Knob(name, nominal, unit, lo, hi, Phase.RESET, integer=whole, doc=doc)

        knobs: list[Knob] = []
        for o in scene.objects:
            rgba = self._nominal_colors[o.name]
            for ch, v in zip("rgb", rgba):
                doc = f"{o.name} colour, channel {ch} (multiplies its texture)"
                knobs.append(k(f"{o.name}.color.{ch}", v, "1", 0.0, 1.0, doc))
            doc = f"{o.name} opacity (TinyRenderer: 0 hides it, anything above is opaque)"
            knobs.append(k(f"{o.name}.color.a", rgba[3], "1", 0.0, 1.0, doc))
            doc = f"{o.name} texture from the bank (-1: none, plain colour)"
            knobs.append(k(f"{o.name}.texture", -1, "index", -1, len(self.bank) - 1, doc))
        light, cam = scene.light, scene.camera
        knobs += [
            k("light.azimuth", light.azimuth, "deg", -360.0, 360.0,
              "direction towards the light, about the vertical axis"),
            k("light.elevation", light.elevation, "deg", -90.0, 90.0,
              "direction towards the light, above the horizon"),
            *(k(f"light.{ch}", c, "1", 0.0, 2.0, f"light colour channel {ch}")
              for ch, c in zip("rgb", light.color)),
            k("light.ambient", light.ambient, "1", 0.0, 2.0, "ambient coefficient"),
            k("light.diffuse", light.diffuse, "1", 0.0, 2.0, "diffuse coefficient"),
            k("light.specular", light.specular, "1", 0.0, 2.0, "specular coefficient"),
            k("light.shadow", light.shadow, "0/1", 0, 1,
              "cast shadows (roughly halves rendering speed)"),
            *(k(f"camera.eye_d{ax}", 0.0, "m", -2.0, 2.0, f"camera position offset along {ax}")
              for ax in "xyz"),
            *(k(f"camera.target_d{ax}", 0.0, "m", -2.0, 2.0, f"aim point offset along {ax}")
              for ax in "xyz"),
            k("camera.fov", cam.fov, "deg", 5.0, 170.0, "vertical field of view"),
            k("camera.roll", 0.0, "deg", -180.0, 180.0, "rotation about the view axis"),
        ]  # fmt: skip
        if self._pool:
            n = len(self._pool)
            doc = f"distractors shown (pool of {n}; looks drawn per episode)"
            knobs.append(k("distractors.count", 0, "objects", 0, n, doc))
        return knobs + image_knobs()

    def bindings(self) -> list[KnobBinding]:
        """The visual knobs with their apply functions (which only record the value)."""
        return [KnobBinding(k, functools.partial(self._set, k.name)) for k in self._knobs]

    def _set(self, name: str, value: Any) -> None:
        self._values[name] = value
        head = name.partition(".")[0]
        if head in self._objects:
            self._dirty.add(f"obj:{head}")
        else:
            self._dirty.add(head)  # camera, light, image, distractors

    # ------------------------------------------------------------------ episodes
    def new_episode(
        self, rng: np.random.Generator, keepout: Sequence[tuple[float, float, float]] = ()
    ) -> None:
        """Draw the distractors' looks and poses for this episode from ``rng``.

        Per slot: a shape uniform over ``Distractors.shapes``, an RGB colour uniform in
        [0, 1]^3, no texture with probability 1/2 else one uniform over the bank, a centre
        uniform over the rectangle and a yaw uniform in [-pi, pi). Every slot of the pool is drawn
        whatever ``distractors.count`` is, so the count changes which distractors are shown and
        never the draws of the others. ``keepout`` holds ``(x, y, radius)`` discs (e.g. around
        the target) a distractor centre is pushed radially out of.
        """
        n, d = len(self._pool), self.scene.distractors
        if not n or d is None:
            return
        shape = rng.integers(0, len(d.shapes), n)
        color = rng.random((n, 3))
        texture = rng.integers(-len(self.bank), len(self.bank), n)  # < 0: untextured (half)
        xy = rng.random((n, 2))
        yaw = rng.uniform(-math.pi, math.pi, n)
        x = d.x[0] + xy[:, 0] * (d.x[1] - d.x[0])
        y = d.y[0] + xy[:, 1] * (d.y[1] - d.y[0])
        for cx, cy, radius in keepout:
            dx, dy = x - cx, y - cy
            dist = np.hypot(dx, dy)
            inside = dist < radius
            scale = radius / np.maximum(dist, 1e-9)
            x = np.where(inside, cx + dx * scale, x)
            y = np.where(inside, cy + dy * scale, y)
        self._layout = {
            "shape": shape,
            "color": color,
            "texture": texture,
            "x": x,
            "y": y,
            "yaw": yaw,
        }
        self._dirty.add("distractors")
        self._replace_distractors = True  # same bodies may be shown, but at new poses

    # ------------------------------------------------------------------ applying
    def _sync(self) -> None:
        """Push every changed knob value to pybullet (called before each frame)."""
        dirty, self._dirty = self._dirty, set()
        v = self._values
        for key in dirty:
            if key.startswith("obj:"):
                self._sync_object(key[4:])
        if "camera" in dirty:
            self._sync_camera()
        if "light" in dirty:
            az, el = math.radians(v["light.azimuth"]), math.radians(v["light.elevation"])
            direction = [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)]
            self._light = {
                "lightDirection": direction,
                "lightColor": [v["light.r"], v["light.g"], v["light.b"]],
                "lightDistance": self.scene.light.distance,
                "lightAmbientCoeff": v["light.ambient"],
                "lightDiffuseCoeff": v["light.diffuse"],
                "lightSpecularCoeff": v["light.specular"],
                "shadow": int(v["light.shadow"]),
            }
        if "image" in dirty:
            self._aug = ImageAug.from_domain(v)
            self._aug_identity = self._aug.is_identity
        if "distractors" in dirty and self._pool:
            self._sync_distractors()

    def _sync_object(self, name: str) -> None:
        o, v = self._objects[name], self._values
        rgba = tuple(float(v[f"{name}.color.{ch}"]) for ch in "rgba")
        if self._applied_color.get(name, self._nominal_colors[name]) != rgba:
            # Back at nominal, every link gets its own colour again (links may differ).
            nominal = rgba == self._nominal_colors[name]
            for link, own in zip(o.links, self._link_colors[name]):
                self._change_visual(o.body, link, rgbaColor=list(own if nominal else rgba))
            self._applied_color[name] = rgba
        tex = int(v[f"{name}.texture"])
        if self._applied_tex[name] != tex:
            slot = self._white if tex < 0 else self._tex_ids[tex]
            for link in o.links:
                self._change_visual(o.body, link, textureUniqueId=slot)
            self._applied_tex[name] = tex

    def _sync_camera(self) -> None:
        cam: Camera = self.scene.camera
        v = self._values
        yaw, pitch = math.radians(cam.yaw), math.radians(cam.pitch)
        target = np.asarray(cam.target, dtype=np.float64)
        offset = cam.distance * np.array(
            [math.sin(yaw) * math.cos(pitch), -math.cos(yaw) * math.cos(pitch), -math.sin(pitch)]
        )
        eye = target + offset + np.array([v[f"camera.eye_d{ax}"] for ax in "xyz"])
        aim = target + np.array([v[f"camera.target_d{ax}"] for ax in "xyz"])
        self._view = _view_matrix(eye, aim, float(v["camera.roll"]))
        self._proj: dict[tuple[int, int], list[float]] = {}

    def _projection(self, h: int, w: int) -> list[float]:
        proj = self._proj.get((h, w))
        if proj is None:
            cam = self.scene.camera
            fov = float(self._values["camera.fov"])
            proj = list(pybullet.computeProjectionMatrixFOV(fov, w / h, cam.near, cam.far))
            self._proj[(h, w)] = proj
        return proj

    def _sync_distractors(self) -> None:
        d, lay = self.scene.distractors, self._layout
        count = int(self._values.get("distractors.count", 0))
        force, self._replace_distractors = self._replace_distractors, False
        for i, bodies in enumerate(self._pool):
            want = None if lay is None or i >= count else bodies[int(lay["shape"][i])]
            if want == self._shown[i] and not force:
                continue
            if self._shown[i] is not None and self._shown[i] != want:
                self._move(self._shown[i], _PARK, (0.0, 0.0, 0.0, 1.0))
            self._shown[i] = want
            if want is None or lay is None or d is None:
                continue
            k = int(lay["shape"][i])
            half_yaw = 0.5 * float(lay["yaw"][i])
            orn = (0.0, 0.0, math.sin(half_yaw), math.cos(half_yaw))
            pos = (float(lay["x"][i]), float(lay["y"][i]), d.z + self._half_heights[k])
            self._move(want, pos, orn)
            tex = int(lay["texture"][i])
            self._change_visual(
                want,
                -1,
                rgbaColor=[*lay["color"][i].tolist(), 1.0],
                textureUniqueId=self._white if tex < 0 else self._tex_ids[tex],
            )

    # ------------------------------------------------------------------ rendering
    def render(
        self,
        rng: np.random.Generator | None = None,
        size: tuple[int, int] | None = None,
        post: bool = True,
    ) -> np.ndarray:
        """Render the scene with the knob values in force: an RGB ``uint8`` (H, W, 3) array.

        Args:
            rng: generator for the ``image.*`` effects (noise pixels, cutout boxes).
            size: ``(H, W)``; default ``image_size``.
            post: apply the ``image.*`` effects (needs ``rng`` unless they are all nominal).
        """
        self._sync()
        h, w = size or self.image_size
        _, _, rgba, _, _ = self._camera_image(
            w, h, self._view, self._projection(h, w), **self._light
        )
        img = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3]
        if post and not self._aug_identity:
            if rng is None:
                raise ValueError("image.* effects are randomized: render() needs an rng")
            return augment(img, self._aug, rng)
        return np.ascontiguousarray(img)

    def project(
        self, points: Sequence[Sequence[float]], size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """Pixel coordinates ``(column, row)`` of world points in a frame of ``size`` (H, W).

        Uses the camera knobs in force, so a label can be drawn on (or checked against) an image.
        """
        self._sync()
        h, w = size or self.image_size
        view = np.asarray(self._view, dtype=np.float64).reshape(4, 4).T  # pybullet: column-major
        proj = np.asarray(self._projection(h, w), dtype=np.float64).reshape(4, 4).T
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        clip = (proj @ view @ np.c_[pts, np.ones(len(pts))].T).T
        ndc = clip[:, :2] / clip[:, 3:4]
        return np.c_[(ndc[:, 0] + 1.0) * 0.5 * w, (1.0 - ndc[:, 1]) * 0.5 * h]

    @property
    def texture_ids(self) -> tuple[int, ...]:
        """Server texture ids of the bank (loaded once per scene load), then the white one."""
        return (*self._tex_ids, self._white)

    @property
    def pool_bodies(self) -> tuple[int, ...]:
        """Every body of the distractor pool (created once per scene load)."""
        return tuple(b for bodies in self._pool for b in bodies)

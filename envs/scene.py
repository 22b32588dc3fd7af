"""What an env tells the visual randomizer about its scene: objects, camera, light, distractors.

Plain value objects with no rendering code (and no OpenCV import), so a task module can describe
its scene without paying for the image stack when it runs in state mode. ``envs/visual.py`` turns
a :class:`VisualScene` into knobs and renders it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral

__all__ = [
    "SHAPES",
    "Camera",
    "Distractors",
    "Light",
    "VisualObject",
    "VisualScene",
    "parse_image_size",
]

#: the shapes a distractor can take
SHAPES = ("box", "sphere", "cylinder", "capsule")


@dataclass(frozen=True)
class VisualObject:
    """One randomizable visual: its knobs are ``<name>.color.r/g/b/a`` and ``<name>.texture``.

    Attributes:
        name: knob prefix, e.g. ``"table"``.
        body: pybullet body id.
        link: link index (``-1`` = the base), or several (e.g. every link of an arm); every
            visual shape of these links is changed together. The nominal colour is the first's.
    """

    name: str
    body: int
    link: int | tuple[int, ...] = -1

    @property
    def links(self) -> tuple[int, ...]:
        return (self.link,) if isinstance(self.link, int) else tuple(self.link)


@dataclass(frozen=True)
class Camera:
    """The nominal camera, in pybullet's debug-camera convention.

    The eye sits ``distance`` metres from ``target``; ``yaw`` turns it about the vertical axis
    (0 = on the -y side, looking along +y) and ``pitch`` is the elevation (negative looks down).
    ``fov`` is the vertical field of view in degrees.
    """

    target: tuple[float, float, float]
    distance: float
    yaw: float
    pitch: float
    fov: float = 60.0
    near: float = 0.05
    far: float = 20.0


@dataclass(frozen=True)
class Light:
    """The nominal directional light (TinyRenderer has exactly one) and its shading terms.

    ``azimuth``/``elevation`` (degrees) give the direction *towards* the light (azimuth from +x
    towards +y). ``distance`` only places the shadow-map camera along that direction, so it is a
    scene constant, not a knob. The defaults are TinyRenderer's own light and coefficients.
    """

    azimuth: float = 150.0
    elevation: float = 60.0
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.6
    diffuse: float = 0.35
    specular: float = 0.05
    shadow: int = 0
    distance: float = 5.0


@dataclass(frozen=True)
class Distractors:
    """A pool of up to ``max_count`` distractor objects standing on a rectangle.

    Attributes:
        max_count: pool size; the ``distractors.count`` knob shows the first N of them.
        x, y: the rectangle (world frame, metres) the distractor centres are drawn in.
        z: height of the surface they stand on.
        size: typical extent in metres (boxes are this wide; other shapes are similar).
        shapes: the shapes drawn from (a subset of :data:`SHAPES`), e.g. without the target's.
    """

    max_count: int
    x: tuple[float, float]
    y: tuple[float, float]
    z: float
    size: float = 0.05
    shapes: tuple[str, ...] = SHAPES

    def __post_init__(self) -> None:
        unknown = set(self.shapes) - set(SHAPES)
        if not self.shapes or unknown:
            raise ValueError(f"distractor shapes must be a non-empty subset of {SHAPES}")


@dataclass(frozen=True)
class VisualScene:
    """Everything the visual randomizer needs from an env, rebuilt after every ``_load()``."""

    objects: tuple[VisualObject, ...]
    camera: Camera
    light: Light = Light()
    distractors: Distractors | None = None


def parse_image_size(size: int | Sequence[int]) -> tuple[int, int]:
    """``84`` or ``(H, W)`` -> ``(H, W)``, each side in [8, 1024] pixels.

    Raises:
        ValueError: a side that is not a whole number in range.
    """

    def whole(x: object) -> bool:
        return isinstance(x, Integral) and not isinstance(x, bool) and 8 <= x <= 1024

    hw = (size, size) if whole(size) else size
    if isinstance(hw, (str, bytes)) or not isinstance(hw, Sequence) or len(hw) != 2:
        hw = ()
    if len(hw) != 2 or not all(whole(s) for s in hw):
        raise ValueError(f"image_size must be an int or (height, width) in [8, 1024], got {size!r}")
    return int(hw[0]), int(hw[1])

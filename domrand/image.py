"""Image-level randomization after rendering, with OpenCV, driven by the same spec as the physics.

Each effect is a knob (``image.noise``, ``image.blur``, ...) that an image-observation env exposes
through :func:`image_knobs`; the env calls :func:`augment` on every rendered frame with the knob
values in force and its own ``np_random``. At the nominal values every effect is the identity, so
an unrandomized env returns the raw render.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import cv2
import numpy as np

from domrand.knobs import Knob, Phase

__all__ = ["ImageAug", "augment", "image_knobs"]


@dataclass(frozen=True)
class ImageAug:
    """Parameters of the post-render pipeline; the defaults are the identity.

    Order of application: colour (brightness, contrast, gamma, HSV), blur, sensor noise, cutout,
    JPEG: roughly the order of a real camera pipeline followed by transmission.
    """

    noise: float = 0.0  #: std of additive Gaussian sensor noise, in 0..255 pixel units
    blur: float = 0.0  #: Gaussian blur sigma in pixels
    brightness: float = 0.0  #: additive offset, in 0..255 pixel units
    contrast: float = 1.0  #: multiplier around mid-grey
    gamma: float = 1.0  #: out = 255 * (in/255) ** gamma
    hue: float = 0.0  #: hue shift in degrees (applied in 2-degree steps, OpenCV 8-bit hue)
    saturation: float = 1.0  #: saturation multiplier
    value: float = 1.0  #: HSV value multiplier
    jpeg_quality: int = 100  #: 100 = no compression; lower adds JPEG artifacts
    cutout: int = 0  #: number of random rectangles blanked out
    cutout_size: float = 0.2  #: side of each rectangle as a fraction of the image side

    @classmethod
    def from_domain(cls, domain: Mapping[str, Any]) -> ImageAug:
        """Read ``image.*`` knob values from a domain (missing ones keep their defaults)."""
        kwargs = {
            f.name: domain[f"image.{f.name}"] for f in fields(cls) if f"image.{f.name}" in domain
        }
        return cls(**kwargs)

    @property
    def is_identity(self) -> bool:
        return self == ImageAug(cutout_size=self.cutout_size)


def image_knobs() -> list[Knob]:
    """The knobs an image-observation env exposes for post-render randomization."""
    s = Phase.STEP
    return [
        Knob("image.noise", 0.0, "px", 0.0, 128.0, s, doc="std of Gaussian sensor noise"),
        Knob("image.blur", 0.0, "px", 0.0, 10.0, s, doc="Gaussian blur sigma"),
        Knob("image.brightness", 0.0, "px", -255.0, 255.0, s, doc="additive brightness"),
        Knob("image.contrast", 1.0, "1", 0.0, 10.0, s, doc="contrast multiplier around grey"),
        Knob("image.gamma", 1.0, "1", 0.05, 20.0, s, doc="gamma exponent"),
        Knob("image.hue", 0.0, "deg", -180.0, 180.0, s, doc="hue shift"),
        Knob("image.saturation", 1.0, "1", 0.0, 10.0, s, doc="saturation multiplier"),
        Knob("image.value", 1.0, "1", 0.0, 10.0, s, doc="HSV value multiplier"),
        Knob(
            "image.jpeg_quality", 100, "1", 1, 100, s, integer=True, doc="JPEG quality (100 = off)"
        ),
        Knob("image.cutout", 0, "boxes", 0, 20, s, integer=True, doc="random boxes blanked out"),
        Knob("image.cutout_size", 0.2, "1", 0.01, 1.0, s, doc="cutout box side / image side"),
    ]


def _lut(aug: ImageAug) -> np.ndarray | None:
    """One 256-entry lookup table for brightness, contrast and gamma (cheap on any image size)."""
    if aug.brightness == 0.0 and aug.contrast == 1.0 and aug.gamma == 1.0:
        return None
    x = np.arange(256, dtype=np.float64)
    x = (x - 127.5) * aug.contrast + 127.5 + aug.brightness
    x = 255.0 * (np.clip(x, 0.0, 255.0) / 255.0) ** aug.gamma
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _hsv_lut(aug: ImageAug) -> np.ndarray | None:
    """A per-channel lookup table on OpenCV's 8-bit HSV (hue 0..179 in 2-degree units)."""
    if aug.hue == 0.0 and aug.saturation == 1.0 and aug.value == 1.0:
        return None
    x = np.arange(256, dtype=np.float64)
    shift = round(aug.hue / 2.0)  # 8-bit hue has 2-degree resolution
    hue = np.where(x < 180, (x + shift) % 180, x)
    sat = np.clip(np.rint(x * aug.saturation), 0, 255)
    val = np.clip(np.rint(x * aug.value), 0, 255)
    return np.stack([hue, sat, val], axis=-1).astype(np.uint8).reshape(256, 1, 3)


def augment(image: np.ndarray, aug: ImageAug, rng: np.random.Generator) -> np.ndarray:
    """Apply ``aug`` to an RGB ``uint8`` image of shape (H, W, 3); returns a new array.

    Randomness (noise pixels, cutout positions) comes only from ``rng``.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    out = np.ascontiguousarray(image)
    lut = _lut(aug)
    if lut is not None:
        out = cv2.LUT(out, lut)
    hsv_lut = _hsv_lut(aug)
    if hsv_lut is not None:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
        out = cv2.cvtColor(cv2.LUT(hsv, hsv_lut), cv2.COLOR_HSV2RGB)
    if aug.blur > 0.0:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=aug.blur)
    if aug.noise > 0.0:
        noise = rng.standard_normal(out.shape, dtype=np.float32)
        noisy = out.astype(np.float32) + noise * np.float32(aug.noise)
        out = np.clip(np.rint(noisy), 0.0, 255.0).astype(np.uint8)
    if aug.cutout > 0:
        out = out.copy() if out is image else out
        h, w = out.shape[:2]
        bh, bw = max(1, round(aug.cutout_size * h)), max(1, round(aug.cutout_size * w))
        ys = rng.integers(0, max(1, h - bh + 1), aug.cutout)
        xs = rng.integers(0, max(1, w - bw + 1), aug.cutout)
        for y, x in zip(ys.tolist(), xs.tolist()):
            out[y : y + bh, x : x + bw] = 0
    if aug.jpeg_quality < 100:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, int(aug.jpeg_quality)])  # fmt: skip
        if ok:
            out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if out is image:
        out = image.copy()
    return out

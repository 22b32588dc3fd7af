"""A deterministic bank of procedural textures made with OpenCV (Tobin et al. 2017 style).

Texture ``i`` is a pure function of ``(bank seed, i)``: one of flat colour, two-colour gradient,
checker, stripes or smoothed noise, in random colours and scales. The bank is generated once per
process and shared; envs upload pixels into a fixed pool of pybullet texture slots with
``changeTexture``, so thousands of randomized resets never load a new texture into the server.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

__all__ = ["KINDS", "TextureBank", "blank_texture_file", "texture_bank"]

KINDS = ("flat", "gradient", "checker", "stripes", "noise")
DEFAULT_SIZE = 64
DEFAULT_COUNT = 1024


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def make_texture(index: int, size: int = DEFAULT_SIZE, seed: int = 0) -> np.ndarray:
    """Texture ``index`` of the bank with ``seed``: an RGB uint8 array of shape (size, size, 3)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    kind = KINDS[index % len(KINDS)]
    a, b = _colour(rng), _colour(rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1)
    if kind == "flat":
        img = np.broadcast_to(a, (size, size, 3))
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = np.cos(angle) * xx + np.sin(angle) * yy
        t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
        img = a * (1 - t[..., None]) + b * t[..., None]
    elif kind == "checker":
        cells = int(rng.integers(2, 17))
        mask = ((xx * cells).astype(int) + (yy * cells).astype(int)) % 2
        img = np.where(mask[..., None] == 1, a, b)
    elif kind == "stripes":
        cells = int(rng.integers(2, 17))
        angle = rng.uniform(0, np.pi)
        t = np.cos(angle) * xx + np.sin(angle) * yy
        mask = (np.floor(t * cells).astype(int)) % 2
        img = np.where(mask[..., None] == 1, a, b)
    else:  # noise: smoothed white noise between the two colours
        raw = rng.random((size, size)).astype(np.float32)
        sigma = float(rng.uniform(0.5, 4.0))
        smooth = cv2.GaussianBlur(raw, (0, 0), sigmaX=sigma)
        smooth = (smooth - smooth.min()) / max(1e-6, float(smooth.max() - smooth.min()))
        img = a * (1 - smooth[..., None]) + b * smooth[..., None]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


class TextureBank:
    """``count`` textures of ``size`` x ``size`` pixels, generated once, indexed 0..count-1."""

    def __init__(self, count: int = DEFAULT_COUNT, size: int = DEFAULT_SIZE, seed: int = 0) -> None:
        if count < 1 or size < 2:
            raise ValueError("a texture bank needs count >= 1 and size >= 2")
        self.count, self.size, self.seed = count, size, seed
        self.pixels = np.stack([make_texture(i, size, seed) for i in range(count)])
        self.pixels.setflags(write=False)
        # Pre-serialized bytes make uploads with pybullet's changeTexture cheap.
        self._bytes = [p.tobytes() for p in self.pixels]

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> np.ndarray:
        return self.pixels[index]

    def as_bytes(self, index: int) -> bytes:
        return self._bytes[index]

    def kind(self, index: int) -> str:
        return KINDS[index % len(KINDS)]


@functools.lru_cache(maxsize=4)
def texture_bank(
    count: int = DEFAULT_COUNT, size: int = DEFAULT_SIZE, seed: int = 0
) -> TextureBank:
    """The shared bank (built on first use, then reused by every env in the process)."""
    return TextureBank(count, size, seed)


@functools.lru_cache(maxsize=8)
def blank_texture_file(size: int = DEFAULT_SIZE) -> str:
    """A grey PNG used once per texture slot; pixels are then replaced with ``changeTexture``."""
    folder = (
        Path(tempfile.gettempdir())
        / f"domrand-textures-{os.getuid() if hasattr(os, 'getuid') else 0}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"blank{size}.png"
    if not path.exists():
        tmp = folder / f".blank{size}.{os.getpid()}.png"
        cv2.imwrite(str(tmp), np.full((size, size, 3), 128, np.uint8))
        os.replace(tmp, path)
    return str(path)

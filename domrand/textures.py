"""A deterministic bank of procedural textures made with OpenCV (Tobin et al. 2017 style).

Texture ``i`` is a pure function of ``(bank seed, i)``: one of flat colour, two-colour gradient,
checker, stripes or smoothed noise, in random colours and scales. The bank is generated once per
process and shared.

How the bank reaches pybullet: TinyRenderer (the CPU renderer) keeps its own copy of every texture
it loaded and copies a texture's pixels into a shape when ``changeVisualShape(textureUniqueId=...)``
binds it. ``pybullet.changeTexture`` only updates the OpenGL GUI's copy and is ignored by
TinyRenderer, so swapping pixels inside one texture slot does not work headless. Instead each
texture is written once to a PNG cache (:func:`bank_files`), an env loads the whole bank with
``loadTexture`` when it builds its scene, and every randomized reset only *binds* already-loaded
textures. The server therefore holds a fixed number of textures however many resets run, and
``resetSimulation`` frees them with the scene.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from domrand.fsutil import atomic_write_bytes

__all__ = [
    "DEFAULT_COUNT",
    "DEFAULT_SIZE",
    "KINDS",
    "TextureBank",
    "bank_files",
    "make_texture",
    "texture_bank",
    "white_texture_file",
]

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

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> np.ndarray:
        return self.pixels[index]

    def kind(self, index: int) -> str:
        return KINDS[index % len(KINDS)]

    @functools.cached_property
    def digest(self) -> str:
        """SHA-256 of every pixel: equal across processes and machines for the same bank."""
        return hashlib.sha256(self.pixels.tobytes()).hexdigest()


@functools.lru_cache(maxsize=4)
def texture_bank(
    count: int = DEFAULT_COUNT, size: int = DEFAULT_SIZE, seed: int = 0
) -> TextureBank:
    """The shared bank (built on first use, then reused by every env in the process)."""
    return TextureBank(count, size, seed)


def _cache_root() -> Path:
    """Per-user cache folder for texture files (``DOMRAND_CACHE_DIR`` overrides it)."""
    configured = os.environ.get("DOMRAND_CACHE_DIR")
    if configured:
        return Path(configured)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"domrand-{uid}"


def _write_png(path: Path, rgb: np.ndarray) -> None:
    """Write atomically: concurrent processes (vector env workers) may fill the same cache."""
    ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise OSError(f"could not encode texture file {path}")
    atomic_write_bytes(path, png.tobytes())


def bank_files(bank: TextureBank, repair: bool = False) -> tuple[str, ...]:
    """PNG files holding the bank's textures, written once per machine (keyed by the digest).

    Args:
        repair: check every file and rewrite the missing ones (e.g. after a temp-dir cleaner).

    Returns:
        ``count`` paths; path ``i`` holds texture ``i`` (what ``pybullet.loadTexture`` reads).
    """
    folder = _cache_root() / f"textures-{bank.size}-{bank.digest[:16]}"
    paths = tuple(str(folder / f"{i:05d}.png") for i in range(bank.count))
    marker = folder / "complete"
    if marker.exists() and not repair:
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths):
        if not os.path.exists(path):
            _write_png(Path(path), bank[i])
    marker.touch()
    return paths


def white_texture_file(size: int = 4) -> str:
    """A white PNG: binding it shows an object's plain colour (TinyRenderer multiplies the two)."""
    folder = _cache_root()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"white{size}.png"
    if not path.exists():
        _write_png(path, np.full((size, size, 3), 255, np.uint8))
    return str(path)

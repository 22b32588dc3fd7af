"""A grid of randomized camera views, so a researcher can see what a spec does to the pixels.

``domrand render --env ID --spec FILE --grid 4x4 -o grid.png`` calls :func:`render_grid` and
:func:`write_png`. Each tile is the image observation of one reset, exactly what a policy or a
CNN would be trained on (image effects included).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from domrand.errors import DomrandError
from domrand.fsutil import atomic_write_bytes

__all__ = ["parse_grid", "render_grid", "write_png"]

GUTTER = 2  # pixels of white between tiles


def parse_grid(text: str) -> tuple[int, int]:
    """``"4x4"`` -> ``(rows, cols)``, each 1..32.

    Raises:
        DomrandError: anything else.
    """
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or not (1 <= int(m[1]) <= 32 and 1 <= int(m[2]) <= 32):
        raise DomrandError(f"--grid takes ROWSxCOLS with 1..32 each (e.g. 4x4), got {text!r}")
    return int(m[1]), int(m[2])


def render_grid(
    env_id: str,
    spec: Any = None,
    rows: int = 4,
    cols: int = 4,
    size: int = 128,
    seed: int = 0,
    **env_kwargs: Any,
) -> np.ndarray:
    """``rows * cols`` image observations of consecutive seeded resets, tiled row by row.

    Returns:
        An RGB ``uint8`` image.

    Raises:
        DomrandError: unknown env, no image mode, bad size or seed.
        SpecError: the spec is invalid for the env.
    """
    import domrand

    if not 8 <= size <= 1024:
        raise DomrandError(f"--size must be in [8, 1024] pixels, got {size}")
    try:
        env = domrand.make(
            env_id, spec=spec, seed=seed, obs_mode="image", image_size=size, **env_kwargs
        )
    except (TypeError, ValueError) as e:
        raise DomrandError(f"{env_id} cannot render image observations: {e}") from None
    try:
        tiles = [env.reset()[0] for _ in range(rows * cols)]
    finally:
        env.close()
    h, w = tiles[0].shape[:2]
    grid = np.full(
        (rows * h + (rows - 1) * GUTTER, cols * w + (cols - 1) * GUTTER, 3), 255, np.uint8
    )
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = r * (h + GUTTER), c * (w + GUTTER)
        grid[y : y + h, x : x + w] = tile
    return grid


def write_png(image: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write an RGB image as PNG (atomically).

    Raises:
        DomrandError: the folder does not exist or the file cannot be written.
    """
    import cv2

    p = Path(path)
    if p.suffix.lower() != ".png":
        raise DomrandError(f"output must be a .png file, got {str(p)!r}")
    if not p.parent.is_dir():
        raise DomrandError(f"output folder {str(p.parent)!r} does not exist")
    ok, png = cv2.imencode(".png", np.ascontiguousarray(image[:, :, ::-1]))
    if not ok:
        raise DomrandError(f"could not encode {str(p)!r}")
    atomic_write_bytes(p, png.tobytes())
    return p

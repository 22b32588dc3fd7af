"""Visual sim-to-real transfer after Tobin et al. (2017): a small CNN localizes the target cube.

The pieces the benchmark (``benchmarks/visual_transfer.py``) and its test share:

* :func:`spec_variant`: the Localization training spec restricted to the first ``k`` textures of
  the bank (every randomized surface) and/or without distractors;
* :func:`render_set`: ``n`` renders of a spec or a reality, written with
  :func:`domrand.dataset.write_dataset` (seeded, resumable shards) and read back as arrays;
* :class:`Localizer`: three convolutions and a spatial soft-argmax (each feature map's expected
  image coordinates, Levine et al. 2016), then a small MLP to the table position; coordinates
  make position regression data-efficient at low resolution;
* :func:`train_localizer` (Adam, MSE on the position scaled to [-1, 1], a fixed number of
  steps, seeded) and :func:`position_errors_cm`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from domrand.errors import DomrandError

__all__ = [
    "ENV_ID",
    "LABEL_SCALE",
    "Localizer",
    "TrainSettings",
    "position_errors_cm",
    "predict",
    "render_set",
    "spec_variant",
    "train_localizer",
]

ENV_ID = "domrand/Localization-v0"
#: half the range of the target's (x, y) on the table (envs/localization.py TARGET_RANGE), m
LABEL_SCALE = (0.3, 0.2)
TEXTURE_KNOBS = ("floor.texture", "wall.texture", "table.texture", "target.texture")


def spec_variant(
    base: Mapping[str, Any], textures: int | None = None, distractors: bool = True
) -> dict[str, Any]:
    """A copy of the spec dict ``base`` with ``textures`` bank textures and/or no distractors.

    ``textures=k`` draws every texture ``base`` randomizes uniformly from bank indices
    ``0..k-1`` (the bank cycles through its five kinds, so any ``k >= 5`` has all of them);
    ``None`` keeps ``base``.

    Raises:
        DomrandError: ``textures`` < 1 or larger than the 1,024-texture bank.
    """
    params = dict(base["parameters"])
    if textures is not None:
        if not 1 <= textures <= 1024:
            raise DomrandError(f"textures must be in 1..1024, got {textures}")
        for knob in TEXTURE_KNOBS:
            if isinstance(params.get(knob), Mapping):  # randomized in base (not pinned, not absent)
                params[knob] = (
                    0 if textures == 1 else {"dist": "choice", "values": list(range(textures))}
                )
    if not distractors:
        params["distractors.count"] = 0
    out = dict(base)
    out["parameters"] = params
    return out


def render_set(
    out_dir: str | os.PathLike[str],
    n: int,
    *,
    spec: Any = None,
    domain: Any = None,
    seed: int = 0,
    size: int = 64,
    shard_size: int = 500,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` renders (uint8, (n, H, W, 3)) and labels (float32, (n, 2)) of Localization.

    Written as a dataset in ``out_dir`` first (an existing one with the same arguments is reused);
    ``domain`` (a reality file) is pinned on top of ``spec`` (or of the nominal looks).
    """
    from domrand.dataset import read_shards, write_dataset

    pinned = None
    if domain is not None:
        from domrand.registry import knobs_for
        from domrand.spec import load_domain

        pinned = load_domain(domain, knobs_for(ENV_ID, obs_mode="image"))
        base = dict(spec) if isinstance(spec, Mapping) else {"env": ENV_ID, "parameters": {}}
        spec = {**base, "parameters": {**base.get("parameters", {}), **pinned}}
    write_dataset(ENV_ID, spec, n, out_dir, shard_size=shard_size, seed=seed, image_size=size,
                  progress=False, compress=False)  # fmt: skip
    images, labels = [], []
    for shard in read_shards(out_dir):
        images.append(shard.images)
        labels.append(shard.labels)
    return np.concatenate(images), np.concatenate(labels)


class SpatialSoftArgmax(nn.Module):
    """Per channel, the expected (u, v) image coordinates under a softmax over its pixels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        attn = torch.softmax(x.reshape(b, c, h * w), dim=-1).reshape(b, c, h, w)
        u = torch.linspace(-1.0, 1.0, w, device=x.device)
        v = torch.linspace(-1.0, 1.0, h, device=x.device)
        eu = (attn.sum(dim=2) * u).sum(dim=-1)  # marginal over rows, then E[u]
        ev = (attn.sum(dim=3) * v).sum(dim=-1)
        return torch.cat([eu, ev], dim=1)


class Localizer(nn.Module):
    """Image (B, H, W, 3) uint8 -> the target's table position scaled to [-1, 1]^2.

    Two stride-2 convolutions bring a 64 px image to 16 x 16 feature maps, a third gives
    ``channels`` keypoint maps; the soft-argmax reads sub-cell coordinates from them.
    """

    def __init__(self, channels: int = 32, norm: bool = True) -> None:
        super().__init__()
        c = channels

        def bn(n: int) -> nn.Module:
            return nn.BatchNorm2d(n) if norm else nn.Identity()

        self.features = nn.Sequential(
            nn.Conv2d(3, c // 2, 5, stride=2, padding=2),
            bn(c // 2),
            nn.ReLU(),
            nn.Conv2d(c // 2, c, 3, stride=2, padding=1),
            bn(c),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1),
        )
        self.keypoints = SpatialSoftArgmax()
        self.head = nn.Sequential(nn.Linear(2 * c, 64), nn.ReLU(), nn.Linear(64, 2))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return self.head(self.keypoints(self.features(x)))


@dataclass(frozen=True)
class TrainSettings:
    """Optimization of :func:`train_localizer` (a fixed number of steps for every data size)."""

    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    channels: int = 32
    threads: int = 1


def _scale() -> torch.Tensor:
    return torch.tensor(LABEL_SCALE, dtype=torch.float32)


def train_localizer(
    images: np.ndarray, labels: np.ndarray, settings: TrainSettings = TrainSettings(), seed: int = 0
) -> Localizer:
    """Fit a :class:`Localizer` to ``(images, labels)`` (labels in metres); deterministic.

    The learning rate follows a cosine from ``lr`` to 0 over ``settings.steps`` steps; batches
    are drawn with replacement from a generator seeded with ``seed``, as is the initialization.

    Raises:
        DomrandError: empty or mismatched data, or non-positive steps / batch size.
    """
    if len(images) == 0 or len(images) != len(labels):
        raise DomrandError(f"need as many images as labels, got {len(images)} and {len(labels)}")
    if settings.steps < 1 or settings.batch_size < 1:
        raise DomrandError("steps and batch_size must be at least 1")
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        torch.manual_seed(seed)  # nn.Module init draws from the global generator
        model = Localizer(settings.channels)
        gen = torch.Generator().manual_seed(seed)
        x_all = torch.from_numpy(np.ascontiguousarray(images))
        y_all = torch.from_numpy(np.asarray(labels, dtype=np.float32)) / _scale()
        opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda t: 0.5 * (1.0 + math.cos(math.pi * t / settings.steps))
        )
        model.train()
        for _ in range(settings.steps):
            idx = torch.randint(len(x_all), (settings.batch_size,), generator=gen)
            loss = nn.functional.mse_loss(model(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@torch.no_grad()
def predict(model: Localizer, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Table positions (metres, (n, 2)) the model reads from ``images``."""
    out = []
    x = torch.from_numpy(np.ascontiguousarray(images))
    for i in range(0, len(x), batch_size):
        out.append(model(x[i : i + batch_size]) * _scale())
    return torch.cat(out).numpy()


def position_errors_cm(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Euclidean distance between predicted and true positions, per image, in centimetres."""
    return 100.0 * np.hypot(*(np.asarray(pred) - np.asarray(labels)).T)

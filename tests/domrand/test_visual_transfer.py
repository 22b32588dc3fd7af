"""The visual-transfer plumbing: spec variants, cached renders, the CNN learns and is seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import domrand
from domrand.errors import DomrandError
from domrand.spec import load_spec
from domrand.visual_transfer import (
    LABEL_SCALE,
    TEXTURE_KNOBS,
    Localizer,
    TrainSettings,
    position_errors_cm,
    predict,
    render_set,
    spec_variant,
    train_localizer,
)

ENV = "domrand/Localization-v0"
BASE = yaml.safe_load(domrand.default_spec_path(ENV).read_text())


def test_spec_variants_restrict_textures_and_remove_distractors() -> None:
    ten = load_spec(spec_variant(BASE, textures=10))  # still a valid spec for the env
    rng = np.random.default_rng(0)
    drawn = {ten.sample(rng)[k] for _ in range(200) for k in TEXTURE_KNOBS}
    assert drawn == set(range(10))
    one = spec_variant(BASE, textures=1, distractors=False)
    assert all(one["parameters"][k] == 0 for k in TEXTURE_KNOBS)
    assert one["parameters"]["distractors.count"] == 0
    assert BASE["parameters"]["distractors.count"] != 0  # the base is not modified
    pinned = {**BASE, "parameters": {**BASE["parameters"], "target.texture": -1}}
    assert spec_variant(pinned, textures=10)["parameters"]["target.texture"] == -1  # stays pinned
    with pytest.raises(DomrandError, match=r"1\.\.1024"):
        spec_variant(BASE, textures=0)


def test_render_set_caches_a_seeded_dataset(tmp_path: Path) -> None:
    spec = spec_variant(BASE, textures=5)
    x, y = render_set(tmp_path / "a", 6, spec=spec, seed=3, size=16, shard_size=4)
    assert x.shape == (6, 16, 16, 3) and x.dtype == np.uint8 and y.shape == (6, 2)
    assert (np.abs(y) <= np.array(LABEL_SCALE) + 1e-6).all()
    x2, _ = render_set(tmp_path / "a", 6, spec=spec, seed=3, size=16, shard_size=4)  # cached
    np.testing.assert_array_equal(x, x2)
    reality = domrand.realities(ENV)["lab_bench"]
    xr, _ = render_set(tmp_path / "r", 2, domain=reality, seed=3, size=16)
    assert xr.shape == (2, 16, 16, 3) and not np.array_equal(xr, x[:2])
    with pytest.raises(DomrandError, match="different dataset"):
        render_set(tmp_path / "a", 6, spec=spec, seed=4, size=16, shard_size=4)


def _dots(n: int, rng: np.random.Generator, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Noisy images with a bright 3x3 dot where the label says (an easy localization task)."""
    labels = rng.uniform(-1, 1, (n, 2)) * np.array(LABEL_SCALE)
    images = rng.integers(0, 60, (n, size, size, 3), dtype=np.uint8)
    cols = np.round((labels[:, 0] / LABEL_SCALE[0] + 1) / 2 * (size - 4)).astype(int) + 1
    rows = np.round((labels[:, 1] / LABEL_SCALE[1] + 1) / 2 * (size - 4)).astype(int) + 1
    for i, (r, c) in enumerate(zip(rows, cols)):
        images[i, r : r + 3, c : c + 3] = 255
    return images, labels.astype(np.float32)


def test_the_cnn_learns_an_easy_localization_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    x, y = _dots(512, rng)
    xt, yt = _dots(128, rng)
    settings = TrainSettings(steps=150, batch_size=32, lr=3e-3, channels=16)
    model = train_localizer(x, y, settings, seed=1)
    err = position_errors_cm(predict(model, xt), yt).mean()
    centre = position_errors_cm(np.zeros_like(yt), yt).mean()
    assert err < 0.2 * centre, (err, centre)  # measured: ~0.05
    short = TrainSettings(steps=20, batch_size=32, lr=3e-3, channels=16)
    a, b = (train_localizer(x, y, short, seed=1) for _ in range(2))
    np.testing.assert_array_equal(predict(a, xt), predict(b, xt))


def test_errors_in_cm_and_refusals() -> None:
    pred = np.array([[0.03, 0.04], [0.0, 0.0]])
    np.testing.assert_allclose(position_errors_cm(pred, np.zeros((2, 2))), [5.0, 0.0])
    with pytest.raises(DomrandError, match="as many images as labels"):
        train_localizer(np.zeros((3, 32, 32, 3), np.uint8), np.zeros((2, 2)))
    with pytest.raises(DomrandError, match="at least 1"):
        train_localizer(np.zeros((2, 32, 32, 3), np.uint8), np.zeros((2, 2)),
                        TrainSettings(steps=0))  # fmt: skip
    out = Localizer(8).eval()(torch.zeros((3, 32, 32, 3), dtype=torch.uint8))
    assert tuple(out.shape) == (3, 2)

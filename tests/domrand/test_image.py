"""Post-render image effects: each does what it says, and the nominal values are the identity."""

from __future__ import annotations

from dataclasses import fields

import cv2
import numpy as np
import pytest

from domrand.image import ImageAug, augment, image_knobs

RNG_SEED = 0


def rng() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


def grey(value: int = 128, size: int = 64) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def scene(size: int = 64) -> np.ndarray:
    """A colourful image with edges and gradients."""
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.stack([xx * 4 % 256, yy * 4 % 256, (xx + yy) * 2 % 256], -1).astype(np.uint8)
    img[size // 4 : size // 2, size // 4 : size // 2] = (250, 30, 30)
    return img


def high_freq(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_knobs_match_the_parameters_and_nominal_is_the_identity() -> None:
    knobs = {k.name: k for k in image_knobs()}
    names = {f"image.{f.name}" for f in fields(ImageAug)}
    assert set(knobs) == names
    nominal = {name: k.nominal for name, k in knobs.items()}
    aug = ImageAug.from_domain(nominal)
    assert aug == ImageAug() and aug.is_identity
    img, r = scene(), rng()
    state = r.bit_generator.state
    out = augment(img, aug, r)
    np.testing.assert_array_equal(out, img)
    assert out is not img  # a new array, never the caller's
    assert r.bit_generator.state == state  # the identity draws no random numbers


def test_from_domain_ignores_other_knobs_and_keeps_defaults() -> None:
    aug = ImageAug.from_domain({"image.noise": 3.0, "pole.mass": 1.0})
    assert aug.noise == 3.0 and aug.blur == 0.0 and not aug.is_identity
    assert ImageAug(cutout_size=0.5).is_identity  # size alone does nothing


def test_noise_has_the_requested_std_and_is_seeded() -> None:
    out = augment(grey(128, 128), ImageAug(noise=10.0), rng()).astype(float)
    assert out.std() == pytest.approx(10.0, rel=0.05)
    assert out.mean() == pytest.approx(128.0, abs=0.5)
    again = augment(grey(128, 128), ImageAug(noise=10.0), rng())
    np.testing.assert_array_equal(out, again)
    other = augment(grey(128, 128), ImageAug(noise=10.0), np.random.default_rng(1))
    assert not np.array_equal(out, other)


def test_blur_removes_high_frequencies_and_keeps_the_mean() -> None:
    img = np.random.default_rng(3).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    out = augment(img, ImageAug(blur=1.5), rng())
    assert high_freq(out) < 0.2 * high_freq(img)
    assert out.mean() == pytest.approx(img.mean(), abs=2.0)
    assert high_freq(augment(img, ImageAug(blur=3.0), rng())) < high_freq(out)


@pytest.mark.parametrize("delta", [-40.0, 25.0])
def test_brightness_shifts_the_mean(delta: float) -> None:
    out = augment(grey(100), ImageAug(brightness=delta), rng())
    assert out.mean() == pytest.approx(100 + delta, abs=0.5)


def test_contrast_scales_around_mid_grey() -> None:
    img = scene()
    high = augment(img, ImageAug(contrast=1.5), rng()).astype(float)
    low = augment(img, ImageAug(contrast=0.5), rng()).astype(float)
    assert high.std() > img.std() > low.std()
    assert augment(grey(128), ImageAug(contrast=3.0), rng()).mean() == pytest.approx(128, abs=1)


def test_gamma_above_one_darkens_below_one_brightens_and_keeps_the_ends() -> None:
    mid = grey(128)
    assert augment(mid, ImageAug(gamma=2.0), rng()).mean() < 128 - 30
    assert augment(mid, ImageAug(gamma=0.5), rng()).mean() > 128 + 30
    for v in (0, 255):
        np.testing.assert_array_equal(augment(grey(v), ImageAug(gamma=3.0), rng()), grey(v))


@pytest.mark.parametrize(("hue", "channel"), [(120.0, 1), (-120.0, 2), (0.0, 0)])
def test_hue_rotates_colours(hue: float, channel: int) -> None:
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    aug = ImageAug(hue=hue, saturation=1.0 if hue else 0.999)
    out = augment(red, aug, rng())
    assert int(np.argmax(out[0, 0])) == channel
    assert out[0, 0].max() >= 250


def test_saturation_and_value() -> None:
    img = scene()
    flat = augment(img, ImageAug(saturation=0.0), rng()).astype(int)
    assert np.abs(flat[..., 0] - flat[..., 1]).max() <= 1  # grey: R = G = B
    assert np.abs(flat[..., 1] - flat[..., 2]).max() <= 1
    dim = augment(img, ImageAug(value=0.5), rng())
    assert dim.mean() == pytest.approx(0.5 * img.mean(), rel=0.05)


def test_jpeg_changes_pixels_at_low_quality_only() -> None:
    img = np.random.default_rng(4).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    low = augment(img, ImageAug(jpeg_quality=10), rng())
    mid = augment(img, ImageAug(jpeg_quality=90), rng())
    err_low = np.abs(low.astype(int) - img).mean()
    err_mid = np.abs(mid.astype(int) - img).mean()
    assert err_low > err_mid > 0
    np.testing.assert_array_equal(augment(img, ImageAug(jpeg_quality=100), rng()), img)


@pytest.mark.parametrize(("count", "size"), [(1, 0.2), (1, 0.5), (3, 0.1)])
def test_cutout_zeroes_the_right_area(count: int, size: float) -> None:
    img = grey(255, 100)
    out = augment(img, ImageAug(cutout=count, cutout_size=size), rng())
    zeroed = float((out.sum(-1) == 0).mean())
    box = size * size
    assert box - 1e-9 <= zeroed <= count * box + 1e-9
    if count == 1:
        assert zeroed == pytest.approx(box)
    assert set(np.unique(out)) <= {0, 255}  # nothing else touched


def test_rejects_non_rgb_uint8_images() -> None:
    for bad in (np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32),
                np.zeros((8, 8, 4), np.uint8)):  # fmt: skip
        with pytest.raises(ValueError, match="uint8"):
            augment(bad, ImageAug(noise=1.0), rng())

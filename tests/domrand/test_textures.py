"""The procedural texture bank: >= 1,000 distinct textures of five kinds, the same everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from domrand.textures import (
    DEFAULT_COUNT,
    KINDS,
    TextureBank,
    bank_files,
    make_texture,
    texture_bank,
    white_texture_file,
)


@pytest.fixture(scope="module")
def bank() -> TextureBank:
    return texture_bank()


def test_bank_has_at_least_1000_distinct_textures(bank: TextureBank) -> None:
    assert len(bank) == DEFAULT_COUNT >= 1000
    assert bank.pixels.shape == (len(bank), bank.size, bank.size, 3)
    assert bank.pixels.dtype == np.uint8
    assert len({p.tobytes() for p in bank.pixels}) == len(bank)
    assert not bank.pixels.flags.writeable  # shared by every env: read-only


def test_every_kind_is_present_and_looks_like_its_name(bank: TextureBank) -> None:
    seen = {bank.kind(i) for i in range(len(bank))}
    assert seen == set(KINDS)
    for i in range(50):
        tex, kind = bank[i].astype(int), bank.kind(i)
        colours = len(np.unique(tex.reshape(-1, 3), axis=0))
        if kind == "flat":
            assert colours == 1
        elif kind in ("checker", "stripes"):
            assert colours == 2
        else:  # gradient, noise: smooth blends between two colours
            assert colours > 10
            assert np.abs(np.diff(tex, axis=0)).mean() < 20


def test_checker_alternates_along_both_axes(bank: TextureBank) -> None:
    i = KINDS.index("checker")
    tex = bank[i]
    rows = [len(np.unique(tex[r].reshape(-1, 3), axis=0)) for r in range(0, bank.size, 7)]
    cols = [len(np.unique(tex[:, c].reshape(-1, 3), axis=0)) for c in range(0, bank.size, 7)]
    assert min(rows) == 2 and min(cols) == 2


def test_bank_is_deterministic_across_processes(bank: TextureBank) -> None:
    code = "from domrand.textures import texture_bank; print(texture_bank().digest)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == bank.digest
    np.testing.assert_array_equal(make_texture(17), bank[17])


def test_seed_and_size_give_other_banks() -> None:
    a, b = TextureBank(count=20, seed=0), TextureBank(count=20, seed=1)
    assert a.digest != b.digest
    np.testing.assert_array_equal(a.pixels, texture_bank().pixels[:20])
    assert TextureBank(count=5, size=16).pixels.shape == (5, 16, 16, 3)
    with pytest.raises(ValueError):
        TextureBank(count=0)


def test_bank_files_hold_the_bank_pixels(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOMRAND_CACHE_DIR", str(tmp_path))
    small = TextureBank(count=12, size=16, seed=3)
    files = bank_files(small)
    assert len(files) == 12 and all(f.startswith(str(tmp_path)) for f in files)
    for i in (0, 5, 11):
        rgb = cv2.imread(files[i], cv2.IMREAD_COLOR)[:, :, ::-1]
        np.testing.assert_array_equal(rgb, small[i])
    assert bank_files(small) == files  # written once, then reused
    white = cv2.imread(white_texture_file(), cv2.IMREAD_COLOR)
    assert white.min() == 255


def test_bank_files_repair_rewrites_deleted_files(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOMRAND_CACHE_DIR", str(tmp_path))
    small = TextureBank(count=4, size=8, seed=5)
    files = bank_files(small)
    Path(files[2]).unlink()  # e.g. a temp-dir cleaner
    assert bank_files(small, repair=True) == files
    rgb = cv2.imread(files[2], cv2.IMREAD_COLOR)[:, :, ::-1]
    np.testing.assert_array_equal(rgb, small[2])

"""SimOpt's discrepancy on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from domrand.guided.discrepancy import Discrepancy, gaussian_kernel, smooth_time


def test_unsmoothed_l1_l2_by_hand() -> None:
    sim = np.array([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    real = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # diffs: (1, 2), (0, -1), (2, -2) -> L1 = 3 + 1 + 4 = 8, L2 = 5 + 1 + 8 = 14
    d = Discrepancy(w_l1=0.5, w_l2=1.0, sigma=0.0)
    assert d(sim, real) == pytest.approx(0.5 * 8 + 1.0 * 14)


def test_dimension_weights_by_hand() -> None:
    sim = np.array([[1.0, 2.0], [0.0, 0.0]])
    real = np.zeros((2, 2))
    # weighted diffs: (3, 1), (0, 0) -> L1 = 4, L2 = 10
    d = Discrepancy(w_l1=2.0, w_l2=3.0, sigma=0.0, weights=(3.0, 0.5))
    assert d(sim, real) == pytest.approx(2.0 * 4 + 3.0 * 10)


def test_identical_trajectories_cost_zero_and_cost_grows_with_offset() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(60, 3))
    d = Discrepancy()
    assert d(real, real) == 0.0
    costs = [d(real + off, real) for off in (0.01, 0.1, 1.0)]
    assert costs[0] < costs[1] < costs[2]


def test_constant_offset_is_unchanged_by_smoothing() -> None:
    # A normalized kernel leaves a constant signal constant, so smoothing cannot change it.
    real = np.zeros((50, 2))
    sim = real + np.array([0.2, -0.1])
    smoothed = Discrepancy(sigma=5.0)(sim, real)
    raw = Discrepancy(sigma=0.0)(sim, real)
    assert smoothed == pytest.approx(raw, rel=1e-12)


def test_smoothing_damps_high_frequency_jitter() -> None:
    t = np.arange(200)
    jitter = (0.1 * (-1.0) ** t)[:, None]  # alternating +-0.1 every step
    d_raw = Discrepancy(sigma=0.0)(jitter, np.zeros_like(jitter))
    d_smooth = Discrepancy(sigma=5.0)(jitter, np.zeros_like(jitter))
    assert d_smooth < 0.05 * d_raw


def test_kernel_is_normalized_with_the_published_radius() -> None:
    k = gaussian_kernel(5.0, 4.0)
    assert k.size == 2 * 20 + 1
    assert k.sum() == pytest.approx(1.0)
    assert np.argmax(k) == 20


def test_smooth_time_matches_a_direct_convolution_in_the_interior() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 1))
    k = gaussian_kernel(2.0, 4.0)
    r = (k.size - 1) // 2
    out = smooth_time(x, 2.0)
    for i in range(r, 100 - r):
        assert out[i, 0] == pytest.approx(float(np.dot(x[i - r : i + r + 1, 0], k[::-1])))


def test_unequal_lengths_use_the_common_prefix_and_bad_shapes_raise() -> None:
    d = Discrepancy(sigma=0.0)
    a = np.ones((10, 2))
    assert d(a, np.zeros((4, 2))) == pytest.approx(0.5 * 8 + 8)
    with pytest.raises(ValueError, match="do not match"):
        d(np.ones((5, 2)), np.ones((5, 3)))
    with pytest.raises(ValueError, match="empty"):
        d(np.ones((0, 2)), np.ones((3, 2)))

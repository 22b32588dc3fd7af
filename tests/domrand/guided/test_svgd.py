"""Textbook SVGD approximates known 1-D and 2-D Gaussians; the repulsive term is correct."""

from __future__ import annotations

import numpy as np
import pytest

from domrand.guided.svgd import median_bandwidth, rbf_kernel, svgd_direction


def _run(x: np.ndarray, grad, steps: int = 2000, lr: float = 0.05) -> np.ndarray:
    for _ in range(steps):
        x = x + lr * svgd_direction(x, grad(x))
    return x


def test_particles_approximate_a_1d_gaussian() -> None:
    mu, sigma = 2.0, 0.5
    x0 = np.random.default_rng(0).uniform(-3.0, -2.0, size=(50, 1))
    x = _run(x0, lambda x: -(x - mu) / sigma**2)
    assert x.mean() == pytest.approx(mu, abs=0.05)
    assert x.std() == pytest.approx(sigma, rel=0.15)


def test_particles_approximate_a_correlated_2d_gaussian() -> None:
    mu = np.array([1.0, -1.0])
    cov = np.array([[1.0, 0.6], [0.6, 0.5]])
    prec = np.linalg.inv(cov)
    x0 = np.random.default_rng(1).normal(size=(80, 2)) * 0.1
    x = _run(x0, lambda x: -(x - mu) @ prec.T, steps=3000)
    assert np.allclose(x.mean(0), mu, atol=0.1)
    emp = np.cov(x.T)
    assert np.allclose(emp, cov, atol=0.15)
    assert np.corrcoef(x.T)[0, 1] > 0.6


def test_without_the_repulsive_term_particles_collapse_to_the_mode() -> None:
    # Sanity check of what repulsion buys: kernel-smoothed gradient ascent alone collapses.
    x = np.random.default_rng(2).normal(size=(30, 1))
    for _ in range(2000):
        h = median_bandwidth(x)
        k, _ = rbf_kernel(x, h)
        x = x + 0.05 * (k.T @ (-(x - 0.0))) / len(x)
    assert x.std() < 0.05


def test_repulsion_pushes_particles_apart_elementwise() -> None:
    x = np.array([[0.0, 0.0], [1.0, 0.0]])
    k, rep = rbf_kernel(x, 1.0)
    # particle 0 is pushed toward -x, particle 1 toward +x, nothing along y
    assert rep[0, 0] < 0 < rep[1, 0]
    assert rep[0, 1] == 0 and rep[1, 1] == 0
    assert k[0, 1] == pytest.approx(np.exp(-0.5))


def test_bandwidth_median_heuristic_by_hand() -> None:
    x = np.array([[0.0], [1.0], [3.0]])  # squared distances 1, 9, 4 -> median 4
    assert median_bandwidth(x) == pytest.approx(np.sqrt(0.5 * 4 / np.log(4)))


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        svgd_direction(np.zeros((3, 2)), np.zeros((3, 1)))

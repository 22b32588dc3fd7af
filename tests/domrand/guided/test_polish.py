"""The surrogate polish's math: an exact quadratic is recovered, noise is averaged out, and the
trust-region step is Newton inside the region, clipped at its edge, and downhill where the fit
has no minimum."""

from __future__ import annotations

import numpy as np
import pytest

from domrand.guided.polish import fit_quadratic, n_features, trust_step


def _quadratic(z: np.ndarray, center: np.ndarray, hess: np.ndarray) -> np.ndarray:
    d = z - center
    return 3.0 + 0.5 * np.einsum("ni,ij,nj->n", d, hess, d)


def test_an_exact_quadratic_is_recovered() -> None:
    rng = np.random.default_rng(0)
    hess = np.array([[4.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    center = np.array([0.3, -0.2, 0.1])
    z = rng.standard_normal((40, 3))
    fit = fit_quadratic(z, _quadratic(z, center, hess))
    np.testing.assert_allclose(fit.hess, hess, atol=1e-9)
    np.testing.assert_allclose(fit.grad, -hess @ center, atol=1e-9)
    assert fit.resid_sd < 1e-9 and fit.n == 40
    np.testing.assert_allclose(trust_step(fit, 10.0), center, atol=1e-9)  # Newton: the minimum
    assert fit(center[None])[0] == pytest.approx(3.0)


def test_rough_costs_are_averaged_out() -> None:
    """Roughness 5x the valley's depth over the sampled region: the cheapest sample is far from
    the minimum, the fitted minimum is close to it."""
    rng = np.random.default_rng(1)
    hess = np.diag([2.0, 0.2])  # a long, shallow valley along the second axis
    center = np.array([0.2, 0.6])
    z = rng.standard_normal((400, 2))
    costs = _quadratic(z, center, hess) + 0.5 * rng.standard_normal(400)
    step = trust_step(fit_quadratic(z, costs), 2.0)
    assert np.linalg.norm(step - center) < 0.2
    assert np.linalg.norm(z[np.argmin(costs)] - center) > 2 * np.linalg.norm(step - center)


def test_the_step_stays_in_the_trust_region_and_goes_downhill_without_a_minimum() -> None:
    rng = np.random.default_rng(2)
    z = rng.standard_normal((30, 2))
    far = _quadratic(z, np.array([5.0, 0.0]), np.eye(2))
    step = trust_step(fit_quadratic(z, far), 1.0)
    np.testing.assert_allclose(step, [1.0, 0.0], atol=1e-9)  # toward the far minimum, length 1
    saddle = 2.0 * z[:, 0] - z[:, 1] ** 2  # falls along -x and along both directions of y
    step = trust_step(fit_quadratic(z, saddle), 1.0)
    assert np.linalg.norm(step) == pytest.approx(1.0)
    assert step[0] < 0 and abs(step[1]) > 0.1


def test_too_few_finite_samples_are_refused() -> None:
    assert n_features(3) == 10
    z = np.random.default_rng(3).standard_normal((12, 3))
    costs = np.ones(12)
    costs[:3] = np.inf  # non-finite costs (physics faults) are left out
    with pytest.raises(ValueError, match="at least 10 finite samples, got 9"):
        fit_quadratic(z, costs)
    costs[0] = 1.0
    assert fit_quadratic(z, costs).n == 10

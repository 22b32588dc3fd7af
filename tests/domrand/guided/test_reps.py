"""REPS: the KL bound holds, the update moves toward low cost, the dual is minimized."""

from __future__ import annotations

import numpy as np
import pytest

from domrand.guided.reps import reps_dual, reps_update, reps_weights


@pytest.mark.parametrize("epsilon", [0.05, 0.3, 1.0, 2.0])
def test_weights_respect_the_kl_bound(epsilon: float) -> None:
    rng = np.random.default_rng(0)
    costs = rng.exponential(size=200)
    w, eta, kl = reps_weights(costs, epsilon)
    assert w.sum() == pytest.approx(1.0)
    assert kl <= epsilon * (1 + 1e-6)
    # The bound is active unless the minimum temperature already satisfies it.
    assert kl == pytest.approx(epsilon, rel=1e-3) or eta == pytest.approx(1e-3)
    # Lower cost never gets less weight.
    order = np.argsort(costs)
    assert np.all(np.diff(w[order]) <= 1e-15)


def test_eta_minimizes_the_dual() -> None:
    rng = np.random.default_rng(1)
    costs = rng.normal(size=100) ** 2
    eps = 0.5
    _, eta, _ = reps_weights(costs, eps)
    g = reps_dual(costs, eta, eps)
    for factor in (0.8, 0.9, 1.1, 1.25):
        assert g <= reps_dual(costs, eta * factor, eps) + 1e-9


def test_update_moves_toward_low_cost_and_stays_close() -> None:
    rng = np.random.default_rng(2)
    mu, cov = np.zeros(2), np.eye(2)
    target = np.array([3.0, -2.0])
    for _ in range(30):
        x = rng.multivariate_normal(mu, cov, size=300)
        costs = np.sum((x - target) ** 2, axis=1)
        res = reps_update(x, costs, epsilon=0.5)
        # While far away, every step gets closer (sampling noise dominates only near the optimum).
        if np.linalg.norm(mu - target) > 0.5:
            assert np.linalg.norm(res.mean - target) < np.linalg.norm(mu - target)
        mu, cov = res.mean, res.cov
    assert np.linalg.norm(mu - target) < 0.2
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_equal_costs_give_uniform_weights_and_the_sample_moments() -> None:
    x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    res = reps_update(x, np.ones(4))
    assert np.allclose(res.weights, 0.25)
    assert np.allclose(res.mean, [1.0, 1.0])
    assert np.allclose(res.cov, np.eye(2), atol=1e-9)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError):
        reps_weights(np.array([1.0, np.nan]))
    with pytest.raises(ValueError):
        reps_weights(np.array([]))
    with pytest.raises(ValueError):
        reps_weights(np.ones(3), epsilon=0.0)
    with pytest.raises(ValueError):
        reps_update(np.ones((3, 2)), np.ones(4))

"""Classical controllers: the discrete LQR solver and the nominal-model cart-pole LQR."""

from __future__ import annotations

import numpy as np
import pytest

import domrand
from domrand.demo import rollout_returns
from domrand.policies.controllers import CartPoleLQR, dlqr

ENV_ID = "domrand/CartPole-v0"


def spectral_radius(m: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(m))))


def test_dlqr_stabilizes_a_double_integrator() -> None:
    dt = 0.1
    a = np.array([[1.0, dt], [0.0, 1.0]])  # open loop: eigenvalues 1, 1 (not stable)
    b = np.array([[0.5 * dt * dt], [dt]])
    q, r = np.eye(2), np.array([[1.0]])
    k = dlqr(a, b, q, r)
    assert k.shape == (1, 2)
    assert spectral_radius(a - b @ k) < 1.0
    # K is optimal: P from the Riccati equation is a fixed point
    p = q.copy()
    for _ in range(2000):
        p = q + a.T @ p @ a - a.T @ p @ b @ np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
    np.testing.assert_allclose(k, np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a), rtol=1e-6)


def test_dlqr_scalar_case_matches_the_closed_form() -> None:
    # x' = 2x + u, q = r = 1: P solves P = 1 + 4P - 4P^2 / (1 + P) -> P = 2 + sqrt(5)
    p = 2.0 + np.sqrt(5.0)
    k = dlqr(np.array([[2.0]]), np.array([[1.0]]), np.array([[1.0]]), np.array([[1.0]]))
    assert k[0, 0] == pytest.approx(2.0 * p / (1.0 + p), rel=1e-8)
    assert abs(2.0 - k[0, 0]) < 1.0


def test_cartpole_lqr_pushes_the_cart_under_a_leaning_pole() -> None:
    pi = CartPoleLQR()
    assert pi.k.shape == (1, 4)
    assert np.all(np.isfinite(pi.k))
    # theta > 0 leans the pole towards +x: the cart must be pushed along +x to catch it
    assert pi(np.array([0.0, 0.0, 0.05, 0.0]))[0] > 0
    assert pi(np.array([0.0, 0.0, -0.05, 0.0]))[0] < 0


def test_cartpole_lqr_action_is_clipped_float32() -> None:
    a = CartPoleLQR()(np.array([0.0, 0.0, 1.0, 5.0], dtype=np.float32))
    assert a.dtype == np.float32 and a.shape == (1,)
    assert -1.0 <= a[0] <= 1.0


def test_cartpole_lqr_balances_nominal_cartpole() -> None:
    env = domrand.make(ENV_ID, seed=0)
    try:
        assert rollout_returns(env, CartPoleLQR(), 3) == [500.0, 500.0, 500.0]
    finally:
        env.close()


def test_a_zero_policy_does_not_balance() -> None:
    """The env is not trivially balanced: the LQR test above could fail."""
    env = domrand.make(ENV_ID, seed=0)
    try:
        returns = rollout_returns(env, lambda obs: np.zeros(1, np.float32), 3)
    finally:
        env.close()
    assert max(returns) < 100

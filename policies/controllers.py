"""Classical controllers: baselines and the demo's "simple controller" before learning arrives.

``CartPoleLQR`` is a discrete-time LQR designed on the *nominal* cart-pole model. Under domain
randomization it degrades gracefully, which makes it a useful yardstick for what randomization
does to a fixed controller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CartPoleLQR", "dlqr"]


def dlqr(
    a: np.ndarray, b: np.ndarray, q: np.ndarray, r: np.ndarray, iters: int = 5000
) -> np.ndarray:
    """Gain K of the discrete LQR u = -K x, by iterating the Riccati equation to convergence."""
    p = q.copy()
    for _ in range(iters):
        bt_p = b.T @ p
        k = np.linalg.solve(r + bt_p @ b, bt_p @ a)
        p_next = q + a.T @ p @ (a - b @ k)
        if np.allclose(p_next, p, rtol=1e-10, atol=1e-12):
            p = p_next
            break
        p = p_next
    bt_p = b.T @ p
    return np.linalg.solve(r + bt_p @ b, bt_p @ a)


@dataclass
class CartPoleLQR:
    """LQR for ``domrand/CartPole-v0`` designed on nominal parameters.

    The linearized model: theta > 0 tilts the pole towards +x; a push F along +x accelerates the
    cart and swings the pole towards -x. The action is ``F / gain`` clipped to [-1, 1].
    """

    cart_mass: float = 1.0
    pole_mass: float = 0.1
    pole_half_length: float = 0.5
    pole_inertia: float = 0.1 * (1.0 + 0.05**2) / 12  # box 0.05 x 0.05 x 1 m about its centre
    gravity: float = 9.81
    gain: float = 10.0
    dt: float = 0.02

    def __post_init__(self) -> None:
        big_m, m, ln, i, g = (
            self.cart_mass,
            self.pole_mass,
            self.pole_half_length,
            self.pole_inertia,
            self.gravity,
        )
        # [[M+m, m l], [m l, I + m l^2]] [xdd, thdd] = [F, m g l th]
        mass = np.array([[big_m + m, m * ln], [m * ln, i + m * ln * ln]])
        inv = np.linalg.inv(mass)
        a_c = np.zeros((4, 4))
        a_c[0, 1] = a_c[2, 3] = 1.0
        a_c[[1, 3], 2] = inv @ np.array([0.0, m * g * ln])
        b_c = np.zeros((4, 1))
        b_c[[1, 3], 0] = inv @ np.array([1.0, 0.0])
        # Zero-order-hold discretization via a truncated matrix exponential (dt is small).
        n = 4
        aug = np.zeros((n + 1, n + 1))
        aug[:n, :n] = a_c * self.dt
        aug[:n, n:] = b_c * self.dt
        expm = np.eye(n + 1)
        term = np.eye(n + 1)
        for k in range(1, 20):
            term = term @ aug / k
            expm = expm + term
        a_d, b_d = expm[:n, :n], expm[:n, n:]
        self.k = dlqr(a_d, b_d, np.diag([1.0, 0.1, 10.0, 0.1]), np.array([[0.01]]))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        force = -float((self.k @ np.asarray(obs, dtype=np.float64)[:4])[0])
        return np.array([np.clip(force / self.gain, -1.0, 1.0)], dtype=np.float32)

"""SimOpt's trajectory discrepancy between a simulated and a real observation sequence.

D(tau_sim, tau_real) = w_l1 * sum_t |W (o_t^sim - o_t^real)|_1
                     + w_l2 * sum_t ||W (o_t^sim - o_t^real)||^2

W holds per-observation-dimension weights. Before the norms, the difference signal is smoothed
along time by a Gaussian filter (sigma 5 steps, truncated at 4 sigma, in the published setup),
which makes the cost robust to small timing jitter between sim and real. Sequences of unequal
length are compared over their common prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Discrepancy", "gaussian_kernel", "smooth_time"]


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Normalized 1-D Gaussian kernel with radius ``round(truncate * sigma)``."""
    if sigma <= 0:
        return np.ones(1)
    radius = round(truncate * sigma)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def smooth_time(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Gaussian-smooth a ``[T, d]`` signal along time, reflecting at the ends (like SciPy)."""
    x = np.asarray(x, dtype=np.float64)
    if sigma <= 0 or x.shape[0] < 2:
        return x.copy()
    k = gaussian_kernel(sigma, truncate)
    r = (k.size - 1) // 2
    # 'reflect' (half-sample symmetric) padding, repeated if the signal is shorter than r
    idx = np.arange(-r, x.shape[0] + r)
    period = 2 * x.shape[0]
    idx = np.mod(idx, period)
    idx = np.where(idx >= x.shape[0], period - 1 - idx, idx)
    padded = x[idx]
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        out[:, j] = np.convolve(padded[:, j], k, mode="valid")
    return out


@dataclass(frozen=True)
class Discrepancy:
    """The weighted L1 + L2 discrepancy with temporal smoothing (published defaults)."""

    w_l1: float = 0.5
    w_l2: float = 1.0
    sigma: float = 5.0
    truncate: float = 4.0
    weights: tuple[float, ...] | None = None  #: per observation dimension; None = all ones

    def __call__(self, sim: np.ndarray, real: np.ndarray) -> float:
        """Discrepancy between two ``[T, d]`` observation sequences (lower is closer)."""
        a = np.asarray(sim, dtype=np.float64)
        b = np.asarray(real, dtype=np.float64)
        a = a[:, None] if a.ndim == 1 else a
        b = b[:, None] if b.ndim == 1 else b
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
            raise ValueError(f"observation sequences do not match: {a.shape} vs {b.shape}")
        t = min(a.shape[0], b.shape[0])
        if t == 0:
            raise ValueError("cannot compare empty trajectories")
        diff = a[:t] - b[:t]
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float64)
            if w.shape != (diff.shape[1],):
                raise ValueError(f"{w.size} weights for {diff.shape[1]} observation dimensions")
            diff = diff * w
        diff = smooth_time(diff, self.sigma, self.truncate)
        l1 = float(np.abs(diff).sum())
        l2 = float((diff**2).sum())
        return self.w_l1 * l1 + self.w_l2 * l2

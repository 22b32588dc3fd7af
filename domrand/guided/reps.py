"""Relative Entropy Policy Search (REPS) over a Gaussian search distribution, as SimOpt uses it.

Given samples xi_i ~ N(mu, Sigma) and their costs c_i, REPS re-weights the samples with
w_i ∝ exp(-c_i / eta), choosing the temperature eta so that the re-weighted sample distribution
stays within KL <= epsilon of the uniform one (the sample estimate of KL(P_new || P_old)); then it
fits the new Gaussian by weighted maximum likelihood.

The temperature comes from the REPS dual g(eta) = eta * epsilon + eta * log(mean_i exp(-c_i / eta)).
g is convex in eta and its minimizer is where the KL constraint is exactly active (or at the
minimum temperature, when even the greediest weights satisfy it), so we solve
KL(w(eta) || uniform) = epsilon by bisection on log(eta): KL decreases monotonically with eta.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["RepsResult", "reps_dual", "reps_update", "reps_weights"]


@dataclass(frozen=True)
class RepsResult:
    """Outcome of one REPS update."""

    mean: np.ndarray
    cov: np.ndarray
    weights: np.ndarray  #: normalized sample weights
    eta: float  #: temperature chosen
    kl: float  #: KL(weights || uniform), <= epsilon up to the bisection tolerance


def _normalized(costs: np.ndarray) -> np.ndarray:
    """Costs shifted to min 0 and scaled to max 1, so eta_min is meaningful for any cost scale."""
    c = np.asarray(costs, dtype=np.float64)
    if c.ndim != 1 or c.size == 0 or not np.all(np.isfinite(c)):
        raise ValueError("costs must be a non-empty 1-D array of finite numbers")
    span = float(c.max() - c.min())
    return (c - c.min()) / span if span > 0 else np.zeros_like(c)


def _weights(c: np.ndarray, eta: float) -> np.ndarray:
    # Subtracting the minimum (0 after normalization) keeps exp() from underflowing everywhere.
    z = -(c - c.min()) / eta
    w = np.exp(z - z.max())
    return w / w.sum()


def _kl_to_uniform(w: np.ndarray) -> float:
    n = w.size
    nz = w[w > 0]
    return float(np.sum(nz * np.log(nz * n)))


def reps_dual(costs: np.ndarray, eta: float, epsilon: float) -> float:
    """The REPS dual g(eta) on normalized costs (exposed for tests and diagnostics)."""
    c = _normalized(costs)
    z = -c / eta
    m = z.max()
    return float(eta * epsilon + eta * (m + math.log(np.mean(np.exp(z - m)))))


def reps_weights(
    costs: np.ndarray, epsilon: float = 1.0, eta_min: float = 1e-3, iters: int = 100
) -> tuple[np.ndarray, float, float]:
    """Sample weights for ``costs`` under the KL bound ``epsilon``.

    Returns:
        (weights, eta, kl): normalized weights, the temperature (on costs normalized to [0, 1])
        and the achieved KL(weights || uniform).
    """
    if epsilon <= 0:
        raise ValueError(f"epsilon must be positive, got {epsilon}")
    c = _normalized(costs)
    w = _weights(c, eta_min)
    if _kl_to_uniform(w) <= epsilon:  # even the greediest allowed weights satisfy the bound
        return w, eta_min, _kl_to_uniform(w)
    lo, hi = math.log(eta_min), math.log(1e6)
    for _ in range(iters):  # KL(eta) is decreasing: find the smallest eta with KL <= epsilon
        mid = 0.5 * (lo + hi)
        if _kl_to_uniform(_weights(c, math.exp(mid))) > epsilon:
            lo = mid
        else:
            hi = mid
    eta = math.exp(hi)
    w = _weights(c, eta)
    return w, eta, _kl_to_uniform(w)


def reps_update(
    samples: np.ndarray,
    costs: np.ndarray,
    epsilon: float = 1.0,
    eta_min: float = 1e-3,
    min_var: float = 1e-12,
) -> RepsResult:
    """One REPS step: weights from ``costs``, then the weighted ML Gaussian of ``samples``.

    Args:
        samples: ``[N, k]`` parameter vectors drawn from the current Gaussian.
        costs: ``[N]`` costs (lower is better), e.g. SimOpt's trajectory discrepancies.
        epsilon: KL bound between the re-weighted and the original sample distribution.
        eta_min: minimum temperature (on costs normalized to [0, 1]).
        min_var: floor added to the covariance diagonal so it stays positive definite.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != np.asarray(costs).shape[0]:
        raise ValueError("samples must be [N, k] with one cost per sample")
    w, eta, kl = reps_weights(costs, epsilon, eta_min)
    mean = w @ x
    d = x - mean
    # Weighted ML covariance (biased, as in the SimOpt/REPS reference implementations).
    cov = (w[:, None] * d).T @ d
    cov = 0.5 * (cov + cov.T) + min_var * np.eye(x.shape[1])
    return RepsResult(mean, cov, w, eta, kl)

"""Surrogate polish: a quadratic response surface fitted to noisy sim-vs-real costs.

In a contact-rich simulation the cost of a domain is rough: neighbouring parameters replay the
real rollouts with costs that differ by more than the slope of the underlying valley, so a
sampling optimizer (REPS, CMA-ES) that follows the cheapest samples can settle anywhere along a
flat valley (measured on Pusher: puck mass x friction). A least-squares quadratic fitted to many
samples averages that roughness out; its minimizer is the polished estimate.

:func:`fit_quadratic` fits c(z) ~ a + g.z + z.H.z / 2 in whitened coordinates z (the sampling
distribution's), and :func:`trust_step` moves the centre toward the fit's minimum within a trust
region: along the eigen-directions of H with positive curvature by a Newton step, and downhill
along the others (a flat or concave direction has no minimum inside the region).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["QuadraticFit", "fit_quadratic", "n_features", "trust_step"]


def n_features(dim: int) -> int:
    """Coefficients of a full quadratic in ``dim`` variables (constant, linear, upper H)."""
    return 1 + dim + dim * (dim + 1) // 2


def _features(z: np.ndarray) -> np.ndarray:
    d = z.shape[1]
    cols = [np.ones(len(z)), *(z[:, i] for i in range(d))]
    cols += [z[:, i] * z[:, j] for i in range(d) for j in range(i, d)]
    return np.stack(cols, axis=1)


@dataclass(frozen=True)
class QuadraticFit:
    """c(z) ~ const + grad.z + z.hess.z / 2 around z = 0."""

    const: float
    grad: np.ndarray
    hess: np.ndarray
    resid_sd: float  #: standard deviation of the residuals (the roughness the fit averages)
    n: int  #: samples fitted

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(z)
        return self.const + z @ self.grad + 0.5 * np.einsum("ni,ij,nj->n", z, self.hess, z)


def fit_quadratic(z: np.ndarray, costs: np.ndarray) -> QuadraticFit:
    """Least-squares quadratic through (z_i, c_i); non-finite costs are left out.

    Raises:
        ValueError: fewer finite samples than the quadratic has coefficients.
    """
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    c = np.asarray(costs, dtype=np.float64)
    keep = np.isfinite(c)
    z, c = z[keep], c[keep]
    d = z.shape[1]
    if len(c) < n_features(d):
        raise ValueError(
            f"a quadratic in {d} variables needs at least {n_features(d)} finite samples, "
            f"got {len(c)}"
        )
    feats = _features(z)
    beta, *_ = np.linalg.lstsq(feats, c, rcond=None)
    hess = np.zeros((d, d))
    k = 1 + d
    for i in range(d):
        for j in range(i, d):
            if i == j:
                hess[i, i] = 2.0 * beta[k]
            else:
                hess[i, j] = hess[j, i] = beta[k]
            k += 1
    resid = c - feats @ beta
    return QuadraticFit(float(beta[0]), beta[1 : 1 + d].copy(), hess, float(resid.std()), len(c))


def trust_step(fit: QuadraticFit, radius: float) -> np.ndarray:
    """The step from z = 0 toward the fit's minimum, at most ``radius`` long.

    Positive-curvature eigen-directions take the Newton step; flat or concave ones go downhill
    to the region's edge. The step is then scaled back into the region if it is too long.
    """
    w, v = np.linalg.eigh(0.5 * (fit.hess + fit.hess.T))
    g = v.T @ fit.grad
    floor = 1e-9 * max(float(np.abs(w).max()), 1e-12)
    downhill = np.where(g > 0, -radius, radius)  # (a saddle's zero slope: either way is down)
    step = np.where(w > floor, -g / np.where(w > floor, w, 1.0), downhill)
    z = v @ step
    norm = float(np.linalg.norm(z))
    return z * (radius / norm) if norm > radius else z

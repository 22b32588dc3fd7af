"""SimOpt's search distribution phi = N(mu, Sigma) over the tuned knobs, and the steps that move it.

:class:`KnobGaussian` holds what is fixed for a run: the tuned knobs, their box (clipped to the
starting spec's ranges), the moment-matched start, the ``min_std`` floor and the run's seed. The
three ways an iteration moves phi act on SimOpt's checkpointed ``state`` dict and score domains
through a ``cost`` callable (domains, seed key) -> costs, so every draw here is seeded from
(run seed, stream, iteration, ...) and a resumed run draws the same samples:

* :func:`phi_update`: ``samples`` draws, then REPS (:mod:`domrand.guided.reps`) or one CMA-ES
  generation;
* :func:`finish_restart`: score one start's final mean, begin the next start or keep the best;
* :func:`polish_round`: the surrogate polish (:mod:`domrand.guided.polish`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from domrand.errors import DomrandError
from domrand.guided.cma_state import CMA
from domrand.guided.polish import fit_quadratic, trust_step
from domrand.guided.reps import reps_update
from domrand.guided.simopt_settings import SimOptSettings
from domrand.spec import Domain

__all__ = ["CostFn", "KnobGaussian", "finish_restart", "phi_update", "polish_round"]

#: the cost of each domain over every real rollout; the key seeds the replays' jitter
CostFn = Callable[[list[Domain], tuple[int, ...]], np.ndarray]

_SAMPLE_STREAM, _RESTART_STREAM, _POLISH_STREAM = 0x73616D, 0x727374, 0x706F6C
_SELECT = 2**31  # the update index of the restart-selection replays (no update reaches it)
_POLISH = 2**31 + 1  # ... and of the polish rounds' samples


@dataclass(frozen=True)
class KnobGaussian:
    """The fixed frame of phi: knobs, box, moment-matched start, variance floor, seed."""

    knobs: tuple[str, ...]
    integer: np.ndarray  #: which knobs take whole numbers (rounded in :meth:`domains`)
    mean0: np.ndarray
    cov0: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    min_std: float  #: the floor of every knob's std, as a fraction of its starting std
    seed: int

    @property
    def std0(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov0))

    def clip(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.lo, self.hi)

    def floor(self, cov: np.ndarray) -> np.ndarray:
        """Keep every knob's variance above (min_std * its starting std)^2."""
        floor = (self.min_std * self.std0) ** 2
        return cov + np.diag(np.maximum(floor - np.diag(cov), 0.0))

    def domains(self, x: np.ndarray) -> list[Domain]:
        """One domain per row of ``x`` (integer knobs rounded)."""
        values = np.where(self.integer, np.round(x), x)
        return [{k: float(v) for k, v in zip(self.knobs, row)} for row in values]

    def start_mean(self, k: int, r: int) -> np.ndarray:
        """Start ``r`` (>= 1) of iteration k: a draw from the starting spec's moment-matched
        Gaussian, clipped to the box (the run's seed; nothing about the target)."""
        ss = np.random.SeedSequence(self.seed, spawn_key=(_RESTART_STREAM, k, r))
        z = np.random.default_rng(ss).standard_normal(len(self.knobs))
        return self.clip(self.mean0 + np.linalg.cholesky(self.floor(self.cov0)) @ z)

    def polish_frame(self, cov: np.ndarray, width: float) -> np.ndarray:
        """The polish's sampling frame: the Cholesky factor of the (floored) distribution, each
        knob widened ``width`` times -- except a knob REPS has pinned at its ``min_std`` floor,
        which stays at the floor. The floor says the knob is identified more sharply than REPS
        may express, not how uncertain it is; widened, its samples leave the region where the
        cost is quadratic (Pusher's gain: floor 1.2% of its value; at 4x the fit's residual sd
        was 6.0 against 2.2 at 1x, and the polish missed friction by 12% instead of 5%)."""
        cov = self.floor(cov)
        pinned = np.sqrt(np.diag(cov)) <= self.min_std * self.std0 * (1.0 + 1e-6)
        widths = np.where(pinned, 1.0, width)
        return widths[:, None] * np.linalg.cholesky(cov)


def phi_update(
    phi: KnobGaussian, s: SimOptSettings, state: dict[str, Any], k: int, u: int, cost: CostFn
) -> dict[str, Any]:
    """Update u of iteration k: move ``state``'s mean/cov from ``s.samples`` simulated domains;
    returns the update's statistics."""
    span = phi.hi - phi.lo
    mean, cov = np.array(state["mean"]), np.array(state["cov"])
    r = int(state.get("restart", 0))
    if s.backend == "cmaes":
        if state["cma"] is None:
            x0 = (mean - phi.lo) / span
            sigma0 = float(np.mean(np.sqrt(np.diag(cov)) / span))
            es = CMA(x0, sigma0, seed=phi.seed, popsize=s.samples)
        else:
            es = CMA.from_state(state["cma"])
        x = phi.lo + span * es.ask()
    else:
        key = (_SAMPLE_STREAM, k, u) if r == 0 else (_SAMPLE_STREAM, k, u, r)  # start 0 keeps
        ss = np.random.SeedSequence(phi.seed, spawn_key=key)  # the single-start stream
        z = np.random.default_rng(ss).standard_normal((s.samples, len(phi.knobs)))
        chol = np.linalg.cholesky(phi.floor(cov))
        x = phi.clip(mean + z @ chol.T)  # what is simulated is what is fit
    costs = cost(phi.domains(x), (k, u, r))
    finite = np.isfinite(costs)
    if not finite.any():
        raise DomrandError("every simulated replay broke the simulator (physics faults)")
    worst = float(costs[finite].max())
    costs = np.where(finite, costs, worst + abs(worst) + 1.0)  # above every finite cost
    stats: dict[str, Any] = {
        "cost_min": float(costs.min()),
        "cost_median": float(np.median(costs)),
        "faults": int((~finite).sum()),
    }
    if s.backend == "cmaes":
        es.tell((x - phi.lo) / span, costs.tolist())
        new_mean, new_cov = phi.lo + span * es.mean, es.cov * np.outer(span, span)
        state["cma"] = es.state_dict()
    else:
        # REPS: weights exp(-c / eta) with eta from the dual (KL <= epsilon), then the
        # weighted maximum-likelihood Gaussian of the samples.
        fit = reps_update(x, costs, s.epsilon, s.eta_min)
        new_mean, new_cov = fit.mean, fit.cov
        stats.update(eta=fit.eta, kl=fit.kl)
    state["mean"] = phi.clip(new_mean).tolist()
    state["cov"] = phi.floor(0.5 * (new_cov + new_cov.T)).tolist()
    return stats


def finish_restart(
    phi: KnobGaussian, s: SimOptSettings, state: dict[str, Any], k: int, cost: CostFn
) -> None:
    """Score the finished start's mean on every real rollout; begin the next start, or, after
    the last, keep the one with the lowest cost (only sim-vs-real costs decide)."""
    r = state["restart"]
    mean = phi.clip(np.array(state["mean"]))
    replays = phi.domains(np.repeat(mean[None], s.select_replays, axis=0))
    score = float(np.mean(cost(replays, (k, _SELECT, r))))
    if not math.isfinite(score):
        score = math.inf
    state["finished"].append({"mean": state["mean"], "cov": state["cov"], "cost": score})
    state["restart"] = r + 1
    if r + 1 < s.restarts:
        state.update(mean=phi.start_mean(k, r + 1).tolist(), cov=state["start"]["cov"])
        state["update"] = 0
        return
    costs = [f["cost"] for f in state["finished"]]
    best = int(np.argmin(costs))
    state.update(mean=state["finished"][best]["mean"], cov=state["finished"][best]["cov"])
    state["last_update"] = {
        **state["last_update"],
        "restart_costs": costs,
        "restart_means": [f["mean"] for f in state["finished"]],
        "restart_chosen": best,
    }


def polish_round(
    phi: KnobGaussian, s: SimOptSettings, state: dict[str, Any], k: int, cost: CostFn
) -> None:
    """One surrogate-polish round: score ``s.polish_samples`` domains around the current centre,
    fit a quadratic to every round's samples so far (in the whitened frame of the distribution
    the polish started from, :meth:`KnobGaussian.polish_frame`) and move the centre, and the
    mean, toward its minimum."""
    r = int(state.get("polish_round", 0))
    p = state.get("polish")
    if p is None:
        chol = phi.polish_frame(np.array(state["cov"]), s.polish_width)
        p = {"origin": state["mean"], "chol": chol.tolist(), "center": [0.0] * len(chol),
             "z": [], "costs": []}  # fmt: skip
    origin, chol = np.array(p["origin"]), np.array(p["chol"])
    center = np.array(p["center"])
    ss = np.random.SeedSequence(phi.seed, spawn_key=(_POLISH_STREAM, k, r))
    z = center + np.random.default_rng(ss).standard_normal((s.polish_samples, len(center)))
    x = phi.clip(origin + z @ chol.T)
    z = np.linalg.solve(chol, (x - origin).T).T  # where the clipped samples really are
    costs = cost(phi.domains(x), (k, _POLISH, r))
    p["z"] += z.tolist()
    p["costs"] += [c if math.isfinite(c) else None for c in costs.tolist()]
    pooled = np.array([math.inf if c is None else c for c in p["costs"]])
    try:
        fit = fit_quadratic(np.array(p["z"]) - center, pooled)
    except ValueError as exc:
        raise DomrandError(f"SimOpt polish: {exc} (physics faults)") from exc
    center = center + trust_step(fit, 1.0)
    p["center"] = center.tolist()
    state["polish"] = p
    state["mean"] = phi.clip(origin + chol @ center).tolist()
    state["polish_round"] = r + 1
    state["last_update"] = {
        **state["last_update"],
        "polish_rounds": r + 1,
        "polish_residual_sd": fit.resid_sd,
        "polish_curvature": np.linalg.eigvalsh(fit.hess).tolist(),
        "polish_faults": int((~np.isfinite(costs)).sum()),
    }

"""Run a policy on many exact domains at once: one vector env, one batched policy step per step.

Robustness reports evaluate hundreds of domains (a sweep grid, a Sobol design), one or a few
episodes each. :func:`evaluate_domains` queues every (domain, episode) job, hands the next job to
whichever env finishes an episode, and pins the job's domain through the wrapper's
``assigned_domain`` hook. Every episode resets with a seed derived from ``(seed, domain index,
episode index)`` alone, so an episode's outcome does not depend on which env ran it or in what
order: the same call gives the same numbers, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from domrand.errors import DomrandError
from domrand.policies.rollout import env_info

__all__ = ["DomainReturns", "episode_seed", "evaluate_domains"]


@dataclass(frozen=True)
class DomainReturns:
    """Per-domain episode outcomes, arrays of shape ``(domains, episodes)``.

    A physics fault (``info["physics_fault"]``) ends an episode early; its partial return is kept
    in ``returns`` and flagged in ``faults`` so callers can exclude or count it.
    """

    returns: np.ndarray
    faults: np.ndarray
    successes: np.ndarray
    env_steps: int

    def mean(self, exclude_faults: bool = True) -> np.ndarray:
        """Mean return per domain (NaN where every episode faulted and faults are excluded)."""
        r = np.where(self.faults, np.nan, self.returns) if exclude_faults else self.returns
        with np.errstate(invalid="ignore"):
            counts = np.sum(~np.isnan(r), axis=1)
            return np.where(counts > 0, np.nansum(r, axis=1) / np.maximum(counts, 1), np.nan)

    def std(self, exclude_faults: bool = True) -> np.ndarray:
        """Standard deviation of the returns per domain (population std, like ``eval``)."""
        r = np.where(self.faults, np.nan, self.returns) if exclude_faults else self.returns
        out = np.full(r.shape[0], np.nan)
        for i, row in enumerate(r):
            row = row[~np.isnan(row)]
            if row.size:
                out[i] = float(np.std(row))
        return out


def episode_seed(seed: int, domain_index: int, episode: int) -> int:
    """The reset seed of one evaluation episode: a pure function of the three numbers."""
    ss = np.random.SeedSequence([seed, domain_index, episode])
    return int(ss.generate_state(1, np.uint32)[0])


@torch.no_grad()
def evaluate_domains(
    policy: Any,
    env_id: str,
    domains: Sequence[Mapping[str, float]],
    *,
    spec: Any = None,
    episodes: int = 1,
    seed: int = 0,
    max_envs: int = 16,
    deterministic: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> DomainReturns:
    """Run ``episodes`` episodes of ``policy`` on each domain of ``domains``.

    Args:
        policy: an ``ActorCritic`` (eval mode).
        env_id: the env the policy was trained on.
        domains: exact knob values per job; knobs a domain leaves out come from ``spec`` (or
            stay nominal when ``spec`` is None).
        spec: the distribution of the other knobs (sampled per episode from the episode's seed).
        episodes: episodes per domain.
        seed: root of the per-episode seeds (:func:`episode_seed`).
        max_envs: envs stepped in lockstep.
        deterministic: clipped mean actions (the default), or sampled ones.
        progress: called as ``progress(done, total)`` after each finished episode.

    Raises:
        DomrandError: no domains, ``episodes`` < 1; KnobError: a value outside a knob's range.
    """
    from domrand.registry import make_vec

    if not domains:
        raise DomrandError("no domains to evaluate")
    if episodes < 1:
        raise DomrandError(f"episodes must be at least 1, got {episodes}")
    jobs = [(j, e) for j in range(len(domains)) for e in range(episodes)]
    n = max(1, min(len(jobs), max_envs))
    shape = (len(domains), episodes)
    returns = np.zeros(shape)
    faults = np.zeros(shape, dtype=bool)
    successes = np.zeros(shape, dtype=bool)
    disabled = gym.vector.AutoresetMode.DISABLED
    envs = make_vec(env_id, n, spec=spec, seed=seed, autoreset_mode=disabled)
    # Batch-16 matmuls take microseconds: more threads only add sync cost, and spin-waiting
    # threads slow everything down badly when another process holds a core.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(seed)
    running: list[tuple[int, int] | None] = [None] * n  # the job each env runs (None: idle)
    assigned: list[dict[str, float] | None] = [None] * n
    next_job, finished, steps = 0, 0, 0
    policy_obs: torch.Tensor

    def start(mask: np.ndarray) -> np.ndarray:
        """Give the next jobs to the envs in ``mask`` and reset them; return the observations."""
        nonlocal next_job
        seeds: list[int | None] = [None] * n
        for i in np.flatnonzero(mask).tolist():
            if next_job < len(jobs):
                j, e = jobs[next_job]
                next_job += 1
                running[i] = (j, e)
                assigned[i] = dict(domains[j])
                seeds[i] = episode_seed(seed, j, e)
            else:  # nothing left: the env idles on a repeat of its last job, results unused
                running[i] = None
        envs.set_attr("assigned_domain", list(assigned))
        obs, _ = envs.reset(seed=seeds, options={"reset_mask": mask})
        return obs

    try:
        obs_np = start(np.ones(n, dtype=bool))
        policy_obs = torch.tensor(obs_np, dtype=torch.float32)
        prev_a = torch.zeros(n, policy.config.act_dim)
        prev_r = torch.zeros(n)
        starts = torch.ones(n, dtype=torch.bool)
        state = policy.initial_state(n)
        ep_ret = np.zeros(n)
        while finished < len(jobs):
            mean, _, state = policy.step(policy_obs, prev_a, prev_r, state, starts)
            if deterministic:
                action = policy.deterministic_action(mean)
            else:
                action = policy.clip_action(policy.sample(mean, generator)[0])
            obs_np, reward, term, trunc, infos = envs.step(action.numpy())
            steps += sum(r is not None for r in running)
            ep_ret += reward
            ended = np.logical_or(term, trunc)
            for i in np.flatnonzero(ended).tolist():
                job = running[i]
                if job is not None:
                    info = env_info(infos, i)
                    returns[job] = ep_ret[i]
                    faults[job] = bool(info.get("physics_fault", False))
                    ok = info.get("is_success", bool(trunc[i]) and not bool(term[i]))
                    successes[job] = bool(ok) and not faults[job]
                    finished += 1
                    if progress is not None:
                        progress(finished, len(jobs))
                ep_ret[i] = 0.0
            if ended.any() and finished < len(jobs):
                obs_np = start(ended)
            policy_obs = torch.tensor(obs_np, dtype=torch.float32)
            prev_a = action
            prev_r = torch.as_tensor(reward, dtype=torch.float32)
            starts = torch.from_numpy(ended)
    finally:
        envs.close()
        torch.set_num_threads(threads)
    return DomainReturns(returns, faults, successes, steps)

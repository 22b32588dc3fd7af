"""A guide's own rollouts of the policy being trained, in domains the guide chooses.

Active DR needs the agent's transitions ``(s, a, s')`` in each proposed domain and in the
reference domain; the trainer's episodes only report returns to a guide. :class:`PolicyRunner`
keeps a small pool of envs and runs the trainer's policy (deterministic, batched across the pool,
recurrent state and RL^2 inputs carried like the trainer does) in a list of domains.

The domains are cut into chunks of ``num_envs`` (a short last chunk padded), whatever the backend;
each chunk runs on one backend worker, which keeps its pool of envs across rounds
(:func:`domrand.backends.run_chunks`), so the trajectories are the same on every backend and for
any number of workers, and a chunk whose worker dies is re-run exactly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from domrand.backends import Backend, BackendConfig, WorkerHost, open_backend, run_chunks
from domrand.guided._threads import one_torch_thread
from domrand.spec import Domain, RandomizationSpec

__all__ = ["PolicyRunner", "Trajectory"]


@dataclass(frozen=True)
class Trajectory:
    """One (possibly cut) episode: ``obs`` ``[T + 1, obs_dim]``, ``actions`` ``[T, act_dim]``."""

    obs: np.ndarray
    actions: np.ndarray
    ret: float

    @property
    def steps(self) -> int:
        return int(self.actions.shape[0])


class PolicyRunner:
    """A pool of ``num_envs`` envs per backend worker (created on first use) for a guide's own
    rollouts.

    Args:
        env_id: the env.
        spec: the spec the pool samples the knobs a domain leaves open from (``None``: nominal).
        num_envs: pool size; domains run in chunks of this many.
        backend: where the chunks run (default ``local``: in this process).
    """

    def __init__(
        self,
        env_id: str,
        spec: RandomizationSpec | None,
        num_envs: int,
        backend: BackendConfig | None = None,
    ) -> None:
        self.env_id, self.spec, self.num_envs = env_id, spec, num_envs
        self.backend_config = backend or BackendConfig("local")
        self._backend: Backend | None = None
        self._key = f"runner-{uuid.uuid4().hex}"
        self.env_steps = 0  #: env steps this runner has simulated (the guide's own budget)

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    @torch.no_grad()
    def run(
        self,
        policy: Any,
        domains: list[Domain | None],
        seeds: list[int],
        max_steps: int,
    ) -> list[Trajectory]:
        """One episode (cut after ``max_steps``) per domain, with the deterministic policy.

        Args:
            policy: an ``ActorCritic`` (its train/eval mode is restored afterwards).
            domains: exact domains (``None``: sample from the pool's spec).
            seeds: one reset seed per domain (same seed -> same start state, e.g. to pair a
                randomized episode with its reference episode).
            max_steps: episode cap (an episode that ends earlier stops there).
        """
        if self._backend is None:
            self._backend = open_backend(self.backend_config)
        n = self.num_envs
        was_training = policy.training
        policy.eval()
        chunks = []
        for start in range(0, len(domains), n):
            batch = list(domains[start : start + n])
            batch_seeds = list(seeds[start : start + n])
            used = len(batch)
            # Pad a short last batch with copies of its first entry (results dropped).
            batch += [batch[0]] * (n - used)
            batch_seeds += [batch_seeds[0]] * (n - used)
            chunks.append((batch, batch_seeds, used))
        try:
            results = run_chunks(
                self._backend,
                _run_chunk,
                chunks,
                self._key,
                self.env_id,
                self.spec,
                n,
                max_steps,
                broadcast=policy,  # once per worker, not per chunk
            )
        finally:
            policy.train(was_training)
        out: list[Trajectory] = []
        for trajs, steps in results:
            out += trajs
            self.env_steps += steps
        return out


def _run_chunk(
    host: WorkerHost,
    policy: Any,
    key: str,
    env_id: str,
    spec: RandomizationSpec | None,
    num_envs: int,
    max_steps: int,
    chunk: tuple[list[Domain | None], list[int], int],
) -> tuple[list[Trajectory], int]:
    """On a worker: run one chunk in the worker's pool (built on first use, then kept)."""
    envs = host.resources.get(key)
    if envs is None:
        from domrand.registry import make_vec

        disabled = gym.vector.AutoresetMode.DISABLED
        envs = make_vec(env_id, num_envs, spec=spec, seed=0, autoreset_mode=disabled)
        host.resources[key] = envs
    domains, seeds, used = chunk
    policy.eval()
    with one_torch_thread(), torch.no_grad():  # acting is batch-n matmuls, as in the trainer
        trajs, steps = _run_batch(policy, envs, domains, seeds, max_steps)
    return trajs[:used], steps


def _run_batch(
    policy: Any,
    envs: gym.vector.VectorEnv,
    domains: list[Domain | None],
    seeds: list[int],
    max_steps: int,
) -> tuple[list[Trajectory], int]:
    n = envs.num_envs
    steps = 0
    envs.set_attr("assigned_domain", domains)
    obs_np, _ = envs.reset(seed=seeds)
    obs = torch.tensor(obs_np, dtype=torch.float32)
    prev_a = torch.zeros(n, policy.config.act_dim)
    prev_r = torch.zeros(n)
    starts = torch.ones(n, dtype=torch.bool)
    state = policy.initial_state(n)
    observations = [[o] for o in obs_np]
    actions: list[list[np.ndarray]] = [[] for _ in range(n)]
    returns = np.zeros(n)
    active = np.ones(n, dtype=bool)
    for _ in range(max_steps):
        mean, _, state = policy.step(obs, prev_a, prev_r, state, starts)
        action = policy.deterministic_action(mean)
        obs_np, reward, term, trunc, _ = envs.step(action.numpy())
        steps += n
        for i in np.flatnonzero(active):
            actions[i].append(action[i].numpy())
            observations[i].append(obs_np[i])
            returns[i] += reward[i]
        ended = np.logical_or(term, trunc)
        active &= ~ended
        if not active.any():
            break
        if ended.any():  # keep finished envs valid to step; their data is no longer used
            obs_np, _ = envs.reset(options={"reset_mask": ended})
        obs = torch.tensor(obs_np, dtype=torch.float32)
        prev_a, prev_r = action, torch.as_tensor(reward, dtype=torch.float32)
        starts = torch.from_numpy(ended)
    envs.set_attr("assigned_domain", [None] * n)
    trajs = [
        Trajectory(np.asarray(observations[i]), np.asarray(actions[i]), float(returns[i]))
        for i in range(n)
    ]
    return trajs, steps

"""A guide's own rollouts of the policy being trained, in domains the guide chooses.

Active DR needs the agent's transitions ``(s, a, s')`` in each proposed domain and in the
reference domain; the trainer's episodes only report returns to a guide. :class:`PolicyRunner`
keeps a small pool of in-process envs and runs the trainer's policy (deterministic, batched across
the pool, recurrent state and RL^2 inputs carried like the trainer does) in a list of domains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

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
    """A pool of ``num_envs`` envs (created on first use) for a guide's own rollouts.

    Args:
        env_id: the env.
        spec: the spec the pool samples the knobs a domain leaves open from (``None``: nominal).
        num_envs: pool size; domains run in batches of this many.
    """

    def __init__(self, env_id: str, spec: RandomizationSpec | None, num_envs: int) -> None:
        self.env_id, self.spec, self.num_envs = env_id, spec, num_envs
        self._envs: gym.vector.VectorEnv | None = None
        self.env_steps = 0  #: env steps this runner has simulated (the guide's own budget)

    def _pool(self) -> gym.vector.VectorEnv:
        if self._envs is None:
            from domrand.registry import make_vec

            disabled = gym.vector.AutoresetMode.DISABLED
            self._envs = make_vec(
                self.env_id, self.num_envs, spec=self.spec, seed=0, autoreset_mode=disabled
            )
        return self._envs

    def close(self) -> None:
        if self._envs is not None:
            self._envs.close()
            self._envs = None

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
        envs, n = self._pool(), self.num_envs
        was_training = policy.training
        policy.eval()
        out: list[Trajectory] = []
        try:
            with one_torch_thread():  # acting is batch-n matmuls, as in the trainer
                for start in range(0, len(domains), n):
                    batch = list(domains[start : start + n])
                    batch_seeds = list(seeds[start : start + n])
                    used = len(batch)
                    # Pad a short last batch with copies of its first entry (results dropped).
                    batch += [batch[0]] * (n - used)
                    batch_seeds += [batch_seeds[0]] * (n - used)
                    out += self._run_batch(policy, envs, batch, batch_seeds, max_steps)[:used]
        finally:
            policy.train(was_training)
        return out

    def _run_batch(
        self,
        policy: Any,
        envs: gym.vector.VectorEnv,
        domains: list[Domain | None],
        seeds: list[int],
        max_steps: int,
    ) -> list[Trajectory]:
        n = envs.num_envs
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
            self.env_steps += n
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
        return [
            Trajectory(np.asarray(observations[i]), np.asarray(actions[i]), float(returns[i]))
            for i in range(n)
        ]

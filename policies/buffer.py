"""Rollout storage, GAE with truncation bootstrapping, and sequence minibatches.

Everything is ``[T, N, ...]``: T steps of N envs. For recurrent PPO the update must replay the
LSTM exactly as it ran when acting, so the buffer keeps, for every step, the recurrent state the
actor carried *into* that step and whether an episode started there. Minibatches are made of
whole sequences (``seq_len`` consecutive steps of one env) that start from those stored states.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch

from domrand.policies.networks import LSTMState

__all__ = [
    "RewardScaler",
    "Rollout",
    "Sequences",
    "compute_gae",
    "make_sequences",
    "masked_mean",
]


class Rollout:
    """Preallocated storage for one rollout of ``T`` steps of ``N`` envs.

    Per step t: ``obs``, ``prev_action``/``prev_reward`` (the RL^2 inputs), ``starts`` (an episode
    starts at t: the state and RL^2 inputs are reset there), ``h``/``c`` (the LSTM state carried
    into t, before that reset), the sampled unclipped ``actions`` with their ``logprobs``, the
    critic's ``values``, ``rewards``, ``ended`` (the episode ended at t: terminated or truncated)
    and ``final_values`` (V of the final observation where it was truncated, else 0); with a
    privileged critic, ``priv`` (the episode's domain features, ``priv_dim`` wide).
    """

    def __init__(
        self, T: int, N: int, obs_dim: int, act_dim: int, hidden: int, priv_dim: int = 0
    ) -> None:
        self.T, self.N = T, N
        z = torch.zeros
        self.obs = z(T, N, obs_dim)
        self.prev_action = z(T, N, act_dim)
        self.prev_reward = z(T, N)
        self.starts = torch.zeros(T, N, dtype=torch.bool)
        self.h = z(T, N, hidden)
        self.c = z(T, N, hidden)
        self.actions = z(T, N, act_dim)
        self.logprobs = z(T, N)
        self.values = z(T, N)
        self.rewards = z(T, N)
        self.ended = torch.zeros(T, N, dtype=torch.bool)
        self.final_values = z(T, N)
        self.priv = z(T, N, priv_dim)
        self.last_values = z(N)  #: V of the observation after the last step (bootstrap)


class RewardScaler:
    """Divides rewards by the running std of the discounted return (as SB3's VecNormalize does).

    The critic then learns values of order one whatever the reward scale: with a shared LSTM
    trunk, a value loss in the hundreds would otherwise swamp the policy gradient once clipped
    to ``max_grad_norm``. Only GAE sees scaled rewards; the env, the metrics and the RL^2 input
    keep the raw ones.
    """

    def __init__(self, num_envs: int, gamma: float) -> None:
        self.gamma = gamma
        self.ret = torch.zeros(num_envs, dtype=torch.float64)  #: running discounted return
        self.count = 1e-4
        self.mean = 0.0
        self.var = 1.0

    def update(self, rewards: torch.Tensor, ended: torch.Tensor) -> None:
        """Fold a rollout ``[T, N]`` into the return statistics."""
        rets = torch.empty_like(rewards, dtype=torch.float64)
        for t in range(rewards.shape[0]):
            self.ret = self.ret * self.gamma + rewards[t].to(torch.float64)
            rets[t] = self.ret
            self.ret = torch.where(ended[t], torch.zeros_like(self.ret), self.ret)
        n = rets.numel()
        b_mean, b_var = float(rets.mean()), float(rets.var(unbiased=False))
        total = self.count + n
        delta = b_mean - self.mean
        self.mean += delta * n / total
        self.var = (self.var * self.count + b_var * n + delta**2 * self.count * n / total) / total
        self.count = total

    @property
    def scale(self) -> float:
        return math.sqrt(self.var + 1e-8)

    def state_dict(self) -> dict[str, Any]:
        return {"ret": self.ret.clone(), "count": self.count, "mean": self.mean, "var": self.var}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ret = state["ret"].clone()
        self.count, self.mean, self.var = state["count"], state["mean"], state["var"]


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    ended: torch.Tensor,
    final_values: torch.Tensor,
    last_values: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over ``[T, N]``; returns ``(advantages, returns)``.

    Where an episode ended at step t, the value of what follows is not ``values[t + 1]`` (that is
    the next episode's first state): it is ``final_values[t]``, which is 0 for a true terminal
    state and ``V(final observation)`` for a time-limit truncation (the episode did not end, the
    clock did, so we bootstrap). Either way the lambda-chain stops at t. At the end of the rollout
    an episode still running is bootstrapped with ``last_values``.
    """
    T = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    next_adv = torch.zeros_like(last_values)
    next_values = last_values
    for t in reversed(range(T)):
        cont = (~ended[t]).to(rewards.dtype)
        bootstrap = torch.where(ended[t], final_values[t], next_values)
        delta = rewards[t] + gamma * bootstrap - values[t]
        next_adv = delta + gamma * lam * cont * next_adv
        advantages[t] = next_adv
        next_values = values[t]
    return advantages, advantages + values


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is true (padding contributes nothing).

    ``torch.where`` rather than a product, so even a NaN in a padded slot cannot leak in.
    """
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype)).sum() / mask.sum().clamp_min(1)


class Sequences(NamedTuple):
    """Training sequences ``[L, K, ...]``: K chunks of L consecutive steps of one env each.

    ``state0`` is the stored LSTM state at each chunk's first step, ``mask`` marks real steps
    (False = padding after the rollout's end when ``T`` is not a multiple of ``L``).
    """

    obs: torch.Tensor
    prev_action: torch.Tensor
    prev_reward: torch.Tensor
    starts: torch.Tensor
    state0: LSTMState
    actions: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    mask: torch.Tensor
    priv: torch.Tensor  #: a privileged critic's domain features (width 0 without one)

    @property
    def num_chunks(self) -> int:
        return self.obs.shape[1]

    def select(self, idx: torch.Tensor) -> Sequences:
        """The chunks ``idx`` (along K)."""
        h, c = self.state0
        state = LSTMState(h[:, idx], c[:, idx])
        parts = [state if i == 4 else t[:, idx] for i, t in enumerate(self)]
        return Sequences(*parts)

    def minibatches(self, chunks_per_batch: int, generator: torch.Generator) -> Iterator[Sequences]:
        """Shuffle the chunks and yield minibatches of ``chunks_per_batch`` whole sequences."""
        order = torch.randperm(self.num_chunks, generator=generator)
        for i in range(0, self.num_chunks, chunks_per_batch):
            yield self.select(order[i : i + chunks_per_batch])


def _chunk(x: torch.Tensor, L: int, pad_value: float | bool = 0) -> torch.Tensor:
    """``[T, N, ...]`` -> ``[L, K, ...]`` with K = ceil(T / L) * N; chunk k = (k // N, k % N)."""
    T, N = x.shape[:2]
    C = -(-T // L)
    if C * L != T:
        pad = x.new_full((C * L - T, *x.shape[1:]), pad_value)
        x = torch.cat([x, pad])
    x = x.reshape(C, L, N, *x.shape[2:]).transpose(0, 1)  # [L, C, N, ...]
    return x.reshape(L, C * N, *x.shape[3:])


def make_sequences(
    rollout: Rollout, advantages: torch.Tensor, returns: torch.Tensor, seq_len: int
) -> Sequences:
    """Cut the rollout into sequences of ``seq_len`` steps per env, each starting from the LSTM
    state the actor actually had at its first step (``rollout.h/c`` there)."""
    L = min(seq_len, rollout.T)
    # The state carried into each chunk's first step: rows 0, L, 2L, ... of the stored states.
    K = -(-rollout.T // L) * rollout.N  # chunk k = (k // N, k % N)
    h0 = rollout.h[::L].reshape(1, K, rollout.h.shape[-1])
    c0 = rollout.c[::L].reshape(1, K, rollout.c.shape[-1])
    mask = torch.ones(rollout.T, rollout.N, dtype=torch.bool)
    return Sequences(
        obs=_chunk(rollout.obs, L),
        prev_action=_chunk(rollout.prev_action, L),
        prev_reward=_chunk(rollout.prev_reward, L),
        starts=_chunk(rollout.starts, L, False),
        state0=LSTMState(h0, c0),
        actions=_chunk(rollout.actions, L),
        logprobs=_chunk(rollout.logprobs, L),
        values=_chunk(rollout.values, L),
        advantages=_chunk(advantages, L),
        returns=_chunk(returns, L),
        mask=_chunk(mask, L, False),
        priv=_chunk(rollout.priv, L),
    )

"""Evaluate a policy: episodes on a spec, a pinned domain or a shipped reality; return statistics.

Evaluation is deterministic by default (the clipped mean action) and batched: ``min(episodes, 8)``
envs step in lockstep, each running its fixed share of the episodes, so short episodes are not
over-represented. Episodes the simulator broke (``info["physics_fault"]``) are counted apart and
kept out of the return statistics.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from domrand.errors import DomrandError
from domrand.policies.networks import ActorCritic
from domrand.policies.rollout import env_info

__all__ = ["Condition", "EvalResult", "evaluate", "evaluate_conditions", "standard_conditions"]


@dataclass(frozen=True)
class EvalResult:
    """Returns of the evaluation episodes of one condition."""

    label: str
    returns: list[float]
    lengths: list[int]
    successes: list[bool]
    faults: int = 0

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns)) if self.returns else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.returns)) if self.returns else math.nan

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.successes)) if self.successes else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "condition": self.label,
            "mean": self.mean,
            "std": self.std,
            "success_rate": self.success_rate,
            "episodes": len(self.returns),
            "faults": self.faults,
            "returns": self.returns,
        }


@dataclass(frozen=True)
class Condition:
    """What to evaluate on: a spec to sample from, and/or a domain (dict or file) to pin."""

    label: str
    spec: Any = None
    domain: Mapping[str, Any] | str | os.PathLike[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def standard_conditions(env_id: str, spec: Any = None) -> list[Condition]:
    """Nominal, the training spec (when given), then every shipped reality of ``env_id``."""
    from domrand.registry import realities

    out = [Condition("nominal")]
    if spec is not None:
        out.append(Condition("training spec (DR)", spec=spec))
    out += [Condition(f"reality: {name}", domain=path) for name, path in realities(env_id).items()]
    return out


@torch.no_grad()
def evaluate(
    policy: ActorCritic,
    env_id: str,
    *,
    spec: Any = None,
    domain: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    episodes: int = 10,
    seed: int = 0,
    deterministic: bool = True,
    label: str = "",
    max_envs: int = 8,
) -> EvalResult:
    """Run ``episodes`` episodes of ``policy`` on ``env_id`` and collect their returns.

    Raises:
        DomrandError: ``episodes`` < 1; SpecError: the spec or domain does not fit the env.
    """
    from domrand.registry import make_vec

    if episodes < 1:
        raise DomrandError(f"episodes must be at least 1, got {episodes}")
    if isinstance(domain, Path):
        domain = str(domain)
    n = min(episodes, max_envs)
    quota = [episodes // n + (1 if i < episodes % n else 0) for i in range(n)]
    disabled = gym.vector.AutoresetMode.DISABLED
    envs = make_vec(env_id, n, spec=spec, seed=seed, domain=domain, autoreset_mode=disabled)
    generator = torch.Generator().manual_seed(seed)
    returns: list[float] = []
    lengths: list[int] = []
    successes: list[bool] = []
    faults = 0
    try:
        obs_np, _ = envs.reset()
        obs = torch.tensor(obs_np, dtype=torch.float32)
        prev_a = torch.zeros(n, policy.config.act_dim)
        prev_r = torch.zeros(n)
        starts = torch.ones(n, dtype=torch.bool)
        state = policy.initial_state(n)
        done_count = [0] * n
        ep_ret, ep_len = np.zeros(n), np.zeros(n, dtype=np.int64)
        while any(d < q for d, q in zip(done_count, quota)):
            mean, _, state = policy.step(obs, prev_a, prev_r, state, starts)
            if deterministic:
                action = policy.deterministic_action(mean)
            else:
                action = policy.clip_action(policy.sample(mean, generator)[0])
            obs_np, reward, term, trunc, infos = envs.step(action.numpy())
            ep_ret += reward
            ep_len += 1
            ended = np.logical_or(term, trunc)
            for i in np.flatnonzero(ended).tolist():
                if done_count[i] < quota[i]:
                    info = env_info(infos, i)
                    if info.get("physics_fault", False):
                        faults += 1
                    else:
                        returns.append(float(ep_ret[i]))
                        lengths.append(int(ep_len[i]))
                        ok = info.get("is_success", bool(trunc[i]) and not bool(term[i]))
                        successes.append(bool(ok))
                    done_count[i] += 1
                ep_ret[i], ep_len[i] = 0.0, 0
            if ended.any():
                obs_np, _ = envs.reset(options={"reset_mask": ended})
            obs = torch.tensor(obs_np, dtype=torch.float32)
            prev_a = action
            prev_r = torch.as_tensor(reward, dtype=torch.float32)
            starts = torch.from_numpy(ended)
    finally:
        envs.close()
    return EvalResult(label, returns, lengths, successes, faults)


def evaluate_conditions(
    policy: ActorCritic,
    env_id: str,
    conditions: list[Condition],
    *,
    episodes: int = 10,
    seed: int = 0,
    deterministic: bool = True,
) -> list[EvalResult]:
    """:func:`evaluate` on each condition, in order."""
    out = []
    for c in conditions:
        out.append(
            evaluate(
                policy,
                env_id,
                spec=c.spec,
                domain=c.domain,
                episodes=episodes,
                seed=seed,
                deterministic=deterministic,
                label=c.label,
            )
        )
    return out

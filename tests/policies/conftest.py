"""Shared helpers for policy tests: a seeded CartPole-shaped policy and a stand-in run info."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch

from domrand.policies.config import TrainConfig
from domrand.policies.networks import ActorCritic, NetConfig, build_policy

CARTPOLE = "domrand/CartPole-v0"


def make_tiny_config(total_steps: int = 256, **overrides: Any) -> TrainConfig:
    """A CartPole training run of a few hundred steps that checkpoints every 128 (crash tests)."""
    base: dict[str, Any] = dict(env=CARTPOLE, total_steps=total_steps, num_envs=2, num_steps=64,
                                hidden=8, epochs=1, batch_size=64, seq_len=16,
                                checkpoint_every=128)  # fmt: skip
    return TrainConfig(**{**base, **overrides})


@dataclass(frozen=True)
class StandInInfo:
    """The fields of ``checkpoint.RunInfo`` the exporter reads (tests build policies directly)."""

    env_id: str
    net_config: NetConfig
    spec: dict[str, Any] | None = None
    control_period: float = 0.02
    obs_low: list[float] = field(default_factory=lambda: [-math.inf] * 4)
    obs_high: list[float] = field(default_factory=lambda: [math.inf] * 4)
    act_low: list[float] = field(default_factory=lambda: [-1.0])
    act_high: list[float] = field(default_factory=lambda: [1.0])
    env_steps: int = 12_345
    seed: int = 7
    domrand_version: str = "0.1.0"


def make_policy(
    kind: str = "lstm", rl2: bool = False, hidden: int = 64, obs_dim: int = 4, seed: int = 0
) -> tuple[ActorCritic, StandInInfo]:
    """A policy with non-trivial weights and normalization, and its run info.

    The actor head is re-initialized with a large gain (instead of 0.01) so actions are O(1) and
    some reach the bounds, yet CartPole episodes last a few dozen steps; the normalization
    statistics come from a random batch of about CartPole's scale.
    """
    cfg = NetConfig(obs_dim, 1, kind=kind, rl2=rl2, hidden=hidden, act_low=(-1.0,), act_high=(1.0,))
    gen = torch.Generator().manual_seed(seed)
    policy = build_policy(cfg, gen)
    with torch.no_grad():
        gain = 7.0 if kind == "lstm" else 3.0  # LSTM outputs are smaller than tanh layers
        policy.actor.weight.normal_(0.0, gain / math.sqrt(hidden), generator=gen)
        policy.actor.bias.fill_(0.1)
        scale = torch.linspace(0.02, 0.3, obs_dim, dtype=torch.float64)  # ~CartPole obs
        policy.obs_norm.update(
            scale * torch.randn(500, obs_dim, generator=gen, dtype=torch.float64) + scale / 3
        )
    # a spec-shaped dict (the metadata only stores it); -inf checks the strict-JSON encoding
    pole_mass = {"dist": "uniform", "low": 0.5, "high": 2.0, "mode": "scale"}
    obs_bias = {"dist": "uniform", "low": -math.inf, "high": 0.0}
    spec = {"env": CARTPOLE, "parameters": {"pole.mass": pole_mass, "obs.bias": obs_bias}}
    info = StandInInfo(
        CARTPOLE,
        cfg,
        spec=spec,
        obs_low=[-math.inf] * obs_dim,
        obs_high=[math.inf] * obs_dim,
    )
    return policy.eval(), info


@pytest.fixture
def policy_factory() -> Callable[..., tuple[ActorCritic, StandInInfo]]:
    return make_policy


@pytest.fixture
def tiny_config() -> Callable[..., TrainConfig]:
    """:func:`make_tiny_config`: ``tiny_config(total_steps=256, **overrides)``."""
    return make_tiny_config

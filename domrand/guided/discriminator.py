"""The Active-DR discriminator: tells randomized-env transitions from reference-env transitions.

D(s, a, s') is an MLP (128-128 tanh, sigmoid output) trained with binary cross-entropy, label 1
for transitions from randomized envs and 0 for transitions from the reference env (Mehta et al.
2019: Adam 3e-3, batch 320). A particle's reward for a proposed domain is

    r = log( mean_t D(s_t, a_t, s'_t) ) - log 0.5

over the agent's trajectory in that domain: positive where the agent's transitions look unlike
the reference ones (the domain is "hard" or at least different), negative where they look alike.
Inputs are standardized by running statistics kept in the module (saved with its weights).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from domrand.errors import ConfigError
from domrand.guided._threads import one_torch_thread

__all__ = ["Discriminator", "DiscriminatorConfig", "transition_features"]


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Discriminator settings (published defaults, except ``updates`` per round)."""

    hidden: int = 128
    lr: float = 3e-3
    batch_size: int = 320  #: half randomized, half reference transitions
    updates: int = 10  #: minibatch steps per round

    def __post_init__(self) -> None:
        for name in ("hidden", "batch_size", "updates"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(
                    f"discriminator {name} must be an integer >= 1, got {getattr(self, name)!r}"
                )
        if not 0 < float(self.lr) < math.inf:
            raise ConfigError(f"discriminator lr must be a finite number > 0, got {self.lr!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def transition_features(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """``(s_t, a_t, s_{t+1})`` rows ``[T, 2 * obs_dim + act_dim]`` of one trajectory.

    Args:
        obs: ``[T + 1, obs_dim]`` observations (the reset one, then one per step).
        actions: ``[T, act_dim]`` actions sent to the env.
    """
    obs = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
    actions = np.asarray(actions, dtype=np.float32).reshape(len(actions), -1)
    return np.concatenate([obs[:-1], actions, obs[1:]], axis=1)


class Discriminator(nn.Module):
    """D(s, a, s') with its own Adam optimizer and input standardization.

    Args:
        input_dim: width of a :func:`transition_features` row.
        config: the settings.
        generator: seeds the initial weights and the minibatch draws.
    """

    def __init__(
        self, input_dim: int, config: DiscriminatorConfig, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.config, self.generator = config, generator
        h = config.hidden
        self.net = nn.Sequential(
            nn.Linear(input_dim, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 1)
        )
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight, 1.0, generator=generator)
                nn.init.zeros_(m.bias)
        # Running mean/variance of the inputs (Chan et al. parallel update), saved with the weights.
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(input_dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(input_dim, dtype=torch.float64))
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)

    def _standardize(self, x: torch.Tensor) -> torch.Tensor:
        std = self.var.sqrt().clamp_min(1e-6)
        return ((x.double() - self.mean) / std).clamp(-10.0, 10.0).float()

    def _update_stats(self, x: torch.Tensor) -> None:
        x = x.double()
        n, m, v = float(x.shape[0]), x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = m - self.mean
        self.mean += delta * n / total
        self.var.copy_((self.var * self.count + v * n + delta**2 * self.count * n / total) / total)
        self.count.copy_(total)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(self._standardize(features)).squeeze(-1)

    @torch.no_grad()
    def probability(self, features: np.ndarray) -> np.ndarray:
        """D for each row: the probability that the transition came from a randomized env."""
        with one_torch_thread():
            return torch.sigmoid(self.logits(torch.as_tensor(features))).numpy()

    def reward(self, features: np.ndarray) -> float:
        """The particle reward of one trajectory: log(mean_t D) - log 0.5."""
        if len(features) == 0:
            return 0.0
        mean_d = float(np.mean(self.probability(features)))
        return math.log(max(mean_d, 1e-8)) - math.log(0.5)

    def fit(self, randomized: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        with one_torch_thread():
            return self._fit(randomized, reference)

    def _fit(self, randomized: np.ndarray, reference: np.ndarray) -> dict[str, float]:
        """``config.updates`` BCE minibatch steps: randomized rows are label 1, reference 0.

        Each minibatch draws ``batch_size / 2`` rows of each (with replacement), so the classes
        stay balanced however many transitions each side produced.
        """
        rand = torch.as_tensor(np.asarray(randomized, dtype=np.float32))
        ref = torch.as_tensor(np.asarray(reference, dtype=np.float32))
        if len(rand) == 0 or len(ref) == 0:
            raise ConfigError("the discriminator needs transitions from both kinds of env")
        self._update_stats(torch.cat([rand, ref]))
        half = max(1, self.config.batch_size // 2)
        labels = torch.cat([torch.ones(half), torch.zeros(half)])
        loss = torch.zeros(())
        for _ in range(self.config.updates):
            i = torch.randint(len(rand), (half,), generator=self.generator)
            j = torch.randint(len(ref), (half,), generator=self.generator)
            logits = self.logits(torch.cat([rand[i], ref[j]]))
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            acc_rand = float((self.logits(rand) > 0).float().mean())
            acc_ref = float((self.logits(ref) <= 0).float().mean())
        return {"loss": float(loss.detach()), "accuracy": 0.5 * (acc_rand + acc_ref)}

    # ------------------------------------------------------------------ state
    def full_state(self) -> dict[str, Any]:
        """Weights, input statistics, optimizer and minibatch generator (plain containers and
        tensors only)."""
        return {
            "module": self.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_full_state(self, state: Mapping[str, Any]) -> None:
        self.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])

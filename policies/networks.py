"""Actor-critic networks: an LSTM policy (optionally RL^2-style inputs) and an MLP baseline.

Both expose the same interface so the trainer, the evaluator and the exporter treat them alike:

* ``initial_state(batch)`` -> recurrent state (``LSTMState``; empty tensors for the MLP);
* ``step(obs, prev_action, prev_reward, state, episode_start)`` -> ``(mean, value, state)`` for one
  time step of a batch of envs (acting);
* ``sequence(obs, prev_action, prev_reward, state0, episode_starts)`` -> ``(mean, value)`` over a
  ``[T, B, ...]`` chunk, re-running the recurrence from the stored state (training).

The action distribution is a diagonal Gaussian with a state-independent log-std. Actions are
sampled unbounded (so log-probabilities are exact) and clipped to the action bounds by the env;
``deterministic_action`` clips the mean. Observation normalization (``RunningNorm``) lives inside
the module, so it is saved, loaded and exported with the weights.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["ActorCritic", "LSTMState", "NetConfig", "RunningNorm", "build_policy"]


class LSTMState(NamedTuple):
    """Recurrent state, each ``[num_layers, batch, hidden]`` (empty for feed-forward policies)."""

    h: torch.Tensor
    c: torch.Tensor


@dataclass(frozen=True)
class NetConfig:
    """Architecture of an actor-critic; saved in checkpoints and exported metadata."""

    obs_dim: int
    act_dim: int
    kind: str = "lstm"  #: "lstm" or "mlp"
    hidden: int = 256  #: LSTM hidden size, or MLP width
    layers: int = 2  #: MLP hidden layers (the LSTM has one recurrent layer)
    rl2: bool = False  #: append previous action and reward to the input (RL^2)
    init_log_std: float = -0.5

    @property
    def input_dim(self) -> int:
        return self.obs_dim + (self.act_dim + 1 if self.rl2 else 0)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class RunningNorm(nn.Module):
    """Running mean/variance of observations (parallel Welford update), clipped normalization."""

    def __init__(self, dim: int, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.clip, self.eps = clip, eps
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(eps, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold a batch ``[N, dim]`` into the statistics."""
        x = x.reshape(-1, self.mean.shape[0]).to(torch.float64)
        n = x.shape[0]
        if n == 0:
            return
        b_mean, b_var = x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = b_mean - self.mean
        self.mean += delta * n / total
        m2 = self.var * self.count + b_var * n + delta.pow(2) * self.count * n / total
        self.var = m2 / total
        self.count = total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.mean.to(x.dtype), torch.sqrt(self.var + self.eps).to(x.dtype)
        return torch.clamp((x - mean) / std, -self.clip, self.clip)


def _ortho(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class ActorCritic(nn.Module):
    """LSTM or MLP actor-critic with a Gaussian head. See the module docstring."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        self.obs_norm = RunningNorm(config.obs_dim)
        h = config.hidden
        if config.kind == "lstm":
            self.encoder = nn.Sequential(
                _ortho(nn.Linear(config.input_dim, h), math.sqrt(2)), nn.Tanh()
            )
            self.lstm = nn.LSTM(h, h)
            for name, p in self.lstm.named_parameters():
                if "weight" in name:
                    nn.init.orthogonal_(p, 1.0)
                else:
                    nn.init.zeros_(p)
            trunk_out = h
        elif config.kind == "mlp":
            layers: list[nn.Module] = []
            d = config.input_dim
            for _ in range(config.layers):
                layers += [_ortho(nn.Linear(d, h), math.sqrt(2)), nn.Tanh()]
                d = h
            self.encoder = nn.Sequential(*layers)
            trunk_out = d
        else:
            raise ValueError(f"unknown network kind {config.kind!r}; use 'lstm' or 'mlp'")
        self.actor = _ortho(nn.Linear(trunk_out, config.act_dim), 0.01)
        self.critic = _ortho(nn.Linear(trunk_out, 1), 1.0)
        self.log_std = nn.Parameter(torch.full((config.act_dim,), float(config.init_log_std)))

    @property
    def recurrent(self) -> bool:
        return self.config.kind == "lstm"

    def initial_state(self, batch: int) -> LSTMState:
        size = self.config.hidden if self.recurrent else 0
        z = torch.zeros(1, batch, size)
        return LSTMState(z, z.clone())

    def _inputs(
        self, obs: torch.Tensor, prev_action: torch.Tensor, prev_reward: torch.Tensor
    ) -> torch.Tensor:
        x = self.obs_norm(obs)
        if self.config.rl2:
            x = torch.cat([x, prev_action, prev_reward.unsqueeze(-1)], dim=-1)
        return x

    def step(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        state: LSTMState,
        episode_start: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        """One step for a batch ``[B, ...]``; the state is zeroed where ``episode_start`` is 1."""
        z = self.encoder(self._inputs(obs, prev_action, prev_reward))
        if self.recurrent:
            keep = (1.0 - episode_start.to(z.dtype)).view(1, -1, 1)
            out, (h, c) = self.lstm(z.unsqueeze(0), (state.h * keep, state.c * keep))
            z, state = out.squeeze(0), LSTMState(h, c)
        return self.actor(z), self.critic(z).squeeze(-1), state

    def sequence(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        state0: LSTMState,
        episode_starts: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Re-run a ``[T, B, ...]`` chunk from its stored initial state (for the PPO update).

        The state is masked at every step where an episode starts inside the chunk, exactly as
        it was when acting, so training sees the same recurrence the actor had.
        """
        z = self.encoder(self._inputs(obs, prev_action, prev_reward))
        if self.recurrent:
            h, c = state0
            outs = []
            for t in range(z.shape[0]):
                keep = (1.0 - episode_starts[t].to(z.dtype)).view(1, -1, 1)
                out, (h, c) = self.lstm(z[t].unsqueeze(0), (h * keep, c * keep))
                outs.append(out.squeeze(0))
            z = torch.stack(outs)
        return self.actor(z), self.critic(z).squeeze(-1)

    def distribution(self, mean: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(mean, self.log_std.exp().expand_as(mean))


def build_policy(config: NetConfig) -> ActorCritic:
    """Construct an actor-critic from its config (the single place a policy is built)."""
    return ActorCritic(config)

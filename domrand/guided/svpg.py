"""Stein variational policy gradient (Liu et al. 2017) particles that explore [0,1]^N for Active DR.

Each particle is a small actor-critic whose *state* is its current point v in the normalized
randomization space and whose *action* moves it: the actor's Gaussian sample a is turned into a
unit direction, ``delta = max_step * a / |a|``, and ``v <- clip(v + delta, 0, 1)`` (Mehta et al.
2019). Every round each particle proposes ``rollout_len`` consecutive points; it restarts at a
uniform random point after ``horizon`` steps or when it is stuck against a bound. The caller scores
the proposed points (Active DR: the discriminator reward) and calls :meth:`SVPG.update`.

The update is SVGD over the particles' actor parameters with temperature ``alpha``:

    theta_i <- theta_i + lr * 1/n sum_j [ k(theta_j, theta_i) (1/alpha) grad J(theta_j)
                                           + grad_{theta_j} k(theta_j, theta_i) ]

computed by :func:`domrand.guided.svgd.svgd_direction` (textbook kernel term) and applied with
Adam. Critics learn plain A2C value regression. Every random draw comes from one seeded
``torch.Generator``; :meth:`SVPG.state_dict` holds plain containers and tensors only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from domrand.errors import ConfigError
from domrand.guided._threads import one_torch_thread
from domrand.guided.svgd import svgd_direction

__all__ = ["SVPG", "SVPGConfig"]


@dataclass(frozen=True)
class SVPGConfig:
    """SVPG settings. Published defaults (Mehta et al. 2019) unless noted."""

    num_particles: int = 10
    hidden: int = 100  #: 2 x 100 tanh actor and critic
    lr: float = 3e-4  #: Adam
    gamma: float = 0.99
    alpha: float = 10.0  #: SVGD temperature: the policy gradient enters as (1/alpha) grad J
    max_step: float = 0.05  #: length of one particle move in [0,1]^N
    rollout_len: int = 5  #: consecutive points a particle proposes per round
    horizon: int = 25  #: steps before a particle restarts at a random point
    init_log_std: float = 0.0  #: log std of the actor's Gaussian (a unit direction is taken)

    def __post_init__(self) -> None:
        for name in ("num_particles", "hidden", "rollout_len", "horizon"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(
                    f"svpg {name} must be an integer >= 1, got {getattr(self, name)!r}"
                )
        for name in ("lr", "alpha", "max_step"):
            if not 0 < float(getattr(self, name)) < float("inf"):
                raise ConfigError(f"svpg {name} must be a finite number > 0")
        if not 0 <= self.gamma <= 1:
            raise ConfigError(f"svpg gamma must be in [0, 1], got {self.gamma!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mlp(
    dim_in: int, hidden: int, dim_out: int, gen: torch.Generator, out_gain: float
) -> nn.Module:
    """``dim_in -> hidden -> hidden -> dim_out`` with tanh, orthogonal init from ``gen``."""
    layers: list[nn.Module] = []
    for a, b, gain in ((dim_in, hidden, 1.0), (hidden, hidden, 1.0), (hidden, dim_out, out_gain)):
        lin = nn.Linear(a, b)
        nn.init.orthogonal_(lin.weight, gain, generator=gen)
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.Tanh()]
    return nn.Sequential(*layers[:-1])


class _Actor(nn.Module):
    def __init__(self, dim: int, cfg: SVPGConfig, gen: torch.Generator) -> None:
        super().__init__()
        self.mean = _mlp(dim, cfg.hidden, dim, gen, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((dim,), float(cfg.init_log_std)))

    def dist(self, v: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.mean(v), self.log_std.exp())


class SVPG:
    """``num_particles`` actor-critic particles exploring [0,1]^``dim``.

    Args:
        dim: dimensions of the normalized randomization space.
        config: the settings.
        seed: seeds the particles' one ``torch.Generator`` (init, actions, restarts).
    """

    def __init__(self, dim: int, config: SVPGConfig, seed: int) -> None:
        if dim < 1:
            raise ConfigError("SVPG needs at least one randomized dimension")
        self.dim, self.config = dim, config
        self.generator = torch.Generator().manual_seed(seed)
        n = config.num_particles
        self.actors = [_Actor(dim, config, self.generator) for _ in range(n)]
        self.critics = [_mlp(dim, config.hidden, 1, self.generator, 1.0) for _ in range(n)]
        self.actor_opts = [torch.optim.Adam(a.parameters(), lr=config.lr) for a in self.actors]
        self.critic_opts = [torch.optim.Adam(c.parameters(), lr=config.lr) for c in self.critics]
        self.points = torch.rand(n, dim, generator=self.generator, dtype=torch.float64)
        self.steps = torch.zeros(n, dtype=torch.long)  #: steps since each particle's restart
        self.updates = 0
        # The rollout of the last propose(), kept until update() scores it (and checkpointed).
        self.pending: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ acting
    def propose(self) -> np.ndarray:
        """Move every particle ``rollout_len`` steps; return the visited points ``[n, T, dim]``."""
        with one_torch_thread(), torch.no_grad():
            return self._propose()

    def _propose(self) -> np.ndarray:
        cfg, n, T = self.config, self.config.num_particles, self.config.rollout_len
        states = torch.zeros(n, T, self.dim, dtype=torch.float64)
        actions = torch.zeros(n, T, self.dim)
        proposals = torch.zeros(n, T, self.dim, dtype=torch.float64)
        dones = torch.zeros(n, T, dtype=torch.bool)
        for t in range(T):
            v = self.points
            for i, actor in enumerate(self.actors):
                d = actor.dist(v[i].float())
                noise = torch.randn(self.dim, generator=self.generator)
                actions[i, t] = d.mean + d.stddev * noise
            # A unit direction times max_step: every move has the same length.
            unit = actions[:, t].double() / actions[:, t].double().norm(
                dim=1, keepdim=True
            ).clamp_min(1e-12)
            new = (v + cfg.max_step * unit).clamp(0.0, 1.0)
            states[:, t], proposals[:, t] = v, new
            self.steps += 1
            # Stuck: still on a bound it was already on (it keeps pushing against the wall).
            on_bound = (new <= 0.0) | (new >= 1.0)
            stuck = (on_bound & ((v <= 0.0) | (v >= 1.0))).any(dim=1)
            done = (self.steps >= cfg.horizon) | stuck
            dones[:, t] = done
            restart = torch.rand(n, self.dim, generator=self.generator, dtype=torch.float64)
            self.points = torch.where(done[:, None], restart, new)
            self.steps = torch.where(done, torch.zeros_like(self.steps), self.steps)
        self.pending = {
            "states": states,
            "actions": actions,
            "dones": dones,
            "next": self.points.clone(),  # for bootstrapping the last step's value
        }
        return proposals.numpy().copy()

    # ------------------------------------------------------------------ learning
    def _flat(self, i: int) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.actors[i].parameters()])

    def update(self, rewards: np.ndarray) -> dict[str, float]:
        """One SVPG step from the rewards ``[n, T]`` of the points :meth:`propose` returned."""
        with one_torch_thread():
            return self._update(rewards)

    def _update(self, rewards: np.ndarray) -> dict[str, float]:
        if self.pending is None:
            raise ConfigError("SVPG.update called without a proposal to score")
        cfg, n, T = self.config, self.config.num_particles, self.config.rollout_len
        r = torch.as_tensor(np.asarray(rewards, dtype=np.float32))
        if r.shape != (n, T):
            raise ConfigError(
                f"SVPG.update expects rewards of shape {(n, T)}, got {tuple(r.shape)}"
            )
        states = self.pending["states"].float()
        actions, dones = self.pending["actions"], self.pending["dones"]
        grads, value_losses = [], []
        for i in range(n):
            # A2C on the particle's T-step rollout: discounted returns, bootstrapped from V(next)
            # unless the rollout ended in a restart.
            with torch.no_grad():
                ret = self.critics[i](self.pending["next"][i].float()).squeeze(-1)
                ret = ret * (~dones[i, -1]).float()
                returns = torch.zeros(T)
                for t in reversed(range(T)):
                    if dones[i, t]:
                        ret = torch.zeros(())
                    ret = r[i, t] + cfg.gamma * ret
                    returns[t] = ret
            values = self.critics[i](states[i]).squeeze(-1)
            value_loss = 0.5 * (returns - values).pow(2).mean()
            self.critic_opts[i].zero_grad()
            value_loss.backward()
            self.critic_opts[i].step()
            value_losses.append(float(value_loss.detach()))
            adv = (returns - values.detach()).detach()
            logp = self.actors[i].dist(states[i]).log_prob(actions[i]).sum(-1)
            objective = (logp * adv).sum()  # J_i: to be maximized
            params = list(self.actors[i].parameters())
            g = torch.autograd.grad(objective, params)
            grads.append(torch.cat([x.reshape(-1) for x in g]))
        theta = torch.stack([self._flat(i) for i in range(n)]).double().numpy()
        grad_j = torch.stack(grads).double().numpy()
        # SVGD over the particles' actor parameters: the policy gradient is the "score" scaled by
        # the temperature (target density proportional to exp(J / alpha)), and the kernel's
        # repulsive term keeps the particles' policies apart.
        phi = svgd_direction(theta, grad_j / cfg.alpha)
        for i in range(n):
            offset = 0
            for p in self.actors[i].parameters():
                k = p.numel()
                # Adam minimizes: hand it -phi so the parameters ascend along phi.
                p.grad = -torch.as_tensor(phi[i, offset : offset + k], dtype=p.dtype).view_as(p)
                offset += k
            self.actor_opts[i].step()
            self.actor_opts[i].zero_grad()
        self.pending = None
        self.updates += 1
        return {"value_loss": float(np.mean(value_losses)), "reward": float(r.mean())}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Plain containers and tensors only (``weights_only`` checkpoints)."""
        return {
            "dim": self.dim,
            "config": self.config.to_dict(),
            "actors": [a.state_dict() for a in self.actors],
            "critics": [c.state_dict() for c in self.critics],
            "actor_opts": [o.state_dict() for o in self.actor_opts],
            "critic_opts": [o.state_dict() for o in self.critic_opts],
            "points": self.points.clone(),
            "steps": self.steps.clone(),
            "updates": self.updates,
            "pending": None if self.pending is None else dict(self.pending),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if int(state["dim"]) != self.dim or dict(state["config"]) != self.config.to_dict():
            raise ConfigError("saved SVPG state has other dimensions or settings")
        for mods, saved in (
            (self.actors, state["actors"]),
            (self.critics, state["critics"]),
            (self.actor_opts, state["actor_opts"]),
            (self.critic_opts, state["critic_opts"]),
        ):
            for m, s in zip(mods, saved):
                m.load_state_dict(s)
        self.points = state["points"].clone()
        self.steps = state["steps"].clone()
        self.updates = int(state["updates"])
        pending = state["pending"]
        self.pending = None if pending is None else {k: v.clone() for k, v in pending.items()}
        self.generator.set_state(state["generator"])

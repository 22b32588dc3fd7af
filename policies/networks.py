"""Actor-critic networks: an LSTM policy (optionally RL^2-style inputs) and an MLP baseline.

Both expose the same interface so the trainer, the evaluator and the exporter treat them alike:

* ``initial_state(batch)`` -> recurrent state (``LSTMState``; empty tensors for the MLP);
* ``step(obs, prev_action, prev_reward, state, episode_start)`` -> ``(mean, value, state)`` for one
  time step of a batch of envs (acting);
* ``sequence(obs, prev_action, prev_reward, state0, episode_starts)`` -> ``(mean, value)`` over a
  ``[T, B, ...]`` chunk, re-running the recurrence from the stored state (training).

Inputs are raw env quantities: the observation, the action the env applied at the previous step
and the reward it returned. Where ``episode_start`` is 1 the recurrent state and the RL^2 inputs
are zeroed inside the network, so a caller can pass anything there at the first step of an
episode.

Actions: a diagonal Gaussian in env units. For a bounded action dimension the mean is
``center + half_range * head(z)`` and the std is ``exp(log_std) * half_range``, so a unit-scale
head fits any box. Samples are unbounded (their log-probability is exact, and it is the unclipped
sample that PPO re-evaluates); ``clip_action`` clips what is sent to the env, and
``deterministic_action`` is the clipped mean. Observation normalization (``RunningNorm``) lives
inside the module, so it is saved, loaded and exported with the weights.

A **privileged critic** (``NetConfig.critic_knobs``, see ``domrand.policies.privileged``) is a
second value head that also sees the episode's domain: ``priv_critic([stop_grad(z), norm(f)])``
where ``f`` are the domain features (``priv`` in ``step``/``sequence``). Given ``priv``, the
value returned is that head's (it is what GAE uses); without it (evaluation, export) it is the
plain head ``critic(z)``. Both heads are fit to the returns, but only the plain head's loss
reaches the shared trunk: the priv head reads the trunk without shaping it, so the trunk keeps
learning to predict returns from the history alone, which is what makes it infer the dynamics
the actor must adapt to. Its gradient is clipped on its own in the update (``ppo_update``), so
it does not take a share of the policy's clipped gradient norm. The actor never sees the
features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import torch
from torch import nn

from domrand.errors import ConfigError

__all__ = ["ActorCritic", "LSTMState", "NetConfig", "RunningNorm", "build_policy"]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


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
    init_log_std: float = -0.5  #: initial log-std, in units of the action half-range
    act_low: tuple[float, ...] | None = None  #: action bounds (``-inf`` = unbounded below)
    act_high: tuple[float, ...] | None = None  #: action bounds (``inf`` = unbounded above)
    #: knobs a privileged critic sees (``domrand.policies.privileged``); empty: a plain critic
    critic_knobs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("lstm", "mlp"):
            raise ConfigError(f"unknown network kind {self.kind!r}; use 'lstm' or 'mlp'")
        for name in ("obs_dim", "act_dim", "hidden", "layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"network {name} must be a positive integer, got {value!r}")
        for name in ("act_low", "act_high"):
            value = getattr(self, name)
            if value is not None:
                value = tuple(float(v) for v in value)
                object.__setattr__(self, name, value)
                if len(value) != self.act_dim:
                    raise ConfigError(f"{name} has {len(value)} entries, act_dim is {self.act_dim}")
        knobs = self.critic_knobs
        if isinstance(knobs, str) or not all(isinstance(k, str) for k in knobs):
            raise ConfigError(f"critic_knobs must be a list of knob names, got {knobs!r}")
        object.__setattr__(self, "critic_knobs", tuple(knobs))
        if len(set(self.critic_knobs)) != len(self.critic_knobs):
            raise ConfigError(f"critic_knobs repeats a name: {list(self.critic_knobs)}")
        lo, hi = self.act_low, self.act_high
        if (lo is None) != (hi is None):
            raise ConfigError("give both act_low and act_high, or neither")
        if lo is not None and hi is not None and any(not a < b for a, b in zip(lo, hi)):
            raise ConfigError(f"act_low must be below act_high, got {lo} and {hi}")

    @property
    def input_dim(self) -> int:
        return self.obs_dim + (self.act_dim + 1 if self.rl2 else 0)

    @property
    def priv_dim(self) -> int:
        """Width of the privileged critic's domain features (0: a plain critic)."""
        return len(self.critic_knobs)

    def to_dict(self) -> dict[str, Any]:
        """Plain containers only (lists, not tuples): safe for YAML and ``weights_only`` loads."""
        d = asdict(self)
        for name in ("act_low", "act_high"):
            if d[name] is not None:
                d[name] = list(d[name])
        d["critic_knobs"] = list(d["critic_knobs"])
        if not d["critic_knobs"]:
            del d["critic_knobs"]  # a plain critic's config reads as it always did
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NetConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown network config keys: {', '.join(unknown)}")
        return cls(**dict(d))


class RunningNorm(nn.Module):
    """Running mean/variance of observations (parallel Welford update), clipped normalization.

    The statistics are buffers: they are saved with the weights and exported with them. The
    trainer folds a rollout in only *after* the update that used it, so acting and the update
    normalize the same observations identically.
    """

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
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self.mean.to(x.dtype), torch.sqrt(self.var + self.eps).to(x.dtype)
        return torch.clamp((x - mean) / std, -self.clip, self.clip)


def _ortho(layer: nn.Linear, gain: float, generator: torch.Generator | None) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain, generator=generator)
    nn.init.zeros_(layer.bias)
    return layer


def _lstm_cell(
    lstm: nn.LSTM, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of ``lstm``'s (single) layer, written out: gates i, f, g, o as PyTorch orders them.

    For one time step this is several times faster on CPU than calling ``nn.LSTM`` (whose oneDNN
    path pays a fixed cost per call), and it exports to ONNX as plain matmuls. It computes the
    same function as ``nn.LSTM``; the two differ only in float rounding (~1e-7).
    """
    gates = nn.functional.linear(x, lstm.weight_ih_l0, lstm.bias_ih_l0) + nn.functional.linear(
        h, lstm.weight_hh_l0, lstm.bias_hh_l0
    )
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _lstm_segments(
    lstm: nn.LSTM, z: torch.Tensor, state0: LSTMState, starts: torch.Tensor
) -> torch.Tensor:
    """Run ``lstm`` over ``z [T, B, H]`` with the state reset wherever ``starts [T, B]`` is true.

    Instead of an unrolled Python loop over time (one LSTM call per step), every column is cut
    into segments at its episode starts; the segments are right-padded to the longest one and
    run as ONE ``nn.LSTM`` call. This is exact: a segment that opens with an episode start begins
    from zeros, which is what masking the carried state at that step does. Padding sits after
    each segment's last real step, so it cannot influence any real output, and the outputs are
    scattered back to ``[T, B, H]`` (the padding never leaves this function).
    """
    T, B, H = z.shape
    starts = starts.to(torch.bool)
    seg_open = starts.clone()
    seg_open[0] = True  # every column opens a segment, from its stored state
    flat_open = seg_open.transpose(0, 1).reshape(-1)  # column-major: column b is b*T .. b*T+T-1
    seg_id = torch.cumsum(flat_open.to(torch.long), 0) - 1  # the segment of every step
    first = torch.nonzero(flat_open).squeeze(1)  # flat index where each segment opens
    pos = torch.arange(B * T, device=z.device) - first[seg_id]  # position inside its segment
    num_seg, max_len = first.numel(), int(pos.max()) + 1
    x = z.transpose(0, 1).reshape(B * T, -1)
    padded = z.new_zeros(max_len, num_seg, x.shape[-1]).index_put((pos, seg_id), x)
    # Initial state per segment: the column's stored state if the segment opens the column and
    # that step does not start an episode; zeros otherwise (the state is reset at episode starts).
    col, t0 = first // T, first % T
    keep = ((t0 == 0) & ~starts[0, col]).to(z.dtype).view(1, -1, 1)
    h0, c0 = state0.h[:, col] * keep, state0.c[:, col] * keep
    out, _ = lstm(padded, (h0, c0))
    return out[pos, seg_id].view(B, T, H).transpose(0, 1)


class ActorCritic(nn.Module):
    """LSTM or MLP actor-critic with a Gaussian head. See the module docstring.

    Args:
        config: the architecture.
        generator: the torch generator for weight initialization (the global RNG is not touched).
    """

    def __init__(self, config: NetConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self.obs_norm = RunningNorm(config.obs_dim)
        h = config.hidden
        # Layer constructors draw default weights from the global RNG; every weight is then
        # re-initialized from `generator`, and fork_rng leaves the global stream as it was.
        with torch.random.fork_rng(devices=[]):
            if config.kind == "lstm":
                self.encoder = nn.Sequential(
                    _ortho(nn.Linear(config.input_dim, h), math.sqrt(2), generator), nn.Tanh()
                )
                self.lstm = nn.LSTM(h, h)
                for name, p in self.lstm.named_parameters():
                    if "weight" in name:
                        nn.init.orthogonal_(p, 1.0, generator=generator)
                    else:
                        nn.init.zeros_(p)
            else:
                layers: list[nn.Module] = []
                d = config.input_dim
                for _ in range(config.layers):
                    layers += [_ortho(nn.Linear(d, h), math.sqrt(2), generator), nn.Tanh()]
                    d = h
                self.encoder = nn.Sequential(*layers)
            self.actor = _ortho(nn.Linear(h, config.act_dim), 0.01, generator)
            self.critic = _ortho(nn.Linear(h, 1), 1.0, generator)
            if config.priv_dim:  # created last: a plain critic's initialization is unchanged
                self.critic_norm = RunningNorm(config.priv_dim)
                self.priv_critic = nn.Sequential(
                    _ortho(nn.Linear(h + config.priv_dim, h), math.sqrt(2), generator),
                    nn.Tanh(),
                    _ortho(nn.Linear(h, 1), 1.0, generator),
                )
        self.log_std = nn.Parameter(torch.full((config.act_dim,), float(config.init_log_std)))
        # Action bounds as buffers: center/scale map the unit-scale head onto the box; infinite
        # bounds leave that dimension unscaled.
        inf = math.inf
        lo = torch.tensor(config.act_low or (-inf,) * config.act_dim, dtype=torch.float32)
        hi = torch.tensor(config.act_high or (inf,) * config.act_dim, dtype=torch.float32)
        finite = torch.isfinite(lo) & torch.isfinite(hi)
        self.register_buffer("act_low", lo)
        self.register_buffer("act_high", hi)
        self.register_buffer("act_center", torch.where(finite, (lo + hi) / 2, torch.zeros_like(lo)))
        self.register_buffer("act_scale", torch.where(finite, (hi - lo) / 2, torch.ones_like(lo)))

    @property
    def recurrent(self) -> bool:
        return self.config.kind == "lstm"

    def initial_state(self, batch: int) -> LSTMState:
        size = self.config.hidden if self.recurrent else 0
        z = torch.zeros(1, batch, size)
        return LSTMState(z, z.clone())

    def _inputs(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        episode_start: torch.Tensor,
    ) -> torch.Tensor:
        x = self.obs_norm(obs)
        if self.config.rl2:
            # RL^2: the action the env applied (clipped, in half-range units) and the reward it
            # returned; both are zeroed at an episode's first step, where there is no "previous".
            keep = (1.0 - episode_start.to(x.dtype)).unsqueeze(-1)
            a = torch.clamp(prev_action.to(x.dtype), self.act_low, self.act_high)
            a = (a - self.act_center) / self.act_scale
            x = torch.cat([x, a * keep, prev_reward.to(x.dtype).unsqueeze(-1) * keep], dim=-1)
        return x

    def _heads(
        self, z: torch.Tensor, priv: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mean, value, plain value)``: ``value`` is the privileged head's when ``priv`` is
        given to a network that has one, else the plain head's."""
        mean = self.act_center + self.act_scale * self.actor(z)
        plain = self.critic(z).squeeze(-1)
        if priv is None or not self.config.priv_dim:
            return mean, plain, plain
        if priv.shape != (*z.shape[:-1], self.config.priv_dim):
            raise ValueError(
                f"priv has shape {tuple(priv.shape)}, expected "
                f"{(*z.shape[:-1], self.config.priv_dim)}"
            )
        x = torch.cat([z.detach(), self.critic_norm(priv)], dim=-1)
        return mean, self.priv_critic(x).squeeze(-1), plain

    def step(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        state: LSTMState,
        episode_start: torch.Tensor,
        priv: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        """One step for a batch ``[B, ...]``; the state is zeroed where ``episode_start`` is 1.

        ``priv [B, priv_dim]``: the domain features for a privileged critic (without them the
        value is the plain head's).
        """
        z = self.encoder(self._inputs(obs, prev_action, prev_reward, episode_start))
        if self.recurrent:
            # LSTM state masking when acting: a new episode must not see the previous one.
            keep = (1.0 - episode_start.to(z.dtype)).view(-1, 1)
            h, c = _lstm_cell(self.lstm, z, state.h[0] * keep, state.c[0] * keep)
            z, state = h, LSTMState(h.unsqueeze(0), c.unsqueeze(0))
        mean, value, _ = self._heads(z, priv)
        return mean, value, state

    def sequence(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        state0: LSTMState,
        episode_starts: torch.Tensor,
        priv: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Re-run a ``[T, B, ...]`` chunk from its stored initial state (for the PPO update).

        ``priv [T, B, priv_dim]``: the domain features for a privileged critic (see
        :meth:`sequence_values` for both of its value heads).

        The state is reset at every step where an episode starts inside the chunk, exactly as
        it was when acting, so training sees the same recurrence the actor had.
        """
        mean, value, _ = self.sequence_values(
            obs, prev_action, prev_reward, state0, episode_starts, priv
        )
        return mean, value

    def sequence_values(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        state0: LSTMState,
        episode_starts: torch.Tensor,
        priv: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`sequence` plus the plain head's value: ``(mean, value, plain value)``. With a
        privileged critic the update fits both heads (the plain one shapes the trunk)."""
        z = self.encoder(self._inputs(obs, prev_action, prev_reward, episode_starts))
        if self.recurrent:
            z = _lstm_segments(self.lstm, z, state0, episode_starts)
        return self._heads(z, priv)

    # ------------------------------------------------------------------ the action distribution
    def action_std(self) -> torch.Tensor:
        return self.log_std.exp() * self.act_scale

    def log_prob(self, mean: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Log-density of (unclipped) ``action`` under N(mean, std), summed over action dims."""
        log_std = self.log_std + torch.log(self.act_scale)
        z = (action - mean) * torch.exp(-log_std)
        return (-0.5 * z.pow(2) - log_std - _LOG_SQRT_2PI).sum(-1)

    def entropy(self) -> torch.Tensor:
        """Entropy of the (state-independent) Gaussian, summed over action dims."""
        return (0.5 + _LOG_SQRT_2PI + self.log_std + torch.log(self.act_scale)).sum()

    def sample(
        self, mean: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw unbounded actions and their log-probabilities."""
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        action = mean + self.action_std() * noise
        return action, self.log_prob(mean, action)

    def clip_action(self, action: torch.Tensor) -> torch.Tensor:
        """What the env receives: the action clipped to the bounds."""
        return torch.clamp(action, self.act_low, self.act_high)

    def deterministic_action(self, mean: torch.Tensor) -> torch.Tensor:
        """The evaluation/deployment action: the clipped mean."""
        return self.clip_action(mean)

    def distribution(self, mean: torch.Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(mean, self.action_std().expand_as(mean))


def build_policy(config: NetConfig, generator: torch.Generator | None = None) -> ActorCritic:
    """Construct an actor-critic from its config (the single place a policy is built).

    The orthogonal initialization is a QR decomposition, whose last bits depend on how many
    threads torch runs it on; it runs on one, so a seed gives the same weights in any process
    (the trainer's main process has one thread with the local backend's in-process workers,
    the default two without them).
    """
    from domrand.guided._threads import one_torch_thread

    with one_torch_thread():
        return ActorCritic(config, generator)


def action_bounds(space: Any) -> tuple[Sequence[float], Sequence[float]]:
    """``(low, high)`` of a gymnasium ``Box`` action space as lists of floats."""
    return [float(v) for v in space.low.ravel()], [float(v) for v in space.high.ravel()]

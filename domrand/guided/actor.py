"""A trained actor-critic as a closed-loop controller, batched, for targets and simulators.

Guided DR runs the policy outside the trainer: on the target (one episode at a time, through the
``reset()``/``act(obs, reward=)`` protocol of :mod:`domrand.target`) and in simulation (SimOpt runs
many simulated copies of a real rollout in lockstep). :class:`Actor` does both with the same
arithmetic: the LSTM state and the RL^2 inputs (previous action and reward) are carried exactly as
the trainer's rollouts carry them.

Exploration noise is *pre-drawn*: the action at step t is ``clip(mean_t + std * z_t)`` with
``z`` a fixed ``[T, act_dim]`` array of standard normals. Running the same ``z`` in the simulator
replays the real rollout's noise, so a simulation with the real parameters reproduces the real
closed-loop trajectory (the noise doubles as a recorded excitation signal).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from domrand.errors import DomrandError
from domrand.guided._threads import one_torch_thread

if TYPE_CHECKING:
    from domrand.policies.networks import ActorCritic

__all__ = ["Actor", "ControllerActor", "EpisodePolicy"]


class Actor:
    """Runs ``policy`` on a batch of ``B`` systems in lockstep.

    Args:
        policy: the trained actor-critic (eval mode is set here).
        extra_obs: a vector appended to every observation (SO-CMA's normalized domain mu).
        noise_std: exploration std in action half-range units; ``None`` uses the policy's own
            (learned) std, 0 acts deterministically (the clipped mean).
    """

    def __init__(
        self,
        policy: ActorCritic,
        extra_obs: np.ndarray | None = None,
        noise_std: float | None = 0.0,
    ) -> None:
        self.policy = policy.eval()
        self.extra = None if extra_obs is None else torch.as_tensor(extra_obs, dtype=torch.float32)
        with torch.no_grad():
            if noise_std is None:
                self.std = policy.action_std().detach().clone()
            else:
                self.std = float(noise_std) * policy.act_scale.clone()
        self.act_dim = policy.config.act_dim

    @property
    def rl2(self) -> bool:
        return bool(self.policy.config.rl2)

    def start(self, batch: int, noise: np.ndarray | None = None) -> None:
        """Begin ``batch`` episodes; ``noise``: ``[T, act_dim]`` or ``[batch, T, act_dim]``."""
        self.B = batch
        self.t = 0
        self.state = self.policy.initial_state(batch)
        self.prev_action = torch.zeros(batch, self.act_dim)
        self.starts = torch.ones(batch, dtype=torch.bool)
        if noise is None:
            self.noise = None
        else:
            z = torch.as_tensor(np.asarray(noise), dtype=torch.float32)
            self.noise = z.unsqueeze(0).expand(batch, -1, -1) if z.ndim == 2 else z

    def step(self, obs: np.ndarray, reward: np.ndarray | None) -> np.ndarray:
        """Actions ``[B, act_dim]`` for observations ``[B, obs_dim]`` and the previous rewards.

        ``reward`` is ignored at the first step of an episode (the network masks it there).
        """
        # One torch thread, as the trainer acts: these matmuls take microseconds, and extra
        # threads only add synchronization, which costs milliseconds once another process holds
        # a core. (The setting is process-wide, so it is restored.)
        with one_torch_thread():
            return self._step(obs, reward)

    @torch.no_grad()
    def _step(self, obs: np.ndarray, reward: np.ndarray | None) -> np.ndarray:
        x = torch.as_tensor(np.asarray(obs), dtype=torch.float32).reshape(self.B, -1)
        if self.extra is not None:
            x = torch.cat([x, self.extra.expand(self.B, -1)], dim=1)
        if self.t > 0 and reward is not None:
            r = torch.as_tensor(np.asarray(reward), dtype=torch.float32).reshape(self.B)
        elif self.t > 0 and self.rl2:
            raise DomrandError(
                "this policy takes the previous reward as an input (RL^2), but the system "
                "gives none (for a RobotTarget, pass reward_fn=)"
            )
        else:
            r = torch.zeros(self.B)
        mean, _, self.state = self.policy.step(x, self.prev_action, r, self.state, self.starts)
        action = mean
        if self.noise is not None and self.t < self.noise.shape[1]:
            action = mean + self.std * self.noise[:, self.t]
        action = self.policy.clip_action(action)
        self.prev_action = action
        self.starts = torch.zeros(self.B, dtype=torch.bool)
        self.t += 1
        return action.numpy().astype(np.float64)


class ControllerActor:
    """A fixed controller with the :class:`Actor` interface, e.g. a scripted excitation probe.

    Args:
        controller: ``controller(obs, t)`` maps one observation at step ``t`` of the episode to
            one action (the same controller runs in every copy).
        noise_std: std of the pre-drawn noise added to each action (in action units).
        low, high: the action bounds the result is clipped to.
    """

    def __init__(
        self,
        controller: Callable[[np.ndarray, int], np.ndarray],
        noise_std: float,
        low: np.ndarray,
        high: np.ndarray,
    ) -> None:
        self.controller = controller
        self.std = float(noise_std)
        self.low, self.high = np.asarray(low, np.float64), np.asarray(high, np.float64)

    def start(self, batch: int, noise: np.ndarray | None = None) -> None:
        self.B, self.t = batch, 0
        self.noise = None if noise is None else np.asarray(noise, dtype=np.float64)

    def step(self, obs: np.ndarray, reward: np.ndarray | None) -> np.ndarray:
        rows = np.asarray(obs).reshape(self.B, -1)
        act = self.controller
        action = np.stack([np.asarray(act(o, self.t), np.float64).ravel() for o in rows])
        if self.noise is not None and self.t < self.noise.shape[-2]:
            action = action + self.std * self.noise[..., self.t, :]
        self.t += 1
        return np.clip(action, self.low, self.high)


class EpisodePolicy:
    """One system at a time, in the ``reset()``/``act(obs, reward=)`` protocol of the targets.

    ``noise`` is the pre-drawn ``[T, act_dim]`` excitation of every episode (``None``: none).
    """

    def __init__(self, actor: Actor | ControllerActor, noise: np.ndarray | None = None) -> None:
        self.actor = actor
        self.noise = noise

    def reset(self) -> None:
        self.actor.start(1, self.noise)

    def act(self, obs: np.ndarray, reward: float | None = None) -> np.ndarray:
        r = None if reward is None or not math.isfinite(reward) else np.array([reward])
        return self.actor.step(np.asarray(obs)[None], r)[0].astype(np.float32)

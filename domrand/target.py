"""The "real system" interface for guided DR: where real rollouts come from, and how many.

Real robot time is the scarce resource, so every target counts the rollouts it serves
(``rollouts_used``) and guided-DR methods report it.

* :class:`SimulatedTarget`: a domrand env pinned to a reality domain the guide cannot see (the
  domain is stripped from the trajectories' infos).
* :class:`RecordedTarget`: trajectories recorded on hardware, loaded from ``.npz`` files in the
  format :meth:`Trajectory.save` writes (documented there).
* :class:`RobotTarget`: a base class a user subclasses to drive a real robot at its control rate.

A policy here is anything with ``reset()`` and ``act(obs) -> action`` (the exported runtime
``domrand.policies.deploy.ExportedPolicy`` qualifies, and so does a wrapped torch policy). When
``act`` has a ``reward`` parameter, targets pass the previous step's reward as ``reward=`` (``None``
at the first step, or when the system has no reward signal): what RL^2 policies need.
"""

from __future__ import annotations

import inspect
import io
import json
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from domrand.errors import DomrandError
from domrand.fsutil import atomic_write_bytes

__all__ = [
    "Policy",
    "RecordedTarget",
    "RobotTarget",
    "SimulatedTarget",
    "SimulatedTargetRecipe",
    "TargetDomain",
    "TargetError",
    "Trajectory",
]

TRAJECTORY_FORMAT = 1


class TargetError(DomrandError):
    """A target cannot serve rollouts (mismatched spaces, empty recording, bad file...)."""


class Policy(Protocol):
    """What a target runs: stateful (e.g. recurrent) control, reset at each episode start."""

    def reset(self) -> None: ...

    def act(self, obs: np.ndarray) -> np.ndarray: ...


def _actor(policy: Policy) -> Any:
    """``policy.act`` as a function of ``(obs, reward)``; the reward goes where it is taken."""
    try:
        params = inspect.signature(policy.act).parameters
    except (TypeError, ValueError):  # a builtin or extension type without a signature
        params = {}  # type: ignore[assignment]
    if "reward" in params:
        return lambda obs, reward: policy.act(obs, reward=reward)
    return lambda obs, reward: policy.act(obs)


@dataclass(frozen=True)
class Trajectory:
    """One episode on the target.

    Attributes:
        observations: ``[T + 1, obs_dim]`` (the reset observation, then one per step).
        actions: ``[T, act_dim]`` as sent to the system.
        rewards: ``[T]`` (NaN where the real system has no reward signal).
        timestamps: ``[T + 1]`` seconds since the episode started.
        infos: one JSON-able mapping per step.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    timestamps: np.ndarray
    infos: tuple[Mapping[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        t = self.actions.shape[0]
        if self.observations.shape[0] != t + 1 or self.rewards.shape[0] != t:
            raise TargetError(
                f"inconsistent trajectory: {self.observations.shape[0]} observations, "
                f"{t} actions, {self.rewards.shape[0]} rewards (need T + 1, T, T)"
            )
        if self.timestamps.shape[0] != t + 1:
            raise TargetError(f"need {t + 1} timestamps, got {self.timestamps.shape[0]}")

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def episode_return(self) -> float:
        return float(np.nansum(self.rewards))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the documented ``.npz`` format: arrays ``observations`` ``[T+1, d_obs]``,
        ``actions`` ``[T, d_act]``, ``rewards`` ``[T]``, ``timestamps`` ``[T+1]`` (float64), and
        ``meta``, a JSON string ``{"format": 1, "infos": [...]}``. Atomic."""
        p = Path(path)
        meta = json.dumps({"format": TRAJECTORY_FORMAT, "infos": [dict(i) for i in self.infos]})
        buf = io.BytesIO()
        np.savez(
            buf,
            observations=self.observations,
            actions=self.actions,
            rewards=self.rewards,
            timestamps=self.timestamps,
            meta=np.array(meta),
        )
        atomic_write_bytes(p, buf.getvalue())
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trajectory:
        """Read a file written by :meth:`save` (or by hand in the same format)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: np.asarray(data[k], dtype=np.float64) for k in
                          ("observations", "actions", "rewards", "timestamps")}  # fmt: skip
                meta = json.loads(str(data["meta"])) if "meta" in data else {}
        except FileNotFoundError:
            raise TargetError(f"{path}: no such trajectory file") from None
        except (OSError, ValueError, KeyError) as e:
            raise TargetError(f"{path}: not a trajectory file ({e})") from None
        if int(meta.get("format", TRAJECTORY_FORMAT)) > TRAJECTORY_FORMAT:
            raise TargetError(
                f"{path}: trajectory format {meta['format']} is newer than this domrand"
            )
        obs = arrays["observations"]
        acts = arrays["actions"]
        return cls(
            obs if obs.ndim == 2 else obs[:, None],
            acts if acts.ndim == 2 else acts[:, None],
            arrays["rewards"],
            arrays["timestamps"],
            tuple(meta.get("infos", ())),
        )


class TargetDomain(ABC):
    """A system real rollouts come from. Subclasses implement :meth:`_episode`."""

    def __init__(self, observation_space: gym.spaces.Box, action_space: gym.spaces.Box) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.rollouts_used = 0
        self.steps_used = 0

    def check_compatible(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        """Raise :class:`TargetError` if a policy for these spaces cannot run on this target."""
        for what, mine, theirs in (
            ("observation", self.observation_space, observation_space),
            ("action", self.action_space, action_space),
        ):
            if getattr(mine, "shape", None) != getattr(theirs, "shape", None):
                raise TargetError(
                    f"target {what} space {mine} does not match the simulator's {theirs}"
                )

    def recipe(self) -> SimulatedTargetRecipe | None:
        """How to build a copy of this target elsewhere (a rollout-backend worker) under
        another seed, or ``None`` when the target exists only here (a robot, a recording)."""
        return None

    def rollout(self, policy: Policy, n_episodes: int) -> list[Trajectory]:
        """Run ``policy`` for ``n_episodes`` episodes on the target; counted in rollouts_used."""
        if n_episodes < 1:
            raise TargetError(f"n_episodes must be >= 1, got {n_episodes}")
        out = []
        for _ in range(n_episodes):
            traj = self._episode(policy)
            self.rollouts_used += 1
            self.steps_used += len(traj)
            out.append(traj)
        return out

    @abstractmethod
    def _episode(self, policy: Policy) -> Trajectory:
        """One episode."""


class SimulatedTarget(TargetDomain):
    """A domrand env pinned to a hidden reality (a shipped reality name or a domain file).

    The reality's values never leave this object: the ``domain`` entry is removed from infos.
    """

    def __init__(
        self,
        env_id: str,
        *,
        reality: str | None = None,
        domain: Mapping[str, Any] | str | os.PathLike | None = None,
        seed: int = 0,
        max_steps: int | None = None,
    ) -> None:
        import domrand

        if (reality is None) == (domain is None):
            raise TargetError("give exactly one of reality= or domain=")
        self._env = domrand.make(env_id, reality=reality, domain=domain, seed=seed)
        super().__init__(self._env.observation_space, self._env.action_space)  # type: ignore[arg-type]
        self.env_id = env_id
        self.max_steps = max_steps
        self._reality = reality
        # the pinned values themselves (not a path), so a copy can be built on another node
        self._domain: dict[str, Any] | None = None
        if isinstance(domain, Mapping):
            self._domain = dict(domain)
        elif domain is not None:
            from domrand.registry import knobs_for
            from domrand.spec import load_domain

            self._domain = dict(load_domain(domain, knobs_for(env_id)))

    def recipe(self) -> SimulatedTargetRecipe:
        return SimulatedTargetRecipe(self.env_id, self._reality, self._domain, self.max_steps)

    def _episode(self, policy: Policy) -> Trajectory:
        obs, _ = self._env.reset()
        policy.reset()
        act = _actor(policy)
        observations, actions, rewards, infos = [np.asarray(obs, np.float64)], [], [], []
        done, t = False, 0
        while not done and (self.max_steps is None or t < self.max_steps):
            previous = rewards[-1] if rewards else None
            action = np.asarray(act(obs, previous), dtype=np.float64).reshape(
                self.action_space.shape
            )
            obs, reward, terminated, truncated, info = self._env.step(action.astype(np.float32))
            observations.append(np.asarray(obs, np.float64))
            actions.append(action)
            rewards.append(float(reward))
            infos.append({k: v for k, v in info.items() if k != "domain" and _jsonable(v)})
            done = terminated or truncated
            t += 1
        period = float(getattr(self._env.unwrapped, "control_period", 0.0))
        return Trajectory(
            np.stack(observations),
            np.stack(actions) if actions else np.zeros((0, *self.action_space.shape)),
            np.asarray(rewards, dtype=np.float64),
            np.arange(len(observations), dtype=np.float64) * period,
            tuple(infos),
        )

    def close(self) -> None:
        self._env.close()


@dataclass(frozen=True)
class SimulatedTargetRecipe:
    """A picklable description of a :class:`SimulatedTarget` (the reality stays inside)."""

    env_id: str
    reality: str | None
    domain: Mapping[str, Any] | None
    max_steps: int | None

    def build(self, seed: int) -> SimulatedTarget:
        """The target, its first episode reset with ``seed``."""
        return SimulatedTarget(
            self.env_id,
            reality=self.reality,
            domain=None if self.domain is None else dict(self.domain),
            seed=seed,
            max_steps=self.max_steps,
        )


def _jsonable(v: Any) -> bool:
    return isinstance(v, (bool, int, float, str)) or v is None


class RecordedTarget(TargetDomain):
    """Trajectories recorded on hardware: every ``*.npz`` in a directory, served in name order.

    ``rollout`` cannot run a new policy on a recording: it serves the next recorded episodes
    (cycling through them) whatever the policy, and counts them. Use it for SimOpt with logs of
    the policy being refined, recorded in the format of :meth:`Trajectory.save`.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        folder = Path(directory)
        if not folder.is_dir():
            raise TargetError(f"{folder}: no such recording directory")
        files = sorted(folder.glob("*.npz"))
        if not files:
            raise TargetError(f"{folder}: the recording is empty (no *.npz trajectory files)")
        self.trajectories = [Trajectory.load(f) for f in files]
        if any(len(t) == 0 for t in self.trajectories):
            raise TargetError(f"{folder}: a recorded trajectory has no steps")
        dims = {(t.observations.shape[1], t.actions.shape[1]) for t in self.trajectories}
        if len(dims) != 1:
            raise TargetError(f"{folder}: trajectories disagree on observation/action sizes {dims}")
        d_obs, d_act = dims.pop()
        obs_space = gym.spaces.Box(-np.inf, np.inf, (d_obs,), np.float32)
        act_space = gym.spaces.Box(-np.inf, np.inf, (d_act,), np.float32)
        super().__init__(obs_space, act_space)
        self._next = 0

    def _episode(self, policy: Policy) -> Trajectory:
        traj = self.trajectories[self._next % len(self.trajectories)]
        self._next += 1
        return traj


class RobotTarget(TargetDomain):
    """Subclass to drive a real robot: implement the four hooks; the loop keeps the rate.

    Hooks: :meth:`reset_robot` (bring the robot to its start state, return the first
    observation), :meth:`read_observation`, :meth:`send_action`, :meth:`episode_done`.
    ``control_period`` is in seconds; overruns are counted in ``overruns``.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        action_space: gym.spaces.Box,
        control_period: float,
        max_steps: int,
        reward_fn: Any = None,
    ) -> None:
        super().__init__(observation_space, action_space)
        if control_period <= 0 or max_steps < 1:
            raise TargetError("control_period must be > 0 and max_steps >= 1")
        self.control_period = control_period
        self.max_steps = max_steps
        self.reward_fn = reward_fn
        self.overruns = 0

    @abstractmethod
    def reset_robot(self) -> np.ndarray:
        """Bring the robot to its start state; return the first observation."""

    @abstractmethod
    def read_observation(self) -> np.ndarray:
        """Read the sensors now."""

    @abstractmethod
    def send_action(self, action: np.ndarray) -> None:
        """Send one command."""

    def episode_done(self, obs: np.ndarray, t: int) -> bool:
        """Stop early (e.g. a safety limit); the default runs ``max_steps`` steps."""
        return False

    def _episode(self, policy: Policy) -> Trajectory:
        obs = np.asarray(self.reset_robot(), dtype=np.float64)
        policy.reset()
        act = _actor(policy)
        start = time.perf_counter()
        observations, actions, rewards, stamps = [obs], [], [], [0.0]
        next_tick = start
        for t in range(self.max_steps):
            previous = rewards[-1] if rewards and math.isfinite(rewards[-1]) else None
            action = np.asarray(act(obs.astype(np.float32), previous), dtype=np.float64)
            self.send_action(action)
            next_tick += self.control_period
            delay = next_tick - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                self.overruns += 1
                next_tick = time.perf_counter()
            obs = np.asarray(self.read_observation(), dtype=np.float64)
            observations.append(obs)
            actions.append(action)
            stamps.append(time.perf_counter() - start)
            r = self.reward_fn(obs, action) if self.reward_fn is not None else float("nan")
            rewards.append(float(r))
            if self.episode_done(obs, t + 1):
                break
        return Trajectory(
            np.stack(observations),
            np.stack(actions),
            np.asarray(rewards),
            np.asarray(stamps),
            tuple({} for _ in actions),
        )

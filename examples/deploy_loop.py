"""Run an exported domrand policy in a fixed-rate control loop against a robot.

The loop needs only ``domrand.policies.deploy`` (numpy + onnxruntime; or that one file copied to
the robot) and an object with two methods, ``read_observation()`` and ``send_action(action)``:
your robot driver. ``SimulatedRobot`` below stands in for one so the example runs anywhere; it is
the only part that needs the training stack (pybullet, gymnasium).

    python examples/deploy_loop.py --policy policy.onnx   # from `domrand export RUN_DIR`
    python examples/deploy_loop.py                        # exports an untrained demo policy

Timing: every tick starts at ``t0 + k * period`` (``period`` = the policy's control period). When
a tick overruns (read + act + send took longer than the period), the overrun is counted and the
missed ticks are skipped rather than run back to back, so the robot never receives a burst of
stale commands. ``time.sleep`` overshoots by ~0.1 ms on Linux, fine at 50 Hz; a kHz loop wants a
real-time scheduler (``chrt``) and a short busy-wait before each deadline.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

import numpy as np

from domrand.policies.deploy import load_exported


class Robot(Protocol):
    """What the loop needs from a robot driver (implement it for your hardware)."""

    def read_observation(self) -> np.ndarray:
        """The latest observation, in the units and order the policy was trained with."""
        ...

    def send_action(self, action: np.ndarray) -> None:
        """Apply ``action`` (already clipped to the policy's action bounds)."""
        ...


class Policy(Protocol):
    rl2: bool

    def act(self, obs: Any, reward: float | None = None) -> np.ndarray: ...


@dataclass
class LoopStats:
    steps: int = 0
    overruns: int = 0  #: ticks whose read + act + send took longer than the period
    missed_ticks: int = 0  #: ticks skipped after overruns
    worst_step_s: float = 0.0  #: longest read + act + send
    total_step_s: float = 0.0

    @property
    def mean_step_s(self) -> float:
        return self.total_step_s / max(self.steps, 1)


def run_control_loop(
    policy: Policy,
    robot: Robot,
    *,
    period: float,
    max_steps: int | None = None,
    reward_fn: Callable[[], float] | None = None,
    stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> LoopStats:
    """Read, act and send once per ``period`` seconds until ``max_steps`` or ``stop()``.

    Args:
        reward_fn: the reward of the last step, for RL^2 policies (computed from your sensors
            as the training env computed it).
        stop: checked before every tick (episode over, e-stop, operator request...).
    """
    if policy.rl2 and reward_fn is None:
        raise ValueError("this policy takes the previous reward (RL^2): pass reward_fn")
    stats = LoopStats()
    next_tick = clock()
    while max_steps is None or stats.steps < max_steps:
        if stop is not None and stop():
            break
        started = clock()
        obs = robot.read_observation()
        action = policy.act(obs, reward=reward_fn() if reward_fn is not None else None)
        robot.send_action(action)
        now = clock()
        stats.steps += 1
        stats.worst_step_s = max(stats.worst_step_s, now - started)
        stats.total_step_s += now - started
        if max_steps is not None and stats.steps >= max_steps:
            break
        next_tick += period
        if now > next_tick:  # overran: skip the ticks already missed, keep the phase
            missed = math.floor((now - next_tick) / period) + 1
            stats.overruns += 1
            stats.missed_ticks += missed
            next_tick += missed * period
        sleep(max(0.0, next_tick - clock()))
    return stats


class SimulatedRobot:
    """A ``Robot`` backed by a randomized domrand env (a stand-in for real hardware)."""

    def __init__(self, env_id: str, seed: int) -> None:
        import domrand  # the training stack: only the simulated robot needs it

        spec = domrand.default_spec_path(env_id)
        self.env = domrand.make(env_id, spec=spec, seed=seed)
        self.obs: np.ndarray = np.zeros(self.env.observation_space.shape, np.float32)
        self.reward, self.episode_return, self.done = 0.0, 0.0, False

    def start_episode(self) -> None:
        self.obs, _ = self.env.reset()
        self.reward, self.episode_return, self.done = 0.0, 0.0, False

    def read_observation(self) -> np.ndarray:
        return self.obs

    def send_action(self, action: np.ndarray) -> None:
        self.obs, reward, terminated, truncated, _ = self.env.step(action)
        self.reward = float(reward)
        self.episode_return += self.reward
        self.done = bool(terminated or truncated)

    def last_reward(self) -> float:
        return self.reward

    def close(self) -> None:
        self.env.close()


def export_demo_policy(folder: Path) -> Path:
    """An *untrained* LSTM policy for CartPole, exported (so the example runs without a run)."""
    import torch

    from domrand.policies.export import export_onnx
    from domrand.policies.networks import NetConfig, build_policy

    cfg = NetConfig(obs_dim=4, act_dim=1, act_low=(-1.0,), act_high=(1.0,))
    info = SimpleNamespace(  # what checkpoint.RunInfo would say about a trained run
        env_id="domrand/CartPole-v0",
        net_config=cfg,
        spec=None,
        control_period=0.02,
        obs_low=[-math.inf] * 4,
        obs_high=[math.inf] * 4,
        act_low=[-1.0],
        act_high=[1.0],
        env_steps=0,
        seed=0,
        domrand_version="demo",
    )
    policy = build_policy(info.net_config, torch.Generator().manual_seed(0))
    return export_onnx(policy, info, folder / "demo_policy.onnx")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", help="an exported .onnx policy (default: an untrained demo)")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="max steps per episode")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.policy) if args.policy else export_demo_policy(Path(tmp))
        policy = load_exported(path)
        period = policy.control_period
        print(f"{path.name}: {policy.metadata['env_id']}, control period {period * 1e3:g} ms")
        robot = SimulatedRobot(policy.metadata["env_id"], seed=args.seed)
        try:
            for episode in range(1, args.episodes + 1):
                robot.start_episode()
                policy.reset()  # a new episode: zero the LSTM state and previous action/reward
                stats = run_control_loop(
                    policy,
                    robot,
                    period=period,
                    max_steps=args.steps,
                    reward_fn=robot.last_reward,
                    stop=lambda: robot.done,
                )
                print(
                    f"episode {episode}: {stats.steps} steps, return {robot.episode_return:.0f}, "
                    f"step time mean {stats.mean_step_s * 1e6:.0f} us / worst "
                    f"{stats.worst_step_s * 1e6:.0f} us, overruns {stats.overruns}"
                )
        finally:
            robot.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

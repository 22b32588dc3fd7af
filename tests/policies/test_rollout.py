"""Acting: physics faults, episode bookkeeping and the batched-info helper."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from domrand.errors import DomrandError
from domrand.guided import Guide, SpecSource
from domrand.policies.buffer import Rollout
from domrand.policies.networks import NetConfig, build_policy
from domrand.policies.rollout import Collector, env_info


class BreaksAtStep3(gym.Env[np.ndarray, np.ndarray]):
    """Episode 1 ends in a physics fault at step 3; later episodes end normally at step 5."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self) -> None:
        self.episode = 0
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple:
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return np.zeros(4, np.float32), {"domain": {"pole.mass": 0.1 * self.episode}}

    def step(self, action: np.ndarray) -> tuple:
        self.t += 1
        if self.episode == 1 and self.t == 3:
            return np.zeros(4, np.float32), 0.0, True, False, {"physics_fault": True}
        return np.ones(4, np.float32), 1.0, self.t == 5, False, {}


class Recorder(Guide):
    def __init__(self) -> None:
        self.seen: list[tuple[int, dict, float, int, dict]] = []

    def training_spec(self) -> None:
        return None

    def observe_episode(self, i: int, d: dict, r: float, n: int, info: Any) -> None:
        self.seen.append((i, d, r, n, dict(info)))


def test_physics_faults_are_flagged_and_bootstrapped_from_the_last_good_state() -> None:
    envs = gym.vector.SyncVectorEnv(
        [BreaksAtStep3], autoreset_mode=gym.vector.AutoresetMode.DISABLED
    )
    policy = build_policy(NetConfig(4, 1, hidden=4, act_low=(-1.0,), act_high=(1.0,)))
    guide = Recorder()
    collector = Collector(envs, policy, guide, torch.Generator().manual_seed(0))
    collector.reset([0])
    buf = Rollout(9, 1, 4, 1, 4)
    episodes = collector.collect(buf)
    envs.close()
    assert [(e.fault, e.success, e.length, e.ret) for e in episodes] == [
        (True, False, 3, 2.0),
        (False, False, 5, 5.0),  # terminated (not a time limit): no success
    ]
    assert episodes[0].domain == {"pole.mass": 0.1} and episodes[1].domain["pole.mass"] == 0.2
    assert guide.seen[0][4]["physics_fault"] is True and guide.seen[0][4]["success"] is False
    assert buf.ended[:, 0].tolist() == [False, False, True, False, False, False, False, True, False]
    # The fault (t=2) is no terminal state of the task: worth V(last good state), so breaking
    # the simulator is no free exit; the true terminal (t=7) is worth 0.
    assert float(buf.values[2, 0]) != 0.0
    assert float(buf.final_values[2, 0]) == float(buf.values[2, 0])
    others = [t for t in range(9) if t != 2]
    assert float(buf.final_values[others, 0].abs().sum()) == 0.0
    assert buf.starts[:, 0].tolist() == [True, False, False, True, False, False, False, False, True]


def test_env_info_extracts_one_env_from_batched_infos() -> None:
    infos = {
        "physics_fault": np.array([False, True]),
        "_physics_fault": np.array([False, True]),
        "domain": {"m": np.array([0.1, 0.2]), "_m": np.array([True, True])},
        "_domain": np.array([True, True]),
    }
    assert env_info(infos, 0) == {"domain": {"m": 0.1}}
    assert env_info(infos, 1) == {"physics_fault": True, "domain": {"m": 0.2}}
    assert isinstance(env_info(infos, 1)["domain"]["m"], float)


def test_a_guide_returning_the_wrong_number_of_assignments_is_an_error() -> None:
    class Bad(SpecSource):
        def assignments(self, num_envs: int) -> list:
            return [None]

    envs = gym.vector.SyncVectorEnv(
        [BreaksAtStep3, BreaksAtStep3], autoreset_mode=gym.vector.AutoresetMode.DISABLED
    )
    policy = build_policy(NetConfig(4, 1, hidden=4, act_low=(-1.0,), act_high=(1.0,)))
    collector = Collector(envs, policy, Bad(None), torch.Generator())
    try:
        with pytest.raises(DomrandError, match="1 entries for 2 envs"):
            collector.reset([0, 1])
    finally:
        envs.close()

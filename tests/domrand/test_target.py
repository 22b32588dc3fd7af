"""Targets: simulated (hidden reality), recorded (files), robot adapter; rollouts are counted."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from domrand.policies.controllers import CartPoleLQR
from domrand.target import (
    RecordedTarget,
    RobotTarget,
    SimulatedTarget,
    TargetError,
    Trajectory,
)

ENV = "domrand/CartPole-v0"


class LQRPolicy:
    def __init__(self) -> None:
        self.c = CartPoleLQR()
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.c(obs)


def test_simulated_target_counts_rollouts_and_hides_the_reality() -> None:
    target = SimulatedTarget(ENV, reality="heavy_pole", seed=0, max_steps=50)
    policy = LQRPolicy()
    trajs = target.rollout(policy, 3)
    assert target.rollouts_used == 3 and policy.resets == 3
    assert target.steps_used == sum(len(t) for t in trajs) == 150
    for t in trajs:
        assert t.observations.shape == (51, 4) and t.actions.shape == (50, 1)
        assert all("domain" not in i for i in t.infos)
        assert np.allclose(np.diff(t.timestamps), 0.02)
    target.close()


def test_simulated_target_dynamics_differ_from_nominal() -> None:
    a = SimulatedTarget(ENV, reality="heavy_pole", seed=0, max_steps=30).rollout(LQRPolicy(), 1)
    b = SimulatedTarget(ENV, domain={}, seed=0, max_steps=30).rollout(LQRPolicy(), 1)
    assert not np.allclose(a[0].observations, b[0].observations)


def test_trajectory_round_trip(tmp_path) -> None:
    t = SimulatedTarget(ENV, reality="laggy", seed=1, max_steps=20).rollout(LQRPolicy(), 1)[0]
    path = t.save(tmp_path / "ep0.npz")
    back = Trajectory.load(path)
    for name in ("observations", "actions", "rewards", "timestamps"):
        assert np.array_equal(getattr(back, name), getattr(t, name))
    assert back.infos == tuple(dict(i) for i in t.infos)


def test_recorded_target_serves_files_in_order_and_counts(tmp_path) -> None:
    sim = SimulatedTarget(ENV, reality="laggy", seed=1, max_steps=10)
    trajs = sim.rollout(LQRPolicy(), 2)
    for i, t in enumerate(trajs):
        t.save(tmp_path / f"ep{i}.npz")
    rec = RecordedTarget(tmp_path)
    got = rec.rollout(LQRPolicy(), 3)
    assert rec.rollouts_used == 3
    assert np.array_equal(got[0].observations, trajs[0].observations)
    assert np.array_equal(got[2].observations, trajs[0].observations)  # cycles
    rec.check_compatible(sim.observation_space, sim.action_space)


def test_recorded_target_bad_inputs(tmp_path) -> None:
    with pytest.raises(TargetError, match="empty"):
        RecordedTarget(tmp_path)
    with pytest.raises(TargetError, match="no such"):
        RecordedTarget(tmp_path / "missing")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(TargetError, match="not a trajectory"):
        RecordedTarget(tmp_path)


def test_mismatched_observation_space_is_a_clear_error(tmp_path) -> None:
    t = Trajectory(np.zeros((3, 6)), np.zeros((2, 1)), np.zeros(2), np.arange(3.0))
    t.save(tmp_path / "a.npz")
    rec = RecordedTarget(tmp_path)
    sim_obs = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    with pytest.raises(TargetError, match="observation space"):
        rec.check_compatible(sim_obs, gym.spaces.Box(-1, 1, (1,), np.float32))


def test_inconsistent_trajectory_is_rejected() -> None:
    with pytest.raises(TargetError, match="inconsistent"):
        Trajectory(np.zeros((3, 2)), np.zeros((3, 1)), np.zeros(3), np.arange(3.0))


class FakeRobot(RobotTarget):
    """A 1-D integrator standing in for hardware."""

    def __init__(self) -> None:
        box = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        super().__init__(box, gym.spaces.Box(-1, 1, (1,), np.float32), 0.001, 25,
                         reward_fn=lambda o, a: -abs(float(o[0])))  # fmt: skip
        self.x = 0.0
        self.sent: list[float] = []

    def reset_robot(self) -> np.ndarray:
        self.x = 1.0
        return np.array([self.x])

    def read_observation(self) -> np.ndarray:
        return np.array([self.x])

    def send_action(self, action: np.ndarray) -> None:
        self.sent.append(float(action[0]))
        self.x += 0.1 * float(action[0])


class Proportional:
    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.array([-float(obs[0])])


def test_robot_target_runs_the_loop_at_its_rate() -> None:
    robot = FakeRobot()
    (traj,) = robot.rollout(Proportional(), 1)
    assert len(traj) == 25 and len(robot.sent) == 25
    assert traj.observations[-1, 0] < traj.observations[0, 0]  # the controller converges
    assert traj.timestamps[-1] >= 25 * 0.001 * 0.9
    assert np.all(np.diff(traj.timestamps) > 0)
    assert traj.rewards[0] == pytest.approx(-abs(traj.observations[1, 0]))


def test_policies_that_take_a_reward_get_the_previous_one() -> None:
    class RewardSeeker(LQRPolicy):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[float | None] = []

        def act(self, obs: np.ndarray, reward: float | None = None) -> np.ndarray:
            self.seen.append(reward)
            return self.c(obs)

    policy = RewardSeeker()
    traj = SimulatedTarget(ENV, reality="heavy_pole", seed=0, max_steps=5).rollout(policy, 1)[0]
    assert policy.seen == [None, *traj.rewards[:-1].tolist()]

"""The closed-loop actor: acts like the evaluator, batches exactly, replays pre-drawn noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from domrand.errors import DomrandError
from domrand.guided.actor import Actor, EpisodePolicy
from domrand.policies.evaluate import evaluate
from domrand.policies.networks import NetConfig, build_policy
from domrand.target import SimulatedTarget

ENV = "domrand/CartPole-v0"


def _policy(rl2: bool = True) -> torch.nn.Module:
    net = NetConfig(4, 1, "lstm", hidden=16, rl2=rl2, act_low=(-1.0,), act_high=(1.0,))
    policy = build_policy(net, torch.Generator().manual_seed(0))
    with torch.no_grad():  # O(1) actions, so the pole does something interesting
        policy.actor.weight.mul_(300.0)
    return policy


def test_on_a_target_it_acts_exactly_like_the_evaluator() -> None:
    policy = _policy()
    seed = 11
    # evaluate() with one env seeds it with the first child of SeedSequence(seed)
    env_seed = int(np.random.SeedSequence(seed).spawn(1)[0].generate_state(1, np.uint32)[0])
    reference = evaluate(policy, ENV, domain={"pole.mass": 0.2}, episodes=1, seed=seed)
    target = SimulatedTarget(ENV, domain={"pole.mass": 0.2}, seed=env_seed)
    traj = target.rollout(EpisodePolicy(Actor(policy)), 1)[0]
    assert len(traj) == reference.lengths[0]
    assert traj.episode_return == pytest.approx(reference.returns[0])


def test_a_batch_acts_like_its_members_and_noise_replays() -> None:
    actor = Actor(_policy(), noise_std=0.5)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(20, 4))
    rewards = np.ones(20)
    noise = rng.standard_normal((20, 1))
    single = []
    actor.start(1, noise)
    for t in range(20):
        single.append(actor.step(obs[t][None], rewards[t : t + 1])[0])
    actor.start(3, noise)
    for t in range(20):
        batch = actor.step(np.repeat(obs[t][None], 3, 0), np.repeat(rewards[t], 3))
        np.testing.assert_allclose(batch, np.repeat(single[t][None], 3, 0), atol=1e-6)
    actor.start(1, None)  # no noise: a different, deterministic action
    assert not np.allclose(actor.step(obs[0][None], None)[0], single[0])
    assert torch.get_num_threads() >= 1  # the one-thread section restored the setting


def test_an_rl2_policy_needs_the_rewards() -> None:
    policy = EpisodePolicy(Actor(_policy(rl2=True)))
    policy.reset()
    policy.act(np.zeros(4))  # the first step needs no reward
    with pytest.raises(DomrandError, match="reward_fn"):
        policy.act(np.zeros(4))
    other = EpisodePolicy(Actor(_policy(rl2=False)))
    other.reset()
    for _ in range(3):
        other.act(np.zeros(4))

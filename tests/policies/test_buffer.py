"""Rollout storage, GAE with truncation bootstrapping, sequence minibatches and padding masks."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

import domrand
from domrand.guided import SpecSource
from domrand.policies.buffer import (
    RewardScaler,
    Rollout,
    compute_gae,
    make_sequences,
    masked_mean,
)
from domrand.policies.config import TrainConfig
from domrand.policies.networks import LSTMState, NetConfig, build_policy
from domrand.policies.ppo import ppo_losses
from domrand.policies.rollout import Collector

ENV_ID = "domrand/CartPole-v0"


# ---------------------------------------------------------------------- GAE
def test_gae_hand_computed_with_truncation_and_termination() -> None:
    gamma, lam = 0.9, 0.8
    # env 0: truncated (time limit) at t=1 with V(final obs) = 2.0, then a new episode
    # env 1: terminated at t=1 (true terminal: worth 0), then a new episode
    rewards = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    values = torch.tensor([[0.5, 0.5], [0.6, 0.6], [0.7, 0.7]])
    ended = torch.tensor([[False, False], [True, True], [False, False]])
    final_values = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    last = torch.tensor([0.8, 0.8])
    adv, ret = compute_gae(rewards, values, ended, final_values, last, gamma, lam)

    a2 = 1 + gamma * 0.8 - 0.7  # bootstrap from the value after the rollout
    a1_trunc = 1 + gamma * 2.0 - 0.6  # bootstrap from V(final obs); the lambda-chain stops
    a1_term = 1 - 0.6  # terminal: nothing follows
    a0_trunc = (1 + gamma * 0.6 - 0.5) + gamma * lam * a1_trunc
    a0_term = (1 + gamma * 0.6 - 0.5) + gamma * lam * a1_term
    expected = torch.tensor([[a0_trunc, a0_term], [a1_trunc, a1_term], [a2, a2]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)


def test_gae_lambda_one_is_the_discounted_return_minus_value() -> None:
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.1], [0.2], [0.3]])
    no = torch.zeros(3, 1, dtype=torch.bool)
    _adv, ret = compute_gae(rewards, values, no, torch.zeros(3, 1), torch.tensor([4.0]), 0.5, 1.0)
    g = 1 + 0.5 * (2 + 0.5 * (3 + 0.5 * 4))
    assert float(ret[0, 0]) == pytest.approx(g)


def test_reward_scaler_tracks_return_std_and_resets_at_episode_ends() -> None:
    scaler = RewardScaler(2, gamma=0.5)
    rewards = torch.ones(4, 2)
    ended = torch.zeros(4, 2, dtype=torch.bool)
    ended[1, 0] = True
    scaler.update(rewards, ended)
    # env 0 returns: 1, 1.5 | 1, 1.5 ; env 1: 1, 1.5, 1.75, 1.875
    rets = torch.tensor([1, 1.5, 1, 1.5, 1, 1.5, 1.75, 1.875], dtype=torch.float64)
    assert scaler.var == pytest.approx(float(rets.var(unbiased=False)), rel=1e-3)
    state = scaler.state_dict()
    other = RewardScaler(2, gamma=0.5)
    other.load_state_dict(state)
    assert other.scale == scaler.scale


# ---------------------------------------------------------------------- masks and sequences
def test_masked_mean_ignores_padding_even_nan() -> None:
    x = torch.tensor([1.0, 2.0, float("nan"), 1e9])
    mask = torch.tensor([True, True, False, False])
    assert float(masked_mean(x, mask)) == 1.5


def _filled_rollout(T: int, N: int, hidden: int) -> Rollout:
    g = torch.Generator().manual_seed(0)
    r = Rollout(T, N, 3, 1, hidden)
    for name in ("obs", "prev_action", "prev_reward", "h", "c", "actions", "values", "rewards"):
        t = getattr(r, name)
        t.copy_(torch.randn(t.shape, generator=g))
    r.logprobs.copy_(-torch.rand(r.logprobs.shape, generator=g))
    r.starts.copy_(torch.rand(T, N, generator=g) < 0.1)
    return r


def test_sequences_start_from_the_stored_states_and_pad_the_tail() -> None:
    T, N, L = 10, 3, 4  # 10 is not a multiple of 4: the last chunk of each env is padded
    r = _filled_rollout(T, N, hidden=5)
    adv, ret = torch.randn(T, N), torch.randn(T, N)
    seqs = make_sequences(r, adv, ret, L)
    assert seqs.obs.shape == (L, 3 * N, 3) and seqs.state0.h.shape == (1, 3 * N, 5)
    for k in range(3 * N):
        c, n = divmod(k, N)
        torch.testing.assert_close(seqs.state0.h[0, k], r.h[c * L, n])  # the stored state
        torch.testing.assert_close(seqs.state0.c[0, k], r.c[c * L, n])
        for i in range(L):
            t = c * L + i
            assert bool(seqs.mask[i, k]) == (t < T)
            if t < T:
                torch.testing.assert_close(seqs.obs[i, k], r.obs[t, n])
                assert bool(seqs.starts[i, k]) == bool(r.starts[t, n])
                assert float(seqs.advantages[i, k]) == float(adv[t, n])
    assert int(seqs.mask.sum()) == T * N
    # minibatches partition the chunks
    seen = torch.cat([mb.obs[0, :, 0] for mb in seqs.minibatches(2, torch.Generator())])
    assert sorted(seen.tolist()) == sorted(seqs.obs[0, :, 0].tolist())


def test_padding_is_excluded_from_the_losses_and_their_gradients() -> None:
    cfg = TrainConfig()
    policy = build_policy(NetConfig(3, 1, hidden=8, rl2=True, act_low=(-1.0,), act_high=(1.0,)))
    r = _filled_rollout(10, 2, hidden=8)
    seqs = make_sequences(r, torch.randn(10, 2), torch.randn(10, 2), 4)
    pad = ~seqs.mask
    assert pad.any()

    def loss_and_grads(fill: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
        parts = []
        for name, t in zip(seqs._fields, seqs):
            if name in ("state0", "mask"):
                parts.append(t)
                continue
            t = t.clone()
            t[pad] = fill  # garbage in every padded slot
            parts.append(t)
        policy.zero_grad()
        loss, _ = ppo_losses(policy, type(seqs)(*parts), cfg)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in policy.parameters()]

    l1, g1 = loss_and_grads(0.0)
    l2, g2 = loss_and_grads(1e4)
    torch.testing.assert_close(l1, l2, atol=0, rtol=0)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


# ---------------------------------------------------------------------- acting -> replay
@pytest.mark.parametrize("kind", ["lstm", "mlp"])
def test_update_replay_of_a_real_rollout_matches_acting_time_outputs(kind: str) -> None:
    """Collect on the real env (random-ish policy: many episode ends inside the chunks), cut into
    sequences, replay: log-probs and values equal those recorded when acting (ratio = 1)."""
    spec = domrand.load_spec(domrand.default_spec_path(ENV_ID), env=ENV_ID)
    envs = domrand.make_vec(
        ENV_ID, 3, spec=spec, seed=0, autoreset_mode=gym.vector.AutoresetMode.DISABLED
    )
    try:
        net = NetConfig(4, 1, kind=kind, hidden=16, rl2=True, act_low=(-1.0,), act_high=(1.0,))
        g = torch.Generator().manual_seed(0)
        policy = build_policy(net, g)
        collector = Collector(envs, policy, SpecSource(spec), g)
        collector.reset([1, 2, 3])
        hidden = policy.initial_state(1).h.shape[-1]
        buf = Rollout(70, 3, 4, 1, hidden)
        collector.collect(buf)
        episodes = collector.collect(buf)  # the second rollout starts from a carried state
    finally:
        envs.close()
    assert len(episodes) >= 3 and buf.starts[1:].any()
    if kind == "lstm":
        assert buf.h[0].abs().sum() > 0  # carried over from the first rollout
    seqs = make_sequences(buf, torch.zeros(70, 3), torch.zeros(70, 3), 16)
    with torch.no_grad():
        mean, value = policy.sequence(
            seqs.obs, seqs.prev_action, seqs.prev_reward, seqs.state0, seqs.starts
        )
        logp = policy.log_prob(mean, seqs.actions)
    m = seqs.mask
    torch.testing.assert_close(logp[m], seqs.logprobs[m], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(value[m], seqs.values[m], atol=1e-5, rtol=1e-5)


def test_truncated_episodes_are_bootstrapped_with_the_continuing_state() -> None:
    """A time-limit truncation stores V(final obs) computed with the LSTM state and RL^2 inputs
    the episode would have continued with; a termination stores 0."""
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.wrappers.TimeLimit(domrand.make(ENV_ID, seed=5).env, 7)],
        autoreset_mode=gym.vector.AutoresetMode.DISABLED,
    )
    try:
        net = NetConfig(4, 1, hidden=8, rl2=True, act_low=(-1.0,), act_high=(1.0,))
        g = torch.Generator().manual_seed(0)
        policy = build_policy(net, g)
        with torch.no_grad():
            policy.critic.bias.fill_(3.0)  # a clearly non-zero value
        collector = Collector(envs, policy, SpecSource(None), g)
        collector.reset([5])
        buf = Rollout(10, 1, 4, 1, 8)
        episodes = collector.collect(buf)
    finally:
        envs.close()
    assert episodes and episodes[0].length == 7 and episodes[0].success
    assert bool(buf.ended[6, 0]) and bool(buf.starts[7, 0])
    assert float(buf.final_values[6, 0]) != 0.0
    assert float(buf.final_values[:6].abs().sum()) == 0.0
    # Recompute by hand: replay the (deterministic) env to its final observation, and continue
    # the recurrence from the state after step 6 with that step's action and reward as inputs.
    env = gym.wrappers.TimeLimit(domrand.make(ENV_ID, seed=5).env, 7)
    env.reset(seed=5)
    for t in range(7):
        final_obs, *_ = env.step(policy.clip_action(buf.actions[t]).numpy())
    env.close()
    with torch.no_grad():
        state = LSTMState(buf.h[6][None], buf.c[6][None])
        _, _, s_after = policy.step(
            buf.obs[6], buf.prev_action[6], buf.prev_reward[6], state, buf.starts[6]
        )
        _, v_final, _ = policy.step(
            torch.as_tensor(final_obs)[None],
            policy.clip_action(buf.actions[6]),
            buf.rewards[6],
            s_after,
            torch.zeros(1, dtype=torch.bool),
        )
    torch.testing.assert_close(buf.final_values[6], v_final)

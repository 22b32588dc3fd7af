"""Actor-critic networks: LSTM masking when acting and in replays, RL^2 inputs, bounds, norm."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from domrand.errors import ConfigError
from domrand.policies.networks import LSTMState, NetConfig, RunningNorm, build_policy

TOL = {"atol": 1e-5, "rtol": 1e-5}


def _policy(kind: str = "lstm", rl2: bool = True, hidden: int = 32, seed: int = 0):  # type: ignore[no-untyped-def]
    cfg = NetConfig(
        3, 2, kind=kind, hidden=hidden, rl2=rl2, act_low=(-1.0, 0.0), act_high=(1.0, 4.0)
    )
    policy = build_policy(cfg, torch.Generator().manual_seed(seed))
    # non-trivial normalization statistics, so the replay also checks normalization
    policy.obs_norm.update(torch.randn(64, 3, generator=torch.Generator().manual_seed(1)) * 3 + 1)
    return policy


def _random_inputs(T: int, B: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(T, B, 3, generator=g)
    prev_a = torch.randn(T, B, 2, generator=g) * 3  # partly outside the bounds: clipped inside
    prev_r = torch.randn(T, B, generator=g)
    starts = torch.rand(T, B, generator=g) < 0.15
    return obs, prev_a, prev_r, starts


@pytest.mark.parametrize("kind", ["lstm", "mlp"])
def test_sequence_replay_from_stored_state_reproduces_acting_outputs(kind: str) -> None:
    policy = _policy(kind)
    T, B = 40, 5
    obs, prev_a, prev_r, starts = _random_inputs(T, B)
    starts[0, 1] = True  # a column that starts an episode at its first step
    g = torch.Generator().manual_seed(2)
    state = policy.initial_state(B)
    if kind == "lstm":  # a non-zero carried state, as in the middle of a rollout
        state = LSTMState(
            torch.randn(state.h.shape, generator=g), torch.randn(state.c.shape, generator=g)
        )
    state0 = state
    means, values, stored = [], [], []
    with torch.no_grad():
        for t in range(T):
            stored.append(state)
            m, v, state = policy.step(obs[t], prev_a[t], prev_r[t], state, starts[t])
            means.append(m)
            values.append(v)
        # whole sequence from the initial state
        m_seq, v_seq = policy.sequence(obs, prev_a, prev_r, state0, starts)
        torch.testing.assert_close(m_seq, torch.stack(means), **TOL)
        torch.testing.assert_close(v_seq, torch.stack(values), **TOL)
        # a chunk starting mid-rollout, from the state stored at its first step
        t0 = 17
        m_chunk, v_chunk = policy.sequence(
            obs[t0:], prev_a[t0:], prev_r[t0:], stored[t0], starts[t0:]
        )
        torch.testing.assert_close(m_chunk, torch.stack(means[t0:]), **TOL)
        torch.testing.assert_close(v_chunk, torch.stack(values[t0:]), **TOL)


def test_lstm_state_is_reset_at_episode_start_when_acting() -> None:
    policy = _policy()
    obs, prev_a, prev_r, _ = _random_inputs(1, 4)
    zero = policy.initial_state(4)
    g = torch.Generator().manual_seed(3)
    junk = LSTMState(torch.randn(zero.h.shape, generator=g), torch.randn(zero.c.shape, generator=g))
    start = torch.ones(4, dtype=torch.bool)
    with torch.no_grad():
        m_junk, v_junk, s_junk = policy.step(obs[0], prev_a[0], prev_r[0], junk, start)
        m_zero, v_zero, s_zero = policy.step(obs[0], prev_a[0] * 0, prev_r[0] * 0, zero, start)
        m_cont, _, _ = policy.step(obs[0], prev_a[0], prev_r[0], junk, ~start)
    # at an episode start neither the carried state nor the RL^2 inputs matter
    torch.testing.assert_close(m_junk, m_zero, atol=0, rtol=0)
    torch.testing.assert_close(v_junk, v_zero, atol=0, rtol=0)
    torch.testing.assert_close(s_junk.h, s_zero.h, atol=0, rtol=0)
    assert not torch.allclose(m_cont, m_junk)


def test_lstm_state_is_reset_at_episode_starts_inside_a_replayed_sequence() -> None:
    policy = _policy()
    T, B = 12, 2
    obs, prev_a, prev_r, _ = _random_inputs(T, B)
    starts = torch.zeros(T, B, dtype=torch.bool)
    starts[5, 0] = True
    g = torch.Generator().manual_seed(4)
    s0 = policy.initial_state(B)
    s0 = LSTMState(torch.randn(s0.h.shape, generator=g), torch.randn(s0.c.shape, generator=g))
    with torch.no_grad():
        m, _ = policy.sequence(obs, prev_a, prev_r, s0, starts)
        # column 0 from step 5 on is a fresh episode: equal to replaying it alone from zeros
        fresh, _ = policy.sequence(
            obs[5:, :1], prev_a[5:, :1], prev_r[5:, :1], policy.initial_state(1), starts[5:, :1]
        )
    torch.testing.assert_close(m[5:, :1], fresh, **TOL)


def test_actions_respect_asymmetric_bounds_and_log_prob_is_exact() -> None:
    policy = _policy()
    torch.testing.assert_close(policy.act_center, torch.tensor([0.0, 2.0]))
    torch.testing.assert_close(policy.act_scale, torch.tensor([1.0, 2.0]))
    mean = torch.tensor([[0.3, 5.0], [-2.0, 1.0]])
    action, logp = policy.sample(mean, torch.Generator().manual_seed(0))
    ref = torch.distributions.Normal(mean, policy.action_std()).log_prob(action).sum(-1)
    torch.testing.assert_close(logp, ref)
    clipped = policy.clip_action(action * 10)
    assert (clipped[:, 0].abs() <= 1).all()
    assert ((clipped[:, 1] >= 0) & (clipped[:, 1] <= 4)).all()
    torch.testing.assert_close(
        policy.deterministic_action(mean), torch.tensor([[0.3, 4.0], [-1.0, 1.0]])
    )
    ent = torch.distributions.Normal(torch.zeros(2), policy.action_std()).entropy().sum()
    torch.testing.assert_close(policy.entropy(), ent)


def test_unbounded_actions_are_not_scaled() -> None:
    cfg = NetConfig(2, 1, hidden=8, act_low=(-math.inf,), act_high=(math.inf,))
    policy = build_policy(cfg)
    assert float(policy.act_scale) == 1.0 and float(policy.act_center) == 0.0
    assert float(policy.clip_action(torch.tensor([1e6]))) == 1e6


def test_running_norm_matches_numpy_over_batches() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 2, (100, 4)), rng.normal(-1, 5, (37, 4))
    norm = RunningNorm(4)
    norm.update(torch.tensor(a))
    norm.update(torch.tensor(b))
    both = np.concatenate([a, b])
    np.testing.assert_allclose(norm.mean.numpy(), both.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.var.numpy(), both.var(0), rtol=1e-6)
    out = norm(torch.tensor(both, dtype=torch.float32))
    assert out.abs().max() <= norm.clip
    # the statistics are buffers: saved and restored with the weights
    assert {"obs_norm.mean", "obs_norm.var", "obs_norm.count"} <= set(_policy().state_dict())


def test_init_is_seeded_and_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    p1, p2 = _policy(seed=7), _policy(seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)
    for (k, v1), v2 in zip(p1.state_dict().items(), p2.state_dict().values()):
        assert torch.equal(v1, v2), k
    assert not torch.equal(_policy(seed=8).lstm.weight_hh_l0, p1.lstm.weight_hh_l0)


def test_init_does_not_depend_on_the_thread_count() -> None:
    # the trainer's main process runs with 1 or 2 torch threads depending on the backend; a QR
    # decomposition (the orthogonal init) on 2 threads differed in the last bits (Pusher-sized)
    cfg = NetConfig(15, 2, hidden=64, rl2=True, act_low=(-1.0, -1.0), act_high=(1.0, 1.0))
    threads = torch.get_num_threads()
    built = []
    try:
        for n in (1, 2, 4):
            torch.set_num_threads(n)
            built.append(build_policy(cfg, torch.Generator().manual_seed(0)).state_dict())
            assert torch.get_num_threads() == n  # the caller's setting is restored
    finally:
        torch.set_num_threads(threads)
    for other in built[1:]:
        for k, v in built[0].items():
            assert torch.equal(v, other[k]), k


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"kind": "gru"}, "kind"),
        ({"hidden": 0}, "hidden"),
        ({"act_low": (-1.0,), "act_high": None}, "both"),
        ({"act_low": (1.0,), "act_high": (-1.0,)}, "below"),
        ({"act_low": (-1.0, 0.0), "act_high": (1.0, 1.0)}, "act_dim"),
    ],
)
def test_net_config_rejects_bad_values(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        NetConfig(3, 1, **kwargs)


def test_net_config_round_trips_through_a_plain_dict() -> None:
    cfg = NetConfig(3, 2, hidden=16, rl2=True, act_low=(-1.0, -math.inf), act_high=(1.0, math.inf))
    d = cfg.to_dict()
    assert isinstance(d["act_low"], list)
    assert NetConfig.from_dict(d) == cfg
    with pytest.raises(ConfigError, match="unknown"):
        NetConfig.from_dict({**d, "hiden": 3})

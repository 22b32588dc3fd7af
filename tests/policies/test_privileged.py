"""The privileged critic: domain features, the network's value term, acting, training, export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import domrand
from domrand.errors import ConfigError, DomrandError
from domrand.guided import SpecSource
from domrand.policies.buffer import Rollout
from domrand.policies.checkpoint import load_policy
from domrand.policies.export import export_onnx, export_torchscript
from domrand.policies.networks import NetConfig, build_policy
from domrand.policies.privileged import DomainFeatures, critic_knobs
from domrand.policies.rollout import Collector
from domrand.policies.train import train
from domrand.registry import knobs_for

from .conftest import CARTPOLE, StandInInfo, make_tiny_config
from .test_rollout import BreaksAtStep3

PUSHER = "domrand/Pusher-v0"


def _net(knobs: tuple[str, ...] = ("pole.mass", "cart.mass"), **kw: Any) -> NetConfig:
    return NetConfig(4, 1, hidden=8, rl2=True, act_low=(-1.0,), act_high=(1.0,),
                     critic_knobs=knobs, **kw)  # fmt: skip


def test_the_critic_sees_the_knobs_drawn_once_per_episode() -> None:
    spec = domrand.load_spec(domrand.default_spec_path(PUSHER), env=PUSHER)
    names = critic_knobs(spec)
    assert "puck.mass" in names and "action.delay" in names
    assert "obs.noise" not in names  # re-drawn every step: not one value per episode
    assert spec.step_periods() == {"obs.noise": 1}
    pinned = domrand.load_spec(
        {"env": CARTPOLE, "parameters": {"pole.mass": 0.2,
                                         "cart.mass": {"dist": "uniform", "low": 0.5, "high": 2}}},
        env=CARTPOLE,
    )  # fmt: skip
    assert critic_knobs(pinned) == ("cart.mass",)  # a constant says nothing
    assert critic_knobs(None) == ()


def test_features_are_offsets_from_the_nominal_values() -> None:
    knobs = knobs_for(CARTPOLE)
    f = DomainFeatures(("pole.mass", "cart.mass"), knobs)
    rows = f([{"pole.mass": 0.3, "cart.mass": knobs["cart.mass"].nominal * 2}, {}])
    assert rows.dtype == torch.float32 and rows.shape == (2, 2)
    torch.testing.assert_close(rows[0], torch.tensor([0.2, knobs["cart.mass"].nominal]))
    assert rows[1].tolist() == [0.0, 0.0]  # a knob the domain does not set is nominal
    assert f([]).shape == (0, 2)
    with pytest.raises(DomrandError, match=r"pole\.mas"):
        DomainFeatures(("pole.mas",), knobs)


def test_the_domain_moves_the_value_and_never_the_action() -> None:
    policy = build_policy(_net(), torch.Generator().manual_seed(0))
    policy.critic_norm.update(torch.randn(64, 2, generator=torch.Generator().manual_seed(1)))
    obs, a, r = torch.randn(3, 4), torch.zeros(3, 1), torch.zeros(3)
    start = torch.ones(3, dtype=torch.bool)
    state = policy.initial_state(3)
    priv = torch.tensor([[0.0, 0.0], [0.5, -1.0], [2.0, 3.0]])
    m0, v0, _ = policy.step(obs, a, r, state, start)
    m1, v1, _ = policy.step(obs, a, r, state, start, priv)
    torch.testing.assert_close(m0, m1)  # the actor never sees the domain
    assert (v1[1:] - v1[0]).abs().min() > 1e-4  # the privileged head does
    args = (obs[None], a[None], r[None], state, start[None], priv[None])
    seq_m, seq_v = policy.sequence(*args)
    torch.testing.assert_close(seq_m[0], m1, atol=1e-6, rtol=0)
    torch.testing.assert_close(seq_v[0], v1, atol=1e-6, rtol=0)
    _, both_v, plain_v = policy.sequence_values(*args)
    torch.testing.assert_close(both_v, seq_v)
    torch.testing.assert_close(plain_v[0], v0, atol=1e-6, rtol=0)  # without priv: the plain head
    with pytest.raises(ValueError, match="priv has shape"):
        policy.step(obs, a, r, state, start, priv[:, :1])


def test_only_the_plain_head_trains_the_trunk() -> None:
    policy = build_policy(_net(), torch.Generator().manual_seed(0))
    obs, a, r = torch.randn(5, 1, 4), torch.zeros(5, 1, 1), torch.zeros(5, 1)  # 5 steps
    starts = torch.zeros(5, 1, dtype=torch.bool)
    priv = torch.randn(5, 1, 2)
    _, value, plain = policy.sequence_values(obs, a, r, policy.initial_state(1), starts, priv)
    value.sum().backward()
    assert policy.lstm.weight_hh_l0.grad is None and policy.encoder[0].weight.grad is None
    assert policy.priv_critic[0].weight.grad.abs().sum() > 0
    plain.sum().backward()
    assert policy.lstm.weight_hh_l0.grad.abs().sum() > 0  # the plain head does reach the trunk
    assert policy.encoder[0].weight.grad.abs().sum() > 0


def test_a_plain_critic_is_unchanged() -> None:
    plain = build_policy(_net(()), torch.Generator().manual_seed(0))
    priv = build_policy(_net(), torch.Generator().manual_seed(0))
    assert not any("priv" in k or "critic_norm" in k for k in plain.state_dict())
    for name, value in plain.state_dict().items():  # the extra modules are initialized last
        torch.testing.assert_close(priv.state_dict()[name], value, atol=0, rtol=0)
    assert "critic_knobs" not in _net(()).to_dict()  # old checkpoints' configs read the same
    assert NetConfig.from_dict(_net().to_dict()) == _net()
    with pytest.raises(ConfigError, match="repeats"):
        _net(("pole.mass", "pole.mass"))
    with pytest.raises(ConfigError, match="list of knob names"):
        _net("pole.mass")  # type: ignore[arg-type]


def test_acting_stores_each_episodes_domain_for_the_critic() -> None:
    envs = gym.vector.SyncVectorEnv(
        [BreaksAtStep3], autoreset_mode=gym.vector.AutoresetMode.DISABLED
    )
    policy = build_policy(_net(("pole.mass",)))
    features = DomainFeatures(("pole.mass",), knobs_for(CARTPOLE))
    collector = Collector(envs, policy, SpecSource(None), torch.Generator(), features)
    collector.reset([0])
    buf = Rollout(12, 1, 4, 1, 8, priv_dim=1)
    collector.collect(buf)
    envs.close()
    # episode k has pole.mass 0.1 * k (nominal 0.1): 3 steps, then 5, then 4 of the third
    want = [0.0] * 3 + [0.1] * 5 + [0.2] * 4
    torch.testing.assert_close(buf.priv[:, 0, 0], torch.tensor(want), atol=1e-6, rtol=0)
    with pytest.raises(DomrandError, match="sees 1 domain features"):
        Collector(envs, policy, SpecSource(None), torch.Generator())


def test_training_with_a_privileged_critic_saves_resumes_and_exports(tmp_path: Path) -> None:
    spec = domrand.load_spec(domrand.default_spec_path(CARTPOLE), env=CARTPOLE)
    cfg = make_tiny_config(256, privileged_critic=True, backend="local")
    train(cfg, tmp_path / "run", spec=spec, progress=False)
    policy, info = load_policy(tmp_path / "run")
    assert policy.config.critic_knobs == critic_knobs(spec) and len(critic_knobs(spec)) >= 5
    assert float(policy.critic_norm.count) == pytest.approx(256, abs=1)  # every step folded in
    assert float(policy.critic_norm.var.max()) > 0  # the domains varied
    # resume: the knobs come from the checkpoint, and training goes on
    train(cfg.replace(total_steps=384), tmp_path / "run", spec=spec, progress=False, resume=True)
    again, _ = load_policy(tmp_path / "run")
    assert again.config == policy.config and float(again.critic_norm.count) > 300
    # export: the deployed value is the nominal domain's; both exporters verify it themselves
    onnx_path = export_onnx(again, info, tmp_path / "p.onnx")
    ts_path = export_torchscript(again, info, tmp_path / "p.pt")
    assert onnx_path.stat().st_size > 0 and ts_path.stat().st_size > 0


def test_a_warm_start_keeps_the_source_critic(tmp_path: Path) -> None:
    spec = domrand.load_spec(domrand.default_spec_path(CARTPOLE), env=CARTPOLE)
    cfg = make_tiny_config(128, privileged_critic=True, backend="local")
    train(cfg, tmp_path / "a", spec=spec, progress=False)
    narrow = {"env": CARTPOLE, "parameters": {"pole.mass": {"dist": "uniform", "low": 0.05,
                                                            "high": 0.2}}}  # fmt: skip
    train(cfg, tmp_path / "b", spec=narrow, progress=False, init_from=tmp_path / "a")
    a, _ = load_policy(tmp_path / "a")
    b, _ = load_policy(tmp_path / "b")
    assert b.config.critic_knobs == a.config.critic_knobs != ("pole.mass",)


def test_the_exported_value_is_the_plain_heads(tmp_path: Path) -> None:
    from domrand.policies.deploy import load_exported

    policy = build_policy(_net(), torch.Generator().manual_seed(3)).eval()
    with torch.no_grad():
        policy.critic_norm.update(torch.randn(200, 2, dtype=torch.float64) * 2 + 1)
        policy.priv_critic[2].weight.mul_(50.0)  # make the domain head differ from the plain one
    info = StandInInfo(CARTPOLE, policy.config)
    deployed = load_exported(export_onnx(policy, info, tmp_path / "p.onnx"))
    obs = np.array([0.01, -0.02, 0.03, 0.1], np.float32)
    deployed.act(obs)
    x, a, r = torch.tensor(obs)[None], torch.zeros(1, 1), torch.zeros(1)
    start = torch.ones(1, dtype=torch.bool)
    with torch.no_grad():
        _, plain, _ = policy.step(x, a, r, policy.initial_state(1), start)
        _, priv, _ = policy.step(x, a, r, policy.initial_state(1), start, torch.zeros(1, 2))
    assert deployed.last_value == pytest.approx(float(plain[0]), abs=1e-5)
    assert abs(float(priv[0]) - float(plain[0])) > 1e-3  # so the check above means something


def test_the_privileged_head_does_not_take_the_policys_share_of_the_clipped_gradient() -> None:
    from domrand.policies.buffer import make_sequences
    from domrand.policies.config import TrainConfig
    from domrand.policies.ppo import ppo_update

    g = torch.Generator().manual_seed(0)
    buf = Rollout(16, 2, 4, 1, 8, priv_dim=2)
    for name in ("obs", "prev_action", "prev_reward", "actions", "logprobs", "values", "priv"):
        getattr(buf, name).copy_(torch.randn(getattr(buf, name).shape, generator=g))
    buf.starts[0] = True
    seqs = make_sequences(buf, torch.randn(16, 2, generator=g), torch.randn(16, 2, generator=g), 8)
    cfg = TrainConfig(epochs=1, batch_size=32, max_grad_norm=0.01)  # clipping always active
    after = []
    for blow_up in (1.0, 1000.0):  # a privileged head with huge errors, hence huge gradients
        policy = build_policy(_net(), torch.Generator().manual_seed(0))
        with torch.no_grad():
            policy.priv_critic[2].weight.mul_(blow_up)
        opt = torch.optim.SGD(policy.parameters(), lr=1.0)
        ppo_update(policy, opt, seqs, cfg, torch.Generator().manual_seed(1))
        after.append({k: v.clone() for k, v in policy.state_dict().items()})
    for name, value in after[0].items():
        if not name.startswith("priv_critic"):
            torch.testing.assert_close(after[1][name], value, atol=0, rtol=0, msg=name)
    assert not torch.equal(after[0]["priv_critic.0.weight"], after[1]["priv_critic.0.weight"])

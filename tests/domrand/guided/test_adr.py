"""Active DR end to end with the trainer: the policy trains on the particles' proposals (also in
subprocess workers), rounds score them with the discriminator, and the state checkpoints."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import domrand
from domrand.errors import ConfigError
from domrand.guided.adr import ActiveDRGuide, ActiveDRSettings, plot_particles
from domrand.guided.discriminator import DiscriminatorConfig
from domrand.guided.svpg import SVPGConfig
from domrand.policies.checkpoint import latest_checkpoint, load_checkpoint
from domrand.policies.config import TrainConfig
from domrand.policies.train import train
from domrand.spec import Domain

ENV_ID = "domrand/CartPole-v0"
TINY = TrainConfig(
    total_steps=768, num_envs=2, num_steps=64, hidden=8, epochs=1, batch_size=64, seq_len=16,
    checkpoint_every=256,
)  # fmt: skip
SETTINGS = ActiveDRSettings(
    svpg=SVPGConfig(num_particles=3, hidden=8, rollout_len=2),
    discriminator=DiscriminatorConfig(hidden=16, updates=3),
    round_every=256,
    rollout_steps=10,
    rollout_envs=3,
)


class RecordingGuide(ActiveDRGuide):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[Domain] = []
        self.proposed: list[Domain] = list(self.domains)

    def observe_episode(
        self, env_index: int, domain: Domain, ret: float, length: int, info: Mapping[str, Any]
    ) -> None:
        self.seen.append(dict(domain))
        super().observe_episode(env_index, domain, ret, length, info)

    def run_round(self, policy: Any, env_steps: int) -> dict[str, Any]:
        out = super().run_round(policy, env_steps)
        self.proposed += self.domains
        return out


def _spec() -> domrand.RandomizationSpec:
    return domrand.load_spec(domrand.default_spec_path(ENV_ID), env=ENV_ID)


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_policy_trains_on_the_proposed_domains(tmp_path: Path, vectorization: str) -> None:
    guide = RecordingGuide(ENV_ID, _spec(), SETTINGS, seed=0, out_dir=tmp_path)
    try:
        train(TINY.replace(vectorization=vectorization), tmp_path / "policy", guide=guide,
              progress=False)  # fmt: skip
    finally:
        guide.close()
    assert guide.rounds == 3 and len(guide.history) == 3
    assert "obs.noise" not in guide.names  # re-drawn every step: left to the spec
    assert guide.guide_env_steps > 0
    proposed = np.array([[d[k] for k in guide.names] for d in guide.proposed])
    assert guide.seen
    for d in guide.seen:  # every training episode ran in a domain a particle proposed
        x = np.array([d[k] for k in guide.names])
        assert np.min(np.max(np.abs(proposed - x), axis=1)) < 1e-9
    h = guide.history[-1]
    assert len(h["rewards"]) == 6 and all(np.isfinite(h["rewards"]))
    assert all(r <= np.log(2.0) + 1e-9 for r in h["rewards"])
    # the outputs come from the state: particles over time, a valid spec of the current box
    data = np.load(tmp_path / "particles.npz")
    assert data["points"].shape == (3, 3, 2, len(guide.names))
    latest = domrand.load_spec(tmp_path / "spec_latest.yaml", env=ENV_ID)
    assert set(guide.names) <= set(latest.knob_names())
    plot_particles(tmp_path / "particles.npz", tmp_path / "particles.png")
    assert (tmp_path / "particles.png").stat().st_size > 1000


def test_state_survives_a_weights_only_checkpoint(tmp_path: Path) -> None:
    guide = ActiveDRGuide(ENV_ID, _spec(), SETTINGS, seed=1)
    try:
        train(TINY.replace(total_steps=512), tmp_path / "policy", guide=guide, progress=False)
    finally:
        guide.close()
    saved = load_checkpoint(latest_checkpoint(tmp_path / "policy"))["guide"]  # type: ignore[arg-type]
    buf = io.BytesIO()
    torch.save(guide.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    other = ActiveDRGuide(ENV_ID, _spec(), SETTINGS, seed=7)
    other.load_state_dict(state)
    assert other.rounds == guide.rounds == saved["rounds"] == 2
    np.testing.assert_array_equal(other.proposals, guide.proposals)
    assert other.assignments(2) == guide.assignments(2)
    assert other.history == guide.history
    # the discriminator (weights, statistics, optimizer) is restored once its size is known
    policy_like = type("P", (), {"config": type("C", (), {"obs_dim": 4, "act_dim": 1})()})()
    x = np.random.default_rng(0).normal(size=(5, 9)).astype(np.float32)
    d1, d2 = guide._discriminator(policy_like), other._discriminator(policy_like)
    np.testing.assert_array_equal(d1.probability(x), d2.probability(x))
    assert d2.optimizer.state_dict()["state"]  # Adam moments came back too


def test_a_spec_without_bounded_knobs_is_a_config_error() -> None:
    spec = domrand.load_spec({"parameters": {"pole.mass": 0.2}}, env=ENV_ID)
    with pytest.raises(ConfigError, match="bounded"):
        ActiveDRGuide(ENV_ID, spec, SETTINGS, seed=0)

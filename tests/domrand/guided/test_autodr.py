"""Automatic DR as a trainer guide: widens on an easy task, narrows on an impossible one (end to
end with a tiny budget), evaluates boundaries through exact assignments, logs and checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import domrand
from domrand.errors import ConfigError
from domrand.guided.autodr import AutoDRGuide, AutoDRSettings, plot_ranges
from domrand.policies.checkpoint import latest_checkpoint, load_checkpoint
from domrand.policies.config import TrainConfig
from domrand.policies.train import train

ENV_ID = "domrand/CartPole-v0"
TINY = TrainConfig(
    total_steps=1536, num_envs=4, num_steps=64, hidden=8, epochs=1, batch_size=64, seq_len=16,
    checkpoint_every=512,
)  # fmt: skip


def _spec() -> domrand.RandomizationSpec:
    return domrand.load_spec(domrand.default_spec_path(ENV_ID), env=ENV_ID)


def _run(tmp_path: Path, settings: AutoDRSettings) -> AutoDRGuide:
    guide = AutoDRGuide(ENV_ID, _spec(), settings, seed=0, out_dir=tmp_path)
    train(TINY, tmp_path / "policy", guide=guide, progress=False)
    return guide


def test_easy_threshold_widens_the_ranges_end_to_end(tmp_path: Path) -> None:
    # Any CartPole return (>= 1) clears t_high = 0.5: every full buffer widens its boundary.
    settings = AutoDRSettings(metric="return", t_low=0.0, t_high=0.5, buffer_size=2, delta=0.25)
    guide = _run(tmp_path, settings)
    spec = _spec()
    assert guide.state.updates >= 5 and guide.evaluations >= 10
    assert guide.state.entropy() > np.log(1e-6) + 1.0
    widened = 0
    for name, (lo, hi) in guide.state.ranges.items():
        nominal = spec.knobs[name].nominal  # type: ignore[index]
        s_lo, s_hi = spec.value_bounds(name)
        assert s_lo <= lo <= min(max(nominal, s_lo), s_hi) <= hi <= s_hi
        widened += hi > lo
    assert widened >= 3
    # ranges over time, the spec files, and the state in the checkpoint
    rows = (tmp_path / "ranges.csv").read_text().splitlines()
    assert len(rows) == 1 + TINY.iterations
    latest = domrand.load_spec(tmp_path / "spec_latest.yaml", env=ENV_ID)
    assert latest == guide.training_spec()
    ckpt = load_checkpoint(latest_checkpoint(tmp_path / "policy"))  # type: ignore[arg-type]
    assert ckpt["guide"]["core"]["ranges"] == guide.state.state_dict()["ranges"]
    assert ckpt["run_info"]["spec"] == guide.training_spec().to_dict()
    plot_ranges(tmp_path / "ranges.csv", tmp_path / "ranges.png")
    assert (tmp_path / "ranges.png").stat().st_size > 1000


def test_impossible_threshold_narrows_the_ranges_end_to_end(tmp_path: Path) -> None:
    settings = AutoDRSettings(
        metric="return", t_low=1e6, t_high=2e6, buffer_size=2, delta=0.25, start="full"
    )
    guide = AutoDRGuide(ENV_ID, _spec(), settings, seed=0)
    before = guide.state.entropy()
    widths0 = {n: hi - lo for n, (lo, hi) in guide.state.ranges.items()}
    train(TINY, tmp_path / "policy", guide=guide, progress=False)
    assert guide.state.updates >= 5
    assert guide.state.entropy() < before
    assert all(hi - lo <= widths0[n] + 1e-12 for n, (lo, hi) in guide.state.ranges.items())


def test_boundary_episodes_pin_the_boundary_and_feed_its_buffer() -> None:
    settings = AutoDRSettings(p_boundary=1.0, buffer_size=100, knobs=("cart.mass", "pole.mass"))
    guide = AutoDRGuide(ENV_ID, _spec(), settings, seed=3)
    guide.state.ranges = {"cart.mass": [0.8, 1.5], "pole.mass": [0.07, 0.12]}
    assigned = guide.assignments(8)
    for i, d in enumerate(assigned):
        assert d is not None and set(d) == {"cart.mass", "pole.mass"}
        knob, side, value = guide.pending[i]  # type: ignore[misc]
        assert d[knob] == value == guide.state.ranges[knob][0 if side == "low" else 1]
    for i in range(8):  # success metric: info["success"] -> 1.0 / 0.0; faults are not evidence
        guide.observe_episode(i, assigned[i] or {}, 5.0, 10, {"success": i % 2 == 0})
    guide.observe_episode(0, {}, 5.0, 10, {"success": True, "physics_fault": True})
    results = [v for buf in guide.state.buffers.values() for v in buf]
    assert sorted(results) == [0.0] * 4 + [1.0] * 4
    assert guide.evaluations == 8


def test_training_episodes_sample_the_current_ranges() -> None:
    guide = AutoDRGuide(ENV_ID, _spec(), AutoDRSettings(p_boundary=0.0), seed=0)
    assert guide.assignments(3) == [None, None, None]
    spec = guide.training_spec()
    assert spec is guide.training_spec()  # unchanged ranges -> the same object
    for p in spec.parameters:
        if p.knob in guide.state.ranges:
            lo, _ = guide.state.ranges[p.knob]
            assert spec.value_bounds(p.knob) == pytest.approx((lo, lo))
    guide.state.ranges["cart.mass"] = [0.9, 1.1]
    assert guide.training_spec().value_bounds("cart.mass") == pytest.approx((0.9, 1.1))


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="t_low and t_high"):
        AutoDRSettings(metric="return")
    with pytest.raises(ConfigError, match="t_low < t_high"):
        AutoDRSettings(t_low=0.9, t_high=0.1)
    with pytest.raises(ConfigError, match=r"did you mean 'cart\.mass'"):
        AutoDRGuide(ENV_ID, _spec(), AutoDRSettings(knobs=("cart.mas",)), seed=0)
    with pytest.raises(ConfigError, match=r"obs\.noise"):  # re-drawn every step: not growable
        AutoDRGuide(ENV_ID, _spec(), AutoDRSettings(knobs=("obs.noise",)), seed=0)
    assert yaml.safe_dump(AutoDRSettings(knobs=("cart.mass",)).to_dict())

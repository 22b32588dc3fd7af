"""SVPG particles: bounded unit moves, restarts, learning toward reward with repulsion, state."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from domrand.errors import ConfigError
from domrand.guided.svpg import SVPG, SVPGConfig


def _pairwise_param_distance(s: SVPG) -> float:
    th = np.stack([s._flat(i).numpy() for i in range(s.config.num_particles)])
    d = np.sqrt(((th[:, None] - th[None]) ** 2).sum(-1))
    return float(d[np.triu_indices(len(th), 1)].mean())


def test_moves_have_length_max_step_inside_the_unit_box() -> None:
    s = SVPG(2, SVPGConfig(num_particles=4, hidden=8, horizon=1000), seed=0)
    start = s.points.numpy().copy()
    p = s.propose()
    assert p.shape == (4, 5, 2)
    assert np.all((p >= 0) & (p <= 1))
    prev = np.concatenate([start[:, None], p[:, :-1]], axis=1)
    steps = np.linalg.norm(p - prev, axis=-1)
    inside = np.all((p > 0) & (p < 1), axis=-1)  # an unclipped move is exactly max_step long
    np.testing.assert_allclose(steps[inside], 0.05, rtol=1e-6)
    assert np.all(steps <= 0.05 + 1e-9)


def test_particles_restart_after_the_horizon() -> None:
    s = SVPG(1, SVPGConfig(num_particles=3, hidden=8, rollout_len=5, horizon=3), seed=1)
    s.propose()
    assert s.pending is not None
    dones = s.pending["dones"].numpy()
    assert dones[:, 2].all()  # the third step of every particle ends its horizon
    assert (s.steps.numpy() == 2).all()  # restarted, then two more steps


def test_particles_move_toward_high_reward_and_stay_diverse() -> None:
    """A toy 1-D reward peaked at 0.8: the particles' proposals drift there (from a uniform
    start, mean 0.5), while the kernel's repulsion keeps their policies apart."""
    cfg = SVPGConfig(num_particles=4, hidden=16, lr=3e-3)
    s = SVPG(1, cfg, seed=0)
    spread0 = _pairwise_param_distance(s)
    positions = []
    for _ in range(150):
        p = s.propose()
        s.update(-10.0 * np.abs(p[..., 0] - 0.8))
        positions.append(p[..., 0])
    pos = np.array(positions)
    assert pos[-30:].mean() > pos[:30].mean() + 0.1
    assert np.abs(pos[-30:] - 0.8).mean() < 0.3
    assert _pairwise_param_distance(s) > spread0  # no collapse onto one policy
    assert pos[-30:].std(axis=1).mean() > 0.05  # the particles are not all at one point


def test_state_round_trips_and_continues_identically() -> None:
    cfg = SVPGConfig(num_particles=3, hidden=8)
    a = SVPG(2, cfg, seed=3)
    a.update(np.ones((3, 5)) if a.propose() is not None else None)
    a.propose()  # leaves a pending rollout, which must be checkpointed too
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = SVPG(2, cfg, seed=99)
    b.load_state_dict(torch.load(buf, weights_only=True))
    r = np.arange(15.0).reshape(3, 5) / 15
    a.update(r)
    b.update(r)
    np.testing.assert_array_equal(a.propose(), b.propose())
    with pytest.raises(ConfigError):
        SVPG(2, SVPGConfig(num_particles=4, hidden=8), seed=0).load_state_dict(a.state_dict())


def test_misuse_raises_typed_errors() -> None:
    s = SVPG(1, SVPGConfig(num_particles=2, hidden=8), seed=0)
    with pytest.raises(ConfigError, match="without a proposal"):
        s.update(np.zeros((2, 5)))
    s.propose()
    with pytest.raises(ConfigError, match="shape"):
        s.update(np.zeros((3, 5)))
    with pytest.raises(ConfigError):
        SVPGConfig(max_step=0.0)
    with pytest.raises(ConfigError):
        SVPG(0, SVPGConfig(), seed=0)

"""``evaluate_domains``: each job runs in its own exact domain, reproducibly, in any batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from domrand.errors import DomrandError, KnobError
from domrand.reports.batch import DomainReturns, episode_seed, evaluate_domains
from domrand.reports.runs import load_run

#: no gravity, a heavily damped hinge and a motor too weak to move the cart: the pole never
#: falls, so an episode runs to the 500-step limit whatever the (untrained) policy does.
CALM = {"gravity": 0.0, "pole.damping": 10.0, "motor.gain": 1e-4}


def test_every_job_gets_its_own_domain(tiny_run: Path) -> None:
    run = load_run(tiny_run)
    out = evaluate_domains(run.policy, run.env_id, [{}, CALM, {}, CALM], episodes=2, seed=3)
    assert out.returns.shape == (4, 2)
    assert (out.returns[[1, 3]] == 500).all()
    assert (out.returns[[0, 2]] < 500).all()  # the untrained policy drops the pole
    assert out.successes[[1, 3]].all() and not out.successes[[0, 2]].any()
    assert not out.faults.any()
    assert out.env_steps == int(out.returns.sum())  # CartPole: reward 1 per step


def test_results_do_not_depend_on_batch_size_or_order(tiny_run: Path) -> None:
    run = load_run(tiny_run)
    domains = [{"pole.mass": m} for m in (0.05, 0.1, 0.2, 0.4, 0.8)]
    a = evaluate_domains(run.policy, run.env_id, domains, episodes=3, seed=7)
    b = evaluate_domains(run.policy, run.env_id, domains, episodes=3, seed=7, max_envs=2)
    c = evaluate_domains(run.policy, run.env_id, domains[::-1], episodes=3, seed=7)
    np.testing.assert_array_equal(a.returns, b.returns)
    # reversed order: the per-episode seeds follow the domain index, so only matching
    # indices compare; the middle domain keeps its index
    np.testing.assert_array_equal(a.returns[2], c.returns[2])
    d = evaluate_domains(run.policy, run.env_id, domains, episodes=3, seed=8)
    assert not np.array_equal(a.returns, d.returns)  # the seed matters


def test_bad_inputs_are_typed_errors(tiny_run: Path) -> None:
    run = load_run(tiny_run)
    with pytest.raises(DomrandError, match="no domains"):
        evaluate_domains(run.policy, run.env_id, [])
    with pytest.raises(DomrandError, match="episodes"):
        evaluate_domains(run.policy, run.env_id, [{}], episodes=0)
    with pytest.raises(KnobError, match="outside valid range"):
        evaluate_domains(run.policy, run.env_id, [{"pole.mass": -1.0}])


def test_statistics_leave_faulted_episodes_out() -> None:
    r = DomainReturns(
        returns=np.array([[10.0, 20.0, 5.0], [1.0, 2.0, 3.0]]),
        faults=np.array([[False, False, True], [True, True, True]]),
        successes=np.zeros((2, 3), dtype=bool),
        env_steps=0,
    )
    np.testing.assert_allclose(r.mean()[0], 15.0)
    np.testing.assert_allclose(r.std()[0], 5.0)
    assert np.isnan(r.mean()[1]) and np.isnan(r.std()[1])
    np.testing.assert_allclose(r.mean(exclude_faults=False), [35 / 3, 2.0])


def test_episode_seeds_are_distinct_and_stable() -> None:
    seeds = {episode_seed(0, j, e) for j in range(20) for e in range(5)}
    assert len(seeds) == 100
    assert episode_seed(1, 2, 3) == episode_seed(1, 2, 3) != episode_seed(1, 3, 2)

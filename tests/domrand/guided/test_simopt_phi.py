"""SimOpt's search distribution (domrand.guided.simopt_phi): floor, frame, and the three moves."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from domrand.errors import DomrandError
from domrand.guided.simopt_phi import KnobGaussian, finish_restart, phi_update, polish_round
from domrand.guided.simopt_settings import SimOptSettings
from domrand.spec import Domain

KNOBS = ("a.mass", "b.friction", "c.links")
TRUTH = np.array([1.3, 0.25, 4.0])


def _phi(seed: int = 0, min_std: float = 0.05) -> KnobGaussian:
    return KnobGaussian(
        knobs=KNOBS,
        integer=np.array([False, False, True]),
        mean0=np.array([1.0, 0.5, 3.0]),
        cov0=np.diag([0.2, 0.1, 1.0]) ** 2,
        lo=np.array([0.5, 0.0, 1.0]),
        hi=np.array([2.0, 1.0, 6.0]),
        min_std=min_std,
        seed=seed,
    )


def _state(phi: KnobGaussian) -> dict[str, Any]:
    return {"mean": phi.mean0.tolist(), "cov": phi.cov0.tolist(), "cma": None,
            "last_update": {}, "restart": 0, "finished": []}  # fmt: skip


def _bowl(domains: list[Domain], key: tuple[int, ...]) -> np.ndarray:
    x = np.array([[d[k] for k in KNOBS] for d in domains])
    return (((x - TRUTH) / np.array([0.2, 0.1, 1.0])) ** 2).sum(axis=1)


def test_the_floor_lifts_only_the_variances_below_it() -> None:
    phi = _phi(min_std=0.05)
    floor = (0.05 * phi.std0) ** 2
    cov = np.diag([floor[0] / 4, 4 * floor[1], 0.0])
    cov[0, 1] = cov[1, 0] = 1e-9
    out = phi.floor(cov)
    np.testing.assert_allclose(np.diag(out), [floor[0], 4 * floor[1], floor[2]])
    assert out[0, 1] == 1e-9  # off-diagonals untouched


def test_domains_round_integer_knobs_and_clip_keeps_the_box() -> None:
    phi = _phi()
    (d,) = phi.domains(np.array([[1.234, 0.5, 2.6]]))
    assert d == {"a.mass": 1.234, "b.friction": 0.5, "c.links": 3.0}
    np.testing.assert_array_equal(phi.clip(np.array([0.0, 2.0, 3.0])), [0.5, 1.0, 3.0])


def test_the_polish_widens_every_knob_but_one_pinned_at_the_floor() -> None:
    """The polish frame is width x the distribution's Cholesky factor, except for a knob whose
    std REPS has pushed down to its min_std floor: that one is sampled at the floor."""
    phi = _phi(min_std=0.05)
    floor = 0.05 * phi.std0
    cov = np.diag([(4 * floor[0]) ** 2, (0.5 * floor[1]) ** 2, (2 * floor[2]) ** 2])
    cov[0, 2] = cov[2, 0] = 0.5 * 4 * floor[0] * 2 * floor[2]  # correlated, both above the floor
    frame = phi.polish_frame(cov, 3.0)
    sampled = frame @ frame.T
    stds = np.sqrt(np.diag(sampled))
    np.testing.assert_allclose(stds, [3 * 4 * floor[0], floor[1], 3 * 2 * floor[2]], rtol=1e-9)
    assert sampled[0, 2] / (stds[0] * stds[2]) == pytest.approx(0.5)  # correlation kept
    assert np.allclose(np.triu(frame, 1), 0.0)  # still a Cholesky factor


@pytest.mark.parametrize("backend", ["reps", "cmaes"])
def test_updates_walk_toward_the_minimum_and_repeat_under_the_seed(backend: str) -> None:
    s = SimOptSettings(samples=24, backend=backend)

    def run(seed: int) -> tuple[dict[str, Any], list[tuple[int, ...]]]:
        phi, keys = _phi(seed), []
        state = _state(phi)

        def cost(domains: list[Domain], key: tuple[int, ...]) -> np.ndarray:
            keys.append(key)
            return _bowl(domains, key)

        for u in range(6):
            stats = phi_update(phi, s, state, 0, u, cost)
            assert stats["faults"] == 0 and stats["cost_min"] <= stats["cost_median"]
        return state, keys

    state, keys = run(0)
    again, _ = run(0)
    other, _ = run(1)
    assert state["mean"] == again["mean"] and state["cov"] == again["cov"]
    assert state["mean"] != other["mean"]
    start = np.abs(_phi().mean0 - TRUTH)[:2]
    assert np.all(np.abs(np.array(state["mean"])[:2] - TRUTH[:2]) < 0.5 * start)
    assert keys == [(0, u, 0) for u in range(6)]  # each update's replays get their own key
    assert np.all(np.sqrt(np.diag(state["cov"])) >= 0.05 * _phi().std0 * (1 - 1e-9))


def test_an_update_with_every_replay_broken_is_an_error_and_faults_are_ranked_last() -> None:
    phi, s = _phi(), SimOptSettings(samples=8)
    with pytest.raises(DomrandError, match="every simulated replay broke"):
        phi_update(phi, s, _state(phi), 0, 0, lambda d, k: np.full(len(d), np.nan))

    def half_broken(domains: list[Domain], key: tuple[int, ...]) -> np.ndarray:
        c = _bowl(domains, key)
        c[::2] = np.inf
        return c

    stats = phi_update(phi, s, _state(phi), 0, 0, half_broken)
    assert stats["faults"] == 4 and np.isfinite(stats["cost_median"])


def test_finish_restart_starts_the_next_mean_then_keeps_the_cheapest() -> None:
    phi, s = _phi(), SimOptSettings(restarts=3, select_replays=2, jitter=0.05)
    state = _state(phi)
    state["start"] = {"mean": state["mean"], "cov": state["cov"]}
    ends = [[1.6, 0.6, 3.0], [1.3, 0.25, 4.0], [0.9, 0.4, 2.0]]  # the second is the truth
    for r, end in enumerate(ends):
        state["mean"] = end
        finish_restart(phi, s, state, 0, _bowl)
        if r < 2:
            assert state["update"] == 0 and state["mean"] == phi.start_mean(0, r + 1).tolist()
    assert state["mean"] == ends[1] and state["last_update"]["restart_chosen"] == 1
    assert state["last_update"]["restart_costs"][1] == pytest.approx(0.0)


def test_polish_rounds_land_on_a_quadratic_minimum() -> None:
    """On an exact quadratic, one fit finds the minimum; the trust step (one frame std per
    round) caps each move, so a few rounds get there from the start."""
    phi, s = _phi(), SimOptSettings(polish=4, polish_samples=24, polish_width=2.0)
    state = _state(phi)
    truth = np.array([1.3, 0.25, 3.0])  # the integer knob's truth on its grid
    for _ in range(4):
        polish_round(
            phi, s, state, 0, lambda d, k: _bowl(d, k) - _bowl([dict(zip(KNOBS, truth))], k)
        )
    assert state["polish_round"] == 4
    np.testing.assert_allclose(state["mean"][:2], truth[:2], atol=0.02)

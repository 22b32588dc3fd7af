"""Automatic DR widens ranges on an easy task, narrows them on an impossible one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from domrand.guided.autodr_core import AutoDRConfig, AutoDRState, Boundary
from domrand.spec import load_spec


def _state(t_low: float = 0.2, t_high: float = 0.8, buffer: int = 5) -> AutoDRState:
    return AutoDRState(
        nominal={"mass": 1.0, "gain": 10.0},
        limits={"mass": (0.2, 3.0), "gain": (5.0, 20.0)},
        delta={"mass": 0.1, "gain": 1.0},
        config=AutoDRConfig(t_low=t_low, t_high=t_high, buffer_size=buffer),
    )


def _simulate(state: AutoDRState, success, episodes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(episodes):
        domain, boundary = state.sample(rng)
        if boundary is not None:
            state.record(boundary, success(domain))


def test_ranges_start_collapsed_at_nominal_with_floor_entropy() -> None:
    s = _state()
    assert s.ranges == {"mass": [1.0, 1.0], "gain": [10.0, 10.0]}
    assert s.entropy() == pytest.approx(math.log(1e-6))


def test_easy_task_widens_every_boundary_up_to_the_limits() -> None:
    s = _state()
    before = s.entropy()
    _simulate(s, lambda d: 1.0, 4000)
    assert s.ranges["mass"] == pytest.approx([0.2, 3.0])
    assert s.ranges["gain"] == pytest.approx([5.0, 20.0])
    assert s.entropy() > before
    assert s.entropy() == pytest.approx(0.5 * (math.log(2.8) + math.log(15.0)))


def test_impossible_task_narrows_back_to_nominal() -> None:
    s = _state()
    s.ranges = {"mass": [0.5, 2.0], "gain": [7.0, 15.0]}
    _simulate(s, lambda d: 0.0, 4000)
    lo, hi = s.ranges["mass"]
    assert lo <= hi and hi - lo < 0.11
    assert s.ranges["gain"][1] - s.ranges["gain"][0] < 1.01


def test_task_hard_above_a_mass_grows_only_where_it_succeeds() -> None:
    # succeeds while mass <= 1.6: the high side of mass must stop near 1.6, others go to limits
    s = _state(buffer=8)
    _simulate(s, lambda d: 1.0 if d["mass"] <= 1.6 else 0.0, 8000)
    assert 1.4 <= s.ranges["mass"][1] <= 1.8
    assert s.ranges["mass"][0] == pytest.approx(0.2)
    assert s.ranges["gain"] == pytest.approx([5.0, 20.0])


def test_boundary_evaluation_pins_the_boundary_and_happens_with_p_b() -> None:
    s = _state()
    s.ranges = {"mass": [0.5, 2.0], "gain": [7.0, 15.0]}
    rng = np.random.default_rng(3)
    n_boundary = 0
    for _ in range(4000):
        d, b = s.sample(rng)
        assert 0.5 <= d["mass"] <= 2.0 and 7.0 <= d["gain"] <= 15.0
        if b is not None:
            n_boundary += 1
            expected = s.ranges[b.knob][0 if b.side == "low" else 1]
            assert d[b.knob] == expected
    assert abs(n_boundary / 4000 - 0.5) < 0.03


def test_middle_performance_keeps_ranges_and_nan_is_ignored() -> None:
    s = _state()
    s.ranges["mass"] = [0.8, 1.2]
    for _ in range(20):
        s.record(Boundary("mass", "high"), 0.5)
        s.record(Boundary("mass", "low"), float("nan"))
    assert s.ranges["mass"] == [0.8, 1.2]


def test_state_round_trip_and_spec_document_validates() -> None:
    s = _state()
    _simulate(s, lambda d: 1.0, 500)
    other = _state()
    other.load_state_dict(s.state_dict())
    assert other.ranges == s.ranges and other.updates == s.updates
    spec = load_spec(s.spec_dict())
    for name, (lo, hi) in s.ranges.items():
        assert spec.value_bounds(name) == pytest.approx((lo, hi))


def test_bad_configuration_raises() -> None:
    with pytest.raises(ValueError):
        AutoDRConfig(t_low=0.9, t_high=0.1)
    with pytest.raises(ValueError):
        AutoDRState({"m": 5.0}, {"m": (0.0, 1.0)}, {"m": 0.1}, AutoDRConfig(0.1, 0.9))

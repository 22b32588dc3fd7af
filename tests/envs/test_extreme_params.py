"""Extreme parameters: a fast subset of ``benchmarks/extreme_grid.py``.

Every knob of CartPole, Pusher and Localization at both ends of its valid range (open ends at
the closest double inside), and all-low / all-high combinations on every env: nothing raises,
and an observation or reward that is not finite always comes with ``info["physics_fault"]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import domrand
from domrand.knobs import Knob

STEPS = 8


def end(knob: Knob, high: bool) -> Any:
    """The valid end of ``knob`` (the closest double inside an open end)."""
    if high:
        v = math.nextafter(knob.high, knob.low) if knob.high_open else knob.high
    else:
        v = math.nextafter(knob.low, knob.high) if knob.low_open else knob.low
    return knob.coerce(round(v) if knob.integer else v)


def run(env: Any, domain: dict[str, Any], seed: int = 0) -> tuple[int, bool]:
    """One random-action episode (at most STEPS steps): ``(steps, faulted)``; checks finiteness."""
    obs, info = env.reset(seed=seed, options={"domain": domain})
    for name, value in domain.items():
        assert info["domain"][name] == value  # the extreme is really in force
    assert np.all(np.isfinite(obs))
    for n in range(1, STEPS + 1):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        if info.get("physics_fault"):
            assert term and r == 0.0 and np.all(obs == 0)
            return n, True
        assert np.all(np.isfinite(obs)) and math.isfinite(r), (domain, n)
        if term or trunc:
            break
    return n, False


@pytest.fixture(params=["CartPole", "Pusher", "PusherForce", "Localization"])
def env(request: pytest.FixtureRequest) -> Iterator[Any]:
    kwargs = {"image_size": 16} if request.param == "Localization" else {}
    e = domrand.make(f"domrand/{request.param}-v0", **kwargs)
    e.action_space.seed(0)
    yield e
    e.close()


def test_every_knob_at_both_ends_runs(env: Any) -> None:
    knobs = env.unwrapped.knobs
    ran = 0
    for name in knobs:
        for high in (False, True):
            steps, _ = run(env, {name: end(knobs[name], high)})
            ran += steps
    assert ran >= 2 * len(knobs)
    # after everything above (faults included), a nominal episode is healthy
    _, faulted = run(env, {})
    assert not faulted


@pytest.mark.parametrize("env_id", sorted(domrand.registry.ENVS))
def test_all_knobs_at_once_at_their_ends(env_id: str) -> None:
    kwargs = {"image_size": 16} if "Localization" in env_id else {}
    env = domrand.make(env_id, **kwargs)
    env.action_space.seed(1)
    knobs = env.unwrapped.knobs
    rng = np.random.default_rng(0)
    try:
        for corner in ("low", "high", "mixed"):
            pick = {"low": [False] * len(knobs), "high": [True] * len(knobs)}.get(
                corner, list(rng.random(len(knobs)) < 0.5)
            )
            run(env, {n: end(knobs[n], h) for n, h in zip(knobs, pick)})
        _, faulted = run(env, {})
        assert not faulted
    finally:
        env.close()


def test_a_fault_at_an_extreme_is_flagged_and_the_next_episode_is_clean() -> None:
    """A blow-up that extreme values produce is flagged (not raised), then the scene rebuilds."""
    env = domrand.make("domrand/CartPole-v0")
    u = env.unwrapped
    real_state = u._state
    env.reset(seed=0, options={"domain": {"motor.gain": end(u.knobs["motor.gain"], True)}})
    # the state runs away (what a solver blow-up looks like to the env)
    u._state = lambda: tuple(x * 1e6 for x in real_state())  # type: ignore[method-assign]
    _, r, term, _, info = env.step(np.ones(1, np.float32))
    assert info.get("physics_fault") is True and term and r == 0.0
    del u._state  # back to the class's method
    _, faulted = run(env, {})
    assert not faulted
    env.close()

"""Helpers shared by the env tests: a clearly different value for any knob, and the scripted
pusher's geometry."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from domrand.envs.pusher import PusherEnv
from domrand.knobs import Knob

#: centre distance of the tip touching the puck
R = PusherEnv.puck_radius + PusherEnv.tip_radius


def push_target(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A scripted push on any Pusher: line the tip up behind the puck (as seen from the goal),
    then push through it. Returns the tip's position and where it should go next."""
    tip, puck, goal = (obs[i : i + 2].astype(np.float64) for i in (0, 4, 9))
    d = goal - puck
    u = d / max(float(np.linalg.norm(d)), 1e-9)
    perp = np.array([-u[1], u[0]])
    along, lateral = float((tip - puck) @ u), float((tip - puck) @ perp)
    if along < -0.5 * R and abs(lateral) < 0.02:
        target = puck + 0.1 * u - lateral * perp  # push, correcting the line
    elif along < -0.5 * R:
        target = puck - (R + 0.01) * u  # move behind
    else:  # beside or in front: go round, keeping clear of the puck
        side = 1.0 if lateral >= 0 else -1.0
        target = puck + side * (R + 0.03) * perp - (R + 0.02) * u
    return tip, target


def _clearly_different(knob: Knob) -> float:
    """A valid value far from nominal: 3x (or 1/3x) nominal, or 10% into the range from 0.

    Opacity is the exception: TinyRenderer draws any alpha > 0 opaque, so it tests alpha 0.
    """
    if knob.name.endswith(".color.a"):
        return 0.0
    if knob.nominal != 0:
        value = knob.nominal * 3.0
        if not knob.contains(value):
            value = knob.nominal / 3.0
    else:
        top = knob.high if math.isfinite(knob.high) and knob.high > knob.nominal else knob.low
        top = top if math.isfinite(top) else knob.nominal + 10.0
        value = knob.nominal + 0.1 * (top - knob.nominal)
    if knob.integer:
        value = float(round(value))
        if value == knob.nominal:  # a step of one, inside the range
            value = knob.nominal + 1 if knob.contains(knob.nominal + 1) else knob.nominal - 1
    assert knob.contains(value), (knob.name, value)
    return value


@pytest.fixture
def clearly_different() -> Callable[[Knob], float]:
    return _clearly_different


#: knobs that only act together with another one: the companion values pinned for both images
COMPANIONS: dict[str, dict[str, float]] = {"image.cutout_size": {"image.cutout": 1}}


@pytest.fixture
def companions() -> dict[str, dict[str, float]]:
    return COMPANIONS

"""Shared fixtures: a small hand-made knob set so spec tests need no physics engine."""

from __future__ import annotations

import math

import pytest

from domrand.knobs import Knob, KnobSet, Phase

TOY_KNOBS = KnobSet.of(
    [
        Knob("pole.mass", 0.1, "kg", 0.0, 10.0, low_open=True),
        Knob("cart.mass", 1.0, "kg", 0.0, 100.0, low_open=True),
        Knob("cart.friction", 0.0, "N", 0.0, 50.0),
        Knob("pole.damping", 0.5, "N m s/rad", 0.0, 10.0),
        Knob("motor.gain", 10.0, "N", 0.0, 1000.0, low_open=True, phase=Phase.STEP),
        Knob("obs.bias", 0.0, "1", -math.inf, math.inf, Phase.STEP, low_open=True, high_open=True),
        Knob("action.delay", 1, "steps", 0, 20, phase=Phase.STEP, integer=True),
        Knob("model.scale", 1.0, "1", 0.5, 2.0, phase=Phase.LOAD),
        Knob("tilt", -2.0, "rad", -10.0, -0.5),
        Knob("link.length", 1.0, "m", 0.1, 5.0),
        Knob("link.mass", 2.0, "kg", 0.0, 50.0, low_open=True),
    ]
)


@pytest.fixture
def knobs() -> KnobSet:
    """The toy knob set (immutable, so one instance is shared)."""
    return TOY_KNOBS

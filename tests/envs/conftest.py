"""Helpers shared by the env tests: a clearly different value for any knob."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from domrand.knobs import Knob


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

"""Knobs: valid ranges (open/closed ends), coercion, lookup with did-you-mean."""

from __future__ import annotations

import dataclasses
import math

import pytest

from domrand.errors import DomrandError, KnobError
from domrand.knobs import Knob, KnobSet, Phase


def test_nominal_must_be_inside_the_range() -> None:
    with pytest.raises(KnobError, match="nominal"):
        Knob("x", 11.0, "kg", 0.0, 10.0)
    with pytest.raises(KnobError, match="nominal"):
        Knob("x", -0.1, "kg", 0.0, 10.0)
    Knob("x", 10.0, "kg", 0.0, 10.0)  # the closed end itself is fine


def test_contains_respects_open_and_closed_ends() -> None:
    closed = Knob("x", 1.0, "kg", 0.0, 10.0)
    half = Knob("m", 1.0, "kg", 0.0, 10.0, low_open=True)
    opened = Knob("o", 1.0, "kg", 0.0, 10.0, low_open=True, high_open=True)
    assert closed.contains(0.0) and closed.contains(10.0)
    assert not closed.contains(-1e-12) and not closed.contains(10.000001)
    assert not half.contains(0.0) and half.contains(1e-300) and half.contains(10.0)
    assert not opened.contains(10.0) and opened.contains(9.999)
    for k in (closed, half, opened):
        assert not k.contains(math.nan)


def test_range_str() -> None:
    assert Knob("x", 1.0, "kg", 0.0, 10.0).range_str() == "[0, 10]"
    assert Knob("x", 1.0, "kg", 0.0, math.inf, low_open=True, high_open=True).range_str() == (
        "(0, inf)"
    )
    assert Knob("x", 0.0, "", -math.inf, 0.5, low_open=True).range_str() == "(-inf, 0.5]"


def test_coerce() -> None:
    delay = Knob("action.delay", 0, "steps", 0, 20, Phase.STEP, integer=True)
    v = delay.coerce(2.0)
    assert v == 2 and type(v) is int
    for bad in (2.5, math.inf, math.nan, 21, -1):
        with pytest.raises(KnobError, match=r"action\.delay"):
            delay.coerce(bad)
    mass = Knob("pole.mass", 0.1, "kg", 0.0, 10.0, low_open=True)
    v = mass.coerce(3)
    assert v == 3.0 and type(v) is float
    with pytest.raises(KnobError, match=r"outside valid range \(0, 10\]"):
        mass.coerce(0.0)
    with pytest.raises(KnobError):
        mass.coerce(math.nan)


def test_knob_is_frozen_and_knob_error_is_typed() -> None:
    k = Knob("x", 1.0, "kg", 0.0, 10.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        k.nominal = 2.0  # type: ignore[misc]
    assert issubclass(KnobError, DomrandError) and issubclass(KnobError, ValueError)


def test_knobset_lookup_order_and_did_you_mean(knobs: KnobSet) -> None:
    assert list(knobs)[:2] == ["pole.mass", "cart.mass"]
    assert len(knobs) == len(knobs.knobs)
    assert knobs["pole.mass"].nominal == 0.1
    assert "pole.mass" in knobs and "pole.mas" not in knobs
    with pytest.raises(
        KnobError, match=r"unknown knob 'pole\.mas' \(did you mean 'pole\.mass'\?\)"
    ):
        knobs["pole.mas"]
    with pytest.raises(KnobError) as e:
        knobs["zzz"]
    assert "did you mean" not in str(e.value)


def test_knobset_rejects_duplicates() -> None:
    k = Knob("x", 1.0, "kg", 0.0, 10.0)
    with pytest.raises(KnobError, match="duplicate knob name 'x'"):
        KnobSet.of([k, k])


def test_nominal_domain_and_phases(knobs: KnobSet) -> None:
    nom = knobs.nominal()
    assert set(nom) == set(knobs)
    assert nom["action.delay"] == 1 and type(nom["action.delay"]) is int
    assert type(nom["pole.mass"]) is float and nom["pole.mass"] == 0.1
    assert [k.name for k in knobs.in_phase(Phase.LOAD)] == ["model.scale"]
    step = {k.name for k in knobs.in_phase(Phase.STEP)}
    assert step == {"motor.gain", "obs.bias", "action.delay"}
    total = sum(len(knobs.in_phase(p)) for p in Phase)
    assert total == len(knobs)


def test_infinities_are_never_inside_even_with_closed_infinite_ends() -> None:
    k = Knob("free", 0.0, "1", -math.inf, math.inf)
    assert k.contains(1e308)
    assert not k.contains(math.inf)
    assert not k.contains(-math.inf)

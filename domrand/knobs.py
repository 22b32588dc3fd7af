"""What an environment exposes to randomization: named knobs with nominal values and valid ranges.

An env declares each knob once (name, nominal value, unit, valid range, phase). The spec layer
validates against these declarations at load; the env applies values with pybullet calls.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum

from domrand.errors import KnobError, did_you_mean

__all__ = ["Knob", "KnobSet", "Phase"]


class Phase(str, Enum):
    """When an env applies a knob.

    LOAD needs the model re-loaded (e.g. URDF scale); RESET is applied at reset
    (``changeDynamics``, colours); STEP each control step (latency, noise); SUBSTEP each physics
    substep (external pushes).
    """

    LOAD = "load"
    RESET = "reset"
    STEP = "step"
    SUBSTEP = "substep"


@dataclass(frozen=True)
class Knob:
    """One randomizable quantity of an environment.

    Attributes:
        name: dotted name used in spec files, e.g. ``pole.mass``.
        nominal: the value the unrandomized env uses (cached at load).
        unit: physical unit, for listings ("kg", "N", "steps", "1").
        low, high: the valid range; ``low_open``/``high_open`` exclude the end point.
        phase: when the env applies it.
        integer: values are whole numbers (e.g. latency in control steps).
        doc: one line saying what the knob does.
    """

    name: str
    nominal: float
    unit: str
    low: float
    high: float
    phase: Phase = Phase.RESET
    integer: bool = False
    low_open: bool = False
    high_open: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if not self.low <= self.nominal <= self.high:
            raise KnobError(f"knob {self.name!r}: nominal {self.nominal} outside its valid range")

    def contains(self, value: float) -> bool:
        """True when ``value`` is inside the valid range (NaN and infinities never are)."""
        if not math.isfinite(value):
            return False
        lo_ok = value > self.low if self.low_open else value >= self.low
        hi_ok = value < self.high if self.high_open else value <= self.high
        return lo_ok and hi_ok

    def range_str(self) -> str:
        """The valid range in interval notation, e.g. ``(0, inf)`` or ``[0, 10]``."""
        lb = "(" if self.low_open else "["
        rb = ")" if self.high_open else "]"
        return f"{lb}{_fmt(self.low)}, {_fmt(self.high)}{rb}"

    def coerce(self, value: float) -> float | int:
        """Validate ``value`` for this knob; integer knobs return ``int``.

        Raises:
            KnobError: when the value is outside the valid range or not finite.
        """
        v = float(value)
        if self.integer:
            if not math.isfinite(v) or v != round(v):
                raise KnobError(f"knob {self.name!r} takes whole numbers, got {value!r}")
            v = float(round(v))
        if not self.contains(v):
            raise KnobError(
                f"knob {self.name!r}: value {value!r} outside valid range {self.range_str()}"
            )
        return int(v) if self.integer else v


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:g}"


@dataclass(frozen=True)
class KnobSet(Mapping[str, Knob]):
    """An ordered, immutable collection of knobs, looked up by name with did-you-mean errors."""

    knobs: tuple[Knob, ...]
    _index: dict[str, Knob] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Knob] = {}
        for k in self.knobs:
            if k.name in index:
                raise KnobError(f"duplicate knob name {k.name!r}")
            index[k.name] = k
        object.__setattr__(self, "_index", index)

    @classmethod
    def of(cls, knobs: Iterable[Knob]) -> KnobSet:
        return cls(tuple(knobs))

    def __getitem__(self, name: str) -> Knob:
        try:
            return self._index[name]
        except KeyError:
            raise KnobError(f"unknown knob {name!r}{did_you_mean(name, self._index)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def nominal(self) -> dict[str, float | int]:
        """The nominal domain: every knob at its nominal value."""
        return {k.name: (int(k.nominal) if k.integer else float(k.nominal)) for k in self.knobs}

    def in_phase(self, phase: Phase) -> tuple[Knob, ...]:
        return tuple(k for k in self.knobs if k.phase == phase)

"""The value objects a validated spec is made of: ``Param``, ``Group``, ``Mode`` and ``Every``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from domrand.distributions import Constant, Distribution, MultivariateNormal

__all__ = ["Every", "Group", "Mode", "Param"]


class Mode(str, Enum):
    """How a sample x becomes a knob value: x, x * nominal, or x + nominal."""

    ABSOLUTE = "absolute"
    SCALE = "scale"
    OFFSET = "offset"

    def apply(self, x: float, nominal: float) -> float:
        if self is Mode.SCALE:
            return x * nominal
        if self is Mode.OFFSET:
            return x + nominal
        return x

    def invert(self, value: float, nominal: float) -> float:
        """Value space -> distribution space (``nominal`` must be nonzero for SCALE)."""
        if self is Mode.SCALE:
            return value / nominal
        if self is Mode.OFFSET:
            return value - nominal
        return value


@dataclass(frozen=True)
class Every:
    """Re-draw period: 0 means once per episode, N >= 1 every N control steps."""

    period: int = 0

    @property
    def per_episode(self) -> bool:
        return self.period == 0

    def to_yaml(self) -> str | int:
        if self.period == 0:
            return "episode"
        return "step" if self.period == 1 else self.period


@dataclass(frozen=True)
class Param:
    """One knob's randomization: a distribution, a mode and a re-draw period."""

    knob: str
    dist: Distribution
    mode: Mode = Mode.ABSOLUTE
    every: Every = Every()

    def to_yaml(self) -> Any:
        if (
            isinstance(self.dist, Constant)
            and self.mode is Mode.ABSOLUTE
            and self.every.per_episode
        ):
            return self.dist.value
        d = self.dist.to_dict()
        if self.mode is not Mode.ABSOLUTE:
            d["mode"] = self.mode.value
        if not self.every.per_episode:
            d["every"] = self.every.to_yaml()
        return d


@dataclass(frozen=True)
class Group:
    """Several knobs drawn jointly from one multivariate distribution (e.g. SimOpt's Gaussian)."""

    knobs: tuple[str, ...]
    dist: MultivariateNormal
    mode: Mode = Mode.ABSOLUTE
    every: Every = Every()

    def to_yaml(self) -> dict[str, Any]:
        d: dict[str, Any] = {"knobs": list(self.knobs)}
        d.update(self.dist.to_dict())
        if self.mode is not Mode.ABSOLUTE:
            d["mode"] = self.mode.value
        if not self.every.per_episode:
            d["every"] = self.every.to_yaml()
        return d

"""The state machine of OpenAI's automatic domain randomization (Akkaya et al. 2019).

P_phi is a product of uniforms U(phi_i^L, phi_i^H) that starts collapsed at the nominal values.
With probability ``p_boundary`` an episode evaluates a boundary instead of training: one knob i
and one side (L or H) are chosen at random, the knob is pinned to that boundary, and the
episode's performance goes into the buffer D_i^side. When a buffer holds ``buffer_size``
results, its mean decides: >= t_high widens that boundary by ``delta``, <= t_low narrows it;
then the buffer is cleared. Thresholds are in the task's own performance units (return or
success rate); ``delta`` is in each knob's own units. Ranges never leave ``limits``.

Progress is reported as ADR entropy, H = (1/N) sum_i log(phi_i^H - phi_i^L) nats per dimension.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["AutoDRConfig", "AutoDRState", "Boundary"]


@dataclass(frozen=True)
class Boundary:
    """A boundary under evaluation: the knob and the side (``"low"`` or ``"high"``)."""

    knob: str
    side: str


@dataclass(frozen=True)
class AutoDRConfig:
    """Hyper-parameters, with the paper's defaults scaled to small CPU tasks where noted."""

    t_low: float  #: mean performance at or below which a boundary narrows
    t_high: float  #: mean performance at or above which a boundary widens
    p_boundary: float = 0.5
    buffer_size: int = 240  #: the paper's m; use ~10-20 for short CPU runs
    entropy_floor: float = 1e-6  #: width used for collapsed ranges in the entropy

    def __post_init__(self) -> None:
        if not self.t_low < self.t_high:
            raise ValueError(f"need t_low < t_high, got {self.t_low} and {self.t_high}")
        if not 0.0 <= self.p_boundary <= 1.0:
            raise ValueError(f"p_boundary must be in [0, 1], got {self.p_boundary}")
        if self.buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {self.buffer_size}")


@dataclass
class AutoDRState:
    """Current ranges, limits, steps and performance buffers of automatic DR.

    Args:
        nominal: start value of every randomized knob (ranges start collapsed here).
        limits: the widest range each knob may reach, ``(low, high)``, containing the nominal.
        delta: the step by which a boundary moves, per knob, in the knob's units.
    """

    nominal: dict[str, float]
    limits: dict[str, tuple[float, float]]
    delta: dict[str, float]
    config: AutoDRConfig
    ranges: dict[str, list[float]] = field(default_factory=dict)
    buffers: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    updates: int = 0

    def __post_init__(self) -> None:
        names = list(self.nominal)
        if set(self.limits) != set(names) or set(self.delta) != set(names):
            raise ValueError("nominal, limits and delta must name the same knobs")
        for n in names:
            lo, hi = self.limits[n]
            if not lo <= self.nominal[n] <= hi:
                raise ValueError(f"nominal of {n} outside its limits {self.limits[n]}")
            if self.delta[n] <= 0:
                raise ValueError(f"delta of {n} must be positive")
        if not self.ranges:
            self.ranges = {n: [self.nominal[n], self.nominal[n]] for n in names}

    @property
    def knobs(self) -> tuple[str, ...]:
        return tuple(self.nominal)

    def sample(self, rng: np.random.Generator) -> tuple[dict[str, float], Boundary | None]:
        """A domain for the next episode, and the boundary it evaluates (``None`` = training)."""
        domain = {n: lo + (hi - lo) * rng.random() for n, (lo, hi) in self.ranges.items()}
        if rng.random() >= self.config.p_boundary:
            return domain, None
        knob = self.knobs[int(rng.integers(len(self.knobs)))]
        side = "low" if rng.random() < 0.5 else "high"
        domain[knob] = self.ranges[knob][0 if side == "low" else 1]
        return domain, Boundary(knob, side)

    def record(self, boundary: Boundary, performance: float) -> bool:
        """Add one boundary-evaluation result; returns True when it moved a boundary."""
        if not math.isfinite(performance):
            return False  # faulty episodes (NaN returns) are not evidence either way
        key = (boundary.knob, boundary.side)
        buf = self.buffers.setdefault(key, [])
        buf.append(float(performance))
        if len(buf) < self.config.buffer_size:
            return False
        mean = float(np.mean(buf))
        buf.clear()
        if mean >= self.config.t_high:
            return self._move(boundary, widen=True)
        if mean <= self.config.t_low:
            return self._move(boundary, widen=False)
        return False

    def _move(self, b: Boundary, widen: bool) -> bool:
        lo, hi = self.ranges[b.knob]
        lim_lo, lim_hi = self.limits[b.knob]
        d = self.delta[b.knob]
        if b.side == "low":
            # widening lowers the low boundary; narrowing raises it, never past the high one
            new = max(lim_lo, lo - d) if widen else min(hi, lo + d)
            moved = new != lo
            self.ranges[b.knob][0] = new
        else:
            new = min(lim_hi, hi + d) if widen else max(lo, hi - d)
            moved = new != hi
            self.ranges[b.knob][1] = new
        self.updates += int(moved)
        return moved

    def entropy(self) -> float:
        """ADR entropy in nats per dimension (collapsed ranges count as ``entropy_floor`` wide)."""
        floor = self.config.entropy_floor
        widths = [max(hi - lo, floor) for lo, hi in self.ranges.values()]
        return float(np.mean(np.log(widths)))

    def spec_dict(self, env_id: str | None = None) -> dict[str, Any]:
        """The current ranges as a spec document (uniform per knob; a pin where collapsed)."""
        params: dict[str, Any] = {}
        for n, (lo, hi) in self.ranges.items():
            params[n] = lo if lo == hi else {"dist": "uniform", "low": lo, "high": hi}
        doc: dict[str, Any] = {"parameters": params}
        if env_id is not None:
            doc = {"env": env_id, **doc}
        return doc

    def state_dict(self) -> dict[str, Any]:
        """Plain containers only, safe for ``torch.load(weights_only=True)`` and JSON."""
        return {
            "ranges": {n: list(r) for n, r in self.ranges.items()},
            "buffers": [[k, s, list(v)] for (k, s), v in self.buffers.items()],
            "updates": self.updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        ranges = state["ranges"]
        if set(ranges) != set(self.nominal):
            raise ValueError("saved automatic-DR state names other knobs")
        self.ranges = {n: [float(a), float(b)] for n, (a, b) in ranges.items()}
        self.buffers = {(k, s): [float(x) for x in v] for k, s, v in state["buffers"]}
        self.updates = int(state["updates"])

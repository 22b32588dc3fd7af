"""The compiled sampling plan behind ``RandomizationSpec.sample``.

A spec is compiled once (per bound spec) into a flat list of draws with everything looked up in
advance: the distribution, ``value = x * scale + shift`` (absolute: 1, 0; scale: nominal, 0;
offset: 1, nominal, always from the *nominal* value), the valid range and integer rounding. The
per-step path of the wrappers then costs one distribution draw and a few float operations per
knob instead of dictionary look-ups and enum dispatch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from domrand.distributions import Distribution, MultivariateNormal
from domrand.errors import SpecError
from domrand.spec_model import Every, Mode

if TYPE_CHECKING:
    from domrand.knobs import KnobSet
    from domrand.spec import Domain, RandomizationSpec

__all__ = ["SamplingPlan"]


@dataclass(frozen=True)
class _Draw:
    """One entry of the plan: a distribution and how each of its dimensions becomes a value."""

    names: tuple[str, ...]
    dist: Distribution
    scale: tuple[float, ...]
    shift: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    integer: tuple[bool, ...]
    period: int  #: 0 = per episode, N = every N control steps


def _affine(
    mode: Mode, name: str, knobs: KnobSet | None, file: str, path: str
) -> tuple[float, float]:
    if mode is Mode.ABSOLUTE:
        return 1.0, 0.0
    if knobs is None:
        raise SpecError(
            f"mode {mode.value} needs the env's nominal value, but the spec is not bound to an env",
            file=file,
            path=path,
            show_value=False,
            allowed="set 'env:' in the file or pass env= to load_spec",
        )
    nominal = knobs[name].nominal
    return (nominal, 0.0) if mode is Mode.SCALE else (1.0, nominal)


def _draw(
    names: tuple[str, ...], dist: Distribution, mode: Mode, every: Every, spec: RandomizationSpec,
    path: str,
) -> _Draw:  # fmt: skip
    knobs = spec.knobs
    aff = [_affine(mode, n, knobs, spec.source, path) for n in names]
    bounded = [knobs is not None and n in knobs for n in names]
    return _Draw(
        names=names,
        dist=dist,
        scale=tuple(a[0] for a in aff),
        shift=tuple(a[1] for a in aff),
        low=tuple(knobs[n].low if b else -math.inf for n, b in zip(names, bounded)),  # type: ignore[index]
        high=tuple(knobs[n].high if b else math.inf for n, b in zip(names, bounded)),  # type: ignore[index]
        integer=tuple(bool(b and knobs[n].integer) for n, b in zip(names, bounded)),  # type: ignore[index]
        period=every.period,
    )


class SamplingPlan:
    """A spec compiled for fast, exact sampling. Build with ``SamplingPlan(spec)``."""

    def __init__(self, spec: RandomizationSpec) -> None:
        draws = [
            _draw((p.knob,), p.dist, p.mode, p.every, spec, f"parameters.{p.knob}")
            for p in spec.parameters
        ]
        draws += [
            _draw(g.knobs, g.dist, g.mode, g.every, spec, f"correlated[{i}]")
            for i, g in enumerate(spec.groups)
        ]
        self.draws = tuple(draws)
        self.in_episode = tuple(d for d in draws if d.period > 0)
        self._every_step = all(d.period == 1 for d in self.in_episode)

    def sample(self, rng: np.random.Generator, only_period: int | None = None) -> Domain:
        """Draw every entry, or (``only_period=t >= 1``) the in-episode entries due at step t."""
        out: Domain = {}
        if only_period is None:
            draws = self.draws
        elif self._every_step:
            draws = self.in_episode
        else:
            draws = tuple(d for d in self.in_episode if only_period % d.period == 0)
        for d in draws:
            x = d.dist.sample(rng)
            xs = x.tolist() if isinstance(d.dist, MultivariateNormal) else (x,)
            for i, name in enumerate(d.names):
                v = xs[i] * d.scale[i] + d.shift[i]
                # Clamping only guards float round-off: validation proved the support is inside.
                v = d.low[i] if v < d.low[i] else (d.high[i] if v > d.high[i] else v)
                out[name] = round(v) if d.integer[i] else float(v)
        return out

"""The tunable views of a spec that guided DR works in.

* phi: the flat vector of tunable distribution parameters with bounds derived from the knobs'
  valid ranges (``params()``), and back (``with_params(vector, clip=...)``);
* the normalized [0,1]^N view of the bounded knobs (``normalize`` / ``denormalize``), where
  value = low + (high - low) * u.

``TunableViews`` is a mixin of :class:`domrand.spec.RandomizationSpec`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from domrand.distributions import Choice, Distribution, LogUniform, MultivariateNormal, TruncNormal
from domrand.errors import SpecValueError, UnknownKnobError, did_you_mean
from domrand.knobs import Knob
from domrand.spec_model import Mode

if TYPE_CHECKING:
    from domrand.knobs import KnobSet
    from domrand.spec import Domain, RandomizationSpec
    from domrand.spec_model import Group, Param

__all__ = ["ParamVector", "TunableViews"]


@dataclass(frozen=True)
class ParamVector:
    """The flat vector phi of a spec's tunable distribution parameters, with names and bounds."""

    names: tuple[str, ...]
    values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def __len__(self) -> int:
        return len(self.names)


def _interval_to_dist_space(knob: Knob, mode: Mode) -> tuple[float, float]:
    """The knob's valid range expressed in distribution space for ``mode``, as a closed interval.

    An open finite end is moved inside by 1e-9 of the range, so every point of the result is a
    valid value (``with_params(clip=True)`` projects onto it).
    """
    lo, hi = knob.low, knob.high
    width = hi - lo
    eps = 1e-9 * (width if math.isfinite(width) else max(1.0, abs(lo), abs(hi)))
    if knob.low_open and math.isfinite(lo):
        lo += eps
    if knob.high_open and math.isfinite(hi):
        hi -= eps
    if mode is Mode.ABSOLUTE:
        return lo, hi
    if mode is Mode.OFFSET:
        return lo - knob.nominal, hi - knob.nominal
    a, b = lo / knob.nominal, hi / knob.nominal
    return (min(a, b), max(a, b))


class TunableViews:
    """phi and [0,1]^N views; mixed into ``RandomizationSpec`` (which provides the fields)."""

    parameters: tuple[Param, ...]
    groups: tuple[Group, ...]
    source: str
    knobs: KnobSet | None

    if TYPE_CHECKING:  # provided by RandomizationSpec

        @classmethod
        def from_dict(cls, doc: Any, file: str = ...) -> RandomizationSpec: ...
        def bind(self, knobs: KnobSet, env_id: str | None = ...) -> RandomizationSpec: ...
        def to_dict(self) -> dict[str, Any]: ...
        def knob_names(self) -> tuple[str, ...]: ...
        def _nominal(self, name: str, mode: Mode, path: str) -> float: ...
        def _finish(self, name: str, value: float) -> float | int: ...

    # ------------------------------------------------------------------ phi views
    def _entries(self) -> list[tuple[str, Distribution, Mode, tuple[str, ...]]]:
        e = [(p.knob, p.dist, p.mode, (p.knob,)) for p in self.parameters]
        e += [("+".join(g.knobs), g.dist, g.mode, g.knobs) for g in self.groups]
        return e

    def params(self) -> ParamVector:
        """The tunable vector phi with bounds derived from the knobs' valid ranges."""
        names: list[str] = []
        vals: list[float] = []
        lo: list[float] = []
        hi: list[float] = []
        for label, dist, mode, knob_names in self._entries():
            for n, v in zip(dist.param_names(), dist.params()):
                names.append(f"{label}.{n}")
                vals.append(v)
                b = self._param_bounds(dist, n, mode, knob_names)
                lo.append(b[0])
                hi.append(b[1])
        return ParamVector(
            tuple(names), np.array(vals, float), np.array(lo, float), np.array(hi, float)
        )

    def _param_bounds(
        self, dist: Distribution, pname: str, mode: Mode, knob_names: tuple[str, ...]
    ) -> tuple[float, float]:
        if pname.startswith("chol["):
            i, j = (int(x) for x in pname[5:-1].split(","))
            return (1e-12, math.inf) if i == j else (-math.inf, math.inf)
        knob_name = knob_names[int(pname[5:-1])] if pname.startswith("mean[") else knob_names[0]
        if self.knobs is None or knob_name not in self.knobs:
            rng = (-math.inf, math.inf)
        else:
            rng = _interval_to_dist_space(self.knobs[knob_name], mode)
        if pname == "std" or pname.startswith("std"):
            width = rng[1] - rng[0]
            return (0.0, width if math.isfinite(width) else math.inf)
        if isinstance(dist, LogUniform):
            return (max(rng[0], 1e-12), rng[1])
        return rng

    def with_params(
        self, vector: Sequence[float] | np.ndarray, *, clip: bool = False
    ) -> RandomizationSpec:
        """A copy of the spec with phi replaced, validated like a loaded file.

        Args:
            vector: new values, in the order of :meth:`params`.
            clip: project into the bounds and repair order (low <= high, std >= 0) instead of
                raising; what optimizers such as CMA-ES want.
        """
        view = self.params()
        v = np.asarray(vector, dtype=float).reshape(-1)
        if v.shape[0] != len(view):
            raise SpecValueError(
                "wrong length of parameter vector",
                file=self.source,
                value=v.shape[0],
                allowed=f"{len(view)} values: " + ", ".join(view.names),
            )
        if clip:
            v = np.clip(np.nan_to_num(v, nan=0.0), view.lower, view.upper)
        elif not np.all(np.isfinite(v)):
            bad = view.names[int(np.flatnonzero(~np.isfinite(v))[0])]
            raise SpecValueError(
                "parameter is not finite",
                file=self.source,
                path=bad,
                value=float(v[view.names.index(bad)]),
                allowed="finite numbers",
            )
        new_params: list[Param] = []
        new_groups: list[Group] = []
        i = 0
        for p in self.parameters:
            n = len(p.dist.param_names())
            new_params.append(replace(p, dist=_repair(p.dist.with_params(v[i : i + n]), clip)))
            i += n
        for g in self.groups:
            n = len(g.dist.param_names())
            new_groups.append(replace(g, dist=g.dist.with_params(v[i : i + n])))
            i += n
        doc = replace(self, parameters=tuple(new_params), groups=tuple(new_groups), knobs=None)
        # Re-validate through the same path as a file: structure, then ranges.
        checked = type(self).from_dict(doc.to_dict(), self.source)
        return checked.bind(self.knobs) if self.knobs is not None else checked

    # ------------------------------------------------------------------ normalized view
    def bounded_knobs(self) -> tuple[str, ...]:
        """Randomized knobs with a bounded support, in order: the axes of the [0,1]^N view."""
        out = []
        for name in self.knob_names():
            lo, hi = self.value_bounds(name)
            if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
                out.append(name)
        return tuple(out)

    def value_bounds(self, name: str) -> tuple[float, float]:
        """The range of values ``name`` can take under this spec (value space)."""
        for label, dist, mode, knob_names in self._entries():
            if name in knob_names:
                if isinstance(dist, MultivariateNormal):
                    lo, hi = dist.support_of(knob_names.index(name))
                else:
                    lo, hi = dist.support()
                nominal = self._nominal(name, mode, label) if mode is not Mode.ABSOLUTE else 0.0
                a, b = mode.apply(lo, nominal), mode.apply(hi, nominal)
                return (min(a, b), max(a, b))
        raise UnknownKnobError(
            f"knob not in spec{did_you_mean(name, self.knob_names())}",
            file=self.source,
            value=name,
            allowed=", ".join(self.knob_names()),
        )

    def normalize(self, domain: Mapping[str, float]) -> np.ndarray:
        """Map a domain to [0,1]^N over :meth:`bounded_knobs` (value = low + (high-low) * u)."""
        names = self.bounded_knobs()
        u = np.empty(len(names))
        for i, n in enumerate(names):
            lo, hi = self.value_bounds(n)
            u[i] = (float(domain[n]) - lo) / (hi - lo)
        return u

    def denormalize(self, u: Sequence[float] | np.ndarray) -> Domain:
        """Inverse of :meth:`normalize`; ``u`` is clipped to [0,1] so values stay valid."""
        names = self.bounded_knobs()
        arr = np.clip(np.asarray(u, dtype=float).reshape(-1), 0.0, 1.0)
        if arr.shape[0] != len(names):
            raise SpecValueError(
                "wrong length of normalized vector",
                file=self.source,
                value=arr.shape[0],
                allowed=f"{len(names)} values",
            )
        choices = self._choice_values()
        out: Domain = {}
        for n, x in zip(names, arr):
            lo, hi = self.value_bounds(n)
            v = lo + (hi - lo) * float(x)
            if n in choices:  # a categorical knob snaps to the nearest value it can take
                v = min(choices[n], key=lambda c: abs(c - v))
            out[n] = self._finish(n, v)
        return out

    def _choice_values(self) -> dict[str, list[float]]:
        """Value-space options of every knob drawn from a ``choice``."""
        out: dict[str, list[float]] = {}
        for p in self.parameters:
            if isinstance(p.dist, Choice):
                nominal = self._nominal(p.knob, p.mode, f"parameters.{p.knob}")
                out[p.knob] = [p.mode.apply(float(v), nominal) for v in p.dist.values]
        return out


def _repair(dist: Distribution, clip: bool) -> Distribution:
    """Order low/high and make std non-negative (only when clipping was asked for)."""
    if not clip:
        return dist
    changes: dict[str, float] = {}
    if hasattr(dist, "low") and hasattr(dist, "high") and dist.low > dist.high:  # type: ignore[attr-defined]
        mid = 0.5 * (dist.low + dist.high)  # type: ignore[attr-defined]
        if "low" in dist.tunable:
            changes.update(low=mid, high=mid)
    if hasattr(dist, "std") and dist.std < 0:  # type: ignore[attr-defined]
        changes["std"] = 0.0
    if isinstance(dist, TruncNormal) and changes.get("std", dist.std) == 0:
        # A point mass must sit inside [low, high].
        changes["mean"] = min(max(dist.mean, dist.low), dist.high)
    return replace(dist, **changes) if changes else dist

"""``RandomizationSpec``: load, validate, sample and save randomization specs.

A spec maps knob names to distributions. Sampling returns a ``Domain`` (knob name -> value);
values are always computed from the knobs' *nominal* values, so scale and offset never compound.
The tunable views guided DR uses (phi, [0,1]^N) live in :mod:`domrand.spec_views`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Union

import numpy as np

from domrand.distributions import (
    Choice,
    Constant,
    Distribution,
    MultivariateNormal,
)
from domrand.errors import (
    EnvMismatchError,
    SpecError,
    SpecRangeError,
    SpecValueError,
    UnknownKnobError,
    did_you_mean,
)
from domrand.knobs import KnobSet, Phase
from domrand.spec_io import dump_mapping, read_mapping
from domrand.spec_model import Every, Group, Mode, Param
from domrand.spec_parse import parse_document
from domrand.spec_views import ParamVector, TunableViews

__all__ = [
    "Domain",
    "Every",
    "Group",
    "Mode",
    "Param",
    "ParamVector",
    "RandomizationSpec",
    "load_domain",
    "load_spec",
]

#: A sampled (or pinned) assignment of values to knobs.
Domain = dict[str, float | int]

SpecSource = Union[str, os.PathLike, Mapping[str, Any], "RandomizationSpec"]


@dataclass(frozen=True)
class RandomizationSpec(TunableViews):
    """A validated randomization spec.

    Build one with :func:`load_spec`. ``knobs`` is the env's knob set the spec was bound to (needed
    for nominal values); an unbound spec can still be saved and inspected, and sampled when every
    entry is in absolute mode.
    """

    parameters: tuple[Param, ...]
    groups: tuple[Group, ...] = ()
    env: str | None = None
    description: str | None = None
    source: str = field(default="<dict>", compare=False)
    knobs: KnobSet | None = field(default=None, compare=False, repr=False)
    _plan: Any = field(default=None, init=False, compare=False, repr=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, doc: Any, file: str = "<dict>") -> RandomizationSpec:
        env, desc, params, groups = parse_document(doc, file)
        return cls(params, groups, env, desc, source=file)

    def bind(self, knobs: KnobSet, env_id: str | None = None) -> RandomizationSpec:
        """Check the spec against an env's knobs and return a bound copy.

        Raises:
            EnvMismatchError: the spec's ``env:`` names another env (one sharing this env's
                shipped spec and realities, such as another version, is accepted).
            UnknownKnobError: a knob is not exposed by the env (with did-you-mean).
            SpecRangeError: a distribution's support leaves a knob's valid range.
        """
        from domrand.registry import same_family

        f = self.source
        if (
            env_id is not None
            and self.env is not None
            and self.env != env_id
            and not same_family(self.env, env_id)
        ):
            raise EnvMismatchError(
                "spec is for another env", file=f, path="env", value=self.env, allowed=env_id
            )
        for p in self.parameters:
            self._check(knobs, p.knob, p.dist, p.mode, p.every, f"parameters.{p.knob}")
        for gi, g in enumerate(self.groups):
            for j, name in enumerate(g.knobs):
                self._check(
                    knobs, name, g.dist, g.mode, g.every, f"correlated[{gi}].knobs[{j}]", dim=j
                )
        return replace(self, knobs=knobs)

    def _check(
        self,
        knobs: KnobSet,
        name: str,
        dist: Distribution,
        mode: Mode,
        every: Every,
        path: str,
        dim: int | None = None,
    ) -> None:
        f = self.source
        if name not in knobs:
            raise UnknownKnobError(
                f"unknown knob{did_you_mean(name, knobs)}",
                file=f,
                path=path,
                value=name,
                allowed=", ".join(knobs),
            )
        knob = knobs[name]
        if knob.phase is Phase.LOAD and not every.per_episode:
            raise SpecValueError(
                "knob is applied at load; it can only be re-drawn per episode",
                file=f,
                path=f"{path}.every",
                value=every.to_yaml(),
                allowed="episode",
            )
        if mode is Mode.SCALE and knob.nominal == 0:
            raise SpecValueError(
                "mode scale multiplies the nominal value, which is 0",
                file=f,
                path=f"{path}.mode",
                value="scale",
                allowed="absolute or offset for this knob",
            )
        if isinstance(dist, Choice):
            points = [float(v) for v in dist.values]
            if knob.integer and mode is Mode.ABSOLUTE:
                fractional = [v for v in dist.values if float(v) != round(float(v))]
                if fractional:
                    raise SpecValueError(
                        "this knob takes whole numbers",
                        file=f,
                        path=f"{path}.values",
                        value=fractional[0],
                        allowed=f"integers for {name} ({knob.unit})",
                    )
        elif isinstance(dist, MultivariateNormal):
            points = list(dist.support_of(dim or 0))
        else:
            points = list(dist.support())
        for x in points:
            value = mode.apply(x, knob.nominal)
            if knob.integer and math.isfinite(value):
                value = float(round(value))
            # An unbounded support only approaches +-inf: fine when the range is unbounded there.
            unbounded_ok = math.isinf(value) and value in (knob.low, knob.high)
            if not (knob.contains(value) or unbounded_ok):
                hint = " (add clip: [low, high] to keep it inside)" if math.isinf(x) else ""
                lo, hi = dist.support() if dim is None else dist.support_of(dim)  # type: ignore[attr-defined]
                raise SpecRangeError(
                    f"support [{lo:g}, {hi:g}] of {dist.name} in mode {mode.value} gives "
                    f"{name} = {value:g}, outside its valid range{hint}",
                    file=f,
                    path=path,
                    value=x,
                    allowed=f"{name} in {knob.range_str()} {knob.unit}".rstrip(),
                )

    # ------------------------------------------------------------------ queries
    @property
    def is_domain(self) -> bool:
        """True when the file only pins values (a domain file, e.g. a reality)."""
        return not self.groups and all(isinstance(p.dist, Constant) for p in self.parameters)

    def knob_names(self) -> tuple[str, ...]:
        """Every knob the spec sets, in file order (parameters, then correlated groups)."""
        return tuple(p.knob for p in self.parameters) + tuple(
            k for g in self.groups for k in g.knobs
        )

    def _nominal(self, name: str, mode: Mode, path: str) -> float:
        if mode is Mode.ABSOLUTE:
            return 0.0
        if self.knobs is None:
            raise SpecError(
                f"mode {mode.value} needs the env's nominal value, but the spec is "
                "not bound to an env",
                file=self.source,
                path=path,
                show_value=False,
                allowed="set 'env:' in the file or pass env= to load_spec",
            )
        return self.knobs[name].nominal

    def _finish(self, name: str, value: float) -> float | int:
        if self.knobs is None or name not in self.knobs:
            return float(value)
        knob = self.knobs[name]
        # Guards float round-off at the edges; validation already proved the support is inside.
        value = min(max(value, knob.low), knob.high)
        return round(value) if knob.integer else float(value)

    # ------------------------------------------------------------------ sampling
    def sample(self, rng: np.random.Generator, *, only_period: int | None = None) -> Domain:
        """Draw a domain using only ``rng``.

        Args:
            rng: the generator; the same generator state gives the same domain, bit for bit.
            only_period: internal use by the wrappers: ``None`` samples everything; an int step
                count samples only entries whose re-draw period divides it.
        """
        plan = self._plan
        if plan is None:
            from domrand.sampler import SamplingPlan

            plan = SamplingPlan(self)
            object.__setattr__(self, "_plan", plan)
        return plan.sample(rng, only_period)

    def step_periods(self) -> dict[str, int]:
        """Knobs re-drawn within an episode, with their period in control steps."""
        out = {p.knob: p.every.period for p in self.parameters if not p.every.per_episode}
        for g in self.groups:
            if not g.every.per_episode:
                out.update({k: g.every.period for k in g.knobs})
        return out

    # ------------------------------------------------------------------ saving
    def to_dict(self) -> dict[str, Any]:
        """The spec-file form; ``load_spec(spec.to_dict()) == spec``."""
        d: dict[str, Any] = {}
        if self.env is not None:
            d["env"] = self.env
        if self.description is not None:
            d["description"] = self.description
        d["parameters"] = {p.knob: p.to_yaml() for p in self.parameters}
        if self.groups:
            d["correlated"] = [g.to_yaml() for g in self.groups]
        return d

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the spec as YAML, or JSON for a ``.json`` path (atomic, exact round trip)."""
        p = Path(path)
        dump_mapping(self.to_dict(), p)
        return p

    def merged(self, pins: Mapping[str, float]) -> RandomizationSpec:
        """A copy where every knob in ``pins`` is pinned (replacing its entry, or added)."""
        params = [p for p in self.parameters if p.knob not in pins]
        groups = list(self.groups)
        for g in self.groups:
            if any(k in pins for k in g.knobs):
                raise SpecValueError(
                    "cannot pin part of a correlated group",
                    file=self.source,
                    path="correlated",
                    value=[k for k in g.knobs if k in pins],
                    allowed="pin none or all of " + ", ".join(g.knobs),
                )
        params += [Param(k, Constant(float(v))) for k, v in pins.items()]
        out = replace(self, parameters=tuple(params), groups=tuple(groups), knobs=None)
        # Re-validate like a file, so a NaN pin fails here even when the spec is unbound.
        checked = RandomizationSpec.from_dict(out.to_dict(), self.source)
        return checked.bind(self.knobs) if self.knobs is not None else checked


def _resolve_knobs(env: Any) -> tuple[KnobSet | None, str | None]:
    if env is None:
        return None, None
    if isinstance(env, KnobSet):
        return env, None
    if isinstance(env, str):
        from domrand.registry import all_knobs_for

        return all_knobs_for(env), env
    unwrapped = getattr(env, "unwrapped", env)
    knobs = getattr(unwrapped, "knobs", None)
    if not isinstance(knobs, KnobSet):
        raise TypeError(f"{env!r} does not expose knobs")
    spec = getattr(unwrapped, "spec", None)
    return knobs, getattr(spec, "id", None)


def load_spec(source: SpecSource, env: Any = None) -> RandomizationSpec:
    """Load and validate a spec from a YAML/JSON file, a dict, or an existing spec.

    Args:
        source: path to a ``.yaml``/``.yml``/``.json`` file, a mapping, or a spec.
        env: an env id, a gymnasium env exposing knobs, or a ``KnobSet`` to validate against.
            When omitted and the file has ``env:``, that env's knobs are used.

    Raises:
        SpecError: with the file, key path, received value and what is allowed.
    """
    if isinstance(source, RandomizationSpec):
        spec = source
    elif isinstance(source, Mapping):
        spec = RandomizationSpec.from_dict(source, "<dict>")
    else:
        file = os.fspath(source)
        spec = RandomizationSpec.from_dict(read_mapping(file), file)
    knobs, env_id = _resolve_knobs(env)
    if knobs is None and spec.env is not None:
        from domrand.registry import all_knobs_for, is_registered

        if not is_registered(spec.env):
            from domrand.registry import env_ids

            raise EnvMismatchError(
                f"unknown env{did_you_mean(spec.env, env_ids())}",
                file=spec.source,
                path="env",
                value=spec.env,
                allowed=", ".join(env_ids()),
            )
        knobs, env_id = all_knobs_for(spec.env), spec.env
    if knobs is not None:
        return spec.bind(knobs, env_id)
    return spec


def load_domain(source: SpecSource, env: Any = None) -> Domain:
    """Load a domain file (a spec that only pins values) and return its values.

    Raises:
        SpecValueError: the file randomizes something (it is a spec, not a domain).
    """
    spec = load_spec(source, env)
    if not spec.is_domain:
        moving = [p.knob for p in spec.parameters if not isinstance(p.dist, Constant)]
        moving += [k for g in spec.groups for k in g.knobs]
        raise SpecValueError(
            "a domain file may only pin values",
            file=spec.source,
            path=f"parameters.{moving[0]}",
            show_value=False,
            allowed="bare numbers such as 'pole.mass: 0.2'",
        )
    return spec.sample(np.random.default_rng(0))

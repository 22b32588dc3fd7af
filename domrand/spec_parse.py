"""Turning a parsed spec document into validated ``Param``/``Group`` value objects.

Structure only: types, keys, finite numbers, ordered bounds. Checks that need the environment
(knob names, valid ranges, nominal values) happen in ``RandomizationSpec.bind``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from domrand.distributions import (
    Choice,
    Constant,
    Distribution,
    LogUniform,
    MultivariateNormal,
    Normal,
    TruncNormal,
    Uniform,
)
from domrand.errors import SpecKeyError, SpecTypeError, SpecValueError, did_you_mean

__all__ = ["DIST_KEYS", "Every", "Group", "Mode", "Param", "parse_document"]

TOP_KEYS = ("env", "description", "parameters", "correlated")
COMMON_KEYS = ("dist", "mode", "every")
DIST_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # dist: (required keys, optional keys)
    "constant": (("value",), ()),
    "uniform": (("low", "high"), ()),
    "loguniform": (("low", "high"), ()),
    "normal": (("mean", "std"), ("clip",)),
    "truncnormal": (("mean", "std", "low", "high"), ()),
    "choice": (("values",), ("weights",)),
}
GROUP_KEYS = ("knobs", "dist", "mean", "cov", "clip", "mode", "every")
#: Integers up to this magnitude stay ints in a choice (exact as floats); larger ones become floats.
_MAX_EXACT_INT = 2**53


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


def _yaml_number_hint(v: Any) -> str:
    """YAML 1.1 reads ``1e-3`` (no dot) as text: say how to write the number instead."""
    if not isinstance(v, str):
        return ""
    try:
        x = float(v)
    except ValueError:
        return ""
    if not math.isfinite(x):
        return ""
    mantissa, e, exponent = repr(x).partition("e")
    if e:  # YAML 1.1 floats need a dot in the mantissa and a sign in the exponent
        mantissa += "" if "." in mantissa else ".0"
        exponent = exponent if exponent[0] in "+-" else "+" + exponent
    return f" (YAML reads {v} as text: write {mantissa}{e}{exponent})"


class _Ctx:
    """Carries the file name so every error names it."""

    def __init__(self, file: str) -> None:
        self.file = file

    def number(self, v: Any, path: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SpecTypeError(
                "expected a number",
                file=self.file,
                path=path,
                value=v,
                allowed="a finite int or float" + _yaml_number_hint(v),
            )
        try:
            f = float(v)
        except OverflowError:  # an int beyond the float range (YAML and JSON allow them)
            f = math.inf
        if not math.isfinite(f):
            raise SpecValueError(
                "number is not finite",
                file=self.file,
                path=path,
                value=v,
                allowed="a finite int or float",
            )
        return f

    def pair(self, v: Any, path: str) -> tuple[float, float]:
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            raise SpecTypeError(
                "expected a [low, high] pair",
                file=self.file,
                path=path,
                value=v,
                allowed="a list of two numbers",
            )
        lo = self.number(v[0], f"{path}[0]")
        hi = self.number(v[1], f"{path}[1]")
        if lo > hi:
            raise SpecValueError(
                "low > high", file=self.file, path=path, value=v, allowed="low <= high"
            )
        return lo, hi

    def keys(self, d: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
        for k in d:
            if not isinstance(k, str) or k not in allowed:
                raise SpecKeyError(
                    f"unknown key {k!r}{did_you_mean(str(k), allowed)}",
                    file=self.file,
                    path=f"{path}.{k}" if path else str(k),
                    show_value=False,
                    allowed=", ".join(allowed),
                )

    def require(self, d: Mapping[str, Any], keys: tuple[str, ...], path: str, what: str) -> None:
        for k in keys:
            if k not in d:
                raise SpecKeyError(
                    f"missing key {k!r} for {what}",
                    file=self.file,
                    path=path,
                    show_value=False,
                    allowed=f"{what} needs {', '.join(keys)}",
                )

    def mode(self, v: Any, path: str) -> Mode:
        try:
            return Mode(v)
        except ValueError:
            allowed = [m.value for m in Mode]
            raise SpecValueError(
                f"unknown mode{did_you_mean(str(v), allowed)}",
                file=self.file,
                path=path,
                value=v,
                allowed=", ".join(allowed),
            ) from None

    def every(self, v: Any, path: str) -> Every:
        if v == "episode":
            return Every(0)
        if v == "step":
            return Every(1)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
            return Every(v)
        raise SpecValueError(
            "bad re-draw period",
            file=self.file,
            path=path,
            value=v,
            allowed="'episode', 'step', or an integer N >= 1",
        )


def _parse_dist(ctx: _Ctx, name: Any, d: Mapping[str, Any], path: str) -> Distribution:
    if not isinstance(name, str) or name not in DIST_KEYS:
        raise SpecValueError(
            f"unknown distribution{did_you_mean(str(name), DIST_KEYS)}",
            file=ctx.file,
            path=f"{path}.dist",
            value=name,
            allowed=", ".join(DIST_KEYS),
        )
    required, optional = DIST_KEYS[name]
    ctx.keys(d, COMMON_KEYS + required + optional, path)
    ctx.require(d, required, path, f"dist {name}")
    num = {k: ctx.number(d[k], f"{path}.{k}") for k in required if k not in ("values",)}
    if name == "constant":
        return Constant(num["value"])
    if name in ("uniform", "loguniform"):
        if num["low"] > num["high"]:
            raise SpecValueError(
                "low > high",
                file=ctx.file,
                path=f"{path}.low",
                value=(num["low"], num["high"]),
                allowed="low <= high",
            )
        if not math.isfinite(num["high"] - num["low"]):
            raise SpecValueError(
                "range too wide: high - low overflows",
                file=ctx.file,
                path=f"{path}.high",
                value=(num["low"], num["high"]),
                allowed="high - low below 1.8e308",
            )
        if name == "loguniform":
            if num["low"] <= 0:
                raise SpecValueError(
                    "loguniform needs a positive low",
                    file=ctx.file,
                    path=f"{path}.low",
                    value=d["low"],
                    allowed="0 < low <= high",
                )
            return LogUniform(num["low"], num["high"])
        return Uniform(num["low"], num["high"])
    if name in ("normal", "truncnormal") and num["std"] < 0:
        raise SpecValueError(
            "std must not be negative",
            file=ctx.file,
            path=f"{path}.std",
            value=d["std"],
            allowed="std >= 0",
        )
    if name == "normal":
        clip = ctx.pair(d["clip"], f"{path}.clip") if "clip" in d else None
        # Without a clip, mean + std * z must not overflow for any draw z (|z| < 64).
        if clip is None and not math.isfinite(abs(num["mean"]) + 64 * num["std"]):
            raise SpecValueError(
                "std too large: samples would overflow",
                file=ctx.file,
                path=f"{path}.std",
                value=d["std"],
                allowed="|mean| + 64 std below 1.8e308, or a clip",
            )
        return Normal(num["mean"], num["std"], clip)
    if name == "truncnormal":
        if num["low"] > num["high"]:
            raise SpecValueError(
                "low > high",
                file=ctx.file,
                path=f"{path}.low",
                value=(num["low"], num["high"]),
                allowed="low <= high",
            )
        if num["std"] == 0 and not num["low"] <= num["mean"] <= num["high"]:
            raise SpecValueError(
                "std 0 with mean outside [low, high]",
                file=ctx.file,
                path=f"{path}.mean",
                value=d["mean"],
                allowed="low <= mean <= high when std is 0",
            )
        return TruncNormal(num["mean"], num["std"], num["low"], num["high"])
    # choice
    values = d["values"]
    if not isinstance(values, list) or not values:
        raise SpecTypeError(
            "expected a non-empty list",
            file=ctx.file,
            path=f"{path}.values",
            value=values,
            allowed="a list of numbers",
        )
    # Whole numbers stay ints so integer knobs (latency in steps) read naturally when saved.
    vals = tuple(
        v
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) <= _MAX_EXACT_INT
        else ctx.number(v, f"{path}.values[{i}]")
        for i, v in enumerate(values)
    )
    weights = None
    if "weights" in d:
        w = d["weights"]
        if not isinstance(w, list) or len(w) != len(vals):
            raise SpecTypeError(
                "weights must be a list as long as values",
                file=ctx.file,
                path=f"{path}.weights",
                value=w,
                allowed=f"a list of {len(vals)} non-negative numbers",
            )
        weights = tuple(ctx.number(x, f"{path}.weights[{i}]") for i, x in enumerate(w))
        if min(weights) < 0 or sum(weights) <= 0:
            raise SpecValueError(
                "weights must be non-negative with a positive sum",
                file=ctx.file,
                path=f"{path}.weights",
                value=w,
                allowed="non-negative numbers, not all zero",
            )
    return Choice(vals, weights)


def _parse_param(ctx: _Ctx, knob: str, v: Any) -> Param:
    path = f"parameters.{knob}"
    if isinstance(v, bool) or (not isinstance(v, (int, float, Mapping))):
        raise SpecTypeError(
            "expected a number (pin) or a mapping with 'dist'",
            file=ctx.file,
            path=path,
            value=v,
            allowed="e.g. 9.81 or {dist: uniform, low: 0.5, high: 2.0}",
        )
    if not isinstance(v, Mapping):
        return Param(knob, Constant(ctx.number(v, path)))
    if "dist" not in v:
        raise SpecKeyError(
            "missing key 'dist'",
            file=ctx.file,
            path=path,
            show_value=False,
            allowed=", ".join(DIST_KEYS),
        )
    dist = _parse_dist(ctx, v["dist"], v, path)
    mode = ctx.mode(v["mode"], f"{path}.mode") if "mode" in v else Mode.ABSOLUTE
    every = ctx.every(v["every"], f"{path}.every") if "every" in v else Every()
    return Param(knob, dist, mode, every)


def _parse_group(ctx: _Ctx, i: int, g: Any) -> Group:
    path = f"correlated[{i}]"
    if not isinstance(g, Mapping):
        raise SpecTypeError(
            "expected a mapping",
            file=ctx.file,
            path=path,
            value=g,
            allowed="{knobs: [...], dist: mvnormal, mean: [...], cov: [[...]]}",
        )
    ctx.keys(g, GROUP_KEYS, path)
    ctx.require(g, ("knobs", "dist", "mean", "cov"), path, "a correlated group")
    if g["dist"] != "mvnormal":
        raise SpecValueError(
            "unknown group distribution",
            file=ctx.file,
            path=f"{path}.dist",
            value=g["dist"],
            allowed="mvnormal",
        )
    knobs = g["knobs"]
    if not isinstance(knobs, list) or len(knobs) < 2 or not all(isinstance(k, str) for k in knobs):
        raise SpecTypeError(
            "expected a list of at least two knob names",
            file=ctx.file,
            path=f"{path}.knobs",
            value=knobs,
            allowed="e.g. [pole.mass, cart.mass]",
        )
    if len(set(knobs)) != len(knobs):
        raise SpecValueError(
            "a knob appears twice",
            file=ctx.file,
            path=f"{path}.knobs",
            value=knobs,
            allowed="distinct knob names",
        )
    k = len(knobs)
    mean = g["mean"]
    if not isinstance(mean, list) or len(mean) != k:
        raise SpecTypeError(
            f"mean must be a list of {k} numbers",
            file=ctx.file,
            path=f"{path}.mean",
            value=mean,
            allowed=f"{k} numbers, one per knob",
        )
    mu = tuple(ctx.number(m, f"{path}.mean[{j}]") for j, m in enumerate(mean))
    cov = g["cov"]
    if (
        not isinstance(cov, list)
        or len(cov) != k
        or not all(isinstance(r, list) and len(r) == k for r in cov)
    ):
        raise SpecTypeError(
            f"cov must be a {k}x{k} matrix",
            file=ctx.file,
            path=f"{path}.cov",
            value=cov,
            allowed=f"a list of {k} lists of {k} numbers",
        )
    c = tuple(
        tuple(ctx.number(x, f"{path}.cov[{r}][{s}]") for s, x in enumerate(row))
        for r, row in enumerate(cov)
    )
    arr = np.asarray(c)
    with np.errstate(over="ignore", invalid="ignore"):  # entries near 1e308 overflow here
        symmetric = np.allclose(arr, arr.T, rtol=1e-9, atol=1e-12)
    if not symmetric:
        raise SpecValueError(
            "cov is not symmetric",
            file=ctx.file,
            path=f"{path}.cov",
            value=cov,
            allowed="a symmetric positive semi-definite matrix",
        )
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            eig = np.linalg.eigvalsh(arr)
    except np.linalg.LinAlgError:
        eig = np.array([math.nan])
    if not np.all(np.isfinite(eig)):
        raise SpecValueError(
            "cov is too large to factor",
            file=ctx.file,
            path=f"{path}.cov",
            value=cov,
            allowed="eigenvalues below 1.8e308",
        )
    if eig.min() < -1e-10 * max(1.0, float(np.abs(arr).max())):
        raise SpecValueError(
            "cov is not positive semi-definite",
            file=ctx.file,
            path=f"{path}.cov",
            value=cov,
            allowed="a symmetric positive semi-definite matrix",
        )
    clip = None
    if "clip" in g:
        cl = g["clip"]
        if not isinstance(cl, list) or len(cl) != k:
            raise SpecTypeError(
                f"clip must be a list of {k} [low, high] pairs",
                file=ctx.file,
                path=f"{path}.clip",
                value=cl,
                allowed="one [low, high] per knob",
            )
        clip = tuple(ctx.pair(p, f"{path}.clip[{j}]") for j, p in enumerate(cl))
    mode = ctx.mode(g["mode"], f"{path}.mode") if "mode" in g else Mode.ABSOLUTE
    every = ctx.every(g["every"], f"{path}.every") if "every" in g else Every()
    return Group(tuple(knobs), MultivariateNormal(mu, c, clip), mode, every)


def parse_document(
    doc: Any, file: str
) -> tuple[str | None, str | None, tuple[Param, ...], tuple[Group, ...]]:
    """Validate the structure of a parsed spec document.

    Returns ``(env, description, params, groups)``.
    """
    ctx = _Ctx(file)
    if not isinstance(doc, Mapping):
        raise SpecTypeError(
            "top level must be a mapping",
            file=file,
            value=type(doc).__name__,
            allowed="a mapping with keys " + ", ".join(TOP_KEYS),
        )
    ctx.keys(doc, TOP_KEYS, "")
    env = doc.get("env")
    if env is not None and not isinstance(env, str):
        raise SpecTypeError(
            "env must be a string",
            file=file,
            path="env",
            value=env,
            allowed="an env id such as domrand/CartPole-v0",
        )
    desc = doc.get("description")
    if desc is not None and not isinstance(desc, str):
        raise SpecTypeError(
            "description must be a string",
            file=file,
            path="description",
            value=desc,
            allowed="text",
        )
    params_doc = doc.get("parameters", {})
    if params_doc is None:
        params_doc = {}
    if not isinstance(params_doc, Mapping):
        raise SpecTypeError(
            "parameters must be a mapping",
            file=file,
            path="parameters",
            value=params_doc,
            allowed="knob name -> value or distribution",
        )
    params = []
    for knob, v in params_doc.items():
        if not isinstance(knob, str) or not knob:
            raise SpecTypeError(
                "knob names must be non-empty strings",
                file=file,
                path=f"parameters.{knob}",
                value=knob,
                allowed="dotted names such as pole.mass",
            )
        params.append(_parse_param(ctx, knob, v))
    groups_doc = doc.get("correlated", [])
    if groups_doc is None:
        groups_doc = []
    if not isinstance(groups_doc, list):
        raise SpecTypeError(
            "correlated must be a list",
            file=file,
            path="correlated",
            value=groups_doc,
            allowed="a list of groups",
        )
    groups = tuple(_parse_group(ctx, i, g) for i, g in enumerate(groups_doc))
    seen = {p.knob for p in params}
    for i, g in enumerate(groups):
        for kn in g.knobs:
            if kn in seen:
                raise SpecValueError(
                    "knob randomized twice",
                    file=file,
                    path=f"correlated[{i}].knobs",
                    value=kn,
                    allowed="each knob in at most one entry",
                )
            seen.add(kn)
    if not params and not groups:
        raise SpecKeyError(
            "spec randomizes and pins nothing",
            file=file,
            path="parameters",
            show_value=False,
            allowed="at least one knob under 'parameters'",
        )
    return env, desc, tuple(params), groups

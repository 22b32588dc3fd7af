"""Turning a parsed spec document into validated ``Param``/``Group`` value objects.

Structure only: types, keys, finite numbers, ordered bounds. Checks that need the environment
(knob names, valid ranges, nominal values) happen in ``RandomizationSpec.bind``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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
from domrand.spec_checks import MAX_EXACT_INT, Ctx
from domrand.spec_model import Every, Group, Mode, Param

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


def _parse_dist(ctx: Ctx, name: Any, d: Mapping[str, Any], path: str) -> Distribution:
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
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_EXACT_INT
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


def _parse_param(ctx: Ctx, knob: str, v: Any) -> Param:
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


def _parse_group(ctx: Ctx, i: int, g: Any) -> Group:
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
    ctx = Ctx(file)
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

"""RandomizationSpec: parsing, validation errors, binding, sampling, phi views, save/load.

Most tests bind to the toy knob set from ``tests/conftest.py`` (no physics engine); a few use the
shipped CartPole spec, which builds the pybullet env once (cached by the registry).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from domrand.distributions import (
    Choice,
    Constant,
    LogUniform,
    MultivariateNormal,
    Normal,
    TruncNormal,
    Uniform,
)
from domrand.errors import (
    DomrandError,
    EnvMismatchError,
    SpecError,
    SpecFileError,
    SpecKeyError,
    SpecRangeError,
    SpecSyntaxError,
    SpecTypeError,
    SpecValueError,
    UnknownKnobError,
    did_you_mean,
)
from domrand.knobs import Knob, KnobSet
from domrand.registry import default_spec_path, knobs_for, realities
from domrand.spec import Every, Mode, RandomizationSpec, load_domain, load_spec

CARTPOLE = "domrand/CartPole-v0"

GROUP = {
    "knobs": ["link.length", "link.mass"],
    "dist": "mvnormal",
    "mean": [0.0, 0.5],
    "cov": [[0.01, 0.004], [0.004, 0.04]],
    "clip": [[-0.5, 0.5], [-1.0, 1.0]],
    "mode": "offset",
    "every": 3,
}

#: Every distribution, mode and re-draw period, plus a correlated group.
FULL: dict[str, Any] = {
    "env": "test/Toy-v0",
    "description": "every dist, mode and period",
    "parameters": {
        "cart.mass": 1.5,
        "model.scale": {"dist": "constant", "value": 1.1, "mode": "scale"},
        "pole.mass": {"dist": "loguniform", "low": 0.5, "high": 2.0, "mode": "scale"},
        "cart.friction": {"dist": "loguniform", "low": 1e-05, "high": 0.1},
        "pole.damping": {
            "dist": "normal",
            "mean": 0.0,
            "std": 0.1,
            "clip": [-0.5, 0.5],
            "mode": "offset",
        },
        "motor.gain": {"dist": "uniform", "low": 0.75, "high": 1.5, "mode": "scale", "every": 5},
        "action.delay": {
            "dist": "choice",
            "values": [0, 1, 2],
            "weights": [0.5, 0.3, 0.2],
            "every": "step",
        },
        "obs.bias": {"dist": "normal", "mean": 0.0, "std": 0.01, "every": "step"},
        "tilt": {"dist": "truncnormal", "mean": -2.0, "std": 0.3, "low": -3.0, "high": -1.0},
    },
    "correlated": [GROUP],
}


def spec_of(doc: dict[str, Any], knobs: KnobSet | None) -> RandomizationSpec:
    return load_spec(doc, env=knobs) if knobs is not None else load_spec(doc)


def domains(spec: RandomizationSpec, n: int, seed: int = 0) -> list[dict[str, float | int]]:
    rng = np.random.default_rng(seed)
    return [spec.sample(rng) for _ in range(n)]


def column(ds: list[dict[str, float | int]], name: str) -> np.ndarray:
    return np.array([d[name] for d in ds], dtype=float)


# ================================================================ errors module
def test_spec_error_message_format() -> None:
    e = SpecValueError(
        "low > high",
        file="s.yaml",
        path="parameters.x.low",
        value=(2.0, 1.0),
        allowed="low <= high",
    )
    assert str(e) == "s.yaml: parameters.x.low: low > high (got (2.0, 1.0)); allowed: low <= high"
    quiet = SpecKeyError("missing key", file="s.yaml", path="parameters.x", show_value=False)
    assert str(quiet) == "s.yaml: parameters.x: missing key"
    assert str(SpecError("bad")).startswith("<dict>: bad")
    long = SpecTypeError("t", value="x" * 500)
    assert len(str(long)) < 150 and "..." in str(long)


def test_spec_error_located_keeps_everything_but_the_file() -> None:
    e = SpecRangeError("d", path="p", value=3, allowed="a", show_value=True)
    moved = e.located("f.yaml")
    assert type(moved) is SpecRangeError
    assert (moved.file, moved.path, moved.value, moved.allowed) == ("f.yaml", "p", 3, "a")
    assert str(moved).startswith("f.yaml: p: d")
    assert moved.located("f.yaml") is moved


@pytest.mark.parametrize(
    "cls",
    [
        SpecFileError,
        SpecSyntaxError,
        SpecKeyError,
        SpecTypeError,
        SpecValueError,
        SpecRangeError,
        UnknownKnobError,
        EnvMismatchError,
    ],
)
def test_spec_errors_are_spec_errors_and_value_errors(cls: type) -> None:
    assert issubclass(cls, SpecError)
    assert issubclass(cls, DomrandError) and issubclass(cls, ValueError)


def test_did_you_mean() -> None:
    assert did_you_mean("pole.mas", ["pole.mass", "cart.mass"]) == " (did you mean 'pole.mass'?)"
    assert did_you_mean("hgih", ["low", "high"]) == " (did you mean 'high'?)"
    assert did_you_mean("xyz", ["pole.mass"]) == ""


# ================================================================ parsing
def test_parse_defaults_and_every_kind() -> None:
    spec = load_spec(
        {
            "parameters": {
                "a": {"dist": "uniform", "low": 0, "high": 1},
                "b": {"dist": "uniform", "low": 0, "high": 1, "every": "episode"},
                "c": {"dist": "uniform", "low": 0, "high": 1, "every": "step"},
                "d": {"dist": "uniform", "low": 0, "high": 1, "every": 7},
                "e": 2,
            }
        }
    )
    p = {x.knob: x for x in spec.parameters}
    assert p["a"].mode is Mode.ABSOLUTE and p["a"].every == Every(0) and p["a"].every.per_episode
    assert p["b"].every == Every(0)
    assert p["c"].every == Every(1) and not p["c"].every.per_episode
    assert p["d"].every == Every(7)
    assert [p[k].every.to_yaml() for k in "abcd"] == ["episode", "episode", "step", 7]
    assert p["e"].dist == Constant(2.0) and isinstance(p["e"].dist.value, float)
    assert p["a"].dist == Uniform(0.0, 1.0)
    assert spec.knob_names() == ("a", "b", "c", "d", "e")
    assert spec.knobs is None and spec.source == "<dict>"


def test_parse_every_distribution() -> None:
    spec = RandomizationSpec.from_dict(FULL)
    d = {p.knob: p.dist for p in spec.parameters}
    assert d["cart.mass"] == Constant(1.5)
    assert d["model.scale"] == Constant(1.1)
    assert d["pole.mass"] == LogUniform(0.5, 2.0)
    assert d["cart.friction"] == LogUniform(1e-05, 0.1)
    assert d["pole.damping"] == Normal(0.0, 0.1, (-0.5, 0.5))
    assert d["motor.gain"] == Uniform(0.75, 1.5)
    assert d["action.delay"] == Choice((0, 1, 2), (0.5, 0.3, 0.2))
    assert d["tilt"] == TruncNormal(-2.0, 0.3, -3.0, -1.0)
    (g,) = spec.groups
    assert g.knobs == ("link.length", "link.mass")
    assert g.dist == MultivariateNormal(
        (0.0, 0.5), ((0.01, 0.004), (0.004, 0.04)), ((-0.5, 0.5), (-1.0, 1.0))
    )
    assert g.mode is Mode.OFFSET and g.every == Every(3)
    assert spec.env == "test/Toy-v0" and spec.description == "every dist, mode and period"


def test_mode_apply_and_invert() -> None:
    assert Mode.SCALE.apply(2.0, 0.1) == pytest.approx(0.2)
    assert Mode.OFFSET.apply(0.3, 0.5) == pytest.approx(0.8)
    assert Mode.ABSOLUTE.apply(3.0, 99.0) == 3.0
    for m in Mode:
        assert m.invert(m.apply(1.7, 0.4), 0.4) == pytest.approx(1.7)


# ================================================================ validation errors
#: (id, document, error class, fragments the message must contain besides the file name).
ERROR_CASES: list[tuple[str, dict[str, Any], type[SpecError], list[str]]] = [
    (
        "uniform-low-gt-high",
        {"parameters": {"pole.mass": {"dist": "uniform", "low": 2.0, "high": 1.0}}},
        SpecValueError,
        ["parameters.pole.mass.low", "low > high", "(2.0, 1.0)", "allowed: low <= high"],
    ),
    (
        "loguniform-low-gt-high",
        {"parameters": {"pole.mass": {"dist": "loguniform", "low": 3, "high": 1}}},
        SpecValueError,
        ["parameters.pole.mass.low", "low > high", "(3.0, 1.0)", "low <= high"],
    ),
    (
        "truncnormal-low-gt-high",
        {
            "parameters": {
                "pole.damping": {"dist": "truncnormal", "mean": 1, "std": 1, "low": 2, "high": 1}
            }
        },
        SpecValueError,
        ["parameters.pole.damping.low", "low > high", "low <= high"],
    ),
    (
        "normal-clip-reversed",
        {"parameters": {"pole.damping": {"dist": "normal", "mean": 1, "std": 1, "clip": [2, 1]}}},
        SpecValueError,
        ["parameters.pole.damping.clip", "low > high", "[2, 1]", "low <= high"],
    ),
    (
        "normal-clip-not-pair",
        {"parameters": {"pole.damping": {"dist": "normal", "mean": 1, "std": 1, "clip": [2]}}},
        SpecTypeError,
        ["parameters.pole.damping.clip", "[low, high] pair", "[2]"],
    ),
    (
        "normal-negative-std",
        {"parameters": {"pole.damping": {"dist": "normal", "mean": 1, "std": -0.5}}},
        SpecValueError,
        ["parameters.pole.damping.std", "negative", "-0.5", "std >= 0"],
    ),
    (
        "truncnormal-negative-std",
        {
            "parameters": {
                "pole.damping": {"dist": "truncnormal", "mean": 1, "std": -1, "low": 0, "high": 2}
            }
        },
        SpecValueError,
        ["parameters.pole.damping.std", "(got -1)", "std >= 0"],
    ),
    (
        "truncnormal-point-outside",
        {
            "parameters": {
                "pole.damping": {"dist": "truncnormal", "mean": 5, "std": 0, "low": 0, "high": 2}
            }
        },
        SpecValueError,
        ["parameters.pole.damping.mean", "(got 5)", "low <= mean <= high"],
    ),
    (
        "loguniform-low-zero",
        {"parameters": {"pole.mass": {"dist": "loguniform", "low": 0, "high": 2}}},
        SpecValueError,
        ["parameters.pole.mass.low", "positive", "(got 0)", "0 < low <= high"],
    ),
    (
        "loguniform-low-negative",
        {"parameters": {"pole.mass": {"dist": "loguniform", "low": -1.5, "high": 2}}},
        SpecValueError,
        ["parameters.pole.mass.low", "(got -1.5)", "0 < low"],
    ),
    (
        "unknown-dist",
        {"parameters": {"pole.mass": {"dist": "unifrom", "low": 0.5, "high": 2}}},
        SpecValueError,
        ["parameters.pole.mass.dist", "did you mean 'uniform'?", "'unifrom'", "loguniform"],
    ),
    (
        "dist-not-a-string",
        {"parameters": {"pole.mass": {"dist": ["uniform"], "low": 0.5, "high": 2}}},
        SpecValueError,
        ["parameters.pole.mass.dist", "unknown distribution", "['uniform']"],
    ),
    (
        "unknown-key-hgih",
        {"parameters": {"pole.mass": {"dist": "uniform", "low": 0.5, "hgih": 2}}},
        SpecKeyError,
        ["parameters.pole.mass.hgih", "unknown key 'hgih'", "did you mean 'high'?", "low, high"],
    ),
    (
        "key-of-another-dist",
        {"parameters": {"pole.mass": {"dist": "uniform", "low": 0.5, "high": 2, "std": 1}}},
        SpecKeyError,
        ["parameters.pole.mass.std", "unknown key 'std'", "allowed: dist, mode, every, low, high"],
    ),
    (
        "missing-high",
        {"parameters": {"pole.mass": {"dist": "uniform", "low": 0.5}}},
        SpecKeyError,
        ["parameters.pole.mass", "missing key 'high'", "uniform needs low, high"],
    ),
    (
        "missing-dist",
        {"parameters": {"pole.mass": {"low": 0.5, "high": 2}}},
        SpecKeyError,
        ["parameters.pole.mass", "missing key 'dist'", "uniform"],
    ),
    (
        "unknown-top-key",
        {"paramters": {"pole.mass": 0.2}},
        SpecKeyError,
        ["paramters", "did you mean 'parameters'?", "env, description, parameters, correlated"],
    ),
    (
        "unknown-knob",
        {"parameters": {"pole.mas": {"dist": "uniform", "low": 0.05, "high": 0.2}}},
        UnknownKnobError,
        ["parameters.pole.mas", "did you mean 'pole.mass'?", "(got 'pole.mas')", "cart.mass"],
    ),
    (
        "nan-low",
        {"parameters": {"pole.mass": {"dist": "uniform", "low": math.nan, "high": 2}}},
        SpecValueError,
        ["parameters.pole.mass.low", "not finite", "nan", "a finite int or float"],
    ),
    (
        "inf-high",
        {"parameters": {"pole.mass": {"dist": "uniform", "low": 0.5, "high": math.inf}}},
        SpecValueError,
        ["parameters.pole.mass.high", "not finite", "inf", "a finite int or float"],
    ),
    (
        "minus-inf-pin",
        {"parameters": {"cart.friction": -math.inf}},
        SpecValueError,
        ["parameters.cart.friction", "not finite", "-inf"],
    ),
    (
        "nan-in-group-cov",
        {"correlated": [{**GROUP, "cov": [[math.nan, 0], [0, 1]]}]},
        SpecValueError,
        ["correlated[0].cov[0][0]", "not finite"],
    ),
    (
        "string-where-number",
        {"parameters": {"pole.mass": {"dist": "uniform", "low": "0.5", "high": 2}}},
        SpecTypeError,
        ["parameters.pole.mass.low", "expected a number", "(got '0.5')", "a finite int or float"],
    ),
    (
        "bool-where-number",
        {"parameters": {"pole.mass": {"dist": "uniform", "low": 0.5, "high": True}}},
        SpecTypeError,
        ["parameters.pole.mass.high", "expected a number", "(got True)"],
    ),
    (
        "bool-pin",
        {"parameters": {"pole.mass": True}},
        SpecTypeError,
        ["parameters.pole.mass", "(got True)", "e.g. 9.81"],
    ),
    (
        "string-pin",
        {"parameters": {"pole.mass": "heavy"}},
        SpecTypeError,
        ["parameters.pole.mass", "(got 'heavy')", "e.g. 9.81"],
    ),
    (
        "list-pin",
        {"parameters": {"pole.mass": [0.1, 0.2]}},
        SpecTypeError,
        ["parameters.pole.mass", "(got [0.1, 0.2])"],
    ),
    (
        "unknown-mode",
        {"parameters": {"pole.mass": {"dist": "uniform", "low": 0.5, "high": 2, "mode": "scael"}}},
        SpecValueError,
        ["parameters.pole.mass.mode", "did you mean 'scale'?", "(got 'scael')", "absolute, scale"],
    ),
    (
        "normal-unclipped-mass",
        {"parameters": {"pole.mass": {"dist": "normal", "mean": 0.1, "std": 0.01}}},
        SpecRangeError,
        ["parameters.pole.mass", "clip", "(got -inf)", "pole.mass in (0, 10] kg"],
    ),
    (
        "uniform-scale-reaches-zero",
        {"parameters": {"pole.mass": {"dist": "uniform", "low": 0, "high": 2, "mode": "scale"}}},
        SpecRangeError,
        ["parameters.pole.mass", "pole.mass = 0", "(got 0.0)", "pole.mass in (0, 10] kg"],
    ),
    (
        "uniform-scale-above-range",
        {
            "parameters": {
                "pole.mass": {"dist": "loguniform", "low": 1, "high": 200, "mode": "scale"}
            }
        },
        SpecRangeError,
        ["parameters.pole.mass", "pole.mass = 20", "(got 200.0)", "(0, 10]"],
    ),
    (
        "offset-negative-friction",
        {
            "parameters": {
                "cart.friction": {"dist": "uniform", "low": -0.1, "high": 0.1, "mode": "offset"}
            }
        },
        SpecRangeError,
        ["parameters.cart.friction", "cart.friction = -0.1", "(got -0.1)", "[0, 50] N"],
    ),
    (
        "scale-negative-nominal",
        {"parameters": {"tilt": {"dist": "uniform", "low": 0.5, "high": 6, "mode": "scale"}}},
        SpecRangeError,
        ["parameters.tilt", "tilt = -12", "[-10, -0.5] rad"],
    ),
    (
        "pin-outside-range",
        {"parameters": {"pole.mass": 20}},
        SpecRangeError,
        ["parameters.pole.mass", "pole.mass = 20", "(0, 10]"],
    ),
    (
        "choice-value-outside-range",
        {"parameters": {"action.delay": {"dist": "choice", "values": [0, 1, 25]}}},
        SpecRangeError,
        ["parameters.action.delay", "action.delay = 25", "[0, 20] steps"],
    ),
    (
        "load-knob-every-step",
        {
            "parameters": {
                "model.scale": {"dist": "uniform", "low": 0.8, "high": 1.2, "every": "step"}
            }
        },
        SpecValueError,
        ["parameters.model.scale.every", "applied at load", "(got 'step')", "allowed: episode"],
    ),
    (
        "load-knob-every-n",
        {"parameters": {"model.scale": {"dist": "uniform", "low": 0.8, "high": 1.2, "every": 4}}},
        SpecValueError,
        ["parameters.model.scale.every", "(got 4)", "allowed: episode"],
    ),
    (
        "scale-on-zero-nominal",
        {
            "parameters": {
                "cart.friction": {"dist": "uniform", "low": 0.5, "high": 2, "mode": "scale"}
            }
        },
        SpecValueError,
        ["parameters.cart.friction.mode", "nominal", "(got 'scale')", "absolute or offset"],
    ),
    (
        "choice-empty",
        {"parameters": {"action.delay": {"dist": "choice", "values": []}}},
        SpecTypeError,
        ["parameters.action.delay.values", "non-empty list", "(got [])"],
    ),
    (
        "choice-bool-value",
        {"parameters": {"action.delay": {"dist": "choice", "values": [0, True]}}},
        SpecTypeError,
        ["parameters.action.delay.values[1]", "(got True)"],
    ),
    (
        "choice-weights-length",
        {"parameters": {"action.delay": {"dist": "choice", "values": [0, 1], "weights": [1]}}},
        SpecTypeError,
        ["parameters.action.delay.weights", "as long as values", "(got [1])", "a list of 2"],
    ),
    (
        "choice-negative-weight",
        {"parameters": {"action.delay": {"dist": "choice", "values": [0, 1], "weights": [1, -1]}}},
        SpecValueError,
        ["parameters.action.delay.weights", "non-negative", "[1, -1]"],
    ),
    (
        "choice-zero-weights",
        {"parameters": {"action.delay": {"dist": "choice", "values": [0, 1], "weights": [0, 0]}}},
        SpecValueError,
        ["parameters.action.delay.weights", "positive sum", "[0, 0]"],
    ),
    (
        "group-not-symmetric",
        {"correlated": [{**GROUP, "cov": [[0.01, 0.004], [0.003, 0.04]]}]},
        SpecValueError,
        ["correlated[0].cov", "not symmetric", "[[0.01, 0.004], [0.003, 0.04]]", "symmetric"],
    ),
    (
        "group-not-psd",
        {"correlated": [{**GROUP, "cov": [[0.01, 0.1], [0.1, 0.04]]}]},
        SpecValueError,
        ["correlated[0].cov", "not positive semi-definite", "[[0.01, 0.1], [0.1, 0.04]]"],
    ),
    (
        "group-mean-size",
        {"correlated": [{**GROUP, "mean": [0.0]}]},
        SpecTypeError,
        ["correlated[0].mean", "list of 2 numbers", "(got [0.0])", "one per knob"],
    ),
    (
        "group-cov-shape",
        {"correlated": [{**GROUP, "cov": [[0.01, 0.0, 0.0], [0.0, 0.04, 0.0]]}]},
        SpecTypeError,
        ["correlated[0].cov", "2x2 matrix", "a list of 2 lists of 2 numbers"],
    ),
    (
        "group-clip-size",
        {"correlated": [{**GROUP, "clip": [[-0.5, 0.5]]}]},
        SpecTypeError,
        ["correlated[0].clip", "2 [low, high] pairs", "(got [[-0.5, 0.5]])"],
    ),
    (
        "group-clip-reversed",
        {"correlated": [{**GROUP, "clip": [[-0.5, 0.5], [1.0, -1.0]]}]},
        SpecValueError,
        ["correlated[0].clip[1]", "low > high"],
    ),
    (
        "group-one-knob",
        {"correlated": [{**GROUP, "knobs": ["link.length"], "mean": [0], "cov": [[1]]}]},
        SpecTypeError,
        ["correlated[0].knobs", "at least two", "(got ['link.length'])"],
    ),
    (
        "group-knob-twice",
        {"correlated": [{**GROUP, "knobs": ["link.mass", "link.mass"]}]},
        SpecValueError,
        ["correlated[0].knobs", "appears twice", "distinct knob names"],
    ),
    (
        "knob-in-parameters-and-group",
        {"parameters": {"link.mass": 2.0}, "correlated": [GROUP]},
        SpecValueError,
        ["correlated[0].knobs", "randomized twice", "(got 'link.mass')", "at most one entry"],
    ),
    (
        "knob-in-two-groups",
        {"correlated": [GROUP, {**GROUP, "knobs": ["tilt", "link.mass"]}]},
        SpecValueError,
        ["correlated[1].knobs", "randomized twice", "(got 'link.mass')"],
    ),
    (
        "group-wrong-dist",
        {"correlated": [{**GROUP, "dist": "normal"}]},
        SpecValueError,
        ["correlated[0].dist", "(got 'normal')", "allowed: mvnormal"],
    ),
    (
        "group-unknown-key",
        {"correlated": [{**GROUP, "clpi": 1}]},
        SpecKeyError,
        ["correlated[0].clpi", "did you mean 'clip'?"],
    ),
    (
        "group-missing-cov",
        {"correlated": [{k: v for k, v in GROUP.items() if k != "cov"}]},
        SpecKeyError,
        ["correlated[0]", "missing key 'cov'"],
    ),
    (
        "group-not-a-mapping",
        {"correlated": [["link.length", "link.mass"]]},
        SpecTypeError,
        ["correlated[0]", "expected a mapping"],
    ),
    (
        "correlated-not-a-list",
        {"correlated": GROUP},
        SpecTypeError,
        ["correlated", "must be a list"],
    ),
    (
        "group-unclipped-mass",
        {"correlated": [{k: v for k, v in GROUP.items() if k != "clip"}]},
        SpecRangeError,
        ["correlated[0].knobs[0]", "clip", "link.length in [0.1, 5] m"],
    ),
    (
        "group-unknown-knob",
        {"correlated": [{**GROUP, "knobs": ["link.length", "link.mas"]}]},
        UnknownKnobError,
        ["correlated[0].knobs[1]", "did you mean 'link.mass'?", "(got 'link.mas')"],
    ),
    (
        "group-load-knob-every-step",
        {"correlated": [{**GROUP, "knobs": ["link.length", "model.scale"], "every": "step"}]},
        SpecValueError,
        ["correlated[0].knobs[1].every", "applied at load", "allowed: episode"],
    ),
    (
        "empty-spec",
        {},
        SpecKeyError,
        ["parameters", "randomizes and pins nothing", "at least one knob"],
    ),
    ("empty-parameters", {"parameters": {}}, SpecKeyError, ["randomizes and pins nothing"]),
    ("null-parameters", {"parameters": None}, SpecKeyError, ["randomizes and pins nothing"]),
    (
        "parameters-not-mapping",
        {"parameters": ["pole.mass"]},
        SpecTypeError,
        ["parameters", "must be a mapping", "(got ['pole.mass'])"],
    ),
    (
        "env-not-string",
        {"env": 3, "parameters": {"pole.mass": 0.2}},
        SpecTypeError,
        ["env", "must be a string", "(got 3)"],
    ),
    (
        "description-not-string",
        {"description": ["x"], "parameters": {"pole.mass": 0.2}},
        SpecTypeError,
        ["description", "must be a string"],
    ),
    (
        "non-string-knob-name",
        {"parameters": {7: 0.2}},
        SpecTypeError,
        ["parameters.7", "non-empty strings", "(got 7)"],
    ),
]

BAD_EVERY: list[Any] = [0, -2, 1.5, "often", "steps", True, None, [1]]


# Each case from a YAML file and from a JSON file (JSON cannot have a non-string key).
FILE_CASES = [
    pytest.param(doc, exc, frags, suffix, id=f"{suffix[1:]}-{name}")
    for suffix in (".yaml", ".json")
    for name, doc, exc, frags in ERROR_CASES
    if not (suffix == ".json" and name == "non-string-knob-name")
]


@pytest.mark.parametrize("doc,exc,fragments,suffix", FILE_CASES)
def test_validation_errors_name_file_path_value_and_allowed(
    tmp_path: Path,
    knobs: KnobSet,
    doc: dict[str, Any],
    exc: type[SpecError],
    fragments: list[str],
    suffix: str,
) -> None:
    path = tmp_path / f"spec{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(doc))  # NaN/Infinity are written as JSON extensions
    else:
        path.write_text(yaml.safe_dump(doc))
    with pytest.raises(exc) as info:
        load_spec(path, env=knobs)
    msg = str(info.value)
    assert type(info.value) is exc  # exactly this subclass, not a sibling
    assert msg.startswith(f"{path}: "), msg
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"


@pytest.mark.parametrize("every", BAD_EVERY, ids=repr)
def test_bad_every_values(knobs: KnobSet, every: Any) -> None:
    doc = {"parameters": {"obs.bias": {"dist": "uniform", "low": 0, "high": 1, "every": every}}}
    with pytest.raises(SpecValueError) as info:
        load_spec(doc, env=knobs)
    msg = str(info.value)
    assert "parameters.obs.bias.every" in msg
    assert f"(got {every!r})" in msg
    assert "'episode', 'step', or an integer N >= 1" in msg


def test_clip_keeps_support_inside_so_it_is_accepted(knobs: KnobSet) -> None:
    """The same distributions rejected above become valid once a clip keeps them in range."""
    spec = load_spec(
        {
            "parameters": {
                "pole.mass": {
                    "dist": "normal",
                    "mean": 1.0,
                    "std": 0.5,
                    "clip": [0.5, 2.0],
                    "mode": "scale",
                },
                "cart.friction": {
                    "dist": "normal",
                    "mean": 0.0,
                    "std": 0.1,
                    "clip": [0.0, 0.3],
                    "mode": "offset",
                },
            },
            "correlated": [GROUP],
        },
        env=knobs,
    )
    for d in domains(spec, 500):
        assert 0.05 <= d["pole.mass"] <= 0.2
        assert 0.0 <= d["cart.friction"] <= 0.3


def test_normal_without_clip_is_fine_on_an_unbounded_knob(knobs: KnobSet) -> None:
    # obs.bias has the open range (-inf, inf): a normal approaches but never reaches the ends
    spec = load_spec({"parameters": {"obs.bias": {"dist": "normal", "mean": 0, "std": 1}}}, knobs)
    assert all(math.isfinite(d["obs.bias"]) for d in domains(spec, 100))
    # ...but not on a knob bounded on one side only
    half = KnobSet.of([Knob("x", 0.0, "", 0.0, math.inf, high_open=True)])
    with pytest.raises(SpecRangeError, match="clip"):
        load_spec({"parameters": {"x": {"dist": "normal", "mean": 0, "std": 1}}}, half)


def test_load_phase_knob_per_episode_is_fine(knobs: KnobSet) -> None:
    spec = load_spec(
        {"parameters": {"model.scale": {"dist": "uniform", "low": 0.8, "high": 1.2}}}, knobs
    )
    assert spec.step_periods() == {}


def test_env_mismatch_when_binding(knobs: KnobSet) -> None:
    spec = RandomizationSpec.from_dict(
        {"env": "domrand/Other-v0", "parameters": {"pole.mass": 0.2}}
    )
    with pytest.raises(EnvMismatchError) as info:
        spec.bind(knobs, "domrand/Toy-v0")
    msg = str(info.value)
    assert "env" in msg and "(got 'domrand/Other-v0')" in msg and "allowed: domrand/Toy-v0" in msg
    assert spec.bind(knobs, "domrand/Other-v0").knobs is knobs
    assert spec.bind(knobs).knobs is knobs  # no env id to compare with


def test_env_mismatch_through_load_spec(tmp_path: Path) -> None:
    p = tmp_path / "other.yaml"
    p.write_text("env: domrand/Other-v0\nparameters:\n  gravity: 9.81\n")
    with pytest.raises(EnvMismatchError) as info:
        load_spec(p, env=CARTPOLE)
    assert str(info.value).startswith(f"{p}: env: ")
    assert CARTPOLE in str(info.value)


def test_unknown_env_in_file_gets_did_you_mean(tmp_path: Path) -> None:
    p = tmp_path / "typo.yaml"
    p.write_text("env: domrand/CartPol-v0\nparameters:\n  gravity: 9.81\n")
    with pytest.raises(EnvMismatchError) as info:
        load_spec(p)
    msg = str(info.value)
    assert msg.startswith(f"{p}: env: ") and f"did you mean '{CARTPOLE}'?" in msg


# ================================================================ sampling and modes
def test_modes_are_computed_from_the_nominal_value(knobs: KnobSet) -> None:
    spec = load_spec(
        {
            "parameters": {
                "pole.mass": {"dist": "uniform", "low": 0.5, "high": 2.0, "mode": "scale"},
                "tilt": {"dist": "uniform", "low": 0.5, "high": 2.0, "mode": "scale"},
                "pole.damping": {"dist": "uniform", "low": 0.1, "high": 0.3, "mode": "offset"},
                "cart.mass": {"dist": "uniform", "low": 2.0, "high": 3.0},
                "model.scale": {"dist": "constant", "value": 1.5, "mode": "scale"},
                "cart.friction": {"dist": "constant", "value": 0.25, "mode": "offset"},
            }
        },
        env=knobs,
    )
    ds = domains(spec, 2000)
    # (knob, low, high) in value space: nominal * [l, h], nominal + [l, h], [l, h]
    expected = {
        "pole.mass": (0.1 * 0.5, 0.1 * 2.0),
        "tilt": (-2.0 * 2.0, -2.0 * 0.5),  # negative nominal flips the interval
        "pole.damping": (0.5 + 0.1, 0.5 + 0.3),
        "cart.mass": (2.0, 3.0),
    }
    for name, (lo, hi) in expected.items():
        x = column(ds, name)
        assert lo - 1e-12 <= x.min() and x.max() <= hi + 1e-12, name
        # the whole interval is used (not a compounding, shrinking or drifting one)
        assert x.min() < lo + 0.01 * (hi - lo) and x.max() > hi - 0.01 * (hi - lo), name
        sd = (hi - lo) / math.sqrt(12)
        assert abs(x.mean() - (lo + hi) / 2) < 5 * sd / math.sqrt(len(x)), name
    assert set(column(ds, "model.scale")) == {1.5 * 1.0}
    assert set(column(ds, "cart.friction")) == {0.25}


def test_scale_and_offset_never_compound(knobs: KnobSet) -> None:
    """Many draws in a row stay in nominal * [low, high]: nothing accumulates across samples."""
    spec = load_spec(
        {
            "parameters": {
                "pole.mass": {"dist": "uniform", "low": 1.5, "high": 2.0, "mode": "scale"},
                "pole.damping": {"dist": "uniform", "low": 0.2, "high": 0.3, "mode": "offset"},
            }
        },
        env=knobs,
    )
    ds = domains(spec, 3000)
    m, dmp = column(ds, "pole.mass"), column(ds, "pole.damping")
    assert np.all((m >= 0.15) & (m <= 0.2)) and np.all((dmp >= 0.7) & (dmp <= 0.8))
    # first and last thousand draws come from the same distribution
    sd = 0.05 / math.sqrt(12)
    assert abs(m[:1000].mean() - m[-1000:].mean()) < 5 * sd * math.sqrt(2 / 1000)
    assert spec.knobs is not None and spec.knobs["pole.mass"].nominal == 0.1


def test_integer_knobs_get_whole_numbers(knobs: KnobSet) -> None:
    for entry, allowed in (
        ({"dist": "uniform", "low": 0, "high": 3.4}, {0, 1, 2, 3}),
        ({"dist": "uniform", "low": -1, "high": 2, "mode": "offset"}, {0, 1, 2, 3}),
        ({"dist": "choice", "values": [0, 2, 5]}, {0, 2, 5}),
    ):
        spec = load_spec({"parameters": {"action.delay": entry}}, env=knobs)
        vals = [d["action.delay"] for d in domains(spec, 300)]
        assert all(type(v) is int for v in vals)
        assert set(vals) == allowed


def test_unbound_spec_samples_absolute_but_not_scale() -> None:
    spec = load_spec({"parameters": {"a": {"dist": "uniform", "low": 1, "high": 2}, "b": 3}})
    d = spec.sample(np.random.default_rng(0))
    assert 1 <= d["a"] < 2 and d["b"] == 3.0
    scaled = load_spec(
        {"parameters": {"a": {"dist": "uniform", "low": 1, "high": 2, "mode": "scale"}}}
    )
    with pytest.raises(SpecError, match=r"parameters\.a: mode scale .* not bound"):
        scaled.sample(np.random.default_rng(0))


def test_same_seed_same_domain_different_seed_different(knobs: KnobSet) -> None:
    spec = load_spec(FULL, env=knobs)
    a, b = domains(spec, 20, seed=5), domains(spec, 20, seed=5)
    assert a == b  # bit for bit
    c = domains(spec, 20, seed=6)
    assert a != c
    assert set(a[0]) == set(spec.knob_names())
    for name in ("pole.mass", "tilt", "link.mass", "obs.bias"):
        assert column(a, name).tolist() != column(c, name).tolist()


def test_sample_uses_only_the_passed_rng(knobs: KnobSet, monkeypatch) -> None:
    spec = load_spec(FULL, env=knobs)
    expected = domains(spec, 5, seed=1)

    def forbidden(*a: Any, **k: Any) -> None:
        raise AssertionError("global random state used")

    for name in ("random", "uniform", "normal", "choice", "standard_normal", "rand", "seed"):
        monkeypatch.setattr(np.random, name, forbidden)
    for name in ("random", "uniform", "gauss", "choice", "seed"):
        monkeypatch.setattr(random, name, forbidden)
    assert domains(spec, 5, seed=1) == expected


# ================================================================ every / step periods
def test_step_periods_and_only_period(knobs: KnobSet) -> None:
    spec = load_spec(FULL, env=knobs)
    periods = spec.step_periods()
    assert periods == {
        "motor.gain": 5,
        "action.delay": 1,
        "obs.bias": 1,
        "link.length": 3,
        "link.mass": 3,
    }
    rng = np.random.default_rng(0)
    for t in range(1, 31):
        due = spec.sample(rng, only_period=t)
        assert set(due) == {k for k, p in periods.items() if t % p == 0}, t
    # per-episode entries are never re-drawn within an episode
    assert "pole.mass" not in spec.sample(rng, only_period=0)
    assert set(spec.sample(rng)) == set(spec.knob_names())


# ================================================================ save / load
@pytest.mark.parametrize("name", ["spec.yaml", "spec.yml", "spec.json"])
def test_save_load_exact_round_trip(tmp_path: Path, knobs: KnobSet, name: str) -> None:
    spec = load_spec(FULL, env=knobs)
    path = spec.save(tmp_path / name)
    assert path == tmp_path / name
    back = load_spec(path, env=knobs)
    assert back == spec
    assert back.to_dict() == spec.to_dict() == FULL
    assert back.source == str(path)
    d = {p.knob: p.dist for p in back.parameters}
    assert d["cart.friction"].low == 1e-05 and d["cart.friction"].high == 0.1  # exact floats
    assert d["action.delay"].values == (0, 1, 2)
    assert all(type(v) is int for v in d["action.delay"].values)
    # same seed, same domains from the original and the reloaded spec
    assert domains(back, 10, seed=3) == domains(spec, 10, seed=3)
    # saving again gives the same bytes (stable output)
    again = back.save(tmp_path / ("again" + path.suffix))
    assert again.read_text() == path.read_text()


def test_to_dict_round_trip_keeps_awkward_floats(knobs: KnobSet) -> None:
    doc = {
        "parameters": {
            "cart.friction": {"dist": "uniform", "low": 1e-05, "high": 0.30000000000000004},
            "pole.damping": 0.1,
        }
    }
    spec = load_spec(doc, env=knobs)
    assert spec.to_dict() == doc
    assert load_spec(spec.to_dict(), env=knobs) == spec


def test_yaml_and_json_files_give_equal_specs(tmp_path: Path, knobs: KnobSet) -> None:
    spec = load_spec(FULL, env=knobs)
    a = load_spec(spec.save(tmp_path / "a.yaml"), env=knobs)
    b = load_spec(spec.save(tmp_path / "b.json"), env=knobs)
    assert a == b


# ================================================================ domain files
def test_domain_file(tmp_path: Path, knobs: KnobSet) -> None:
    p = tmp_path / "reality.yaml"
    p.write_text("parameters:\n  pole.mass: 0.2\n  action.delay: 2\n  cart.friction: 0.5\n")
    spec = load_spec(p, env=knobs)
    assert spec.is_domain
    dom = load_domain(p, env=knobs)
    assert dom == {"pole.mass": 0.2, "action.delay": 2, "cart.friction": 0.5}
    assert type(dom["action.delay"]) is int and type(dom["pole.mass"]) is float
    # unbound: plain floats
    assert load_domain({"parameters": {"x": 1}}) == {"x": 1.0}


def test_load_domain_rejects_a_randomizing_spec(tmp_path: Path, knobs: KnobSet) -> None:
    p = tmp_path / "spec.yaml"
    p.write_text(
        "parameters:\n  cart.mass: 1.0\n  pole.mass: {dist: uniform, low: 0.05, high: 0.2}\n"
    )
    assert not load_spec(p, env=knobs).is_domain
    with pytest.raises(SpecValueError) as info:
        load_domain(p, env=knobs)
    msg = str(info.value)
    assert msg.startswith(f"{p}: parameters.pole.mass: ") and "only pin values" in msg
    grouped = load_spec({"correlated": [GROUP]}, env=knobs)
    assert not grouped.is_domain
    with pytest.raises(SpecValueError, match=r"parameters\.link\.length"):
        load_domain(grouped)


def test_shipped_realities_are_domains() -> None:
    files = realities(CARTPOLE)
    assert files, "CartPole ships reality files"
    ks = knobs_for(CARTPOLE)
    for path in files.values():
        dom = load_domain(path)
        assert dom and all(ks[k].contains(v) for k, v in dom.items()), path


# ================================================================ phi view
PHI_DOC: dict[str, Any] = {
    "parameters": {
        "pole.mass": {"dist": "uniform", "low": 0.5, "high": 2.0, "mode": "scale"},
        "cart.friction": {"dist": "loguniform", "low": 0.01, "high": 0.5},
        "pole.damping": {
            "dist": "normal",
            "mean": 0.0,
            "std": 0.1,
            "clip": [-0.5, 0.5],
            "mode": "offset",
        },
        "tilt": {"dist": "truncnormal", "mean": -2.0, "std": 0.3, "low": -3.0, "high": -1.0},
        "action.delay": {"dist": "choice", "values": [0, 1, 2]},
        "cart.mass": 1.5,
    },
    "correlated": [GROUP],
}
G = "link.length+link.mass"


def test_params_names_values_and_bounds(knobs: KnobSet) -> None:
    pv = load_spec(PHI_DOC, env=knobs).params()
    assert pv.names == (
        "pole.mass.low",
        "pole.mass.high",
        "cart.friction.low",
        "cart.friction.high",
        "pole.damping.mean",
        "pole.damping.std",
        "tilt.mean",
        "tilt.std",
        f"{G}.mean[0]",
        f"{G}.mean[1]",
        f"{G}.chol[0,0]",
        f"{G}.chol[1,0]",
        f"{G}.chol[1,1]",
    )
    assert len(pv) == 13
    # Cholesky of [[0.01, 0.004], [0.004, 0.04]]
    l00 = 0.1
    l10 = 0.004 / l00
    l11 = math.sqrt(0.04 - l10**2)
    np.testing.assert_allclose(
        pv.values, [0.5, 2.0, 0.01, 0.5, 0.0, 0.1, -2.0, 0.3, 0.0, 0.5, l00, l10, l11], rtol=1e-14
    )
    inf = math.inf
    # bounds are the knob ranges seen from distribution space
    lower = [
        0.0,
        0.0,
        1e-12,
        1e-12,
        0 - 0.5,
        0.0,
        -10.0,
        0.0,
        0.1 - 1.0,
        0 - 2.0,
        1e-12,
        -inf,
        1e-12,
    ]
    upper = [
        10 / 0.1,
        10 / 0.1,
        50.0,
        50.0,
        10 - 0.5,
        10.0,
        -0.5,
        9.5,
        5.0 - 1.0,
        50 - 2.0,
        inf,
        inf,
        inf,
    ]
    np.testing.assert_allclose(pv.lower, lower, rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(pv.upper, upper, rtol=1e-9)
    assert np.all(pv.lower <= pv.values) and np.all(pv.values <= pv.upper)
    # open lower ends (masses) are strictly inside
    assert pv.lower[0] > 0 and pv.lower[9] > -2.0


def test_with_params_of_params_is_identity(knobs: KnobSet) -> None:
    spec = load_spec(PHI_DOC, env=knobs)
    same = spec.with_params(spec.params().values)
    assert same == spec
    assert same.knobs is knobs
    full = load_spec(FULL, env=knobs)
    assert full.with_params(full.params().values) == full


def test_with_params_changes_the_distribution(knobs: KnobSet) -> None:
    spec = load_spec(PHI_DOC, env=knobs)
    v = spec.params().values.copy()
    v[0], v[1] = 1.0, 1.2
    new = spec.with_params(v)
    assert new.parameters[0].dist == Uniform(1.0, 1.2)
    m = column(domains(new, 300), "pole.mass")
    assert m.min() >= 0.1 * 1.0 and m.max() <= 0.1 * 1.2 + 1e-15
    assert new.params().values.tolist() == v.tolist()


def test_with_params_rejects_wrong_length(knobs: KnobSet) -> None:
    spec = load_spec(PHI_DOC, env=knobs)
    with pytest.raises(SpecValueError) as info:
        spec.with_params(np.zeros(5))
    assert "(got 5)" in str(info.value) and "13 values" in str(info.value)


def test_with_params_low_above_high(knobs: KnobSet) -> None:
    spec = load_spec(PHI_DOC, env=knobs)
    v = spec.params().values.copy()
    v[0], v[1] = 3.0, 2.0
    with pytest.raises(SpecValueError, match=r"parameters\.pole\.mass\.low: low > high"):
        spec.with_params(v)
    repaired = spec.with_params(v, clip=True)
    assert repaired.parameters[0].dist == Uniform(2.5, 2.5)


def test_with_params_negative_std(knobs: KnobSet) -> None:
    spec = load_spec(PHI_DOC, env=knobs)
    v = spec.params().values.copy()
    v[5] = -0.1
    with pytest.raises(SpecValueError, match=r"parameters\.pole\.damping\.std"):
        spec.with_params(v)
    assert spec.with_params(v, clip=True).parameters[2].dist.std == 0.0


def test_with_params_not_finite(knobs: KnobSet) -> None:
    spec = load_spec(PHI_DOC, env=knobs)
    v = spec.params().values.copy()
    v[6] = math.nan
    with pytest.raises(SpecValueError, match=r"tilt\.mean: parameter is not finite"):
        spec.with_params(v)
    fixed = spec.with_params(v, clip=True)
    assert math.isfinite(fixed.parameters[3].dist.mean)


def test_with_params_clip_repairs_open_ends_and_point_masses(knobs: KnobSet) -> None:
    spec = load_spec(PHI_DOC, env=knobs)
    v = spec.params().values.copy()
    v[0] = -1.0  # pole.mass scale low below 0: mass (0, 10] is open at 0
    v[7] = -1.0  # tilt std -> 0 with a mean...
    v[6] = -0.6  # ...outside the truncation [-3, -1]
    new = spec.with_params(v, clip=True)
    low = new.parameters[0].dist.low
    assert 0 < low < 1e-6
    assert new.parameters[3].dist == TruncNormal(-1.0, 0.0, -3.0, -1.0)
    for d in domains(new, 200):
        assert knobs["pole.mass"].contains(d["pole.mass"]) and d["tilt"] == -1.0


def test_with_params_clip_never_raises_and_stays_valid(knobs: KnobSet) -> None:
    """What an optimizer like CMA-ES relies on: any vector is projected onto a valid spec."""
    spec = load_spec(FULL, env=knobs)
    n = len(spec.params())
    rng = np.random.default_rng(0)
    for i in range(60):
        v = rng.normal(0, 10 ** rng.uniform(-2, 3), n)
        if i % 5 == 0:
            v[rng.integers(n)] = rng.choice([math.inf, -math.inf, math.nan])
        new = spec.with_params(v, clip=True)
        pv = new.params()
        # the Cholesky factor is re-derived from cov = L L^T: a 1e-12 diagonal may come back as 0
        keep = np.array(["chol[" not in n for n in pv.names])
        assert np.all(pv.lower[keep] <= pv.values[keep]) and np.all(pv.values <= pv.upper)
        for d in domains(new, 5, seed=i):
            assert all(knobs[k].contains(x) for k, x in d.items()), d


def test_mvnormal_phi_is_mean_and_cholesky(knobs: KnobSet) -> None:
    spec = load_spec(PHI_DOC, env=knobs)
    v = spec.params().values.copy()
    chol = np.array([[0.2, 0.0], [-0.1, 0.3]])
    v[8:10] = [0.1, -0.2]
    v[10:13] = [chol[0, 0], chol[1, 0], chol[1, 1]]
    g = spec.with_params(v).groups[0].dist
    assert g.mean == (0.1, -0.2)
    np.testing.assert_allclose(np.array(g.cov), chol @ chol.T, rtol=0, atol=1e-15)
    assert g.clip == ((-0.5, 0.5), (-1.0, 1.0))
    # a zero Cholesky diagonal is lifted to the positive bound when clipping
    v[10] = 0.0
    g2 = spec.with_params(v, clip=True).groups[0].dist
    assert g2.cov[0][0] == pytest.approx(1e-24) and g2.cov[0][0] > 0


def test_phi_of_unbound_spec_has_unbounded_ranges() -> None:
    spec = load_spec({"parameters": {"a": {"dist": "uniform", "low": 0, "high": 1}}})
    pv = spec.params()
    assert pv.lower.tolist() == [-math.inf, -math.inf] and pv.upper.tolist() == [math.inf] * 2
    assert spec.with_params([0.2, 0.4]).parameters[0].dist == Uniform(0.2, 0.4)


# ================================================================ normalized view
NORM_DOC: dict[str, Any] = {
    "parameters": {
        "pole.mass": {"dist": "uniform", "low": 0.5, "high": 2.0, "mode": "scale"},
        "cart.friction": {"dist": "loguniform", "low": 0.01, "high": 0.5},
        "tilt": {"dist": "uniform", "low": 0.5, "high": 2.0, "mode": "scale"},
        "obs.bias": {"dist": "normal", "mean": 0.0, "std": 1.0},  # unbounded: excluded
        "pole.damping": {
            "dist": "normal",
            "mean": 0.0,
            "std": 1.0,
            "clip": [-0.5, 0.5],
            "mode": "offset",
        },
        "cart.mass": 1.5,  # a point: excluded
    },
    "correlated": [GROUP],
}
# value-space bounds derived by hand from the nominal values and modes
NORM_BOUNDS = {
    "pole.mass": (0.05, 0.2),
    "cart.friction": (0.01, 0.5),
    "tilt": (-4.0, -1.0),
    "pole.damping": (0.0, 1.0),
    "link.length": (0.5, 1.5),
    "link.mass": (1.0, 3.0),
}


def test_bounded_knobs_and_value_bounds(knobs: KnobSet) -> None:
    spec = load_spec(NORM_DOC, env=knobs)
    assert spec.bounded_knobs() == tuple(NORM_BOUNDS)
    for name, (lo, hi) in NORM_BOUNDS.items():
        assert spec.value_bounds(name) == pytest.approx((lo, hi), rel=1e-12)
    assert spec.value_bounds("obs.bias") == (-math.inf, math.inf)
    assert spec.value_bounds("cart.mass") == (1.5, 1.5)
    with pytest.raises(UnknownKnobError, match=r"did you mean 'pole\.mass'"):
        spec.value_bounds("pole.mas")


def test_denormalize_ends_and_round_trip(knobs: KnobSet) -> None:
    spec = load_spec(NORM_DOC, env=knobs)
    n = len(NORM_BOUNDS)
    lo = spec.denormalize(np.zeros(n))
    hi = spec.denormalize(np.ones(n))
    for name, (a, b) in NORM_BOUNDS.items():
        assert lo[name] == pytest.approx(a, rel=1e-12)
        assert hi[name] == pytest.approx(b, rel=1e-12)
    # outside [0, 1] is clipped so values stay valid
    assert spec.denormalize(np.full(n, -3.0)) == lo and spec.denormalize(np.full(n, 7.0)) == hi
    rng = np.random.default_rng(0)
    for _ in range(50):
        u = rng.uniform(size=n)
        np.testing.assert_allclose(spec.normalize(spec.denormalize(u)), u, atol=1e-12)
    for d in domains(spec, 200):
        u = spec.normalize(d)
        assert np.all((u >= -1e-12) & (u <= 1 + 1e-12))
    with pytest.raises(SpecValueError, match="wrong length"):
        spec.denormalize(np.zeros(n + 1))


def test_denormalize_integer_knob_rounds(knobs: KnobSet) -> None:
    spec = load_spec(
        {"parameters": {"action.delay": {"dist": "uniform", "low": 0, "high": 4}}}, knobs
    )
    assert spec.bounded_knobs() == ("action.delay",)
    assert spec.denormalize([0.0]) == {"action.delay": 0}
    assert spec.denormalize([1.0]) == {"action.delay": 4}
    v = spec.denormalize([0.6])["action.delay"]
    assert type(v) is int and v == round(0.6 * 4)


# ================================================================ merged
def test_merged_pins_knobs(knobs: KnobSet) -> None:
    spec = load_spec(PHI_DOC, env=knobs)
    pinned = spec.merged({"pole.mass": 0.3, "obs.bias": 0.01})
    assert pinned.knobs is knobs
    entries = {p.knob: p for p in pinned.parameters}
    assert entries["pole.mass"].dist == Constant(0.3) and entries["pole.mass"].mode is Mode.ABSOLUTE
    assert entries["obs.bias"].dist == Constant(0.01)
    for p in spec.parameters:
        if p.knob != "pole.mass":
            assert entries[p.knob] == p  # untouched
    for d in domains(pinned, 50):
        assert d["pole.mass"] == 0.3 and d["obs.bias"] == 0.01
    every = spec.merged({k: knobs[k].nominal for k in spec.knob_names() if "link" not in k})
    assert not every.is_domain  # the group still randomizes
    assert spec.merged({}) == spec


def test_merged_rejects_bad_pins(knobs: KnobSet) -> None:
    spec = load_spec(PHI_DOC, env=knobs)
    with pytest.raises(SpecRangeError, match=r"parameters\.pole\.mass"):
        spec.merged({"pole.mass": -1.0})
    with pytest.raises(UnknownKnobError, match=r"did you mean 'pole\.mass'"):
        spec.merged({"pole.mas": 0.2})
    with pytest.raises(SpecValueError, match="part of a correlated group"):
        spec.merged({"link.mass": 2.0})
    unbound = load_spec({"parameters": {"a": 1.0}})
    with pytest.raises(SpecValueError, match=r"parameters\.b: number is not finite"):
        unbound.merged({"b": math.nan})


# ================================================================ valid range is never left
def test_sampled_values_never_leave_the_valid_range(knobs: KnobSet) -> None:
    """Clips and truncations sit exactly on the edges of the valid ranges."""
    doc = {
        "parameters": {
            "pole.mass": {
                "dist": "normal",
                "mean": 1.0,
                "std": 60.0,
                "clip": [1e-9, 100.0],
                "mode": "scale",
            },
            "cart.friction": {"dist": "normal", "mean": 0.0, "std": 30.0, "clip": [0.0, 50.0]},
            "pole.damping": {"dist": "truncnormal", "mean": 0.0, "std": 8, "low": 0, "high": 10},
            "motor.gain": {"dist": "uniform", "low": 1e-9, "high": 100.0, "mode": "scale"},
            "action.delay": {"dist": "uniform", "low": -0.49, "high": 20.49},
            "tilt": {"dist": "normal", "mean": 1, "std": 5, "clip": [0.25, 5.0], "mode": "scale"},
            "model.scale": {"dist": "loguniform", "low": 0.5, "high": 2.0, "mode": "scale"},
            "obs.bias": {"dist": "normal", "mean": 0.0, "std": 1e6},
            "cart.mass": {"dist": "truncnormal", "mean": 5, "std": 50, "low": 1e-9, "high": 100},
        },
        "correlated": [
            {
                "knobs": ["link.length", "link.mass"],
                "dist": "mvnormal",
                "mean": [1.0, 10.0],
                "cov": [[9.0, 20.0], [20.0, 900.0]],
                "clip": [[0.1, 5.0], [1e-9, 50.0]],
            }
        ],
    }
    spec = load_spec(doc, env=knobs)
    ds = domains(spec, 2000)
    for name in spec.knob_names():
        knob = knobs[name]
        vals = [d[name] for d in ds]
        assert all(knob.contains(v) for v in vals), name
        if knob.integer:
            assert all(type(v) is int for v in vals)
    # the edges are really hit: clipped normals put mass on both ends
    for name, lo, hi in [("cart.friction", 0.0, 50.0), ("tilt", -10.0, -0.5)]:
        x = column(ds, name)
        assert (x == lo).any() and (x == hi).any(), name
    assert set(column(ds, "action.delay")) == set(range(21))


def test_cartpole_default_spec() -> None:
    spec = load_spec(default_spec_path(CARTPOLE))
    assert spec.env == CARTPOLE and spec.knobs is not None
    assert spec.step_periods() == {"obs.noise": 1}
    ks = spec.knobs
    ds = domains(spec, 2000)
    for d in ds:
        assert set(d) == set(spec.knob_names())
        assert all(ks[k].contains(v) for k, v in d.items()), d
    nominal = ks.nominal()
    for name in ("cart.mass", "pole.mass"):
        x = column(ds, name)
        assert x.min() >= 0.5 * nominal[name] and x.max() <= 2.0 * nominal[name]
        # loguniform in scale mode: log(value / nominal) is uniform on [log 0.5, log 2]
        assert abs(np.log(x / nominal[name]).mean()) < 5 * (
            math.log(4) / math.sqrt(12)
        ) / math.sqrt(2000)
    assert set(column(ds, "action.delay")) == {0, 1, 2}
    assert all(type(d["action.delay"]) is int for d in ds)
    assert set(column(ds, "gravity")) == {9.81}
    damping = column(ds, "pole.damping")
    assert damping.min() == 0.0 and damping.max() <= 0.05
    # the same spec named by env id and by knob set is the same spec
    assert load_spec(default_spec_path(CARTPOLE), env=CARTPOLE) == spec
    assert load_spec(spec.to_dict(), env=ks) == spec


def test_choice_of_fractional_values_on_an_integer_knob_is_rejected(knobs) -> None:
    from domrand.errors import SpecValueError

    doc = {"parameters": {"action.delay": {"dist": "choice", "values": [0, 1.5]}}}
    with pytest.raises(SpecValueError) as info:
        load_spec(doc, env=knobs)
    msg = str(info.value)
    assert "parameters.action.delay.values" in msg and "1.5" in msg and "whole numbers" in msg


def test_denormalize_snaps_choice_knobs_to_values_they_can_take(knobs) -> None:
    doc = {
        "parameters": {
            "action.delay": {"dist": "choice", "values": [0, 4, 10]},
            "pole.mass": {"dist": "uniform", "low": 0.05, "high": 0.2},
        }
    }
    spec = load_spec(doc, env=knobs)
    names = spec.bounded_knobs()
    for u in np.linspace(0.0, 1.0, 41):
        d = spec.denormalize(np.full(len(names), u))
        assert d["action.delay"] in (0, 4, 10)
        # the nearest option to low + (high - low) * u
        target = 10 * u
        assert abs(d["action.delay"] - target) == min(abs(c - target) for c in (0, 4, 10))

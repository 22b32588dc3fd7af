"""Property-based fuzzing of the spec and domain loaders (YAML, JSON and in-memory dicts).

The contract under test: whatever the input, ``load_spec`` / ``load_domain`` return a valid spec
(or domain), or raise a ``SpecError`` whose message is one non-empty line naming the file. Never
another exception. A spec that loads bound to an env is also checked to *be* valid: every value
it samples is inside its knob's valid range, and it survives a ``to_dict`` round trip.

Inputs come from four families: (a) arbitrary bytes and text written as ``.yaml`` / ``.json``;
(b) a YAML token soup (anchors, tags, merge keys, timestamps, huge numbers...), which reaches the
parser's corners far faster than random bytes; (c) structure-aware spec documents: trees with
near-real keys, knob names and distribution names and awkward numbers (NaN, inf, -0.0, huge ints,
subnormals), loaded as dicts, YAML and JSON files, and as randomly mutated files; (d) the same
documents bound to ``domrand/CartPole-v0`` through ``env:``.

The suite runs a few thousand derandomized examples; ``benchmarks/fuzz_specs.py`` reuses these
properties with random seeds for >= 10,000 examples and writes the counts.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domrand.errors import SpecError
from domrand.knobs import Knob, KnobSet, Phase
from domrand.spec import RandomizationSpec, load_domain, load_spec

CARTPOLE = "domrand/CartPole-v0"

# A numeric overflow while loading or sampling means a value the validation let through.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

#: A small hand-made knob set (no physics engine): open and closed ends, an unbounded knob, an
#: integer knob, a load-phase knob, zero and negative nominal values.
FUZZ_KNOBS = KnobSet.of(
    [
        Knob("pole.mass", 0.1, "kg", 0.0, 10.0, low_open=True),
        Knob("cart.mass", 1.0, "kg", 0.0, 100.0, low_open=True),
        Knob("cart.friction", 0.0, "N", 0.0, 50.0),
        Knob("motor.gain", 10.0, "N", 0.0, 1000.0, low_open=True, phase=Phase.STEP),
        Knob("obs.bias", 0.0, "1", -math.inf, math.inf, Phase.STEP, low_open=True, high_open=True),
        Knob("action.delay", 1, "steps", 0, 20, phase=Phase.STEP, integer=True),
        Knob("model.scale", 1.0, "1", 0.5, 2.0, phase=Phase.LOAD),
        Knob("tilt", -2.0, "rad", -10.0, -0.5),
    ]
)

#: Every outcome seen, by label ("valid", "valid-unbound", or the SpecError subclass name).
OUTCOMES: Counter[str] = Counter()
#: Fingerprints of the distinct inputs seen (hypothesis repeats some examples).
DISTINCT: set[str] = set()


def _record(source: Any, env: Any, label: str) -> None:
    if isinstance(source, str):  # a file
        content = Path(source).suffix.encode() + Path(source).read_bytes()
    else:
        content = repr(source).encode()
    envs = "none" if env is None else "toy" if env is FUZZ_KNOBS else str(env)
    DISTINCT.add(hashlib.sha1(content + envs.encode()).hexdigest())
    OUTCOMES[label] += 1


# ---------------------------------------------------------------------- the checks
def _check_message(err: SpecError, file: str | None) -> None:
    msg = str(err)
    assert msg, "empty SpecError message"
    assert len(msg.splitlines()) == 1, f"SpecError message is not one line: {msg!r}"
    if file is not None:
        assert err.file == file, (err.file, file)
        assert msg.startswith(file), msg


def _check_valid(spec: RandomizationSpec) -> str:
    """A spec that loaded must be usable: round trip, and (when bound) in-range samples."""
    assert isinstance(spec, RandomizationSpec)
    assert spec.knob_names()
    again = load_spec(spec.to_dict(), env=spec.knobs)
    assert again == spec, (again, spec)
    if spec.knobs is None:
        try:
            spec.sample(np.random.default_rng(0))
        except SpecError:  # documented: scale/offset need the env's nominal values
            modes = [p.mode for p in spec.parameters] + [g.mode for g in spec.groups]
            assert any(m.value != "absolute" for m in modes)
        return "valid-unbound"
    rng = np.random.default_rng(0)
    for _ in range(3):
        domain = spec.sample(rng)
        assert set(domain) == set(spec.knob_names())
        for name, value in domain.items():
            knob = spec.knobs[name]
            assert knob.contains(value), f"{name} = {value!r} outside {knob.range_str()}"
            assert isinstance(value, int) == knob.integer, (name, value)
    return "valid"


def check_spec(source: Any, env: Any = None, file: str | None = None) -> str:
    """Load ``source``; return the outcome label, or fail on anything but a SpecError."""
    try:
        spec = load_spec(source, env=env)
    except SpecError as e:
        _check_message(e, file)
        label = type(e).__name__
    else:
        label = _check_valid(spec)
    _record(source, env, label)
    return label


def check_domain(source: Any, env: Any = None, file: str | None = None) -> str:
    """``load_domain``: a dict of in-range pinned values, or a SpecError."""
    try:
        domain = load_domain(source, env=env)
    except SpecError as e:
        _check_message(e, file)
        label = type(e).__name__
    else:
        assert isinstance(domain, dict) and domain
        for name, value in domain.items():
            assert isinstance(value, (int, float)) and math.isfinite(value), (name, value)
        label = "valid-domain"
    _record(source, env, label)
    return label


# ---------------------------------------------------------------------- files


_SCRATCH: list[tempfile.TemporaryDirectory[str]] = []  # created on first use, removed at exit


def scratch_file(name: str, data: bytes) -> str:
    """Write ``data`` to a reused scratch file and return its path."""
    if not _SCRATCH:
        _SCRATCH.append(tempfile.TemporaryDirectory(prefix="domrand-fuzz-"))
    p = Path(_SCRATCH[0].name) / name
    p.write_bytes(data)
    return str(p)


def check_file(data: bytes, suffix: str, env: Any = None, domain: bool = False) -> str:
    path = scratch_file(f"spec{suffix}", data)
    return (check_domain if domain else check_spec)(path, env, path)


# ---------------------------------------------------------------------- strategies
KNOB_NAMES = [*FUZZ_KNOBS, "gravity", "sim.timestep", "obs.noise", "light.shadow", "image.gamma"]
NEAR_KNOBS = ["pole.mas", "Pole.mass", "pole", "pole.mass ", "", "pole..mass", "cart_mass"]
DISTS = ["constant", "uniform", "loguniform", "normal", "truncnormal", "choice", "mvnormal"]
NEAR_DISTS = ["Uniform", "unifrom", "gaussian", "lognormal", ""]
MODES = ["absolute", "scale", "offset", "scaled", "ABSOLUTE", ""]
EVERY = ["episode", "step", "steps", "Episode", 1, 2, 0, -1, 1.5, True]
PARAM_KEYS = ["dist", "mode", "every", "value", "low", "high", "mean", "std", "clip"]
PARAM_KEYS += ["values", "weights", "lo", "hi", "sigma", "mu", "Mode"]
TOP_KEYS = ["env", "description", "parameters", "correlated", "params", "Parameters", "enviroment"]
ENVS = [CARTPOLE, "domrand/CartPol-v0", "CartPole-v1", "", "domrand/Nope-v0"]
WORDS = DISTS + NEAR_DISTS + MODES + [w for w in EVERY if isinstance(w, str)] + KNOB_NAMES
WORDS += ["1e-3", "1.0", "nan", ".inf", "-.inf", "true", "null", "~", "2024-13-45", "0x1F"]

SPECIAL_FLOATS = [0.0, -0.0, 0.5, 1.0, 2.0, -1.0, 1e-12, 5e-324, 2.2e-308, 1e308, -1e308]
SPECIAL_FLOATS += [math.nan, math.inf, -math.inf, 1.7976931348623157e308, 0.1 + 0.2]
SPECIAL_INTS = [0, 1, -1, 2, 20, 21, 2**53 + 1, 2**63, -(2**63), 10**308, 10**309, -(10**309)]

small_floats = st.floats(min_value=-3.0, max_value=12.0, allow_nan=False)
small_ints = st.integers(min_value=-2, max_value=22)
numbers = st.one_of(
    small_floats,
    small_floats,
    small_ints,
    st.sampled_from(SPECIAL_FLOATS),
    st.sampled_from(SPECIAL_INTS),
    st.floats(),
    st.integers(min_value=-(10**400), max_value=10**400),
)
text = st.text(max_size=12)
scalars = st.one_of(numbers, st.booleans(), st.none(), text, st.sampled_from(WORDS))
keys = st.one_of(text, st.sampled_from(PARAM_KEYS + TOP_KEYS + KNOB_NAMES), small_ints)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=10,
)
pairs = st.lists(numbers, min_size=2, max_size=2)
number_lists = st.lists(numbers, min_size=0, max_size=5)


def _field(name: str) -> st.SearchStrategy[Any]:
    """Values for a field: mostly plausible, sometimes anything."""
    plausible = {
        "dist": st.sampled_from(DISTS + NEAR_DISTS),
        "mode": st.sampled_from(MODES),
        "every": st.sampled_from(EVERY) | st.integers(),
        "clip": pairs,
        "values": number_lists,
        "weights": number_lists,
    }.get(name, numbers)
    return st.one_of(plausible, plausible, plausible, junk)


@st.composite
def dist_entries(draw: st.DrawFn) -> dict[str, Any]:
    """A parameter entry: a dist name and its keys, with some keys missing or extra."""
    name = draw(st.sampled_from(DISTS) | st.sampled_from(NEAR_DISTS) | junk)
    entry: dict[str, Any] = {"dist": name}
    wanted = {
        "constant": ["value"],
        "uniform": ["low", "high"],
        "loguniform": ["low", "high"],
        "normal": ["mean", "std", "clip"],
        "truncnormal": ["mean", "std", "low", "high"],
        "choice": ["values", "weights"],
    }.get(name if isinstance(name, str) else "", [])
    for key in wanted:
        if draw(st.integers(0, 9)) > 0:  # usually present
            entry[key] = draw(_field(key))
    if draw(st.integers(0, 3)) == 0:
        for key in draw(st.lists(st.sampled_from(PARAM_KEYS), max_size=3)):
            entry[key] = draw(_field(key))
    if draw(st.integers(0, 19)) == 0:
        del entry["dist"]
    return entry


param_values = st.one_of(numbers, dist_entries(), dist_entries(), dist_entries(), junk)
knob_names = st.one_of(
    st.sampled_from(KNOB_NAMES), st.sampled_from(KNOB_NAMES), st.sampled_from(NEAR_KNOBS), text
)


@st.composite
def covariances(draw: st.DrawFn, k: int) -> list[list[Any]]:
    if draw(st.booleans()):  # a valid PSD matrix A A^T
        a = np.array(draw(st.lists(small_floats, min_size=k * k, max_size=k * k))).reshape(k, k)
        return (a @ a.T).tolist()
    return draw(st.lists(st.lists(numbers, min_size=k, max_size=k), min_size=k, max_size=k))


@st.composite
def groups(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(junk)
    k = draw(st.integers(1, 3))
    g: dict[str, Any] = {
        "knobs": draw(st.lists(knob_names, min_size=k, max_size=k)),
        "dist": draw(st.sampled_from(["mvnormal", "mvnormal", "mvnormal", "normal", "MVN"])),
        "mean": draw(st.lists(numbers, min_size=k, max_size=k) | number_lists),
        "cov": draw(covariances(k)),
    }
    if draw(st.booleans()):
        g["clip"] = draw(st.lists(pairs, min_size=k, max_size=k) | junk)
    for key in draw(st.lists(st.sampled_from(["mode", "every", "extra"]), max_size=2)):
        g[key] = draw(_field(key))
    for key in draw(st.lists(st.sampled_from(list(g)), max_size=1)):
        del g[key]
    return g


@st.composite
def spec_documents(draw: st.DrawFn) -> Any:
    """A spec-shaped document: near-real top keys, knobs, distributions and numbers."""
    if draw(st.integers(0, 19)) == 0:
        return draw(junk)  # top level of any type
    doc: dict[Any, Any] = {}
    if draw(st.integers(0, 3)) == 0:
        doc["env"] = draw(st.sampled_from(ENVS) | junk)
    if draw(st.integers(0, 4)) == 0:
        doc["description"] = draw(text | junk)
    if draw(st.integers(0, 9)) > 0:
        doc["parameters"] = draw(
            st.dictionaries(knob_names, param_values, max_size=4)
            | st.dictionaries(knob_names, param_values, min_size=1, max_size=2)
            | junk
        )
    if draw(st.integers(0, 3)) == 0:
        doc["correlated"] = draw(st.lists(groups(), max_size=2) | junk)
    if draw(st.integers(0, 9)) == 0:
        doc[draw(keys)] = draw(junk)
    return doc


@st.composite
def valid_leaning_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Well-formed specs over FUZZ_KNOBS with numbers near each knob's range: reaches bind()."""
    params: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(list(FUZZ_KNOBS)), min_size=1, max_size=4)):
        knob = FUZZ_KNOBS[name]
        lo = knob.low if math.isfinite(knob.low) else -1e6
        hi = knob.high if math.isfinite(knob.high) else 1e6
        near = st.one_of(
            st.floats(min_value=lo, max_value=hi),
            st.floats(min_value=lo - 1, max_value=hi + 1),
            st.sampled_from([lo, hi, knob.nominal, 0.0, 1.0, 0.5, 2.0]),
            st.sampled_from(SPECIAL_FLOATS),
        )
        dist = draw(st.sampled_from(DISTS[:-1]))
        mode = draw(st.sampled_from(["absolute", "absolute", "scale", "offset"]))
        entry: dict[str, Any] = {"dist": dist, "mode": mode}
        a, b = sorted([draw(near), draw(near)], key=lambda x: (math.isnan(x), x))
        if dist == "constant":
            entry["value"] = a
        elif dist in ("uniform", "loguniform"):
            entry |= {"low": a, "high": b}
        elif dist == "normal":
            entry |= {"mean": draw(near), "std": abs(draw(near)) / 10}
            if draw(st.integers(0, 3)) > 0:
                entry["clip"] = [a, b]
        elif dist == "truncnormal":
            entry |= {"mean": draw(near), "std": abs(draw(near)) / 10, "low": a, "high": b}
        else:
            vals = draw(st.lists(near | st.integers(-1, 21), min_size=1, max_size=4))
            entry["values"] = vals
            if draw(st.booleans()):
                entry["weights"] = draw(
                    st.lists(
                        st.floats(0, 1e308) | st.sampled_from([0.0, 1.0, 1e308]),
                        min_size=len(vals),
                        max_size=len(vals),
                    )
                )
        if draw(st.integers(0, 3)) == 0:
            entry["every"] = draw(st.sampled_from(["episode", "step", 1, 3]))
        params[name] = entry
    doc: dict[str, Any] = {"parameters": params}
    if draw(st.integers(0, 7)) == 0:  # bound through env: instead (CartPole lacks some knobs)
        doc["env"] = draw(st.sampled_from(ENVS))
    if draw(st.integers(0, 3)) == 0:
        free = [n for n in FUZZ_KNOBS if n not in params]
        if len(free) >= 2:
            pair = draw(st.lists(st.sampled_from(free), min_size=2, max_size=2, unique=True))
            doc["correlated"] = [
                {
                    "knobs": pair,
                    "dist": "mvnormal",
                    "mean": [FUZZ_KNOBS[n].nominal for n in pair],
                    "cov": draw(covariances(2)),
                    "clip": [
                        [max(FUZZ_KNOBS[n].low, -1e6) + 1e-6, min(FUZZ_KNOBS[n].high, 1e6)]
                        for n in pair
                    ],
                }
            ]
    return doc


def to_yaml(doc: Any) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode("utf-8")


def to_json(doc: Any) -> bytes:
    return json.dumps(doc).encode("utf-8")  # NaN/Infinity literals on purpose


#: Pieces of YAML that exercise the parser and constructors: tags, anchors, merge keys, flow
#: collections, implicit types PyYAML turns into dates, ints and floats.
YAML_TOKENS = [
    "parameters:",
    "env: domrand/CartPole-v0",
    "correlated:",
    "\n",
    "\n  ",
    "\n    ",
    "  ",
    "- ",
    ": ",
    ", ",
    "{",
    "}",
    "[",
    "]",
    "pole.mass",
    "cart.mass",
    "action.delay",
    "dist: uniform",
    "dist: choice",
    "low: ",
    "high: ",
    "values: ",
    "mode: scale",
    "every: step",
    "0.5",
    "2.0",
    "-1",
    "1e-3",
    "1.0e+308",
    "1.0e+309",
    ".nan",
    ".inf",
    "-.inf",
    "0x1F",
    "0o17",
    "1_000",
    "0b101",
    "190:20:30",
    "2024-01-01",
    "2024-13-45",
    "2001-12-14t21:59:43.10-05:00",
    "&a ",
    "*a",
    "&b [*a, *a, *a]",
    "<<: *a",
    "<<: ",
    "? ",
    "!!float ",
    "!!int ",
    "!!str ",
    "!!bool ",
    "!!null ",
    "!!binary ",
    "!!timestamp ",
    "!!set ",
    "!!omap ",
    "!!pairs ",
    "!!map ",
    "!!seq ",
    "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system",
    "!custom ",
    "!<tag:yaml.org,2002:float> ",
    "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n",
    "---\n",
    "...\n",
    "#",
    "# comment",
    '"',
    "'",
    '"\\x"',
    '"\\u00e9"',
    "\t",
    "\ufeff",
    "|",
    ">",
    "~",
    "null",
    "yes",
    "No",
    "=",
    "abc",
    "9" * 400,
    "9" * 5000,
    "\x85",
    "\u2028",
    "\r",
]


@st.composite
def yaml_soup(draw: st.DrawFn) -> bytes:
    tokens = draw(st.lists(st.sampled_from(YAML_TOKENS) | text, max_size=40))
    return "".join(tokens).encode("utf-8", "surrogatepass")


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few random edits: deletions, insertions, byte flips."""
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 2))
        i = draw(st.integers(0, len(b)))
        if op == 0 and b:
            del b[i : i + draw(st.integers(1, 8))]
        elif op == 1:
            tok = draw(st.sampled_from(YAML_TOKENS) | st.sampled_from(['"', ",", "}", "NaN"]))
            b[i:i] = tok.encode("utf-8", "surrogatepass")
        elif b:
            b[min(i, len(b) - 1)] = draw(st.integers(0, 255))
    return bytes(b)


# ---------------------------------------------------------------------- the properties
def prop_arbitrary_bytes(data: bytes, suffix: str) -> None:
    check_file(data, suffix, env=FUZZ_KNOBS)


def prop_arbitrary_text(data: str, suffix: str) -> None:
    check_file(data.encode("utf-8", "surrogatepass"), suffix)


def prop_yaml_token_soup(data: bytes, domain: bool) -> None:
    check_file(data, ".yaml", env=FUZZ_KNOBS, domain=domain)


def prop_structured_dicts(doc: Any, env: Any) -> None:
    if env is None and isinstance(doc, dict) and doc.get("env") == CARTPOLE:
        doc = {**doc, "env": "domrand/CartPol-v0"}  # CartPole binding has its own property
    if not isinstance(doc, dict):
        doc = {"parameters": doc}
    check_spec(doc, env)


def prop_structured_files(
    doc: Any, fmt: str, mutate: int, domain: bool, data: st.DataObject
) -> None:
    raw = to_yaml(doc) if fmt == "yaml" else to_json(doc)
    if mutate == 0:
        raw = data.draw(mutated(raw))
    check_file(raw, "." + fmt, env=FUZZ_KNOBS, domain=domain)


def prop_valid_leaning(doc: dict[str, Any], fmt: str, domain: bool) -> None:
    if domain:  # a domain file: every entry pinned to a bare number
        doc = {**doc, "parameters": {k: _pin(v) for k, v in doc["parameters"].items()}}
        doc.pop("correlated", None)
    check = check_domain if domain else check_spec
    env = None if "env" in doc else FUZZ_KNOBS
    if fmt == "dict":
        check(doc, env)
    else:
        path = scratch_file("spec." + fmt, to_yaml(doc) if fmt == "yaml" else to_json(doc))
        check(path, env, path)


def _pin(entry: dict[str, Any]) -> Any:
    for key in ("value", "low", "mean", "high"):
        if key in entry:
            return entry[key]
    return entry.get("values", [0])[0]


def prop_cartpole_bound(doc: Any, fmt: str, how: str, domain: bool) -> None:
    """Bound to the real CartPole knob set: through ``env:`` in the document, or ``env=``."""
    doc = dict(doc) if isinstance(doc, dict) else {"parameters": doc}
    env = None
    if how == "file":
        doc["env"] = CARTPOLE
    else:  # the document's own env: is kept (absent, right, wrong or junk)
        env = CARTPOLE
    check = check_domain if domain else check_spec
    if fmt == "dict":
        check(doc, env)
    else:
        path = scratch_file("spec.yaml", to_yaml(doc))
        check(path, env, path)


#: name -> (property, its strategies, examples in the test suite). benchmarks/fuzz_specs.py
#: runs the same properties with random seeds and more examples.
TARGETS: dict[str, tuple[Callable[..., None], dict[str, st.SearchStrategy[Any]], int]] = {
    "arbitrary_bytes": (
        prop_arbitrary_bytes,
        {"data": st.binary(max_size=600), "suffix": st.sampled_from([".yaml", ".json"])},
        300,
    ),
    "arbitrary_text": (
        prop_arbitrary_text,
        {"data": st.text(max_size=300), "suffix": st.sampled_from([".yaml", ".yml", ".json"])},
        300,
    ),
    "yaml_token_soup": (prop_yaml_token_soup, {"data": yaml_soup(), "domain": st.booleans()}, 600),
    "structured_dicts": (
        prop_structured_dicts,
        {"doc": spec_documents(), "env": st.sampled_from([None, FUZZ_KNOBS])},
        500,
    ),
    "structured_files": (
        prop_structured_files,
        {
            "doc": spec_documents(),
            "fmt": st.sampled_from(["yaml", "json"]),
            "mutate": st.integers(0, 3),
            "domain": st.booleans(),
            "data": st.data(),
        },
        500,
    ),
    "valid_leaning": (
        prop_valid_leaning,
        {
            "doc": valid_leaning_documents(),
            "fmt": st.sampled_from(["dict", "yaml", "json"]),
            "domain": st.integers(0, 3).map(lambda i: i == 0),
        },
        500,
    ),
    "cartpole_bound": (
        prop_cartpole_bound,
        {
            "doc": spec_documents(),
            "fmt": st.sampled_from(["dict", "yaml"]),
            "how": st.sampled_from(["file", "argument"]),
            "domain": st.booleans(),
        },
        150,
    ),
}

COMMON = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz_test(name: str, max_examples: int | None = None, derandomize: bool = True) -> Any:
    """The hypothesis test of ``TARGETS[name]`` with the given budget."""
    prop, strategies, n = TARGETS[name]
    budget = settings(COMMON, max_examples=max_examples or n, derandomize=derandomize)
    return budget(given(**strategies)(prop))


test_arbitrary_bytes = fuzz_test("arbitrary_bytes")
test_arbitrary_text = fuzz_test("arbitrary_text")
test_yaml_token_soup = fuzz_test("yaml_token_soup")
test_structured_documents_as_dicts = fuzz_test("structured_dicts")
test_structured_documents_as_files = fuzz_test("structured_files")
test_valid_leaning_documents_bind_or_fail_cleanly = fuzz_test("valid_leaning")
test_documents_bound_to_cartpole = fuzz_test("cartpole_bound")


def test_the_fuzzers_reach_every_outcome() -> None:
    """The strategies are worth something only if they reach valid specs and every error kind."""
    if sum(OUTCOMES.values()) < 1000:
        pytest.skip("meaningful only after the fuzz tests above ran")
    expected = ["valid", "valid-unbound", "valid-domain", "SpecFileError", "SpecSyntaxError"]
    expected += ["SpecTypeError", "SpecValueError", "SpecKeyError", "SpecRangeError"]
    expected += ["UnknownKnobError", "EnvMismatchError"]
    missing = [label for label in expected if OUTCOMES[label] == 0]
    assert not missing, (missing, OUTCOMES)

"""DomainRandomization: sampling, pinning, per-step re-draws, seeding and the one random path."""

from __future__ import annotations

import ast
import random
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import domrand
from domrand.errors import DomrandError, EnvMismatchError, KnobError, UnknownKnobError
from domrand.spec import load_domain, load_spec
from domrand.wrappers import DomainRandomization

ENV_ID = "domrand/CartPole-v0"
SPEC_PATH = domrand.default_spec_path(ENV_ID)
ACTIONS = np.random.default_rng(123).uniform(-1.0, 1.0, size=(30, 1)).astype(np.float32)
REPO = Path(__file__).resolve().parents[2]


def spec_with(**parameters: object) -> dict:
    return {"env": ENV_ID, "parameters": dict(parameters)}


@pytest.fixture
def spec_env() -> Iterator[gym.Env]:
    env = domrand.make(ENV_ID, spec=SPEC_PATH, seed=0)
    yield env
    env.close()


def rollout(env: gym.Env, seed: int | None = None, options: dict | None = None) -> np.ndarray:
    """Observations of an open-loop rollout (fixed action sequence), up to the episode's end."""
    obs, _ = env.reset(seed=seed, options=options)
    traj = [obs]
    for a in ACTIONS:
        obs, _, terminated, truncated, _ = env.step(a)
        traj.append(obs)
        if terminated or truncated:
            break
    return np.stack(traj)


# ---------------------------------------------------------------------- info["domain"]
def test_reset_reports_every_knob_and_what_was_applied(spec_env: gym.Env) -> None:
    _, info = spec_env.reset()
    knobs = spec_env.unwrapped.knobs
    assert set(info["domain"]) == set(knobs)
    assert info["domain"] == spec_env.unwrapped.domain
    for name, value in info["domain"].items():
        assert knobs[name].contains(value)


def test_without_spec_the_domain_is_nominal() -> None:
    env = domrand.make(ENV_ID, seed=0)
    for _ in range(2):
        _, info = env.reset()
        assert info["domain"] == env.unwrapped.nominal_domain
    env.close()


def test_sampled_values_stay_inside_the_spec(spec_env: gym.Env) -> None:
    spec = load_spec(SPEC_PATH)
    seen: dict[str, set] = {k: set() for k in spec.knob_names()}
    for _ in range(20):
        _, info = spec_env.reset()
        for k in spec.knob_names():
            lo, hi = spec.value_bounds(k)
            assert lo - 1e-12 <= info["domain"][k] <= hi + 1e-12, k
            seen[k].add(info["domain"][k])
    assert len(seen["pole.mass"]) == 20  # really sampled each episode
    assert seen["gravity"] == {9.81}
    assert seen["action.delay"] <= {0, 1, 2}


# ---------------------------------------------------------------------- pinning
def test_reset_option_pins_one_knob_for_one_episode(spec_env: gym.Env) -> None:
    _, first = spec_env.reset(options={"domain": {"pole.mass": 0.3}})
    assert first["domain"]["pole.mass"] == 0.3
    assert spec_env.unwrapped._p.getDynamicsInfo(spec_env.unwrapped._cartpole, 1)[0] == 0.3
    _, second = spec_env.reset(options={"domain": {"pole.mass": 0.3}})
    # the rest is sampled, fresh each episode
    assert first["domain"]["cart.mass"] != second["domain"]["cart.mass"]
    assert first["domain"]["cart.mass"] != 1.0
    # the next reset without options samples pole.mass again, from the spec's range
    _, third = spec_env.reset()
    assert 0.05 <= third["domain"]["pole.mass"] <= 0.2


def test_reset_option_pin_holds_against_per_step_redraws(spec_env: gym.Env) -> None:
    spec_env.reset(options={"domain": {"obs.noise": 0.5}})
    for a in ACTIONS[:10]:
        spec_env.step(a)
        assert spec_env.unwrapped.domain["obs.noise"] == 0.5


def test_make_domain_pins_every_episode() -> None:
    pins = {"pole.mass": 0.15, "action.delay": 1, "obs.noise": 0.002}
    env = domrand.make(ENV_ID, spec=SPEC_PATH, domain=pins, seed=1)
    carts = set()
    for _ in range(5):
        _, info = env.reset()
        assert {k: info["domain"][k] for k in pins} == pins
        carts.add(info["domain"]["cart.mass"])
        for a in ACTIONS[:5]:
            env.step(a)
            assert env.unwrapped.domain["obs.noise"] == 0.002  # every: step knob stays pinned
    assert len(carts) == 5
    env.close()


def test_reality_pins_the_reality_files_values() -> None:
    path = domrand.realities(ENV_ID)["laggy"]
    values = load_domain(path)
    assert values  # the file pins something
    plain = domrand.make(ENV_ID, reality="laggy", seed=0)
    _, info = plain.reset()
    expected = {**plain.unwrapped.nominal_domain, **values}
    assert info["domain"] == expected
    plain.close()
    randomized = domrand.make(ENV_ID, spec=SPEC_PATH, reality="laggy", seed=0)
    for _ in range(3):
        _, info = randomized.reset()
        assert {k: info["domain"][k] for k in values} == values
    randomized.close()


def test_unknown_knob_in_options_says_did_you_mean(spec_env: gym.Env) -> None:
    with pytest.raises(KnobError, match=r"did you mean 'pole\.mass'"):
        spec_env.reset(options={"domain": {"pole.mas": 0.3}})


def test_unknown_knob_in_domain_says_did_you_mean() -> None:
    with pytest.raises(KnobError, match=r"did you mean 'cart\.friction'"):
        domrand.make(ENV_ID, domain={"cart.fricton": 0.1})


def test_out_of_range_pin_is_rejected() -> None:
    with pytest.raises(KnobError, match="outside valid range"):
        domrand.make(ENV_ID, domain={"pole.mass": -1.0})


def test_unknown_knob_in_spec_says_did_you_mean() -> None:
    with pytest.raises(UnknownKnobError, match=r"did you mean 'motor\.gain'"):
        domrand.make(ENV_ID, spec=spec_with(**{"motor.gian": 10.0}))


def test_spec_for_another_env_is_rejected() -> None:
    spec = {"env": "domrand/Pendulum-v0", "parameters": {"pole.mass": 0.2}}
    with pytest.raises(EnvMismatchError, match="Pendulum"):
        domrand.make(ENV_ID, spec=spec)


def test_env_without_knobs_gets_a_clear_error() -> None:
    env = gym.make("CartPole-v1")
    with pytest.raises(DomrandError, match="exposes no knobs"):
        DomainRandomization(env, spec=SPEC_PATH)
    env.close()


# ---------------------------------------------------------------------- re-draw periods
def test_every_step_knobs_change_between_steps_episode_knobs_do_not(spec_env: gym.Env) -> None:
    spec_env.reset()
    u = spec_env.unwrapped
    start = u.domain
    noise = [start["obs.noise"]]
    for a in ACTIONS[:10]:
        spec_env.step(a)
        d = u.domain
        noise.append(d["obs.noise"])
        assert {k: v for k, v in d.items() if k != "obs.noise"} == {
            k: v for k, v in start.items() if k != "obs.noise"
        }
    # the reset draw serves control step 0; every later step gets a fresh draw
    assert noise[1] == noise[0]
    assert len(set(noise[1:])) == len(noise) - 1
    assert all(0.0 <= x <= 0.01 for x in noise)


def test_every_n_redraws_only_at_steps_divisible_by_n() -> None:
    spec = spec_with(
        **{
            "obs.noise": {"dist": "uniform", "low": 0.0, "high": 1.0, "every": 3},
            "pole.mass": {"dist": "uniform", "low": 0.5, "high": 2.0, "mode": "scale"},
        }
    )
    env = domrand.make(ENV_ID, spec=spec, seed=4)
    _, info = env.reset(options={"domain": {"gravity": 0.0}})  # a long episode
    in_force = []  # the value in force during control step t (0-based)
    for _ in range(12):
        env.step(np.zeros(1, np.float32))
        in_force.append(env.unwrapped.domain["obs.noise"])
        assert env.unwrapped.domain["pole.mass"] == info["domain"]["pole.mass"]
    assert in_force[0] == info["domain"]["obs.noise"]
    for t in range(12):
        assert in_force[t] == in_force[3 * (t // 3)]
    for t in (3, 6, 9):
        assert in_force[t] != in_force[t - 1]
    env.close()


def test_values_derive_from_nominal_and_never_compound() -> None:
    spec = spec_with(**{"pole.mass": {"dist": "uniform", "low": 0.5, "high": 2.0, "mode": "scale"}})
    env = domrand.make(ENV_ID, spec=spec, seed=0)
    u = env.unwrapped
    inertia0 = np.asarray(u._p.getDynamicsInfo(u._cartpole, 1)[2])
    sampled = []
    for i in range(100):
        pin = {"pole.mass": 5.0} if i % 10 == 0 else {}
        _, info = env.reset(options={"domain": pin})
        mass = info["domain"]["pole.mass"]
        dyn = u._p.getDynamicsInfo(u._cartpole, 1)
        assert dyn[0] == pytest.approx(mass)
        np.testing.assert_allclose(dyn[2], inertia0 * mass / 0.1, rtol=1e-9)
        if not pin:
            sampled.append(mass)
            assert 0.05 <= mass <= 0.2
    assert max(sampled) - min(sampled) > 0.1  # spread over the range, not collapsed
    env.close()


# ---------------------------------------------------------------------- reproducibility
def _episodes(env: gym.Env, n: int = 3) -> tuple[list[dict], list[np.ndarray]]:
    domains, trajs = [], []
    for _ in range(n):
        traj = rollout(env)
        domains.append(env.unwrapped.domain)
        trajs.append(traj)
    return domains, trajs


def test_same_seed_same_domains_and_bit_identical_rollouts() -> None:
    runs = []
    for _ in range(2):
        env = domrand.make(ENV_ID, spec=SPEC_PATH, seed=42)
        infos = [env.reset()[1]["domain"]]
        domains, trajs = _episodes(env)
        runs.append((infos, domains, trajs))
        env.close()
    (i1, d1, t1), (i2, d2, t2) = runs
    assert i1 == i2 and d1 == d2
    for a, b in zip(t1, t2):
        np.testing.assert_array_equal(a, b)
    # per-step obs noise was on, and each episode's domain differs from the last
    assert any(d["obs.noise"] > 0 for d in d1)
    assert d1[0]["pole.mass"] != d1[1]["pole.mass"]


def test_reset_seed_equals_make_seed() -> None:
    a = domrand.make(ENV_ID, spec=SPEC_PATH, seed=9)
    b = domrand.make(ENV_ID, spec=SPEC_PATH)
    np.testing.assert_array_equal(rollout(a), rollout(b, seed=9))
    assert a.unwrapped.domain == b.unwrapped.domain
    a.close()
    b.close()


def test_different_seeds_differ() -> None:
    a = domrand.make(ENV_ID, spec=SPEC_PATH, seed=1)
    b = domrand.make(ENV_ID, spec=SPEC_PATH, seed=2)
    da, ta = _episodes(a, 2)
    db, tb = _episodes(b, 2)
    assert da[0]["pole.mass"] != db[0]["pole.mass"]
    assert not np.array_equal(ta[0][:2], tb[0][:2])
    a.close()
    b.close()


def test_unseeded_envs_differ() -> None:
    a = domrand.make(ENV_ID, spec=SPEC_PATH)
    b = domrand.make(ENV_ID, spec=SPEC_PATH)
    assert a.reset()[1]["domain"] != b.reset()[1]["domain"]
    a.close()
    b.close()


def _vec_run(mode: str, seed: int) -> tuple[dict, np.ndarray]:
    vec = domrand.make_vec(ENV_ID, 4, spec=SPEC_PATH, seed=seed, vectorization=mode)
    try:
        obs, info = vec.reset()
        traj = [obs]
        for a in ACTIONS[:5]:
            obs, *_ = vec.step(np.repeat(a[None], 4, axis=0))
            traj.append(obs)
        # gymnasium stacks the dict per key and adds "_key" masks; keep the values
        domains = {k: np.asarray(v) for k, v in info["domain"].items() if not k.startswith("_")}
        return domains, np.stack(traj)
    finally:
        vec.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec_gives_independent_reproducible_streams(mode: str) -> None:
    d1, t1 = _vec_run(mode, 0)
    assert set(d1) == set(domrand.knobs_for(ENV_ID))
    for knob in ("pole.mass", "cart.mass", "motor.gain", "obs.noise"):
        assert len(np.unique(d1[knob])) == 4, knob  # four different domains
    assert len({tuple(row) for row in t1[0]}) == 4  # and four different initial states
    d2, t2 = _vec_run(mode, 0)
    for k in d1:
        np.testing.assert_array_equal(d1[k], d2[k])
    np.testing.assert_array_equal(t1, t2)
    d3, _ = _vec_run(mode, 1)
    assert not np.array_equal(d1["pole.mass"], d3["pole.mass"])


def test_sync_and_async_agree() -> None:
    ds, ts = _vec_run("sync", 3)
    da, ta = _vec_run("async", 3)
    np.testing.assert_array_equal(ds["pole.mass"], da["pole.mass"])
    np.testing.assert_array_equal(ts, ta)


# ---------------------------------------------------------------------- one random path
def _global_states() -> tuple[tuple, tuple]:
    return np.random.get_state(), random.getstate()  # noqa: NPY002 (reading it is the point)


def _same_np_state(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and tuple(a[2:]) == tuple(b[2:])


def test_nothing_touches_the_global_random_state() -> None:
    np.random.seed(2024)  # noqa: NPY002 (a known global state to compare against)
    random.seed(2024)
    np_before, py_before = _global_states()
    spec = load_spec(SPEC_PATH)
    spec.sample(np.random.default_rng(0))
    for seed in (5, None):
        env = domrand.make(ENV_ID, spec=spec, seed=seed)
        env.reset()
        for a in ACTIONS:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset(options={"domain": {"pole.mass": 0.2}})
        env.close()
    vec = domrand.make_vec(ENV_ID, 2, spec=SPEC_PATH, seed=0)
    vec.reset()
    vec.step(np.zeros((2, 1), np.float32))
    vec.close()
    np_after, py_after = _global_states()
    assert _same_np_state(np_before, np_after)
    assert py_before == py_after


#: numpy.random attributes that do not touch the global state
ALLOWED_NP_RANDOM = {
    "default_rng",
    "Generator",
    "SeedSequence",
    "BitGenerator",
    "PCG64",
    "PCG64DXSM",
    "Philox",
    "SFC64",
    "MT19937",
}


def global_rng_uses(source: str) -> list[str]:
    """Lines of ``source`` that use ``random`` or numpy's global RNG functions."""
    tree = ast.parse(source)
    np_names, np_random_names = {"numpy"}, set()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "random" or alias.name.startswith("random."):
                    found.append(f"{node.lineno}: import {alias.name}")
                if alias.name == "numpy":
                    np_names.add(alias.asname or "numpy")
                if alias.name == "numpy.random":
                    np_random_names.add(alias.asname or "numpy.random")
        elif isinstance(node, ast.ImportFrom):
            if node.module == "random" or (node.module or "").startswith("random."):
                found.append(f"{node.lineno}: from {node.module} import ...")
            if node.module == "numpy":
                for alias in node.names:
                    if alias.name == "random":
                        np_random_names.add(alias.asname or "random")
            if node.module == "numpy.random":
                for alias in node.names:
                    if alias.name not in ALLOWED_NP_RANDOM:
                        found.append(f"{node.lineno}: from numpy.random import {alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        via_np = (
            isinstance(base, ast.Attribute)
            and base.attr == "random"
            and isinstance(base.value, ast.Name)
            and base.value.id in np_names
        )
        via_alias = isinstance(base, ast.Name) and base.id in np_random_names
        if (via_np or via_alias) and node.attr not in ALLOWED_NP_RANDOM:
            found.append(f"{node.lineno}: np.random.{node.attr}")
    return found


def test_the_global_rng_checker_catches_violations() -> None:
    bad = (
        "import numpy as np\nimport random\nfrom numpy.random import rand\n"
        "import numpy.random as npr\nfrom numpy import random as nr\n"
        "np.random.seed(0)\nx = np.random.normal(0, 1)\nnpr.shuffle(x)\nnr.choice([1])\n"
    )
    assert len(global_rng_uses(bad)) == 6
    good = "import numpy as np\nrng = np.random.default_rng(np.random.SeedSequence(0))\n"
    assert global_rng_uses(good) == []


@pytest.mark.parametrize("package", ["domrand", "envs", "policies"])
def test_no_module_uses_the_global_rng(package: str) -> None:
    files = sorted((REPO / package).rglob("*.py"))
    assert files
    offenders = {
        str(f.relative_to(REPO)): uses
        for f in files
        if (uses := global_rng_uses(f.read_text(encoding="utf-8")))
    }
    assert offenders == {}

"""The env registry: ids, knobs, shipped specs and realities, make/make_vec argument checks."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import domrand
from domrand import registry
from domrand.errors import DomrandError, EnvMismatchError, SpecError, SpecFileError
from domrand.spec import Mode, load_domain, load_spec

ENV_ID = "domrand/CartPole-v0"
REQUIRED_KNOBS = (
    "cart.mass",
    "pole.mass",
    "cart.friction",
    "pole.damping",
    "motor.gain",
    "action.delay",
    "action.noise",
    "obs.noise",
    "gravity",
    "sim.timestep",
)


def test_env_ids_and_gymnasium_registration() -> None:
    assert ENV_ID in domrand.env_ids()
    assert registry.is_registered(ENV_ID)
    assert not registry.is_registered("domrand/CartPole-v9")
    domrand.register_all()
    domrand.register_all()  # idempotent
    assert ENV_ID in gym.registry
    assert gym.registry[ENV_ID].max_episode_steps == 500


def test_knobs_for_lists_the_required_knobs() -> None:
    knobs = domrand.knobs_for(ENV_ID)
    assert set(REQUIRED_KNOBS) <= set(knobs)
    for knob in knobs.values():
        assert knob.unit and knob.doc
        assert knob.contains(knob.nominal)


def test_unknown_env_id_says_did_you_mean() -> None:
    for call in (domrand.knobs_for, domrand.default_spec_path, domrand.realities, domrand.make):
        with pytest.raises(DomrandError, match=r"did you mean 'domrand/CartPole-v0'"):
            call("domrand/CartPol-v0")


def test_default_spec_exists_loads_and_is_bound() -> None:
    path = domrand.default_spec_path(ENV_ID)
    assert path.is_file()
    spec = load_spec(path)
    assert spec.env == ENV_ID
    assert spec.knobs is not None
    assert not spec.is_domain
    assert set(spec.knob_names()) <= set(domrand.knobs_for(ENV_ID))


def test_at_least_three_realities_are_shipped() -> None:
    table = domrand.realities(ENV_ID)
    assert len(table) >= 3
    for path in table.values():
        assert path.is_file()


def test_unknown_reality_says_did_you_mean() -> None:
    with pytest.raises(SpecFileError, match=r"did you mean 'laggy'"):
        domrand.make(ENV_ID, reality="lagy")


def test_domain_and_reality_together_are_rejected() -> None:
    with pytest.raises(DomrandError, match="not both"):
        domrand.make(ENV_ID, domain={"pole.mass": 0.2}, reality="laggy")


# ---------------------------------------------------------------------- realities vs training
def _randomized_bounds(spec: domrand.RandomizationSpec) -> dict[str, tuple[float, float]]:
    """Knob -> (low, high) for the knobs the spec really randomizes (constants excluded)."""
    out = {}
    for name in spec.knob_names():
        lo, hi = spec.value_bounds(name)
        if hi > lo:
            out[name] = (lo, hi)
    return out


def _at_or_beyond_edge(value: float, lo: float, hi: float) -> bool:
    tol = 1e-9 * max(1.0, abs(lo), abs(hi))
    return value <= lo + tol or value >= hi - tol


@pytest.mark.parametrize("name", sorted(domrand.realities(ENV_ID)))
def test_each_reality_is_a_domain_file_that_stresses_the_training_spec(name: str) -> None:
    path = domrand.realities(ENV_ID)[name]
    values = load_domain(path)
    knobs = domrand.knobs_for(ENV_ID)
    assert values
    for knob, value in values.items():
        assert knobs[knob].contains(value)
    bounds = _randomized_bounds(load_spec(domrand.default_spec_path(ENV_ID)))
    stressing = [
        k for k, v in values.items() if k not in bounds or _at_or_beyond_edge(v, *bounds[k])
    ]
    assert stressing, f"reality {name} pins nothing at or beyond the training spec's edges"


def test_some_reality_pins_a_knob_the_spec_never_randomizes() -> None:
    bounds = _randomized_bounds(load_spec(domrand.default_spec_path(ENV_ID)))
    unmodelled = {
        name: sorted(set(load_domain(path)) - set(bounds))
        for name, path in domrand.realities(ENV_ID).items()
    }
    assert any(unmodelled.values()), unmodelled


def test_realities_differ_from_nominal() -> None:
    nominal = domrand.knobs_for(ENV_ID).nominal()
    for path in domrand.realities(ENV_ID).values():
        values = load_domain(path)
        assert any(not math.isclose(v, nominal[k]) for k, v in values.items())


def test_default_spec_scale_entries_are_around_nominal() -> None:
    spec = load_spec(domrand.default_spec_path(ENV_ID))
    knobs = domrand.knobs_for(ENV_ID)
    for p in spec.parameters:
        if p.mode is Mode.SCALE:
            lo, hi = spec.value_bounds(p.knob)
            assert lo <= knobs[p.knob].nominal <= hi, p.knob


# ---------------------------------------------------------------------- make / make_vec
def test_make_returns_a_time_limited_domain_randomization_wrapper() -> None:
    env = domrand.make(ENV_ID)
    assert isinstance(env, domrand.DomainRandomization)
    assert isinstance(env, gym.Wrapper)
    assert env.spec is not None and env.spec.max_episode_steps == 500
    env.close()


def test_make_passes_env_kwargs() -> None:
    env = domrand.make(ENV_ID, render_mode="rgb_array")
    assert env.unwrapped.render_mode == "rgb_array"
    env.close()


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True, np.int64(3)])
def test_make_rejects_a_bad_seed_up_front(seed: object) -> None:
    """Rejected at make(), not at the first reset() (gymnasium wants a non-negative int)."""
    with pytest.raises(DomrandError, match="seed must be a non-negative integer"):
        domrand.make(ENV_ID, seed=seed)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_envs": 0}, "num_envs"),
        ({"num_envs": 2, "vectorization": "threads"}, "vectorization"),
        ({"num_envs": 2, "seed": -5}, "seed"),
    ],
)
def test_make_vec_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(DomrandError, match=match):
        domrand.make_vec(ENV_ID, **kwargs)


def test_make_vec_validates_the_spec_before_starting_workers() -> None:
    bad = {"env": ENV_ID, "parameters": {"pole.mass": {"dist": "uniform", "low": 2, "high": 1}}}
    with pytest.raises(SpecError, match="low > high"):
        domrand.make_vec(ENV_ID, 2, spec=bad, vectorization="async")


def test_visual_spec_files_validate_and_need_a_rendering_env() -> None:
    from domrand.errors import UnknownKnobError
    from domrand.registry import all_knobs_for, assets_dir, knobs_for

    path = assets_dir() / "specs" / "cartpole_visual.yaml"
    spec = domrand.load_spec(path)  # env: line -> validated against every knob the env can have
    assert "floor.texture" in spec.knob_names()
    assert "floor.texture" in all_knobs_for(ENV_ID) and "floor.texture" not in knobs_for(ENV_ID)
    with pytest.raises(UnknownKnobError, match="only when the env renders"):
        domrand.make(ENV_ID, spec=path)
    env = domrand.make(ENV_ID, spec=path, obs_mode="image", image_size=32, seed=0)
    obs, info = env.reset()
    assert obs.shape == (32, 32, 3) and "floor.texture" in info["domain"]
    env.close()


def test_a_spec_binds_to_an_env_sharing_its_assets_only() -> None:
    """Pusher-v0's shipped spec and realities serve PusherPlace-v0; other envs still refuse."""
    path = domrand.default_spec_path("domrand/Pusher-v0")
    spec = load_spec(path, "domrand/PusherPlace-v0")
    assert spec.env == "domrand/Pusher-v0" and "puck.mass" in spec.knobs
    with pytest.raises(EnvMismatchError, match="allowed: domrand/KukaReach-v0"):
        load_spec(path, "domrand/KukaReach-v0")
    with pytest.raises(EnvMismatchError):
        load_spec(domrand.default_spec_path("domrand/CartPole-v0"), "domrand/PusherPlace-v0")

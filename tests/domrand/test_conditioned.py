"""Domain-conditioned observations (SO-CMA's universal policy input) and their registered ids."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import domrand
from domrand.conditioned import DomainConditioned, conditioned_env_id
from domrand.errors import DomrandError
from domrand.registry import make_vec

ENV = "domrand/CartPole-v0"
SPEC = {
    "env": ENV,
    "parameters": {
        "pole.mass": {"dist": "uniform", "low": 0.05, "high": 0.25},
        "action.delay": {"dist": "choice", "values": [0, 1, 2]},
        "gravity": 9.81,
    },
}


def _spec() -> domrand.RandomizationSpec:
    return domrand.load_spec(SPEC, env=ENV)


def test_the_observation_ends_with_the_normalized_domain() -> None:
    spec = _spec()
    env_id = conditioned_env_id(ENV, spec)
    env = domrand.make(env_id, spec=dataclasses.replace(spec, env=None), seed=0)
    obs, info = env.reset(options={"domain": {"pole.mass": 0.1, "action.delay": 2}})
    assert env.observation_space.shape == (4 + 2,)
    np.testing.assert_allclose(obs[4:], [0.25, 1.0])  # (0.1 - 0.05) / 0.2, (2 - 0) / 2
    assert info["domain"]["pole.mass"] == 0.1
    step_obs = env.step(np.zeros(1, np.float32))[0]
    np.testing.assert_allclose(step_obs[4:], obs[4:])  # fixed through the episode
    sampled, info = env.reset()
    np.testing.assert_allclose(sampled[4:], spec.normalize(info["domain"]), rtol=1e-6)
    assert env.observation_space.contains(sampled)
    env.close()


def test_the_id_is_a_function_of_the_spec_and_the_trainer_can_use_it() -> None:
    spec = _spec()
    assert conditioned_env_id(ENV, spec) == conditioned_env_id(ENV, _spec())
    wider = domrand.load_spec(
        {**SPEC, "parameters": {**SPEC["parameters"], "pole.mass": {"dist": "uniform",
                                                                    "low": 0.05, "high": 0.3}}},
        env=ENV,
    )  # fmt: skip
    assert conditioned_env_id(ENV, wider) != conditioned_env_id(ENV, spec)
    env_id = conditioned_env_id(ENV, spec)
    assert env_id.startswith("domrand/CartPoleMu") and env_id.endswith("-v0")
    envs = make_vec(env_id, 2, spec=dataclasses.replace(spec, env=None), seed=1)
    obs, _ = envs.reset()
    assert obs.shape == (2, 6) and np.all((obs[:, 4:] >= 0) & (obs[:, 4:] <= 1))
    envs.close()


def test_a_spec_without_bounded_knobs_cannot_condition() -> None:
    pinned = domrand.load_spec({"env": ENV, "parameters": {"gravity": 9.81}}, env=ENV)
    with pytest.raises(DomrandError, match="bounded range"):
        DomainConditioned(gym.make(ENV, disable_env_checker=True), pinned)

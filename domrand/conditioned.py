"""Domain-conditioned observations: the input of SO-CMA's universal policy pi(a | s, mu).

:class:`DomainConditioned` appends ``mu = spec.normalize(domain)``, the episode's domain mapped to
``[0, 1]^k`` over the spec's bounded knobs, to every observation. The domain is the one the env
reports at reset (``info["domain"]``), so the wrapper sits *inside* ``DomainRandomization`` and
sees whatever the spec sampled or a caller pinned. Knobs re-drawn within an episode are
conditioned on their value at reset.

The trainer builds its envs from an env id, so :func:`conditioned_env_id` registers the wrapped env
as a variant id (``domrand/CartPoleMu<hash>-v0``, derived from the spec: the same spec gives the
same id in every process) that ``domrand.make``, ``make_vec`` and the trainer accept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from domrand.errors import DomrandError
from domrand.spec import RandomizationSpec, load_spec

__all__ = ["DomainConditioned", "conditioned_env_id", "make_conditioned"]


class DomainConditioned(gym.Wrapper[np.ndarray, np.ndarray, np.ndarray, np.ndarray]):
    """Append the normalized domain ``mu`` in ``[0, 1]^k`` to the observation.

    Args:
        env: a knob-exposing env whose reset info holds the full ``domain``.
        spec: the spec whose :meth:`~domrand.spec.RandomizationSpec.bounded_knobs` are the axes.
    """

    def __init__(self, env: gym.Env, spec: RandomizationSpec) -> None:
        super().__init__(env)
        self.condition_spec = spec
        self.axes = spec.bounded_knobs()
        if not self.axes:
            raise DomrandError(
                f"{spec.source}: no randomized knob with a bounded range to condition on"
            )
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise DomrandError("domain conditioning needs a flat Box observation space")
        k = len(self.axes)
        self.observation_space = gym.spaces.Box(
            np.concatenate([space.low, np.zeros(k)]).astype(np.float32),
            np.concatenate([space.high, np.ones(k)]).astype(np.float32),
            dtype=np.float32,
        )
        self._mu = np.full(k, 0.5, dtype=np.float32)

    @property
    def mu(self) -> np.ndarray:
        """The current episode's normalized domain."""
        return self._mu.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        domain = info.get("domain")
        if domain is None:
            raise DomrandError("the env did not report its domain at reset (info['domain'])")
        self._mu = np.clip(self.condition_spec.normalize(domain), 0.0, 1.0).astype(np.float32)
        return self._cat(obs), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._cat(obs), reward, terminated, truncated, info  # type: ignore[return-value]

    def _cat(self, obs: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(obs, dtype=np.float32), self._mu])


def make_conditioned(base_id: str, spec: Mapping[str, Any], **kwargs: Any) -> gym.Env:
    """Entry point of a conditioned variant: the base env (unwrapped) inside the wrapper."""
    from domrand.registry import ENVS, knobs_for

    env_cls = gym.envs.registration.load_env_creator(ENVS[base_id].entry_point)
    bound = load_spec(dict(spec), env=knobs_for(base_id))
    return DomainConditioned(env_cls(**kwargs), bound)


def conditioned_env_id(base_id: str, spec: RandomizationSpec) -> str:
    """Register (once) and return the id of ``base_id`` conditioned on ``spec``'s domain."""
    from domrand.registry import register_variant

    doc = spec.to_dict()
    digest = hashlib.sha256(json.dumps([base_id, doc], sort_keys=True).encode()).hexdigest()[:10]
    namespace, name, version = gym.envs.registration.parse_env_id(base_id)
    env_id = gym.envs.registration.get_env_id(namespace, f"{name}Mu{digest}", version)
    register_variant(
        env_id,
        base_id,
        "domrand.conditioned:make_conditioned",
        {"base_id": base_id, "spec": doc},
        f"{base_id} with the normalized domain of {spec.source} appended to the observation",
    )
    return env_id

"""``DomainRandomization``: apply a validated spec to any gymnasium env that exposes knobs.

The wrapper samples; the env applies. At every reset it draws the per-episode entries from its
own seeded generator, lets ``reset(options={"domain": {...}})`` pin any of them, and hands the full
domain to the env. Entries with ``every: step`` or ``every: N`` are re-drawn before the matching
control steps. The domain in force is returned in ``info["domain"]``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np

from domrand.errors import DomrandError, UnknownKnobError
from domrand.knobs import KnobSet
from domrand.spec import Domain, RandomizationSpec, load_domain, load_spec

__all__ = ["DomainRandomization", "domain_rng"]

#: spawn key separating the domain-sampling stream from the env's own ``np_random`` stream
_DOMAIN_STREAM = 0x646F6D


def domain_rng(seed: int) -> np.random.Generator:
    """The generator for domain sampling under ``seed``: independent of the env's own stream."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_DOMAIN_STREAM,)))


def _knobs_of(env: gym.Env) -> KnobSet:
    knobs = getattr(env.unwrapped, "knobs", None)
    if not isinstance(knobs, KnobSet) or not hasattr(env.unwrapped, "set_knobs"):
        raise DomrandError(
            f"{type(env.unwrapped).__name__} exposes no knobs: DomainRandomization needs an env "
            "with a `knobs` KnobSet and a `set_knobs(values)` method (see domrand.envs.BulletEnv)"
        )
    return knobs


class DomainRandomization(
    gym.Wrapper[np.ndarray, np.ndarray, np.ndarray, np.ndarray], gym.utils.RecordConstructorArgs
):
    """Randomize a knob-exposing env from a spec.

    Args:
        env: an env whose ``unwrapped`` has ``knobs`` and ``set_knobs``.
        spec: a spec, path or dict (validated against the env's knobs), or ``None`` for nominal.
        domain: pins applied on top of the spec in every episode (a dict or a domain file).
        seed: used by the first ``reset()`` that is not given a seed of its own.

    The guide hook (used by guided DR while training runs, also across subprocess workers through
    ``VectorEnv.call``/``set_attr``): :meth:`set_spec` swaps the distribution, and
    ``assigned_domain`` (when not ``None``) is used as the exact domain of every following episode
    instead of sampling, until it is cleared.
    """

    def __init__(
        self,
        env: gym.Env,
        spec: RandomizationSpec | str | os.PathLike | Mapping[str, Any] | None = None,
        domain: Mapping[str, Any] | str | os.PathLike | None = None,
        seed: int | None = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, spec=spec, domain=domain, seed=seed)
        gym.Wrapper.__init__(self, env)
        self.knobs = _knobs_of(env)
        self._base: Any = env.unwrapped
        self._env_id = env.spec.id if env.spec is not None else None
        pins: Domain = {}
        if domain is not None:
            pins = dict(domain) if isinstance(domain, Mapping) else load_domain(domain, self.knobs)
            pins = self._checked(pins)
        self.pins = pins
        self.randomization: RandomizationSpec | None = None
        self._step_spec: RandomizationSpec | None = None
        self.set_spec(spec)
        self._assigned: Domain | None = None
        self._pending_seed = seed
        self._rng: np.random.Generator | None = None
        self._episode_pins: set[str] = set()
        self._t = 0

    def _rendering_hint(self, error: UnknownKnobError) -> UnknownKnobError:
        """Say so when an unknown knob is a visual knob this env only has when it renders."""
        from domrand.registry import all_knobs_for, is_registered

        if self._env_id is None or not is_registered(self._env_id):
            return error
        if error.value in all_knobs_for(self._env_id) and error.value not in self.knobs:
            return UnknownKnobError(
                "knob exists only when the env renders",
                file=error.file,
                path=error.path,
                value=error.value,
                allowed="make the env with obs_mode='image' or render_mode='rgb_array'",
            )
        return error

    def _checked(self, values: Mapping[str, Any]) -> Domain:
        """Validate knob values against the env (unknown names get a did-you-mean)."""
        return {name: self.knobs[name].coerce(value) for name, value in values.items()}

    def set_spec(
        self, spec: RandomizationSpec | str | os.PathLike | Mapping[str, Any] | None
    ) -> None:
        """Replace the randomization distribution; takes effect at the next reset."""
        self.randomization = None
        if spec is not None:
            try:
                self.randomization = load_spec(spec, env=self.knobs).bind(self.knobs, self._env_id)
            except UnknownKnobError as e:
                raise self._rendering_hint(e) from None
        # The entries re-drawn within an episode, as a spec of their own, so the per-step path
        # only visits them. Knobs pinned by ``domain`` never move.
        self._step_spec = None
        r, pins = self.randomization, self.pins
        if r is not None and r.step_periods():
            params = tuple(
                p for p in r.parameters if not p.every.per_episode and p.knob not in pins
            )
            groups = tuple(
                g for g in r.groups if not g.every.per_episode and not set(g.knobs) & set(pins)
            )
            if params or groups:
                self._step_spec = replace(r, parameters=params, groups=groups)

    @property
    def assigned_domain(self) -> Domain | None:
        """An exact domain used for every following episode instead of sampling (or ``None``)."""
        return None if self._assigned is None else dict(self._assigned)

    @assigned_domain.setter
    def assigned_domain(self, domain: Mapping[str, Any] | None) -> None:
        self._assigned = None if domain is None else self._checked(domain)

    @property
    def np_random_domain(self) -> np.random.Generator:
        """The generator domains are drawn from (created lazily from OS entropy if unseeded)."""
        if self._rng is None:
            self._rng = np.random.default_rng()
        return self._rng

    def sample_domain(self) -> Domain:
        """Draw a full episode domain: spec samples, then the wrapper's pins."""
        d: Domain = {}
        if self.randomization is not None:
            d.update(self.randomization.sample(self.np_random_domain))
        d.update(self.pins)
        if self._assigned is not None:
            d.update(self._assigned)
        return d

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None and self._pending_seed is not None:
            seed = self._pending_seed
        self._pending_seed = None
        if seed is not None:
            self._rng = domain_rng(seed)
        options = dict(options or {})
        domain = self.sample_domain()
        episode_pins = options.get("domain") or {}
        domain.update(episode_pins)
        options["domain"] = domain
        self._episode_pins = set(episode_pins)
        self._t = 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._step_spec is not None and self._t > 0:
            due = self._step_spec.sample(self.np_random_domain, only_period=self._t)
            frozen = (
                self._episode_pins
                if self._assigned is None
                else self._episode_pins | set(self._assigned)
            )
            if frozen:
                for name in frozen.intersection(due):
                    del due[name]
            if due:
                self._base.set_knobs(due)
        self._t += 1
        return self.env.step(action)

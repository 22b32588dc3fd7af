"""A gymnasium vector env whose envs live on backend workers.

Env ``i`` is built from :class:`EnvRecipe` ``i`` (its seed spawned from the root seed by env
index, never by worker), and the envs are split into contiguous blocks, one per worker; each
worker keeps its block as a ``SyncVectorEnv`` across calls. A step sends every block its actions
and gathers the results in env order, so observations, rewards and infos are the same for any
backend and any number of workers.

**Worker faults (the trainer's step-level "re-run").** When a worker dies during a call, it is
restarted and its block rebuilt: every env of the block is made anew from its recipe with the
seed ``SeedSequence(seed_i, spawn_key=(RESTART_STREAM, k))`` for the block's k-th restart, the
last ``set_spec`` call and the ``assigned_domain`` values are replayed to it, and it is reset.
The step that was lost is *not* replayed (the policy has moved on): for each env of the block it
returns the last observation the env gave, reward 0, ``truncated=True`` and
``info["worker_restart"] = True``. The trainer ends those interrupted episodes there: they are
counted as faults, never averaged into returns nor reported to the guide, and their last step is
bootstrapped from V(last observation). Resets, ``call``, ``get_attr`` and ``set_attr`` are simply
re-run on the rebuilt block. Other workers' envs are unaffected.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np

from domrand.backends.base import Backend, WorkerDied, WorkerHost

__all__ = ["RESTART_STREAM", "BackendVectorEnv", "EnvRecipe"]

RESTART_STREAM = 0x72737472  #: spawn key of the seeds of rebuilt envs ("rstr")


@dataclass(frozen=True)
class EnvRecipe:
    """Everything a worker needs to build env ``i``: ``domrand.make(env_id, spec, domain, seed,
    **env_kwargs)``, after registering ``variant`` (a derived env registered in the main process
    only) where it is missing."""

    env_id: str
    spec: Any = None
    domain: Any = None
    seed: int | None = None
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    variant: tuple[str, str, Mapping[str, Any], str] | None = None  #: base, entry, kwargs, doc

    def __call__(self) -> gym.Env:
        from domrand.registry import make, register_variant

        if self.variant is not None and self.env_id not in gym.registry:
            base, entry, kwargs, summary = self.variant
            register_variant(self.env_id, base, entry, kwargs, summary)
        return make(self.env_id, self.spec, self.domain, self.seed, **dict(self.env_kwargs))

    def reseeded(self, restart: int) -> EnvRecipe:
        """The recipe of this env rebuilt after its worker's ``restart``-th restart."""
        if self.seed is None:
            return self
        ss = np.random.SeedSequence(self.seed, spawn_key=(RESTART_STREAM, restart))
        return replace(self, seed=int(ss.generate_state(1, np.uint32)[0]))


def split_info(infos: Mapping[str, Any], i: int, keep_empty: bool = False) -> dict[str, Any]:
    """Env ``i``'s own info out of a batched info dict (numpy scalars as Python scalars).

    A nested dict with no presence mask that comes out empty is dropped unless ``keep_empty``.
    """
    out: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        present = infos.get("_" + key)
        if present is not None and not present[i]:
            continue
        if isinstance(value, dict):
            sub = split_info(value, i, keep_empty)
            if sub or keep_empty or present is not None:
                out[key] = sub
        else:
            v = value[i]
            out[key] = v.item() if isinstance(v, np.generic) else v
    return out


# ---------------------------------------------------------------------- worker side
def _build(
    host: WorkerHost, key: str, recipes: list[EnvRecipe], mode: gym.vector.AutoresetMode
) -> tuple[gym.Space, gym.Space, dict[str, Any]]:
    old = host.resources.pop(key, None)
    if old is not None:
        old.close()
    envs = gym.vector.SyncVectorEnv(list(recipes), autoreset_mode=mode)
    host.resources[key] = envs
    return envs.single_observation_space, envs.single_action_space, dict(envs.metadata)


def _infos(infos: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    return [split_info(infos, j) for j in range(n)]


def _reset(
    host: WorkerHost, key: str, seeds: list[int | None], options: dict[str, Any] | None
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    envs = host.resources[key]
    obs, infos = envs.reset(seed=seeds, options=options)
    return obs, _infos(infos, envs.num_envs)


def _step(host: WorkerHost, key: str, actions: np.ndarray) -> tuple[Any, ...]:
    envs = host.resources[key]
    obs, rew, term, trunc, infos = envs.step(actions)
    return obs, rew, term, trunc, _infos(infos, envs.num_envs)


def _call(host: WorkerHost, key: str, name: str, args: tuple, kwargs: dict) -> tuple:
    return tuple(host.resources[key].call(name, *args, **kwargs))


def _set_attr(host: WorkerHost, key: str, name: str, values: list[Any]) -> None:
    host.resources[key].set_attr(name, values)


def _close(host: WorkerHost, key: str) -> None:
    envs = host.resources.pop(key, None)
    if envs is not None:
        envs.close()


# ---------------------------------------------------------------------- main side
class BackendVectorEnv(gym.vector.VectorEnv):
    """``len(recipes)`` envs on the first ``min(workers, envs)`` workers of ``backend``.

    Args:
        backend: a started backend (closed with this env when ``own_backend``).
        recipes: one per env, in env order.
        autoreset_mode: gymnasium's autoreset mode (the trainer uses ``DISABLED``).
    """

    def __init__(
        self,
        backend: Backend,
        recipes: Sequence[EnvRecipe],
        autoreset_mode: gym.vector.AutoresetMode = gym.vector.AutoresetMode.NEXT_STEP,
        *,
        own_backend: bool = False,
    ) -> None:
        self.backend, self.own_backend = backend, own_backend
        self.recipes = list(recipes)
        self.num_envs = len(self.recipes)
        workers = min(backend.num_workers, self.num_envs)
        self.blocks = [b.tolist() for b in np.array_split(np.arange(self.num_envs), workers)]
        self.key = f"vec-{uuid.uuid4().hex}"
        self.autoreset_mode = autoreset_mode
        self.restarts = [0] * workers  #: per block
        self.interrupted_steps = 0  #: env steps lost to dead workers (returned as truncations)
        self._handles: list[Any] = [None] * workers
        self._spec_call: tuple[tuple, dict] | None = None
        self._attrs: dict[str, list[Any]] = {}
        self.closed = False
        built = self._each(lambda w: (_build, self._build_args(w)))
        obs_space, act_space, meta = built[0]
        self.single_observation_space, self.single_action_space = obs_space, act_space
        self.observation_space = gym.vector.utils.batch_space(obs_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(act_space, self.num_envs)
        self.metadata = {**meta, "autoreset_mode": autoreset_mode}
        self.render_mode = None
        self._obs = gym.vector.utils.create_empty_array(obs_space, self.num_envs)

    # ------------------------------------------------------------------ plumbing
    def _build_args(self, w: int) -> tuple:
        k = self.restarts[w]
        recipes = [
            self.recipes[i] if k == 0 else self.recipes[i].reseeded(k) for i in self.blocks[w]
        ]
        return (self.key, recipes, self.autoreset_mode)

    def _rebuild(self, w: int) -> None:
        """Worker ``w`` was replaced: rebuild its block, replay spec and attrs, reset it."""
        self.restarts[w] += 1
        handle = self.backend.handles[w]
        handle.call(_build, *self._build_args(w))
        self._handles[w] = handle
        block = self.blocks[w]
        if self._spec_call is not None:
            args, kwargs = self._spec_call
            handle.call(_call, self.key, "set_spec", args, kwargs)
        for name, values in self._attrs.items():
            handle.call(_set_attr, self.key, name, [values[i] for i in block])
        handle.call(_reset, self.key, [None] * len(block), None)

    def _each(
        self,
        make_call: Callable[[int], tuple[Callable[..., Any], tuple] | None],
        on_died: Callable[[int], Any] | None = None,
    ) -> list[Any]:
        """Run one call per block in parallel; a dead worker is restarted and its block
        rebuilt, then the call is re-run (or, with ``on_died``, replaced by ``on_died(w)``)."""
        results: list[Any] = [None] * len(self.blocks)
        sent: list[int] = []
        died: list[int] = []
        for w in range(len(self.blocks)):
            handle = self.backend.handles[w]
            if self._handles[w] is not None and handle is not self._handles[w]:
                died.append(w)  # replaced by another user of the shared backend
                continue
            call = make_call(w)
            if call is None:
                continue
            try:
                handle.send(call[0], *call[1])
                sent.append(w)
            except WorkerDied:
                died.append(w)
        error: BaseException | None = None
        for w in sent:  # every reply is read, so no worker is left out of step
            try:
                results[w] = self.backend.handles[w].recv()
                self._handles[w] = self.backend.handles[w]
            except WorkerDied:
                died.append(w)
            except Exception as e:  # the call itself failed: raised after the others
                error = error or e
        if error is not None:
            raise error
        for w in died:
            if self._handles[w] is None:  # died while building: build again
                self.backend.restart(w)
                self._handles[w] = self.backend.handles[w]
                results[w] = self._handles[w].call(_build, *self._build_args(w))
                continue
            if self.backend.handles[w] is self._handles[w]:
                self.backend.restart(w)
            self._rebuild(w)
            if on_died is not None:
                results[w] = on_died(w)
            else:
                call = make_call(w)
                if call is not None:
                    results[w] = self.backend.handles[w].call(call[0], *call[1])
        return results

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"{len(seeds)} seeds for {self.num_envs} envs")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)

        def make_call(w: int) -> tuple[Callable[..., Any], tuple] | None:
            block = self.blocks[w]
            opts = dict(options)
            if mask is not None:
                m = np.asarray(mask[block], dtype=np.bool_)
                if not m.any():
                    return None
                opts["reset_mask"] = m
            return _reset, (self.key, [seeds[i] for i in block], opts or None)

        results = self._each(make_call)
        infos: dict[str, Any] = {}
        for w, block in enumerate(self.blocks):
            if results[w] is None:
                continue
            obs, env_infos = results[w]
            self._obs[block] = obs
            for j, i in enumerate(block):
                self._add_info(infos, env_infos[j], i)
        return self._obs.copy(), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = np.asarray(actions)

        def lost(w: int) -> tuple[Any, ...]:
            n = len(self.blocks[w])
            self.interrupted_steps += n
            obs = self._obs[self.blocks[w]].copy()
            infos = [{"worker_restart": True} for _ in range(n)]
            return obs, np.zeros(n), np.zeros(n, bool), np.ones(n, bool), infos

        results = self._each(lambda w: (_step, (self.key, actions[self.blocks[w]])), lost)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terms = np.zeros(self.num_envs, dtype=np.bool_)
        truncs = np.zeros(self.num_envs, dtype=np.bool_)
        infos: dict[str, Any] = {}
        for w, block in enumerate(self.blocks):
            obs, rew, term, trunc, env_infos = results[w]
            self._obs[block] = obs
            rewards[block], terms[block], truncs[block] = rew, term, trunc
            for j, i in enumerate(block):
                self._add_info(infos, env_infos[j], i)
        return self._obs.copy(), rewards, terms, truncs, infos

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        if name == "set_spec":
            self._spec_call = (args, kwargs)
        results = self._each(lambda w: (_call, (self.key, name, args, kwargs)))
        return tuple(v for r in results for v in r)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return self.call(name)

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"{len(values)} values for {self.num_envs} envs")
        self._attrs[name] = list(values)
        self._each(lambda w: (_set_attr, (self.key, name, [values[i] for i in self.blocks[w]])))

    def close_extras(self, **kwargs: Any) -> None:
        try:
            for w in range(len(self.blocks)):
                handle = self.backend.handles[w] if w < self.backend.num_workers else None
                if handle is not None and handle is self._handles[w]:
                    with contextlib.suppress(Exception):  # a dead worker holds nothing
                        handle.call(_close, self.key)
        finally:
            if self.own_backend:
                self.backend.close()

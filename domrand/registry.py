"""The env registry: ids, gymnasium registration, ``make``/``make_vec``, specs, realities."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from domrand.errors import DomrandError, SpecFileError, did_you_mean
from domrand.knobs import KnobSet

__all__ = [
    "EnvInfo",
    "all_knobs_for",
    "assets_dir",
    "check_seed",
    "default_spec_path",
    "env_ids",
    "is_registered",
    "knobs_for",
    "make",
    "make_vec",
    "realities",
    "reality_path",
    "register_variant",
    "same_family",
]


@dataclass(frozen=True)
class EnvInfo:
    """A domrand env: its id, entry point, episode limit and shipped assets' short name."""

    id: str
    entry_point: str
    max_episode_steps: int
    asset_name: str
    summary: str


ENVS: dict[str, EnvInfo] = {
    e.id: e
    for e in (
        EnvInfo(
            "domrand/CartPole-v0",
            "domrand.envs.cartpole:CartPoleEnv",
            500,
            "cartpole",
            "pybullet cart-pole, continuous force; balance the pole",
        ),
        EnvInfo(
            "domrand/KukaReach-v0",
            "domrand.envs.kuka_reach:KukaReachEnv",
            150,
            "kuka_reach",
            "KUKA iiwa, joint-space PD setpoint increments; reach a random target",
        ),
        EnvInfo(
            "domrand/Pusher-v0",
            "domrand.envs.pusher:PusherEnv",
            100,
            "pusher",
            "planar x-y pusher on a table; push a puck to a random goal",
        ),
        EnvInfo(
            "domrand/PusherPlace-v0",
            "domrand.envs.pusher:PusherPlaceEnv",
            100,
            "pusher",
            "Pusher-v0, but the puck must come to rest on the goal (< 5 cm/s) to succeed",
        ),
        EnvInfo(
            "domrand/PusherForce-v0",
            "domrand.envs.pusher:PusherForceEnv",
            100,
            "pusher_force",
            "Pusher-v0 with force-controlled gantry motors (no servo): the policy accelerates "
            "and brakes the tip",
        ),
        EnvInfo(
            "domrand/Localization-v0",
            "domrand.envs.localization:LocalizationEnv",
            2,  # episodes terminate after their one step; a limit of 1 would also truncate them
            "localization",
            "Tobin et al. 2017 table scene: the object's (x, y) from one randomized image",
        ),
    )
}
_BUILTIN = frozenset(ENVS)


def register_all() -> None:
    """Register every domrand env with gymnasium (idempotent)."""
    for e in ENVS.values():
        if e.id not in gym.registry:
            gym.register(id=e.id, entry_point=e.entry_point, max_episode_steps=e.max_episode_steps)


def register_variant(
    env_id: str, base_id: str, entry_point: str, kwargs: Mapping[str, Any], summary: str
) -> None:
    """Register a derived env (e.g. a wrapped ``base_id``) under ``env_id``; idempotent.

    The variant shares the base env's episode limit, shipped spec and realities; ``kwargs`` go to
    ``entry_point`` (with any ``make`` keyword arguments). It exists in this process only.
    """
    base = _info(base_id)
    if env_id not in ENVS:
        ENVS[env_id] = EnvInfo(
            env_id, entry_point, base.max_episode_steps, base.asset_name, summary
        )
    if env_id not in gym.registry:
        gym.register(
            id=env_id,
            entry_point=entry_point,
            max_episode_steps=base.max_episode_steps,
            kwargs=dict(kwargs),
        )


def env_ids() -> tuple[str, ...]:
    return tuple(ENVS)


def is_registered(env_id: str) -> bool:
    return env_id in ENVS


def _info(env_id: str) -> EnvInfo:
    if env_id not in ENVS:
        raise DomrandError(
            f"unknown env {env_id!r}{did_you_mean(env_id, ENVS)}; known: {', '.join(ENVS)}"
        )
    return ENVS[env_id]


def same_family(a: str, b: str) -> bool:
    """Whether two env ids share their shipped spec and realities (Pusher-v0 and PusherPlace-v0)."""
    return a in ENVS and b in ENVS and ENVS[a].asset_name == ENVS[b].asset_name


def knobs_for(env_id: str, **env_kwargs: Any) -> KnobSet:
    """The knob set an env built with ``env_kwargs`` exposes (built once per kwargs, cached).

    Visual knobs exist only when the env renders (``obs_mode="image"`` or
    ``render_mode="rgb_array"``); :func:`all_knobs_for` gives every knob the env can expose.
    """
    return _knobs_cached(env_id, tuple(sorted(env_kwargs.items())))


@functools.cache
def _knobs_cached(env_id: str, kwargs: tuple[tuple[str, Any], ...]) -> KnobSet:
    _info(env_id)
    register_all()
    env = gym.make(env_id, disable_env_checker=True, **dict(kwargs))
    try:
        return env.unwrapped.knobs  # type: ignore[attr-defined, no-any-return]
    finally:
        env.close()


def all_knobs_for(env_id: str) -> KnobSet:
    """Every knob ``env_id`` can expose: its state-mode knobs plus those it has when rendering.

    Spec files are validated against this set; binding to a particular env instance then checks
    that the env really has each knob (e.g. a visual knob needs a rendering env).
    """
    base = knobs_for(env_id)
    try:
        rendering = knobs_for(env_id, render_mode="rgb_array")
    except (TypeError, ValueError):  # an env that cannot render has no visual knobs
        return base
    extra = [rendering[n] for n in rendering if n not in base]
    return KnobSet.of([*base.values(), *extra]) if extra else base


def assets_dir() -> Path:
    """The shipped assets (URDFs, default specs, realities)."""
    return Path(str(resources.files("domrand.assets")))


def default_spec_path(env_id: str) -> Path:
    """The default training spec shipped for ``env_id``."""
    return assets_dir() / "specs" / f"{_info(env_id).asset_name}.yaml"


def realities(env_id: str) -> dict[str, Path]:
    """Named reality domain files shipped for ``env_id`` (name -> path)."""
    folder = assets_dir() / "realities" / _info(env_id).asset_name
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def reality_path(env_id: str, name: str) -> Path:
    table = realities(env_id)
    if name not in table:
        raise SpecFileError(
            f"no reality named {name!r}{did_you_mean(name, table)}",
            file=str(assets_dir() / "realities" / _info(env_id).asset_name),
            show_value=False,
            allowed=", ".join(table) or "none shipped",
        )
    return table[name]


def check_seed(seed: Any) -> None:
    """Reject a seed ``reset(seed=...)`` cannot use, up front instead of at the first reset.

    Raises:
        DomrandError: ``seed`` is not ``None`` or a non-negative Python ``int`` (gymnasium's rule).
    """
    ok = seed is None or (type(seed) is int and seed >= 0)
    if not ok:
        raise DomrandError(f"seed must be a non-negative integer or None, got {seed!r}")


def make(
    env_id: str,
    spec: Any = None,
    domain: Mapping[str, Any] | str | os.PathLike | None = None,
    seed: int | None = None,
    *,
    reality: str | None = None,
    **env_kwargs: Any,
) -> gym.Env:
    """Create a domrand env with randomization applied.

    Args:
        env_id: e.g. ``"domrand/CartPole-v0"`` (see ``domrand envs``).
        spec: a ``RandomizationSpec``, a spec file path or a dict; ``None`` keeps nominal values.
        domain: values pinned in every episode: a dict or a domain file (e.g. a reality).
        seed: seed of the first ``reset()``; same seed -> same domains and rollout.
        reality: name of a shipped reality (``domrand.realities(env_id)``), pinned like ``domain``.
        **env_kwargs: passed to the env constructor (e.g. ``render_mode="rgb_array"``).

    Returns:
        A ``DomainRandomization`` wrapper around the time-limited env.

    Raises:
        DomrandError: unknown env id or reality, a bad seed, or both ``domain`` and ``reality``.
        SpecError: the spec or domain file is invalid for this env.
    """
    from domrand.wrappers import DomainRandomization

    _info(env_id)
    check_seed(seed)
    register_all()
    if reality is not None:
        if domain is not None:
            raise DomrandError("give either domain= or reality=, not both")
        domain = reality_path(env_id, reality)
    env = gym.make(env_id, disable_env_checker=True, **env_kwargs)
    try:
        return DomainRandomization(env, spec=spec, domain=domain, seed=seed)
    except BaseException:
        env.close()
        raise


def make_vec(
    env_id: str,
    num_envs: int,
    spec: Any = None,
    seed: int | None = None,
    *,
    vectorization: str = "sync",
    domain: Mapping[str, Any] | str | os.PathLike | None = None,
    autoreset_mode: gym.vector.AutoresetMode = gym.vector.AutoresetMode.NEXT_STEP,
    backend: Any = None,
    **env_kwargs: Any,
) -> gym.vector.VectorEnv:
    """A vector of randomized envs with independent streams spawned from one root seed.

    Args:
        vectorization: ``"sync"`` (one process) or ``"async"`` (one subprocess per env); used
            when ``backend`` is not given.
        autoreset_mode: gymnasium's autoreset mode; the trainer uses ``DISABLED`` and resets ended
            envs itself, so a guide's new assignment applies to the very next episode.
        backend: run the envs on a rollout backend (``domrand.backends``): a started
            ``Backend``, a ``BackendConfig`` or a name (``"local"``, ``"subprocess"``,
            ``"ray"``). Env ``i`` gets the same seed stream whatever the backend and worker count.
    """
    if num_envs < 1:
        raise DomrandError(f"num_envs must be >= 1, got {num_envs}")
    if vectorization not in ("sync", "async"):
        raise DomrandError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
    check_seed(seed)
    # Validate once here so a bad spec fails before any worker starts.
    if spec is not None and not hasattr(spec, "sample"):
        from domrand.spec import load_spec

        spec = load_spec(spec, env=knobs_for(env_id, **env_kwargs))
    seeds: list[int | None]
    if seed is None:
        seeds = [None] * num_envs
    else:
        seeds = [
            int(s.generate_state(1, np.uint32)[0])
            for s in np.random.SeedSequence(seed).spawn(num_envs)
        ]
    if backend is not None:
        return _backend_vec(env_id, spec, domain, seeds, env_kwargs, autoreset_mode, backend)
    fns: list[Callable[[], gym.Env]] = [
        functools.partial(make, env_id, spec, domain, s, **env_kwargs) for s in seeds
    ]
    if vectorization == "async":
        return gym.vector.AsyncVectorEnv(
            fns, context="spawn" if os.name == "nt" else "fork", autoreset_mode=autoreset_mode
        )
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=autoreset_mode)


def _backend_vec(
    env_id: str,
    spec: Any,
    domain: Any,
    seeds: list[int | None],
    env_kwargs: Mapping[str, Any],
    autoreset_mode: gym.vector.AutoresetMode,
    backend: Any,
) -> gym.vector.VectorEnv:
    """``make_vec`` on a rollout backend (see ``domrand.backends.vector``)."""
    from domrand.backends import Backend, BackendConfig, BackendVectorEnv, EnvRecipe, open_backend

    variant = None
    if env_id not in _BUILTIN:  # a variant registered in this process: workers register it too
        info, reg = ENVS[env_id], gym.registry[env_id]
        base = next(b for b in _BUILTIN if ENVS[b].asset_name == info.asset_name)
        variant = (base, str(reg.entry_point), dict(reg.kwargs), info.summary)
    recipes = [EnvRecipe(env_id, spec, domain, s, dict(env_kwargs), variant) for s in seeds]
    own = not isinstance(backend, Backend)
    if own:
        backend = open_backend(backend if isinstance(backend, BackendConfig) else str(backend))
    try:
        return BackendVectorEnv(backend, recipes, autoreset_mode, own_backend=own)
    except BaseException:
        if own:
            backend.close()
        raise

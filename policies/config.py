"""``TrainConfig``: every setting of a training run, validated once, saved as ``config.yaml``.

A run's config is resolved from the defaults below, then a ``--config run.yaml`` file, then the
command-line flags; the result is written to ``RUN_DIR/config.yaml`` so the run can be resumed
and reproduced. Unknown keys get a did-you-mean, wrong types and ranges a one-line ``ConfigError``.
"""

from __future__ import annotations

import math
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from domrand.errors import ConfigError, did_you_mean

__all__ = ["TrainConfig", "load_config"]


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a recurrent-PPO run (defaults: a CartPole LSTM in about a minute on 2 cores).

    PPO defaults follow the mature implementations (algorithms.md section 8): gamma 0.99, GAE
    lambda 0.95, clip 0.2, 10 epochs, max grad norm 0.5, advantage normalization, orthogonal init.
    """

    env: str = "domrand/CartPole-v0"
    total_steps: int = 200_000  #: env steps (all envs together); rounded up to whole rollouts
    seed: int = 0
    # ---------------------------------------------------------------- envs
    num_envs: int = 8
    num_steps: int = 128  #: steps per env per rollout
    backend: str | None = None  #: "local", "subprocess" or "ray"; None: from vectorization
    workers: int = 0  #: backend workers; 0 = auto (a core per env at most; Ray: cluster CPUs)
    address: str | None = None  #: ray only: "auto", "HOST:PORT" or None (a local Ray)
    vectorization: str | None = None  #: deprecated: "sync" = local, "async" = a worker per env
    # ---------------------------------------------------------------- network
    policy: str = "lstm"  #: "lstm" or "mlp"
    hidden: int = 64
    layers: int = 2  #: MLP hidden layers
    rl2: bool = True  #: previous action and reward as inputs (RL^2)
    init_log_std: float = -0.5
    norm_obs: bool = True  #: running observation normalization, saved with the policy
    norm_reward: bool = True  #: scale rewards by the running std of the return (for GAE only)
    #: the critic also sees each episode's domain (asymmetric actor-critic, Peng et al. 2018's
    #: omniscient critic): the knobs the training spec draws per episode, as offsets from
    #: nominal (domrand.policies.privileged). The actor, evaluation and export are unchanged.
    privileged_critic: bool = False
    # ---------------------------------------------------------------- PPO
    learning_rate: float = 1e-3
    anneal_lr: bool = True  #: linear decay to 0 over total_steps
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_coef: float = 0.2
    epochs: int = 10
    batch_size: int = 256  #: env steps per minibatch
    seq_len: int = 32  #: length of the training sequences minibatches are made of
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    max_grad_norm: float = 0.5
    norm_adv: bool = True
    target_kl: float | None = None  #: stop the epochs early past this approximate KL
    # ---------------------------------------------------------------- run
    torch_threads: int = 0  #: 0 = one thread when acting, every core in the update
    checkpoint_every: int = 20_000  #: env steps between checkpoints (whole rollouts)
    keep_checkpoints: int = 3

    def __post_init__(self) -> None:
        _check_types(self)
        positive = ("total_steps", "num_envs", "num_steps", "hidden", "layers", "epochs")
        positive += ("batch_size", "seq_len", "checkpoint_every", "keep_checkpoints")
        for name in positive:
            if getattr(self, name) < 1:
                _bad(name, getattr(self, name), "an integer >= 1")
        if not 0 <= self.seed < 2**63:
            _bad("seed", self.seed, "an integer in [0, 2**63)")
        if self.torch_threads < 0:
            _bad("torch_threads", self.torch_threads, "0 (auto) or a positive integer")
        if self.vectorization not in (None, "sync", "async"):
            _bad("vectorization", self.vectorization, "null, 'sync' or 'async' (deprecated)")
        if self.backend not in (None, "local", "subprocess", "ray"):
            _bad("backend", self.backend, "'local', 'subprocess' or 'ray'")
        if self.workers < 0:
            _bad("workers", self.workers, "0 (auto) or a positive integer")
        if self.address is not None and self.resolved_backend != "ray":
            _bad("address", self.address, "null unless backend is 'ray'")
        if self.address is not None and not (
            self.address == "auto" or ":" in self.address.removeprefix("ray://")
        ):
            _bad("address", self.address, "'auto', HOST:PORT or ray://HOST:PORT")
        if self.policy not in ("lstm", "mlp"):
            _bad("policy", self.policy, "'lstm' or 'mlp'")
        for name in ("learning_rate", "clip_coef", "max_grad_norm"):
            if not 0 < getattr(self, name) < math.inf:
                _bad(name, getattr(self, name), "a finite number > 0")
        for name in ("gamma", "gae_lambda"):
            if not 0 <= getattr(self, name) <= 1:
                _bad(name, getattr(self, name), "a number in [0, 1]")
        for name in ("vf_coef", "ent_coef"):
            if not 0 <= getattr(self, name) < math.inf:
                _bad(name, getattr(self, name), "a finite number >= 0")
        if not math.isfinite(self.init_log_std):
            _bad("init_log_std", self.init_log_std, "a finite number")
        if self.target_kl is not None and not self.target_kl > 0:
            _bad("target_kl", self.target_kl, "null or a number > 0")

    @property
    def resolved_backend(self) -> str:
        """The rollout backend: ``backend``, else the deprecated ``vectorization`` mapped
        (``sync`` -> ``local``, ``async`` -> ``subprocess``), else ``subprocess``."""
        if self.backend is not None:
            return self.backend
        return "local" if self.vectorization == "sync" else "subprocess"

    def backend_config(self) -> Any:
        """The :class:`domrand.backends.BackendConfig` of this run."""
        from domrand.backends import BackendConfig

        workers = self.workers
        if not workers and self.backend is None and self.vectorization == "async":
            workers = self.num_envs  # the old meaning: one subprocess per env
        elif not workers and self.resolved_backend != "ray":
            workers = min(self.num_envs, os.cpu_count() or 1)  # no idle workers on big hosts
        return BackendConfig(self.resolved_backend, workers, self.address)

    @property
    def batch(self) -> int:
        """Env steps per rollout (``num_envs * num_steps``)."""
        return self.num_envs * self.num_steps

    @property
    def iterations(self) -> int:
        """Rollout/update iterations needed to reach ``total_steps``."""
        return -(-self.total_steps // self.batch)

    @property
    def checkpoint_iters(self) -> int:
        """Iterations between checkpoints (at least one)."""
        return max(1, round(self.checkpoint_every / self.batch))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated like a file: unknown keys are an error)."""
        _check_keys(changes, "<arguments>")
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], file: str = "<dict>") -> TrainConfig:
        _check_keys(d, file)
        try:
            return cls(**dict(d))
        except ConfigError as e:
            raise ConfigError(f"{file}: {e}") from None

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")


def _bad(name: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{name} must be {allowed}, got {value!r}")


def _check_keys(d: Mapping[str, Any], file: str) -> None:
    known = [f.name for f in fields(TrainConfig)]
    for key in d:
        if key not in known:
            raise ConfigError(f"{file}: unknown config key {key!r}{did_you_mean(str(key), known)}")


def _check_types(cfg: TrainConfig) -> None:
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(cfg):
        value, hint = getattr(cfg, f.name), hints[f.name]
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        ok = False
        for t in allowed:
            if t is type(None):
                ok = ok or value is None
            elif t is bool:
                ok = ok or isinstance(value, bool)
            elif t is int:
                ok = ok or (isinstance(value, int) and not isinstance(value, bool))
            elif t is float:
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    object.__setattr__(cfg, f.name, float(value))
                    ok = True
            elif t is str:
                ok = ok or isinstance(value, str)
        if not ok:
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise ConfigError(f"{f.name} must be {names}, got {value!r}")


def load_config(path: str | os.PathLike[str], base: TrainConfig | None = None) -> TrainConfig:
    """Read a run config file (YAML or JSON) over ``base`` (default: the defaults).

    Raises:
        ConfigError: unreadable or malformed file, unknown key, wrong type or value.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read config file ({e.__class__.__name__})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}: not valid YAML{where}") from None
    except (ValueError, TypeError, AttributeError, IndexError, RecursionError) as e:
        # values the YAML constructors cannot build (bad dates, '!!float abc', huge ints, deep
        # nesting) surface as plain Python errors from PyYAML
        raise ConfigError(f"{p}: a value cannot be read ({e.__class__.__name__})") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{p}: a config file must be a mapping of keys to values")
    _check_keys(doc, str(p))
    merged = {**(base or TrainConfig()).to_dict(), **doc}
    return TrainConfig.from_dict(merged, str(p))

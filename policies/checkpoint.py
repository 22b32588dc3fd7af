"""Checkpoints: atomic save, validated load, and loading a trained policy with its context.

A checkpoint is a ``torch.save`` of plain containers, numbers, strings and tensors only, so it
loads with ``torch.load(weights_only=True)`` (no pickled code runs on load). Its keys:

* ``format`` / ``format_version``: ``"domrand-checkpoint"`` / 1;
* ``run_info``: :class:`RunInfo` as a dict (env, net config, spec, control period, spaces, ...);
* ``model``: the actor-critic's ``state_dict`` (observation normalization included);
* ``optimizer``, ``rng`` (``{"torch": ByteTensor}``), ``guide``, ``trainer`` (counters), ``config``
  (the resolved ``TrainConfig``): what ``--resume`` needs to continue the run.

Run directory layout: ``RUN_DIR/checkpoints/step_<N>.pt`` (the last few kept).
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch

from domrand.errors import CheckpointError, ConfigError, StorageError
from domrand.fsutil import atomic_write_bytes, remove_temporaries
from domrand.policies.networks import ActorCritic, NetConfig, build_policy

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "RunInfo",
    "WarmStart",
    "checkpoint_path",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_policy",
    "read_warm_start",
    "save_checkpoint",
]

FORMAT = "domrand-checkpoint"
FORMAT_VERSION = 1
_NAME = re.compile(r"^step_(\d+)\.pt$")


@dataclass(frozen=True)
class RunInfo:
    """What a trained policy needs around it: env, architecture, spec, timing, spaces."""

    env_id: str
    net_config: NetConfig
    spec: dict[str, Any] | None  #: the training spec's ``to_dict()`` (None: nominal dynamics)
    control_period: float  #: seconds per control step of the env
    obs_low: list[float]
    obs_high: list[float]
    act_low: list[float]
    act_high: list[float]
    env_steps: int
    seed: int
    domrand_version: str
    iteration: int = 0
    config: dict[str, Any] = field(default_factory=dict)  #: the resolved ``TrainConfig``

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["net_config"] = self.net_config.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Any, source: str = "<checkpoint>") -> RunInfo:
        if not isinstance(d, dict):
            raise CheckpointError(f"{source}: run_info is missing or not a mapping")
        try:
            d = dict(d)
            d["net_config"] = NetConfig.from_dict(d["net_config"])
            info = cls(**d)
        except (KeyError, TypeError, ConfigError) as e:
            raise CheckpointError(f"{source}: run_info is incomplete or malformed ({e})") from None
        for name, ok in _FIELD_CHECKS.items():
            value = getattr(info, name)
            if not ok(value):
                raise CheckpointError(f"{source}: run_info.{name} is malformed ({value!r:.80})")
        return info


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


#: A tampered or foreign checkpoint must fail here, not as a TypeError deep in export or eval.
_FIELD_CHECKS: dict[str, Any] = {
    "env_id": lambda x: isinstance(x, str),
    "spec": lambda x: x is None or isinstance(x, dict),
    "control_period": lambda x: _is_number(x) and 0 < x < math.inf,
    "obs_low": lambda x: isinstance(x, list) and all(map(_is_number, x)),
    "obs_high": lambda x: isinstance(x, list) and all(map(_is_number, x)),
    "act_low": lambda x: isinstance(x, list) and all(map(_is_number, x)),
    "act_high": lambda x: isinstance(x, list) and all(map(_is_number, x)),
    "env_steps": _is_count,
    "seed": _is_count,
    "domrand_version": lambda x: isinstance(x, str),
    "iteration": _is_count,
    "config": lambda x: isinstance(x, dict),
}


# ---------------------------------------------------------------------- files
def checkpoint_path(run_dir: str | os.PathLike[str], env_steps: int) -> Path:
    """``RUN_DIR/checkpoints/step_<env_steps>.pt``; only a non-negative int makes the name.

    ``env_steps`` may come from a loaded (possibly tampered) checkpoint: a string such as
    ``"../../x"`` must never turn into a path outside the run directory.
    """
    if isinstance(env_steps, bool) or not isinstance(env_steps, int) or env_steps < 0:
        raise CheckpointError(f"checkpoint step must be an integer >= 0, got {env_steps!r}")
    return Path(run_dir) / "checkpoints" / f"step_{env_steps}.pt"


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """The run's checkpoints, oldest first (temporary files of an interrupted save excluded)."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint of ``run_dir`` (highest step), or ``None``."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically: a temporary file in the same folder, fsync, then rename.

    A reader (or a resume after ``kill -9``) sees either the previous file or the complete new
    one, never a partial write.

    Raises:
        StorageError: the write failed (e.g. the disk is full); the message names the newest
            checkpoint still on disk, which is intact.
    """
    path = Path(path)
    buf = io.BytesIO()
    torch.save(payload, buf)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except StorageError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        previous = (
            latest_checkpoint(path.parent.parent) if path.parent.name == "checkpoints" else None
        )
        keep = (
            f"the last checkpoint {str(previous)!r} is intact and --resume continues from it"
            if previous is not None
            else "no earlier checkpoint exists"
        )
        raise StorageError(
            f"cannot write checkpoint {str(path)!r}: {reason}; {keep}", e.errno
        ) from None
    return path


def remove_stale_temporaries(run_dir: str | os.PathLike[str]) -> None:
    """Delete temporary files killed writes left behind (checkpoints, metrics, configs)."""
    if Path(run_dir).is_dir():
        remove_temporaries(run_dir)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load and validate a checkpoint file.

    Raises:
        CheckpointError: (one line) the file is missing, unreadable, corrupt or truncated, not a
            domrand checkpoint, or of a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged file; all mean the same
        if "Unsupported global" in str(e):
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds pickled objects a weights-only load refuses "
                "(not written by domrand, or tampered with)"
            ) from None
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupt or truncated ({type(e).__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a domrand checkpoint")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {version!r}; this domrand reads "
            f"versions up to {FORMAT_VERSION} (upgrade domrand)"
        )
    for key in ("run_info", "model"):
        if key not in payload:
            raise CheckpointError(f"checkpoint {str(path)!r} has no {key!r} entry")
    return payload


def resolve_checkpoint(run_dir_or_checkpoint: str | os.PathLike[str]) -> Path:
    """A checkpoint file itself, or the latest checkpoint of a run directory."""
    p = Path(run_dir_or_checkpoint)
    if p.is_dir():
        latest = latest_checkpoint(p)
        if latest is None and p.name == "checkpoints":
            latest = latest_checkpoint(p.parent)
        if latest is None:
            raise CheckpointError(f"no checkpoint in {str(p)!r} (expected checkpoints/step_N.pt)")
        return latest
    if not p.exists():
        raise CheckpointError(f"{str(p)!r} is neither a run directory nor a checkpoint file")
    return p


def policy_from_payload(payload: dict[str, Any], source: str) -> tuple[ActorCritic, RunInfo]:
    """Build the policy a loaded checkpoint describes and load its weights."""
    info = RunInfo.from_dict(payload["run_info"], source)
    policy = build_policy(info.net_config)
    try:
        policy.load_state_dict(payload["model"])
    except (RuntimeError, TypeError, AttributeError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise CheckpointError(
            f"checkpoint {source!r}: weights do not match its network config ({first})"
        ) from None
    return policy.eval(), info


class WarmStart(NamedTuple):
    """A warm start's checkpoint, read once: where it is, its run info and its weights."""

    path: str
    info: RunInfo
    model: dict[str, Any]

    def weights_for(self, net: NetConfig) -> dict[str, Any]:
        """The weights, for a new run's network ``net``.

        Raises:
            CheckpointError: the checkpoint holds another network.
        """
        if self.info.net_config != net:
            raise CheckpointError(
                f"cannot warm-start from {self.path!r}: it holds another network "
                f"({self.info.net_config})"
            )
        return self.model


def read_warm_start(source: str | os.PathLike[str]) -> WarmStart:
    """The checkpoint ``source`` (a run directory or a file) a new run starts from."""
    path = resolve_checkpoint(source)
    payload = load_checkpoint(path)
    return WarmStart(str(path), RunInfo.from_dict(payload["run_info"], str(path)), payload["model"])


def load_policy(run_dir_or_checkpoint: str | os.PathLike[str]) -> tuple[ActorCritic, RunInfo]:
    """Load a trained policy (in eval mode) and its :class:`RunInfo`.

    Args:
        run_dir_or_checkpoint: a run directory (its latest checkpoint is used) or a ``.pt`` file.

    Raises:
        CheckpointError: no checkpoint there, or it is corrupt, foreign or mismatched.
    """
    path = resolve_checkpoint(run_dir_or_checkpoint)
    return policy_from_payload(load_checkpoint(path), str(path))

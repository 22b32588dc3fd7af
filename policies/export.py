"""Export a trained actor-critic for hardware: ONNX (for ``deploy.py``) or TorchScript (libtorch).

An export is **one time step** of the policy (``ActorCritic.step``) with the recurrent state as
explicit inputs and outputs, so any runtime can drive it at the robot's control rate:

====================  ==================  =======================================================
name                  shape               present when / meaning
====================  ==================  =======================================================
``obs``               ``[B, obs_dim]``    always: the raw observation (normalized in the graph)
``prev_action``       ``[B, act_dim]``    RL^2: the action applied at the previous step
``prev_reward``       ``[B]``             RL^2: the raw env reward of the previous step
``h``, ``c``          ``[1, B, hidden]``  LSTM: the state, i.e. the previous ``h_out``, ``c_out``
``episode_start``     ``[B]``             LSTM or RL^2: 1.0 at an episode's first step, else 0.0
``action``            ``[B, act_dim]``    always: the Gaussian mean clipped to the action bounds
``value``             ``[B]``             always: the critic's estimate (from the history alone)
``h_out``, ``c_out``  ``[1, B, hidden]``  LSTM: the next state
====================  ==================  =======================================================

``episode_start`` does inside the graph what it does in training: it zeroes the LSTM state and
the RL^2 inputs (the network maps the previous action to half-range units *before* zeroing, so
"pass zeros at a start" would not be the same thing for asymmetric bounds). A runtime therefore
passes 1.0 at the first step of an episode, and anything (e.g. zeros) as the state and previous
action/reward then. Inputs a policy does not use are left out of the graph (no zero-size
tensors, no dangling inputs: some runtimes reject both); the metadata's ``inputs``/``outputs``
list the names in order. ``B`` is a dynamic axis. The observation normalization is baked into
the graph *and* written to the metadata.

The ONNX graph is built by ``onnx_graph.py`` (see there why it is built by hand); every export
(ONNX and TorchScript) is checked against the torch policy on random inputs, episode starts
included, before the file is written.

Metadata (JSON, ``format_version`` 1; in ONNX ``metadata_props["domrand"]``, in TorchScript the
extra file ``domrand.json``): ``format``, ``format_version``, ``artifact``, ``domrand_version``,
``env_id``, ``control_period`` (s), ``observation_space`` / ``action_space`` (``shape``,
``dtype``, ``low``, ``high``; unbounded limits as the strings ``"inf"``/``"-inf"``, since JSON
has no infinity), ``normalization`` (``mean``, ``var``, ``count``, ``eps``, ``clip``,
``formula``), ``net`` (the ``NetConfig``), ``inputs``, ``outputs``, ``io`` (shape and meaning of
each), ``action`` (how it is computed), ``spec`` (the training spec), ``training`` (env steps,
seed, iteration, domrand version and resolved config of the run).

Files are written atomically (a temporary file in the same folder, then ``os.replace``) and are
byte-identical for the same policy (no timestamps).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from domrand import __version__
from domrand.errors import CheckpointError
from domrand.fsutil import atomic_write_bytes
from domrand.policies.deploy import (
    ACTION,
    C_IN,
    C_OUT,
    EPISODE_START,
    FORMAT,
    FORMAT_VERSION,
    H_IN,
    H_OUT,
    METADATA_KEY,
    OBS,
    PREV_ACTION,
    PREV_REWARD,
    VALUE,
    parse_metadata,
)
from domrand.policies.networks import ActorCritic, LSTMState, NetConfig
from domrand.policies.onnx_graph import ONNX_IR_VERSION, ONNX_OPSET, onnx_model

__all__ = [
    "ONNX_IR_VERSION",
    "ONNX_OPSET",
    "RunInfoLike",
    "build_metadata",
    "export_onnx",
    "export_torchscript",
    "read_torchscript_metadata",
]

TORCHSCRIPT_EXTRA = f"{METADATA_KEY}.json"
VERIFY_TOL = 1e-5


class RunInfoLike(Protocol):
    """What the exporter reads about a run (``checkpoint.RunInfo`` provides it; read-only)."""

    @property
    def env_id(self) -> str: ...
    @property
    def net_config(self) -> NetConfig: ...
    @property
    def spec(self) -> dict[str, Any] | None: ...
    @property
    def control_period(self) -> float: ...
    @property
    def obs_low(self) -> Sequence[float]: ...
    @property
    def obs_high(self) -> Sequence[float]: ...
    @property
    def act_low(self) -> Sequence[float]: ...
    @property
    def act_high(self) -> Sequence[float]: ...
    @property
    def env_steps(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def domrand_version(self) -> str: ...


# ---------------------------------------------------------------------- metadata
def _json_bound(x: float) -> float | str:
    return ("inf" if x > 0 else "-inf") if math.isinf(x) else float(x)


def _jsonable(x: Any, where: str) -> Any:
    """A strict-JSON copy of ``x`` (non-finite floats as strings), or ``CheckpointError``."""
    if x is None or isinstance(x, (bool, str, int)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if isinstance(x, (np.generic,)):
        return _jsonable(x.item(), where)
    if isinstance(x, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(x)]
    raise CheckpointError(f"{where}: cannot store a {type(x).__name__} in export metadata")


def _bounds(low: Any, high: Any, n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if lo.shape != (n,) or hi.shape != (n,):
        raise CheckpointError(
            f"{what} bounds have shapes {lo.shape} and {hi.shape}, the policy expects ({n},)"
        )
    if np.isnan(lo).any() or np.isnan(hi).any() or (lo > hi).any():
        raise CheckpointError(f"{what} bounds must be numbers with low <= high: {lo}, {hi}")
    return lo, hi


def _io_table(cfg: NetConfig) -> tuple[list[str], list[str], dict[str, Any]]:
    b, hid = "batch", cfg.hidden
    table: dict[str, Any] = {
        OBS: ([b, cfg.obs_dim], "raw observation; normalized inside the graph"),
        PREV_ACTION: ([b, cfg.act_dim], "RL^2: the action applied at the previous step"),
        PREV_REWARD: ([b], "RL^2: the raw env reward of the previous step"),
        H_IN: ([1, b, hid], "LSTM hidden state: the last h_out (masked at an episode start)"),
        C_IN: ([1, b, hid], "LSTM cell state: the last c_out (masked at an episode start)"),
        EPISODE_START: ([b], "1.0 at the first step of an episode, else 0.0"),
        ACTION: ([b, cfg.act_dim], "deterministic action: Gaussian mean clipped to the bounds"),
        VALUE: ([b], "critic value estimate"),
        H_OUT: ([1, b, hid], "next LSTM hidden state"),
        C_OUT: ([1, b, hid], "next LSTM cell state"),
    }
    recurrent = cfg.kind == "lstm"
    inputs = [OBS]
    inputs += [PREV_ACTION, PREV_REWARD] if cfg.rl2 else []
    inputs += [H_IN, C_IN] if recurrent else []
    inputs += [EPISODE_START] if recurrent or cfg.rl2 else []  # a policy with memory
    outputs = [ACTION, VALUE] + ([H_OUT, C_OUT] if recurrent else [])
    io_doc = {
        n: {"shape": table[n][0], "dtype": "float32", "doc": table[n][1]} for n in inputs + outputs
    }
    return inputs, outputs, io_doc


def build_metadata(policy: ActorCritic, info: RunInfoLike, artifact: str) -> dict[str, Any]:
    """The metadata dict of an export (validated by ``deploy.parse_metadata`` round trip)."""
    cfg = policy.config
    if info.net_config != cfg:
        raise CheckpointError(
            f"the run's net config {info.net_config} does not match the policy's {cfg}"
        )
    period = float(info.control_period)
    if not math.isfinite(period) or period <= 0:
        raise CheckpointError(f"control_period must be > 0 s, got {info.control_period!r}")
    spaces = {}
    for key, (low, high, n) in {
        "observation_space": (info.obs_low, info.obs_high, cfg.obs_dim),
        "action_space": (info.act_low, info.act_high, cfg.act_dim),
    }.items():
        lo, hi = _bounds(low, high, n, key.split("_")[0])
        if key == "action_space" and cfg.act_low is not None and cfg.act_high is not None:
            same = np.array_equal(lo.astype(np.float32), np.float32(cfg.act_low)) and (
                np.array_equal(hi.astype(np.float32), np.float32(cfg.act_high))
            )
            if not same:
                raise CheckpointError(
                    f"the run's action bounds {lo.tolist()}, {hi.tolist()} differ from the "
                    f"policy's {list(cfg.act_low)}, {list(cfg.act_high)}"
                )
        spaces[key] = {
            "shape": [n],
            "dtype": "float32",
            "low": [_json_bound(v) for v in lo],
            "high": [_json_bound(v) for v in hi],
        }
    norm = policy.obs_norm
    inputs, outputs, io_doc = _io_table(cfg)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "artifact": artifact,
        "domrand_version": __version__,
        "env_id": str(info.env_id),
        "control_period": period,
        **spaces,
        "normalization": {
            "mean": norm.mean.tolist(),
            "var": norm.var.tolist(),
            "count": float(norm.count),
            "eps": float(norm.eps),
            "clip": float(norm.clip),
            "formula": "clip((obs - mean) / sqrt(var + eps), -clip, clip), in the graph",
        },
        "net": cfg.to_dict(),
        "inputs": inputs,
        "outputs": outputs,
        "io": io_doc,
        "action": "mean of the Gaussian head, clipped to action_space [low, high]",
        "spec": info.spec,
        "training": {
            "env_steps": int(info.env_steps),
            "seed": int(info.seed),
            "domrand_version": str(info.domrand_version),
            "iteration": getattr(info, "iteration", None),
            "config": getattr(info, "config", None),  # the resolved TrainConfig, if known
        },
    }
    meta = _jsonable(meta, "metadata")
    parse_metadata(_dumps(meta))  # the runtime must accept what we write
    return meta


def _dumps(meta: dict[str, Any]) -> str:
    return json.dumps(meta, allow_nan=False, sort_keys=False)


# ---------------------------------------------------------------------- verification
def _reference_steps(
    policy: ActorCritic, meta: dict[str, Any], steps: int, batch: int, seed: int
) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]:
    """Random inputs driven through the torch policy: (feeds, action, value) per step.

    Observations are drawn around the normalization statistics (every fifth step far outside,
    to exercise the clip); episodes start at step 0 and at random later steps; RL^2 inputs are
    the previous action plus noise (exercising their clip) and random rewards.
    """
    cfg = policy.config
    rng = np.random.default_rng(seed)
    lo = torch.tensor([float(v) for v in meta["action_space"]["low"]])
    hi = torch.tensor([float(v) for v in meta["action_space"]["high"]])
    mean, std = policy.obs_norm.mean.numpy(), np.sqrt(policy.obs_norm.var.numpy())
    state = policy.initial_state(batch)
    prev_a, prev_r = torch.zeros(batch, cfg.act_dim), torch.zeros(batch)
    with torch.no_grad():
        for t in range(steps):
            scale = 30.0 if t % 5 == 4 else 2.0
            obs_np = mean + scale * std * rng.standard_normal((batch, cfg.obs_dim))
            obs = torch.as_tensor(obs_np, dtype=torch.float32)
            start = torch.ones(batch) if t == 0 else torch.as_tensor(rng.random(batch) < 0.2)
            start = start.to(torch.float32)
            feeds = {OBS: obs, PREV_ACTION: prev_a, PREV_REWARD: prev_r, EPISODE_START: start}
            feeds |= {H_IN: state.h, C_IN: state.c}
            mu, value, state = policy.step(obs, prev_a, prev_r, state, start)
            action = torch.minimum(torch.maximum(mu, lo), hi)
            yield (
                {k: feeds[k].numpy().copy() for k in meta["inputs"]},
                action.numpy(),
                value.numpy(),
            )
            prev_a = action + torch.as_tensor(rng.normal(0, 0.5, action.shape), dtype=torch.float32)
            prev_r = torch.as_tensor(rng.standard_normal(batch), dtype=torch.float32)


_StepResult = tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]  # action, value, next state


def _step_result(outputs: dict[str, np.ndarray]) -> _StepResult:
    """An exported step's outputs as (action, value, the state inputs of the next step)."""
    state = {H_IN: outputs[H_OUT], C_IN: outputs[C_OUT]} if H_OUT in outputs else {}
    return outputs[ACTION], outputs[VALUE], state


def _verify(
    run: Callable[[dict[str, np.ndarray]], _StepResult],
    policy: ActorCritic,
    meta: dict[str, Any],
    artifact: str,
) -> None:
    """Drive ``run`` (the exported step) with its own state; compare with the torch policy."""
    state: dict[str, np.ndarray] = {}
    worst = 0.0
    for feeds, action, value in _reference_steps(policy, meta, steps=12, batch=3, seed=0):
        feeds |= state  # the exported graph runs on its own recurrent state, not torch's
        got_a, got_v, state = run(feeds)
        worst = max(worst, float(np.abs(got_a - action).max()), float(np.abs(got_v - value).max()))
    if not worst <= VERIFY_TOL:
        raise CheckpointError(
            f"the exported {artifact} policy differs from the torch policy by {worst:.3g} "
            f"(> {VERIFY_TOL}); the network has changed in a way the exporter does not know"
        )


# ---------------------------------------------------------------------- writers
def _atomic_write(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as e:  # a parent is a file, the output is a directory, the disk is full...
        raise CheckpointError(f"cannot write {path}: {e.strerror or e}") from None


def _prepare(policy: ActorCritic) -> ActorCritic:
    if not isinstance(policy, ActorCritic):
        raise CheckpointError(f"expected an ActorCritic, got {type(policy).__name__}")
    return copy.deepcopy(policy).cpu().eval().requires_grad_(False)


def export_onnx(
    policy: ActorCritic, info: RunInfoLike, path: str | os.PathLike[str], *, verify: bool = True
) -> Path:
    """Write ``policy`` as an ONNX graph of one step plus metadata; return the path.

    Raises:
        CheckpointError: the policy does not match ``info``, has a layer the builder does not
            know, or (``verify``) the graph does not reproduce the torch policy within 1e-5.
    """
    import onnxruntime as ort

    policy = _prepare(policy)
    meta = build_metadata(policy, info, "onnx")
    data = onnx_model(policy, meta).SerializeToString()
    if verify:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        outs = meta["outputs"]

        def run(feeds: dict[str, np.ndarray]) -> _StepResult:
            return _step_result(dict(zip(outs, session.run(outs, feeds))))

        _verify(run, policy, meta, "ONNX")
    out = Path(path)
    _atomic_write(out, data)
    return out


class _TorchStep(nn.Module):
    """``forward(*inputs)`` in the order of ``meta["inputs"]`` -> outputs of ``meta["outputs"]``.

    It calls ``ActorCritic.step`` itself, so TorchScript computes exactly what training did.
    """

    def __init__(
        self, policy: ActorCritic, inputs: list[str], act_low: np.ndarray, act_high: np.ndarray
    ) -> None:
        super().__init__()
        self.policy = policy
        self.inputs = list(inputs)
        self.register_buffer("act_low_", torch.as_tensor(act_low, dtype=torch.float32))
        self.register_buffer("act_high_", torch.as_tensor(act_high, dtype=torch.float32))

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cfg = self.policy.config
        x = dict(zip(self.inputs, inputs))
        obs = x[OBS]
        batch = obs.shape[0]
        zeros = obs.new_zeros(batch)
        # Inputs the network does not use are absent; stand-ins shaped like the real thing.
        prev_a = x.get(PREV_ACTION, obs.new_zeros(batch, cfg.act_dim))
        prev_r = x.get(PREV_REWARD, zeros)
        start = x.get(EPISODE_START, zeros)
        recurrent = cfg.kind == "lstm"
        state = LSTMState(x[H_IN], x[C_IN]) if recurrent else self.policy.initial_state(1)
        mean, value, state = self.policy.step(obs, prev_a, prev_r, state, start)
        action = torch.minimum(torch.maximum(mean, self.act_low_), self.act_high_)
        return (action, value, state.h, state.c) if recurrent else (action, value)


def export_torchscript(
    policy: ActorCritic, info: RunInfoLike, path: str | os.PathLike[str], *, verify: bool = True
) -> Path:
    """Write ``policy`` as a traced TorchScript module of one step (for libtorch); return the path.

    ``forward`` takes the inputs listed in the metadata's ``inputs`` positionally and returns a
    tuple in the order of ``outputs``. The metadata is the archive's extra file
    ``domrand.json`` (``read_torchscript_metadata`` reads it without torch).

    A TorchScript archive holds a program that ``torch.jit.load`` compiles: load only files
    you trust. For untrusted artifacts use ONNX, which is data only.
    """
    policy = _prepare(policy)
    meta = build_metadata(policy, info, "torchscript")
    lo = np.array([float(v) for v in meta["action_space"]["low"]], np.float32)
    hi = np.array([float(v) for v in meta["action_space"]["high"]], np.float32)
    step = _TorchStep(policy, meta["inputs"], lo, hi).eval()
    feeds, _, _ = next(_reference_steps(policy, meta, steps=1, batch=1, seed=0))
    example = tuple(torch.from_numpy(feeds[n]) for n in meta["inputs"])
    with _quiet_torch_jit(), torch.no_grad():
        traced = torch.jit.trace(step, example, check_trace=False, _store_inputs=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf, _extra_files={TORCHSCRIPT_EXTRA: _dumps(meta)})
    data = buf.getvalue()
    if verify:
        with _quiet_torch_jit():
            loaded = torch.jit.load(io.BytesIO(data))
        outs = meta["outputs"]

        def run(feeds: dict[str, np.ndarray]) -> _StepResult:
            with torch.no_grad():
                res = loaded(*(torch.from_numpy(feeds[n]) for n in meta["inputs"]))
            return _step_result(dict(zip(outs, (t.numpy() for t in res))))

        _verify(run, policy, meta, "TorchScript")
    out = Path(path)
    _atomic_write(out, data)
    return out


@contextlib.contextmanager
def _quiet_torch_jit() -> Iterator[None]:
    """torch.jit is deprecated upstream and warns while tracing nn.LSTM's shape checks."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


def read_torchscript_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a TorchScript export, read from the zip archive (no torch, no code run)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith(f"/extra/{TORCHSCRIPT_EXTRA}")]
            if not names:
                raise CheckpointError(f"{path}: a TorchScript archive without domrand metadata")
            text = z.read(names[0])
    except (OSError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{path}: not a TorchScript archive ({e})") from None
    return parse_metadata(text)

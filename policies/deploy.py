"""Deploy runtime for exported domrand policies: numpy + onnxruntime only, one file.

This module imports nothing but the standard library, numpy and onnxruntime (no torch, pybullet
or gymnasium), so it runs on a robot's computer. It is also self-contained: copy this one file
next to the robot code (e.g. as ``domrand_deploy.py``) when domrand itself is not installed there.

Usage::

    policy = load_exported("policy.onnx")   # written by `domrand export RUN_DIR -o policy.onnx`
    policy.reset()                          # at the start of every episode / run on the robot
    while running:
        action = policy.act(robot.read_observation())
        robot.send_action(action)           # every policy.control_period seconds

The policy keeps its recurrent state (LSTM ``h``/``c``) and, for RL^2 policies, the previous
action (the one ``act`` returned) and reward between calls. ``reset()`` starts an episode: the
next step runs with ``episode_start = 1``, which makes the graph zero the state and the RL^2
inputs exactly as training did. RL^2 policies (``policy.rl2``) need the reward of the previous
step on every call but the first: ``act(obs, reward=r)``, where ``r`` is the raw (unscaled)
reward the training env would have returned together with ``obs``. If the robot applies a
different action than the one returned (a safety limiter...), the policy does not know it.

One ``act()`` of an LSTM-256 policy takes ~70 us on one core (``benchmarks/deploy_latency.py``).

Safe loading: an ``.onnx`` file is data (a protobuf graph of standard operators), never code.
``load_exported`` reads the file into memory and builds the session from the bytes, with ONNX
"external data" resolved in an empty private folder (onnxruntime would otherwise look in the
current directory), so no other file is read; it registers no custom-operator libraries and
parses the metadata with ``json``: loading an untrusted artifact cannot execute code.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any

import numpy as np
import onnxruntime as ort

try:  # inside the domrand package: a DomrandError, so the CLI prints it as one line
    from domrand.errors import CheckpointError as _ErrorBase
except ImportError:  # copied to the robot as a single file
    _ErrorBase = ValueError  # type: ignore[assignment,misc]

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_KEY",
    "ExportedPolicy",
    "ExportedPolicyError",
    "load_exported",
    "parse_metadata",
]

FORMAT = "domrand-policy"  #: the ``format`` field of the metadata
FORMAT_VERSION = 1  #: newest metadata/graph layout this runtime reads (bumped on breaking change)
METADATA_KEY = "domrand"  #: ONNX ``metadata_props`` key / TorchScript extra file stem

# Graph input and output names (the exporter and this runtime share them).
OBS, PREV_ACTION, PREV_REWARD, H_IN, C_IN = "obs", "prev_action", "prev_reward", "h", "c"
EPISODE_START = "episode_start"
ACTION, VALUE, H_OUT, C_OUT = "action", "value", "h_out", "c_out"

_MAX_FILE_BYTES = 1 << 31  # protobuf's hard limit; a larger file is not a policy we wrote
#: Where onnxruntime looks for the external data of a model built from bytes (recent versions;
#: older ones refuse external data from bytes altogether).
_EXTERNAL_DATA_FOLDER = "session.model_external_initializers_file_folder_path"


class ExportedPolicyError(_ErrorBase):  # type: ignore[valid-type,misc]
    """The file is not a domrand export, is corrupt or too new, or ``act`` got a bad input."""


# ---------------------------------------------------------------------- metadata
def _bound(x: Any, where: str) -> float:
    """JSON has no infinity: the exporter writes unbounded limits as the strings "inf"/"-inf"."""
    if isinstance(x, str) and x in ("inf", "-inf"):
        return float(x)
    if isinstance(x, (int, float)) and not isinstance(x, bool) and not math.isnan(x):
        return float(x)
    raise ExportedPolicyError(f"metadata: {where} must be a number, 'inf' or '-inf', got {x!r}")


def _get(d: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise ExportedPolicyError(f"metadata: missing key {where}{key!r}")
    value = d[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ExportedPolicyError(f"metadata: {where}{key} has the wrong type ({value!r})")
    return value


def _space(meta: dict[str, Any], key: str) -> tuple[int, np.ndarray, np.ndarray]:
    space = _get(meta, key, dict, "")
    shape = _get(space, "shape", list, f"{key}.")
    if len(shape) != 1 or not isinstance(shape[0], int) or shape[0] < 1:
        raise ExportedPolicyError(f"metadata: {key}.shape must be [n] with n >= 1, got {shape}")
    n = shape[0]
    bounds = []
    for side in ("low", "high"):
        values = _get(space, side, list, f"{key}.")
        if len(values) != n:
            raise ExportedPolicyError(f"metadata: {key}.{side} has {len(values)} values, not {n}")
        bounds.append(np.array([_bound(v, f"{key}.{side}") for v in values], dtype=np.float32))
    return n, bounds[0], bounds[1]


def parse_metadata(text: str | bytes) -> dict[str, Any]:
    """Parse and validate the metadata JSON of an export; raise ``ExportedPolicyError`` if bad.

    Returns the metadata as a dict (the exporter documents every key in ``policies/export.py``).
    """
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise ExportedPolicyError(f"metadata is not valid JSON ({type(e).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ExportedPolicyError(f"metadata does not describe a {FORMAT!r} export")
    version = _get(meta, "format_version", int, "")
    if version > FORMAT_VERSION:
        raise ExportedPolicyError(
            f"exported with format version {version}, but this runtime reads versions up to "
            f"{FORMAT_VERSION}: update domrand (or the copied deploy.py) on this machine"
        )
    if version < 1:
        raise ExportedPolicyError(f"metadata: format_version must be >= 1, got {version}")
    _space(meta, "observation_space")
    _space(meta, "action_space")
    period = _get(meta, "control_period", (int, float), "")
    if not math.isfinite(period) or period <= 0:
        raise ExportedPolicyError(f"metadata: control_period must be > 0 s, got {period!r}")
    net = _get(meta, "net", dict, "")
    if _get(net, "kind", str, "net.") not in ("lstm", "mlp"):
        raise ExportedPolicyError(f"metadata: unknown net.kind {net['kind']!r}")
    _get(net, "hidden", int, "net.")
    _get(net, "rl2", bool, "net.")
    for key in ("inputs", "outputs"):
        names = _get(meta, key, list, "")
        if not all(isinstance(n, str) for n in names):
            raise ExportedPolicyError(f"metadata: {key} must be a list of names, got {names!r}")
    return meta


# ---------------------------------------------------------------------- runtime
class ExportedPolicy:
    """One robot's policy: keeps the recurrent state and previous action/reward between calls.

    Attributes:
        metadata: the export's metadata (spaces, normalization, spec, versions...).
        control_period: seconds between two ``act`` calls the policy was trained for.
        obs_dim, act_dim: observation and action sizes.
        action_low, action_high: the action bounds the output is clipped to.
        recurrent: the policy has an LSTM state (``reset`` matters).
        rl2: the policy takes the previous action and reward as inputs (pass ``reward=``).
        last_value: the critic's value estimate from the last ``act`` (for monitoring).
    """

    def __init__(self, session: ort.InferenceSession, metadata: dict[str, Any]) -> None:
        self._session = session
        self.metadata = metadata
        self.control_period = float(metadata["control_period"])
        self.obs_dim, self.obs_low, self.obs_high = _space(metadata, "observation_space")
        self.act_dim, self.action_low, self.action_high = _space(metadata, "action_space")
        net = metadata["net"]
        self.recurrent = net["kind"] == "lstm"
        self.rl2 = bool(net["rl2"])
        hidden = int(net["hidden"])
        self._check_signature(metadata, hidden)

        # Preallocated buffers, bound once to the session (IOBinding: no per-call allocation).
        # Two bindings alternate ("ping-pong"): the state and action written by one step are the
        # inputs of the next, so nothing is copied between steps.
        f32 = np.float32
        self._obs = np.zeros((1, self.obs_dim), f32)
        self._start = np.ones((1,), f32)  # 1.0 until the first act() after a reset
        self._reward = np.zeros((1,), f32)
        self._value = np.zeros((1,), f32)
        actions = [np.zeros((1, self.act_dim), f32) for _ in range(2)]
        hs = [np.zeros((1, 1, hidden), f32) for _ in range(2)] if self.recurrent else []
        cs = [np.zeros((1, 1, hidden), f32) for _ in range(2)] if self.recurrent else []
        self._zeroable = [self._reward, self._value, *actions, *hs, *cs]
        self._actions = actions
        self._bindings = []
        self._keep_alive: list[Any] = []  # OrtValues must outlive the bindings that use them
        for i in range(2):
            j = 1 - i  # binding i reads buffers j and writes buffers i
            feeds = {OBS: self._obs}
            if self.rl2:
                feeds[PREV_ACTION], feeds[PREV_REWARD] = actions[j], self._reward
            if self.recurrent:
                feeds[H_IN], feeds[C_IN] = hs[j], cs[j]
            if self.recurrent or self.rl2:
                feeds[EPISODE_START] = self._start
            fetches = {ACTION: actions[i], VALUE: self._value}
            if self.recurrent:
                fetches[H_OUT], fetches[C_OUT] = hs[i], cs[i]
            binding = session.io_binding()
            for name, arr in feeds.items():
                value = ort.OrtValue.ortvalue_from_numpy(arr)
                binding.bind_ortvalue_input(name, value)
                self._keep_alive.append(value)
            for name, arr in fetches.items():
                value = ort.OrtValue.ortvalue_from_numpy(arr)
                binding.bind_ortvalue_output(name, value)
                self._keep_alive.append(value)
            self._bindings.append(binding)
        self._run = session.run_with_iobinding
        self._step = 0
        self._first = True

    def _check_signature(self, metadata: dict[str, Any], hidden: int) -> None:
        """The graph's inputs/outputs must be exactly what the metadata promises."""
        want_in = [OBS] + ([PREV_ACTION, PREV_REWARD] if self.rl2 else [])
        want_in += [H_IN, C_IN] if self.recurrent else []
        want_in += [EPISODE_START] if self.recurrent or self.rl2 else []
        want_out = [ACTION, VALUE] + ([H_OUT, C_OUT] if self.recurrent else [])
        got_in = [i.name for i in self._session.get_inputs()]
        got_out = [o.name for o in self._session.get_outputs()]
        if got_in != want_in or metadata["inputs"] != want_in:
            raise ExportedPolicyError(f"graph inputs {got_in} do not match the metadata {want_in}")
        if got_out != want_out or metadata["outputs"] != want_out:
            raise ExportedPolicyError(
                f"graph outputs {got_out} do not match the metadata {want_out}"
            )
        shapes = {i.name: i.shape for i in self._session.get_inputs()}
        if shapes[OBS][-1] != self.obs_dim:
            raise ExportedPolicyError(
                f"graph takes observations of size {shapes[OBS][-1]}, metadata says {self.obs_dim}"
            )
        if self.recurrent and shapes[H_IN][-1] != hidden:
            raise ExportedPolicyError(
                f"graph LSTM state has size {shapes[H_IN][-1]}, metadata says {hidden}"
            )

    def reset(self) -> None:
        """Start a new episode (the next ``act`` has no memory of the previous one)."""
        for arr in self._zeroable:  # hygiene: episode_start = 1 makes the graph ignore them
            arr.fill(0.0)
        self._start[0] = 1.0
        self._step = 0
        self._first = True

    def act(self, obs: Any, reward: float | None = None) -> np.ndarray:
        """The deterministic action for ``obs`` (shape ``(act_dim,)``, float32, within bounds).

        Args:
            obs: the raw (unnormalized) observation, shape ``(obs_dim,)``; normalization is in
                the graph.
            reward: RL^2 policies only: the reward of the previous step (returned together with
                ``obs``). Required on every call but the first after ``reset()``, where it is
                ignored (training starts an episode with a zero previous reward). Ignored by
                other policies.

        Raises:
            ExportedPolicyError: wrong observation shape, non-finite observation, or a missing
                reward for an RL^2 policy. The state is unchanged then, so the caller may retry.
        """
        buf = self._obs
        if np.shape(obs) != (self.obs_dim,):
            raise ExportedPolicyError(
                f"observation must have shape ({self.obs_dim},), got {np.shape(obs)}"
            )
        buf[0] = obs
        if not np.isfinite(buf).all():  # never turn a NaN sensor reading into a motor command
            raise ExportedPolicyError(f"observation is not finite: {buf[0].tolist()}")
        if self.rl2 and not self._first:  # at the first step the graph masks the RL^2 inputs
            if reward is None or not math.isfinite(reward):
                raise ExportedPolicyError(
                    "this policy was trained with RL^2 inputs: pass the previous step's reward, "
                    f"act(obs, reward=r), as a finite number (got {reward!r})"
                )
            self._reward[0] = reward
        i = self._step & 1
        self._run(self._bindings[i])
        self._step += 1
        if self._first:
            self._start[0] = 0.0
            self._first = False
        return self._actions[i][0].copy()  # a copy: the buffer is the next step's prev_action

    @property
    def last_value(self) -> float:
        return float(self._value[0])


def _session_options(threads: int) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads  # one act() is ~60 us of math: threads only add jitter
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # errors only: the robot's log is not the place for ORT chatter
    return so


def load_exported(path: str | os.PathLike[str], *, threads: int = 1) -> ExportedPolicy:
    """Load a policy written by ``domrand export`` (ONNX) for deployment.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime intra-op threads (1: lowest latency and jitter for one robot).

    Raises:
        ExportedPolicyError: the file is missing, not an ONNX model, not a domrand export, was
            written by a newer format version, or its graph does not match its metadata.
    """
    path = os.fspath(path)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ExportedPolicyError(f"threads must be a positive integer, got {threads!r}")
    try:
        size = os.path.getsize(path)
        if size > _MAX_FILE_BYTES:
            raise ExportedPolicyError(f"{path}: {size} bytes is too large for an exported policy")
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ExportedPolicyError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        # From bytes, with the CPU provider and no custom-op libraries: nothing but standard
        # ONNX operators runs. External data would be looked up in the current directory: point
        # the lookup at an empty private folder, so no file other than `path` is opened.
        with tempfile.TemporaryDirectory(prefix="domrand-deploy-") as empty:
            options = _session_options(threads)
            options.add_session_config_entry(_EXTERNAL_DATA_FOLDER, empty)
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own (non-exported) exception types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportedPolicyError(f"{path}: not a loadable ONNX model ({first})") from None
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise ExportedPolicyError(
            f"{path}: an ONNX model without domrand metadata (not written by `domrand export`)"
        )
    try:
        metadata = parse_metadata(props[METADATA_KEY])
        return ExportedPolicy(session, metadata)
    except ExportedPolicyError as e:
        raise ExportedPolicyError(f"{path}: {e}") from None

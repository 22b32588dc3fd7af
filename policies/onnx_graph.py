"""The ONNX graph of one policy step, built with ``onnx.helper`` from an ``ActorCritic``'s weights.

The graph computes ``ActorCritic.step`` op for op (``Gemm``, ``Tanh``, ``Sigmoid``, elementwise
ops; opset 17, IR version 8, so onnxruntime >= 1.14 loads it). Why by hand: torch's ONNX
exporters are deprecated (the TorchScript-based one) or need ``onnxscript`` (the
``torch.export``-based one), and an explicit graph of a few dozen nodes is easy to read and keeps
float rounding as close to torch as it gets. As a hand-built graph could drift from
``networks.py``, the builder accepts only the layers it knows, and ``export.py`` verifies every
graph against the torch policy before writing it. Inputs and outputs: see ``export.py``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from domrand import __version__
from domrand.errors import CheckpointError
from domrand.policies.deploy import (
    ACTION,
    C_IN,
    C_OUT,
    EPISODE_START,
    H_IN,
    H_OUT,
    METADATA_KEY,
    OBS,
    PREV_ACTION,
    PREV_REWARD,
    VALUE,
)
from domrand.policies.networks import ActorCritic

__all__ = ["ONNX_IR_VERSION", "ONNX_OPSET", "onnx_model"]

ONNX_OPSET = 17
ONNX_IR_VERSION = 8  # the IR version that goes with opset 17: older onnxruntimes load it


class _Graph:
    """A tiny builder: named initializers and nodes with unique output names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._consts: set[str] = set()
        self._n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        """An initializer; a name used again refers to the first one (same value by design)."""
        if name not in self._consts:
            self._consts.add(name)
            self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        self._n += 1
        out = out or f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out


def _f32(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).cpu().numpy()


def _unsupported(what: str) -> CheckpointError:
    return CheckpointError(
        f"cannot export {what}: the ONNX builder knows Linear/Tanh encoders and one "
        "unidirectional LSTM layer (update policies/export.py with networks.py)"
    )


def _encoder(g: _Graph, x: str, encoder: nn.Module) -> str:
    for i, layer in enumerate(encoder.children()):
        if type(layer) is nn.Linear and layer.bias is not None:
            w, b = g.const(f"enc{i}.W", _f32(layer.weight)), g.const(f"enc{i}.b", _f32(layer.bias))
            x = g.op("Gemm", [x, w, b], transB=1)
        elif type(layer) is nn.Tanh:
            x = g.op("Tanh", [x])
        else:
            raise _unsupported(f"encoder layer {type(layer).__name__}")
    return x


def _lstm_step(g: _Graph, x: str, lstm: nn.Module, hidden: int, keep_col: str) -> str:
    """``networks._lstm_cell`` on the masked state, op for op (gates i, f, g, o)."""
    if not (
        type(lstm) is nn.LSTM
        and lstm.num_layers == 1
        and not lstm.bidirectional
        and lstm.bias
        and lstm.proj_size == 0
        and lstm.hidden_size == hidden
    ):
        raise _unsupported(f"this recurrent layer ({lstm})")
    axis0 = g.const("axes0", np.array([0], np.int64))
    h = g.op("Mul", [g.op("Squeeze", [H_IN, axis0]), keep_col])  # [1, B, H] -> [B, H], masked
    c = g.op("Mul", [g.op("Squeeze", [C_IN, axis0]), keep_col])
    wi, bi = (
        g.const("lstm.W_ih", _f32(lstm.weight_ih_l0)),
        g.const("lstm.b_ih", _f32(lstm.bias_ih_l0)),
    )
    wh, bh = (
        g.const("lstm.W_hh", _f32(lstm.weight_hh_l0)),
        g.const("lstm.b_hh", _f32(lstm.bias_hh_l0)),
    )
    # gates = W_ih x + b_ih + W_hh h + b_hh, summed in the order networks._lstm_cell sums them
    gates = g.op("Add", [g.op("Gemm", [x, wi, bi], transB=1), g.op("Gemm", [h, wh, bh], transB=1)])
    outs = [f"gate_{k}" for k in "ifgo"]
    g.nodes.append(helper.make_node("Split", [gates], outs, axis=1))  # equal split: 4 x H
    i, f, gg, o = outs
    c_new = g.op(
        "Add",
        [
            g.op("Mul", [g.op("Sigmoid", [f]), c]),
            g.op("Mul", [g.op("Sigmoid", [i]), g.op("Tanh", [gg])]),
        ],
    )
    h_new = g.op("Mul", [g.op("Sigmoid", [o]), g.op("Tanh", [c_new])])
    g.op("Unsqueeze", [h_new, axis0], H_OUT)
    g.op("Unsqueeze", [c_new, axis0], C_OUT)
    return h_new


def onnx_model(policy: ActorCritic, meta: dict[str, Any]) -> onnx.ModelProto:
    """The ONNX graph of one policy step (``ActorCritic.step``), with ``meta`` in the props."""
    cfg, g = policy.config, _Graph()
    norm = policy.obs_norm
    # Exactly RunningNorm.forward in float32: mean and sqrt(var + eps) rounded from float64.
    mean = g.const("norm.mean", norm.mean.to(torch.float32).numpy())
    std = g.const("norm.std", torch.sqrt(norm.var + norm.eps).to(torch.float32).numpy())
    lo = g.const("norm.clip_lo", np.array(-norm.clip, np.float32))
    hi = g.const("norm.clip_hi", np.array(norm.clip, np.float32))
    x = g.op("Clip", [g.op("Div", [g.op("Sub", [OBS, mean]), std]), lo, hi])
    keep_col = ""
    if EPISODE_START in meta["inputs"]:  # keep = 1 - episode_start, as a [B, 1] column
        one = g.const("one", np.array(1.0, np.float32))
        axes1 = g.const("axes1", np.array([1], np.int64))
        keep_col = g.op("Unsqueeze", [g.op("Sub", [one, EPISODE_START]), axes1])
    if cfg.rl2:
        # The applied action, clipped to the bounds, in half-range units; zeroed at a start.
        a = g.op("Max", [PREV_ACTION, g.const("rl2.act_low", _f32(policy.act_low))])
        a = g.op("Min", [a, g.const("rl2.act_high", _f32(policy.act_high))])
        center = g.const("act_center", _f32(policy.act_center))
        a = g.op("Div", [g.op("Sub", [a, center]), g.const("act_scale", _f32(policy.act_scale))])
        r = g.op("Unsqueeze", [PREV_REWARD, g.const("axes1", np.array([1], np.int64))])
        x = g.op("Concat", [x, g.op("Mul", [a, keep_col]), g.op("Mul", [r, keep_col])], axis=1)
    z = _encoder(g, x, policy.encoder)
    if cfg.kind == "lstm":
        z = _lstm_step(g, z, policy.lstm, cfg.hidden, keep_col)
    elif cfg.kind != "mlp":
        raise _unsupported(f"network kind {cfg.kind!r}")

    # Heads: mean = center + scale * actor(z), then clipped to the action bounds.
    wa = g.const("actor.W", _f32(policy.actor.weight))
    ba = g.const("actor.b", _f32(policy.actor.bias))
    scale = g.const("act_scale", _f32(policy.act_scale))
    head = g.op("Mul", [scale, g.op("Gemm", [z, wa, ba], transB=1)])
    mean_a = g.op("Add", [g.const("act_center", _f32(policy.act_center)), head])
    act_lo = np.array([float(v) for v in meta["action_space"]["low"]], np.float32)
    act_hi = np.array([float(v) for v in meta["action_space"]["high"]], np.float32)
    clipped = g.op("Max", [mean_a, g.const("action.low", act_lo)])
    g.op("Min", [clipped, g.const("action.high", act_hi)], ACTION)
    wv = g.const("critic.W", _f32(policy.critic.weight))
    bv = g.const("critic.b", _f32(policy.critic.bias))
    axes1 = g.const("axes1", np.array([1], np.int64))
    g.op("Squeeze", [g.op("Gemm", [z, wv, bv], transB=1), axes1], VALUE)

    def info(name: str) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, meta["io"][name]["shape"])

    graph = helper.make_graph(
        g.nodes,
        "domrand_policy_step",
        [info(n) for n in meta["inputs"]],
        [info(n) for n in meta["outputs"]],
        g.inits,
        doc_string="one step of a domrand policy; see the 'domrand' metadata entry",
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="domrand",
        producer_version=__version__,
    )
    model.ir_version = ONNX_IR_VERSION
    helper.set_model_props(model, {METADATA_KEY: json.dumps(meta, allow_nan=False)})
    onnx.checker.check_model(model, full_check=True)
    return model

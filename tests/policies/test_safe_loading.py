"""Loading untrusted files runs no code and reads or writes nothing outside where it should.

Checkpoints are read with ``torch.load(weights_only=True)``: a file crafted to run code when
unpickled is refused with a ``CheckpointError`` (through the API and the CLI) and its payload
never runs. ONNX exports are data: a custom-op domain or "external data" pointing at another
file (next to the model, in the current directory, ``../``, absolute) is refused by
``load_exported`` without that file being read. Checkpoint names are built from integers only.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

import domrand
from domrand.cli import main
from domrand.errors import CheckpointError
from domrand.policies.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    RunInfo,
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    load_policy,
    save_checkpoint,
)
from domrand.policies.deploy import METADATA_KEY, ExportedPolicyError, load_exported
from domrand.policies.export import (
    TORCHSCRIPT_EXTRA,
    export_onnx,
    export_torchscript,
    read_torchscript_metadata,
)
from domrand.policies.networks import NetConfig, build_policy

ENV_ID = "domrand/CartPole-v0"


class RunsCode:
    """Unpickling this object opens (creates) ``marker``: a stand-in for any code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _payload() -> dict[str, Any]:
    net = NetConfig(4, 1, hidden=8, act_low=(-1.0,), act_high=(1.0,))
    info = RunInfo(
        env_id=ENV_ID, net_config=net, spec=None, control_period=0.02,
        obs_low=[-math.inf] * 4, obs_high=[math.inf] * 4, act_low=[-1.0], act_high=[1.0],
        env_steps=5, seed=0, domrand_version=domrand.__version__,
    )  # fmt: skip
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "run_info": info.to_dict(),
        "model": build_policy(net).state_dict(),
    }


def _write_evil(path: Path, marker: Path, how: str) -> Path:
    """A checkpoint-shaped file whose unpickling would create ``marker``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**_payload(), "trainer": RunsCode(marker)}
    if how == "zip":
        torch.save(payload, path)
    elif how == "legacy":
        torch.save(payload, path, _use_new_zipfile_serialization=False)
    else:  # a bare pickle named like a checkpoint
        path.write_bytes(pickle.dumps(payload, protocol=2))  # torch.load's own protocol
    return path


HOWS = ["zip", "legacy", "raw-pickle"]


@pytest.mark.parametrize("how", HOWS)
def test_the_crafted_payload_really_runs_code_when_loaded_unsafely(
    tmp_path: Path, how: str
) -> None:
    """Guards the tests below: an unsafe load of these files does create the marker."""
    marker = tmp_path / "ran"
    path = _write_evil(tmp_path / "evil.pt", marker, how)
    if how == "raw-pickle":
        pickle.loads(path.read_bytes())
    else:
        torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("how", HOWS)
def test_checkpoint_with_code_is_refused_and_never_runs(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "ran"
    path = _write_evil(tmp_path / "evil.pt", marker, how)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    assert not marker.exists()


@pytest.mark.parametrize("how", HOWS)
def test_run_dir_with_code_is_refused_by_load_policy(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "ran"
    _write_evil(checkpoint_path(tmp_path / "run", 5), marker, how)
    with pytest.raises(CheckpointError):
        load_policy(tmp_path / "run")
    assert not marker.exists()


def _run_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


@pytest.mark.parametrize("command", ["eval", "export"])
def test_cli_refuses_a_run_dir_with_code_in_one_line(tmp_path: Path, command: str) -> None:
    marker = tmp_path / "ran"
    run = tmp_path / "run"
    _write_evil(checkpoint_path(run, 5), marker, "zip")
    code, err = _run_cli([command, str(run)])
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("domrand: error: "), err
    assert "weights-only" in lines[0] and "Traceback" not in err
    assert not marker.exists()
    assert sorted(p.name for p in run.rglob("*")) == ["checkpoints", "step_5.pt"]  # no export


# ---------------------------------------------------------------------- checkpoint names
@pytest.mark.parametrize("steps", ["../../outside", "5", -1, 2.0, True, None, "5/../../x"])
def test_checkpoint_names_come_from_non_negative_ints_only(tmp_path: Path, steps: Any) -> None:
    with pytest.raises(CheckpointError, match="integer >= 0"):
        checkpoint_path(tmp_path, steps)


def test_checkpoints_stay_inside_the_run_dir(tmp_path: Path) -> None:
    run = tmp_path / "run"
    path = save_checkpoint(checkpoint_path(run, 10**12), _payload())
    assert path.resolve().parent == (run / "checkpoints").resolve()
    assert path.name == f"step_{10**12}.pt"
    # Only step_<digits>.pt names are checkpoints: nothing else in the folder is ever loaded.
    for name in ("step_1.pt.evil", ".step_2.pt.abc.tmp", "step_x.pt", "step_-3.pt", "step_4.pth"):
        (run / "checkpoints" / name).write_bytes(b"")
    assert list_checkpoints(run) == [path]


# ---------------------------------------------------------------------- ONNX exports
@pytest.fixture
def exported(policy_factory: Any, tmp_path: Path) -> Path:
    policy, info = policy_factory("lstm", rl2=False, hidden=16)
    folder = tmp_path / "model"
    folder.mkdir()
    return export_onnx(policy, info, folder / "policy.onnx")


def _metadata(path: Path) -> str:
    model = onnx.load(str(path))
    return next(p.value for p in model.metadata_props if p.key == METADATA_KEY)


def test_custom_op_domain_is_refused(exported: Path, tmp_path: Path) -> None:
    """A graph asking for an operator from a custom domain (a native library) does not load."""
    node = helper.make_node("Payload", ["obs"], ["action"], domain="com.evil")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, 1])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.evil", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    helper.set_model_props(model, {METADATA_KEY: _metadata(exported)})
    bad = tmp_path / "custom.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(ExportedPolicyError, match="not a loadable ONNX model") as info:
        load_exported(bad)
    assert "com.evil" in str(info.value)


def _with_external_data(src: Path, dst: Path, location: str) -> Path:
    """``src`` re-saved with its weight matrices in ``w.bin`` next to it, then pointed at
    ``location`` (the small shape constants stay inline, so only the weights are external)."""
    model = onnx.load(str(src))
    onnx.save(
        model,
        str(dst),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="w.bin",
        size_threshold=256,
    )
    model = onnx.load(str(dst), load_external_data=False)
    n = 0
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
                n += 1
    assert n > 0
    onnx.save(model, str(dst))
    return dst


def test_external_data_next_to_the_model_is_valid_data(exported: Path) -> None:
    """Guards the tests below: onnxruntime, given the path, would load these weights."""
    ext = _with_external_data(exported, exported.with_name("ext.onnx"), "w.bin")
    session = ort.InferenceSession(str(ext), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "obs"


@pytest.mark.parametrize("where", ["model-dir", "cwd", "parent", "absolute"])
def test_external_data_is_never_read(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    model_dir = exported.parent
    outside = tmp_path / "outside"
    outside.mkdir()
    location = {
        "model-dir": "w.bin",
        "cwd": "w.bin",
        "parent": "../outside/w.bin",
        "absolute": str(outside / "w.bin"),
    }[where]
    ext = _with_external_data(exported, model_dir / "ext.onnx", location)
    shutil.copy(model_dir / "w.bin", outside / "w.bin")  # the real weights, in both places
    if where == "cwd":  # onnxruntime resolves external data of an in-memory model here
        monkeypatch.chdir(model_dir)
    with pytest.raises(ExportedPolicyError, match="not a loadable ONNX model") as info:
        load_exported(ext)
    assert "\n" not in str(info.value)


def test_torchscript_artifact_is_not_loaded_by_the_deploy_runtime(
    policy_factory: Any, tmp_path: Path
) -> None:
    policy, info = policy_factory("lstm", rl2=False, hidden=16)
    ts = export_torchscript(policy, info, tmp_path / "policy.torchscript.pt")
    with pytest.raises(ExportedPolicyError, match="not a loadable ONNX model"):
        load_exported(ts)


def test_torchscript_metadata_is_read_without_unpickling(exported: Path, tmp_path: Path) -> None:
    """read_torchscript_metadata opens the zip and parses JSON: a pickle next to it never runs."""
    marker = tmp_path / "ran"
    archive = tmp_path / "crafted.pt"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("crafted/data.pkl", pickle.dumps(RunsCode(marker)))
        z.writestr("crafted/constants.pkl", pickle.dumps(RunsCode(marker)))
        z.writestr(f"crafted/extra/{TORCHSCRIPT_EXTRA}", _metadata(exported))
    meta = read_torchscript_metadata(archive)
    assert meta["format"] == json.loads(_metadata(exported))["format"]
    assert not marker.exists()

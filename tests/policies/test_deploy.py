"""The deploy runtime: numpy + onnxruntime only, safe refusal of foreign files, act() contract."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from domrand.errors import CheckpointError, DomrandError
from domrand.policies import deploy
from domrand.policies.deploy import ExportedPolicyError, load_exported, parse_metadata
from domrand.policies.export import export_onnx

REPO = Path(__file__).resolve().parents[2]
OBS = np.array([0.05, -0.1, 0.02, 0.3], np.float32)


@pytest.fixture
def rl2_export(policy_factory: Any, tmp_path: Path) -> Path:
    policy, info = policy_factory("lstm", rl2=True, hidden=32)
    return export_onnx(policy, info, tmp_path / "policy.onnx")


def _actions(policy: deploy.ExportedPolicy, steps: int = 6) -> list[list[float]]:
    out = []
    for t in range(steps):
        out.append(policy.act(OBS * (1 + t), reward=float(t)).tolist())
    return out


# ---------------------------------------------------------------------- no training stack
def test_imports_and_runs_without_torch_pybullet_gymnasium(rl2_export: Path) -> None:
    expected = _actions(load_exported(rl2_export))
    code = textwrap.dedent(f"""
        import json, sys
        for name in ("torch", "pybullet", "gymnasium", "yaml", "onnx"):
            sys.modules[name] = None  # any import of them now raises ImportError
        from domrand.policies.deploy import load_exported
        import numpy as np
        policy = load_exported({str(rl2_export)!r})
        obs = np.array({OBS.tolist()!r}, np.float32)
        acts = [policy.act(obs * (1 + t), reward=float(t)).tolist() for t in range(6)]
        loaded = sorted(m for m in sys.modules if m.startswith("domrand"))
        print(json.dumps({{"actions": acts, "modules": loaded}}))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(out.stdout)
    assert result["actions"] == expected
    modules = ["domrand", "domrand.errors", "domrand.policies", "domrand.policies.deploy"]
    assert result["modules"] == modules


def test_deploy_py_works_as_a_single_copied_file(rl2_export: Path, tmp_path: Path) -> None:
    """On a robot without domrand: copy deploy.py next to the robot code and import it."""
    robot = tmp_path / "robot"
    robot.mkdir()
    shutil.copy(REPO / "policies" / "deploy.py", robot / "domrand_deploy.py")
    code = textwrap.dedent(f"""
        import sys
        for name in ("domrand", "torch", "pybullet", "gymnasium"):
            sys.modules[name] = None  # domrand is not installed on this machine
        import domrand_deploy as d
        assert d.ExportedPolicyError.__mro__[1] is ValueError
        policy = d.load_exported({str(rl2_export)!r})
        print(policy.act([0.0, 0.0, 0.0, 0.0]).tolist())
        try:
            d.load_exported({str(robot / "domrand_deploy.py")!r})
        except d.ExportedPolicyError as e:
            print("refused")
    """)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=robot,
    )
    lines = out.stdout.splitlines()
    assert lines[0] == str(load_exported(rl2_export).act(np.zeros(4)).tolist())
    assert lines[1] == "refused"


def test_deploy_module_imports_only_numpy_onnxruntime_and_stdlib() -> None:
    source = (REPO / "policies" / "deploy.py").read_text()
    tree = compile(source, "deploy.py", "exec", flags=0x400, dont_inherit=True)  # ast only
    import ast

    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    third_party = roots - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"numpy", "onnxruntime", "domrand"}  # domrand.errors: optional


# ---------------------------------------------------------------------- refusing files
def _write_with_metadata(src: Path, dst: Path, edit: Any) -> Path:
    model = onnx.load(str(src))
    meta = json.loads(model.metadata_props[0].value)
    result = edit(meta)
    model.metadata_props[0].value = result if isinstance(result, str) else json.dumps(meta)
    onnx.save(model, str(dst))
    return dst


def _tiny_onnx(path: Path) -> Path:
    node = helper.make_node("Identity", ["obs"], ["action"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _set(key: str, value: Any) -> Any:
    def edit(meta: dict[str, Any]) -> None:
        meta[key] = value

    return edit


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda src, p: p.write_bytes(b"\x00garbage\xff" * 50) and p, "not a loadable ONNX model"),
        (lambda src, p: p.write_bytes(b"") == 0 and p, "not a loadable ONNX model"),
        (lambda src, p: _tiny_onnx(p), "without domrand metadata"),
        (lambda src, p: p.write_bytes(src.read_bytes()[:2000]) and p, "not a loadable ONNX"),
        (lambda src, p: _write_with_metadata(src, p, lambda m: "{not json"), "not valid JSON"),
        (lambda src, p: _write_with_metadata(src, p, _set("format", "x")), "does not describe"),
        (lambda src, p: _write_with_metadata(src, p, _set("format_version", 2)), "version 2"),
        (lambda src, p: _write_with_metadata(src, p, _set("control_period", -1)), "control_per"),
        (
            lambda src, p: _write_with_metadata(src, p, _set("inputs", ["obs"])),
            "do not match the metadata",
        ),
        (
            lambda src, p: _write_with_metadata(src, p, lambda m: m["net"].update(hidden=7)),
            "LSTM state has size",
        ),
        (
            lambda src, p: _write_with_metadata(
                src, p, lambda m: m["action_space"].update(low=["nan"])
            ),
            "action_space.low",
        ),
    ],
    ids=[
        "garbage",
        "empty",
        "foreign-onnx",
        "truncated",
        "bad-json",
        "wrong-format",
        "newer-version",
        "bad-period",
        "graph-mismatch",
        "hidden-mismatch",
        "bad-bounds",
    ],
)
def test_refuses_files_that_are_not_valid_domrand_exports(
    rl2_export: Path, tmp_path: Path, make: Any, message: str
) -> None:
    bad = make(rl2_export, tmp_path / "bad.onnx")
    with pytest.raises(ExportedPolicyError, match=message) as info:
        load_exported(bad)
    assert str(bad) in str(info.value)
    assert isinstance(info.value, CheckpointError) and isinstance(info.value, DomrandError)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ExportedPolicyError, match="cannot read"):
        load_exported(tmp_path / "nope.onnx")


def test_threads_must_be_positive(rl2_export: Path) -> None:
    with pytest.raises(ExportedPolicyError, match="threads"):
        load_exported(rl2_export, threads=0)
    assert load_exported(rl2_export, threads=2).act(OBS).shape == (1,)


def test_newer_format_version_says_what_to_do() -> None:
    text = json.dumps({"format": "domrand-policy", "format_version": deploy.FORMAT_VERSION + 1})
    with pytest.raises(ExportedPolicyError, match="update domrand"):
        parse_metadata(text)


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, b"\xff\xfe", "NaN", "[]"])
def test_pathological_metadata_is_refused(text: str | bytes) -> None:
    with pytest.raises(ExportedPolicyError):
        parse_metadata(text)


def test_external_data_is_never_read(rl2_export: Path, tmp_path: Path) -> None:
    """A model pointing its weights at another file cannot make the loader read it."""
    model = onnx.load(str(rl2_export))
    onnx.save(
        model,
        str(tmp_path / "ext.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert (tmp_path / "weights.bin").exists()
    with pytest.raises(ExportedPolicyError, match="not a loadable ONNX model"):
        load_exported(tmp_path / "ext.onnx")


# ---------------------------------------------------------------------- act() contract
def test_reset_replays_the_same_actions(rl2_export: Path) -> None:
    policy = load_exported(rl2_export)
    first = _actions(policy)
    policy.reset()
    assert _actions(policy) == first
    assert _actions(load_exported(rl2_export)) == first
    assert len({tuple(a) for a in first}) > 1  # the state evolves


def test_rl2_reward_is_required_after_the_first_step(rl2_export: Path) -> None:
    policy = load_exported(rl2_export)
    assert policy.rl2 and policy.recurrent
    a0 = policy.act(OBS)  # first step: no previous reward
    with pytest.raises(ExportedPolicyError, match="reward="):
        policy.act(OBS)
    with pytest.raises(ExportedPolicyError, match="finite"):
        policy.act(OBS, reward=math.nan)
    policy.reset()
    assert policy.act(OBS, reward=123.0).tolist() == a0.tolist()  # ignored at the first step
    b = policy.act(OBS, reward=1.0).tolist()
    policy.reset()
    policy.act(OBS)
    assert policy.act(OBS, reward=-5.0).tolist() != b  # the reward is an input


def test_reward_is_ignored_by_non_rl2_policies(policy_factory: Any, tmp_path: Path) -> None:
    policy, info = policy_factory("lstm", rl2=False, hidden=16)
    exported = load_exported(export_onnx(policy, info, tmp_path / "p.onnx"))
    a = [exported.act(OBS).tolist() for _ in range(3)]
    exported.reset()
    assert [exported.act(OBS, reward=9.0).tolist() for _ in range(3)] == a


def test_bad_observations_are_refused_and_leave_the_state_alone(rl2_export: Path) -> None:
    policy, reference = load_exported(rl2_export), load_exported(rl2_export)
    policy.act(OBS)
    reference.act(OBS)
    for bad in (np.zeros(3), np.zeros((1, 4)), 0.5, [0.0, math.nan, 0.0, 0.0], [math.inf] * 4):
        with pytest.raises(ExportedPolicyError):
            policy.act(bad, reward=1.0)
    assert policy.act(OBS, reward=1.0).tolist() == reference.act(OBS, reward=1.0).tolist()


def test_returned_action_is_a_copy(rl2_export: Path) -> None:
    policy, reference = load_exported(rl2_export), load_exported(rl2_export)
    a = policy.act(OBS)
    reference.act(OBS)
    a[:] = 1e6  # the caller scribbles on it; the previous-action input must not change
    assert policy.act(OBS, reward=0.0).tolist() == reference.act(OBS, reward=0.0).tolist()


def test_runtime_attributes(rl2_export: Path) -> None:
    policy = load_exported(rl2_export)
    assert policy.control_period == 0.02
    assert (policy.obs_dim, policy.act_dim) == (4, 1)
    assert policy.action_low.tolist() == [-1.0] and policy.action_high.tolist() == [1.0]
    assert np.isinf(policy.obs_low).all()
    policy.act(OBS)
    assert math.isfinite(policy.last_value) and policy.last_value != 0.0


def test_mlp_policy_is_stateless(policy_factory: Any, tmp_path: Path) -> None:
    policy, info = policy_factory("mlp", rl2=False, hidden=16)
    exported = load_exported(export_onnx(policy, info, tmp_path / "p.onnx"))
    assert not exported.recurrent and not exported.rl2
    a = exported.act(OBS).tolist()
    assert [exported.act(OBS).tolist() for _ in range(3)] == [a] * 3


# ---------------------------------------------------------------------- the example
def _load_example() -> Any:
    spec = importlib.util.spec_from_file_location(
        "deploy_loop_example", REPO / "examples" / "deploy_loop.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_example_control_loop_runs_against_the_simulated_robot(
    rl2_export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = _load_example()
    assert example.main(["--policy", str(rl2_export), "--steps", "8", "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert "episode 1" in out and "episode 2" in out and "overruns" in out


def test_example_loop_keeps_the_period_and_counts_overruns() -> None:
    """A fake clock: the loop sleeps to each deadline and reports the ticks it missed."""
    example = _load_example()

    class Clock:
        def __init__(self) -> None:
            self.now, self.sleeps = 0.0, []

        def time(self) -> float:
            return self.now

        def sleep(self, dt: float) -> None:
            self.sleeps.append(round(dt, 6))
            self.now += dt

    clock = Clock()
    costs = iter([0.001, 0.001, 0.025, 0.001, 0.001])  # the third act() blows the 10 ms budget

    class Policy:
        rl2 = False

        def act(self, obs: Any, reward: float | None = None) -> np.ndarray:
            clock.now += next(costs)
            return np.zeros(1, np.float32)

    class Robot:
        def __init__(self) -> None:
            self.sent: list[float] = []

        def read_observation(self) -> np.ndarray:
            return np.zeros(4, np.float32)

        def send_action(self, action: np.ndarray) -> None:
            self.sent.append(clock.now)

    robot = Robot()
    stats = example.run_control_loop(
        Policy(), robot, period=0.01, max_steps=5, clock=clock.time, sleep=clock.sleep
    )
    assert stats.steps == 5 and stats.overruns == 1
    assert stats.worst_step_s == pytest.approx(0.025)
    assert robot.sent == pytest.approx([0.001, 0.011, 0.045, 0.051, 0.061])

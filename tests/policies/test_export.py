"""Export to ONNX / TorchScript: parity with the torch policy over whole episodes, metadata."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

import domrand
from domrand.errors import CheckpointError, DomrandError
from domrand.policies import export
from domrand.policies.deploy import FORMAT_VERSION, load_exported
from domrand.policies.export import (
    TORCHSCRIPT_EXTRA,
    build_metadata,
    export_onnx,
    export_torchscript,
    read_torchscript_metadata,
)
from domrand.policies.networks import ActorCritic

# torch.jit is deprecated upstream; TorchScript is still what libtorch deployments load
pytestmark = pytest.mark.filterwarnings(
    r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning"
)

CARTPOLE = "domrand/CartPole-v0"
TOL = 1e-5
CASES = [("lstm", False, 256), ("lstm", True, 256), ("mlp", False, 64), ("mlp", True, 64)]
CASE_IDS = ["lstm256", "lstm256-rl2", "mlp64", "mlp64-rl2"]


class TorchScriptPolicy:
    """The deploy runtime's ``reset``/``act`` contract, driven over a TorchScript export."""

    def __init__(self, path: Path) -> None:
        self.module = torch.jit.load(str(path))
        self.meta = read_torchscript_metadata(path)
        self.hidden, self.act_dim = self.meta["net"]["hidden"], self.meta["net"]["act_dim"]
        self.reset()

    def reset(self) -> None:
        z = torch.zeros(1, 1, self.hidden)
        self.x: dict[str, torch.Tensor] = {"h": z, "c": z.clone()}
        self.x |= {"prev_action": torch.zeros(1, self.act_dim), "prev_reward": torch.zeros(1)}
        self.x["episode_start"] = torch.ones(1)

    def act(self, obs: np.ndarray, reward: float | None = None) -> np.ndarray:
        self.x["obs"] = torch.as_tensor(obs, dtype=torch.float32).view(1, -1)
        if reward is not None:
            self.x["prev_reward"] = torch.tensor([reward], dtype=torch.float32)
        with torch.no_grad():
            out = dict(
                zip(self.meta["outputs"], self.module(*(self.x[n] for n in self.meta["inputs"])))
            )
        self.x |= {"prev_action": out["action"], "episode_start": torch.zeros(1)}
        if "h_out" in out:
            self.x |= {"h": out["h_out"], "c": out["c_out"]}
        return out["action"][0].numpy()


def lockstep(
    policy: ActorCritic, exported: Any, episodes: int, seed: int, min_steps: int = 0
) -> dict[str, float]:
    """Run the torch policy on randomized CartPole and the export on the same observations.

    The torch policy acts as in training evaluation (``episode_start`` masks its state and RL^2
    inputs at each episode's first step); the export is driven like on a robot (``reset()`` at
    every episode, the reward passed to the next ``act``). The env follows the torch actions.
    Runs ``episodes`` whole episodes, and more until ``min_steps`` steps were compared.
    """
    env = domrand.make(CARTPOLE, spec=domrand.default_spec_path(CARTPOLE), seed=seed)
    worst, steps, clipped, biggest, done = 0.0, 0, 0, 0.0, 0
    state = policy.initial_state(1)
    prev_a, prev_r = torch.zeros(1, 1), torch.zeros(1)
    try:
        while done < episodes or (steps < min_steps and done < 50):
            obs, _ = env.reset()
            exported.reset()
            start, reward = torch.ones(1), None
            while True:
                obs_t = torch.as_tensor(obs, dtype=torch.float32).view(1, -1)
                with torch.no_grad():
                    mean, _, state = policy.step(obs_t, prev_a, prev_r, state, start)
                action = policy.deterministic_action(mean)
                got = exported.act(obs, reward=reward)
                assert got.shape == (1,) and got.dtype == np.float32
                worst = max(worst, float(np.abs(got - action[0].numpy()).max()))
                a = float(action[0, 0])
                clipped += abs(a) == 1.0
                biggest = max(biggest, abs(a) if abs(a) < 1.0 else 0.0)
                obs, reward, term, trunc, _ = env.step(action[0].numpy())
                prev_a, prev_r, start = action, torch.tensor([float(reward)]), torch.zeros(1)
                steps += 1
                if term or trunc:
                    done += 1
                    break
    finally:
        env.close()
    return {
        "worst": worst,
        "steps": steps,
        "episodes": done,
        "clipped": clipped,
        "biggest_unclipped": biggest,
    }


@pytest.mark.parametrize(("kind", "rl2", "hidden"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_torch_policy_over_whole_episodes(
    policy_factory: Any, tmp_path: Path, fmt: str, kind: str, rl2: bool, hidden: int
) -> None:
    policy, info = policy_factory(kind, rl2, hidden)
    if fmt == "onnx":
        exported: Any = load_exported(export_onnx(policy, info, tmp_path / "p.onnx"))
    else:
        exported = TorchScriptPolicy(export_torchscript(policy, info, tmp_path / "p.pt"))
    stats = lockstep(policy, exported, episodes=3, seed=3, min_steps=100)
    assert stats["worst"] <= TOL, stats
    assert stats["episodes"] >= 3 and stats["steps"] >= 100, stats  # whole episodes, boundaries
    assert stats["biggest_unclipped"] > 0.05, stats  # not vacuous: actions are not all ~0 or +-1


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_actions_are_clipped_to_the_bounds(policy_factory: Any, tmp_path: Path, fmt: str) -> None:
    policy, info = policy_factory("lstm", hidden=16)
    with torch.no_grad():
        policy.actor.bias.fill_(50.0)
    if fmt == "onnx":
        exported: Any = load_exported(export_onnx(policy, info, tmp_path / "p.onnx"))
    else:
        exported = TorchScriptPolicy(export_torchscript(policy, info, tmp_path / "p.pt"))
    assert exported.act(np.zeros(4)).tolist() == [1.0]
    with torch.no_grad():
        policy.actor.bias.fill_(-50.0)
    exported = load_exported(export_onnx(policy, info, tmp_path / "q.onnx"))
    assert exported.act(np.zeros(4)).tolist() == [-1.0]


def test_episode_boundary_needs_reset(policy_factory: Any, tmp_path: Path) -> None:
    """Without reset() the LSTM carries the last episode's state: parity must then break."""
    policy, info = policy_factory("lstm", rl2=True)
    exported = load_exported(export_onnx(policy, info, tmp_path / "p.onnx"))

    class NoReset:
        def reset(self) -> None:  # forgets to reset after the first episode
            if not hasattr(self, "done"):
                exported.reset()
                self.done = True

        def act(self, obs: np.ndarray, reward: float | None = None) -> np.ndarray:
            return exported.act(obs, reward=0.0 if reward is None else reward)

    assert lockstep(policy, NoReset(), episodes=2, seed=3)["worst"] > 1e-3


def test_onnx_graph_is_valid_with_a_dynamic_batch(policy_factory: Any, tmp_path: Path) -> None:
    policy, info = policy_factory("lstm", rl2=True, hidden=32)
    path = export_onnx(policy, info, tmp_path / "p.onnx")
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == export.ONNX_OPSET
    assert model.ir_version == export.ONNX_IR_VERSION
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    names = [i.name for i in model.graph.input]
    assert names == ["obs", "prev_action", "prev_reward", "h", "c", "episode_start"]
    assert [o.name for o in model.graph.output] == ["action", "value", "h_out", "c_out"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"

    # a batch of 5 (two of them starting an episode) matches the torch policy row by row
    gen = torch.Generator().manual_seed(1)
    obs, prev_a = torch.randn(5, 4, generator=gen), torch.randn(5, 1, generator=gen) * 2
    prev_r, start = torch.randn(5, generator=gen), torch.tensor([1.0, 0, 0, 1, 0])
    state = policy.initial_state(5)
    state = type(state)(torch.randn(1, 5, 32, generator=gen), torch.randn(1, 5, 32, generator=gen))
    with torch.no_grad():
        mean, value, new = policy.step(obs, prev_a, prev_r, state, start)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = dict(zip(names, (t.numpy() for t in (obs, prev_a, prev_r, *state, start))))
    action, v, h, c = sess.run(None, feeds)
    np.testing.assert_allclose(action, policy.deterministic_action(mean).numpy(), atol=TOL)
    np.testing.assert_allclose(v, value.numpy(), atol=TOL)
    np.testing.assert_allclose(h, new.h.numpy(), atol=TOL)
    np.testing.assert_allclose(c, new.c.numpy(), atol=TOL)


def test_mlp_graph_has_no_state_and_no_unused_inputs(policy_factory: Any, tmp_path: Path) -> None:
    policy, info = policy_factory("mlp", rl2=False)
    model = onnx.load(str(export_onnx(policy, info, tmp_path / "p.onnx")))
    assert [i.name for i in model.graph.input] == ["obs"]
    assert [o.name for o in model.graph.output] == ["action", "value"]


# ---------------------------------------------------------------------- metadata
def test_metadata_round_trip_onnx_and_torchscript(policy_factory: Any, tmp_path: Path) -> None:
    policy, info = policy_factory("lstm", rl2=True, hidden=32)
    onnx_path = export_onnx(policy, info, tmp_path / "p.onnx")
    ts_path = export_torchscript(policy, info, tmp_path / "p.pt")
    meta = load_exported(onnx_path).metadata
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(props["domrand"]) == meta
    ts_meta = read_torchscript_metadata(ts_path)
    extra = {TORCHSCRIPT_EXTRA: ""}
    torch.jit.load(str(ts_path), _extra_files=extra)
    assert json.loads(extra[TORCHSCRIPT_EXTRA]) == ts_meta
    assert {k: v for k, v in meta.items() if k != "artifact"} == {
        k: v for k, v in ts_meta.items() if k != "artifact"
    }
    assert (meta["artifact"], ts_meta["artifact"]) == ("onnx", "torchscript")

    assert meta["format"] == "domrand-policy" and meta["format_version"] == FORMAT_VERSION
    assert meta["domrand_version"] == domrand.__version__
    assert meta["env_id"] == CARTPOLE and meta["control_period"] == 0.02
    assert meta["observation_space"] == {
        "shape": [4],
        "dtype": "float32",
        "low": ["-inf"] * 4,
        "high": ["inf"] * 4,
    }
    assert meta["action_space"]["low"] == [-1.0] and meta["action_space"]["high"] == [1.0]
    norm = meta["normalization"]
    assert norm["mean"] == policy.obs_norm.mean.tolist()  # float64, exactly
    assert norm["var"] == policy.obs_norm.var.tolist()
    assert norm["clip"] == policy.obs_norm.clip and norm["eps"] == policy.obs_norm.eps
    assert meta["net"] == policy.config.to_dict()
    assert meta["spec"]["parameters"]["pole.mass"]["high"] == 2.0
    assert meta["spec"]["parameters"]["obs.bias"]["low"] == "-inf"  # strict JSON, no Infinity
    assert meta["training"]["env_steps"] == 12_345 and meta["training"]["seed"] == 7
    assert meta["inputs"] == ["obs", "prev_action", "prev_reward", "h", "c", "episode_start"]
    assert set(meta["io"]) == set(meta["inputs"]) | set(meta["outputs"])


def test_normalization_is_baked_into_the_graph(policy_factory: Any, tmp_path: Path) -> None:
    """Changing the metadata's statistics does not change the actions: the graph has them."""
    policy, info = policy_factory("mlp", hidden=16)
    path = export_onnx(policy, info, tmp_path / "p.onnx")
    model = onnx.load(str(path))
    meta = json.loads(model.metadata_props[0].value)
    meta["normalization"]["mean"] = [1e6] * 4
    model.metadata_props[0].value = json.dumps(meta)
    onnx.save(model, str(tmp_path / "q.onnx"))
    obs = np.array([0.1, -0.2, 0.03, 0.5], np.float32)
    np.testing.assert_array_equal(
        load_exported(path).act(obs), load_exported(tmp_path / "q.onnx").act(obs)
    )
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(inits["norm.mean"], policy.obs_norm.mean.float().numpy())


def test_run_info_with_a_real_runinfo_shape(policy_factory: Any, tmp_path: Path) -> None:
    """The trainer's RunInfo (extra fields: iteration, config) is accepted as is."""
    checkpoint = pytest.importorskip("domrand.policies.checkpoint")
    policy, info = policy_factory("lstm", hidden=16)
    run_info = checkpoint.RunInfo(**vars(info), iteration=3, config={"lr": 3e-4})
    meta = load_exported(export_onnx(policy, run_info, tmp_path / "p.onnx")).metadata
    assert meta["training"]["iteration"] == 3 and meta["training"]["config"] == {"lr": 3e-4}


# ---------------------------------------------------------------------- errors
def _replace(info: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(info, **changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"control_period": 0.0}, "control_period"),
        ({"control_period": math.nan}, "control_period"),
        ({"act_low": [-1.0, -1.0]}, "bounds have shapes"),
        ({"act_low": [math.nan]}, "low <= high"),
        ({"obs_low": [1.0] * 4, "obs_high": [0.0] * 4}, "low <= high"),
        ({"act_low": [-2.0]}, "differ from the policy"),
        ({"spec": {"bad": object()}}, "metadata.spec.bad"),
    ],
)
def test_bad_run_info_is_a_checkpoint_error(
    policy_factory: Any, changes: dict[str, Any], message: str
) -> None:
    policy, info = policy_factory("mlp", hidden=8)
    with pytest.raises(CheckpointError, match=message):
        build_metadata(policy, _replace(info, **changes), "onnx")


def test_mismatched_net_config_is_refused(policy_factory: Any, tmp_path: Path) -> None:
    policy, _ = policy_factory("lstm", hidden=16)
    _, other = policy_factory("lstm", hidden=32)
    with pytest.raises(CheckpointError, match="does not match"):
        export_onnx(policy, other, tmp_path / "p.onnx")
    assert not (tmp_path / "p.onnx").exists()


def test_unknown_layers_are_refused(policy_factory: Any, tmp_path: Path) -> None:
    policy, info = policy_factory("mlp", hidden=8)
    policy.encoder[1] = nn.ReLU()
    with pytest.raises(CheckpointError, match="encoder layer ReLU"):
        export_onnx(policy, info, tmp_path / "p.onnx")


def test_verification_catches_a_network_the_builder_does_not_know(
    policy_factory: Any, tmp_path: Path
) -> None:
    """If networks.py changes what a step computes, the export fails instead of drifting."""

    class Shifted(ActorCritic):
        def _heads(
            self, z: torch.Tensor, priv: torch.Tensor | None = None
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            mean, value, plain = super()._heads(z, priv)
            return mean * 0.5, value, plain

    policy, info = policy_factory("lstm", hidden=16)
    shifted = Shifted(policy.config)
    shifted.load_state_dict(policy.state_dict())
    (tmp_path / "p.onnx").write_bytes(b"previous export")
    with pytest.raises(CheckpointError, match="differs from the torch policy"):
        export_onnx(shifted, info, tmp_path / "p.onnx")
    assert (tmp_path / "p.onnx").read_bytes() == b"previous export"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.onnx"]  # no temporaries left


def test_export_overwrites_atomically_and_errors_are_domrand_errors(
    policy_factory: Any, tmp_path: Path
) -> None:
    policy, info = policy_factory("mlp", hidden=8)
    target = tmp_path / "sub" / "p.onnx"
    export_onnx(policy, info, target)
    first = target.read_bytes()
    export_onnx(policy, info, target)  # same policy: byte-identical (no timestamps)
    assert target.read_bytes() == first
    assert sorted(p.name for p in target.parent.iterdir()) == ["p.onnx"]
    assert issubclass(CheckpointError, DomrandError)


def test_read_torchscript_metadata_rejects_other_files(tmp_path: Path) -> None:
    (tmp_path / "x.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a TorchScript archive"):
        read_torchscript_metadata(tmp_path / "x.pt")
    scripted = torch.jit.script(nn.Linear(2, 2))
    torch.jit.save(scripted, str(tmp_path / "y.pt"))
    with pytest.raises(CheckpointError, match="without domrand metadata"):
        read_torchscript_metadata(tmp_path / "y.pt")


# ---------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (tiny) training run through the trainer's API: LSTM-16 with RL^2 inputs."""
    config = pytest.importorskip("domrand.policies.config")
    train = pytest.importorskip("domrand.policies.train")
    run = tmp_path_factory.mktemp("cli") / "run"
    cfg = config.TrainConfig(
        total_steps=64,
        num_envs=2,
        num_steps=32,
        hidden=16,
        epochs=1,
        batch_size=32,
        seq_len=8,
        checkpoint_every=64,
        rl2=True,
        policy="lstm",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        train.train(cfg, run, spec=domrand.default_spec_path(CARTPOLE), progress=False)
    return run


def test_cli_export_onnx_end_to_end(tiny_run: Path, tmp_path: Path, capsys: Any) -> None:
    from domrand.cli import main
    from domrand.policies.checkpoint import load_policy

    out = tmp_path / "robot" / "policy.onnx"
    assert main(["export", str(tiny_run), "--format", "onnx", "-o", str(out)]) == 0
    assert f"wrote {out} (onnx, LSTM-16 RL^2, obs 4, act 1" in capsys.readouterr().out
    policy, info = load_policy(tiny_run)
    exported = load_exported(out)
    assert lockstep(policy, exported, episodes=2, seed=5)["worst"] <= TOL
    meta = exported.metadata
    assert meta["spec"] == json.loads(json.dumps(export._jsonable(info.spec, "spec")))
    assert meta["spec"]["env"] == CARTPOLE
    assert meta["training"]["env_steps"] == info.env_steps == 64
    assert meta["training"]["config"]["hidden"] == 16
    assert meta["control_period"] == info.control_period == 0.02
    assert meta["normalization"]["mean"] == policy.obs_norm.mean.tolist()


def test_cli_export_torchscript_default_path(tiny_run: Path, capsys: Any) -> None:
    from domrand.cli import main

    assert main(["export", str(tiny_run), "--format", "torchscript"]) == 0
    path = tiny_run / "policy.torchscript.pt"
    assert read_torchscript_metadata(path)["artifact"] == "torchscript"
    assert str(path) in capsys.readouterr().out


def test_cli_export_errors_are_one_line_exit_2(tmp_path: Path, capsys: Any) -> None:
    from domrand.cli import main

    assert main(["export", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("domrand: error: ") and err.count("\n") == 1
    bad = tmp_path / "run" / "checkpoints"
    bad.mkdir(parents=True)
    (bad / "step_10.pt").write_bytes(b"not a checkpoint")
    assert main(["export", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and err.count("\n") == 1
    assert not (tmp_path / "run" / "policy.onnx").exists()

"""Checkpoints: atomic writes, one clear CheckpointError for bad files, load_policy + RunInfo."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
import torch

import domrand
from domrand.errors import CheckpointError
from domrand.policies.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    RunInfo,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    load_policy,
    save_checkpoint,
)
from domrand.policies.config import TrainConfig
from domrand.policies.networks import NetConfig, build_policy
from domrand.policies.train import train

ENV_ID = "domrand/CartPole-v0"
TINY = TrainConfig(
    total_steps=256, num_envs=2, num_steps=64, hidden=8, epochs=1, batch_size=64, seq_len=16,
    checkpoint_every=128,
)  # fmt: skip


def _one_line(e: pytest.ExceptionInfo[CheckpointError]) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def _payload(hidden: int = 8) -> dict:
    net = NetConfig(4, 1, hidden=hidden, act_low=(-1.0,), act_high=(1.0,))
    info = RunInfo(
        env_id=ENV_ID, net_config=net, spec=None, control_period=0.02,
        obs_low=[-math.inf] * 4, obs_high=[math.inf] * 4, act_low=[-1.0], act_high=[1.0],
        env_steps=10, seed=0, domrand_version=domrand.__version__,
    )  # fmt: skip
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "run_info": info.to_dict(),
        "model": build_policy(net).state_dict(),
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "run"
    train(TINY, out, spec=domrand.default_spec_path(ENV_ID), progress=False)
    return out


def test_save_and_load_round_trip_weights_only(tmp_path: Path) -> None:
    p = save_checkpoint(tmp_path / "checkpoints" / "step_10.pt", _payload())
    loaded = load_checkpoint(p)
    assert loaded["run_info"]["env_id"] == ENV_ID
    assert latest_checkpoint(tmp_path) == p
    assert not [f for f in p.parent.iterdir() if f.name.endswith(".tmp")]


def test_a_failed_save_leaves_the_previous_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "step_10.pt"
    save_checkpoint(path, _payload())
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - torch.save's own error for an unpicklable value
        save_checkpoint(path, {**_payload(), "bad": lambda: None})
    assert path.read_bytes() == before
    assert sorted(f.name for f in path.parent.iterdir()) == ["step_10.pt"]


def test_latest_checkpoint_ignores_temporaries_and_orders_numerically(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for n in (9, 100, 20):
        (folder / f"step_{n}.pt").write_bytes(b"x")
    (folder / ".step_500.pt.abc.tmp").write_bytes(b"partial")  # a save killed mid-write
    assert latest_checkpoint(tmp_path) == folder / "step_100.pt"
    assert latest_checkpoint(tmp_path / "nowhere") is None


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "step_1.pt")
    assert "does not exist" in _one_line(e)
    with pytest.raises(CheckpointError) as e:
        load_policy(tmp_path)
    assert "no checkpoint" in _one_line(e)


#: fixed random bytes (os.urandom made the input, and torch's warnings about it, vary per run)
_GARBAGE = random.Random(0).randbytes(2048)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_is_one_clear_error(tmp_path: Path, damage: str) -> None:
    path = save_checkpoint(checkpoint_path(tmp_path, 10), _payload())
    data = path.read_bytes()
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": _GARBAGE, "empty": b""}[damage]
    )
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    assert "corrupt" in _one_line(e) and str(path) in str(e.value)
    with pytest.raises(CheckpointError):
        load_policy(tmp_path)


def test_foreign_and_future_files_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(other)
    assert "not a domrand checkpoint" in _one_line(e)
    future = tmp_path / "future.pt"
    torch.save({**_payload(), "format_version": FORMAT_VERSION + 1}, future)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(future)
    assert "format version" in _one_line(e)


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({**_payload(), "extra": Path("/")}, evil)  # an arbitrary class: not weights-only
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(evil)
    assert "weights-only" in _one_line(e)


def test_mismatched_weights_are_one_clear_error(tmp_path: Path) -> None:
    payload = _payload(hidden=8)
    payload["model"] = build_policy(NetConfig(4, 1, hidden=16)).state_dict()
    path = save_checkpoint(checkpoint_path(tmp_path, 10), payload)
    with pytest.raises(CheckpointError) as e:
        load_policy(path)
    assert "do not match" in _one_line(e)
    payload = _payload()
    del payload["run_info"]["net_config"]
    path = save_checkpoint(checkpoint_path(tmp_path, 11), payload)
    with pytest.raises(CheckpointError) as e:
        load_policy(path)
    assert "run_info" in _one_line(e)


def test_load_policy_from_a_run_dir_gives_the_run_info(run_dir: Path) -> None:
    policy, info = load_policy(run_dir)
    assert not policy.training
    assert info.env_id == ENV_ID
    assert info.net_config.kind == "lstm" and info.net_config.hidden == 8
    assert info.control_period == pytest.approx(0.02)
    assert info.obs_low == [-math.inf] * 4 and info.obs_high == [math.inf] * 4
    assert info.act_low == [-1.0] and info.act_high == [1.0]
    assert info.env_steps == 256 and info.seed == 0
    assert info.domrand_version == domrand.__version__
    assert info.spec == domrand.load_spec(domrand.default_spec_path(ENV_ID)).to_dict()
    assert info.config["hidden"] == 8
    # the same policy from the file itself, and from the checkpoints folder
    ckpt = latest_checkpoint(run_dir)
    assert ckpt is not None and ckpt.name == "step_256.pt"
    p2, _ = load_policy(ckpt)
    p3, _ = load_policy(run_dir / "checkpoints")
    for a, b, c in zip(
        policy.state_dict().values(), p2.state_dict().values(), p3.state_dict().values()
    ):
        assert torch.equal(a, b) and torch.equal(a, c)
    # the normalizer statistics travelled with the weights
    assert float(policy.obs_norm.count) > 1


def test_run_dir_layout(run_dir: Path) -> None:
    assert (run_dir / "config.yaml").is_file()
    assert (
        TrainConfig.from_dict(__import__("yaml").safe_load((run_dir / "config.yaml").read_text()))
        == TINY
    )
    assert domrand.load_spec(run_dir / "spec.yaml").to_dict() == (
        domrand.load_spec(domrand.default_spec_path(ENV_ID)).to_dict()
    )
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("env_steps,iteration,") and "faults" in lines[0]
    assert [int(x.split(",")[0]) for x in lines[1:]] == [128, 256]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "step_128.pt",
        "step_256.pt",
    ]

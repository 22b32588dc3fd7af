"""Training runs: resume (step count, determinism), mismatches, fault accounting, configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import domrand
from domrand.errors import CheckpointError, ConfigError, DomrandError
from domrand.policies.checkpoint import latest_checkpoint, load_checkpoint
from domrand.policies.config import TrainConfig, load_config
from domrand.policies.ppo import UpdateStats
from domrand.policies.rollout import Episode
from domrand.policies.train import _metrics_row, train

ENV_ID = "domrand/CartPole-v0"
SPEC = domrand.default_spec_path(ENV_ID)
TINY = TrainConfig(
    total_steps=512, num_envs=2, num_steps=64, hidden=8, epochs=2, batch_size=64, seq_len=16,
    checkpoint_every=256,
)  # fmt: skip


class Crash(Exception):
    """Stands in for a killed process."""


def _metrics_steps(run: Path) -> list[int]:
    lines = (run / "metrics.csv").read_text().splitlines()[1:]
    return [int(line.split(",")[0]) for line in lines]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    ckpt = latest_checkpoint(run)
    assert ckpt is not None
    return load_checkpoint(ckpt)["model"]


def test_resume_continues_the_step_count(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = train(TINY, run, spec=SPEC, progress=False)
    assert first.env_steps == 512
    more = train(TINY.replace(total_steps=1024), run, spec=SPEC, resume=True, progress=False)
    assert more.env_steps == 1024 and more.iterations == 8
    assert _metrics_steps(run) == [128 * i for i in range(1, 9)]
    assert load_config(run / "config.yaml").total_steps == 1024


def test_a_crashed_run_resumes_to_the_same_weights_as_an_uninterrupted_one(tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    train(TINY, straight, spec=SPEC, progress=False)

    crashed = tmp_path / "crashed"

    def crash_after_iteration_3(row: dict) -> None:
        if row["iteration"] == 3:
            raise Crash

    with pytest.raises(Crash):
        train(TINY, crashed, spec=SPEC, progress=False, callback=crash_after_iteration_3)
    # the last checkpoint is at iteration 2 (256 steps); iteration 3 was logged, then lost
    assert latest_checkpoint(crashed).name == "step_256.pt"  # type: ignore[union-attr]
    assert _metrics_steps(crashed) == [128, 256, 384]
    result = train(TINY, crashed, spec=SPEC, resume=True, progress=False)
    assert result.env_steps == 512
    assert _metrics_steps(crashed) == [128, 256, 384, 512]  # the lost row was re-done once
    a, b = _weights(straight), _weights(crashed)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_refuses_a_different_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(TINY.replace(total_steps=256), run, spec=SPEC, progress=False)
    with pytest.raises(DomrandError, match="already holds a run"):
        train(TINY, run, spec=SPEC, progress=False)
    with pytest.raises(CheckpointError, match="hidden=8") as e:
        train(TINY.replace(hidden=16), run, spec=SPEC, resume=True, progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="spec"):
        train(TINY, run, spec=None, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(TINY, tmp_path / "empty", spec=SPEC, resume=True, progress=False)


def test_resume_from_a_corrupt_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(TINY.replace(total_steps=256), run, spec=SPEC, progress=False)
    ckpt = latest_checkpoint(run)
    assert ckpt is not None
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt") as e:
        train(TINY, run, spec=SPEC, resume=True, progress=False)
    assert "\n" not in str(e.value)


def test_resume_before_the_first_checkpoint_restarts_from_zero(tmp_path: Path) -> None:
    run = tmp_path / "run"

    def crash(row: dict) -> None:
        raise Crash

    with pytest.raises(Crash):
        train(TINY, run, spec=SPEC, progress=False, callback=crash)
    assert latest_checkpoint(run) is None
    result = train(TINY, run, spec=SPEC, resume=True, progress=False)
    assert result.env_steps == 512
    assert _metrics_steps(run) == [128, 256, 384, 512]


def test_only_the_last_checkpoints_are_kept(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = TINY.replace(total_steps=640, checkpoint_every=128, keep_checkpoints=2)
    train(cfg, run, spec=SPEC, progress=False)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step_512.pt",
        "step_640.pt",
    ]


def test_mlp_policy_trains_and_async_vectorization_works(tmp_path: Path) -> None:
    cfg = TINY.replace(policy="mlp", vectorization="async", total_steps=256)
    result = train(cfg, tmp_path / "run", spec=SPEC, progress=False)
    assert result.env_steps == 256
    assert load_checkpoint(result.checkpoint)["run_info"]["net_config"]["kind"] == "mlp"  # type: ignore[arg-type]


def test_physics_faults_are_counted_and_kept_out_of_returns() -> None:
    eps = [
        Episode(0, 100.0, 100, False, False, {}),
        Episode(1, 3.0, 3, True, False, {}),  # the simulator broke: not a policy outcome
        Episode(0, 300.0, 300, False, True, {}),
    ]
    stats = UpdateStats(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1)
    policy = domrand.policies.networks.build_policy(domrand.policies.networks.NetConfig(4, 1))
    opt = torch.optim.Adam(policy.parameters())
    row = _metrics_row(eps, stats, 1, 128, opt, policy)
    assert row["faults"] == 1 and row["episodes"] == 2
    assert row["return_mean"] == 200.0 and row["success_rate"] == 0.5


# ---------------------------------------------------------------------- configs
def test_config_file_overrides_defaults_and_checks_keys(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("hidden: 32\nlearning_rate: 1\ntarget_kl: 0.02\n")
    cfg = load_config(path)
    assert cfg.hidden == 32 and cfg.learning_rate == 1.0 and cfg.target_kl == 0.02
    assert isinstance(cfg.learning_rate, float)
    path.write_text("hiden: 32\n")
    with pytest.raises(ConfigError, match="did you mean 'hidden'"):
        load_config(path)
    path.write_text("hidden: big\n")
    with pytest.raises(ConfigError, match="hidden must be int"):
        load_config(path)
    path.write_text("gamma: 1.5\n")
    with pytest.raises(ConfigError, match=r"gamma must be a number in \[0, 1\]"):
        load_config(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)
    path.write_text("a: [\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_config_round_trips_and_derives_iterations() -> None:
    cfg = TrainConfig(total_steps=1000, num_envs=4, num_steps=100, checkpoint_every=900)
    assert cfg.batch == 400 and cfg.iterations == 3 and cfg.checkpoint_iters == 2
    assert TrainConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="num_envs"):
        cfg.replace(num_envs=0)
    with pytest.raises(ConfigError, match="unknown config key"):
        cfg.replace(envs=3)

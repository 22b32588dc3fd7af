"""``domrand train`` / ``domrand eval``: outputs, one-line errors, and kill -9 then --resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import domrand
from domrand.cli import main
from domrand.policies.checkpoint import latest_checkpoint, load_checkpoint

ENV_ID = "domrand/CartPole-v0"
SCRIPT = Path(sys.executable).with_name("domrand")
TINY = {"num_envs": 2, "num_steps": 64, "hidden": 8, "epochs": 1, "batch_size": 64,
        "seq_len": 16, "checkpoint_every": 128}  # fmt: skip


def assert_one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("domrand: error:")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "run.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_config: Path) -> Path:
    run = tmp_path_factory.mktemp("trained") / "run"
    args = ["train", "--env", ENV_ID, "--config", str(tiny_config), "--steps", "256"]
    assert main([*args, "--out", str(run), "--quiet"]) == 0
    return run


# ---------------------------------------------------------------------- train
def test_train_writes_a_run_and_prints_a_summary(
    tiny_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    argv = ["train", "--env", ENV_ID, "--config", str(tiny_config), "--steps", "0.256k"]
    assert main([*argv, "--out", str(run), "--seed", "3"]) == 0
    out = capsys.readouterr()
    assert "256 env steps" in out.out and "step_256.pt" in out.out
    assert "train: 256/256 steps" in out.err  # progress lines when not on a terminal
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["seed"] == 3 and cfg["total_steps"] == 256 and cfg["hidden"] == 8
    assert (run / "spec.yaml").is_file() and (run / "metrics.csv").is_file()


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["--env", "domrand/CartPol-v0"], ["unknown env", "did you mean"]),
        (["--env", ENV_ID, "--steps", "lots"], ["--steps", "whole number"]),
        (["--env", ENV_ID, "--steps", "0"], ["total_steps"]),
        (["--env", ENV_ID, "--seed", "-3"], ["seed"]),
        (["--env", ENV_ID, "--config", "missing.yaml"], ["missing.yaml", "not found"]),
        (["--env", ENV_ID, "--spec", "missing_spec.yaml"], ["missing_spec.yaml"]),
        (["--steps", "100"], ["--env is required"]),
        (["--env", ENV_ID, "--resume"], ["nothing to resume"]),
    ],
)
def test_train_bad_inputs_are_one_line_errors(
    argv: list[str],
    needles: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", *argv, "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert_one_error_line(capsys.readouterr().err, *needles)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_train_bad_files_are_one_line_errors(
    tmp_path: Path, trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_spec = tmp_path / "bad.yaml"
    bad_spec.write_text("env: domrand/CartPole-v0\nparameters:\n  pole.mas: 0.2\n")
    base = ["train", "--env", ENV_ID, "--quiet", "--out"]
    assert main([*base, str(tmp_path / "a"), "--spec", str(bad_spec)]) == 2
    assert_one_error_line(capsys.readouterr().err, "pole.mas", "did you mean")
    bad_cfg = tmp_path / "cfg.yaml"
    bad_cfg.write_text("hiden: 3\n")
    assert main([*base, str(tmp_path / "b"), "--config", str(bad_cfg)]) == 2
    assert_one_error_line(capsys.readouterr().err, "hiden", "did you mean 'hidden'")
    assert main([*base, str(trained)]) == 2
    assert_one_error_line(capsys.readouterr().err, "already holds a run", "--resume")


def test_console_script_error_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(SCRIPT), "train", "--env", ENV_ID, "--steps", "-5", "--out", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, "total_steps")


# ---------------------------------------------------------------------- eval
def test_eval_prints_every_reality_and_nominal(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(trained), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    for col in ("mean return", "std", "success rate"):
        assert col in out
    assert "nominal" in out
    for name in domrand.realities(ENV_ID):
        assert f"reality: {name}" in out


def test_eval_one_domain_or_reality_as_json(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(trained), "--reality", "laggy", "--episodes", "3", "--json"]) == 0
    (res,) = json.loads(capsys.readouterr().out)
    assert res["condition"] == "reality: laggy" and res["episodes"] == 3
    assert len(res["returns"]) == 3 and 0 <= res["success_rate"] <= 1
    assert res["mean"] == pytest.approx(sum(res["returns"]) / 3)
    domain = tmp_path / "d.yaml"
    domain.write_text("env: domrand/CartPole-v0\nparameters:\n  pole.mass: 0.15\n")
    assert main(["eval", str(trained), "--domain", str(domain), "--episodes", "1", "--json"]) == 0
    (res,) = json.loads(capsys.readouterr().out)
    assert res["condition"] == f"domain: {domain}"


def test_eval_bad_inputs_are_one_line_errors(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(trained), "--reality", "lagy"]) == 2
    assert_one_error_line(capsys.readouterr().err, "lagy", "did you mean 'laggy'")
    assert main(["eval", str(trained), "--episodes", "0"]) == 2
    assert_one_error_line(capsys.readouterr().err, "--episodes")
    assert main(["eval", str(tmp_path / "nope")]) == 2
    assert_one_error_line(capsys.readouterr().err, "neither a run directory nor a checkpoint")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["eval", str(bad)]) == 2
    assert_one_error_line(capsys.readouterr().err, "corrupt")


# ---------------------------------------------------------------------- kill -9, then --resume
def test_sigkill_then_resume_loses_at_most_one_interval_and_ends_at_the_same_step(
    tmp_path: Path,
) -> None:
    interval, total = 1024, 40960  # 4 iterations of 256 steps per checkpoint, 160 iterations
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "num_envs": 4, "checkpoint_every": interval}))
    run = tmp_path / "run"
    cmd = [str(SCRIPT), "train", "--env", ENV_ID, "--config", str(cfg), "--steps", str(total)]
    cmd += ["--out", str(run), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            latest = latest_checkpoint(run)
            if latest is not None and int(latest.stem.split("_")[1]) >= 2 * interval:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    at_kill = latest_checkpoint(run)
    assert at_kill is not None
    saved = int(at_kill.stem.split("_")[1])
    logged = [int(r.split(",")[0]) for r in (run / "metrics.csv").read_text().splitlines()[1:] if r]
    assert saved < total
    assert max(logged) - saved <= interval  # the work lost with the process

    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run} from step {saved}" in resumed.stderr
    assert f"{total} env steps" in resumed.stdout
    final = latest_checkpoint(run)
    assert final is not None and final.name == f"step_{total}.pt"
    assert load_checkpoint(final)["trainer"]["env_steps"] == total
    steps = [int(r.split(",")[0]) for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == list(range(256, total + 1, 256))  # every iteration exactly once
    assert not list((run / "checkpoints").glob("*.tmp"))

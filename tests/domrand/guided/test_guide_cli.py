"""``domrand guide adr|autodr``: outputs, one-line errors (exit 2), and kill -9 then --resume with
particles, discriminator and ranges intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import domrand
from domrand.cli import main
from domrand.policies.checkpoint import latest_checkpoint, load_checkpoint

ENV_ID = "domrand/CartPole-v0"
SPEC = str(domrand.default_spec_path(ENV_ID))
SCRIPT = Path(sys.executable).with_name("domrand")
TRAIN = {"total_steps": 512, "num_envs": 2, "num_steps": 64, "hidden": 8, "epochs": 1,
         "batch_size": 64, "seq_len": 16, "checkpoint_every": 128}  # fmt: skip
ADR = {"round_every": 128, "rollout_steps": 10, "rollout_envs": 3, "eval_episodes": 2,
       "svpg": {"num_particles": 3, "hidden": 8, "rollout_len": 2},
       "discriminator": {"hidden": 16, "updates": 3}}  # fmt: skip
AUTODR = {"metric": "return", "t_low": 0.0, "t_high": 0.5, "buffer_size": 2, "delta": 0.25,
          "eval_episodes": 2}  # fmt: skip


def _config(tmp_path: Path, method: dict, **train: int) -> Path:
    path = tmp_path / "guide_config.yaml"
    path.write_text(yaml.safe_dump({**method, "train": {**TRAIN, **train}}))
    return path


def _one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("domrand: error:") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_adr_and_autodr_write_their_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for method, settings, files in (
        ("adr", ADR, ("particles.npz", "particles.png")),
        ("autodr", AUTODR, ("ranges.csv", "ranges.png")),
    ):
        out = tmp_path / method
        argv = ["guide", method, "--env", ENV_ID, "--spec", SPEC, "--out", str(out)]
        argv += ["--config", str(_config(tmp_path, settings)), "--reality", "heavy_pole"]
        assert main(argv) == 0
        printed = capsys.readouterr().out
        assert f"{method} on {ENV_ID}: 512 training" in printed and "reality: heavy_pole" in printed
        for f in ("guide.yaml", "spec.yaml", "spec_latest.yaml", "report.json", *files):
            assert (out / f).is_file(), f
        assert list((out / "specs").glob("spec_*.yaml"))
        report = json.loads((out / "report.json").read_text())
        assert report["training_env_steps"] == 512
        assert set(report["returns"]) >= {"nominal", "reality: heavy_pole"}
        record = yaml.safe_load((out / "guide.yaml").read_text())
        assert record["method"] == method and record["train"]["total_steps"] == 512
        domrand.load_spec(out / "spec_latest.yaml", env=ENV_ID)
        assert latest_checkpoint(out / "policy") is not None


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--set", "svpg.lr=fast"], ["svpg.lr", "wrong type"]),
        (["--set", "roundevery=3"], ["roundevery", "did you mean 'round_every'"]),
        (["--set", "nonsense"], ["KEY=VALUE"]),
        (["--set", "train.num_env=2"], ["num_env", "did you mean 'num_envs'"]),
        (["--set", "svpg.num_particles=0"], ["num_particles"]),
        (["--recorded", "somewhere"], ["recorded"]),
        (["--reality", "moon"], ["moon"]),
    ],
)
def test_adr_bad_inputs_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], needles: list[str]
) -> None:
    argv = ["guide", "adr", "--env", ENV_ID, "--spec", SPEC, "--out", str(tmp_path / "o")]
    assert main([*argv, *extra]) == 2
    _one_error_line(capsys.readouterr().err, *needles)
    assert not (tmp_path / "o" / "policy").exists()


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--set", "metric=return"], ["t_low and t_high"]),
        (["--set", "metric=reward"], ["metric", "success"]),
        (["--set", "knobs=[cart.mas]"], ["did you mean 'cart.mass'"]),
        (["--set", "start=middle"], ["start"]),
        (["--config", "missing.yaml"], ["missing.yaml", "not found"]),
        (["--resume"], ["nothing to resume"]),
    ],
)
def test_autodr_bad_inputs_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needles: list[str]
) -> None:
    base = ["guide", "autodr", "--env", ENV_ID, "--spec", SPEC, "--out", str(tmp_path / "o")]
    assert main([*base, *argv]) == 2
    _one_error_line(capsys.readouterr().err, *needles)


def test_bad_env_spec_and_existing_output_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "o")
    assert (
        main(["guide", "autodr", "--env", "domrand/CartPol-v0", "--spec", SPEC, "--out", out]) == 2
    )
    _one_error_line(capsys.readouterr().err, "CartPol-v0")
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters:\n  pole.mas: {dist: uniform, low: 0.1, high: 0.2}\n")
    assert main(["guide", "adr", "--env", ENV_ID, "--spec", str(bad), "--out", out]) == 2
    _one_error_line(capsys.readouterr().err, "pole.mas", "did you mean")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "guide.yaml").write_text("method: adr\n")
    assert main(["guide", "adr", "--env", ENV_ID, "--spec", SPEC, "--out", out]) == 2
    _one_error_line(capsys.readouterr().err, "already holds a guide run")


# ---------------------------------------------------------------------- kill -9, then --resume
def _guide_state(run: Path) -> dict:
    return load_checkpoint(latest_checkpoint(run / "policy"))["guide"]  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["adr", "autodr"])
def test_sigkill_then_resume_keeps_the_guide_state(tmp_path: Path, method: str) -> None:
    """Kill a guide run after a checkpoint, resume it: it continues from the saved particles,
    discriminator (weights and optimizer) or ranges, and ends where an uninterrupted run ends."""
    settings = ADR if method == "adr" else AUTODR
    cfg = _config(tmp_path, settings, total_steps=4096, checkpoint_every=512)
    base = [str(SCRIPT), "guide", method, "--env", ENV_ID, "--spec", SPEC, "--config", str(cfg)]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*base, "--out", str(killed)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            latest = latest_checkpoint(killed / "policy")
            if latest is not None and int(latest.stem.split("_")[1]) >= 1024:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    at_kill = _guide_state(killed)
    saved_steps = int(latest_checkpoint(killed / "policy").stem.split("_")[1])  # type: ignore[union-attr]
    assert saved_steps < 4096
    resumed = subprocess.run([*base, "--out", str(killed), "--resume"], capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"from step {saved_steps}" in resumed.stderr
    final = _guide_state(killed)
    straight = tmp_path / "straight"
    done = subprocess.run([*base, "--out", str(straight)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    reference = _guide_state(straight)
    if method == "adr":
        n_saved = at_kill["rounds"]
        assert n_saved >= 1
        # the rounds before the kill are kept as they were, and the run went on from them
        assert final["history"][:n_saved] == at_kill["history"]
        assert final["rounds"] == reference["rounds"] == 4096 // 128
        # particles, discriminator weights and Adam state end as in the uninterrupted run
        torch.testing.assert_close(final["svpg"]["points"], reference["svpg"]["points"])
        for key in ("module", "optimizer"):
            torch.testing.assert_close(final["discriminator"][key], reference["discriminator"][key])
    else:
        assert at_kill["core"]["updates"] >= 1
        assert final["history"][: len(at_kill["history"])] == at_kill["history"]
        assert final["core"] == reference["core"]
        rows = (killed / "ranges.csv").read_text().splitlines()
        assert len(rows) == 1 + 4096 // 128  # one row per update, none duplicated by the resume
    report = json.loads((killed / "report.json").read_text())
    assert report["training_env_steps"] == 4096
    assert np.isfinite(report["returns"]["nominal"]["mean"])

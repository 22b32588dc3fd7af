"""``domrand guide cmaes|simopt``: outputs, one-line errors for bad input (exit 2), and kill -9
then ``--resume`` continuing from the last completed step."""

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
import yaml

import domrand
from domrand.cli import main
from domrand.target import Trajectory

ENV = "domrand/CartPole-v0"
SCRIPT = Path(sys.executable).with_name("domrand")
TRAIN = {"num_envs": 2, "num_steps": 64, "hidden": 8, "epochs": 1, "batch_size": 64,
         "seq_len": 16}  # fmt: skip
SPEC = {
    "env": ENV,
    "parameters": {
        "pole.mass": {"dist": "loguniform", "low": 0.05, "high": 0.2},
        "motor.gain": {"dist": "uniform", "low": 7.5, "high": 15.0},
    },
}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A spec, a pinned spec, a 5-d recording, an empty folder, configs for both methods."""
    out = {"spec": tmp_path / "spec.yaml", "pinned": tmp_path / "pinned.yaml"}
    out["spec"].write_text(yaml.safe_dump(SPEC))
    out["pinned"].write_text(yaml.safe_dump({"env": ENV, "parameters": {"pole.mass": 0.1}}))
    out["rec5"] = tmp_path / "rec5"
    Trajectory(np.zeros((11, 5)), np.zeros((10, 1)), np.zeros(10),
               np.arange(11) * 0.02).save(out["rec5"] / "ep0.npz")  # fmt: skip
    out["empty"] = tmp_path / "empty"
    out["empty"].mkdir()
    out["simopt"] = tmp_path / "simopt.yaml"
    out["simopt"].write_text(yaml.safe_dump({
        "iterations": 1, "real_rollouts": 2, "horizon": 60, "train_steps": 256,
        "final_steps": 0, "updates": 6, "samples": 48, "train": TRAIN}))  # fmt: skip
    out["cmaes"] = tmp_path / "cmaes.yaml"
    out["cmaes"].write_text(yaml.safe_dump({
        "generations": 1, "popsize": 2, "pretrain_steps": 128, "finetune_steps": 128,
        "eval_rollouts": 1, "horizon": 30, "train": TRAIN}))  # fmt: skip
    return out


def _one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("domrand: error:") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("method", "target", "spec", "extra", "needles"),
    [
        ("simopt", ["--recorded", "rec5"], "spec", [], ("observation space", "(5,)", "(4,)")),
        ("simopt", ["--recorded", "empty"], "spec", [], ("recording is empty",)),
        ("simopt", ["--reality", "heavy_pole"], "pinned", [], ("nothing to tune", "pinned.yaml")),
        ("cmaes", ["--reality", "heavy_pole"], "pinned", [], ("nothing to tune", "parameters")),
        ("cmaes", ["--recorded", "rec5"], "spec", [], ("a recording cannot",)),
        ("simopt", [], "spec", [], ("give a target",)),
        ("simopt", ["--reality", "heavy"], "spec", [], ("did you mean 'heavy_pole'",)),
        (
            "simopt",
            ["--reality", "heavy_pole"],
            "spec",
            ["--set", "iterations=4"],
            ("max_real_rollouts",),
        ),
        ("cmaes", ["--reality", "heavy_pole"], "spec", ["--set", "mode=cem"], ("mode",)),
        (
            "simopt",
            ["--reality", "heavy_pole"],
            "spec",
            ["--set", "knobs=[pole.mas]"],
            ("did you mean 'pole.mass'",),
        ),
    ],
)
def test_bad_inputs_are_one_line_errors(
    tmp_path: Path,
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    method: str,
    target: list[str],
    spec: str,
    extra: list[str],
    needles: tuple[str, ...],
) -> None:
    target = [files.get(t, t) for t in target]  # type: ignore[misc]
    out = tmp_path / "out"
    argv = ["guide", method, "--env", ENV, "--spec", str(files[spec]), "--out", str(out)]
    assert main([*argv, *map(str, target), *extra]) == 2
    _one_error_line(capsys.readouterr().err, *needles)
    assert not out.exists()  # nothing written before the inputs are known to be good


def test_cmaes_cli_writes_its_outputs_and_refuses_to_overwrite(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["guide", "cmaes", "--env", ENV, "--spec", str(files["spec"]), "--out", str(out),
            "--reality", "heavy_pole", "--config", str(files["cmaes"])]  # fmt: skip
    assert main(argv) == 0
    assert "cmaes (bilevel) on domrand/CartPole-v0: 1 generations" in capsys.readouterr().out
    for name in ("guide.yaml", "state.json", "spec.yaml", "best_spec.yaml", "phi.csv",
                 "phi.png", "report.json", "iter_0/spec.yaml", "iter_1/spec.yaml"):  # fmt: skip
        assert (out / name).exists(), name
    report = json.loads((out / "report.json").read_text())
    assert report["budget"]["real_rollouts"] == 2 and report["target"] == "reality: heavy_pole"
    domrand.load_spec(out / "spec.yaml")  # what `domrand train --spec` reads
    assert main(argv) == 2
    _one_error_line(capsys.readouterr().err, "already holds a guide run", "--resume")
    # a finished run resumes to the same result
    assert main([*argv, "--resume"]) == 0
    assert json.loads((out / "report.json").read_text())["budget"]["real_rollouts"] == 2


@pytest.mark.slow
def test_simopt_sigkill_then_resume_ends_like_an_uninterrupted_run(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    """Kill SimOpt after a couple of phi updates: the resumed run reuses the saved real rollouts
    (none repeated), continues with the next update, and ends exactly where a run that was never
    killed ends."""
    base = [str(SCRIPT), "guide", "simopt", "--env", ENV, "--spec", str(files["spec"]),
            "--reality", "heavy_pole", "--config", str(files["simopt"])]  # fmt: skip
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*base, "--out", str(killed)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    at_kill = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                at_kill = json.loads((killed / "state.json").read_text())
            except (OSError, ValueError):
                at_kill = None
            if at_kill is not None and at_kill["update"] >= 2 and at_kill["step"] == "update":
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    at_kill = json.loads((killed / "state.json").read_text())  # what was saved last
    assert at_kill["iteration"] == 0 and 2 <= at_kill["update"] < 6
    resumed = subprocess.run([*base, "--out", str(killed), "--resume"], capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    straight = tmp_path / "straight"
    done = subprocess.run([*base, "--out", str(straight)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    final = json.loads((killed / "state.json").read_text())
    reference = json.loads((straight / "state.json").read_text())
    assert final["budget"]["real_rollouts"] == 2  # the real rollouts were not repeated
    assert final["mean"] == reference["mean"] and final["cov"] == reference["cov"]
    assert final["budget"]["sim_steps"] == reference["budget"]["sim_steps"]
    rows = (killed / "phi.csv").read_text().splitlines()
    assert len(rows) == 3  # header, iteration 0, iteration 1: none duplicated by the resume

"""kill -9 at random moments, then --resume: a fast version of ``benchmarks/kill_resume.py``.

``domrand train`` runs as a subprocess and is SIGKILLed 3 times at seeded random moments; after
every kill the run directory must pass the benchmark's corruption checks, and the last
``--resume`` must finish with the right step count and the uninterrupted run's exact weights.
The checker itself is tested on hand-made damage, so a pass means something.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import domrand
from domrand.policies.config import TrainConfig
from domrand.policies.train import train

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "kill_resume.py"
ENV_ID = "domrand/CartPole-v0"


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kill_resume_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_checker_finds_damage(
    tmp_path: Path, harness: ModuleType, tiny_config: Callable[..., TrainConfig]
) -> None:
    cfg = tiny_config()
    run = tmp_path / "run"
    train(cfg, run, progress=False)
    clean = harness.check_run(run, "config.yaml")
    assert clean["problems"] == [] and clean["steps"] == {".": 256}
    # an interrupted save's temporary is fine (never listed), but counted
    (run / "checkpoints" / ".step_384.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    state = harness.check_run(run, "config.yaml")
    assert state["problems"] == [] and state["temporaries"] == 1
    # a torn checkpoint under a real name, a cut metrics row, a stray file: all reported
    (run / "checkpoints" / "step_256.pt").write_bytes(b"torn")
    with (run / "metrics.csv").open("a") as f:
        f.write("384,3,1.5\n")
    (run / "checkpoints" / "notes.txt").write_text("?")
    problems = " | ".join(harness.check_run(run, "config.yaml")["problems"])
    assert "step_256.pt: does not load" in problems
    assert "has 3 fields" in problems and "notes.txt: unexpected file" in problems


@pytest.mark.slow
def test_three_random_sigkills_then_resume(tmp_path: Path, harness: ModuleType) -> None:
    setup = harness.command_setups(scale=1 / 8)["train"]  # 1,024 steps, a checkpoint per 128
    # the uninterrupted reference, in-process (what the CLI runs with this config file)
    cfg = TrainConfig.from_dict({**setup["config"], "env": ENV_ID})
    train(cfg, tmp_path / "train_ref", spec=domrand.default_spec_path(ENV_ID), progress=False)
    result = harness.kill_loop(
        "train", setup, tmp_path, 3, np.random.default_rng(7), log=lambda _: None, timing=(2.0, 0.3)
    )
    for row in result["kills"]:
        assert row["ok"], row
    assert any(not r["finished_before_kill"] for r in result["kills"])  # something was killed
    final = result["final"]
    assert final["ok"], final["problems"]
    assert final["steps"] == {".": 1024}
    assert final["same_as_uninterrupted"] is True
    assert result["passed"]

"""Finding the policy of any run directory: train, guide and demo layouts, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import domrand
from domrand.errors import CheckpointError, DomrandError, UnknownKnobError
from domrand.reports.runs import find_policy_dir, load_run, resolve_knobs

from .conftest import copy_run


def test_a_training_run_is_its_own_policy_dir(tiny_run: Path) -> None:
    assert find_policy_dir(tiny_run) == tiny_run
    run = load_run(tiny_run)
    assert run.env_id == "domrand/CartPole-v0"
    assert run.spec is not None and run.training_range("pole.mass") == pytest.approx((0.05, 0.2))
    assert run.training_range("gravity") == (9.81, 9.81)  # pinned in the spec
    assert run.training_range("obs.bias") is None  # not in the spec


def test_guide_and_demo_layouts(tiny_run: Path, tmp_path: Path) -> None:
    guide = tmp_path / "guide"
    copy_run(tiny_run, guide / "policy")
    assert find_policy_dir(guide) == guide / "policy"
    # a report.json naming the final policy (as the guide saw the path) wins over policy/
    cma = tmp_path / "cma"
    copy_run(tiny_run, cma / "policy" / "gen_1" / "cand_0")
    copy_run(tiny_run, cma / "policy" / "gen_0" / "cand_2")
    report = {"policy": "/elsewhere/runs/cma/policy/gen_1/cand_0"}
    (cma / "report.json").write_text(json.dumps(report))
    assert find_policy_dir(cma) == cma / "policy" / "gen_1" / "cand_0"
    demo = tmp_path / "demo"
    copy_run(tiny_run, demo / "cartpole_lstm")
    (demo / "demo.json").write_text("{}")
    assert find_policy_dir(demo) == demo / "cartpole_lstm"
    assert load_run(demo).path == demo / "cartpole_lstm"


def test_missing_empty_ambiguous_and_corrupt_runs_are_refused(
    tiny_run: Path, tmp_path: Path
) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        find_policy_dir(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="not a run directory"):
        find_policy_dir(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no trained policy"):
        find_policy_dir(tmp_path / "empty")
    many = tmp_path / "many"
    copy_run(tiny_run, many / "a")
    copy_run(tiny_run, many / "b")
    with pytest.raises(CheckpointError, match="holds 2 runs"):
        find_policy_dir(many)
    bad = copy_run(tiny_run, tmp_path / "bad")
    for p in (bad / "checkpoints").iterdir():
        p.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_run(bad)


def test_a_spec_file_replaces_the_training_spec(tiny_run: Path, tmp_path: Path) -> None:
    path = tmp_path / "narrow.yaml"
    path.write_text(
        "env: domrand/CartPole-v0\nparameters:\n"
        "  pole.mass: {dist: uniform, low: 0.09, high: 0.11}\n"
    )
    run = load_run(tiny_run, spec=path)
    assert run.training_range("pole.mass") == pytest.approx((0.09, 0.11))
    assert run.training_range("cart.mass") is None
    assert str(path) in run.spec_source


def test_unknown_knobs_get_a_suggestion(tiny_run: Path) -> None:
    run = load_run(tiny_run)
    with pytest.raises(UnknownKnobError, match=r"did you mean 'pole\.mass'"):
        resolve_knobs(run, ["pole.mas"])
    with pytest.raises(DomrandError, match="twice"):
        resolve_knobs(run, ["pole.mass", "pole.mass"])
    assert [k.name for k in resolve_knobs(run, ["motor.gain"])] == ["motor.gain"]
    assert run.knobs["motor.gain"].nominal == domrand.knobs_for(run.env_id)["motor.gain"].nominal

"""The ``domrand`` command line: listings, spec validate/sample, demo, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import domrand
from domrand.cli import main

ENV_ID = "domrand/CartPole-v0"
SPEC = str(domrand.default_spec_path(ENV_ID))
SCRIPT = Path(sys.executable).with_name("domrand")

BAD_SPECS: dict[str, bytes] = {
    "unknown_knob": b"env: domrand/CartPole-v0\nparameters:\n  pole.mas: 0.2\n",
    "low_above_high": (
        b"env: domrand/CartPole-v0\nparameters:\n"
        b"  pole.mass: {dist: uniform, low: 0.3, high: 0.1}\n"
    ),
    "malformed_yaml": b"env: domrand/CartPole-v0\nparameters: [pole.mass, \n",
    "not_utf8": b"env: domrand/CartPole-v0\nparameters:\n  pole.mass: 0.2  # \xff\xfe\n",
    "out_of_range": b"env: domrand/CartPole-v0\nparameters:\n  pole.mass: -1.0\n",
    "empty": b"",
    "unknown_env": b"env: domrand/CartPol-v0\nparameters:\n  pole.mass: 0.2\n",
    "not_a_mapping": b"- pole.mass\n- 0.2\n",
    "duplicate_key": b"env: domrand/CartPole-v0\nparameters:\n  pole.mass: 0.2\n  pole.mass: 0.3\n",
}


def assert_one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("domrand: error:")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


# ---------------------------------------------------------------------- listings
def test_envs_lists_the_env_and_its_realities(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert ENV_ID in out
    for name in domrand.realities(ENV_ID):
        assert name in out
    assert str(len(domrand.knobs_for(ENV_ID))) in out


def test_knobs_lists_names_nominal_values_and_units(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["knobs", ENV_ID]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    for knob in domrand.knobs_for(ENV_ID).values():
        assert knob.name in rows, knob.name
        cells = [c.strip() for c in rows[knob.name].split("│")[1:-1]]
        assert float(cells[1]) == pytest.approx(knob.nominal)
        assert cells[2] == knob.unit


def test_knobs_of_an_unknown_env_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["knobs", "domrand/CartPole-v1"]) == 2
    assert_one_error_line(capsys.readouterr().err, "did you mean 'domrand/CartPole-v0'")


# ---------------------------------------------------------------------- spec validate
def test_spec_validate_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "validate", SPEC]) == 0
    captured = capsys.readouterr()
    spec = domrand.load_spec(SPEC)
    assert "valid spec" in captured.out
    for name in spec.knob_names():
        assert name in captured.out
    assert f"{len(spec.knob_names())} knobs" in captured.out
    assert f"{len(spec.params())} tunable" in captured.out
    assert captured.err == ""


def test_spec_validate_recognizes_a_domain_file(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(domrand.realities(ENV_ID)["laggy"])
    assert main(["spec", "validate", path]) == 0
    assert "valid domain file" in capsys.readouterr().out


@pytest.mark.parametrize("case", BAD_SPECS)
def test_spec_validate_bad_file_is_one_line_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / f"{case}.yaml"
    path.write_bytes(BAD_SPECS[case])
    assert main(["spec", "validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert_one_error_line(captured.err, str(path))
    assert captured.out == ""


def test_spec_validate_names_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = {
        "unknown_knob": "did you mean 'pole.mass'",
        "low_above_high": "low > high",
        "not_utf8": "UTF-8",
        "malformed_yaml": "YAML",
    }
    for case, needle in expected.items():
        path = tmp_path / f"{case}.yaml"
        path.write_bytes(BAD_SPECS[case])
        main(["spec", "validate", str(path)])
        assert needle in capsys.readouterr().err, case


def test_spec_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.yaml"
    assert main(["spec", "validate", str(path)]) == 2
    assert_one_error_line(capsys.readouterr().err, str(path))


def test_spec_validate_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "validate", str(tmp_path)]) == 2
    assert_one_error_line(capsys.readouterr().err, str(tmp_path))


def test_spec_validate_against_an_unknown_env(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "validate", SPEC, "--env", "domrand/Nope-v0"]) == 2
    assert_one_error_line(capsys.readouterr().err)


# ---------------------------------------------------------------------- spec sample
def _sample(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["spec", "sample", SPEC, *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def test_spec_sample_prints_n_domains_reproducibly(capsys: pytest.CaptureFixture[str]) -> None:
    out = _sample(capsys, "-n", "5", "--seed", "3")
    assert all(f"#{i}" in out for i in range(5))
    assert "#5" not in out
    pole_row = next(line for line in out.splitlines() if "pole.mass" in line)
    values = [float(c) for c in pole_row.split("│")[2:-1]]
    assert len(values) == 5 and len(set(values)) == 5
    assert all(0.05 <= v <= 0.2 for v in values)
    assert _sample(capsys, "-n", "5", "--seed", "3") == out
    assert _sample(capsys, "-n", "5", "--seed", "4") != out


def test_spec_sample_json(capsys: pytest.CaptureFixture[str]) -> None:
    domains = json.loads(_sample(capsys, "-n", "5", "--seed", "3", "--json"))
    spec = domrand.load_spec(SPEC)
    assert isinstance(domains, list) and len(domains) == 5
    for d in domains:
        assert set(d) == set(spec.knob_names())
    assert len({d["pole.mass"] for d in domains}) == 5
    again = json.loads(_sample(capsys, "-n", "5", "--seed", "3", "--json"))
    assert again == domains


def test_spec_sample_rejects_n_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "sample", SPEC, "-n", "0"]) == 2
    assert_one_error_line(capsys.readouterr().err, "-n")


def test_spec_sample_rejects_a_negative_seed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "sample", SPEC, "--seed", "-1"]) == 2
    assert_one_error_line(capsys.readouterr().err, "seed")


# ---------------------------------------------------------------------- demo
def test_demo_writes_demo_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    # a tiny training budget: this checks the job's plumbing (the learning test checks learning)
    assert main(["demo", "--out", str(out), "--episodes", "1", "--steps", "2048"]) == 0
    report = json.loads((out / "demo.json").read_text())
    assert report["env"] == ENV_ID
    assert report["env_steps"] == 2048
    conditions = [r["condition"] for r in report["results"]]
    assert conditions[:2] == ["nominal", "training spec (DR)"]
    assert len(conditions) == 2 + len(domrand.realities(ENV_ID))
    for r in report["results"]:
        assert len(r["returns"]) == 1
        assert 0 <= r["returns"][0] <= 500
        assert 0 <= r["success_rate"] <= 1
    assert report["results"][0]["lqr_mean"] == 500.0  # the LQR balances the nominal model
    assert (out / "cartpole_lstm" / "checkpoints").is_dir()
    assert "demo.json" in capsys.readouterr().out
    # running it again replaces the demo's own previous run instead of refusing
    assert main(["demo", "--out", str(out), "--episodes", "1", "--steps", "1024"]) == 0
    assert json.loads((out / "demo.json").read_text())["env_steps"] == 1024


def test_demo_bad_arguments_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", str(tmp_path / "d"), "--episodes", "0"]) == 2
    assert_one_error_line(capsys.readouterr().err, "episodes")
    assert main(["demo", "--out", str(tmp_path / "d"), "--episodes", "1", "--seed", "-1"]) == 2
    assert_one_error_line(capsys.readouterr().err, "seed")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["demo", "--out", str(blocker), "--episodes", "1"]) == 2
    assert_one_error_line(capsys.readouterr().err, str(blocker))


# ---------------------------------------------------------------------- the real console script
def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_console_script_bad_spec(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(BAD_SPECS["unknown_knob"])
    proc = _run("spec", "validate", str(path))
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, str(path), "did you mean 'pole.mass'")
    assert proc.stdout == ""  # no pybullet banner either


def test_console_script_sample_json() -> None:
    proc = _run("spec", "sample", SPEC, "-n", "2", "--seed", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert len(json.loads(proc.stdout)) == 2

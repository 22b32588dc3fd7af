"""Every ``domrand`` subcommand, given bad input, exits 2 with one ``domrand: error:`` line.

Missing files, bad numbers, unknown envs, output paths that cannot be written, corrupt or
tampered run directories: never a traceback. Argument-syntax errors are argparse's (usage line,
then ``error:``), also exit 2.
"""

from __future__ import annotations

import contextlib
import io
import math
import traceback
from pathlib import Path
from typing import Any

import pytest

import domrand
from domrand.cli import main
from domrand.policies.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    RunInfo,
    checkpoint_path,
    save_checkpoint,
)
from domrand.policies.networks import NetConfig, build_policy

ENV = "domrand/CartPole-v0"
SPEC = str(domrand.default_spec_path(ENV))


def _payload(**info_changes: Any) -> dict[str, Any]:
    net = NetConfig(4, 1, hidden=8, act_low=(-1.0,), act_high=(1.0,))
    info = RunInfo(
        env_id=ENV, net_config=net, spec=None, control_period=0.02,
        obs_low=[-math.inf] * 4, obs_high=[math.inf] * 4, act_low=[-1.0], act_high=[1.0],
        env_steps=64, seed=0, domrand_version=domrand.__version__,
    ).to_dict()  # fmt: skip
    info.update(info_changes)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "run_info": info,
        "model": build_policy(net).state_dict(),
    }


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of bad inputs, and a (synthetic, untrained) run directory ``run``."""
    w = tmp_path_factory.mktemp("cli_errors")
    (w / "afile").write_text("not a folder")
    (w / "nonempty").mkdir()
    (w / "nonempty" / "f").write_text("x")
    (w / "emptyrun").mkdir()
    (w / "corruptrun" / "checkpoints").mkdir(parents=True)
    checkpoint_path(w / "corruptrun", 5).write_bytes(b"garbage")
    save_checkpoint(checkpoint_path(w / "run", 64), _payload())
    save_checkpoint(checkpoint_path(w / "tampered", 64), _payload(control_period="fast"))
    (w / "unbound_scale.yaml").write_text(
        "parameters:\n  pole.mass: {dist: uniform, low: 0.5, high: 2.0, mode: scale}\n"
    )
    (w / "randomizing.yaml").write_text(
        "parameters:\n  pole.mass: {dist: uniform, low: 0.05, high: 0.2}\n"
    )
    (w / "pusher.yaml").write_text("env: domrand/Pusher-v0\nparameters:\n  gravity: 9.81\n")
    (w / "unknown_key.yaml").write_text("hiden: 3\n")
    (w / "bad_syntax.yaml").write_text("hidden: [\n")
    (w / "bad_timestamp.yaml").write_text("hidden: 2024-13-45\n")
    (w / "deep.yaml").write_text("[" * 5000 + "]" * 5000)
    return w


def _run(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` in-process; any exception escaping it fails the test with its traceback."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except SystemExit as e:  # argparse
        code = int(e.code or 0)
    except BaseException:
        pytest.fail(f"domrand {' '.join(argv)} raised:\n{traceback.format_exc()}")
    return code, out.getvalue(), err.getvalue()


#: (id, argv with {w} for the fixture folder, substrings of the error line)
CASES: list[Any] = [
    ("knobs-unknown-env", ["knobs", "domrand/Nope"], ["unknown env", "did you mean"]),
    ("validate-missing", ["spec", "validate", "{w}/missing.yaml"], ["no such file"]),
    ("validate-directory", ["spec", "validate", "{w}"], ["is a directory"]),
    ("validate-unknown-env", ["spec", "validate", SPEC, "--env", "domrand/Nope"], ["unknown env"]),
    ("validate-other-env", ["spec", "validate", "{w}/pusher.yaml", "--env", ENV],
     ["spec is for another env"]),
    ("sample-n-zero", ["spec", "sample", SPEC, "-n", "0"], ["-n must be at least 1"]),
    ("sample-negative-seed", ["spec", "sample", SPEC, "--seed", "-1"], ["non-negative"]),
    ("sample-unbound-scale", ["spec", "sample", "{w}/unbound_scale.yaml"],
     ["not bound to an env"]),
    ("sample-n-not-a-number", ["spec", "sample", SPEC, "-n", "abc"], ["invalid int value"]),
    ("render-grid", ["render", "--env", ENV, "-o", "{w}/x.png", "--grid", "0x0"], ["--grid"]),
    ("render-size", ["render", "--env", ENV, "-o", "{w}/x.png", "--size", "0"], ["--size"]),
    ("render-output-dir", ["render", "--env", ENV, "-o", "{w}"], [".png"]),
    ("render-output-folder-missing", ["render", "--env", ENV, "-o", "{w}/nodir/x.png"],
     ["does not exist"]),
    ("render-spec-missing", ["render", "--env", ENV, "-o", "{w}/x.png", "--spec", "{w}/no.yaml"],
     ["no such file"]),
    ("render-unknown-env", ["render", "--env", "domrand/Nope", "-o", "{w}/x.png"],
     ["unknown env"]),
    ("dataset-n-zero", ["dataset", "--env", ENV, "--spec", SPEC, "-n", "0", "--out", "{w}/d"],
     ["n must be at least 1"]),
    ("dataset-shard-size", ["dataset", "--env", ENV, "--spec", SPEC, "-n", "2",
                            "--shard-size", "0", "--out", "{w}/d"], ["shard_size"]),
    ("dataset-out-is-file", ["dataset", "--env", ENV, "--spec", SPEC, "-n", "2",
                             "--out", "{w}/afile"], ["not a directory"]),
    ("dataset-out-under-file", ["dataset", "--env", ENV, "--spec", SPEC, "-n", "2",
                                "--out", "{w}/afile/sub"], ["cannot create output directory"]),
    ("dataset-out-not-empty", ["dataset", "--env", ENV, "--spec", SPEC, "-n", "2",
                               "--out", "{w}/nonempty"], ["not empty"]),
    ("demo-episodes", ["demo", "--episodes", "0", "--out", "{w}/demo"], ["episodes"]),
    ("demo-steps", ["demo", "--steps", "abc", "--out", "{w}/demo"], ["--steps"]),
    ("export-missing", ["export", "{w}/missing"], ["neither a run directory"]),
    ("export-empty-run", ["export", "{w}/emptyrun"], ["no checkpoint in"]),
    ("export-corrupt-run", ["export", "{w}/corruptrun"], ["corrupt or truncated"]),
    ("export-tampered-run-info", ["export", "{w}/tampered", "-o", "{w}/t.onnx"],
     ["run_info.control_period is malformed"]),
    ("export-output-is-dir", ["export", "{w}/run", "-o", "{w}"], ["cannot write"]),
    ("export-output-under-file", ["export", "{w}/run", "-o", "{w}/afile/p.onnx"],
     ["cannot write"]),
    ("export-format", ["export", "{w}/run", "--format", "tflite"], ["invalid choice"]),
    ("eval-missing", ["eval", "{w}/missing"], ["neither a run directory"]),
    ("eval-corrupt-run", ["eval", "{w}/corruptrun"], ["corrupt or truncated"]),
    ("eval-episodes-zero", ["eval", "{w}/run", "--episodes", "0"], ["--episodes"]),
    ("eval-episodes-text", ["eval", "{w}/run", "--episodes", "abc"], ["whole number"]),
    ("eval-episodes-inf", ["eval", "{w}/run", "--episodes", "inf"], ["whole number"]),
    ("eval-seed-huge", ["eval", "{w}/run", "--seed", str(2**70)], ["2**63 - 1"]),
    ("eval-domain-missing", ["eval", "{w}/run", "--domain", "{w}/missing.yaml"],
     ["no such file"]),
    ("eval-domain-randomizes", ["eval", "{w}/run", "--domain", "{w}/randomizing.yaml"],
     ["may only pin values"]),
    ("eval-reality-unknown", ["eval", "{w}/run", "--reality", "nope"], ["no reality named"]),
    ("train-unknown-env", ["train", "--env", "domrand/Nope", "--out", "{w}/t"], ["unknown env"]),
    ("train-steps-text", ["train", "--env", ENV, "--steps", "abc", "--out", "{w}/t"],
     ["--steps"]),
    ("train-seed-huge", ["train", "--env", ENV, "--seed", str(2**70), "--out", "{w}/t"],
     ["2**63 - 1"]),
    ("train-config-missing", ["train", "--env", ENV, "--config", "{w}/no.yaml", "--out", "{w}/t"],
     ["not found"]),
    ("train-config-unknown-key", ["train", "--env", ENV, "--config", "{w}/unknown_key.yaml",
                                  "--out", "{w}/t"], ["did you mean 'hidden'"]),
    ("train-config-syntax", ["train", "--env", ENV, "--config", "{w}/bad_syntax.yaml",
                             "--out", "{w}/t"], ["not valid YAML"]),
    ("train-spec-other-env", ["train", "--env", ENV, "--spec", "{w}/pusher.yaml",
                              "--out", "{w}/t"], ["spec is for another env"]),
    ("train-resume-nothing", ["train", "--env", ENV, "--resume", "--out", "{w}/t"],
     ["nothing to resume"]),
    ("train-out-is-file", ["train", "--env", ENV, "--out", "{w}/afile"],
     ["cannot create run directory"]),
    pytest.param(
        "train-config-bad-scalar", ["train", "--env", ENV, "--config", "{w}/bad_timestamp.yaml",
                                    "--out", "{w}/t"], ["bad_timestamp.yaml"],
        id="train-config-bad-scalar",
    ),
    pytest.param(
        "train-config-deep", ["train", "--env", ENV, "--config", "{w}/deep.yaml",
                              "--out", "{w}/t"], ["deep.yaml"],
        id="train-config-deep",
    ),
    pytest.param(
        "guide-set-bad-scalar", ["guide", "cmaes", "--env", ENV, "--spec", SPEC, "--out",
                                 "{w}/g", "--set", "x=2024-13-45"], ["--set"],
        id="guide-set-bad-scalar",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "argv", "needles"),
    [pytest.param(*c, id=c[0]) if type(c) is tuple else c for c in CASES],
)
def test_bad_input_is_one_error_line_and_exit_2(
    w: Path, name: str, argv: list[str], needles: list[str]
) -> None:
    argv = [a.replace("{w}", str(w)) for a in argv]
    code, out, err = _run(argv)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    if "invalid" in " ".join(needles):  # argparse: usage line, then "prog: error: ..."
        assert "error:" in lines[-1]
    else:
        assert len(lines) == 1, err
        assert lines[0].startswith("domrand: error: "), err
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    if name.startswith("train-"):
        assert not (w / "t").exists(), "a failed train left a run directory behind"


def test_knob_names_are_printed_as_text_not_markup(w: Path) -> None:
    """A knob name such as "[/x]" in an unbound spec used to crash rich's markup parser."""
    spec = w / "markup.yaml"
    spec.write_text("parameters:\n  '[/x]': 1.0\n  '[bold]y': 2.0\n")
    for argv in (["spec", "validate", str(spec)], ["spec", "sample", str(spec), "-n", "1"]):
        code, out, err = _run(argv)
        assert code == 0 and err == "", err
        assert "[/x]" in out and "[bold]y" in out


def test_error_messages_stay_on_one_line(w: Path) -> None:
    """A key with a line break (JSON allows it) is escaped in the one error line."""
    spec = w / "newline.json"
    spec.write_text('{"env": "domrand/CartPole-v0", "parameters": {"pole\\nmass": 0.2}}')
    code, _, err = _run(["spec", "validate", str(spec)])
    assert code == 2
    assert len(err.splitlines()) == 1 and "pole\\nmass" in err

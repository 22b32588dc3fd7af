"""``domrand sweep`` / ``domrand sensitivity``: outputs, and one error line for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from domrand.cli import main

from .conftest import copy_run


def _one_error_line(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("domrand: error:") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_sweep_writes_png_and_csv_into_reports(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    guide = copy_run(tiny_run, tmp_path / "guide" / "policy").parent  # a guide's output layout
    argv = ["sweep", str(guide), "--knob", "motor.gain", "--points", "3", "--episodes", "2"]
    assert main([*argv, "--quiet", "--reality", "laggy"]) == 0
    out = capsys.readouterr().out
    assert "swept motor.gain" in out and "3 points" in out
    assert (guide / "reports" / "sweep_motor.gain.png").stat().st_size > 1000
    assert len((guide / "reports" / "sweep_motor.gain.csv").read_text().splitlines()) == 4


def test_a_checkpoint_file_reports_into_its_run(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(tiny_run, tmp_path / "run")
    (ckpt,) = (run / "checkpoints").iterdir()
    assert main(["sweep", str(ckpt), "--knob", "pole.mass", "--points", "2", "--episodes", "1",
                 "--quiet"]) == 0  # fmt: skip
    assert (run / "reports" / "sweep_pole.mass.csv").exists()
    assert "wrote" in capsys.readouterr().out


def test_sensitivity_writes_png_and_csv(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sensitivity", str(tiny_run), "--method", "morris", "--samples", "2"]
    argv += ["--knob", "pole.mass", "--knob", "cart.mass", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "morris on domrand/CartPole-v0 (2 knobs, 6 evaluations" in out
    assert (tmp_path / "sensitivity_morris.png").exists()
    assert (tmp_path / "sensitivity_morris.csv").read_text().startswith("rank,knob,")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["sweep", "{run}", "--knob", "pole.mas"], ["did you mean 'pole.mass'", "--knob"]),
        (["sensitivity", "{run}", "--knob", "motor.gian"], ["did you mean 'motor.gain'"]),
        (["sweep", "{run}", "--knob", "pole.mass", "--points", "1"], ["--points"]),
        (["sweep", "{run}"], ["--knob NAME"]),
        (["sweep", "{run}", "--knob", "a", "--knob", "b", "--knob", "c"], ["one or two"]),
        (["sweep", "{run}", "--knob", "pole.mass", "--range", "1", "2", "--range", "1", "2"],
         ["2 --range options for 1 --knob"]),
        (["sweep", "{run}", "--knob", "pole.mass", "--range", "-1", "2"], ["valid range"]),
        (["sweep", "{run}", "--knob", "pole.mass", "--episodes", "0"], ["--episodes"]),
        (["sweep", "{run}", "--knob", "pole.mass", "--reality", "laggyy"],
         ["did you mean 'laggy'"]),
        (["sweep", "{tmp}/missing", "--knob", "pole.mass"], ["does not exist"]),
        (["sweep", "{tmp}/empty", "--knob", "pole.mass"], ["no trained policy"]),
        (["sweep", "{tmp}/corrupt", "--knob", "pole.mass"], ["corrupt"]),
        (["sweep", "{nominal}", "--knob", "pole.mass", "--others", "spec"], ["no training spec"]),
        (["sensitivity", "{nominal}"], ["give --spec FILE"]),
        (["sensitivity", "{run}", "--samples", "10"], ["power of 2"]),
        (["sensitivity", "{run}", "--widen", "0.5"], ["--widen"]),
        (["sensitivity", "{run}", "--spec", "{tmp}/nospec.yaml"], ["nospec.yaml"]),
    ],
)  # fmt: skip
def test_bad_input_is_one_error_line(
    args: list[str],
    needles: list[str],
    tiny_run: Path,
    nominal_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "empty").mkdir()
    corrupt = copy_run(tiny_run, tmp_path / "corrupt")
    for p in (corrupt / "checkpoints").iterdir():
        p.write_bytes(b"garbage")
    subst = {"{run}": str(tiny_run), "{nominal}": str(nominal_run), "{tmp}": str(tmp_path)}
    argv = []
    for a in args:
        for k, v in subst.items():
            a = a.replace(k, v)
        argv.append(a)
    assert main([*argv, "--quiet", "--out", str(tmp_path / "out")]) == 2
    _one_error_line(capsys.readouterr().err, *needles)
    assert not (tmp_path / "out").exists()  # nothing written on a refusal

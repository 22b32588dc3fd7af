"""``domrand render``: a PNG grid of randomized camera views; user errors exit 2 in one line."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import domrand
from domrand.cli import main
from domrand.preview import GUTTER, parse_grid, render_grid

LOC = "domrand/Localization-v0"
SPEC = str(domrand.default_spec_path(LOC))


def one_error(capsys: pytest.CaptureFixture[str], text: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("domrand: error: ") and text in err[0], err


def test_render_writes_a_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grid.png"
    argv = ["render", "--env", LOC, "--spec", SPEC, "--grid", "2x3", "-o", str(out), "--size", "32"]
    assert main(argv) == 0
    assert "2x3 views" in capsys.readouterr().out
    img = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert img.shape == (2 * 32 + GUTTER, 3 * 32 + 2 * GUTTER, 3)
    tiles = [img[r * 34 : r * 34 + 32, c * 34 : c * 34 + 32] for r in range(2) for c in range(3)]
    assert len({t.tobytes() for t in tiles}) == 6  # every view is randomized differently
    again = tmp_path / "again.png"
    assert main([*argv[:-3], str(again), "--size", "32"]) == 0
    assert out.read_bytes() == again.read_bytes()  # same seed, same picture
    assert main([*argv, "--seed", "1"]) == 0
    assert out.read_bytes() != again.read_bytes()


def test_grid_is_the_image_observations_of_seeded_resets() -> None:
    grid = render_grid(LOC, SPEC, 1, 2, size=16, seed=3)
    env = domrand.make(LOC, spec=SPEC, seed=3, image_size=16)
    first, _ = env.reset()
    second, _ = env.reset()
    env.close()
    np.testing.assert_array_equal(grid[:, :16], first)
    np.testing.assert_array_equal(grid[:, 16 + GUTTER :], second)


def test_cartpole_renders_in_image_mode(tmp_path: Path) -> None:
    out = tmp_path / "cp.png"
    assert main(["render", "--env", "domrand/CartPole-v0", "--grid", "1x2", "-o", str(out),
                 "--size", "24"]) == 0  # fmt: skip
    assert cv2.imread(str(out)).shape == (24, 48 + GUTTER, 3)


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--grid", "4by4"], "--grid takes ROWSxCOLS"),
        (["--grid", "0x3"], "--grid takes ROWSxCOLS"),
        (["-o", "grid.jpg"], "must be a .png"),
        (["-o", "no/such/dir/grid.png"], "does not exist"),
        (["--size", "4"], "--size must be in"),
        (["--seed", "-1"], "seed must be"),
        (["--env", "domrand/Localisation-v0"], "did you mean 'domrand/Localization-v0'"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], text: str, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    base = {"--env": LOC, "--grid": "1x1", "-o": "grid.png", "--size": "16"}
    for flag, value in zip(argv[::2], argv[1::2]):
        base[flag] = value
    args = ["render"] + [x for kv in base.items() for x in kv]
    assert main(args) == 2
    one_error(capsys, text)


def test_bad_spec_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("env: domrand/Localization-v0\nparameters:\n  light.shadow: 2\n")
    assert main(["render", "--env", LOC, "--spec", str(spec), "-o", str(tmp_path / "g.png")]) == 2
    one_error(capsys, "light.shadow")


def test_parse_grid() -> None:
    assert parse_grid("4x4") == (4, 4)
    assert parse_grid(" 2X8 ") == (2, 8)

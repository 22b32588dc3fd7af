"""The README's five-minute tour runs as written.

The tour is what a new user copies first, so each of its blocks is executed here: the Python API
block, the spec-format YAML, the spec error line it quotes, and every subcommand its CLI block
names. A rename in the code that the README does not follow fails this file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import domrand
from domrand.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(heading: str) -> str:
    """The text under a ``### heading`` up to the next heading of level 2 or 3."""
    match = re.search(rf"^### {re.escape(heading)}\n(.*?)(?=^##)", README, re.S | re.M)
    assert match, f"README has no '### {heading}' section"
    return match.group(1)


def _block(heading: str, lang: str) -> str:
    blocks = re.findall(rf"```{lang}\n(.*?)```", _section(heading), re.S)
    assert blocks, f"README section '{heading}' has no {lang} block"
    return blocks[0]


def test_python_api_tour_runs_and_its_spec_round_trips(tmp_path, monkeypatch):
    (tmp_path / "assets").symlink_to(ROOT / "assets")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(_block("Python API", "python"), "README.md:Python API", "exec"), scope)

    spec, domain = scope["spec"], scope["domain"]
    assert {"cart.mass", "pole.mass"} <= set(domain)
    assert scope["wrapped"] is not None and scope["vec"].num_envs == 8
    assert np.allclose(spec.denormalize(scope["u"])["pole.mass"], domain["pole.mass"])
    # The block's last line writes my_spec.json; it must read back as the same spec.
    again = domrand.load_spec(tmp_path / "my_spec.json")
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    assert again.sample(rng_a) == spec.sample(rng_b)
    for name in ("env", "reality", "vec"):
        scope[name].close()


def test_spec_format_example_loads_and_samples_inside_its_clips(tmp_path):
    path = tmp_path / "tour.yaml"
    path.write_text(_block("The spec format (YAML or JSON)", "yaml"), encoding="utf-8")
    spec = domrand.load_spec(path)
    rng = np.random.default_rng(0)
    for _ in range(200):
        d = spec.sample(rng)
        assert d["gravity"] == pytest.approx(9.81)
        assert d["action.delay"] in (0, 1, 2)
        assert 0.5 <= d["cart.mass"] <= 2.0  # scale mode: clip [0.5, 2.0] x nominal 1 kg
        assert 0.0 <= d["pole.damping"] <= 0.05


def test_quoted_spec_error_is_what_the_cli_prints(tmp_path, monkeypatch, capsys):
    quoted = re.search(r"^\s*(domrand: error: my\.yaml: .*)$", README, re.M)
    assert quoted, "README no longer quotes a spec error line"
    monkeypatch.chdir(tmp_path)
    Path("my.yaml").write_text(
        "env: domrand/CartPole-v0\n"
        "parameters:\n"
        "  pole.mas: {dist: uniform, low: 0.05, high: 0.2}\n",
        encoding="utf-8",
    )
    assert main(["spec", "validate", "my.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    shown = quoted.group(1).split("...")[0]  # the README elides the list of allowed knobs
    assert err.startswith(shown), f"README shows {shown!r}, the CLI prints {err!r}"


def _cli_commands() -> list[list[str]]:
    commands = []
    for line in _block("CLI", "bash").splitlines():
        words = line.split("#")[0].split()
        if not words or words[0] != "domrand":
            continue
        if words[1] == "guide":  # "{cmaes,simopt,adr,autodr}": every one of them
            commands.extend(["guide", name] for name in words[2].strip("{}").split(","))
        elif words[1] in {"spec", "bench"}:
            commands.append(words[1:3])
        else:
            commands.append(words[1:2])
    return commands


def test_cli_tour_names_only_real_subcommands(capsys):
    commands = _cli_commands()
    assert len(commands) >= 10
    for cmd in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([*cmd, "--help"])
        assert exit_info.value.code == 0, f"`domrand {' '.join(cmd)} --help` failed"
        assert "usage: domrand" in capsys.readouterr().out

"""The malformed-spec corpus: every file gives its typed SpecError and a one-line message naming
the key path, the value received and what is allowed, through ``load_spec`` and through
``domrand spec validate`` (exit 2, one ``domrand: error:`` line on stderr, no traceback).

``expected.yaml`` maps each file in ``specs/`` to ``{error, contains, [env], [generated]}``;
the two huge inputs are generated here rather than committed.
"""

from __future__ import annotations

import contextlib
import io
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from domrand import registry
from domrand.cli import main
from domrand.errors import SpecError
from domrand.knobs import Knob, KnobSet, Phase
from domrand.spec import load_spec
from domrand.spec_io import MAX_SPEC_BYTES

HERE = Path(__file__).parent
SPECS = HERE / "specs"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load(
    (HERE / "expected.yaml").read_text(encoding="utf-8")
)
#: Files whose YAML would run code or write a file if it were loaded unsafely.
PAYLOAD_MARKER = Path("/tmp/domrand-pwned")

#: toy/Toy-v0: no real env has a load-phase knob, so the corpus binds one file to this set.
TOY_ENV = "toy/Toy-v0"
TOY_KNOBS = KnobSet.of(
    [
        Knob("model.scale", 1.0, "1", 0.5, 2.0, phase=Phase.LOAD),
        Knob("pole.mass", 0.1, "kg", 0.0, 10.0, low_open=True),
        Knob("obs.bias", 0.0, "1", -math.inf, math.inf, Phase.STEP, True, True, True),
    ]
)


@pytest.fixture(autouse=True)
def toy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    real = registry.all_knobs_for

    def all_knobs_for(env_id: str) -> KnobSet:
        return TOY_KNOBS if env_id == TOY_ENV else real(env_id)

    monkeypatch.setattr(registry, "all_knobs_for", all_knobs_for)


def _generate(name: str, folder: Path) -> Path:
    path = folder / name
    if name == "huge_file.yaml":  # sparse: one byte over the limit, instantly
        with open(path, "wb") as f:
            f.truncate(MAX_SPEC_BYTES + 1)
    elif name == "huge_list.yaml":  # 100,002 numbers: the node limit, well under the size limit
        path.write_text("parameters:\n  pole.mass: [" + "0," * 100_001 + "0]\n", encoding="utf-8")
    else:
        raise AssertionError(f"no generator for {name}")
    return path


def corpus_file(name: str, tmp_path: Path) -> Path:
    return _generate(name, tmp_path) if EXPECTED[name].get("generated") else SPECS / name


def test_corpus_is_complete() -> None:
    committed = {p.name for p in SPECS.iterdir()}
    expected = {n for n, e in EXPECTED.items() if not e.get("generated")}
    assert committed == expected, committed ^ expected
    assert len(EXPECTED) >= 50
    for name, entry in EXPECTED.items():
        assert set(entry) <= {"error", "contains", "env", "generated"}, name
        assert entry["contains"], name
        assert hasattr(sys.modules["domrand.errors"], entry["error"]), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_gives_its_message(name: str, tmp_path: Path) -> None:
    entry = EXPECTED[name]
    path = corpus_file(name, tmp_path)
    existed = PAYLOAD_MARKER.exists()
    with pytest.raises(SpecError) as info:
        load_spec(path, env=entry.get("env"))
    err = info.value
    msg = str(err)
    assert type(err).__name__ == entry["error"], msg
    assert msg.startswith(f"{path}: "), msg
    assert len(msg.splitlines()) == 1, msg
    for fragment in entry["contains"]:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    assert existed or not PAYLOAD_MARKER.exists(), "a YAML tag ran code"


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_validate_prints_one_error_line(name: str, tmp_path: Path) -> None:
    entry = EXPECTED[name]
    path = corpus_file(name, tmp_path)
    argv = ["spec", "validate", str(path)] + (["--env", entry["env"]] if "env" in entry else [])
    code, out, err = _run_cli(argv)
    assert code == 2, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"domrand: error: {path}: "), err
    assert "Traceback" not in err
    for fragment in entry["contains"]:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


#: One file per kind of failure, through the installed console script (a real process).
CONSOLE_SAMPLE = [
    "latin1.yaml",
    "alias_bomb.yaml",
    "python_object_apply.yaml",
    "unknown_knob_typo.yaml",
    "bad_timestamp.yaml",
]


@pytest.mark.parametrize("name", CONSOLE_SAMPLE)
def test_console_script_prints_no_traceback(name: str) -> None:
    script = Path(sys.executable).with_name("domrand")
    proc = subprocess.run(
        [str(script), "spec", "validate", str(SPECS / name)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("domrand: error: "), proc.stderr
    assert "Traceback" not in proc.stderr

"""Reading and writing spec files: every failure is a typed error naming the file."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from domrand import spec_io
from domrand.errors import SpecError, SpecFileError, SpecSyntaxError, SpecTypeError
from domrand.spec import load_spec
from domrand.spec_io import MAX_SPEC_BYTES, atomic_write_text, dump_mapping, read_mapping

GOOD_YAML = """\
env: domrand/CartPole-v0
parameters:
  pole.mass: {dist: uniform, low: 0.5, high: 2.0, mode: scale}
  gravity: 9.81
"""

GOOD_DOC = {
    "env": "domrand/CartPole-v0",
    "parameters": {
        "pole.mass": {"dist": "uniform", "low": 0.5, "high": 2.0, "mode": "scale"},
        "gravity": 9.81,
    },
}


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def raises_naming_file(exc: type[SpecError], path: Path, *fragments: str) -> SpecError:
    """Call read_mapping and check the error type, that it names the file, and the fragments."""
    with pytest.raises(exc) as info:
        read_mapping(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    assert info.value.file == str(path)
    for frag in fragments:
        assert frag in msg, (frag, msg)
    return info.value


# ---------------------------------------------------------------- good files
def test_reads_yaml_and_json(tmp_path: Path) -> None:
    assert read_mapping(write(tmp_path / "s.yaml", GOOD_YAML)) == GOOD_DOC
    assert read_mapping(write(tmp_path / "s.yml", GOOD_YAML)) == GOOD_DOC
    assert read_mapping(write(tmp_path / "s.json", json.dumps(GOOD_DOC))) == GOOD_DOC
    # a .JSON suffix is JSON too (case-insensitive)
    assert read_mapping(write(tmp_path / "S.JSON", json.dumps(GOOD_DOC))) == GOOD_DOC


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    p = write(tmp_path / "bom.yaml", b"\xef\xbb\xbf" + GOOD_YAML.encode())
    assert read_mapping(p) == GOOD_DOC


def test_small_anchors_and_merge_keys_are_fine(tmp_path: Path) -> None:
    text = """\
parameters:
  pole.mass: &u {dist: uniform, low: 0.5, high: 2.0}
  cart.mass: {<<: *u, mode: scale}
"""
    doc = read_mapping(write(tmp_path / "a.yaml", text))
    u = {"dist": "uniform", "low": 0.5, "high": 2.0}
    assert doc["parameters"] == {"pole.mass": u, "cart.mass": {**u, "mode": "scale"}}


# ---------------------------------------------------------------- file problems
def test_missing_file(tmp_path: Path) -> None:
    raises_naming_file(SpecFileError, tmp_path / "nope.yaml", "no such file")


def test_missing_file_through_load_spec(tmp_path: Path) -> None:
    p = tmp_path / "nope.yaml"
    with pytest.raises(SpecFileError, match="no such file") as e:
        load_spec(p)
    assert str(p) in str(e.value)


def test_directory(tmp_path: Path) -> None:
    raises_naming_file(SpecFileError, tmp_path, "directory")


@pytest.mark.parametrize("text", ["", "   \n\n\t\n", "\ufeff"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    raises_naming_file(SpecFileError, write(tmp_path / "e.yaml", text), "empty")


def test_non_utf8_bytes(tmp_path: Path) -> None:
    prefix = b"parameters:\n  pole.mass: "
    p = write(tmp_path / "latin1.yaml", prefix + "0.2 # \xb5".encode("latin-1"))
    bad_offset = len(prefix) + len(b"0.2 # ")
    raises_naming_file(SpecFileError, p, "UTF-8", f"offset {bad_offset}")


def test_nul_bytes(tmp_path: Path) -> None:
    raises_naming_file(SpecFileError, write(tmp_path / "n.yaml", "a: 1\x00\n"), "NUL")


def test_file_over_size_limit(tmp_path: Path) -> None:
    p = tmp_path / "huge.yaml"
    with open(p, "wb") as f:  # sparse: instant, no 4 MB written
        f.truncate(MAX_SPEC_BYTES + 1)
    err = raises_naming_file(SpecFileError, p, "too large", str(MAX_SPEC_BYTES + 1))
    assert err.value == MAX_SPEC_BYTES + 1
    assert str(MAX_SPEC_BYTES) in (err.allowed or "")


def test_file_at_size_limit_is_read(tmp_path: Path) -> None:
    body = json.dumps(GOOD_DOC)
    p = write(tmp_path / "big.json", body + " " * (MAX_SPEC_BYTES - len(body)))
    assert p.stat().st_size == MAX_SPEC_BYTES
    assert read_mapping(p) == GOOD_DOC


# ---------------------------------------------------------------- syntax problems
@pytest.mark.parametrize(
    "text,line",
    [
        ("env: x\nparameters:\n  a: b: c\n", 3),  # nested mapping on one line
        ("env: x\nparameters:\n\ta: 1\n", 3),  # tab indentation
        ("env: x\nparameters:\n  a: 1\n  b: [1, 2\n", 5),  # '[' still open at end of file
    ],
)
def test_invalid_yaml_reports_line(tmp_path: Path, text: str, line: int) -> None:
    p = write(tmp_path / "bad.yaml", text)
    raises_naming_file(SpecSyntaxError, p, "not valid YAML", f"line {line}")


def test_invalid_json_reports_line(tmp_path: Path) -> None:
    text = '{\n  "parameters": {\n    "a": 1,\n  }\n}\n'  # trailing comma; '}' on line 4
    raises_naming_file(SpecSyntaxError, write(tmp_path / "bad.json", text), "JSON", "line 4")


def test_yaml_file_parsed_as_json_only_by_suffix(tmp_path: Path) -> None:
    # YAML text in a .json file is a JSON syntax error, not silently read as YAML
    raises_naming_file(SpecSyntaxError, write(tmp_path / "s.json", GOOD_YAML), "JSON")


def test_duplicate_keys_yaml(tmp_path: Path) -> None:
    text = "parameters:\n  pole.mass: 0.2\n  pole.mass: 0.3\n"
    raises_naming_file(
        SpecSyntaxError, write(tmp_path / "d.yaml", text), "duplicate key 'pole.mass'", "line 3"
    )


def test_duplicate_keys_yaml_nested_and_top_level(tmp_path: Path) -> None:
    nested = "parameters:\n  pole.mass: {dist: uniform, low: 0.5, low: 2.0}\n"
    raises_naming_file(SpecSyntaxError, write(tmp_path / "n.yaml", nested), "duplicate key 'low'")
    top = "env: a\nparameters: {x: 1}\nenv: b\n"
    raises_naming_file(
        SpecSyntaxError, write(tmp_path / "t.yaml", top), "duplicate key 'env'", "line 3"
    )


def test_duplicate_keys_json(tmp_path: Path) -> None:
    text = '{"parameters": {"pole.mass": 0.2, "pole.mass": 0.3}}'
    raises_naming_file(
        SpecSyntaxError, write(tmp_path / "d.json", text), "duplicate key 'pole.mass'"
    )


def test_non_scalar_yaml_key(tmp_path: Path) -> None:
    p = write(tmp_path / "k.yaml", "? [a, b]\n: 1\n")
    raises_naming_file(SpecSyntaxError, p, "not a scalar")


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    p = write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n")  # ~9^9 nodes once expanded
    t0 = time.perf_counter()
    raises_naming_file(SpecSyntaxError, p, "alias")
    assert time.perf_counter() - t0 < 5.0


def test_recursive_yaml_structures_do_not_hang(tmp_path: Path) -> None:
    raises_naming_file(SpecSyntaxError, write(tmp_path / "m.yaml", "a: &a {b: *a}\n"), "recursive")
    # a self-referencing list parses; the spec layer then rejects it as a wrong type
    p = write(tmp_path / "s.yaml", "parameters:\n  pole.mass: &a [*a]\n")
    with pytest.raises(SpecTypeError, match=r"parameters\.pole\.mass"):
        load_spec(p)


def test_deep_nesting_is_a_syntax_error(tmp_path: Path) -> None:
    p = write(tmp_path / "deep.yaml", "[" * 1200 + "]" * 1200)
    raises_naming_file(SpecSyntaxError, p, "nests too deeply")
    pj = write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    raises_naming_file(SpecSyntaxError, pj, "nests too deeply")


@pytest.mark.parametrize(
    "tag",
    ["!!python/object/apply:os.mkdir", "!!python/object/new:os.mkdir", "!!python/name:os.mkdir"],
)
def test_python_tags_are_refused(tmp_path: Path, tag: str) -> None:
    target = tmp_path / "pwned"
    p = write(tmp_path / "evil.yaml", f"parameters:\n  pole.mass: {tag} ['{target}']\n")
    raises_naming_file(SpecSyntaxError, p, "not valid YAML")
    assert not target.exists()


def test_top_level_list_is_rejected_with_file(tmp_path: Path) -> None:
    p = write(tmp_path / "list.yaml", "- pole.mass: 0.2\n")
    assert read_mapping(p) == [{"pole.mass": 0.2}]
    with pytest.raises(SpecTypeError, match="top level must be a mapping") as e:
        load_spec(p)
    assert str(e.value).startswith(str(p)) and "list" in str(e.value)
    pj = write(tmp_path / "list.json", "[1, 2]")
    with pytest.raises(SpecTypeError, match="top level must be a mapping"):
        load_spec(pj)


def test_comment_only_yaml_is_reported_as_empty(tmp_path: Path) -> None:
    p = write(tmp_path / "c.yaml", "# nothing but a comment\n")
    with pytest.raises(SpecFileError, match="no document") as info:
        load_spec(p)
    assert str(p) in str(info.value)


# ---------------------------------------------------------------- writing
TRICKY = {
    "description": "µ-scale ✓",
    "floats": [1e-05, 0.1, 1e300, -0.0, 2.5e-310, 1.0],
    "ints": [0, 1, -7, 2**40],
    "strings": ["yes", "on", "1.0", "null", "~", "1e-05", ""],
    "nested": {"a.b": {"c": [[0.01, 0.004], [0.004, 0.04]]}},
}


@pytest.mark.parametrize("name", ["out.yaml", "out.yml", "out.json"])
def test_dump_then_read_is_exact(tmp_path: Path, name: str) -> None:
    p = tmp_path / "sub" / "dir" / name  # parent dirs are created
    dump_mapping(TRICKY, p)
    back = read_mapping(p)
    assert back == TRICKY
    # types survive too (1.0 stays a float, strings that look like scalars stay strings)
    assert [type(v) for v in back["floats"]] == [float] * 6
    assert all(type(v) is str for v in back["strings"])
    assert all(type(v) is int for v in back["ints"])
    if name.endswith(".json"):
        json.loads(p.read_text(encoding="utf-8"))  # valid JSON


def test_dump_json_refuses_nan(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        dump_mapping({"x": float("nan")}, tmp_path / "n.json")
    assert not (tmp_path / "n.json").exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_old_content_on_failure(tmp_path: Path, monkeypatch) -> None:
    p = tmp_path / "spec.yaml"
    atomic_write_text(p, "old: 1\n")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(spec_io.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(p, "new: 2\n")
    monkeypatch.undo()
    assert p.read_text() == "old: 1\n"
    assert sorted(os.listdir(tmp_path)) == ["spec.yaml"]  # no temp file left behind
    atomic_write_text(p, "new: 2\n")
    assert p.read_text() == "new: 2\n"

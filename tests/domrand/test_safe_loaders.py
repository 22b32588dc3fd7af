"""Safe loading, checked on the source: no loader that can run code on untrusted files.

An AST scan of ``domrand/``, ``envs/`` and ``policies/`` (stronger than a grep: aliases and
``from x import y`` are resolved) for YAML's unsafe loaders, pickle and its relatives,
``torch.load`` without ``weights_only=True``, ``np.load(allow_pickle=True)``, ``eval``/``exec``;
and, at run time, a spec file whose YAML tags would run code if loaded unsafely.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from domrand.errors import SpecSyntaxError
from domrand.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domrand", "envs", "policies")

#: Qualified names that load data by running code (or can), whatever the arguments.
FORBIDDEN = {
    "yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load",
    "yaml.full_load_all", "yaml.Loader", "yaml.FullLoader", "yaml.UnsafeLoader", "yaml.CLoader",
    "yaml.CFullLoader", "yaml.CUnsafeLoader", "yaml.UnsafeConstructor", "yaml.FullConstructor",
    "yaml.constructor.UnsafeConstructor", "yaml.constructor.FullConstructor",
    "yaml.loader.Loader", "yaml.loader.FullLoader", "yaml.loader.UnsafeLoader",
    "pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads",
    "cloudpickle.load", "cloudpickle.loads", "dill.load", "dill.loads", "joblib.load",
    "marshal.load", "marshal.loads", "shelve.open", "torch.package.PackageImporter",
    "torch.hub.load", "numpy.lib.format.read_array", "eval", "exec",
}  # fmt: skip
#: torch.jit.load compiles a program: allowed only where the bytes were produced just before.
ALLOWED_JIT_LOAD = {"policies/export.py"}  # verifies the TorchScript it has just written
#: pickle.loads of messages, never of files: the rollout backends' worker channel (a pipe to a
#: child it forked, or an auth-keyed socket from a Ray actor it started), like multiprocessing's.
ALLOWED_IPC_PICKLE = {"domrand/backends/procs.py"}


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> qualified name, from the file's imports."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _qualified(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    head = aliases.get(node.id, node.id)
    name = ".".join([head, *reversed(parts)])
    return name.replace("np.", "numpy.", 1) if name.startswith("np.") else name


def _kwarg_is(call: ast.Call, name: str, value: object) -> bool:
    return any(
        k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value
        for k in call.keywords
    )


def unsafe_uses(path: Path, root: Path = ROOT) -> list[str]:
    """Every unsafe loader use in one source file, as 'file:line: what'."""
    rel = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, (ast.Attribute, ast.Name)):
            q = _qualified(node, aliases)
            names = {q} if q else set()
        elif isinstance(node, ast.Call):
            q = _qualified(node.func, aliases)
            if q == "torch.load" and not _kwarg_is(node, "weights_only", True):
                found.append(f"{rel}:{node.lineno}: torch.load without weights_only=True")
            if q in ("numpy.load", "torch.from_file") and _kwarg_is(node, "allow_pickle", True):
                found.append(f"{rel}:{node.lineno}: {q}(allow_pickle=True)")
            if q == "torch.jit.load" and rel not in ALLOWED_JIT_LOAD:
                found.append(f"{rel}:{node.lineno}: torch.jit.load of a file")
            continue
        else:
            continue
        for q in names & FORBIDDEN:  # policy.eval() is "policy.eval", not the builtin
            if q == "pickle.loads" and rel in ALLOWED_IPC_PICKLE:
                continue
            found.append(f"{rel}:{node.lineno}: {q}")
    return sorted(set(found))


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_the_scan_covers_the_packages() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in _sources()}
    for expected in ("domrand/spec_io.py", "policies/checkpoint.py", "policies/deploy.py"):
        assert expected in files


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_unsafe_loader_in_the_packages(path: Path) -> None:
    assert unsafe_uses(path) == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The scanner itself: each unsafe pattern is reported, the safe spellings are not."""
    src = tmp_path / "probe.py"
    bad = """\
import pickle
import yaml as y
import numpy as np
import torch
from yaml import unsafe_load
from pickle import loads as pl
y.load(text, Loader=y.FullLoader)
pickle.load(f)
torch.load(path)
torch.load(path, weights_only=False)
np.load(p, allow_pickle=True)
torch.jit.load(p)
eval("1")
"""
    good = """\
import yaml, torch, numpy as np
yaml.safe_load(text)
class L(yaml.SafeLoader): ...
torch.load(path, map_location="cpu", weights_only=True)
np.load(p)
policy.eval()
"""
    src.write_text(bad, encoding="utf-8")
    hits = unsafe_uses(src, tmp_path)
    for what in ("yaml.unsafe_load", "pickle.loads", "yaml.load", "yaml.FullLoader"):
        assert any(h.endswith(f": {what}") for h in hits), (what, hits)
    assert sum("torch.load without" in h for h in hits) == 2, hits
    assert any("allow_pickle" in h for h in hits) and any("jit.load" in h for h in hits)
    assert any(h.endswith(": eval") for h in hits) and any("pickle.load" in h for h in hits)
    src.write_text(good, encoding="utf-8")
    assert unsafe_uses(src, tmp_path) == []


@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/apply:builtins.open ['{marker}', 'w']",
        "!!python/object/new:pathlib.Path ['{marker}']",
        "!!python/name:os.system",
        "!!python/module:os",
    ],
)
def test_a_spec_whose_tags_would_run_code_is_refused(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "pwned"
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"parameters:\n  pole.mass: {payload.format(marker=marker)}\n")
    with pytest.raises(SpecSyntaxError, match="could not determine a constructor"):
        load_spec(spec)
    assert not marker.exists()

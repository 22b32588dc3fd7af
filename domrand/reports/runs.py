"""Find and load the trained policy of any run directory, with the spec it was trained under.

A "run directory" is what ``domrand train`` writes (``checkpoints/step_N.pt``), the output of
``domrand demo`` (the run sits in a subfolder), or a guide's output (``report.json`` names the
final policy; otherwise ``policy/``). The training spec is the one in the latest checkpoint
(``RunInfo.spec``: for a guided run, the spec in force when that checkpoint was written), unless
another spec file is given.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domrand.errors import CheckpointError, DomrandError, UnknownKnobError, did_you_mean
from domrand.knobs import Knob, KnobSet
from domrand.spec import RandomizationSpec, load_spec

__all__ = ["LoadedRun", "find_policy_dir", "load_run", "resolve_knobs"]

_MAX_DEPTH = 3  #: how deep to look for a run inside a demo or other output folder


@dataclass(frozen=True)
class LoadedRun:
    """A trained policy, its run info, the env's knobs and the spec that gives training ranges."""

    path: Path  #: the run directory the checkpoint came from
    policy: Any  #: ``ActorCritic`` in eval mode
    info: Any  #: ``RunInfo``
    knobs: KnobSet  #: the knobs of the env the policy runs on (state mode)
    spec: RandomizationSpec | None  #: training spec (or the one given instead); None = nominal
    spec_source: str  #: where ``spec`` came from, for captions

    @property
    def env_id(self) -> str:
        return str(self.info.env_id)

    def training_range(self, knob: str) -> tuple[float, float] | None:
        """The values ``knob`` took in training (None: pinned, unbounded or not in the spec)."""
        if self.spec is None or knob not in self.spec.knob_names():
            return None
        lo, hi = self.spec.value_bounds(knob)
        if not (hi > lo and abs(lo) < float("inf") and abs(hi) < float("inf")):
            return (lo, lo) if lo == hi else None
        return (lo, hi)


def _has_checkpoints(p: Path) -> bool:
    folder = p / "checkpoints"
    return folder.is_dir() and any(q.name.startswith("step_") for q in folder.iterdir())


def _from_report(root: Path) -> Path | None:
    """The final policy a guide's ``report.json`` names, resolved inside ``root``."""
    report = root / "report.json"
    try:
        doc = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    named = doc.get("policy") if isinstance(doc, dict) else None
    if not isinstance(named, str):
        return None
    parts = Path(named).parts
    # The report holds the path as the guide saw it (maybe relative to another working
    # directory): take the longest tail of it that exists under root.
    for k in range(len(parts)):
        candidate = root.joinpath(*parts[k:])
        if _has_checkpoints(candidate):
            return candidate
    return None


def find_policy_dir(run_dir: str | os.PathLike[str]) -> Path:
    """The folder holding the checkpoints of the run ``run_dir`` stands for.

    Raises:
        CheckpointError: ``run_dir`` is missing, not a folder, holds no run, or several runs.
    """
    root = Path(run_dir)
    if not root.exists():
        raise CheckpointError(f"run directory {str(root)!r} does not exist")
    if not root.is_dir():
        raise CheckpointError(f"{str(root)!r} is not a run directory (a folder)")
    if _has_checkpoints(root):
        return root
    named = _from_report(root)
    if named is not None:
        return named
    if _has_checkpoints(root / "policy"):
        return root / "policy"
    found: list[Path] = []
    frontier = [root]
    for _ in range(_MAX_DEPTH):
        nxt = []
        for folder in frontier:
            for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
                (found if _has_checkpoints(sub) else nxt).append(sub)
        if found:
            break
        frontier = nxt
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(str(p.relative_to(root)) for p in found[:6])
        raise CheckpointError(
            f"{str(root)!r} holds {len(found)} runs ({names}); give one of them as RUN_DIR"
        )
    raise CheckpointError(
        f"no trained policy in {str(root)!r} (expected checkpoints/step_N.pt, a guide's "
        "report.json or policy/ folder, or one run in a subfolder)"
    )


def load_run(run_dir: str | os.PathLike[str], spec: Any = None) -> LoadedRun:
    """Load the policy of ``run_dir`` and the spec that gives the training ranges.

    Args:
        run_dir: any run directory (see the module docstring) or a checkpoint file.
        spec: a spec file to use instead of the one the run was trained under.

    Raises:
        CheckpointError: no run or a corrupt one; SpecError: ``spec`` does not fit the env.
    """
    from domrand.policies.checkpoint import load_policy
    from domrand.registry import knobs_for

    p = Path(run_dir)
    folder = p if p.is_file() else find_policy_dir(p)
    policy, info = load_policy(folder)
    try:
        knobs = knobs_for(info.env_id)
    except DomrandError as e:
        raise CheckpointError(f"{str(folder)!r}: the run's env is unusable here ({e})") from None
    if spec is not None:
        bound = load_spec(spec, env=knobs).bind(knobs, info.env_id)
        source = os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else "<given spec>"
    elif info.spec is not None:
        try:
            bound = load_spec(info.spec, env=knobs).bind(knobs, info.env_id)
        except DomrandError as e:
            raise CheckpointError(
                f"{str(folder)!r}: its saved training spec is invalid ({e})"
            ) from None
        source = f"{folder}: training spec"
    else:
        bound, source = None, f"{folder}: trained on nominal dynamics"
    if not folder.is_dir():  # a checkpoint file: RUN_DIR/checkpoints/step_N.pt
        folder = folder.parent.parent if folder.parent.name == "checkpoints" else folder.parent
    return LoadedRun(folder, policy, info, knobs, bound, source)


def resolve_knobs(run: LoadedRun, names: list[str] | tuple[str, ...]) -> list[Knob]:
    """The env knobs called ``names``; an unknown or repeated name is an error with a suggestion.

    Raises:
        UnknownKnobError: a name the env does not expose (did-you-mean and the full list).
        DomrandError: a name given twice.
    """
    out: list[Knob] = []
    for name in names:
        if name not in run.knobs:
            raise UnknownKnobError(
                f"unknown knob for {run.env_id}{did_you_mean(name, run.knobs)}",
                file="--knob",
                value=name,
                allowed=", ".join(run.knobs),
            )
        if any(k.name == name for k in out):
            raise DomrandError(f"knob {name!r} given twice")
        out.append(run.knobs[name])
    return out

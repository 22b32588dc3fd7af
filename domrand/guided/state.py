"""Bookkeeping the CMA-ES and SimOpt guides share: state checkpoint, phi history, targets, phases.

A run of ``domrand guide {cmaes,simopt} ... --out OUT`` writes::

    OUT/guide.yaml          method, env, spec, seed, target, settings, trainer config
    OUT/state.json          the method's state after its last completed step (written atomically;
                            ``--resume`` continues from it)
    OUT/iter_<k>/spec.yaml  the distribution after iteration k (iter_0: the starting one); any of
                            them is a spec ``domrand train --spec`` accepts
    OUT/spec.yaml           the latest distribution
    OUT/phi.csv             per iteration: budgets, per-knob mean and std, and phi itself
    OUT/phi.png             per-knob mean +- std over the iterations
    OUT/policy/<phase>/     the training runs (trainer run directories), each warm-started from
                            the one before; their checkpoints hold the guide's state as well
    OUT/report.json         budgets and results

Budgets are counted across resumes: real rollouts and real steps (the scarce resource), the
guide's own simulation steps, training env steps, and wall-clock seconds.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from domrand.distributions import Choice, Constant
from domrand.errors import (
    CheckpointError,
    ConfigError,
    DomrandError,
    SpecValueError,
    UnknownKnobError,
    did_you_mean,
)
from domrand.fsutil import atomic_write_bytes, atomic_write_text
from domrand.guided.base import Guide
from domrand.spec import RandomizationSpec
from domrand.target import RecordedTarget, SimulatedTarget, TargetDomain

if TYPE_CHECKING:
    from domrand.policies.config import TrainConfig
    from domrand.policies.train import TrainResult

__all__ = [
    "Budget",
    "Checkpointer",
    "PhaseGuide",
    "default_knobs",
    "doc_without",
    "knob_box",
    "knob_moments",
    "knob_stats",
    "load_state",
    "make_target",
    "record_iteration",
    "require_tunable",
    "save_state",
    "target_label",
    "train_phase",
]

STATE_FILE = "state.json"


@dataclass
class Budget:
    """What a guide run has spent so far (kept in the state, so it adds up across resumes)."""

    real_rollouts: int = 0
    real_steps: int = 0
    sim_steps: int = 0  #: the guide's own simulation steps (SimOpt's sampled rollouts)
    train_steps: int = 0  #: env steps of policy training
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Budget:
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in d.items()})


# ---------------------------------------------------------------------- state file
def save_state(out: Path, state: Mapping[str, Any]) -> None:
    """Write ``OUT/state.json`` atomically (a kill leaves the previous complete state)."""
    atomic_write_text(out / STATE_FILE, json.dumps(state, indent=1) + "\n")


def load_state(out: Path) -> dict[str, Any] | None:
    """The saved state, or ``None`` when the run has not completed a step yet."""
    path = out / STATE_FILE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(
            f"{str(path)!r} is unreadable or corrupt ({type(e).__name__})"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{str(path)!r} is not a guide state")
    return state


# ---------------------------------------------------------------------- specs and phi
def require_tunable(spec: RandomizationSpec, what: str) -> None:
    """Raise one clear error when ``spec`` has no tunable distribution parameter at all."""
    if len(spec.params()) == 0:
        raise SpecValueError(
            f"nothing to tune: every knob is pinned, so {what} has no distribution parameter "
            "to adjust",
            file=spec.source,
            path="parameters",
            value=list(spec.knob_names()),
            allowed="at least one randomized knob, e.g. {dist: uniform, low: 0.5, high: 2.0}",
        )


def knob_stats(
    spec: RandomizationSpec, names: Sequence[str], n: int = 2000
) -> dict[str, tuple[float, float]]:
    """Mean and std of each knob under ``spec`` (from ``n`` draws of a fixed generator)."""
    rng = np.random.default_rng(0)
    draws = [spec.sample(rng) for _ in range(n)]
    out = {}
    for name in names:
        values = np.array([float(d[name]) for d in draws])
        out[name] = (float(values.mean()), float(values.std()))
    return out


def record_iteration(
    out: Path,
    history: list[dict[str, Any]],
    iteration: int,
    spec: RandomizationSpec,
    knobs: Sequence[str],
    budget: Budget,
    **extra: Any,
) -> None:
    """Write ``iter_<k>/spec.yaml`` and ``spec.yaml``; add a row to ``history`` (kept in the
    state) and rewrite ``phi.csv`` and ``phi.png`` from it."""
    spec.save(out / f"iter_{iteration}" / "spec.yaml")
    spec.save(out / "spec.yaml")
    phi = spec.params()
    row = {
        "iteration": iteration,
        **budget.to_dict(),
        "knobs": {k: list(v) for k, v in knob_stats(spec, knobs).items()},
        "phi": dict(zip(phi.names, phi.values.tolist())),
        **extra,
    }
    history[:] = [h for h in history if h["iteration"] < iteration] + [row]
    _write_csv(out / "phi.csv", history)
    plot_history(history, out / "phi.png")


def _write_csv(path: Path, history: list[dict[str, Any]]) -> None:
    budget_cols = list(Budget().to_dict())
    knob_names = list(history[-1]["knobs"])
    phi_names: list[str] = []
    for h in history:
        phi_names += [n for n in h["phi"] if n not in phi_names]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        ["iteration", *budget_cols]
        + [f"{s}:{k}" for k in knob_names for s in ("mean", "std")]
        + [f"phi:{n}" for n in phi_names]
    )
    for h in history:
        w.writerow(
            [h["iteration"], *(h[c] for c in budget_cols)]
            + [v for k in knob_names for v in h["knobs"].get(k, ["", ""])]
            + [h["phi"].get(n, "") for n in phi_names]
        )
    atomic_write_text(path, buf.getvalue())


def plot_history(history: list[dict[str, Any]], path: Path) -> None:
    """One panel per knob: the distribution's mean and +-1 std over the iterations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    knobs = list(history[-1]["knobs"])
    cols = min(3, max(1, len(knobs)))
    rows = -(-len(knobs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    its = [h["iteration"] for h in history]
    for ax, name in zip(axes.ravel(), knobs):
        mean = np.array([h["knobs"][name][0] for h in history])
        std = np.array([h["knobs"][name][1] for h in history])
        ax.plot(its, mean, marker="o", color="C0")
        ax.fill_between(its, mean - std, mean + std, color="C0", alpha=0.25)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.ravel()[len(knobs) :]:
        ax.axis("off")
    fig.suptitle("randomization distribution per iteration (mean +- std)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def default_knobs(spec: RandomizationSpec) -> tuple[str, ...]:
    """Knobs SimOpt and bilevel CMA-ES tune unless told: every randomized knob drawn once per
    episode from a continuous distribution, except noise knobs (``*.noise``: trajectory matching
    cannot see a noise level through a noiseless simulation)."""
    out = [
        p.knob
        for p in spec.parameters
        if p.every.per_episode and not isinstance(p.dist, (Constant, Choice))
    ]
    out += [k for g in spec.groups if g.every.per_episode for k in g.knobs]
    return tuple(k for k in out if not k.endswith(".noise"))


def doc_without(spec: RandomizationSpec, knobs: Sequence[str]) -> dict[str, Any]:
    """``spec`` as a document without the entries of ``knobs`` (which must exist there)."""
    names = spec.knob_names()
    for k in knobs:
        if k not in names:
            raise UnknownKnobError(
                f"tuned knob not randomized by the spec{did_you_mean(k, names)}",
                file=spec.source,
                path="knobs",
                value=k,
                allowed=", ".join(default_knobs(spec)) or "a randomized knob of the spec",
            )
    doc = spec.to_dict()
    doc["parameters"] = {k: v for k, v in doc.get("parameters", {}).items() if k not in knobs}
    kept = []
    for g in spec.groups:
        inside = [k for k in g.knobs if k in knobs]
        if inside and len(inside) < len(g.knobs):
            raise ConfigError(
                f"{spec.source}: tuning would split the correlated group {list(g.knobs)}; tune "
                "all of its knobs or none"
            )
        if not inside:
            kept.append(g.to_yaml())
    doc.pop("correlated", None)
    if kept:
        doc["correlated"] = kept
    return doc


def knob_moments(spec: RandomizationSpec, knobs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the tuned knobs under ``spec`` (4096 draws of a fixed generator);
    knobs from independent entries get exactly zero covariance."""
    rng = np.random.default_rng(0)
    x = np.array([[float(d[k]) for k in knobs] for d in (spec.sample(rng) for _ in range(4096))])
    mean = x.mean(axis=0)
    cov = np.atleast_2d(np.cov(x.T))
    entry = {}
    for i, p in enumerate(spec.parameters):
        entry[p.knob] = i
    for j, g in enumerate(spec.groups):
        entry.update({k: -1 - j for k in g.knobs})
    same = np.array([[entry[a] == entry[b] for b in knobs] for a in knobs])
    cov = np.where(same, cov, 0.0)
    if np.any(np.diag(cov) <= 0):
        bad = knobs[int(np.argmin(np.diag(cov)))]
        raise ConfigError(f"{spec.source}: tuned knob {bad!r} is not randomized in the spec")
    return mean, cov


def knob_box(
    spec: RandomizationSpec,
    knobs: Sequence[str],
    mean: np.ndarray,
    std: np.ndarray,
    env_knobs: Mapping[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """The box phi lives in: each knob's range in the starting spec (or mean +- 4 std, inside
    the knob's valid range, where the spec leaves it unbounded)."""
    lo, hi = np.empty(len(knobs)), np.empty(len(knobs))
    for i, k in enumerate(knobs):
        a, b = spec.value_bounds(k)
        knob = env_knobs[k]
        # (an open end of the valid range is kept out by a hair, so the clip stays valid)
        eps = 1e-9 * max(1.0, abs(mean[i]))
        if not math.isfinite(a):
            a = max(mean[i] - 4 * std[i], knob.low + (eps if knob.low_open else 0.0))
        if not math.isfinite(b):
            b = min(mean[i] + 4 * std[i], knob.high - (eps if knob.high_open else 0.0))
        lo[i], hi[i] = a, b
    return lo, hi


# ---------------------------------------------------------------------- targets
def target_label(args: argparse.Namespace) -> str:
    """``reality: NAME`` / ``domain: FILE`` / ``recorded: DIR`` (for guide.yaml and reports)."""
    for key in ("reality", "domain", "recorded"):
        if getattr(args, key, None):
            return f"{key}: {getattr(args, key)}"
    raise DomrandError("give a target: --reality NAME, --domain FILE or --recorded DIR")


def make_target(
    args: argparse.Namespace,
    env_id: str,
    *,
    seed: int,
    max_steps: int | None = None,
    recorded_ok: bool = True,
    method: str = "this method",
) -> TargetDomain:
    """The target the CLI options name, checked against the simulator's spaces.

    Raises:
        TargetError: empty or malformed recording, or spaces that do not match the env's.
        DomrandError: no target given, or a recording where the method must run new policies.
    """
    import domrand

    target_label(args)  # a target must be given
    target: TargetDomain
    if getattr(args, "recorded", None):
        if not recorded_ok:
            raise DomrandError(
                f"{method} runs new policies on the target, which a recording cannot do; give "
                "--reality or --domain (or drive a robot through domrand.target.RobotTarget)"
            )
        target = RecordedTarget(args.recorded)
    elif getattr(args, "reality", None):
        target = SimulatedTarget(env_id, reality=args.reality, seed=seed, max_steps=max_steps)
    else:
        target = SimulatedTarget(env_id, domain=args.domain, seed=seed, max_steps=max_steps)
    env = domrand.make(env_id)
    try:
        target.check_compatible(env.observation_space, env.action_space)
    finally:
        env.close()
    return target


# ---------------------------------------------------------------------- training phases
class PhaseGuide(Guide):
    """The guide of one training phase: a fixed spec, and the outer method's state, so every
    checkpoint of the phase's policy carries the guide state (as JSON text)."""

    def __init__(self, spec: RandomizationSpec, method: str, state: Mapping[str, Any]) -> None:
        self.spec = spec
        self.method = method
        self._state = json.dumps(state)

    def training_spec(self) -> RandomizationSpec:
        return self.spec

    def state_dict(self) -> dict[str, Any]:
        return {"method": self.method, "state_json": self._state}


def train_phase(
    run_dir: Path,
    cfg: TrainConfig,
    spec: RandomizationSpec,
    steps: int,
    *,
    init_from: Path | None,
    method: str,
    state: Mapping[str, Any],
) -> TrainResult:
    """Train ``steps`` env steps on ``spec`` in ``run_dir``, warm-started from ``init_from``;
    a phase a kill interrupted continues from its last checkpoint."""
    from rich.console import Console

    from domrand.policies.train import train

    resume = (run_dir / "config.yaml").exists()
    return train(
        cfg.replace(total_steps=steps, keep_checkpoints=1),
        run_dir,
        guide=PhaseGuide(spec, method, state),
        resume=resume,
        progress=False,
        console=Console(stderr=True, quiet=True),
        init_from=init_from,
    )


class Clock:
    """Wall-clock seconds spent, continuing the count of a resumed run."""

    def __init__(self, spent: float = 0.0) -> None:
        self.spent = spent
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return self.spent + time.perf_counter() - self.t0


class Checkpointer:
    """The state of a guide run, its budget and clock; :meth:`save` writes it atomically."""

    def __init__(self, out: Path, fresh: Callable[[], dict[str, Any]]) -> None:
        self.out = out
        self.state = load_state(out) or fresh()
        self.budget = Budget.from_dict(self.state["budget"])
        self.clock = Clock(self.budget.wall_s)
        self.history: list[dict[str, Any]] = self.state["history"]

    def save(self) -> None:
        self.budget.wall_s = self.clock()
        self.state["budget"] = self.budget.to_dict()
        save_state(self.out, self.state)

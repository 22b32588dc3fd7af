"""Automatic domain randomization (OpenAI, Akkaya et al. 2019) as a guide of the PPO trainer.

The ranges start collapsed at the nominal values (or, with ``start: full``, at the spec's full
ranges) and move by the state machine of :mod:`domrand.guided.autodr_core`:

* when an env finishes an episode, the guide decides that env's next episode: with probability
  ``p_boundary`` a boundary evaluation (one knob pinned at one side of its range, the other knobs
  uniform in their ranges: an exact domain handed out through :meth:`assignments`), otherwise a
  training episode drawn from the current ranges (:meth:`training_spec`);
* a boundary episode's performance, in the task's own units (``metric: return`` = the episode
  return, ``metric: success`` = 1/0 from ``info["success"]``), goes into that boundary's buffer;
  a full buffer (``buffer_size``) widens the boundary by ``delta`` when its mean is >= ``t_high``
  and narrows it when <= ``t_low``;
* the ranges, the ADR entropy and the spec files are logged after every PPO update.

``delta`` is a fraction of each knob's full range in the spec (the ranges never leave it).
Boundary episodes also train the policy (the trainer learns from every episode).
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from domrand.errors import ConfigError
from domrand.guided.autodr_core import AutoDRConfig, AutoDRState, Boundary
from domrand.guided.base import Guide
from domrand.spec import Domain, RandomizationSpec

__all__ = ["AutoDRGuide", "AutoDRSettings", "plot_ranges", "run_cli"]


@dataclass(frozen=True)
class AutoDRSettings:
    """Automatic-DR settings (``--config``/``--set``). Thresholds are in ``metric`` units."""

    metric: str = "success"  #: "success" (rate in [0, 1]) or "return"
    t_low: float | None = None  #: default 0.2 for success; required for return
    t_high: float | None = None  #: default 0.8 for success; required for return
    p_boundary: float = 0.5
    buffer_size: int = 16  #: the paper's m = 240, scaled to short CPU runs
    delta: float = 0.05  #: boundary step, as a fraction of each knob's full range
    start: str = "nominal"  #: "nominal" (collapsed) or "full" (the spec's ranges)
    knobs: tuple[str, ...] | None = None  #: the knobs to grow (default: every bounded one)
    spec_every: int = 10  #: write OUT/specs/<steps>.yaml every this many PPO updates
    eval_episodes: int = 20

    def __post_init__(self) -> None:
        if self.metric not in ("success", "return"):
            raise ConfigError(f"metric must be 'success' or 'return', got {self.metric!r}")
        if self.metric == "return" and (self.t_low is None or self.t_high is None):
            raise ConfigError("metric 'return' needs t_low and t_high in the task's return units")
        if self.start not in ("nominal", "full"):
            raise ConfigError(f"start must be 'nominal' or 'full', got {self.start!r}")
        if not 0.0 < self.delta <= 1.0:
            raise ConfigError(
                f"delta must be in (0, 1] (a fraction of a knob's range), got {self.delta!r}"
            )
        for name in ("spec_every", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        try:
            self.core()
        except ValueError as e:
            raise ConfigError(str(e)) from None

    @property
    def thresholds(self) -> tuple[float, float]:
        lo = 0.2 if self.t_low is None else self.t_low
        hi = 0.8 if self.t_high is None else self.t_high
        return float(lo), float(hi)

    def core(self) -> AutoDRConfig:
        t_low, t_high = self.thresholds
        return AutoDRConfig(t_low, t_high, self.p_boundary, self.buffer_size)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["knobs"] = None if self.knobs is None else list(self.knobs)
        return d


class AutoDRGuide(Guide):
    """Grows (or shrinks) uniform ranges per knob from boundary evaluations (module docstring).

    Args:
        env_id: the env.
        spec: the widest spec: its bounded per-episode knobs give the limits; knobs not grown
            are sampled from it unchanged.
        settings: the automatic-DR settings.
        seed: seeds the guide's one ``np.random.Generator`` (which episodes evaluate what).
        out_dir: where ``ranges.csv`` and the spec files go (``None``: nowhere).
    """

    def __init__(
        self,
        env_id: str,
        spec: RandomizationSpec,
        settings: AutoDRSettings,
        seed: int,
        out_dir: Path | None = None,
    ) -> None:
        if spec.knobs is None:
            raise ConfigError(f"{spec.source}: the spec must be bound to {env_id}'s knobs")
        self.env_id, self.base, self.settings, self.out_dir = env_id, spec, settings, out_dir
        candidates = [
            p.knob
            for p in spec.parameters
            if p.every.per_episode and p.knob in spec.bounded_knobs()
        ]
        names = list(settings.knobs) if settings.knobs is not None else candidates
        for n in names:
            if n not in candidates:
                from domrand.errors import did_you_mean

                raise ConfigError(
                    f"knobs: {n!r} is not a per-episode knob with a bounded range in "
                    f"{spec.source}{did_you_mean(n, candidates)}; allowed: {', '.join(candidates)}"
                )
        if not names:
            raise ConfigError(f"{spec.source}: automatic DR needs a knob with a bounded range")
        limits = {n: spec.value_bounds(n) for n in names}
        nominal = {n: min(max(spec.knobs[n].nominal, lo), hi) for n, (lo, hi) in limits.items()}
        # An integer knob (e.g. action.delay) moves by whole steps and is rounded when pinned.
        self._integer = {n for n in names if spec.knobs[n].integer}
        delta = {
            n: max(1.0, round(settings.delta * (hi - lo)))
            if n in self._integer
            else settings.delta * (hi - lo)
            for n, (lo, hi) in limits.items()
        }
        self.state = AutoDRState(nominal, limits, delta, settings.core())
        if settings.start == "full":
            self.state.ranges = {n: [lo, hi] for n, (lo, hi) in limits.items()}
        self.rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0x617574,)))
        self.assigned: list[Domain | None] | None = None
        self.pending: list[tuple[str, str, float] | None] = []  # (knob, side, value) per env
        self.evaluations = 0  #: boundary episodes recorded
        self.history: list[dict[str, Any]] = []  #: one row per PPO update
        self._spec: RandomizationSpec | None = None
        self._spec_key: tuple[tuple[float, float], ...] | None = None

    # ------------------------------------------------------------------ the trainer's questions
    def training_spec(self) -> RandomizationSpec:
        key = tuple((float(lo), float(hi)) for lo, hi in self.state.ranges.values())
        if self._spec is None or key != self._spec_key:  # same object while ranges are unchanged
            self._spec = self._build_spec()
            self._spec_key = key
        return self._spec

    def _build_spec(self) -> RandomizationSpec:
        doc = self.base.to_dict()
        doc["parameters"].update(self.state.spec_dict()["parameters"])
        doc["description"] = f"automatic DR ranges after {self.state.updates} boundary moves"
        spec = RandomizationSpec.from_dict(doc, self.base.source)
        return spec.bind(self.base.knobs, self.env_id)  # type: ignore[arg-type]

    def assignments(self, num_envs: int) -> list[Domain | None]:
        if self.assigned is None or len(self.assigned) != num_envs:
            self.assigned, self.pending = [None] * num_envs, [None] * num_envs
            for i in range(num_envs):
                self._plan(i)
        return list(self.assigned)

    def _plan(self, i: int) -> None:
        """Decide env ``i``'s next episode: a boundary evaluation (an exact domain) or training."""
        domain, boundary = self.state.sample(self.rng)
        if boundary is None:
            self.assigned[i], self.pending[i] = None, None  # type: ignore[index]
        else:
            value = float(domain[boundary.knob])
            for n in self._integer:
                domain[n] = round(domain[n])
            self.assigned[i] = domain  # type: ignore[index]
            self.pending[i] = (boundary.knob, boundary.side, value)

    def observe_episode(
        self,
        env_index: int,
        domain: Domain,
        episode_return: float,
        length: int,
        info: Mapping[str, Any],
    ) -> None:
        if self.assigned is None or not 0 <= env_index < len(self.assigned):
            return
        pending = self.pending[env_index]
        if pending is not None and not info.get("physics_fault", False):
            knob, side, value = pending
            current = self.state.ranges[knob][0 if side == "low" else 1]
            # A boundary that moved while this episode ran was evaluated at a stale value.
            if current == value:
                perf = (
                    float(bool(info.get("success", False)))
                    if self.settings.metric == "success"
                    else float(episode_return)
                )
                self.state.record(Boundary(knob, side), perf)
                self.evaluations += 1
        self._plan(env_index)

    # ------------------------------------------------------------------ logging
    def on_update(self, policy: Any, env_steps: int) -> None:
        row: dict[str, Any] = {"env_steps": int(env_steps), "entropy": self.state.entropy()}
        for n, (lo, hi) in self.state.ranges.items():
            row[f"{n}.low"], row[f"{n}.high"] = float(lo), float(hi)
        row["boundary_moves"] = self.state.updates
        row["evaluations"] = self.evaluations
        self.history.append(row)
        if self.out_dir is not None:
            self.write_outputs(snapshot=len(self.history) % self.settings.spec_every == 0)

    def write_outputs(self, snapshot: bool = False) -> None:
        """``ranges.csv`` (from the saved history) and ``spec_latest.yaml`` (+ a snapshot)."""
        import yaml

        from domrand.fsutil import atomic_write_text

        out = self.out_dir
        if out is None:
            return
        buf = io.StringIO()
        if self.history:
            writer = csv.DictWriter(buf, fieldnames=list(self.history[0]))
            writer.writeheader()
            writer.writerows(self.history)
        atomic_write_text(out / "ranges.csv", buf.getvalue())
        text = yaml.safe_dump(self.spec_dict(), sort_keys=False)
        atomic_write_text(out / "spec_latest.yaml", text)
        atomic_write_text(out / "spec.yaml", text)  # the name every guide's latest spec has
        if snapshot and self.history:
            steps = self.history[-1]["env_steps"]
            atomic_write_text(out / "specs" / f"spec_{steps:09d}.yaml", text)

    def spec_dict(self) -> dict[str, Any]:
        """The current training distribution as a spec document."""
        return self.training_spec().to_dict()

    def explored_ranges(self) -> dict[str, list[float]]:
        return {n: [float(lo), float(hi)] for n, (lo, hi) in self.state.ranges.items()}

    def close(self) -> None:
        return None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "core": self.state.state_dict(),
            "rng": self.rng.bit_generator.state,
            "assigned": None if self.assigned is None else [dict(d or {}) for d in self.assigned],
            "pending": [None if p is None else list(p) for p in self.pending],
            "evaluations": self.evaluations,
            "history": self.history,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.state.load_state_dict(state["core"])
        self.rng.bit_generator.state = dict(state["rng"])
        assigned = state["assigned"]
        self.assigned = None if assigned is None else [dict(d) or None for d in assigned]
        self.pending = [
            None if p is None else (str(p[0]), str(p[1]), float(p[2])) for p in state["pending"]
        ]
        self.evaluations = int(state["evaluations"])
        self.history = [dict(r) for r in state["history"]]
        self._spec = None


# ---------------------------------------------------------------------- plots
def plot_ranges(csv_path: Path, png_path: Path) -> None:
    """Each knob's [low, high] over training env steps, and the ADR entropy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    knobs = [k[: -len(".low")] for k in (rows[0] if rows else {}) if k.endswith(".low")]
    fig, axes = plt.subplots(len(knobs) + 1, 1, figsize=(6, 2.0 * (len(knobs) + 1)), sharex=True)
    axes = np.atleast_1d(axes)
    steps = np.array([float(r["env_steps"]) for r in rows])
    for ax, k in zip(axes, knobs):
        lo = np.array([float(r[f"{k}.low"]) for r in rows])
        hi = np.array([float(r[f"{k}.high"]) for r in rows])
        ax.fill_between(steps, lo, hi, alpha=0.3, step="post")
        ax.plot(steps, lo, drawstyle="steps-post")
        ax.plot(steps, hi, drawstyle="steps-post")
        ax.set_ylabel(k, fontsize=8)
    ax = axes[-1]
    ax.plot(steps, [float(r["entropy"]) for r in rows], drawstyle="steps-post")
    ax.set_ylabel("ADR entropy\n(nats/dim)", fontsize=8)
    ax.set_xlabel("training env steps")
    axes[0].set_title("automatic DR: ranges over time")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------- CLI
def run_cli(args: argparse.Namespace) -> int:
    """``domrand guide autodr --env ID --spec FILE --out DIR [--set t_low=...] [...]``."""
    from domrand.guided.guide_run import report_guided, train_with_guide

    done = train_with_guide(
        args,
        "autodr",
        AutoDRSettings,
        lambda run: AutoDRGuide(args.env, run.spec, run.settings, args.seed, out_dir=run.out),
        plot=lambda out: plot_ranges(out / "ranges.csv", out / "ranges.png"),
        eval_spec=lambda guide, run: guide.training_spec(),
    )
    guide = done.guide
    fields = {
        "guide_env_steps": 0,
        "boundary_evaluations": guide.evaluations,
        "boundary_moves": guide.state.updates,
        "adr_entropy": guide.state.entropy(),
    }
    ranges, rets = report_guided(done, fields)
    print(
        f"autodr on {args.env}: {done.env_steps} training env steps, {guide.evaluations} "
        f"boundary episodes, {guide.state.updates} boundary moves; ranges {ranges}; "
        f"ADR entropy {guide.state.entropy():.2f}; return {rets}; wrote {done.setup.out}"
    )
    return 0

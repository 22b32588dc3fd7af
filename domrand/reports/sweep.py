"""Return against one knob (a curve) or two (a grid): how far a trained policy's robustness goes.

Each grid point pins the swept knob(s) to exact values; every other knob is held at its nominal
value (``others="nominal"``, the default: a clean one-factor view) or drawn from the training
spec per episode (``others="spec"``: the expected return over the training distribution given
the swept values, so the std band also shows the spread the other knobs cause). A reality or
domain file can pin the other knobs instead of their nominal values.

Default range of a swept knob: its training range widened by half its width on each side (so the
curve shows the policy inside and outside what it saw), kept inside the knob's valid range; a
knob the spec does not randomize sweeps 0.5x..2x its nominal value, or the first tenth of its
valid range when the nominal is 0. ``value_range`` overrides it.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from domrand.errors import DomrandError
from domrand.fsutil import atomic_write_text
from domrand.knobs import Knob
from domrand.reports.batch import DomainReturns, evaluate_domains
from domrand.reports.runs import LoadedRun, resolve_knobs

__all__ = ["Axis", "SweepResult", "default_range", "make_axis", "run_sweep", "write_sweep"]

OTHERS = ("nominal", "spec")
MAX_POINTS = 101


@dataclass(frozen=True)
class Axis:
    """One swept knob: its grid of values and the range it had in training (if any)."""

    knob: Knob
    values: np.ndarray
    training: tuple[float, float] | None

    @property
    def name(self) -> str:
        return self.knob.name


def _inside(knob: Knob, value: float, toward: float) -> float:
    """``value`` if the knob takes it, else the point halfway from ``toward`` to the bound."""
    if knob.contains(value):
        return value
    bound = knob.low if value < toward else knob.high
    return bound if knob.contains(bound) else 0.5 * (bound + toward)


def default_range(knob: Knob, training: tuple[float, float] | None) -> tuple[float, float]:
    """The values a sweep of ``knob`` covers by default (see the module docstring)."""
    if training is not None and training[1] > training[0]:
        lo, hi = training
        half = 0.5 * (hi - lo)
        return _inside(knob, lo - half, lo), _inside(knob, hi + half, hi)
    nominal = float(knob.nominal)
    if nominal != 0.0:
        a, b = sorted((0.5 * nominal, 2.0 * nominal))
        return _inside(knob, a, nominal), _inside(knob, b, nominal)
    tenth = 0.1 * (knob.high - knob.low) if math.isfinite(knob.high - knob.low) else 1.0
    lo = -tenth / 2 if knob.low < 0 < knob.high else nominal
    hi = tenth / 2 if knob.low < 0 < knob.high else nominal + tenth
    return _inside(knob, lo, nominal), _inside(knob, hi, nominal)


def make_axis(
    knob: Knob,
    points: int,
    training: tuple[float, float] | None,
    value_range: tuple[float, float] | None = None,
) -> Axis:
    """``points`` evenly spaced values of ``knob`` (whole numbers, deduplicated, for integer knobs).

    Raises:
        DomrandError: ``points`` outside 2..101, or a range that is empty or leaves the knob's
            valid range.
    """
    if isinstance(points, bool) or not isinstance(points, int) or not 2 <= points <= MAX_POINTS:
        raise DomrandError(f"--points must be an integer from 2 to {MAX_POINTS}, got {points!r}")
    if value_range is None:
        lo, hi = default_range(knob, training)
    else:
        lo, hi = (float(v) for v in value_range)
        for v in (lo, hi):
            if not knob.contains(v):
                raise DomrandError(
                    f"--range {v:g} is outside the valid range {knob.range_str()} of {knob.name!r}"
                )
        if not hi > lo:
            raise DomrandError(f"--range needs LOW < HIGH, got {lo:g} {hi:g}")
    values = np.linspace(lo, hi, points)
    if knob.integer:
        values = np.unique(np.round(values))
        if values.size < 2:
            raise DomrandError(f"the range {lo:g}..{hi:g} of {knob.name!r} holds one whole number")
    return Axis(knob, values, training)


@dataclass(frozen=True)
class SweepResult:
    """Returns on a grid: ``returns[i, (j,) e]`` for value i of axis 0 (j of axis 1), episode e."""

    env_id: str
    axes: tuple[Axis, ...]
    others: str
    pins: dict[str, float]
    outcome: DomainReturns
    seed: int

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return tuple(a.values.size for a in self.axes)

    @property
    def mean(self) -> np.ndarray:
        return self.outcome.mean().reshape(self.grid_shape)

    @property
    def std(self) -> np.ndarray:
        return self.outcome.std().reshape(self.grid_shape)

    def rows(self) -> list[dict[str, float | int | str]]:
        """One CSV row per grid point."""
        out: list[dict[str, float | int | str]] = []
        r, f, s = self.outcome.returns, self.outcome.faults, self.outcome.successes
        for flat, idx in enumerate(np.ndindex(*self.grid_shape)):
            row: dict[str, float | int | str] = {}
            inside = True
            for axis, i in zip(self.axes, idx):
                v = float(axis.values[i])
                row[axis.name] = v
                t = axis.training
                inside = inside and t is not None and t[0] <= v <= t[1]
            ok = ~f[flat]
            row["mean_return"] = float(self.outcome.mean()[flat])
            row["std_return"] = float(self.outcome.std()[flat])
            row["min_return"] = float(r[flat][ok].min()) if ok.any() else math.nan
            row["max_return"] = float(r[flat][ok].max()) if ok.any() else math.nan
            row["success_rate"] = float(s[flat][ok].mean()) if ok.any() else math.nan
            row["episodes"] = int(ok.sum())
            row["faults"] = int(f[flat].sum())
            row["in_training_range"] = int(inside)
            out.append(row)
        return out

    def to_csv(self) -> str:
        rows = self.rows()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
        return buf.getvalue()


def run_sweep(
    run: LoadedRun,
    knobs: Sequence[str],
    *,
    points: int = 11,
    episodes: int = 10,
    seed: int = 0,
    others: str = "nominal",
    pins: Mapping[str, float] | None = None,
    ranges: Sequence[tuple[float, float] | None] | None = None,
    max_envs: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> SweepResult:
    """Evaluate ``run``'s policy on a grid over one or two knobs.

    Args:
        run: from :func:`domrand.reports.runs.load_run`.
        knobs: one or two knob names.
        points: grid points per knob (integer knobs: at most one per whole number).
        episodes: episodes per grid point (deterministic actions).
        seed: evaluation seed; the same arguments give the same result.
        others: ``"nominal"`` or ``"spec"`` (see the module docstring).
        pins: values for other knobs (e.g. a reality's), applied in every episode.
        ranges: per knob, ``(low, high)`` or None for the default range.

    Raises:
        DomrandError: bad knob names (did-you-mean), counts or ranges; ``others="spec"`` on a
            run trained without randomization.
    """
    if not 1 <= len(knobs) <= 2:
        raise DomrandError(f"give one or two --knob options, got {len(knobs)}")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise DomrandError(f"--episodes must be at least 1, got {episodes!r}")
    if others not in OTHERS:
        raise DomrandError(f"--others must be one of {', '.join(OTHERS)}, got {others!r}")
    if others == "spec" and run.spec is None:
        raise DomrandError(
            f"{run.spec_source}: no training spec to draw the other knobs from; use --others "
            "nominal or give --spec FILE"
        )
    resolved = resolve_knobs(run, list(knobs))
    ranges = list(ranges) if ranges is not None else [None] * len(resolved)
    axes = tuple(
        make_axis(k, points, run.training_range(k.name), r) for k, r in zip(resolved, ranges)
    )
    base = {k: run.knobs[k].coerce(v) for k, v in dict(pins or {}).items()}
    domains = []
    for idx in np.ndindex(*(a.values.size for a in axes)):
        d = dict(base)
        d.update({a.name: run.knobs[a.name].coerce(a.values[i]) for a, i in zip(axes, idx)})
        domains.append(d)
    spec = run.spec if others == "spec" else None
    outcome = evaluate_domains(
        run.policy, run.env_id, domains, spec=spec, episodes=episodes, seed=seed,
        max_envs=max_envs, progress=progress,
    )  # fmt: skip
    return SweepResult(run.env_id, axes, others, base, outcome, seed)


def write_sweep(result: SweepResult, out_dir: str | Path, title: str = "") -> tuple[Path, Path]:
    """Write ``sweep_<knob>[_<knob>].png`` and ``.csv`` into ``out_dir``; return both paths."""
    from domrand.reports.plotting import plot_sweep

    out = Path(out_dir)
    stem = "sweep_" + "_".join(a.name for a in result.axes)
    csv_path, png_path = out / f"{stem}.csv", out / f"{stem}.png"
    try:
        atomic_write_text(csv_path, result.to_csv())
        plot_sweep(result, png_path, title)
    except OSError as e:
        raise DomrandError(f"cannot write the sweep to {str(out)!r}: {e.strerror or e}") from None
    return png_path, csv_path

"""Which knobs matter: global sensitivity of a trained policy's return, via SALib.

The factors are the knobs the training spec randomizes over a bounded range (or a chosen subset),
each varied **uniformly over its training range** (``widen`` > 1 stretches every range about its
centre, kept inside the knob's valid range), whatever distribution shape the spec draws it from;
knobs outside the analysis stay at their nominal values (or at the values of ``pins``). One model
evaluation is the mean return of ``episodes`` deterministic episodes in that exact domain.

* ``sobol``: Saltelli's design from a scrambled Sobol' sequence, ``samples * (D + 2)``
  evaluations; first-order (S1) and total (ST) indices, the share of the return's variance a knob
  explains alone / with its interactions, with bootstrap confidence intervals.
* ``morris``: ``samples`` one-at-a-time trajectories on a 4-level grid, ``samples * (D + 1)``
  evaluations; mu* (mean absolute elementary effect, in return units, with a bootstrap
  confidence interval) and sigma (spread: non-linearity or interactions). Much cheaper, a
  screening method.

Integer knobs (``action.delay``) are rounded to whole values before they are evaluated; Morris
computes its effects on the design's unrounded levels.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from domrand.errors import DomrandError
from domrand.fsutil import atomic_write_text
from domrand.knobs import Knob
from domrand.reports.batch import evaluate_domains
from domrand.reports.runs import LoadedRun, resolve_knobs
from domrand.reports.sweep import _inside

__all__ = [
    "DEFAULT_SAMPLES",
    "METHODS",
    "Factor",
    "SensitivityResult",
    "design",
    "factors_for",
    "run_sensitivity",
    "write_sensitivity",
]

METHODS = ("sobol", "morris")
#: base samples: Sobol' N (a power of 2) and Morris trajectories
DEFAULT_SAMPLES = {"sobol": 64, "morris": 10}
CONF_LEVEL = 0.95
MORRIS_LEVELS = 4


@dataclass(frozen=True)
class Factor:
    """One knob of the analysis, the range it is varied over, and its training range."""

    knob: Knob
    low: float
    high: float
    training: tuple[float, float]


def factors_for(
    run: LoadedRun, names: Sequence[str] | None = None, widen: float = 1.0
) -> list[Factor]:
    """The knobs to analyze and their ranges (see the module docstring).

    Raises:
        DomrandError: no training spec, a knob the spec does not randomize over a bounded range
            (or an unknown one: did-you-mean), ``widen`` < 1, or nothing to analyze.
    """
    if not (isinstance(widen, (int, float)) and 1.0 <= widen < float("inf")):
        raise DomrandError(f"--widen must be a finite number >= 1, got {widen!r}")
    if run.spec is None:
        raise DomrandError(
            f"{run.spec_source}: no training ranges to analyze over; give --spec FILE"
        )
    bounded = [n for n in run.spec.bounded_knobs() if n in run.knobs]
    if names is None:
        chosen = [run.knobs[n] for n in bounded]
    else:
        chosen = resolve_knobs(run, list(names))
        for k in chosen:
            if k.name not in bounded:
                raise DomrandError(
                    f"knob {k.name!r} is not randomized over a bounded range by "
                    f"{run.spec_source}; analyzable: {', '.join(bounded) or 'none'}"
                )
    if not chosen:
        raise DomrandError(f"{run.spec_source}: randomizes no knob over a bounded range")
    out = []
    for k in chosen:
        lo, hi = run.spec.value_bounds(k.name)
        c, half = 0.5 * (lo + hi), 0.5 * (hi - lo) * widen
        a, b = (lo, hi) if widen == 1.0 else (_inside(k, c - half, lo), _inside(k, c + half, hi))
        out.append(Factor(k, a, b, (lo, hi)))
    return out


def _problem(factors: Sequence[Factor]) -> dict[str, Any]:
    return {
        "num_vars": len(factors),
        "names": [f.knob.name for f in factors],
        "bounds": [[f.low, f.high] for f in factors],
    }


def design(method: str, factors: Sequence[Factor], samples: int, seed: int) -> np.ndarray:
    """The SALib design: one row of knob values per model evaluation.

    Raises:
        DomrandError: unknown method; Sobol' ``samples`` not a power of 2 >= 4; Morris < 2.
    """
    problem = _problem(factors)
    if method == "sobol":
        if samples < 4 or samples & (samples - 1):
            raise DomrandError(f"--samples for sobol must be a power of 2 >= 4, got {samples}")
        from SALib.sample import sobol

        return np.asarray(sobol.sample(problem, samples, calc_second_order=False, seed=seed))
    if method == "morris":
        if samples < 2:
            raise DomrandError(f"--samples for morris must be at least 2, got {samples}")
        from SALib.sample import morris

        return np.asarray(morris.sample(problem, samples, num_levels=MORRIS_LEVELS, seed=seed))
    raise DomrandError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")


@dataclass(frozen=True)
class SensitivityResult:
    """Indices per knob (arrays in ``knobs`` order) and what they were computed from."""

    env_id: str
    method: str
    factors: tuple[Factor, ...]
    indices: dict[str, np.ndarray]
    y: np.ndarray  #: the model output per design row (mean return)
    faults: int
    seed: int
    conf_level: float = CONF_LEVEL
    notes: list[str] = field(default_factory=list)

    @property
    def knobs(self) -> list[str]:
        return [f.knob.name for f in self.factors]

    @property
    def evaluations(self) -> int:
        return int(self.y.size)

    @property
    def index_label(self) -> str:
        if self.method == "sobol":
            return "Sobol' index (share of the return's variance)"
        return "effect on return (return units)"

    def bars(self) -> tuple[tuple[np.ndarray, np.ndarray, str], tuple[np.ndarray, np.ndarray, str]]:
        """``(values, conf, label)`` of the ranking index and of the secondary one."""
        i = self.indices
        if self.method == "sobol":
            return (i["ST"], i["ST_conf"], "ST (total)"), (
                i["S1"],
                i["S1_conf"],
                "S1 (first order)",
            )
        return (
            (i["mu_star"], i["mu_star_conf"], "mu* (mean |effect|)"),
            (i["sigma"], np.zeros_like(i["sigma"]), "sigma (spread)"),
        )

    def ranking(self) -> list[int]:
        """Factor positions, most influential first (by ST, or by mu*)."""
        key = self.bars()[0][0]
        return sorted(range(len(self.factors)), key=lambda j: (-np.nan_to_num(key[j]), j))

    def to_csv(self) -> str:
        cols = ["S1", "S1_conf", "ST", "ST_conf"] if self.method == "sobol" else [
            "mu_star", "mu_star_conf", "mu", "sigma"]  # fmt: skip
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["rank", "knob", "low", "high", "training_low", "training_high", *cols])
        for rank, j in enumerate(self.ranking(), start=1):
            f = self.factors[j]
            vals = [f.low, f.high, *f.training, *(float(self.indices[c][j]) for c in cols)]
            w.writerow([rank, f.knob.name, *(f"{v:.6g}" for v in vals)])
        return buf.getvalue()


def run_sensitivity(
    run: LoadedRun,
    *,
    method: str = "sobol",
    samples: int | None = None,
    knobs: Sequence[str] | None = None,
    widen: float = 1.0,
    episodes: int = 1,
    seed: int = 0,
    pins: Mapping[str, float] | None = None,
    max_envs: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> SensitivityResult:
    """Rank the knobs of ``run``'s training spec by their effect on the policy's return.

    Raises:
        DomrandError: see :func:`factors_for` and :func:`design`; ``episodes`` < 1.
    """
    if method not in METHODS:
        raise DomrandError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise DomrandError(f"--episodes must be at least 1, got {episodes!r}")
    samples = DEFAULT_SAMPLES[method] if samples is None else samples
    factors = factors_for(run, knobs, widen)
    x = design(method, factors, samples, seed)
    base = {k: run.knobs[k].coerce(v) for k, v in dict(pins or {}).items()}
    domains = []
    for row in x:
        d = dict(base)
        d.update({f.knob.name: _value(f.knob, float(v)) for f, v in zip(factors, row)})
        domains.append(d)
    outcome = evaluate_domains(
        run.policy, run.env_id, domains, episodes=episodes, seed=seed, max_envs=max_envs,
        progress=progress,
    )  # fmt: skip
    y = outcome.returns.mean(axis=1)  # a faulted episode counts with its partial return
    notes = []
    if outcome.faults.any():
        notes.append(f"{int(outcome.faults.sum())} episodes hit a physics fault (partial returns)")
    indices = _analyze(method, factors, x, y, seed, notes)
    return SensitivityResult(
        run.env_id, method, tuple(factors), indices, y, int(outcome.faults.sum()), seed,
        notes=notes,
    )  # fmt: skip


def _value(knob: Knob, v: float) -> float | int:
    """A design value as the env takes it: integer knobs rounded to the nearest whole number."""
    return knob.coerce(round(v) if knob.integer else v)


def _analyze(
    method: str, factors: Sequence[Factor], x: np.ndarray, y: np.ndarray, seed: int,
    notes: list[str],
) -> dict[str, np.ndarray]:  # fmt: skip
    d = len(factors)
    if np.ptp(y) == 0.0:
        notes.append(f"the return did not vary (always {y[0]:.4g}): every index is 0")
        zero = np.zeros(d)
        keys = ("S1", "S1_conf", "ST", "ST_conf") if method == "sobol" else (
            "mu_star", "mu_star_conf", "mu", "sigma")  # fmt: skip
        return {k: zero.copy() for k in keys}
    problem = _problem(factors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SALib's notes on sample sizes, pandas deprecations
        if method == "sobol":
            from SALib.analyze import sobol

            si = sobol.analyze(problem, y, calc_second_order=False, conf_level=CONF_LEVEL,
                               seed=seed)  # fmt: skip
            keys = ("S1", "S1_conf", "ST", "ST_conf")
        else:
            from SALib.analyze import morris

            si = morris.analyze(problem, x, y, conf_level=CONF_LEVEL, num_levels=MORRIS_LEVELS,
                                seed=seed)  # fmt: skip
            keys = ("mu_star", "mu_star_conf", "mu", "sigma")
    return {k: np.asarray(si[k], dtype=float) for k in keys}


def write_sensitivity(
    result: SensitivityResult, out_dir: str | Path, title: str = ""
) -> tuple[Path, Path]:
    """Write ``sensitivity_<method>.png`` and ``.csv`` into ``out_dir``; return both paths."""
    from domrand.reports.plotting import plot_sensitivity

    out = Path(out_dir)
    stem = f"sensitivity_{result.method}"
    csv_path, png_path = out / f"{stem}.csv", out / f"{stem}.png"
    try:
        atomic_write_text(csv_path, result.to_csv())
        plot_sensitivity(result, png_path, title)
    except OSError as e:
        raise DomrandError(f"cannot write the report to {str(out)!r}: {e.strerror or e}") from None
    return png_path, csv_path

"""The sim-to-real transfer benchmark: every DR method, on every env, scored on every reality.

A *cell* is one (env, method, seed), or one (env, oracle, reality, seed): it trains the method's
final policy (:mod:`domrand.bench.methods`) and evaluates it, deterministically, on each shipped
reality of the env (an oracle only on its own), with the same start states for every method of a
seed. Each finished cell is written to ``CACHE/<tier>/<env>/<cell>.json`` at once, so a crash or
a kill loses at most the cells that were running; a re-run skips every cached cell whose plan
and shipped spec and reality files are unchanged (its fingerprint) and only re-writes the
reports. A random policy's return on each reality is measured once per env, for the normalized
score (:mod:`domrand.bench.report`).

Cells run in ``jobs`` spawned processes, one torch thread each; progress is one line per cell.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domrand.bench.methods import METHODS, WIDE_SPEC, EnvPlan, train_method, unsupported
from domrand.bench.tiers import TIERS
from domrand.errors import DomrandError, did_you_mean
from domrand.fsutil import atomic_write_text

__all__ = [
    "BenchError",
    "Cell",
    "plan_cells",
    "run_cell",
    "run_transfer",
    "score_on_domains",
    "score_on_realities",
    "select",
    "write_cell",
]

#: bump when a change makes cached cells incomparable with new ones
CELL_FORMAT = 1
#: evaluation seeds: every method of one seed starts its episodes from the same states
EVAL_SEED = 10_000
RANDOM_EPISODES_FACTOR = 3


class BenchError(DomrandError):
    """Bad benchmark arguments: unknown tier, env, method or seed list."""


@dataclass(frozen=True)
class Cell:
    """One unit of work: train ``method`` on ``env_id`` with ``seed`` and evaluate it."""

    env_id: str
    method: str  #: a key of METHODS, or "random" (the baseline policy)
    seed: int
    reality: str | None = None  #: the oracle's reality

    @property
    def name(self) -> str:
        tail = f"_{self.reality}" if self.reality else ""
        return f"{self.method}{tail}_seed{self.seed}"

    @property
    def label(self) -> str:
        return f"{short_name(self.env_id)}/{self.name}"


def short_name(env_id: str) -> str:
    from domrand.registry import ENVS

    return ENVS[env_id].asset_name


def realities_of(plan: EnvPlan) -> list[str]:
    from domrand.registry import realities

    return list(realities(plan.env_id))


def fingerprint(cell: Cell, plan: EnvPlan) -> str:
    """What a cached cell's result depends on: its plan, its cell, the cell format, and the text
    of the shipped files it reads (every reality it is scored on; the default spec for the
    methods that train on it), so editing a spec or a reality invalidates the cells it touched.
    """
    # a random policy depends on nothing a plan trains: only its env and episode count
    what = (
        {"episodes": plan.episodes, "env": plan.env_id}
        if cell.method == "random"
        else plan.to_dict()
    )
    doc = {"format": CELL_FORMAT, "cell": cell.__dict__, "plan": what, "files": _files(cell)}
    revision = env_revision(cell.env_id)
    if revision:  # envs as first released keep their earlier fingerprints
        doc["env_revision"] = revision
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def env_revision(env_id: str) -> int:
    """The env class's ``revision``: bumped when its behaviour changes under the same id."""
    import importlib

    from domrand.registry import ENVS

    module, name = ENVS[env_id].entry_point.split(":")
    return int(getattr(getattr(importlib.import_module(module), name), "revision", 0))


def _files(cell: Cell) -> dict[str, str]:
    """Digests of the shipped spec and reality files ``cell`` reads (name -> sha256 prefix)."""
    from domrand.registry import default_spec_path, realities

    paths = {f"reality:{name}": path for name, path in realities(cell.env_id).items()}
    if cell.method in WIDE_SPEC:
        paths["spec"] = default_spec_path(cell.env_id)
    return {k: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for k, p in sorted(paths.items())}


# ---------------------------------------------------------------------- selection
def select(
    tier: str,
    envs: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> tuple[dict[str, EnvPlan], list[str], list[int]]:
    """Resolve the command line's choices against the tier (short env names allowed).

    Raises:
        BenchError: unknown tier, env or method, or no seeds.
    """
    if tier not in TIERS:
        raise BenchError(f"unknown tier {tier!r}{did_you_mean(tier, TIERS)}; allowed: quick, full")
    table = TIERS[tier]
    by_short = {short_name(e): e for e in table}
    plans: dict[str, EnvPlan] = {}
    for name in envs or list(table):
        env_id = by_short.get(name, name)
        if env_id not in table:
            allowed = [*by_short, *table]
            raise BenchError(
                f"env {name!r} is not in the transfer benchmark{did_you_mean(name, allowed)}; "
                f"allowed: {', '.join(by_short)}"
            )
        plans[env_id] = table[env_id]
    chosen = list(methods or METHODS)
    for m in chosen:
        if m not in METHODS:
            raise BenchError(
                f"unknown method {m!r}{did_you_mean(m, METHODS)}; allowed: {', '.join(METHODS)}"
            )
    seed_list = list(seeds) if seeds is not None else [0, 1, 2]
    if not seed_list or any(s < 0 for s in seed_list):
        raise BenchError(f"seeds must be one or more integers >= 0, got {seed_list}")
    return plans, chosen, seed_list


def plan_cells(
    plans: dict[str, EnvPlan], methods: Iterable[str], seeds: Iterable[int]
) -> list[Cell]:
    """Every cell, a random-policy baseline per env first (it is cheap)."""
    methods, seeds = list(methods), list(seeds)
    cells = [Cell(env, "random", 0) for env in plans]
    for env, plan in plans.items():
        for i, seed in enumerate(seeds):
            for m in methods:
                if m == "oracle" and plan.oracle_seeds is not None and i >= plan.oracle_seeds:
                    continue
                if unsupported(m, env) is not None:
                    continue
                if m == "oracle":
                    cells += [Cell(env, m, seed, r) for r in realities_of(plan)]
                else:
                    cells.append(Cell(env, m, seed))
    return cells


def _cost(cell: Cell, plan: EnvPlan) -> float:
    """A rough relative cost, to start the longest cells first (better packing on few cores)."""
    weight = {"cmaes": 2.0, "simopt": 1.6, "adr": 1.4}.get(cell.method, 1.0)
    per_step = {"domrand/CartPole-v0": 1.0}.get(cell.env_id, 2.5)
    return weight * per_step * plan.train_steps


# ---------------------------------------------------------------------- one cell
def cache_path(cache: Path, cell: Cell) -> Path:
    return cache / short_name(cell.env_id) / f"{cell.name}.json"


def load_cached(cache: Path, cell: Cell, plan: EnvPlan) -> dict[str, Any] | None:
    path = cache_path(cache, cell)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if doc.get("fingerprint") == fingerprint(cell, plan) else None


def run_cell(cell: Cell, plan: EnvPlan, cache: Path) -> dict[str, Any]:
    """Train and evaluate one cell; write its result to the cache and return it."""
    import torch

    hit = load_cached(cache, cell, plan)
    if hit is not None:  # another run sharing the cache finished it meanwhile
        return hit
    torch.set_num_threads(1)
    work = cache / "work" / short_name(cell.env_id) / cell.name
    shutil.rmtree(work, ignore_errors=True)  # a crashed attempt restarts from scratch
    t0 = time.perf_counter()
    if cell.method == "random":
        rows = _random_rows(cell, plan)
        trained_extra: dict[str, Any] = {}
    else:
        trained = train_method(cell.method, plan, cell.seed, work, reality=cell.reality)
        train_s = time.perf_counter() - t0
        rows = _evaluate_rows(cell, plan, trained, train_s)
        trained_extra = trained.extra
    doc = write_cell(cache, cell, plan, rows, trained_extra, time.perf_counter() - t0)
    shutil.rmtree(work, ignore_errors=True)
    return doc


def write_cell(
    cache: Path,
    cell: Cell,
    plan: EnvPlan,
    rows: list[dict[str, Any]],
    extra: dict[str, Any],
    wall_s: float,
    **more: Any,
) -> dict[str, Any]:
    """Write a finished cell's cache entry atomically (``more``: extra fields); return it."""
    doc = {
        "fingerprint": fingerprint(cell, plan),
        "cell": cell.__dict__,
        "rows": rows,
        "extra": extra,
        "wall_s": wall_s,
        "load_avg": list(os.getloadavg()),
        **more,
    }
    path = cache_path(cache, cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=1, default=float) + "\n")
    return doc


def score_on_realities(
    policy: Any, plan: EnvPlan, seed: int, names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Evaluate ``policy`` on each reality (default: all of the env's) as every cell of ``seed``
    is scored: deterministic, ``plan.episodes`` episodes from the seed's start states.

    Returns:
        reality name -> :class:`~domrand.policies.evaluate.EvalResult`.
    """
    from domrand.registry import reality_path

    chosen = realities_of(plan) if names is None else names
    return score_on_domains(policy, plan, seed, {n: reality_path(plan.env_id, n) for n in chosen})


def score_on_domains(
    policy: Any, plan: EnvPlan, seed: int, domains: Mapping[str, Any]
) -> dict[str, Any]:
    """:func:`score_on_realities` on any domain files (name -> path), e.g. candidate realities."""
    from domrand.policies.evaluate import evaluate

    return {
        name: evaluate(
            policy, plan.env_id, domain=path, episodes=plan.episodes, seed=EVAL_SEED + seed
        )
        for name, path in domains.items()
    }


def _evaluate_rows(cell: Cell, plan: EnvPlan, trained: Any, train_s: float) -> list[dict[str, Any]]:
    from domrand.policies.checkpoint import load_policy

    policy, _ = load_policy(trained.policy_dir)
    names = [cell.reality] if cell.reality else None
    rows = []
    for name, r in score_on_realities(policy, plan, cell.seed, names).items():
        rows.append({
            "env": plan.env_id,
            "method": cell.method,
            "seed": cell.seed,
            "reality": name,
            "is_target": cell.method in ("cmaes", "simopt") and name == plan.target,
            "return_mean": r.mean,
            "return_std": r.std,
            "success_rate": r.success_rate,
            "episodes": len(r.returns),
            "faults": r.faults,
            "lineage_steps": trained.lineage_steps,
            "train_steps": trained.train_steps,
            "real_rollouts": trained.real_rollouts,
            "real_steps": trained.real_steps,
            "sim_steps": trained.sim_steps,
            "train_minutes": train_s / 60.0,
        })  # fmt: skip
    return rows


def _random_rows(cell: Cell, plan: EnvPlan) -> list[dict[str, Any]]:
    """A uniformly random policy on each reality: the normalized score's zero."""
    import numpy as np

    import domrand

    episodes = plan.episodes * RANDOM_EPISODES_FACTOR
    rows = []
    for name in realities_of(plan):
        env = domrand.make(plan.env_id, reality=name, seed=EVAL_SEED)
        env.action_space.seed(EVAL_SEED)
        returns = []
        try:
            for _ in range(episodes):
                env.reset()
                total, done = 0.0, False
                while not done:
                    _, reward, term, trunc, _ = env.step(env.action_space.sample())
                    total += float(reward)
                    done = term or trunc
                returns.append(total)
        finally:
            env.close()
        rows.append({"env": plan.env_id, "method": "random", "seed": 0, "reality": name,
                     "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
                     "episodes": episodes})  # fmt: skip
    return rows


# ---------------------------------------------------------------------- the whole run
def run_transfer(
    tier: str,
    plans: dict[str, EnvPlan],
    methods: Sequence[str],
    seeds: Sequence[int],
    *,
    cache: Path,
    out: Path,
    jobs: int = 2,
    fresh: bool = False,
    report_only: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run (or continue) the benchmark and write ``out/transfer_<tier>.{csv,md,json}`` + plots.

    With ``report_only``, nothing is trained: the reports are written from the cached cells,
    and the missing ones are listed in them.

    Returns:
        The JSON document (meta, plans, rows, summary, verdict).
    """
    from domrand.bench.report import write_reports

    if jobs < 1:
        raise BenchError(f"jobs must be >= 1, got {jobs}")
    t_start = time.perf_counter()
    cache = cache / tier
    cells = plan_cells(plans, methods, seeds)
    done: dict[Cell, dict[str, Any]] = {}
    if not fresh:
        for c in cells:
            hit = load_cached(cache, c, plans[c.env_id])
            if hit is not None:
                done[c] = hit
    # the random baselines first (seconds), then the longest cells (better packing on few cores)
    todo = sorted(
        (c for c in cells if c not in done),
        key=lambda c: (c.method != "random", -_cost(c, plans[c.env_id])),
    )
    missing = [c.label for c in todo] if report_only else []
    if report_only:
        todo = []
    log(f"transfer ({tier}): {len(cells)} cells, {len(done)} cached, {len(todo)} to run "
        f"on {jobs} job(s)")  # fmt: skip
    computed_s = 0.0
    for i, (cell, doc) in enumerate(_execute(todo, plans, cache, jobs), 1):
        done[cell] = doc
        computed_s += doc["wall_s"]
        elapsed = (time.perf_counter() - t_start) / 60
        log(f"[{i}/{len(todo)}] {cell.label}: {_brief(doc['rows'])} ({doc['wall_s']:.0f} s; "
            f"{elapsed:.1f} min elapsed, load {os.getloadavg()[0]:.1f})")  # fmt: skip
    cells = [c for c in cells if c in done]
    rows = [r for c in cells for r in done[c]["rows"]]
    extras = {c.label: done[c]["extra"] for c in cells if done[c].get("extra")}
    doc = {
        "benchmark": "transfer",
        "tier": tier,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_info(),
        "seeds": list(seeds),
        "methods": list(methods),
        "plans": {env: p.to_dict() for env, p in plans.items()},
        "wall_minutes_this_invocation": (time.perf_counter() - t_start) / 60,
        "cell_minutes_total": sum(done[c]["wall_s"] for c in cells) / 60,
        "cells_run_now": len(todo),
        "cells_missing": missing,
        "jobs": jobs,
        "rows": rows,
        "extras": extras,
        # per cell: what its result depends on and what it cost (from these,
        # benchmarks/restore_transfer_cache.py rebuilds a cache of the cells still current)
        "cells": {
            c.label: {"fingerprint": done[c]["fingerprint"], "wall_s": done[c]["wall_s"]}
            for c in cells
        },
        "skipped": {
            f"{env}: {METHODS[m]}": why
            for env in plans
            for m in methods
            if (why := unsupported(m, env)) is not None
        },
    }
    write_reports(doc, out)
    return doc


def _execute(
    todo: list[Cell], plans: dict[str, EnvPlan], cache: Path, jobs: int
) -> Iterable[tuple[Cell, dict[str, Any]]]:
    if jobs == 1 or len(todo) <= 1:
        for c in todo:
            yield c, run_cell(c, plans[c.env_id], cache)
        return
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
        futures = {pool.submit(run_cell, c, plans[c.env_id], cache): c for c in todo}
        for f in cf.as_completed(futures):
            yield futures[f], f.result()


def _brief(rows: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['reality']} {r['return_mean']:.1f}" for r in rows)


def machine_info() -> dict[str, Any]:
    """Python, CPU, numeric libraries and load: what a benchmark ran under.

    A contact-rich env (Pusher) turns a last-bit difference into a different policy, so a cell
    is bit-reproducible only with the same CPU model, SIMD level and library versions; these
    say whether two results files can be compared digit for digit or only within seed noise.
    """
    from importlib.metadata import PackageNotFoundError, version

    import torch

    libs = {}
    for name in ("torch", "numpy", "pybullet", "gymnasium"):
        try:
            libs[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            libs[name] = None
    return {
        "python": platform.python_version(),
        "cpu": platform.machine(),
        "cpu_model": _cpu_model(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "libraries": libs,
        "cores": os.cpu_count(),
        "load_avg_at_end": list(os.getloadavg()),
    }


def _cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; else what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

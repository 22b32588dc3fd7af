"""Ten seeds for the transfer table's first claim: does uniform DR beat no DR, seed by seed?

The transfer tables (``domrand bench transfer``) have three seeds per method, and their verdict
says "beats" when one mean is higher than the other, which with three seeds can be seed noise.
This runs the benchmark's own ``no_dr`` and ``uniform`` cells -- the same plans, cell cache and
fingerprints as ``domrand bench transfer``, so cells already in the cache (seeds 0-2 after a
tier run, or after ``benchmarks/restore_transfer_cache.py``) are reused and only the missing
seeds train -- on seeds 0-9, and reports per env:

* the paired difference uniform DR minus no DR of the mean return over the env's realities,
  mean +- standard error over seeds (seed s of both methods has the same initialization and is
  scored on the same episodes, so seeds pair up), and on how many seeds uniform DR is higher;
* the same per reality;
* a reproduction check: every row whose cell is also in the committed
  ``benchmarks/results/transfer_<tier>.json`` is compared with it (``identical`` counts exact
  matches; a cell restored from that file matches trivially and is counted apart).

``--guided cmaes simopt adr autodr`` adds those methods' cells on the same seeds and compares
each with uniform DR the same way (the table's second claim: a guided method beats uniform DR);
that run writes ``transfer_seeds_<tier>_guided.*``.

Reporting only: nothing shipped depends on it, and the tier tables keep their three seeds.

Usage: python benchmarks/transfer_seeds.py --tier quick|full [--envs cartpole ...]
       [--seeds 0 1 ... 9] [--guided cmaes ...] [--jobs 2] [--cache runs/bench_transfer]
Writes benchmarks/results/transfer_seeds_<tier>[_guided].{json,md}; the standard per-cell
reports of these cells go to runs/transfer_seeds/<tier>/.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from domrand.bench.methods import METHODS as METHODS_NAMES
from domrand.bench.report import GUIDED, paired_difference, summarize
from domrand.bench.transfer import machine_info, run_transfer, select
from domrand.fsutil import atomic_write_text

RESULTS = Path(__file__).parent / "results"
METHODS = ["no_dr", "uniform"]


def per_reality(
    rows: list[dict[str, Any]], env: str, a: str = "uniform", b: str = "no_dr"
) -> dict[str, dict[str, Any]]:
    """reality -> method ``a`` minus ``b`` there, seed by seed (mean, SE, seeds higher)."""
    val = {(r["method"], r["seed"], r["reality"]): r["return_mean"] for r in rows
           if r["env"] == env and r["method"] in (a, b)}  # fmt: skip
    out = {}
    for reality in dict.fromkeys(k[2] for k in val):
        seeds = sorted({s for m, s, x in val if x == reality and m == a}
                       & {s for m, s, x in val if x == reality and m == b})  # fmt: skip
        sa = {"seeds": seeds, "return_per_seed": [val[a, s, reality] for s in seeds]}
        sb = {"seeds": seeds, "return_per_seed": [val[b, s, reality] for s in seeds]}
        out[reality] = paired_difference(sa, sb)
    return out


def _series(m: dict[str, Any]) -> dict[str, Any]:
    return {"mean": m["return_mean"], "std": m["return_std"], "per_seed": m["return_per_seed"]}


def reproduction(rows: list[dict[str, Any]], tier: str, restored: set[str]) -> dict[str, Any]:
    """Compare this run's rows with the committed table's rows of the same cells."""
    path = RESULTS / f"transfer_{tier}.json"
    if not path.exists():
        return {"compared": 0, "note": f"{path.name} not found"}
    old = {(r["env"], r["method"], r["seed"], r["reality"]): r["return_mean"]
           for r in json.loads(path.read_text(encoding="utf-8"))["rows"]}  # fmt: skip
    fresh, trivial = [], 0
    for r in rows:
        key = (r["env"], r["method"], r["seed"], r["reality"])
        if key not in old:
            continue
        if f"{r['env']}|{r['method']}|{r['seed']}" in restored:
            trivial += 1
        else:
            fresh.append(abs(r["return_mean"] - old[key]))
    return {
        "compared": len(fresh),
        "identical": sum(d == 0 for d in fresh),
        "max_abs_diff": max(fresh, default=0.0),
        "restored_rows_not_compared": trivial,
    }


def _f(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.2f}"


def _diff_cells(d: dict[str, Any]) -> str:
    """A paired difference as two table cells: mean +- SE (marked beyond 2 SE) | seeds higher."""
    sig = " **(> 2 SE)**" if d["beyond_2se"] else ""
    return f"{_f(d['mean'])} +- {d['se']:.2f}{sig} | {d['higher']}/{len(d['seeds'])}"


def _per_reality_text(per: dict[str, dict[str, Any]]) -> str:
    return "; ".join(f"{r} {_f(d['mean'])} +- {d['se']:.2f} ({d['higher']}/{len(d['seeds'])})"
                     for r, d in per.items())  # fmt: skip


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# Uniform DR against no DR, {len(doc['seeds'])} seeds ({doc['tier']} tier)",
        "",
        "Paired difference uniform DR minus no DR (mean return over the env's realities, seed "
        "by seed): mean +- standard error over seeds; > 2 SE is marked.",
        "",
        "| env | B | no DR | uniform DR | uniform - no DR (+- SE) | higher on seeds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for env, e in doc["envs"].items():
        lines.append(
            f"| {env} | {e['train_steps']:,} | {e['no_dr']['mean']:.2f} +- {e['no_dr']['std']:.2f}"
            f" | {e['uniform']['mean']:.2f} +- {e['uniform']['std']:.2f} | "
            f"{_diff_cells(e['paired'])} |"
        )
    lines += ["", "Per reality (uniform DR minus no DR, +- SE; seeds higher):", ""]
    for env, e in doc["envs"].items():
        lines.append(f"- {env}: " + _per_reality_text(e["per_reality"]))
    guided = [(env, m, g) for env, e in doc["envs"].items()
              for m, g in e.get("vs_uniform", {}).items()]  # fmt: skip
    if guided:
        lines += [
            "",
            "Guided methods against uniform DR (method minus uniform DR, paired by seed):",
            "",
            "| env | method | method's return | method - uniform DR (+- SE) | higher on seeds |",
            "|---|---|---:|---:|---:|",
        ]
        for env, m, g in guided:
            lines.append(
                f"| {env} | {METHODS_NAMES[m]} | {g['mean']:.2f} +- {g['std']:.2f} | "
                f"{_diff_cells(g['paired'])} |"
            )
        lines += ["", "Per reality (method minus uniform DR, +- SE; seeds higher):", ""]
        for env, m, g in guided:
            lines.append(f"- {env}, {METHODS_NAMES[m]}: " + _per_reality_text(g["per_reality"]))
    rep = doc["reproduction"]
    lines += [
        "",
        f"Reproduction against the committed transfer_{doc['tier']}.json: "
        f"{rep.get('identical', 0)}/{rep['compared']} rows identical "
        f"(max |diff| {rep.get('max_abs_diff', 0.0):.4g}); "
        f"{rep.get('restored_rows_not_compared', 0)} rows came from cells restored from it.",
        "",
        # a re-run from the cache trains 0 cells, so the tables' cost is every cell's own
        f"{doc['cells_run_now']} cells trained in {doc['wall_minutes']:.1f} min wall "
        f"({doc['jobs']} jobs); all {doc['cells_total']} cells took "
        f"{doc['cell_minutes_total']:.1f} cell-minutes.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tier", default="quick", choices=["quick", "full"])
    ap.add_argument("--envs", nargs="+", metavar="ENV")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("runs/bench_transfer"))
    ap.add_argument("--guided", nargs="+", default=[], choices=GUIDED, metavar="M",
                    help=f"also compare these with uniform DR ({', '.join(GUIDED)})")  # fmt: skip
    args = ap.parse_args()
    plans, methods, seeds = select(args.tier, args.envs, [*METHODS, *args.guided], args.seeds)
    restored = set()  # cells restored from the committed file: matching it is no check
    for path in (args.cache / args.tier).glob("*/*.json"):
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("restored_from"):
            c = cached["cell"]
            restored.add(f"{c['env_id']}|{c['method']}|{c['seed']}")
    t0 = time.perf_counter()
    doc = run_transfer(
        args.tier, plans, methods, seeds, cache=args.cache,
        out=Path("runs/transfer_seeds") / args.tier, jobs=args.jobs,
        log=lambda s: print(s, flush=True),
    )  # fmt: skip
    summary = summarize(doc["rows"])
    out: dict[str, Any] = {
        "benchmark": "transfer_seeds",
        "tier": args.tier,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_info(),
        "seeds": seeds,
        "jobs": args.jobs,
        "cells_run_now": doc["cells_run_now"],
        "wall_minutes": (time.perf_counter() - t0) / 60,
        "cells_total": len(doc["cells"]),
        "cell_minutes_total": doc["cell_minutes_total"],
        "envs": {},
        "reproduction": reproduction(doc["rows"], args.tier, restored),
    }
    for env, ms in summary.items():
        u, n = ms["uniform"], ms["no_dr"]
        out["envs"][env] = {
            "train_steps": plans[env].train_steps,
            "no_dr": _series(n),
            "uniform": _series(u),
            "paired": paired_difference(u, n),
            "per_reality": per_reality(doc["rows"], env),
        }
        vs = {
            m: {**_series(ms[m]), "paired": paired_difference(ms[m], u),
                "per_reality": per_reality(doc["rows"], env, m, "uniform")}
            for m in args.guided
            if m in ms
        }  # fmt: skip
        if vs:
            out["envs"][env]["vs_uniform"] = vs
    stem = RESULTS / f"transfer_seeds_{args.tier}{'_guided' if args.guided else ''}"
    atomic_write_text(stem.with_suffix(".json"), json.dumps(out, indent=1) + "\n")
    text = markdown(out)
    atomic_write_text(stem.with_suffix(".md"), text)
    print(text)


if __name__ == "__main__":
    main()

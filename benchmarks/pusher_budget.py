"""Diagnostic: does a larger budget let uniform DR catch up with no DR on Pusher?

Its committed results predate the Pusher envs' revision 1 (2026-11-28: a puck pushed off the
table is charged the rest of the episode; ``benchmarks/pusher_fall.py``). Its cell cache does
not know the revision: re-run it with an empty ``--cache`` to measure the current envs.

The full transfer tier has uniform DR losing to no DR on Pusher at B = 151,552 steps. This trains
both at 2B (303,104 steps; otherwise the full tier's Pusher plan) with seeds 0, 1, 2, evaluates
them on every Pusher reality like the benchmark does, and writes
benchmarks/results/pusher_budget.json next to the full tier's 1x cells (from its cache, if there).

Usage: python benchmarks/pusher_budget.py [--cache DIR] [--full-cache runs/bench_transfer/full]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from domrand.bench.tiers import PUSHER_V0
from domrand.bench.transfer import Cell, load_cached, run_cell

ENV = "domrand/Pusher-v0"
PLAN = PUSHER_V0["full"]
PLAN2 = dataclasses.replace(PLAN, train_steps=2 * PLAN.train_steps)
OUT = Path(__file__).parent / "results" / "pusher_budget.json"


def _one(job: tuple[Cell, Path]) -> dict:
    cell, cache = job
    return run_cell(cell, PLAN2, cache)


def _summary(docs: list[dict]) -> dict:
    means = [statistics.mean(r["return_mean"] for r in d["rows"]) for d in docs]
    per: dict[str, list[float]] = {}
    for d in docs:
        for r in d["rows"]:
            per.setdefault(r["reality"], []).append(r["return_mean"])
    return {"mean": statistics.mean(means), "std": statistics.pstdev(means), "per_seed": means,
            "per_reality": {k: statistics.mean(v) for k, v in per.items()}}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path("runs/bench_transfer/pusher_2x"))
    ap.add_argument("--full-cache", type=Path, default=Path("runs/bench_transfer/full"))
    args = ap.parse_args()
    cells = [Cell(ENV, m, s) for m in ("no_dr", "uniform") for s in (0, 1, 2)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2) as ex:
        docs = list(ex.map(_one, [(c, args.cache) for c in cells]))
    doc = {"benchmark": "pusher_budget", "steps": {"1x": PLAN.train_steps, "2x": PLAN2.train_steps},
           "2x": {}, "1x": {}, "cell_wall_s": [d["wall_s"] for d in docs],
           "elapsed_s": time.perf_counter() - t0}  # fmt: skip
    for m in ("no_dr", "uniform"):
        doc["2x"][m] = _summary([d for c, d in zip(cells, docs) if c.method == m])
        full = [load_cached(args.full_cache, c, PLAN) for c in cells if c.method == m]
        if all(full):
            doc["1x"][m] = _summary(full)  # type: ignore[arg-type]
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    for tier in ("1x", "2x"):
        for m, s in doc[tier].items():
            print(f"{tier} {m}: {s['mean']:.2f} +- {s['std']:.2f} over seeds")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

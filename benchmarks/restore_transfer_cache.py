"""Rebuild a transfer-benchmark cell cache from a committed results file.

The cell cache (``runs/bench_transfer/<tier>``) is not committed, so after a change that touches
only some cells (e.g. one env's default spec), a fresh checkout would otherwise train every cell
of the tier again to write its report. This writes a cache entry for each cell of a results JSON
(``benchmarks/results/transfer_<tier>.json``) that is still current, so that
``domrand bench transfer --tier <tier>`` trains only the cells the change touched:

* the tier's plan for the cell's env must equal the one the file was written with;
* where the file records the cell's fingerprint (results written since the fingerprint covers
  the shipped spec and reality files), it must equal the cell's fingerprint now;
* older files record none: then ``--stale ENV:METHOD`` names the cells the change touched and
  every other cell is trusted (say which in the commit).

A restored entry keeps the file's rows and extras, its wall time where recorded (else the
training minutes of its rows) and a ``restored_from`` field naming the file.

Usage: python benchmarks/restore_transfer_cache.py RESULTS_JSON [--cache runs/bench_transfer]
       [--stale pusher:uniform pusher:cmaes ...]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from domrand.bench.tiers import PUSHER_V0, TIERS
from domrand.bench.transfer import Cell, fingerprint, short_name, write_cell


def cell_of(row: dict[str, Any]) -> Cell:
    """The cell a results row came from (an oracle's cell names its reality)."""
    seed = 0 if row["method"] == "random" else int(row["seed"])
    reality = row["reality"] if row["method"] == "oracle" else None
    return Cell(row["env"], row["method"], seed, reality)


def restore(results: Path, cache: Path, stale: set[str]) -> tuple[list[str], list[str]]:
    """Write the current cells of ``results`` into ``cache``; return (restored, skipped) labels."""
    doc = json.loads(results.read_text(encoding="utf-8"))
    tier = doc["tier"]
    plans = {**TIERS[tier], PUSHER_V0[tier].env_id: PUSHER_V0[tier]}  # and the earlier Pusher
    recorded: dict[str, dict[str, Any]] = doc.get("cells", {})
    grouped: dict[Cell, list[dict[str, Any]]] = defaultdict(list)
    for row in doc["rows"]:
        grouped[cell_of(row)].append(row)
    restored, skipped = [], []
    for cell, rows in grouped.items():
        plan = plans.get(cell.env_id)
        now = fingerprint(cell, plan) if plan is not None else None
        same_plan = plan is not None and doc["plans"].get(cell.env_id) == plan.to_dict()
        if cell.label in recorded:
            current = recorded[cell.label]["fingerprint"] == now
        else:
            current = f"{short_name(cell.env_id)}:{cell.method}" not in stale
        if not (same_plan and current):
            skipped.append(cell.label)
            continue
        wall = recorded.get(cell.label, {}).get("wall_s")
        if wall is None:
            wall = 60.0 * max(float(r.get("train_minutes", 0.0)) for r in rows)
        write_cell(cache / tier, cell, plan, rows, doc.get("extras", {}).get(cell.label, {}),
                   wall, load_avg=[], restored_from=str(results))  # fmt: skip
        restored.append(cell.label)
    return restored, skipped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="benchmarks/results/transfer_<tier>.json")
    ap.add_argument("--cache", type=Path, default=Path("runs/bench_transfer"))
    ap.add_argument("--stale", nargs="*", default=[], metavar="ENV:METHOD",
                    help="cells a change touched (files without fingerprints)")  # fmt: skip
    args = ap.parse_args()
    restored, skipped = restore(args.results, args.cache, set(args.stale))
    print(f"restored {len(restored)} cells into {args.cache}; left to train: {len(skipped)}")
    for label in skipped:
        print(f"  not restored: {label}")


if __name__ == "__main__":
    main()

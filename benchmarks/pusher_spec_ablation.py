"""Diagnostic: which part of Pusher's default spec makes uniform DR lose to no DR?

Its committed results predate the Pusher envs' revision 1 (2026-11-28: a puck pushed off the
table is charged the rest of the episode; ``benchmarks/pusher_fall.py``). Its cell cache does
not know the revision: re-run it with an empty ``--work`` to measure the current envs.

The full transfer tier had uniform DR losing to no DR on Pusher (-16.55 vs -11.62 over the four
realities at B = 151,552 steps), and doubling B did not help (benchmarks/pusher_budget.py).
Single-seed runs of each knob group pointed at the latency knob ``action.delay`` (0-2 control
steps): with it a Pusher policy had not learned to push by 82k steps, without it it had. This
trains the full tier's Pusher plan on spec variants with seeds 0, 1, 2 and evaluates each policy
on every Pusher reality exactly as the transfer benchmark does (same episodes, same eval seeds):

* ``no_latency``: the default spec without ``action.delay``;
* ``latency_0_1``: the default spec with ``action.delay`` in {0, 1}.

The default spec's and no DR's cells (same plan, same seeds) are read from
benchmarks/results/transfer_full.json, the committed run of the full tier before this change.
Writes benchmarks/results/pusher_spec_ablation.json.

Usage: python benchmarks/pusher_spec_ablation.py [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from domrand.bench.methods import train_config
from domrand.bench.tiers import PUSHER_V0
from domrand.bench.transfer import score_on_realities

ENV = "domrand/Pusher-v0"
PLAN = PUSHER_V0["full"]
RESULTS = Path(__file__).parent / "results"
OUT = RESULTS / "pusher_spec_ablation.json"
#: the default spec's latency entry in each variant (None: dropped)
VARIANTS: dict[str, Any] = {
    "no_latency": None,
    "latency_0_1": {"dist": "choice", "values": [0, 1]},
}
SEEDS = (0, 1, 2)


def variant_spec(name: str) -> dict[str, Any]:
    """The shipped default spec (what transfer_full.json's uniform DR cells trained on) with
    its latency entry replaced or dropped."""
    from domrand.registry import default_spec_path

    shipped = yaml.safe_load(default_spec_path(ENV).read_text(encoding="utf-8"))
    params = dict(shipped["parameters"])
    if VARIANTS[name] is None:
        del params["action.delay"]
    else:
        params["action.delay"] = VARIANTS[name]
    return {"env": ENV, "parameters": params}


def _one(job: tuple[str, int, Path]) -> dict[str, Any]:
    import torch

    import domrand
    from domrand.policies.checkpoint import load_policy
    from domrand.policies.train import train

    name, seed, work = job
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    spec = domrand.load_spec(variant_spec(name), env=ENV)
    train(train_config(PLAN, seed), work / f"{name}_seed{seed}", spec=spec, progress=False)
    policy, _ = load_policy(work / f"{name}_seed{seed}")
    per = {
        name: {"return_mean": r.mean, "success_rate": r.success_rate}
        for name, r in score_on_realities(policy, PLAN, seed).items()
    }
    return {"variant": name, "seed": seed, "per_reality": per,
            "mean": statistics.mean(v["return_mean"] for v in per.values()),
            "wall_s": time.perf_counter() - t0}  # fmt: skip


def _committed(method: str) -> list[dict[str, Any]]:
    doc = json.loads((RESULTS / "transfer_full.json").read_text(encoding="utf-8"))
    out = []
    for seed in SEEDS:
        rows = [r for r in doc["rows"] if r["env"] == ENV and r["method"] == method
                and r["seed"] == seed]  # fmt: skip
        per = {r["reality"]: {"return_mean": r["return_mean"],
                              "success_rate": r["success_rate"]} for r in rows}  # fmt: skip
        out.append({"variant": method, "seed": seed, "per_reality": per,
                    "mean": statistics.mean(v["return_mean"] for v in per.values())})  # fmt: skip
    return out


def _summary(cells: list[dict[str, Any]]) -> dict[str, Any]:
    means = [c["mean"] for c in cells]
    realities = list(cells[0]["per_reality"])
    return {
        "mean": statistics.mean(means),
        "std": statistics.pstdev(means),
        "per_seed": means,
        "per_reality": {
            k: statistics.mean(c["per_reality"][k]["return_mean"] for c in cells) for k in realities
        },
        "success_rate": statistics.mean(
            c["per_reality"][k]["success_rate"] for c in cells for k in realities
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("runs/pusher_spec_ablation"))
    args = ap.parse_args()
    jobs = [(name, seed, args.work) for name in VARIANTS for seed in SEEDS]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2) as ex:
        cells = list(ex.map(_one, jobs))
    doc: dict[str, Any] = {
        "benchmark": "pusher_spec_ablation",
        "train_steps": PLAN.train_steps,
        "episodes": PLAN.episodes,
        "seeds": list(SEEDS),
        "variants": {k: v for k, v in VARIANTS.items()},
        "elapsed_s": time.perf_counter() - t0,
        "cells": cells,
        "summary": {},
    }
    for method in ("no_dr", "uniform"):
        label = "no_dr" if method == "no_dr" else "default_spec (latency 0-2)"
        doc["summary"][label] = _summary(_committed(method))
    for name in VARIANTS:
        doc["summary"][name] = _summary([c for c in cells if c["variant"] == name])
    OUT.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    for label, s in doc["summary"].items():
        print(f"{label:28s} {s['mean']:7.2f} +- {s['std']:.2f} over seeds; success "
              f"{s['success_rate']:.2f}; " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                    s["per_reality"].items()))  # fmt: skip
    print(f"wrote {OUT} ({doc['elapsed_s'] / 60:.1f} min)")


if __name__ == "__main__":
    main()

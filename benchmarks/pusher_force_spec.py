"""Calibration: is PusherForce's default training spec learnable at the full tier's budget B?

Its committed results predate the Pusher envs' revision 1 (2026-11-28: a puck pushed off the
table is charged the rest of the episode; ``benchmarks/pusher_fall.py``). Its cell cache does
not know the revision: re-run it with an empty ``--work`` to measure the current envs.

Why. Uniform DR on PusherForce has not learned the nominal task at B (nominal success 0.16 over
10 seeds), more budget makes it worse (0.28 at 2B, 0.07 at 4B: ``pusher_own_distribution.py
--factor``), and ``pusher_force_trainer.py`` tests PPO stabilizers for it. A default spec under
which the policy cannot do the nominal task is a poor default for users as well as for the
benchmark. On Pusher-v0 the latency knob ``action.delay`` was what slowed learning most
(``pusher_spec_ablation.py``).

Protocol, committed 2026-11-27 before any cell of this script ran, and run only if
``pusher_force_trainer.py`` selects no trainer setting:

* variants of the shipped spec ``assets/specs/pusher_force.yaml`` --
  ``no_latency`` (without ``action.delay``), ``latency_0_1`` (``action.delay`` in {0, 1}) and
  ``narrow`` (every 0.5-2x log-uniform range narrowed to 0.7-1.4x; latency and noise unchanged);
* uniform DR on each variant, the full tier's plan and trainer defaults at B = 151,552, on the
  calibration seeds 10, 11, 12 (the shipped spec's cells on these seeds are
  ``pusher_force_trainer.py``'s ``default`` arm);
* each policy is scored deterministically on the nominal env (50 episodes) and on domains of
  the shipped spec (100 episodes), never on a reality;
* a variant qualifies if uniform DR's mean nominal success over the 3 seeds reaches 0.5; the
  qualifying variant with the highest nominal success becomes PusherForce's shipped default
  spec, and every PusherForce cell that trains on it (uniform DR and the four guided methods)
  is re-run in both tiers and reported whatever comes out. The realities are not touched. If no
  variant qualifies, the spec stays.

Writes benchmarks/results/pusher_force_spec.json; finished cells are kept in ``--work``.

Usage: python benchmarks/pusher_force_spec.py [--work runs/pusher_force_spec]
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from pusher_force_trainer import ENV, PLAN, QUALIFY, SEEDS, score_cell, summarize

from domrand.fsutil import atomic_write_text

VARIANTS = ("no_latency", "latency_0_1", "narrow")
NARROW = (0.7, 1.4)
OUT = Path(__file__).parent / "results" / "pusher_force_spec.json"


def variant_spec(name: str) -> dict[str, Any]:
    """The shipped default spec with the variant's change."""
    from domrand.registry import default_spec_path

    shipped = yaml.safe_load(default_spec_path(ENV).read_text(encoding="utf-8"))
    params = {k: dict(v) for k, v in shipped["parameters"].items()}
    if name == "no_latency":
        del params["action.delay"]
    elif name == "latency_0_1":
        params["action.delay"] = {"dist": "choice", "values": [0, 1]}
    elif name == "narrow":
        for entry in params.values():
            if entry.get("dist") == "loguniform" and (entry["low"], entry["high"]) == (0.5, 2.0):
                entry["low"], entry["high"] = NARROW
    else:
        raise ValueError(f"unknown variant {name!r}; one of {VARIANTS}")
    return {"env": ENV, "parameters": params}


def _one(job: tuple[str, int, Path]) -> dict[str, Any]:
    import torch

    import domrand
    from domrand.bench.methods import train_config
    from domrand.policies.train import train

    name, seed, work = job
    done = work / f"{name}_seed{seed}.json"
    if done.exists():
        return json.loads(done.read_text(encoding="utf-8"))
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    policy_dir = work / f"{name}_seed{seed}"
    spec = domrand.load_spec(variant_spec(name), env=ENV)
    train(train_config(PLAN, seed), policy_dir, spec=spec, progress=False)
    cell = score_cell(policy_dir, t0, variant=name, seed=seed)
    atomic_write_text(done, json.dumps(cell, indent=1) + "\n")
    return cell


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("runs/pusher_force_spec"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2) as ex:
        cells = list(ex.map(_one, [(v, s, args.work) for v in VARIANTS for s in SEEDS]))
    summary = {v: summarize([c for c in cells if c["variant"] == v]) for v in VARIANTS}
    ok = [v for v in VARIANTS if summary[v]["nominal_success"] >= QUALIFY]
    choice = max(ok, key=lambda v: summary[v]["nominal_success"], default=None)
    from domrand.bench.transfer import machine_info

    doc = {"benchmark": "pusher_force_spec", "env": ENV, "train_steps": PLAN.train_steps,
           "seeds": list(SEEDS), "variants": {v: variant_spec(v) for v in VARIANTS},
           "qualify": QUALIFY, "choice": choice, "summary": summary,
           "elapsed_s": time.perf_counter() - t0, "cells": cells,
           "machine": machine_info()}  # fmt: skip
    atomic_write_text(OUT, json.dumps(doc, indent=1) + "\n")
    for v, s in summary.items():
        print(f"{v:12s} success nominal {s['nominal_success']:.2f} shipped spec "
              f"{s['spec_success']:.2f}; return nominal {s['nominal_return']:.2f} shipped spec "
              f"{s['spec_return']:.2f}")  # fmt: skip
    print(f"choice: {choice}; wrote {OUT} ({doc['elapsed_s'] / 60:.1f} min)")


if __name__ == "__main__":
    main()

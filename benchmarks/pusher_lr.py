"""Diagnostic: why does longer PPO training on Pusher make the deployed policy worse?

Its committed results predate the Pusher envs' revision 1 (2026-11-28: a puck pushed off the
table is charged the rest of the episode; ``benchmarks/pusher_fall.py``). Its cell cache does
not know the revision: re-run it with an empty ``--work`` to measure the current envs.

benchmarks/pusher_budget.py found that doubling the full tier's Pusher budget (303,104 steps)
lowers the return on the realities, with and without DR. This trains no DR at that budget with
the benchmark's learning rate (the trainer default, 1e-3) and with 3e-4 (sb3's RecurrentPPO
default), and reports from each run's metrics.csv the PPO update statistics (approximate KL,
clip fraction) and the training return, then evaluates the final policy on nominal dynamics
with the deterministic (deployed) and the stochastic (training) action, and on every reality
deterministically like the transfer benchmark. Writes benchmarks/results/pusher_lr.json.

Usage: python benchmarks/pusher_lr.py [--seeds 0] [--work runs/pusher_lr]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from domrand.bench.methods import train_config
from domrand.bench.tiers import PUSHER_V0
from domrand.bench.transfer import EVAL_SEED, score_on_realities

ENV = "domrand/Pusher-v0"
PLAN = dataclasses.replace(PUSHER_V0["full"], train_steps=2 * PUSHER_V0["full"].train_steps)
OUT = Path(__file__).parent / "results" / "pusher_lr.json"
RATES = (1e-3, 3e-4)


def _update_stats(metrics: Path) -> dict[str, float]:
    """Mean KL and clip fraction over the run's updates, and the training return at its end."""
    rows = list(csv.DictReader(metrics.open(encoding="utf-8")))
    tail = [float(r["return_mean"]) for r in rows[-20:] if r["return_mean"]]
    return {
        "approx_kl_mean": statistics.mean(float(r["approx_kl"]) for r in rows),
        "clip_frac_mean": statistics.mean(float(r["clip_frac"]) for r in rows),
        "train_return_last_20_updates": statistics.mean(tail),
        "action_std_end": float(rows[-1]["action_std"]),
    }


def _one(job: tuple[float, int, Path]) -> dict[str, Any]:
    import torch

    from domrand.policies.checkpoint import load_policy
    from domrand.policies.evaluate import evaluate
    from domrand.policies.train import train

    lr, seed, work = job
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    run = work / f"lr{lr:g}_seed{seed}"
    train(train_config(PLAN, seed).replace(learning_rate=lr), run, spec=None, progress=False)
    policy, _ = load_policy(run)
    out: dict[str, Any] = {"learning_rate": lr, "seed": seed, **_update_stats(run / "metrics.csv")}
    for det in (True, False):
        r = evaluate(policy, ENV, episodes=40, seed=EVAL_SEED + seed, deterministic=det)
        kind = "deterministic" if det else "stochastic"
        out[f"nominal_{kind}"] = {"return_mean": r.mean, "success_rate": r.success_rate}
    per = {name: r.mean for name, r in score_on_realities(policy, PLAN, seed).items()}
    out["realities"] = per
    out["realities_mean"] = statistics.mean(per.values())
    out["wall_s"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--work", type=Path, default=Path("runs/pusher_lr"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2) as ex:
        cells = list(ex.map(_one, [(lr, s, args.work) for lr in RATES for s in args.seeds]))
    doc = {"benchmark": "pusher_lr", "train_steps": PLAN.train_steps, "cells": cells,
           "elapsed_s": time.perf_counter() - t0}  # fmt: skip
    OUT.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    for c in cells:
        print(f"lr {c['learning_rate']:g} seed {c['seed']}: KL {c['approx_kl_mean']:.4f}, clip "
              f"{c['clip_frac_mean']:.3f}, train return {c['train_return_last_20_updates']:.2f}; "
              f"nominal det {c['nominal_deterministic']['return_mean']:.2f} "
              f"({c['nominal_deterministic']['success_rate']:.2f}) / stoch "
              f"{c['nominal_stochastic']['return_mean']:.2f} "
              f"({c['nominal_stochastic']['success_rate']:.2f}); realities "
              f"{c['realities_mean']:.2f}")  # fmt: skip
    print(f"wrote {OUT} ({doc['elapsed_s'] / 60:.1f} min)")


if __name__ == "__main__":
    main()

"""Calibration: PPO settings under which uniform DR learns PusherForce's task at the full tier's B.

Its committed results predate the Pusher envs' revision 1 (2026-11-28: a puck pushed off the
table is charged the rest of the episode; ``benchmarks/pusher_fall.py``). Its cell cache does
not know the revision: re-run it with an empty ``--work`` to measure the current envs.

Why. In the full transfer tier uniform DR loses to no DR on PusherForce, and the uniform-DR
policy has not learned the task: its nominal success is 0.16 over 10 seeds at B, 0.28 over 3
seeds at 2B (``pusher_own_distribution.py --factor``), against no DR's 0.68. The trainer's own
statistics (metrics.csv of those cells) show aggressive updates: approximate KL 0.03-0.04 per
update at the default learning rate 1e-3, spikes to 0.18-0.30, the action std shrinking from
0.6 to 0.18, and a seed whose return falls from -30 to -45 and stays. A transfer comparison
with a policy that never learned the task says little about DR.

Protocol, committed 2026-11-27 before any cell of this script ran:

* arms: the trainer defaults, and three standard PPO stabilizers one at a time --
  ``target_kl`` 0.02 (stop an update's epochs early past that KL), ``ent_coef`` 0.01 (an
  entropy bonus), ``learning_rate`` 3e-4 (sb3's RecurrentPPO default);
* each arm trains no DR and uniform DR (the benchmark's ``train_method``, full-tier plan, B =
  151,552) on calibration seeds 10, 11, 12, not the benchmark's seeds 0-2;
* each policy is scored deterministically on the nominal env (50 episodes) and on domains drawn
  from the default spec (100 episodes), never on a reality;
* an arm qualifies if uniform DR's *and* no DR's mean nominal success over the 3 seeds both reach
  0.5; the qualifying arm with the highest uniform-DR nominal success becomes PusherForce's
  trainer setting (``EnvPlan.ppo``) in both tiers, for every method alike, and every PusherForce
  cell of both tiers is re-run and reported whatever comes out. If no arm qualifies, nothing
  changes.
* this rule comes before ``pusher_own_distribution.py``'s budget rule (whose 4B cells were still
  running when this was committed): a setting that qualifies at B keeps the budget at B, and the
  4B cells are reported as a diagnostic; the budget rule applies only if no arm qualifies.

Writes benchmarks/results/pusher_force_trainer.json. Finished cells are kept in ``--work``, so a
killed run computes only the missing ones.

Exploration after the protocol (it changes nothing shipped): ``--factor K`` trains at K times B,
``--arms`` and ``--methods`` pick a subset (``kl_ent`` = ``target_kl`` and ``ent_coef``
together is only for this), and the results go to pusher_force_trainer_<K>x.json with no
choice made. It asks whether a stabilizer stops the late-training collapse seen at 4B, to
inform a rule for a later session; such a rule must use other seeds than 10-12.

A second protocol, ``--rule rev1``, committed 2026-11-28 before any of its cells ran. The rule
above was decided under revision 0 (the free fall). Under revision 1 uniform DR's nominal
success at B rose from 0.17 to 0.30 (seeds 20-22, ``pusher_fall.py``), and the exploration at 2B
showed ``kl_ent`` lifting uniform DR's nominal return from -19.02 to -8.27, so the question is
asked again, once, on the shipped env:

* arms ``default`` and ``kl_ent`` (``target_kl`` 0.02 and ``ent_coef`` 0.01), each at 2B =
  303,104 steps, training no DR and uniform DR on fresh seeds 30, 31, 32 (used nowhere else);
* scored as above: nominal env (50 episodes) and default-spec domains (100), never a reality;
* an arm qualifies if uniform DR's and no DR's mean nominal success both reach 0.5; the
  qualifying arm with the higher uniform-DR nominal success becomes the full tier's PusherForce
  plan: B = 303,104 and, for ``kl_ent``, ``EnvPlan.ppo`` for every method alike. Every
  PusherForce cell of the full tier is then re-run and reported whatever comes out. The quick
  tier is not touched. If neither arm qualifies, nothing changes.

Writes pusher_force_trainer_rev1_2x.json (cells in ``runs/pusher_force_trainer_rev1_2x``).

The committed pusher_force_trainer_4x.json (2026-12-06, ``--factor 4 --arms kl_ent --methods
uniform``) is an exploration under revision 1, in a fresh ``--work``; it decides nothing.

Usage: python benchmarks/pusher_force_trainer.py [--work DIR] [--factor K] [--arms ...]
       [--methods ...] [--rule rev1]
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

from domrand.bench.tiers import PUSHER_FULL_AT_B
from domrand.fsutil import atomic_write_text

ENV = "domrand/PusherForce-v0"
PLAN = PUSHER_FULL_AT_B
ARMS: dict[str, dict[str, Any]] = {
    "default": {},
    "target_kl": {"target_kl": 0.02},
    "ent_coef": {"ent_coef": 0.01},
    "lr_3e-4": {"learning_rate": 3e-4},
}
#: arms for the exploration only (``--arms``), never part of the protocol's choice
EXPLORE_ARMS: dict[str, dict[str, Any]] = {"kl_ent": {"target_kl": 0.02, "ent_coef": 0.01}}
ALL_ARMS = {**ARMS, **EXPLORE_ARMS}
METHODS = ("no_dr", "uniform")
SEEDS = (10, 11, 12)
#: the second protocol (``--rule rev1``): its arms, seeds and budget factor
REV1_ARMS, REV1_SEEDS, REV1_FACTOR = ("default", "kl_ent"), (30, 31, 32), 2
EPISODES_NOMINAL, EPISODES_SPEC = 50, 100
EVAL_SEED = 90_000
QUALIFY = 0.5  #: mean nominal success both methods need
OUT = Path(__file__).parent / "results" / "pusher_force_trainer.json"


def update_stats(metrics: Path) -> dict[str, float]:
    """PPO update statistics from a run's metrics.csv."""
    with open(metrics, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    kl = [float(r["approx_kl"]) for r in rows]
    return {"approx_kl_mean": statistics.mean(kl), "approx_kl_max": max(kl),
            "action_std_end": float(rows[-1]["action_std"]),
            "train_success_last_10": statistics.mean(
                float(r["success_rate"]) for r in rows[-10:])}  # fmt: skip


def score_cell(policy_dir: Path, t0: float, **keys: Any) -> dict[str, Any]:
    """A trained policy's calibration cell: ``keys``, then its nominal and default-spec scores
    (deterministic, the same episodes for every policy) and its PPO update statistics."""
    import domrand
    from domrand.policies.checkpoint import load_policy
    from domrand.policies.evaluate import evaluate

    policy, _ = load_policy(policy_dir)
    spec = domrand.load_spec(domrand.default_spec_path(ENV), env=ENV)
    nominal = evaluate(policy, ENV, episodes=EPISODES_NOMINAL, seed=EVAL_SEED)
    on_spec = evaluate(policy, ENV, spec=spec, episodes=EPISODES_SPEC, seed=EVAL_SEED)
    return {
        **keys,
        "nominal": {"return_mean": nominal.mean, "success_rate": nominal.success_rate},
        "default_spec": {"return_mean": on_spec.mean, "success_rate": on_spec.success_rate},
        "updates": update_stats(policy_dir / "metrics.csv"),
        "wall_s": time.perf_counter() - t0,
    }


def summarize(cells: list[dict[str, Any]]) -> dict[str, float]:
    """Mean nominal and default-spec success and return over some calibration cells."""

    def mean(where: str, key: str) -> float:
        return statistics.mean(c[where][key] for c in cells)

    return {
        "nominal_success": mean("nominal", "success_rate"),
        "nominal_return": mean("nominal", "return_mean"),
        "spec_success": mean("default_spec", "success_rate"),
        "spec_return": mean("default_spec", "return_mean"),
    }


def _one(job: tuple[str, str, int, Path, int]) -> dict[str, Any]:
    import torch

    from domrand.bench.methods import train_method

    arm, method, seed, work, factor = job
    done = work / f"{arm}_{method}_seed{seed}.json"
    if done.exists():
        return json.loads(done.read_text(encoding="utf-8"))
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    plan = dataclasses.replace(PLAN, ppo=ALL_ARMS[arm], train_steps=factor * PLAN.train_steps)
    trained = train_method(method, plan, seed, work / f"{arm}_{method}_seed{seed}")
    cell = score_cell(trained.policy_dir, t0, arm=arm, method=method, seed=seed)
    atomic_write_text(done, json.dumps(cell, indent=1) + "\n")
    return cell


def decide(summary: dict[str, dict[str, dict[str, float]]]) -> str | None:
    """A protocol's choice among the arms it ran (``summary``'s keys): the qualifying arm with the
    highest uniform-DR nominal success."""
    ok = [a for a in summary if all(summary[a][m]["nominal_success"] >= QUALIFY for m in METHODS)]
    return max(ok, key=lambda a: summary[a]["uniform"]["nominal_success"], default=None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="cell folder (runs/<results file's stem>)")
    ap.add_argument("--factor", type=int, default=1, help="train for this many times B")
    ap.add_argument("--arms", nargs="+", choices=list(ALL_ARMS), default=list(ARMS))
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    ap.add_argument("--rule", choices=["rev1"], help="run the second protocol (overrides the rest)")
    args = ap.parse_args()
    seeds = SEEDS
    if args.rule == "rev1":
        args.factor, args.arms, args.methods = REV1_FACTOR, list(REV1_ARMS), list(METHODS)
        seeds = REV1_SEEDS
        out = OUT.with_name(f"{OUT.stem}_rev1_{REV1_FACTOR}x.json")
        protocol = True
    else:
        protocol = args.factor == 1 and args.arms == list(ARMS) and args.methods == list(METHODS)
        out = OUT if args.factor == 1 else OUT.with_name(f"{OUT.stem}_{args.factor}x.json")
        if not protocol and out == OUT:
            ap.error("a subset of the protocol's arms or methods needs --factor other than 1")
    work = args.work or Path("runs") / out.stem
    jobs = [(a, m, s, work, args.factor) for a in args.arms for s in seeds for m in args.methods]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2) as ex:
        cells = list(ex.map(_one, jobs))
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for a in args.arms:
        summary[a] = {}
        for m in args.methods:
            mine = [c for c in cells if c["arm"] == a and c["method"] == m]
            summary[a][m] = {
                **summarize(mine),
                "approx_kl_mean": statistics.mean(c["updates"]["approx_kl_mean"] for c in mine),
            }
    choice = decide(summary) if protocol else None
    from domrand.bench.transfer import machine_info

    doc = {"benchmark": out.stem, "env": ENV, "train_steps": args.factor * PLAN.train_steps,
           "protocol": protocol, "rule": args.rule, "seeds": list(seeds),
           "arms": {a: ALL_ARMS[a] for a in args.arms},
           "qualify": QUALIFY, "choice": choice,
           "summary": summary, "elapsed_s": time.perf_counter() - t0, "cells": cells,
           "machine": machine_info()}  # fmt: skip
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    for a, per in summary.items():
        print(f"{a:10s} " + "; ".join(
            f"{m} success nominal {s['nominal_success']:.2f} spec {s['spec_success']:.2f} "
            f"return nominal {s['nominal_return']:.2f} kl {s['approx_kl_mean']:.3f}"
            for m, s in per.items()))  # fmt: skip
    print(f"choice: {choice}; wrote {out} ({doc['elapsed_s'] / 60:.1f} min)")


if __name__ == "__main__":
    main()

"""Diagnostic: what the free fall (Pusher envs before revision 1) taught PusherForce policies.

Until 2026-11-28 a puck pushed off the table ended the episode at no extra cost. With a cost
every step (distance to the goal, distance of the tip to the puck), ending the episode early is
worth up to the rest of the episode's costs, so a policy could gain by shoving the puck off the
table rather than steering it. Looking into why uniform DR had not learned PusherForce at the
full tier's B, two such policies (seed 20, trained by ``domrand train`` with the free fall)
pushed the puck off the table in 57% (no DR) and 73% (uniform DR) of 30 nominal episodes.
Revision 1 charges the falling step its cost once for every step left to the time limit.

This trains the full tier's ``no_dr`` and ``uniform`` cells (``train_method``, budget B) under
both rules -- ``free_fall`` (revision 0: a subclass with ``charge_fall = False``, registered as
a private variant in this process) and ``charged`` (the shipped env) -- on seeds 20-22, which no
benchmark or calibration used, and scores every policy deterministically *on the shipped env*
(the same task and the same episodes for all): the nominal env (50 episodes) and domains drawn
from the default spec (100 episodes), never a reality. Per policy it reports the fraction of
episodes whose puck fell, the success rate and the return. Finished cells are kept in
``--work``, so a killed run computes only the missing ones.

Writes benchmarks/results/pusher_fall.json.

Usage: python benchmarks/pusher_fall.py [--work DIR] [--seeds 20 21 22]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from domrand.bench.tiers import PUSHER_FULL_AT_B
from domrand.envs.pusher import PusherForceEnv
from domrand.fsutil import atomic_write_text

ENV = "domrand/PusherForce-v0"
FREE_FALL_ENV = "domrand/PusherForceFreeFall-v0"  #: private to this process and its children
PLAN = PUSHER_FULL_AT_B
RULES = {"free_fall": FREE_FALL_ENV, "charged": ENV}
METHODS = ("no_dr", "uniform")
EPISODES_NOMINAL, EPISODES_SPEC = 50, 100
EVAL_SEED = 90_000
OUT = Path(__file__).parent / "results" / "pusher_fall.json"


class FreeFallPusherForceEnv(PusherForceEnv):
    """PusherForce-v0 as of revision 0: a puck that falls off ends the episode for free."""

    charge_fall = False
    revision = 0


def _register() -> None:
    from domrand.registry import register_variant

    summary = "PusherForce-v0 with revision 0's free fall (benchmarks/pusher_fall.py)"
    register_variant(FREE_FALL_ENV, ENV, f"{__name__}:FreeFallPusherForceEnv", {}, summary)


def outcomes(policy: Any, spec: Any, episodes: int) -> dict[str, float]:
    """Deterministic episodes of ``policy`` on the shipped env: fall and success rates, return."""
    import torch

    import domrand

    env = domrand.make(ENV, spec=spec, seed=EVAL_SEED)  # a new domain every episode
    fell, success, returns = [], [], []
    with torch.no_grad():
        for _ in range(episodes):
            obs, _ = env.reset()
            state = policy.initial_state(1)
            prev_a, prev_r = torch.zeros(1, policy.config.act_dim), torch.zeros(1)
            start, total, done = torch.ones(1, dtype=torch.bool), 0.0, False
            while not done:
                x = torch.as_tensor(obs, dtype=torch.float32)[None]
                mean, _, state = policy.step(x, prev_a, prev_r, state, start)
                action = policy.deterministic_action(mean)
                obs, reward, terminated, truncated, info = env.step(action[0].numpy())
                total += float(reward)
                done = terminated or truncated
                prev_a, prev_r = action, torch.tensor([reward], dtype=torch.float32)
                start = torch.zeros(1, dtype=torch.bool)
            fell.append(bool(info.get("puck_fell", False)))
            success.append(bool(info.get("is_success", False)))
            returns.append(total)
    env.close()
    return {"fell": float(np.mean(fell)), "success": float(np.mean(success)),
            "return_mean": float(np.mean(returns))}  # fmt: skip


def _one(job: tuple[str, str, int, Path]) -> dict[str, Any]:
    import torch

    import domrand
    from domrand.bench.methods import train_method
    from domrand.policies.checkpoint import load_policy

    rule, method, seed, work = job
    done = work / f"{rule}_{method}_seed{seed}.json"
    if done.exists():
        return json.loads(done.read_text(encoding="utf-8"))
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    plan = dataclasses.replace(PLAN, env_id=RULES[rule])
    trained = train_method(method, plan, seed, work / f"{rule}_{method}_seed{seed}")
    policy, _ = load_policy(trained.policy_dir)
    spec = domrand.load_spec(domrand.default_spec_path(ENV), env=ENV)
    cell = {"rule": rule, "method": method, "seed": seed,
            "nominal": outcomes(policy, None, EPISODES_NOMINAL),
            "default_spec": outcomes(policy, spec, EPISODES_SPEC),
            "wall_s": time.perf_counter() - t0}  # fmt: skip
    atomic_write_text(done, json.dumps(cell, indent=1) + "\n")
    return cell


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("runs") / OUT.stem)
    ap.add_argument("--seeds", type=int, nargs="+", default=[20, 21, 22])
    args = ap.parse_args()
    _register()  # before the workers fork, so they inherit the variant
    jobs = [(r, m, s, args.work) for r in RULES for s in args.seeds for m in METHODS]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2) as ex:
        cells = list(ex.map(_one, jobs))
    summary: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for r in RULES:
        for m in METHODS:
            mine = [c for c in cells if c["rule"] == r and c["method"] == m]
            summary.setdefault(r, {})[m] = {
                where: {k: statistics.mean(c[where][k] for c in mine) for k in mine[0][where]}
                for where in ("nominal", "default_spec")
            }
    from domrand.bench.transfer import machine_info

    doc = {"benchmark": OUT.stem, "env": ENV, "train_steps": PLAN.train_steps,
           "seeds": args.seeds, "episodes": {"nominal": EPISODES_NOMINAL,
                                             "default_spec": EPISODES_SPEC},
           "summary": summary, "elapsed_s": time.perf_counter() - t0, "cells": cells,
           "machine": machine_info()}  # fmt: skip
    atomic_write_text(OUT, json.dumps(doc, indent=1) + "\n")
    for r, per in summary.items():
        for m, s in per.items():
            print(f"{r:9s} {m:7s} " + "; ".join(
                f"{w}: fell {v['fell']:.2f} success {v['success']:.2f} "
                f"return {v['return_mean']:.2f}" for w, v in s.items()))  # fmt: skip
    print(f"wrote {OUT} ({doc['elapsed_s'] / 60:.1f} min)")


if __name__ == "__main__":
    main()

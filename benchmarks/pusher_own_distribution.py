"""Diagnostic: does Pusher's uniform-DR policy at least master its own training distribution?

Its committed results predate the Pusher envs' revision 1 (2026-11-28: a puck pushed off the
table is charged the rest of the episode; ``benchmarks/pusher_fall.py``). Its cell cache does
not know the revision: re-run it with an empty ``--work`` to measure the current envs.

In the full transfer tier uniform DR loses to no DR on every Pusher reality (-15.70 vs -11.24
over 5 seeds). Two explanations predict different things on the *training* distribution:

* **the realities do not need DR**: the uniform-DR policy is better than the no-DR policy on
  domains drawn from the default spec (what it trained on), and only the realities, which a
  nominal policy already handles, hide that;
* **DR training underfits**: at the budget B the uniform-DR policy is no better than the no-DR
  policy even on its own training distribution, so the trainer, not the realities, is where
  the loss comes from.

This trains the full tier's Pusher ``no_dr`` and ``uniform`` cells (``train_method``, the same
plan and seeds as the benchmark) and scores every policy, deterministic, on the same episodes:
the nominal env, domains drawn from the default spec (``EPISODES_SPEC`` episodes, one domain
each) and the four realities (the benchmark's scoring). A third arm, ``uniform_priv``, is the
uniform cell with a privileged critic (``TrainConfig.privileged_critic``: the value function
sees each episode's knob values), a trainer change that could help DR training; a fourth,
``autodr``, is the benchmark's automatic DR cell, the guided method that did best on Pusher.
Seeds pair up
(seed s of every arm has the same initialization and the same evaluation episodes), so the
arms are compared seed by seed. Writes benchmarks/results/pusher_own_distribution.json.

Rule for the privileged critic, set before its cells ran (2026-11-27): it counts as helping
only if ``uniform_priv`` beats ``uniform`` on the realities on at least 7 of the 10 seeds and
by more than 2 standard errors of the paired difference. Its first design (one value head
``critic(z) + priv([z, f])`` training the shared LSTM) failed that rule: it lost to uniform DR
on the realities on 10/10 seeds (-5.65 +- 2.22), kept in
benchmarks/results/pusher_privileged_critic_v1.json. The second (the privileged head reads a
stop-gradient of the trunk; the plain head keeps training it) failed it too: 2/10 seeds,
-8.44 +- 3.04 (pusher_privileged_critic_v2.json). The third and last one tried here clips the
privileged head's gradient on its own, so it takes no share of the policy's clipped gradient
norm. It failed as well: 3/10 seeds, -6.06 +- 3.51 (pusher_own_distribution.json). The option
stays off by default. Either way the trainer default stays
off here: making it the default changes every DR cell of the transfer benchmark, which then
has to be re-run as a whole (2-4 hours for the full tier), not patched.

Usage: python benchmarks/pusher_own_distribution.py [--env domrand/Pusher-v0] [--work DIR]
       [--seeds 0 1 ... 9] [--methods no_dr uniform uniform_priv autodr]

``--env domrand/PusherForce-v0`` runs the same on the force-controlled Pusher, the benchmark's
Pusher since 2026-11-27, with its full-tier plan (results: pusher_force_own_distribution.json).

``--factor K`` trains every cell for K times the full tier's B (results and cells get a ``_Kx``
suffix). Budget rule for PusherForce, set 2026-11-27 before any 2x cell ran: at B the
uniform-DR policy has not learned the nominal task (nominal success 0.16 over 10 seeds, against
no DR's 0.68), so its transfer says little about DR. The full tier's PusherForce budget moves to
the smallest K in (2, 4) at which uniform DR's mean nominal success over seeds 0, 1, 2 reaches
0.5 -- a convergence criterion that looks neither at the realities nor at no DR. If K = 2
meets it, every PusherForce cell of the full tier is re-run at 2B (all methods, the same
settings otherwise) and the table reports whatever comes out; if neither does, B stays.

Finished cells are kept in ``--work`` as JSON, so a killed run, or one with more seeds, computes
only the missing cells.
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

from domrand.bench.tiers import PUSHER_FULL_AT_B, PUSHER_V0
from domrand.fsutil import atomic_write_text

#: the env (``--env``) -> its full-tier plan and results file; Pusher-v0 is the default
PLANS = {
    "domrand/Pusher-v0": PUSHER_V0["full"],
    "domrand/PusherForce-v0": PUSHER_FULL_AT_B,
}
RESULTS = Path(__file__).parent / "results"
OUTS = {
    "domrand/Pusher-v0": RESULTS / "pusher_own_distribution.json",
    "domrand/PusherForce-v0": RESULTS / "pusher_force_own_distribution.json",
}
#: ``uniform_priv``: uniform DR with a privileged critic (``TrainConfig.privileged_critic``)
#: ``autodr``: the benchmark's automatic DR cell (the guided method that did best on Pusher)
METHODS = ("no_dr", "uniform", "uniform_priv", "autodr")
#: paired comparisons reported (a minus b, seed by seed)
PAIRS = (("uniform", "no_dr"), ("uniform_priv", "uniform"), ("uniform_priv", "no_dr"),
         ("autodr", "uniform"), ("autodr", "no_dr"))  # fmt: skip
EPISODES_SPEC = 200  #: episodes on domains drawn from the default spec
EPISODES_NOMINAL = 50
EVAL_SEED = 90_000  #: evaluation episodes' seed (the same for every policy)


def _plan(env: str, factor: int) -> Any:
    """``env``'s full-tier plan, with ``factor`` times its budget B."""
    plan = PLANS[env]
    return dataclasses.replace(plan, train_steps=factor * plan.train_steps)


def _one(job: tuple[str, int, Path, str, int]) -> dict[str, Any]:
    import torch

    import domrand
    from domrand.bench.methods import train_method
    from domrand.bench.transfer import score_on_realities
    from domrand.policies.checkpoint import load_policy
    from domrand.policies.evaluate import evaluate

    method, seed, work, env, factor = job
    plan = _plan(env, factor)
    done = work / f"{method}_seed{seed}.json"
    if done.exists():  # a finished cell (the run can be killed and re-run)
        return json.loads(done.read_text(encoding="utf-8"))
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    spec = domrand.load_spec(domrand.default_spec_path(env), env=env)
    if method == "uniform_priv":  # the benchmark's uniform cell with a privileged critic
        from domrand.bench.methods import train_config
        from domrand.policies.train import train

        cfg = train_config(plan, seed).replace(privileged_critic=True)
        policy_dir = work / f"{method}_seed{seed}" / "policy"
        train(cfg, policy_dir, spec=spec, progress=False)
    else:
        policy_dir = train_method(method, plan, seed, work / f"{method}_seed{seed}").policy_dir
    policy, _ = load_policy(policy_dir)

    def summary(r: Any) -> dict[str, Any]:
        return {"return_mean": r.mean, "success_rate": r.success_rate, "faults": r.faults,
                "episodes": len(r.returns)}  # fmt: skip

    nominal = evaluate(policy, env, episodes=EPISODES_NOMINAL, seed=EVAL_SEED)
    on_spec = evaluate(policy, env, spec=spec, episodes=EPISODES_SPEC, seed=EVAL_SEED)
    realities = {k: summary(r) for k, r in score_on_realities(policy, plan, seed).items()}
    cell = {
        "method": method,
        "seed": seed,
        "nominal": summary(nominal),
        "default_spec": summary(on_spec),
        "realities": realities,
        "realities_mean": statistics.mean(r["return_mean"] for r in realities.values()),
        "wall_s": time.perf_counter() - t0,
    }
    atomic_write_text(done, json.dumps(cell, indent=1) + "\n")
    return cell


def _stats(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.pstdev(values)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="domrand/Pusher-v0", choices=list(PLANS))
    ap.add_argument("--work", type=Path, help="cell folder (runs/<results file's stem>)")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--factor", type=int, default=1, help="train for this many times B")
    args = ap.parse_args()
    plan, out = _plan(args.env, args.factor), OUTS[args.env]
    if args.factor != 1:
        out = out.with_name(f"{out.stem}_{args.factor}x.json")
    work = args.work or Path("runs") / out.stem
    jobs = [(m, s, work, args.env, args.factor) for s in args.seeds for m in args.methods]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2) as ex:
        cells = list(ex.map(_one, jobs))
    summary = {}
    for m in args.methods:
        mine = [c for c in cells if c["method"] == m]
        summary[m] = {
            where: _stats([c[where]["return_mean"] for c in mine])
            for where in ("nominal", "default_spec")
        }
        summary[m]["realities"] = _stats([c["realities_mean"] for c in mine])
        for where in ("nominal", "default_spec"):
            summary[m][f"{where}_success"] = statistics.mean(c[where]["success_rate"] for c in mine)
    # seed s of every method starts from the same initialization and is scored on the same
    # episodes: compare them seed by seed
    paired: dict[str, dict[str, Any]] = {}
    for a, b in [p for p in PAIRS if set(p) <= set(args.methods)]:
        paired[f"{a} - {b}"] = {}
        for where in ("nominal", "default_spec", "realities"):
            val = {(c["method"], c["seed"]): c[where]["return_mean"] if where != "realities"
                   else c["realities_mean"] for c in cells}  # fmt: skip
            diffs = [val[a, s] - val[b, s] for s in args.seeds]
            paired[f"{a} - {b}"][where] = {
                "mean_diff": statistics.mean(diffs),
                "se": statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0,
                "higher_on_seeds": sum(d > 0 for d in diffs),
                "seeds": len(diffs),
            }
    doc = {
        "benchmark": out.stem,
        "env": args.env,
        "train_steps": plan.train_steps,
        "factor": args.factor,
        "seeds": args.seeds,
        "episodes": {
            "nominal": EPISODES_NOMINAL,
            "default_spec": EPISODES_SPEC,
            "reality": plan.episodes,
        },
        "elapsed_s": time.perf_counter() - t0,
        "summary": summary,
        "paired": paired,
        "cells": cells,
    }
    from domrand.bench.transfer import machine_info

    doc["machine"] = machine_info()
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    for m, s in summary.items():
        print(f"{m:8s} " + "; ".join(
            f"{k} {v['mean']:.2f} +- {v['std']:.2f}" for k, v in s.items() if isinstance(v, dict)
        ) + f"; success nominal {s['nominal_success']:.2f}, "
              f"on spec {s['default_spec_success']:.2f}")  # fmt: skip
    for pair, per in paired.items():
        for where, d in per.items():
            print(f"{pair} on {where}: {d['mean_diff']:+.2f} +- {d['se']:.2f} (SE); "
                  f"higher on {d['higher_on_seeds']}/{d['seeds']} seeds")  # fmt: skip
    print(f"wrote {out} ({doc['elapsed_s'] / 60:.1f} min)")


if __name__ == "__main__":
    main()

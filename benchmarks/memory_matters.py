"""Memory matters: an LSTM and an MLP policy trained under the same spec, over several seeds,
evaluated on a reality whose dynamics must be identified within the episode.

Both policies get identical inputs (observation + RL^2 previous action and reward) and identical
PPO settings and budgets (the trainer's CartPole defaults); only the memory differs. The memory
reality (benchmarks/realities/cartpole_sluggish.yaml) pins every actuation knob at the weak edge
of the default CartPole spec at once: weakest motor (0.75x), heaviest pole and cart (2x) and the
longest latency (2 steps). A memoryless policy has to use one gain for the whole training
distribution and, tuned for the typical domain, tends to be too gentle there; a recurrent one can
see from its first few steps how little its pushes achieve. As one corner is a noisy statistic,
the 16 corners of {motor gain, pole mass, cart mass, latency} at the spec's edges are reported
too (mean return, and how many corners fall below 475).

Writes benchmarks/results/memory_matters.json and prints a Markdown table.
Usage: python benchmarks/memory_matters.py [--seeds 0 1 2] [--steps N] [--episodes N]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see domrand/cli.py)

import argparse
import itertools
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import domrand
from domrand.policies.checkpoint import load_policy
from domrand.policies.config import TrainConfig
from domrand.policies.evaluate import (
    Condition,
    evaluate,
    evaluate_conditions,
    standard_conditions,
)
from domrand.policies.train import train

ENV_ID = "domrand/CartPole-v0"
RESULTS = Path(__file__).parent / "results" / "memory_matters.json"
DEFAULT_REALITY = Path(__file__).parent / "realities" / "cartpole_sluggish.yaml"
#: the spec's edges of the knobs a policy must adapt to (motor gain, pole/cart mass, latency)
EDGES = {
    "motor.gain": (7.5, 15.0),
    "pole.mass": (0.05, 0.2),
    "cart.mass": (0.5, 2.0),
    "action.delay": (0, 2),
}


def run(kind: str, seed: int, steps: int, episodes: int, reality: Path) -> dict[str, Any]:
    spec = domrand.load_spec(domrand.default_spec_path(ENV_ID), env=ENV_ID)
    cfg = TrainConfig(policy=kind, seed=seed, total_steps=steps, checkpoint_every=10**9)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(cfg, Path(tmp) / "run", spec=spec, progress=False)
        policy, _ = load_policy(Path(tmp) / "run")
    conditions = [Condition("memory reality", domain=reality)]
    conditions += standard_conditions(ENV_ID, spec=spec)
    evals = evaluate_conditions(policy, ENV_ID, conditions, episodes=episodes, seed=1000 + seed)
    corners = []
    for values in itertools.product(*EDGES.values()):
        domain = dict(zip(EDGES, values))
        r = evaluate(policy, ENV_ID, domain=domain, episodes=4, seed=2000 + seed)
        corners.append({"domain": domain, "mean": r.mean})
    corner_means = [c["mean"] for c in corners]
    return {
        "policy": kind,
        "seed": seed,
        "train_s": result.elapsed,
        "train_steps_per_s": result.steps_per_s,
        "results": {r.label: r.to_dict() for r in evals},
        "corners": corners,
        "corner_mean": statistics.fmean(corner_means),
        "corners_below_475": sum(m < 475 for m in corner_means),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=200_000, help="env steps per training run")
    ap.add_argument("--episodes", type=int, default=20, help="evaluation episodes per condition")
    ap.add_argument("--reality", type=Path, default=DEFAULT_REALITY, help="the memory reality")
    args = ap.parse_args()

    t0 = time.perf_counter()
    runs = []
    for seed in args.seeds:
        for kind in ("lstm", "mlp"):
            r = run(kind, seed, args.steps, args.episodes, args.reality)
            runs.append(r)
            m = r["results"]["memory reality"]
            print(f"{kind} seed {seed}: memory reality {m['mean']:.1f} +- {m['std']:.1f} "
                  f"(success {m['success_rate']:.0%}); 16 edge corners: mean "
                  f"{r['corner_mean']:.1f}, {r['corners_below_475']} below 475; trained in "
                  f"{r['train_s']:.0f} s", flush=True)  # fmt: skip

    labels = list(runs[0]["results"])
    summary: dict[str, dict[str, Any]] = {}
    for kind in ("lstm", "mlp"):
        mine = [r for r in runs if r["policy"] == kind]
        summary[kind] = {}
        for label in labels:
            means = [r["results"][label]["mean"] for r in mine]
            succ = [r["results"][label]["success_rate"] for r in mine]
            summary[kind][label] = {
                "mean_over_seeds": statistics.fmean(means),
                "std_over_seeds": statistics.pstdev(means),
                "per_seed": means,
                "success_over_seeds": statistics.fmean(succ),
            }
    wins = [
        next(r for r in runs if r["policy"] == "lstm" and r["seed"] == s)["results"][
            "memory reality"
        ]["mean"]
        > next(r for r in runs if r["policy"] == "mlp" and r["seed"] == s)["results"][
            "memory reality"
        ]["mean"]
        for s in args.seeds
    ]
    doc = {
        "benchmark": "memory_matters",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.machine(),
            "load_avg_at_end": os.getloadavg(),
        },
        "env": ENV_ID,
        "spec": "default (assets/specs/cartpole.yaml)",
        "memory_reality": str(args.reality),
        "memory_reality_domain": domrand.load_domain(args.reality, env=ENV_ID),
        "steps": args.steps,
        "episodes": args.episodes,
        "seeds": args.seeds,
        "lstm_beats_mlp_per_seed": wins,
        "summary": summary,
        "runs": runs,
        "wall_s": time.perf_counter() - t0,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2))

    print(f"\n{args.steps} env steps per run, seeds {args.seeds}, {args.episodes} episodes per "
          "condition; mean return over seeds +- std over seeds (success rate)\n")  # fmt: skip
    print("| condition | LSTM | MLP | LSTM per seed | MLP per seed |")
    print("|---|---:|---:|---|---|")
    for label in labels:
        cells = []
        for kind in ("lstm", "mlp"):
            s = summary[kind][label]
            cells.append(
                f"{s['mean_over_seeds']:.1f} +- {s['std_over_seeds']:.1f} "
                f"({s['success_over_seeds']:.0%})"
            )
        per = [
            ", ".join(f"{v:.0f}" for v in summary[k][label]["per_seed"]) for k in ("lstm", "mlp")
        ]
        print(f"| {label} | {cells[0]} | {cells[1]} | {per[0]} | {per[1]} |")
    for kind in ("lstm", "mlp"):
        mine = [r for r in runs if r["policy"] == kind]
        summary[kind]["edge corners"] = {
            "mean_over_seeds": statistics.fmean(r["corner_mean"] for r in mine),
            "per_seed": [r["corner_mean"] for r in mine],
            "below_475_per_seed": [r["corners_below_475"] for r in mine],
        }
    RESULTS.write_text(json.dumps(doc, indent=2))
    c = {k: summary[k]["edge corners"] for k in ("lstm", "mlp")}
    print(f"| 16 edge corners (mean) | {c['lstm']['mean_over_seeds']:.1f} | "
          f"{c['mlp']['mean_over_seeds']:.1f} | "
          + " | ".join(", ".join(f"{v:.0f}" for v in c[k]["per_seed"]) for k in ("lstm", "mlp"))
          + " |")  # fmt: skip
    print("corners below 475 per seed: LSTM "
          f"{c['lstm']['below_475_per_seed']}, MLP {c['mlp']['below_475_per_seed']}")  # fmt: skip
    print(f"\nLSTM beats MLP on the memory reality in {sum(wins)}/{len(wins)} seeds")
    print(f"wrote {RESULTS} in {doc['wall_s']:.0f} s")


if __name__ == "__main__":
    main()

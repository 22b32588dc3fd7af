"""Memory matters: an LSTM and an MLP policy trained under the same spec, over several seeds,
evaluated on a reality whose dynamics must be identified within the episode.

Both policies get identical inputs (observation + RL^2 previous action and reward) and identical
PPO settings and budgets; only the memory differs. The default reality, ``sluggish``, pins every
dynamics knob the policy must adapt to at an edge of the default CartPole spec at once: weakest
motor (0.75x), heaviest pole and cart (2x) and the longest latency (2 steps). A memoryless policy
has to use one gain for the whole training distribution and, tuned for the typical domain, is too
gentle here; a recurrent one can see from its first few steps how little its pushes achieve.

Writes benchmarks/results/memory_matters.json and prints a Markdown table.
Usage: python benchmarks/memory_matters.py [--seeds 0 1 2] [--steps N] [--episodes N]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see domrand/cli.py)

import argparse
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
from domrand.policies.evaluate import Condition, evaluate_conditions, standard_conditions
from domrand.policies.train import train

ENV_ID = "domrand/CartPole-v0"
RESULTS = Path(__file__).parent / "results" / "memory_matters.json"
DEFAULT_REALITY = domrand.registry.assets_dir() / "realities" / "cartpole" / "sluggish.yaml"


def run(kind: str, seed: int, steps: int, episodes: int, reality: Path) -> dict[str, Any]:
    spec = domrand.load_spec(domrand.default_spec_path(ENV_ID), env=ENV_ID)
    cfg = TrainConfig(policy=kind, seed=seed, total_steps=steps, checkpoint_every=10**9)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(cfg, Path(tmp) / "run", spec=spec, progress=False)
        policy, _ = load_policy(Path(tmp) / "run")
    conditions = [Condition("memory reality", domain=reality)]
    conditions += standard_conditions(ENV_ID, spec=spec)
    evals = evaluate_conditions(policy, ENV_ID, conditions, episodes=episodes, seed=1000 + seed)
    return {
        "policy": kind,
        "seed": seed,
        "train_s": result.elapsed,
        "train_steps_per_s": result.steps_per_s,
        "results": {r.label: r.to_dict() for r in evals},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=250_000, help="env steps per training run")
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
                  f"(success {m['success_rate']:.0%}), trained in {r['train_s']:.0f} s",
                  flush=True)  # fmt: skip

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
    print(f"\nLSTM beats MLP on the memory reality in {sum(wins)}/{len(wins)} seeds")
    print(f"wrote {RESULTS} in {doc['wall_s']:.0f} s")


if __name__ == "__main__":
    main()

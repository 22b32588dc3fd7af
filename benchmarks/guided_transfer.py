"""Guided DR transfer: policies trained on SimOpt's and on CMA-ES's tuned specs, against uniform DR
over the wide default spec and against no DR, scored on a hidden reality.

The reality (benchmarks/realities/cartpole_sluggish.yaml: weakest motor, heaviest pole and cart
and the longest latency of the default spec, all at once) is seen by the guided methods only
through counted rollouts; the benchmark itself knows it, to score the final policies. Per seed:

1. SimOpt (closed loop, REPS) from the default spec, tuning the dynamics knobs and the latency:
   3 iterations x 3 real rollouts, its own training phases warm-started;
2. bilevel CMA-ES from the same spec and knobs: truncated normals per knob, candidates
   fine-tuned from the previous best and scored on the reality;
3. four final policies trained from scratch with the *same* budget and settings (the trainer's
   defaults): on no randomization, on the default spec, on SimOpt's spec, on CMA-ES's spec;
   each is evaluated (deterministic) on the reality.

Budgets are reported per method: real rollouts (and steps), the guide's own simulation steps,
training steps (the guide's loop plus the final policy) and wall-clock minutes on this machine.
Writes benchmarks/results/guided_transfer.json and guided_transfer.md.

Usage: python benchmarks/guided_transfer.py [--seeds 0 1 2] [--steps 100000] [--quick]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see domrand/cli.py)

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import domrand
from domrand.bench.transfer import machine_info
from domrand.guided.cmaes import Bilevel, CMAESSettings
from domrand.guided.simopt import SimOpt, SimOptSettings
from domrand.policies.checkpoint import load_policy
from domrand.policies.config import TrainConfig
from domrand.policies.evaluate import evaluate
from domrand.policies.train import train
from domrand.target import SimulatedTarget

ENV_ID = "domrand/CartPole-v0"
HERE = Path(__file__).parent
REALITY = HERE / "realities" / "cartpole_sluggish.yaml"
RESULTS = HERE / "results"
KNOBS = ("cart.mass", "pole.mass", "motor.gain", "cart.friction", "pole.damping", "action.delay")
METHODS = ("no DR", "uniform DR (wide default spec)", "SimOpt spec", "CMA-ES (bilevel) spec")


def tiers(quick: bool) -> tuple[SimOptSettings, CMAESSettings]:
    if quick:
        simopt = SimOptSettings(knobs=KNOBS, iterations=2, real_rollouts=3, horizon=200,
                                train_steps=20_000, finetune_steps=8_000, final_steps=0,
                                updates=6, samples=48)  # fmt: skip
        cmaes = CMAESSettings(knobs=KNOBS, generations=2, popsize=6, pretrain_steps=20_000,
                              finetune_steps=4_096, eval_rollouts=2)  # fmt: skip
        return simopt, cmaes
    simopt = SimOptSettings(knobs=KNOBS, iterations=3, real_rollouts=3, horizon=200,
                            train_steps=30_000, finetune_steps=10_000, final_steps=0, updates=8,
                            samples=48)  # fmt: skip
    cmaes = CMAESSettings(knobs=KNOBS, generations=3, pretrain_steps=30_000,
                          finetune_steps=6_144, eval_rollouts=2)  # fmt: skip
    return simopt, cmaes


def run_seed(seed: int, steps: int, episodes: int, quick: bool, work: Path) -> dict[str, Any]:
    wide = domrand.load_spec(domrand.default_spec_path(ENV_ID), env=ENV_ID)
    cfg = TrainConfig(env=ENV_ID, seed=seed, checkpoint_every=10**9)
    simopt_settings, cmaes_settings = tiers(quick)
    guides: dict[str, dict[str, Any]] = {}
    # ---- the guided methods see the reality only through counted rollouts
    t0 = time.perf_counter()
    target = SimulatedTarget(ENV_ID, domain=REALITY, seed=1000 + seed, max_steps=200)
    so = SimOpt(ENV_ID, wide, target, work / "simopt", simopt_settings, cfg, seed).run()
    guides["SimOpt spec"] = {"report": so, "wall_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    target = SimulatedTarget(ENV_ID, domain=REALITY, seed=2000 + seed)
    cm = Bilevel(ENV_ID, wide, target, work / "cmaes", cmaes_settings, cfg, seed).run()
    guides["CMA-ES (bilevel) spec"] = {"report": cm, "wall_s": time.perf_counter() - t0}
    specs = {
        "no DR": None,
        "uniform DR (wide default spec)": wide,
        "SimOpt spec": domrand.load_spec(work / "simopt" / "spec.yaml", env=ENV_ID),
        "CMA-ES (bilevel) spec": domrand.load_spec(work / "cmaes" / "spec.yaml", env=ENV_ID),
    }
    # ---- final policies: same budget and settings for every method
    rows: dict[str, Any] = {}
    for name, spec in specs.items():
        run_dir = work / "final" / name.split()[0].lower().replace("-", "")
        t0 = time.perf_counter()
        result = train(cfg.replace(total_steps=steps), run_dir, spec=spec, progress=False)
        train_s = time.perf_counter() - t0
        policy, _ = load_policy(run_dir)
        on_reality = evaluate(policy, ENV_ID, domain=REALITY, episodes=episodes, seed=10_000 + seed)
        nominal = evaluate(policy, ENV_ID, episodes=episodes, seed=10_000 + seed)
        guide = guides.get(name)
        budget = guide["report"]["budget"] if guide else {}
        rows[name] = {
            "reality_return": on_reality.mean,
            "reality_success": on_reality.success_rate,
            "nominal_return": nominal.mean,
            "real_rollouts": budget.get("real_rollouts", 0),
            "real_steps": budget.get("real_steps", 0),
            "sim_steps": budget.get("sim_steps", 0),
            "guide_train_steps": budget.get("train_steps", 0),
            "final_train_steps": result.env_steps,
            "guide_wall_s": guide["wall_s"] if guide else 0.0,
            "final_train_s": train_s,
        }
        print(f"seed {seed} {name}: reality {on_reality.mean:.1f}", flush=True)
    rows["SimOpt spec"]["identified"] = so["knobs"]
    return {"seed": seed, "methods": rows}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for name in METHODS:
        per_seed = [r["methods"][name] for r in runs]
        rets = [p["reality_return"] for p in per_seed]
        out[name] = {
            "reality_mean_over_seeds": statistics.fmean(rets),
            "reality_std_over_seeds": statistics.pstdev(rets),
            "reality_per_seed": rets,
            "success_per_seed": [p["reality_success"] for p in per_seed],
            "real_rollouts_per_seed": statistics.fmean(p["real_rollouts"] for p in per_seed),
            "sim_steps_per_seed": statistics.fmean(p["sim_steps"] for p in per_seed),
            "train_steps_per_seed": statistics.fmean(
                p["guide_train_steps"] + p["final_train_steps"] for p in per_seed
            ),
            "minutes_per_seed": statistics.fmean(
                (p["guide_wall_s"] + p["final_train_s"]) / 60 for p in per_seed
            ),
        }
    return out


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        f"# Guided DR transfer on {ENV_ID}, reality `{REALITY.name}`",
        "",
        f"Seeds {meta['seeds']}; final policies: {meta['steps']} training steps each (trainer "
        f"defaults), scored over {meta['episodes']} deterministic episodes on the reality "
        f"(max return 500). Tier: {meta['tier']}. Wall time on {meta['cores']} cores "
        "(shared machine).",
        "",
        "| method | reality return (mean +- std over seeds) | per seed | real rollouts | "
        "sim steps | training steps | minutes |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        per = ", ".join(f"{v:.0f}" for v in s["reality_per_seed"])
        lines.append(
            f"| {name} | {s['reality_mean_over_seeds']:.1f} +- {s['reality_std_over_seeds']:.1f} "
            f"| {per} | {s['real_rollouts_per_seed']:.0f} | {s['sim_steps_per_seed']:.0f} | "
            f"{s['train_steps_per_seed']:.0f} | {s['minutes_per_seed']:.1f} |"
        )
    lines += ["", "Budgets are per seed: a guided method's loop plus its final policy."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000, help="final policies' budget")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="smaller guide budgets")
    parser.add_argument("--keep", type=Path, help="keep the runs in this folder")
    args = parser.parse_args()
    t0 = time.perf_counter()
    runs = []
    for seed in args.seeds:
        if args.keep is not None:
            runs.append(run_seed(seed, args.steps, args.episodes, args.quick,
                                 args.keep / f"seed_{seed}"))  # fmt: skip
        else:
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(run_seed(seed, args.steps, args.episodes, args.quick, Path(tmp)))
    summary = summarize(runs)
    meta = {
        "seeds": args.seeds,
        "steps": args.steps,
        "episodes": args.episodes,
        "tier": "quick" if args.quick else "full",
        "cores": os.cpu_count(),
    }
    doc = {
        "benchmark": "guided_transfer",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_info(),
        "env": ENV_ID,
        "reality": str(REALITY.relative_to(HERE.parent)),
        "reality_domain": domrand.load_domain(REALITY, env=ENV_ID),
        "tuned_knobs": list(KNOBS),
        "settings": {k: v.to_dict() for k, v in zip(("simopt", "cmaes"), tiers(args.quick))},
        **meta,
        "total_minutes": (time.perf_counter() - t0) / 60,
        "summary": summary,
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "guided_transfer.json").write_text(json.dumps(doc, indent=2, default=float) + "\n")
    table = markdown(summary, meta)
    (RESULTS / "guided_transfer.md").write_text(table)
    print(table)
    print(f"total {doc['total_minutes']:.1f} min")


if __name__ == "__main__":
    main()

"""Active DR and automatic DR against uniform DR on Pusher with a "hard region" (Mehta et al. 2019).

The randomized knobs are the puck's friction and linear damping, each 0.4..1.0x of default
(benchmarks/specs/pusher_friction_damping.yaml); the hard region is 0.4..0.5x, where the puck
slides on past the goal (assets/realities/pusher/hard_region.yaml sits at 0.45x). Three ways of
choosing the training domains get the same PPO budget (LSTM-64, same trainer settings and seeds):

* uniform DR: every episode samples the spec;
* Active DR: SVPG particles + discriminator propose the domains (domrand.guided.adr); its own
  discriminator rollouts are extra env steps, reported as its guide budget;
* automatic DR: ranges grow from the nominal values (1.0x, the top of the box) by boundary
  evaluations in success-rate units (domrand.guided.autodr).

Metric: the mean return on each cell of a 3x3 grid of (friction, damping) at {0.4, 0.7, 1.0}x
(deterministic policy, the same start states for every method), its minimum over the grid
(worst case) and its mean; plus the hard_region reality. Explored ranges and budgets are reported.

Writes benchmarks/results/active_dr.json and active_dr.md (a Markdown table), and plots of the
particles and ranges of seed 0. Usage:
    python benchmarks/active_dr.py [--tier quick|full] [--seeds 0 1 2] [--jobs 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see domrand/cli.py)

import argparse
import concurrent.futures as cf
import json
import multiprocessing
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ENV_ID = "domrand/Pusher-v0"
HERE = Path(__file__).parent
SPEC = HERE / "specs" / "pusher_friction_damping.yaml"
RESULTS = HERE / "results"
SCALES = (0.4, 0.7, 1.0)
NOMINAL = {"puck.friction": 0.4, "puck.linear_damping": 0.5}
TIERS = {"quick": {"steps": 61_440, "episodes": 10}, "full": {"steps": 151_552, "episodes": 10}}
#: Active-DR settings: published SVPG/discriminator values (SVPG lr scaled, see adr.py); a round
#: every 8 PPO iterations; discriminator rollouts cut at 40 steps
ADR_SETTINGS = {"round_every": 8192, "rollout_steps": 40}
#: automatic DR in success-rate units; 10 boundary steps from 1.0x to 0.4x
AUTODR_SETTINGS = {
    "metric": "success",
    "t_low": 0.2,
    "t_high": 0.5,
    "buffer_size": 10,
    "delta": 0.1,
}


def train_config(seed: int, steps: int) -> Any:
    from domrand.policies.config import TrainConfig

    return TrainConfig(
        env=ENV_ID,
        total_steps=steps,
        seed=seed,
        num_envs=8,
        num_steps=128,
        hidden=64,
        checkpoint_every=10**9,
    )


def grid() -> list[tuple[str, dict[str, float]]]:
    cells = []
    for f in SCALES:
        for d in SCALES:
            dom = {"puck.friction": NOMINAL["puck.friction"] * f}
            dom["puck.linear_damping"] = NOMINAL["puck.linear_damping"] * d
            cells.append((f"f{f:.1f}x d{d:.1f}x", dom))
    return cells


def run_job(
    method: str, seed: int, steps: int, episodes: int, plots: Path | None
) -> dict[str, Any]:
    """Train one (method, seed) and evaluate it on the grid and on the hard-region reality."""
    import torch

    torch.set_num_threads(1)
    import domrand
    from domrand.guided.adr import ActiveDRGuide, ActiveDRSettings, plot_particles
    from domrand.guided.autodr import AutoDRGuide, AutoDRSettings, plot_ranges
    from domrand.guided.base import SpecSource
    from domrand.guided.guide_run import settings_from_dict
    from domrand.policies.checkpoint import load_policy
    from domrand.policies.evaluate import evaluate
    from domrand.policies.train import train
    from domrand.registry import reality_path

    spec = domrand.load_spec(SPEC, env=ENV_ID)
    cfg = train_config(seed, steps)
    tmp = Path(tempfile.mkdtemp(prefix=f"active_dr_{method}_{seed}_"))
    guide: Any
    if method == "uniform":
        guide = SpecSource(spec)
    elif method == "adr":
        settings = settings_from_dict(ActiveDRSettings, ADR_SETTINGS, "")
        guide = ActiveDRGuide(ENV_ID, spec, settings, seed, out_dir=tmp)
    else:
        settings = settings_from_dict(AutoDRSettings, AUTODR_SETTINGS, "")
        guide = AutoDRGuide(ENV_ID, spec, settings, seed, out_dir=tmp)
    t0 = time.perf_counter()
    try:
        result = train(cfg, tmp / "policy", guide=guide, progress=False)
    finally:
        if hasattr(guide, "close"):
            guide.close()
    train_s = time.perf_counter() - t0
    policy, _ = load_policy(tmp / "policy")
    cells = {}
    for label, dom in grid():
        r = evaluate(policy, ENV_ID, domain=dom, episodes=episodes, seed=1000 + seed)
        cells[label] = {"mean": r.mean, "success": r.success_rate}
    hard = evaluate(policy, ENV_ID, domain=reality_path(ENV_ID, "hard_region"),
                    episodes=episodes, seed=1000 + seed)  # fmt: skip
    row: dict[str, Any] = {
        "method": method,
        "seed": seed,
        "training_env_steps": result.env_steps,
        "guide_env_steps": 0,
        "train_s": train_s,
        "grid": cells,
        "worst": min(c["mean"] for c in cells.values()),
        "grid_mean": statistics.fmean(c["mean"] for c in cells.values()),
        "hard_region": hard.mean,
        "hard_region_success": hard.success_rate,
    }
    if method == "uniform":
        row["explored"] = {k: list(spec.value_bounds(k)) for k in spec.bounded_knobs()}
    elif method == "adr":
        import numpy as np

        row["guide_env_steps"] = guide.guide_env_steps
        row["rounds"] = guide.rounds
        row["explored"] = guide.explored_ranges()
        # Where the agent trained: the share of proposals in the hard region (both <= 0.5x,
        # i.e. normalized <= 1/6; uniform DR puts 1/36 = 2.8% there) and their mean position.
        pts = np.concatenate(
            [np.asarray(h["points"]) for h in guide.history]
            + [guide.proposals.reshape(-1, len(guide.names))]
        )
        row["hard_share"] = float(np.mean(np.all(pts <= 1.0 / 6.0, axis=1)))
        row["mean_scale"] = {
            k: float(0.4 + 0.6 * pts[:, i].mean()) for i, k in enumerate(guide.names)
        }
        row["disc_accuracy_last"] = guide.history[-1]["disc_accuracy"] if guide.history else None
        if plots is not None:
            guide.write_outputs()
            plot_particles(tmp / "particles.npz", plots / f"active_dr_particles_seed{seed}.png")
    else:
        row["explored"] = guide.explored_ranges()
        row["boundary_evaluations"] = guide.evaluations
        row["boundary_moves"] = guide.state.updates
        row["adr_entropy"] = guide.state.entropy()
        lo_limit = {k: guide.state.limits[k][0] for k in guide.state.ranges}
        row["limits_reached_at"] = {
            k: next((h["env_steps"] for h in guide.history if h[f"{k}.low"] <= lim), None)
            for k, lim in lo_limit.items()
        }
        if plots is not None:
            plot_ranges(tmp / "ranges.csv", plots / f"active_dr_ranges_seed{seed}.png")
    shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{method:8s} seed {seed}: worst {row['worst']:7.2f}  mean {row['grid_mean']:7.2f}  "
        f"hard {row['hard_region']:7.2f}  ({train_s:.0f} s)",
        flush=True,
    )
    return row


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in ("uniform", "adr", "autodr"):
        rs = [r for r in rows if r["method"] == m]
        if not rs:
            continue
        out[m] = {
            key: {
                "mean": statistics.fmean(r[key] for r in rs),
                "std": statistics.pstdev([r[key] for r in rs]),
                "per_seed": [r[key] for r in rs],
            }
            for key in ("worst", "grid_mean", "hard_region")
        }
        out[m]["guide_env_steps"] = statistics.fmean(r["guide_env_steps"] for r in rs)
        out[m]["train_s"] = statistics.fmean(r["train_s"] for r in rs)
    return out


def markdown(doc: dict[str, Any]) -> str:
    rows, summary = doc["runs"], doc["summary"]
    names = {"uniform": "uniform DR", "adr": "Active DR", "autodr": "automatic DR"}
    lines = [
        f"# Active DR / automatic DR vs uniform DR on {ENV_ID} ({doc['tier']} tier)",
        "",
        f"Training budget per run: {doc['steps']} env steps (LSTM-64 PPO, 8 envs x 128 steps); "
        f"{doc['episodes']} evaluation episodes per grid cell; seeds {doc['seeds']}.",
        "",
        "| method | seed | worst-case return (3x3 grid) | grid mean | hard_region reality | "
        "explored ranges (friction; damping) | where it trained | extra guide env steps | "
        "train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (list(names).index(r["method"]), r["seed"])):
        ex = "; ".join(f"{a:.3f}..{b:.3f}" for a, b in r["explored"].values())
        lines.append(
            f"| {names[r['method']]} | {r['seed']} | {r['worst']:.2f} | {r['grid_mean']:.2f} | "
            f"{r['hard_region']:.2f} | {ex} | {_where(r)} | {r['guide_env_steps']} | "
            f"{r['train_s']:.0f} |"
        )
    lines += ["", "| method | worst case (mean +- std over seeds) | grid mean | hard_region |"]
    lines += ["|---|---|---|---|"]
    for m, s in summary.items():
        cells = [
            f"{s[k]['mean']:.2f} +- {s[k]['std']:.2f}"
            for k in ("worst", "grid_mean", "hard_region")
        ]
        lines.append(f"| {names[m]} | " + " | ".join(cells) + " |")
    lines += ["", doc["verdict"], "", NOTES, ""]
    return "\n".join(lines)


NOTES = """"Where it trained": uniform DR puts 1/36 = 2.8% of its episodes in the hard region (both
knobs <= 0.5x) and averages 0.70x; for Active DR, the share of the particles' proposals (every
training episode ran in one) in the hard region and their mean scale; for automatic DR, boundary
moves, when each range reached its limit (training env steps), and the final ADR entropy
(-1.32 nats/dim = the full box). Active DR's extra guide env steps are its discriminator rollouts
(50 randomized + 50 reference episodes of <= 40 steps per round); they are not training data."""


def _where(r: dict[str, Any]) -> str:
    if r["method"] == "adr":
        scale = "/".join(f"{v:.2f}x" for v in r["mean_scale"].values())
        return f"hard share {100 * r['hard_share']:.1f}%, mean {scale}, {r['rounds']} rounds"
    if r["method"] == "autodr":
        reached = r.get("limits_reached_at") or {}
        at = ", ".join(f"{k.split('.')[-1]} at {v}" for k, v in reached.items() if v is not None)
        return f"{r['boundary_moves']} moves, entropy {r['adr_entropy']:.2f}" + (
            f"; limits: {at}" if at else ""
        )
    return "hard share 2.8%, mean 0.70x"


def main() -> None:
    from domrand.bench.transfer import machine_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tier", choices=list(TIERS), default="quick")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, help="override the tier's training steps")
    ap.add_argument("--episodes", type=int, help="override the tier's episodes per grid cell")
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (one core each)")
    ap.add_argument("--methods", nargs="+", default=["uniform", "adr", "autodr"])
    ap.add_argument("--render", action="store_true", help="only re-write the Markdown from JSON")
    args = ap.parse_args()
    if args.render:
        doc = json.loads((RESULTS / "active_dr.json").read_text(encoding="utf-8"))
        (RESULTS / "active_dr.md").write_text(markdown(doc), encoding="utf-8")
        print(markdown(doc))
        return
    tier = TIERS[args.tier]
    steps = args.steps or tier["steps"]
    episodes = args.episodes or tier["episodes"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = [(m, s) for s in args.seeds for m in args.methods]
    plots = lambda s: RESULTS if s == args.seeds[0] else None  # noqa: E731
    if args.jobs > 1:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            futs = [pool.submit(run_job, m, s, steps, episodes, plots(s)) for m, s in jobs]
            rows = [f.result() for f in futs]
    else:
        rows = [run_job(m, s, steps, episodes, plots(s)) for m, s in jobs]
    summary = summarize(rows)
    verdict = []
    for m in ("adr", "autodr"):
        if m in summary and "uniform" in summary:
            mine, base = summary[m]["worst"], summary["uniform"]["worst"]
            wins = sum(a >= b for a, b in zip(mine["per_seed"], base["per_seed"]))
            verdict.append(
                f"{m}: worst case {mine['mean']:.2f} vs uniform {base['mean']:.2f} "
                f"(>= uniform in {wins}/{len(args.seeds)} seeds)"
            )
    doc = {
        "benchmark": "active_dr",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine_info(),
        "tier": args.tier,
        "env": ENV_ID,
        "spec": str(SPEC.relative_to(HERE.parent)),
        "steps": steps,
        "episodes": episodes,
        "seeds": args.seeds,
        "adr_settings": ADR_SETTINGS,
        "autodr_settings": AUTODR_SETTINGS,
        "wall_s": time.perf_counter() - t0,
        "summary": summary,
        "verdict": "; ".join(verdict),
        "runs": rows,
    }
    (RESULTS / "active_dr.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    md = markdown(doc)
    (RESULTS / "active_dr.md").write_text(md, encoding="utf-8")
    print(md)
    print(f"wall time {doc['wall_s']:.0f} s")


if __name__ == "__main__":
    main()

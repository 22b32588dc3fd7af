"""The Pusher SimOpt cost over a (puck.mass, puck.friction) grid: why the puck's mass is hard.

The 9 probe rollouts of benchmarks/sysid.py (seed 0) on the hidden reality are replayed open loop
(restart every 10 steps) on an 11 x 9 grid of puck mass x friction around the hidden values
(pusher.kp at its hidden value), and scored with two weightings W: positions only (10 per metre on
the tip and the puck, the earlier benchmark setting) and the replay-noise weights SimOpt now
estimates itself (``weighting: noise``, at the starting spec's mean). The hidden values are used
here only to place the grid and to report; SimOpt never sees them.

Writes benchmarks/results/sysid_landscape.{json,md}.
Usage: python benchmarks/sysid_landscape.py [--seed 0]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import time
from pathlib import Path

import numpy as np

import domrand
from domrand.guided.actor import EpisodePolicy
from domrand.guided.discrepancy import Discrepancy
from domrand.guided.replay import Replayer
from domrand.guided.state import knob_moments
from domrand.target import SimulatedTarget

HERE = Path(__file__).parent
ENV = "domrand/Pusher-v0"


def main() -> None:
    import sysid  # benchmarks/ is on sys.path when this script runs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    case = sysid.cases(False)["pusher"]
    settings, probe = case["settings"], case["probe"]
    truth = domrand.load_domain(case["reality"], env=ENV)
    target = SimulatedTarget(ENV, domain=truth, seed=1000 + args.seed, max_steps=100)
    real = []
    for j in range(settings.real_rollouts):  # the benchmark's own pre-drawn noise
        ss = np.random.SeedSequence(args.seed, spawn_key=(0x6E6F69, 0, j))
        z = np.random.default_rng(ss).standard_normal((settings.horizon, 2))
        real.append(target.rollout(EpisodePolicy(probe, z), 1)[0])
    t0 = time.perf_counter()
    replayer = Replayer(ENV, {}, 16, settings.segment or 0)
    spec = domrand.load_spec(domrand.default_spec_path(ENV), env=ENV)
    knobs = ("puck.mass", "puck.friction", "pusher.kp")
    mean0, _ = knob_moments(spec, knobs)
    start = dict(zip(knobs, (float(m) for m in mean0)))
    sigma = replayer.replay_noise(start, real, None, [None] * len(real))
    std = np.concatenate([t.observations for t in real]).std(axis=0)
    weightings = {
        "positions (10/m on tip and puck)": [10.0 if i in (0, 1, 4, 5) else 0.0 for i in range(15)],
        "replay noise (weighting: noise)": (1.0 / (sigma + 1e-3 * std + 1e-12)).tolist(),
    }
    mass = np.exp(np.linspace(np.log(0.6), np.log(1.4), 11))
    fric = np.exp(np.linspace(np.log(0.8), np.log(1.25), 9))
    domains = [
        {"puck.mass": truth["puck.mass"] * m, "puck.friction": truth["puck.friction"] * f,
         "pusher.kp": truth["pusher.kp"]}
        for m in mass for f in fric
    ]  # fmt: skip
    sims = [replayer.simulate(domains, traj, None, None) for traj in real]
    replayer.close()
    out: dict[str, object] = {"benchmark": "sysid_landscape", "seed": args.seed,
                              "mass_factor": mass.tolist(), "friction_factor": fric.tolist(),
                              "real_rollouts": len(real), "sim_steps": replayer.steps,
                              "wall_s": time.perf_counter() - t0, "weightings": {}}  # fmt: skip
    md = [f"# Pusher SimOpt cost landscape (seed {args.seed}, {len(real)} real rollouts)\n"]
    for name, w in weightings.items():
        disc = Discrepancy(settings.w_l1, settings.w_l2, settings.smoothing, settings.truncate,
                           tuple(w))  # fmt: skip
        cost = np.zeros(len(domains))
        for traj, sim in zip(real, sims):
            cost += [np.inf if s is None else disc(s, traj.observations) for s in sim]
        grid = cost.reshape(len(mass), len(fric)) / cost.min()
        i, k = np.unravel_index(np.argmin(grid), grid.shape)
        out["weightings"][name] = {"weights": w, "cost_over_min": grid.tolist(),  # type: ignore[index]
                                   "argmin": [float(mass[i]), float(fric[k])]}  # fmt: skip
        md.append(f"\n## W: {name}; argmin at mass x{mass[i]:.3f}, friction x{fric[k]:.3f}\n")
        md.append("cost / min; rows: puck.mass x truth, columns: puck.friction x truth\n")
        md.append("| mass \\ friction | " + " | ".join(f"{f:.3f}" for f in fric) + " |")
        md.append("|---" * (len(fric) + 1) + "|")
        for m, row in zip(mass, grid):
            md.append(f"| {m:.3f} | " + " | ".join(f"{c:.2f}" for c in row) + " |")
    res = HERE / "results"
    (res / "sysid_landscape.json").write_text(json.dumps(out, indent=1) + "\n")
    (res / "sysid_landscape.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()

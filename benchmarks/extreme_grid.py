"""Extreme-parameter grid: every knob of every env at its valid-range extremes; nothing may crash.

For each env (CartPole, KukaReach, Pusher in state mode; the same three in image mode for their
visual knobs; Localization, image only) and each knob, the knob is set (with all others
nominal) to:

  * both ends of its valid range; an open end (e.g. mass in (0, 100]) at the closest double
    inside it (``nextafter``) and at 1e-6 of the range inside it;
  * three interior points (1/4, 1/2, 3/4 of the range) and the nominal value;

plus all-extreme combinations: every knob at its low end, every knob at its high end, and
``--corners`` random corners and ``--random`` uniform points of the full box (seeded).

Each point runs ``--episodes`` episodes of at most ``--steps`` steps with uniform random actions
on one env instance per env (so the next point also exercises the rebuild after a fault).
Outcomes per point: ``ok``; ``fault`` (the env flagged ``info["physics_fault"]``: allowed, counted
per knob); ``crash`` (an exception from reset or step); ``nonfinite`` (a NaN/inf observation or
reward without a fault flag). The last two are failures.

Writes benchmarks/results/extreme_grid.json and prints a per-env summary.
Usage: python benchmarks/extreme_grid.py [--episodes 1] [--steps 100] [--envs CartPole ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

import domrand
from domrand.knobs import Knob

RESULTS = Path(__file__).parent / "results" / "extreme_grid.json"
#: (label, env id, make kwargs, steps cap); image cases get small images and short episodes
CASES: list[tuple[str, str, dict[str, Any], int | None]] = [
    ("CartPole", "domrand/CartPole-v0", {}, None),
    ("KukaReach", "domrand/KukaReach-v0", {}, None),
    ("Pusher", "domrand/Pusher-v0", {}, None),
    ("CartPole-image", "domrand/CartPole-v0", {"obs_mode": "image", "image_size": 32}, 5),
    ("KukaReach-image", "domrand/KukaReach-v0", {"obs_mode": "image", "image_size": 32}, 5),
    ("Pusher-image", "domrand/Pusher-v0", {"obs_mode": "image", "image_size": 32}, 5),
    ("Localization", "domrand/Localization-v0", {"image_size": 32}, None),
]


def knob_points(knob: Knob) -> list[tuple[str, float]]:
    """``(label, value)`` points of one knob: ends (open ends just inside), interior, nominal."""
    lo, hi = float(knob.low), float(knob.high)
    span = hi - lo
    pts: list[tuple[str, float]] = []
    if knob.low_open:
        pts += [("low+ulp", math.nextafter(lo, hi)), ("low+1e-6", lo + 1e-6 * span)]
    else:
        pts.append(("low", lo))
    if knob.high_open:
        pts += [("high-ulp", math.nextafter(hi, lo)), ("high-1e-6", hi - 1e-6 * span)]
    else:
        pts.append(("high", hi))
    pts += [(f"{q:.2f}", lo + q * span) for q in (0.25, 0.5, 0.75)]
    pts.append(("nominal", float(knob.nominal)))
    out = []
    for label, v in pts:
        value = knob.coerce(round(v) if knob.integer else v)
        out.append((label, value))
    return out


def extreme(knob: Knob, high: bool) -> float:
    """The valid end of ``knob`` (just inside an open end)."""
    if high:
        v = math.nextafter(knob.high, knob.low) if knob.high_open else knob.high
    else:
        v = math.nextafter(knob.low, knob.high) if knob.low_open else knob.low
    return knob.coerce(round(v) if knob.integer else v)


def run_point(
    env: Any, domain: dict[str, Any], episodes: int, steps: int | None, seed: int
) -> dict[str, Any]:
    """Run ``episodes`` random-action episodes under ``domain``; classify what happened."""
    outcome = {"episodes": 0, "faults": 0, "crash": None, "nonfinite": 0, "steps": 0}
    for e in range(episodes):
        try:
            obs, _ = env.reset(seed=seed + e, options={"domain": domain})
            if not np.all(np.isfinite(obs)):
                outcome["nonfinite"] += 1
            fault = False
            n = 0
            while True:
                obs, r, term, trunc, info = env.step(env.action_space.sample())
                n += 1
                if info.get("physics_fault"):
                    fault = True
                    break
                if not (np.all(np.isfinite(obs)) and math.isfinite(r)):
                    outcome["nonfinite"] += 1
                    break
                if term or trunc or (steps is not None and n >= steps):
                    break
            outcome["episodes"] += 1
            outcome["faults"] += fault
            outcome["steps"] += n
        except Exception as exc:  # a crash: record it and keep going with the grid
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
            outcome["crash"] = f"{type(exc).__name__}: {exc}"[:300]
            outcome["traceback"] = "".join(tb[-3:])[:1500]
            break
    return outcome


def run_case(
    label: str,
    env_id: str,
    kwargs: dict[str, Any],
    cap: int | None,
    args: argparse.Namespace,
    only_visual: bool,
) -> dict[str, Any]:
    env = domrand.make(env_id, **kwargs)
    env.action_space.seed(args.seed)
    knobs = env.unwrapped.knobs
    state_knobs = set(domrand.registry.knobs_for(env_id)) if only_visual else set()
    names = [n for n in knobs if n not in state_knobs]
    steps = args.steps if cap is None else min(cap, args.steps)
    per_knob: dict[str, Any] = {}
    failures: list[dict[str, Any]] = []
    points = 0
    t0 = time.perf_counter()
    for name in names:
        rows = []
        for plabel, value in knob_points(knobs[name]):
            o = run_point(env, {name: value}, args.episodes, steps, args.seed)
            points += 1
            rows.append({"point": plabel, "value": value, **o})
            if o["crash"] or o["nonfinite"]:
                failures.append({"knob": name, "point": plabel, "value": value, **o})
                env.close()  # a crashed env may be in any state: start from a fresh one
                env = domrand.make(env_id, **kwargs)
                env.action_space.seed(args.seed)
        per_knob[name] = {
            "faulty_episodes": sum(r["faults"] for r in rows),
            "episodes": sum(r["episodes"] for r in rows),
            "points": rows,
        }
    rng = np.random.default_rng(args.seed)
    combos: list[tuple[str, dict[str, Any]]] = [
        ("all low", {n: extreme(knobs[n], False) for n in names}),
        ("all high", {n: extreme(knobs[n], True) for n in names}),
    ]
    for c in range(args.corners):
        combos.append(
            (f"corner {c}", {n: extreme(knobs[n], bool(rng.random() < 0.5)) for n in names})
        )
    for c in range(args.random):
        d = {}
        for n in names:
            k = knobs[n]
            v = float(rng.uniform(float(k.low), float(k.high)))
            d[n] = k.coerce(
                round(v) if k.integer else min(max(v, extreme(k, False)), extreme(k, True))
            )
        combos.append((f"random {c}", d))
    combo_rows = []
    for clabel, domain in combos:
        o = run_point(env, domain, args.episodes, steps, args.seed)
        points += 1
        combo_rows.append({"combo": clabel, **o})
        if o["crash"] or o["nonfinite"]:
            failures.append({"combo": clabel, "domain": domain, **o})
            env.close()
            env = domrand.make(env_id, **kwargs)
            env.action_space.seed(args.seed)
    env.close()
    faulty = {n: v["faulty_episodes"] for n, v in per_knob.items() if v["faulty_episodes"]}
    summary = {
        "env": env_id,
        "mode": kwargs.get("obs_mode", "image" if "Localization" in env_id else "state"),
        "knobs": len(names),
        "points": points,
        "episodes": sum(v["episodes"] for v in per_knob.values())
        + sum(r["episodes"] for r in combo_rows),
        "faulty_episodes": sum(faulty.values()) + sum(r["faults"] for r in combo_rows),
        "faulty_episodes_per_knob": faulty,
        "faulty_combos": [r["combo"] for r in combo_rows if r["faults"]],
        "failures": len(failures),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(
        f"{label}: {len(names)} knobs, {points} points, {summary['episodes']} episodes, "
        f"{summary['faulty_episodes']} flagged faults, {len(failures)} failures "
        f"({summary['seconds']} s); faults per knob: {faulty or '-'}; "
        f"faulty combos: {summary['faulty_combos'] or '-'}",
        flush=True,
    )
    for f in failures:
        print(f"  FAILURE {f.get('knob', f.get('combo'))} {f.get('point', '')}: {f['crash']}")
    return {"summary": summary, "per_knob": per_knob, "combos": combo_rows, "failures": failures}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=1, help="episodes per grid point")
    ap.add_argument("--steps", type=int, default=100, help="steps per episode at most")
    ap.add_argument("--corners", type=int, default=6, help="random all-extreme corners per env")
    ap.add_argument("--random", type=int, default=6, help="uniform full-range domains per env")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--envs", nargs="+", default=[c[0] for c in CASES])
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    t0 = time.perf_counter()
    results = {}
    for label, env_id, kwargs, cap in CASES:
        if label in args.envs:
            results[label] = run_case(label, env_id, kwargs, cap, args, label.endswith("-image"))
    doc = {
        "benchmark": "extreme_grid",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "failures": sum(r["summary"]["failures"] for r in results.values()),
        "summary": {k: r["summary"] for k, r in results.items()},
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "note": "2-core VM shared with other jobs",
        },
        "details": {
            k: {"per_knob": r["per_knob"], "combos": r["combos"], "failures": r["failures"]}
            for k, r in results.items()
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    print(f"total failures (crashes or unflagged NaN/inf): {doc['failures']}; {doc['elapsed_s']} s")


if __name__ == "__main__":
    main()

"""Soak: 100,000 randomized resets in one process; memory and file handles must stay flat.

Five envs live side by side in one process and take turns, ten resets per round:

  4 x CartPole-v0      state mode, default spec (``obs.noise`` re-drawn every step), 8 steps
  1 x KukaReach-v0     state mode, default spec (``obs.noise`` every step), 3 steps
  1 x Pusher-v0        state mode, default spec (``obs.noise`` every step), 3 steps
  2 x CartPole-v0      image mode 48 px, visual spec (``image.noise`` every step), 2 steps
  2 x Localization-v0  image mode 48 px, Tobin spec + ``obs.noise`` every step, 1 step

so 40% of the resets render (about 100,000 images in all). Actions are uniform random. Every
``--reload-every`` resets each env's scene is rebuilt the way a physics fault rebuilds it
(``resetSimulation``, bodies, texture bank and distractor pool re-created), the path most likely
to leak.

Every ``--every`` resets the script records the process RSS (``/proc/self/statm``), the number of
open file descriptors (``/proc/self/fd``), Python's live object count and each env's body count.

"Flat" (stated before the run): after a warm-up of the first 10% of resets,
  * the least-squares RSS slope is below 1 MiB per 10,000 resets, and
  * the open file descriptors never exceed their count at the end of the warm-up, and
  * the live Python object count grows by less than 1%.

Writes benchmarks/results/soak.json; prints progress lines.
Usage: python benchmarks/soak.py [--resets 100000] [--every 1000] [--reload-every 2000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import domrand
from domrand.envs._bullet import pybullet
from domrand.spec import load_spec

RESULTS = Path(__file__).parent / "results" / "soak.json"
IMAGE_SIZE = 48
#: (name, env id, make kwargs, spec file, per-step noise to add, steps per episode, resets/round)
STREAMS: list[tuple[str, str, dict[str, Any], str, dict[str, Any] | None, int, int]] = [
    ("cartpole_state", "domrand/CartPole-v0", {}, "cartpole.yaml", None, 8, 4),
    ("kuka_state", "domrand/KukaReach-v0", {}, "kuka_reach.yaml", None, 3, 1),
    ("pusher_state", "domrand/Pusher-v0", {}, "pusher.yaml", None, 3, 1),
    (
        "cartpole_image",
        "domrand/CartPole-v0",
        {"obs_mode": "image", "image_size": IMAGE_SIZE},
        "cartpole_visual.yaml",
        None,
        2,
        2,
    ),
    (
        "localization_image",
        "domrand/Localization-v0",
        {"image_size": IMAGE_SIZE},
        "localization.yaml",
        {"obs.noise": {"dist": "uniform", "low": 0.0, "high": 4.0, "every": "step"}},
        1,
        2,
    ),
]
FLAT_RSS_MIB_PER_10K = 1.0
FLAT_OBJECTS_FRACTION = 0.01
WARMUP_FRACTION = 0.1


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def make_stream(env_id: str, kwargs: dict[str, Any], spec_file: str, extra: Any, seed: int) -> Any:
    probe = domrand.make(env_id, **kwargs)
    spec = load_spec(domrand.default_spec_path(env_id).parent / spec_file, env=probe.unwrapped)
    probe.close()
    d = spec.to_dict()
    d["parameters"].update(extra or {})
    env = domrand.make(env_id, spec=d, seed=seed, **kwargs)
    env.action_space.seed(seed)
    return env


def slope_per_10k(xs: list[int], ys: list[float]) -> float:
    if len(xs) < 2:
        return float("nan")
    return float(np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)[0] * 10_000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resets", type=int, default=100_000)
    ap.add_argument("--every", type=int, default=1000, help="resets between samples")
    ap.add_argument("--reload-every", type=int, default=2000, help="resets between scene rebuilds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    envs = []
    schedule: list[int] = []
    for i, (name, env_id, kw, spec_file, extra, steps, share) in enumerate(STREAMS):
        envs.append((name, make_stream(env_id, kw, spec_file, extra, args.seed + i), steps))
        schedule += [i] * share
    counts = dict.fromkeys((s[0] for s in STREAMS), 0)
    faults = dict.fromkeys(counts, 0)
    images = 0
    for _, env, _ in envs:
        env.reset()

    def sample(resets: int, elapsed: float) -> dict[str, Any]:
        gc.collect()
        return {
            "resets": resets,
            "elapsed_s": round(elapsed, 1),
            "rss_mib": round(rss_mib(), 2),
            "open_fds": open_fds(),
            "py_objects": len(gc.get_objects()),
            "bodies": {
                name: pybullet.getNumBodies(physicsClientId=env.unwrapped._client_id)
                for name, env, _ in envs
            },
        }

    samples = [sample(0, 0.0)]
    start = time.perf_counter()
    for r in range(1, args.resets + 1):
        k = schedule[r % len(schedule)]
        name, env, steps = envs[k]
        if args.reload_every and r % args.reload_every < len(schedule):
            # What a physics fault does: the scene is rebuilt at this reset.
            env.unwrapped._needs_reload = True
        env.reset()
        images += env.unwrapped.renders_images
        for _ in range(steps):
            _, _, term, trunc, info = env.step(env.action_space.sample())
            images += env.unwrapped.renders_images
            faults[name] += bool(info.get("physics_fault"))
            if term or trunc:
                break
        counts[name] += 1
        if r % args.every == 0:
            s = sample(r, time.perf_counter() - start)
            samples.append(s)
            rate = r / max(s["elapsed_s"], 1e-9)
            print(
                f"{r:>7} resets  {s['elapsed_s']:>7.0f} s  {rate:6.0f}/s  "
                f"rss {s['rss_mib']:.1f} MiB  fds {s['open_fds']}  objects {s['py_objects']}",
                flush=True,
            )
    elapsed = time.perf_counter() - start
    for _, env, _ in envs:
        env.close()

    warm_at = int(args.resets * WARMUP_FRACTION)
    post = [s for s in samples if s["resets"] >= warm_at]
    warm = post[0]
    rss_slope = slope_per_10k([s["resets"] for s in post], [s["rss_mib"] for s in post])
    slope_all = slope_per_10k([s["resets"] for s in samples], [s["rss_mib"] for s in samples])
    fd_max_after = max(s["open_fds"] for s in post)
    obj_growth = (post[-1]["py_objects"] - warm["py_objects"]) / warm["py_objects"]
    checks = {
        "rss_slope_ok": bool(rss_slope < FLAT_RSS_MIB_PER_10K),
        "fds_ok": bool(fd_max_after <= warm["open_fds"]),
        "py_objects_ok": bool(obj_growth < FLAT_OBJECTS_FRACTION),
    }
    result = {
        "benchmark": "soak",
        "resets": args.resets,
        "images_rendered": images,
        "resets_per_stream": counts,
        "physics_faults_per_stream": faults,
        "scene_rebuilds_every": args.reload_every,
        "elapsed_s": round(elapsed, 1),
        "resets_per_s": round(args.resets / elapsed, 1),
        "criterion": (
            f"after a warm-up of the first {WARMUP_FRACTION:.0%} of resets: least-squares RSS "
            f"slope < {FLAT_RSS_MIB_PER_10K} MiB per 10k resets, open fds never above their "
            f"count at the end of the warm-up, live Python objects grow < "
            f"{FLAT_OBJECTS_FRACTION:.0%}"
        ),
        "warmup_resets": warm_at,
        "rss_start_mib": samples[0]["rss_mib"],
        "rss_at_warmup_mib": warm["rss_mib"],
        "rss_end_mib": samples[-1]["rss_mib"],
        "rss_max_after_warmup_mib": max(s["rss_mib"] for s in post),
        "rss_slope_after_warmup_mib_per_10k": round(rss_slope, 4),
        "rss_slope_all_mib_per_10k": round(slope_all, 4),
        "fds_start": samples[0]["open_fds"],
        "fds_at_warmup": warm["open_fds"],
        "fds_max_after_warmup": fd_max_after,
        "py_objects_growth_after_warmup": round(obj_growth, 5),
        "checks": checks,
        "flat": all(checks.values()),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "note": "2-core VM shared with other jobs; the rate is measured under that load",
        },
        "samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{args.resets} resets in {elapsed:.0f} s; RSS {samples[0]['rss_mib']:.1f} -> "
        f"{samples[-1]['rss_mib']:.1f} MiB, slope after warm-up {rss_slope:+.3f} MiB/10k; "
        f"fds {samples[0]['open_fds']} -> {samples[-1]['open_fds']}; flat: {result['flat']}"
    )


if __name__ == "__main__":
    main()

"""Visual randomization throughput and a memory soak, side by side in one run.

Images per second at 64, 84 and 128 px, CPU TinyRenderer, for two scenes:
  Localization-v0  one image per reset (the dataset / CNN-training path)
  CartPole-v0      image mode, one image per control step (physics + render)
and four cases per scene and size:
  raw pybullet     a bare getCameraImage loop on the same scene, fixed camera and light
  no DR            the env with nominal looks (knob bookkeeping, obs conversion)
  visual DR        the env under its visual spec without the image.* effects
  visual DR + aug  the same spec with the post-render image effects (OpenCV)
plus Localization's full DR on two worker processes (an async vector env on the 2 cores).

The soak runs 5,000 fully randomized Localization resets and records the process RSS, the body
count and the number of textures the physics server holds at intervals.

Writes benchmarks/results/visual_throughput.json and prints Markdown tables.
Usage: python benchmarks/visual_throughput.py [--images N] [--repeats R] [--soak N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import domrand
from domrand.envs._bullet import pybullet
from domrand.spec import load_spec
from domrand.textures import white_texture_file

RESULTS = Path(__file__).parent / "results" / "visual_throughput.json"
SIZES = (64, 84, 128)
SCENES = {
    "Localization": ("domrand/Localization-v0", "localization.yaml"),
    "CartPole": ("domrand/CartPole-v0", "cartpole_visual.yaml"),
}


def spec_without_aug(path: Path, env_id: str) -> dict[str, Any]:
    """The spec with its image.* entries removed (scene randomization only)."""
    d = load_spec(path, env=domrand.make(env_id, obs_mode="image").unwrapped).to_dict()
    d["parameters"] = {k: v for k, v in d["parameters"].items() if not k.startswith("image.")}
    return d


def run_env(env_id: str, size: int, spec: Any, images: int) -> float:
    """Images per second: resets for one-step Localization, steps for CartPole."""
    env = domrand.make(env_id, spec=spec, seed=0, obs_mode="image", image_size=size)
    env.reset()
    per_reset = "Localization" in env_id
    actions = np.random.default_rng(0).uniform(-1, 1, (images, 1)).astype(np.float32)
    start = time.perf_counter()
    for i in range(images):
        if per_reset:
            env.reset()
        else:
            _, _, terminated, truncated, _ = env.step(actions[i])
            if terminated or truncated:
                env.reset()  # its image counts too, but is not in `images`: conservative
    elapsed = time.perf_counter() - start
    env.close()
    return images / elapsed


def run_raw(env_id: str, size: int, images: int) -> float:
    """A bare getCameraImage loop on the env's own scene (nominal camera and light)."""
    env = domrand.make(env_id, seed=0, obs_mode="image", image_size=size)
    env.reset()
    u = env.unwrapped
    vis = u._visual
    view, proj, light = vis._view, vis._projection(size, size), dict(vis._light)
    cid = u._client_id
    start = time.perf_counter()
    for _ in range(images):
        _, _, rgba, _, _ = pybullet.getCameraImage(
            size,
            size,
            view,
            proj,
            renderer=pybullet.ER_TINY_RENDERER,
            flags=pybullet.ER_NO_SEGMENTATION_MASK,
            physicsClientId=cid,
            **light,
        )
        np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[:, :, :3].copy()
    elapsed = time.perf_counter() - start
    env.close()
    return images / elapsed


def run_vector(env_id: str, size: int, spec: Any, images: int, workers: int) -> float:
    """Images per second from ``workers`` subprocesses resetting in parallel."""
    vec = domrand.make_vec(
        env_id, workers, spec=spec, seed=0, vectorization="async", image_size=size
    )
    vec.reset()
    calls = max(1, images // workers)
    start = time.perf_counter()
    for _ in range(calls):
        vec.reset()
    elapsed = time.perf_counter() - start
    vec.close()
    return calls * workers / elapsed


def throughput(images: int, repeats: int) -> list[dict[str, Any]]:
    specs_dir = domrand.registry.assets_dir() / "specs"
    rows = []
    for scene, (env_id, spec_file) in SCENES.items():
        full = str(specs_dir / spec_file)
        no_aug = spec_without_aug(specs_dir / spec_file, env_id)
        for size in SIZES:
            cases: dict[str, Callable[[], float]] = {
                "raw pybullet": lambda e=env_id, s=size: run_raw(e, s, images),
                "no DR": lambda e=env_id, s=size: run_env(e, s, None, images),
                "visual DR": lambda e=env_id, s=size, sp=no_aug: run_env(e, s, sp, images),
                "visual DR + aug": lambda e=env_id, s=size, sp=full: run_env(e, s, sp, images),
            }
            if scene == "Localization" and size == 84:
                cases["visual DR + aug, 2 workers"] = lambda e=env_id, s=size, sp=full: run_vector(
                    e, s, sp, 2 * images, 2
                )
            rates: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(repeats):  # interleaved, so a busy moment hits every case alike
                for name, fn in cases.items():
                    rates[name].append(fn())
            raw = statistics.median(rates["raw pybullet"])
            for name in cases:
                med = statistics.median(rates[name])
                rows.append(
                    {
                        "scene": scene,
                        "size": size,
                        "case": name,
                        "images_per_s": round(med, 1),
                        "vs_raw": round(raw / med, 3),
                        "all_runs": [round(r, 1) for r in rates[name]],
                    }
                )
            print(
                f"  {scene} {size}px: "
                + ", ".join(f"{n} {statistics.median(r):.0f}/s" for n, r in rates.items())
            )
    return rows


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def soak(resets: int, every: int) -> dict[str, Any]:
    """``resets`` fully randomized Localization resets: RSS, bodies and textures over time."""
    env_id = "domrand/Localization-v0"
    env = domrand.make(env_id, spec=domrand.default_spec_path(env_id), seed=0)
    u = env.unwrapped
    cid = u._client_id
    probes = 0

    def textures() -> int:
        # Loading one more texture returns the count held; subtract our earlier probes.
        nonlocal probes
        n = int(pybullet.loadTexture(white_texture_file(), physicsClientId=cid)) - probes
        probes += 1
        return n

    env.reset()
    samples = []
    start = time.perf_counter()
    for i in range(resets + 1):
        if i % every == 0:
            samples.append(
                {
                    "resets": i,
                    "rss_mib": round(_rss_mib(), 2),
                    "bodies": pybullet.getNumBodies(physicsClientId=cid),
                    "textures": textures(),
                }
            )
        if i < resets:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    first, warm, last = samples[0], samples[1], samples[-1]
    return {
        "resets": resets,
        "resets_per_s": round(resets / elapsed, 1),
        "rss_growth_mib": round(last["rss_mib"] - first["rss_mib"], 2),
        "rss_growth_after_first_interval_mib": round(last["rss_mib"] - warm["rss_mib"], 2),
        "samples": samples,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=300, help="images per case and repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--soak", type=int, default=5000, help="resets in the soak")
    args = ap.parse_args()
    print("throughput:")
    rows = throughput(args.images, args.repeats)
    print("soak:")
    soaked = soak(args.soak, max(1, args.soak // 10))
    result = {
        "benchmark": "visual_throughput",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average_at_end": list(os.getloadavg()),
        },
        "renderer": "pybullet ER_TINY_RENDERER (CPU), no segmentation mask",
        "images_per_case": args.images,
        "repeats": args.repeats,
        "rows": rows,
        "soak": soaked,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    cases = list(dict.fromkeys(r["case"] for r in rows))
    print("\n| scene | px | " + " | ".join(cases) + " |")
    print("|---|---:|" + "---:|" * len(cases))
    for scene in SCENES:
        for size in SIZES:
            by = {r["case"]: r for r in rows if r["scene"] == scene and r["size"] == size}
            cells = [f"{by[c]['images_per_s']:,.0f}" if c in by else "" for c in cases]
            print(f"| {scene} | {size} | " + " | ".join(cells) + " |")
    print("\n| resets | RSS (MiB) | bodies | server textures |")
    print("|---:|---:|---:|---:|")
    for s in soaked["samples"]:
        print(f"| {s['resets']:,} | {s['rss_mib']:.1f} | {s['bodies']} | {s['textures']} |")
    growth, warm = soaked["rss_growth_mib"], soaked["rss_growth_after_first_interval_mib"]
    print(f"\nsoak: {soaked['resets_per_s']} resets/s, RSS growth {growth} MiB")
    print(f"({warm} MiB after the first interval)")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

"""Visual sim-to-real transfer after Tobin et al. (2017): position error vs images, textures.

A small CNN (domrand.visual_transfer.Localizer: three convolutions, spatial soft-argmax, MLP)
learns the target cube's (x, y) on the table from randomized Localization-v0 renders, and is
scored on images it never saw:

  sim           fresh renders from the full training spec (in distribution)
  lab_bench     the held-out "real-looking" appearance: plain colours, light and camera all
                outside the training spec (assets/realities/localization/lab_bench.yaml)
  wood_table, window_light, real_camera   the other shipped Localization realities

Three experiments, one CNN each (same optimization budget for every run: 1,500 Adam steps in the
quick tier, 20,000 in the full one):
  images        500 / 1k / 2k / 5k training images from the full spec (1,024 textures)
  textures      1 / 10 / 100 / 1,024 bank textures for every surface, at a fixed image count
  distractors   with (0..10) or without distractors in training, at that image count

Renders are cached as domrand datasets (seeded, resumable) under --cache, one folder per tier,
size and seed, and every finished CNN as JSON under --cache/cells (a killed run retrains only the
unfinished ones); the runs go on two worker processes. With --seeds 0 1 2 every CNN runs once per
seed (its own renders and initialization) and the table shows mean +- std over seeds. Writes
benchmarks/results/visual_transfer.{json,md,png} (other tiers: visual_transfer_<tier>.*).

Usage: python benchmarks/visual_transfer.py [--tier quick|full] [--seeds 0 1 2] [--workers 2]
       [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import domrand
from domrand.visual_transfer import (
    TrainSettings,
    position_errors_cm,
    predict,
    render_set,
    spec_variant,
    train_localizer,
)

HERE = Path(__file__).parent
RESULTS = HERE / "results"
SPEC = HERE / "specs" / "localization_known_target.yaml"
REALITIES = ("lab_bench", "wood_table", "window_light", "real_camera")
TIERS: dict[str, dict[str, Any]] = {
    "quick": {
        "images": (500, 1000, 2000, 5000),
        "textures": (1, 10, 100, 1024),
        "fixed_images": 2000,
        "eval_images": 300,
        "settings": TrainSettings(steps=1500, batch_size=64, lr=2e-3, channels=32),
    },
    "full": {
        "images": (500, 1000, 2000, 5000, 10000, 20000),
        "textures": (1, 10, 100, 1024),
        "fixed_images": 5000,
        "eval_images": 1000,
        # 20,000 steps: at 5,000 the CNNs underfit (training error close to the sim error;
        # benchmarks/visual_resolution.py), which the full tier did until 2026-11-27
        "settings": TrainSettings(steps=20000, batch_size=64, lr=2e-3, channels=32),
    },
}


#: one render job: (cache folder, set name, images, spec, domain, render seed, size)
Render = tuple[Path, str, int, Any, Any, int, int]


def shared_renders(cache: Path, base: Any, n_train: int, n_eval: int, seed: int,
                   size: int) -> list[Render]:  # fmt: skip
    """The training set ``full_<n_train>`` from the full spec and every evaluation set, with the
    render seeds every tier (and ``visual_resolution.py``) uses, so their scenes are the same."""
    realities = domrand.realities("domrand/Localization-v0")
    return [
        (cache, f"full_{n_train}", n_train, base, None, 1000 + seed, size),
        (cache, "eval_sim", n_eval, base, None, 2000 + seed, size),
        *[(cache, f"eval_{r}", n_eval, None, realities[r], 5000 + i + seed, size)
          for i, r in enumerate(REALITIES)],
    ]  # fmt: skip


def render_job(job: Render) -> tuple[str, float]:
    cache, name, n, spec, domain, seed, size = job
    t = time.perf_counter()
    render_set(cache / name, n, spec=spec, domain=domain, seed=seed, size=size)
    return name, time.perf_counter() - t


def train_job(job: dict[str, Any]) -> dict[str, Any]:
    """One CNN: load its training images from ``job["cache"]``, fit, score on every
    evaluation set."""
    from domrand.dataset import read_shards

    def load(name: str, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        shards = list(read_shards(job["cache"] / name))
        x = np.concatenate([s.images for s in shards])[:n]
        y = np.concatenate([s.labels for s in shards])[:n]
        return x, y

    x, y = load(job["data"], job["n"])
    t = time.perf_counter()
    model = train_localizer(x, y, job["settings"], seed=job["seed"])
    train_s = time.perf_counter() - t
    errors = {}
    for name in job["evals"]:
        xe, ye = load(f"eval_{name}")
        e = position_errors_cm(predict(model, xe), ye)
        errors[name] = {"mean_cm": float(e.mean()), "median_cm": float(np.median(e))}
    train_e = position_errors_cm(predict(model, x[:1000]), y[:1000])
    keys = ("group", "value", "n", "textures", "distractors")
    out = {k: job[k] for k in keys}
    out.update(train_s=train_s, train_error_cm=float(train_e.mean()), errors=errors)
    return out


def cell_path(job: dict[str, Any]) -> Path:
    """Where one finished CNN is kept: its render folder, data, image count and steps name it."""
    cache: Path = job["cache"]
    name = f"{cache.name}_{job['data']}_n{job['n']}_{job['settings'].steps}steps.json"
    return cache.parent / "cells" / name


def cached_train_job(job: dict[str, Any]) -> dict[str, Any]:
    """:func:`train_job`, or its result from an earlier run of the same CNN."""
    from domrand.fsutil import atomic_write_text

    done = cell_path(job)
    if done.exists():
        row = json.loads(done.read_text(encoding="utf-8"))
        row.update({k: job[k] for k in ("group", "value", "n", "textures", "distractors")})
        return row
    row = train_job(job)
    done.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(done, json.dumps(row, indent=1) + "\n")
    return row


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Render (cached) and train every CNN of one seed; its rows and timings."""
    tier = TIERS[args.tier]
    settings: TrainSettings = tier["settings"]
    cache = args.cache / f"{args.tier}_{args.size}px_seed{seed}"
    base = yaml.safe_load(SPEC.read_text())
    size, k_fixed = args.size, tier["fixed_images"]
    n_max, n_eval = max(tier["images"]), tier["eval_images"]
    t0 = time.perf_counter()

    # ------------------------------------------------------------ renders (cached)
    shared = shared_renders(cache, base, n_max, n_eval, seed, size)
    renders = [
        *shared[:2],
        (cache, f"nodistractors_{k_fixed}", k_fixed, spec_variant(base, distractors=False), None,
         3000 + seed, size),
        *[(cache, f"textures{k}_{k_fixed}", k_fixed, spec_variant(base, textures=k), None,
           4000 + k + seed, size) for k in tier["textures"] if k != 1024],
        *shared[2:],
    ]  # fmt: skip
    render_s: dict[str, float] = {}
    with ProcessPoolExecutor(args.workers) as ex:
        for name, dt in ex.map(render_job, renders):
            render_s[name] = dt
            print(f"seed {seed}: rendered {name} in {dt:.0f} s", flush=True)
    t_render = time.perf_counter() - t0

    # ------------------------------------------------------------ CNNs
    evals = ("sim", *REALITIES)
    jobs = []

    def job(group: str, value: Any, data: str, n: int, textures: int, distractors: bool) -> None:
        jobs.append({"group": group, "value": value, "data": data, "n": n, "textures": textures,
                     "distractors": distractors, "settings": settings, "seed": seed,
                     "evals": evals, "cache": cache})  # fmt: skip

    for n in tier["images"]:
        job("images", n, f"full_{n_max}", n, 1024, True)
    for k in tier["textures"]:
        if k != 1024:  # 1,024 textures at the fixed image count is the images run of that size
            job("textures", k, f"textures{k}_{k_fixed}", k_fixed, k, True)
    job("distractors", False, f"nodistractors_{k_fixed}", k_fixed, 1024, False)
    t1 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as ex:
        rows = []
        for row in ex.map(cached_train_job, jobs):
            rows.append(row)
            errs = ", ".join(f"{k} {v['mean_cm']:.1f}" for k, v in row["errors"].items())
            print(f"seed {seed}: {row['group']}={row['value']}: {errs} cm "
                  f"({row['train_s']:.0f} s)", flush=True)  # fmt: skip
    t_train = time.perf_counter() - t1
    # the "with distractors" row of the distractor experiment is the textures=1024 run
    same = next(r for r in rows if r["group"] == "images" and r["n"] == k_fixed)
    last = max(i for i, r in enumerate(rows) if r["group"] == "textures")
    rows.insert(last + 1, {**same, "group": "textures", "value": 1024})
    for r in rows:
        r["seed"] = seed
    from domrand.dataset import read_shards

    centre = {}
    for name in evals:
        ye = np.concatenate([s.labels for s in read_shards(cache / f"eval_{name}")])
        centre[name] = float(position_errors_cm(np.zeros_like(ye), ye).mean())
    seconds = {"render": t_render, "train": t_train, "total": time.perf_counter() - t0}
    return {"rows": rows, "guess_table_centre_cm": centre, "seconds": seconds,
            "render_seconds": render_s}  # fmt: skip


def aggregate(per_seed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (experiment, value): mean and std over seeds of each set's mean error."""
    out = []
    for i, first in enumerate(per_seed[0]["rows"]):
        same = [doc["rows"][i] for doc in per_seed]
        errors = {}
        for e in first["errors"]:
            cm = [r["errors"][e]["mean_cm"] for r in same]
            errors[e] = {"mean_cm": float(np.mean(cm)), "std_cm": float(np.std(cm)),
                         "per_seed_cm": cm}  # fmt: skip
        keys = ("group", "value", "n", "textures", "distractors")
        out.append({**{k: first[k] for k in keys}, "errors": errors})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tier", choices=tuple(TIERS), default="quick")
    ap.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0],
                    help="one run of every CNN per seed (own renders and init); the table "
                         "shows mean +- std over seeds (default: 0)")  # fmt: skip
    ap.add_argument("--cache", type=Path, default=HERE / ".cache" / "visual_transfer",
                    help="rendered datasets, one folder per tier, size and seed")  # fmt: skip
    ap.add_argument("--out", type=Path, default=None,
                    help="results stem (default benchmarks/results/visual_transfer for the "
                         "quick tier, visual_transfer_full for the full one)")  # fmt: skip
    args = ap.parse_args()
    tier = TIERS[args.tier]
    t0 = time.perf_counter()
    per_seed = [run_seed(args, seed) for seed in args.seeds]
    seconds = {k: sum(d["seconds"][k] for d in per_seed) for k in ("render", "train")}
    doc = {
        "benchmark": "visual_transfer",
        "tier": args.tier,
        "image_size": args.size,
        "seeds": list(args.seeds),
        "settings": tier["settings"].__dict__,
        "eval_images": tier["eval_images"],
        "fixed_images": tier["fixed_images"],
        "rows": aggregate(per_seed),
        "guess_table_centre_cm": {
            e: float(np.mean([d["guess_table_centre_cm"][e] for d in per_seed]))
            for e in per_seed[0]["guess_table_centre_cm"]
        },
        "per_seed": per_seed,
        "seconds": {**seconds, "total": time.perf_counter() - t0},
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "reference": "Tobin et al. 2017: 1.5 cm on real images with >= ~1,000 textures",
    }
    suffix = "" if args.tier == "quick" else f"_{args.tier}"
    out = args.out if args.out is not None else RESULTS / f"visual_transfer{suffix}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(doc))
    plot(doc, out.with_suffix(".png"))
    print(markdown(doc))
    print(f"wrote {out.with_suffix('.json')}, .md and .png in {doc['seconds']['total']:.0f} s")


def _cell(err: dict[str, Any], seeds: int) -> str:
    return f"{err['mean_cm']:.1f}" if seeds == 1 else f"{err['mean_cm']:.1f} +- {err['std_cm']:.1f}"


def markdown(doc: dict[str, Any]) -> str:
    evals = list(doc["guess_table_centre_cm"])
    n_seeds = len(doc["seeds"])
    head = "| experiment | training images | textures | distractors | " + " | ".join(evals)
    lines = [head + " |", "|---|---:|---:|---|" + "---:|" * len(evals)]
    for r in doc["rows"]:
        cells = " | ".join(_cell(r["errors"][e], n_seeds) for e in evals)
        dis = "yes" if r["distractors"] else "no"
        lines.append(f"| {r['group']} | {r['n']:,} | {r['textures']:,} | {dis} | {cells} |")
    centre = " | ".join(f"{doc['guess_table_centre_cm'][e]:.1f}" for e in evals)
    lines.append(f"| guess the table centre | | | | {centre} |")
    s = doc["seconds"]
    seeds = ", ".join(str(v) for v in doc["seeds"])
    spread = "mean +- std over seeds " if n_seeds > 1 else ""
    lines.append("")
    lines.append(
        f"Mean position error in cm ({spread}{seeds}) on {doc['eval_images']} images per set, "
        f"{doc['image_size']} px, {doc['settings']['steps']} Adam steps of "
        f"{doc['settings']['batch_size']} per CNN. Wall time: render {s['render']:.0f} s, "
        f"train {s['train']:.0f} s, total {s['total']:.0f} s (load average "
        f"{doc['machine']['load_average'][0]:.1f} at the end)."
    )
    return "\n".join(lines) + "\n"


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.8), dpi=110, layout="constrained")
    evals = list(doc["guess_table_centre_cm"])
    for i, group in enumerate(("images", "textures")):
        ax = fig.add_subplot(1, 3, i + 1)
        rows = [r for r in doc["rows"] if r["group"] == group]
        xs = [r["n"] if group == "images" else r["textures"] for r in rows]
        for e in evals:
            ys = [r["errors"][e]["mean_cm"] for r in rows]
            ax.errorbar(xs, ys, [r["errors"][e]["std_cm"] for r in rows], fmt="o-", label=e,
                        capsize=2)  # fmt: skip
        ax.set_xscale("log")
        ax.set_xticks(xs, [f"{v:,}" for v in xs], fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("training images" if group == "images" else "textures in training")
        ax.set_ylabel("mean position error [cm]")
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=7)
    ax = fig.add_subplot(1, 3, 3)
    with_d = next(r for r in doc["rows"] if r["group"] == "textures" and r["textures"] == 1024)
    without = next(r for r in doc["rows"] if r["group"] == "distractors")
    pos = np.arange(len(evals))
    for shift, row, label in ((-0.2, with_d, "distractors"), (0.2, without, "none")):
        ax.bar(pos + shift, [row["errors"][e]["mean_cm"] for e in evals], 0.4, label=label,
               yerr=[row["errors"][e]["std_cm"] for e in evals], capsize=2)  # fmt: skip
    ax.set_xticks(pos, evals, rotation=30, fontsize=7)
    ax.set_ylabel("mean position error [cm]")
    ax.legend(fontsize=7)
    seeds = ", ".join(str(v) for v in doc["seeds"])
    title = f"Localization transfer ({doc['tier']} tier, {doc['image_size']} px, seeds {seeds})"
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, bbox_inches="tight")


if __name__ == "__main__":
    main()

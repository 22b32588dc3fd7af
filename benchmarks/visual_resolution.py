"""Visual transfer: do image resolution or optimization close the gap to Tobin et al.'s 1.5 cm?

The full visual-transfer tier (``benchmarks/visual_transfer.py --tier full``) trained its CNNs on
64 px renders for 5,000 Adam steps until 2026-11-27; its best held-out error was 1.8 cm
(``wood_table``, 20,000 images). Tobin et al. (2017) used full-resolution images. This trains
the same CNN (``domrand.visual_transfer.Localizer``, Adam batches of 64) on the full tier's
20,000-image arm (1,024 textures, distractors) at several image sizes, and with more Adam
steps (each cell is ``SIZE:STEPS``). The scenes are the same at every size: the renders use the
full tier's seeds, and the image size does not enter the domain sampling. Every CNN is scored
on 1,000 images of each evaluation set (``sim`` and the four Localization realities), like the
full tier.
This found the 5,000-step CNNs underfit, so the full tier now trains for 20,000 steps, and its
20,000-image CNNs are this script's 64:20000 cells. The 64 px, 5,000-step cells are the former
full tier's 20,000-image cells again, in a later session:
sim agreed (3.31 vs 3.3 cm), the held-out sets moved by up to 0.7 cm, about the seed spread.

Writes benchmarks/results/visual_resolution.{json,md}. Renders are cached under --cache in
the same folders as the full tier's (``full_<size>px_seed<seed>``).

Finished CNNs are kept as JSON under ``--cache``/cells (the visual-transfer cell cache, which
the full tier shares: its 20,000-image, 20,000-step CNNs are this script's 64:20000 cells), so
adding a cell trains only that one.

Usage: python benchmarks/visual_resolution.py [--cells 64:5000 128:5000 64:20000] [--seeds 0 1]
       [--workers 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import visual_transfer as vt
import yaml

IMAGES = 20_000
TIER = vt.TIERS["full"]
OUT = vt.RESULTS / "visual_resolution"


def _train(job: dict[str, Any]) -> dict[str, Any]:
    """One CNN through the visual-transfer cell cache, tagged with its size, steps and seed."""
    return {**vt.cached_train_job(job), "size": job["size"], "steps": job["steps"],
            "seed": job["seed"]}  # fmt: skip


def _parse_cell(text: str) -> tuple[int, int]:
    size, _, steps = text.partition(":")
    try:
        return int(size), int(steps or TIER["settings"].steps)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a cell is SIZE:STEPS, e.g. 64:20000, got {text!r}"
        ) from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=_parse_cell, nargs="+", metavar="SIZE:STEPS",
                    default=[(64, 5000), (128, 5000), (64, 20000)])  # fmt: skip
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=vt.HERE / ".cache" / "visual_transfer")
    args = ap.parse_args()
    base = yaml.safe_load(vt.SPEC.read_text())
    n_eval = TIER["eval_images"]
    t0 = time.perf_counter()
    renders: list[vt.Render] = []
    trains = []
    for size in sorted({size for size, _ in args.cells}):
        for seed in args.seeds:
            cache = args.cache / f"full_{size}px_seed{seed}"
            renders += vt.shared_renders(cache, base, IMAGES, n_eval, seed, size)
    for size, steps in args.cells:
        settings = dataclasses.replace(TIER["settings"], steps=steps)
        for seed in args.seeds:
            cache = args.cache / f"full_{size}px_seed{seed}"
            trains.append({"group": "images", "value": IMAGES, "data": f"full_{IMAGES}",
                           "n": IMAGES, "textures": 1024, "distractors": True,
                           "settings": settings, "seed": seed, "evals": ("sim", *vt.REALITIES),
                           "cache": cache, "size": size, "steps": steps})  # fmt: skip
    render_s: dict[str, float] = {}
    with ProcessPoolExecutor(args.workers) as ex:
        for job, (name, dt) in zip(renders, ex.map(vt.render_job, renders), strict=True):
            render_s[f"{job[0].name}/{name}"] = dt
            print(f"{job[0].name}: rendered {name} in {dt:.0f} s", flush=True)
    t_render = time.perf_counter() - t0
    t1 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as ex:
        cells = list(ex.map(_train, trains))
    for c in cells:
        errs = ", ".join(f"{k} {v['mean_cm']:.2f}" for k, v in c["errors"].items())
        print(f"{c['size']} px, {c['steps']} steps, seed {c['seed']}: {errs} cm "
              f"(train {c['train_error_cm']:.2f}; {c['train_s']:.0f} s)")  # fmt: skip
    t_train = time.perf_counter() - t1
    evals = ("sim", *vt.REALITIES)
    rows = []
    for size, steps in args.cells:
        mine = [c for c in cells if (c["size"], c["steps"]) == (size, steps)]

        def stat(values: list[float]) -> dict[str, Any]:
            return {"mean_cm": float(np.mean(values)), "std_cm": float(np.std(values)),
                    "per_seed_cm": values}  # fmt: skip

        errors = {e: stat([c["errors"][e]["mean_cm"] for c in mine]) for e in evals}
        rows.append({"size": size, "steps": steps, "errors": errors,
                     "train_error": stat([c["train_error_cm"] for c in mine]),
                     "train_s": float(np.mean([c["train_s"] for c in mine]))})  # fmt: skip
    doc = {
        "benchmark": "visual_resolution",
        "images": IMAGES,
        "seeds": args.seeds,
        "settings": TIER["settings"].__dict__,
        "eval_images": n_eval,
        "rows": rows,
        "cells": cells,
        "seconds": {"render": t_render, "train": t_train, "total": time.perf_counter() - t0},
        "render_seconds": render_s,
        "load_average": os.getloadavg(),
        "reference": "Tobin et al. 2017: 1.5 cm on real images with >= ~1,000 textures",
    }
    OUT.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    head = "| image size | Adam steps | training images (first 1,000) | " + " | ".join(evals)
    lines = [head + " | s per CNN |", "|---:|---:|---:|" + "---:|" * (len(evals) + 1)]
    for r in rows:
        cells_md = " | ".join(f"{r['errors'][e]['mean_cm']:.2f} +- {r['errors'][e]['std_cm']:.2f}"
                              for e in evals)  # fmt: skip
        train = f"{r['train_error']['mean_cm']:.2f} +- {r['train_error']['std_cm']:.2f}"
        lines.append(f"| {r['size']} px | {r['steps']:,} | {train} | {cells_md} | "
                     f"{r['train_s']:.0f} |")  # fmt: skip
    lines += ["", f"Mean position error in cm, mean +- std over seeds {args.seeds}; {IMAGES:,} "
              f"training images (1,024 textures, distractors), Adam batches of "
              f"{TIER['settings'].batch_size}, {n_eval} images per evaluation set; seconds per "
              f"CNN on one thread, 2 CNNs side by side."]  # fmt: skip
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

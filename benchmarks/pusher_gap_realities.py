"""Diagnostic: on Pusher realities that do open a sim-to-real gap, does uniform DR beat no DR?

Its committed results predate the Pusher envs' revision 1 (2026-11-28: a puck pushed off the
table is charged the rest of the episode; ``benchmarks/pusher_fall.py``). Its cell cache does
not know the revision: re-run it with an empty ``--work`` to measure the current envs.

In the full transfer tier no DR matches or beats the oracle on three of Pusher's four shipped
realities (``hard_region``, ``heavy_sticky``, ``laggy_bumpy``): a nominal policy already
handles them, so they cannot show DR helping. This looks for Pusher realities with a gap, and
tests DR on them, without choosing them by how any DR method does there.

Protocol, written down (and committed) before any of its cells ran, 2026-11-27:

1. **Candidates**, fixed up front in ``benchmarks/realities/pusher_candidates/``, each a
   physical story beyond the default spec's ranges or outside what it randomizes:
   ``icy_puck`` (puck friction and damping 0.25x), ``slow_gantry`` (PD gains 0.35x, 3-step
   latency), ``weak_motor`` (force limit 0.3x, puck 2.5x heavier), ``grippy_heavy`` (puck mass
   and friction 3x), ``noisy`` (observation and action noise 4x training's top).
2. **Calibration, DR-blind**: no DR and an oracle per candidate, trained with the full tier's
   Pusher plan on *calibration seeds* 10, 11, 12 (not the test seeds), scored like the
   benchmark. A candidate has a gap if oracle - no DR > 0 and > 2 SE (unpaired, sample
   variances). No DR-trained policy is run on any candidate before this step is done.
3. **Test**, on the candidates with a gap only: the ``no_dr``, ``uniform`` and ``autodr``
   policies of ``benchmarks/pusher_own_distribution.py`` (seeds 0-9, already trained, the full
   tier's cells) are scored on them. Uniform DR beats no DR there iff the paired difference of
   the mean over those realities is > 0, > 2 SE, and higher on >= 7 of the 10 seeds. The same
   rule is reported for automatic DR against uniform DR and against no DR.
4. **Shipping, decided now and independent of step 3's outcome**: the candidates with a gap
   join Pusher's shipped realities (``assets/realities/pusher``) next to the four there now;
   none of those is removed.

Outcome (2026-11-27, 19.1 min): no candidate has a gap (largest: ``slow_gantry``, +5.01 +- 5.67),
so nothing ships and step 3 did not run. The positive gaps come from calibration seed 11, on
which no DR did not learn to push; on seeds 10 and 12 no DR is within 1 of the oracle on
``icy_puck``, ``noisy`` and ``weak_motor``. See the README's transfer-benchmark section.

Writes benchmarks/results/pusher_gap_realities.json. Finished cells are kept in ``--work``.

Usage: python benchmarks/pusher_gap_realities.py [--work runs/pusher_gap_realities]
       [--policies runs/pusher_own_distribution]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from domrand.bench.tiers import PUSHER_V0
from domrand.fsutil import atomic_write_text

ENV = "domrand/Pusher-v0"
PLAN = PUSHER_V0["full"]
HERE = Path(__file__).parent
CANDIDATES = HERE / "realities" / "pusher_candidates"
OUT = HERE / "results" / "pusher_gap_realities.json"
CALIBRATION_SEEDS = (10, 11, 12)
TEST_SEEDS = tuple(range(10))
TEST_METHODS = ("no_dr", "uniform", "autodr")
PAIRS = (("uniform", "no_dr"), ("autodr", "uniform"), ("autodr", "no_dr"))


def candidates() -> dict[str, Path]:
    return {p.stem: p for p in sorted(CANDIDATES.glob("*.yaml"))}


def _score(policy: Any, seed: int, plan: Any, domains: dict[str, Path]) -> dict[str, Any]:
    """The benchmark's scoring on domain files (name -> path)."""
    from domrand.bench.transfer import score_on_domains

    scores = score_on_domains(policy, plan, seed, domains)
    return {n: {"return_mean": r.mean, "success_rate": r.success_rate, "faults": r.faults}
            for n, r in scores.items()}  # fmt: skip


def calibrate_cell(
    plan: Any, domains: dict[str, Path], method: str, reality: str | None, seed: int, work: Path
) -> dict[str, Any]:
    """One calibration cell: ``no_dr`` (reality None, scored on every domain) or the oracle of
    one domain (trained and scored on it), with ``plan``'s budget; cached as JSON in ``work``."""
    import torch

    import domrand
    from domrand.bench.methods import train_config
    from domrand.policies.checkpoint import load_policy
    from domrand.policies.evaluate import evaluate
    from domrand.policies.train import train

    name = f"{method}_{reality}_seed{seed}" if reality else f"{method}_seed{seed}"
    done = work / f"{name}.json"
    if done.exists():
        return json.loads(done.read_text(encoding="utf-8"))
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    spec = domrand.load_spec(domains[reality], env=plan.env_id) if reality else None
    train(train_config(plan, seed), work / name / "policy", spec=spec, progress=False)
    policy, _ = load_policy(work / name / "policy")
    scored = {reality: domains[reality]} if reality else domains
    cell = {"method": method, "reality": reality, "seed": seed,
            "scores": _score(policy, seed, plan, scored),
            "wall_s": time.perf_counter() - t0}  # fmt: skip
    if not reality:  # how well the nominal task was learned
        r = evaluate(policy, plan.env_id, episodes=plan.episodes, seed=1000 + seed)
        cell["nominal"] = {"return_mean": r.mean, "success_rate": r.success_rate}
    atomic_write_text(done, json.dumps(cell, indent=1) + "\n")
    return cell


def _calibrate_job(job: tuple[Any, dict[str, Path], str, str | None, int, Path]) -> dict[str, Any]:
    return calibrate_cell(*job)


def calibrate(
    plan: Any, domains: dict[str, Path], work: Path
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], list[str]]:
    """Step 1 of the protocol on ``domains``: no DR and one oracle per domain on the calibration
    seeds, two cells side by side. Returns the cells, :func:`gap_table` and the gapped names."""
    names = list(domains)
    jobs = [(plan, domains, "no_dr", None, s, work) for s in CALIBRATION_SEEDS]
    jobs += [(plan, domains, "oracle", n, s, work) for n in names for s in CALIBRATION_SEEDS]
    with ProcessPoolExecutor(2) as ex:
        cal = list(ex.map(_calibrate_job, jobs))
    table = gap_table(cal, names)
    return cal, table, [n for n in names if table[n]["has_gap"]]


def gap_table(cal: list[dict[str, Any]], names: list[str]) -> dict[str, dict[str, Any]]:
    """Per domain: the oracles' and no DR's returns, gap = oracle - no DR, its SE (unpaired,
    sample variances) and whether it is a gap (> 0 and > 2 SE); printed as it goes."""
    table: dict[str, dict[str, Any]] = {}
    for n in names:
        nodr = [c["scores"][n]["return_mean"] for c in cal if c["method"] == "no_dr"]
        orc = [c["scores"][n]["return_mean"] for c in cal if c["reality"] == n]
        gap = statistics.mean(orc) - statistics.mean(nodr)
        se = (statistics.variance(orc) / len(orc) + statistics.variance(nodr) / len(nodr)) ** 0.5
        table[n] = {"oracle": orc, "no_dr": nodr, "gap": gap, "se": se,
                    "has_gap": gap > 0 and gap > 2 * se}  # fmt: skip
        verdict = "GAP" if table[n]["has_gap"] else "no gap"
        print(f"{n:16s} oracle {statistics.mean(orc):7.2f}  no DR {statistics.mean(nodr):7.2f}  "
              f"gap {gap:+6.2f} +- {se:.2f}  -> {verdict}")  # fmt: skip
    return table


def _test(job: tuple[str, int, Path, list[str]]) -> dict[str, Any]:
    import torch

    from domrand.policies.checkpoint import load_policy

    method, seed, policies, names = job
    torch.set_num_threads(1)
    policy, _ = load_policy(policies / f"{method}_seed{seed}" / "policy")
    domains = {n: candidates()[n] for n in names}
    return {"method": method, "seed": seed, "scores": _score(policy, seed, PLAN, domains)}


def _paired(diffs: list[float]) -> dict[str, Any]:
    mean = statistics.mean(diffs)
    se = statistics.stdev(diffs) / len(diffs) ** 0.5
    higher = sum(d > 0 for d in diffs)
    return {"mean_diff": mean, "se": se, "higher_on_seeds": higher, "seeds": len(diffs),
            "beats": mean > 0 and mean > 2 * se and higher >= 7}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("runs/pusher_gap_realities"))
    ap.add_argument("--policies", type=Path, default=Path("runs/pusher_own_distribution"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    # 1. calibration (DR-blind): no DR and one oracle per candidate, calibration seeds
    cal, calibration, gapped = calibrate(PLAN, candidates(), args.work)
    doc: dict[str, Any] = {
        "benchmark": "pusher_gap_realities",
        "train_steps": PLAN.train_steps,
        "episodes": PLAN.episodes,
        "calibration_seeds": list(CALIBRATION_SEEDS),
        "calibration": calibration,
        "with_gap": gapped,
    }
    # 2. test: the already-trained seeds 0-9, only on the candidates with a gap
    if gapped:
        tjobs = [(m, s, args.policies, gapped) for m in TEST_METHODS for s in TEST_SEEDS]
        with ProcessPoolExecutor(2) as ex:
            cells = list(ex.map(_test, tjobs))
        val = {(c["method"], c["seed"]): statistics.mean(
            c["scores"][n]["return_mean"] for n in gapped) for c in cells}  # fmt: skip
        summary = {}
        for m in TEST_METHODS:
            per = {n: statistics.mean(c["scores"][n]["return_mean"] for c in cells
                                      if c["method"] == m) for n in gapped}  # fmt: skip
            mine = [val[m, s] for s in TEST_SEEDS]
            summary[m] = {"mean": statistics.mean(mine), "std": statistics.pstdev(mine),
                          "per_reality": per}  # fmt: skip
        paired = {f"{a} - {b}": _paired([val[a, s] - val[b, s] for s in TEST_SEEDS])
                  for a, b in PAIRS}  # fmt: skip
        doc["test"] = {"summary": summary, "paired": paired, "cells": cells}
        for m, s in doc["test"]["summary"].items():
            print(f"{m:8s} {s['mean']:7.2f} +- {s['std']:.2f}  " + "  ".join(
                f"{n} {v:.2f}" for n, v in s["per_reality"].items()))  # fmt: skip
        for pair, d in doc["test"]["paired"].items():
            print(f"{pair}: {d['mean_diff']:+.2f} +- {d['se']:.2f} (SE), higher on "
                  f"{d['higher_on_seeds']}/{d['seeds']} seeds -> beats: {d['beats']}")  # fmt: skip
    from domrand.bench.transfer import machine_info

    doc["elapsed_s"] = time.perf_counter() - t0
    doc["calibration_cells"] = cal
    doc["machine"] = machine_info()
    OUT.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({doc['elapsed_s'] / 60:.1f} min)")


if __name__ == "__main__":
    main()

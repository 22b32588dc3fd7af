"""Diagnostic: does Pusher get a sim-to-real gap when the puck must come to rest on the goal?

Its committed results predate the Pusher envs' revision 1 (2026-11-28: a puck pushed off the
table is charged the rest of the episode; ``benchmarks/pusher_fall.py``). Its cell cache does
not know the revision: re-run it with an empty ``--work`` to measure the current envs.

On Pusher-v0 no DR matches or beats the oracle on three of the four shipped realities, and
none of five further candidates opened a gap (``pusher_gap_realities.py``). One reason may be
the success rule: in Pusher-v0 a puck that slides through the 5 cm goal disc at any speed
succeeds and ends the episode, so how far a puck slides (friction, damping, mass) hardly matters.
``domrand/PusherPlace-v0`` is the same env, knobs, spec and realities, except that success also
needs the puck slower than 5 cm/s: it must be placed on the goal. A slippery puck then needs a
gentler push than a nominal one, so the realities may ask for different behaviour.

Protocol, written down (and committed) before any of its cells ran, 2026-11-27:

1. **Calibration, DR-blind**: on PusherPlace-v0, no DR and an oracle for each of Pusher's four
   shipped realities (``assets/realities/pusher``), trained with the full tier's Pusher plan
   (same budget B, same trainer settings) on calibration seeds 10, 11, 12, scored like the
   benchmark. A reality has a gap if oracle - no DR > 0 and > 2 SE (unpaired, sample
   variances). No DR-trained policy is trained or scored on PusherPlace-v0 in this step. No DR's
   success rate on the nominal env is reported too (is the task learnable at B?).
2. **Decision, fixed now and independent of how any DR method does**: if at least 2 of the 4
   realities have a gap on PusherPlace-v0 (Pusher-v0's full tier has 1/4), the transfer
   benchmark's Pusher rows move to PusherPlace-v0 in both tiers and are re-run, and their
   tables are reported whatever the DR methods do there; Pusher-v0's tables stay in the README
   as the earlier finding. Otherwise the benchmark stays on Pusher-v0 and this result is
   reported next to the other Pusher diagnostics.

Outcome (2026-11-27, 15.0 min): no reality has a gap (largest: ``hard_region``, oracle - no DR
+2.52 +- 2.63), so the benchmark stays on Pusher-v0. No DR learned to place on seeds 11 and 12
(nominal success 0.65, 0.55) but not on seed 10 (0.0); the oracles' success on their own reality
ranges from 0.0 to 0.8 across seeds. See the README's transfer-benchmark section.

Writes benchmarks/results/pusher_place.json. Finished cells are kept in ``--work``.

Usage: python benchmarks/pusher_place.py [--work runs/pusher_place]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from pusher_gap_realities import CALIBRATION_SEEDS, calibrate

from domrand.bench.tiers import PUSHER_V0

ENV = "domrand/PusherPlace-v0"
OUT = Path(__file__).parent / "results" / "pusher_place.json"
MIN_GAPS = 2  #: realities with a gap needed to move the benchmark (Pusher-v0's full tier: 1)


def check_gaps(env: str, benchmark: str, out: Path, work: Path) -> dict[str, Any]:
    """Steps 1 and 2 of a gap protocol on ``env``'s shipped realities: calibrate DR-blind with
    the full tier's Pusher plan, decide whether the benchmark moves, write ``out``."""
    import domrand
    from domrand.bench.transfer import machine_info

    plan = dataclasses.replace(PUSHER_V0["full"], env_id=env)
    t0 = time.perf_counter()
    cal, calibration, gapped = calibrate(plan, domrand.realities(env), work)
    nominal = [c["nominal"] for c in cal if c["method"] == "no_dr"]
    success = statistics.mean(n["success_rate"] for n in nominal)
    print(f"no DR on the nominal env: success {success:.2f} "
          f"(seeds {[round(n['success_rate'], 2) for n in nominal]})")  # fmt: skip
    move = len(gapped) >= MIN_GAPS
    print(
        f"realities with a gap: {gapped or 'none'} -> "
        f"{'move the benchmark to ' + env if move else 'the benchmark stays on Pusher-v0'}"
    )
    doc = {
        "benchmark": benchmark,
        "env": env,
        "train_steps": plan.train_steps,
        "episodes": plan.episodes,
        "calibration_seeds": list(CALIBRATION_SEEDS),
        "calibration": calibration,
        "with_gap": gapped,
        "no_dr_nominal": nominal,
        "move_benchmark": move,
        "elapsed_s": time.perf_counter() - t0,
        "calibration_cells": cal,
        "machine": machine_info(),
    }
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out} ({doc['elapsed_s'] / 60:.1f} min)")
    return doc


def cli(env: str, benchmark: str, out: Path, description: str) -> None:
    """``check_gaps`` from the command line (``--work``, default ``runs/<benchmark>``)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--work", type=Path, default=Path("runs") / benchmark)
    check_gaps(env, benchmark, out, ap.parse_args().work)


def main() -> None:
    cli(ENV, "pusher_place", OUT, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()

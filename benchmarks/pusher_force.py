"""Diagnostic: does a force-controlled Pusher get a sim-to-real gap on its realities?

Its committed results predate the Pusher envs' revision 1 (2026-11-28: a puck pushed off the
table is charged the rest of the episode; ``benchmarks/pusher_fall.py``). Its cell cache does
not know the revision: re-run it with an empty ``--work`` to measure the current envs.

On Pusher-v0 a no DR policy that has learned to push loses nothing on the shipped realities
(nominal -7.62, ``hard_region`` -7.66 over 10 policies), nor on five stronger candidates
(``pusher_gap_realities.py``), nor under a stricter success rule (``pusher_place.py``). Its
actions are position increments that a stiff PD servo tracks, so the servo hides the tip's
mass, damping and friction and most of the motor's strength. ``domrand/PusherForce-v0`` removes
the servo: the action is the gantry motors' force (nominal 5 N per joint), as in the
torque-controlled Pusher-3DOF of Mehta et al. 2019. The policy itself must accelerate and brake
the tip. Its spec is Pusher-v0's with ``pusher.max_force`` 0.5-2x in place of the servo gains;
its realities are Pusher-v0's four, with ``laggy_bumpy``'s servo kp 0.5x replaced by the motor
force at 0.5x. Before this protocol was written, a scripted force PD was run on each reality
(feasibility only, no learning): every reality is solvable by some gains, and no single gains
solve all of them (``tests/envs/test_pusher_force.py``).

Protocol, written down (and committed) before any of its cells ran, 2026-11-27, the same as
``pusher_place.py``'s:

1. **Calibration, DR-blind**: on PusherForce-v0, no DR and an oracle for each of its four
   shipped realities (``assets/realities/pusher_force``), trained with the full tier's Pusher
   plan (same budget B = 151,552 steps, same trainer settings) on calibration seeds 10, 11, 12,
   scored like the benchmark. A reality has a gap if oracle - no DR > 0 and > 2 SE (unpaired,
   sample variances). No DR-trained policy is trained or scored in this step. No DR's success
   rate on the nominal env is reported too (is the task learnable at B?).
2. **Decision, fixed now and independent of how any DR method does**: if at least 2 of the 4
   realities have a gap (Pusher-v0's full tier has 1/4), the transfer benchmark's Pusher rows
   move to PusherForce-v0 in both tiers (same budgets and settings, designated target
   ``hard_region``) and are re-run, and their tables are reported whatever the DR methods do
   there; Pusher-v0's tables stay in the README as the earlier finding. Otherwise the
   benchmark stays on Pusher-v0 and this result is reported next to the other Pusher
   diagnostics.

Outcome (2026-11-27, 13.4 min): gaps on ``heavy_sticky`` (oracle - no DR +22.90 +- 7.80) and
``laggy_bumpy`` (+11.52 +- 5.07); ``hard_region`` (+7.24 +- 3.82) and ``slippery_biased``
(+4.60 +- 3.68) are positive but within 2 SE. No DR learned the nominal task on all three seeds
(success 0.75, 0.70, 0.60). Two of four: the benchmark's Pusher rows move to PusherForce-v0.

Writes benchmarks/results/pusher_force.json. Finished cells are kept in ``--work``.

Usage: python benchmarks/pusher_force.py [--work runs/pusher_force]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from pusher_place import cli

ENV = "domrand/PusherForce-v0"
OUT = Path(__file__).parent / "results" / "pusher_force.json"


def main() -> None:
    cli(ENV, "pusher_force", OUT, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()

"""The sim-to-real transfer benchmark (issue 8): every DR method, every env, every reality.

No DR, uniform DR (the env's wide default spec), CMA-ES (bilevel), SimOpt, Active DR and automatic
DR, plus an oracle trained on each reality, on CartPole, PusherForce (the force-controlled Pusher)
and KukaReach with 3 seeds; each final policy is scored on every reality of its env. Writes
benchmarks/results/transfer_<tier>.csv, .md, .json and transfer_<tier>_<env>.png; finished cells
are cached under runs/bench_transfer/ so a crashed run continues. The work is in domrand.bench
(also ``domrand bench transfer``).

Usage: python benchmarks/transfer.py [--tier quick|full] [--jobs 2] [--envs ...] [--seeds ...]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see domrand/cli.py)

import sys

from domrand.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "transfer", *sys.argv[1:]]))

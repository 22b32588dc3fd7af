"""``domrand bench transfer``: the sim-to-real transfer benchmark from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_bench_parser", "cmd_bench_transfer"]


def add_bench_parser(sub: Any) -> None:
    """Add ``bench`` (with its ``transfer`` action) to the top-level subparsers of ``domrand``."""
    bench = sub.add_parser("bench", help="benchmarks: the sim-to-real transfer table")
    actions = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    actions.required = True
    p = actions.add_parser(
        "transfer",
        help="every DR method on CartPole, PusherForce, KukaReach, scored on every reality",
        description="Train no DR, uniform DR, CMA-ES, SimOpt, Active DR, automatic DR and an "
        "oracle per reality with several seeds; evaluate on every reality; write "
        "transfer_<tier>.csv/.md/.json and one plot per env. Finished cells are cached, so a "
        "re-run after a crash continues where it stopped.",
    )
    p.add_argument("--tier", default="quick", help="quick (small budgets) or full")
    p.add_argument(
        "--envs", nargs="+", metavar="ENV", help="cartpole, pusher_force, kuka_reach (all)"
    )
    p.add_argument("--methods", nargs="+", metavar="M", help="subset of the methods (all)")
    p.add_argument("--seeds", nargs="+", type=int, metavar="S", help="seeds (0 1 2)")
    p.add_argument("--jobs", type=int, default=2, help="cells run side by side (2)")
    p.add_argument("--out", default="benchmarks/results", help="report folder")
    p.add_argument("--cache", default="runs/bench_transfer", help="finished cells (resumable)")
    p.add_argument("--fresh", action="store_true", help="ignore cached cells")
    p.add_argument(
        "--report-only", action="store_true", help="only write the reports from cached cells"
    )
    p.set_defaults(func=cmd_bench_transfer)


def cmd_bench_transfer(args: argparse.Namespace) -> int:
    from domrand.bench.transfer import run_transfer, select

    plans, methods, seeds = select(args.tier, args.envs, args.methods, args.seeds)
    doc = run_transfer(
        args.tier, plans, methods, seeds, cache=Path(args.cache), out=Path(args.out),
        jobs=args.jobs, fresh=args.fresh, report_only=args.report_only,
        log=lambda s: print(s, flush=True),
    )  # fmt: skip
    for line in doc["verdict"]["lines"]:
        print(line)
    print(f"wrote {Path(args.out) / ('transfer_' + args.tier)}.{{csv,md,json}} and plots")
    return 0

"""``domrand sweep`` and ``domrand sensitivity``: argument parsing and the printed summary.

The logic lives in :mod:`domrand.reports.sweep` and :mod:`domrand.reports.sensitivity`; this
module turns options into their arguments, shows progress on stderr and prints what it wrote.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from domrand.errors import DomrandError

__all__ = ["add_report_parsers", "cmd_sensitivity", "cmd_sweep"]


def _common(p: argparse.ArgumentParser, episodes: str) -> None:
    what = "a run directory (train, demo or guide output) or a checkpoint"
    p.add_argument("run_dir", metavar="RUN_DIR", help=what)
    p.add_argument("--knob", action="append", default=None, metavar="NAME", help="knob name")
    p.add_argument(
        "--spec", metavar="FILE", help="training ranges from this spec instead of the run's"
    )
    pin = p.add_mutually_exclusive_group()
    pin.add_argument("--reality", metavar="NAME", help="hold the other knobs at a shipped reality")
    pin.add_argument("--domain", metavar="FILE", help="hold the other knobs at a domain file")
    p.add_argument("--episodes", default=episodes, metavar="N",
                   help=f"episodes per evaluation (default {episodes})")  # fmt: skip
    p.add_argument("--seed", default="0", metavar="S", help="evaluation seed (default 0)")
    p.add_argument("--out", metavar="DIR", help="output directory (default RUN_DIR/reports)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_report_parsers(sub: Any) -> None:
    """Add ``sweep`` and ``sensitivity`` to the top-level subparsers of ``domrand``."""
    p = sub.add_parser(
        "sweep",
        help="return against one knob (curve) or two (heat map), training range marked",
        description="Evaluate a trained policy on a grid over one or two knobs, the other knobs "
        "at nominal values (or drawn from the training spec with --others spec); writes "
        "sweep_<knobs>.png and .csv.",
    )
    _common(p, "10")
    p.add_argument("--points", type=int, default=11, help="grid points per knob (default 11)")
    p.add_argument(
        "--range", nargs=2, type=float, action="append", metavar=("LOW", "HIGH"),
        help="values of the n-th --knob (default: its training range widened)",
    )  # fmt: skip
    p.add_argument(
        "--others", choices=("nominal", "spec"), default="nominal",
        help="the knobs not swept: nominal (default) or drawn from the training spec",
    )  # fmt: skip
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "sensitivity",
        help="rank the knobs by their effect on return (Sobol' or Morris, via SALib)",
        description="Global sensitivity of the return to the knobs the training spec randomizes, "
        "each varied uniformly over its training range; writes sensitivity_<method>.png and "
        ".csv with confidence intervals.",
    )
    _common(p, "1")
    p.add_argument("--method", choices=("sobol", "morris"), default="sobol",
                   help="sobol (default: S1/ST) or morris (mu*, cheaper)")  # fmt: skip
    p.add_argument("--samples", metavar="N",
                   help="Sobol' base samples (power of 2, default 64) or Morris trajectories "
                   "(default 10)")  # fmt: skip
    p.add_argument(
        "--widen", type=float, default=1.0,
        help="stretch every range about its centre by this factor (default 1)",
    )  # fmt: skip
    p.set_defaults(func=cmd_sensitivity)


def _setup(args: argparse.Namespace) -> tuple[Any, dict[str, float], int, int, Path]:
    """Load the run, the pins, episodes, seed and output folder shared by both commands."""
    from domrand.cli import _parse_count, _parse_seed
    from domrand.registry import reality_path
    from domrand.reports.runs import load_run
    from domrand.spec import load_domain

    episodes = _parse_count(args.episodes, "--episodes")
    if episodes < 1:
        raise DomrandError(f"--episodes must be at least 1, got {episodes}")
    seed = _parse_seed(args.seed)
    run = load_run(args.run_dir, spec=args.spec)
    pins: dict[str, float] = {}
    if args.reality is not None:
        pins = load_domain(reality_path(run.env_id, args.reality), run.knobs)
    elif args.domain is not None:
        pins = load_domain(args.domain, run.knobs)
    given = Path(args.run_dir)
    out = Path(args.out) if args.out else (given if given.is_dir() else run.path) / "reports"
    if out.exists() and not out.is_dir():
        raise DomrandError(f"--out {str(out)!r} exists and is not a directory")
    return run, pins, episodes, seed, out


def _progress(args: argparse.Namespace, total: int, title: str) -> Any:
    from domrand.dataset import _progress_bar

    return _progress_bar(not args.quiet, total, title)


def cmd_sweep(args: argparse.Namespace) -> int:
    from domrand.reports.sweep import run_sweep, write_sweep

    if not args.knob:
        raise DomrandError("give the knob to sweep: --knob NAME (twice for a heat map)")
    if len(args.knob) > 2:
        raise DomrandError(f"give one or two --knob options, got {len(args.knob)}")
    if not args.points >= 2:
        raise DomrandError(f"--points must be at least 2, got {args.points}")
    ranges = list(args.range or [])
    if len(ranges) > len(args.knob):
        raise DomrandError(f"{len(ranges)} --range options for {len(args.knob)} --knob options")
    ranges += [None] * (len(args.knob) - len(ranges))
    run, pins, episodes, seed, out = _setup(args)
    from domrand.reports.runs import resolve_knobs
    from domrand.reports.sweep import make_axis

    grid = 1
    for knob, r in zip(resolve_knobs(run, args.knob), ranges):
        grid *= make_axis(knob, args.points, run.training_range(knob.name), r).values.size
    with _progress(args, grid * episodes, "sweep") as advance:
        last = [0]

        def progress(done: int, total: int) -> None:
            advance(done - last[0])
            last[0] = done

        result = run_sweep(
            run, args.knob, points=args.points, episodes=episodes, seed=seed,
            others=args.others, pins=pins, ranges=ranges, progress=progress,
        )  # fmt: skip
    where = f", others at {args.reality or args.domain}" if pins else ""
    png, csv_path = write_sweep(result, out, f"{run.path}{where}")
    axes = " x ".join(
        f"{a.name} ({a.values[0]:g}..{a.values[-1]:g}, {a.values.size} points)" for a in result.axes
    )
    mean = result.mean
    print(
        f"swept {axes} on {run.env_id}, {episodes} episodes per point: mean return "
        f"{np.nanmin(mean):.1f}..{np.nanmax(mean):.1f}; wrote {png} and {csv_path}"
    )
    return 0


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from domrand.cli import _parse_count
    from domrand.reports.sensitivity import (
        DEFAULT_SAMPLES,
        design,
        factors_for,
        run_sensitivity,
        write_sensitivity,
    )

    samples = (
        DEFAULT_SAMPLES[args.method]
        if args.samples is None
        else _parse_count(args.samples, "--samples")
    )
    run, pins, episodes, seed, out = _setup(args)
    factors = factors_for(run, args.knob, args.widen)
    rows = design(args.method, factors, samples, seed).shape[0]  # checks --samples early
    with _progress(args, rows * episodes, f"sensitivity ({args.method})") as advance:
        last = [0]

        def progress(done: int, total: int) -> None:
            advance(done - last[0])
            last[0] = done

        result = run_sensitivity(
            run, method=args.method, samples=samples, knobs=args.knob, widen=args.widen,
            episodes=episodes, seed=seed, pins=pins, progress=progress,
        )  # fmt: skip
    png, csv_path = write_sensitivity(result, out, str(run.path))
    (main, conf, label), _ = result.bars()
    ranked = ", ".join(
        f"{result.knobs[j]} {main[j]:.2f}+-{conf[j]:.2f}" for j in result.ranking()[:5]
    )
    print(
        f"{args.method} on {run.env_id} ({len(factors)} knobs, {result.evaluations} evaluations "
        f"x {episodes} episodes): by {label}: {ranked}"
    )
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {png} and {csv_path}")
    return 0

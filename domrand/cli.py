"""The ``domrand`` command line.

Every user error (a bad spec, an unknown env or knob, a missing file) prints one line on stderr,
``domrand: error: ...``, with no traceback, and exits 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from domrand.errors import DomrandError

__all__ = ["main"]

EXIT_USAGE = 2


def _fmt(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.6g}"


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 160  # pipes and CI logs: do not squeeze tables into 80 columns
    return console


# ---------------------------------------------------------------------- envs / knobs
def cmd_envs(args: argparse.Namespace) -> int:
    from domrand.registry import ENVS, knobs_for, realities

    table = Table(title="domrand environments")
    for col in ("id", "knobs", "realities", "description"):
        table.add_column(col)
    for info in ENVS.values():
        table.add_row(
            info.id,
            str(len(knobs_for(info.id))),
            ", ".join(realities(info.id)) or "-",
            info.summary,
        )
    _console().print(table)
    return 0


def cmd_knobs(args: argparse.Namespace) -> int:
    from domrand.registry import knobs_for

    knobs = knobs_for(args.env)
    table = Table(title=f"knobs of {args.env}")
    for col in ("knob", "nominal", "unit", "valid range", "phase", "what it does"):
        table.add_column(col)
    for k in knobs.values():
        table.add_row(k.name, _fmt(k.nominal), k.unit, k.range_str(), k.phase.value, k.doc)
    _console().print(table)
    return 0


# ---------------------------------------------------------------------- spec
def _describe(entry: Any) -> str:
    d = entry.dist.to_dict()
    name = d.pop("dist")
    return name + "(" + ", ".join(f"{k}={v}" for k, v in d.items()) + ")"


def cmd_spec_validate(args: argparse.Namespace) -> int:
    from domrand.spec import load_spec

    spec = load_spec(args.file, env=args.env)
    kind = "domain file" if spec.is_domain else "spec"
    bound = f" for {spec.env or args.env}" if (spec.env or args.env) else " (not bound to an env)"
    table = Table(title=f"{args.file}: valid {kind}{bound}")
    for col in ("knob", "distribution", "mode", "every", "value range"):
        table.add_column(col)
    for p in spec.parameters:
        lo, hi = _value_range(spec, p.knob)
        table.add_row(p.knob, _describe(p), p.mode.value, str(p.every.to_yaml()), f"[{lo}, {hi}]")
    for g in spec.groups:
        for k in g.knobs:
            lo, hi = _value_range(spec, k)
            table.add_row(k, "mvnormal (correlated)", g.mode.value, str(g.every.to_yaml()),
                          f"[{lo}, {hi}]")  # fmt: skip
    _console().print(table)
    n_tunable = len(spec.params())
    print(f"{len(spec.knob_names())} knobs, {n_tunable} tunable distribution parameters")
    return 0


def _value_range(spec: Any, knob: str) -> tuple[str, str]:
    try:
        lo, hi = spec.value_bounds(knob)
    except DomrandError:
        return ("?", "?")
    return _fmt(lo), _fmt(hi)


def cmd_spec_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from domrand.registry import check_seed
    from domrand.spec import load_spec

    if args.n < 1:
        raise DomrandError(f"-n must be at least 1, got {args.n}")
    check_seed(args.seed)
    spec = load_spec(args.file, env=args.env)
    rng = np.random.default_rng(args.seed)
    domains = [spec.sample(rng) for _ in range(args.n)]
    if args.json:
        print(json.dumps(domains, indent=2))
        return 0
    table = Table(title=f"{args.n} domains from {args.file} (seed {args.seed})")
    table.add_column("knob")
    for i in range(args.n):
        table.add_column(f"#{i}", justify="right")
    for knob in spec.knob_names():
        table.add_row(knob, *(_fmt(d[knob]) for d in domains))
    _console().print(table)
    return 0


# ---------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from domrand.demo import run_demo

    return run_demo(out=args.out, episodes=args.episodes, seed=args.seed)


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="domrand",
        description="Sim-to-real domain randomization for PyBullet (gymnasium API).",
    )
    from domrand import __version__

    parser.add_argument("--version", action="version", version=f"domrand {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("envs", help="list the environments")
    p.set_defaults(func=cmd_envs)

    p = sub.add_parser("knobs", help="list an environment's knobs")
    p.add_argument("env", metavar="ENV_ID")
    p.set_defaults(func=cmd_knobs)

    spec = sub.add_parser("spec", help="validate or sample a spec file")
    spec_sub = spec.add_subparsers(dest="spec_command", metavar="ACTION")
    spec_sub.required = True
    p = spec_sub.add_parser("validate", help="validate a spec file and summarize it")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--env", help="env id to validate against (default: the file's env:)")
    p.set_defaults(func=cmd_spec_validate)
    p = spec_sub.add_parser("sample", help="print sampled domains")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-n", type=int, default=5, help="number of domains (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--env", help="env id to validate against (default: the file's env:)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_spec_sample)

    p = sub.add_parser("demo", help="the end-to-end demo job")
    p.add_argument("--out", default="demo_out", help="output directory (default demo_out)")
    p.add_argument("--episodes", type=int, default=5, help="episodes per condition")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``domrand`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DomrandError as e:
        print(f"domrand: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("domrand: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

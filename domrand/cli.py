"""The ``domrand`` command line.

Every user error (a bad spec, an unknown env or knob, a missing file) prints one line on stderr,
``domrand: error: ...``, with no traceback, and exits 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from domrand.errors import DomrandError, _one_line

__all__ = ["main"]

# Before torch loads (commands import it lazily): OpenMP threads that spin while they wait turn a
# 2-thread update into a 10x slowdown as soon as another process holds one of the 2 cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
    # The verdict is one plain line (never wrapped, so scripts can grep it); names from the
    # file are text, not rich markup ("[/x]" as a knob name would raise).
    print(f"{args.file}: valid {kind}{bound}")
    table = Table()
    for col in ("knob", "distribution", "mode", "every", "value range"):
        table.add_column(col)
    for p in spec.parameters:
        lo, hi = _value_range(spec, p.knob)
        table.add_row(escape(p.knob), escape(_describe(p)), p.mode.value,
                      str(p.every.to_yaml()), f"[{lo}, {hi}]")  # fmt: skip
    for g in spec.groups:
        for k in g.knobs:
            lo, hi = _value_range(spec, k)
            table.add_row(escape(k), "mvnormal (correlated)", g.mode.value,
                          str(g.every.to_yaml()), f"[{lo}, {hi}]")  # fmt: skip
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
    table = Table(title=escape(f"{args.n} domains from {args.file} (seed {args.seed})"))
    table.add_column("knob")
    for i in range(args.n):
        table.add_column(f"#{i}", justify="right")
    for knob in spec.knob_names():
        table.add_row(escape(knob), *(_fmt(d[knob]) for d in domains))
    _console().print(table)
    return 0


# ---------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from domrand.demo import DEMO_STEPS, run_demo

    steps = DEMO_STEPS if args.steps is None else _parse_count(args.steps, "--steps")
    return run_demo(out=args.out, episodes=args.episodes, seed=args.seed, steps=steps)


# ---------------------------------------------------------------------- export
EXPORT_DEFAULT_NAMES = {"onnx": "policy.onnx", "torchscript": "policy.torchscript.pt"}


def cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from domrand.policies.checkpoint import load_policy
    from domrand.policies.export import export_onnx, export_torchscript

    policy, info = load_policy(args.run_dir)
    if args.output:
        out = Path(args.output)
    else:
        run = Path(args.run_dir)
        out = (run if run.is_dir() else run.parent) / EXPORT_DEFAULT_NAMES[args.format]
    writer = export_onnx if args.format == "onnx" else export_torchscript
    path = writer(policy, info, out)
    cfg = policy.config
    net = f"{cfg.kind.upper()}-{cfg.hidden}" + (" RL^2" if cfg.rl2 else "")
    print(
        f"wrote {path} ({args.format}, {net}, obs {cfg.obs_dim}, act {cfg.act_dim}, "
        f"control period {info.control_period * 1000:g} ms, {path.stat().st_size / 1024:.0f} KiB)"
    )
    return 0


# ---------------------------------------------------------------------- render / dataset
def cmd_render(args: argparse.Namespace) -> int:
    from domrand.preview import parse_grid, render_grid, write_png
    from domrand.registry import check_seed

    rows, cols = parse_grid(args.grid)
    check_seed(args.seed)
    grid = render_grid(args.env, args.spec, rows, cols, size=args.size, seed=args.seed)
    path = write_png(grid, args.output)
    what = f"spec {args.spec}" if args.spec else "nominal"
    print(
        f"wrote {path} ({rows}x{cols} views of {args.env}, {args.size} px, {what}, "
        f"seed {args.seed})"
    )
    return 0


def cmd_dataset(args: argparse.Namespace) -> int:
    from domrand.dataset import write_dataset

    info = write_dataset(
        args.env,
        args.spec,
        args.n,
        args.out,
        shard_size=args.shard_size,
        seed=args.seed,
        image_size=args.size,
        progress=not args.quiet,
    )
    h, w = info["image_size"]
    print(
        f"{args.out}: {info['n']} samples of {args.env} ({w}x{h} px, label "
        f"{info['label']} [{info['label_dim']}]) in {info['shards']} shards"
    )
    return 0


# ---------------------------------------------------------------------- train / eval
def _parse_count(text: str, what: str) -> int:
    """``200000``, ``200_000``, ``200k``, ``1.5M`` or ``2e5`` -> an int (DomrandError otherwise)."""
    t = text.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    if mult != 1:
        t = t[:-1]
    try:
        value = float(t) * mult
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value):
        raise DomrandError(f"{what} must be a whole number (e.g. 200000 or 200k), got {text!r}")
    return int(value)


def _parse_seed(text: str) -> int:
    """A ``--seed`` for torch / onnxruntime, which take signed 64-bit seeds."""
    seed = _parse_count(text, "--seed")
    if not 0 <= seed < 2**63:
        raise DomrandError(f"--seed must be an integer in [0, 2**63 - 1], got {text!r}")
    return seed


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from domrand.backends.cli_args import backend_changes
    from domrand.policies.config import TrainConfig, load_config
    from domrand.policies.train import train
    from domrand.registry import default_spec_path, knobs_for
    from domrand.spec import load_spec

    out = Path(args.out)
    saved = out / "config.yaml"
    base = load_config(saved) if args.resume and saved.exists() else TrainConfig()
    if args.env is None and not (args.resume and saved.exists()) and args.config is None:
        raise DomrandError("--env is required (e.g. --env domrand/CartPole-v0)")
    cfg = load_config(args.config, base) if args.config else base
    changes: dict[str, Any] = {}
    if args.env is not None:
        changes["env"] = args.env
    if args.steps is not None:
        changes["total_steps"] = _parse_count(args.steps, "--steps")
    if args.seed is not None:
        changes["seed"] = _parse_seed(args.seed)
    changes.update(backend_changes(args))
    cfg = cfg.replace(**changes)
    knobs = knobs_for(cfg.env)  # unknown env -> one-line error before anything is written
    if args.spec is not None and args.spec.lower() == "none":
        spec = None
    elif args.spec is not None:
        # bind() with the env id too: a spec whose env: names another env fails here, before
        # anything is written to the run directory.
        spec = load_spec(args.spec, env=knobs).bind(knobs, cfg.env)
    elif args.resume and (out / "spec.yaml").exists():
        text = (out / "spec.yaml").read_text(encoding="utf-8")
        spec = None if text.lstrip().startswith("#") else load_spec(out / "spec.yaml", env=knobs)
    else:
        spec = load_spec(default_spec_path(cfg.env), env=knobs)
    result = train(cfg, out, spec=spec, resume=args.resume, progress=not args.quiet)
    ret = "-" if math.isnan(result.recent_return) else f"{result.recent_return:.1f}"
    print(
        f"trained {cfg.policy.upper()}-{cfg.hidden} on {cfg.env}: {result.env_steps} env steps "
        f"({result.steps_per_s:.0f} steps/s this session), return (last 100 episodes) {ret}; "
        f"checkpoint {result.checkpoint}"
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from domrand.policies.checkpoint import load_policy
    from domrand.policies.evaluate import Condition, evaluate_conditions, standard_conditions
    from domrand.registry import reality_path

    episodes = _parse_count(args.episodes, "--episodes")
    if episodes < 1:
        raise DomrandError(f"--episodes must be at least 1, got {episodes}")
    seed = _parse_seed(args.seed)
    policy, info = load_policy(args.run_dir)
    if args.domain is not None:
        conditions = [Condition(f"domain: {args.domain}", domain=args.domain)]
    elif args.reality is not None:
        path = reality_path(info.env_id, args.reality)
        conditions = [Condition(f"reality: {args.reality}", domain=path)]
    else:
        conditions = standard_conditions(info.env_id)
    results = evaluate_conditions(policy, info.env_id, conditions, episodes=episodes, seed=seed)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
        return 0
    cfg = info.net_config
    title = (
        f"{cfg.kind.upper()}-{cfg.hidden} on {info.env_id} after {info.env_steps} env steps, "
        f"{episodes} episodes each (deterministic)"
    )
    table = Table(title=escape(title))
    for col in ("condition", "mean return", "std", "success rate", "episodes", "faults"):
        table.add_column(col, justify="left" if col == "condition" else "right")
    for r in results:
        table.add_row(
            escape(r.label), f"{r.mean:.1f}", f"{r.std:.1f}", f"{r.success_rate:.0%}",
            str(len(r.returns)), str(r.faults),
        )  # fmt: skip
    _console().print(table)
    return 0


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
    p.add_argument("--episodes", type=int, default=10, help="episodes per condition (10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", metavar="N", help="training env steps (default: the demo budget)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "export",
        help="export a trained policy for hardware (ONNX or TorchScript)",
        description="Write one step of the policy, with its LSTM state as explicit inputs and "
        "outputs, plus metadata (spaces, normalization, control period, spec, versions). Load an "
        "ONNX export on the robot with domrand.policies.deploy.load_exported (numpy + "
        "onnxruntime only).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a training run directory or checkpoint")
    p.add_argument(
        "--format",
        choices=("onnx", "torchscript"),
        default="onnx",
        help="artifact format (default onnx)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="output file (default: policy.onnx or policy.torchscript.pt in RUN_DIR)",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "render",
        help="write a grid of randomized camera views (PNG)",
        description="Reset an env in image mode rows*cols times under a spec and tile the "
        "observations (image effects included) into one PNG.",
    )
    p.add_argument("--env", required=True, metavar="ENV_ID")
    p.add_argument("--spec", metavar="FILE", help="randomization spec (default: nominal looks)")
    p.add_argument("--grid", default="4x4", help="ROWSxCOLS (default 4x4)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="output .png")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--size", type=int, default=128, help="tile side in pixels (default 128)")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser(
        "dataset",
        help="write N randomized (image, label) samples to shards",
        description="Reset an env in image mode N times under a spec and write .npz shards "
        "(images uint8, labels float32) plus the domains as JSON lines. Re-running with the same "
        "arguments resumes an interrupted write.",
    )
    p.add_argument("--env", required=True, metavar="ENV_ID")
    p.add_argument("--spec", required=True, metavar="FILE", help="randomization spec")
    p.add_argument("-n", type=int, required=True, help="number of samples")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    p.add_argument("--size", type=int, default=84, help="image side in pixels (default 84)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_dataset)

    p = sub.add_parser(
        "train",
        help="train a policy with recurrent PPO across randomized envs",
        description="Train an LSTM (or MLP) policy with recurrent PPO under a randomization "
        "spec. RUN_DIR receives config.yaml, spec.yaml, metrics.csv (and tb/ when tensorboard is "
        "installed) and checkpoints/step_N.pt; --resume continues a killed run from its last "
        "checkpoint.",
    )
    p.add_argument("--env", metavar="ID", help="env id, e.g. domrand/CartPole-v0")
    p.add_argument(
        "--spec",
        metavar="FILE",
        help="training spec (default: the env's shipped spec; 'none' = nominal dynamics)",
    )
    p.add_argument("--config", metavar="FILE", help="run config YAML (keys of TrainConfig)")
    p.add_argument("--steps", metavar="N", help="total env steps, e.g. 200000 or 200k")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory")
    p.add_argument("--seed", metavar="S", help="root seed (default 0)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    from domrand.backends.cli_args import add_backend_args

    add_backend_args(p)  # --backend/--workers/--address
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "eval",
        help="evaluate a trained policy (mean/std return, success rate)",
        description="Run a trained policy (deterministic actions) on a domain file, a shipped "
        "reality, or, by default, nominal dynamics and every reality of its env.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a training run directory or checkpoint")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--domain", metavar="FILE", help="a domain file to pin")
    which.add_argument("--reality", metavar="NAME", help="a shipped reality of the env")
    p.add_argument("--episodes", default="10", metavar="N", help="episodes per condition (10)")
    p.add_argument("--seed", default="0", metavar="S", help="evaluation seed (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_eval)

    from domrand.guided.cli import add_guide_parser

    add_guide_parser(sub)

    from domrand.reports.cli import add_report_parsers

    add_report_parsers(sub)  # sweep, sensitivity

    from domrand.bench.cli import add_bench_parser

    add_bench_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``domrand`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DomrandError as e:
        print(f"domrand: error: {_one_line(str(e))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("domrand: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

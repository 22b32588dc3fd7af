"""``domrand guide METHOD ...``: one command line for every guided-DR method.

Each method lives in its own module and exposes ``run_cli(args: argparse.Namespace) -> int``;
this module only parses the options they share and dispatches. Method-specific settings come
from ``--config FILE`` (YAML) and ``--set key=value`` overrides, which each method validates.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from domrand.errors import DomrandError

__all__ = ["METHODS", "add_guide_parser", "parse_overrides", "run_guide"]

#: method name -> (module, one-line description)
METHODS: dict[str, tuple[str, str]] = {
    "cmaes": ("domrand.guided.cmaes", "CMA-ES-tuned distribution (bilevel or SO-CMA)"),
    "simopt": ("domrand.guided.simopt_cli", "SimOpt: match simulated to real trajectories (REPS)"),
    "adr": ("domrand.guided.adr", "Active Domain Randomization (SVPG particles + discriminator)"),
    "autodr": ("domrand.guided.autodr", "OpenAI-style automatic domain randomization"),
}


def add_guide_parser(sub: Any) -> None:
    """Add ``guide`` to the top-level subparsers of ``domrand``."""
    p = sub.add_parser(
        "guide",
        help="guided DR: tune the randomization distribution while policies train",
        description="; ".join(f"{k}: {v[1]}" for k, v in METHODS.items()),
    )
    p.add_argument("method", choices=list(METHODS), metavar="METHOD", help=", ".join(METHODS))
    p.add_argument("--env", required=True, help="env id, e.g. domrand/CartPole-v0")
    p.add_argument("--spec", required=True, help="the starting / widest spec file")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--reality", help="target: a shipped reality of the env (hidden)")
    target.add_argument("--domain", help="target: a domain file (hidden)")
    target.add_argument("--recorded", help="target: a directory of recorded trajectories")
    p.add_argument("--out", required=True, help="output directory of the guide run")
    p.add_argument("--config", help="YAML file of method settings")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one method setting (repeatable)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue a killed guide run")
    from domrand.backends.cli_args import add_backend_args

    add_backend_args(p)
    p.set_defaults(func=run_guide)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (values parsed as YAML scalars)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DomrandError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except (yaml.YAMLError, ValueError, TypeError, AttributeError, RecursionError):
            raise DomrandError(f"--set {key}: cannot parse value {value!r}") from None
    return out


def run_guide(args: argparse.Namespace) -> int:
    """Dispatch to the method's ``run_cli``."""
    module_name, _ = METHODS[args.method]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            raise DomrandError(f"guide method {args.method!r} is not available yet") from None
        raise
    return int(module.run_cli(args) or 0)

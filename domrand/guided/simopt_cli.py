"""``domrand guide simopt``: the command line of :mod:`domrand.guided.simopt`."""

from __future__ import annotations

import argparse

import numpy as np

from domrand.errors import ConfigError
from domrand.guided.simopt import SimOpt
from domrand.guided.simopt_settings import SimOptSettings
from domrand.guided.state import load_state, require_tunable

__all__ = ["run_cli"]

_TARGET_STREAM = 0x746172


def run_cli(args: argparse.Namespace) -> int:
    """``domrand guide simopt --env ID --spec FILE (--reality|--domain|--recorded) --out DIR``."""
    from domrand.guided.guide_run import (
        load_guide_settings,
        prepare_out,
        setup_guide,
        write_report,
    )
    from domrand.guided.state import make_target, target_label

    method_doc, _ = load_guide_settings(args)
    weights = method_doc.pop("obs_weights", None)
    if weights is not None and (
        not isinstance(weights, list)
        or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights)
    ):
        raise ConfigError(f"setting obs_weights must be a list of numbers, got {weights!r}")
    setup = setup_guide(
        args,
        "simopt",
        SimOptSettings,
        method_doc=method_doc,
        extra_settings={"obs_weights": weights},
    )
    settings, cfg, spec, out, record = (
        setup.settings, setup.cfg, setup.spec, setup.out, setup.record
    )  # fmt: skip
    require_tunable(spec, "SimOpt")
    label = record["target"] = target_label(args)
    state = load_state(out) if args.resume else None
    used = 0 if state is None else int(state["budget"]["real_rollouts"])
    ss = np.random.SeedSequence(args.seed, spawn_key=(_TARGET_STREAM, used))
    target = make_target(
        args, args.env, seed=int(ss.generate_state(1)[0]), max_steps=settings.horizon
    )
    if weights is not None and len(weights) != int(np.prod(target.observation_space.shape)):
        raise ConfigError(
            f"obs_weights has {len(weights)} entries for {target.observation_space.shape[0]} "
            "observation dimensions"
        )
    run = SimOpt(args.env, spec, target, out, settings, cfg, args.seed, weights)
    prepare_out(out, record, args.resume)
    report = run.run()
    report["target"] = label
    write_report(out, report)
    b = report["budget"]
    knobs = ", ".join(f"{k} {v['mean']:.4g}+-{v['std']:.2g}" for k, v in report["knobs"].items())
    print(
        f"simopt on {args.env}: {knobs}; {b['real_rollouts']} real rollouts "
        f"({b['real_steps']} steps), {b['sim_steps']} sim steps, {b['train_steps']} training "
        f"steps, {b['wall_s']:.0f} s; wrote {out}/spec.yaml"
    )
    return 0

"""The ``make demo`` job: validate the shipped spec, sample domains, run randomized CartPole.

At this stage the policy is a fixed LQR designed on the nominal model; it shows what the training
distribution and the reality domains do to a controller that was never randomized.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from domrand.errors import DomrandError
from domrand.registry import check_seed, default_spec_path, make, realities
from domrand.spec import load_spec

__all__ = ["rollout_returns", "run_demo"]

ENV_ID = "domrand/CartPole-v0"


def rollout_returns(env, policy, episodes: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Run ``episodes`` episodes of ``policy(obs) -> action``; return the undiscounted returns."""
    returns = []
    for _ in range(episodes):
        obs, _ = env.reset()
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return returns


def run_demo(out: str | Path = "demo_out", episodes: int = 5, seed: int = 0) -> int:
    """Run the demo and write ``demo.json`` under ``out``; returns an exit code.

    Raises:
        DomrandError: ``episodes`` < 1 (no returns to summarize), a negative ``seed``, or ``out``
            cannot be created.
    """
    from domrand.policies.controllers import CartPoleLQR

    if episodes < 1:
        raise DomrandError(f"episodes must be at least 1, got {episodes}")
    check_seed(seed)
    console = Console(highlight=False)
    t0 = time.perf_counter()
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DomrandError(f"cannot create output directory {str(out)!r}: {e.strerror}") from None

    spec_path = default_spec_path(ENV_ID)
    spec = load_spec(spec_path)
    console.print(f"[bold]1. spec[/bold] {spec_path.name}: valid, {len(spec.knob_names())} knobs, "
                  f"{len(spec.params())} tunable parameters")  # fmt: skip

    rng = np.random.default_rng(seed)
    domains = [spec.sample(rng) for _ in range(4)]
    table = Table(title="2. four sampled domains")
    table.add_column("knob")
    for i in range(len(domains)):
        table.add_column(f"#{i}", justify="right")
    for k in spec.knob_names():
        table.add_row(k, *(f"{d[k]:.4g}" for d in domains))
    console.print(table)

    policy = CartPoleLQR()
    conditions: list[tuple[str, dict]] = [("nominal", {}), ("training spec (DR)", {"spec": spec})]
    conditions += [(f"reality: {name}", {"reality": name}) for name in realities(ENV_ID)]
    results = []
    table = Table(title=f"3. nominal-model LQR on {ENV_ID}, {episodes} episodes each")
    for col in ("condition", "mean return", "std", "success (=500)"):
        table.add_column(col, justify="right" if col != "condition" else "left")
    for label, kwargs in conditions:
        env = make(ENV_ID, seed=seed, **kwargs)
        try:
            rets = rollout_returns(env, policy, episodes)
        finally:
            env.close()
        arr = np.asarray(rets)
        success = float(np.mean(arr >= 500))
        results.append({"condition": label, "returns": rets, "success": success})
        table.add_row(label, f"{arr.mean():.1f}", f"{arr.std():.1f}", f"{success:.0%}")
    console.print(table)
    (out / "demo.json").write_text(json.dumps({"env": ENV_ID, "results": results}, indent=2))
    console.print(f"wrote {out / 'demo.json'} in {time.perf_counter() - t0:.1f} s")
    return 0

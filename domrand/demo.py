"""The ``make demo`` job: train an LSTM policy on randomized CartPole, evaluate it on the realities.

1. validate the shipped CartPole spec and show a few sampled domains;
2. train an LSTM (RL^2 inputs) with recurrent PPO under that spec (a couple of minutes on 2 cores);
3. evaluate it, deterministically, on nominal dynamics, on the training distribution and on every
   shipped reality, next to the nominal-model LQR as a reference;
4. export the policy to ONNX and run it through the deploy runtime on the same conditions;
5. print the table and write ``demo.json``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from domrand.errors import DomrandError
from domrand.registry import check_seed, default_spec_path, make, realities
from domrand.spec import load_spec

__all__ = ["DEMO_STEPS", "rollout_returns", "run_demo"]

ENV_ID = "domrand/CartPole-v0"
#: training budget of the demo: enough for >= 475 on nominal and every reality, ~1.5 min on 2 cores
DEMO_STEPS = 200_000


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


def _export_step(run_dir: Path, console: Console) -> dict[str, Any]:
    """4. Export the trained policy to ONNX (verified against torch within 1e-5 while writing)."""
    from domrand.policies.checkpoint import load_policy
    from domrand.policies.export import export_onnx

    policy, info = load_policy(run_dir)
    path = export_onnx(policy, info, run_dir / "policy.onnx")
    console.print(f"[bold]4. export[/bold] {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return {"path": str(path), "bytes": path.stat().st_size}


def _deployed_returns(path: Path, conditions: list[Any], episodes: int, seed: int) -> list[Any]:
    """Run the exported policy through the robot-side runtime (numpy + onnxruntime only)."""
    from domrand.policies.deploy import load_exported

    policy = load_exported(path)
    out, latencies = [], []
    for c in conditions:
        env = make(ENV_ID, spec=c.spec, domain=c.domain, seed=seed)
        returns = []
        try:
            for _ in range(episodes):
                obs, _ = env.reset()
                policy.reset()
                total, reward, done = 0.0, None, False
                while not done:
                    t = time.perf_counter()
                    action = policy.act(obs, reward=reward) if policy.rl2 else policy.act(obs)
                    latencies.append(time.perf_counter() - t)
                    obs, reward, terminated, truncated, _ = env.step(action)
                    total += float(reward)
                    done = terminated or truncated
                returns.append(total)
        finally:
            env.close()
        out.append(returns)
    return [out, float(np.median(latencies) * 1e6)]


def run_demo(
    out: str | Path = "demo_out", episodes: int = 10, seed: int = 0, steps: int = DEMO_STEPS
) -> int:
    """Run the demo and write ``demo.json`` under ``out``; returns an exit code.

    Raises:
        DomrandError: ``episodes`` < 1 (no returns to summarize), a negative ``seed``, or ``out``
            cannot be created.
    """
    from domrand.policies.config import TrainConfig
    from domrand.policies.controllers import CartPoleLQR
    from domrand.policies.evaluate import evaluate_conditions, standard_conditions
    from domrand.policies.train import train

    if episodes < 1:
        raise DomrandError(f"episodes must be at least 1, got {episodes}")
    check_seed(seed)
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 160  # logs and CI: keep the tables unwrapped
    t0 = time.perf_counter()
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DomrandError(f"cannot create output directory {str(out)!r}: {e.strerror}") from None

    # ---- 1. the spec
    spec_path = default_spec_path(ENV_ID)
    spec = load_spec(spec_path, env=ENV_ID)
    console.print(f"[bold]1. spec[/bold] {spec_path.name}: valid, {len(spec.knob_names())} knobs, "
                  f"{len(spec.params())} tunable parameters")  # fmt: skip
    rng = np.random.default_rng(seed)
    domains = [spec.sample(rng) for _ in range(4)]
    table = Table(title="four sampled training domains")
    table.add_column("knob")
    for i in range(len(domains)):
        table.add_column(f"#{i}", justify="right")
    for k in spec.knob_names():
        table.add_row(k, *(f"{d[k]:.4g}" for d in domains))
    console.print(table)

    # ---- 2. train
    run_dir = out / "cartpole_lstm"
    if (run_dir / "config.yaml").exists():  # the demo's own previous run: start afresh
        shutil.rmtree(run_dir)
    cfg = TrainConfig(env=ENV_ID, total_steps=steps, seed=seed)
    console.print(
        f"[bold]2. train[/bold] {cfg.policy.upper()}-{cfg.hidden} (RL^2 inputs) with recurrent "
        f"PPO, {cfg.num_envs} envs x {cfg.num_steps} steps, {steps} env steps -> {run_dir}"
    )
    result = train(cfg, run_dir, spec=spec, console=console)
    console.print(
        f"   trained {result.env_steps} steps in {result.elapsed:.0f} s "
        f"({result.steps_per_s:.0f} env steps/s)"
    )

    # ---- 3. evaluate: the trained policy, and the nominal-model LQR as a reference
    from domrand.policies.checkpoint import load_policy

    policy, info = load_policy(run_dir)
    conditions = standard_conditions(ENV_ID, spec=spec)
    lstm = evaluate_conditions(policy, ENV_ID, conditions, episodes=episodes, seed=seed)
    lqr = []
    for c in conditions:
        env = make(ENV_ID, spec=c.spec, domain=c.domain, seed=seed)
        try:
            lqr.append(rollout_returns(env, CartPoleLQR(), episodes))
        finally:
            env.close()

    # ---- 4. export, then run the export through the deploy runtime
    exported = _export_step(run_dir, console)
    deployed, act_us = _deployed_returns(Path(exported["path"]), conditions, episodes, seed)
    exported["act_median_us"] = act_us

    # ---- 5. report
    table = Table(
        title=f"3. trained LSTM on {ENV_ID} after {info.env_steps} steps, {episodes} episodes each"
    )
    cols = ("condition", "mean return", "std", "success", "ONNX deployed", "LQR (nominal model)")
    for col in cols:
        table.add_column(col, justify="left" if col == "condition" else "right")
    for r, dep, ref in zip(lstm, deployed, lqr):
        table.add_row(r.label, f"{r.mean:.1f}", f"{r.std:.1f}", f"{r.success_rate:.0%}",
                      f"{np.mean(dep):.1f}", f"{np.mean(ref):.1f}")  # fmt: skip
    console.print(table)
    console.print(
        f"ONNX deployed: the exported policy run by the robot-side runtime (numpy + onnxruntime"
        f" only) on its own episodes; median act() {act_us:.0f} us"
    )
    doc = {
        "env": ENV_ID,
        "run_dir": str(run_dir),
        "env_steps": info.env_steps,
        "train_seconds": result.elapsed,
        "train_steps_per_s": result.steps_per_s,
        "results": [
            {**r.to_dict(), "deployed_mean": float(np.mean(dep)), "lqr_mean": float(np.mean(ref))}
            for r, dep, ref in zip(lstm, deployed, lqr)
        ],
        "export": exported,
        "realities": list(realities(ENV_ID)),
    }
    (out / "demo.json").write_text(json.dumps(doc, indent=2))
    console.print(f"wrote {out / 'demo.json'} in {time.perf_counter() - t0:.1f} s")
    return 0

"""Env throughput, side by side in one run: raw pybullet vs domrand CartPole without/with DR.

Cases (same physics: 5 substeps of 4 ms per 20 ms control step, torque re-applied each substep):
  raw         a hand-written pybullet loop (the floor any wrapper pays)
  no-DR       domrand.make("domrand/CartPole-v0") at nominal values
  pinned      one fixed domain drawn from the default spec, pinned (same physics features as
              DR, e.g. rail friction and noise, but nothing is sampled): the baseline that
              isolates the cost of randomizing from the cost of the physics it selects
  episode-DR  the default spec with every entry re-drawn once per episode
  step-noise  the default spec as shipped: observation noise re-drawn every control step

Two action sources: a balancing linear controller (long episodes: steady-state cost) and uniform
random actions (short episodes: reset-heavy worst case). Writes
benchmarks/results/env_throughput.json and prints a Markdown table.
Usage: python benchmarks/env_throughput.py [--steps N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pybullet_data

import domrand
from domrand.envs._bullet import pybullet, quiet_stdout
from domrand.policies import CartPoleLQR

ENV_ID = "domrand/CartPole-v0"
RESULTS = Path(__file__).parent / "results" / "env_throughput.json"
GAIN_K = CartPoleLQR().k[0].tolist()


def _controller(kind: str, seed: int) -> Callable[[Any], float]:
    """Action in [-1, 1] from obs; both cases cost the same few Python operations."""
    if kind == "balance":
        k0, k1, k2, k3 = GAIN_K

        def act(o: Any) -> float:
            f = -(k0 * o[0] + k1 * o[1] + k2 * o[2] + k3 * o[3]) / 10.0
            return -1.0 if f < -1.0 else (1.0 if f > 1.0 else f)

        return act
    draws = np.random.default_rng(seed).uniform(-1, 1, 1 << 16).tolist()
    state = {"i": 0}

    def act_random(o: Any) -> float:
        state["i"] = (state["i"] + 1) & 0xFFFF
        return draws[state["i"]]

    return act_random


def run_raw(steps: int, kind: str) -> tuple[float, int]:
    """A minimal pybullet cart-pole loop with the same physics settings as the env."""
    with quiet_stdout():
        cid = pybullet.connect(pybullet.DIRECT)
    body = pybullet.loadURDF(
        pybullet_data.getDataPath() + "/cartpole.urdf", useFixedBase=True, physicsClientId=cid
    )
    pybullet.setGravity(0, 0, -9.81, physicsClientId=cid)
    pybullet.setTimeStep(0.004, physicsClientId=cid)
    for j in (0, 1):
        pybullet.setJointMotorControl2(
            body, j, pybullet.VELOCITY_CONTROL, force=0, physicsClientId=cid
        )
    rng = np.random.default_rng(0)
    act = _controller(kind, 1)

    def reset() -> list[float]:
        x, xd, th, thd = rng.uniform(-0.05, 0.05, 4).tolist()
        pybullet.resetJointState(body, 0, x, xd, physicsClientId=cid)
        pybullet.resetJointState(body, 1, th, thd, physicsClientId=cid)
        return [x, xd, th, thd]

    obs, t, episodes = reset(), 0, 0
    start = time.perf_counter()
    for _ in range(steps):
        force = 10.0 * act(obs)
        for _ in range(5):
            pybullet.setJointMotorControl2(
                body, 0, pybullet.TORQUE_CONTROL, force=force, physicsClientId=cid
            )
            pybullet.stepSimulation(physicsClientId=cid)
        (x, xd, _, _), (th, thd, _, _) = pybullet.getJointStates(body, (0, 1), physicsClientId=cid)
        obs = np.array((x, xd, th, thd), dtype=np.float32)
        t += 1
        if abs(x) > 2.4 or abs(th) > 0.2094 or t >= 500:
            obs, t, episodes = reset(), 0, episodes + 1
    elapsed = time.perf_counter() - start
    pybullet.disconnect(physicsClientId=cid)
    return steps / elapsed, episodes


def run_env(steps: int, kind: str, kwargs: dict[str, Any]) -> tuple[float, int]:
    env = domrand.make(ENV_ID, seed=0, **kwargs)
    act = _controller(kind, 1)
    action = np.zeros(1, dtype=np.float32)
    obs, _ = env.reset()
    episodes = 0
    start = time.perf_counter()
    for _ in range(steps):
        action[0] = act(obs)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
            episodes += 1
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed, episodes


def specs() -> dict[str, dict[str, Any]]:
    """make() keyword arguments per case."""
    spec = domrand.load_spec(domrand.default_spec_path(ENV_ID))
    full = spec.to_dict()
    per_episode = {k: v for k, v in full["parameters"].items()}
    per_episode["obs.noise"] = {**per_episode["obs.noise"], "every": "episode"}
    return {
        "no-DR": {},
        "pinned": {"domain": spec.sample(np.random.default_rng(1))},
        "episode-DR": {"spec": {"env": ENV_ID, "parameters": per_episode}},
        "step-noise": {"spec": full},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for kind in ("balance", "random"):
        cases: dict[str, Callable[[], tuple[float, int]]] = {
            "raw pybullet loop": lambda kind=kind: run_raw(args.steps, kind)
        }
        for name, kwargs in specs().items():
            cases[f"domrand {name}"] = lambda kw=kwargs, kind=kind: run_env(args.steps, kind, kw)
        # Interleave repeats so a slow moment of the machine hits every case alike.
        rates: dict[str, list[float]] = {name: [] for name in cases}
        episodes: dict[str, int] = {}
        for _ in range(args.repeats):
            for name, fn in cases.items():
                rate, eps = fn()
                rates[name].append(rate)
                episodes[name] = eps
        raw = statistics.median(rates["raw pybullet loop"])
        no_dr = statistics.median(rates["domrand no-DR"])
        pinned = statistics.median(rates["domrand pinned"])
        for name in cases:
            med = statistics.median(rates[name])
            is_dr = name.endswith("DR") or name.endswith("noise")
            overhead = round(pinned / med - 1.0, 3) if is_dr and "no-DR" not in name else None
            rows.append({
                "actions": kind,
                "case": name,
                "steps_per_s": round(med),
                "episodes": episodes[name],
                "vs_raw": round(raw / med, 3),
                "vs_no_dr": round(no_dr / med, 3),
                "dr_overhead_vs_pinned": overhead,
                "all_runs": [round(r) for r in rates[name]],
            })  # fmt: skip
    result = {
        "benchmark": "env_throughput",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
        },
        "steps_per_case": args.steps,
        "repeats": args.repeats,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("| actions | case | steps/s | time/step vs raw | vs no-DR | DR overhead vs pinned |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        ov = r["dr_overhead_vs_pinned"]
        ov_s = "" if ov is None else f"{100 * ov:+.1f}%"
        print(
            f"| {r['actions']} | {r['case']} | {r['steps_per_s']:,} | {r['vs_raw']:.2f}x "
            f"| {r['vs_no_dr']:.2f}x | {ov_s} |"
        )
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()

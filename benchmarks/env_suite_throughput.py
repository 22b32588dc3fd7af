"""Env-suite throughput, side by side in one run: raw pybullet loops vs domrand without/with DR.

For each of domrand/KukaReach-v0 and domrand/Pusher-v0:
  raw      a hand-written pybullet loop doing the env's physics and control work (same URDFs,
           substeps, stable-PD law with its per-step mass matrix, reset on the same limits):
           the floor any wrapper pays
  no-DR    domrand.make(env_id)
  DR       domrand.make(env_id, spec=<default training spec>): every dynamics knob re-drawn per
           episode, observation noise re-drawn every control step, action noise and latency

Actions are uniform random (the same cost in every case). Repeats are interleaved so a slow
moment of the (shared) machine hits every case alike; the median is reported.
Writes benchmarks/results/env_suite_throughput.json and prints a Markdown table.
Usage: python benchmarks/env_suite_throughput.py [--steps N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import math
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
from domrand.envs.kuka_reach import KukaReachEnv
from domrand.envs.pusher import PusherEnv
from domrand.registry import assets_dir

RESULTS = Path(__file__).parent / "results" / "env_suite_throughput.json"
P = pybullet


def _connect() -> int:
    with quiet_stdout():
        return P.connect(P.DIRECT)


def _spd_mix(
    cid: int,
    body: int,
    q_all: list[float],
    dofs: list[int],
    kp: list[float],
    kd: list[float],
    h: float,
) -> np.ndarray:
    """``M (M + h B)^-1``, as ``JointPD.set_targets`` computes it."""
    m = np.asarray(P.calculateMassMatrix(body, q_all, physicsClientId=cid))[np.ix_(dofs, dofs)]
    b = h * np.asarray(kp) + np.asarray(kd)
    return np.linalg.solve((m + h * np.diag(b)).T, m.T).T


def _pd_substep(
    cid: int,
    body: int,
    joints: list[int],
    targets: list[float],
    kp: list[float],
    kd: list[float],
    mix: np.ndarray,
    fmax: float,
    h: float,
) -> None:
    """One ``JointPD.apply`` and one physics step."""
    states = P.getJointStates(body, joints, physicsClientId=cid)
    u = [k * (t - s[0] - h * s[1]) - d * s[1] for s, t, k, d in zip(states, targets, kp, kd)]
    taus = [min(max(x, -fmax), fmax) for x in (mix @ u).tolist()]
    P.setJointMotorControlArray(body, joints, P.TORQUE_CONTROL, forces=taus, physicsClientId=cid)
    P.stepSimulation(physicsClientId=cid)


def raw_kuka(steps: int) -> tuple[float, int]:
    """KukaReach's physics by hand: 20 substeps of 2.5 ms, stable PD, flange a7 locked."""
    cid, env = _connect(), KukaReachEnv
    arm = P.loadURDF(
        pybullet_data.getDataPath() + "/kuka_iiwa/model.urdf",
        useFixedBase=True,
        physicsClientId=cid,
    )
    joints, kp, kd = list(range(6)), list(env.kp), list(env.kd)
    P.setGravity(0, 0, -9.81, physicsClientId=cid)
    P.setTimeStep(env.nominal_timestep, physicsClientId=cid)
    P.setJointMotorControlArray(
        arm, joints, P.VELOCITY_CONTROL, forces=[0.0] * 6, physicsClientId=cid
    )
    P.changeDynamics(arm, 6, jointDamping=0.0, physicsClientId=cid)
    P.setJointMotorControl2(arm, 6, P.VELOCITY_CONTROL, force=300.0, physicsClientId=cid)
    lo = [P.getJointInfo(arm, j, physicsClientId=cid)[8] for j in joints]
    hi = [-x for x in lo]
    h, n_sub = env.nominal_timestep, round(env.control_period / env.nominal_timestep)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (1 << 12, 6)).tolist()

    def reset() -> tuple[list[float], tuple[float, ...]]:
        q0 = [a + b for a, b in zip(env.home, rng.uniform(-0.1, 0.1, 6).tolist())]
        for j, q in zip(joints, q0):
            P.resetJointState(arm, j, q, 0.0, physicsClientId=cid)
        return q0, tuple(rng.uniform(env.target_low, env.target_high).tolist())

    targets, goal = reset()
    t, episodes = 0, 0
    start = time.perf_counter()
    for i in range(steps):
        a = actions[i & 0xFFF]
        targets = [min(max(x + 0.1 * d, lo_), hi_) for x, d, lo_, hi_ in zip(targets, a, lo, hi)]
        q_all = [s[0] for s in P.getJointStates(arm, range(7), physicsClientId=cid)]
        mix = _spd_mix(cid, arm, q_all, joints, kp, kd, h)
        for _ in range(n_sub):
            _pd_substep(cid, arm, joints, targets, kp, kd, mix, 300.0, h)
        states = P.getJointStates(arm, joints, physicsClientId=cid)
        ee = P.getLinkState(arm, 6, computeForwardKinematics=True, physicsClientId=cid)[4]
        obs = np.asarray([s[0] for s in states] + [s[1] for s in states] + list(ee), np.float32)
        t += 1
        if math.dist(ee, goal) < 0.05 or t >= 150 or not np.isfinite(obs).all():
            (targets, goal), t, episodes = reset(), 0, episodes + 1
    elapsed = time.perf_counter() - start
    P.disconnect(cid)
    return steps / elapsed, episodes


def raw_pusher(steps: int) -> tuple[float, int]:
    """Pusher's physics by hand: 10 substeps of 5 ms, stable PD on the gantry, free puck."""
    cid, env = _connect(), PusherEnv
    urdf = assets_dir() / "urdf"
    flags = P.URDF_USE_INERTIA_FROM_FILE
    table = P.loadURDF(str(urdf / "table.urdf"), useFixedBase=True, physicsClientId=cid)
    puck = P.loadURDF(str(urdf / "puck.urdf"), [0, 0, 0.016], flags=flags, physicsClientId=cid)
    gantry = P.loadURDF(
        str(urdf / "pusher.urdf"), useFixedBase=True, flags=flags, physicsClientId=cid
    )
    joints, kp, kd = [0, 1], list(env.kp), list(env.kd)
    P.setGravity(0, 0, -9.81, physicsClientId=cid)
    P.setTimeStep(env.nominal_timestep, physicsClientId=cid)
    P.setJointMotorControlArray(
        gantry, joints, P.VELOCITY_CONTROL, forces=[0.0, 0.0], physicsClientId=cid
    )
    for link in (-1, 0, 1):
        P.setCollisionFilterPair(gantry, table, link, -1, 0, physicsClientId=cid)
    P.changeDynamics(puck, -1, linearDamping=0.5, angularDamping=0.5, physicsClientId=cid)
    h, n_sub = env.nominal_timestep, round(env.control_period / env.nominal_timestep)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (1 << 12, 2)).tolist()

    def reset() -> tuple[float, float]:
        for j, x in zip(joints, (-0.3 + rng.uniform(-0.05, 0.05), rng.uniform(-0.1, 0.1))):
            P.resetJointState(gantry, j, x, 0.0, physicsClientId=cid)
        start = (rng.uniform(-0.1, 0.05), rng.uniform(-0.15, 0.15), 0.016)
        P.resetBasePositionAndOrientation(puck, (0, 0, 10), (0, 0, 0, 1), physicsClientId=cid)
        P.performCollisionDetection(physicsClientId=cid)
        P.resetBasePositionAndOrientation(puck, start, (0, 0, 0, 1), physicsClientId=cid)
        P.resetBaseVelocity(puck, (0, 0, 0), (0, 0, 0), physicsClientId=cid)
        return rng.uniform(0.15, 0.35), rng.uniform(-0.25, 0.25)

    goal = reset()
    t, episodes = 0, 0
    start = time.perf_counter()
    for i in range(steps):
        a = actions[i & 0xFFF]
        states = P.getJointStates(gantry, joints, physicsClientId=cid)
        targets = [min(max(s[0] + 0.04 * d, -0.45), 0.45) for s, d in zip(states, a)]
        mix = _spd_mix(cid, gantry, [s[0] for s in states], joints, kp, kd, h)
        for _ in range(n_sub):
            _pd_substep(cid, gantry, joints, targets, kp, kd, mix, 20.0, h)
        states = P.getJointStates(gantry, joints, physicsClientId=cid)
        (px, py, pz), _ = P.getBasePositionAndOrientation(puck, physicsClientId=cid)
        (vx, vy, _), (_, _, wz) = P.getBaseVelocity(puck, physicsClientId=cid)
        obs = [s[0] for s in states] + [s[1] for s in states] + [px, py, vx, vy, wz, *goal]
        obs = np.asarray(obs, np.float32)
        t += 1
        if math.hypot(goal[0] - px, goal[1] - py) < 0.05 or pz < -0.05 or t >= 100:
            goal, t, episodes = reset(), 0, episodes + 1
    elapsed = time.perf_counter() - start
    P.disconnect(cid)
    return steps / elapsed, episodes


def run_env(env_id: str, steps: int, spec: Any) -> tuple[float, int]:
    env = domrand.make(env_id, spec=spec, seed=0)
    dim = env.action_space.shape[0]
    actions = np.random.default_rng(0).uniform(-1, 1, (1 << 12, dim)).astype(np.float32)
    env.reset()
    episodes = 0
    start = time.perf_counter()
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[i & 0xFFF])
        if terminated or truncated:
            env.reset()
            episodes += 1
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed, episodes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    raw_loops = {"domrand/KukaReach-v0": raw_kuka, "domrand/Pusher-v0": raw_pusher}
    rows = []
    for env_id, raw in raw_loops.items():
        cases: dict[str, Callable[[], tuple[float, int]]] = {
            "raw pybullet loop": lambda raw=raw: raw(args.steps),
            "domrand no-DR": lambda e=env_id: run_env(e, args.steps, None),
            "domrand DR (default spec)": lambda e=env_id: run_env(
                e, args.steps, domrand.default_spec_path(e)
            ),
        }
        rates: dict[str, list[float]] = {name: [] for name in cases}
        episodes: dict[str, int] = {}
        for _ in range(args.repeats):
            for name, fn in cases.items():
                rate, eps = fn()
                rates[name].append(rate)
                episodes[name] = eps
        raw_rate = statistics.median(rates["raw pybullet loop"])
        no_dr = statistics.median(rates["domrand no-DR"])
        for name in cases:
            med = statistics.median(rates[name])
            overhead = round(no_dr / med - 1.0, 3) if name.startswith("domrand") else None
            rows.append({
                "env": env_id,
                "case": name,
                "steps_per_s": round(med),
                "episodes": episodes[name],
                "vs_raw": round(raw_rate / med, 3),
                "overhead_vs_no_dr": overhead,
                "all_runs": [round(r) for r in rates[name]],
            })  # fmt: skip
    result = {
        "benchmark": "env_suite_throughput",
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
    print("| env | case | steps/s | slower than raw | DR overhead vs no-DR |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        ov = "" if r["overhead_vs_no_dr"] is None else f"{100 * r['overhead_vs_no_dr']:+.1f}%"
        print(f"| {r['env']} | {r['case']} | {r['steps_per_s']:,} | {r['vs_raw']:.2f}x | {ov} |")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()

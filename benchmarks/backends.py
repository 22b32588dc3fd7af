"""Rollout backends side by side in one run: env-steps/s with 1 and 2 workers on local,
subprocess and ray; ray's overhead over subprocess; message sizes; scale-out on paper.

Workloads (each the same on every backend, numbers identical by construction):
  lockstep   the trainer's vector env: ``--envs`` envs stepped in lockstep with random actions,
             ended envs reset by mask (one round trip per worker per step)
  guide      a guide's evaluation batch: ``PolicyRunner`` (Active DR) runs an LSTM policy for
             ``--horizon`` steps in 32 domains, chunks of 4 envs (one round trip per chunk)

Message sizes are the pickled request and reply of one worker call. The scale-out estimate
takes the measured per-worker rates, round-trip costs and message sizes and names the bottleneck.
Writes benchmarks/results/backends.json and backends.md.
Usage: python benchmarks/backends.py [--envs 8] [--steps 600] [--repeats 3] [--env ID]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import domrand
from domrand.backends import BackendConfig, open_backend
from domrand.backends.base import ping
from domrand.backends.vector import _step
from domrand.guided.rollouts import PolicyRunner
from domrand.policies.config import TrainConfig
from domrand.policies.networks import build_policy
from domrand.policies.train import net_config_for

RESULTS = Path(__file__).parent / "results"
LAN_GBIT = 10.0  #: assumed node-to-node bandwidth (Gbit/s) for the estimate
LAN_RTT_MS = 0.2  #: assumed extra network round trip per remote call (ms)


def lockstep(backend: Any, env_id: str, n_envs: int, steps: int) -> float:
    """Env steps/s of a lockstep vector env on ``backend`` (build and warm-up excluded)."""
    envs = domrand.make_vec(
        env_id,
        n_envs,
        spec=domrand.default_spec_path(env_id),
        seed=0,
        autoreset_mode=gym.vector.AutoresetMode.DISABLED,
        backend=backend,
    )
    try:
        envs.reset(seed=list(range(n_envs)))
        rng = np.random.default_rng(0)
        shape = (n_envs, *envs.single_action_space.shape)
        low, high = envs.single_action_space.low, envs.single_action_space.high
        actions = rng.uniform(low, high, (steps + 20, *shape)).astype(np.float32)
        t0 = 0.0
        for t in range(steps + 20):
            if t == 20:
                t0 = time.perf_counter()
            _, _, term, trunc, _ = envs.step(actions[t])
            ended = term | trunc
            if ended.any():
                envs.reset(options={"reset_mask": ended})
        return n_envs * steps / (time.perf_counter() - t0)
    finally:
        envs.close()


def guide_batch(config: BackendConfig, env_id: str, policy: Any, horizon: int) -> float:
    """Env steps/s of a guide evaluation batch (32 domains, chunks of 4; pools built first)."""
    runner = PolicyRunner(env_id, domrand.load_spec(domrand.default_spec_path(env_id)), 4, config)
    try:
        domains: list[Any] = [None] * 32
        seeds = list(range(32))
        runner.run(policy, domains[:8], seeds[:8], 5)  # builds every worker's pool
        before = runner.env_steps
        t0 = time.perf_counter()
        runner.run(policy, domains, seeds, horizon)
        return (runner.env_steps - before) / (time.perf_counter() - t0)
    finally:
        runner.close()


def round_trip_ms(backend: Any, calls: int = 300) -> float:
    """Median cost of one empty worker call (send + recv), in ms."""
    handle = backend.handles[0]
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        handle.call(ping)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def message_sizes(env_id: str, n_envs: int, workers: int, policy: Any) -> dict[str, int]:
    """Pickled bytes of one worker call's request and reply (per step / per guide chunk)."""
    from domrand.backends import WorkerHost

    host = WorkerHost()
    per = -(-n_envs // workers)
    envs = domrand.make_vec(env_id, per, spec=domrand.default_spec_path(env_id), seed=0,
                            autoreset_mode=gym.vector.AutoresetMode.DISABLED)  # fmt: skip
    host.resources["k"] = envs
    envs.reset(seed=0)
    actions = np.zeros((per, *envs.single_action_space.shape), np.float32)
    reply = _step(host, "k", actions)
    envs.close()
    runner_chunk = ([None] * 4, list(range(4)), 4)
    from domrand.guided.rollouts import Trajectory

    obs_dim = int(np.prod(envs.single_observation_space.shape))
    act_dim = int(np.prod(envs.single_action_space.shape))
    trajs = [Trajectory(np.zeros((51, obs_dim)), np.zeros((50, act_dim)), 0.0)] * 4
    dumps = pickle.dumps
    return {
        "step_request_bytes": len(dumps((_step, ("k", actions)))),
        "step_reply_bytes": len(dumps(("ok", reply))),
        "guide_chunk_request_bytes": len(
            dumps((ping, ("broadcast-key", ping, "runner-key", env_id, None, 4, 50, runner_chunk)))
        ),
        "guide_chunk_reply_bytes_50_steps": len(dumps(("ok", (trajs, 200)))),
        "policy_bytes": len(dumps(policy)),
    }


def policy_step_ms(policy: Any, batch: int) -> float:
    """Driver-side cost of one batched LSTM acting step (ms)."""
    obs = torch.zeros(batch, policy.config.obs_dim)
    a = torch.zeros(batch, policy.config.act_dim)
    r = torch.zeros(batch)
    state = policy.initial_state(batch)
    starts = torch.zeros(batch, dtype=torch.bool)
    with torch.no_grad():
        for _ in range(5):
            policy.step(obs, a, r, state, starts)
        t0 = time.perf_counter()
        for _ in range(50):
            mean, _, state = policy.step(obs, a, r, state, starts)
            policy.sample(mean, torch.Generator().manual_seed(0))
    return 1e3 * (time.perf_counter() - t0) / 50


def learner_s_per_step(env_id: str, env_rate: float) -> tuple[float, float]:
    """``(train env-steps/s, learner seconds per env step)`` of the default CartPole run (LSTM
    64, 8 envs x 128 steps, 10 epochs) on the local backend: the acting and PPO update the
    driver does for every env step, whatever the backend."""
    import tempfile

    from domrand.policies.train import train

    cfg = TrainConfig(env=env_id, backend="local", total_steps=8192, checkpoint_every=10**9)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(cfg, Path(tmp) / "run", progress=False)
    return result.steps_per_s, max(1.0 / result.steps_per_s - 1.0 / env_rate, 1e-9)


def scale_out(
    rate1: float,
    guide1: float,
    rtt: dict[str, float],
    sizes: dict[str, int],
    act_ms: dict[int, float],
    cores: int,
    learner_s: float,
) -> dict[str, Any]:
    """What 10 and 100 nodes of ``cores`` workers would give, from the measured numbers."""
    out: dict[str, Any] = {"assumptions": {
        "cores_per_node": cores, "lan_gbit_s": LAN_GBIT, "extra_network_rtt_ms": LAN_RTT_MS,
        "envs_per_worker": 8}}  # fmt: skip
    bw = LAN_GBIT * 1e9 / 8
    for nodes in (10, 100):
        workers = nodes * cores
        n_envs = 8 * workers
        # lockstep trainer: every step waits for the slowest worker block (8 envs at the
        # measured per-worker rate), the driver's fan-out of one call per worker (calls are
        # issued one after the other), the bytes through the driver's NIC, and batched acting
        block_s = 8 / rate1
        fanout_s = workers * rtt["ray"] / 1e3
        step_bytes = workers * (sizes["step_request_bytes"] + 8 * sizes["step_reply_bytes"])
        net_s = step_bytes / bw + LAN_RTT_MS / 1e3
        act_s = act_ms[512] / 1e3 * n_envs / 512
        step_s = max(block_s + net_s, fanout_s) + act_s
        lock = n_envs / step_s
        parts = {"worker block": block_s, "driver fan-out": fanout_s, "driver acting": act_s,
                 "network": net_s}  # fmt: skip
        # training: the one learner (acting + PPO update, measured per env step) caps it
        learner_cap = 1.0 / learner_s
        # guide batches: independent chunks of 4 envs x 50 steps, 8 chunks per worker per batch;
        # the driver sends the policy once to every worker, then one small request per chunk
        chunk_steps = 4 * 50
        chunk_s = chunk_steps / guide1
        batch_steps = 8 * workers * chunk_steps
        compute_s = 8 * chunk_s
        policy_s = workers * sizes["policy_bytes"] / bw
        dispatch_s = 8 * workers * (sizes["guide_chunk_request_bytes"] / bw + rtt["ray"] / 1e3)
        guide = batch_steps / (max(compute_s, dispatch_s) + policy_s + LAN_RTT_MS / 1e3)
        gparts = {"workers": compute_s, "driver dispatch": dispatch_s,
                  "policy broadcast through the driver's NIC": policy_s}  # fmt: skip
        guide_bottleneck = max(gparts, key=gparts.get)  # type: ignore[arg-type]
        out[f"{nodes}_nodes"] = {
            "workers": workers,
            "lockstep_envs": n_envs,
            "lockstep_env_steps_per_s": round(lock),
            "lockstep_ideal_env_steps_per_s": round(workers * rate1),
            "lockstep_step_ms_parts": {k: round(1e3 * v, 2) for k, v in parts.items()},
            "lockstep_bottleneck": max(parts, key=parts.get),  # type: ignore[arg-type]
            "training_env_steps_per_s": round(min(lock, learner_cap)),
            "training_bottleneck": "the single learner (PPO update on the driver)"
            if learner_cap < lock else "lockstep stepping",
            "guide_env_steps_per_s": round(guide),
            "guide_ideal_env_steps_per_s": round(workers * guide1),
            "guide_batch_s_parts": {k: round(v, 4) for k, v in gparts.items()},
            "guide_bottleneck": guide_bottleneck,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="domrand/CartPole-v0")
    ap.add_argument("--envs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--horizon", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cores-per-node", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    env = domrand.make(args.env)
    policy = build_policy(net_config_for(TrainConfig(hidden=64), env), torch.Generator())
    env.close()
    load0 = os.getloadavg()
    rows: list[dict[str, Any]] = []
    rtt: dict[str, float] = {}
    for kind in ("local", "subprocess", "ray", "ray-calls"):
        for workers in (1, 2):
            # ray-calls: every call through Ray's actor calls instead of the direct channel
            os.environ["DOMRAND_RAY_CHANNEL"] = "ray" if kind == "ray-calls" else "socket"
            config = BackendConfig(kind.split("-")[0], workers)
            backend = open_backend(config)
            try:
                if workers == 1:
                    rtt[kind] = round_trip_ms(backend)
                lock = [lockstep(backend, args.env, args.envs, args.steps)
                        for _ in range(args.repeats)]  # fmt: skip
                guide = [guide_batch(config, args.env, policy, args.horizon)
                         for _ in range(args.repeats)]  # fmt: skip
            finally:
                backend.close()
            rows.append({"backend": kind, "workers": workers,
                         "lockstep_env_steps_per_s": round(statistics.median(lock)),
                         "lockstep_runs": [round(x) for x in lock],
                         "guide_env_steps_per_s": round(statistics.median(guide)),
                         "guide_runs": [round(x) for x in guide]})  # fmt: skip
            print(rows[-1], flush=True)
    ray.shutdown()
    by = {(r["backend"], r["workers"]): r for r in rows}
    overhead = {}
    for kind in ("ray", "ray-calls"):
        for w in (1, 2):
            for what in ("lockstep", "guide"):
                sub = by["subprocess", w][f"{what}_env_steps_per_s"]
                ray_rate = by[kind, w][f"{what}_env_steps_per_s"]
                overhead[f"{kind} {what} {w}w"] = round(100 * (sub / ray_rate - 1), 1)
    sizes = message_sizes(args.env, args.envs, 2, policy)
    act_ms = {b: round(policy_step_ms(policy, b), 3) for b in (8, 64, 512)}
    # per-worker rates: subprocess with one worker (includes the round trip of a lockstep step)
    rate1 = by["subprocess", 1]["lockstep_env_steps_per_s"]
    guide1 = by["subprocess", 1]["guide_env_steps_per_s"]
    train_rate, learner_s = learner_s_per_step(args.env, by["local", 1]["lockstep_env_steps_per_s"])
    paper = scale_out(rate1, guide1, rtt, sizes, act_ms, args.cores_per_node, learner_s)
    result = {
        "benchmark": "backends",
        "env": args.env,
        "envs": args.envs,
        "steps": args.steps,
        "horizon": args.horizon,
        "repeats": args.repeats,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_start": [round(x, 2) for x in load0],
                    "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                    "note": "measured under load: a 2-core machine shared with other jobs"},
        "rows": rows,
        "round_trip_ms": {k: round(v, 3) for k, v in rtt.items()},
        "ray_over_subprocess_overhead": overhead,
        "message_sizes": sizes,
        "driver_policy_step_ms": act_ms,
        "train_local_env_steps_per_s": round(train_rate),
        "learner_us_per_env_step": round(1e6 * learner_s, 1),
        "scale_out_on_paper": paper,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backends.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "backends.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# Rollout backends ({r['env']}, {r['envs']} envs lockstep; guide batch of 32 "
        f"domains x {r['horizon']} steps)",
        "",
        f"Measured under load (2 cores shared with other jobs; load average "
        f"{r['machine']['loadavg_start'][0]} at start, {r['machine']['loadavg_end'][0]} at end); "
        f"median of {r['repeats']} runs.",
        "",
        "| backend | workers | lockstep env-steps/s | guide env-steps/s |",
        "| --- | --- | --- | --- |",
    ]
    for row in r["rows"]:
        lines.append(f"| {row['backend']} | {row['workers']} | {row['lockstep_env_steps_per_s']}"
                     f" | {row['guide_env_steps_per_s']} |")  # fmt: skip
    o = r["ray_over_subprocess_overhead"]
    lines += [
        "",
        "Ray over subprocess at equal workers (positive = ray slower; target <= 15%): "
        + ", ".join(f"{k} {v:+.1f}%" for k, v in o.items()),
        "",
        "Empty-call round trip (ms): "
        + ", ".join(f"{k} {v}" for k, v in r["round_trip_ms"].items()),
        "",
        "Message sizes (pickled bytes): "
        + ", ".join(f"{k} {v}" for k, v in r["message_sizes"].items()),
        "",
        "## Scale-out on paper",
        "",
    ]
    p = r["scale_out_on_paper"]
    a = p["assumptions"]
    lines.append(f"Assumptions: {a['cores_per_node']} workers per node, {a['envs_per_worker']} "
                 f"envs per worker, {a['lan_gbit_s']} Gbit/s, +{a['extra_network_rtt_ms']} ms "
                 "per remote call.")  # fmt: skip
    lines.append(f"Measured here: per-worker lockstep rate (subprocess, 1 worker), guide rate, "
                 f"round trips and message sizes above; the learner (acting + PPO update on the "
                 f"driver) costs {r['learner_us_per_env_step']} us per env step (local training "
                 f"at {r['train_local_env_steps_per_s']} env-steps/s).")  # fmt: skip
    head = "| nodes | workers | lockstep env-steps/s (ideal) | bottleneck | guide env-steps/s "
    lines += ["", head + "(ideal) | bottleneck | training env-steps/s | bottleneck |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for nodes in (10, 100):
        q = p[f"{nodes}_nodes"]
        lines.append(
            f"| {nodes} | {q['workers']} | {q['lockstep_env_steps_per_s']} "
            f"({q['lockstep_ideal_env_steps_per_s']}) | {q['lockstep_bottleneck']} | "
            f"{q['guide_env_steps_per_s']} ({q['guide_ideal_env_steps_per_s']}) | "
            f"{q['guide_bottleneck']} | {q['training_env_steps_per_s']} | "
            f"{q['training_bottleneck']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

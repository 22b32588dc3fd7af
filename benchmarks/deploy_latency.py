"""Deploy latency, side by side in one run: one act() of an exported policy vs the torch step.

Cases: LSTM-256 (the acceptance case: obs 4, act 1, as CartPole), LSTM-256 with a bigger
observation (obs 32, act 8), LSTM-256 with RL^2 inputs, and an MLP 2x256 for reference.
Runtimes, all on ONE thread (and, where the OS allows, the process pinned to one core):

  deploy act()      ``ExportedPolicy.act(obs)``: numpy in, numpy out, state kept inside
                    (onnxruntime with IOBinding on preallocated buffers)
  ort session.run   the same ONNX graph through plain ``InferenceSession.run`` with a feed
                    dict (what a naive runtime pays per call)
  torch step        ``ActorCritic.step`` + ``deterministic_action`` under ``inference_mode``,
                    numpy obs converted in and the action out (the training-stack baseline)

Every call is timed on its own (``perf_counter_ns``); median and p99 in microseconds. Writes
benchmarks/results/deploy_latency.json and prints a Markdown table.
Usage: python benchmarks/deploy_latency.py [--calls N] [--cpu K]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from domrand.policies.deploy import load_exported
from domrand.policies.export import export_onnx
from domrand.policies.networks import ActorCritic, NetConfig, build_policy

RESULTS = Path(__file__).parent / "results" / "deploy_latency.json"
CASES = [
    ("LSTM-256, obs 4, act 1", NetConfig(4, 1, "lstm", 256)),
    ("LSTM-256, obs 32, act 8", NetConfig(32, 8, "lstm", 256)),
    ("LSTM-256 RL^2, obs 4, act 1", NetConfig(4, 1, "lstm", 256, rl2=True)),
    ("MLP 2x256, obs 4, act 1", NetConfig(4, 1, "mlp", 256, layers=2)),
]


def _with_bounds(cfg: NetConfig) -> NetConfig:
    return NetConfig(
        **{**cfg.to_dict(), "act_low": [-1.0] * cfg.act_dim, "act_high": [1.0] * cfg.act_dim}
    )


def _info(cfg: NetConfig) -> SimpleNamespace:
    return SimpleNamespace(
        env_id="benchmark",
        net_config=cfg,
        spec=None,
        control_period=0.02,
        obs_low=[-math.inf] * cfg.obs_dim,
        obs_high=[math.inf] * cfg.obs_dim,
        act_low=[-1.0] * cfg.act_dim,
        act_high=[1.0] * cfg.act_dim,
        env_steps=0,
        seed=0,
        domrand_version="benchmark",
    )


def _time(fn: Callable[[int], Any], calls: int, warmup: int) -> np.ndarray:
    for i in range(warmup):
        fn(i)
    out = np.empty(calls, np.int64)
    clock = time.perf_counter_ns
    for i in range(calls):
        t0 = clock()
        fn(i)
        out[i] = clock() - t0
    return out / 1e3  # microseconds


def bench_case(cfg: NetConfig, calls: int, folder: Path) -> dict[str, np.ndarray]:
    cfg = _with_bounds(cfg)
    policy: ActorCritic = build_policy(cfg, torch.Generator().manual_seed(0)).eval()
    path = export_onnx(policy, _info(cfg), folder / "policy.onnx")
    obs = np.random.default_rng(0).standard_normal((1024, cfg.obs_dim)).astype(np.float32)
    timings: dict[str, np.ndarray] = {}

    exported = load_exported(path)

    def deploy_act(i: int) -> None:
        exported.act(obs[i & 1023], reward=1.0)

    timings["deploy act()"] = _time(deploy_act, calls, warmup=500)

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feeds = {
        "prev_action": np.zeros((1, cfg.act_dim), np.float32),
        "prev_reward": np.ones(1, np.float32),
        "h": np.zeros((1, 1, cfg.hidden), np.float32),
        "c": np.zeros((1, 1, cfg.hidden), np.float32),
        "episode_start": np.zeros(1, np.float32),
    }
    names = [i.name for i in session.get_inputs()]
    feeds = {k: v for k, v in feeds.items() if k in names}

    def ort_run(i: int) -> None:
        feeds["obs"] = obs[i & 1023][None]
        out = session.run(None, feeds)
        if "h" in feeds:
            feeds["h"], feeds["c"] = out[2], out[3]

    timings["ort session.run"] = _time(ort_run, calls, warmup=500)

    state = policy.initial_state(1)
    prev_a, prev_r, start = torch.zeros(1, cfg.act_dim), torch.ones(1), torch.zeros(1)

    def torch_step(i: int) -> None:
        nonlocal state, prev_a
        with torch.inference_mode():
            obs_t = torch.from_numpy(obs[i & 1023]).view(1, -1)
            mean, _, state = policy.step(obs_t, prev_a, prev_r, state, start)
            prev_a = policy.deterministic_action(mean)
            prev_a[0].numpy().copy()

    timings["torch step"] = _time(torch_step, max(calls // 4, 1000), warmup=200)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="timed act() calls per case")
    parser.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    pinned = None
    if hasattr(os, "sched_setaffinity"):
        cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        pinned = cpu
    load_before = os.getloadavg()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in CASES:
            timings = bench_case(cfg, args.calls, Path(tmp))
            torch_median = float(np.median(timings["torch step"]))
            for runtime, us in timings.items():
                rows.append(
                    {
                        "case": name,
                        "runtime": runtime,
                        "median_us": round(float(np.median(us)), 1),
                        "p99_us": round(float(np.percentile(us, 99)), 1),
                        "mean_us": round(float(us.mean()), 1),
                        "calls": int(us.size),
                        "speedup_vs_torch": round(torch_median / float(np.median(us)), 2),
                    }
                )
    result = {
        "benchmark": "deploy_latency",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "pinned_to_core": pinned,
            "threads": 1,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "onnxruntime": ort.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "target_us": 200,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    print(
        f"one act(), one thread{f', pinned to core {pinned}' if pinned is not None else ''}; "
        f"load average before {load_before[0]:.2f}"
    )
    print()
    print("| case | runtime | median us | p99 us | vs torch step |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['case']} | {r['runtime']} | {r['median_us']:.1f} | {r['p99_us']:.1f} | "
            f"{r['speedup_vs_torch']:.2f}x |"
        )
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()

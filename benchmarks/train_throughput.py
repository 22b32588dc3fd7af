"""Training throughput, side by side in one run: domrand recurrent PPO vs sb3-contrib RecurrentPPO.

Same env (domrand/CartPole-v0 under its default randomization spec, 8 envs with independent
seeded streams) and matched settings: LSTM 256, 8 envs x 128 steps, minibatch 256, 10 epochs,
lr 3e-4 (constant), gamma 0.99, GAE lambda 0.95, clip 0.2, max grad norm 0.5, no entropy bonus.
Architectures stay each library's own: domrand shares one LSTM between actor and critic and
feeds RL^2 inputs; sb3-contrib's default MlpLstmPolicy has separate actor and critic LSTMs.

Each trainer runs until ``--steps`` env steps or its wall-clock cap (sb3 is slow: it is capped
and we report what it reached). Reported: env-steps/s (wall clock of ``learn``/``train``), and the
env steps and seconds each needed to reach a rolling return (mean of the last 100 episodes) of
``--threshold``; plus return at equal env steps. A short section measures our own settings
(torch threads 1 vs 2 in the update, sync vs subprocess envs).

Writes benchmarks/results/train_throughput.json and prints a Markdown table.
Usage: python benchmarks/train_throughput.py [--steps N] [--ours-seconds S] [--sb3-seconds S]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see domrand/cli.py)

import argparse
import contextlib
import json
import math
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import domrand
from domrand.policies.config import TrainConfig
from domrand.policies.train import train

ENV_ID = "domrand/CartPole-v0"
RESULTS = Path(__file__).parent / "results" / "train_throughput.json"
MATCHED = {
    "hidden": 256,
    "num_envs": 8,
    "num_steps": 128,
    "batch_size": 256,
    "epochs": 10,
    "learning_rate": 3e-4,
    "anneal_lr": False,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_coef": 0.2,
    "max_grad_norm": 0.5,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
}


class _Stop(Exception):
    pass


def _reached(curve: list[dict[str, float]], threshold: float) -> dict[str, float] | None:
    for p in curve:
        if p["return"] >= threshold:
            return p
    return None


def _at_steps(curve: list[dict[str, float]], steps: float) -> float:
    """Rolling return of the last curve point at or before ``steps`` (NaN if none)."""
    before = [p["return"] for p in curve if p["steps"] <= steps]
    return before[-1] if before else math.nan


def run_ours(steps: int, seconds: float, seed: int, **overrides: Any) -> dict[str, Any]:
    spec = domrand.default_spec_path(ENV_ID)
    cfg = TrainConfig(
        **{**MATCHED, **overrides}, total_steps=steps, seed=seed, checkpoint_every=10**9
    )
    curve: list[dict[str, float]] = []
    t0 = time.perf_counter()

    def record(row: dict[str, Any]) -> None:
        curve.append(
            {
                "steps": row["env_steps"],
                "time": time.perf_counter() - t0,
                "return": row["recent_return"],
            }
        )
        if time.perf_counter() - t0 > seconds:
            raise _Stop

    with tempfile.TemporaryDirectory() as tmp, contextlib.suppress(_Stop):
        train(cfg, Path(tmp) / "run", spec=spec, progress=False, callback=record)
    wall = curve[-1]["time"]
    return {
        "trainer": "domrand",
        "settings": cfg.to_dict(),
        "env_steps": int(curve[-1]["steps"]),
        "wall_s": wall,
        "steps_per_s": curve[-1]["steps"] / wall,
        "final_return": curve[-1]["return"],
        "curve": curve,
    }


def run_sb3(steps: int, seconds: float, seed: int) -> dict[str, Any]:
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    spec = domrand.load_spec(domrand.default_spec_path(ENV_ID), env=ENV_ID)
    seeds = [int(s.generate_state(1, np.uint32)[0]) for s in np.random.SeedSequence(seed).spawn(8)]
    venv = VecMonitor(
        DummyVecEnv([lambda s=s: domrand.make(ENV_ID, spec=spec, seed=s) for s in seeds])
    )
    curve: list[dict[str, float]] = []

    class Record(BaseCallback):
        def _on_training_start(self) -> None:
            self.t0 = time.perf_counter()

        def _on_step(self) -> bool:
            return True

        def _on_rollout_start(self) -> None:
            # called after each update (and before the first rollout)
            if self.num_timesteps == 0:
                return
            buf = self.model.ep_info_buffer
            ret = float(np.mean([e["r"] for e in buf])) if buf else math.nan
            t = time.perf_counter() - self.t0
            curve.append({"steps": self.num_timesteps, "time": t, "return": ret})
            if t > seconds:
                self.model._stop_requested = True  # checked below

    class Stopper(Record):
        def _on_step(self) -> bool:
            return not getattr(self.model, "_stop_requested", False)

    model = RecurrentPPO(
        "MlpLstmPolicy",
        venv,
        n_steps=MATCHED["num_steps"],
        batch_size=MATCHED["batch_size"],
        n_epochs=MATCHED["epochs"],
        learning_rate=MATCHED["learning_rate"],
        gamma=MATCHED["gamma"],
        gae_lambda=MATCHED["gae_lambda"],
        clip_range=MATCHED["clip_coef"],
        max_grad_norm=MATCHED["max_grad_norm"],
        ent_coef=MATCHED["ent_coef"],
        vf_coef=MATCHED["vf_coef"],
        policy_kwargs={"lstm_hidden_size": MATCHED["hidden"]},
        seed=seed,
        device="cpu",
    )
    model.learn(total_timesteps=steps, callback=Stopper())
    venv.close()
    wall = curve[-1]["time"]
    return {
        "trainer": "sb3-contrib RecurrentPPO",
        "settings": {"policy": "MlpLstmPolicy (separate actor/critic LSTMs)", **MATCHED},
        "env_steps": int(curve[-1]["steps"]),
        "wall_s": wall,
        "steps_per_s": curve[-1]["steps"] / wall,
        "final_return": curve[-1]["return"],
        "curve": curve,
        "torch_threads": torch.get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300_000, help="env-step budget of each trainer")
    ap.add_argument("--ours-seconds", type=float, default=240.0, help="wall-clock cap (ours)")
    ap.add_argument("--sb3-seconds", type=float, default=240.0, help="wall-clock cap (sb3)")
    ap.add_argument("--threshold", type=float, default=450.0, help="rolling return to reach")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-variants", action="store_true", help="skip our threads/vector variants")
    args = ap.parse_args()

    rows = []
    print("domrand trainer ...", flush=True)
    ours = run_ours(args.steps, args.ours_seconds, args.seed)
    rows.append(ours)
    print(f"  {ours['env_steps']} steps in {ours['wall_s']:.0f} s", flush=True)
    print("sb3-contrib RecurrentPPO ...", flush=True)
    sb3 = run_sb3(args.steps, args.sb3_seconds, args.seed)
    rows.append(sb3)
    print(f"  {sb3['env_steps']} steps in {sb3['wall_s']:.0f} s", flush=True)

    for r in rows:
        hit = _reached(r["curve"], args.threshold)
        r["threshold_reached"] = (
            None if hit is None else {"steps": hit["steps"], "time_s": hit["time"]}
        )
    common = min(ours["env_steps"], sb3["env_steps"])
    comparison = {
        "speedup_steps_per_s": ours["steps_per_s"] / sb3["steps_per_s"],
        "return_at_equal_steps": {
            "env_steps": common,
            "domrand": _at_steps(ours["curve"], common),
            "sb3": _at_steps(sb3["curve"], common),
        },
    }

    variants = []
    if not args.no_variants:
        for label, kw in (
            ("update threads 1, sync envs", {"torch_threads": 1}),
            ("update threads 2, sync envs", {"torch_threads": 2}),
            ("auto threads, subprocess envs", {"vectorization": "async"}),
            ("auto threads, sync envs, seq_len 16", {"seq_len": 16}),
            ("hidden 64 (our CartPole default)", {"hidden": 64}),
        ):
            r = run_ours(12 * 1024, 60.0, args.seed, **kw)
            variants.append({"variant": label, "steps_per_s": r["steps_per_s"]})
            print(f"  variant {label}: {r['steps_per_s']:.0f} steps/s", flush=True)

    doc = {
        "benchmark": "train_throughput",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.machine(),
            "cores": os.cpu_count(),
            "load_avg_at_end": os.getloadavg(),
        },
        "env": ENV_ID,
        "spec": "default (assets/specs/cartpole.yaml)",
        "threshold": args.threshold,
        "rows": rows,
        "comparison": comparison,
        "variants": variants,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2))

    def fmt_hit(r: dict[str, Any]) -> str:
        h = r["threshold_reached"]
        if h is None:
            best = max((p["return"] for p in r["curve"] if not math.isnan(p["return"])), default=0)
            return f"not reached (best {best:.0f})"
        return f"{h['steps']} steps / {h['time_s']:.0f} s"

    print(f"\n| trainer | env steps | wall s | env-steps/s | return (last 100 ep.) | "
          f"to return {args.threshold:.0f} |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['trainer']} | {r['env_steps']} | {r['wall_s']:.0f} | {r['steps_per_s']:.0f} "
              f"| {r['final_return']:.1f} | {fmt_hit(r)} |")  # fmt: skip
    eq = comparison["return_at_equal_steps"]
    print(f"\nspeedup: {comparison['speedup_steps_per_s']:.1f}x env-steps/s; at {eq['env_steps']} "
          f"env steps: domrand {eq['domrand']:.1f} vs sb3 {eq['sb3']:.1f}")  # fmt: skip
    if variants:
        print("\n| our setting | env-steps/s |\n|---|---:|")
        for v in variants:
            print(f"| {v['variant']} | {v['steps_per_s']:.0f} |")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()

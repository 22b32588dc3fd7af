"""Training runs: recurrent PPO across randomized vector envs, crash-safe and resumable.

The loop, top to bottom (``train``):

1. prepare ``RUN_DIR`` (``config.yaml``, ``spec.yaml``, ``metrics.csv``, ``checkpoints/``), or on
   ``resume`` check it matches and load the latest checkpoint: weights, normalizer, optimizer,
   torch RNG, guide state, counters;
2. per iteration: (at a checkpoint boundary, reset every env with seeds derived from the root
   seed and the iteration) -> collect ``num_steps`` per env -> GAE -> cut into sequences ->
   PPO epochs -> fold the rollout's observations into the normalizer -> log -> maybe checkpoint.

Resetting the envs at checkpoint boundaries makes a resumed run continue exactly like the run
that was killed would have: everything it depends on (weights, optimizer, RNG, normalizer, guide,
env seeds) is in the checkpoint or derived from the iteration number. Episodes cut there are
not lost for learning: a rollout's last step is always bootstrapped from V.
"""

from __future__ import annotations

import collections
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml
from rich.console import Console

from domrand.backends import Backend, open_backend
from domrand.errors import CheckpointError, DomrandError
from domrand.fsutil import atomic_write_text
from domrand.guided.base import Guide, SpecSource
from domrand.policies.buffer import RewardScaler, Rollout, compute_gae, make_sequences
from domrand.policies.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    RunInfo,
    WarmStart,
    checkpoint_path,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_warm_start,
    remove_stale_temporaries,
    save_checkpoint,
)
from domrand.policies.config import TrainConfig, load_config
from domrand.policies.metrics import MetricsWriter, ProgressReporter
from domrand.policies.networks import ActorCritic, NetConfig, build_policy
from domrand.policies.ppo import ppo_update
from domrand.policies.privileged import DomainFeatures, critic_knobs
from domrand.policies.rollout import Collector, Episode
from domrand.spec import RandomizationSpec, load_spec

__all__ = ["TrainResult", "net_config_for", "train"]

#: config keys that may differ on --resume (they do not change what is learned)
RESUMABLE_CHANGES = frozenset(
    {
        "total_steps",
        "vectorization",
        "backend",
        "workers",
        "address",
        "torch_threads",
        "checkpoint_every",
        "keep_checkpoints",
    }
)


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    env_steps: int
    iterations: int
    elapsed: float  #: wall-clock seconds of this call
    steps_per_s: float  #: env steps per second of this call
    recent_return: float  #: mean return of the last 100 episodes (NaN if none)
    checkpoint: Path | None


def net_config_for(cfg: TrainConfig, env: gym.vector.VectorEnv | gym.Env) -> NetConfig:
    """The network architecture ``cfg`` asks for, sized to ``env``'s spaces."""
    obs_space = getattr(env, "single_observation_space", env.observation_space)
    act_space = getattr(env, "single_action_space", env.action_space)
    if not isinstance(act_space, gym.spaces.Box) or not isinstance(obs_space, gym.spaces.Box):
        raise DomrandError("the trainer supports Box observation and action spaces only")
    return NetConfig(
        obs_dim=int(np.prod(obs_space.shape)),
        act_dim=int(np.prod(act_space.shape)),
        kind=cfg.policy,
        hidden=cfg.hidden,
        layers=cfg.layers,
        rl2=cfg.rl2,
        init_log_std=cfg.init_log_std,
        act_low=tuple(float(v) for v in act_space.low.ravel()),
        act_high=tuple(float(v) for v in act_space.high.ravel()),
    )


def _segment_seeds(seed: int, iteration: int, n: int) -> list[int]:
    """Env reset seeds for the segment starting at ``iteration`` (a pure function of both)."""
    ss = np.random.SeedSequence(seed, spawn_key=(0x736567, iteration))
    return [int(s.generate_state(1, np.uint32)[0]) for s in ss.spawn(n)]


def _threads(cfg: TrainConfig) -> tuple[int, int]:
    """Torch threads ``(acting, update)``; measured on 2 cores (benchmarks/train_throughput.py).

    Acting runs batch-8 matmuls of a few microseconds: one thread (more only add sync cost).
    The update of a hidden-256 LSTM gains ~1.5x from 2 threads on a quiet machine; at hidden 64
    it gains nothing, and any extra thread loses badly when another process holds a core.
    """
    if cfg.torch_threads:
        return cfg.torch_threads, cfg.torch_threads
    cores = os.cpu_count() or 1
    return 1, (min(cores, 2) if cfg.hidden >= 128 else 1)


def _set_threads(n: int) -> None:
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


# ---------------------------------------------------------------------- run directory
def _prepare_run_dir(
    run_dir: Path, cfg: TrainConfig, spec: RandomizationSpec | None, resume: bool
) -> dict[str, Any] | None:
    """Create or check ``run_dir``; return the checkpoint payload to resume from (or None)."""
    cfg_path = run_dir / "config.yaml"
    if not resume:
        if cfg_path.exists() or list_checkpoints(run_dir):
            raise DomrandError(
                f"{str(run_dir)!r} already holds a run; pass --resume to continue it, or choose "
                "another --out"
            )
        try:
            (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DomrandError(f"cannot create run directory {str(run_dir)!r}: {e}") from None
        # spec.yaml first: config.yaml marks a run that --resume can continue (a kill between
        # the two must not leave a run whose spec.yaml is missing)
        if spec is not None:
            spec.save(run_dir / "spec.yaml")
        else:
            atomic_write_text(run_dir / "spec.yaml", "# no randomization: nominal dynamics\n")
        atomic_write_text(cfg_path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        return None
    if not cfg_path.exists():
        raise CheckpointError(f"nothing to resume in {str(run_dir)!r} (no config.yaml)")
    saved = load_config(cfg_path)
    diffs = [
        f"{k}={getattr(saved, k)!r} (now {getattr(cfg, k)!r})"
        for k in saved.to_dict()
        if k not in RESUMABLE_CHANGES and getattr(saved, k) != getattr(cfg, k)
    ]
    if diffs:
        raise CheckpointError(
            f"cannot resume {str(run_dir)!r}: it was trained with " + ", ".join(diffs[:3])
        )
    spec_path = run_dir / "spec.yaml"
    saved_spec = None
    if spec_path.exists() and spec_path.read_text(encoding="utf-8").lstrip().startswith("#"):
        saved_spec = None
    elif spec_path.exists():
        saved_spec = load_spec(spec_path).to_dict()
    now = None if spec is None else spec.to_dict()
    if saved_spec != now:
        raise CheckpointError(
            f"cannot resume {str(run_dir)!r}: its spec.yaml differs from the spec given now"
        )
    atomic_write_text(cfg_path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    remove_stale_temporaries(run_dir)
    latest = latest_checkpoint(run_dir)
    return None if latest is None else load_checkpoint(latest)


def _critic_knobs(
    spec0: RandomizationSpec | None, payload: dict[str, Any] | None, warm: WarmStart | None
) -> tuple[str, ...]:
    """The knobs a privileged critic sees: a resumed run's or a warm start's own (the weights
    fit them), else those the training spec draws per episode."""
    if payload is not None:
        return RunInfo.from_dict(payload["run_info"], "checkpoint").net_config.critic_knobs
    if warm is not None:
        return warm.info.net_config.critic_knobs
    return critic_knobs(spec0)


def _check_payload(payload: dict[str, Any], cfg: TrainConfig, net: NetConfig, src: str) -> None:
    info = RunInfo.from_dict(payload["run_info"], src)
    if info.env_id != cfg.env:
        raise CheckpointError(f"checkpoint {src!r} is for {info.env_id}, not {cfg.env}")
    if info.net_config != net:
        raise CheckpointError(f"checkpoint {src!r} holds a different network ({info.net_config})")
    for key in ("optimizer", "rng", "trainer"):
        if key not in payload:
            raise CheckpointError(f"checkpoint {src!r} cannot be resumed: no {key!r} entry")


# ---------------------------------------------------------------------- the loop
def train(
    cfg: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    spec: RandomizationSpec | str | os.PathLike[str] | None = None,
    guide: Guide | None = None,
    resume: bool = False,
    progress: bool = True,
    console: Console | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
    init_from: str | os.PathLike[str] | None = None,
    backend: Backend | None = None,
) -> TrainResult:
    """Train (or, with ``resume``, continue) a run in ``run_dir``.

    Args:
        cfg: the resolved configuration.
        spec: the training spec (a spec or a file); ignored when ``guide`` is given.
        guide: where the training domains come from while training runs (default
            ``SpecSource(spec)``).
        resume: continue the run in ``run_dir`` from its latest checkpoint.
        progress: show a progress bar (terminal) or periodic progress lines.
        callback: called with every metrics row (e.g. to stop at a return threshold by raising).
        init_from: a run directory or checkpoint whose weights (observation normalizer included)
            a new run starts from: a warm start, e.g. fine-tuning under another spec. The
            optimizer starts fresh. Unused when resuming from a checkpoint of ``run_dir``.
        backend: a started rollout backend to run the envs on (default: one opened from
            ``cfg.backend``/``workers``/``address`` and closed at the end).

    Raises:
        DomrandError: ``run_dir`` already holds a run (without ``resume``), or invalid inputs.
        CheckpointError: the run to resume is missing, corrupt, or does not match ``cfg``/spec.
        SpecError: the spec does not fit the env.
    """
    from domrand import __version__
    from domrand.registry import knobs_for, make_vec

    run_dir = Path(run_dir)
    console = console or Console(stderr=True, highlight=False)
    if guide is None:
        if spec is not None and not isinstance(spec, RandomizationSpec):
            spec = load_spec(spec, env=knobs_for(cfg.env))
        guide = SpecSource(spec)
    elif spec is not None:
        raise DomrandError("give a spec or a guide, not both")
    spec0 = guide.training_spec()
    # The workers start before anything is written: a backend that cannot start (Ray missing,
    # too many workers for the cluster) leaves no half-made run directory behind.
    pool = backend if backend is not None else open_backend(cfg.backend_config())
    try:
        payload = _prepare_run_dir(run_dir, cfg, spec0, resume)
        if payload is not None and "guide" in payload:
            guide.load_state_dict(payload["guide"])
            spec0 = guide.training_spec()
        envs = make_vec(
            cfg.env,
            cfg.num_envs,
            spec=spec0,
            seed=cfg.seed,
            autoreset_mode=gym.vector.AutoresetMode.DISABLED,
            backend=pool,
        )
    except BaseException:
        if backend is None:
            pool.close()
        raise
    threads_act, threads_update = _threads(cfg)
    threads_before = torch.get_num_threads()  # restored on exit: the setting is process-wide
    metrics: MetricsWriter | None = None
    reporter: ProgressReporter | None = None
    try:
        net = net_config_for(cfg, envs)
        # a warm start is unused when resuming from a checkpoint of run_dir
        warm = read_warm_start(init_from) if payload is None and init_from is not None else None
        if cfg.privileged_critic:
            net = replace(net, critic_knobs=_critic_knobs(spec0, payload, warm))
        features = DomainFeatures(net.critic_knobs, knobs_for(cfg.env)) if net.priv_dim else None
        generator = torch.Generator().manual_seed(cfg.seed)
        policy = build_policy(net, generator)
        optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate, eps=1e-5)
        if warm is not None:
            policy.load_state_dict(warm.weights_for(net))
        iteration, env_steps, episodes_total, faults_total, elapsed0 = 0, 0, 0, 0, 0.0
        recent: collections.deque[float] = collections.deque(maxlen=100)
        scaler = RewardScaler(cfg.num_envs, cfg.gamma)
        if payload is not None:
            src = str(latest_checkpoint(run_dir) or run_dir)
            try:
                _check_payload(payload, cfg, net, src)
                policy.load_state_dict(payload["model"])
                optimizer.load_state_dict(payload["optimizer"])
                generator.set_state(payload["rng"]["torch"])
                t = payload["trainer"]
                iteration, env_steps = int(t["iteration"]), int(t["env_steps"])
                episodes_total, faults_total = int(t["episodes"]), int(t["faults"])
                elapsed0 = float(t["elapsed"])
                recent.extend(float(r) for r in t["recent_returns"])
                scaler.load_state_dict(t["reward_scaler"])
            except CheckpointError:
                raise
            except (KeyError, TypeError, ValueError, RuntimeError) as e:
                # a tampered or foreign checkpoint: missing sections, wrong shapes or counters
                raise CheckpointError(
                    f"{src}: checkpoint does not match this run ({e.__class__.__name__}: "
                    f"{str(e).splitlines()[0][:120] if str(e) else 'missing data'})"
                ) from None
            console.print(
                f"resuming {run_dir} from step {env_steps} (iteration {iteration})", soft_wrap=True
            )
        elif resume:
            console.print(
                f"no checkpoint in {run_dir} yet: starting it from step 0", soft_wrap=True
            )
        metrics = MetricsWriter(run_dir, resume_step=env_steps if resume else None)
        reporter = ProgressReporter(cfg.iterations * cfg.batch, env_steps, console, progress)
        collector = Collector(envs, policy, guide, generator, features)
        hidden = policy.initial_state(1).h.shape[-1]  # 0 for the MLP
        buf = Rollout(cfg.num_steps, cfg.num_envs, net.obs_dim, net.act_dim, hidden, net.priv_dim)
        control_period = float(envs.get_attr("control_period")[0])
        obs_space = envs.single_observation_space
        t_start = time.perf_counter()
        steps_start = env_steps
        last_ckpt: Path | None = None

        def payload_now() -> dict[str, Any]:
            current = guide.training_spec()
            info = RunInfo(
                env_id=cfg.env,
                net_config=net,
                spec=None if current is None else current.to_dict(),
                control_period=control_period,
                obs_low=[float(v) for v in obs_space.low.ravel()],  # type: ignore[attr-defined]
                obs_high=[float(v) for v in obs_space.high.ravel()],  # type: ignore[attr-defined]
                act_low=list(net.act_low or ()),
                act_high=list(net.act_high or ()),
                env_steps=env_steps,
                seed=cfg.seed,
                domrand_version=__version__,
                iteration=iteration,
                config=cfg.to_dict(),
            )
            return {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "run_info": info.to_dict(),
                "model": policy.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": {"torch": generator.get_state()},
                "guide": guide.state_dict(),
                "trainer": {
                    "iteration": iteration,
                    "env_steps": env_steps,
                    "episodes": episodes_total,
                    "faults": faults_total,
                    "elapsed": elapsed0 + time.perf_counter() - t_start,
                    "recent_returns": list(recent),
                    "reward_scaler": scaler.state_dict(),
                },
                "config": cfg.to_dict(),
            }

        while iteration < cfg.iterations:
            if iteration % cfg.checkpoint_iters == 0:
                collector.reset(_segment_seeds(cfg.seed, iteration, cfg.num_envs))
            if cfg.anneal_lr:
                frac = 1.0 - iteration / cfg.iterations
                optimizer.param_groups[0]["lr"] = cfg.learning_rate * frac
            # ---- act
            _set_threads(threads_act)
            policy.eval()
            episodes = collector.collect(buf)
            # ---- learn
            _set_threads(threads_update)
            policy.train()
            rewards = buf.rewards
            if cfg.norm_reward:
                scaler.update(buf.rewards, buf.ended)
                rewards = buf.rewards / scaler.scale
            adv, returns = compute_gae(
                rewards,
                buf.values,
                buf.ended,
                buf.final_values,
                buf.last_values,
                cfg.gamma,
                cfg.gae_lambda,
            )
            seqs = make_sequences(buf, adv, returns, cfg.seq_len)
            stats = ppo_update(policy, optimizer, seqs, cfg, generator)
            # The normalizer moves only now, after the update that used the old statistics
            # (acting and the update must see identical inputs).
            if cfg.norm_obs:
                policy.obs_norm.update(buf.obs.reshape(-1, net.obs_dim))
            if net.priv_dim:  # the critic's features are always standardized
                policy.critic_norm.update(buf.priv.reshape(-1, net.priv_dim))
            iteration += 1
            env_steps += cfg.batch
            guide.on_update(policy, env_steps)  # before the checkpoint, so it holds the result
            # ---- log
            row = _metrics_row(episodes, stats, iteration, env_steps, optimizer, policy)
            good = [e.ret for e in episodes if not e.fault]
            recent.extend(good)
            episodes_total += len(episodes)
            faults_total += row["faults"]
            now = time.perf_counter() - t_start
            row["time_s"] = elapsed0 + now
            row["steps_per_s"] = (env_steps - steps_start) / max(now, 1e-9)
            metrics.write(row)
            recent_mean = float(np.mean(recent)) if recent else math.nan
            reporter.update(env_steps, recent_mean, row["steps_per_s"], iteration == cfg.iterations)
            if iteration % cfg.checkpoint_iters == 0 or iteration == cfg.iterations:
                last_ckpt = save_checkpoint(checkpoint_path(run_dir, env_steps), payload_now())
                for old in list_checkpoints(run_dir)[: -cfg.keep_checkpoints]:
                    old.unlink(missing_ok=True)
            if callback is not None:
                callback({**row, "recent_return": recent_mean})
        elapsed = time.perf_counter() - t_start
        return TrainResult(
            run_dir=run_dir,
            env_steps=env_steps,
            iterations=iteration,
            elapsed=elapsed,
            steps_per_s=(env_steps - steps_start) / max(elapsed, 1e-9),
            recent_return=float(np.mean(recent)) if recent else math.nan,
            checkpoint=last_ckpt or latest_checkpoint(run_dir),
        )
    finally:
        _set_threads(threads_before)
        if reporter is not None:
            reporter.close()
        if metrics is not None:
            metrics.close()
        envs.close()
        if backend is None:
            pool.close()


def _metrics_row(
    episodes: list[Episode],
    stats: Any,
    iteration: int,
    env_steps: int,
    optimizer: torch.optim.Optimizer,
    policy: ActorCritic,
) -> dict[str, Any]:
    """One metrics.csv row. Physics-fault episodes are counted, not averaged into returns."""
    good = [e for e in episodes if not e.fault]
    rets = np.array([e.ret for e in good])
    return {
        "env_steps": env_steps,
        "iteration": iteration,
        "episodes": len(good),
        "return_mean": float(rets.mean()) if good else math.nan,
        "return_std": float(rets.std()) if good else math.nan,
        "length_mean": float(np.mean([e.length for e in good])) if good else math.nan,
        "success_rate": float(np.mean([e.success for e in good])) if good else math.nan,
        "faults": len(episodes) - len(good),
        "policy_loss": stats.policy_loss,
        "value_loss": stats.value_loss,
        "entropy": stats.entropy,
        "approx_kl": stats.approx_kl,
        "clip_frac": stats.clip_frac,
        "explained_var": stats.explained_var,
        "learning_rate": float(optimizer.param_groups[0]["lr"]),
        "action_std": float(policy.action_std().detach().mean()),
    }

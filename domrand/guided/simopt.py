"""SimOpt (Chebotar et al. 2019): fit the simulation-parameter distribution to real trajectories.

P_phi = N(mu, Sigma) with a full covariance over the tuned knobs (in the knobs' own units,
clipped to the starting spec's ranges); the starting spec's other entries (latency, noise...) stay
as they are. The output of every iteration is that spec with the tuned knobs as one
``correlated: [{dist: mvnormal, ...}]`` group, which ``domrand train --spec`` accepts.

The loop, top to bottom (:meth:`SimOpt.run`):

0. phi_0 moment-matches the starting spec on the tuned knobs.
1. **train** the policy on P_phi_k (each phase warm-starts from the previous one);
2. **real rollouts**: run it on the target ``real_rollouts`` times with pre-drawn action noise
   (the policy's own exploration noise by default: the excitation that makes the knobs
   identifiable); the trajectories are saved before anything else happens;
3. ``updates`` times, reusing those rollouts (and, with ``reuse``, every earlier iteration's,
   each replayed with the policy that ran it): draw ``samples`` domains xi ~ P_phi, replay every
   real rollout in simulation with the *same closed-loop policy and noise* from the real initial
   state (:mod:`domrand.guided.replay`), cost c(xi) = sum of D(tau_sim, tau_real) (weighted L1 + L2
   with Gaussian time smoothing, :mod:`domrand.guided.discrepancy`; W fixed per iteration, by the
   real rollouts' spread or by the replay noise of a perfect model), then update phi: REPS with a
   KL bound (:mod:`domrand.guided.reps`) or one CMA-ES generation. With ``restarts: K`` (REPS)
   the updates run from K starting means (the current one, then draws from the starting spec),
   each final mean is replayed against every real rollout (``select_replays`` jittered times),
   and the lowest cost is kept. ``aggregate: log`` adds log D_j over the rollouts instead of D_j.
   With ``polish: R``, R rounds of a surrogate polish follow: samples around the mean, a
   least-squares quadratic through all of their costs, the mean moved toward its minimum
   (:mod:`domrand.guided.polish`; it averages out a rough cost floor). The three moves of
   phi live in :mod:`domrand.guided.simopt_phi`;
4. write ``iter_<k+1>/spec.yaml``; repeat. A final phase fine-tunes the policy on the last P_phi.

The state is checkpointed after every phase, every real-rollout batch and every update.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from domrand.errors import ConfigError, DomrandError
from domrand.guided.actor import Actor, ControllerActor, EpisodePolicy
from domrand.guided.discrepancy import Discrepancy
from domrand.guided.polish import n_features
from domrand.guided.replay import IdlePolicy, Replayer, cut
from domrand.guided.simopt_phi import KnobGaussian, finish_restart, phi_update, polish_round
from domrand.guided.simopt_settings import SimOptSettings
from domrand.guided.state import (
    Budget,
    Checkpointer,
    default_knobs,
    doc_without,
    knob_box,
    knob_moments,
    record_iteration,
    require_tunable,
    train_phase,
)
from domrand.spec import Domain, RandomizationSpec, load_spec
from domrand.target import RecordedTarget, TargetDomain, Trajectory

if TYPE_CHECKING:
    from domrand.policies.config import TrainConfig

__all__ = ["SimOpt", "SimOptSettings"]

#: real rollouts replayed by one actor (None: open loop), with their pre-drawn noise
_Batch = tuple["Actor | ControllerActor | None", list[Trajectory], list["np.ndarray | None"]]

_NOISE_STREAM, _JITTER_STREAM = 0x6E6F69, 0x6A6974


class SimOpt:
    """One SimOpt run (see the module docstring).

    Args:
        env_id: the simulator.
        spec: the starting (widest) spec, bound to the env.
        target: where real rollouts come from.
        out: the run folder (:mod:`domrand.guided.state`).
        settings: see :class:`SimOptSettings`.
        cfg: the trainer settings of every phase (steps are set per phase).
        obs_weights: per-observation-dimension weights W (default: 1 / std of the real ones).
        probe: a fixed closed-loop controller that runs the real rollouts (and their replays)
            instead of the policy being trained, e.g. a scripted excitation controller for a task
            a policy trained on a small budget does not yet act in (a pusher that never touches
            the puck cannot reveal the puck's mass). Its noise is pre-drawn like the policy's.
    """

    def __init__(
        self,
        env_id: str,
        spec: RandomizationSpec,
        target: TargetDomain,
        out: Path,
        settings: SimOptSettings,
        cfg: TrainConfig,
        seed: int,
        obs_weights: Sequence[float] | None = None,
        probe: ControllerActor | None = None,
    ) -> None:
        from domrand.registry import knobs_for

        require_tunable(spec, "SimOpt")
        self.env_id, self.target, self.out, self.s, self.cfg = env_id, target, out, settings, cfg
        self.seed = seed
        self.probe = probe
        self.obs_weights = None if obs_weights is None else tuple(float(w) for w in obs_weights)
        knobs = tuple(settings.knobs if settings.knobs is not None else default_knobs(spec))
        self.base_doc = doc_without(spec, knobs)
        env_knobs = knobs_for(env_id)
        if settings.polish > 0 and settings.polish_samples < n_features(len(knobs)) + 1:
            raise ConfigError(
                f"setting polish_samples must be > {n_features(len(knobs))} for "
                f"{len(knobs)} tuned knobs (a quadratic's coefficients), got "
                f"{settings.polish_samples}"
            )
        mean0, cov0 = knob_moments(spec, knobs)
        lo, hi = knob_box(spec, knobs, mean0, np.sqrt(np.diag(cov0)), env_knobs)
        integer = np.array([env_knobs[k].integer for k in knobs])
        self.phi = KnobGaussian(knobs, integer, mean0, cov0, lo, hi, settings.min_std, seed)
        recorded = isinstance(target, RecordedTarget)
        replay = (
            settings.replay if settings.replay != "auto" else ("open" if recorded else "closed")
        )
        if replay == "closed" and recorded:
            raise DomrandError(
                "closed-loop replay runs SimOpt's own policy in simulation, so the real rollouts "
                "must come from it too, which a recording cannot do (use replay: open)"
            )
        if not recorded and settings.train_steps == 0 and probe is None:
            raise DomrandError(
                "the real rollouts need a policy to run: train_steps must be > 0 (or pass a "
                "probe controller)"
            )
        self.recorded = recorded
        self.closed = replay == "closed"
        pins = {}
        if settings.sim_domain is not None:
            from domrand.spec import load_domain

            pins = load_domain(settings.sim_domain, env_knobs)
        self.pins = pins

    # ------------------------------------------------------------------ the distribution
    @property
    def knobs(self) -> tuple[str, ...]:
        """The tuned knobs, in the order of phi's mean and covariance."""
        return self.phi.knobs

    def spec_of(self, mean: np.ndarray, cov: np.ndarray, note: str) -> RandomizationSpec:
        """The starting spec with the tuned knobs drawn from N(mean, cov), clipped to the box."""
        from domrand.registry import knobs_for

        doc = {**self.base_doc, "description": f"SimOpt: {note}"}
        params = dict(doc.get("parameters", {}))
        groups = list(doc.get("correlated", []))
        mean = self.phi.clip(mean)
        if len(self.knobs) == 1:  # a group needs two knobs: one knob is a clipped normal
            params[self.knobs[0]] = {
                "dist": "normal",
                "mean": float(mean[0]),
                "std": float(math.sqrt(cov[0, 0])),
                "clip": [float(self.phi.lo[0]), float(self.phi.hi[0])],
            }
        else:
            groups.append(
                {
                    "knobs": list(self.knobs),
                    "dist": "mvnormal",
                    "mean": [float(m) for m in mean],
                    "cov": [[float(c) for c in row] for row in 0.5 * (cov + cov.T)],
                    "clip": [[float(a), float(b)] for a, b in zip(self.phi.lo, self.phi.hi)],
                }
            )
        doc["parameters"] = params
        if groups:
            doc["correlated"] = groups
        return load_spec(doc, env=knobs_for(self.env_id))

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict[str, Any]:
        """Run (or continue) the loop; return the report."""
        s, out = self.s, self.out
        ck = Checkpointer(out, self._fresh_state)
        state, budget, history = ck.state, ck.budget, ck.history
        if not history:
            spec0 = self.spec_of(
                self.phi.mean0, self.phi.cov0, "iteration 0 (moment-matched start)"
            )
            record_iteration(out, history, 0, spec0, self.knobs, budget)
            ck.save()
        segment = s.segment if s.segment is not None else (0 if self.closed else 20)
        # batches of sim_envs domains run on the run's rollout backend (cfg.backend)
        replayer = Replayer(
            self.env_id, self.pins, s.sim_envs, segment, backend=self.cfg.backend_config()
        )
        try:
            while state["iteration"] < s.iterations:
                k = state["iteration"]
                mean, cov = np.array(state["mean"]), np.array(state["cov"])
                spec_k = self.spec_of(mean, cov, f"iteration {k}")
                # 1. train on P_phi_k (warm start from the previous phase)
                if state["step"] == "train":
                    if s.train_steps > 0:
                        steps = s.train_steps if k == 0 else s.finetune_steps
                        budget.train_steps += self._train(f"iter_{k}", spec_k, steps, state)
                    state["step"] = "rollouts"
                    ck.save()
                actor = self._actor(state)
                # 2. real rollouts, saved before they are used
                if state["step"] == "rollouts":
                    self._real_rollouts(k, actor, budget)
                    state.update(step="update", update=0)
                    ck.save()
                batches = self._batches(k, actor)
                replayer.jitter = self._jitter(batches)
                before = replayer.steps
                disc = self._discrepancy(state, batches, replayer)
                budget.sim_steps += replayer.steps - before
                cost = partial(self._costs, batches, disc, replayer)
                # 3. phi updates reusing the real rollouts (from each of ``restarts`` starts)
                if state.get("start") is None:
                    state.update(start={"mean": state["mean"], "cov": state["cov"]}, restart=0)
                    state["finished"] = []
                while True:
                    while state["update"] < s.updates:
                        u = state["update"]
                        before = replayer.steps
                        stats = phi_update(self.phi, s, state, k, u, cost)
                        budget.sim_steps += replayer.steps - before
                        state["update"] = u + 1
                        state["last_update"] = stats
                        ck.save()
                    if s.restarts == 1 or state["restart"] >= s.restarts:
                        break  # (the second: resumed after the last start was scored)
                    before = replayer.steps
                    finish_restart(self.phi, s, state, k, cost)
                    budget.sim_steps += replayer.steps - before
                    ck.save()
                    if state["restart"] >= s.restarts:
                        break
                # 3b. surrogate polish of the mean
                while state.get("polish_round", 0) < s.polish:
                    before = replayer.steps
                    polish_round(self.phi, s, state, k, cost)
                    budget.sim_steps += replayer.steps - before
                    ck.save()
                # 4. record the new distribution
                state.update(iteration=k + 1, step="train", weights=None, start=None)
                state.update(polish=None, polish_round=0)
                mean, cov = np.array(state["mean"]), np.array(state["cov"])
                spec_next = self.spec_of(mean, cov, f"iteration {k + 1}")
                record_iteration(
                    out, history, k + 1, spec_next, self.knobs, budget, **state["last_update"]
                )
                ck.save()
        finally:
            replayer.close()
        final = self.spec_of(np.array(state["mean"]), np.array(state["cov"]), "final")
        if s.final_steps > 0 and s.train_steps > 0 and state.get("final") is None:
            budget.train_steps += self._train("final", final, s.final_steps, state)
            state["final"] = state["policy"]
            ck.save()
        return self._report(state, budget, final)

    def _fresh_state(self) -> dict[str, Any]:
        return {
            "method": "simopt",
            "knobs": list(self.knobs),
            "iteration": 0,
            "step": "train",
            "update": 0,
            "mean": self.phi.mean0.tolist(),
            "cov": self.phi.cov0.tolist(),
            "cma": None,
            "policy": None,
            "final": None,
            "last_update": {},
            "weights": None,
            "start": None,  #: this iteration's starting mean/cov (multi-start)
            "restart": 0,
            "finished": [],  #: the finished starts of this iteration: mean, cov, cost
            "polish": None,  #: this iteration's polish: frame, centre, pooled samples
            "polish_round": 0,
            "budget": Budget().to_dict(),
            "history": [],
        }

    def _train(self, name: str, spec: RandomizationSpec, steps: int, state: dict[str, Any]) -> int:
        previous = None if state["policy"] is None else self.out / state["policy"]
        run_dir = self.out / "policy" / name
        result = train_phase(
            run_dir, self.cfg, spec, steps, init_from=previous, method="simopt", state=state
        )
        state["policy"] = f"policy/{name}"
        return result.env_steps

    def _actor(self, state: dict[str, Any]) -> Actor | ControllerActor | None:
        """What runs the real rollouts (and, closed loop, their replays): ``None`` for a
        recording."""
        if self.recorded:
            return None
        if self.probe is not None:
            return self.probe
        from domrand.policies.checkpoint import load_policy

        policy, _ = load_policy(self.out / state["policy"])
        return Actor(policy, noise_std=self.s.excitation)

    def _batches(self, k: int, actor: Actor | ControllerActor | None) -> list[_Batch]:
        """The real rollouts iteration k scores samples against, grouped by what ran them."""
        batches = []
        for i in range(k + 1) if self.s.reuse else (k,):
            folder = self.out / f"iter_{i}" / "real"
            trajs = [Trajectory.load(folder / f"ep_{j}.npz") for j in range(self.s.real_rollouts)]
            noises = [self._noise(i, j) for j in range(self.s.real_rollouts)]
            ran = actor
            if i != k and self.probe is None and not self.recorded:
                from domrand.policies.checkpoint import load_policy

                policy, _ = load_policy(self.out / "policy" / f"iter_{i}")
                ran = Actor(policy, noise_std=self.s.excitation)
            batches.append((ran if self.closed else None, trajs, noises))
        return batches

    def _noise(self, k: int, j: int) -> np.ndarray | None:
        """The pre-drawn action noise of real rollout j of iteration k (``None``: none)."""
        if self.recorded or self.s.excitation == 0:
            return None
        act_dim = int(np.prod(self.target.action_space.shape))
        ss = np.random.SeedSequence(self.seed, spawn_key=(_NOISE_STREAM, k, j))
        return np.random.default_rng(ss).standard_normal((self.s.horizon, act_dim))

    def _real_rollouts(
        self, k: int, actor: Actor | ControllerActor | None, budget: Budget
    ) -> list[Trajectory]:
        trajs = []
        for j in range(self.s.real_rollouts):
            policy = EpisodePolicy(actor, self._noise(k, j)) if actor is not None else IdlePolicy()
            traj = self.target.rollout(policy, 1)[0]
            if len(traj) > self.s.horizon:  # a recording may be longer than the horizon
                traj = cut(traj, self.s.horizon)
            traj.save(self.out / f"iter_{k}" / "real" / f"ep_{j}.npz")
            budget.real_rollouts += 1
            budget.real_steps += len(traj)
            trajs.append(traj)
        return trajs

    def _discrepancy(
        self, state: dict[str, Any], batches: Sequence[_Batch], replayer: Replayer
    ) -> Discrepancy:
        """The discrepancy of this iteration; W is fixed once per iteration (and saved)."""
        s, weights = self.s, self.obs_weights
        if weights is None and state.get("weights") is None:
            real = [t for _, trajs, _ in batches for t in trajs]
            std = np.concatenate([t.observations for t in real]).std(axis=0)
            # W: each observation dimension in units of its spread over the real rollouts ...
            scale = std + 0.01 * std.mean() + 1e-12
            if s.weighting == "noise":  # ... or of what a perfect model still gets wrong
                (domain,) = self.phi.domains(self.phi.clip(np.array(state["mean"]))[None])
                sq = [replayer.replay_noise(domain, t, a, z) ** 2 for a, t, z in batches]
                scale = np.sqrt(np.mean(sq, axis=0)) + 1e-3 * std + 1e-12
            state["weights"] = (1.0 / scale).tolist()
        if weights is None:
            weights = tuple(state["weights"])
        return Discrepancy(s.w_l1, s.w_l2, s.smoothing, s.truncate, weights)

    def _jitter(self, batches: Sequence[_Batch]) -> np.ndarray | None:
        """The replays' start-state perturbation std per dimension (``None``: no jitter)."""
        if self.s.jitter == 0:
            return None
        real = np.concatenate([t.observations for _, trajs, _ in batches for t in trajs])
        return self.s.jitter * real.std(axis=0)

    def _costs(
        self,
        batches: Sequence[_Batch],
        disc: Discrepancy,
        replayer: Replayer,
        domains: list[Domain],
        key: tuple[int, ...],
    ) -> np.ndarray:
        """Each domain's cost over every batch of real rollouts (``aggregate``; seeded jitter)."""
        total = np.zeros(len(domains))
        for b, (actor, trajs, noises) in enumerate(batches):
            seeds = None
            if replayer.jitter is not None:
                ss = np.random.SeedSequence(self.seed, spawn_key=(_JITTER_STREAM, *key, b))
                seeds = [int(v) for v in ss.generate_state(len(domains))]
            total = total + replayer.costs(
                domains, trajs, disc, actor, noises, seeds, self.s.aggregate
            )
        return total

    def _report(
        self, state: dict[str, Any], budget: Budget, final: RandomizationSpec
    ) -> dict[str, Any]:
        mean, cov = np.array(state["mean"]), np.array(state["cov"])
        return {
            "method": "simopt",
            "env": self.env_id,
            "knobs": {
                k: {"mean": float(m), "std": float(math.sqrt(c))}
                for k, m, c in zip(self.knobs, mean, np.diag(cov))
            },
            "replay": "closed" if self.closed else "open",
            "backend": self.s.backend,
            "budget": budget.to_dict(),
            "spec": str(self.out / "spec.yaml"),
            "policy": None if state["policy"] is None else str(self.out / state["policy"]),
            "final_spec": final.to_dict(),
        }

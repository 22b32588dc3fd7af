"""Replaying real rollouts in simulation, for SimOpt's trajectory discrepancy.

For a sampled domain xi and a real trajectory tau_real, :class:`Replayer` simulates tau_sim(xi):

* **closed loop** (the SimOpt setting): the *same* policy runs on the simulated observations, with
  the same pre-drawn action noise as the real rollout (:mod:`domrand.guided.actor`);
* **open loop** (for recordings made by an unknown policy): the recorded actions are replayed.

Either can restart the simulation from the real state every ``segment`` steps (multiple
shooting; the policy then acts on the real state, and the prediction made just before is what is
compared). Open-loop predictions of an unstable system (a cart-pole) diverge within a second for
any parameter error, which leaves a cost landscape that is flat except in a needle around the
truth; contact-rich pushing in pybullet is chaotic at the solver level (a 1e-9 m change of a
puck's start moves the pusher by ~1e-3 m/s after one step). Short segments measure k-step
prediction errors instead, which grow smoothly with the parameter error. (A restart empties the
actuator-latency queue, so segments are approximate under ``action.delay``.)

With ``jitter`` (a per-dimension std), every replay of a domain starts, and restarts, from the
real state plus its own small Gaussian perturbation, drawn from a seed that comes with the domain
(so the numbers still do not depend on where a batch runs). In a chaotic contact simulation a
replay's cost is then a draw around the *expected* cost over states the sensors cannot tell apart,
instead of a fixed value that jumps between neighbouring parameters: a rough floor in which an
optimizer can settle at a wrong point that happens to replay well.

Either way the simulation starts from the real initial state (``reset(options={"state": o_0})``)
and runs exactly as many steps as the real rollout, ignoring termination (a simulated pole that
falls early must not shorten the comparison and look cheap). A rollout the simulator breaks
(``info["physics_fault"]``) costs ``inf``. Domains are simulated in batches of ``num_envs``
envs stepping in lockstep, so the policy runs batched. :meth:`Replayer.costs` sends each batch to
a rollout-backend worker (:func:`domrand.backends.run_chunks`), which keeps its envs across
updates; a batch's numbers do not depend on where it runs, and a batch whose worker dies is re-run.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from domrand.backends import Backend, BackendConfig, WorkerHost, open_backend, run_chunks
from domrand.errors import DomrandError
from domrand.guided.actor import Actor, ControllerActor
from domrand.guided.discrepancy import Discrepancy
from domrand.spec import Domain
from domrand.target import Trajectory

__all__ = ["IdlePolicy", "Replayer", "cut"]

_JITTER_STREAM = 0x6A6974
_LOG_FLOOR = 1e-9  #: added to a discrepancy before its log (an exact replay costs 0)


class Replayer:
    """A pool of simulated envs that replays real trajectories under sampled domains.

    Args:
        env_id: the simulator.
        pins: knob values every simulation uses (other knobs run at their nominal values).
        num_envs: pool size (domains per lockstep batch).
        segment: restart from the real state every this many steps (0: never).
        backend: where :meth:`costs` runs its batches (default ``local``: in this process).
    """

    def __init__(
        self,
        env_id: str,
        pins: Mapping[str, Any],
        num_envs: int = 16,
        segment: int = 0,
        backend: BackendConfig | None = None,
        jitter: np.ndarray | None = None,
    ) -> None:
        self.env_id, self.num_envs = env_id, num_envs
        self.pins = dict(pins)
        self.segment = segment
        #: per-observation-dimension std of the start/restart-state perturbation (None: none)
        self.jitter = None if jitter is None else np.asarray(jitter, dtype=np.float64)
        self._envs: list[Any] | None = None
        self.backend_config = backend or BackendConfig("local")
        self._backend: Backend | None = None
        self._key = f"replayer-{uuid.uuid4().hex}"
        self.steps = 0  #: simulation steps taken (the guide's own sim budget)

    @property
    def envs(self) -> list[Any]:
        """This process's pool (built on first use)."""
        if self._envs is None:
            import domrand

            self._envs = [domrand.make(self.env_id) for _ in range(self.num_envs)]
        return self._envs

    def close(self) -> None:
        for env in self._envs or []:
            env.close()
        self._envs = None
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def costs(
        self,
        domains: Sequence[Domain],
        real: Sequence[Trajectory],
        discrepancy: Discrepancy,
        actor: Actor | ControllerActor | None,
        noises: Sequence[np.ndarray | None],
        seeds: Sequence[int] | None = None,
        aggregate: str = "sum",
    ) -> np.ndarray:
        """Every domain's discrepancy over the real trajectories (``inf``: a fault).

        ``aggregate``: ``"sum"`` adds the trajectories' discrepancies D_j; ``"log"`` adds
        log(D_j), i.e. each trajectory's unknown noise scale profiled out of a Gaussian
        likelihood, so a few trajectories that no parameter replays well (a strike the contact
        solver decides) cannot outweigh all the others.

        Args:
            actor: the closed-loop policy, or ``None`` to replay the recorded actions.
            noises: the pre-drawn action noise of each real rollout (closed loop only).
            seeds: one per domain, for its replays' state jitter (needed with ``jitter``).
        """
        if self._backend is None:
            self._backend = open_backend(self.backend_config)
        n = self.num_envs
        keyed = list(zip(domains, self._seeds(domains, seeds)))
        chunks = [keyed[i : i + n] for i in range(0, len(keyed), n)]
        if aggregate not in ("sum", "log"):
            raise DomrandError(f"aggregate must be 'sum' or 'log', got {aggregate!r}")
        args = (self._key, self.env_id, self.pins, n, self.segment, self.jitter, aggregate)
        results = run_chunks(
            self._backend,
            _costs_chunk,
            chunks,
            args,
            real,
            discrepancy,
            noises,
            broadcast=actor,  # the policy: once per worker, not per chunk
        )
        self.steps += sum(steps for _, steps in results)
        if not results:
            return np.zeros(0)
        return np.concatenate([c for c, _ in results])

    def local_costs(
        self,
        domains: Sequence[Domain],
        real: Sequence[Trajectory],
        discrepancy: Discrepancy,
        actor: Actor | ControllerActor | None,
        noises: Sequence[np.ndarray | None],
        seeds: Sequence[int] | None = None,
        aggregate: str = "sum",
    ) -> np.ndarray:
        """:meth:`costs` computed with this process's pool."""
        total = np.zeros(len(domains))
        seeds = self._seeds(domains, seeds)
        for j, (traj, noise) in enumerate(zip(real, noises)):
            sims = self.simulate(domains, traj, actor, noise, [(s, j) for s in seeds])
            for i, sim in enumerate(sims):
                d = np.inf if sim is None else discrepancy(sim, traj.observations)
                total[i] += math.log(d + _LOG_FLOOR) if aggregate == "log" else d
        return total

    def _seeds(self, domains: Sequence[Domain], seeds: Sequence[int] | None) -> list[int]:
        if seeds is None:
            if self.jitter is not None:
                raise DomrandError("replays with state jitter need a seed per domain")
            return [0] * len(domains)
        if len(seeds) != len(domains):
            raise DomrandError(f"{len(seeds)} jitter seeds for {len(domains)} domains")
        return [int(s) for s in seeds]

    def replay_noise(
        self,
        domain: Domain,
        real: Sequence[Trajectory],
        actor: Actor | ControllerActor | None,
        noises: Sequence[np.ndarray | None],
    ) -> np.ndarray:
        """Per-dimension RMS replay error of a *perfect* model, ``[d]``.

        Each real rollout is first simulated under ``domain`` without restarts (a stand-in
        whose parameters are exactly ``domain``'s), then the stand-in is replayed under ``domain``
        exactly as real rollouts are (same restarts, actor, noise). Whatever differs is what no
        parameter can explain: float32 restart states, an emptied contact cache, solver chaos.
        """
        total, count = 0.0, 0
        jitter, self.jitter = self.jitter, None  # the floor of unperturbed replays
        try:
            for traj, noise in zip(real, noises):
                segment, self.segment = self.segment, 0
                try:
                    (twin,) = self.simulate([domain], traj, actor, noise)
                finally:
                    self.segment = segment
                if twin is None:
                    continue
                twin = twin.astype(np.float32).astype(np.float64)  # observed like the real ones
                stand_in = Trajectory(twin, traj.actions, traj.rewards, traj.timestamps, traj.infos)
                (again,) = self.simulate([domain], stand_in, actor, noise)
                if again is not None:
                    total = total + ((again - twin) ** 2).sum(axis=0)
                    count += len(twin)
        finally:
            self.jitter = jitter
        if count == 0:
            raise DomrandError("every simulated replay broke the simulator (physics faults)")
        return np.sqrt(np.asarray(total) / count)

    def simulate(
        self,
        domains: Sequence[Domain],
        real: Trajectory,
        actor: Actor | ControllerActor | None,
        noise: np.ndarray | None,
        keys: Sequence[tuple[int, int]] | None = None,
    ) -> list[np.ndarray | None]:
        """Simulated observation sequences ``[T + 1, d]`` of ``real``, one per domain.

        ``keys``: per domain, (seed, real-rollout index) of its state jitter (with ``jitter``).
        """
        out: list[np.ndarray | None] = []
        n = len(self.envs)
        for start in range(0, len(domains), n):
            part = None if keys is None else list(keys[start : start + n])
            out += self._batch(list(domains[start : start + n]), real, actor, noise, part)
        return out

    def _perturb(self, keys: Sequence[tuple[int, int]] | None, b: int) -> list[Any] | None:
        """One generator per env for the state jitter (``None``: no jitter)."""
        if self.jitter is None or not np.any(self.jitter > 0):
            return None
        if keys is None or len(keys) != b:
            raise DomrandError("replays with state jitter need a seed per domain")
        return [
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_JITTER_STREAM, j)))
            for seed, j in keys
        ]

    def _batch(
        self,
        domains: list[Domain],
        real: Trajectory,
        actor: Actor | ControllerActor | None,
        noise: np.ndarray | None,
        keys: Sequence[tuple[int, int]] | None = None,
    ) -> list[np.ndarray | None]:
        envs = self.envs[: len(domains)]
        b, steps = len(envs), len(real)
        domains = [{**self.pins, **d} for d in domains]
        rngs, jitter = self._perturb(keys, b), self.jitter

        def state(i: int, t: int) -> np.ndarray:
            o = real.observations[t]
            if rngs is None or jitter is None:
                return o
            return o + jitter * rngs[i].standard_normal(o.shape)

        first = [
            env.reset(options={"domain": d, "state": state(i, 0)})[0]
            for i, (env, d) in enumerate(zip(envs, domains))
        ]
        obs = np.empty((b, steps + 1, len(first[0])))
        obs[:, 0] = first
        ok = np.ones(b, dtype=bool)
        rewards = np.zeros(b)
        if actor is not None:
            actor.start(b, noise)
        for t in range(steps):
            seen = obs[:, t]
            if self.segment and t > 0 and t % self.segment == 0:
                # multiple shooting: obs[:, t] keeps the prediction (it is what gets compared),
                # the simulation restarts at the real state, and the policy acts on that state
                for i, env in enumerate(envs):
                    if ok[i]:
                        env.reset(options={"domain": domains[i], "state": state(i, t)})
                seen = np.broadcast_to(real.observations[t], obs[:, t].shape)
            if actor is not None:
                actions = actor.step(seen, rewards)
            else:
                actions = np.broadcast_to(real.actions[t], (b, real.actions.shape[1]))
            for i, env in enumerate(envs):
                if not ok[i]:  # a broken simulation only holds its last observation
                    obs[i, t + 1] = obs[i, t]
                    continue
                o, r, _, _, info = env.step(np.asarray(actions[i], dtype=np.float32))
                self.steps += 1
                obs[i, t + 1] = o
                rewards[i] = r
                ok[i] = not info.get("physics_fault", False)
        return [obs[i] if ok[i] else None for i in range(b)]


def _costs_chunk(
    host: WorkerHost,
    actor: Actor | ControllerActor | None,
    args: tuple[str, str, Mapping[str, Any], int, int, np.ndarray | None, str],
    real: Sequence[Trajectory],
    discrepancy: Discrepancy,
    noises: Sequence[np.ndarray | None],
    keyed: list[tuple[Domain, int]],
) -> tuple[np.ndarray, int]:
    """On a worker: the costs of one batch of domains, with the worker's own pool (kept)."""
    key, env_id, pins, num_envs, segment, jitter, aggregate = args
    replayer = host.resources.get(key)
    if replayer is None:
        replayer = host.resources[key] = Replayer(env_id, pins, num_envs, segment)
    replayer.jitter = jitter
    before = replayer.steps
    domains, seeds = [d for d, _ in keyed], [s for _, s in keyed]
    costs = replayer.local_costs(domains, real, discrepancy, actor, noises, seeds, aggregate)
    return costs, replayer.steps - before


class IdlePolicy:
    """The "policy" handed to a recording (which ignores it)."""

    def reset(self) -> None:
        return None

    def act(self, obs: np.ndarray) -> np.ndarray:
        raise DomrandError("a recorded target does not run policies")


def cut(traj: Trajectory, steps: int) -> Trajectory:
    """The first ``steps`` steps of ``traj``."""
    return Trajectory(
        traj.observations[: steps + 1],
        traj.actions[:steps],
        traj.rewards[:steps],
        traj.timestamps[: steps + 1],
        tuple(traj.infos[:steps]),
    )

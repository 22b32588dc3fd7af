"""Active Domain Randomization (Mehta et al. 2019): SVPG particles and a discriminator choose
the training domains while the recurrent PPO policy trains.

One round, top to bottom (:meth:`ActiveDRGuide.on_update`, every ``round_every`` training steps):

1. the particles' last proposals P (``num_particles x rollout_len`` points of [0,1]^N, mapped to
   domains with ``spec.denormalize``) are the domains the trainer's envs have trained on since the
   last round: :meth:`assignments` hands them out, the next one each time an env ends an episode;
2. the current policy runs one deterministic episode (cut at ``rollout_steps``) in every domain
   of P, and one in the reference env (the nominal domain) from the same start state;
3. each randomized trajectory's reward is ``log(mean_t D(s, a, s')) - log 0.5`` under the
   discriminator as it stands; then the discriminator trains on this round's transitions
   (randomized = 1, reference = 0);
4. SVPG updates the particles with those rewards and they propose the next P.

The transitions reach the discriminator through the guide's own rollouts (2.), because the
trainer reports only returns to a guide; the trainer calls :meth:`on_update` with its policy after
every PPO update. Everything (particles, their optimizers, the discriminator and its optimizer,
the assignment cursor, the history) is in :meth:`state_dict`, saved in the trainer checkpoint.

CPU budget: the SVPG and discriminator settings are the published ones except the SVPG learning
rate (3e-3 instead of 3e-4: a CPU run has ~10-100x fewer particle updates) and the discriminator
steps per round; rollouts are cut at ``rollout_steps``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from domrand.backends import BackendConfig
from domrand.errors import ConfigError
from domrand.guided.base import Guide
from domrand.guided.discriminator import Discriminator, DiscriminatorConfig, transition_features
from domrand.guided.rollouts import PolicyRunner
from domrand.guided.svpg import SVPG, SVPGConfig
from domrand.spec import Domain, RandomizationSpec

__all__ = ["ActiveDRGuide", "ActiveDRSettings", "run_cli"]

_ROUND_STREAM = 0x616472  # spawn key of the rollout seeds ("adr")


@dataclass(frozen=True)
class ActiveDRSettings:
    """Active-DR settings (``--config``/``--set``; sections ``svpg`` and ``discriminator``)."""

    svpg: SVPGConfig = field(default_factory=lambda: SVPGConfig(lr=3e-3))
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    round_every: int = 4096  #: training env steps between rounds
    rollout_steps: int = 50  #: cap of the discriminator rollouts (episode steps)
    rollout_envs: int = 10  #: envs in each of the guide's two rollout pools
    spec_every: int = 5  #: write OUT/specs/<steps>.yaml every this many rounds
    eval_episodes: int = 20  #: final evaluation on nominal and the target

    def __post_init__(self) -> None:
        for name in ("round_every", "rollout_steps", "rollout_envs", "spec_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.eval_episodes < 1:
            raise ConfigError(f"eval_episodes must be >= 1, got {self.eval_episodes!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ActiveDRGuide(Guide):
    """Trains a policy on the domains SVPG particles propose (see the module docstring).

    Args:
        env_id: the env.
        spec: the randomization spec; its bounded knobs span the particles' [0,1]^N, the others
            are sampled from it as usual.
        settings: the Active-DR settings.
        seed: seeds particles, discriminator and rollouts.
        out_dir: where ``particles.npz`` and the spec files go (``None``: nowhere).
        backend: where the particle rollouts run (default ``local``; the CLI passes the run's).
    """

    def __init__(
        self,
        env_id: str,
        spec: RandomizationSpec,
        settings: ActiveDRSettings,
        seed: int,
        out_dir: Path | None = None,
        backend: BackendConfig | None = None,
    ) -> None:
        self.env_id, self.spec, self.settings, self.seed = env_id, spec, settings, seed
        # The particles' axes: the bounded knobs drawn once per episode (a knob re-drawn every
        # step keeps being sampled by the spec; an exact domain would freeze it).
        per_step = set(spec.step_periods())
        self._axes = spec.bounded_knobs()
        self.names = tuple(k for k in self._axes if k not in per_step)
        if not self.names:
            raise ConfigError(
                f"{spec.source}: Active DR needs at least one knob with a bounded range to explore"
            )
        self.out_dir = out_dir
        self.svpg = SVPG(len(self.names), settings.svpg, seed)
        self._disc: Discriminator | None = None
        self._disc_state: Mapping[str, Any] | None = None  # loaded before the dims are known
        self._disc_generator = torch.Generator().manual_seed(seed + 1)
        self.proposals = self.svpg.propose()  # [n, T, dim]
        self.domains = self._to_domains(self.proposals)
        self.cursor = 0
        self.assigned: list[Domain | None] | None = None
        self.rounds = 0
        self.last_round_steps = 0
        self.guide_env_steps = 0
        # Per round: env steps, proposals [n, T, dim], rewards [n, T], discriminator stats.
        self.history: list[dict[str, Any]] = []
        # The particle rollouts run in chunks of rollout_envs on the backend's workers.
        self._randomized = PolicyRunner(env_id, spec, settings.rollout_envs, backend)
        self._reference = PolicyRunner(env_id, None, settings.rollout_envs, backend)

    # ------------------------------------------------------------------ the trainer's questions
    def training_spec(self) -> RandomizationSpec:
        return self.spec

    def assignments(self, num_envs: int) -> list[Domain | None]:
        if self.assigned is None or len(self.assigned) != num_envs:
            self.assigned = [self._next_domain() for _ in range(num_envs)]
        return list(self.assigned)

    def observe_episode(
        self,
        env_index: int,
        domain: Domain,
        episode_return: float,
        length: int,
        info: Mapping[str, Any],
    ) -> None:
        # The env that finished takes the next proposal for its next episode.
        if self.assigned is not None and 0 <= env_index < len(self.assigned):
            self.assigned[env_index] = self._next_domain()

    def _next_domain(self) -> Domain:
        d = self.domains[self.cursor % len(self.domains)]
        self.cursor += 1
        return dict(d)

    def _denormalize(self, point: np.ndarray) -> Domain:
        """A point of the particles' [0,1]^N as a domain of their knobs (spec.denormalize)."""
        full = np.full(len(self._axes), 0.5)
        for k, x in zip(self.names, point):
            full[self._axes.index(k)] = x
        d = self.spec.denormalize(full)
        return {k: d[k] for k in self.names}

    def _to_domains(self, points: np.ndarray) -> list[Domain]:
        return [self._denormalize(p) for p in points.reshape(-1, len(self.names))]

    # ------------------------------------------------------------------ one round
    def on_update(self, policy: Any, env_steps: int) -> None:
        if env_steps - self.last_round_steps < self.settings.round_every:
            return
        self.run_round(policy, env_steps)

    def _discriminator(self, policy: Any) -> Discriminator:
        if self._disc is None:
            width = 2 * policy.config.obs_dim + policy.config.act_dim
            self._disc = Discriminator(width, self.settings.discriminator, self._disc_generator)
            if self._disc_state is not None:
                self._disc.load_full_state(self._disc_state)
                self._disc_state = None
        return self._disc

    def run_round(self, policy: Any, env_steps: int) -> dict[str, Any]:
        """Score the current proposals, train the discriminator, update SVPG, propose anew."""
        s = self.settings
        disc = self._discriminator(policy)
        ss = np.random.SeedSequence(self.seed, spawn_key=(_ROUND_STREAM, self.rounds))
        seeds = [int(x.generate_state(1, np.uint32)[0]) for x in ss.spawn(len(self.domains))]
        steps_before = self._randomized.env_steps + self._reference.env_steps
        # Same seeds: each randomized episode has a reference twin from the same start state, so
        # the two differ by the dynamics (and the policy's reaction to them) only.
        rand = self._randomized.run(policy, list(self.domains), seeds, s.rollout_steps)
        ref = self._reference.run(policy, [None] * len(self.domains), seeds, s.rollout_steps)
        self.guide_env_steps += self._randomized.env_steps + self._reference.env_steps
        self.guide_env_steps -= steps_before
        rand_x = [transition_features(t.obs, t.actions) for t in rand]
        ref_x = [transition_features(t.obs, t.actions) for t in ref]
        # Rewards under the discriminator as it stands, before it sees this round's data.
        n, T = s.svpg.num_particles, s.svpg.rollout_len
        rewards = np.array([disc.reward(x) for x in rand_x]).reshape(n, T)
        fit = disc.fit(np.concatenate(rand_x), np.concatenate(ref_x))
        svpg_stats = self.svpg.update(rewards)
        self.history.append(
            {
                "env_steps": int(env_steps),
                "points": self.proposals.reshape(n * T, -1).tolist(),
                "rewards": rewards.reshape(-1).tolist(),
                "returns": [t.ret for t in rand],
                "reference_returns": [t.ret for t in ref],
                "disc_loss": fit["loss"],
                "disc_accuracy": fit["accuracy"],
                "value_loss": svpg_stats["value_loss"],
            }
        )
        self.proposals = self.svpg.propose()
        self.domains = self._to_domains(self.proposals)
        self.cursor = 0
        self.rounds += 1
        self.last_round_steps = env_steps
        if self.out_dir is not None:
            self.write_outputs()
        return self.history[-1]

    # ------------------------------------------------------------------ outputs
    def explored_ranges(self) -> dict[str, list[float]]:
        """Per knob, the [min, max] value of every domain the particles proposed so far."""
        pts = [np.asarray(h["points"]) for h in self.history] + [
            self.proposals.reshape(-1, len(self.names))
        ]
        allp = np.concatenate(pts)
        lo, hi = self._denormalize(allp.min(axis=0)), self._denormalize(allp.max(axis=0))
        return {k: [float(lo[k]), float(hi[k])] for k in self.names}

    def current_spec_dict(self) -> dict[str, Any]:
        """The box the current proposals span, as a spec (uniform per knob over that box)."""
        doc = self.spec.to_dict()
        pts = self.proposals.reshape(-1, len(self.names))
        lo, hi = self._denormalize(pts.min(axis=0)), self._denormalize(pts.max(axis=0))
        for k in self.names:
            a, b = float(lo[k]), float(hi[k])
            doc["parameters"][k] = a if a == b else {"dist": "uniform", "low": a, "high": b}
        doc["description"] = (
            f"Active DR: box of the particles' proposals after {self.rounds} rounds"
        )
        return doc

    def write_outputs(self, snapshot: bool = False) -> None:
        """``particles.npz`` (positions over time) and the spec files, all from the state.

        A spec snapshot goes to ``specs/`` every ``spec_every`` rounds, or now with ``snapshot``.
        """
        import yaml

        from domrand.fsutil import atomic_write_text

        out = self.out_dir
        if out is None:
            return
        n, T = self.settings.svpg.num_particles, self.settings.svpg.rollout_len
        dim = len(self.names)
        steps = np.array([h["env_steps"] for h in self.history], dtype=np.int64)
        points = np.array([h["points"] for h in self.history]).reshape(len(steps), n, T, dim)
        rewards = np.array([h["rewards"] for h in self.history]).reshape(len(steps), n, T)
        tmp = out / ".particles.tmp.npz"
        np.savez(
            tmp,
            env_steps=steps,
            points=points,
            rewards=rewards,
            knobs=np.array(self.names),
            low=np.array([self.spec.value_bounds(k)[0] for k in self.names]),
            high=np.array([self.spec.value_bounds(k)[1] for k in self.names]),
        )
        tmp.replace(out / "particles.npz")
        text = yaml.safe_dump(self.current_spec_dict(), sort_keys=False)
        atomic_write_text(out / "spec_latest.yaml", text)
        atomic_write_text(out / "spec.yaml", text)  # the name every guide's latest spec has
        if snapshot or (self.rounds and self.rounds % self.settings.spec_every == 0):
            atomic_write_text(out / "specs" / f"spec_{self.last_round_steps:09d}.yaml", text)

    def close(self) -> None:
        self._randomized.close()
        self._reference.close()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        disc = self._disc.full_state() if self._disc is not None else self._disc_state
        return {
            "svpg": self.svpg.state_dict(),
            "discriminator": disc,
            "disc_generator": self._disc_generator.get_state(),
            "proposals": torch.from_numpy(self.proposals.copy()),
            "cursor": self.cursor,
            "assigned": None if self.assigned is None else [dict(d or {}) for d in self.assigned],
            "rounds": self.rounds,
            "last_round_steps": self.last_round_steps,
            "guide_env_steps": self.guide_env_steps,
            "history": self.history,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.svpg.load_state_dict(state["svpg"])
        self._disc_generator.set_state(state["disc_generator"])
        self._disc, self._disc_state = None, state["discriminator"]
        self.proposals = state["proposals"].numpy().copy()
        self.domains = self._to_domains(self.proposals)
        self.cursor = int(state["cursor"])
        assigned = state["assigned"]
        self.assigned = None if assigned is None else [dict(d) or None for d in assigned]
        self.rounds = int(state["rounds"])
        self.last_round_steps = int(state["last_round_steps"])
        self.guide_env_steps = int(state["guide_env_steps"])
        self.history = list(state["history"])


# ---------------------------------------------------------------------- plots
def plot_particles(npz_path: Path, png_path: Path) -> None:
    """Particle positions over time: 1-D (position vs env steps) or 2-D (knob vs knob, coloured
    by time; the first two knobs when there are more)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = np.load(npz_path)
    steps, points = d["env_steps"], d["points"]
    knobs, low, high = list(d["knobs"]), d["low"], d["high"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if len(steps) == 0:
        ax.text(0.5, 0.5, "no rounds yet", ha="center")
    else:
        vals = low + (high - low) * points  # [rounds, n, T, dim] in knob units
        n, T = points.shape[1], points.shape[2]
        t = np.broadcast_to(steps[:, None, None], (len(steps), n, T)).reshape(-1)
        if len(knobs) == 1:
            for i in range(n):
                ax.plot(np.repeat(steps, T), vals[:, i, :, 0].reshape(-1), ".", ms=3, label=f"p{i}")
            ax.set_xlabel("training env steps")
            ax.set_ylabel(knobs[0])
        else:
            sc = ax.scatter(
                vals[..., 0].reshape(-1), vals[..., 1].reshape(-1), c=t, s=6, cmap="viridis"
            )
            fig.colorbar(sc, ax=ax, label="training env steps")
            ax.set_xlabel(knobs[0])
            ax.set_ylabel(knobs[1])
            ax.set_xlim(low[0], high[0])
            ax.set_ylim(low[1], high[1])
    ax.set_title("Active DR: particle proposals over time")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------- CLI
def run_cli(args: argparse.Namespace) -> int:
    """``domrand guide adr --env ID --spec FILE --out DIR [--reality NAME] [...]``."""
    from domrand.guided.guide_run import GuideSetup, report_guided, train_with_guide

    def make_guide(run: GuideSetup) -> ActiveDRGuide:
        backend = run.cfg.backend_config()
        return ActiveDRGuide(args.env, run.spec, run.settings, args.seed, run.out, backend)

    done = train_with_guide(
        args,
        "adr",
        ActiveDRSettings,
        make_guide,
        plot=lambda out: plot_particles(out / "particles.npz", out / "particles.png"),
        eval_spec=lambda guide, run: run.spec,
    )
    guide = done.guide
    fields = {"guide_env_steps": guide.guide_env_steps, "rounds": guide.rounds}
    ranges, rets = report_guided(done, fields)
    print(
        f"adr on {args.env}: {done.env_steps} training + {guide.guide_env_steps} guide env "
        f"steps, {guide.rounds} rounds; explored {ranges}; return {rets}; wrote {done.setup.out}"
    )
    return 0

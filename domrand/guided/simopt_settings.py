"""SimOpt's settings (``domrand guide simopt --config FILE`` / ``--set key=value``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from domrand.errors import ConfigError

__all__ = ["SimOptSettings"]


@dataclass(frozen=True)
class SimOptSettings:
    """SimOpt's settings (``--config FILE`` / ``--set key=value``); published values noted."""

    knobs: tuple[str, ...] | None = None  #: tuned knobs (default: see :func:`default_knobs`)
    iterations: int = 3  #: train -> real rollouts -> updates cycles
    real_rollouts: int = 3  #: per iteration (the paper's 3)
    max_real_rollouts: int = 10  #: budget: iterations * real_rollouts may not exceed it
    horizon: int = 200  #: steps per real rollout at most
    train_steps: int = 60_000  #: first training phase (0: no policy; open-loop replay only)
    finetune_steps: int = 20_000  #: each later phase, warm-started
    final_steps: int = 20_000  #: last phase, on the final distribution (0: skip)
    updates: int = 8  #: phi updates per iteration, reusing its real rollouts
    #: score samples against every real rollout so far (each replayed with the policy that ran
    #: it), not only this iteration's: real rollouts are the scarce resource, replays are cheap
    reuse: bool = False
    samples: int = 48  #: simulated domains per update (the paper: 9,600 on a cluster)
    backend: str = "reps"  #: "reps" (KL-bounded) or "cmaes"
    #: REPS KL bound per update. Published: 1.0 with 9,600 samples per update; with ~50 samples
    #: that lets the covariance collapse before weakly visible knobs are found (measured on
    #: benchmarks/sysid.py: a pole mass 29% off in one seed of three at 1.0, within 5% at 0.5)
    epsilon: float = 0.5
    eta_min: float = 1e-3  #: REPS minimum temperature (published 0.001)
    min_std: float = 0.02  #: floor of each knob's std, as a fraction of its starting std
    excitation: float | None = None  #: action noise std (half-ranges); None: the policy's own
    replay: str = "auto"  #: "closed" (same policy in sim), "open" (recorded actions), "auto"
    segment: int | None = None  #: replay restarts at the real state every N steps (0: never;
    #: None: 20 open loop, never closed loop); see :mod:`domrand.guided.replay`
    #: W when no obs_weights are given: "spread" (1 / std of the real observations) or "noise"
    #: (1 / the replay error a perfect model still makes, :meth:`Replayer.replay_noise`, at the
    #: current mean: dimensions that solver noise scrambles count less)
    weighting: str = "spread"
    w_l1: float = 0.5  #: published 0.5
    w_l2: float = 1.0  #: published 1.0
    smoothing: float = 5.0  #: Gaussian time smoothing sigma, steps (published 5)
    truncate: float = 4.0  #: smoothing kernel truncation, sigmas (published 4)
    sim_domain: str | None = None  #: domain file pinned in every simulated replay
    sim_envs: int = 16  #: simulated envs stepping in lockstep
    #: multi-start (REPS only): each iteration runs its ``updates`` from this many starting
    #: means (the first from the current mean, the others drawn from the starting spec's
    #: moment-matched Gaussian with the run's seeded generator, all with the current covariance)
    #: against the same real rollouts, and keeps the run whose final mean has the lowest
    #: discrepancy cost on all of them (``select_replays`` replays of each final mean; counted in
    #: sim steps). Multiplies the update sim steps by ``restarts``. 1: a single start (the
    #: published loop)
    restarts: int = 1
    #: replays start (and restart) from the real state plus N(0, (jitter * spread)^2) per
    #: observation dimension (spread: the real rollouts' std), drawn afresh for every sampled
    #: domain from the run's seed. In a chaotic contact simulation this turns the cost of a
    #: domain into a draw around its expected cost instead of a fixed value that jumps between
    #: neighbouring domains (a rough floor an update can settle in). 0: exact real states
    jitter: float = 0.0
    #: with ``restarts``: each finished start's mean is scored by the average cost of this many
    #: replays, each with its own jitter (needs ``jitter`` > 0)
    select_replays: int = 1
    #: how a domain's discrepancies over the real rollouts add up: "sum" (published) or "log"
    #: (sum of log D_j: each rollout's noise scale profiled out of a Gaussian likelihood, so a
    #: few rollouts no parameter replays well cannot outweigh the rest)
    aggregate: str = "sum"
    #: surrogate polish (REPS only; :mod:`domrand.guided.polish`): after each iteration's
    #: updates (and restart selection), this many rounds, each scoring ``polish_samples`` domains
    #: drawn around the mean from the current distribution widened ``polish_width`` times (a
    #: knob REPS pinned at its ``min_std`` floor stays at the floor); a
    #: least-squares quadratic through every round's costs moves the mean toward its minimum, at
    #: most one sampling std per round. It averages out a rough cost floor along which REPS
    #: settles wherever its last cheap samples were. 0: no polish (the published loop)
    polish: int = 0
    polish_samples: int = 64
    polish_width: float = 4.0

    def __post_init__(self) -> None:
        for name in ("restarts", "polish", "polish_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"setting {name} must be an integer, got {value!r}")
        if self.segment is not None and self.segment < 0:
            raise ConfigError(f"setting segment must be >= 0, got {self.segment!r}")
        positive = ("iterations", "real_rollouts", "max_real_rollouts", "horizon", "updates")
        for name in ("polish", "train_steps", "finetune_steps", "final_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"setting {name} must be >= 0, got {getattr(self, name)!r}")
        if self.polish > 0 and self.backend != "reps":
            raise ConfigError(f"setting polish > 0 needs backend reps, got {self.backend!r}")
        if not self.polish_width > 0:
            raise ConfigError(f"setting polish_width must be > 0, got {self.polish_width!r}")
        for name in (*positive, "sim_envs", "restarts", "select_replays"):
            if getattr(self, name) < 1:
                raise ConfigError(f"setting {name} must be >= 1, got {getattr(self, name)!r}")
        if self.samples < 4:
            raise ConfigError(f"setting samples must be >= 4, got {self.samples!r}")
        if self.iterations * self.real_rollouts > self.max_real_rollouts:
            raise ConfigError(
                f"iterations * real_rollouts = {self.iterations * self.real_rollouts} exceeds "
                f"max_real_rollouts = {self.max_real_rollouts} (the real-rollout budget)"
            )
        if self.backend not in ("reps", "cmaes"):
            raise ConfigError(f"setting backend must be 'reps' or 'cmaes', got {self.backend!r}")
        if self.restarts > 1 and self.backend != "reps":
            raise ConfigError(f"setting restarts > 1 needs backend reps, got {self.backend!r}")
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"setting jitter must be in [0, 1), got {self.jitter!r}")
        if self.select_replays > 1 and self.jitter == 0:
            raise ConfigError(
                "setting select_replays > 1 needs jitter > 0 (unperturbed replays are identical)"
            )
        if self.aggregate not in ("sum", "log"):
            raise ConfigError(f"setting aggregate must be sum or log, got {self.aggregate!r}")
        if self.weighting not in ("spread", "noise"):
            raise ConfigError(f"setting weighting must be spread or noise, got {self.weighting!r}")
        if self.replay not in ("auto", "closed", "open"):
            raise ConfigError(f"setting replay must be auto, closed or open, got {self.replay!r}")
        if not self.epsilon > 0 or not self.eta_min > 0 or not 0 <= self.min_std < 1:
            raise ConfigError("need epsilon > 0, eta_min > 0 and 0 <= min_std < 1")
        if self.excitation is not None and self.excitation < 0:
            raise ConfigError(f"setting excitation must be >= 0, got {self.excitation!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["knobs"] = None if self.knobs is None else list(self.knobs)
        return d

"""CMA-ES-tuned randomization distributions (package ``cma``), in their two published shapes.

**Bilevel** (Vuong et al. 2019, ``mode: bilevel``): P_phi is a truncated normal per tuned knob,
cut to the starting spec's range, with phi = (mean, std) per knob (each scaled to [0, 1] by that
range). A policy pre-trained on the starting spec is the first parent; then per generation:

1. ask CMA-ES for ``popsize`` candidates phi_i;
2. each candidate fine-tunes the parent for ``finetune_steps`` on P_phi_i (a warm start), and its
   fitness is the fine-tuned policy's mean return over ``eval_rollouts`` target rollouts;
3. tell CMA-ES; the best candidate's policy becomes the next parent (an elitist warm-start
   chain), and the distribution at CMA-ES's mean is written as ``iter_<g>/spec.yaml``.

**Strategy optimization, SO-CMA** (Yu, Liu and Turk 2019, ``mode: socma``): one *universal*
policy pi(a | s, mu) is trained on the starting spec with the normalized domain mu in [0, 1]^k
appended to its observation (:mod:`domrand.conditioned`); then CMA-ES searches mu on the target
(start 0.5, sigma0 0.25, bounds [0, 1], cma's default population), fitness = mean return of
``episodes_per_candidate`` rollouts, until ``target_steps`` target steps are spent. The search
distribution N(m, sigma^2 C) mapped to knob units is written as each generation's spec; the best
mu is ``best_domain.yaml`` (the domain to condition the universal policy on).

Costs told to CMA-ES are negative returns. The candidates of a generation are evaluated in
parallel on the run's rollout backend (``--backend``/``--workers``), each with its own seeds, so
the results do not depend on the backend or the worker count (:mod:`domrand.guided.cma_eval`).
The state (CMA-ES included, see :mod:`domrand.guided.cma_state`) is checkpointed after every
round of candidates (one per worker).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from domrand.backends import Backend, open_backend, run_chunks
from domrand.errors import ConfigError, SpecValueError
from domrand.guided.actor import Actor
from domrand.guided.cma_eval import (
    Candidate,
    FinetuneJob,
    Outcome,
    ScoreJob,
    candidate,
    finetune_candidate,
    install_run,
    score,
    score_candidate,
)
from domrand.guided.cma_state import CMA
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
from domrand.spec import RandomizationSpec, load_spec
from domrand.target import TargetDomain

if TYPE_CHECKING:
    from domrand.policies.config import TrainConfig

__all__ = ["Bilevel", "CMAESSettings", "StrategyOptimization", "run_cli"]

_TARGET_STREAM = 0x746172


@dataclass(frozen=True)
class CMAESSettings:
    """Settings of ``domrand guide cmaes`` (``--config FILE`` / ``--set key=value``)."""

    mode: str = "bilevel"  #: "bilevel" (Vuong et al.) or "socma" (Yu et al.)
    popsize: int | None = None  #: None: cma's default 4 + floor(3 ln n)
    sigma0: float = 0.25  #: initial step size in the [0, 1]-scaled search space
    generations: int = 4  #: bilevel: generations; socma: at most this many
    horizon: int | None = None  #: steps per target rollout at most (None: the env's limit)
    # bilevel
    knobs: tuple[str, ...] | None = None  #: tuned knobs (default: like SimOpt's)
    pretrain_steps: int = 50_000  #: the first parent, trained on the starting spec
    finetune_steps: int = 10_000  #: per candidate, warm-started from the parent
    eval_rollouts: int = 2  #: target rollouts per candidate
    # socma
    universal_steps: int = 200_000  #: training of the domain-conditioned universal policy
    episodes_per_candidate: int = 3  #: the paper's 3
    target_steps: int = 50_000  #: target-step budget of the search (the paper's default)

    def __post_init__(self) -> None:
        if self.mode not in ("bilevel", "socma"):
            raise ConfigError(f"setting mode must be 'bilevel' or 'socma', got {self.mode!r}")
        if self.popsize is not None and self.popsize < 2:
            raise ConfigError(f"setting popsize must be >= 2, got {self.popsize!r}")
        if not 0 < self.sigma0 <= 1:
            raise ConfigError(f"setting sigma0 must be in (0, 1], got {self.sigma0!r}")
        for name in ("generations", "eval_rollouts", "episodes_per_candidate", "target_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"setting {name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("pretrain_steps", "finetune_steps", "universal_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"setting {name} must be >= 1, got {getattr(self, name)!r}")
        if self.horizon is not None and self.horizon < 1:
            raise ConfigError(f"setting horizon must be >= 1, got {self.horizon!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["knobs"] = None if self.knobs is None else list(self.knobs)
        return d


class _Search(ABC):
    """What both shapes share: the CMA-ES generation loop with per-candidate checkpoints."""

    method = "cmaes"

    def __init__(
        self,
        env_id: str,
        spec: RandomizationSpec,
        target: TargetDomain,
        out: Path,
        settings: CMAESSettings,
        cfg: TrainConfig,
        seed: int,
    ) -> None:
        require_tunable(spec, "CMA-ES")
        self.env_id, self.spec, self.target, self.out = env_id, spec, target, out
        self.s, self.cfg, self.seed = settings, cfg, seed
        self.ck: Checkpointer
        self.pool: Backend

    # subclasses define the search space, the start, and what a candidate costs
    x0: np.ndarray
    knobs: tuple[str, ...]

    @abstractmethod
    def spec_at(self, es: CMA) -> RandomizationSpec:
        """The distribution at the strategy's current mean, as a spec."""

    @abstractmethod
    def prepare(self) -> None:
        """Train what the search starts from (once; a resumed run skips it)."""

    @abstractmethod
    def evaluate(self, cands: list[Candidate]) -> list[Outcome]:
        """Evaluate candidates of one generation (in parallel on ``self.pool``); every outcome
        carries its target returns (a target without a recipe is scored here, in order)."""

    def score_job(self, episodes: int) -> ScoreJob:
        return ScoreJob(self.target.recipe(), episodes)

    def done(self) -> bool:
        return int(self.ck.state["generation"]) >= self.s.generations

    def run(self) -> dict[str, Any]:
        self.ck = Checkpointer(self.out, self._fresh)
        # opened first: the training phases share these workers (forked before any training)
        self.pool = open_backend(self.cfg.backend_config())
        try:
            self.prepare()
            self._generations()
        finally:
            self.pool.close()
        return self.report()

    def _generations(self) -> None:
        state = self.ck.state
        while not self.done():
            g = state["generation"]
            if state["cma"] is None:
                es = CMA(self.x0, self.s.sigma0, seed=self.seed, popsize=self.s.popsize)
            else:
                es = CMA.from_state(state["cma"])
            # The strategy is saved after each tell, so asking again after a resume yields the
            # same candidates (exact restore); finished candidates keep their saved costs.
            x = es.ask()
            pending = state["pending"]
            same = pending is not None and np.shape(pending["x"]) == x.shape
            if not (same and np.allclose(pending["x"], x)):
                pending = {"x": x.tolist(), "cost": [None] * len(x)}
                state["pending"] = pending
                self.ck.save()
            todo = [i for i in range(len(x)) if pending["cost"][i] is None]
            rounds = max(1, self.pool.num_workers)
            for start in range(0, len(todo), rounds):  # a checkpoint after every round
                group = todo[start : start + rounds]
                cands = [candidate(self.seed, g, i, x[i]) for i in group]
                for i, outcome in zip(group, self.evaluate(cands)):
                    budget = self.ck.budget
                    budget.train_steps += outcome.train_steps
                    budget.real_rollouts += len(outcome.returns)  # counted once, here
                    budget.real_steps += outcome.real_steps
                    pending["cost"][i] = -float(np.mean(outcome.returns))
                self.ck.save()
            costs = [float(c) for c in pending["cost"]]
            es.tell(x, costs)
            best = int(np.argmin(costs))
            if state["best"] is None or costs[best] < state["best"]["cost"]:
                state["best"] = {"generation": g, "index": best, "x": x[best].tolist()}
                state["best"]["cost"] = costs[best]
            self.after_generation(g, best)
            state.update(generation=g + 1, cma=es.state_dict(), pending=None)
            returns = [-c for c in costs]
            record_iteration(
                self.out,
                self.ck.history,
                g + 1,
                self.spec_at(es),
                self.knobs,
                self.ck.budget,
                return_mean=float(np.mean(returns)),
                return_best=float(np.max(returns)),
            )
            self.ck.save()

    def after_generation(self, g: int, best: int) -> None:
        return None

    def _fresh(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "mode": self.s.mode,
            "generation": 0,
            "cma": None,
            "pending": None,
            "best": None,
            "parent": None,
            "budget": Budget().to_dict(),
            "history": [],
        }

    def report(self) -> dict[str, Any]:
        state = self.ck.state
        best = state["best"]
        return {
            "method": "cmaes",
            "mode": self.s.mode,
            "env": self.env_id,
            "generations": state["generation"],
            "best_return": None if best is None else -best["cost"],
            "budget": self.ck.budget.to_dict(),
            "spec": str(self.out / "spec.yaml"),
        }


class Bilevel(_Search):
    """Vuong et al.'s bilevel search over truncated normals (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from domrand.registry import knobs_for

        env_knobs = knobs_for(self.env_id)
        self.knobs = self.s.knobs if self.s.knobs is not None else default_knobs(self.spec)
        self.base_doc = doc_without(self.spec, self.knobs)
        mean, cov = knob_moments(self.spec, self.knobs)
        std = np.sqrt(np.diag(cov))
        self.lo, self.hi = knob_box(self.spec, self.knobs, mean, std, env_knobs)
        span = self.hi - self.lo
        # phi = (mean_1, std_1, mean_2, std_2, ...), each divided by its knob's range
        self.x0 = np.clip(np.ravel(np.column_stack([(mean - self.lo) / span, std / span])), 0, 1)

    def spec_of(self, x: np.ndarray) -> RandomizationSpec:
        """The starting spec with each tuned knob drawn from its truncated normal."""
        from domrand.registry import knobs_for

        span = self.hi - self.lo
        doc = {**self.base_doc, "description": "CMA-ES (bilevel) tuned distribution"}
        params = dict(doc.get("parameters", {}))
        for j, k in enumerate(self.knobs):
            params[k] = {
                "dist": "truncnormal",
                "mean": float(self.lo[j] + span[j] * x[2 * j]),
                "std": float(span[j] * x[2 * j + 1]),
                "low": float(self.lo[j]),
                "high": float(self.hi[j]),
            }
        doc["parameters"] = params
        return load_spec(doc, env=knobs_for(self.env_id))

    def spec_at(self, es: CMA) -> RandomizationSpec:
        return self.spec_of(es.mean)

    def prepare(self) -> None:
        ck, state = self.ck, self.ck.state
        if not ck.history:
            record_iteration(self.out, ck.history, 0, self.spec_of(self.x0), self.knobs, ck.budget)
            ck.save()
        if state["parent"] is None:  # the first parent: a policy for the starting spec
            result = self._train("pretrain", self.spec, self.s.pretrain_steps, None)
            ck.budget.train_steps += result
            state["parent"] = "policy/pretrain"
            ck.save()

    def _train(self, name: str, spec: RandomizationSpec, steps: int, parent: str | None) -> int:
        init = None if parent is None else self.out / parent
        result = train_phase(
            self.out / "policy" / name,
            self.cfg,
            spec,
            steps,
            init_from=init,
            method="cmaes",
            state=self.ck.state,
        )
        return result.env_steps

    def evaluate(self, cands: list[Candidate]) -> list[Outcome]:
        # inner level: fine-tune the parent on P_phi_i (on a worker); outer level: its return
        # on the target (on the worker too, on a copy of the target seeded for the candidate)
        from domrand.policies.checkpoint import load_policy, resolve_checkpoint

        parent = resolve_checkpoint(self.out / self.ck.state["parent"]).read_bytes()
        scoring = self.score_job(self.s.eval_rollouts)
        job = FinetuneJob(self.cfg, self.s.finetune_steps, scoring, dict(self.ck.state))
        work = [(self.spec_of(c.x), c) for c in cands]
        outcomes = run_chunks(self.pool, finetune_candidate, work, job, broadcast=parent)
        out = []
        for c, o in zip(cands, outcomes):
            run_dir = self.out / "policy" / f"gen_{c.generation}" / f"cand_{c.index}"
            install_run(run_dir, o.files)
            if scoring.recipe is None:  # a target that exists only here: scored in order
                policy, _ = load_policy(run_dir)
                returns, steps = score(self.target, Actor(policy), self.s.eval_rollouts)
                o = dataclasses.replace(o, returns=returns, real_steps=steps)
            out.append(dataclasses.replace(o, files={}))
        return out

    def after_generation(self, g: int, best: int) -> None:
        self.ck.state["parent"] = f"policy/gen_{g}/cand_{best}"

    def report(self) -> dict[str, Any]:
        out = super().report()
        best = self.ck.state["best"]
        if best is not None:
            best_spec = self.spec_of(np.asarray(best["x"]))
            best_spec.save(self.out / "best_spec.yaml")
            out["best_spec"] = str(self.out / "best_spec.yaml")
            out["best_policy"] = str(
                self.out / "policy" / f"gen_{best['generation']}" / f"cand_{best['index']}"
            )
        out["policy"] = str(self.out / self.ck.state["parent"])
        return out


class StrategyOptimization(_Search):
    """SO-CMA: a universal policy pi(a | s, mu), then CMA-ES over mu on the target."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.knobs = self.spec.bounded_knobs()
        if not self.knobs:
            raise SpecValueError(
                "nothing to tune: SO-CMA conditions on knobs randomized over a bounded range, "
                "and the spec has none",
                file=self.spec.source,
                path="parameters",
                value=list(self.spec.knob_names()),
                allowed="at least one bounded distribution (uniform, loguniform, choice, clip)",
            )
        self.x0 = np.full(len(self.knobs), 0.5)
        self.box = np.array([self.spec.value_bounds(k) for k in self.knobs])

    def spec_at(self, es: CMA) -> RandomizationSpec:
        """The search distribution N(m, sigma^2 C) over mu, in knob units, as a spec."""
        from domrand.registry import knobs_for

        lo, span = self.box[:, 0], self.box[:, 1] - self.box[:, 0]
        mean = lo + span * es.mean
        cov = es.cov * np.outer(span, span)
        doc = {**doc_without(self.spec, self.knobs), "description": "SO-CMA search distribution"}
        if len(self.knobs) == 1:
            params = dict(doc.get("parameters", {}))
            params[self.knobs[0]] = {
                "dist": "normal",
                "mean": float(mean[0]),
                "std": float(math.sqrt(cov[0, 0])),
                "clip": [float(self.box[0, 0]), float(self.box[0, 1])],
            }
            doc["parameters"] = params
        else:
            doc["correlated"] = [
                *doc.get("correlated", []),
                {
                    "knobs": list(self.knobs),
                    "dist": "mvnormal",
                    "mean": mean.tolist(),
                    "cov": (0.5 * (cov + cov.T)).tolist(),
                    "clip": self.box.tolist(),
                },
            ]
        return load_spec(doc, env=knobs_for(self.env_id))

    def prepare(self) -> None:
        from domrand.conditioned import conditioned_env_id
        from domrand.policies.checkpoint import load_policy

        ck, state = self.ck, self.ck.state
        variant = conditioned_env_id(self.env_id, self.spec)
        if state["parent"] is None:  # the universal policy, conditioned on mu
            result = train_phase(
                self.out / "policy" / "universal",
                self.cfg.replace(env=variant),
                dataclasses.replace(self.spec, env=None),
                self.s.universal_steps,
                init_from=None,
                method="cmaes",
                state=state,
            )
            ck.budget.train_steps += result.env_steps
            state["parent"] = "policy/universal"
            es = CMA(self.x0, self.s.sigma0, seed=self.seed, popsize=self.s.popsize)
            record_iteration(self.out, ck.history, 0, self.spec_at(es), self.knobs, ck.budget)
            ck.save()
        self.universal, _ = load_policy(self.out / state["parent"])

    def done(self) -> bool:
        return super().done() or self.ck.budget.real_steps >= self.s.target_steps

    def evaluate(self, cands: list[Candidate]) -> list[Outcome]:
        scoring = self.score_job(self.s.episodes_per_candidate)
        if scoring.recipe is not None:
            return run_chunks(self.pool, score_candidate, cands, scoring, broadcast=self.universal)
        out = []  # a target that exists only here: scored in the driver, in order
        for c in cands:
            actor = Actor(self.universal, extra_obs=c.x.astype(np.float32))
            out.append(Outcome(*score(self.target, actor, self.s.episodes_per_candidate)))
        return out

    def report(self) -> dict[str, Any]:
        out = super().report()
        best = self.ck.state["best"]
        if best is not None:
            domain = self.spec.denormalize(best["x"])
            doc = {"env": self.env_id, "description": "SO-CMA: best mu", "parameters": domain}
            load_spec(doc).save(self.out / "best_domain.yaml")
            out["best_domain"] = domain
            out["best_mu"] = best["x"]
        out["policy"] = str(self.out / "policy" / "universal")
        return out


# ---------------------------------------------------------------------- command line
def run_cli(args: argparse.Namespace) -> int:
    """``domrand guide cmaes --env ID --spec FILE (--reality|--domain) --out DIR``."""
    from domrand.guided.guide_run import prepare_out, setup_guide, write_report
    from domrand.guided.state import make_target, target_label

    run = setup_guide(args, "cmaes", CMAESSettings)
    settings, cfg, spec, out, record = run.settings, run.cfg, run.spec, run.out, run.record
    require_tunable(spec, "CMA-ES")
    label = record["target"] = target_label(args)
    # Each candidate is scored on a copy of this target seeded for that candidate (cma_eval),
    # so the seed here only matters to a target scored in the driver.
    ss = np.random.SeedSequence(args.seed, spawn_key=(_TARGET_STREAM,))
    target = make_target(
        args,
        args.env,
        seed=int(ss.generate_state(1)[0]),
        max_steps=settings.horizon,
        recorded_ok=False,
        method=f"CMA-ES ({settings.mode})",
    )
    kind = Bilevel if settings.mode == "bilevel" else StrategyOptimization
    search = kind(args.env, spec, target, out, settings, cfg, args.seed)
    prepare_out(out, record, args.resume)
    report = search.run()
    report["target"] = label
    write_report(out, report)
    b = report["budget"]
    print(
        f"cmaes ({settings.mode}) on {args.env}: {report['generations']} generations, best "
        f"target return {report['best_return']:.1f}; {b['real_rollouts']} real rollouts "
        f"({b['real_steps']} steps), {b['train_steps']} training steps, {b['wall_s']:.0f} s; "
        f"wrote {out}/spec.yaml"
    )
    return 0

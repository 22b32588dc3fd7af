"""CMA-ES candidate evaluations on the rollout backend: one chunk per candidate.

The candidates of a generation are independent, so they run in parallel on the run's backend
workers (:func:`domrand.backends.run_chunks`; ``--backend``/``--workers`` as for every guide).
What a candidate computes depends only on the candidate, never on the worker or the order:

* its seeds come from ``(run seed, generation, index)`` (:func:`candidate`): the fine-tune's
  training seed (bilevel) and the seed of its own copy of the target;
* the target is rebuilt on the worker from its :meth:`~domrand.target.TargetDomain.recipe` with
  the candidate's seed, so the target's episodes do not depend on how many came before (and a
  resumed run scores exactly like an uninterrupted one). A target without a recipe (a robot, a
  user's adapter) is scored in the driver instead, candidate after candidate;
* a bilevel fine-tune trains in a private temporary directory on the worker, with the ``local``
  backend inside it (the worker *is* the parallel unit) and one torch thread (a worker is one
  CPU); the run directory's files come back to the driver, which writes them to
  ``OUT/policy/gen_<g>/cand_<i>``. Nothing assumes a filesystem shared with the workers.

Real rollouts are counted once, in the driver, from the outcomes: a chunk whose worker died is
re-run (same seeds, same numbers) and its result taken once.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from domrand.backends import WorkerHost
from domrand.fsutil import atomic_write_bytes
from domrand.guided.actor import Actor, EpisodePolicy
from domrand.target import SimulatedTargetRecipe, TargetDomain

if TYPE_CHECKING:
    from domrand.policies.config import TrainConfig
    from domrand.spec import RandomizationSpec

__all__ = [
    "Candidate",
    "FinetuneJob",
    "Outcome",
    "ScoreJob",
    "candidate",
    "finetune_candidate",
    "install_run",
    "score",
    "score_candidate",
]

_CANDIDATE_STREAM = 0x63616E64  # "cand"


@dataclass(frozen=True)
class Candidate:
    """Candidate ``index`` of generation ``generation``: its point and its own seeds."""

    generation: int
    index: int
    x: np.ndarray
    train_seed: int
    target_seed: int


def candidate(run_seed: int, generation: int, index: int, x: np.ndarray) -> Candidate:
    """The candidate with seeds derived from ``(run_seed, generation, index)`` only."""
    ss = np.random.SeedSequence(run_seed, spawn_key=(_CANDIDATE_STREAM, generation, index))
    train_seed, target_seed = (int(v) for v in ss.generate_state(2, np.uint32))
    return Candidate(generation, index, np.asarray(x, dtype=np.float64), train_seed, target_seed)


@dataclass(frozen=True)
class Outcome:
    """What one candidate's evaluation spent and scored.

    ``returns`` is empty when the target is scored in the driver (no recipe); ``files`` is a
    bilevel fine-tune's run directory (relative path -> content).
    """

    returns: tuple[float, ...]
    real_steps: int
    train_steps: int = 0
    files: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreJob:
    """What every candidate of a generation shares: where and how long it is scored."""

    recipe: SimulatedTargetRecipe | None
    episodes: int


@dataclass(frozen=True)
class FinetuneJob:
    """A bilevel generation's shared part: the fine-tune settings and the scoring."""

    cfg: TrainConfig
    steps: int
    score: ScoreJob
    state: Mapping[str, Any]  #: the guide state the phase's checkpoints carry


def score(target: TargetDomain, actor: Actor, episodes: int) -> tuple[tuple[float, ...], int]:
    """Returns of ``episodes`` deterministic target rollouts, and their steps."""
    trajs = target.rollout(EpisodePolicy(actor), episodes)
    return tuple(t.episode_return for t in trajs), sum(len(t) for t in trajs)


def _score_copy(job: ScoreJob, seed: int, actor: Actor) -> tuple[tuple[float, ...], int]:
    if job.recipe is None:
        return (), 0  # scored in the driver
    target = job.recipe.build(seed)
    try:
        return score(target, actor, job.episodes)
    finally:
        target.close()


def score_candidate(host: WorkerHost, policy: Any, job: ScoreJob, cand: Candidate) -> Outcome:
    """On a worker (SO-CMA): the universal ``policy`` conditioned on ``cand.x``, scored."""
    actor = Actor(policy, extra_obs=cand.x.astype(np.float32))
    returns, steps = _score_copy(job, cand.target_seed, actor)
    return Outcome(returns, steps)


def finetune_candidate(
    host: WorkerHost,
    parent: bytes,
    job: FinetuneJob,
    work: tuple[RandomizationSpec, Candidate],
) -> Outcome:
    """On a worker (bilevel): fine-tune the ``parent`` checkpoint on the candidate's spec, then
    score it; the run directory comes back as files."""
    from domrand.guided.state import train_phase
    from domrand.policies.checkpoint import load_policy

    spec, cand = work
    cfg = job.cfg.replace(
        seed=cand.train_seed,
        backend="local",  # the worker is the parallel unit: its envs step in-process
        workers=0,
        address=None,
        vectorization=None,
        torch_threads=1,  # one CPU per worker; also keeps the numbers independent of the host
    )
    with tempfile.TemporaryDirectory(prefix="domrand-candidate-") as tmp:
        root = Path(tmp)
        (root / "parent.pt").write_bytes(parent)
        run = root / "run"
        result = train_phase(
            run,
            cfg,
            spec,
            job.steps,
            init_from=root / "parent.pt",
            method="cmaes",
            state=job.state,
        )
        files = {
            p.relative_to(run).as_posix(): p.read_bytes()
            for p in sorted(run.rglob("*"))
            if p.is_file()
        }
        policy, _ = load_policy(run)
    returns, steps = _score_copy(job.score, cand.target_seed, Actor(policy))
    return Outcome(returns, steps, result.env_steps, files)


def install_run(run_dir: Path, files: Mapping[str, bytes]) -> None:
    """Write a run directory a worker sent back (replacing whatever a killed run left there)."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    for rel, data in files.items():
        atomic_write_bytes(run_dir / rel, data)

"""Train one policy with one DR method, under one training budget, and say what it cost.

Every method's *final* policy has seen the same number of training env steps along its lineage
(``EnvPlan.train_steps``, the plan's budget B), so the table compares what the methods do with
the same amount of policy training:

* ``no_dr``: B steps at the nominal values; ``uniform``: B steps on the env's wide default spec;
* ``oracle``: B steps pinned to the reality it is then scored on (the reference);
* ``adr`` / ``autodr``: B steps with Active DR's particles / automatic DR's ranges choosing the
  domains (Active DR's discriminator rollouts are extra *sim* steps, not training);
* ``simopt``: the first phase, fine-tuning phases after each update and a final phase add up to
  B (warm-started chain); the target is seen through counted real rollouts;
* ``cmaes`` (bilevel): a pre-trained parent plus one fine-tuning per generation along the winning
  chain add up to B; the other candidates' fine-tuning is extra training, reported as such.

Each function returns a :class:`Trained`: where the final policy is and the budget spent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domrand.errors import DomrandError

__all__ = ["METHODS", "EnvPlan", "Trained", "train_method", "unsupported"]

#: method id -> label used in tables (the order is the table's order)
METHODS: dict[str, str] = {
    "no_dr": "no DR",
    "uniform": "uniform DR",
    "cmaes": "CMA-ES (bilevel)",
    "simopt": "SimOpt",
    "adr": "Active DR",
    "autodr": "automatic DR",
    "oracle": "oracle (trained on the reality)",
}
#: methods that see the designated target reality through counted rollouts
TARGETED = ("cmaes", "simopt")
#: methods whose training samples the env's shipped default spec (``_wide``)
WIDE_SPEC = ("uniform", "cmaes", "simopt", "adr", "autodr")


@dataclass(frozen=True)
class EnvPlan:
    """What one tier does on one env.

    ``train_steps`` is the lineage budget B (a multiple of the trainer's 1,024-step rollout);
    ``target`` the reality CMA-ES and SimOpt see; the four dicts are method settings
    (:class:`~domrand.guided.simopt.SimOptSettings` etc.) without the step counts this module
    derives from B.
    """

    env_id: str
    train_steps: int
    episodes: int
    target: str
    simopt: dict[str, Any] = field(default_factory=dict)
    cmaes: dict[str, Any] = field(default_factory=dict)
    adr: dict[str, Any] = field(default_factory=dict)
    autodr: dict[str, Any] = field(default_factory=dict)
    finetune_steps: int = 8192  #: SimOpt's and CMA-ES's fine-tuning phases
    simopt_final_steps: int = 8192
    hidden: int = 64
    oracle_seeds: int | None = None  #: the oracle trains on the first N seeds (None: all)
    #: the env's trainer settings that differ from TrainConfig's defaults, for every method
    #: (e.g. ``{"target_kl": 0.02}``); empty: the defaults
    ppo: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        if not doc["ppo"]:  # plans without trainer settings keep their earlier fingerprints
            del doc["ppo"]
        return doc


@dataclass
class Trained:
    """A method's final policy and what producing it cost."""

    policy_dir: Path
    lineage_steps: int  #: training env steps along the final policy's warm-start chain
    train_steps: int  #: every training env step spent (discarded candidates included)
    real_rollouts: int = 0
    real_steps: int = 0
    sim_steps: int = 0  #: the guide's own simulation steps (replays, discriminator rollouts)
    extra: dict[str, Any] = field(default_factory=dict)


def unsupported(method: str, env_id: str) -> str | None:
    """Why ``method`` cannot run on ``env_id`` (``None``: it can)."""
    if method != "simopt":
        return None
    import domrand
    from domrand.envs.bullet_env import BulletEnv

    env = domrand.make(env_id)
    try:
        cls = type(env.unwrapped)
    finally:
        env.close()
    if cls._set_state is BulletEnv._set_state:
        return (
            f"{cls.__name__} cannot be reset to a recorded state, which SimOpt's replay of the "
            "real rollouts needs"
        )
    return None


def train_config(plan: EnvPlan, seed: int) -> Any:
    """The trainer settings every method shares (LSTM, one torch thread: jobs run side by side)."""
    from domrand.policies.config import TrainConfig

    return TrainConfig(
        env=plan.env_id,
        total_steps=plan.train_steps,
        seed=seed,
        hidden=plan.hidden,
        torch_threads=1,
        checkpoint_every=10**9,
        **plan.ppo,
    )


def train_method(
    method: str, plan: EnvPlan, seed: int, work: Path, reality: str | None = None
) -> Trained:
    """Train ``method``'s final policy for ``plan`` in the empty folder ``work``.

    Args:
        reality: the reality an ``oracle`` trains on (unused by the other methods).

    Raises:
        DomrandError: unknown method, an oracle without a reality, or a budget too small for
            the method's phases.
    """
    if method not in METHODS:
        from domrand.errors import did_you_mean

        raise DomrandError(
            f"unknown method {method!r}{did_you_mean(method, METHODS)}; "
            f"allowed: {', '.join(METHODS)}"
        )
    work.mkdir(parents=True, exist_ok=True)
    if method == "oracle":
        if reality is None:
            raise DomrandError("the oracle needs the reality it trains on")
        return _plain(plan, seed, work, _reality_spec(plan.env_id, reality))
    if method == "no_dr":
        return _plain(plan, seed, work, None)
    if method == "uniform":
        return _plain(plan, seed, work, _wide(plan.env_id))
    if method in ("adr", "autodr"):
        return _guided_training(method, plan, seed, work)
    if method == "simopt":
        return _simopt(plan, seed, work)
    return _cmaes(plan, seed, work)


# ---------------------------------------------------------------------- helpers
def _wide(env_id: str) -> Any:
    import domrand

    return domrand.load_spec(domrand.default_spec_path(env_id), env=env_id)


def _reality_spec(env_id: str, reality: str) -> Any:
    """A reality file read as a spec: every knob it names pinned, the others nominal."""
    import domrand
    from domrand.registry import reality_path

    return domrand.load_spec(reality_path(env_id, reality), env=env_id)


def _target(plan: EnvPlan, seed: int, stream: int) -> Any:
    from domrand.target import SimulatedTarget

    return SimulatedTarget(plan.env_id, reality=plan.target, seed=stream + seed)


def _plain(plan: EnvPlan, seed: int, work: Path, spec: Any) -> Trained:
    from domrand.policies.train import train

    result = train(train_config(plan, seed), work / "policy", spec=spec, progress=False)
    return Trained(work / "policy", result.env_steps, result.env_steps)


def _guided_training(method: str, plan: EnvPlan, seed: int, work: Path) -> Trained:
    from domrand.guided.guide_run import settings_from_dict
    from domrand.policies.train import train

    guide: Any
    if method == "adr":
        from domrand.guided.adr import ActiveDRGuide, ActiveDRSettings

        settings = settings_from_dict(ActiveDRSettings, plan.adr, "adr")
        guide = ActiveDRGuide(plan.env_id, _wide(plan.env_id), settings, seed, out_dir=work)
    else:
        from domrand.guided.autodr import AutoDRGuide, AutoDRSettings

        settings = settings_from_dict(AutoDRSettings, plan.autodr, "autodr")
        guide = AutoDRGuide(plan.env_id, _wide(plan.env_id), settings, seed, out_dir=work)
    try:
        result = train(train_config(plan, seed), work / "policy", guide=guide, progress=False)
    finally:
        guide.close()
    out = Trained(work / "policy", result.env_steps, result.env_steps)
    ranges = guide.explored_ranges()
    out.extra["explored_ranges"] = ranges
    if method == "adr":
        out.sim_steps = int(guide.guide_env_steps)
        out.extra["rounds"] = int(guide.rounds)
    else:
        out.extra["boundary_evaluations"] = int(guide.evaluations)
        out.extra["boundary_moves"] = int(guide.state.updates)
        out.extra["adr_entropy"] = float(guide.state.entropy())
        # how much of the wide spec's range automatic DR had opened up by the end (0..1 each)
        limits = guide.state.limits
        out.extra["range_fraction"] = {
            k: (hi - lo) / (limits[k][1] - limits[k][0]) if limits[k][1] > limits[k][0] else 1.0
            for k, (lo, hi) in ranges.items()
        }
    return out


def _phase_steps(plan: EnvPlan, phases: int, what: str) -> int:
    """B minus ``phases`` fine-tuning phases: the first phase's budget (must stay positive)."""
    first = plan.train_steps - phases * plan.finetune_steps
    if first < 1024:
        raise DomrandError(
            f"{plan.env_id}: train_steps {plan.train_steps} leaves {first} steps for {what} "
            f"after {phases} fine-tuning phases of {plan.finetune_steps}; allowed: >= 1024"
        )
    return first


def _simopt(plan: EnvPlan, seed: int, work: Path) -> Trained:
    from domrand.guided.guide_run import settings_from_dict
    from domrand.guided.simopt import SimOpt, SimOptSettings

    iterations = int(plan.simopt.get("iterations", 2))
    final = plan.simopt_final_steps
    first = _phase_steps(plan, iterations - 1, "SimOpt's first phase") - final
    if first < 1024:
        raise DomrandError(f"{plan.env_id}: no budget left for SimOpt's first phase ({first})")
    doc = {
        **plan.simopt,
        "train_steps": first,
        "finetune_steps": plan.finetune_steps,
        "final_steps": final,
    }
    settings = settings_from_dict(SimOptSettings, doc, "simopt")
    cfg = train_config(plan, seed)
    target = _target(plan, seed, 1000)
    report = SimOpt(plan.env_id, _wide(plan.env_id), target, work / "simopt", settings, cfg,
                    seed).run()  # fmt: skip
    b = report["budget"]
    out = Trained(
        Path(report["policy"]),
        lineage_steps=int(b["train_steps"]),  # one warm-started chain: every phase is lineage
        train_steps=int(b["train_steps"]),
        real_rollouts=int(b["real_rollouts"]),
        real_steps=int(b["real_steps"]),
        sim_steps=int(b["sim_steps"]),
    )
    out.extra["identified"] = report["knobs"]
    return out


def _cmaes(plan: EnvPlan, seed: int, work: Path) -> Trained:
    from domrand.guided.cmaes import Bilevel, CMAESSettings
    from domrand.guided.guide_run import settings_from_dict

    generations = int(plan.cmaes.get("generations", 2))
    pretrain = _phase_steps(plan, generations, "CMA-ES's pre-training")
    doc = {**plan.cmaes, "pretrain_steps": pretrain, "finetune_steps": plan.finetune_steps}
    settings = settings_from_dict(CMAESSettings, doc, "cmaes")
    cfg = train_config(plan, seed)
    target = _target(plan, seed, 2000)
    search = Bilevel(plan.env_id, _wide(plan.env_id), target, work / "cmaes", settings, cfg, seed)
    report = search.run()
    b = report["budget"]
    parent = search.ck.state["parent"]  # the winning candidate of the last generation
    generations_done = int(report["generations"])
    out = Trained(
        work / "cmaes" / parent,
        lineage_steps=_rounded(pretrain, cfg.batch)
        + generations_done * _rounded(plan.finetune_steps, cfg.batch),
        train_steps=int(b["train_steps"]),
        real_rollouts=int(b["real_rollouts"]),
        real_steps=int(b["real_steps"]),
        sim_steps=int(b["sim_steps"]),
    )
    out.extra["best_target_return"] = report["best_return"]
    return out


def _rounded(steps: int, batch: int) -> int:
    """Env steps the trainer actually runs for ``steps`` (whole rollouts of ``batch`` steps)."""
    return -(-steps // batch) * batch

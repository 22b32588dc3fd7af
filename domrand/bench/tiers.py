"""The transfer benchmark's two tiers: per-env budgets and method settings.

``quick`` takes about 15 minutes on 2 quiet cores (14.7 min measured 2026-11-27; 80 min on
the shared VM under load 9-19): small PPO budgets, short guide loops, the oracle on the first
seed;
``full`` trains 3-15x longer with longer guide loops and the oracle on every seed. Budgets and
trainer settings differ per env (a CartPole step is ~3x cheaper than a Pusher or KukaReach step;
Pusher needs the most training, and since 2026-11-28 a stabilized trainer in the full tier),
never per method.

Pusher is ``domrand/PusherForce-v0`` (force-controlled gantry) since 2026-11-27: on
``domrand/Pusher-v0``, whose PD servo hides the pusher's dynamics, no shipped reality opened a gap
(``benchmarks/pusher_force.py`` has the protocol that moved it; ``PUSHER_V0`` keeps the earlier
plans for the Pusher-v0 diagnostics in ``benchmarks/``).

Designated targets (what CMA-ES and SimOpt see through counted real rollouts): CartPole
``heavy_pole``, Pusher ``hard_region``, KukaReach ``heavy_payload`` -- each the reality whose gap
is in the dynamics the two methods tune (masses, friction, damping, gains), so the target-driven
methods have something to identify. Every method is scored on every reality.
"""

from __future__ import annotations

import dataclasses

from domrand.bench.methods import EnvPlan

__all__ = ["PUSHER_FULL_AT_B", "PUSHER_V0", "TIERS"]

CARTPOLE, PUSHER, KUKA = "domrand/CartPole-v0", "domrand/PusherForce-v0", "domrand/KukaReach-v0"
TARGETS = {CARTPOLE: "heavy_pole", PUSHER: "hard_region", KUKA: "heavy_payload"}

#: Active DR: a round of discriminator rollouts every 4 PPO updates, rollouts cut at 40 steps
_ADR = {"round_every": 4096, "rollout_steps": 40}
#: automatic DR in success-rate units (every env here reports is_success or survives)
_AUTODR = {"metric": "success", "t_low": 0.2, "t_high": 0.5, "buffer_size": 8, "delta": 0.1}


def _simopt(iterations: int, horizon: int, updates: int, samples: int) -> dict[str, int]:
    return {"iterations": iterations, "real_rollouts": 3, "horizon": horizon, "updates": updates,
            "samples": samples}  # fmt: skip


def _plan(env: str, steps: int, episodes: int, horizon: int, quick: bool) -> EnvPlan:
    return EnvPlan(
        env_id=env,
        train_steps=steps,
        episodes=episodes,
        target=TARGETS[env],
        simopt=_simopt(2, horizon, updates=3, samples=24)
        if quick
        else _simopt(3, horizon, updates=8, samples=48),
        cmaes={"generations": 2 if quick else 3, "popsize": 4 if quick else 6, "eval_rollouts": 2},
        adr=dict(_ADR) if quick else {**_ADR, "round_every": 8192},
        autodr=dict(_AUTODR),
        finetune_steps=4096 if quick else 10_240,
        simopt_final_steps=4096 if quick else 10_240,
        oracle_seeds=1 if quick else None,
    )


#: PusherForce's full-tier plan until 2026-11-28: B = 151,552 steps, the trainer's defaults. The
#: Pusher diagnostics in ``benchmarks/`` were measured with it (and ``PUSHER_V0`` keeps it).
PUSHER_FULL_AT_B = _plan(PUSHER, 151_552, 20, 100, quick=False)
#: PusherForce's trainer settings in the full tier since 2026-11-28, for every method alike:
#: ``benchmarks/pusher_force_trainer.py --rule rev1`` (committed before its cells ran, fresh
#: seeds 30-32, never a reality) found uniform DR learning the nominal task at 2B with them
#: (success 0.55; no DR 0.96) and not with the defaults (0.25).
PUSHER_FULL_PPO = {"target_kl": 0.02, "ent_coef": 0.01}

TIERS: dict[str, dict[str, EnvPlan]] = {
    "quick": {
        CARTPOLE: _plan(CARTPOLE, 30_720, 8, 200, quick=True),
        PUSHER: _plan(PUSHER, 20_480, 10, 100, quick=True),
        KUKA: _plan(KUKA, 16_384, 10, 100, quick=True),
    },
    "full": {
        CARTPOLE: _plan(CARTPOLE, 100_352, 20, 200, quick=False),
        PUSHER: dataclasses.replace(
            PUSHER_FULL_AT_B, train_steps=2 * PUSHER_FULL_AT_B.train_steps, ppo=PUSHER_FULL_PPO
        ),
        KUKA: _plan(KUKA, 100_352, 20, 150, quick=False),
    },
}

#: Each tier's Pusher plan on ``domrand/Pusher-v0`` (the benchmark's Pusher until 2026-11-27),
#: for the Pusher-v0 diagnostics in ``benchmarks/``: the budgets and settings they were measured
#: with (the full tier's as it was before 2026-11-28).
PUSHER_V0: dict[str, EnvPlan] = {
    "quick": dataclasses.replace(TIERS["quick"][PUSHER], env_id="domrand/Pusher-v0"),
    "full": dataclasses.replace(PUSHER_FULL_AT_B, env_id="domrand/Pusher-v0"),
}

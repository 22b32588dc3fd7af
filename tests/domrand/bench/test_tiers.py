"""The transfer benchmark's tiers: what rule rev1 set, and what the diagnostics keep."""

from __future__ import annotations

import dataclasses

from domrand.bench.tiers import PUSHER_FULL_AT_B, PUSHER_FULL_PPO, PUSHER_V0, TIERS

PUSHER = "domrand/PusherForce-v0"


def test_full_tier_pusher_plan_is_rule_rev1s_2b_with_the_stabilized_trainer() -> None:
    plan = TIERS["full"][PUSHER]
    assert plan.train_steps == 2 * PUSHER_FULL_AT_B.train_steps == 303_104
    assert plan.ppo == PUSHER_FULL_PPO == {"target_kl": 0.02, "ent_coef": 0.01}
    assert plan.to_dict()["ppo"] == PUSHER_FULL_PPO  # part of the cells' fingerprints
    # everything else is the plan the diagnostics were measured with
    assert dataclasses.replace(plan, train_steps=151_552, ppo={}) == PUSHER_FULL_AT_B


def test_other_plans_keep_the_trainer_defaults_and_their_fingerprints() -> None:
    for tier, plans in TIERS.items():
        for env, plan in plans.items():
            if (tier, env) != ("full", PUSHER):
                assert plan.ppo == {} and "ppo" not in plan.to_dict(), (tier, env)
    # the Pusher diagnostics' plans (and so their cached cells) predate rule rev1
    assert PUSHER_FULL_AT_B.train_steps == 151_552 and "ppo" not in PUSHER_FULL_AT_B.to_dict()
    assert PUSHER_V0["full"].train_steps == 151_552 and PUSHER_V0["full"].ppo == {}
    assert PUSHER_V0["quick"].train_steps == TIERS["quick"][PUSHER].train_steps
    assert {p.env_id for p in PUSHER_V0.values()} == {"domrand/Pusher-v0"}

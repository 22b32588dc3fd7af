"""The guide hook: spec changes and per-env assignments reach the envs, in-process and in
subprocess workers, and apply to each env's very next episode; guide state is checkpointed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

import domrand
from domrand.guided import Guide, SpecSource
from domrand.policies.checkpoint import latest_checkpoint, load_checkpoint
from domrand.policies.config import TrainConfig
from domrand.policies.train import train
from domrand.spec import Domain, RandomizationSpec

ENV_ID = "domrand/CartPole-v0"
TINY = TrainConfig(
    total_steps=1024, num_envs=3, num_steps=64, hidden=8, epochs=1, batch_size=64, seq_len=16,
    checkpoint_every=512,
)  # fmt: skip


class SwitchingGuide(Guide):
    """Starts from the default spec; after ``switch_after`` episodes it pins pole.mass = 0.3 for
    everyone and assigns env 1 the exact domain cart.mass = 2.5."""

    def __init__(self, switch_after: int = 4) -> None:
        self.knobs = domrand.knobs_for(ENV_ID)
        self.base = domrand.load_spec(domrand.default_spec_path(ENV_ID), env=self.knobs)
        self.switched_spec = self.base.merged({"pole.mass": 0.3})
        self.switch_after = switch_after
        self.seen: list[tuple[int, Domain, bool]] = []  # (env, domain, ended after the switch)
        self.calls = 0

    @property
    def switched(self) -> bool:
        return len(self.seen) >= self.switch_after

    def training_spec(self) -> RandomizationSpec:
        self.calls += 1
        return self.switched_spec if self.switched else self.base

    def assignments(self, num_envs: int) -> list[Domain | None]:
        out: list[Domain | None] = [None] * num_envs
        if self.switched:
            out[1] = {"cart.mass": 2.5}
        return out

    def observe_episode(
        self, env_index: int, domain: Domain, ret: float, length: int, info: Mapping[str, Any]
    ) -> None:
        assert "success" in info and length >= 1 and ret >= 0
        self.seen.append((env_index, dict(domain), self.switched))

    def state_dict(self) -> dict[str, Any]:
        return {"episodes": len(self.seen)}


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_guide_spec_change_and_assignments_take_effect_in_workers(
    tmp_path: Path, vectorization: str
) -> None:
    guide = SwitchingGuide()
    cfg = TINY.replace(vectorization=vectorization)
    train(cfg, tmp_path / "run", guide=guide, progress=False)
    assert len(guide.seen) > 3 * cfg.num_envs + guide.switch_after
    # Before the switch: sampled pole masses (the spec's loguniform 0.05..0.2 kg).
    before = [d for _, d, after in guide.seen[: guide.switch_after]]
    assert all(0.05 <= d["pole.mass"] <= 0.2 for d in before)
    assert len({d["pole.mass"] for d in before}) > 1
    # After the switch, every env's episodes that STARTED after it (i.e. all but the episode each
    # env was running at the switch) run with the new spec, and env 1 with its assignment.
    running_at_switch: set[int] = set()
    checked = 0
    for env, d, after in guide.seen[guide.switch_after :]:
        assert after
        if env not in running_at_switch:
            # (at most) the episode this env was running when the guide switched: old domain
            running_at_switch.add(env)
            continue
        assert d["pole.mass"] == pytest.approx(0.3)
        if env == 1:
            assert d["cart.mass"] == pytest.approx(2.5)
        else:
            assert 0.5 <= d["cart.mass"] <= 2.0  # still sampled from the spec
        checked += 1
    assert checked >= 3
    # the guide's state is saved in the checkpoint
    ckpt = load_checkpoint(latest_checkpoint(tmp_path / "run"))  # type: ignore[arg-type]
    assert ckpt["guide"]["episodes"] > 0
    assert ckpt["run_info"]["spec"]["parameters"]["pole.mass"] == 0.3


def test_an_assignment_applies_to_the_very_next_episode_of_that_env(tmp_path: Path) -> None:
    """The guide assigns when it sees env 0's first episode end: env 0's second episode (the
    next one) must already run in the assigned domain."""

    class AssignOnFirstEnd(SwitchingGuide):
        def assignments(self, num_envs: int) -> list[Domain | None]:
            done0 = any(env == 0 for env, _, _ in self.seen)
            return [{"pole.mass": 0.15, "motor.gain": 12.0} if done0 else None] * num_envs

    guide = AssignOnFirstEnd(switch_after=10**9)
    train(TINY.replace(num_envs=1, total_steps=256), tmp_path / "run", guide=guide, progress=False)
    episodes = [d for env, d, _ in guide.seen if env == 0]
    assert len(episodes) >= 2
    assert episodes[0]["motor.gain"] != 12.0
    for d in episodes[1:]:
        assert d["pole.mass"] == 0.15 and d["motor.gain"] == 12.0


def test_spec_source_is_the_trivial_guide() -> None:
    spec = domrand.load_spec(domrand.default_spec_path(ENV_ID), env=ENV_ID)
    src = SpecSource(spec)
    assert src.training_spec() is spec
    assert src.assignments(3) == [None, None, None]
    assert src.state_dict() == {}
    src.load_state_dict({})
    assert SpecSource(None).training_spec() is None


def test_train_takes_a_spec_or_a_guide_not_both(tmp_path: Path) -> None:
    with pytest.raises(domrand.DomrandError, match="not both"):
        train(TINY, tmp_path / "r", spec=domrand.default_spec_path(ENV_ID), guide=SpecSource(None))

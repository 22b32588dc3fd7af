"""SimOpt: replays reproduce the real system at the true parameters, identification on CartPole
with a hidden reality from a few real rollouts, the full-covariance output spec, recordings
(open loop), budgets and settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import domrand
from domrand.errors import ConfigError
from domrand.guided import simopt as simopt_module
from domrand.guided.actor import Actor, EpisodePolicy
from domrand.guided.discrepancy import Discrepancy
from domrand.guided.replay import Replayer
from domrand.guided.simopt import SimOpt, SimOptSettings
from domrand.policies.checkpoint import latest_checkpoint, load_checkpoint
from domrand.policies.config import TrainConfig
from domrand.policies.controllers import CartPoleLQR
from domrand.policies.networks import NetConfig, build_policy
from domrand.target import RecordedTarget, SimulatedTarget

ENV = "domrand/CartPole-v0"
TRUTH = {"pole.mass": 0.15, "motor.gain": 12.5, "cart.friction": 0.2}
SPEC = {
    "env": ENV,
    "parameters": {
        "pole.mass": {"dist": "loguniform", "low": 0.05, "high": 0.2},
        "motor.gain": {"dist": "uniform", "low": 7.5, "high": 15.0},
        "cart.friction": {"dist": "loguniform", "low": 0.005, "high": 0.5},
        "action.delay": {"dist": "choice", "values": [0, 1]},
    },
}
TINY = TrainConfig(env=ENV, num_envs=2, num_steps=64, hidden=16, epochs=2, batch_size=64,
                   seq_len=16, checkpoint_every=10**9)  # fmt: skip


def _spec() -> domrand.RandomizationSpec:
    return domrand.load_spec(SPEC, env=ENV)


class NoisyLQR:
    """A recorded-data stand-in: LQR with seeded action noise (an unknown policy to SimOpt)."""

    def __init__(self) -> None:
        self.lqr = CartPoleLQR()
        self.rng = np.random.default_rng(0)

    def reset(self) -> None:
        return None

    def act(self, obs: np.ndarray) -> np.ndarray:
        a = self.lqr(obs) + 0.5 * self.rng.standard_normal(1)
        return np.clip(a, -1, 1).astype(np.float32)


def test_a_replay_at_the_true_parameters_reproduces_the_real_rollout() -> None:
    policy = build_policy(NetConfig(4, 1, "lstm", hidden=16, rl2=True, act_low=(-1.0,),
                                    act_high=(1.0,)))  # fmt: skip
    actor = Actor(policy, noise_std=0.6)
    noise = np.random.default_rng(1).standard_normal((60, 1))
    target = SimulatedTarget(ENV, domain=TRUTH, seed=3, max_steps=60)
    real = target.rollout(EpisodePolicy(actor, noise), 1)[0]
    replayer = Replayer(ENV, {}, num_envs=3)
    try:
        sims = replayer.simulate([TRUTH, {**TRUTH, "pole.mass": 0.1}, {}], real, actor, noise)
        disc = Discrepancy()
        costs = [disc(s, real.observations) for s in sims]
        # closed loop, same noise, same start: only float32 rounding of the start state differs
        assert costs[0] < 1e-3 < costs[1] and costs[0] < costs[2]
        assert np.abs(sims[0] - real.observations).max() < 1e-4
        # sims run as long as the real rollout, whatever happens to the pole
        assert all(s.shape == real.observations.shape for s in sims)
        assert replayer.steps == 3 * len(real)
    finally:
        replayer.close()


@pytest.mark.slow
def test_simopt_identifies_the_hidden_cartpole_knobs(tmp_path: Path) -> None:
    """Three real rollouts, one iteration: every hidden knob within 10% (typically < 1%)."""
    settings = SimOptSettings(knobs=tuple(TRUTH), iterations=1, real_rollouts=3, horizon=100,
                              train_steps=2048, final_steps=0, updates=8, samples=48)  # fmt: skip
    target = SimulatedTarget(ENV, domain={**TRUTH, "action.delay": 0}, seed=0, max_steps=100)
    run = SimOpt(ENV, _spec(), target, tmp_path, settings, TINY, seed=0)
    report = run.run()
    for knob, truth in TRUTH.items():
        err = abs(report["knobs"][knob]["mean"] - truth) / truth
        assert err < 0.10, (knob, report["knobs"][knob])
    budget = report["budget"]
    assert budget["real_rollouts"] == target.rollouts_used == 3
    assert budget["sim_steps"] == 8 * 48 * budget["real_steps"]
    assert budget["train_steps"] == 2048
    # the output: a full-covariance Gaussian over the tuned knobs, the rest as it was
    spec = domrand.load_spec(tmp_path / "spec.yaml")
    (group,) = spec.groups
    assert group.knobs == tuple(TRUTH) and group.dist.name == "mvnormal"
    assert np.count_nonzero(np.asarray(group.dist.cov) - np.diag(np.diag(group.dist.cov))) > 0
    assert [p.knob for p in spec.parameters] == ["action.delay"]
    # per iteration: a spec, a csv row, a plot; the policy checkpoint carries the guide state
    assert (tmp_path / "iter_0" / "spec.yaml").exists() and (tmp_path / "phi.png").exists()
    rows = (tmp_path / "phi.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("iteration,real_rollouts")
    ckpt = load_checkpoint(latest_checkpoint(tmp_path / "policy" / "iter_0"))  # type: ignore[arg-type]
    assert ckpt["guide"]["method"] == "simopt" and "state_json" in ckpt["guide"]


def test_the_output_spec_trains(tmp_path: Path) -> None:
    from domrand.policies.train import train

    settings = SimOptSettings(knobs=("pole.mass", "motor.gain"), iterations=1, horizon=30,
                              train_steps=128, final_steps=128, updates=1, samples=4)  # fmt: skip
    target = SimulatedTarget(ENV, domain=TRUTH, seed=0, max_steps=30)
    report = SimOpt(ENV, _spec(), target, tmp_path / "run", settings, TINY, seed=0).run()
    assert report["policy"].endswith("policy/final")
    result = train(TINY.replace(total_steps=128), tmp_path / "train",
                   spec=tmp_path / "run" / "spec.yaml", progress=False)  # fmt: skip
    assert result.env_steps == 128


def test_simopt_fits_a_recording_open_loop(tmp_path: Path) -> None:
    sim = SimulatedTarget(ENV, domain=TRUTH, seed=1, max_steps=80)
    for i, traj in enumerate(sim.rollout(NoisyLQR(), 2)):
        traj.save(tmp_path / "rec" / f"ep{i}.npz")
    settings = SimOptSettings(knobs=tuple(TRUTH), iterations=1, real_rollouts=2, train_steps=0,
                              updates=6, samples=32, backend="cmaes")  # fmt: skip
    run = SimOpt(ENV, _spec(), RecordedTarget(tmp_path / "rec"), tmp_path / "out", settings,
                 TINY, seed=0)  # fmt: skip
    report = run.run()
    assert report["replay"] == "open" and report["policy"] is None
    with pytest.raises(domrand.DomrandError, match="recording cannot"):
        SimOpt(ENV, _spec(), RecordedTarget(tmp_path / "rec"), tmp_path / "x",
               SimOptSettings(replay="closed"), TINY, 0)  # fmt: skip
    assert report["budget"]["real_rollouts"] == 2 and report["budget"]["train_steps"] == 0
    # six CMA-ES generations from a wide start: already far closer to the truth than the start
    start = yaml.safe_load((tmp_path / "out" / "iter_0" / "spec.yaml").read_text())
    mean0 = start["correlated"][0]["mean"]
    for j, (knob, truth) in enumerate(TRUTH.items()):
        assert abs(report["knobs"][knob]["mean"] - truth) < 0.5 * abs(mean0[j] - truth), knob


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="exceeds max_real_rollouts"):
        SimOptSettings(iterations=4, real_rollouts=3)
    with pytest.raises(ConfigError, match="backend"):
        SimOptSettings(backend="bayes")
    target = SimulatedTarget(ENV, domain=TRUTH, seed=0, max_steps=10)
    with pytest.raises(domrand.DomrandError, match="need a policy"):
        SimOpt(ENV, _spec(), target, Path("unused"), SimOptSettings(train_steps=0), TINY, 0)
    with pytest.raises(domrand.SpecError, match=r"did you mean 'pole\.mass'"):
        SimOpt(ENV, _spec(), target, Path("unused"), SimOptSettings(knobs=("pole.mas",)), TINY, 0)


def test_a_probe_controller_replaces_the_policy(tmp_path: Path) -> None:
    """A scripted controller runs the real rollouts and, closed loop, every replay (with
    multiple shooting every 10 steps); no policy is trained."""
    from domrand.guided.actor import ControllerActor

    lqr = CartPoleLQR()
    calls: list[int] = []

    def probe(obs: np.ndarray, t: int) -> np.ndarray:
        calls.append(t)
        return lqr(obs)

    actor = ControllerActor(probe, 0.5, np.array([-1.0]), np.array([1.0]))
    settings = SimOptSettings(knobs=tuple(TRUTH), iterations=1, real_rollouts=2, horizon=60,
                              train_steps=0, updates=4, samples=32, segment=10)  # fmt: skip
    target = SimulatedTarget(ENV, domain=TRUTH, seed=2, max_steps=60)
    # backend local: `calls` counts the probe's calls in this process (workers hold copies)
    cfg = TINY.replace(backend="local")
    report = SimOpt(ENV, _spec(), target, tmp_path, settings, cfg, 0, probe=actor).run()
    assert report["replay"] == "closed" and report["policy"] is None
    budget = report["budget"]
    assert budget["real_rollouts"] == 2 and budget["train_steps"] == 0
    assert len(calls) == budget["real_steps"] + budget["sim_steps"]
    start = yaml.safe_load((tmp_path / "iter_0" / "spec.yaml").read_text())
    mean0 = dict(zip(TRUTH, start["correlated"][0]["mean"]))
    # the LQR holds the pole upright, so in 60 steps its mass barely shows; the cart's do
    for knob in ("motor.gain", "cart.friction"):
        truth = TRUTH[knob]
        assert abs(report["knobs"][knob]["mean"] - truth) < 0.5 * abs(mean0[knob] - truth), knob


def test_replay_noise_is_what_a_perfect_model_still_gets_wrong() -> None:
    """Without restarts a stand-in replays itself exactly (zero noise); restarting every few
    steps at float32 states of a contact-rich push leaves a nonzero error on the moving parts
    and none on the goal, which never moves."""
    from domrand.guided.actor import ControllerActor

    pusher = "domrand/Pusher-v0"

    def push(obs: np.ndarray, t: int) -> np.ndarray:  # drive the tip into the puck
        return np.clip((obs[4:6] - obs[0:2]) / 0.04, -1.0, 1.0)

    actor = ControllerActor(push, 0.3, -np.ones(2), np.ones(2))
    noise = np.random.default_rng(0).standard_normal((40, 2))
    real = SimulatedTarget(pusher, domain={"puck.mass": 0.3}, seed=0, max_steps=40).rollout(
        EpisodePolicy(actor, noise), 1
    )
    for segment, expect_noise in ((0, False), (5, True)):
        replayer = Replayer(pusher, {}, num_envs=1, segment=segment)
        try:
            sigma = replayer.replay_noise({"puck.mass": 0.25}, real, actor, [noise])
        finally:
            replayer.close()
        assert sigma.shape == (15,) and np.all(sigma[9:11] == 0.0)  # the goal
        assert (sigma[:9].max() > 0.0) == expect_noise, (segment, sigma)
        assert replayer.steps == 2 * len(real[0])


def test_later_iterations_score_against_every_real_rollout_so_far(tmp_path: Path) -> None:
    """reuse: iteration k replays the rollouts of iterations 0..k; off (default): only its own."""
    from domrand.guided.actor import ControllerActor

    lqr = CartPoleLQR()
    actor = ControllerActor(lambda o, t: lqr(o), 0.5, np.array([-1.0]), np.array([1.0]))
    steps = {}
    for reuse in (True, False):
        settings = SimOptSettings(knobs=("motor.gain", "cart.friction"), iterations=2,
                                  real_rollouts=1, horizon=20, train_steps=0, updates=2,
                                  samples=4, segment=10, reuse=reuse, sim_envs=4)  # fmt: skip
        target = SimulatedTarget(ENV, domain=TRUTH, seed=2, max_steps=20)
        out = tmp_path / str(reuse)
        report = SimOpt(ENV, _spec(), target, out, settings, TINY, 0, probe=actor).run()
        steps[reuse] = report["budget"]["sim_steps"]
        assert report["budget"]["real_rollouts"] == 2
    # 2 updates x 4 samples x 20 steps per replayed rollout: 1 + 2 rollouts vs 1 + 1
    assert steps[True] == 2 * 4 * 20 * 3 and steps[False] == 2 * 4 * 20 * 2


def test_noise_weighting_weighs_the_dimensions_by_their_replay_error(tmp_path: Path) -> None:
    from domrand.guided.actor import ControllerActor

    lqr = CartPoleLQR()
    actor = ControllerActor(lambda o, t: lqr(o), 0.5, np.array([-1.0]), np.array([1.0]))
    settings = SimOptSettings(knobs=("motor.gain", "cart.friction"), iterations=1,
                              real_rollouts=1, horizon=30, train_steps=0, updates=1, samples=4,
                              segment=10, weighting="noise", sim_envs=4)  # fmt: skip
    target = SimulatedTarget(ENV, domain=TRUTH, seed=2, max_steps=30)
    report = SimOpt(ENV, _spec(), target, tmp_path, settings, TINY, 0, probe=actor).run()
    # one update of 4 samples, plus the stand-in and its replay (30 steps each)
    assert report["budget"]["sim_steps"] == 4 * 30 + 2 * 30
    with pytest.raises(ConfigError, match="weighting"):
        SimOptSettings(weighting="fisher")


def test_multi_start_keeps_the_start_with_the_lowest_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a toy cost with a wide shallow minimum (motor.gain 9, cost 1) and a narrow deeper one
    (gain 14, cost 0), the starts (the first at the starting mean, the others drawn from the
    starting spec) end in different places, some in the shallow minimum; the start kept is the
    one with the lowest cost at its final mean, here the deeper minimum. The first start is the
    single-start run (same sample stream), and every replay is counted."""
    from domrand.guided.actor import ControllerActor

    def toy(self: Replayer, domains: list, trajs: list, *args: object) -> np.ndarray:
        self.steps += len(domains) * sum(len(t) for t in trajs)
        g = np.array([d["motor.gain"] for d in domains])
        f = np.array([d["cart.friction"] for d in domains])
        return np.minimum(1.0 + ((g - 9.0) / 1.5) ** 2, ((g - 14.0) / 0.5) ** 2) + (f - 0.1) ** 2

    monkeypatch.setattr(Replayer, "costs", toy)
    lqr = CartPoleLQR()
    actor = ControllerActor(lambda o, t: lqr(o), 0.5, np.array([-1.0]), np.array([1.0]))
    gains, reports = {}, {}
    for restarts in (1, 4):
        settings = SimOptSettings(knobs=("motor.gain", "cart.friction"), iterations=1,
                                  real_rollouts=1, horizon=10, train_steps=0, updates=10,
                                  samples=16, sim_envs=4, restarts=restarts)  # fmt: skip
        target = SimulatedTarget(ENV, domain=TRUTH, seed=2, max_steps=10)
        out = tmp_path / str(restarts)
        report = SimOpt(ENV, _spec(), target, out, settings, TINY, 0, probe=actor).run()
        gains[restarts] = report["knobs"]["motor.gain"]["mean"]
        reports[restarts] = report
    import json

    last = json.loads((tmp_path / "4" / "state.json").read_text())["history"][-1]
    costs, means = last["restart_costs"], last["restart_means"]
    assert len(costs) == 4 and last["restart_chosen"] == int(np.argmin(costs))
    assert sum(abs(m[0] - 9.0) < 0.5 for m in means) >= 1  # some start ends in the shallow one
    assert abs(gains[4] - 14.0) < 0.5 and min(costs) < 0.1  # the one kept is the deeper one
    assert means[0][0] == pytest.approx(gains[1])  # the first start is the single-start run
    assert abs(gains[1] - 14.0) > 1.0  # which, in 10 updates, has not got there
    steps = {r: reports[r]["budget"]["sim_steps"] for r in (1, 4)}
    assert steps == {1: 10 * 16 * 10, 4: 4 * (10 * 16 * 10 + 10)}  # + one scoring replay each
    for bad in (0, -2, 1.5, "3", True):
        with pytest.raises(ConfigError, match="restarts"):
            SimOptSettings(restarts=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="restarts > 1 needs backend reps"):
        SimOptSettings(restarts=2, backend="cmaes")


def test_state_jitter_makes_each_replay_a_seeded_draw() -> None:
    """With jitter, a domain's replays start from perturbed real states: the same seed gives the
    same cost, another seed another cost (a contact-rich push amplifies 1e-5 m), and the numbers
    follow each domain's seed, not its place in a batch; without seeds it refuses."""
    from domrand.guided.actor import ControllerActor

    pusher = "domrand/Pusher-v0"

    def push(obs: np.ndarray, t: int) -> np.ndarray:
        return np.clip((obs[4:6] - obs[0:2]) / 0.04, -1.0, 1.0)

    actor = ControllerActor(push, 0.3, -np.ones(2), np.ones(2))
    noise = np.random.default_rng(0).standard_normal((40, 2))
    real = SimulatedTarget(pusher, domain={"puck.mass": 0.3}, seed=0, max_steps=40).rollout(
        EpisodePolicy(actor, noise), 1
    )
    jitter = 1e-4 * real[0].observations.std(axis=0)
    domain = {"puck.mass": 0.3}
    disc = Discrepancy()
    plain = Replayer(pusher, {}, num_envs=2, segment=10)
    jittered = Replayer(pusher, {}, num_envs=2, segment=10, jitter=jitter)
    wide = Replayer(pusher, {}, num_envs=4, segment=10, jitter=jitter)
    try:
        same = plain.costs([domain] * 3, real, disc, actor, [noise])
        assert same[0] == same[1] == same[2]
        seeds = [11, 12, 13, 11]
        costs = jittered.costs([domain] * 4, real, disc, actor, [noise], seeds)
        assert costs[0] == costs[3] and len(set(costs[:3].tolist())) == 3
        assert not np.isclose(costs[0], same[0])
        # a pool of 4 in this process (one batch) gives what batches of 2 gave
        local = wide.local_costs([domain] * 4, real, disc, actor, [noise], seeds)
        np.testing.assert_array_equal(local, costs)
        with pytest.raises(domrand.DomrandError, match="seed per domain"):
            jittered.costs([domain], real, disc, actor, [noise])
    finally:
        for r in (plain, jittered, wide):
            r.close()


def test_jittered_restarts_score_each_final_mean_by_several_replays(tmp_path: Path) -> None:
    from domrand.guided.actor import ControllerActor

    lqr = CartPoleLQR()
    actor = ControllerActor(lambda o, t: lqr(o), 0.5, np.array([-1.0]), np.array([1.0]))
    settings = SimOptSettings(knobs=("motor.gain", "cart.friction"), iterations=1,
                              real_rollouts=1, horizon=20, train_steps=0, updates=2, samples=4,
                              segment=10, sim_envs=4, restarts=2, jitter=1e-3,
                              select_replays=3)  # fmt: skip
    reports = []
    for name in ("a", "b"):
        target = SimulatedTarget(ENV, domain=TRUTH, seed=2, max_steps=20)
        out = tmp_path / name
        reports.append(SimOpt(ENV, _spec(), target, out, settings, TINY, 0, probe=actor).run())
    assert reports[0]["knobs"] == reports[1]["knobs"]  # seeded: the same run twice
    # 2 starts x (2 updates x 4 samples + 3 scoring replays) x 20 steps
    assert reports[0]["budget"]["sim_steps"] == 2 * (2 * 4 + 3) * 20
    with pytest.raises(ConfigError, match="jitter"):
        SimOptSettings(jitter=1.5)
    with pytest.raises(ConfigError, match="select_replays > 1 needs jitter"):
        SimOptSettings(select_replays=2)


def test_log_aggregation_adds_the_logs_of_each_rollouts_discrepancy() -> None:
    """aggregate: log scores a domain by sum_j log D_j (each rollout's noise scale profiled
    out), so one rollout that replays badly everywhere weighs no more than the others; the
    backend path and this process's pool agree."""
    target = SimulatedTarget(ENV, domain=TRUTH, seed=4, max_steps=30)
    real = target.rollout(NoisyLQR(), 3)
    domains = [TRUTH, {**TRUTH, "pole.mass": 0.1}, {**TRUTH, "motor.gain": 9.0}]
    disc = Discrepancy()
    replayer = Replayer(ENV, {}, num_envs=2, segment=10)
    try:
        per = np.array(
            [[disc(s, t.observations) for s in replayer.simulate(domains, t, None, None)]
             for t in real]
        )  # fmt: skip
        summed = replayer.costs(domains, real, disc, None, [None] * 3)
        logged = replayer.costs(domains, real, disc, None, [None] * 3, aggregate="log")
        np.testing.assert_allclose(summed, per.sum(axis=0))
        np.testing.assert_allclose(logged, np.log(per + 1e-9).sum(axis=0))
        with pytest.raises(domrand.DomrandError, match="aggregate"):
            replayer.costs(domains, real, disc, None, [None] * 3, aggregate="median")
    finally:
        replayer.close()
    with pytest.raises(ConfigError, match="aggregate"):
        SimOptSettings(aggregate="mean")


def _rough_valley(self: Replayer, domains: list, trajs: list, *args: object) -> np.ndarray:
    """A toy cost: a long, shallow valley (along motor.gain up, cart.friction down) with its
    minimum at gain 12, friction 0.2, under a deterministic roughness deeper than the valley's
    floor rises over a std of either knob."""
    self.steps += len(domains) * sum(len(t) for t in trajs)
    g = np.array([d["motor.gain"] for d in domains])
    f = np.array([d["cart.friction"] for d in domains])
    u, v = (g - 12.0) / 2.0, (f - 0.2) / 0.1
    return 4.0 * (u + v) ** 2 + 0.2 * (u - v) ** 2 + np.sin(37 * g + 91 * f)


def _polish_run(out: Path, polish: int) -> dict:
    from domrand.guided.actor import ControllerActor

    lqr = CartPoleLQR()
    actor = ControllerActor(lambda o, t: lqr(o), 0.5, np.array([-1.0]), np.array([1.0]))
    settings = SimOptSettings(knobs=("motor.gain", "cart.friction"), iterations=1,
                              real_rollouts=1, horizon=10, train_steps=0, updates=4, samples=16,
                              sim_envs=4, polish=polish, polish_samples=32)  # fmt: skip
    target = SimulatedTarget(ENV, domain=TRUTH, seed=2, max_steps=10)
    return SimOpt(ENV, _spec(), target, out, settings, TINY, 0, probe=actor).run()


def test_the_surrogate_polish_finds_the_minimum_under_a_rough_cost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4 REPS updates on a rough valley end away from its minimum; 4 polish rounds (a quadratic
    through every round's samples) bring the mean close to it. Every polish sample is counted,
    and a run killed between rounds resumes to the same numbers."""
    monkeypatch.setattr(Replayer, "costs", _rough_valley)
    plain = _polish_run(tmp_path / "plain", 0)
    polished = _polish_run(tmp_path / "polished", 4)

    def error(report: dict) -> float:  # in the toy's units (2 gain, 0.1 friction)
        k = report["knobs"]
        return abs(k["motor.gain"]["mean"] - 12.0) / 2 + abs(k["cart.friction"]["mean"] - 0.2) / 0.1

    assert error(polished) < 0.15 and error(plain) > 3 * error(polished)
    extra = polished["budget"]["sim_steps"] - plain["budget"]["sim_steps"]
    assert extra == 4 * 32 * 10
    import json

    last = json.loads((tmp_path / "polished" / "state.json").read_text())["history"][-1]
    assert last["polish_rounds"] == 4 and last["polish_residual_sd"] > 0.1  # the roughness

    calls = {"n": 0}
    original = simopt_module.polish_round

    def dies_in_round_3(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        original(*args)

    monkeypatch.setattr(simopt_module, "polish_round", dies_in_round_3)
    with pytest.raises(KeyboardInterrupt):
        _polish_run(tmp_path / "killed", 4)
    monkeypatch.setattr(simopt_module, "polish_round", original)
    resumed = _polish_run(tmp_path / "killed", 4)
    assert resumed["knobs"] == polished["knobs"]
    assert resumed["budget"]["sim_steps"] == polished["budget"]["sim_steps"]


def test_polish_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="polish > 0 needs backend reps"):
        SimOptSettings(polish=2, backend="cmaes")
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="polish"):
            SimOptSettings(polish=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="polish_width"):
        SimOptSettings(polish=1, polish_width=0.0)
    target = SimulatedTarget(ENV, domain=TRUTH, seed=0, max_steps=10)
    settings = SimOptSettings(knobs=("pole.mass", "motor.gain", "cart.friction"), polish=1,
                              polish_samples=10)  # fmt: skip
    with pytest.raises(ConfigError, match="polish_samples must be > 10 for 3 tuned knobs"):
        SimOpt(ENV, _spec(), target, Path("unused"), settings, TINY, 0)

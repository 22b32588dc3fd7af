"""CMA-ES: finds a known optimum, seeded without global state, checkpoint and exact continuation;
bilevel and SO-CMA runs on CartPole with tiny budgets (outputs, budgets, per-candidate resume)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

import domrand
from domrand.errors import ConfigError, SpecValueError
from domrand.guided.cma_eval import Candidate, Outcome
from domrand.guided.cma_state import CMA
from domrand.guided.cmaes import Bilevel, CMAESSettings, StrategyOptimization
from domrand.policies.checkpoint import latest_checkpoint, load_checkpoint
from domrand.policies.config import TrainConfig
from domrand.target import SimulatedTarget

ENV = "domrand/CartPole-v0"
SPEC = {
    "env": ENV,
    "parameters": {
        "pole.mass": {"dist": "loguniform", "low": 0.05, "high": 0.2},
        "motor.gain": {"dist": "uniform", "low": 7.5, "high": 15.0},
        "action.delay": {"dist": "choice", "values": [0, 1, 2]},
        "gravity": 9.81,
    },
}
TINY = TrainConfig(env=ENV, num_envs=2, num_steps=64, hidden=8, epochs=1, batch_size=64,
                   seq_len=16, checkpoint_every=10**9)  # fmt: skip
OPTIMUM = np.array([0.3, 0.7, 0.1, 0.9])


def _ellipsoid(x: np.ndarray) -> float:
    """An ill-conditioned quadratic with its minimum 0 at OPTIMUM, inside [0, 1]^4."""
    return float(np.sum(10.0 ** np.arange(4) * (np.asarray(x) - OPTIMUM) ** 2))


def _run(es: CMA, generations: int) -> list[np.ndarray]:
    asked = []
    for _ in range(generations):
        x = es.ask()
        asked.append(x)
        es.tell(x, [_ellipsoid(xi) for xi in x])
    return asked


def test_cma_es_finds_a_known_optimum_without_touching_the_global_rng() -> None:
    before = np.random.get_state()[1].copy()  # type: ignore[index]  # noqa: NPY002
    es = CMA([0.5] * 4, 0.25, seed=0)
    _run(es, 120)
    assert np.abs(es.mean - OPTIMUM).max() < 1e-3
    best_x, best_f = es.best
    assert best_f < 1e-6 and np.abs(best_x - OPTIMUM).max() < 1e-3  # type: ignore[operator]
    assert np.array_equal(np.random.get_state()[1], before)  # type: ignore[index]  # noqa: NPY002
    # the default population of the notes: 4 + floor(3 ln n)
    assert es.popsize_now == 4 + int(3 * np.log(4))


def test_same_seed_same_search_and_an_optimum_on_the_box_edge() -> None:
    a, b = CMA([0.5] * 4, 0.25, seed=3), CMA([0.5] * 4, 0.25, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(_run(a, 5), _run(b, 5)))
    edge = CMA([0.5, 0.5], 0.25, seed=1)
    for _ in range(80):
        x = edge.ask()
        assert np.all((x >= 0) & (x <= 1))
        edge.tell(x, [float(np.sum((xi - [1.0, 0.2]) ** 2)) for xi in x])
    assert np.abs(edge.mean - [1.0, 0.2]).max() < 1e-2


def test_a_json_checkpoint_continues_exactly() -> None:
    es = CMA([0.5] * 4, 0.3, seed=5, popsize=7)
    _run(es, 6)
    saved = json.loads(json.dumps(es.state_dict()))  # plain data: no pickle anywhere
    reference = _run(es, 8)
    resumed = CMA.from_state(saved)
    assert resumed.generation == 6
    assert all(np.array_equal(x, y) for x, y in zip(_run(resumed, 8), reference))
    np.testing.assert_array_equal(resumed.mean, es.mean)


def test_a_checkpoint_from_another_cma_version_restores_the_distribution() -> None:
    es = CMA([0.5] * 4, 0.3, seed=5)
    _run(es, 10)
    saved = es.state_dict()
    saved["cma_version"] = "0.0"
    approx = CMA.from_state(saved)
    np.testing.assert_allclose(approx.mean, es.mean)
    np.testing.assert_allclose(approx.cov, es.cov)
    _run(approx, 100)  # and the search goes on to the optimum
    assert np.abs(approx.mean - OPTIMUM).max() < 1e-3


# ---------------------------------------------------------------------- the guided runs
def _bilevel(out: Path, cfg: TrainConfig = TINY, **kw: object) -> Bilevel:
    settings = CMAESSettings(generations=2, popsize=3, pretrain_steps=256, finetune_steps=128,
                             eval_rollouts=2, horizon=40, **kw)  # type: ignore[arg-type]  # fmt: skip
    target = SimulatedTarget(ENV, reality="heavy_pole", seed=0, max_steps=40)
    return Bilevel(ENV, domrand.load_spec(SPEC, env=ENV), target, out, settings, cfg, 0)


def test_bilevel_tunes_truncated_normals_with_fine_tuned_candidates(tmp_path: Path) -> None:
    run = _bilevel(tmp_path, knobs=("pole.mass", "motor.gain", "action.delay"))
    report = run.run()
    b = report["budget"]
    assert b["real_rollouts"] == 2 * 3 * 2 and b["train_steps"] == 256 + 6 * 128
    # every generation: a spec `domrand train` accepts, a csv row, the plot
    for g in range(3):
        spec = domrand.load_spec(tmp_path / f"iter_{g}" / "spec.yaml", env=ENV)
        assert {p.knob: p.dist.name for p in spec.parameters} == {
            "gravity": "constant", "pole.mass": "truncnormal", "motor.gain": "truncnormal",
            "action.delay": "truncnormal"}  # fmt: skip
        delay = next(p.dist for p in spec.parameters if p.knob == "action.delay")
        assert (delay.low, delay.high) == (0.0, 2.0)  # cut to the starting spec's range
    assert len((tmp_path / "phi.csv").read_text().splitlines()) == 4
    assert (tmp_path / "phi.png").stat().st_size > 0
    # candidates are warm-started from the best one of the previous generation
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["parent"].startswith("policy/gen_1/cand_")
    cand = tmp_path / "policy" / "gen_1" / "cand_0"
    assert (cand / "metrics.csv").exists()
    guide = load_checkpoint(latest_checkpoint(cand))["guide"]  # type: ignore[arg-type]
    assert guide["method"] == "cmaes" and json.loads(guide["state_json"])["generation"] == 1
    assert domrand.load_spec(tmp_path / "best_spec.yaml", env=ENV).parameters
    assert report["best_return"] == max(h["return_best"] for h in run.ck.history[1:])


def _comparable(state: dict[str, object]) -> dict[str, object]:
    """A guide state without its wall-clock entries."""
    out = json.loads(json.dumps(state))
    out["budget"].pop("wall_s")
    for row in out["history"]:
        row.pop("wall_s")
    return out  # type: ignore[no-any-return]


def test_bilevel_resumes_mid_generation_bit_identically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after a round of generation 1 (2 workers: candidates 0 and 1 saved, 2 not), the
    resumed run evaluates candidate 2 only and ends exactly like a run never killed: every
    candidate has its own seeds, its target copy included."""
    cfg = TINY.replace(backend="subprocess", workers=2)
    calls: list[list[tuple[int, int]]] = []
    original = Bilevel.evaluate

    def dies_at_the_fourth_round(self: Bilevel, cands: list[Candidate]) -> list[Outcome]:
        if len(calls) == 3:
            raise KeyboardInterrupt  # stands in for kill -9 after the third round's save
        calls.append([(c.generation, c.index) for c in cands])
        return original(self, cands)

    monkeypatch.setattr(Bilevel, "evaluate", dies_at_the_fourth_round)
    with pytest.raises(KeyboardInterrupt):
        _bilevel(tmp_path / "killed", cfg=cfg).run()
    assert calls == [[(0, 0), (0, 1)], [(0, 2)], [(1, 0), (1, 1)]]  # rounds of 2 workers
    saved = json.loads((tmp_path / "killed" / "state.json").read_text())
    assert saved["generation"] == 1 and saved["pending"]["cost"][2] is None
    seen: list[tuple[int, int, list[float]]] = []

    def records(self: Bilevel, cands: list[Candidate]) -> list[Outcome]:
        seen.extend((c.generation, c.index, c.x.tolist()) for c in cands)
        return original(self, cands)

    monkeypatch.setattr(Bilevel, "evaluate", records)
    report = _bilevel(tmp_path / "killed", cfg=cfg).run()
    # only the candidate left is evaluated: the very one the killed run had asked for
    assert [(g, i) for g, i, _ in seen] == [(1, 2)]
    assert [x for _, _, x in seen] == saved["pending"]["x"][2:]
    assert report["generations"] == 2
    assert report["budget"]["real_rollouts"] == 2 * 3 * 2  # none repeated
    final = json.loads((tmp_path / "killed" / "state.json").read_text())
    assert final["history"][:2] == saved["history"]
    monkeypatch.setattr(Bilevel, "evaluate", original)
    _bilevel(tmp_path / "straight", cfg=cfg).run()
    straight = json.loads((tmp_path / "straight" / "state.json").read_text())
    assert _comparable(final) == _comparable(straight)


def test_so_cma_searches_the_domain_of_a_universal_policy(tmp_path: Path) -> None:
    settings = CMAESSettings(mode="socma", universal_steps=256, episodes_per_candidate=2,
                             target_steps=150, generations=10, horizon=30)  # fmt: skip
    spec = domrand.load_spec(SPEC, env=ENV)
    target = SimulatedTarget(ENV, reality="heavy_pole", seed=0, max_steps=30)
    report = StrategyOptimization(ENV, spec, target, tmp_path, settings, TINY, 0).run()
    # the universal policy sees the observation plus mu over the 3 bounded knobs
    cfg = yaml.safe_load((tmp_path / "policy" / "universal" / "config.yaml").read_text())
    assert "Mu" in cfg["env"]
    info = load_checkpoint(latest_checkpoint(tmp_path / "policy" / "universal"))["run_info"]  # type: ignore[arg-type]
    assert info["net_config"]["obs_dim"] == 4 + 3
    # the search stops once the target-step budget is spent (checked between generations)
    b = report["budget"]
    popsize = 4 + int(3 * np.log(3))
    assert b["real_steps"] >= 150 and b["real_rollouts"] % (2 * popsize) == 0
    assert b["real_steps"] - 150 <= 2 * popsize * 30
    domain = domrand.load_domain(tmp_path / "best_domain.yaml", env=ENV)
    assert set(domain) == {"pole.mass", "motor.gain", "action.delay"}
    assert 0.05 <= domain["pole.mass"] <= 0.2 and domain["action.delay"] in (0, 1, 2)
    spec_g = domrand.load_spec(tmp_path / "spec.yaml", env=ENV)
    assert spec_g.groups[0].dist.name == "mvnormal"


def test_bad_settings_and_nothing_to_tune(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mode"):
        CMAESSettings(mode="cem")
    with pytest.raises(ConfigError, match="sigma0"):
        CMAESSettings(sigma0=0.0)
    target = SimulatedTarget(ENV, reality="heavy_pole", seed=0)
    pinned = domrand.load_spec({"env": ENV, "parameters": {"pole.mass": 0.1}}, env=ENV)
    with pytest.raises(SpecValueError, match="nothing to tune"):
        Bilevel(ENV, pinned, target, tmp_path, CMAESSettings(), TINY, 0)
    point_mass = domrand.load_spec(
        {"env": ENV, "parameters": {"pole.damping": {"dist": "normal", "mean": 0.0, "std": 0.0}}},
        env=ENV,
    )
    with pytest.raises(SpecValueError, match="SO-CMA conditions"):
        StrategyOptimization(ENV, point_mass, target, tmp_path, CMAESSettings(mode="socma"),
                             TINY, 0)  # fmt: skip

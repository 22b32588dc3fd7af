"""The transfer benchmark's plumbing: cells, cache/resume, normalized score, reports, CLI errors.

Tiny budgets (a few thousand PPO steps on CartPole, one reality, two methods and the oracle): this
checks what is written and how, not how well anything transfers (benchmarks/transfer.py does).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from domrand.bench import transfer as bench
from domrand.bench.methods import EnvPlan, unsupported
from domrand.bench.report import (
    beyond_2se_lines,
    normalized,
    paired_difference,
    summarize,
    verdicts,
)
from domrand.bench.tiers import TIERS
from domrand.cli import main

CARTPOLE = "domrand/CartPole-v0"


def _tiny_plan(monkeypatch: pytest.MonkeyPatch) -> EnvPlan:
    plan = dataclasses.replace(TIERS["quick"][CARTPOLE], train_steps=1024, episodes=1, hidden=16)
    # one reality keeps the oracle to a single 1k-step run
    monkeypatch.setattr(bench, "realities_of", lambda p: ["heavy_pole"])
    return plan


def test_run_writes_reports_and_resumes_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _tiny_plan(monkeypatch)
    plans = {CARTPOLE: plan}
    logs: list[str] = []
    doc = bench.run_transfer("t", plans, ["no_dr", "uniform", "oracle"], [0], cache=tmp_path / "c",
                             out=tmp_path / "out", jobs=1, log=logs.append)  # fmt: skip
    assert "4 cells, 0 cached, 4 to run" in logs[0]
    with open(tmp_path / "out" / "transfer_t.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == {"no_dr", "uniform", "oracle"}
    assert all(r["reality"] == "heavy_pole" and int(r["episodes"]) == 1 for r in rows)
    assert all(int(r["lineage_steps"]) == 1024 for r in rows)
    md = (tmp_path / "out" / "transfer_t.md").read_text(encoding="utf-8")
    assert "| uniform DR |" in md and "## Verdict" in md
    assert (tmp_path / "out" / "transfer_t_cartpole.png").stat().st_size > 1000
    # the JSON says what each cell depended on and what it ran under (for digit-for-digit checks)
    saved = json.loads((tmp_path / "out" / "transfer_t.json").read_text(encoding="utf-8"))
    assert sorted(saved["cells"]) == sorted(["cartpole/no_dr_seed0", "cartpole/uniform_seed0",
                                             "cartpole/oracle_heavy_pole_seed0",
                                             "cartpole/random_seed0"])  # fmt: skip
    cell = bench.Cell(CARTPOLE, "no_dr", 0)
    assert saved["cells"]["cartpole/no_dr_seed0"]["fingerprint"] == bench.fingerprint(cell, plan)
    assert saved["machine"]["libraries"]["torch"] == torch.__version__
    assert set(saved["summary"][CARTPOLE]) == {"no_dr", "uniform", "oracle"}
    # one oracle seed: its score is exactly 1, unless it is no better than random (undefined)
    rand, orc = saved["references"][CARTPOLE]["heavy_pole"]
    oracle = float(next(r for r in rows if r["method"] == "oracle")["normalized"])
    assert oracle == pytest.approx(1.0) if orc > rand else math.isnan(oracle)
    no_dr = next(r for r in rows if r["method"] == "no_dr")
    assert float(no_dr["normalized"]) == pytest.approx(
        normalized(float(no_dr["return_mean"]), rand, orc), nan_ok=True
    )

    # a re-run trains nothing: every cell comes from the cache, the numbers are the same
    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a cached cell was trained again")

    monkeypatch.setattr(bench, "train_method", boom)
    logs.clear()
    again = bench.run_transfer("t", plans, ["no_dr", "uniform", "oracle"], [0],
                               cache=tmp_path / "c", out=tmp_path / "out", jobs=1,
                               log=logs.append)  # fmt: skip
    assert "4 cached, 0 to run" in logs[0]
    assert [r["return_mean"] for r in again["rows"]] == [r["return_mean"] for r in doc["rows"]]
    # a changed plan invalidates its cells (the fingerprint), so they would be trained again;
    # report_only trains nothing and lists them as missing
    changed = {CARTPOLE: dataclasses.replace(plan, train_steps=2048)}
    partial = bench.run_transfer("t", changed, ["no_dr"], [0], cache=tmp_path / "c",
                                 out=tmp_path / "partial", jobs=1, report_only=True,
                                 log=logs.append)  # fmt: skip
    assert partial["cells_missing"] == ["cartpole/no_dr_seed0"]
    assert "**incomplete**" in (tmp_path / "partial" / "transfer_t.md").read_text("utf-8")
    with pytest.raises(AssertionError, match="trained again"):
        bench.run_transfer("t", changed, ["no_dr"], [0], cache=tmp_path / "c",
                           out=tmp_path / "out", jobs=1, log=logs.append)  # fmt: skip


def test_fingerprint_follows_the_shipped_files_a_cell_reads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import domrand.registry as registry

    plan = TIERS["quick"][CARTPOLE]
    cells = [bench.Cell(CARTPOLE, m, 0) for m in ("no_dr", "uniform", "autodr", "random")]
    before = {c.method: bench.fingerprint(c, plan) for c in cells}
    # an edited default spec touches the methods that sample it, not no DR or the random policy
    spec = tmp_path / "cartpole.yaml"
    spec.write_bytes(registry.default_spec_path(CARTPOLE).read_bytes() + b"# edited\n")
    monkeypatch.setattr(registry, "default_spec_path", lambda env_id: spec)
    after = {c.method: bench.fingerprint(c, plan) for c in cells}
    assert [m for m in before if before[m] != after[m]] == ["uniform", "autodr"]
    # an edited reality touches every cell, the random policy's too (each is scored on it)
    shipped = registry.realities(CARTPOLE)
    edited = tmp_path / "heavy_pole.yaml"
    edited.write_bytes(shipped["heavy_pole"].read_bytes() + b"# edited\n")
    monkeypatch.setattr(registry, "realities", lambda env_id: {**shipped, "heavy_pole": edited})
    again = {c.method: bench.fingerprint(c, plan) for c in cells}
    assert [m for m in after if after[m] != again[m]] == ["no_dr", "uniform", "autodr", "random"]


def test_an_envs_trainer_settings_reach_every_method_and_the_fingerprint() -> None:
    from domrand.bench.methods import train_config

    plan = TIERS["quick"][CARTPOLE]
    assert "ppo" not in plan.to_dict()  # plans without settings keep their cached cells
    tuned = dataclasses.replace(plan, ppo={"target_kl": 0.02, "ent_coef": 0.01})
    cfg = train_config(tuned, seed=3)
    assert (cfg.target_kl, cfg.ent_coef, cfg.seed) == (0.02, 0.01, 3)
    assert train_config(plan, seed=3).target_kl is None
    cell = bench.Cell(CARTPOLE, "no_dr", 0)
    assert bench.fingerprint(cell, tuned) != bench.fingerprint(cell, plan)


def test_an_env_revision_invalidates_that_envs_cells_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from domrand.envs.cartpole import CartPoleEnv
    from domrand.envs.pusher import PusherForceEnv

    pusher = "domrand/PusherForce-v0"
    assert bench.env_revision(CARTPOLE) == 0 and bench.env_revision(pusher) >= 1
    cells = [bench.Cell(CARTPOLE, "uniform", 0), bench.Cell(pusher, "uniform", 0)]
    before = [bench.fingerprint(c, TIERS["quick"][c.env_id]) for c in cells]
    monkeypatch.setattr(PusherForceEnv, "revision", PusherForceEnv.revision + 1)
    after = [bench.fingerprint(c, TIERS["quick"][c.env_id]) for c in cells]
    assert before[0] == after[0] and before[1] != after[1]
    monkeypatch.setattr(CartPoleEnv, "revision", 1)  # a first revision enters the fingerprint
    assert bench.fingerprint(cells[0], TIERS["quick"][CARTPOLE]) != before[0]


def test_normalized_score_between_random_and_oracle() -> None:
    assert normalized(-10.0, -40.0, -5.0) == pytest.approx(30 / 35)  # negative-return envs
    assert normalized(500.0, 20.0, 500.0) == pytest.approx(1.0)
    assert normalized(20.0, 20.0, 500.0) == pytest.approx(0.0)
    assert math.isnan(normalized(30.0, 20.0, 15.0))  # oracle no better than random: undefined


def _row(method: str, seed: int, reality: str, ret: float) -> dict[str, Any]:
    return {"env": "E", "method": method, "seed": seed, "reality": reality, "return_mean": ret,
            "is_target": False, "success_rate": 0.0, "real_rollouts": 0, "real_steps": 0,
            "sim_steps": 0, "train_steps": 1, "lineage_steps": 1, "train_minutes": 0.0}  # fmt: skip


def test_summary_and_verdict_say_who_wins() -> None:
    rows = [_row("random", 0, r, 0.0) for r in ("a", "b")]
    rows += [_row("oracle", 0, "a", 10.0), _row("oracle", 0, "b", 20.0)]
    for s, (x, y) in enumerate([(4.0, 6.0), (6.0, 8.0)]):
        rows += [_row("no_dr", s, "a", x), _row("no_dr", s, "b", y)]
        rows += [_row("uniform", s, "a", x + 1), _row("uniform", s, "b", y - 3)]
    summary = summarize(rows)["E"]
    assert summary["no_dr"]["return_per_seed"] == [5.0, 7.0]
    assert summary["no_dr"]["return_std"] == pytest.approx(1.0)
    assert summary["uniform"]["per_reality"]["a"]["normalized"] == pytest.approx(0.6)
    v = verdicts({"E": summary})
    assert v["uniform_beats_no_dr"] == {"E": False}  # mean 5 vs 6 over realities
    assert "does NOT beat no DR" in v["lines"][0] and "higher on 1/2 realities" in v["lines"][0]
    assert "higher on 0/2 seeds" in v["lines"][0]  # 5 < 6 on seed 0, 7 < 8 on seed 1
    assert not v["a_guided_method_beats_uniform_on_two_envs"]
    # the oracle (10, 20) beats no DR's means (5, 7) on a and b: a gap of 5 and 13 to close
    assert v["reality_gaps"]["E"]["a"]["gap"] == pytest.approx(5.0)
    assert v["reality_gaps"]["E"]["b"]["gap"] == pytest.approx(13.0)
    assert v["lines"][-1] == "E: the oracle beats no DR on 2/2 realities"


def test_verdict_counts_wins_beyond_seed_noise_apart() -> None:
    """A higher mean counts as "beats"; the beyond-2-SE keys and line count only paired
    differences more than 2 standard errors from 0."""
    rows = [_row("random", 0, "a", 0.0)]
    for s, x in enumerate([5.0, 6.0, 7.0]):
        u = x + [1.0, 2.0, 0.5][s]  # uniform - no DR: mean 1.17, SE 0.44 -> beyond 2 SE
        rows += [_row("no_dr", s, "a", x), _row("uniform", s, "a", u)]
        rows += [_row("simopt", s, "a", u + [3.0, -2.0, 1.0][s])]  # mean 0.67, SE 1.45: noise
        rows += [_row("adr", s, "a", u + [1.0, 2.0, 0.5][s])]  # beyond 2 SE, like uniform's
    v = verdicts({"E": summarize(rows)["E"]})
    assert v["guided_beats_uniform"] == {"simopt": ["E"], "adr": ["E"]}
    assert v["uniform_beats_no_dr_beyond_2se"] == {"E": True}
    assert v["guided_beats_uniform_beyond_2se"] == {"adr": ["E"]}
    assert any("SimOpt beats uniform DR" in ln and "within 2 SE of 0" in ln for ln in v["lines"])
    assert beyond_2se_lines(v) == [
        "- counting only wins beyond 2 SE of 0: uniform DR beats no DR on E (1/1 envs); "
        "a guided method beats uniform DR on E (two or more: False)"
    ]
    v = verdicts({"E": summarize([r for r in rows if r["method"] != "adr"])["E"]})
    assert v["envs_where_a_guided_method_beats_uniform"] == ["E"]  # SimOpt's higher mean
    assert v["envs_where_a_guided_method_beats_uniform_beyond_2se"] == []
    assert "a guided method beats uniform DR on no env" in beyond_2se_lines(v)[0]


def test_verdict_names_the_realities_a_nominal_policy_already_masters() -> None:
    rows = [_row("random", 0, r, 0.0) for r in ("a", "b")]
    rows += [_row("oracle", 0, "a", 10.0), _row("oracle", 1, "a", 6.0), _row("oracle", 0, "b", 4)]
    for s in (0, 1):
        rows += [_row("no_dr", s, "a", 7.0), _row("no_dr", s, "b", 4.0 + s)]
        rows += [_row("uniform", s, "a", 8.0), _row("uniform", s, "b", 3.0 + 2 * s)]
    v = verdicts(summarize(rows))
    gaps = v["reality_gaps"]["E"]
    assert gaps["a"] == pytest.approx({"oracle": 8.0, "no_dr": 7.0, "gap": 1.0})
    assert gaps["b"]["gap"] == pytest.approx(-0.5)  # no DR 4.5 on b, the oracle 4
    assert v["lines"][-1] == (
        "E: the oracle beats no DR on 1/2 realities; no gap to close on b (no DR >= oracle)"
    )
    # uniform 5.5 and 6.5 per seed against no DR's 5.5 and 6: a tie is not higher
    assert "beats no DR (6.00 vs 5.75" in v["lines"][0]
    assert "higher on 1/2 seeds (tied on 1)" in v["lines"][0]


def test_paired_difference_pairs_seeds_and_gives_its_standard_error() -> None:
    rows = []
    # uniform minus no DR per seed (mean over realities a, b): +1, +3, -1 -> mean 1, SE 1.1547
    for s, d in enumerate([1.0, 3.0, -1.0]):
        rows += [_row("no_dr", s, "a", 10.0 * s), _row("no_dr", s, "b", 2.0)]
        rows += [_row("uniform", s, "a", 10.0 * s + d), _row("uniform", s, "b", 2.0 + d)]
    summary = summarize(rows)["E"]
    d = paired_difference(summary["uniform"], summary["no_dr"])
    assert d["seeds"] == [0, 1, 2] and d["higher"] == 2 and d["tied"] == 0
    assert d["mean"] == pytest.approx(1.0)
    assert d["se"] == pytest.approx(2.0 / 3**0.5)  # sample std 2 over sqrt(3)
    # the seed-to-seed spread (10 per seed) cancels: it is not in the paired SE
    assert summary["no_dr"]["return_std"] > 3
    line = verdicts({"E": summary})["lines"][0]
    assert "higher on 2/3 seeds; paired difference +1.00 +- 1.15 SE, within 2 SE of 0" in line
    # a difference beyond 2 SE is not flagged: +3, +4, +5 per seed (mean 4, SE 0.58)
    no_dr = [r for r in rows if r["method"] == "no_dr"]
    far = [dict(r, method="uniform", return_mean=r["return_mean"] + 3.0 + r["seed"])
           for r in no_dr]  # fmt: skip
    far_line = verdicts(summarize(no_dr + far))["lines"][0]
    assert "paired difference +4.00 +- 0.58 SE;" in far_line and "within" not in far_line
    # one common seed: a difference, but no standard error
    one = paired_difference(summary["uniform"], {**summary["no_dr"], "seeds": [1],
                                                 "return_per_seed": [6.0]})  # fmt: skip
    assert one["seeds"] == [1] and one["mean"] == pytest.approx(3.0)
    assert math.isnan(one["se"])


def test_simopt_is_skipped_where_the_env_cannot_restore_a_state() -> None:
    assert unsupported("simopt", CARTPOLE) is None
    assert unsupported("simopt", "domrand/KukaReach-v0") is None
    loc = "domrand/Localization-v0"  # no reset(options={"state": ...})
    assert "recorded state" in (unsupported("simopt", loc) or "")
    plan = dataclasses.replace(TIERS["quick"]["domrand/KukaReach-v0"], env_id=loc)
    cells = bench.plan_cells({loc: plan}, ["simopt", "uniform"], [0, 1])
    assert [c.method for c in cells] == ["random", "uniform", "uniform"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--tier", "quik"], "unknown tier 'quik' (did you mean 'quick'?)"),
        (["--envs", "pusher"], "did you mean 'pusher_force'?"),  # the benchmark's Pusher
        (["--methods", "simop"], "unknown method 'simop' (did you mean 'simopt'?)"),
        (["--jobs", "0"], "jobs must be >= 1"),
        (["--seeds", "-1"], "seeds must be"),
    ],
)
def test_cli_refuses_bad_arguments_in_one_line(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", "transfer", *argv, "--out", str(tmp_path), "--cache", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("domrand: error:") and needle in err
    assert err.count("\n") == 1 and "Traceback" not in err

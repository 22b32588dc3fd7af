"""Turn the transfer benchmark's rows into a CSV, a Markdown table, JSON and one plot per env.

**Normalized transfer score** of a return R on a reality: (R - R_random) / (R_oracle - R_random),
where R_random is a uniformly random policy's mean return there and R_oracle the mean (over the
oracle's seeds) of a policy trained on that reality itself with the same budget. 0 = random,
1 = oracle. Plain R / R_oracle would be meaningless for Pusher and KukaReach, whose returns are
negative (distance costs); the random policy fixes the zero for every env alike. When the oracle
is no better than random on a reality (R_oracle <= R_random) the score is undefined there and
left out (shown as n/a). A method can exceed 1: the oracle is trained with a small budget too.

"Averaged over realities" means: per seed, the mean over the env's realities; then mean and
(population) std over seeds. "Beats" compares those means; the per-reality and per-seed wins are
counted too.

**Reality gap** of a reality: the oracle's return there minus no DR's. It is what DR has to
close; where it is <= 0 the nominal policy is already as good as the oracle, and that reality
can show only what DR costs, not what it gains. The verdict lists such realities.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from domrand.bench.methods import METHODS
from domrand.fsutil import atomic_write_text

__all__ = [
    "normalized",
    "paired_difference",
    "reality_gaps",
    "summarize",
    "verdicts",
    "write_reports",
]

CSV_FIELDS = (
    "env", "method", "seed", "reality", "is_target", "return_mean", "return_std", "normalized",
    "success_rate", "episodes", "faults", "lineage_steps", "train_steps", "real_rollouts",
    "real_steps", "sim_steps", "train_minutes",
)  # fmt: skip
GUIDED = ("cmaes", "simopt", "adr", "autodr")


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.fmean(xs) if xs else math.nan


def _std(xs: list[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.pstdev(xs) if len(xs) > 1 else (0.0 if xs else math.nan)


def references(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[float, float]]:
    """(env, reality) -> (random policy's mean return, oracle's mean return over its seeds)."""
    rand = {(r["env"], r["reality"]): r["return_mean"] for r in rows if r["method"] == "random"}
    orc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        if r["method"] == "oracle":
            orc[(r["env"], r["reality"])].append(r["return_mean"])
    keys = set(rand) | set(orc)
    return {k: (rand.get(k, math.nan), _mean(orc.get(k, []))) for k in keys}


def normalized(ret: float, random_ret: float, oracle_ret: float) -> float:
    """(R - random) / (oracle - random); NaN when the oracle does not beat random."""
    span = oracle_ret - random_ret
    if math.isnan(span) or span <= 1e-9 * max(1.0, abs(oracle_ret)):
        return math.nan
    return (ret - random_ret) / span


def with_scores(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    refs = references(rows)
    out = []
    for r in rows:
        if r["method"] == "random":
            continue
        rand, orc = refs.get((r["env"], r["reality"]), (math.nan, math.nan))
        out.append({**r, "normalized": normalized(r["return_mean"], rand, orc)})
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """env -> method -> mean over realities (per seed, then over seeds), per reality, budgets."""
    scored = with_scores(rows)
    out: dict[str, dict[str, Any]] = {}
    for env in dict.fromkeys(r["env"] for r in scored):
        out[env] = {}
        for m in METHODS:
            mine = [r for r in scored if r["env"] == env and r["method"] == m]
            if not mine:
                continue
            seeds = sorted({r["seed"] for r in mine})
            by_seed = [[r for r in mine if r["seed"] == s] for s in seeds]
            per_seed_ret = [_mean([r["return_mean"] for r in rs]) for rs in by_seed]
            per_seed_norm = [_mean([r["normalized"] for r in rs]) for rs in by_seed]
            per_reality = {}
            for name in dict.fromkeys(r["reality"] for r in mine):
                rs = [r for r in mine if r["reality"] == name]
                per_reality[name] = {
                    "mean": _mean([r["return_mean"] for r in rs]),
                    "std": _std([r["return_mean"] for r in rs]),
                    "normalized": _mean([r["normalized"] for r in rs]),
                    "normalized_std": _std([r["normalized"] for r in rs]),
                    "success": _mean([r["success_rate"] for r in rs]),
                    "is_target": any(r["is_target"] for r in rs),
                }
            # budgets are per cell: one row per cell carries them (an oracle has one per reality)
            cells = {(r["seed"], r["reality"] if m == "oracle" else None): r for r in mine}
            budget = {
                k: _mean([float(c[k]) for c in cells.values()])
                for k in ("real_rollouts", "real_steps", "sim_steps", "train_steps",
                          "lineage_steps", "train_minutes")
            }  # fmt: skip
            out[env][m] = {
                "seeds": seeds,
                "return_per_seed": per_seed_ret,
                "return_mean": _mean(per_seed_ret),
                "return_std": _std(per_seed_ret),
                "normalized_per_seed": per_seed_norm,
                "normalized_mean": _mean(per_seed_norm),
                "normalized_std": _std(per_seed_norm),
                "per_reality": per_reality,
                "budget_per_policy": budget,
            }
    return out


def _wins(a: dict[str, Any], b: dict[str, Any]) -> tuple[int, int]:
    common = [k for k in a["per_reality"] if k in b["per_reality"]]
    won = sum(a["per_reality"][k]["mean"] > b["per_reality"][k]["mean"] for k in common)
    return won, len(common)


def paired_difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``a`` minus ``b`` seed by seed, over the seeds both have (seed s of every method starts
    from the same network initialization and is scored on the same episodes, so seeds pair up).

    Returns ``seeds`` (the common ones), ``mean`` and ``se`` of the per-seed differences of the
    mean return over realities (``se``: sample std / sqrt(n); NaN with fewer than 2 seeds),
    ``higher`` and ``tied`` (seed counts), ``beyond_2se`` (|mean| > 2 SE; False without an
    SE), and both methods' means over those seeds.
    """
    common = [s for s in a["seeds"] if s in b["seeds"]]
    ra = dict(zip(a["seeds"], a["return_per_seed"]))
    rb = dict(zip(b["seeds"], b["return_per_seed"]))
    diffs = [ra[s] - rb[s] for s in common]
    mean = _mean(diffs)
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.nan
    return {
        "seeds": common,
        "mean": mean,
        "se": se,
        "beyond_2se": abs(mean) > 2 * se,
        "higher": sum(d > 0 for d in diffs),
        "tied": sum(d == 0 for d in diffs),
        "mean_a": _mean([ra[s] for s in common]),
        "mean_b": _mean([rb[s] for s in common]),
    }


def _paired(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float, bool, str]:
    """Both methods' mean return over the seeds both have (all of them in a complete run), and
    a note: on how many of those seeds ``a`` is higher, and the paired difference +- its
    standard error (see :func:`paired_difference`), flagged when it is within 2 SE of 0; and
    whether it lies beyond 2 SE."""
    d = paired_difference(a, b)
    common = d["seeds"]
    note = "" if common == a["seeds"] == b["seeds"] else f", on seeds {common} only"
    note += f"; higher on {d['higher']}/{len(common)} seeds"
    note += f" (tied on {d['tied']})" if d["tied"] else ""
    if len(common) > 1:
        note += f"; paired difference {d['mean']:+.2f} +- {d['se']:.2f} SE"
        note += "" if d["beyond_2se"] else ", within 2 SE of 0"
    return d["mean_a"], d["mean_b"], d["beyond_2se"], note


def reality_gaps(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """env -> reality -> the oracle's and no DR's mean return there and ``gap`` = oracle - no DR.

    The gap is what a policy trained on nominal dynamics leaves on the table on that reality at
    this budget: what DR is there to close. A gap <= 0 means the nominal policy already does as
    well as one trained on the reality itself, so that reality cannot show DR helping (it can
    only show DR's cost). Envs without both an oracle and no DR are left out.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for env, ms in summary.items():
        if "oracle" not in ms or "no_dr" not in ms:
            continue
        orc, nodr = ms["oracle"]["per_reality"], ms["no_dr"]["per_reality"]
        out[env] = {
            r: {
                "oracle": orc[r]["mean"],
                "no_dr": nodr[r]["mean"],
                "gap": orc[r]["mean"] - nodr[r]["mean"],
            }
            for r in nodr
            if r in orc
        }
    return out


def verdicts(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Does uniform DR beat no DR on every env, and which guided methods beat uniform DR where?"""
    lines, uniform_ok, uniform_sure = [], {}, {}
    guided_envs: dict[str, list[str]] = defaultdict(list)
    guided_sure: dict[str, list[str]] = defaultdict(list)  # wins beyond 2 SE of seed noise
    for env, ms in summary.items():
        if "uniform" in ms and "no_dr" in ms:
            u, n = ms["uniform"], ms["no_dr"]
            won, total = _wins(u, n)
            mu, mn, sure, note = _paired(u, n)
            uniform_ok[env] = mu > mn
            uniform_sure[env] = mu > mn and sure
            lines.append(
                f"{env}: uniform DR {'beats' if uniform_ok[env] else 'does NOT beat'} no DR "
                f"({mu:.2f} vs {mn:.2f} averaged over realities{note}; "
                f"higher on {won}/{total} realities)"
            )
        for m in GUIDED:
            if m in ms and "uniform" in ms:
                g, u = ms[m], ms["uniform"]
                won, total = _wins(g, u)
                mg, mu, sure, note = _paired(g, u)
                better = mg > mu
                if better:
                    guided_envs[m].append(env)
                    if sure:
                        guided_sure[m].append(env)
                lines.append(
                    f"{env}: {METHODS[m]} {'beats' if better else 'does NOT beat'} uniform DR "
                    f"({mg:.2f} vs {mu:.2f}{note}; higher on {won}/{total} realities)"
                )
    envs_with_guided_win = sorted({e for es in guided_envs.values() for e in es})
    envs_with_sure_win = sorted({e for es in guided_sure.values() for e in es})
    gaps = reality_gaps(summary)
    for env, per in gaps.items():
        closed = [r for r, g in per.items() if g["gap"] <= 0]
        lines.append(
            f"{env}: the oracle beats no DR on {len(per) - len(closed)}/{len(per)} realities"
            + (f"; no gap to close on {', '.join(closed)} (no DR >= oracle)" if closed else "")
        )
    return {
        "lines": lines,
        "reality_gaps": gaps,
        "uniform_beats_no_dr_on_every_env": bool(uniform_ok) and all(uniform_ok.values()),
        "uniform_beats_no_dr": uniform_ok,
        "guided_beats_uniform": dict(guided_envs),
        "envs_where_a_guided_method_beats_uniform": envs_with_guided_win,
        "a_guided_method_beats_uniform_on_two_envs": len(envs_with_guided_win) >= 2,
        # the same claims counting only wins whose paired difference lies beyond 2 SE of 0
        "uniform_beats_no_dr_beyond_2se": uniform_sure,
        "guided_beats_uniform_beyond_2se": dict(guided_sure),
        "envs_where_a_guided_method_beats_uniform_beyond_2se": envs_with_sure_win,
    }


# ---------------------------------------------------------------------- writers
def _f(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def _k(x: float) -> str:
    return "0" if not x else (f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}")


def markdown(doc: dict[str, Any]) -> str:
    summary, verdict = doc["summary"], doc["verdict"]
    m = doc["machine"]
    lines = [
        f"# Sim-to-real transfer benchmark ({doc['tier']} tier)",
        "",
        f"Seeds {doc['seeds']}; every method's final policy has {{B}} training env steps along "
        "its lineage (table below); deterministic evaluation on every shipped reality of the env, "
        "same start states for every method. Return: mean +- std over seeds of the mean over the "
        "env's realities. Score: (R - random) / (oracle - random), 0 = a random policy, 1 = the "
        "oracle trained on that reality. Budgets per final policy (per seed): real (target) "
        "rollouts, the guide's own sim steps, training env steps (all of them; lineage in "
        "brackets), minutes of its cell (training + guide, without evaluation) while "
        f"{doc['jobs']} cells ran side by side on {m['cores']} cores shared with other jobs "
        f"(load average {m['load_avg_at_end'][0]:.1f} at the end).",
        "",
    ]
    for env, ms in summary.items():
        plan = doc["plans"][env]
        lines += [
            f"## {env}: B = {plan['train_steps']:,} steps, {plan['episodes']} episodes per "
            f"reality, target of CMA-ES/SimOpt: `{plan['target']}`",
            "",
            "| method | return | score | real rollouts | sim steps | training steps | min |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for key, s in ms.items():
            b = s["budget_per_policy"]
            lines.append(
                f"| {METHODS[key]} | {_f(s['return_mean'])} +- {_f(s['return_std'])} | "
                f"{_f(s['normalized_mean'])} +- {_f(s['normalized_std'])} | "
                f"{b['real_rollouts']:.0f} | {_k(b['sim_steps'])} | {_k(b['train_steps'])} "
                f"({_k(b['lineage_steps'])}) | {b['train_minutes']:.1f} |"
            )
        realities = list(next(iter(ms.values()))["per_reality"])
        for s in ms.values():
            realities += [r for r in s["per_reality"] if r not in realities]
        lines += ["", "| method | " + " | ".join(realities) + " |"]
        lines.append("|---|" + "---|" * len(realities))
        for key, s in ms.items():
            cells = []
            for r in realities:
                pr = s["per_reality"].get(r)
                if pr is None:
                    cells.append("")
                    continue
                star = "*" if pr["is_target"] else ""
                cells.append(f"{_f(pr['mean'])} +- {_f(pr['std'])} ({_f(pr['normalized'])}){star}")
            lines.append(f"| {METHODS[key]} | " + " | ".join(cells) + " |")
        refs = doc["references"].get(env, {})
        rand = ", ".join(f"{r} {_f(v[0])}" for r, v in refs.items())
        lines += ["", f"Per reality: return +- std over seeds (score); * = the target CMA-ES "
                  f"and SimOpt saw. Random policy: {rand}.", ""]  # fmt: skip
    lines += [f"- not run: {k} ({why})" for k, why in doc.get("skipped", {}).items()]
    if doc.get("cells_missing"):
        lines.append(f"- **incomplete**: {len(doc['cells_missing'])} cells not computed yet: "
                     + ", ".join(doc["cells_missing"]))  # fmt: skip
    lines += ["", "## Verdict", ""] + [f"- {v}" for v in verdict["lines"]]
    lines += [
        "",
        f"- uniform DR beats no DR on every env: {verdict['uniform_beats_no_dr_on_every_env']}",
        "- envs where at least one guided method beats uniform DR: "
        f"{', '.join(verdict['envs_where_a_guided_method_beats_uniform']) or 'none'} "
        f"(two or more: {verdict['a_guided_method_beats_uniform_on_two_envs']})",
        *beyond_2se_lines(verdict),
        "",
        f"Wall time of the run that wrote this: {doc['wall_minutes_this_invocation']:.1f} min "
        f"({doc['cells_run_now']} cells computed, the rest from the cache); sum over all cells: "
        f"{doc['cell_minutes_total']:.1f} cell-minutes.",
        "",
    ]
    return "\n".join(lines).replace("{B}", "the same B")


def write_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in with_scores(rows):
        w.writerow({k: r.get(k, "") for k in CSV_FIELDS})
    return buf.getvalue()


def plot(summary: dict[str, Any], env: str, path: Path) -> None:
    """Grouped bars: the normalized score per reality (and the mean), one bar per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ms = summary[env]
    methods = [m for m in ms if m != "oracle"]
    realities = list(ms[methods[0]]["per_reality"]) if methods else []
    groups = [*realities, "mean"]
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(groups), 3.6))
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(groups))
    for i, m in enumerate(methods):
        s = ms[m]
        vals = [s["per_reality"][r]["normalized"] for r in realities] + [s["normalized_mean"]]
        errs = [s["per_reality"][r]["normalized_std"] for r in realities]
        errs.append(s["normalized_std"])
        vals = [0.0 if math.isnan(v) else v for v in vals]
        errs = [0.0 if math.isnan(e) else e for e in errs]
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, vals, width, yerr=errs, label=METHODS[m],
               capsize=2)  # fmt: skip
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="oracle")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xticks(x, groups, fontsize=8)
    ax.set_ylabel("normalized transfer score")
    ax.set_title(f"{env}: 0 = random policy, 1 = oracle", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def beyond_2se_lines(verdict: dict[str, Any]) -> list[str]:
    """The two summary claims again, counting only wins beyond 2 SE of seed noise."""
    sure = [e for e, ok in verdict["uniform_beats_no_dr_beyond_2se"].items() if ok]
    guided = verdict["envs_where_a_guided_method_beats_uniform_beyond_2se"]
    return [
        f"- counting only wins beyond 2 SE of 0: uniform DR beats no DR on "
        f"{', '.join(sure) or 'no env'} ({len(sure)}/{len(verdict['uniform_beats_no_dr'])} envs); "
        f"a guided method beats uniform DR on {', '.join(guided) or 'no env'} "
        f"(two or more: {len(guided) >= 2})",
    ]


def write_reports(doc: dict[str, Any], out: Path) -> None:
    """Add summary, references and verdict to ``doc``; write CSV, Markdown, JSON and plots."""
    from domrand.bench.transfer import short_name

    rows = doc["rows"]
    doc["summary"] = summarize(rows)
    refs: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for (env, reality), pair in sorted(references(rows).items()):
        refs[env][reality] = list(pair)
    doc["references"] = dict(refs)
    doc["verdict"] = verdicts(doc["summary"])
    out.mkdir(parents=True, exist_ok=True)
    stem = f"transfer_{doc['tier']}"
    atomic_write_text(out / f"{stem}.csv", write_csv(rows))
    atomic_write_text(out / f"{stem}.md", markdown(doc))
    atomic_write_text(out / f"{stem}.json", json.dumps(doc, indent=1, default=float) + "\n")
    for env in doc["summary"]:
        plot(doc["summary"], env, out / f"{stem}_{short_name(env)}.png")

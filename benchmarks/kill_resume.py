"""kill -9 loop: SIGKILL ``domrand train`` / ``domrand guide`` at random moments, then ``--resume``.

For each command (``train``, ``guide cmaes``, ``guide autodr`` by default), with a small config:

1. an uninterrupted reference run in its own folder (its start-up time and mean time between
   writes set the kill moments);
2. 20 times: start the command (with ``--resume`` once the run's record file exists), SIGKILL it
   at a random moment (seeded; in start-up, or after 1-12 of its writes plus a uniform fraction
   of the mean gap between writes: see :func:`kill_loop`), then check the output folder is not
   corrupt (:func:`check_run`): every ``checkpoints/`` entry is either a checkpoint that loads
   (``weights_only``) with a matching step, or an interrupted save's temporary that
   ``list_checkpoints`` does not list; ``config.yaml``, ``metrics.csv`` (header, whole rows, one
   row per iteration up to the latest checkpoint), ``guide.yaml`` and ``state.json`` parse;
3. one last ``--resume`` that runs to the end; then the run must have finished with the right
   step count (final checkpoint, metrics rows = iterations), left no temporary files, and
   (reported separately) ended with the same weights / guide state as the reference run.

A kill is a pass when every check after it holds; the command passes when all kills and the
final check do. Writes benchmarks/results/kill_resume.json.
Usage: python benchmarks/kill_resume.py [--kills 20] [--seed 0] [--commands train cmaes autodr]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

import domrand
from domrand.policies.checkpoint import list_checkpoints, load_checkpoint, policy_from_payload
from domrand.policies.config import load_config
from domrand.policies.metrics import COLUMNS

RESULTS = Path(__file__).parent / "results" / "kill_resume.json"
SCRIPT = Path(sys.executable).with_name("domrand")
ENV = "domrand/CartPole-v0"
TMP_NAME = re.compile(r"^\..+\.tmp$")  # domrand.fsutil's temporaries: .<name>.<random>.tmp
CKPT_TMP = re.compile(r"^\.step_\d+\.pt\..+\.tmp$")

#: small trainer settings shared by every command (a checkpoint after every rollout)
TRAIN = {
    "num_envs": 2,
    "num_steps": 64,
    "hidden": 16,
    "epochs": 2,
    "batch_size": 64,
    "seq_len": 16,
    "checkpoint_every": 128,
    "keep_checkpoints": 2,
}


def command_setups(scale: float = 1.0) -> dict[str, dict[str, Any]]:
    """Per command: the settings file contents, extra CLI args and the record file.

    ``scale`` multiplies the training budgets (the test uses a smaller one).
    """

    def steps(n: int) -> int:
        return max(128, round(n * scale / 128) * 128)

    return {
        "train": {
            "config": {**TRAIN, "total_steps": steps(8192)},
            "args": ["train", "--env", ENV, "--quiet"],
            "record": "config.yaml",
        },
        "cmaes": {
            "config": {
                "generations": 2,
                "popsize": 2,
                "pretrain_steps": steps(1024),
                "finetune_steps": steps(512),
                "eval_rollouts": 1,
                "horizon": 50,
                "train": TRAIN,
            },
            "args": ["guide", "cmaes", "--env", ENV, "--reality", "heavy_pole"],
            "record": "guide.yaml",
        },
        "autodr": {
            "config": {
                "metric": "return",
                "t_low": 0.0,
                "t_high": 0.5,
                "buffer_size": 2,
                "delta": 0.25,
                "eval_episodes": 2,
                "train": {**TRAIN, "total_steps": steps(4096)},
            },
            "args": ["guide", "autodr", "--env", ENV, "--reality", "heavy_pole"],
            "record": "guide.yaml",
        },
    }


def argv_for(name: str, setup: dict[str, Any], work: Path, out: Path) -> list[str]:
    cfg = work / f"{name}_config.yaml"
    if not cfg.exists():
        cfg.write_text(yaml.safe_dump(setup["config"]))
    spec = str(domrand.default_spec_path(ENV))
    return [str(SCRIPT), *setup["args"], "--spec", spec, "--config", str(cfg), "--out", str(out)]


# ---------------------------------------------------------------------- checks
def run_dirs(out: Path) -> list[Path]:
    """Every trainer run directory under ``out`` (a folder with ``checkpoints/``)."""
    return sorted(p.parent for p in out.rglob("checkpoints") if p.is_dir())


def _check_trainer_dir(run: Path) -> tuple[list[str], int | None]:
    """Problems of one trainer run directory, and its latest checkpoint step."""
    problems: list[str] = []
    listed = list_checkpoints(run)
    for p in (run / "checkpoints").iterdir():
        if p in listed:
            continue
        if CKPT_TMP.match(p.name):
            continue  # an interrupted save; never listed, removed at the next resume
        problems.append(f"{p}: unexpected file in checkpoints/")
    latest_step = None
    for p in listed:
        if CKPT_TMP.match(p.name) or p.name.endswith(".tmp"):
            problems.append(f"{p}: a temporary listed as a checkpoint")
    if listed:
        latest = listed[-1]
        try:
            payload = load_checkpoint(latest)
            policy_from_payload(payload, str(latest))
            latest_step = int(payload["trainer"]["env_steps"])
            if f"step_{latest_step}.pt" != latest.name:
                problems.append(f"{latest}: holds step {latest_step}")
        except Exception as e:  # any failure to load is corruption
            problems.append(f"{latest}: does not load ({type(e).__name__}: {e})")
    cfg_path = run / "config.yaml"
    batch = None
    if cfg_path.exists():
        try:
            cfg = load_config(cfg_path)
            batch = cfg.batch
        except Exception as e:
            problems.append(f"{cfg_path}: does not load ({type(e).__name__}: {e})")
    metrics = run / "metrics.csv"
    if metrics.exists():
        try:
            with metrics.open(newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
            if not rows or tuple(rows[0]) != COLUMNS:
                problems.append(f"{metrics}: bad header")
            steps = []
            for i, row in enumerate(rows[1:], 2):
                if len(row) != len(COLUMNS):
                    problems.append(f"{metrics}: line {i} has {len(row)} fields")
                    continue
                steps.append(int(row[0]))
            if latest_step is not None and batch is not None:
                kept = [s for s in steps if s <= latest_step]
                want = list(range(batch, latest_step + 1, batch))
                if kept != want:
                    problems.append(
                        f"{metrics}: rows up to step {latest_step} are {kept[:3]}...{kept[-3:]}, "
                        f"expected one per iteration"
                    )
        except (OSError, ValueError, UnicodeDecodeError) as e:
            problems.append(f"{metrics}: does not parse ({type(e).__name__}: {e})")
    return problems, latest_step


def check_run(out: Path, record: str) -> dict[str, Any]:
    """Is the output folder of a (possibly killed) run in a state ``--resume`` can continue?"""
    problems: list[str] = []
    if not out.exists():
        return {"problems": [], "steps": {}, "temporaries": 0}
    steps = {}
    for run in run_dirs(out):
        p, s = _check_trainer_dir(run)
        problems += p
        steps[str(run.relative_to(out))] = s
    for name in (record, "guide.yaml", "state.json", "report.json"):
        path = out / name
        if path.exists():
            try:
                text = path.read_text(encoding="utf-8")
                doc = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
                if not isinstance(doc, dict):
                    problems.append(f"{path}: not a mapping")
            except Exception as e:
                problems.append(f"{path}: does not parse ({type(e).__name__})")
    temporaries = [p for p in out.rglob("*") if TMP_NAME.match(p.name)]
    return {"problems": problems, "steps": steps, "temporaries": len(temporaries)}


def final_check(name: str, setup: dict[str, Any], out: Path, ref: Path) -> dict[str, Any]:
    """The resumed run finished like the reference: step counts, no temporaries, same result."""
    state = check_run(out, setup["record"])
    problems = list(state["problems"])
    if state["temporaries"]:
        problems.append(f"{state['temporaries']} temporary files left behind")
    ref_state = check_run(ref, setup["record"])
    if state["steps"] != ref_state["steps"]:
        problems.append(f"final steps {state['steps']} != reference {ref_state['steps']}")
    if name == "train":
        total = setup["config"]["total_steps"]
        if state["steps"].get(".") != total:
            problems.append(f"finished at step {state['steps'].get('.')}, expected {total}")
    else:
        if not (out / "report.json").exists():
            problems.append("no report.json")
    same = same_result(name, out, ref)
    return {
        "ok": not problems,
        "problems": problems,
        "steps": state["steps"],
        "same_as_uninterrupted": same,
    }


def same_result(name: str, out: Path, ref: Path) -> bool:
    """Bit-identical final weights in every training run, and the same guide state."""
    for run in run_dirs(ref):
        rel = run.relative_to(ref)
        a, b = list_checkpoints(out / rel), list_checkpoints(run)
        if not a or not b or a[-1].name != b[-1].name:
            return False
        ma, mb = load_checkpoint(a[-1])["model"], load_checkpoint(b[-1])["model"]
        if ma.keys() != mb.keys() or not all(torch.equal(ma[k], mb[k]) for k in ma):
            return False
    if name == "cmaes":
        sa = json.loads((out / "state.json").read_text())
        sb = json.loads((ref / "state.json").read_text())
        keys = ("generation", "cma", "best", "history")
        strip = [{k: s[k] for k in keys} for s in (sa, sb)]
        for s in strip:  # budgets differ only in wall time
            for h in s["history"]:
                h.pop("wall_s", None)
        return strip[0] == strip[1]
    if name == "autodr":
        return (out / "ranges.csv").read_text() == (ref / "ranges.csv").read_text()
    return True


# ---------------------------------------------------------------------- the loop
def _launch(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    f = log.open("ab")
    return subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)


def newest_mtime(out: Path) -> float:
    """The newest modification time of anything under ``out`` (0 when empty)."""
    if not out.exists():
        return 0.0
    times = [0.0]
    for p in out.rglob("*"):
        try:
            times.append(p.stat().st_mtime)
        except OSError:  # renamed or deleted while we looked
            continue
    return max(times)


def wait_writes(out: Path, since: float, proc: subprocess.Popen[bytes], n: int) -> int:
    """Wait until the process has written under ``out`` ``n`` times (a write: the newest
    modification time moved on); return the writes seen (fewer if it exited first)."""
    seen, last = 0, since
    while seen < n and proc.poll() is None:
        t = newest_mtime(out)
        if t > last:
            seen, last = seen + 1, t
        else:
            time.sleep(0.01)
    return seen


def kill_loop(
    name: str,
    setup: dict[str, Any],
    work: Path,
    kills: int,
    rng: np.random.Generator,
    startup_share: float = 0.2,
    log: Any = print,
    timing: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The reference run, ``kills`` SIGKILLs at random moments, a final resume; all checks.

    ``timing``: ``(start-up s, mean s between writes)`` when the caller already made the
    reference run in ``work / f"{name}_ref"`` (the test does it in-process, to save a start-up).

    A kill lands in start-up with probability ``startup_share`` (uniform over the reference
    run's time to its first write: imports, env construction, loading checkpoints); otherwise
    the harness waits for 1 to 12 writes of the process (metrics rows, checkpoints, state files;
    the first is its start-up's) and kills it uniformly within the reference run's mean time
    between writes after that, so moments fall anywhere in the work (rollouts, updates,
    checkpoint and state writes), relative to the process's own progress whatever the load.
    """
    ref, out = work / f"{name}_ref", work / f"{name}_killed"
    if timing is None:
        t0 = time.time()
        proc = _launch(argv_for(name, setup, work, ref), work / f"{name}_ref.log")
        t_first, writes = None, 0
        last = t0 - 1.0
        while proc.poll() is None:
            t = newest_mtime(ref)
            if t > last:
                last, writes = t, writes + 1
                t_first = t_first or time.time() - t0
            time.sleep(0.01)
        t_ref = time.time() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{name} reference run failed (see {work / f'{name}_ref.log'})")
        t_first = t_first or t_ref
        gap = (t_ref - t_first) / max(writes - 1, 1)
    else:  # the caller made the reference run in ``ref`` and knows its timing
        (t_first, gap), t_ref, writes = timing, math.nan, 0
    log(
        f"{name}: reference run {t_ref:.1f} s, first write after {t_first:.1f} s, {writes} "
        f"writes, {gap:.2f} s apart on average"
    )
    base = argv_for(name, setup, work, out)
    rows = []
    for k in range(kills):
        resume = (out / setup["record"]).exists()
        in_startup = bool(rng.random() < startup_share)
        n_writes = 0 if in_startup else int(rng.integers(1, 13))
        delay = float(rng.uniform(0.3, max(t_first, 0.4)) if in_startup else rng.uniform(0, gap))
        since = newest_mtime(out)
        launched = time.time()
        proc = _launch([*base, "--resume"] if resume else base, work / f"{name}.log")
        wait_writes(out, since, proc, n_writes)
        t = time.perf_counter()
        while proc.poll() is None and time.perf_counter() - t < delay:
            time.sleep(0.002)
        finished = proc.poll() is not None
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
        code = proc.wait()
        at = time.time() - launched
        state = check_run(out, setup["record"])
        ok = not state["problems"] and (not finished or code == 0)
        rows.append(
            {
                "kill": k,
                "resumed": resume,
                "phase": "start-up" if in_startup else f"work (after {n_writes} writes)",
                "delay_s": round(delay, 2),
                "killed_after_s": round(at, 2),
                "finished_before_kill": finished,
                "exit_code": code,
                "steps": state["steps"],
                "temporaries": state["temporaries"],
                "problems": state["problems"],
                "ok": ok,
            }
        )
        verdict = "ok" if ok else "CORRUPT: " + "; ".join(state["problems"])
        log(
            f"  {name} kill {k + 1}/{kills} ({rows[-1]['phase']}): after {at:.1f} s, "
            f"steps {state['steps']}, temporaries {state['temporaries']}, {verdict}"
        )
    resume = (out / setup["record"]).exists()
    final = subprocess.run([*base, "--resume"] if resume else base, capture_output=True, text=True)
    result = final_check(name, setup, out, ref)
    if final.returncode != 0:
        result["ok"] = False
        result["problems"].append(f"final run exited {final.returncode}: {final.stderr[-500:]}")
    passes = sum(r["ok"] for r in rows)
    log(
        f"{name}: {passes}/{kills} kills left a consistent run; final: "
        f"{'ok' if result['ok'] else result['problems']}; same result as uninterrupted: "
        f"{result['same_as_uninterrupted']}"
    )
    return {
        "command": " ".join(setup["args"][:2]),
        "reference_s": round(t_ref, 1),
        "first_write_s": round(t_first, 1),
        "reference_writes": writes,
        "mean_write_gap_s": round(gap, 2),
        "kills": rows,
        "passes": passes,
        "final": result,
        "passed": passes == kills and result["ok"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--commands", nargs="+", default=["train", "cmaes", "autodr"])
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--keep", action="store_true", help="keep the run folders")
    args = ap.parse_args()
    setups = command_setups()
    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="domrand_kill_"))
    results = {}
    t0 = time.perf_counter()
    try:
        for name in args.commands:
            results[name] = kill_loop(
                name, setups[name], work, args.kills, rng, log=lambda s: print(s, flush=True)
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    summary = {n: f"{r['passes']}/{args.kills}" for n, r in results.items()}
    doc = {
        "benchmark": "kill_resume",
        "kills_per_command": args.kills,
        "seed": args.seed,
        "summary": summary,
        "all_passed": all(r["passed"] for r in results.values()),
        "elapsed_s": round(time.perf_counter() - t0, 1),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "note": "2-core VM shared with other jobs",
        },
        "settings": {n: setups[n]["config"] for n in args.commands},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"summary: {summary}; all passed: {doc['all_passed']}")


if __name__ == "__main__":
    main()

"""Fuzz the spec and domain loaders (>= 10,000 examples); write results/fuzz_specs.json.

Runs the properties of ``tests/fuzz/test_spec_fuzz.py`` (the same strategies and checks as the
test suite, which runs a few thousand derandomized examples) with a random seed and a larger
budget. The contract: every input gives a valid spec or a ``SpecError`` with a one-line message,
never another exception. A property that fails is recorded (with hypothesis's shrunk example)
and the script exits 1.

Usage::

    .venv/bin/python benchmarks/fuzz_specs.py                # 20,000 examples, random seed
    .venv/bin/python benchmarks/fuzz_specs.py --scale 0.5 --seed 1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import random
import sys
import time
import traceback
from pathlib import Path

import hypothesis

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "fuzz_specs.json"

#: examples per property at --scale 1 (20,000 in all)
BUDGET = {
    "arbitrary_bytes": 2000,
    "arbitrary_text": 2000,
    "yaml_token_soup": 4000,
    "structured_dicts": 3000,
    "structured_files": 4000,
    "valid_leaning": 4000,
    "cartpole_bound": 1000,
}


def _load_fuzz_module():  # type: ignore[no-untyped-def]
    path = ROOT / "tests" / "fuzz" / "test_spec_fuzz.py"
    spec = importlib.util.spec_from_file_location("domrand_spec_fuzz", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _describe(e: BaseException) -> str:
    """The exception(s) with hypothesis's notes (the shrunk falsifying example)."""
    subs = getattr(e, "exceptions", None)  # an ExceptionGroup: several distinct failures
    if isinstance(subs, tuple):
        return "\n\n".join(_describe(sub) for sub in subs)
    where = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    text = "".join(traceback.format_exception_only(type(e), e)).strip()
    if where is not None:
        text += f"\n  raised at {where.filename}:{where.lineno}"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="budget multiplier (1 = 20k)")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default random)")
    parser.add_argument("--only", choices=list(BUDGET), action="append", help="these properties")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    fuzz = _load_fuzz_module()
    assert set(BUDGET) == set(fuzz.TARGETS), "BUDGET and the fuzz module's TARGETS differ"

    report: dict[str, object] = {
        "seed": seed,
        "hypothesis": hypothesis.__version__,
        "python": platform.python_version(),
        "targets": {},
    }
    total, distinct, failures = 0, 0, 0
    t_all = time.perf_counter()
    for name, budget in BUDGET.items():
        if args.only and name not in args.only:
            continue
        n = max(1, round(budget * args.scale))
        fuzz.OUTCOMES.clear()
        fuzz.DISTINCT.clear()
        test = hypothesis.seed(seed)(fuzz.fuzz_test(name, max_examples=n, derandomize=False))
        t0 = time.perf_counter()
        failure = None
        try:
            test()
        except Exception as e:  # a broken contract: keep going, report it
            failure = _describe(e)
            failures += 1
        seconds = time.perf_counter() - t0
        ran = sum(fuzz.OUTCOMES.values())
        total += ran
        distinct += len(fuzz.DISTINCT)
        report["targets"][name] = {  # type: ignore[index]
            "max_examples": n,
            "examples_run": ran,
            "distinct_inputs": len(fuzz.DISTINCT),
            "seconds": round(seconds, 1),
            "outcomes": dict(fuzz.OUTCOMES.most_common()),
            "failure": failure,
        }
        status = "FAILED" if failure else "ok"
        print(f"{name:18s} {ran:6d} examples ({len(fuzz.DISTINCT)} distinct) {seconds:6.1f} s "
              f"{status}", flush=True)  # fmt: skip
        if failure:
            print(failure, file=sys.stderr)
    report |= {
        "examples_run": total,
        "distinct_inputs": distinct,
        "non_spec_error_failures": failures,
        "seconds": round(time.perf_counter() - t_all, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"{total} examples ({distinct} distinct), {failures} failing properties -> {args.out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

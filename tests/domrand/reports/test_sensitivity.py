"""``run_sensitivity``: factors from the training spec, SALib designs and indices, the outputs."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from domrand.errors import DomrandError
from domrand.knobs import Knob
from domrand.reports.runs import load_run
from domrand.reports.sensitivity import (
    Factor,
    _analyze,
    design,
    factors_for,
    run_sensitivity,
    write_sensitivity,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _factor(name: str) -> Factor:
    return Factor(Knob(name, 0.5, "1", 0.0, 1.0), 0.0, 1.0, (0.0, 1.0))


def test_factors_are_the_bounded_knobs_of_the_training_spec(tiny_run: Path) -> None:
    run = load_run(tiny_run)
    names = [f.knob.name for f in factors_for(run)]
    # the shipped CartPole spec: everything but the pinned gravity
    assert names == ["cart.mass", "pole.mass", "cart.friction", "pole.damping", "motor.gain",
                     "action.delay", "action.noise", "obs.noise"]  # fmt: skip
    (m,) = factors_for(run, ["pole.mass"])
    assert (m.low, m.high) == pytest.approx((0.05, 0.2)) and m.training == (m.low, m.high)
    (w,) = factors_for(run, ["pole.mass"], widen=2.0)
    assert (w.low, w.high) == pytest.approx((0.025, 0.275))  # 0.05 - 0.075 < 0: halfway to 0
    (n,) = factors_for(run, ["action.noise"], widen=3.0)
    assert (n.low, n.high) == pytest.approx((0.0, 0.1))  # kept inside the valid range
    with pytest.raises(DomrandError, match=r"did you mean 'pole\.mass'"):
        factors_for(run, ["pole.mas"])
    with pytest.raises(DomrandError, match="not randomized over a bounded range"):
        factors_for(run, ["gravity"])
    with pytest.raises(DomrandError, match="--widen"):
        factors_for(run, None, widen=0.5)


def test_a_run_without_a_spec_needs_one(nominal_run: Path) -> None:
    with pytest.raises(DomrandError, match="give --spec FILE"):
        factors_for(load_run(nominal_run))


def test_designs() -> None:
    fs = [_factor("a"), _factor("b"), _factor("c")]
    x = design("sobol", fs, 8, seed=0)
    assert x.shape == (8 * (3 + 2), 3) and x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_array_equal(x, design("sobol", fs, 8, seed=0))
    assert design("morris", fs, 4, seed=0).shape == (4 * (3 + 1), 3)
    with pytest.raises(DomrandError, match="power of 2"):
        design("sobol", fs, 12, seed=0)
    with pytest.raises(DomrandError, match="--method"):
        design("fast", fs, 8, seed=0)


@pytest.mark.parametrize("method", ["sobol", "morris"])
def test_indices_rank_a_known_function(method: str) -> None:
    fs = [_factor("weak"), _factor("none"), _factor("strong")]
    x = design(method, fs, 256 if method == "sobol" else 40, seed=1)
    y = 1.0 * x[:, 0] + 0.0 * x[:, 1] + 5.0 * x[:, 2] ** 2
    si = _analyze(method, fs, x, y, seed=1, notes=[])
    key = "ST" if method == "sobol" else "mu_star"
    assert np.argsort(-si[key]).tolist() == [2, 0, 1]
    assert si[key][1] == pytest.approx(0.0, abs=0.02)
    assert (si[key + "_conf"] >= 0).all()


def test_a_constant_return_gives_zero_indices_and_says_so() -> None:
    fs = [_factor("a"), _factor("b")]
    notes: list[str] = []
    si = _analyze("sobol", fs, design("sobol", fs, 8, 0), np.full(32, 500.0), 0, notes)
    assert all((v == 0).all() for v in si.values())
    assert notes and "did not vary" in notes[0]


def test_a_morris_report_on_a_trained_run(tiny_run: Path, tmp_path: Path) -> None:
    run = load_run(tiny_run)
    res = run_sensitivity(
        run, method="morris", samples=3, knobs=["pole.mass", "action.delay"], seed=2
    )
    assert res.evaluations == 3 * 3 and res.knobs == ["pole.mass", "action.delay"]
    assert np.isfinite(res.indices["mu_star"]).all()
    png, path = write_sensitivity(res, tmp_path, "tiny")
    assert png.read_bytes()[:8] == PNG
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [r["rank"] for r in rows] == ["1", "2"]
    mu = [float(r["mu_star"]) for r in rows]
    assert mu == sorted(mu, reverse=True)
    again = run_sensitivity(
        run, method="morris", samples=3, knobs=["pole.mass", "action.delay"], seed=2
    )
    np.testing.assert_array_equal(again.y, res.y)

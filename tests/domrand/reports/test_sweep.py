"""``run_sweep``: grids, default ranges, the CSV and PNG, determinism."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from domrand.errors import DomrandError
from domrand.knobs import Knob
from domrand.reports.runs import load_run
from domrand.reports.sweep import default_range, make_axis, run_sweep, write_sweep

PNG = b"\x89PNG\r\n\x1a\n"
MASS = Knob("m", 1.0, "kg", 0.0, 100.0, low_open=True)
NOISE = Knob("n", 0.0, "1", 0.0, 10.0)
BIAS = Knob("b", 0.0, "1", -10.0, 10.0)
DELAY = Knob("d", 0, "steps", 0, 20, integer=True)


def test_default_ranges() -> None:
    # training range widened by half its width each side...
    assert default_range(MASS, (1.0, 3.0)) == pytest.approx((0.0 + 0.5, 4.0))
    # ...where 0 is excluded, halfway between the bound and the training low instead
    assert default_range(MASS, (2.0, 4.0)) == pytest.approx((1.0, 5.0))
    assert default_range(NOISE, (0.0, 1.0)) == pytest.approx((0.0, 1.5))  # clipped at 0
    assert default_range(MASS, None) == pytest.approx((0.5, 2.0))  # 0.5x..2x nominal
    assert default_range(NOISE, None) == pytest.approx((0.0, 1.0))  # first tenth of [0, 10]
    assert default_range(BIAS, None) == pytest.approx((-1.0, 1.0))


def test_axes() -> None:
    a = make_axis(MASS, 5, (1.0, 3.0))
    np.testing.assert_allclose(a.values, [0.5, 1.375, 2.25, 3.125, 4.0])
    d = make_axis(DELAY, 11, (0.0, 2.0))  # whole numbers only, no repeats
    np.testing.assert_array_equal(d.values, [0, 1, 2, 3])
    np.testing.assert_allclose(make_axis(MASS, 3, None, (2.0, 4.0)).values, [2.0, 3.0, 4.0])
    with pytest.raises(DomrandError, match="--points"):
        make_axis(MASS, 1, None)
    with pytest.raises(DomrandError, match="outside the valid range"):
        make_axis(MASS, 3, None, (-1.0, 2.0))
    with pytest.raises(DomrandError, match="LOW < HIGH"):
        make_axis(MASS, 3, None, (2.0, 2.0))
    with pytest.raises(DomrandError, match="one whole number"):
        make_axis(DELAY, 3, None, (0.1, 0.4))


def test_a_curve_writes_csv_and_png(tiny_run: Path, tmp_path: Path) -> None:
    run = load_run(tiny_run)
    res = run_sweep(run, ["pole.mass"], points=5, episodes=2, seed=1)
    assert res.mean.shape == (5,) and res.outcome.returns.shape == (5, 2)
    png, path = write_sweep(res, tmp_path / "out", "tiny")
    assert png.read_bytes()[:8] == PNG
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    # training range 0.05..0.2 (0.5x..2x nominal), widened: 0.05 - 0.075 < 0 stops halfway to 0
    assert [float(r["pole.mass"]) for r in rows] == pytest.approx(np.linspace(0.025, 0.275, 5))
    assert [r["in_training_range"] for r in rows] == ["0", "1", "1", "0", "0"]
    for r, m in zip(rows, res.mean):
        assert float(r["mean_return"]) == pytest.approx(m, rel=1e-5)
        assert float(r["min_return"]) <= float(r["mean_return"]) <= float(r["max_return"])
        assert r["episodes"] == "2" and r["faults"] == "0"
    again = run_sweep(run, ["pole.mass"], points=5, episodes=2, seed=1)
    np.testing.assert_array_equal(again.outcome.returns, res.outcome.returns)


def test_a_heat_map_and_the_others_from_the_spec(tiny_run: Path, tmp_path: Path) -> None:
    run = load_run(tiny_run)
    res = run_sweep(run, ["pole.mass", "action.delay"], points=3, episodes=1, others="spec")
    assert res.grid_shape == (3, 3) and res.mean.shape == (3, 3)
    png, path = write_sweep(res, tmp_path, "")
    assert png.name == "sweep_pole.mass_action.delay.png" and png.read_bytes()[:8] == PNG
    assert len(path.read_text().splitlines()) == 1 + 9
    # others drawn from the spec differ from others held nominal
    nominal = run_sweep(run, ["pole.mass", "action.delay"], points=3, episodes=1)
    assert not np.array_equal(nominal.outcome.returns, res.outcome.returns)


def test_pins_hold_the_other_knobs(tiny_run: Path) -> None:
    run = load_run(tiny_run)
    calm = {"gravity": 0.0, "pole.damping": 10.0, "motor.gain": 1e-4}
    res = run_sweep(run, ["pole.mass"], points=3, episodes=1, pins=calm, ranges=[(0.1, 0.3)])
    assert (res.mean == 500).all()
    assert res.pins == calm


def test_refusals(tiny_run: Path, nominal_run: Path) -> None:
    run = load_run(tiny_run)
    with pytest.raises(DomrandError, match=r"did you mean 'pole\.mass'"):
        run_sweep(run, ["pole.mas"])
    with pytest.raises(DomrandError, match="one or two"):
        run_sweep(run, ["pole.mass", "cart.mass", "motor.gain"])
    with pytest.raises(DomrandError, match="--episodes"):
        run_sweep(run, ["pole.mass"], episodes=0)
    with pytest.raises(DomrandError, match="--others"):
        run_sweep(run, ["pole.mass"], others="reality")
    with pytest.raises(DomrandError, match="no training spec"):
        run_sweep(load_run(nominal_run), ["pole.mass"], others="spec")

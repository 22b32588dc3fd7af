"""Physics-fault episodes in a real training run: counted in ``metrics.csv``'s ``faults`` column
and the checkpoint's counters, and kept out of every return, length and success statistic."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import domrand
from domrand.envs.cartpole import CartPoleEnv
from domrand.policies import train as train_module
from domrand.policies.checkpoint import latest_checkpoint, load_checkpoint
from domrand.policies.config import TrainConfig
from domrand.policies.train import train

ENV_ID = "domrand/CartPole-v0"
FAULT_AT = 3  #: faulting episodes end at this step, so their returns differ from the rest


def test_fault_episodes_are_counted_and_excluded_from_training_statistics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_config: Callable[..., TrainConfig]
) -> None:
    real_state = CartPoleEnv._state

    def state(self: CartPoleEnv) -> Any:
        # episodes with a heavier-than-nominal pole blow up at step FAULT_AT
        s = real_state(self)
        if self._values["pole.mass"] > 0.1 and self._steps == FAULT_AT:
            return (s[0], math.nan, s[2], s[3])
        return s

    monkeypatch.setattr(CartPoleEnv, "_state", state)
    per_iteration: list[list[Any]] = []
    real_collect = train_module.Collector.collect

    def collect(self: Any, buf: Any) -> Any:
        episodes = real_collect(self, buf)
        per_iteration.append(episodes)
        return episodes

    monkeypatch.setattr(train_module.Collector, "collect", collect)
    run = tmp_path / "run"
    spec = domrand.default_spec_path(ENV_ID)
    result = train(tiny_config(384, seed=5), run, spec=spec, progress=False)

    everything = [e for eps in per_iteration for e in eps]
    faulted = [e for e in everything if e.fault]
    good = [e for e in everything if not e.fault]
    assert faulted and good, "the run must see both kinds of episode"
    assert all(e.length == FAULT_AT and not e.success for e in faulted)

    with (run / "metrics.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(per_iteration) == 3
    mixed = 0
    for row, eps in zip(rows, per_iteration):
        ok = [e for e in eps if not e.fault]
        assert int(row["faults"]) == len(eps) - len(ok)
        assert int(row["episodes"]) == len(ok)
        if ok:
            assert float(row["return_mean"]) == pytest.approx(np.mean([e.ret for e in ok]), 1e-5)
            assert float(row["length_mean"]) == pytest.approx(np.mean([e.length for e in ok]), 1e-5)
        if ok and len(ok) < len(eps):
            mixed += 1
            # with the faulted episodes averaged in, the number would have been different
            assert float(row["return_mean"]) != pytest.approx(np.mean([e.ret for e in eps]), 1e-5)
    assert mixed >= 1

    trainer = load_checkpoint(latest_checkpoint(run))["trainer"]  # type: ignore[arg-type]
    assert trainer["faults"] == len(faulted) and trainer["episodes"] == len(everything)
    assert trainer["recent_returns"] == pytest.approx([e.ret for e in good][-100:])
    assert result.recent_return == pytest.approx(np.mean([e.ret for e in good][-100:]))

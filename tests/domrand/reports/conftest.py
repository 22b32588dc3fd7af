"""A tiny trained CartPole run shared by the report tests (a few seconds to train)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import domrand
from domrand.policies.config import TrainConfig
from domrand.policies.train import train

ENV_ID = "domrand/CartPole-v0"
TINY = TrainConfig(
    total_steps=256, num_envs=2, num_steps=64, hidden=8, epochs=1, batch_size=64, seq_len=16,
    checkpoint_every=256,
)  # fmt: skip


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory trained under the shipped CartPole spec (do not modify it)."""
    run = tmp_path_factory.mktemp("reports") / "run"
    train(TINY, run, spec=domrand.default_spec_path(ENV_ID), progress=False)
    return run


@pytest.fixture(scope="session")
def nominal_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run trained on nominal dynamics (no spec)."""
    run = tmp_path_factory.mktemp("reports") / "nominal"
    train(TINY, run, spec=None, progress=False)
    return run


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst

"""A full disk (ENOSPC) while checkpointing: the previous checkpoint stays intact and loadable, no
temporary is left or mistaken for a checkpoint, and the error is one clear line.

The disk "fills up" inside :func:`domrand.fsutil.atomic_write_bytes`: ``os.fdopen`` is wrapped so
that writes to chosen temporaries raise ``OSError(ENOSPC)`` after some bytes went through (or
``os.fsync`` raises it), exactly where a real full disk fails.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import domrand
from domrand.cli import main
from domrand.errors import StorageError
from domrand.fsutil import atomic_write_bytes, is_temporary
from domrand.guided.state import load_state
from domrand.policies.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_policy,
)
from domrand.policies.config import TrainConfig
from domrand.policies.train import train

ENV_ID = "domrand/CartPole-v0"
SPEC = domrand.default_spec_path(ENV_ID)


class _FullDisk:
    """A file object that accepts ``room`` bytes, then fails like a full disk."""

    def __init__(self, f: Any, room: int) -> None:
        self._f, self._room = f, room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            self._f.write(data[: self._room])  # part of it reaches the disk
            self._f.flush()
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return int(self._f.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def fill_disk(
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    *,
    room: int = 1000,
    skip: int = 0,
    at: str = "write",
) -> dict[str, Any]:
    """Make atomic writes whose final name matches ``target`` (a regex) fail with ENOSPC.

    The first ``skip`` matching writes succeed. ``at``: ``"write"`` (after ``room`` bytes) or
    ``"fsync"``. Returns a record: ``failed`` (final paths whose write failed), ``seen`` (count).
    """
    real_fdopen, real_fsync = os.fdopen, os.fsync
    record: dict[str, Any] = {"failed": [], "seen": 0, "fail_fds": set()}
    name_re = re.compile(target)

    def final_name(fd: int) -> str:
        tmp = Path(os.readlink(f"/proc/self/fd/{fd}")).name  # .<name>.<random>.tmp
        return tmp[1:].rsplit(".", 2)[0]

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        f = real_fdopen(fd, *args, **kwargs)
        name = final_name(fd)
        if not name_re.fullmatch(name):
            return f
        record["seen"] += 1
        if record["seen"] <= skip:
            return f
        record["failed"].append(name)
        if at == "write":
            return _FullDisk(f, room)
        record["fail_fds"].add(fd)
        return f

    def fsync(fd: int) -> None:
        if fd in record["fail_fds"]:
            record["fail_fds"].discard(fd)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fdopen", fdopen)
    monkeypatch.setattr(os, "fsync", fsync)
    return record


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if is_temporary(p) or p.name.endswith(".tmp")]


# ---------------------------------------------------------------------- the write itself
@pytest.mark.parametrize("at", ["write", "fsync"])
def test_a_full_disk_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: str
) -> None:
    path = tmp_path / "checkpoints" / "step_1.pt"
    atomic_write_bytes(path, b"old" * 1000)
    record = fill_disk(monkeypatch, r"step_1\.pt", room=1500, at=at)
    with pytest.raises(StorageError) as info:
        atomic_write_bytes(path, b"new" * 1000)
    assert record["failed"] == ["step_1.pt"]
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert "No space left on device" in str(info.value) and "step_1.pt" in str(info.value)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == b"old" * 1000
    assert _temporaries(tmp_path) == []


# ---------------------------------------------------------------------- the trainer
def test_trainer_full_disk_at_a_checkpoint_keeps_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_config: Callable[..., TrainConfig]
) -> None:
    TINY = tiny_config(seed=3)
    run = tmp_path / "run"
    train(TINY, run, spec=SPEC, progress=False)  # checkpoints at 128 and 256
    before = latest_checkpoint(run)
    assert before is not None and before.name == "step_256.pt"
    saved = before.read_bytes()
    # continue to 512: the save at step 384 runs out of space after 4 kB of the file
    record = fill_disk(monkeypatch, r"step_\d+\.pt", room=4096)
    with pytest.raises(StorageError) as info:
        train(TINY.replace(total_steps=512), run, spec=SPEC, resume=True, progress=False)
    assert record["failed"] == ["step_384.pt"]
    msg = str(info.value)
    assert "step_384.pt" in msg and "No space left on device" in msg
    assert "step_256.pt" in msg and "--resume" in msg and "\n" not in msg
    # the previous checkpoint is untouched and loads; nothing else looks like a checkpoint
    assert [p.name for p in list_checkpoints(run)] == ["step_128.pt", "step_256.pt"]
    assert before.read_bytes() == saved
    assert load_checkpoint(before)["trainer"]["env_steps"] == 256
    load_policy(run)
    assert _temporaries(run) == []
    # with space again, --resume continues from step 256 to the end
    monkeypatch.undo()
    result = train(TINY.replace(total_steps=512), run, spec=SPEC, resume=True, progress=False)
    assert result.env_steps == 512 and latest_checkpoint(run).name == "step_512.pt"  # type: ignore[union-attr]
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [128, 256, 384, 512]


def test_train_cli_full_disk_is_one_line_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tiny_config: Callable[..., TrainConfig],
) -> None:
    TINY = tiny_config(seed=3)
    run = tmp_path / "run"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({k: v for k, v in TINY.to_dict().items() if k != "env"}))
    argv = ["train", "--env", ENV_ID, "--config", str(cfg), "--out", str(run), "--quiet"]
    fill_disk(monkeypatch, r"step_\d+\.pt", skip=1, at="fsync")  # the second checkpoint fails
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("domrand: error: cannot write checkpoint"), err
    assert "step_256.pt" in err[0] and "No space left on device" in err[0]
    assert "step_128.pt" in err[0] and "is intact" in err[0]
    assert [p.name for p in list_checkpoints(run)] == ["step_128.pt"]
    load_policy(run)
    assert _temporaries(run) == []


def test_metrics_append_on_a_full_disk_is_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from domrand.policies.metrics import MetricsWriter

    writer = MetricsWriter(tmp_path)

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer._file, "flush", full, raising=False)
    with pytest.raises(StorageError, match=r"metrics\.csv.*No space left on device"):
        writer.write({"env_steps": 1})
    monkeypatch.undo()
    writer.close()


# ---------------------------------------------------------------------- guide states
def _guide_argv(tmp_path: Path, method: str, settings: dict[str, Any]) -> list[str]:
    cfg = tmp_path / f"{method}.yaml"
    cfg.write_text(yaml.safe_dump(settings))
    return [
        "guide",
        method,
        "--env",
        ENV_ID,
        "--spec",
        str(SPEC),
        "--reality",
        "heavy_pole",
        "--config",
        str(cfg),
        "--out",
        str(tmp_path / method),
    ]


TRAIN = {
    "num_envs": 2,
    "num_steps": 64,
    "hidden": 8,
    "epochs": 1,
    "batch_size": 64,
    "seq_len": 16,
    "checkpoint_every": 128,
}


def _one_line(capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("domrand: error:"), err
    for n in needles:
        assert n in err[0], err[0]
    return err[0]


def test_cmaes_full_disk_at_the_state_file_keeps_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = {
        "generations": 1,
        "popsize": 2,
        "pretrain_steps": 128,
        "finetune_steps": 128,
        "eval_rollouts": 1,
        "horizon": 20,
        "train": TRAIN,
    }
    # one worker: a round of candidates is one candidate, so the state is saved after each
    argv = [*_guide_argv(tmp_path, "cmaes", settings), "--workers", "1"]
    out = tmp_path / "cmaes"
    # state.json writes: iteration 0, pretrain done, candidates asked, candidate 0 scored, then
    # candidate 1 (fails)
    contents: list[str] = []
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        if Path(dst).name == "state.json":
            contents.append(Path(dst).read_text())

    monkeypatch.setattr(os, "replace", replace)
    record = fill_disk(monkeypatch, r"state\.json", skip=4, room=64)
    assert main(argv) == 2
    _one_line(capsys, "state.json", "No space left on device", "previous version")
    assert record["failed"] == ["state.json"] and len(contents) == 4
    assert (out / "state.json").read_text() == contents[-1]  # the last complete state
    state = load_state(out)
    assert state is not None and state["pending"]["cost"][0] is not None
    assert state["pending"]["cost"][1] is None
    assert _temporaries(out) == []
    monkeypatch.undo()
    assert main([*argv, "--resume"]) == 0
    final = load_state(out)
    assert final is not None and final["generation"] == 1
    assert final["budget"]["real_rollouts"] == 2  # candidate 0 was not scored again
    assert json.loads((out / "report.json").read_text())["generations"] == 1


def test_autodr_full_disk_at_a_checkpoint_keeps_the_guide_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = {
        "metric": "return",
        "t_low": 0.0,
        "t_high": 0.5,
        "buffer_size": 2,
        "delta": 0.25,
        "eval_episodes": 2,
        "train": {**TRAIN, "total_steps": 512},
    }
    argv = _guide_argv(tmp_path, "autodr", settings)
    out = tmp_path / "autodr"
    fill_disk(monkeypatch, r"step_\d+\.pt", skip=2, room=2048)
    assert main(argv) == 2
    _one_line(capsys, "cannot write checkpoint", "step_384.pt", "step_256.pt", "intact")
    ckpt = latest_checkpoint(out / "policy")
    assert ckpt is not None and ckpt.name == "step_256.pt"
    guide_state = load_checkpoint(ckpt)["guide"]
    assert isinstance(guide_state, dict) and guide_state  # the automatic-DR state is there
    assert _temporaries(out) == []
    monkeypatch.undo()
    assert main([*argv, "--resume"]) == 0
    assert latest_checkpoint(out / "policy").name == "step_512.pt"  # type: ignore[union-attr]
    final = load_checkpoint(latest_checkpoint(out / "policy"))["guide"]  # type: ignore[arg-type]
    assert set(final) == set(guide_state)

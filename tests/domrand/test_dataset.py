"""Randomized (image, label) datasets: shards, reading back, resuming, determinism, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import domrand
from domrand.cli import main
from domrand.dataset import read_dataset, read_manifest, read_shards, write_dataset
from domrand.errors import DomrandError

ENV_ID = "domrand/Localization-v0"
SPEC = str(domrand.default_spec_path(ENV_ID))
ARGS = {"n": 7, "shard_size": 3, "seed": 0, "image_size": 24, "progress": False}


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "loc"
    write_dataset(ENV_ID, SPEC, out_dir=out, **ARGS)  # type: ignore[arg-type]
    return out


def test_shards_and_manifest(written: Path) -> None:
    names = sorted(p.name for p in written.iterdir())
    assert names == ["manifest.json"] + [
        f"shard-{k:05d}{s}" for k in range(3) for s in (".jsonl", ".npz")
    ]
    m = read_manifest(written)
    assert m["env"] == ENV_ID and m["n"] == 7 and m["shards"] == 3 and m["shard_size"] == 3
    assert m["image_size"] == [24, 24] and m["label"] == "label" and m["label_dim"] == 2
    assert m["spec"]["parameters"]["distractors.count"]["dist"] == "uniform"
    sizes = [len(s.labels) for s in read_shards(written)]
    assert sizes == [3, 3, 1]


def test_read_back_images_labels_and_domains(written: Path) -> None:
    samples = list(read_dataset(written))
    assert len(samples) == 7
    for s in samples:
        assert s.image.shape == (24, 24, 3) and s.image.dtype == np.uint8
        assert s.label.shape == (2,) and s.label.dtype == np.float32
        assert abs(s.label[0]) <= 0.3 and abs(s.label[1]) <= 0.2
        assert 0 <= s.domain["distractors.count"] <= 10 and "table.texture" in s.domain
    assert len({s.image.tobytes() for s in samples}) == 7
    assert len({s.domain["table.texture"] for s in samples}) > 1  # randomized


def test_samples_are_what_the_env_renders(written: Path) -> None:
    """A stored sample re-rendered from its domain and shard seed gives the same label."""
    first = next(read_dataset(written))
    env = domrand.make(ENV_ID, image_size=24)
    from domrand.dataset import shard_seed

    obs, info = env.reset(seed=shard_seed(0, 0), options={"domain": first.domain})
    env.close()
    np.testing.assert_array_equal(info["label"], first.label)
    np.testing.assert_array_equal(obs, first.image)


def test_resume_finishes_missing_shards_bit_identically(written: Path, tmp_path: Path) -> None:
    out = tmp_path / "partial"
    write_dataset(ENV_ID, SPEC, out_dir=out, **ARGS)  # type: ignore[arg-type]
    (out / "shard-00001.npz").unlink()  # as if interrupted while writing shard 1
    (out / "shard-00002.npz").unlink()
    (out / "shard-00002.jsonl").unlink()
    kept = (out / "shard-00000.npz").stat().st_mtime_ns
    with pytest.raises(DomrandError, match="shard 1 is missing"):
        list(read_dataset(out))
    write_dataset(ENV_ID, SPEC, out_dir=out, **ARGS)  # type: ignore[arg-type]
    assert (out / "shard-00000.npz").stat().st_mtime_ns == kept  # complete shards are skipped
    assert files(out) == files(written)


def test_same_seed_same_dataset_other_seed_other_dataset(written: Path, tmp_path: Path) -> None:
    other = tmp_path / "seed1"
    write_dataset(ENV_ID, SPEC, out_dir=other, **{**ARGS, "seed": 1})  # type: ignore[arg-type]
    a = np.concatenate([s.images for s in read_shards(written)])
    b = np.concatenate([s.images for s in read_shards(other)])
    assert not np.array_equal(a, b)


def test_a_folder_with_other_content_is_refused(written: Path, tmp_path: Path) -> None:
    with pytest.raises(DomrandError, match=r"different dataset \(differs in: n\)"):
        write_dataset(ENV_ID, SPEC, out_dir=written, **{**ARGS, "n": 8})  # type: ignore[arg-type]
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(DomrandError, match="not empty"):
        write_dataset(ENV_ID, SPEC, out_dir=busy, **ARGS)  # type: ignore[arg-type]
    with pytest.raises(DomrandError, match="no dataset"):
        read_manifest(tmp_path)
    with pytest.raises(DomrandError, match="n must be"):
        write_dataset(ENV_ID, SPEC, out_dir=tmp_path / "x", **{**ARGS, "n": 0})  # type: ignore[arg-type]


def test_envs_without_a_label_store_their_state(tmp_path: Path) -> None:
    out = tmp_path / "cartpole"
    m = write_dataset("domrand/CartPole-v0", None, 3, out, shard_size=5, image_size=16,
                      progress=False)  # fmt: skip
    assert m["label"] == "state" and m["label_dim"] == 4
    labels = np.stack([s.label for s in read_dataset(out)])
    assert labels.shape == (3, 4) and np.all(np.abs(labels) <= 0.05)


def test_cli_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    argv = ["dataset", "--env", ENV_ID, "--spec", SPEC, "-n", "4", "--out", str(out),
            "--shard-size", "2", "--size", "16", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert "4 samples" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["shards"] == 2
    assert main([*argv[:5], "-n", "0", *argv[7:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("domrand: error: n must be at least 1")
    bad_spec = tmp_path / "bad.yaml"
    bad_spec.write_text("env: domrand/Localization-v0\nparameters:\n  table.textur: 3\n")
    assert main(["dataset", "--env", ENV_ID, "--spec", str(bad_spec), "-n", "2", "--out",
                 str(tmp_path / "y"), "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'table.texture'" in err[0]

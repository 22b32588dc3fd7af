"""Randomized (image, label) datasets for supervised sim-to-real training (Tobin et al. 2017).

:func:`write_dataset` resets an image-mode env ``n`` times under a spec and stores every
observation with its label and the domain it was rendered in, in shards::

    out_dir/manifest.json        what was written: env, spec, n, shard size, seed, image size
    out_dir/shard-00000.npz      images (k, H, W, 3) uint8, labels (k, D) float32
    out_dir/shard-00000.jsonl    one JSON line per sample: the domain (every knob value)

Each shard is written to a temporary file and renamed into place, so a crash leaves complete
shards only, and a re-run with the same arguments skips them (resume). Shard ``k`` is seeded from
``(seed, k)`` alone, so a resumed dataset is bit-identical to one written in a single run.

The label is ``info["label"]`` when the env gives one (Localization: the object's table position)
and otherwise ``info["state"]`` (any env's physical state in image mode).
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from domrand.errors import DomrandError
from domrand.fsutil import atomic_write_bytes

__all__ = ["Sample", "Shard", "read_dataset", "read_manifest", "read_shards", "write_dataset"]

FORMAT = "domrand-dataset/1"
MANIFEST = "manifest.json"


class Sample(NamedTuple):
    """One randomized image with its label and the domain it was rendered in."""

    image: np.ndarray
    label: np.ndarray
    domain: dict[str, Any]


class Shard(NamedTuple):
    """A whole shard: ``images`` (k, H, W, 3) uint8, ``labels`` (k, D) float32, k domains."""

    images: np.ndarray
    labels: np.ndarray
    domains: list[dict[str, Any]]


def _shard_name(k: int, suffix: str) -> str:
    return f"shard-{k:05d}{suffix}"


def shard_seed(seed: int, k: int) -> int:
    """The reset seed of shard ``k``: depends on ``(seed, k)`` only, so shards are independent."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint32)[0])


def _label_of(info: Mapping[str, Any]) -> tuple[str, np.ndarray]:
    for key in ("label", "state"):
        if key in info:
            return key, np.asarray(info[key], dtype=np.float32).ravel()
    raise DomrandError("the env gives no info['label'] or info['state'] to use as a label")


def write_dataset(
    env_id: str,
    spec: Any,
    n: int,
    out_dir: str | os.PathLike[str],
    shard_size: int = 1000,
    seed: int = 0,
    image_size: int | Sequence[int] = 84,
    *,
    progress: bool = True,
    compress: bool = True,
    env_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``n`` randomized samples of ``env_id`` (in image mode) to shards in ``out_dir``.

    Args:
        env_id: e.g. ``"domrand/Localization-v0"``.
        spec: a spec, spec file or dict (``None``: nominal appearance every time).
        n: number of samples.
        out_dir: output folder (created; an existing dataset there is resumed).
        shard_size: samples per shard file.
        seed: root seed; shard ``k`` resets with ``shard_seed(seed, k)``.
        image_size: side or ``(height, width)`` in pixels.
        progress: show a progress bar on stderr.
        compress: zlib-compress the shards (smaller, slower to write).
        env_kwargs: more constructor arguments for the env.

    Returns:
        The manifest (also in ``out_dir/manifest.json``).

    Raises:
        DomrandError: bad arguments, or ``out_dir`` holds something else (another dataset).
        SpecError: the spec is invalid for the env.
    """
    import domrand
    from domrand.registry import check_seed

    if n < 1:
        raise DomrandError(f"n must be at least 1, got {n}")
    if shard_size < 1:
        raise DomrandError(f"shard_size must be at least 1, got {shard_size}")
    check_seed(seed)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DomrandError(f"{out} exists and is not a directory")
    kwargs = {"obs_mode": "image", "image_size": image_size, **dict(env_kwargs or {})}
    try:
        env = domrand.make(env_id, spec=spec, **kwargs)
    except (TypeError, ValueError) as e:
        raise DomrandError(f"cannot make {env_id} in image mode: {e}") from None
    try:
        _, probe = env.reset(seed=shard_seed(seed, 0))
        label_key, label = _label_of(probe)
        randomization = env.randomization  # type: ignore[attr-defined]
        h, w = env.unwrapped.image_size  # type: ignore[attr-defined]
        manifest = {
            "format": FORMAT,
            "env": env_id,
            "n": n,
            "shard_size": shard_size,
            "shards": math.ceil(n / shard_size),
            "seed": seed,
            "image_size": [h, w],
            "label": label_key,
            "label_dim": int(label.size),
            "env_kwargs": {k: v for k, v in kwargs.items() if k not in ("obs_mode", "image_size")},
            "spec": None if randomization is None else randomization.to_dict(),
        }
        _open_output(out, manifest)
        todo = [
            k
            for k in range(manifest["shards"])
            if not (out / _shard_name(k, ".npz")).exists()
            or not (out / _shard_name(k, ".jsonl")).exists()
        ]
        sizes = {k: min(shard_size, n - k * shard_size) for k in todo}
        with _progress_bar(progress, sum(sizes.values()), f"{env_id} -> {out}") as advance:
            for k in todo:
                _write_shard(
                    env, out, k, sizes[k], shard_seed(seed, k), label_key, compress, advance
                )
    finally:
        env.close()
    return manifest


def _open_output(out: Path, manifest: dict[str, Any]) -> None:
    """Create ``out`` with the manifest, or check that it holds the same dataset (resume)."""
    path = out / MANIFEST
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DomrandError(f"{path}: unreadable manifest ({e})") from None
        if old != json.loads(json.dumps(manifest)):
            diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            raise DomrandError(
                f"{out} holds a different dataset (differs in: {', '.join(diff)}); "
                "use another --out or delete it"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise DomrandError(f"{out} is not empty and has no {MANIFEST}; use an empty directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a parent is a file, no permission...
        raise DomrandError(f"cannot create output directory {out}: {e.strerror}") from None
    text = json.dumps(manifest, indent=2, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def _write_shard(
    env: Any,
    out: Path,
    k: int,
    size: int,
    seed: int,
    label_key: str,
    compress: bool,
    advance: Any,
) -> None:
    images, labels, lines = [], [], []
    for i in range(size):
        obs, info = env.reset(seed=seed if i == 0 else None)
        images.append(obs)
        labels.append(np.asarray(info[label_key], dtype=np.float32).ravel())
        lines.append(json.dumps(info["domain"], allow_nan=False, separators=(",", ":")))
        advance(1)
    buf = io.BytesIO()
    save = np.savez_compressed if compress else np.savez
    save(buf, images=np.stack(images), labels=np.stack(labels))
    # The .jsonl goes first: a shard counts as complete once its .npz exists.
    atomic_write_bytes(out / _shard_name(k, ".jsonl"), ("\n".join(lines) + "\n").encode())
    atomic_write_bytes(out / _shard_name(k, ".npz"), buf.getvalue())


class _progress_bar:
    """A rich progress bar on stderr (or nothing), used as ``with ... as advance:``."""

    def __init__(self, enabled: bool, total: int, title: str) -> None:
        self.enabled, self.total, self.title = enabled and total > 0, total, title

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda _n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._progress.start()
        task = self._progress.add_task(self.title, total=self.total)
        return lambda n: self._progress.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._progress.stop()


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a dataset folder.

    Raises:
        DomrandError: no readable manifest there.
    """
    path = Path(out_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DomrandError(f"{out_dir} holds no dataset ({MANIFEST} not found)") from None
    except (OSError, ValueError) as e:
        raise DomrandError(f"{path}: unreadable manifest ({e})") from None
    if manifest.get("format") != FORMAT:
        raise DomrandError(f"{path}: not a {FORMAT} manifest")
    return dict(manifest)


def read_shards(out_dir: str | os.PathLike[str]) -> Iterator[Shard]:
    """Every shard in order, as whole arrays (the fast way to feed a training loop).

    Raises:
        DomrandError: a shard is missing (an interrupted write: run it again to resume).
    """
    out = Path(out_dir)
    manifest = read_manifest(out)
    for k in range(manifest["shards"]):
        npz, jsonl = out / _shard_name(k, ".npz"), out / _shard_name(k, ".jsonl")
        if not npz.exists() or not jsonl.exists():
            raise DomrandError(
                f"{out}: shard {k} is missing (interrupted write?); run write_dataset again "
                "with the same arguments to finish it"
            )
        with np.load(npz) as data:
            images, labels = data["images"], data["labels"]
        domains = [json.loads(line) for line in jsonl.read_text().splitlines() if line]
        yield Shard(images, labels, domains)


def read_dataset(out_dir: str | os.PathLike[str]) -> Iterator[Sample]:
    """Every sample in the order written: ``Sample(image, label, domain)``."""
    for shard in read_shards(out_dir):
        for image, label, domain in zip(shard.images, shard.labels, shard.domains):
            yield Sample(image, label, domain)

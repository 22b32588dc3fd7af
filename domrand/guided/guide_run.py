"""What the ``domrand guide METHOD`` commands share: settings, the output folder, the target.

Settings come from ``--config FILE`` (YAML) then ``--set key=value`` overrides, where a dotted key
reaches a section (``--set svpg.lr=1e-3``, ``--set train.total_steps=50000``). The ``train``
section holds :class:`~domrand.policies.config.TrainConfig` keys; ``--env`` and ``--seed`` set the
trainer's env and seed. Every guide run's folder has::

    OUT/guide.yaml        method, env, spec, seed, target, settings, trainer config
    OUT/policy/           the training run(s) (their checkpoints hold the guide state)
    OUT/spec.yaml         the latest distribution
    OUT/report.json       budgets and results

and method-specific files (Active DR: ``particles.npz``/``.png``, ``spec_latest.yaml`` and
``specs/``; automatic DR: ``ranges.csv``/``.png``, ``spec_latest.yaml`` and ``specs/``; CMA-ES
and SimOpt: see :mod:`domrand.guided.state`). ``--resume`` re-reads ``guide.yaml`` and refuses
method settings that differ from it (the trainer checks its own config).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from domrand.errors import CheckpointError, ConfigError, DomrandError, did_you_mean
from domrand.fsutil import atomic_write_text, remove_temporaries
from domrand.guided.cli import parse_overrides
from domrand.spec import Domain, RandomizationSpec

__all__ = [
    "GuideSetup",
    "evaluate_final",
    "load_guide_settings",
    "prepare_out",
    "settings_from_dict",
    "setup_guide",
    "summarize_run",
    "target_of",
]


def _set_dotted(doc: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = doc
    for p in parents:
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {p!r} is not a section")
        node = child
    node[last] = value


def load_guide_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(method settings, trainer settings)`` from ``--config`` and ``--set`` (not validated)."""
    doc: dict[str, Any] = {}
    if args.config:
        p = Path(args.config)
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{p}: config file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: cannot read config file ({type(e).__name__})") from None
        except yaml.YAMLError:
            raise ConfigError(f"{p}: not valid YAML") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: a config file must be a mapping of settings")
        doc = loaded
    for key, value in parse_overrides(args.set).items():
        _set_dotted(doc, key, value)
    train = doc.pop("train", {}) or {}
    if not isinstance(train, dict):
        raise ConfigError("train: must be a mapping of trainer settings")
    return doc, train


def _type_ok(value: Any, hint: Any) -> tuple[bool, Any]:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for t in allowed:
        if t is type(None) and value is None:
            return True, value
        if t is bool and isinstance(value, bool):
            return True, value
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return True, value
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        if t is str and isinstance(value, str):
            return True, value
        is_seq = typing.get_origin(t) in (list, tuple) and isinstance(value, list)
        if is_seq and all(isinstance(v, str) for v in value):
            return True, tuple(value)
    return False, value


def settings_from_dict(cls: type, doc: Mapping[str, Any], section: str) -> Any:
    """Build the frozen dataclass ``cls`` from ``doc``: unknown keys and wrong types are a
    one-line :class:`ConfigError` (with did-you-mean). Nested dataclass fields take mappings."""
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{section}: must be a mapping of settings, got {doc!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in doc.items():
        where = f"{section}.{key}" if section else str(key)
        if key not in names:
            raise ConfigError(f"unknown setting {where!r}{did_you_mean(str(key), names)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = settings_from_dict(hint, value or {}, where)
            continue
        ok, converted = _type_ok(value, hint)
        if not ok:
            raise ConfigError(f"setting {where} has the wrong type: got {value!r}")
        if isinstance(converted, float) and not math.isfinite(converted):
            raise ConfigError(f"setting {where} must be finite, got {value!r}")
        kwargs[key] = converted
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{section or 'settings'}: {e}") from None


@dataclasses.dataclass(frozen=True)
class GuideSetup:
    """What every ``domrand guide METHOD`` run starts from: validated settings, the trainer
    config, the spec, the output folder and the record written to ``guide.yaml``."""

    settings: Any
    cfg: Any  #: domrand.policies.config.TrainConfig
    spec: RandomizationSpec
    out: Path
    record: dict[str, Any]


def setup_guide(
    args: argparse.Namespace,
    method: str,
    settings_cls: type,
    *,
    method_doc: dict[str, Any] | None = None,
    extra_settings: Mapping[str, Any] | None = None,
) -> GuideSetup:
    """Parse ``--config``/``--set`` into ``settings_cls`` and the trainer config, load the spec.

    The record's ``target`` starts as ``None``; the caller sets it once it has checked the
    target options (each method reports its own errors in its own order).

    Args:
        method_doc: the method section when the caller already read and edited it.
        extra_settings: settings kept outside ``settings_cls`` but recorded with it.
    """
    from domrand.backends.cli_args import backend_changes
    from domrand.policies.config import TrainConfig
    from domrand.registry import knobs_for
    from domrand.spec import load_spec

    doc, train_doc = load_guide_settings(args)
    settings = settings_from_dict(settings_cls, doc if method_doc is None else method_doc, "")
    cfg = TrainConfig.from_dict(
        {**TrainConfig().to_dict(), **train_doc, "env": args.env, "seed": args.seed}, "train"
    )
    cfg = cfg.replace(**backend_changes(args))  # --backend/--workers/--address
    spec = load_spec(args.spec, env=knobs_for(args.env))
    record = {
        "method": method,
        "env": args.env,
        "spec": spec.to_dict(),
        "seed": args.seed,
        "target": None,
        "settings": {**settings.to_dict(), **(extra_settings or {})},
        "train": cfg.to_dict(),
    }
    return GuideSetup(settings, cfg, spec, Path(args.out), record)


def summarize_run(report: Mapping[str, Any], scores: Mapping[str, Any]) -> tuple[str, str]:
    """``(explored ranges, returns)`` of an adr/autodr report as short text for the CLI line."""
    ranges = ", ".join(f"{k} {a:.3g}..{b:.3g}" for k, (a, b) in report["explored_ranges"].items())
    rets = ", ".join(f"{k} {v['mean']:.1f}" for k, v in scores.items() if not math.isnan(v["mean"]))
    return ranges, rets


def target_of(args: argparse.Namespace, method: str) -> tuple[str, Domain] | None:
    """The domain the final policy is evaluated on (``--reality``/``--domain``), or ``None``.

    Active and automatic DR never look at the target while they train; it only scores the result.
    """
    from domrand.registry import knobs_for, reality_path
    from domrand.spec import load_domain

    if getattr(args, "recorded", None):
        raise DomrandError(
            f"{method} does not use recorded trajectories (it never looks at real data while it "
            "trains); give --reality or --domain to score the final policy on a target"
        )
    if getattr(args, "reality", None):
        path = reality_path(args.env, args.reality)
        return f"reality: {args.reality}", load_domain(path, knobs_for(args.env))
    if getattr(args, "domain", None):
        return f"domain: {args.domain}", load_domain(args.domain, knobs_for(args.env))
    return None


def prepare_out(out: Path, record: dict[str, Any], resume: bool) -> None:
    """Create ``out`` and write ``guide.yaml``; with ``resume`` check it matches ``record``."""
    path = out / "guide.yaml"
    text = yaml.safe_dump(record, sort_keys=False)
    if not resume:
        if path.exists() or (out / "policy").exists():
            raise DomrandError(
                f"{str(out)!r} already holds a guide run; pass --resume to continue it, or "
                "choose another --out"
            )
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DomrandError(f"cannot create output directory {str(out)!r}: {e}") from None
        atomic_write_text(path, text)
        return
    if not path.exists():
        raise CheckpointError(f"nothing to resume in {str(out)!r} (no guide.yaml)")
    remove_temporaries(out)  # what writes a kill interrupted left behind
    saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    # Compare through YAML so tuples/lists and int/float spellings match as they were saved.
    now = yaml.safe_load(text)
    if not isinstance(saved, dict):
        raise CheckpointError(f"{str(path)!r} is not a guide record")
    diffs = [k for k in now if k != "train" and saved.get(k) != now[k]]
    if diffs:
        raise CheckpointError(
            f"cannot resume {str(out)!r}: its guide.yaml has other {', '.join(diffs)} than "
            "given now"
        )


def evaluate_final(
    policy: Any,
    env_id: str,
    spec: RandomizationSpec | None,
    target: tuple[str, Domain] | None,
    episodes: int,
    seed: int,
) -> dict[str, Any]:
    """Mean return of the final policy on nominal, on the training spec and on the target."""
    from domrand.policies.evaluate import evaluate

    rows = {"nominal": evaluate(policy, env_id, episodes=episodes, seed=seed)}
    if spec is not None:
        rows["training spec"] = evaluate(policy, env_id, spec=spec, episodes=episodes, seed=seed)
    if target is not None:
        label, domain = target
        rows[label] = evaluate(policy, env_id, domain=domain, episodes=episodes, seed=seed)
    return {k: {"mean": r.mean, "success_rate": r.success_rate} for k, r in rows.items()}


@dataclasses.dataclass(frozen=True)
class GuidedTraining:
    """A finished ``domrand guide adr|autodr`` run: its setup, guide, training steps, scores."""

    setup: GuideSetup
    guide: Any  #: the Guide that ran alongside the trainer (closed)
    env_steps: int
    scores: dict[str, Any]


def train_with_guide(
    args: argparse.Namespace,
    method: str,
    settings_cls: type,
    make_guide: Callable[[GuideSetup], Any],
    plot: Callable[[Path], None],
    eval_spec: Callable[[Any, GuideSetup], RandomizationSpec | None],
) -> GuidedTraining:
    """The command of a guide that adapts the training distribution as the policy trains
    (Active DR, automatic DR): set up and check the run folder, train (``--resume`` continues),
    write the guide's outputs and plot, and score the final policy (:func:`evaluate_final`) on
    nominal, on ``eval_spec(guide, setup)`` and on the target.

    ``make_guide`` must have no side effects: it runs before the run folder is checked.
    """
    from domrand.policies.checkpoint import load_policy
    from domrand.policies.train import train

    run = setup_guide(args, method, settings_cls)
    target = target_of(args, method)
    run.record["target"] = None if target is None else target[0]
    guide = make_guide(run)
    prepare_out(run.out, run.record, args.resume)
    try:
        result = train(run.cfg, run.out / "policy", guide=guide, resume=args.resume, progress=False)
    finally:
        guide.close()
    guide.write_outputs(snapshot=True)
    plot(run.out)
    policy, _ = load_policy(run.out / "policy")
    spec = eval_spec(guide, run)
    episodes = run.settings.eval_episodes
    scores = evaluate_final(policy, args.env, spec, target, episodes, args.seed)
    return GuidedTraining(run, guide, result.env_steps, scores)


def report_guided(done: GuidedTraining, fields: Mapping[str, Any]) -> tuple[str, str]:
    """Write ``report.json`` of a :func:`train_with_guide` run (method-specific ``fields`` between
    the training steps and the explored ranges); return :func:`summarize_run`'s text."""
    report = {
        "method": done.setup.record["method"],
        "env": done.setup.record["env"],
        "training_env_steps": done.env_steps,
        **fields,
        "explored_ranges": done.guide.explored_ranges(),
        "returns": done.scores,
    }
    write_report(done.setup.out, report)
    return summarize_run(report, done.scores)


def write_report(out: Path, report: dict[str, Any]) -> None:
    atomic_write_text(out / "report.json", json.dumps(report, indent=2, default=float) + "\n")

"""Rollout backends without Ray: same numbers for local and subprocess at any worker count, a
SIGKILLed subprocess worker is restarted (trainer: interrupted episodes counted once as faults;
guide batches: re-run exactly), and bad backend settings are one-line errors."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import domrand
from domrand.backends import BackendConfig, BackendError, WorkerDied, open_backend, run_chunks
from domrand.backends.base import ping as run_ping
from domrand.cli import main
from domrand.errors import ConfigError
from domrand.guided.rollouts import PolicyRunner
from domrand.policies.checkpoint import latest_checkpoint, load_checkpoint
from domrand.policies.config import TrainConfig
from domrand.policies.networks import build_policy
from domrand.policies.train import net_config_for, train

ENV_ID = "domrand/CartPole-v0"
SPEC = str(domrand.default_spec_path(ENV_ID))
TINY = TrainConfig(
    total_steps=384, num_envs=3, num_steps=64, hidden=8, epochs=1, batch_size=64, seq_len=16,
    checkpoint_every=192,
)  # fmt: skip
#: metrics that depend on wall-clock time only
CLOCK = {"time_s", "steps_per_s"}


def metrics(run_dir: Path) -> list[dict[str, Any]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in CLOCK} for row in csv.DictReader(f)]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(latest_checkpoint(run_dir))["model"]  # type: ignore[arg-type, no-any-return]


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def vec_trace(backend: Any, steps: int = 120) -> np.ndarray:
    """Observations, rewards and reset domains of a seeded random-action run, flattened."""
    envs = domrand.make_vec(
        ENV_ID, 4, spec=SPEC, seed=3, autoreset_mode=gym.vector.AutoresetMode.DISABLED,
        backend=backend,
    )  # fmt: skip
    try:
        obs, info = envs.reset(seed=[1, 2, 3, 4])
        out = [obs.ravel(), np.array([info["domain"]["pole.mass"]]).ravel()]
        rng = np.random.default_rng(0)
        for _ in range(steps):
            obs, rew, term, trunc, _ = envs.step(rng.uniform(-1, 1, (4, 1)).astype(np.float32))
            out += [obs.ravel(), rew]
            ended = term | trunc
            if ended.any():
                obs, info = envs.reset(options={"reset_mask": ended})
                out += [obs.ravel(), info["domain"]["pole.mass"][ended]]
        return np.concatenate(out)
    finally:
        envs.close()


def test_vector_env_is_the_same_on_every_backend_and_worker_count() -> None:
    reference = vec_trace(None)  # gymnasium's SyncVectorEnv
    for config in (BackendConfig("local", 3), BackendConfig("subprocess", 1),
                   BackendConfig("subprocess", 2)):  # fmt: skip
        np.testing.assert_array_equal(vec_trace(config), reference, err_msg=str(config))


def test_training_is_the_same_on_local_and_subprocess(tmp_path: Path) -> None:
    train(TINY.replace(backend="local"), tmp_path / "local", spec=SPEC, progress=False)
    train(TINY.replace(backend="subprocess", workers=2), tmp_path / "sub", spec=SPEC,
          progress=False)  # fmt: skip
    assert metrics(tmp_path / "local") == metrics(tmp_path / "sub")
    assert len(metrics(tmp_path / "local")) == TINY.iterations
    assert same_weights(tmp_path / "local", tmp_path / "sub")


def test_killed_subprocess_worker_is_restarted_and_training_goes_on(tmp_path: Path) -> None:
    backend = open_backend(BackendConfig("subprocess", 2))
    killed: list[int] = []

    def kill_after_first_iteration(row: dict[str, Any]) -> None:
        if row["iteration"] == 1:
            pid = backend.handles[0].pid  # type: ignore[attr-defined]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    # no checkpoint boundary after iteration 0, where every env would be reset (and a reset is
    # simply re-run on a rebuilt worker): the kill interrupts running episodes
    cfg = TINY.replace(total_steps=3 * TINY.batch, checkpoint_every=100 * TINY.batch)
    try:
        result = train(cfg, tmp_path / "run", spec=SPEC, progress=False, backend=backend,
                       callback=kill_after_first_iteration)  # fmt: skip
        assert killed and backend.restarts == 1
        assert backend.handles[0].pid != killed[0]  # type: ignore[attr-defined]
    finally:
        backend.close()
    rows = metrics(tmp_path / "run")
    assert result.env_steps == 3 * cfg.batch == int(rows[-1]["env_steps"])
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]
    # worker 0 held envs 0 and 1 (3 envs over 2 workers: [0, 1], [2]): their running episodes
    # were interrupted at the first step of iteration 2 and counted once each, as faults
    # (CartPole has no physics faults)
    assert [int(r["faults"]) for r in rows] == [0, 2, 0]


def _policy() -> Any:
    env = domrand.make(ENV_ID)
    net = net_config_for(TINY, env)
    env.close()
    return build_policy(net, torch.Generator().manual_seed(0))


def _runner_trace(runner: PolicyRunner, policy: Any) -> list[np.ndarray]:
    domains = [{"pole.mass": m} for m in (0.05, 0.1, 0.15, 0.2, 0.12)] + [None]
    trajs = runner.run(policy, domains, list(range(10, 16)), max_steps=15)
    return [np.concatenate([t.obs.ravel(), t.actions.ravel(), [t.ret]]) for t in trajs]


def test_guide_batches_rerun_exactly_after_a_worker_is_killed() -> None:
    policy = _policy()
    local = PolicyRunner(ENV_ID, None, 2)
    sub = PolicyRunner(ENV_ID, None, 2, BackendConfig("subprocess", 2))
    try:
        expected = _runner_trace(local, policy)
        first = _runner_trace(sub, policy)
        backend = sub._backend
        assert backend is not None
        backend.handles[1].kill()
        again = _runner_trace(sub, policy)
        assert backend.restarts == 1
        for a, b, c in zip(expected, first, again):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
        # 3 chunks x 2 envs x 15 steps per call; the re-run chunk is counted once
        assert local.env_steps == 3 * 2 * 15 and sub.env_steps == 2 * local.env_steps
    finally:
        local.close()
        sub.close()


def _die(host: Any, chunk: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return chunk


def test_a_chunk_that_always_kills_its_worker_gives_up_with_a_clear_error() -> None:
    backend = open_backend(BackendConfig("subprocess", 1))
    try:
        with pytest.raises(BackendError, match="lost its worker 3 times"):
            run_chunks(backend, _die, [1])
        with pytest.raises(WorkerDied):  # the handle of a dead worker says so
            backend.handles[0].kill()
            backend.handles[0].call(_die, 2)
    finally:
        backend.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"kind": "threads"}, "local, subprocess, ray"), ({"workers": -1}, "workers"),
     ({"kind": "local", "address": "auto"}, "ray backend only"),
     ({"kind": "ray", "address": "nowhere"}, "HOST:PORT")],
)  # fmt: skip
def test_bad_backend_configs_are_typed_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(BackendError, match=match):
        BackendConfig(**kwargs)


def test_train_config_backend_keys() -> None:
    assert TINY.resolved_backend == "subprocess"
    auto = min(TINY.num_envs, os.cpu_count() or 1)  # workers 0: a core per env at most
    assert TINY.backend_config() == BackendConfig("subprocess", auto)
    assert TINY.replace(vectorization="sync").backend_config() == BackendConfig("local", auto)
    assert TINY.replace(backend="ray").backend_config() == BackendConfig("ray", 0)
    assert TINY.replace(vectorization="async").backend_config() == BackendConfig("subprocess", 3)
    with pytest.raises(ConfigError, match="backend"):
        TINY.replace(backend="mpi")
    with pytest.raises(ConfigError, match="address"):
        TINY.replace(address="auto")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [(["--backend", "mpi"], "--backend must be one of"), (["--workers", "two"], "--workers"),
     (["--address", "nowhere"], "HOST:PORT"),
     (["--backend", "local", "--address", "auto"], "unless backend is 'ray'")],
)  # fmt: skip
def test_cli_backend_flags_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], needle: str
) -> None:
    argv = ["train", "--env", ENV_ID, "--steps", "64", "--out", str(tmp_path / "r"), *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("domrand: error:") and needle in err[0]
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------- Ray (local, 2 CPUs)
@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    ray = pytest.importorskip("ray")
    from domrand.backends.ray_backend import normal_worker_priority

    normal_worker_priority()  # at Ray's nice 15, actors starve while other jobs load the machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    # Held for the module: every ray(2) user below shares these two actors (no start-up cost).
    backend = open_backend(BackendConfig("ray", 2))
    yield ray
    backend.close()
    ray.shutdown()


def test_ray_training_matches_subprocess_and_local(ray_cluster: Any, tmp_path: Path) -> None:
    for name, cfg in (("ray2", TINY.replace(backend="ray", workers=2)),
                      ("sub1", TINY.replace(backend="subprocess", workers=1)),
                      ("local", TINY.replace(backend="local"))):  # fmt: skip
        result = train(cfg, tmp_path / name, spec=SPEC, progress=False)
        assert result.env_steps == TINY.iterations * TINY.batch
    for other in ("sub1", "local"):
        assert metrics(tmp_path / "ray2") == metrics(tmp_path / other), other
        assert same_weights(tmp_path / "ray2", tmp_path / other), other
    np.testing.assert_array_equal(vec_trace(BackendConfig("ray", 2)), vec_trace(None))


def test_ray_actors_on_the_drivers_machine_use_a_unix_socket(ray_cluster: Any) -> None:
    import socket

    backend = open_backend(BackendConfig("ray", 2))  # the module's actors
    try:
        for handle in backend.handles:
            sock = socket.socket(fileno=os.dup(handle.conn.fileno()))  # type: ignore[attr-defined]
            try:
                assert sock.family == socket.AF_UNIX
            finally:
                sock.close()
            assert handle.call(run_ping) == handle.pid  # type: ignore[attr-defined]
    finally:
        backend.close()


def test_killed_ray_actor_is_restarted_and_training_goes_on(
    ray_cluster: Any, tmp_path: Path
) -> None:
    backend = open_backend(BackendConfig("ray", 2))
    cfg = TINY.replace(total_steps=3 * TINY.batch, checkpoint_every=100 * TINY.batch)

    def kill_after_first_iteration(row: dict[str, Any]) -> None:
        if row["iteration"] == 1:
            ray_cluster.kill(backend.handles[1].actor)  # type: ignore[attr-defined]

    try:
        result = train(cfg, tmp_path / "run", spec=SPEC, progress=False, backend=backend,
                       callback=kill_after_first_iteration)  # fmt: skip
        assert backend.restarts == 1
    finally:
        backend.close()
    rows = metrics(tmp_path / "run")
    assert result.env_steps == 3 * cfg.batch and [int(r["iteration"]) for r in rows] == [1, 2, 3]
    assert [int(r["faults"]) for r in rows] == [0, 1, 0]  # worker 1 held env 2 only


def test_guide_run_on_ray(
    ray_cluster: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import yaml

    config = tmp_path / "adr.yaml"
    config.write_text(yaml.safe_dump({
        "round_every": 128, "rollout_steps": 10, "rollout_envs": 2, "eval_episodes": 2,
        "svpg": {"num_particles": 3, "hidden": 8, "rollout_len": 2},
        "discriminator": {"hidden": 16, "updates": 3},
        "train": {"total_steps": 384, "num_envs": 2, "num_steps": 64, "hidden": 8, "epochs": 1,
                  "batch_size": 64, "seq_len": 16, "checkpoint_every": 128}}))  # fmt: skip
    reports = {}
    for backend in ("ray", "local"):
        out = tmp_path / backend
        argv = ["guide", "adr", "--env", ENV_ID, "--spec", SPEC, "--out", str(out),
                "--config", str(config), "--backend", backend]  # fmt: skip
        argv += ["--workers", "2"] if backend == "ray" else []
        assert main(argv) == 0, capsys.readouterr().err
        reports[backend] = json.loads((out / "report.json").read_text())
        assert yaml.safe_load((out / "guide.yaml").read_text())["train"]["backend"] == backend
    assert reports["ray"]["rounds"] == 3
    # the particles' rollouts (3 particles x 2 proposals, chunks of 2 envs) ran on the actors
    # and gave the same rounds, ranges and returns as in-process
    assert reports["ray"] == reports["local"]


def test_simopt_replays_on_ray_match_local(ray_cluster: Any) -> None:
    from domrand.guided.actor import Actor, EpisodePolicy
    from domrand.guided.discrepancy import Discrepancy
    from domrand.guided.replay import Replayer
    from domrand.target import SimulatedTarget

    target = SimulatedTarget(ENV_ID, reality="heavy_pole", seed=1, max_steps=20)
    actor = Actor(_policy(), noise_std=0.3)
    noise = np.random.default_rng(0).standard_normal((20, 1))
    real = target.rollout(EpisodePolicy(actor, noise), 1)
    target.close()
    domains = [{"pole.mass": m} for m in np.linspace(0.05, 0.3, 7)]
    disc = Discrepancy()
    costs = {}
    for name, config in (("local", None), ("ray", BackendConfig("ray", 2))):
        replayer = Replayer(ENV_ID, {}, num_envs=3, backend=config)
        try:
            costs[name] = replayer.costs(domains, real, disc, actor, [noise])
            assert replayer.steps == 7 * 20
        finally:
            replayer.close()
    assert np.isfinite(costs["local"]).all() and len(set(costs["local"].tolist())) == 7
    np.testing.assert_array_equal(costs["ray"], costs["local"])


def _fail_on_two(host: Any, chunk: int) -> int:
    if chunk == 2:
        raise ConfigError("chunk 2 is bad")
    return chunk * 10


def test_a_failing_chunk_raises_its_error_and_the_workers_stay_in_step() -> None:
    backend = open_backend(BackendConfig("subprocess", 2))
    try:
        with pytest.raises(ConfigError, match="chunk 2 is bad"):
            run_chunks(backend, _fail_on_two, [1, 2, 3, 4])
        assert run_chunks(backend, _fail_on_two, [1, 3, 4, 5, 6]) == [10, 30, 40, 50, 60]
        assert backend.restarts == 0
    finally:
        backend.close()


def test_an_env_variant_registered_in_the_driver_runs_on_ray_actors(ray_cluster: Any) -> None:
    from domrand.conditioned import conditioned_env_id

    spec = domrand.load_spec(SPEC, env=ENV_ID)
    variant = conditioned_env_id(ENV_ID, spec)  # registered in this process only
    traces = []
    for backend in (BackendConfig("ray", 2), BackendConfig("local")):
        envs = domrand.make_vec(variant, 2, spec=None, seed=5, backend=backend)
        try:
            obs, _ = envs.reset(seed=[1, 2])
            assert obs.shape[1] > 4  # the normalized domain is appended to CartPole's 4
            nxt = envs.step(np.zeros((2, 1), np.float32))[0]
            traces.append(np.concatenate([obs.ravel(), nxt.ravel()]))
        finally:
            envs.close()
    np.testing.assert_array_equal(traces[0], traces[1])


def test_more_ray_workers_than_cluster_cpus_is_one_line_and_writes_nothing(
    ray_cluster: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--env", ENV_ID, "--steps", "64", "--out", str(tmp_path / "r"),
            "--backend", "ray", "--workers", "9"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "workers=9 but the Ray cluster has 2 CPUs" in err[0]
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------- CMA-ES populations
CMAES = {"generations": 2, "popsize": 3, "pretrain_steps": 128, "finetune_steps": 128,
         "eval_rollouts": 1, "universal_steps": 128, "episodes_per_candidate": 1,
         "target_steps": 10**6, "horizon": 200,
         "train": {"num_envs": 2, "num_steps": 64, "hidden": 8, "epochs": 1, "batch_size": 64,
                   "seq_len": 16, "checkpoint_every": 10**6}}  # fmt: skip


def _cmaes(out: Path, mode: str, backend: str, workers: int = 2) -> dict[str, Any]:
    """A tiny ``guide cmaes`` run; its state and report without wall-clock entries."""
    import json

    import yaml

    config = out.with_suffix(".yaml")
    config.write_text(yaml.safe_dump({**CMAES, "mode": mode}))
    argv = ["guide", "cmaes", "--env", ENV_ID, "--spec", SPEC, "--out", str(out), "--reality",
            "heavy_pole", "--config", str(config), "--backend", backend,
            "--workers", str(workers)]  # fmt: skip
    assert main(argv) == 0
    state = json.loads((out / "state.json").read_text())
    report = json.loads((out / "report.json").read_text())
    for budget in (state["budget"], report["budget"], *state["history"]):
        budget.pop("wall_s")
    report = {k: v for k, v in report.items() if k not in ("spec", "policy", "best_spec",
                                                           "best_policy")}  # fmt: skip
    return {"state": state, "report": report}


@pytest.fixture(scope="module")
def cmaes_local(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The reference: both CMA-ES shapes in-process (local backend, one worker)."""
    root = tmp_path_factory.mktemp("cmaes-local")
    return {mode: _cmaes(root / mode, mode, "local", 1) for mode in ("bilevel", "socma")}


@pytest.mark.parametrize("mode", ["bilevel", "socma"])
def test_cmaes_populations_are_the_same_on_every_backend(
    ray_cluster: Any, tmp_path: Path, cmaes_local: dict[str, dict[str, Any]], mode: str
) -> None:
    """A generation's candidates run in parallel on the workers; every candidate has its own
    seeds (fine-tune and target copy), so local(1), subprocess(2) and ray(2) agree bit for bit."""
    reference = cmaes_local[mode]
    history = reference["state"]["history"]
    assert len(history) == 3 and len({h["return_mean"] for h in history[1:]}) == 2
    budget = reference["report"]["budget"]
    assert budget["real_rollouts"] == 2 * 3  # 2 generations x 3 candidates x 1 rollout
    if mode == "bilevel":
        assert budget["train_steps"] == 128 + 2 * 3 * 128
    for backend in ("subprocess", "ray"):
        assert _cmaes(tmp_path / backend, mode, backend) == reference, backend
    if mode == "bilevel":  # the fine-tuned candidates came back from the workers intact
        for cand in ("gen_1/cand_0", "gen_1/cand_2"):
            assert same_weights(tmp_path / "ray" / "policy" / cand,
                                tmp_path / "subprocess" / "policy" / cand)  # fmt: skip


def _finetune_or_die(host: Any, parent: bytes, job: Any, work: Any) -> Any:
    """Candidate 1 of generation 1 kills its worker, the first time it runs."""
    from domrand.guided.cma_eval import finetune_candidate

    marker = Path(os.environ["DOMRAND_TEST_KILL_MARKER"])
    cand = work[1]
    if (cand.generation, cand.index) == (1, 1) and not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return finetune_candidate(host, parent, job, work)


def test_a_cmaes_candidate_whose_worker_dies_is_rerun_and_counted_once(
    tmp_path: Path, cmaes_local: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "killed"
    monkeypatch.setenv("DOMRAND_TEST_KILL_MARKER", str(marker))
    monkeypatch.setattr("domrand.guided.cmaes.finetune_candidate", _finetune_or_die)
    backend = open_backend(BackendConfig("subprocess", 2))  # the run shares it (and its forks)
    try:
        result = _cmaes(tmp_path / "run", "bilevel", "subprocess")
        assert marker.exists() and backend.restarts == 1
    finally:
        backend.close()
    # re-run on a fresh worker with the same seeds: the same search, nothing counted twice
    assert result == cmaes_local["bilevel"]
    assert result["report"]["budget"]["real_rollouts"] == 6

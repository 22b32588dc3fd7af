"""domrand/Localization-v0: labels, knobs acting on pixels, one-step episodes, realities, soak."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import domrand
import domrand.envs.localization as localization_module
from domrand.envs._bullet import pybullet
from domrand.envs.localization import TABLE_TOP, TARGET_HALF, TARGET_RANGE, LocalizationEnv
from domrand.knobs import Knob
from domrand.spec import load_domain, load_spec
from domrand.textures import white_texture_file

ENV_ID = "domrand/Localization-v0"
SPEC = domrand.default_spec_path(ENV_ID)


@pytest.fixture(scope="module")
def env() -> Iterator[LocalizationEnv]:
    e = LocalizationEnv()
    yield e
    e.close()


def _knob_names() -> tuple[str, ...]:
    probe = LocalizationEnv(image_size=16)
    try:
        return tuple(probe.knobs)
    finally:
        probe.close()


KNOB_NAMES = _knob_names()


def test_docstring_has_the_required_sections_and_names_every_knob() -> None:
    doc = localization_module.__doc__ or ""
    for section in ("Description:", "Observation:", "Action:", "Reward:", "Knobs:", "Version"):
        assert section in doc
    for name in KNOB_NAMES:
        assert f"``{name}``" in doc, name


def test_only_knobs_that_can_act_exist() -> None:
    names = set(KNOB_NAMES)
    assert not names & {"gravity", "sim.timestep", "action.delay", "action.noise"}
    for obj in ("floor", "wall", "table", "target"):
        assert {f"{obj}.texture", f"{obj}.color.r", f"{obj}.color.a"} <= names
    assert domrand.knobs_for(ENV_ID)["distractors.count"].high == 10
    assert domrand.knobs_for(ENV_ID)["table.texture"].high >= 999  # the whole bank


@pytest.mark.parametrize("name", KNOB_NAMES)
def test_every_knob_changes_the_pixels(
    env: LocalizationEnv,
    name: str,
    clearly_different: Callable[[Knob], float],
    companions: dict[str, dict[str, float]],
) -> None:
    knob = env.knobs[name]
    value = clearly_different(knob)
    context = companions.get(name, {})
    base, _ = env.reset(seed=3, options={"domain": dict(context)})
    again, _ = env.reset(seed=3, options={"domain": dict(context)})
    np.testing.assert_array_equal(base, again)
    changed, info = env.reset(seed=3, options={"domain": {**context, name: value}})
    assert info["domain"][name] == pytest.approx(value)
    assert np.abs(changed.astype(int) - base).max() > 0, f"{name}={value} changed no pixel"


@pytest.mark.parametrize("seed", range(6))
def test_the_label_is_where_the_target_is_in_the_image(env: LocalizationEnv, seed: int) -> None:
    # A pure green target on surfaces without green, under a jittered camera.
    rng = np.random.default_rng(seed)
    domain = {"target.color.r": 0.0, "target.color.g": 1.0, "target.color.b": 0.0,
              "table.color.g": 0.0, "floor.color.g": 0.0, "wall.color.g": 0.0,
              "camera.eye_dx": float(rng.uniform(-0.05, 0.05)),
              "camera.target_dy": float(rng.uniform(-0.1, 0.1)),
              "camera.roll": float(rng.uniform(-10, 10))}  # fmt: skip
    obs, info = env.reset(seed=seed, options={"domain": domain})
    (x0, x1), (y0, y1) = TARGET_RANGE
    x, y = info["label"]
    assert info["label"].dtype == np.float32 and x0 <= x <= x1 and y0 <= y <= y1
    green = obs[:, :, 1].astype(int) - obs[:, :, 0] - obs[:, :, 2] > 60
    rows, cols = np.nonzero(green)
    assert len(rows) > 20
    col, row = env._visual.project([[x, y, TABLE_TOP + TARGET_HALF]])[0]
    assert abs(cols.mean() - col) < 2.0 and abs(rows.mean() - row) < 2.0


def test_distractors_keep_clear_of_the_target(env: LocalizationEnv) -> None:
    for seed in range(20):
        _, info = env.reset(seed=seed, options={"domain": {"distractors.count": 10}})
        layout = env._visual._layout
        d = np.hypot(layout["x"] - info["label"][0], layout["y"] - info["label"][1])
        assert d.min() >= 0.1 - 1e-6


def test_one_step_episode_rewards_minus_the_distance(env: LocalizationEnv) -> None:
    obs, info = env.reset(seed=1)
    label = info["label"]
    obs2, reward, terminated, truncated, info2 = env.step(label + np.float32([0.03, -0.04]))
    assert terminated and not truncated
    assert reward == pytest.approx(-0.05, abs=1e-6) and info2["error"] == pytest.approx(0.05)
    np.testing.assert_array_equal(obs, obs2)
    np.testing.assert_array_equal(info2["label"], label)
    _, reward, *_ = env.step(np.float32([5.0, -5.0]))  # clipped to the table
    corner = np.float32([0.4, -0.3])
    assert reward == pytest.approx(-float(np.hypot(*(corner - label))), abs=1e-6)
    _, reward, *_ = env.step(np.float32([np.nan, np.nan]))
    assert reward == pytest.approx(-float(np.hypot(*label)), abs=1e-6)
    with pytest.raises(ValueError, match="2"):
        env.step(np.zeros(3, np.float32))


def test_step_before_reset_and_state_mode_are_errors() -> None:
    e = LocalizationEnv(image_size=16)
    try:
        with pytest.raises(RuntimeError, match="reset"):
            e.step(np.zeros(2, np.float32))
    finally:
        e.close()
    with pytest.raises(ValueError, match="image"):
        LocalizationEnv(obs_mode="state")


def test_same_seed_gives_identical_images_labels_and_domains() -> None:
    def run(seed: int) -> tuple[np.ndarray, np.ndarray, list]:
        e = domrand.make(ENV_ID, spec=SPEC, seed=seed, image_size=32)
        out = [e.reset() for _ in range(4)]
        e.close()
        images = np.stack([o for o, _ in out])
        return images, np.stack([i["label"] for _, i in out]), [i["domain"] for _, i in out]

    a, b, c = run(5), run(5), run(6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]
    assert not np.array_equal(a[0], c[0])


def test_realities_pin_appearance_outside_the_training_spec() -> None:
    spec = load_spec(SPEC, env=ENV_ID)
    table = domrand.realities(ENV_ID)
    assert len(table) >= 3
    for name, path in table.items():
        domain = load_domain(path, env=ENV_ID)
        outside = []
        for knob, value in domain.items():
            if knob not in spec.knob_names():
                if value != domrand.knobs_for(ENV_ID)[knob].nominal:
                    outside.append(knob)  # training never moves it
                continue
            lo, hi = spec.value_bounds(knob)
            if not lo <= value <= hi:
                outside.append(knob)
        assert outside, f"reality {name} is inside the training distribution"


# ---------------------------------------------------------------------- gymnasium's checker
MAKE_VARIANTS = {
    "no spec": {},
    "default spec": {"spec": SPEC},
    **{f"reality {r}": {"reality": r} for r in ("wood_table", "window_light", "real_camera")},
}


@pytest.mark.parametrize("kwargs", MAKE_VARIANTS.values(), ids=MAKE_VARIANTS.keys())
def test_check_env_passes(kwargs: dict) -> None:
    e = domrand.make(ENV_ID, render_mode="rgb_array", **kwargs)
    try:
        for target in (e, e.unwrapped):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                check_env(target)
            expected = "is different from the unwrapped version"
            assert not [str(w.message) for w in caught if expected not in str(w.message)]
        frame = e.render()
        assert frame.shape == (*LocalizationEnv.render_size, 3)
    finally:
        e.close()


def test_vector_envs_get_independent_image_streams() -> None:
    vec = domrand.make_vec(ENV_ID, 2, spec=SPEC, seed=0, image_size=24)
    try:
        obs, _ = vec.reset()
        assert obs.shape == (2, 24, 24, 3) and obs.dtype == np.uint8
        assert not np.array_equal(obs[0], obs[1])
        assert isinstance(vec.single_observation_space, gym.spaces.Box)
    finally:
        vec.close()


# ---------------------------------------------------------------------- resources
def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _next_texture_id(e: LocalizationEnv) -> int:
    """Load one more texture: its id is the number of textures the server holds."""
    return int(pybullet.loadTexture(white_texture_file(), physicsClientId=e._client_id))


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_soak_visually_randomized_resets_leak_nothing() -> None:
    """500 fully randomized resets: no body or texture is created, memory stays flat."""
    e = domrand.make(ENV_ID, spec=SPEC, seed=0)
    u = e.unwrapped
    try:
        for _ in range(30):  # warm-up: allocator pools, caches
            e.reset()
        bodies = pybullet.getNumBodies(physicsClientId=u._client_id)
        textures = _next_texture_id(u)
        assert textures == len(u._visual.texture_ids)  # the bank and the white texture only
        rss = _rss_mib()
        for _ in range(500):
            e.reset()
        growth = _rss_mib() - rss
        assert pybullet.getNumBodies(physicsClientId=u._client_id) == bodies
        assert _next_texture_id(u) == textures + 1  # only the probe above was added
        assert growth < 8.0, f"RSS grew {growth:.1f} MiB over 500 randomized resets"
    finally:
        e.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_reloading_the_scene_frees_its_textures() -> None:
    """resetSimulation frees the bank's pixels; the rebuilt scene loads it again (pybullet never
    reuses texture ids, so ids move on by the bank size, but memory does not grow)."""
    e = LocalizationEnv(image_size=16)
    try:
        e.reset(seed=0)
        bank = len(e._visual.texture_ids)
        first = _next_texture_id(e)
        rss = _rss_mib()
        for i in range(8):
            e._needs_reload = True  # what a physics fault or a load-phase knob change does
            obs, _ = e.reset(seed=0, options={"domain": {"distractors.count": 4}})
            assert obs.std() > 5
            assert _next_texture_id(e) == first + (i + 1) * (bank + 1)
        growth = _rss_mib() - rss
        # One leaked bank would be 12 MiB per reload, ~100 MiB here.
        assert growth < 10.0, f"RSS grew {growth:.1f} MiB over 8 reloads: textures leak"
    finally:
        e.close()

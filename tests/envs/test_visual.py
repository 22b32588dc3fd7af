"""Image observation mode and visual knobs, on CartPole (the generic BulletEnv hookup).

Localization-specific behaviour (labels, its scene, the soak) is in test_localization.py.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import domrand
from domrand.envs import CartPoleEnv
from domrand.envs.visual import parse_image_size
from domrand.knobs import Knob
from domrand.registry import assets_dir

ENV_ID = "domrand/CartPole-v0"
VISUAL_SPEC = assets_dir() / "specs" / "cartpole_visual.yaml"
ACTIONS = np.random.default_rng(5).uniform(-1.0, 1.0, size=(20, 1)).astype(np.float32)
#: every env with an image mode besides Localization (tested in test_localization.py)
IMAGE_ENVS = ("domrand/CartPole-v0", "domrand/KukaReach-v0", "domrand/Pusher-v0")


def _knob_sets(env_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    domrand.register_all()
    state = gym.make(env_id, disable_env_checker=True)
    image = gym.make(env_id, disable_env_checker=True, obs_mode="image", image_size=16)
    try:
        return tuple(state.unwrapped.knobs), tuple(image.unwrapped.knobs)
    finally:
        state.close()
        image.close()


KNOB_SETS = {env_id: _knob_sets(env_id) for env_id in IMAGE_ENVS}
STATE_KNOBS, IMAGE_KNOBS = KNOB_SETS[ENV_ID]
#: per env, the knobs that act on the pixels in image mode (physics knobs: state-mode tests)
PIXEL_CASES = [
    (env_id, name)
    for env_id, (state, image) in KNOB_SETS.items()
    for name in image
    if name not in state or name in ("obs.noise", "obs.bias")
]
VISUAL_KNOBS = tuple(k for k in IMAGE_KNOBS if k not in STATE_KNOBS)


@pytest.fixture(scope="module")
def image_envs() -> Iterator[dict[str, gym.Env]]:
    envs: dict[str, gym.Env] = {}
    yield envs
    for e in envs.values():
        e.close()


@pytest.fixture(scope="module")
def image_env() -> Iterator[CartPoleEnv]:
    e = CartPoleEnv(obs_mode="image", image_size=84)
    yield e
    e.close()


def test_state_mode_is_unchanged_and_has_no_visual_knobs() -> None:
    env = CartPoleEnv()
    try:
        assert env._visual is None
        assert env._p.getNumBodies() == 1  # no floor, wall, distractor pool or textures
        assert env.observation_space.shape == (4,)
        assert not any(k.startswith(("image.", "camera.", "light.")) for k in env.knobs)
    finally:
        env.close()


def test_visual_knobs_exist_only_when_the_env_renders() -> None:
    for state, image in KNOB_SETS.values():
        assert set(state) < set(image) and image[: len(state)] == state
    rgb = CartPoleEnv(render_mode="rgb_array")
    try:
        assert tuple(rgb.knobs) == IMAGE_KNOBS
        assert rgb.observation_space.shape == (4,)  # still state observations
    finally:
        rgb.close()
    for obj in ("rail", "cart", "pole", "floor", "wall"):
        for suffix in ("color.r", "color.g", "color.b", "color.a", "texture"):
            assert f"{obj}.{suffix}" in VISUAL_KNOBS
    for name in ("light.azimuth", "light.shadow", "camera.fov", "camera.roll", "distractors.count",
                 "image.noise", "image.jpeg_quality"):  # fmt: skip
        assert name in VISUAL_KNOBS


def test_image_observation_space_and_values(image_env: CartPoleEnv) -> None:
    space = image_env.observation_space
    assert space == gym.spaces.Box(0, 255, (84, 84, 3), np.uint8)
    obs, info = image_env.reset(seed=0)
    assert space.contains(obs)
    assert obs.std() > 5  # a scene, not a blank frame
    assert info["state"].shape == (4,) and info["state"].dtype == np.float32
    obs2, *_ = image_env.step(np.zeros(1, np.float32))
    assert space.contains(obs2)


@pytest.mark.parametrize(("env_id", "name"), PIXEL_CASES)
def test_every_visual_knob_changes_the_pixels(
    image_envs: dict[str, gym.Env],
    env_id: str,
    name: str,
    clearly_different: Callable[[Knob], float],
    companions: dict[str, dict[str, float]],
) -> None:
    if env_id not in image_envs:
        domrand.register_all()
        image_envs[env_id] = gym.make(env_id, obs_mode="image", disable_env_checker=True).unwrapped
    env = image_envs[env_id]
    knob = env.knobs[name]
    value = clearly_different(knob)
    context = companions.get(name, {})
    base, _ = env.reset(seed=3, options={"domain": dict(context)})
    again, _ = env.reset(seed=3, options={"domain": dict(context)})
    np.testing.assert_array_equal(base, again)  # same seed: identical pixels
    changed, info = env.reset(seed=3, options={"domain": {**context, name: value}})
    assert info["domain"][name] == pytest.approx(value)
    diff = np.abs(changed.astype(int) - base.astype(int))
    assert diff.max() > 0, f"{name}={value} (nominal {knob.nominal}) left the image unchanged"


def test_same_seed_gives_identical_images_and_rollouts() -> None:
    def run() -> tuple[np.ndarray, np.ndarray]:
        env = domrand.make(ENV_ID, spec=VISUAL_SPEC, seed=11, obs_mode="image", image_size=40)
        frames, states = [], []
        for _ in range(2):
            obs, info = env.reset()
            frames.append(obs)
            states.append(info["state"])
            for a in ACTIONS:
                obs, _, term, trunc, _ = env.step(a)
                frames.append(obs)
                if term or trunc:
                    break
        env.close()
        return np.stack(frames), np.stack(states)

    (f1, s1), (f2, s2) = run(), run()
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(f1[0], f1[len(f1) // 2])


def test_rendering_never_changes_the_physics_stream() -> None:
    """State mode with action noise gives the same rollout with rgb_array rendering and in
    image mode: visual draws use their own stream, and render() draws nothing."""
    domain = {"action.noise": 0.3}

    def states(**kwargs: object) -> np.ndarray:
        env = CartPoleEnv(**kwargs)  # type: ignore[arg-type]
        obs, info = env.reset(seed=4, options={"domain": domain})
        out = [info.get("state", obs)]
        for a in ACTIONS:
            obs, *_ = env.step(a)
            if env.render_mode == "rgb_array":
                env.render()
            out.append(env._state())
        env.close()
        return np.asarray(out, dtype=np.float32)

    plain = states()
    np.testing.assert_array_equal(plain, states(render_mode="rgb_array"))
    np.testing.assert_array_equal(plain, states(obs_mode="image", image_size=32))


def test_render_uses_the_observation_camera_without_image_effects() -> None:
    env = CartPoleEnv(render_mode="rgb_array", obs_mode="image", image_size=48)
    try:
        env.reset(seed=0, options={"domain": {"image.noise": 30.0}})
        frame = env.render()
        assert frame.shape == (*CartPoleEnv.render_size, 3)
        np.testing.assert_array_equal(frame, env.render())  # no noise, no randomness
    finally:
        env.close()


def test_distractors_come_and_go_without_a_trace(image_env: CartPoleEnv) -> None:
    clean, _ = image_env.reset(seed=8)
    busy, _ = image_env.reset(seed=8, options={"domain": {"distractors.count": 5}})
    assert not np.array_equal(clean, busy)
    again, _ = image_env.reset(seed=8)
    np.testing.assert_array_equal(clean, again)  # parked distractors are never drawn


def test_set_knobs_mid_episode_changes_the_next_frame(image_env: CartPoleEnv) -> None:
    image_env.reset(seed=0, options={"domain": {"gravity": 0.0}})
    a, *_ = image_env.step(np.zeros(1, np.float32))
    b, *_ = image_env.step(np.zeros(1, np.float32))
    image_env.set_knobs({"wall.color.r": 1.0, "camera.roll": 15.0})
    c, *_ = image_env.step(np.zeros(1, np.float32))
    still = np.abs(a.astype(int) - b).mean()  # the pole moves a few pixels
    assert np.abs(b.astype(int) - c).mean() > still + 5


def test_physics_fault_returns_a_black_image() -> None:
    env = CartPoleEnv(obs_mode="image", image_size=32)
    try:
        env.reset(seed=0)
        env.max_state_norm = -1.0  # type: ignore[misc]  # any state is a fault
        obs, reward, terminated, _, info = env.step(np.zeros(1, np.float32))
        assert info["physics_fault"] and terminated and reward == 0.0
        assert obs.dtype == np.uint8 and obs.shape == (32, 32, 3) and not obs.any()
        del env.max_state_norm
        obs, _ = env.reset(seed=0)  # the scene, textures and distractors are rebuilt
        assert obs.std() > 5
    finally:
        env.close()


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="obs_mode"):
        CartPoleEnv(obs_mode="pixels")
    for bad in (4, 0, (84,), (84, 84, 3), 84.0, 5000, "84"):
        with pytest.raises(ValueError, match="image_size"):
            parse_image_size(bad)  # type: ignore[arg-type]
    assert parse_image_size(64) == (64, 64)
    assert parse_image_size((48, 96)) == (48, 96)


def test_non_square_images() -> None:
    env = CartPoleEnv(obs_mode="image", image_size=(32, 64))
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (32, 64, 3)
    finally:
        env.close()


# ---------------------------------------------------------------------- gymnasium's checker
MAKE_VARIANTS = {
    "CartPole no spec": (ENV_ID, {}),
    "CartPole visual spec": (ENV_ID, {"spec": VISUAL_SPEC}),
    "CartPole visual spec + reality": (ENV_ID, {"spec": VISUAL_SPEC, "reality": "laggy"}),
    **{
        f"{env_id.split('/')[1]} {name}": (env_id, kwargs)
        for env_id in IMAGE_ENVS[1:]
        for name, kwargs in (
            ("no spec", {}),
            ("default spec", {"spec": domrand.default_spec_path(env_id)}),
        )
    },
}


def _check(env: gym.Env, **kwargs: bool) -> None:
    expected = ("is different from the unwrapped version",)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, **kwargs)
    unexpected = [str(w.message) for w in caught if not any(t in str(w.message) for t in expected)]
    assert not unexpected


@pytest.mark.parametrize(("env_id", "kwargs"), MAKE_VARIANTS.values(), ids=MAKE_VARIANTS.keys())
def test_check_env_passes_in_image_mode(env_id: str, kwargs: dict) -> None:
    env = domrand.make(env_id, obs_mode="image", image_size=48, render_mode="rgb_array", **kwargs)
    try:
        _check(env)
        _check(env.unwrapped)
        assert env.render().shape == (*env.unwrapped.render_size, 3)
    finally:
        env.close()

"""``BulletEnv``: the reset/step template every domrand PyBullet environment shares.

The base class owns one ``BulletClient(DIRECT)``, the knob registry (with named phases), the
common step-phase knobs (action delay and noise, observation noise and bias) and physics-fault
detection. A task subclass loads its bodies, declares its own knobs with an apply function each,
and implements ``_reset_task``, ``_apply_action``, ``_state`` and ``_task_outcome``.

Image observations are generic: a subclass that describes its scene in ``_visual_scene()`` gets
``obs_mode="image"`` (observation = the randomized render, ``Box(0, 255, (H, W, 3), uint8)``) and
``render_mode="rgb_array"`` from the same camera, plus the visual knobs of
:class:`~domrand.envs.visual.VisualRandomizer`. Those knobs exist only when the env renders (image
mode or ``rgb_array``): a state-mode env without rendering has no knob that could not act, loads
no textures and has exactly the step path it always had.
"""

from __future__ import annotations

import contextlib
import functools
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np

from domrand.envs._bullet import BulletClient, pybullet, quiet_stdout
from domrand.errors import KnobError
from domrand.knobs import Knob, KnobSet, Phase

if TYPE_CHECKING:
    from domrand.envs.scene import VisualScene
    from domrand.envs.visual import VisualRandomizer

__all__ = ["OBS_MODES", "BulletEnv", "KnobBinding", "quiet_stdout"]

INF = float("inf")
OBS_MODES = ("state", "image")
#: spawn key of the visual stream (distractor looks, image effects), separate from ``np_random``
_VISUAL_STREAM = 0x766973


@dataclass(frozen=True)
class KnobBinding:
    """A declared knob and the function that applies a value of it to the simulation."""

    knob: Knob
    apply: Callable[[Any], None]


class BulletEnv(gym.Env[np.ndarray, np.ndarray], ABC):
    """Base class of domrand's PyBullet environments.

    Subclasses set ``control_period`` (seconds) and implement the abstract hooks. A knob value
    reaches the simulation only through ``set_knobs`` (or the ``domain`` reset option), which
    validates it against the declared range; unpinned knobs revert to their nominal values at
    every reset, so nothing compounds across episodes.

    Args:
        render_mode: ``None`` or ``"rgb_array"`` (``render()`` returns ``render_size`` frames).
        obs_mode: ``"state"`` (the task's own observation) or ``"image"`` (the randomized render;
            ``reset`` then also returns the physical state in ``info["state"]``, e.g. as a label).
        image_size: side or ``(height, width)`` of image observations, in pixels.

    Visual randomization draws (distractor looks, image noise) come from a stream derived from the
    reset seed but separate from ``np_random``: rendering never shifts the physics noise, so a
    seed gives the same dynamics in state and image mode, with or without ``render()`` calls.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 50}
    #: a state whose L1 norm exceeds this (or holds NaN/inf) is a physics fault
    max_state_norm: ClassVar[float] = 1e4
    #: bumped when a change alters what the env does under an unchanged id (reward, termination,
    #: dynamics), so cached benchmark results for the env are recomputed; 0 = as first released
    revision: ClassVar[int] = 0
    #: ``(height, width)`` of ``render()`` frames (image observations use ``image_size``)
    render_size: ClassVar[tuple[int, int]] = (120, 160)

    def __init__(
        self,
        render_mode: str | None = None,
        obs_mode: str = "state",
        image_size: int | Sequence[int] = 84,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode {render_mode!r} not supported; use one of "
                f"{self.metadata['render_modes']}"
            )
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode {obs_mode!r} not supported; use one of {list(OBS_MODES)}")
        from domrand.envs.scene import parse_image_size  # light: OpenCV loads only to render

        self.render_mode = render_mode
        self.obs_mode = obs_mode
        self.image_size = parse_image_size(image_size)
        #: True when this env renders (image observations or rgb_array); read by ``_load()``
        self.renders_images = obs_mode == "image" or render_mode == "rgb_array"
        self._visual: VisualRandomizer | None = None
        self._visual_rng: np.random.Generator | None = None
        self._state_space: gym.Space | None = None
        h, w = self.image_size
        self._image_space = gym.spaces.Box(0, 255, (h, w, 3), dtype=np.uint8)
        with quiet_stdout():
            self._p = BulletClient(connection_mode=pybullet.DIRECT)
        self._deterministic_pairs()
        # Hot-path calls bypass BulletClient.__getattr__ (which costs microseconds per call).
        self._client_id: int = self._p._client
        self._step_simulation = functools.partial(
            pybullet.stepSimulation, physicsClientId=self._client_id
        )
        self._values: dict[str, Any] = {}
        #: callables run before every physics substep (forces are cleared after each substep)
        self._substep_hooks: list[Callable[[], None]] = []
        #: callables run after the timestep changes (pybullet stores a velocity motor's force
        #: bound as force * timestep, so e.g. joint friction must be re-applied)
        self._timestep_hooks: list[Callable[[], None]] = []
        self._load()
        visual_bindings: list[KnobBinding] = []
        if self.renders_images:
            scene = self._visual_scene()
            if scene is None and obs_mode == "image":
                raise ValueError(f"{type(self).__name__} has no image observation mode")
            if scene is not None:
                from domrand.envs.visual import VisualRandomizer

                self._visual = VisualRandomizer(self._client_id, scene, self.image_size)
                visual_bindings = self._visual.bindings()
        if obs_mode == "image":
            # Bound once here, so the state-mode hot path carries no mode check.
            self._observation = self._image_observation  # type: ignore[method-assign]
        bindings = self._common_bindings() + self._task_bindings() + visual_bindings
        self._bindings: dict[str, KnobBinding] = {b.knob.name: b for b in bindings}
        self.knobs = KnobSet.of(b.knob for b in bindings)
        self._nominal = self.knobs.nominal()
        self._values = dict(self._nominal)
        self._actions: deque[np.ndarray] = deque()
        self._steps = 0
        self._needs_reload = False
        self._load_knobs = self.knobs.in_phase(Phase.LOAD)
        for name in self.knobs:
            self._bindings[name].apply(self._values[name])

    # ------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def _load(self) -> None:
        """Create the scene (bodies, constraints). Called at init and after a physics fault."""

    def _task_bindings(self) -> list[KnobBinding]:
        """Declare the task's knobs, each with its apply function."""
        return []

    @abstractmethod
    def _reset_task(self) -> None:
        """Put the scene in its initial state, drawing only from ``self.np_random``."""

    @abstractmethod
    def _apply_action(self, action: list[float]) -> None:
        """Apply the (delayed, noisy, clipped) action; called before every physics substep."""

    @abstractmethod
    def _state(self) -> Sequence[float]:
        """The physical state after a step: checked for faults and given to ``_task_outcome``."""

    @abstractmethod
    def _task_outcome(self, state: Sequence[float]) -> tuple[float, bool, dict[str, Any]]:
        """Return ``(reward, terminated, info)`` for the noiseless state."""

    def _deterministic_pairs(self) -> None:
        """Sort the broadphase's overlapping pairs before solving contacts.

        Unsorted, their order follows the history of bodies entering and leaving contact
        (teleports included), the solver visits contacts in that order, and a contact-rich scene
        reset to one state gives different motions depending on what the env did before: a
        pushed puck alternated between two paths on successive replays (measured).
        """
        self._p.setPhysicsEngineParameter(deterministicOverlappingPairs=1)

    def _set_state(self, state: np.ndarray) -> None:
        """Put the scene in ``state``, laid out as :meth:`_state` returns it (optional hook).

        Used by ``reset(options={"state": ...})``, e.g. so a simulation starts where a real
        trajectory started (SimOpt). Called *instead of* ``_reset_task``, so it must place the
        whole scene and draw nothing: the same state then gives the same simulation in any env,
        whatever it ran before. Envs that cannot restore a state from its observation keep this
        default.
        """
        raise ValueError(f"{type(self).__name__} cannot be reset to a given state")

    def _visual_scene(self) -> VisualScene | None:
        """Describe the scene just loaded for rendering (``None``: no image mode).

        Called after every ``_load()`` when the env renders; ``_load()`` can read
        ``self.renders_images`` to add purely visual bodies (floor, backdrop) only then.
        """
        return None

    def _distractor_keepout(self) -> Sequence[tuple[float, float, float]]:
        """``(x, y, radius)`` discs this episode's distractors must not stand in."""
        return ()

    # ------------------------------------------------------------------ spaces
    @property
    def observation_space(self) -> gym.Space:  # type: ignore[override]
        """The image space in image mode, else the space the subclass assigned."""
        if self.obs_mode == "image":
            return self._image_space
        if self._state_space is None:
            raise TypeError(f"{type(self).__name__} must set observation_space in __init__")
        return self._state_space

    @observation_space.setter
    def observation_space(self, space: gym.Space) -> None:
        self._state_space = space

    # ------------------------------------------------------------------ common knobs
    control_period: ClassVar[float] = 0.02
    nominal_timestep: ClassVar[float] = 0.004

    def _common_bindings(self) -> list[KnobBinding]:
        K = Knob
        return [
            KnobBinding(
                K(
                    "gravity",
                    9.81,
                    "m/s^2",
                    0.0,
                    100.0,
                    Phase.RESET,
                    doc="magnitude of gravity, pointing down -z",
                ),
                self._set_gravity,
            ),
            KnobBinding(
                K(
                    "sim.timestep",
                    self.nominal_timestep,
                    "s",
                    1e-4,
                    self.control_period,
                    Phase.RESET,
                    doc="physics substep (upper bound; whole substeps fill the control period)",
                ),
                self._set_timestep,
            ),
            KnobBinding(
                K(
                    "action.delay",
                    0,
                    "steps",
                    0,
                    20,
                    Phase.STEP,
                    integer=True,
                    doc="latency: the action applied is the one from N control steps ago",
                ),
                self._set_noop,
            ),
            KnobBinding(
                K(
                    "action.noise",
                    0.0,
                    "action units",
                    0.0,
                    10.0,
                    Phase.STEP,
                    doc="std of Gaussian noise added to each action before clipping",
                ),
                self._set_noop,
            ),
            KnobBinding(
                K(
                    "obs.noise",
                    0.0,
                    "obs units",
                    0.0,
                    10.0,
                    Phase.STEP,
                    doc="std of Gaussian noise added to every observation entry",
                ),
                self._set_noop,
            ),
            KnobBinding(
                K(
                    "obs.bias",
                    0.0,
                    "obs units",
                    -10.0,
                    10.0,
                    Phase.STEP,
                    doc="constant offset added to every observation entry",
                ),
                self._set_noop,
            ),
        ]

    def _set_noop(self, value: Any) -> None:
        """Step-phase knobs are read from ``self._values`` inside ``step``."""

    def _set_gravity(self, g: float) -> None:
        self._p.setGravity(0.0, 0.0, -float(g))

    def _set_timestep(self, dt: float) -> None:
        """Use the largest substep <= ``dt`` that divides the control period.

        The control period must not depend on the knob: rounding the substep count with ``dt``
        kept as given would silently stretch or shrink every control step by up to a third.
        """
        # The epsilon keeps float round-off in the quotient from adding a needless substep.
        self._substeps = max(1, math.ceil(self.control_period / float(dt) - 1e-9))
        self._p.setTimeStep(self.control_period / self._substeps)
        for hook in self._timestep_hooks:
            hook()

    # ------------------------------------------------------------------ knob access
    def load_value(self, name: str, nominal: float) -> Any:
        """For ``_load()``: the value of load-phase knob ``name`` to build the scene with."""
        return self._values.get(name, nominal)

    @property
    def domain(self) -> dict[str, Any]:
        """The knob values currently in force."""
        return dict(self._values)

    @property
    def nominal_domain(self) -> dict[str, Any]:
        return dict(self._nominal)

    def set_knobs(self, values: Mapping[str, Any]) -> None:
        """Validate and apply knob values now (used for per-step re-draws).

        Raises:
            KnobError: unknown knob (with did-you-mean) or value outside the valid range.
        """
        for name, value in values.items():
            knob = self.knobs[name]
            v = knob.coerce(value)
            if knob.phase is Phase.LOAD and v != self._values[name]:
                raise KnobError(f"knob {name!r} is applied at load; set it through reset()")
            self._values[name] = v
            self._bindings[name].apply(v)

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset to nominal knobs, then apply ``options["domain"]`` (a partial or full domain).

        ``options["state"]`` (optional) starts the episode from that physical state, laid out
        like the state-mode observation without noise or bias (envs implementing ``_set_state``).
        """
        super().reset(seed=seed)
        pins = dict((options or {}).get("domain") or {})
        target = dict(self._nominal)
        for name, value in pins.items():
            target[name] = self.knobs[name].coerce(value)
        # A load-phase knob (e.g. a URDF dimension) can only change by rebuilding the scene.
        if any(target[k.name] != self._values.get(k.name) for k in self._load_knobs):
            self._needs_reload = True
        if self._needs_reload:
            # _load() reads load-phase values through self.load_value(); everything else is
            # re-applied below because resetSimulation() forgot it.
            self._values = {k.name: target[k.name] for k in self._load_knobs}
            self._p.resetSimulation()
            self._deterministic_pairs()
            self._load()
            if self._visual is not None:
                scene = self._visual_scene()
                if scene is None:  # a subclass that renders must always describe its scene
                    raise TypeError(f"{type(self).__name__}._visual_scene() returned None")
                self._visual.reload(scene)  # textures and distractor pool went with the scene
            self._needs_reload = False
        for name, value in target.items():
            if self._values.get(name) != value:
                self._values[name] = value
                self._bindings[name].apply(value)
        self._steps = 0
        self._actions.clear()
        space = self.action_space
        self._a_lo = np.asarray(space.low, dtype=np.float64).ravel().tolist()  # type: ignore[attr-defined]
        self._a_hi = np.asarray(space.high, dtype=np.float64).ravel().tolist()  # type: ignore[attr-defined]
        self._act_dim = len(self._a_lo)
        self._zero_action = [min(max(0.0, lo), hi) for lo, hi in zip(self._a_lo, self._a_hi)]
        self._last_applied = self._zero_action
        start = (options or {}).get("state")
        if start is None:
            self._reset_task()
        else:
            # Not after a random _reset_task: the scene must not depend on draws that are then
            # overwritten. A contact-rich scene remembers them (broadphase pair order, contact
            # caches) and a replay from the same state would differ from env to env.
            self._set_state(np.asarray(start, dtype=np.float64).ravel())
        if self._visual is None:
            return self._observation(self._state()), {"domain": dict(self._values)}
        if seed is not None or self._visual_rng is None:
            root = self.np_random_seed
            root = root if root >= 0 else int(self.np_random.integers(2**63))
            seq = np.random.SeedSequence(root, spawn_key=(_VISUAL_STREAM,))
            self._visual_rng = np.random.default_rng(seq)
        self._visual.new_episode(self._visual_rng, self._distractor_keepout())
        state = self._state()
        info: dict[str, Any] = {"domain": dict(self._values)}
        if self.obs_mode == "image":
            info["state"] = np.asarray(state, dtype=np.float32)
        return self._observation(state), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        # The hot path works on Python floats: for the handful of numbers a robot action holds,
        # that is several times faster than numpy's per-call overhead.
        a = np.asarray(action, dtype=np.float64).ravel().tolist()
        if len(a) != self._act_dim:
            raise ValueError(f"action has {len(a)} entries, expected {self._act_dim}")
        v = self._values
        if v["action.noise"] > 0.0:
            noise = self.np_random.normal(0.0, v["action.noise"], self._act_dim).tolist()
            a = [x + e for x, e in zip(a, noise)]
        # Clip to the action bounds; a NaN action becomes 0 instead of poisoning the simulator.
        a = [min(max(x, lo), hi) if x == x else 0.0 for x, lo, hi in zip(a, self._a_lo, self._a_hi)]
        # Latency: keep the last delay+1 actions; the oldest is the one applied now. At the start
        # of an episode the robot has received nothing yet, so it applies the zero action.
        delay = v["action.delay"]
        queue = self._actions
        queue.append(a)
        while len(queue) > delay + 1:
            queue.popleft()
        # While the queue fills (episode start, or the delay just grew) the last action holds.
        applied = queue[0] if len(queue) == delay + 1 else self._last_applied
        self._last_applied = applied
        apply_action, step_sim = self._apply_action, self._step_simulation
        hooks = self._substep_hooks
        for _ in range(self._substeps):
            apply_action(applied)
            for hook in hooks:  # substep-phase effects, e.g. external pushes (last one substep)
                hook()
            step_sim()
        self._steps += 1
        state = self._state()
        # One pass catches NaN, inf and runaway states: sum(|x|) is NaN/inf if any entry is.
        if not sum(map(abs, state)) < self.max_state_norm:
            # Runaway physics: end the episode with a flag and rebuild the scene at next reset.
            self._needs_reload = True
            space = self.observation_space
            obs = np.zeros(space.shape, dtype=space.dtype)  # type: ignore[arg-type]
            return obs, 0.0, True, False, {"physics_fault": True}
        reward, terminated, info = self._task_outcome(state)
        return self._observation(state), float(reward), bool(terminated), False, info

    def _observation(self, state: Sequence[float]) -> np.ndarray:
        """The observation for ``state``, with ``obs.noise`` and ``obs.bias`` applied."""
        v = self._values
        noise, bias = v["obs.noise"], v["obs.bias"]
        if noise > 0.0:
            obs = np.asarray(state, dtype=np.float64)
            obs = obs + self.np_random.normal(bias, noise, obs.shape)
            return obs.astype(np.float32)
        if bias != 0.0:
            return (np.asarray(state, dtype=np.float64) + bias).astype(np.float32)
        return np.asarray(state, dtype=np.float32)

    def _image_observation(self, state: Sequence[float]) -> np.ndarray:
        """Image mode: the randomized render; ``obs.noise``/``obs.bias`` act in pixel units."""
        if self._visual is None or self._visual_rng is None:
            raise RuntimeError("image observation requested before the visual scene was built")
        rng = self._visual_rng
        img = self._visual.render(rng)
        v = self._values
        noise, bias = v.get("obs.noise", 0.0), v.get("obs.bias", 0.0)
        if noise > 0.0 or bias != 0.0:
            x = img.astype(np.float32) + np.float32(bias)
            if noise > 0.0:
                x += np.float32(noise) * rng.standard_normal(x.shape, dtype=np.float32)
            img = np.clip(np.rint(x), 0.0, 255.0).astype(np.uint8)
        return img

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """``rgb_array``: the scene from the observation camera, ``render_size``, no image effects.

        Rendering for people never draws random numbers, so it cannot change a rollout.
        """
        if self.render_mode != "rgb_array" or self._visual is None:
            return None
        return self._visual.render(size=self.render_size, post=False)

    def close(self) -> None:
        p = getattr(self, "_p", None)
        if p is not None:
            with contextlib.suppress(Exception):
                p.disconnect()
            self._p = None  # type: ignore[assignment]
        super().close()

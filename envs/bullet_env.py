"""``BulletEnv``: the reset/step template every domrand PyBullet environment shares.

The base class owns one ``BulletClient(DIRECT)``, the knob registry (with named phases), the
common step-phase knobs (action delay and noise, observation noise and bias) and physics-fault
detection. A task subclass loads its bodies, declares its own knobs with an apply function each,
and implements ``_reset_task``, ``_apply_action``, ``_observe`` and ``_task_outcome``.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pybullet
from pybullet_utils.bullet_client import BulletClient

from domrand.errors import KnobError
from domrand.knobs import Knob, KnobSet, Phase

__all__ = ["BulletEnv", "KnobBinding", "quiet_stdout"]

INF = float("inf")


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence C-level stdout (pybullet prints on connect) without touching Python's streams."""
    try:
        fd = os.dup(1)
    except OSError:  # no usable stdout
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            try:
                yield
            finally:
                os.dup2(fd, 1)
    finally:
        os.close(fd)


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
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 50}
    #: a joint/base speed above this (m/s or rad/s) counts as a physics fault
    max_speed: ClassVar[float] = 1e3

    def __init__(self, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode {render_mode!r} not supported; use one of "
                f"{self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        with quiet_stdout():
            self._p = BulletClient(connection_mode=pybullet.DIRECT)
        self._load()
        bindings = self._common_bindings() + self._task_bindings()
        self._bindings: dict[str, KnobBinding] = {b.knob.name: b for b in bindings}
        self.knobs = KnobSet.of(b.knob for b in bindings)
        self._nominal = self.knobs.nominal()
        self._values: dict[str, Any] = dict(self._nominal)
        self._actions: deque[np.ndarray] = deque()
        self._steps = 0
        self._needs_reload = False
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
    def _apply_action(self, action: np.ndarray) -> None:
        """Apply the (delayed, noisy, clipped) action before each physics substep."""

    @abstractmethod
    def _observe(self) -> np.ndarray:
        """The noiseless observation (float64 is fine; the base casts)."""

    @abstractmethod
    def _task_outcome(self, obs: np.ndarray) -> tuple[float, bool, dict[str, Any]]:
        """Return ``(reward, terminated, info)`` for the noiseless observation."""

    def _runaway(self, raw: np.ndarray) -> bool:
        """True when the state has run away (default: any |entry| of the raw observation is
        above ``max_speed``); override when the observation is not the physical state."""
        return float(np.abs(raw).max(initial=0.0)) > self.max_speed

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
                    doc="physics substep; substeps = round(control / step)",
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
        self._substeps = max(1, round(self.control_period / float(dt)))
        self._p.setTimeStep(float(dt))

    # ------------------------------------------------------------------ knob access
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
        """Reset to nominal knobs, then apply ``options["domain"]`` (a partial or full domain)."""
        super().reset(seed=seed)
        pins = dict((options or {}).get("domain") or {})
        target = dict(self._nominal)
        for name, value in pins.items():
            target[name] = self.knobs[name].coerce(value)
        if self._needs_reload:
            self._p.resetSimulation()
            self._load()
            self._values = {}
            self._needs_reload = False
        for name, value in target.items():
            if self._values.get(name) != value:
                self._values[name] = value
                self._bindings[name].apply(value)
        self._steps = 0
        self._actions.clear()
        self._reset_task()
        obs = self._noisy(self._observe())
        return obs, {"domain": dict(self._values)}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64).reshape(self.action_space.shape)  # type: ignore[arg-type]
        if not np.all(np.isfinite(a)):
            a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
        v = self._values
        if v["action.noise"] > 0.0:
            a = a + self.np_random.normal(0.0, v["action.noise"], a.shape)
        space = self.action_space
        a = np.clip(a, space.low, space.high)  # type: ignore[attr-defined]
        # Latency: keep the last delay+1 actions; the oldest is the one applied now. At the start
        # of an episode the queue is padded with zero actions (the robot has received nothing).
        delay = v["action.delay"]
        self._actions.append(a)
        while len(self._actions) > delay + 1:
            self._actions.popleft()
        applied = self._actions[0] if len(self._actions) == delay + 1 else np.zeros_like(a)
        for _ in range(self._substeps):
            self._apply_action(applied)
            self._p.stepSimulation()
        self._steps += 1
        raw = self._observe()
        if not np.all(np.isfinite(raw)) or self._runaway(raw):
            # Runaway physics: end the episode with a flag and rebuild the scene at next reset.
            self._needs_reload = True
            obs = np.zeros(self.observation_space.shape, dtype=np.float32)  # type: ignore[arg-type]
            return obs, 0.0, True, False, {"physics_fault": True}
        reward, terminated, info = self._task_outcome(raw)
        return self._noisy(raw), float(reward), bool(terminated), False, info

    def _noisy(self, obs: np.ndarray) -> np.ndarray:
        v = self._values
        if v["obs.noise"] > 0.0:
            obs = obs + self.np_random.normal(0.0, v["obs.noise"], obs.shape)
        if v["obs.bias"] != 0.0:
            obs = obs + v["obs.bias"]
        return obs.astype(np.float32)

    def close(self) -> None:
        p = getattr(self, "_p", None)
        if p is not None:
            with contextlib.suppress(Exception):
                p.disconnect()
            self._p = None  # type: ignore[assignment]
        super().close()

"""Reusable dynamics knobs: factories any ``BulletEnv`` can expose per body, link or joint.

An env builds one :class:`Dynamics` in ``_task_bindings`` (after ``_load``) and asks it for
``KnobBinding`` s. Every factory reads the nominal value from pybullet (``getDynamicsInfo`` /
``getJointInfo``) when it is called and applies values with pybullet calls computed from that
nominal, so nothing compounds across resets. Knobs acting on the same link compose: a link's mass
is ``<mass knob> * <every mass-scale knob>`` and its inertia follows the mass ratio times every
inertia-scale knob, whatever order the knobs are applied in.

Conventions:
    * Body ids are stored when a factory is called. ``_load`` must create bodies in the same order
      every time (pybullet then reuses the ids after ``resetSimulation``).
    * A knob over several joints either sets one absolute value for all of them (their nominal
      values must be equal) or, with ``scale=True``, multiplies each joint's own nominal value.

pybullet facts the factories rely on (and enforce where they can):
    * Friction: one Coulomb coefficient per link serves for sticking and for sliding, so static
      friction equals dynamic friction by construction (never below it). A contact uses
      ``mu_a * mu_b`` (capped at 10); rolling and spinning friction combine as
      ``r_a * mu_b + r_b * mu_a``, so they act only when the other body has lateral friction.
    * Restitution of a contact is ``e_a * e_b``: both bodies need a nonzero value.
    * Joint friction is a velocity motor with target 0 whose force bound is the friction: it
      holds the joint up to that torque (static) and resists sliding with it (dynamic), so both
      are equal. pybullet stores the bound as ``force * timestep``; the factory re-applies it
      whenever ``sim.timestep`` changes. Use it on torque-controlled or passive joints only (a
      position or velocity motor on the same joint would replace it).
    * Joint damping (``jointDamping``) is integrated explicitly: ``damping * dt / inertia`` must
      stay below ~2 or the joint diverges (the env's physics-fault check catches it).
    * Joint limits must satisfy ``lower < upper``; the limit knobs are a width scale (> 0) and an
      offset, so every sampled pair is ordered.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from domrand.envs._bullet import pybullet
from domrand.envs.bullet_env import KnobBinding
from domrand.knobs import Knob, Phase

if TYPE_CHECKING:
    from domrand.envs.bullet_env import BulletEnv
    from domrand.envs.pd import JointPD

__all__ = ["Dynamics"]

#: getDynamicsInfo index of each contact property (and changeDynamics' keyword for it)
_CONTACT = {"lateralFriction": 1, "restitution": 5, "rollingFriction": 6, "spinningFriction": 7}


@dataclass
class _Link:
    """The nominal and current inertial/contact values of one link; knobs write factors here."""

    body: int
    link: int
    mass0: float
    inertia0: tuple[float, float, float]
    value: dict[str, float]
    factors: dict[str, dict[str, float]] = field(default_factory=dict)

    def effective(self, prop: str) -> float:
        v = self.value[prop]
        for f in self.factors.get(prop, {}).values():
            v *= f
        return v

    def inertial(self) -> dict[str, Any]:
        """``changeDynamics`` arguments for the current mass, with inertia scaled consistently."""
        mass = self.effective("mass")
        ratio = mass / self.mass0
        for f in self.factors.get("inertia", {}).values():
            ratio *= f
        return {"mass": mass, "localInertiaDiagonal": [ratio * i for i in self.inertia0]}


class Dynamics:
    """Knob factories bound to one env (its physics client, random stream and hooks).

    Create one per env, in ``_task_bindings``: knobs on the same link compose through state this
    object holds.
    """

    def __init__(self, env: BulletEnv) -> None:
        self._env = env
        self._cid = env._client_id
        self._links: dict[tuple[int, int], _Link] = {}

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _binding(knob: Knob, apply: Callable[[Any], None]) -> KnobBinding:
        return KnobBinding(knob, apply)

    def _link(self, body: int, link: int) -> _Link:
        key = (body, link)
        if key not in self._links:
            info = pybullet.getDynamicsInfo(body, link, physicsClientId=self._cid)
            value = {"mass": info[0]} | {k: info[i] for k, i in _CONTACT.items()}
            self._links[key] = _Link(body, link, info[0], tuple(info[2]), value)
        return self._links[key]

    def _change(self, body: int, link: int, **kwargs: Any) -> None:
        pybullet.changeDynamics(body, link, physicsClientId=self._cid, **kwargs)

    def _joint_info(self, body: int, joints: Sequence[int]) -> list[tuple[Any, ...]]:
        if not joints:
            raise ValueError("give at least one joint")
        return [pybullet.getJointInfo(body, j, physicsClientId=self._cid) for j in joints]

    @staticmethod
    def _group(
        name: str,
        nominals: Sequence[float],
        unit: str,
        high: float,
        scale: bool,
        doc: str,
        set_values: Callable[[list[float]], None],
        low_open: bool = False,
    ) -> tuple[Knob, Callable[[Any], None]]:
        """One knob over several joints: an absolute value for all, or a scale of each nominal."""
        if scale:
            if not any(nominals):
                raise ValueError(f"knob {name!r}: every nominal is 0, so a scale would do nothing")
            knob = Knob(name, 1.0, "x nominal", 0.0, high, low_open=True, doc=doc)
            return knob, lambda s: set_values([float(s) * n for n in nominals])
        if len(set(nominals)) > 1:
            raise ValueError(
                f"knob {name!r}: joints have different nominal values {list(nominals)}; "
                "use scale=True or one knob per joint"
            )
        knob = Knob(name, nominals[0], unit, 0.0, high, low_open=low_open, doc=doc)
        return knob, lambda v: set_values([float(v)] * len(nominals))

    # ------------------------------------------------------------------ inertial
    def mass(
        self, body: int, link: int, name: str, *, high: float | None = None, doc: str = ""
    ) -> KnobBinding:
        """Mass of one link in kg; its inertia tensor scales by the same ratio."""
        rec = self._link(body, link)
        if rec.mass0 <= 0:
            raise ValueError(f"knob {name!r}: link {link} has mass 0 (a static body)")

        def apply(m: float) -> None:
            rec.value["mass"] = float(m)
            self._change(body, link, **rec.inertial())

        hi = 100.0 * rec.mass0 if high is None else high
        knob = Knob(
            name, rec.mass0, "kg", 0.0, hi, low_open=True, doc=doc or f"mass of link {link}"
        )
        return self._binding(knob, apply)

    def mass_scale(
        self, body: int, links: Sequence[int], name: str, *, high: float = 10.0, doc: str = ""
    ) -> KnobBinding:
        """A multiplier on the mass (and inertia) of several links; composes with ``mass``."""
        return self._factor(body, links, name, "mass", high, doc or "multiplier on link masses")

    def inertia_scale(
        self, body: int, links: Sequence[int], name: str, *, high: float = 10.0, doc: str = ""
    ) -> KnobBinding:
        """A multiplier on the inertia tensor of links, at constant mass."""
        return self._factor(body, links, name, "inertia", high, doc or "multiplier on inertia")

    def _factor(
        self, body: int, links: Sequence[int], name: str, prop: str, high: float, doc: str
    ) -> KnobBinding:
        recs = [self._link(body, link) for link in links]
        if any(r.mass0 <= 0 for r in recs):
            raise ValueError(f"knob {name!r}: a link has mass 0 (a static body)")

        def apply(s: float) -> None:
            for r in recs:
                r.factors.setdefault(prop, {})[name] = float(s)
                self._change(body, r.link, **r.inertial())

        knob = Knob(name, 1.0, "x nominal", 0.0, high, low_open=True, doc=doc)
        return self._binding(knob, apply)

    # ------------------------------------------------------------------ contact
    def lateral_friction(self, body: int, link: int, name: str, **kw: Any) -> KnobBinding:
        """Coulomb friction coefficient of a link (sticking and sliding alike)."""
        return self._contact(body, link, name, "lateralFriction", "coefficient of friction", kw)

    def rolling_friction(self, body: int, link: int, name: str, **kw: Any) -> KnobBinding:
        """Rolling friction (resists rotation about axes in the contact plane)."""
        return self._contact(body, link, name, "rollingFriction", "rolling friction", kw)

    def spinning_friction(self, body: int, link: int, name: str, **kw: Any) -> KnobBinding:
        """Spinning friction (resists rotation about the contact normal)."""
        return self._contact(body, link, name, "spinningFriction", "spinning friction", kw)

    def restitution(self, body: int, link: int, name: str, **kw: Any) -> KnobBinding:
        """Coefficient of restitution (a contact bounces with the product of both bodies')."""
        kw.setdefault("high", 1.0)
        return self._contact(body, link, name, "restitution", "restitution", kw)

    def _contact(
        self, body: int, link: int, name: str, prop: str, what: str, kw: dict[str, Any]
    ) -> KnobBinding:
        rec = self._link(body, link)

        def apply(v: float) -> None:
            rec.value[prop] = float(v)
            self._change(body, link, **{prop: rec.effective(prop)})

        doc = kw.get("doc") or f"{what} of link {link}"
        knob = Knob(name, rec.value[prop], "1", 0.0, kw.get("high", 10.0), doc=doc)
        return self._binding(knob, apply)

    def linear_damping(
        self, body: int, name: str, *, nominal: float = 0.04, high: float = 5.0, doc: str = ""
    ) -> KnobBinding:
        """Velocity damping ``d`` of a whole body (no getter: ``nominal`` is applied at load).

        pybullet's multibody damping is quadratic, ``F = -m v d (1 + |v|)``, and explicit: keep
        ``d * dt * (1 + |v|)`` well below 2, hence the default bound.
        """
        return self._body_damping(body, name, "linearDamping", nominal, high, doc)

    def angular_damping(
        self, body: int, name: str, *, nominal: float = 0.04, high: float = 5.0, doc: str = ""
    ) -> KnobBinding:
        """Spin damping of a whole body, ``tau = -I w d (1 + |w|)``, like ``linear_damping``."""
        return self._body_damping(body, name, "angularDamping", nominal, high, doc)

    def _body_damping(
        self, body: int, name: str, key: str, nominal: float, high: float, doc: str
    ) -> KnobBinding:
        knob = Knob(name, nominal, "1/s", 0.0, high, doc=doc or f"{key} of body {body}")
        return self._binding(knob, lambda v: self._change(body, -1, **{key: float(v)}))

    # ------------------------------------------------------------------ joints
    def joint_damping(
        self,
        body: int,
        joints: Sequence[int],
        name: str,
        *,
        scale: bool = False,
        high: float = 10.0,
        unit: str = "N m s/rad",
        doc: str = "",
    ) -> KnobBinding:
        """Viscous damping of joints (N m s/rad or N s/m), nominal from the URDF ``damping``."""
        nominals = [i[6] for i in self._joint_info(body, joints)]

        def set_values(values: list[float]) -> None:
            for j, v in zip(joints, values):
                self._change(body, j, jointDamping=v)

        knob, apply = self._group(
            name, nominals, unit, high, scale, doc or "viscous joint damping", set_values
        )
        return self._binding(knob, apply)

    def joint_friction(
        self,
        body: int,
        joints: Sequence[int],
        name: str,
        *,
        scale: bool = False,
        high: float = 100.0,
        unit: str = "N m",
        doc: str = "",
    ) -> KnobBinding:
        """Coulomb joint friction (N m or N) as a velocity motor with target 0 and force bound.

        Nominal from the URDF ``friction`` (which pybullet itself ignores). Re-applied when the
        timestep changes, because pybullet stores the bound as ``force * timestep``.
        """
        nominals = [i[7] for i in self._joint_info(body, joints)]
        current = list(nominals)
        motors = functools.partial(pybullet.setJointMotorControlArray, physicsClientId=self._cid)
        js = list(joints)

        def set_values(values: list[float]) -> None:
            current[:] = values
            motors(
                body, js, pybullet.VELOCITY_CONTROL, targetVelocities=[0.0] * len(js), forces=values
            )

        knob, apply = self._group(
            name, nominals, unit, high, scale, doc or "Coulomb joint friction", set_values
        )
        self._env._timestep_hooks.append(lambda: set_values(current))
        return self._binding(knob, apply)

    def joint_limits(
        self, body: int, joints: Sequence[int], prefix: str, *, unit: str = "rad"
    ) -> list[KnobBinding]:
        """``<prefix>.limit_scale`` (width about the nominal midpoint) and ``.limit_offset``.

        Limits are ``mid + offset -/+ scale * half_width`` per joint: with ``scale > 0`` every
        pair stays ordered, which two independently sampled lower/upper knobs could not promise.
        """
        info = self._joint_info(body, joints)
        for j, i in zip(joints, info):
            if not i[8] < i[9]:
                raise ValueError(f"joint {j} has no limits (lower {i[8]} >= upper {i[9]})")
        mids = [(i[8] + i[9]) / 2 for i in info]
        halves = [(i[9] - i[8]) / 2 for i in info]
        state = {"scale": 1.0, "offset": 0.0}

        def push() -> None:
            s, o = state["scale"], state["offset"]
            for j, m, h in zip(joints, mids, halves):
                self._change(body, j, jointLowerLimit=m + o - s * h, jointUpperLimit=m + o + s * h)

        def setter(key: str) -> Callable[[Any], None]:
            def apply(v: float) -> None:
                state[key] = float(v)
                push()

            return apply

        h = min(halves)
        scale = Knob(
            f"{prefix}.limit_scale",
            1.0,
            "x nominal",
            0.0,
            2.0,
            low_open=True,
            doc="width of the joint ranges about their nominal midpoints",
        )
        offset = Knob(f"{prefix}.limit_offset", 0.0, unit, -h, h, doc="shift of every joint range")
        return [self._binding(scale, setter("scale")), self._binding(offset, setter("offset"))]

    def pd_gains(
        self,
        pd: JointPD,
        prefix: str,
        *,
        scale: bool = False,
        units: tuple[str, str, str] = ("N m/rad", "N m s/rad", "N m"),
    ) -> list[KnobBinding]:
        """``<prefix>.kp``, ``.kd`` and ``.max_force`` of a :class:`JointPD` (read every substep).

        With ``scale=True`` the gain knobs multiply each joint's nominal gain; ``max_force`` is
        absolute when the joints share a nominal bound and a multiplier otherwise.
        """

        def setter(attr: str) -> Callable[[list[float]], None]:
            return lambda values: setattr(pd, attr, values)

        out = []
        for key, nominals, unit, doc in (
            ("kp", pd.kp0, units[0], "PD stiffness"),
            ("kd", pd.kd0, units[1], "PD damping"),
        ):
            high = 10.0 if scale else 100.0 * max(nominals)
            knob, apply = self._group(
                f"{prefix}.{key}", nominals, unit, high, scale, doc, setter(key), low_open=True
            )
            out.append(self._binding(knob, apply))
        same = len(set(pd.max_force0)) == 1
        high = 10.0 * pd.max_force0[0] if same else 10.0
        knob, apply = self._group(
            f"{prefix}.max_force",
            pd.max_force0,
            units[2],
            high,
            not same,
            "PD torque/force bound",
            setter("max_force"),
            low_open=True,
        )
        out.append(self._binding(knob, apply))
        return out

    # ------------------------------------------------------------------ substep
    def external_push(
        self, body: int, link: int, prefix: str, *, planar: bool = False, high: float = 1000.0
    ) -> list[KnobBinding]:
        """Random pushes: ``<prefix>.force`` (N) at ``<prefix>.rate`` pushes per second.

        Each substep a push starts with probability ``rate * dt``; it lasts that one substep
        (pybullet clears external forces after every step) and acts at the link's centre of mass
        in a direction drawn from ``env.np_random`` (horizontal when ``planar``). The hook is
        only installed while both knobs are positive, so the nominal env pays nothing.
        """
        env, cid = self._env, self._cid
        state = {"force": 0.0, "rate": 1.0}

        def hook() -> None:
            rng = env.np_random
            if rng.random() >= state["rate"] * env.control_period / env._substeps:
                return
            if planar:
                a = rng.uniform(0.0, 2.0 * math.pi)
                d = (math.cos(a), math.sin(a), 0.0)
            else:
                v = rng.normal(size=3)
                d = tuple((v / max(float((v @ v) ** 0.5), 1e-12)).tolist())
            if link < 0:
                pos = pybullet.getBasePositionAndOrientation(body, physicsClientId=cid)[0]
            else:
                pos = pybullet.getLinkState(
                    body, link, computeForwardKinematics=True, physicsClientId=cid
                )[0]
            f = state["force"]
            pybullet.applyExternalForce(
                body,
                link,
                (f * d[0], f * d[1], f * d[2]),
                pos,
                pybullet.WORLD_FRAME,
                physicsClientId=cid,
            )

        def setter(key: str) -> Callable[[Any], None]:
            def apply(v: float) -> None:
                state[key] = float(v)
                active = state["force"] > 0.0 and state["rate"] > 0.0
                if active and hook not in env._substep_hooks:
                    env._substep_hooks.append(hook)
                elif not active and hook in env._substep_hooks:
                    env._substep_hooks.remove(hook)

            return apply

        what = "horizontal " if planar else ""
        force = Knob(
            f"{prefix}.force",
            0.0,
            "N",
            0.0,
            high,
            Phase.SUBSTEP,
            doc=f"magnitude of random {what}pushes lasting one substep (0 = none)",
        )
        rate = Knob(
            f"{prefix}.rate",
            1.0,
            "1/s",
            0.0,
            1000.0,
            Phase.SUBSTEP,
            doc="expected number of pushes per second (when the force is > 0)",
        )
        return [self._binding(force, setter("force")), self._binding(rate, setter("rate"))]

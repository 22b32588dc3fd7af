"""``JointPD``: a joint-space PD controller in torque mode with physical gains.

pybullet's own ``POSITION_CONTROL`` is a velocity constraint: it reaches any target at any mass
until its force bound saturates, so link masses and joint damping barely change what a policy
sees. A torque-mode PD with gains in N m/rad does respond to them, but evaluated explicitly at a
few-millisecond substep it diverges on light or coaxial joints (``kd * dt / inertia`` above ~2).
This one is the stable PD of Tan, Liu & Turk (2011): the torque is what an implicit-Euler step of
the PD law applies over the substep,

    tau = M (M + dt B)^-1 (Kp (target - q - dt qd) - Kd qd),   B = dt Kp + Kd (diagonal)

with ``M`` the joint-space mass matrix of the controlled joints (uncontrolled ones rigid),
refreshed from ``calculateMassMatrix`` once per control step; gravity and Coriolis forces stay
explicit. For heavy joints ``M (M + dt B)^-1`` is the identity and this is the textbook PD; for
light ones it stays stable at any gain, like the kilohertz servo loop of a real arm. Each torque
is then clipped to ``max_force``.

``M`` is the *nominal* robot's, as a real controller's model would be: pybullet builds the model
behind ``calculateMassMatrix`` on the first call for a body and never updates it for later
``changeDynamics``, so :meth:`JointPD.reload` makes that first call right after loading, before
any mass knob applies. (Left to chance, the model would hold whatever masses the first episode
had, and the same domain would behave differently depending on the env's history.) Randomized
masses far below nominal therefore shrink the stability margin: the controller over-estimates
the inertia it drives.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from domrand.envs._bullet import pybullet

__all__ = ["JointPD"]


class JointPD:
    """Stable joint-space PD in torque mode for a fixed-base body's 1-DOF joints.

    Call :meth:`set_targets` once per control step and :meth:`apply` before every substep.
    ``kp``, ``kd`` and ``max_force`` are plain lists (the gain knobs replace them).

    Args:
        client_id: the env's physics client.
        body: the robot (loaded with ``useFixedBase=True``).
        joints: the controlled joints; their default velocity motors are switched off.
        kp, kd: nominal per-joint gains (N m/rad and N m s/rad, or N/m and N s/m).
        max_force: nominal per-joint torque/force bounds; default: the URDF ``effort`` limits.
    """

    def __init__(
        self,
        client_id: int,
        body: int,
        joints: Sequence[int],
        kp: Sequence[float],
        kd: Sequence[float],
        max_force: Sequence[float] | None = None,
    ) -> None:
        n = len(joints)
        if not len(kp) == len(kd) == n:
            raise ValueError(f"kp, kd need {n} entries (one per joint)")
        get_info = functools.partial(pybullet.getJointInfo, physicsClientId=client_id)
        movable = [
            j
            for j in range(pybullet.getNumJoints(body, physicsClientId=client_id))
            if get_info(body, j)[2] != pybullet.JOINT_FIXED
        ]
        if any(j not in movable for j in joints):
            raise ValueError(f"joints {list(joints)} include a fixed joint")
        self.body, self.joints = body, list(joints)
        self._movable = movable
        self._dofs = np.ix_(*[[movable.index(j) for j in joints]] * 2)
        self.kp0 = [float(k) for k in kp]
        self.kd0 = [float(k) for k in kd]
        self.max_force0 = (
            [float(f) for f in max_force] if max_force else [get_info(body, j)[10] for j in joints]
        )
        if min(self.max_force0) <= 0:
            raise ValueError(f"max_force must be > 0 for every joint, got {self.max_force0}")
        self.kp, self.kd, self.max_force = list(self.kp0), list(self.kd0), list(self.max_force0)
        self.targets = [0.0] * n
        self._dt = 0.0
        self._mix = np.eye(n)
        cid = client_id
        self._states = functools.partial(pybullet.getJointStates, physicsClientId=cid)
        self._motors = functools.partial(pybullet.setJointMotorControlArray, physicsClientId=cid)
        self._mass_matrix = functools.partial(pybullet.calculateMassMatrix, physicsClientId=cid)
        self.reload()

    def reload(self) -> None:
        """After (re)loading the body, before knobs apply: motors off, nominal model cached.

        Switches off pybullet's default velocity motors and makes the first ``calculateMassMatrix``
        call, which fixes the controller's model to the masses the body has now (see the module
        docstring). An env calls it from ``_load`` once the controller exists.
        """
        self._motors(
            self.body, self.joints, pybullet.VELOCITY_CONTROL, forces=[0.0] * len(self.joints)
        )
        self.mass_matrix()

    def mass_matrix(self) -> np.ndarray:
        """The nominal model's mass matrix of the controlled joints at the current configuration."""
        q = [s[0] for s in self._states(self.body, self._movable)]
        m = np.asarray(self._mass_matrix(self.body, q))
        m = m[-len(q) :, -len(q) :]  # drop floating-base rows if any
        return m[self._dofs]

    def set_targets(self, targets: Sequence[float], dt: float) -> None:
        """New setpoints for the coming control step, whose substeps last ``dt`` seconds."""
        self.targets = list(targets)
        self._dt = dt
        m = self.mass_matrix()
        b = dt * np.asarray(self.kp) + np.asarray(self.kd)
        self._mix = np.linalg.solve((m + dt * np.diag(b)).T, m.T).T  # M (M + dt B)^-1

    def apply(self) -> None:
        """Compute and apply the PD torques for the current state (once per substep)."""
        h = self._dt
        u = [
            kp * (t - s[0] - h * s[1]) - kd * s[1]
            for s, t, kp, kd in zip(
                self._states(self.body, self.joints), self.targets, self.kp, self.kd
            )
        ]
        taus = (self._mix @ u).tolist()  # one small matvec: cheaper in numpy than in Python
        forces = [f if x > f else (-f if x < -f else x) for x, f in zip(taus, self.max_force)]
        self._motors(self.body, self.joints, pybullet.TORQUE_CONTROL, forces=forces)

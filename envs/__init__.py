"""domrand's PyBullet environments (installed as ``domrand.envs``)."""

from domrand.envs.bullet_env import BulletEnv, KnobBinding
from domrand.envs.cartpole import CartPoleEnv
from domrand.envs.dynamics import Dynamics
from domrand.envs.kuka_reach import KukaReachEnv
from domrand.envs.pd import JointPD
from domrand.envs.pusher import PusherEnv, PusherPlaceEnv

__all__ = [
    "BulletEnv",
    "CartPoleEnv",
    "Dynamics",
    "JointPD",
    "KnobBinding",
    "KukaReachEnv",
    "PusherEnv",
    "PusherPlaceEnv",
]

"""domrand's PyBullet environments (installed as ``domrand.envs``)."""

from domrand.envs.bullet_env import BulletEnv, KnobBinding
from domrand.envs.cartpole import CartPoleEnv

__all__ = ["BulletEnv", "CartPoleEnv", "KnobBinding"]

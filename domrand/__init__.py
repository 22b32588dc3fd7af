"""domrand: sim-to-real domain randomization for PyBullet, behind the gymnasium API.

Quick start::

    import numpy as np, domrand
    spec = domrand.load_spec("assets/specs/cartpole.yaml")
    domain = spec.sample(np.random.default_rng(0))          # {"pole.mass": 0.13, ...}
    env = domrand.make("domrand/CartPole-v0", spec=spec, seed=0)
    obs, info = env.reset()                                   # info["domain"]: what was applied
"""

from domrand.errors import (
    CheckpointError,
    DomrandError,
    EnvMismatchError,
    KnobError,
    SpecError,
    SpecFileError,
    SpecKeyError,
    SpecRangeError,
    SpecSyntaxError,
    SpecTypeError,
    SpecValueError,
    UnknownKnobError,
)
from domrand.knobs import Knob, KnobSet, Phase
from domrand.registry import (
    default_spec_path,
    env_ids,
    knobs_for,
    make,
    make_vec,
    realities,
    register_all,
)
from domrand.spec import Domain, ParamVector, RandomizationSpec, load_domain, load_spec
from domrand.wrappers import DomainRandomization

__version__ = "0.1.0"

register_all()

__all__ = [
    "CheckpointError",
    "Domain",
    "DomainRandomization",
    "DomrandError",
    "EnvMismatchError",
    "Knob",
    "KnobError",
    "KnobSet",
    "ParamVector",
    "Phase",
    "RandomizationSpec",
    "SpecError",
    "SpecFileError",
    "SpecKeyError",
    "SpecRangeError",
    "SpecSyntaxError",
    "SpecTypeError",
    "SpecValueError",
    "UnknownKnobError",
    "__version__",
    "default_spec_path",
    "env_ids",
    "knobs_for",
    "load_domain",
    "load_spec",
    "make",
    "make_vec",
    "realities",
]

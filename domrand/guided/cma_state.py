"""CMA-ES from the ``cma`` package, seeded without global state, with a plain-data checkpoint.

:class:`CMA` searches the box ``[0, 1]^n`` (callers map their parameters into it). Two things the
package does not give out of the box:

* **One random path.** ``cma`` seeds and draws from NumPy's *global* generator unless it is given
  its own ``randn``; we pass one backed by ``np.random.default_rng(seed)`` (and ``seed: nan`` so
  the package never touches the global state).
* **A checkpoint without pickle.** :meth:`CMA.state_dict` records the numeric state of the
  strategy (mean, step size, covariance and its eigendecomposition, evolution paths ``pc`` and
  ``ps``, counters, fitness history, best solution...) and of our generator as JSON-able data.
  :meth:`CMA.from_state` rebuilds the strategy with the same options and writes those numbers
  back. With the same ``cma`` version the continuation is *exact* (a resumed run asks for the same
  candidates as the uninterrupted one; tested). With another version only the mean, step size,
  covariance (with its diagonal scaling), evolution paths, best solution and fitness history
  (plus what a fresh strategy creates lazily) are restored: the search continues from the same
  distribution, but its trajectory differs from the uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cma
import numpy as np

__all__ = ["CMA"]

#: the objects whose numeric attributes make up the strategy's state ("" = the strategy itself)
_PARTS = ("", "sm", "adapt_sigma", "sigma_vec", "best", "fit")
#: what survives a change of ``cma`` version (the search distribution and evolution paths)
_PORTABLE: dict[str, tuple[str, ...] | None] = {
    "": ("mean", "sigma", "pc", "dC", "countiter", "countevals"),
    "sm": ("C", "B", "D"),
    "adapt_sigma": ("ps",),
    "sigma_vec": None,  # the diagonal scaling (part of the covariance): every entry
    "best": None,  # the best solution so far: every entry
    "fit": None,  # the fitness history the stopping criteria read: every entry
}


def _plain(value: Any) -> Any:
    """JSON-able form of a numeric attribute; ``TypeError`` for anything else."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
        return {"array": value.tolist(), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}  # JSON has no inf/nan
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    # exact list type only: cma keeps list *subclasses* with behaviour (e.g. its logger queue)
    if type(value) is list and all(isinstance(v, (int, float, np.number)) for v in value):
        return {"list": [_plain(v) for v in value]}
    raise TypeError(type(value).__name__)


def _unplain(value: Any) -> Any:
    if isinstance(value, dict) and "array" in value:
        arr = np.array(value["array"], dtype=value["dtype"])
        return arr.reshape(value["shape"])
    if isinstance(value, dict) and "float" in value:
        return float(value["float"])
    if isinstance(value, dict) and "list" in value:
        return [_unplain(v) for v in value["list"]]
    return value


class CMA:
    """A seeded CMA-ES over ``[0, 1]^n``.

    Args:
        x0: start mean, in ``[0, 1]^n``.
        sigma0: initial step size (0.25: a quarter of the box, the SO-CMA setting).
        seed: seed of the strategy's own generator.
        popsize: population size (``None``: cma's default ``4 + floor(3 ln n)``).
    """

    def __init__(
        self, x0: Sequence[float], sigma0: float, seed: int, popsize: int | None = None
    ) -> None:
        self.x0 = [float(v) for v in x0]
        self.sigma0 = float(sigma0)
        self.seed = int(seed)
        self.popsize = popsize
        self.rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(0x636D61,)))
        rng = self.rng
        opts = cma.CMAOptions()
        opts.set(
            {
                "bounds": [0.0, 1.0],
                "randn": lambda *shape: rng.standard_normal(shape),
                "seed": math.nan,  # never seed (or draw from) NumPy's global generator
                "verbose": -9,
                "verb_disp": 0,
                "verb_log": 0,
            }
        )
        if popsize is not None:
            opts.set("popsize", int(popsize))
        self.es = cma.CMAEvolutionStrategy(self.x0, self.sigma0, opts)

    @property
    def popsize_now(self) -> int:
        return int(self.es.popsize)

    @property
    def generation(self) -> int:
        return int(self.es.countiter)

    def ask(self) -> np.ndarray:
        """The next population, ``[popsize, n]`` inside the box."""
        return np.asarray(self.es.ask(), dtype=np.float64)

    def tell(self, candidates: np.ndarray, costs: Sequence[float]) -> None:
        """Report the costs (lower is better) of the population :meth:`ask` returned."""
        self.es.tell(
            [np.asarray(c, dtype=np.float64) for c in candidates], [float(c) for c in costs]
        )

    @property
    def mean(self) -> np.ndarray:
        """The distribution mean in the box (cma's ``xfavorite``, the current best estimate)."""
        return np.clip(np.asarray(self.es.result.xfavorite, dtype=np.float64), 0.0, 1.0)

    @property
    def cov(self) -> np.ndarray:
        """The search covariance ``sigma^2 C`` (exact away from the box edges)."""
        scale = np.asarray(self.es.sigma_vec.scaling, dtype=np.float64) * float(self.es.sigma)
        scale = np.broadcast_to(scale, (len(self.x0),))
        return np.asarray(self.es.sm.C, dtype=np.float64) * np.outer(scale, scale)

    @property
    def best(self) -> tuple[np.ndarray | None, float]:
        """The best candidate told so far and its cost."""
        x, f = self.es.result.xbest, self.es.result.fbest
        return (None if x is None else np.asarray(x, dtype=np.float64)), float(f)

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """Plain data (JSON-able) from which :meth:`from_state` rebuilds this strategy."""
        parts: dict[str, dict[str, Any]] = {}
        for name in _PARTS:
            obj = self.es if not name else getattr(self.es, name)
            entries: dict[str, Any] = {}
            for key, value in vars(obj).items():
                try:
                    entries[key] = _plain(value)
                except TypeError:
                    continue  # objects, functions, options: rebuilt from the constructor args
            parts[name] = entries
        rng_state = self.rng.bit_generator.state
        return {
            "cma_version": cma.__version__,
            "x0": self.x0,
            "sigma0": self.sigma0,
            "seed": self.seed,
            "popsize": self.popsize,
            "parts": parts,
            # PCG64's 128-bit integers as strings, so any JSON reader keeps them exact
            "rng": {
                "state": str(rng_state["state"]["state"]),
                "inc": str(rng_state["state"]["inc"]),
                "has_uint32": int(rng_state["has_uint32"]),
                "uinteger": int(rng_state["uinteger"]),
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CMA:
        """Rebuild a strategy saved by :meth:`state_dict` (exact with the same ``cma`` version)."""
        out = cls(state["x0"], state["sigma0"], state["seed"], state["popsize"])
        exact = state["cma_version"] == cma.__version__
        for name, entries in state["parts"].items():
            if not exact and name not in _PORTABLE:
                continue
            obj = out.es if not name else getattr(out.es, name)
            for key, value in entries.items():
                # (attributes a fresh strategy lacks are created lazily by tell(): keep them too)
                keys = _PORTABLE.get(name, ())
                if exact or keys is None or key in keys or not hasattr(obj, key):
                    setattr(obj, key, _unplain(value))
        if out.es.countiter > 0:
            # ask() creates the timer only in the first iteration
            from cma.utilities.utils import ElapsedWCTime

            out.es.timer = ElapsedWCTime()
        r = state["rng"]
        out.rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": int(r["state"]), "inc": int(r["inc"])},
            "has_uint32": int(r["has_uint32"]),
            "uinteger": int(r["uinteger"]),
        }
        return out

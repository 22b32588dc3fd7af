"""Distributions: immutable value objects that only sample.

Every distribution lives in its own "distribution space"; the spec maps a sample into a knob value
with a mode (absolute, scale, offset). Each exposes:

* ``sample(rng)`` drawing from an explicit ``np.random.Generator`` (never global state);
* ``support()`` as a closed interval in distribution space (``(-inf, inf)`` when unbounded);
* ``params()`` / ``with_params(values)``: the tunable vector phi that guided DR optimizes;
* ``entropy()`` (differential, nats) and ``to_dict()`` for an exact round trip.
"""

from __future__ import annotations

import bisect
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "Choice",
    "Constant",
    "Distribution",
    "LogUniform",
    "MultivariateNormal",
    "Normal",
    "TruncNormal",
    "Uniform",
    "norm_cdf",
    "norm_ppf",
]

INF = math.inf
#: Beyond this many standard deviations the normal CDF nears double underflow.
_TAIL_Z = 37.0


def norm_cdf(x: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def norm_ppf(p: float) -> float:
    """Inverse standard normal CDF (Acklam's rational approximation + one Halley step)."""
    if p <= 0.0:
        return -INF
    if p >= 1.0:
        return INF
    a = (
        -3.969683028665376e01,
        2.209460984245205e02,
        -2.759285104469687e02,
        1.383577518672690e02,
        -3.066479806614716e01,
        2.506628277459239e00,
    )
    b = (
        -5.447609879822406e01,
        1.615858368580409e02,
        -1.556989798598866e02,
        6.680131188771972e01,
        -1.328068155288572e01,
    )
    c = (
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e00,
        -2.549732539343734e00,
        4.374664141464968e00,
        2.938163982698783e00,
    )
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    plow = 0.02425
    if p < plow:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    elif p > 1 - plow:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    else:
        q = p - 0.5
        r = q * q
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        )
    # One Halley refinement brings the error to ~1e-15 (skipped where exp(x^2/2) would overflow).
    if x * x / 2 > 700.0:
        return x
    e = norm_cdf(x) - p
    u = e * math.sqrt(2 * math.pi) * math.exp(x * x / 2)
    return x - u / (1 + x * u / 2)


@dataclass(frozen=True)
class Distribution(ABC):
    """Base class. Subclasses are frozen dataclasses; ``name`` is the spec's ``dist:`` value."""

    name: ClassVar[str] = ""
    #: names of the tunable parameters, in the order of ``params()``
    tunable: ClassVar[tuple[str, ...]] = ()

    @property
    def dim(self) -> int:
        """Number of knobs one sample covers (1 except for multivariate distributions)."""
        return 1

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Any:
        """Draw one sample using only ``rng``."""

    @abstractmethod
    def support(self) -> tuple[float, float]:
        """Smallest closed interval holding every sample, in distribution space."""

    @abstractmethod
    def entropy(self) -> float:
        """Differential entropy in nats (``-inf`` for point masses, Shannon for choices)."""

    def params(self) -> tuple[float, ...]:
        """The tunable parameter values phi, in the order of ``param_names()``."""
        return tuple(float(getattr(self, n)) for n in self.tunable)

    def param_names(self) -> tuple[str, ...]:
        return self.tunable

    def with_params(self, values: Sequence[float]) -> Distribution:
        """A copy with new tunable parameter values (validated by the spec layer)."""
        if len(values) != len(self.tunable):
            raise ValueError(f"{self.name}: expected {len(self.tunable)} params, got {len(values)}")
        return replace(self, **{n: float(v) for n, v in zip(self.tunable, values)})

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The spec-file form of this distribution."""


def _psd_cholesky(cov: np.ndarray) -> np.ndarray:
    """Lower-triangular ``L`` with ``L @ L.T == cov`` for a positive semi-definite ``cov``.

    numpy's Cholesky needs a positive definite matrix. A singular one (perfectly correlated knobs,
    a zero variance) gets a zero column at each zero pivot instead, so a knob with zero variance
    stays exactly at its mean.
    """
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        pass
    k = len(cov)
    chol = np.zeros((k, k))
    tol = 1e-12 * max(1.0, float(np.abs(cov).max()))
    for j in range(k):
        pivot = cov[j, j] - chol[j, :j] @ chol[j, :j]
        if pivot <= tol:
            continue  # a direction without variance (up to round-off): column j stays zero
        chol[j, j] = math.sqrt(pivot)
        chol[j + 1 :, j] = (cov[j + 1 :, j] - chol[j + 1 :, :j] @ chol[j, :j]) / chol[j, j]
    return chol


def _clip_support(
    support: tuple[float, float], clip: tuple[float, float] | None
) -> tuple[float, float]:
    if clip is None:
        return support
    # Clamp both ends into the clip (a point outside the clip becomes the nearer clip end).
    return (min(max(support[0], clip[0]), clip[1]), max(min(support[1], clip[1]), clip[0]))


@dataclass(frozen=True)
class Constant(Distribution):
    """A point mass: a bare value in a spec pins the knob."""

    name: ClassVar[str] = "constant"
    value: float

    def sample(self, rng: np.random.Generator) -> float:
        return self.value

    def support(self) -> tuple[float, float]:
        return (self.value, self.value)

    def entropy(self) -> float:
        return -INF

    def to_dict(self) -> dict[str, Any]:
        return {"dist": "constant", "value": self.value}


@dataclass(frozen=True)
class Uniform(Distribution):
    """U(low, high)."""

    name: ClassVar[str] = "uniform"
    tunable: ClassVar[tuple[str, ...]] = ("low", "high")
    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        # Same stream and values as rng.uniform(low, high), at a third of the call cost.
        return self.low + (self.high - self.low) * rng.random()

    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    def entropy(self) -> float:
        w = self.high - self.low
        return math.log(w) if w > 0 else -INF

    def to_dict(self) -> dict[str, Any]:
        return {"dist": "uniform", "low": self.low, "high": self.high}


@dataclass(frozen=True)
class LogUniform(Distribution):
    """exp(U(log low, log high)); the usual choice for scale-type quantities (0 < low)."""

    name: ClassVar[str] = "loguniform"
    tunable: ClassVar[tuple[str, ...]] = ("low", "high")
    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        lo, hi = math.log(self.low), math.log(self.high)
        x = math.exp(lo + (hi - lo) * rng.random())
        # exp(log(v)) can miss v by an ulp; keep samples inside the support.
        return float(min(max(x, self.low), self.high))

    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    def entropy(self) -> float:
        lo, hi = math.log(self.low), math.log(self.high)
        if hi <= lo:
            return -INF
        # h(X) = h(log X) + E[log X] for X = exp(Y), Y ~ U(lo, hi)
        return math.log(hi - lo) + 0.5 * (lo + hi)

    def to_dict(self) -> dict[str, Any]:
        return {"dist": "loguniform", "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Normal(Distribution):
    """N(mean, std^2), optionally clipped to ``clip = (lo, hi)`` (mass piles up at the ends)."""

    name: ClassVar[str] = "normal"
    tunable: ClassVar[tuple[str, ...]] = ("mean", "std")
    mean: float
    std: float
    clip: tuple[float, float] | None = None

    def sample(self, rng: np.random.Generator) -> float:
        x = self.mean + self.std * rng.standard_normal()  # == rng.normal(mean, std)
        if self.clip is not None:
            x = min(max(x, self.clip[0]), self.clip[1])
        return x

    def support(self) -> tuple[float, float]:
        if self.std == 0:
            return _clip_support((self.mean, self.mean), self.clip)
        return _clip_support((-INF, INF), self.clip)

    def entropy(self) -> float:
        if self.std <= 0:
            return -INF
        return 0.5 * math.log(2 * math.pi * math.e * self.std**2)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"dist": "normal", "mean": self.mean, "std": self.std}
        if self.clip is not None:
            d["clip"] = [self.clip[0], self.clip[1]]
        return d


@dataclass(frozen=True)
class TruncNormal(Distribution):
    """N(mean, std^2) conditioned on [low, high], sampled exactly by inverse CDF."""

    name: ClassVar[str] = "truncnormal"
    tunable: ClassVar[tuple[str, ...]] = ("mean", "std")
    mean: float
    std: float
    low: float
    high: float

    def _ab(self) -> tuple[float, float]:
        return (self.low - self.mean) / self.std, (self.high - self.mean) / self.std

    def sample(self, rng: np.random.Generator) -> float:
        u = rng.random()
        if self.std == 0 or self.low == self.high:
            return min(max(self.mean, self.low), self.high)
        a, b = self._ab()
        if a == b:  # both ends overflowed to the same infinity: all mass at the nearer end
            return self.high if b < 0 else self.low
        # Work in the lower tail, where the CDF keeps its precision: reflect when a > 0.
        sign = 1.0
        if a > 0:
            a, b, sign = -b, -a, -1.0
        if b < -_TAIL_Z:
            # So far out the CDF underflows. There the truncated normal is an exponential of
            # rate -b decaying from b towards a (relative error O(1/b^2) < 1e-3); invert its CDF.
            z = b + math.log1p(u * math.expm1(b * (b - a))) / -b
        else:
            pa, pb = norm_cdf(a), norm_cdf(b)
            z = norm_ppf(pa + u * (pb - pa))
        return min(max(self.mean + self.std * sign * z, self.low), self.high)

    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    def entropy(self) -> float:
        if self.std <= 0 or self.high <= self.low:
            return -INF
        a, b = self._ab()
        z = norm_cdf(b) - norm_cdf(a)
        if z <= 0:
            return -INF

        def phi(x: float) -> float:
            return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)

        return math.log(math.sqrt(2 * math.pi * math.e) * self.std * z) + (
            a * phi(a) - b * phi(b)
        ) / (2 * z)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dist": "truncnormal",
            "mean": self.mean,
            "std": self.std,
            "low": self.low,
            "high": self.high,
        }


@dataclass(frozen=True)
class Choice(Distribution):
    """A categorical over ``values`` with optional ``weights`` (normalized at sampling)."""

    name: ClassVar[str] = "choice"
    values: tuple[float, ...]
    weights: tuple[float, ...] | None = None
    _p: np.ndarray | None = field(init=False, repr=False, compare=False, default=None)
    _cdf: list[float] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=float)
            w = w / w.max()  # first, so weights near 1e308 cannot overflow the sum
            p = w / w.sum()
            cdf = np.cumsum(p).tolist()
            cdf[-1] = 1.0  # exact, so a draw in [0, 1) always lands on a value
            object.__setattr__(self, "_p", p)
            object.__setattr__(self, "_cdf", cdf)

    def sample(self, rng: np.random.Generator) -> float:
        # rng.integers / a CDF search cost ~1 us where rng.choice costs ~5-7 us.
        if self._cdf is None:
            return self.values[int(rng.integers(len(self.values)))]
        i = bisect.bisect_right(self._cdf, float(rng.random()))
        return self.values[min(i, len(self.values) - 1)]

    def support(self) -> tuple[float, float]:
        return (min(self.values), max(self.values))

    def entropy(self) -> float:
        p = self._p if self._p is not None else np.full(len(self.values), 1 / len(self.values))
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"dist": "choice", "values": list(self.values)}
        if self.weights is not None:
            d["weights"] = list(self.weights)
        return d


@dataclass(frozen=True)
class MultivariateNormal(Distribution):
    """A full-covariance Gaussian over several knobs (SimOpt's P_phi), optionally clipped per dim.

    phi is the mean followed by the lower-triangular Cholesky factor of the covariance, row by row,
    so every phi with a positive diagonal is a valid covariance.
    """

    name: ClassVar[str] = "mvnormal"
    mean: tuple[float, ...]
    cov: tuple[tuple[float, ...], ...]
    clip: tuple[tuple[float, float], ...] | None = None
    _chol: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_chol", _psd_cholesky(np.asarray(self.cov, dtype=float)))

    @property
    def dim(self) -> int:
        return len(self.mean)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal(self.dim)
        x = np.asarray(self.mean) + self._chol @ z
        if self.clip is not None:
            lo = np.array([c[0] for c in self.clip])
            hi = np.array([c[1] for c in self.clip])
            x = np.minimum(np.maximum(x, lo), hi)
        return x

    def support_of(self, i: int) -> tuple[float, float]:
        """Support of dimension ``i`` in distribution space."""
        base = (self.mean[i], self.mean[i]) if self.cov[i][i] == 0 else (-INF, INF)
        return _clip_support(base, self.clip[i] if self.clip is not None else None)

    def support(self) -> tuple[float, float]:
        sup = [self.support_of(i) for i in range(self.dim)]
        return (min(s[0] for s in sup), max(s[1] for s in sup))

    def entropy(self) -> float:
        sign, logdet = np.linalg.slogdet(np.asarray(self.cov, dtype=float))
        if sign <= 0:
            return -INF
        return float(0.5 * (self.dim * math.log(2 * math.pi * math.e) + logdet))

    def param_names(self) -> tuple[str, ...]:
        k = self.dim
        names = [f"mean[{i}]" for i in range(k)]
        names += [f"chol[{i},{j}]" for i in range(k) for j in range(i + 1)]
        return tuple(names)

    def params(self) -> tuple[float, ...]:
        k = self.dim
        return tuple(float(m) for m in self.mean) + tuple(
            float(self._chol[i, j]) for i in range(k) for j in range(i + 1)
        )

    def with_params(self, values: Sequence[float]) -> MultivariateNormal:
        k = self.dim
        n = k + k * (k + 1) // 2
        if len(values) != n:
            raise ValueError(f"mvnormal: expected {n} params, got {len(values)}")
        mean = tuple(float(v) for v in values[:k])
        chol = np.zeros((k, k))
        it = iter(values[k:])
        for i in range(k):
            for j in range(i + 1):
                chol[i, j] = float(next(it))
        if np.array_equal(chol, self._chol):
            # Unchanged factor: keep the exact covariance so with_params(params()) is the identity
            # (L L^T differs from the original cov in the last bits).
            cov = self.cov
        else:
            cov = tuple(tuple(float(c) for c in row) for row in chol @ chol.T)
        return MultivariateNormal(mean, cov, self.clip)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "dist": "mvnormal",
            "mean": list(self.mean),
            "cov": [list(r) for r in self.cov],
        }
        if self.clip is not None:
            d["clip"] = [list(c) for c in self.clip]
        return d

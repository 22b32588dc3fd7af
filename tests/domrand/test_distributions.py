"""Distributions: sampling statistics against closed-form moments, entropy, phi, reproducibility.

Expectations come from the math (moments, CDFs, entropy formulas), checked against 20k seeded draws
with tolerances of several standard errors.
"""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest

from domrand.distributions import (
    Choice,
    Constant,
    Distribution,
    LogUniform,
    MultivariateNormal,
    Normal,
    TruncNormal,
    Uniform,
    norm_cdf,
    norm_ppf,
)

N = 20_000
SQRT2PI = math.sqrt(2 * math.pi)


def draws(dist: Distribution, n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([dist.sample(rng) for _ in range(n)], dtype=float)


def phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / SQRT2PI


def Phi(x: float) -> float:
    """Normal CDF from erf, independent of the package's erfc-based norm_cdf."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def mass(a: float, b: float) -> float:
    """P(a < Z < b) for a standard normal Z, computed in the tail where it keeps precision."""
    if a > 0:
        return norm_cdf(-a) - norm_cdf(-b)
    return norm_cdf(b) - norm_cdf(a)


def ks_stat(samples: np.ndarray, cdf) -> float:
    """Kolmogorov-Smirnov distance between the empirical CDF of ``samples`` and ``cdf``."""
    x = np.sort(samples)
    n = len(x)
    f = np.array([cdf(v) for v in x])
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n)))


# 99.9% critical value of the one-sample KS statistic is ~1.95 / sqrt(n).
KS_CRIT = 1.95 / math.sqrt(N)


def assert_mean(x: np.ndarray, mean: float, std: float, k: float = 5.0) -> None:
    """Sample mean within k standard errors of the true mean."""
    assert abs(x.mean() - mean) <= k * std / math.sqrt(len(x)) + 1e-12, (x.mean(), mean)


# ---------------------------------------------------------------- normal CDF / inverse
def test_norm_cdf_matches_erf_and_is_symmetric() -> None:
    for x in np.linspace(-8, 8, 81):
        assert norm_cdf(x) == pytest.approx(Phi(x), abs=1e-15)
        assert norm_cdf(x) + norm_cdf(-x) == pytest.approx(1.0, abs=1e-15)
    assert norm_cdf(0.0) == 0.5


@pytest.mark.parametrize(
    "p", [1e-300, 1e-100, 1e-20, 1e-8, 0.001, 0.02, 0.024, 0.1, 0.3, 0.5, 0.7, 0.97, 0.999]
)
def test_norm_ppf_inverts_cdf(p: float) -> None:
    x = norm_ppf(p)
    assert norm_cdf(x) == pytest.approx(p, rel=1e-12)
    # symmetric: ppf(1 - p) = -ppf(p) (only where 1 - p is exact enough)
    if p > 1e-8:
        assert norm_ppf(1 - p) == pytest.approx(-x, rel=1e-9)


def test_norm_ppf_edges_and_extreme_tail() -> None:
    assert norm_ppf(0.0) == -math.inf
    assert norm_ppf(1.0) == math.inf
    # The smallest subnormal must not overflow the refinement step; -sqrt(2 ln(1/p)) bounds it.
    x = norm_ppf(5e-324)
    assert math.isfinite(x)
    assert -math.sqrt(-2 * math.log(5e-324)) < x < -37.0


# ---------------------------------------------------------------- constant
def test_constant() -> None:
    d = Constant(2.5)
    assert set(draws(d, 100)) == {2.5}
    assert d.support() == (2.5, 2.5)
    assert d.entropy() == -math.inf
    assert d.params() == () and d.param_names() == ()
    assert d.to_dict() == {"dist": "constant", "value": 2.5}


# ---------------------------------------------------------------- uniform
def test_uniform_moments_and_range() -> None:
    lo, hi = -1.0, 3.0
    x = draws(Uniform(lo, hi))
    assert x.min() >= lo and x.max() < hi
    sd = (hi - lo) / math.sqrt(12)
    assert_mean(x, (lo + hi) / 2, sd)
    assert x.std() == pytest.approx(sd, rel=0.02)
    assert ks_stat(x, lambda v: (v - lo) / (hi - lo)) < KS_CRIT


def test_uniform_entropy_and_support() -> None:
    d = Uniform(0.5, 2.5)
    # density 1/(hi-lo) everywhere: h = log(hi - lo)
    assert d.entropy() == pytest.approx(math.log(2.0))
    assert Uniform(1.0, 1.0).entropy() == -math.inf
    assert d.support() == (0.5, 2.5)
    assert Uniform(1.0, 1.0).sample(np.random.default_rng(0)) == 1.0


# ---------------------------------------------------------------- loguniform
def test_loguniform_log_samples_are_uniform() -> None:
    lo, hi = 0.01, 100.0
    x = draws(LogUniform(lo, hi))
    assert x.min() >= lo and x.max() <= hi
    y = np.log(x)
    a, b = math.log(lo), math.log(hi)
    assert ks_stat(y, lambda v: (v - a) / (b - a)) < KS_CRIT
    # E[X] = (hi - lo) / (log hi - log lo)
    mean = (hi - lo) / (b - a)
    var = (hi**2 - lo**2) / (2 * (b - a)) - mean**2
    assert_mean(x, mean, math.sqrt(var))


def test_loguniform_entropy_matches_monte_carlo() -> None:
    lo, hi = 0.5, 4.0
    d = LogUniform(lo, hi)
    x = draws(d)
    # density f(x) = 1 / (x (log hi - log lo)); h = -E[log f(X)]
    logf = -np.log(x) - math.log(math.log(hi) - math.log(lo))
    se = logf.std() / math.sqrt(len(x))
    assert d.entropy() == pytest.approx(-logf.mean(), abs=5 * se)
    assert LogUniform(2.0, 2.0).entropy() == -math.inf


def test_loguniform_degenerate_stays_in_support() -> None:
    # exp(log(3)) is 3.0000000000000004 in floating point: samples must stay inside [low, high].
    for v in (3.0, 0.3, 7.1, 1e-5):
        d = LogUniform(v, v)
        assert {d.sample(np.random.default_rng(s)) for s in range(5)} == {v}


# ---------------------------------------------------------------- normal
def test_normal_moments() -> None:
    x = draws(Normal(1.5, 0.3))
    assert_mean(x, 1.5, 0.3)
    assert x.std() == pytest.approx(0.3, rel=0.02)
    assert ks_stat(x, lambda v: Phi((v - 1.5) / 0.3)) < KS_CRIT


def test_normal_clip_piles_mass_at_the_ends() -> None:
    mu, sd, lo, hi = 0.0, 1.0, -0.5, 1.0
    x = draws(Normal(mu, sd, (lo, hi)))
    assert x.min() == lo and x.max() == hi
    for frac, p in (((x == lo).mean(), Phi(lo)), ((x == hi).mean(), 1 - Phi(hi))):
        assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / len(x))


def test_normal_support_and_entropy() -> None:
    assert Normal(0.0, 1.0).support() == (-math.inf, math.inf)
    assert Normal(0.0, 1.0, (-1.0, 2.0)).support() == (-1.0, 2.0)
    assert Normal(3.0, 0.0).support() == (3.0, 3.0)
    # a point mass outside its clip is clipped: the support is the clipped point
    assert Normal(3.0, 0.0, (0.0, 1.0)).support() == (1.0, 1.0)
    assert Normal(3.0, 0.0, (0.0, 1.0)).sample(np.random.default_rng(0)) == 1.0
    d = Normal(0.2, 0.7)
    x = draws(d)
    logf = -0.5 * ((x - 0.2) / 0.7) ** 2 - math.log(0.7 * SQRT2PI)
    se = logf.std() / math.sqrt(len(x))
    assert d.entropy() == pytest.approx(-logf.mean(), abs=5 * se)
    assert d.entropy() == pytest.approx(0.5 * math.log(2 * math.pi * math.e * 0.49))
    assert Normal(0.0, 0.0).entropy() == -math.inf


def test_normal_to_dict_includes_clip_only_when_set() -> None:
    assert Normal(0.0, 1.0).to_dict() == {"dist": "normal", "mean": 0.0, "std": 1.0}
    assert Normal(0.0, 1.0, (-1.0, 1.0)).to_dict()["clip"] == [-1.0, 1.0]


# ---------------------------------------------------------------- truncated normal
def truncnormal_moments(mu: float, sd: float, lo: float, hi: float) -> tuple[float, float]:
    """Mean and variance of N(mu, sd^2) truncated to [lo, hi] (textbook formulas)."""
    a, b = (lo - mu) / sd, (hi - mu) / sd
    z = mass(a, b)
    r = (phi(a) - phi(b)) / z
    mean = mu + sd * r
    var = sd**2 * (1 + (a * phi(a) - b * phi(b)) / z - r**2)
    return mean, var


@pytest.mark.parametrize(
    "mu,sd,lo,hi",
    [
        (0.0, 1.0, -1.0, 2.0),  # straddles the mean
        (0.0, 1.0, 1.0, 3.0),  # right tail (sampled by reflection)
        (0.0, 1.0, -3.0, -1.0),  # left tail
        (5.0, 2.0, 0.0, 1.0),  # mean far above the interval
        (0.0, 1.0, 8.0, 9.0),  # deep right tail
        (0.0, 1.0, -9.0, -8.0),  # deep left tail
    ],
)
def test_truncnormal_moments_and_cdf(mu: float, sd: float, lo: float, hi: float) -> None:
    x = draws(TruncNormal(mu, sd, lo, hi))
    assert x.min() >= lo and x.max() <= hi
    mean, var = truncnormal_moments(mu, sd, lo, hi)
    assert_mean(x, mean, math.sqrt(var))
    assert x.var() == pytest.approx(var, rel=0.05)
    a, b = (lo - mu) / sd, (hi - mu) / sd
    z = mass(a, b)
    assert ks_stat(x, lambda v: mass(a, (v - mu) / sd) / z) < KS_CRIT


@pytest.mark.parametrize("dist_sigma", [30.0, 36.9, 37.2, 37.8, 40.0, 200.0])
@pytest.mark.parametrize("side", [1.0, -1.0])
def test_truncnormal_far_tail_piles_near_the_nearer_bound(dist_sigma: float, side: float) -> None:
    """Mean many std away from [0.5, 2]: samples sit just inside the bound nearer the mean.

    For a bound ``t`` std from the mean, the excess over the bound is ~Exp(rate t / std): its mean
    is std * (1/t - 1/t^3) to first orders (the Mills ratio).
    """
    lo, hi, sd = 0.5, 2.0, 0.05
    bound = hi if side > 0 else lo
    mu = bound + side * dist_sigma * sd
    x = draws(TruncNormal(mu, sd, lo, hi), n=5000)
    excess = np.abs(x - bound)
    t = dist_sigma
    expected = sd * (1 / t - 1 / t**3)
    assert x.min() >= lo and x.max() <= hi
    assert excess.mean() == pytest.approx(expected, rel=0.07)
    assert excess.max() < 20 * expected


def test_truncnormal_entropy_matches_monte_carlo() -> None:
    mu, sd, lo, hi = 0.3, 0.8, -0.5, 2.0
    d = TruncNormal(mu, sd, lo, hi)
    x = draws(d)
    z = mass((lo - mu) / sd, (hi - mu) / sd)
    logf = -0.5 * ((x - mu) / sd) ** 2 - math.log(sd * SQRT2PI * z)
    se = logf.std() / math.sqrt(len(x))
    assert d.entropy() == pytest.approx(-logf.mean(), abs=5 * se)
    # wide truncation -> entropy of the untruncated normal
    wide = TruncNormal(0.0, 1.0, -40.0, 40.0)
    assert wide.entropy() == pytest.approx(0.5 * math.log(2 * math.pi * math.e), abs=1e-12)
    assert TruncNormal(0.0, 0.0, -1.0, 1.0).entropy() == -math.inf


def test_truncnormal_point_masses() -> None:
    rng = np.random.default_rng(0)
    assert TruncNormal(0.7, 0.0, 0.0, 1.0).sample(rng) == 0.7
    assert TruncNormal(0.7, 1.0, 0.4, 0.4).sample(rng) == 0.4
    assert TruncNormal(0.0, 1.0, -1.0, 2.0).support() == (-1.0, 2.0)


# ---------------------------------------------------------------- choice
def test_choice_weighted_frequencies() -> None:
    values = (0, 1, 2, 5)
    weights = (1.0, 2.0, 0.0, 5.0)
    x = draws(Choice(values, weights))
    p = np.array(weights) / sum(weights)
    for v, pv in zip(values, p):
        frac = (x == v).mean()
        assert abs(frac - pv) <= 5 * math.sqrt(pv * (1 - pv) / len(x))
    assert not (x == 2).any()  # zero weight: never drawn
    assert set(np.unique(x)) <= set(values)


def test_choice_unweighted_is_uniform_and_keeps_value_types() -> None:
    d = Choice((0, 1, 2))
    rng = np.random.default_rng(3)
    out = [d.sample(rng) for _ in range(N)]
    assert all(type(v) is int for v in out)
    x = np.array(out)
    for v in (0, 1, 2):
        assert abs((x == v).mean() - 1 / 3) <= 5 * math.sqrt(2 / 9 / N)


def test_choice_entropy_support_params() -> None:
    w = (1.0, 3.0)
    d = Choice((0.5, 2.0), w)
    p = np.array(w) / 4
    assert d.entropy() == pytest.approx(float(-(p * np.log(p)).sum()))
    assert Choice((1, 2, 3, 4)).entropy() == pytest.approx(math.log(4))
    assert Choice((1, 2), (0.0, 1.0)).entropy() == 0.0
    assert d.support() == (0.5, 2.0)
    assert d.params() == ()
    assert d.to_dict() == {"dist": "choice", "values": [0.5, 2.0], "weights": [1.0, 3.0]}
    assert "weights" not in Choice((1, 2)).to_dict()
    # weights are normalized: scaling them does not change the distribution
    assert (
        draws(Choice((1, 2, 3), (1, 1, 2)), 500).tolist()
        == draws(Choice((1, 2, 3), (10, 10, 20)), 500).tolist()
    )


# ---------------------------------------------------------------- multivariate normal
COV = ((0.04, 0.03, 0.0), (0.03, 0.09, -0.02), (0.0, -0.02, 0.25))
MEAN = (1.0, -2.0, 0.5)


def test_mvnormal_mean_and_covariance() -> None:
    d = MultivariateNormal(MEAN, COV)
    rng = np.random.default_rng(0)
    x = np.array([d.sample(rng) for _ in range(N)])
    assert x.shape == (N, 3)
    c = np.array(COV)
    for i in range(3):
        assert_mean(x[:, i], MEAN[i], math.sqrt(c[i, i]))
    emp = np.cov(x, rowvar=False)
    for i in range(3):
        for j in range(3):
            se = math.sqrt((c[i, i] * c[j, j] + c[i, j] ** 2) / N)
            assert abs(emp[i, j] - c[i, j]) <= 5 * se, (i, j, emp[i, j], c[i, j])


def test_mvnormal_clip_per_dimension() -> None:
    clip = ((0.9, 1.1), (-3.0, -1.0), (0.0, 1.0))
    d = MultivariateNormal(MEAN, COV, clip)
    rng = np.random.default_rng(1)
    x = np.array([d.sample(rng) for _ in range(N)])
    for i, (lo, hi) in enumerate(clip):
        assert x[:, i].min() == lo and x[:, i].max() == hi
        sd = math.sqrt(COV[i][i])
        p = Phi((lo - MEAN[i]) / sd)
        assert abs((x[:, i] == lo).mean() - p) <= 5 * math.sqrt(p * (1 - p) / N)
    assert d.support_of(0) == (0.9, 1.1)
    assert d.support() == (-3.0, 1.1)
    assert MultivariateNormal(MEAN, COV).support_of(1) == (-math.inf, math.inf)


def test_mvnormal_entropy_matches_monte_carlo() -> None:
    d = MultivariateNormal(MEAN, COV)
    rng = np.random.default_rng(2)
    x = np.array([d.sample(rng) for _ in range(N)])
    c = np.array(COV)
    inv = np.linalg.inv(c)
    diff = x - np.array(MEAN)
    quad = np.einsum("ni,ij,nj->n", diff, inv, diff)
    logf = -0.5 * (3 * math.log(2 * math.pi) + math.log(np.linalg.det(c)) + quad)
    se = logf.std() / math.sqrt(N)
    assert d.entropy() == pytest.approx(-logf.mean(), abs=5 * se)
    assert MultivariateNormal((0.0, 0.0), ((1.0, 1.0), (1.0, 1.0))).entropy() == -math.inf


def test_mvnormal_params_are_mean_and_cholesky() -> None:
    d = MultivariateNormal(MEAN, COV)
    names = d.param_names()
    assert names[:3] == ("mean[0]", "mean[1]", "mean[2]")
    assert names[3:] == (
        "chol[0,0]",
        "chol[1,0]",
        "chol[1,1]",
        "chol[2,0]",
        "chol[2,1]",
        "chol[2,2]",
    )
    p = d.params()
    assert len(p) == 3 + 6 and p[:3] == MEAN
    chol = np.zeros((3, 3))
    chol[np.tril_indices(3)] = p[3:]
    assert np.all(np.diag(chol) > 0)
    np.testing.assert_allclose(chol @ chol.T, np.array(COV), rtol=0, atol=1e-15)


def test_mvnormal_with_params_gives_cov_l_lt() -> None:
    d = MultivariateNormal((0.0, 0.0), ((1.0, 0.0), (0.0, 1.0)), ((-5.0, 5.0), (-5.0, 5.0)))
    new = d.with_params([1.0, 2.0, 0.5, -0.3, 0.2])
    lo = np.array([[0.5, 0.0], [-0.3, 0.2]])
    assert new.mean == (1.0, 2.0)
    np.testing.assert_allclose(np.array(new.cov), lo @ lo.T, rtol=0, atol=1e-15)
    assert new.clip == d.clip
    np.testing.assert_allclose(new.params()[2:], [0.5, -0.3, 0.2], rtol=1e-12)
    with pytest.raises(ValueError, match="expected 5 params"):
        d.with_params([1.0, 2.0])


@pytest.mark.parametrize("seed", range(5))
def test_mvnormal_with_params_of_own_params_is_exact_identity(seed: int) -> None:
    a = np.random.default_rng(seed).normal(size=(3, 3))
    cov = tuple(tuple(float(v) for v in row) for row in a @ a.T + 0.1 * np.eye(3))
    d = MultivariateNormal((0.1, 0.2, 0.3), cov)
    assert d.with_params(d.params()) == d
    # only the mean changed: the covariance is kept bit for bit
    assert d.with_params((1.0, 2.0, 3.0, *d.params()[3:])).cov == cov


def test_mvnormal_singular_covariances() -> None:
    """PSD but singular covariances factor exactly; zero variance means a fixed value."""
    rng = np.random.default_rng(0)
    # perfectly correlated: x1 = 2 x0, whatever the scale of the numbers
    for s in (1.0, 1e4):
        d = MultivariateNormal((0.0, 0.0), ((s, 2 * s), (2 * s, 4 * s)))
        x = np.array([d.sample(rng) for _ in range(200)])
        np.testing.assert_allclose(x[:, 1], 2 * x[:, 0], rtol=1e-9, atol=1e-9 * s)
        assert x[:, 0].std() == pytest.approx(math.sqrt(s), rel=0.25)
    # zero variance in one dimension: that dimension never moves
    d = MultivariateNormal((3.0, 0.0), ((0.0, 0.0), (0.0, 1.0)))
    x = np.array([d.sample(rng) for _ in range(200)])
    assert np.all(x[:, 0] == 3.0) and x[:, 1].std() > 0.5
    assert d.support_of(0) == (3.0, 3.0)
    # negative eigenvalue within round-off of zero (accepted by the parser) must still factor
    e = 1e-11
    d = MultivariateNormal((0.0, 0.0), ((1.0, 1.0 + e), (1.0 + e, 1.0)))
    x = np.array([d.sample(rng) for _ in range(50)])
    np.testing.assert_allclose(x[:, 0], x[:, 1], atol=1e-9)


# ---------------------------------------------------------------- phi and value semantics
@pytest.mark.parametrize(
    "dist,names,values",
    [
        (Uniform(0.5, 2.0), ("low", "high"), (0.5, 2.0)),
        (LogUniform(0.5, 2.0), ("low", "high"), (0.5, 2.0)),
        (Normal(1.0, 0.1, (0.0, 2.0)), ("mean", "std"), (1.0, 0.1)),
        (TruncNormal(1.0, 0.1, 0.0, 2.0), ("mean", "std"), (1.0, 0.1)),
    ],
)
def test_scalar_params_roundtrip(dist: Distribution, names: tuple, values: tuple) -> None:
    assert dist.param_names() == names
    assert dist.params() == values
    assert dist.with_params(dist.params()) == dist
    new = dist.with_params([v * 1.5 for v in values])
    assert new.params() == tuple(v * 1.5 for v in values)
    assert type(new) is type(dist)
    # non-tunable fields survive
    for f in dataclasses.fields(dist):
        if f.name not in names and f.compare:
            assert getattr(new, f.name) == getattr(dist, f.name)
    with pytest.raises(ValueError, match="expected 2 params"):
        dist.with_params([1.0])


def test_distributions_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Uniform(0.0, 1.0).low = 2.0  # type: ignore[misc]


ALL_DISTS = [
    Constant(1.0),
    Uniform(0.0, 1.0),
    LogUniform(0.1, 10.0),
    Normal(0.0, 1.0),
    Normal(0.0, 1.0, (-0.5, 0.5)),
    TruncNormal(0.0, 1.0, -0.5, 2.0),
    Choice((1, 2, 3), (0.2, 0.3, 0.5)),
    MultivariateNormal(MEAN, COV),
]


def _seq(d: Distribution, seed: int, n: int = 50) -> list:
    rng = np.random.default_rng(seed)
    return [np.asarray(d.sample(rng)).tolist() for _ in range(n)]


@pytest.mark.parametrize("dist", ALL_DISTS, ids=lambda d: d.name)
def test_same_seed_same_values_different_seed_different(dist: Distribution) -> None:
    assert _seq(dist, 42) == _seq(dist, 42)
    if not isinstance(dist, Constant):
        assert _seq(dist, 42) != _seq(dist, 43)


@pytest.mark.parametrize("dist", ALL_DISTS, ids=lambda d: d.name)
def test_sampling_uses_only_the_passed_rng(dist: Distribution, monkeypatch) -> None:
    np_state = np.random.get_state()  # noqa: NPY002 - checked, not used
    py_state = random.getstate()

    def forbidden(*a, **k):
        raise AssertionError("global random state used")

    for name in ("random", "uniform", "normal", "choice", "standard_normal", "rand", "randn"):
        monkeypatch.setattr(np.random, name, forbidden)
    for name in ("random", "uniform", "gauss", "choice", "normalvariate"):
        monkeypatch.setattr(random, name, forbidden)
    _seq(dist, 0, 20)
    monkeypatch.undo()
    after = np.random.get_state()  # noqa: NPY002
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])
    assert after[2:] == np_state[2:]
    assert random.getstate() == py_state

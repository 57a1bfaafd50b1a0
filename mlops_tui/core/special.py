"""Special functions for the drift tests, vectorised over numpy arrays (no scipy): the
regularised incomplete gamma (chi-square and normal tails) and the Kolmogorov distribution.
tests/test_drift_stats.py checks each against scipy."""

from __future__ import annotations

import math

import numpy as np

_LANCZOS = np.array([
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
    -176.61502916214059, 12.507343278686905, -0.13857109526572012,
    9.9843695780195716e-6, 1.5056327351493116e-7])


def log_gamma(a: np.ndarray) -> np.ndarray:
    """ln Γ(a) for a > 0 (Lanczos, g = 7; relative error ~1e-15)."""
    a = np.asarray(a, dtype=np.float64)
    small = a < 0.5
    z = np.where(small, 1.0 - a, a) - 1.0
    series = _LANCZOS[0] + sum(_LANCZOS[i] / (z + i) for i in range(1, 9))
    t = z + 7.5
    large = 0.5 * math.log(2 * math.pi) + (z + 0.5) * np.log(t) - t + np.log(series)
    with np.errstate(divide="ignore"):
        reflected = math.log(math.pi) - np.log(np.abs(np.sin(math.pi * a))) - large
    return np.where(small, reflected, large)


def gamma_q(a: np.ndarray, x: np.ndarray, iterations: int = 500) -> np.ndarray:
    """Regularised upper incomplete gamma Q(a, x), elementwise (a > 0, x >= 0).

    Series for x < a + 1, Lentz's continued fraction otherwise (Numerical Recipes 6.2);
    iterations run over the whole array at once.
    """
    a, x = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(x, dtype=np.float64))
    a, x = a.astype(np.float64), x.astype(np.float64)
    result = np.ones_like(x)
    positive = x > 0
    log_front = np.where(positive, -x + a * np.log(np.where(positive, x, 1.0)) - log_gamma(a),
                         0.0)
    use_series = positive & (x < a + 1)
    if use_series.any():
        aa, xx = a[use_series], x[use_series]
        term = 1.0 / aa
        total = term.copy()
        denominator = aa.copy()
        for _ in range(iterations):
            denominator = denominator + 1.0
            term = term * xx / denominator
            total = total + term
            if np.all(np.abs(term) < np.abs(total) * 1e-16):
                break
        result[use_series] = 1.0 - total * np.exp(log_front[use_series])
    use_fraction = positive & ~use_series
    if use_fraction.any():
        aa, xx = a[use_fraction], x[use_fraction]
        tiny = 1e-300
        b = xx + 1.0 - aa
        c = np.full_like(b, 1.0 / tiny)
        d = 1.0 / b
        h = d.copy()
        for i in range(1, iterations + 1):
            an = -i * (i - aa)
            b = b + 2.0
            d = an * d + b
            d = np.where(np.abs(d) < tiny, tiny, d)
            c = b + an / c
            c = np.where(np.abs(c) < tiny, tiny, c)
            d = 1.0 / d
            delta = d * c
            h = h * delta
            if np.all(np.abs(delta - 1.0) < 1e-16):
                break
        result[use_fraction] = np.exp(log_front[use_fraction]) * h
    return np.clip(result, 0.0, 1.0)


def chi2_sf(statistic: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """P(X >= statistic) for X ~ chi-square(dof)."""
    return gamma_q(np.asarray(dof, dtype=np.float64) / 2.0,
                   np.maximum(np.asarray(statistic, dtype=np.float64), 0.0) / 2.0)


def normal_two_sided(z: np.ndarray) -> np.ndarray:
    """P(|Z| >= |z|) for a standard normal Z (= erfc(|z|/sqrt 2) = Q(1/2, z^2/2))."""
    z = np.asarray(z, dtype=np.float64)
    return gamma_q(np.full_like(z, 0.5), z * z / 2.0)


def kolmogorov_sf(lam: np.ndarray, terms: int = 100) -> np.ndarray:
    """Q_KS(λ) = P(sup|B(t)| >= λ) of the Kolmogorov distribution (scipy's kstwobign.sf)."""
    lam = np.asarray(lam, dtype=np.float64)
    k = np.arange(1, terms + 1, dtype=np.float64)
    safe = np.maximum(lam, 1e-12)[..., None]
    # Small λ: the Jacobi-theta form converges fast; large λ: the alternating series does.
    odd = (2 * k - 1) ** 2
    cdf_small = (math.sqrt(2 * math.pi) / safe[..., 0]) * np.exp(
        -odd * math.pi ** 2 / (8 * safe ** 2)).sum(axis=-1)
    sf_large = 2 * (((-1.0) ** (k - 1)) * np.exp(-2 * k ** 2 * safe ** 2)).sum(axis=-1)
    result = np.where(lam < 1.0, 1.0 - cdf_small, sf_large)
    return np.clip(np.where(lam <= 0, 1.0, result), 0.0, 1.0)

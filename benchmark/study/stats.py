"""Statistics over seeds that every table, figure and claim of a page shares.

``seed_sd`` is the one sample standard deviation over seeds (ddof = 1; NaN with fewer than two seeds);
``summary`` the mean, sd, count and non-finite count of one cell; an ∞ among the seeds is never averaged.
``hodges_lehmann`` is the rank test's difference and its distribution-free interval (from the exact null
distribution of Mann–Whitney's U, ``u_null_counts``). The claims' tests (Welch, bootstrap, Mann–Whitney, Holm)
are ``claims.py``'s.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import stats

EXACT_U = 2500  # m x n up to which U's null distribution is counted exactly (normal approximation beyond)


def seed_sd(values: Sequence[float]) -> float:
    """Sample standard deviation over seeds (ddof = 1); NaN with fewer than two."""
    a = np.asarray(values, dtype=float)
    return float(a.std(ddof=1)) if len(a) > 1 else math.nan


def summary(values: pd.Series | Sequence[float]) -> pd.Series:
    """mean and sample sd (ddof = 1) over seeds, n and the count of non-finite values; with any non-finite
    value neither the mean nor the sd is computed (``inf``: 1.0 when one of them is infinite)."""
    a = np.asarray(values, dtype=float)
    bad = int((~np.isfinite(a)).sum())
    if bad:
        return pd.Series(
            {"mean": math.nan, "std": math.nan, "n": len(a), "nonfinite": bad, "inf": float(np.isinf(a).any())}
        )
    return pd.Series({"mean": float(a.mean()), "std": seed_sd(a), "n": len(a), "nonfinite": 0, "inf": 0.0})


def mean_if_finite(values: pd.Series | Sequence[float]) -> float:
    """The mean over seeds, or NaN (not drawn) when any seed is non-finite: an ∞ is never averaged."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()) if np.isfinite(a).all() else math.nan


def final_values(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of each trial's last scored step (never a mean over steps)."""
    if df.empty:
        return df
    return df[df["step"] == df.groupby("key")["step"].transform("max")]


def u_null_counts(m: int, n: int) -> np.ndarray:
    """How many of the C(m + n, m) equally likely rankings give U = 0, 1, ..., m n (no ties): the recursion
    N(i, j, u) = N(i − 1, j, u − j) + N(i, j − 1, u) over the largest pooled value."""
    prev = [np.ones(1) for _ in range(n + 1)]  # i = 0: U = 0 whatever j
    for i in range(1, m + 1):
        cur = [np.ones(1)]  # j = 0
        for j in range(1, n + 1):
            a = np.zeros(i * j + 1)
            a[j : j + len(prev[j])] += prev[j]  # the largest value is one of the i: it beats the j others
            a[: len(cur[j - 1])] += cur[j - 1]  # ... or one of the j
            cur.append(a)
        prev = cur
    return prev[n]


def u_cut(m: int, n: int, alpha: float) -> int:
    """k, the pairwise differences cut from each end of a (1 − alpha) Hodges–Lehmann interval: the largest k with
    P(U ≤ k − 1) ≤ alpha / 2 under the null (counted exactly up to EXACT_U, else the normal approximation);
    0: the interval is unbounded (with 3 seeds per arm, P(U = 0) = 1/20 > 0.025)."""
    if m * n <= EXACT_U:
        counts = u_null_counts(m, n)
        cdf = np.cumsum(counts) / counts.sum()
        k = 0
        while k < len(cdf) and cdf[k] <= alpha / 2:
            k += 1
        return k
    z = stats.norm.ppf(1 - alpha / 2)
    return max(0, int(math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12))))


def hodges_lehmann(a: Sequence[float], b: Sequence[float], alpha: float) -> Tuple[float, float, float]:
    """(estimate, low, high): the median of the pairwise differences a_i − b_j and its distribution-free
    (1 − alpha) interval [d_(k), d_(mn + 1 − k)] (``u_cut``; ±∞ when k = 0). ∞ − ∞ of one sign is a tie (0)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(invalid="ignore"):
        d = np.subtract.outer(a, b).ravel()
    d = np.sort(np.where(np.isnan(d), 0.0, d))
    k = u_cut(len(a), len(b), alpha)
    lo, hi = (float(d[k - 1]), float(d[len(d) - k])) if k else (-math.inf, math.inf)
    return float(np.median(d)), lo, hi


__all__ = ["seed_sd", "summary", "mean_if_finite", "final_values", "hodges_lehmann", "u_cut", "u_null_counts"]

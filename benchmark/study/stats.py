"""Statistics over seeds that every table, figure and claim of a page shares.

``seed_sd`` is the one sample standard deviation over seeds (ddof = 1; NaN with fewer than two seeds);
``summary`` the mean, sd, count and non-finite count of one cell; an ∞ among the seeds is never averaged.
The claims' tests (Welch, bootstrap, Holm) are ``claims.py``'s.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd


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


__all__ = ["seed_sd", "summary", "mean_if_finite", "final_values"]

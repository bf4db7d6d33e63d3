"""How the study stage writes a number: one formatter for every table, claim and page.

* ``num``: a score, with digits by its size (0 at 100 and above, 1 from 10, 2 from 1, 3 below), – for a
  missing value, ∞ / −∞ for an infinite one;
* ``mean_sd``: a mean over seeds and its sample sd, both with the mean's digits ("3.00 ± 1.00");
* ``p_value``: two significant digits, scientific below 0.001;
* ``nonfinite``: what a column over seeds with a non-finite value says instead of a mean ("∞ (2 of 3 seeds)",
  "nan (1 of 3 seeds)"), from ``of_seeds`` ("2 of 3 seeds"), which the regression gate's notes use too;
* ``fixed``: the parallel-lines table's three decimals (a vanishing gradient keeps its size: 2.00e-05).

Pure: numbers in, text out (no pandas, no torch), so the claims and the gate import it for nothing.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

MISSING = "–"


def digits(x: float) -> int:
    """Decimals of a score by its size: 0 at |x| ≥ 100, 1 from 10, 2 from 1, 3 below."""
    mag = abs(x)
    return 0 if mag >= 100 else 1 if mag >= 10 else 2 if mag >= 1 else 3


def num(x: Optional[float]) -> str:
    """A score: – when missing (None, NaN), ∞ / −∞ when infinite, else with ``digits(x)`` decimals."""
    if x is None or x != x:
        return MISSING
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{digits(x)}f}"


def mean_sd(mean: Optional[float], sd: float = math.nan) -> str:
    """A mean over seeds and its sample sd with the mean's decimals; the mean alone when the sd is NaN."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)) or math.isinf(mean):
        return num(mean)
    d = digits(mean)
    if isinstance(sd, (int, float)) and not math.isnan(sd):
        return f"{mean:.{d}f} ± {sd:.{d}f}"
    return f"{mean:.{d}f}"


def p_value(p: float) -> str:
    if p != p:
        return MISSING
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def of_seeds(k: int, n: int) -> str:
    return f"{k} of {n} seeds"


def nonfinite(k: int, n: int, infinite: bool) -> str:
    """In place of a mean over ``n`` seeds of which ``k`` are non-finite: ∞ when one is infinite, else nan."""
    return f"{'∞' if infinite else 'nan'} ({of_seeds(k, n)})"


def nonfinite_text(values: Sequence[float] | Any) -> str:
    """``nonfinite`` of an array of per-seed values."""
    a = np.asarray(values, dtype=float)
    return nonfinite(int((~np.isfinite(a)).sum()), len(a), bool(np.isinf(a).any()))


def fixed(x: Any, small: bool = False) -> str:
    """Three decimals (−0.000 is 0.000); ``small``: a nonzero |x| < 0.0005 as x.xxe-yy instead of 0.000."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(x):
        return MISSING
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if small and x != 0 and abs(x) < 0.0005:  # a vanishing gradient would print as 0.000: keep its size visible
        return f"{x:.2e}"
    s = f"{x:.3f}"
    return "0.000" if s == "-0.000" else s


__all__ = ["MISSING", "digits", "num", "mean_sd", "p_value", "of_seeds", "nonfinite", "nonfinite_text", "fixed"]

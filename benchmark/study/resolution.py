"""Where along training a claim's question resolves, and what an unresolved one would need.

Each claim is decided again as if the budget had ended at each evaluation point (``along_training``: the same
test and Holm correction over the page); the point from which the final verdict holds to the end is where it
resolves (``resolved_from``). For a claim not resolved whose observed difference has the claimed sign,
``seeds_needed`` is the seeds per arm a two-sample t-test would need for 80 % power at Holm's strictest level over
the page, were the observed difference and pooled sd the truth (a rank test: that divided by its asymptotic
relative efficiency 3/π, and at least the seeds at which its exact p can reach the level at all): a planning
figure, not a verdict. With the opposite sign there is none: more seeds would only confirm the opposite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.study.claims import (
    ALPHA,
    CONTRADICTED,
    MIN_SEEDS,
    SUPPORTED,
    UNRESOLVED,
    UNTESTED,
    Claim,
    Decision,
    decide,
)
from benchmark.study.validity import Guards

POWER = 0.8  # the power asked of a future run in seeds_needed
MAX_SEEDS_NEEDED = 1000
RANK_EFFICIENCY = 3 / math.pi  # Mann–Whitney's asymptotic relative efficiency to the t-test under normality
OPPOSITE = "the observed difference has the opposite sign"


def truncate(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """Each trial's records at its first ``k`` evaluation points (ranked by step within variant and seed), so a
    claim can be decided as if the budget had ended there; arms with other step counts stay comparable."""
    if df.empty:
        return df
    rank = df.groupby(["variant", "seed"])["step"].rank(method="dense")
    return df[rank <= k]


def along_training(
    claims: Sequence[Claim],
    df: pd.DataFrame,
    arms: Sequence[str],
    eval_at: Sequence[float] = (),
    guards: Optional[Guards] = None,
) -> List[List[str]]:
    """Per claim, its verdict (Holm over the page, as in ``decide``; the learned gate on the values of that
    point) had the budget ended at each evaluation point in turn: ``[[verdict at point 1, ..., at the last
    point], ...]``."""
    points = int(df.groupby(["variant", "seed"])["step"].nunique().max()) if not df.empty else 0
    out: List[List[str]] = [[] for _ in claims]
    for k in range(1, points + 1):
        # a claim 'at: 0.5' asks for one fixed point: it has no verdict before the budget reaches it
        rows = decide(claims, truncate(df, k) if k < points else df, arms, eval_at, guards)
        for i, r in enumerate(rows):
            out[i].append(r.verdict)
    return out


def resolved_from(verdicts: Sequence[str]) -> Optional[int]:
    """The first evaluation point (1-based) from which the verdict is supported or contradicted and stays so to
    the end of the budget; None when the last verdict is neither."""
    if not verdicts or verdicts[-1] not in (SUPPORTED, CONTRADICTED):
        return None
    k = len(verdicts)
    while k > 1 and verdicts[k - 2] == verdicts[-1]:
        k -= 1
    return k


def rank_seeds(alpha: float) -> int:
    """The fewest seeds per arm at which the exact two-sided rank test can reach ``alpha`` at all (complete
    separation: p = 2 / C(2n, n))."""
    n = 2
    while 2 / math.comb(2 * n, n) > alpha and n < MAX_SEEDS_NEEDED:
        n += 1
    return n


def seeds_needed(
    a: Sequence[float], b: Sequence[float], power: float = POWER, alpha: float = ALPHA, test: str = "welch"
) -> float:
    """Seeds per arm a two-sided two-sample t-test at ``alpha`` (a page of m claims: α / m, the strictest level
    of Holm's procedure) would need for ``power`` if the observed
    difference of means and the pooled standard deviation were the truth (noncentral t); nan when the observed
    difference is 0 or undefined, inf beyond MAX_SEEDS_NEEDED. ``test`` 'mannwhitney': that divided by
    RANK_EFFICIENCY and at least ``rank_seeds(alpha)``. A planning figure, not a verdict."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.nan
    sd = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    diff = abs(float(a.mean() - b.mean()))
    if diff == 0:
        return math.nan
    floor = max(MIN_SEEDS, rank_seeds(alpha)) if test == "mannwhitney" else MIN_SEEDS
    if sd == 0:
        return float(floor)
    d = diff / sd
    for n in range(2, MAX_SEEDS_NEEDED + 1):
        df_ = 2 * n - 2
        t = stats.t.ppf(1 - alpha / 2, df_)
        nc = d * math.sqrt(n / 2)
        if stats.nct.sf(t, df_, nc) + stats.nct.cdf(-t, df_, nc) >= power:
            if test == "mannwhitney":
                n = math.ceil(n / RANK_EFFICIENCY)
            return float(max(n, floor)) if n <= MAX_SEEDS_NEEDED else math.inf
    return math.inf


def planned_tests(decided: Sequence[Decision]) -> int:
    """m, the page's claims that are tests (at least 1; not by construction, ill-posed or not decidable): Holm's
    strictest level is α / m."""
    return max(1, sum(d.verdict not in UNTESTED for d in decided))


@dataclass(frozen=True)
class Need:
    """The seeds per arm one comparison of an unresolved claim would need (``computed``: it was asked)."""

    other: str  # the compared arm (for a claim without comparisons: its vs as written)
    seeds: float  # NaN when not asked or undefined, inf beyond MAX_SEEDS_NEEDED
    computed: bool
    why: str = ""  # why it was not asked of a comparison of an unresolved claim (OPPOSITE)


@dataclass(frozen=True)
class Resolution:
    """A decided claim along training: its verdict at each point, where it resolves, what it would need."""

    decision: Decision
    verdicts: Tuple[str, ...]
    point: Optional[int]  # resolves from this evaluation point (1-based); None: it does not
    fraction: float  # that point as a fraction of the budget (NaN when none)
    needs: Tuple[Need, ...]  # per comparison (one, not computed, for a claim without comparisons)


def resolve(
    decided: Sequence[Decision], along: Sequence[Sequence[str]], fractions: Sequence[float]
) -> List[Resolution]:
    """Each decided claim's ``Resolution``; the seeds needed at α / m over the page's m claims that are tests."""
    m = planned_tests(decided)
    out = []
    for d, verdicts in zip(decided, along):
        c = d.claim
        k = resolved_from(verdicts)
        frac = fractions[k - 1] if k is not None and k - 1 < len(fractions) else math.nan
        needs = []
        for x in d.comparisons or [None]:
            if x is not None and d.verdict == UNRESOLVED and np.sign(x.diff) == -c.sign:
                needs.append(Need(x.other, math.nan, False, OPPOSITE))
            elif x is not None and d.verdict == UNRESOLVED:
                a, b = d.values[c.arm].to_numpy(), d.values[x.other].to_numpy()
                needs.append(Need(x.other, seeds_needed(a, b, alpha=ALPHA / m, test=c.test), True))
            else:
                needs.append(Need(x.other if x else ",".join(c.vs) or "others", math.nan, False))
        out.append(Resolution(d, tuple(verdicts), k, frac, tuple(needs)))
    return out


__all__ = [
    "POWER",
    "MAX_SEEDS_NEEDED",
    "OPPOSITE",
    "RANK_EFFICIENCY",
    "Need",
    "Resolution",
    "along_training",
    "planned_tests",
    "rank_seeds",
    "resolve",
    "resolved_from",
    "seeds_needed",
    "truncate",
]

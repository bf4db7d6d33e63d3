"""Declarative claims about a study, decided over seeds by a stated statistical test.

A claim is data, never code (nothing read from YAML or a results folder is executed)::

    report:
      claims:
        - claim: "λ = 1 is too weak: worse FID than λ = 10"   # the statement, as the tutorials make it
          metric: fid            # a score name, exact (fid5k_test) or by base name (fid)
          arm: gp_lambda=1       # the arm the claim is about
          vs: gp_lambda=10       # one arm, a list of arms, or "others" (every other arm; default)
          expect: worse          # better | worse (by the score's direction) | higher | lower
          at: final              # final (default) | worst | best (per seed, over the evaluation points) | 0.5
                                 #   | drop: per seed, the largest fall from the best value so far (what was
                                 #   lost during training: collapse); expect higher/lower
          of: value              # value (default) | spread: each seed's |score − its arm's median|, so the
                                 #   test compares the spread over seeds (Brown–Forsythe); expect higher/lower
          test: welch            # welch | bootstrap | mannwhitney (default: mannwhitney for a bounded or
                                 #   heavy-tailed score, DEFAULT_RANK_TEST's rule; welch otherwise)
        - claim: "|∇D| ≠ 1 at λ = 0"
          metric: grad_norm_mean_last
          arm: gp_lambda=0
          vs: gp_lambda=10
          expect: higher
          by_construction: "λ = 0 has no penalty that pulls |∇D| to 1"   # printed, never tested

Decision (``decide``): per comparison (the arm against each arm of ``vs``) the difference of means over seeds
(arm − other), its 95 % interval and a two-sided p from Welch's t-test (``scipy.stats.ttest_ind(equal_var=
False)``) or from a seeded bootstrap of the difference of means; or, by the rank test (``mannwhitney``), the
Hodges–Lehmann difference, its distribution-free interval and the Mann–Whitney U p. The rank test is the
default for a score with a declared bound (counts and shares: classes covered, modes, hq, precision, recall,
label agreement, unreadable share), whose seeds pile up at the bound, and for the heavy-tailed reverse KL
(``HEAVY_TAILED``: ∞ when a seed has no high-quality sample), which it ranks where a mean is undefined; Welch's
t-test otherwise, and always for ``of: spread`` (Brown–Forsythe). With several comparisons (``vs: others``)
the claim is an intersection-union test: its p is the largest of the comparisons' p when every difference
has the expected sign. The claims of one page are Holm-corrected together; at α = 0.05 a claim is

* **supported**: Holm-adjusted p < α and the difference has the expected sign (for every comparison);
* **contradicted**: Holm-adjusted p < α with a difference of the opposite sign;
* **not resolved**: otherwise, and always with fewer than 3 seeds in an arm or a non-finite value (an
  ∞ is reported as such, never averaged; the rank test ranks an ∞, never a NaN);
* **ill-posed** (given the page's ``validity.Guards``): the score cannot tell real data from a known failure
  that the learned gate does not rule out, or every seed of every arm sits at the score's bound (saturated);
* **not decidable** (given the guards): an arm of the claim did not pass the learned gate.

``decide`` returns one ``Decision`` per claim, the same fields whatever path it took; a verdict that is no
test's outcome (by construction) keeps ``p`` NaN and says why in ``reason``. Where along training the
verdict settles, and the seeds an unresolved claim would need: ``resolution.py``; the claims' tables:
``tables.py`` (CSV) and ``render.py`` (Markdown).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.errors import UserError, did_you_mean
from benchmark.evaluation.scores import declared, direction, metric_base, resolve
from benchmark.study.formatting import nonfinite_text, p_value
from benchmark.study.stats import hodges_lehmann
from benchmark.study.validity import Guards

ALPHA = 0.05
MIN_SEEDS = 3
TESTS = ("welch", "bootstrap", "mannwhitney")
HEAVY_TAILED = ("rkl",)  # score bases whose seeds may be ∞ or far apart: the rank test by default
PERMUTATIONS = 10_000  # with ties, the rank test's p enumerates every split of the pooled seeds up to this many
EXPECT = ("better", "worse", "higher", "lower")
AT = ("final", "worst", "best", "drop")
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CLAIM_KEYS = ("claim", "metric", "arm", "vs", "expect", "at", "of", "test", "by_construction", "note")
OF = ("value", "spread")
REFERENCE_KEYS = ("arm", "method", "data", "metric", "value", "spread", "statistic", "trials", "source", "caveat")
STATISTICS = ("mean ± sd", "mean ± se", "mean")
SUPPORTED, CONTRADICTED, UNRESOLVED, NOT_A_TEST = "supported", "contradicted", "not resolved", "not a test"
ILL_POSED, NOT_DECIDABLE = "ill-posed", "not decidable"
VERDICTS = (SUPPORTED, CONTRADICTED, UNRESOLVED, NOT_A_TEST, ILL_POSED, NOT_DECIDABLE)
UNTESTED = (NOT_A_TEST, ILL_POSED, NOT_DECIDABLE)  # verdicts that are no test's outcome (p stays NaN)


@dataclass(frozen=True)
class Claim:
    text: str
    metric: str
    arm: str
    vs: Tuple[str, ...]  # () means "others"
    expect: str
    at: str = "final"
    test: str = "welch"
    by_construction: str = ""
    note: str = ""
    of: str = "value"  # value: the score per seed; spread: each seed's |score − the arm's median| (Brown–Forsythe)

    @property
    def sign(self) -> int:
        """The expected sign of mean(arm) − mean(other)."""
        if self.expect in ("higher", "lower"):
            return 1 if self.expect == "higher" else -1
        return metric_direction(self.metric) * (1 if self.expect == "better" else -1)

    def others(self, arms: Sequence[str]) -> List[str]:
        return list(self.vs) if self.vs else [a for a in arms if a != self.arm]


def _bases() -> Dict[str, int]:
    return {s.base: s.direction for _, s in declared()}


def metric_direction(metric: str) -> int:
    """The better direction of a score named exactly (fid5k_test) or by its base (fid)."""
    return direction(metric) or _bases().get(metric, 0)


def default_test(metric: str, of: str = "value") -> str:
    """The test of a claim that names none: the rank test for a bounded (declared ``bound``) or heavy-tailed
    score, Welch's t-test otherwise and for a claim about the spread over seeds (Brown–Forsythe)."""
    r = resolve(metric)
    spec = r["spec"] if r else next((s for _, s in declared() if s.base == metric), None)
    if of == "spread" or spec is None:
        return "welch"
    return "mannwhitney" if spec.bound is not None or spec.base in HEAVY_TAILED else "welch"


# ------------------------------------------------------------------------------------------------
# parsing and validation (called by the study spec check, before anything trains)


def _name(x: Any) -> bool:
    return isinstance(x, str) and bool(x) and all(c.isalnum() or c == "_" for c in x)


def parse_claim(raw: Any, where: str, arms: Optional[Sequence[str]] = None) -> Claim:
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: a claim must be a mapping with keys {', '.join(CLAIM_KEYS)}")
    if "check" in raw:
        raise UserError(
            f"{where}: 'check' expressions are not run (no code from data); state the claim as "
            "metric, arm, vs, expect and test"
        )
    unknown = [k for k in raw if k not in CLAIM_KEYS]
    if unknown:
        raise UserError(
            f"{where}: unknown key '{unknown[0]}'{did_you_mean(str(unknown[0]), CLAIM_KEYS)}; "
            f"valid: {', '.join(CLAIM_KEYS)}"
        )
    for k in ("claim", "metric", "arm", "expect"):
        if k not in raw or raw[k] in (None, ""):
            raise UserError(f"{where}: missing '{k}'; a claim needs claim, metric, arm and expect")
    for k in ("claim", "arm", "by_construction", "note"):
        if k in raw and not isinstance(raw[k], str):
            raise UserError(f"{where}: '{k}' must be a string, got {type(raw[k]).__name__}")
    metric = raw["metric"]
    if not _name(metric):
        raise UserError(f"{where}: 'metric' must be a score name of letters, digits and _ (e.g. fid), got {metric!r}")
    if resolve(metric) is None and metric not in _bases():
        bases = sorted(_bases())
        raise UserError(
            f"{where}: unknown score '{metric}'{did_you_mean(metric, bases)}; name a score base "
            f"({', '.join(bases)}) or a full score name such as fid10k_test"
        )
    expect = raw["expect"]
    if expect not in EXPECT:
        raise UserError(f"{where}: 'expect' is {expect!r}; allowed: {', '.join(EXPECT)}")
    if expect in ("better", "worse") and metric_direction(metric) == 0:
        raise UserError(f"{where}: '{metric}' has no better direction; use expect: higher or lower")
    test = raw.get("test") or default_test(metric, raw.get("of", "value"))
    if test not in TESTS:
        raise UserError(f"{where}: unknown test {test!r}{did_you_mean(str(test), TESTS)}; allowed: {', '.join(TESTS)}")
    at = raw.get("at", "final")
    if isinstance(at, bool) or not (at in AT or (isinstance(at, (int, float)) and math.isfinite(at) and 0 < at <= 1)):
        raise UserError(f"{where}: 'at' is {at!r}; allowed: {', '.join(AT)} or a fraction of the budget in (0, 1]")
    if at == "drop" and (expect not in ("higher", "lower") or metric_direction(metric) == 0):
        raise UserError(
            f"{where}: 'at: drop' (the largest fall from the best value so far) needs a score with a better "
            "direction and expect: higher or lower (a larger drop is higher)"
        )
    of = raw.get("of", "value")
    if of not in OF:
        raise UserError(f"{where}: 'of' is {of!r}; allowed: {', '.join(OF)}")
    if of == "spread" and expect not in ("higher", "lower"):
        raise UserError(f"{where}: a claim about the spread over seeds needs expect: higher or lower")
    vs = raw.get("vs", "others")
    if vs == "others":
        vs_t: Tuple[str, ...] = ()
    elif isinstance(vs, str):
        vs_t = (vs,)
    elif isinstance(vs, list) and vs and all(isinstance(v, str) for v in vs):
        vs_t = tuple(vs)
    else:
        raise UserError(f"{where}: 'vs' must be an arm name, a list of arm names or 'others', got {vs!r}")
    if raw["arm"] in vs_t:
        raise UserError(f"{where}: arm '{raw['arm']}' is compared with itself; name other arms in 'vs'")
    if arms is not None:
        for a in (raw["arm"], *vs_t):
            if a not in arms:
                raise UserError(f"{where}: unknown arm '{a}'{did_you_mean(a, arms)}; arms: {', '.join(arms)}")
    return Claim(
        text=raw["claim"],
        metric=metric,
        arm=raw["arm"],
        vs=vs_t,
        expect=expect,
        at=str(at) if not isinstance(at, str) else at,
        test=test,
        of=of,
        by_construction=raw.get("by_construction", ""),
        note=raw.get("note", ""),
    )


def _check_reference(raw: Any, where: str, arms: Optional[Sequence[str]]) -> None:
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: a reference must be a mapping with keys {', '.join(REFERENCE_KEYS)}")
    unknown = [k for k in raw if k not in REFERENCE_KEYS]
    if unknown:
        raise UserError(
            f"{where}: unknown key '{unknown[0]}'{did_you_mean(str(unknown[0]), REFERENCE_KEYS)}; "
            f"valid: {', '.join(REFERENCE_KEYS)}"
        )
    for k in ("metric", "value", "statistic", "source"):
        if k not in raw:
            raise UserError(f"{where}: missing '{k}'; a reference needs metric, value, statistic and source")
    for k in ("value", "spread"):
        v = raw.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise UserError(f"{where}: '{k}' must be a finite number, got {v!r}")
    if raw["statistic"] not in STATISTICS:
        raise UserError(f"{where}: 'statistic' is {raw['statistic']!r}; allowed: {', '.join(STATISTICS)}")
    t = raw.get("trials")
    if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t < 1):
        raise UserError(f"{where}: 'trials' must be a positive whole number, got {t!r}")
    if arms is not None and raw.get("arm") is not None and raw["arm"] not in arms:
        raise UserError(
            f"{where}: unknown arm '{raw['arm']}'{did_you_mean(str(raw['arm']), arms)}; arms: {', '.join(arms)}"
        )


def check_claims(
    report: Any, where: str = "study", arms: Optional[Sequence[str]] = None, eval_at: Optional[Sequence[float]] = None
) -> List[Claim]:
    """Validate a spec's ``report`` mapping (its ``claims`` and ``references``); return the parsed claims.

    Raises a one-line UserError naming the claim and the fix. ``arms``: the study's arm names, when known;
    ``eval_at``: its evaluation points (a claim's numeric ``at`` must be one of them), when known.
    """
    if report is None:
        return []
    if not isinstance(report, Mapping):
        raise UserError(f"{where}: 'report' must be a mapping")
    raw = report.get("claims") or []
    if not isinstance(raw, list):
        raise UserError(f"{where}: 'report.claims' must be a list of claims")
    out = [parse_claim(c, f"{where}: report.claims[{i}]", arms) for i, c in enumerate(raw)]
    points = sorted(set(float(f) for f in eval_at)) if eval_at else None
    for i, c in enumerate(out):
        if points is not None and c.at not in AT and float(c.at) not in points:
            raise UserError(
                f"{where}: report.claims[{i}]: 'at: {c.at}' is not an evaluation point; "
                f"eval_at: {', '.join(map(str, points))}"
            )
    refs = report.get("references") or []
    if not isinstance(refs, list):
        raise UserError(f"{where}: 'report.references' must be a list")
    for i, r in enumerate(refs):
        _check_reference(r, f"{where}: report.references[{i}]", arms)
    return out


# ------------------------------------------------------------------------------------------------
# statistics


@dataclass(frozen=True)
class Comparison:
    other: str
    diff: float  # mean(arm) − mean(other)
    lo: float
    hi: float
    p: float


def welch(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Difference of means, its 95 % Welch interval and the two-sided Welch p."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:  # no spread in either arm: the t statistic is undefined
        return Comparison("", diff, diff, diff, 1.0 if diff == 0 else math.nan)
    with warnings.catch_warnings():
        # an arm whose seeds agree exactly (all cover 10 classes) has variance 0: exact here, yet scipy warns
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        r = stats.ttest_ind(a, b, equal_var=False)
        ci = r.confidence_interval(1 - ALPHA)
    return Comparison("", diff, float(ci.low), float(ci.high), float(r.pvalue))


def bootstrap(
    a: Sequence[float], b: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Comparison:
    """Difference of means with a percentile 95 % interval from resampling each arm (seeded), and the two-sided
    bootstrap p = 2 min(P*(d ≤ 0), P*(d ≥ 0)), each share counted as (k + 1) / (B + 1), capped at 1."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    da = a[rng.integers(0, len(a), (resamples, len(a)))].mean(1)
    db = b[rng.integers(0, len(b), (resamples, len(b)))].mean(1)
    d = da - db
    lo, hi = np.quantile(d, [ALPHA / 2, 1 - ALPHA / 2])
    # (k + 1) / (B + 1): a bootstrap p is never exactly 0
    p = min(1.0, 2 * min(((d <= 0).sum() + 1) / (resamples + 1), ((d >= 0).sum() + 1) / (resamples + 1)))
    return Comparison("", float(a.mean() - b.mean()), float(lo), float(hi), p)


def mannwhitney(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """The rank test (``scipy.stats.mannwhitneyu``, two-sided): its exact p without ties when an arm has at most
    8 seeds (scipy's 'auto'); with ties, a permutation test over every split of the pooled seeds
    (``PermutationMethod``, exact up to PERMUTATIONS splits, else that many seeded resamples); the tie-corrected
    normal approximation otherwise. The difference is the Hodges–Lehmann estimate (median of the pairwise
    differences arm − other) and its distribution-free 95 % interval (``stats.hodges_lehmann``). An ∞ ranks."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    pooled = np.concatenate([a, b])
    method: Any = "auto"
    if len(np.unique(pooled)) < len(pooled):  # ties: the exact null distribution of U assumes none
        method = stats.PermutationMethod(n_resamples=PERMUTATIONS, rng=BOOTSTRAP_SEED)
    r = stats.mannwhitneyu(a, b, alternative="two-sided", method=method)
    est, lo, hi = hodges_lehmann(a, b, ALPHA)
    return Comparison("", est, lo, hi, float(r.pvalue))


def holm(p: Sequence[float]) -> List[float]:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN and does not count among the tests)."""
    p = list(p)
    idx = sorted((i for i, x in enumerate(p) if x == x), key=lambda i: p[i])
    m = len(idx)
    out = [math.nan] * len(p)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


# ------------------------------------------------------------------------------------------------
# values per seed and convergence


def resolve_metric(df: pd.DataFrame, metric: str) -> Optional[str]:
    """The score name in ``df`` a claim's metric refers to (exact, else by base name), or None."""
    names = sorted(set(df["metric"])) if not df.empty else []
    if metric in names:
        return metric
    hits = [m for m in names if metric_base(m) == metric]
    return hits[0] if hits else None


def per_seed(df: pd.DataFrame, arm: str, metric: str, at: str = "final", eval_at: Sequence[float] = ()) -> pd.Series:
    """One value per seed of ``arm`` (index: seed): at the trial's last scored step ('final'), at its worst or
    best evaluation point by the score's direction ('worst', 'best'), or at the point ``eval_at`` fraction."""
    sub = df[(df["variant"] == arm) & (df["metric"] == metric)]
    if sub.empty:
        return pd.Series(dtype=float)
    out = {}
    d = metric_direction(metric) or 1
    for seed, s in sub.groupby("seed"):
        s = s.sort_values("step")
        if at == "final":
            out[seed] = float(s["value"].iloc[-1])
        elif at == "drop":  # lost during training: best so far minus now, at its largest (0: never fell)
            v = s["value"].to_numpy(float) * d
            out[seed] = float(np.max(np.maximum.accumulate(v) - v))
        elif at in ("worst", "best"):
            v = s["value"].to_numpy(float)
            worst = v.min() if d > 0 else v.max()
            best = v.max() if d > 0 else v.min()
            out[seed] = float(worst if at == "worst" else best)
        else:
            points = sorted(set(float(f) for f in eval_at))
            f = float(at)
            if f not in points:
                raise UserError(f"claim 'at: {at}' is not an evaluation point of the study; eval_at: {points}")
            i = points.index(f)
            steps = sorted(s["step"].unique())
            if i < len(steps):
                out[seed] = float(s[s["step"] == steps[i]]["value"].iloc[-1])
    return pd.Series(out, dtype=float).sort_index()


@dataclass(frozen=True)
class Convergence:
    """Does a score still move for an arm at the end of its budget? The slope over its last CONVERGENCE_POINTS
    evaluation points, fitted within each seed (least squares with one intercept per seed, so the seeds' own
    levels do not count as noise), against its standard error."""

    delta: float  # the fitted change over the window (slope x the window's mean span of steps); NaN: not measured
    se: float  # its standard error (NaN: too few points to estimate it)
    moving: bool  # |slope| > CONVERGENCE_Z x its standard error
    improving: bool  # moving in the score's better direction (for a score without one: moving)
    points: int  # evaluation points of the arm's longest seed
    window: int = 0  # points per seed in the fitted window


CONVERGENCE_POINTS = 3  # k: the last k evaluation points of each seed
CONVERGENCE_Z = 2.0  # moving when the slope is more than this many standard errors from 0


def convergence(df: pd.DataFrame, arm: str, metric: str, k: int = CONVERGENCE_POINTS) -> Convergence:
    """``metric``'s slope for ``arm`` over the last ``k`` evaluation points of each seed against its standard
    error: slope = Σ x y / Σ x² over every seed's (step, value) centred on that seed's own means, SE =
    sqrt(RSS / (N − seeds − 1) / Σ x²). NaN (not measured) with one point or a non-finite value; SE NaN (too few
    points) when N − seeds − 1 < 1 (one seed with two points)."""
    sub = df[(df["variant"] == arm) & (df["metric"] == metric)]
    xs, ys, spans, points, window = [], [], [], 0, 0
    for _, s in sub.groupby("seed"):
        s = s.sort_values("step")
        points = max(points, len(s))
        tail = s.tail(k)
        if len(tail) < 2:
            continue
        x, y = tail["step"].to_numpy(float), tail["value"].to_numpy(float)
        if not np.isfinite(y).all():  # ∞ - ∞ is no change we can measure
            return Convergence(math.nan, math.nan, False, False, len(s))
        xs.append(x - x.mean())
        ys.append(y - y.mean())
        spans.append(x[-1] - x[0])
        window = max(window, len(tail))
    if not xs:
        return Convergence(math.nan, math.nan, False, False, points)
    x, y = np.concatenate(xs), np.concatenate(ys)
    sxx = float((x**2).sum())
    slope = float((x * y).sum()) / sxx
    dof = len(x) - len(xs) - 1
    span = float(np.mean(spans))
    se = math.sqrt(float(((y - slope * x) ** 2).sum()) / dof / sxx) if dof >= 1 else math.nan
    moving = se == se and abs(slope) > CONVERGENCE_Z * se
    d = metric_direction(metric)
    improving = moving and (d == 0 or d * slope > 0)
    return Convergence(slope * span, se * span, moving, improving, points, window)


# ------------------------------------------------------------------------------------------------
# deciding a page's claims


@dataclass(frozen=True, eq=False)
class Decision:
    """A claim decided over seeds: the same fields whatever path the decision took.

    ``verdict`` is one of VERDICTS and ``reason`` says why (empty for a clean supported or contradicted);
    a verdict that is not a test's (by construction, ill-posed, not decidable) leaves ``p`` NaN.
    """

    claim: Claim
    metric: str  # the recorded score the claim's metric resolved to (the claim's own name when none did)
    verdict: str = UNRESOLVED
    reason: str = ""
    values: Mapping[str, pd.Series] = field(default_factory=dict)  # per arm (the claim's first): what is compared
    spread_of: Mapping[str, pd.Series] = field(default_factory=dict)  # of: spread: the values the deviations are of
    comparisons: Tuple[Comparison, ...] = ()  # the arm against each arm of vs
    p: float = math.nan  # the claim's p before Holm (against several arms: the largest); NaN: not tested
    p_holm: float = math.nan  # Holm-adjusted over the page's tested claims
    direction_ok: Optional[bool] = None  # every difference has the expected sign; None: no test ran
    still_improving: Tuple[str, ...] = ()  # arms of the claim whose score still improves at the end

    @property
    def tested(self) -> bool:
        return self.p == self.p


def decide(
    claims: Sequence[Claim],
    df: pd.DataFrame,
    arms: Sequence[str],
    eval_at: Sequence[float] = (),
    guards: Optional[Guards] = None,
) -> List[Decision]:
    """Each claim's comparisons, p (raw and Holm-adjusted over the page's tested claims) and verdict.

    ``df``: the long table (variant, seed, step, metric, value) of the study's records; ``guards``: the page's
    known-failure levels and arms (validity, the learned gate and saturation; None: not checked).
    """
    # its steps are named decide_* so that `make mutants` (pattern claims.x_decide*) mutates them with it
    drafts = [decide_draft(c, df, arms, eval_at, guards) for c in claims]
    return [decide_verdict(d, pa) for d, pa in zip(drafts, holm([d.p for d in drafts]))]


def decide_draft(
    c: Claim, df: pd.DataFrame, arms: Sequence[str], eval_at: Sequence[float], guards: Optional[Guards] = None
) -> Decision:
    """A claim's values, comparisons and p, before the page's Holm correction gives it a verdict."""
    metric = resolve_metric(df, c.metric)
    others = c.others(arms)
    values: Dict[str, pd.Series] = {}
    spread_of: Dict[str, pd.Series] = {}
    if metric is not None:
        values = {a: per_seed(df, a, metric, c.at, eval_at) for a in [c.arm, *others]}
        if c.of == "spread":  # Brown–Forsythe: the test compares mean absolute deviations from each arm's median
            spread_of, values = values, {a: (v - v.median()).abs() for a, v in values.items()}
    d = Decision(c, metric or c.metric, values=values, spread_of=spread_of)
    if c.by_construction:  # shown beside its values, never tested
        return replace(d, verdict=NOT_A_TEST, reason=f"holds by construction ({c.by_construction}); not a test")
    if metric is None:
        return replace(d, reason=f"'{c.metric}' is not among the recorded scores")
    if guards is not None and not any(v.empty for v in values.values()):  # without scores: why, not the guards
        guarded = decide_guarded(d, df, [c.arm, *others], guards)
        if guarded is not None:
            return guarded
    d = decide_by_test(d, others)
    improving = tuple(a for a in [c.arm, *others] if a in values and convergence(df, a, metric).improving)
    return replace(d, still_improving=improving)


def decide_guarded(d: Decision, df: pd.DataFrame, arms: Sequence[str], guards: Guards) -> Optional[Decision]:
    """The claim ill-posed (its score does not separate a failure the gate does not rule out, or it is saturated)
    or not decidable (an arm did not learn); None when it is neither."""
    c = d.claim
    why = guards.ill_posed(d.metric, arms)
    if not why and c.of == "value" and c.at != "drop":
        why = guards.saturated(d.metric, {a: v for a, v in d.values.items() if a in arms})
    if why:
        return replace(d, verdict=ILL_POSED, reason=why)
    late = guards.not_learned(df, arms, d.metric)
    return replace(d, verdict=NOT_DECIDABLE, reason=late) if late else None


def decide_by_test(d: Decision, others: Sequence[str]) -> Decision:
    """The claim's test over seeds, or why there is none (no scores, too few seeds, a non-finite value)."""
    c, vals = d.claim, d.values
    missing = [a for a, v in vals.items() if v.empty]
    few = [f"{a}: {len(v)}" for a, v in vals.items() if 0 < len(v) < MIN_SEEDS]
    ranks = c.test == "mannwhitney"  # a rank test ranks an ∞ (never a NaN)
    bad = [f"{a}: {nonfinite_text(v)}" for a, v in vals.items() if len(v) and not _finite(v, ranks)]
    if missing:
        return replace(d, reason="no scores for " + ", ".join(missing))
    if few:
        return replace(d, reason=f"fewer than {MIN_SEEDS} seeds ({'; '.join(few)})")
    if bad:
        what = "NaN values cannot be ranked" if ranks else "non-finite values, a mean is undefined"
        return replace(d, reason=f"{what} (" + "; ".join(bad) + ")")
    test = {"welch": welch, "bootstrap": bootstrap, "mannwhitney": mannwhitney}[c.test]
    comps = []
    for o in others:
        r = test(vals[c.arm].to_numpy(), vals[o].to_numpy())
        comps.append(Comparison(o, r.diff, r.lo, r.hi, r.p))
    d = replace(d, comparisons=tuple(comps))
    if any(x.p != x.p for x in comps):
        return replace(d, reason="no spread over seeds in either arm: the test is undefined")
    if all(np.sign(x.diff) == c.sign for x in comps):
        return replace(d, p=max(x.p for x in comps), direction_ok=True)
    return replace(d, p=min(x.p for x in comps if np.sign(x.diff) != c.sign), direction_ok=False)


def decide_verdict(d: Decision, p_holm: float) -> Decision:
    """The verdict at the page's Holm-adjusted p, and the reason it carries."""
    if d.verdict in UNTESTED:
        return replace(d, p_holm=p_holm)
    reason = d.reason
    if p_holm == p_holm and p_holm < ALPHA:
        verdict = SUPPORTED if d.direction_ok else CONTRADICTED
    else:
        verdict = UNRESOLVED
        if p_holm == p_holm and not reason:
            reason = f"Holm-adjusted p = {p_value(p_holm)} ≥ α = {ALPHA}"
    if d.still_improving:
        late = "still improving at the end of the budget: " + ", ".join(d.still_improving)
        reason = "; ".join(x for x in (reason, late) if x)
    return replace(d, verdict=verdict, reason=reason, p_holm=p_holm)


def _finite(v: pd.Series, ranks: bool = False) -> bool:
    """Every value finite (``ranks``: every value a number, ∞ included)."""
    a = v.to_numpy(float)
    return bool((~np.isnan(a)).all() if ranks else np.isfinite(a).all())

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
          test: welch            # welch (default) | bootstrap
        - claim: "|∇D| ≠ 1 at λ = 0"
          metric: grad_norm_mean_last
          arm: gp_lambda=0
          vs: gp_lambda=10
          expect: higher
          by_construction: "λ = 0 has no penalty that pulls |∇D| to 1"   # printed, never tested

Decision (``decide``): per comparison (the arm against each arm of ``vs``) the difference of means over seeds
(arm − other), its 95 % interval and a two-sided p from Welch's t-test (``scipy.stats.ttest_ind(equal_var=
False)``) or from a seeded bootstrap of the difference of means. With several comparisons (``vs: others``)
the claim is an intersection-union test: its p is the largest of the comparisons' p when every difference
has the expected sign. The claims of one page are Holm-corrected together; at α = 0.05 a claim is

* **supported**: Holm-adjusted p < α and the difference has the expected sign (for every comparison);
* **contradicted**: Holm-adjusted p < α with a difference of the opposite sign;
* **not resolved**: otherwise, and always with fewer than 3 seeds in an arm or a non-finite value (an
  ∞ is reported as such, never averaged).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.errors import UserError, did_you_mean
from benchmark.evaluation.scores import declared, direction, metric_base, resolve

ALPHA = 0.05
MIN_SEEDS = 3
TESTS = ("welch", "bootstrap")
EXPECT = ("better", "worse", "higher", "lower")
AT = ("final", "worst", "best", "drop")
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CLAIM_KEYS = ("claim", "metric", "arm", "vs", "expect", "at", "of", "test", "by_construction", "note")
OF = ("value", "spread")
REFERENCE_KEYS = ("arm", "method", "data", "metric", "value", "spread", "statistic", "trials", "source", "caveat")
STATISTICS = ("mean ± sd", "mean ± se", "mean")
SUPPORTED, CONTRADICTED, UNRESOLVED, NOT_A_TEST = "supported", "contradicted", "not resolved", "not a test"


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
    test = raw.get("test", "welch")
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


def convergence(df: pd.DataFrame, arm: str, metric: str) -> Dict[str, Any]:
    """Does ``metric`` still move for ``arm`` between its last two evaluation points by more than its seed spread?

    Returns {delta, spread, moving, improving, points}: delta is the mean over seeds of (last − previous);
    spread the sample standard deviation over seeds at the last point (0 with one seed); ``improving`` when it
    moves in the score's better direction (for scores without one: when it moves).
    """
    sub = df[(df["variant"] == arm) & (df["metric"] == metric)]
    deltas, finals, points = [], [], 0
    for _, s in sub.groupby("seed"):
        s = s.sort_values("step")
        points = max(points, len(s))
        if len(s) >= 2:
            last2 = s["value"].to_numpy(float)[-2:]
            if not np.isfinite(last2).all():  # ∞ - ∞ is no change we can measure
                return {"delta": math.nan, "spread": math.nan, "moving": False, "improving": False, "points": len(s)}
            deltas.append(float(last2[1] - last2[0]))
            finals.append(float(last2[1]))
    if not deltas:
        return {"delta": math.nan, "spread": math.nan, "moving": False, "improving": False, "points": points}
    delta = float(np.mean(deltas))
    spread = float(np.std(finals, ddof=1)) if len(finals) > 1 else 0.0
    moving = abs(delta) > spread
    d = metric_direction(metric)
    improving = moving and (d == 0 or d * delta > 0)
    return {"delta": delta, "spread": spread, "moving": moving, "improving": improving, "points": points}


# ------------------------------------------------------------------------------------------------
# deciding a page's claims


def _finite(v: pd.Series) -> bool:
    return bool(np.isfinite(v.to_numpy(float)).all())


def _nonfinite_text(v: pd.Series) -> str:
    a = v.to_numpy(float)
    k = int((~np.isfinite(a)).sum())
    sym = "∞" if np.isinf(a).any() else "nan"
    return f"{sym} ({k} of {len(a)} seeds)"


def decide(
    claims: Sequence[Claim], df: pd.DataFrame, arms: Sequence[str], eval_at: Sequence[float] = ()
) -> List[Dict[str, Any]]:
    """Each claim's comparisons, p (raw and Holm-adjusted over the page's tested claims) and verdict.

    ``df``: the long table (variant, seed, step, metric, value) of the study's records.
    """
    rows: List[Dict[str, Any]] = []
    for c in claims:
        metric = resolve_metric(df, c.metric)
        row: Dict[str, Any] = {
            "claim": c,
            "metric": metric or c.metric,
            "values": {},
            "comparisons": [],
            "p": math.nan,
            "reason": "",
            "still_improving": [],
        }
        others = c.others(arms)
        if metric is not None:
            row["values"] = vals = {a: per_seed(df, a, metric, c.at, eval_at) for a in [c.arm, *others]}
            if c.of == "spread":  # Brown–Forsythe: the test compares mean absolute deviations from each arm's median
                vals = {a: (v - v.median()).abs() for a, v in vals.items()}
                row["spread_of"], row["values"] = row["values"], vals
        if c.by_construction:  # shown beside its values, never tested
            row["reason"] = f"holds by construction ({c.by_construction}); not a test"
            row["verdict"] = NOT_A_TEST
            rows.append(row)
            continue
        if metric is None:
            row["reason"] = f"'{c.metric}' is not among the recorded scores"
            rows.append(row)
            continue
        missing = [a for a, v in vals.items() if v.empty]
        few = [f"{a}: {len(v)}" for a, v in vals.items() if 0 < len(v) < MIN_SEEDS]
        bad = [f"{a}: {_nonfinite_text(v)}" for a, v in vals.items() if len(v) and not _finite(v)]
        if missing:
            row["reason"] = "no scores for " + ", ".join(missing)
        elif few:
            row["reason"] = f"fewer than {MIN_SEEDS} seeds ({'; '.join(few)})"
        elif bad:
            row["reason"] = "non-finite values, a mean is undefined (" + "; ".join(bad) + ")"
        else:
            test = welch if c.test == "welch" else bootstrap
            comps = []
            for o in others:
                r = test(vals[c.arm].to_numpy(), vals[o].to_numpy())
                comps.append(Comparison(o, r.diff, r.lo, r.hi, r.p))
            row["comparisons"] = comps
            if any(x.p != x.p for x in comps):
                row["reason"] = "no spread over seeds in either arm: the test is undefined"
            elif all(np.sign(x.diff) == c.sign for x in comps):
                row["p"], row["direction_ok"] = max(x.p for x in comps), True
            else:
                wrong = [x.p for x in comps if np.sign(x.diff) != c.sign]
                row["p"], row["direction_ok"] = min(wrong), False
        for a in [c.arm, *others]:
            if a in vals and convergence(df, a, metric)["improving"]:
                row["still_improving"].append(a)
        rows.append(row)
    adj = holm([r["p"] for r in rows])
    for r, pa in zip(rows, adj):
        r["p_holm"] = pa
        if r.get("verdict") == NOT_A_TEST:
            continue
        if pa == pa and pa < ALPHA:
            r["verdict"] = SUPPORTED if r.get("direction_ok") else CONTRADICTED
        else:
            r["verdict"] = UNRESOLVED
            if pa == pa and not r["reason"]:
                r["reason"] = f"Holm-adjusted p = {_p(pa)} ≥ α = {ALPHA}"
        if r["still_improving"]:
            r["reason"] = "; ".join(
                x
                for x in (r["reason"], "still improving at the end of the budget: " + ", ".join(r["still_improving"]))
                if x
            )
    return rows


# ------------------------------------------------------------------------------------------------
# where along training the question resolves, and what an unresolved one would need

POWER = 0.8  # the power asked of a future run in seeds_needed
MAX_SEEDS_NEEDED = 1000


def truncate(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """Each trial's records at its first ``k`` evaluation points (ranked by step within variant and seed), so a
    claim can be decided as if the budget had ended there; arms with other step counts stay comparable."""
    if df.empty:
        return df
    rank = df.groupby(["variant", "seed"])["step"].rank(method="dense")
    return df[rank <= k]


def along_training(
    claims: Sequence[Claim], df: pd.DataFrame, arms: Sequence[str], eval_at: Sequence[float] = ()
) -> List[List[str]]:
    """Per claim, its verdict (Holm over the page, as in ``decide``) had the budget ended at each evaluation
    point in turn: ``[[verdict at point 1, ..., at the last point], ...]``."""
    points = int(df.groupby(["variant", "seed"])["step"].nunique().max()) if not df.empty else 0
    out: List[List[str]] = [[] for _ in claims]
    for k in range(1, points + 1):
        # a claim 'at: 0.5' asks for one fixed point: it has no verdict before the budget reaches it
        rows = decide(claims, truncate(df, k), arms, eval_at) if k < points else decide(claims, df, arms, eval_at)
        for i, r in enumerate(rows):
            out[i].append(r["verdict"])
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


def seeds_needed(a: Sequence[float], b: Sequence[float], power: float = POWER, alpha: float = ALPHA) -> float:
    """Seeds per arm a two-sided two-sample t-test at ``alpha`` (a page of m claims: α / m, the strictest level
    of Holm's procedure) would need for ``power`` if the observed
    difference of means and the pooled standard deviation were the truth (noncentral t); nan when the observed
    difference is 0 or undefined, inf beyond MAX_SEEDS_NEEDED. A planning figure, not a verdict."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.nan
    sd = math.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    diff = abs(float(a.mean() - b.mean()))
    if diff == 0:
        return math.nan
    if sd == 0:
        return float(MIN_SEEDS)
    d = diff / sd
    for n in range(2, MAX_SEEDS_NEEDED + 1):
        df_ = 2 * n - 2
        t = stats.t.ppf(1 - alpha / 2, df_)
        nc = d * math.sqrt(n / 2)
        if stats.nct.sf(t, df_, nc) + stats.nct.cdf(-t, df_, nc) >= power:
            return float(max(n, MIN_SEEDS))
    return math.inf


def _p(p: float) -> str:
    if p != p:
        return "–"
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def _num(x: float) -> str:
    if x != x:
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    mag = abs(x)
    digits = 0 if mag >= 100 else 1 if mag >= 10 else 2 if mag >= 1 else 3
    return f"{x:.{digits}f}"


def _arm_values(v: pd.Series) -> str:
    if v.empty:
        return "–"
    a = v.to_numpy(float)
    per = ", ".join(_num(x) for x in a)
    if not np.isfinite(a).all():
        return f"{_nonfinite_text(v)} [{per}]"
    sd = f" ± {_num(float(a.std(ddof=1)))}" if len(a) > 1 else ""
    return f"{_num(float(a.mean()))}{sd} (n={len(a)}: {per})"


def to_markdown(rows: Sequence[Dict[str, Any]]) -> str:
    """The claims table: statement, what is compared, per-seed values, difference [95 % CI], p, verdict."""
    head = (
        "| claim | metric (at) | test | arm (mean ± sd, per seed) | vs | difference arm − vs [95 % CI] "
        "| p | p (Holm) | verdict | why |"
    )
    lines = [head, "| --- | --- | --- | --- | --- | --- | ---: | ---: | --- | --- |"]
    for r in rows:
        c: Claim = r["claim"]
        vals = r["values"]
        others = list(vals)[1:] if vals else (list(c.vs) or ["others"])
        vs = "<br>".join(f"{o}: {_arm_values(vals[o])}" if o in vals else o for o in others)
        diffs = (
            "<br>".join(f"{_num(x.diff)} [{_num(x.lo)}, {_num(x.hi)}] (p {_p(x.p)})" for x in r["comparisons"]) or "–"
        )
        expect = f"{c.expect} (arm − vs {'<' if c.sign < 0 else '>'} 0)"
        cells = [
            c.text,
            f"{r['metric']} ({c.at}), expected {expect}",
            "–" if c.by_construction else c.test,
            f"{c.arm}: {_arm_values(vals[c.arm]) if c.arm in vals else '–'}",
            vs,
            diffs,
            _p(r["p"]),
            _p(r.get("p_holm", math.nan)),
            f"**{r['verdict']}**",
            "; ".join(x for x in (r["reason"], c.note) if x) or "–",
        ]
        if c.of == "spread":
            cells[1] = f"spread over seeds of {cells[1]} (per seed: |value − arm median|)"
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines)


def to_frame(rows: Sequence[Dict[str, Any]]) -> pd.DataFrame:
    """One row per comparison (claims without one keep a row), for claims.csv."""
    out = []
    for r in rows:
        c: Claim = r["claim"]
        comps = r["comparisons"] or [None]
        for x in comps:
            out.append(
                {
                    "claim": c.text,
                    "metric": r["metric"],
                    "at": c.at,
                    "arm": c.arm,
                    "expect": c.expect,
                    "test": c.test,
                    "vs": x.other if x else ",".join(c.vs) or "others",
                    "diff": x.diff if x else math.nan,
                    "ci_low": x.lo if x else math.nan,
                    "ci_high": x.hi if x else math.nan,
                    "p_comparison": x.p if x else math.nan,
                    "p_claim": r["p"],
                    "p_holm": r.get("p_holm", math.nan),
                    "verdict": r["verdict"],
                    "why": r["reason"],
                }
            )
    return pd.DataFrame(out)

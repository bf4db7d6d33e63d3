"""The statistics behind a report's verdicts, against answers computed by hand (benchmark/study/claims.py):
Welch's t interval and p from the textbook formulas, the bootstrap on arms whose resampling law is known exactly,
Holm's adjustment, per-seed values at the final / worst / best / a given point, and convergence. Written to kill
the mutants ``make mutants`` found alive in the verdict code."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.study import claims as C


def test_constants():
    assert C.ALPHA == 0.05 and C.MIN_SEEDS == 3 and C.BOOTSTRAP_RESAMPLES == 10_000 and C.BOOTSTRAP_SEED == 0


@pytest.mark.parametrize(
    "a,b",
    [([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0]), ([5.0, 5.5, 7.0], [1.0, 1.2, 0.8]), ([0.0, 1.0], [3.0, 9.0])],
)
def test_welch_by_the_textbook(a, b):
    x, y = np.array(a), np.array(b)
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))  # Welch–Satterthwaite
    diff = x.mean() - y.mean()
    p = 2 * stats.t.sf(abs(diff) / se, df)
    half = stats.t.ppf(0.975, df) * se
    r = C.welch(a, b)
    assert r.diff == pytest.approx(diff, rel=1e-12)
    assert r.p == pytest.approx(p, rel=1e-9)
    assert (r.lo, r.hi) == (pytest.approx(diff - half, rel=1e-9), pytest.approx(diff + half, rel=1e-9))
    assert r.other == ""
    s = C.welch(b, a)  # the order of the arms flips the sign, not the p
    assert s.diff == pytest.approx(-diff) and s.p == pytest.approx(p) and s.lo == pytest.approx(-(diff + half))


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy on a constant arm
def test_welch_without_spread():
    same = C.welch([2.0, 2.0, 2.0], [2.0, 2.0])
    assert (same.diff, same.lo, same.hi, same.p) == (0.0, 0.0, 0.0, 1.0)
    apart = C.welch([3.0, 3.0], [1.0, 1.0, 1.0])
    assert (apart.diff, apart.lo, apart.hi) == (2.0, 2.0, 2.0) and math.isnan(apart.p)
    one_sided_spread = C.welch([3.0, 3.0, 3.0], [1.0, 2.0, 3.0])  # spread in one arm only: a defined test
    assert not math.isnan(one_sided_spread.p) and one_sided_spread.p < 1


def test_bootstrap_of_constant_arms_has_the_smallest_p():
    r = C.bootstrap([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    assert (r.diff, r.lo, r.hi) == (1.0, 1.0, 1.0)
    assert r.p == pytest.approx(2 / (C.BOOTSTRAP_RESAMPLES + 1))  # (0 + 1) / (B + 1), twice
    r = C.bootstrap([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], resamples=99)
    assert (r.diff, r.lo, r.hi) == (-1.0, -1.0, -1.0) and r.p == pytest.approx(2 / 100)
    assert C.bootstrap([2.0, 2.0], [2.0, 2.0]).p == 1.0  # capped at 1


def test_bootstrap_of_a_known_resampling_law():
    """a = (0, 1) resampled twice: mean 0, 1/2, 1 with probability 1/4, 1/2, 1/4; b = (0, 0) always 0."""
    r = C.bootstrap([0.0, 1.0], [0.0, 0.0])
    assert r.diff == 0.5
    assert (r.lo, r.hi) == (0.0, 1.0)  # the 2.5 % and 97.5 % points of that law
    assert r.p == pytest.approx(2 * 0.25, abs=0.02)  # P*(d <= 0) = 1/4
    r = C.bootstrap([0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], resamples=20_000, seed=3)
    # P*(mean of 4 draws = 0) = (3/4)^4 = 0.316; P*(mean >= 0.75) = P(3 or 4 ones) = 0.051 > 2.5 %, P*(= 1) < 2.5 %
    assert r.p == pytest.approx(2 * 0.75**4, abs=0.02) and r.lo == 0.0 and r.hi == 0.75


def test_bootstrap_is_seeded_and_the_seed_matters():
    a, b = [0.1, 0.5, 0.9, 0.3], [0.2, 0.4, 0.3, 0.1]
    assert C.bootstrap(a, b) == C.bootstrap(a, b, seed=C.BOOTSTRAP_SEED)
    assert C.bootstrap(a, b, seed=1) != C.bootstrap(a, b, seed=2)
    r = C.bootstrap(a, b, resamples=500)
    assert r.lo < r.diff < r.hi and 0 < r.p <= 1


def test_holm_by_hand():
    assert C.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert C.holm([0.5, 0.2]) == pytest.approx([0.5, 0.4])
    out = C.holm([0.02, math.nan, 0.6])  # NaN stays NaN and is not counted: m = 2
    assert out[0] == pytest.approx(0.04) and math.isnan(out[1]) and out[2] == pytest.approx(0.6)
    assert C.holm([0.4, 0.45]) == pytest.approx([0.8, 0.8])  # monotone: never below an earlier adjusted p
    assert C.holm([0.9, 0.8]) == [1.0, 1.0]  # capped at 1


def _df(rows):
    return pd.DataFrame(rows, columns=["variant", "seed", "step", "metric", "value"])


def test_per_seed_final_worst_best_and_at_a_point():
    rows = []
    for seed, vals in ((0, [5.0, 2.0, 3.0]), (1, [4.0, 6.0, 1.0])):
        for step, v in zip((10, 20, 30), vals):
            rows.append(("A", seed, step, "fid1k_test", v))  # lower is better
            rows.append(("A", seed, step, "modes2500", v))  # higher is better
    rows.append(("B", 0, 30, "fid1k_test", 9.0))
    df = _df(rows[::-1])  # any row order
    assert C.per_seed(df, "A", "fid1k_test").to_dict() == {0: 3.0, 1: 1.0}
    assert C.per_seed(df, "A", "fid1k_test", "worst").to_dict() == {0: 5.0, 1: 6.0}
    assert C.per_seed(df, "A", "fid1k_test", "best").to_dict() == {0: 2.0, 1: 1.0}
    assert C.per_seed(df, "A", "modes2500", "worst").to_dict() == {0: 2.0, 1: 1.0}
    assert C.per_seed(df, "A", "modes2500", "best").to_dict() == {0: 5.0, 1: 6.0}
    assert C.per_seed(df, "A", "fid1k_test", "0.5", eval_at=[1.0, 0.5, 0.25]).to_dict() == {0: 2.0, 1: 6.0}
    assert C.per_seed(df, "A", "fid1k_test", "0.25", eval_at=[0.25, 0.5, 1.0]).to_dict() == {0: 5.0, 1: 4.0}
    assert C.per_seed(df, "B", "fid1k_test").to_dict() == {0: 9.0}
    assert C.per_seed(df, "C", "fid1k_test").empty and C.per_seed(df, "A", "kid1k_test").empty


def test_convergence_by_hand():
    """Within-seed least squares over the last points: x and y centred on each seed's own means."""
    rows = [
        ("A", s, st, "fid1k_test", v)
        for s, vals in ((0, (9.0, 5.0)), (1, (8.0, 4.0)), (2, (9.0, 6.0)))
        for st, v in zip((10, 20), vals)
    ]
    c = C.convergence(_df(rows), "A", "fid1k_test")
    # per-seed changes −4, −4, −3: slope x span = their mean, SE = their sd / √3 = (1/√3) / √3
    assert c.delta == pytest.approx(-11 / 3) and c.se == pytest.approx(1 / 3) and c.points == 2 and c.window == 2
    assert c.moving and c.improving  # FID fell by 11 SE: still improving
    up = [(v, s, st, "modes2500", x) for v, s, st, _, x in rows]
    c = C.convergence(_df(up), "A", "modes2500")
    assert c.moving and not c.improving  # modes fell: moving, the wrong way
    flat = [
        ("A", s, st, "fid1k_test", v)
        for s, vals in ((0, (5.0, 5.5)), (1, (4.0, 3.0)), (2, (6.0, 6.5)))
        for st, v in zip((10, 20), vals)
    ]
    c = C.convergence(_df(flat), "A", "fid1k_test")
    assert c.delta == pytest.approx(0.0) and not c.moving and not c.improving
    one = C.convergence(_df([("A", 0, 10, "fid1k_test", 3.0)]), "A", "fid1k_test")
    assert math.isnan(one.delta) and not one.moving and one.points == 1
    two = _df([("A", 0, 10, "fid1k_test", 3.0), ("A", 0, 20, "fid1k_test", 2.0)])
    single_seed = C.convergence(two, "A", "fid1k_test")  # one seed, two points: no residual left for an SE
    assert single_seed.delta == pytest.approx(-1.0) and math.isnan(single_seed.se) and not single_seed.moving
    line = _df([("A", 0, st, "fid1k_test", v) for st, v in ((10, 3.0), (20, 2.0), (30, 1.0))])
    exact = C.convergence(line, "A", "fid1k_test")  # three points on a line: SE 0, any slope moves
    assert exact.delta == pytest.approx(-2.0) and exact.se == pytest.approx(0.0, abs=1e-12) and exact.improving
    inf = C.convergence(_df([("A", 0, 10, "rkl2500", math.inf), ("A", 0, 20, "rkl2500", math.inf)]), "A", "rkl2500")
    assert math.isnan(inf.delta) and not inf.moving


def test_convergence_reads_only_the_last_k_points():
    """A curve that fell early and is flat (with noise) over its last three points is settled; with k = 4 the
    early fall enters the window and it moves."""
    noise = {0: (0.3, -0.2, 0.1), 1: (-0.1, 0.2, -0.3), 2: (0.2, -0.3, 0.0)}
    rows = [
        ("A", s, st, "fid1k_test", v)
        for s in (0, 1, 2)
        for st, v in zip((10, 20, 30, 40), (90.0, *(40.0 + e for e in noise[s])))
    ]
    assert C.CONVERGENCE_POINTS == 3 and C.CONVERGENCE_Z == 2.0
    assert not C.convergence(_df(rows), "A", "fid1k_test").moving
    assert C.convergence(_df(rows), "A", "fid1k_test", k=4).improving


def _seeds(arm_values, metric="fid1k_test", step=100):
    return _df([(arm, s, step, metric, v) for arm, vals in arm_values.items() for s, v in enumerate(vals)])


def _claim(**kw):
    base = dict(text="t", metric="fid", arm="A", vs=("B",), expect="better")
    return C.Claim(**{**base, **kw})


def test_decide_supported_contradicted_and_unresolved_by_hand():
    df = _seeds({"A": [1.0, 1.2, 0.9], "B": [5.0, 5.5, 4.8], "N": [1.1, 5.2, 0.7]})
    good, bad, vague = C.decide([_claim(), _claim(expect="worse"), _claim(vs=("N",))], df, ["A", "B", "N"])
    w = C.welch([1.0, 1.2, 0.9], [5.0, 5.5, 4.8])
    wn = C.welch([1.0, 1.2, 0.9], [1.1, 5.2, 0.7])
    assert good.metric == "fid1k_test"  # the claim's base name resolved to the recorded score
    assert good.verdict == C.SUPPORTED and good.p == pytest.approx(w.p) and good.direction_ok
    assert bad.verdict == C.CONTRADICTED and bad.p == pytest.approx(w.p) and not bad.direction_ok
    assert vague.verdict == C.UNRESOLVED
    ps = sorted([w.p, w.p, wn.p])
    assert good.p_holm == pytest.approx(min(1.0, 3 * ps[0]))  # Holm over the page's three tested claims
    assert vague.p_holm == pytest.approx(min(1.0, max(3 * ps[0], 2 * ps[1], ps[2])))
    assert vague.reason.startswith("Holm-adjusted p = ") and "α = 0.05" in vague.reason
    assert [c.other for c in good.comparisons] == ["B"] and good.comparisons[0].diff == pytest.approx(w.diff)


def test_decide_against_all_others_takes_the_weakest_comparison():
    df = _seeds({"A": [1.0, 1.1, 0.9], "B": [5.0, 5.5, 4.8], "C": [2.0, 2.2, 1.9]})
    (row,) = C.decide([_claim(vs=())], df, ["A", "B", "C"])
    ps = [C.welch([1.0, 1.1, 0.9], v).p for v in ([5.0, 5.5, 4.8], [2.0, 2.2, 1.9])]
    assert [c.other for c in row.comparisons] == ["B", "C"] and row.p == pytest.approx(max(ps))
    df = _seeds({"A": [1.0, 1.1, 0.9], "B": [5.0, 5.5, 4.8], "C": [0.2, 0.3, 0.1]})
    (row,) = C.decide([_claim(vs=())], df, ["A", "B", "C"])
    assert row.direction_ok is False and row.p == pytest.approx(C.welch([1.0, 1.1, 0.9], [0.2, 0.3, 0.1]).p)


def test_decide_reasons_when_no_test_can_run():
    df = _seeds({"A": [1.0, 1.2, 0.9], "B": [5.0, 5.5], "I": [math.inf, 1.0, 2.0], "Z": [3.0, 3.0, 3.0]})
    df = pd.concat([df, _seeds({"Z2": [4.0, 4.0, 4.0]})])
    rows = C.decide(
        [
            _claim(metric="kid"),
            _claim(vs=("Q",)),
            _claim(),
            _claim(vs=("I",)),
            _claim(arm="Z", vs=("Z2",)),
            _claim(by_construction="the same trial"),
        ],
        df,
        ["A", "B", "I", "Z", "Z2"],
    )
    unknown, missing, few, nonfinite, flat, construct = rows
    assert unknown.metric == "kid" and "'kid' is not among the recorded scores" in unknown.reason
    assert missing.reason == "no scores for Q"
    assert few.reason == "fewer than 3 seeds (B: 2)"
    assert nonfinite.reason == "non-finite values, a mean is undefined (I: ∞ (1 of 3 seeds))"
    assert flat.reason == "no spread over seeds in either arm: the test is undefined"
    assert construct.verdict == C.NOT_A_TEST and construct.reason.startswith("holds by construction")
    assert all(r.verdict == C.UNRESOLVED for r in rows[:5]) and all(math.isnan(r.p) for r in rows)


def test_decide_with_the_bootstrap_and_a_still_improving_arm():
    rows = [
        ("A", s, st, "fid1k_test", v)
        for s, vals in enumerate(([9.0, 1.0], [9.5, 1.2], [9.2, 0.9]))
        for st, v in zip((50, 100), vals)
    ]
    rows += [("B", s, 100, "fid1k_test", v) for s, v in enumerate([5.0, 5.5, 4.8])]
    (row,) = C.decide([_claim(test="bootstrap")], _df(rows), ["A", "B"])
    b = C.bootstrap([1.0, 1.2, 0.9], [5.0, 5.5, 4.8])
    assert row.p == pytest.approx(b.p) and row.verdict == C.SUPPORTED
    assert row.still_improving == ("A",) and row.reason.endswith("still improving at the end of the budget: A")


def test_resolve_metric_exact_then_by_base():
    df = _seeds({"A": [1.0]}, metric="fid1k_test")
    assert C.resolve_metric(df, "fid1k_test") == "fid1k_test" and C.resolve_metric(df, "fid") == "fid1k_test"
    assert C.resolve_metric(df, "kid") is None
    assert C.resolve_metric(pd.DataFrame(), "fid") is None  # no records at all


def test_claim_sign():
    assert _claim(expect="better").sign == -1 and _claim(expect="worse").sign == 1  # fid: lower is better
    assert _claim(metric="modes", expect="better").sign == 1
    assert _claim(expect="higher").sign == 1 and _claim(expect="lower").sign == -1
    assert C.metric_direction("fid") == -1 and C.metric_direction("fid1k_test") == -1
    assert C.metric_direction("recall") == 1 and C.metric_direction("lpips") == 0


def test_decide_at_an_evaluation_point_and_lists_every_arm_in_its_reasons():
    rows = [
        ("A", s, st, "fid1k_test", v)
        for s, vals in enumerate(([1.0, 9.0], [1.2, 9.5], [0.9, 9.2]))
        for st, v in zip((50, 100), vals)
    ]
    rows += [
        ("B", s, st, "fid1k_test", v)
        for s, vals in enumerate(([5.0, 1.0], [5.5, 1.1], [4.8, 0.9]))
        for st, v in zip((50, 100), vals)
    ]
    half, final = C.decide([_claim(at="0.5"), _claim()], _df(rows), ["A", "B"], eval_at=[0.5, 1.0])
    assert half.verdict == C.SUPPORTED and final.verdict == C.CONTRADICTED
    assert half.values["A"].to_dict() == {0: 1.0, 1: 1.2, 2: 0.9}
    df = _seeds({"A": [1.0, 1.2, 0.9], "B": [5.0, 5.5], "D": [2.0]})
    few, missing = C.decide([_claim(vs=("B", "D")), _claim(vs=("Q", "R"))], df, ["A", "B", "D"])
    assert few.reason == "fewer than 3 seeds (B: 2; D: 1)" and missing.reason == "no scores for Q, R"
    assert {f.name for f in dataclasses.fields(few)} >= {
        "claim",
        "metric",
        "values",
        "comparisons",
        "p",
        "p_holm",
        "reason",
        "verdict",
    }


def test_bootstrap_resamples_the_other_arm_too_and_its_interval_is_the_95_percent_one():
    r = C.bootstrap([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], resamples=20_000)
    assert r.diff == -0.25 and (r.lo, r.hi) == (-0.75, 0.0)  # the mirror of the law above
    assert r.p == pytest.approx(2 * 0.75**4, abs=0.02)
    a = np.linspace(0.0, 1.0, 40)  # many values: the resampled mean is close to normal
    r = C.bootstrap(a, np.zeros(5), resamples=20_000)
    sd = a.std(ddof=0) / math.sqrt(len(a))
    assert r.lo == pytest.approx(a.mean() - 1.96 * sd, abs=0.04 * 1.96 * sd)
    assert r.hi == pytest.approx(a.mean() + 1.96 * sd, abs=0.04 * 1.96 * sd)


def test_decide_joins_every_arm_and_goes_on_after_a_claim_by_construction():
    rows = [
        ("A", s, st, "fid1k_test", v)
        for s, vals in enumerate(([9.0, 1.0], [9.5, 1.2], [9.2, 0.9]))
        for st, v in zip((50, 100), vals)
    ]
    rows += [
        ("B", s, st, "fid1k_test", v)
        for s, vals in enumerate(([9.0, 5.0], [9.5, 5.5], [9.2, 4.8]))
        for st, v in zip((50, 100), vals)
    ]
    rows += [("I", s, 100, "fid1k_test", v) for s, v in enumerate([math.inf, 1.0, 2.0])]
    rows += [("J", s, 100, "fid1k_test", v) for s, v in enumerate([math.nan, math.nan, 2.0])]
    construct, both, bad = C.decide(
        [_claim(by_construction="same trial"), _claim(), _claim(vs=("I", "J"))], _df(rows), ["A", "B", "I", "J"]
    )
    assert construct.verdict == C.NOT_A_TEST and both.verdict == C.SUPPORTED
    assert both.still_improving == ("A", "B")
    assert both.reason == "still improving at the end of the budget: A, B"
    assert bad.reason.startswith("non-finite values, a mean is undefined (I: ∞ (1 of 3 seeds); J: nan (2 of 3 seeds))")
    assert bad.reason.endswith("; still improving at the end of the budget: A")


def test_decide_spread_claims_keep_the_raw_values():
    df = _seeds({"A": [1.0, 1.1, 0.9, 1.0], "B": [1.0, 5.0, -3.0, 1.0]})
    (row,) = C.decide([_claim(of="spread", expect="lower", metric="fid")], df, ["A", "B"])
    assert row.spread_of["B"].tolist() == [1.0, 5.0, -3.0, 1.0]
    assert row.values["B"].tolist() == [0.0, 4.0, 4.0, 0.0]  # |value - median|
    assert row.verdict in (C.SUPPORTED, C.UNRESOLVED) and row.comparisons[0].diff < 0


def test_unknown_scores_have_no_direction():
    assert C.metric_direction("no_such_score") == 0


def test_gate_verdict_refuses_a_score_without_direction_and_counts_rows():
    from benchmark.regress.compare import Row, counts, verdict

    with pytest.raises(ValueError):
        verdict(1.0, 2.0, 0.1, 0)
    with pytest.raises(ValueError):
        verdict(1.0, 2.0, -0.1, 1)
    assert verdict(1.0, 1.05, 0.1, 1) == "ok" and verdict(1.0, 0.8, 0.1, 1) == "REGRESSION"
    assert verdict(1.0, 1.2, 0.1, 1) == "improvement" and verdict(1.0, 1.2, 0.1, -1) == "REGRESSION"
    rows = [Row("t", m, 1.0, 1.0, 0.1, 1, v) for m, v in (("a", "ok"), ("b", "ok"), ("c", "REGRESSION"))]
    assert counts(rows) == {"ok": 2, "REGRESSION": 1}


def test_gate_verdict_at_its_boundaries():
    from benchmark.regress.compare import verdict

    with pytest.raises(ValueError, match="tolerance >= 0 and a direction of -1 or 1"):
        verdict(1.0, 2.0, math.nan, 1)
    assert verdict(1.0, 1.0, 0.0, 1) == "ok"  # a zero tolerance is allowed
    assert verdict(math.nan, math.nan, 0.1, 1) == "ok" and verdict(math.nan, 1.0, 0.1, 1) == "REGRESSION"
    assert verdict(1.0, math.nan, 0.1, -1) == "REGRESSION"
    assert verdict(1.0, 100.0, math.inf, -1) == "ok"  # an infinite tolerance gates nothing
    for d in (-1, 1):  # exactly one tolerance away is still ok, either way
        assert verdict(1.0, 1.5, 0.5, d) == "ok" and verdict(1.0, 0.5, 0.5, d) == "ok"

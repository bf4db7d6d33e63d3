"""The claims' statistics and record (issue 20, items 8–10): the rank test against scipy and against an exact
enumeration by hand, its default for bounded and heavy-tailed scores, convergence by the slope rule (λ = 0's
steeply falling FID must not read "settled"), the seeds-needed figure only with the claimed sign, claims
registered before the trials and flagged when amended, and the figures' colours and panels.

Planted bugs each test catches: a rank test returning Welch's p (``test_mannwhitney_...``), a changed claim that
is not flagged (``test_every_changed_field_of_a_claim_is_flagged``), a registration overwritten by a later run
(``test_the_runner_registers_before_the_first_trial_and_never_again``), seeds needed for the opposite sign
(``test_seeds_needed_only_with_the_claimed_sign``), two arms sharing a colour (``test_thirty_arms_...``), two
datasets on one axis (``test_each_dataset_gets_panels_of_its_own``).
"""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from benchmark.study import claims as C
from benchmark.study import figures as FG
from benchmark.study import registration as R
from benchmark.study import resolution as RS
from benchmark.study import stats as ST
from benchmark.study import store
from benchmark.study.report import build_report
from benchmark.study.runner import run_study
from benchmark.study.spec import load_spec
from benchmark.study.validity import Level

# ------------------------------------------------------------------------------------------------
# the rank test


def _exact_two_sided(a, b):
    """Mann–Whitney's two-sided p by enumerating every split of the pooled values (ties: mid-ranks)."""
    pooled = np.array([*a, *b], float)
    ranks = stats.rankdata(pooled)
    m, n = len(a), len(b)

    def u(idx):
        return ranks[list(idx)].sum() - m * (m + 1) / 2

    obs = abs(u(range(m)) - m * n / 2)
    splits = list(itertools.combinations(range(m + n), m))
    return sum(abs(u(s) - m * n / 2) >= obs - 1e-12 for s in splits) / len(splits)


@pytest.mark.parametrize(
    "a,b",
    [
        ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]),  # complete separation, 3 seeds: p = 2/20
        ([1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0]),  # 5 seeds: 2/252
        ([8.0, 8.0, 7.0], [8.0, 8.0, 8.0]),  # ties: the permutation test
        ([3.0, 1.0, 4.0, 1.0, 5.0], [9.0, 2.0, 6.0, 5.0, 3.0]),
    ],
)
def test_mannwhitney_is_the_exact_rank_test_not_welch(a, b):
    r = C.mannwhitney(a, b)
    assert r.p == pytest.approx(_exact_two_sided(a, b), abs=1e-9)
    assert r.p != pytest.approx(C.welch(a, b).p)  # a rank test returning Welch's p fails here


def test_mannwhitney_matches_scipy_and_ranks_an_infinity():
    assert C.mannwhitney([1, 2, 3], [4, 5, 6]).p == pytest.approx(0.1)
    a, b = [2.08, math.inf, 2.08, 1.5], [2.58, math.inf, math.inf, 3.0]
    method = stats.PermutationMethod(n_resamples=C.PERMUTATIONS, rng=C.BOOTSTRAP_SEED)
    assert C.mannwhitney(a, b).p == pytest.approx(stats.mannwhitneyu(a, b, method=method).pvalue)
    big_a, big_b = list(np.linspace(0, 1, 12)), list(np.linspace(0.5, 1.5, 12))  # no ties, > 8: asymptotic
    assert C.mannwhitney(big_a, big_b).p == pytest.approx(stats.mannwhitneyu(big_a, big_b).pvalue)


def test_hodges_lehmann_and_its_interval_by_hand():
    counts = ST.u_null_counts(5, 5)
    assert counts.sum() == math.comb(10, 5) and list(counts[:4]) == [1, 1, 2, 3]  # P(U ≤ 2) = 4/252 ≤ 0.025
    assert ST.u_cut(5, 5, 0.05) == 3 and ST.u_cut(3, 3, 0.05) == 0  # P(U = 0) = 1/20 > 0.025: unbounded
    a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0]
    d = sorted(x - y for x in a for y in b)
    est, lo, hi = ST.hodges_lehmann(a, b, 0.05)
    assert est == np.median(d) == -5 and (lo, hi) == (d[2], d[22])  # d_(3) and d_(23) of 25
    assert ST.hodges_lehmann([1, 2, 3], [4, 5, 6], 0.05)[1:] == (-math.inf, math.inf)
    big = ST.u_cut(60, 60, 0.05)  # beyond EXACT_U: the normal approximation
    assert big == math.floor(1800 - 1.959964 * math.sqrt(3600 * 121 / 12))


def test_the_rank_test_is_the_default_for_bounded_and_heavy_tailed_scores():
    for metric in ("modes", "hq", "classes_covered", "precision", "recall", "label_agreement", "rkl2500"):
        assert C.default_test(metric) == "mannwhitney", metric
    for metric in ("fid", "kid", "is", "grad_norm_mean_last", "fid10k_test"):
        assert C.default_test(metric) == "welch", metric
    assert C.default_test("modes", of="spread") == "welch"  # Brown–Forsythe is a t-test of deviations
    base = {"claim": "x", "metric": "modes", "arm": "a", "vs": "b", "expect": "better"}
    assert C.parse_claim(base, "t").test == "mannwhitney"
    assert C.parse_claim({**base, "test": "welch"}, "t").test == "welch"  # a named test is kept


def test_a_rank_claim_decides_where_an_infinity_stops_the_t_test():
    df = pd.DataFrame(
        [
            {"variant": v, "seed": s, "step": 1, "metric": "rkl2500", "value": x}
            for v, xs in {"a": [math.inf, 5.0, math.inf, 6.0, math.inf], "b": [0.1, 0.2, 0.3, 0.2, 0.1]}.items()
            for s, x in enumerate(xs)
        ]
    )
    rank = C.parse_claim({"claim": "a worse", "metric": "rkl", "arm": "a", "vs": "b", "expect": "worse"}, "t")
    t = replace(rank, test="welch")
    r, w = C.decide([rank, t], df, ["a", "b"])
    assert not w.tested and "non-finite" in w.reason  # Welch: a mean over an ∞ is undefined
    assert r.tested and r.p == pytest.approx(2 / math.comb(10, 5))  # every a ranks above every b
    assert r.verdict == C.SUPPORTED and r.comparisons[0].diff == math.inf  # Holm over the one tested claim


# ------------------------------------------------------------------------------------------------
# convergence and planning


def test_lambda_zeros_steeply_falling_fid_is_not_settled():
    """λ = 0's FID falls steeply at every evaluation point while its seeds sit far apart: the old rule, |last
    change| < seed sd, called it settled; the slope of the last three points against its standard error does
    not."""
    offsets = {0: -34.0, 1: 0.0, 2: 40.0}  # seeds 144 ± 34 apart, as the λ page's
    wobble = {0: (0.8, -0.5, 0.2), 1: (-0.3, 0.6, -0.4), 2: (0.1, -0.2, 0.5)}
    steps = list(range(125, 1001, 125))
    rows = []
    for s in (0, 1, 2):
        for i, st in enumerate(steps):
            v = 300 - 22 * i + offsets[s] + (wobble[s][i - 5] if i >= 5 else 0.0)
            rows.append({"variant": "gp_lambda=0", "seed": s, "step": st, "metric": "fid5k_test", "value": v})
    df = pd.DataFrame(rows)
    last = df[df["step"] == 1000]["value"]
    prev = df[df["step"] == 875]["value"]
    old_delta, old_sd = float((last.to_numpy() - prev.to_numpy()).mean()), float(last.std(ddof=1))
    assert abs(old_delta) < old_sd  # what the page used to call settled
    cv = C.convergence(df, "gp_lambda=0", "fid5k_test")
    assert cv.improving and cv.window == 3 and cv.delta == pytest.approx(-44, abs=1.5)


def test_modes_lost_in_the_last_interval_are_still_moving():
    rows = [
        {"variant": "GAN", "seed": s, "step": st, "metric": "modes26k", "value": v}
        for s, vals in enumerate([(700, 690, 640), (760, 740, 690), (650, 660, 600)])
        for st, v in zip((500, 1000, 1500), vals)
    ]
    cv = C.convergence(pd.DataFrame(rows), "GAN", "modes26k")
    assert cv.moving and not cv.improving


def test_seeds_needed_only_with_the_claimed_sign():
    """'λ = 100 beats λ = 10' where λ = 100 is the worse: no seeds-needed figure (more seeds would confirm the
    opposite); with the claimed sign there is one, and a rank test needs at least the seeds at which its exact p
    can reach the level."""
    vals = {"a": [70.0, 68.0, 69.0, 71.0, 67.0], "b": [68.0, 66.0, 67.0, 69.0, 65.0]}
    df = pd.DataFrame(
        [
            {"variant": v, "seed": s, "step": 1, "metric": "fid5k_test", "value": x}
            for v, xs in vals.items()
            for s, x in enumerate(xs)
        ]
    )
    better = C.parse_claim({"claim": "a better", "metric": "fid", "arm": "a", "vs": "b", "expect": "better"}, "t")
    worse = replace(better, text="a worse", expect="worse")
    decided = C.decide([better, worse], df, ["a", "b"])
    assert [d.verdict for d in decided] == [C.UNRESOLVED, C.UNRESOLVED]
    assert np.sign(decided[0].comparisons[0].diff) == 1  # a's mean FID is higher: worse, not better
    res = RS.resolve(decided, [[d.verdict] for d in decided], [1.0])
    (opposite,), (same,) = res[0].needs, res[1].needs
    assert not opposite.computed and opposite.why == RS.OPPOSITE and math.isnan(opposite.seeds)
    assert same.computed and same.seeds == RS.seeds_needed(vals["a"], vals["b"], alpha=0.05 / 2)
    assert RS.rank_seeds(0.05) == 4 and RS.rank_seeds(0.01) == 5 and RS.rank_seeds(0.05 / 7) == 6  # 2 / C(2n, n)
    t_n = RS.seeds_needed(vals["a"], vals["b"], alpha=0.05)
    assert RS.seeds_needed(vals["a"], vals["b"], alpha=0.05, test="mannwhitney") == math.ceil(t_n / (3 / math.pi))


# ------------------------------------------------------------------------------------------------
# registration

CLAIM = {
    "claim": "WGAN-GP covers more modes",
    "metric": "modes",
    "arm": "w",
    "vs": "g",
    "expect": "better",
    "at": "worst",
}


def _spec(claims, **kw):
    from benchmark.study.schema import StudySpec

    return StudySpec.from_dict(
        {"name": "s", "seeds": [0, 1, 2], "budget": {"steps": 100}, "report": {"claims": claims}, **kw}
    )


def _registered(claims, **kw):
    spec = _spec(claims, **kw)
    return R.record(spec)


@pytest.mark.parametrize(
    "field,value",
    [
        ("claim", "WGAN-GP covers many more modes"),
        ("metric", "hq"),
        ("arm", "p"),
        ("vs", ["g", "p"]),
        ("expect", "worse"),
        ("at", "final"),
        ("of", "spread"),
        ("test", "welch"),
        ("by_construction", "it must"),
    ],
)
def test_every_changed_field_of_a_claim_is_flagged(field, value):
    reg = _registered([CLAIM])
    now = {**CLAIM, field: value}
    if field == "of":
        now["expect"] = "higher"
    spec = _spec([now])
    am = R.compare(reg, spec, C.check_claims(spec.report))
    (st,) = am.claims
    assert st.status == R.AMENDED and st.flagged and am.any, field
    changed = {f for f, _, _ in st.changes}
    assert field in changed, (field, st.changes)
    assert st.registered_text == CLAIM["claim"]


def test_what_is_not_a_change_and_what_is_added_or_removed():
    other = {**CLAIM, "claim": "GAN drops modes", "arm": "g", "vs": "w", "expect": "worse"}
    reg = _registered([CLAIM, other])
    same = _spec([{**other, "note": "a new comment"}, {**CLAIM, "vs": ["g"]}])  # reordered, a note, vs as a list
    am = R.compare(reg, same, C.check_claims(same.report))
    assert [s.status for s in am.claims] == [R.AS_REGISTERED] * 2 and not am.any
    new = {**CLAIM, "claim": "a new one", "metric": "fid", "expect": "worse", "at": "final"}
    grown = _spec([CLAIM, new])
    am = R.compare(reg, grown, C.check_claims(grown.report))
    assert [s.status for s in am.claims] == [R.AS_REGISTERED, R.ADDED] and am.removed == ("GAN drops modes",)
    seeds = _spec([CLAIM, other], seeds=[0, 1, 2, 3, 4])
    am = R.compare(reg, seeds, C.check_claims(seeds.report))
    assert am.study == (("seeds", [0, 1, 2], [0, 1, 2, 3, 4]),) and am.any
    budget = _spec([CLAIM, other], budget={"steps": 200})
    assert R.compare(reg, budget, C.check_claims(budget.report)).study[0][0] == "budget"
    assert not R.compare(None, seeds, C.check_claims(seeds.report)).registered
    assert R.digest(reg["claims"], R.study_fields(_spec([CLAIM, other]))) == reg["sha256"]


def test_a_registration_is_written_once(tmp_path):
    assert store.register(tmp_path, "s", "quick", {"claims": [1]})
    p = store.registration_path(tmp_path, "s", "quick")
    before = p.read_bytes()
    assert not store.register(tmp_path, "s", "quick", {"claims": [2]}) and p.read_bytes() == before
    assert store.read_registration(tmp_path, "s", "quick") == {"claims": [1]}
    assert store.read_registration(tmp_path, "s", "long") is None
    assert p.parent.name == store.REGISTERED_DIR and p.parent.parent.name == store.STUDIES_DIR


SMOKE = {
    "name": "regtest",
    "base": {"dataset": "ring8", "model": "toy", "batch_size": 32, "num_threads": 1},
    "axes": {"gp_lambda": [0, 10]},
    "seeds": [0],
    "budget": {"steps": 10},
    "eval_at": [1.0],
    "num_samples": 500,
    "report": {
        "tsne": False,
        "claims": [
            {
                "claim": "λ = 10 covers more modes",
                "metric": "modes",
                "arm": "gp_lambda=10",
                "vs": "gp_lambda=0",
                "expect": "better",
            },
            {
                "claim": "λ = 0 is worse on hq",
                "metric": "hq",
                "arm": "gp_lambda=0",
                "vs": "gp_lambda=10",
                "expect": "worse",
                "at": "worst",
            },
        ],
    },
}


def test_the_runner_registers_before_the_first_trial_and_never_again(tmp_path):
    root = tmp_path / "res"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SMOKE))
    run_study(load_spec(path), root=root, workers=1, progress=False)
    reg = store.read_registration(root, "regtest", "")
    assert [c["claim"] for c in reg["claims"]] == ["λ = 10 covers more modes", "λ = 0 is worse on hq"]
    assert reg["trials_run_before"] == 0 and reg["trials"] == 2 and reg["seeds"] == [0]
    assert reg["claims"][0]["test"] == "mannwhitney"  # the default, resolved when registered
    first = store.registration_path(root, "regtest", "").read_bytes()
    amended = {**SMOKE, "seeds": [0, 1]}
    amended["report"] = {
        **SMOKE["report"],
        "claims": [SMOKE["report"]["claims"][0], {**SMOKE["report"]["claims"][1], "at": "drop", "expect": "higher"}],
    }
    path.write_text(yaml.safe_dump(amended))
    run_study(load_spec(path), root=root, workers=1, progress=False)
    assert store.registration_path(root, "regtest", "").read_bytes() == first  # never overwritten
    page = (build_report("regtest", None, root=root, out_root=tmp_path / "rep") / "README.md").read_text()
    assert "**seeds amended after the trials ran**: registered [0], now [0, 1]" in page
    assert "at: worst → drop" in page and "expect: worse → higher" in page
    assert "**amended after its trials ran**" in page
    csv = pd.read_csv(tmp_path / "rep" / "regtest" / "claims.csv")
    assert csv["registered"].str.contains("amended after its trials ran").all()  # the seeds amend every claim


def test_a_study_first_run_before_registration_registers_late(tmp_path):
    root = tmp_path / "res"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(SMOKE))
    run_study(load_spec(path), root=root, workers=1, progress=False)
    store.registration_path(root, "regtest", "").unlink()  # as a store made before registrations existed
    run_study(load_spec(path), root=root, workers=1, progress=False)
    reg = store.read_registration(root, "regtest", "")
    assert reg["trials_run_before"] == 2
    page = (build_report("regtest", None, root=root, out_root=tmp_path / "rep") / "README.md").read_text()
    assert "It was written after 2 of its 2 trials had already trained" in page
    store.registration_path(root, "regtest", "").unlink()
    page = (build_report("regtest", None, root=root, out_root=tmp_path / "rep") / "README.md").read_text()
    assert "**Not registered**" in page and "| not registered |" in page


def test_a_registration_committed_before_any_run_is_the_one_the_page_compares_with(tmp_path, capsys):
    """`study register` writes studies/registered/<name>-<preset>.json beside the spec, before any result; `study
    run` takes it as the store's registration (its time and commit, not the run's), so a claim edited after
    registering shows as amended; a second register is refused, and so is a tampered file (before any trial)."""
    from benchmark.cli import main
    from helpers import refused

    spec = {**SMOKE, "presets": {"smoke": {}}}
    path = tmp_path / "studies" / "regtest.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(spec))
    assert main(["study", "register", str(path), "--preset", "smoke"]) == 0
    committed = tmp_path / "studies" / "registered" / "regtest-smoke.json"
    first = json.loads(committed.read_text())
    assert [c["claim"] for c in first["claims"]] == ["λ = 10 covers more modes", "λ = 0 is worse on hq"]
    assert first["trials"] == 2 and first["trials_run_before"] == 0
    refused(capsys, ["study", "register", str(path), "--preset", "smoke"], "never rewritten", tree=path.parent)

    amended = {**spec, "report": {**spec["report"], "claims": [{**SMOKE["report"]["claims"][0], "expect": "worse"}]}}
    path.write_text(yaml.safe_dump(amended))
    root, rep = tmp_path / "res", tmp_path / "rep"
    argv = ["study", "run", str(path), "--preset", "smoke", "--workers", "1", "--results", str(root)]
    assert main([*argv, "--reports", str(rep), "--quiet"]) == 0
    reg = store.read_registration(root, "regtest", "smoke")
    assert reg["registered"] == first["registered"] and reg["sha256"] == first["sha256"]
    page = (rep / "regtest" / "README.md").read_text()
    assert "expect: better → worse" in page and "**amended after its trials ran**" in page
    assert f"; torch-fidelity: {importlib.metadata.version('torch-fidelity')};" in page  # the scores' version

    tampered = {**first, "claims": [{**first["claims"][0], "claim": "λ = 10 is better"}]}
    committed.write_text(json.dumps(tampered))
    fresh = tmp_path / "res2"
    capsys.readouterr()
    refused(capsys, [*argv[:-1], str(fresh), "--no-report"], "sha256", "restore it from git")
    assert not fresh.exists()  # refused before anything was written


# ------------------------------------------------------------------------------------------------
# figures


def test_thirty_arms_get_thirty_distinct_colours():
    arms = [f"arm {i}" for i in range(30)]
    colours = FG.arm_colours(arms)
    rgb = np.array([colours[a][:3] for a in arms])
    assert len({tuple(c) for c in rgb}) == 30
    gaps = [np.linalg.norm(rgb[i] - rgb[j]) for i in range(30) for j in range(i)]
    assert min(gaps) > 0.15  # told apart by eye, not merely unequal
    tab10 = FG.plt().get_cmap("tab10")
    assert all(np.allclose(rgb[i], tab10(i)[:3]) for i in range(10))  # ten arms or fewer: tab10 as before
    toy2d = [f"v{i}" for i in range(22)]  # toy2d's 22 arms: PacGAN4 (the last) is not GAN's (the first) colour
    c22 = FG.arm_colours(toy2d)
    assert c22["v21"] != c22["v0"] and len(set(c22.values())) == 22


def _toy_frame():
    rows = []
    for arm, top in (("GAN / ring8", 8), ("GAN / grid25", 25)):
        for s in (0, 1):
            for st in (10, 20):
                rows.append(
                    {
                        "variant": arm,
                        "seed": s,
                        "step": st,
                        "key": f"{arm}{s}",
                        "metric": "modes2500",
                        "value": top - 20 / st,
                    }
                )
    return pd.DataFrame(rows)


def test_each_dataset_gets_panels_of_its_own_with_its_failure_levels():
    df = _toy_frame()
    order = ["GAN / ring8", "GAN / grid25"]
    levels = (
        Level("ring8", "real", "real data", False, {"modes2500": 8.0}),
        Level("ring8", "uniform_box", "uniform over the data's box", True, {"modes2500": 4.0}),
        Level("grid25", "real", "real data", False, {"modes2500": 25.0}),
        Level("grid25", "uniform_box", "uniform over the data's box", True, {"modes2500": 18.0}),
    )
    look = FG.Look(
        FG.arm_colours(order), {"GAN / ring8": "ring8", "GAN / grid25": "grid25"}, frozenset({"GAN / grid25"}), levels
    )
    fig = FG.metrics_vs_step(df, order, ["modes"], look=look)
    drawn = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in drawn] == ["ring8", "grid25"]
    for ax, own, other in ((drawn[0], {4.0, 8.0}, 25.0), (drawn[1], {18.0, 25.0}, 8.0)):
        flat = {
            float(ln.get_ydata()[0]) for ln in ax.lines if len(set(ln.get_ydata())) == 1 and len(ln.get_ydata()) == 2
        }
        assert flat == own and other not in flat  # the reference lines of its own dataset only
        arms = [ln for ln in ax.lines if len(ln.get_xdata()) > 2 or len(set(ln.get_ydata())) > 1]
        assert len(arms) == 1  # one arm's curve per panel: ring8 and grid25 never share an axis
    grid_line = next(ln for ln in drawn[1].lines if len(set(ln.get_ydata())) > 1)
    assert grid_line.get_linestyle() == "--"  # did not learn: dashed
    assert FG.metrics_vs_step(df, order, ["modes"]).axes[0].get_title() == ""  # without a Look: as before
    FG.plt().close("all")

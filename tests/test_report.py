"""The report stage on hand-made records: exact means, sample sds, bold cells, claims decided by stated tests,
Holm adjustment, convergence, ∞ handling, and no code from data (issue 14, issue 15's "no eval")."""

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from benchmark import io
from benchmark.config import make_config
from benchmark.data import load_dataset
from benchmark.errors import UserError
from benchmark.evaluation.mixtures import mixture_metrics
from benchmark.evaluation.runs import evaluate_run
from benchmark.study import claims as C
from benchmark.study import resolution as RS
from benchmark.study.reference import scored_mixture_points
from benchmark.study.report import build_report
from benchmark.study.spec import load_spec, trials
from benchmark.train import train

A, B = "gp_lambda=0", "gp_lambda=10"
SEEDS = [0, 1, 2]
# final step (20) and the step before (10), per arm and seed
FINAL = {
    A: {"modes2500": [2, 3, 4], "hq2500": [80, 90, 85], "rkl2500": [math.inf, 0.5, math.inf]},
    B: {"modes2500": [8, 7, 8], "hq2500": [84, 88, 86], "rkl2500": [0.1, 0.2, 0.3]},
}
EARLY = {
    A: {"modes2500": [5, 5, 5], "hq2500": [50, 50, 50], "rkl2500": [1.0, 1.0, 1.0]},
    B: {"modes2500": [6, 6, 6], "hq2500": [86, 86, 86], "rkl2500": [1.0, 1.0, 1.0]},
}
# a score recorded for two seeds only
TWO_SEEDS = {A: [1.0, 2.0], B: [5.0, 6.0]}

# Welch named where the score's default is the rank test (modes, hq, rkl are bounded or heavy-tailed): these
# claims check the t-test's numbers; tests/test_validity_claims.py checks the default and the rank test.
CLAIMS = [
    {"claim": "λ = 0 covers fewer modes", "metric": "modes", "arm": A, "vs": B, "expect": "worse", "test": "welch"},
    {"claim": "λ = 0 has fewer good samples", "metric": "hq", "arm": A, "vs": B, "expect": "worse", "test": "welch"},
    {
        "claim": "λ = 0 has a larger reverse KL",
        "metric": "rkl",
        "arm": A,
        "vs": "others",
        "expect": "worse",
        "test": "welch",
    },
    {"claim": "λ = 0's critic loss varies more", "metric": "d_loss_var_last", "arm": B, "vs": A, "expect": "higher"},
    {
        "claim": "λ = 0: |∇D| ≠ 1",
        "metric": "grad_norm_mean_last",
        "arm": A,
        "vs": B,
        "expect": "higher",
        "by_construction": "no penalty at λ = 0",
    },
    {
        "claim": "bootstrap: λ = 0 covers fewer modes",
        "metric": "modes",
        "arm": A,
        "vs": B,
        "expect": "worse",
        "test": "bootstrap",
    },
    {
        "claim": "λ = 10 covers fewer modes",
        "metric": "modes",
        "arm": B,
        "vs": "others",
        "expect": "worse",
        "test": "welch",
    },
]


def make_results(root: Path, claims=CLAIMS, extra_report=None, n_critic=None, seeds=SEEDS) -> None:
    """A results folder as a study leaves it: index, per-trial config.yaml, log.jsonl and metrics.jsonl
    (``seeds``: the seeds' names; the values are those of FINAL and EARLY in order)."""
    trials = []
    for arm in (A, B):
        for i, seed in enumerate(seeds):
            key = f"{arm.replace('=', '')}-s{seed}"
            run = root / "trials" / key / "run"
            run.mkdir(parents=True)
            (run / "config.yaml").write_text(
                yaml.safe_dump(
                    {
                        "dataset": "ring8",
                        "model": "toy",
                        "objective": "wgan-gp",
                        "steps": 20,
                        "batch_size": 100,
                        "n_critic": (n_critic or {}).get(arm, 5),
                        "pack": 1,
                        "seed": seed,
                    }
                )
            )
            io.append_jsonl(
                run / "log.jsonl",
                [
                    {
                        "step": s,
                        "d_loss": 0.1 * s,
                        "g_loss": -0.1 * s,
                        "sec": 0.5,
                        **({"grad_norm_mean": 1.0} if arm == B else {}),
                    }
                    for s in range(1, 21)
                ],
            )
            recs = []
            for step, table in ((10, EARLY), (20, FINAL)):
                m = {k: float(v[i]) for k, v in table[arm].items()}
                if step == 20 and i < 2:
                    m["d_loss_var_last200"] = TWO_SEEDS[arm][i]
                recs.append(
                    {
                        "step": step,
                        "metrics": m,
                        "details": {"mode_hist2500": [seed + 1] * 8},
                        "metric_set": ["hq", "modes", "rkl"],
                        "num_samples": 2500,
                        "num_samples_requested": 2500,
                        "dataset": "ring8",
                        "evaluator": {"name": "mixture-geometry", "sha256": None},
                        "git_commit": "abc123",
                        "torch_version": "x",
                        "seconds": 2.0,
                        "run": str(run),
                    }
                )
            io.append_jsonl(run / "metrics.jsonl", recs)
            trials.append({"key": key, "variant": arm, "values": {"gp_lambda": float(arm.split("=")[1])}, "seed": seed})
    spec = {
        "name": "hand",
        "title": "hand-made",
        "description": "",
        "kind": "gan",
        "seeds": list(seeds),
        "eval_at": [0.5, 1.0],
        "metrics": None,
        "num_samples": 2500,
        "split": "test",
        "preset": "",
        "report": {
            "columns": ["modes", "hq", "rkl"],
            "by_step": ["modes"],
            "claims": claims,
            "tsne": False,
            **(extra_report or {}),
        },
    }
    io.write_json(
        root / "studies" / "hand-default.json",
        {"study": "hand", "preset": "", "spec": spec, "command": "hand", "git_commit": "abc123", "trials": trials},
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("res")
    make_results(
        root,
        extra_report={
            "references": [
                {
                    "arm": A,
                    "method": "GAN",
                    "data": "ring8",
                    "metric": "modes",
                    "value": 6.3,
                    "spread": 0.5,
                    "statistic": "mean ± se",
                    "trials": 10,
                    "source": "PacGAN Table 1",
                    "caveat": "other budget",
                }
            ]
        },
    )
    out = build_report("hand", None, root=root, out_root=tmp_path_factory.mktemp("rep"))
    return root, out


def _csv(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "table.csv").set_index("arm")


def test_table_means_sample_sds_at_the_final_step(report):
    _, out = report
    t = _csv(out)
    for arm in (A, B):
        for m in ("modes2500", "hq2500"):
            v = FINAL[arm][m]
            assert t.loc[arm, f"{m}_mean"] == pytest.approx(sum(v) / 3, abs=1e-12)
            mean = sum(v) / 3
            assert t.loc[arm, f"{m}_std"] == pytest.approx(math.sqrt(sum((x - mean) ** 2 for x in v) / 2), abs=1e-12)
            assert t.loc[arm, f"{m}_n"] == 3
    assert t.loc[A, "modes2500_std"] == pytest.approx(1.0)  # ddof = 1 (ddof = 0 would give 0.816)
    page = (out / "table.md").read_text()
    # modes is ‡ on ring8 (it counts 8 of 8 modes for "uniform on the ring", as for real data): never bold there,
    # though B's 7.67 is the best modes (↑)
    assert "| modes2500 ↑ ‡ |" in page and "| 3.00 ± 1.00 |" in page and "| 7.67 ± 0.58 |" in page
    assert "**7.67" not in page and "**3.00" not in page
    assert "**86.0 ± 2.0**" in page and "**85.0 ± 5.0**" not in page  # best hq (↑) is B's 86, not A's 85


def test_infinity_is_reported_never_averaged(report):
    _, out = report
    page = (out / "table.md").read_text()
    assert "∞ (2 of 3 seeds)" in page
    assert "**0.200 ± 0.100**" in page  # the finite arm is best for a ↓ score against an ∞
    t = _csv(out)
    assert math.isinf(t.loc[A, "rkl2500_mean"]) and t.loc[A, "rkl2500_nonfinite"] == 2


def test_real_data_row_under_the_same_protocol(report):
    root, out = report
    t = _csv(out)
    real = [i for i in t.index if i.startswith("real data")]
    assert real == ["real data: ring8 train vs test"]
    assert t.loc[real[0], "modes2500_mean"] == 8  # real samples cover all 8 modes
    assert t.loc[real[0], "hq2500_mean"] > 95
    cached = list((root / "reference").glob("ring8_train-vs-test-random-s0_n2500_*.json"))
    assert len(cached) == 1


def test_claims_decided_by_their_tests(report):
    _, out = report
    c = pd.read_csv(out / "claims.csv")
    by = {r["claim"]: r for _, r in c.iterrows()}
    # Welch on the hand data, checked against scipy directly
    ref = stats.ttest_ind(FINAL[A]["modes2500"], FINAL[B]["modes2500"], equal_var=False)
    ci = ref.confidence_interval(0.95)
    r = by["λ = 0 covers fewer modes"]
    assert r["diff"] == pytest.approx(3 - 23 / 3) and r["p_comparison"] == pytest.approx(ref.pvalue)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert r["verdict"] == "supported"
    # Holm over the 4 tested claims of the page: modes (welch), hq, modes (bootstrap), modes reversed (welch)
    p_hq = stats.ttest_ind(FINAL[A]["hq2500"], FINAL[B]["hq2500"], equal_var=False).pvalue
    p_boot = by["bootstrap: λ = 0 covers fewer modes"]["p_claim"]
    assert p_boot < ref.pvalue < p_hq
    # ranks: p_boot, ref, ref, p_hq -> step-down multipliers 4, 3, 2, 1 with running maxima
    a1 = 4 * p_boot
    a2 = max(a1, 3 * ref.pvalue)
    a3 = max(a2, 2 * ref.pvalue)
    a4 = min(1.0, max(a3, p_hq))
    assert sorted(c.drop_duplicates("claim")["p_holm"].dropna()) == pytest.approx([a1, a2, a3, a4])
    assert r["p_holm"] == pytest.approx(a2) or r["p_holm"] == pytest.approx(a3)
    rev = by["λ = 10 covers fewer modes"]
    assert rev["verdict"] == "contradicted" and rev["diff"] == pytest.approx(23 / 3 - 3)
    assert by["λ = 0 has fewer good samples"]["verdict"] == "not resolved"  # overlapping arms
    assert "∞ (2 of 3 seeds)" in by["λ = 0 has a larger reverse KL"]["why"]
    assert by["λ = 0 has a larger reverse KL"]["verdict"] == "not resolved"
    assert by["λ = 0's critic loss varies more"]["verdict"] == "not resolved"
    assert "fewer than 3 seeds" in by["λ = 0's critic loss varies more"]["why"]
    assert by["λ = 0: |∇D| ≠ 1"]["verdict"] == "not a test"
    b = by["bootstrap: λ = 0 covers fewer modes"]
    # resampled means of A lie in [2, 4], of B in [7, 8]: the interval lies inside [-6, -3] around -4.67
    assert -6 <= b["ci_low"] < 3 - 23 / 3 < b["ci_high"] <= -3 and b["verdict"] == "supported"
    # B's modes still climb (6 -> 7.67, more than its seed sd 0.58): claims touching it say so
    assert "still improving at the end of the budget: gp_lambda=10" in r["why"]
    page = (out / "README.md").read_text()
    assert "Holm" in page and "supported" in page


def test_budget_in_steps_and_epochs_and_evidence_files(report):
    _, out = report
    b = pd.read_csv(out / "budget.csv")
    assert len(b) == 6 and list(b["epochs"]) == pytest.approx([20 * 100 / 100_000] * 6)
    assert list(b["critic_epochs"]) == pytest.approx([20 * 5 * 100 / 100_000] * 6)
    assert list(b["train_seconds"]) == pytest.approx([10.0] * 6) and list(b["score_seconds"]) == pytest.approx(
        [4.0] * 6
    )
    ps = pd.read_csv(out / "per_seed.csv")
    assert len(ps[ps["metric"] == "modes2500"]) == 2 * 3 * 2  # arms x seeds x steps
    assert "modes @ step 10 (0.01 ep)" in (out / "by_step.md").read_text()
    page = (out / "README.md").read_text()
    assert "code of this report" in page and "`abc123`" in page and "sha256 `None`" not in page
    assert "6.30 ± 0.50" in page and "3.00 ± 0.58 (se, 3 seeds)" in page  # reference beside measured, same statistic
    assert "## Convergence" in page and "**still improving**" in page
    for f in ("metrics_vs_step.png", "coverage.png", "coverage_over_training.png", "dynamics.png"):
        assert (out / f).stat().st_size > 0, f
    assert not (out / "metrics_vs_critic_updates.png").exists()  # one n_critic for every arm


def test_spread_claim_tests_absolute_deviations_from_the_median():
    df = pd.DataFrame(
        [
            {"variant": v, "seed": s, "step": 1, "metric": "modes2500", "value": x}
            for v in (A, B)
            for s, x in enumerate(FINAL[v]["modes2500"])
        ]
    )
    claim = C.parse_claim(
        {"claim": "λ = 0 spreads more", "metric": "modes", "arm": A, "vs": B, "of": "spread", "expect": "higher"},
        "t",
        [A, B],
    )
    (row,) = C.decide([claim], df, [A, B])
    assert list(row.values[A]) == [1, 0, 1] and list(row.values[B]) == [0, 1, 0]  # |x − median|
    ref = stats.ttest_ind([1, 0, 1], [0, 1, 0], equal_var=False)
    assert row.p == pytest.approx(ref.pvalue) and row.verdict == "not resolved"
    with pytest.raises(UserError, match="spread over seeds needs expect: higher or lower"):
        C.parse_claim({"claim": "x", "metric": "fid", "arm": A, "of": "spread", "expect": "worse"}, "t")


def test_holm_exact():
    assert C.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert C.holm([0.04, math.nan, 0.001]) == pytest.approx([0.04, math.nan, 0.002], nan_ok=True)


def test_bootstrap_is_seeded():
    assert C.bootstrap([1, 2, 3], [4, 6, 5]) == C.bootstrap([1, 2, 3], [4, 6, 5])


def test_planted_check_string_is_rejected_and_never_runs(tmp_path):
    marker = tmp_path / "MARKER"
    code = f"__import__('os').system('touch {marker}')"
    bad = [{"claim": "x", "variant": A, "check": code}]
    with pytest.raises(UserError, match="not run"):
        C.check_claims({"claims": bad}, "s")
    root = tmp_path / "res"
    make_results(root, claims=bad)
    with pytest.raises(UserError, match="'check' expressions are not run"):
        build_report("hand", None, root=root, out_root=tmp_path / "rep")
    assert not marker.exists()
    src = "".join(p.read_text() for p in sorted(Path(C.__file__).parent.glob("*.py")))  # the whole study stage
    assert "def decide(" in src and not re.search(r"\b(eval|exec)\(", src)


@pytest.mark.parametrize(
    "claim,needle",
    [
        ({"claim": "x", "metric": "fid", "arm": A, "expect": "worse", "tset": "welch"}, "unknown key 'tset'"),
        ({"claim": "x", "metric": "fid", "arm": A, "expect": "worse", "test": "ttest"}, "unknown test 'ttest'"),
        ({"claim": "x", "metric": "fid", "arm": "gp_lambda=1", "expect": "worse"}, "unknown arm 'gp_lambda=1'"),
        (
            {"claim": "x", "metric": "fid", "arm": A, "vs": "gp_lambda=100", "expect": "worse"},
            "unknown arm 'gp_lambda=100'",
        ),
        ({"claim": "x", "metric": "fid", "arm": A, "expect": "bigger"}, "'expect'"),
        ({"claim": "x", "metric": "d_loss_var_last", "arm": A, "expect": "worse"}, "no better direction"),
        ({"claim": "x", "metric": "fid", "arm": A, "expect": "worse", "at": 2}, "'at'"),
        ({"claim": "x", "arm": A, "expect": "worse"}, "missing 'metric'"),
    ],
)
def test_bad_claims_are_one_line(claim, needle):
    with pytest.raises(UserError) as e:
        C.check_claims({"claims": [claim]}, "studies/x.yaml", arms=[A, B])
    msg = str(e.value)
    assert needle in msg and "\n" not in msg and msg.startswith("studies/x.yaml: report.claims[0]")


def test_claim_at_must_be_an_evaluation_point():
    claim = {"claim": "x", "metric": "fid", "arm": A, "expect": "worse", "at": 0.3}
    with pytest.raises(UserError, match="'at: 0.3' is not an evaluation point"):
        C.check_claims({"claims": [claim]}, "s", arms=[A, B], eval_at=[0.5, 1.0])
    (ok,) = C.check_claims({"claims": [{**claim, "at": 0.5}]}, "s", arms=[A, B], eval_at=[0.5, 1.0])
    df = pd.DataFrame(
        [
            {"variant": v, "seed": s, "step": st, "metric": "fid5k_test", "value": 10 * st + s}
            for v in (A, B)
            for s in (0, 1, 2)
            for st in (5, 10)
        ]
    )
    assert list(C.per_seed(df, A, "fid5k_test", ok.at, [0.5, 1.0])) == [50, 51, 52]  # the first of two points
    assert list(C.per_seed(df, A, "fid5k_test", "worst", [0.5, 1.0])) == [100, 101, 102]  # FID: highest is worst


def test_bad_reference_is_one_line():
    with pytest.raises(UserError, match="'statistic'"):
        C.check_claims({"references": [{"metric": "modes", "value": 1.0, "statistic": "±", "source": "x"}]}, "s")
    with pytest.raises(UserError, match="finite"):
        C.check_claims(
            {"references": [{"metric": "modes", "value": math.inf, "statistic": "mean", "source": "x"}]}, "s"
        )


def test_shipped_study_claims_are_valid():
    repo = Path(__file__).resolve().parents[1]
    n = 0
    for p in sorted((repo / "studies").glob("*.yaml")):
        raw = yaml.safe_load(p.read_text())
        if raw.get("kind", "gan") != "gan":
            continue
        arms = list(dict.fromkeys(t.variant for t in trials(load_spec(p))))  # arm names as the runner makes them
        n += len(C.check_claims(raw.get("report") or {}, str(p), arms=arms))
        for preset in raw.get("presets") or {}:  # each preset's own arms and claims (load_spec checks them)
            assert trials(load_spec(p, preset)), (p.name, preset)
    assert n >= 15


def test_convergence_is_the_slope_against_its_standard_error():
    """Two points, three seeds: the slope is the mean change (−11) and its SE the sd of the per-seed changes over
    √3 (1/√3): moving. A change that varies in sign across seeds (+0.5, −1, +0.5) is settled."""
    df = pd.DataFrame(
        [
            {"variant": "a", "seed": s, "step": st, "metric": "fid5k_test", "value": v}
            for s, (v0, v1) in enumerate([(50, 40), (52, 41), (51, 39)])
            for st, v in ((1, v0), (2, v1))
        ]
    )
    cv = C.convergence(df, "a", "fid5k_test")
    assert cv.delta == pytest.approx(-11.0) and cv.se == pytest.approx(1 / math.sqrt(3))
    assert cv.moving and cv.improving and cv.window == 2  # FID falls (↓ better) by far more than 2 SE
    final = df[df["step"] == 2].set_index("seed")["value"]
    wobble = {0: 0.5, 1: -1.0, 2: 0.5}
    flat = df.assign(value=[final[s] - (wobble[s] if st == 1 else 0.0) for s, st in zip(df["seed"], df["step"])])
    cv = C.convergence(flat, "a", "fid5k_test")
    assert cv.delta == pytest.approx(0.0, abs=1e-12) and not cv.moving


def test_claim_against_all_others_needs_every_comparison():
    """Intersection-union: 'a better than others' has the p of its weakest comparison (scipy Welch on the data)."""
    vals = {"a": [10.0, 11.0, 12.0], "b": [20.0, 21.0, 22.0], "c": [11.0, 13.0, 12.5]}
    df = pd.DataFrame(
        [
            {"variant": v, "seed": s, "step": 1, "metric": "fid5k_test", "value": x}
            for v, xs in vals.items()
            for s, x in enumerate(xs)
        ]
    )
    claim = C.parse_claim({"claim": "a best", "metric": "fid", "arm": "a", "expect": "better"}, "t", ["a", "b", "c"])
    (row,) = C.decide([claim], df, ["a", "b", "c"])
    p_b = stats.ttest_ind(vals["a"], vals["b"], equal_var=False).pvalue
    p_c = stats.ttest_ind(vals["a"], vals["c"], equal_var=False).pvalue
    assert p_b < 0.05 < p_c
    assert row.p == pytest.approx(max(p_b, p_c)) and row.verdict == "not resolved"
    assert [x.other for x in row.comparisons] == ["b", "c"]


def test_matched_compute_figure_and_fixed_colours(tmp_path, monkeypatch):
    """n_critic differs: budget in critic epochs and a figure against critic updates; an arm that lacks a log key
    (|∇D| only logged for B) keeps B's colour in that panel."""
    import benchmark.study.figures as F

    make_results(tmp_path / "res", claims=[], n_critic={A: 1, B: 10})
    figs = {}

    def keep(fig, path, **savefig):
        figs[path.name] = fig
        return path.name

    monkeypatch.setattr(F, "save", keep)
    out = build_report("hand", None, root=tmp_path / "res", out_root=tmp_path / "rep")
    b = pd.read_csv(out / "budget.csv").groupby("arm")["critic_epochs"].first()
    assert b[A] == pytest.approx(20 * 1 * 100 / 100_000) and b[B] == pytest.approx(20 * 10 * 100 / 100_000)
    assert "metrics_vs_critic_updates.png" in figs
    ax = figs["metrics_vs_critic_updates.png"].axes[0]
    assert max(max(line.get_xdata()) for line in ax.lines) == 20 * 10  # B's last step x n_critic
    colours = F.arm_colours([A, B])
    dyn = figs["dynamics.png"]
    grad_panel = next(a for a in dyn.axes if a.get_ylabel().startswith("|∇D|"))
    drawn = [line for line in grad_panel.lines if line.get_linestyle() != ":"]  # not the |∇D| = 1 guide
    assert len(drawn) == 1 and drawn[0].get_color() == colours[B] != colours[A]


def test_tsne_figure_comes_from_recorded_pngs_and_scores_nothing(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import benchmark.evaluation.metrics as metrics
    import benchmark.evaluation.runs as runs

    root = tmp_path / "res"
    make_results(root, claims=[])
    png = tmp_path / "t.png"
    plt.imsave(png, np.zeros((8, 8, 3)))
    for arm in (A, B):
        run = root / "trials" / f"{arm.replace('=', '')}-s0" / "run"
        io.append_jsonl(
            run / "metrics.jsonl",
            [
                {
                    "step": 20,
                    "metrics": {},
                    "details": {"tsne_png": str(png)},
                    "metric_set": ["tsne"],
                    "num_samples": 2000,
                }
            ],
        )

    def forbidden(*a, **k):
        raise AssertionError("the report scored a run")

    monkeypatch.setattr(runs, "evaluate_run", forbidden)
    monkeypatch.setattr(
        metrics,
        "evaluate_samples",
        lambda x, *a, **k: forbidden() if x.shape[1] != 2 else {"metrics": {"modes2500": 8.0}},
    )  # only real 2D points (the real-data row) may be scored
    out = build_report("hand", None, root=root, out_root=tmp_path / "rep", tsne=True)
    assert (out / "tsne.png").stat().st_size > 0


def test_tsne_png_recorded_relative_to_the_study_directory_is_found_from_elsewhere(tmp_path, monkeypatch):
    """A study records its t-SNE PNG relative to the directory it ran in (results/trials/KEY/run/eval/...);
    `ganbench report` run from another directory must still find it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmark.study import records
    from benchmark.study.panels import tsne_pngs

    root = tmp_path / "res"
    make_results(root, claims=[])
    run = root / "trials" / f"{A.replace('=', '')}-s0" / "run"
    (run / "eval").mkdir()
    plt.imsave(run / "eval" / "tsne_000020.png", np.zeros((8, 8, 3)))
    rel = f"results/trials/{run.parent.name}/run/eval/tsne_000020.png"  # as recorded from the study's directory
    io.append_jsonl(run / "metrics.jsonl", [{"step": 20, "metrics": {}, "details": {"tsne_png": rel}}])
    monkeypatch.chdir(tmp_path / "res")  # anywhere but the study's directory
    recs = records.load(records.read_index("hand", None, root), root)
    assert tsne_pngs(recs, [A]) == [(A, run / "eval" / "tsne_000020.png")]


def test_an_arm_without_scores_is_named_and_the_rest_reported(tmp_path):
    root = tmp_path / "res"
    make_results(root, claims=[{"claim": "c", "metric": "modes", "arm": A, "vs": "others", "expect": "worse"}])
    index = io.read_json(root / "studies" / "hand-default.json")
    index["trials"].append(
        {"key": "nothing-here", "variant": "gp_lambda=100", "values": {"gp_lambda": 100.0}, "seed": 0}
    )
    io.write_json(root / "studies" / "hand-default.json", index)
    out = build_report("hand", None, root=root, out_root=tmp_path / "rep")
    page = (out / "README.md").read_text()
    assert "gp_lambda=100 seed 0 (not run)" in page
    c = pd.read_csv(out / "claims.csv")
    assert list(c["verdict"]) == ["not resolved"] and "no scores for gp_lambda=100" in c["why"][0]


def test_spec_with_a_check_string_fails_before_training(tmp_path, capsys):
    from benchmark.cli import main

    marker = tmp_path / "MARKER"
    spec = {
        "name": "evil",
        "base": {"dataset": "ring8", "model": "toy"},
        "axes": {"gp_lambda": [0, 10]},
        "budget": {"steps": 2},
        "num_samples": 2500,
        "report": {"claims": [{"claim": "x", "check": f"__import__('os').system('touch {marker}')"}]},
    }
    p = tmp_path / "evil.yaml"
    p.write_text(yaml.safe_dump(spec))
    code = main(["study", "run", str(p), "--preset", "", "--results", str(tmp_path / "res"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "'check' expressions are not run" in err, err
    assert not (tmp_path / "res").exists() and not marker.exists()


def test_report_removes_temporaries_a_killed_report_left(tmp_path):
    """A report killed mid-write leaves '.name.<hex>.tmp.png'; the next report (under its lock) removes it."""
    root = tmp_path / "res"
    make_results(root)
    out = tmp_path / "rep" / "hand"
    out.mkdir(parents=True)
    stale = out / ".metrics_vs_step.0a1b2c3d.tmp.png"
    stale.write_bytes(b"half a figure")
    build_report("hand", None, root=root, out_root=tmp_path / "rep")
    assert not stale.exists()
    assert (out / "README.md").is_file()
    assert not list(out.glob(".*.tmp*"))


@pytest.mark.parametrize("d,n", [(0.5, 64), (0.8, 26), (1.0, 17), (0.2, 394)])
def test_seeds_needed_matches_published_power_tables(d, n):
    """Two-sided two-sample t-test, α = 0.05, power 0.8: Cohen (1988) Table 2.4.1 gives 64, 26, 17 per group
    for d = 0.5, 0.8, 1.0; for d = 0.2 the exact noncentral t (G*Power) gives 394 (Cohen's approximation 393)."""
    a = np.array([-1.0, 0.0, 1.0])  # sample sd exactly 1
    assert RS.seeds_needed(a + d, a) == n
    assert RS.seeds_needed(a, a + d) == n  # the sign of the difference does not matter
    assert math.isnan(RS.seeds_needed(a, a))  # no difference: no number of seeds finds it


@pytest.mark.parametrize(
    "verdicts,k",
    [
        (["not resolved", "supported", "not resolved", "supported", "supported"], 4),
        (["supported", "supported"], 1),
        (["contradicted", "contradicted", "contradicted"], 1),
        (["supported", "not resolved"], None),
        (["supported", "contradicted"], 2),
        (["not a test", "not a test"], None),
    ],
)
def test_resolved_from_is_where_the_final_verdict_starts_to_hold(verdicts, k):
    assert RS.resolved_from(verdicts) == k


def test_claims_decided_along_training(report):
    """The hand data at its two evaluation points: at step 10 the modes arms have no spread (test undefined),
    at step 20 they separate; the hq arms overlap at both."""
    _, out = report
    c = pd.read_csv(out / "claims.csv")
    by = {r["claim"]: r for _, r in c.iterrows()}
    r = by["λ = 0 covers fewer modes"]
    assert r["verdicts_along_training"] == "not resolved supported"
    assert r["resolved_from_point"] == 2 and r["resolved_from_fraction"] == 1.0
    assert math.isnan(r["seeds_needed_80pct_power"])  # resolved: nothing to plan
    hq = by["λ = 0 has fewer good samples"]
    assert hq["verdicts_along_training"] == "not resolved not resolved" and math.isnan(hq["resolved_from_point"])
    # not resolved: planning figure from the final per-seed values (d = 1 / pooled sd 3.81 -> far more than 3)
    # ... at Holm's strictest level over the page's 6 claims that are tests (the 7th holds by construction)
    strict = RS.seeds_needed(FINAL[A]["hq2500"], FINAL[B]["hq2500"], alpha=0.05 / 6)
    assert hq["seeds_needed_80pct_power"] == strict > RS.seeds_needed(FINAL[A]["hq2500"], FINAL[B]["hq2500"]) > 100
    assert by["λ = 0: |∇D| ≠ 1"]["verdicts_along_training"] == "not a test not a test"
    page = (out / "README.md").read_text()
    assert "### Where the question resolves" in page and "point 2 of 2 (100% of the budget)" in page
    assert "α / m = 0.05 / 6" in page
    assert "λ = 0: \\|∇D\\| ≠ 1 | – –" in page  # a | in a claim does not break the table


def test_truncate_keeps_each_trials_first_points_whatever_its_steps():
    df = pd.DataFrame(
        {
            "variant": ["a"] * 4 + ["b"] * 4,
            "seed": [0] * 8,
            "step": [10, 10, 20, 20, 50, 50, 100, 100],
            "metric": ["m", "n"] * 4,
            "value": range(8),
        }
    )
    one = RS.truncate(df, 1)
    assert sorted(one["step"]) == [10, 10, 50, 50]  # b's first point is at step 50 (its own budget)
    assert len(RS.truncate(df, 2)) == 8


def test_drop_is_the_largest_fall_from_the_best_so_far():
    """'at: drop' measures what was lost during training (collapse), in the score's better direction."""
    df = pd.DataFrame(
        {
            "variant": ["a"] * 8,
            "seed": [0] * 4 + [1] * 4,
            "step": [1, 2, 3, 4] * 2,
            "metric": ["classes_covered5k"] * 8,
            "value": [2, 6, 4, 5, 1, 2, 3, 4],
        }
    )
    assert list(C.per_seed(df, "a", "classes_covered5k", "drop")) == [2.0, 0.0]  # 6 -> 4; never fell
    fid = df.assign(metric="fid5k_test", value=[100, 80, 90, 70, 50, 60, 65, 40])
    assert list(C.per_seed(fid, "a", "fid5k_test", "drop")) == [10.0, 15.0]  # lower is better: 80 -> 90; 50 -> 65
    with pytest.raises(UserError, match="at: drop"):
        C.parse_claim(
            {"claim": "x", "metric": "classes_covered", "arm": A, "vs": B, "expect": "worse", "at": "drop"}, "w"
        )


def test_mixture_scatter_points_are_the_scored_ones(tmp_path):
    """The toy2d scatter redraws the samples a record scored: regenerated from the stored generator with the
    record's seed and count, they give back its mode histogram and high-quality share exactly (a run trained
    far enough that ~20 % of samples are high quality, so another seed's samples would not)."""
    cfg = make_config(
        {
            "dataset": "ring8",
            "model": "toy",
            "objective": "gan",
            "minibatch_disc": True,
            "steps": 600,
            "checkpoint_every": 600,
            "batch_size": 100,
            "num_threads": 1,
        }
    )
    train(cfg, tmp_path / "ring", progress=False)
    (rec,) = evaluate_run(tmp_path / "ring", num_samples=2500, seed=7, progress=False)
    assert rec["metrics"]["hq2500"] > 5  # enough high-quality samples for the histogram to tell seeds apart
    x, _, step = scored_mixture_points(tmp_path / "ring", rec)
    ring = load_dataset("ring8", split="test")
    again = mixture_metrics(x, ring.means, ring.std)
    assert step == 600 and len(x) == 2500
    assert again["hist"] == rec["details"]["mode_hist2500"] and again["hq"] == pytest.approx(rec["metrics"]["hq2500"])


def test_each_record_file_is_read_once_per_page(tmp_path, monkeypatch):
    """The report stage reads the index, each metrics.jsonl and each log.jsonl once (records.load), and every
    table, figure and page section works from those records (it read metrics.jsonl four times per page)."""
    import collections

    import benchmark.io as bio

    root = tmp_path / "res"
    make_results(root)
    reads = collections.Counter()
    for name in ("read_jsonl_checked", "read_json_checked"):  # the guarded readers every stage reads through
        real = getattr(bio, name)
        monkeypatch.setattr(bio, name, lambda p, *a, _real=real, **k: reads.update([Path(p).name]) or _real(p, *a, **k))
    build_report("hand", None, root=root, out_root=tmp_path / "rep")
    trials = 2 * len(SEEDS)
    assert reads["metrics.jsonl"] == trials and reads["log.jsonl"] == trials, reads
    assert reads["hand-default.json"] == 1, reads


def test_records_are_typed_and_left_as_stored(tmp_path):
    """records.load gives the typed spec (an index written before 'eval_labels' was retired still loads) and the
    records as stored (the report marks none of them)."""
    from benchmark.study import records
    from benchmark.study.kinds import KINDS
    from benchmark.study.schema import Budget, StudySpec

    root = tmp_path / "res"
    make_results(root)
    p = root / "studies" / "hand-default.json"
    index = io.read_json(p)
    index["spec"].update(eval_labels=["half", "end"], budget={"steps": 20, "epochs": None})
    io.write_json(p, index)
    recs = records.load(records.read_index("hand", None, root), root)
    assert isinstance(recs.spec, StudySpec) and recs.spec.budget == Budget(steps=20)
    assert recs.spec.eval_at == [0.5, 1.0] and recs.order == [A, B] and len(recs.trials) == 6
    assert all(len(t.used) == 2 and t.scored and t.failed is None for t in recs.trials)
    assert sorted(recs.scores["metric"].unique()) == ["d_loss_var_last200", "hq2500", "modes2500", "rkl2500"]
    page = KINDS.get(recs.spec.kind).page(recs)  # the whole page, built from these records
    assert "## Results" in page.lines and "table.csv" in page.files and "coverage.png" in page.figures
    stored = [r for t in recs.trials for r in io.read_jsonl(t.run_dir / "metrics.jsonl")]
    assert [dict(r) for t in recs.trials for r in t.records] == stored and not any("_key" in r for r in stored)


def test_one_seed_panels_name_the_lowest_seed(tmp_path):
    """Seeds 3, 4, 5: the dynamics panel (the first seed of each arm) says seed 3, not seed 0."""
    make_results(tmp_path / "res", claims=[], seeds=[3, 4, 5])
    page = (build_report("hand", None, root=tmp_path / "res", out_root=tmp_path / "rep") / "README.md").read_text()
    assert "### Training dynamics (seed 3 of each arm)" in page and "seed 0" not in page


def test_the_2d_note_says_what_the_scatter_shows(report):
    """No generator is stored in the hand-made records: the note names the arms the scatter leaves out, and no
    longer says the records do not keep the scored points (the scatter regenerates them)."""
    _, out = report
    page = (out / "README.md").read_text()
    assert "records do not keep" not in page and not (out / "scatter.png").exists()
    assert "left out of the scatter, no generator stored at the scored step: gp_lambda=0, gp_lambda=10" in page


def test_one_number_format_and_one_nonfinite_text():
    from benchmark.regress.baseline import tolerance
    from benchmark.study.formatting import mean_sd, nonfinite_text, num, of_seeds

    assert [num(x) for x in (123.4, 12.34, 1.234, 0.1234, -0.05, math.nan, None, -math.inf)] == [
        "123",
        "12.3",
        "1.23",
        "0.123",
        "-0.050",
        "–",
        "–",
        "−∞",
    ]
    assert mean_sd(3.0, 1.0) == "3.00 ± 1.00" and mean_sd(86.0, math.nan) == "86.0" and mean_sd(math.inf) == "∞"
    assert nonfinite_text([math.inf, 1.0, 2.0]) == "∞ (1 of 3 seeds)"
    assert nonfinite_text([math.nan, 1.0]) == "nan (1 of 2 seeds)"  # a NaN is not an ∞
    assert (
        tolerance([1.0, math.inf, 2.0], 1.0, "fid10k_test")[1]["note"] == f"non-finite on {of_seeds(1, 3)}: not gated"
    )
    assert of_seeds(1, 3) == "1 of 3 seeds"


def test_a_study_asking_for_default_and_more_reads_the_records_that_hold_both():
    """`metrics: [default, dc]`: a record scored with the dataset's defaults (a conditional arm's with its label
    metrics) and dc is the study's; one without dc, or without a default metric, is another protocol's."""
    from types import SimpleNamespace

    from benchmark.study.records import protocol_records

    spec = SimpleNamespace(metrics=["default", "dc"], num_samples=1000)
    base = ["fid", "kid", "is", "pr", "coverage", "lpips", "dynamics"]

    def rec(step, metric_set):
        return {"step": step, "num_samples": 1000, "dataset": "mnist", "metric_set": metric_set}

    kept = protocol_records(
        [rec(1, base + ["dc"]), rec(2, base + ["conditional", "dc"]), rec(3, base), rec(4, ["fid", "dc"])], spec
    )
    assert [r["step"] for r in kept] == [1, 2]

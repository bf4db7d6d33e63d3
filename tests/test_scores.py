"""Score declarations (benchmark/evaluation/scores.py, the @metric(scores=...) of benchmark/evaluation/metrics/): every score's
direction pinned in a table, names built and resolved from the declarations only, undeclared names and
undeclared scores refused, and a real scoring run whose every name resolves."""

import pytest
import torch

from benchmark.evaluation import scores as S
from benchmark.evaluation.metrics import (
    METRICS,
    Context,
    Options,
    ScoreSpec,
    evaluate_samples,
    higher,
    lower,
    metric,
    neutral,
    score,
    score_spec,
)

# Which way each declared score is better: the known answer, written down by hand (lower FID is better, more
# modes is better, ...). A declaration whose direction flips, or a new score with no entry here, fails.
DIRECTIONS = {
    "fid": -1,
    "kid": -1,
    "kid_std": 0,
    "is": 1,
    "is_std": 0,
    "precision": 1,
    "recall": 1,
    "classes_covered": 1,
    "class_kl": -1,
    "class_entropy": 1,
    "mode_score": 1,
    "evaluator_agreement": 0,
    "evaluator_tv": 0,  # how far the two evaluators agree: a property of the instrument
    "unreadable_share": -1,
    "classes_covered_readable": 1,
    "label_agreement": 1,
    "label_agreement_second": 1,
    "intra_fid": -1,
    "lpips": 0,
    "lpips_real": 0,
    "lpips_class": 0,  # diversity: real data sets the level, noise beats it
    "feat_div": 0,
    "feat_div_real": 0,
    "feat_div_class": 0,  # the same over the evaluator's features (no AlexNet)
    "density": 1,  # fidelity, as precision (a collapsed set can exceed 1: read it with coverage)
    "dcoverage": 1,
    "vendi": 1,  # effective number of distinct samples: on the classifier's features noise scores below real
    "vendi_class": 1,
    "vendi_pred": 1,  # within the predicted class, any generator
    "vendi_pred_real": 0,  # the real level beside it: a reference, not a score to win
    "ndb": -1,  # share of k-means bins of real training data whose proportion differs (about alpha for real data)
    "ndb_js": -1,  # JS divergence of the bin histograms
    "modes": 1,
    "modes_readable": 1,
    "readable_triples": 1,
    "kl": -1,
    "hq": 1,
    "rkl": -1,
    "d_loss_var_last": 0,
    "g_loss_var_last": 0,
    "grad_norm_mean_last": 0,
    "grad_norm_std_last": 0,
    "grad_norm_max_last": 0,
    "wdist_mean_last": 0,
    "wdist_var_last": 0,
    "theta": 0,
    "js_true": 0,
    "kl_true": 0,
    "em_true": 0,
    "tv_true": 0,
    "js_gan": 0,
    "grad_gan_ns": 0,
    "grad_gan_minimax": 0,
    "em_wgangp": 0,
    "grad_wgangp": 0,
}


def test_every_declared_score_has_its_pinned_direction():
    got = {s.base: s.direction for _, s in S.declared()}
    missing = sorted(set(got) - set(DIRECTIONS))
    assert not missing, f"declared scores without a pinned direction in this test: {missing}"
    assert {b: got.get(b) for b in DIRECTIONS} == DIRECTIONS


# Names as records and the committed baseline hold them -> (base, direction, n, split).
NAMES = [
    ("fid10k_test", "fid", -1, 10000, "test"),
    ("fid1k_train", "fid", -1, 1000, "train"),
    ("kid10k_test", "kid", -1, 10000, "test"),
    ("kid_std10k_test", "kid_std", 0, 10000, "test"),
    ("is10k", "is", 1, 10000, None),
    ("is_std1k", "is_std", 0, 1000, None),
    ("precision1k_test", "precision", 1, 1000, "test"),
    ("recall5k_test", "recall", 1, 5000, "test"),
    ("classes_covered10k", "classes_covered", 1, 10000, None),
    ("class_kl5k", "class_kl", -1, 5000, None),
    ("class_entropy1k", "class_entropy", 1, 1000, None),
    ("mode_score1k", "mode_score", 1, 1000, None),
    ("label_agreement1k", "label_agreement", 1, 1000, None),
    ("intra_fid1k_test", "intra_fid", -1, 1000, "test"),
    ("lpips10k", "lpips", 0, 10000, None),
    ("lpips_real10k_test", "lpips_real", 0, 10000, "test"),
    ("modes26k", "modes", 1, 26000, None),
    ("modes2500", "modes", 1, 2500, None),
    ("kl26k", "kl", -1, 26000, None),
    ("hq2500", "hq", 1, 2500, None),
    ("rkl2500", "rkl", -1, 2500, None),
    ("d_loss_var_last200", "d_loss_var_last", 0, 200, None),
    ("grad_norm_mean_last200", "grad_norm_mean_last", 0, 200, None),
    ("wdist_mean_last1000", "wdist_mean_last", 0, 1000, None),
    ("kl_true", "kl_true", 0, None, None),
]


@pytest.mark.parametrize("name,base,d,n,split", NAMES)
def test_names_resolve_from_declarations(name, base, d, n, split):
    assert S.metric_base(name) == base and S.direction(name) == d
    r = S.resolve(name)
    assert (r["n"], r["split"]) == (n, split)
    assert r["spec"].name(n, split) == name  # the declaration writes exactly this name back


@pytest.mark.parametrize(
    "name",
    [
        "fid10k",  # fid carries its split
        "is10k_test",  # is carries none
        "fid10000_test",
        "fid010k_test",
        "fid1.5k_test",
        "fidk_test",
        "fid_test",  # not a tag that tag(N) writes
        "modes",
        "kid_std",
        "lpips_classy10k",
        "d_loss_var_last",
        "grad_norm_mean_last1k",  # window in full
        "kl_true5k",
        "nosuchscore10k_test",
        "",
        "class_hist10k",
    ],
)
def test_undeclared_names_have_no_direction(name):
    assert S.resolve(name) is None and S.direction(name) == 0 and S.metric_base(name) == name


def test_declaring_a_score_is_one_line_and_bases_are_unique():
    assert lower("x", "X", split=True) == ScoreSpec("x", -1, split=True, label="X")
    assert higher("y").direction == 1 and neutral("z", count="").name() == "z"
    assert score_spec("fid").name(2500, "train") == "fid2500_train"
    with pytest.raises(ValueError, match="already declared by metric 'fid'"):
        metric("fid_again", ("image",), scores=(lower("fid"),))(lambda ctx: ({}, {}))
    assert "fid_again" not in METRICS
    with pytest.raises(ValueError):
        ScoreSpec("fid", 2)  # a direction is -1, 0 or 1
    with pytest.raises(ValueError, match="give one of"):
        score_spec("fid").name(1000)  # a split score needs its split


def test_a_metric_writing_an_undeclared_score_is_a_programming_error(monkeypatch):
    items = dict(METRICS._items)
    monkeypatch.setattr(METRICS, "_items", items)
    metric("planted", ("points",), scores=(higher("planted_ok"),))(
        lambda ctx: ({ctx.name("planted_ok"): 1.0, f"planted_typo{ctx.t}": 2.0}, {})
    )
    assert S.direction("planted_ok100") == 1  # a newly registered metric's scores resolve at once
    ctx = Context(torch.zeros(100, 2), None, Options("ring8"))
    with pytest.raises(RuntimeError, match="undeclared score.*planted_typo100"):
        score(ctx, ["planted"])
    monkeypatch.undo()
    assert S.direction("planted_ok100") == 0


def _digits(n):
    from benchmark.data import load_dataset

    return load_dataset("digits", split="train").images[:n]


def test_every_score_of_a_real_evaluation_resolves():
    """Image metrics (classifier present) and 2D mode counting: each written name is declared, with its protocol."""
    from benchmark.errors import UserError
    from benchmark.evaluation.metrics import evaluator_info

    recs = [evaluate_samples(torch.randn(2500, 2) * 0.05 + torch.tensor([1.0, 0.0]), None, "ring8")]
    ring = recs[0]["metrics"]
    assert ring["modes2500"] == 1.0 and S.direction("modes2500") == 1  # one tight blob on one of the 8 modes
    image_metrics = ["fid", "kid", "is", "pr", "coverage", "conditional", "lpips"]
    try:
        evaluator_info("digits", "classifier", image_metrics)  # the pinned evaluators' weights are there
    except UserError as e:
        pytest.skip(f"digits evaluator not available: {e}")
    recs.append(evaluate_samples(_digits(1000), torch.arange(1000) % 10, "digits", image_metrics))
    for rec in recs:
        n = 2500 if rec["dataset"] == "ring8" else 1000
        for name in rec["metrics"]:
            r = S.resolve(name)
            assert r is not None, name
            assert r["n"] == n and r["split"] == ("test" if r["spec"].split else None), name
    assert {S.metric_base(m) for m in recs[1]["metrics"]} >= {
        "fid",
        "kid",
        "kid_std",
        "is",
        "precision",
        "recall",
        "classes_covered",
        "label_agreement",
        "intra_fid",
    }


def test_the_declarations_import_no_torch_and_load_the_metrics_when_asked():
    """scores.py is what the report, the gate and the claims read: importing it must not import torch or the
    evaluator; asking it about a metric's score loads the metrics package then (and only then)."""
    import subprocess
    import sys

    code = (
        "import sys, benchmark.evaluation.scores as S\n"
        "assert 'torch' not in sys.modules and 'benchmark.evaluation.metrics' not in sys.modules\n"
        "assert S.resolve('theta')['metric'] == 'parallel-lines' and 'torch' not in sys.modules  # declared here\n"
        "assert S.direction('fid10k_test') == -1 and 'benchmark.evaluation.metrics' in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_splits_a_score_names_are_the_datasets_splits():
    from benchmark.data import SPLITS

    assert S.SPLITS == SPLITS

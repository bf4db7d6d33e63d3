"""Class coverage, class KL, Mode Score, conditional label agreement / intra-FID, LPIPS diversity, t-SNE."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark.evaluation import coverage as cov
from benchmark.evaluation import diversity
from benchmark.evaluation.metrics import evaluate_samples
from helpers import MNIST_ROOT, needs_mnist

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


# ---- pure functions ---------------------------------------------------------------------------


def test_two_of_ten_even_classes_is_log5_from_uniform():
    hist = torch.zeros(10, dtype=torch.long)
    hist[1] = hist[7] = 500
    assert cov.kl_divergence(hist, torch.ones(10)) == pytest.approx(math.log(5), abs=1e-12)
    assert cov.classes_covered(hist, torch.ones(10)) == 2
    assert cov.entropy(hist) == pytest.approx(math.log(2))


def test_coverage_threshold_is_a_share_of_the_expected_count():
    prior = torch.ones(10)
    hist = torch.full((10,), 100)
    hist[3] = 7  # N = 816, expected 81.6 per class: 7 < 10% of it, 9 >= 10% of it
    hist[5] = 9
    assert cov.classes_covered(hist, prior, threshold=0.1) == 9
    assert cov.classes_covered(hist, prior, threshold=0.0) == 10


def test_mode_score_and_kl_edge_cases():
    logits = torch.full((100, 10), -30.0)
    logits[torch.arange(100), torch.arange(100) % 10] = 30.0  # confident, evenly spread
    assert cov.mode_score(logits, torch.ones(10)) == pytest.approx(10, rel=1e-6)
    one = torch.full((100, 10), -30.0)
    one[:, 2] = 30.0
    assert cov.mode_score(one, torch.ones(10)) == pytest.approx(math.exp(-math.log(10)), rel=1e-6)
    assert cov.kl_divergence(torch.tensor([1, 1]), torch.tensor([1, 0])) == math.inf


# ---- on real MNIST ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    from benchmark.data import load_dataset

    return load_dataset("mnist", root=str(MNIST_ROOT), split="train"), load_dataset(
        "mnist", root=str(MNIST_ROOT), split="test"
    )


def coverage_of(x, **kw):
    return evaluate_samples(x, None, "mnist", ["coverage"], data_root=str(MNIST_ROOT), **kw)


@needs_mnist
def test_ones_and_sevens_cover_exactly_two_classes(data):
    tr, te = data
    x = torch.cat([te.images[te.labels == 1][:500], te.images[te.labels == 7][:500]])
    rec = coverage_of(x)
    m = rec["metrics"]
    assert m["classes_covered1k"] == 2
    hist = torch.tensor(rec["details"]["class_hist1k"])
    # log 5 for a perfect reader; each stray read (3 of 1000 here, within the 99.3 % spec) costs ~0.007 nats
    assert cov.kl_divergence(hist, torch.ones(10)) == pytest.approx(math.log(5), abs=0.035)
    prior = torch.bincount(tr.labels, minlength=10)
    assert m["class_kl1k"] == pytest.approx(cov.kl_divergence(hist, prior), abs=1e-9)
    assert m["class_entropy1k"] == pytest.approx(math.log(2), abs=0.05)


@needs_mnist
def test_single_class_covers_one(data):
    _, te = data
    m = coverage_of(te.images[te.labels == 3][:1000])["metrics"]
    assert m["classes_covered1k"] == 1
    full = coverage_of(te.images[:1000])["metrics"]
    assert full["classes_covered1k"] == 10
    assert full["class_kl1k"] < m["class_kl1k"] and full["mode_score1k"] > m["mode_score1k"]
    assert full["class_entropy1k"] == pytest.approx(math.log(10), abs=0.05)


@needs_mnist
def test_conditional_label_agreement_and_intra_fid(data, tmp_path):
    _, te = data
    x, y = te.images[:1000], te.labels[:1000]
    g = torch.Generator().manual_seed(0)
    wrong = y[torch.randperm(len(y), generator=g)]
    kw = dict(data_root=str(MNIST_ROOT), cache_root=tmp_path)
    good = evaluate_samples(x, y, "mnist", ["conditional"], **kw)["metrics"]
    bad = evaluate_samples(x, wrong, "mnist", ["conditional"], **kw)["metrics"]
    assert good["label_agreement1k"] > 0.98
    assert bad["label_agreement1k"] < 0.2
    assert good["label_agreement_second1k"] > 0.95 and bad["label_agreement_second1k"] < 0.2  # the second reader
    assert good["label_agreement_second1k"] != good["label_agreement1k"]  # its own reading, not the primary's
    assert good["intra_fid1k_test"] < bad["intra_fid1k_test"]


@needs_mnist
def test_diversity_names_what_ran_and_drops_under_collapse(data):
    from benchmark.evaluation.diversity import alexnet_weights_present

    _, te = data
    kw = dict(data_root=str(MNIST_ROOT))
    full = evaluate_samples(te.images[:1000], None, "mnist", ["lpips"], **kw)
    collapsed = evaluate_samples(te.images[:1].expand(1000, -1, -1, -1), None, "mnist", ["lpips"], **kw)
    # lpips* names only for LPIPS itself: without AlexNet the stand-in is feat_div*, and one line says so
    alex = alexnet_weights_present()
    pre = "lpips" if alex else "feat_div"
    assert full["evaluator"]["lpips_backbone"] == ("lpips-alex" if alex else "feat-classifier-mnist")
    m, c = full["metrics"], collapsed["metrics"]
    assert not any(k.startswith("lpips") for k in m) or alex
    assert m[f"{pre}1k"] > 0 and m[f"{pre}_real1k_test"] > 0
    assert c[f"{pre}1k"] == pytest.approx(0, abs=1e-6)
    # real-vs-real: the generated figure (the test set) sits close to the real one
    assert m[f"{pre}1k"] == pytest.approx(m[f"{pre}_real1k_test"], rel=0.05)
    # conditional: within-class diversity is lower than across classes
    y = te.labels[:1000]
    per = evaluate_samples(te.images[:1000], y, "mnist", ["lpips"], **kw)["metrics"]
    assert per[f"{pre}_class1k"] < per[f"{pre}1k"]


def test_without_alexnet_the_fallback_is_named_feat_div(monkeypatch, capsys):
    from benchmark.evaluation import diversity as D

    monkeypatch.setattr(D, "alexnet_weights_present", lambda: False)
    monkeypatch.setattr(D, "_SAID", {})
    monkeypatch.setenv(D.SAID_ENV, "")  # an in-process study earlier in this worker said it already
    _, backbone = D.lpips_distance("digits")
    assert backbone == "feat-classifier-digits" and D.score_prefix(backbone) == "feat_div"
    assert D.score_prefix("lpips-alex") == "lpips"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "AlexNet weights" in err and "not LPIPS" in err


# ---- the two evaluators: agreement, TV, readable share ----------------------------------------


def test_agreement_and_tv_on_hand_made_predictions():
    a = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    b = torch.tensor([0, 1, 1, 1, 2, 3, 3, 0])
    assert cov.agreement(a, b) == pytest.approx(5 / 8)
    # hist a = [2, 2, 2, 2], hist b = [2, 3, 1, 2] (of 8): TV = (0 + 1 + 1 + 0) / 8 / 2
    assert cov.total_variation(cov.histogram(a, 4), cov.histogram(b, 4)) == pytest.approx(1 / 8)
    # a permutation of labels keeps the histogram (TV 0) while agreement is 0
    c = (a + 1) % 4
    assert cov.agreement(a, c) == 0.0
    assert cov.total_variation(cov.histogram(a, 4), cov.histogram(c, 4)) == 0.0
    # disjoint supports: TV 1
    assert cov.total_variation(torch.tensor([5, 0]), torch.tensor([0, 3])) == pytest.approx(1.0)


def _logits(pred, conf, k=4):
    """Logits whose softmax puts ``conf`` on ``pred`` and the rest evenly on the other classes."""
    p = torch.full((len(pred), k), 0.0)
    rest = (1 - torch.tensor(conf)) / (k - 1)
    p[:] = rest[:, None]
    p[torch.arange(len(pred)), torch.tensor(pred)] = torch.tensor(conf)
    return p.log()


def test_cross_check_unreadable_share_and_readable_coverage_by_hand():
    prior = torch.ones(4)
    # 6 samples; evaluator A confident on 0, 1, 2, 3; B confident on samples 0, 1, 4. Neither on sample 5.
    la = _logits([0, 1, 2, 3, 0, 1], [0.99, 0.99, 0.99, 0.99, 0.5, 0.5])
    lb = _logits([0, 1, 2, 0, 3, 2], [0.99, 0.99, 0.5, 0.5, 0.99, 0.5])
    r = cov.cross_check(la, lb, prior, tau_a=0.9, tau_b=0.9, threshold=0.1)
    assert r["agreement"] == pytest.approx(3 / 6)
    # hist A = [2, 2, 1, 1], hist B = [2, 1, 2, 1]: TV = (0 + 1 + 1 + 0) / 6 / 2
    assert r["tv"] == pytest.approx(1 / 6)
    assert r["evaluator_dependent"] is True  # 1/6 > 0.15
    assert r["unreadable_share"] == pytest.approx(1 / 6)
    # readable samples 0..4 read by A as 0, 1, 2, 3, 0: four classes, each >= 10 % of its expected count
    assert r["covered_readable"] == 4
    r2 = cov.cross_check(la, la, prior, 0.9, 0.9)
    assert r2["agreement"] == 1.0 and r2["tv"] == 0.0 and r2["evaluator_dependent"] is False
    # only sample 5 unreadable for B alone too: samples 4, 5 unreadable when A is the only reader
    assert cov.unreadable(la.softmax(1).max(1).values, torch.zeros(6), 0.9, 0.9).tolist() == [
        False,
        False,
        False,
        False,
        True,
        True,
    ]


@needs_mnist
def test_coverage_record_carries_both_evaluators_and_their_agreement_on_real_digits(data):
    from benchmark.evaluation.classifier import load_second

    _, te = data
    rec = evaluate_samples(te.images[:1000], None, "mnist", ["coverage"], data_root=str(MNIST_ROOT))
    m, d = rec["metrics"], rec["details"]
    assert rec["evaluator"]["second_classifier_sha256"] == load_second("mnist")[1]
    # real test digits: the two evaluators agree on nearly all, their histograms nearly match
    assert m["evaluator_agreement1k"] >= 0.97 and m["evaluator_tv1k"] <= 0.03
    assert d["evaluator_dependent"] is False and "evaluator_warning" not in d
    assert m["unreadable_share1k"] <= 0.02 and m["classes_covered_readable1k"] == 10
    # uniform noise: nobody reads it, nothing is covered among the readable samples
    noise = torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    mn = evaluate_samples(noise, None, "mnist", ["coverage"], data_root=str(MNIST_ROOT))["metrics"]
    assert mn["unreadable_share1k"] >= 0.95 and mn["classes_covered_readable1k"] <= 1


@needs_mnist
def test_tsne_png_is_written(data, tmp_path):
    _, te = data
    out = tmp_path / "t.png"
    rec = evaluate_samples(te.images[:300], None, "mnist", ["tsne"], data_root=str(MNIST_ROOT), tsne_path=out)
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rec["details"]["tsne_png"] == str(out)


def test_lpips_absent_line_is_said_once_per_study(monkeypatch, capsys):
    """A study says it once before its workers start; they inherit that it was said and stay silent."""
    monkeypatch.setattr(diversity, "alexnet_weights_present", lambda: False)
    monkeypatch.setattr(diversity, "_SAID", {})
    monkeypatch.setenv(diversity.SAID_ENV, "")  # restored after the test
    diversity.say_backbone("mnist")
    diversity.say_backbone("mnist")
    assert capsys.readouterr().err.count("LPIPS: AlexNet weights") == 1
    code = "from benchmark.evaluation import diversity as d; d._say_once(d._absent('mnist'))"
    worker = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True)
    assert worker.returncode == 0 and worker.stderr == ""
    fresh = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, diversity.SAID_ENV: ""}, capture_output=True, text=True
    )
    assert "LPIPS: AlexNet weights" in fresh.stderr  # a process not started by the study still says it


@needs_mnist
def test_readable_means_a_digit_real_digits_read_failures_and_blobs_do_not(data):
    from benchmark.evaluation.failures import FAILURES
    from benchmark.evaluation.readable import noise_blobs, untrained_generator

    tr, te = data
    n = 1000
    pick = lambda d: d.images[torch.randperm(len(d), generator=torch.Generator().manual_seed(1))[:n]]  # noqa: E731
    share = lambda x: evaluate_samples(x, None, "mnist", ["coverage"], data_root=str(MNIST_ROOT))["metrics"]  # noqa: E731
    for real in (pick(te), pick(tr)):  # the calibration split, and training digits it never saw
        assert share(real)["unreadable_share1k"] <= 0.01
    fails = {f: FAILURES.get(f).samples("mnist", n, data_root=str(MNIST_ROOT)) for f in ("uniform", "blank")}
    fails.update(blobs=noise_blobs(n), untrained=untrained_generator(n))
    for name, x in fails.items():
        m = share(x)
        assert m["unreadable_share1k"] >= 0.95, name
        assert m["classes_covered_readable1k"] <= 1, name


def test_the_cloud_is_the_test_splits_whatever_split_a_score_compares_with(tmp_path):
    """The readable share's clouds are calibrated on the real TEST digits (CLOUD_SPLIT), also for a score against
    the training split: class means, shrunk pooled precision and per-class 99.9th-percentile radius recomputed
    here by hand (numpy) from the embedded 8x8 digits' test split."""
    import numpy as np

    from benchmark.data import load_dataset
    from benchmark.evaluation.classifier import load_classifier
    from benchmark.evaluation.features import classifier_pass
    from benchmark.evaluation.fidelity import PREFIX
    from benchmark.evaluation.metrics.context import Context, Options

    assert cov.CLOUD_SPLIT == "test" and cov.CLOUD_RULE.endswith("-test")
    model, _ = load_classifier("digits")

    def read(split):
        d = load_dataset("digits", split=split)
        r = classifier_pass(model, d.images, False, PREFIX + "digits")
        return r.features.double().numpy(), d.labels.numpy(), r.logits.argmax(1).numpy()

    (f, y, p), (f_tr, y_tr, _) = read("test"), read("train")
    k, dim = 10, f.shape[1]
    mean = np.stack([f[y == c].mean(0) for c in range(k)])
    centred = f - mean[y]
    s = centred.T @ centred / (len(f) - k)
    s = 0.5 * s + 0.5 * np.trace(s) / dim * np.eye(dim)
    prec = np.linalg.inv(s)
    d = (f - mean[p]) @ prec * (f - mean[p])
    dist = d.sum(1)
    radius = np.array([np.quantile(dist[p == c], 0.999) for c in range(k)])
    train_mean = np.stack([f_tr[y_tr == c].mean(0) for c in range(k)])
    assert np.abs(train_mean - mean).max() > 1e-3  # the two splits' clouds differ: the check below can tell

    for split in ("train", "test"):
        for _ in range(2):  # computed, then read back from the cache
            ctx = Context(torch.zeros(2, 1, 8, 8), None, Options("digits", split=split, cache_root=tmp_path))
            c = ctx.cloud("classifier")
            assert np.allclose(c.mean.numpy(), mean, atol=1e-9), split
            assert np.allclose(c.precision.numpy(), prec, rtol=1e-6, atol=1e-9), split
            assert np.allclose(c.radius.numpy(), radius, rtol=1e-6), split

"""Class coverage, class KL, Mode Score, conditional label agreement / intra-FID, LPIPS diversity, t-SNE."""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from benchmark.evaluation import coverage as cov
from benchmark.evaluation.metrics import evaluate_samples

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
MNIST_ROOT = Path(os.environ.get("GANBENCH_DATA") or REPO.parent / "shared" / "data")
HAS_MNIST = (MNIST_ROOT / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason=f"real MNIST not found under {MNIST_ROOT}")


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

    return load_dataset("mnist", root=str(MNIST_ROOT), split="train"), load_dataset("mnist", root=str(MNIST_ROOT), split="test")


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
    assert cov.kl_divergence(hist, torch.ones(10)) == pytest.approx(math.log(5), abs=0.02)
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
    assert good["intra_fid1k_test"] < bad["intra_fid1k_test"]


@needs_mnist
def test_lpips_diversity_names_backbone_and_drops_under_collapse(data):
    _, te = data
    kw = dict(data_root=str(MNIST_ROOT))
    full = evaluate_samples(te.images[:1000], None, "mnist", ["lpips"], **kw)
    collapsed = evaluate_samples(te.images[:1].expand(1000, -1, -1, -1), None, "mnist", ["lpips"], **kw)
    assert full["evaluator"]["lpips_backbone"] in ("lpips-alex", "lpips-classifier-mnist")
    m, c = full["metrics"], collapsed["metrics"]
    assert m["lpips1k"] > 0 and m["lpips_real1k_test"] > 0
    assert c["lpips1k"] == pytest.approx(0, abs=1e-6)
    # real-vs-real: the generated figure (the test set) sits close to the real one
    assert m["lpips1k"] == pytest.approx(m["lpips_real1k_test"], rel=0.05)
    # conditional: within-class diversity is lower than across classes
    y = te.labels[:1000]
    per = evaluate_samples(te.images[:1000], y, "mnist", ["lpips"], **kw)["metrics"]
    assert per["lpips_class1k"] < per["lpips1k"]


@needs_mnist
def test_tsne_png_is_written(data, tmp_path):
    _, te = data
    out = tmp_path / "t.png"
    rec = evaluate_samples(te.images[:300], None, "mnist", ["tsne"], data_root=str(MNIST_ROOT), tsne_path=out)
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rec["details"]["tsne_png"] == str(out)

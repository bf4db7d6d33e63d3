"""Density & coverage and the Vendi score (metrics dc, vendi): against their authors' packages (prdc,
vendi_score) on the same features, their known answers, and on real MNIST against one image repeated and half
the classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.errors import UserError
from benchmark.evaluation.manifold import density_coverage, vendi, vendi_by_class
from benchmark.evaluation.metrics import Context, Options, default_metrics, evaluate_samples, score
from benchmark.evaluation.scores import direction, score_spec
from helpers import MNIST_ROOT, needs_mnist

prdc = pytest.importorskip("prdc")
vendi_score = pytest.importorskip("vendi_score.vendi")

torch.set_num_threads(1)

N = 2000  # samples per MNIST set: enough to order the sets, small enough for a quick test


def _two_sets(m: int = 700, n: int = 500, d: int = 16):
    """Generated and real rows from different distributions and of different sizes (a swap shows)."""
    g = torch.Generator().manual_seed(1)
    real = torch.randn(n, d, generator=g)
    gen = 0.6 * torch.randn(m, d, generator=g) + 0.4
    return gen, real


def _prdc(gen, real, k):
    return prdc.compute_prdc(real_features=real.numpy(), fake_features=gen.numpy(), nearest_k=k)


# ---- density & coverage against prdc ---------------------------------------------------------------------


def test_density_coverage_equal_prdc_with_k5_on_the_same_features():
    gen, real = _two_sets()
    ours, theirs = density_coverage(gen, real), _prdc(gen, real, 5)
    # round-off only: a distance within float32 rounding of a radius may fall on the other side
    assert ours["density"] == pytest.approx(theirs["density"], abs=2 / (5 * len(gen)))
    assert ours["coverage"] == pytest.approx(theirs["coverage"], abs=2 / len(real))
    assert 0.2 < ours["coverage"] < 0.95 and 0.2 < ours["density"]  # not a degenerate case


def test_density_coverage_blocks_give_the_same_answer(monkeypatch):
    from benchmark.evaluation import manifold

    gen, real = _two_sets()
    whole = density_coverage(gen, real)
    monkeypatch.setattr(manifold, "DC_BLOCK", 64)
    assert density_coverage(gen, real) == whole


def test_density_coverage_from_given_distances_give_the_same_answer():
    """The generated-to-real distances an evaluation shares with precision give the same density & coverage;
    distances of another shape are refused."""
    from benchmark.evaluation import estimators as E

    gen, real = _two_sets()
    assert density_coverage(gen, real, distances=E.cdist(gen, real)) == density_coverage(gen, real)
    with pytest.raises(ValueError, match="distances of shape"):
        density_coverage(gen, real, distances=E.cdist(real, gen))


def test_coverage_counts_real_balls_holding_a_sample():
    # real: two tight clusters; generated: only the first. Half the real balls hold a sample.
    g = torch.Generator().manual_seed(0)
    real = torch.cat([torch.randn(100, 2, generator=g) * 0.01, torch.randn(100, 2, generator=g) * 0.01 + 10])
    gen = torch.randn(300, 2, generator=g) * 0.01
    dc = density_coverage(gen, real)
    assert dc["coverage"] == pytest.approx(0.5, abs=0.05)


# ---- Vendi: known answers and vendi_score ------------------------------------------------------------------


def test_vendi_of_n_identical_rows_is_one():
    row = torch.rand(1, 32) + 0.1
    assert vendi(row.expand(50, -1)) == pytest.approx(1.0, abs=1e-9)


def test_vendi_of_n_orthogonal_rows_is_n_whatever_their_norms():
    x = torch.diag(torch.arange(1.0, 13.0))  # 12 orthogonal rows of norms 1..12: cosine ignores the norm
    assert vendi(x) == pytest.approx(12.0, abs=1e-9)


def test_vendi_equals_vendi_score_with_the_cosine_kernel():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(300, 24, generator=g) ** 3 * torch.rand(300, 1, generator=g) * 5  # non-negative, like ReLU
    ours = vendi(x)
    xn = x.double().numpy()
    kernel = (xn @ xn.T) / np.outer(np.linalg.norm(xn, axis=1), np.linalg.norm(xn, axis=1))
    assert ours == pytest.approx(vendi_score.score_K(kernel), rel=1e-9)
    assert ours == pytest.approx(vendi_score.score_X(xn), rel=1e-9)
    assert 1.5 < ours < 300


def test_vendi_by_class_scores_each_class_alone():
    x = torch.cat([torch.eye(4), torch.ones(6, 4)])  # class 0: 4 orthogonal rows; class 1: 6 identical rows
    y = torch.tensor([0] * 4 + [1] * 6)
    per = vendi_by_class(x, y, 3)
    assert per[0] == pytest.approx(4.0) and per[1] == pytest.approx(1.0) and math.isnan(per[2])


# ---- the registered metrics ------------------------------------------------------------------------------


def test_declared_directions_and_opt_in():
    assert direction("density10k_test") == 1 and direction("dcoverage10k_test") == 1
    assert direction("vendi10k") == 1 and direction("vendi_class10k") == 1
    assert score_spec("dcoverage").bound == 1.0
    for ds in ("mnist", "stacked-mnist", "ring8"):
        assert not {"dc", "vendi"} & set(default_metrics(ds, conditional=True, run=True))


def test_default_in_a_metric_list_is_each_arms_own_defaults_then_the_rest():
    """`metrics: [default, dc, vendi]` in a study: a conditional arm's defaults keep its label metrics, an
    unconditional arm's leave them out (they would be refused there), and the opt-in metrics follow."""
    from benchmark.evaluation.metrics.checks import resolve_metrics

    for cond in (True, False):
        got = resolve_metrics("mnist", ["default", "dc", "vendi"], conditional=cond, run=True)
        assert got == default_metrics("mnist", conditional=cond, run=True) + ["dc", "vendi"]
    assert ("conditional" in resolve_metrics("mnist", ["default"], True, True)) and (
        "conditional" not in resolve_metrics("mnist", ["default"], False, True)
    )
    assert resolve_metrics("mnist", ["fid", "default"], False, True)[0] == "fid"  # in its place, no repeats
    with pytest.raises(UserError, match="needs class labels"):
        resolve_metrics("mnist", ["conditional"], conditional=False, run=True)


def test_vendi_does_not_apply_to_points():
    with pytest.raises(UserError, match="does not apply"):
        evaluate_samples(torch.zeros(100, 2), None, "ring8", ["vendi"])


def test_dc_on_ring8_points_sees_seven_dropped_modes():
    from benchmark.data import load_dataset

    ring = load_dataset("ring8")
    real = ring.reference(2000, seed=5)[0]
    one_mode = ring.means[0] + ring.std * torch.randn(2000, 2, generator=torch.Generator().manual_seed(5))
    full = evaluate_samples(real, None, "ring8", ["dc"])["metrics"]
    part = evaluate_samples(one_mode, None, "ring8", ["dc"])["metrics"]
    assert full["dcoverage2k_test"] > 0.9
    assert part["dcoverage2k_test"] == pytest.approx(1 / 8, abs=0.03)


@pytest.fixture(scope="module")
def mnist():
    from benchmark.data import load_dataset

    tr = load_dataset("mnist", root=str(MNIST_ROOT), split="train")
    half = tr.images[torch.isin(tr.labels, torch.arange(5))][:N]
    return {
        "real": (tr.images[:N], tr.labels[:N]),
        "half": (half, None),
        "one": (tr.images[:1].expand(N, -1, -1, -1).clone(), tr.labels[:1].expand(N).clone()),
    }


def _ctx(x, y, cache):
    return Context(x, y, Options("mnist", data_root=str(MNIST_ROOT), cache_root=cache))


@needs_mnist
def test_dc_metric_equals_prdc_on_the_evaluators_features(mnist, tmp_path):
    x, _ = mnist["half"]
    ctx = _ctx(x, None, tmp_path)
    s, d = score(ctx, ["dc"])
    theirs = _prdc(ctx.features().features, ctx.reference().read.features, 5)
    assert s["density2k_test"] == pytest.approx(theirs["density"], abs=2 / (5 * N))
    assert s["dcoverage2k_test"] == pytest.approx(theirs["coverage"], abs=2 / N)
    assert d["dc_k"] == 5


@needs_mnist
def test_vendi_metric_equals_vendi_score_on_the_evaluators_features(mnist, tmp_path):
    x, y = mnist["real"]
    ctx = _ctx(x[:500], y[:500], tmp_path)
    s, d = score(ctx, ["vendi"])
    f = ctx.features().features.double().numpy()
    assert s["vendi500"] == pytest.approx(vendi_score.score_X(f), rel=1e-9)
    per = [vendi_score.score_X(f[y[:500].numpy() == c]) for c in range(10)]
    assert s["vendi_class500"] == pytest.approx(sum(per) / 10, rel=1e-9)


@pytest.fixture(scope="module")
def mnist_scores(mnist, tmp_path_factory):
    cache = tmp_path_factory.mktemp("manifold-cache")
    return {
        k: evaluate_samples(x, y, "mnist", ["dc", "vendi"], data_root=str(MNIST_ROOT), cache_root=cache)["metrics"]
        for k, (x, y) in mnist.items()
    }


@needs_mnist
def test_coverage_and_vendi_order_real_above_half_the_classes_above_one_image(mnist_scores):
    real, half, one = (mnist_scores[k] for k in ("real", "half", "one"))
    for name in ("dcoverage2k_test", "vendi2k"):
        assert real[name] > half[name] > one[name], name
    assert half["dcoverage2k_test"] < 0.75 * real["dcoverage2k_test"]  # half the real balls lie in dropped classes
    assert one["vendi2k"] == pytest.approx(1.0, abs=1e-6)  # one distinct sample
    assert one["dcoverage2k_test"] < 0.01 and one["density2k_test"] < 0.5 * real["density2k_test"]
    assert 0.7 < real["density2k_test"] < 1.3  # real data against real data: about 1 (Naeem et al.)


@needs_mnist
def test_vendi_class_is_one_for_one_image_per_class_and_below_vendi_for_real(mnist_scores):
    assert mnist_scores["one"]["vendi_class2k"] == pytest.approx(1.0, abs=1e-6)
    real = mnist_scores["real"]
    assert 1.0 < real["vendi_class2k"] < real["vendi2k"]  # within a class fewer distinct digits than overall
    assert "vendi_class2k" not in mnist_scores["half"]  # no labels: no within-class score


@needs_mnist
def test_vendi_within_the_predicted_class_for_any_generator_with_the_real_level_beside_it(
    mnist, mnist_scores, tmp_path
):
    """vendi_pred: the mean Vendi within the evaluator's predicted classes, labels or not (the one image repeated:
    1); real training digits reach the real test digits' level (vendi_pred_real, the same rule on the reference)
    within 10 %; and it is vendi_score's within each predicted class, by hand."""
    one, real, half = (mnist_scores[k] for k in ("one", "real", "half"))
    assert one["vendi_pred2k"] == pytest.approx(1.0, abs=1e-6)
    assert "vendi_pred2k" in half
    assert real["vendi_pred2k"] == pytest.approx(real["vendi_pred_real2k_test"], rel=0.1)
    assert real["vendi_pred2k"] > 2 * one["vendi_pred2k"]
    x, _ = mnist["half"]
    ctx = _ctx(x[:600], None, tmp_path)
    s, _ = score(ctx, ["vendi"])
    f, pred = ctx.features().features.double().numpy(), ctx.features().logits.argmax(1).numpy()
    per = [vendi_score.score_X(f[pred == c]) for c in range(10) if (pred == c).sum() >= 2]
    assert s["vendi_pred600"] == pytest.approx(sum(per) / len(per), rel=1e-9)
    ref = ctx.reference()
    rf, rp = ref.read.features.double().numpy(), ref.read.logits.argmax(1).numpy()
    per_real = [vendi_score.score_X(rf[rp == c]) for c in range(10) if (rp == c).sum() >= 2]
    assert s["vendi_pred_real600_test"] == pytest.approx(sum(per_real) / len(per_real), rel=1e-9)

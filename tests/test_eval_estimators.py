"""The project's FID, KID, IS and precision/recall (benchmark/evaluation/estimators.py) against torch-fidelity's own
functions on the same features, the one feature pass against torch-fidelity's whole path on the same images,
and the reference cache (no MNIST needed: the embedded digits and synthetic features)."""

from __future__ import annotations

import math

import pytest
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from benchmark.data import load_dataset
from benchmark.evaluation import coverage as cov
from benchmark.evaluation import estimators as E
from benchmark.evaluation import fidelity
from benchmark.evaluation.classifier import classify, load_classifier, load_second, readable_tau, second_name
from benchmark.evaluation.metrics import Context, Options, evaluate_samples

torch.set_num_threads(1)


def synthetic(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    """Non-negative feature rows (like pooled ReLU features), optionally shifted."""
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(n, d, generator=g) + shift)


def tf_kid(f1, f2, size, seed=E.RNG_SEED):
    r = kid_features_to_metric(f1, f2, kid_subsets=E.KID_SUBSETS, kid_subset_size=size, rng_seed=seed, verbose=False)
    return r["kernel_inception_distance_mean"], r["kernel_inception_distance_std"]


@pytest.fixture(scope="module")
def digits_features():
    """The pinned digits classifier's features and logits of a noisy train set (generated) and the test split."""
    model, _ = load_classifier("digits")
    tr, te = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    g = torch.Generator().manual_seed(3)
    x = (tr.images[:1200] + 0.25 * torch.randn(1200, 1, 8, 8, generator=g)).clamp(-1, 1)
    gen = classify(model, fidelity.to_uint8(x).float() / 127.5 - 1)
    real = classify(model, te.images)
    return gen, real


# ------------------------------------------------------------------------------------------------
# KID


@pytest.mark.parametrize("method", ["subsets", "whole", "pairwise"])
@pytest.mark.parametrize("n1,n2,d,size", [(3000, 2500, 64, 1000), (1200, 297, 576, 297)])
def test_kid_agrees_with_torch_fidelity_far_inside_its_subset_noise(n1, n2, d, size, method, digits_features):
    """The same subsets (RandomState(2020), generated then real) and the same unbiased estimator: the two differ
    by float rounding only. Tolerance: 1 % of the subset noise kid_std / sqrt(100), 100 times tighter than the
    noise itself; subsets drawn with any other seed move the mean by about that noise and fail it."""
    if d == 576:
        (f1, _), (f2, _) = digits_features
        f1 = f1[:n1]
    else:
        f1, f2 = synthetic(n1, d, 0), synthetic(n2, d, 1, shift=0.1)
    if method == "pairwise":  # the kernels read off the distances precision/recall computed (Pairwise.inner)
        ours = E.kid(f1, f2, size=size, pairwise=E.Pairwise(f1, f2))
    else:
        ours = E.kid(f1, f2, size=size, method=method)
    theirs = tf_kid(f1, f2, size)
    noise = theirs[1] / math.sqrt(E.KID_SUBSETS)
    assert abs(ours[0] - theirs[0]) <= 0.01 * noise, (ours, theirs)
    assert ours[1] == pytest.approx(theirs[1], rel=1e-3)
    other_seed = tf_kid(f1, f2, size, seed=E.RNG_SEED + 1)[0]
    assert abs(other_seed - theirs[0]) > 0.01 * noise  # the tolerance does tell other subsets apart


def test_kid_known_answers_same_distribution_near_zero_shifted_one_far():
    """Two independent draws of one distribution: KID within half the spread of one subset's estimate (an
    unbiased estimate of 0; the subsets share rows, so their mean varies more than spread / sqrt(100)); the
    same against a slightly shifted distribution: over ten times that spread. A set against itself is not 0
    under this estimator (subsets of one set share rows, which the cross term counts), and is not asked to be."""
    f = synthetic(5000, 32, 5)
    same_mean, same_std = E.kid(f, synthetic(5000, 32, 6))
    assert abs(same_mean) < 0.5 * same_std
    shifted_mean, _ = E.kid(f, synthetic(5000, 32, 6, shift=0.1))
    assert shifted_mean > 10 * same_std


def test_kid_takes_the_whole_kernels_where_they_cost_fewer_products():
    """5,000 against 5,000 (the quick studies' count): the whole matrices are 4x fewer products than 100 subsets
    of 1,000; at 10,000 against 10,000 they are not fewer, and the subsets' batched products stay."""
    assert E._whole_kernels_cheaper(5000, 5000, 1000, 100)
    assert not E._whole_kernels_cheaper(10_000, 10_000, 1000, 100)
    with pytest.raises(ValueError, match="method"):
        E.kid(synthetic(200, 8, 0), synthetic(200, 8, 1), method="fast")


def test_kid_real_sums_passed_in_give_the_same_estimate():
    f1, f2 = synthetic(1500, 16, 0), synthetic(1200, 16, 1, shift=0.2)
    _, idx_r = E.kid_subsets(1500, 1200, 1000)
    assert E.kid(f1, f2, real_sums=E.kid_real_sums(f2, idx_r)) == E.kid(f1, f2)


# ------------------------------------------------------------------------------------------------
# FID, IS, precision/recall


def test_fid_agrees_with_torch_fidelity(digits_features):
    (fg, _), (fr, _) = digits_features
    theirs = fid_statistics_to_metric(fid_features_to_statistics(fg), fid_features_to_statistics(fr), False)
    ours = E.frechet_distance(E.gaussian(fg), E.gaussian(fr, with_root=True))
    assert ours == pytest.approx(theirs["frechet_inception_distance"], rel=1e-5)  # the bar is 0.5 %
    assert torch.equal(E.gaussian(fg).mu, torch.from_numpy(fid_features_to_statistics(fg)["mu"]))
    a, b = synthetic(800, 24, 0), synthetic(900, 24, 1, shift=0.3)
    theirs = fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b), False)
    assert E.frechet_distance(E.gaussian(a), E.gaussian(b)) == pytest.approx(
        theirs["frechet_inception_distance"], rel=1e-5
    )
    assert abs(E.frechet_distance(E.gaussian(a), E.gaussian(a, with_root=True))) < 1e-6  # a set against itself


def test_inception_score_equals_torch_fidelity_exactly(digits_features):
    (_, lg), _ = digits_features
    theirs = isc_features_to_metric(lg, splits=E.IS_SPLITS, shuffle=True, rng_seed=E.RNG_SEED)
    assert E.inception_score(lg) == (theirs["inception_score_mean"], theirs["inception_score_std"])


@pytest.mark.parametrize("batch", [E.PR_BATCH, 700])  # one block, and torch-fidelity's blocks of 700
def test_precision_recall_equal_torch_fidelity_exactly(batch, digits_features):
    (fg, _), (fr, _) = digits_features
    cases = [(fg, fr), (synthetic(1600, 48, 0), synthetic(1500, 48, 1, shift=0.05))]
    for a, b in cases:
        theirs = prc_features_to_metric(
            a, b, prc_neighborhood=3, prc_batch_size=batch, save_cpu_ram=True, verbose=False
        )
        ours = E.precision_recall(a, b, batch=batch)
        assert ours == (theirs["precision"], theirs["recall"])
        assert 0 < ours[0] < 1 and 0 < ours[1] < 1  # cases where a wrong radius or ball would show
        assert E.precision_recall(a, b, E.knn_radii(b, batch=batch), batch=batch) == ours  # cached real radii


def test_precision_recall_from_the_shared_distances_equal_torch_fidelity_exactly(digits_features):
    """The distance matrices an evaluation shares (generated-generated, real-generated, generated-real, each one
    block of torch-fidelity's) give its precision and recall exactly; other rows' matrices are refused."""
    (fg, _), (fr, _) = digits_features
    for a, b in [(fg, fr), (synthetic(1600, 48, 0), synthetic(1500, 48, 1, shift=0.05))]:
        theirs = prc_features_to_metric(
            a, b, prc_neighborhood=3, prc_batch_size=E.PR_BATCH, save_cpu_ram=True, verbose=False
        )
        pw = E.Pairwise(a, b)
        assert E.precision_recall(a, b, pairwise=pw) == (theirs["precision"], theirs["recall"])
        assert E.precision_recall(a, b, E.knn_radii(b), pairwise=pw) == (theirs["precision"], theirs["recall"])
    with pytest.raises(ValueError, match="other rows"):
        E.precision_recall(fg[:500], fr, pairwise=E.Pairwise(fg, fr))
    assert E.Pairwise.fits(E.PR_BATCH, E.PR_BATCH) and not E.Pairwise.fits(E.PR_BATCH + 1, 10)


def test_the_inner_products_read_off_the_distances_are_the_rows_products():
    """Pairwise.inner: (|a|^2 + |b|^2 - d^2) / 2, the upper block rows of generated-generated and every real
    column, equal to the rows' own products up to float32 rounding of the squared norms."""
    a, b = synthetic(1300, 40, 3), synthetic(900, 40, 4, shift=0.3)
    pw = E.Pairwise(a, b)
    scale = float(a.pow(2).sum(1).max())
    assert torch.allclose(pw.inner("gen_gen", 200, 700), a[200:700] @ a[200:].T, atol=1e-5 * scale, rtol=0)
    assert torch.allclose(pw.inner("gen_real", 1000, 1300), a[1000:] @ b.T, atol=1e-5 * scale, rtol=0)
    assert pw.inner("gen_gen", 0, 10).shape == (10, 1300) and pw.inner("gen_real", 0, 10).shape == (10, 900)


@pytest.mark.parametrize("n1,n2", [(3000, 2500), (30, 20), (20, 300)])
def test_distances_are_torch_cdists_bit_for_bit(n1, n2):
    """precision/recall's distances are torch.cdist's own arithmetic (into a reused buffer): equal bit for bit
    (a torch release that changes cdist fails here first)."""
    a, b = synthetic(n1, 96, 0), synthetic(n2, 96, 1)
    assert torch.equal(E.cdist(a, b), torch.cdist(a, b))
    assert torch.equal(E.cdist(a, b, out=torch.empty(n1, n2)), torch.cdist(a, b))


def test_knn_radii_are_torch_fidelitys_kth_neighbour_distances():
    f = synthetic(1300, 20, 2)
    theirs = torch.cdist(f, f).kthvalue(E.PR_NEIGHBOURS + 1).values
    assert torch.equal(E.knn_radii(f), theirs)


# ------------------------------------------------------------------------------------------------
# the whole path: one pass, the cache


def noisy_digits(n=1000, seed=0):
    tr = load_dataset("digits", split="train")
    g = torch.Generator().manual_seed(seed)
    return (tr.images[:n] + 0.2 * torch.randn(n, 1, 8, 8, generator=g)).clamp(-1, 1), tr.labels[:n]


def test_evaluate_matches_torch_fidelitys_whole_path_on_the_same_images(tmp_path):
    """The project's path (one pass, its estimators, its cache) against torch_fidelity.calculate_metrics with the
    same classifier as its extractor (fidelity.fidelity_metrics): FID within 0.5 % (measured ~1e-7), KID
    within 1 % of its subset noise, IS and precision/recall exactly."""
    x, _ = noisy_digits()
    te = load_dataset("digits", split="test")
    m = evaluate_samples(x, None, "digits", ["fid", "kid", "is", "pr"], cache_root=tmp_path)["metrics"]
    n = len(te)
    tf = fidelity.fidelity_metrics(
        x, lambda: te.reference(n)[0], n, "digits", "test", ("fid", "kid", "isc", "prc"), root=tmp_path
    )
    assert m["fid1k_test"] == pytest.approx(tf["frechet_inception_distance"], rel=5e-3)
    noise = tf["kernel_inception_distance_std"] / math.sqrt(E.KID_SUBSETS)
    assert abs(m["kid1k_test"] - tf["kernel_inception_distance_mean"]) <= 0.01 * noise
    assert (m["is1k"], m["is_std1k"]) == (tf["inception_score_mean"], tf["inception_score_std"])
    assert (m["precision1k_test"], m["recall1k_test"]) == (tf["precision"], tf["recall"])


def test_coverage_reads_the_pass_both_evaluators_make_of_the_uint8_images(tmp_path):
    """Coverage and the cross-check from evaluate equal coverage.py applied to each evaluator's logits of the
    samples read as uint8 images (the images every metric of the set reads), computed here on its own; the
    readable share's cloud test with the primary's class clouds of the real test split, read the same way."""
    x, _ = noisy_digits(seed=1)
    m = evaluate_samples(x, None, "digits", ["coverage"], cache_root=tmp_path)["metrics"]
    as_read = lambda v: fidelity.to_uint8(v).float() / 127.5 - 1  # noqa: E731
    primary = load_classifier("digits")[0]
    feats, logits = classify(primary, as_read(x))
    logits2 = classify(load_second("digits")[0], as_read(x))[1]
    prior = torch.bincount(load_dataset("digits", split="train").labels, minlength=10).double()
    te = load_dataset("digits", split="test")
    test_feats, test_logits = classify(primary, as_read(te.images))
    cloud = cov.class_cloud(test_feats, te.labels, test_logits.argmax(1), 10)
    pred = cov.class_probs(logits, logits2).argmax(1)  # the class reading: both evaluators' mean probabilities
    c = cov.coverage(pred, logits, prior, 0.1)
    taus = readable_tau("digits"), readable_tau(second_name("digits"))
    xc = cov.cross_check(logits, logits2, prior, *taus, 0.1, (feats, cloud), labels=pred)
    assert m["classes_covered1k"] == c["covered"] and m["class_kl1k"] == c["kl"]
    assert m["class_entropy1k"] == c["entropy"] and m["mode_score1k"] == c["mode_score"]
    assert m["evaluator_agreement1k"] == xc["agreement"] and m["unreadable_share1k"] == xc["unreadable_share"]
    assert m["evaluator_tv1k"] == xc["tv"]


def test_one_pass_per_set_and_evaluator(tmp_path, monkeypatch):
    """fid, kid, is, pr, coverage and t-SNE of one set: the classifier reads the generated images once and the
    real split once (then never again: cached), the second evaluator the generated images once."""
    from benchmark.evaluation import features

    passes = []
    real = features.classifier_pass
    monkeypatch.setattr(
        "benchmark.evaluation.metrics.context.classifier_pass",
        lambda model, x, stacked, name, progress=False: passes.append((name, len(x))) or real(model, x, stacked, name),
    )
    x, _ = noisy_digits(300, seed=2)
    names = ["fid", "kid", "is", "pr", "coverage", "tsne"]
    evaluate_samples(x, None, "digits", names, cache_root=tmp_path, tsne_path=tmp_path / "t.png")
    p = fidelity.PREFIX
    assert sorted(passes) == sorted([(p + "digits", 300), (p + "digits", 297), (p + "digits-mlp", 300)])
    passes.clear()
    evaluate_samples(x, None, "digits", names, cache_root=tmp_path, tsne_path=tmp_path / "t.png")
    assert sorted(passes) == sorted([(p + "digits", 300), (p + "digits-mlp", 300)])


def test_kid_pr_and_dc_share_one_set_of_distance_matrices(tmp_path, monkeypatch):
    """KID, precision/recall and density & coverage of one evaluation compute three distance matrices between
    the samples' and the reference's features (generated-generated, generated-real, real-generated), not one
    or more each; the scores are those of the estimators on their own (PR, density & coverage exactly)."""
    from benchmark.evaluation import manifold

    x, _ = noisy_digits(400, seed=5)
    names = ["kid", "pr", "dc"]
    evaluate_samples(x, None, "digits", names, cache_root=tmp_path)  # the reference, cached
    calls = []
    real = E.cdist
    monkeypatch.setattr(E, "cdist", lambda a, b, out=None: calls.append((len(a), len(b))) or real(a, b, out))
    m = evaluate_samples(x, None, "digits", names, cache_root=tmp_path)["metrics"]
    n_real = load_dataset("digits", split="test").images.shape[0]
    assert sorted(calls) == sorted([(400, 400), (400, n_real), (n_real, 400)])
    monkeypatch.setattr(E, "cdist", real)
    model, _ = load_classifier("digits")
    gen = classify(model, fidelity.to_uint8(x).float() / 127.5 - 1)[0]
    ctx = Context(x, None, Options("digits", cache_root=tmp_path))
    ref = ctx.reference()
    assert (m["precision400_test"], m["recall400_test"]) == E.precision_recall(gen, ref.read.features, ref.radii)
    dc = manifold.density_coverage(gen, ref.read.features, manifold.DC_NEIGHBOURS)
    assert m["density400_test"] == pytest.approx(dc["density"], abs=1e-12)
    assert m["dcoverage400_test"] == pytest.approx(dc["coverage"], abs=1e-12)


def test_a_warm_evaluation_reads_no_dataset(tmp_path, monkeypatch):
    """Split sizes, the training class counts and the reference come from the cache: no dataset is loaded."""
    x, y = noisy_digits(seed=4)
    names = ["fid", "kid", "is", "pr", "coverage", "conditional"]
    first = evaluate_samples(x, y, "digits", names, cache_root=tmp_path)["metrics"]

    def no_data(*a, **k):
        raise AssertionError("a warm evaluation loaded a dataset")

    monkeypatch.setattr("benchmark.evaluation.metrics.context.load_dataset", no_data)
    assert evaluate_samples(x, y, "digits", names, cache_root=tmp_path)["metrics"] == first


def test_a_cache_entry_that_is_not_what_its_name_says_is_recomputed(tmp_path):
    """An entry whose contents are another reference (another split's, same n; another n) is read again."""
    x, _ = noisy_digits(297, seed=5)
    first = evaluate_samples(x, None, "digits", ["fid", "pr"], cache_root=tmp_path)["metrics"]
    (entry,) = (tmp_path / "fidelity").glob("*-test-n297-*-reference.pt")
    train = evaluate_samples(x, None, "digits", ["fid"], split="train", cache_root=tmp_path)["metrics"]
    (other,) = (tmp_path / "fidelity").glob("*-train-n297-*-reference.pt")
    for impostor in (other, *evaluate_and_find(x[:150], tmp_path)):
        entry.write_bytes(impostor.read_bytes())  # the test split's name now holds another reference
        before = fidelity.images_seen("digits")
        again = evaluate_samples(x, None, "digits", ["fid", "pr"], cache_root=tmp_path)["metrics"]
        assert fidelity.images_seen("digits") - before == 297 + 297  # the reference was read again
        assert again == first and train["fid297_train"] != first["fid297_test"]


def evaluate_and_find(x, root):
    evaluate_samples(x, None, "digits", ["fid"], cache_root=root)
    return list((root / "fidelity").glob(f"*-test-n{len(x)}-*-reference.pt"))

"""Known answers of benchmark/evaluation/coverage.py beyond tests/test_eval_coverage.py, by hand on small
histograms: non-uniform priors, the boundaries (>= the threshold, >= tau), empty sets, asymmetric KL. Written to
kill the mutants ``make mutants`` found alive."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.evaluation import coverage as cov


def test_histogram_counts_each_class_and_keeps_empty_ones():
    h = cov.histogram(torch.tensor([[0, 2], [2, 3]]), 5)
    assert h.tolist() == [1, 0, 2, 1, 0] and h.dtype == torch.int64


def test_kl_by_hand_is_asymmetric_and_scale_free():
    p, q = torch.tensor([1, 3]), torch.tensor([2, 2])
    want = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert cov.kl_divergence(p, q) == pytest.approx(want, rel=1e-12)
    assert cov.kl_divergence(p * 7, q * 3) == pytest.approx(want, rel=1e-12)
    back = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert cov.kl_divergence(q, p) == pytest.approx(back, rel=1e-12)
    assert cov.kl_divergence(torch.tensor([0, 2]), torch.tensor([0, 5])) == 0.0  # 0 log 0 = 0, not inf
    assert cov.kl_divergence(torch.tensor([0, 2]), torch.tensor([3, 5])) == pytest.approx(math.log(8 / 5))


def test_entropy_by_hand():
    assert cov.entropy(torch.tensor([1, 1, 2])) == pytest.approx(-(2 * 0.25 * math.log(0.25) + 0.5 * math.log(0.5)))
    assert cov.entropy(torch.tensor([0, 4, 0, 4])) == pytest.approx(math.log(2))
    e = cov.entropy(torch.tensor([0, 9]))
    assert e == 0.0 and math.copysign(1.0, e) == 1.0  # 0.0, not -0.0


def test_classes_covered_with_a_non_uniform_prior_and_at_the_boundary():
    # prior 1:3, N = 30: expected 7.5 and 22.5; at threshold 1.0 class 0 (10) is covered, class 1 (20) is not
    assert cov.classes_covered(torch.tensor([10, 20]), torch.tensor([1.0, 3.0]), 1.0) == 1
    assert cov.classes_covered(torch.tensor([10, 20]), torch.tensor([1.0, 3.0]), 0.5) == 2
    # exactly at the threshold counts as covered: N = 10, expected 5, 0.2 * 5 = 1
    assert cov.classes_covered(torch.tensor([1, 9]), torch.ones(2), 0.2) == 2
    # threshold 0 still needs a sample
    assert cov.classes_covered(torch.tensor([0, 9, 3]), torch.ones(3), 0.0) == 2


def test_mode_score_with_a_non_uniform_prior():
    logits = torch.full((40, 2), -40.0)
    logits[torch.arange(40), torch.arange(40) % 2] = 40.0  # confident, half and half
    prior = torch.tensor([1.0, 3.0])
    kl = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert cov.mode_score(logits, prior) == pytest.approx(math.exp(math.log(2) - kl), rel=1e-9)
    flat = torch.zeros(10, 4)  # no confidence at all: E KL(p(y|x) || p(y)) = 0, uniform marginal
    assert cov.mode_score(flat, torch.ones(4)) == pytest.approx(1.0, rel=1e-12)


def test_mode_score_when_a_class_is_never_predicted():
    logits = torch.full((10, 3), -800.0)  # softmax underflows to exactly 0 for classes 1 and 2
    logits[:, 0] = 0.0
    assert cov.mode_score(logits, torch.tensor([1.0, 0.0, 0.0])) == pytest.approx(1.0)


def test_coverage_record_passes_its_threshold_and_prior():
    pred = torch.tensor([0] * 10 + [1] * 20)
    r = cov.coverage(pred, None, torch.tensor([1.0, 3.0]), threshold=1.0)
    assert r == {
        "hist": [10, 20],
        "covered": 1,
        "kl": pytest.approx(cov.kl_divergence(torch.tensor([10, 20]), torch.tensor([1, 3]))),
        "entropy": pytest.approx(cov.entropy(torch.tensor([10, 20]))),
    }
    assert "mode_score" not in r
    logits = torch.nn.functional.one_hot(pred, 2).double() * 50
    r = cov.coverage(pred, logits, torch.tensor([1.0, 3.0]))
    assert r["covered"] == 2 and r["mode_score"] == pytest.approx(cov.mode_score(logits, torch.tensor([1.0, 3.0])))


def test_agreement_edge_cases():
    assert math.isnan(cov.agreement(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long)))
    with pytest.raises(ValueError):
        cov.agreement(torch.tensor([1, 2]), torch.tensor([1, 2, 3]))
    assert cov.label_agreement(torch.tensor([1, 2, 3, 4]), torch.tensor([1, 0, 3, 0])) == 0.5


def test_unreadable_is_strictly_below_tau_for_both():
    conf = torch.tensor([0.9, 0.89, 0.95, 0.5])
    other = torch.tensor([0.5, 0.5, 0.5, 0.95])
    assert cov.unreadable(conf, other, 0.9, 0.9).tolist() == [False, True, False, False]
    assert cov.unreadable(other, conf, 0.9, 0.8).tolist() == [False, False, False, False]


def test_cross_check_bounds_and_empty_sets():
    assert cov.TV_BOUND == 0.15
    prior = torch.ones(3)
    sure = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 0]), 3).float() * 20
    unsure = torch.zeros(4, 3)  # max probability 1/3 < tau for every sample
    r = cov.cross_check(unsure, unsure, prior, 0.9, 0.9)
    assert r["unreadable_share"] == 1.0 and r["covered_readable"] == 0
    r = cov.cross_check(sure, unsure, prior, 0.9, 0.9, threshold=1.0)
    # readable: all 4 by A; N = 4, expected 4/3 each: class 0 (2) covered, classes 1 and 2 (1 < 4/3) not
    assert r["unreadable_share"] == 0.0 and r["covered_readable"] == 1
    assert r["hist_second"] == [4, 0, 0]  # B's argmax of flat logits: class 0 for all
    e = cov.cross_check(torch.zeros(0, 3), torch.zeros(0, 3), prior, 0.9, 0.9)
    assert math.isnan(e["unreadable_share"]) and e["covered_readable"] == 0 and math.isnan(e["agreement"])


def test_stacked_modes_by_hand():
    d = torch.tensor([[1, 2, 3], [3, 2, 1], [1, 2, 3], [0, 0, 9], [9, 0, 0]])
    r = cov.stacked_modes(d)
    assert r["modes"] == 4
    hist = torch.zeros(1000)
    hist[[123, 321, 9, 900]] = torch.tensor([2.0, 1.0, 1.0, 1.0])
    assert r["kl"] == pytest.approx(cov.kl_divergence(hist, torch.ones(1000)), rel=1e-12)
    assert cov.stacked_modes(d, num_modes=1000)["modes"] == 4


def test_agreement_and_label_agreement_by_hand():
    assert cov.agreement(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 0])) == pytest.approx(2 / 3)
    assert cov.agreement(torch.tensor([3]), torch.tensor([3])) == 1.0  # one sample is not "no samples"
    with pytest.raises(ValueError, match=r"agreement of \(2,\) and \(3,\) predictions"):
        cov.agreement(torch.tensor([1, 2]), torch.tensor([1, 2, 3]))
    assert cov.label_agreement(torch.tensor([1, 2, 3]), torch.tensor([1, 2, 0])) == pytest.approx(2 / 3)


def test_total_variation_of_unnormalised_histograms():
    assert cov.total_variation(torch.tensor([1, 3]), torch.tensor([2, 2])) == pytest.approx(0.25)
    assert cov.total_variation(torch.tensor([10, 30]), torch.tensor([1, 1])) == pytest.approx(0.25)
    assert cov.total_variation(torch.tensor([4, 4]), torch.tensor([1, 1])) == 0.0


def test_unreadable_at_exactly_tau_is_readable():
    conf = torch.tensor([0.5, 0.5])
    assert cov.unreadable(conf, torch.tensor([0.8, 0.7]), 0.9, 0.8).tolist() == [False, True]
    assert cov.unreadable(torch.tensor([0.8, 0.7]), conf, 0.8, 0.9).tolist() == [False, True]


def _hist_logits(counts, k=2):
    pred = torch.cat([torch.full((c,), i) for i, c in enumerate(counts)])
    return torch.nn.functional.one_hot(pred, k).float() * 20


def test_cross_check_keys_default_threshold_and_the_tv_bound():
    # histograms [4, 16] and [7, 13] of 20: TV exactly 0.15 (in doubles), which is not above the bound
    r = cov.cross_check(_hist_logits([4, 16]), _hist_logits([7, 13]), torch.ones(2), 0.9, 0.9)
    assert set(r) == {"agreement", "tv", "evaluator_dependent", "hist_second", "unreadable_share", "covered_readable"}
    assert r["tv"] == 0.15 and r["evaluator_dependent"] is False
    assert cov.cross_check(_hist_logits([3, 17]), _hist_logits([7, 13]), torch.ones(2), 0.9, 0.9)["evaluator_dependent"]
    # the default threshold is 0.1: class 0 has 1 of an expected 10 -> covered; at 0.2 it would not be
    r = cov.cross_check(_hist_logits([1, 19]), _hist_logits([1, 19]), torch.ones(2), 0.9, 0.9)
    assert r["covered_readable"] == 2
    assert (
        cov.cross_check(_hist_logits([1, 19]), _hist_logits([1, 19]), torch.ones(2), 0.9, 0.9, 0.2)["covered_readable"]
        == 1
    )


def test_classes_covered_default_threshold_is_a_tenth():
    hist = torch.tensor([1, 19])  # class 0: 1 of an expected 10, exactly 0.1 of it
    assert cov.classes_covered(hist, torch.ones(2)) == 2
    assert cov.classes_covered(torch.tensor([1, 29]), torch.ones(2)) == 1  # 1 of 15 < 0.1


def test_stacked_modes_of_every_triple_once():
    d = torch.cartesian_prod(torch.arange(10), torch.arange(10), torch.arange(10))
    r = cov.stacked_modes(d)
    assert r["modes"] == 1000 and r["kl"] == pytest.approx(0.0, abs=1e-12)
    r = cov.stacked_modes(d[d[:, 1] == 0])  # middle digit always 0: 100 modes
    assert r["modes"] == 100 and r["kl"] == pytest.approx(math.log(10), rel=1e-12)


# ---- readable means "a digit": the class clouds of real features -------------------------------------


def test_class_cloud_by_hand_mean_shrunk_precision_and_radius():
    # two classes in 2D, identity-shaped pooled scatter: class 0 at (0, 0), class 1 at (10, 0)
    f = torch.tensor([[1.0, 0], [-1, 0], [0, 1], [0, -1], [11, 0], [9, 0], [10, 1], [10, -1]])
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    c = cov.class_cloud(f, y, y, 2, shrink=0.5, q=1.0)
    assert c.mean.tolist() == [[0.0, 0.0], [10.0, 0.0]]
    # pooled covariance: 4 / (8 - 2) = 2/3 on the diagonal; shrunk halfway to its mean variance: the same
    assert torch.allclose(c.precision, torch.eye(2, dtype=torch.float64) * 1.5)
    assert torch.allclose(c.radius, torch.tensor([1.5, 1.5], dtype=torch.float64))  # every real row at 1.5
    far = torch.tensor([[0.0, 2.0], [0.9, 0.0], [10.0, 0.5], [0.0, 0.0]])
    assert c.inside(far, torch.tensor([0, 0, 1, 1])).tolist() == [False, True, True, False]


def test_cross_check_cloud_turns_a_confident_sample_far_from_its_class_unreadable():
    f = torch.tensor([[1.0, 0], [-1, 0], [0, 1], [0, -1], [11, 0], [9, 0], [10, 1], [10, -1]])
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    c = cov.class_cloud(f, y, y, 2, shrink=0.5, q=1.0)
    logits = torch.tensor([[9.0, 0], [9.0, 0], [0, 9.0]])  # all three confidently read
    feats = torch.tensor([[0.5, 0], [0.0, 5.0], [10.0, 0]])  # the second lies far from class 0's cloud
    plain = cov.cross_check(logits, logits, torch.ones(2), 0.9, 0.9)
    assert plain["unreadable_share"] == 0.0
    r = cov.cross_check(logits, logits, torch.ones(2), 0.9, 0.9, 0.1, (feats, c))
    assert r["unreadable_share"] == pytest.approx(1 / 3) and r["covered_readable"] == 2

"""Known answers of the evaluation science on the embedded data (digits, ring8, grid25: no MNIST needed).

FID is the Frechet distance of the pinned classifier's penultimate features, checked against a plain
NumPy/SciPy computation; the coverage threshold's default is pinned; the real-data LPIPS figure is computed
from real data; mixture points keep their geometry through ``generate``; and the inputs that must change a
cache key (the reference split and size, the generation seed of a run's evaluation) change it.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from benchmark.config import make_config, resolve
from benchmark.data import load_dataset
from benchmark.evaluation import coverage as cov
from benchmark.evaluation import fidelity, metrics
from benchmark.evaluation.classifier import classify, load_classifier
from benchmark.evaluation.metrics import evaluate_samples
from benchmark.rundir import generate


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", split="train"), load_dataset("digits", split="test")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("science-cache")


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The Frechet distance of two Gaussians fitted to feature rows: |mu1-mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def quantised(x: torch.Tensor) -> torch.Tensor:
    """What the classifier sees through torch-fidelity: uint8 [0, 255] mapped back to [-1, 1]."""
    return fidelity.to_uint8(x).float() / 127.5 - 1


# ------------------------------------------------------------------------------------------------
# FID


def test_fid_is_the_frechet_distance_of_penultimate_features(digits, cache):
    tr, te = digits
    g = torch.Generator().manual_seed(0)
    x = (tr.images[:400] + 0.3 * torch.randn(400, 1, 8, 8, generator=g)).clamp(-1, 1)  # a blurred-ish set
    got = evaluate_samples(x, None, "digits", ["fid"], cache_root=cache)["metrics"]["fid400_test"]
    model, _ = load_classifier("digits")
    real = te.images  # the protocol: min(N, len(split)) test images, here the whole split (297 < 400)
    fg, lg = classify(model, quantised(x))
    fr, lr = classify(model, quantised(real))
    assert fg.shape[1] == model.arch.feature_dim  # the penultimate layer, not the logits
    by_hand = frechet(fg.double().numpy(), fr.double().numpy())
    assert got == pytest.approx(by_hand, rel=1e-3, abs=1e-3)
    on_logits = frechet(lg.double().numpy(), lr.double().numpy())
    assert abs(on_logits - by_hand) > 0.01 * by_hand  # 10x the tolerance: the test tells the two layers apart


def test_fid_known_answers_on_digits(digits, cache):
    tr, te = digits
    g = torch.Generator().manual_seed(1)

    def fid(x):
        (v,) = evaluate_samples(x, None, "digits", ["fid"], cache_root=cache)["metrics"].values()
        return v

    self_fid = fid(te.images)  # the test split against itself: exactly 0 (up to float noise)
    real = fid(tr.images[:297])
    half = fid(tr.images[torch.isin(tr.labels, torch.arange(5))][:297])
    noise = fid(torch.rand(297, 1, 8, 8, generator=g) * 2 - 1)
    assert abs(self_fid) < 1e-3 * real
    assert real < half < noise


def test_is_pr_kid_known_answers_on_digits(digits, cache):
    """IS of an even, correctly classified set ~ the number of classes, of one class ~ 1; a set missing half
    the classes loses recall; uniform noise has the lowest precision."""
    tr, _ = digits
    model, _ = load_classifier("digits")
    pred = classify(model, tr.images)[1].argmax(1)
    ok = pred == tr.labels
    even = torch.cat([tr.images[ok & (tr.labels == k)][:140] for k in range(10)])
    one = tr.images[ok & (tr.labels == 3)][:120]

    def sc(x, ms):
        return evaluate_samples(x, None, "digits", ms, cache_root=cache)["metrics"]

    logp = classify(model, quantised(even))[1].double().log_softmax(1)
    by_hand = math.exp((logp.exp() * (logp - logp.exp().mean(0).log())).sum(1).mean().item())  # one split
    got = sc(even, ["is"])["is1400"]
    assert got == pytest.approx(by_hand, rel=0.03) and 8 < got <= 10  # 10 classes, the classifier not fully sure
    assert sc(one, ["is"])["is120"] == pytest.approx(1, abs=0.15)
    g = torch.Generator().manual_seed(2)
    full = sc(tr.images[:297], ["pr"])
    half = sc(tr.images[torch.isin(tr.labels, torch.arange(5))][:297], ["pr"])
    noise = sc(torch.rand(297, 1, 8, 8, generator=g) * 2 - 1, ["pr"])
    assert half["recall297_test"] < 0.75 * full["recall297_test"]
    assert noise["precision297_test"] < min(full["precision297_test"], half["precision297_test"])


# ------------------------------------------------------------------------------------------------
# coverage


def test_coverage_threshold_default_is_a_tenth_of_the_expected_count():
    assert metrics.COVERAGE_THRESHOLD == 0.1
    assert inspect.signature(cov.coverage).parameters["threshold"].default == 0.1
    assert inspect.signature(cov.classes_covered).parameters["threshold"].default == 0.1
    prior = torch.ones(10)
    # expected 100 per class: 5 (5 %) is not covered, 20 (20 %) is; a tenfold threshold change flips one of them
    counts = [5, 20] + [121] * 8
    pred = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    pred = pred[:1000] if len(pred) > 1000 else torch.cat([pred, torch.full((1000 - len(pred),), 9)])
    assert cov.coverage(pred, None, prior)["covered"] == 9
    assert cov.classes_covered(cov.histogram(pred, 10), prior, 0.01) == 10
    assert cov.classes_covered(cov.histogram(pred, 10), prior, 1.0) == 8


def test_coverage_metric_on_digits_uses_the_default_threshold(digits, cache):
    """Real digits the classifier labels right, composed to predicted counts 5 / 25 / 120 x 8 of N = 990."""
    _, te = digits
    model, _ = load_classifier("digits")
    pred = classify(model, te.images)[1].argmax(1)
    right = [te.images[(pred == k) & (te.labels == k)] for k in range(10)]
    counts = [5, 25] + [120] * 8
    x = torch.cat([right[k][torch.arange(c) % len(right[k])] for k, c in enumerate(counts)])
    rec = evaluate_samples(x, None, "digits", ["coverage"], cache_root=cache)
    assert rec["details"]["coverage_threshold"] == 0.1
    assert rec["metrics"]["classes_covered990"] == 9  # class 0 has ~5 % of its expected count, class 1 ~25 %


# ------------------------------------------------------------------------------------------------
# LPIPS: the real-data figure is computed from real data


def test_lpips_real_figure_comes_from_the_real_split(digits, cache):
    from benchmark.evaluation.diversity import DEFAULT_PAIRS, diversity, lpips_distance

    tr, te = digits
    collapsed = tr.images[:1].expand(300, -1, -1, -1).contiguous()  # generated: one image, zero diversity
    varied = torch.flip(tr.images[:300], dims=[3])  # generated: mirrored digits, not the real reference
    a = evaluate_samples(collapsed, None, "digits", ["lpips"], cache_root=cache)["metrics"]
    b = evaluate_samples(varied, None, "digits", ["lpips"], cache_root=cache)["metrics"]
    gen = lambda m: next(v for k, v in m.items() if "real" not in k)  # noqa: E731  (lpips300 or feat_div300)
    real = lambda m, split="test": next(v for k, v in m.items() if k.endswith(f"_real300_{split}"))  # noqa: E731
    assert gen(a) == pytest.approx(0.0, abs=1e-9) and gen(b) > 0
    dist, _ = lpips_distance("digits")
    by_hand = diversity(te.reference(300)[0], dist, DEFAULT_PAIRS, 0)["mean"]
    assert by_hand > 0
    assert real(a) == pytest.approx(by_hand, rel=1e-6)
    assert real(b) == pytest.approx(by_hand, rel=1e-6)  # independent of the generated set
    train_fig = evaluate_samples(collapsed, None, "digits", ["lpips"], split="train", cache_root=cache)["metrics"]
    rows = torch.randperm(len(tr), generator=torch.Generator().manual_seed(0))[:300].sort().values  # 300 < 1500
    assert real(train_fig, "train") == pytest.approx(
        diversity(tr.images[rows], dist, DEFAULT_PAIRS, 0)["mean"], rel=1e-6
    )


# ------------------------------------------------------------------------------------------------
# mixtures through generate(): points keep their geometry


class RealPoints(nn.Module):
    """A 'generator' that returns real samples of a mixture, whatever the noise."""

    def __init__(self, data):
        super().__init__()
        self.data, self.num_classes, self.g = data, 0, torch.Generator().manual_seed(5)

    def forward(self, z, y=None):
        return self.data.sample(len(z), self.g)[0]


@pytest.mark.parametrize("dataset,modes", [("ring8", 8), ("grid25", 25)])
def test_generate_keeps_mixture_points_and_all_modes(dataset, modes):
    data = load_dataset(dataset)
    cfg = resolve(make_config(dict(dataset=dataset, model="toy", device="cpu")))
    x, _ = generate(RealPoints(data), cfg, 2500)
    assert x.abs().max() > 0.9 * data.means.abs().max()  # grid25 reaches +-4: nothing clamped to [-1, 1]
    m = evaluate_samples(x, None, dataset)["metrics"]
    assert m["modes2500"] == modes and m["hq2500"] > 95 and m["rkl2500"] < 0.01


# ------------------------------------------------------------------------------------------------
# cache keys: what must change them does


def test_reference_cache_is_keyed_by_split_and_size(digits, cache):
    tr, _ = digits
    x = tr.images[:150]
    fid = lambda **kw: evaluate_samples(x, None, "digits", ["fid"], cache_root=cache, **kw)["metrics"]  # noqa: E731
    first = fid()
    before = fidelity.images_seen("digits")
    again = fid()
    assert fidelity.images_seen("digits") - before == 150  # cache hit: only the generated set
    assert again == first
    before = fidelity.images_seen("digits")
    other_split = fid(split="train")
    assert fidelity.images_seen("digits") - before == 300  # the train reference is new
    assert other_split["fid150_train"] != first["fid150_test"]
    before = fidelity.images_seen("digits")
    evaluate_samples(tr.images[:120], None, "digits", ["fid"], cache_root=cache)
    assert fidelity.images_seen("digits") - before == 240  # another reference size is another entry


def test_run_evaluation_record_is_keyed_by_generation_seed(tmp_path):
    from benchmark.evaluation.runs import evaluate_run
    from benchmark.train import train

    out = tmp_path / "run"
    train(
        make_config(dict(dataset="ring8", model="toy", steps=2, checkpoint_every=2, batch_size=16, device="cpu")),
        out,
        progress=False,
    )
    a = evaluate_run(out, progress=False, seed=0)[0]
    same = evaluate_run(out, progress=False, seed=0)[0]
    b = evaluate_run(out, progress=False, seed=1)[0]
    assert same == a  # the stored record
    assert (a["generation_seed"], b["generation_seed"]) == (0, 1)  # seed 1's samples scored, not seed 0's record

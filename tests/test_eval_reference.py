"""The rows a ``*_test`` score compares with: below the split's size a seeded random subset of it (the same for
every run, metric family and cache entry), the whole split at or above it; never the first N rows.

The rule is spelled out here on its own (``rows``): the first ``n`` of ``torch.randperm(size)`` under seed 0, in
file order. MNIST's test file is ordered by writer group (its first 5,000 images come from NIST's SD-3, the last
5,000 from SD-1), so its first N are a biased sample of it: 3,000 real training digits score FID 18.2 against
test[:3000] and 7.4 against the seeded subset (the README's Evaluation section, with its command).
"""

from __future__ import annotations

import pytest
import torch

from benchmark.data import load_dataset
from benchmark.evaluation import fidelity
from benchmark.evaluation import reference as R
from benchmark.evaluation.diversity import DEFAULT_PAIRS, diversity, lpips_distance
from benchmark.evaluation.metrics import evaluate_samples
from helpers import MNIST_ROOT, needs_mnist

DIGITS_TEST = 297  # the digits test split's size (data.py: 1797 = 1500 train + 297 test)


def rows(size: int, n: int) -> torch.Tensor:
    """The protocol's subset, written out independently of reference.py."""
    if n >= size:
        return torch.arange(size)
    return torch.randperm(size, generator=torch.Generator().manual_seed(0))[:n].sort().values


@pytest.fixture(scope="module")
def te():
    return load_dataset("digits", split="test")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("reference-cache")


def test_the_subset_is_drawn_without_replacement_and_not_the_first_rows():
    got = R.reference_rows(10_000, 3000)
    assert got.dtype == torch.int64 and len(got) == 3000 and len(set(got.tolist())) == 3000
    assert 0 <= int(got.min()) and int(got.max()) < 10_000 and torch.equal(got, got.sort().values)
    assert torch.equal(got, rows(10_000, 3000))  # seed 0, the first 3,000 of one permutation
    assert torch.equal(got, R.reference_rows(10_000, 3000))  # the same subset every call
    # both of MNIST's writer groups: about half of the rows below 5,000 (hypergeometric sd 23); test[:3000]: all
    assert 1300 < int((got < 5000).sum()) < 1700
    assert set(got.tolist()) <= set(R.reference_rows(10_000, 5000).tolist())  # nested: one permutation
    assert R.SUBSET == f"random-s{R.REFERENCE_SEED}"


@pytest.mark.parametrize("n", [DIGITS_TEST, DIGITS_TEST + 1, 10 * DIGITS_TEST])
def test_n_at_or_above_the_split_size_is_the_whole_split(n):
    assert torch.equal(R.reference_rows(DIGITS_TEST, n), torch.arange(DIGITS_TEST))


def test_every_family_compares_with_the_seeded_subset(te, cache):
    """FID and precision/recall of the subset against the reference are those of a set against itself (0; 1 and
    1); the first 200 rows are not that set. The real diversity figure reads the same rows."""
    sub = te.images[rows(DIGITS_TEST, 200)]
    same = evaluate_samples(sub, None, "digits", ["fid", "pr", "lpips"], cache_root=cache)
    first = evaluate_samples(te.images[:200], None, "digits", ["fid", "pr"], cache_root=cache)["metrics"]
    m = same["metrics"]
    assert abs(m["fid200_test"]) < 1e-3 and first["fid200_test"] > 1.0
    assert (m["precision200_test"], m["recall200_test"]) == (1.0, 1.0)
    assert first["precision200_test"] < 1.0
    dist, _ = lpips_distance("digits")
    real = next(v for k, v in m.items() if k.endswith("_real200_test"))
    assert real == pytest.approx(diversity(sub, dist, DEFAULT_PAIRS, 0)["mean"], rel=1e-6)
    assert same["reference"] == {"dataset": "digits", "split": "test", "subset": "random-s0"}


def test_the_whole_split_in_any_order_is_the_reference_at_or_above_its_size(te, cache):
    shuffled = te.images[torch.randperm(DIGITS_TEST, generator=torch.Generator().manual_seed(5))]
    m = evaluate_samples(shuffled, None, "digits", ["fid", "pr"], cache_root=cache)["metrics"]
    assert abs(m["fid297_test"]) < 1e-3 and (m["precision297_test"], m["recall297_test"]) == (1.0, 1.0)


def test_a_cache_entry_without_the_subset_rule_is_not_reused(te, cache):
    """An entry keyed like the first-N references of before (no subset rule in its key) is read again."""
    x = te.images[:150]
    before = evaluate_samples(x, None, "digits", ["fid"], cache_root=cache)["metrics"]
    (path,) = [p for p in (cache / "fidelity").glob("ganbench-digits-test-n150-*-reference.pt")]
    assert R.SUBSET in path.name
    blob = torch.load(path, weights_only=True)
    blob["key"] = {k: v for k, v in blob["key"].items() if k != "subset"}
    blob["mu"] = blob["mu"] + 1.0  # an old entry's statistics, if it were read
    torch.save(blob, path)
    seen = fidelity.images_seen("digits")
    again = evaluate_samples(x, None, "digits", ["fid"], cache_root=cache)["metrics"]
    assert fidelity.images_seen("digits") - seen == 2 * len(x)  # the samples and the 150 real images again
    assert again == before


@needs_mnist
def test_real_training_digits_against_the_mnist_test_subset(tmp_path):
    """3,000 real training digits against MNIST's test split: FID 7.4 against the seeded subset (measured), 18.2
    against test[:3000], the first writer group only."""
    tr = load_dataset("mnist", root=str(MNIST_ROOT), split="train")
    rec = evaluate_samples(tr.images[:3000], None, "mnist", ["fid"], data_root=str(MNIST_ROOT), cache_root=tmp_path)
    assert rec["metrics"]["fid3k_test"] < 11.0

"""NDB / JS (metric ndb, Richardson & Weiss 2018): the pooled two-proportion z-test and the JS divergence against
answers computed by hand (and scipy's JS), two separated clusters, the cache of the bins, and on real MNIST: real
test data near alpha, one class and one image repeated at 1, half the classes in between."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.errors import UserError
from benchmark.evaluation import ndb as N
from benchmark.evaluation.metrics import Context, Options, default_metrics, evaluate_samples, score
from benchmark.evaluation.scores import direction
from helpers import MNIST_ROOT, needs_mnist

torch.set_num_threads(1)

NS = 2000  # generated samples per MNIST set


# ---- the z-test and JS, by hand --------------------------------------------------------------------------


def test_z_test_uses_the_pooled_variance_and_a_two_tailed_threshold():
    # bin 0: 50 of 1000 real rows (5 %) against 1 of 100 generated (1 %). Pooled p = 51/1100, se = 0.02205,
    # z = -0.04 / 0.02205 = -1.814: not different at alpha = 0.05 (|z| < 1.96). Unpooled se would be 0.0121
    # (z = -3.30: different), a one-tailed threshold 1.645 (different too).
    t = N.z_test(torch.tensor([50, 950]), torch.tensor([1, 99]))
    assert float(t["z"][0]) == pytest.approx(-1.8141, abs=1e-3)
    assert t["different"].tolist() == [False, False]
    # 10 of 100 real against 2 of 100 generated: pooled p = 0.06, se = 0.033586, z = -2.382: different
    t = N.z_test(torch.tensor([10, 90]), torch.tensor([2, 98]))
    assert float(t["z"][0]) == pytest.approx(-2.3820, abs=1e-3)
    assert t["different"].tolist() == [True, True]
    # a stricter alpha: Phi^-1(1 - 0.01/2) = 2.576 > 2.382
    assert N.z_test(torch.tensor([10, 90]), torch.tensor([2, 98]), alpha=0.01)["different"].tolist() == [False] * 2


def test_z_test_calls_a_bin_empty_on_both_sides_not_different():
    t = N.z_test(torch.tensor([0, 50, 50]), torch.tensor([0, 50, 50]))
    assert t["different"].tolist() == [False] * 3 and float(t["z"].abs().max()) == 0.0


def test_js_divergence_is_in_nats_and_equals_scipys():
    spatial = pytest.importorskip("scipy.spatial.distance")
    # (1/2, 1/2) against (1, 0): m = (3/4, 1/4); JS = (1/2 ln(2/3) + 1/2 ln 2 + ln(4/3)) / 2 = 0.215762
    assert N.js_divergence(torch.tensor([5.0, 5.0]), torch.tensor([3.0, 0.0])) == pytest.approx(0.2157616, abs=1e-6)
    assert N.js_divergence(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == pytest.approx(math.log(2))
    g = torch.Generator().manual_seed(0)
    p, q = torch.rand(100, generator=g), torch.rand(100, generator=g)
    p[:10] = 0
    q[5:20] = 0
    assert N.js_divergence(p, q) == pytest.approx(spatial.jensenshannon(p.numpy(), q.numpy()) ** 2, rel=1e-9)


def _clusters(n_a: int, n_b: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.randn(n_a, 3, generator=g) * 0.1, torch.randn(n_b, 3, generator=g) * 0.1 + 10])


def test_two_separated_clusters_give_the_answers_computed_by_hand():
    bins = N.fit_bins(_clusters(50, 50, 0), k=2)  # real: 50 rows in each of two clusters far apart
    assert sorted(bins.counts.tolist()) == [50, 50]
    one = N.ndb(_clusters(100, 0, 1), bins)  # all 100 generated rows in one cluster: both bins differ (z = 8.16)
    assert one["ndb"] == 1.0 and one["different"] == 2
    assert one["js"] == pytest.approx(0.2157616, abs=1e-6)  # (1/2, 1/2) against (1, 0), as above
    both = N.ndb(_clusters(60, 40, 2), bins)  # 60/40 of 100 against 50/50 of 100: z = 1.42, not different
    assert both["ndb"] == 0.0 and both["js"] == pytest.approx(
        (
            0.5 * math.log(0.5 / 0.55)
            + 0.5 * math.log(0.5 / 0.45)
            + 0.6 * math.log(0.6 / 0.55)
            + 0.4 * math.log(0.4 / 0.45)
        )
        / 2,
        abs=1e-9,
    )


# ---- the registered metric ---------------------------------------------------------------------------------


def test_declared_lower_is_better_and_opt_in():
    assert direction("ndb10k_train") == -1 and direction("ndb_js10k_train") == -1
    for ds in ("mnist", "stacked-mnist", "ring8"):
        assert "ndb" not in default_metrics(ds, conditional=True, run=True)


def test_ndb_does_not_apply_to_points_and_needs_as_many_samples_as_bins():
    with pytest.raises(UserError, match="does not apply"):
        evaluate_samples(torch.zeros(500, 2), None, "ring8", ["ndb"])
    with pytest.raises(UserError, match=f"needs at least {N.NDB_BINS} samples"):
        evaluate_samples(torch.zeros(N.NDB_BINS - 1, 1, 28, 28), None, "mnist", ["ndb"])


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    if MNIST_ROOT is None:
        pytest.skip("real MNIST not found in $GANBENCH_DATA or ../shared/data")
    from benchmark.data import load_dataset

    tr = load_dataset("mnist", root=str(MNIST_ROOT), split="train")
    te = load_dataset("mnist", root=str(MNIST_ROOT), split="test")
    g = torch.Generator().manual_seed(7)
    half = tr.images[torch.isin(tr.labels, torch.arange(5))]
    sets = {  # random rows: the files are ordered (by writer), their first rows are not a sample of the split
        "real": te.images[torch.randperm(len(te), generator=g)[:NS]],
        "half": half[torch.randperm(len(half), generator=g)[:NS]],
        "one_class": tr.images[tr.labels == 1][:NS],
        "one": tr.images[:1].expand(NS, -1, -1, -1).clone(),
    }
    cache = tmp_path_factory.mktemp("ndb-cache")
    records = {
        k: evaluate_samples(x, None, "mnist", ["ndb"], data_root=str(MNIST_ROOT), cache_root=cache)
        for k, x in sets.items()
    }
    return {"sets": sets, "cache": cache, "records": records}


@needs_mnist
def test_real_test_data_differs_in_about_alpha_of_the_bins(mnist):
    m = mnist["records"]["real"]["metrics"]
    assert m["ndb2k_train"] <= 3 * N.NDB_ALPHA  # real test digits against training bins: near alpha (0.04 measured)
    assert m["ndb_js2k_train"] < 0.02


@needs_mnist
def test_one_image_and_one_class_differ_everywhere_and_half_the_classes_in_between(mnist):
    m = {k: r["metrics"] for k, r in mnist["records"].items()}
    assert m["one"]["ndb2k_train"] == 1.0 and m["one_class"]["ndb2k_train"] >= 0.95
    # one bin holds every sample: JS = (0.99 ln 2 + 0.01 ln(0.01/0.505) + ln(1/0.505)) / 2 = 0.665 for even bins
    assert 0.6 < m["one"]["ndb_js2k_train"] <= math.log(2)
    assert m["real"]["ndb2k_train"] < m["half"]["ndb2k_train"] < m["one"]["ndb2k_train"]
    js = [m[k]["ndb_js2k_train"] for k in ("real", "half", "one_class", "one")]
    assert js == sorted(js) and js[0] < 0.2 * js[1]
    # half the classes: half the bins emptied, the other half doubled: JS = 0.216 for even bins
    assert 0.12 < m["half"]["ndb_js2k_train"] < 0.3


@needs_mnist
def test_the_record_names_the_protocol_and_the_bins_come_from_the_training_subset(mnist):
    rec = mnist["records"]["real"]
    p = rec["details"]["ndb_protocol"]
    assert (p["bins"], p["alpha"], p["seed"], p["real_split"], p["real_n"]) == (100, 0.05, 0, "train", 10_000)
    assert p["js_log"] == "e" and p["subset"] == rec["reference"]["subset"]
    assert rec["details"]["ndb_different2k"] == round(rec["metrics"]["ndb2k_train"] * 100)
    (entry,) = mnist["cache"].rglob("*-ndb-K100-s0-*.pt")
    blob = torch.load(entry, weights_only=True)
    assert int(blob["counts"].sum()) == 10_000 and blob["key"]["real_n"] == 10_000 and blob["key"]["bins"] == 100


@needs_mnist
def test_the_bins_are_cached_and_refitted_when_their_key_changes(mnist, monkeypatch):
    x = mnist["sets"]["half"]
    want = mnist["records"]["half"]["metrics"]

    def no_fit(*a, **k):
        raise AssertionError("the bins were fitted again")

    monkeypatch.setattr(N, "fit_bins", no_fit)
    ctx = Context(x, None, Options("mnist", data_root=str(MNIST_ROOT), cache_root=mnist["cache"]))
    assert score(ctx, ["ndb"])[0] == want  # from the cache entry: no fit
    monkeypatch.setattr(N, "NDB_SEED", 1)  # another seed is another partition: not read from the seed-0 entry
    ctx = Context(x, None, Options("mnist", data_root=str(MNIST_ROOT), cache_root=mnist["cache"]))
    with pytest.raises(AssertionError, match="fitted again"):
        score(ctx, ["ndb"])

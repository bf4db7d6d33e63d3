"""Known answers of the torch-fidelity engine on real MNIST (FID, KID, IS, precision/recall) and its cache."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from benchmark.errors import UserError
from benchmark.evaluation import fidelity
from benchmark.evaluation.metrics import evaluate_samples
from helpers import MNIST_ROOT, needs_mnist

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
pytestmark = needs_mnist

N = 2000  # samples per set: enough to rank sets, small enough for a quick test


@pytest.fixture(scope="module")
def data():
    from benchmark.data import load_dataset

    tr = load_dataset("mnist", root=str(MNIST_ROOT), split="train")
    te = load_dataset("mnist", root=str(MNIST_ROOT), split="test")
    return tr, te


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fidelity-cache")


def score(x, cache, metrics=("fid", "kid", "pr"), y=None, split="test"):
    return evaluate_samples(x, y, "mnist", list(metrics), split=split, data_root=str(MNIST_ROOT), cache_root=cache)[
        "metrics"
    ]


def of_class(ds, classes, n=N):
    mask = torch.isin(ds.labels, torch.tensor(classes))
    return ds.images[mask][:n]


@pytest.fixture(scope="module")
def scores(data, cache):
    tr, te = data
    g = torch.Generator().manual_seed(0)
    sets = {
        "real": tr.images[:N],
        "noise": torch.rand(N, 1, 28, 28, generator=g) * 2 - 1,
        "half": of_class(tr, [0, 1, 2, 3, 4]),
        **{f"class{k}": of_class(tr, [k]) for k in range(10)},
    }
    with_kid = ("real", "noise")  # KID's 100 subsets are the slow part: a few sets only
    return {
        name: score(x, cache, ("fid", "kid", "pr") if name in with_kid else ("fid", "pr")) for name, x in sets.items()
    }


def test_real_train_beats_every_class_subset_and_noise(scores):
    real = scores["real"]["fid2k_test"]
    for name, s in scores.items():
        if name != "real":
            assert real < s["fid2k_test"], name
            if "kid2k_test" in s:
                assert scores["real"]["kid2k_test"] < s["kid2k_test"], name


def test_uniform_noise_scores_worst_fid_and_lowest_precision(scores):
    noise = scores["noise"]
    for name, s in scores.items():
        if name != "noise":
            assert noise["fid2k_test"] > s["fid2k_test"], name
            assert noise["precision2k_test"] < s["precision2k_test"], name


def test_missing_classes_lower_recall(scores):
    assert scores["half"]["recall2k_test"] < scores["real"]["recall2k_test"]
    assert scores["class3"]["recall2k_test"] < scores["half"]["recall2k_test"]


def test_fid_of_a_set_against_itself_is_zero(data, cache, scores):
    """The reference of N < 10,000 test images is the seeded subset (seed 0, spelled out here), not test[:N]."""
    _, te = data
    rows = torch.randperm(len(te), generator=torch.Generator().manual_seed(0))[:N]
    s = score(te.images[rows], cache, metrics=("fid",))
    assert abs(s["fid2k_test"]) < 1e-3 * scores["real"]["fid2k_test"]


def test_is_of_a_perfectly_and_evenly_labelled_set_is_the_number_of_classes(data, cache):
    from benchmark.evaluation.classifier import classify, load_classifier

    _, te = data
    model, _ = load_classifier("mnist")
    pred = classify(model, te.images)[1].argmax(1)
    ok = pred == te.labels
    per = 150
    x = torch.cat([te.images[ok & (te.labels == k)][:per] for k in range(10)])
    s = score(x, cache, metrics=("is",))
    assert s["is1500"] == pytest.approx(10, rel=0.08)
    single = score(te.images[ok & (te.labels == 4)], cache, metrics=("is",))
    (value,) = [v for k, v in single.items() if not k.startswith("is_std")]
    assert value == pytest.approx(1, abs=0.1)


def test_reference_statistics_come_from_the_cache_the_second_time(data, cache):
    tr, _ = data
    x = tr.images[N : N + 1000]  # 1000 samples -> a reference of 1000 real images not yet cached
    before = fidelity.images_seen("mnist")
    first = score(x, cache, metrics=("fid", "is", "pr"))
    seen_first = fidelity.images_seen("mnist") - before
    assert seen_first == len(x) + 1000  # generated + real
    before = fidelity.images_seen("mnist")
    second = score(x, cache, metrics=("fid", "pr"))  # another metric mix, same reference
    assert fidelity.images_seen("mnist") - before == len(x)  # only the generated set
    assert second["fid1k_test"] == first["fid1k_test"]
    before = fidelity.images_seen("mnist")
    score(x, cache, metrics=("fid",))
    assert fidelity.images_seen("mnist") - before == len(x)
    assert any(p.name.startswith("ganbench-mnist-test-n1000-") for p in (cache / "fidelity").iterdir())


def test_extractor_reads_uint8_like_torch_fidelity_feeds_it(data):
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    from benchmark.evaluation.classifier import load_classifier

    _, te = data
    name = fidelity.register_classifier_extractor("mnist")
    fe = FEATURE_EXTRACTORS_REGISTRY[name](name, ["features", "logits"]).eval()
    x = te.images[:64]
    f_u8, l_u8 = fe(fidelity.to_uint8(x))
    model, _ = load_classifier("mnist")
    f, lg = model.features_and_logits(x)
    assert torch.allclose(f_u8, f, atol=1e-5) and torch.allclose(l_u8, lg, atol=1e-5)
    assert torch.equal(fidelity.to_uint8(x).float() / 127.5 - 1, x)  # the datasets' quantisation round-trips


def test_inception_offline_is_one_clear_line(monkeypatch, tmp_path, data):
    tr, _ = data
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*a, **k):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(UserError) as e:
        evaluate_samples(
            tr.images[:200],
            None,
            "mnist",
            ["fid"],
            feature_extractor="inception-v3-compat",
            data_root=str(MNIST_ROOT),
            cache_root=tmp_path,
        )
    msg = str(e.value)
    assert "\n" not in msg and "Inception-v3" in msg and "--feature-extractor classifier" in msg


def test_every_score_names_its_evaluator(data, cache):
    from benchmark.evaluation.classifier import read_manifest

    tr, _ = data
    from benchmark.evaluation.diversity import alexnet_weights_present

    rec = evaluate_samples(
        tr.images[:200], None, "mnist", ["fid", "lpips", "coverage"], data_root=str(MNIST_ROOT), cache_root=cache
    )
    ev = rec["evaluator"]
    assert ev["sha256"] == read_manifest()["mnist"]["sha256"] == ev["classifier_sha256"]
    assert ev["second_classifier_sha256"] == read_manifest()["mnist-mlp"]["sha256"]
    div = "lpips" if alexnet_weights_present() else "feat_div"  # lpips* only when LPIPS itself ran
    assert ev["name"] == "ganbench-classifier-mnist"
    assert ev["lpips_backbone"] == ("lpips-alex" if div == "lpips" else "feat-classifier-mnist")
    assert {"fid200_test", f"{div}200", f"{div}_real200_test", "evaluator_agreement200", "evaluator_tv200"} <= set(
        rec["metrics"]
    )
    assert all(math.isfinite(v) for v in rec["metrics"].values())

"""The pinned evaluators: committed weights, checked sha256, accuracy and robustness to corruptions (the
specification of issue 12), the independent second evaluator, deterministic training, safe defaults."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from benchmark.errors import UserError
from benchmark.evaluation import classifier as C
from benchmark.io import sha256_file
from helpers import MNIST_ROOT, needs_mnist

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]

REQUIRED_MNIST_ACCURACY = 0.993  # the evaluator's specification


@pytest.mark.parametrize("dataset", ["mnist", "digits", "mnist-mlp", "digits-mlp"])
def test_committed_weights_match_manifest(dataset):
    manifest = C.read_manifest()
    entry = manifest[dataset]
    path = C.WEIGHTS_DIR / entry["file"]
    assert path.is_file()
    assert sha256_file(path) == entry["sha256"]
    assert path.stat().st_size < 2 * 1024 * 1024
    for key in (
        "test_accuracy",
        "feature_dim",
        "command",
        "seed",
        "torch_version",
        "corruption_table",
        "readable_tau",
        "arch",
    ):
        assert key in entry
    model, sha = C.load_classifier(dataset)
    assert sha == entry["sha256"]
    side = entry["input_shape"][-1]
    f, logits = model.features_and_logits(torch.zeros(3, 1, side, side))
    assert f.shape == (3, entry["feature_dim"]) and logits.shape == (3, entry["num_classes"])
    assert not model.training


def test_stacked_mnist_borrows_the_mnist_classifier():
    assert C.load_classifier("stacked-mnist")[1] == C.load_classifier("mnist")[1]


def test_tampered_weights_are_refused(tmp_path):
    for f in ("mnist.pt", "manifest.json"):
        shutil.copy(C.WEIGHTS_DIR / f, tmp_path / f)
    blob = bytearray((tmp_path / "mnist.pt").read_bytes())
    blob[-100] ^= 0xFF
    (tmp_path / "mnist.pt").write_bytes(bytes(blob))
    with pytest.raises(UserError, match="sha256"):
        C.load_classifier("mnist", weights_dir=tmp_path)


def test_missing_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(UserError, match="ganbench classifier train --dataset mnist"):
        C.load_classifier("mnist", weights_dir=tmp_path)


def test_unknown_dataset_has_no_classifier():
    with pytest.raises(UserError, match="no evaluator classifier"):
        C.load_classifier("ring8")


@needs_mnist
def test_mnist_accuracy_meets_the_specification():
    from benchmark.data import load_dataset

    test = load_dataset("mnist", root=str(MNIST_ROOT), split="test")
    model, _ = C.load_classifier("mnist")
    acc = C.accuracy(model, test.images, test.labels)
    assert acc >= REQUIRED_MNIST_ACCURACY
    assert acc == pytest.approx(C.read_manifest()["mnist"]["test_accuracy"], abs=5e-4)


# The specification on MNIST test (issue 12), and the thresholds checked on a 1,000-image subset: a little
# below the targets (a subset's figures scatter by about +-0.5 %).
SPEC = {"clean": 0.993, "gauss0.2": 0.97, "sp0.1": 0.95, "blur1": 0.97}
SUBSET = {"clean": 0.985, "gauss0.2": 0.96, "sp0.1": 0.94, "blur1": 0.96}
MAX_SHARE_RATIO = 1.5  # no class gets more than 1.5x its true share under any corruption
MAX_CONFIDENT_NOISE = 0.05  # uniform-noise images read with max prob >= 0.9


@pytest.fixture(scope="module")
def mnist_subset():
    from benchmark.data import load_dataset

    test = load_dataset("mnist", root=str(MNIST_ROOT), split="test")
    return test.images[:1000], test.labels[:1000]


@needs_mnist
@pytest.mark.parametrize("name", ["mnist", "mnist-mlp"])
def test_mnist_evaluators_read_corrupted_digits(mnist_subset, name):
    x, y = mnist_subset
    model, _ = C.load_classifier(name)
    t = C.corruption_table(model, x, y, num_uniform=1000)
    for cond in SUBSET:
        assert t[cond]["max_share_ratio"] <= MAX_SHARE_RATIO, (cond, t[cond])
    assert t["uniform"]["confident_share"] <= MAX_CONFIDENT_NOISE
    if name == "mnist":  # the pinned evaluator meets the accuracy targets; the second is a cross-check
        for cond, floor in SUBSET.items():
            assert t[cond]["accuracy"] >= floor, (cond, t[cond])
    else:
        for cond in SUBSET:
            assert t[cond]["accuracy"] >= 0.93, (cond, t[cond])


@needs_mnist
def test_manifest_table_meets_the_full_test_specification():
    for name in ("mnist",):
        t = C.read_manifest()[name]["corruption_table"]
        for cond, floor in SPEC.items():
            assert t[cond]["accuracy"] >= floor and t[cond]["max_share_ratio"] <= MAX_SHARE_RATIO, (name, cond)
        assert t["uniform"]["confident_share"] <= MAX_CONFIDENT_NOISE


@pytest.fixture(scope="module")
def digits_test():
    from benchmark.data import load_dataset

    test = load_dataset("digits", split="test")
    return test.images, test.labels


@pytest.mark.parametrize("name", ["digits", "digits-mlp"])
def test_digits_evaluators_read_noisy_digits_without_a_magnet_class(digits_test, name):
    """Runs without MNIST: the digits evaluators under the same seeded corruptions; no class may take more than
    1.5x its share on noisy digits, and noise is not read as a confident digit."""
    x, y = digits_test
    model, _ = C.load_classifier(name)
    t = C.corruption_table(model, x, y, num_uniform=1000)
    assert t["clean"]["accuracy"] >= 0.95
    assert t["gauss0.2"]["accuracy"] >= 0.9 and t["sp0.1"]["accuracy"] >= 0.9 and t["blur1"]["accuracy"] >= 0.9
    for cond in ("clean", "gauss0.2", "sp0.1", "blur1"):
        assert t[cond]["max_share_ratio"] <= MAX_SHARE_RATIO, (cond, t[cond])
    assert t["uniform"]["confident_share"] <= MAX_CONFIDENT_NOISE


def test_corruptions_are_deterministic_and_do_what_they_say():
    from benchmark.evaluation import corruptions as K

    x = torch.full((2, 1, 8, 8), -1.0)
    x[:, :, 3:5, 3:5] = 1.0
    for name in ("gauss0.2", "sp0.1", "blur1"):
        a, b = K.corrupt(x, name), K.corrupt(x, name)
        assert torch.equal(a, b) and a.min() >= -1 and a.max() <= 1
        if name != "blur1":  # the noises depend on the seed; blur has none
            assert not torch.equal(a, K.corrupt(x, name, seed=7))
    sp = K.corrupt(torch.zeros(100, 1, 28, 28), "sp0.1")
    hit = sp != 0
    assert 0.09 < float(hit.double().mean()) < 0.11 and set(sp[hit].unique().tolist()) == {-1.0, 1.0}
    g = K.corrupt(torch.zeros(100, 1, 28, 28), "gauss0.2")  # mid-grey: no clipping, std 0.2 in [0, 1] units
    assert float(((g + 1) / 2).std()) == pytest.approx(0.2, rel=0.02)
    x16 = torch.full((1, 1, 16, 16), -1.0)
    x16[:, :, 7:9, 7:9] = 1.0
    bl = (K.blur(x16, 1.0) + 1) / 2  # pixel space: the 4 units of ink are spread, kept, and stay local
    assert float(bl.sum()) == pytest.approx(4.0, abs=1e-4)
    assert float(bl.max()) < 0.5 and float(bl[0, 0, 0, 0]) == pytest.approx(0.0, abs=1e-6)


def test_digits_accuracy_matches_manifest():
    from benchmark.data import load_dataset

    test = load_dataset("digits", split="test")
    model, _ = C.load_classifier("digits")
    acc = C.accuracy(model, test.images, test.labels)
    assert acc == pytest.approx(C.read_manifest()["digits"]["test_accuracy"], abs=1e-6)
    assert acc > 0.9


def test_training_is_deterministic_given_the_seed(tmp_path):
    a = C.train_classifier("digits", epochs=2, seed=3, out_dir=tmp_path / "a", progress=False)
    b = C.train_classifier("digits", epochs=2, seed=3, out_dir=tmp_path / "b", progress=False)
    c = C.train_classifier("digits", epochs=2, seed=4, out_dir=tmp_path / "c", progress=False)
    assert a["sha256"] == b["sha256"] == sha256_file(tmp_path / "a" / "digits.pt")
    assert a["sha256"] != c["sha256"]
    assert a["corruption_table"] == b["corruption_table"]
    assert C.read_manifest(tmp_path / "a")["digits"]["command"] == (
        f"ganbench classifier train --dataset digits --epochs 2 --seed 3 --threads {torch.get_num_threads()}"
    )
    # what was trained loads back, checked, without unpickling (weights_only)
    model, sha = C.load_classifier("digits", weights_dir=tmp_path / "a")
    assert sha == a["sha256"] and not model.training


def test_train_never_replaces_the_shipped_evaluator_by_default(tmp_path, capsys):
    from benchmark.cli import main

    before = {p.name: sha256_file(p) for p in C.WEIGHTS_DIR.iterdir()}
    with pytest.raises(UserError, match="--replace-shipped"):
        C.train_classifier("digits", epochs=1, progress=False)
    with pytest.raises(UserError, match="--replace-shipped"):
        C.train_classifier("digits", epochs=1, out_dir=C.WEIGHTS_DIR, progress=False)
    assert main(["classifier", "train", "--dataset", "digits", "--epochs", "1", "--quiet"]) == 2
    assert "--replace-shipped" in capsys.readouterr().err
    assert {p.name: sha256_file(p) for p in C.WEIGHTS_DIR.iterdir()} == before
    # with --out, a new folder of its own
    assert (
        main(
            [
                "classifier",
                "train",
                "--dataset",
                "digits",
                "--second",
                "--epochs",
                "1",
                "--quiet",
                "--out",
                str(tmp_path / "new"),
            ]
        )
        == 0
    )
    m = C.read_manifest(tmp_path / "new")
    assert set(m) == {"digits-mlp"} and m["digits-mlp"]["role"] == "second"
    assert m["digits-mlp"]["command"].startswith("ganbench classifier train --dataset digits --second")


def test_second_evaluator_is_another_family_with_its_own_seed():
    for d, second in C.SECOND.items():
        a, b = C.ARCHS[d], C.ARCHS[second]
        assert a.family != b.family and a.seed != b.seed
    assert C.second_name("stacked-mnist") == "mnist-mlp"
    assert C.read_manifest()["mnist-mlp"]["sha256"] != C.read_manifest()["mnist"]["sha256"]


def test_training_a_borrowed_classifier_points_to_the_right_one():
    with pytest.raises(UserError, match="--dataset mnist"):
        C.train_classifier("stacked-mnist", progress=False)


def test_card_names_accuracy_sha_and_command(capsys):
    from benchmark.cli import main

    assert main(["classifier", "card", "--dataset", "mnist"]) == 0
    out = capsys.readouterr().out
    for name in ("mnist", "mnist-mlp"):
        entry = C.read_manifest()[name]
        assert entry["sha256"] in out and entry["command"] in out and "feature dim" in out
    assert "gauss0.2" in out and "uniform noise" in out


def test_classifier_test_remeasures_both_evaluators(tmp_path, capsys):
    from benchmark.cli import main
    from benchmark.io import read_json

    out = tmp_path / "t.json"
    assert main(["classifier", "test", "--dataset", "digits", "--json", str(out)]) == 0
    r = read_json(out)
    assert set(r["evaluators"]) == {"digits", "digits-mlp"} and r["test_images"] == 297
    for name, e in r["evaluators"].items():  # the full split re-measures the manifest's table exactly
        for cond, row in C.read_manifest()[name]["corruption_table"].items():
            assert e["table"][cond] == pytest.approx(row, abs=1e-6), (name, cond)
        assert e["readable_tau_measured"] == pytest.approx(C.read_manifest()[name]["readable_tau"], abs=1e-6)
    assert 0.9 <= r["agreement_clean"] <= 1 and 0 <= r["tv_clean"] <= 0.05
    assert "gauss0.2" in capsys.readouterr().out
    assert main(["classifier", "test", "--dataset", "digits", "--limit", "0"]) == 2
    assert main(["classifier", "test", "--dataset", "digits", "--weights", str(tmp_path / "none")]) == 2

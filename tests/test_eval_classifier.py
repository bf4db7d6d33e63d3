"""The pinned evaluator classifier: committed weights, checked sha256, accuracy, deterministic training."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from benchmark.errors import UserError
from benchmark.evaluation import classifier as C
from benchmark.io import sha256_file

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
MNIST_ROOT = Path(os.environ.get("GANBENCH_DATA") or REPO.parent / "shared" / "data")
HAS_MNIST = (MNIST_ROOT / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason=f"real MNIST not found under {MNIST_ROOT}")

REQUIRED_MNIST_ACCURACY = 0.993  # the evaluator's specification


@pytest.mark.parametrize("dataset", ["mnist", "digits"])
def test_committed_weights_match_manifest(dataset):
    manifest = C.read_manifest()
    entry = manifest[dataset]
    path = C.WEIGHTS_DIR / entry["file"]
    assert path.is_file()
    assert sha256_file(path) == entry["sha256"]
    assert path.stat().st_size < 2 * 1024 * 1024
    for key in ("test_accuracy", "feature_dim", "command", "seed", "torch_version"):
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
    assert C.read_manifest(tmp_path / "a")["digits"]["command"] == (
        f"ganbench classifier train --dataset digits --epochs 2 --seed 3 --threads {torch.get_num_threads()}")


def test_training_a_borrowed_classifier_points_to_the_right_one():
    with pytest.raises(UserError, match="--dataset mnist"):
        C.train_classifier("stacked-mnist", progress=False)


def test_card_names_accuracy_sha_and_command(capsys):
    from benchmark.cli import main

    assert main(["classifier", "card", "--dataset", "mnist"]) == 0
    out = capsys.readouterr().out
    entry = C.read_manifest()["mnist"]
    assert entry["sha256"] in out and entry["command"] in out and "feature dim" in out

"""The class-3 magnet (issue 20, item 6): the coverage figures' class histogram on generated digits is no farther
(TV) from independent readers than they are from each other (benchmark/evaluation/magnet.py).

The fixture ``tests/data/magnet.npz`` is 5,000 samples of a WGAN-GP MLP (lambda 1, 1000 steps, seed 0) on 16 grey
levels, cut to the images the readers do not all agree on, with the labels of the three readers that ganbench does
not ship (a LeNet, another CNN, 5-NN in pixels): their verdict is the reference. Made with
``python -m benchmark.evaluation.magnet --fixture tests/data/magnet.npz --run RUN_DIR ...`` (README, Evaluation).
On it the primary CNN alone is farther from the three than they are from each other; the reading must not be.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.evaluation import magnet
from benchmark.evaluation.metrics import evaluate_samples
from helpers import MNIST_ROOT, needs_mnist

FIXTURE = Path(__file__).resolve().parent / "data" / "magnet.npz"


def test_check_by_hand():
    h = lambda *v: torch.tensor(v)  # noqa: E731
    ind = {"a": h(50, 50, 0), "b": h(40, 60, 0), "c": h(50, 40, 10)}  # pairwise TV 0.1, 0.1, 0.2: spread 0.2
    inside = magnet.check({**ind, "s": h(45, 50, 5)}, "s", ("a", "b", "c"))
    assert inside["to"] == pytest.approx({"a": 0.05, "b": 0.1, "c": 0.1})
    assert inside["spread"] == pytest.approx(0.2) and inside["typical"] == pytest.approx(0.4 / 3)
    assert inside["holds"] is True
    far = magnet.check({**ind, "s": h(25, 50, 25)}, "s", ("a", "b", "c"))  # TV 0.25 to a: beyond the spread
    assert far["worst"] == pytest.approx(0.25) and far["holds"] is False
    # the mean rule alone: every TV within the spread, but farther on average than the readers are apart
    typ = magnet.check({**ind, "s": h(35, 50, 15)}, "s", ("a", "b", "c"))  # TV 0.15 to each
    assert typ["worst"] <= typ["spread"] and typ["mean"] > typ["typical"] and typ["holds"] is False


def test_knn_reads_the_nearest_training_digits_and_breaks_ties_by_the_nearest():
    tx = torch.tensor([[0.0], [0.1], [1.0], [1.1], [5.0]]).reshape(5, 1, 1, 1).repeat(1, 1, 2, 2) - 1
    ty = torch.tensor([0, 0, 1, 1, 2])
    q = torch.tensor([[0.05], [1.05], [0.6]]).reshape(3, 1, 1, 1).repeat(1, 1, 2, 2) - 1
    assert magnet.knn_labels(q, tx, ty, k=3).tolist() == [0, 1, 1]
    assert magnet.knn_labels(q, tx, ty, k=2).tolist() == [0, 1, 1]  # 0.6: a 1-1 tie, the nearest (1.0) wins


@needs_mnist
def test_coverage_class_histogram_is_no_farther_from_independent_readers_than_they_are_apart():
    f = np.load(FIXTURE)
    x = torch.from_numpy(f["images"]).float()[:, None] / 127.5 - 1
    rec = evaluate_samples(x, None, "mnist", ["coverage"], data_root=str(MNIST_ROOT))
    d = rec["details"]
    assert d["class_reading"] == "mean-prob-primary-second"
    agreed = torch.from_numpy(f["agreed_hist"].astype(np.int64))
    reading = next(v for k, v in d.items() if k.startswith("class_hist") and "second" not in k)
    hists = {"reading": torch.tensor(reading) + agreed}
    hists.update({r: torch.bincount(torch.from_numpy(f[r]).long(), minlength=10) + agreed for r in magnet.REFERENCE})
    assert all(int(v.sum()) == int(f["n"]) == 5000 for v in hists.values())
    c = magnet.check(hists, "reading")
    assert c["holds"], c

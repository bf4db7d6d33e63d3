"""Mode counting: Stacked MNIST (1000 modes, 26k samples) and 2D mixtures (PacGAN protocol, 2,500 samples)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from benchmark.data import load_dataset
from benchmark.errors import UserError
from benchmark.evaluation.metrics import evaluate_samples
from benchmark.evaluation.mixtures import mixture_metrics
from helpers import MNIST_ROOT, needs_mnist

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


@needs_mnist
def test_stacked_mnist_from_real_digits_captures_almost_all_modes():
    ds = load_dataset("stacked-mnist", root=str(MNIST_ROOT), split="test")
    x, _ = ds.reference(26_000, seed=1)
    m = evaluate_samples(x, None, "stacked-mnist", data_root=str(MNIST_ROOT))["metrics"]
    assert set(m) == {"modes26k", "kl26k"}
    assert m["modes26k"] >= 990
    assert m["kl26k"] < 0.1


@needs_mnist
def test_stacked_readable_real_triples_read_blank_and_noise_channels_do_not():
    """Real triples: each channel is a real test digit (>= 99 % of them readable under the image family's rule),
    so ~97 % or more of the triples, and nearly every mode among them; blank or uniform-noise channels: none, and
    no mode (the argmax ``modes`` reads them as digits)."""
    from benchmark.evaluation.failures import FAILURES

    ds = load_dataset("stacked-mnist", root=str(MNIST_ROOT), split="test")
    x, _ = ds.reference(26_000, seed=1)
    rec = evaluate_samples(x, None, "stacked-mnist", ["stacked_readable"], data_root=str(MNIST_ROOT))
    m = rec["metrics"]
    assert set(m) == {"readable_triples26k", "modes_readable26k"}
    assert m["readable_triples26k"] >= 0.97 and m["modes_readable26k"] >= 980
    assert rec["evaluator"]["second_classifier_sha256"]  # the second evaluator reads every channel
    for fail in ("uniform_channels", "blank_channels"):
        f = FAILURES.get(fail).samples("stacked-mnist", 26_000, data_root=str(MNIST_ROOT))
        mf = evaluate_samples(f, None, "stacked-mnist", ["stacked_readable"], data_root=str(MNIST_ROOT))["metrics"]
        assert mf["readable_triples26k"] == 0.0 and mf["modes_readable26k"] == 0.0, fail


def test_stacked_readable_needs_every_channel(monkeypatch):
    """A triple with one unreadable channel is not readable: channel masks combined with all(), not any()."""
    import benchmark.evaluation.metrics.modes as modes

    pattern = torch.tensor([True, True, False, True, True, True])  # sample 0: one channel out; sample 1: all in
    monkeypatch.setattr(modes, "readable", lambda *a, **k: pattern)

    class Stub:
        gen_outputs = (torch.zeros(6, 4), torch.eye(10)[[1, 2, 3, 4, 5, 6]].float())
        gen_outputs_second = gen_outputs
        readable_taus = (0.5, 0.5)

        def cloud(self, _):
            return None

    monkeypatch.setattr(modes, "Context", lambda *a, **k: Stub())
    ctx = type("C", (), {})()
    ctx.x_full = torch.zeros(2, 3, 28, 28)
    ctx.opts = modes.Options("stacked-mnist")
    ctx.shared = lambda key, f: f()
    r = modes._channels_readable(ctx)
    assert r == {"share": 0.5, "modes": 1}


def test_stacked_modes_of_collapsed_label_sets():
    from benchmark.evaluation.coverage import stacked_modes

    g = torch.Generator().manual_seed(0)
    digits = torch.randint(10, (26_000, 3), generator=g)
    full = stacked_modes(digits)
    assert full["modes"] == 1000 and full["kl"] < 0.05
    digits[:, 0] = 4  # the first channel always the same digit: at most 100 modes
    half = stacked_modes(digits)
    assert half["modes"] == 100
    assert half["kl"] == pytest.approx(math.log(10), abs=0.05)


def test_stacked_mnist_needs_its_protocol_sample_count():
    with pytest.raises(UserError, match="26000"):
        evaluate_samples(torch.zeros(100, 3, 28, 28), None, "stacked-mnist")


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_true_mixture_captures_every_mode_with_high_quality(name):
    ds = load_dataset(name)
    x, _ = ds.sample(2500, torch.Generator().manual_seed(0))
    m = evaluate_samples(x, None, name)["metrics"]
    k = ds.means.shape[0]
    assert m["modes2500"] == k
    expected_hq = 100 * (1 - math.exp(-9 / 2))  # P(|N(0, I2)| < 3)
    assert m["hq2500"] == pytest.approx(expected_hq, abs=1.0)
    assert m["rkl2500"] < 0.05


def test_collapsed_ring_has_one_mode_and_rkl_log8():
    ds = load_dataset("ring8")
    x = ds.means[2].expand(2500, 2) + 0.001 * torch.randn(2500, 2, generator=torch.Generator().manual_seed(0))
    m = evaluate_samples(x, None, "ring8")["metrics"]
    assert m["modes2500"] == 1 and m["hq2500"] == 100
    assert m["rkl2500"] == pytest.approx(math.log(8))


def test_points_between_modes_are_low_quality():
    ds = load_dataset("ring8")
    mid = (ds.means[0] + ds.means[1]) / 2  # far (> 3 std) from every mean
    r = mixture_metrics(mid.expand(2500, 2), ds.means, ds.std)
    assert r["modes"] == 0 and r["hq"] == 0 and r["rkl"] == math.inf


def test_mixture_metric_names_and_too_few_points():
    with pytest.raises(UserError, match="2500"):
        evaluate_samples(torch.zeros(100, 2), None, "ring8")
    with pytest.raises(UserError, match="does not apply"):
        evaluate_samples(torch.zeros(2500, 2), None, "ring8", ["fid"])

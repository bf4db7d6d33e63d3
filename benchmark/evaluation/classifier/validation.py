"""Validating an evaluator: accuracy, the corruption table (clean and each validation corruption, and uniform
noise read with confidence) and the readable threshold tau."""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor, nn

from benchmark.evaluation.classifier.inference import classify
from benchmark.evaluation.corruptions import CORRUPTIONS, VALIDATION_SEED, corrupt, uniform_noise


def max_share_ratio(pred: Tensor, y: Tensor, num_classes: int) -> float:
    """max over classes of (predicted share / true share): 1 for a perfect reader, > 1 for a magnet class."""
    p = torch.bincount(pred.cpu(), minlength=num_classes).double()
    t = torch.bincount(y.cpu(), minlength=num_classes).double()
    m = t > 0
    return float((p[m] / t[m]).max())


@torch.no_grad()
def corruption_table(
    model: nn.Module, x: Tensor, y: Tensor, seed: int = VALIDATION_SEED, num_uniform: int = 10000, conf: float = 0.9
) -> Dict[str, Dict[str, float]]:
    """{condition: {accuracy, max_share_ratio}} for clean and each validation corruption of (x, y), plus
    {'uniform': {confident_share}}: the share of ``num_uniform`` uniform-noise images read with max prob >= conf.
    Deterministic given ``seed``."""
    model.eval()
    k = model.arch.num_classes
    out: Dict[str, Dict[str, float]] = {}
    for name in ("clean", *CORRUPTIONS):
        _, logits = classify(model, corrupt(x.cpu(), name, seed))
        pred = logits.argmax(1)
        out[name] = {
            "accuracy": float((pred == y.cpu()).double().mean()),
            "max_share_ratio": max_share_ratio(pred, y, k),
        }
    noise = uniform_noise(num_uniform, tuple(x.shape[1:]), torch.Generator().manual_seed(seed + 1))
    _, logits = classify(model, noise)
    out["uniform"] = {"confident_share": float((logits.softmax(1).max(1).values >= conf).double().mean())}
    return out


@torch.no_grad()
def clean_confidence_quantile(model: nn.Module, x: Tensor, q: float = 0.01) -> float:
    """The q-quantile of the max class probability on clean images ``x`` (the readable threshold tau)."""
    _, logits = classify(model, x)
    return float(torch.quantile(logits.softmax(1).max(1).values.double(), q))


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    _, logits = classify(model, x)
    return float((logits.argmax(1) == y.cpu()).float().mean())

"""Pairwise diversity: LPIPS where its backbone exists, else a named stand-in (higher = more diverse).

Backbones, in order of preference:

* ``lpips-alex``: the lpips package's LPIPS v0.1 (AlexNet trunk + its learned linear heads), used when
  torchvision's ImageNet AlexNet weights (``alexnet-owt-7be5be79.pth``) are in torch's hub cache.
  Images are repeated to 3 channels and resized to 64 x 64 (AlexNet's stride would leave nothing of 28 x 28).
* ``feat-classifier-<dataset>``: otherwise, the same formula without learned heads over the pinned
  classifier's three conv stages: unit-normalise each feature vector over channels, square the
  difference, sum over channels, average over space, sum over layers (Zhang et al. 2018, "lin=False").
  That is not LPIPS (no ImageNet trunk, no calibrated heads), so its scores are named ``feat_div*``,
  never ``lpips*`` (``score_prefix``), and one line on stderr says that AlexNet's weights are absent.

Every result names its backbone. The figure for generated samples is reported beside the same figure for
an equal number of real samples; for conditional models also within each requested class.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.evaluation.classifier import load_classifier

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
DEFAULT_PAIRS = 1000

Distance = Callable[[Tensor, Tensor], Tensor]


def alexnet_weights_present() -> bool:
    return (Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE).is_file()


def _normalize(f: Tensor, eps: float = 1e-10) -> Tensor:
    return f / (f.pow(2).sum(1, keepdim=True).sqrt() + eps)


def classifier_distance(dataset: str, device: str | torch.device = "cpu") -> Distance:
    """LPIPS (no learned heads) over the pinned classifier's conv stages; per channel for stacked sets."""

    model, _ = load_classifier(dataset, device=device)

    @torch.no_grad()
    def dist(a: Tensor, b: Tensor) -> Tensor:
        n, c = a.shape[:2]
        if c != 1:  # stacked: each channel on its own, averaged
            a = a.reshape(n * c, 1, *a.shape[2:])
            b = b.reshape(n * c, 1, *b.shape[2:])
        fa, fb = model.conv_features(a.float()), model.conv_features(b.float())
        d = sum(((_normalize(x) - _normalize(y)) ** 2).sum(1).mean((1, 2)) for x, y in zip(fa, fb))
        return d.reshape(n, c).mean(1) if c != 1 else d

    return dist


def alex_distance(device: str | torch.device = "cpu") -> Distance:
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = lpips.LPIPS(net="alex", verbose=False).to(device).eval()
    net.requires_grad_(False)

    @torch.no_grad()
    def dist(a: Tensor, b: Tensor) -> Tensor:
        def prep(x: Tensor) -> Tensor:
            x = x.float()
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            return F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)

        return net(prep(a), prep(b)).reshape(-1)

    return dist


def lpips_backbone(dataset: str) -> str:
    """The name of the backbone ``lpips_distance`` would use here (without building it)."""
    return "lpips-alex" if alexnet_weights_present() else f"feat-classifier-{dataset}"


def score_prefix(backbone: str) -> str:
    """'lpips' for real LPIPS (the AlexNet backbone), 'feat_div' for the classifier-feature stand-in."""
    return "lpips" if backbone == "lpips-alex" else "feat_div"


_SAID: Dict[str, bool] = {}


SAID_ENV = "GANBENCH_LPIPS_SAID"  # inherited by a study's worker processes: the line is said once per study


def _say_once(msg: str) -> None:
    key = hashlib.sha256(msg.encode()).hexdigest()[:16]
    if not _SAID.get(msg) and key not in os.environ.get(SAID_ENV, "").split(","):
        _SAID[msg] = True
        os.environ[SAID_ENV] = ",".join(x for x in (os.environ.get(SAID_ENV, ""), key) if x)
        print(msg, file=sys.stderr)


def say_backbone(dataset: str) -> None:
    """Say now (once) which backbone LPIPS will use for ``dataset``: a study calls this before it starts its
    workers, which inherit that it was said."""
    if not alexnet_weights_present():
        _say_once(_absent(dataset))


def _absent(dataset: str) -> str:
    return (
        f"LPIPS: AlexNet weights ({ALEXNET_FILE}) absent from {torch.hub.get_dir()}/checkpoints; "
        f"diversity is feat_div over the '{dataset}' evaluator's features, not LPIPS"
    )


def lpips_distance(dataset: str, device: str | torch.device = "cpu") -> Tuple[Distance, str]:
    """(distance function on float [-1, 1] image batches, backbone name)."""
    if alexnet_weights_present():
        try:
            return alex_distance(device), "lpips-alex"
        except Exception as e:  # a corrupt/partial weights file: fall back, the name says which was used
            _say_once(
                f"LPIPS: AlexNet weights in {torch.hub.get_dir()} do not load ({type(e).__name__}); "
                f"diversity is feat_div over the '{dataset}' evaluator's features, not LPIPS"
            )
    else:
        _say_once(_absent(dataset))
    return classifier_distance(dataset, device), f"feat-classifier-{dataset}"


def mean_pair_distance(
    x: Tensor,
    dist: Distance,
    num_pairs: int = DEFAULT_PAIRS,
    seed: int = 0,
    batch: int = 250,
    device: str | torch.device = "cpu",
) -> float:
    """Mean distance over ``num_pairs`` random pairs (i != j) of ``x``; nan when fewer than 2 samples."""
    n = len(x)
    if n < 2:
        return float("nan")
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(n, (num_pairs,), generator=g)
    j = (i + torch.randint(1, n, (num_pairs,), generator=g)) % n
    total = 0.0
    for s in range(0, num_pairs, batch):
        a = x[i[s : s + batch]].to(device)
        b = x[j[s : s + batch]].to(device)
        total += float(dist(a, b).double().sum())
    return total / num_pairs


def diversity(
    x: Tensor,
    dist: Distance,
    num_pairs: int = DEFAULT_PAIRS,
    seed: int = 0,
    labels: Optional[Tensor] = None,
    num_classes: int = 0,
    device: str | torch.device = "cpu",
) -> Dict[str, object]:
    """Mean pairwise LPIPS of ``x``; with ``labels``, also per class (pairs drawn within each class)."""
    out: Dict[str, object] = {"mean": mean_pair_distance(x, dist, num_pairs, seed, device=device)}
    if labels is not None:
        per = []
        for k in range(num_classes):
            xk = x[labels.cpu() == k]
            per.append(
                mean_pair_distance(xk, dist, max(num_pairs // max(num_classes, 1), 50), seed + 1 + k, device=device)
            )
        valid = [v for v in per if v == v]
        out["per_class"] = per
        out["class_mean"] = sum(valid) / len(valid) if valid else float("nan")
    return out

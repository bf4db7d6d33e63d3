"""One pass of an evaluator over a sample set: every metric that reads features or logits reads this pass.

The images an evaluator reads are the samples as uint8 [0, 255] (``to_uint8``: what a saved PNG or a uint8
sample file holds, and torch-fidelity's convention), mapped back to [-1, 1] (x / 127.5 - 1): so a run's
scores and the scores of its samples saved as uint8 are the same, and every metric of a set reads the same
images. A dataset's own images are on that grid already (the round trip is exact).

* ``classifier_pass``: the pinned classifier (or the second evaluator): ``features`` = the conv trunk's
  flattened output (FID, KID, precision/recall, the density/coverage-style metrics), ``logits`` (IS, class
  coverage, the readable share). Stacked-MNIST: each channel through the MNIST classifier, features the three
  concatenated, logits the 1000 joint log-probabilities log p(a) + log p(b) + log p(c).
* ``inception_pass``: torch-fidelity's Inception-v3 (``2048`` features, ``logits_unbiased``), 1-channel images
  repeated to RGB. Only this imports torch_fidelity, whose package import pulls in torchvision's models (6 s
  of a loaded 2-core machine, ``python -X importtime``); the classifier path never pays it.

Batch-size independent: features of a set are bitwise those of any batching of it (checked on MNIST).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import torch
from torch import Tensor, nn
from tqdm import tqdm

BATCH = 250  # images per forward: the least CPU time measured (1000: 1.8x more, most of it page faults)


@dataclass(frozen=True)
class FeatureSet:
    """An evaluator's reading of a sample set, row i for sample i."""

    features: Tensor  # N x D float32
    logits: Tensor  # N x K float32

    def __len__(self) -> int:
        return len(self.features)

    def rows(self, mask: Tensor) -> "FeatureSet":
        return FeatureSet(self.features[mask], self.logits[mask])


class _Counter:
    """How many images each classifier has read in this process, by extractor name (tests check cache hits)."""

    images: Dict[str, int] = {}


def images_read(name: str) -> int:
    return _Counter.images.get(name, 0)


def to_uint8(x: Tensor) -> Tensor:
    """float [-1, 1] -> uint8 [0, 255] (round to nearest; exact inverse of the datasets' x / 127.5 - 1)."""
    if x.dtype == torch.uint8:
        return x
    return ((x.float() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def read_batch(model: nn.Module, x: Tensor, stacked: bool, name: str) -> Tuple[Tensor, Tensor]:
    """(features, logits) of one batch of uint8 (or [-1, 1] float) images, counted under ``name``."""
    if x.dtype == torch.uint8:
        x = x.float().div_(127.5).sub_(1.0)
    elif x.is_floating_point():
        x = x.float()  # already [-1, 1]
    else:
        raise ValueError(f"expected uint8 or float images, got {x.dtype}")
    n = x.shape[0]
    _Counter.images[name] = _Counter.images.get(name, 0) + n
    if stacked:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"stacked-mnist extractor expects N x 3 x H x W, got {tuple(x.shape)}")
        xs = x.reshape(n * 3, 1, *x.shape[2:]).contiguous(memory_format=torch.channels_last)
        f, logits = model.features_and_logits(xs)
        f = f.reshape(n, -1)
        lp = logits.log_softmax(1).reshape(n, 3, -1)
        k = lp.shape[-1]
        logits = (lp[:, 0, :, None, None] + lp[:, 1, None, :, None] + lp[:, 2, None, None, :]).reshape(n, k**3)
        return f, logits
    return model.features_and_logits(x.contiguous(memory_format=torch.channels_last))


def _batched(
    read: Callable[[Tensor], Tuple[Tensor, Tensor]], x: Tensor, progress: bool, desc: str, batch: int
) -> FeatureSet:
    u8 = to_uint8(x)
    feats, logits = [], []
    with torch.no_grad(), tqdm(total=len(u8), disable=not progress, desc=desc, unit="img", leave=False) as bar:
        for i in range(0, len(u8), batch):
            f, lg = read(u8[i : i + batch])
            feats.append(f.float().cpu())
            logits.append(lg.float().cpu())
            bar.update(min(batch, len(u8) - i))
    return FeatureSet(torch.cat(feats), torch.cat(logits))


def classifier_pass(
    model: nn.Module, x: Tensor, stacked: bool, name: str, progress: bool = False, batch: int = BATCH
) -> FeatureSet:
    """The classifier's one pass over ``x`` (float [-1, 1] or uint8), read as uint8 images."""
    dev = next(model.parameters()).device
    return _batched(lambda b: read_batch(model, b.to(dev), stacked, name), x, progress, f"features ({name})", batch)


def inception_pass(
    x: Tensor, weights: str, device: torch.device, progress: bool = False, batch: int = 100
) -> FeatureSet:
    """torch-fidelity's Inception-v3 over ``x`` (repeated to RGB): features '2048', logits 'logits_unbiased'."""
    from torch_fidelity.utils import create_feature_extractor  # imports torchvision: see the module docstring

    fe = create_feature_extractor(
        "inception-v3-compat",
        ["2048", "logits_unbiased"],
        cuda=device.type == "cuda",
        feature_extractor_weights_path=weights,
        verbose=False,
    )

    def read(b: Tensor) -> Tuple[Tensor, Tensor]:
        if b.shape[1] != 3:
            b = b.expand(-1, 3, -1, -1).contiguous()
        return fe(b.to(device))

    return _batched(read, x, progress, "features (inception-v3-compat)", batch)

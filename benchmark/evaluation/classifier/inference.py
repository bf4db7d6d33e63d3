"""Reading images with an evaluator: features and logits of a batch-wise pass."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn
from tqdm import tqdm


@torch.no_grad()
def classify(
    model: nn.Module, x: Tensor, batch: int = 1000, progress: bool = False, desc: str = "classifying"
) -> Tuple[Tensor, Tensor]:
    """(features N x D, logits N x K) of float images in [-1, 1]; runs on the model's device."""
    dev = next(model.parameters()).device
    feats, logits = [], []
    with tqdm(total=len(x), disable=not progress, desc=desc, unit="img", leave=False) as bar:
        for i in range(0, len(x), batch):
            xb = x[i : i + batch].to(dev, torch.float32).contiguous(memory_format=torch.channels_last)
            f, lg = model.features_and_logits(xb)
            feats.append(f.cpu())
            logits.append(lg.cpu())
            bar.update(min(batch, len(x) - i))
    if not feats:
        return torch.empty(0, model.out_dim), torch.empty(0, model.arch.num_classes)
    return torch.cat(feats), torch.cat(logits)

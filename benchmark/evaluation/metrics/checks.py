"""Checks before any computation: a sample set's shape, dtype, range and labels; which metrics apply to a
dataset; how many samples a metric set needs."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from benchmark.data import dataset_info
from benchmark.errors import UserError
from benchmark.evaluation.metrics.registry import (
    METRICS,
    Metric,
    default_metrics,
    expand_default,
    family,
    parse_metrics,
)


def check_samples(x: Any, y: Any, dataset: str, what: str = "samples") -> Tuple[Tensor, Optional[Tensor]]:
    """Shape, dtype, range and label checks of a sample set; returns (float x in [-1, 1], int64 y or None).

    uint8 images are read as [0, 255]; float images must lie in [-1, 1] (points: any finite value).
    Images may be N x H x W for 1-channel sets.
    """

    shape, num_classes, kind = dataset_info(dataset)
    if not isinstance(x, Tensor):
        raise UserError(f"{what}: images must be a tensor/array, got {type(x).__name__}")
    if x.dtype == torch.bool or not (x.dtype == torch.uint8 or x.is_floating_point()):
        raise UserError(
            f"{what}: images have dtype {str(x.dtype).replace('torch.', '')}; "
            f"give uint8 in [0, 255] or float in [-1, 1]"
        )
    if kind == "image" and x.dim() == 3 and shape[0] == 1:
        x = x.unsqueeze(1)
    if tuple(x.shape[1:]) != tuple(shape) or x.shape[0] == 0:
        want = (
            "N x "
            + " x ".join(map(str, shape))
            + (f" (or N x {shape[1]} x {shape[2]})" if kind == "image" and shape[0] == 1 else "")
        )
        raise UserError(f"{what}: images have shape {tuple(x.shape)}, dataset '{dataset}' needs {want}")
    x = _check_values(x, kind, dataset, what)
    if y is not None:
        y = _check_labels(y, len(x), num_classes, dataset, what)
    return x, y


def _check_values(x: Tensor, kind: str, dataset: str, what: str) -> Tensor:
    if x.dtype == torch.uint8:
        if kind != "image":
            raise UserError(f"{what}: points of '{dataset}' must be floats, got uint8")
        return x.float().div_(127.5).sub_(1.0)
    x = x.float()
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
        raise UserError(f"{what}: {bad} image(s) hold NaN or inf values; drop or fix them")
    if kind == "image":
        lo, hi = float(x.min()), float(x.max())
        if lo < -1 - 1e-3 or hi > 1 + 1e-3:
            raise UserError(
                f"{what}: float images span [{lo:.3g}, {hi:.3g}], outside [-1, 1]; give floats in "
                "[-1, 1] or uint8 in [0, 255]"
            )
        if lo < -1 or hi > 1:  # rounding noise only: clamp a copy, never the caller's tensor
            x = x.clamp(-1, 1)
    return x


def _check_labels(y: Any, n: int, num_classes: int, dataset: str, what: str) -> Tensor:
    if not isinstance(y, Tensor) or y.dim() != 1 or len(y) != n:
        got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise UserError(f"{what}: labels have shape {got}, need ({n},) to match the images")
    if y.is_floating_point():
        if not bool(torch.isfinite(y).all()) or not bool((y == y.round()).all()):
            raise UserError(f"{what}: labels must be integers")
    elif y.dtype == torch.bool:
        raise UserError(f"{what}: labels must be integers, got bool")
    y = y.long()
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise UserError(
            f"{what}: labels span [{int(y.min())}, {int(y.max())}], dataset '{dataset}' has "
            f"classes 0..{num_classes - 1}"
        )
    return y


def resolve_metrics(dataset: str, metrics: Optional[Sequence[str]], conditional: bool, run: bool = False) -> List[str]:
    """Defaults for the dataset, or the given names checked against it (``default`` among them: the defaults,
    in their place: ``[default, dc]`` is a conditional arm's defaults with its label metrics, then dc)."""
    if metrics is None:
        return default_metrics(dataset, conditional, run)
    fam = family(dataset)
    out = expand_default(parse_metrics(list(metrics)) or [], dataset, conditional, run)
    for m in out:
        spec: Metric = METRICS.get(m)
        if fam not in spec.families:
            valid = [
                n for n in METRICS.names() if fam in METRICS.get(n).families and (run or not METRICS.get(n).needs_run)
            ]
            raise UserError(f"metric '{m}' does not apply to dataset '{dataset}'; valid there: {', '.join(valid)}")
        if spec.needs_labels and not conditional:
            raise UserError(f"metric '{m}' needs class labels (a conditional generator, or a 'labels' array)")
        if spec.needs_run and not run:
            raise UserError(f"metric '{m}' reads a run's training log; use it with 'ganbench evaluate RUN_DIR'")
    return out


def samples_needed(dataset: str, metrics: Sequence[str], num_samples: int) -> int:
    """How many samples to generate so every metric gets its protocol's count."""
    fam = family(dataset)
    n = num_samples
    for m in metrics:
        n = max(n, METRICS.get(m).protocol_n.get(fam, 0))
    return n

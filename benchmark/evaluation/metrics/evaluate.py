"""The entry point: ``evaluate_samples`` scores one sample set and returns its record; ``score`` runs metrics on
a context and refuses a score no declaration writes."""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from benchmark.data import check_split
from benchmark.errors import UserError
from benchmark.evaluation.fidelity import torch_fidelity_version
from benchmark.evaluation.metrics.checks import check_samples, resolve_metrics
from benchmark.evaluation.metrics.context import Context, Options
from benchmark.evaluation.metrics.identity import evaluator_info
from benchmark.evaluation.metrics.registry import METRICS, Details, Metric, Scores
from benchmark.evaluation.reference import SUBSET
from benchmark.io import git_commit


def score(ctx: Context, metrics: Sequence[str]) -> Tuple[Scores, Details]:
    scores: Scores = {}
    details: Details = {}
    for m in metrics:
        spec: Metric = METRICS.get(m)
        s, d = spec.fn(ctx)
        undeclared = [k for k in s if not any(x.protocol(k) for x in spec.scores)]
        if undeclared:  # a programming error: every score has a declared direction and protocol
            raise RuntimeError(
                f"metric '{m}' wrote undeclared score(s) {', '.join(undeclared)}; declare them in "
                f"its @metric(scores=...) in benchmark/evaluation/metrics/"
            )
        scores.update({k: float(v) for k, v in s.items()})
        details.update(d)
    return scores, details


def _check_counts(ctx: Context, names: Sequence[str]) -> None:
    """Every metric gets at least its minimum: protocol metrics from the whole set, the others from the first n."""
    for m in names:
        spec: Metric = METRICS.get(m)
        need = spec.min_n(ctx)
        have = len(ctx.x_full) if ctx.family in spec.protocol_n else ctx.n
        if have < need:
            raise UserError(
                f"metric '{m}' needs at least {need} samples for dataset '{ctx.dataset}', got {have}; "
                f"give more samples or leave '{m}' out"
            )


def evaluate_samples(
    x: Tensor,
    y: Optional[Tensor],
    dataset: str,
    metrics: Optional[Sequence[str]] = None,
    split: str = "test",
    data_root: Optional[str] = None,
    *,
    feature_extractor: str = "classifier",
    device: str | torch.device = "cpu",
    cache_root: Optional[str | Path] = None,
    progress: bool = False,
    seed: int = 0,
    tsne_path: Optional[str | Path] = None,
    run_dir: Optional[str | Path] = None,
    step: Optional[int] = None,
    num_samples: Optional[int] = None,
) -> Dict[str, Any]:
    """Score one sample set; returns a record::

        {"metrics": {name: float}, "details": {...}, "evaluator": {name, sha256, classifier_sha256,
         lpips_backbone}, "metric_set": [...], "num_samples", "dataset", "reference": {dataset, split, subset},
         "git_commit", "torch_version", "torch_fidelity_version", "time", "seconds"}

    ``x``: float in [-1, 1] (or uint8 [0, 255]) N x C x H x W (N x 2 for point sets); ``y``: int labels of a
    conditional generator, or None. ``num_samples``: score only the first ones (protocol metrics such as
    stacked-mnist modes still read their fixed count from the whole set). ``reference.subset`` names the rule that
    picks the real rows (``reference.SUBSET``: a seeded random subset below the split's size). Every check runs
    before any computation.
    """

    t0 = time.time()
    check_split(split)
    x, y = check_samples(x, y, dataset)
    names = resolve_metrics(dataset, metrics, conditional=y is not None, run=run_dir is not None)
    if num_samples is not None and num_samples < 1:
        raise UserError(f"num_samples must be >= 1, got {num_samples}")
    opts = Options(
        dataset=dataset,
        split=split,
        data_root=data_root,
        extractor=feature_extractor,
        device=device,
        cache_root=cache_root,
        progress=progress,
        seed=seed,
        tsne_path=tsne_path,
        run_dir=run_dir,
        step=step,
        num_samples=num_samples,
    )
    ctx = Context(x, y, opts)  # computes nothing yet
    _check_counts(ctx, names)
    if "tsne" in names and tsne_path is None:
        raise UserError("metric 'tsne' writes a PNG: give its path (tsne_path / --tsne PNG)")
    ev = evaluator_info(dataset, feature_extractor, names)
    scores, details = score(ctx, names)
    if ev["lpips_backbone"] is not None and "lpips_backbone" in details:
        ev["lpips_backbone"] = details.pop("lpips_backbone")
    return {
        "metrics": scores,
        "details": details,
        "evaluator": ev,
        "metric_set": sorted(names),
        "num_samples": ctx.n,
        "dataset": dataset,
        "reference": {"dataset": dataset, "split": split, "subset": SUBSET},
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "torch_fidelity_version": torch_fidelity_version(),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - t0, 2),
    }

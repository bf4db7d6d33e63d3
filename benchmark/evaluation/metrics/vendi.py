"""The Vendi family (Friedman & Dieng 2023): the effective number of distinct samples, cosine kernel on the one
feature pass (manifold.py's estimator).

  vendi   vendi10k (+ vendi_class10k with labels)   (opt-in: ``--metrics vendi``)

``vendi<N>`` reads the feature extractor's pass over the samples (``ctx.features()``); ``vendi_class<N>`` is
the mean of the Vendi scores within each requested class of a conditional generator (classes with fewer
than 2 samples left out; the per-class scores in details). No real data enters: no split.
"""

from __future__ import annotations

import math
from typing import Tuple

from benchmark.evaluation.manifold import vendi, vendi_by_class
from benchmark.evaluation.metrics.context import Context
from benchmark.evaluation.metrics.registry import Details, Scores, metric
from benchmark.evaluation.scores import higher

MIN_SAMPLES = 2


@metric(
    "vendi",
    ("image", "stacked"),
    fidelity=("vendi",),
    min_n=lambda ctx: MIN_SAMPLES,
    help="Vendi score, cosine kernel on the evaluator's features (+ within requested class)",
    scores=(
        higher("vendi", "Vendi score", unit="samples"),
        higher("vendi_class", "Vendi score within a class", unit="samples"),
    ),
)
def _vendi(ctx: Context) -> Tuple[Scores, Details]:
    f = ctx.features().features
    scores: Scores = {ctx.name("vendi"): vendi(f)}
    details: Details = {}
    if ctx.y is not None:
        per = vendi_by_class(f, ctx.y.cpu(), ctx.num_classes)
        valid = [v for v in per if not math.isnan(v)]
        scores[ctx.name("vendi_class")] = sum(valid) / len(valid) if valid else math.nan
        details[f"vendi_per_class{ctx.t}"] = per
    return scores, details

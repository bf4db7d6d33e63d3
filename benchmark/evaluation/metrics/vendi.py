"""The Vendi family (Friedman & Dieng 2023): the effective number of distinct samples, cosine kernel on the one
feature pass (manifold.py's estimator).

  vendi   vendi10k, vendi_pred10k, vendi_pred_real10k_test (+ vendi_class10k with labels)
          (opt-in: ``--metrics vendi``)

``vendi<N>`` reads the feature extractor's pass over the samples (``ctx.features()``); ``vendi_class<N>`` is
the mean of the Vendi scores within each requested class of a conditional generator (classes with fewer
than 2 samples left out; the per-class scores in details). ``vendi_pred<N>`` is the same mean within the class
the evaluator predicts (its argmax), for any generator, so conditional and unconditional models are compared
within class on one footing; ``vendi_pred_real<N>_<split>`` is that of the real reference (as many real images
of the split, read by the same evaluator): the level a generator without within-class collapse reaches. The
mean is over the classes present: a generator of one class is judged within that class (classes covered and
class KL say how many it has). Images only: stacked-mnist's modes are triples of channels.
"""

from __future__ import annotations

import math
from typing import List, Tuple

from benchmark.evaluation.manifold import vendi, vendi_by_class
from benchmark.evaluation.metrics.context import Context
from benchmark.evaluation.metrics.registry import Details, Scores, metric
from benchmark.evaluation.scores import higher, neutral

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
        higher("vendi_pred", "Vendi score within the predicted class", unit="samples"),
        neutral("vendi_pred_real", "Vendi score of real data within the predicted class", split=True, unit="samples"),
    ),
)
def _vendi(ctx: Context) -> Tuple[Scores, Details]:
    read = ctx.features()
    f = read.features
    scores: Scores = {ctx.name("vendi"): vendi(f)}
    details: Details = {}
    if ctx.family == "image":  # stacked-mnist's modes are triples of channels, not the evaluator's classes
        ref = ctx.reference()
        pred = _within(f, read.logits, ctx.num_classes)
        scores[ctx.name("vendi_pred")] = _mean(pred)
        scores[ctx.name("vendi_pred_real")] = _mean(_within(ref.read.features, ref.read.logits, ctx.num_classes))
        details[f"vendi_per_predicted_class{ctx.t}"] = pred
    if ctx.y is not None:
        per = vendi_by_class(f, ctx.y.cpu(), ctx.num_classes)
        scores[ctx.name("vendi_class")] = _mean(per)
        details[f"vendi_per_class{ctx.t}"] = per
    return scores, details


def _within(features, logits, num_classes: int) -> List[float]:
    """The Vendi score within each class the evaluator predicts (its logits' argmax)."""
    return vendi_by_class(features, logits.argmax(1).cpu(), num_classes)


def _mean(per: List[float]) -> float:
    """Mean over the classes with a score (NaN: fewer than 2 samples)."""
    valid = [v for v in per if not math.isnan(v)]
    return sum(valid) / len(valid) if valid else math.nan

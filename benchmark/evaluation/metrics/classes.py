"""The class family: coverage of the classes by the evaluator's labels, and a conditional generator's labels.

  coverage     classes_covered10k, class_kl10k, class_entropy10k (a sample's class: the mean of the two
               evaluators' class probabilities, coverage.class_probs), mode_score10k (the primary's p(y|x)); the
               two evaluators' agreement and TV, the unreadable share and classes covered by readable samples
  conditional  label_agreement10k, intra_fid10k_test   (needs labels; FID of each requested class against
               all real images of that class in the split, averaged over classes)

Both read the one pass of the classifier (and of the second evaluator) over the samples (context.py).

Class-distribution figures compare with the class shares of the *training* labels (what the GAN was trained
to match; Mode Score's p*(y)), so they carry no split.
"""

from __future__ import annotations

import math
from typing import List, Tuple

from benchmark.evaluation import estimators as E
from benchmark.evaluation.coverage import (
    CLASS_READING,
    CLOUD_QUANTILE,
    CLOUD_RULE,
    CLOUD_SHRINK,
    CLOUD_SPLIT,
    EVALUATOR_DEPENDENT,
    TV_BOUND,
    class_probs,
    coverage,
    cross_check,
    label_agreement,
)
from benchmark.evaluation.metrics.context import Context
from benchmark.evaluation.metrics.registry import Details, Scores, metric
from benchmark.evaluation.scores import CLASSES, higher, lower, neutral

COVERAGE_THRESHOLD = 0.1


def _image_min(ctx: Context) -> int:
    return 10 * ctx.num_classes if ctx.family == "image" else 10


@metric(
    "coverage",
    ("image",),
    min_n=_image_min,
    help="class coverage, class KL, entropy, Mode Score; two-evaluator agreement, TV, unreadable share",
    scores=(
        higher("classes_covered", "classes covered", unit="classes", bound=CLASSES),
        lower("class_kl", "class KL"),
        higher("class_entropy", "class entropy", unit="nats"),
        higher("mode_score", "Mode Score"),
        neutral("evaluator_agreement", "evaluators' agreement"),
        neutral("evaluator_tv", "evaluators' class-histogram TV"),
        lower("unreadable_share", "share read by neither evaluator", bound=0.0),
        higher("classes_covered_readable", "classes covered (readable samples)", unit="classes", bound=CLASSES),
    ),
)
def _coverage(ctx: Context) -> Tuple[Scores, Details]:
    feats, logits = ctx.gen_outputs
    _, logits2 = ctx.gen_outputs_second
    probs = class_probs(logits, logits2)  # the class reading: not the primary alone (its class-3 magnet)
    pred = probs.argmax(1)
    # Mode Score keeps the primary's p(y|x), as IS does: the second's label smoothing would cap it (9.7 -> 7.4 on
    # real MNIST test digits)
    c = coverage(pred, logits, ctx.train_prior, COVERAGE_THRESHOLD)
    tau, tau2 = ctx.readable_taus
    cloud = (feats, ctx.cloud("classifier"))
    x = cross_check(logits, logits2, ctx.train_prior, tau, tau2, COVERAGE_THRESHOLD, cloud, labels=pred)
    t = ctx.t
    details: Details = {
        f"class_hist{t}": c["hist"],
        "coverage_threshold": COVERAGE_THRESHOLD,
        f"class_hist_second{t}": x["hist_second"],
        "class_reading": CLASS_READING,
        "readable_tau": [tau, tau2],
        "readable_rule": {"rule": CLOUD_RULE, "split": CLOUD_SPLIT, "shrink": CLOUD_SHRINK, "quantile": CLOUD_QUANTILE},
        "evaluator_tv_bound": TV_BOUND,
        "evaluator_dependent": x["evaluator_dependent"],
    }
    if x["evaluator_dependent"]:
        details["evaluator_warning"] = EVALUATOR_DEPENDENT
    return (
        {
            f"classes_covered{t}": float(c["covered"]),
            f"class_kl{t}": c["kl"],
            f"class_entropy{t}": c["entropy"],
            f"mode_score{t}": c["mode_score"],
            f"evaluator_agreement{t}": x["agreement"],
            f"evaluator_tv{t}": x["tv"],
            f"unreadable_share{t}": x["unreadable_share"],
            f"classes_covered_readable{t}": float(x["covered_readable"]),
        },
        details,
    )


@metric(
    "conditional",
    ("image",),
    needs_labels=True,
    min_n=lambda ctx: 100 * ctx.num_classes,
    help="label agreement and intra-class FID of a conditional generator",
    scores=(
        higher("label_agreement", "label agreement", bound=1.0),
        higher("label_agreement_second", "label agreement by the second evaluator", bound=1.0),
        lower("intra_fid", "intra-class FID", split=True),
    ),
)
def _conditional(ctx: Context) -> Tuple[Scores, Details]:
    assert ctx.y is not None
    _, logits = ctx.gen_outputs
    agree = label_agreement(logits.argmax(1), ctx.y)
    _, logits2 = ctx.gen_outputs_second  # the independent reader: a label the primary alone follows is not enough
    agree2 = label_agreement(logits2.argmax(1), ctx.y)
    gen, y = ctx.features().features, ctx.y.cpu()
    real = ctx.reference(n=ctx.split_size())  # every real image of each class in the split
    per: List[float] = []
    for k in range(ctx.num_classes):
        fg, fr = gen[y == k], real.read.features[real.labels == k]
        if len(fg) < 2 or len(fr) < 2:
            per.append(float("nan"))
            continue
        per.append(E.frechet_distance(E.gaussian(fg), E.gaussian(fr, with_root=True)))
    valid = [v for v in per if v == v]
    t = ctx.t
    return (
        {
            ctx.name("label_agreement"): agree,
            ctx.name("label_agreement_second"): agree2,
            ctx.name("intra_fid"): sum(valid) / len(valid) if valid else math.nan,
        },
        {f"intra_fid_per_class{t}_{ctx.split}": per},
    )

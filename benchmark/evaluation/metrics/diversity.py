"""The diversity family: mean pairwise LPIPS of the generated and of as many real samples (diversity.py).

  lpips   lpips10k, lpips_real10k_test (+ lpips_class10k with labels)

LPIPS diversity has no "better" side: real data sets the level, and noise beats it (not gated). Without
AlexNet's weights the same formula runs over the evaluator's conv features; that is not LPIPS, so its scores
are named feat_div* (diversity.py says which backbone ran, in one line, when AlexNet is absent).

Not the one feature pass of context.py: feat_div reads the classifier's conv activations at every position of
its three stages (22k floats per 28 x 28 image; 880 MB for 10,000), which that pass does not keep, and only
for the 2 x 1000 images its pairs draw (of the samples, and of as many real ones): a pass of its own over
those images, a fifth of one over 10,000.
"""

from __future__ import annotations

from typing import Tuple

from benchmark.evaluation.diversity import DEFAULT_PAIRS, diversity, lpips_distance, score_prefix
from benchmark.evaluation.metrics.context import Context, real_side
from benchmark.evaluation.metrics.registry import Details, Scores, metric
from benchmark.evaluation.scores import neutral


@metric(
    "lpips",
    ("image", "stacked"),
    min_n=lambda ctx: 2,
    help="LPIPS diversity, generated and real (feat_div* over the evaluator's features without AlexNet)",
    scores=(
        neutral("lpips", "LPIPS diversity"),
        neutral("lpips_real", "LPIPS diversity of real", split=True),
        neutral("lpips_class", "LPIPS diversity within a class"),
        neutral("feat_div", "feature diversity (not LPIPS)"),
        neutral("feat_div_real", "feature diversity of real", split=True),
        neutral("feat_div_class", "feature diversity within a class"),
    ),
)
def _lpips(ctx: Context) -> Tuple[Scores, Details]:
    dist, backbone = lpips_distance(ctx.dataset, ctx.device)
    t = ctx.t
    pre = score_prefix(backbone)
    gen = diversity(
        ctx.x,
        dist,
        DEFAULT_PAIRS,
        ctx.seed,
        labels=ctx.y,
        num_classes=ctx.num_classes if ctx.y is not None else 0,
        device=ctx.device,
    )
    x_real = ctx.real_images()[0]
    real = real_side(  # the same at every point of a trial
        "diversity",
        x_real,
        lambda: diversity(x_real, dist, DEFAULT_PAIRS, ctx.seed, device=ctx.device)["mean"],
        backbone,
        ctx.seed,
        ctx.device,
        DEFAULT_PAIRS,
    )
    scores = {f"{pre}{t}": gen["mean"], f"{pre}_real{t}_{ctx.split}": real}
    details: Details = {"lpips_backbone": backbone, f"{pre}_pairs": DEFAULT_PAIRS}
    if ctx.y is not None:
        scores[f"{pre}_class{t}"] = gen["class_mean"]
        details[f"{pre}_per_class{t}"] = gen["per_class"]
    return scores, details

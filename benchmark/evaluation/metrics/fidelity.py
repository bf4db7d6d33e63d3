"""The fidelity family: FID, KID, Inception Score and precision/recall on the evaluator's features.

  fid   fid10k_test                          Frechet distance of the features' Gaussians
  kid   kid10k_test, kid_std10k_test         KID (subsets of min(1000, N))
  is    is10k, is_std10k                     Inception Score on the evaluator's logits (10 splits)
  pr    precision10k_test, recall10k_test    precision/recall (k = 3)

All four read one torch-fidelity call per sample set (``fidelity_results``), asked for every one of them that
the evaluation scores (``Options.fidelity``).
"""

from __future__ import annotations

from typing import Dict, Tuple

from benchmark.evaluation.fidelity import fidelity_metrics
from benchmark.evaluation.metrics.context import Context
from benchmark.evaluation.metrics.registry import Details, Scores, metric
from benchmark.evaluation.scores import higher, lower, neutral

MIN_SAMPLES = 100


def fidelity_results(ctx: Context) -> Dict[str, float]:
    """torch-fidelity's results (its keys) for every fidelity metric the evaluation asks for, computed once."""

    def compute() -> Dict[str, float]:
        n_real = ctx.n_real()
        o = ctx.opts
        return fidelity_metrics(
            ctx.x,
            lambda: ctx.real_images(n_real)[0],
            n_real,
            ctx.dataset,
            ctx.split,
            o.fidelity,
            extractor=o.extractor,
            root=o.cache_root,
            device=ctx.device,
            progress=o.progress,
        )

    return ctx.shared("fidelity", compute)


@metric(
    "fid",
    ("image", "stacked"),
    fidelity=("fid",),
    min_n=lambda ctx: MIN_SAMPLES,
    help="Frechet distance",
    scores=(lower("fid", "FID", split=True),),
)
def _fid(ctx: Context) -> Tuple[Scores, Details]:
    return {ctx.name("fid"): fidelity_results(ctx)["frechet_inception_distance"]}, {}


@metric(
    "kid",
    ("image", "stacked"),
    fidelity=("kid",),
    min_n=lambda ctx: MIN_SAMPLES,
    help="kernel distance",
    scores=(lower("kid", "KID", split=True), neutral("kid_std", "KID std over subsets", split=True)),
)
def _kid(ctx: Context) -> Tuple[Scores, Details]:
    f = fidelity_results(ctx)
    return {
        ctx.name("kid"): f["kernel_inception_distance_mean"],
        ctx.name("kid_std"): f["kernel_inception_distance_std"],
    }, {}


@metric(
    "is",
    ("image", "stacked"),
    fidelity=("isc",),
    min_n=lambda ctx: MIN_SAMPLES,
    help="Inception Score",
    scores=(higher("is", "IS"), neutral("is_std", "IS std over splits")),
)
def _is(ctx: Context) -> Tuple[Scores, Details]:
    f = fidelity_results(ctx)
    return {ctx.name("is"): f["inception_score_mean"], ctx.name("is_std"): f["inception_score_std"]}, {}


@metric(
    "pr",
    ("image", "stacked"),
    fidelity=("prc",),
    min_n=lambda ctx: MIN_SAMPLES,
    help="precision and recall",
    scores=(
        higher("precision", "precision", split=True, bound=1.0),
        higher("recall", "recall", split=True, bound=1.0),
    ),
)
def _pr(ctx: Context) -> Tuple[Scores, Details]:
    f = fidelity_results(ctx)
    return {ctx.name("precision"): f["precision"], ctx.name("recall"): f["recall"]}, {}

"""The fidelity family: FID, KID, Inception Score and precision/recall on the feature extractor's reading.

  fid   fid10k_test                          Frechet distance of the features' Gaussians
  kid   kid10k_test, kid_std10k_test         KID (100 subsets of min(1000, N))
  is    is10k, is_std10k                     Inception Score on the extractor's logits (10 splits)
  pr    precision10k_test, recall10k_test    precision/recall (k = 3)

All four read the one pass of the extractor over the samples (``ctx.features()``) and the cached reference of
the split (``ctx.reference()``); the estimators are estimators.py's (torch-fidelity's, tested against it). KID
and precision/recall (and density & coverage, metrics/dc.py) read one set of distance matrices between the two
(``ctx.pairwise()``), computed once per evaluation up to 10,000 rows a side.
"""

from __future__ import annotations

from typing import Tuple

from benchmark.evaluation import estimators as E
from benchmark.evaluation.metrics.context import Context
from benchmark.evaluation.metrics.registry import Details, Scores, metric
from benchmark.evaluation.scores import higher, lower, neutral

MIN_SAMPLES = 100


@metric(
    "fid",
    ("image", "stacked"),
    fidelity=("fid",),
    min_n=lambda ctx: MIN_SAMPLES,
    help="Frechet distance",
    scores=(lower("fid", "FID", split=True),),
)
def _fid(ctx: Context) -> Tuple[Scores, Details]:
    gen = ctx.shared("fid/gaussian", lambda: E.gaussian(ctx.features().features))
    return {ctx.name("fid"): E.frechet_distance(gen, ctx.reference().fid)}, {}


@metric(
    "kid",
    ("image", "stacked"),
    fidelity=("kid",),
    min_n=lambda ctx: MIN_SAMPLES,
    help="kernel distance",
    scores=(lower("kid", "KID", split=True), neutral("kid_std", "KID std over subsets", split=True)),
)
def _kid(ctx: Context) -> Tuple[Scores, Details]:
    gen, ref = ctx.features().features, ctx.reference()
    size = min(E.KID_SUBSET_SIZE, len(gen), ref.n)
    real_sums = ref.kid_real_sums(len(gen), size)
    mean, std = E.kid(gen, ref.read.features, size=size, real_sums=real_sums, pairwise=ctx.pairwise())
    return {ctx.name("kid"): mean, ctx.name("kid_std"): std}, {}


@metric(
    "is",
    ("image", "stacked"),
    fidelity=("isc",),
    min_n=lambda ctx: MIN_SAMPLES,
    help="Inception Score",
    scores=(higher("is", "IS"), neutral("is_std", "IS std over splits")),
)
def _is(ctx: Context) -> Tuple[Scores, Details]:
    mean, std = E.inception_score(ctx.features().logits)
    return {ctx.name("is"): mean, ctx.name("is_std"): std}, {}


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
    ref = ctx.reference()
    precision, recall = E.precision_recall(
        ctx.features().features, ref.read.features, ref.radii, pairwise=ctx.pairwise()
    )
    return {ctx.name("precision"): precision, ctx.name("recall"): recall}, {}

"""The density & coverage family (Naeem et al. 2020, k = 5): manifold.py's estimators on the one feature pass.

  dc   density10k_test, dcoverage10k_test   (opt-in: ``--metrics dc``)

Images (and stacked-mnist) read the feature extractor's pass over the samples (``ctx.features()``) and the
cached reference of the split (``ctx.reference()``); the 2D mixtures read the raw coordinates of the samples
and of as many seeded real points. The real k-NN radii (k = 5) are computed once per evaluation from the
reference's features (the reference caches precision/recall's k = 3 radii, not these).

Coverage is the mode-dropping figure (bound 1: every real ball holds a sample). Density is declared higher
is better, as precision is: it rewards samples in dense real regions, about 1 for real data, and a collapsed
set can score above 1 (it measures fidelity, never diversity: read it with coverage).
"""

from __future__ import annotations

from typing import Tuple

from torch import Tensor

from benchmark.evaluation.estimators import knn_radii
from benchmark.evaluation.manifold import DC_NEIGHBOURS, density_coverage
from benchmark.evaluation.metrics.context import Context, real_side
from benchmark.evaluation.metrics.registry import Details, Scores, metric
from benchmark.evaluation.scores import higher

MIN_SAMPLES = 2 * DC_NEIGHBOURS


def _rows(ctx: Context) -> Tuple[Tensor, Tensor]:
    """(generated, real) rows: the evaluator's features, or the points themselves for the 2D mixtures."""
    if ctx.family == "points":
        return ctx.x, ctx.real_images()[0]
    return ctx.features().features, ctx.reference().read.features


@metric(
    "dc",
    ("image", "stacked", "points"),
    fidelity=("dc",),
    min_n=lambda ctx: MIN_SAMPLES,
    help=f"density and coverage (Naeem et al. 2020, k = {DC_NEIGHBOURS})",
    scores=(
        higher("density", "density", split=True),
        higher("dcoverage", "coverage (density & coverage)", split=True, bound=1.0),
    ),
)
def _dc(ctx: Context) -> Tuple[Scores, Details]:
    gen, real = _rows(ctx)
    real = real.detach().cpu().float()
    radii = real_side("dc-radii", real, lambda: knn_radii(real, DC_NEIGHBOURS), DC_NEIGHBOURS)  # same at every point
    pw = ctx.pairwise()  # the generated-to-real distances precision reads (None for the 2D mixtures)
    dc = density_coverage(gen, real, DC_NEIGHBOURS, real_radii=radii, distances=None if pw is None else pw.gen_real)
    return {ctx.name("density"): dc["density"], ctx.name("dcoverage"): dc["coverage"]}, {"dc_k": DC_NEIGHBOURS}

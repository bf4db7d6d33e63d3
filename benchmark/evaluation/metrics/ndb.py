"""The NDB family (Richardson & Weiss 2018): statistically different bins of a k-means partition of real training
data, on the one feature pass (ndb.py's estimator).

  ndb   ndb10k_train, ndb_js10k_train   (opt-in: ``--metrics ndb``)

The bins are K = 100 k-means cells of the evaluator's features of 10,000 real training images (the seeded subset
``reference.reference_rows`` names; stacked-mnist: its seeded set), fitted once per (dataset, evaluator sha256,
subset, K, seed, restarts) and cached beside the references; the real proportions are those training rows' shares.
The generated side is ``ctx.features()``. Both scores are lower-is-better: ``ndb`` is the share of bins whose
generated proportion differs from the real one (two-proportion z-test, pooled, alpha = 0.05; about alpha for real
data), ``ndb_js`` the Jensen-Shannon divergence of the two histograms in nats. Real training data enter whatever
``--split`` says (the paper's protocol), so the names end in ``_train``.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

from torch import Tensor

from benchmark.evaluation import ndb as N
from benchmark.evaluation.fidelity import evaluator
from benchmark.evaluation.metrics.context import Context
from benchmark.evaluation.metrics.registry import Details, Scores, metric
from benchmark.evaluation.reference import SUBSET
from benchmark.evaluation.scores import lower, score_spec

MIN_SAMPLES = N.NDB_BINS  # fewer samples than bins: most bins empty by construction


def bins(ctx: Context) -> N.Bins:
    """The cached bins of the evaluator's features of the training subset (fitted on a miss)."""
    train = Context(ctx.x, None, dataclasses.replace(ctx.opts, split=N.NDB_SPLIT))
    n_real = min(N.NDB_REAL, train.split_size()) if ctx.family == "image" else N.NDB_REAL

    def real() -> Tensor:
        return train.reference(n=n_real).read.features

    sha = evaluator(ctx.opts.extractor, ctx.dataset)[1]  # the extractor's sha256 (cached per file)
    return ctx.shared("ndb/bins", lambda: N.cached_bins(ctx.dataset, n_real, SUBSET, sha, real, ctx.cache_dir))


@metric(
    "ndb",
    ("image", "stacked"),
    fidelity=("ndb",),
    min_n=lambda ctx: MIN_SAMPLES,
    help=f"NDB and JS (Richardson & Weiss 2018): K = {N.NDB_BINS} k-means bins of real training features, "
    f"z-test at alpha = {N.NDB_ALPHA}",
    scores=(
        lower("ndb", "NDB (share of different bins)", split=True),
        lower("ndb_js", "JS divergence of the bin histograms", split=True, unit="nats"),
    ),
)
def _ndb(ctx: Context) -> Tuple[Scores, Details]:
    b = bins(ctx)
    r = N.ndb(ctx.features().features, b)
    name = lambda base: score_spec(base).name(ctx.n, N.NDB_SPLIT)  # noqa: E731  (always the training split)
    details: Details = {"ndb_protocol": N.protocol(b.n, SUBSET), f"ndb_different{ctx.t}": r["different"]}
    return {name("ndb"): r["ndb"], name("ndb_js"): r["js"]}, details

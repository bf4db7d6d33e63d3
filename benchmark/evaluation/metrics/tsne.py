"""The t-SNE figure (opt-in, image sets): a PNG of the evaluator's features, real vs generated (tsne.py)."""

from __future__ import annotations

from typing import Tuple

from benchmark.evaluation.metrics.context import Context
from benchmark.evaluation.metrics.registry import Details, Scores, metric
from benchmark.evaluation.tsne import tsne_plot


@metric("tsne", ("image",), min_n=lambda ctx: 10, help="t-SNE PNG of classifier features, real vs generated")
def _tsne(ctx: Context) -> Tuple[Scores, Details]:
    assert ctx.opts.tsne_path is not None
    fg, lg = ctx.gen_outputs
    fr, lr = ctx.real_outputs
    step = ctx.opts.step
    title = f"{ctx.dataset}" + (f", step {step}" if step is not None else "")
    path = tsne_plot(fr, lr.argmax(1), fg, lg.argmax(1), ctx.opts.tsne_path, seed=ctx.seed, title=title)
    return {}, {"tsne_png": str(path)}

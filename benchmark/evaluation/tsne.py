"""t-SNE (scikit-learn) of classifier features, real vs generated, coloured by predicted class, as a PNG.

One embedding of both sets together (so the two panels share coordinates): left panel real samples,
right panel generated ones, each point coloured by the classifier's predicted class. Mode collapse shows
as generated points covering only some of the real clusters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from benchmark import io

DEFAULT_POINTS = 1000  # per set


def tsne_plot(
    feat_real: Tensor,
    pred_real: Tensor,
    feat_gen: Tensor,
    pred_gen: Tensor,
    path: str | Path,
    num_points: int = DEFAULT_POINTS,
    seed: int = 0,
    title: str = "",
) -> Path:
    """Embed up to ``num_points`` of each set with t-SNE and write the two-panel PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    g = torch.Generator().manual_seed(seed)
    ir = torch.randperm(len(feat_real), generator=g)[:num_points]
    ig = torch.randperm(len(feat_gen), generator=g)[:num_points]
    fr, fg = feat_real[ir].double().numpy(), feat_gen[ig].double().numpy()
    pr, pg = pred_real[ir].numpy(), pred_gen[ig].numpy()
    both = np.concatenate([fr, fg])
    perplexity = float(min(30.0, max(2.0, (len(both) - 1) / 3)))
    emb = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(both)
    er, eg = emb[: len(fr)], emb[len(fr) :]
    k = int(max(pr.max(initial=0), pg.max(initial=0))) + 1
    cmap = plt.get_cmap("tab10" if k <= 10 else "nipy_spectral")
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), dpi=100, sharex=True, sharey=True)
    for ax, e, p, name in ((axes[0], er, pr, "real"), (axes[1], eg, pg, "generated")):
        ax.scatter(e[:, 0], e[:, 1], c=p, cmap=cmap, vmin=0, vmax=max(k - 1, 1), s=4)
        ax.set_title(f"{name} ({len(e)})")
        ax.set_xticks([])
        ax.set_yticks([])
    if k <= 10:
        handles = [plt.Line2D([], [], marker="o", ls="", color=cmap(c / max(k - 1, 1)), label=str(c)) for c in range(k)]
        axes[1].legend(handles=handles, title="predicted", fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    if title:
        fig.suptitle(title)
    path = Path(path)
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, bbox_inches="tight", format="png")
    plt.close(fig)
    return path

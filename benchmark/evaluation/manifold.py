"""Density & coverage (Naeem et al. 2020) and the Vendi score (Friedman & Dieng 2023) as functions of feature
rows: the estimators of metrics/dc.py and metrics/vendi.py, in torch, each tested against its authors'
package on the same features (``prdc``, ``vendi_score``: tests/test_eval_manifold.py).

* Density & coverage, k = 5 (the paper's): real set X (N rows) with r_i its distance to its k-th nearest
  other real row, generated set Y (M rows),

      density  = 1 / (k M) sum_j sum_i 1[d(Y_j, X_i) < r_i]     (how many real balls hold a sample; ~1 for real)
      coverage = 1 / N     sum_i 1[min_j d(X_i, Y_j) < r_i]     (share of real balls holding some sample)

  prdc's formulas (strict ``<``, Euclidean distances), computed in row blocks of the generated set so that no
  N x M matrix is held (400 MB at 10,000 x 10,000), or read off the generated-to-real distances that
  precision/recall computed for the same evaluation (``estimators.Pairwise``). Coverage is the mode-dropping figure: a generator that
  drops half the classes leaves half the real balls empty; density rewards samples in dense real regions and
  is not a diversity figure (a collapsed set can score above 1).
* Vendi, cosine kernel: exp of the Shannon entropy of the eigenvalues of K / n, K_ij = cos(x_i, x_j): the
  effective number of distinct samples, 1 for n identical rows and n for n mutually orthogonal ones. K / n
  = X X^T / n for the row-normalised X has the non-zero eigenvalues of X^T X / n (D x D), so the score costs
  one D x D eigendecomposition in float64 (``vendi_score.vendi.score_dual``), never an n x n one.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import Tensor

from benchmark.evaluation import estimators as E

DC_NEIGHBOURS = 5  # Naeem et al.'s k
DC_BLOCK = 2000  # generated rows per distance block (2000 x 10,000 float32: 80 MB)


def density_coverage(
    gen: Tensor,
    real: Tensor,
    k: int = DC_NEIGHBOURS,
    real_radii: Optional[Tensor] = None,
    distances: Optional[Tensor] = None,
) -> Dict[str, float]:
    """{'density', 'coverage'} of generated rows ``gen`` against real rows ``real`` (k-NN balls of the real).
    ``distances``: the M x N generated-to-real distances when the evaluation holds them already
    (``estimators.Pairwise.gen_real``, shared with precision)."""
    gen, real = gen.detach().cpu().float(), real.detach().cpu().float()
    if distances is not None and tuple(distances.shape) != (len(gen), len(real)):
        raise ValueError(
            f"density & coverage: distances of shape {tuple(distances.shape)} for {len(gen)} x {len(real)} rows"
        )
    radii = E.knn_radii(real, k) if real_radii is None else real_radii
    inside = torch.zeros((), dtype=torch.float64)
    nearest = torch.full((len(real),), float("inf"))
    blocks = gen.split(DC_BLOCK) if distances is None else distances.split(DC_BLOCK)
    for b in blocks:
        d = E.cdist(b, real) if distances is None else b  # block x N
        inside += (d < radii[None, :]).sum(dtype=torch.float64)
        nearest = torch.minimum(nearest, d.min(dim=0).values)
    density = float(inside) / (k * len(gen))
    coverage = float((nearest < radii).double().mean())
    return {"density": density, "coverage": coverage}


def vendi(features: Tensor) -> float:
    """The Vendi score of ``features`` (n x D) under the cosine kernel; a zero row stays zero (sklearn's
    ``normalize``, as vendi_score)."""
    x = features.detach().cpu().double()
    norms = x.norm(dim=1, keepdim=True)
    x = x / torch.where(norms > 0, norms, torch.ones_like(norms))
    w = torch.linalg.eigvalsh(x.T @ x / len(x))
    w = w[w > 0]
    return float(torch.exp(-(w * w.log()).sum()))


def vendi_by_class(features: Tensor, labels: Tensor, num_classes: int) -> List[float]:
    """The Vendi score of each class's rows (NaN for a class with fewer than 2 rows)."""
    out = []
    for c in range(num_classes):
        rows = features[labels == c]
        out.append(vendi(rows) if len(rows) >= 2 else float("nan"))
    return out

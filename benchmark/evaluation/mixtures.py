"""2D Gaussian-mixture metrics, following PacGAN's own evaluation code (Lin et al. 2018, MetricLogger).

From 2,500 generated points:

* every point is assigned to its nearest mode mean; it is *high quality* when its distance to that mean is
  below 3 standard deviations of the mixture component (Mahalanobis with the isotropic std);
* ``modes``: the number of modes that received at least one high-quality point;
* ``hq``: the share of high-quality points, in percent (a perfect sampler scores
  100 * (1 - exp(-9/2)) = 98.9 % in 2D);
* ``rkl``: reverse KL, KL(generated mode distribution || uniform over modes), where the generated mode
  distribution is the histogram of the high-quality points over modes (0 when all modes are equally hit;
  log K when every point sits in one mode). With no high-quality point at all it is ``inf``.
"""

from __future__ import annotations

import math
from typing import Dict

import torch
from torch import Tensor

from benchmark.evaluation.coverage import kl_divergence

PROTOCOL_SAMPLES = 2500
STD_THRESHOLD = 3.0


def mixture_metrics(points: Tensor, means: Tensor, std: float, threshold: float = STD_THRESHOLD) -> Dict[str, object]:
    """Modes captured, % high-quality samples and reverse KL of ``points`` (N x 2) against a mixture."""
    pts = points.double().cpu()
    mu = means.double().cpu()
    d = torch.cdist(pts, mu)  # N x K
    dist, nearest = d.min(1)
    good = dist < threshold * std
    k = mu.shape[0]
    hist = torch.bincount(nearest[good], minlength=k)
    rkl = kl_divergence(hist, torch.ones(k)) if int(hist.sum()) > 0 else math.inf
    return {
        "modes": int((hist > 0).sum()),
        "hq": 100.0 * float(good.double().mean()) if len(pts) else 0.0,
        "rkl": rkl,
        "hist": hist.tolist(),
    }

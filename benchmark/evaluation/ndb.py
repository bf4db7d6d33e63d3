"""NDB and JS (Richardson & Weiss 2018, "On GANs and GMMs"): the number of statistically different bins of a
k-means partition of real training data, as functions of feature rows; the estimator of metrics/ndb.py.

* The bins: ``NDB_BINS`` (K = 100) k-means cells fitted on the features of ``NDB_REAL`` (10,000) real training
  images (the seeded subset ``reference.reference_rows`` names: the whole split below that size), by
  ``sklearn.cluster.KMeans(n_clusters=K, random_state=NDB_SEED, n_init=NDB_INIT)`` in float64. A row belongs to
  the bin of its nearest centre (Euclidean); the real proportions are those of the same training rows.
* The test, per bin: the two-proportion z-test with the pooled variance, two-tailed at alpha = 0.05, as the
  authors' code (``ndb.py``, ``two_proportions_z_test``; no continuity correction):

      p = (n_r p_r + n_g p_g) / (n_r + n_g),  se = sqrt(p (1 - p) (1/n_r + 1/n_g)),  z = (p_g - p_r) / se,
      different  <=>  |z| > Phi^-1(1 - alpha/2) = 1.95996...     (a bin empty on both sides is not different)

  ``ndb`` is the share of the K bins that differ: about alpha for samples of the real distribution, 1 when every
  bin's share moved (one image repeated).
* JS: the Jensen-Shannon divergence between the two bin histograms, natural log (nats, in [0, ln 2]).

The fit is the expensive part (one evaluator pass over the training subset, then the k-means); it is cached with
the other real-side statistics (``bins``), keyed by all that determines it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch
from torch import Tensor

from benchmark import io
from benchmark.evaluation import estimators as E

NDB_BINS = 100  # K, the paper's MNIST setting
NDB_ALPHA = 0.05  # the z-test's significance level (two-tailed)
NDB_SEED = 0  # k-means' random_state: fixed, so every evaluation reads the same bins
NDB_INIT = 3  # k-means restarts (the best inertia is kept)
NDB_REAL = 10_000  # real training rows the bins are fitted on (and whose shares are the real proportions)
NDB_SPLIT = "train"  # the bins partition the training data (the paper's protocol), whatever split is compared
NDB_TEST = "two-proportion z, pooled variance, two-tailed, no continuity correction"
NDB_LOG = "e"  # JS in nats
LAYOUT = 1  # bump when a cached entry's contents change meaning


@dataclass(frozen=True)
class Bins:
    """A k-means partition of real rows: the centres (K x D) and the real rows' count in each bin."""

    centres: Tensor
    counts: Tensor  # int64, K

    @property
    def n(self) -> int:
        return int(self.counts.sum())


def fit_bins(real: Tensor, k: int = NDB_BINS, seed: int = NDB_SEED, n_init: int = NDB_INIT) -> Bins:
    """K-means bins of ``real`` rows (N x D, N >= k) and the real counts in them (by nearest centre)."""
    from sklearn.cluster import KMeans  # 3.5 s to import after torch (-X importtime): only where bins are fitted

    x = real.detach().cpu().double()
    km = KMeans(n_clusters=k, random_state=seed, n_init=n_init).fit(x.numpy())
    centres = torch.from_numpy(km.cluster_centers_).float()
    return Bins(centres, bin_counts(real, centres))


def bin_counts(rows: Tensor, centres: Tensor) -> Tensor:
    """How many ``rows`` fall in each bin (nearest centre), int64 of length K."""
    nearest = torch.cat([E.cdist(b, centres).argmin(1) for b in rows.detach().cpu().float().split(4096)])
    return torch.bincount(nearest, minlength=len(centres))


def z_test(real_counts: Tensor, gen_counts: Tensor, alpha: float = NDB_ALPHA) -> Dict[str, Tensor]:
    """Per bin: {'z': the pooled two-proportion z of gen against real, 'different': |z| > Phi^-1(1 - alpha/2)}."""
    r, g = real_counts.double(), gen_counts.double()
    n_r, n_g = r.sum(), g.sum()
    p_r, p_g = r / n_r, g / n_g
    p = (r + g) / (n_r + n_g)
    se = torch.sqrt(p * (1 - p) * (1 / n_r + 1 / n_g))
    z = torch.where(se > 0, (p_g - p_r) / torch.where(se > 0, se, torch.ones_like(se)), torch.zeros_like(se))
    threshold = math.sqrt(2) * float(torch.special.erfinv(torch.tensor(1 - alpha, dtype=torch.float64)))
    return {"z": z, "different": z.abs() > threshold}


def js_divergence(p: Tensor, q: Tensor) -> float:
    """Jensen-Shannon divergence (natural log) between two histograms (normalised here); 0 log 0 = 0."""
    p, q = p.double() / p.double().sum(), q.double() / q.double().sum()
    m = (p + q) / 2

    def kl(a: Tensor) -> Tensor:
        return torch.where(a > 0, a * (a / torch.where(m > 0, m, torch.ones_like(m))).log(), torch.zeros_like(a)).sum()

    return float((kl(p) + kl(q)) / 2)


def ndb(gen: Tensor, bins: Bins, alpha: float = NDB_ALPHA) -> Dict[str, Any]:
    """{'ndb': share of bins that differ, 'js', 'different': their count} of generated rows ``gen``."""
    counts = bin_counts(gen, bins.centres)
    test = z_test(bins.counts, counts, alpha)
    different = int(test["different"].sum())
    return {"ndb": different / len(counts), "js": js_divergence(bins.counts, counts), "different": different}


# ------------------------------------------------------------------------------------------------
# the cache: one small entry per (dataset, evaluator, real subset, K, seed, restarts)


def protocol(n_real: int, subset: str) -> Dict[str, Any]:
    """What determines the bins and the test, as written in every record and cache key."""
    return {
        "bins": NDB_BINS,
        "alpha": NDB_ALPHA,
        "seed": NDB_SEED,
        "n_init": NDB_INIT,
        "real_split": NDB_SPLIT,
        "real_n": n_real,
        "subset": subset,
        "test": NDB_TEST,
        "js_log": NDB_LOG,
    }


def entry_name(dataset: str, n_real: int, subset: str, sha256: str) -> str:
    return f"ganbench-{dataset}-{NDB_SPLIT}-n{n_real}-{subset}-ndb-K{NDB_BINS}-s{NDB_SEED}-i{NDB_INIT}-{sha256[:16]}.pt"


def cached_bins(
    dataset: str, n_real: int, subset: str, sha256: str, real: Callable[[], Tensor], cache_dir: Optional[Path]
) -> Bins:
    """The bins of ``real()`` (the training rows' features): from the cache entry, else fitted and cached."""
    path = cache_dir / entry_name(dataset, n_real, subset, sha256) if cache_dir is not None else None
    key = {"layout": LAYOUT, "dataset": dataset, "sha256": sha256, **protocol(n_real, subset)}
    blob = None
    if path is not None and path.is_file():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a damaged or foreign file: refitted and replaced
            blob = None
    try:
        if isinstance(blob, dict) and blob.get("key") == key and blob["counts"].shape == (NDB_BINS,):
            return Bins(blob["centres"], blob["counts"])
    except (KeyError, AttributeError):
        pass
    bins = fit_bins(real())
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with io.atomic_path(path) as tmp:
            torch.save({"key": key, "centres": bins.centres, "counts": bins.counts}, tmp)
    return bins

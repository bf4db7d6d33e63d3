"""FID, KID, Inception Score and precision/recall as functions of feature rows: the project's own, in torch.

Each is torch-fidelity 0.4.0's estimator (``torch_fidelity/metric_{fid,kid,isc,prc}.py``) with its defaults,
computed without its per-call costs, and each is tested against torch-fidelity's function on the same features
(tests/test_eval_estimators.py):

* FID: the Frechet distance of the two feature Gaussians, ``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2)``.
  torch-fidelity takes the eigenvalues of the non-symmetric S1 S2 (``numpy.linalg.eigvals``, about 1 s at
  D = 576); here tr((S1 S2)^1/2) = tr((A S1 A)^1/2) with A = S2^1/2 (A S1 A is symmetric and has the
  eigenvalues of S1 S2), two symmetric eigendecompositions, and A of the real set is cached with it.
  Agrees to ~1e-6 relative (the issue's bar: 0.5 %).
* KID: the unbiased MMD^2 of the polynomial kernel k(x, y) = (x.y / d + 1)^3 over 100 subsets of
  min(1000, N) rows of each set, drawn exactly as torch-fidelity draws them (``numpy.random.RandomState(2020)``,
  ``choice(n, m, replace=False)``, generated then real, subset by subset): the same subsets, in float32 torch,
  several subsets per batched matrix product. The real-real kernel sums depend only on the real features and
  the subsets, so a caller may pass them in (``real_sums``, cached with the reference). Where the whole
  kernel matrices are fewer products than the subsets' (5,000 against 5,000: 4x fewer), each subset's sum is
  read off them through its indicator vector instead (``method="whole"``; the same sums to float rounding,
  3.5x less CPU at 5,000 on one thread).
* Precision/recall (Kynkaanniemi et al. 2019, k = 3): torch-fidelity's ``calculate_precision_recall_part``
  step for step (``torch.cdist``'s own arithmetic on the same blocks, so the same distances bit for bit, into
  one reused buffer), with the k-th neighbour found by ``topk`` instead of ``kthvalue`` (the same value; 8x
  faster on CPU) and the real set's radii passed in (cached with the reference). Equal to torch-fidelity's,
  exactly.
* One evaluation's distances, shared (``Pairwise``): up to ``PR_BATCH`` rows a side, the generated-generated,
  generated-real and real-generated distance matrices are computed once and read by precision/recall (exactly
  its single-block distances), density & coverage (manifold.py) and KID (the kernels' inner products read off
  them): three matrix products per evaluation where the three families made six (measured: 3.1 s -> 2.3 s per
  5,000-sample point of the lambda study on one thread, ``make bench-eval`` for the families).
* Inception Score: torch-fidelity's ``isc_features_to_metric`` (10 splits after a RandomState(2020) shuffle,
  float64), the same operations; equal to it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

RNG_SEED = 2020  # torch-fidelity's rng_seed: KID's subsets and IS's shuffle
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_DEGREE, KID_COEF0 = 3, 1.0  # gamma = 1 / d
KID_CHUNK = 4  # subsets per batched product: 4 x 1000 x 1000 float32 kernels, 16 MB (fastest measured: 4-40)
PR_NEIGHBOURS = 3
PR_BATCH = 10_000  # torch-fidelity's prc_batch_size: its blocks, hence its distances bit for bit
IS_SPLITS = 10


# ------------------------------------------------------------------------------------------------
# FID


@dataclass(frozen=True)
class Gaussian:
    """The FID statistics of a feature set: mean (as torch-fidelity keeps it: float32), covariance (float64)
    and, for the real set, the covariance's square root (``with_root``)."""

    mu: Tensor
    sigma: Tensor
    root: Optional[Tensor] = None


def _psd_root(sigma: Tensor) -> Tensor:
    """The symmetric square root of a covariance (negative rounding-noise eigenvalues read as 0)."""
    w, v = torch.linalg.eigh(sigma)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def gaussian(features: Tensor, with_root: bool = False) -> Gaussian:
    """Mean and covariance (ddof 1) of the rows, as ``fid_features_to_statistics`` computes them."""
    f = features.detach().cpu().float()
    mu = torch.from_numpy(np.mean(f.numpy(), axis=0))  # float32, numpy's pairwise sum: torch-fidelity's mu
    x = f.double() - f.double().mean(0)
    sigma = (x.T @ x) / max(len(f) - 1, 1)
    return Gaussian(mu, sigma, _psd_root(sigma) if with_root else None)


def frechet_distance(gen: Gaussian, real: Gaussian) -> float:
    """FID of two feature Gaussians; ``real.root`` is used when present (else computed)."""
    root = real.root if real.root is not None else _psd_root(real.sigma)
    diff = gen.mu - real.mu
    inner = root @ gen.sigma @ root
    tr_covmean = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp_min(0).sqrt().sum()
    return float(diff.dot(diff)) + float(gen.sigma.trace() + real.sigma.trace() - 2 * tr_covmean)


# ------------------------------------------------------------------------------------------------
# KID


def kid_subsets(
    n_gen: int, n_real: int, size: int, subsets: int = KID_SUBSETS, seed: int = RNG_SEED
) -> Tuple[Tensor, Tensor]:
    """(subsets x size generated indices, subsets x size real indices): torch-fidelity's draws, in its order."""
    rng = np.random.RandomState(seed)
    gen: List[np.ndarray] = []
    real: List[np.ndarray] = []
    for _ in range(subsets):
        gen.append(rng.choice(n_gen, size, replace=False))
        real.append(rng.choice(n_real, size, replace=False))
    return torch.from_numpy(np.stack(gen)), torch.from_numpy(np.stack(real))


class _Kernels:
    """Buffers for one KID: the gathered subsets and their kernel matrices, allocated once (fresh 16-40 MB
    tensors per product cost as much system time as the products' arithmetic)."""

    def __init__(self, size: int, dim: int, chunk: int = KID_CHUNK):
        self.a = torch.empty(chunk, size, dim)
        self.b = torch.empty(chunk, size, dim)
        self.k = torch.empty(chunk, size, size)

    def sums(self, fa: Tensor, ia: Tensor, fb: Optional[Tensor] = None, ib: Optional[Tensor] = None) -> Tensor:
        """Per subset, the sum of k(a_i, b_j) over i, j: rows ``ia`` of ``fa`` against rows ``ib`` of ``fb``,
        or, without ``fb``, the rows against themselves over i != j."""
        c, m = ia.shape
        a = self.a[:c]
        torch.index_select(fa, 0, ia.reshape(-1), out=a.view(c * m, -1))
        if fb is None:
            b = a
        else:
            b = self.b[:c]
            torch.index_select(fb, 0, ib.reshape(-1), out=b.view(c * m, -1))
        k = self.k[:c]
        torch.bmm(a, b.transpose(1, 2), out=k)
        k.mul_(1.0 / a.shape[-1]).add_(KID_COEF0).pow_(KID_DEGREE)  # gamma = 1 / d, as torch-fidelity
        total = k.sum(2).double().sum(1)  # rows of m in float32, then float64 (a float64 sum casts a copy: 8x)
        if fb is None:
            total -= k.diagonal(dim1=1, dim2=2).double().sum(1)
        return total


def _whole_kernels_cheaper(n_gen: int, n_real: int, size: int, subsets: int) -> bool:
    """Whether the whole kernel matrices (gen x gen and gen x real: n_gen (n_gen + n_real) products of two rows)
    cost less than the subsets' own (2 x subsets x size^2): at 5,000 against 5,000, 5e7 against 2e8 (4x fewer);
    at 10,000 against 10,000 they tie and the subsets' batched products are kept."""
    return n_gen * (n_gen + n_real) < 2 * subsets * size * size


def _indicator(idx: Tensor, n: int) -> Tensor:
    """subsets x n float32 matrix with a 1 at each drawn row (a subset's rows are distinct: drawn without
    replacement)."""
    ind = torch.zeros(idx.shape[0], n)
    return ind.scatter_(1, idx.long(), 1.0)


def _gram_sums(
    fa: Tensor,
    ia: Tensor,
    fb: Optional[Tensor] = None,
    ib: Optional[Tensor] = None,
    block: int = 1000,
    inner: Optional[Callable[[int, int], Tensor]] = None,
) -> Tensor:
    """``_Kernels.sums`` from the whole kernel matrix, one block of rows at a time: each subset's sum is
    1_S' K 1_T, the rows of (indicator of S) K dotted with the indicator of T; the same kernel values, each
    computed once however many subsets hold the pair (float32 kernel and block sums, float64 totals). Without ``fb``: ``fa``
    against itself, its diagonal k(a_i, a_i) dropped. ``inner(s, e)``: the inner products of rows s:e of ``fa``
    with the columns (from s on against itself), when they are at hand (``Pairwise.inner``)."""
    same = fb is None
    fb, ib = (fa, ia) if same else (fb, ib)
    ind_a, ind_b = _indicator(ia, len(fa)), _indicator(ib, len(fb)).double()
    total = torch.zeros(ia.shape[0], dtype=torch.float64)
    for s in range(0, len(fa), block):
        e = s + block
        # against itself the matrix is symmetric: the rows of this block against itself and the columns after it,
        # the blocks off the diagonal counted twice (each pair once, as k(a_i, a_j) = k(a_j, a_i))
        cols = fb[s:] if same else fb
        k = fa[s:e] @ cols.T if inner is None else inner(s, e)
        k.mul_(1.0 / fa.shape[-1]).add_(KID_COEF0).pow_(KID_DEGREE)
        part = ind_a[:, s:e] @ k  # rows of the block in float32
        if same:
            diag_block = (part[:, : e - s].double() * ind_b[:, s:e]).sum(1)
            total += 2 * (part.double() * ind_b[:, s:]).sum(1) - diag_block
        else:
            total += (part.double() * ind_b).sum(1)
    if same:
        diag = (fa.pow(2).sum(1).double() / fa.shape[-1] + KID_COEF0).pow(KID_DEGREE)
        total -= ind_a.double() @ diag
    return total


def kid_real_sums(real: Tensor, idx_real: Tensor) -> Tensor:
    """The real-real kernel sums (diagonal dropped) of each subset: a function of the real set and the draws."""
    real = real.detach().cpu().float().contiguous()
    buf = _Kernels(idx_real.shape[1], real.shape[1])
    return torch.cat([buf.sums(real, i) for i in idx_real.split(KID_CHUNK)])


def kid(
    gen: Tensor,
    real: Tensor,
    subsets: int = KID_SUBSETS,
    size: Optional[int] = None,
    seed: int = RNG_SEED,
    real_sums: Optional[Tensor] = None,
    method: str = "auto",
    pairwise: Optional["Pairwise"] = None,
) -> Tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over torch-fidelity's subsets; ``size`` default min(1000, both Ns).
    ``method``: "subsets" (batched products of the drawn rows), "whole" (the whole kernel matrices, each pair
    once) or "auto" (whichever costs fewer products); the same sums up to float rounding. ``pairwise``: the
    distances of these rows, already computed for precision/recall; the whole kernels are then read off them
    (no product of feature rows at all)."""
    gen, real = gen.detach().cpu().float().contiguous(), real.detach().cpu().float().contiguous()
    m = min(KID_SUBSET_SIZE, len(gen), len(real)) if size is None else size
    if m < 2 or m > min(len(gen), len(real)):
        raise ValueError(f"KID subset size {m} needs 2 <= size <= min({len(gen)}, {len(real)})")
    idx_g, idx_r = kid_subsets(len(gen), len(real), m, subsets, seed)
    yy = kid_real_sums(real, idx_r) if real_sums is None else real_sums.double()
    if method not in ("auto", "subsets", "whole"):
        raise ValueError(f"KID method {method!r}: auto, subsets or whole")
    if pairwise is not None:
        if pairwise.gen.shape != gen.shape or pairwise.real.shape != real.shape:
            raise ValueError("KID: the pairwise distances are of other rows")
        xx = _gram_sums(gen, idx_g, inner=lambda s, e: pairwise.inner("gen_gen", s, e))
        xy = _gram_sums(gen, idx_g, real, idx_r, inner=lambda s, e: pairwise.inner("gen_real", s, e))
    elif method == "whole" or (method == "auto" and _whole_kernels_cheaper(len(gen), len(real), m, subsets)):
        xx = _gram_sums(gen, idx_g)
        xy = _gram_sums(gen, idx_g, real, idx_r)
    else:
        buf = _Kernels(m, gen.shape[1])
        xx = torch.cat([buf.sums(gen, ig) for ig in idx_g.split(KID_CHUNK)])
        xy = torch.cat([buf.sums(gen, ig, real, ir) for ig, ir in zip(idx_g.split(KID_CHUNK), idx_r.split(KID_CHUNK))])
    mmd = (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m)
    return float(mmd.mean()), float(mmd.std(correction=0))  # numpy's std: ddof 0, as torch-fidelity


# ------------------------------------------------------------------------------------------------
# precision / recall


class _Distances:
    """One buffer for the distance matrices of a precision/recall (three N x N float32 matrices, 400 MB each at
    N = 10,000, written into the same memory instead of three fresh allocations)."""

    def __init__(self) -> None:
        self.store = torch.empty(0)

    def matrix(self, rows: int, cols: int) -> Tensor:
        if self.store.numel() < rows * cols:
            self.store = torch.empty(rows * cols)
        return self.store[: rows * cols].view(rows, cols)


def cdist(a: Tensor, b: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """``torch.cdist(a, b)``, bit for bit, optionally into ``out``: ATen's matrix-product Euclidean distance
    (``_euclidean_dist``) op for op, which torch.cdist uses unless both sets have at most 25 rows."""
    if len(a) <= 25 and len(b) <= 25:
        return torch.cdist(a, b)
    an, bn = a.pow(2).sum(-1, keepdim=True), b.pow(2).sum(-1, keepdim=True)
    a_ = torch.cat([a.mul(-2), an, torch.ones_like(an)], -1)
    b_ = torch.cat([b, torch.ones_like(bn), bn], -1)
    out = torch.matmul(a_, b_.mT) if out is None else torch.matmul(a_, b_.mT, out=out)
    return out.clamp_min_(0).sqrt_()


def _cdist_part(a: Tensor, b: Tensor, batch: int, buf: _Distances) -> Tensor:
    """torch-fidelity's ``calc_cdist_part``: distances of ``a`` to ``b`` in column blocks of ``batch``."""
    out = buf.matrix(len(a), len(b))
    if len(b) <= batch:
        return cdist(a, b, out)
    for j, bb in zip(range(0, len(b), batch), b.split(batch)):
        out[:, j : j + len(bb)] = cdist(a, bb)
    return out


def knn_radii(f: Tensor, k: int = PR_NEIGHBOURS, batch: int = PR_BATCH, buf: Optional[_Distances] = None) -> Tensor:
    """Each row's distance to its k-th nearest other row (the (k+1)-th smallest, itself at 0 included)."""
    f, buf = f.detach().cpu().float(), buf or _Distances()
    return torch.cat(
        [_cdist_part(fb, f, batch, buf).topk(k + 1, dim=1, largest=False).values[:, k] for fb in f.split(batch)]
    )


def _inside(d: Tensor, radii_b: Tensor) -> List[Tensor]:
    """Per row of distances ``d`` (to the rows of b), whether it lies within some row's ball (as torch-fidelity)."""
    return [(rows <= radii_b).any(dim=1).float() for rows in d.split(1000)]


def _inside_any(a: Tensor, b: Tensor, radii_b: Tensor, batch: int, buf: _Distances) -> float:
    """Share of the rows of ``a`` within the k-NN ball of some row of ``b`` (float32 mean, as torch-fidelity)."""
    hits = []
    for ab in a.split(batch):
        hits += _inside(_cdist_part(ab, b, batch, buf), radii_b)
    return torch.cat(hits).mean().item()


def precision_recall(
    gen: Tensor,
    real: Tensor,
    real_radii: Optional[Tensor] = None,
    k: int = PR_NEIGHBOURS,
    batch: int = PR_BATCH,
    pairwise: Optional["Pairwise"] = None,
) -> Tuple[float, float]:
    """(precision, recall): the share of generated rows inside the real manifold, and of real rows inside the
    generated one, each manifold a union of k-NN balls. ``pairwise``: these rows' distance matrices, computed
    once for the evaluation (torch-fidelity's single blocks: the same answer exactly)."""
    if pairwise is not None:
        if batch != PR_BATCH or pairwise.gen.shape != gen.shape or pairwise.real.shape != real.shape:
            raise ValueError("precision/recall: the pairwise distances are of other rows or blocks")
        gen_radii = pairwise.gen_gen.topk(k + 1, dim=1, largest=False).values[:, k]
        radii = knn_radii(pairwise.real, k, batch) if real_radii is None else real_radii
        recall = torch.cat(_inside(pairwise.real_gen, gen_radii)).mean().item()
        return torch.cat(_inside(pairwise.gen_real, radii)).mean().item(), recall
    gen, real, buf = gen.detach().cpu().float(), real.detach().cpu().float(), _Distances()
    recall = _inside_any(real, gen, knn_radii(gen, k, batch, buf), batch, buf)
    radii = knn_radii(real, k, batch, buf) if real_radii is None else real_radii
    return _inside_any(gen, real, radii, batch, buf), recall


# ------------------------------------------------------------------------------------------------
# the distances of one evaluation, shared


class Pairwise:
    """The distance matrices between one evaluation's generated rows and real rows, each computed once (on first
    use) and read by every estimator that needs it: precision/recall (generated-generated for the generated
    radii, real-generated for recall, generated-real for precision), density & coverage (generated-real) and
    KID, whose kernels need the rows' inner products, read off the same matrices as (|a|^2 + |b|^2 - d^2) / 2
    (float rounding only: KID stays far inside its subset noise, tests/test_eval_estimators.py).

    Only up to ``PR_BATCH`` rows a side (``fits``): torch-fidelity computes each of its matrices there as one
    block, so these are its distances bit for bit and precision/recall stays exact; past it every estimator
    walks its own blocks and no whole matrix is held (three of them are 1.2 GB at 10,000)."""

    def __init__(self, gen: Tensor, real: Tensor):
        if not self.fits(len(gen), len(real)):
            raise ValueError(f"shared distances hold at most {PR_BATCH} rows a side, got {len(gen)} x {len(real)}")
        self.gen = gen.detach().cpu().float().contiguous()
        self.real = real.detach().cpu().float().contiguous()

    @staticmethod
    def fits(n_gen: int, n_real: int) -> bool:
        return max(n_gen, n_real) <= PR_BATCH

    @cached_property
    def gen_gen(self) -> Tensor:
        return cdist(self.gen, self.gen)

    @cached_property
    def gen_real(self) -> Tensor:
        return cdist(self.gen, self.real)

    @cached_property
    def real_gen(self) -> Tensor:
        return cdist(self.real, self.gen)

    @cached_property
    def _norms(self) -> Tuple[Tensor, Tensor]:
        return self.gen.pow(2).sum(-1), self.real.pow(2).sum(-1)

    def inner(self, which: str, s: int, e: int) -> Tensor:
        """Inner products of generated rows s:e with the generated rows from s on (``gen_gen``: the upper block
        rows ``_gram_sums`` reads) or with every real row (``gen_real``), from the distances."""
        ng, nr = self._norms
        if which == "gen_gen":
            d, cols = self.gen_gen[s:e, s:], ng[s:]
        elif which == "gen_real":
            d, cols = self.gen_real[s:e], nr
        else:
            raise ValueError(f"unknown pairwise block {which!r}")
        return (ng[s:e, None] + cols[None, :] - d * d).mul_(0.5)


# ------------------------------------------------------------------------------------------------
# Inception Score


def inception_score(logits: Tensor, splits: int = IS_SPLITS, seed: int = RNG_SEED) -> Tuple[float, float]:
    """(mean, std) over ``splits`` of exp(E KL(p(y|x) || p(y))) after torch-fidelity's shuffle."""
    f = logits.detach().cpu()
    n = f.shape[0]
    f = f[np.random.RandomState(seed).permutation(n), :].double()
    p, log_p = f.softmax(dim=1), f.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        p_chunk = p[(i * n // splits) : ((i + 1) * n // splits), :]
        log_p_chunk = log_p[(i * n // splits) : ((i + 1) * n // splits), :]
        q_chunk = p_chunk.mean(dim=0, keepdim=True)
        kl = p_chunk * (log_p_chunk - q_chunk.log())
        scores.append(kl.sum(dim=1).mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))

"""Class coverage and mode counting: pure functions of predicted labels / class probabilities.

* Class coverage (MNIST-like sets): the histogram of the classifier's predicted classes; a class is
  *covered* when it receives at least ``threshold`` (default 10 %) of its expected count, the expected
  count being N times the class's share in the dataset's training labels (the distribution the GAN was
  trained to match); KL(generated class distribution || training class distribution); the entropy of the
  generated class distribution (nats); and the Mode Score of Che et al. (2017) in the form of Xu et al.
  (2018): exp(E_x KL(p(y|x) || p(y)) - KL(p(y) || p*(y))), p(y) the generated marginal, p* the training one.
* Conditional models: label agreement (the share of samples whose predicted class is the requested one).
* The evaluator's own validity figure: a second, independent evaluator (another architecture family, seed
  and augmentation) labels the same samples; ``agreement`` is the share of samples both give the same class,
  ``total_variation`` the TV distance between their class histograms (0 = same shares, 1 = disjoint). Above
  ``TV_BOUND`` the coverage figures of that record depend on which evaluator reads the samples.
* Readable share: a sample is *readable* when at least one evaluator reads it with a max class probability of at
  least its threshold tau (each evaluator's 1st percentile of max probability on the clean test split, kept in
  the weights manifest) AND the primary evaluator's features lie inside the real test digits' cloud of the class
  it predicts (``Cloud``: the squared Mahalanobis distance to that class's mean of the real test features, under
  their pooled within-class covariance shrunk by ``CLOUD_SHRINK`` toward its mean variance, at most the
  ``CLOUD_QUANTILE`` quantile of the real test digits' own distances to the class they are predicted); else
  *unreadable*. Max probability alone reads half of a collapsed WGAN's noise blobs as confident digits; the
  cloud asks that a sample also look, to the evaluator, like the real digits of its class. Only the primary's
  cloud: the second (an MLP) puts smooth noise blobs inside its own clouds (0.54 of them, README).
  ``classes_covered`` is also counted over the readable samples only.
  Published argmax definitions (class KL, Stacked-MNIST modes) stay as the papers define them.
* Stacked MNIST (VEEGAN / PacGAN protocol): each of the three channels is labelled by the MNIST classifier;
  a mode (one of 1000 digit triples) is captured when at least one sample lands in it; KL(generated ||
  uniform over 1000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor

TV_BOUND = 0.15  # above this TV between the two evaluators, a record's coverage depends on the evaluator
EVALUATOR_DEPENDENT = "coverage figures here depend on the evaluator"
CLOUD_SPLIT = "test"  # the real split whose class clouds calibrate readability, whatever split a score compares with
CLOUD_SHRINK = 0.5  # covariance shrinkage toward its mean variance: 8x8 digits' test split has 297 images
CLOUD_QUANTILE = 0.999  # per class: 99.9 % of real test digits lie inside their predicted class's cloud (tau drops 1 %)
CLOUD_RULE = f"mahalanobis-shrink{CLOUD_SHRINK}-q{CLOUD_QUANTILE}-{CLOUD_SPLIT}"  # in cache keys and records
CLASS_READING = "mean-prob-primary-second"  # the class of a sample in the coverage figures (``class_probs``)


def class_probs(logits_a: Tensor, logits_b: Tensor) -> Tensor:
    """The class reading of the coverage figures: the mean of the two evaluators' class probabilities (float64).

    The primary CNN alone is a class-3 magnet on generated MNIST digits: it reads 21-26 % of WGAN-GP samples as
    3s where three independent readers read 11-21 %, and its histogram lies farther (TV) from theirs than they lie
    from each other; the mean with the second evaluator does not (``python -m benchmark.evaluation.magnet``,
    README). On real digits the two agree on nearly every sample, so the reading is the primary's there."""
    return (logits_a.double().softmax(1) + logits_b.double().softmax(1).to(logits_a.device)) / 2


def histogram(pred: Tensor, num_classes: int) -> Tensor:
    """Counts per class (int64) of the predicted labels."""
    return torch.bincount(pred.reshape(-1).long().cpu(), minlength=num_classes)[:num_classes]


def kl_divergence(p: Tensor, q: Tensor) -> float:
    """KL(p || q) in nats of two (unnormalised) histograms; 0 log 0 = 0; inf where p > 0 = q."""
    p = p.double() / p.double().sum()
    q = q.double() / q.double().sum()
    m = p > 0
    if bool((q[m] == 0).any()):
        return math.inf
    return float((p[m] * (p[m] / q[m]).log()).sum())


def entropy(p: Tensor) -> float:
    """Entropy in nats of an (unnormalised) histogram."""
    p = p.double() / p.double().sum()
    p = p[p > 0]
    return max(0.0, float(-(p * p.log()).sum()))  # max: no "-0.0" for a single class


def classes_covered(hist: Tensor, prior: Tensor, threshold: float = 0.1) -> int:
    """Classes whose count reaches ``threshold`` x their expected count N * prior_k."""
    prior = prior.double() / prior.double().sum()
    expected = hist.sum().double() * prior
    return int(((hist.double() >= threshold * expected) & (hist > 0)).sum())


def mode_score(logits: Tensor, prior: Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y)) - KL(p(y) || p*(y))), p(y) the generated marginal, p* = ``prior``."""
    logp = logits.double().log_softmax(1)
    p = logp.exp()
    marg = p.mean(0)
    e_kl = float((p * (logp - marg.clamp_min(1e-300).log())).sum(1).mean())
    return math.exp(e_kl - kl_divergence(marg, prior.double()))


def coverage(pred: Tensor, logits: Optional[Tensor], prior: Tensor, threshold: float = 0.1) -> Dict[str, object]:
    """All coverage figures of one sample set (see the module docstring)."""
    k = prior.numel()
    hist = histogram(pred, k)
    out: Dict[str, object] = {
        "hist": hist.tolist(),
        "covered": classes_covered(hist, prior, threshold),
        "kl": kl_divergence(hist, prior),
        "entropy": entropy(hist),
    }
    if logits is not None:
        out["mode_score"] = mode_score(logits, prior)
    return out


def agreement(pred_a: Tensor, pred_b: Tensor) -> float:
    """Share of samples the two evaluators give the same class (nan for no samples)."""
    if pred_a.shape != pred_b.shape:
        raise ValueError(f"agreement of {tuple(pred_a.shape)} and {tuple(pred_b.shape)} predictions")
    if pred_a.numel() == 0:
        return math.nan
    return float((pred_a.cpu() == pred_b.cpu()).double().mean())


def total_variation(hist_a: Tensor, hist_b: Tensor) -> float:
    """TV distance 1/2 sum_k |p_k - q_k| of two (unnormalised) histograms."""
    p = hist_a.double() / hist_a.double().sum()
    q = hist_b.double() / hist_b.double().sum()
    return float(0.5 * (p - q).abs().sum())


@dataclass(frozen=True)
class Cloud:
    """An evaluator's class-conditional cloud of real features: class means, the shrunk pooled precision, and
    each class's radius (a squared Mahalanobis distance)."""

    mean: Tensor  # K x D float64
    precision: Tensor  # D x D float64
    radius: Tensor  # K float64

    def distance(self, features: Tensor, pred: Tensor) -> Tensor:
        """Squared Mahalanobis distance of each row to the mean of its predicted class."""
        d = features.double().cpu() - self.mean[pred.long().cpu()]
        return ((d @ self.precision) * d).sum(1)

    def inside(self, features: Tensor, pred: Tensor) -> Tensor:
        """Mask of the rows within their predicted class's radius."""
        return self.distance(features, pred) <= self.radius[pred.long().cpu()]


def class_cloud(
    features: Tensor,
    labels: Tensor,
    pred: Tensor,
    num_classes: int,
    shrink: float = CLOUD_SHRINK,
    q: float = CLOUD_QUANTILE,
) -> Cloud:
    """The cloud of real ``features``: class means and pooled within-class covariance from the true ``labels``,
    shrunk ``(1 - shrink) S + shrink tr(S)/D I``; radius of class k the ``q`` quantile of the distances of the
    rows the evaluator predicts k (``pred``) to class k's mean (no such row: the largest distance of all)."""
    f, y, p = features.double().cpu(), labels.long().cpu(), pred.long().cpu()
    k, dim = num_classes, f.shape[1]
    mean = torch.zeros(k, dim, dtype=torch.float64)
    for c in range(k):
        if bool((y == c).any()):
            mean[c] = f[y == c].mean(0)
    centred = f - mean[y]
    cov = centred.T @ centred / max(1, len(f) - k)
    cov = (1 - shrink) * cov + shrink * (cov.trace() / dim) * torch.eye(dim, dtype=torch.float64)
    cloud = Cloud(mean, torch.linalg.inv(cov), torch.zeros(k, dtype=torch.float64))
    dist = cloud.distance(f, p)
    radius = torch.stack([torch.quantile(dist[p == c], q) if bool((p == c).any()) else dist.max() for c in range(k)])
    return Cloud(mean, cloud.precision, radius)


def unreadable(conf_a: Tensor, conf_b: Tensor, tau_a: float, tau_b: float) -> Tensor:
    """Mask of the samples that neither evaluator reads with max probability >= its tau."""
    return (conf_a < tau_a) & (conf_b < tau_b)


def readable(
    logits_a: Tensor, logits_b: Tensor, tau_a: float, tau_b: float, cloud: Optional[Tuple[Tensor, Cloud]] = None
) -> Tensor:
    """Mask of the readable samples (the module docstring's rule): some evaluator reads the sample with max
    probability >= its tau and, with ``cloud`` (the primary's features of the samples, its class clouds), the
    primary's features lie inside the cloud of the class it predicts."""
    ca, ya = logits_a.softmax(1).max(1)
    cb = logits_b.softmax(1).max(1).values
    bad = unreadable(ca, cb.to(ca.device), tau_a, tau_b)
    if cloud is not None:
        bad = bad | ~cloud[1].inside(cloud[0], ya).to(bad.device)
    return ~bad


def cross_check(
    logits_a: Tensor,
    logits_b: Tensor,
    prior: Tensor,
    tau_a: float,
    tau_b: float,
    threshold: float = 0.1,
    cloud: Optional[Tuple[Tensor, Cloud]] = None,
    labels: Optional[Tensor] = None,
) -> Dict[str, object]:
    """The two-evaluator figures of one sample set: agreement, TV of class histograms (and whether it
    exceeds ``TV_BOUND``), unreadable share, classes covered over the readable samples (``labels``' classes,
    default the first evaluator's argmax). ``logits_a`` is the pinned primary evaluator's, ``logits_b`` the
    second's; ``cloud`` (the primary's features of the samples, its class clouds) adds the cloud test (None: max
    probability only)."""
    k = prior.numel()
    ya, yb = logits_a.softmax(1).max(1).indices, logits_b.softmax(1).max(1).indices
    ha, hb = histogram(ya, k), histogram(yb, k)
    tv = total_variation(ha, hb)
    bad = ~readable(logits_a, logits_b, tau_a, tau_b, cloud)
    readable_pred = (ya if labels is None else labels.to(ya.device))[~bad]
    return {
        "agreement": agreement(ya, yb),
        "tv": tv,
        "evaluator_dependent": bool(tv > TV_BOUND),
        "hist_second": hb.tolist(),
        "unreadable_share": float(bad.double().mean()) if len(bad) else math.nan,
        "covered_readable": classes_covered(histogram(readable_pred, k), prior, threshold) if len(readable_pred) else 0,
    }


def label_agreement(pred: Tensor, requested: Tensor) -> float:
    return float((pred.cpu() == requested.cpu()).double().mean())


def stacked_modes(digit_pred: Tensor, num_modes: int = 1000) -> Dict[str, object]:
    """digit_pred: N x 3 per-channel digit labels -> modes captured (of 1000) and KL(generated || uniform)."""
    code = digit_pred[:, 0].long() * 100 + digit_pred[:, 1].long() * 10 + digit_pred[:, 2].long()
    hist = histogram(code, num_modes)
    return {
        "modes": int((hist > 0).sum()),
        "kl": kl_divergence(hist, torch.ones(num_modes)),
    }

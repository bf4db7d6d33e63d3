"""The metrics: a registry, a context built from one ``Options``, one module per family, and the entry point.

    registry.py   ``Metric``, ``@metric``, ``METRICS``; dataset families and their default metrics
    context.py    ``Options`` (how a set is scored) and ``Context`` (what metrics read, computed once)
    fidelity.py   fid, kid, is, pr                  classes.py    coverage, conditional
    diversity.py  lpips (feat_div without AlexNet)  modes.py      modes, kl (stacked-mnist); modes, hq, rkl (2D)
    tsne.py       tsne (a PNG)                      dynamics.py   dynamics (runs only)
    dc.py         dc (density & coverage)           vendi.py      vendi (Vendi score)
    ndb.py        ndb (NDB / JS bins)
    checks.py     sample, metric-set and count checks, before any work
    identity.py   ``evaluator_info``: the evaluator named in every record
    evaluate.py   ``evaluate_samples`` (one sample set -> one record) and ``score``

A metric is one function registered in ``METRICS`` (``@metric("name", ...)``); it reads what it needs from the
lazily-filled ``Context`` and returns ``(scores, details)``: scores are named floats, details are lists/paths
kept beside them. Each metric declares the scores it writes, once, in its registration: ``@metric("fid", ...,
scores=(lower("fid", "FID", split=True),))`` (a ``ScoreSpec`` of ``benchmark.evaluation.scores``: base name,
direction, which protocol tags follow, label). The function names its scores with ``ctx.name("fid")``;
``score()`` refuses a name no declaration writes; the report and the gate read direction and base from
``benchmark.evaluation.scores``. Adding a metric is one registered function in its family's module (or a new
module imported below). A metric that reads features reads the one pass of the evaluator over the samples,
``ctx.features()`` (``.features`` N x D, ``.logits``), and the cached real reference, ``ctx.reference()``
(``.read.features``, ``.labels``): no metric extracts features of its own.

Score names fix their protocol (``<figure><N>[_<split>]``, see ``scores``). Real sets are ``min(N, len(split))``
samples of the split: the whole split, or below its size a seeded random subset (``reference.SUBSET``, named in
the record's ``reference``), never its first rows (stacked-mnist: a seeded set).

Registered metrics (``--metrics``) and the scores they write:

  image sets (mnist, fashion-mnist, digits), defaults: fid, kid, is, pr, coverage, lpips (+ conditional)
    fid          fid10k_test                          FID on the evaluator's features
    kid          kid10k_test, kid_std10k_test         KID (subsets of min(1000, N))
    is           is10k, is_std10k                     IS on the evaluator's logits (10 splits)
    pr           precision10k_test, recall10k_test    precision/recall (k = 3)
    coverage     classes_covered10k, class_kl10k, class_entropy10k, mode_score10k   (see coverage.py)
    conditional  label_agreement10k, intra_fid10k_test   (needs labels)
    lpips        lpips10k, lpips_real10k_test (+ lpips_class10k with labels)   (see diversity.py)
  stacked-mnist, defaults: modes, kl  (26,000 samples, VEEGAN/PacGAN protocol)
    modes        modes26k     (of 1000)          kl   kl26k   KL(generated || uniform over 1000)
  2D mixtures (ring8, grid25), defaults: modes, hq, rkl  (2,500 samples, PacGAN protocol; mixtures.py)
    modes        modes2500    hq   hq2500 (%)    rkl  rkl2500
  any image set (and stacked-mnist), opt-in (``--metrics dc,vendi,ndb``; no study's defaults change):
    dc           density10k_test, dcoverage10k_test   density & coverage (k = 5; also the 2D mixtures, on
                                                      the points themselves)
    vendi        vendi10k (+ vendi_class10k with labels)   Vendi score, cosine kernel on the features
    ndb          ndb10k_train, ndb_js10k_train   NDB / JS (K = 100 k-means bins of real training features)
    tsne         (a PNG; its path in details)
  runs only (``evaluate_run``), default there:
    dynamics     d_loss_var_last200, grad_norm_mean_last200, ... (see dynamics.py)

Every result names its evaluator: the feature extractor and its sha256, the classifier's sha256 and the
LPIPS backbone.
"""

from benchmark.evaluation.metrics import classes, dc, diversity, dynamics, fidelity, modes, ndb, tsne, vendi  # noqa: F401
from benchmark.evaluation.metrics.checks import check_samples, resolve_metrics, samples_needed
from benchmark.evaluation.metrics.classes import COVERAGE_THRESHOLD
from benchmark.evaluation.metrics.context import Context, Options
from benchmark.evaluation.metrics.evaluate import evaluate_samples, score
from benchmark.evaluation.metrics.identity import evaluator_info
from benchmark.evaluation.metrics.modes import STACKED_PROTOCOL
from benchmark.evaluation.metrics.registry import (
    DEFAULTS,
    METRICS,
    Details,
    Metric,
    Scores,
    default_metrics,
    family,
    metric,
    parse_metrics,
)
from benchmark.evaluation.scores import ScoreSpec, higher, lower, neutral, score_spec, tag

__all__ = [
    "COVERAGE_THRESHOLD",
    "Context",
    "DEFAULTS",
    "Details",
    "METRICS",
    "Metric",
    "Options",
    "STACKED_PROTOCOL",
    "ScoreSpec",
    "Scores",
    "check_samples",
    "default_metrics",
    "evaluate_samples",
    "evaluator_info",
    "family",
    "higher",
    "lower",
    "metric",
    "neutral",
    "parse_metrics",
    "resolve_metrics",
    "samples_needed",
    "score",
    "score_spec",
    "tag",
]

"""What a metric reads: the samples, the options of the evaluation (one frozen ``Options``), and everything
computed from them once, on demand.

Features and logits come from one pass per sample set and evaluator (``features``), the real side from the
cached reference of the split (``reference``): every metric that reads features or logits reads these, so
the generated samples are read once by the feature extractor (FID, KID, PR, IS; with the classifier, also
class coverage and t-SNE), once by the second evaluator (the cross-check and the readable share), and the
real split not at all once its reference is cached. A new metric that reads features (density/coverage,
Vendi, NDB) reads ``ctx.features().features`` and ``ctx.reference().read.features``; one that reads the
distances between the two (KID, precision/recall, density & coverage) reads ``ctx.pairwise()``.

A metric family computes what only it needs with ``ctx.shared(key, compute)``: once per context, whichever
of its metrics asks first (the stacked-mnist labels feed ``modes`` and ``kl``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, TypeVar

import torch
from torch import Tensor

from benchmark.data import dataset_info, load_dataset
from benchmark.evaluation import estimators as E
from benchmark.evaluation.classifier import cached_sha256, load_classifier, load_second, readable_tau, second_name
from benchmark.evaluation.coverage import CLOUD_SPLIT, Cloud
from benchmark.evaluation.features import FeatureSet, classifier_pass, inception_pass
from benchmark.evaluation.fidelity import INCEPTION, PREFIX, cache_root, inception_weights
from benchmark.evaluation.metrics.registry import family
from benchmark.evaluation.reference import Reference, class_counts, cloud, fact, reference_rows
from benchmark.evaluation.reference import reference as load_reference
from benchmark.evaluation.scores import score_spec, tag

T = TypeVar("T")


_REAL_SIDE: Dict[Tuple[str, ...], Any] = {}  # statistics of a real set, per process: ``real_side``
_REAL_SIDE_KEEP = 16


def real_side(what: str, rows: Tensor, compute: Callable[[], T], *key: object) -> T:
    """``compute()`` of a statistic of real rows (``what``: its name; ``key``: whatever else it depends on), once
    per process for the same rows: a study trial scores 8 points against the same real set, and its real-side
    statistics (feature diversity, density & coverage's radii) are the same at each. Keyed by the rows' bytes,
    not their name, so another data root cannot be taken for it; the oldest of ``_REAL_SIDE_KEEP`` is dropped."""
    k = (what, hashlib.sha1(rows.detach().cpu().contiguous().numpy().tobytes()).hexdigest(), *map(str, key))
    if k not in _REAL_SIDE:
        if len(_REAL_SIDE) >= _REAL_SIDE_KEEP:
            _REAL_SIDE.pop(next(iter(_REAL_SIDE)))
        _REAL_SIDE[k] = compute()
    return _REAL_SIDE[k]


@dataclass(frozen=True)
class Options:
    """How one sample set is scored (``evaluate_samples``'s arguments, checked there)."""

    dataset: str
    split: str = "test"  # the real split compared with
    data_root: Optional[str] = None
    extractor: str = "classifier"  # the feature extractor of FID/KID/PR/IS (fidelity.EXTRACTORS)
    device: str | torch.device = "cpu"
    cache_root: Optional[str | Path] = None  # the reference cache (fidelity.cache_root)
    progress: bool = False
    seed: int = 0  # the seed of every random choice a metric makes (pairs, t-SNE points)
    tsne_path: Optional[str | Path] = None
    run_dir: Optional[str | Path] = None  # a run's folder: the training log of 'dynamics'
    step: Optional[int] = None
    num_samples: Optional[int] = None  # score the first ones only (protocol metrics read their own count)


class Context:
    def __init__(self, x: Tensor, y: Optional[Tensor], opts: Options):
        # protocol metrics (stacked, mixtures) read the first samples of x_full; the others the first n
        n = len(x) if opts.num_samples is None else min(opts.num_samples, len(x))
        self.opts = opts
        self.x_full, self.x = x, x[:n]
        self.y = None if y is None else y[:n]
        self.dataset, self.split, self.seed = opts.dataset, opts.split, opts.seed
        self.device = torch.device(opts.device)
        self.shape, self.num_classes, self.kind = dataset_info(opts.dataset)
        self.family = family(opts.dataset)
        self.n = n
        self.t = tag(n)
        self._shared: Dict[str, Any] = {}

    def name(self, base: str, n: Optional[int] = None) -> str:
        """The declared score ``base`` under this context's protocol (``n`` for fixed-count protocols)."""
        return score_spec(base).name(self.n if n is None else n, self.split)

    def shared(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()``, once per context: what several metrics of a family read."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

    # ---- real data -----------------------------------------------------------------------------
    @cached_property
    def cache_dir(self) -> Path:
        """Where references and facts are cached (``fidelity.cache_root``)."""
        return cache_root(self.opts.cache_root) / "fidelity"

    def real_dataset(self, split: Optional[str] = None):
        if split in (None, self.split):
            return self.real
        return load_dataset(self.dataset, root=self.opts.data_root, split=split)

    @cached_property
    def real(self):
        return load_dataset(self.dataset, root=self.opts.data_root, split=self.split)

    def split_size(self, split: Optional[str] = None) -> int:
        """The number of images in ``split`` (default: the context's), from the dataset's facts."""
        s = split or self.split
        ok = lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0  # noqa: E731
        return fact(self.cache_dir, self.dataset, f"split_size/{s}", lambda: len(self.real_dataset(s)), ok)

    def n_real(self) -> int:
        if self.family == "stacked":
            return self.n
        return min(self.n, self.split_size())

    def real_images(self, n: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        """The real side of the comparison: ``n`` (default ``n_real()``) images of the split and their labels, the
        rows ``reference.reference_rows`` names (a seeded random subset below the split's size, never its first
        rows); stacked-mnist and the 2D mixtures draw a seeded set of their own (``Dataset.reference``)."""
        n = self.n_real() if n is None else n
        if self.family != "image":
            x, y = self.real.reference(n)
        else:
            rows = reference_rows(len(self.real), n).to(self.real.images.device)
            x, y = self.real.images.index_select(0, rows), self.real.labels.index_select(0, rows)
        return x.cpu(), y.cpu()

    @cached_property
    def train_prior(self) -> Tensor:
        """Class shares of the training labels (uniform for stacked/points: their modes are equiprobable)."""
        k = self.num_classes
        if self.family != "image":
            return torch.ones(k, dtype=torch.float64)

        def ok(v: object) -> bool:
            return isinstance(v, list) and len(v) == k and all(type(c) is int and c >= 0 for c in v) and sum(v) > 0

        counts = fact(
            self.cache_dir,
            self.dataset,
            "train_class_counts",
            lambda: class_counts(self.real_dataset("train").labels, k),
            ok,
        )
        return torch.tensor(counts, dtype=torch.float64)

    # ---- the evaluators: one pass each over the generated samples, and the cached reference -----------
    @cached_property
    def classifier(self):
        return load_classifier(self.dataset, device=self.device)

    @cached_property
    def second(self):
        """The independent second evaluator (classifier.SECOND) and its sha256."""
        return load_second(self.dataset, device=self.device)

    def _reader(self, evaluator: str) -> Tuple[Callable[[Tensor], FeatureSet], str]:
        """(read images -> FeatureSet, sha256) of ``evaluator``: 'classifier', 'second' or 'inception-v3-compat'."""
        progress = self.opts.progress
        if evaluator == "classifier":
            model, sha = self.classifier
            stacked = self.family == "stacked"
            return lambda x: classifier_pass(model, x, stacked, PREFIX + self.dataset, progress), sha
        if evaluator == "second":
            model, sha = self.second
            return lambda x: classifier_pass(model, x, False, PREFIX + second_name(self.dataset), progress), sha
        if evaluator == INCEPTION:
            weights = inception_weights()
            return lambda x: inception_pass(x, str(weights), self.device, progress), cached_sha256(weights)
        raise ValueError(f"unknown evaluator '{evaluator}'")

    def features(self, evaluator: Optional[str] = None) -> FeatureSet:
        """``evaluator``'s one pass over the generated samples (default: the feature extractor of the options)."""
        ev = evaluator or self.opts.extractor
        return self.shared(f"features/{ev}", lambda: self._reader(ev)[0](self.x))

    def reference(self, evaluator: Optional[str] = None, n: Optional[int] = None) -> Reference:
        """The real reference of ``n`` images (default ``n_real()``) of the split under ``evaluator``, cached."""
        ev = evaluator or self.opts.extractor
        n = self.n_real() if n is None else n

        def compute() -> Reference:
            read, sha = self._reader(ev)
            images = lambda: read(self.real_images(n)[0])  # noqa: E731
            labels = lambda: self.real_images(n)[1]  # noqa: E731
            return load_reference(self.dataset, self.split, n, sha, images, labels, self.cache_dir)

        return self.shared(f"reference/{ev}/{n}", compute)

    def pairwise(self) -> Optional[E.Pairwise]:
        """The distances between the extractor's features of the samples and of the reference, computed once per
        evaluation and read by KID, precision/recall and density & coverage; None above ``E.PR_BATCH`` rows a
        side (there each estimator walks its own blocks and no whole matrix is held), and for the 2D mixtures, whose
        metrics read the points themselves, not an extractor's features."""
        if self.family == "points":
            return None
        gen, real = self.features().features, self.reference().read.features
        if not E.Pairwise.fits(len(gen), len(real)):
            return None
        return self.shared("pairwise", lambda: E.Pairwise(gen, real))

    @property
    def gen_outputs(self) -> Tuple[Tensor, Tensor]:
        """(features, logits) of the generated samples read by the classifier (image family)."""
        f = self.features("classifier")
        return f.features, f.logits

    @property
    def gen_outputs_second(self) -> Tuple[Tensor, Tensor]:
        f = self.features("second")
        return f.features, f.logits

    @cached_property
    def readable_taus(self) -> Tuple[float, float]:
        return readable_tau(self.dataset), readable_tau(second_name(self.dataset))

    def cloud(self, evaluator: str) -> Cloud:
        """``evaluator``'s class clouds of the whole real test split (the readable share), cached with its reference."""

        def compute() -> Cloud:
            read, sha = self._reader(evaluator)

            def test_reference() -> Reference:
                test = self.real_dataset(CLOUD_SPLIT)
                n = len(test)
                images = lambda: read(test.images.cpu())  # noqa: E731  (reference_rows: the whole split, in order)
                labels = lambda: test.labels.cpu()  # noqa: E731
                return load_reference(self.dataset, CLOUD_SPLIT, n, sha, images, labels, self.cache_dir)

            return cloud(self.dataset, sha, self.num_classes, test_reference, self.cache_dir)

        return self.shared(f"cloud/{evaluator}", compute)

    @property
    def real_outputs(self) -> Tuple[Tensor, Tensor]:
        r = self.reference("classifier").read
        return r.features, r.logits

"""What a metric reads: the samples, the options of the evaluation (one frozen ``Options``), and everything
computed from them once, on demand (the real split, the classifiers and their outputs).

A metric family computes what only it needs with ``ctx.shared(key, compute)``: once per context, whichever
of its metrics asks first (the stacked-mnist labels feed ``modes`` and ``kl``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, TypeVar

import torch
from torch import Tensor

from benchmark.data import dataset_info, load_dataset
from benchmark.evaluation.classifier import classify, load_classifier, load_second, readable_tau, second_name
from benchmark.evaluation.metrics.registry import family
from benchmark.evaluation.scores import score_spec, tag

T = TypeVar("T")


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
    fidelity: Tuple[str, ...] = ()  # torch-fidelity metrics wanted by the metrics scored (fid, kid, isc, prc)
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
    def real_dataset(self, split: Optional[str] = None):
        return load_dataset(self.dataset, root=self.opts.data_root, split=split or self.split)

    @cached_property
    def real(self):
        return self.real_dataset()

    def n_real(self) -> int:
        if self.family == "stacked":
            return self.n
        return min(self.n, len(self.real))

    def real_images(self, n: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        x, y = self.real.reference(n if n is not None else self.n_real())
        return x.cpu(), y.cpu()

    @cached_property
    def train_prior(self) -> Tensor:
        """Class shares of the training labels (uniform for stacked/points: their modes are equiprobable)."""
        if self.family != "image":
            return torch.ones(self.num_classes, dtype=torch.float64)
        labels = self.real_dataset("train").labels.cpu()
        return torch.bincount(labels, minlength=self.num_classes).double()

    # ---- the classifiers -------------------------------------------------------------------------
    @cached_property
    def classifier(self):
        return load_classifier(self.dataset, device=self.device)

    @cached_property
    def gen_outputs(self) -> Tuple[Tensor, Tensor]:
        """(features, logits) of the generated samples (image family)."""
        return classify(self.classifier[0], self.x, progress=self.opts.progress, desc="classifying samples")

    @cached_property
    def second(self):
        """The independent second evaluator (classifier.SECOND) and its sha256."""
        return load_second(self.dataset, device=self.device)

    @cached_property
    def gen_outputs_second(self) -> Tuple[Tensor, Tensor]:
        return classify(self.second[0], self.x, progress=self.opts.progress, desc="classifying samples (2nd)")

    @cached_property
    def readable_taus(self) -> Tuple[float, float]:
        return readable_tau(self.dataset), readable_tau(second_name(self.dataset))

    @cached_property
    def real_outputs(self) -> Tuple[Tensor, Tensor]:
        return classify(self.classifier[0], self.real_images()[0], progress=self.opts.progress, desc="classifying real")

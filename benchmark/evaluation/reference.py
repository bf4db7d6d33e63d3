"""The real side of every comparison, computed once and cached: a split's reference set read by an evaluator,
with the statistics that depend on nothing else, and two facts of the dataset.

A reference is ``n`` images of a split (``reference_rows``: the whole split when ``n`` is at least its size,
else a seeded random ``n`` of it, the same for every run, metric and cache; stacked-mnist: its seeded set of
``n``), read by one evaluator (features.py). Not the first ``n``: the test files are ordered (MNIST's by writer
group), and 3,000 real training digits score FID 18.2 against MNIST test[:3000], 7.4 against its subset (README).
Its cache entry is keyed by what determines it, and only that: the dataset, the split, ``n``, the subset rule
(``SUBSET``) and the evaluator's sha256 (``ganbench-<dataset>-<split>-n<n>-<SUBSET>-<sha256[:16]>-reference.pt``
under ``cache_root()/fidelity``; the datasets' files are pinned by their checksums, data.py). It holds the features,
logits and labels, FID's Gaussian (with its root), and precision/recall's k-NN radii. KID's real-real kernel
sums also depend on the subsets drawn, hence on the generated count: one small entry per (n_gen, subset size).

Entries are written atomically and read with ``torch.load(weights_only=True)`` (tensors, nothing unpickled);
an entry that does not hold what its name says (another n, another sha256, an old layout) is recomputed.

``cloud`` keeps an evaluator's class clouds of the real test features (``coverage.Cloud``: the readable share's
second test) beside the test split's whole reference, keyed by the dataset, the evaluator's sha256 and the rule with
its constants (``coverage.CLOUD_RULE``): ``ganbench-<dataset>-test-cloud-<CLOUD_RULE>-<sha256[:16]>.pt``.

``facts`` keeps a split's length and the training labels' class counts (``ganbench-<dataset>-facts.json``), so
that a warm evaluation reads no dataset file at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import Tensor

from benchmark import io
from benchmark.evaluation import estimators as E
from benchmark.evaluation.coverage import CLOUD_QUANTILE, CLOUD_RULE, CLOUD_SHRINK, CLOUD_SPLIT, Cloud, class_cloud
from benchmark.evaluation.features import FeatureSet

LAYOUT = 1  # bump when an entry's contents change meaning
REFERENCE_SEED = 0  # the seed of a split's reference subset: one subset per (split, n), whoever asks
SUBSET = f"random-s{REFERENCE_SEED}"  # the subset rule, named in every score record and cache key


def reference_rows(size: int, n: int, seed: int = REFERENCE_SEED) -> Tensor:
    """The rows (int64, ascending) of a split of ``size`` rows that a reference of ``n`` holds: every row when
    ``n >= size``; else ``n`` rows drawn without replacement, the first ``n`` of ``torch.randperm(size)`` under a
    generator seeded with ``seed``. The subsets of one split are nested (that of 3,000 lies in that of 5,000)."""
    if n >= size:
        return torch.arange(size)
    perm = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    return perm[:n].sort().values


@dataclass(frozen=True)
class Reference:
    """A real reference set under one evaluator, with its cached statistics."""

    dataset: str
    split: str
    n: int
    sha256: str
    read: FeatureSet
    labels: Tensor
    fid: E.Gaussian
    radii: Tensor  # precision/recall's k-NN radii (k = estimators.PR_NEIGHBOURS)
    path: Optional[Path] = None  # the cache entry (None: not cached)

    def kid_real_sums(self, n_gen: int, size: int) -> Tensor:
        """The real-real kernel sums of KID's subsets for ``n_gen`` generated samples (cached beside the entry)."""
        _, idx_r = E.kid_subsets(n_gen, self.n, size)
        if self.path is None:
            return E.kid_real_sums(self.read.features, idx_r)
        p = self.path.with_name(self.path.name.replace("-reference.pt", f"-kid-g{n_gen}-m{size}.pt"))
        key = {"layout": LAYOUT, "n": self.n, "subset": SUBSET, "sha256": self.sha256, "n_gen": n_gen, "size": size}
        blob = _load(p)
        if (
            isinstance(blob, dict)
            and blob.get("key") == key
            and getattr(blob.get("sums"), "shape", None) == (len(idx_r),)
        ):
            return blob["sums"]
        sums = E.kid_real_sums(self.read.features, idx_r)
        _save(p, {"key": key, "sums": sums})
        return sums


def entry_name(dataset: str, split: str, n: int, sha256: str) -> str:
    return f"ganbench-{dataset}-{split}-n{n}-{SUBSET}-{sha256[:16]}-reference.pt"


def _load(path: Path) -> Optional[Dict[str, Any]]:
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged or foreign file: recomputed and replaced
        return None


def _save(path: Path, blob: Dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(path) as tmp:
        torch.save(blob, tmp)


def _holds(blob: Optional[Dict[str, Any]], key: Dict[str, Any], n: int) -> bool:
    """Whether a loaded entry is the one asked for: its key, and n rows in each per-image tensor."""
    if not isinstance(blob, dict) or blob.get("key") != key:
        return False
    try:
        rows = [blob[k].shape[0] for k in ("features", "logits", "labels", "radii")]
        return rows == [n] * 4 and all(isinstance(blob[k], Tensor) for k in ("mu", "sigma", "root"))
    except (KeyError, AttributeError, IndexError):
        return False


def reference(
    dataset: str,
    split: str,
    n: int,
    sha256: str,
    read_images: Callable[[], FeatureSet],
    labels: Callable[[], Tensor],
    cache_dir: Optional[Path],
) -> Reference:
    """The reference of ``n`` real images of ``split`` (the rows ``reference_rows`` names): from the cache,
    else ``read_images()`` (the evaluator's pass over them) and ``labels()``, then cached. ``cache_dir`` None: computed, not cached."""
    path = cache_dir / entry_name(dataset, split, n, sha256) if cache_dir is not None else None
    key = {"layout": LAYOUT, "dataset": dataset, "split": split, "n": n, "subset": SUBSET, "sha256": sha256}
    blob = _load(path) if path is not None else None
    if not _holds(blob, key, n):
        read = read_images()
        if len(read) != n:
            raise RuntimeError(f"reference of {dataset}/{split}: {len(read)} images read, {n} expected")
        g = E.gaussian(read.features, with_root=True)
        blob = {
            "key": key,
            "features": read.features,
            "logits": read.logits,
            "labels": labels(),
            "mu": g.mu,
            "sigma": g.sigma,
            "root": g.root,
            "radii": E.knn_radii(read.features),
        }
        if path is not None:
            _save(path, blob)
    return Reference(
        dataset,
        split,
        n,
        sha256,
        FeatureSet(blob["features"], blob["logits"]),
        blob["labels"],
        E.Gaussian(blob["mu"], blob["sigma"], blob["root"]),
        blob["radii"],
        path,
    )


def cloud(
    dataset: str, sha256: str, num_classes: int, test_reference: Callable[[], Reference], cache_dir: Optional[Path]
) -> Cloud:
    """The evaluator's class clouds of the real ``CLOUD_SPLIT`` features: from the cache, else from
    ``test_reference()`` (the whole split's reference under that evaluator), then cached."""
    path = cache_dir / f"ganbench-{dataset}-{CLOUD_SPLIT}-cloud-{CLOUD_RULE}-{sha256[:16]}.pt" if cache_dir else None
    key = {"layout": LAYOUT, "dataset": dataset, "split": CLOUD_SPLIT, "rule": CLOUD_RULE, "sha256": sha256}
    key.update(shrink=CLOUD_SHRINK, quantile=CLOUD_QUANTILE, classes=num_classes)
    blob = _load(path) if path is not None else None
    try:
        if isinstance(blob, dict) and blob.get("key") == key and blob["radius"].shape == (num_classes,):
            return Cloud(blob["mean"], blob["precision"], blob["radius"])
    except (KeyError, AttributeError):
        pass
    ref = test_reference()
    c = class_cloud(ref.read.features, ref.labels, ref.read.logits.argmax(1), num_classes)
    if path is not None:
        _save(path, {"key": key, "mean": c.mean, "precision": c.precision, "radius": c.radius})
    return c


# ------------------------------------------------------------------------------------------------
# facts of a dataset


def facts_path(cache_dir: Path, dataset: str) -> Path:
    return cache_dir / f"ganbench-{dataset}-facts.json"


def fact(
    cache_dir: Optional[Path], dataset: str, key: str, compute: Callable[[], Any], valid: Callable[[Any], bool]
) -> Any:
    """A fact of ``dataset`` (``split_size/<split>``, ``train_class_counts``): from the facts file when it holds
    a ``valid`` one, else computed and added to it."""
    if cache_dir is None:
        return compute()
    path = facts_path(cache_dir, dataset)
    try:
        known: Dict[str, Any] = io.read_json(path) if path.is_file() else {}
    except Exception:  # a damaged file: rebuilt
        known = {}
    if not isinstance(known, dict):
        known = {}
    if key not in known or known.get("layout") != LAYOUT or not valid(known[key]):
        if known.get("layout") != LAYOUT:
            known = {"layout": LAYOUT}
        known[key] = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        io.write_json(path, known)
    return known[key]


def class_counts(labels: Tensor, num_classes: int) -> List[int]:
    return torch.bincount(labels.cpu(), minlength=num_classes).tolist()

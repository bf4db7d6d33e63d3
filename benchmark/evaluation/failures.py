"""Known failures: sample sets of generators that learned nothing (or collapsed), scored like any generator's.

A metric that cannot tell real data from these decides nothing, and a generator that does not beat them has not
learned (the study page's learned gate). Each failure is one registered function of the dataset, the sample count
and a seed (``(dataset, n, seed, data_root) -> samples``, float in [-1, 1] like a generator's), seeded, so that a
test and a page score the very same sets::

    @failure("uniform", families=("image",), label="uniform noise")
    def uniform(dataset, n, seed, data_root=None): ...

Registered (``FAILURES``; ``gate``: a generator that learned nothing, which an arm must beat to count as learned;
the others are partial collapses, which a metric must tell from real data but an arm need not beat):

  image (mnist, fashion-mnist, digits)
    uniform        uniform noise               i.i.d. U[-1, 1] pixels                                  gate
    blank          blank images                every pixel at the background (-1)                      gate
    one_image      one real image repeated     one training image (seeded), n times                    gate
    one_class      one class only              training images of one class (seeded), cycled
    half_classes   half the classes            training images of K // 2 classes (seeded), shuffled
  2D mixtures (ring8, grid25)
    uniform_box    uniform over the data's box the means' bounding box widened on each side by half
                                               the smallest distance between two means
                                               (grid25: [-5, 5]²; ring8: [-1.38, 1.38]²)           gate
    uniform_ring   uniform on the ring         ring8 only: angle uniform, radius of the ring            gate
    wide_modes     the mode centres at 10× the std    the mixture with 10 times its std                 gate
  stacked-mnist
    blank_channels     blank channels          every channel at the background                         gate
    uniform_channels   uniform channels        i.i.d. U[-1, 1] in every channel                         gate
    one_triple         one digit triple repeated   one training triple (seeded), n times                gate

``separates(real, failure, direction)`` is the one validity check (does a score rank real data ahead of a
failure in its declared direction?); ``score_sets`` scores real training data and every failure of a dataset
under one protocol; ``python -m benchmark.evaluation.failures`` prints the table of which score separates which
failure (the README's).
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from benchmark.data import dataset_info, load_dataset
from benchmark.evaluation.metrics import METRICS, evaluate_samples, family, samples_needed
from benchmark.evaluation.metrics.registry import DEFAULT, expand_default
from benchmark.evaluation.scores import direction
from benchmark.registry import Registry

FAILURES = Registry("failure set")
SEED = 0  # the seed of every failure row a page or a test scores
WIDE = 10.0  # wide_modes: the mixture's std times this
REAL = "real"  # the name of the real-data set in score_sets' result
_ORDER: List[str] = []  # registration order (the registry lists names sorted): the order of a page's rows

Generate = Callable[..., Tensor]


@dataclass(frozen=True)
class Failure:
    name: str
    label: str  # for people: "uniform noise"; the page's row and its "does not separate ..." text
    families: Tuple[str, ...]  # image | stacked | points
    fn: Generate  # (dataset, n, seed, data_root=None) -> n samples, float in [-1, 1] (points: any floats)
    datasets: Tuple[str, ...] = ()  # only these datasets of its families (empty: all)
    gate: bool = True  # a generator that learned nothing: an arm must beat it to count as learned
    version: int = 1  # part of the cache key of a scored row: bump it when the set changes

    def applies(self, dataset: str) -> bool:
        return family(dataset) in self.families and (not self.datasets or dataset in self.datasets)

    def samples(self, dataset: str, n: int, seed: int = SEED, data_root: Optional[str] = None) -> Tensor:
        return self.fn(dataset, n, seed, data_root=data_root)


def failure(name: str, families: Sequence[str], label: str, **kw) -> Callable[[Generate], Generate]:
    """Register ``fn(dataset, n, seed, data_root=None) -> samples`` as failure set ``name``."""

    def deco(fn: Generate) -> Generate:
        FAILURES.register(name)(Failure(name, label, tuple(families), fn, **kw))
        _ORDER.append(name)
        return fn

    return deco


def for_dataset(dataset: str) -> List[Failure]:
    """The failures that apply to ``dataset``, in registration order."""
    return [f for f in map(FAILURES.get, _ORDER) if f.applies(dataset)]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@functools.lru_cache(maxsize=1)
def train_set(dataset: str, data_root: Optional[str] = None):
    """The training split the image failures draw from (the last one loaded is kept: a page or a table scores
    several failures of one dataset, and MNIST takes seconds to load)."""
    return load_dataset(dataset, root=data_root, split="train")


_train = train_set


def _cycled(idx: Tensor, n: int) -> Tensor:
    """``idx`` repeated until it holds ``n`` entries (each entry once before any twice)."""
    return idx.repeat(math.ceil(n / max(1, len(idx))))[:n]


# ------------------------------------------------------------------------------------------------
# images


@failure("uniform", ("image",), "uniform noise")
def uniform(dataset: str, n: int, seed: int, data_root: Optional[str] = None) -> Tensor:
    shape, _, _ = dataset_info(dataset)
    return torch.rand((n, *shape), generator=_gen(seed)) * 2 - 1


@failure("blank", ("image",), "blank images")
def blank(dataset: str, n: int, seed: int, data_root: Optional[str] = None) -> Tensor:
    shape, _, _ = dataset_info(dataset)
    return torch.full((n, *shape), -1.0)


@failure("one_image", ("image",), "one real image repeated")
def one_image(dataset: str, n: int, seed: int, data_root: Optional[str] = None) -> Tensor:
    d = _train(dataset, data_root)
    i = int(torch.randint(len(d), (1,), generator=_gen(seed)))
    return d.images[i : i + 1].cpu().expand(n, *d.images.shape[1:]).clone()


def _of_classes(dataset: str, n: int, seed: int, k: int, data_root: Optional[str]) -> Tensor:
    """Training images of ``k`` classes drawn with ``seed``, shuffled, cycled to ``n``."""
    d = _train(dataset, data_root)
    g = _gen(seed)
    classes = torch.randperm(d.num_classes, generator=g)[:k]
    labels = d.labels.cpu()
    pool = torch.nonzero(torch.isin(labels, classes)).flatten()
    pool = pool[torch.randperm(len(pool), generator=g)]
    return d.images.cpu()[_cycled(pool, n)]


@failure("one_class", ("image",), "one class only", gate=False)
def one_class(dataset: str, n: int, seed: int, data_root: Optional[str] = None) -> Tensor:
    return _of_classes(dataset, n, seed, 1, data_root)


@failure("half_classes", ("image",), "half the classes", gate=False)
def half_classes(dataset: str, n: int, seed: int, data_root: Optional[str] = None) -> Tensor:
    _, k, _ = dataset_info(dataset)
    return _of_classes(dataset, n, seed, k // 2, data_root)


# ------------------------------------------------------------------------------------------------
# 2D mixtures


def _mixture(dataset: str):
    return load_dataset(dataset, split="train")


def data_box(dataset: str) -> Tuple[float, float, float, float]:
    """(x0, x1, y0, y1): the means' bounding box widened on each side by half the smallest distance between two
    means (grid25: [-5, 5]², the square whose cells are the modes' own)."""
    mu = _mixture(dataset).means.double().cpu()
    d = torch.cdist(mu, mu)
    pad = float(d[d > 0].min()) / 2
    lo, hi = mu.min(0).values - pad, mu.max(0).values + pad
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


@failure("uniform_box", ("points",), "uniform over the data's box")
def uniform_box(dataset: str, n: int, seed: int, data_root: Optional[str] = None) -> Tensor:
    x0, x1, y0, y1 = data_box(dataset)
    u = torch.rand((n, 2), generator=_gen(seed), dtype=torch.float64)
    return torch.stack([x0 + (x1 - x0) * u[:, 0], y0 + (y1 - y0) * u[:, 1]], 1).float()


@failure("uniform_ring", ("points",), "uniform on the ring", datasets=("ring8",))
def uniform_ring(dataset: str, n: int, seed: int, data_root: Optional[str] = None) -> Tensor:
    radius = float(_mixture(dataset).means.double().norm(dim=1).mean())
    a = torch.rand(n, generator=_gen(seed), dtype=torch.float64) * (2 * math.pi)
    return (radius * torch.stack([a.cos(), a.sin()], 1)).float()


@failure("wide_modes", ("points",), f"the mode centres at {WIDE:g}× the std")
def wide_modes(dataset: str, n: int, seed: int, data_root: Optional[str] = None) -> Tensor:
    d = _mixture(dataset)
    g = _gen(seed)
    k = torch.randint(d.means.shape[0], (n,), generator=g)
    return d.means.cpu()[k] + WIDE * d.std * torch.randn(n, 2, generator=g)


# ------------------------------------------------------------------------------------------------
# stacked-mnist


@failure("blank_channels", ("stacked",), "blank channels")
def blank_channels(dataset: str, n: int, seed: int, data_root: Optional[str] = None) -> Tensor:
    return blank(dataset, n, seed)


@failure("uniform_channels", ("stacked",), "uniform channels")
def uniform_channels(dataset: str, n: int, seed: int, data_root: Optional[str] = None) -> Tensor:
    return uniform(dataset, n, seed)


@failure("one_triple", ("stacked",), "one digit triple repeated")
def one_triple(dataset: str, n: int, seed: int, data_root: Optional[str] = None) -> Tensor:
    x, _ = _train(dataset, data_root).reference(1, seed=seed)
    return x.cpu().expand(n, *x.shape[1:]).clone()


# ------------------------------------------------------------------------------------------------
# the validity check, and the table of it


def separates(real: float, fail: float, better: int) -> Optional[bool]:
    """Does a score rank real data strictly ahead of a failure in its declared direction (``better``: +1 higher
    is better, -1 lower)? None when it cannot say: no direction, or a NaN on either side (an ∞ ranks: a failure
    at ∞ of a lower-is-better score is separated from a finite real value)."""
    if better == 0 or real != real or fail != fail:
        return None
    return bool(better * (real - fail) > 0)


def scored_metrics(dataset: str, metrics: Optional[Sequence[str]] = None) -> List[str]:
    """The metrics (of ``metrics``, else the dataset's defaults) that score a sample set alone: no labels, no run,
    no figure."""
    fam = family(dataset)
    out = []
    for m in expand_default(metrics or [DEFAULT], dataset):  # a study's [default, dc]: both
        spec = METRICS.get(m)
        if fam in spec.families and not spec.needs_labels and not spec.needs_run and m != "tsne":
            out.append(m)
    return out


def score_sets(
    dataset: str,
    metrics: Sequence[str],
    n: int,
    split: str = "test",
    data_root: Optional[str] = None,
    seed: int = SEED,
) -> Dict[str, Dict[str, float]]:
    """{REAL or failure name: scores}: real training data and every failure of ``dataset``, each scored against
    the real ``split`` under one protocol (``metrics``, ``n`` samples), as a study page scores them."""
    need = samples_needed(dataset, metrics, n)
    x, _ = _train(dataset, data_root).reference(need)
    sets = {REAL: x.cpu()}
    sets.update({f.name: f.samples(dataset, need, seed, data_root) for f in for_dataset(dataset)})
    return {
        k: evaluate_samples(v, None, dataset, list(metrics), split, data_root, num_samples=n)["metrics"]
        for k, v in sets.items()
    }


def validity_markdown(dataset: str, rows: Dict[str, Dict[str, float]]) -> str:
    """The table of which score (rows) separates which failure (columns): ✓ / ✗ with the failure's value, the
    real-data value beside the score's name; scores without a direction are left out."""
    fails = [f for f in for_dataset(dataset) if f.name in rows]
    names = [m for m in rows[REAL] if direction(m) != 0]
    head = f"| {dataset}: score (real data) | " + " | ".join(f.label for f in fails) + " |"
    lines = [head, "| --- |" + " :---: |" * len(fails)]
    for m in names:
        real = rows[REAL][m]
        cells = []
        for f in fails:
            v = rows[f.name].get(m, math.nan)
            ok = separates(real, v, direction(m))
            cells.append(f"{'–' if ok is None else '✓' if ok else '✗'} {_num(v)}")
        arrow = "↑" if direction(m) > 0 else "↓"
        lines.append(f"| {m} {arrow} ({_num(real)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _num(x: float) -> str:
    if x != x:
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    mag = abs(x)
    return f"{x:.{0 if mag >= 100 else 1 if mag >= 10 else 2 if mag >= 1 else 3}f}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmark.evaluation.failures",
        description="Score real training data and every known failure of a dataset under one protocol; print "
        "which score separates which failure (a Markdown table).",
    )
    p.add_argument("--dataset", action="append", required=True, help="dataset (repeat for several)")
    p.add_argument("--num-samples", type=int, default=2000, help="samples per set (protocol metrics: their own)")
    p.add_argument("--metrics", default=None, help="comma-separated metrics (default: the dataset's)")
    p.add_argument("--split", default="test")
    p.add_argument("--data-root", default=None)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    for ds in a.dataset:
        metrics = scored_metrics(ds, a.metrics.split(",") if a.metrics else None)
        rows = score_sets(ds, metrics, a.num_samples, a.split, a.data_root)
        print(validity_markdown(ds, rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "FAILURES",
    "Failure",
    "REAL",
    "SEED",
    "data_box",
    "failure",
    "for_dataset",
    "score_sets",
    "scored_metrics",
    "separates",
    "train_set",
    "validity_markdown",
]

"""The class-magnet check (issue 20, item 6): is the primary evaluator's class histogram on generated digits no
farther (total variation) from independent classifiers than they are from each other?

Readers of each sample set:

* ``primary``  the pinned CNN's argmax (weights/mnist.pt), what ``classes_covered`` and ``class_kl`` read
* ``second``   the pinned independent MLP (weights/mnist-mlp.pt: another family, seed and augmentation)
* ``lenet``    a third classifier trained here: LeNet-5-shaped (5x5 convs, no batch norm, no noise push, no
               corruptions, integer shifts only), its own seed; deterministic, cached under the ganbench cache
* ``cnn2``     a fourth trained here: the project's CNN family and robustness recipe (corruptions, noise push),
               another shape (two conv stages of 32 and 64, a hidden layer of 96) and seed (3), 3 epochs
* ``knn``      5 nearest training digits in pixel space (nothing learned, nothing seeded)

and any combination under test (``combined``: classes from the averaged probabilities of primary and second).
A reading *holds* on a set when its largest TV to a reader of ``REFERENCE`` (lenet, cnn2, knn: independent of both
pinned evaluators) is at most the largest TV between two of them, and its mean TV to them at most their mean
pairwise TV (``check``). Run on real
test digits too (all readers should agree there)::

    python -m benchmark.evaluation.magnet --data-root ../shared/data --run RUN_DIR[:STEP] ... --num-samples 5000
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from benchmark import io
from benchmark.data import load_dataset
from benchmark.evaluation.classifier import Arch, load_classifier, load_second, train_classifier
from benchmark.evaluation.coverage import class_probs, histogram, total_variation
from benchmark.evaluation.features import classifier_pass, to_uint8
from benchmark.paths import cache_root

LENET_SEED = 2
LENET_EPOCHS = 3
KNN_K = 5
INDEPENDENT = ("second", "lenet", "cnn2", "knn")
CNN2 = Arch(size=28, widths=(32, 64), feature_dim=96, seed=3, epochs=3, batch_size=96, lr=1.5e-3)


class LeNet(nn.Module):
    """conv5x5(20)-ReLU-maxpool, conv5x5(50)-ReLU-maxpool, Linear(500)-ReLU, Linear(10): no batch norm."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 20, 5)
        self.c2 = nn.Conv2d(20, 50, 5)
        self.f1 = nn.Linear(50 * 4 * 4, 500)
        self.f2 = nn.Linear(500, 10)

    def forward(self, x: Tensor) -> Tensor:
        h = F.max_pool2d(F.relu(self.c1(x)), 2)
        h = F.max_pool2d(F.relu(self.c2(h)), 2)
        return self.f2(F.relu(self.f1(h.flatten(1))))


def _shift(x: Tensor, gen: torch.Generator, px: int = 2) -> Tensor:
    """Random integer translation by up to ``px`` pixels per image (pad with black, crop)."""
    n, _, h, w = x.shape
    pad = F.pad(x, (px, px, px, px), value=-1.0)
    d = torch.randint(0, 2 * px + 1, (n, 2), generator=gen)
    rows = (torch.arange(h)[None, :] + d[:, :1])[:, :, None].expand(n, h, w)
    cols = (torch.arange(w)[None, :] + d[:, 1:])[:, None, :].expand(n, h, w)
    idx = rows * (w + 2 * px) + cols
    return pad.flatten(2).gather(2, idx.reshape(n, 1, h * w)).reshape(n, 1, h, w)


def train_lenet(
    x: Tensor, y: Tensor, seed: int = LENET_SEED, epochs: int = LENET_EPOCHS, progress: bool = True
) -> LeNet:
    """The third classifier: Adam 1e-3, batch 128, cross-entropy on shifted training digits; every draw from
    ``seed``, deterministic algorithms."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    model = LeNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    try:
        for ep in range(epochs):
            perm = torch.randperm(len(x), generator=gen)
            for i in tqdm(range(0, len(x), 128), disable=not progress, desc=f"lenet epoch {ep + 1}", leave=False):
                idx = perm[i : i + 128]
                loss = F.cross_entropy(model(_shift(x[idx], gen)), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    finally:
        torch.use_deterministic_algorithms(was)
    return model.eval()


def lenet(data_root: Optional[str], cache: Optional[Path] = None, progress: bool = True) -> LeNet:
    """The third classifier, trained once and cached (``<cache>/magnet/lenet-s<seed>-e<epochs>.pt``)."""
    path = (cache or cache_root()) / "magnet" / f"lenet-s{LENET_SEED}-e{LENET_EPOCHS}.pt"
    model = LeNet()
    if path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    train = load_dataset("mnist", root=data_root, split="train")
    model = train_lenet(train.images.cpu().float(), train.labels.cpu().long(), progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)
    return model


def cnn2(data_root: Optional[str], cache: Optional[Path] = None, progress: bool = True) -> nn.Module:
    """The fourth reader (``CNN2``), trained once by ``train_classifier`` into ``<cache>/magnet/cnn2/``."""
    out = (cache or cache_root()) / "magnet" / "cnn2"
    if not (out / "mnist.pt").is_file():
        train_classifier("mnist", data_root=data_root, out_dir=out, progress=progress, recipe=CNN2)
    return load_classifier("mnist", weights_dir=out)[0]


@torch.no_grad()
def _probs(model: nn.Module, x: Tensor, batch: int = 500) -> Tensor:
    """Softmax of ``model`` over float [-1, 1] images read on the uint8 grid (as every evaluator reads them)."""
    x = to_uint8(x).float().div_(127.5).sub_(1.0)
    return torch.cat([model(x[i : i + batch]).softmax(1) for i in range(0, len(x), batch)])


@torch.no_grad()
def knn_labels(x: Tensor, train_x: Tensor, train_y: Tensor, k: int = KNN_K, batch: int = 500) -> Tensor:
    """Majority class of the ``k`` nearest training digits (Euclidean, pixels); ties to the nearest's class."""
    xs = to_uint8(x).float().flatten(1)
    tr = to_uint8(train_x).float().flatten(1)
    sq = (tr * tr).sum(1)
    out = []
    for i in range(0, len(xs), batch):
        q = xs[i : i + batch]
        d = sq[None, :] - 2 * q @ tr.T
        nn_idx = d.topk(k, dim=1, largest=False).indices
        votes = F.one_hot(train_y[nn_idx].long(), 10).sum(1).float()
        votes[torch.arange(len(q)), train_y[nn_idx[:, 0]].long()] += 0.5  # tie-break: the nearest neighbour
        out.append(votes.argmax(1))
    return torch.cat(out)


Readers = Dict[str, Callable[[Tensor], Tensor]]  # name -> (images -> class probabilities N x 10)


def readers(data_root: Optional[str], cache: Optional[Path] = None, progress: bool = True) -> Readers:
    """Every reader of the check (see the module docstring), as images -> class probabilities (kNN: vote shares)."""
    primary, _ = load_classifier("mnist")
    second, _ = load_second("mnist")
    third = lenet(data_root, cache, progress)
    fourth = cnn2(data_root, cache, progress)
    train = load_dataset("mnist", root=data_root, split="train")
    tx, ty = train.images.cpu(), train.labels.cpu()

    def p(model: nn.Module, name: str) -> Callable[[Tensor], Tensor]:
        return lambda x: classifier_pass(model, x, False, name).logits.softmax(1)

    return {
        "primary": p(primary, "magnet/primary"),
        "second": p(second, "magnet/second"),
        "lenet": lambda x: _probs(third, x),
        "cnn2": p(fourth, "magnet/cnn2"),
        "knn": lambda x: F.one_hot(knn_labels(x, tx, ty), 10).float(),
    }


def combinations(probs: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """The class readings under test, from the pinned evaluators' probabilities: ``combined`` is the coverage
    figures' reading (coverage.class_probs)."""
    return {"combined": class_probs(probs["primary"].log(), probs["second"].log()).float()}


REFERENCE = ("lenet", "cnn2", "knn")  # the verdict's readers: independent of the primary AND of the combination


def check(hists: Dict[str, Tensor], subject: str, independent: Sequence[str] = REFERENCE) -> Dict[str, object]:
    """Is ``subject``'s class histogram no farther (TV) from the independent readers than they are from each
    other: its largest TV to one of them at most their largest pairwise TV (``spread``), and its mean TV to them
    at most their mean pairwise TV? (``second`` is part of the combined reading, so the default readers leave it
    out: the primary and the combination are judged by the same three.)"""
    ind = [n for n in independent if n in hists and n != subject]
    pairs = [total_variation(hists[a], hists[b]) for a, b in itertools.combinations(ind, 2)]
    to = {n: total_variation(hists[subject], hists[n]) for n in ind}
    worst, mean = max(to.values()), sum(to.values()) / len(to)
    spread, typical = max(pairs), sum(pairs) / len(pairs)
    return {
        "to": to,
        "worst": worst,
        "mean": mean,
        "spread": spread,
        "typical": typical,
        "holds": worst <= spread and mean <= typical,
    }


def sample_sets(runs: Sequence[str], n: int, seed: int, data_root: Optional[str]) -> Dict[str, Tensor]:
    """Real test digits (a seeded random ``n``) and ``n`` samples of each RUN_DIR[:STEP]."""
    from benchmark.rundir import generate, load_generator

    test = load_dataset("mnist", root=data_root, split="test")
    rows = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:n]
    out = {"real test": test.images.cpu()[rows]}
    for spec in runs:
        d, _, step = spec.partition(":")
        g, cfg, s = load_generator(d, int(step) if step else None)
        out[f"{Path(d).name}@{s}"] = generate(g, cfg, n, seed=seed)[0]
    return out


def report(sets: Dict[str, Tensor], rd: Readers, subjects: Sequence[str] = ("primary", "combined")) -> List[str]:
    """The printed table: per set, each reader's class shares (%), the independents' pairwise TVs, and per subject
    its TV to each independent reader and the verdict."""
    lines: List[str] = []
    for name, x in sets.items():
        probs = {r: f(x) for r, f in rd.items()}
        probs.update(combinations(probs))
        hists = {r: histogram(p.argmax(1), 10) for r, p in probs.items()}
        lines.append(f"== {name} ({len(x)} samples)")
        for r, h in hists.items():
            lines.append(f"  {r:9s} " + " ".join(f"{100 * v / len(x):5.1f}" for v in h.tolist()))
        pairs = [
            f"{a}-{b} {total_variation(hists[a], hists[b]):.3f}" for a, b in itertools.combinations(INDEPENDENT, 2)
        ]
        lines.append("  independents' TV: " + " ".join(pairs))
        agree = probs["lenet"].argmax(1) == probs["cnn2"].argmax(1)
        ref = probs["lenet"].argmax(1)
        moves = []
        for s in ("primary", "combined", "second"):
            y = probs[s].argmax(1)
            moves.append(
                f"{s} {int((agree & (y == 3) & (ref != 3)).sum())}/{int((agree & (ref == 3) & (y != 3)).sum())}"
            )
        lines.append("  into 3 / out of 3 where lenet and cnn2 agree: " + ", ".join(moves))
        for s in subjects:
            c = check(hists, s)
            tvs = " ".join(f"{n} {v:.3f}" for n, v in c["to"].items())
            lines.append(
                f"  {s:9s} TV to {tvs}; worst {c['worst']:.3f} (spread {c['spread']:.3f}), mean {c['mean']:.3f} "
                f"(independents' mean {c['typical']:.3f}): {'holds' if c['holds'] else 'MAGNET'}"
            )
    return lines


FIXTURE_READERS = ("lenet", "cnn2", "knn")  # not shipped with ganbench: their verdicts go in the fixture


def fixture(x: Tensor, rd: Readers) -> Dict[str, object]:
    """The test fixture of one generated set (tests/data/magnet.npz): its images on 16 grey levels; the images that
    the readers do not all give the same class, with the ``FIXTURE_READERS``' labels of them; and the class counts
    of the images they all agree on (those cancel in every TV, since two evaluators that agree on a class agree with
    the mean of their probabilities, so only the disagreements need to be kept)."""
    import numpy as np

    q = (to_uint8(x) // 16) * 17  # 16 levels: a third of the file
    probs = {r: f(q) for r, f in rd.items()}
    y = torch.stack([p.argmax(1) for p in probs.values()])
    same = (y == y[0]).all(0)
    out: Dict[str, object] = {
        "images": q[~same][:, 0].numpy(),
        "agreed_hist": histogram(y[0][same], 10).numpy(),
        "n": np.array(len(x)),
    }
    out.update({r: probs[r][~same].argmax(1).to(torch.uint8).numpy() for r in FIXTURE_READERS})
    return out


def save_fixture(path: Path, x: Tensor, rd: Readers) -> None:
    import numpy as np

    with io.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **fixture(x, rd))


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--run", action="append", default=[], help="RUN_DIR[:STEP] (repeatable)")
    ap.add_argument("--num-samples", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-root", default=None)
    ap.add_argument("--fixture", default=None, help="write the test fixture of the first --run's samples here")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    rd = readers(a.data_root, Path(a.cache_root) if a.cache_root else None)
    sets = sample_sets(a.run, a.num_samples, a.seed, a.data_root)
    if a.fixture:
        first = next(k for k in sets if k != "real test")
        save_fixture(Path(a.fixture), sets[first], rd)
        sets[f"{first} on 16 grey levels (the fixture)"] = (to_uint8(sets[first]) // 16 * 17).float() / 127.5 - 1
    print("class shares (%) of digits 0..9; TV = total variation of two readers' class histograms")
    for line in report(sets, rd):
        print(line)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

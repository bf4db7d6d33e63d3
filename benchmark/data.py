"""Datasets, held as one tensor on the run's device and sampled by index with a seeded generator.

Every dataset has the same interface (``Dataset``): ``shape`` (C, H, W) for images or (2,) for points,
``num_classes``, ``sample(n, gen)`` for training batches and ``reference(n, seed)`` for a fixed real set (the
split is chosen when the dataset is loaded: ``load_dataset(name, root, split)``). The real side of a score is
evaluation's: a seeded random subset of the split's rows below its size (``evaluation/reference.py``).
Images are float in [-1, 1]; labels are int64.

Registered: mnist, fashion-mnist, stacked-mnist (3 MNIST digits as RGB channels, 1000 modes),
ring8 and grid25 (2D Gaussian mixtures, PacGAN protocol) and digits (scikit-learn's 8x8 digits, no download).
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import socket
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from benchmark.errors import UserError
from benchmark.io import sha256_file, write_json
from benchmark.paths import cache_root
from benchmark.registry import Registry

DATASETS = Registry("dataset")

SPLITS = ("train", "test")  # the real splits a dataset has and a score may compare with


def check_split(split: object) -> str:
    """``split`` if it is a known split, else the one-line error every stage gives for it."""
    if split not in SPLITS:
        raise UserError(f"split '{split}' is not known; allowed: {', '.join(SPLITS)}")
    return str(split)


def data_root(root: Optional[str] = None) -> Path:
    """--data-root, else $GANBENCH_DATA, else ./data."""
    return Path(root or os.environ.get("GANBENCH_DATA") or "data")


def _to_unit(x_uint8: Tensor) -> Tensor:
    return x_uint8.float().div_(127.5).sub_(1.0)


class Dataset:
    """Base class. Subclasses set ``shape``, ``num_classes`` and fill ``images``/``labels``."""

    shape: Tuple[int, ...] = ()
    num_classes: int = 0
    kind: str = "image"  # image | points
    name: str = ""
    num_train: int = 0  # size of the train split (what an epoch means), known without loading

    images: Tensor  # N x C x H x W in [-1, 1] (or N x 2 points), on self.device
    labels: Tensor  # N, int64, on self.device

    def __init__(
        self,
        root: Optional[str] = None,
        split: str = "train",
        device: str | torch.device = "cpu",
        download: bool = True,
    ):
        self.split = check_split(split)
        self.device = torch.device(device)

    def __len__(self) -> int:
        return self.images.shape[0]

    def sample(self, n: int, gen: torch.Generator) -> Tuple[Tensor, Tensor]:
        """A batch drawn uniformly with replacement; ``gen`` is a CPU generator (kept in checkpoints)."""
        idx = torch.randint(len(self), (n,), generator=gen).to(self.device, non_blocking=True)
        return self.images.index_select(0, idx), self.labels.index_select(0, idx)

    def reference(self, n: Optional[int] = None, seed: int = 0) -> Tuple[Tensor, Tensor]:
        """A fixed real set: the first ``n`` of the split (all if None); the real training samples of a page's
        real-data row. A score's reference of the split is a seeded random subset (``evaluation.reference.reference_rows``)."""
        n = len(self) if n is None else min(n, len(self))
        return self.images[:n], self.labels[:n]


# ------------------------------------------------------------------------------------------------
# MNIST-layout datasets: the idx files that torchvision downloads, read here with numpy


# The published files of MNIST (uncompressed, as torchvision leaves them in MNIST/raw/): byte size and
# sha256. A file that differs is refused by name before any training or scoring reads it.
MNIST_FILES = {
    "train-images-idx3-ubyte": (47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
# Fashion-MNIST has the same layout and sizes; no sha256 of its uncompressed files is published, so
# only sizes are checked there.
FASHION_MNIST_FILES = {k: (size, None) for k, (size, _) in MNIST_FILES.items()}
RAW_FILES = {"MNIST": MNIST_FILES, "FashionMNIST": FASHION_MNIST_FILES}
CHECKSUM_CACHE = "dataset-checksums.json"


def _sha256_cached(path: Path, st: os.stat_result) -> str:
    """sha256 of ``path``, remembered in the cache by (path, size, mtime): a dataset is hashed once."""
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    cache = cache_root() / CHECKSUM_CACHE
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if key in known:
        return str(known[key])
    digest = sha256_file(path)
    try:  # a cache that cannot be written only means hashing again next time
        write_json(cache, {**known, key: digest})
    except OSError:
        pass
    return digest


def verify_raw_files(cls_name: str, folder: Path) -> bool:
    """True if every raw file of ``cls_name`` is present and intact; False if any is absent.

    A present file with the wrong size or sha256 raises a UserError naming the file and the fix
    (a truncated download is "damaged", not "not found").
    """
    files = RAW_FILES.get(cls_name, {})
    if not files or not all((folder / f).is_file() for f in files):
        return False
    fix = (
        f"replace it with an intact copy (delete it and run again with download enabled, or point --data-root / "
        f"$GANBENCH_DATA at a folder holding {cls_name}/raw/)"
    )
    for f, (size, sha) in files.items():
        path = folder / f
        try:
            st = path.stat()
            if st.st_size != size:
                what = (
                    "is empty" if st.st_size == 0 else f"is truncated or damaged ({st.st_size} bytes, expected {size})"
                )
                raise UserError(f"{cls_name} file '{path}' {what}; {fix}")
            if sha is not None and _sha256_cached(path, st) != sha:
                raise UserError(
                    f"{cls_name} file '{path}' is corrupt (its sha256 differs from the published {sha[:12]}...); {fix}"
                )
        except OSError as e:
            raise UserError(
                f"{cls_name} file '{path}' cannot be read ({e.strerror}); fix its permissions or "
                "point --data-root at a readable copy"
            ) from None
    return True


def read_idx(path: Path) -> np.ndarray:
    """The uint8 array of an idx file (LeCun's format, uncompressed): two zero bytes, the type code 0x08
    (unsigned byte), the number of dimensions, each dimension as a big-endian int32, then the bytes."""
    data = np.fromfile(path, dtype=np.uint8)
    ndim = int(data[3]) if data.size >= 4 else 0
    body = 4 + 4 * ndim
    dims = tuple(int(d) for d in data[4:body].view(">u4")) if ndim and data.size >= body else ()
    if data.size < 4 or data[0] or data[1] or data[2] != 0x08 or not dims or math.prod(dims) != data.size - body:
        raise UserError(
            f"'{path}' is not an idx file of unsigned bytes (its header does not match its size); "
            "replace it with an intact copy"
        )
    return data[body:].reshape(dims)


def _fetch(cls_name: str, root: str) -> None:
    """Download the raw files of ``cls_name`` into ROOT/<cls_name>/raw/ from torchvision's mirrors (it checks
    each archive's md5 and unpacks it). torchvision is imported here only: reading the files needs nothing of
    it, and importing it costs ~3 s on top of torch (its ``ops`` import ``torch._dynamo``; -X importtime)."""
    import torchvision.datasets

    getattr(torchvision.datasets, cls_name)(root=root, train=True, download=True)


def _download(cls_name: str, root: str) -> bool:
    """Try to download ``cls_name``; True if it worked. A failed attempt (offline, a mirror down, a bad archive,
    an interrupt) removes the files and folders it created, so that no empty ``<cls_name>/raw/`` is left."""
    folder = Path(root) / cls_name / "raw"
    new_dirs = [d for d in (Path(root), folder.parent, folder) if not d.exists()]
    before = set(folder.iterdir()) if folder.is_dir() else set()
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)  # an offline machine should fail fast, not hang
    ok = False
    try:
        _fetch(cls_name, root)
        ok = True
    except Exception:
        pass  # reported by the caller as "could not be downloaded", with the fix
    finally:
        socket.setdefaulttimeout(old)
        if not ok:
            for p in (set(folder.iterdir()) if folder.is_dir() else set()) - before:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
            for d in reversed(new_dirs):  # innermost first; a folder someone else filled meanwhile stays
                try:
                    d.rmdir()
                except OSError:
                    pass
    return ok


@functools.lru_cache(maxsize=8)
def _load_idx(cls_name: str, root: str, train: bool, download: bool) -> Tuple[Tensor, Tensor]:
    """(images N x 28 x 28 uint8, labels N int64) of one split, read from the checked raw files."""
    folder = Path(root) / cls_name / "raw"
    stems = list(RAW_FILES[cls_name])
    present = verify_raw_files(cls_name, folder)
    if not present and download and _download(cls_name, root):
        present = verify_raw_files(cls_name, folder)  # what was downloaded is checked like what was found
    if not present:
        raise UserError(
            f"{cls_name} not found under '{folder}' (expected {', '.join(stems)}) and it could not be downloaded; "
            f"put the files there, or point --data-root / $GANBENCH_DATA at a folder holding {cls_name}/raw/"
        )
    prefix = "train" if train else "t10k"
    try:
        x = read_idx(folder / f"{prefix}-images-idx3-ubyte")
        y = read_idx(folder / f"{prefix}-labels-idx1-ubyte")
    except OSError as e:
        raise UserError(
            f"{cls_name} files under '{folder}' could not be read ({e.strerror}); fix their permissions or "
            "point --data-root at a readable copy"
        ) from None
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise UserError(
            f"{cls_name} files under '{folder}' do not fit together (images {x.shape}, labels {y.shape}); "
            "replace them with an intact copy"
        )
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


class _IdxImages(Dataset):
    tv_name = ""
    shape = (1, 28, 28)
    num_classes = 10
    num_train = 60000

    def __init__(self, root=None, split="train", device="cpu", download=True):
        super().__init__(root, split, device, download)
        x, y = _load_idx(self.tv_name, str(data_root(root)), split == "train", download)
        self.images = _to_unit(x).unsqueeze(1).to(self.device)
        self.labels = y.to(self.device)


@DATASETS.register("mnist")
class MNIST(_IdxImages):
    name, tv_name = "mnist", "MNIST"


@DATASETS.register("fashion-mnist")
class FashionMNIST(_IdxImages):
    name, tv_name = "fashion-mnist", "FashionMNIST"


@DATASETS.register("stacked-mnist")
class StackedMNIST(Dataset):
    """Three MNIST digits as the three channels; the label is the 3-digit number (1000 modes).

    Batches are assembled on the fly by gathering three random digits (no 60000x3 copy is stored);
    ``reference`` builds a fixed set from a seeded generator.
    """

    name, tv_name = "stacked-mnist", "MNIST"
    shape = (3, 28, 28)
    num_classes = 1000
    num_train = 60000

    def __init__(self, root=None, split="train", device="cpu", download=True):
        super().__init__(root, split, device, download)
        x, y = _load_idx("MNIST", str(data_root(root)), split == "train", download)
        self.digits = _to_unit(x).to(self.device)  # N x 28 x 28
        self.digit_labels = y.to(self.device)
        self._n = x.shape[0]
        self._place = torch.tensor([100, 10, 1], device=self.device)

    def __len__(self) -> int:
        return self._n

    def _gather(self, idx: Tensor) -> Tuple[Tensor, Tensor]:  # idx: n x 3
        x = self.digits[idx]  # n x 3 x 28 x 28
        y = (self.digit_labels[idx] * self._place).sum(1)
        return x, y

    def sample(self, n, gen):
        idx = torch.randint(self._n, (n, 3), generator=gen).to(self.device)
        return self._gather(idx)

    def reference(self, n=None, seed=0):
        g = torch.Generator().manual_seed(seed)
        return self.sample(n or self._n, g)


# ------------------------------------------------------------------------------------------------
# 2D mixtures (PacGAN protocol), sampled on the fly


class Mixture2D(Dataset):
    kind = "points"
    shape = (2,)
    std = 0.01
    size = num_train = 100_000  # nominal size: what an "epoch" means for these

    @staticmethod
    def make_means() -> Tensor:
        raise NotImplementedError

    def __init__(self, root=None, split="train", device="cpu", download=True):
        super().__init__(root, split, device, download)
        self.means = self.make_means().to(self.device)
        self.num_classes = self.means.shape[0]

    def __len__(self) -> int:
        return self.size

    def sample(self, n, gen):
        k = torch.randint(self.means.shape[0], (n,), generator=gen)
        eps = torch.randn(n, 2, generator=gen)
        k, eps = k.to(self.device), eps.to(self.device)
        return self.means[k] + self.std * eps, k

    def reference(self, n=None, seed=0):
        g = torch.Generator().manual_seed(seed + (0 if self.split == "train" else 1))
        return self.sample(n or 2500, g)


@DATASETS.register("ring8")
class Ring8(Mixture2D):
    """8 Gaussians on the unit circle, std 0.01."""

    name, std = "ring8", 0.01

    @staticmethod
    def make_means() -> Tensor:
        a = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        return torch.stack([a.cos(), a.sin()], 1).float()


@DATASETS.register("grid25")
class Grid25(Mixture2D):
    """25 Gaussians at {-4,-2,0,2,4}^2, std 0.05."""

    name, std = "grid25", 0.05

    @staticmethod
    def make_means() -> Tensor:
        v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        return torch.cartesian_prod(v, v)


# ------------------------------------------------------------------------------------------------
# scikit-learn's bundled digits: an image set that never needs a download


@DATASETS.register("digits")
class Digits(Dataset):
    """1797 8x8 digits (values 0..16); a fixed seeded split: 1500 train, 297 test."""

    name = "digits"
    shape = (1, 8, 8)
    num_classes = 10
    num_train = 1500

    def __init__(self, root=None, split="train", device="cpu", download=True):
        super().__init__(root, split, device, download)
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.from_numpy(d.images).float().div_(8.0).sub_(1.0).unsqueeze(1)
        y = torch.from_numpy(d.target).long()
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
        idx = perm[:1500] if split == "train" else perm[1500:]
        self.images, self.labels = x[idx].to(self.device), y[idx].to(self.device)


def load_dataset(
    name: str,
    root: Optional[str] = None,
    split: str = "train",
    device: str | torch.device = "cpu",
    download: bool = True,
) -> Dataset:
    """The one entry point: registry name -> Dataset on ``device``."""
    return DATASETS.get(name)(root=root, split=split, device=device, download=download)


def check_dataset_files(name: str, root: Optional[str] = None) -> None:
    """Refuse damaged files of dataset ``name`` now (cheap: checksums are cached), before any computing.

    Absent files are not an error here: loading them later downloads them or says they are not found.
    """
    tv = getattr(DATASETS.get(name), "tv_name", "")
    if tv:
        verify_raw_files(tv, data_root(root) / tv / "raw")


def dataset_info(name: str) -> Tuple[Tuple[int, ...], int, str]:
    """(shape, num_classes, kind) without loading any data."""
    cls = DATASETS.get(name)
    n = cls.num_classes if cls.num_classes else cls.make_means().shape[0]
    return tuple(cls.shape), n, cls.kind

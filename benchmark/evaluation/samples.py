"""Reading a sample file (``.npz``) for ``ganbench evaluate --samples``: every defect is one UserError line.

The file holds ``images`` (uint8 in [0, 255] or float in [-1, 1]; N x H x W or N x C x H x W; N x 2 for
point sets) and optionally ``labels`` (N integers: the classes a conditional generator was asked for).
Float images in [0, 1] are scored only when the caller says so (``value_range="01"``, ``--range 01``):
read as [-1, 1] they would be scored as grey smudges, and nothing in the numbers would show it.
Anything but an ``.npz`` (a ``.npy`` array, a pickle, a PNG) is refused by its first bytes.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from benchmark.data import dataset_info
from benchmark.errors import UserError
from benchmark.evaluation.metrics import check_samples

SAMPLE_RANGES = ("01", "-11")  # float images in [0, 1] | in [-1, 1]
_NPZ_MAGIC = b"PK\x03\x04"  # an .npz is a zip archive
_NPY_MAGIC = b"\x93NUMPY"


def _check_format(p: Path) -> None:
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise UserError(f"sample file '{p}' cannot be read ({e.strerror}); fix its permissions") from None
    if head.startswith(_NPZ_MAGIC):
        return
    if head.startswith(_NPY_MAGIC):
        raise UserError(
            f"sample file '{p}' is a single .npy array; save the samples as an .npz with "
            "numpy.savez(FILE.npz, images=..., labels=...)"
        )
    what = "empty" if not head else "not an .npz archive"
    raise UserError(f"sample file '{p}' is {what}; give an .npz written with numpy.savez(FILE.npz, images=...)")


def _float_range(images: np.ndarray, value_range: Optional[str], what: str) -> np.ndarray:
    """Float images as [-1, 1]; [0, 1] is read only when ``value_range`` says so (else refused as ambiguous)."""
    if not images.size or not np.isfinite(images).all():
        return images  # check_samples names these defects
    lo, hi = float(images.min()), float(images.max())
    if value_range == "01":
        if lo < 0 or hi > 1:
            raise UserError(
                f"{what}: --range 01 given, but the float images span [{lo:.3g}, {hi:.3g}]; "
                "give images in [0, 1], or drop --range"
            )
        return images.astype(np.float32) * 2 - 1
    if value_range is None and lo >= 0 and hi <= 1:
        raise UserError(
            f"{what}: float images span [{lo:.3g}, {hi:.3g}], which could be [0, 1] or [-1, 1]; the "
            "accepted ranges are float in [-1, 1], uint8 in [0, 255], or float in [0, 1] with "
            "--range 01; say which with --range 01 or --range -11"
        )
    return images


def load_samples(path: str | Path, dataset: str, value_range: Optional[str] = None) -> Tuple[Tensor, Optional[Tensor]]:
    """(images float in [-1, 1], labels int64 or None), checked against ``dataset``.

    ``value_range``: None (uint8 as [0, 255], float as [-1, 1], float inside [0, 1] refused), "01" or "-11"
    (the range of float images).
    """

    if value_range is not None and value_range not in SAMPLE_RANGES:
        raise UserError(f"--range is '{value_range}'; allowed: {', '.join(SAMPLE_RANGES)}")
    p = Path(path)
    if not p.is_file():
        raise UserError(f"sample file '{p}' does not exist; give an .npz with an 'images' array")
    _check_format(p)
    try:
        with np.load(p, allow_pickle=False) as z:
            keys = set(z.files)
            if "images" not in keys:
                raise UserError(
                    f"sample file '{p}' has no 'images' array (it holds: {', '.join(sorted(keys)) or 'nothing'}); "
                    "save the samples under the key 'images'"
                )
            images = np.asarray(z["images"])
            labels = np.asarray(z["labels"]) if "labels" in keys else None
    except UserError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise UserError(
            f"sample file '{p}' is not a readable .npz ({type(e).__name__}); write it with numpy.savez"
        ) from None
    what = f"sample file '{p}'"
    if images.dtype.kind not in "uif" or images.dtype == np.bool_:
        raise UserError(f"{what}: 'images' has dtype {images.dtype}; give uint8 in [0, 255] or float in [-1, 1]")
    if images.dtype.kind in "iu" and images.dtype != np.uint8:
        if images.size and (images.min() < 0 or images.max() > 255):
            raise UserError(f"{what}: integer 'images' span [{images.min()}, {images.max()}], outside [0, 255]")
        images = images.astype(np.uint8)
    if images.dtype.kind == "f" and dataset_info(dataset)[2] == "image":
        images = _float_range(images, value_range, what)
    elif value_range is not None:
        kind = "uint8 images" if images.dtype == np.uint8 else "points"
        raise UserError(f"{what}: --range applies to float images, and these are {kind}; drop --range")
    if labels is not None and labels.dtype.kind not in "iuf":
        raise UserError(f"{what}: 'labels' has dtype {labels.dtype}; give integers")
    x = torch.from_numpy(np.ascontiguousarray(images))
    if x.is_floating_point():
        x = x.float()
    y = torch.from_numpy(np.ascontiguousarray(labels)) if labels is not None else None
    return check_samples(x, y, dataset, what=what)

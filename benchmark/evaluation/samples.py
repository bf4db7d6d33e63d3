"""Reading a sample file (``.npz``) for ``ganbench evaluate --samples``: every defect is one UserError line.

The file holds ``images`` (uint8 in [0, 255] or float in [-1, 1]; N x H x W or N x C x H x W; N x 2 for
point sets) and optionally ``labels`` (N integers: the classes a conditional generator was asked for).
Float images in [0, 1] are scored only when the caller says so (``value_range="01"``, ``--range 01``):
read as [-1, 1] they would be scored as grey smudges, and nothing in the numbers would show it.
Anything but an ``.npz`` (a ``.npy`` array, a pickle, a PNG) is refused by its first bytes.

A file is sized before anything is decompressed: from the zip's member headers and each array's ``.npy``
header (its shape and dtype). More samples than ``ganbench evaluate`` scores at once (``MAX_SAMPLES``), more
bytes than that many samples of the dataset can hold, or a header that promises more data than its member
holds is one line, before an array is allocated (a 0.8 MB archive of zeros can claim 12.5 M images; an
``.npy`` header can claim 10^12).
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from benchmark.data import dataset_info
from benchmark.errors import UserError
from benchmark.evaluation.metrics import check_samples
from benchmark.evaluation.runs import MAX_SAMPLES
from benchmark.paths import check_input_file

SAMPLE_RANGES = ("01", "-11")  # float images in [0, 1] | in [-1, 1]
_NPZ_MAGIC = b"PK\x03\x04"  # an .npz is a zip archive
_NPY_MAGIC = b"\x93NUMPY"
ARRAYS = ("images", "labels")  # the members read (``images.npy`` or ``images``); others are never opened
MAX_MEMBERS = 64  # numpy.savez writes one member per array: two here
MAX_ITEM_BYTES = 8  # the widest dtype a sample file sensibly holds (float64, int64)
_UNREADABLE = (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, KeyError, RuntimeError)
_UNREADABLE += (NotImplementedError, zlib.error)  # an unknown compression, a damaged stream


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


def _array_header(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> Tuple[Tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header bytes) of a member's ``.npy`` header: only its first bytes are decompressed."""
    with z.open(info) as f:
        try:  # numpy parses the header's text as a Python literal: any failure there means a foreign file
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            return tuple(int(n) for n in shape), np.dtype(dtype), f.tell()
        except Exception as e:
            raise ValueError(f"its '{info.filename}' header cannot be read ({type(e).__name__})") from None


def _check_sizes(p: Path, dataset: str) -> None:
    """Refuse an archive whose arrays, by their headers, hold more than a sample file of ``dataset`` can."""
    what = f"sample file '{p}'"
    per_sample = math.prod(dataset_info(dataset)[0])
    try:
        with zipfile.ZipFile(p) as z:
            infos = z.infolist()
            if len(infos) > MAX_MEMBERS:
                raise UserError(
                    f"{what} holds {len(infos)} members, and a sample file holds 'images' and 'labels'; "
                    "write it with numpy.savez(FILE.npz, images=..., labels=...)"
                )
            for info in infos:
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if key not in ARRAYS:
                    continue
                shape, dtype, head = _array_header(z, info)
                n = shape[0] if shape else 1
                count = math.prod(shape)
                limit = MAX_SAMPLES * (per_sample if key == "images" else 1) * MAX_ITEM_BYTES
                if n > MAX_SAMPLES:
                    raise UserError(
                        f"{what}: its '{key}' header says {n} samples, more than the {MAX_SAMPLES} ganbench scores "
                        f"at once (the --num-samples limit); keep at most {MAX_SAMPLES} in the file"
                    )
                if count * dtype.itemsize > limit:
                    raise UserError(
                        f"{what}: its '{key}' header says shape {shape} of {dtype}, {count * dtype.itemsize} bytes: "
                        f"more than {MAX_SAMPLES} samples of '{dataset}' hold; give arrays of the dataset's shape"
                    )
                if info.file_size < head + count * dtype.itemsize:
                    raise UserError(
                        f"{what}: its '{key}' member holds {info.file_size} bytes, less than the "
                        f"{head + count * dtype.itemsize} its header promises (truncated or forged); write the file "
                        "again with numpy.savez"
                    )
    except UserError:
        raise
    except _UNREADABLE as e:
        raise UserError(f"{what} is not a readable .npz ({type(e).__name__}); write it with numpy.savez") from None


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
    p = check_input_file(path, "sample file", "give an .npz with an 'images' array")
    _check_format(p)
    _check_sizes(p, dataset)  # before anything is decompressed
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
    except _UNREADABLE as e:
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

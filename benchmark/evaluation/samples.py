"""Reading a sample file (``.npz``) for ``ganbench evaluate --samples``: every defect is one UserError line.

The file holds ``images`` (uint8 in [0, 255] or float in [-1, 1]; N x H x W or N x C x H x W; N x 2 for
point sets) and optionally ``labels`` (N integers: the classes a conditional generator was asked for).
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from benchmark.errors import UserError


def load_samples(path: str | Path, dataset: str) -> Tuple[Tensor, Optional[Tensor]]:
    """(images float in [-1, 1], labels int64 or None), checked against ``dataset``."""
    from benchmark.evaluation.metrics import check_samples

    p = Path(path)
    if not p.is_file():
        raise UserError(f"sample file '{p}' does not exist; give an .npz with an 'images' array")
    try:
        with np.load(p, allow_pickle=False) as z:
            keys = set(z.files)
            if "images" not in keys:
                raise UserError(f"sample file '{p}' has no 'images' array (it holds: {', '.join(sorted(keys)) or 'nothing'}); "
                                "save the samples under the key 'images'")
            images = np.asarray(z["images"])
            labels = np.asarray(z["labels"]) if "labels" in keys else None
    except UserError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise UserError(f"sample file '{p}' is not a readable .npz ({type(e).__name__}); write it with numpy.savez") from None
    what = f"sample file '{p}'"
    if images.dtype.kind not in "uif" or images.dtype == np.bool_:
        raise UserError(f"{what}: 'images' has dtype {images.dtype}; give uint8 in [0, 255] or float in [-1, 1]")
    if images.dtype.kind in "iu" and images.dtype != np.uint8:
        if images.size and (images.min() < 0 or images.max() > 255):
            raise UserError(f"{what}: integer 'images' span [{images.min()}, {images.max()}], outside [0, 255]")
        images = images.astype(np.uint8)
    if labels is not None and labels.dtype.kind not in "iuf":
        raise UserError(f"{what}: 'labels' has dtype {labels.dtype}; give integers")
    x = torch.from_numpy(np.ascontiguousarray(images))
    if x.is_floating_point():
        x = x.float()
    y = torch.from_numpy(np.ascontiguousarray(labels)) if labels is not None else None
    return check_samples(x, y, dataset, what=what)

"""Deterministic image corruptions: the noise generated samples carry, for training and validating evaluators.

All functions take float images in [-1, 1] (N x 1 x H x W, the datasets' convention), corrupt them in
pixel space p = (x + 1) / 2 in [0, 1], and return [-1, 1] images. Randomness comes only from the
``torch.Generator`` given (or a fixed seed), so a corruption table is re-measured bit-identically.

* ``gaussian(x, sigma)``: p + sigma * N(0, 1), clipped to [0, 1] (sigma may be a per-image tensor).
* ``salt_pepper(x, p)``: each pixel with probability p replaced by 0 or 1 (half each).
* ``blur(x, sigma)``: Gaussian blur, kernel radius ceil(3 sigma), black (zero) border (per-image sigma allowed).
* ``uniform_noise(n, shape)``: images of i.i.d. U[0, 1] pixels (no digit at all).

``CORRUPTIONS`` names the validation conditions of the evaluator card (``ganbench classifier test``).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

Level = Union[float, Tensor]
VALIDATION_SEED = 1234  # the corruption table's noise seed (fixed: the table is re-measurable)


def _per_image(level: Level, n: int) -> Tensor:
    t = torch.as_tensor(level, dtype=torch.float32)
    return t.reshape(-1, 1, 1, 1) if t.dim() else t.expand(n).reshape(-1, 1, 1, 1)


def gaussian(x: Tensor, sigma: Level, gen: torch.Generator) -> Tensor:
    p = (x + 1) / 2
    noise = torch.randn(x.shape, generator=gen, dtype=x.dtype)
    return (p + _per_image(sigma, len(x)) * noise).clamp_(0, 1) * 2 - 1


def salt_pepper(x: Tensor, prob: Level, gen: torch.Generator) -> Tensor:
    u = torch.rand(x.shape, generator=gen)
    salt = torch.rand(x.shape, generator=gen) < 0.5
    hit = u < _per_image(prob, len(x))
    out = x.clone()
    out[hit] = torch.where(salt[hit], 1.0, -1.0)
    return out


def blur(x: Tensor, sigma: Level, gen: Optional[torch.Generator] = None) -> Tensor:
    """Gaussian blur (deterministic; ``gen`` unused, accepted for a uniform signature)."""
    n, c, h, w = x.shape
    s = _per_image(sigma, n).reshape(n).clamp_min(1e-3)
    radius = max(1, int(math.ceil(3 * float(s.max()))))
    r = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k1 = torch.exp(-(r[None, :] ** 2) / (2 * s[:, None] ** 2))
    k1 = k1 / k1.sum(1, keepdim=True)  # n x K
    p = ((x + 1) / 2).reshape(1, n * c, h, w)
    kh = k1.repeat_interleave(c, 0).reshape(n * c, 1, 1, -1)
    kv = k1.repeat_interleave(c, 0).reshape(n * c, 1, -1, 1)
    p = F.conv2d(p, kh, padding=(0, radius), groups=n * c)
    p = F.conv2d(p, kv, padding=(radius, 0), groups=n * c)
    return p.reshape(n, c, h, w).clamp(0, 1) * 2 - 1


def uniform_noise(n: int, shape: Tuple[int, ...], gen: torch.Generator) -> Tensor:
    return torch.rand((n, *shape), generator=gen) * 2 - 1


# name -> (function, level) for the evaluator card's table; "clean" is the identity
CORRUPTIONS: Dict[str, Tuple[Callable[..., Tensor], float]] = {
    "gauss0.2": (gaussian, 0.2),
    "sp0.1": (salt_pepper, 0.1),
    "blur1": (blur, 1.0),
}


def corrupt(x: Tensor, name: str, seed: int = VALIDATION_SEED) -> Tensor:
    """One named validation corruption of ``x`` ('clean', 'gauss0.2', 'sp0.1', 'blur1'), seeded."""
    if name == "clean":
        return x
    fn, level = CORRUPTIONS[name]
    return fn(x, level, torch.Generator().manual_seed(seed))

"""The training augmentations of an evaluator (see ``Arch``): a random affine per image, the robustness
corruptions, and the non-digit images of the noise push. Every draw comes from the generator given."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.evaluation.classifier.recipes import Arch
from benchmark.evaluation.corruptions import blur, gaussian, salt_pepper


def affine(x: Tensor, arch: Arch, gen: torch.Generator) -> Tensor:
    """Random affine (rotation, scale, translation) per image; drawn from ``gen`` (deterministic)."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=gen) * 2 - 1
    ang = u[:, 0] * math.radians(arch.rot_deg)
    s = 1 + u[:, 1] * arch.scale
    t = u[:, 2:] * (2 * arch.shift_px / arch.size)  # normalised coordinates span 2
    cos, sin = ang.cos() / s, ang.sin() / s
    theta = torch.stack([torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # background is -1 (black): shift to [0, 2] so zero-padding means black
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


def corrupt_train(x: Tensor, arch: Arch, gen: torch.Generator) -> Tensor:
    """The robustness augmentation (see ``Arch``): one corruption per image, drawn from ``gen``."""
    n = len(x)
    u = torch.rand(n, 4, generator=gen)
    kind = torch.where(u[:, 0] < arch.clean_p, 0, 1 + (u[:, 1] * 4).long().clamp_max(3))  # 0 clean .. 4
    lo = torch.rand(n, generator=gen)
    out = x.clone()
    # contrast on a third of the images (the faint strokes of early generators)
    c = torch.where(u[:, 2] < 1 / 3, arch.contrast_min + (1 - arch.contrast_min) * u[:, 3], torch.ones(n))
    out = ((out + 1) * c.reshape(-1, 1, 1, 1)) - 1
    m = (kind == 3) | (kind == 4)
    if m.any():
        out[m] = blur(out[m], 0.3 + (arch.blur_max - 0.3) * lo[m])
    m = (kind == 1) | (kind == 4)
    if m.any():
        out[m] = gaussian(out[m], arch.gauss_max * torch.rand(int(m.sum()), generator=gen), gen)
    m = kind == 2
    if m.any():
        out[m] = salt_pepper(out[m], arch.sp_max * torch.rand(int(m.sum()), generator=gen), gen)
    return out


def push_images(m: int, arch: Arch, gen: torch.Generator) -> Tensor:
    """``m`` non-digit images: uniform noise with random range, blank grey levels, Gaussian noise on black."""
    shape = (1, arch.size, arch.size)
    a = torch.rand(m, 1, 1, 1, generator=gen)
    b = torch.rand(m, 1, 1, 1, generator=gen)
    lo, hi = torch.minimum(a, b) * 0.5, 0.5 + torch.maximum(a, b) * 0.5
    uni = lo + (hi - lo) * torch.rand((m, *shape), generator=gen)
    blank = a.expand(m, *shape)
    speck = (torch.randn((m, *shape), generator=gen) * (0.1 + 0.5 * b)).clamp(0, 1)
    which = torch.randint(0, 4, (m, 1, 1, 1), generator=gen)
    p = torch.where(which <= 1, uni, torch.where(which == 2, blank, speck))
    return p * 2 - 1

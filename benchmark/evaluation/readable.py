"""The readable share's known answers on MNIST (README, Evaluation): the unreadable share of real test and
training digits, of the known failures uniform noise and blank images, of smooth noise blobs and of an untrained
generator, each ``n`` images, with and without the cloud test (coverage.py)::

    python -m benchmark.evaluation.readable --data-root ../shared/data --num-samples 3000
"""

from __future__ import annotations

import argparse
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor

from benchmark.data import load_dataset
from benchmark.evaluation import coverage as cov
from benchmark.evaluation.failures import FAILURES
from benchmark.evaluation.metrics.context import Context, Options


def noise_blobs(n: int, seed: int = 0) -> Tensor:
    """Smooth noise blobs (uniform noise box-blurred twice, contrast-stretched): no digit in any of them."""
    u = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    b = torch.nn.functional.avg_pool2d(torch.nn.functional.avg_pool2d(u, 5, 1, 2), 5, 1, 2)
    return ((b - b.mean((2, 3), keepdim=True)) * 12).clamp(-1, 1)


def untrained_generator(n: int, seed: int = 0) -> Tensor:
    """Samples of a freshly initialised MLP generator (MNIST shape)."""
    from benchmark.config import make_config, resolve
    from benchmark.models import build_models

    torch.manual_seed(seed)
    cfg = resolve(make_config(dict(dataset="mnist", model="mlp")))
    g, _ = build_models(cfg, (1, 28, 28), 10)
    with torch.no_grad():
        return g.eval()(torch.randn(n, cfg.z_dim))


def known_sets(n: int, data_root: Optional[str]) -> Dict[str, Tensor]:
    pick = lambda d: d.images[torch.randperm(len(d), generator=torch.Generator().manual_seed(1))[:n]]  # noqa: E731
    out = {s: pick(load_dataset("mnist", root=data_root, split=s)) for s in ("test", "train")}
    out.update({f: FAILURES.get(f).samples("mnist", n, data_root=data_root) for f in ("uniform", "blank")})
    out.update(blobs=noise_blobs(n), untrained=untrained_generator(n))
    return out


def shares(x: Tensor, data_root: Optional[str]) -> Dict[str, float]:
    """Unreadable share of ``x`` with the cloud test and with max probability alone."""
    ctx = Context(x, None, Options("mnist", data_root=data_root))
    (fa, la), (_, lb) = ctx.gen_outputs, ctx.gen_outputs_second
    ta, tb = ctx.readable_taus
    prior = ctx.train_prior
    full = cov.cross_check(la, lb, prior, ta, tb, 0.1, (fa, ctx.cloud("classifier")))
    return {
        "unreadable": full["unreadable_share"],
        "tau_only": cov.cross_check(la, lb, prior, ta, tb)["unreadable_share"],
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--num-samples", type=int, default=3000)
    a = ap.parse_args(argv)
    print(f"rule {cov.CLOUD_RULE}; {a.num_samples} images each")
    for name, x in known_sets(a.num_samples, a.data_root).items():
        s = shares(x, a.data_root)
        print(f"{name:10s} unreadable {s['unreadable']:.4f}   (max probability alone: {s['tau_only']:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

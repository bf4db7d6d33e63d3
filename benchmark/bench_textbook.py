"""The textbook WGAN-GP training script, the baseline of ``make bench-train``'s whole-process comparison.

Written the way tutorials write it: a DataLoader over torchvision's MNIST with per-image ToTensor/Normalize, a
generator forward that builds a graph and then detaches it, three separate critic calls, a checkpoint and a
sample grid at the end. The math is ganbench's MLP pair with WGAN-GP's paper settings (Adam 1e-4, betas (0, 0.9),
n_critic 5, lambda 10, batch 64), so the two processes do the same work.

    python -m benchmark.bench_textbook --steps 300 --threads 2 --out DIR [--data-root D]
"""

from __future__ import annotations

import argparse
import os
from types import SimpleNamespace

import torch
import torchvision
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.utils import save_image

from benchmark.models import MLPCritic, MLPGenerator


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="generator steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-root", default=os.environ.get("GANBENCH_DATA") or "data")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    ds = torchvision.datasets.MNIST(args.data_root, train=True, transform=tf, download=False)
    loader = DataLoader(ds, batch_size=64, shuffle=True, drop_last=True)
    cfg = SimpleNamespace(
        z_dim=100, conditional=False, cond_mode="concat", pack=1, critic_norm="none", minibatch_disc=False
    )
    G, D = MLPGenerator(cfg, (1, 28, 28), 10), MLPCritic(cfg, (1, 28, 28), 10)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.0, 0.9))

    def gradient_penalty(real, fake):
        alpha = torch.rand(real.size(0), 1, 1, 1)
        inter = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        out = D(inter)
        grad = torch.autograd.grad(
            outputs=out, inputs=inter, grad_outputs=torch.ones_like(out), create_graph=True, retain_graph=True
        )[0]
        grad = grad.view(grad.size(0), -1)
        return ((grad.norm(2, dim=1) - 1) ** 2).mean()

    it = iter(loader)
    for step in range(args.steps):
        for _ in range(5):
            try:
                real, _ = next(it)
            except StopIteration:
                it = iter(loader)
                real, _ = next(it)
            fake = G(torch.randn(real.size(0), 100)).detach()
            d_loss = D(fake).mean() - D(real).mean() + 10 * gradient_penalty(real, fake)
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
        g_loss = -D(G(torch.randn(64, 100))).mean()
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        if (step + 1) % 100 == 0:
            print(f"step {step + 1}: d_loss {d_loss.item():.3f} g_loss {g_loss.item():.3f}")
    os.makedirs(args.out, exist_ok=True)
    torch.save(G.state_dict(), os.path.join(args.out, "G.pt"))
    with torch.no_grad():
        save_image(G(torch.randn(64, 100)), os.path.join(args.out, "samples.png"), nrow=8, normalize=True)


if __name__ == "__main__":
    main()

"""Benchmark of the training hot path: ganbench's WGAN-GP critic step against a textbook loop.

Both run in this one process, interleaved in rounds, on the same math (MLP pair, MNIST, batch 64,
lambda 10, Adam(1e-4, (0, 0.9))). The textbook loop is the way tutorials write it: a DataLoader over
torchvision MNIST with per-image ToTensor/Normalize, a generator forward that builds a graph then
detaches, and three separate critic calls. Printed: the median seconds per critic step of each,
their ratio, and the achieved GFLOP/s of our step against a plain matrix multiply's GFLOP/s.

    make bench-train        # = python -m benchmark.bench_train [--threads 2] [--rounds 7] [--steps 50]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from benchmark.config import make_config
from benchmark.data import data_root
from benchmark.models import MLPCritic, MLPGenerator
from benchmark.train import Run, seed_everything


def textbook_loop(root: str, steps: int, G: nn.Module, D: nn.Module):
    """A generator of timings: one critic step per next(), the tutorial way."""
    import torchvision
    from torch.utils.data import DataLoader
    from torchvision import transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    ds = torchvision.datasets.MNIST(root, train=True, transform=tf, download=False)
    loader = DataLoader(ds, batch_size=64, shuffle=True, drop_last=True)
    opt = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.0, 0.9))

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
    while True:
        t0 = time.perf_counter()
        for _ in range(steps):
            try:
                real, _ = next(it)
            except StopIteration:
                it = iter(loader)
                real, _ = next(it)
            z = torch.randn(real.size(0), 100)
            fake = G(z).detach()
            loss = D(fake).mean() - D(real).mean() + 10 * gradient_penalty(real, fake)
            opt.zero_grad()
            loss.backward()
            opt.step()
        yield (time.perf_counter() - t0) / steps


def ours_loop(run: Run, steps: int):
    gen = torch.Generator().manual_seed(0)
    while True:
        t0 = time.perf_counter()
        for _ in range(steps):
            run.critic_step(gen)
        yield (time.perf_counter() - t0) / steps


def matmul_gflops(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def critic_step_flops(run: Run) -> float:
    """Matrix-product FLOPs of one critic step (forward, double backward and all), counted at dispatch.

    (torch's FlopCounterMode cannot follow the double backward of the penalty, so count mm/addmm here.)
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    total = [0]

    class MatmulFlops(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func is aten.mm.default:
                total[0] += 2 * args[0].shape[0] * args[0].shape[1] * args[1].shape[1]
            elif func is aten.addmm.default:
                total[0] += 2 * args[1].shape[0] * args[1].shape[1] * args[2].shape[1]
            return out

    gen = torch.Generator().manual_seed(1)
    with MatmulFlops():
        run.critic_step(gen)
    return float(total[0])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds; medians are reported")
    ap.add_argument("--steps", type=int, default=50, help="critic steps per round")
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    seed_everything(0, False)

    cfg = make_config(
        dict(
            dataset="mnist",
            model="mlp",
            objective="wgan-gp",
            gp_lambda=10,
            batch_size=64,
            data_root=args.data_root,
            device="cpu",
            download=False,
        )
    )
    run = Run(cfg)

    G_t, D_t = MLPGenerator(run.cfg, (1, 28, 28), 10), MLPCritic(run.cfg, (1, 28, 28), 10)
    G_t.load_state_dict(run.G.state_dict())
    D_t.load_state_dict(run.D.state_dict())
    textbook = textbook_loop(str(data_root(args.data_root)), args.steps, G_t, D_t)
    ours = ours_loop(run, args.steps)
    next(textbook), next(ours)  # warm-up round each

    t_text, t_ours, ratios = [], [], []
    for _ in range(args.rounds):
        a, b = next(textbook), next(ours)
        t_text.append(a)
        t_ours.append(b)
        ratios.append(a / b)
    flops = critic_step_flops(run)
    mm = matmul_gflops()
    med_ours = statistics.median(t_ours)
    print(f"WGAN-GP critic step, MLP pair, MNIST, batch 64, {args.threads} CPU threads, torch {torch.__version__}")
    print(f"  textbook loop (DataLoader + ToTensor/Normalize): {statistics.median(t_text) * 1e3:8.2f} ms/step")
    print(f"  ganbench critic step (tensor on device):        {med_ours * 1e3:8.2f} ms/step")
    print(
        f"  speed-up (median of per-round ratios):           {statistics.median(ratios):8.2f}x  "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}, {args.rounds} rounds x {args.steps} steps)"
    )
    print(
        f"  ganbench step: {flops / 1e6:.1f} MFLOP -> {flops / med_ours / 1e9:.1f} GFLOP/s; "
        f"plain 1024^2 matmul: {mm:.1f} GFLOP/s ({flops / med_ours / 1e9 / mm:.0%} of it)"
    )


if __name__ == "__main__":
    main()

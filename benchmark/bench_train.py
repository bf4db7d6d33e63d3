"""Benchmark of training: ganbench's WGAN-GP critic step and its whole ``train`` process against textbook code.

1. The hot path, in this one process: ganbench's critic step against a textbook loop, interleaved in rounds, on
   the same math (MLP pair, MNIST, batch 64, lambda 10, Adam(1e-4, (0, 0.9))). The textbook loop is the way
   tutorials write it: a DataLoader over torchvision MNIST with per-image ToTensor/Normalize, a generator forward
   that builds a graph then detaches, and three separate critic calls. Printed: the median seconds per critic
   step of each, their ratio, and the achieved GFLOP/s of our step against a plain matrix multiply's GFLOP/s.
2. Whole processes, as a user meets them: ``ganbench train`` of 300 steps (5 critic steps each) against the
   textbook script ``benchmark.bench_textbook`` doing the same training, alternated, each timed from start to
   exit; the median of the per-round ratios. Then where the time of one such ``ganbench train`` goes (start,
   imports, data and its checksum, set-up, critic steps, generator steps, checkpoints, sample grids, log),
   from one instrumented run.

    make bench-train        # = python -m benchmark.bench_train [--threads 2] [--rounds 7] [--steps 50]
                            #   [--process-rounds 3] [--process-steps 300] [--code-root DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

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


def critic_step_comparison(args: argparse.Namespace) -> None:
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
    # the same step with torch's default Adam on CPU (one parameter tensor after another) instead of the fused one
    looped = copy.copy(run)
    looped.D = copy.deepcopy(run.D)
    betas = (run.cfg.beta1_d, run.cfg.beta2_d)
    looped.opt_d = torch.optim.Adam(looped.D.parameters(), lr=run.cfg.lr_d, betas=betas, foreach=False)
    unfused = ours_loop(looped, args.steps)
    next(textbook), next(ours), next(unfused)  # warm-up round each

    t_text, t_ours, ratios, adam = [], [], [], []
    for _ in range(args.rounds):
        a, b, c = next(textbook), next(ours), next(unfused)
        t_text.append(a)
        t_ours.append(b)
        ratios.append(a / b)
        adam.append(c / b)
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
        f"  ... with torch's per-tensor Adam instead of the fused one: {statistics.median(adam):.2f}x the time "
        f"(min {min(adam):.2f}, max {max(adam):.2f})"
    )
    print(
        f"  ganbench step: {flops / 1e6:.1f} MFLOP -> {flops / med_ours / 1e9:.1f} GFLOP/s; "
        f"plain 1024^2 matmul: {mm:.1f} GFLOP/s ({flops / med_ours / 1e9 / mm:.0%} of it)"
    )


# ------------------------------------------------------------------------------------------------
# whole processes

REPO = Path(__file__).resolve().parents[1]

# One `ganbench train` with a stopwatch on each part: the functions of the stages it passes through are wrapped
# (by name, so this runs on any checkout of ganbench: --code-root) and the seconds in each printed as JSON.
INSTRUMENTED = r"""
import time
t0 = time.perf_counter()
import json, sys
import benchmark.cli
import importlib
train = importlib.import_module("benchmark.train")  # benchmark.train is the API's function
from benchmark import data, io, rundir
spent = {"imports": time.perf_counter() - t0}


def timed(owner, name, key):
    f = getattr(owner, name)

    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            spent[key] = spent.get(key, 0.0) + time.perf_counter() - t

    setattr(owner, name, wrapper)


for owner, name, key in [
    (train, "load_dataset", "data"), (data, "verify_raw_files", "checksum"), (train, "build_models", "models"),
    (train, "make_optimizer", "optimisers"), (train, "_train", "loop"),
    (train.Run, "critic_step", "critic"), (rundir, "save_checkpoint", "checkpoints"),
    (train, "save_samples", "grids"), (io, "append_jsonl", "log"),
]:
    timed(owner, name, key)
rc = benchmark.cli.main(sys.argv[1:])
spent["process"] = time.perf_counter() - t0
print(json.dumps(spent))
sys.exit(rc)
"""


def _ganbench_argv(args: argparse.Namespace, out: Path) -> List[str]:
    argv = ["train", "--dataset", "mnist", "--model", "mlp", "--objective", "wgan-gp"]
    argv += ["--steps", str(args.process_steps), "--device", "cpu", "--num-threads", str(args.threads)]
    argv += ["--download", "false", "--quiet", "--out", str(out)]
    return argv + (["--data-root", str(Path(args.data_root).resolve())] if args.data_root else [])


def _timed_process(cmd: List[str], code_root: Path) -> Tuple[float, str]:
    """Wall seconds of ``cmd`` from start to exit, run in ``code_root`` (``python -m``/``-c`` put the current
    folder first on the path), and its stdout; a failure stops the benchmark."""
    env = dict(os.environ, PYTHONPATH=str(code_root))
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=code_root, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"bench-train: {' '.join(cmd[:4])} ... failed:\n{r.stderr[-2000:]}")
    return wall, r.stdout


def breakdown(args: argparse.Namespace, tmp: Path) -> None:
    """Where the time of one ``ganbench train`` goes."""
    code = Path(args.code_root or REPO).resolve()
    cmd = [sys.executable, "-c", INSTRUMENTED, *_ganbench_argv(args, tmp / "instrumented")]
    wall, out = _timed_process(cmd, code)
    t = json.loads(out.strip().splitlines()[-1])
    n_critic = 5 * args.process_steps
    loop_rest = t["loop"] - t["critic"] - t["checkpoints"] - t["grids"] - t["log"]
    start_rest = t["process"] - t["imports"] - t["data"] - t["models"] - t["optimisers"] - t["loop"]
    rows = [
        ("Python start and exit", wall - t["process"]),
        ("imports", t["imports"]),
        (f"data load (of which checksums {t.get('checksum', 0.0):.2f} s)", t["data"]),
        ("models", t["models"]),
        ("optimisers (torch.optim's first use imports torch._dynamo)", t["optimisers"]),
        ("config, run directory, the rest of the start", start_rest),
        (f"critic steps ({n_critic}, {t['critic'] / n_critic * 1e3:.1f} ms each)", t["critic"]),
        ("generator steps, per-step logs, run-directory files", loop_rest),
        ("checkpoints", t["checkpoints"]),
        ("sample grids", t["grids"]),
        ("log appends", t["log"]),
    ]
    print(f"where one `ganbench train` of {args.process_steps} steps spends its {wall:.1f} s ({code}):")
    for what, sec in rows:
        print(f"  {what:58s} {sec:7.2f} s  {sec / wall:6.1%}")


def whole_process_comparison(args: argparse.Namespace, tmp: Path) -> None:
    code = Path(args.code_root or REPO).resolve()
    ganbench = [sys.executable, "-m", "benchmark"]
    textbook = [sys.executable, "-m", "benchmark.bench_textbook", "--steps", str(args.process_steps)]
    textbook += ["--threads", str(args.threads)]
    textbook += ["--data-root", str(Path(args.data_root).resolve())] if args.data_root else []
    t_text, t_ours, ratios = [], [], []
    for i in range(args.process_rounds):  # alternated, so that a machine's drift touches both alike
        a, _ = _timed_process(textbook + ["--out", str(tmp / f"textbook{i}")], REPO)
        b, _ = _timed_process(ganbench + _ganbench_argv(args, tmp / f"run{i}"), code)
        t_text.append(a)
        t_ours.append(b)
        ratios.append(a / b)
    print(
        f"whole process, {args.process_steps} steps x 5 critic steps, MLP WGAN-GP, MNIST, {args.threads} CPU threads:"
    )
    print(f"  textbook script (python -m benchmark.bench_textbook): {statistics.median(t_text):7.1f} s")
    print(f"  ganbench train ({code}): {statistics.median(t_ours):7.1f} s")
    print(
        f"  speed-up (median of per-round ratios): {statistics.median(ratios):.2f}x  "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}, {args.process_rounds} rounds; the bar is 1.5x)"
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved critic-step rounds (0: skip); medians")
    ap.add_argument("--steps", type=int, default=50, help="critic steps per round")
    ap.add_argument("--process-rounds", type=int, default=3, help="alternated whole-process pairs (0: skip)")
    ap.add_argument("--process-steps", type=int, default=300, help="generator steps of each whole process")
    ap.add_argument("--code-root", help="time the `ganbench train` of this checkout (default: this one)")
    ap.add_argument("--data-root", default=None)
    args = ap.parse_args(argv)
    if args.rounds:
        critic_step_comparison(args)
    if args.process_rounds:
        with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
            breakdown(args, Path(tmp))  # also the warm-up: file cache and checksum cache
            whole_process_comparison(args, Path(tmp))


if __name__ == "__main__":
    main()

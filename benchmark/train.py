"""The one trainer: seeding, the n_critic loop, remedies, per-step logs, checkpoints and resume.

The run directory it writes (file names, checkpoints, lock, provenance) is ``benchmark.rundir``.
Started again with the same config, a run resumes from ``last.pt`` and ends bit-identical to an
uninterrupted run on the same machine: the data sampler, torch (CPU and CUDA), numpy and Python RNG
states are all saved. Every file is written atomically.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn
from tqdm.auto import tqdm

from benchmark import io, rundir
from benchmark.config import (
    ADDED_LATER,
    TrainConfig,
    field_docs,
    load_yaml,
    make_config,
    parse_set,
    resolve,
    semantic_dict,
    to_yaml,
)
from benchmark.data import Dataset, load_dataset
from benchmark.errors import TrainingDiverged, UserError
from benchmark.models import build_models
from benchmark.objectives import build_objective, gradient_penalty
from benchmark.paths import check_output_dir

# ------------------------------------------------------------------------------------------------
# set-up


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device '{name}' asked for, but no CUDA device is present; use --device cpu or auto")
    return torch.device(name)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def make_optimizer(params, cfg: TrainConfig, which: str) -> torch.optim.Optimizer:
    lr = getattr(cfg, f"lr_{which}")
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=(getattr(cfg, f"beta1_{which}"), getattr(cfg, f"beta2_{which}")))


class Run:
    """Everything a run needs, built (and checked) before anything is written."""

    def __init__(self, cfg: TrainConfig):
        self.device = pick_device(cfg.device)
        self.data: Dataset = load_dataset(cfg.dataset, cfg.data_root, "train", self.device, cfg.download)
        self.cfg = cfg = resolve(cfg, num_train=len(self.data))
        seed_everything(cfg.seed, cfg.deterministic)  # before the weights are initialised
        self.num_classes = self.data.num_classes
        self.G, self.D = build_models(cfg, self.data.shape, self.num_classes)
        self.G.to(self.device)
        self.D.to(self.device)
        self.objective = build_objective(cfg)
        self.opt_g = make_optimizer(self.G.parameters(), cfg, "g")
        self.opt_d = make_optimizer(self.D.parameters(), cfg, "d")
        # Real and fake go through D in one call when no layer mixes the samples of a batch: the
        # same math in fewer, larger matrix products.
        self.fuse = cfg.critic_norm != "batch" and not cfg.minibatch_disc

    def critic_step(self, data_gen: torch.Generator, sigma: float = 0.0):
        """One critic update on a fresh real batch and a fresh fake batch (the hot path).

        Returns (loss, penalty or None, Wasserstein estimate or None, real, fake, y), detached.
        """
        cfg, G, D, obj, bs = self.cfg, self.G, self.D, self.objective, self.cfg.batch_size
        real, y = self.data.sample(bs, data_gen)
        y = y if cfg.conditional else None
        with torch.no_grad():  # the critic step needs no graph through G
            fake = G(torch.randn(bs, cfg.z_dim, device=self.device), y)
        if sigma > 0:  # instance noise on both inputs of D
            real = real + sigma * torch.randn_like(real)
            fake = fake + sigma * torch.randn_like(fake)
        if self.fuse:
            scores = D(torch.cat([real, fake]), None if y is None else torch.cat([y, y]))
            d_real, d_fake = scores[: bs // cfg.pack], scores[bs // cfg.pack :]
        else:
            d_real, d_fake = D(real, y), D(fake, y)
        loss = obj.d_loss(d_real, d_fake)
        pen = obj.penalty(D, real, fake, y)
        if pen is not None:
            loss = loss + pen[0]
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        obj.after_critic_step(D)  # weight clipping (wgan)
        wdist = (d_real.mean() - d_fake.mean()).detach() if obj.wasserstein else None
        pen = None if pen is None else (pen[0].detach(), pen[1].detach())
        return loss.detach(), pen, wdist, real, fake, y


def _fixed_noise(cfg: TrainConfig, num_classes: int, device) -> Tuple[Tensor, Optional[Tensor]]:
    """Noise for the sample grids, from its own generator so it never moves the training RNG."""
    g = torch.Generator().manual_seed(cfg.seed + 1_000_003)
    n = cfg.num_grid
    z = torch.randn(n, cfg.z_dim, generator=g).to(device)
    y = (torch.arange(n) % num_classes).to(device) if cfg.conditional else None
    return z, y


def save_samples(G: nn.Module, z: Tensor, y: Optional[Tensor], path: Path, data: Dataset) -> None:
    was_training = G.training
    G.eval()
    with torch.no_grad():
        x = G(z, y).float().cpu()
    G.train(was_training)
    # matplotlib (~0.7 s) and torchvision (~3 s on top of torch; `python -X importtime`, 2 CPU cores) are
    # imported here, where a sample grid is drawn, so that every `ganbench` command does not pay for them.
    if data.kind == "points":
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        real, _ = data.reference(2500)
        fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
        ax.scatter(*real.cpu().T.numpy(), s=2, c="tab:blue", alpha=0.3, label="real")
        ax.scatter(*x.T.numpy(), s=4, c="tab:red", alpha=0.7, label="generated")
        ax.set_aspect("equal")
        ax.legend(loc="upper right", fontsize=7)
        with io.atomic_path(path) as tmp:
            fig.savefig(tmp, bbox_inches="tight")
        plt.close(fig)
    else:
        from torchvision.utils import save_image

        with io.atomic_path(path) as tmp:
            save_image(x, tmp, nrow=int(math.sqrt(len(x))) or 1, normalize=True, value_range=(-1, 1))


# ------------------------------------------------------------------------------------------------
# the loop


def train(cfg: TrainConfig, out: str | Path, progress: bool = True) -> Dict[str, Any]:
    """Train (or resume, or just report) the run of ``cfg`` in ``out``; returns the summary."""
    out = Path(out)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    run = Run(cfg)  # builds and checks everything: a bad config fails here, before any write
    cfg = run.cfg

    # --- the run directory: new, same run (resume), or someone else's (refuse) --------------------
    cfg_path, done_path = out / rundir.CONFIG_FILE, out / rundir.DONE_FILE
    if cfg_path.exists():
        try:
            old = make_config(load_yaml(cfg_path))
        except UserError:
            raise UserError(f"'{cfg_path}' is unreadable; delete '{out}' to start the run afresh") from None
        there, here = ({**ADDED_LATER, **semantic_dict(c)} for c in (old, cfg))  # a later key at its default: absent
        diff = {k: (v, here[k]) for k, v in there.items() if here[k] != v}
        if diff:
            k, (a, b) = next(iter(diff.items()))
            raise UserError(f"'{out}' holds a run with another config ({k}: {a} there, {b} here); use another --out")
    if done_path.exists():
        summary = io.read_json(done_path)
        if progress:
            print(
                f"ganbench: run in '{out}' already finished ({summary['steps']} steps); nothing to do", file=sys.stderr
            )
        return summary
    with rundir.run_lock(out):  # one process per run directory, until this one ends (or dies)
        return _train(run, out, progress)


def _resume(run: Run, last_path: Path, data_gen: torch.Generator) -> int:
    """Load ``last.pt`` into the run (after checking it is this run's); returns its step."""
    ck = rundir.load_checkpoint(last_path)
    if "config_sha256" not in ck or "rng" not in ck:
        raise UserError(
            f"checkpoint '{last_path}' is not a resumable ganbench checkpoint (no config hash or RNG "
            "state); delete it to restart this run from scratch"
        )
    if ck["config_sha256"] != rundir.config_hash(run.cfg):
        theirs, ours = {**ADDED_LATER, **(ck.get("config") or {})}, {**ADDED_LATER, **semantic_dict(run.cfg)}
        k = next((k for k in ours if k in theirs and theirs[k] != ours[k]), None)
        what = f" ({k}: {theirs[k]} there, {ours[k]} here)" if k else ""
        raise UserError(
            f"checkpoint '{last_path}' belongs to another run{what}; delete it to restart this run "
            "from scratch, or use that run's --out"
        )
    for what, module, key in (
        ("generator", run.G, "G"),
        ("critic", run.D, "D"),
        ("generator optimiser", run.opt_g, "opt_g"),
        ("critic optimiser", run.opt_d, "opt_d"),
    ):
        rundir.load_state(module, ck[key], what, last_path)
    rundir.set_rng_state(ck["rng"], data_gen)
    return int(ck["step"])


def _train(run: Run, out: Path, progress: bool) -> Dict[str, Any]:
    """The training loop proper, run while holding the run directory's lock."""
    cfg = run.cfg
    G, D, obj, data, device = run.G, run.D, run.objective, run.data, run.device
    rundir.remove_stale_temporaries(out)  # of writes killed mid-way; nobody else writes here now
    (out / rundir.CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
    (out / rundir.SAMPLES_DIR).mkdir(exist_ok=True)
    io.write_text(out / rundir.CONFIG_FILE, to_yaml(cfg))
    info = rundir.run_info(device)
    io.write_json(out / rundir.RUN_INFO_FILE, info)

    # --- seeded in Run(); resume if a checkpoint exists -------------------------------------------
    data_gen = torch.Generator().manual_seed(cfg.seed)  # draws batch indices (CPU, saved in checkpoints)
    fixed_z, fixed_y = _fixed_noise(cfg, run.num_classes, device)
    log_path, last_path = out / rundir.LOG_FILE, rundir.last_checkpoint_path(out)
    start = _resume(run, last_path, data_gen) if last_path.exists() else 0
    # the log may run ahead of the checkpoint (or be torn by a kill): keep what the checkpoint covers
    io.rewrite_jsonl(log_path, [r for r in io.read_jsonl(log_path) if r.get("step", 0) <= start])
    config_sha256 = rundir.config_hash(cfg)

    bs, n_critic, pack = cfg.batch_size, cfg.n_critic, cfg.pack
    G.train()
    D.train()
    pending: List[Dict[str, Any]] = []
    t_start = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=start, disable=not progress, desc=out.name, unit="step", dynamic_ncols=True)
    for step in range(start, cfg.steps):
        t0 = time.perf_counter()
        sigma = cfg.instance_noise * (1.0 - step / cfg.steps)  # instance noise, annealed to 0
        d_losses, gps, wdists, norms = [], [], [], None

        # ---- critic: n_critic steps on fresh real and fake batches ---------------------------------
        for _ in range(n_critic):
            loss, pen, wdist, real, fake, y = run.critic_step(data_gen, sigma)
            d_losses.append(loss)
            if pen is not None:
                gps.append(pen[0])
                norms = pen[1]
            if wdist is not None:
                wdists.append(wdist)

        # ---- |grad D| at interpolates for objectives without a penalty (measured, not trained on) ---
        if not obj.has_penalty and (step + 1) % cfg.grad_norm_every == 0:
            _, norms = gradient_penalty(D, real, fake, y, pack, create_graph=False)
            D.zero_grad(set_to_none=True)

        # ---- generator step ---------------------------------------------------------------------
        y_g = y  # labels of the last real batch: the real label distribution
        fake = G(torch.randn(bs, cfg.z_dim, device=device), y_g)
        fake_in = fake + sigma * torch.randn_like(fake) if sigma > 0 else fake
        if cfg.feature_matching:  # Salimans et al.: match the mean critic features of real data
            with torch.no_grad():
                f_real = D.features(real, y).mean(0)
            g_loss = F.mse_loss(D.features(fake_in, y_g).mean(0), f_real)
        else:
            g_loss = obj.g_loss(D(fake_in, y_g))
        run.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        run.opt_g.step()

        # ---- log ------------------------------------------------------------------------------
        rec: Dict[str, Any] = {"step": step + 1, "d_loss": torch.stack(d_losses).mean().item(), "g_loss": g_loss.item()}
        if wdists:
            rec["wdist"] = torch.stack(wdists).mean().item()
        if gps:
            rec["gp"] = torch.stack(gps).mean().item()
        if norms is not None:
            rec["grad_norm_mean"] = norms.mean().item()
            rec["grad_norm_std"] = norms.std().item() if norms.numel() > 1 else 0.0
        rec["sec"] = time.perf_counter() - t0
        pending.append(rec)
        if not (math.isfinite(rec["d_loss"]) and math.isfinite(rec["g_loss"])):
            io.append_jsonl(log_path, pending)
            bar.close()
            raise TrainingDiverged(
                f"losses became non-finite at step {step + 1} (d_loss {rec['d_loss']}, g_loss {rec['g_loss']})"
            )
        if len(pending) >= cfg.log_flush_every:
            io.append_jsonl(log_path, pending)
            pending = []
        bar.update(1)
        if progress and (step + 1) % 10 == 0:
            bar.set_postfix(d=f"{rec['d_loss']:.3f}", g=f"{rec['g_loss']:.3f}", refresh=False)

        # ---- checkpoints: generator weights + sample grid (to evaluate), full state (to resume) --------
        s = step + 1
        keep_g = s == cfg.steps or (s in cfg.checkpoint_at if cfg.checkpoint_at else s % cfg.checkpoint_every == 0)
        if keep_g:
            rundir.save_checkpoint(
                rundir.generator_path(out, s), {"G": G.state_dict(), "step": s, "config_sha256": config_sha256}
            )
            save_samples(G, fixed_z, fixed_y, out / rundir.SAMPLES_DIR / rundir.sample_grid_file(s), data)
        if keep_g or s % cfg.checkpoint_every == 0:
            io.append_jsonl(log_path, pending)
            pending = []
            rundir.save_checkpoint(
                last_path,
                {
                    "step": s,
                    "G": G.state_dict(),
                    "D": D.state_dict(),
                    "opt_g": run.opt_g.state_dict(),
                    "opt_d": run.opt_d.state_dict(),
                    "rng": rundir.rng_state(data_gen),
                    "config": semantic_dict(cfg),
                    "config_sha256": config_sha256,
                    "git_commit": info["git_commit"],
                },
            )
    bar.close()

    log = io.read_jsonl(log_path)
    summary = {
        "steps": cfg.steps,
        "seconds_this_session": time.perf_counter() - t_start,
        "seconds_per_step": float(np.median([r["sec"] for r in log])) if log else None,
        "final": log[-1] if log else None,
        "checkpoints": rundir.list_checkpoints(out),
    }
    io.write_json(out / rundir.DONE_FILE, summary)
    return summary


# ------------------------------------------------------------------------------------------------
# command line


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults <- --config FILE <- --flags <- --set key=value."""
    overrides: Dict[str, Any] = {}
    if args.config:
        overrides.update(load_yaml(args.config))
    for f in dataclasses.fields(TrainConfig):
        v = getattr(args, f"cfg_{f.name}", None)
        if v is not None:
            overrides[f.name] = yaml.safe_load(v) if isinstance(v, str) and v.strip() else v
    overrides.update(parse_set(args.set))
    return make_config(overrides)


def add_config_flags(p: argparse.ArgumentParser) -> None:
    docs = field_docs(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        text = f"{docs.get(f.name, '')} [default: {default}]".strip()
        if f.type in (bool, "bool"):
            p.add_argument(flag, dest=f"cfg_{f.name}", nargs="?", const="true", default=None, metavar="BOOL", help=text)
        else:
            p.add_argument(flag, dest=f"cfg_{f.name}", default=None, metavar=f.name.upper(), help=text)


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    check_output_dir(args.out, "--out")  # a file there, or no permission: one line now, not after training
    try:
        summary = train(cfg, args.out, progress=not args.quiet)
    except TrainingDiverged as e:
        print(f"ganbench: run diverged: {e}", file=sys.stderr)
        return 1
    print(f"ganbench: done, {summary['steps']} steps; outputs in '{args.out}'")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train one GAN run (resumes if its --out holds a checkpoint)",
        description="Train one run. Every config key is a flag (--gp-lambda 10) and can also "
        "come from --config FILE.yaml or --set key=value (highest priority).",
    )
    p.add_argument("--config", help="YAML file of config overrides")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one key (repeatable)")
    p.add_argument("--out", required=True, help="run directory (created; an existing run there resumes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(p)
    p.set_defaults(func=_cmd_train)

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
import typing
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from tqdm.auto import tqdm

from benchmark import io, rundir, tb
from benchmark.config import (
    ADDED_LATER,
    DEVICE_RE,
    TrainConfig,
    load_yaml,
    make_config,
    parse_set,
    parse_value,
    resolve,
    semantic_dict,
    to_yaml,
)
from benchmark.data import Dataset, load_dataset
from benchmark.errors import TrainingDiverged, UserError, os_error, quote
from benchmark.models import MinibatchDiscrimination, build_models, is_user_model
from benchmark.objectives import build_objective, gradient_penalty
from benchmark.paths import check_room

# ------------------------------------------------------------------------------------------------
# set-up


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not DEVICE_RE.fullmatch(name):
        raise UserError(f"device {quote(name, 60)} is not one ganbench runs on; use auto, cpu, cuda or cuda:N")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device '{name}' asked for, but no CUDA device is present; use --device cpu or auto")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise UserError(f"device '{name}' asked for, but this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
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
    """The run's optimiser for G or D. Adam runs fused: on CPU torch's default steps one parameter tensor after
    another, about ten passes over memory each; the fused kernel makes one (`make bench-train` times a critic step
    both ways). It rounds differently in the last bits, so runs differ in bits from those of ganbench before it
    (a run and its resume never do). RMSprop's foreach form gives the same bits but measured no faster here."""
    lr = getattr(cfg, f"lr_{which}")
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    betas = (getattr(cfg, f"beta1_{which}"), getattr(cfg, f"beta2_{which}"))
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)


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
        # Real and fake go through D in one call when no layer of it mixes the samples of a batch (batch norm and
        # minibatch discrimination do; PacGAN's groups stay inside each half, the batch being a multiple of pack):
        # the same math in fewer, larger matrix products. A user's critic is called on each batch apart, as its
        # author wrote it: what its layers do with a batch is not known here.
        mixing = (nn.BatchNorm1d, nn.BatchNorm2d, MinibatchDiscrimination)
        self.fuse = not is_user_model(cfg.model) and not any(isinstance(m, mixing) for m in self.D.modules())

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


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Inside the block, ``module``'s trainable parameters ask for no gradient (after it, they ask again; a
    parameter its author froze stays frozen)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _fixed_noise(cfg: TrainConfig, num_classes: int, device) -> Tuple[Tensor, Optional[Tensor]]:
    """Noise for the sample grids, from its own generator so it never moves the training RNG."""
    g = torch.Generator().manual_seed(cfg.seed + 1_000_003)
    n = cfg.num_grid
    z = torch.randn(n, cfg.z_dim, generator=g).to(device)
    y = (torch.arange(n) % num_classes).to(device) if cfg.conditional else None
    return z, y


def image_grid(x: Tensor, nrow: int, padding: int = 2) -> np.ndarray:
    """Images (N, C, H, W) in [-1, 1] -> one RGB uint8 picture (rows, cols, 3), ``nrow`` images a row with black
    gaps of ``padding``: the pixels of torchvision's ``save_image(x, nrow=nrow, normalize=True, value_range=(-1,
    1))`` (tested against it), without importing torchvision for them (~3 s on top of torch, -X importtime)."""
    n, c, h, w = x.shape
    x = x.clamp(-1, 1).sub(-1).div(2)  # to [0, 1], as torchvision normalises over value_range (-1, 1)
    if c == 1:  # grey saved as RGB, as torchvision does
        x = x.expand(n, 3, h, w)
    if n == 1:  # one image: no frame
        grid = x[0]
    else:
        cols = min(nrow, n)
        rows = math.ceil(n / cols)
        cells = x.new_zeros(rows * cols, 3, h + padding, w + padding)  # each image with a gap above and left
        cells[:n, :, padding:, padding:] = x
        grid = cells.view(rows, cols, 3, h + padding, w + padding).permute(2, 0, 3, 1, 4)
        grid = F.pad(grid.reshape(3, rows * (h + padding), cols * (w + padding)), (0, padding, 0, padding))
    return grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()


def save_samples(G: nn.Module, z: Tensor, y: Optional[Tensor], path: Path, data: Dataset) -> None:
    was_training = G.training
    G.eval()
    with torch.no_grad():
        x = G(z, y).float().cpu()
    G.train(was_training)
    if data.kind == "points":
        # matplotlib (~0.7 s, `python -X importtime`, 2 CPU cores) is imported here, where a scatter is drawn,
        # so that every `ganbench` command does not pay for it.
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
        with io.atomic_path(path) as tmp:
            Image.fromarray(image_grid(x, nrow=int(math.sqrt(len(x))) or 1)).save(tmp)


# ------------------------------------------------------------------------------------------------
# the loop


def train(cfg: TrainConfig, out: str | Path, progress: bool = True) -> Dict[str, Any]:
    """Train (or resume, or just report) the run of ``cfg`` in ``out``; returns the summary."""
    rundir.check_run_dir(out)  # kinds and permissions of everything written there: one line now, not after training
    out = Path(out)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    run = Run(cfg)  # builds and checks everything: a bad config fails here, before any write
    cfg = run.cfg

    # --- the run directory: new, same run (resume), or someone else's (refuse) --------------------
    cfg_path, done_path = out / rundir.CONFIG_FILE, out / rundir.DONE_FILE
    if os.path.lexists(cfg_path):
        fix = f"delete it to resume from the checkpoint (which records its config), or delete {quote(out)}"
        old_text = load_yaml(cfg_path, "run config", fix)
        try:
            old = make_config(old_text)
        except UserError as e:
            raise UserError(f"run config {quote(cfg_path)} is not a valid config ({e}); {fix}") from None
        there, here = ({**ADDED_LATER, **semantic_dict(c)} for c in (old, cfg))  # a later key at its default: absent
        diff = {k: (v, here[k]) for k, v in there.items() if here[k] != v}
        if diff:
            k, (a, b) = next(iter(diff.items()))
            raise UserError(f"'{out}' holds a run with another config ({k}: {a} there, {b} here); use another --out")
    if os.path.lexists(done_path):
        summary = rundir.read_done(out)
        if progress:
            print(
                f"ganbench: run in '{out}' already finished ({summary['steps']} steps); nothing to do", file=sys.stderr
            )
        return summary
    check_room(out, rundir.bytes_needed(cfg, run.G, run.D, out), "--out")  # checkpoints, grids, log: room for all
    with rundir.run_lock(out):  # one process per run directory, until this one ends (or dies)
        return _train(run, out, progress)


def _resume(run: Run, last_path: Path, data_gen: torch.Generator) -> int:
    """Load ``last.pt`` into the run (after checking it is this run's and intact); returns its step."""
    ck = rundir.load_checkpoint(last_path)  # (its sha256 checked)
    if any(k not in ck for k in ("config_sha256", "rng", "G", "D", "opt_g", "opt_d")):
        raise UserError(
            f"checkpoint '{last_path}' is not a resumable ganbench checkpoint (no config hash or RNG "
            "state); delete it to restart this run from scratch"
        )
    rundir.check_step(last_path, ck["step"], run.cfg, "delete it to restart this run from scratch")
    if ck["config_sha256"] != rundir.config_hash(run.cfg):
        stored = ck.get("config") if isinstance(ck.get("config"), dict) else {}
        theirs, ours = {**ADDED_LATER, **stored}, {**ADDED_LATER, **semantic_dict(run.cfg)}
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
    try:
        rundir.set_rng_state(ck["rng"], data_gen)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError):
        raise UserError(
            f"checkpoint '{last_path}' holds an RNG state that cannot be restored; delete it to restart this run "
            "from scratch"
        ) from None
    return int(ck["step"])


def _train(run: Run, out: Path, progress: bool) -> Dict[str, Any]:
    """The training loop proper, run while holding the run directory's lock."""
    cfg = run.cfg
    G, D, obj, data, device = run.G, run.D, run.objective, run.data, run.device

    # --- seeded in Run(); resume if a checkpoint exists. What the run directory holds (checkpoint, log)
    # is validated before anything in it is rewritten: a refused checkpoint leaves the run as it was.
    data_gen = torch.Generator().manual_seed(cfg.seed)  # draws batch indices (CPU, saved in checkpoints)
    log_path, last_path = out / rundir.LOG_FILE, rundir.last_checkpoint_path(out)
    start = _resume(run, last_path, data_gen) if last_path.exists() else 0
    # the log may run ahead of the checkpoint (or be torn by a kill): keep what the checkpoint covers
    log = [r for r in rundir.read_log(out, cfg.steps) if r["step"] <= start]

    rundir.remove_stale_temporaries(out)  # of writes killed mid-way; nobody else writes here now
    (out / rundir.CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
    (out / rundir.SAMPLES_DIR).mkdir(exist_ok=True)
    io.write_text(out / rundir.CONFIG_FILE, to_yaml(cfg))
    info = rundir.run_info(device)
    io.write_json(out / rundir.RUN_INFO_FILE, info)
    fixed_z, fixed_y = _fixed_noise(cfg, run.num_classes, device)
    io.rewrite_jsonl(log_path, log)
    writer = tb.open_train(out, start, cfg.tensorboard)  # None when off; purges steps after `start` on resume
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
        if cfg.lr_decay == "linear":  # a function of the step alone: a resumed run sets the same rates
            for opt, lr in ((run.opt_g, cfg.lr_g), (run.opt_d, cfg.lr_d)):
                for group in opt.param_groups:
                    group["lr"] = lr * (1.0 - step / cfg.steps)
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
        # G's gradient passes through D, whose own weight gradients would be thrown away: with D frozen they are
        # not computed (a third of D's backward here), and no bit of G's update changes.
        with frozen(D):
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
            tb.scalars(writer, pending)
            tb.close(writer)
            bar.close()
            raise TrainingDiverged(
                f"losses became non-finite at step {step + 1} (d_loss {rec['d_loss']}, g_loss {rec['g_loss']})"
            )
        if len(pending) >= cfg.log_flush_every:  # TensorBoard gets the scalars with the log, outside the step
            io.append_jsonl(log_path, pending)
            tb.scalars(writer, pending)
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
            tb.scalars(writer, pending)
            if keep_g:
                tb.grid(writer, out / rundir.SAMPLES_DIR / rundir.sample_grid_file(s), s)  # (flushes)
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
    tb.close(writer)

    log = rundir.read_log(out)
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
# command line (the arguments are defined in benchmark.train_cli, which imports no torch)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults <- --config FILE <- --flags <- --set key=value."""
    overrides: Dict[str, Any] = {}
    if args.config:
        overrides.update(load_yaml(args.config))
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        v = getattr(args, f"cfg_{f.name}", None)
        if v is not None:  # read by the key's declared type, never as YAML: --seed '!!python/...' is not an integer
            overrides[f.name] = parse_value(f.name, v, hints[f.name]) if isinstance(v, str) else v
    overrides.update(parse_set(args.set))
    return make_config(overrides)


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    try:  # (--out: its kinds, permissions and room are checked by train(), before any work)
        summary = train(cfg, args.out, progress=not args.quiet)
    except TrainingDiverged as e:
        print(f"ganbench: run diverged: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # e.g. the disk filled up during training: one line; the same command resumes
        raise os_error(
            e, f"training the run in {quote(args.out)}", "fix that, then run the same command to resume"
        ) from None
    print(f"ganbench: done, {summary['steps']} steps; outputs in '{args.out}'")
    return 0

"""The run directory as one concept: its file names, provenance, checkpoints, lock, and loading a generator.

A run directory (``ganbench train --out RUN``) holds::

    config.yaml              the resolved config (every default filled in)
    run.json                 git commit, torch version, device, command
    log.jsonl                one JSON line per generator step
    metrics.jsonl            one JSON line per scored checkpoint (``ganbench evaluate``)
    checkpoints/last.pt      G, D, both optimisers, every RNG state, the step and the config hash (for resume)
    checkpoints/G_000500.pt  generator weights at each checkpoint step (for evaluation)
    samples/step_000500.png  a fixed-noise sample grid at each checkpoint
    eval/                    evaluation figures (t-SNE)
    done.json                written last: the run finished
    .lock                    held (flock) by the one process training the run; holds its pid

Checkpoints are read with ``torch.load(weights_only=True)``: they hold only tensors and plain values
(RNG states are stored as tensors), so a planted pickle is refused instead of run.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import platform
import random
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from benchmark import io
from benchmark.config import TrainConfig, load_yaml, make_config, semantic_dict
from benchmark.data import dataset_info
from benchmark.errors import UserError
from benchmark.models import build_models

CONFIG_FILE = "config.yaml"
RUN_INFO_FILE = "run.json"
LOG_FILE = "log.jsonl"
METRICS_FILE = "metrics.jsonl"
DONE_FILE = "done.json"
LOCK_FILE = ".lock"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
SAMPLES_DIR = "samples"
EVAL_DIR = "eval"
CHECKPOINT_FORMAT = 2  # 2: tensors and plain values only (weights_only); 1 (unversioned) was a full pickle


def generator_file(step: int) -> str:
    """File name of the generator weights at ``step`` inside ``checkpoints/``."""
    return f"G_{step:06d}.pt"


def sample_grid_file(step: int) -> str:
    """File name of the fixed-noise sample grid at ``step`` inside ``samples/``."""
    return f"step_{step:06d}.png"


def last_checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT


def generator_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / generator_file(step)


# ------------------------------------------------------------------------------------------------
# provenance


def run_info(device: torch.device) -> Dict[str, Any]:
    """Provenance of a run (``run.json``): code version, torch, device, Python, command, threads."""
    return {
        "git_commit": io.git_commit(),
        "torch": torch.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "command": sys.argv,
        "threads": torch.get_num_threads(),
    }


def config_hash(cfg: TrainConfig) -> str:
    """sha256 of the config's semantic keys (what decides the run's numbers): a checkpoint's identity."""
    return hashlib.sha256(json.dumps(semantic_dict(cfg), sort_keys=True, default=str).encode()).hexdigest()


# ------------------------------------------------------------------------------------------------
# one process per run directory


@contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold ``RUN/.lock`` (flock, released by the kernel when the process dies) while training.

    A second process on the same run directory stops at once with one line naming the holder's pid.
    """
    path = Path(run_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UserError(
                f"run directory '{run_dir}' is in use by process {holder}; wait for it to finish "
                "(or stop it), or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def remove_stale_temporaries(run_dir: str | Path) -> List[Path]:
    """Delete temporary files of atomic writes killed mid-way (call only while holding the run lock)."""
    run_dir = Path(run_dir)
    return [
        p for d in (run_dir, run_dir / CHECKPOINT_DIR, run_dir / SAMPLES_DIR) for p in io.remove_stale_temporaries(d)
    ]


# ------------------------------------------------------------------------------------------------
# RNG states as tensors and plain values (so checkpoints load with weights_only=True)


def rng_state(data_gen: torch.Generator) -> Dict[str, Any]:
    version, mt, gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return {
        "python": {"version": int(version), "state": torch.tensor(mt, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": str(np_kind),
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "data": data_gen.get_state(),
    }


def set_rng_state(state: Dict[str, Any], data_gen: torch.Generator) -> None:
    py, nps = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    np.random.set_state(
        (nps["kind"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"], nps["gauss"])
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    data_gen.set_state(state["data"])


# ------------------------------------------------------------------------------------------------
# checkpoints


def save_checkpoint(path: str | Path, state: Dict[str, Any]) -> None:
    """Write a checkpoint atomically; ``state`` holds only tensors and plain values."""
    io.torch_save({"format": CHECKPOINT_FORMAT, **state}, path)


def load_checkpoint(path: str | Path) -> Dict[str, Any]:
    """Read a checkpoint without unpickling code (``weights_only=True``); any failure is one line."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(
            f"checkpoint '{path}' is corrupt, unreadable or holds more than tensors "
            f"({type(e).__name__}; ganbench never unpickles code); delete it to restart the run from "
            "scratch (or restore it from a copy)"
        ) from None
    if not isinstance(ck, dict) or "step" not in ck:  # (generator files of format 1 hold only G and step: fine)
        raise UserError(f"checkpoint '{path}' is not a ganbench checkpoint; delete it to restart the run from scratch")
    return ck


def checkpoint_step(run_dir: str | Path) -> int:
    """The step ``last.pt`` of a run holds (0 when there is none)."""
    path = last_checkpoint_path(run_dir)
    return int(load_checkpoint(path)["step"]) if path.exists() else 0


def list_checkpoints(run_dir: str | Path) -> List[int]:
    """Steps that have generator weights, ascending."""
    ck = Path(run_dir) / CHECKPOINT_DIR
    return sorted(int(p.stem[2:]) for p in ck.glob("G_*.pt") if p.stem[2:].isdigit()) if ck.is_dir() else []


def read_run_config(run_dir: str | Path) -> TrainConfig:
    p = Path(run_dir) / CONFIG_FILE
    if not p.is_file():
        raise UserError(
            f"'{run_dir}' is not a run directory (no {CONFIG_FILE}); give the --out of a 'ganbench train' run"
        )
    return make_config(load_yaml(p))


def load_state(module: nn.Module, state: Dict[str, Any], what: str, path: str | Path) -> None:
    """``module.load_state_dict`` with a one-line error for weights of another architecture."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"checkpoint '{path}' does not fit this run's {what} ({first}); it belongs to another "
            "run: delete it, or use that run's --out"
        ) from None


def load_generator(
    run_dir: str | Path, step: Optional[int] = None, device: str | torch.device = "cpu"
) -> Tuple[nn.Module, TrainConfig, int]:
    """The generator of a run at ``step`` (default: the last checkpoint), in eval mode."""
    cfg = read_run_config(run_dir)
    steps = list_checkpoints(run_dir)
    if not steps:
        raise UserError(f"run '{run_dir}' has no checkpoints yet; train it first")
    step = steps[-1] if step is None else step
    if step not in steps:
        raise UserError(f"run '{run_dir}' has no checkpoint at step {step}; available: {', '.join(map(str, steps))}")
    shape, num_classes, _ = dataset_info(cfg.dataset)
    G, _ = build_models(cfg, shape, num_classes)
    path = generator_path(run_dir, step)
    load_state(G, load_checkpoint(path)["G"], "generator", path)
    return G.to(device).eval(), cfg, step


@torch.no_grad()
def generate(
    G: nn.Module, cfg: TrainConfig, n: int, seed: int = 0, device: str | torch.device = "cpu", batch: int = 1000
) -> Tuple[Tensor, Optional[Tensor]]:
    """``n`` samples (images clamped to [-1, 1]) from a seeded noise stream; balanced labels for conditional G."""
    g = torch.Generator().manual_seed(seed)
    G = G.to(device).eval()
    images = dataset_info(cfg.dataset)[2] == "image"  # mixture points (grid25 spans [-4, 4]) are not clamped
    xs, ys = [], []
    for i in range(0, n, batch):
        m = min(batch, n - i)
        z = torch.randn(m, cfg.z_dim, generator=g).to(device)
        y = ((torch.arange(i, i + m) % G.num_classes).to(device)) if cfg.conditional else None
        x = G(z, y).float()
        xs.append((x.clamp_(-1, 1) if images else x).cpu())
        if y is not None:
            ys.append(y.cpu())
    return torch.cat(xs), (torch.cat(ys) if ys else None)

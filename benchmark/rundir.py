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
    tb/                      TensorBoard event files (``tensorboard: true``; benchmark.tb)
    done.json                written last: the run finished
    .lock                    held (flock) by the one process training the run; holds its pid

Checkpoints are read with ``torch.load(weights_only=True)``: they hold only tensors and plain values
(RNG states are stored as tensors), so a planted pickle is refused instead of run. Each one carries the
sha256 of its own contents (``payload_sha256``), checked at load: a file damaged on disk or in a copy is
refused with one line instead of resuming from a corrupted optimiser state. Every file of the run that
a stage reads goes through one reader here (``read_done``, ``read_log``, ``read_metrics``,
``read_run_info``, ``read_run_config``), which turns a folder, a malformed or foreign file into one line
naming it and the fix.
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
from benchmark.errors import UserError, quote
from benchmark.models import build_models
from benchmark.paths import check_appendable, check_name, check_output_dir, check_output_file

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
TB_DIR = "tb"
CHECKPOINT_FORMAT = 3  # 3: + the sha256 of the contents; 2: tensors and plain values only (weights_only);
#   1 (unversioned) was a full pickle. Format 2 still loads (unverified, with a note): old runs resume.
CHECKSUM_KEY = "payload_sha256"
TRAIN_WRITES_FILES = (CONFIG_FILE, RUN_INFO_FILE, LOG_FILE, DONE_FILE, LOCK_FILE)  # what ``train`` writes
TRAIN_WRITES_FOLDERS = (CHECKPOINT_DIR, SAMPLES_DIR, TB_DIR)


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
    try:  # never through a symbolic link: the pid is written into the file
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as e:
        raise UserError(
            f"run directory {quote(run_dir)}: its lock file {quote(path)} cannot be opened ({e.strerror}); "
            "delete it (it is only a lock) and run again"
        ) from None
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


def payload_sha256(obj: Any) -> str:
    """sha256 of a checkpoint's contents: every tensor's dtype, shape and bytes and every plain value, in order.

    Computed over the values (not the file), so it is the same after ``torch.load`` as before ``torch.save``.
    """
    h = hashlib.sha256()
    _digest(obj, h)
    return h.hexdigest()


def _digest(o: Any, h: "hashlib._Hash") -> None:
    if isinstance(o, Tensor):
        t = o.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}:".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(o, dict):
        h.update(b"{%d" % len(o))
        for k, v in o.items():
            _digest(k, h)
            _digest(v, h)
    elif isinstance(o, (list, tuple)):
        h.update(b"%s%d" % (b"[" if isinstance(o, list) else b"(", len(o)))
        for v in o:
            _digest(v, h)
    elif isinstance(o, str):
        b = o.encode("utf-8", "surrogatepass")
        h.update(b"s%d:" % len(b) + b)
    elif isinstance(o, bool):
        h.update(b"B1" if o else b"B0")
    elif isinstance(o, int):
        h.update(b"i%d;" % o)
    elif isinstance(o, float):
        h.update(b"f" + o.hex().encode() + b";")
    elif o is None:
        h.update(b"N")
    elif isinstance(o, (torch.dtype, torch.device)):
        h.update(f"d{o};".encode())
    else:
        raise TypeError(f"a checkpoint holds only tensors and plain values, not {type(o).__name__}")


def save_checkpoint(path: str | Path, state: Dict[str, Any]) -> None:
    """Write a checkpoint atomically, with the sha256 of its contents; ``state`` holds only tensors and plain values."""
    payload = {"format": CHECKPOINT_FORMAT, **state}
    payload[CHECKSUM_KEY] = payload_sha256(payload)
    io.torch_save(payload, path)


_LEGACY_NOTED: set = set()


def load_checkpoint(path: str | Path) -> Dict[str, Any]:
    """Read a checkpoint without unpickling code (``weights_only=True``) and check the sha256 of its contents;
    any failure is one line. A checkpoint from before checksums (format 2) loads with a note."""
    fix = "delete it to restart the run from scratch (or restore it from a copy)"
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UserError(
            f"checkpoint {quote(path)} is corrupt, unreadable or holds more than tensors "
            f"({type(e).__name__}; ganbench never unpickles code); {fix}"
        ) from None
    if not isinstance(ck, dict) or "step" not in ck:  # (generator files of format 1 hold only G and step: fine)
        raise UserError(
            f"checkpoint {quote(path)} is not a ganbench checkpoint; delete it to restart the run from scratch"
        )
    fmt = ck.get("format", 1)
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt > CHECKPOINT_FORMAT:
        raise UserError(
            f"checkpoint {quote(path)} has format {fmt if isinstance(fmt, int) else quote(fmt, 20)}, and this "
            f"ganbench reads formats up to "
            f"{CHECKPOINT_FORMAT}; use the ganbench that wrote it, or {fix}"
        )
    stored = ck.pop(CHECKSUM_KEY, None)
    if stored is not None or fmt >= 3:
        try:
            ok = isinstance(stored, str) and payload_sha256(ck) == stored
        except TypeError:
            ok = False
        if not ok:
            raise UserError(
                f"checkpoint {quote(path)} is corrupt: its contents do not match the sha256 stored in it "
                f"(damaged on disk or in a copy); {fix}"
            )
    elif str(Path(path).parent) not in _LEGACY_NOTED:  # one note per checkpoints folder
        _LEGACY_NOTED.add(str(Path(path).parent))
        print(
            f"note: checkpoint {quote(path)} predates checksums (format {fmt}); it is loaded unverified (so are "
            "the older ones beside it), and the run's next checkpoint carries one",
            file=sys.stderr,
        )
    step = ck["step"]
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise UserError(f"checkpoint {quote(path)} holds the step {quote(step, 30)}, not a count; {fix}")
    return ck


def check_step(path: str | Path, step: int, cfg: TrainConfig, fix: str) -> None:
    """A checkpoint's step is one the run's config can reach (1..steps): a step of 10**12 is not this run's."""
    if not 1 <= step <= cfg.steps:
        raise UserError(
            f"checkpoint {quote(path)} is at step {step}, outside this run's 1..{cfg.steps} steps: it is not "
            f"this run's checkpoint; {fix}"
        )


def checkpoint_step(run_dir: str | Path) -> int:
    """The step ``last.pt`` of a run holds (0 when there is none)."""
    path = last_checkpoint_path(run_dir)
    return int(load_checkpoint(path)["step"]) if path.exists() else 0


def list_checkpoints(run_dir: str | Path) -> List[int]:
    """Steps that have generator weights, ascending."""
    ck = Path(run_dir) / CHECKPOINT_DIR
    if os.path.lexists(ck) and not ck.is_dir():
        raise UserError(
            f"run directory {quote(run_dir)} holds {quote(ck)} as a file, where ganbench keeps the checkpoints "
            "folder; move or delete it"
        )
    return sorted(int(p.stem[2:]) for p in ck.glob("G_*.pt") if p.stem[2:].isdigit()) if ck.is_dir() else []


# ------------------------------------------------------------------------------------------------
# reading the run's files: one guarded reader each (a folder, a malformed or foreign file is one line)


def read_run_config(run_dir: str | Path) -> TrainConfig:
    p = Path(run_dir) / CONFIG_FILE
    if not os.path.lexists(p):
        raise UserError(
            f"{quote(run_dir)} is not a run directory (no {CONFIG_FILE}); give the --out of a 'ganbench train' run"
        )
    return make_config(load_yaml(p, f"run {quote(run_dir)}: its config"))


def read_done(run_dir: str | Path) -> Dict[str, Any]:
    """``done.json`` (the summary of a finished run); it holds ``steps``."""
    p = Path(run_dir) / DONE_FILE
    fix = "delete it and run the same 'ganbench train' again (the run is re-checked from its last checkpoint)"
    done = io.read_json_checked(p, "run record", fix)
    if not isinstance(done.get("steps"), int) or isinstance(done.get("steps"), bool):
        raise UserError(f"run record {quote(p)} has no integer 'steps'; {fix}")
    return done


def read_log(run_dir: str | Path, max_steps: Optional[int] = None) -> List[Dict[str, Any]]:
    """The per-step records of ``log.jsonl`` ([] when absent); each has an integer ``step``."""
    p = Path(run_dir) / LOG_FILE
    fix = "delete it (its per-step records are lost; the run itself is in its checkpoints) or restore it"
    cap = None if max_steps is None else 4096 * (max_steps + 1)  # a record is ~200 bytes
    recs = io.read_jsonl_checked(p, "training log", fix, max_bytes=cap)
    for i, r in enumerate(recs, 1):
        if not isinstance(r.get("step"), int) or isinstance(r.get("step"), bool):
            raise UserError(f"training log {quote(p)}: record {i} has no integer 'step'; {fix}")
    return recs


def read_metrics(run_dir: str | Path) -> List[Dict[str, Any]]:
    """The score records of ``metrics.jsonl`` ([] when absent)."""
    p = Path(run_dir) / METRICS_FILE
    return io.read_jsonl_checked(p, "scores file", "delete it to score the run afresh with 'ganbench evaluate'")


def read_run_info(run_dir: str | Path) -> Dict[str, Any]:
    """``run.json`` (provenance)."""
    p = Path(run_dir) / RUN_INFO_FILE
    return io.read_json_checked(p, "run record", "delete it: 'ganbench train' on the run writes it again")


# ------------------------------------------------------------------------------------------------
# before training: the run directory's kinds, permissions and room


def check_run_dir(run_dir: str | Path, what: str = "--out") -> None:
    """Every file and folder training writes in ``run_dir`` is of the right kind and writable (a finished run,
    which training only reads, need not be writable): one line naming the path otherwise."""
    check_name(run_dir, what)  # ('' would be the current folder; a 300-character name fails every stat)
    out = Path(run_dir)
    finished = (out / DONE_FILE).is_file()
    if not finished:
        check_output_dir(out, what)
    for name in TRAIN_WRITES_FOLDERS:
        p = out / name
        if os.path.lexists(p) and not p.is_dir():
            raise UserError(
                f"run directory {quote(out)} holds {quote(p)} as a file, where ganbench keeps a folder; move or "
                "delete it (or use another --out)"
            )
    for name in TRAIN_WRITES_FILES:
        p = out / name
        if os.path.lexists(p) and not p.is_file():
            kind = "a folder" if p.is_dir() else "something other than a file"
            raise UserError(
                f"run directory {quote(out)} holds {quote(p)} as {kind}, where ganbench keeps a file; move or "
                "delete it (or use another --out)"
            )
    if finished:
        return
    where = f"run directory {quote(out)}:"
    for name in (CHECKPOINT_DIR, SAMPLES_DIR):
        check_output_dir(out / name, f"{where} the folder")
    for name in (CONFIG_FILE, RUN_INFO_FILE, DONE_FILE):
        check_output_file(out / name, f"{where} the file")
    for name in (LOG_FILE, LOCK_FILE):
        check_appendable(out / name, f"{where} the file")


GRID_BYTES = 256 << 10  # a sample grid PNG (64 MNIST digits: ~30 KiB; a scatter of points: ~60 KiB)
LOG_BYTES_PER_STEP = 256  # one log record


def _state_bytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def kept_steps(cfg: TrainConfig) -> int:
    """How many steps keep generator weights and a sample grid (``train``'s rule)."""
    if cfg.checkpoint_at:
        return len({s for s in cfg.checkpoint_at if s < cfg.steps}) + 1
    return cfg.steps // cfg.checkpoint_every + (cfg.steps % cfg.checkpoint_every != 0)


def bytes_needed(cfg: TrainConfig, G: nn.Module, D: nn.Module, run_dir: str | Path) -> int:
    """About how many bytes training ``cfg`` still writes in ``run_dir``: a generator file and a sample grid
    per kept step not yet there, ``last.pt`` twice (it is replaced by a rename), the log."""
    g, d = _state_bytes(G), _state_bytes(D)
    moments = 2 if cfg.optimizer == "adam" else 1
    last = (g + d) * (1 + moments) + (64 << 10)
    todo = max(kept_steps(cfg) - len(list_checkpoints(run_dir)), 0)
    return todo * (g + GRID_BYTES) + 2 * last + cfg.steps * LOG_BYTES_PER_STEP


def load_state(module: nn.Module, state: Dict[str, Any], what: str, path: str | Path) -> None:
    """``module.load_state_dict`` with a one-line error for weights of another architecture."""
    try:
        module.load_state_dict(state)
        if isinstance(module, torch.optim.Optimizer):  # (load_state_dict does not compare the shapes)
            for p, st in module.state.items():
                for k, v in st.items():
                    if isinstance(v, Tensor) and v.dim() and v.shape != p.shape:
                        raise ValueError(f"its {k} has shape {tuple(v.shape)} for a parameter of {tuple(p.shape)}")
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"checkpoint {quote(path)} does not fit this run's {what} ({first}); it belongs to another "
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
    ck = load_checkpoint(path)
    fix = "delete it (and score the run's other checkpoints), or re-train the run"
    if ck["step"] != step:
        raise UserError(f"checkpoint {quote(path)} holds step {ck['step']}, not the {step} of its name; {fix}")
    check_step(path, step, cfg, fix)
    # (its config hash is not compared with config.yaml's: a config key added to ganbench since the run was
    # trained would change that hash, and every old run would become unscorable; another architecture's
    # weights are refused by load_state)
    if "G" not in ck:
        raise UserError(f"checkpoint {quote(path)} holds no generator weights; {fix}")
    load_state(G, ck["G"], "generator", path)
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

"""Small things tests share: the real-MNIST check, one-line error checks, a user model given as 'module:function'."""

import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import pytest
from torch import nn

from benchmark.cli import main
from benchmark.models import MLPCritic

REPO = Path(__file__).resolve().parents[1]


def mnist_root() -> Optional[str]:
    """Real MNIST (both splits) from $GANBENCH_DATA, else ../shared/data; None when neither has it."""
    for cand in (os.environ.get("GANBENCH_DATA"), str(REPO.parent / "shared" / "data")):
        raw = Path(cand) / "MNIST" / "raw" if cand else None
        if raw and all((raw / f).is_file() for f in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")):
            return cand
    return None


MNIST_ROOT = mnist_root()
needs_mnist = pytest.mark.skipif(MNIST_ROOT is None, reason="real MNIST not found in $GANBENCH_DATA or ../shared/data")


class NaNGenerator(nn.Module):
    """A generator whose samples are NaN: the run must stop as diverged."""

    def __init__(self, cfg, shape, num_classes):
        super().__init__()
        self.shape, self.num_classes, self.lin = tuple(shape), 0, nn.Linear(cfg.z_dim, 1)

    def forward(self, z, y=None):
        out = self.lin(z) * float("nan")
        return out.expand(-1, math.prod(self.shape)).reshape(-1, *self.shape)


def nan_pair(cfg, shape, num_classes):
    return NaNGenerator(cfg, shape, num_classes), MLPCritic(cfg, shape, num_classes)


def one_line_error(capsys, argv, *needles):
    """Run ``ganbench argv`` in-process; assert exit status 2 and one stderr line holding every needle."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


# ---- hostile input: the tree a refused command must leave as it was ---------------------------------


def snapshot(root) -> dict:
    """{relative path: (sha256, mtime) of a file | 'folder' | 'link -> target'} of everything under ``root``: a
    file rewritten with the same bytes changes too (its mtime).

    A run's ``.lock`` is recorded by its existence only: its content is the pid of the last process that held
    it, rewritten by every process that takes the lock (the lock protocol, not the run's data).
    """
    import hashlib

    root = Path(root)
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = f"link -> {os.readlink(p)}"
        elif p.is_dir():
            out[rel] = "folder"
        elif p.name == ".lock":
            out[rel] = "lock"
        elif p.is_file():
            out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        else:
            out[rel] = "special"
    return out


def refused(capsys, argv, *needles, tree=None):
    """``one_line_error`` (exit 2, one stderr line, no traceback, every needle), and the tree under ``tree``
    (a folder, or a list of them) unchanged: nothing written, renamed or deleted."""
    roots = [] if tree is None else tree if isinstance(tree, (list, tuple)) else [tree]
    before = [snapshot(r) for r in roots]
    err = one_line_error(capsys, argv, *needles)
    for r, b in zip(roots, before):
        assert snapshot(r) == b, f"the refused command changed '{r}'"
    return err


# the smallest training run: ring8, toy models, 2 steps, one checkpoint (the argv of `ganbench train`, --out to add)
TINY = [
    "train",
    "--dataset",
    "ring8",
    "--model",
    "toy",
    "--steps",
    "2",
    "--checkpoint-every",
    "2",
    "--batch-size",
    "16",
    "--device",
    "cpu",
    "--quiet",
]


@contextmanager
def unprivileged():
    """Act as an ordinary user: root ignores file modes, so a root test run drops to 'nobody' (uid 65534) for a
    moment; the kernel then checks permissions for real (os.access, open, mkdir, rename)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@contextmanager
def shared_folder():
    """A temporary folder every user may traverse (pytest's own tmp_path is private to its owner), for tests
    that act as 'nobody' (``unprivileged``); removed afterwards whatever modes were set inside."""
    d = Path(tempfile.mkdtemp(prefix="ganbench-hostile-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        for p in [d, *d.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(d)


def fake_statvfs(monkeypatch, under: Path, *, read_only: bool = False, free: int | None = None):
    """``os.statvfs`` that reports the file system of ``under`` read-only and/or with ``free`` bytes."""
    real = os.statvfs
    under = str(Path(under).resolve())

    def statvfs(p):
        r = real(p)
        if not str(Path(p).resolve()).startswith(under):
            return r
        fields = {k: getattr(r, k) for k in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail")}
        fields.update(f_files=r.f_files, f_ffree=r.f_ffree, f_favail=r.f_favail, f_namemax=r.f_namemax)
        flag = r.f_flag | (os.ST_RDONLY if read_only else 0)
        if free is not None:
            fields["f_bavail"] = fields["f_bfree"] = free // r.f_frsize
        return os.statvfs_result(
            tuple(fields[k] for k in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail"))
            + (fields["f_files"], fields["f_ffree"], fields["f_favail"], flag, fields["f_namemax"])
        )

    monkeypatch.setattr(os, "statvfs", statvfs)

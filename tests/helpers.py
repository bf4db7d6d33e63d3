"""Small things tests share: the real-MNIST check, one-line error checks, a user model given as 'module:function'."""

import math
import os
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

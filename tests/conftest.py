"""Shared fixtures: real MNIST from ../shared/data (or $GANBENCH_DATA) where present."""
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def mnist_root():
    for cand in (os.environ.get("GANBENCH_DATA"), str(REPO.parent / "shared" / "data")):
        if cand and (Path(cand) / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return cand
    return None


@pytest.fixture(scope="session")
def mnist_data_root():
    root = mnist_root()
    if root is None:
        pytest.skip("real MNIST not found in ../shared/data or $GANBENCH_DATA")
    return root


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield

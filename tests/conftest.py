"""Shared fixtures: real MNIST from ../shared/data (or $GANBENCH_DATA) where present."""

import pytest
import torch

from helpers import MNIST_ROOT


@pytest.fixture(scope="session")
def mnist_data_root():
    if MNIST_ROOT is None:
        pytest.skip("real MNIST not found in $GANBENCH_DATA or ../shared/data")
    return MNIST_ROOT


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield

"""Dataset shapes, ranges and label sets, and the one-line error for a missing dataset."""

import pytest
import torch

from benchmark.data import DATASETS, dataset_info, load_dataset
from benchmark.errors import UserError


def test_registry_lists_every_dataset_and_rejects_unknown_names():
    assert set(DATASETS.names()) == {"mnist", "fashion-mnist", "stacked-mnist", "ring8", "grid25", "digits"}
    with pytest.raises(UserError, match="valid: digits, fashion-mnist, grid25, mnist, ring8, stacked-mnist"):
        DATASETS.get("cifar")


def test_digits_is_embedded_and_split():
    tr, te = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    assert tr.images.shape == (1500, 1, 8, 8) and te.images.shape == (297, 1, 8, 8)
    assert tr.images.min() == -1.0 and tr.images.max() == 1.0
    assert set(tr.labels.tolist()) == set(range(10))


@pytest.mark.parametrize("name,k,std", [("ring8", 8, 0.01), ("grid25", 25, 0.05)])
def test_mixtures_sit_near_their_means(name, k, std):
    ds = load_dataset(name)
    x, y = ds.sample(5000, torch.Generator().manual_seed(0))
    assert x.shape == (5000, 2) and ds.means.shape == (k, 2) and ds.num_classes == k
    d = torch.cdist(x, ds.means)
    assert (d.min(1).values < 5 * std).all()  # every sample within a few std of a mean
    assert torch.equal(d.argmin(1), y)  # ... of its own mean
    assert set(y.tolist()) == set(range(k))
    if name == "ring8":
        assert torch.allclose(ds.means.norm(dim=1), torch.ones(8))
        angles = torch.atan2(ds.means[:, 1], ds.means[:, 0])
        assert len(set(angles.round(decimals=4).tolist())) == 8
    else:
        assert sorted(set(ds.means[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


def test_sampling_is_seeded():
    ds = load_dataset("digits")
    a = ds.sample(16, torch.Generator().manual_seed(3))
    b = ds.sample(16, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_missing_torchvision_data_is_one_line_naming_files_and_fixes(tmp_path):
    with pytest.raises(UserError) as e:
        load_dataset("mnist", root=str(tmp_path), download=False)
    msg = str(e.value)
    assert "\n" not in msg and "train-images-idx3-ubyte" in msg
    assert "--data-root" in msg and "GANBENCH_DATA" in msg


def test_shapes_known_without_loading():
    assert dataset_info("stacked-mnist") == ((3, 28, 28), 1000, "image")
    assert dataset_info("grid25") == ((2,), 25, "points")


def test_mnist_matches_the_published_counts(mnist_data_root):
    tr = load_dataset("mnist", root=mnist_data_root)
    te = load_dataset("mnist", root=mnist_data_root, split="test")
    assert tr.images.shape == (60000, 1, 28, 28) and te.images.shape == (10000, 1, 28, 28)
    assert tr.images.min() == -1.0 and tr.images.max() == 1.0
    assert torch.bincount(tr.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert ((tr.images + 1) / 2).mean().item() == pytest.approx(0.1307, abs=1e-4)


def test_stacked_mnist_has_1000_modes(mnist_data_root):
    ds = load_dataset("stacked-mnist", root=mnist_data_root)
    x, y = ds.sample(20000, torch.Generator().manual_seed(0))
    assert x.shape == (20000, 3, 28, 28) and ds.num_classes == 1000
    assert 0 <= y.min() and y.max() < 1000
    assert len(set(y.tolist())) > 990  # 20k draws over 1000 near-uniform modes miss almost none
    # the label is the 3-digit number of the channels' digits
    idx = torch.randint(len(ds), (5, 3), generator=torch.Generator().manual_seed(1))
    xs, ys = ds._gather(idx)
    want = ds.digit_labels[idx[:, 0]] * 100 + ds.digit_labels[idx[:, 1]] * 10 + ds.digit_labels[idx[:, 2]]
    assert torch.equal(ys, want) and torch.equal(xs[:, 1], ds.digits[idx[:, 1]])

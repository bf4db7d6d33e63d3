"""Dataset shapes, ranges and label sets, the idx reader and downloads, and the one-line error for a missing dataset."""

from pathlib import Path

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


# ---- MNIST-layout files, read with numpy ---------------------------------------------------------------


def _write_idx(path, array):
    """An idx file as LeCun publishes them: 0, 0, type 0x08, ndim, big-endian int32 dims, the bytes."""
    import numpy as np

    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def test_idx_reader_reads_the_header_and_refuses_a_wrong_one(tmp_path):
    import numpy as np

    from benchmark.data import read_idx

    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "ok", a)
    assert np.array_equal(read_idx(tmp_path / "ok"), a)
    _write_idx(tmp_path / "labels", np.array([7, 0, 9], dtype=np.uint8))
    assert read_idx(tmp_path / "labels").tolist() == [7, 0, 9]
    good = (tmp_path / "ok").read_bytes()
    for name, blob in [
        ("int32-type", good[:2] + b"\x0c" + good[3:]),  # another element type
        ("short", good[:-1]),  # the dims promise one byte more than there is
        ("dims", good[:4] + (3).to_bytes(4, "big") + good[8:]),  # 3 x 3 x 4 in a file of 2 x 3 x 4
        ("tiny", b"\x00\x00"),
    ]:
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(UserError, match="is not an idx file of unsigned bytes") as e:
            read_idx(tmp_path / name)
        assert "\n" not in str(e.value) and name in str(e.value)


def test_mnist_read_with_numpy_is_bit_identical_to_torchvision(mnist_data_root):
    """An independent reader (torchvision's) of the same files gives the same tensors, both splits."""
    import torchvision

    for split in ("train", "test"):
        ours = load_dataset("mnist", root=mnist_data_root, split=split, download=False)
        tv = torchvision.datasets.MNIST(mnist_data_root, train=split == "train", download=False)
        assert torch.equal(ours.images, tv.data.float().div(127.5).sub(1.0).unsqueeze(1))
        assert ours.labels.dtype == torch.int64 and torch.equal(ours.labels, tv.targets)
        stacked = load_dataset("stacked-mnist", root=mnist_data_root, split=split, download=False)
        assert torch.equal(stacked.digits, ours.images[:, 0]) and torch.equal(stacked.digit_labels, tv.targets)


def test_reading_mnist_does_not_import_torchvision(mnist_data_root):
    import subprocess
    import sys

    code = (
        "import sys; from benchmark.data import load_dataset; "
        f"d = load_dataset('mnist', root={mnist_data_root!r}, download=False); "
        "print(len(d), 'torchvision' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["60000", "False"]


def test_fashion_mnist_is_read_from_its_idx_files(tmp_path):
    """No network and no copy of Fashion-MNIST here: files of its layout and sizes, with known bytes."""
    import numpy as np

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    want = {}
    for prefix, n in (("train", 60000), ("t10k", 10000)):
        x, y = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", x)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
        want[prefix] = (x, y)
    ds = load_dataset("fashion-mnist", root=str(tmp_path), split="test", download=False)
    x, y = want["t10k"]
    assert ds.images.shape == (10000, 1, 28, 28) and ds.labels.tolist() == y.tolist()
    assert torch.equal(ds.images[:, 0], torch.from_numpy(x).float() / 127.5 - 1.0)


# ---- downloads: checked like found files; a failed one leaves nothing behind -----------------------------


def test_failed_download_leaves_no_folders(tmp_path, monkeypatch):
    """torchvision's own download code, offline: the MNIST/raw folders it made are removed again."""
    import urllib.error
    import urllib.request

    def offline(*a, **k):
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    root = tmp_path / "data"
    with pytest.raises(UserError, match="could not be downloaded") as e:
        load_dataset("mnist", root=str(root), download=True)
    assert "\n" not in str(e.value)
    assert not root.exists()  # not even the data root it created
    # a data root that was there stays, with what it held; only what the attempt made goes
    (root / "MNIST" / "raw").mkdir(parents=True)
    (root / "MNIST" / "raw" / "notes.txt").write_text("mine")
    (root / "FashionMNIST").mkdir()
    with pytest.raises(UserError, match="could not be downloaded"):
        load_dataset("fashion-mnist", root=str(root), download=True)
    with pytest.raises(UserError, match="could not be downloaded"):
        load_dataset("mnist", root=str(root), download=True)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == [
        "FashionMNIST",
        "MNIST",
        "MNIST/raw",
        "MNIST/raw/notes.txt",
    ]


def test_download_interrupted_midway_removes_its_partial_files(tmp_path, monkeypatch):
    import benchmark.data as data

    def partial(cls_name, root):
        raw = tmp_path / cls_name / "raw"
        raw.mkdir(parents=True)
        (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "_fetch", partial)
    with pytest.raises(KeyboardInterrupt):
        load_dataset("mnist", root=str(tmp_path), download=True)
    assert list(tmp_path.iterdir()) == []


def test_downloaded_files_are_checked_like_found_ones(mnist_data_root, tmp_path, monkeypatch):
    import benchmark.data as data

    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    src = Path(mnist_data_root) / "MNIST" / "raw"

    def fetch(damage):
        def _fetch(cls_name, root):
            raw = Path(root) / cls_name / "raw"
            raw.mkdir(parents=True)
            for f in data.MNIST_FILES:
                (raw / f).symlink_to(src / f)
            if damage:
                (raw / damage).unlink()
                (raw / damage).write_bytes(b"\x00" * data.MNIST_FILES[damage][0])

        return _fetch

    monkeypatch.setattr(data, "_fetch", fetch(None))
    ds = load_dataset("mnist", root=str(tmp_path / "ok"), split="test", download=True)
    assert torch.bincount(ds.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    monkeypatch.setattr(data, "_fetch", fetch("t10k-labels-idx1-ubyte"))
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte' is corrupt"):
        load_dataset("mnist", root=str(tmp_path / "bad"), split="test", download=True)

"""Hostile input to the evaluation stage (`ganbench evaluate`, `ganbench classifier train|test`): paths of the wrong
kind, absurd counts, sample files whose headers promise more than any sample file holds, a manifest or log that
is malformed, a device that does not exist, two evaluations of one run at once. Each refused case ends with exit
status 2, one stderr line, no traceback, and the tree it was given unchanged; the size checks run before a byte
of an array is decompressed.
"""

from __future__ import annotations

import fcntl
import io as _io
import os
import shutil
import subprocess
import sys
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from benchmark import io, rundir
from benchmark.cli import main
from benchmark.evaluation import samples as samples_mod
from benchmark.evaluation.runs import MAX_SAMPLES, record_key
from helpers import REPO, refused, shared_folder, snapshot, unprivileged

TINY = [
    "train",
    "--dataset",
    "ring8",
    "--model",
    "toy",
    "--steps",
    "4",
    "--checkpoint-every",
    "2",
    "--batch-size",
    "16",
    "--device",
    "cpu",
    "--quiet",
]
SCORE = ["--metrics", "modes", "--num-samples", "2500", "--quiet"]


@pytest.fixture
def shared_tmp():
    with shared_folder() as d:
        yield d


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "run"
    assert main(TINY + ["--out", str(out)]) == 0
    return out


def copy_run(trained: Path, where: Path) -> Path:
    out = where / "run"
    shutil.copytree(trained, out, symlinks=True)
    return out


def npz(path: Path, members: dict) -> Path:
    """An archive of raw members ({name: bytes}), as numpy.savez would lay it out (or not)."""
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def npy(shape, descr="<f4", data: bytes = b"") -> bytes:
    """An .npy header for ``shape`` followed by ``data`` (a forged header promises what it likes)."""
    b = _io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return b.getvalue() + data


# ---- sample files sized from their headers, before anything is decompressed ------------------------------------


def _sample_cases():
    """(id, make(tmp) -> (path, needles), sized): ``sized`` cases are refused from their headers alone."""

    def zeros_bomb(tmp):  # 12.5 M points of zeros: ~0.1 MB compressed
        np.savez_compressed(tmp / "s.npz", images=np.zeros((12_500_000, 2), np.float32))
        return tmp / "s.npz", ["12500000 samples", f"{MAX_SAMPLES}"]

    def header_1e12(tmp):
        return npz(tmp / "s.npz", {"images.npy": npy((10**12, 2), data=b"\0" * 64)}), ["1000000000000 samples"]

    def wide_rows(tmp):  # few samples, each absurdly large
        return npz(tmp / "s.npz", {"images.npy": npy((10, 10**12), data=b"\0" * 64)}), ["header says shape", "bytes"]

    def labels_1e12(tmp):
        arrays = {"images.npy": npy((4, 2), data=b"\0" * 32), "labels.npy": npy((10**12,), "<i8")}
        return npz(tmp / "s.npz", arrays), ["'labels' header", "1000000000000 samples"]

    def truncated(tmp):
        return npz(tmp / "s.npz", {"images.npy": npy((1000, 2), data=b"\0" * 64)}), ["less than", "truncated"]

    def bare_name(tmp):  # the member 'images' (no .npy) is what np.load reads for 'images' too
        return npz(tmp / "s.npz", {"images": npy((10**9, 2))}), ["1000000000 samples"]

    def twice(tmp):  # two members of one name: the one np.load reads is sized too
        with zipfile.ZipFile(tmp / "s.npz", "w") as z:
            z.writestr("images.npy", npy((2, 2), data=b"\0" * 16))
            with pytest.warns(UserWarning):
                z.writestr("images.npy", npy((10**9, 2)))
        return tmp / "s.npz", ["1000000000 samples"]

    def many_members(tmp):
        return npz(tmp / "s.npz", {f"m{i}.npy": b"" for i in range(100)}), ["100 members"]

    def bad_header(tmp):
        return npz(tmp / "s.npz", {"images.npy": b"\x93NUMPY\x01\x00\x04\x00{'de"}), ["not a readable .npz"]

    def not_npy(tmp):
        return npz(tmp / "s.npz", {"images.npy": b"hello world"}), ["not a readable .npz"]

    def pk_not_zip(tmp):
        (tmp / "s.npz").write_bytes(b"PK\x03\x04" + b"\0" * 100)
        return tmp / "s.npz", ["not a readable .npz"]

    def object_dtype(tmp):
        return npz(tmp / "s.npz", {"images.npy": npy((4, 2), "|O", b"\0" * 64)}), ["not a readable .npz"]

    return [
        ("zeros-bomb-12.5M", zeros_bomb, True),
        ("header-1e12", header_1e12, True),
        ("wide-rows", wide_rows, True),
        ("labels-1e12", labels_1e12, True),
        ("truncated", truncated, True),
        ("bare-member-name", bare_name, True),
        ("member-twice", twice, True),
        ("100-members", many_members, True),
        ("bad-header", bad_header, True),
        ("not-npy", not_npy, True),
        ("pk-not-zip", pk_not_zip, True),
        ("object-dtype", object_dtype, False),
    ]


@pytest.mark.parametrize("make,sized", [c[1:] for c in _sample_cases()], ids=[c[0] for c in _sample_cases()])
def test_sample_files_are_sized_from_their_headers_before_decompressing(tmp_path, capsys, monkeypatch, make, sized):
    path, needles = make(tmp_path)
    if sized:  # refused from the zip's member headers and the .npy headers: np.load never opens the archive
        monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("the archive was decompressed before it was sized"))
    argv = ["evaluate", "--samples", str(path), "--dataset", "ring8", "--json", str(tmp_path / "r.json"), *SCORE]
    refused(capsys, argv, "sample file", *needles, tree=tmp_path)


def test_ordinary_sample_files_pass_the_size_check(tmp_path):
    """savez and savez_compressed, with labels, at the sample limit's scale: the headers' sizes are what they hold."""
    x = np.random.default_rng(0).normal(size=(3000, 2)).astype(np.float32)
    images = np.random.default_rng(1).integers(0, 256, size=(3000, 28, 28), dtype=np.uint8)
    labels = np.arange(3000) % 10
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "s.npz", images=x)
        got, y = samples_mod.load_samples(tmp_path / "s.npz", "ring8")
        assert got.shape == (3000, 2) and np.array_equal(got.numpy(), x) and y is None
        save(tmp_path / "u.npz", images=images, labels=labels)
        got, y = samples_mod.load_samples(tmp_path / "u.npz", "mnist")
        assert got.shape == (3000, 1, 28, 28) and y.tolist() == labels.tolist()
        assert np.array_equal(((got.numpy()[:, 0] + 1) * 127.5).round().astype(np.uint8), images)


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda t: (t / "d.npz").mkdir() or t / "d.npz", "is a folder"),
        (lambda t: os.mkfifo(t / "p.npz") or t / "p.npz", "not a regular file"),
        (lambda t: Path("/dev/null"), "not a regular file"),
        (lambda t: t / "none.npz", "does not exist"),
        (lambda t: "", "--samples is empty"),
    ],
    ids=["folder", "fifo", "dev-null", "missing", "empty"],
)
def test_samples_of_the_wrong_kind_are_one_line(shared_tmp, capsys, make, needle):
    argv = ["evaluate", "--samples", str(make(shared_tmp)), "--dataset", "ring8", *SCORE]
    refused(capsys, argv, needle, tree=shared_tmp)


def test_unreadable_samples_are_one_line(shared_tmp, capsys):
    np.savez(shared_tmp / "s.npz", images=np.zeros((3000, 2), np.float32))
    (shared_tmp / "s.npz").chmod(0)
    with unprivileged():
        refused(capsys, ["evaluate", "--samples", str(shared_tmp / "s.npz"), "--dataset", "ring8"], "not readable")


# ---- evaluate: --json, --cache-root, $GANBENCH_CACHE, --device ---------------------------------------------------


def _out_cases(tmp: Path):
    tmp.mkdir()
    (tmp / "f").write_text("x")
    (tmp / "d").mkdir()
    return [
        (tmp / "d", ["is a folder"]),
        (tmp / "f" / "o.json", ["is a file"]),
        (Path("/proc/x.json"), ["proc file system"]),
        (Path("/sys/x.json"), ["sysfs file system"]),
        ("", ["--json is empty"]),
    ]


def test_evaluate_json_is_checked_before_scoring(tmp_path, capsys):
    np.savez(tmp_path / "s.npz", images=np.zeros((3000, 2), np.float32))
    for out, needles in _out_cases(tmp_path / "o"):
        argv = ["evaluate", "--samples", str(tmp_path / "s.npz"), "--dataset", "ring8", "--json", str(out), *SCORE]
        refused(capsys, argv, "--json", *needles, tree=tmp_path)


def _cache_cases(tmp: Path):
    (tmp / "f").write_text("x")
    return [
        (tmp / "f", "is a file, not a folder"),
        (tmp / "f" / "c", "is a file"),
        (Path("/proc/x"), "proc file system"),
        (Path("/sys/kernel/x"), "sysfs file system"),
    ]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_cache_root_is_checked_before_scoring_samples(tmp_path, capsys, monkeypatch, how):
    np.savez(tmp_path / "s.npz", images=np.zeros((3000, 2), np.float32))
    base = ["evaluate", "--samples", str(tmp_path / "s.npz"), "--dataset", "ring8", *SCORE]
    (tmp_path / "c").mkdir()
    for cache, needle in _cache_cases(tmp_path / "c"):
        if how == "flag":
            refused(capsys, base + ["--cache-root", str(cache)], "--cache-root", needle, tree=tmp_path)
        else:
            monkeypatch.setenv("GANBENCH_CACHE", str(cache))
            refused(capsys, base, "$GANBENCH_CACHE", needle, tree=tmp_path)


def test_the_default_cache_folder_is_checked_before_scoring(tmp_path, capsys, monkeypatch):
    np.savez(tmp_path / "s.npz", images=np.zeros((3000, 2), np.float32))
    (tmp_path / "xdg").mkdir()
    (tmp_path / "xdg" / "ganbench").write_text("x")  # $XDG_CACHE_HOME/ganbench is a file
    monkeypatch.delenv("GANBENCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    argv = ["evaluate", "--samples", str(tmp_path / "s.npz"), "--dataset", "ring8", *SCORE]
    refused(capsys, argv, "the cache folder", "$GANBENCH_CACHE", "is a file, not a folder", tree=tmp_path)


def test_cache_root_is_checked_before_scoring_a_run(trained, tmp_path, capsys, monkeypatch):
    run = copy_run(trained, tmp_path)
    (tmp_path / "c").mkdir()
    for cache, needle in _cache_cases(tmp_path / "c"):
        refused(
            capsys, ["evaluate", str(run), *SCORE, "--cache-root", str(cache)], "--cache-root", needle, tree=tmp_path
        )
        monkeypatch.setenv("GANBENCH_CACHE", str(cache))
        refused(capsys, ["evaluate", str(run), *SCORE], "$GANBENCH_CACHE", needle, tree=tmp_path)
        monkeypatch.delenv("GANBENCH_CACHE")


def test_unwritable_cache_root_is_one_line(shared_tmp, capsys):
    np.savez(shared_tmp / "s.npz", images=np.zeros((3000, 2), np.float32))
    locked = shared_tmp / "locked"
    locked.mkdir(mode=0o555)
    argv = ["evaluate", "--samples", str(shared_tmp / "s.npz"), "--dataset", "ring8", *SCORE]
    for cache in (locked, locked / "c"):
        with unprivileged():
            refused(capsys, argv + ["--cache-root", str(cache)], "--cache-root", "not writable", tree=shared_tmp)


@pytest.mark.parametrize("device", ["foo", "cuda:", "cpu\n", "cuda:-1", "CPU", " cpu"])
def test_evaluate_device_that_does_not_exist_is_one_line(trained, tmp_path, capsys, device):
    run = copy_run(trained, tmp_path)
    refused(capsys, ["evaluate", str(run), *SCORE, "--device", device], "device", tree=tmp_path)
    np.savez(tmp_path / "s.npz", images=np.zeros((3000, 2), np.float32))
    argv = ["evaluate", "--samples", str(tmp_path / "s.npz"), "--dataset", "ring8", *SCORE, "--device", device]
    refused(capsys, argv, "device", tree=tmp_path)


# ---- evaluate RUN: the run's files read through the guarded readers ----------------------------------------------


@pytest.mark.parametrize(
    "name,content,needles",
    [
        (rundir.LOG_FILE, b"\x00\x01binary", ["training log", "binary"]),
        (rundir.LOG_FILE, b'{"step": "x"}\n', ["training log", "integer 'step'"]),
        (rundir.LOG_FILE, b"[1, 2]\n", ["training log", "not a record"]),
        (rundir.LOG_FILE, "folder", ["training log", "is a folder"]),
        (rundir.METRICS_FILE, "folder", ["scores file", "is a folder"]),
        (rundir.METRICS_FILE, b'"text"\n', ["scores file", "not a record"]),
        (rundir.METRICS_FILE, b"[" * 100_000 + b"\n", ["scores file", "deeper"]),
    ],
    ids=["log-binary", "log-step", "log-array", "log-folder", "metrics-folder", "metrics-text", "metrics-deep"],
)
def test_run_files_that_evaluate_reads_are_one_line(trained, tmp_path, capsys, name, content, needles):
    run = copy_run(trained, tmp_path)
    p = run / name
    p.unlink(missing_ok=True)
    p.mkdir() if content == "folder" else p.write_bytes(content)
    metrics = ["--metrics", "dynamics"] if name == rundir.LOG_FILE else []
    argv = ["evaluate", str(run), *SCORE, *metrics]
    refused(capsys, argv, *needles, tree=tmp_path)


# ---- classifier train|test ---------------------------------------------------------------------------------------


@pytest.fixture
def no_work(monkeypatch):
    """Training or testing an evaluator would start work: forbidden in a refused command."""
    import benchmark.evaluation.classifier.training as training
    import benchmark.evaluation.cli as ecli

    def forbidden(*a, **k):
        raise AssertionError("work started before the flags were checked")

    monkeypatch.setattr(training, "_fit", forbidden)
    monkeypatch.setattr(ecli, "load_dataset", forbidden)
    monkeypatch.setattr(ecli, "load_classifier", forbidden)


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["--epochs", "1000000000"], ["--epochs", "[1, 1000]"]),
        (["--epochs", "0"], ["--epochs", "[1, 1000]"]),
        (["--epochs", "-5"], ["--epochs"]),
        (["--seed", "-1"], ["--seed"]),
        (["--seed", str(2**64)], ["--seed"]),
        (["--threads", "0"], ["--threads"]),
        (["--threads", "100000"], ["--threads"]),
    ],
)
def test_classifier_train_counts_are_bounded(tmp_path, capsys, no_work, argv, needles):
    cmd = ["classifier", "train", "--dataset", "digits", "--out", str(tmp_path / "w"), "--quiet", *argv]
    refused(capsys, cmd, *needles, tree=tmp_path)


def test_classifier_train_out_is_checked_before_training(shared_tmp, capsys, no_work):
    base = ["classifier", "train", "--dataset", "digits", "--quiet", "--epochs", "1"]
    (shared_tmp / "f").write_text("x")
    locked = shared_tmp / "locked"
    locked.mkdir(mode=0o555)
    for out, needle in [
        (shared_tmp / "f", "is a file, not a folder"),
        (shared_tmp / "f" / "w", "is a file"),
        (Path("/proc/x"), "proc file system"),
        (Path("/sys/x/w"), "sysfs file system"),
        ("", "--out is empty"),
    ]:
        refused(capsys, base + ["--out", str(out)], "--out", needle, tree=shared_tmp)
    with unprivileged():
        refused(capsys, base + ["--out", str(locked / "w")], "--out", "not writable", tree=shared_tmp)


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["--limit", "0"], ["--limit"]),
        (["--limit", "1000000000"], ["--limit", "[1, 10000000]"]),
        (["--threads", "0"], ["--threads"]),
    ],
)
def test_classifier_test_counts_are_bounded(tmp_path, capsys, no_work, argv, needles):
    refused(capsys, ["classifier", "test", "--dataset", "digits", *argv], *needles, tree=tmp_path)


def test_classifier_test_json_is_checked_before_any_work(tmp_path, capsys, no_work):
    """`classifier test --json /proc/x` failed after the whole corruption table had been measured."""
    for out, needles in _out_cases(tmp_path / "o"):
        argv = ["classifier", "test", "--dataset", "digits", "--json", str(out)]
        refused(capsys, argv, *needles, tree=tmp_path)


def test_classifier_test_weights_of_the_wrong_kind_are_one_line(shared_tmp, capsys, no_work):
    (shared_tmp / "f").write_text("x")
    os.mkfifo(shared_tmp / "p")
    for w, needle in [
        (shared_tmp / "f", "is a file, not a folder"),
        (shared_tmp / "p", "not a folder"),
        (shared_tmp / "none", "does not exist"),
        ("", "--weights is empty"),
    ]:
        refused(capsys, ["classifier", "test", "--dataset", "digits", "--weights", str(w)], needle, tree=shared_tmp)


@pytest.mark.parametrize(
    "content,needle",
    [
        ("folder", "is a folder"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "holds an array, not an object"),
        (b'{"digits": 5}', "is not an object"),
        (b"\xff\xfe", "not a text file"),
        (b'{"digits": {"sha256": ' + b"9" * 500 + b"}}", "digits"),
    ],
    ids=["folder", "malformed", "array", "entry-not-object", "binary", "huge-number"],
)
def test_a_malformed_evaluator_manifest_is_one_line(tmp_path, capsys, monkeypatch, content, needle):
    import benchmark.evaluation.cli as ecli

    monkeypatch.setattr(ecli, "load_dataset", lambda *a, **k: pytest.fail("work started"))
    w = tmp_path / "w"
    w.mkdir()
    p = w / "manifest.json"
    p.mkdir() if content == "folder" else p.write_bytes(content)
    refused(capsys, ["classifier", "test", "--dataset", "digits", "--weights", str(w)], "manifest", needle, tree=w)


# ---- two evaluations of one run at once ------------------------------------------------------------------------


@contextmanager
def holding_the_evaluation_lock(run: Path):
    """What a running `ganbench evaluate` of ``run`` holds (runs.eval_lock: an flock of the run directory)."""
    fd = os.open(run, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)


def _note(proc) -> str:
    """The stderr lines of ``proc`` up to its note that it waits for the lock (all of them if it never says so)."""
    lines = []
    for raw in iter(proc.stderr.readline, b""):
        lines.append(raw.decode(errors="replace"))
        if "being scored by another process" in lines[-1]:
            break
    return "".join(lines)


def test_two_evaluations_of_one_run_write_each_record_once(trained, tmp_path):
    """Two real `ganbench evaluate` processes of one run, started while the evaluation lock is held (so both have
    read the scores file, finding nothing, before either scores): each checkpoint's record is written once (it
    was 8 records for 4 keys), and the process that waited reuses the other's records."""
    run = copy_run(trained, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "benchmark", "evaluate", str(run), *SCORE, "--threads", "1"]
    with holding_the_evaluation_lock(run):
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        notes = [_note(p) for p in procs]  # both wait for the lock, and say so
        assert all("being scored by another process" in n for n in notes), notes
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1].decode()[-2000:] for o in outs]
    recs = io.read_jsonl(run / rundir.METRICS_FILE)
    assert sorted(r["step"] for r in recs) == rundir.list_checkpoints(run) == [2, 4]
    assert len({record_key(r) for r in recs}) == len(recs) == 2
    # both printed the same scores: the second read the first one's records
    assert outs[0][0] == outs[1][0] and b"step 2:" in outs[0][0] and b"step 4:" in outs[0][0]
    before = snapshot(run)
    assert main(["evaluate", str(run), *SCORE]) == 0  # all scored: nothing written
    assert snapshot(run) == before

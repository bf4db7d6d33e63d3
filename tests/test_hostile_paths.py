"""Hostile paths: every path `train` and `regress` take is checked for kind, name, permission and room before any
work. Each case ends with exit status 2, one stderr line, no traceback, and the tree it was given unchanged.

Root ignores file modes, and these tests run as root here: "unwritable" is simulated by dropping to the
'nobody' user for the call (``helpers.unprivileged``: the kernel then refuses for real), a read-only mount and
a full disk by an ``os.statvfs`` that reports them for one folder (mounting needs privileges a test does not
have), and kernel file systems are the real ``/proc`` and ``/sys``.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark import paths
from benchmark.errors import UserError
from helpers import TINY, fake_statvfs, refused, shared_folder, snapshot, unprivileged


@pytest.fixture
def shared_tmp():
    with shared_folder() as d:
        yield d


# ---- train --out ---------------------------------------------------------------------------------------


def _out_cases():
    """(id, make(tmp) -> (out, needles)); ``tmp`` is a fresh folder every user may traverse."""

    def file_(tmp):
        (tmp / "f").write_text("x")
        return tmp / "f", ["is a file, not a folder"]

    def under_file(tmp):
        (tmp / "f").write_text("x")
        return tmp / "f" / "run", ["cannot be created", "is a file"]

    def fifo(tmp):
        os.mkfifo(tmp / "pipe")
        return tmp / "pipe", ["not a folder"]

    def broken_link(tmp):
        (tmp / "link").symlink_to(tmp / "nowhere")
        return tmp / "link", ["broken symbolic link"]

    def link_loop(tmp):
        (tmp / "a").symlink_to(tmp / "b")
        (tmp / "b").symlink_to(tmp / "a")
        return tmp / "a", ["loop of symbolic links"]

    def long_name(tmp):
        return tmp / ("a" * 300), ["300 bytes", "at most 255"]

    def long_part(tmp):
        return tmp / ("b" * 256) / "run", ["256 bytes", "at most 255"]

    def long_path(tmp):
        return tmp / "/".join(["d" * 200] * 21), ["bytes long", "shorter"]

    def newline_name(tmp):
        (tmp / "a\nb").write_text("x")
        return tmp / "a\nb", ["a\\nb", "is a file"]

    def nul(tmp):
        return str(tmp / "a") + "\x00b", ["NUL"]

    return [
        ("file", file_),
        ("under-a-file", under_file),
        ("fifo", fifo),
        ("dev-null", lambda tmp: (Path("/dev/null"), ["not a folder"])),
        ("broken-link", broken_link),
        ("link-loop", link_loop),
        ("proc", lambda tmp: (Path("/proc/x"), ["proc file system"])),
        ("proc-self", lambda tmp: (Path("/proc/self/x/run"), ["proc file system"])),
        ("sys", lambda tmp: (Path("/sys/x"), ["sysfs file system"])),
        ("sys-kernel", lambda tmp: (Path("/sys/kernel/x/run"), ["sysfs file system"])),
        ("name-300", long_name),
        ("part-256", long_part),
        ("path-4200", long_path),
        ("newline", newline_name),
        ("nul", nul),
    ]


@pytest.mark.parametrize("make", [c[1] for c in _out_cases()], ids=[c[0] for c in _out_cases()])
def test_out_of_the_wrong_kind_or_name_is_one_line(shared_tmp, capsys, make):
    out, needles = make(shared_tmp)
    refused(capsys, TINY + ["--out", str(out)], "--out", *needles, tree=shared_tmp)


def test_empty_out_is_not_the_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(capsys, TINY + ["--out", ""], "--out is empty", tree=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_out_is_one_line(shared_tmp, capsys):
    locked = shared_tmp / "locked"
    locked.mkdir(mode=0o555)
    for out, needle in [(locked, "is not writable by you"), (locked / "a" / "run", f"'{locked}' is not writable")]:
        with unprivileged():
            refused(capsys, TINY + ["--out", str(out)], "--out", needle, tree=shared_tmp)


def test_out_on_a_read_only_file_system_is_one_line(tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    fake_statvfs(monkeypatch, ro, read_only=True)
    for out in (ro, ro / "run"):
        refused(capsys, TINY + ["--out", str(out)], "--out", "read-only file system", tree=tmp_path)


def test_out_on_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    fake_statvfs(monkeypatch, tmp_path, free=100 << 10)
    refused(capsys, TINY + ["--out", str(tmp_path / "run")], "--out", "100.0 KiB free", "needs about", tree=tmp_path)


def test_a_run_too_large_for_the_disk_is_refused_before_training(tmp_path, capsys):
    """10**8 steps keeping a 16384-input generator at every step: hundreds of TiB, more than any disk here."""
    argv = TINY + ["--steps", "100000000", "--checkpoint-every", "1", "--z-dim", "16384", "--out", str(tmp_path / "r")]
    refused(capsys, argv, "--out", "free", "needs about", "TiB", tree=tmp_path)


# ---- train --config, --device ---------------------------------------------------------------------------


def test_config_files_of_the_wrong_kind_are_one_line(shared_tmp, capsys):
    os.mkfifo(shared_tmp / "pipe.yaml")  # reading a FIFO would block for ever
    (shared_tmp / "dir.yaml").mkdir()
    (shared_tmp / "big.yaml").write_text("# padding\n" * 120_000)
    (shared_tmp / "secret.yaml").write_text("steps: 3\n")
    (shared_tmp / "secret.yaml").chmod(0)
    out = ["--out", str(shared_tmp / "r")]
    for path, needle in [
        ("pipe.yaml", "not a regular file"),
        ("dir.yaml", "is a folder"),
        ("big.yaml", "more than"),
        ("none.yaml", "does not exist"),
    ]:
        refused(capsys, ["train", "--config", str(shared_tmp / path), *out], path, needle)
    with unprivileged():
        refused(capsys, ["train", "--config", str(shared_tmp / "secret.yaml"), *out], "secret.yaml", "cannot be read")
    assert not (shared_tmp / "r").exists()


@pytest.mark.parametrize("device", ["foo", "cuda:", "cudax", "cpu\n", "cuda:99999", " cpu", "CPU", "cuda:-1"])
def test_devices_that_do_not_exist_are_one_line(tmp_path, capsys, device):
    argv = [a for a in TINY if a not in ("--device", "cpu")] + ["--device", device, "--out", str(tmp_path / "r")]
    refused(capsys, argv, "'device'", tree=tmp_path)


def test_a_cuda_device_beyond_the_machine_is_one_line(tmp_path, capsys):
    import torch

    n = torch.cuda.device_count()
    argv = [a for a in TINY if a not in ("--device", "cpu")] + ["--device", f"cuda:{n}", "--out", str(tmp_path / "r")]
    refused(capsys, argv, f"cuda:{n}", "CUDA device", tree=tmp_path)


# ---- regress: --junit, --keep, --baseline, the temporary folder ------------------------------------------

REGRESS = ["regress", "--suite", "ci", "--quiet"]


def _regress_cases():
    def folder(tmp):
        (tmp / "d").mkdir()
        return tmp / "d"

    def under_file(tmp):
        (tmp / "f").write_text("x")
        return tmp / "f" / "x"

    def full(tmp):
        (tmp / "k").write_text("x")
        return tmp / "k"

    def not_empty(tmp):
        (tmp / "k").mkdir()
        (tmp / "k" / "old").write_text("x")
        return tmp / "k"

    return [
        ("junit-folder", "--junit", folder, ["--junit", "is a folder"], []),
        ("junit-under-file", "--junit", under_file, ["--junit", "is a file"], []),
        ("junit-proc", "--junit", lambda t: Path("/proc/x.xml"), ["--junit", "proc file system"], []),
        ("junit-empty", "--junit", lambda t: "", ["--junit is empty"], []),
        ("keep-file", "--keep", full, ["--keep", "is a file, not a folder"], []),
        ("keep-under-file", "--keep", under_file, ["--keep", "is a file"], []),
        ("keep-not-empty", "--keep", not_empty, ["--keep", "not empty"], []),
        ("keep-sys", "--keep", lambda t: Path("/sys/x"), ["--keep", "sysfs"], []),
        ("baseline-folder", "--baseline", folder, ["--baseline", "is a folder"], ["--update"]),
        ("baseline-under-file", "--baseline", under_file, ["--baseline", "is a file"], ["--update"]),
    ]


@pytest.mark.parametrize(
    "flag,make,needles,extra", [c[1:] for c in _regress_cases()], ids=[c[0] for c in _regress_cases()]
)
def test_regress_paths_are_checked_before_any_trial(shared_tmp, capsys, flag, make, needles, extra):
    refused(capsys, REGRESS + extra + [flag, str(make(shared_tmp))], *needles, tree=shared_tmp)


def test_regress_unwritable_junit_and_keep_are_one_line(shared_tmp, capsys):
    locked = shared_tmp / "locked"
    locked.mkdir(mode=0o555)
    for flag, p in [("--junit", locked / "j.xml"), ("--keep", locked / "k"), ("--keep", locked)]:
        with unprivileged():
            refused(capsys, REGRESS + [flag, str(p)], flag, "not writable", tree=shared_tmp)


def test_regress_without_a_usable_temporary_folder_is_one_line(tmp_path, capsys, monkeypatch):
    f = tmp_path / "tmpfile"
    f.write_text("x")
    monkeypatch.setattr(tempfile, "tempdir", str(f))  # as $TMPDIR pointing at a file leaves it
    refused(capsys, REGRESS, "temporary folder", "is a file", tree=tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: (_ for _ in ()).throw(FileNotFoundError("no tmp")))
    refused(capsys, REGRESS, "no usable temporary folder", "TMPDIR", tree=tmp_path)


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["--workers", "0"], ["--workers", ">= 1 and <= 256"]),
        (["--workers", "100000"], ["--workers", "<= 256"]),
        (["--update", "--calibrate", "1000"], ["--calibrate", "<= 100"]),
        (["--suite", ""], ["--suite is empty"]),
    ],
)
def test_regress_counts_are_bounded(tmp_path, capsys, argv, needles):
    refused(capsys, REGRESS + argv, *needles, tree=tmp_path)


def test_regress_suite_that_is_a_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "s.yaml").mkdir()
    refused(capsys, ["regress", "--suite", str(tmp_path / "s.yaml")], "suite file", "is a folder", tree=tmp_path)


# ---- the helpers themselves: any name is a Path or one line, never an OSError ------------------------------

NAME_PARTS = st.one_of(
    st.text(min_size=0, max_size=300),
    st.sampled_from(["..", ".", "", " ", "\n", "a" * 255, "a" * 256, "é" * 128, "/", "//", "\x00"]),
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(NAME_PARTS, min_size=1, max_size=4), kind=st.sampled_from(["dir", "file", "append", "in"]))
def test_any_name_is_a_path_or_one_line(parts, kind):
    base = Path(tempfile.gettempdir()) / "ganbench-hostile-names"
    base.mkdir(exist_ok=True)
    before = snapshot(base)
    check = {
        "dir": paths.check_output_dir,
        "file": paths.check_output_file,
        "append": paths.check_appendable,
        "in": paths.check_input_file,
    }[kind]
    try:
        check(str(base / "/".join(parts)) if parts[0] != "" else "/".join(parts), "--x")
    except UserError as e:
        assert len(str(e).splitlines()) == 1 and str(e).startswith("--x"), str(e)
    assert snapshot(base) == before


def test_checks_create_nothing(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    assert paths.check_output_dir(target, "--out") == target
    assert paths.check_output_file(target / "f.json", "--json") == target / "f.json"
    assert paths.check_appendable(target / "m.jsonl", "x") == target / "m.jsonl"
    assert list(tmp_path.iterdir()) == []


# ---- an OSError no check foresaw (disk full mid-write, a permission lost mid-run) --------------------------------


@pytest.mark.parametrize(
    "err,needles",
    [
        (OSError(errno.ENOSPC, "No space left on device", "/r/hand/README.md"), ["No space left", "README.md"]),
        (PermissionError(errno.EACCES, "Permission denied", "/r/hand"), ["Permission denied", "'/r/hand'"]),
        (OSError(errno.EIO, "Input/output error\nsecond line"), ["Input/output error"]),
        (FileNotFoundError(), ["FileNotFoundError"]),  # an OSError with no reason and no file name
    ],
    ids=["disk-full", "permission", "two-line-reason", "bare"],
)
def test_an_os_error_escaping_a_command_is_one_line(tmp_path, capsys, monkeypatch, err, needles):
    """The CLI turns an OSError no path check caught into one line naming the command, exit 2, no traceback."""
    from benchmark.study import cli as study_cli

    def fails(*a, **k):
        raise err

    monkeypatch.setattr(study_cli, "build_report", fails)
    argv = ["report", "hand", "--results", str(tmp_path / "res"), "--reports", str(tmp_path / "rep")]
    refused(capsys, argv, "running 'ganbench report' failed", *needles, tree=tmp_path)

"""Hostile run directories: every file of a run that `train` (and the run readers) read or write, of the wrong
kind, malformed, foreign or absurd. Each case ends with exit status 2, one stderr line naming the file and the
fix, no traceback, and the run directory unchanged (file hashes compared before and after)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from benchmark import io, rundir
from benchmark.cli import main
from benchmark.errors import UserError
from helpers import refused, shared_folder, snapshot, unprivileged

ARGV = [
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


@pytest.fixture
def shared_tmp():
    with shared_folder() as d:
        yield d


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "run"
    assert main(ARGV + ["--out", str(out)]) == 0
    return out


def copy_run(finished: Path, where: Path, done: bool = False) -> Path:
    out = where / "run"
    shutil.copytree(finished, out, symlinks=True)
    if not done:
        (out / rundir.DONE_FILE).unlink()
    return out


def replace(p: Path, by: str, content: bytes = b"x") -> None:
    """Replace ``p`` (file or folder) by a folder (``by='folder'``) or a file holding ``content``."""
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif os.path.lexists(p):
        p.unlink()
    if by == "folder":
        p.mkdir()
        (p / "inside").write_text("x")
    else:
        p.write_bytes(content)


# (id, member, replacement, content, finished?, needles)
CASES = [
    ("checkpoints-file", rundir.CHECKPOINT_DIR, "file", b"x", False, ["checkpoints", "as a file", "move or delete"]),
    ("samples-file", rundir.SAMPLES_DIR, "file", b"x", False, ["samples", "as a file", "move or delete"]),
    ("checkpoints-file-done", rundir.CHECKPOINT_DIR, "file", b"x", True, ["checkpoints", "as a file"]),
    ("log-folder", rundir.LOG_FILE, "folder", b"", False, ["log.jsonl", "as a folder", "move or delete"]),
    ("run-json-folder", rundir.RUN_INFO_FILE, "folder", b"", False, ["run.json", "as a folder"]),
    ("config-folder", rundir.CONFIG_FILE, "folder", b"", False, ["config.yaml", "as a folder"]),
    ("done-folder", rundir.DONE_FILE, "folder", b"", False, ["done.json", "as a folder"]),
    ("lock-folder", rundir.LOCK_FILE, "folder", b"", False, [".lock", "as a folder"]),
    ("done-malformed", rundir.DONE_FILE, "file", b'{"steps": 4', True, ["done.json", "not valid JSON", "delete it"]),
    ("done-array", rundir.DONE_FILE, "file", b"[4]", True, ["done.json", "holds an array, not an object"]),
    ("done-no-steps", rundir.DONE_FILE, "file", b'{"stepz": 4}', True, ["done.json", "no integer 'steps'"]),
    ("done-string-steps", rundir.DONE_FILE, "file", b'{"steps": "4"}', True, ["no integer 'steps'"]),
    ("done-binary", rundir.DONE_FILE, "file", b"\xff\xfe\x00\x01", True, ["done.json", "not a text file"]),
    ("done-nul", rundir.DONE_FILE, "file", b'{"steps": 4}\x00', True, ["done.json", "binary"]),
    ("done-deep", rundir.DONE_FILE, "file", b"[" * 100_000, True, ["done.json", "deeper than can be read"]),
    ("done-401-digits", rundir.DONE_FILE, "file", b'{"steps": ' + b"9" * 401 + b"}", True, ["401 digits"]),
    ("log-garbage", rundir.LOG_FILE, "file", b"hello\n", False, ["training log", "line 1", "not valid JSON"]),
    ("log-array", rundir.LOG_FILE, "file", b'{"step": 1}\n[1, 2]\n', False, ["line 2 holds an array"]),
    ("log-no-step", rundir.LOG_FILE, "file", b'{"x": 1}\n', False, ["record 1 has no integer 'step'"]),
    ("log-string-step", rundir.LOG_FILE, "file", b'{"step": "1"}\n', False, ["no integer 'step'"]),
    ("log-binary", rundir.LOG_FILE, "file", b"\x80\x81\x82", False, ["training log", "not a text file"]),
    ("config-malformed", rundir.CONFIG_FILE, "file", b"steps: [4\n", False, ["run config", "not valid YAML"]),
    ("config-duplicate", rundir.CONFIG_FILE, "file", b"steps: 4\nsteps: 9\n", False, ["'steps' twice"]),
    ("config-tag", rundir.CONFIG_FILE, "file", b"steps: !!python/object/apply:os.getpid []\n", False, ["tag"]),
    ("config-unknown", rundir.CONFIG_FILE, "file", b"stepz: 4\n", False, ["not a valid config", "'stepz'"]),
    ("config-list", rundir.CONFIG_FILE, "file", b"- 4\n", False, ["must hold a mapping"]),
    ("config-binary", rundir.CONFIG_FILE, "file", b"\x89PNG\x00", False, ["run config", "not a text file"]),
]


@pytest.mark.parametrize("member,by,content,done,needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_damaged_run_file_is_one_line_and_nothing_is_rewritten(
    finished, tmp_path, capsys, member, by, content, done, needles
):
    out = copy_run(finished, tmp_path, done=done)
    replace(out / member, by, content)
    refused(capsys, ARGV + ["--out", str(out)], *needles, tree=tmp_path)


def test_a_huge_done_json_is_refused_by_its_size(finished, tmp_path, capsys):
    out = copy_run(finished, tmp_path, done=True)
    with open(out / rundir.DONE_FILE, "wb") as f:
        f.truncate(io.MAX_JSON_BYTES + 1)  # sparse: no disk used
    refused(capsys, ARGV + ["--out", str(out)], "done.json", "more than", tree=tmp_path)


def test_a_lock_that_links_elsewhere_is_never_written_through(finished, tmp_path, capsys):
    out = copy_run(finished, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / rundir.LOCK_FILE).unlink()
    (out / rundir.LOCK_FILE).symlink_to(victim)
    refused(capsys, ARGV + ["--out", str(out)], ".lock", "cannot be opened", "delete it", tree=tmp_path)
    assert victim.read_text() == "precious\n"


def test_a_torn_last_log_line_is_dropped_and_the_run_resumes(finished, tmp_path):
    out = copy_run(finished, tmp_path)
    with open(out / rundir.LOG_FILE, "a") as f:
        f.write('{"step": 5, "d_loss": 0.1')  # a kill mid-append
    assert main(ARGV + ["--out", str(out)]) == 0
    assert [r["step"] for r in rundir.read_log(out)] == [1, 2, 3, 4]


def test_appending_after_a_torn_line_keeps_the_new_records(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"a": 1}\n{"b": 2')  # the second record torn by a kill
    io.append_jsonl(p, [{"c": 3}])
    assert io.read_jsonl(p) == [{"a": 1}, {"c": 3}]


@pytest.mark.parametrize("member", [rundir.CHECKPOINT_DIR, rundir.LOG_FILE])
def test_an_unwritable_member_is_one_line(finished, shared_tmp, capsys, member):
    out = copy_run(finished, shared_tmp)
    for p in [out, *out.rglob("*")]:
        p.chmod(0o777 if p.is_dir() else 0o666)
    (out / member).chmod(0o555 if (out / member).is_dir() else 0o444)
    with unprivileged():
        refused(capsys, ARGV + ["--out", str(out)], member, "not writable", tree=shared_tmp)


def test_a_finished_read_only_run_still_answers(finished, shared_tmp, capsys):
    out = copy_run(finished, shared_tmp, done=True)
    for p in [out, *out.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    before = snapshot(shared_tmp)
    with unprivileged():
        assert main(ARGV + ["--out", str(out)]) == 0
    assert snapshot(shared_tmp) == before


# ---- the readers other stages use (evaluate, study, regress): one line naming the file ----------------------


@pytest.mark.parametrize(
    "reader,member,content,needle",
    [
        (rundir.read_run_info, rundir.RUN_INFO_FILE, b"{", "not valid JSON"),
        (rundir.read_run_info, rundir.RUN_INFO_FILE, None, "is a folder"),
        (rundir.read_metrics, rundir.METRICS_FILE, b"[]\n", "line 1 holds an array"),
        (rundir.read_metrics, rundir.METRICS_FILE, None, "is a folder"),
        (rundir.read_done, rundir.DONE_FILE, b"null", "holds null"),
        (rundir.read_log, rundir.LOG_FILE, b"oops\n", "line 1"),
        (rundir.read_run_config, rundir.CONFIG_FILE, b"a: &x 1\nb: *x\n", "alias"),
    ],
)
def test_run_readers_refuse_damaged_files(finished, tmp_path, reader, member, content, needle):
    out = copy_run(finished, tmp_path, done=True)
    replace(out / member, "folder" if content is None else "file", content or b"")
    with pytest.raises(UserError) as e:
        reader(out)
    assert needle in str(e.value) and member in str(e.value) and len(str(e.value).splitlines()) == 1


def test_evaluate_of_a_run_with_a_damaged_scores_file_is_one_line(finished, tmp_path, capsys):
    """``evaluate`` (phase 2 applies the checks there) already reads through the guarded io.read_jsonl."""
    out = copy_run(finished, tmp_path, done=True)
    for content, needle in [(b"[1]\n", "holds an array"), (b"\xff\xfe", "not a text file")]:
        (out / rundir.METRICS_FILE).write_bytes(content)
        refused(
            capsys, ["evaluate", str(out), "--num-samples", "100", "--quiet"], "metrics.jsonl", needle, tree=tmp_path
        )
    (out / rundir.METRICS_FILE).unlink()
    (out / rundir.METRICS_FILE).mkdir()
    refused(capsys, ["evaluate", str(out), "--num-samples", "100", "--quiet"], "metrics.jsonl", "folder", tree=tmp_path)


def test_json_readers_name_the_file_and_the_fix(tmp_path):
    p = tmp_path / "x.json"
    for content, needle in [
        (b"", "not valid JSON"),
        (b"1", "holds a number, not an object"),
        (b'{"a": ' + b"1" * 41 + b"}", "41 digits"),
        (b'{"a": 1}{"b": 2}', "Extra data"),
    ]:
        p.write_bytes(content)
        with pytest.raises(UserError) as e:
            io.read_json_checked(p, "thing", "do X")
        msg = str(e.value)
        assert msg.startswith(f"thing '{p}'") and needle in msg and msg.endswith("; do X"), msg
    p.write_text(json.dumps({"ok": [1, 2.5, None]}))
    assert io.read_json_checked(p, "thing", "do X") == {"ok": [1, 2.5, None]}

"""Fault injection: ``kill -9`` at seeded random moments of train, evaluate, study run and regress.

Each command is killed ``GANBENCH_FAULT_KILLS`` times (default 10), each time at a moment drawn uniformly
over the length of an uninterrupted run (a seeded ``random.Random``), then started again with the same
arguments. Every resumed result must equal the uninterrupted one bit for bit (tensors, samples, scores,
tables; wall-clock fields aside), with no temporary file left anywhere and no process of the killed
command alive after it (pool and Dask workers included).

Slow (minutes on 2 cores): excluded from ``make test``, run by ``make faults``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import torch

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("GANBENCH_FAULT_KILLS", "10"))
GANBENCH = [sys.executable, "-m", "benchmark"]
# Fields that hold wall-clock time, process ids or attempt counts: they differ between any two runs.
VOLATILE = {
    "time",
    "sec",
    "seconds",
    "seconds_this_session",
    "seconds_per_step",
    "pid",
    "elapsed",
    "started",
    "finished",
    "train_seconds",
    "wall_seconds",
}
# Files that describe how a result was produced (command line, attempts, locks), not the result.
PROVENANCE = {"run.json", "attempts.jsonl", ".lock"}

STUDY = """\
name: faults
title: "fault injection"
base: {device: cpu, deterministic: true, num_threads: 1, download: false, batch_size: 32, dataset: ring8, model: toy}
variants:
  - {name: gan, set: {objective: gan}}
  - {name: wgan-gp, set: {objective: wgan-gp}}
seeds: [0]
budget: {steps: 60}
eval_at: [0.5, 1.0]
num_samples: 500
presets: {smoke: {}}
"""


# ---- processes -------------------------------------------------------------------------------------


def _session(sid: int) -> Tuple[List[int], float]:
    """Live processes of session ``sid`` (every process a command starts stays in its session) and the CPU
    seconds they and their reaped children have used."""
    pids, ticks = [], 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            pids.append(int(d.name))
            ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return pids, ticks / os.sysconf("SC_CLK_TCK")


def _session_members(sid: int) -> List[int]:
    return _session(sid)[0]


def _env(tmp: Path) -> Dict[str, str]:
    env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "GANBENCH_CACHE": str(tmp.parent / "cache"),
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("GANBENCH_RESULTS", None)
    return env


def run(argv: List[str], cwd: Path, timeout: float = 900) -> Tuple[int, str, float]:
    """Run a ganbench command to its end; (exit status, output, CPU seconds of it and its children)."""
    tmp = cwd / "tmp"
    tmp.mkdir(exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(GANBENCH + argv, cwd=cwd, env=_env(tmp), capture_output=True, text=True, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return r.returncode, r.stdout + r.stderr, cpu


def run_and_kill(argv: List[str], cwd: Path, at_cpu: float, timeout: float = 900) -> Tuple[bool, List[int]]:
    """Start a command in its own session and ``kill -9`` it once it has used ``at_cpu`` CPU seconds.

    CPU time, not wall time, picks the moment: on a shared, loaded machine wall time says little about how
    far a command has got. Returns (whether it was killed rather than finished first, the pids of its
    session still alive 10 s after the kill: orphans). Orphans are then killed here, by pid, so that one
    failure does not spoil the next round.
    """
    tmp = cwd / "tmp"
    tmp.mkdir(exist_ok=True)
    p = subprocess.Popen(
        GANBENCH + argv,
        cwd=cwd,
        env=_env(tmp),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    t_end = time.time() + timeout
    killed = False
    while p.poll() is None and time.time() < t_end:
        if _session(p.pid)[1] >= at_cpu:
            os.kill(p.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    p.wait()
    deadline = time.time() + 10
    while _session_members(p.pid) and time.time() < deadline:
        time.sleep(0.2)
    left = _session_members(p.pid)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return killed, left


# ---- what a result is, canonically ------------------------------------------------------------------


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _tensor_digest(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        return f"{t.dtype}{tuple(obj.shape)}:{hashlib.sha256(t.view(torch.uint8).numpy().tobytes()).hexdigest()}"
    if isinstance(obj, dict):
        return {str(k): _tensor_digest(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, (list, tuple)):
        return [_tensor_digest(v) for v in obj]
    return obj


def canonical(folder: Path) -> Dict[str, Any]:
    """Every file under ``folder`` as comparable content: tensors by digest, JSON without clock fields."""
    out: Dict[str, Any] = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name in PROVENANCE or p.parent.name == "tmp":
            continue
        rel = str(p.relative_to(folder))
        if p.suffix == ".pt":
            out[rel] = _tensor_digest(torch.load(p, map_location="cpu", weights_only=True))
        elif p.suffix == ".jsonl":
            out[rel] = [_strip(json.loads(line)) for line in p.read_text().splitlines() if line.strip()]
        elif p.suffix == ".json":
            out[rel] = _strip(json.loads(p.read_text()))
        elif p.suffix == ".csv":  # tables: every column but the wall-clock ones (budget.csv's *_seconds)
            rows = list(csv.DictReader(p.read_text().splitlines()))
            out[rel] = [{k: v for k, v in r.items() if k not in VOLATILE and not k.endswith("_seconds")} for r in rows]
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def debris(folder: Path) -> List[str]:
    """Temporary files of atomic writes, and anything left in the command's $TMPDIR."""
    left = [str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name and p.parent.name != "tmp"]
    tmp = folder / "tmp"
    if tmp.is_dir():
        left += [f"$TMPDIR/{p.name}" for p in tmp.iterdir() if not p.name.startswith("torchinductor_")]  # torch's cache
    return left


def _differences(want: Dict[str, Any], got: Dict[str, Any]) -> List[str]:
    keys = sorted(set(want) | set(got))
    return [k for k in keys if want.get(k) != got.get(k)]


# ---- the experiment ---------------------------------------------------------------------------------


def kill_and_resume(name: str, tmp_path: Path, setup, argv: List[str], result, reference_folder=None):
    """Uninterrupted once; then ``KILLS`` times: fresh copy, kill -9 at a random moment, resume, compare."""
    rng = random.Random(f"ganbench-faults-{name}")
    ref = tmp_path / "reference"
    ref.mkdir()
    setup(ref)
    code, log, full = run(argv, ref)
    assert code == 0, log
    want = result(ref, log)
    assert not debris(ref), debris(ref)
    problems: List[str] = []
    killed_count = 0
    for i in range(KILLS):
        at = rng.uniform(0.0, 0.9 * full)  # CPU seconds into the run
        work = tmp_path / f"kill{i}"
        work.mkdir()
        setup(work)
        killed, orphans = run_and_kill(argv, work, at)
        killed_count += killed
        if orphans:
            problems.append(
                f"kill {i} at {at:.1f} CPU s: {len(orphans)} process(es) of the killed command still alive "
                "10 s later (killed by the test)"
            )
        code, log, _ = run(argv, work)
        if code != 0:
            problems.append(f"kill {i} at {at:.1f} CPU s: the resumed command exited {code}: {log.strip()[-300:]}")
            continue
        diff = _differences(want, result(work, log))
        if diff:
            problems.append(f"kill {i} at {at:.1f} CPU s: resumed result differs in {', '.join(diff[:5])}")
        left = debris(work)
        if left:
            problems.append(f"kill {i} at {at:.1f} CPU s: debris left: {', '.join(sorted(left)[:5])}")
        shutil.rmtree(work, ignore_errors=True)
    print(f"{name}: {KILLS} kills ({killed_count} before the end) over an uninterrupted {full:.1f} CPU s")
    assert not problems, "\n".join(problems)
    assert killed_count >= KILLS // 2, f"only {killed_count} of {KILLS} kills landed before the command ended"


def _nothing(folder: Path) -> None:
    pass


def test_train_killed_anywhere_resumes_bit_identical(tmp_path):
    argv = [
        "train",
        "--dataset",
        "ring8",
        "--model",
        "toy",
        "--steps",
        "200",
        "--checkpoint-every",
        "10",
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "--num-threads",
        "1",
        "--quiet",
        "--out",
        "run",
    ]
    kill_and_resume("train", tmp_path, _nothing, argv, lambda folder, log: canonical(folder / "run"))


def test_evaluate_killed_anywhere_resumes_bit_identical(tmp_path):
    trained = tmp_path / "trained"
    code, log, _ = run(
        [
            "train",
            "--dataset",
            "ring8",
            "--model",
            "toy",
            "--steps",
            "40",
            "--checkpoint-every",
            "2",
            "--batch-size",
            "32",
            "--device",
            "cpu",
            "--num-threads",
            "1",
            "--quiet",
            "--out",
            "run",
        ],
        tmp_path,
    )
    assert code == 0, log
    shutil.move(str(tmp_path / "run"), trained)

    def setup(folder: Path) -> None:
        shutil.copytree(trained, folder / "run", ignore=shutil.ignore_patterns(".lock"))

    argv = ["evaluate", "run", "--num-samples", "5000", "--threads", "1", "--quiet"]
    kill_and_resume("evaluate", tmp_path, setup, argv, lambda folder, log: canonical(folder / "run"))


def test_study_killed_anywhere_resumes_bit_identical(tmp_path):
    def setup(folder: Path) -> None:
        (folder / "faults.yaml").write_text(STUDY)

    argv = [
        "study",
        "run",
        "faults.yaml",
        "--preset",
        "smoke",
        "--workers",
        "2",
        "--results",
        "res",
        "--reports",
        "rep",
        "--quiet",
    ]

    def result(folder: Path, log: str) -> Dict[str, Any]:
        out = {f"res/{k}": v for k, v in canonical(folder / "res").items()}
        # the report's tables (its page and LaTeX name the time a trial took)
        out.update({f"rep/{k}": v for k, v in canonical(folder / "rep").items() if k.endswith(".csv")})
        return out

    kill_and_resume("study", tmp_path, setup, argv, result)


def test_regress_killed_anywhere_gives_the_same_verdicts(tmp_path):
    suite = STUDY.replace("name: faults", "name: faultsuite").replace("presets: {smoke: {}}\n", "")
    base = tmp_path / "baseline.json"
    (tmp_path / "faultsuite.yaml").write_text(suite)
    code, log, _ = run(
        [
            "regress",
            "--suite",
            str(tmp_path / "faultsuite.yaml"),
            "--baseline",
            str(base),
            "--update",
            "--calibrate",
            "2",
            "--workers",
            "2",
            "--quiet",
        ],
        tmp_path,
    )
    assert code == 0, log
    base_sha = hashlib.sha256(base.read_bytes()).hexdigest()

    def result(folder: Path, log: str) -> Dict[str, Any]:
        rows = [
            line
            for line in log.splitlines()
            if not line.startswith(("running ", "regress ", "junit:", "note:")) and line.strip()
        ]
        return {"table": rows, "baseline": hashlib.sha256(base.read_bytes()).hexdigest() == base_sha}

    argv = [
        "regress",
        "--suite",
        str(tmp_path / "faultsuite.yaml"),
        "--baseline",
        str(base),
        "--workers",
        "2",
        "--quiet",
    ]
    kill_and_resume("regress", tmp_path, _nothing, argv, result)

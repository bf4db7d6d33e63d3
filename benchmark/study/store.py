"""The results store of studies: its layout and file names, the study indexes, the trial lock, the trial key.

    <results>/                                  $GANBENCH_RESULTS, else ./results
      studies/<name>-<preset>.json              a study's index: its spec, command, commit and trials
      studies/registered/<name>-<preset>.json   its claims, seeds and budget as they stood when its first
                                                trial started (written once, never overwritten)
      studies/.lock                             one writer of the indexes (and registrations) at a time
      trials/<key>/                             one trial (shared by every study that has it)
        trial.json  failed.json  attempts.jsonl  .lock
        run/                                    a GAN trial's run directory (benchmark/rundir.py)
        parallel_lines.csv                      a parallel-lines trial's table
      reference/<dataset>_train-vs-<split>_...json   the real-data rows' scores, computed once

Every name of that layout is a constant here and every path is built here; the stages above (the runner, the
records, the report) never spell a file name. The trial key is the one function that names a trial's folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional

from benchmark import io, rundir
from benchmark.config import TrainConfig
from benchmark.errors import UserError

STUDIES_DIR = "studies"
TRIALS_DIR = "trials"
REFERENCE_DIR = "reference"
REGISTERED_DIR = "registered"  # inside studies/: a folder of its own, so no index glob ever lists one
TRIAL_FILE = "trial.json"  # a GAN trial's key and resolved config, written before it trains
FAILED_FILE = "failed.json"  # the error of a trial's last attempt (removed when it succeeds)
ATTEMPTS_FILE = "attempts.jsonl"  # every time the trial was actually trained or scored
RUN_DIR = "run"  # a GAN trial's run directory inside its trial directory
LOCK_FILE = ".lock"  # the trial's lock (and, in studies/, the indexes' lock)
PARALLEL_LINES_FILE = "parallel_lines.csv"  # a parallel-lines trial's one row per θ
DEFAULT_PRESET = "default"  # the preset name of a study run without one
TRIAL_KEY_LENGTH = 16  # hex digits of the sha256 that name a trial's folder


def results_root(root: Optional[str | Path] = None) -> Path:
    return Path(root or os.environ.get("GANBENCH_RESULTS") or "results")


def trial_dir(root: Path, key: str) -> Path:
    return root / TRIALS_DIR / key


def run_dir(root: Path, key: str) -> Path:
    """A GAN trial's run directory (its metrics.jsonl, log.jsonl, config.yaml, run.json, checkpoints)."""
    return trial_dir(root, key) / RUN_DIR


def reference_path(root: Path, name: str) -> Path:
    return root / REFERENCE_DIR / name


def trial_key(identity: TrainConfig | Mapping[str, Any]) -> str:
    """The name of a trial's folder: the first 16 hex digits of the sha256 of what decides its numbers.

    A GAN trial's identity is its resolved config (seed and budget included): its key is the head of
    ``rundir.config_hash``, the hash its checkpoints carry. Another kind's identity is a mapping (its kind, its
    typed params as written, the seed), hashed the same way: sha256 of its JSON with sorted keys.
    """
    if isinstance(identity, TrainConfig):
        return rundir.config_hash(identity)[:TRIAL_KEY_LENGTH]
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:TRIAL_KEY_LENGTH]


# ------------------------------------------------------------------------------------------------
# study indexes


def index_path(root: Path, name: str, preset: str) -> Path:
    return root / STUDIES_DIR / f"{name}-{preset or DEFAULT_PRESET}.json"


def write_index(root: Path, name: str, preset: str, index: Dict[str, Any]) -> Path:
    p = index_path(root, name, preset)
    with io.flock(root / STUDIES_DIR / LOCK_FILE):  # one writer of the store's study indexes at a time
        io.write_json(p, index)
    return p


def registration_path(root: Path, name: str, preset: str) -> Path:
    return root / STUDIES_DIR / REGISTERED_DIR / f"{name}-{preset or DEFAULT_PRESET}.json"


def register(root: Path, name: str, preset: str, record: Dict[str, Any]) -> bool:
    """Write the study's registration (its claims, seeds and budget) unless it has one: written once,
    atomically, under the indexes' lock, and never overwritten. True when written now."""
    p = registration_path(root, name, preset)
    with io.flock(root / STUDIES_DIR / LOCK_FILE):
        if p.exists():
            return False
        io.write_json(p, record)
    return True


def read_registration(root: Path, name: str, preset: str) -> Optional[Dict[str, Any]]:
    """The study's registration, or None when it has none (a study run before claims were registered)."""
    p = registration_path(root, name, preset)
    return io.read_json(p) if p.exists() else None


def find_index(root: Path, study: str, preset: Optional[str]) -> Path:
    """The index of ``study`` (at ``preset``, needed when it has results at several); one line otherwise."""
    folder = root / STUDIES_DIR
    cands = sorted(folder.glob(f"{study}-*.json")) if folder.is_dir() else []
    if preset:
        cands = [c for c in cands if c.stem == f"{study}-{preset}"]
    if not cands:
        raise UserError(
            f"no results for study '{study}'{f' at preset {preset}' if preset else ''} under "
            f"'{folder}'; run 'ganbench study run studies/{study}.yaml' first"
        )
    if len(cands) > 1:
        raise UserError(
            f"study '{study}' has results at several presets ({', '.join(c.stem for c in cands)}); "
            "pick one with --preset"
        )
    return cands[0]


# ------------------------------------------------------------------------------------------------
# a trial's lock, attempts and failure


@contextmanager
def trial_lock(d: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold the trial's lock (blocking: wait for it); yields False when non-blocking and held elsewhere."""
    with io.flock(d / LOCK_FILE, blocking) as got:
        yield got


def is_locked(d: Path) -> bool:
    if not (d / LOCK_FILE).exists():
        return False
    with trial_lock(d, blocking=False) as got:
        return not got


def attempt(d: Path, event: str, **kw: Any) -> None:
    """Record in ``attempts.jsonl`` that the trial was actually trained or scored (not skipped)."""
    io.append_jsonl(d / ATTEMPTS_FILE, [{"event": event, "time": time.time(), "pid": os.getpid(), **kw}])


def attempts(d: Path) -> List[Dict[str, Any]]:
    return io.read_jsonl(d / ATTEMPTS_FILE)


def record_failure(d: Path, error: str, traceback: str) -> None:
    io.write_json(d / FAILED_FILE, {"error": error, "traceback": traceback, "time": time.time()})


def clear_failure(d: Path) -> None:
    (d / FAILED_FILE).unlink(missing_ok=True)


def failure(d: Path) -> Optional[str]:
    """The error of the trial's failed attempt, or None when it has none."""
    p = d / FAILED_FILE
    return io.read_json(p)["error"] if p.exists() else None


__all__ = [
    "ATTEMPTS_FILE",
    "FAILED_FILE",
    "LOCK_FILE",
    "PARALLEL_LINES_FILE",
    "REGISTERED_DIR",
    "RUN_DIR",
    "TRIAL_FILE",
    "attempt",
    "failure",
    "find_index",
    "index_path",
    "is_locked",
    "read_registration",
    "register",
    "registration_path",
    "results_root",
    "run_dir",
    "trial_dir",
    "trial_key",
    "trial_lock",
    "write_index",
]

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

Names are names: a study or preset name that reaches a path (``ganbench report NAME``, ``--preset``) is checked
here first (letters, digits, ``-`` and ``_``; no separator, no ``..``, no glob character), so every path built
from one stays inside its root; a study's index is found by its exact name (``golden`` is not
``golden-lines``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional

from benchmark import io, rundir
from benchmark.config import TrainConfig
from benchmark.errors import UserError, quote

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
MAX_NAME = 100  # characters of a study or preset name (an index is '<name>-<preset>.json': under 255 bytes)
STUDY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")  # no separator, no '..', no glob character, no space
PRESET_NAME = re.compile(r"[A-Za-z0-9_]+")  # no '-' either: '<name>-<preset>' is read back unambiguously
TRIAL_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=-]*")  # 16 hex digits when ganbench names it; never a path


def check_study_name(name: object, what: str = "study name") -> str:
    """``name`` as a study name (it names ``studies/<name>-<preset>.json`` and ``reports/<name>/``): one line
    otherwise."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not STUDY_NAME.fullmatch(name):
        raise UserError(
            f"{what} {quote(name, 60)} is not a study name: use 1 to {MAX_NAME} letters, digits, '-' and '_' "
            "(not starting with '-'; no '/', '..', '*' or spaces)"
        )
    return name


def check_preset_name(name: object, what: str = "preset") -> str:
    """``name`` as a preset name: letters, digits and '_' (it follows the study's name and a '-')."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not PRESET_NAME.fullmatch(name):
        raise UserError(
            f"{what} {quote(name, 60)} is not a preset name: use 1 to {MAX_NAME} letters, digits and '_' "
            "(e.g. smoke, quick, paper)"
        )
    return name


def check_trial_key(key: object, where: str) -> str:
    """A trial key read from a file, as it names a folder under ``trials/``: one plain name (never a path)."""
    if not isinstance(key, str) or len(key) > MAX_NAME or not TRIAL_KEY.fullmatch(key):
        raise UserError(
            f"{where} names the trial {quote(key, 40)}, which is not a trial key (a folder name under "
            f"'{TRIALS_DIR}/'); run the study again to rewrite it"
        )
    return key


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
    """The index of ``study`` (at ``preset``, needed when it has results at several); one line otherwise.

    Matched exactly: ``<study>-<preset>.json`` where ``<preset>`` is a preset name (no '-'), so the indexes of
    study ``golden-lines`` are never taken for study ``golden``'s."""
    check_study_name(study)
    if preset:
        check_preset_name(preset, "--preset")
    folder = root / STUDIES_DIR
    try:
        names = sorted(os.listdir(folder)) if folder.is_dir() else []
    except OSError as e:
        raise UserError(
            f"the results store's folder {quote(folder)} cannot be listed ({e.strerror}); fix its permissions"
        ) from None
    head = f"{study}-"
    cands = [
        folder / n
        for n in names
        if n.startswith(head) and n.endswith(".json") and PRESET_NAME.fullmatch(n[len(head) : -len(".json")])
    ]
    if preset:
        cands = [c for c in cands if c.name == f"{study}-{preset}.json"]
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
    return io.read_jsonl_checked(d / ATTEMPTS_FILE, "trial's attempts", "delete it (it only counts the attempts)")


def record_failure(d: Path, error: str, traceback: str) -> None:
    io.write_json(d / FAILED_FILE, {"error": error, "traceback": traceback, "time": time.time()})


def clear_failure(d: Path) -> None:
    (d / FAILED_FILE).unlink(missing_ok=True)


def failure(d: Path) -> Optional[str]:
    """The error of the trial's failed attempt, or None when it has none."""
    p = d / FAILED_FILE
    if not os.path.lexists(p):
        return None
    fix = "delete it (the trial is tried again by the next 'ganbench study run')"
    error = io.read_json_checked(p, "trial's failure record", fix).get("error")
    if not isinstance(error, str):
        raise UserError(f"trial's failure record {quote(p)} has no 'error' text; {fix}")
    return error


__all__ = [
    "check_preset_name",
    "check_study_name",
    "check_trial_key",
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

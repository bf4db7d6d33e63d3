"""Atomic file writes (write to a temporary file, then rename) and JSON-lines records.

Every checkpoint, metric record, config and report goes through these helpers, so a run killed at any
moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import torch

TMP_GLOB = ".*.tmp*"  # the temporary files of atomic_path; a kill mid-write can leave one behind


def _create_temporary(path: Path) -> Path:
    """A new empty file ``.{stem}.{random}.tmp{suffix}`` beside ``path``, created with the user's umask.

    (``tempfile.mkstemp`` would create it 0600, and the rename would carry that mode to the result:
    a shared results folder would become unreadable to the rest of the group.)
    """
    for _ in range(100):
        tmp = path.parent / f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside '{path}'")


def remove_stale_temporaries(folder: str | Path) -> List[Path]:
    """Delete the temporary files of atomic writes in ``folder`` (not recursive); returns them.

    Call only while no other process writes there (e.g. holding the run directory's lock).
    """
    folder = Path(folder)
    gone = [p for p in folder.glob(TMP_GLOB) if p.is_file()] if folder.is_dir() else []
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temporary(path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_default) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def torch_save(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def append_jsonl(path: str | Path, records: List[Dict[str, Any]]) -> None:
    """Append whole lines in one write; readers skip a torn last line (see ``read_jsonl``)."""
    if not records:
        return
    data = "".join(json.dumps(r, default=_default) + "\n" for r in records)
    with open(path, "a") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> List[Dict[str, Any]]:
    """All complete records; a line torn by a kill (the last one) is skipped."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def rewrite_jsonl(path: str | Path, records: List[Dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(r, default=_default) + "\n" for r in records))


OUTPUTS_NOT_CODE = (":(top,exclude)reports", ":(top,exclude)results")


def git_commit(where: Optional[Path] = None) -> str:
    """The commit of the code that produced a result ('+dirty' when the tree has changes). The outputs
    (``reports/``, ``results/``) are not code: a study that re-makes a committed report does not make the
    trials after it '+dirty'."""
    here = where or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":(top)", *OUTPUTS_NOT_CODE],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return (sha or "unknown") + ("+dirty" if dirty and sha else "")
    except Exception:
        return "unknown"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def flock(path: str | Path, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if absent; the kernel releases it when the process dies).

    Yields True while held; with ``blocking=False`` yields False at once when another process holds it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

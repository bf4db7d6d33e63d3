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
import stat as statmod
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import torch

from benchmark.errors import UserError, quote

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
    """A JSON file; a folder, an unreadable or malformed file is a one-line UserError (see ``read_json_checked``)."""
    return read_json_checked(path, "file", "repair or delete it", expect=None)


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
    if _ends_torn(Path(path)):  # a line torn by a kill stays a line of its own, skipped by readers
        data = "\n" + data
    with open(path, "a") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _ends_torn(path: Path) -> bool:
    """Whether ``path`` ends without a newline (its last record was torn by a kill)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:
        return False


def read_jsonl(path: str | Path) -> List[Dict[str, Any]]:
    """All complete records; a line torn by a kill is skipped (see ``read_jsonl_checked``); absent: []."""
    return read_jsonl_checked(path, "file", "repair or delete it")


# ------------------------------------------------------------------------------------------------
# guarded readers: every file a stage reads, a wrong-kind or malformed one as one line naming it and the fix

MAX_JSON_BYTES = 64 << 20  # done.json, run.json, a baseline, a study index: kilobytes in practice
MAX_JSONL_BYTES = 4 << 30  # a per-step log of a long run, a metrics file
MAX_INT_DIGITS = 40  # no count, step, seed or score has more; Python's int() is quadratic in the digits


def bounded_int(text: str) -> int:
    """``int(text)`` for a JSON integer of at most MAX_INT_DIGITS digits (``json.loads(parse_int=...)``)."""
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"a number of {len(text.lstrip('-'))} digits")
    return int(text)


def _json_loads(text: str) -> Any:
    """``json.loads`` with integers of at most MAX_INT_DIGITS digits; every failure is a ValueError saying why."""
    try:
        return json.loads(text, parse_int=bounded_int)
    except json.JSONDecodeError as e:
        raise ValueError(f"is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except RecursionError:
        raise ValueError("nests arrays or objects deeper than can be read") from None
    except ValueError as e:  # bounded_int
        raise ValueError(f"holds {e}, more than any value ganbench writes") from None


def _kind(v: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(v), "a number")


def read_bytes_checked(path: str | Path, what: str, fix: str, max_bytes: Optional[int] = MAX_JSON_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes``; anything else is one UserError line:
    ``{what} '{path}' {problem}; {fix}`` (absent, a folder, a pipe or device, unreadable, too large)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise UserError(f"{what} {quote(p)} does not exist; {fix}") from None
    except OSError as e:
        raise UserError(f"{what} {quote(p)} cannot be read ({e.strerror}); {fix}") from None
    if statmod.S_ISDIR(st.st_mode):
        raise UserError(f"{what} {quote(p)} is a folder, not a file; {fix}")
    if not statmod.S_ISREG(st.st_mode):
        raise UserError(f"{what} {quote(p)} is not a regular file (a pipe, socket or device); {fix}")
    if max_bytes is not None and st.st_size > max_bytes:
        raise UserError(f"{what} {quote(p)} is {st.st_size} bytes, more than the {max_bytes} it can sensibly be; {fix}")
    try:
        with open(p, "rb") as f:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
    except OSError as e:
        raise UserError(f"{what} {quote(p)} cannot be read ({e.strerror}); {fix}") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise UserError(f"{what} {quote(p)} is more than the {max_bytes} bytes it can sensibly be; {fix}")
    return data


def read_text_checked(path: str | Path, what: str, fix: str, max_bytes: Optional[int] = MAX_JSON_BYTES) -> str:
    """``read_bytes_checked`` as UTF-8 text without NUL bytes (a binary file is one line too)."""
    data = read_bytes_checked(path, what, fix, max_bytes)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{what} {quote(path)} is not a text file (not UTF-8 at byte {e.start}); {fix}") from None
    if "\x00" in text:
        raise UserError(f"{what} {quote(path)} is binary (it holds NUL bytes); {fix}")
    return text


def read_json_checked(
    path: str | Path,
    what: str,
    fix: str,
    expect: Optional[type | tuple] = dict,
    max_bytes: Optional[int] = MAX_JSON_BYTES,
) -> Any:
    """The JSON value in ``path``, whose top level is an ``expect`` (None: anything). Absent, a folder,
    unreadable, too large, not UTF-8, malformed, nested without end, a number of absurd length, or the
    wrong top-level type: one UserError line ``{what} '{path}' {problem}; {fix}``."""
    text = read_text_checked(path, what, fix, max_bytes)
    try:
        value = _json_loads(text)
    except ValueError as e:
        raise UserError(f"{what} {quote(path)} {e}; {fix}") from None
    if expect is not None and not isinstance(value, expect):
        want = _kind(expect() if isinstance(expect, type) else expect[0]())
        raise UserError(f"{what} {quote(path)} holds {_kind(value)}, not {want}; {fix}")
    return value


def read_jsonl_checked(
    path: str | Path, what: str, fix: str, max_bytes: Optional[int] = MAX_JSONL_BYTES, missing_ok: bool = True
) -> List[Dict[str, Any]]:
    """The records (JSON objects, one a line) of ``path``; ``[]`` when absent and ``missing_ok``.

    A line torn by a kill (the unfinished prefix of a record: it starts with ``{``) is skipped; anything
    else that is not a JSON object (a folder, binary data, another kind of value, a line that is not a
    record) is one UserError line naming the file, the line and ``fix``.
    """
    if missing_ok and not os.path.lexists(path):
        return []
    text = read_text_checked(path, what, fix, max_bytes)
    out: List[Dict[str, Any]] = []
    for n, line in enumerate(text.split("\n"), 1):
        s = line.strip()
        if not s:
            continue
        try:
            rec = _json_loads(s)
        except ValueError as e:
            if s.startswith("{") and str(e).startswith("is not valid JSON"):
                continue  # torn by a kill mid-write
            raise UserError(f"{what} {quote(path)}: line {n} {e}; {fix}") from None
        if not isinstance(rec, dict):
            raise UserError(f"{what} {quote(path)}: line {n} holds {_kind(rec)}, not a record (an object); {fix}")
        out.append(rec)
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

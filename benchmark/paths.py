"""Output paths checked before any computing: a wrong-kind or unwritable path is one UserError line.

``ganbench train --out``, ``evaluate``'s run directory and ``--json`` go through these checks first, so
a path that is a file where a folder is wanted (or the reverse), a parent that is a file, a folder
without write permission or on a read-only file system fails in a second, not after an hour of work.
Nothing is created or written by a check.
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmark.errors import UserError


def _writable(p: Path) -> bool:
    """Whether this process may create files in (or write) ``p``: effective ids, read-only mounts included."""
    mode = os.W_OK | (os.X_OK if p.is_dir() else 0)
    if os.access in os.supports_effective_ids:
        return os.access(p, mode, effective_ids=True)
    return os.access(p, mode)


def _read_only_fs(p: Path) -> bool:
    try:
        return bool(os.statvfs(p).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _existing_ancestor(p: Path, start: Path, what: str) -> Path:
    """The nearest existing path at or above ``start`` (a folder that holds ``p``); a file in the way is an error."""
    anc = start
    while not os.path.lexists(anc):
        if anc.parent == anc:
            break
        anc = anc.parent
    if not anc.is_dir():
        raise UserError(f"{what} '{p}' cannot be created: '{anc}' is a file, not a folder; choose another path")
    return anc


def _refuse_unwritable(p: Path, target: Path, what: str) -> None:
    if _read_only_fs(target) or not _writable(target):
        why = "is on a read-only file system" if _read_only_fs(target) else "is not writable by you"
        problem = why if target == p else f"cannot be written: '{target}' {why}"
        raise UserError(f"{what} '{p}' {problem}; choose a folder you can write to, or fix its permissions")


def check_output_dir(path: str | Path, what: str) -> Path:
    """``path`` is (or can be created as) a folder this process can write in; returns it."""
    p = Path(path)
    if os.path.lexists(p) and not p.is_dir():
        raise UserError(f"{what} '{p}' is a file, not a folder; give the path of a folder (created if absent)")
    _refuse_unwritable(p, p if p.is_dir() else _existing_ancestor(p, p.parent, what), what)
    return p


def check_output_file(path: str | Path, what: str) -> Path:
    """``path`` is (or can be created as) a file this process can replace; returns it."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{what} '{p}' is a folder; give the path of a file to write")
    if os.path.lexists(p):
        if not p.is_file():
            raise UserError(f"{what} '{p}' exists and is not a regular file; give another path")
        # the file is replaced by an atomic rename: its folder must be writable
        _refuse_unwritable(p, p.parent, what)
        return p
    _refuse_unwritable(p, _existing_ancestor(p, p.parent, what), what)
    return p


def check_appendable(path: str | Path, what: str) -> Path:
    """A file that is appended to in place (``metrics.jsonl``): writable if it exists, else its folder is."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{what} '{p}' is a folder; it must be a file")
    target = p if os.path.lexists(p) else _existing_ancestor(p, p.parent, what)
    _refuse_unwritable(p, target, what)
    return p


__all__ = ["check_output_dir", "check_output_file", "check_appendable"]

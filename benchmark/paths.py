"""Paths checked before any computing: a wrong-kind, unwritable, full or impossible path is one UserError line.

Every path a command takes goes through one of these checks first, so a path that is a file where a
folder is wanted (or the reverse), a parent that is a file, a name longer than the file system allows, a
folder without write permission, on a read-only file system or on a kernel file system (``/proc``,
``/sys``), or a disk without room fails in a second, not after an hour of work. Nothing is created or
written by a check.

    check_output_dir(path, what)     a folder that is (or can be created) and written in
    check_output_file(path, what)    a file that can be created or atomically replaced
    check_appendable(path, what)     a file appended to in place (``metrics.jsonl``)
    check_input_file(path, what)     a regular file that can be read (not a folder, FIFO or device)
    check_input_dir(path, what)      a folder that can be listed and read
    check_name(path, what)           only the name: not empty, no NUL, no part too long for the file system
    check_room(path, need, what)     the file system holding ``path`` has ``need`` bytes free
    cache_root(root), check_cache_root(root)   the user's ganbench cache folder (and that it can be written)

``what`` names the path as the user gave it (``"--out"``, ``"$GANBENCH_CACHE"``, ``"run 'R': its log"``); the
message is ``{what} '{path}' {problem}; {fix}``. A check returns the path as a ``Path``.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import Optional, Tuple

from benchmark.errors import UserError, quote

MIN_FREE_BYTES = 1 << 20  # room an output needs at the least (a config, a record, a report page)

# Kernel and virtual file systems: they hold kernel state, not the user's files; creating a file there
# fails (ENOENT under /proc, EACCES under /sys), even as root, however the permission bits read.
PSEUDO_FILE_SYSTEMS = frozenset(
    "proc sysfs cgroup cgroup2 devpts debugfs tracefs securityfs pstore bpf configfs fusectl mqueue "
    "binfmt_misc efivarfs selinuxfs nsfs autofs rpc_pipefs hugetlbfs".split()
)


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


# ------------------------------------------------------------------------------------------------
# facts about a path (none of them raises OSError)


def _stat(p: Path, what: str, follow: bool = True) -> Optional[os.stat_result]:
    """``os.stat`` of ``p``, None when it (or a folder on the way) is absent; other errors are one line."""
    try:
        return os.stat(p) if follow else os.lstat(p)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise UserError(f"{what} {quote(p)} is longer than this file system allows; give a shorter path") from None
        if e.errno == errno.ELOOP:
            raise UserError(f"{what} {quote(p)} is a loop of symbolic links; give another path") from None
        raise UserError(
            f"{what} {quote(p)} cannot be looked at ({e.strerror}); fix the permissions of the folders above it"
        ) from None


def check_name(path: str | Path, what: str) -> None:
    """The path is a usable name: not empty, no NUL, no part longer than the file system's limit."""
    s, p = str(path), Path(path)
    if s == "" or s.strip() == "":
        raise UserError(f"{what} is empty ({quote(s)}); give a path (use '.' for the current folder)")
    if "\x00" in s:
        raise UserError(f"{what} {quote(s)} holds a NUL character; give a path without it")
    anc = p
    while not os.path.lexists(anc) and anc.parent != anc:
        anc = anc.parent
    try:
        name_max = os.pathconf(anc if os.path.isdir(anc) else anc.parent, "PC_NAME_MAX")
        path_max = os.pathconf(anc if os.path.isdir(anc) else anc.parent, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    for part in p.parts:
        n = len(os.fsencode(part))
        if n > name_max and part != p.anchor:
            raise UserError(
                f"{what} {quote(s, 80)} has a name of {n} bytes ({quote(part, 24)}); names on this file system "
                f"are at most {name_max} bytes: give a shorter one"
            )
    if len(os.fsencode(os.path.abspath(s))) >= path_max:
        raise UserError(
            f"{what} {quote(s, 80)} is {len(os.fsencode(os.path.abspath(s)))} bytes long; paths are shorter than "
            f"{path_max} bytes here: give a shorter one"
        )


def _mount_of(p: Path) -> Optional[Tuple[str, str]]:
    """(mount point, file system type) of the mount that holds ``p`` (Linux; None elsewhere)."""
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return None
    real = os.path.realpath(p)
    best: Optional[Tuple[str, str]] = None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if not sep or len(fields) < 5 or not rest:
            continue
        mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])  # \040: a space
        if real == mp or real.startswith(mp.rstrip("/") + "/"):
            if best is None or len(mp) >= len(best[0]):  # the deepest; of mounts stacked on one point, the last
                best = (mp, rest[0])
    return best


def _read_only_fs(p: Path) -> bool:
    try:
        return bool(os.statvfs(p).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def free_bytes(p: str | Path) -> Optional[int]:
    """Bytes this process may still write on the file system holding ``p`` (None when unknown)."""
    try:
        st = os.statvfs(p)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _writable(p: Path) -> bool:
    """Whether this process may create files in (or write) ``p``: effective ids, read-only mounts included."""
    mode = os.W_OK | (os.X_OK if p.is_dir() else 0)
    if os.access in os.supports_effective_ids:
        return os.access(p, mode, effective_ids=True)
    return os.access(p, mode)


def _readable(p: Path, folder: bool) -> bool:
    mode = os.R_OK | (os.X_OK if folder else 0)
    if os.access in os.supports_effective_ids:
        return os.access(p, mode, effective_ids=True)
    return os.access(p, mode)


# ------------------------------------------------------------------------------------------------
# the checks


def _existing_ancestor(p: Path, start: Path, what: str) -> Path:
    """The nearest existing path at or above ``start`` (a folder that holds ``p``); a file in the way is an error."""
    anc = start
    while _stat(anc, what) is None:
        if os.path.lexists(anc):
            raise UserError(
                f"{what} {quote(p)} cannot be created: {quote(anc)} is a broken symbolic link; remove it or "
                "give another path"
            )
        if anc.parent == anc:
            break
        anc = anc.parent
    if not anc.is_dir():
        raise UserError(
            f"{what} {quote(p)} cannot be created: {quote(anc)} is a file, not a folder; choose another path"
        )
    return anc


def _refuse_unwritable(p: Path, target: Path, what: str) -> None:
    mount = _mount_of(target)
    if mount is not None and mount[1] in PSEUDO_FILE_SYSTEMS:
        raise UserError(
            f"{what} {quote(p)} is on the kernel's {mount[1]} file system ({quote(mount[0])}), which holds no "
            "files of yours; choose a folder on a disk"
        )
    if _read_only_fs(target) or not _writable(target):
        why = "is on a read-only file system" if _read_only_fs(target) else "is not writable by you"
        problem = why if target == p else f"cannot be written: {quote(target)} {why}"
        raise UserError(f"{what} {quote(p)} {problem}; choose a folder you can write to, or fix its permissions")


def check_room(path: str | Path, need: int, what: str) -> Path:
    """The file system that holds (or will hold) ``path`` has at least ``need`` bytes free for this process."""
    p = Path(path)
    anc = _existing_ancestor(p, p, what)
    free = free_bytes(anc)
    if free is not None and free < need:
        raise UserError(
            f"{what} {quote(p)} is on a file system with {human_bytes(free)} free, and this needs about "
            f"{human_bytes(need)}; free some space or choose a folder on another disk"
        )
    return p


def check_output_dir(path: str | Path, what: str, need: int = MIN_FREE_BYTES) -> Path:
    """``path`` is (or can be created as) a folder this process can write in, with ``need`` bytes free."""
    p = Path(path)
    check_name(path, what)
    st = _stat(p, what)
    if st is None and os.path.lexists(p):
        raise UserError(f"{what} {quote(p)} is a broken symbolic link; remove it or give another path")
    if st is not None and not stat.S_ISDIR(st.st_mode):
        kind = "a file" if stat.S_ISREG(st.st_mode) else "not a folder"
        raise UserError(f"{what} {quote(p)} is {kind}, not a folder; give the path of a folder (created if absent)")
    target = p if st is not None else _existing_ancestor(p, p.parent, what)
    _refuse_unwritable(p, target, what)
    check_room(target, need, what)
    return p


def check_output_file(path: str | Path, what: str, need: int = MIN_FREE_BYTES) -> Path:
    """``path`` is (or can be created as) a file this process can replace atomically, with ``need`` bytes free."""
    p = Path(path)
    check_name(path, what)
    st = _stat(p, what)
    if st is None and os.path.lexists(p):
        raise UserError(f"{what} {quote(p)} is a broken symbolic link; remove it or give another path")
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} {quote(p)} is a folder; give the path of a file to write")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UserError(f"{what} {quote(p)} exists and is not a regular file; give another path")
    # an existing file is replaced by an atomic rename: its folder must be writable
    target = p.parent if st is not None else _existing_ancestor(p, p.parent, what)
    _refuse_unwritable(p, target, what)
    check_room(target, need, what)
    return p


def check_appendable(path: str | Path, what: str) -> Path:
    """A file that is appended to in place (``metrics.jsonl``): writable if it exists, else its folder is."""
    p = Path(path)
    check_name(path, what)
    st = _stat(p, what)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} {quote(p)} is a folder; it must be a file (delete or move the folder)")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UserError(f"{what} {quote(p)} exists and is not a regular file; delete or move it")
    target = p if st is not None else _existing_ancestor(p, p.parent, what)
    _refuse_unwritable(p, target, what)
    check_room(target if target.is_dir() else target.parent, MIN_FREE_BYTES, what)
    return p


def check_input_file(
    path: str | Path, what: str, fix: str = "give the path of a file", max_bytes: Optional[int] = None
) -> Path:
    """``path`` is a regular file this process can read (not a folder, FIFO or device), at most ``max_bytes``."""
    p = Path(path)
    check_name(path, what)
    st = _stat(p, what)
    if st is None:
        raise UserError(f"{what} {quote(p)} does not exist; {fix}")
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} {quote(p)} is a folder, not a file; {fix}")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{what} {quote(p)} is not a regular file (a pipe, socket or device); {fix}")
    if not _readable(p, folder=False):
        raise UserError(f"{what} {quote(p)} is not readable by you; fix its permissions, or {fix}")
    if max_bytes is not None and st.st_size > max_bytes:
        raise UserError(
            f"{what} {quote(p)} is {human_bytes(st.st_size)}, more than the {human_bytes(max_bytes)} such a file "
            f"can sensibly be; {fix}"
        )
    return p


def check_input_dir(path: str | Path, what: str, fix: str = "give the path of a folder") -> Path:
    """``path`` is a folder this process can list and read."""
    p = Path(path)
    check_name(path, what)
    st = _stat(p, what)
    if st is None:
        raise UserError(f"{what} {quote(p)} does not exist; {fix}")
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"{what} {quote(p)} is a file, not a folder; {fix}")
    if not _readable(p, folder=True):
        raise UserError(f"{what} {quote(p)} is not readable by you; fix its permissions, or {fix}")
    return p


# ------------------------------------------------------------------------------------------------
# the user's cache: one home for the folder every stage caches in (reference statistics, dataset checksums)


def cache_root(root: Optional[str | Path] = None) -> Path:
    """The ganbench cache: ``root`` (``--cache-root``), else $GANBENCH_CACHE, else $XDG_CACHE_HOME/ganbench, else
    ~/.cache/ganbench."""
    if root:
        return Path(root)
    env = os.environ.get("GANBENCH_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganbench"


def check_cache_root(root: Optional[str | Path] = None) -> Path:
    """``cache_root(root)``, checked as a folder that can be written (``check_output_dir``) and named as the user
    gave it: ``--cache-root``, ``$GANBENCH_CACHE``, or the default folder."""
    if root:
        what = "--cache-root"
    elif os.environ.get("GANBENCH_CACHE"):
        what = "$GANBENCH_CACHE"
    else:
        what = "the cache folder (set $GANBENCH_CACHE to move it)"
    return check_output_dir(cache_root(root), what)


__all__ = [
    "MIN_FREE_BYTES",
    "cache_root",
    "check_cache_root",
    "check_name",
    "check_appendable",
    "check_input_dir",
    "check_input_file",
    "check_output_dir",
    "check_output_file",
    "check_room",
    "free_bytes",
    "human_bytes",
]

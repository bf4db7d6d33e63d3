"""The one error type users see: a problem and its fix in one line (the CLI exits with status 2)."""

from __future__ import annotations

import difflib
from typing import Iterable, Optional


def one_line(text: str) -> str:
    """``text`` with every character that could break or garble a terminal line escaped as Python would
    write it (``\\n``, ``\\r``, ``\\x1b``, ``\\u2028``): whatever a user or a file put in it, it prints as one line."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def quote(value: object, width: Optional[int] = 160) -> str:
    """``value`` as it is named in an error message: in single quotes, line breaks and control characters
    escaped (``one_line``), shortened in the middle to about ``width`` characters (None: never). Every value
    that came from a user or a file is named through this, so a message stays one short line."""
    s = one_line(str(value))
    if width is not None and len(s) > width:
        keep = max(width - 3, 2)
        s = s[: keep - keep // 3] + "..." + s[len(s) - keep // 3 :]
    return f"'{s}'"


class UserError(Exception):
    """Bad input: an unknown key, an impossible value, a missing dataset, a corrupt file.

    The message is one line that names the problem and how to fix it. The command line prints it
    without a traceback and exits with status 2; nothing is written before it is raised. A line break
    that slips into a message (a value quoted without ``quote``) is escaped here, so the promise of one
    line holds for every message.
    """

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(one_line(str(message)), *args)


class TrainingDiverged(RuntimeError):
    """A run's losses became NaN/inf: a result of the experiment, not of bad input."""


def os_error(
    e: OSError, doing: str, fix: str = "fix the path or its permissions, then run the same command again"
) -> UserError:
    """An ``OSError`` met while ``doing`` something (e.g. "writing 'run/log.jsonl'") as one line: what failed,
    the system's reason (No space left on device, Read-only file system, ...) and ``fix``."""
    why = e.strerror or type(e).__name__
    where = f" ({quote(e.filename)})" if e.filename and str(e.filename) not in doing else ""
    return UserError(f"{doing} failed{where}: {why}; {fix}")


def did_you_mean(name: object, valid: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean 'x'?)`` for the closest of ``valid`` to ``name``, or ``""``: the hint every one-line
    error about an unknown name carries (registries, config keys, claim fields)."""
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""

"""The one error type users see: a problem and its fix in one line (the CLI exits with status 2)."""

from __future__ import annotations

import difflib
from typing import Iterable


class UserError(Exception):
    """Bad input: an unknown key, an impossible value, a missing dataset, a corrupt file.

    The message is one line that names the problem and how to fix it. The command line prints it
    without a traceback and exits with status 2; nothing is written before it is raised.
    """


class TrainingDiverged(RuntimeError):
    """A run's losses became NaN/inf: a result of the experiment, not of bad input."""


def did_you_mean(name: object, valid: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean 'x'?)`` for the closest of ``valid`` to ``name``, or ``""``: the hint every one-line
    error about an unknown name carries (registries, config keys, claim fields)."""
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""

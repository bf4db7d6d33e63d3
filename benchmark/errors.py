"""The one error type users see: a problem and its fix in one line (the CLI exits with status 2)."""


class UserError(Exception):
    """Bad input: an unknown key, an impossible value, a missing dataset, a corrupt file.

    The message is one line that names the problem and how to fix it. The command line prints it
    without a traceback and exits with status 2; nothing is written before it is raised.
    """


class TrainingDiverged(RuntimeError):
    """A run's losses became NaN/inf: a result of the experiment, not of bad input."""

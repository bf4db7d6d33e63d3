"""The ``ganbench`` command line: one subcommand per stage, errors as one line with exit status 2.

Every subcommand is a ``Command`` in COMMANDS: its one-line help (all that ``ganbench --help`` shows) and the
``"module:function"`` of its stage that defines its arguments, ``add_parsers(subparsers)``, imported only when
that command is the one given. A stage's ``add_parsers`` sets ``func`` to the command's implementation: a
callable, or a ``"module:function"`` string imported only when the command runs (so that its ``--help`` imports
no more than the argument definitions). Measured with ``python -X importtime``: ``ganbench --help`` imported the
gate, the study runner and torch (about 8 s on 2 busy cores) before it parsed a word; now it imports no stage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Any, List, Optional

from benchmark.errors import UserError, os_error


@dataclass(frozen=True)
class Command:
    name: str
    help: str  # the line `ganbench --help` shows; the same text as the stage's add_parser(help=...) (tested)
    stage: str  # "module:function": called with the subparsers action, adds this command's parser


# In pipeline order (the order of `ganbench --help`).
COMMANDS = (
    Command("train", "train one GAN run (resumes if its --out holds a checkpoint)", "benchmark.train_cli:add_parsers"),
    Command("classifier", "the pinned evaluator classifier: train, test, card", "benchmark.evaluation.cli:add_parsers"),
    Command("evaluate", "score a run's checkpoints (or a sample file)", "benchmark.evaluation.cli:add_parsers"),
    Command("study", "run a study (trials over seeds) or show its status", "benchmark.study.cli:add_parsers"),
    Command("report", "write reports/<study>/ from the stored records", "benchmark.study.cli:add_parsers"),
    Command(
        "regress",
        "CI gate: run a suite of short trials afresh and compare scores with a baseline",
        "benchmark.regress:add_parsers",
    ),
)


def resolve(target: str) -> Any:
    """The object a ``"module:function"`` string names, its module imported now."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (problem and where to look) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser with ``command``'s arguments defined (its stage imported); every other command is listed by
    name and help only, which is all that the top-level ``--help`` and a usage error need."""
    parser = OneLineParser(prog="ganbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    stage = next((c.stage for c in COMMANDS if c.name == command), None)
    if stage is not None:
        resolve(stage)(sub)
    for c in COMMANDS:
        if c.name not in sub.choices:
            sub.add_parser(c.name, help=c.help)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        func = resolve(args.func) if isinstance(args.func, str) else args.func
        return int(func(args) or 0)
    except UserError as e:
        sys.stderr.write(f"ganbench: error: {e}\n")
        return 2
    except OSError as e:  # disk full, permission denied where no check looked first: still one line, exit 2
        doing = f"running 'ganbench {args.command}'"
        sys.stderr.write(f"ganbench: error: {os_error(e, doing)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("ganbench: interrupted; run the same command again to resume\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

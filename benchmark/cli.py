"""The ``ganbench`` command line: one subcommand per stage, errors as one line with exit status 2.

Each stage module contributes its subcommands through ``add_parsers(subparsers)``; see STAGES.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from benchmark import regress, train
from benchmark.errors import UserError, os_error
from benchmark.evaluation import cli as evaluation_cli
from benchmark.study import cli as study_cli

# Modules that add subcommands, in pipeline order.
STAGES = [
    train,  # train
    evaluation_cli,  # classifier, evaluate
    study_cli,  # study run/status, report
    regress,  # regress
]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (problem and where to look) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="ganbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for module in STAGES:
        module.add_parsers(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
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

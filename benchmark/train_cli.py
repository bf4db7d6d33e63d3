"""The arguments of ``ganbench train``: every TrainConfig key as a flag, its help from the field's comment.

Kept apart from ``benchmark.train`` so that defining them (and ``ganbench train --help``) imports no torch: this
module needs only ``benchmark.config``. The command itself, ``benchmark.train:_cmd_train``, is imported when it runs.
"""

from __future__ import annotations

import argparse
import dataclasses

from benchmark.config import TrainConfig, field_docs


def add_config_flags(p: argparse.ArgumentParser) -> None:
    docs = field_docs(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        text = f"{docs.get(f.name, '')} [default: {default}]".strip()
        if f.type in (bool, "bool"):
            p.add_argument(flag, dest=f"cfg_{f.name}", nargs="?", const="true", default=None, metavar="BOOL", help=text)
        else:
            p.add_argument(flag, dest=f"cfg_{f.name}", default=None, metavar=f.name.upper(), help=text)


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train one GAN run (resumes if its --out holds a checkpoint)",
        description="Train one run. Every config key is a flag (--gp-lambda 10) and can also "
        "come from --config FILE.yaml or --set key=value (highest priority).",
    )
    p.add_argument("--config", help="YAML file of config overrides")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one key (repeatable)")
    p.add_argument("--out", required=True, help="run directory (created; an existing run there resumes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_flags(p)
    p.set_defaults(func="benchmark.train:_cmd_train")

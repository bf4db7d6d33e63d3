"""Subcommands of the evaluation stage: ``ganbench classifier train|test|card`` and ``ganbench evaluate``.

    ganbench classifier train --dataset mnist [--data-root D] [--epochs E] [--seed S] [--out DIR]
    ganbench classifier test  --dataset mnist            # re-measure the committed weights' accuracy
    ganbench classifier card  --dataset mnist            # the evaluator card (for the README)
    ganbench evaluate RUN_DIR [--step N[,N...]] [--metrics a,b] [--num-samples 10000] [--split test]
                      [--feature-extractor classifier|inception-v3-compat] [--force] [--tsne]
    ganbench evaluate --samples FILE.npz --dataset mnist [--json OUT.json] [--metrics ...]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from benchmark.errors import UserError


def _set_threads(n: Optional[int]) -> None:
    import torch

    if n is not None:
        if n < 1:
            raise UserError(f"--threads must be >= 1, got {n}")
        torch.set_num_threads(n)


# ------------------------------------------------------------------------------------------------
# classifier


def _cmd_classifier_train(args: argparse.Namespace) -> int:
    from benchmark.evaluation.classifier import train_classifier

    _set_threads(args.threads)
    entry = train_classifier(args.dataset, data_root=args.data_root, epochs=args.epochs, seed=args.seed,
                             out_dir=Path(args.out) if args.out else None, progress=not args.quiet)
    print(f"{args.dataset}: test accuracy {100 * entry['test_accuracy']:.2f}%, sha256 {entry['sha256']}, "
          f"{entry['train_seconds']} s")
    return 0


def _cmd_classifier_test(args: argparse.Namespace) -> int:
    from benchmark.data import load_dataset
    from benchmark.evaluation.classifier import accuracy, load_classifier, read_manifest, _arch_name

    _set_threads(args.threads)
    name = _arch_name(args.dataset)
    model, sha = load_classifier(name)
    test = load_dataset(name, root=args.data_root, split="test")
    acc = accuracy(model, test.images.cpu(), test.labels.cpu())
    recorded = read_manifest()[name]["test_accuracy"]  # load_classifier has checked the entry exists
    print(f"{name}: test accuracy {100 * acc:.2f}% (manifest: {100 * recorded:.2f}%), sha256 {sha}")
    return 0


def _cmd_classifier_card(args: argparse.Namespace) -> int:
    from benchmark.evaluation.classifier import evaluator_card

    print(evaluator_card(args.dataset))
    return 0


# ------------------------------------------------------------------------------------------------
# evaluate


def _parse_steps(spec: Optional[List[str]]) -> Optional[List[int]]:
    if not spec:
        return None
    out = []
    for item in spec:
        for s in item.split(","):
            s = s.strip()
            if not s:
                continue
            try:
                out.append(int(s))
            except ValueError:
                raise UserError(f"--step takes checkpoint steps (integers), got '{s}'") from None
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _print_record(rec: Dict[str, Any], prefix: str = "") -> None:
    items = "  ".join(f"{k}={_fmt(v)}" for k, v in rec["metrics"].items())
    print(f"{prefix}{items}")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from benchmark.evaluation.metrics import evaluate_samples, parse_metrics

    _set_threads(args.threads)
    metrics = parse_metrics(args.metrics)
    if args.samples is not None:
        if args.run_dir is not None:
            raise UserError("give either RUN_DIR or --samples FILE, not both")
        if not args.dataset:
            raise UserError("--samples needs --dataset (the dataset the samples imitate, e.g. --dataset mnist)")
        if args.step:
            raise UserError("--step applies to RUN_DIR, not to --samples")
        from benchmark.data import DATASETS
        from benchmark.evaluation.samples import load_samples

        DATASETS.get(args.dataset)
        x, y = load_samples(args.samples, args.dataset)
        tsne_path = None
        if args.tsne:
            base = Path(args.json) if args.json else Path(args.samples)
            tsne_path = base.with_suffix(".tsne.png")
            if metrics is None:
                from benchmark.evaluation.metrics import default_metrics

                metrics = default_metrics(args.dataset, conditional=y is not None)
            metrics = [*metrics, "tsne"] if "tsne" not in metrics else metrics
        rec = evaluate_samples(x, y, args.dataset, metrics, split=args.split, data_root=args.data_root,
                               feature_extractor=args.feature_extractor, device=args.device,
                               cache_root=args.cache_root, progress=not args.quiet, seed=args.seed,
                               tsne_path=tsne_path, num_samples=args.num_samples)
        rec = {"samples": str(args.samples), **rec}
        if args.json:
            from benchmark.io import write_json

            write_json(args.json, rec)
            print(f"wrote {args.json}")
        else:
            print(json.dumps(rec, indent=2))
            return 0
        _print_record(rec)
        return 0

    if args.run_dir is None:
        raise UserError("give a run directory (ganbench evaluate RUN_DIR) or --samples FILE.npz --dataset NAME")
    if args.dataset or args.json:
        raise UserError("--dataset and --json apply to --samples; a run's scores go to RUN_DIR/metrics.jsonl")
    from benchmark.evaluation.runs import METRICS_FILE, evaluate_run

    recs = evaluate_run(args.run_dir, steps=_parse_steps(args.step), metrics=metrics,
                        num_samples=args.num_samples or 10000, split=args.split, data_root=args.data_root,
                        feature_extractor=args.feature_extractor, force=args.force, device=args.device,
                        seed=args.seed, progress=not args.quiet, cache_root=args.cache_root, tsne=args.tsne)
    for r in recs:
        _print_record(r, prefix=f"step {r['step']}: ")
    print(f"scores in {Path(args.run_dir) / METRICS_FILE}")
    return 0


# ------------------------------------------------------------------------------------------------


def add_parsers(sub) -> None:
    from benchmark.evaluation.fidelity import EXTRACTORS
    from benchmark.evaluation.metrics import METRICS

    # ---- classifier -----------------------------------------------------------------------------
    p = sub.add_parser("classifier", help="the pinned evaluator classifier: train, test, card",
                       description="Train or inspect the evaluator classifier whose weights ship in "
                                   "benchmark/evaluation/weights/.")
    csub = p.add_subparsers(dest="classifier_command", metavar="ACTION", parser_class=type(p))
    csub.required = True

    t = csub.add_parser("train", help="train the classifier of a dataset and record it in the manifest")
    t.add_argument("--dataset", required=True, help="mnist, fashion-mnist or digits")
    t.add_argument("--data-root", help="dataset folder (default: $GANBENCH_DATA, else ./data)")
    t.add_argument("--epochs", type=int, help="training epochs (default: the dataset's recipe)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", help="weights folder (default: the package's benchmark/evaluation/weights)")
    t.add_argument("--threads", type=int, help="torch CPU threads (recorded; training is deterministic per count)")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=_cmd_classifier_train)

    t = csub.add_parser("test", help="re-measure the test accuracy of the committed weights")
    t.add_argument("--dataset", required=True)
    t.add_argument("--data-root")
    t.add_argument("--threads", type=int)
    t.set_defaults(func=_cmd_classifier_test)

    t = csub.add_parser("card", help="print the evaluator card (accuracy, feature dim, sha256, command)")
    t.add_argument("--dataset", required=True)
    t.set_defaults(func=_cmd_classifier_card)

    # ---- evaluate -------------------------------------------------------------------------------
    e = sub.add_parser("evaluate", help="score a run's checkpoints (or a sample file)",
                       description="Score every checkpoint of a run (or --step ones) into RUN_DIR/metrics.jsonl, "
                                   "or score a sample file (--samples FILE.npz --dataset NAME).")
    e.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a 'ganbench train' run directory")
    e.add_argument("--step", action="append", metavar="N", help="checkpoint step(s) to score (default: all)")
    e.add_argument("--metrics", help=f"comma-separated; default by dataset kind. Known: {', '.join(METRICS.names())}")
    e.add_argument("--num-samples", type=int, default=None,
                   help="generated samples per checkpoint (default 10000; for --samples: all in the file)")
    e.add_argument("--split", default="test", choices=["test", "train"], help="real reference split")
    e.add_argument("--feature-extractor", default="classifier", choices=list(EXTRACTORS))
    e.add_argument("--force", action="store_true", help="re-score checkpoints already in metrics.jsonl")
    e.add_argument("--tsne", action="store_true", help="also write a t-SNE PNG of classifier features")
    e.add_argument("--samples", metavar="FILE.npz", help="score this sample file instead of a run")
    e.add_argument("--dataset", help="with --samples: the dataset they imitate")
    e.add_argument("--json", metavar="OUT.json", help="with --samples: write the record here")
    e.add_argument("--data-root", help="dataset folder (default: the run's, else $GANBENCH_DATA, else ./data)")
    e.add_argument("--cache-root", help="reference-statistics cache (default: $GANBENCH_CACHE, else ~/.cache/ganbench)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--seed", type=int, default=0, help="noise seed of the generated samples")
    e.add_argument("--threads", type=int, help="torch CPU threads")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=_cmd_evaluate)


def main(argv: Optional[List[str]] = None) -> int:  # python -m benchmark.evaluation.cli (without the stage list)
    from benchmark.cli import main as ganbench_main

    return ganbench_main(argv)


if __name__ == "__main__":
    sys.exit(main())

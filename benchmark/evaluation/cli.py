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
from pathlib import Path
from typing import Any, Dict, List, Optional

from benchmark.data import DATASETS, check_dataset_files, load_dataset
from benchmark.errors import UserError
from benchmark.evaluation.classifier import (
    SECOND,
    WEIGHTS_DIR,
    arch_name,
    classify,
    clean_confidence_quantile,
    corruption_table,
    dataset_of,
    evaluator_card,
    load_classifier,
    read_manifest,
    train_classifier,
)
from benchmark.evaluation.coverage import agreement, histogram, total_variation
from benchmark.evaluation.fidelity import EXTRACTORS
from benchmark.evaluation.metrics import METRICS, default_metrics, evaluate_samples, parse_metrics
from benchmark.evaluation.runs import DEFAULT_SAMPLES, METRICS_FILE, check_num_samples, check_seed, evaluate_run
from benchmark.evaluation.samples import SAMPLE_RANGES, load_samples
from benchmark.io import write_json
from benchmark.paths import check_cache_root, check_input_dir, check_input_file, check_output_dir, check_output_file
from benchmark.train import pick_device

MAX_EPOCHS = 1000  # classifier training epochs (the recipes take 8 to 60; 10**9 is a typo, refused before it starts)
MAX_LIMIT = 10_000_000  # --limit: test images (a test split holds 10,000)


def _set_threads(n: Optional[int]) -> None:
    import torch

    if n is not None:
        if not 1 <= n <= 1024:
            raise UserError(f"--threads must be in [1, 1024], got {n}")
        torch.set_num_threads(n)


def _check_count(flag: str, n: Optional[int], hi: int) -> None:
    if n is not None and not 1 <= n <= hi:
        raise UserError(f"{flag} must be an integer in [1, {hi}], got {n}")


# ------------------------------------------------------------------------------------------------
# classifier


def _cmd_classifier_train(args: argparse.Namespace) -> int:

    _set_threads(args.threads)
    if args.out and args.replace_shipped:
        raise UserError("give --out DIR (new weights) or --replace-shipped (overwrite the pinned ones), not both")
    _check_count("--epochs", args.epochs, MAX_EPOCHS)
    if args.seed is not None:
        check_seed(args.seed)
    if args.out is not None:
        check_output_dir(args.out, "--out")
    elif args.replace_shipped:
        check_output_dir(WEIGHTS_DIR, "the shipped weights folder")
    entry = train_classifier(
        args.dataset,
        data_root=args.data_root,
        epochs=args.epochs,
        seed=args.seed,
        out_dir=Path(args.out) if args.out else None,
        progress=not args.quiet,
        second=args.second,
        replace_shipped=args.replace_shipped,
    )
    print(
        f"{args.dataset}{' (second)' if args.second else ''}: test accuracy {100 * entry['test_accuracy']:.2f}%, "
        f"sha256 {entry['sha256']}, {entry['train_seconds']} s"
    )
    return 0


def _table_rows(name: str, table: Dict[str, Dict[str, float]]) -> List[str]:
    rows = []
    for cond, r in table.items():
        if cond == "uniform":
            rows.append(f"{name:>12}  {'uniform':>9}  max prob >= 0.9: {100 * r['confident_share']:6.2f}%")
        else:
            rows.append(
                f"{name:>12}  {cond:>9}  accuracy {100 * r['accuracy']:6.2f}%  "
                f"max class share x{r['max_share_ratio']:.2f}"
            )
    return rows


def _cmd_classifier_test(args: argparse.Namespace) -> int:
    """Re-measure the corruption table of the dataset's evaluators (primary and second) on its test split."""

    _set_threads(args.threads)
    name = arch_name(args.dataset)
    base = dataset_of(name)
    wdir = None
    if args.weights is not None:
        wdir = check_input_dir(args.weights, "--weights", "give the folder of a 'ganbench classifier train --out'")
    _check_count("--limit", args.limit, MAX_LIMIT)
    if args.json is not None:
        check_output_file(args.json, "--json")
    second = SECOND.get(base)
    names = [base] + ([second] if second in read_manifest(wdir or WEIGHTS_DIR) else [])
    models = {n: load_classifier(n, weights_dir=wdir) for n in names}  # checks sha256 before any work
    test = load_dataset(base, root=args.data_root, split="test")
    x, y = test.images.cpu(), test.labels.cpu()
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    out: Dict[str, Any] = {"dataset": base, "test_images": len(x), "evaluators": {}}
    preds = {}
    for n, (model, sha) in models.items():
        table = corruption_table(model, x, y)
        tau = clean_confidence_quantile(model, x)
        preds[n] = classify(model, x)[1].argmax(1)
        out["evaluators"][n] = {"sha256": sha, "table": table, "readable_tau_measured": tau}
        for row in _table_rows(n, table):
            print(row)
        print(f"{n:>12}  readable tau (1st percentile of clean max prob): {tau:.4f}; sha256 {sha}")
    if len(preds) == 2:
        a, b = preds.values()
        k = test.num_classes
        agree, tv = agreement(a, b), total_variation(histogram(a, k), histogram(b, k))
        out["agreement_clean"], out["tv_clean"] = agree, tv
        print(f"evaluators' agreement on clean test: {100 * agree:.2f}%, class-histogram TV {tv:.4f}")
    if args.json:
        write_json(args.json, out)
        print(f"wrote {args.json}")
    return 0


def _cmd_classifier_card(args: argparse.Namespace) -> int:

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

    # every flag is checked before anything is loaded or computed
    _set_threads(args.threads)
    check_seed(args.seed)
    device = pick_device(args.device)
    if args.num_samples is not None:
        check_num_samples(args.num_samples)
    metrics = parse_metrics(args.metrics)
    if args.samples is not None:
        if args.run_dir is not None:
            raise UserError("give either RUN_DIR or --samples FILE, not both")
        if not args.dataset:
            raise UserError("--samples needs --dataset (the dataset the samples imitate, e.g. --dataset mnist)")
        if args.step:
            raise UserError("--step applies to RUN_DIR, not to --samples")

        DATASETS.get(args.dataset)
        check_input_file(args.samples, "--samples", "give an .npz with an 'images' array")
        tsne_path = None
        if args.json is not None:
            check_output_file(args.json, "--json")
        if args.tsne:
            base = Path(args.json) if args.json else Path(args.samples)
            tsne_path = check_output_file(base.with_suffix(".tsne.png"), "the t-SNE figure")
        check_dataset_files(args.dataset, args.data_root)
        check_cache_root(args.cache_root)
        x, y = load_samples(args.samples, args.dataset, value_range=args.range)
        if args.tsne:
            if metrics is None:
                metrics = default_metrics(args.dataset, conditional=y is not None)
            metrics = [*metrics, "tsne"] if "tsne" not in metrics else metrics
        rec = evaluate_samples(
            x,
            y,
            args.dataset,
            metrics,
            split=args.split,
            data_root=args.data_root,
            feature_extractor=args.feature_extractor,
            device=device,
            cache_root=args.cache_root,
            progress=not args.quiet,
            seed=args.seed,
            tsne_path=tsne_path,
            num_samples=args.num_samples,
        )
        rec = {"samples": str(args.samples), **rec}
        if args.json:
            write_json(args.json, rec)
            print(f"wrote {args.json}")
        else:
            print(json.dumps(rec, indent=2))
            return 0
        _print_record(rec)
        return 0

    if args.run_dir is None:
        raise UserError("give a run directory (ganbench evaluate RUN_DIR) or --samples FILE.npz --dataset NAME")
    if args.dataset or args.json is not None or args.range:
        raise UserError("--dataset, --json and --range apply to --samples; a run's scores go to RUN_DIR/metrics.jsonl")

    recs = evaluate_run(
        args.run_dir,
        steps=_parse_steps(args.step),
        metrics=metrics,
        num_samples=DEFAULT_SAMPLES if args.num_samples is None else args.num_samples,
        split=args.split,
        data_root=args.data_root,
        feature_extractor=args.feature_extractor,
        force=args.force,
        device=device,
        seed=args.seed,
        progress=not args.quiet,
        cache_root=args.cache_root,
        tsne=args.tsne,
    )
    for r in recs:
        _print_record(r, prefix=f"step {r['step']}: ")
    print(f"scores in {Path(args.run_dir) / METRICS_FILE}")
    return 0


# ------------------------------------------------------------------------------------------------


def add_parsers(sub) -> None:

    # ---- classifier -----------------------------------------------------------------------------
    p = sub.add_parser(
        "classifier",
        help="the pinned evaluator classifier: train, test, card",
        description="Train or inspect the evaluator classifier whose weights ship in benchmark/evaluation/weights/.",
    )
    csub = p.add_subparsers(dest="classifier_command", metavar="ACTION", parser_class=type(p))
    csub.required = True

    t = csub.add_parser(
        "train",
        help="train an evaluator of a dataset into a new folder (or replace the shipped one)",
        description="Train the evaluator of a dataset (or, with --second, its independent second "
        "evaluator) and record it in <folder>/manifest.json. Writes only to --out; "
        "the pinned weights in benchmark/evaluation/weights are overwritten only "
        "with --replace-shipped.",
    )
    t.add_argument("--dataset", required=True, help="mnist, fashion-mnist or digits")
    t.add_argument("--second", action="store_true", help="train the independent second evaluator (an MLP)")
    t.add_argument("--data-root", help="dataset folder (default: $GANBENCH_DATA, else ./data)")
    t.add_argument("--epochs", type=int, help="training epochs (default: the evaluator's recipe)")
    t.add_argument("--seed", type=int, help="default: the evaluator's recipe (primary 0, second 1)")
    t.add_argument("--out", help="folder for the new weights and its manifest.json (required unless --replace-shipped)")
    t.add_argument(
        "--replace-shipped",
        action="store_true",
        help="overwrite the pinned evaluator in benchmark/evaluation/weights (changes its sha256)",
    )
    t.add_argument("--threads", type=int, help="torch CPU threads (recorded; training is deterministic per count)")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=_cmd_classifier_train)

    t = csub.add_parser(
        "test",
        help="re-measure the corruption table of the dataset's evaluators",
        description="Accuracy and largest class-share ratio on the clean test split and under "
        "Gaussian noise 0.2, salt-and-pepper 10 %, blur sigma 1 (fixed seed); share "
        "of uniform-noise images read with max prob >= 0.9; the two evaluators' "
        "agreement.",
    )
    t.add_argument("--dataset", required=True)
    t.add_argument("--data-root")
    t.add_argument("--weights", metavar="DIR", help="weights folder to test (default: the shipped ones)")
    t.add_argument("--limit", type=int, help="only the first N test images")
    t.add_argument("--json", metavar="OUT.json", help="also write the table here")
    t.add_argument("--threads", type=int)
    t.set_defaults(func=_cmd_classifier_test)

    t = csub.add_parser("card", help="print the evaluator card (accuracy, feature dim, sha256, command)")
    t.add_argument("--dataset", required=True)
    t.set_defaults(func=_cmd_classifier_card)

    # ---- evaluate -------------------------------------------------------------------------------
    e = sub.add_parser(
        "evaluate",
        help="score a run's checkpoints (or a sample file)",
        description="Score every checkpoint of a run (or --step ones) into RUN_DIR/metrics.jsonl, "
        "or score a sample file (--samples FILE.npz --dataset NAME).",
    )
    e.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a 'ganbench train' run directory")
    e.add_argument("--step", action="append", metavar="N", help="checkpoint step(s) to score (default: all)")
    e.add_argument(
        "--metrics",
        help=f"comma-separated; default by dataset kind ('default' names those: default,dc adds dc). Known: {', '.join(METRICS.names())}",
    )
    e.add_argument(
        "--num-samples",
        type=int,
        default=None,
        help="generated samples per checkpoint, 1 to 1000000 (default 10000; for --samples: all in the file)",
    )
    e.add_argument("--split", default="test", choices=["test", "train"], help="real reference split")
    e.add_argument("--feature-extractor", default="classifier", choices=list(EXTRACTORS))
    e.add_argument("--force", action="store_true", help="re-score checkpoints already in metrics.jsonl")
    e.add_argument("--tsne", action="store_true", help="also write a t-SNE PNG of classifier features")
    e.add_argument("--samples", metavar="FILE.npz", help="score this sample file instead of a run")
    e.add_argument("--dataset", help="with --samples: the dataset they imitate")
    e.add_argument(
        "--range",
        choices=list(SAMPLE_RANGES),
        metavar="RANGE",
        help="with --samples: the range of float images, 01 ([0, 1]) or -11 ([-1, 1], the default); "
        "float images that all lie in [0, 1] are refused unless it is given",
    )
    e.add_argument("--json", metavar="OUT.json", help="with --samples: write the record here")
    e.add_argument("--data-root", help="dataset folder (default: the run's, else $GANBENCH_DATA, else ./data)")
    e.add_argument("--cache-root", help="reference-statistics cache (default: $GANBENCH_CACHE, else ~/.cache/ganbench)")
    e.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N (default cpu)")
    e.add_argument("--seed", type=int, default=0, help="noise seed of the generated samples")
    e.add_argument("--threads", type=int, help="torch CPU threads")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=_cmd_evaluate)

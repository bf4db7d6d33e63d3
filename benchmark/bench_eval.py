"""Benchmark of the evaluation stage: seconds to score 10,000 MNIST samples on 2 CPU threads.

Scores FID, KID, IS, precision/recall and class coverage (``--metrics fid,kid,is,pr,coverage``) of 10,000
images against the MNIST test split, with the real statistics already cached (a first, untimed call
fills the cache). The "generated" samples are the first 10,000 MNIST training images: the cost of scoring
does not depend on what the images show. Target: <= 60 s.

    .venv/bin/python -m benchmark.bench_eval [--num-samples 10000] [--threads 2] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from typing import List, Optional

import torch

from benchmark.data import load_dataset
from benchmark.errors import UserError
from benchmark.evaluation.metrics import evaluate_samples

TARGET_S = 60.0
METRICS = ["fid", "kid", "is", "pr", "coverage"]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_eval", description=__doc__.splitlines()[0])
    ap.add_argument("--num-samples", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="timed repeats (the best is reported)")
    ap.add_argument(
        "--data-root", default=None, help="default: $GANBENCH_DATA, else ../shared/data if present, else ./data"
    )
    ap.add_argument("--cache-root", default=None, help="default: a fresh temporary folder (cache filled untimed)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)

    root = args.data_root or os.environ.get("GANBENCH_DATA")
    if root is None and os.path.isdir("../shared/data/MNIST/raw"):
        root = "../shared/data"
    try:
        x = load_dataset("mnist", root=root, split="train").images[: args.num_samples].clone()
        with tempfile.TemporaryDirectory() as tmp:
            cache = args.cache_root or tmp
            kw = dict(data_root=root, cache_root=cache, progress=False)
            t0 = time.perf_counter()
            evaluate_samples(x, None, "mnist", METRICS, **kw)  # fills the reference cache
            cold = time.perf_counter() - t0
            times = []
            for _ in range(max(1, args.repeats)):
                t0 = time.perf_counter()
                rec = evaluate_samples(x, None, "mnist", METRICS, **kw)
                times.append(time.perf_counter() - t0)
    except UserError as e:
        print(f"bench_eval: error: {e}", file=sys.stderr)
        return 2
    best = min(times)
    result = {
        "benchmark": "evaluate 10k MNIST samples (fid, kid, is, pr, coverage), real stats cached",
        "num_samples": len(x),
        "threads": args.threads,
        "seconds": round(best, 2),
        "seconds_cold_cache": round(cold, 2),
        "target_seconds": TARGET_S,
        "pass": best <= TARGET_S,
        "evaluator_sha256": rec["evaluator"]["sha256"],
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "metrics": rec["metrics"],
    }
    print(json.dumps(result, indent=2))
    print(
        f"bench-eval: scored {len(x)} samples in {best:.1f} s on {args.threads} threads "
        f"(cold cache {cold:.1f} s; target <= {TARGET_S:.0f} s: {'PASS' if best <= TARGET_S else 'FAIL'})"
    )
    return 0 if best <= TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())

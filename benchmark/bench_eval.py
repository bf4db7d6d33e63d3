"""Benchmark of the evaluation stage: seconds per metric family at 5,000 and 10,000 MNIST samples, and the whole
``evaluate`` against torch-fidelity's own path on the same features, in one process.

For each N: the "generated" samples are the first N MNIST training images (the cost of scoring does not
depend on what the images show), scored against the test split with every reference already cached (a
first, untimed call fills the cache). Printed, best of ``--repeats``:

* per family, from one evaluation's context: the classifier's pass over the samples, the second
  evaluator's, loading the cached reference, the distance matrices between the two sets' features that kid, pr
  and dc share (``Context.pairwise``), then fid, kid, is, pr and coverage on those, and the opt-in
  dc (density & coverage), vendi and ndb (its bins cached; not in the whole evaluate below: no default set holds
  them), and apart the one-off fit of ndb's bins (k-means of 10,000 cached training features, what a cold cache
  adds to the first ndb of a dataset and evaluator beside the training subset's pass);
* torch-fidelity 0.4.0's own functions on the same features (``fid/kid/isc/prc_features_to_metric``, the
  real FID statistics precomputed as its cache would hold them);
* the whole ``evaluate_samples`` (fid, kid, is, pr, coverage) and torch-fidelity's whole path on the same
  images with the same classifier as its extractor and its cache warm (``torch_fidelity.calculate_metrics``
  for fid, kid, isc, prc, plus the two classifier passes of coverage), and their ratio. The bar: the whole
  evaluate at least 2x faster than torch-fidelity's path at 10,000 samples, in CPU time.

Each figure is wall seconds and CPU seconds of the process (all threads): on a shared machine the wall clock
waits for other people's work, the CPU time does not.

    .venv/bin/python -m benchmark.bench_eval [--sizes 5000,10000] [--threads 2] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch

from benchmark.data import load_dataset
from benchmark.errors import UserError
from benchmark.evaluation import ndb as N
from benchmark.evaluation.classifier import classify
from benchmark.evaluation.fidelity import fidelity_metrics
from benchmark.evaluation.metrics import Context, Options, evaluate_samples, score
from benchmark.evaluation.metrics.ndb import bins as ndb_bins

METRICS = ["fid", "kid", "is", "pr", "coverage"]
FAMILIES = ["fid", "kid", "is", "pr", "coverage", "dc", "vendi", "ndb"]  # dc, vendi, ndb: opt-in, timed beside the rest
BAR = 2.0  # torch-fidelity's path / ours in CPU seconds (robust to a shared machine's load), at the largest size


def timed(fn: Callable[[], object]) -> Tuple[float, float]:
    """(wall seconds, CPU seconds of the process: all threads) of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def best_of(repeats: int, fn: Callable[[], object]) -> Tuple[float, float]:
    """The best (wall, CPU) of ``repeats`` calls, each figure on its own."""
    runs = [timed(fn) for _ in range(max(1, repeats))]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def _steps(ctx: Context) -> List:
    """(family, run it) in order: the passes first, then each metric on them."""
    return [
        ("pass: classifier", lambda: ctx.features("classifier")),
        ("pass: second evaluator", lambda: ctx.features("second")),
        ("reference (cached)", lambda: ctx.reference()),
        ("distances (shared: kid, pr, dc)", lambda: _distances(ctx)),
        *[(m, lambda m=m: score(ctx, [m])) for m in FAMILIES],
    ]


def _distances(ctx: Context) -> None:
    """The three distance matrices KID, precision/recall and density & coverage read (``ctx.pairwise()``)."""
    pw = ctx.pairwise()
    if pw is not None:
        _ = (pw.gen_gen, pw.gen_real, pw.real_gen)  # computed and cached on the context


def families(x: torch.Tensor, kw: Dict, repeats: int) -> Dict[str, Tuple[float, float]]:
    """(wall, CPU) seconds of each family, best of ``repeats``, each repeat on a fresh context."""
    out: Dict[str, Tuple[float, float]] = {}
    for _ in range(max(1, repeats)):
        ctx = Context(x, None, Options("mnist", data_root=kw["data_root"], cache_root=kw["cache_root"]))
        for name, fn in _steps(ctx):
            w, c = timed(fn)
            old = out.get(name, (float("inf"), float("inf")))
            out[name] = (min(old[0], w), min(old[1], c))
    return out


def ndb_fit(x: torch.Tensor, kw: Dict, repeats: int) -> Tuple[float, float]:
    """(wall, CPU) seconds of fitting ndb's k-means bins on the training subset's cached features."""
    ctx = Context(x, None, Options("mnist", data_root=kw["data_root"], cache_root=kw["cache_root"]))
    train = Context(
        x, None, Options("mnist", split=N.NDB_SPLIT, data_root=kw["data_root"], cache_root=kw["cache_root"])
    )
    feats = train.reference(n=ndb_bins(ctx).n).read.features  # cached by the warm-up
    return best_of(repeats, lambda: N.fit_bins(feats))


def torch_fidelity_functions(x: torch.Tensor, kw: Dict, repeats: int) -> Dict[str, Tuple[float, float]]:
    """torch-fidelity's estimators on the same features our pass produced (real statistics precomputed)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_isc import isc_features_to_metric
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    ctx = Context(x, None, Options("mnist", data_root=kw["data_root"], cache_root=kw["cache_root"]))
    gen, real = ctx.features(), ctx.reference().read
    real_stats = fid_features_to_statistics(real.features)
    size = min(1000, len(gen), len(real))
    steps = {
        "fid": lambda: fid_statistics_to_metric(fid_features_to_statistics(gen.features), real_stats, False),
        "kid": lambda: kid_features_to_metric(gen.features, real.features, kid_subset_size=size, verbose=False),
        "is": lambda: isc_features_to_metric(gen.logits),
        "pr": lambda: prc_features_to_metric(gen.features, real.features, save_cpu_ram=True, verbose=False),
    }
    return {k: best_of(repeats, fn) for k, fn in steps.items()}


def torch_fidelity_path(x: torch.Tensor, kw: Dict, real: torch.Tensor) -> None:
    """torch-fidelity's whole path for fid, kid, isc, prc (its cache warm), and coverage's two passes."""
    n = min(len(x), len(real))
    fidelity_metrics(x, lambda: real[:n], n, "mnist", "test", ("fid", "kid", "isc", "prc"), root=kw["cache_root"])
    ctx = Context(x, None, Options("mnist", data_root=kw["data_root"], cache_root=kw["cache_root"]))
    classify(ctx.classifier[0], x)
    classify(ctx.second[0], x)


def one_size(images: torch.Tensor, real: torch.Tensor, n: int, kw: Dict, repeats: int) -> Dict:
    x = images[:n].clone()
    evaluate_samples(x, None, "mnist", METRICS + ["ndb"], **kw)  # fills the reference and ndb caches (untimed)
    torch_fidelity_path(x, kw, real)  # fills torch-fidelity's cache (untimed)
    fam = families(x, kw, repeats)
    fam["ndb bins fit (k-means)"] = ndb_fit(x, kw, repeats)
    tf = torch_fidelity_functions(x, kw, repeats)
    ours = best_of(repeats, lambda: evaluate_samples(x, None, "mnist", METRICS, **kw))
    theirs = best_of(repeats, lambda: torch_fidelity_path(x, kw, real))
    pair = lambda t: {"wall": round(t[0], 3), "cpu": round(t[1], 3)}  # noqa: E731
    return {
        "num_samples": n,
        "families_seconds": {k: pair(v) for k, v in fam.items()},
        "torch_fidelity_functions_seconds": {k: pair(v) for k, v in tf.items()},
        "evaluate_seconds": pair(ours),
        "torch_fidelity_path_seconds": pair(theirs),
        "speedup": {"wall": round(theirs[0] / ours[0], 2), "cpu": round(theirs[1] / ours[1], 2)},
    }


def report(r: Dict) -> None:
    n, fam, tf = r["num_samples"], r["families_seconds"], r["torch_fidelity_functions_seconds"]
    print(f"\n{n} samples: seconds per family, wall / CPU (ours | torch-fidelity's function on the same features)")
    for k, v in fam.items():
        line = f"  {k:24s} {v['wall']:7.2f} / {v['cpu']:6.2f}"
        if k in tf:
            t = tf[k]
            line += f"   | {t['wall']:7.2f} / {t['cpu']:6.2f}   x{t['cpu'] / max(v['cpu'], 1e-9):.1f} CPU"
        print(line)
    o, t, s = r["evaluate_seconds"], r["torch_fidelity_path_seconds"], r["speedup"]
    print(
        f"  whole evaluate {o['wall']:.1f} / {o['cpu']:.1f} s vs torch-fidelity's path {t['wall']:.1f} / "
        f"{t['cpu']:.1f} s: x{s['wall']:.2f} wall, x{s['cpu']:.2f} CPU"
    )


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="bench_eval", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5000,10000", help="comma-separated sample counts")
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
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
        if not sizes or sizes[0] < 1000 or sizes[-1] > 60000:
            raise UserError(f"--sizes must be counts in [1000, 60000], got '{args.sizes}'")
        images = load_dataset("mnist", root=root, split="train").images[: sizes[-1]]
        real = load_dataset("mnist", root=root, split="test").images
        with tempfile.TemporaryDirectory() as tmp:
            kw = dict(data_root=root, cache_root=args.cache_root or tmp, progress=False)
            results = [one_size(images, real, n, kw, args.repeats) for n in sizes]
    except (UserError, ValueError) as e:
        print(f"bench_eval: error: {e}", file=sys.stderr)
        return 2
    meta = {"threads": args.threads, "torch": torch.__version__, "cpu": platform.processor() or platform.machine()}
    print(json.dumps({"benchmark": "evaluate MNIST samples, references cached", **meta, "results": results}, indent=2))
    for r in results:
        report(r)
    last = results[-1]
    ok = last["speedup"]["cpu"] >= BAR
    print(
        f"\nbench-eval: {last['num_samples']} samples scored in {last['evaluate_seconds']['wall']:.1f} s on "
        f"{args.threads} threads, x{last['speedup']['cpu']:.2f} less CPU time than torch-fidelity's path "
        f"(x{last['speedup']['wall']:.2f} wall; bar x{BAR:.0f} CPU: {'PASS' if ok else 'FAIL'})"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

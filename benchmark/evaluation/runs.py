"""Scoring a training run: every checkpoint (or some), one JSON record per checkpoint in ``RUN/metrics.jsonl``.

A record is ``evaluate_samples``'s record plus ``step`` and ``run``. A (step, metric set, evaluator sha256,
num_samples, split, feature extractor) already in ``metrics.jsonl`` is not scored again unless ``force``;
its stored record is returned instead. Samples come from ``benchmark.rundir.generate`` with a fixed seed,
so two evaluations of one checkpoint score the same samples.

Scoring holds the run's evaluation lock (an ``flock`` of the run directory itself: no file is created, so a
refused evaluation leaves the run as it was), and what is already scored is read again once it is held: two
``ganbench evaluate`` of one run started together score each checkpoint once (the second waits, then finds the
first one's records), and neither writes a record twice. (Training holds ``RUN/.lock``, another lock: a run
may be scored while it trains.)
"""

from __future__ import annotations

import fcntl
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch

from benchmark import io, tb
from benchmark.data import check_dataset_files, check_split
from benchmark.errors import UserError
from benchmark.evaluation.metrics import evaluate_samples, evaluator_info, resolve_metrics, samples_needed
from benchmark.paths import check_appendable, check_cache_root, check_output_dir
from benchmark.rundir import (
    EVAL_DIR,
    LOG_FILE,
    METRICS_FILE,
    TB_DIR,
    generate,
    list_checkpoints,
    load_generator,
    read_log,
    read_metrics,
    read_run_config,
)

# Generated samples per evaluation: more would not fit in memory as one tensor (1e6 x 784 floats is 3 GB).
MAX_SAMPLES = 1_000_000
DEFAULT_SAMPLES = 10_000  # the protocol of FID/KID on MNIST-like sets


def check_num_samples(n: int, what: str = "--num-samples") -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise UserError(f"{what} must be an integer in [1, {MAX_SAMPLES}], got {n}")


def check_seed(seed: int, what: str = "--seed") -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise UserError(f"{what} must be an integer in [0, 2**63 - 1], got {seed}")


def record_key(rec: Dict[str, Any]) -> Tuple:
    ev = rec.get("evaluator") or {}
    return (
        rec.get("step"),
        tuple(sorted(rec.get("metric_set") or [])),
        ev.get("name"),
        ev.get("sha256"),
        rec.get("num_samples_requested", rec.get("num_samples")),
        (rec.get("reference") or {}).get("split"),
        rec.get("generation_seed", 0),
    )  # another seed scores other samples


def _steps(run_dir: Path, steps: Optional[Sequence[int]]) -> List[int]:
    """The checkpoint steps to score: all (None), or the given ones, each of which must exist."""
    available = list_checkpoints(run_dir)
    if not available:
        raise UserError(f"run '{run_dir}' has no checkpoints yet; train it first")
    if steps is None:
        return available
    todo = sorted(set(int(s) for s in steps))
    missing = [s for s in todo if s not in available]
    if missing:
        raise UserError(
            f"run '{run_dir}' has no checkpoint at step {', '.join(map(str, missing))}; "
            f"available: {', '.join(map(str, available))}"
        )
    return todo


@contextmanager
def eval_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run's evaluation lock (an flock of the run directory; the kernel releases it when the process
    dies); when another process holds it, say so once and wait for it."""
    fd = os.open(run_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(
                f"note: run '{run_dir}' is being scored by another process; waiting for it (its scores are reused)",
                file=sys.stderr,
                flush=True,
            )
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _metric_names(cfg, run_dir: Path, metrics: Optional[Sequence[str]], tsne: bool) -> List[str]:
    """The metrics scored: the dataset's defaults for a run (dynamics only with a log; t-SNE when asked), or
    the given ones checked against the dataset."""
    names = resolve_metrics(cfg.dataset, metrics, conditional=cfg.conditional, run=True)
    if metrics is None:
        if not (run_dir / LOG_FILE).is_file():
            names = [m for m in names if m != "dynamics"]
        if tsne:
            names.append("tsne")
    return names


def evaluate_run(
    run_dir: str | Path,
    steps: Optional[Sequence[int]] = None,
    metrics: Optional[Sequence[str]] = None,
    num_samples: int = DEFAULT_SAMPLES,
    split: str = "test",
    data_root: Optional[str] = None,
    *,
    feature_extractor: str = "classifier",
    force: bool = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = True,
    cache_root: Optional[str | Path] = None,
    tsne: bool = False,
) -> List[Dict[str, Any]]:
    """Score checkpoints ``steps`` (default: all) of the run; append new records to ``RUN/metrics.jsonl``.

    Returns one record per requested step (new, or the stored one when already scored). Every check (the
    steps, the options, the evaluator's weights, the scores file and the data being writable/present) runs
    before the first checkpoint is scored.
    """
    from tqdm import tqdm

    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)  # UserError when not a run directory
    todo = _steps(run_dir, steps)
    check_num_samples(num_samples)
    check_seed(seed)
    check_split(split)
    names = _metric_names(cfg, run_dir, metrics, tsne)
    ev = evaluator_info(cfg.dataset, feature_extractor, names)
    n_gen = samples_needed(cfg.dataset, names, num_samples)
    root = data_root or cfg.data_root

    path = run_dir / METRICS_FILE
    asked = {"metric_set": sorted(names), "evaluator": ev, "num_samples_requested": num_samples}
    asked.update(reference={"split": split}, generation_seed=seed)
    keys = {step: record_key({"step": step, **asked}) for step in todo}
    done = {record_key(r): r for r in read_metrics(run_dir)}
    if not force and all(keys[s] in done for s in todo):  # all scored already: nothing is written, no lock
        return [done[keys[s]] for s in todo]
    # something will be scored: can it be kept?
    check_appendable(path, f"run '{run_dir}': the scores file")
    if "dynamics" in names:
        read_log(run_dir)  # the training log the dynamics are read from: a malformed one fails before any scoring
    if "tsne" in names:
        check_output_dir(run_dir / EVAL_DIR, f"run '{run_dir}': the t-SNE folder")
    if cfg.tensorboard:  # the run writes TensorBoard events: its scores go there too (benchmark.tb)
        check_output_dir(run_dir / TB_DIR, f"run '{run_dir}': the TensorBoard folder")
    check_cache_root(cache_root)
    check_dataset_files(cfg.dataset, root)
    out: List[Dict[str, Any]] = []
    with eval_lock(run_dir):
        # read again under the lock: what another evaluation scored while this one waited is not scored twice
        done = {record_key(r): r for r in read_metrics(run_dir)}
        for step in tqdm(todo, disable=not progress, desc=f"evaluating {run_dir.name}", unit="ckpt"):
            key = keys[step]
            if key in done and not force:
                out.append(done[key])
                continue
            G, gcfg, _ = load_generator(run_dir, step, device=device)
            x, y = generate(G, gcfg, n_gen, seed=seed, device=device)
            del G
            rec = evaluate_samples(
                x,
                y,
                cfg.dataset,
                names,
                split,
                root,
                feature_extractor=feature_extractor,
                device=device,
                cache_root=cache_root,
                progress=progress,
                seed=seed,
                tsne_path=run_dir / EVAL_DIR / f"tsne_{step:06d}.png" if "tsne" in names else None,
                run_dir=run_dir,
                step=step,
                num_samples=num_samples,
            )
            rec = {"step": step, **rec, "num_samples_requested": num_samples, "generation_seed": seed}
            rec["run"] = str(run_dir)
            io.append_jsonl(path, [rec])
            if cfg.tensorboard:
                tb.scores(run_dir, step, rec["metrics"])
            done[key] = rec
            out.append(rec)
    return out

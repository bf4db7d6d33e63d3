"""Scoring a training run: every checkpoint (or some), one JSON record per checkpoint in ``RUN/metrics.jsonl``.

A record is ``evaluate_samples``'s record plus ``step`` and ``run``. A (step, metric set, evaluator sha256,
num_samples, split, feature extractor) already in ``metrics.jsonl`` is not scored again unless ``force``;
its stored record is returned instead. Samples come from ``benchmark.train.generate`` with a fixed seed,
so two evaluations of one checkpoint score the same samples.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from benchmark import io
from benchmark.errors import UserError

METRICS_FILE = "metrics.jsonl"


def record_key(rec: Dict[str, Any]) -> Tuple:
    ev = rec.get("evaluator") or {}
    return (rec.get("step"), tuple(sorted(rec.get("metric_set") or [])), ev.get("name"), ev.get("sha256"),
            rec.get("num_samples_requested", rec.get("num_samples")), (rec.get("reference") or {}).get("split"))


def evaluate_run(run_dir: str | Path, steps: Optional[Sequence[int]] = None, metrics: Optional[Sequence[str]] = None,
                 num_samples: int = 10000, split: str = "test", data_root: Optional[str] = None, *,
                 feature_extractor: str = "classifier", force: bool = False, device: str | torch.device = "cpu",
                 seed: int = 0, progress: bool = True, cache_root: Optional[str | Path] = None,
                 tsne: bool = False) -> List[Dict[str, Any]]:
    """Score checkpoints ``steps`` (default: all) of the run; append new records to ``RUN/metrics.jsonl``.

    Returns one record per requested step (new, or the stored one when already scored).
    """
    from tqdm import tqdm

    from benchmark.evaluation.metrics import (evaluate_samples, evaluator_info, resolve_metrics,
                                              samples_needed)
    from benchmark.train import generate, list_checkpoints, load_generator, read_run_config

    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)  # UserError when not a run directory
    available = list_checkpoints(run_dir)
    if not available:
        raise UserError(f"run '{run_dir}' has no checkpoints yet; train it first")
    if steps is None:
        todo = available
    else:
        todo = sorted(set(int(s) for s in steps))
        missing = [s for s in todo if s not in available]
        if missing:
            raise UserError(f"run '{run_dir}' has no checkpoint at step {', '.join(map(str, missing))}; "
                            f"available: {', '.join(map(str, available))}")
    if num_samples < 1:
        raise UserError(f"--num-samples must be >= 1, got {num_samples}")
    if split not in ("train", "test"):
        raise UserError(f"split '{split}' is not known; allowed: train, test")
    has_log = (run_dir / "log.jsonl").is_file()
    names = resolve_metrics(cfg.dataset, metrics, conditional=cfg.conditional, run=True)
    if metrics is None:
        if not has_log:
            names = [m for m in names if m != "dynamics"]
        if tsne:
            names.append("tsne")
    ev = evaluator_info(cfg.dataset, feature_extractor, names)
    n_gen = samples_needed(cfg.dataset, names, num_samples)
    root = data_root or cfg.data_root

    path = run_dir / METRICS_FILE
    done = {record_key(r): r for r in io.read_jsonl(path)}
    out: List[Dict[str, Any]] = []
    bar = tqdm(todo, disable=not progress, desc=f"evaluating {run_dir.name}", unit="ckpt")
    for step in bar:
        probe = {"step": step, "metric_set": sorted(names), "evaluator": ev, "num_samples_requested": num_samples,
                 "reference": {"split": split}}
        key = record_key(probe)
        if key in done and not force:
            out.append(done[key])
            continue
        G, gcfg, _ = load_generator(run_dir, step, device=device)
        x, y = generate(G, gcfg, n_gen, seed=seed, device=device)
        tsne_path = run_dir / "eval" / f"tsne_{step:06d}.png" if "tsne" in names else None
        rec = evaluate_samples(x, y, cfg.dataset, names, split, root, feature_extractor=feature_extractor,
                               device=device, cache_root=cache_root, progress=progress, seed=seed,
                               tsne_path=tsne_path, run_dir=run_dir, step=step, num_samples=num_samples)
        rec = {"step": step, **rec, "num_samples_requested": num_samples, "generation_seed": seed,
               "run": str(run_dir)}
        io.append_jsonl(path, [rec])
        done[key] = rec
        out.append(rec)
        del G
    return out

"""The Python API, for a notebook: ``train``, ``evaluate``, ``run_study`` and ``load_results``, the CLI's commands
as functions (``benchmark/__init__.py`` imports this module on first use, so ``import benchmark`` stays
torch-free and fast). Same keys, checks and errors as the CLI: bad input raises ``benchmark.errors.UserError``
(its message is the CLI's one line), before any long computation.

    import benchmark
    run = benchmark.train("runs/gp10", dataset="ring8", model="toy", objective="wgan-gp", gp_lambda=10, steps=200)
    records = benchmark.evaluate(run, metrics=["modes", "hq"])
    frame = benchmark.load_results(run)          # one row per score, plus the config columns
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import pandas as pd
import torch

from benchmark import rundir
from benchmark.config import make_config
from benchmark.data import DATASETS, check_dataset_files
from benchmark.errors import UserError, os_error, quote
from benchmark.evaluation.metrics import evaluate_samples, parse_metrics
from benchmark.evaluation.metrics.checks import check_samples
from benchmark.evaluation.runs import DEFAULT_SAMPLES, check_num_samples, evaluate_run
from benchmark.evaluation.samples import load_samples
from benchmark.study import records as study_records
from benchmark.study import runner, store
from benchmark.study.cli import _committed, _spec_path  # the CLI's lookups: a spec, its committed registration
from benchmark.study.report import build_report
from benchmark.study.spec import StudySpec, load_spec
from benchmark.train import train as _train

COLUMNS = ["study", "preset", "variant", "seed", "step", "metric", "value"]  # then config.<key> columns


def train(out: str | Path, *, progress: bool = False, **config: Any) -> Path:
    """Train (or resume) the run of ``config`` (TrainConfig keys, e.g. ``gp_lambda=10``) in ``out``; returns
    the run directory. A diverged run raises ``benchmark.errors.TrainingDiverged``."""
    cfg = make_config(config)  # UserError on an unknown key ("did you mean") or a bad value
    try:
        _train(cfg, out, progress=progress)
    except OSError as e:  # the disk filled up: the CLI's one line; the same call resumes
        raise os_error(e, f"training the run in {quote(out)}", "fix that, then call train() again to resume") from None
    return Path(out)


def evaluate(
    run_dir: Optional[str | Path] = None,
    *,
    samples: Any = None,
    dataset: Optional[str] = None,
    metrics: Optional[str | Sequence[str]] = None,
    num_samples: Optional[int] = None,
    step: Optional[int] = None,
    **options: Any,
) -> List[Dict[str, Any]]:
    """Score a run's checkpoints (``step``: one of them; records appended to ``RUN/metrics.jsonl``, as
    ``ganbench evaluate RUN``) or a sample set (``samples``: an .npz path, an array/tensor of images or a
    dict with ``images`` and ``labels``; with ``dataset``; nothing written). Returns the records.
    ``options``: the other keywords of ``evaluate_run`` / ``evaluate_samples`` (split, data_root, seed, ...)."""
    names = parse_metrics(metrics)
    if num_samples is not None:
        check_num_samples(num_samples)
    if samples is not None:
        if run_dir is not None:
            raise UserError("give either run_dir or samples, not both")
        if not dataset:
            raise UserError("samples needs dataset (the dataset the samples imitate, e.g. dataset='mnist')")
        if step is not None:
            raise UserError("step applies to run_dir, not to samples")
        DATASETS.get(dataset)
        check_dataset_files(dataset, options.get("data_root"))
        x, y = _samples(samples, dataset)
        return [evaluate_samples(x, y, dataset, names, num_samples=num_samples, **options)]
    if run_dir is None:
        raise UserError("give a run directory (evaluate('runs/x')) or samples=... with dataset=...")
    if dataset is not None:
        raise UserError("dataset applies to samples; a run's dataset is its config's")
    n = DEFAULT_SAMPLES if num_samples is None else num_samples
    options.setdefault("progress", False)
    return evaluate_run(run_dir, steps=None if step is None else [step], metrics=names, num_samples=n, **options)


def _samples(samples: Any, dataset: str):
    """(x, y) of a path, an array/tensor of images, or {'images', 'labels'}; checked as a sample file is."""
    if isinstance(samples, (str, os.PathLike)):
        return load_samples(samples, dataset)
    images, labels = (samples.get("images"), samples.get("labels")) if isinstance(samples, dict) else (samples, None)
    as_tensor = lambda a: a if a is None or isinstance(a, torch.Tensor) else torch.as_tensor(a)  # noqa: E731
    return check_samples(as_tensor(images), as_tensor(labels), dataset)


def run_study(
    spec: str | Path | StudySpec,
    preset: Optional[str] = "quick",
    *,
    results: Optional[str | Path] = None,
    reports: Optional[str | Path] = None,
    workers: Optional[int] = None,
) -> Path:
    """Run the study (a spec path, the name of one in ./studies, or a loaded ``StudySpec``) at ``preset`` and
    write its report; returns the report folder. Failed trials warn (the report shows them); none finished
    raises UserError."""
    committed = None
    if not isinstance(spec, StudySpec):
        path = _spec_path(spec)
        spec = load_spec(path, preset)
        committed = _committed(path, spec)
    res = runner.run_study(spec, root=results, workers=workers or 2, progress=False, report=True, committed=committed)
    ok = len(res["results"]) - len(res["failed"])
    if not ok:
        first = res["failed"][0]["error"] if res["failed"] else "no trials"
        raise UserError(f"study {spec.name}: no trial finished ({first}); fix that and run it again to resume")
    if res["failed"]:
        warnings.warn(f"study {spec.name}: {len(res['failed'])} of {len(res['results'])} trials failed", stacklevel=2)
    return build_report(spec.name, spec.preset or "default", root=results, out_root=reports or "reports")


def load_results(path: str | Path) -> pd.DataFrame:
    """The scores under ``path``, long: one row per score (study, preset, variant, seed, step, metric, value)
    plus the training config as ``config.<key>`` columns. ``path``: a run directory (study, preset and variant
    empty) or a results store (every study in it; the records its pages rest on)."""
    p = Path(path)
    if (p / rundir.CONFIG_FILE).is_file():
        cfg = dataclasses.asdict(rundir.read_run_config(p))
        rows = [_row(None, None, None, cfg["seed"], r, m, v, cfg) for r in rundir.read_metrics(p) for m, v in _items(r)]
    elif (p / store.STUDIES_DIR).is_dir():
        rows = []
        for idx in sorted((p / store.STUDIES_DIR).glob("*.json")):
            raw = json.loads(idx.read_text())
            index = study_records.read_index(raw["study"], raw["preset"], p)
            for t in study_records.load(index, p).trials:
                e = t.trial
                rows += [
                    _row(index.study, index.preset, e.variant, e.seed, r, m, v, t.config)
                    for r in t.used
                    for m, v in _items(r)
                ]
    else:
        raise UserError(
            f"'{p}' is neither a run directory (no {rundir.CONFIG_FILE}) nor a results store (no {store.STUDIES_DIR}/)"
        )
    return pd.DataFrame(rows, columns=None if rows else COLUMNS)


def _items(record: Dict[str, Any]):
    return (record.get("metrics") or {}).items()


def _row(study, preset, variant, seed, rec, metric, value, config) -> Dict[str, Any]:
    val = math.nan if value is None else float(value)
    flat = {f"config.{k}": v for k, v in config.items() if not isinstance(v, (dict, list))}
    return {
        "study": study,
        "preset": preset,
        "variant": variant,
        "seed": seed,
        "step": rec.get("step"),
        "metric": metric,
        "value": val,
        **flat,
    }

"""The report stage's one computation, and the one module of it that touches data or weights.

* **Reference rows** (``real_rows``): real training images scored against the study's real split under the
  study's protocol (its metrics and sample count): the FID floor, the IS ceiling, precision, recall, coverage
  and diversity of real data. Computed once, from real images only (never from a generator), and cached under
  ``<results>/reference/`` keyed by dataset, split, N, metrics and the evaluator's sha256. Rows scored the same
  way from known failures (noise, one image repeated) belong here too.
* **Regenerated samples** (``scatter_panels``): the toy2d scatter draws the very samples a record scored: the
  stored generator of that step, sampled again with the record's generation seed and count
  (``rundir.generate`` is seeded), cut to the scoring protocol's first N.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from benchmark import io, rundir
from benchmark.data import load_dataset
from benchmark.errors import UserError
from benchmark.evaluation.metrics import (
    METRICS,
    default_metrics,
    evaluate_samples,
    evaluator_info,
    family,
    samples_needed,
)
from benchmark.evaluation.mixtures import PROTOCOL_SAMPLES as MIXTURE_PROTOCOL_SAMPLES
from benchmark.study import store
from benchmark.study.records import Record, StudyRecords
from benchmark.study.schema import StudySpec

REAL_PREFIX = "real data"
Rows = Dict[str, Dict[str, float]]  # row name -> {score: value}


def real_metrics(spec: StudySpec, dataset: str) -> List[str]:
    """The study's metrics that score a set of samples of ``dataset`` alone (no run, no labels, no figure)."""
    names = list(spec.metrics or default_metrics(dataset))
    fam = family(dataset)
    return [
        m
        for m in names
        if fam in METRICS.get(m).families
        and not METRICS.get(m).needs_run
        and not METRICS.get(m).needs_labels
        and m != "tsne"
    ]


def real_rows(
    spec: StudySpec, datasets: Sequence[str], root: Path, data_root: Optional[str] = None
) -> Tuple[Rows, List[str]]:
    """Real train images of each dataset scored against the study's real split under its protocol, cached
    (module docstring). Returns ({row name: scores}, notes: why a row is missing)."""
    rows: Rows = {}
    notes: List[str] = []
    split, n = spec.split, int(spec.num_samples)
    for ds in datasets:
        try:
            metrics = real_metrics(spec, ds)
            if not metrics:
                continue
            ev = evaluator_info(ds, "classifier", metrics)
            sha = str(ev.get("sha256") or ev.get("name") or "none")[:16]
            p = store.reference_path(root, f"{ds}_train-vs-{split}_n{n}_{'-'.join(sorted(metrics))}_{sha}.json")
            if p.exists():
                rec = io.read_json(p)
            else:
                x, _ = load_dataset(ds, root=data_root, split="train").reference(samples_needed(ds, metrics, n))
                rec = evaluate_samples(x.cpu(), None, ds, metrics, split, data_root, num_samples=n)
                io.write_json(p, rec)
            rows[f"{REAL_PREFIX}: {ds} train vs {split}"] = {k: float(v) for k, v in rec["metrics"].items()}
        except (UserError, OSError) as e:  # e.g. the dataset is not under the data root: the page says so
            notes.append(f"real-data row for {ds} not computed: {e}")
    return rows, notes


def scored_mixture_points(run: Path, rec: Record) -> Tuple[Any, Any, int]:
    """(points, config, step): the samples a 2D-mixture record scored, regenerated from the stored generator
    at the record's step with its generation seed and count (``rundir.generate`` is seeded), cut to the
    scoring protocol's first N."""
    G, cfg, step = rundir.load_generator(run, rec["step"])
    x, _ = rundir.generate(G, cfg, int(rec["num_samples_requested"]), seed=int(rec.get("generation_seed", 0)))
    return x[:MIXTURE_PROTOCOL_SAMPLES], cfg, step


def scatter_panels(
    recs: StudyRecords, order: Sequence[str]
) -> Tuple[List[Tuple[str, Any, Any, float, int, Dict]], List[str]]:
    """(panels, arms left out): per arm (its first seed), (arm, scored points, mode centres, mode std, step, the
    record's scores) of its latest record with mode counts; an arm whose generator of that step is not stored
    is left out (named in the second list), never drawn from other samples."""
    _, first = recs.first_seed()
    panels, left_out = [], []
    for v in order:
        t = first.get(v)
        recs_modes = [r for r in (t.records if t else ()) if "modes" in (r.get("metric_set") or [])]
        if not recs_modes:
            continue
        rec = max(recs_modes, key=lambda r: r["step"])
        try:
            x, cfg, step = scored_mixture_points(t.run_dir, rec)
        except UserError:  # no generator stored at that step
            left_out.append(v)
            continue
        d = load_dataset(cfg.dataset, split="test")
        panels.append((v, x.numpy(), d.means.numpy(), float(d.std), step, rec["metrics"]))
    return panels, left_out


__all__ = ["REAL_PREFIX", "real_metrics", "real_rows", "scatter_panels", "scored_mixture_points"]

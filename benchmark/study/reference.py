"""The report stage's one computation, and the one module of it that touches data or weights.

* **Levels** (``levels``): real training images scored against the study's real split under the study's
  protocol (its metrics and sample count): the FID floor, the IS ceiling, precision, recall, coverage and
  diversity of real data; and, under the same protocol, every known failure of the dataset
  (``benchmark/evaluation/failures.py``: uniform noise, blank images, one real image repeated, one class only,
  half the classes; 2D: uniform over the data's box, uniform on the ring, the mode centres at 10× the std;
  stacked-mnist: blank and uniform channels, one digit triple repeated), each generated with the failure seed.
  Computed once, never from a study's generator, and cached under ``<results>/reference/`` keyed by dataset,
  split and its reference subset rule (``evaluation.reference.SUBSET``), N, metrics (with the readable rule ``coverage.CLOUD_RULE`` when coverage is one), the evaluator's sha256 (and the failure's name, version and seed).
* **Regenerated samples** (``scatter_panels``): the toy2d scatter draws the very samples a record scored: the
  stored generator of that step, sampled again with the record's generation seed and count
  (``rundir.generate`` is seeded), cut to the scoring protocol's first N.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from torch import Tensor

from benchmark import io, rundir
from benchmark.data import load_dataset
from benchmark.errors import UserError
from benchmark.evaluation import failures
from benchmark.evaluation.coverage import CLASS_READING, CLOUD_RULE
from benchmark.evaluation.metrics import evaluate_samples, evaluator_info, samples_needed
from benchmark.evaluation.mixtures import PROTOCOL_SAMPLES as MIXTURE_PROTOCOL_SAMPLES
from benchmark.evaluation.reference import SUBSET
from benchmark.study import store
from benchmark.study.records import Record, StudyRecords
from benchmark.study.schema import StudySpec
from benchmark.study.validity import Level

REAL_PREFIX = "real data"
FAILURE_PREFIX = "known failure"
Rows = Dict[str, Dict[str, float]]  # row name -> {score: value}


def real_metrics(spec: StudySpec, dataset: str) -> List[str]:
    """The study's metrics that score a set of samples of ``dataset`` alone (no run, no labels, no figure)."""
    return failures.scored_metrics(dataset, spec.metrics)


def _scored(p: Path, make: Any, ds: str, metrics: List[str], spec: StudySpec, data_root: Optional[str]) -> Dict:
    """The cached record at ``p``, else ``make()``'s samples scored under the study's protocol (and cached)."""
    if p.exists():
        return io.read_json(p)
    x: Tensor = make()
    rec = evaluate_samples(x.cpu(), None, ds, metrics, spec.split, data_root, num_samples=int(spec.num_samples))
    io.write_json(p, rec)
    return rec


def levels(
    spec: StudySpec, datasets: Sequence[str], root: Path, data_root: Optional[str] = None
) -> Tuple[List[Level], List[str]]:
    """The real-data and known-failure levels of each dataset under the study's protocol, cached (module
    docstring). Returns (levels, notes: why a row is missing)."""
    out: List[Level] = []
    notes: List[str] = []
    split, n = spec.split, int(spec.num_samples)
    for ds in datasets:
        try:
            metrics = real_metrics(spec, ds)
            if not metrics:
                continue
            ev = evaluator_info(ds, "classifier", metrics)
            sha = str(ev.get("sha256") or ev.get("name") or "none")[:16]
            # the readable share's rule and the class reading (coverage.py) move the coverage rows
            rule = f"_{CLOUD_RULE}_{CLASS_READING}" if "coverage" in metrics else ""
            tag = f"{split}-{SUBSET}_n{n}_{'-'.join(sorted(metrics))}{rule}_{sha}.json"
            need = samples_needed(ds, metrics, n)

            def real(ds: str = ds, need: int = need) -> Tensor:
                return failures.train_set(ds, data_root).reference(need)[0]

            rec = _scored(store.reference_path(root, f"{ds}_train-vs-{tag}"), real, ds, metrics, spec, data_root)
            out.append(Level(ds, failures.REAL, REAL_PREFIX, False, _floats(rec)))
        except (UserError, OSError) as e:  # e.g. the dataset is not under the data root: the page says so
            notes.append(f"real-data row for {ds} not computed: {e}")
            continue
        for f in failures.for_dataset(ds):
            name = f"{ds}_failure-{f.name}-v{f.version}-s{failures.SEED}-vs-{tag}"
            try:
                rec = _scored(
                    store.reference_path(root, name),
                    lambda f=f, ds=ds, need=need: f.samples(ds, need, failures.SEED, data_root),
                    ds,
                    metrics,
                    spec,
                    data_root,
                )
            except (UserError, OSError) as e:
                notes.append(f"known-failure row '{f.label}' for {ds} not computed: {e}")
                continue
            out.append(Level(ds, f.name, f.label, f.gate, _floats(rec)))
    return out, notes


def _floats(rec: Record) -> Dict[str, float]:
    return {k: float(v) for k, v in rec["metrics"].items()}


def rows(levels: Sequence[Level], split: str) -> Rows:
    """The levels as the results table's italic rows: 'real data: ring8 train vs test', 'known failure: uniform
    noise (ring8)'."""
    out: Rows = {}
    for lv in sorted(levels, key=lambda lv: lv.name != failures.REAL):  # every real row first
        if lv.name == failures.REAL:
            out[f"{REAL_PREFIX}: {lv.dataset} train vs {split}"] = dict(lv.scores)
        else:
            out[f"{FAILURE_PREFIX}: {lv.label} ({lv.dataset})"] = dict(lv.scores)
    return out


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


__all__ = ["FAILURE_PREFIX", "REAL_PREFIX", "levels", "real_metrics", "rows", "scatter_panels", "scored_mixture_points"]

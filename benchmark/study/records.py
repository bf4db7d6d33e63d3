"""A study's records, read once: ``read_index`` and ``load`` return typed, frozen records the report stage works from.

``load`` reads each trial's files once (``run/metrics.jsonl``, ``log.jsonl``, ``config.yaml`` (else
``trial.json``), ``run.json``, ``failed.json``, the kind's table) and the study's registration, and builds the
long scores frame::

    variant, seed, step, key, metric, value, axis:<each value of the variant>

from the records that follow the study's protocol (its sample count and metrics; the newest record of each
step wins; a t-SNE-only record is a figure, not a score). Nothing after this module reads a record from disk:
the tables, figures and pages take a ``StudyRecords``; the figures open only the PNGs the records point to
(sample grids, t-SNE panels), and ``reference.py`` the data and stored generators.
"""

from __future__ import annotations

import io as _io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import pandas as pd

from benchmark import io, rundir
from benchmark.config import load_yaml
from benchmark.errors import UserError, quote
from benchmark.evaluation.metrics.registry import expand_default
from benchmark.study import store
from benchmark.study.schema import StudySpec

Record = Mapping[str, Any]  # one line of a metrics.jsonl (as evaluation/runs.py writes it)


@dataclass(frozen=True)
class TrialEntry:
    """A trial as the study's index lists it."""

    key: str
    variant: str
    values: Mapping[str, Any]  # the variant's values (axes and named settings): the report's x may be one
    seed: int


@dataclass(frozen=True)
class StudyIndex:
    """A study's index (``studies/<name>-<preset>.json``), its spec typed."""

    study: str
    preset: str
    spec: StudySpec
    command: str
    git_commit: Optional[str]
    trials: Tuple[TrialEntry, ...]


@dataclass(frozen=True, eq=False)
class TrialRecords:
    """What one trial's folder holds, read once."""

    trial: TrialEntry
    run_dir: Path  # for reference.py only: the stored generators the toy2d scatter samples again
    records: Tuple[Record, ...]  # every score record of metrics.jsonl, in file order
    used: Tuple[Record, ...]  # those the page rests on (the study's protocol; the newest per step), by step
    scored: bool  # metrics.jsonl exists (a trial without one has not been scored: "not run")
    config: Mapping[str, Any]  # the resolved training config as plain data ({} when there is none)
    log: Tuple[Mapping[str, Any], ...]  # the per-step training log
    run_info: Optional[Mapping[str, Any]]  # run.json: code, machine, device
    failed: Optional[str]  # the error of a failed attempt
    sample_grids: Tuple[Path, ...]  # the fixed-noise sample PNGs, by step
    tsne_pngs: Tuple[Tuple[int, Path], ...]  # (step, PNG) of each t-SNE record whose PNG is found
    table: Optional[pd.DataFrame] = None  # a kind's per-trial table (parallel lines: one row per θ)

    @property
    def key(self) -> str:
        return self.trial.key

    @property
    def variant(self) -> str:
        return self.trial.variant

    @property
    def seed(self) -> int:
        return self.trial.seed


@dataclass(frozen=True, eq=False)
class StudyRecords:
    """Everything a study's page is built from: its index, each trial's records, the long scores frame."""

    index: StudyIndex
    trials: Tuple[TrialRecords, ...]
    scores: pd.DataFrame  # the long frame (module docstring); empty for a kind without score records
    root: Path  # the results store (reference.py caches the real-data rows under it)
    registration: Optional[Mapping[str, Any]] = None  # the claims, seeds and budget registered before the trials

    @property
    def spec(self) -> StudySpec:
        return self.index.spec

    @property
    def order(self) -> List[str]:
        """The arms in the index's order (the order of every table row and of the colours)."""
        return list(dict.fromkeys(t.variant for t in self.index.trials))

    def first_seed(self) -> Tuple[int, Dict[str, TrialRecords]]:
        """(the study's lowest seed, each arm's trial at that seed): the trial a one-seed panel shows."""
        seed0 = min(t.seed for t in self.trials)
        return seed0, {t.variant: t for t in self.trials if t.seed == seed0}

    def used(self) -> List[Record]:
        """Every record the page rests on, trial by trial (their evaluators and commits go in its provenance)."""
        return [r for t in self.trials for r in t.used]

    def used_by_arm(self) -> List[Tuple[str, Record]]:
        return [(t.variant, r) for t in self.trials for r in t.used]


def read_index(study: str, preset: Optional[str], root: Path) -> StudyIndex:
    """The index of ``study`` (``store.find_index``), every field checked: a malformed or foreign one is one line."""
    path = store.find_index(root, study, preset)
    fix = f"delete it and run 'ganbench study run studies/{study}.yaml' again (finished trials are not retrained)"
    raw = io.read_json_checked(path, "study index", fix)

    def bad(problem: str) -> UserError:
        return UserError(f"study index {quote(path)} {problem}; {fix}")

    for k, tp in (("study", str), ("preset", str), ("command", str), ("spec", dict), ("trials", list)):
        if not isinstance(raw.get(k), tp):
            raise bad(f"has no {k!r} of the right type ({tp.__name__})")
    if raw["study"] != study or store.index_path(root, study, raw["preset"]).name != path.name:  # ('' is default)
        raise bad(f"is the index of study {quote(raw['study'], 60)} at preset {quote(raw['preset'], 30)}")
    trials = []
    for i, t in enumerate(raw["trials"]):
        ok = isinstance(t, dict) and isinstance(t.get("variant"), str) and isinstance(t.get("values"), dict)
        if not ok or not isinstance(t.get("seed"), int) or isinstance(t.get("seed"), bool):
            raise bad(f"has a malformed trial (trials[{i}]: it needs key, variant, values and an integer seed)")
        key = store.check_trial_key(t.get("key"), f"study index {quote(path)}: trials[{i}]")
        trials.append(TrialEntry(key, t["variant"], dict(t["values"]), t["seed"]))
    try:
        spec = StudySpec.from_dict(raw["spec"])
    except UserError as e:
        raise bad(f"holds a spec that cannot be read ({e})") from None
    return StudyIndex(raw["study"], raw["preset"], spec, raw["command"], raw.get("git_commit"), tuple(trials))


def load(index: StudyIndex, root: Path, table_file: Optional[str] = None) -> StudyRecords:
    """Each trial's files, read once; ``table_file``: the kind's per-trial table, if it writes one."""
    trials = tuple(_trial(root, t, index.spec, table_file) for t in index.trials)
    registration = store.read_registration(root, index.study, index.preset)
    return StudyRecords(index, trials, scores_frame(trials), root, registration)


def _trial(root: Path, t: TrialEntry, spec: StudySpec, table_file: Optional[str]) -> TrialRecords:
    d, run = store.trial_dir(root, t.key), store.run_dir(root, t.key)
    metrics = run / rundir.METRICS_FILE
    records = tuple(_checked(rundir.read_metrics(run), metrics))
    table = d / table_file if table_file else None
    return TrialRecords(
        trial=t,
        run_dir=run,
        records=records,
        used=protocol_records(records, spec),
        scored=metrics.exists(),
        config=_config(d, run),
        log=tuple(rundir.read_log(run)),
        run_info=rundir.read_run_info(run) if os.path.lexists(run / rundir.RUN_INFO_FILE) else None,
        failed=store.failure(d),
        sample_grids=tuple(sorted((run / rundir.SAMPLES_DIR).glob("step_*.png"))),
        tsne_pngs=_tsne_pngs(run, records),
        table=_table(table) if table is not None and os.path.lexists(table) else None,
    )


def _checked(records: List[Dict[str, Any]], path: Path) -> List[Dict[str, Any]]:
    """Score records as the page reads them: an integer step and a mapping of numbers (one line otherwise)."""
    fix = "delete it to score the run afresh with 'ganbench evaluate'"
    for i, r in enumerate(records, 1):
        step, scores = r.get("step"), r.get("metrics", {})
        if not isinstance(step, int) or isinstance(step, bool):
            raise UserError(f"scores file {quote(path)}: record {i} has no integer 'step'; {fix}")
        if not isinstance(scores, dict) or any(
            v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))) for v in scores.values()
        ):
            raise UserError(f"scores file {quote(path)}: record {i} has 'metrics' that are not numbers; {fix}")
        names = r.get("metric_set", [])
        if not isinstance(names, list) or not all(isinstance(m, str) for m in names):
            raise UserError(
                f"scores file {quote(path)}: record {i} has a 'metric_set' that is not a list of names; {fix}"
            )
        if not isinstance(r.get("details", {}), dict):
            raise UserError(f"scores file {quote(path)}: record {i} has 'details' that are not a mapping; {fix}")
    return records


def _config(d: Path, run: Path) -> Dict[str, Any]:
    """The resolved training config of a trial, as plain data (config.yaml, else trial.json)."""
    p = run / rundir.CONFIG_FILE
    if os.path.lexists(p):
        return load_yaml(p, f"trial {d.name}: its config", "delete the trial's folder to train it again")
    q = d / store.TRIAL_FILE
    if not os.path.lexists(q):
        return {}
    config = io.read_json_checked(q, "trial record", "delete it (the study writes it again)").get("config") or {}
    if not isinstance(config, dict):
        raise UserError(f"trial record {quote(q)} holds a 'config' that is not a mapping; delete it")
    return config


def _table(p: Path) -> pd.DataFrame:
    """A kind's per-trial table (CSV), read through the guarded reader: a malformed one is one line."""
    fix = "delete it (the trial is run again by the next 'ganbench study run')"
    text = io.read_text_checked(p, "trial table", fix, io.MAX_JSONL_BYTES)
    try:
        return pd.read_csv(_io.StringIO(text))
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise UserError(f"trial table {quote(p)} is not a readable CSV ({quote(_first_line(e), 80)}); {fix}") from None


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def protocol_records(records: Sequence[Record], spec: StudySpec) -> Tuple[Record, ...]:
    """The records scored under the study's protocol (its sample count, its metrics), the newest of each step,
    by step; a t-SNE-only record is a figure, not a score."""
    asked = list(spec.metrics or [])
    latest: Dict[int, Record] = {}
    for r in records:
        if r.get("num_samples_requested", r.get("num_samples")) != spec.num_samples:
            continue
        # the dataset's defaults for `default` (a conditional arm's also hold its label metrics)
        conditional = "conditional" in (r.get("metric_set") or [])
        want = set(expand_default(asked, str(r.get("dataset")), conditional))
        if want and not want <= set(r.get("metric_set") or []):
            continue
        if "tsne" in (r.get("metric_set") or []) and len(r["metric_set"]) == 1:
            continue
        latest[r["step"]] = r  # the newest record of each step wins
    return tuple(r for _, r in sorted(latest.items()))


def _tsne_pngs(run: Path, records: Sequence[Record]) -> Tuple[Tuple[int, Path], ...]:
    out = []
    for r in records:
        p = next((v for k, v in (r.get("details") or {}).items() if "tsne" in k and isinstance(v, str)), None)
        if not isinstance(p, str):
            continue
        # a path recorded relative to the study's working directory: found again under the run directory
        # (run/eval/tsne_*.png), so `ganbench report` works from any directory
        png = next((c for c in (Path(p), run / Path(p).parent.name / Path(p).name) if c.is_file()), None)
        if png is not None:
            out.append((r.get("step", 0), png))
    return tuple(out)


def scores_frame(trials: Sequence[TrialRecords]) -> pd.DataFrame:
    """The long table (variant, seed, step, key, metric, value, axis:*) of the trials' protocol records."""
    rows = []
    for t in trials:
        for r in t.used:
            for m, v in r["metrics"].items():
                rows.append(
                    {
                        "variant": t.variant,
                        "seed": t.seed,
                        "step": r["step"],
                        "key": t.key,
                        "metric": m,
                        "value": float(v) if v is not None else math.nan,
                        **{f"axis:{k}": v2 for k, v2 in t.trial.values.items()},
                    }
                )
    return pd.DataFrame(rows)


__all__ = ["StudyIndex", "StudyRecords", "TrialEntry", "TrialRecords", "load", "read_index", "protocol_records"]

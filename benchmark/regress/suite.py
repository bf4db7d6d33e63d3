"""The suite: a study spec made explicit for the gate (one variant per trial, ``--set`` overrides, forced keys,
``--only``), its trial list computed once, and running it afresh."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from benchmark import io, rundir
from benchmark.config import LIMITS, coerce
from benchmark.data import load_dataset
from benchmark.errors import UserError, quote
from benchmark.models import import_user_model, is_user_model
from benchmark.paths import check_input_file
from benchmark.study.runner import run_study
from benchmark.study.spec import Budget, StudySpec, Trial, load_spec, trials

REPO = Path(__file__).resolve().parents[2]

# Config keys the gate fixes for every trial (bit-identical scores on one machine), and keys --set may not touch.
FORCED = {"deterministic": True, "num_threads": 1}
RESERVED = {
    "seed": "the suite's seeds are fixed; edit 'seeds' in the suite file",
    "checkpoint_at": "the suite's eval_at decides the scored steps",
    "checkpoint_every": "the suite's budget decides it",
}

_SCHEDULE_KEYS = ("seed", "steps", "epochs", "checkpoint_every", "checkpoint_at")


def suite_path(suite: str) -> Path:
    """``ci`` -> ``studies/ci.yaml`` (in the working directory, else beside the package); a path as is."""
    p = Path(suite)
    if not suite.strip():
        raise UserError("--suite is empty; give the name of a suite in studies/ (e.g. ci) or a spec path")
    if p.suffix in (".yaml", ".yml") or os.sep in suite:
        return check_input_file(p, "suite file", "give a study spec path or the name of one in studies/")
    for d in (Path("studies"), REPO / "studies"):
        c = d / f"{suite}.yaml"
        if c.is_file():
            return c
    raise UserError(
        f"no suite '{suite}': studies/{suite}.yaml not found in '{Path.cwd()}' or '{REPO}'; "
        "write one (a study spec, see studies/ci.yaml) or give its path"
    )


def trial_id(variant: str, seed: int, multi_seed: bool) -> str:
    return f"{variant} (seed {seed})" if multi_seed else variant


@dataclass(frozen=True)
class Suite:
    """A prepared suite: ``spec`` has one explicit variant per trial; ``trials`` is built and checked once."""

    file: Path
    spec: StudySpec
    trials: Tuple[Trial, ...]
    all_ids: Tuple[str, ...]  # every trial of the suite file, before --only

    @property
    def multi_seed(self) -> bool:
        return len(self.spec.seeds) > 1

    def id(self, t: Trial) -> str:
        return trial_id(t.variant, t.seed, self.multi_seed)

    @property
    def ids(self) -> List[str]:
        """The selected trials' ids."""
        return [self.id(t) for t in self.trials]

    def without_datasets(self, datasets: Sequence[str]) -> Optional[StudySpec]:
        """The spec with the variants of ``datasets`` dropped (every seed of them); None when nothing is left."""
        variants = [v for v in self.spec.variants if dict(v["set"]).get("dataset") not in datasets]
        return dataclasses.replace(self.spec, variants=variants) if variants else None


def load_suite(
    file: Path, preset: Optional[str] = None, overrides: Optional[Dict[str, Any]] = None, only: Optional[str] = None
) -> Suite:
    spec, all_names, ts = _prepare(load_spec(file, preset), overrides, only)
    multi = len(spec.seeds) > 1
    return Suite(file, spec, tuple(ts), tuple(trial_id(v, s, multi) for v in all_names for s in spec.seeds))


def prepare(spec: StudySpec, overrides: Optional[Dict[str, Any]] = None, only: Optional[str] = None) -> StudySpec:
    """The suite as explicit variants (one per trial name, with its whole config), ``overrides`` applied to
    every trial (``steps``/``epochs`` replace the budget), ``FORCED`` keys set, restricted to ``only``."""
    return _prepare(spec, overrides, only)[0]


def _prepare(
    spec: StudySpec, overrides: Optional[Dict[str, Any]], only: Optional[str]
) -> Tuple[StudySpec, List[str], List[Trial]]:
    """(prepared spec, every variant name before --only, the prepared spec's trials)."""
    if spec.kind != "gan":
        raise UserError(f"suite '{spec.name}' is of kind '{spec.kind}'; a regression suite trains GANs (kind: gan)")
    overrides = dict(overrides or {})
    for k in list(overrides):
        kk = k.replace("-", "_")
        if kk != k:
            overrides[kk] = overrides.pop(k)
    for k, why in RESERVED.items():
        if k in overrides:
            raise UserError(f"--set {k} is not allowed: {why}")
    for k, v in FORCED.items():
        if k in overrides and overrides[k] != v:
            raise UserError(
                f"--set {k}={overrides[k]} is not allowed: the gate runs every trial with {k}={v} "
                "so that one machine gives bit-identical scores"
            )
    budget = spec.budget
    if "steps" in overrides or "epochs" in overrides:
        if "steps" in overrides and "epochs" in overrides:
            raise UserError("--set steps and --set epochs together: give one (it replaces the suite's budget)")
        if "steps" in overrides:
            budget = Budget(steps=_int_override("steps", overrides.pop("steps")))
        else:
            budget = Budget(epochs=_epochs_override(overrides.pop("epochs")))
    variants, seen = [], set()
    for t in trials(spec, f"suite '{spec.name}'"):
        if t.variant in seen:
            continue
        seen.add(t.variant)
        cfg = {k: v for k, v in t.config.to_dict().items() if k not in _SCHEDULE_KEYS}
        variants.append({"name": t.variant, "set": {**cfg, **overrides, **FORCED}})
    names = [v["name"] for v in variants]
    if only:
        try:
            pat = re.compile(only, re.I)
        except re.error as e:
            raise UserError(f"--only '{only}' is not a valid regular expression ({e})") from None
        variants = [v for v in variants if pat.search(v["name"])]
        if not variants:
            raise UserError(f"--only '{only}' matches no trial of suite '{spec.name}'; trials: {', '.join(names)}")
    # no t-SNE panel: the gate reads scores only (a t-SNE record costs ~20 s per image trial)
    report = {**(spec.report or {}), "tsne": False}
    out = dataclasses.replace(spec, base={}, axes={}, variants=variants, budget=budget, report=report)
    ts = trials(out, f"suite '{spec.name}' with --set")  # every override checked: one line naming the key
    return out, names, ts


def _int_override(key: str, v: Any) -> int:
    n = coerce(key, v, int)
    lim = LIMITS[key]
    if not lim.holds(n):
        raise UserError(f"--set {key} must be {lim.text()}, got {n}")
    return n


def _epochs_override(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not (math.isfinite(x) and LIMITS["epochs"].holds(x)):
        raise UserError(f"--set epochs must be a finite number {LIMITS['epochs'].text()}, got {quote(v, 40)}")
    return x


def calibration_seeds(seeds: Sequence[int], k: int) -> List[int]:
    """The suite's seeds, then the next integers not among them, K in all (at least the suite's)."""
    out = list(dict.fromkeys(seeds))
    s = max(out) + 1 if out else 0
    while len(out) < k:
        if s not in out:
            out.append(s)
        s += 1
    return out


# ------------------------------------------------------------------------------------------------
# before running: data and user models


def data_missing(ts: Sequence[Trial], data_root: Optional[str]) -> Dict[str, str]:
    """{dataset: why} for the datasets of the trials whose files are not there (those trials are skipped)."""
    out: Dict[str, str] = {}
    checked = set()
    for t in ts:
        ds = t.config.dataset
        if ds in checked:
            continue
        checked.add(ds)
        old = socket.getdefaulttimeout()
        try:
            for split in ("train", "test"):
                load_dataset(ds, data_root or t.config.data_root, split, "cpu", t.config.download)
        except UserError as e:
            out[ds] = str(e) + ("" if t.config.download else " (the suite does not download: download: false)")
        finally:
            socket.setdefaulttimeout(old)
    return out


def check_models(ts: Sequence[Trial]) -> None:
    """Every user model ('package.module:function') imports, here and so in the trial processes."""
    for name in sorted({t.config.model for t in ts if is_user_model(t.config.model)}):
        import_user_model(name)


# ------------------------------------------------------------------------------------------------
# running


@contextlib.contextmanager
def _env(key: str, value: str) -> Iterator[None]:
    old = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


@dataclass
class SuiteRun:
    scores: Dict[str, Dict[str, Any]]  # trial id -> {variant, seed, key, dataset, step, metrics, evaluator}
    failed: Dict[str, str]  # trial id -> error
    seconds: float


def run_suite(
    spec: StudySpec, root: Path, data_root: Optional[str], workers: int, progress: bool, multi_seed: bool
) -> SuiteRun:
    """Train and score every trial of ``spec`` in ``root`` (which must hold no trials yet)."""
    if (root / "trials").exists() and any((root / "trials").iterdir()):
        raise UserError(f"'{root}' already holds trials; the gate runs them fresh: give an empty or new folder")
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    # reference statistics too are computed afresh, in the run's own cache
    with _env("GANBENCH_CACHE", str(root / "cache")):
        res = run_study(
            spec,
            root=root,
            workers=workers,
            executor="local",
            data_root=data_root,
            progress=progress,
            threads_per_worker=FORCED["num_threads"],
        )
    status = {r["key"]: r for r in res["results"]}
    scores: Dict[str, Dict[str, Any]] = {}
    failed: Dict[str, str] = {}
    for it in res["items"]:
        tid = trial_id(it["variant"], it["seed"], multi_seed)
        r = status.get(it["key"], {"status": "failed", "error": "did not run"})
        if r["status"] != "ok":
            failed[tid] = r.get("error") or "failed"
            continue
        step = max(it["eval_steps"])
        recs = [
            x for x in rundir.read_metrics(Path(it["dir"]) / "run") if x.get("step") == step and x.get("metrics")
        ]  # scores, not a figure's record (t-SNE)
        if not recs:
            failed[tid] = f"no scores at step {step}"
            continue
        rec = recs[-1]
        scores[tid] = {
            "variant": it["variant"],
            "seed": it["seed"],
            "key": it["key"],
            "dataset": it["config"]["dataset"],
            "step": step,
            "metrics": rec["metrics"],
            "evaluator": rec.get("evaluator") or {},
        }
    return SuiteRun(scores, failed, time.time() - t0)


def trial_seconds(root: Path) -> Dict[str, float]:
    """Per-trial wall time from the run records (for JUnit)."""
    out: Dict[str, float] = {}
    idx = root / "studies"
    if not idx.is_dir():
        return out
    for f in idx.glob("*.json"):  # (written by this gate's own run: read for JUnit times only)
        with contextlib.suppress(UserError, KeyError, TypeError, ValueError):
            index = io.read_json_checked(f, "study index", "run the gate again")
            multi = len({t["seed"] for t in index["trials"]}) > 1
            for t in index["trials"]:
                run = root / "trials" / t["key"] / "run"
                secs = 0.0
                with contextlib.suppress(UserError, TypeError, ValueError):
                    secs += float(rundir.read_done(run).get("seconds_this_session") or 0)
                with contextlib.suppress(UserError, TypeError, ValueError):
                    secs += sum(float(r.get("seconds") or 0) for r in rundir.read_metrics(run))
                out[trial_id(t["variant"], t["seed"], multi)] = secs
    return out

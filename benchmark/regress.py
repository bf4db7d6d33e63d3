"""``ganbench regress``: a CI gate on metric scores, against a committed baseline.

A *suite* is a study spec like any other (``studies/ci.yaml``): a handful of short CPU trials. The gate
trains and scores every trial afresh in a temporary results root (never the cached trial store in
``./results``: a code change must be seen) with ``deterministic: true`` and one torch thread per trial,
so one machine gives bit-identical scores run after run. Each score of the final evaluation step is then
compared with the baseline (``benchmark/baselines/<suite>.json``)::

    ganbench regress --suite ci                       # compare; exit 1 on a regression
    ganbench regress --suite ci --junit out.xml       # ... and write JUnit XML (one testcase per score)
    ganbench regress --suite ci --set n_critic=1      # try a changed config (every trial) against it
    ganbench regress --suite ci --update              # accept the current scores (keeps tolerances)
    ganbench regress --suite ci --update --calibrate 5   # ... and re-derive tolerances over 5 seeds

Verdicts. Every gated score has a direction (``report.direction``: lower FID is better, more modes is
better) and a tolerance. ``now`` worse than the baseline by more than the tolerance is a REGRESSION,
better by more than it an *improvement* (accept it with ``--update``), else ok. A score in the baseline
that a trial no longer produces is *missing* and a trial that fails (diverges, raises) is an *error*;
both fail the gate like a regression. Scores not in the baseline are *new* (reported, not gated).

Scores with no preferred direction (``kid_std``, ``is_std``, ``lpips*``, the training-dynamics figures)
are not gated and not stored: a change in them is neither worse nor better, and a two-sided test on them
would fail CI on every harmless change of a random stream. Only the final evaluation step of each trial
is compared.

Tolerances are measured, not guessed: ``--update --calibrate K`` runs every trial at K seeds (the
suite's seeds first) and sets, per trial and score, ``tolerance = max(3 * std, 2 % of |baseline|,
floor)`` where ``std`` is the sample standard deviation over the K seeds and ``floor`` a small absolute
floor by score (``ABS_FLOORS``: half a mode or class for counts, ...). A score that is non-finite on
some calibration seeds but not on others (e.g. ``rkl`` = inf when no sample is high-quality) is unstable
at the suite's budget and gets an infinite tolerance (recorded, never flagged). The rule, K, the seeds
and each score's spread are written into the baseline. ``--update`` without ``--calibrate`` keeps the
old tolerances and calibrates (K = 3) only the trials that have none.

The baseline also records its environment (torch, python, platform, CPU, device). Compared elsewhere the
command says so in one line and compares anyway. A changed evaluator (classifier sha256) is an error
(exit 2): its scores are not comparable; re-create the baseline with ``--update``. Trials whose data is
not there (MNIST without its files) are skipped, each with its reason, never silently.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import re
import socket
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from benchmark import io
from benchmark.errors import UserError

FORMAT = 1
REPO = Path(__file__).resolve().parents[1]

# The tolerance rule (recorded in every baseline).
K_SIGMA = 3.0
REL_FLOOR = 0.02
DEFAULT_ABS_FLOOR = 1e-3
ABS_FLOORS = {  # by metric base (report.metric_base)
    "modes": 0.5, "classes_covered": 0.5,  # counts: one mode/class lost from a stable count is caught
    "hq": 0.5,  # percentage points
    "fid": 0.1, "intra_fid": 0.1,
    "is": 0.01, "mode_score": 0.01, "class_entropy": 0.01, "class_kl": 0.01, "kl": 0.01, "rkl": 0.01,
    "precision": 0.01, "recall": 0.01, "label_agreement": 0.01,
}
DEFAULT_CALIBRATE = 3
RULE = (f"tolerance = max({K_SIGMA:g} * std over the calibration seeds, {REL_FLOOR:g} * |baseline|, floor[metric]); "
        "non-finite on some seeds only: tolerance = inf (not gated)")

# Config keys the gate fixes for every trial (bit-identical scores on one machine), and keys --set may not touch.
FORCED = {"deterministic": True, "num_threads": 1}
RESERVED = {"seed": "the suite's seeds are fixed; edit 'seeds' in the suite file",
            "checkpoint_at": "the suite's eval_at decides the scored steps",
            "checkpoint_every": "the suite's budget decides it"}

VERDICT_FAILS = ("REGRESSION", "missing", "error")


# ------------------------------------------------------------------------------------------------
# suites and baselines


def suite_path(suite: str) -> Path:
    """``ci`` -> ``studies/ci.yaml`` (in the working directory, else beside the package); a path as is."""
    p = Path(suite)
    if p.suffix in (".yaml", ".yml") or os.sep in suite:
        if p.is_file():
            return p
        raise UserError(f"suite file '{p}' does not exist; give a study spec path or the name of one in studies/")
    for d in (Path("studies"), REPO / "studies"):
        c = d / f"{suite}.yaml"
        if c.is_file():
            return c
    raise UserError(f"no suite '{suite}': studies/{suite}.yaml not found in '{Path.cwd()}' or '{REPO}'; "
                    "write one (a study spec, see studies/ci.yaml) or give its path")


def default_baseline(suite_file: Path) -> Path:
    """``<root>/studies/NAME.yaml`` -> ``<root>/benchmark/baselines/NAME.json``."""
    p = suite_file.resolve().parent.parent / "benchmark" / "baselines" / f"{suite_file.stem}.json"
    with contextlib.suppress(ValueError):
        return p.relative_to(Path.cwd().resolve())
    return p


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def load_baseline(path: Path, create: str) -> Dict[str, Any]:
    """The baseline at ``path``, structure-checked; a one-line UserError naming it and ``create`` otherwise."""
    if not path.is_file():
        raise UserError(f"baseline '{path}' does not exist; create one with '{create}'")

    def corrupt(why: str) -> UserError:
        return UserError(f"baseline '{path}' is corrupt ({why}); re-create it with '{create}'")

    try:
        b = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise corrupt("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise corrupt(f"not JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(b, dict):
        raise corrupt("not a JSON object")
    if b.get("format") != FORMAT:
        raise corrupt(f"format {b.get('format')!r}, this ganbench reads format {FORMAT}")
    for k in ("trials", "evaluators", "environment", "tolerance"):
        if not isinstance(b.get(k), dict):
            raise corrupt(f"'{k}' is missing or not an object")
    for tid, t in b["trials"].items():
        if not isinstance(t, dict) or not isinstance(t.get("metrics"), dict) or not isinstance(t.get("dataset"), str):
            raise corrupt(f"trial '{tid}' has no 'dataset' or 'metrics'")
        for m, e in t["metrics"].items():
            if not (isinstance(e, dict) and _is_num(e.get("value")) and _is_num(e.get("tolerance"))
                    and e.get("direction") in (-1, 1) and not e["tolerance"] < 0):
                raise corrupt(f"'{tid}' / '{m}' needs a numeric value, a tolerance >= 0 and a direction of -1 or 1")
    return b


# ------------------------------------------------------------------------------------------------
# preparing the suite: explicit variants, --set overrides, forced keys, --only


def trial_id(variant: str, seed: int, multi_seed: bool) -> str:
    return f"{variant} (seed {seed})" if multi_seed else variant


_SCHEDULE_KEYS = ("seed", "steps", "epochs", "checkpoint_every", "checkpoint_at")


def prepare(spec: Any, overrides: Optional[Dict[str, Any]] = None, only: Optional[str] = None) -> Any:
    """The suite as explicit variants (one per trial name, with its whole config), ``overrides`` applied to
    every trial (``steps``/``epochs`` replace the budget), ``FORCED`` keys set, restricted to ``only``."""
    from benchmark.study.spec import Budget, trials

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
            raise UserError(f"--set {k}={overrides[k]} is not allowed: the gate runs every trial with {k}={v} "
                            "so that one machine gives bit-identical scores")
    budget = spec.budget
    if "steps" in overrides or "epochs" in overrides:
        if "steps" in overrides and "epochs" in overrides:
            raise UserError("--set steps and --set epochs together: give one (it replaces the suite's budget)")
        if "steps" in overrides:
            budget = Budget(steps=_int_override("steps", overrides.pop("steps")))
        else:
            budget = Budget(epochs=overrides.pop("epochs"))
    variants, seen = [], set()
    for t in trials(spec, f"suite '{spec.name}'"):
        if t.variant in seen:
            continue
        seen.add(t.variant)
        cfg = {k: v for k, v in t.config.to_dict().items() if k not in _SCHEDULE_KEYS}
        variants.append({"name": t.variant, "set": {**cfg, **overrides, **FORCED}})
    if only:
        try:
            pat = re.compile(only, re.I)
        except re.error as e:
            raise UserError(f"--only '{only}' is not a valid regular expression ({e})") from None
        names = [v["name"] for v in variants]
        variants = [v for v in variants if pat.search(v["name"])]
        if not variants:
            raise UserError(f"--only '{only}' matches no trial of suite '{spec.name}'; trials: {', '.join(names)}")
    out = dataclasses.replace(spec, base={}, axes={}, variants=variants, budget=budget)
    trials(out, f"suite '{spec.name}' with --set")  # every override checked: one line naming the key
    return out


def _int_override(key: str, v: Any) -> int:
    from benchmark.config import coerce

    n = coerce(key, v, int)
    if n < 1:
        raise UserError(f"--set {key} must be >= 1, got {n}")
    return n


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
# environment, evaluators, data


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def environment(device: str = "cpu") -> Dict[str, Any]:
    import torch

    return {"torch": torch.__version__, "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}", "cpu": _cpu_model(), "device": device,
            "threads_per_trial": FORCED["num_threads"]}


ENV_KEYS = ("torch", "python", "platform", "cpu", "device")


def env_difference(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    return [f"{k} {old.get(k)} -> {new.get(k)}" for k in ENV_KEYS if old.get(k) != new.get(k)]


def _device(spec: Any) -> str:
    from benchmark.study.spec import trials
    from benchmark.train import pick_device

    devs = {str(pick_device(t.config.device)) for t in trials(spec)}
    return ",".join(sorted(devs))


def evaluators(spec: Any, datasets: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """{dataset: {name, sha256, classifier_sha256, lpips_backbone}} of the trials' datasets (UserError when
    an evaluator cannot be had, e.g. classifier weights missing)."""
    from benchmark.evaluation.metrics import evaluator_info, resolve_metrics
    from benchmark.study.spec import trials

    cond: Dict[str, bool] = {}
    for t in trials(spec):
        if t.config.dataset in datasets:
            cond[t.config.dataset] = cond.get(t.config.dataset, False) or t.config.conditional
    out = {}
    for ds, c in sorted(cond.items()):
        names = resolve_metrics(ds, spec.metrics, conditional=c, run=True)
        out[ds] = evaluator_info(ds, "classifier", names)
    return out


EVALUATOR_KEYS = ("name", "sha256", "classifier_sha256")


def check_evaluators(base: Dict[str, Any], now: Dict[str, Dict[str, Any]], path: Path, create: str) -> None:
    for ds, ev in now.items():
        old = base.get(ds)
        if old is None:
            continue
        diff = [k for k in EVALUATOR_KEYS if old.get(k) != ev.get(k)]
        if diff:
            k = "sha256" if "sha256" in diff else diff[0]
            raise UserError(
                f"the evaluator of '{ds}' changed since baseline '{path}' ({k} {_short(old.get(k))} -> "
                f"{_short(ev.get(k))}): its scores are not comparable; if the new evaluator is intended, "
                f"re-create the baseline with '{create}'")


def _short(v: Any) -> str:
    return f"{v[:12]}..." if isinstance(v, str) and len(v) > 16 else str(v)


def data_missing(spec: Any, data_root: Optional[str]) -> Dict[str, str]:
    """{dataset: why} for the datasets of the suite whose files are not there (those trials are skipped)."""
    from benchmark.data import load_dataset
    from benchmark.study.spec import trials

    out: Dict[str, str] = {}
    checked = set()
    for t in trials(spec):
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


def check_models(ts: Sequence[Any]) -> None:
    """Every user model ('package.module:function') imports, here and so in the trial processes."""
    import importlib

    for name in sorted({t.config.model for t in ts if ":" in t.config.model}):
        mod, _, fn = name.partition(":")
        try:
            getattr(importlib.import_module(mod), fn)
        except (ImportError, AttributeError) as e:
            raise UserError(f"model '{name}' cannot be imported ({e}); install its package or put its folder on "
                            "PYTHONPATH (e.g. PYTHONPATH=. ganbench regress ...)") from None


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


def run_suite(spec: Any, root: Path, data_root: Optional[str], workers: int, progress: bool,
              multi_seed: bool) -> SuiteRun:
    """Train and score every trial of ``spec`` in ``root`` (which must hold no trials yet)."""
    from benchmark.study.runner import run_study

    if (root / "trials").exists() and any((root / "trials").iterdir()):
        raise UserError(f"'{root}' already holds trials; the gate runs them fresh: give an empty or new folder")
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    # reference statistics too are computed afresh, in the run's own cache
    with _env("GANBENCH_CACHE", str(root / "cache")):
        res = run_study(spec, root=root, workers=workers, executor="local", data_root=data_root,
                        progress=progress, threads_per_worker=FORCED["num_threads"])
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
        recs = [x for x in io.read_jsonl(Path(it["dir"]) / "run" / "metrics.jsonl") if x.get("step") == step]
        if not recs:
            failed[tid] = f"no scores at step {step}"
            continue
        rec = recs[-1]
        scores[tid] = {"variant": it["variant"], "seed": it["seed"], "key": it["key"],
                       "dataset": it["config"]["dataset"], "step": step, "metrics": rec["metrics"],
                       "evaluator": rec.get("evaluator") or {}}
    return SuiteRun(scores, failed, time.time() - t0)


# ------------------------------------------------------------------------------------------------
# comparing


@dataclass
class Row:
    trial: str
    metric: str
    baseline: Optional[float]
    now: Optional[float]
    tolerance: Optional[float]
    direction: int
    verdict: str  # ok | REGRESSION | improvement | new | missing | error | skipped
    message: str = ""

    @property
    def delta(self) -> Optional[float]:
        if self.baseline is None or self.now is None:
            return None
        d = self.now - self.baseline
        return None if math.isnan(d) else d

    @property
    def fails(self) -> bool:
        return self.verdict in VERDICT_FAILS


def verdict(base: float, now: float, tol: float, direction: int) -> str:
    """ok | REGRESSION | improvement: ``now`` against ``base`` given the direction (-1 lower is better)."""
    if math.isnan(base) or math.isnan(now):
        return "ok" if math.isnan(base) and math.isnan(now) else "REGRESSION"
    if base == now or math.isinf(tol):
        return "ok"
    if direction < 0:
        worse, better = now > base + tol, now < base - tol
    else:
        worse, better = now < base - tol, now > base + tol
    return "REGRESSION" if worse else "improvement" if better else "ok"


def gated(metrics: Dict[str, float]) -> Dict[str, float]:
    from benchmark.study.report import direction

    return {m: float(v) for m, v in metrics.items() if direction(m) != 0 and _is_num(v)}


def compare(baseline: Dict[str, Any], run: Optional[SuiteRun], skipped: Dict[str, str],
            selected: Sequence[str]) -> Tuple[List[Row], List[str]]:
    """Rows for every (trial, score) of the selected trials, and notes (one line each)."""
    from benchmark.study.report import direction

    rows: List[Row] = []
    notes: List[str] = []
    changed: List[str] = []
    bt = baseline.get("trials", {})
    scores = run.scores if run else {}
    failed = run.failed if run else {}
    for tid in list(dict.fromkeys([*[t for t in bt if t in selected], *selected])):
        entry = bt.get(tid)
        base_m = (entry or {}).get("metrics", {})
        if tid in skipped:
            for m, e in base_m.items():
                rows.append(Row(tid, m, e["value"], None, e["tolerance"], e["direction"], "skipped", skipped[tid]))
            if not base_m:
                rows.append(Row(tid, "*", None, None, None, 0, "skipped", skipped[tid]))
            continue
        if tid in failed:
            for m, e in base_m.items():
                rows.append(Row(tid, m, e["value"], None, e["tolerance"], e["direction"], "error", failed[tid]))
            if not base_m:
                rows.append(Row(tid, "*", None, None, None, 0, "error", failed[tid]))
            continue
        if tid not in scores:
            continue
        now = gated(scores[tid]["metrics"])
        if entry is None and bt:
            notes.append(f"trial '{tid}' is not in the baseline: its scores are new (accept them with --update)")
        elif entry is not None and entry.get("key") and entry["key"] != scores[tid]["key"]:
            changed.append(tid)
        for m, e in base_m.items():
            if m not in now:
                rows.append(Row(tid, m, e["value"], None, e["tolerance"], e["direction"], "missing",
                                "the trial no longer produces this score"))
                continue
            v = verdict(e["value"], now[m], e["tolerance"], e["direction"])
            rows.append(Row(tid, m, e["value"], now[m], e["tolerance"], e["direction"], v))
        for m, val in now.items():
            if m not in base_m:
                rows.append(Row(tid, m, None, val, None, direction(m), "new", "not in the baseline"))
    if changed:
        notes.append(f"{len(changed)} trial(s) ran a config that differs from the baseline's (an edited suite, "
                     f"--set, or a new config field): {', '.join(changed)}; compared anyway")
    return rows, notes


# ------------------------------------------------------------------------------------------------
# output: table, summary, JUnit


def _fmt(v: Optional[float], signed: bool = False) -> str:
    if v is None:
        return "-"
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return ("+" if signed and v > 0 else "") + ("inf" if v > 0 else "-inf")
    if v == 0:
        return "0"
    return f"{v:+.6g}" if signed else f"{v:.6g}"


def table(rows: Sequence[Row], brief: bool = False) -> str:
    arrows = {-1: " (lower better)", 1: " (higher better)", 0: ""}
    head = ("trial / metric", "baseline", "now", "delta", "tolerance", "verdict")
    body = []
    for r in rows:
        if brief and r.verdict == "ok":
            continue
        tol = "-" if r.tolerance is None else _fmt(r.tolerance)
        v = r.verdict + (f": {r.message}" if r.message and r.verdict in ("error", "skipped", "missing") else "")
        body.append((f"{r.trial} / {r.metric}", _fmt(r.baseline), _fmt(r.now), _fmt(r.delta, True), tol, v))
    if not body:
        return "(every score ok)" if rows else "(no scores)"
    w = [max(len(x[i]) for x in [head, *body]) for i in range(5)]
    lines = ["  ".join([head[0].ljust(w[0]), *[head[i].rjust(w[i]) for i in range(1, 5)], head[5]])]
    lines.append("  ".join(["-" * w[i] for i in range(5)] + ["-" * 10]))
    for x in body:
        lines.append("  ".join([x[0].ljust(w[0]), *[x[i].rjust(w[i]) for i in range(1, 5)], x[5]]))
    return "\n".join(lines)


def counts(rows: Sequence[Row]) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for r in rows:
        out[r.verdict] = out.get(r.verdict, 0) + 1
    return out


def junit_xml(rows: Sequence[Row], suite: str, seconds: float, env: Dict[str, Any],
              trial_seconds: Optional[Dict[str, float]] = None) -> str:
    """JUnit XML: one testcase per (trial, score); failure for regressions/missing, error for failed trials,
    skipped for skipped trials and new scores."""
    c = counts(rows)
    fails = c.get("REGRESSION", 0) + c.get("missing", 0)
    errors = c.get("error", 0)
    skips = c.get("skipped", 0) + c.get("new", 0)
    attrs = {"name": f"ganbench regress {suite}", "tests": str(len(rows)), "failures": str(fails),
             "errors": str(errors), "skipped": str(skips), "time": f"{seconds:.1f}"}
    root = ET.Element("testsuites", attrs)
    ts = ET.SubElement(root, "testsuite", {**attrs, "name": f"regress.{suite}", "hostname": socket.gethostname(),
                                           "timestamp": _dt.datetime.now().isoformat(timespec="seconds")})
    props = ET.SubElement(ts, "properties")
    for k, v in env.items():
        ET.SubElement(props, "property", {"name": k, "value": str(v)})
    per_trial = {}
    for r in rows:
        per_trial[r.trial] = per_trial.get(r.trial, 0) + 1
    for r in rows:
        t = (trial_seconds or {}).get(r.trial, 0.0) / max(1, per_trial[r.trial])
        tc = ET.SubElement(ts, "testcase", {"classname": f"regress.{suite}.{r.trial}", "name": r.metric,
                                             "time": f"{t:.2f}"})
        desc = (f"{r.trial} / {r.metric}: baseline {_fmt(r.baseline)}, now {_fmt(r.now)}, delta "
                f"{_fmt(r.delta, True)}, tolerance {_fmt(r.tolerance)}, "
                f"{'lower' if r.direction < 0 else 'higher'} is better")
        if r.verdict == "REGRESSION":
            ET.SubElement(tc, "failure", {"type": "regression", "message": f"worse beyond tolerance: {desc}"}).text = desc
        elif r.verdict == "missing":
            ET.SubElement(tc, "failure", {"type": "missing", "message": f"{r.trial} / {r.metric}: {r.message}"})
        elif r.verdict == "error":
            ET.SubElement(tc, "error", {"type": "trial-failed", "message": r.message})
        elif r.verdict in ("skipped", "new"):
            ET.SubElement(tc, "skipped", {"message": r.message or r.verdict})
        elif r.verdict == "improvement":
            ET.SubElement(tc, "system-out").text = f"improvement beyond tolerance (accept with --update): {desc}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ------------------------------------------------------------------------------------------------
# the baseline: tolerances and the update


def tolerance(values: Sequence[float], base_value: float, metric: str) -> Tuple[float, Dict[str, Any]]:
    """(tolerance, spread) of one score from its values over the calibration seeds."""
    from benchmark.study.report import metric_base

    finite = [float(v) for v in values if math.isfinite(v)]
    n_bad = len(values) - len(finite)
    std = statistics.stdev(finite) if len(finite) >= 2 else 0.0
    floor = max(ABS_FLOORS.get(metric_base(metric), DEFAULT_ABS_FLOOR),
                REL_FLOOR * abs(base_value) if math.isfinite(base_value) else 0.0)
    spread = {"n": len(values), "mean": statistics.fmean(finite) if finite else None, "std": std,
              "min": min(finite) if finite else None, "max": max(finite) if finite else None, "nonfinite": n_bad}
    if 0 < n_bad < len(values):
        return math.inf, {**spread, "note": f"non-finite on {n_bad} of {len(values)} seeds: not gated"}
    return max(K_SIGMA * std, floor), spread


def build_baseline(old: Optional[Dict[str, Any]], run: SuiteRun, cal: Optional[Dict[str, Dict[str, List[float]]]],
                   k: Optional[int], cal_seeds: Optional[List[int]], keep: Dict[str, str], suite_file: Path,
                   evs: Dict[str, Any], env: Dict[str, Any], command: str) -> Dict[str, Any]:
    """The new baseline: ``run``'s scores; tolerances from ``cal`` (trial -> metric -> values) where given,
    else the old ones; trials in ``keep`` (id -> why) copied from ``old`` unchanged."""
    from benchmark.study.report import direction

    old_trials = (old or {}).get("trials", {})
    trials: Dict[str, Any] = {}
    for tid, s in run.scores.items():
        metrics = {}
        for m, v in gated(s["metrics"]).items():
            if cal is not None and tid in cal:
                tol, spread = tolerance(cal[tid].get(m, [v]), v, m)
                src = {"tolerance": tol, "spread": spread}
            else:
                e = old_trials.get(tid, {}).get("metrics", {}).get(m)
                if e is None:
                    raise AssertionError(f"no tolerance for {tid} / {m}")  # callers calibrate such trials
                src = {"tolerance": e["tolerance"], "spread": e.get("spread")}
            metrics[m] = {"value": v, "direction": direction(m), **src}
        if cal is not None and tid in cal:
            calib = {"k": k, "seeds": cal_seeds, "rule": RULE, "at": _now()}
        else:
            calib = old_trials.get(tid, {}).get("calibration")
        trials[tid] = {"variant": s["variant"], "seed": s["seed"], "dataset": s["dataset"], "key": s["key"],
                       "step": s["step"], "calibration": calib, "metrics": metrics}
    for tid in keep:
        if tid in old_trials:
            trials[tid] = old_trials[tid]
    evaluators = {**(old or {}).get("evaluators", {}), **evs}
    used = {t["dataset"] for t in trials.values()}
    tol_info = {"rule": RULE, "k_sigma": K_SIGMA, "rel_floor": REL_FLOOR, "abs_floors": ABS_FLOORS,
                "default_abs_floor": DEFAULT_ABS_FLOOR,
                "note": "each trial's 'calibration' gives K and the seeds its tolerances were measured over; "
                        "each score's 'spread' the values over those seeds (std: sample standard deviation)"}
    return {
        "format": FORMAT,
        "suite": suite_file.stem,
        "suite_file": str(suite_file),
        "created": _now(),
        "git_commit": io.git_commit(),
        "command": command,
        "environment": env,
        "evaluators": {k2: v for k2, v in sorted(evaluators.items()) if k2 in used},
        "tolerance": tol_info,
        "trials": trials,
    }


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def describe_changes(old: Optional[Dict[str, Any]], new: Dict[str, Any]) -> List[str]:
    if not old:
        n = sum(len(t["metrics"]) for t in new["trials"].values())
        return [f"new baseline: {len(new['trials'])} trials, {n} gated scores"]
    out: List[str] = []
    ot, nt = old.get("trials", {}), new["trials"]
    same = 0
    for tid, t in nt.items():
        if tid not in ot:
            out.append(f"+ trial '{tid}' ({len(t['metrics'])} scores)")
            continue
        om = ot[tid].get("metrics", {})
        for m, e in t["metrics"].items():
            o = om.get(m)
            if o is None:
                out.append(f"+ {tid} / {m}: {_fmt(e['value'])} (tolerance {_fmt(e['tolerance'])})")
                continue
            parts = []
            if not _same(o["value"], e["value"]):
                parts.append(f"{_fmt(o['value'])} -> {_fmt(e['value'])} ({_fmt(e['value'] - o['value'], True)})")
            if not _same(o["tolerance"], e["tolerance"]):
                parts.append(f"tolerance {_fmt(o['tolerance'])} -> {_fmt(e['tolerance'])}")
            if parts:
                out.append(f"~ {tid} / {m}: " + ", ".join(parts))
            else:
                same += 1
        for m in om:
            if m not in t["metrics"]:
                out.append(f"- {tid} / {m} (no longer produced)")
    for tid in ot:
        if tid not in nt:
            out.append(f"- trial '{tid}' (no longer in the suite)")
    for ds, ev in new["evaluators"].items():
        o = old.get("evaluators", {}).get(ds)
        if o and any(o.get(k) != ev.get(k) for k in EVALUATOR_KEYS):
            out.append(f"~ evaluator of '{ds}': sha256 {_short(o.get('sha256'))} -> {_short(ev.get('sha256'))}")
    d = env_difference(old.get("environment", {}), new["environment"])
    if d:
        out.append("~ environment: " + "; ".join(d))
    out.append(f"{same} scores unchanged")
    return out


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


# ------------------------------------------------------------------------------------------------
# the command


def _workdir(keep: Optional[str]):
    if keep:
        p = Path(keep)
        if p.exists() and any(p.iterdir()):
            raise UserError(f"--keep folder '{p}' is not empty; the gate runs its trials fresh: give a new folder")
        p.mkdir(parents=True, exist_ok=True)
        return contextlib.nullcontext(str(p))
    return tempfile.TemporaryDirectory(prefix="ganbench-regress-")


def cmd_regress(args: argparse.Namespace) -> int:
    from benchmark.config import parse_set
    from benchmark.study.spec import load_spec, trials

    t_start = time.time()
    if args.calibrate is not None and not args.update:
        raise UserError("--calibrate K re-derives the baseline's tolerances: use it with --update")
    if args.calibrate is not None and args.calibrate < 2:
        raise UserError(f"--calibrate needs K >= 2 seeds to measure a spread, got {args.calibrate}")
    if args.set and args.update:
        raise UserError("--set is for trying a changed config against the baseline, not for writing one; edit the "
                        "suite file to change the suite, then run --update")
    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    sfile = suite_path(args.suite)
    bpath = Path(args.baseline) if args.baseline else default_baseline(sfile)
    create = f"ganbench regress --suite {args.suite}" + (f" --baseline {args.baseline}" if args.baseline else "") \
        + " --update"
    full = load_spec(sfile, args.preset)
    spec = prepare(full, parse_set(args.set), args.only)
    if args.set:
        print(f"overrides applied to every trial: {' '.join(args.set)}")
    multi = len(spec.seeds) > 1
    all_ids = [trial_id(t.variant, t.seed, multi) for t in trials(prepare(full))]
    ts = trials(spec)
    selected = [trial_id(t.variant, t.seed, multi) for t in ts]

    old: Optional[Dict[str, Any]] = None
    if args.update:
        try:
            old = load_baseline(bpath, create)
        except UserError as e:
            if bpath.exists():
                print(f"note: {e}; writing a new one")
    else:
        old = load_baseline(bpath, create)

    data_root = args.data_root or os.environ.get("GANBENCH_DATA") or None
    missing = data_missing(spec, data_root)
    skipped = {trial_id(t.variant, t.seed, multi): f"dataset '{t.config.dataset}': {missing[t.config.dataset]}"
               for t in ts if t.config.dataset in missing}
    for tid, why in skipped.items():
        print(f"skipped: {tid}: {why}")
    if len(selected) < len(all_ids):
        print(f"note: --only '{args.only}' selects {len(selected)} of {len(all_ids)} trials; the others are not "
              "compared")
    check_models(ts)  # a user's 'module:function' that does not import: one line, before any training
    run_datasets = sorted({t.config.dataset for t in ts if t.config.dataset not in missing})
    evs = evaluators(spec, run_datasets)  # UserError when an evaluator is missing: before any training
    env = environment(_device(spec))
    if old is not None:
        if not args.update:
            check_evaluators(old["evaluators"], evs, bpath, create)
        diff = env_difference(old.get("environment", {}), env)
        if diff:
            print(f"note: baseline '{bpath}' was made in another environment ({'; '.join(diff)}); scores may move "
                  "for that reason alone; comparing anyway")

    # a variant is dropped when its dataset is missing (then every seed of it is skipped)
    run_spec = dataclasses.replace(spec, variants=[v for v in spec.variants
                                                   if dict(v["set"]).get("dataset") not in missing])
    n_run = len(trials(run_spec)) if run_spec.variants else 0
    progress = not args.quiet
    with _workdir(args.keep) as work:
        work = Path(work)
        run: Optional[SuiteRun] = None
        if n_run:
            print(f"running {n_run} trial(s) of suite '{sfile}' afresh in '{work}' ({args.workers} worker(s), "
                  f"1 thread each, deterministic)", flush=True)
            run = run_suite(run_spec, work / "suite", data_root, args.workers, progress, multi)
        else:
            run = SuiteRun({}, {}, 0.0)
        rows, notes = compare(old or {"trials": {}}, run, skipped, selected)
        trial_secs = _trial_seconds(work / "suite")
        if old is not None and not args.update:
            gone = [t for t in old["trials"] if t not in all_ids]
            if gone:
                notes.append(f"the baseline holds trials the suite no longer has ({', '.join(gone)}); --update drops them")
        for n in notes:
            print(f"note: {n}")
        if old is not None:
            print(table(rows, brief=args.brief or args.update))
        c = counts(rows)
        elapsed = time.time() - t_start
        if args.junit:
            io.write_text(args.junit, junit_xml(rows, sfile.stem, elapsed, env, trial_secs))
        if args.update:
            return _update(args, old, run, skipped, spec, full, sfile, bpath, evs, env, work, data_root, multi,
                           progress, selected, all_ids)
    plural = {"REGRESSION": "regression", "improvement": "improvement", "error": "error"}
    summary = ", ".join(f"{c[k]} {plural.get(k, k)}{'s' if k in plural and c[k] != 1 else ''}"
                        for k in ("REGRESSION", "missing", "error", "improvement", "new", "ok", "skipped") if c.get(k))
    failed = any(r.fails for r in rows)
    print(f"regress {sfile.stem}: {'FAILED' if failed else 'passed'}: {summary or 'nothing compared'} "
          f"({elapsed:.0f} s; baseline {bpath})")
    if c.get("REGRESSION"):
        by: Dict[str, List[str]] = {}
        for r in rows:
            if r.verdict == "REGRESSION":
                by.setdefault(r.trial, []).append(r.metric)
        print("regressions: " + "; ".join(f"{t} ({', '.join(ms) if len(ms) <= 4 else f'{len(ms)} scores'})"
                                          for t, ms in by.items()))
    if c.get("improvement") and not failed:
        print(f"improvements beyond tolerance: accept them with '{create}'")
    if args.junit:
        print(f"junit: {args.junit}")
    return 1 if failed else 0


def _trial_seconds(root: Path) -> Dict[str, float]:
    """Per-trial wall time from the run records (for JUnit)."""
    out: Dict[str, float] = {}
    idx = root / "studies"
    if not idx.is_dir():
        return out
    for f in idx.glob("*.json"):
        index = io.read_json(f)
        multi = len({t["seed"] for t in index["trials"]}) > 1
        for t in index["trials"]:
            run = root / "trials" / t["key"] / "run"
            secs = 0.0
            with contextlib.suppress(Exception):
                secs += float(io.read_json(run / "done.json").get("seconds_this_session") or 0)
            for r in io.read_jsonl(run / "metrics.jsonl"):
                secs += float(r.get("seconds") or 0)
            out[trial_id(t["variant"], t["seed"], multi)] = secs
    return out


def _update(args, old, run: SuiteRun, skipped, spec, full, sfile: Path, bpath: Path, evs, env, work: Path,
            data_root, multi: bool, progress: bool, selected: List[str], all_ids: List[str]) -> int:
    if run.failed:
        for tid, err in run.failed.items():
            print(f"error: {tid}: {err}")
        print(f"not updating '{bpath}': {len(run.failed)} trial(s) failed; fix them first")
        return 1
    old_trials = (old or {}).get("trials", {})
    # trials that need a calibration: all with --calibrate, else those with a score lacking a tolerance
    if args.calibrate:
        k = args.calibrate
        need = set(run.scores)
    else:
        k = DEFAULT_CALIBRATE
        need = {tid for tid, s in run.scores.items()
                if any(m not in old_trials.get(tid, {}).get("metrics", {}) for m in gated(s["metrics"]))}
        if need:
            print(f"calibrating tolerances of {len(need)} trial(s) that have none over {k} seeds "
                  f"(--calibrate K to choose K, or to re-calibrate all)")
    cal: Optional[Dict[str, Dict[str, List[float]]]] = None
    seeds = calibration_seeds(spec.seeds, k)
    if need:
        if multi:
            raise UserError("--calibrate needs a suite with one seed per trial (seeds: [S]); the other "
                            "calibration seeds are chosen after it")
        extra = [s for s in seeds if s not in spec.seeds]
        variants = [v for v in spec.variants if trial_id(v["name"], spec.seeds[0], multi) in need]
        cal_spec = dataclasses.replace(spec, variants=variants, seeds=extra)
        print(f"calibration: {len(variants)} trial(s) x {len(extra)} more seed(s) ({', '.join(map(str, extra))})",
              flush=True)
        crun = run_suite(cal_spec, work / "calibration", data_root, args.workers, progress, True)
        if crun.failed:
            for tid, err in crun.failed.items():
                print(f"error: calibration {tid}: {err}")
            print(f"not updating '{bpath}': {len(crun.failed)} calibration trial(s) failed")
            return 1
        cal = {}
        for tid in need:
            vals: Dict[str, List[float]] = {m: [v] for m, v in gated(run.scores[tid]["metrics"]).items()}
            for s in extra:
                other = crun.scores[trial_id(run.scores[tid]["variant"], s, True)]
                for m, v in gated(other["metrics"]).items():
                    vals.setdefault(m, []).append(v)
            cal[tid] = vals
    keep = {tid: why for tid, why in skipped.items()}
    for tid in old_trials:
        if tid in all_ids and tid not in selected:
            keep[tid] = "not selected by --only"
    for tid, why in keep.items():
        if tid in old_trials:
            print(f"note: kept from the old baseline: '{tid}' ({why})")
    command = "ganbench regress " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 and sys.argv[1] == "regress" \
        else f"ganbench regress --suite {args.suite} --update" + (f" --calibrate {args.calibrate}" if args.calibrate else "")
    new = build_baseline(old, run, cal, k if cal is not None else None, seeds if cal is not None else None, keep,
                         sfile, evs, env, command)
    io.write_json(bpath, new)
    print(f"updated '{bpath}':")
    for line in describe_changes(old, new):
        print(f"  {line}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "regress", help="CI gate: run a suite of short trials afresh and compare scores with a baseline",
        description="Train and score the suite's trials afresh (temporary results root, deterministic, one thread "
                    "per trial) and compare every directional score of the final step with the baseline: worse "
                    "beyond its tolerance is a regression (exit 1). --update writes the baseline.")
    p.add_argument("--suite", default="ci", help="studies/NAME.yaml by name, or a spec path (default: ci)")
    p.add_argument("--baseline", help="baseline JSON (default: benchmark/baselines/<suite>.json beside studies/)")
    p.add_argument("--update", action="store_true", help="rewrite the baseline with the current scores")
    p.add_argument("--calibrate", type=int, metavar="K",
                   help="with --update: re-derive every tolerance from the spread over K seeds")
    p.add_argument("--junit", metavar="OUT.xml", help="also write JUnit XML, one testcase per trial score")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key in every trial (repeatable; steps=N replaces the budget)")
    p.add_argument("--only", metavar="REGEX", help="run only the trials whose name matches")
    p.add_argument("--preset", default=None, help="a preset of the suite spec")
    p.add_argument("--data-root", default=None, help="dataset root (default $GANBENCH_DATA, else ./data)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="trials in parallel, one thread each (default: 2, or 1 on one core)")
    p.add_argument("--keep", metavar="DIR", help="run the trials in this new folder and keep it (default: a "
                                                 "temporary folder, removed)")
    p.add_argument("--brief", action="store_true", help="print only the rows that are not ok")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_regress)

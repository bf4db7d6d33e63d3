"""The baseline file: its format, the tolerance rule, loading it strictly and building a new one."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from benchmark import io
from benchmark.errors import UserError
from benchmark.evaluation.scores import direction, metric_base
from benchmark.regress.compare import K_SIGMA, fmt, gated, is_num
from benchmark.regress.env import EVALUATOR_KEYS, env_difference, short
from benchmark.regress.suite import SuiteRun
from benchmark.study.formatting import of_seeds

FORMAT = 1

# The tolerance rule (recorded in every baseline).
REL_FLOOR = 0.02
DEFAULT_ABS_FLOOR = 1e-3
ABS_FLOORS = {  # by metric base (scores.metric_base)
    "modes": 0.5,
    "classes_covered": 0.5,  # counts: one mode/class lost from a stable count is caught
    "hq": 0.5,  # percentage points
    "fid": 0.1,
    "intra_fid": 0.1,
    "is": 0.01,
    "mode_score": 0.01,
    "class_entropy": 0.01,
    "class_kl": 0.01,
    "kl": 0.01,
    "rkl": 0.01,
    "precision": 0.01,
    "recall": 0.01,
    "label_agreement": 0.01,
}
DEFAULT_CALIBRATE = 3
RULE = (
    f"tolerance = max({K_SIGMA:g} * std over the calibration seeds, {REL_FLOOR:g} * |baseline|, floor[metric]); "
    "non-finite on some seeds only: tolerance = inf (not gated); a new score is compared with the calibration "
    f"seeds' mean, within max(tolerance, {K_SIGMA:g} * std * sqrt(1 + 1/K)) (one new draw's prediction interval)"
)
# A finite tolerance above this many times the score's own size (its |value|, the largest |value| of its
# calibration seeds, its floor) passes a drop to zero: refused as absurd. The rule above never writes one:
# K_SIGMA * std <= 3 * sqrt(2) * max|x| for values x over K >= 2 seeds.
ABSURD_TOLERANCE = 5.0
# No score comes near this size (FID is hundreds, counts thousands): a larger finite number in a baseline is
# damage or a typo, and sums with it would lose every digit of the score.
MAX_ABS_NUMBER = 1e12


def default_baseline(suite_file: Path) -> Path:
    """``<root>/studies/NAME.yaml`` -> ``<root>/benchmark/baselines/NAME.json``."""
    p = suite_file.resolve().parent.parent / "benchmark" / "baselines" / f"{suite_file.stem}.json"
    try:
        return p.relative_to(Path.cwd().resolve())
    except ValueError:
        return p


def load_baseline(path: Path, create: str) -> Dict[str, Any]:
    """The baseline at ``path``, structure- and value-checked; a one-line UserError naming the entry and the
    fix (``create``: the command that re-creates it) otherwise."""
    if not os.path.lexists(path):
        raise UserError(f"baseline '{path}' does not exist; create one with '{create}'")

    def corrupt(why: str) -> UserError:
        return UserError(f"baseline '{path}' is corrupt ({why}); re-create it with '{create}'")

    data = io.read_bytes_checked(path, "baseline", f"re-create it with '{create}'")  # a folder, unreadable, huge
    try:
        b = json.loads(data.decode("utf-8"), parse_int=io.bounded_int)
    except UnicodeDecodeError:
        raise corrupt("not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise corrupt(f"not JSON: {e.msg} at line {e.lineno}") from None
    except RecursionError:
        raise corrupt("nested deeper than any baseline") from None
    except ValueError as e:  # io.bounded_int
        raise corrupt(f"it holds {e}; no score has as many") from None
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
            if not (
                isinstance(e, dict)
                and is_num(e.get("value"))
                and is_num(e.get("tolerance"))
                and e.get("direction") in (-1, 1)
                and not e["tolerance"] < 0
            ):
                raise corrupt(f"'{tid}' / '{m}' needs a numeric value, a tolerance >= 0 and a direction of -1 or 1")
            why = bad_entry(m, e)
            if why:
                raise UserError(
                    f"baseline '{path}': '{tid}' / '{m}' {why}; fix it there, or re-create the baseline with '{create}'"
                )
    return b


def bad_entry(metric: str, e: Dict[str, Any]) -> Optional[str]:
    """Why a (structurally sound) baseline entry cannot gate its score, or None: a NaN or absurd tolerance
    passes any score; a direction other than the score's declared one turns regressions into improvements."""
    value, tol, d = float(e["value"]), float(e["tolerance"]), e["direction"]
    spread = e.get("spread") if isinstance(e.get("spread"), dict) else {}
    for what, x in (("value", value), ("tolerance", tol), *((f"spread {k}", spread.get(k)) for k in ("min", "max"))):
        if is_num(x) and math.isfinite(x) and abs(x) > MAX_ABS_NUMBER:
            return (
                f"has {what} {fmt(float(x))}, larger than any score can be (at most {MAX_ABS_NUMBER:g} in size); "
                f"give the score's own {what}"
            )
    declared = direction(metric)
    if declared == 0:
        return "is not a gated score (no declared direction: see benchmark/evaluation/metrics.py); remove it"
    if d != declared:
        return (
            f"has direction {d}, but '{metric_base(metric)}' is declared "
            f'{"lower" if declared < 0 else "higher"}-is-better ({declared}); set "direction": {declared}'
        )
    if math.isnan(value):
        return "has value nan, which gates nothing; give the score's value"
    if math.isinf(value) and not (declared < 0 and value > 0):
        return (
            f"has value {fmt(value)}, which no score reaches; give a finite value (only a lower-is-better "
            "score may be inf, its worst end)"
        )
    if math.isnan(tol):
        return "has tolerance nan, which passes any score; give a number >= 0"
    if math.isinf(tol):
        if not (is_num(spread.get("nonfinite")) and spread["nonfinite"] > 0):
            return (
                "has tolerance inf, which passes any score, and no calibration that found it unstable; give a "
                "finite tolerance >= 0"
            )
        return None
    scale = max([abs(value)] if math.isfinite(value) else [], default=0.0)
    scale = max(
        scale,
        ABS_FLOORS.get(metric_base(metric), DEFAULT_ABS_FLOOR),
        *(abs(float(spread[k])) for k in ("min", "max") if is_num(spread.get(k)) and math.isfinite(spread[k])),
    )
    if tol > ABSURD_TOLERANCE * scale:
        return (
            f"has tolerance {fmt(tol)}, more than {ABSURD_TOLERANCE:g} times the score's own size ({fmt(scale)}), "
            "which passes a drop to zero; give a tolerance on the scale of the score's spread over seeds"
        )
    return None


def tolerance(values: Sequence[float], base_value: float, metric: str) -> Tuple[float, Dict[str, Any]]:
    """(tolerance, spread) of one score from its values over the calibration seeds."""
    finite = [float(v) for v in values if math.isfinite(v)]
    n_bad = len(values) - len(finite)
    std = statistics.stdev(finite) if len(finite) >= 2 else 0.0
    floor = max(
        ABS_FLOORS.get(metric_base(metric), DEFAULT_ABS_FLOOR),
        REL_FLOOR * abs(base_value) if math.isfinite(base_value) else 0.0,
    )
    spread = {
        "n": len(values),
        "mean": statistics.fmean(finite) if finite else None,
        "std": std,
        "min": min(finite) if finite else None,
        "max": max(finite) if finite else None,
        "nonfinite": n_bad,
    }
    if 0 < n_bad < len(values):
        return math.inf, {**spread, "note": f"non-finite on {of_seeds(n_bad, len(values))}: not gated"}
    return max(K_SIGMA * std, floor), spread


def kept_spread(e: Dict[str, Any], value: float) -> Optional[Dict[str, Any]]:
    """The spread an --update without --calibrate keeps for a score now at ``value``: the old one while the value
    is the old one; else without its mean, sd and range (they describe seeds of the old arithmetic, and the gate
    would centre a new value on them: compare.gate_reference then uses the value and its tolerance)."""
    sp = e.get("spread")
    if not sp or _same(float(e["value"]), value):
        return sp
    return {
        **{k: sp[k] for k in ("n", "nonfinite", "note") if k in sp},
        "stale": "the value changed with --update and no --calibrate: no mean or sd to centre the gate on",
    }


def build_baseline(
    old: Optional[Dict[str, Any]],
    run: SuiteRun,
    cal: Optional[Dict[str, Dict[str, List[float]]]],
    k: Optional[int],
    cal_seeds: Optional[List[int]],
    keep: Dict[str, str],
    suite_file: Path,
    evs: Dict[str, Any],
    env: Dict[str, Any],
    command: str,
) -> Dict[str, Any]:
    """The new baseline: ``run``'s scores; tolerances from ``cal`` (trial -> metric -> values) where given,
    else the old ones; trials in ``keep`` (id -> why) copied from ``old`` unchanged. A score that is NaN
    at the suite's seed is left out (nothing to gate against)."""
    old_trials = (old or {}).get("trials", {})
    trials: Dict[str, Any] = {}
    for tid, s in run.scores.items():
        metrics = {}
        for m, v in gated(s["metrics"]).items():
            if math.isnan(v):
                continue
            if cal is not None and tid in cal:
                tol, spread = tolerance(cal[tid].get(m, [v]), v, m)
                src = {"tolerance": tol, "spread": spread}
            else:
                e = old_trials.get(tid, {}).get("metrics", {}).get(m)
                if e is None:
                    raise AssertionError(f"no tolerance for {tid} / {m}")  # callers calibrate such trials
                src = {"tolerance": e["tolerance"], "spread": kept_spread(e, v)}
            metrics[m] = {"value": v, "direction": direction(m), **src}
        if cal is not None and tid in cal:
            calib = {"k": k, "seeds": cal_seeds, "rule": RULE, "at": now()}
        else:
            calib = old_trials.get(tid, {}).get("calibration")
        trials[tid] = {
            "variant": s["variant"],
            "seed": s["seed"],
            "dataset": s["dataset"],
            "key": s["key"],
            "step": s["step"],
            "calibration": calib,
            "metrics": metrics,
        }
    for tid in keep:
        if tid in old_trials:
            trials[tid] = old_trials[tid]
    evaluators = {**(old or {}).get("evaluators", {}), **evs}
    used = {t["dataset"] for t in trials.values()}
    tol_info = {
        "rule": RULE,
        "k_sigma": K_SIGMA,
        "rel_floor": REL_FLOOR,
        "abs_floors": ABS_FLOORS,
        "default_abs_floor": DEFAULT_ABS_FLOOR,
        "note": "each trial's 'calibration' gives K and the seeds its tolerances were measured over; "
        "each score's 'spread' the values over those seeds (std: sample standard deviation)",
    }
    return {
        "format": FORMAT,
        "suite": suite_file.stem,
        "suite_file": str(suite_file),
        "created": now(),
        "git_commit": io.git_commit(),
        "command": command,
        "environment": env,
        "evaluators": {k2: v for k2, v in sorted(evaluators.items()) if k2 in used},
        "tolerance": tol_info,
        "trials": trials,
    }


def now() -> str:
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
                out.append(f"+ {tid} / {m}: {fmt(e['value'])} (tolerance {fmt(e['tolerance'])})")
                continue
            parts = []
            if not _same(o["value"], e["value"]):
                parts.append(f"{fmt(o['value'])} -> {fmt(e['value'])} ({fmt(e['value'] - o['value'], True)})")
            if not _same(o["tolerance"], e["tolerance"]):
                parts.append(f"tolerance {fmt(o['tolerance'])} -> {fmt(e['tolerance'])}")
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
        changed = [k for k in EVALUATOR_KEYS if o and o.get(k) != ev.get(k)]
        if changed:
            k = "sha256" if "sha256" in changed else changed[0]
            out.append(f"~ evaluator of '{ds}': {k} {short(o.get(k))} -> {short(ev.get(k))}")
    d = env_difference(old.get("environment", {}), new["environment"])
    if d:
        out.append("~ environment: " + "; ".join(d))
    out.append(f"{same} scores unchanged")
    return out


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))

"""Verdicts of the scores against the baseline, the table printed, and JUnit XML."""

from __future__ import annotations

import datetime as _dt
import math
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from benchmark.evaluation.scores import direction
from benchmark.regress.suite import SuiteRun

# The sigma of the gate (baseline.py's tolerance rule uses the same; it lives here, where it is applied).
K_SIGMA = 3.0

VERDICT_FAILS = ("REGRESSION", "missing", "error")


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
    if math.isnan(tol) or tol < 0 or direction not in (-1, 1):  # load_baseline refuses these: never silently ok
        raise ValueError(f"verdict needs a tolerance >= 0 and a direction of -1 or 1, got {tol} and {direction}")
    if math.isnan(base) or math.isnan(now):
        return "ok" if math.isnan(base) and math.isnan(now) else "REGRESSION"
    if base == now or math.isinf(tol):
        return "ok"
    if direction < 0:
        worse, better = now > base + tol, now < base - tol
    else:
        worse, better = now < base - tol, now > base + tol
    return "REGRESSION" if worse else "improvement" if better else "ok"


def gate_reference(e: Dict[str, Any]) -> Tuple[float, float]:
    """(centre, tolerance) a new score of baseline entry ``e`` is compared with.

    A run on another CPU (other vector units, another BLAS path) or after a change of the training's
    arithmetic is a fresh draw from the seed distribution, not the baseline's own bits again: a draw against
    seed 0's value alone differs with sd sqrt(2) * std, so 3 * std there is a 2.1-sigma gate that false-alarms
    on every few metrics (the mnist lsgan trial failed so on an Intel CPU with an AMD baseline: precision
    0.718 -> 0.634, a 2.8-sigma draw from its 5 seeds' 0.709 +- 0.027). Where the entry has a calibration
    (n >= 2 finite seeds), the centre is their mean and the tolerance the prediction interval of one new
    draw, K_SIGMA * std * sqrt(1 + 1/n), never below the recorded tolerance (which keeps the floors). The
    baseline's own value is always inside it: a seed is within std * (n-1)/sqrt(n) of its seeds' mean."""
    value, tol = float(e["value"]), float(e["tolerance"])
    sp = e.get("spread") or {}
    n, mean, std = sp.get("n"), sp.get("mean"), sp.get("std")
    if (
        not math.isfinite(tol)
        or not (is_num(n) and n >= 2 and is_num(mean) and is_num(std))
        or sp.get("nonfinite", 0)
        or not (math.isfinite(mean) and math.isfinite(std) and std >= 0)
    ):
        return value, tol
    return float(mean), max(tol, K_SIGMA * float(std) * math.sqrt(1.0 + 1.0 / float(n)))


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def gated(metrics: Dict[str, float]) -> Dict[str, float]:
    """The scores the gate compares: those with a declared direction."""
    return {m: float(v) for m, v in metrics.items() if direction(m) != 0 and is_num(v)}


def compare(
    baseline: Dict[str, Any], run: Optional[SuiteRun], skipped: Dict[str, str], selected: Sequence[str]
) -> Tuple[List[Row], List[str]]:
    """Rows for every (trial, score) of the selected trials, and notes (one line each)."""
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
                rows.append(
                    Row(
                        tid,
                        m,
                        e["value"],
                        None,
                        e["tolerance"],
                        e["direction"],
                        "missing",
                        "the trial no longer produces this score",
                    )
                )
                continue
            centre, tol = gate_reference(e)
            v = "ok" if now[m] == e["value"] else verdict(centre, now[m], tol, e["direction"])
            rows.append(Row(tid, m, centre, now[m], tol, e["direction"], v))
        for m, val in now.items():
            if m not in base_m:
                rows.append(Row(tid, m, None, val, None, direction(m), "new", "not in the baseline"))
    if changed:
        notes.append(
            f"{len(changed)} trial(s) ran a config that differs from the baseline's (an edited suite, "
            f"--set, or a new config field): {', '.join(changed)}; compared anyway"
        )
    return rows, notes


# ------------------------------------------------------------------------------------------------
# output: table, counts, JUnit


def fmt(v: Optional[float], signed: bool = False) -> str:
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
    head = ("trial / metric", "baseline", "now", "delta", "tolerance", "verdict")
    body = []
    for r in rows:
        if brief and r.verdict == "ok":
            continue
        tol = "-" if r.tolerance is None else fmt(r.tolerance)
        v = r.verdict + (f": {r.message}" if r.message and r.verdict in ("error", "skipped", "missing") else "")
        body.append((f"{r.trial} / {r.metric}", fmt(r.baseline), fmt(r.now), fmt(r.delta, True), tol, v))
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


def junit_xml(
    rows: Sequence[Row],
    suite: str,
    seconds: float,
    env: Dict[str, Any],
    trial_seconds: Optional[Dict[str, float]] = None,
) -> str:
    """JUnit XML: one testcase per (trial, score); failure for regressions/missing, error for failed trials,
    skipped for skipped trials and new scores."""
    c = counts(rows)
    fails = c.get("REGRESSION", 0) + c.get("missing", 0)
    errors = c.get("error", 0)
    skips = c.get("skipped", 0) + c.get("new", 0)
    attrs = {
        "name": f"ganbench regress {suite}",
        "tests": str(len(rows)),
        "failures": str(fails),
        "errors": str(errors),
        "skipped": str(skips),
        "time": f"{seconds:.1f}",
    }
    root = ET.Element("testsuites", attrs)
    ts = ET.SubElement(
        root,
        "testsuite",
        {
            **attrs,
            "name": f"regress.{suite}",
            "hostname": socket.gethostname(),
            "timestamp": _dt.datetime.now().isoformat(timespec="seconds"),
        },
    )
    props = ET.SubElement(ts, "properties")
    for k, v in env.items():
        ET.SubElement(props, "property", {"name": k, "value": str(v)})
    per_trial: Dict[str, int] = {}
    for r in rows:
        per_trial[r.trial] = per_trial.get(r.trial, 0) + 1
    for r in rows:
        t = (trial_seconds or {}).get(r.trial, 0.0) / max(1, per_trial[r.trial])
        tc = ET.SubElement(
            ts, "testcase", {"classname": f"regress.{suite}.{r.trial}", "name": r.metric, "time": f"{t:.2f}"}
        )
        desc = (
            f"{r.trial} / {r.metric}: baseline {fmt(r.baseline)}, now {fmt(r.now)}, delta "
            f"{fmt(r.delta, True)}, tolerance {fmt(r.tolerance)}, "
            f"{'lower' if r.direction < 0 else 'higher'} is better"
        )
        if r.verdict == "REGRESSION":
            ET.SubElement(
                tc, "failure", {"type": "regression", "message": f"worse beyond tolerance: {desc}"}
            ).text = desc
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

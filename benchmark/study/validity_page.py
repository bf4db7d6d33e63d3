"""The sections of a GAN page about what its verdicts rest on besides the seeds (``validity.py``): the known
failures and which score can tell them from real data, the learned gate of each arm, and the claims'
registration. Each takes what the page computed once (levels, gates, amendments) and adds its lines to a
``Page``; none reads a file.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence

import pandas as pd

from benchmark.evaluation import failures
from benchmark.evaluation.scores import direction, metric_base
from benchmark.study.formatting import mean_sd, num
from benchmark.study.page import Page
from benchmark.study.registration import Amendments
from benchmark.study.render import NOT_LEARNED, NOT_VALID, md_table
from benchmark.study.validity import (
    GATE_METRICS,
    LABEL_GATE,
    Gate,
    Guards,
    Separation,
    gate_names,
    separation,
    unit_of,
)

FAMILY_NAMES = {"points": "2D mixtures", "image": "images", "stacked": "stacked-mnist"}


def separations(guards: Guards, metrics: Sequence[str]) -> List[Separation]:
    """Each reported score's validity on each dataset that has it (the gate metrics of that dataset cover)."""
    out = []
    for ds in dict.fromkeys(lv.dataset for lv in guards.levels):
        for m in metrics:
            s = separation(guards.levels, ds, m, guards.gate_metrics(ds))
            if s is not None and s.compared:
                out.append(s)
    return out


def score_marks(seps: Sequence[Separation]) -> Dict[str, str]:
    """‡ on every score with a miss (covered or not): it cannot tell some known failure from real data."""
    return {s.metric: NOT_VALID for s in seps if s.misses}


def failures_section(page: Page, guards: Guards, seps: Sequence[Separation]) -> None:
    """Known failures: the validity table per dataset, and each score's misses in words."""
    if not guards.levels:
        page.add(
            "## Known failures",
            "",
            "No real-data or known-failure rows (see Notes): the scores' validity and the learned gate are not "
            "checked, and no claim is marked ill-posed or not decidable.",
            "",
        )
        return
    page.add(
        "## Known failures: can each score tell them from real data?",
        "",
        "Each known failure (`benchmark/evaluation/failures.py`, generated with `failures.SEED` = "
        f"{failures.SEED}) is scored under this page's protocol (its metrics, N and split) and listed in the "
        "results table in italics. A score *separates* a failure when it ranks real data strictly ahead of it "
        "in the score's declared direction (↑ higher is better, ↓ lower): ✓ separates, ✗ does not (a tie does "
        "not), with the failure's value. A claim on a score with a ✗ is **ill-posed**, unless that failure is a "
        "generator that learned nothing (a gate failure, marked ᵍ) and a gate metric of the claim separates it: "
        "an arm that passed that gate is no such failure (the miss is *covered by the gate*). Scores with a ✗ "
        f"are marked {NOT_VALID} in the results table.",
        "",
    )
    by_ds: Dict[str, List[Separation]] = {}
    for s in seps:
        by_ds.setdefault(s.dataset, []).append(s)
    for ds, ss in by_ds.items():
        page.add(_table(guards, ds, ss), "")
    lines = []
    for s in seps:
        if s.uncovered:
            misses = ", ".join(m.text(s.real) for m in s.uncovered)
            lines.append(f"- {s.metric} ({s.dataset}) does not separate {misses}: **claims on it are ill-posed**")
        covered = [m for m in s.misses if m.covered_by]
        for m in covered:
            lines.append(
                f"- {s.metric} ({s.dataset}) does not separate {m.text(s.real)}: covered by the learned gate "
                f"({m.covered_by} separates it)"
            )
    page.add(*(lines or ["Every reported score separates every known failure from real data."]), "")


def _table(guards: Guards, ds: str, ss: Sequence[Separation]) -> str:
    fails = [lv for lv in guards.levels if lv.dataset == ds and lv.name != failures.REAL]
    rows = []
    for s in ss:
        row = {f"{ds}: score": f"{s.metric} {'↑' if direction(s.metric) > 0 else '↓'}", "real data": num(s.real)}
        missed = {m.name for m in s.misses}
        for lv in fails:
            v = lv.scores.get(s.metric)
            mark = "–" if lv.name not in s.compared else "✗" if lv.name in missed else "✓"
            row[lv.label + (" ᵍ" if lv.gate else "")] = f"{mark} {num(v) if v is not None else ''}".strip()
        rows.append(row)
    return md_table(pd.DataFrame(rows))


def gates_of(guards: Guards, df: pd.DataFrame, order: Sequence[str]) -> Dict[str, List[Gate]]:
    """Each arm's gates on its family's gate metrics (and label agreement where it is recorded)."""
    out = {}
    for a in order:
        gs = guards.gates(df, a, "label_agreement" if _has(df, a, "label_agreement") else None)
        if gs:
            out[a] = gs
    return out


def _has(df: pd.DataFrame, arm: str, base: str) -> bool:
    sub = df[df["variant"] == arm]
    return any(metric_base(m) == base for m in set(sub["metric"]))


def learned(gates: Mapping[str, Sequence[Gate]]) -> Dict[str, bool]:
    return {a: all(g.learned for g in gs) for a, gs in gates.items()}


def gate_section(page: Page, gates: Mapping[str, Sequence[Gate]]) -> None:
    """The learned gate: its definition and each arm's verdict on each gate metric."""
    if not gates:
        return
    fams = "; ".join(f"{FAMILY_NAMES[f]}: {', '.join(gate_names(f))}" for f in GATE_METRICS)
    page.add(
        "## Did each arm learn? (the learned gate)",
        "",
        "Before two arms are compared, each must beat a generator that learned nothing. Per arm and gate "
        f"metric ({fams}; the unreadable share as the coverage metric records it), the arm's final score over "
        "seeds, mean m and sample sd s (ddof = 1; 0 with one seed), is compared with the best level L among "
        "the known failures that learned nothing (ᵍ above) and that the metric separates from real data: the "
        "arm **learned** iff d·(m − L) > s, d the score's direction (+1 higher is better, −1 lower), i.e. L "
        "lies outside m ± s on the worse side; a seed with a non-finite score has not learned. Label "
        "agreement (claims on a conditional score) has no failure row: its level is 1/K + "
        f"{LABEL_GATE:g}·(1 − 1/K), a quarter of the way from chance to 1 (K = 10: 0.325). A claim about an "
        "arm that did not learn is **not decidable**; claims on training-log scores (|∇D|, loss variance) "
        f"describe the critic, not the samples, and are not gated. Arms that did not learn are marked "
        f"{NOT_LEARNED} in the results table and dashed in the score figures.",
        "",
    )
    rows = []
    for a, gs in gates.items():
        for g in gs:
            rows.append(
                {
                    "arm": a,
                    "gate score": g.metric,
                    "arm (mean ± sd, n)": f"{mean_sd(g.mean, g.sd if g.n > 1 else float('nan'))}{unit_of(g.metric)} (n={g.n})",
                    "level to beat": g.against,
                    "learned": "yes" if g.learned else f"**no** {NOT_LEARNED}",
                }
            )
    page.add(md_table(pd.DataFrame(rows)), "")


def registration_lines(am: Amendments) -> List[str]:
    """The claims' registration: when, how late, and what changed since (seeds, budget, removed claims)."""
    if not am.registered:
        return [
            "**Not registered**: this store holds no registration of the study's claims, seeds and budget "
            "(written when a study's first trial starts, by this version of `ganbench study run`); nothing "
            "shows that the claims were fixed before the results were seen.",
            "",
        ]
    late = (
        f" **It was written after {am.trials_run_before} of its {am.trials} trials had already trained**: the "
        "claims were not fixed before those results."
        if am.trials_run_before
        else ""
    )
    out = [
        f"**Registered** {am.when} (sha256 `{am.sha256[:12]}`): the claims, seeds, budget and preset as they "
        "stood when the study's first trial started (`studies/registered/` in the results store, written once)." + late,
        "",
    ]
    for f, old, new in am.study:
        out.append(f"- **{f} amended after the trials ran**: registered {old}, now {new} (every claim's evidence)")
    for text in am.removed:
        out.append(f'- **removed after its trials ran**: "{text}"')
    flagged = sum(c.flagged for c in am.claims)
    if flagged:
        out.append(f"- {flagged} claim(s) amended or added after the trials ran (column 'registered')")
    if not am.any:
        out.append("Every claim, the seeds and the budget are as registered.")
    return out + [""]


__all__ = [
    "failures_section",
    "gate_section",
    "gates_of",
    "learned",
    "registration_lines",
    "score_marks",
    "separations",
]

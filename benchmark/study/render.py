"""The one renderer of a page's tables: Markdown, LaTeX and CSV from the frames of ``tables.py``, every number
through ``formatting.py``.

A score column's header carries its direction (↓ lower is better, ↑ higher); the best arm per column is bold
(among the arms that learned; none in a column whose score is blind to a known failure); real-data and
known-failure rows are italic under the arms; a cell over seeds with a non-finite value says so ("∞ (2 of 3
seeds)") instead of a mean. An arm that did not pass the learned gate is marked † (``NOT_LEARNED``),
a score that does not separate a known failure from real data ‡ (``NOT_VALID``).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from benchmark.evaluation.scores import direction
from benchmark.study.claims import (
    CONTRADICTED,
    ILL_POSED,
    NOT_A_TEST,
    NOT_DECIDABLE,
    SUPPORTED,
    UNRESOLVED,
    UNTESTED,
    Convergence,
    Decision,
)
from benchmark.study.formatting import MISSING, mean_sd, nonfinite, nonfinite_text, num, p_value
from benchmark.study.registration import AS_REGISTERED, UNREGISTERED, Amendments, ClaimStatus
from benchmark.study.resolution import OPPOSITE, Resolution
from benchmark.study.stats import seed_sd
from benchmark.study.tables import best_rows, metrics_of

ARROWS = {-1: " ↓", 1: " ↑", 0: ""}
TEX_ARROWS = {-1: r" $\downarrow$", 1: r" $\uparrow$", 0: ""}
Real = Optional[Mapping[str, Mapping[str, float]]]  # extra rows: name -> {score: value} (real data, failures)
Marks = Optional[Mapping[str, str]]  # arm or score -> a mark after its name
NOT_LEARNED, NOT_VALID = "†", "‡"
TEX_MARKS = {NOT_LEARNED: r"$^\dagger$", NOT_VALID: r"$^\ddagger$"}


def md_table(frame: pd.DataFrame) -> str:
    """A frame of text cells as a Markdown table (an empty cell for a missing one)."""
    return (
        "| "
        + " | ".join(map(str, frame.columns))
        + " |\n| "
        + " | ".join("---" for _ in frame.columns)
        + " |\n"
        + "\n".join("| " + " | ".join(str(x) for x in r) + " |" for r in frame.fillna("").itertuples(index=False))
    )


def stat_cell(n: float, mean: float, std: float, bad: float, inf: float) -> str:
    """One cell over seeds: – without values, the non-finite count when there is one, else mean ± sd."""
    if n != n or not n:
        return MISSING
    if bad:
        return nonfinite(int(bad), int(n), bool(inf))
    return mean_sd(mean, std)


# ------------------------------------------------------------------------------------------------
# the results table (tables.summary_table)


def cell(t: pd.DataFrame, v: str, m: str) -> str:
    return stat_cell(*(t.loc[v, (m, s)] for s in ("n", "mean", "std", "nonfinite", "inf")))


def _mark(marks: Marks, key: str, tex: bool = False) -> str:
    m = (marks or {}).get(key, "")
    return (" " + (TEX_MARKS.get(m, m) if tex else m)) if m else ""


def summary_markdown(
    t: pd.DataFrame, label: str = "arm", real: Real = None, arm_marks: Marks = None, score_marks: Marks = None
) -> str:
    """Arms x scores (mean ± sd, n = seeds), best in bold; ``real``: extra rows name -> {score: value};
    ``arm_marks``/``score_marks``: a mark after an arm's or a score's name (†, ‡)."""
    metrics = metrics_of(t)
    best = best_rows(t, list(arm_marks or ()), list(score_marks or ()))
    lines = [
        "| "
        + label
        + " | n | "
        + " | ".join(f"{m}{ARROWS[direction(m)]}{_mark(score_marks, m)}" for m in metrics)
        + " |",
        "| --- | ---: |" + " ---: |" * len(metrics),
    ]
    for v in t.index:
        ns = {int(t.loc[v, (m, "n")]) for m in metrics if t.loc[v, (m, "n")] == t.loc[v, (m, "n")]}
        cells = [f"**{cell(t, v, m)}**" if best[m] == v else cell(t, v, m) for m in metrics]
        lines.append(
            f"| {v}{_mark(arm_marks, v)} | {'/'.join(map(str, sorted(ns))) or '–'} | " + " | ".join(cells) + " |"
        )
    for name, vals in (real or {}).items():
        lines.append(
            f"| _{name}_ | 1 | " + " | ".join(f"_{num(vals[m])}_" if m in vals else "–" for m in metrics) + " |"
        )
    return "\n".join(lines)


def tex_escape(s: Any) -> str:
    return (
        str(s)
        .replace("\\", r"\textbackslash{}")
        .replace("_", r"\_")
        .replace("%", r"\%")
        .replace("&", r"\&")
        .replace("#", r"\#")
        .replace("±", r"$\pm$")
        .replace("λ", r"$\lambda$")
        .replace("∞", r"$\infty$")
    )


def summary_latex(
    t: pd.DataFrame, caption: str, real: Real = None, arm_marks: Marks = None, score_marks: Marks = None
) -> str:
    metrics = metrics_of(t)
    best = best_rows(t, list(arm_marks or ()), list(score_marks or ()))
    head = [tex_escape(m) + TEX_ARROWS[direction(m)] + _mark(score_marks, m, tex=True) for m in metrics]
    out = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{l" + "r" * len(metrics) + "}",
        r"\toprule",
        "arm & " + " & ".join(head) + r" \\",
        r"\midrule",
    ]
    for v in t.index:
        cells = []
        for m in metrics:
            s = tex_escape(cell(t, v, m))
            cells.append(rf"\textbf{{{s}}}" if best[m] == v else s)
        out.append(tex_escape(v) + _mark(arm_marks, v, tex=True) + " & " + " & ".join(cells) + r" \\")
    if real:
        out.append(r"\midrule")
        for name, vals in real.items():
            row = " & ".join(tex_escape(num(vals[m])) if m in vals else "--" for m in metrics)
            out.append(r"\textit{" + tex_escape(name) + "} & " + row + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{tex_escape(caption)}}}", r"\end{table}"]
    return "\n".join(out) + "\n"


def summary_csv(t: pd.DataFrame, real: Real = None, learned: Optional[Mapping[str, bool]] = None) -> str:
    """The results table as numbers; ``learned``: a column saying whether each arm passed the learned gate."""
    flat = t.copy()
    for m in metrics_of(t):  # a mean over seeds with a non-finite value is not a number: write what it is
        bad = flat[(m, "nonfinite")].fillna(0) > 0
        flat.loc[bad, (m, "mean")] = np.where(flat.loc[bad, (m, "inf")] > 0, math.inf, math.nan)
    flat = flat.drop(columns=[c for c in flat.columns if c[1] == "inf"])
    flat.columns = [f"{m}_{s}" for m, s in flat.columns]
    flat = flat.rename_axis("arm").reset_index()
    if learned is not None:
        flat.insert(1, "learned", [learned.get(a) for a in flat["arm"]])
    if real:
        extra = pd.DataFrame(
            [{"arm": name, **{f"{m}_mean": v for m, v in vals.items()}} for name, vals in real.items()]
        )
        flat = pd.concat(
            [flat, extra[[c for c in extra.columns if c == "arm" or c in flat.columns]]], ignore_index=True
        )
    return flat.to_csv(index=False)


def per_seed_details(ps: pd.DataFrame, order: Sequence[str]) -> List[str]:
    """The per-seed values at the final step (tables.final_per_seed), folded away under the results."""
    if ps.empty:
        return []
    have = set(ps.index.get_level_values(0))
    rows = [
        f"| {v} | {s} | " + " | ".join(mean_sd(float(x)) for x in ps.loc[(v, s)]) + " |"
        for v in order
        if v in have
        for s in sorted(ps.loc[v].index)
    ]
    return [
        "<details><summary>Per-seed values at the final step</summary>",
        "",
        "| arm | seed | " + " | ".join(ps.columns) + " |",
        "| --- | ---: |" + " ---: |" * len(ps.columns),
        *rows,
        "",
        "</details>",
        "",
    ]


# ------------------------------------------------------------------------------------------------
# budget, over training, convergence


def budget_markdown(b: pd.DataFrame, order: Sequence[str], num_samples: int) -> str:
    lines = [
        "| arm | dataset (N train) | batch | n_critic | steps | epochs (G batches) | epochs (critic batches) "
        "| seeds | samples scored | train time / trial | scoring time / trial |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for v in order:
        s = b[b["arm"] == v]
        if s.empty:
            continue
        r = s.iloc[0]
        lines.append(
            f"| {v} | {r['dataset']} ({r['N']:,}) | {r['batch']} | {r['n_critic']} | {r['steps']:,} | "
            f"{r['epochs']:.3g} | {r['critic_epochs']:.3g} | {sorted(s['seed'].tolist())} | {num_samples:,} | "
            f"{s['train_seconds'].mean():.0f} s | {s['score_seconds'].mean():.0f} s |"
        )
    return "\n".join(lines)


def by_step_frame(long: pd.DataFrame, order: Sequence[str], notes: Mapping[str, str]) -> pd.DataFrame:
    """The over-training table (tables.by_step_table) as text cells: one row per arm, a 'note' column when an
    arm has a note."""
    rows = []
    for v in order:
        row: Dict[str, str] = {"arm": v}
        for r in long[long["arm"] == v].itertuples(index=False):
            row[r.column] = stat_cell(r.n, r.mean, r.std, r.nonfinite, r.inf)
        if notes.get(v):
            row["note"] = notes[v]
        rows.append(row)
    return pd.DataFrame(rows)


def convergence_cell(cv: Convergence) -> str:
    if cv.points < 2:
        return "one point"
    if cv.delta != cv.delta:
        return "non-finite"
    if cv.se != cv.se:
        return f"too few points (Δ {num(cv.delta)}, no SE)"
    state = "**still improving**" if cv.improving else ("**still moving (worse)**" if cv.moving else "settled")
    return f"{state} (Δ {num(cv.delta)} ± {num(cv.se)} SE over {cv.window} points)"


def convergence_frame(conv: pd.DataFrame) -> pd.DataFrame:
    """The convergence table (tables.convergence_table) as text cells."""
    text = conv.copy()
    for m in conv.columns[1:]:
        text[m] = [convergence_cell(cv) for cv in conv[m]]
    return text


# ------------------------------------------------------------------------------------------------
# claims, their resolution, published references

VERDICT_MARK = {SUPPORTED: "S", CONTRADICTED: "C", UNRESOLVED: "·", NOT_A_TEST: "–", ILL_POSED: "I", NOT_DECIDABLE: "N"}


def arm_values(v: pd.Series) -> str:
    """An arm's values in a claim: mean ± sd (n: each seed), or the non-finite count and each seed."""
    if v.empty:
        return MISSING
    a = v.to_numpy(float)
    per = ", ".join(num(x) for x in a)
    if not np.isfinite(a).all():
        return f"{nonfinite_text(a)} [{per}]"
    sd = f" ± {num(seed_sd(a))}" if len(a) > 1 else ""
    return f"{num(float(a.mean()))}{sd} (n={len(a)}: {per})"


def registration_cell(st: ClaimStatus, am: Optional[Amendments]) -> str:
    """A claim against its registration: 'as registered', or what was amended after its trials ran (the old and
    the new value), 'added after its trials ran', 'not registered'; a change of the seeds, budget or preset
    amends every claim."""
    study = list(am.study) if am is not None else []
    if st.status in (AS_REGISTERED, UNREGISTERED) and not study:
        return st.status
    parts = [f"{f}: {_val(old)} → {_val(new)}" for f, old, new in (*st.changes, *study)]
    head = st.status if st.status != AS_REGISTERED else "amended after its trials ran"
    return f"**{head}**" + (": " + "; ".join(parts) if parts else "")


def _val(v: Any) -> str:
    if isinstance(v, str):
        return f'"{v}"' if " " in v else v or '""'
    return str(v).replace("'", "")


def claims_markdown(decided: Sequence[Decision], registered: Optional[Sequence[str]] = None) -> str:
    """The claims table: statement, what is compared, per-seed values, difference [95 % CI], p, verdict (and,
    ``registered``: each claim's registration cell)."""
    head = (
        "| claim | metric (at) | test | arm (mean ± sd, per seed) | vs | difference arm − vs [95 % CI] "
        "| p | p (Holm) | verdict | why |"
    )
    rule = "| --- | --- | --- | --- | --- | --- | ---: | ---: | --- | --- |"
    if registered is not None:
        head, rule = head + " registered |", rule + " --- |"
    lines = [head, rule]
    for i, d in enumerate(decided):
        c, vals = d.claim, d.values
        others = list(vals)[1:] if vals else (list(c.vs) or ["others"])
        vs = "<br>".join(f"{o}: {arm_values(vals[o])}" if o in vals else o for o in others)
        diffs = "<br>".join(f"{num(x.diff)} [{num(x.lo)}, {num(x.hi)}] (p {p_value(x.p)})" for x in d.comparisons)
        expect = f"{c.expect} (arm − vs {'<' if c.sign < 0 else '>'} 0)"
        cells = [
            c.text,
            f"{d.metric} ({c.at}), expected {expect}",
            "–" if c.by_construction else c.test,
            f"{c.arm}: {arm_values(vals[c.arm]) if c.arm in vals else '–'}",
            vs,
            diffs or "–",
            p_value(d.p),
            p_value(d.p_holm),
            f"**{d.verdict}**",
            "; ".join(x for x in (d.reason, c.note) if x) or "–",
        ]
        if c.of == "spread":
            cells[1] = f"spread over seeds of {cells[1]} (per seed: |value − arm median|)"
        if registered is not None:
            cells.append(registered[i])
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    return "\n".join(lines)


def resolution_markdown(resolutions: Sequence[Resolution]) -> str:
    """Per claim: its verdict at each evaluation point, the point it resolves from, and (not resolved) the
    seeds per arm that would give the test 80 % power at the observed difference."""
    lines = [
        "| claim | verdict at each evaluation point | resolves from | seeds per arm needed (per comparison) |",
        "| --- | --- | --- | --- |",
    ]
    for r in resolutions:
        d = r.decision
        marks = " ".join(VERDICT_MARK.get(v, "?") for v in r.verdicts)
        if r.point is None:
            when = d.verdict if d.verdict in UNTESTED else "not resolved"
        else:
            frac = f" ({r.fraction:.0%} of the budget)" if r.fraction == r.fraction else ""
            when = f"point {r.point} of {len(r.verdicts)}" + frac
        needs = [f"{n.other}: " + _seeds(n.seeds) for n in r.needs if n.computed]
        needs += [f"{n.other}: – ({n.why})" for n in r.needs if n.why == OPPOSITE]
        text = d.claim.text.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {text} | {marks} | {when} | {'<br>'.join(needs) or '–'} |")
    return "\n".join(lines)


def _seeds(n: float) -> str:
    return "–" if n != n else "> 1000" if math.isinf(n) else f"{n:.0f}"


def references_markdown(refs: Sequence[Mapping[str, Any]], measured: Sequence[Optional[np.ndarray]]) -> str:
    """Published figures beside the measured value of the matching arm (tables.reference_values), in the same
    statistic (sd, or se = sd / √n)."""
    lines = [
        "| arm here | published method (data) | score | measured here | published | ± is | source | caveat |",
        "| --- | --- | --- | ---: | ---: | --- | --- | --- |",
    ]
    for r, v in zip(refs, measured):
        arm, metric, stat = r.get("arm"), r["metric"], r["statistic"]
        here = "–"
        if v is not None and len(v) and not np.isfinite(v).all():
            here = nonfinite_text(v)
        elif v is not None and len(v):
            spread = seed_sd(v) / (math.sqrt(len(v)) if stat == "mean ± se" else 1.0)
            here = (
                mean_sd(float(v.mean()), spread if stat != "mean" else math.nan)
                + f" ({stat.split()[-1] if stat != 'mean' else 'mean'}, {len(v)} seeds)"
            )
        pub = mean_sd(float(r["value"]), float(r["spread"]) if r.get("spread") is not None else math.nan)
        trials = f", {r['trials']} trials" if r.get("trials") else ""
        method = (r.get("method") or arm or "") + (f" ({r['data']})" if r.get("data") else "")
        lines.append(
            f"| {arm or '–'} | {method} | {metric} | {here} | {pub} | "
            f"{stat.replace('mean ± ', '') if '±' in stat else '–'}{trials} | {r['source']} | "
            f"{r.get('caveat', '')} |"
        )
    return "\n".join(lines)


__all__ = [
    "ARROWS",
    "arm_values",
    "budget_markdown",
    "by_step_frame",
    "cell",
    "claims_markdown",
    "convergence_frame",
    "md_table",
    "per_seed_details",
    "references_markdown",
    "registration_cell",
    "resolution_markdown",
    "stat_cell",
    "summary_csv",
    "summary_latex",
    "summary_markdown",
    "tex_escape",
]

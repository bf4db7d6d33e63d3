"""A page's tables as DataFrames of numbers, from the records: no text is formatted here (``render.py`` does it).

* ``summary_table``: arm x score (mean, sd ddof = 1, n, non-finite count over seeds at each trial's final step),
  the scores chosen (``select_metrics``) and ordered (``SCORE_ORDER``); ``best_rows``: the bold cell per score;
* ``budget_table``: per trial, dataset, N, batch, n_critic, steps, epochs of G and critic batches, wall time;
* ``by_step_table``: chosen scores at each evaluation point (long: arm, column, n, mean, std, non-finite);
* ``convergence_table``, ``final_per_seed``, ``reference_values``;
* ``claims_frame``: one row per comparison of each decided claim, with its resolution (claims.csv).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from benchmark.data import DATASETS
from benchmark.evaluation.scores import direction, metric_base
from benchmark.study.claims import Decision, convergence, resolve_metric
from benchmark.study.records import StudyRecords
from benchmark.study.resolution import Resolution
from benchmark.study.stats import final_values, summary

# The order of a table's columns: these score bases first, in this order, then the others by name.
SCORE_ORDER = (
    "fid",
    "kid",
    "is",
    "precision",
    "recall",
    "classes_covered",
    "class_kl",
    "class_entropy",
    "mode_score",
    "label_agreement",
    "intra_fid",
    "lpips",
    "lpips_real",
    "lpips_class",
    "modes",
    "hq",
    "kl",
    "rkl",
    "grad_norm_mean_last",
    "grad_norm_std_last",
    "wdist_mean_last",
)
STATS = ("mean", "std", "n", "nonfinite", "inf")  # the columns of each score in a summary table


def metric_order(m: str) -> Tuple[int, str]:
    b = metric_base(m)
    return (SCORE_ORDER.index(b) if b in SCORE_ORDER else len(SCORE_ORDER), m)


def select_metrics(available: Sequence[str], wanted: Optional[Sequence[str]]) -> List[str]:
    """``wanted`` names scores exactly or by base name ('fid' matches fid10k_test and fid5k_test)."""
    if not wanted:
        return list(available)
    out = [m for w in wanted for m in available if m == w or metric_base(m) == w]
    return list(dict.fromkeys(out))


def ordered_metrics(df: pd.DataFrame) -> List[str]:
    """The scores of a long frame in table order."""
    return sorted(set(df["metric"]), key=metric_order) if not df.empty else []


def summary_table(
    df: pd.DataFrame, order: List[str], columns: Optional[List[str]] = None, step: str = "final"
) -> pd.DataFrame:
    """arm x score: mean, std (ddof = 1), n, nonfinite over seeds at each trial's last scored step."""
    if df.empty:
        return pd.DataFrame()
    last = final_values(df) if step == "final" else df
    g = last.groupby(["variant", "metric"])["value"].apply(summary).unstack().reset_index()
    metrics = select_metrics(sorted(g["metric"].unique(), key=metric_order), columns)
    out = {}
    for m in metrics:
        sub = g[g["metric"] == m].set_index("variant")
        for s in STATS:
            out[(m, s)] = sub[s]
    t = pd.DataFrame(out)
    return t.reindex([v for v in order if v in t.index])


def metrics_of(t: pd.DataFrame) -> List[str]:
    """The scores of a summary table, in its column order."""
    return list(dict.fromkeys(c[0] for c in t.columns))


def best_rows(
    t: pd.DataFrame, without_arms: Sequence[str] = (), without_scores: Sequence[str] = ()
) -> Dict[str, Optional[str]]:
    """Per score, the arm with the best finite mean by the score's direction (None without a direction or a tie
    of all arms); arms with a non-finite value take no part, nor ``without_arms`` (those that did not learn: the
    best of a column is not crowned among collapsed generators), and ``without_scores`` have none (a score that
    cannot tell a known failure from real data, e.g. precision, which rises as diversity falls)."""
    best: Dict[str, Optional[str]] = {}
    for m in metrics_of(t):
        d = direction(m)
        if m in without_scores:
            best[m] = None
            continue
        col = t[(m, "mean")].astype(float)
        keep = ~col.index.isin(list(without_arms))
        n_arms = int(keep.sum())
        col = col[keep & np.isfinite(col.to_numpy()) & (t[(m, "nonfinite")].fillna(0) == 0).to_numpy()]
        # a non-finite arm (an ∞ of a collapsed run) counts as different from, and worse than, every finite one
        tie = col.nunique() < 2 and len(col) == n_arms
        best[m] = None if d == 0 or col.empty or tie else (col.idxmin() if d < 0 else col.idxmax())
    return best


def budget_table(recs: StudyRecords) -> pd.DataFrame:
    """Per trial with a config: arm, seed, dataset, N (train size), batch, n_critic, pack, steps, epochs of
    generator batches (steps × batch / N) and of critic batches (steps × n_critic × batch / N), the training time
    (the log's per-step seconds) and the scoring time (the records' seconds)."""
    rows = []
    for t in recs.trials:
        cfg = t.config
        if not cfg:
            continue
        ds = cfg.get("dataset")
        try:
            n = DATASETS.get(ds).num_train
        except Exception:
            n = 0
        steps, bs, nc = int(cfg.get("steps") or 0), int(cfg.get("batch_size") or 0), int(cfg.get("n_critic") or 1)
        rows.append(
            {
                "arm": t.variant,
                "seed": t.seed,
                "dataset": ds,
                "N": n,
                "batch": bs,
                "n_critic": nc,
                "pack": int(cfg.get("pack") or 1),
                "steps": steps,
                "epochs": steps * bs / n if n else math.nan,
                "critic_epochs": steps * nc * bs / n if n else math.nan,
                "train_seconds": sum(float(r.get("sec") or 0.0) for r in t.log),
                "score_seconds": sum(float(r.get("seconds") or 0.0) for r in t.used),
            }
        )
    return pd.DataFrame(rows)


def steps_by_arm(df: pd.DataFrame, order: Sequence[str]) -> Dict[str, List[int]]:
    """Each arm's scored steps (an arm without scores: none)."""
    return {v: sorted(df[df["variant"] == v]["step"].unique()) for v in order}


def step_label(b: pd.DataFrame, arms: Sequence[str], i: int, fraction: float, steps_of: Dict[str, List[int]]) -> str:
    """'step 200 (0.21 ep)' when every arm scores the same step with the same epochs, else the budget fraction."""
    if b.empty:
        return f"{fraction:.0%} of budget"
    at = {(steps_of[a][i] if i < len(steps_of.get(a, [])) else None) for a in arms}
    ep = set()
    for a in arms:
        s = b[b["arm"] == a]
        if not s.empty and i < len(steps_of.get(a, [])):
            r = s.iloc[0]
            ep.add(round(steps_of[a][i] * r["batch"] / r["N"], 3) if r["N"] else math.nan)
    if len(at) == 1 and None not in at and len(ep) == 1:
        return f"step {next(iter(at))} ({next(iter(ep)):.2g} ep)"
    return f"{fraction:.0%} of budget"


def by_step_table(
    df: pd.DataFrame, order: Sequence[str], metrics: Sequence[str], labels: Sequence[str]
) -> pd.DataFrame:
    """Long: per arm, evaluation point (the i-th of each trial, labelled ``labels[i]``) and score base, the
    statistics over seeds of that point's values: arm, column ('<base> @ <label>'), n, mean, std, nonfinite,
    inf (n = 0: no value)."""
    steps_per_key = df.groupby("key")["step"].apply(lambda s: sorted(s.unique()))
    none = {"mean": math.nan, "std": math.nan, "n": 0, "nonfinite": 0, "inf": 0.0}
    rows = []
    for v in order:
        sub = df[df["variant"] == v]
        for i, lab in enumerate(labels):
            for m in metrics:
                vals = [
                    sub[
                        (sub["key"] == k) & (sub["step"] == steps_per_key[k][i]) & (sub["metric"].map(metric_base) == m)
                    ]["value"]
                    for k in sub["key"].unique()
                    if i < len(steps_per_key[k])
                ]
                a = pd.concat(vals).to_numpy(float) if vals else np.array([])
                rows.append({"arm": v, "column": f"{m} @ {lab}", **(summary(a).to_dict() if len(a) else none)})
    return pd.DataFrame(rows, columns=["arm", "column", *STATS])


def convergence_table(df: pd.DataFrame, order: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """arm x score: each cell the ``Convergence`` of that score for that arm (the arm's name in 'arm')."""
    rows = [{"arm": v, **{m: convergence(df, v, m) for m in metrics}} for v in order]
    return pd.DataFrame(rows, columns=["arm", *metrics])


def final_per_seed(df: pd.DataFrame, shown: Sequence[str]) -> pd.DataFrame:
    """(arm, seed) x score: each seed's value at its trial's final step, for the scores ``shown``."""
    last = final_values(df)
    ps = last[last["metric"].isin(shown)].pivot_table(
        index=["variant", "seed"], columns="metric", values="value", aggfunc="first"
    )
    return ps.reindex(columns=[m for m in shown if m in ps.columns]) if not ps.empty else ps


def reference_values(refs: Sequence[Mapping[str, Any]], df: pd.DataFrame) -> List[Optional[np.ndarray]]:
    """Per published reference, the final per-seed values of its arm in its score (None: no arm or score here)."""
    last = final_values(df) if not df.empty else df
    out: List[Optional[np.ndarray]] = []
    for r in refs:
        name = resolve_metric(last, r["metric"]) if not last.empty else None
        if r.get("arm") and name:
            out.append(last[(last["variant"] == r["arm"]) & (last["metric"] == name)]["value"].to_numpy(float))
        else:
            out.append(None)
    return out


def claims_frame(decided: Sequence[Decision], resolutions: Sequence[Resolution]) -> pd.DataFrame:
    """One row per comparison (claims without one keep a row) with where it resolves, for claims.csv."""
    rows = []
    for d in decided:
        c = d.claim
        for x in d.comparisons or [None]:
            rows.append(
                {
                    "claim": c.text,
                    "metric": d.metric,
                    "at": c.at,
                    "arm": c.arm,
                    "expect": c.expect,
                    "test": c.test,
                    "vs": x.other if x else ",".join(c.vs) or "others",
                    "diff": x.diff if x else math.nan,
                    "ci_low": x.lo if x else math.nan,
                    "ci_high": x.hi if x else math.nan,
                    "p_comparison": x.p if x else math.nan,
                    "p_claim": d.p,
                    "p_holm": d.p_holm,
                    "verdict": d.verdict,
                    "why": d.reason,
                }
            )
    return pd.DataFrame(rows).merge(resolution_frame(resolutions), on=["claim", "vs"], how="left")


def resolution_frame(resolutions: Sequence[Resolution]) -> pd.DataFrame:
    """Per comparison: the verdicts along training, the point and fraction it resolves from, the seeds needed."""
    rows = [
        {
            "claim": r.decision.claim.text,
            "vs": need.other,
            "verdicts_along_training": " ".join(r.verdicts),
            "resolved_from_point": r.point if r.point is not None else math.nan,
            "resolved_from_fraction": r.fraction,
            "seeds_needed_80pct_power": need.seeds,
        }
        for r in resolutions
        for need in r.needs
    ]
    return pd.DataFrame(rows)


__all__ = [
    "SCORE_ORDER",
    "best_rows",
    "budget_table",
    "by_step_table",
    "claims_frame",
    "convergence_table",
    "final_per_seed",
    "metric_order",
    "metrics_of",
    "ordered_metrics",
    "reference_values",
    "resolution_frame",
    "select_metrics",
    "step_label",
    "steps_by_arm",
    "summary_table",
]

"""The report stage: tables (Markdown, CSV, LaTeX), claims decided over seeds, and figures, built only from records.

``ganbench report STUDY`` reads the study's index (``results/studies/<name>-<preset>.json``), each
trial's ``metrics.jsonl``, ``log.jsonl``, ``config.yaml`` and ``run.json``, and writes ``reports/<name>/``:

    README.md              the page: budget, results, claims, convergence, references, figures, provenance
    table.md/.csv/.tex     each score as mean ± sd (ddof = 1) over seeds at the final step, best per column
                           in bold (by the score's direction), real-data rows under the same protocol
    per_seed.csv           every (arm, seed, step, score, value): the evidence behind every cell
    budget.csv             per arm: steps, batch, N, epochs (generator and critic batches), wall time
    by_step.md/.csv        chosen scores at each evaluation point, labelled with steps and epochs
    claims.md/.csv         (when the spec has claims) each claim decided by its stated test over seeds
    metric_vs_<x>.png      scores against the varied value: each seed a dot, the mean a line
    metrics_vs_step.png    scores against generator step (and metrics_vs_critic_updates.png when n_critic varies)
    samples.png            fixed-noise sample grids of the arms side by side at the final step
    coverage.png           per-class (or per-mode) share, arm x class, at the final step
    coverage_over_training.png   the same per evaluation point (when does collapse set in?)
    tsne.png               the t-SNE PNGs the ``tsne`` metric recorded (never computed here)
    dynamics.png           critic/generator losses, |grad D| at the interpolates, Wasserstein estimate

Nothing here scores a generator or runs code from the records: figures come from records (the real-data rows
are the one computation, on real images only, cached under ``<results>/reference/``). One colour per arm on
every panel and page (fixed from the arm order); an ∞ (e.g. reverse KL of a collapsed run) is never averaged.
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from benchmark import io, rundir
from benchmark.data import DATASETS, load_dataset
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
from benchmark.evaluation.scores import direction, metric_base
from benchmark.study import claims as claims_mod
from benchmark.study import parallel_lines
from benchmark.study.kinds import KINDS
from benchmark.study.runner import results_root

__all__ = ["build_report", "direction", "metric_base"]  # direction/metric_base: re-exported from scores

ARROWS = {-1: " ↓", 1: " ↑", 0: ""}
REAL_PREFIX = "real data"

# ------------------------------------------------------------------------------------------------
# collecting records


def load_index(study: str, preset: Optional[str], root: Path) -> Dict[str, Any]:
    cands = sorted((root / "studies").glob(f"{study}-*.json")) if (root / "studies").is_dir() else []
    if preset:
        cands = [c for c in cands if c.stem == f"{study}-{preset}"]
    if not cands:
        raise UserError(
            f"no results for study '{study}'{f' at preset {preset}' if preset else ''} under "
            f"'{root / 'studies'}'; run 'ganbench study run studies/{study}.yaml' first"
        )
    if len(cands) > 1:
        raise UserError(
            f"study '{study}' has results at several presets ({', '.join(c.stem for c in cands)}); "
            "pick one with --preset"
        )
    return io.read_json(cands[0])


def _run_dir(root: Path, t: Dict[str, Any]) -> Path:
    return root / "trials" / t["key"] / "run"


def collect(index: Dict[str, Any], root: Path) -> Tuple[pd.DataFrame, List[Dict[str, Any]]]:
    """Long table (variant, seed, step, key, metric, value, axis:*) and the records used."""
    spec = index["spec"]
    rows, used = [], []
    want = set(spec.get("metrics") or []) or None
    for t in index["trials"]:
        recs = io.read_jsonl(_run_dir(root, t) / rundir.METRICS_FILE)
        latest: Dict[int, Dict[str, Any]] = {}
        for r in recs:
            if r.get("num_samples_requested", r.get("num_samples")) != spec["num_samples"]:
                continue
            if want and not want <= set(r.get("metric_set") or []):
                continue
            if "tsne" in (r.get("metric_set") or []) and len(r["metric_set"]) == 1:
                continue
            latest[r["step"]] = r  # the newest record of each step wins
        for step, r in sorted(latest.items()):
            used.append({**r, "_key": t["key"]})
            for m, v in r["metrics"].items():
                rows.append(
                    {
                        "variant": t["variant"],
                        "seed": t["seed"],
                        "step": step,
                        "key": t["key"],
                        "metric": m,
                        "value": float(v) if v is not None else math.nan,
                        **{f"axis:{k}": v2 for k, v2 in t["values"].items()},
                    }
                )
    return pd.DataFrame(rows), used


# ------------------------------------------------------------------------------------------------
# numbers and tables


def _digits(x: float) -> int:
    mag = abs(x)
    return 0 if mag >= 100 else 1 if mag >= 10 else 2 if mag >= 1 else 3


def _fmt(mean: float, std: float = math.nan) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if math.isinf(mean):
        return "∞" if mean > 0 else "−∞"
    d = _digits(mean)
    if isinstance(std, (int, float)) and not math.isnan(std):
        return f"{mean:.{d}f} ± {std:.{d}f}"
    return f"{mean:.{d}f}"


def final_values(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of each trial's last scored step (never a mean over steps)."""
    if df.empty:
        return df
    return df[df["step"] == df.groupby("key")["step"].transform("max")]


def _agg(values: pd.Series) -> pd.Series:
    """mean and sample sd (ddof = 1) over seeds; with any non-finite value neither is computed."""
    a = values.to_numpy(float)
    bad = int((~np.isfinite(a)).sum())
    if bad:
        return pd.Series(
            {"mean": math.nan, "std": math.nan, "n": len(a), "nonfinite": bad, "inf": float(np.isinf(a).any())}
        )
    return pd.Series(
        {
            "mean": float(a.mean()),
            "std": float(a.std(ddof=1)) if len(a) > 1 else math.nan,
            "n": len(a),
            "nonfinite": 0,
            "inf": 0.0,
        }
    )


def summary_table(
    df: pd.DataFrame, order: List[str], columns: Optional[List[str]] = None, step: str = "final"
) -> pd.DataFrame:
    """arm x score: mean, std (ddof = 1), n, nonfinite over seeds at each trial's last scored step."""
    if df.empty:
        return pd.DataFrame()
    last = final_values(df) if step == "final" else df
    g = last.groupby(["variant", "metric"])["value"].apply(_agg).unstack().reset_index()
    metrics = select_metrics(sorted(g["metric"].unique(), key=_metric_order), columns)
    out = {}
    for m in metrics:
        sub = g[g["metric"] == m].set_index("variant")
        for s in ("mean", "std", "n", "nonfinite", "inf"):
            out[(m, s)] = sub[s]
    t = pd.DataFrame(out)
    return t.reindex([v for v in order if v in t.index])


def select_metrics(available: List[str], wanted: Optional[List[str]]) -> List[str]:
    """``wanted`` names scores exactly or by base name ('fid' matches fid10k_test and fid5k_test)."""
    if not wanted:
        return list(available)
    out = [m for w in wanted for m in available if m == w or metric_base(m) == w]
    return list(dict.fromkeys(out))


def _metric_order(m: str) -> Tuple[int, str]:
    first = [
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
    ]
    b = metric_base(m)
    return (first.index(b) if b in first else len(first), m)


def _metrics_of(t: pd.DataFrame) -> List[str]:
    return list(dict.fromkeys(c[0] for c in t.columns))


def best_rows(t: pd.DataFrame) -> Dict[str, Optional[str]]:
    """Per score, the arm with the best finite mean by the score's direction (None without a direction or a tie
    of all arms); arms with a non-finite value take no part."""
    best = {}
    for m in _metrics_of(t):
        d = direction(m)
        col = t[(m, "mean")].astype(float)
        n_arms = int(col.index.size)
        col = col[np.isfinite(col.to_numpy()) & (t[(m, "nonfinite")].fillna(0) == 0)]
        # a non-finite arm (an ∞ of a collapsed run) counts as different from, and worse than, every finite one
        tie = col.nunique() < 2 and len(col) == n_arms
        best[m] = None if d == 0 or col.empty or tie else (col.idxmin() if d < 0 else col.idxmax())
    return best


def cell(t: pd.DataFrame, v: str, m: str) -> str:
    n = t.loc[v, (m, "n")]
    if n != n:
        return "–"
    bad = int(t.loc[v, (m, "nonfinite")])
    if bad:
        sym = "∞" if t.loc[v, (m, "inf")] else "nan"
        return f"{sym} ({bad} of {int(n)} seeds)"
    return _fmt(t.loc[v, (m, "mean")], t.loc[v, (m, "std")])


def to_markdown(t: pd.DataFrame, label: str = "arm", real: Optional[Dict[str, Dict[str, float]]] = None) -> str:
    """Arms x scores (mean ± sd, n = seeds), best in bold; ``real``: extra rows name -> {score: value}."""
    metrics = _metrics_of(t)
    best = best_rows(t)
    lines = [
        "| " + label + " | n | " + " | ".join(f"{m}{ARROWS[direction(m)]}" for m in metrics) + " |",
        "| --- | ---: |" + " ---: |" * len(metrics),
    ]
    for v in t.index:
        ns = {int(t.loc[v, (m, "n")]) for m in metrics if t.loc[v, (m, "n")] == t.loc[v, (m, "n")]}
        cells = [f"**{cell(t, v, m)}**" if best[m] == v else cell(t, v, m) for m in metrics]
        lines.append(f"| {v} | {'/'.join(map(str, sorted(ns))) or '–'} | " + " | ".join(cells) + " |")
    for name, vals in (real or {}).items():
        lines.append(
            f"| _{name}_ | 1 | " + " | ".join(f"_{_fmt(vals[m])}_" if m in vals else "–" for m in metrics) + " |"
        )
    return "\n".join(lines)


def _tex_escape(s: str) -> str:
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


def to_latex(t: pd.DataFrame, caption: str, real: Optional[Dict[str, Dict[str, float]]] = None) -> str:
    metrics = _metrics_of(t)
    best = best_rows(t)
    arrows = {-1: r" $\downarrow$", 1: r" $\uparrow$", 0: ""}
    out = [
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{l" + "r" * len(metrics) + "}",
        r"\toprule",
        "arm & " + " & ".join(_tex_escape(m) + arrows[direction(m)] for m in metrics) + r" \\",
        r"\midrule",
    ]
    for v in t.index:
        cells = []
        for m in metrics:
            s = _tex_escape(cell(t, v, m))
            cells.append(rf"\textbf{{{s}}}" if best[m] == v else s)
        out.append(_tex_escape(v) + " & " + " & ".join(cells) + r" \\")
    if real:
        out.append(r"\midrule")
        for name, vals in real.items():
            out.append(
                r"\textit{"
                + _tex_escape(name)
                + "} & "
                + " & ".join(_tex_escape(_fmt(vals[m])) if m in vals else "--" for m in metrics)
                + r" \\"
            )
    out += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex_escape(caption)}}}", r"\end{table}"]
    return "\n".join(out) + "\n"


def to_csv(t: pd.DataFrame, real: Optional[Dict[str, Dict[str, float]]] = None) -> str:
    flat = t.copy()
    for m in _metrics_of(t):  # a mean over seeds with a non-finite value is not a number: write what it is
        bad = flat[(m, "nonfinite")].fillna(0) > 0
        flat.loc[bad, (m, "mean")] = np.where(flat.loc[bad, (m, "inf")] > 0, math.inf, math.nan)
    flat = flat.drop(columns=[c for c in flat.columns if c[1] == "inf"])
    flat.columns = [f"{m}_{s}" for m, s in flat.columns]
    flat = flat.rename_axis("arm").reset_index()
    if real:
        extra = pd.DataFrame(
            [{"arm": name, **{f"{m}_mean": v for m, v in vals.items()}} for name, vals in real.items()]
        )
        flat = pd.concat(
            [flat, extra[[c for c in extra.columns if c == "arm" or c in flat.columns]]], ignore_index=True
        )
    return flat.to_csv(index=False)


# ------------------------------------------------------------------------------------------------
# budget, wall time and the real-data rows


def _trial_config(root: Path, t: Dict[str, Any]) -> Dict[str, Any]:
    """The resolved training config of a trial, as plain data (config.yaml, else trial.json)."""
    import yaml

    p = _run_dir(root, t) / rundir.CONFIG_FILE
    if p.exists():
        return yaml.safe_load(p.read_text()) or {}
    q = root / "trials" / t["key"] / "trial.json"
    return (io.read_json(q).get("config") or {}) if q.exists() else {}


def budget_table(index: Dict[str, Any], root: Path, used: List[Dict[str, Any]]) -> pd.DataFrame:
    """Per arm: dataset, N (train size), batch, n_critic, steps, epochs of generator batches (steps × batch / N)
    and of critic batches (steps × n_critic × batch / N), seeds, samples scored, wall time per trial."""

    secs_eval: Dict[str, float] = {}
    for r in used:
        secs_eval[r["_key"]] = secs_eval.get(r["_key"], 0.0) + float(r.get("seconds") or 0.0)
    rows = []
    for t in index["trials"]:
        cfg = _trial_config(root, t)
        if not cfg:
            continue
        ds = cfg.get("dataset")
        try:
            n = DATASETS.get(ds).num_train
        except Exception:
            n = 0
        log = io.read_jsonl(_run_dir(root, t) / rundir.LOG_FILE)
        train_s = sum(float(r.get("sec") or 0.0) for r in log)
        steps, bs, nc = int(cfg.get("steps") or 0), int(cfg.get("batch_size") or 0), int(cfg.get("n_critic") or 1)
        rows.append(
            {
                "arm": t["variant"],
                "seed": t["seed"],
                "dataset": ds,
                "N": n,
                "batch": bs,
                "n_critic": nc,
                "pack": int(cfg.get("pack") or 1),
                "steps": steps,
                "epochs": steps * bs / n if n else math.nan,
                "critic_epochs": steps * nc * bs / n if n else math.nan,
                "train_seconds": train_s,
                "score_seconds": secs_eval.get(t["key"], 0.0),
            }
        )
    return pd.DataFrame(rows)


def _budget_markdown(b: pd.DataFrame, order: List[str], num_samples: int) -> str:
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


def _real_metrics(spec: Dict[str, Any], dataset: str) -> List[str]:

    names = list(spec.get("metrics") or default_metrics(dataset))
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
    spec: Dict[str, Any],
    datasets: Sequence[str],
    root: Path,
    data_root: Optional[str] = None,
) -> Tuple[Dict[str, Dict[str, float]], List[str]]:
    """Real train images scored against the study's real split under the study's protocol (its metrics and
    sample count): the FID floor, the IS ceiling, precision, recall, coverage, diversity of real data.

    Cached under ``<results>/reference/`` keyed by dataset, split, N, metrics and the evaluator's sha256; computed
    once (from real images only, never from a generator). Returns ({row name: scores}, notes)."""

    rows: Dict[str, Dict[str, float]] = {}
    notes: List[str] = []
    split, n = spec.get("split", "test"), int(spec["num_samples"])
    for ds in datasets:
        try:
            metrics = _real_metrics(spec, ds)
            if not metrics:
                continue
            ev = evaluator_info(ds, "classifier", metrics)
            sha = str(ev.get("sha256") or ev.get("name") or "none")[:16]
            p = root / "reference" / f"{ds}_train-vs-{split}_n{n}_{'-'.join(sorted(metrics))}_{sha}.json"
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


# ------------------------------------------------------------------------------------------------
# figures


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, bbox_inches="tight", dpi=100)
    _plt().close(fig)
    return path.name


def _grid(n: int, per_row: int = 3) -> Tuple[int, int]:
    cols = min(n, per_row)
    return max(1, math.ceil(n / cols)), max(1, cols)


def arm_colours(order: Sequence[str]) -> Dict[str, Any]:
    """One fixed colour per arm, from the study's arm order (built once; an arm missing a key or a record
    never shifts the others' colours)."""
    plt = _plt()
    cmap = plt.get_cmap("tab10" if len(order) <= 10 else "tab20")
    return {v: cmap(i % cmap.N) for i, v in enumerate(order)}


def _ylabel(m: str) -> str:
    d = direction(m)
    return m + {-1: "  (↓ better)", 1: "  (↑ better)", 0: ""}[d]


def _legend(fig, colours: Dict[str, Any], arms: Sequence[str]) -> None:
    """One legend for the figure, below the panels (off the data)."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colours[a], marker="o", lw=1.5, label=a) for a in arms]
    if handles:
        fig.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=min(4, len(handles)),
            fontsize=8,
            frameon=False,
        )


def _mean_if_finite(values: pd.Series) -> float:
    """The mean over seeds, or NaN (not drawn) when any seed is non-finite: an ∞ is never averaged."""
    a = values.to_numpy(float)
    return float(a.mean()) if np.isfinite(a).all() else math.nan


def _mark_nonfinite(ax, x: Sequence[float], colour: Any) -> None:
    """Seeds with a non-finite score: a triangle on the top edge of the panel, labelled ∞."""
    if len(x):
        import matplotlib.transforms as mtransforms

        tr = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
        ax.scatter(list(x), [0.97] * len(x), transform=tr, marker="^", color=colour, s=22, clip_on=False, zorder=4)
        for xi in dict.fromkeys(x):
            ax.text(xi, 0.9, "∞", transform=tr, ha="center", va="top", fontsize=8, color=colour)
        ax._ganbench_headroom = True  # noqa: SLF001  (read by _headroom once the panel is drawn)


def _headroom(axes) -> None:
    """Room above the data for the ∞ markers of panels that have them."""
    for ax in axes:
        if getattr(ax, "_ganbench_headroom", False):
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi + 0.2 * (hi - lo))


def fig_metric_vs_value(
    df: pd.DataFrame,
    x: str,
    metrics: List[str],
    path: Path,
    xscale: str = "linear",
    colours: Optional[Dict[str, Any]] = None,
) -> Optional[str]:
    col = f"axis:{x}"
    if df.empty or col not in df:
        return None
    last = final_values(df)
    metrics = select_metrics(sorted(set(last["metric"]), key=_metric_order), metrics)
    if not metrics:
        return None
    colours = colours or arm_colours(list(dict.fromkeys(df["variant"])))
    plt = _plt()
    r, c = _grid(len(metrics))
    fig, axes = plt.subplots(r, c, figsize=(4.2 * c, 3.2 * r), squeeze=False)
    groups = last["axis:variant"].fillna("") if "axis:variant" in last else pd.Series("", index=last.index)
    if groups.nunique() > 1 and (last.groupby(groups)[col].nunique() <= 1).all():
        # x set per named variant (n-critic): connect the arms that share a budget (same final step) instead
        groups = last["step"].astype(str)
    shown: List[str] = []
    for ax, m in zip(axes.flat, metrics):
        sub = last[last["metric"] == m]
        for _, gsub in sub.groupby(groups[sub.index]):
            agg = gsub.groupby(col)["value"].apply(_mean_if_finite).sort_index()
            ax.plot(agg.index.astype(float), agg.to_numpy(), color="0.4", lw=1, zorder=1)
            for arm, s in gsub.groupby("variant"):
                fin = np.isfinite(s["value"].to_numpy(float))
                ax.scatter(s[col].astype(float)[fin], s["value"][fin], color=colours[arm], s=14, alpha=0.75, zorder=2)
                _mark_nonfinite(ax, s[col].astype(float)[~fin].tolist(), colours[arm])
                ax.scatter(
                    [float(s[col].iloc[0])],
                    [_mean_if_finite(s["value"])],
                    color=colours[arm],
                    marker="_",
                    s=200,
                    zorder=3,
                )
                shown.append(arm)
        ax.set_xscale("symlog", linthresh=0.1) if xscale == "symlog" else ax.set_xscale(xscale)
        ax.set_xlabel(x)
        ax.set_ylabel(_ylabel(m), fontsize=8)
        ax.grid(alpha=0.3)
    _headroom(axes.flat)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(f"final scores against {x}: each seed a dot (∞: a triangle on top), the mean a bar and line")
    fig.tight_layout()
    _legend(fig, colours, [a for a in colours if a in shown])
    return _save(fig, path)


def fig_metrics_vs_step(
    df: pd.DataFrame,
    order: List[str],
    metrics: List[str],
    path: Path,
    colours: Optional[Dict[str, Any]] = None,
    x_per_arm: Optional[Dict[str, float]] = None,
    xlabel: str = "generator step",
) -> Optional[str]:
    """Scores over training: each seed a dot, the mean over seeds a line. ``x_per_arm``: a factor on the step
    per arm (n_critic: critic updates, matched compute)."""
    metrics = select_metrics(sorted(set(df["metric"]), key=_metric_order), metrics) if not df.empty else []
    if not metrics or df["step"].nunique() < 2:
        return None
    colours = colours or arm_colours(order)
    plt = _plt()
    r, c = _grid(len(metrics))
    fig, axes = plt.subplots(r, c, figsize=(4.2 * c, 3.2 * r), squeeze=False)
    shown: List[str] = []
    for ax, m in zip(axes.flat, metrics):
        sub = df[df["metric"] == m]
        for v in order:
            s = sub[sub["variant"] == v]
            if s.empty:
                continue
            f = (x_per_arm or {}).get(v, 1.0)
            agg = s.groupby("step")["value"].apply(_mean_if_finite)
            ax.plot(agg.index * f, agg.to_numpy(), color=colours[v], lw=1.4)
            fin = np.isfinite(s["value"].to_numpy(float))
            ax.scatter(s["step"][fin] * f, s["value"][fin], color=colours[v], s=12, alpha=0.7)
            _mark_nonfinite(ax, (s["step"][~fin] * f).tolist(), colours[v])
            shown.append(v)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(_ylabel(m), fontsize=8)
        ax.grid(alpha=0.3)
    _headroom(axes.flat)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.tight_layout()
    _legend(fig, colours, [a for a in order if a in shown])
    return _save(fig, path)


def first_seed_trials(index: Dict[str, Any]) -> Tuple[int, Dict[str, Dict[str, Any]]]:
    """(the study's first seed, each arm's trial at that seed): the trial a one-seed panel shows."""
    seed0 = min(t["seed"] for t in index["trials"])
    return seed0, {t["variant"]: t for t in index["trials"] if t["seed"] == seed0}


def scored_mixture_points(run: Path, rec: Dict[str, Any]) -> Tuple[Any, Any, int]:
    """(points, config, step): the samples a 2D-mixture record scored, regenerated from the stored generator
    at the record's step with its generation seed and count (``rundir.generate`` is seeded), cut to the
    scoring protocol's first N."""
    G, cfg, step = rundir.load_generator(run, rec["step"])
    x, _ = rundir.generate(G, cfg, int(rec["num_samples_requested"]), seed=int(rec.get("generation_seed", 0)))
    return x[:MIXTURE_PROTOCOL_SAMPLES], cfg, step


def fig_mixture_scatter(index: Dict[str, Any], order: List[str], root: Path, path: Path, colours) -> Optional[str]:
    """2D mixtures: every sample scored at the final step of each arm's first seed, over the mode centres.
    The points are the scored ones, not new ones: the stored generator of that step, sampled with the record's
    generation seed and count (``rundir.generate`` is seeded), cut to the scoring protocol's first N."""
    seed0, first = first_seed_trials(index)
    panels = []
    for v in order:
        t = first.get(v)
        if not t:
            continue
        run = _run_dir(root, t)
        recs = [r for r in io.read_jsonl(run / rundir.METRICS_FILE) if "modes" in (r.get("metric_set") or [])]
        if not recs:
            continue
        rec = max(recs, key=lambda r: r["step"])
        try:
            x, cfg, step = scored_mixture_points(run, rec)
        except UserError:
            continue  # no generator stored at that step: the panel is left out, not drawn from other samples
        d = load_dataset(cfg.dataset, split="test")
        panels.append((v, x.numpy(), d.means.numpy(), float(d.std), step, rec["metrics"]))
    if not panels:
        return None
    plt = _plt()
    r, c = _grid(len(panels), per_row=4)
    fig, axes = plt.subplots(r, c, figsize=(3.3 * c, 3.3 * r), squeeze=False)
    for ax, (v, pts, means, std, step, m) in zip(axes.flat, panels):
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.35, color=colours[v], rasterized=True)
        ax.scatter(means[:, 0], means[:, 1], s=30, marker="x", color="black", lw=1)
        lim = float(np.abs(means).max()) * 1.5 + 6 * std
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        modes = next((val for k, val in m.items() if metric_base(k) == "modes"), math.nan)
        hq = next((val for k, val in m.items() if metric_base(k) == "hq"), math.nan)
        ax.set_title(f"{v}\nstep {step}: {modes:.0f} modes, {hq:.1f} % hq, n = {len(pts):,}", fontsize=7)
        ax.set_xlabel("x₁", fontsize=7)
        ax.set_ylabel("x₂", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(f"every scored sample (seed {seed0}, final step) and the mode centres (×)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return _save(fig, path)


def fig_samples(index: Dict[str, Any], order: List[str], root: Path, path: Path) -> Optional[str]:
    seed0, first = first_seed_trials(index)
    imgs = []
    for v in order:
        t = first.get(v)
        if not t:
            continue
        pngs = sorted((_run_dir(root, t) / rundir.SAMPLES_DIR).glob("step_*.png"))
        if pngs:
            imgs.append((v, pngs[-1]))
    if not imgs:
        return None
    plt = _plt()
    r, c = _grid(len(imgs), 4 if len(imgs) > 6 else 3)
    fig, axes = plt.subplots(r, c, figsize=(3.3 * c, 3.5 * r), squeeze=False)
    for ax, (v, p) in zip(axes.flat, imgs):
        ax.imshow(plt.imread(p), cmap="gray")
        ax.set_title(f"{v}\n{p.stem.replace('_', ' ')}, seed {seed0}", fontsize=8)
        ax.axis("off")
    for ax in list(axes.flat)[len(imgs) :]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def _hists(used: List[Dict[str, Any]], var_of: Dict[str, str]) -> Tuple[Dict[Tuple[str, int], List[np.ndarray]], str]:
    """(arm, step) -> per-seed normalised class (or mode) histograms from the records' details."""
    out: Dict[Tuple[str, int], List[np.ndarray]] = {}
    label = "class"
    for r in used:
        k = r.get("_key")
        if k not in var_of:
            continue
        for name, h in (r.get("details") or {}).items():
            if "hist" in name and isinstance(h, list) and 0 < len(h) <= 100:
                label = "mode" if name.startswith("mode") else "predicted class"
                a = np.asarray(h, dtype=float)
                out.setdefault((var_of[k], r["step"]), []).append(a / max(a.sum(), 1))
    return out, label


def fig_coverage(used: List[Dict[str, Any]], index: Dict[str, Any], order: List[str], path: Path) -> Optional[str]:
    var_of = {t["key"]: t["variant"] for t in index["trials"]}
    final = {}
    for r in used:
        k = r.get("_key")
        if k in var_of and (k not in final or r["step"] > final[k]["step"]):
            final[k] = r
    hists, label = _hists(list(final.values()), var_of)
    per_arm: Dict[str, List[np.ndarray]] = {}
    for (v, _), hs in hists.items():
        per_arm.setdefault(v, []).extend(hs)
    rows = [v for v in order if v in per_arm]
    if not rows:
        return None
    width = max(len(h) for v in rows for h in per_arm[v])  # arms may differ (8 modes vs 25)
    mat = np.full((len(rows), width), np.nan)
    for i, v in enumerate(rows):
        m = np.mean([h for h in per_arm[v] if len(h) == len(per_arm[v][0])], 0)
        mat[i, : len(m)] = m
    if len({len(per_arm[v][0]) for v in rows}) > 1:
        label = "class / mode"
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * mat.shape[1] + 3), 0.45 * len(rows) + 1.6))
    im = ax.imshow(np.ma.masked_invalid(mat), cmap="viridis", aspect="auto", vmin=0)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xticks(range(mat.shape[1]))
    ax.set_xlabel(label)
    ax.set_title(f"share of generated samples per {label} (final step, mean over seeds)")
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    return _save(fig, path)


def fig_coverage_over_training(
    used: List[Dict[str, Any]], index: Dict[str, Any], order: List[str], path: Path
) -> Optional[str]:
    """Per arm, a step x class heatmap of the share of generated samples (mean over seeds): when collapse sets in."""
    var_of = {t["key"]: t["variant"] for t in index["trials"]}
    hists, label = _hists(used, var_of)
    arms = [v for v in order if any(k[0] == v for k in hists)]
    if not arms or len({s for (_, s) in hists}) < 2:
        return None
    plt = _plt()
    r, c = _grid(len(arms), 3)
    fig, axes = plt.subplots(r, c, figsize=(4.2 * c, 2.6 * r), squeeze=False)
    im = None
    vmax = max(float(np.mean(hs, 0).max()) for hs in hists.values() if len({len(h) for h in hs}) == 1)
    for ax, v in zip(axes.flat, arms):
        steps = sorted(s for (a, s) in hists if a == v)
        width = max(len(h) for s in steps for h in hists[(v, s)])
        mat = np.full((len(steps), width), np.nan)
        for i, s in enumerate(steps):
            hs = [h for h in hists[(v, s)] if len(h) == width]
            if hs:
                mat[i] = np.mean(hs, 0)
        im = ax.imshow(np.ma.masked_invalid(mat), cmap="viridis", aspect="auto", vmin=0, vmax=vmax)
        ax.set_yticks(range(len(steps)), [str(s) for s in steps], fontsize=7)
        ax.set_ylabel("generator step", fontsize=8)
        ax.set_xlabel(label, fontsize=8)
        ax.set_title(v, fontsize=9)
    for ax in list(axes.flat)[len(arms) :]:
        ax.axis("off")
    fig.suptitle(f"share of generated samples per {label} over training (mean over seeds)")
    fig.tight_layout()
    if im is not None:
        fig.colorbar(im, ax=list(axes.flat), fraction=0.02)
    return _save(fig, path)


def tsne_pngs(index: Dict[str, Any], order: List[str], root: Path) -> List[Tuple[str, Path]]:
    """The t-SNE PNGs that the ``tsne`` metric recorded (first seed, latest step per arm): read, never computed."""
    _, first = first_seed_trials(index)
    out = []
    for v in order:
        t = first.get(v)
        if t is None:
            continue
        best: Optional[Tuple[int, Path]] = None
        run = _run_dir(root, t)
        for r in io.read_jsonl(run / rundir.METRICS_FILE):
            p = next((v for k, v in (r.get("details") or {}).items() if "tsne" in k and isinstance(v, str)), None)
            if not isinstance(p, str):
                continue
            # a path recorded relative to the study's working directory: found again under the run directory
            # (run/eval/tsne_*.png), so `ganbench report` works from any directory
            png = next((c for c in (Path(p), run / Path(p).parent.name / Path(p).name) if c.is_file()), None)
            if png is not None and (best is None or r.get("step", 0) >= best[0]):
                best = (r.get("step", 0), png)
        if best:
            out.append((v, best[1]))
    return out


def fig_tsne(
    index: Dict[str, Any], order: List[str], root: Path, path: Path, spec: Optional[Dict[str, Any]] = None
) -> Optional[str]:
    """t-SNE panels from the PNG paths recorded by the ``tsne`` metric; the report scores nothing."""
    pngs = tsne_pngs(index, order, root)
    if not pngs:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(pngs), 1, figsize=(10, 5 * len(pngs)), squeeze=False)
    for ax, (v, p) in zip(axes.flat, pngs):
        ax.imshow(plt.imread(p))
        ax.set_title(v, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def fig_dynamics(
    index: Dict[str, Any], order: List[str], root: Path, path: Path, colours: Optional[Dict[str, Any]] = None
) -> Optional[str]:
    seed0, first = first_seed_trials(index)
    colours = colours or arm_colours(order)
    logs = {}
    for v in order:
        t = first.get(v)
        if t:
            log = io.read_jsonl(_run_dir(root, t) / rundir.LOG_FILE)
            if log:
                logs[v] = pd.DataFrame(log).set_index("step")
    if not logs:
        return None
    panels = [
        ("d_loss", "critic loss"),
        ("g_loss", "generator loss"),
        ("grad_norm_mean", "|∇D| at interpolates"),
        ("wdist", "Wasserstein estimate"),
    ]
    panels = [p for p in panels if any(p[0] in lg for lg in logs.values())]
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), squeeze=False)
    for ax, (k, title) in zip(axes.flat, panels):
        for v, lg in logs.items():
            if k in lg:
                s = lg[k].dropna()
                w = max(1, len(s) // 50)
                ax.plot(s.index, s.rolling(w, min_periods=1).mean(), color=colours[v], lw=1)
        if k == "grad_norm_mean":
            ax.axhline(1.0, color="k", ls=":", lw=0.8)
            ax.set_yscale("log")
        ax.set_ylabel(title, fontsize=8)
        ax.set_xlabel("generator step")
        ax.grid(alpha=0.3)
    fig.suptitle(f"training dynamics (seed {seed0}, rolling mean)")
    fig.tight_layout()
    _legend(fig, colours, list(logs))
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------
# the page


def _env_lines(index: Dict[str, Any], used: List[Dict[str, Any]], root: Path) -> List[str]:
    import torch

    runs = [io.read_json(p) for t in index["trials"] if (p := _run_dir(root, t) / rundir.RUN_INFO_FILE).exists()]
    devices = sorted({f"{r.get('device')} ({r.get('device_name')}, {r.get('threads')} threads)" for r in runs})
    torches = sorted({r.get("torch") for r in runs} | {r.get("torch_version") for r in used} - {None})
    commits = sorted({r.get("git_commit") for r in runs} | {r.get("git_commit") for r in used} - {None})
    by_data: Dict[str, set] = {}
    for r in used:
        by_data.setdefault(r.get("dataset", "?"), set()).add(json.dumps(r.get("evaluator"), sort_keys=True))
    lines = [
        f"- command: `{index['command']}`",
        f"- preset: `{index['preset'] or 'default'}`; seeds: {sorted({t['seed'] for t in index['trials']})}",
        f"- code of the trials and scores (git commit): {', '.join(f'`{c}`' for c in commits) or 'unknown'}",
        f"- code of this report (git commit): `{io.git_commit()}`",
        f"- torch: {', '.join(torches) or torch.__version__}; device: {'; '.join(devices) or 'unknown'}; "
        f"Python {platform.python_version()}",
    ]
    for data, evs in sorted(by_data.items()):
        for e in sorted(evs):
            ev = json.loads(e) or {}
            if ev.get("sha256") is None and ev.get("name") == "mixture-geometry":
                lines.append(
                    f"- evaluator for {data}: mixture geometry (mode centres and std of the dataset; no "
                    "network, so no sha256)"
                )
                continue
            lines.append(
                f"- evaluator for {data}: {ev.get('name')} sha256 `{ev.get('sha256')}`; classifier sha256 "
                f"`{ev.get('classifier_sha256')}`; LPIPS backbone: {ev.get('lpips_backbone')}"
            )
        if len(evs) > 1:
            lines.append(
                f"- **warning: {data} scores come from {len(evs)} different evaluators; compare rows with care**"
            )
    if len([c for c in commits if c]) > 1:
        lines.append(f"- **note: trials and scores come from {len(commits)} code versions (listed above)**")
    if any(str(c).endswith("+dirty") for c in commits):
        lines.append("- **note: some trials ran on a tree with uncommitted changes (`+dirty`)**")
    return lines


def build_report(
    study: str,
    preset: Optional[str] = None,
    root: Optional[str | Path] = None,
    out_root: str | Path = "reports",
    tsne: Optional[bool] = None,
) -> Path:

    root = results_root(root)
    index = load_index(study, preset, root)
    spec = index["spec"]
    out = Path(out_root) / study
    out.mkdir(parents=True, exist_ok=True)
    # One writer per report folder; a report killed mid-write left temporaries that nobody else removes.
    with io.flock(out / REPORT_LOCK):
        io.remove_stale_temporaries(out)
        return _write_report(study, index, spec, root, out, tsne)


REPORT_LOCK = ".report.lock"


def _write_report(
    study: str, index: Dict[str, Any], spec: Dict[str, Any], root: Path, out: Path, tsne: Optional[bool]
) -> Path:
    rep = spec.get("report") or {}
    title = spec.get("title") or study
    page = [f"# {title}", "", spec.get("description", "").strip(), ""]
    kind = KINDS.get(spec["kind"])  # the kind's section(s) of the page (benchmark/study/kinds.py)
    page += kind.report_sections(index, spec, rep, root, out, tsne)
    page += ["", "## Provenance", ""] + _env_lines(index, kind.records(index, root), root)
    page += [
        "",
        f"Regenerate this page from the stored records with `ganbench report {study} --preset {index['preset'] or 'default'}`.",
    ]
    io.write_text(out / "README.md", "\n".join(page).replace("\n\n\n", "\n\n") + "\n")
    return out


def _md_table(frame: pd.DataFrame) -> str:
    return (
        "| "
        + " | ".join(map(str, frame.columns))
        + " |\n| "
        + " | ".join("---" for _ in frame.columns)
        + " |\n"
        + "\n".join("| " + " | ".join(str(x) for x in r) + " |" for r in frame.fillna("").itertuples(index=False))
    )


def _step_label(b: pd.DataFrame, arms: List[str], i: int, fraction: float, steps_of: Dict[str, List[int]]) -> str:
    """'step 200 (0.21 ep)' when every arm scores the same step with the same epochs, else the budget fraction."""
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


def references_markdown(refs: List[Dict[str, Any]], df: pd.DataFrame) -> str:
    """Published figures beside the measured value of the matching arm, in the same statistic."""
    lines = [
        "| arm here | published method (data) | score | measured here | published | ± is | source | caveat |",
        "| --- | --- | --- | ---: | ---: | --- | --- | --- |",
    ]
    last = final_values(df) if not df.empty else df
    for r in refs:
        arm, metric, stat = r.get("arm"), r["metric"], r["statistic"]
        measured = "–"
        name = claims_mod.resolve_metric(last, metric) if not last.empty else None
        if arm and name:
            v = last[(last["variant"] == arm) & (last["metric"] == name)]["value"].to_numpy(float)
            if len(v) and not np.isfinite(v).all():
                k = int((~np.isfinite(v)).sum())
                measured = f"{'∞' if np.isinf(v).any() else 'nan'} ({k} of {len(v)} seeds)"
            elif len(v):
                spread = (
                    (v.std(ddof=1) / (math.sqrt(len(v)) if stat == "mean ± se" else 1.0)) if len(v) > 1 else math.nan
                )
                measured = (
                    _fmt(float(v.mean()), spread if stat != "mean" else math.nan)
                    + f" ({stat.split()[-1] if stat != 'mean' else 'mean'}, {len(v)} seeds)"
                )
        pub = _fmt(float(r["value"]), float(r["spread"]) if r.get("spread") is not None else math.nan)
        trials = f", {r['trials']} trials" if r.get("trials") else ""
        method = (r.get("method") or arm or "") + (f" ({r['data']})" if r.get("data") else "")
        lines.append(
            f"| {arm or '–'} | {method} | {metric} | {measured} | {pub} | "
            f"{stat.replace('mean ± ', '') if '±' in stat else '–'}{trials} | {r['source']} | "
            f"{r.get('caveat', '')} |"
        )
    return "\n".join(lines)


_VERDICT_MARK = {
    claims_mod.SUPPORTED: "S",
    claims_mod.CONTRADICTED: "C",
    claims_mod.UNRESOLVED: "·",
    claims_mod.NOT_A_TEST: "–",
}


def resolution_table(
    decided: List[Dict[str, Any]], along: List[List[str]], fractions: List[float], m: int
) -> Tuple[str, pd.DataFrame]:
    """Per claim: its verdict at each evaluation point, the point it resolves from, and (not resolved) the
    seeds per arm that would give the test 80 % power at the observed difference. Markdown and, per
    comparison, the columns claims.csv gains."""
    lines = [
        "| claim | verdict at each evaluation point | resolves from | seeds per arm needed (per comparison) |",
        "| --- | --- | --- | --- |",
    ]
    rows = []
    for r, verdicts in zip(decided, along):
        c = r["claim"]
        marks = " ".join(_VERDICT_MARK.get(v, "?") for v in verdicts)
        k = claims_mod.resolved_from(verdicts)
        frac = fractions[k - 1] if k is not None and k - 1 < len(fractions) else math.nan
        if k is None:
            when = "not resolved" if r["verdict"] != claims_mod.NOT_A_TEST else "not a test"
        else:
            when = f"point {k} of {len(verdicts)}" + (f" ({frac:.0%} of the budget)" if frac == frac else "")
        needs = []
        for x in r["comparisons"] or [None]:
            n = math.nan
            if x is not None and r["verdict"] == claims_mod.UNRESOLVED:
                n = claims_mod.seeds_needed(
                    r["values"][c.arm].to_numpy(), r["values"][x.other].to_numpy(), alpha=claims_mod.ALPHA / m
                )
                needs.append(f"{x.other}: " + ("–" if n != n else "> 1000" if math.isinf(n) else f"{n:.0f}"))
            rows.append(
                {
                    "claim": c.text,
                    "vs": x.other if x else ",".join(c.vs) or "others",
                    "verdicts_along_training": " ".join(verdicts),
                    "resolved_from_point": k if k is not None else math.nan,
                    "resolved_from_fraction": frac,
                    "seeds_needed_80pct_power": n,
                }
            )
        text = c.text.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {text} | {marks} | {when} | {'<br>'.join(needs) or '–'} |")
    return "\n".join(lines), pd.DataFrame(rows)


def _gan_sections(index, spec, rep, root: Path, out: Path, tsne: Optional[bool]) -> List[str]:
    df, used = collect(index, root)
    order = list(dict.fromkeys(t["variant"] for t in index["trials"]))
    colours = arm_colours(order)
    page: List[str] = []
    missing = [t for t in index["trials"] if not (_run_dir(root, t) / rundir.METRICS_FILE).exists()]
    failed = [t for t in index["trials"] if (root / "trials" / t["key"] / "failed.json").exists()]
    if df.empty:
        raise UserError(f"study '{spec['name']}' has no scores yet; run 'ganbench study run' for it first")
    parsed = claims_mod.check_claims(rep, f"study '{spec['name']}'", arms=order)
    notes: List[str] = []

    # ---- budget ---------------------------------------------------------------------------------
    b = budget_table(index, root, used)
    if not b.empty:
        io.write_text(out / "budget.csv", b.to_csv(index=False))
        page += [
            "## Budget and protocol",
            "",
            "Epochs are counted in batches drawn from the training set of N images (points: a nominal N): "
            "generator epochs = steps × batch / N; critic epochs = steps × n_critic × batch / N (each critic "
            "update draws one real batch). Wall time is the sum of the per-step training times in the log "
            "(mean over seeds) and the scoring time of the records.",
            "",
            _budget_markdown(b, order, int(spec["num_samples"])),
            "",
            "Per trial: [budget.csv](budget.csv)",
            "",
        ]
        datasets = list(dict.fromkeys(b["dataset"]))
        data_root = next(
            (c.get("data_root") for t in index["trials"] if (c := _trial_config(root, t)).get("data_root")), None
        )
    else:
        datasets, data_root = list(dict.fromkeys(r.get("dataset") for r in used if r.get("dataset"))), None

    # ---- results --------------------------------------------------------------------------------
    columns = rep.get("columns")
    t = summary_table(df, order, columns)
    real, real_notes = real_rows(spec, datasets, root, data_root)
    notes += real_notes
    evs = sorted({json.dumps(r.get("evaluator"), sort_keys=True) for r in used})
    ev_text = "; ".join(
        f"{e.get('name')}"
        + (f" sha256 {str(e.get('sha256'))[:12]}" if e.get("sha256") else "")
        + (f", LPIPS backbone {e.get('lpips_backbone')}" if e.get("lpips_backbone") else "")
        for e in (json.loads(x) or {} for x in evs)
    )
    caption = (
        f"{spec.get('title') or spec['name']}: mean ± sample sd (ddof = 1) over n seeds at each trial's final "
        f"step; best arm per column in bold (↓ lower is better, ↑ higher); a column with ∞ in any seed is "
        f"not averaged. Italic rows: real training images scored against the real {spec.get('split', 'test')} "
        f"split under the same protocol (the floor/ceiling of each score). Preset {spec.get('preset') or 'default'}; "
        f"evaluator: {ev_text}."
    )
    io.write_text(out / "table.md", to_markdown(t, real=real) + "\n\n" + caption + "\n")
    io.write_text(out / "table.csv", to_csv(t, real))
    io.write_text(out / "table.tex", to_latex(t, caption, real))
    per_seed = df.drop(columns=["key"]).sort_values(["variant", "seed", "step", "metric"], kind="stable")
    io.write_text(out / "per_seed.csv", per_seed.to_csv(index=False))
    page += [
        "## Results",
        "",
        to_markdown(t, real=real),
        "",
        f"_{caption}_",
        "",
        "Tables: [Markdown](table.md) · [CSV](table.csv) · [LaTeX](table.tex) · every seed and step: "
        "[per_seed.csv](per_seed.csv)",
        "",
    ]
    if failed or missing:
        page += [
            "**Trials without scores:** "
            + ", ".join(
                f"{t['variant']} seed {t['seed']} ({'failed: ' + io.read_json(root / 'trials' / t['key'] / 'failed.json')['error'] if t in failed else 'not run'})"
                for t in {id(x): x for x in failed + missing}.values()
            ),
            "",
        ]

    # per-seed values of the table's scores at the final step
    last = final_values(df)
    shown = _metrics_of(t)
    ps = last[last["metric"].isin(shown)].pivot_table(
        index=["variant", "seed"], columns="metric", values="value", aggfunc="first"
    )
    if not ps.empty:
        ps = ps.reindex(columns=[m for m in shown if m in ps.columns])
        have = set(ps.index.get_level_values(0))
        rows = [
            f"| {v} | {s} | " + " | ".join(_fmt(float(x)) for x in ps.loc[(v, s)]) + " |"
            for v in order
            if v in have
            for s in sorted(ps.loc[v].index)
        ]
        page += [
            "<details><summary>Per-seed values at the final step</summary>",
            "",
            "| arm | seed | " + " | ".join(ps.columns) + " |",
            "| --- | ---: |" + " ---: |" * len(ps.columns),
            *rows,
            "",
            "</details>",
            "",
        ]

    # ---- over training --------------------------------------------------------------------------
    steps_of = {v: sorted(df[df["variant"] == v]["step"].unique()) for v in order}
    by_step = rep.get("by_step")
    if by_step:
        fractions = sorted(set(spec["eval_at"]))
        steps_per_key = df.groupby("key")["step"].apply(lambda s: sorted(s.unique()))
        rows = []
        for v in order:
            sub = df[df["variant"] == v]
            row = {"arm": v}
            for i, f in enumerate(fractions):
                lab = _step_label(b, order, i, f, steps_of) if not b.empty else f"{f:.0%} of budget"
                for m in by_step:
                    vals = [
                        sub[
                            (sub["key"] == k)
                            & (sub["step"] == steps_per_key[k][i])
                            & (sub["metric"].map(metric_base) == m)
                        ]["value"]
                        for k in sub["key"].unique()
                        if i < len(steps_per_key[k])
                    ]
                    vals = pd.concat(vals) if vals else pd.Series(dtype=float)
                    a = vals.to_numpy(float)
                    if not len(a):
                        row[f"{m} @ {lab}"] = "–"
                    elif not np.isfinite(a).all():
                        row[f"{m} @ {lab}"] = f"∞ ({int((~np.isfinite(a)).sum())} of {len(a)} seeds)"
                    else:
                        row[f"{m} @ {lab}"] = _fmt(float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else math.nan)
            note = (rep.get("notes") or {}).get(v)
            if note:
                row["note"] = note
            rows.append(row)
        bs = pd.DataFrame(rows)
        io.write_text(out / "by_step.csv", bs.to_csv(index=False))
        md = _md_table(bs)
        io.write_text(out / "by_step.md", md + "\n")
        page += [
            "## Over training",
            "",
            "Mean ± sd over seeds at each evaluation point (epochs as defined above).",
            "",
            md,
            "",
        ]

    # ---- convergence ------------------------------------------------------------------------------
    heads = select_metrics(sorted(set(df["metric"]), key=_metric_order), rep.get("figure_metrics") or columns)
    conv_rows = []
    for v in order:
        row = {"arm": v}
        for m in heads:
            cv = claims_mod.convergence(df, v, m)
            if cv["points"] < 2:
                row[m] = "one point"
            elif cv["delta"] != cv["delta"]:
                row[m] = "non-finite"
            else:
                state = "**still improving**" if cv["improving"] else ("still moving" if cv["moving"] else "settled")
                row[m] = f"{state} (Δ {_fmt(cv['delta'])}, sd {_fmt(cv['spread'])})"
        conv_rows.append(row)
    if heads and any(len(s) >= 2 for s in steps_of.values()):
        page += [
            "## Convergence",
            "",
            "Per arm and score: the mean over seeds of the change between the last two evaluation points (Δ) "
            "against the seed spread at the last point (sd). |Δ| > sd in the better direction: still improving "
            "at the end of the budget; claims on such an arm say so.",
            "",
            _md_table(pd.DataFrame(conv_rows)),
            "",
        ]

    # ---- claims -----------------------------------------------------------------------------------
    if parsed:
        decided = claims_mod.decide(parsed, df, order, spec.get("eval_at") or ())
        md = claims_mod.to_markdown(decided)
        along = claims_mod.along_training(parsed, df, order, spec.get("eval_at") or ())
        # plan for the page as it stands: m claims that are tests, Holm's strictest level α / m
        planned = max(1, sum(r["verdict"] != claims_mod.NOT_A_TEST for r in decided))
        fractions = sorted(float(f) for f in spec["eval_at"])
        resolve_md, resolve_rows = resolution_table(decided, along, fractions, planned)
        io.write_text(out / "claims.md", md + "\n\n" + resolve_md + "\n")
        frame = claims_mod.to_frame(decided).merge(resolve_rows, on=["claim", "vs"], how="left")
        io.write_text(out / "claims.csv", frame.to_csv(index=False))
        tested = sum(not math.isnan(r["p"]) for r in decided)
        page += [
            "## Claims against measurements",
            "",
            f"Each claim is decided over seeds by its stated test (Welch's t-test, or a bootstrap of the "
            f"difference of means with {claims_mod.BOOTSTRAP_RESAMPLES:,} resamples, seed "
            f"{claims_mod.BOOTSTRAP_SEED}); α = {claims_mod.ALPHA}, Holm-corrected over the {tested} tested "
            f"claim(s) of this page. Intervals are 95 % (unadjusted). Fewer than {claims_mod.MIN_SEEDS} seeds in "
            "an arm, or an ∞ among its values: not resolved. A claim against several arms holds only if it holds "
            "against each (its p is the largest). Claims that hold by construction are shown, not tested.",
            "",
            md,
            "",
            "### Where the question resolves",
            "",
            "Each claim decided again as if the budget had ended at each evaluation point (the same test and "
            "Holm correction over the page): S supported, C contradicted, · not resolved, – not a test. "
            '"Resolves from" is the first point from which the final verdict holds to the end. For a claim '
            f"not resolved, the seeds per arm a two-sample t-test would need for {claims_mod.POWER:.0%} power at "
            f"α / m = {claims_mod.ALPHA} / {planned} (the strictest level of Holm's procedure over this page's "
            f"{planned} claims that are tests) if the observed difference and pooled sd were the truth: a "
            "planning figure, not a verdict; a longer budget may change the difference itself.",
            "",
            resolve_md,
            "",
            "[claims.csv](claims.csv)",
            "",
        ]

    # ---- references ---------------------------------------------------------------------------------
    if rep.get("references"):
        page += [
            "## Published reference figures (cited, not measured here)",
            "",
            "Beside each, the matching arm measured here in the same statistic (sd or se over its seeds).",
            "",
            references_markdown(rep["references"], df),
            "",
        ]

    # ---- figures ------------------------------------------------------------------------------------
    fig_metrics = rep.get("figure_metrics") or _metrics_of(t)[:6]
    figs = []
    if rep.get("x"):
        figs.append(
            (
                "Scores against " + rep["x"],
                fig_metric_vs_value(
                    df, rep["x"], fig_metrics, out / f"metric_vs_{rep['x']}.png", rep.get("xscale", "linear"), colours
                ),
            )
        )
    figs.append(
        (
            "Scores over training (each seed a dot, the mean a line)",
            fig_metrics_vs_step(df, order, fig_metrics, out / "metrics_vs_step.png", colours),
        )
    )
    if not b.empty and b["n_critic"].nunique() > 1:
        nc = {v: float(b[b["arm"] == v]["n_critic"].iloc[0]) for v in order if (b["arm"] == v).any()}
        figs.append(
            (
                "Scores against critic updates (matched critic compute)",
                fig_metrics_vs_step(
                    df,
                    order,
                    fig_metrics,
                    out / "metrics_vs_critic_updates.png",
                    colours,
                    nc,
                    "critic updates (generator step × n_critic)",
                ),
            )
        )
    figs.append(("Samples (fixed noise, final step)", fig_samples(index, order, root, out / "samples.png")))
    if any(family(d) == "points" for d in datasets if d):
        figs.append(
            (
                "Every scored sample and the mode centres",
                fig_mixture_scatter(index, order, root, out / "scatter.png", colours),
            )
        )
    figs.append(("Coverage", fig_coverage(used, index, order, out / "coverage.png")))
    figs.append(
        ("Coverage over training", fig_coverage_over_training(used, index, order, out / "coverage_over_training.png"))
    )
    if tsne if tsne is not None else rep.get("tsne", True):
        name = fig_tsne(index, order, root, out / "tsne.png")
        figs.append(("t-SNE of classifier features (real | generated)", name))
        if name is None and any(r.get("dataset") not in ("ring8", "grid25") for r in used):
            notes.append(
                "no t-SNE figure: no record of the `tsne` metric (score one with `ganbench evaluate RUN "
                "--metrics tsne`); the report never scores a run"
            )
    figs.append(
        ("Training dynamics (seed 0 of each arm)", fig_dynamics(index, order, root, out / "dynamics.png", colours))
    )
    if any(d in ("ring8", "grid25") for d in datasets):
        notes.append(
            "2D points: samples.png shows the fixed-noise samples of the first seed beside the real points; "
            "a scatter of all scored samples with the mode centres needs the scored points, which the "
            "records do not keep (their mode histograms are in coverage.png)"
        )
    page += ["## Figures", "", "One colour per arm in every panel (fixed from the arm order).", ""]
    for title, name in figs:
        if name:
            page += [f"### {title}", "", f"![{title}]({name})", ""]
    if notes:
        page += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return page


def _parallel_lines_section(index, root: Path, out: Path) -> List[str]:

    frames = []
    for t in index["trials"]:
        p = root / "trials" / t["key"] / "parallel_lines.csv"
        if p.exists():
            frames.append(pd.read_csv(p).assign(seed=t["seed"]))
    if not frames:
        raise UserError(f"study '{index['study']}' has no results yet; run 'ganbench study run' for it first")
    df = pd.concat(frames)
    io.write_text(out / "per_seed.csv", df.to_csv(index=False))
    mean = df.groupby("theta", as_index=False).mean(numeric_only=True).drop(columns=["seed"])
    io.write_text(out / "table.csv", mean.to_csv(index=False))
    md = parallel_lines.markdown_table(mean)
    io.write_text(out / "table.md", md + "\n")
    parallel_lines.plot(mean, out / "js_vs_em.png")
    return [
        "## Results",
        "",
        f"Mean over {df['seed'].nunique()} seed(s); every seed: [per_seed.csv](per_seed.csv).",
        "",
        parallel_lines.TABLE_NOTE,
        "",
        md,
        "",
        "![Distances against θ, and the size and direction of the generator gradient each gives](js_vs_em.png)",
        "",
    ]

"""The report stage: tables (Markdown, CSV, LaTeX) and figures of a study, built only from its records.

``ganbench report STUDY`` reads the study's index (``results/studies/<name>-<preset>.json``), each
trial's ``metrics.jsonl`` and ``log.jsonl``, and writes ``reports/<name>/``:

    README.md            the page: tables, figures, command, commit, torch version, device, evaluator
    table.md/.csv/.tex   each metric as mean ± std over seeds at the final step, best per column marked
    by_step.md/.csv      chosen metrics at each evaluation point (e.g. classes covered after 10/50/100 ep)
    claims.md            (when the spec has claims) each claim beside what was measured, supported or not
    metric_vs_<x>.png    metric against the varied value, error bars over seeds
    metrics_vs_step.png  metrics against training step per variant
    samples.png          fixed-noise sample grids of the variants side by side at equal steps
    coverage.png         per-class (or per-mode) share heatmap, variant x class
    tsne.png             t-SNE of classifier features, real vs generated, per variant
    dynamics.png         critic/generator losses, |grad D| at the interpolates, Wasserstein estimate

A report never mixes evaluators or code versions silently: the page says so when it does.
"""
from __future__ import annotations

import json
import math
import platform
import re
import shlex
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from benchmark import io
from benchmark.errors import UserError

# Which way is better, by score-name prefix (protocol suffixes like 10k_test follow the prefix).
LOWER = ("fid", "kid", "intra_fid", "class_kl", "kl", "rkl")
HIGHER = ("is", "precision", "recall", "classes_covered", "mode_score", "modes", "hq", "label_agreement",
          "class_entropy")


def metric_base(name: str) -> str:
    """'fid10k_test' -> 'fid'; 'kid_std10k_test' -> 'kid_std'; 'd_loss_var_last200' -> 'd_loss_var_last'."""
    return re.sub(r"\d+k?(_(test|train))?$", "", name)


def direction(name: str) -> int:
    """-1 lower is better, +1 higher is better, 0 no preferred direction."""
    b = metric_base(name)
    if b in LOWER:
        return -1
    if b in HIGHER:
        return 1
    return 0


# ------------------------------------------------------------------------------------------------
# collecting records


def load_index(study: str, preset: Optional[str], root: Path) -> Dict[str, Any]:
    cands = sorted((root / "studies").glob(f"{study}-*.json")) if (root / "studies").is_dir() else []
    if preset:
        cands = [c for c in cands if c.stem == f"{study}-{preset}"]
    if not cands:
        raise UserError(f"no results for study '{study}'{f' at preset {preset}' if preset else ''} under "
                        f"'{root / 'studies'}'; run 'ganbench study run studies/{study}.yaml' first")
    if len(cands) > 1:
        raise UserError(f"study '{study}' has results at several presets ({', '.join(c.stem for c in cands)}); "
                        "pick one with --preset")
    return io.read_json(cands[0])


def collect(index: Dict[str, Any], root: Path) -> Tuple[pd.DataFrame, List[Dict[str, Any]]]:
    """Long table (variant, seed, step, metric, value, ...) and the records used."""
    spec = index["spec"]
    rows, used = [], []
    want = set(spec.get("metrics") or []) or None
    for t in index["trials"]:
        d = root / "trials" / t["key"] / "run"
        recs = io.read_jsonl(d / "metrics.jsonl")
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
            used.append(r)
            for m, v in r["metrics"].items():
                rows.append({"variant": t["variant"], "seed": t["seed"], "step": step, "key": t["key"],
                             "metric": m, "value": v, **{f"axis:{k}": v2 for k, v2 in t["values"].items()}})
    return pd.DataFrame(rows), used


def _fmt(mean: float, std: float) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    mag = abs(mean)
    digits = 0 if mag >= 100 else 1 if mag >= 10 else 2 if mag >= 1 else 3
    if isinstance(std, float) and not math.isnan(std):
        return f"{mean:.{digits}f} ± {std:.{digits}f}"
    return f"{mean:.{digits}f}"


def summary_table(df: pd.DataFrame, order: List[str], columns: Optional[List[str]] = None, step: str = "final"
                  ) -> pd.DataFrame:
    """variant x metric: mean, std, n over seeds at each trial's last scored step."""
    if df.empty:
        return pd.DataFrame()
    last = df[df["step"] == df.groupby("key")["step"].transform("max")] if step == "final" else df
    g = last.groupby(["variant", "metric"])["value"].agg(["mean", "std", "count"]).reset_index()
    metrics = select_metrics(sorted(g["metric"].unique(), key=_metric_order), columns)
    out = {}
    for m in metrics:
        sub = g[g["metric"] == m].set_index("variant")
        out[(m, "mean")] = sub["mean"]
        out[(m, "std")] = sub["std"]
        out[(m, "n")] = sub["count"]
    t = pd.DataFrame(out)
    return t.reindex([v for v in order if v in t.index])


def select_metrics(available: List[str], wanted: Optional[List[str]]) -> List[str]:
    """``wanted`` names scores exactly or by base name ('fid' matches fid10k_test and fid5k_test)."""
    if not wanted:
        return list(available)
    out = [m for w in wanted for m in available if m == w or metric_base(m) == w]
    return list(dict.fromkeys(out))


def _metric_order(m: str) -> Tuple[int, str]:
    first = ["fid", "kid", "is", "precision", "recall", "classes_covered", "class_kl", "class_entropy", "mode_score",
             "label_agreement", "intra_fid", "lpips", "lpips_real", "lpips_class", "modes", "hq", "kl", "rkl",
             "grad_norm_mean_last", "grad_norm_std_last", "wdist_mean_last"]
    b = metric_base(m)
    return (first.index(b) if b in first else len(first), m)


def best_rows(t: pd.DataFrame) -> Dict[str, Optional[str]]:
    best = {}
    for m in dict.fromkeys(c[0] for c in t.columns):
        d = direction(m)
        col = t[(m, "mean")].dropna()
        best[m] = None if d == 0 or col.empty or col.nunique() < 2 else (col.idxmin() if d < 0 else col.idxmax())
    return best


def to_markdown(t: pd.DataFrame, label: str = "variant") -> str:
    metrics = list(dict.fromkeys(c[0] for c in t.columns))
    best = best_rows(t)
    arrows = {-1: " ↓", 1: " ↑", 0: ""}
    lines = ["| " + label + " | " + " | ".join(f"{m}{arrows[direction(m)]}" for m in metrics) + " |",
             "| --- |" + " ---: |" * len(metrics)]
    for v in t.index:
        cells = []
        for m in metrics:
            s = _fmt(t.loc[v, (m, "mean")], t.loc[v, (m, "std")])
            cells.append(f"**{s}**" if best[m] == v else s)
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _tex_escape(s: str) -> str:
    return (str(s).replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
            .replace("#", r"\#").replace("±", r"$\pm$").replace("λ", r"$\lambda$"))


def to_latex(t: pd.DataFrame, caption: str) -> str:
    metrics = list(dict.fromkeys(c[0] for c in t.columns))
    best = best_rows(t)
    arrows = {-1: r" $\downarrow$", 1: r" $\uparrow$", 0: ""}
    out = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{l" + "r" * len(metrics) + "}", r"\toprule",
           "variant & " + " & ".join(_tex_escape(m) + arrows[direction(m)] for m in metrics) + r" \\", r"\midrule"]
    for v in t.index:
        cells = []
        for m in metrics:
            s = _tex_escape(_fmt(t.loc[v, (m, "mean")], t.loc[v, (m, "std")]))
            cells.append(rf"\textbf{{{s}}}" if best[m] == v else s)
        out.append(_tex_escape(v) + " & " + " & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_tex_escape(caption)}}}", r"\end{table}"]
    return "\n".join(out) + "\n"


def to_csv(t: pd.DataFrame) -> str:
    flat = t.copy()
    flat.columns = [f"{m}_{s}" for m, s in flat.columns]
    return flat.rename_axis("variant").reset_index().to_csv(index=False)


# ------------------------------------------------------------------------------------------------
# claims: a spec's statements set beside the measurement


def evaluate_claims(claims: List[Dict[str, Any]], t: pd.DataFrame) -> List[Dict[str, str]]:
    """Each claim: {variant, claim, check, measure}. ``check`` is an expression over mean(metric, variant),
    std(metric, variant); ``measure`` lists the metrics quoted beside it."""

    def _get(kind: str, m: str, v: str) -> float:
        matches = [c for c in dict.fromkeys(c[0] for c in t.columns) if c == m or metric_base(c) == m]
        if not matches or v not in t.index:
            raise KeyError(f"{m} @ {v}")
        return float(t.loc[v, (matches[0], kind)])

    env = {"mean": lambda m, v: _get("mean", m, v), "std": lambda m, v: _get("std", m, v), "abs": abs, "min": min,
           "max": max}
    out = []
    for c in claims:
        try:
            ok = bool(eval(c["check"], {"__builtins__": {}, **env}))  # the spec's own expression
            verdict = "supported" if ok else "not supported"
        except (KeyError, ValueError, ZeroDivisionError) as e:
            verdict = f"not measured ({e})"
        measured = []
        for m in c.get("measure", []):
            try:
                measured.append(f"{m} {_fmt(_get('mean', m, c['variant']), _get('std', m, c['variant']))}")
            except KeyError:
                measured.append(f"{m} –")
        out.append({"variant": c["variant"], "claim": c["claim"], "measured": "; ".join(measured),
                    "test": c["check"], "verdict": verdict})
    return out


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


def fig_metric_vs_value(df: pd.DataFrame, x: str, metrics: List[str], path: Path, xscale: str = "linear") -> Optional[str]:
    col = f"axis:{x}"
    if df.empty or col not in df:
        return None
    last = df[df["step"] == df.groupby("key")["step"].transform("max")]
    metrics = select_metrics(sorted(set(last["metric"]), key=_metric_order), metrics)
    if not metrics:
        return None
    plt = _plt()
    r, c = _grid(len(metrics))
    fig, axes = plt.subplots(r, c, figsize=(4.2 * c, 3.2 * r), squeeze=False)
    groups = last["axis:variant"].fillna("") if "axis:variant" in last else pd.Series("", index=last.index)
    for ax, m in zip(axes.flat, metrics):
        sub = last[last["metric"] == m]
        for gname, gsub in sub.groupby(groups[sub.index]):
            agg = gsub.groupby(col)["value"].agg(["mean", "std"]).sort_index()
            ax.errorbar(agg.index.astype(float), agg["mean"], yerr=agg["std"].fillna(0), marker="o", capsize=3,
                        label=gname or None)
        ax.set_xscale("symlog", linthresh=0.1) if xscale == "symlog" else ax.set_xscale(xscale)
        ax.set_xlabel(x)
        ax.set_title(m)
        ax.grid(alpha=0.3)
        if groups.nunique() > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.suptitle(f"final scores against {x} (mean ± std over seeds)")
    fig.tight_layout()
    return _save(fig, path)


def fig_metrics_vs_step(df: pd.DataFrame, order: List[str], metrics: List[str], path: Path) -> Optional[str]:
    metrics = select_metrics(sorted(set(df["metric"]), key=_metric_order), metrics) if not df.empty else []
    if not metrics or df["step"].nunique() < 2:
        return None
    plt = _plt()
    r, c = _grid(len(metrics))
    fig, axes = plt.subplots(r, c, figsize=(4.2 * c, 3.2 * r), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        sub = df[df["metric"] == m]
        for v in order:
            agg = sub[sub["variant"] == v].groupby("step")["value"].agg(["mean", "std"])
            if agg.empty:
                continue
            ax.plot(agg.index, agg["mean"], marker="o", label=v)
            ax.fill_between(agg.index, agg["mean"] - agg["std"].fillna(0), agg["mean"] + agg["std"].fillna(0), alpha=0.15)
        ax.set_xlabel("generator step")
        ax.set_title(m)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def fig_samples(index: Dict[str, Any], order: List[str], root: Path, path: Path) -> Optional[str]:
    seed0 = min(t["seed"] for t in index["trials"])
    first = {t["variant"]: t for t in index["trials"] if t["seed"] == seed0}
    imgs = []
    for v in order:
        t = first.get(v)
        if not t:
            continue
        pngs = sorted((root / "trials" / t["key"] / "run" / "samples").glob("step_*.png"))
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
    for ax in list(axes.flat)[len(imgs):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def fig_coverage(used: List[Dict[str, Any]], index: Dict[str, Any], order: List[str], path: Path) -> Optional[str]:
    var_of = {t["key"]: t["variant"] for t in index["trials"]}
    last: Dict[str, Dict[str, Any]] = {}
    for r in used:
        k = Path(r.get("run", "")).parent.name
        if k in var_of and (k not in last or r["step"] > last[k]["step"]):
            last[k] = r
    hists: Dict[str, List[np.ndarray]] = {}
    label = "class"
    for k, r in last.items():
        for name, h in (r.get("details") or {}).items():
            if "hist" in name and isinstance(h, list) and len(h) <= 100:
                label = "mode" if name.startswith("mode") else "predicted class"
                a = np.asarray(h, dtype=float)
                hists.setdefault(var_of[k], []).append(a / max(a.sum(), 1))
    rows = [v for v in order if v in hists]
    if not rows:
        return None
    width = max(len(h) for v in rows for h in hists[v])  # variants may differ (8 modes vs 10 classes)
    mat = np.full((len(rows), width), np.nan)
    for i, v in enumerate(rows):
        m = np.mean([h for h in hists[v] if len(h) == len(hists[v][0])], 0)
        mat[i, : len(m)] = m
    if len({len(hists[v][0]) for v in rows}) > 1:
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


def fig_tsne(index: Dict[str, Any], order: List[str], root: Path, path: Path, spec: Dict[str, Any]) -> Optional[str]:
    """t-SNE panels of the first seed's final checkpoint per variant (scored once, then cached)."""
    from benchmark.evaluation.runs import evaluate_run
    from benchmark.train import list_checkpoints

    seed0 = min(t["seed"] for t in index["trials"])
    pngs = []
    for v in order:
        t = next((t for t in index["trials"] if t["variant"] == v and t["seed"] == seed0), None)
        d = root / "trials" / t["key"] / "run" if t else None
        if d is None or not (d / "done.json").exists():
            continue
        from benchmark.data import dataset_info
        from benchmark.train import read_run_config

        if dataset_info(read_run_config(d).dataset)[2] != "image":
            continue
        step = list_checkpoints(d)[-1]
        recs = evaluate_run(d, steps=[step], metrics=["tsne"], num_samples=min(2000, spec["num_samples"]),
                            split=spec["split"], progress=False)
        p = next((val for r in recs for k, val in (r.get("details") or {}).items() if "tsne" in k and isinstance(val, str)), None)
        if p and Path(p).exists():
            pngs.append((v, Path(p)))
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


def fig_dynamics(index: Dict[str, Any], order: List[str], root: Path, path: Path) -> Optional[str]:
    seed0 = min(t["seed"] for t in index["trials"])
    logs = {}
    for v in order:
        t = next((t for t in index["trials"] if t["variant"] == v and t["seed"] == seed0), None)
        if t:
            log = io.read_jsonl(root / "trials" / t["key"] / "run" / "log.jsonl")
            if log:
                logs[v] = pd.DataFrame(log).set_index("step")
    if not logs:
        return None
    panels = [("d_loss", "critic loss"), ("g_loss", "generator loss"), ("grad_norm_mean", "|∇D| at interpolates"),
              ("wdist", "Wasserstein estimate")]
    panels = [p for p in panels if any(p[0] in l for l in logs.values())]
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), squeeze=False)
    for ax, (k, title) in zip(axes.flat, panels):
        for v, l in logs.items():
            if k in l:
                s = l[k].dropna()
                w = max(1, len(s) // 50)
                ax.plot(s.index, s.rolling(w, min_periods=1).mean(), label=v, lw=1)
        if k == "grad_norm_mean":
            ax.axhline(1.0, color="k", ls=":", lw=0.8)
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("generator step")
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"training dynamics (seed {seed0}, rolling mean)")
    fig.tight_layout()
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------
# the page


def _env_lines(index: Dict[str, Any], used: List[Dict[str, Any]], root: Path) -> List[str]:
    import torch

    runs = [io.read_json(p) for t in index["trials"]
            if (p := root / "trials" / t["key"] / "run" / "run.json").exists()]
    devices = sorted({f"{r.get('device')} ({r.get('device_name')}, {r.get('threads')} threads)" for r in runs})
    torches = sorted({r.get("torch") for r in runs} | {r.get("torch_version") for r in used} - {None})
    commits = sorted({r.get("git_commit") for r in runs} | {r.get("git_commit") for r in used} - {None})
    by_data: Dict[str, set] = {}
    for r in used:
        by_data.setdefault(r.get("dataset", "?"), set()).add(json.dumps(r.get("evaluator"), sort_keys=True))
    lines = [
        f"- command: `{index['command']}`",
        f"- preset: `{index['preset'] or 'default'}`; seeds: {sorted({t['seed'] for t in index['trials']})}",
        f"- code (git commit of the trials and scores): {', '.join(f'`{c}`' for c in commits) or 'unknown'}",
        f"- torch: {', '.join(torches) or torch.__version__}; device: {'; '.join(devices) or 'unknown'}; "
        f"Python {platform.python_version()}",
    ]
    for data, evs in sorted(by_data.items()):
        for e in sorted(evs):
            ev = json.loads(e) or {}
            lines.append(f"- evaluator for {data}: {ev.get('name')} sha256 `{ev.get('sha256')}`; classifier sha256 "
                         f"`{ev.get('classifier_sha256')}`; LPIPS backbone: {ev.get('lpips_backbone')}")
        if len(evs) > 1:
            lines.append(f"- **warning: {data} scores come from {len(evs)} different evaluators; compare rows with care**")
    if len([c for c in commits if c]) > 1:
        lines.append(f"- **note: trials and scores come from {len(commits)} code versions (listed above)**")
    return lines


def build_report(study: str, preset: Optional[str] = None, root: Optional[str | Path] = None,
                 out_root: str | Path = "reports", tsne: Optional[bool] = None) -> Path:
    from benchmark.study.runner import results_root

    root = results_root(root)
    index = load_index(study, preset, root)
    spec = index["spec"]
    out = Path(out_root) / study
    out.mkdir(parents=True, exist_ok=True)
    rep = spec.get("report") or {}
    title = spec.get("title") or study
    page = [f"# {title}", "", spec.get("description", "").strip(), ""]
    if spec["kind"] == "parallel-lines":
        page += _parallel_lines_section(index, root, out)
    else:
        page += _gan_sections(index, spec, rep, root, out, tsne)
    page += ["", "## Provenance", ""] + _env_lines(index, [] if spec["kind"] != "gan" else collect(index, root)[1], root)
    page += ["", f"Regenerate this page from the stored records with `ganbench report {study} --preset {index['preset']}`."]
    io.write_text(out / "README.md", "\n".join(page).replace("\n\n\n", "\n\n") + "\n")
    return out


def _gan_sections(index, spec, rep, root: Path, out: Path, tsne: Optional[bool]) -> List[str]:
    df, used = collect(index, root)
    order = list(dict.fromkeys(t["variant"] for t in index["trials"]))
    page: List[str] = []
    missing = [t for t in index["trials"] if not (root / "trials" / t["key"] / "run" / "metrics.jsonl").exists()]
    failed = [t for t in index["trials"] if (root / "trials" / t["key"] / "failed.json").exists()]
    if df.empty:
        raise UserError(f"study '{spec['name']}' has no scores yet; run 'ganbench study run' for it first")
    columns = rep.get("columns")
    t = summary_table(df, order, columns)
    evs = sorted({json.dumps(r.get("evaluator"), sort_keys=True) for r in used})
    ev_text = "; ".join(
        f"{e.get('name')}" + (f" sha256 {str(e.get('sha256'))[:12]}" if e.get("sha256") else "")
        + (f", LPIPS backbone {e.get('lpips_backbone')}" if e.get("lpips_backbone") else "")
        for e in (json.loads(x) or {} for x in evs))
    caption = (f"{spec.get('title') or spec['name']}: mean ± std over {len(spec['seeds'])} seed(s) at the final step; "
               f"best per column in bold. Preset {spec.get('preset') or 'default'}; evaluator: {ev_text}.")
    io.write_text(out / "table.md", to_markdown(t) + "\n\n" + caption + "\n")
    io.write_text(out / "table.csv", to_csv(t))
    io.write_text(out / "table.tex", to_latex(t, caption))
    page += ["## Results", "", to_markdown(t), "", f"_{caption}_", "",
             "Tables: [Markdown](table.md) · [CSV](table.csv) · [LaTeX](table.tex)", ""]
    if failed or missing:
        page += ["**Trials without scores:** " + ", ".join(
            f"{t['variant']} seed {t['seed']} ({'failed: ' + io.read_json(root / 'trials' / t['key'] / 'failed.json')['error'] if t in failed else 'not run'})"
            for t in {id(x): x for x in failed + missing}.values()), ""]

    by_step = rep.get("by_step")
    if by_step:
        labels = spec.get("eval_labels") or []
        steps_per_key = df.groupby("key")["step"].apply(lambda s: sorted(s.unique()))
        rows = []
        for v in order:
            sub = df[(df["variant"] == v)]
            row = {"variant": v}
            for i in range(len(spec["eval_at"])):
                lab = labels[i] if i < len(labels) else f"eval {i + 1}"
                for m in by_step:
                    vals = [sub[(sub["key"] == k) & (sub["step"] == steps_per_key[k][i]) & (sub["metric"].map(metric_base) == m)]["value"]
                            for k in sub["key"].unique() if i < len(steps_per_key[k])]
                    vals = pd.concat(vals) if vals else pd.Series(dtype=float)
                    row[f"{m} @ {lab}"] = _fmt(vals.mean(), vals.std()) if len(vals) else "–"
            note = (rep.get("notes") or {}).get(v)
            if note:
                row["note"] = note
            rows.append(row)
        bs = pd.DataFrame(rows)
        io.write_text(out / "by_step.csv", bs.to_csv(index=False))
        md = "| " + " | ".join(bs.columns) + " |\n| " + " | ".join("---" for _ in bs.columns) + " |\n" + "\n".join(
            "| " + " | ".join(str(x) for x in r) + " |" for r in bs.fillna("").itertuples(index=False))
        io.write_text(out / "by_step.md", md + "\n")
        page += ["## Over training", "", md, ""]

    if rep.get("claims"):
        claims = evaluate_claims(rep["claims"], summary_table(df, order))  # every metric, not only the shown columns
        md = "| variant | claim (tutorials) | measured | test | verdict |\n| --- | --- | --- | --- | --- |\n" + "\n".join(
            f"| {c['variant']} | {c['claim']} | {c['measured']} | `{c['test']}` | {c['verdict']} |" for c in claims)
        io.write_text(out / "claims.md", md + "\n")
        page += ["## Claims against measurements", "", md, ""]

    if rep.get("references"):
        refs = rep["references"]
        cols = list(dict.fromkeys(k for r in refs for k in r))
        md = "| " + " | ".join(cols) + " |\n| " + " | ".join("---" for _ in cols) + " |\n" + "\n".join(
            "| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in refs)
        page += ["## Published reference figures (cited, not measured here)", "", md, ""]

    fig_metrics = rep.get("figure_metrics") or list(dict.fromkeys(c[0] for c in t.columns))[:6]
    figs = []
    if rep.get("x"):
        figs.append(("Scores against " + rep["x"], fig_metric_vs_value(df, rep["x"], fig_metrics, out / f"metric_vs_{rep['x']}.png",
                                                                        rep.get("xscale", "linear"))))
    figs.append(("Scores over training", fig_metrics_vs_step(df, order, fig_metrics, out / "metrics_vs_step.png")))
    figs.append(("Samples (fixed noise, final step)", fig_samples(index, order, root, out / "samples.png")))
    figs.append(("Coverage", fig_coverage(used, index, order, out / "coverage.png")))
    if tsne if tsne is not None else rep.get("tsne", True):
        figs.append(("t-SNE of classifier features (real | generated)", fig_tsne(index, order, root, out / "tsne.png", spec)))
    figs.append(("Training dynamics", fig_dynamics(index, order, root, out / "dynamics.png")))
    page += ["## Figures", ""]
    for title, name in figs:
        if name:
            page += [f"### {title}", "", f"![{title}]({name})", ""]
    return page


def _parallel_lines_section(index, root: Path, out: Path) -> List[str]:
    from benchmark.study import parallel_lines

    frames = []
    for t in index["trials"]:
        p = root / "trials" / t["key"] / "parallel_lines.csv"
        if p.exists():
            frames.append(pd.read_csv(p).assign(seed=t["seed"]))
    if not frames:
        raise UserError(f"study '{index['study']}' has no results yet; run 'ganbench study run' for it first")
    df = pd.concat(frames)
    mean = df.groupby("theta", as_index=False).mean(numeric_only=True).drop(columns=["seed"])
    io.write_text(out / "table.csv", mean.to_csv(index=False))
    md = parallel_lines.markdown_table(mean)
    io.write_text(out / "table.md", md + "\n")
    parallel_lines.plot(mean, out / "js_vs_em.png")
    return ["## Results", "", f"Mean over {df['seed'].nunique()} seed(s).", "", md, "",
            "![JS, KL and EM against θ, and the generator gradient each gives](js_vs_em.png)", ""]

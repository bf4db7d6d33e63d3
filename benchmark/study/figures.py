"""A page's score figures, from the long scores frame and the records: nothing is read from disk or computed.

Every figure function returns a matplotlib figure (or None when it has nothing to draw); the report saves it
(``save``). One colour per arm on every panel and page, fixed from the study's arm order (``arm_colours``: tab10,
then colours generated farthest-first, so no two arms share one however many there are); an ∞ is never
averaged: a seed with a non-finite score is a triangle on the panel's top edge. With a ``Look``, each dataset's
arms get panels of their own (ring8's 8 modes and grid25's 25 never share an axis), the real-data and
known-failure levels are reference lines, and arms that did not learn are dashed and marked † in the legend.

* ``metric_vs_value``: final scores against the varied value, each seed a dot, the mean a line;
* ``metrics_vs_step``: scores over training (or over critic updates: a factor per arm);
* ``dynamics``: the first seed's critic and generator losses, |∇D| at the interpolates, Wasserstein estimate.

The one-panel-per-arm figures (samples, scatter, coverage, t-SNE) are ``panels.py``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from benchmark import io
from benchmark.evaluation.failures import REAL
from benchmark.evaluation.scores import direction
from benchmark.study.records import StudyRecords
from benchmark.study.render import NOT_LEARNED
from benchmark.study.stats import final_values, mean_if_finite
from benchmark.study.tables import metric_order, select_metrics
from benchmark.study.validity import Level

SAVE = {"bbox_inches": "tight", "dpi": 100}  # how a page's figures are written
GRID = 13  # candidate colours per channel for arms beyond tab10's ten


def plt():
    """pyplot on the Agg backend, imported on first use: it takes about 1.2 s to import (measured), which every
    study worker (they import the kinds, which own their pages) would pay for nothing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def save(fig: Any, path: Path, **savefig: Any) -> str:
    """Write ``fig`` atomically (``SAVE`` unless told otherwise), close it; returns the file's name."""
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, **(savefig or SAVE))
    plt().close(fig)
    return path.name


def grid(n: int, per_row: int = 3) -> Tuple[int, int]:
    cols = min(n, per_row)
    return max(1, math.ceil(n / cols)), max(1, cols)


def distinct_colours(n: int) -> List[Tuple[float, float, float, float]]:
    """``n`` RGBA colours, no two alike: tab10's ten, then, one at a time, the candidate (a GRID³ lattice of
    RGB, without near-whites and the greys of the reference lines) farthest from every colour chosen so far."""
    cmap = plt().get_cmap("tab10")
    chosen = [np.asarray(cmap(i)[:3]) for i in range(min(n, 10))]
    if n > 10:
        v = np.linspace(0, 1, GRID)
        cand = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(-1, 3)
        keep = (cand.min(1) < 0.8) & (cand.max(1) - cand.min(1) > 0.15)
        cand = cand[keep]
        dist = np.min([np.linalg.norm(cand - c, axis=1) for c in chosen], axis=0)
        while len(chosen) < n and len(cand):
            i = int(np.argmax(dist))
            chosen.append(cand[i])
            dist = np.minimum(dist, np.linalg.norm(cand - cand[i], axis=1))
            dist[i] = -1.0
    return [(float(c[0]), float(c[1]), float(c[2]), 1.0) for c in chosen]


def arm_colours(order: Sequence[str]) -> Dict[str, Any]:
    """One fixed colour per arm, from the study's arm order (built once; an arm missing a key or a record
    never shifts the others' colours), distinct for any number of arms."""
    return dict(zip(order, distinct_colours(len(order))))


@dataclass(frozen=True)
class Look:
    """What a page's score figures know beyond the frame: colours, each arm's dataset (panels per dataset), the
    arms that did not learn (dashed, † in the legend), the levels (reference lines)."""

    colours: Dict[str, Any]
    datasets: Mapping[str, str] = field(default_factory=dict)
    not_learned: FrozenSet[str] = frozenset()
    levels: Sequence[Level] = ()


def panels_of(df: pd.DataFrame, metrics: Sequence[str], look: Optional[Look]) -> List[Tuple[str, Optional[str], Any]]:
    """(score, dataset or None, its rows) per panel: one per score, or per score and dataset when the arms
    span several datasets (never two datasets on one axis)."""
    ds = df["variant"].map(dict(look.datasets)) if look is not None and look.datasets else None
    several = ds is not None and ds.dropna().nunique() > 1
    out = []
    for m in metrics:
        sub = df[df["metric"] == m]
        if not several:
            one = next(iter(ds[sub.index].dropna().unique()), None) if ds is not None else None
            out.append((m, one, sub))
            continue
        for d in dict.fromkeys(ds[sub.index].dropna()):
            out.append((m, d, sub[ds[sub.index] == d]))
    return out


def reference_lines(ax, look: Optional[Look], metric: str, dataset: Optional[str]) -> None:
    """Real data (black, dashed) and each known failure (grey, dotted) at their level, labelled just above the
    line at the right, inside the axes (levels at the same value share one line and one label)."""
    if look is None:
        return
    import matplotlib.transforms as mtransforms  # with pyplot (see plt)

    tr = mtransforms.blended_transform_factory(ax.transAxes, ax.transData)
    names = {lv.dataset for lv in look.levels}
    at: Dict[float, List[str]] = {}
    for lv in look.levels:
        v = lv.scores.get(metric)
        if v is None or not math.isfinite(v) or (lv.dataset != dataset and (dataset is not None or len(names) > 1)):
            continue
        at.setdefault(float(v), []).append("real data" if lv.name == REAL else lv.label)
    for v, labels in at.items():
        real = "real data" in labels
        ax.axhline(v, color="k" if real else "0.55", ls="--" if real else ":", lw=0.8, zorder=0)
        # inside the axes and out of the layout: a long label must not squeeze the panels (tight_layout)
        t = ax.text(0.99, v, ", ".join(labels), transform=tr, fontsize=5, ha="right", va="bottom", color="0.3")
        t.set_in_layout(False)


def ylabel(m: str) -> str:
    return m + {-1: "  (↓ better)", 1: "  (↑ better)", 0: ""}[direction(m)]


def legend(fig, colours: Dict[str, Any], arms: Sequence[str], not_learned: FrozenSet[str] = frozenset()) -> None:
    """One legend for the figure, below the panels (off the data); an arm that did not learn dashed, with †."""
    from matplotlib.lines import Line2D  # with pyplot (see plt)

    handles = [
        Line2D(
            [],
            [],
            color=colours[a],
            marker="o",
            lw=1.5,
            ls="--" if a in not_learned else "-",
            label=f"{a} {NOT_LEARNED} (did not learn)" if a in not_learned else a,
        )
        for a in arms
    ]
    if handles:
        fig.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            ncol=min(4, len(handles)),
            fontsize=8,
            frameon=False,
        )


def _mark_nonfinite(ax, x: Sequence[float], colour: Any) -> None:
    """Seeds with a non-finite score: a triangle on the top edge of the panel, labelled ∞."""
    if len(x):
        import matplotlib.transforms as mtransforms  # with pyplot (see plt)

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


def _arm_groups(last: pd.DataFrame, col: str) -> pd.Series:
    """What the mean line of a metric-vs-value panel connects: the arms of one named variant, or (x set per
    named variant, as n-critic's) the arms that share a budget (the same final step)."""
    groups = last["axis:variant"].fillna("") if "axis:variant" in last else pd.Series("", index=last.index)
    if groups.nunique() > 1 and (last.groupby(groups)[col].nunique() <= 1).all():
        groups = last["step"].astype(str)
    return groups


def metric_vs_value(
    df: pd.DataFrame,
    x: str,
    metrics: List[str],
    xscale: str = "linear",
    colours: Optional[Dict[str, Any]] = None,
    look: Optional[Look] = None,
):
    col = f"axis:{x}"
    if df.empty or col not in df:
        return None
    last = final_values(df)
    metrics = select_metrics(sorted(set(last["metric"]), key=metric_order), metrics)
    if not metrics:
        return None
    colours = colours or arm_colours(list(dict.fromkeys(df["variant"])))
    faint = look.not_learned if look is not None else frozenset()
    cells = panels_of(last, metrics, look)
    r, c = grid(len(cells))
    fig, axes = plt().subplots(r, c, figsize=(4.2 * c, 3.2 * r), squeeze=False)
    groups = _arm_groups(last, col)
    shown: List[str] = []
    for ax, (m, ds, sub) in zip(axes.flat, cells):
        for _, gsub in sub.groupby(groups[sub.index]):
            agg = gsub.groupby(col)["value"].apply(mean_if_finite).sort_index()
            ax.plot(agg.index.astype(float), agg.to_numpy(), color="0.4", lw=1, zorder=1)
            for arm, s in gsub.groupby("variant"):
                fin = np.isfinite(s["value"].to_numpy(float))
                alpha = 0.35 if arm in faint else 0.75
                ax.scatter(s[col].astype(float)[fin], s["value"][fin], color=colours[arm], s=14, alpha=alpha, zorder=2)
                _mark_nonfinite(ax, s[col].astype(float)[~fin].tolist(), colours[arm])
                mean = [mean_if_finite(s["value"])]
                ax.scatter([float(s[col].iloc[0])], mean, color=colours[arm], marker="_", s=200, zorder=3)
                shown.append(arm)
        reference_lines(ax, look, m, ds)
        ax.set_xscale("symlog", linthresh=0.1) if xscale == "symlog" else ax.set_xscale(xscale)
        ax.set_xlabel(x)
        ax.set_ylabel(ylabel(m), fontsize=8)
        if ds is not None and len({d for _, d, _ in cells}) > 1:
            ax.set_title(ds, fontsize=9)
        ax.grid(alpha=0.3)
    _headroom(axes.flat)
    for ax in list(axes.flat)[len(cells) :]:
        ax.axis("off")
    fig.suptitle(f"final scores against {x}: each seed a dot (∞: a triangle on top), the mean a bar and line")
    fig.tight_layout()
    legend(fig, colours, [a for a in colours if a in shown], faint)
    return fig


def metrics_vs_step(
    df: pd.DataFrame,
    order: List[str],
    metrics: List[str],
    colours: Optional[Dict[str, Any]] = None,
    x_per_arm: Optional[Dict[str, float]] = None,
    xlabel: str = "generator step",
    look: Optional[Look] = None,
):
    """Scores over training: each seed a dot, the mean over seeds a line. ``x_per_arm``: a factor on the step
    per arm (n_critic: critic updates, matched compute); ``look``: panels per dataset, reference lines, the arms
    that did not learn dashed."""
    metrics = select_metrics(sorted(set(df["metric"]), key=metric_order), metrics) if not df.empty else []
    if not metrics or df["step"].nunique() < 2:
        return None
    colours = colours or arm_colours(order)
    faint = look.not_learned if look is not None else frozenset()
    cells = panels_of(df, metrics, look)
    r, c = grid(len(cells))
    fig, axes = plt().subplots(r, c, figsize=(4.2 * c, 3.2 * r), squeeze=False)
    shown: List[str] = []
    for ax, (m, ds, sub) in zip(axes.flat, cells):
        for v in order:
            s = sub[sub["variant"] == v]
            if s.empty:
                continue
            f = (x_per_arm or {}).get(v, 1.0)
            agg = s.groupby("step")["value"].apply(mean_if_finite)
            ax.plot(agg.index * f, agg.to_numpy(), color=colours[v], lw=1.4, ls="--" if v in faint else "-")
            fin = np.isfinite(s["value"].to_numpy(float))
            ax.scatter(s["step"][fin] * f, s["value"][fin], color=colours[v], s=12, alpha=0.7)
            _mark_nonfinite(ax, (s["step"][~fin] * f).tolist(), colours[v])
            shown.append(v)
        reference_lines(ax, look, m, ds)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel(m), fontsize=8)
        if ds is not None and len({d for _, d, _ in cells}) > 1:
            ax.set_title(ds, fontsize=9)
        ax.grid(alpha=0.3)
    _headroom(axes.flat)
    for ax in list(axes.flat)[len(cells) :]:
        ax.axis("off")
    fig.tight_layout()
    legend(fig, colours, [a for a in order if a in shown], faint)
    return fig


DYNAMICS = (
    ("d_loss", "critic loss"),
    ("g_loss", "generator loss"),
    ("grad_norm_mean", "|∇D| at interpolates"),
    ("wdist", "Wasserstein estimate"),
)


def dynamics(recs: StudyRecords, order: List[str], colours: Optional[Dict[str, Any]] = None):
    """The training log of each arm's first-seed trial: losses, |∇D| at the interpolates, the Wasserstein estimate
    (a rolling mean over about 1/50 of the steps)."""
    seed0, first = recs.first_seed()
    colours = colours or arm_colours(order)
    logs = {v: pd.DataFrame(list(first[v].log)).set_index("step") for v in order if v in first and first[v].log}
    if not logs:
        return None
    panels = [p for p in DYNAMICS if any(p[0] in lg for lg in logs.values())]
    fig, axes = plt().subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), squeeze=False)
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
    legend(fig, colours, list(logs))
    return fig


__all__ = [
    "SAVE",
    "Look",
    "arm_colours",
    "distinct_colours",
    "dynamics",
    "grid",
    "metric_vs_value",
    "metrics_vs_step",
    "panels_of",
    "plt",
    "reference_lines",
    "save",
]

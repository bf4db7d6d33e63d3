"""A page's one-panel-per-arm figures, from the records: the only files opened are the PNGs the records point to.

* ``samples``: the fixed-noise sample grid of each arm's first seed at its last scored step;
* ``mixture_scatter``: 2D mixtures: every sample scored at the final step over the mode centres (the points come
  from ``reference.scatter_panels``, which regenerates them from the stored generator);
* ``coverage``, ``coverage_over_training``: the per-class (or per-mode) share of generated samples, arm x
  class, at the final step and at each evaluation point (when does collapse set in?);
* ``tsne``: the t-SNE PNGs the ``tsne`` metric recorded (never computed here).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from benchmark.evaluation.scores import metric_base
from benchmark.study.figures import grid, plt
from benchmark.study.records import Record, StudyRecords, TrialRecords


def samples(recs: StudyRecords, order: Sequence[str]):
    seed0, first = recs.first_seed()
    imgs = [(v, first[v].sample_grids[-1]) for v in order if v in first and first[v].sample_grids]
    if not imgs:
        return None
    pyplot = plt()
    r, c = grid(len(imgs), 4 if len(imgs) > 6 else 3)
    fig, axes = pyplot.subplots(r, c, figsize=(3.3 * c, 3.5 * r), squeeze=False)
    for ax, (v, p) in zip(axes.flat, imgs):
        ax.imshow(pyplot.imread(p), cmap="gray")
        ax.set_title(f"{v}\n{p.stem.replace('_', ' ')}, seed {seed0}", fontsize=8)
        ax.axis("off")
    for ax in list(axes.flat)[len(imgs) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def mixture_scatter(panels: Sequence[Tuple[str, Any, Any, float, int, Dict[str, float]]], seed0: int, colours):
    """``panels``: (arm, points, mode centres, mode std, step, the record's scores) per arm, from
    ``reference.scatter_panels``."""
    if not panels:
        return None
    r, c = grid(len(panels), per_row=4)
    fig, axes = plt().subplots(r, c, figsize=(3.3 * c, 3.3 * r), squeeze=False)
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
    return fig


def _hists(used: Sequence[Tuple[str, Record]]) -> Tuple[Dict[Tuple[str, int], List[np.ndarray]], str]:
    """(arm, step) -> per-seed normalised class (or mode) histograms from the records' details."""
    out: Dict[Tuple[str, int], List[np.ndarray]] = {}
    label = "class"
    for v, r in used:
        for name, h in (r.get("details") or {}).items():
            if "hist" in name and isinstance(h, list) and 0 < len(h) <= 100:
                label = "mode" if name.startswith("mode") else "predicted class"
                a = np.asarray(h, dtype=float)
                out.setdefault((v, r["step"]), []).append(a / max(a.sum(), 1))
    return out, label


def _final(t: TrialRecords) -> List[Tuple[str, Record]]:
    """The trial's record at its last scored step."""
    return [(t.variant, max(t.used, key=lambda r: r["step"]))] if t.used else []


def coverage(recs: StudyRecords, order: Sequence[str]):
    hists, label = _hists([x for t in recs.trials for x in _final(t)])
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
    fig, ax = plt().subplots(figsize=(max(5, 0.45 * mat.shape[1] + 3), 0.45 * len(rows) + 1.6))
    im = ax.imshow(np.ma.masked_invalid(mat), cmap="viridis", aspect="auto", vmin=0)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xticks(range(mat.shape[1]))
    ax.set_xlabel(label)
    ax.set_title(f"share of generated samples per {label} (final step, mean over seeds)")
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    return fig


def coverage_over_training(recs: StudyRecords, order: Sequence[str]):
    """Per arm, a step x class heatmap of the share of generated samples (mean over seeds): when collapse sets in."""
    hists, label = _hists(recs.used_by_arm())
    arms = [v for v in order if any(k[0] == v for k in hists)]
    if not arms or len({s for (_, s) in hists}) < 2:
        return None
    r, c = grid(len(arms), 3)
    fig, axes = plt().subplots(r, c, figsize=(4.2 * c, 2.6 * r), squeeze=False)
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
    return fig


def tsne_pngs(recs: StudyRecords, order: Sequence[str]) -> List[Tuple[str, Path]]:
    """The t-SNE PNGs that the ``tsne`` metric recorded (first seed, latest step per arm): read, never computed."""
    _, first = recs.first_seed()
    out = []
    for v in order:
        best: Optional[Tuple[int, Path]] = None
        for step, png in first[v].tsne_pngs if v in first else ():
            if best is None or step >= best[0]:
                best = (step, png)
        if best:
            out.append((v, best[1]))
    return out


def tsne(recs: StudyRecords, order: Sequence[str]):
    """t-SNE panels from the PNG paths recorded by the ``tsne`` metric; the report scores nothing."""
    pngs = tsne_pngs(recs, order)
    if not pngs:
        return None
    pyplot = plt()
    fig, axes = pyplot.subplots(len(pngs), 1, figsize=(10, 5 * len(pngs)), squeeze=False)
    for ax, (v, p) in zip(axes.flat, pngs):
        ax.imshow(pyplot.imread(p))
        ax.set_title(v, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    return fig


__all__ = ["coverage", "coverage_over_training", "mixture_scatter", "samples", "tsne", "tsne_pngs"]

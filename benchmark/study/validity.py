"""What a page's verdicts rest on besides its seeds: the real-data and known-failure levels of each dataset, the
validity of each score, the learned gate of each arm, and the saturation of a claim.

The levels are rows scored under the page's own protocol by ``reference.py`` (real training data, and the known
failures of ``benchmark/evaluation/failures.py``), passed here as plain data (``Level``). From them:

* **Validity** (``separation``): a score separates a failure when it ranks real data strictly ahead of it in
  its declared direction (``failures.separates``). A failure a score does not separate is a *miss*; a miss is
  *covered* when it is a learned-nothing failure (``gate``) that a gate metric of the claim separates: an arm
  that passed that gate is no such failure, whatever the claimed score says. A claim on a score with an
  uncovered miss is **ill-posed**.
* **The learned gate** (``Guards.gates``): per arm and gate metric (2D mixtures: hq; images: FID and the
  unreadable share; stacked-mnist: the modes of readable triples, else modes (``GATE_METRICS``: why); claims on
  conditional scores also label agreement), the arm's final
  score over seeds (mean m, sample sd s with ddof = 1, 0 with one seed) against the best level L among the
  learned-nothing failures the metric separates from real data: the arm **learned** iff d·(m − L) > s (d: the
  score's direction), i.e. L lies outside m ± s on the worse side; a non-finite seed has not learned. Label
  agreement has no failure row (failures carry no labels): its level is a quarter of the way from chance to a
  perfect 1, 1/K + (1 − 1/K)/4 (K = 10: 0.325), and the same rule applies. A claim about an arm that did not
  learn is **not decidable**. Claims on training-log scores (|∇D|, loss variance) describe the critic, not the
  samples, and are not gated.
* **Saturation** (``Guards.saturated``): every seed of every arm of a claim at the score's declared bound (the
  score's ``bound``: classes covered 10/10, modes 8/25/1000, hq 100, precision and recall 1): **ill-posed**.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from benchmark.evaluation.failures import REAL, separates
from benchmark.evaluation.scores import CLASSES, direction, metric_base, resolve
from benchmark.study.formatting import mean_sd, num
from benchmark.study.stats import final_values, seed_sd

# The gates an arm must pass to count as learned, per dataset family; each gate is its score bases in order of
# preference, the first one the page records. Stacked MNIST gates on the modes of the readable triples, not on
# the raw mode count: the classifier labels noise too, so uniform channels capture 832 of the 1000 modes, and a
# raw-count gate would call a generator that draws readable digits in a few hundred modes (a collapse: the
# thing the study measures) one that learned nothing. Readable modes are 0 for noise and 1 for one triple
# repeated, so an arm passes by drawing readable triples in more than one mode.
GATE_METRICS: Dict[str, Tuple[Tuple[str, ...], ...]] = {
    "points": (("hq",),),
    "image": (("fid",), ("unreadable_share",)),
    "stacked": (("modes_readable", "modes"),),
}


def gate_names(family: str) -> List[str]:
    """The family's gates as words: each gate's preferred score, its fallbacks in brackets."""
    return [g[0] + (f" (else {', '.join(g[1:])})" if len(g) > 1 else "") for g in GATE_METRICS.get(family, ())]


CONDITIONAL = ("label_agreement", "intra_fid")  # scores of a conditional generator: gated by label agreement too
LABEL_GATE = 0.25  # label agreement's level: this fraction of the way from chance (1/K) to 1
BOUND_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Level:
    """One scored set of samples of a dataset: real training data (``name`` REAL) or a known failure."""

    dataset: str
    name: str
    label: str  # "real data", "uniform noise", ...
    gate: bool  # a generator that learned nothing: an arm must beat it (False: real data, partial collapses)
    scores: Mapping[str, float]


@dataclass(frozen=True)
class Miss:
    """A failure that a score does not rank behind real data."""

    name: str
    label: str
    value: float
    gate: bool
    covered_by: str = ""  # the gate metric that separates it ('' when none does)

    def text(self, real: float) -> str:
        return f"{self.label} ({num(self.value)} vs real {num(real)})"


@dataclass(frozen=True)
class Separation:
    """A score's validity on one dataset: its real-data value, the failures compared and those it misses."""

    metric: str
    dataset: str
    real: float
    compared: Tuple[str, ...]  # failure names with a value
    misses: Tuple[Miss, ...]

    @property
    def uncovered(self) -> Tuple[Miss, ...]:
        return tuple(m for m in self.misses if not m.covered_by)

    def text(self, misses: Optional[Sequence[Miss]] = None) -> str:
        """'fid300_test does not separate one real image repeated (131 vs real 2.46)'."""
        ms = self.misses if misses is None else misses
        return f"{self.metric} does not separate " + ", ".join(m.text(self.real) for m in ms)


@dataclass(frozen=True)
class Gate:
    """One arm on one gate metric: its final mean and sd over seeds against the level it must beat."""

    arm: str
    metric: str
    mean: float
    sd: float
    n: int
    level: float
    against: str  # the level as text: the best learned-nothing failure and its value, or label agreement's rule
    learned: bool

    def text(self) -> str:
        """'hq2500 1.80 ± 0.20 % vs uniform on the ring 7.92 %'."""
        return f"{self.metric} {mean_sd(self.mean, self.sd if self.n > 1 else math.nan)}{unit_of(self.metric)} vs {self.against}"


def unit_of(metric: str) -> str:
    """' %' for a score in percent (hq), else ''."""
    r = resolve(metric)
    return " %" if r and r["spec"].unit == "%" else ""


def level_of(levels: Sequence[Level], dataset: str, name: str) -> Optional[Level]:
    return next((lv for lv in levels if lv.dataset == dataset and lv.name == name), None)


def score_named(scores: Mapping[str, float] | Sequence[str], base: str) -> Optional[str]:
    """The score of ``scores`` (names) that is ``base`` (exact, else by base name), or None."""
    names = list(scores)
    if base in names:
        return base
    return next((m for m in names if metric_base(m) == base), None)


def separation(levels: Sequence[Level], dataset: str, metric: str, cover: Sequence[str] = ()) -> Optional[Separation]:
    """``metric``'s validity on ``dataset``: the failures it does not separate from real data (``cover``: the gate
    metrics whose separation covers a learned-nothing miss). None without a direction or a real-data value."""
    real = level_of(levels, dataset, REAL)
    d = direction(metric)
    if real is None or d == 0 or metric not in real.scores:
        return None
    r = float(real.scores[metric])
    compared, misses = [], []
    for lv in levels:
        if lv.dataset != dataset or lv.name == REAL or metric not in lv.scores:
            continue
        v = float(lv.scores[metric])
        ok = separates(r, v, d)
        if ok is None:
            continue
        compared.append(lv.name)
        if not ok:
            by = next((g for g in cover if lv.gate and g != metric and _separated(levels, dataset, g, lv)), "")
            misses.append(Miss(lv.name, lv.label, v, lv.gate, by))
    return Separation(metric, dataset, r, tuple(compared), tuple(misses))


def _separated(levels: Sequence[Level], dataset: str, metric: str, lv: Level) -> bool:
    real = level_of(levels, dataset, REAL)
    if real is None or metric not in real.scores or metric not in lv.scores:
        return False
    return bool(separates(float(real.scores[metric]), float(lv.scores[metric]), direction(metric)))


def arm_values(df: pd.DataFrame, arm: str, metric: str) -> np.ndarray:
    """The arm's final value of ``metric``, one per seed (each trial's last scored step)."""
    if df.empty:
        return np.array([])
    last = final_values(df[(df["variant"] == arm) & (df["metric"] == metric)])
    return last.sort_values("seed")["value"].to_numpy(float)


@dataclass(frozen=True)
class Guards:
    """A page's levels and what it knows of its arms (dataset, its family and class count), and the checks."""

    levels: Tuple[Level, ...] = ()
    arm_datasets: Mapping[str, str] = field(default_factory=dict)
    families: Mapping[str, str] = field(default_factory=dict)  # dataset -> image | stacked | points
    classes: Mapping[str, int] = field(default_factory=dict)  # dataset -> class (or mode) count

    def datasets(self, arms: Sequence[str]) -> List[str]:
        return list(dict.fromkeys(self.arm_datasets[a] for a in arms if a in self.arm_datasets))

    def gate_metrics(self, dataset: str) -> List[str]:
        """The gate's score names on ``dataset`` (as its real-data row names them)."""
        real = level_of(self.levels, dataset, REAL)
        names = list(real.scores) if real is not None else []
        out = []
        for alternatives in GATE_METRICS.get(self.families.get(dataset, ""), ()):
            n = next((n for b in alternatives if (n := score_named(names, b))), None)
            if n is not None:
                out.append(n)
        return out

    def gated(self, dataset: str, metric: str) -> bool:
        """Is a claim on ``metric`` gated: a sample score (one the dataset's real-data row has, or a conditional
        generator's); training-log scores are not."""
        real = level_of(self.levels, dataset, REAL)
        return (real is not None and metric in real.scores) or metric_base(metric) in CONDITIONAL

    def gates(self, df: pd.DataFrame, arm: str, metric: Optional[str] = None) -> List[Gate]:
        """The arm's gates (``metric``: for a claim on it; None: the family's gate metrics alone)."""
        ds = self.arm_datasets.get(arm)
        if ds is None:
            return []
        out = []
        sub = df[df["variant"] == arm] if not df.empty else df
        names = sorted(set(sub["metric"])) if not sub.empty else []
        for g in self.gate_metrics(ds):
            got = score_named(names, g)
            level = self.gate_level(ds, g)
            if got is not None and level is not None:
                value, label = level
                out.append(_gate(arm, got, arm_values(df, arm, got), value, f"{label} {num(value)}{unit_of(got)}"))
        if metric is not None and metric_base(metric) in CONDITIONAL:
            got = score_named(names, "label_agreement")
            k = self.classes.get(ds, 0)
            if got is not None and k > 1:
                chance = 1.0 / k
                level = chance + LABEL_GATE * (1 - chance)
                against = f"{num(level)} (¼ of the way from chance {num(chance)} to 1)"
                out.append(_gate(arm, got, arm_values(df, arm, got), level, against))
        return out

    def gate_level(self, dataset: str, metric: str) -> Optional[Tuple[float, str]]:
        """(value, label) of the best learned-nothing failure that ``metric`` separates from real data."""
        real = level_of(self.levels, dataset, REAL)
        d = direction(metric)
        if real is None or metric not in real.scores or d == 0:
            return None
        cands = [
            (float(lv.scores[metric]), lv.label)
            for lv in self.levels
            if lv.dataset == dataset
            and lv.gate
            and metric in lv.scores
            and _separated(self.levels, dataset, metric, lv)
        ]
        return max(cands, key=lambda c: d * c[0]) if cands else None

    def separations(self, metric: str, arms: Sequence[str]) -> List[Separation]:
        out = []
        for ds in self.datasets(arms):
            s = separation(self.levels, ds, metric, self.gate_metrics(ds))
            if s is not None:
                out.append(s)
        return out

    def ill_posed(self, metric: str, arms: Sequence[str]) -> str:
        """Why a claim on ``metric`` about ``arms`` is ill-posed by validity ('' when it is not)."""
        why = [s.text(s.uncovered) for s in self.separations(metric, arms) if s.uncovered]
        return "; ".join(why)

    def saturated(self, metric: str, values: Mapping[str, pd.Series]) -> str:
        """'saturated at 10/10 ...' when every seed of every arm sits at the score's bound ('' otherwise)."""
        r = resolve(metric)
        if r is None or r["spec"].bound is None or not values or any(v.empty for v in values.values()):
            return ""
        spec, at = r["spec"], []
        for arm, v in values.items():
            k = self.classes.get(self.arm_datasets.get(arm, ""), 0)
            if spec.bound == CLASSES and not k:
                return ""
            b = spec.best(k)
            if not np.all(np.abs(v.to_numpy(float) - b) <= BOUND_TOLERANCE * max(1.0, abs(b))):
                return ""
            at.append(f"{int(b)}/{int(b)}" if spec.bound == CLASSES else f"{num(b)}{' %' if spec.unit == '%' else ''}")
        return f"saturated at {' and '.join(dict.fromkeys(at))} (every seed of every arm at the score's bound)"

    def not_learned(self, df: pd.DataFrame, arms: Sequence[str], metric: str) -> str:
        """'<arm> did not learn (hq2500 1.80 % vs uniform on the ring 7.92 %)' per arm of a gated claim that
        failed a gate ('' when every arm learned)."""
        out = []
        for a in arms:
            ds = self.arm_datasets.get(a)
            if ds is None or not self.gated(ds, metric):
                continue
            failed = [g for g in self.gates(df, a, metric) if not g.learned]
            if failed:
                out.append(f"{a} did not learn ({'; '.join(g.text() for g in failed)})")
        return "; ".join(out)


def _gate(arm: str, metric: str, values: np.ndarray, level: float, against: str) -> Gate:
    n = len(values)
    if n == 0:
        return Gate(arm, metric, math.nan, math.nan, 0, level, against, False)
    finite = bool(np.isfinite(values).all())
    mean = float(values.mean()) if finite else math.nan
    sd = (seed_sd(values) if n > 1 else 0.0) if finite else math.nan
    learned = finite and direction(metric) * (mean - level) > sd
    return Gate(arm, metric, mean, sd, n, level, against, bool(learned))


__all__ = [
    "CONDITIONAL",
    "GATE_METRICS",
    "Gate",
    "Guards",
    "gate_names",
    "LABEL_GATE",
    "Level",
    "Miss",
    "Separation",
    "arm_values",
    "level_of",
    "score_named",
    "separation",
    "unit_of",
]

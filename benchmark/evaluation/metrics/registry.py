"""The metric registry: ``Metric``, ``@metric`` and ``METRICS``; the dataset families and their default metrics.

A metric is one function registered in ``METRICS`` (``@metric("name", ...)``); it reads what it needs from the
``Context`` (context.py) and returns ``(scores, details)``. Its registration declares the scores it writes
(``scores=(lower("fid", "FID", split=True),)``, a ``ScoreSpec`` of ``benchmark.evaluation.scores``), which
registers them with ``scores``: the report and the gate read a score's direction there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from benchmark.data import dataset_info
from benchmark.errors import UserError
from benchmark.evaluation import scores as score_decls
from benchmark.evaluation.scores import ScoreSpec
from benchmark.registry import Registry

# A metric's function takes the scoring context (context.py imports this module, so it is not imported back:
# an alias for the annotations; no import cycle, not even under TYPE_CHECKING).
Context = Any

METRICS = Registry("metric")
score_decls.register_producers(METRICS)

Scores = Dict[str, float]
Details = Dict[str, Any]


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[Context], Tuple[Scores, Details]]
    families: Tuple[str, ...]  # image | stacked | points
    scores: Tuple[ScoreSpec, ...] = ()  # every score the metric may write (see ScoreSpec)
    min_n: Callable[[Context], int] = lambda ctx: 2
    protocol_n: Dict[str, int] = field(default_factory=dict)  # family -> fixed number of samples used
    fidelity: Tuple[str, ...] = ()  # reads the feature extractor's reading (fid, kid, isc, prc): see identity.py
    needs_labels: bool = False
    needs_run: bool = False
    help: str = ""


def metric(name: str, families: Sequence[str], **kw: Any) -> Callable:
    """Register ``fn(ctx) -> (scores, details)`` as metric ``name``; ``scores=(lower(...), higher(...))``
    declares what it writes (a score base belongs to one metric)."""

    def deco(fn: Callable) -> Callable:
        m = Metric(name=name, fn=fn, families=tuple(families), **kw)
        for s in m.scores:
            owner = next(
                (o.name for o in map(METRICS.get, METRICS.names()) if s.base in {x.base for x in o.scores}), None
            )
            if owner is not None:
                raise ValueError(f"score '{s.base}' of metric '{name}' is already declared by metric '{owner}'")
        METRICS.register(name)(m)
        return fn

    return deco


def family(dataset: str) -> str:
    """'image', 'stacked' (stacked-mnist) or 'points' (2D mixtures): which metrics apply."""
    _, _, kind = dataset_info(dataset)
    if kind == "points":
        return "points"
    return "stacked" if dataset == "stacked-mnist" else "image"


DEFAULTS = {
    "image": ("fid", "kid", "is", "pr", "coverage", "lpips"),
    "stacked": ("modes", "kl"),
    "points": ("modes", "hq", "rkl"),
}


def default_metrics(dataset: str, conditional: bool = False, run: bool = False) -> List[str]:
    fam = family(dataset)
    out = list(DEFAULTS[fam])
    if conditional and fam == "image":
        out.append("conditional")
    if run:
        out.append("dynamics")
    return out


DEFAULT = "default"  # in a metric list: the dataset's default metrics (per trial: a conditional arm's include its own)


def expand_default(metrics: Sequence[str], dataset: str, conditional: bool = False, run: bool = False) -> List[str]:
    """``metrics`` with ``default`` replaced, in its place, by the dataset's defaults (a conditional generator's
    include its label metrics), duplicates dropped: ``[default, dc]`` is the defaults, then dc. The one place a
    metric list's ``default`` is read (the scoring checks, a page's protocol, its real-data rows)."""
    out: List[str] = []
    for m in metrics:
        for name in default_metrics(dataset, conditional, run) if m == DEFAULT else [m]:
            if name not in out:
                out.append(name)
    return out


def parse_metrics(spec: Optional[str | Sequence[str]]) -> Optional[List[str]]:
    """'fid,kid' or ['fid', 'kid'] -> checked, de-duplicated list; None stays None (defaults). ``default`` stands
    for the dataset's defaults, expanded where the dataset is known (``checks.resolve_metrics``)."""
    if spec is None:
        return None
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: List[str] = []
    for m in (s.strip() for s in items):
        if not m:
            continue
        if m != DEFAULT:
            METRICS.get(m)
        if m not in out:
            out.append(m)
    if not out:
        raise UserError(f"--metrics is empty; give a comma-separated list of: {', '.join(METRICS.names())}")
    return out

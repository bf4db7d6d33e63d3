"""The typed study spec and trial: ``StudySpec`` (what ``studies/*.yaml`` says, a preset applied), its ``Budget``,
and a ``Trial`` (a variant at a seed, its config resolved once).

A spec is built here from a mapping (a YAML file's, or the one a study's index stored) with ``config.build``:
typed, frozen, an unknown key is one line naming the valid ones. Checking it against its kind (its trials,
metrics, params and claims) is ``benchmark/study/spec.py``'s, which stands after the kinds.

The spec's ``report:`` is declared once, by ``ReportSpec``: the spec check types it (an unknown key with a
did-you-mean, a wrong type, before anything trains) and the page reads it through ``report_options``, the
same declaration with its defaults. A new report key is one field there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from benchmark.config import LIMITS, Limit, TrainConfig, build
from benchmark.errors import UserError

# keys a spec once had that a study's stored index may still hold (ignored when it is read back)
RETIRED_KEYS = ("eval_labels",)  # names of the eval points: the page labels them from the budget itself


@dataclass(frozen=True)
class Budget:
    """A study's (or one variant's) training budget: exactly one of the two."""

    steps: Optional[int] = None  # generator steps
    epochs: Optional[float] = None  # or passes over the training set (steps = ceil(epochs * N / batch))


@dataclass(frozen=True)
class StudySpec:
    name: str = ""  # required: names the report folder
    title: str = ""
    description: str = ""
    kind: str = "gan"  # a registered study kind: gan (train + evaluate trials) | parallel-lines (WGAN paper's example)
    base: Dict[str, Any] = field(default_factory=dict)  # training-config overrides shared by all trials
    axes: Dict[str, Any] = field(default_factory=dict)  # key -> list of values, crossed into a grid
    variants: List[Any] = field(default_factory=list)  # explicit [{name, set: {...}}], crossed with axes
    seeds: List[int] = field(default_factory=lambda: [0])
    budget: Budget = field(default_factory=Budget)
    eval_at: List[float] = field(default_factory=lambda: [1.0])  # fractions of the budget to score
    metrics: Optional[List[str]] = None  # None: the dataset's default metrics
    num_samples: int = 10000  # generated samples per evaluation (protocols with fixed N override it)
    split: str = "test"  # real split the scores compare with
    report: Dict[str, Any] = field(default_factory=dict)  # x, xscale, columns, claims, references, ...
    params: Dict[str, Any] = field(default_factory=dict)  # the kind's parameters (typed by its Params class)
    presets: Dict[str, Any] = field(default_factory=dict)
    preset: str = ""  # which preset was applied (set by load_spec)

    def to_dict(self) -> Dict[str, Any]:
        """Plain data for a study's index (read back, typed, by ``from_dict``)."""
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(raw: Mapping[str, Any]) -> "StudySpec":
        """The typed spec of a mapping (a YAML file's with its preset merged, or an index's ``spec``)."""
        return build(StudySpec, {k: v for k, v in raw.items() if k not in RETIRED_KEYS})


@dataclass(frozen=True)
class Trial:
    """One unit of work of a study: a variant at a seed. ``key`` (hash of what decides its numbers) names
    its directory, so the same trial in two studies is trained once."""

    variant: str
    values: Dict[str, Any]
    seed: int
    key: str
    kind: str = "gan"
    config: Optional[TrainConfig] = None  # gan: the resolved training config (seed and budget included)
    eval_steps: List[int] = field(default_factory=list)  # gan: the scored steps
    params: Dict[str, Any] = field(default_factory=dict)  # other kinds: the resolved, typed params


XSCALES = ("linear", "log", "symlog")  # the x axis of the scores-against-a-value figure


@dataclass(frozen=True)
class ReportSpec:
    """A study's ``report:``: what its page shows. Read by the spec check and by the page (``report_options``)."""

    columns: Optional[List[str]] = None  # the results table's scores, exact or by base name (fid); None: all
    figure_metrics: Optional[List[str]] = None  # the scores in the figures (default: the first six columns)
    x: Optional[str] = None  # an axis or variant setting to plot the final scores against (e.g. gp_lambda)
    xscale: str = "linear"  # that figure's x axis: linear | log | symlog
    by_step: Optional[List[str]] = None  # scores tabulated at every evaluation point (the "Over training" table)
    notes: Dict[str, str] = field(default_factory=dict)  # arm -> a note in the over-training table
    tsne: bool = True  # t-SNE panels of the first seed of each arm (image data)
    claims: List[Any] = field(default_factory=list)  # claims decided over seeds (benchmark/study/claims.py)
    references: List[Any] = field(default_factory=list)  # published figures shown beside the arms (claims.py)


def report_spec(raw: Any) -> ReportSpec:
    """A spec's ``report:`` typed by ``ReportSpec``: an unknown key (with a did-you-mean), a wrong type or an
    unknown ``xscale`` is one line naming ``report.<key>``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise UserError(f"'report' must be a mapping of {', '.join(f.name for f in dataclasses.fields(ReportSpec))}")
    rep = build(ReportSpec, raw, prefix="report.")
    if rep.xscale not in XSCALES:
        raise UserError(f"'report.xscale' is {rep.xscale!r}; allowed: {', '.join(XSCALES)}")
    for arm, note in rep.notes.items():
        if not isinstance(note, str):
            raise UserError(f"'report.notes' maps arm {arm!r} to {note!r}; give each arm's note as text")
    return rep


def report_options(raw: Any) -> Dict[str, Any]:
    """``report_spec(raw)`` as a mapping with every key of ``ReportSpec`` (its defaults filled): what the page reads."""
    return dataclasses.asdict(report_spec(raw))


def check_number(key: str, value: Any, limit: Limit, where: str = "") -> None:
    """One line naming ``key`` (after ``where``) unless ``value`` is a finite number within ``limit``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not limit.holds(float(value)):
        raise UserError(f"{where + ': ' if where else ''}'{key}' must be a finite number {limit.text()}, got {value!r}")


def check_budget(b: Budget) -> None:
    """One line unless ``b`` names exactly one of steps or epochs, finite and in range (a study's or a
    variant's budget)."""
    if (b.steps is None) == (b.epochs is None):
        raise UserError("'budget' needs exactly one of steps or epochs")
    if b.steps is not None:
        check_number("budget.steps", b.steps, LIMITS["steps"])
    else:
        check_number("budget.epochs", b.epochs, LIMITS["epochs"])


__all__ = [
    "Budget",
    "ReportSpec",
    "StudySpec",
    "Trial",
    "check_budget",
    "check_number",
    "report_options",
    "report_spec",
    "RETIRED_KEYS",
]

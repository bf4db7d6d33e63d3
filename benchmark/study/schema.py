"""The typed study spec and trial: ``StudySpec`` (what ``studies/*.yaml`` says, a preset applied), its ``Budget``,
and a ``Trial`` (a variant at a seed, its config resolved once).

A spec is built here from a mapping (a YAML file's, or the one a study's index stored) with ``config.build``:
typed, frozen, an unknown key is one line naming the valid ones. Checking it against its kind (its trials,
metrics, params and claims) is ``benchmark/study/spec.py``'s, which stands after the kinds.
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


__all__ = ["Budget", "StudySpec", "Trial", "check_budget", "check_number", "RETIRED_KEYS"]

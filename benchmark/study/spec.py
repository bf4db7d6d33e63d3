"""Study specs (``studies/*.yaml``): a base config, the axes it varies, seeds, budget, evaluation, presets.

    name: lambda
    base: {dataset: mnist, model: mlp, objective: wgan-gp}   # training-config overrides for every trial
    axes: {gp_lambda: [0, 0.1, 1, 10, 100]}                  # a grid (every combination is a variant)
    variants: [{name: GAN, set: {objective: gan}}, ...]      # ... or an explicit list (or both: crossed)
    seeds: [0, 1, 2]
    budget: {steps: 2000}                                    # or {epochs: 100}
    eval_at: [0.5, 1.0]                                      # fractions of the budget that are scored
    metrics: null                                            # null: the dataset's defaults
    num_samples: 10000
    presets: {smoke: {...}, quick: {...}, paper: {...}}      # overrides of any key above

A preset's ``base`` is merged into the study's ``base``; every other key it names replaces the study's.
Every trial's config is checked before anything runs: an invalid spec is one line naming the key.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from benchmark.config import TrainConfig, build, load_yaml, make_config, semantic_dict
from benchmark.errors import UserError

KINDS = ("gan", "parallel-lines")
PRESETS = ("smoke", "quick", "paper")


@dataclass(frozen=True)
class Budget:
    steps: Optional[int] = None  # generator steps
    epochs: Optional[float] = None  # or passes over the training set (steps = ceil(epochs * N / batch))


@dataclass(frozen=True)
class StudySpec:
    name: str = ""  # required: names the report folder
    title: str = ""
    description: str = ""
    kind: str = "gan"  # gan (train + evaluate trials) | parallel-lines (the WGAN paper's example)
    base: Dict[str, Any] = field(default_factory=dict)  # training-config overrides shared by all trials
    axes: Dict[str, Any] = field(default_factory=dict)  # key -> list of values, crossed into a grid
    variants: List[Any] = field(default_factory=list)  # explicit [{name, set: {...}}], crossed with axes
    seeds: List[int] = field(default_factory=lambda: [0])
    budget: Budget = field(default_factory=Budget)
    eval_at: List[float] = field(default_factory=lambda: [1.0])  # fractions of the budget to score
    eval_labels: List[str] = field(default_factory=list)  # names of the eval points in tables (e.g. "10 ep")
    metrics: Optional[List[str]] = None  # None: the dataset's default metrics
    num_samples: int = 10000  # generated samples per evaluation (protocols with fixed N override it)
    split: str = "test"  # real split the scores compare with
    report: Dict[str, Any] = field(default_factory=dict)  # x, xscale, columns, claims, references, ...
    params: Dict[str, Any] = field(default_factory=dict)  # kind-specific parameters
    presets: Dict[str, Any] = field(default_factory=dict)
    preset: str = ""  # which preset was applied (set by load_spec)


@dataclass(frozen=True)
class Trial:
    """One training run of a study: a variant at a seed, with the steps at which it is scored."""

    variant: str
    values: Dict[str, Any]
    seed: int
    config: TrainConfig
    eval_steps: List[int]

    @property
    def key(self) -> str:
        """Hash of the resolved config (seed and budget included): the trial's directory name."""
        blob = json.dumps(semantic_dict(self.config), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _merge(spec: Dict[str, Any], preset: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(spec)
    for k, v in preset.items():
        if k in ("base", "params", "report") and isinstance(v, dict):
            out[k] = {**(spec.get(k) or {}), **v}
        else:
            out[k] = v
    return out


def load_spec(path: str | Path, preset: Optional[str] = None) -> StudySpec:
    raw = load_yaml(path)
    presets = raw.get("presets") or {}
    if not isinstance(presets, dict):
        raise UserError(f"study '{path}': 'presets' must be a mapping of preset name -> overrides")
    if preset:
        if preset not in presets:
            raise UserError(f"study '{path}' has no preset '{preset}'; valid: {', '.join(presets) or 'none'}")
        if not isinstance(presets[preset], dict):
            raise UserError(f"study '{path}': preset '{preset}' must be a mapping of overrides")
        if "presets" in presets[preset] or "name" in presets[preset]:
            raise UserError(f"study '{path}': preset '{preset}' may not set 'presets' or 'name'")
        raw = _merge(raw, presets[preset])
    try:
        spec = build(StudySpec, {**raw, "preset": preset or ""})
    except UserError as e:
        raise UserError(f"study '{path}': {e}") from None
    check_spec(spec, str(path))
    return spec


def check_spec(spec: StudySpec, where: str = "study") -> None:
    def bad(msg: str) -> UserError:
        return UserError(f"{where}: {msg}")

    if not spec.name or not spec.name.replace("-", "").replace("_", "").isalnum():
        raise bad("'name' must be a non-empty name of letters, digits, - and _")
    if spec.kind not in KINDS:
        raise bad(f"'kind' is '{spec.kind}'; allowed: {', '.join(KINDS)}")
    if not spec.seeds:
        raise bad("'seeds' must list at least one seed")
    if not spec.eval_at or any(not (0 < f <= 1) for f in spec.eval_at):
        raise bad("'eval_at' must list fractions of the budget in (0, 1]")
    if spec.eval_labels and len(spec.eval_labels) != len(spec.eval_at):
        raise bad("'eval_labels' must name each point of 'eval_at'")
    if spec.num_samples < 2:
        raise bad("'num_samples' must be >= 2")
    if spec.split not in ("train", "test"):
        raise bad(f"'split' is '{spec.split}'; allowed: train, test")
    if spec.kind == "parallel-lines":
        return
    if (spec.budget.steps is None) == (spec.budget.epochs is None):
        raise bad("'budget' needs exactly one of steps or epochs")
    for k, vals in spec.axes.items():
        if not isinstance(vals, list) or not vals:
            raise bad(f"axis '{k}' must be a non-empty list of values")
    for i, v in enumerate(spec.variants):
        if not isinstance(v, dict) or set(v) - {"name", "set"} or "name" not in v:
            raise bad(f"variants[{i}] must be a mapping with 'name' and optional 'set' (config overrides)")
    if spec.metrics is not None:
        try:
            from benchmark.evaluation.metrics import METRICS
        except ModuleNotFoundError:
            METRICS = None
        if METRICS is not None:
            for m in spec.metrics:
                METRICS.get(m)
    trials(spec, where)  # builds (and so checks) every trial's config


def _steps(spec: StudySpec, base: TrainConfig) -> int:
    if spec.budget.steps is not None:
        return spec.budget.steps
    from benchmark.data import DATASETS

    n = DATASETS.get(base.dataset).num_train
    return max(1, math.ceil(spec.budget.epochs * n / base.batch_size))


def eval_schedule(steps: int, fractions: List[float]) -> tuple[List[int], int]:
    """(scored steps, checkpoint_every): G is kept at the scored steps; a resumable checkpoint every 10 %."""
    return sorted({max(1, round(f * steps)) for f in fractions}), max(1, steps // 10)


def _label(values: Dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def trials(spec: StudySpec, where: str = "study") -> List[Trial]:
    """Every (variant, seed) of the study, its config built and checked."""
    axis_keys = list(spec.axes)
    grid = [dict(zip(axis_keys, combo)) for combo in itertools.product(*(spec.axes[k] for k in axis_keys))] or [{}]
    named = spec.variants or [{"name": "", "set": {}}]
    out: List[Trial] = []
    for v in named:
        for values in grid:
            over = {**spec.base, **(v.get("set") or {}), **values}
            name = " / ".join(x for x in (v["name"], _label(values)) if x) or "base"
            for seed in spec.seeds:
                try:
                    cfg = make_config({**over, "seed": seed})
                    steps = _steps(spec, cfg)
                    eval_steps, every = eval_schedule(steps, spec.eval_at)
                    cfg = make_config({**over, "seed": seed, "steps": steps, "epochs": None,
                                       "checkpoint_every": every, "checkpoint_at": eval_steps})
                except UserError as e:
                    raise UserError(f"{where}: variant '{name}': {e}") from None
                out.append(Trial(name, {"variant": v["name"], **values}, seed, cfg, eval_steps))
    return out

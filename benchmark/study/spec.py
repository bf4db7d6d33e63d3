"""Study specs (``studies/*.yaml``): a base config, the axes it varies, seeds, budget, evaluation, presets.

    name: lambda
    kind: gan                                                # a study kind (benchmark/study/kinds.py)
    base: {dataset: mnist, model: mlp, objective: wgan-gp}   # training-config overrides for every trial
    axes: {gp_lambda: [0, 0.1, 1, 10, 100]}                  # a grid (every combination is a variant)
    variants: [{name: GAN, set: {objective: gan}}, ...]      # ... or an explicit list (or both: crossed);
                                                             #   a variant may carry its own budget: {steps: N}
    seeds: [0, 1, 2]
    budget: {steps: 2000}                                    # or {epochs: 100}
    eval_at: [0.5, 1.0]                                      # fractions of the budget that are scored
    metrics: null                                            # null: the dataset's defaults
    num_samples: 10000
    params: {}                                               # the kind's typed parameters (parallel-lines)
    presets: {smoke: {...}, quick: {...}, paper: {...}}      # overrides of any key above

A preset's ``base``, ``params`` and ``report`` are merged into the study's; every other key it names replaces
the study's. The spec is checked whole before anything runs (every trial's config, the metrics against each
trial's dataset, the kind's params, the report's claims): an invalid spec is one line naming the key.

The typed spec itself (``StudySpec``, ``Budget``, ``Trial``) is ``schema.py``'s; this module reads a spec file
and checks it through its kind (``KINDS``), so it stands after the kinds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from benchmark.config import LIMITS, Limit, build, load_yaml
from benchmark.data import check_split
from benchmark.errors import UserError
from benchmark.evaluation.runs import MAX_SAMPLES
from benchmark.study.claims import check_claims
from benchmark.study.kinds import KINDS
from benchmark.study.schema import RETIRED_KEYS, Budget, StudySpec, Trial, check_number

PRESETS = ("smoke", "quick", "paper")
MAX_SEEDS = 1000
NUM_SAMPLES = Limit(2, MAX_SAMPLES)  # generated samples per evaluation (the same bound as `ganbench evaluate`)


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
    for k in RETIRED_KEYS:
        if k in raw:
            raise UserError(
                f"study '{path}': '{k}' is no longer read (the page labels each evaluation point with its step "
                f"and epochs); remove it"
            )
    try:
        spec = build(StudySpec, {**raw, "preset": preset or ""})
    except UserError as e:
        raise UserError(f"study '{path}': {e}") from None
    check_spec(spec, f"study '{path}'")
    return spec


def check_spec(spec: StudySpec, where: str = "study") -> List[Trial]:
    """Check the whole spec (before anything runs); returns its trials."""

    def bad(msg: str) -> UserError:
        return UserError(f"{where}: {msg}")

    if not spec.name or not spec.name.replace("-", "").replace("_", "").isalnum():
        raise bad("'name' must be a non-empty name of letters, digits, - and _")
    try:
        kind = KINDS.get(spec.kind)
        if not spec.seeds or len(spec.seeds) > MAX_SEEDS:
            raise UserError(f"'seeds' must list 1 to {MAX_SEEDS} seeds, got {len(spec.seeds)}")
        for s in spec.seeds:
            check_number("seeds", s, LIMITS["seed"])
        if len(set(spec.seeds)) != len(spec.seeds):
            raise UserError(f"'seeds' lists a seed twice: {spec.seeds}")
        if not spec.eval_at or any(not (0 < f <= 1) for f in spec.eval_at):
            raise UserError(f"'eval_at' must list fractions of the budget in (0, 1], got {spec.eval_at}")
        check_number("num_samples", spec.num_samples, NUM_SAMPLES)
    except UserError as e:
        raise bad(str(e)) from None
    try:
        check_split(spec.split)
    except UserError as e:
        raise bad(str(e)) from None
    ts = kind.check(spec, where)
    # claims and references (issue 14): a 'check:' expression or an unknown arm fails here, before training
    check_claims(spec.report, where, arms=list(dict.fromkeys(t.variant for t in ts)), eval_at=spec.eval_at)
    return ts


def trials(spec: StudySpec, where: str = "study") -> List[Trial]:
    """Every trial of the study (a variant at a seed), its config built and checked once."""
    return KINDS.get(spec.kind).trials(spec, where)


__all__ = ["Budget", "StudySpec", "Trial", "PRESETS", "load_spec", "check_spec", "trials"]

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
    presets: {smoke: {...}, quick: {...}, long: {...}}      # overrides of any key above

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
from benchmark.errors import UserError, did_you_mean, quote
from benchmark.evaluation.runs import MAX_SAMPLES
from benchmark.study.claims import check_claims
from benchmark.study.kinds import KINDS
from benchmark.study.schema import RETIRED_KEYS, Budget, StudySpec, Trial, check_number, report_spec
from benchmark.study.store import check_preset_name, check_study_name

PRESETS = ("smoke", "quick", "long")  # long: a fraction of the cited paper's budget, stated in each spec
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
    raw = load_yaml(path, "study spec", "give a studies/NAME.yaml")
    presets = raw.get("presets") or {}
    if not isinstance(presets, dict):
        raise UserError(f"study '{path}': 'presets' must be a mapping of preset name -> overrides")
    try:  # a preset's name follows the study's in its index's file name: a name, never a path
        for name in presets:
            check_preset_name(name, "preset")
        if preset:
            check_preset_name(preset, "--preset")
    except UserError as e:
        raise UserError(f"study '{path}': {e}") from None
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

    try:
        check_study_name(spec.name, "'name'")
    except UserError as e:
        raise bad(str(e)) from None
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
    try:  # the report's keys and types (ReportSpec), before training: 'colums' or 'columns: 5' fails here
        rep = report_spec(spec.report)
    except UserError as e:
        raise bad(str(e)) from None
    ts = kind.check(spec, where)
    arms = list(dict.fromkeys(t.variant for t in ts))
    settings = list(dict.fromkeys(k for t in ts for k in t.values))
    if rep.x is not None and rep.x not in settings:
        raise bad(
            f"'report.x' is {quote(rep.x, 40)}, which no arm sets{did_you_mean(rep.x, settings)}; valid: "
            f"{', '.join(settings) or 'none (this study has no axes or variant settings)'}"
        )
    for arm in rep.notes:
        if arm not in arms:
            raise bad(
                f"'report.notes' names the arm {quote(arm, 40)}, which the study does not have{did_you_mean(arm, arms)}"
            )
    # claims and references (issue 14): a 'check:' expression or an unknown arm fails here, before training
    check_claims(spec.report, where, arms=arms, eval_at=spec.eval_at)
    return ts


def trials(spec: StudySpec, where: str = "study") -> List[Trial]:
    """Every trial of the study (a variant at a seed), its config built and checked once."""
    return KINDS.get(spec.kind).trials(spec, where)


__all__ = ["Budget", "StudySpec", "Trial", "PRESETS", "load_spec", "check_spec", "trials"]

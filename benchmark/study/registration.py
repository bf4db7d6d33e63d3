"""Claims registered before results: what a study's claims, seeds and budget were when its first trial started,
and what has changed in them since.

``record(spec, ...)`` is what ``runner.run_study`` hands to ``store.register`` before any trial runs (written
once, never overwritten): each claim as decided (``FIELDS``, the default test resolved), the seeds, the budget
(the study's and each variant's own), the preset, and the sha256 of all of them; ``trials_run_before`` counts
the study's trials that had already trained when it was written (a study first run before registration
existed registers late, and its page says so).

A registration can also be made ahead of any run and committed beside the spec (``ganbench study register
SPEC --preset P`` writes ``studies/registered/<name>-<preset>.json``, ``committed_path``): the claims and seeds are
then fixed in git history before a result exists, and ``study run`` takes that file as the store's
registration (``check_committed`` first: the study, the preset and the sha256 of its own contents must hold).

``compare(registered, spec, claims)`` is the page's view of it. What counts as a change of a claim: any of
``FIELDS`` (its statement, score, arm, the arms it is compared with (as a set), the expected direction, where
it is read (``at``), value or spread (``of``), its test, and ``by_construction``); a ``note`` is commentary and
does not count. A current claim is matched to a registered one by all its fields (as registered), else by its
statement (amended), else by its score and arm (amended); one without a match was added after the trials
ran, and a registered one left without a match was removed. The seeds, the budget and the preset are compared
whole; a change in them amends every claim (each claim's evidence changed).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from benchmark import io
from benchmark.errors import UserError, quote
from benchmark.study.claims import Claim, check_claims
from benchmark.study.schema import StudySpec

FIELDS = ("claim", "metric", "arm", "vs", "expect", "at", "of", "test", "by_construction")
STUDY_FIELDS = ("seeds", "budget", "variant_budgets", "preset")
AS_REGISTERED, AMENDED, ADDED, UNREGISTERED = (
    "as registered",
    "amended after its trials ran",
    "added after its trials ran",
    "not registered",
)

Change = Tuple[str, Any, Any]  # (field, as registered, now)


def claim_fields(c: Claim) -> Dict[str, Any]:
    """A claim as registered: every field that decides it, ``vs`` as a sorted list ('others' when empty)."""
    return {
        "claim": c.text,
        "metric": c.metric,
        "arm": c.arm,
        "vs": sorted(c.vs) if c.vs else "others",
        "expect": c.expect,
        "at": c.at,
        "of": c.of,
        "test": c.test,
        "by_construction": c.by_construction,
    }


def study_fields(spec: StudySpec) -> Dict[str, Any]:
    """The seeds (sorted), the budget, each variant's own budget and the preset."""
    variants = {
        str(v.get("name")): v["budget"] for v in spec.variants if isinstance(v, Mapping) and v.get("budget") is not None
    }
    return {
        "seeds": sorted(spec.seeds),
        "budget": dataclasses.asdict(spec.budget),
        "variant_budgets": variants,
        "preset": spec.preset or "",
    }


def digest(claims: Sequence[Mapping[str, Any]], study: Mapping[str, Any]) -> str:
    text = json.dumps({"claims": list(claims), **{k: study[k] for k in STUDY_FIELDS}}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def record(spec: StudySpec, trials_run_before: int = 0, trials: int = 0) -> Dict[str, Any]:
    """The registration of ``spec`` (module docstring), made when its first trial starts."""
    claims = [claim_fields(c) for c in check_claims(spec.report, f"study '{spec.name}'")]
    study = study_fields(spec)
    return {
        "study": spec.name,
        "registered": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": io.git_commit(),
        "claims": claims,
        **study,
        "trials": trials,
        "trials_run_before": trials_run_before,
        "sha256": digest(claims, study),
    }


COMMITTED_DIR = "registered"  # beside the spec: studies/registered/<name>-<preset>.json


def committed_path(spec_path: Path, name: str, preset: str) -> Path:
    """Where a registration made ahead of the runs is committed: beside the spec, in ``registered/``."""
    return Path(spec_path).parent / COMMITTED_DIR / f"{name}-{preset or 'default'}.json"


def check_committed(blob: Any, spec: StudySpec, path: Path) -> Dict[str, Any]:
    """A committed registration as read from ``path``: refused in one line unless it is one of this study at this
    preset whose sha256 is that of its own claims, seeds and budget (a hand-edited file would pass off new claims
    as registered ones)."""
    fix = "restore it from git (`git checkout -- FILE`), or remove it to register when the first trial starts"
    if not isinstance(blob, dict) or not isinstance(blob.get("claims"), list):
        raise UserError(f"{quote(str(path))} is not a registration (no list of claims); {fix}")
    if blob.get("study") != spec.name or blob.get("preset") != (spec.preset or ""):
        raise UserError(
            f"{quote(str(path))} registers study {blob.get('study')!r} at preset {blob.get('preset')!r}, "
            f"not {spec.name!r} at {spec.preset!r}; {fix}"
        )
    try:
        ok = blob.get("sha256") == digest(blob["claims"], blob)
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise UserError(f"{quote(str(path))}: its sha256 is not that of its claims, seeds and budget; {fix}")
    return blob


@dataclass(frozen=True)
class ClaimStatus:
    """A current claim against the registration: as registered, amended (what changed), added, not registered."""

    status: str
    changes: Tuple[Change, ...] = ()
    registered_text: str = ""

    @property
    def flagged(self) -> bool:
        return self.status in (AMENDED, ADDED)


@dataclass(frozen=True)
class Amendments:
    """The page's view of the registration: per current claim its status, the study's own changes, the claims
    removed since, and when (and how late) it was registered."""

    registered: bool
    claims: Tuple[ClaimStatus, ...]
    study: Tuple[Change, ...] = ()  # seeds, budget, variant budgets, preset
    removed: Tuple[str, ...] = ()  # statements of registered claims no current claim matches
    when: str = ""
    sha256: str = ""
    trials_run_before: int = 0
    trials: int = 0

    @property
    def any(self) -> bool:
        return bool(self.study or self.removed or any(c.flagged for c in self.claims))


def _changes(old: Mapping[str, Any], new: Mapping[str, Any], fields: Sequence[str]) -> Tuple[Change, ...]:
    return tuple((f, old.get(f), new.get(f)) for f in fields if _norm(old.get(f)) != _norm(new.get(f)))


def _norm(v: Any) -> Any:
    return json.dumps(v, sort_keys=True, default=str)


def _match(cur: List[Dict[str, Any]], reg: List[Mapping[str, Any]]) -> Tuple[List[Optional[int]], List[int]]:
    """Each current claim's registered match (index or None), and the registered claims left unmatched."""
    out: List[Optional[int]] = [None] * len(cur)
    free = list(range(len(reg)))
    keys = (
        lambda c: tuple(_norm(c.get(f)) for f in FIELDS),
        lambda c: _norm(c.get("claim")),
        lambda c: (_norm(c.get("metric")), _norm(c.get("arm"))),
    )
    for key in keys:
        for i, c in enumerate(cur):
            if out[i] is None:
                j = next((j for j in free if key(reg[j]) == key(c)), None)
                if j is not None:
                    out[i] = j
                    free.remove(j)
    return out, free


def compare(registered: Optional[Mapping[str, Any]], spec: StudySpec, claims: Sequence[Claim]) -> Amendments:
    """The current claims (``claims``, parsed from ``spec``) and study against the registration (module
    docstring); ``registered`` None: nothing was registered."""
    if registered is None:
        return Amendments(False, tuple(ClaimStatus(UNREGISTERED) for _ in claims))
    cur = [claim_fields(c) for c in claims]
    reg = [dict(c) for c in registered.get("claims") or [] if isinstance(c, Mapping)]
    matched, free = _match(cur, reg)
    statuses = []
    for c, j in zip(cur, matched):
        if j is None:
            statuses.append(ClaimStatus(ADDED))
            continue
        ch = _changes(reg[j], c, FIELDS)
        statuses.append(ClaimStatus(AMENDED if ch else AS_REGISTERED, ch, str(reg[j].get("claim", ""))))
    return Amendments(
        True,
        tuple(statuses),
        _changes(registered, study_fields(spec), STUDY_FIELDS),
        tuple(str(reg[j].get("claim", "")) for j in free),
        str(registered.get("registered", "")),
        str(registered.get("sha256", "")),
        int(registered.get("trials_run_before") or 0),
        int(registered.get("trials") or 0),
    )


__all__ = [
    "ADDED",
    "AMENDED",
    "AS_REGISTERED",
    "Amendments",
    "ClaimStatus",
    "FIELDS",
    "STUDY_FIELDS",
    "UNREGISTERED",
    "claim_fields",
    "compare",
    "digest",
    "record",
    "study_fields",
]

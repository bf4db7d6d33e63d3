"""Score declarations and the protocol names they write: which metric writes a score, its protocol and which way
is better. Imports no torch: the report, the gate and the study's claims read directions from here.

Every score is declared once, by the metric that writes it (``@metric(..., scores=(lower("fid", "FID",
split=True), ...))`` in ``benchmark/evaluation/metrics``, see ``ScoreSpec``); the parallel-lines study's
columns are declared below. A name is resolved by matching it against those declarations: ``fid10k_test``
is score ``fid`` at N = 10,000 on the test split because ``lower("fid", split=True).name(10000, "test")``
writes exactly that. The report and the gate import ``direction`` and ``metric_base`` from here, never from
each other; nothing parses a name with a pattern of its own.

Score names fix their protocol: ``<figure><N>[_<split>]``

* ``<N>`` is the number of generated samples the figure is computed from, ``10k`` for 10,000 (multiples of
  1000 are written ``<n/1000>k``, others in full: ``2500``); a training-log window is written in full;
* ``_<split>`` (``_test`` / ``_train``) is present exactly when real samples of that split enter the figure.

The direction of dependency: this module declares, the metrics package registers its metrics here
(``register_producers(METRICS)`` at its import) and nothing here imports the metrics. A question about a
metric's score (``resolve``, ``declared``) made before the metrics package was imported imports it then,
once: that import is the evaluator code and torch (6.3 s, 6.2 s of it torch, by ``python -X importtime`` on
the shared 2-core machine), paid only by a caller that asks about the metrics' scores, never by one that
imports this module.

A name that no declaration writes (an old record's score no metric declares any more, a typo) has no
direction (0: not gated, no best marked) and is its own base.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Protocol, Sequence, Tuple

__all__ = [
    "ScoreSpec",
    "higher",
    "lower",
    "neutral",
    "tag",
    "direction",
    "metric_base",
    "resolve",
    "declared",
    "score_spec",
    "register_producers",
    "PARALLEL_LINES",
    "SPLITS",
    "CLASSES",
]

# The real splits a score may name: benchmark.data.SPLITS, written here so that this module needs no torch
# (benchmark.data imports it); tests/test_scores.py checks that the two are the same.
SPLITS = ("train", "test")
COUNTS = ("samples", "window", "")
CLASSES = "classes"  # a bound that is the dataset's class (or mode) count: 10 classes, 8 / 25 / 1000 modes

METRICS_PACKAGE = "benchmark.evaluation.metrics"  # registers its metrics here when imported


def tag(n: int) -> str:
    """10000 -> '10k', 26000 -> '26k', 2500 -> '2500'."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def _untag(s: str, count: str) -> Optional[int]:
    """The inverse of the count tag, exact: '10k' -> 10000 (samples), '200' -> 200 (window); None if not one."""
    if not count or not s:
        return None
    digits = s[:-1] if count == "samples" and s.endswith("k") else s
    if not (digits.isascii() and digits.isdigit()):
        return None
    n = int(digits) * (1000 if digits != s else 1)
    return n if (tag(n) if count == "samples" else str(n)) == s else None


@dataclass(frozen=True)
class ScoreSpec:
    """One score a metric writes, declared once in its ``@metric(scores=...)``: the name is ``base`` followed
    by the protocol tags, built only by ``name()``; the report and the gate read ``direction`` from here."""

    base: str
    direction: int  # -1 lower is better, +1 higher is better, 0 no preferred direction (not gated)
    count: str = "samples"  # the number after the base: samples (tag(N): 10k, 2500), window (log steps), "" none
    split: bool = False  # "_<split>" follows: real samples of that split enter the score
    label: str = ""  # for people: table headers, --help
    unit: str = ""
    # the best value the score can take, where a count or share piles up (a claim whose arms all sit there is
    # saturated): a number, or CLASSES (the dataset's class or mode count); None: no bound that is reached
    bound: Optional[float | str] = None

    def __post_init__(self) -> None:
        if self.direction not in (-1, 0, 1) or self.count not in COUNTS or not self.base.isidentifier():
            raise ValueError(f"bad score declaration {self}")
        b = self.bound
        if b is not None and b != CLASSES and (isinstance(b, (bool, str)) or not isinstance(b, (int, float))):
            raise ValueError(f"bad score declaration {self}: a bound is a number or {CLASSES!r}")

    def best(self, num_classes: int) -> Optional[float]:
        """The score's bound for a dataset of ``num_classes`` classes (or modes); None when it declares none."""
        if self.bound is None:
            return None
        return float(num_classes) if self.bound == CLASSES else float(self.bound)

    def name(self, n: Optional[int] = None, split: Optional[str] = None) -> str:
        """The score's name under a protocol: ScoreSpec('fid', -1, split=True).name(10000, 'test') -> 'fid10k_test'."""
        out = self.base
        if self.count:
            if n is None:
                raise ValueError(f"score '{self.base}' carries its {self.count} count: give n")
            out += tag(n) if self.count == "samples" else str(int(n))
        if self.split:
            if split not in SPLITS:
                raise ValueError(f"score '{self.base}' carries its split: give one of {SPLITS}, got {split!r}")
            out += f"_{split}"
        return out

    def protocol(self, name: str) -> Optional[Dict[str, Any]]:
        """{'n': N or None, 'split': S or None} when ``name`` is this score under some protocol, else None.
        Exact: the name must be what ``name()`` writes for that protocol (no other spelling is accepted)."""
        if not name.startswith(self.base):
            return None
        rest, split = name[len(self.base) :], None
        if self.split:
            split = next((s for s in SPLITS if rest.endswith(f"_{s}")), None)
            if split is None:
                return None
            rest = rest[: -len(split) - 1]
        n = _untag(rest, self.count)
        if n is None and (self.count or rest):
            return None
        return {"n": n, "split": split}


def lower(base: str, label: str = "", **kw: Any) -> ScoreSpec:
    """A score where lower is better: ``lower("fid", "FID", split=True)``."""
    return ScoreSpec(base, -1, label=label, **kw)


def higher(base: str, label: str = "", **kw: Any) -> ScoreSpec:
    """A score where higher is better: ``higher("modes", "modes captured", unit="of 1000")``."""
    return ScoreSpec(base, 1, label=label, **kw)


def neutral(base: str, label: str = "", **kw: Any) -> ScoreSpec:
    """A score with no preferred direction (a spread, a diagnostic): reported, never gated."""
    return ScoreSpec(base, 0, label=label, **kw)


# Columns of the parallel-lines study (study/parallel_lines.py): closed-form divergences and the estimates
# and gradients of three objectives at one theta. Diagnostics of a toy, with no better side.
PARALLEL_LINES: Tuple[ScoreSpec, ...] = tuple(
    neutral(b, lab, count="")
    for b, lab in (
        ("theta", "θ"),
        ("js_true", "JS"),
        ("kl_true", "KL"),
        ("em_true", "EM"),
        ("tv_true", "TV"),
        ("js_gan", "JS (GAN est.)"),
        ("grad_gan_ns", "|∇θ| GAN ns"),
        ("grad_gan_minimax", "|∇θ| GAN minimax"),
        ("em_wgangp", "EM (WGAN-GP est.)"),
        ("grad_wgangp", "|∇θ| WGAN-GP"),
    )
)
_OWN = {s.base: "parallel-lines" for s in PARALLEL_LINES}


# ------------------------------------------------------------------------------------------------
# producers: registries whose entries declare scores (the metric registry)


class _Declares(Protocol):
    scores: Sequence[ScoreSpec]


class Producers(Protocol):
    """What ``register_producers`` takes: a registry of named entries that each carry ``scores``."""

    def names(self) -> List[str]: ...

    def get(self, name: str) -> _Declares: ...


_PRODUCERS: List[Producers] = []


def register_producers(registry: Producers) -> None:
    """Read score declarations from ``registry`` (its entries' ``scores``), live: an entry registered later
    (or removed) is seen by the next question. The metrics package calls this once, at its import."""
    if not any(r is registry for r in _PRODUCERS):
        _PRODUCERS.append(registry)


def _load_metrics() -> None:
    """Import the metrics package once (it registers itself); see the module docstring for its cost."""
    if not _PRODUCERS:
        importlib.import_module(METRICS_PACKAGE)


def _declared_now() -> Iterator[Tuple[str, ScoreSpec]]:
    for reg in _PRODUCERS:
        for m in reg.names():
            for s in reg.get(m).scores:
                yield m, s
    for s in PARALLEL_LINES:
        yield _OWN[s.base], s


def declared() -> Iterator[Tuple[str, ScoreSpec]]:
    """(producer, declaration) of every declared score: the metric's name, or 'parallel-lines'."""
    _load_metrics()
    return _declared_now()


def score_spec(base: str) -> ScoreSpec:
    """The declaration of score ``base`` (e.g. 'fid'), whichever metric declares it."""
    for _, s in declared():
        if s.base == base:
            return s
    raise KeyError(f"score '{base}' is not declared by any metric; add it to its @metric(scores=...)")


_cache: Dict[str, Any] = {}


def _by_base() -> Dict[str, Tuple[str, ScoreSpec]]:
    """base -> (producer, declaration), longest base first (rebuilt when a metric is registered)."""
    key = tuple(tuple(r.names()) for r in _PRODUCERS)
    if _cache.get("key") != key:
        table = {s.base: (p, s) for p, s in _declared_now()}
        _cache.update(key=key, table=dict(sorted(table.items(), key=lambda kv: -len(kv[0]))), names={})
    return _cache["table"]


def _lookup(name: str) -> Optional[Dict[str, Any]]:
    table = _by_base()
    memo = _cache["names"]
    if name not in memo:
        memo[name] = None
        for base, (producer, spec) in table.items():
            if name.startswith(base):
                p = spec.protocol(name)
                if p is not None:
                    memo[name] = {"spec": spec, "metric": producer, **p}
                    break
    return memo[name]


def resolve(name: str) -> Optional[Dict[str, Any]]:
    """{'spec', 'metric', 'n', 'split'} of a score name, or None when no declaration writes it. A name not
    declared so far loads the metrics package (once) and is looked up again."""
    r = _lookup(name)
    if r is None and not _PRODUCERS:
        _load_metrics()
        r = _lookup(name)
    return r


def metric_base(name: str) -> str:
    """'fid10k_test' -> 'fid'; 'kid_std10k_test' -> 'kid_std'; 'd_loss_var_last200' -> 'd_loss_var_last';
    an undeclared name is its own base."""
    r = resolve(name)
    return r["spec"].base if r else name


def direction(name: str) -> int:
    """-1 lower is better, +1 higher is better, 0 no preferred direction (or an undeclared name)."""
    r = resolve(name)
    return r["spec"].direction if r else 0

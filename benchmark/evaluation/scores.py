"""Score names answered from their declarations: which metric writes a score, its protocol and which way is
better.

Every score is declared once, by the metric that writes it (``@metric(..., scores=(lower("fid", "FID",
split=True), ...))`` in ``metrics.py``, see ``ScoreSpec``); the parallel-lines study's columns are
declared below. A name is resolved by matching it against those declarations: ``fid10k_test`` is score
``fid`` at N = 10,000 on the test split because ``lower("fid", split=True).name(10000, "test")`` writes
exactly that. The report and the gate import ``direction`` and ``metric_base`` from here, never from each
other; nothing parses a name with a pattern of its own.

A name that no declaration writes (an old record's score no metric declares any more, a typo) has no
direction (0: not gated, no best marked) and is its own base.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, Optional, Tuple

from benchmark.evaluation.metrics import METRICS, ScoreSpec, higher, lower, neutral

__all__ = [
    "ScoreSpec",
    "higher",
    "lower",
    "neutral",
    "direction",
    "metric_base",
    "resolve",
    "declared",
    "PARALLEL_LINES",
]

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


def declared() -> Iterator[Tuple[str, ScoreSpec]]:
    """(producer, declaration) of every declared score: the metric's name, or 'parallel-lines'."""
    for m in METRICS.names():
        for s in METRICS.get(m).scores:
            yield m, s
    for s in PARALLEL_LINES:
        yield _OWN[s.base], s


def _by_base() -> Dict[str, Tuple[str, ScoreSpec]]:
    """base -> (producer, declaration), longest base first (rebuilt when a metric is registered)."""
    key = tuple(METRICS.names())
    if _cache.get("key") != key:
        table = {s.base: (p, s) for p, s in declared()}
        _cache.update(key=key, table=dict(sorted(table.items(), key=lambda kv: -len(kv[0]))), names={})
    return _cache["table"]


_cache: Dict[str, Any] = {}


def resolve(name: str) -> Optional[Dict[str, Any]]:
    """{'spec', 'metric', 'n', 'split'} of a score name, or None when no declaration writes it."""
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


def metric_base(name: str) -> str:
    """'fid10k_test' -> 'fid'; 'kid_std10k_test' -> 'kid_std'; 'd_loss_var_last200' -> 'd_loss_var_last';
    an undeclared name is its own base."""
    r = resolve(name)
    return r["spec"].base if r else name


def direction(name: str) -> int:
    """-1 lower is better, +1 higher is better, 0 no preferred direction (or an undeclared name)."""
    r = resolve(name)
    return r["spec"].direction if r else 0

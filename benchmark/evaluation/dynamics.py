"""Training dynamics read from a run's per-step log (``RUN/log.jsonl``), up to a checkpoint step.

Over the last ``window`` logged steps up to and including the checkpoint (fewer where the log is shorter):

* ``d_loss_var_last{W}``, ``g_loss_var_last{W}``: the variance of the losses (oscillation);
* ``grad_norm_mean_last{W}``: the mean of the per-step mean critic gradient norm ||grad_x D|| at interpolates;
  ``grad_norm_std_last{W}``: the mean of its per-step spread over the batch; ``grad_norm_max_last{W}``: the
  largest per-step mean (objectives without a penalty log it every ``grad_norm_every`` steps only);
* ``wdist_mean_last{W}``, ``wdist_var_last{W}``: the critic's Wasserstein estimate (wgan objectives only).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional

from benchmark.rundir import read_log

DEFAULT_WINDOW = 200


def _values(rows: List[Dict], key: str) -> List[float]:
    out = []
    for r in rows:
        v = r.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            out.append(float(v))
    return out


def _mean(v: List[float]) -> float:
    return sum(v) / len(v) if v else float("nan")


def _var(v: List[float]) -> float:
    if len(v) < 2:
        return float("nan")
    m = _mean(v)
    return sum((x - m) ** 2 for x in v) / (len(v) - 1)


def dynamics(run_dir: str | Path, step: Optional[int] = None, window: int = DEFAULT_WINDOW) -> Dict[str, float]:
    """The figures above for ``step`` (default: the last logged step); {} when the run has no log."""
    rows = [r for r in read_log(Path(run_dir)) if step is None or r["step"] <= step]  # each has an integer step
    if not rows:
        return {}
    rows.sort(key=lambda r: r["step"])
    last = rows[-1]["step"]
    rows = [r for r in rows if r["step"] > last - window]
    w = f"_last{window}"
    out = {
        f"d_loss_var{w}": _var(_values(rows, "d_loss")),
        f"g_loss_var{w}": _var(_values(rows, "g_loss")),
    }
    gm = _values(rows, "grad_norm_mean")
    if gm:
        out[f"grad_norm_mean{w}"] = _mean(gm)
        out[f"grad_norm_std{w}"] = _mean(_values(rows, "grad_norm_std"))
        out[f"grad_norm_max{w}"] = max(gm)
    wd = _values(rows, "wdist")
    if wd:
        out[f"wdist_mean{w}"] = _mean(wd)
        out[f"wdist_var{w}"] = _var(wd)
    return out

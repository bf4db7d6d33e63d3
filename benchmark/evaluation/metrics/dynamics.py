"""Training dynamics (runs only, ``evaluate_run``): loss variance and |grad D| over the last logged steps.

dynamics   d_loss_var_last200, grad_norm_mean_last200, ... (see benchmark/evaluation/dynamics.py)
"""

from __future__ import annotations

from typing import Tuple

from benchmark.evaluation.dynamics import dynamics
from benchmark.evaluation.metrics.context import Context
from benchmark.evaluation.metrics.registry import Details, Scores, metric
from benchmark.evaluation.scores import neutral


# dynamics.py writes these names itself ('<base><window>'); score() checks them against this declaration
@metric(
    "dynamics",
    ("image", "stacked", "points"),
    needs_run=True,
    min_n=lambda ctx: 0,
    help="loss variance and |grad D| over the last 200 logged steps",
    scores=tuple(
        neutral(b, lab, count="window")
        for b, lab in (
            ("d_loss_var_last", "critic loss variance"),
            ("g_loss_var_last", "generator loss variance"),
            ("grad_norm_mean_last", "mean |grad D| at interpolates"),
            ("grad_norm_std_last", "batch spread of |grad D|"),
            ("grad_norm_max_last", "largest mean |grad D|"),
            ("wdist_mean_last", "Wasserstein estimate"),
            ("wdist_var_last", "Wasserstein estimate variance"),
        )
    ),
)
def _dynamics(ctx: Context) -> Tuple[Scores, Details]:
    return dynamics(ctx.opts.run_dir, ctx.opts.step), {}  # type: ignore[arg-type]

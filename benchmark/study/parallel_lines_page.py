"""The page of a parallel-lines study (the ``parallel-lines`` kind's): the mean over seeds of each θ's row.

per_seed.csv     every seed's table (one row per θ)
table.md/.csv    the mean over seeds per θ: closed forms, the critics' estimates, the generator gradients
js_vs_em.png     distances against θ, and the size and direction of the generator gradient each gives
"""

from __future__ import annotations

import pandas as pd

from benchmark.errors import UserError, quote
from benchmark.study import parallel_lines, store
from benchmark.study.page import Page
from benchmark.study.records import StudyRecords

# the columns every table has had (the signed ones came later and are optional): what the page and figure read
REQUIRED = parallel_lines.COLUMNS[: parallel_lines.COLUMNS.index("grad_wgangp") + 1]


def _checked(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """A trial's table as the page reads it: every required column, all numbers (one line otherwise)."""
    missing = [c for c in REQUIRED if c not in table.columns]
    bad = [str(c) for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if missing or bad:
        what = (
            f"lacks the column(s) {', '.join(missing)}"
            if missing
            else f"has column(s) {quote(', '.join(bad), 60)} that are not numbers"
        )
        raise UserError(
            f"trial {key}'s table ({store.PARALLEL_LINES_FILE}) {what}; delete it (the trial is run again by the next "
            "'ganbench study run')"
        )
    return table


def page(recs: StudyRecords) -> Page:
    frames = [_checked(t.table, t.key).assign(seed=t.seed) for t in recs.trials if t.table is not None]
    if not frames:
        raise UserError(f"study '{recs.index.study}' has no results yet; run 'ganbench study run' for it first")
    df = pd.concat(frames)
    mean = df.groupby("theta", as_index=False).mean(numeric_only=True).drop(columns=["seed"])
    md = parallel_lines.markdown_table(mean)
    out = Page()
    out.file("per_seed.csv", df.to_csv(index=False))
    out.file("table.csv", mean.to_csv(index=False))
    out.file("table.md", md + "\n")
    out.figure("js_vs_em.png", parallel_lines.figure(mean), **parallel_lines.SAVE)
    out.add(
        "## Results",
        "",
        f"Mean over {df['seed'].nunique()} seed(s); every seed: [per_seed.csv](per_seed.csv).",
        "",
        parallel_lines.TABLE_NOTE,
        "",
        md,
        "",
        "![Distances against θ, and the size and direction of the generator gradient each gives](js_vs_em.png)",
        "",
    )
    return out


__all__ = ["page"]

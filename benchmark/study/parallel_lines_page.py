"""The page of a parallel-lines study (the ``parallel-lines`` kind's): the mean over seeds of each θ's row.

per_seed.csv     every seed's table (one row per θ)
table.md/.csv    the mean over seeds per θ: closed forms, the critics' estimates, the generator gradients
js_vs_em.png     distances against θ, and the size and direction of the generator gradient each gives
"""

from __future__ import annotations

import pandas as pd

from benchmark.errors import UserError
from benchmark.study import parallel_lines
from benchmark.study.page import Page
from benchmark.study.records import StudyRecords


def page(recs: StudyRecords) -> Page:
    frames = [t.table.assign(seed=t.seed) for t in recs.trials if t.table is not None]
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

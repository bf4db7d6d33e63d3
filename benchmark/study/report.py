"""The report stage: ``ganbench report STUDY`` writes ``reports/<name>/`` from a study's stored records.

It locks the report folder, reads the study's index and records once (``records.py``), asks the study's kind
for its page (``StudyKind.page``: the GAN page is ``gan_page.py``, the parallel-lines page
``parallel_lines_page.py``) and writes what the page holds: README.md (the kind's sections, then Provenance),
the tables beside it (Markdown, CSV, LaTeX) and the figures.

The stage, in the order its modules import each other (each only what stands before it)::

    store        the results layout: file names, study indexes, the trial lock, the trial key
    schema       the typed spec (StudySpec, Budget, Trial)
    records      StudyRecords: the index, each trial's records, log, config and run info, the scores frame
    formatting, stats       the one number formatter; statistics over seeds (the sample sd, ddof = 1)
    claims, resolution      claims decided over seeds (Decision); where along training they resolve
    tables       the page's tables as DataFrames
    render       Markdown, LaTeX and CSV of those tables
    figures, panels         figures from frames and records (they open only the PNGs the records name)
    reference    the one computation: real-data rows (cached under <results>/reference/) and the toy2d
                 scatter's samples, regenerated from stored generators
    page         a page as data (sections, files, figures, notes) and its provenance
    gan_page, parallel_lines_page   each kind's page
    kinds        the study kinds (trials, how they run, their page); spec.py and runner.py after them
    report       this module

Nothing here scores a generator or runs code from the records. One colour per arm on every panel and page
(fixed from the arm order); an ∞ (e.g. reverse KL of a collapsed run) is never averaged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from benchmark import io
from benchmark.evaluation.scores import direction, metric_base
from benchmark.study import figures, records
from benchmark.study.kinds import KINDS
from benchmark.study.page import Page, provenance
from benchmark.study.records import StudyRecords
from benchmark.study.store import DEFAULT_PRESET, check_study_name, results_root

__all__ = ["build_report", "direction", "metric_base"]  # direction/metric_base: re-exported from scores

REPORT_LOCK = ".report.lock"  # one writer per report folder


def build_report(
    study: str,
    preset: Optional[str] = None,
    root: Optional[str | Path] = None,
    out_root: str | Path = "reports",
    tsne: Optional[bool] = None,
) -> Path:
    """Write ``<out_root>/<study>/`` from the records of ``study`` (at ``preset``, needed when it has several);
    ``tsne``: show the t-SNE panels (default: the spec's ``report.tsne``, else yes)."""
    check_study_name(study)  # a name, never a path or a pattern: the report stays inside out_root
    root = results_root(root)
    index = records.read_index(study, preset, root)
    kind = KINDS.get(index.spec.kind)
    recs = records.load(index, root, kind.table_file)
    page = kind.page(recs, tsne)  # read, checked and built before anything is written: a refused report writes nothing
    out = Path(out_root) / study
    out.mkdir(parents=True, exist_ok=True)
    # One writer per report folder; a report killed mid-write left temporaries that nobody else removes.
    with io.flock(out / REPORT_LOCK):
        io.remove_stale_temporaries(out)
        write(out, study, recs, page)
    return out


def write(out: Path, study: str, recs: StudyRecords, page: Page) -> None:
    """The page's files and figures, then README.md: title, description, the kind's sections, provenance."""
    for name, text in page.files.items():
        io.write_text(out / name, text)
    for name, (fig, savefig) in page.figures.items():
        figures.save(fig, out / name, **savefig)
    spec = recs.spec
    lines = [f"# {spec.title or study}", "", spec.description.strip(), ""] + page.lines
    lines += ["", "## Provenance", ""] + provenance(recs)
    lines += [
        "",
        f"Regenerate this page from the stored records with "
        f"`ganbench report {study} --preset {recs.index.preset or DEFAULT_PRESET}`.",
    ]
    io.write_text(out / "README.md", "\n".join(lines).replace("\n\n\n", "\n\n") + "\n")

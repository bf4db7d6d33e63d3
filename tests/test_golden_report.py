"""The golden report (issue 19): the committed records of two smoke studies, reported again, give byte-identical
pages: README.md, every Markdown table, every CSV and the LaTeX table, and the same set of files.

``tests/golden/results/`` is a results store as ``ganbench study run`` left it (tests/golden/README.md says how it
was made and what was kept); ``tests/golden/expected/<study>/`` is what the report stage wrote from it. The store
holds the real-data rows' cache (``reference/``), so the report scores nothing: the test checks that too.

Normalised before comparing, and nothing else (both are this machine's, not the records'):

* the line ``- code of this report (git commit): `...` `` (the commit of the code that makes the page), and
* the Python version at the end of the ``- torch: ...; Python X.Y.Z`` line of Provenance.

An intended change of a page (a bug fix) re-makes the expected files with
``GANBENCH_GOLDEN_UPDATE=1 pytest tests/test_golden_report.py``; its commit says why the pages changed.
"""

import difflib
import os
import re
import shutil
from pathlib import Path

import pytest

from benchmark.study.report import build_report

GOLDEN = Path(__file__).parent / "golden"
STUDIES = ("golden", "lines-golden")
COMPARED = (".md", ".csv", ".tex")
FILES = "FILES"  # expected/<study>/FILES: the name of every file the report writes, one per line
UPDATE = os.environ.get("GANBENCH_GOLDEN_UPDATE") == "1"


def normalise(text: str) -> str:
    """The page with the two machine-dependent values replaced by placeholders (see the module docstring)."""
    text = re.sub(r"^(- code of this report \(git commit\): )`[^`\n]*`$", r"\1`<commit>`", text, flags=re.M)
    return re.sub(r"^(- torch: .*; Python )\S+$", r"\1<version>", text, flags=re.M)


def _files(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("golden")
    root = tmp / "results"
    shutil.copytree(GOLDEN / "results", root)
    before = _files(root)
    outs = {s: build_report(s, None, root=root, out_root=tmp / "reports") for s in STUDIES}
    return outs, before, _files(root)


def test_the_report_reads_the_store_and_writes_nothing_there(reported):
    """The real-data rows come from the cached ``reference/`` records (a new file there: the cache key changed,
    e.g. the evaluator's sha256 or the default metrics, and the rows were scored again)."""
    _, before, after = reported
    assert after == before, f"the report wrote into the results store: {sorted(set(after) - set(before))}"


@pytest.mark.parametrize("study", STUDIES)
def test_the_page_is_byte_identical(reported, study):
    out = reported[0][study]
    want = GOLDEN / "expected" / study
    written = [n for n in _files(out) if not n.startswith(".")]  # not the report's lock
    if UPDATE:
        shutil.rmtree(want, ignore_errors=True)
        want.mkdir(parents=True)
        (want / FILES).write_text("\n".join(written) + "\n")
        for name in written:
            if name.endswith(COMPARED):
                (want / name).write_text(normalise((out / name).read_text()))
    assert written == (want / FILES).read_text().split(), "the report writes other files"
    compared = [n for n in written if n.endswith(COMPARED)]
    assert "README.md" in compared and "table.csv" in compared
    diffs = {}
    for name in compared:
        got, expected = normalise((out / name).read_text()), (want / name).read_text()
        if got != expected:
            lines = difflib.unified_diff(expected.splitlines(), got.splitlines(), "expected", "got", lineterm="")
            diffs[name] = "\n".join(lines)[:2000]
    assert not diffs, f"{study}: {', '.join(diffs)} differ from tests/golden/expected:\n" + "\n".join(diffs.values())


def test_normalise_touches_only_the_two_machine_values():
    page = (
        "- code of this report (git commit): `abc+dirty`\n"
        "- torch: 2.14.1; device: cpu (x, 1 threads); Python 3.11.7\n"
        "- code of the trials and scores (git commit): `abc`\n"
        "| 3.11.7 |\n"
    )
    assert normalise(page) == (
        "- code of this report (git commit): `<commit>`\n"
        "- torch: 2.14.1; device: cpu (x, 1 threads); Python <version>\n"
        "- code of the trials and scores (git commit): `abc`\n"
        "| 3.11.7 |\n"
    )

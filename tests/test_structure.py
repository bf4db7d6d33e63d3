"""The package's import graph has no cycle (issue 19), the study stage's modules import in one direction, and its
modules and functions stay short.

Every import counts, wherever it stands: at the top of a module, inside a function (a lazy import), under
``if TYPE_CHECKING:``, in a ``try``. An annotation-only import is an edge too: a cycle through it is still a
cycle a reader has to untangle, and ``from __future__ import annotations`` makes it unnecessary. Edges are
the modules named (``from benchmark.study import claims`` is an edge to ``benchmark.study.claims``); a
package's ``__init__`` that a dotted import runs on the way is not an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

REPO = Path(__file__).resolve().parents[1]

# The study stage, in the order its modules may import each other: each imports only modules before it.
STUDY_PIPELINE = [
    "store",
    "schema",
    "records",
    "formatting",
    "stats",
    "validity",
    "claims",
    "resolution",
    "registration",
    "tables",
    "render",
    "figures",
    "panels",
    "reference",
    "page",
    "validity_page",
    "gan_page",
    "parallel_lines",
    "parallel_lines_page",
    "kinds",
    "spec",
    "runner",
    "report",
    "cli",
]
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 100
SHORT = ["benchmark/study/*.py", "benchmark/regress/command.py"]  # the files whose sizes are held here


def modules(root: Path, package: str = "benchmark") -> Dict[str, Path]:
    """Module name -> file, for every .py under ``root/package`` (a package is its ``__init__``)."""
    out = {}
    for p in sorted((root / package).rglob("*.py")):
        parts = p.relative_to(root).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def import_graph(root: Path, package: str = "benchmark") -> Dict[str, Set[str]]:
    """module -> the package's modules it imports, from every import statement at any depth."""
    mods = modules(root, package)

    def known(name: str) -> str | None:
        parts = name.split(".")
        while parts and ".".join(parts) not in mods:
            parts.pop()
        return ".".join(parts) if parts else None

    graph: Dict[str, Set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        here = m.split(".") if path.name == "__init__.py" else m.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(here[: len(here) - (node.level - 1)] + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                k = known(t)
                if k is not None and k != m:
                    graph[m].add(k)
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    out: List[List[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_package_has_no_import_cycle():
    found = cycles(import_graph(REPO))
    assert not found, "import cycles (imports inside functions and TYPE_CHECKING blocks count): " + "; ".join(
        " <-> ".join(c) for c in found
    )


def test_the_cycle_check_sees_lazy_and_type_checking_imports(tmp_path):
    """Planted: a cycle closed only by an import inside a function, another only under TYPE_CHECKING."""
    pkg = tmp_path / "benchmark"
    (pkg / "sub").mkdir(parents=True)
    for f in ("__init__.py", "sub/__init__.py"):
        (pkg / f).write_text("")
    (pkg / "a.py").write_text("from benchmark.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from benchmark import a\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub.d import X\n")
    (pkg / "sub" / "d.py").write_text("import benchmark.c as c\nX = 1\n")
    (pkg / "e.py").write_text("import benchmark.sub\nfrom benchmark import a\n")  # no cycle: nothing imports e
    assert cycles(import_graph(tmp_path)) == [["benchmark.a", "benchmark.sub.b"], ["benchmark.c", "benchmark.sub.d"]]


def test_the_study_stage_imports_one_way():
    graph = import_graph(REPO)
    study = {m.rsplit(".", 1)[1] for m in graph if m.startswith("benchmark.study.")}
    assert study == set(STUDY_PIPELINE), "place each study module in STUDY_PIPELINE (the order it may import)"
    rank = {f"benchmark.study.{m}": i for i, m in enumerate(STUDY_PIPELINE)}
    backwards = [
        f"{m} imports {t}" for m, ts in graph.items() if m in rank for t in ts if t in rank and rank[t] >= rank[m]
    ]
    assert not backwards, backwards


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


@pytest.mark.parametrize("pattern", SHORT)
def test_the_study_stage_modules_and_functions_are_short(pattern):
    files = sorted(REPO.glob(pattern))
    assert files
    for p in files:
        text = p.read_text()
        assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{p.relative_to(REPO)}: over {MAX_MODULE_LINES} lines"
        for f in _functions(ast.parse(text)):
            n = f.end_lineno - f.lineno + 1
            assert n <= MAX_FUNCTION_LINES, f"{p.relative_to(REPO)}:{f.lineno} {f.name} is {n} lines"

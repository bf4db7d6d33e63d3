"""`ganbench study run|status` and `ganbench report`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional

from benchmark import io
from benchmark.errors import UserError, quote
from benchmark.paths import check_input_dir, check_name, check_output_dir
from benchmark.study import registration
from benchmark.study.report import build_report
from benchmark.study.runner import MAX_WORKERS, run_study, status, trials
from benchmark.study.spec import load_spec
from benchmark.study.store import check_study_name, results_root


def _spec_path(s: str) -> Path:
    p = Path(s)
    if p.suffix in (".yaml", ".yml"):
        return p
    check_study_name(s, "study")  # a name, not a path: it becomes studies/<name>.yaml
    cand = Path("studies") / f"{s}.yaml"
    if cand.exists():
        return cand
    raise UserError(f"study '{s}' not found; give a spec path (studies/NAME.yaml) or the name of one in ./studies")


def _check_results(results: Optional[str], write: bool) -> None:
    """The results store (--results, else $GANBENCH_RESULTS, else ./results) is a folder that can be written
    (``write``), or read when it exists; checked before any work."""
    if results is not None:
        root, what = results, "--results"  # ('' is refused: it is not the current folder)
    elif os.environ.get("GANBENCH_RESULTS"):
        root, what = str(results_root()), "$GANBENCH_RESULTS"
    else:
        root, what = str(results_root()), "the results store (default; set --results or $GANBENCH_RESULTS)"
    if write:
        check_output_dir(root, what)
        return
    check_name(root, what)
    if os.path.lexists(root):
        check_input_dir(root, what, "give the results store of 'ganbench study run' (--results)")


def _check_reports(reports: str, name: str) -> None:
    """``reports/<name>/`` can be written (checked before any work: a study trains for hours first)."""
    check_output_dir(reports, "--reports")
    check_output_dir(Path(reports) / name, f"--reports {quote(reports)}: the study's folder")


def _committed(path: Path, spec) -> Optional[dict]:
    """The registration committed beside the spec (checked), or None when there is none."""
    p = registration.committed_path(path, spec.name, spec.preset)
    return registration.check_committed(io.read_json(p), spec, p) if p.exists() else None


def _cmd_register(args: argparse.Namespace) -> int:
    path = _spec_path(args.spec)
    spec = load_spec(path, args.preset)
    p = registration.committed_path(path, spec.name, spec.preset)
    if p.exists():
        raise UserError(
            f"{quote(str(p))} exists: a registration is made once and never rewritten (a claim changed since shows "
            "on the page as amended); to start over, remove it and commit that too"
        )
    check_output_dir(p.parent, "the registrations folder")
    n = len(registration.record(spec)["claims"])
    io.write_json(p, registration.record(spec, 0, len(trials(spec))))
    print(f"registered {n} claims of {spec.name} [{spec.preset or 'default'}]: {p} (commit it before the first run)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    if not 1 <= args.workers <= MAX_WORKERS:
        raise UserError(f"--workers must be an integer in [1, {MAX_WORKERS}], got {args.workers}")
    path = _spec_path(args.spec)
    spec = load_spec(path, args.preset)
    committed = _committed(path, spec)
    _check_results(args.results, write=True)
    if not args.no_report:
        _check_reports(args.reports, spec.name)
    res = run_study(
        spec,
        root=args.results,
        workers=args.workers,
        executor=args.executor,
        scheduler=args.scheduler,
        data_root=args.data_root,
        progress=not args.quiet,
        report=not args.no_report,
        committed=committed,
    )
    ok = len(res["results"]) - len(res["failed"])
    print(
        f"study {spec.name} [{spec.preset or 'default'}]: {ok} of {len(res['results'])} trials finished",
        file=sys.stderr,
    )
    if ok and not args.no_report:
        out = build_report(spec.name, spec.preset or "default", root=args.results, out_root=args.reports)
        print(f"report: {out / 'README.md'}")
    if res["failed"]:
        by_key = {it["key"]: it for it in res["items"]}
        for r in res["failed"]:
            it = by_key[r["key"]]
            print(f"FAILED {it['variant']} seed {it['seed']} ({r['key']}): {r['error']}", file=sys.stderr)
        return 1
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    spec = load_spec(_spec_path(args.spec), args.preset)
    _check_results(args.results, write=False)
    rows = status(spec, root=args.results)
    w = max(len(r["variant"]) for r in rows)
    for r in rows:
        print(
            f"{r['variant']:<{w}}  seed {r['seed']:<3} {r['key']}  {r['status']}"
            + (f"  {r['error']}" if r["error"] else "")
        )
    counts = {s: sum(r["status"] == s for r in rows) for s in ("finished", "running", "partial", "failed", "missing")}
    print(f"{spec.name} [{spec.preset or 'default'}]: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    name = Path(args.study).stem if args.study.endswith((".yaml", ".yml")) else args.study
    check_study_name(name, "study")  # a name, not a path or a pattern: it names an index and a folder
    _check_results(args.results, write=False)
    _check_reports(args.reports, name)
    out = build_report(name, args.preset, root=args.results, out_root=args.reports)
    print(f"report: {out / 'README.md'}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("study", help="run a study (trials over seeds) or show its status")
    ss = p.add_subparsers(dest="study_command", metavar="ACTION", parser_class=type(p))
    ss.required = True
    r = ss.add_parser("run", help="train and score every trial not yet finished, then write the report")
    r.add_argument("spec", help="studies/NAME.yaml (or NAME)")
    r.add_argument("--preset", default="quick", help="smoke | quick | long (default quick)")
    r.add_argument("--workers", type=int, default=2, help="parallel trials, one torch thread each (default 2)")
    r.add_argument("--executor", default="local", help="local (process pool) | dask")
    r.add_argument(
        "--scheduler",
        default=None,
        help="tcp://HOST:8786 of a running Dask scheduler (dask executor); the workers "
        "need not share the results folder: each trial's files come back to this process",
    )
    r.add_argument("--data-root", default=None, help="dataset root (default $GANBENCH_DATA, else ./data)")
    r.add_argument("--results", default=None, help="results store (default $GANBENCH_RESULTS, else ./results)")
    r.add_argument("--reports", default="reports", help="where reports/<study>/ is written")
    r.add_argument("--no-report", action="store_true", help="skip the report stage")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_run)
    g = ss.add_parser(
        "register",
        help="fix the claims, seeds and budget before any run: studies/registered/NAME-PRESET.json, to commit",
    )
    g.add_argument("spec", help="studies/NAME.yaml (or NAME)")
    g.add_argument("--preset", default="quick", help="smoke | quick | long (default quick)")
    g.set_defaults(func=_cmd_register)
    s = ss.add_parser("status", help="what is finished, running, partial, failed or missing")
    s.add_argument("spec")
    s.add_argument("--preset", default="quick")
    s.add_argument("--results", default=None)
    s.set_defaults(func=_cmd_status)
    rp = sub.add_parser("report", help="write reports/<study>/ from the stored records")
    rp.add_argument("study", help="study name (or its spec path)")
    rp.add_argument("--preset", default=None, help="which preset's results (needed when several exist)")
    rp.add_argument("--results", default=None)
    rp.add_argument("--reports", default="reports")
    rp.set_defaults(func=_cmd_report)

"""`ganbench study run|status` and `ganbench report`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.errors import UserError
from benchmark.study.report import build_report
from benchmark.study.runner import run_study, status
from benchmark.study.spec import load_spec


def _spec_path(s: str) -> Path:
    p = Path(s)
    if p.suffix in (".yaml", ".yml"):
        return p
    cand = Path("studies") / f"{s}.yaml"
    if cand.exists():
        return cand
    raise UserError(f"study '{s}' not found; give a spec path (studies/NAME.yaml) or the name of one in ./studies")


def _cmd_run(args: argparse.Namespace) -> int:
    spec = load_spec(_spec_path(args.spec), args.preset)
    res = run_study(
        spec,
        root=args.results,
        workers=args.workers,
        executor=args.executor,
        scheduler=args.scheduler,
        data_root=args.data_root,
        progress=not args.quiet,
        report=not args.no_report,
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
    out = build_report(name, args.preset, root=args.results, out_root=args.reports)
    print(f"report: {out / 'README.md'}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("study", help="run a study (trials over seeds) or show its status")
    ss = p.add_subparsers(dest="study_command", metavar="ACTION", parser_class=type(p))
    ss.required = True
    r = ss.add_parser("run", help="train and score every trial not yet finished, then write the report")
    r.add_argument("spec", help="studies/NAME.yaml (or NAME)")
    r.add_argument("--preset", default="quick", help="smoke | quick | paper (default quick)")
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

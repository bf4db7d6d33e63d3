"""``ganbench regress``: the command line, the comparison run and ``--update``."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Dict, List, Optional

from benchmark import io
from benchmark.config import parse_set
from benchmark.errors import UserError
from benchmark.paths import check_output_dir, check_output_file
from benchmark.regress.baseline import (
    DEFAULT_CALIBRATE,
    build_baseline,
    default_baseline,
    describe_changes,
    load_baseline,
)
from benchmark.regress.compare import compare, counts, gated, junit_xml, table
from benchmark.regress.env import check_evaluators, devices, env_difference, environment, evaluators
from benchmark.regress.suite import (
    Suite,
    SuiteRun,
    calibration_seeds,
    check_models,
    data_missing,
    load_suite,
    run_suite,
    suite_path,
    trial_id,
    trial_seconds,
)

__all__ = ["UpdateOptions", "cmd_regress", "add_parsers"]


@dataclass(frozen=True)
class UpdateOptions:
    """What ``--update`` needs besides the run's scores: the suite, where the baseline goes, how to calibrate,
    and what the gate found out before running (skipped trials, evaluators, environment)."""

    suite: Suite
    baseline: Path
    old: Optional[Dict[str, Any]]  # the baseline being replaced; None when there is none (or it is unreadable)
    calibrate: Optional[int]  # --calibrate K: re-derive every tolerance over K seeds; None: only missing ones
    command: str  # recorded in the baseline
    skipped: Dict[str, str]  # trial id -> why (its old entry is kept)
    evaluators: Dict[str, Dict[str, Any]]
    environment: Dict[str, Any]
    work: Path  # where calibration trials run
    data_root: Optional[str]
    workers: int
    progress: bool


def _workdir(keep: Optional[str]) -> ContextManager[str]:
    if keep is not None:
        p = _check_keep(keep)
        p.mkdir(parents=True, exist_ok=True)
        return contextlib.nullcontext(str(p))
    _remove_orphaned_workdirs()
    return tempfile.TemporaryDirectory(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-")


WORKDIR_PREFIX = "ganbench-regress-"


def _remove_orphaned_workdirs() -> None:
    """Delete work folders of gate runs whose process is gone (a kill -9 cannot clean up after itself).

    A folder is named ``ganbench-regress-<pid>-<random>``; it is left alone while that pid is alive.
    """
    for d in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*-*"):
        pid = d.name[len(WORKDIR_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or not d.is_dir() or _alive(int(pid)):
            continue
        shutil.rmtree(d, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _check_flags(args: argparse.Namespace) -> None:
    if args.calibrate is not None and not args.update:
        raise UserError("--calibrate K re-derives the baseline's tolerances: use it with --update")
    if args.calibrate is not None and args.calibrate < 2:
        raise UserError(f"--calibrate needs K >= 2 seeds to measure a spread, got {args.calibrate}")
    if args.set and args.update:
        raise UserError(
            "--set is for trying a changed config against the baseline, not for writing one; edit the "
            "suite file to change the suite, then run --update"
        )
    if args.calibrate is not None and args.calibrate > MAX_CALIBRATE:
        raise UserError(f"--calibrate K runs every trial K times: K must be <= {MAX_CALIBRATE}, got {args.calibrate}")
    if args.workers < 1 or args.workers > MAX_WORKERS:
        raise UserError(f"--workers must be >= 1 and <= {MAX_WORKERS}, got {args.workers}")
    _check_paths(args)


MAX_WORKERS = 256  # trial processes at once
MAX_CALIBRATE = 100  # seeds per trial for a tolerance
WORK_BYTES = 64 << 20  # room the gate's trials need (the ci suite writes ~10 MiB)


def _check_keep(keep: str) -> Path:
    p = check_output_dir(keep, "--keep", WORK_BYTES)
    if p.is_dir() and any(p.iterdir()):
        raise UserError(f"--keep folder '{p}' is not empty; the gate runs its trials fresh: give a new folder")
    return p


def _check_paths(args: argparse.Namespace) -> None:
    """Every path the gate writes, checked before any trial runs (kind, permissions, room): --junit, --keep or
    the temporary folder, and with --update the baseline."""
    if args.junit is not None:
        check_output_file(args.junit, "--junit")
    if args.keep is not None:
        _check_keep(args.keep)
    else:
        try:
            tmp = tempfile.gettempdir()
        except (FileNotFoundError, OSError):
            raise UserError(
                "no usable temporary folder ($TMPDIR, /tmp, ...) for the gate's trials; set TMPDIR to a folder you "
                "can write to, or give --keep DIR"
            ) from None
        check_output_dir(tmp, "the temporary folder ($TMPDIR)", WORK_BYTES)
    if args.update:
        bpath = Path(args.baseline) if args.baseline else default_baseline(suite_path(args.suite))
        check_output_file(bpath, "--baseline")


@dataclass(frozen=True)
class Gate:
    """What the gate knows before it runs anything: the suite, the baseline, what is skipped and why, the
    evaluators and the environment (everything that can fail as bad input has been checked)."""

    suite: Suite
    sfile: Path  # the suite's spec file
    baseline: Path
    create: str  # the command that writes this baseline (named in messages)
    old: Optional[Dict[str, Any]]  # the baseline; None when there is none (or --update and it is unreadable)
    data_root: Optional[str]
    missing: Dict[str, str]  # dataset -> why it is not here
    skipped: Dict[str, str]  # trial id -> why
    evaluators: Dict[str, Dict[str, Any]]
    environment: Dict[str, Any]


def cmd_regress(args: argparse.Namespace) -> int:
    t_start = time.time()
    _check_flags(args)
    g = _prepare(args)
    with _workdir(args.keep) as work_dir:
        work = Path(work_dir)
        run = _run(args, g, work)
        rows = _compare(args, g, run, work)
        c = counts(rows)
        elapsed = time.time() - t_start
        if args.junit:
            io.write_text(
                args.junit, junit_xml(rows, g.sfile.stem, elapsed, g.environment, trial_seconds(work / "suite"))
            )
        if args.update:
            return _update(run, _update_options(args, g, work))
    return _summary(args, g, rows, c, elapsed)


def _prepare(args: argparse.Namespace) -> Gate:
    """Load the suite and the baseline, find what cannot run here, check models and evaluators: before any
    training (a missing evaluator or a user model that does not import is one line)."""
    sfile = suite_path(args.suite)
    bpath = Path(args.baseline) if args.baseline else default_baseline(sfile)
    create = (
        f"ganbench regress --suite {args.suite}"
        + (f" --baseline {args.baseline}" if args.baseline else "")
        + " --update"
    )
    suite = load_suite(sfile, args.preset, parse_set(args.set), args.only)
    if args.set:
        print(f"overrides applied to every trial: {' '.join(args.set)}")
    ts, selected = suite.trials, suite.ids

    old: Optional[Dict[str, Any]] = None
    if args.update:
        try:
            old = load_baseline(bpath, create)
        except UserError as e:
            if bpath.exists():
                print(f"note: {e}; writing a new one")
    else:
        old = load_baseline(bpath, create)

    data_root = args.data_root or os.environ.get("GANBENCH_DATA") or None
    missing = data_missing(ts, data_root)
    skipped = {
        suite.id(t): f"dataset '{t.config.dataset}': {missing[t.config.dataset]}"
        for t in ts
        if t.config.dataset in missing
    }
    for tid, why in skipped.items():
        print(f"skipped: {tid}: {why}")
    if len(selected) < len(suite.all_ids):
        print(
            f"note: --only '{args.only}' selects {len(selected)} of {len(suite.all_ids)} trials; the others are "
            "not compared"
        )
    check_models(ts)  # a user's 'module:function' that does not import: one line, before any training
    run_datasets = sorted({t.config.dataset for t in ts if t.config.dataset not in missing})
    evs = evaluators(ts, run_datasets, suite.spec.metrics)  # UserError when one is missing: before any training
    env = environment(devices(ts))
    if old is not None:
        if not args.update:
            check_evaluators(old["evaluators"], evs, bpath, create)
        diff = env_difference(old.get("environment", {}), env)
        if diff:
            print(
                f"note: baseline '{bpath}' was made in another environment ({'; '.join(diff)}); scores may move "
                "for that reason alone; comparing anyway"
            )
    return Gate(suite, sfile, bpath, create, old, data_root, missing, skipped, evs, env)


def _run(args: argparse.Namespace, g: Gate, work: Path) -> SuiteRun:
    """The suite's trials afresh in ``work`` (a variant is dropped when its dataset is missing: then every seed
    of it is skipped)."""
    run_spec = g.suite.without_datasets(list(g.missing))
    n_run = sum(1 for t in g.suite.trials if t.config.dataset not in g.missing)
    if run_spec is None or not n_run:
        return SuiteRun({}, {}, 0.0)
    print(
        f"running {n_run} trial(s) of suite '{g.sfile}' afresh in '{work}' ({args.workers} worker(s), "
        f"1 thread each, deterministic)",
        flush=True,
    )
    return run_suite(run_spec, work / "suite", g.data_root, args.workers, not args.quiet, g.suite.multi_seed)


def _compare(args: argparse.Namespace, g: Gate, run: SuiteRun, work: Path) -> List[Any]:
    """Each score of the run against the baseline; prints the notes and (with a baseline) the table."""
    rows, notes = compare(g.old or {"trials": {}}, run, g.skipped, g.suite.ids)
    if g.old is not None and not args.update:
        gone = [t for t in g.old["trials"] if t not in g.suite.all_ids]
        if gone:
            notes.append(f"the baseline holds trials the suite no longer has ({', '.join(gone)}); --update drops them")
    for n in notes:
        print(f"note: {n}")
    if g.old is not None:
        print(table(rows, brief=args.brief or args.update))
    return rows


def _update_options(args: argparse.Namespace, g: Gate, work: Path) -> UpdateOptions:
    command = (
        "ganbench regress " + " ".join(sys.argv[2:])
        if len(sys.argv) > 2 and sys.argv[1] == "regress"
        else f"ganbench regress --suite {args.suite} --update"
        + (f" --calibrate {args.calibrate}" if args.calibrate else "")
    )
    return UpdateOptions(
        suite=g.suite,
        baseline=g.baseline,
        old=g.old,
        calibrate=args.calibrate,
        command=command,
        skipped=g.skipped,
        evaluators=g.evaluators,
        environment=g.environment,
        work=work,
        data_root=g.data_root,
        workers=args.workers,
        progress=not args.quiet,
    )


def _summary(args: argparse.Namespace, g: Gate, rows: List[Any], c: Dict[str, int], elapsed: float) -> int:
    """The gate's verdict line, the regressions by trial, how to accept improvements; 1 when it fails."""
    plural = {"REGRESSION": "regression", "improvement": "improvement", "error": "error"}
    summary = ", ".join(
        f"{c[k]} {plural.get(k, k)}{'s' if k in plural and c[k] != 1 else ''}"
        for k in ("REGRESSION", "missing", "error", "improvement", "new", "ok", "skipped")
        if c.get(k)
    )
    failed = any(r.fails for r in rows)
    print(
        f"regress {g.sfile.stem}: {'FAILED' if failed else 'passed'}: {summary or 'nothing compared'} "
        f"({elapsed:.0f} s; baseline {g.baseline})"
    )
    if c.get("REGRESSION"):
        by: Dict[str, List[str]] = {}
        for r in rows:
            if r.verdict == "REGRESSION":
                by.setdefault(r.trial, []).append(r.metric)
        print(
            "regressions: "
            + "; ".join(f"{t} ({', '.join(ms) if len(ms) <= 4 else f'{len(ms)} scores'})" for t, ms in by.items())
        )
    if c.get("improvement") and not failed:
        print(f"improvements beyond tolerance: accept them with '{g.create}'")
    if args.junit:
        print(f"junit: {args.junit}")
    return 1 if failed else 0


def _update(run: SuiteRun, o: UpdateOptions) -> int:
    if run.failed:
        for tid, err in run.failed.items():
            print(f"error: {tid}: {err}")
        print(f"not updating '{o.baseline}': {len(run.failed)} trial(s) failed; fix them first")
        return 1
    spec, multi = o.suite.spec, o.suite.multi_seed
    old_trials = (o.old or {}).get("trials", {})
    # trials that need a calibration: all with --calibrate, else those with a score lacking a tolerance
    if o.calibrate:
        k = o.calibrate
        need = set(run.scores)
    else:
        k = DEFAULT_CALIBRATE
        need = {
            tid
            for tid, s in run.scores.items()
            if any(m not in old_trials.get(tid, {}).get("metrics", {}) for m in gated(s["metrics"]))
        }
        if need:
            print(
                f"calibrating tolerances of {len(need)} trial(s) that have none over {k} seeds "
                f"(--calibrate K to choose K, or to re-calibrate all)"
            )
    cal: Optional[Dict[str, Dict[str, List[float]]]] = None
    seeds = calibration_seeds(spec.seeds, k)
    if need:
        if multi:
            raise UserError(
                "--calibrate needs a suite with one seed per trial (seeds: [S]); the other "
                "calibration seeds are chosen after it"
            )
        extra = [s for s in seeds if s not in spec.seeds]
        variants = [v for v in spec.variants if trial_id(v["name"], spec.seeds[0], multi) in need]
        cal_spec = dataclasses.replace(spec, variants=variants, seeds=extra)
        print(
            f"calibration: {len(variants)} trial(s) x {len(extra)} more seed(s) ({', '.join(map(str, extra))})",
            flush=True,
        )
        crun = run_suite(cal_spec, o.work / "calibration", o.data_root, o.workers, o.progress, True)
        if crun.failed:
            for tid, err in crun.failed.items():
                print(f"error: calibration {tid}: {err}")
            print(f"not updating '{o.baseline}': {len(crun.failed)} calibration trial(s) failed")
            return 1
        cal = {}
        for tid in need:
            vals: Dict[str, List[float]] = {m: [v] for m, v in gated(run.scores[tid]["metrics"]).items()}
            for s in extra:
                other = crun.scores[trial_id(run.scores[tid]["variant"], s, True)]
                for m, v in gated(other["metrics"]).items():
                    vals.setdefault(m, []).append(v)
            cal[tid] = vals
    keep = dict(o.skipped)
    selected = o.suite.ids
    for tid in old_trials:
        if tid in o.suite.all_ids and tid not in selected:
            keep[tid] = "not selected by --only"
    for tid, why in keep.items():
        if tid in old_trials:
            print(f"note: kept from the old baseline: '{tid}' ({why})")
    new = build_baseline(
        o.old,
        run,
        cal,
        k if cal is not None else None,
        seeds if cal is not None else None,
        keep,
        o.suite.file,
        o.evaluators,
        o.environment,
        o.command,
    )
    io.write_json(o.baseline, new)
    print(f"updated '{o.baseline}':")
    for line in describe_changes(o.old, new):
        print(f"  {line}")
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "regress",
        help="CI gate: run a suite of short trials afresh and compare scores with a baseline",
        description="Train and score the suite's trials afresh (temporary results root, deterministic, one thread "
        "per trial) and compare every directional score of the final step with the baseline: worse "
        "beyond its tolerance is a regression (exit 1). --update writes the baseline.",
    )
    p.add_argument("--suite", default="ci", help="studies/NAME.yaml by name, or a spec path (default: ci)")
    p.add_argument("--baseline", help="baseline JSON (default: benchmark/baselines/<suite>.json beside studies/)")
    p.add_argument("--update", action="store_true", help="rewrite the baseline with the current scores")
    p.add_argument(
        "--calibrate",
        type=int,
        metavar="K",
        help="with --update: re-derive every tolerance from the spread over K seeds",
    )
    p.add_argument("--junit", metavar="OUT.xml", help="also write JUnit XML, one testcase per trial score")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config key in every trial (repeatable; steps=N replaces the budget)",
    )
    p.add_argument("--only", metavar="REGEX", help="run only the trials whose name matches")
    p.add_argument("--preset", default=None, help="a preset of the suite spec")
    p.add_argument("--data-root", default=None, help="dataset root (default $GANBENCH_DATA, else ./data)")
    p.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="trials in parallel, one thread each (default: 2, or 1 on one core)",
    )
    p.add_argument(
        "--keep",
        metavar="DIR",
        help="run the trials in this new folder and keep it (default: a temporary folder, removed)",
    )
    p.add_argument("--brief", action="store_true", help="print only the rows that are not ok")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_regress)

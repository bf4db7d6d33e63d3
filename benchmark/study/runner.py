"""Run a study's trials on a local process pool or a Dask cluster, idempotently.

The store is ``results/trials/<key>/``, one directory per trial named by the hash of what decides its numbers
(its resolved config, seed and budget included): running a study again trains nothing that is finished and
resumes what was interrupted (the engine's resume). A lock per trial (``flock``) keeps two studies that share a
trial from writing it at once, so they never duplicate its records. ``attempts.jsonl`` in each trial records
every time it was actually trained or scored, so "a second run trains nothing" is checked from the store.

The same function, ``run_trial``, runs under every executor and dispatches to the trial's kind
(``benchmark/study/kinds.py``); a trial that fails (diverges, raises) is recorded in ``failed.json`` with its
error and the others go on.

Faults: local pool workers end when the study's process dies, even by ``kill -9`` (``PR_SET_PDEATHSIG`` on
Linux, and a thread that watches the parent's pid everywhere). With ``--scheduler`` the Dask workers may be
other machines that do not see the results folder: each trial runs in a temporary folder on its worker and its
files come back to the client in the result (every file but the resumable ``last.pt``), which installs them
in the store under the trial's lock.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional

import torch
from threadpoolctl import threadpool_limits  # a scikit-learn dependency
from tqdm.auto import tqdm

from benchmark import io, rundir
from benchmark.errors import UserError, quote
from benchmark.evaluation.runs import record_key
from benchmark.study import registration, store
from benchmark.study.kinds import KINDS
from benchmark.study.spec import StudySpec, Trial, trials
from benchmark.study.store import ATTEMPTS_FILE, FAILED_FILE, LOCK_FILE, RUN_DIR, results_root, trial_lock

EXECUTORS = ("local", "dask")
MAX_WORKERS = 256  # parallel trials (the same bound as `ganbench regress --workers`)
# What a remote worker does not send back: the resumable state (G, D, optimisers; the generator weights at
# the scored steps do come back) and the locks.
NOT_SHIPPED = (
    f"{RUN_DIR}/{rundir.CHECKPOINT_DIR}/{rundir.LAST_CHECKPOINT}",
    LOCK_FILE,
    f"{RUN_DIR}/{rundir.LOCK_FILE}",
)
METRICS = f"{RUN_DIR}/{rundir.METRICS_FILE}"
MERGED = (ATTEMPTS_FILE, METRICS)  # appended to the client's, never replaced
PARENT_POLL_S = 0.5


def trial_dir(root: Path, trial: Trial) -> Path:
    return store.trial_dir(root, trial.key)


# ------------------------------------------------------------------------------------------------
# the worker side


def run_trial(payload: Dict[str, Any]) -> Dict[str, Any]:
    """Train (or resume) and score one trial. Runs in a worker process; never raises."""
    threads = payload.get("threads") or 1
    torch.set_num_threads(threads)
    # numpy/scipy BLAS (torch-fidelity's KID, precision/recall) with the same thread count as torch under
    # every executor: Dask workers default BLAS to 1 thread, a pool worker to all cores, and a different
    # thread count sums in a different order, so scores would differ in the last digits between executors.
    with threadpool_limits(limits=threads):
        if not payload.get("ship"):
            return _run_trial(Path(payload["dir"]), payload)
        # a worker that may not see the client's results folder: run here, send the files back
        with tempfile.TemporaryDirectory(prefix="ganbench-trial-") as tmp:
            d = store.trial_dir(Path(tmp), payload["key"])
            res = _run_trial(d, payload)
            return {**res, "files": pack(d), "remote_dir": str(d)}


def _run_trial(d: Path, payload: Dict[str, Any]) -> Dict[str, Any]:
    try:
        with trial_lock(d):
            res = KINDS.get(payload["kind"]).run(d, payload)
            store.clear_failure(d)
            return {"key": payload["key"], "status": "ok", **res}
    except Exception as e:  # recorded, and the study goes on
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        store.record_failure(d, f"{type(e).__name__}: {msg}", traceback.format_exc())
        return {"key": payload["key"], "status": "failed", "error": f"{type(e).__name__}: {msg}"}


def pack(d: Path) -> Dict[str, bytes]:
    """The trial's files (relative POSIX path -> bytes), but for the resumable state and the locks."""
    out = {}
    for p in sorted(d.rglob("*")):
        rel = p.relative_to(d).as_posix()
        if p.is_file() and rel not in NOT_SHIPPED and not p.name.startswith("."):
            out[rel] = p.read_bytes()
    return out


def install(d: Path, res: Dict[str, Any]) -> None:
    """Put a remote trial's files (``res['files']``) into the store's trial directory ``d``, under its lock.

    A failed trial brings back only its ``failed.json`` (a finished result is never overwritten by a failed
    one); records files are appended to (new records only), the others replaced atomically, ``done.json`` last.
    """
    files = res.get("files") or {}
    for rel in files:  # a path from a worker names a file inside this trial, nothing else
        parts = PurePosixPath(rel).parts
        if PurePosixPath(rel).is_absolute() or not parts or ".." in parts or rel in NOT_SHIPPED:
            raise UserError(
                f"a Dask worker sent back '{rel}' for trial {d.name}: not a file of a trial; "
                "check the workers run this version of ganbench"
            )
    if res["status"] != "ok":
        files = {k: v for k, v in files.items() if k == FAILED_FILE}
    done = f"{RUN_DIR}/{rundir.DONE_FILE}"
    with trial_lock(d):
        for rel in sorted(files, key=lambda r: r == done):
            path = d / rel
            if rel in MERGED:
                # a score is one record per (step, metrics, evaluator, N, split), whoever computed it
                ident = record_key if rel == METRICS else (lambda r: json.dumps(r, sort_keys=True))
                have = {ident(r) for r in io.read_jsonl_checked(path, "records file", "delete it or restore it")}
                new = []
                for line in _lines(files[rel], rel, d):
                    r = _relocate(line, res.get("remote_dir") or "", str(d))
                    if r is not None and ident(r) not in have:
                        have.add(ident(r))
                        new.append(r)
                if new:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    io.append_jsonl(path, new)
                continue
            with io.atomic_path(path) as tmp:
                tmp.write_bytes(files[rel])
        if done in files:  # the client's own partial state is superseded by the finished run
            rundir.last_checkpoint_path(d / RUN_DIR).unlink(missing_ok=True)
        if res["status"] == "ok":
            store.clear_failure(d)


def _lines(data: bytes, rel: str, d: Path) -> List[Dict[str, Any]]:
    """The records of a records file a worker sent back (JSON objects, one a line): anything else is one line."""
    what = f"a Dask worker sent back '{rel}' for trial {d.name}, and it"
    fix = "check the workers run this version of ganbench"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{what} is not UTF-8 text; {fix}") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line, parse_int=io.bounded_int)
        except (ValueError, RecursionError):
            raise UserError(f"{what} holds a line that is not a JSON record (line {n}); {fix}") from None
        if not isinstance(r, dict):
            raise UserError(f"{what} holds a line that is not a record (line {n}); {fix}")
        out.append(r)
    return out


def _relocate(obj: Any, old: str, new: str) -> Any:
    """Paths in a record that point into the worker's temporary trial folder, made to point into ``new``."""
    if isinstance(obj, dict):
        return {k: _relocate(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_relocate(v, old, new) for v in obj]
    if old and isinstance(obj, str) and (obj == old or obj.startswith(old + "/")):
        return new + obj[len(old) :]
    return obj


# ------------------------------------------------------------------------------------------------
# pool workers die with the study


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Initializer of a pool worker: end it when the study's process ``parent`` ends, even by ``kill -9``
    (which runs no clean-up in the parent). Training state is safe: every write is atomic, and the trial
    resumes from its last checkpoint the next time the study runs."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the kernel kills us when the parent dies
    if os.getppid() != parent:  # it died before the prctl took effect: nobody would signal
        os._exit(1)
    # elsewhere (and as a second guard): poll the parent's pid; an orphan is re-parented (pid changes)
    threading.Thread(target=_watch_parent, args=(parent,), name="ganbench-watch-parent", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


# ------------------------------------------------------------------------------------------------
# the client side


def payloads(
    spec: StudySpec,
    root: Path,
    data_root: Optional[str] = None,
    ts: Optional[List[Trial]] = None,
    report: bool = False,
) -> List[Dict[str, Any]]:
    """What each worker gets: the trial's identity and its kind's payload (the config resolved once)."""
    kind = KINDS.get(spec.kind)
    return [
        {
            "kind": spec.kind,
            "key": t.key,
            "dir": str(trial_dir(root, t)),
            "variant": t.variant,
            "values": t.values,
            "seed": t.seed,
            **kind.payload(t, spec, data_root, report),
        }
        for t in (trials(spec) if ts is None else ts)
    ]


def write_index(spec: StudySpec, root: Path, items: List[Dict[str, Any]], argv: Optional[List[str]] = None) -> Path:
    index = {
        "study": spec.name,
        "preset": spec.preset,
        "spec": spec.to_dict(),
        "command": " ".join(argv or sys.argv),
        "git_commit": io.git_commit(),
        "trials": [{k: it[k] for k in ("key", "variant", "values", "seed")} for it in items],
    }
    return store.write_index(root, spec.name, spec.preset, index)


def register(
    spec: StudySpec, root: Path, items: List[Dict[str, Any]], committed: Optional[Dict[str, Any]] = None
) -> bool:
    """Register the study's claims, seeds and budget before its first trial starts (``store.register``: once,
    never overwritten); counts the trials that had already trained (a study first run before registration).
    ``committed``: a registration made ahead and committed beside the spec (checked), taken as it is."""
    kind = KINDS.get(spec.kind)
    if store.registration_path(root, spec.name, spec.preset).exists():
        return False
    before = sum(kind.status(Path(it["dir"]), it) != "missing" for it in items)
    rec = {**committed, "trials_run_before": before} if committed else registration.record(spec, before, len(items))
    return store.register(root, spec.name, spec.preset, rec)


def run_study(
    spec: StudySpec,
    root: Optional[str | Path] = None,
    workers: int = 2,
    executor: str = "local",
    scheduler: Optional[str] = None,
    data_root: Optional[str] = None,
    progress: bool = True,
    threads_per_worker: int = 1,
    ship: Optional[bool] = None,
    report: bool = False,
    committed: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """Run every trial not yet finished; returns {results: [...], failed: [...], items: [...]}.

    ``committed``: the registration committed beside the spec (``registration.check_committed``), if any.
    ``report``: a report follows, so the trials also score what its figures read (the t-SNE panels).
    ``ship`` (default: with ``scheduler``): trials run in a temporary folder on their worker and their files
    are sent back and installed here, so the workers need not share the results folder.
    """
    if executor not in EXECUTORS:
        raise UserError(f"executor '{executor}' is not known; allowed: {', '.join(EXECUTORS)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise UserError(f"--workers must be an integer in [1, {MAX_WORKERS}], got {workers}")
    if threads_per_worker < 1:
        raise UserError(f"threads per worker must be >= 1, got {threads_per_worker}")
    if scheduler and executor != "dask":
        raise UserError("--scheduler needs --executor dask")
    ship = bool(scheduler) if ship is None else ship
    root = results_root(root)
    kind = KINDS.get(spec.kind)
    ts = trials(spec)
    if not ship:  # remote workers bring their own evaluators
        kind.preflight(spec, ts)
    items = payloads(spec, root, data_root, ts, report)
    for it in items:
        it["threads"] = threads_per_worker
    client = _connect(scheduler) if executor == "dask" and scheduler else None  # nothing is written before it answers
    write_index(spec, root, items)
    register(spec, root, items, committed)

    bar = tqdm(
        total=len(items),
        desc=f"study {spec.name} [{spec.preset or 'default'}]",
        unit="trial",
        disable=not progress,
        dynamic_ncols=True,
    )
    results: List[Dict[str, Any]] = []
    state = {"running": 0, "failed": 0}

    def done(res: Dict[str, Any]) -> None:
        if ship and "files" in res:
            install(store.trial_dir(root, res["key"]), res)
            res = {k: v for k, v in res.items() if k != "files"}
        results.append(res)
        state["running"] = max(0, state["running"] - 1)
        state["failed"] += res["status"] != "ok"
        bar.update(1)
        bar.set_postfix(done=len(results) - state["failed"], running=state["running"], failed=state["failed"])

    todo = items
    if ship:  # the client decides what is finished: a remote worker sees only its own temporary folder
        todo = []
        for it in items:
            if kind.status(Path(it["dir"]), it) == "finished":
                done({"key": it["key"], "status": "ok"})
            else:
                todo.append({**it, "dir": None, "ship": True})
    if executor == "local" and workers == 1:
        for it in todo:
            state["running"] = 1
            bar.set_postfix(done=len(results) - state["failed"], running=1, failed=state["failed"])
            done(run_trial(it))
    elif executor == "local":
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            futures = [pool.submit(run_trial, it) for it in todo]
            state["running"] = min(workers, len(todo))
            for n, f in enumerate(as_completed(futures), 1):
                done(f.result())
                state["running"] = min(workers, len(todo) - n)
    elif todo:
        _run_dask(todo, workers, client, done, state)
    if client is not None:
        client.close()
    bar.close()
    failed = [r for r in results if r["status"] != "ok"]
    return {"results": results, "failed": failed, "items": items}


def _distributed():
    # imported here: dask.distributed adds 0.44 s to every `ganbench study` command (measured) and would be
    # imported by every spawned pool worker, which never uses it
    try:
        import dask.distributed
    except ImportError:
        raise UserError(
            "--executor dask needs dask.distributed, which is not installed; pip install 'dask[distributed]' "
            "or use --executor local"
        ) from None
    return dask.distributed


def _connect(scheduler: str):
    """A client of the running Dask scheduler at ``scheduler``; one line when it cannot be reached."""
    try:
        return _distributed().Client(scheduler, timeout="20s")
    except (OSError, ValueError, TypeError) as e:  # unreachable, timed out; an address that is not one
        raise UserError(
            f"cannot reach the Dask scheduler at {quote(scheduler, 80)} ({quote(e, 80)}); start one with "
            "'dask scheduler' or drop --scheduler to use a LocalCluster"
        ) from None


def _run_dask(todo: List[Dict[str, Any]], workers: int, client, done, state) -> None:
    """Run ``todo`` on ``client`` (a connected scheduler's), else on a LocalCluster of ``workers`` processes."""
    distributed = _distributed()
    Client, LocalCluster, dask_completed = distributed.Client, distributed.LocalCluster, distributed.as_completed
    cluster = None
    if client is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        futures = client.map(run_trial, todo, pure=False)
        state["running"] = min(workers, len(todo))
        for n, f in enumerate(dask_completed(futures), 1):
            done(f.result())
            state["running"] = min(workers, len(todo) - n)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def status(spec: StudySpec, root: Optional[str | Path] = None) -> List[Dict[str, Any]]:
    """Per trial: finished | running | failed | partial | missing."""
    root = results_root(root)
    kind = KINDS.get(spec.kind)
    rows = []
    for it in payloads(spec, root):
        d = Path(it["dir"])
        error = store.failure(d)
        st = "running" if store.is_locked(d) else "failed" if error is not None else kind.status(d, it)
        rows.append(
            {
                "variant": it["variant"],
                "seed": it["seed"],
                "key": it["key"],
                "status": st,
                "error": error if st == "failed" else "",
            }
        )
    return rows

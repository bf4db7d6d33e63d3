"""Run a study's trials on a local process pool or a Dask cluster, idempotently.

The store is ``results/trials/<key>/``, one directory per trial named by the hash of its resolved config
(seed and budget included): running a study again trains nothing that is finished and resumes what was
interrupted (the engine's resume). A lock per trial (``flock``) keeps two studies that share a trial from
writing it at once. ``attempts.jsonl`` in each trial records every time it was actually trained or scored,
so "a second run trains nothing" is checked from the store, not from timings.

The same function, ``run_trial``, runs under both executors; a trial that fails (diverges, raises) is
recorded in ``failed.json`` with its error and the others go on.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from benchmark import io
from benchmark.errors import UserError
from benchmark.study.spec import StudySpec, Trial, trials

EXECUTORS = ("local", "dask")


def results_root(root: Optional[str | Path] = None) -> Path:
    return Path(root or os.environ.get("GANBENCH_RESULTS") or "results")


def trial_dir(root: Path, trial: Trial) -> Path:
    return root / "trials" / trial.key


def index_path(root: Path, spec: StudySpec) -> Path:
    return root / "studies" / f"{spec.name}-{spec.preset or 'default'}.json"


@contextmanager
def trial_lock(d: Path, blocking: bool = True) -> Iterator[bool]:
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def is_locked(d: Path) -> bool:
    if not (d / ".lock").exists():
        return False
    with trial_lock(d, blocking=False) as got:
        return not got


def _attempt(d: Path, event: str, **kw: Any) -> None:
    io.append_jsonl(d / "attempts.jsonl", [{"event": event, "time": time.time(), "pid": os.getpid(), **kw}])


def run_trial(payload: Dict[str, Any]) -> Dict[str, Any]:
    """Train (or resume) and score one trial. Runs in a worker process; never raises."""
    import torch

    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    d = Path(payload["dir"])
    threads = payload.get("threads") or 1
    torch.set_num_threads(threads)
    # numpy/scipy BLAS (torch-fidelity's KID, precision/recall) with the same thread count as torch under
    # every executor: Dask workers default BLAS to 1 thread, a pool worker to all cores, and a different
    # thread count sums in a different order, so scores would differ in the last digits between executors.
    with threadpool_limits(limits=threads):
        return _run_trial(d, payload)


def _run_trial(d: Path, payload: Dict[str, Any]) -> Dict[str, Any]:
    import torch

    try:
        with trial_lock(d):
            if payload["kind"] == "parallel-lines":
                return _run_parallel_lines(d, payload)
            from benchmark.config import make_config
            from benchmark.train import list_checkpoints, train

            cfg = make_config(payload["config"])
            if not (d / "trial.json").exists():
                io.write_json(d / "trial.json", {"key": d.name, "config": cfg.to_dict()})
            if not (d / "run" / "done.json").exists():
                ck = d / "run" / "checkpoints" / "last.pt"
                start = torch.load(ck, weights_only=False)["step"] if ck.exists() else 0
                _attempt(d, "train", from_step=start, to_step=cfg.steps)
                train(cfg, d / "run", progress=False)
            from benchmark.evaluation.runs import evaluate_run, record_key  # noqa: F401

            before = len(io.read_jsonl(d / "run" / "metrics.jsonl"))
            evaluate_run(d / "run", steps=payload["eval_steps"], metrics=payload["metrics"],
                         num_samples=payload["num_samples"], split=payload["split"],
                         data_root=cfg.data_root, progress=False)
            scored = len(io.read_jsonl(d / "run" / "metrics.jsonl")) - before
            if scored:
                _attempt(d, "evaluate", records=scored)
            if (d / "failed.json").exists():
                (d / "failed.json").unlink()
            return {"key": d.name, "status": "ok", "checkpoints": list_checkpoints(d / "run")}
    except Exception as e:  # recorded, and the study goes on
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        io.write_json(d / "failed.json", {"error": f"{type(e).__name__}: {msg}", "traceback": traceback.format_exc(),
                                          "time": time.time()})
        return {"key": d.name, "status": "failed", "error": f"{type(e).__name__}: {msg}"}


def _run_parallel_lines(d: Path, payload: Dict[str, Any]) -> Dict[str, Any]:
    import torch

    from benchmark.study import parallel_lines
    from benchmark.train import run_info

    out = d / "parallel_lines.csv"
    if not out.exists():
        p = payload["params"]
        _attempt(d, "train", thetas=len(p["thetas"]))
        df = parallel_lines.run(p["thetas"], p["steps"], batch=p.get("batch", 256), seed=payload["seed"], progress=False)
        # provenance in the same place as a GAN trial's, so the report names the code and the machine
        io.write_json(d / "run" / "run.json", run_info(torch.device("cpu")))
        with io.atomic_path(out) as tmp:
            df.to_csv(tmp, index=False)
    return {"key": d.name, "status": "ok"}


def payloads(spec: StudySpec, root: Path, data_root: Optional[str] = None) -> List[Dict[str, Any]]:
    if spec.kind == "parallel-lines":
        out = []
        for seed in spec.seeds:
            key_src = json.dumps({"kind": spec.kind, "params": spec.params, "seed": seed}, sort_keys=True)
            import hashlib

            key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
            out.append({"kind": spec.kind, "dir": str(root / "trials" / key), "params": spec.params, "seed": seed,
                        "variant": "parallel lines", "values": {}, "key": key})
        return out
    out = []
    for t in trials(spec):
        cfg = t.config
        if data_root:
            cfg = cfg.replace(data_root=data_root)
        out.append({"kind": "gan", "dir": str(trial_dir(root, t)), "config": cfg.to_dict(), "seed": t.seed,
                    "variant": t.variant, "values": t.values, "key": t.key, "eval_steps": t.eval_steps,
                    "metrics": spec.metrics, "num_samples": spec.num_samples, "split": spec.split})
    return out


def write_index(spec: StudySpec, root: Path, items: List[Dict[str, Any]], argv: Optional[List[str]] = None) -> Path:
    p = index_path(root, spec)
    io.write_json(p, {
        "study": spec.name, "preset": spec.preset, "spec": asdict(spec),
        "command": " ".join(argv or sys.argv), "git_commit": io.git_commit(),
        "trials": [{k: it[k] for k in ("key", "variant", "values", "seed")} for it in items],
    })
    return p


def run_study(spec: StudySpec, root: Optional[str | Path] = None, workers: int = 2, executor: str = "local",
              scheduler: Optional[str] = None, data_root: Optional[str] = None, progress: bool = True,
              threads_per_worker: int = 1) -> Dict[str, Any]:
    """Run every trial not yet finished; returns {results: [...], failed: [...]}."""
    if executor not in EXECUTORS:
        raise UserError(f"executor '{executor}' is not known; allowed: {', '.join(EXECUTORS)}")
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if scheduler and executor != "dask":
        raise UserError("--scheduler needs --executor dask")
    root = results_root(root)
    items = payloads(spec, root, data_root)
    for it in items:
        it["threads"] = threads_per_worker
    write_index(spec, root, items)

    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), desc=f"study {spec.name} [{spec.preset or 'default'}]", unit="trial",
               disable=not progress, dynamic_ncols=True)
    results: List[Dict[str, Any]] = []
    state = {"running": 0, "failed": 0}

    def done(res: Dict[str, Any]) -> None:
        results.append(res)
        state["running"] -= 1
        state["failed"] += res["status"] != "ok"
        bar.update(1)
        bar.set_postfix(done=len(results) - state["failed"], running=state["running"], failed=state["failed"])

    if executor == "local" and workers == 1:
        for it in items:
            state["running"] = 1
            bar.set_postfix(done=len(results) - state["failed"], running=1, failed=state["failed"])
            done(run_trial(it))
    elif executor == "local":
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(run_trial, it) for it in items]
            state["running"] = min(workers, len(items))
            for f in as_completed(futures):
                done(f.result())
                state["running"] = min(workers, len(items) - len(results))
    else:
        from dask.distributed import Client, LocalCluster, as_completed as dask_completed

        cluster = None
        if scheduler:
            try:
                client = Client(scheduler, timeout="20s")
            except OSError as e:
                raise UserError(f"cannot reach the Dask scheduler at '{scheduler}' ({e}); start one with "
                                "'dask scheduler' or drop --scheduler to use a LocalCluster") from None
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        try:
            futures = client.map(run_trial, items, pure=False)
            state["running"] = min(workers, len(items))
            for f in dask_completed(futures):
                done(f.result())
                state["running"] = min(workers, len(items) - len(results))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    bar.close()
    failed = [r for r in results if r["status"] != "ok"]
    return {"results": results, "failed": failed, "items": items}


def status(spec: StudySpec, root: Optional[str | Path] = None) -> List[Dict[str, Any]]:
    """Per trial: finished | running | failed | partial | missing."""
    root = results_root(root)
    rows = []
    for it in payloads(spec, root):
        d = Path(it["dir"])
        if is_locked(d):
            st = "running"
        elif (d / "failed.json").exists():
            st = "failed"
        elif spec.kind == "parallel-lines":
            st = "finished" if (d / "parallel_lines.csv").exists() else "missing"
        elif (d / "run" / "done.json").exists():
            scored = {r.get("step") for r in io.read_jsonl(d / "run" / "metrics.jsonl")}
            st = "finished" if set(it["eval_steps"]) <= scored else "partial"
        elif (d / "run" / "checkpoints" / "last.pt").exists():
            st = "partial"
        else:
            st = "missing"
        rows.append({"variant": it["variant"], "seed": it["seed"], "key": it["key"], "status": st,
                     "error": (io.read_json(d / "failed.json")["error"] if st == "failed" else "")})
    return rows

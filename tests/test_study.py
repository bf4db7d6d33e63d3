"""Study runner and report: smoke studies end to end (local pool and Dask), idempotence, kill/resume,
failed trials, invalid specs, status."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from benchmark import io
from benchmark.cli import main
from benchmark.errors import UserError
from benchmark.evaluation.runs import record_key
from benchmark.study.report import build_report, direction, metric_base
from benchmark.study.runner import install, run_study, status
from benchmark.study.spec import load_spec, trials

REPO = Path(__file__).resolve().parents[1]
RING = {
    "name": "ringtest",
    "base": {"dataset": "ring8", "model": "toy", "batch_size": 32},
    "axes": {"gp_lambda": [0, 10]},
    "seeds": [0, 1],
    "budget": {"steps": 40},
    "eval_at": [0.5, 1.0],
    "num_samples": 500,
    "report": {
        "x": "gp_lambda",
        "columns": ["modes", "hq"],
        "claims": [
            {
                "claim": "a penalised critic has a smaller gradient",
                "metric": "grad_norm_mean_last",
                "arm": "gp_lambda=10",
                "vs": "gp_lambda=0",
                "expect": "lower",
            }
        ],
    },
}


def write_spec(tmp_path, spec, name="s.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(spec))
    return p


def scores(root):
    out = {}
    for d in sorted((Path(root) / "trials").iterdir()):
        for r in io.read_jsonl(d / "run" / "metrics.jsonl"):
            out[(d.name, r["step"])] = r["metrics"]
    return out


def train_events(root):
    return sum(
        r["event"] == "train" for d in (Path(root) / "trials").iterdir() for r in io.read_jsonl(d / "attempts.jsonl")
    )


def test_grid_trials_are_hashed_by_resolved_config(tmp_path):
    spec = load_spec(write_spec(tmp_path, RING))
    ts = trials(spec)
    assert [(t.variant, t.seed) for t in ts] == [
        ("gp_lambda=0", 0),
        ("gp_lambda=0", 1),
        ("gp_lambda=10", 0),
        ("gp_lambda=10", 1),
    ]
    assert len({t.key for t in ts}) == 4
    assert ts[0].eval_steps == [20, 40] and ts[0].config.checkpoint_at == [20, 40]
    again = load_spec(write_spec(tmp_path, {**RING, "name": "other"}, "o.yaml"))
    assert [t.key for t in trials(again)] == [t.key for t in ts]  # same config -> same trial, whatever the study


def test_epoch_budget_and_presets(tmp_path):
    spec = {
        **RING,
        "budget": {"epochs": 0.01},
        "presets": {"smoke": {"budget": {"steps": 4}, "base": {"batch_size": 16}}},
    }
    p = write_spec(tmp_path, spec)
    assert trials(load_spec(p))[0].config.steps == 32  # ceil(0.01 * 100000 / 32)
    smoke = load_spec(p, "smoke")
    assert smoke.preset == "smoke" and trials(smoke)[0].config.steps == 4 and trials(smoke)[0].config.batch_size == 16
    assert trials(smoke)[0].config.model == "toy"  # the preset's base is merged, not replaced


@pytest.mark.parametrize(
    "bad,needle",
    [
        ({"axes": {"gp_lamda": [1]}}, "unknown config key 'gp_lamda'"),
        ({"axes": {"gp_lambda": [-1]}}, "gp_lambda"),
        ({"seeds": []}, "seeds"),
        ({"eval_at": [0, 1]}, "eval_at"),
        ({"budget": {}}, "budget"),
        ({"colour": "red"}, "unknown config key 'colour'"),
        ({"metrics": ["fidd"]}, "unknown metric 'fidd'"),
        ({"kind": "nope"}, "kind"),
        # non-finite and absurd values, named by key, before anything trains
        ({"axes": {"gp_lambda": [float("nan")]}}, "gp_lambda"),
        ({"axes": {"gp_lambda": [float("inf")]}}, "gp_lambda"),
        ({"axes": {"z_dim": [10**11]}}, "z_dim"),
        ({"budget": {"steps": float("inf")}}, "budget.steps"),
        ({"budget": {"steps": 10**12}}, "budget.steps"),
        ({"budget": {"epochs": float("nan")}}, "budget.epochs"),
        ({"budget": {"epochs": 1e300}}, "budget.epochs"),
        ({"eval_at": [float("nan")]}, "eval_at"),
        ({"eval_at": [0.5, 2.0]}, "eval_at"),
        ({"num_samples": 10**12}, "num_samples"),
        ({"num_samples": float("inf")}, "num_samples"),
        ({"seeds": [-1]}, "seeds"),
        ({"seeds": [2**40]}, "seeds"),
        ({"seeds": [0, 0]}, "seeds"),
        ({"axes": {"gp_lambda": list(range(20000))}}, "trials"),
        # the whole spec: metrics against each trial's dataset, the kind's params, the report's claims
        ({"metrics": ["fid"]}, "metric 'fid' does not apply to dataset 'ring8'"),
        ({"params": {"thetas": [1.0]}}, "study kind 'gan' takes no 'params'"),
        ({"eval_labels": ["half", "end"]}, "'eval_labels' is no longer read"),  # retired: the page labels points
        (
            {
                "report": {
                    "claims": [
                        {"claim": "x", "metric": "modes", "arm": "gp_lambda=7", "vs": "gp_lambda=0", "expect": "better"}
                    ]
                }
            },
            "report.claims[0]",
        ),
    ],
)
def test_invalid_spec_is_one_line_and_runs_nothing(tmp_path, capsys, bad, needle):
    p = write_spec(tmp_path, {**RING, **bad})
    code = main(["study", "run", str(p), "--preset", "", "--results", str(tmp_path / "res"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "res").exists()


PL = {"name": "pl", "kind": "parallel-lines", "seeds": [0], "params": {"thetas": [0.0, 1.0], "steps": 5}}


@pytest.mark.parametrize(
    "bad,needle",
    [
        (
            {"params": {"thetas": [1.0], "gp_lamda": 1}},
            "unknown config key 'params.gp_lamda' (did you mean "
            "'params.gp_lambda'?); valid keys: params.thetas, params.steps, "
            "params.batch, params.lr, params.gp_lambda, params.eval_batch",
        ),
        ({"params": {"thetas": [float("inf")]}}, "params.thetas"),
        ({"params": {"thetas": []}}, "params.thetas"),
        ({"params": {"steps": 0}}, "params.steps"),
        ({"params": {"lr": float("nan")}}, "params.lr"),
        ({"params": {"gp_lambda": -1}}, "params.gp_lambda"),
        ({"params": {"batch": 10**9}}, "params.batch"),
        ({"axes": {"gp_lambda": [1]}}, "has no 'axes'"),
        ({"budget": {"steps": 10}}, "takes no 'budget'"),
    ],
)
def test_invalid_parallel_lines_spec_is_one_line_and_runs_nothing(tmp_path, capsys, bad, needle):
    p = write_spec(tmp_path, {**PL, **bad})
    code = main(["study", "run", str(p), "--preset", "", "--results", str(tmp_path / "res"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "res").exists()


def test_trial_keys_are_those_of_existing_results():
    """The trial key names a trial's folder in existing stores: these are the keys of commit 445edaf."""
    # the long preset (quick presets change with the budgets that decide; their keys follow)
    lam = trials(load_spec(REPO / "studies" / "lambda.yaml", "long"))
    assert [t.key for t in lam] == [
        "a97153634c354b7e",
        "5ad667c728e262aa",
        "bc598ed86f498c37",
        "5de5731edacb6ee3",
        "f85b205a4fbf689d",
        "c3336f8062cd3fd4",
        "d648ea1770bb4038",
        "3ec88ee5c9e47508",
        "2fa171e1c454eb2b",
        "cd0cb0b0f1c27666",
        "fa067ac78c61c17e",
        "8c7c699a05f4dcb0",
        "15134f7a5a8b2681",
        "7388e79122910b7d",
        "7da44d54957a350f",
        "98b9310e471f8777",
        "cbae1b74f6967c33",
        "f762ddd7657b6f8d",
        "91f1f2a6edcd35d2",
        "ecdef55fe9980227",
        "ae667b04601f9d2c",
        "2193700f26de9e2d",
        "8374c8b6422cea20",
        "ea261d62b8f50313",
        "3daff505e94a05f1",
    ]
    assert lam[0].config.steps == 93750 and lam[0].eval_steps == [46875, 93750]
    assert [t.key for t in trials(load_spec(REPO / "studies" / "js-vs-em.yaml", "smoke"))] == ["2c13bbfc04d6495c"]
    assert [t.key for t in trials(load_spec(REPO / "studies" / "js-vs-em.yaml", "quick"))][0] == "d20d638672257873"


def test_unknown_preset(tmp_path, capsys):
    p = write_spec(tmp_path, {**RING, "presets": {"smoke": {}}})
    assert main(["study", "status", str(p), "--preset", "huge"]) == 2
    assert "no preset 'huge'; valid: smoke" in capsys.readouterr().err


def test_local_pool_runs_reports_and_a_second_run_trains_nothing(tmp_path):
    p = write_spec(tmp_path, RING)
    res, rep = tmp_path / "res", tmp_path / "rep"
    spec = load_spec(p)
    r1 = run_study(spec, root=res, workers=2, progress=False)
    assert not r1["failed"] and train_events(res) == 4
    first = scores(res)
    assert len(first) == 8  # 4 trials x 2 eval steps
    out = build_report("ringtest", None, root=res, out_root=rep)
    for f in (
        "README.md",
        "table.md",
        "table.csv",
        "table.tex",
        "claims.md",
        "metric_vs_gp_lambda.png",
        "metrics_vs_step.png",
        "samples.png",
        "coverage.png",
        "dynamics.png",
        "scatter.png",
    ):
        assert (out / f).stat().st_size > 0, f
    # (that the scatter's points are the scored ones: tests/test_report.py, on a run with high-quality samples)
    page = (out / "README.md").read_text()
    assert "Every scored sample and the mode centres" in page
    assert "gp_lambda=10" in page and "evaluator" in page and "torch" in page and "git commit" in page
    assert "booktabs" not in page and r"\toprule" in (out / "table.tex").read_text()
    # a claim tests a metric that is not among the table's columns; 2 seeds per arm decide nothing
    claims = (out / "claims.md").read_text()
    assert "grad_norm_mean_last200" not in (out / "table.md").read_text()
    assert "grad_norm_mean_last" in claims and "not resolved" in claims
    run_study(spec, root=res, workers=2, progress=False)
    assert train_events(res) == 4 and scores(res) == first  # nothing retrained, nothing rescored
    assert {r["status"] for r in status(spec, root=res)} == {"finished"}


FILES = (
    "README.md",
    "table.md",
    "table.csv",
    "table.tex",
    "metrics_vs_step.png",
    "samples.png",
    "coverage.png",
    "tsne.png",
    "dynamics.png",
)


def test_demo_smoke_on_embedded_data_under_the_pool_and_dask(tmp_path, capsys):
    """The shipped demo study (ring8 + 8x8 digits) end to end, local pool and Dask LocalCluster(2 workers)."""
    spec_path = REPO / "studies" / "demo.yaml"
    local, dask = tmp_path / "local", tmp_path / "dask"
    for executor, res in (("local", local), ("dask", dask)):
        code = main(
            [
                "study",
                "run",
                str(spec_path),
                "--preset",
                "smoke",
                "--workers",
                "2",
                "--executor",
                executor,
                "--results",
                str(res),
                "--reports",
                str(tmp_path / f"rep-{executor}"),
                "--quiet",
            ]
        )
        assert code == 0, capsys.readouterr().err
        out = tmp_path / f"rep-{executor}" / "demo"
        for f in FILES:
            assert (out / f).stat().st_size > 0, (executor, f)
        page = (out / "README.md").read_text()
        assert "GAN ring8" in page and "WGAN-GP digits" in page and "modes2500" in page and "fid300_test" in page
    assert scores(dask) == scores(local) and len(scores(local)) == 8


def test_parallel_lines_study_runs_and_its_page_names_code_and_machine(tmp_path, capsys):
    """The js-vs-em study (a non-GAN trial kind) through the runner: table, figure, and full provenance."""
    code = main(
        [
            "study",
            "run",
            str(REPO / "studies" / "js-vs-em.yaml"),
            "--preset",
            "smoke",
            "--workers",
            "1",
            "--results",
            str(tmp_path / "res"),
            "--reports",
            str(tmp_path / "rep"),
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    page = (tmp_path / "rep" / "js-vs-em" / "README.md").read_text()
    assert (tmp_path / "rep" / "js-vs-em" / "js_vs_em.png").stat().st_size > 0
    assert "| 0.500 | 0.693 | ∞ | 0.500 |" in page  # closed forms: JS = log 2, KL = inf, EM = |θ|
    assert "trials and scores): unknown" not in page and "device: unknown" not in page
    assert f"`{io.git_commit()}`" in page


def test_failed_trial_is_reported_and_the_others_finish(tmp_path, capsys):
    spec = {
        **RING,
        "seeds": [0],
        "axes": {},
        "report": {},
        "variants": [{"name": "fine", "set": {}}, {"name": "broken", "set": {"model": "helpers:nan_pair"}}],
    }
    p = write_spec(tmp_path, spec)
    env_path = str(Path(__file__).parent)
    sys.path.insert(0, env_path)
    os.environ["PYTHONPATH"] = env_path + os.pathsep + os.environ.get("PYTHONPATH", "")
    code = main(
        [
            "study",
            "run",
            str(p),
            "--preset",
            "",
            "--workers",
            "1",
            "--results",
            str(tmp_path / "res"),
            "--reports",
            str(tmp_path / "rep"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "FAILED broken seed 0" in err and "non-finite" in err
    rows = {r["variant"]: r["status"] for r in status(load_spec(p), root=tmp_path / "res")}
    assert rows == {"fine": "finished", "broken": "failed"}
    page = (tmp_path / "rep" / "ringtest" / "README.md").read_text()
    assert "broken seed 0 (failed: TrainingDiverged" in page


def test_killed_study_resumes_to_the_same_results(tmp_path):
    spec = {**RING, "seeds": [0], "budget": {"steps": 400}, "eval_at": [1.0]}
    p = write_spec(tmp_path, spec)
    ref = tmp_path / "ref"
    run_study(load_spec(p), root=ref, workers=1, progress=False)

    res = tmp_path / "res"
    cmd = [
        sys.executable,
        "-m",
        "benchmark",
        "study",
        "run",
        str(p),
        "--preset",
        "",
        "--workers",
        "1",
        "--results",
        str(res),
        "--no-report",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 120
    while not list(res.glob("trials/*/run/checkpoints/last.pt")):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not all((d / "run" / "done.json").exists() for d in (res / "trials").iterdir())
    assert subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}).returncode == 0
    assert scores(res) == scores(ref)
    resumed = [
        r for d in (res / "trials").iterdir() for r in io.read_jsonl(d / "attempts.jsonl") if r["event"] == "train"
    ]
    assert any(r["from_step"] > 0 for r in resumed)  # it resumed from a checkpoint rather than starting over


def test_metric_directions():
    assert metric_base("fid10k_test") == "fid" and direction("fid10k_test") == -1
    assert direction("kid_std10k_test") == 0 and direction("modes2500") == 1 and direction("rkl2500") == -1
    assert direction("classes_covered10k") == 1 and direction("grad_norm_mean_last200") == 0


def _alive(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_pool_workers_die_with_the_study(tmp_path):
    """kill -9 of a study's process leaves no pool worker behind (they would train on for hours)."""
    spec = {**RING, "axes": {}, "report": {}, "seeds": [0, 1], "budget": {"steps": 200_000}, "eval_at": [1.0]}
    p = write_spec(tmp_path, spec)
    res = tmp_path / "res"
    cmd = [
        sys.executable,
        "-m",
        "benchmark",
        "study",
        "run",
        str(p),
        "--preset",
        "",
        "--workers",
        "2",
        "--results",
        str(res),
        "--no-report",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    workers = []
    try:
        deadline = time.time() + 120
        while len(list(res.glob("trials/*/run/log.jsonl"))) < 2:  # both workers are training
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.1)
        workers = [
            c.pid for c in psutil.Process(proc.pid).children(recursive=True) if "spawn_main" in " ".join(c.cmdline())
        ]
        assert len(workers) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 10
        while any(_alive(w) for w in workers) and time.time() < deadline:
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)]
    finally:
        for w in workers:  # only the workers this test started
            if _alive(w):
                os.kill(w, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


def test_two_studies_on_one_store_train_and_score_each_trial_once(tmp_path):
    """Two concurrent runs of one study on one store: each trial trained once, each record (t-SNE included)
    written once, both reports complete."""
    spec = {
        "name": "twice",
        "base": {"dataset": "digits", "model": "mlp", "objective": "gan", "batch_size": 32},
        "seeds": [0, 1],
        "budget": {"steps": 10},
        "num_samples": 300,
        "metrics": ["fid"],
    }
    p, res = write_spec(tmp_path, spec), tmp_path / "res"
    cmds = [[sys.executable, "-m", "benchmark", "study", "run", str(p), "--preset", "", "--workers", "1",
             "--results", str(res), "--reports", str(tmp_path / f"rep{i}"), "--quiet"] for i in (0, 1)]  # fmt: skip
    procs = [subprocess.Popen(c, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}) for c in cmds]
    try:
        assert [p.wait(timeout=600) for p in procs] == [0, 0]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    trial_dirs = sorted((res / "trials").iterdir())
    assert len(trial_dirs) == 2 and train_events(res) == 2
    tsne = 0
    for d in trial_dirs:
        recs = io.read_jsonl(d / "run" / "metrics.jsonl")
        keys = [record_key(r) for r in recs]
        assert len(keys) == len(set(keys)), d.name
        tsne += sum(r["metric_set"] == ["tsne"] for r in recs)
    assert tsne == 1  # the first seed's
    for i in (0, 1):
        assert (tmp_path / f"rep{i}" / "twice" / "tsne.png").stat().st_size > 0


def test_dask_workers_that_do_not_share_the_results_folder_send_each_trial_back(tmp_path, monkeypatch):
    """`dask scheduler` and `dask worker` as separate processes in another folder: with --scheduler every trial
    runs in a temporary folder on its worker and its files come back to the results folder (no last.pt);
    scores equal the local pool's, a second run trains nothing, the report builds from what came back."""
    wdir, sched_file = tmp_path / "worker", tmp_path / "scheduler.json"
    (wdir / "tmp").mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(wdir / "tmp")}
    dask = str(Path(sys.executable).parent / "dask")
    quiet = dict(cwd=wdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [
        subprocess.Popen(
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(sched_file),
            ],
            **quiet,
        )
    ]
    try:
        deadline = time.time() + 60
        while not sched_file.exists():
            assert procs[0].poll() is None and time.time() < deadline
            time.sleep(0.1)
        procs.append(
            subprocess.Popen(
                [
                    dask,
                    "worker",
                    "--scheduler-file",
                    str(sched_file),
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--local-directory",
                    str(wdir),
                ],
                **quiet,
            )
        )
        address = json.loads(sched_file.read_text())["address"]
        p = write_spec(tmp_path, {**RING, "seeds": [0], "axes": {"gp_lambda": [10]}, "report": {}})
        remote, local = tmp_path / "remote", tmp_path / "local"
        # a relative results folder: the worker (another cwd) would write elsewhere if it wrote it itself
        monkeypatch.chdir(tmp_path)
        code = main(
            [
                "study",
                "run",
                str(p),
                "--preset",
                "",
                "--executor",
                "dask",
                "--scheduler",
                address,
                "--results",
                "remote",
                "--reports",
                "rep",
                "--quiet",
            ]
        )
        assert code == 0
        run_study(load_spec(p), root=local, workers=1, progress=False)
        assert scores(remote) == scores(local) and len(scores(remote)) == 2
        for d in (remote / "trials").iterdir():
            for f in (
                "trial.json",
                "attempts.jsonl",
                "run/config.yaml",
                "run/run.json",
                "run/log.jsonl",
                "run/metrics.jsonl",
                "run/done.json",
                "run/checkpoints/G_000040.pt",
                "run/samples/step_000040.png",
            ):
                assert (d / f).stat().st_size > 0, (d.name, f)
            assert not (d / "run" / "checkpoints" / "last.pt").exists()
        assert not list((wdir / "tmp").glob("ganbench-trial-*"))  # the worker's temporary trials are gone
        assert not list(wdir.rglob("metrics.jsonl"))
        assert (tmp_path / "rep" / "ringtest" / "samples.png").stat().st_size > 0
        assert train_events(remote) == 1
        run_study(load_spec(p), root=remote, executor="dask", scheduler=address, progress=False)
        assert train_events(remote) == 1  # the client knows what is finished: nothing is sent again
    finally:
        for proc in reversed(procs):  # only the processes this test started
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_install_of_a_trial_sent_back_by_a_remote_worker(tmp_path):
    d = tmp_path / "trials" / "k"
    rec = {
        "step": 4,
        "metric_set": ["tsne"],
        "evaluator": {"name": "c", "sha256": "ab"},
        "num_samples_requested": 10,
        "reference": {"split": "test"},
        "run": "/w/tmp/trials/k/run",
        "details": {"tsne_png": "/w/tmp/trials/k/run/eval/tsne_000004.png"},
    }
    files = {
        "run/metrics.jsonl": (json.dumps(rec) + "\n").encode(),
        "run/done.json": b"{}",
        "run/config.yaml": b"a: 1\n",
    }
    install(d, {"key": "k", "status": "ok", "files": files, "remote_dir": "/w/tmp/trials/k"})
    again = {**rec, "time": 1.0, "run": "/w/other/trials/k/run"}  # the same score from a second worker
    files2 = {**files, "run/metrics.jsonl": (json.dumps(again) + "\n").encode()}
    install(d, {"key": "k", "status": "ok", "files": files2, "remote_dir": "/w/other/trials/k"})
    recs = io.read_jsonl(d / "run" / "metrics.jsonl")
    assert len(recs) == 1 and recs[0]["details"]["tsne_png"] == str(d / "run" / "eval" / "tsne_000004.png")
    assert recs[0]["run"] == str(d / "run")
    # a failed result brings back only its failed.json: the finished files stay as they were
    install(d, {"key": "k", "status": "failed", "files": {"failed.json": b"{}", "run/done.json": b"x"}})
    assert (d / "run" / "done.json").read_bytes() == b"{}" and (d / "failed.json").exists()
    for rel in ("../../evil", "/etc/evil", "run/checkpoints/last.pt"):  # nothing outside the trial, no resume state
        with pytest.raises(UserError):
            install(d, {"key": "k", "status": "ok", "files": {rel: b"x"}})
    assert not (tmp_path / "evil").exists() and not (d / "run" / "checkpoints").exists()


def test_a_variant_may_carry_its_own_budget(tmp_path):
    """n-critic's matched-compute arm: n_critic = 1 given 5x the generator steps, scored at the same fractions."""
    spec = {
        **RING,
        "axes": {},
        "report": {},
        "variants": [
            {"name": "n5", "set": {"n_critic": 5}},
            {"name": "n1 matched", "set": {"n_critic": 1}, "budget": {"steps": 200}},
        ],
    }
    ts = {t.variant: t for t in trials(load_spec(write_spec(tmp_path, spec)))}
    assert ts["n5"].config.steps == 40 and ts["n5"].eval_steps == [20, 40]
    assert ts["n1 matched"].config.steps == 200 and ts["n1 matched"].eval_steps == [100, 200]
    assert ts["n1 matched"].config.checkpoint_at == [100, 200]
    # epochs work too: ceil(0.01 * 100000 / 32)
    spec["variants"][1]["budget"] = {"epochs": 0.01}
    ts = {t.variant: t for t in trials(load_spec(write_spec(tmp_path, spec)))}
    assert ts["n1 matched"].config.steps == 32


@pytest.mark.parametrize(
    "budget,needle",
    [
        ({"steps": 10, "epochs": 1}, "exactly one of steps or epochs"),
        ({"steps": float("inf")}, "budget.steps"),
        ({"epochs": -1}, "budget.epochs"),
        ({"step": 10}, "budget.step"),
        (7, "must be a mapping"),
    ],
)
def test_bad_variant_budget_is_one_line(tmp_path, capsys, budget, needle):
    spec = {**RING, "axes": {}, "report": {}, "variants": [{"name": "v", "set": {}, "budget": budget}]}
    p = write_spec(tmp_path, spec)
    code = main(["study", "run", str(p), "--preset", "", "--results", str(tmp_path / "res"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err and "variant 'v' budget" in err, err
    assert not (tmp_path / "res").exists()


def test_epochs_become_the_same_steps_from_train_and_from_a_study(tmp_path):
    """One conversion (config.steps_for_epochs): 0.010675 epochs of MNIST (N 60,000) at batch 64 is 640.5
    images = 10.008 batches -> 11 steps, whether the budget comes from `ganbench train --epochs` or from a
    study's budget (the two once gave 10 and 11); float noise (0.1 x 60,000) never adds a step."""
    from benchmark.config import make_config, resolve, steps_for_epochs

    assert steps_for_epochs(0.010675, 60_000, 64) == 11
    assert steps_for_epochs(0.1, 60_000, 64) == 94 and steps_for_epochs(100, 60_000, 64) == 93_750
    assert steps_for_epochs(0.1, 64_000, 64) == 100  # 0.1 * 64000 / 64 = 100.00000000000001 in floats
    assert steps_for_epochs(1e-9, 60_000, 64) == 1
    train_steps = resolve(make_config({"dataset": "mnist", "epochs": 0.010675, "batch_size": 64}), 60_000).steps
    spec = {"name": "ep", "base": {"dataset": "mnist", "model": "mlp", "batch_size": 64}, "seeds": [0]}
    spec["budget"] = {"epochs": 0.010675}
    (t,) = trials(load_spec(write_spec(tmp_path, spec)))
    assert train_steps == t.config.steps == 11

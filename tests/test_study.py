"""Study runner and report: smoke studies end to end (local pool and Dask), idempotence, kill/resume,
failed trials, invalid specs, status."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmark import io
from benchmark.cli import main
from benchmark.study.report import build_report, direction, metric_base
from benchmark.study.runner import run_study, status
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
    "report": {"x": "gp_lambda", "columns": ["modes", "hq"], "claims": [
        {"variant": "gp_lambda=10", "claim": "closer to unit gradient", "measure": ["grad_norm_mean_last200"],
         "check": "abs(mean('grad_norm_mean_last', 'gp_lambda=10') - 1) < abs(mean('grad_norm_mean_last', 'gp_lambda=0') - 1)"}]},
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
    return sum(r["event"] == "train" for d in (Path(root) / "trials").iterdir() for r in io.read_jsonl(d / "attempts.jsonl"))


def test_grid_trials_are_hashed_by_resolved_config(tmp_path):
    spec = load_spec(write_spec(tmp_path, RING))
    ts = trials(spec)
    assert [(t.variant, t.seed) for t in ts] == [("gp_lambda=0", 0), ("gp_lambda=0", 1), ("gp_lambda=10", 0), ("gp_lambda=10", 1)]
    assert len({t.key for t in ts}) == 4
    assert ts[0].eval_steps == [20, 40] and ts[0].config.checkpoint_at == [20, 40]
    again = load_spec(write_spec(tmp_path, {**RING, "name": "other"}, "o.yaml"))
    assert [t.key for t in trials(again)] == [t.key for t in ts]  # same config -> same trial, whatever the study


def test_epoch_budget_and_presets(tmp_path):
    spec = {**RING, "budget": {"epochs": 0.01}, "presets": {"smoke": {"budget": {"steps": 4}, "base": {"batch_size": 16}}}}
    p = write_spec(tmp_path, spec)
    assert trials(load_spec(p))[0].config.steps == 32  # ceil(0.01 * 100000 / 32)
    smoke = load_spec(p, "smoke")
    assert smoke.preset == "smoke" and trials(smoke)[0].config.steps == 4 and trials(smoke)[0].config.batch_size == 16
    assert trials(smoke)[0].config.model == "toy"  # the preset's base is merged, not replaced


@pytest.mark.parametrize("bad,needle", [
    ({"axes": {"gp_lamda": [1]}}, "unknown config key 'gp_lamda'"),
    ({"axes": {"gp_lambda": [-1]}}, "gp_lambda"),
    ({"seeds": []}, "seeds"),
    ({"eval_at": [0, 1]}, "eval_at"),
    ({"budget": {}}, "budget"),
    ({"colour": "red"}, "unknown config key 'colour'"),
    ({"metrics": ["fidd"]}, "unknown metric 'fidd'"),
    ({"kind": "nope"}, "kind"),
])
def test_invalid_spec_is_one_line_and_runs_nothing(tmp_path, capsys, bad, needle):
    p = write_spec(tmp_path, {**RING, **bad})
    code = main(["study", "run", str(p), "--preset", "", "--results", str(tmp_path / "res"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "res").exists()


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
    for f in ("README.md", "table.md", "table.csv", "table.tex", "claims.md", "metric_vs_gp_lambda.png",
              "metrics_vs_step.png", "samples.png", "coverage.png", "dynamics.png"):
        assert (out / f).stat().st_size > 0, f
    page = (out / "README.md").read_text()
    assert "gp_lambda=10" in page and "evaluator" in page and "torch" in page and "git commit" in page
    assert "booktabs" not in page and r"\toprule" in (out / "table.tex").read_text()
    # a claim quotes and tests a metric that is not among the table's columns
    claims = (out / "claims.md").read_text()
    assert "grad_norm_mean_last200" not in (out / "table.md").read_text()
    assert "grad_norm_mean_last200 –" not in claims and "grad_norm_mean_last200 " in claims and "not measured" not in claims
    run_study(spec, root=res, workers=2, progress=False)
    assert train_events(res) == 4 and scores(res) == first  # nothing retrained, nothing rescored
    assert {r["status"] for r in status(spec, root=res)} == {"finished"}


FILES = ("README.md", "table.md", "table.csv", "table.tex", "metrics_vs_step.png", "samples.png", "coverage.png",
         "tsne.png", "dynamics.png")


def test_demo_smoke_on_embedded_data_under_the_pool_and_dask(tmp_path, capsys):
    """The shipped demo study (ring8 + 8x8 digits) end to end, local pool and Dask LocalCluster(2 workers)."""
    spec_path = REPO / "studies" / "demo.yaml"
    local, dask = tmp_path / "local", tmp_path / "dask"
    for executor, res in (("local", local), ("dask", dask)):
        code = main(["study", "run", str(spec_path), "--preset", "smoke", "--workers", "2", "--executor", executor,
                     "--results", str(res), "--reports", str(tmp_path / f"rep-{executor}"), "--quiet"])
        assert code == 0, capsys.readouterr().err
        out = tmp_path / f"rep-{executor}" / "demo"
        for f in FILES:
            assert (out / f).stat().st_size > 0, (executor, f)
        page = (out / "README.md").read_text()
        assert "GAN ring8" in page and "WGAN-GP digits" in page and "modes2500" in page and "fid300_test" in page
    assert scores(dask) == scores(local) and len(scores(local)) == 8


def test_parallel_lines_study_runs_and_its_page_names_code_and_machine(tmp_path, capsys):
    """The js-vs-em study (a non-GAN trial kind) through the runner: table, figure, and full provenance."""
    code = main(["study", "run", str(REPO / "studies" / "js-vs-em.yaml"), "--preset", "smoke", "--workers", "1",
                 "--results", str(tmp_path / "res"), "--reports", str(tmp_path / "rep"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    page = (tmp_path / "rep" / "js-vs-em" / "README.md").read_text()
    assert (tmp_path / "rep" / "js-vs-em" / "js_vs_em.png").stat().st_size > 0
    assert "| 0.500 | 0.693 | ∞ | 0.500 |" in page  # closed forms: JS = log 2, KL = inf, EM = |θ|
    assert "trials and scores): unknown" not in page and "device: unknown" not in page
    assert f"`{io.git_commit()}`" in page


def test_failed_trial_is_reported_and_the_others_finish(tmp_path, capsys):
    spec = {**RING, "seeds": [0], "axes": {}, "variants": [
        {"name": "fine", "set": {}}, {"name": "broken", "set": {"model": "helpers:nan_pair"}}]}
    p = write_spec(tmp_path, spec)
    env_path = str(Path(__file__).parent)
    sys.path.insert(0, env_path)
    os.environ["PYTHONPATH"] = env_path + os.pathsep + os.environ.get("PYTHONPATH", "")
    code = main(["study", "run", str(p), "--preset", "", "--workers", "1", "--results", str(tmp_path / "res"),
                 "--reports", str(tmp_path / "rep"), "--quiet"])
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
    cmd = [sys.executable, "-m", "benchmark", "study", "run", str(p), "--preset", "", "--workers", "1",
           "--results", str(res), "--no-report", "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 120
    while not list(res.glob("trials/*/run/checkpoints/last.pt")):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not all((d / "run" / "done.json").exists() for d in (res / "trials").iterdir())
    assert subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}).returncode == 0
    strip = lambda s: {k: {m: v for m, v in ms.items()} for k, ms in s.items()}
    assert strip(scores(res)) == strip(scores(ref))
    resumed = [r for d in (res / "trials").iterdir() for r in io.read_jsonl(d / "attempts.jsonl") if r["event"] == "train"]
    assert any(r["from_step"] > 0 for r in resumed)  # it resumed from a checkpoint rather than starting over


def test_metric_directions():
    assert metric_base("fid10k_test") == "fid" and direction("fid10k_test") == -1
    assert direction("kid_std10k_test") == 0 and direction("modes2500") == 1 and direction("rkl2500") == -1
    assert direction("classes_covered10k") == 1 and direction("grad_norm_mean_last200") == 0

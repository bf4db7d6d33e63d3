"""The Python API (issue 21): benchmark.train / evaluate / run_study / load_results, the CLI's commands as
functions with the CLI's checks, imported lazily so that ``import benchmark`` loads no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import benchmark
from benchmark import rundir
from benchmark.errors import UserError
from helpers import snapshot

REPO = Path(__file__).resolve().parents[1]
GOLDEN_STORE = REPO / "tests" / "golden" / "results"
TOY = {"dataset": "ring8", "model": "toy", "batch_size": 32, "steps": 20, "checkpoint_every": 10, "num_threads": 1}


def test_import_benchmark_loads_no_torch_and_the_api_loads_on_first_use():
    code = (
        "import sys, benchmark; assert 'torch' not in sys.modules, 'torch at import';"
        "assert 'benchmark.api' not in sys.modules;"
        "f = benchmark.load_results; assert callable(f) and 'benchmark.api' in sys.modules;"
        "print(sorted(benchmark.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert "evaluate" in out.stdout and "train" in out.stdout


def test_benchmark_train_is_the_function_even_after_its_module_is_imported():
    import benchmark.train as m  # noqa: F401 (the submodule is loaded; the package's name stays the API's)
    from benchmark.train import Run

    assert callable(benchmark.train) and benchmark.train.__module__ == "benchmark.api"
    assert Run.__module__ == "benchmark.train"
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        benchmark.trian  # noqa: B018


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    assert benchmark.train(out, **TOY) == out
    return out


def test_train_refuses_an_unknown_key_before_writing(tmp_path):
    with pytest.raises(UserError, match="gp_lamda.*gp_lambda"):
        benchmark.train(tmp_path / "r", **TOY, gp_lamda=3)
    assert not (tmp_path / "r").exists()


def test_train_writes_the_run_the_cli_would(run):
    assert rundir.read_run_config(run).steps == 20 and rundir.list_checkpoints(run) == [10, 20]


def test_evaluate_a_run_returns_the_records_it_wrote(run):
    recs = benchmark.evaluate(run, metrics="modes,hq", num_samples=2500, step=20)
    stored = rundir.read_metrics(run)
    assert [r["step"] for r in recs] == [20] and recs[-1]["metrics"] == stored[-1]["metrics"]
    assert set(recs[0]["metrics"]) == {"modes2500", "hq2500"}


def test_evaluate_samples_scores_an_array_and_writes_nothing(tmp_path):
    from benchmark.data import load_dataset

    ring = load_dataset("ring8")
    one = ring.means[0] + ring.std * torch.randn(2500, 2, generator=torch.Generator().manual_seed(0))
    (rec,) = benchmark.evaluate(samples=one.numpy(), dataset="ring8", metrics=["modes"])
    assert rec["metrics"]["modes2500"] == 1.0
    (rec,) = benchmark.evaluate(samples={"images": ring.reference(2500)[0]}, dataset="ring8", metrics=["modes"])
    assert rec["metrics"]["modes2500"] == 8.0


@pytest.mark.parametrize(
    "kw,needle",
    [
        (dict(run_dir="x", samples=torch.zeros(3, 2), dataset="ring8"), "not both"),
        (dict(samples=torch.zeros(3, 2)), "needs dataset"),
        (dict(samples=torch.zeros(3, 2), dataset="ring8", step=1), "step applies to run_dir"),
        (dict(), "give a run directory"),
        (dict(samples=torch.zeros(3, 2), dataset="ring8", metrics="modse"), "modes"),
    ],
)
def test_evaluate_refuses_bad_arguments(kw, needle):
    with pytest.raises(UserError, match=needle):
        benchmark.evaluate(**kw)


def test_load_results_of_a_run_has_one_row_per_score_and_the_config(run):
    benchmark.evaluate(run, metrics="modes,hq", num_samples=2500, step=20)  # (xdist: not after the test above)
    frame = benchmark.load_results(run)
    recs = rundir.read_metrics(run)
    assert len(frame) == sum(len(r["metrics"]) for r in recs)
    last = recs[-1]
    got = frame[frame.step == last["step"]].set_index("metric")["value"]
    assert {m: got[m] for m in last["metrics"]} == pytest.approx(last["metrics"])
    assert set(frame["config.dataset"]) == {"ring8"} and set(frame["seed"]) == {0} and frame.study.isna().all()


def test_load_results_of_a_store_reads_every_study_and_writes_nothing():
    before = snapshot(GOLDEN_STORE)
    frame = benchmark.load_results(GOLDEN_STORE)
    assert snapshot(GOLDEN_STORE) == before
    index = json.loads((GOLDEN_STORE / "studies" / "golden-default.json").read_text())
    golden = frame[frame.study == "golden"]
    assert set(golden.variant) == {t["variant"] for t in index["trials"]} - {"broken"}  # it failed: no scores
    assert {"study", "preset", "variant", "seed", "step", "metric", "value"} <= set(frame.columns)
    assert golden["value"].notna().any() and any(c.startswith("config.") for c in frame.columns)


def test_load_results_refuses_a_folder_that_is_neither(tmp_path):
    with pytest.raises(UserError, match="neither a run directory"):
        benchmark.load_results(tmp_path)


def test_run_study_returns_the_report_folder(tmp_path):
    spec = {
        "name": "apitest",
        "base": {"dataset": "ring8", "model": "toy", "batch_size": 32},
        "axes": {"gp_lambda": [0, 10]},
        "seeds": [0],
        "budget": {"steps": 20},
        "eval_at": [0.5, 1.0],
        "num_samples": 500,
        "report": {"x": "gp_lambda", "columns": ["modes", "hq"]},
    }
    p = tmp_path / "apitest.yaml"
    p.write_text(yaml.safe_dump(spec))
    out = benchmark.run_study(p, preset=None, results=tmp_path / "res", reports=tmp_path / "rep", workers=1)
    assert out == tmp_path / "rep" / "apitest" and (out / "README.md").is_file()
    frame = benchmark.load_results(tmp_path / "res")
    assert set(frame.variant) == {"gp_lambda=0", "gp_lambda=10"} and "modes2500" in set(frame.metric)
    written = [r for f in sorted((tmp_path / "res").rglob("metrics.jsonl")) for r in rundir.read_metrics(f.parent)]
    assert sorted(set(frame.step)) == [10, 20] and len(frame) == sum(len(r["metrics"]) for r in written)
    with pytest.raises(UserError, match="not found"):
        benchmark.run_study("no-such-study")

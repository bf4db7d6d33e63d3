"""``ganbench evaluate``: sample files (malformed -> one line, exit 2, nothing written) and run directories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.cli import main
from benchmark.io import read_jsonl

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def digits_images(n=300):
    from benchmark.data import load_dataset

    x = load_dataset("digits", split="train").images[:n]
    return ((x + 1) * 127.5).round().to(torch.uint8).squeeze(1).numpy()  # N x 8 x 8 uint8


def run_cli(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def good_arrays():
    return {"images": digits_images()}


MALFORMED = {
    "missing images key": lambda: {"pictures": digits_images()},
    "wrong shape": lambda: {"images": digits_images()[:, :7, :]},
    "NaN values": lambda: {"images": np.where(np.arange(64).reshape(8, 8) == 3, np.nan, 0.0)[None].repeat(300, 0)},
    "float out of range": lambda: {"images": digits_images().astype(np.float32)},
    "too few samples": lambda: {"images": digits_images(40)},
    "labels out of range": lambda: {"images": digits_images(), "labels": np.full(300, 12)},
    "labels wrong length": lambda: {"images": digits_images(), "labels": np.zeros(7, dtype=np.int64)},
    "string images": lambda: {"images": np.array(["a"] * 300)},
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_sample_files_exit_2_with_one_line_and_write_nothing(case, tmp_path, capsys):
    f = tmp_path / "s.npz"
    np.savez(f, **MALFORMED[case]())
    out = tmp_path / "out.json"
    code, stdout, err = run_cli(
        [
            "evaluate",
            "--samples",
            str(f),
            "--dataset",
            "digits",
            "--json",
            str(out),
            "--metrics",
            "coverage,fid",
            "--quiet",
            "--cache-root",
            str(tmp_path / "c"),
        ],
        capsys,
    )
    assert code == 2, (case, err)
    assert err.startswith("ganbench: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not out.exists()


def test_not_an_npz_and_missing_file(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_text("hello")
    for path in (bad, tmp_path / "absent.npz"):
        code, _, err = run_cli(["evaluate", "--samples", str(path), "--dataset", "digits", "--quiet"], capsys)
        assert code == 2 and err.count("\n") == 1


def test_malformed_file_exit_status_from_the_real_command(tmp_path):
    f = tmp_path / "s.npz"
    np.savez(f, images=np.zeros((10, 5), dtype=np.uint8))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmark",
            "evaluate",
            "--samples",
            str(f),
            "--dataset",
            "digits",
            "--json",
            str(tmp_path / "o.json"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "shape" in r.stderr
    assert not (tmp_path / "o.json").exists()


def test_good_sample_file_writes_a_record(tmp_path, capsys):
    from benchmark.evaluation.classifier import read_manifest

    f = tmp_path / "s.npz"
    np.savez(f, **good_arrays())
    out = tmp_path / "out.json"
    code, _, err = run_cli(
        [
            "evaluate",
            "--samples",
            str(f),
            "--dataset",
            "digits",
            "--json",
            str(out),
            "--metrics",
            "coverage,fid,is",
            "--quiet",
            "--cache-root",
            str(tmp_path / "c"),
        ],
        capsys,
    )
    assert code == 0, err
    rec = json.loads(out.read_text())
    assert rec["evaluator"]["sha256"] == read_manifest()["digits"]["sha256"]
    assert rec["metrics"]["classes_covered300"] == 10
    assert {"fid300_test", "is300", "class_kl300"} <= set(rec["metrics"])
    assert (
        rec["reference"] == {"dataset": "digits", "split": "test", "subset": "random-s0"} and rec["num_samples"] == 300
    )


def test_float_samples_and_labels_are_accepted(tmp_path, capsys):
    f = tmp_path / "s.npz"
    x = digits_images().astype(np.float32) / 127.5 - 1
    np.savez(f, images=x[:, None], labels=np.arange(300) % 10)
    out = tmp_path / "out.json"
    code, _, err = run_cli(
        [
            "evaluate",
            "--samples",
            str(f),
            "--dataset",
            "digits",
            "--json",
            str(out),
            "--metrics",
            "coverage",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err


# ---- runs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    from benchmark.config import make_config
    from benchmark.train import train

    out = tmp_path_factory.mktemp("runs") / "digits"
    cfg = make_config(
        {
            "dataset": "digits",
            "model": "mlp",
            "objective": "wgan-gp",
            "steps": 4,
            "checkpoint_every": 2,
            "batch_size": 16,
            "device": "cpu",
            "log_flush_every": 1,
        }
    )
    train(cfg, out, progress=False)
    return out


def test_evaluate_run_scores_every_checkpoint_once(digits_run, tmp_path):
    from benchmark.evaluation.runs import evaluate_run
    from benchmark.rundir import list_checkpoints

    kw = dict(num_samples=300, cache_root=tmp_path, progress=False, metrics=["fid", "coverage", "dynamics"])
    recs = evaluate_run(digits_run, **kw)
    steps = list_checkpoints(digits_run)
    assert [r["step"] for r in recs] == steps and len(steps) >= 2
    stored = read_jsonl(digits_run / "metrics.jsonl")
    assert len(stored) == len(steps)
    r = stored[0]
    keys = ("step", "metrics", "evaluator", "num_samples", "reference", "git_commit", "torch_version", "time")
    for key in (*keys, "torch_fidelity_version"):
        assert key in r
    assert {"name", "sha256", "lpips_backbone"} <= set(r["evaluator"])
    assert "fid300_test" in r["metrics"] and "d_loss_var_last200" in r["metrics"]
    assert "grad_norm_mean_last200" in r["metrics"]
    # already scored: nothing new; --force: scored again; another metric set: scored
    again = evaluate_run(digits_run, **kw)
    assert [r["time"] for r in again] == [r["time"] for r in recs]
    assert len(read_jsonl(digits_run / "metrics.jsonl")) == len(steps)
    evaluate_run(digits_run, steps=[steps[-1]], force=True, **kw)
    assert len(read_jsonl(digits_run / "metrics.jsonl")) == len(steps) + 1
    evaluate_run(digits_run, steps=[steps[-1]], **{**kw, "metrics": ["coverage"]})
    assert len(read_jsonl(digits_run / "metrics.jsonl")) == len(steps) + 2


def test_evaluate_run_command_line(digits_run, tmp_path, capsys):
    code, out, err = run_cli(
        [
            "evaluate",
            str(digits_run),
            "--step",
            "2",
            "--metrics",
            "coverage,lpips",
            "--num-samples",
            "200",
            "--quiet",
            "--cache-root",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 0, err
    assert "step 2:" in out and ("lpips200=" in out or "feat_div200=" in out)  # feat_div: LPIPS without AlexNet
    code, _, err = run_cli(["evaluate", str(digits_run), "--step", "3", "--quiet"], capsys)
    assert code == 2 and "no checkpoint at step 3" in err and err.count("\n") == 1
    code, _, err = run_cli(["evaluate", str(digits_run), "--metrics", "fid,nope", "--quiet"], capsys)
    assert code == 2 and "unknown metric 'nope'" in err


def test_evaluate_run_of_a_mixture(tmp_path):
    from benchmark.config import make_config
    from benchmark.evaluation.runs import evaluate_run
    from benchmark.train import train

    cfg = make_config(
        {
            "dataset": "ring8",
            "model": "toy",
            "objective": "gan",
            "steps": 2,
            "checkpoint_every": 2,
            "batch_size": 16,
            "device": "cpu",
        }
    )
    train(cfg, tmp_path / "ring", progress=False)
    (rec,) = evaluate_run(tmp_path / "ring", num_samples=100, progress=False)
    assert {"modes2500", "hq2500", "rkl2500"} <= set(rec["metrics"])
    assert rec["evaluator"]["name"] == "mixture-geometry"

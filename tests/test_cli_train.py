"""`ganbench train`: flags, YAML + --set overrides, and one-line errors (exit 2, nothing written)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from helpers import one_line_error

REPO = Path(__file__).resolve().parents[1]
BASE = [
    "train",
    "--dataset",
    "ring8",
    "--model",
    "toy",
    "--steps",
    "4",
    "--checkpoint-every",
    "2",
    "--device",
    "cpu",
    "--quiet",
]


@pytest.mark.parametrize(
    "extra,needles",
    [
        (["--set", "gp_lamda=3"], ["unknown config key 'gp_lamda'", "did you mean 'gp_lambda'"]),
        (["--gp-lambda", "-1"], ["gp_lambda", ">= 0"]),
        (["--pack", "0"], ["pack", ">= 1"]),
        (["--pack", "3"], ["pack", "divide batch_size"]),
        (["--steps", "many"], ["steps", "integer"]),
        (["--objective", "wgan-pg"], ["unknown objective 'wgan-pg'", "wgan-gp"]),
        (["--model", "dcgan"], ["model 'dcgan' needs 28x28 images", "use model toy"]),
        (["--critic-norm", "instance"], ["critic_norm 'instance'", "dcgan"]),
        (["--critic-norm", "group"], ["critic_norm", "none, batch, layer, instance"]),
        (["--objective", "wgan", "--label-smoothing", "0.1"], ["label_smoothing", "wgan"]),
        (["--objective", "cgan", "--pack", "2"], ["pack", "conditional"]),
        (["--deterministic", "maybe"], ["deterministic", "true or false"]),
        (["--bogus-flag", "1"], ["unrecognized arguments"]),
    ],
)
def test_bad_config_is_one_line_and_writes_nothing(tmp_path, capsys, extra, needles):
    out = tmp_path / "run"
    one_line_error(capsys, BASE + extra + ["--out", str(out)], *needles)
    assert not out.exists()


def test_missing_dataset_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    one_line_error(
        capsys,
        [
            "train",
            "--dataset",
            "mnist",
            "--data-root",
            str(tmp_path / "nothing"),
            "--download",
            "false",
            "--out",
            str(out),
        ],
        "MNIST not found",
        "--data-root",
    )
    assert not out.exists()


def test_bad_yaml_files(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text("steps: [1\n")
    one_line_error(capsys, ["train", "--config", str(f), "--out", str(tmp_path / "r")], "not valid YAML")
    f.write_text("stepz: 3\n")
    one_line_error(capsys, ["train", "--config", str(f), "--out", str(tmp_path / "r")], "unknown config key 'stepz'")
    one_line_error(
        capsys, ["train", "--config", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "r")], "does not exist"
    )
    assert not (tmp_path / "r").exists()


def test_yaml_then_flags_then_set(tmp_path, capsys):
    f = tmp_path / "c.yaml"
    f.write_text("dataset: ring8\nmodel: toy\nsteps: 3\ngp_lambda: 5\nbatch_size: 8\nseed: 1\n")
    out = tmp_path / "r"
    assert (
        main(
            [
                "train",
                "--config",
                str(f),
                "--seed",
                "2",
                "--set",
                "gp_lambda=0.5",
                "--set",
                "steps=2",
                "--device",
                "cpu",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert (cfg["steps"], cfg["gp_lambda"], cfg["seed"], cfg["batch_size"], cfg["n_critic"]) == (2, 0.5, 2, 8, 5)


def test_corrupt_checkpoint_is_one_line(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(BASE + ["--steps", "2", "--out", str(out)]) == 0
    (out / "done.json").unlink()
    (out / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    before = sorted(p.name for p in out.rglob("*"))
    one_line_error(capsys, BASE + ["--steps", "2", "--out", str(out)], "corrupt", "last.pt", "delete it")
    assert sorted(p.name for p in out.rglob("*")) == before


def test_console_script_runs_and_help_lists_stages():
    r = subprocess.run([sys.executable, "-m", "benchmark", "--help"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and "train" in r.stdout


def test_every_train_flag_has_help_from_the_config_comments():
    from benchmark.config import TrainConfig, field_docs

    docs = field_docs(TrainConfig)
    assert "weight of the gradient penalty" in docs["gp_lambda"]
    r = subprocess.run([sys.executable, "-m", "benchmark", "train", "--help"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0
    flat = " ".join(r.stdout.split())
    assert "weight of the gradient penalty (wgan-gp) (range: >= 0 and <= 1000000) [default: 10.0]" in flat
    assert "PacGAN: D judges `pack` samples jointly (range: >= 1 and <= 64) [default: 1]" in flat


# ---- lazy subcommands: each command imports what it runs ------------------------------------------------

HEAVY = ("torch", "torchvision", "pandas", "scipy", "matplotlib", "torch_fidelity", "sklearn")
STAGES = ("benchmark.train", "benchmark.evaluation", "benchmark.study", "benchmark.regress")


_PROBE = """
import sys
from benchmark.cli import main
try:
    rc = main(sys.argv[2:])
except SystemExit as e:
    rc = e.code
watched = sys.argv[1].split(",")
print(rc, *sorted({w for m in sys.modules for w in watched if m == w or m.startswith(w + ".")}))
"""


def _imported_by(argv, modules):
    """Which of ``modules`` (or their submodules) a fresh process has imported after ``ganbench argv``."""
    r = subprocess.run([sys.executable, "-c", _PROBE, ",".join(modules), *argv], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rc, *found = r.stdout.strip().splitlines()[-1].split()
    return int(rc), set(found)


@pytest.mark.parametrize("argv", [["--help"], ["nosuch"], ["train", "--help"]])
def test_help_imports_neither_torch_nor_any_stage(argv):
    rc, found = _imported_by(argv, HEAVY + STAGES)
    assert rc in (0, 2) and found == set()


def test_train_imports_training_and_nothing_of_the_later_stages(tmp_path):
    rc, found = _imported_by(BASE + ["--out", str(tmp_path / "r")], HEAVY + STAGES)
    assert rc == 0
    assert {"torch", "matplotlib", "benchmark.train"} <= found  # a toy run draws its scatter with matplotlib
    assert not found & {"torchvision", "pandas", "scipy", "torch_fidelity", "benchmark.evaluation", "benchmark.study"}
    assert "benchmark.regress" not in found


def test_an_mnist_run_imports_no_torchvision(mnist_data_root, tmp_path):
    argv = ["train", "--dataset", "mnist", "--data-root", mnist_data_root, "--download", "false", "--steps", "1"]
    rc, found = _imported_by(argv + ["--device", "cpu", "--quiet", "--out", str(tmp_path / "r")], HEAVY)
    assert rc == 0 and (tmp_path / "r" / "samples" / "step_000001.png").is_file()
    assert found == {"torch"}  # the idx files read with numpy, the sample grid written with PIL


def test_command_table_is_what_the_stages_define():
    """`ganbench --help` lists COMMANDS without importing the stages: each line must be the stage's own help,
    and a command a stage defines but the table lacks would be unreachable."""
    import argparse

    from benchmark.cli import COMMANDS, resolve

    defined = {}
    for stage in {c.stage for c in COMMANDS}:
        sub = argparse.ArgumentParser().add_subparsers()
        resolve(stage)(sub)
        defined.update({a.dest: a.help for a in sub._choices_actions})
    assert defined == {c.name: c.help for c in COMMANDS}

"""Hostile input: non-finite and absurd numbers, wrong-kind and unwritable paths, damaged datasets, ambiguous
sample files. Each one ends with one line naming the problem, exit status 2, and nothing written or computed.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark import io
from benchmark.cli import main
from benchmark.config import LIMITS, TrainConfig, coerce, make_config, parse_set
from benchmark.errors import UserError
from helpers import TINY, one_line_error, unprivileged

REPO = Path(__file__).resolve().parents[1]


def _is_float_field(tp) -> bool:
    return tp is float or float in typing.get_args(tp)


FLOAT_KEYS = sorted(k for k, tp in typing.get_type_hints(TrainConfig).items() if _is_float_field(tp))
NON_FINITE_TEXT = ["nan", "NaN", ".nan", "inf", "-inf", ".inf", "-.inf", "Infinity", "-Infinity", "1e999"]


def test_the_float_keys_are_the_ones_a_user_can_set():
    # the property test below is only as good as this list: it must hold every float of the config
    assert {
        "gp_lambda",
        "lr_g",
        "lr_d",
        "clip",
        "instance_noise",
        "epochs",
        "label_smoothing",
        "beta1_g",
        "beta2_g",
        "beta1_d",
        "beta2_d",
    } <= set(FLOAT_KEYS)


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(FLOAT_KEYS),
    value=st.one_of(
        st.sampled_from([math.nan, math.inf, -math.inf]),
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not math.isfinite(v)),
    ),
)
def test_non_finite_float_values_are_refused_naming_the_key(key, value):
    with pytest.raises(UserError, match=f"config key '{key}' must be a finite number"):
        make_config({key: value})


@settings(max_examples=100, deadline=None)
@given(key=st.sampled_from(FLOAT_KEYS), text=st.sampled_from(NON_FINITE_TEXT))
def test_non_finite_text_from_flags_and_set_is_refused_naming_the_key(key, text):
    # --set key=value and --flag value both read the value as a YAML scalar, then coerce it
    with pytest.raises(UserError, match=f"config key '{key}' must be a finite number"):
        make_config(parse_set([f"{key}={text}"]))


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(sorted(LIMITS)),
    value=st.one_of(
        st.integers(min_value=-(10**500), max_value=10**500),
        st.floats(),
        st.text(max_size=8),
        st.lists(st.integers(), max_size=3),
        st.booleans(),
        st.none(),
    ),
)
def test_any_value_of_a_numeric_key_is_accepted_in_range_or_refused_in_one_line(key, value):
    # never a traceback (OverflowError, ValueError...), and never a value outside the documented range
    try:
        cfg = make_config({key: value, "objective": "gan"})
    except UserError as e:
        assert f"'{key}'" in str(e) and "\n" not in str(e)
        return
    got = getattr(cfg, key)
    for v in got if isinstance(got, list) else [got]:
        assert v is None or LIMITS[key].holds(v), (key, value, got)


def test_coerce_refuses_non_finite_for_any_float_field():
    for v in (math.nan, "inf", 10**400):
        with pytest.raises(UserError, match="'budget.epochs' must be a finite number"):
            coerce("budget.epochs", v, typing.Optional[float])


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--lr-d", "nan"),
        ("--epochs", "inf"),
        ("--instance-noise", "nan"),
        ("--gp-lambda", ".inf"),
        ("--lr-g", "nan"),
        ("--clip", "nan"),
        ("--label-smoothing", "nan"),
    ],
)
def test_non_finite_flags_are_one_line_and_write_nothing(tmp_path, capsys, flag, value):
    out = tmp_path / "run"
    key = flag[2:].replace("-", "_")
    one_line_error(capsys, TINY + [flag, value, "--out", str(out)], f"'{key}'", "finite")
    assert not out.exists()


ABSURD = [
    ("z_dim", "100000000000"),
    ("batch_size", "10000000"),
    ("steps", "1000000000"),
    ("epochs", "1e+9"),
    ("num_grid", "1000000"),
    ("pack", "128"),
    ("n_critic", "100000"),
    ("seed", "-1"),
    ("seed", "99999999999"),
    ("lr_d", "1000"),
    ("gp_lambda", "1e+12"),
    ("instance_noise", "1e+6"),
    ("checkpoint_every", "0"),
    ("checkpoint_at", "[0]"),
    ("num_threads", "100000"),
    ("clip", "0"),
]


@pytest.mark.parametrize("key,value", ABSURD)
def test_absurd_values_are_one_line_naming_the_key_and_its_range(tmp_path, capsys, key, value):
    out = tmp_path / "run"
    lim = LIMITS[key]
    one_line_error(capsys, TINY + ["--set", f"{key}={value}", "--out", str(out)], f"'{key}'", lim.text())
    assert not out.exists()


def test_epochs_that_mean_too_many_steps_are_refused(tmp_path, capsys):
    out = tmp_path / "run"
    one_line_error(
        capsys, TINY + ["--epochs", "90000", "--batch-size", "1", "--pack", "1", "--out", str(out)], "'epochs'", "steps"
    )
    assert not out.exists()


def test_every_limit_is_in_the_help_and_the_edges_are_accepted():
    from benchmark.config import field_docs

    docs = field_docs(TrainConfig)
    assert "(range: >= 1 and <= 16384)" in docs["z_dim"]
    cfg = make_config(
        {
            "z_dim": 16384,
            "seed": 2**32 - 1,
            "gp_lambda": 0,
            "label_smoothing": 0.999,
            "objective": "gan",
            "batch_size": 64,
            "pack": 64,
        }
    )
    assert (cfg.z_dim, cfg.seed, cfg.pack) == (16384, 2**32 - 1, 64)
    with pytest.raises(UserError, match="'z_dim' must be >= 1 and <= 16384, got 16385"):
        make_config({"z_dim": 16385})


# ---- paths ---------------------------------------------------------------------------------------


@pytest.fixture
def shared_tmp():
    """A temporary folder every user may traverse (pytest's own tmp_path is private to its owner)."""
    d = Path(tempfile.mkdtemp(prefix="ganbench-safety-"))
    d.chmod(0o755)
    yield d
    for p in [d, *d.rglob("*")]:
        if p.is_dir():
            p.chmod(0o755)
    shutil.rmtree(d)


def test_out_that_is_a_file_or_under_a_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    one_line_error(capsys, TINY + ["--out", str(f)], f"--out '{f}' is a file")
    one_line_error(capsys, TINY + ["--out", str(f / "run")], "cannot be created", f"'{f}' is a file")
    assert f.read_text() == "x" and sorted(tmp_path.iterdir()) == [f]


def test_out_without_write_permission_is_one_line(shared_tmp, capsys):
    locked = shared_tmp / "locked"
    locked.mkdir(mode=0o555)
    with unprivileged():
        one_line_error(capsys, TINY + ["--out", str(locked / "run")], "--out", "not writable", "permissions")
    assert list(locked.iterdir()) == []


@pytest.fixture
def ring_run(tmp_path):
    out = tmp_path / "ring"
    assert main(TINY + ["--out", str(out)]) == 0
    return out


def test_read_only_run_is_refused_before_any_computing(ring_run, shared_tmp, capsys, monkeypatch):
    import benchmark.evaluation.runs as runs

    run = shared_tmp / "ring"
    shutil.copytree(ring_run, run)
    for p in [run, *run.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    calls = []
    real_generate = runs.generate
    monkeypatch.setattr(runs, "generate", lambda *a, **k: calls.append(1) or real_generate(*a, **k))
    with unprivileged():
        one_line_error(
            capsys, ["evaluate", str(run), "--num-samples", "100", "--quiet"], "not writable", "metrics.jsonl"
        )
    assert calls == [] and not (run / "metrics.jsonl").exists()
    # scored while writable, a read-only run still answers from its stored scores (nothing to write)
    run.chmod(0o755)
    assert main(["evaluate", str(run), "--num-samples", "100", "--quiet"]) == 0
    n = len(calls)
    run.chmod(0o555)
    (run / "metrics.jsonl").chmod(0o444)
    with unprivileged():
        assert main(["evaluate", str(run), "--num-samples", "100", "--quiet"]) == 0
    assert len(calls) == n


def ring_samples(path, n=300):
    from benchmark.data import load_dataset

    x, _ = load_dataset("ring8").reference(n)
    np.savez(path, images=x.numpy())
    return path


def test_json_that_is_a_folder_is_refused_before_scoring(tmp_path, capsys, monkeypatch):
    import benchmark.evaluation.metrics as metrics

    monkeypatch.setattr(metrics, "evaluate_samples", lambda *a, **k: pytest.fail("scored before the check"))
    f = ring_samples(tmp_path / "s.npz")
    (tmp_path / "out").mkdir()
    one_line_error(
        capsys,
        ["evaluate", "--samples", str(f), "--dataset", "ring8", "--json", str(tmp_path / "out"), "--quiet"],
        "--json",
        "is a folder",
    )
    one_line_error(
        capsys,
        ["evaluate", "--samples", str(f), "--dataset", "ring8", "--json", str(f / "out.json"), "--quiet"],
        "--json",
        f"'{f}' is a file",
    )


# ---- sample files ----------------------------------------------------------------------------------


def digits_float01(n=300):
    from benchmark.data import load_dataset

    x = load_dataset("digits", split="train").images[:n]
    return ((x + 1) / 2).numpy().astype(np.float32)


@pytest.mark.parametrize("kind", ["npy", "text", "empty", "pickle"])
def test_unknown_sample_file_formats_are_one_line(tmp_path, capsys, kind):
    f = tmp_path / f"s.{kind}"
    if kind == "npy":
        np.save(f, digits_float01() * 2 - 1)
        needle = ".npy array"
    elif kind == "text":
        f.write_text("images: 1\n")
        needle = "not an .npz"
    elif kind == "empty":
        f.write_bytes(b"")
        needle = "is empty"
    else:
        import pickle

        f.write_bytes(pickle.dumps({"images": [1, 2]}))
        needle = "not an .npz"
    out = tmp_path / "o.json"
    one_line_error(
        capsys,
        ["evaluate", "--samples", str(f), "--dataset", "digits", "--json", str(out), "--quiet"],
        f"'{f}'",
        needle,
    )
    assert not out.exists()


def test_float_images_in_0_1_are_refused_unless_the_range_is_given(tmp_path, capsys):
    from benchmark.evaluation.samples import load_samples

    x01 = digits_float01()
    f = tmp_path / "s.npz"
    np.savez(f, images=x01)
    out = tmp_path / "o.json"
    one_line_error(
        capsys,
        ["evaluate", "--samples", str(f), "--dataset", "digits", "--json", str(out), "--quiet"],
        "[-1, 1]",
        "uint8 in [0, 255]",
        "--range 01",
    )
    assert not out.exists()
    # --range 01 reads them as [0, 1]: the same images as their [-1, 1] form
    got, _ = load_samples(f, "digits", value_range="01")
    np.savez(tmp_path / "m.npz", images=x01 * 2 - 1)
    want, _ = load_samples(tmp_path / "m.npz", "digits")
    assert torch.allclose(got, want, atol=1e-6) and float(got.min()) == -1.0
    # --range -11 says they are [-1, 1] images that happen to be bright: taken as they are
    same, _ = load_samples(f, "digits", value_range="-11")
    assert torch.equal(same, torch.from_numpy(x01))
    assert (
        main(
            [
                "evaluate",
                "--samples",
                str(f),
                "--dataset",
                "digits",
                "--range",
                "01",
                "--metrics",
                "coverage",
                "--json",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert out.is_file()
    # a range that does not hold, or one given for uint8 images
    np.savez(tmp_path / "u.npz", images=(x01 * 255).astype(np.uint8))
    one_line_error(
        capsys,
        ["evaluate", "--samples", str(tmp_path / "m.npz"), "--dataset", "digits", "--range", "01", "--quiet"],
        "--range 01 given",
        "span",
    )
    one_line_error(
        capsys,
        ["evaluate", "--samples", str(tmp_path / "u.npz"), "--dataset", "digits", "--range", "01", "--quiet"],
        "--range applies to float images",
    )


@pytest.mark.parametrize("n", ["0", "-5", "2000000"])
def test_zero_negative_and_absurd_sample_counts_are_one_line(ring_run, tmp_path, capsys, n):
    one_line_error(capsys, ["evaluate", str(ring_run), "--num-samples", n, "--quiet"], "--num-samples", f"got {n}")
    f = ring_samples(tmp_path / "s.npz")
    one_line_error(
        capsys, ["evaluate", "--samples", str(f), "--dataset", "ring8", "--num-samples", n, "--quiet"], "--num-samples"
    )
    assert not (ring_run / "metrics.jsonl").exists()


def test_negative_seed_and_threads_are_one_line(ring_run, capsys):
    one_line_error(capsys, ["evaluate", str(ring_run), "--seed", "-1", "--quiet"], "--seed")
    one_line_error(capsys, ["evaluate", str(ring_run), "--threads", "0", "--quiet"], "--threads")


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a text file"),
        (b"steps: 3\n\x00\x00", "binary"),
        (None, "is a folder"),
    ],
)
def test_binary_or_folder_config_is_one_line(tmp_path, capsys, content, needle):
    f = tmp_path / "c.yaml"
    if content is None:
        f.mkdir()
    else:
        f.write_bytes(content)
    one_line_error(capsys, ["train", "--config", str(f), "--out", str(tmp_path / "r")], f"'{f}'", needle)
    assert not (tmp_path / "r").exists()


# ---- damaged MNIST ------------------------------------------------------------------------------------


def _mnist_copy(root: Path, dst: Path) -> Path:
    """MNIST/raw under ``dst``: links to the intact shared files (never modified), copied where a test damages one."""
    raw = dst / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (root / "MNIST" / "raw").iterdir():
        (raw / f.name).symlink_to(f)
    return raw


def _damage(raw: Path, name: str, how: str) -> Path:
    f = raw / name
    data = f.read_bytes()
    f.unlink()
    if how == "empty":
        f.write_bytes(b"")
    elif how == "truncated":
        f.write_bytes(data[: len(data) // 3])
    else:  # one flipped byte, same size
        b = bytearray(data)
        b[len(b) // 2] ^= 0xFF
        f.write_bytes(bytes(b))
    return f


@pytest.mark.parametrize(
    "name,how,needle",
    [
        ("t10k-labels-idx1-ubyte", "corrupt", "is corrupt (its sha256 differs"),
        ("train-labels-idx1-ubyte", "truncated", "is truncated or damaged (20002 bytes, expected 60008)"),
        ("t10k-labels-idx1-ubyte", "empty", "is empty"),
    ],
)
def test_damaged_mnist_files_are_named_with_the_fix(mnist_data_root, tmp_path, capsys, monkeypatch, name, how, needle):
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    raw = _mnist_copy(Path(mnist_data_root), tmp_path / "data")
    f = _damage(raw, name, how)
    out = tmp_path / "run"
    err = one_line_error(
        capsys,
        [
            "train",
            "--dataset",
            "mnist",
            "--data-root",
            str(tmp_path / "data"),
            "--download",
            "false",
            "--steps",
            "1",
            "--out",
            str(out),
        ],
        f"'{f}'",
        needle,
        "intact copy",
    )
    assert "not found" not in err and not out.exists()
    # evaluate checks the files before scoring anything
    s = tmp_path / "s.npz"
    np.savez(s, images=np.zeros((100, 28, 28), dtype=np.uint8))
    one_line_error(
        capsys,
        [
            "evaluate",
            "--samples",
            str(s),
            "--dataset",
            "mnist",
            "--data-root",
            str(tmp_path / "data"),
            "--metrics",
            "coverage",
            "--quiet",
        ],
        f"'{f}'",
        needle,
    )


def test_mnist_checksums_are_cached_by_size_and_mtime(mnist_data_root, tmp_path, monkeypatch):
    import benchmark.data as data

    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    raw = _mnist_copy(Path(mnist_data_root), tmp_path / "data")
    hashed = []
    real = data.sha256_file
    monkeypatch.setattr(data, "sha256_file", lambda p: hashed.append(Path(p).name) or real(p))
    assert data.verify_raw_files("MNIST", raw)
    assert len(hashed) == 4
    assert data.verify_raw_files("MNIST", raw)  # a second check (another process) reads the cache
    assert len(hashed) == 4
    # a file that changes is hashed again, and refused
    f = _damage(raw, "t10k-labels-idx1-ubyte", "corrupt")
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte' is corrupt"):
        data.verify_raw_files("MNIST", raw)
    assert hashed[4:] == [f.name]
    # an absent file is not "damaged": loading later downloads it or says it is not found
    f.unlink()
    assert data.verify_raw_files("MNIST", raw) is False


# ---- defaults ------------------------------------------------------------------------------------------


def test_make_targets_use_one_study_worker_per_core_unless_told():
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # run as a user would, not as a sub-make of `make test` (whose MAKEFLAGS add "Entering directory" lines)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}

    def study_line(*args, **kw):
        r = subprocess.run(["make", "-n", "demo", *args], cwd=REPO, capture_output=True, text=True, env=env, **kw)
        lines = [ln for ln in r.stdout.splitlines() if "study run" in ln]
        assert lines, r.stdout + r.stderr
        return lines[-1]

    cores = len(os.sched_getaffinity(0))
    assert f"--workers {cores}" in study_line()
    # on a machine (here: a CPU set) of one core, one worker: the default follows the machine
    one = min(os.sched_getaffinity(0))
    assert "--workers 1" in study_line(preexec_fn=lambda: os.sched_setaffinity(0, {one}))
    assert "--workers 3" in study_line("WORKERS=3")


def test_a_rewritten_report_does_not_mark_later_trials_dirty(tmp_path):
    """Re-making the committed reports one study after another must not make the next study's trials '+dirty':
    reports/ and results/ are outputs, not code; an edited source file still is."""

    def git(*a):
        subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "page.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    sha = io.git_commit(tmp_path)
    assert len(sha) == 40
    (tmp_path / "reports" / "page.md").write_text("new\n")
    assert io.git_commit(tmp_path) == sha
    (tmp_path / "code.py").write_text("x = 2\n")
    assert io.git_commit(tmp_path) == sha + "+dirty"

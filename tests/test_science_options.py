"""Every TrainConfig option has an observable effect, and keys change exactly when they must.

* Each semantic option, changed alone, changes a two-step training's result (final weights, log, checkpoints
  or sample grids) — a silently ignored option fails here. Exceptions are listed with their reason.
* Each NON_SEMANTIC option changes neither the result nor the trial key, and a finished run stays finished.
* Each semantic option changes the trial key (the study's result directory) and the checkpoint identity.
* An evaluation record's key changes with each input that decides its numbers, and with nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch

from benchmark import io
from benchmark.config import NON_SEMANTIC, TrainConfig, make_config, resolve
from benchmark.evaluation.runs import record_key
from benchmark.models import ToyCritic, ToyGenerator
from benchmark.rundir import config_hash, load_checkpoint
from benchmark.study.kinds import KINDS
from benchmark.train import train

BASE = dict(
    dataset="ring8",
    model="toy",
    objective="gan",
    steps=2,
    batch_size=16,
    checkpoint_every=2,
    grad_norm_every=1,
    device="cpu",
    num_grid=16,
)


def narrow_toy(cfg, shape, num_classes):
    """A user's own model ('module:function'): the toy pair with a narrower generator."""
    return ToyGenerator(cfg, shape, num_classes, width=64), ToyCritic(cfg, shape, num_classes)


# option -> (extra base settings the option needs, the changed value)
CHANGES = {
    "dataset": ({}, "grid25"),
    "model": ({}, "test_science_options:narrow_toy"),
    "objective": ({}, "lsgan"),
    "conditional": ({}, True),
    "cond_mode": ({"conditional": True}, "projection"),
    "label_scale": ({"conditional": True}, "sqrt-z"),
    "z_dim": ({}, 3),
    "critic_norm": ({}, "layer"),
    "steps": ({}, 3),
    "epochs": ({}, 0.0005),  # ceil(0.0005 * 100000 / 16) = 4 steps
    "batch_size": ({}, 8),
    "n_critic": ({}, 2),
    "lr_g": ({}, 1e-3),
    "lr_d": ({}, 1e-3),
    "lr_decay": ({}, "linear"),
    "beta1_g": ({}, 0.9),
    "beta2_g": ({}, 0.5),
    "beta1_d": ({}, 0.9),
    "beta2_d": ({}, 0.5),
    "optimizer": ({}, "rmsprop"),
    "gp_lambda": ({"objective": "wgan-gp", "n_critic": 1}, 1.0),
    "gp_mode": ({"objective": "wgan-gp", "n_critic": 1}, "one-sided"),
    "clip": ({"objective": "wgan", "n_critic": 1, "lr_d": 1e-2}, 0.003),
    "minibatch_disc": ({}, True),
    "feature_matching": ({}, True),
    "label_smoothing": ({}, 0.2),
    "instance_noise": ({}, 0.5),
    "pack": ({}, 2),
    "seed": ({}, 1),
    "checkpoint_every": ({}, 1),  # more checkpoints
    "checkpoint_at": ({"steps": 4}, [1, 4]),  # generator weights kept at other steps
    "grad_norm_every": ({}, 2),  # |grad D| logged at other steps
    "num_grid": ({}, 4),  # another sample grid
}
# Semantic options whose effect is not a different CPU result, with where it is observed instead.
EXCEPTIONS = {
    "deterministic": "same numbers on CPU by design; its effect (deterministic kernels switched on) is asserted below",
    "device": "'auto' is the CPU here; tests/test_cuda.py trains on CUDA where a GPU exists",
}


def fingerprint(out):
    """Everything a run produced that its numbers decide: final weights, log values, checkpoint and grid files."""
    ck = load_checkpoint(out / "checkpoints" / "last.pt")
    weights = torch.cat(
        [
            t.flatten().double()
            for part in ("G", "D")
            for t in ck[part].values()
            if torch.is_tensor(t) and t.is_floating_point()
        ]
    )
    log = [{k: v for k, v in r.items() if k != "sec"} for r in io.read_jsonl(out / "log.jsonl")]
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    grids = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "samples").glob("*"))}
    return {
        "weights": weights,
        "log": log,
        "files": [f for f in files if f.startswith(("checkpoints", "samples"))],
        "grids": grids,
    }


def same(a, b):
    return (
        a["weights"].shape == b["weights"].shape
        and torch.equal(a["weights"], b["weights"])
        and a["log"] == b["log"]
        and a["files"] == b["files"]
        and a["grids"] == b["grids"]
    )


@pytest.fixture(scope="module")
def baselines(tmp_path_factory):
    cache = {}

    def get(extra):
        key = repr(sorted(extra.items()))
        if key not in cache:
            out = tmp_path_factory.mktemp("base") / "run"
            train(make_config({**BASE, **extra}), out, progress=False)
            cache[key] = fingerprint(out)
        return cache[key]

    return get


def test_every_option_is_covered_here():
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    listed = set(CHANGES) | set(EXCEPTIONS) | set(NON_SEMANTIC)
    assert names == listed, f"options without an effect test: {sorted(names - listed)}; stale: {sorted(listed - names)}"
    assert not (set(CHANGES) | set(EXCEPTIONS)) & set(NON_SEMANTIC)


@pytest.mark.parametrize("option", sorted(CHANGES))
def test_each_semantic_option_changes_the_result(tmp_path, baselines, option):
    extra, value = CHANGES[option]
    base = baselines(extra)
    out = tmp_path / "run"
    train(make_config({**BASE, **extra, option: value}), out, progress=False)
    assert not same(fingerprint(out), base), f"changing '{option}' to {value!r} changed nothing a run produces"


def test_deterministic_switches_on_deterministic_kernels(tmp_path, baselines):
    assert not torch.are_deterministic_algorithms_enabled()
    try:
        train(make_config({**BASE, "deterministic": True}), tmp_path / "run", progress=False)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    assert same(fingerprint(tmp_path / "run"), baselines({}))  # and the CPU numbers are the same


NON_SEMANTIC_CHANGES = {
    "data_root": "/nonexistent/elsewhere",
    "download": False,
    "num_threads": 1,
    "log_flush_every": 1,
    "tensorboard": True,  # event files beside the run (benchmark/tb.py): the same bits, the same keys
}


def test_non_semantic_changes_are_listed():
    assert set(NON_SEMANTIC_CHANGES) == set(NON_SEMANTIC)


@pytest.mark.parametrize("option", sorted(NON_SEMANTIC_CHANGES))
def test_non_semantic_option_changes_neither_result_nor_keys(tmp_path, baselines, option):
    value = NON_SEMANTIC_CHANGES[option]
    base_cfg = resolve(make_config(BASE))
    cfg = resolve(make_config({**BASE, option: value}))
    assert KINDS.get("gan").key(cfg) == KINDS.get("gan").key(base_cfg)
    assert config_hash(cfg) == config_hash(base_cfg)
    out = tmp_path / "run"
    summary = train(make_config({**BASE, option: value}), out, progress=False)
    assert same(fingerprint(out), baselines({}))
    again = train(make_config(BASE), out, progress=False)  # the same run: finished, not refused or redone
    assert again == summary


@pytest.mark.parametrize("option", sorted(set(CHANGES) | set(EXCEPTIONS)))
def test_each_semantic_option_changes_trial_key_and_checkpoint_identity(option):
    extra, value = CHANGES.get(option, ({}, None))
    if option == "deterministic":
        value = True
    elif option == "device":
        value = "cuda"
    base = resolve(make_config({**BASE, **extra}))
    changed = dataclasses.replace(base, **{option: value})  # no device check: only the keys are computed
    assert KINDS.get("gan").key(changed) != KINDS.get("gan").key(base)
    assert config_hash(changed) != config_hash(base)


# ------------------------------------------------------------------------------------------------
# an evaluation record's key


RECORD = {
    "step": 10,
    "metric_set": ["fid", "kid"],
    "evaluator": {"name": "ganbench-classifier-mnist", "sha256": "ab"},
    "num_samples_requested": 1000,
    "reference": {"split": "test"},
    "generation_seed": 0,
    "metrics": {"fid1k_test": 3.0},
    "time": "2026-01-01T00:00:00+00:00",
    "seconds": 1.0,
    "git_commit": "x",
}


@pytest.mark.parametrize(
    "field,value",
    [
        ("step", 20),
        ("metric_set", ["fid"]),
        ("evaluator", {"name": "inception-v3-compat", "sha256": "ab"}),
        ("evaluator", {"name": "ganbench-classifier-mnist", "sha256": "cd"}),
        ("num_samples_requested", 500),
        ("reference", {"split": "train"}),
        ("generation_seed", 1),
    ],
)
def test_record_key_changes_with_each_input_of_the_numbers(field, value):
    assert record_key({**RECORD, field: value}) != record_key(RECORD)


@pytest.mark.parametrize(
    "field,value",
    [
        ("metrics", {"fid1k_test": 4.0}),
        ("time", "2027-01-01"),
        ("seconds", 9.0),
        ("git_commit", "y"),
        ("metric_set", ["kid", "fid"]),
    ],
)
def test_record_key_ignores_what_does_not_decide_the_numbers(field, value):
    assert record_key({**RECORD, field: value}) == record_key(RECORD)

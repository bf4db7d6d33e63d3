"""Values that reached Python unguarded: a `module:attr` that is no model factory, and numbers in a regression
baseline of absurd length or size. Each case ends with exit status 2 (or a UserError), one line, nothing written."""

from __future__ import annotations

import json
import sys

import pytest

from benchmark import regress as R
from benchmark.errors import UserError
from benchmark.models import import_user_model
from helpers import refused

BASE = ["train", "--dataset", "ring8", "--steps", "2", "--device", "cpu", "--quiet"]

USER_MODULE = """
from torch import nn
from benchmark.models import ToyCritic, ToyGenerator

def one(cfg, shape, num_classes):
    return (ToyGenerator(cfg, shape, num_classes),)

def three(cfg, shape, num_classes):
    return ToyGenerator(cfg, shape, num_classes), ToyCritic(cfg, shape, num_classes), None

def not_modules(cfg, shape, num_classes):
    return ToyGenerator(cfg, shape, num_classes), "critic"

def two_args(cfg, shape):
    return None

def good(cfg, shape, num_classes):
    return [ToyGenerator(cfg, shape, num_classes), ToyCritic(cfg, shape, num_classes)]

NUMBER = 3
"""


@pytest.fixture
def user_pkg(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "hostile_models.py").write_text(USER_MODULE)
    (pkg / "hostile_boom.py").write_text("raise RuntimeError('boom at import')\n")
    (pkg / "hostile_syntax.py").write_text("def f(:\n")
    monkeypatch.syspath_prepend(str(pkg))
    yield pkg
    for m in ("hostile_models", "hostile_boom", "hostile_syntax"):
        sys.modules.pop(m, None)


MODEL_CASES = [
    ("benchmark.config:LIMITS", ["is a dict (not callable), not a model factory"]),
    ("benchmark.config:MAX_STEPS", ["is a int (not callable)"]),
    ("benchmark.config:TrainConfig", ["is a class, not a model factory"]),
    ("torch.nn:Linear", ["is a class"]),
    ("os:system", ["takes '(command)', not (cfg, shape, num_classes)"]),
    ("builtins:len", ["takes '(obj, /)'"]),
    ("hostile_models:two_args", ["takes '(cfg, shape)'"]),
    ("hostile_models:NUMBER", ["not callable"]),
    ("hostile_models:one", ["returned a tuple of 1, not a pair (G, D)"]),
    ("hostile_models:three", ["returned a tuple of 3"]),
    ("hostile_models:not_modules", ["not a pair (G, D) of torch.nn.Module"]),
    ("hostile_boom:f", ["importing 'hostile_boom' failed (RuntimeError: 'boom at import')"]),
    ("hostile_syntax:f", ["importing 'hostile_syntax' failed (SyntaxError"]),
    ("no_such_module_xyz:f", ["cannot be imported", "PYTHONPATH"]),
    ("os:no_such_function", ["cannot be imported"]),
    (":", ["model ':' is neither a registry name"]),
    (":f", ["neither a registry name"]),
    ("os:", ["neither a registry name"]),
    ("..os:system", ["neither a registry name"]),
    ("os:path.join", ["neither a registry name"]),
    ("os :system", ["neither a registry name"]),
    ("a:b:c", ["neither a registry name"]),
]


@pytest.mark.parametrize("model,needles", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_a_model_that_is_no_factory_is_one_line(user_pkg, tmp_path, capsys, model, needles):
    refused(capsys, BASE + ["--model", model, "--out", str(tmp_path / "r")], *needles, tree=tmp_path)


def test_a_good_factory_still_trains(user_pkg, tmp_path):
    from benchmark.cli import main

    assert main(BASE + ["--model", "hostile_models:good", "--out", str(tmp_path / "r")]) == 0
    f = import_user_model("hostile_models:good")
    assert f.__name__ == "good"


def test_regress_refuses_a_non_factory_model_before_any_trial(capsys, tmp_path):
    refused(
        capsys,
        ["regress", "--suite", "ci", "--quiet", "--set", "model=benchmark.config:LIMITS"],
        "LIMITS",
        "not callable",
        tree=tmp_path,
    )


# ---- regression baselines: numbers bounded ---------------------------------------------------------------


def baseline(value="40.0", tol="2.0", spread="") -> str:
    """A baseline with one fid entry whose numbers are given as JSON text (so they can be any length)."""
    extra = f', "spread": {spread}' if spread else ""
    return (
        '{"format": 1, "suite": "ci", "environment": {}, "evaluators": {}, "tolerance": {}, "trials": {"t": '
        '{"dataset": "digits", "metrics": {"fid1k_test": {"value": ' + value + ', "tolerance": ' + tol + ", "
        '"direction": -1' + extra + "}}}}}"
    )


BASELINE_CASES = [
    ("value-401-digits", baseline(value="1" * 401), ["corrupt", "401 digits"]),
    ("tolerance-401-digits", baseline(tol="9" * 401), ["corrupt", "401 digits"]),
    ("negative-401-digits", baseline(value="-" + "1" * 401), ["401 digits"]),
    ("spread-401-digits", baseline(spread='{"min": 1, "max": ' + "1" * 401 + "}"), ["401 digits"]),
    ("value-1e300", baseline(value="1e300"), ["'t' / 'fid1k_test'", "value 1e+300, larger than any score"]),
    ("tolerance-1e13", baseline(value="1e13", tol="1e13"), ["larger than any score"]),
    ("spread-max-1e200", baseline(spread='{"min": 1, "max": 1e200}'), ["spread max 1e+200"]),
    ("value-1e400", baseline(value="-1e400"), ["value -inf"]),
    ("deep", "[" * 100_000, ["corrupt", "nested deeper"]),
    ("empty", "", ["corrupt", "not JSON"]),
]


@pytest.mark.parametrize("text,needles", [c[1:] for c in BASELINE_CASES], ids=[c[0] for c in BASELINE_CASES])
def test_absurd_numbers_in_a_baseline_are_one_line(tmp_path, capsys, text, needles):
    p = tmp_path / "ci.json"
    p.write_text(text)
    with pytest.raises(UserError) as e:
        R.load_baseline(p, "ganbench regress --suite ci --update")
    assert all(n in str(e.value) for n in needles) and len(str(e.value).splitlines()) == 1, str(e.value)
    refused(capsys, ["regress", "--suite", "ci", "--quiet", "--baseline", str(p)], needles[-1], tree=tmp_path)


def test_a_baseline_that_is_a_folder_or_a_pipe_is_one_line(tmp_path, capsys):
    import os

    (tmp_path / "d.json").mkdir()
    os.mkfifo(tmp_path / "p.json")
    for name, needle in [("d.json", "is a folder"), ("p.json", "not a regular file")]:
        refused(
            capsys, ["regress", "--suite", "ci", "--baseline", str(tmp_path / name)], "baseline", needle, tree=tmp_path
        )


def test_a_sound_baseline_still_loads(tmp_path):
    p = tmp_path / "ci.json"
    p.write_text(baseline(value="41.5", tol="2", spread='{"min": 40, "max": 43, "nonfinite": 0}'))
    b = R.load_baseline(p, "x")
    assert b["trials"]["t"]["metrics"]["fid1k_test"]["value"] == 41.5
    assert json.loads(p.read_text())["format"] == 1

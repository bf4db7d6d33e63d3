"""torch-fidelity's version (>= 0.4: 0.3 lacks or swaps precision/recall) in every score record and in the
regression baseline's environment beside torch's; a baseline from before it was recorded compares without a
note about it."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
import torch

from benchmark.evaluation.metrics import evaluate_samples
from benchmark.regress.env import env_difference, environment

REPO = Path(__file__).resolve().parents[1]
INSTALLED = metadata.version("torch-fidelity")
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11


def _release(v: str) -> tuple:
    return tuple(int(p) for p in v.split(".")[:2])


def test_the_installed_torch_fidelity_is_at_least_0_4_as_pyproject_requires():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (req,) = [d for d in project["dependencies"] if d.startswith("torch-fidelity")]
    assert ">=0.4" in req
    assert _release(INSTALLED) >= (0, 4)
    test_extra = " ".join(project["optional-dependencies"]["test"])
    assert "prdc" in test_extra and "vendi-score" in test_extra


def test_every_score_record_names_torch_fidelity_beside_torch():
    rec = evaluate_samples(torch.zeros(2500, 2), None, "ring8", ["modes"])
    assert rec["torch_version"] == torch.__version__
    assert rec["torch_fidelity_version"] == INSTALLED


def test_the_baseline_environment_records_torch_fidelity():
    env = environment("cpu")
    assert env["torch_fidelity"] == INSTALLED and env["torch"] == torch.__version__


def test_a_baseline_without_torch_fidelity_compares_without_a_note():
    now = environment("cpu")
    old = {k: v for k, v in now.items() if k != "torch_fidelity"}
    assert env_difference(old, now) == []
    assert env_difference({**now, "torch_fidelity": "0.3.0"}, now) == [f"torch_fidelity 0.3.0 -> {INSTALLED}"]
    assert env_difference({**old, "torch": "0.0-elsewhere"}, now) == [f"torch 0.0-elsewhere -> {torch.__version__}"]

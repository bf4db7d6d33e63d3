"""The evaluator's identity, recorded with every score: the feature extractor and its sha256, the classifier's
sha256, the second evaluator's and the LPIPS backbone. Computed before any work: an unavailable extractor or
missing weights are a UserError then."""

from __future__ import annotations

from typing import Any, Dict, Sequence

from benchmark.errors import UserError
from benchmark.evaluation.classifier import load_second
from benchmark.evaluation.diversity import lpips_backbone
from benchmark.evaluation.fidelity import EXTRACTORS, evaluator
from benchmark.evaluation.metrics.registry import METRICS, family


def evaluator_info(dataset: str, extractor: str, metrics: Sequence[str]) -> Dict[str, Any]:
    """{name, sha256, classifier_sha256, lpips_backbone}; raises the UserError of an unavailable extractor."""

    if extractor not in EXTRACTORS:
        raise UserError(f"unknown feature extractor '{extractor}'; valid: {', '.join(EXTRACTORS)}")
    if family(dataset) == "points":
        return {"name": "mixture-geometry", "sha256": None, "classifier_sha256": None, "lpips_backbone": None}
    cls_name, cls_sha = evaluator("classifier", dataset)
    name, sha = cls_name, cls_sha
    if extractor != "classifier" and any(METRICS.get(m).fidelity or m == "conditional" for m in metrics):
        name, sha = evaluator(extractor, dataset)
    out = {
        "name": name,
        "sha256": sha,
        "classifier_sha256": cls_sha,
        "lpips_backbone": lpips_backbone(dataset) if "lpips" in metrics else None,
    }
    if {"coverage", "stacked_readable"} & set(metrics):  # the second evaluator (coverage.py), checked before any work
        out["second_classifier_sha256"] = load_second(dataset)[1]
    return out

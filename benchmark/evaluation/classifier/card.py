"""The evaluator card: a few lines for the README per evaluator of a dataset (the primary and the second)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

from benchmark.errors import UserError
from benchmark.evaluation.classifier.recipes import SECOND, arch_name, dataset_of
from benchmark.evaluation.classifier.weights import WEIGHTS_DIR, classifier_command, read_manifest


def _table_lines(e: Dict) -> List[str]:
    t = e.get("corruption_table")
    if not t:
        return ["  (no corruption table recorded)"]
    cells = [
        f"{c} {100 * r['accuracy']:.2f}% (max class share x{r['max_share_ratio']:.2f})"
        for c, r in t.items()
        if c != "uniform"
    ]
    return [
        "  " + "; ".join(cells),
        f"  uniform noise read with max prob >= 0.9: {100 * t['uniform']['confident_share']:.2f}%; "
        f"readable tau {e.get('readable_tau')}",
    ]


def evaluator_card(dataset: str, weights_dir: Optional[Path] = None) -> str:
    """Accuracy, the corruption table, feature dim, sha256 and the command that re-creates each evaluator."""
    name = arch_name(dataset)
    manifest = read_manifest(Path(weights_dir) if weights_dir else WEIGHTS_DIR)
    lines: List[str] = []
    for n in (name, SECOND.get(dataset_of(name))):
        e = manifest.get(n) if n else None
        if e is None:
            if n == name:
                raise UserError(
                    f"no manifest entry for '{name}'; create it with "
                    f"'{classifier_command(name, None, None, out='--replace-shipped')}'"
                )
            continue
        lines += [
            f"evaluator '{n}': test accuracy {100 * e['test_accuracy']:.2f}% on {e['test_size']} test images, "
            f"feature dim {e['feature_dim']}, {e['params']} params, sha256 {e['sha256']}",
            *_table_lines(e),
            f"  re-create: {e['command']} --replace-shipped  (or --out DIR for a new copy; torch "
            f"{e['torch_version']}, {e['num_threads']} threads, {e['train_seconds']} s)",
        ]
    return "\n".join(lines)

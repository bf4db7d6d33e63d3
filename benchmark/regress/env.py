"""What the scores depend on besides the code: the machine (recorded, compared with a note) and the
evaluators (a changed one makes scores incomparable: refused)."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

from benchmark.errors import UserError
from benchmark.evaluation.fidelity import torch_fidelity_version
from benchmark.evaluation.metrics import evaluator_info, resolve_metrics
from benchmark.regress.suite import FORCED
from benchmark.study.spec import Trial
from benchmark.train import pick_device

ENV_KEYS = ("torch", "torch_fidelity", "python", "platform", "cpu", "device")
# compared only where the baseline records them (baselines from before torch-fidelity's version was recorded)
OPTIONAL_ENV_KEYS = ("torch_fidelity",)
EVALUATOR_KEYS = ("name", "sha256", "classifier_sha256", "second_classifier_sha256")
# compared only where the baseline records them (baselines from before the second evaluator lack it)
OPTIONAL_EVALUATOR_KEYS = ("second_classifier_sha256",)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def environment(device: str = "cpu") -> Dict[str, Any]:
    return {
        "torch": torch.__version__,
        "torch_fidelity": torch_fidelity_version(),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": _cpu_model(),
        "device": device,
        "threads_per_trial": FORCED["num_threads"],
    }


def env_difference(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    """The environment keys that differ, as 'key old -> new' notes; an optional key only where ``old`` has it."""
    keys = [k for k in ENV_KEYS if k in old or k not in OPTIONAL_ENV_KEYS]
    return [f"{k} {old.get(k)} -> {new.get(k)}" for k in keys if old.get(k) != new.get(k)]


def devices(ts: Sequence[Trial]) -> str:
    """The devices the trials run on, e.g. 'cpu'."""
    return ",".join(sorted({str(pick_device(t.config.device)) for t in ts}))


def evaluators(
    ts: Sequence[Trial], datasets: Sequence[str], metrics: Optional[Sequence[str]]
) -> Dict[str, Dict[str, Any]]:
    """{dataset: {name, sha256, classifier_sha256, lpips_backbone}} of the trials' datasets (UserError when
    an evaluator cannot be had, e.g. classifier weights missing)."""
    cond: Dict[str, bool] = {}
    for t in ts:
        if t.config.dataset in datasets:
            cond[t.config.dataset] = cond.get(t.config.dataset, False) or t.config.conditional
    out = {}
    for ds, c in sorted(cond.items()):
        names = resolve_metrics(ds, metrics, conditional=c, run=True)
        out[ds] = evaluator_info(ds, "classifier", names)
    return out


def check_evaluators(base: Dict[str, Any], now: Dict[str, Dict[str, Any]], path: Path, create: str) -> None:
    for ds, ev in now.items():
        old = base.get(ds)
        if old is None:
            continue
        diff = [k for k in EVALUATOR_KEYS if old.get(k) != ev.get(k) and (k in old or k not in OPTIONAL_EVALUATOR_KEYS)]
        if diff:
            k = "sha256" if "sha256" in diff else diff[0]
            raise UserError(
                f"the evaluator of '{ds}' changed since baseline '{path}' ({k} {short(old.get(k))} -> "
                f"{short(ev.get(k))}): its scores are not comparable; if the new evaluator is intended, "
                f"re-create the baseline with '{create}'"
            )


def short(v: Any) -> str:
    return f"{v[:12]}..." if isinstance(v, str) and len(v) > 16 else str(v)

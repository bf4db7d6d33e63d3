"""Training an evaluator: deterministic given the seed and the thread count (both recorded in the manifest);
it never overwrites the shipped weights unless asked (``replace_shipped``). Test figures are measured once,
at the end (no model selection on the test split)."""

from __future__ import annotations

import math
import platform
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from benchmark import io
from benchmark.data import load_dataset
from benchmark.errors import UserError
from benchmark.evaluation.classifier.augment import affine, corrupt_train, push_images
from benchmark.evaluation.classifier.networks import build
from benchmark.evaluation.classifier.recipes import ARCHS, BORROWS, SECOND, Arch, arch_name, dataset_of
from benchmark.evaluation.classifier.validation import clean_confidence_quantile, corruption_table
from benchmark.evaluation.classifier.weights import WEIGHTS_DIR, classifier_command, read_manifest, save_weights
from benchmark.evaluation.corruptions import VALIDATION_SEED


def _out_dir(out_dir: Optional[Path], replace_shipped: bool) -> Path:
    """The folder the new weights go to; the shipped one only with ``replace_shipped``."""
    if out_dir is None:
        if not replace_shipped:
            raise UserError(
                "give --out DIR for the new weights, or --replace-shipped to overwrite the pinned "
                f"evaluator in {WEIGHTS_DIR}"
            )
        out_dir = WEIGHTS_DIR
    out_dir = Path(out_dir)
    if out_dir.resolve() == WEIGHTS_DIR.resolve() and not replace_shipped:
        raise UserError(
            f"--out is the shipped weights folder {WEIGHTS_DIR}; add --replace-shipped to overwrite "
            "the pinned evaluator, or give another folder"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out '{out_dir}' is a file; give a folder")
    return out_dir


def _epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched,
    data: Tuple[Tensor, Tensor, Tensor],
    arch: Arch,
    gen: torch.Generator,
    bar,
) -> Tuple[float, int]:
    """One pass over a random permutation of the training images; (summed loss, images seen)."""
    x_tr, y_tr, eye = data
    k = arch.num_classes
    model.train()
    perm = torch.randperm(len(x_tr), generator=gen)
    tot, count = 0.0, 0
    for i in bar:
        idx = perm[i * arch.batch_size : (i + 1) * arch.batch_size]
        if len(idx) < 2:  # BatchNorm needs two samples
            continue
        xb = affine(x_tr[idx], arch, gen)
        target = eye[y_tr[idx]]
        if arch.noise_aug:
            xb = corrupt_train(xb, arch, gen)
            m = int(round(arch.push_share * len(idx)))
            if m:
                xb = torch.cat([xb, push_images(m, arch, gen)])
                target = torch.cat([target, torch.full((m, k), 1.0 / k)])
        loss = F.cross_entropy(model(xb), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        tot += loss.item() * len(idx)
        count += len(idx)
    return tot, count


def _fit(name: str, arch: Arch, x_tr: Tensor, y_tr: Tensor, epochs: int, seed: int, progress: bool) -> nn.Module:
    """The trained model: Adam with a one-cycle schedule, deterministic algorithms, every draw from ``seed``."""
    torch.manual_seed(seed)
    was_det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(seed)
    model = build(arch)
    if arch.train_subset:
        x_tr, y_tr = x_tr[: arch.train_subset], y_tr[: arch.train_subset]
    k = arch.num_classes
    steps_per_epoch = math.ceil(len(x_tr) / arch.batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=arch.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=arch.lr, total_steps=epochs * steps_per_epoch, pct_start=0.15
    )
    eye = torch.eye(k) * (1 - arch.label_smoothing) + arch.label_smoothing / k
    t0 = time.time()
    try:
        for ep in range(epochs):
            desc = f"{name} epoch {ep + 1}/{epochs}"
            bar = tqdm(range(steps_per_epoch), disable=not progress, desc=desc, leave=False)
            tot, count = _epoch(model, opt, sched, (x_tr, y_tr, eye), arch, gen, bar)
            if progress:
                loss = tot / max(count, 1)
                print(f"{desc}: train loss {loss:.4f} ({time.time() - t0:.0f} s)", file=sys.stderr)
    finally:
        torch.use_deterministic_algorithms(was_det)
    return model.eval()


def _entry(
    model: nn.Module, path: Path, name: str, base: str, arch: Arch, test, epochs: int, seed: int, seconds: float
) -> Dict:
    """The manifest entry of the weights at ``path``: test figures, sha256, the command, the environment."""
    x_te, y_te = test.images.cpu(), test.labels.cpu()
    table = corruption_table(model, x_te, y_te)
    tau = clean_confidence_quantile(model, x_te)
    save_weights(model, path)
    threads = torch.get_num_threads()
    k = arch.num_classes
    return {
        "file": path.name,
        "sha256": io.sha256_file(path),
        "dataset": base,
        "role": "second" if name != base else "primary",
        "arch": {
            "size": arch.size,
            "family": arch.family,
            "widths": list(arch.widths),
            "feature_dim": arch.feature_dim,
            "num_classes": k,
        },
        "test_accuracy": round(table["clean"]["accuracy"], 6),
        "test_size": len(test),
        "corruption_table": {c: {m: round(v, 6) for m, v in r.items()} for c, r in table.items()},
        "corruption_seed": VALIDATION_SEED,
        "readable_tau": round(tau, 6),
        "feature_dim": model.out_dim,
        "num_classes": k,
        "input_shape": [1, arch.size, arch.size],
        "params": sum(p.numel() for p in model.parameters()),
        "command": classifier_command(name, epochs, seed, threads),
        "seed": seed,
        "epochs": epochs,
        "torch_version": torch.__version__,
        "num_threads": threads,
        "platform": f"{platform.system()} {platform.machine()}",
        "train_seconds": round(seconds, 1),
    }


def train_classifier(
    dataset: str,
    data_root: Optional[str] = None,
    epochs: Optional[int] = None,
    seed: Optional[int] = None,
    out_dir: Optional[Path] = None,
    progress: bool = True,
    second: bool = False,
    replace_shipped: bool = False,
    recipe: Optional[Arch] = None,
) -> Dict:
    """Train evaluator ``dataset`` (``second``: its independent second one), write ``<out_dir>/<name>.pt`` and
    its manifest entry (test accuracy, corruption table, readable tau, sha256, the command).

    ``out_dir`` None: the package's weights folder only with ``replace_shipped`` (the pinned evaluator is never
    replaced by accident). Deterministic given (seed, torch version, thread count). ``recipe``: override the
    recipe (tests).
    """
    if dataset in BORROWS:
        raise UserError(
            f"'{dataset}' uses the '{BORROWS[dataset]}' classifier on each channel; "
            f"train that one: ganbench classifier train --dataset {BORROWS[dataset]}"
        )
    base = arch_name(dataset_of(dataset))
    name = SECOND[base] if second else arch_name(dataset)
    arch = recipe or ARCHS[name]
    epochs = arch.epochs if epochs is None else epochs
    seed = arch.seed if seed is None else seed
    if epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {epochs}")
    out_dir = _out_dir(out_dir, replace_shipped)
    train = load_dataset(base, root=data_root, split="train")
    test = load_dataset(base, root=data_root, split="test")
    if tuple(train.shape) != (1, arch.size, arch.size):
        raise UserError(
            f"dataset '{base}' has shape {tuple(train.shape)}, the classifier expects (1, {arch.size}, {arch.size})"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    model = _fit(name, arch, train.images.cpu(), train.labels.cpu(), epochs, seed, progress)
    seconds = time.time() - t0
    entry = _entry(model, out_dir / f"{name}.pt", name, base, arch, test, epochs, seed, seconds)
    manifest = read_manifest(out_dir)
    manifest[name] = entry
    io.write_json(out_dir / "manifest.json", dict(sorted(manifest.items())))
    (out_dir / "manifest.json").chmod(0o644)
    return entry

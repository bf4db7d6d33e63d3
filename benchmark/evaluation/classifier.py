"""The pinned evaluator: a small CNN per image dataset, its training, and checked loading.

The classifier is the evaluation stage's only learned instrument. Its penultimate layer (``feature_dim``
units, after ReLU) is the feature space of FID/KID/precision-recall, its logits feed the Inception Score
and the class-coverage metrics, and its conv activations are the LPIPS fallback backbone. Its weights
ship inside the package (``weights/<dataset>.pt``); ``weights/manifest.json`` holds their sha256, which
``load_classifier`` checks, together with the test accuracy and the exact command that re-creates them.

Inputs are float tensors in [-1, 1], N x 1 x H x W (28 x 28 for MNIST/Fashion-MNIST, 8 x 8 for digits).
Stacked-MNIST has no classifier of its own: each channel goes through the MNIST classifier.

Training is deterministic given the seed and the thread count (both recorded in the manifest).
"""
from __future__ import annotations

import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark import io
from benchmark.errors import UserError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"


@dataclass(frozen=True)
class Arch:
    """Shape of one classifier: three conv stages (conv-BN-ReLU-maxpool) and a BN'd hidden layer."""

    size: int  # input H = W
    widths: Tuple[int, int, int] = (32, 64, 128)
    feature_dim: int = 128
    num_classes: int = 10
    # training recipe
    epochs: int = 8
    batch_size: int = 128
    lr: float = 2e-3
    shift_px: float = 2.0  # augmentation: random translation (pixels), rotation and scale
    rot_deg: float = 10.0
    scale: float = 0.1


# Datasets with a classifier of their own; stacked-mnist borrows mnist's.
ARCHS: Dict[str, Arch] = {
    "mnist": Arch(size=28, widths=(16, 32, 64), epochs=10),
    "fashion-mnist": Arch(size=28, epochs=15, rot_deg=0.0, shift_px=1.0, scale=0.0),
    "digits": Arch(size=8, widths=(32, 64, 128), epochs=60, batch_size=64, shift_px=0.5, rot_deg=8.0),
}
BORROWS = {"stacked-mnist": "mnist"}


class EvalNet(nn.Module):
    """conv(3x3)-BN-ReLU-maxpool x 3 -> Linear-BN-ReLU (the features) -> dropout -> Linear (the logits)."""

    def __init__(self, arch: Arch, in_channels: int = 1):
        super().__init__()
        self.arch = arch
        c1, c2, c3 = arch.widths
        layers: List[nn.Module] = []
        c_in = in_channels
        for c in (c1, c2, c3):
            layers.append(nn.Sequential(nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                                        nn.ReLU(inplace=True)))
            c_in = c
        self.convs = nn.ModuleList(layers)
        side = arch.size
        for _ in range(3):
            side = max(side // 2, 1)
        self.flat_dim = c3 * side * side
        self.hidden = nn.Sequential(nn.Linear(self.flat_dim, arch.feature_dim, bias=False),
                                    nn.BatchNorm1d(arch.feature_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(arch.feature_dim, arch.num_classes)

    def _pool(self, h: Tensor) -> Tensor:
        return F.max_pool2d(h, 2) if h.shape[-1] >= 2 else h

    def conv_features(self, x: Tensor) -> List[Tensor]:
        """The activation after each conv stage (before pooling): the LPIPS fallback layers."""
        out = []
        h = x
        for conv in self.convs:
            h = conv(h)
            out.append(h)
            h = self._pool(h)
        return out

    def features_and_logits(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        h = x
        for conv in self.convs:
            h = self._pool(conv(h))
        f = self.hidden(h.flatten(1))
        return f, self.head(self.dropout(f))

    def forward(self, x: Tensor) -> Tensor:
        return self.features_and_logits(x)[1]


# ------------------------------------------------------------------------------------------------
# loading


def _arch_name(dataset: str) -> str:
    name = BORROWS.get(dataset, dataset)
    if name not in ARCHS:
        raise UserError(f"no evaluator classifier for dataset '{dataset}'; classifiers exist for: "
                        f"{', '.join(sorted(ARCHS) + sorted(BORROWS))}")
    return name


def read_manifest(weights_dir: Path = WEIGHTS_DIR) -> Dict[str, Dict]:
    p = weights_dir / "manifest.json"
    return io.read_json(p) if p.is_file() else {}


def classifier_command(dataset: str, epochs: Optional[int], seed: int, threads: Optional[int] = None) -> str:
    e = f" --epochs {epochs}" if epochs is not None else ""
    t = f" --threads {threads}" if threads is not None else ""
    return f"ganbench classifier train --dataset {dataset}{e} --seed {seed}{t}"


def load_classifier(dataset: str, device: str | torch.device = "cpu", weights_dir: Optional[Path] = None
                    ) -> Tuple[EvalNet, str]:
    """(model in eval mode, sha256 of its weights file) for ``dataset`` (stacked-mnist -> mnist).

    The file's sha256 must equal the manifest's: a mismatch (a re-trained or corrupted file) is a UserError.
    """
    name = _arch_name(dataset)
    wdir = Path(weights_dir) if weights_dir else WEIGHTS_DIR
    path = wdir / f"{name}.pt"
    entry = read_manifest(wdir).get(name)
    if not path.is_file() or entry is None:
        cmd = classifier_command(name, None, 0)
        raise UserError(f"no evaluator classifier weights for '{name}' in '{wdir}'; create them with '{cmd}'")
    sha = _cached_sha(path)
    if sha != entry.get("sha256"):
        raise UserError(f"evaluator weights '{path}' have sha256 {sha[:12]}..., the manifest says "
                        f"{str(entry.get('sha256'))[:12]}...; restore the file from git or re-create it with "
                        f"'{entry.get('command', classifier_command(name, None, 0))}'")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = EvalNet(ARCHS[name])
    model.load_state_dict(blob)
    model.requires_grad_(False)
    # channels-last runs the small convs ~1.6x faster on CPU (inference only: training is untouched)
    return model.to(device=device, memory_format=torch.channels_last).eval(), sha


_SHA_CACHE: Dict[Tuple[str, float, int], str] = {}


def _cached_sha(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_mtime, st.st_size)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = io.sha256_file(path)
    return _SHA_CACHE[key]


@torch.no_grad()
def classify(model: EvalNet, x: Tensor, batch: int = 1000, progress: bool = False, desc: str = "classifying"
             ) -> Tuple[Tensor, Tensor]:
    """(features N x D, logits N x K) of float images in [-1, 1]; runs on the model's device."""
    from tqdm import tqdm

    dev = next(model.parameters()).device
    feats, logits = [], []
    with tqdm(total=len(x), disable=not progress, desc=desc, unit="img", leave=False) as bar:
        for i in range(0, len(x), batch):
            xb = x[i:i + batch].to(dev, torch.float32).contiguous(memory_format=torch.channels_last)
            f, l = model.features_and_logits(xb)
            feats.append(f.cpu())
            logits.append(l.cpu())
            bar.update(min(batch, len(x) - i))
    if not feats:
        d = model.arch
        return torch.empty(0, d.feature_dim), torch.empty(0, d.num_classes)
    return torch.cat(feats), torch.cat(logits)


# ------------------------------------------------------------------------------------------------
# training


def _augment(x: Tensor, arch: Arch, gen: torch.Generator) -> Tensor:
    """Random affine (rotation, scale, translation) per image; drawn from ``gen`` (deterministic)."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=gen) * 2 - 1
    ang = u[:, 0] * math.radians(arch.rot_deg)
    s = 1 + u[:, 1] * arch.scale
    t = u[:, 2:] * (2 * arch.shift_px / arch.size)  # normalised coordinates span 2
    cos, sin = ang.cos() / s, ang.sin() / s
    theta = torch.stack([torch.stack([cos, -sin, t[:, 0]], 1), torch.stack([sin, cos, t[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # background is -1 (black): shift to [0, 2] so zero-padding means black
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1


@torch.no_grad()
def accuracy(model: EvalNet, x: Tensor, y: Tensor) -> float:
    model.eval()
    _, logits = classify(model, x)
    return float((logits.argmax(1) == y.cpu()).float().mean())


def train_classifier(dataset: str, data_root: Optional[str] = None, epochs: Optional[int] = None, seed: int = 0,
                     out_dir: Optional[Path] = None, progress: bool = True) -> Dict:
    """Train the evaluator for ``dataset``, write ``<out_dir>/<dataset>.pt`` and its manifest entry.

    Deterministic given (seed, torch version, thread count). Test accuracy is measured once, at the end
    (no model selection on the test split).
    """
    from tqdm import tqdm

    from benchmark.data import load_dataset

    if dataset in BORROWS:
        raise UserError(f"'{dataset}' uses the '{BORROWS[dataset]}' classifier on each channel; "
                        f"train that one: ganbench classifier train --dataset {BORROWS[dataset]}")
    name = _arch_name(dataset)
    arch = ARCHS[name]
    epochs = arch.epochs if epochs is None else epochs
    if epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {epochs}")
    out_dir = Path(out_dir) if out_dir else WEIGHTS_DIR
    train = load_dataset(name, root=data_root, split="train")
    test = load_dataset(name, root=data_root, split="test")
    if tuple(train.shape) != (1, arch.size, arch.size):
        raise UserError(f"dataset '{name}' has shape {tuple(train.shape)}, the classifier expects "
                        f"(1, {arch.size}, {arch.size})")

    torch.manual_seed(seed)
    was_det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(seed)
    model = EvalNet(arch)
    x_tr, y_tr = train.images.cpu(), train.labels.cpu()
    n = len(x_tr)
    steps_per_epoch = math.ceil(n / arch.batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=arch.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=arch.lr, total_steps=epochs * steps_per_epoch,
                                                pct_start=0.15)
    t0 = time.time()
    try:
        for ep in range(epochs):
            model.train()
            perm = torch.randperm(n, generator=gen)
            bar = tqdm(range(steps_per_epoch), disable=not progress, desc=f"{name} epoch {ep + 1}/{epochs}",
                       leave=False)
            tot, count = 0.0, 0
            for i in bar:
                idx = perm[i * arch.batch_size:(i + 1) * arch.batch_size]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                xb = _augment(x_tr[idx], arch, gen)
                loss = F.cross_entropy(model(xb), y_tr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                tot += loss.item() * len(idx)
                count += len(idx)
            if progress:
                print(f"{name} epoch {ep + 1}/{epochs}: train loss {tot / max(count, 1):.4f}", file=sys.stderr)
    finally:
        torch.use_deterministic_algorithms(was_det)
    seconds = time.time() - t0
    model.eval()
    acc = accuracy(model, test.images.cpu(), test.labels.cpu())

    path = out_dir / f"{name}.pt"
    save_weights(model, path)
    entry = {
        "file": path.name,
        "sha256": io.sha256_file(path),
        "dataset": name,
        "test_accuracy": round(acc, 6),
        "test_size": len(test),
        "feature_dim": arch.feature_dim,
        "num_classes": arch.num_classes,
        "input_shape": [1, arch.size, arch.size],
        "params": sum(p.numel() for p in model.parameters()),
        "command": classifier_command(name, epochs, seed, torch.get_num_threads()),
        "seed": seed,
        "epochs": epochs,
        "torch_version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "platform": f"{platform.system()} {platform.machine()}",
        "train_seconds": round(seconds, 1),
    }
    manifest = read_manifest(out_dir)
    manifest[name] = entry
    io.write_json(out_dir / "manifest.json", dict(sorted(manifest.items())))
    (out_dir / "manifest.json").chmod(0o644)
    return entry


def save_weights(model: nn.Module, path: Path) -> None:
    """Byte-deterministic: serialised in memory (torch.save names the archive after the file, and the
    atomic write goes through a randomly named temporary file), then written atomically."""
    import io as _io

    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    buf = _io.BytesIO()
    torch.save(state, buf)
    with io.atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
        tmp.chmod(0o644)


def evaluator_card(dataset: str, weights_dir: Optional[Path] = None) -> str:
    """A few lines for the README: accuracy, feature dim, sha256, the command that re-creates it."""
    name = _arch_name(dataset)
    e = read_manifest(Path(weights_dir) if weights_dir else WEIGHTS_DIR).get(name)
    if e is None:
        raise UserError(f"no manifest entry for '{name}'; create it with '{classifier_command(name, None, 0)}'")
    return (f"evaluator '{name}': test accuracy {100 * e['test_accuracy']:.2f}% on {e['test_size']} test images, "
            f"feature dim {e['feature_dim']}, {e['params']} params, sha256 {e['sha256']}\n"
            f"  re-create: {e['command']}  (torch {e['torch_version']}, {e['num_threads']} threads, "
            f"{e['train_seconds']} s)")

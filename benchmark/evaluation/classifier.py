"""The pinned evaluators: a small CNN per image dataset, an independent MLP beside it, training, checked loading.

The CNN (weights ``weights/<dataset>.pt``) is the evaluation stage's instrument: its conv trunk's flattened
output (``feature_dim`` in the manifest) is the feature space of FID/KID/precision-recall, its logits feed
the Inception Score and the class-coverage metrics, and its conv activations are the feat_div backbone.
The second evaluator (``weights/<dataset>-mlp.pt``, another family, seed and augmentation) labels the same
samples so that every coverage record carries the two evaluators' agreement (coverage.py).
``weights/manifest.json`` holds each file's sha256, which ``load_classifier`` checks, its architecture,
test accuracy, corruption table, readable threshold tau and the exact command that re-creates it.

Both are trained to read what generators produce (``Arch``'s robustness recipe, corruptions.py): noisy,
speckled, blurred, faint digits are read as digits, and non-digit noise is pushed toward the uniform
class distribution, so that it is not read as a confident digit. ``corruption_table`` measures it.

Inputs are float tensors in [-1, 1], N x 1 x H x W (28 x 28 for MNIST/Fashion-MNIST, 8 x 8 for digits).
Stacked-MNIST has no classifier of its own: each channel goes through the MNIST classifier.

Training is deterministic given the seed and the thread count (both recorded in the manifest); it never
overwrites the shipped weights unless asked (``replace_shipped``).
"""

from __future__ import annotations

import math
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from benchmark import io
from benchmark.data import load_dataset
from benchmark.errors import UserError
from benchmark.evaluation.corruptions import (
    CORRUPTIONS,
    VALIDATION_SEED,
    blur,
    corrupt,
    gaussian,
    salt_pepper,
    uniform_noise,
)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"


@dataclass(frozen=True)
class Arch:
    """Shape and training recipe of one evaluator.

    ``family`` "cnn": three conv stages (conv-BN-ReLU-maxpool, ``widths`` channels) and a BN'd hidden layer of
    ``feature_dim`` units, features = the conv trunk's flattened output (see ``EvalNet.features_and_logits``);
    "mlp": fully connected layers of ``widths`` units (Linear-BN-ReLU) and the same hidden layer, features =
    that hidden layer (after ReLU).
    """

    size: int  # input H = W
    family: str = "cnn"
    widths: Tuple[int, ...] = (32, 64, 128)
    feature_dim: int = 128
    num_classes: int = 10
    # training recipe
    seed: int = 0
    epochs: int = 8
    batch_size: int = 128
    lr: float = 2e-3
    shift_px: float = 2.0  # augmentation: random translation (pixels), rotation and scale
    rot_deg: float = 10.0
    scale: float = 0.1
    # robustness recipe (corruptions.py): each training image is kept clean with probability clean_p, else
    # gets one of Gaussian noise (sigma ~ U(0, gauss_max)), salt-and-pepper (p ~ U(0, sp_max)), blur
    # (sigma ~ U(0.3, blur_max)) or blur then noise; a contrast change p -> c p, c ~ U(contrast_min, 1), on some.
    noise_aug: bool = True
    clean_p: float = 0.3
    gauss_max: float = 0.4
    sp_max: float = 0.18
    blur_max: float = 1.5
    contrast_min: float = 0.5
    # the noise push: push_share x batch extra non-digit images (uniform noise, blank, noise on black) per
    # step, trained toward the uniform class distribution, so that noise is not read as a confident digit
    push_share: float = 0.125
    # label smoothing caps the confidence on clean digits (0.05 caps classifier-IS at ~7.5 of 10): primaries 0
    label_smoothing: float = 0.0
    train_subset: int = 0  # 0 = the whole training split


ARCH_KEYS = ("size", "family", "widths", "feature_dim", "num_classes")

# Evaluators by name. '<dataset>' is the primary (its features feed FID/KID/PR, its logits IS and coverage);
# '<dataset>-mlp' the independent second one (another family, seed and augmentation) that cross-checks it.
ARCHS: Dict[str, Arch] = {
    "mnist": Arch(size=28, widths=(16, 32, 64), epochs=8, batch_size=128),
    "mnist-mlp": Arch(
        size=28,
        family="mlp",
        widths=(384, 256),
        seed=1,
        epochs=10,
        batch_size=128,
        lr=2e-3,
        shift_px=1.5,
        rot_deg=8.0,
        scale=0.08,
        clean_p=0.35,
        gauss_max=0.35,
        sp_max=0.15,
        blur_max=1.3,
        contrast_min=0.6,
        push_share=0.1,
        label_smoothing=0.1,
    ),
    "fashion-mnist": Arch(size=28, epochs=15, rot_deg=0.0, shift_px=1.0, scale=0.0),
    "fashion-mnist-mlp": Arch(
        size=28,
        family="mlp",
        widths=(384, 256),
        seed=1,
        epochs=15,
        rot_deg=0.0,
        shift_px=1.0,
        scale=0.0,
        clean_p=0.35,
        label_smoothing=0.1,
    ),
    "digits": Arch(size=8, widths=(32, 64, 128), epochs=60, batch_size=64, shift_px=0.5, rot_deg=8.0),
    "digits-mlp": Arch(
        size=8,
        family="mlp",
        widths=(256, 128),
        seed=1,
        epochs=60,
        batch_size=64,
        shift_px=0.4,
        rot_deg=6.0,
        clean_p=0.35,
        label_smoothing=0.1,
    ),
}
SECOND = {"mnist": "mnist-mlp", "fashion-mnist": "fashion-mnist-mlp", "digits": "digits-mlp"}
BORROWS = {"stacked-mnist": "mnist"}


def dataset_of(name: str) -> str:
    """The dataset an evaluator reads: 'mnist-mlp' -> 'mnist'."""
    for d, second in SECOND.items():
        if name == second:
            return d
    return name


class EvalNet(nn.Module):
    """conv(3x3)-BN-ReLU-maxpool x 3 -> Linear-BN-ReLU (the features) -> dropout -> Linear (the logits)."""

    def __init__(self, arch: Arch, in_channels: int = 1):
        super().__init__()
        self.arch = arch
        layers: List[nn.Module] = []
        c_in = in_channels
        for c in arch.widths:
            layers.append(
                nn.Sequential(nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
            )
            c_in = c
        self.convs = nn.ModuleList(layers)
        side = arch.size
        for _ in arch.widths:
            side = max(side // 2, 1)
        self.flat_dim = c_in * side * side
        self.hidden = nn.Sequential(
            nn.Linear(self.flat_dim, arch.feature_dim, bias=False),
            nn.BatchNorm1d(arch.feature_dim),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(arch.feature_dim, arch.num_classes)

    def _pool(self, h: Tensor) -> Tensor:
        return F.max_pool2d(h, 2) if h.shape[-1] >= 2 else h

    def conv_features(self, x: Tensor) -> List[Tensor]:
        """The activation after each conv stage (before pooling): the feature-diversity layers."""
        out = []
        h = x
        for conv in self.convs:
            h = conv(h)
            out.append(h)
            h = self._pool(h)
        return out

    @property
    def out_dim(self) -> int:
        return self.flat_dim

    def features_and_logits(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """(the conv trunk's pooled output, flattened: the FID/KID/PR features; logits).

        Why not the hidden layer: the noise push (``Arch.push_share``) teaches it to switch off on noise, which
        puts uniform noise near the real features' mean there (FID of noise below that of one real class);
        the conv trunk keeps noise far from every digit, as Inception's pool3 does for ImageNet."""
        h = x
        for conv in self.convs:
            h = self._pool(conv(h))
        flat = h.flatten(1)
        return flat, self.head(self.dropout(self.hidden(flat)))

    def forward(self, x: Tensor) -> Tensor:
        return self.features_and_logits(x)[1]


class MLPNet(nn.Module):
    """(Linear-BN-ReLU) x len(widths) -> Linear-BN-ReLU (the features) -> dropout -> Linear (the logits)."""

    def __init__(self, arch: Arch, in_channels: int = 1):
        super().__init__()
        self.arch = arch
        layers: List[nn.Module] = []
        d_in = in_channels * arch.size * arch.size
        for w in (*arch.widths, arch.feature_dim):
            layers += [nn.Linear(d_in, w, bias=False), nn.BatchNorm1d(w), nn.ReLU(inplace=True)]
            d_in = w
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(arch.feature_dim, arch.num_classes)

    @property
    def out_dim(self) -> int:
        return self.arch.feature_dim

    def features_and_logits(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        f = self.body(x.flatten(1))
        return f, self.head(self.dropout(f))

    def forward(self, x: Tensor) -> Tensor:
        return self.features_and_logits(x)[1]


def build(arch: Arch) -> nn.Module:
    if arch.family == "cnn":
        return EvalNet(arch)
    if arch.family == "mlp":
        return MLPNet(arch)
    raise UserError(f"unknown evaluator family '{arch.family}'; known: cnn, mlp")


# ------------------------------------------------------------------------------------------------
# loading


def _arch_name(dataset: str) -> str:
    name = BORROWS.get(dataset, dataset)
    if name not in ARCHS:
        raise UserError(
            f"no evaluator classifier for dataset '{dataset}'; classifiers exist for: "
            f"{', '.join(sorted(ARCHS) + sorted(BORROWS))}"
        )
    return name


def second_name(dataset: str) -> str:
    """The independent second evaluator of ``dataset`` (stacked-mnist -> mnist's)."""
    return SECOND[dataset_of(_arch_name(dataset))]


def read_manifest(weights_dir: Path = WEIGHTS_DIR) -> Dict[str, Dict]:
    p = weights_dir / "manifest.json"
    return io.read_json(p) if p.is_file() else {}


def classifier_command(
    dataset: str, epochs: Optional[int], seed: Optional[int], threads: Optional[int] = None, out: Optional[str] = None
) -> str:
    """The command that re-creates evaluator ``dataset`` (a dataset, or '<dataset>-mlp' for the second)."""
    d = dataset_of(dataset)
    w = " --second" if d != dataset else ""
    e = f" --epochs {epochs}" if epochs is not None else ""
    s = f" --seed {seed}" if seed is not None else ""
    t = f" --threads {threads}" if threads is not None else ""
    o = f" {out}" if out else ""
    return f"ganbench classifier train --dataset {d}{w}{e}{s}{t}{o}"


def arch_of(name: str, entry: Optional[Dict] = None) -> Arch:
    """The architecture of evaluator ``name``: the manifest entry's 'arch' (the shape its weights were made
    with) over the recipe's defaults."""
    arch = ARCHS[name]
    shape = (entry or {}).get("arch")
    if shape:
        unknown = set(shape) - set(ARCH_KEYS)
        if unknown:
            raise UserError(
                f"manifest entry '{name}' has unknown arch keys {sorted(unknown)}; "
                f"restore weights/manifest.json from git"
            )
        kw = {k: tuple(v) if k == "widths" else v for k, v in shape.items()}
        arch = replace(arch, **kw)
    return arch


def load_classifier(
    dataset: str, device: str | torch.device = "cpu", weights_dir: Optional[Path] = None
) -> Tuple[nn.Module, str]:
    """(model in eval mode, sha256 of its weights file) for ``dataset`` (stacked-mnist -> mnist); ``dataset``
    may also name a second evaluator ('mnist-mlp').

    The file's sha256 must equal the manifest's: a mismatch (a re-trained or corrupted file) is a UserError.
    Weights load with ``torch.load(weights_only=True)``: tensors only, nothing unpickled.
    """
    name = _arch_name(dataset)
    wdir = Path(weights_dir) if weights_dir else WEIGHTS_DIR
    path = wdir / f"{name}.pt"
    entry = read_manifest(wdir).get(name)
    if not path.is_file() or entry is None:
        cmd = classifier_command(name, None, None)
        raise UserError(f"no evaluator classifier weights for '{name}' in '{wdir}'; create them with '{cmd}'")
    sha = _cached_sha(path)
    if sha != entry.get("sha256"):
        raise UserError(
            f"evaluator weights '{path}' have sha256 {sha[:12]}..., the manifest says "
            f"{str(entry.get('sha256'))[:12]}...; restore the file from git or re-create it with "
            f"'{entry.get('command', classifier_command(name, None, None))}'"
        )
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = build(arch_of(name, entry))
    try:
        model.load_state_dict(blob)
    except RuntimeError:
        raise UserError(
            f"evaluator weights '{path}' do not fit the '{name}' architecture of the manifest; "
            f"re-create them with '{entry.get('command')}'"
        ) from None
    model.requires_grad_(False)
    # channels-last runs the small convs ~1.6x faster on CPU (inference only: training is untouched)
    return model.to(device=device, memory_format=torch.channels_last).eval(), sha


def load_second(
    dataset: str, device: str | torch.device = "cpu", weights_dir: Optional[Path] = None
) -> Tuple[nn.Module, str]:
    """The independent second evaluator of ``dataset`` (see ``SECOND``), checked like the first."""
    return load_classifier(second_name(dataset), device, weights_dir)


def readable_tau(name: str, weights_dir: Optional[Path] = None) -> float:
    """Evaluator ``name``'s confidence threshold: the 1st percentile of its max class probability on the clean
    test split, measured at training time and kept in the manifest (0 when not recorded)."""
    e = read_manifest(Path(weights_dir) if weights_dir else WEIGHTS_DIR).get(_arch_name(name), {})
    return float(e.get("readable_tau", 0.0))


_SHA_CACHE: Dict[Tuple[str, float, int], str] = {}


def _cached_sha(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_mtime, st.st_size)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = io.sha256_file(path)
    return _SHA_CACHE[key]


@torch.no_grad()
def classify(
    model: nn.Module, x: Tensor, batch: int = 1000, progress: bool = False, desc: str = "classifying"
) -> Tuple[Tensor, Tensor]:
    """(features N x D, logits N x K) of float images in [-1, 1]; runs on the model's device."""
    dev = next(model.parameters()).device
    feats, logits = [], []
    with tqdm(total=len(x), disable=not progress, desc=desc, unit="img", leave=False) as bar:
        for i in range(0, len(x), batch):
            xb = x[i : i + batch].to(dev, torch.float32).contiguous(memory_format=torch.channels_last)
            f, lg = model.features_and_logits(xb)
            feats.append(f.cpu())
            logits.append(lg.cpu())
            bar.update(min(batch, len(x) - i))
    if not feats:
        return torch.empty(0, model.out_dim), torch.empty(0, model.arch.num_classes)
    return torch.cat(feats), torch.cat(logits)


# ------------------------------------------------------------------------------------------------
# validation: the corruption table


def max_share_ratio(pred: Tensor, y: Tensor, num_classes: int) -> float:
    """max over classes of (predicted share / true share): 1 for a perfect reader, > 1 for a magnet class."""
    p = torch.bincount(pred.cpu(), minlength=num_classes).double()
    t = torch.bincount(y.cpu(), minlength=num_classes).double()
    m = t > 0
    return float((p[m] / t[m]).max())


@torch.no_grad()
def corruption_table(
    model: nn.Module, x: Tensor, y: Tensor, seed: int = VALIDATION_SEED, num_uniform: int = 10000, conf: float = 0.9
) -> Dict[str, Dict[str, float]]:
    """{condition: {accuracy, max_share_ratio}} for clean and each validation corruption of (x, y), plus
    {'uniform': {confident_share}}: the share of ``num_uniform`` uniform-noise images read with max prob >= conf.
    Deterministic given ``seed``."""
    model.eval()
    k = model.arch.num_classes
    out: Dict[str, Dict[str, float]] = {}
    for name in ("clean", *CORRUPTIONS):
        _, logits = classify(model, corrupt(x.cpu(), name, seed))
        pred = logits.argmax(1)
        out[name] = {
            "accuracy": float((pred == y.cpu()).double().mean()),
            "max_share_ratio": max_share_ratio(pred, y, k),
        }
    noise = uniform_noise(num_uniform, tuple(x.shape[1:]), torch.Generator().manual_seed(seed + 1))
    _, logits = classify(model, noise)
    out["uniform"] = {"confident_share": float((logits.softmax(1).max(1).values >= conf).double().mean())}
    return out


@torch.no_grad()
def clean_confidence_quantile(model: nn.Module, x: Tensor, q: float = 0.01) -> float:
    """The q-quantile of the max class probability on clean images ``x`` (the readable threshold tau)."""
    _, logits = classify(model, x)
    return float(torch.quantile(logits.softmax(1).max(1).values.double(), q))


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    _, logits = classify(model, x)
    return float((logits.argmax(1) == y.cpu()).float().mean())


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


def _corrupt_train(x: Tensor, arch: Arch, gen: torch.Generator) -> Tensor:
    """The robustness augmentation (see ``Arch``): one corruption per image, drawn from ``gen``."""
    n = len(x)
    u = torch.rand(n, 4, generator=gen)
    kind = torch.where(u[:, 0] < arch.clean_p, 0, 1 + (u[:, 1] * 4).long().clamp_max(3))  # 0 clean .. 4
    lo = torch.rand(n, generator=gen)
    out = x.clone()
    # contrast on a third of the images (the faint strokes of early generators)
    c = torch.where(u[:, 2] < 1 / 3, arch.contrast_min + (1 - arch.contrast_min) * u[:, 3], torch.ones(n))
    out = ((out + 1) * c.reshape(-1, 1, 1, 1)) - 1
    m = (kind == 3) | (kind == 4)
    if m.any():
        out[m] = blur(out[m], 0.3 + (arch.blur_max - 0.3) * lo[m])
    m = (kind == 1) | (kind == 4)
    if m.any():
        out[m] = gaussian(out[m], arch.gauss_max * torch.rand(int(m.sum()), generator=gen), gen)
    m = kind == 2
    if m.any():
        out[m] = salt_pepper(out[m], arch.sp_max * torch.rand(int(m.sum()), generator=gen), gen)
    return out


def _push_images(m: int, arch: Arch, gen: torch.Generator) -> Tensor:
    """``m`` non-digit images: uniform noise with random range, blank grey levels, Gaussian noise on black."""
    shape = (1, arch.size, arch.size)
    a = torch.rand(m, 1, 1, 1, generator=gen)
    b = torch.rand(m, 1, 1, 1, generator=gen)
    lo, hi = torch.minimum(a, b) * 0.5, 0.5 + torch.maximum(a, b) * 0.5
    uni = lo + (hi - lo) * torch.rand((m, *shape), generator=gen)
    blank = a.expand(m, *shape)
    speck = (torch.randn((m, *shape), generator=gen) * (0.1 + 0.5 * b)).clamp(0, 1)
    which = torch.randint(0, 4, (m, 1, 1, 1), generator=gen)
    p = torch.where(which <= 1, uni, torch.where(which == 2, blank, speck))
    return p * 2 - 1


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
    replaced by accident). Deterministic given (seed, torch version, thread count). Test figures are measured
    once, at the end (no model selection on the test split). ``recipe``: override the recipe (tests).
    """

    if dataset in BORROWS:
        raise UserError(
            f"'{dataset}' uses the '{BORROWS[dataset]}' classifier on each channel; "
            f"train that one: ganbench classifier train --dataset {BORROWS[dataset]}"
        )
    base = _arch_name(dataset_of(dataset))
    name = SECOND[base] if second else _arch_name(dataset)
    arch = recipe or ARCHS[name]
    epochs = arch.epochs if epochs is None else epochs
    seed = arch.seed if seed is None else seed
    if epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {epochs}")
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
    train = load_dataset(base, root=data_root, split="train")
    test = load_dataset(base, root=data_root, split="test")
    if tuple(train.shape) != (1, arch.size, arch.size):
        raise UserError(
            f"dataset '{base}' has shape {tuple(train.shape)}, the classifier expects (1, {arch.size}, {arch.size})"
        )
    out_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seed)
    was_det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(seed)
    model = build(arch)
    x_tr, y_tr = train.images.cpu(), train.labels.cpu()
    if arch.train_subset:
        x_tr, y_tr = x_tr[: arch.train_subset], y_tr[: arch.train_subset]
    n = len(x_tr)
    k = arch.num_classes
    steps_per_epoch = math.ceil(n / arch.batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=arch.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=arch.lr, total_steps=epochs * steps_per_epoch, pct_start=0.15
    )
    eye = torch.eye(k) * (1 - arch.label_smoothing) + arch.label_smoothing / k
    t0 = time.time()
    try:
        for ep in range(epochs):
            model.train()
            perm = torch.randperm(n, generator=gen)
            bar = tqdm(
                range(steps_per_epoch), disable=not progress, desc=f"{name} epoch {ep + 1}/{epochs}", leave=False
            )
            tot, count = 0.0, 0
            for i in bar:
                idx = perm[i * arch.batch_size : (i + 1) * arch.batch_size]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                xb = _augment(x_tr[idx], arch, gen)
                target = eye[y_tr[idx]]
                if arch.noise_aug:
                    xb = _corrupt_train(xb, arch, gen)
                    m = int(round(arch.push_share * len(idx)))
                    if m:
                        xb = torch.cat([xb, _push_images(m, arch, gen)])
                        target = torch.cat([target, torch.full((m, k), 1.0 / k)])
                loss = F.cross_entropy(model(xb), target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                tot += loss.item() * len(idx)
                count += len(idx)
            if progress:
                print(
                    f"{name} epoch {ep + 1}/{epochs}: train loss {tot / max(count, 1):.4f} ({time.time() - t0:.0f} s)",
                    file=sys.stderr,
                )
    finally:
        torch.use_deterministic_algorithms(was_det)
    seconds = time.time() - t0
    model.eval()
    x_te, y_te = test.images.cpu(), test.labels.cpu()
    table = corruption_table(model, x_te, y_te)
    tau = clean_confidence_quantile(model, x_te)

    path = out_dir / f"{name}.pt"
    save_weights(model, path)
    threads = torch.get_num_threads()
    entry = {
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
    """A few lines for the README per evaluator (the dataset's primary and second): accuracy, the corruption
    table, feature dim, sha256, the command that re-creates it."""
    name = _arch_name(dataset)
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

"""The evaluators' shapes and training recipes (``Arch``), by name: '<dataset>' is the primary (its features
feed FID/KID/PR, its logits IS and coverage), '<dataset>-mlp' the independent second one (another family, seed
and augmentation) that cross-checks it. Stacked-MNIST borrows MNIST's, one channel at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

from benchmark.errors import UserError


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


def arch_name(dataset: str) -> str:
    """The evaluator that reads ``dataset`` (a dataset or an evaluator name; stacked-mnist -> 'mnist'); a
    UserError naming the known ones when there is none."""
    name = BORROWS.get(dataset, dataset)
    if name not in ARCHS:
        raise UserError(
            f"no evaluator classifier for dataset '{dataset}'; classifiers exist for: "
            f"{', '.join(sorted(ARCHS) + sorted(BORROWS))}"
        )
    return name


def second_name(dataset: str) -> str:
    """The independent second evaluator of ``dataset`` (stacked-mnist -> mnist's)."""
    return SECOND[dataset_of(arch_name(dataset))]

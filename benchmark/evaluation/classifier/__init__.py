"""The pinned evaluators: a small CNN per image dataset, an independent MLP beside it, training, checked loading.

The CNN (weights ``weights/<dataset>.pt``) is the evaluation stage's instrument: its conv trunk's flattened
output (``feature_dim`` in the manifest) is the feature space of FID/KID/precision-recall, its logits feed
the Inception Score and the class-coverage metrics, and its conv activations are the feat_div backbone.
The second evaluator (``weights/<dataset>-mlp.pt``, another family, seed and augmentation) labels the same
samples so that every coverage record carries the two evaluators' agreement (coverage.py).

Both are trained to read what generators produce (``Arch``'s robustness recipe, corruptions.py): noisy,
speckled, blurred, faint digits are read as digits, and non-digit noise is pushed toward the uniform
class distribution, so that it is not read as a confident digit. ``corruption_table`` measures it.

Inputs are float tensors in [-1, 1], N x 1 x H x W (28 x 28 for MNIST/Fashion-MNIST, 8 x 8 for digits).
Stacked-MNIST has no classifier of its own: each channel goes through the MNIST classifier.

    recipes.py     ``Arch``, ``ARCHS`` (shapes and training recipes), which evaluator reads which dataset
    networks.py    ``EvalNet`` (CNN), ``MLPNet``, ``build``
    weights.py     the manifest, checked loading (``load_classifier``), saving, ``readable_tau``
    inference.py   ``classify``: features and logits
    validation.py  accuracy, the corruption table, the readable threshold
    augment.py     the training augmentations
    training.py    ``train_classifier``
    card.py        ``evaluator_card``
"""

from benchmark.evaluation.classifier.card import evaluator_card
from benchmark.evaluation.classifier.inference import classify
from benchmark.evaluation.classifier.networks import EvalNet, MLPNet, build
from benchmark.evaluation.classifier.recipes import (
    ARCH_KEYS,
    ARCHS,
    BORROWS,
    SECOND,
    Arch,
    arch_name,
    dataset_of,
    second_name,
)
from benchmark.evaluation.classifier.training import train_classifier
from benchmark.evaluation.classifier.validation import (
    accuracy,
    clean_confidence_quantile,
    corruption_table,
    max_share_ratio,
)
from benchmark.evaluation.classifier.weights import (
    MANIFEST,
    WEIGHTS_DIR,
    arch_of,
    cached_sha256,
    classifier_command,
    load_classifier,
    load_second,
    read_manifest,
    readable_tau,
    save_weights,
)

__all__ = [
    "ARCHS",
    "ARCH_KEYS",
    "Arch",
    "BORROWS",
    "EvalNet",
    "MANIFEST",
    "MLPNet",
    "SECOND",
    "WEIGHTS_DIR",
    "accuracy",
    "arch_name",
    "arch_of",
    "build",
    "cached_sha256",
    "classifier_command",
    "classify",
    "clean_confidence_quantile",
    "corruption_table",
    "dataset_of",
    "evaluator_card",
    "load_classifier",
    "load_second",
    "max_share_ratio",
    "read_manifest",
    "readable_tau",
    "save_weights",
    "second_name",
    "train_classifier",
]

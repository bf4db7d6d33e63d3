"""torch-fidelity, the reference implementation: the pinned classifier as its feature extractor, its whole
path (``fidelity_metrics``), Inception-v3's weights, and the evaluator's identity.

Scores are computed by the project (features.py: one pass per set; estimators.py: FID, KID, IS, PR on those
features; reference.py: the real split's, cached). torch-fidelity stays for what it does well: the reference
its estimators are tested against (tests/test_eval_estimators.py), the whole path that ``make bench-eval``
times ours against, and Inception-v3:

* the pinned classifier is registered as torch-fidelity feature extractor ``ganbench-classifier-<dataset>``
  (``features`` for FID/KID/PR, ``logits`` for IS), reading uint8 images exactly as ``features.read_batch``
  does (it is that function);
* ``inception-v3-compat`` (torch-fidelity's own): its weights come from torch's hub cache or a download;
  where neither works a one-line UserError says so;
* ``fidelity_metrics`` runs ``torch_fidelity.calculate_metrics`` with its cache (``cache=True``) under
  ``cache_root()/fidelity-tf`` keyed by dataset, split, reference size and the extractor's sha256.
"""

from __future__ import annotations

import socket
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from benchmark.errors import UserError
from benchmark.evaluation.classifier import BORROWS, cached_sha256, load_classifier
from benchmark.evaluation.features import images_read, read_batch, to_uint8
from benchmark.paths import cache_root  # where reference features/statistics are cached

EXTRACTORS = ("classifier", "inception-v3-compat")
PREFIX = "ganbench-classifier-"
INCEPTION = "inception-v3-compat"


def torch_fidelity_version() -> Optional[str]:
    """The installed torch-fidelity's version (recorded with every score and in the regression baseline, beside
    torch's), read from the package metadata: importing torch_fidelity costs torchvision's models (6 s)."""
    try:
        return metadata.version("torch-fidelity")
    except metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------------------------------------------
# the classifier as a torch-fidelity feature extractor


def _extractor_base():
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase

    return FeatureExtractorBase


def _make_extractor_class(dataset: str):

    base = _extractor_base()
    stacked = dataset in BORROWS and dataset.startswith("stacked")

    class ClassifierExtractor(base):  # type: ignore[misc, valid-type]
        DATASET = dataset

        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)
            model, sha = load_classifier(self.DATASET)
            self.model = model
            self.sha256 = sha

        @staticmethod
        def get_provided_features_list():
            return "features", "logits"

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return {"isc": "logits", "fid": "features", "kid": "features", "prc": "features"}[metric]

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 3 if stacked else 1, 28, 28, dtype=torch.uint8)

        def forward(self, x):
            f, logits = read_batch(self.model, x, stacked, self.name)
            out = {"features": f, "logits": logits}
            return tuple(out[k] for k in self.features_list)

    ClassifierExtractor.__name__ = f"ClassifierExtractor_{dataset.replace('-', '_')}"
    return ClassifierExtractor


def register_classifier_extractor(dataset: str) -> str:
    """Register (once) the classifier of ``dataset`` with torch-fidelity; return its extractor name."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    name = PREFIX + dataset
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(name, _make_extractor_class(dataset))
    return name


def images_seen(dataset: str) -> int:
    """Images the classifier of ``dataset`` has read as the feature extractor in this process (all calls: the
    project's feature passes and torch-fidelity's)."""
    return images_read(PREFIX + dataset)


# ------------------------------------------------------------------------------------------------
# Inception-v3 (torch-fidelity's), offline-aware


def inception_weights() -> Path:
    """The Inception-v3 weights file from torch's hub cache, downloading it if possible; else a UserError."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    fname = URL_INCEPTION_V3.rsplit("/", 1)[-1]
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / fname
    if path.is_file():
        return path
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(15)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(URL_INCEPTION_V3, str(path), progress=False)
    except Exception:
        raise UserError(
            f"Inception-v3 weights '{fname}' are not in '{folder}' and could not be downloaded "
            f"(offline?); put the file there, or use --feature-extractor classifier"
        ) from None
    finally:
        socket.setdefaulttimeout(old)
    return path


# ------------------------------------------------------------------------------------------------
# evaluator identity


def evaluator(extractor: str, dataset: str) -> Tuple[str, str]:
    """(name, sha256) of the feature extractor that scores ``dataset``; UserError when it cannot be had."""

    if extractor == "classifier":
        _, sha = load_classifier(dataset)
        return PREFIX + dataset, sha
    if extractor == INCEPTION:
        return INCEPTION, cached_sha256(inception_weights())
    raise UserError(f"unknown feature extractor '{extractor}'; valid: {', '.join(EXTRACTORS)}")


# ------------------------------------------------------------------------------------------------
# inputs


class ImageSet(torch.utils.data.Dataset):
    """In-memory images for torch-fidelity: yields uint8 C x H x W (channels repeated to ``channels``)."""

    def __init__(
        self, x: Tensor | Callable[[], Tensor], channels: Optional[int] = None, length: Optional[int] = None, bar=None
    ):
        self._x = x if isinstance(x, Tensor) else None
        self._load = None if isinstance(x, Tensor) else x
        self._len = len(x) if isinstance(x, Tensor) else length
        self.channels = channels
        self.bar = bar

    @property
    def x(self) -> Tensor:
        if self._x is None:  # the real set: loaded only when torch-fidelity misses its cache
            assert self._load is not None
            self._x = to_uint8(self._load())
        elif self._x.dtype != torch.uint8:
            self._x = to_uint8(self._x)
        if self.channels and self._x.shape[1] != self.channels:
            self._x = self._x.expand(-1, self.channels, -1, -1).contiguous()
        return self._x

    def __len__(self) -> int:
        return int(self._len if self._len is not None else len(self.x))

    def __getitem__(self, i: int) -> Tensor:
        if self.bar is not None:
            self.bar.update(1)
        return self.x[i]


# ------------------------------------------------------------------------------------------------
# the one call


def fidelity_metrics(
    x_gen: Tensor,
    load_real: Callable[[], Tensor],
    n_real: int,
    dataset: str,
    split: str,
    which: Tuple[str, ...],
    extractor: str = "classifier",
    root: Optional[str | Path] = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    cache_tag: str = "",
    batch_size: int = 500,
) -> Dict[str, float]:
    """torch-fidelity's metrics ``which`` (subset of fid, kid, isc, prc) of ``x_gen`` against the real set.

    ``load_real()`` returns the ``n_real`` real images (float [-1, 1] or uint8); it is called only when the
    cache misses. Returns torch-fidelity's keys (``frechet_inception_distance``, ...).
    """
    import torch_fidelity
    from tqdm import tqdm

    which = tuple(w for w in ("fid", "kid", "isc", "prc") if w in which)
    if not which:
        return {}
    dev = torch.device(device)
    name, sha = evaluator(extractor, dataset)
    kw: Dict = {}
    if extractor == "classifier":
        register_classifier_extractor(dataset)
        channels = None
    else:
        kw["feature_extractor_weights_path"] = str(inception_weights())
        channels = 3
    n_gen = len(x_gen)
    binary = any(w in which for w in ("fid", "kid", "prc"))
    cache_name = f"ganbench-{dataset}-{split}{cache_tag}-n{n_real}-{sha[:16]}"
    total = n_gen + (n_real if binary else 0)
    with tqdm(total=total, disable=not progress, desc=f"features ({name})", unit="img", leave=False) as bar:
        real_set = ImageSet(load_real, channels=channels, length=n_real, bar=bar) if binary else None
        kw.update(
            input1=ImageSet(x_gen, channels=channels, bar=bar),
            input2=real_set,
            input2_cache_name=cache_name if binary else None,
            cache=True,
            cache_root=str(cache_root(root) / "fidelity-tf"),
            cuda=dev.type == "cuda",
            batch_size=batch_size,
            feature_extractor=name,
            kid_subset_size=min(1000, n_gen, n_real),
            save_cpu_ram=True,  # no DataLoader worker processes for in-memory tensors
            verbose=False,
        )
        if binary and which != ("fid",):
            _warm_reference(name, **kw)
        out = torch_fidelity.calculate_metrics(
            isc="isc" in which, fid="fid" in which, kid="kid" in which, prc="prc" in which, **kw
        )
    return {k: float(v) for k, v in out.items()}


def _warm_reference(name: str, **kw) -> None:
    """Cache the real set's features for *every* layer at once (torch-fidelity caches per requested layer
    group, so a later call asking for another metric mix would otherwise recompute them)."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
    from torch_fidelity.utils import create_feature_extractor, extract_featuresdict_from_input_id_cached

    layers = ["features", "logits"] if name.startswith(PREFIX) else ["2048", "logits_unbiased"]
    assert name in FEATURE_EXTRACTORS_REGISTRY
    fe = create_feature_extractor(name, layers, **kw)
    extract_featuresdict_from_input_id_cached(2, fe, **kw)

"""The shipped weights and their manifest: checked loading (sha256 against ``weights/manifest.json``), the
command that re-creates a file, byte-deterministic saving.

``weights/manifest.json`` holds each file's sha256, which ``load_classifier`` checks, its architecture, test
accuracy, corruption table, readable threshold tau and the exact command that re-creates it. Weights load with
``torch.load(weights_only=True)``: tensors only, nothing unpickled.
"""

from __future__ import annotations

import io as _io
import os
from dataclasses import replace
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from benchmark import io
from benchmark.errors import UserError, quote
from benchmark.evaluation.classifier.networks import build
from benchmark.evaluation.classifier.recipes import ARCH_KEYS, ARCHS, Arch, arch_name, dataset_of, second_name

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"


def read_manifest(weights_dir: Path = WEIGHTS_DIR) -> Dict[str, Dict]:
    """The manifest of a weights folder ({} when it has none): an object of one entry (an object) per evaluator;
    a folder, a malformed or foreign file is one line naming it."""
    p = Path(weights_dir) / "manifest.json"
    if not os.path.lexists(p):
        return {}
    shipped = p.parent.resolve() == WEIGHTS_DIR.resolve()
    fix = (
        "restore it with 'git checkout benchmark/evaluation/weights/manifest.json'"
        if shipped
        else "delete the folder's weights and manifest and train them again with 'ganbench classifier train --out'"
    )
    manifest = io.read_json_checked(p, "evaluator manifest", fix)
    for name, entry in manifest.items():
        if not isinstance(entry, dict):
            raise UserError(f"evaluator manifest {quote(p)}: the entry {quote(name, 40)} is not an object; {fix}")
    return manifest


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


_SHA_CACHE: Dict[Tuple[str, float, int], str] = {}


def cached_sha256(path: Path) -> str:
    """sha256 of a file, computed once per (path, mtime, size) in this process."""
    st = path.stat()
    key = (str(path), st.st_mtime, st.st_size)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = io.sha256_file(path)
    return _SHA_CACHE[key]


def load_classifier(
    dataset: str, device: str | torch.device = "cpu", weights_dir: Optional[Path] = None
) -> Tuple[nn.Module, str]:
    """(model in eval mode, sha256 of its weights file) for ``dataset`` (stacked-mnist -> mnist); ``dataset``
    may also name a second evaluator ('mnist-mlp').

    The file's sha256 must equal the manifest's: a mismatch (a re-trained or corrupted file) is a UserError.
    """
    name = arch_name(dataset)
    wdir = Path(weights_dir) if weights_dir else WEIGHTS_DIR
    path = wdir / f"{name}.pt"
    entry = read_manifest(wdir).get(name)
    if not path.is_file() or entry is None:
        cmd = classifier_command(name, None, None)
        raise UserError(f"no evaluator classifier weights for '{name}' in '{wdir}'; create them with '{cmd}'")
    sha = cached_sha256(path)
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
    e = read_manifest(Path(weights_dir) if weights_dir else WEIGHTS_DIR).get(arch_name(name), {})
    return float(e.get("readable_tau", 0.0))


def save_weights(model: nn.Module, path: Path) -> None:
    """Byte-deterministic: serialised in memory (torch.save names the archive after the file, and the
    atomic write goes through a randomly named temporary file), then written atomically."""
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    buf = _io.BytesIO()
    torch.save(state, buf)
    with io.atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())
        tmp.chmod(0o644)

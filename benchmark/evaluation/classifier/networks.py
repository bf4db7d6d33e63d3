"""The two evaluator networks: ``EvalNet`` (the CNN, the primary) and ``MLPNet`` (the independent second)."""

from __future__ import annotations

from typing import List, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.errors import UserError
from benchmark.evaluation.classifier.recipes import Arch


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

"""Generator/critic pairs: ``mlp``, ``dcgan``, ``toy``, ``toy-pacgan`` and ``toy-wgangp``, each optionally conditional.

A model entry is a function ``(cfg, shape, num_classes) -> (G, D)``. Every critic is split into
``features(x, y) -> h`` and ``head(h, y) -> score`` so that feature matching, minibatch discrimination
and the projection discriminator plug in between without touching the architectures. Critics return raw
scores (no sigmoid): the objective applies what it needs. Channel counts are read from the dataset's
shape, so MNIST (1 channel) and Stacked MNIST (3) use the same code.

Packing (PacGAN): ``D`` receives N samples and judges them in N/pack groups, concatenated along the
channel (conv) or feature (MLP) axis.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import re
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.errors import UserError, quote
from benchmark.registry import Registry

MODELS = Registry("model")


# models for the 2D mixtures: z is 2-dimensional, as in the unrolled-GAN / VEEGAN / PacGAN line
POINT_MODELS = ("toy", "toy-pacgan", "toy-pacgan-maxout", "toy-wgangp")


def default_z_dim(model: str) -> int:
    return 2 if model in POINT_MODELS else 100


# ------------------------------------------------------------------------------------------------
# shared pieces


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016: appends, per sample, B closeness scores to the rest of the batch.

    features (N, F) -> (N, F + B). A collapsed batch (all samples alike) gets large scores, which the
    critic can learn to punish.
    """

    def __init__(self, in_features: int, num_kernels: int = 50, kernel_dim: int = 5):
        super().__init__()
        self.B, self.C = num_kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, num_kernels * kernel_dim) * 0.1)

    def forward(self, h: Tensor) -> Tensor:
        m = (h @ self.T).view(-1, self.B, self.C)  # N x B x C
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)  # N x N x B
        o = torch.exp(-l1).sum(0) - 1.0  # exclude the sample itself (exp(0) = 1)
        return torch.cat([h, o], 1)


def norm1d(kind: str, n: int) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm1d(n)
    if kind == "layer":
        return nn.LayerNorm(n)
    raise UserError(
        f"critic_norm '{kind}' needs a convolutional critic (model dcgan); use none, batch or layer with this model"
    )


def norm2d(kind: str, c: int) -> nn.Module:
    return {
        "none": nn.Identity,
        "batch": lambda: nn.BatchNorm2d(c),
        "layer": lambda: nn.GroupNorm(1, c),  # normalises over (C, H, W) per sample
        "instance": lambda: nn.InstanceNorm2d(c, affine=True),
    }[kind]()


class Critic(nn.Module):
    """Common critic plumbing: packing, label conditioning, minibatch discrimination, head."""

    def __init__(self, cfg, shape: Tuple[int, ...], num_classes: int):
        super().__init__()
        self.pack = cfg.pack
        self.num_classes = num_classes if cfg.conditional else 0
        self.cond_mode = cfg.cond_mode
        self.shape = shape

    def _finish(self, feat_dim: int, cfg) -> None:
        self.feat_dim = feat_dim
        self.mbd = MinibatchDiscrimination(feat_dim) if cfg.minibatch_disc else None
        head_in = feat_dim + (self.mbd.B if self.mbd is not None else 0)
        self.linear = nn.Linear(head_in, 1)
        if self.num_classes and self.cond_mode == "projection":
            self.embed = nn.Embedding(self.num_classes, head_in)  # Miyato & Koyama 2018

    def _pack(self, x: Tensor) -> Tensor:
        if self.pack == 1:
            return x
        n = x.shape[0]
        if n % self.pack:
            raise ValueError(f"batch of {n} cannot be packed by {self.pack}")
        # N x C x ... -> N/pack x (pack*C) x ...: samples of a group side by side on the channel axis
        return x.reshape(n // self.pack, self.pack * x.shape[1], *x.shape[2:])

    def _concat_label(self) -> bool:
        return bool(self.num_classes) and self.cond_mode == "concat"

    def features(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        raise NotImplementedError

    def head(self, h: Tensor, y: Optional[Tensor] = None) -> Tensor:
        if self.mbd is not None:
            h = self.mbd(h)
        out = self.linear(h).squeeze(1)
        if self.num_classes and self.cond_mode == "projection":
            out = out + (self.embed(y) * h).sum(1)
        return out

    def forward(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        return self.head(self.features(x, y), y)


def label_factor(label_scale: str, z_dim: int) -> float:
    """The factor on G's one-hot label (config key ``label_scale``): ``one`` -> 1, ``sqrt-z`` -> sqrt(z_dim).

    sqrt(z_dim) gives the label as much input energy as z (E|z|^2 = z_dim, |scaled one-hot|^2 = z_dim): a
    plain one-hot beside 100 Gaussian inputs is a faint signal that the first layer is slow to pick up, and
    the generator then ignores its label for hundreds of steps. Measured on digits (cgan, mlp pair, 300 steps,
    batch 64; label agreement of 1,000 samples by digits' second evaluator; seeds 0, 1, 2): concat critic
    0.140 / 0.145 / 0.169 with ``one``, 0.613 / 0.737 / 0.832 with ``sqrt-z``; projection critic
    0.862 / 0.872 / 0.841 with ``one``, 0.983 / 0.968 / 0.910 with ``sqrt-z``. Each figure: ``train`` of
    ``make_config(dict(dataset="digits", model="mlp", objective="cgan", cond_mode=..., label_scale=...,
    steps=300, batch_size=64, seed=...))``, then the share of ``generate(G, cfg, 1000, seed=0)`` whose
    ``classify(load_second("digits")[0], x)`` argmax is the requested label. Only G's input is scaled; a concat
    critic still sees the plain one-hot.
    """
    if label_scale == "one":
        return 1.0
    if label_scale == "sqrt-z":
        return math.sqrt(z_dim)
    raise ValueError(f"unknown label_scale {label_scale!r}")  # config.check refuses it first


class Generator(nn.Module):
    """Base of the generators: z, and for a conditional one its one-hot label times ``label_factor``, in."""

    def __init__(self, cfg, shape: Tuple[int, ...], num_classes: int):
        super().__init__()
        self.z_dim = cfg.z_dim
        self.shape = tuple(shape)
        self.num_classes = num_classes if cfg.conditional else 0
        self.in_dim = self.z_dim + self.num_classes  # one-hot label concatenated to z
        self.label_scale = label_factor(cfg.label_scale, self.z_dim)

    def _input(self, z: Tensor, y: Optional[Tensor]) -> Tensor:
        if self.num_classes:
            if y is None:
                raise ValueError("a conditional generator needs labels")
            onehot = F.one_hot(y, self.num_classes).to(z.dtype)
            if self.label_scale != 1.0:  # (label_scale one: exactly the input of every earlier run)
                onehot = self.label_scale * onehot
            return torch.cat([z, onehot], 1)
        return z


# ------------------------------------------------------------------------------------------------
# mlp: the classic pair of the WGAN-GP tutorials


class MLPGenerator(Generator):
    """z -> 128 -> 256 -> 512 -> 1024 -> pixels; BatchNorm from the second block, LeakyReLU 0.2, tanh."""

    def __init__(self, cfg, shape, num_classes):
        super().__init__(cfg, shape, num_classes)
        widths = [128, 256, 512, 1024]
        layers: list = [nn.Linear(self.in_dim, widths[0]), nn.LeakyReLU(0.2, inplace=True)]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Linear(widths[-1], math.prod(shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z, y=None):
        return self.net(self._input(z, y)).view(-1, *self.shape)


class MLPCritic(Critic):
    """pixels -> 512 -> 256 -> 1, LeakyReLU 0.2; optional normalisation after each hidden layer."""

    def __init__(self, cfg, shape, num_classes, widths=(512, 256)):
        super().__init__(cfg, shape, num_classes)
        d_in = math.prod(shape) * cfg.pack + (self.num_classes if self._concat_label() else 0)
        layers: list = []
        for w in widths:
            layers += [nn.Linear(d_in, w), norm1d(cfg.critic_norm, w), nn.LeakyReLU(0.2, inplace=True)]
            d_in = w
        self.body = nn.Sequential(*layers)
        self._finish(d_in, cfg)

    def features(self, x, y=None):
        h = self._pack(x).flatten(1)
        if self._concat_label():
            h = torch.cat([h, F.one_hot(y, self.num_classes).to(h.dtype)], 1)
        return self.body(h)


# ------------------------------------------------------------------------------------------------
# dcgan: a small convolutional pair for 28x28


class DCGANGenerator(Generator):
    """z -> 2w x 7x7 -> w x 14x14 -> Cx28x28 (transposed convs, BatchNorm, ReLU, tanh); w = 64 in ``dcgan``."""

    def __init__(self, cfg, shape, num_classes, width: int = 64):
        super().__init__(cfg, shape, num_classes)
        c, self.w2 = shape[0], 2 * width
        self.fc = nn.Sequential(nn.Linear(self.in_dim, self.w2 * 7 * 7), nn.BatchNorm1d(self.w2 * 7 * 7), nn.ReLU(True))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(self.w2, width, 4, 2, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.ConvTranspose2d(width, c, 4, 2, 1),
            nn.Tanh(),
        )

    def forward(self, z, y=None):
        return self.net(self.fc(self._input(z, y)).view(-1, self.w2, 7, 7))


class DCGANCritic(Critic):
    """Cx28x28 -> w x 14x14 -> 2w x 7x7 -> features (strided convs, LeakyReLU 0.2); w = 64 in ``dcgan``."""

    def __init__(self, cfg, shape, num_classes, width: int = 64):
        super().__init__(cfg, shape, num_classes)
        c_in = shape[0] * cfg.pack + (self.num_classes if self._concat_label() else 0)
        self.body = nn.Sequential(
            nn.Conv2d(c_in, width, 4, 2, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            norm2d(cfg.critic_norm, 2 * width),
            nn.LeakyReLU(0.2, True),
        )
        self._finish(2 * width * 7 * 7, cfg)

    def features(self, x, y=None):
        h = self._pack(x)
        if self._concat_label():  # one-hot label maps as extra input channels
            onehot = F.one_hot(y, self.num_classes).to(h.dtype)[:, :, None, None]
            h = torch.cat([h, onehot.expand(-1, -1, *h.shape[2:])], 1)
        return self.body(h).flatten(1)


# ------------------------------------------------------------------------------------------------
# toy: MLPs for the 2D mixtures


class ToyGenerator(Generator):
    """z -> 128 -> 128 -> 128 -> 2, ReLU (the 2D-mixture generator of the unrolled/VEEGAN/PacGAN line)."""

    def __init__(self, cfg, shape, num_classes, width=128):
        super().__init__(cfg, shape, num_classes)
        self.net = nn.Sequential(
            nn.Linear(self.in_dim, width),
            nn.ReLU(True),
            nn.Linear(width, width),
            nn.ReLU(True),
            nn.Linear(width, width),
            nn.ReLU(True),
            nn.Linear(width, shape[0]),
        )

    def forward(self, z, y=None):
        return self.net(self._input(z, y))


class ToyCritic(MLPCritic):
    def __init__(self, cfg, shape, num_classes, widths=(128, 128)):
        super().__init__(cfg, shape, num_classes, widths=widths)


class ToyMLPGenerator(Generator):
    """z -> (Linear [-BatchNorm] - ReLU) x len(widths) -> 2. With BatchNorm the hidden Linear layers carry no
    bias (BatchNorm's shift replaces it), as in PacGAN's generator."""

    def __init__(self, cfg, shape, num_classes, widths: Tuple[int, ...], batch_norm: bool):
        super().__init__(cfg, shape, num_classes)
        layers: list = []
        d = self.in_dim
        for w in widths:
            layers.append(nn.Linear(d, w, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(w))
            layers.append(nn.ReLU(True))
            d = w
        layers.append(nn.Linear(d, shape[0]))
        self.net = nn.Sequential(*layers)

    def forward(self, z, y=None):
        return self.net(self._input(z, y))


class ReLUCritic(MLPCritic):
    """MLPCritic with ReLU in place of LeakyReLU (the WGAN-GP paper's toy critic)."""

    def __init__(self, cfg, shape, num_classes, widths):
        super().__init__(cfg, shape, num_classes, widths=widths)
        for i, m in enumerate(self.body):
            if isinstance(m, nn.LeakyReLU):
                self.body[i] = nn.ReLU(True)


class Maxout(nn.Module):
    """A maxout layer (Goodfellow et al. 2013): ``pieces`` linear maps per unit, the unit's output their maximum."""

    def __init__(self, d_in: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(d_in, units * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(-1, self.units, self.pieces).amax(-1)


class MaxoutCritic(MLPCritic):
    """PacGAN's 2D-mixture discriminator: ``len(widths)`` maxout layers of ``pieces`` pieces (its config: 3 x 200, 5)."""

    def __init__(self, cfg, shape, num_classes, widths, pieces: int = 5):
        # the base body is built and replaced (as ReLUCritic patches its units): its initialisation draws from the
        # seeded stream before the maxout layers do, and the toy2d page's runs (483b5a0) were made with that stream
        super().__init__(cfg, shape, num_classes, widths=widths)
        d_in = math.prod(shape) * cfg.pack + (self.num_classes if self._concat_label() else 0)
        layers: list = []
        for w in widths:
            layers += [Maxout(d_in, w, pieces), norm1d(cfg.critic_norm, w)]
            d_in = w
        self.body = nn.Sequential(*layers)


# ------------------------------------------------------------------------------------------------
# registry entries: (cfg, shape, num_classes) -> (G, D), with the fit check


def _need_images(name: str, shape, hw=None) -> None:
    if len(shape) != 3 or (hw is not None and tuple(shape[1:]) != hw):
        want = f"{hw[0]}x{hw[1]} images" if hw else "images"
        raise UserError(
            f"model '{name}' needs {want}, but the dataset gives samples of shape {tuple(shape)}; "
            f"use model {'toy' if len(shape) == 1 else 'mlp'}"
        )


@MODELS.register("mlp")
def mlp(cfg, shape, num_classes):
    _need_images("mlp", shape)
    return MLPGenerator(cfg, shape, num_classes), MLPCritic(cfg, shape, num_classes)


@MODELS.register("dcgan")
def dcgan(cfg, shape, num_classes):
    _need_images("dcgan", shape, (28, 28))
    return DCGANGenerator(cfg, shape, num_classes), DCGANCritic(cfg, shape, num_classes)


def _need_points(name: str, shape) -> None:
    if len(shape) != 1:
        raise UserError(
            f"model '{name}' needs 2D points, but the dataset gives samples of shape {tuple(shape)}; use mlp or dcgan"
        )


@MODELS.register("toy")
def toy(cfg, shape, num_classes):
    _need_points("toy", shape)
    return ToyGenerator(cfg, shape, num_classes), ToyCritic(cfg, shape, num_classes)


@MODELS.register("toy-pacgan")
def toy_pacgan(cfg, shape, num_classes):
    """PacGAN's 2D-mixture sizes (Lin et al. 2018, synthetic config): G 4 x 400 with BatchNorm and ReLU; D 3 x 200.
    PacGAN's D uses maxout units (5 pieces); this one uses LeakyReLU 0.2, like every critic here."""
    _need_points("toy-pacgan", shape)
    G = ToyMLPGenerator(cfg, shape, num_classes, widths=(400,) * 4, batch_norm=True)
    return G, ToyCritic(cfg, shape, num_classes, widths=(200,) * 3)


@MODELS.register("toy-pacgan-maxout")
def toy_pacgan_maxout(cfg, shape, num_classes):
    """PacGAN's 2D-mixture pair with its own discriminator units: G 4 x 400 with BatchNorm and ReLU; D 3 x 200
    maxout units of 5 pieces (Lin et al. 2018, synthetic_data_experiments config)."""
    _need_points("toy-pacgan-maxout", shape)
    G = ToyMLPGenerator(cfg, shape, num_classes, widths=(400,) * 4, batch_norm=True)
    return G, MaxoutCritic(cfg, shape, num_classes, widths=(200,) * 3)


@MODELS.register("toy-wgangp")
def toy_wgangp(cfg, shape, num_classes):
    """The WGAN-GP paper's toy pair (Gulrajani et al. 2017, gan_toy.py): G and D 3 x 512, ReLU, no BatchNorm."""
    _need_points("toy-wgangp", shape)
    G = ToyMLPGenerator(cfg, shape, num_classes, widths=(512,) * 3, batch_norm=False)
    return G, ReLUCritic(cfg, shape, num_classes, widths=(512,) * 3)


def is_user_model(name: str) -> bool:
    return ":" in name


def import_user_model(name: str) -> Callable[..., Tuple[nn.Module, nn.Module]]:
    """The factory ``function`` of a user's ``package.module:function`` model: this imports, and so runs, that code.

    Checked before any work: the name's form, that it imports, that it names a function taking
    ``(cfg, shape, num_classes)``; the factory returned checks that a call gives a pair of ``nn.Module``.
    Each failure is one line.
    """
    form = "give 'package.module:function', where function(cfg, shape, num_classes) returns (G, D)"
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*", name):
        raise UserError(
            f"model {quote(name, 60)} is neither a registry name ({', '.join(MODELS.names())}) nor {form[5:]}"
        )
    mod, _, fn = name.partition(":")
    try:
        factory = getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as e:
        raise UserError(
            f"model '{name}' cannot be imported ({e}); give 'package.module:function' with its package "
            "installed or its folder on PYTHONPATH (e.g. PYTHONPATH=. ganbench ...)"
        ) from None
    except Exception as e:  # the user's module failed while importing (a SyntaxError, an error it raised)
        raise UserError(
            f"model '{name}': importing '{mod}' failed ({type(e).__name__}: {quote(e, 80)}); fix it"
        ) from None
    if inspect.isclass(factory) or not callable(factory):
        kind = "a class" if inspect.isclass(factory) else f"a {type(factory).__name__} (not callable)"
        raise UserError(f"model '{name}' is {kind}, not a model factory; {form}")
    try:
        inspect.signature(factory).bind(None, None, None)
    except TypeError:
        raise UserError(
            f"model '{name}' takes {quote(inspect.signature(factory), 60)}, not (cfg, shape, num_classes); {form}"
        ) from None
    except ValueError:  # no signature to be had (some builtins): the call decides
        pass

    @functools.wraps(factory)
    def checked(cfg, shape, num_classes) -> Tuple[nn.Module, nn.Module]:
        pair = factory(cfg, shape, num_classes)
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(m, nn.Module) for m in pair)):
            got = f"a {type(pair).__name__}" + (f" of {len(pair)}" if isinstance(pair, (tuple, list)) else "")
            raise UserError(
                f"model '{name}' returned {got}, not a pair (G, D) of torch.nn.Module; make it return "
                "(generator, critic)"
            )
        return pair[0], pair[1]

    return checked


def build_models(cfg, shape, num_classes) -> Tuple[nn.Module, nn.Module]:
    """Registry name, or 'package.module:function' for a user's own (cfg, shape, num_classes) -> (G, D)."""
    factory = import_user_model(cfg.model) if is_user_model(cfg.model) else MODELS.get(cfg.model)
    if cfg.critic_norm == "instance" and cfg.model != "dcgan" and not is_user_model(cfg.model):
        raise UserError(
            f"critic_norm 'instance' needs a convolutional critic (model dcgan), not '{cfg.model}'; "
            "use none, batch or layer"
        )
    return factory(cfg, tuple(shape), num_classes)

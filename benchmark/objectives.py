"""Objectives as loss pairs: ``d_loss(d_real, d_fake)`` for the critic, ``g_loss(d_fake)`` for the generator.

Registered: ``gan`` (non-saturating BCE), ``gan-minimax`` (the saturating original), ``lsgan``,
``wgan`` (weight clipping) and ``wgan-gp`` (gradient penalty). Inputs are the critic's raw scores
(logits); each objective applies what it needs (softplus for BCE, nothing for Wasserstein critics).

PAPER_DEFAULTS is the one place that holds the optimiser settings of each objective's paper; a
config's ``None`` fields are filled from it (``config.resolve``).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.registry import Registry

OBJECTIVES = Registry("objective")

# Goodfellow et al. 2014 / DCGAN (Radford et al. 2016): Adam 2e-4, beta1 0.5, one D step per G step.
# LSGAN (Mao et al. 2017): the same Adam settings. WGAN (Arjovsky et al. 2017, Alg. 1): RMSProp 5e-5,
# n_critic 5, c = 0.01. WGAN-GP (Gulrajani et al. 2017, Alg. 1): Adam 1e-4, betas (0, 0.9), n_critic 5, lambda 10.
_DCGAN = dict(
    optimizer="adam", lr_g=2e-4, lr_d=2e-4, beta1_g=0.5, beta2_g=0.999, beta1_d=0.5, beta2_d=0.999, n_critic=1
)
PAPER_DEFAULTS: Dict[str, Dict] = {
    "gan": dict(_DCGAN),
    "gan-minimax": dict(_DCGAN),
    "lsgan": dict(_DCGAN),
    "wgan": dict(
        optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5, beta1_g=0.0, beta2_g=0.0, beta1_d=0.0, beta2_d=0.0, n_critic=5
    ),
    "wgan-gp": dict(
        optimizer="adam", lr_g=1e-4, lr_d=1e-4, beta1_g=0.0, beta2_g=0.9, beta1_d=0.0, beta2_d=0.9, n_critic=5
    ),
}


class Objective:
    """Base: a loss pair, plus optional penalty and post-step hooks the trainer calls."""

    name = ""
    wasserstein = False  # does -d_loss estimate a Wasserstein distance?
    has_penalty = False  # does penalty() return a term?

    def __init__(self, cfg):
        self.real_target = 1.0 - cfg.label_smoothing  # one-sided label smoothing

    def d_loss(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        raise NotImplementedError

    def g_loss(self, d_fake: Tensor) -> Tensor:
        raise NotImplementedError

    def penalty(self, D: nn.Module, real: Tensor, fake: Tensor, y: Optional[Tensor]) -> Optional[Tuple[Tensor, Tensor]]:
        """(penalty term, per-sample |grad D| at the interpolates), or None."""
        return None

    def after_critic_step(self, D: nn.Module) -> None:
        """Called after each critic optimiser step (weight clipping lives here)."""


@OBJECTIVES.register("gan")
class NonSaturatingGAN(Objective):
    """D: -log D(x) - log(1 - D(G(z))); G: -log D(G(z)) (the non-saturating trick of the GAN paper)."""

    name = "gan"

    def d_loss(self, d_real, d_fake):
        t = torch.full_like(d_real, self.real_target)
        return F.binary_cross_entropy_with_logits(d_real, t) + F.softplus(d_fake).mean()

    def g_loss(self, d_fake):
        return F.softplus(-d_fake).mean()


@OBJECTIVES.register("gan-minimax")
class MinimaxGAN(NonSaturatingGAN):
    """G minimises log(1 - D(G(z))), the original saturating game (its gradient vanishes when D wins)."""

    name = "gan-minimax"

    def g_loss(self, d_fake):
        return -F.softplus(d_fake).mean()  # log(1 - sigmoid(s)) = -softplus(s)


@OBJECTIVES.register("lsgan")
class LSGAN(Objective):
    """Least squares with a-b-c = 0-1-1: D: 1/2 (D(x)-1)^2 + 1/2 D(G(z))^2; G: 1/2 (D(G(z))-1)^2."""

    name = "lsgan"

    def d_loss(self, d_real, d_fake):
        return 0.5 * ((d_real - self.real_target) ** 2).mean() + 0.5 * (d_fake**2).mean()

    def g_loss(self, d_fake):
        return 0.5 * ((d_fake - 1.0) ** 2).mean()


@OBJECTIVES.register("wgan")
class WGAN(Objective):
    """Critic maximises E D(x) - E D(G(z)); Lipschitz by clipping every weight to [-c, c]."""

    name = "wgan"
    wasserstein = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.clip = cfg.clip

    def d_loss(self, d_real, d_fake):
        return d_fake.mean() - d_real.mean()

    def g_loss(self, d_fake):
        return -d_fake.mean()

    @torch.no_grad()
    def after_critic_step(self, D):
        for p in D.parameters():
            p.clamp_(-self.clip, self.clip)


def gradient_penalty(
    D: Callable,
    real: Tensor,
    fake: Tensor,
    y: Optional[Tensor],
    pack: int = 1,
    one_sided: bool = False,
    create_graph: bool = True,
) -> Tuple[Tensor, Tensor]:
    """E[(|grad_x D(x_hat)| - 1)^2] at x_hat = eps*real + (1-eps)*fake, eps ~ U[0,1] per (packed) sample.

    Returns (penalty, |grad| per critic input). With packing, a critic input is a group of ``pack``
    samples, so the norm is taken over the whole group.
    """
    n = real.shape[0]
    eps = torch.rand((n // pack,) + (1,) * (real.dim() - 1), device=real.device)
    eps = eps.repeat_interleave(pack, 0)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = D(x_hat, y)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=create_graph)
    norms = grad.reshape(n // pack, -1).norm(2, dim=1)
    dev = norms - 1.0
    if one_sided:
        dev = dev.clamp(min=0)
    return (dev**2).mean(), norms


@OBJECTIVES.register("wgan-gp")
class WGANGP(WGAN):
    """WGAN with the gradient penalty lambda * E(|grad D(x_hat)| - 1)^2 in place of clipping."""

    name = "wgan-gp"
    has_penalty = True

    def __init__(self, cfg):
        super().__init__(cfg)
        self.gp_lambda = cfg.gp_lambda
        self.one_sided = cfg.gp_mode == "one-sided"
        self.pack = cfg.pack

    def penalty(self, D, real, fake, y):
        # lambda = 0 still measures |grad D| (the study needs it) but skips the double backward.
        gp, norms = gradient_penalty(D, real, fake, y, self.pack, self.one_sided, create_graph=self.gp_lambda > 0)
        return self.gp_lambda * gp, norms

    def after_critic_step(self, D):
        pass  # no clipping


def build_objective(cfg) -> Objective:
    return OBJECTIVES.get(cfg.objective)(cfg)

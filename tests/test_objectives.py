"""Loss values on hand-checkable inputs, the gradient penalty's known answer, clipping, shapes."""

import math

import pytest
import torch
from torch import nn

from benchmark.config import make_config, resolve
from benchmark.models import MinibatchDiscrimination, build_models
from benchmark.objectives import PAPER_DEFAULTS, build_objective, gradient_penalty

LOG2 = math.log(2.0)


def obj(name, **kw):
    return build_objective(make_config(dict(objective=name, dataset="ring8", model="toy", **kw)))


def t(*v):
    return torch.tensor(v, dtype=torch.float32)


def test_gan_losses_by_hand():
    o = obj("gan")
    # D outputs logit 0 = probability 1/2 everywhere: -log(1/2) for real and for fake
    assert o.d_loss(t(0.0), t(0.0)).item() == pytest.approx(2 * LOG2)
    assert o.g_loss(t(0.0)).item() == pytest.approx(LOG2)
    # a confident, right critic has a small loss; the non-saturating G loss is then large
    assert o.d_loss(t(20.0), t(-20.0)).item() == pytest.approx(0.0, abs=1e-8)
    assert o.g_loss(t(-20.0)).item() == pytest.approx(20.0, rel=1e-6)


def test_minimax_generator_loss_saturates():
    o = obj("gan-minimax")
    assert o.g_loss(t(0.0)).item() == pytest.approx(-LOG2)  # log(1 - 1/2)
    s = t(-20.0).requires_grad_(True)
    o.g_loss(s).backward()
    assert abs(s.grad.item()) < 1e-8  # the vanishing gradient of the original game
    s2 = t(-20.0).requires_grad_(True)
    obj("gan").g_loss(s2).backward()
    assert abs(s2.grad.item()) == pytest.approx(1.0, rel=1e-6)


def test_lsgan_losses_by_hand():
    o = obj("lsgan")
    assert o.d_loss(t(1.0), t(0.0)).item() == 0.0
    assert o.d_loss(t(0.0), t(1.0)).item() == pytest.approx(1.0)  # 1/2 * 1 + 1/2 * 1
    assert o.g_loss(t(1.0)).item() == 0.0
    assert o.g_loss(t(3.0)).item() == pytest.approx(2.0)  # 1/2 * (3-1)^2


def test_wasserstein_losses_by_hand():
    for name in ("wgan", "wgan-gp"):
        o = obj(name)
        assert o.d_loss(t(1.0, 3.0), t(0.0, 2.0)).item() == pytest.approx(-1.0)
        assert o.g_loss(t(0.0, 2.0)).item() == pytest.approx(-1.0)
        assert o.wasserstein


def test_one_sided_label_smoothing_moves_the_real_target():
    o = obj("gan", label_smoothing=0.1)
    s = torch.tensor([math.log(0.9 / 0.1)], requires_grad=True)  # sigmoid(s) = 0.9: the optimum
    o.d_loss(s, t(-50.0)).backward()
    assert abs(s.grad.item()) < 1e-6
    s = torch.tensor([math.log(0.9 / 0.1)], requires_grad=True)
    obj("gan").d_loss(s, t(-50.0)).backward()  # unsmoothed, the optimum is at +inf
    assert s.grad.item() < -0.05
    assert obj("lsgan", label_smoothing=0.2).d_loss(t(0.8), t(0.0)).item() == pytest.approx(0.0, abs=1e-7)


class Linear(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x, y=None):
        return x.flatten(1) @ self.w + 0.3


@pytest.mark.parametrize("scale", [0.25, 1.0, 3.0])
def test_gradient_penalty_of_linear_critic_is_exact(scale):
    torch.manual_seed(0)
    w = torch.randn(12)
    w = w / w.norm() * scale
    real, fake = torch.randn(32, 3, 2, 2), torch.randn(32, 3, 2, 2)
    gp, norms = gradient_penalty(Linear(w), real, fake, None)
    assert torch.allclose(norms, torch.full((32,), scale), atol=1e-5)
    assert gp.item() == pytest.approx((scale - 1.0) ** 2, abs=1e-5)
    gp1, _ = gradient_penalty(Linear(w), real, fake, None, one_sided=True)
    assert gp1.item() == pytest.approx(max(scale - 1.0, 0.0) ** 2, abs=1e-5)


def test_gradient_penalty_with_packing_takes_the_group_norm():
    w = torch.full((8,), 0.5)  # critic over a packed pair of 4-d samples; |w| = sqrt(2)
    real, fake = torch.randn(16, 4), torch.randn(16, 4)

    class Packed(Linear):
        def forward(self, x, y=None):
            return x.reshape(-1, 8) @ self.w

    gp, norms = gradient_penalty(Packed(w), real, fake, None, pack=2)
    assert norms.shape == (8,)
    assert gp.item() == pytest.approx((math.sqrt(2) - 1) ** 2, abs=1e-5)


def test_wgan_gp_penalty_is_scaled_by_lambda():
    w = torch.full((2,), 2.0)  # |w| = 2 sqrt(2)
    o = obj("wgan-gp", gp_lambda=7.0)
    pen, _ = o.penalty(Linear(w), torch.randn(8, 2), torch.randn(8, 2), None)
    assert pen.item() == pytest.approx(7.0 * (2 * math.sqrt(2) - 1) ** 2, rel=1e-5)


def test_paper_defaults_are_resolved():
    c = resolve(make_config(dict(objective="wgan", dataset="ring8", model="toy")))
    assert (c.optimizer, c.lr_d, c.n_critic) == ("rmsprop", 5e-5, 5)
    c = resolve(make_config(dict(objective="wgan-gp", dataset="ring8", model="toy")))
    assert (c.optimizer, c.lr_g, c.beta1_d, c.beta2_d, c.n_critic) == ("adam", 1e-4, 0.0, 0.9, 5)
    c = resolve(make_config(dict(objective="cgan", dataset="ring8", model="toy", lr_d=3e-4)))
    assert c.conditional and c.objective == "gan" and c.lr_d == 3e-4 and c.lr_g == PAPER_DEFAULTS["gan"]["lr_g"]


def test_packing_changes_critic_input_and_output_shapes():
    cfg = resolve(make_config(dict(dataset="digits", model="mlp", pack=4)))
    G, D = build_models(cfg, (1, 8, 8), 10)
    assert D.body[0].in_features == 64 * 4
    assert D(torch.randn(64, 1, 8, 8)).shape == (16,)
    cfg = resolve(make_config(dict(dataset="ring8", model="toy", pack=2)))
    _, D = build_models(cfg, (2,), 8)
    assert D(torch.randn(10, 2)).shape == (5,)


def test_minibatch_discrimination_appends_b_features():
    mbd = MinibatchDiscrimination(32, num_kernels=7, kernel_dim=3)
    h = torch.randn(10, 32)
    out = mbd(h)
    assert out.shape == (10, 39) and torch.equal(out[:, :32], h)
    same = mbd(h[:1].expand(10, -1))  # a collapsed batch: each sample is close to the 9 others
    assert torch.allclose(same[:, 32:], torch.full((10, 7), 9.0))
    cfg = resolve(make_config(dict(dataset="digits", model="mlp", minibatch_disc=True)))
    _, D = build_models(cfg, (1, 8, 8), 10)
    assert D.linear.in_features == 256 + 50 and D(torch.randn(6, 1, 8, 8)).shape == (6,)


def test_weight_clipping_holds_after_every_critic_step():
    from benchmark.train import Run

    run = Run(make_config(dict(dataset="ring8", model="toy", objective="wgan", clip=0.02, lr_d=0.05, device="cpu")))
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        run.critic_step(gen)
        biggest = max(p.abs().max().item() for p in run.D.parameters())
        assert biggest <= 0.02 + 1e-9
    assert biggest == pytest.approx(0.02)  # the large step pushed weights to the bound, clipping held them

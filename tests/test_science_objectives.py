"""Objectives beyond tests/test_objectives.py: the known answers that kill the mutants of benchmark/objectives.py
(``make mutants``): the papers' optimiser settings as a table, where the interpolates of the gradient penalty lie,
when the penalty is differentiable, each objective's flags and config plumbing."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmark.config import make_config
from benchmark.objectives import OBJECTIVES, PAPER_DEFAULTS, Objective, build_objective, gradient_penalty


def obj(name, **kw):
    return build_objective(make_config(dict(objective=name, dataset="ring8", model="toy", **kw)))


def t(*v):
    return torch.tensor(v, dtype=torch.float32)


class Critic(nn.Module):
    """A plain module as a critic: takes (x, y) like the package's critics, returns one score per sample."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, y=None):
        return self.net(x).squeeze(-1)


# The papers' settings, written down by hand: DCGAN (Radford et al. 2016) for gan/gan-minimax/lsgan; WGAN
# (Arjovsky et al. 2017, Algorithm 1); WGAN-GP (Gulrajani et al. 2017, Algorithm 1).
PAPERS = {
    "gan": ("adam", 2e-4, 2e-4, 0.5, 0.999, 0.5, 0.999, 1),
    "gan-minimax": ("adam", 2e-4, 2e-4, 0.5, 0.999, 0.5, 0.999, 1),
    "lsgan": ("adam", 2e-4, 2e-4, 0.5, 0.999, 0.5, 0.999, 1),
    "wgan": ("rmsprop", 5e-5, 5e-5, 0.0, 0.0, 0.0, 0.0, 5),
    "wgan-gp": ("adam", 1e-4, 1e-4, 0.0, 0.9, 0.0, 0.9, 5),
}
KEYS = ("optimizer", "lr_g", "lr_d", "beta1_g", "beta2_g", "beta1_d", "beta2_d", "n_critic")


def test_paper_defaults_table():
    assert set(PAPER_DEFAULTS) == set(PAPERS) == set(OBJECTIVES.names())
    for name, values in PAPERS.items():
        assert {k: PAPER_DEFAULTS[name][k] for k in KEYS} == dict(zip(KEYS, values)), name
        assert set(PAPER_DEFAULTS[name]) == set(KEYS), name


def test_paper_defaults_are_copies_not_one_shared_dict():
    assert PAPER_DEFAULTS["gan"] is not PAPER_DEFAULTS["lsgan"]


@pytest.mark.parametrize(
    "name,wasserstein,penalty",
    [
        ("gan", False, False),
        ("gan-minimax", False, False),
        ("lsgan", False, False),
        ("wgan", True, False),
        ("wgan-gp", True, True),
    ],
)
def test_flags_and_names(name, wasserstein, penalty):
    o = obj(name)
    assert (o.name, o.wasserstein, o.has_penalty) == (name, wasserstein, penalty)
    assert type(o) is OBJECTIVES.get(name)
    if not penalty:
        assert o.penalty(nn.Linear(2, 1), torch.randn(4, 2), torch.randn(4, 2), None) is None


def test_base_objective_is_abstract():
    o = Objective(make_config(dict(dataset="ring8", model="toy")))
    assert o.real_target == 1.0 and o.name == "" and not o.wasserstein and not o.has_penalty
    with pytest.raises(NotImplementedError):
        o.d_loss(t(0.0), t(0.0))
    with pytest.raises(NotImplementedError):
        o.g_loss(t(0.0))
    lin = nn.Linear(2, 1)
    before = [p.clone() for p in lin.parameters()]
    assert o.after_critic_step(lin) is None and all(torch.equal(a, b) for a, b in zip(before, lin.parameters()))


def test_gan_losses_away_from_zero():
    o = obj("gan")
    # d_real = 1, d_fake = -1: -log sigmoid(1) + -log(1 - sigmoid(-1)) = 2 softplus(-1)
    sp = math.log1p(math.exp(-1.0))
    assert o.d_loss(t(1.0), t(-1.0)).item() == pytest.approx(2 * sp, rel=1e-6)
    assert o.d_loss(t(1.0, 3.0), t(-1.0, -3.0)).item() == pytest.approx(
        sp + math.log1p(math.exp(-3.0)), rel=1e-6
    )  # means over the batch, not sums
    assert o.g_loss(t(1.0, 3.0)).item() == pytest.approx((sp + math.log1p(math.exp(-3.0))) / 2, rel=1e-6)
    s = obj("gan", label_smoothing=0.3)
    assert s.real_target == pytest.approx(0.7)
    # BCE with target 0.7 at logit 0: log 2 whatever the target; at logit 2: 0.7 softplus(-2) + 0.3 softplus(2)
    assert s.d_loss(t(2.0), t(-50.0)).item() == pytest.approx(
        0.7 * math.log1p(math.exp(-2.0)) + 0.3 * math.log1p(math.exp(2.0)), rel=1e-5
    )


def test_minimax_generator_loss_away_from_zero():
    assert obj("gan-minimax").g_loss(t(1.0, -2.0)).item() == pytest.approx(
        -(math.log1p(math.exp(1.0)) + math.log1p(math.exp(-2.0))) / 2, rel=1e-6
    )
    assert obj("gan-minimax").d_loss(t(1.0), t(-1.0)).item() == pytest.approx(obj("gan").d_loss(t(1.0), t(-1.0)).item())


def test_lsgan_losses_are_batch_means():
    o = obj("lsgan")
    assert o.d_loss(t(1.0, 3.0), t(0.0, 2.0)).item() == pytest.approx(0.5 * (0 + 4) / 2 + 0.5 * (0 + 4) / 2)
    assert o.g_loss(t(1.0, 3.0)).item() == pytest.approx(0.5 * (0 + 4) / 2)
    assert obj("lsgan", label_smoothing=0.5).d_loss(t(0.0), t(0.0)).item() == pytest.approx(0.125)


def test_wasserstein_losses_are_batch_means():
    o = obj("wgan")
    assert o.d_loss(t(1.0, 5.0), t(2.0, 2.0)).item() == pytest.approx(2.0 - 3.0)
    assert o.g_loss(t(1.0, 5.0)).item() == pytest.approx(-3.0)


def test_clipping_clamps_both_sides_at_the_configured_bound():
    o = obj("wgan", clip=0.05)
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -1.0, 0.01], [-0.2, 0.3, -0.04]]))
        lin.bias.copy_(torch.tensor([0.06, -0.07]))
    o.after_critic_step(lin)
    assert torch.equal(lin.weight, torch.tensor([[0.05, -0.05, 0.01], [-0.05, 0.05, -0.04]]))
    assert torch.equal(lin.bias, torch.tensor([0.05, -0.05]))
    assert lin.weight.requires_grad  # clipped in place, still a parameter
    gp = obj("wgan-gp")
    big = nn.Linear(2, 1)
    with torch.no_grad():
        big.weight.fill_(3.0)
    gp.after_critic_step(big)
    assert torch.equal(big.weight, torch.full((1, 2), 3.0))  # WGAN-GP does not clip


class HalfSquare(nn.Module):
    """D(x) = 1/2 |x|^2: grad = x, so |grad| at an interpolate is |x_hat| itself."""

    def forward(self, x, y=None):
        return 0.5 * (x.flatten(1) ** 2).sum(1)


def test_interpolates_lie_on_the_segment_with_one_uniform_eps_per_sample():
    torch.manual_seed(0)
    n = 2000
    real, fake = torch.full((n, 1), 1.0), torch.full((n, 1), 3.0)
    gp, norms = gradient_penalty(HalfSquare(), real, fake, None, create_graph=False)
    assert norms.shape == (n,)
    assert float(norms.min()) >= 1.0 - 1e-6 and float(norms.max()) <= 3.0 + 1e-6  # on [real, fake]
    assert float(norms.min()) < 1.05 and float(norms.max()) > 2.95  # eps spans [0, 1]
    assert float(norms.mean()) == pytest.approx(2.0, abs=0.05)  # uniform: the midpoint on average
    assert gp.item() == pytest.approx(((norms - 1) ** 2).mean().item(), rel=1e-6)
    # eps per sample, shared within a sample's dimensions: x_hat stays on the line real -> fake
    seen = []

    class Spy(HalfSquare):
        def forward(self, x_hat, y=None):
            seen.append(x_hat.detach().clone())
            return super().forward(x_hat)

    r2, f2 = torch.tensor([[1.0, 1.0]]).repeat(500, 1), torch.tensor([[3.0, 3.0]]).repeat(500, 1)
    gradient_penalty(Spy(), r2, f2, None, create_graph=False)
    assert torch.equal(seen[0][:, 0], seen[0][:, 1]) and seen[0][:, 0].std() > 0.3


def test_packed_interpolates_share_eps_within_a_group():
    class Spy(HalfSquare):
        seen = None

        def forward(self, x_hat, y=None):
            Spy.seen = x_hat.detach().clone()
            return super().forward(x_hat.reshape(-1, 4))  # pack 2 of 2-d samples

    real, fake = torch.zeros(8, 2), torch.ones(8, 2)
    _, norms = gradient_penalty(Spy(), real, fake, None, pack=2, create_graph=False)
    x = Spy.seen  # x_hat = 1 - eps: equal within each group of 2
    assert norms.shape == (4,)
    assert torch.equal(x[0::2], x[1::2]) and len(set(x[0::2, 0].tolist())) == 4


def test_penalty_is_differentiable_for_training_and_measured_only_at_lambda_zero():
    D = Critic(nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)))
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    pen, norms = obj("wgan-gp", gp_lambda=10.0).penalty(D, real, fake, None)
    assert pen.requires_grad
    pen.backward()
    assert all(float(D.net[i].weight.grad.abs().sum()) > 0 for i in (0, 2))  # the penalty trains the critic
    pen0, norms0 = obj("wgan-gp", gp_lambda=0.0).penalty(D, real, fake, None)
    assert pen0.item() == 0.0 and not pen0.requires_grad and float(norms0.mean()) > 0


def test_penalty_reads_mode_pack_and_lambda_from_the_config():
    small = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        small.weight.copy_(torch.tensor([[0.3, 0.4]]))  # |grad| = 0.5 < 1
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    two, _ = obj("wgan-gp", gp_lambda=2.0).penalty(Critic(small), real, fake, None)
    one, _ = obj("wgan-gp", gp_lambda=2.0, gp_mode="one-sided").penalty(Critic(small), real, fake, None)
    assert two.item() == pytest.approx(2.0 * 0.25, rel=1e-5) and one.item() == 0.0
    packed = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        packed.weight.fill_(1.0)  # |grad| over a group of 2 two-d samples = 2

    class Pack2(nn.Module):
        def forward(self, x, y=None):
            return packed(x.reshape(-1, 4)).squeeze(1)

    pen, norms = obj("wgan-gp", gp_lambda=1.0, pack=2, batch_size=64).penalty(Pack2(), real, fake, None)
    assert norms.shape == (4,) and pen.item() == pytest.approx(1.0, rel=1e-5)


def test_objective_registry_builds_each_class():
    for name in PAPERS:
        assert build_objective(make_config(dict(objective=name, dataset="ring8", model="toy"))).name == name
    assert build_objective(make_config(dict(objective="cwgan-gp", dataset="ring8", model="toy"))).has_penalty


def test_lsgan_generator_loss_squares_the_distance_to_one():
    assert obj("lsgan").g_loss(t(0.0)).item() == pytest.approx(0.5)  # 1/2 (0 - 1)^2, not 1/2 * 2 (0 - 1)
    assert obj("lsgan").g_loss(t(-1.0, 2.0)).item() == pytest.approx(0.5 * (4 + 1) / 2)


def test_gradient_penalty_is_differentiable_by_default_and_for_any_positive_lambda():
    D = Critic(nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)))
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    assert gradient_penalty(D, real, fake, None)[0].requires_grad  # the function's default: trainable
    assert not gradient_penalty(D, real, fake, None, create_graph=False)[0].requires_grad
    for lam in (0.5, 1.0, 10.0):
        assert obj("wgan-gp", gp_lambda=lam).penalty(D, real, fake, None)[0].requires_grad, lam


class LabelScaled(nn.Module):
    """A conditional critic D(x, y) = s_y * sum(x): |grad_x D| = s_y sqrt(dim); it needs its labels."""

    scale = torch.tensor([0.5, 2.0, 3.0])

    def forward(self, x, y=None):
        if y is None:
            raise ValueError("a conditional critic needs labels")
        return self.scale[y] * x.flatten(1).sum(1)


def test_gradient_penalty_passes_the_labels_to_a_conditional_critic():
    real, fake = torch.randn(6, 4), torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    _, norms = gradient_penalty(LabelScaled(), real, fake, y, create_graph=False)
    assert torch.allclose(norms, LabelScaled.scale[y] * 2.0)  # sqrt(4) = 2
    pen, norms = obj("cwgan-gp", gp_lambda=1.0).penalty(LabelScaled(), real, fake, y)
    assert pen.item() == pytest.approx(((LabelScaled.scale[y] * 2.0 - 1) ** 2).mean().item(), rel=1e-6)

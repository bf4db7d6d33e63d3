"""Known answers of the training science: labels reach the critic, n_critic critic updates per generator step,
feature matching is the generator's loss, and critics trained by the real trainer separate real from fake
with the right sign (the WGAN critic's Wasserstein estimate is positive and bounded by the distance of the
two sets). Everything runs on embedded data (ring8 or a one-point/one-blob set registered here), no MNIST.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark import io
from benchmark.config import make_config, resolve
from benchmark.data import DATASETS, Mixture2D, load_dataset
from benchmark.models import build_models
from benchmark.rundir import generate, load_generator
from benchmark.train import Run, train

TOY = dict(dataset="ring8", model="toy", batch_size=32, device="cpu", checkpoint_every=10_000, grad_norm_every=10_000)


# ------------------------------------------------------------------------------------------------
# test-only point sets: one blob at (2, 2) (a generator starts near the origin, far from it) and one
# exact point (every real batch is the same, so "the mean real feature" has one known value)


class _Blob(Mixture2D):
    name, std = "science-blob", 0.1

    @staticmethod
    def make_means():
        return torch.tensor([[2.0, 2.0]])


class _Point(Mixture2D):
    name, std = "science-point", 0.0

    @staticmethod
    def make_means():
        return torch.tensor([[0.5, -0.5]])


@pytest.fixture(scope="module")
def toy_sets():
    for cls in (_Blob, _Point):
        DATASETS.register(cls.name)(cls)
    yield
    for cls in (_Blob, _Point):
        DATASETS._items.pop(cls.name, None)


def capture_runs(monkeypatch):
    """Every Run the trainer builds, with its optimiser steps counted (``run.steps['d']``, ``['g']``)."""
    runs = []
    init = Run.__init__

    def counting_init(self, cfg, *a, **kw):
        init(self, cfg, *a, **kw)
        self.steps = {"d": 0, "g": 0}
        for which in ("d", "g"):
            opt = getattr(self, f"opt_{which}")
            real_step = opt.step

            def step(*args, _which=which, _real=real_step, _run=self, **kwargs):
                _run.steps[_which] += 1
                return _real(*args, **kwargs)

            opt.step = step
        runs.append(self)

    monkeypatch.setattr(Run, "__init__", counting_init)
    return runs


# ------------------------------------------------------------------------------------------------
# conditioning: the label reaches the critic and the generator


MODEL_SHAPES = [("mlp", "digits", (1, 8, 8), 10), ("dcgan", "mnist", (1, 28, 28), 10), ("toy", "ring8", (2,), 8)]


@pytest.mark.parametrize("cond_mode", ["concat", "projection"])
@pytest.mark.parametrize("model,dataset,shape,k", MODEL_SHAPES, ids=[m[0] for m in MODEL_SHAPES])
def test_conditional_critic_output_changes_when_only_the_label_changes(model, dataset, shape, k, cond_mode):
    torch.manual_seed(0)
    cfg = resolve(make_config(dict(dataset=dataset, model=model, objective="cgan", cond_mode=cond_mode)))
    G, D = build_models(cfg, shape, k)
    D.eval()
    x = torch.rand(16, *shape) * 2 - 1
    y = torch.arange(16) % k
    with torch.no_grad():
        base = D(x, y)
        for shift in range(1, k):
            other = D(x, (y + shift) % k)
            assert bool(((other - base).abs() > 1e-6).all()), f"label shift {shift} left some critic scores unchanged"
        assert torch.equal(D(x, y), base)  # same input and label: same score (the change is the label's)


@pytest.mark.parametrize("model,dataset,shape,k", MODEL_SHAPES, ids=[m[0] for m in MODEL_SHAPES])
def test_conditional_generator_output_changes_when_only_the_label_changes(model, dataset, shape, k):
    torch.manual_seed(0)
    cfg = resolve(make_config(dict(dataset=dataset, model=model, objective="cgan")))
    G, _ = build_models(cfg, shape, k)
    G.eval()
    z = torch.randn(16, cfg.z_dim)
    y = torch.arange(16) % k
    with torch.no_grad():
        a, b = G(z, y), G(z, (y + 1) % k)
    assert bool(((a - b).flatten(1).abs().amax(1) > 1e-6).all())


def test_unconditional_models_take_no_label_inputs():
    cfg = resolve(make_config(dict(dataset="digits", model="mlp", objective="gan")))
    G, D = build_models(cfg, (1, 8, 8), 10)
    assert D.body[0].in_features == 64 and G.net[0].in_features == cfg.z_dim
    ccfg = cfg.replace(conditional=True)
    G, D = build_models(ccfg, (1, 8, 8), 10)
    assert D.body[0].in_features == 64 + 10 and G.net[0].in_features == cfg.z_dim + 10


@pytest.mark.parametrize("cond_mode", ["concat", "projection"])
def test_conditional_training_puts_each_label_on_its_own_mode(tmp_path, cond_mode):
    """cGAN on ring8 (label = mode index): after 200 steps G(z, k) lands nearest to mode k far above chance (1/8)."""
    cfg = make_config(
        dict(TOY, objective="cgan", cond_mode=cond_mode, steps=200, batch_size=64, lr_g=1e-3, lr_d=1e-3, seed=0)
    )
    train(cfg, tmp_path / "run", progress=False)
    G, gcfg, _ = load_generator(tmp_path / "run")
    x, y = generate(G, gcfg, 800)
    nearest = torch.cdist(x, load_dataset("ring8").means).argmin(1)
    assert (nearest == y).float().mean().item() >= 0.6


# ------------------------------------------------------------------------------------------------
# the n_critic loop


@pytest.mark.parametrize(
    "objective,n_critic,expected",
    [
        ("gan", None, 1),
        ("gan", 3, 3),
        ("wgan-gp", None, 5),
        ("wgan", 2, 2),
        ("lsgan", 4, 4),
    ],
)
def test_critic_updates_per_generator_step_equal_n_critic(tmp_path, monkeypatch, objective, n_critic, expected):
    runs = capture_runs(monkeypatch)
    steps = 3
    kw = dict(TOY, objective=objective, steps=steps)
    if n_critic is not None:
        kw["n_critic"] = n_critic
    train(make_config(kw), tmp_path / "run", progress=False)
    (run,) = runs
    assert run.cfg.n_critic == expected
    assert run.steps == {"d": steps * expected, "g": steps}


# ------------------------------------------------------------------------------------------------
# feature matching


def test_feature_matching_generator_loss_is_the_feature_loss(tmp_path, monkeypatch, toy_sets):
    """With one exact real point p, G's loss must be mean_j (mean_i f_j(G(z_i)) - f_j(p))^2, computed here from
    D.features by hand; its value is logged and its gradient is what the generator's optimiser steps on."""
    init = Run.__init__
    seen = {}

    def spying_init(self, cfg, *a, **kw):
        init(self, cfg, *a, **kw)
        G, D = self.G, self.D
        g_forward, g_step = G.forward, self.opt_g.step

        def forward(z, y=None):
            if torch.is_grad_enabled():
                seen["z"] = z.detach().clone()  # the generator step's noise
            return g_forward(z, y)

        def step(*args, **kwargs):
            point = torch.tensor([[0.5, -0.5]])
            f_fake = D.features(G(seen["z"])).mean(0)
            f_real = D.features(point).mean(0)
            by_hand = ((f_fake - f_real) ** 2).mean()
            params = [p for p in G.parameters()]
            grads = torch.autograd.grad(by_hand, params)
            seen["loss"] = by_hand.item()
            seen["ns_loss"] = F.softplus(-D(G(seen["z"]))).mean().item()
            seen["grads_match"] = all(torch.allclose(p.grad, g, rtol=1e-4, atol=1e-7) for p, g in zip(params, grads))
            return g_step(*args, **kwargs)

        G.forward = forward
        self.opt_g.step = step

    monkeypatch.setattr(Run, "__init__", spying_init)
    cfg = make_config(dict(TOY, dataset="science-point", objective="gan", feature_matching=True, steps=1))
    train(cfg, tmp_path / "run", progress=False)
    (rec,) = io.read_jsonl(tmp_path / "run" / "log.jsonl")
    assert rec["g_loss"] == pytest.approx(seen["loss"], rel=1e-5)
    assert seen["grads_match"]
    assert abs(seen["loss"] - seen["ns_loss"]) > 1e-3  # not the objective's own generator loss


# ------------------------------------------------------------------------------------------------
# critics trained by the trainer's own critic step: the sign of every objective


def critic_gap(objective, **kw):
    """Train only the critic (G fixed, near the origin) for 100 steps on ring8; return mean D(real), D(fake) and
    the two bounds of W1: |mean real - mean fake| <= W1 <= E|x - y|."""
    run = Run(make_config(dict(TOY, objective=objective, batch_size=64, lr_d=1e-3, seed=0, **kw)))
    gen = torch.Generator().manual_seed(0)
    for _ in range(100):
        run.critic_step(gen)
    real, _ = run.data.sample(512, gen)
    with torch.no_grad():
        fake = run.G(torch.randn(512, run.cfg.z_dim))
        d_real, d_fake = run.D(real).mean().item(), run.D(fake).mean().item()
    lo, hi = (real.mean(0) - fake.mean(0)).norm().item(), torch.cdist(real, fake).mean().item()
    return d_real, d_fake, lo, hi


@pytest.mark.parametrize("objective", ["gan", "gan-minimax"])
def test_trained_gan_critic_calls_real_real_and_fake_fake(objective):
    d_real, d_fake, _, _ = critic_gap(objective)
    assert torch.sigmoid(torch.tensor(d_real)) > 0.9 and torch.sigmoid(torch.tensor(d_fake)) < 0.1


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_trained_lsgan_critic_reaches_its_targets(smoothing):
    d_real, d_fake, _, _ = critic_gap("lsgan", label_smoothing=smoothing)
    assert d_real == pytest.approx(1.0 - smoothing, abs=0.05) and d_fake == pytest.approx(0.0, abs=0.05)


def test_trained_wgan_gp_critic_estimates_a_positive_distance_below_the_coupling_bound():
    d_real, d_fake, lo, hi = critic_gap("wgan-gp")
    w = d_real - d_fake
    assert 0.5 < w <= 1.05 * hi  # ring of radius 1 vs a generator near 0: W1 ~ 0.9; a 1-Lipschitz critic <= E|x-y|
    assert hi < 1.1 and lo < 0.2


def test_trained_clipped_wgan_critic_estimate_is_positive():
    d_real, d_fake, _, _ = critic_gap("wgan")
    assert d_real - d_fake > 1e-3  # clipping at 0.01 keeps it small, but its sign is the objective's


def test_wgan_gp_training_moves_the_generator_to_the_data(tmp_path, toy_sets):
    """100 steps of WGAN-GP on a blob at (2, 2): the generated mean comes closer, and the critic's Wasserstein
    estimate stays bounded (a flipped critic or generator sign sends both off to the thousands)."""
    out = tmp_path / "run"
    cfg = make_config(
        dict(
            TOY,
            dataset="science-blob",
            objective="wgan-gp",
            steps=100,
            batch_size=64,
            lr_g=1e-3,
            lr_d=1e-3,
            seed=1,
            checkpoint_at=[1, 100],
        )
    )
    train(cfg, out, progress=False)
    target = torch.tensor([2.0, 2.0])
    dist = []
    for step in (1, 100):
        G, gcfg, _ = load_generator(out, step)
        dist.append((generate(G, gcfg, 2000)[0].mean(0) - target).norm().item())
    assert dist[1] < 0.75 * dist[0]
    w = [r["wdist"] for r in io.read_jsonl(out / "log.jsonl")]
    assert max(abs(v) for v in w) < 10 and all(math.isfinite(v) for v in w)

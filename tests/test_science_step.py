"""The trainer's critic step (``Run.critic_step``) replayed by hand: the same batches through a copy of the critic,
the objective's loss plus its penalty, one optimiser step each, clipping, the Wasserstein estimate; fused and
unfused critic calls agree; instance noise has the configured size. Kills the mutants of the hot path."""

from __future__ import annotations

import copy

import pytest
import torch

from benchmark.config import make_config
from benchmark.objectives import gradient_penalty
from benchmark.train import Run, make_optimizer

TOY = dict(dataset="ring8", model="toy", batch_size=32, device="cpu", seed=0, lr_d=1e-2)


def replay(run, D0, steps=2):
    """Run ``steps`` critic steps; replay each by hand on a copy of the critic; return both critics and records."""
    D = copy.deepcopy(D0)
    opt = make_optimizer(D.parameters(), run.cfg, "d")
    obj = run.objective
    gen = torch.Generator().manual_seed(0)
    recs = []
    for _ in range(steps):
        rng = torch.get_rng_state()
        loss, pen, wdist, real, fake, y = run.critic_step(gen)
        torch.set_rng_state(rng)
        torch.randn(run.cfg.batch_size, run.cfg.z_dim)  # the step's generator noise, drawn before the penalty's
        if run.fuse:  # one critic call on real and fake, as the trainer makes (same float sums)
            scores = D(torch.cat([real, fake]), None if y is None else torch.cat([y, y]))
            d_real, d_fake = scores[: len(real) // run.cfg.pack], scores[len(real) // run.cfg.pack :]
        else:
            d_real, d_fake = D(real, y), D(fake, y)
        want = obj.d_loss(d_real, d_fake)
        p = None
        if obj.has_penalty:
            p = gradient_penalty(D, real, fake, y, run.cfg.pack, obj.one_sided)
            want = want + obj.gp_lambda * p[0]
        opt.zero_grad(set_to_none=True)
        want.backward()
        opt.step()
        obj.after_critic_step(D)
        recs.append((loss, pen, wdist, want.detach(), p, (d_real.mean() - d_fake.mean()).detach()))
    return D, recs


@pytest.mark.parametrize(
    "extra",
    [
        dict(objective="gan"),
        dict(objective="lsgan", label_smoothing=0.2),
        dict(objective="wgan", clip=0.02),
        dict(objective="wgan-gp", gp_lambda=3.0),
        dict(objective="wgan-gp", gp_mode="one-sided", pack=2),
        dict(objective="cgan", cond_mode="projection"),
        dict(objective="cwgan-gp"),  # the penalty's critic calls need the labels too
        dict(objective="gan", critic_norm="batch"),  # not fused: batch statistics must not mix real and fake
    ],
    ids=lambda d: "-".join(f"{k}={v}" for k, v in d.items()),
)
def test_critic_step_is_one_optimiser_step_on_the_objectives_loss(extra):
    run = Run(make_config(dict(TOY, **extra)))
    D, recs = replay(run, copy.deepcopy(run.D))
    for loss, pen, wdist, want, p, w in recs:
        assert loss.item() == pytest.approx(want.item(), rel=1e-5, abs=1e-7)
        assert not loss.requires_grad
        if run.objective.has_penalty:
            assert pen[0].item() == pytest.approx(run.objective.gp_lambda * p[0].item(), rel=1e-5, abs=1e-8)
            assert torch.allclose(pen[1], p[1], rtol=1e-5) and not pen[0].requires_grad
        else:
            assert pen is None
        if run.objective.wasserstein:
            assert wdist.item() == pytest.approx(w.item(), rel=1e-5, abs=1e-7) and not wdist.requires_grad
        else:
            assert wdist is None
    for a, b in zip(run.D.state_dict().values(), D.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    if run.cfg.objective == "wgan":
        assert max(p.abs().max().item() for p in run.D.parameters()) <= run.cfg.clip


def test_fused_and_separate_critic_calls_agree():
    run = Run(make_config(dict(TOY, objective="cgan")))
    assert run.fuse
    twin = copy.deepcopy(run)
    twin.fuse = False
    gen_a, gen_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    torch.manual_seed(5)
    a = run.critic_step(gen_a)
    torch.manual_seed(5)
    b = twin.critic_step(gen_b)
    assert torch.equal(a[3], b[3]) and torch.equal(a[5], b[5])  # the same batches
    assert a[0].item() == pytest.approx(b[0].item(), rel=1e-6)
    for x, y in zip(run.D.parameters(), twin.D.parameters()):  # the gradients the optimiser stepped on
        assert torch.allclose(x.grad, y.grad, rtol=1e-4, atol=1e-7)


def test_the_critic_sees_labels_only_when_conditional():
    run = Run(make_config(dict(TOY, objective="cgan")))
    *_, y = run.critic_step(torch.Generator().manual_seed(0))
    assert y is not None and y.shape == (32,) and int(y.max()) < 8
    run = Run(make_config(dict(TOY, objective="gan")))
    *_, y = run.critic_step(torch.Generator().manual_seed(0))
    assert y is None


@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_instance_noise_has_the_requested_size_on_real_and_fake(sigma):
    run = Run(make_config(dict(TOY, objective="gan", batch_size=4000)))
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    rng = torch.get_rng_state()
    *_, real, fake, _ = run.critic_step(gen, sigma)
    gen.set_state(state)
    clean, _ = run.data.sample(4000, gen)
    torch.set_rng_state(rng)
    with torch.no_grad():
        g = run.G(torch.randn(4000, run.cfg.z_dim))
    assert (real - clean).std().item() == pytest.approx(sigma, abs=0.02)
    if sigma == 0:
        assert torch.equal(real, clean)
    else:
        assert (fake - g).std().item() == pytest.approx(sigma, abs=0.02)

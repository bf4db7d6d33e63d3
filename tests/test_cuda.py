"""CUDA: a resumed run restores the CUDA random state (bit-identical to an uninterrupted run), and a run trained
on the GPU is evaluated on the GPU. Marked ``cuda``; skipped where no GPU is present (run on the accelerator
machine with ``pytest -m cuda tests/test_cuda.py``)."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark import io
from benchmark.config import make_config
from benchmark.rundir import list_checkpoints, load_checkpoint, rng_state, set_rng_state
from benchmark.train import Run, train

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]

RUN = dict(
    dataset="ring8",
    model="toy",
    objective="wgan-gp",
    steps=10,
    checkpoint_every=4,
    batch_size=32,
    device="cuda",
    deterministic=True,
    seed=7,
    instance_noise=0.1,
    grad_norm_every=3,
)


class Interrupted(Exception):
    pass


def _interrupt_at(monkeypatch, g_steps):
    """The next Run stops (like a kill) when its generator has taken ``g_steps`` steps."""
    init = Run.__init__

    def stopping_init(self, cfg, *a, **kw):
        init(self, cfg, *a, **kw)
        real_step, count = self.opt_g.step, [0]

        def step(*args, **kwargs):
            if count[0] == g_steps:
                raise Interrupted()
            count[0] += 1
            return real_step(*args, **kwargs)

        self.opt_g.step = step

    monkeypatch.setattr(Run, "__init__", stopping_init)


def _state(out):
    return load_checkpoint(out / "checkpoints" / "last.pt")


def test_cuda_rng_state_round_trips():
    gen = torch.Generator().manual_seed(0)
    torch.cuda.manual_seed_all(3)
    saved = rng_state(gen)
    a = torch.randn(8, device="cuda")
    torch.randn(100, device="cuda")  # move on
    set_rng_state(saved, gen)
    b = torch.randn(8, device="cuda")
    assert torch.equal(a, b)


def test_resume_on_cuda_is_bit_identical(tmp_path, monkeypatch):
    ref = tmp_path / "ref"
    train(make_config(RUN), ref, progress=False)
    again = tmp_path / "again"
    train(make_config(RUN), again, progress=False)
    assert torch.equal(_state(ref)["G"]["net.0.weight"], _state(again)["G"]["net.0.weight"]), (
        "two uninterrupted CUDA runs differ: the bit-identity check below would mean nothing"
    )

    out = tmp_path / "resumed"
    with monkeypatch.context() as m:
        _interrupt_at(m, 6)  # after the step-4 checkpoint, before the step-8 one
        with pytest.raises(Interrupted):
            train(make_config(RUN), out, progress=False)
    assert _state(out)["step"] == 4 and not (out / "done.json").exists()
    torch.randn(1000, device="cuda")  # the interrupted process's CUDA stream has moved on
    train(make_config(RUN), out, progress=False)

    a, b = _state(ref), _state(out)
    for part in ("G", "D"):
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k} differs after a CUDA resume"
    strip = lambda log: [{k: v for k, v in r.items() if k != "sec"} for r in log]  # noqa: E731
    assert strip(io.read_jsonl(ref / "log.jsonl")) == strip(io.read_jsonl(out / "log.jsonl"))
    torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("dataset,model,metrics", [("ring8", "toy", None), ("digits", "mlp", ["fid", "coverage"])])
def test_cuda_train_then_evaluate(tmp_path, dataset, model, metrics):
    from benchmark.evaluation.runs import evaluate_run

    out = tmp_path / "run"
    train(
        make_config(
            dict(
                dataset=dataset, model=model, objective="gan", steps=4, checkpoint_every=2, batch_size=32, device="cuda"
            )
        ),
        out,
        progress=False,
    )
    assert io.read_json(out / "run.json")["device"].startswith("cuda")
    assert list_checkpoints(out) == [2, 4]
    recs = evaluate_run(
        out,
        metrics=metrics,
        num_samples=300 if metrics else 2500,
        device="cuda",
        progress=False,
        cache_root=tmp_path / "cache",
    )
    assert [r["step"] for r in recs] == [2, 4]
    for r in recs:
        finite = [v for v in r["metrics"].values() if math.isfinite(v)]
        assert finite, r["metrics"]


def test_gradient_penalty_on_cuda_tensors():
    from benchmark.objectives import gradient_penalty

    D = torch.nn.Linear(3, 1).cuda()
    real, fake = torch.randn(8, 3, device="cuda"), torch.randn(8, 3, device="cuda")
    gp, norms = gradient_penalty(lambda x, y: D(x).squeeze(1), real, fake, None)
    assert gp.device.type == "cuda" and torch.allclose(norms, D.weight.norm().expand(8), atol=1e-5)

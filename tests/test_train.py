"""The training loop: every config branch runs, logs what it should, resumes bit-identically."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from benchmark import io
from benchmark.config import make_config
from benchmark.errors import TrainingDiverged, UserError
from benchmark.train import generate, list_checkpoints, load_generator, train

REPO = Path(__file__).resolve().parents[1]
TOY = dict(dataset="ring8", model="toy", steps=6, checkpoint_every=3, batch_size=16, grad_norm_every=2, device="cpu")
DIGITS = dict(dataset="digits", model="mlp", steps=4, checkpoint_every=2, batch_size=16, grad_norm_every=2, device="cpu")


def run(tmp_path, **kw):
    cfg = make_config(kw)
    out = tmp_path / "run"
    summary = train(cfg, out, progress=False)
    return out, summary, io.read_jsonl(out / "log.jsonl")


@pytest.mark.parametrize("objective", ["gan", "gan-minimax", "lsgan", "wgan", "wgan-gp",
                                       "cgan", "cgan-minimax", "clsgan", "cwgan", "cwgan-gp"])
@pytest.mark.parametrize("base", ["toy", "digits"])
def test_every_objective_trains_and_logs(tmp_path, objective, base):
    out, summary, log = run(tmp_path, objective=objective, **(TOY if base == "toy" else DIGITS))
    steps = summary["steps"]
    assert [r["step"] for r in log] == list(range(1, steps + 1))
    for r in log:
        assert all(torch.isfinite(torch.tensor(r[k])) for k in ("d_loss", "g_loss", "sec"))
    assert ("wdist" in log[-1]) == objective.endswith(("wgan", "wgan-gp"))
    assert ("gp" in log[0]) == objective.endswith("wgan-gp")
    assert "grad_norm_mean" in log[1] and "grad_norm_std" in log[1]  # every 2nd step without a GP
    every = TOY["checkpoint_every"] if base == "toy" else DIGITS["checkpoint_every"]
    assert list_checkpoints(out) == list(range(every, steps + 1, every))
    assert (out / "samples" / f"step_{steps:06d}.png").stat().st_size > 0
    G, cfg, step = load_generator(out)
    x, y = generate(G, cfg, 25, seed=1)
    assert step == steps and x.shape[1:] == G.shape and x.abs().max() <= 1
    assert (y is not None) == cfg.conditional
    if cfg.conditional:
        assert y.tolist() == [i % G.num_classes for i in range(25)]


@pytest.mark.parametrize("extra", [
    dict(minibatch_disc=True), dict(feature_matching=True), dict(label_smoothing=0.1, objective="gan"),
    dict(instance_noise=0.1), dict(pack=2), dict(pack=4, objective="gan"), dict(critic_norm="batch"),
    dict(critic_norm="layer"), dict(cond_mode="projection", objective="cwgan-gp"),
    dict(cond_mode="projection", objective="cgan", minibatch_disc=True), dict(gp_mode="one-sided"),
    dict(gp_lambda=0.0), dict(deterministic=True), dict(epochs=0.2), dict(optimizer="rmsprop", objective="gan"),
])
def test_remedies_and_options_compose(tmp_path, extra):
    kw = {**DIGITS, **extra}
    out, summary, log = run(tmp_path, **kw)
    if "epochs" in extra:
        assert summary["steps"] == -(-int(0.2 * 1500) // 16)  # ceil(epochs * N / batch)
    assert len(log) == summary["steps"]
    assert all(torch.isfinite(torch.tensor(r["d_loss"])) for r in log)


@pytest.mark.parametrize("extra", [dict(), dict(critic_norm="instance"), dict(critic_norm="batch", pack=2),
                                   dict(objective="cgan", cond_mode="concat"), dict(minibatch_disc=True)])
def test_dcgan_on_mnist(tmp_path, mnist_data_root, extra):
    kw = dict(dataset="mnist", model="dcgan", data_root=mnist_data_root, steps=2, checkpoint_every=2,
              batch_size=16, n_critic=1, device="cpu", **extra)
    out, summary, log = run(tmp_path, **kw)
    G, cfg, _ = load_generator(out)
    assert generate(G, cfg, 4)[0].shape == (4, 1, 28, 28)


def test_dcgan_reads_channels_from_the_data(tmp_path, mnist_data_root):
    out, _, _ = run(tmp_path, dataset="stacked-mnist", model="dcgan", data_root=mnist_data_root, steps=1,
                    batch_size=8, n_critic=1, device="cpu", objective="gan", pack=2)
    G, cfg, _ = load_generator(out)
    assert generate(G, cfg, 2)[0].shape == (2, 3, 28, 28)


def test_wgan_clipping_and_config_written(tmp_path):
    out, _, _ = run(tmp_path, objective="wgan", clip=0.005, **{k: v for k, v in TOY.items()})
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert max(v.abs().max().item() for v in state["D"].values() if v.is_floating_point()) <= 0.005
    written = make_config(yaml.safe_load((out / "config.yaml").read_text()))
    assert written.optimizer == "rmsprop" and written.lr_d == 5e-5 and written.n_critic == 5
    meta = io.read_json(out / "run.json")
    assert meta["torch"] == torch.__version__ and meta["git_commit"]


def test_finished_run_is_not_retrained_and_other_config_is_refused(tmp_path):
    out, s1, _ = run(tmp_path, **TOY)
    mtime = (out / "checkpoints" / "last.pt").stat().st_mtime_ns
    s2 = train(make_config(TOY), out, progress=False)
    assert s2 == s1 and (out / "checkpoints" / "last.pt").stat().st_mtime_ns == mtime
    with pytest.raises(UserError, match="another config"):
        train(make_config({**TOY, "gp_lambda": 1.0}), out, progress=False)


def test_divergence_is_reported(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    with pytest.raises(TrainingDiverged, match="non-finite"):
        run(tmp_path, **{**DIGITS, "model": "helpers:nan_pair"})


def _state(path):
    return torch.load(path, weights_only=False, map_location="cpu")


def _assert_same_state(a, b):
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs"
    assert a["step"] == b["step"]


def _cli(*args):
    return [sys.executable, "-m", "benchmark", *args]


def test_kill_and_resume_is_bit_identical(tmp_path):
    args = ["train", "--dataset", "digits", "--model", "mlp", "--objective", "wgan-gp", "--steps", "60",
            "--checkpoint-every", "10", "--batch-size", "32", "--seed", "3", "--device", "cpu",
            "--num-threads", "1", "--log-flush-every", "3", "--instance-noise", "0.1", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ref = tmp_path / "ref"
    subprocess.run(_cli(*args, "--out", str(ref)), check=True, env=env, cwd=REPO)

    out = tmp_path / "killed"
    p = subprocess.Popen(_cli(*args, "--out", str(out)), env=env, cwd=REPO)
    deadline = time.time() + 120
    while not (out / "checkpoints" / "G_000020.pt").exists():
        assert p.poll() is None and time.time() < deadline, "run ended before it could be killed"
        time.sleep(0.02)
    time.sleep(0.05)  # somewhere between checkpoints, possibly mid-write
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (out / "done.json").exists()
    subprocess.run(_cli(*args, "--out", str(out)), check=True, env=env, cwd=REPO)

    _assert_same_state(_state(ref / "checkpoints" / "last.pt"), _state(out / "checkpoints" / "last.pt"))
    for s in list_checkpoints(ref):
        a, b = _state(ref / "checkpoints" / f"G_{s:06d}.pt"), _state(out / "checkpoints" / f"G_{s:06d}.pt")
        assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])
    strip = lambda log: [{k: v for k, v in r.items() if k != "sec"} for r in log]
    assert strip(io.read_jsonl(ref / "log.jsonl")) == strip(io.read_jsonl(out / "log.jsonl"))

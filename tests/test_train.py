"""The training loop: every config branch runs, logs what it should, resumes bit-identically."""

import os
import pickle
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from benchmark import io, rundir
from benchmark.cli import main
from benchmark.config import make_config
from benchmark.errors import TrainingDiverged, UserError
from benchmark.rundir import generate, list_checkpoints, load_generator
from benchmark.train import train
from helpers import one_line_error

REPO = Path(__file__).resolve().parents[1]
TOY = dict(dataset="ring8", model="toy", steps=6, checkpoint_every=3, batch_size=16, grad_norm_every=2, device="cpu")
DIGITS = dict(
    dataset="digits", model="mlp", steps=4, checkpoint_every=2, batch_size=16, grad_norm_every=2, device="cpu"
)


def run(tmp_path, **kw):
    cfg = make_config(kw)
    out = tmp_path / "run"
    summary = train(cfg, out, progress=False)
    return out, summary, io.read_jsonl(out / "log.jsonl")


@pytest.mark.parametrize(
    "objective",
    ["gan", "gan-minimax", "lsgan", "wgan", "wgan-gp", "cgan", "cgan-minimax", "clsgan", "cwgan", "cwgan-gp"],
)
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


@pytest.mark.parametrize(
    "extra",
    [
        dict(minibatch_disc=True),
        dict(feature_matching=True),
        dict(label_smoothing=0.1, objective="gan"),
        dict(instance_noise=0.1),
        dict(pack=2),
        dict(pack=4, objective="gan"),
        dict(critic_norm="batch"),
        dict(critic_norm="layer"),
        dict(cond_mode="projection", objective="cwgan-gp"),
        dict(cond_mode="projection", objective="cgan", minibatch_disc=True),
        dict(gp_mode="one-sided"),
        dict(gp_lambda=0.0),
        dict(deterministic=True),
        dict(epochs=0.2),
        dict(optimizer="rmsprop", objective="gan"),
    ],
)
def test_remedies_and_options_compose(tmp_path, extra):
    kw = {**DIGITS, **extra}
    out, summary, log = run(tmp_path, **kw)
    if "epochs" in extra:
        assert summary["steps"] == -(-int(0.2 * 1500) // 16)  # ceil(epochs * N / batch)
    assert len(log) == summary["steps"]
    assert all(torch.isfinite(torch.tensor(r["d_loss"])) for r in log)


@pytest.mark.parametrize(
    "extra",
    [
        dict(),
        dict(critic_norm="instance"),
        dict(critic_norm="batch", pack=2),
        dict(objective="cgan", cond_mode="concat"),
        dict(minibatch_disc=True),
    ],
)
def test_dcgan_on_mnist(tmp_path, mnist_data_root, extra):
    kw = dict(
        dataset="mnist",
        model="dcgan",
        data_root=mnist_data_root,
        steps=2,
        checkpoint_every=2,
        batch_size=16,
        n_critic=1,
        device="cpu",
        **extra,
    )
    out, summary, log = run(tmp_path, **kw)
    G, cfg, _ = load_generator(out)
    assert generate(G, cfg, 4)[0].shape == (4, 1, 28, 28)


def test_dcgan_reads_channels_from_the_data(tmp_path, mnist_data_root):
    out, _, _ = run(
        tmp_path,
        dataset="stacked-mnist",
        model="dcgan",
        data_root=mnist_data_root,
        steps=1,
        batch_size=8,
        n_critic=1,
        device="cpu",
        objective="gan",
        pack=2,
    )
    G, cfg, _ = load_generator(out)
    assert generate(G, cfg, 2)[0].shape == (2, 3, 28, 28)


def test_wgan_clipping_and_config_written(tmp_path):
    out, _, _ = run(tmp_path, objective="wgan", clip=0.005, **{k: v for k, v in TOY.items()})
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
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
    return torch.load(path, weights_only=True, map_location="cpu")


def _assert_same_state(a, b):
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs"
    assert a["step"] == b["step"]


def _cli(*args):
    return [sys.executable, "-m", "benchmark", *args]


def test_linear_lr_decay_sets_each_step_s_rate_to_lr_times_one_minus_s_over_steps(tmp_path):
    """Step s (0-based) of S trains at lr (1 - s/S): the last of 4 steps at a quarter of each rate, in both
    optimisers' saved state; without the key the rates stay as set."""
    base = {**TOY, "steps": 4, "lr_g": 1e-3, "lr_d": 4e-4}
    train(make_config({**base, "lr_decay": "linear"}), tmp_path / "decay", progress=False)
    train(make_config(base), tmp_path / "flat", progress=False)
    for name, factor in (("decay", 0.25), ("flat", 1.0)):
        ck = _state(tmp_path / name / "checkpoints" / "last.pt")
        for opt, lr in (("opt_g", 1e-3), ("opt_d", 4e-4)):
            assert ck[opt]["param_groups"][0]["lr"] == pytest.approx(lr * factor, rel=1e-12), (name, opt)


def test_kill_and_resume_is_bit_identical(tmp_path):
    args = [
        "train",
        "--dataset",
        "digits",
        "--model",
        "mlp",
        "--objective",
        "wgan-gp",
        "--steps",
        "60",
        "--checkpoint-every",
        "10",
        "--batch-size",
        "32",
        "--seed",
        "3",
        "--device",
        "cpu",
        "--num-threads",
        "1",
        "--log-flush-every",
        "3",
        "--instance-noise",
        "0.1",
        "--lr-decay",
        "linear",  # step-dependent rates: a resumed run must set the same ones
        "--quiet",
    ]
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

    def strip(log):
        return [{k: v for k, v in r.items() if k != "sec"} for r in log]

    assert strip(io.read_jsonl(ref / "log.jsonl")) == strip(io.read_jsonl(out / "log.jsonl"))
    assert not list(out.rglob(".*.tmp*")), "a temporary file of a killed write survived the resumed run"


# ------------------------------------------------------------------------------------------------
# run directories that know themselves: safe checkpoints, the right run's checkpoint, one process


class _Planted:
    """Unpickling this creates the marker file: the proof that code from a checkpoint ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _unfinished_toy_run(tmp_path, name="run", **kw):
    out = tmp_path / name
    train(make_config({**TOY, **kw}), out, progress=False)
    (out / rundir.DONE_FILE).unlink()
    return out


def _toy_argv(out, **kw):
    cfg = {**TOY, **kw}
    argv = ["train", "--quiet", "--out", str(out)]
    for k, v in cfg.items():
        argv += ["--" + k.replace("_", "-"), str(v)]
    return argv


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch, about the planted raw pickle
@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_planted_pickle_in_a_checkpoint_never_runs(tmp_path, capsys, how):
    out = _unfinished_toy_run(tmp_path)
    marker = tmp_path / "pwned"
    for victim in (rundir.last_checkpoint_path(out), rundir.generator_path(out, TOY["steps"])):
        if how == "torch.save":
            torch.save({"G": _Planted(marker), "step": 3}, victim)
        else:
            victim.write_bytes(pickle.dumps(_Planted(marker)))
    one_line_error(capsys, _toy_argv(out), "last.pt", "never unpickles", "delete it")
    with pytest.raises(UserError, match="never unpickles"):
        load_generator(out)
    assert not marker.exists(), "unpickling a checkpoint ran planted code"


def test_rng_states_roundtrip_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1), np.random.randn(3)  # leave a cached gaussian in both (part of the state)
    gen = torch.Generator().manual_seed(4)
    rundir.save_checkpoint(tmp_path / "c.pt", {"rng": rundir.rng_state(gen), "step": 0})

    def draw():  # every stream a run draws from (CUDA's too, where there is a GPU)
        cuda = torch.rand(2, device="cuda").tolist() if torch.cuda.is_available() else None
        return (
            random.random(),
            random.gauss(0, 1),
            np.random.randn(3).tolist(),
            torch.rand(2).tolist(),
            torch.rand(2, generator=gen).tolist(),
            cuda,
        )

    first = draw()
    random.seed(9), np.random.seed(9), torch.manual_seed(9), gen.manual_seed(9)  # (also reseeds CUDA)
    rundir.set_rng_state(rundir.load_checkpoint(tmp_path / "c.pt")["rng"], gen)
    assert draw() == first


@pytest.mark.parametrize("other", [dict(objective="gan"), dict(z_dim=3), dict(gp_lambda=1.0)])
def test_resume_refuses_another_runs_checkpoint(tmp_path, capsys, other):
    out = _unfinished_toy_run(tmp_path, "mine", objective="wgan-gp")
    theirs = _unfinished_toy_run(tmp_path, "theirs", **{"objective": "wgan-gp", **other})
    before = (out / rundir.LOG_FILE).read_bytes()
    rundir.last_checkpoint_path(out).write_bytes(rundir.last_checkpoint_path(theirs).read_bytes())
    key = next(iter(other))
    one_line_error(capsys, _toy_argv(out, objective="wgan-gp"), "belongs to another run", f"{key}:", "delete it")
    assert (out / rundir.LOG_FILE).read_bytes() == before and not (out / rundir.DONE_FILE).exists()


def test_a_held_run_directory_stops_a_second_trainer(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom benchmark.rundir import run_lock\n"
            "with run_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)\n",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        one_line_error(capsys, _toy_argv(out), "in use by process", str(holder.pid))
        assert [p.name for p in out.iterdir()] == [rundir.LOCK_FILE]  # nothing written
    finally:
        holder.kill()
        holder.wait()
    assert main(_toy_argv(out)) == 0  # the lock died with its holder
    assert (out / rundir.DONE_FILE).exists()


def test_stale_temporaries_are_removed_at_start(tmp_path):
    out = _unfinished_toy_run(tmp_path)
    stale = [
        out / ".log.1a2b3c4d.tmp.jsonl",
        out / rundir.CHECKPOINT_DIR / ".last.0f0f0f0f.tmp.pt",
        out / rundir.SAMPLES_DIR / ".step_000006.deadbeef.tmp.png",
    ]
    for p in stale:
        p.write_bytes(b"half a file")
    keep = out / "notes.tmp.txt"  # not ours (no leading dot): left alone
    keep.write_text("mine")
    train(make_config(TOY), out, progress=False)
    assert not any(p.exists() for p in stale) and keep.exists()


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077], ids=oct)
def test_written_files_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        io.write_json(tmp_path / "a.json", {"x": 1})
        io.torch_save({"x": torch.zeros(1)}, tmp_path / "b.pt")
        io.append_jsonl(tmp_path / "c.jsonl", [{"x": 1}])
        out = tmp_path / "run"
        train(make_config(TOY), out, progress=False)
    finally:
        os.umask(old)
    files = [
        tmp_path / "a.json",
        tmp_path / "b.pt",
        tmp_path / "c.jsonl",
        out / rundir.CONFIG_FILE,
        out / rundir.DONE_FILE,
        rundir.last_checkpoint_path(out),
        out / rundir.SAMPLES_DIR / "step_000006.png",
    ]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f


def test_a_generator_file_as_last_pt_is_refused(tmp_path, capsys):
    out = _unfinished_toy_run(tmp_path)
    rundir.last_checkpoint_path(out).write_bytes(rundir.generator_path(out, 3).read_bytes())
    one_line_error(capsys, _toy_argv(out), "last.pt", "not a resumable ganbench checkpoint", "delete it")


@pytest.mark.parametrize("n,c,nrow", [(64, 1, 8), (10, 1, 3), (1, 1, 1), (7, 3, 2), (2, 3, 8)])
def test_sample_grid_has_torchvisions_pixels(tmp_path, n, c, nrow):
    """The grid is drawn without torchvision; its pixels are those of torchvision's save_image (an independent
    implementation): gaps, a last row cut short, a single image, RGB (stacked-mnist), values beyond [-1, 1]."""
    from PIL import Image
    from torchvision.utils import save_image

    from benchmark.train import image_grid

    x = torch.randn(n, c, 28, 28, generator=torch.Generator().manual_seed(n)) * 1.5
    save_image(x, tmp_path / "tv.png", nrow=nrow, normalize=True, value_range=(-1, 1))
    assert np.array_equal(image_grid(x, nrow), np.asarray(Image.open(tmp_path / "tv.png")))


# ---- the critic call: real and fake in one batch only where no layer mixes a batch -------------------------


class BatchCentred(torch.nn.Module):
    """A layer a user might write that mixes the samples of a batch (no class ganbench could recognise)."""

    def forward(self, h):
        return h - h.mean(0, keepdim=True)


def centred_pair(cfg, shape, num_classes):
    """A user's pair ('test_train:centred_pair'): the toy pair, its critic's features centred over the batch, and
    its first layer frozen by its author."""
    from benchmark.models import toy

    G, D = toy(cfg, shape, num_classes)
    D.body = torch.nn.Sequential(BatchCentred(), *D.body)
    D.body[1].weight.requires_grad_(False)
    return G, D


@pytest.mark.parametrize(
    "extra,fused",
    [
        (dict(objective="gan"), True),
        (dict(objective="gan", critic_norm="layer"), True),
        (dict(objective="gan", pack=4), True),
        (dict(objective="cgan", cond_mode="projection"), True),
        (dict(objective="gan", critic_norm="batch"), False),
        (dict(objective="gan", minibatch_disc=True), False),
        (dict(objective="gan", model="test_train:centred_pair"), False),
        (dict(dataset="mnist", model="dcgan", objective="gan", critic_norm="batch"), False),
        (dict(dataset="mnist", model="dcgan", objective="gan", critic_norm="instance"), True),
    ],
    ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else str(v),
)
def test_critic_loss_is_that_of_separate_calls_where_a_layer_mixes_the_batch(request, extra, fused):
    """Where batch statistics are part of the critic, the loss must be that of D(real) and D(fake) called apart
    (one call on both would mix their statistics); elsewhere one call gives the same loss in less time."""
    import copy

    from benchmark.train import Run

    sys.path.insert(0, str(Path(__file__).parent))
    cfg = dict(dataset="ring8", model="toy", batch_size=32, device="cpu", seed=0)
    if extra.get("dataset") == "mnist":  # the convolutional critic needs 28 x 28 images
        cfg.update(batch_size=16, data_root=request.getfixturevalue("mnist_data_root"), download=False)
    run = Run(make_config({**cfg, **extra}))
    assert run.fuse is fused
    D0 = copy.deepcopy(run.D)
    loss, _, _, real, fake, y = run.critic_step(torch.Generator().manual_seed(0))
    want = run.objective.d_loss(D0(real, y), D0(fake, y))
    assert loss.item() == pytest.approx(want.item(), rel=1e-5, abs=1e-6)


def test_generator_step_trains_g_only_and_leaves_a_frozen_critic_weight_frozen(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    out, _, _ = run(tmp_path, **{**TOY, "model": "test_train:centred_pair", "objective": "wgan-gp"})
    from benchmark.train import Run, frozen

    r = Run(make_config({**TOY, "model": "test_train:centred_pair"}))
    frozen_w = r.D.body[1].weight
    trainable = [p for p in r.D.parameters() if p.requires_grad]
    with frozen(r.D):
        assert not any(p.requires_grad for p in r.D.parameters())
        loss = r.D(r.G(torch.randn(8, r.cfg.z_dim))).mean()
    loss.backward()
    assert all(p.grad is None for p in r.D.parameters()) and all(p.grad is not None for p in r.G.parameters())
    assert all(p.requires_grad for p in trainable) and not frozen_w.requires_grad  # the author's choice stands
    # ... and after training: the frozen weight has the value it was built with
    D_end = rundir.load_checkpoint(out / "checkpoints" / "last.pt")["D"]
    assert torch.equal(D_end["body.1.weight"], r.D.body[1].weight.detach())


def test_freezing_the_critic_changes_no_bit_of_the_generator_gradient():
    from benchmark.train import Run, frozen

    r = Run(make_config(dict(DIGITS, objective="wgan-gp")))
    z = torch.randn(16, r.cfg.z_dim)
    grads = []
    for freeze in (False, True):
        r.G.zero_grad(set_to_none=True)
        if freeze:
            with frozen(r.D):
                (-r.D(r.G(z)).mean()).backward()
        else:
            (-r.D(r.G(z)).mean()).backward()
        grads.append([p.grad.clone() for p in r.G.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads))

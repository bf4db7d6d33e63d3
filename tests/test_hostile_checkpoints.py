"""Checkpoints that prove themselves: the sha256 of the contents is stored in every ``last.pt`` and ``G_<step>.pt``
and checked at load; the step is checked against the config; a refused checkpoint leaves the run directory as it
was (run.json, config.yaml and the log are rewritten only after the checkpoint is validated). Checkpoints from
before checksums (format 2) still resume, with a note, bit-identically."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark import rundir
from benchmark.cli import main
from benchmark.config import make_config
from benchmark.errors import UserError
from benchmark.train import train
from helpers import refused

TOY = dict(dataset="ring8", model="toy", steps=6, checkpoint_every=3, batch_size=16, grad_norm_every=2, device="cpu")
ARGV = ["train", "--quiet"] + [x for k, v in TOY.items() for x in ("--" + k.replace("_", "-"), str(v))]


class Stop(Exception):
    pass


def interrupted(out: Path, monkeypatch, at: int = 3, **kw) -> Path:
    """A run of TOY stopped right after its ``last.pt`` at step ``at`` was written (as a kill there would)."""
    real = rundir.save_checkpoint

    def save(path, state):
        real(path, state)
        if Path(path).name == rundir.LAST_CHECKPOINT and state["step"] == at:
            raise Stop

    with monkeypatch.context() as m:
        m.setattr(rundir, "save_checkpoint", save)
        with pytest.raises(Stop):
            train(make_config({**TOY, **kw}), out, progress=False)
    return out


@pytest.fixture(scope="module")
def half(tmp_path_factory):
    """A run stopped at step 3 of 6, and the same run uninterrupted (module-wide; tests copy them)."""
    mp = pytest.MonkeyPatch()
    base = tmp_path_factory.mktemp("ck")
    try:
        stopped = interrupted(base / "stopped", mp)
    finally:
        mp.undo()
    ref = base / "ref"
    train(make_config(TOY), ref, progress=False)
    other = base / "other"
    train(make_config({**TOY, "gp_lambda": 1.0}), other, progress=False)
    narrow = base / "narrow"  # another architecture (z_dim 3)
    train(make_config({**TOY, "z_dim": 3}), narrow, progress=False)
    return stopped, ref, other, narrow


def copy(src: Path, where: Path, name: str = "run") -> Path:
    dst = where / name
    shutil.copytree(src, dst)
    return dst


def last(out: Path) -> Path:
    return rundir.last_checkpoint_path(out)


def raw(path: Path) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")


def craft(path: Path, **changes) -> None:
    """Rewrite a checkpoint with ``changes``, with a valid checksum (what a careful forger or a bug would write)."""
    ck = raw(path)
    ck.pop(rundir.CHECKSUM_KEY)
    ck.pop("format")
    ck.update(changes)
    rundir.save_checkpoint(path, ck)


def flip(path: Path, offset: int, n: int) -> None:
    data = bytearray(path.read_bytes())
    for i in range(offset, min(offset + n, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def same_state(a: Path, b: Path) -> None:
    x, y = raw(a), raw(b)
    for net in ("G", "D"):
        assert all(torch.equal(x[net][k], y[net][k]) for k in x[net]), net
    for opt in ("opt_g", "opt_d"):
        for p in x[opt]["state"]:
            for k, v in x[opt]["state"][p].items():
                assert torch.equal(v, y[opt]["state"][p][k]), (opt, p, k)
    assert x["step"] == y["step"]


# ---- last.pt: refused in one line, the run directory untouched ----------------------------------------------


def _damage_cases():
    def flipped(out, other):
        size = last(out).stat().st_size
        flip(last(out), size // 2 - 2000, 4000)

    def truncated(out, other):
        last(out).write_bytes(last(out).read_bytes()[: last(out).stat().st_size // 2])

    def foreign(out, other):
        last(out).write_bytes(last(other).read_bytes())

    def folder(out, other):
        last(out).unlink()
        last(out).mkdir()

    def opt_shape(out, other):
        ck = raw(last(out))
        st0 = ck["opt_d"]["state"][0]
        st0["exp_avg"] = torch.zeros(*st0["exp_avg"].shape, 2)
        craft(last(out), opt_d=ck["opt_d"])

    def no_checksum(out, other):
        ck = raw(last(out))
        ck.pop(rundir.CHECKSUM_KEY)
        torch.save(ck, last(out))

    def wrong_checksum(out, other):
        ck = raw(last(out))
        ck[rundir.CHECKSUM_KEY] = "0" * 64
        torch.save(ck, last(out))

    return [
        ("4000-bytes-flipped", flipped, ["last.pt", "corrupt", "delete it"]),
        ("truncated", truncated, ["last.pt", "corrupt", "delete it"]),
        ("foreign", foreign, ["last.pt", "belongs to another run", "gp_lambda"]),
        ("a-folder", folder, ["last.pt", "corrupt, unreadable"]),
        ("step-10**12", lambda o, _: craft(last(o), step=10**12), ["step 1000000000000", "outside this run's 1..6"]),
        ("step-0", lambda o, _: craft(last(o), step=0), ["step 0", "outside"]),
        ("step-negative", lambda o, _: craft(last(o), step=-3), ["not a count"]),
        ("step-string", lambda o, _: craft(last(o), step="3"), ["not a count"]),
        ("step-bool", lambda o, _: craft(last(o), step=True), ["not a count"]),
        ("format-99", lambda o, _: craft(last(o), format=99), ["format 99"]),
        ("no-checksum-format-3", no_checksum, ["do not match the sha256"]),
        ("wrong-checksum", wrong_checksum, ["do not match the sha256"]),
        ("no-critic", lambda o, _: _without(last(o), "D"), ["not a resumable ganbench checkpoint"]),
        ("rng-garbage", lambda o, _: craft(last(o), rng={"python": 1}), ["RNG state"]),
        (
            "rng-wrong-size",
            lambda o, _: craft(last(o), rng={**raw(last(o))["rng"], "torch": torch.zeros(3, dtype=torch.uint8)}),
            ["RNG state"],
        ),
        (
            "critic-shape",
            lambda o, _: craft(last(o), D={k: v[:1] for k, v in raw(last(o))["D"].items()}),
            ["does not fit this run's critic"],
        ),
        ("optimiser-shape", opt_shape, ["does not fit this run's critic optimiser"]),
        ("config-not-a-dict", lambda o, _: craft(last(o), config=[1], config_sha256="x"), ["belongs to another run"]),
    ]


def _without(path: Path, key: str) -> None:
    ck = raw(path)
    ck.pop(key)
    ck.pop(rundir.CHECKSUM_KEY)
    ck.pop("format")
    rundir.save_checkpoint(path, ck)


@pytest.mark.parametrize("damage,needles", [c[1:] for c in _damage_cases()], ids=[c[0] for c in _damage_cases()])
def test_a_bad_last_pt_is_one_line_and_nothing_is_rewritten(half, tmp_path, capsys, damage, needles):
    stopped, _, other, _ = half
    out = copy(stopped, tmp_path)
    damage(out, other)
    refused(capsys, ARGV + ["--out", str(out)], *needles, tree=tmp_path)
    assert not (out / rundir.DONE_FILE).exists()


def test_a_finished_runs_checkpoint_flipped_is_not_marked_done(half, tmp_path, capsys):
    _, ref, _, _ = half
    out = copy(ref, tmp_path)
    (out / rundir.DONE_FILE).unlink()  # ask for the run again: it must prove its last.pt
    flip(last(out), 1000, 4000)
    refused(capsys, ARGV + ["--out", str(out)], "last.pt", "corrupt", tree=tmp_path)
    assert not (out / rundir.DONE_FILE).exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.floats(0, 1), n=st.integers(1, 4000))
def test_any_flip_is_refused_or_changes_nothing(half, tmp_path, offset, n):
    """A flip in bytes that carry no content (zip padding, a name in a header) may load; it must load the same."""
    stopped, _, _, _ = half
    p = tmp_path / "c.pt"
    p.write_bytes(last(stopped).read_bytes())
    flip(p, int(offset * (p.stat().st_size - 1)), n)
    try:
        ck = rundir.load_checkpoint(p)
    except UserError as e:
        assert len(str(e).splitlines()) == 1
        return
    ref = rundir.load_checkpoint(last(stopped))
    assert rundir.payload_sha256(ck) == rundir.payload_sha256(ref)


# ---- generator files -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage,needle",
    [
        (lambda o, other: flip(rundir.generator_path(o, 3), 70_000, 4000), "corrupt"),
        (
            lambda o, other: rundir.generator_path(o, 3).write_bytes(rundir.generator_path(o, 6).read_bytes()),
            "holds step 6, not the 3",
        ),
        (
            lambda o, other: rundir.generator_path(o, 3).write_bytes(rundir.generator_path(other, 3).read_bytes()),
            "does not fit this run's generator",
        ),
        (lambda o, other: craft(rundir.generator_path(o, 3), step=10**12), "holds step 1000000000000"),
        (lambda o, other: _without(rundir.generator_path(o, 3), "G"), "no generator weights"),
    ],
    ids=["flipped", "renamed", "foreign", "step-10**12", "no-weights"],
)
def test_a_bad_generator_file_is_one_line(half, tmp_path, capsys, damage, needle):
    _, ref, _, other = half
    out = copy(ref, tmp_path)
    damage(out, other)
    with pytest.raises(UserError, match=needle):
        rundir.load_generator(out, 3)
    refused(
        capsys,
        ["evaluate", str(out), "--step", "3", "--num-samples", "100", "--quiet"],
        "G_000003.pt",
        needle,
        tree=tmp_path,
    )


# ---- what still works: resume bit-identical, old checkpoints, weights_only ---------------------------------


def test_a_stopped_run_resumes_bit_identical(half, tmp_path):
    stopped, ref, _, _ = half
    out = copy(stopped, tmp_path)
    assert main(ARGV + ["--out", str(out)]) == 0
    same_state(last(out), last(ref))
    for s in (3, 6):
        a, b = raw(rundir.generator_path(out, s)), raw(rundir.generator_path(ref, s))
        assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])


def test_a_checkpoint_from_before_checksums_resumes_with_a_note(half, tmp_path, capsys):
    stopped, ref, _, _ = half
    out = copy(stopped, tmp_path)
    for p in (last(out), rundir.generator_path(out, 3)):  # as ganbench wrote them before checksums
        ck = raw(p)
        ck.pop(rundir.CHECKSUM_KEY)
        ck["format"] = 2
        torch.save(ck, p)
    capsys.readouterr()
    assert main(ARGV + ["--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "predates checksums (format 2)" in err and "last.pt" in err, err
    same_state(last(out), last(ref))
    assert raw(last(out))["format"] == rundir.CHECKPOINT_FORMAT  # its next save carries a checksum
    G, _, step = rundir.load_generator(out, 3)  # an old generator file still scores
    assert step == 3


def test_checkpoints_load_with_weights_only_and_carry_their_checksum(half):
    _, ref, _, _ = half
    for p in (last(ref), rundir.generator_path(ref, 6)):
        ck = torch.load(p, weights_only=True)
        stored = ck.pop(rundir.CHECKSUM_KEY)
        assert ck["format"] == 3 and stored == rundir.payload_sha256(ck) and len(stored) == 64


def test_the_checksum_covers_every_value():
    base = {"step": 1, "G": {"w": torch.arange(4.0)}, "lr": 0.1, "betas": (0.5, 0.9), "names": ["a"], "x": None}
    h = rundir.payload_sha256(base)
    variants = [
        {**base, "step": 2},
        {**base, "G": {"w": torch.arange(4.0).flip(0)}},
        {**base, "G": {"w": torch.arange(4.0).double()}},
        {**base, "G": {"w": torch.arange(4.0).reshape(2, 2)}},
        {**base, "lr": 0.1000000001},
        {**base, "betas": [0.5, 0.9]},
        {**base, "names": ["b"]},
        {**base, "x": 0},
        {**base, "flag": True},
    ]
    assert all(rundir.payload_sha256(v) != h for v in variants)
    assert rundir.payload_sha256({**base}) == h

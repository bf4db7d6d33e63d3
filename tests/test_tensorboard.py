"""--tensorboard (benchmark/tb.py): the event files of RUN/tb/ read back with TensorBoard's EventAccumulator hold
every logged scalar at its step with log.jsonl's value, the sample grid of each checkpoint and the scores of each
evaluated step; a resumed run shows each step once and trains the same bits; off by default, with no tb/ folder
and the config hash runs had before the key existed; inside a study too."""

from __future__ import annotations

import time

import pytest
import torch

from benchmark import io
from benchmark.config import TrainConfig, field_docs, make_config, resolve
from benchmark.rundir import config_hash, load_checkpoint
from benchmark.train import train

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

# wgan-gp logs every scalar the loop writes: d_loss, g_loss, wdist, gp, grad_norm_mean, grad_norm_std, sec
BASE = dict(dataset="ring8", model="toy", objective="wgan-gp", steps=30, checkpoint_every=10, batch_size=32, seed=1)
BASE.update(device="cpu", num_threads=1, log_flush_every=4)
# config_hash of BASE computed on main at 8851932, before the key existed: a run at the default keeps its hash
HASH_BEFORE = "0cce6e98dfc36cba41fd327752a10fba3fbdc61c695456023d607fcd2541522c"


def events(run):
    ea = event_accumulator.EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    return ea


def scalars(ea, tag):
    return [(e.step, e.value) for e in ea.Scalars(tag)]


def assert_scalars_equal_the_log(ea, run):
    log = io.read_jsonl(run / "log.jsonl")
    keys = {k for r in log for k in r if k != "step"}
    assert keys == {"d_loss", "g_loss", "wdist", "gp", "grad_norm_mean", "grad_norm_std", "sec"}
    assert {t for t in ea.Tags()["scalars"] if t.startswith("train/")} == {f"train/{k}" for k in keys}
    for k in keys:
        want = [(r["step"], r[k]) for r in log]
        got = scalars(ea, f"train/{k}")
        assert [s for s, _ in got] == [s for s, _ in want], k  # every step once, in order
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6, abs=1e-7), k  # float32 events


def weights_and_log(run):
    ck = load_checkpoint(run / "checkpoints" / "last.pt")
    log = [{k: v for k, v in r.items() if k != "sec"} for r in io.read_jsonl(run / "log.jsonl")]
    return {n: t for part in ("G", "D") for n, t in ((f"{part}.{k}", v) for k, v in ck[part].items())}, log


def assert_same_bits(a, b):
    (wa, la), (wb, lb) = weights_and_log(a), weights_and_log(b)
    assert la == lb and wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb")
    train(make_config(BASE), root / "off", progress=False)
    train(make_config({**BASE, "tensorboard": True}), root / "on", progress=False)
    return root


def test_default_off_writes_no_events_and_keeps_the_hash(runs):
    assert TrainConfig().tensorboard is False
    assert not (runs / "off" / "tb").exists()
    assert config_hash(resolve(make_config(BASE))) == HASH_BEFORE
    assert config_hash(resolve(make_config({**BASE, "tensorboard": True}))) == HASH_BEFORE  # changes no number
    assert "TensorBoard" in field_docs(TrainConfig)["tensorboard"]  # its --help


def test_events_hold_every_logged_scalar_and_each_checkpoints_grid(runs):
    ea = events(runs / "on")
    assert_scalars_equal_the_log(ea, runs / "on")
    grids = ea.Images("samples")
    assert [g.step for g in grids] == [10, 20, 30]
    from PIL import Image

    png = Image.open(runs / "on" / "samples" / "step_000030.png")
    assert (grids[-1].width, grids[-1].height) == png.size


def test_tensorboard_on_trains_the_same_bits(runs):
    assert_same_bits(runs / "on", runs / "off")


def test_evaluate_appends_the_scores_of_each_step(runs, tmp_path):
    from benchmark.evaluation.runs import evaluate_run

    run = runs / "on"
    recs = evaluate_run(run, metrics=["modes", "hq"], progress=False, cache_root=tmp_path)
    ea = events(run)
    for name in ("modes2500", "hq2500"):
        want = [(r["step"], r["metrics"][name]) for r in recs]
        assert [s for s, _ in want] == [10, 20, 30]
        assert scalars(ea, f"eval/{name}") == [(s, pytest.approx(v, rel=1e-6)) for s, v in want]
    evaluate_run(runs / "off", metrics=["modes"], progress=False, cache_root=tmp_path)
    assert not (runs / "off" / "tb").exists()  # a run without TensorBoard gets no events from evaluate either


def test_a_resumed_run_shows_each_step_once_and_trains_the_same_bits(runs, tmp_path, monkeypatch):
    import importlib

    from torch.utils.tensorboard import SummaryWriter

    T = importlib.import_module("benchmark.train")  # (benchmark.train the attribute is the API's function)

    out = tmp_path / "resumed"
    cfg = make_config({**BASE, "tensorboard": True})
    real_save = T.save_samples

    def die_at_30(G, z, y, path, data):
        if path.name == "step_000030.png":
            raise KeyboardInterrupt  # killed after step 30's log flush at 28, before its checkpoint
        real_save(G, z, y, path, data)

    monkeypatch.setattr(T, "save_samples", die_at_30)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, out, progress=False)
    monkeypatch.setattr(T, "save_samples", real_save)
    # what a killed session may have left past its last checkpoint (20): events at steps 21..30, other values
    with SummaryWriter(str(out / "tb"), filename_suffix=".stale") as w:
        for s in range(21, 31):
            w.add_scalar("train/d_loss", 1e6, s)
        w.add_image("samples", torch.zeros(3, 4, 4), 30)
    time.sleep(1.1)  # event files sort by their creation second: the resumed session's comes after
    train(cfg, out, progress=False)

    assert_same_bits(out, runs / "off")
    ea = events(out)
    assert_scalars_equal_the_log(ea, out)  # steps 21..30 once, with the resumed session's values
    assert [g.step for g in ea.Images("samples")] == [10, 20, 30]
    assert ea.Images("samples")[-1].width > 4


def test_a_study_arm_can_turn_tensorboard_on(tmp_path):
    import yaml

    from benchmark.api import run_study

    spec = {
        "name": "tbstudy",
        "base": {"dataset": "ring8", "model": "toy", "batch_size": 32, "tensorboard": True},
        "axes": {},
        "seeds": [0],
        "budget": {"steps": 8},
        "eval_at": [1.0],
        "num_samples": 500,
        "metrics": ["modes"],
        "report": {"columns": ["modes"]},
        "presets": {"quick": {}},
    }
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(spec))
    run_study(p, results=tmp_path / "results", reports=tmp_path / "reports", workers=1)
    (run,) = [d / "run" for d in (tmp_path / "results" / "trials").iterdir()]
    ea = events(run)
    assert [s for s, _ in scalars(ea, "train/d_loss")] == list(range(1, 9))
    assert [s for s, _ in scalars(ea, "eval/modes2500")] == [8]
    assert [g.step for g in ea.Images("samples")] == [8]


def test_tensorboard_without_its_package_is_one_line_before_anything_runs(monkeypatch):
    import importlib.util

    from benchmark.errors import UserError

    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else find(name, *a))
    with pytest.raises(UserError, match="needs the tensorboard package"):
        make_config({**BASE, "tensorboard": True})
    assert make_config(BASE).tensorboard is False  # off: the package is not asked for

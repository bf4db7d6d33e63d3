"""Known answers of the registered networks: the shipped pairs (mlp, dcgan, toy) build and compute exactly what
they did before the new models and options (numbers made by the code of 39fd339, whose architectures main still
has), the 2D-mixture pairs have the papers' sizes, and ``label_scale`` gives G's label the energy it claims."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch
from torch import nn

from benchmark.config import ADDED_LATER, TrainConfig, make_config, resolve, semantic_dict
from benchmark.errors import UserError
from benchmark.models import MODELS, POINT_MODELS, build_models, label_factor
from benchmark.rundir import config_hash
from benchmark.study.kinds import KINDS


def pair(model, dataset="ring8", **kw):
    cfg = resolve(make_config(dict(dataset=dataset, model=model, objective="gan", device="cpu", **kw)))
    shape = (2,) if dataset in ("ring8", "grid25") else ((3, 28, 28) if dataset == "stacked-mnist" else (1, 28, 28))
    k = {"ring8": 8, "grid25": 25}.get(dataset, 10)
    return cfg, *build_models(cfg, shape, k)


def linears(m):
    return [x for x in m.modules() if isinstance(x, nn.Linear)]


# ------------------------------------------------------------------------------------------------
# sizes


def test_toy_pacgan_has_pacgans_sizes():
    """PacGAN's synthetic config: G 2 -> 4 x 400 (BatchNorm, ReLU, no bias before BN) -> 2; D 2 -> 3 x 200 -> 1."""
    cfg, G, D = pair("toy-pacgan")
    assert cfg.z_dim == 2
    g = linears(G)
    assert [(x.in_features, x.out_features) for x in g] == [(2, 400), (400, 400), (400, 400), (400, 400), (400, 2)]
    assert [x.bias is None for x in g] == [True, True, True, True, False]
    assert sum(isinstance(x, nn.BatchNorm1d) for x in G.modules()) == 4
    assert sum(isinstance(x, nn.ReLU) for x in G.modules()) == 4
    d = linears(D)
    assert [(x.in_features, x.out_features) for x in d] == [(2, 200), (200, 200), (200, 200), (200, 1)]
    assert sum(isinstance(x, nn.LeakyReLU) for x in D.modules()) == 3


def test_toy_pacgan_maxout_has_pacgans_discriminator_units():
    """PacGAN's D (its synthetic config): 3 maxout layers of 200 units x 5 pieces, then a linear score; its G is
    toy-pacgan's."""
    cfg, G, D = pair("toy-pacgan-maxout")
    _, G0, _ = pair("toy-pacgan")
    assert [(x.in_features, x.out_features) for x in linears(G)] == [
        (x.in_features, x.out_features) for x in linears(G0)
    ]
    assert [(x.in_features, x.out_features) for x in linears(D)] == [(2, 1000), (200, 1000), (200, 1000), (200, 1)]
    assert not any(isinstance(x, (nn.LeakyReLU, nn.ReLU)) for x in D.modules())


def test_maxout_is_the_maximum_of_its_pieces():
    from benchmark.models import Maxout

    m = Maxout(2, units=2, pieces=3)
    with torch.no_grad():
        m.linear.weight.copy_(torch.tensor([[1.0, 0], [0, 1], [-1, 0], [0, 0], [1, 1], [0, -2]]))
        m.linear.bias.copy_(torch.tensor([0.0, 0, 0, 0.5, 0, 0]))
    x = torch.tensor([[3.0, -1.0], [-2.0, 1.0]])
    # unit 0: max(x0, x1, -x0); unit 1: max(0.5, x0 + x1, -2 x1)
    assert torch.equal(m(x), torch.tensor([[3.0, 2.0], [2.0, 0.5]]))


def test_toy_wgangp_has_the_wgan_gp_papers_toy_sizes():
    """gan_toy.py of Gulrajani et al.: G and D both 3 x 512 with ReLU, no normalisation; z is 2-d."""
    cfg, G, D = pair("toy-wgangp")
    assert cfg.z_dim == 2
    assert [(x.in_features, x.out_features) for x in linears(G)] == [(2, 512), (512, 512), (512, 512), (512, 2)]
    assert [(x.in_features, x.out_features) for x in linears(D)] == [(2, 512), (512, 512), (512, 512), (512, 1)]
    for m in (G, D):
        assert not any(isinstance(x, (nn.BatchNorm1d, nn.LeakyReLU)) for x in m.modules())
        assert sum(isinstance(x, nn.ReLU) for x in m.modules()) == 3


@pytest.mark.parametrize("model", POINT_MODELS)
def test_point_models_pack_condition_and_refuse_images(model):
    cfg, G, D = pair(model, pack=4, batch_size=8)
    assert linears(D)[0].in_features == 2 * 4  # 4 points judged jointly
    assert D(G(torch.randn(8, 2))).shape == (2,)
    cfg, G, D = pair(model, conditional=True)
    assert linears(D)[0].in_features == 2 + 8 and linears(G)[0].in_features == 2 + 8  # one-hot of 8 modes
    with pytest.raises(UserError, match=f"model '{model}' needs 2D points"):
        pair(model, dataset="mnist")


def test_dcgan_width_parameter_keeps_the_shipped_pair():
    """`dcgan` is still z -> 128x7x7 -> 64x14x14 -> C x 28 x 28 and C -> 64 -> 128 (its parameter count, by hand)."""
    cfg, G, D = pair("dcgan", dataset="stacked-mnist")
    zin, c = cfg.z_dim, 3
    g = (zin * 6272 + 6272) + 2 * 6272 + (128 * 64 * 16 + 64) + 2 * 64 + (64 * c * 16 + c)
    d = (c * 64 * 16 + 64) + (64 * 128 * 16 + 128) + (6272 + 1)
    assert sum(p.numel() for p in G.parameters()) == g
    assert sum(p.numel() for p in D.parameters()) == d
    assert G(torch.randn(4, zin)).shape == (4, 3, 28, 28)


def test_dcgan_width_parameter_scales_the_channels():
    """width w: G z -> 2w x 7 x 7 -> w x 14 x 14; D C -> w -> 2w (so a planted fixed 64 or 128 fails here)."""
    cfg = resolve(make_config(dict(dataset="mnist", model="dcgan", objective="gan", device="cpu")))
    from benchmark.models import DCGANCritic, DCGANGenerator

    G, D = DCGANGenerator(cfg, (1, 28, 28), 10, width=16), DCGANCritic(cfg, (1, 28, 28), 10, width=16)
    assert [(m.in_channels, m.out_channels) for m in G.modules() if isinstance(m, nn.ConvTranspose2d)] == [
        (32, 16),
        (16, 1),
    ]
    assert linears(G)[0].out_features == 32 * 7 * 7
    assert [(m.in_channels, m.out_channels) for m in D.modules() if isinstance(m, nn.Conv2d)] == [(1, 16), (16, 32)]
    assert D.feat_dim == 32 * 7 * 7
    assert D(G(torch.randn(4, cfg.z_dim))).shape == (4,)


# ------------------------------------------------------------------------------------------------
# the shipped pairs are bit-for-bit those of before (known answers made by the code of 39fd339)

# (model, dataset, extra config): every shipped pair, unconditional and conditional (concat and projection)
DEFAULT_CASES = [
    ("mlp", "mnist", {}),
    ("mlp", "mnist", {"objective": "cgan"}),
    ("mlp", "mnist", {"objective": "cgan", "cond_mode": "projection"}),
    ("mlp", "mnist", {"minibatch_disc": True, "critic_norm": "layer"}),
    ("dcgan", "mnist", {}),
    ("dcgan", "stacked-mnist", {"pack": 2}),
    ("dcgan", "mnist", {"objective": "cgan"}),
    ("toy", "ring8", {}),
    ("toy", "ring8", {"objective": "cgan"}),
    ("toy", "grid25", {"objective": "cgan", "cond_mode": "projection"}),
]


def fingerprint(factory, model, dataset, extra):
    """sha256 of G's and D's initial parameters and buffers (seed 0), and sums of G(z, y) and D(G(z, y), y) for
    16 fixed z (seed 1) with labels 0, 1, 2, ... The parameters decide the architecture and its init exactly;
    the outputs catch what the parameters cannot (the label's scale, a layer's order, an activation)."""
    cfg = resolve(make_config({"dataset": dataset, "model": model, "objective": "gan", "device": "cpu", **extra}))
    shape = {"mnist": (1, 28, 28), "stacked-mnist": (3, 28, 28)}.get(dataset, (2,))
    k = {"ring8": 8, "grid25": 25, "stacked-mnist": 1000}.get(dataset, 10)
    torch.manual_seed(0)
    G, D = factory(cfg, shape, k)
    h = hashlib.sha256()
    for m in (G, D):
        for name, t in m.state_dict().items():
            h.update(f"{name}{tuple(t.shape)}".encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
    torch.manual_seed(1)
    z, y = torch.randn(16, cfg.z_dim), torch.arange(16) % k
    y = y if cfg.conditional else None
    with torch.no_grad():
        x = G(z, y)
        s = D(x, y)
    return h.hexdigest()[:32], float(x.double().sum()), float(x.double().abs().sum()), float(s.double().sum())


# printed by /work/scratch/research/old_fp.py with the tree of 39fd339 on PYTHONPATH (its models.py is main's)
OLD = [
    ("e58f378ebf1b8773848052909a285b86", -89.64615523189423, 3777.1843945081055, 0.5530566610395908),
    ("5eb25cda726ea592eb8f48598d8723b8", -99.20115076022921, 3788.4630759895663, -0.46255137538537383),
    ("5496b1d368de6b96ff83221b5fe8381d", -99.20115076022921, 3788.4630759895663, 0.802969679236412),
    ("62ef36f03a37d80c0cd13acaf8b5d7f4", -89.64615523189423, 3777.1843945081055, -1.9219492329284549),
    ("87ab0a58fa4f2cf36bed871c8980d048", -1956.194302156713, 8824.840026959631, 2.1281577944755554),
    ("33dd8c844804ee2ceca090da68c014c7", -4351.255802203465, 18384.315364878305, 0.22488870238885283),
    ("1708d0970399060dfbbd438c96974de8", 644.0874329590297, 8213.257505256537, 0.1540260745678097),
    ("5c3cb15527f7ac79dfac2507e09444ea", 0.49771151319146156, 2.0084139965474606, 0.10146125964820385),
    ("c143f77fac5ac97698cbae1c6f5b6af7", 0.06387921655550599, 1.1074155918322504, -0.6057060472667217),
    ("fecad050712045f8198022dcb434c08b", -2.4227619618177414, 2.4227619618177414, -8.22302520275116),
]


@pytest.mark.parametrize("i", range(len(DEFAULT_CASES)), ids=[f"{m}-{d}-{e}" for m, d, e in DEFAULT_CASES])
def test_shipped_pairs_are_those_of_before(i):
    model, dataset, extra = DEFAULT_CASES[i]
    params, x, x_abs, s = fingerprint(MODELS.get(model), model, dataset, extra)
    old_params, old_x, old_x_abs, old_s = OLD[i]
    assert params == old_params, f"{model} on {dataset} {extra}: other parameters than before"
    # the outputs with a float tolerance: another CPU's BLAS may round the last bits otherwise
    assert (x, x_abs, s) == pytest.approx((old_x, old_x_abs, old_s), rel=1e-5, abs=1e-4)


# ------------------------------------------------------------------------------------------------
# label_scale


def cgan_pair(model="mlp", dataset="mnist", **kw):
    return pair(model, dataset=dataset, conditional=True, **kw)


@pytest.mark.parametrize("z_dim", [100, 64, 2])
def test_sqrt_z_label_has_the_energy_of_z(z_dim):
    """|label part of G's input|^2 is z_dim under sqrt-z (E|z|^2 = z_dim) and 1 under one; z passes unchanged."""
    for scale, energy in (("sqrt-z", z_dim), ("one", 1)):
        cfg, G, _ = cgan_pair(z_dim=z_dim, label_scale=scale)
        z, y = torch.randn(7, z_dim), torch.tensor([0, 1, 2, 3, 9, 9, 5])
        inp = G._input(z, y)
        assert torch.equal(inp[:, :z_dim], z)
        label = inp[:, z_dim:]
        assert torch.allclose((label**2).sum(1), torch.full((7,), float(energy)), rtol=1e-6)
        assert torch.equal(label.argmax(1), y) and int((label != 0).sum()) == 7
    assert label_factor("sqrt-z", 100) == 10.0 and label_factor("one", 100) == 1.0


@pytest.mark.parametrize("model,dataset", [("mlp", "mnist"), ("dcgan", "mnist"), *((m, "ring8") for m in POINT_MODELS)])
def test_every_generator_feeds_the_scaled_label_to_its_first_layer(model, dataset):
    """G under sqrt-z computes what G under one computes with the label columns of its first layer times
    sqrt(z_dim): the scale reaches the network (same seed, same parameters: the option adds none)."""
    torch.manual_seed(0)
    cfg, G1, _ = cgan_pair(model, dataset, label_scale="one")
    torch.manual_seed(0)
    _, G2, _ = cgan_pair(model, dataset, label_scale="sqrt-z")
    for a, b in zip(G1.state_dict().values(), G2.state_dict().values()):
        assert torch.equal(a, b)
    k = 8 if dataset == "ring8" else 10
    z, y = torch.randn(16, cfg.z_dim), torch.arange(16) % k
    G1.eval(), G2.eval()  # BatchNorm by its running statistics: the two see different batches otherwise
    with torch.no_grad():
        assert not torch.allclose(G1(z, y), G2(z, y), atol=1e-4)
        linears(G1)[0].weight[:, cfg.z_dim :] *= math.sqrt(cfg.z_dim)
        assert torch.allclose(G1(z, y), G2(z, y), rtol=1e-4, atol=1e-5)


def test_label_scale_is_checked():
    with pytest.raises(UserError, match=r"config key 'label_scale' is 'sqrt'; allowed: one, sqrt-z"):
        make_config({"objective": "cgan", "label_scale": "sqrt"})
    with pytest.raises(UserError, match=r"'label_scale' \(sqrt-z\) has no meaning without labels"):
        make_config({"objective": "gan", "label_scale": "sqrt-z"})
    assert make_config({"objective": "cwgan-gp", "label_scale": "sqrt-z"}).label_scale == "sqrt-z"
    assert TrainConfig().label_scale == "one"


# ------------------------------------------------------------------------------------------------
# keys added later: every earlier run keeps its trial key and checkpoint hash

# printed by /work/scratch/research/old_fp.py with the tree of 39fd339 on PYTHONPATH (before label_scale existed)
OLD_KEYS = [
    (
        {"dataset": "ring8", "model": "toy", "objective": "gan", "steps": 2, "batch_size": 16, "device": "cpu"},
        "842aa85ca53217b617e4023a9e57b3e9ab31070ec4296be620507063e179ad01",
        "842aa85ca53217b6",
    ),
    (
        {"dataset": "mnist", "model": "mlp", "objective": "cgan", "steps": 2000, "seed": 3},
        "6ec31b42954e8c30461fe33aed715799f111df4dadcdf0f194ca82257a7b92ec",
        "6ec31b42954e8c30",
    ),
    (
        {"dataset": "mnist", "model": "dcgan", "objective": "cwgan-gp", "cond_mode": "projection", "epochs": 0.5},
        "665e6bafffef43d6decb860ba8dde685e44736b8009364d0cec8444e2202a2a0",
        "665e6bafffef43d6",
    ),
]


@pytest.mark.parametrize("i", range(len(OLD_KEYS)))
def test_a_config_at_the_defaults_of_later_keys_keeps_its_keys(i):
    overrides, old_hash, old_trial_key = OLD_KEYS[i]
    cfg = resolve(make_config(overrides))
    assert config_hash(cfg) == old_hash
    assert KINDS.get("gan").key(cfg) == old_trial_key
    assert "label_scale" not in semantic_dict(cfg)
    changed = resolve(make_config({**overrides, "objective": "cgan", "label_scale": "sqrt-z"}))
    assert semantic_dict(changed)["label_scale"] == "sqrt-z"
    assert config_hash(changed) != config_hash(changed.replace(label_scale="one"))


def test_added_later_values_are_the_defaults():
    defaults = TrainConfig()
    assert ADDED_LATER and all(getattr(defaults, k) == v for k, v in ADDED_LATER.items())


def test_a_run_directory_names_a_later_key_that_differs(tmp_path):
    """A run made with label_scale sqrt-z, asked again at the default, is refused in one line naming the key
    (the default is absent from the semantic dict, so a plain lookup of it would be a KeyError)."""
    from benchmark.train import train

    base = dict(dataset="ring8", model="toy", objective="cgan", steps=1, batch_size=8, device="cpu", num_grid=4)
    train(make_config({**base, "label_scale": "sqrt-z"}), tmp_path / "run", progress=False)
    with pytest.raises(UserError, match=r"another config \(label_scale: sqrt-z there, one here\)"):
        train(make_config(base), tmp_path / "run", progress=False)
    with pytest.raises(UserError, match=r"another config \(label_scale: one there, sqrt-z here\)"):
        train(make_config(base), tmp_path / "run2", progress=False)
        train(make_config({**base, "label_scale": "sqrt-z"}), tmp_path / "run2", progress=False)

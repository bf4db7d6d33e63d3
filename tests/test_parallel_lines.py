"""The parallel-lines study (WGAN paper, Example 1): closed forms, the trained critics' estimates, plot and table."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.study import parallel_lines as pl
from benchmark.study.formatting import fixed

LOG2 = math.log(2.0)
THETAS = [0.0, 0.5, 1.0]
STEPS = 200  # over seeds 0-9 while developing: EM error <= 0.10, |JS_hat(1) - log 2| <= 0.004, ratio <= 0.03


@pytest.fixture(scope="module")
def df():
    torch.set_num_threads(1)
    return pl.run(THETAS, STEPS, seed=0, progress=False)


@pytest.mark.parametrize("theta", [-1.0, -0.3, 0.1, 0.5, 1.0, 2.5])
def test_closed_form_apart(theta):
    cf = pl.closed_form(theta)
    assert set(cf) == {"js", "kl", "em", "tv", "dem"}
    assert cf["js"] == pytest.approx(0.6931471805599453)
    assert cf["dem"] == (1.0 if theta > 0 else -1.0)  # d|θ|/dθ = sign(θ): descent on EM moves θ back to 0
    assert cf["em"] == pytest.approx(abs(theta))
    assert cf["kl"] == math.inf
    assert cf["tv"] == 1.0


def test_closed_form_at_zero():
    assert pl.closed_form(0.0) == {"js": 0.0, "kl": 0.0, "em": 0.0, "tv": 0.0, "dem": 0.0}
    assert pl.closed_form(-0.0)["js"] == 0.0
    with pytest.raises(ValueError):
        pl.closed_form(float("nan"))


@pytest.mark.parametrize(
    "theta, grad, want",
    [(0.5, 2.0, 1.0), (0.5, -2.0, 0.0), (-0.5, -1e-9, 1.0), (-0.5, 3.0, 0.0), (0.3, 0.0, 0.0), (-0.3, -0.0, 0.0)],
)
def test_points_back(theta, grad, want):
    """θ ← θ - η·grad moves θ toward 0 exactly when grad has θ's sign; a zero gradient does not move θ."""
    assert pl.points_back(theta, grad) == want
    assert math.isnan(pl.points_back(0.0, 1.0))


SIGNED_THETAS = [-1.0, -0.5, -0.2, 0.2, 0.5, 1.0]
SIGNED_STEPS = 300  # seeds 0-9 while developing: every WGAN-GP gradient has sign(θ), max |∇θ - sign(θ)| = 0.143


@pytest.fixture(scope="module")
def signed():
    torch.set_num_threads(1)
    return pl.run(SIGNED_THETAS, SIGNED_STEPS, seed=1, progress=False)


def test_wgangp_gradient_points_back_to_zero_like_em(signed):
    """The trained critic's generator gradient is d EM/dθ = sign(θ): negative left of 0, positive right of it."""
    assert list(signed["dem_true"]) == [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]
    assert ((signed["dloss_wgangp"] - signed["dem_true"]).abs() < 0.25).all(), signed[["theta", "dloss_wgangp"]]
    assert (signed["back_wgangp"] == 1.0).all(), signed[["theta", "dloss_wgangp", "back_wgangp"]]
    for k in pl.OBJECTIVES:  # the magnitude columns are the signed ones' size
        assert signed[f"grad_{k}"].tolist() == signed[f"dloss_{k}"].abs().tolist()
        assert signed[f"back_{k}"].isin([0.0, 1.0]).all()
    # the GAN generator gradients point back too, the minimax one ~100x smaller than the critic's at |θ| = 1
    assert (signed["back_gan_ns"] == 1.0).all() and (signed["back_gan_minimax"] == 1.0).all()
    far = signed[signed.theta.abs() == 1.0]
    assert (far["dloss_gan_minimax"].abs() < 0.05 * far["dloss_wgangp"].abs()).all()


def test_direction_undefined_at_zero(df):
    at0 = df[df.theta == 0.0].iloc[0]
    assert at0["dem_true"] == 0.0
    assert all(math.isnan(at0[f"back_{k}"]) for k in pl.OBJECTIVES)


def test_run_rows_and_closed_forms(df):
    assert list(df["theta"]) == THETAS
    for c in [
        "theta",
        "js_true",
        "kl_true",
        "em_true",
        "js_gan",
        "grad_gan_ns",
        "grad_gan_minimax",
        "em_wgangp",
        "grad_wgangp",
    ]:
        assert c in df.columns
    assert df.loc[df.theta == 0.0, "kl_true"].item() == 0.0
    assert (df.loc[df.theta != 0.0, "kl_true"] == math.inf).all()
    assert list(df["em_true"]) == [0.0, 0.5, 1.0]
    finite = df[df.theta != 0.0]  # back_* is NaN at θ = 0 only
    assert finite[[c for c in df.columns if c != "kl_true"]].notna().all().all()


def test_wgangp_estimates_em_and_keeps_unit_gradient(df):
    err = (df["em_wgangp"] - df["theta"].abs()).abs()
    assert (err < 0.15).all(), df[["theta", "em_wgangp"]]
    apart = df[df.theta != 0.0]
    assert ((apart["grad_wgangp"] - 1.0).abs() < 0.2).all(), apart[["theta", "grad_wgangp"]]


def test_gan_estimates_js_and_its_minimax_gradient_vanishes(df):
    at1 = df[df.theta == 1.0].iloc[0]
    assert at1["js_gan"] == pytest.approx(LOG2, abs=0.02)  # the discriminator is near-optimal
    assert at1["js_gan"] <= LOG2 + 1e-3  # JS_hat is a lower bound (up to sampling noise)
    assert abs(df[df.theta == 0.0].iloc[0]["js_gan"]) < 0.02  # nothing to tell apart at θ = 0
    assert at1["grad_gan_minimax"] < 0.1 * at1["grad_wgangp"]
    assert at1["grad_gan_ns"] > 0  # does not vanish (it is the slope of D's logit)


def test_run_is_deterministic_and_rows_independent_of_grid(df):
    again = pl.run([1.0], STEPS, seed=0, progress=False)
    pd.testing.assert_series_equal(again.iloc[0], df[df.theta == 1.0].iloc[0], check_names=False)
    other = pl.run([1.0], 20, seed=1, progress=False)
    assert other.iloc[0]["em_wgangp"] != again.iloc[0]["em_wgangp"]


def test_run_rejects_bad_arguments():
    with pytest.raises(ValueError):
        pl.run([], 10, progress=False)
    with pytest.raises(ValueError):
        pl.run([0.5], 0, progress=False)
    with pytest.raises(ValueError):
        pl.run([float("inf")], 10, progress=False)


def test_plot_writes_png(df, tmp_path):
    out = tmp_path / "sub" / "js_vs_em.png"
    pl.plot(df, out)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert [p.name for p in out.parent.iterdir()] == ["js_vs_em.png"]  # no temporary file left behind


def test_plot_after_csv_round_trip(df, tmp_path):
    """The report stage reads the rows back from CSV (inf as 'inf') and averages seeds before plotting."""
    p = tmp_path / "rows.csv"
    df.to_csv(p, index=False)
    back = pd.read_csv(p)
    assert (back.loc[back.theta != 0, "kl_true"] == math.inf).all()
    pl.plot(back.groupby("theta", as_index=False).mean(numeric_only=True), tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000


def test_markdown_table(df):
    md = pl.markdown_table(df)
    lines = md.strip().splitlines()
    assert len(lines) == 2 + len(THETAS)  # header, separator, one row per θ
    assert all(line.startswith("|") and line.endswith("|") for line in lines)
    ncols = lines[0].count(" | ") + 1
    assert all(line.count(" | ") + 1 == ncols for line in lines[2:])
    assert "∞" in lines[3] and "∞" in lines[4] and "∞" not in lines[2]  # KL at θ = 0.5, 1 but not at 0
    assert "inf" not in md
    cells = lines[4].strip("|").split("|")
    assert cells[0].strip() == "1.000" and "0.693" in md
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert {"dEM/dθ", "∇θ WGAN-GP", "to 0? WGAN-GP", "to 0? GAN minimax", "to 0? GAN ns"} <= set(head)
    row1 = dict(zip(head, (c.strip() for c in cells)))
    assert row1["dEM/dθ"] == "1.000" and row1["to 0? WGAN-GP"] == "yes"
    row0 = dict(zip(head, (c.strip() for c in lines[2].strip("|").split("|"))))
    assert row0["to 0? WGAN-GP"] == "–"  # no direction at θ = 0
    assert fixed(0.12345) == "0.123" and fixed(-0.0001) == "0.000" and fixed(2e-5, small=True) == "2.00e-05"


def test_markdown_table_signs_and_seed_shares():
    """A negative gradient at θ > 0 reads 'no'; a mean over seeds reads as the share of seeds; old CSVs render."""
    row = {
        "theta": 0.5,
        "js_true": LOG2,
        "kl_true": math.inf,
        "em_true": 0.5,
        "tv_true": 1.0,
        "dem_true": 1.0,
        "js_gan": 0.6,
        "em_wgangp": 0.5,
        "grad_gan_ns": 3.0,
        "grad_gan_minimax": 1e-5,
        "grad_wgangp": 0.9,
        "dloss_gan_ns": 3.0,
        "dloss_gan_minimax": -1e-5,
        "dloss_wgangp": -0.9,
        "back_gan_ns": 1.0,
        "back_gan_minimax": 0.0,
        "back_wgangp": 0.5,
    }
    md = pl.markdown_table(pd.DataFrame([row]))
    head, _, cells = ([c.strip() for c in line.strip("|").split("|")] for line in md.splitlines())
    got = dict(zip(head, cells))
    assert got["∇θ GAN minimax"] == "-1.00e-05" and got["to 0? GAN minimax"] == "no"
    assert got["∇θ WGAN-GP"] == "-0.900" and got["to 0? WGAN-GP"] == "50% of seeds" and got["to 0? GAN ns"] == "yes"
    old = pd.DataFrame([{k: v for k, v in row.items() if not k.startswith(("dloss_", "back_", "dem_"))}])
    head_old = pl.markdown_table(old).splitlines()[0]
    assert "\\|∇θ\\| WGAN-GP" in head_old and "to 0?" not in head_old  # the magnitude, as before


def test_plot_draws_directions_and_old_results(tmp_path):
    """Points back / away / mixed over seeds and a CSV without the direction columns all plot."""
    rows = []
    for th, back in ((-0.5, 1.0), (0.0, math.nan), (0.5, 0.0), (1.0, 0.5)):
        rows.append(
            {
                "theta": th,
                "js_true": LOG2 * (th != 0),
                "kl_true": math.inf if th else 0.0,
                "em_true": abs(th),
                "tv_true": float(th != 0),
                "js_gan": 0.6,
                "em_wgangp": abs(th),
                "dem_true": float(np.sign(th)),
                **{f"grad_{k}": 0.5 for k in pl.OBJECTIVES},
                **{f"back_{k}": back for k in pl.OBJECTIVES},
            }
        )
    new = pd.DataFrame(rows)
    pl.plot(new, tmp_path / "new.png")
    pl.plot(new[[c for c in new.columns if not c.startswith(("back_", "dem_"))]], tmp_path / "old.png")
    assert (tmp_path / "new.png").stat().st_size > 10_000 and (tmp_path / "old.png").stat().st_size > 10_000


def test_study_params_reach_the_run(tmp_path):
    """Every typed param of the parallel-lines kind (gp_lambda, lr, batch, eval_batch) reaches the run."""
    import yaml

    from benchmark.study.runner import run_study
    from benchmark.study.spec import load_spec

    params = {"thetas": [1.0], "steps": 15, "batch": 64, "lr": 2e-3, "gp_lambda": 0.5, "eval_batch": 512}
    p = tmp_path / "pl.yaml"
    p.write_text(yaml.safe_dump({"name": "pl", "kind": "parallel-lines", "seeds": [3], "params": params}))
    res = run_study(load_spec(p), root=tmp_path / "res", workers=1, progress=False)
    assert not res["failed"]
    got = pd.read_csv(next((tmp_path / "res" / "trials").glob("*/parallel_lines.csv")))
    want = pl.run(
        params["thetas"], params["steps"], batch=64, seed=3, progress=False, lr=2e-3, gp_lambda=0.5, eval_batch=512
    )
    assert got["em_wgangp"].tolist() == pytest.approx(want["em_wgangp"].tolist(), rel=1e-12)
    assert got["grad_gan_ns"].tolist() == pytest.approx(want["grad_gan_ns"].tolist(), rel=1e-12)
    # each param changes the numbers: a param dropped on the way would show
    for k, v in (("gp_lambda", 10.0), ("lr", 1e-3), ("batch", 256), ("eval_batch", 8192)):
        other = pl.run(
            params["thetas"],
            params["steps"],
            seed=3,
            progress=False,
            **{**{q: params[q] for q in ("batch", "lr", "gp_lambda", "eval_batch")}, k: v},
        )
        assert other["em_wgangp"].iloc[0] != pytest.approx(got["em_wgangp"].iloc[0], rel=1e-9), k

"""The parallel-lines study (WGAN paper, Example 1): closed forms, the trained critics' estimates, plot and table."""
import math

import pandas as pd
import pytest
import torch

from benchmark.study import parallel_lines as pl

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
    assert set(cf) == {"js", "kl", "em", "tv"}
    assert cf["js"] == pytest.approx(0.6931471805599453)
    assert cf["em"] == pytest.approx(abs(theta))
    assert cf["kl"] == math.inf
    assert cf["tv"] == 1.0


def test_closed_form_at_zero():
    assert pl.closed_form(0.0) == {"js": 0.0, "kl": 0.0, "em": 0.0, "tv": 0.0}
    assert pl.closed_form(-0.0)["js"] == 0.0
    with pytest.raises(ValueError):
        pl.closed_form(float("nan"))


def test_run_rows_and_closed_forms(df):
    assert list(df["theta"]) == THETAS
    for c in ["theta", "js_true", "kl_true", "em_true", "js_gan", "grad_gan_ns", "grad_gan_minimax", "em_wgangp",
              "grad_wgangp"]:
        assert c in df.columns
    assert df.loc[df.theta == 0.0, "kl_true"].item() == 0.0
    assert (df.loc[df.theta != 0.0, "kl_true"] == math.inf).all()
    assert list(df["em_true"]) == [0.0, 0.5, 1.0]
    assert df[[c for c in df.columns if c != "kl_true"]].notna().all().all()


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
    assert pl._fmt(0.12345) == "0.123" and pl._fmt(-0.0001) == "0.000" and pl._fmt(2e-5, small=True) == "2.00e-05"

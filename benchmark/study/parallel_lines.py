"""The parallel-lines example of the WGAN paper (Arjovsky et al. 2017, Example 1): JS vs EM.

P0 is the law of (0, Z) and Pθ the law of (θ, Z), Z ~ U[0, 1]: two parallel segments. In closed form

    EM(P0, Pθ) = |θ|,   JS = log 2 (θ ≠ 0) else 0,   KL(Pθ‖P0) = KL(P0‖Pθ) = ∞ (θ ≠ 0) else 0,   TV = 1 (θ ≠ 0) else 0,

so only EM is continuous in θ and gives a gradient, d EM/dθ = sign(θ), that points back to θ = 0 (a gradient
descent step θ ← θ - η·sign(θ) moves θ toward 0); JS, KL and TV are flat in θ away from 0. For each θ this module

* trains a GAN discriminator (MLP 2-64-64-1, LeakyReLU, BCE with logits, Adam) on P0 vs Pθ, then reports its
  JS estimate  JS_hat = log 2 + ½ E_P0[log D] + ½ E_Pθ[log(1 - D)]  (a lower bound on JS, tight at the optimal D)
  and d/dθ of the generator losses, non-saturating  -E log D(θ, z)  and minimax  E log(1 - D(θ, z));
* trains a WGAN-GP critic (the same MLP from the same initial weights, no sigmoid, λ = 10, Adam betas (0, 0.9))
  and reports its estimate  E_P0 f - E_Pθ f  of EM and d/dθ of the generator loss  -E f(θ, z).

θ is a learnable scalar: the generated sample is x = (θ, z) and the gradients come from autograd on a fresh
evaluation batch after the critic is trained. Each gradient is recorded signed (``dloss_*``), as its size
(``grad_*``, kept for results written before the signed columns) and as whether a gradient-descent step on the
generator loss moves θ toward 0 (``back_*``: 1.0 when sign(d loss/dθ) = sign(θ), 0.0 when it moves θ away or
the gradient is exactly 0, NaN at θ = 0). What a reader should see: the minimax GAN gradient is tiny away from
θ = 0 (D saturates on disjoint supports); the non-saturating one is not small but its size is set by the slope
of D's logit (it depends on ``steps``, not on how far Pθ is from P0); the WGAN-GP gradient is ≈ sign(θ), the
slope of EM.

Both critics use Adam with lr 1e-3 by default, not the 1e-4 of the WGAN-GP paper: here each critic is trained
to convergence against a fixed θ, and at 1e-4 a few hundred steps leave the critic short of slope 1 (the EM
estimate at θ = 1 is ≈ 0.8) and, at small |θ|, sometimes in the mirrored local optimum (slope -1 along x,
EM estimate ≈ -|θ|) the two-sided penalty makes. With lr 1e-3 and ≥ 300 steps the estimates sit within
≈ 0.08 of |θ|. The penalty also biases the estimate up slightly: for a critic linear in x the optimum slope
is 1 + |θ|/(2λ), so the estimate is ≈ |θ| + θ²/(2λ) (1.05 at θ = 1).

Each θ is seeded from (seed, θ) alone, so a row does not depend on the other θ in the grid, and the global
torch RNG is left as it was.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from benchmark.objectives import gradient_penalty
from benchmark.study.figures import plt, save
from benchmark.study.formatting import fixed

LOG2 = math.log(2.0)
COLUMNS = [
    "theta",
    "js_true",
    "kl_true",
    "em_true",
    "tv_true",
    "js_gan",
    "grad_gan_ns",
    "grad_gan_minimax",
    "em_wgangp",
    "grad_wgangp",
    # signed d loss_G/dθ and whether a descent step moves θ toward 0 (added after the columns above)
    "dem_true",
    "dloss_gan_ns",
    "dloss_gan_minimax",
    "dloss_wgangp",
    "back_gan_ns",
    "back_gan_minimax",
    "back_wgangp",
]
OBJECTIVES = ("gan_ns", "gan_minimax", "wgangp")  # suffixes of the grad_/dloss_/back_ columns
DEFAULT_THETAS: List[float] = [round(-1.0 + 0.1 * i, 1) for i in range(21)]  # 21 values in [-1, 1]
DEFAULT_STEPS = 1000
SMOKE_THETAS: List[float] = [0.0, 0.5, 1.0]
SMOKE_STEPS = 50
GAN_BETAS = (0.5, 0.999)  # DCGAN's Adam betas
WGANGP_BETAS = (0.0, 0.9)  # WGAN-GP paper's Adam betas


def closed_form(theta: float) -> Dict[str, float]:
    """JS, KL (either direction), EM and total variation between P0 = (0, Z) and Pθ = (θ, Z), Z ~ U[0, 1].

    Also ``dem``, the derivative d EM/dθ = sign(θ) (0 at θ = 0, the minimum of |θ|, where 0 is a subgradient).
    """
    theta = float(theta)
    if not math.isfinite(theta):
        raise ValueError(f"theta must be finite, got {theta}")
    apart = theta != 0.0
    return {
        "js": LOG2 if apart else 0.0,
        "kl": math.inf if apart else 0.0,
        "em": abs(theta),
        "tv": 1.0 if apart else 0.0,
        "dem": math.copysign(1.0, theta) if apart else 0.0,
    }


def points_back(theta: float, grad: float) -> float:
    """1.0 when a gradient-descent step θ ← θ - η·grad moves θ toward 0 (sign(grad) = sign(θ)), else 0.0.

    NaN at θ = 0, where there is nowhere to go back to; a gradient of exactly 0 does not move θ (0.0).
    """
    if theta == 0.0:
        return math.nan
    return 1.0 if grad != 0.0 and math.copysign(1.0, grad) == math.copysign(1.0, theta) else 0.0


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))


def _theta_seed(seed: int, theta: float) -> int:
    return (int(seed) * 1_000_003 + int(round(theta * 1_000_000))) % (2**62)


def _sample(n: int, theta, g: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """n points of P0 and n of Pθ (independent Z); theta may be a float or a 0-d tensor requiring grad."""
    z = torch.rand(n, 2, generator=g)
    real = torch.stack([torch.zeros(n), z[:, 0]], 1)
    if isinstance(theta, torch.Tensor):
        fake = torch.stack([theta.expand(n), z[:, 1]], 1)
    else:
        fake = torch.stack([torch.full((n,), float(theta)), z[:, 1]], 1)
    return real, fake


def _train_gan(D: nn.Module, theta: float, steps: int, batch: int, lr: float, g: torch.Generator) -> None:
    opt = torch.optim.Adam(D.parameters(), lr=lr, betas=GAN_BETAS)
    for _ in range(steps):
        real, fake = _sample(batch, theta, g)
        # -log D(real) - log(1 - D(fake)) with D = sigmoid(logit)
        loss = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _train_wgangp(
    f: nn.Module, theta: float, steps: int, batch: int, lr: float, gp_lambda: float, g: torch.Generator
) -> None:
    opt = torch.optim.Adam(f.parameters(), lr=lr, betas=WGANGP_BETAS)
    critic = lambda x, y: f(x)  # noqa: E731  (gradient_penalty's critic signature takes a label)
    for _ in range(steps):
        real, fake = _sample(batch, theta, g)
        gp, _ = gradient_penalty(critic, real, fake, None)  # eps from the (forked, seeded) global RNG
        loss = f(fake).mean() - f(real).mean() + gp_lambda * gp
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _one_theta(
    theta: float, steps: int, batch: int, seed: int, lr: float, gp_lambda: float, eval_batch: int
) -> Dict[str, float]:
    s = _theta_seed(seed, theta)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s)
        init = _mlp().state_dict()
        D, f = _mlp(), _mlp()
        D.load_state_dict(init)
        f.load_state_dict(init)  # both critics start from the same weights
        _train_gan(D, theta, steps, batch, lr, torch.Generator().manual_seed(s + 1))
        _train_wgangp(f, theta, steps, batch, lr, gp_lambda, torch.Generator().manual_seed(s + 2))

    th = torch.tensor(float(theta), requires_grad=True)
    real, fake = _sample(eval_batch, th, torch.Generator().manual_seed(s + 3))
    # GAN: JS estimate and the generator gradients
    lr_, lf = D(real).squeeze(1), D(fake).squeeze(1)
    js_hat = LOG2 + 0.5 * F.logsigmoid(lr_).mean() + 0.5 * F.logsigmoid(-lf).mean()
    (g_ns,) = torch.autograd.grad(F.softplus(-lf).mean(), th, retain_graph=True)  # -E log D(θ, z)
    (g_mm,) = torch.autograd.grad(-F.softplus(lf).mean(), th)  # E log(1 - D(θ, z))
    # WGAN-GP: EM estimate and the generator gradient
    fr, ff = f(real).mean(), f(fake).mean()
    (g_w,) = torch.autograd.grad(-ff, th)
    cf = closed_form(theta)
    signed = {"gan_ns": g_ns.item(), "gan_minimax": g_mm.item(), "wgangp": g_w.item()}
    return {
        "theta": float(theta),
        "js_true": cf["js"],
        "kl_true": cf["kl"],
        "em_true": cf["em"],
        "tv_true": cf["tv"],
        "js_gan": js_hat.item(),
        "grad_gan_ns": abs(signed["gan_ns"]),
        "grad_gan_minimax": abs(signed["gan_minimax"]),
        "em_wgangp": (fr - ff).item(),
        "grad_wgangp": abs(signed["wgangp"]),
        "dem_true": cf["dem"],
        **{f"dloss_{k}": v for k, v in signed.items()},
        **{f"back_{k}": points_back(float(theta), v) for k, v in signed.items()},
    }


def run(
    thetas: Sequence[float],
    steps: int,
    batch: int = 256,
    seed: int = 0,
    progress: bool = True,
    *,
    lr: float = 1e-3,
    gp_lambda: float = 10.0,
    eval_batch: int = 8192,
) -> pd.DataFrame:
    """One row per θ (in the order given): closed forms, GAN and WGAN-GP estimates and generator gradients.

    ``steps`` critic updates of ``batch`` samples each for each of the two critics at every θ. Deterministic for
    given arguments; each row depends only on (seed, θ, steps, batch, lr, gp_lambda, eval_batch).
    """
    thetas = [float(t) for t in thetas]
    if not thetas:
        raise ValueError("thetas must not be empty")
    if any(not math.isfinite(t) for t in thetas):
        raise ValueError(f"thetas must be finite, got {thetas}")
    if int(steps) < 1 or int(batch) < 1 or int(eval_batch) < 1:
        raise ValueError(f"steps, batch and eval_batch must be >= 1 (got {steps}, {batch}, {eval_batch})")
    rows = []
    for t in tqdm(thetas, desc="parallel lines", unit="θ", disable=not progress):
        rows.append(_one_theta(t, int(steps), int(batch), int(seed), lr, gp_lambda, int(eval_batch)))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs.update(steps=int(steps), batch=int(batch), seed=int(seed), lr=lr, gp_lambda=gp_lambda)
    return df


SAVE = {"dpi": 110, "format": "png"}  # how the figure is written


def plot(df: pd.DataFrame, path) -> Path:
    """``figure(df)`` written to ``path`` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(figure(df), path, **SAVE)
    return path


def figure(df: pd.DataFrame):
    """Two panels: distances vs θ (closed forms and estimates), and |generator gradient| vs θ (log scale), each
    marker filled when a descent step moves θ toward 0 and hollow when it moves θ away (``back_*`` columns)."""
    d = df.sort_values("theta")
    fig, (ax, bx) = plt().subplots(1, 2, figsize=(13, 5.2))
    _distances(ax, d)
    _gradients(bx, d, df.attrs.get("steps"))
    fig.suptitle(
        "Parallel lines (Arjovsky et al. 2017, Example 1): distances between P0 and Pθ, and the generator gradient "
        "each objective gives",
        fontsize=12,
    )
    fig.tight_layout()
    return fig


def _distances(ax, d: pd.DataFrame) -> None:
    """Closed forms drawn densely (JS with its jump at θ = 0) and the two critics' estimates."""
    th = d["theta"].to_numpy(float)
    lo, hi = (th.min(), th.max()) if len(th) else (-1.0, 1.0)
    lo, hi = min(lo, -0.05), max(hi, 0.05)
    grid = np.linspace(lo, hi, 401)
    ax.plot(grid, np.abs(grid), color="tab:blue", lw=2, label="EM = |θ| (closed form)")
    ax.plot(
        grid[grid < 0], np.full((grid < 0).sum(), LOG2), color="tab:red", lw=2, label="JS = log 2 for θ≠0 (closed form)"
    )
    ax.plot(grid[grid > 0], np.full((grid > 0).sum(), LOG2), color="tab:red", lw=2)
    ax.plot([0], [0], "o", color="tab:red", ms=7, mfc="white", mew=2, zorder=5)
    ax.plot(
        th, d["em_wgangp"], "s", color="tab:blue", mfc="none", ms=8, mew=1.6, label="WGAN-GP critic's estimate of EM"
    )
    ax.plot(
        th, d["js_gan"], "^", color="tab:red", mfc="none", ms=8, mew=1.6, label="GAN discriminator's estimate of JS"
    )
    ax.annotate(
        "KL(P0‖Pθ) = KL(Pθ‖P0) = ∞ for every θ ≠ 0\n(and 0 at θ = 0): off the chart",
        xy=(0.5, 0.97),
        xycoords="axes fraction",
        ha="center",
        va="top",
        fontsize=9.5,
        color="tab:purple",
        bbox=dict(boxstyle="round", fc="white", ec="tab:purple", alpha=0.9),
    )
    ax.set_xlabel("θ  (Pθ = law of (θ, Z), P0 = law of (0, Z), Z ~ U[0,1])")
    ax.set_ylabel("distance")
    top = max(1.25, float(np.nanmax(np.abs(d[["em_wgangp", "js_gan"]].to_numpy(float)))) * 1.1 if len(d) else 1.25)
    ax.set_ylim(
        min(-0.05, float(np.nanmin(d[["em_wgangp", "js_gan"]].to_numpy(float))) - 0.05) if len(d) else -0.05, top + 0.2
    )
    ax.set_title("Distances: JS jumps to log 2 as soon as θ≠0; EM grows like |θ|")
    ax.legend(loc="lower right", fontsize=8.5, framealpha=0.9)
    ax.grid(alpha=0.3)


GRADIENT_SERIES = (
    (
        "gan_ns",
        dict(marker="^", color="tab:orange"),
        "GAN, non-saturating  −E log D(θ,z)\n(its size is the slope of D's logit, not of a distance)",
    ),
    ("gan_minimax", dict(marker="v", color="tab:red"), "GAN, minimax  E log(1−D(θ,z))"),
    ("wgangp", dict(marker="s", color="tab:blue"), "WGAN-GP  −E f(θ,z)"),
)
FLOOR = 1e-8  # |gradient| floor on the log axis, so exact zeros stay drawable


def _gradients(bx, d: pd.DataFrame, steps) -> None:
    """|d loss_G / dθ| on a log scale and its direction as the marker's fill: filled = a gradient-descent step
    moves θ toward 0, hollow = away from 0, half = toward 0 in only some of the seeds averaged (back_* is then
    a fraction). Legend in the head-room above."""
    from matplotlib.lines import Line2D  # with pyplot (figures.plt)

    th = d["theta"].to_numpy(float)
    vals, handles, fills = [], [], set()
    for key, style, label in GRADIENT_SERIES:
        v = np.maximum(d[f"grad_{key}"].to_numpy(float), FLOOR)
        vals.append(v)
        back = d[f"back_{key}"].to_numpy(float) if f"back_{key}" in d.columns else None
        bx.plot(th, v, ls="-", lw=1.2, color=style["color"])
        fills |= _direction_markers(bx, th, v, back, style)
        handles.append(Line2D([], [], lw=1.2, **{k: style[k] for k in ("marker", "color")}, ms=7, label=label))
    handles.append(bx.axhline(1.0, color="tab:blue", ls=":", lw=1.2, label="|d EM/dθ| = 1 (θ ≠ 0)"))
    proxy = dict(ls="none", marker="o", ms=7, mew=1.6, color="0.35", mec="0.35")
    for name, extra, label in (
        ("direction", {}, "filled: a descent step on the loss moves θ toward 0"),
        ("direction", dict(mfc="white"), "hollow: it moves θ away from 0"),
        ("mixed", dict(fillstyle="left", markerfacecoloralt="white"), "half: toward 0 in some seeds only"),
    ):
        if name in fills:
            handles.append(Line2D([], [], **{**proxy, **extra}, label=label))
    bx.set_yscale("log")
    allv = np.concatenate(vals) if vals else np.array([1.0])
    allv = allv[np.isfinite(allv)]
    vmin, vmax = (float(allv.min()), float(allv.max())) if allv.size else (1e-3, 1e2)
    lo_y, hi_y = min(vmin, 0.5) / 3, max(vmax, 2.0)
    bx.set_ylim(lo_y, hi_y * (hi_y / lo_y) ** 0.7)  # top ~40% of the log range left free for the legend
    bx.set_xlabel("θ")
    bx.set_ylabel("|d generator loss / dθ|  (log scale)")
    bx.set_title(
        "Generator gradient at θ: magnitude, and whether it points back to θ = 0"
        + (f"\n(critics trained {steps} steps)" if steps else "")
    )
    bx.legend(handles=handles, loc="upper center", fontsize=8, framealpha=0.95)
    bx.grid(alpha=0.3, which="both")


def _direction_markers(bx, th: np.ndarray, v: np.ndarray, back, style) -> set:
    """One objective's markers, filled by direction (``back``: None for results written before it was
    recorded); returns the kinds of fill drawn (for the legend)."""
    mk = dict(ls="none", ms=7, mew=1.6, mec=style["color"], marker=style["marker"], color=style["color"])
    if back is None:
        bx.plot(th, v, **mk)
        return set()
    with np.errstate(invalid="ignore"):
        groups = {
            "toward": (back >= 1.0, dict()),
            "away": (back <= 0.0, dict(mfc="white")),
            "mixed": ((back > 0.0) & (back < 1.0), dict(fillstyle="left", markerfacecoloralt="white")),
        }
    fills = {"direction"}
    for name, (m, extra) in groups.items():
        if m.any():
            fills.add(name)
            bx.plot(th[m], v[m], **{**mk, **extra})
    at0 = np.isnan(back)
    if at0.any():  # θ = 0: no direction to go back in
        bx.plot(th[at0], v[at0], ls="none", marker=".", color=style["color"], ms=6)
    return fills


_HEADERS = {
    "theta": "θ",
    "js_true": "JS",
    "kl_true": "KL",
    "em_true": "EM",
    "tv_true": "TV",
    "dem_true": "dEM/dθ",
    "js_gan": "JS (GAN est.)",
    "em_wgangp": "EM (WGAN-GP est.)",
    "grad_gan_ns": "\\|∇θ\\| GAN ns",
    "grad_gan_minimax": "\\|∇θ\\| GAN minimax",
    "grad_wgangp": "\\|∇θ\\| WGAN-GP",
    "dloss_gan_ns": "∇θ GAN ns",
    "dloss_gan_minimax": "∇θ GAN minimax",
    "dloss_wgangp": "∇θ WGAN-GP",
    "back_gan_ns": "to 0? GAN ns",
    "back_gan_minimax": "to 0? GAN minimax",
    "back_wgangp": "to 0? WGAN-GP",
}
TABLE_NOTE = (
    "∇θ is the signed generator gradient d loss_G/dθ after the critic is trained; dEM/dθ = sign(θ) is the closed "
    'form. "to 0?" says whether a gradient-descent step on that loss moves θ toward 0 (sign(∇θ) = sign(θ)): '
    "yes, no, or the share of seeds where it does; – at θ = 0."
)
_TABLE_HEAD = ["theta", "js_true", "kl_true", "em_true", "tv_true", "dem_true", "js_gan", "em_wgangp"]


def _fmt_back(x) -> str:
    """1.0 -> yes (a descent step moves θ toward 0), 0.0 -> no, a mean over seeds -> the share of seeds."""
    x = float(x)
    if math.isnan(x):
        return "–"
    return "yes" if x >= 1.0 else "no" if x <= 0.0 else f"{x:.0%} of seeds"


def _cell(col, x) -> str:
    c = str(col)
    return _fmt_back(x) if c.startswith("back_") else fixed(x, small=c.startswith(("grad_", "dloss_")))


def _table_columns(df: pd.DataFrame) -> List[str]:
    """Closed forms and estimates, then per objective its signed gradient and whether it points back to θ = 0
    (or, for results written before those were recorded, its magnitude); then any column not known here."""
    cols = [c for c in _TABLE_HEAD if c in df.columns]
    for k in OBJECTIVES:
        signed = [f"dloss_{k}", f"back_{k}"]
        cols += signed if all(c in df.columns for c in signed) else [c for c in [f"grad_{k}"] if c in df.columns]
    return cols + [c for c in df.columns if c not in COLUMNS]


def markdown_table(df: pd.DataFrame) -> str:
    """Markdown table, one row per θ (sorted), numbers to 3 decimals, ∞ for inf.

    Per objective the signed generator gradient ∇θ = d loss_G/dθ and "to 0?": yes when a gradient-descent step
    moves θ toward 0 (sign(∇θ) = sign(θ)), no when it moves θ away, the share of seeds for a mean over seeds,
    – at θ = 0. Gradients below 0.0005 in size are written x.xxe-yy rather than 0.000, so a vanishing gradient
    keeps its size (and sign).
    """
    cols = _table_columns(df)
    d = df.sort_values("theta") if "theta" in df.columns else df
    lines = [
        "| " + " | ".join(_HEADERS.get(c, str(c)) for c in cols) + " |",
        "|" + "|".join("---:" for _ in cols) + "|",
    ]
    for _, r in d[cols].iterrows():
        lines.append("| " + " | ".join(_cell(c, r[c]) for c in cols) + " |")
    return "\n".join(lines)

"""The metric registry, the protocol names of scores, and the scoring of one sample set.

A metric is one function registered in ``METRICS`` (``@metric("name", ...)``); it reads what it needs
from a lazily-filled ``Context`` (classifier outputs, torch-fidelity results, the real split) and returns
``(scores, details)``: scores are named floats, details are lists/paths kept beside them.

Each metric declares the scores it writes, once, in its registration: ``@metric("fid", ...,
scores=(lower("fid", "FID", split=True),))`` (a ``ScoreSpec``: base name, direction, which protocol tags
follow, label). The function names its scores with ``ctx.name("fid")``; ``score()`` refuses a name no
declaration writes; the report and the gate read direction and base from ``benchmark.evaluation.scores``.
Adding a score is one line here.

Score names fix their protocol: ``<figure><N>[_<split>]``

* ``<N>`` is the number of generated samples the figure is computed from, ``10k`` for 10,000 (multiples of
  1000 are written ``<n/1000>k``, others in full: ``2500``);
* ``_<split>`` (``_test`` / ``_train``) is present exactly when real samples of that split enter the
  figure. Real sets are the first ``min(N, len(split))`` samples of the split (stacked-mnist: a seeded set).
* Class-distribution figures compare with the class shares of the *training* labels (what the GAN was
  trained to match; Mode Score's p*(y)), so they carry no split.

Registered metrics (``--metrics``) and the scores they write:

  image sets (mnist, fashion-mnist, digits), defaults: fid, kid, is, pr, coverage, lpips (+ conditional)
    fid          fid10k_test                          torch-fidelity FID on classifier features
    kid          kid10k_test, kid_std10k_test         torch-fidelity KID (subsets of min(1000, N))
    is           is10k, is_std10k                     torch-fidelity IS on classifier logits (10 splits)
    pr           precision10k_test, recall10k_test    torch-fidelity precision/recall (k = 3)
    coverage     classes_covered10k, class_kl10k, class_entropy10k, mode_score10k   (see coverage.py)
    conditional  label_agreement10k, intra_fid10k_test   (needs labels; FID of each requested class against
                 all real images of that class in the split, averaged over classes)
    lpips        lpips10k, lpips_real10k_test (+ lpips_class10k with labels)   (see diversity.py)
  stacked-mnist, defaults: modes, kl  (26,000 samples, VEEGAN/PacGAN protocol)
    modes        modes26k     (of 1000)          kl   kl26k   KL(generated || uniform over 1000)
  2D mixtures (ring8, grid25), defaults: modes, hq, rkl  (2,500 samples, PacGAN protocol; mixtures.py)
    modes        modes2500    hq   hq2500 (%)    rkl  rkl2500
  any image set, opt-in:
    tsne         (a PNG; its path in details)
  runs only (``evaluate_run``), default there:
    dynamics     d_loss_var_last200, grad_norm_mean_last200, ... (see dynamics.py)

Every result names its evaluator: the feature extractor and its sha256, the classifier's sha256 and the
LPIPS backbone.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from benchmark.data import SPLITS, check_split, dataset_info, load_dataset
from benchmark.errors import UserError
from benchmark.evaluation.classifier import classify, load_classifier, load_second, readable_tau, second_name
from benchmark.evaluation.coverage import (
    EVALUATOR_DEPENDENT,
    TV_BOUND,
    coverage,
    cross_check,
    label_agreement,
    stacked_modes,
)
from benchmark.evaluation.diversity import DEFAULT_PAIRS, diversity, lpips_backbone, lpips_distance, score_prefix
from benchmark.evaluation.dynamics import dynamics
from benchmark.evaluation.fidelity import EXTRACTORS, evaluator, fidelity_metrics
from benchmark.evaluation.mixtures import PROTOCOL_SAMPLES, mixture_metrics
from benchmark.evaluation.tsne import tsne_plot
from benchmark.io import git_commit
from benchmark.registry import Registry

METRICS = Registry("metric")

Scores = Dict[str, float]
Details = Dict[str, Any]

STACKED_PROTOCOL = 26_000
COVERAGE_THRESHOLD = 0.1


COUNTS = ("samples", "window", "")


@dataclass(frozen=True)
class ScoreSpec:
    """One score a metric writes, declared once in its ``@metric(scores=...)``: the name is ``base`` followed
    by the protocol tags, built only by ``name()``; the report and the gate read ``direction`` from here
    (through ``benchmark.evaluation.scores``)."""

    base: str
    direction: int  # -1 lower is better, +1 higher is better, 0 no preferred direction (not gated)
    count: str = "samples"  # the number after the base: samples (tag(N): 10k, 2500), window (log steps), "" none
    split: bool = False  # "_<split>" follows: real samples of that split enter the score
    label: str = ""  # for people: table headers, --help
    unit: str = ""

    def __post_init__(self) -> None:
        if self.direction not in (-1, 0, 1) or self.count not in COUNTS or not self.base.isidentifier():
            raise ValueError(f"bad score declaration {self}")

    def name(self, n: Optional[int] = None, split: Optional[str] = None) -> str:
        """The score's name under a protocol: ScoreSpec('fid', -1, split=True).name(10000, 'test') -> 'fid10k_test'."""
        out = self.base
        if self.count:
            if n is None:
                raise ValueError(f"score '{self.base}' carries its {self.count} count: give n")
            out += tag(n) if self.count == "samples" else str(int(n))
        if self.split:
            if split not in SPLITS:
                raise ValueError(f"score '{self.base}' carries its split: give one of {SPLITS}, got {split!r}")
            out += f"_{split}"
        return out

    def protocol(self, name: str) -> Optional[Dict[str, Any]]:
        """{'n': N or None, 'split': S or None} when ``name`` is this score under some protocol, else None.
        Exact: the name must be what ``name()`` writes for that protocol (no other spelling is accepted)."""
        if not name.startswith(self.base):
            return None
        rest, split = name[len(self.base) :], None
        if self.split:
            split = next((s for s in SPLITS if rest.endswith(f"_{s}")), None)
            if split is None:
                return None
            rest = rest[: -len(split) - 1]
        n = _untag(rest, self.count)
        if n is None and (self.count or rest):
            return None
        return {"n": n, "split": split}


def lower(base: str, label: str = "", **kw: Any) -> ScoreSpec:
    """A score where lower is better: ``lower("fid", "FID", split=True)``."""
    return ScoreSpec(base, -1, label=label, **kw)


def higher(base: str, label: str = "", **kw: Any) -> ScoreSpec:
    """A score where higher is better: ``higher("modes", "modes captured", unit="of 1000")``."""
    return ScoreSpec(base, 1, label=label, **kw)


def neutral(base: str, label: str = "", **kw: Any) -> ScoreSpec:
    """A score with no preferred direction (a spread, a diagnostic): reported, never gated."""
    return ScoreSpec(base, 0, label=label, **kw)


def _untag(s: str, count: str) -> Optional[int]:
    """The inverse of the count tag, exact: '10k' -> 10000 (samples), '200' -> 200 (window); None if not one."""
    if not count or not s:
        return None
    digits = s[:-1] if count == "samples" and s.endswith("k") else s
    if not (digits.isascii() and digits.isdigit()):
        return None
    n = int(digits) * (1000 if digits != s else 1)
    return n if (tag(n) if count == "samples" else str(n)) == s else None


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[["Context"], Tuple[Scores, Details]]
    families: Tuple[str, ...]  # image | stacked | points
    scores: Tuple[ScoreSpec, ...] = ()  # every score the metric may write (see ScoreSpec)
    min_n: Callable[["Context"], int] = lambda ctx: 2
    protocol_n: Dict[str, int] = field(default_factory=dict)  # family -> fixed number of samples used
    fidelity: Tuple[str, ...] = ()  # torch-fidelity metrics needed (fid, kid, isc, prc)
    needs_labels: bool = False
    needs_run: bool = False
    help: str = ""


def metric(name: str, families: Sequence[str], **kw: Any) -> Callable:
    """Register ``fn(ctx) -> (scores, details)`` as metric ``name``; ``scores=(lower(...), higher(...))``
    declares what it writes (a score base belongs to one metric)."""

    def deco(fn: Callable) -> Callable:
        m = Metric(name=name, fn=fn, families=tuple(families), **kw)
        for s in m.scores:
            owner = next(
                (o.name for o in map(METRICS.get, METRICS.names()) if s.base in {x.base for x in o.scores}), None
            )
            if owner is not None:
                raise ValueError(f"score '{s.base}' of metric '{name}' is already declared by metric '{owner}'")
        METRICS.register(name)(m)
        return fn

    return deco


def tag(n: int) -> str:
    """10000 -> '10k', 26000 -> '26k', 2500 -> '2500'."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def family(dataset: str) -> str:
    _, _, kind = dataset_info(dataset)
    if kind == "points":
        return "points"
    return "stacked" if dataset == "stacked-mnist" else "image"


DEFAULTS = {
    "image": ("fid", "kid", "is", "pr", "coverage", "lpips"),
    "stacked": ("modes", "kl"),
    "points": ("modes", "hq", "rkl"),
}


def default_metrics(dataset: str, conditional: bool = False, run: bool = False) -> List[str]:
    fam = family(dataset)
    out = list(DEFAULTS[fam])
    if conditional and fam == "image":
        out.append("conditional")
    if run:
        out.append("dynamics")
    return out


def parse_metrics(spec: Optional[str | Sequence[str]]) -> Optional[List[str]]:
    """'fid,kid' or ['fid', 'kid'] -> checked, de-duplicated list; None stays None (defaults)."""
    if spec is None:
        return None
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: List[str] = []
    for m in (s.strip() for s in items):
        if not m:
            continue
        METRICS.get(m)
        if m not in out:
            out.append(m)
    if not out:
        raise UserError(f"--metrics is empty; give a comma-separated list of: {', '.join(METRICS.names())}")
    return out


# ------------------------------------------------------------------------------------------------
# the context: everything a metric may need, computed once, on demand


class Context:
    def __init__(
        self,
        x: Tensor,
        y: Optional[Tensor],
        dataset: str,
        split: str = "test",
        data_root: Optional[str] = None,
        extractor: str = "classifier",
        device: str | torch.device = "cpu",
        cache_root: Optional[str | Path] = None,
        progress: bool = False,
        seed: int = 0,
        tsne_path: Optional[str | Path] = None,
        run_dir: Optional[str | Path] = None,
        step: Optional[int] = None,
        fidelity_wanted: Sequence[str] = (),
        num_samples: Optional[int] = None,
    ):
        # protocol metrics (stacked, mixtures) read the first samples of x_full; the others the first n
        n = len(x) if num_samples is None else min(num_samples, len(x))
        self.x_full, self.x = x, x[:n]
        self.y = None if y is None else y[:n]
        self.dataset, self.split = dataset, split
        self.data_root = data_root
        self.extractor = extractor
        self.device = torch.device(device)
        self.cache_root = cache_root
        self.progress = progress
        self.seed = seed
        self.tsne_path = Path(tsne_path) if tsne_path else None
        self.run_dir, self.step = run_dir, step
        self.fidelity_wanted = tuple(fidelity_wanted)
        self.shape, self.num_classes, self.kind = dataset_info(dataset)
        self.family = family(dataset)
        self.n = n
        self.t = tag(self.n)

    def name(self, base: str, n: Optional[int] = None) -> str:
        """The declared score ``base`` under this context's protocol (``n`` for fixed-count protocols)."""
        return score_spec(base).name(self.n if n is None else n, self.split)

    # ---- real data -----------------------------------------------------------------------------
    def real_dataset(self, split: Optional[str] = None):
        return load_dataset(self.dataset, root=self.data_root, split=split or self.split)

    @cached_property
    def real(self):
        return self.real_dataset()

    def n_real(self) -> int:
        if self.family == "stacked":
            return self.n
        return min(self.n, len(self.real))

    def real_images(self, n: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        x, y = self.real.reference(n if n is not None else self.n_real())
        return x.cpu(), y.cpu()

    @cached_property
    def train_prior(self) -> Tensor:
        """Class shares of the training labels (uniform for stacked/points: their modes are equiprobable)."""
        if self.family != "image":
            return torch.ones(self.num_classes, dtype=torch.float64)
        labels = self.real_dataset("train").labels.cpu()
        return torch.bincount(labels, minlength=self.num_classes).double()

    # ---- the classifier --------------------------------------------------------------------------
    @cached_property
    def classifier(self):
        return load_classifier(self.dataset, device=self.device)

    @cached_property
    def gen_outputs(self) -> Tuple[Tensor, Tensor]:
        """(features, logits) of the generated samples (image family)."""

        return classify(self.classifier[0], self.x, progress=self.progress, desc="classifying samples")

    @cached_property
    def second(self):
        """The independent second evaluator (classifier.SECOND) and its sha256."""

        return load_second(self.dataset, device=self.device)

    @cached_property
    def gen_outputs_second(self) -> Tuple[Tensor, Tensor]:
        return classify(self.second[0], self.x, progress=self.progress, desc="classifying samples (2nd)")

    @cached_property
    def readable_taus(self) -> Tuple[float, float]:
        return readable_tau(self.dataset), readable_tau(second_name(self.dataset))

    @cached_property
    def real_outputs(self) -> Tuple[Tensor, Tensor]:
        return classify(self.classifier[0], self.real_images()[0], progress=self.progress, desc="classifying real")

    # ---- torch-fidelity --------------------------------------------------------------------------
    @cached_property
    def fidelity(self) -> Dict[str, float]:
        n_real = self.n_real()
        return fidelity_metrics(
            self.x,
            lambda: self.real_images(n_real)[0],
            n_real,
            self.dataset,
            self.split,
            self.fidelity_wanted,
            extractor=self.extractor,
            root=self.cache_root,
            device=self.device,
            progress=self.progress,
        )

    # ---- LPIPS -------------------------------------------------------------------------------------
    @cached_property
    def lpips(self):
        return lpips_distance(self.dataset, self.device)

    # ---- mode counting -------------------------------------------------------------------------
    @cached_property
    def stacked(self) -> Dict[str, Any]:
        x = self.x_full[:STACKED_PROTOCOL]
        n, c = x.shape[:2]
        _, logits = classify(
            self.classifier[0], x.reshape(n * c, 1, *x.shape[2:]), progress=self.progress, desc="labelling channels"
        )
        return stacked_modes(logits.argmax(1).reshape(n, c))

    @cached_property
    def mixture(self) -> Dict[str, Any]:
        d = load_dataset(self.dataset, root=self.data_root, split=self.split)
        return mixture_metrics(self.x_full[:PROTOCOL_SAMPLES], d.means, d.std)


# ------------------------------------------------------------------------------------------------
# the metrics


def _image_min(ctx: Context) -> int:
    return 10 * ctx.num_classes if ctx.family == "image" else 10


@metric(
    "fid",
    ("image", "stacked"),
    fidelity=("fid",),
    min_n=lambda ctx: 100,
    help="Frechet distance",
    scores=(lower("fid", "FID", split=True),),
)
def _fid(ctx: Context) -> Tuple[Scores, Details]:
    return {ctx.name("fid"): ctx.fidelity["frechet_inception_distance"]}, {}


@metric(
    "kid",
    ("image", "stacked"),
    fidelity=("kid",),
    min_n=lambda ctx: 100,
    help="kernel distance",
    scores=(lower("kid", "KID", split=True), neutral("kid_std", "KID std over subsets", split=True)),
)
def _kid(ctx: Context) -> Tuple[Scores, Details]:
    f = ctx.fidelity
    return {
        ctx.name("kid"): f["kernel_inception_distance_mean"],
        ctx.name("kid_std"): f["kernel_inception_distance_std"],
    }, {}


@metric(
    "is",
    ("image", "stacked"),
    fidelity=("isc",),
    min_n=lambda ctx: 100,
    help="Inception Score",
    scores=(higher("is", "IS"), neutral("is_std", "IS std over splits")),
)
def _is(ctx: Context) -> Tuple[Scores, Details]:
    f = ctx.fidelity
    return {ctx.name("is"): f["inception_score_mean"], ctx.name("is_std"): f["inception_score_std"]}, {}


@metric(
    "pr",
    ("image", "stacked"),
    fidelity=("prc",),
    min_n=lambda ctx: 100,
    help="precision and recall",
    scores=(higher("precision", "precision", split=True), higher("recall", "recall", split=True)),
)
def _pr(ctx: Context) -> Tuple[Scores, Details]:
    f = ctx.fidelity
    return {ctx.name("precision"): f["precision"], ctx.name("recall"): f["recall"]}, {}


@metric(
    "coverage",
    ("image",),
    min_n=_image_min,
    help="class coverage, class KL, entropy, Mode Score; two-evaluator agreement, TV, unreadable share",
    scores=(
        higher("classes_covered", "classes covered", unit="classes"),
        lower("class_kl", "class KL"),
        higher("class_entropy", "class entropy", unit="nats"),
        higher("mode_score", "Mode Score"),
        neutral("evaluator_agreement", "evaluators' agreement"),
        neutral("evaluator_tv", "evaluators' class-histogram TV"),
        lower("unreadable_share", "share read by neither evaluator"),
        higher("classes_covered_readable", "classes covered (readable samples)", unit="classes"),
    ),
)
def _coverage(ctx: Context) -> Tuple[Scores, Details]:

    _, logits = ctx.gen_outputs
    c = coverage(logits.argmax(1), logits, ctx.train_prior, COVERAGE_THRESHOLD)
    _, logits2 = ctx.gen_outputs_second
    tau, tau2 = ctx.readable_taus
    x = cross_check(logits, logits2, ctx.train_prior, tau, tau2, COVERAGE_THRESHOLD)
    t = ctx.t
    details: Details = {
        f"class_hist{t}": c["hist"],
        "coverage_threshold": COVERAGE_THRESHOLD,
        f"class_hist_second{t}": x["hist_second"],
        "readable_tau": [tau, tau2],
        "evaluator_tv_bound": TV_BOUND,
        "evaluator_dependent": x["evaluator_dependent"],
    }
    if x["evaluator_dependent"]:
        details["evaluator_warning"] = EVALUATOR_DEPENDENT
    return (
        {
            f"classes_covered{t}": float(c["covered"]),
            f"class_kl{t}": c["kl"],
            f"class_entropy{t}": c["entropy"],
            f"mode_score{t}": c["mode_score"],
            f"evaluator_agreement{t}": x["agreement"],
            f"evaluator_tv{t}": x["tv"],
            f"unreadable_share{t}": x["unreadable_share"],
            f"classes_covered_readable{t}": float(x["covered_readable"]),
        },
        details,
    )


@metric(
    "conditional",
    ("image",),
    needs_labels=True,
    min_n=lambda ctx: 100 * ctx.num_classes,
    help="label agreement and intra-class FID of a conditional generator",
    scores=(higher("label_agreement", "label agreement"), lower("intra_fid", "intra-class FID", split=True)),
)
def _conditional(ctx: Context) -> Tuple[Scores, Details]:
    assert ctx.y is not None
    _, logits = ctx.gen_outputs
    agree = label_agreement(logits.argmax(1), ctx.y)
    real = ctx.real
    xr_all, yr_all = real.images.cpu(), real.labels.cpu()
    per: List[float] = []
    for k in range(ctx.num_classes):
        xg = ctx.x[ctx.y.cpu() == k]
        mask = yr_all == k
        nk = int(mask.sum())
        if len(xg) < 2 or nk < 2:
            per.append(float("nan"))
            continue
        r = fidelity_metrics(
            xg,
            lambda m=mask: xr_all[m],
            nk,
            ctx.dataset,
            ctx.split,
            ("fid",),
            extractor=ctx.extractor,
            root=ctx.cache_root,
            device=ctx.device,
            cache_tag=f"-class{k}",
        )
        per.append(r["frechet_inception_distance"])
    valid = [v for v in per if v == v]
    t = ctx.t
    return (
        {ctx.name("label_agreement"): agree, ctx.name("intra_fid"): sum(valid) / len(valid) if valid else math.nan},
        {f"intra_fid_per_class{t}_{ctx.split}": per},
    )


# LPIPS diversity has no "better" side: real data sets the level, and noise beats it (not gated). Without
# AlexNet's weights the same formula runs over the evaluator's conv features; that is not LPIPS, so its
# scores are named feat_div* (diversity.py says which backbone ran, in one line, when AlexNet is absent).
@metric(
    "lpips",
    ("image", "stacked"),
    min_n=lambda ctx: 2,
    help="LPIPS diversity, generated and real (feat_div* over the evaluator's features without AlexNet)",
    scores=(
        neutral("lpips", "LPIPS diversity"),
        neutral("lpips_real", "LPIPS diversity of real", split=True),
        neutral("lpips_class", "LPIPS diversity within a class"),
        neutral("feat_div", "feature diversity (not LPIPS)"),
        neutral("feat_div_real", "feature diversity of real", split=True),
        neutral("feat_div_class", "feature diversity within a class"),
    ),
)
def _lpips(ctx: Context) -> Tuple[Scores, Details]:

    dist, backbone = ctx.lpips
    t = ctx.t
    pre = score_prefix(backbone)
    gen = diversity(
        ctx.x,
        dist,
        DEFAULT_PAIRS,
        ctx.seed,
        labels=ctx.y,
        num_classes=ctx.num_classes if ctx.y is not None else 0,
        device=ctx.device,
    )
    real = diversity(ctx.real_images()[0], dist, DEFAULT_PAIRS, ctx.seed, device=ctx.device)
    scores = {f"{pre}{t}": gen["mean"], f"{pre}_real{t}_{ctx.split}": real["mean"]}
    details: Details = {"lpips_backbone": backbone, f"{pre}_pairs": DEFAULT_PAIRS}
    if ctx.y is not None:
        scores[f"{pre}_class{t}"] = gen["class_mean"]
        details[f"{pre}_per_class{t}"] = gen["per_class"]
    return scores, details


@metric(
    "modes",
    ("stacked", "points"),
    min_n=lambda ctx: _protocol(ctx),
    protocol_n={"stacked": STACKED_PROTOCOL, "points": 2500},
    help="modes captured (stacked-mnist: of 1000; mixtures: PacGAN)",
    scores=(higher("modes", "modes captured"),),
)
def _modes(ctx: Context) -> Tuple[Scores, Details]:
    if ctx.family == "stacked":
        return {ctx.name("modes", STACKED_PROTOCOL): float(ctx.stacked["modes"])}, {}
    m = ctx.mixture
    return {ctx.name("modes", _protocol(ctx)): float(m["modes"])}, {f"mode_hist{tag(_protocol(ctx))}": m["hist"]}


@metric(
    "kl",
    ("stacked",),
    min_n=lambda ctx: STACKED_PROTOCOL,
    protocol_n={"stacked": STACKED_PROTOCOL},
    help="stacked-mnist KL(generated || uniform over 1000)",
    scores=(lower("kl", "KL to uniform modes"),),
)
def _kl(ctx: Context) -> Tuple[Scores, Details]:
    return {ctx.name("kl", STACKED_PROTOCOL): ctx.stacked["kl"]}, {}


@metric(
    "hq",
    ("points",),
    min_n=lambda ctx: 2500,
    protocol_n={"points": 2500},
    help="% high-quality samples (within 3 std of the nearest mode)",
    scores=(higher("hq", "high-quality samples", unit="%"),),
)
def _hq(ctx: Context) -> Tuple[Scores, Details]:
    return {ctx.name("hq", 2500): ctx.mixture["hq"]}, {}


@metric(
    "rkl",
    ("points",),
    min_n=lambda ctx: 2500,
    protocol_n={"points": 2500},
    help="reverse KL of the mode histogram to uniform",
    scores=(lower("rkl", "reverse KL to uniform modes"),),
)
def _rkl(ctx: Context) -> Tuple[Scores, Details]:
    return {ctx.name("rkl", 2500): ctx.mixture["rkl"]}, {}


@metric("tsne", ("image",), min_n=lambda ctx: 10, help="t-SNE PNG of classifier features, real vs generated")
def _tsne(ctx: Context) -> Tuple[Scores, Details]:
    assert ctx.tsne_path is not None
    fg, lg = ctx.gen_outputs
    fr, lr = ctx.real_outputs
    title = f"{ctx.dataset}" + (f", step {ctx.step}" if ctx.step is not None else "")
    path = tsne_plot(fr, lr.argmax(1), fg, lg.argmax(1), ctx.tsne_path, seed=ctx.seed, title=title)
    return {}, {"tsne_png": str(path)}


# dynamics.py writes these names itself ('<base><window>'); score() checks them against this declaration
@metric(
    "dynamics",
    ("image", "stacked", "points"),
    needs_run=True,
    min_n=lambda ctx: 0,
    help="loss variance and |grad D| over the last 200 logged steps",
    scores=tuple(
        neutral(b, lab, count="window")
        for b, lab in (
            ("d_loss_var_last", "critic loss variance"),
            ("g_loss_var_last", "generator loss variance"),
            ("grad_norm_mean_last", "mean |grad D| at interpolates"),
            ("grad_norm_std_last", "batch spread of |grad D|"),
            ("grad_norm_max_last", "largest mean |grad D|"),
            ("wdist_mean_last", "Wasserstein estimate"),
            ("wdist_var_last", "Wasserstein estimate variance"),
        )
    ),
)
def _dynamics(ctx: Context) -> Tuple[Scores, Details]:
    return dynamics(ctx.run_dir, ctx.step), {}  # type: ignore[arg-type]


def _protocol(ctx: Context) -> int:
    return {"stacked": STACKED_PROTOCOL, "points": 2500}.get(ctx.family, 0)


def score_spec(base: str) -> ScoreSpec:
    """The declaration of score ``base`` (e.g. 'fid'), whichever metric declares it."""
    for name in METRICS.names():
        for s in METRICS.get(name).scores:
            if s.base == base:
                return s
    raise KeyError(f"score '{base}' is not declared by any metric; add it to its @metric(scores=...)")


def samples_needed(dataset: str, metrics: Sequence[str], num_samples: int) -> int:
    """How many samples to generate so every metric gets its protocol's count."""
    fam = family(dataset)
    n = num_samples
    for m in metrics:
        n = max(n, METRICS.get(m).protocol_n.get(fam, 0))
    return n


# ------------------------------------------------------------------------------------------------
# checks and the evaluator's identity


def check_samples(x: Any, y: Any, dataset: str, what: str = "samples") -> Tuple[Tensor, Optional[Tensor]]:
    """Shape, dtype, range and label checks of a sample set; returns (float x in [-1, 1], int64 y or None).

    uint8 images are read as [0, 255]; float images must lie in [-1, 1] (points: any finite value).
    Images may be N x H x W for 1-channel sets.
    """

    shape, num_classes, kind = dataset_info(dataset)
    if not isinstance(x, Tensor):
        raise UserError(f"{what}: images must be a tensor/array, got {type(x).__name__}")
    if x.dtype == torch.bool or not (x.dtype == torch.uint8 or x.is_floating_point()):
        raise UserError(
            f"{what}: images have dtype {str(x.dtype).replace('torch.', '')}; "
            f"give uint8 in [0, 255] or float in [-1, 1]"
        )
    if kind == "image" and x.dim() == 3 and shape[0] == 1:
        x = x.unsqueeze(1)
    if tuple(x.shape[1:]) != tuple(shape) or x.shape[0] == 0:
        want = (
            "N x "
            + " x ".join(map(str, shape))
            + (f" (or N x {shape[1]} x {shape[2]})" if kind == "image" and shape[0] == 1 else "")
        )
        raise UserError(f"{what}: images have shape {tuple(x.shape)}, dataset '{dataset}' needs {want}")
    if x.dtype == torch.uint8:
        if kind != "image":
            raise UserError(f"{what}: points of '{dataset}' must be floats, got uint8")
        x = x.float().div_(127.5).sub_(1.0)
    else:
        x = x.float()
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
            raise UserError(f"{what}: {bad} image(s) hold NaN or inf values; drop or fix them")
        if kind == "image":
            lo, hi = float(x.min()), float(x.max())
            if lo < -1 - 1e-3 or hi > 1 + 1e-3:
                raise UserError(
                    f"{what}: float images span [{lo:.3g}, {hi:.3g}], outside [-1, 1]; give floats in "
                    "[-1, 1] or uint8 in [0, 255]"
                )
            if lo < -1 or hi > 1:  # rounding noise only: clamp a copy, never the caller's tensor
                x = x.clamp(-1, 1)
    if y is not None:
        if not isinstance(y, Tensor) or y.dim() != 1 or len(y) != len(x):
            got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
            raise UserError(f"{what}: labels have shape {got}, need ({len(x)},) to match the images")
        if y.is_floating_point():
            if not bool(torch.isfinite(y).all()) or not bool((y == y.round()).all()):
                raise UserError(f"{what}: labels must be integers")
        elif y.dtype == torch.bool:
            raise UserError(f"{what}: labels must be integers, got bool")
        y = y.long()
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise UserError(
                f"{what}: labels span [{int(y.min())}, {int(y.max())}], dataset '{dataset}' has "
                f"classes 0..{num_classes - 1}"
            )
    return x, y


def resolve_metrics(dataset: str, metrics: Optional[Sequence[str]], conditional: bool, run: bool = False) -> List[str]:
    """Defaults for the dataset, or the given names checked against it."""
    if metrics is None:
        return default_metrics(dataset, conditional, run)
    fam = family(dataset)
    out = parse_metrics(list(metrics)) or []
    for m in out:
        spec: Metric = METRICS.get(m)
        if fam not in spec.families:
            valid = [
                n for n in METRICS.names() if fam in METRICS.get(n).families and (run or not METRICS.get(n).needs_run)
            ]
            raise UserError(f"metric '{m}' does not apply to dataset '{dataset}'; valid there: {', '.join(valid)}")
        if spec.needs_labels and not conditional:
            raise UserError(f"metric '{m}' needs class labels (a conditional generator, or a 'labels' array)")
        if spec.needs_run and not run:
            raise UserError(f"metric '{m}' reads a run's training log; use it with 'ganbench evaluate RUN_DIR'")
    return out


def evaluator_info(dataset: str, extractor: str, metrics: Sequence[str]) -> Dict[str, Any]:
    """{name, sha256, classifier_sha256, lpips_backbone}; raises the UserError of an unavailable extractor."""

    if extractor not in EXTRACTORS:
        raise UserError(f"unknown feature extractor '{extractor}'; valid: {', '.join(EXTRACTORS)}")
    if family(dataset) == "points":
        return {"name": "mixture-geometry", "sha256": None, "classifier_sha256": None, "lpips_backbone": None}
    cls_name, cls_sha = evaluator("classifier", dataset)
    name, sha = cls_name, cls_sha
    if extractor != "classifier" and any(METRICS.get(m).fidelity or m == "conditional" for m in metrics):
        name, sha = evaluator(extractor, dataset)
    out = {
        "name": name,
        "sha256": sha,
        "classifier_sha256": cls_sha,
        "lpips_backbone": lpips_backbone(dataset) if "lpips" in metrics else None,
    }
    if "coverage" in metrics:  # the cross-checking second evaluator (coverage.py); checked before any work
        out["second_classifier_sha256"] = load_second(dataset)[1]
    return out


# ------------------------------------------------------------------------------------------------
# scoring


def score(ctx: Context, metrics: Sequence[str]) -> Tuple[Scores, Details]:
    scores: Scores = {}
    details: Details = {}
    for m in metrics:
        spec: Metric = METRICS.get(m)
        s, d = spec.fn(ctx)
        undeclared = [k for k in s if not any(x.protocol(k) for x in spec.scores)]
        if undeclared:  # a programming error: every score has a declared direction and protocol
            raise RuntimeError(
                f"metric '{m}' wrote undeclared score(s) {', '.join(undeclared)}; declare them in "
                f"its @metric(scores=...) in benchmark/evaluation/metrics.py"
            )
        scores.update({k: float(v) for k, v in s.items()})
        details.update(d)
    return scores, details


def evaluate_samples(
    x: Tensor,
    y: Optional[Tensor],
    dataset: str,
    metrics: Optional[Sequence[str]] = None,
    split: str = "test",
    data_root: Optional[str] = None,
    *,
    feature_extractor: str = "classifier",
    device: str | torch.device = "cpu",
    cache_root: Optional[str | Path] = None,
    progress: bool = False,
    seed: int = 0,
    tsne_path: Optional[str | Path] = None,
    run_dir: Optional[str | Path] = None,
    step: Optional[int] = None,
    num_samples: Optional[int] = None,
) -> Dict[str, Any]:
    """Score one sample set; returns a record::

        {"metrics": {name: float}, "details": {...}, "evaluator": {name, sha256, classifier_sha256,
         lpips_backbone}, "metric_set": [...], "num_samples", "dataset", "reference": {dataset, split},
         "git_commit", "torch_version", "time", "seconds"}

    ``x``: float in [-1, 1] (or uint8 [0, 255]) N x C x H x W (N x 2 for point sets); ``y``: int labels of a
    conditional generator, or None. ``num_samples``: score only the first ones (protocol metrics such as
    stacked-mnist modes still read their fixed count from the whole set). Every check runs before any
    computation.
    """

    t0 = time.time()
    check_split(split)
    x, y = check_samples(x, y, dataset)
    names = resolve_metrics(dataset, metrics, conditional=y is not None, run=run_dir is not None)
    if num_samples is not None and num_samples < 1:
        raise UserError(f"num_samples must be >= 1, got {num_samples}")
    ctx_n = len(x) if num_samples is None else min(num_samples, len(x))
    fam = family(dataset)
    for m in names:
        spec: Metric = METRICS.get(m)
        probe = Context(x[:0], None, dataset, split)  # cheap: for min_n's dataset facts
        probe.n = ctx_n
        need = spec.min_n(probe)
        have = len(x) if fam in spec.protocol_n else ctx_n
        if have < need:
            raise UserError(
                f"metric '{m}' needs at least {need} samples for dataset '{dataset}', got {have}; "
                f"give more samples or leave '{m}' out"
            )
    if "tsne" in names and tsne_path is None:
        raise UserError("metric 'tsne' writes a PNG: give its path (tsne_path / --tsne PNG)")
    ev = evaluator_info(dataset, feature_extractor, names)
    fidelity_wanted = sorted({f for m in names for f in METRICS.get(m).fidelity})
    ctx = Context(
        x,
        y,
        dataset,
        split,
        data_root,
        feature_extractor,
        device,
        cache_root,
        progress,
        seed,
        tsne_path,
        run_dir,
        step,
        fidelity_wanted,
        num_samples,
    )
    scores, details = score(ctx, names)
    if ev["lpips_backbone"] is not None and "lpips_backbone" in details:
        ev["lpips_backbone"] = details.pop("lpips_backbone")
    return {
        "metrics": scores,
        "details": details,
        "evaluator": ev,
        "metric_set": sorted(names),
        "num_samples": ctx_n,
        "dataset": dataset,
        "reference": {"dataset": dataset, "split": split},
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - t0, 2),
    }

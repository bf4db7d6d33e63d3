"""The mode-counting family: stacked-mnist (VEEGAN/PacGAN protocol) and the 2D mixtures (PacGAN protocol).

  stacked-mnist (26,000 samples): modes   modes26k (of 1000)   kl   kl26k   KL(generated || uniform over 1000)
                                  stacked_readable   readable_triples26k   modes_readable26k
  2D mixtures (2,500 samples, mixtures.py): modes   modes2500   hq   hq2500 (%)   rkl   rkl2500

``stacked_readable``: a stacked sample is readable when each of its three channels is, under the rule of the
image family's readable share (coverage.readable: some MNIST evaluator's max probability at least its tau, and the
primary's features inside the real MNIST test digits' cloud of the class it predicts); ``readable_triples`` is
their share, ``modes_readable`` the modes the readable samples capture (the primary's argmax per channel). Blank
or noise channels get an argmax digit, so ``modes`` alone counts them as digits.

Each reads its protocol's fixed count from the start of the whole sample set (``Context.x_full``), whatever
``num_samples`` says.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from benchmark.evaluation.classifier import classify
from benchmark.evaluation.coverage import readable, stacked_modes
from benchmark.evaluation.metrics.context import Context, Options
from benchmark.evaluation.metrics.registry import Details, Scores, metric
from benchmark.evaluation.mixtures import PROTOCOL_SAMPLES, mixture_metrics
from benchmark.evaluation.scores import CLASSES, higher, lower, tag

STACKED_PROTOCOL = 26_000
PROTOCOLS = {"stacked": STACKED_PROTOCOL, "points": PROTOCOL_SAMPLES}  # family -> samples counted


def _protocol(ctx: Context) -> int:
    return PROTOCOLS.get(ctx.family, 0)


def _stacked(ctx: Context) -> Dict[str, Any]:
    """Modes and KL of the first 26,000 samples, each channel labelled by the MNIST classifier."""

    def compute() -> Dict[str, Any]:
        x = ctx.x_full[:STACKED_PROTOCOL]
        n, c = x.shape[:2]
        _, logits = classify(
            ctx.classifier[0], x.reshape(n * c, 1, *x.shape[2:]), progress=ctx.opts.progress, desc="labelling channels"
        )
        return stacked_modes(logits.argmax(1).reshape(n, c))

    return ctx.shared("stacked", compute)


def _channels_readable(ctx: Context) -> Dict[str, Any]:
    """Readable triples and their modes of the first 26,000 samples: each channel read as an MNIST image by both
    evaluators (the image family's pass, uint8-rounded), against the MNIST test clouds."""

    def compute() -> Dict[str, Any]:
        x = ctx.x_full[:STACKED_PROTOCOL]
        n, c = x.shape[:2]
        o = ctx.opts
        opts = Options("mnist", data_root=o.data_root, device=o.device, cache_root=o.cache_root, progress=o.progress)
        mnist = Context(x.reshape(n * c, 1, *x.shape[2:]), None, opts)
        (fa, la), (_, lb) = mnist.gen_outputs, mnist.gen_outputs_second
        ok = readable(la, lb, *mnist.readable_taus, (fa, mnist.cloud("classifier"))).reshape(n, c).all(1)
        pred = la.argmax(1).reshape(n, c)
        return {"share": float(ok.double().mean()), "modes": stacked_modes(pred[ok])["modes"] if ok.any() else 0}

    return ctx.shared("stacked_readable", compute)


def _mixture(ctx: Context) -> Dict[str, Any]:
    """PacGAN's figures of the first 2,500 points against the mixture's means."""

    def compute() -> Dict[str, Any]:
        d = ctx.real_dataset()
        return mixture_metrics(ctx.x_full[:PROTOCOL_SAMPLES], d.means, d.std)

    return ctx.shared("mixture", compute)


@metric(
    "modes",
    ("stacked", "points"),
    min_n=_protocol,
    protocol_n=dict(PROTOCOLS),
    help="modes captured (stacked-mnist: of 1000; mixtures: PacGAN)",
    scores=(higher("modes", "modes captured", bound=CLASSES),),
)
def _modes(ctx: Context) -> Tuple[Scores, Details]:
    if ctx.family == "stacked":
        return {ctx.name("modes", STACKED_PROTOCOL): float(_stacked(ctx)["modes"])}, {}
    m = _mixture(ctx)
    return {ctx.name("modes", PROTOCOL_SAMPLES): float(m["modes"])}, {f"mode_hist{tag(PROTOCOL_SAMPLES)}": m["hist"]}


@metric(
    "kl",
    ("stacked",),
    min_n=lambda ctx: STACKED_PROTOCOL,
    protocol_n={"stacked": STACKED_PROTOCOL},
    help="stacked-mnist KL(generated || uniform over 1000)",
    scores=(lower("kl", "KL to uniform modes"),),
)
def _kl(ctx: Context) -> Tuple[Scores, Details]:
    return {ctx.name("kl", STACKED_PROTOCOL): _stacked(ctx)["kl"]}, {}


@metric(
    "stacked_readable",
    ("stacked",),
    min_n=lambda ctx: STACKED_PROTOCOL,
    protocol_n={"stacked": STACKED_PROTOCOL},
    help="stacked-mnist: share of samples whose three channels are all readable, and the modes they capture",
    scores=(
        higher("readable_triples", "readable triples (all three channels)", bound=1.0),
        higher("modes_readable", "modes captured (readable samples)", bound=CLASSES),
    ),
)
def _stacked_readable(ctx: Context) -> Tuple[Scores, Details]:
    r = _channels_readable(ctx)
    return (
        {
            ctx.name("readable_triples", STACKED_PROTOCOL): r["share"],
            ctx.name("modes_readable", STACKED_PROTOCOL): float(r["modes"]),
        },
        {},
    )


@metric(
    "hq",
    ("points",),
    min_n=lambda ctx: PROTOCOL_SAMPLES,
    protocol_n={"points": PROTOCOL_SAMPLES},
    help="% high-quality samples (within 3 std of the nearest mode)",
    scores=(higher("hq", "high-quality samples", unit="%", bound=100.0),),
)
def _hq(ctx: Context) -> Tuple[Scores, Details]:
    return {ctx.name("hq", PROTOCOL_SAMPLES): _mixture(ctx)["hq"]}, {}


@metric(
    "rkl",
    ("points",),
    min_n=lambda ctx: PROTOCOL_SAMPLES,
    protocol_n={"points": PROTOCOL_SAMPLES},
    help="reverse KL of the mode histogram to uniform",
    scores=(lower("rkl", "reverse KL to uniform modes"),),
)
def _rkl(ctx: Context) -> Tuple[Scores, Details]:
    return {ctx.name("rkl", PROTOCOL_SAMPLES): _mixture(ctx)["rkl"]}, {}

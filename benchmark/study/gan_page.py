"""The page of a GAN study (the ``gan`` kind's): ``page(StudyRecords) -> Page``, section by section.

    budget.csv             per trial: steps, batch, N, epochs (generator and critic batches), wall time
    table.md/.csv/.tex     each score as mean ± sd (ddof = 1) over seeds at the final step, best per column
                           in bold (by the score's direction), real-data and known-failure rows under the
                           same protocol; † an arm that did not learn, ‡ a score blind to a known failure
    per_seed.csv           every (arm, seed, step, score, value): the evidence behind every cell
    by_step.md/.csv        chosen scores at each evaluation point, labelled with steps and epochs
    claims.md/.csv         (when the spec has claims) each claim decided by its stated test over seeds
    metric_vs_<x>.png      scores against the varied value: each seed a dot, the mean a line
    metrics_vs_step.png    scores against generator step (and metrics_vs_critic_updates.png when n_critic varies)
    samples.png            fixed-noise sample grids of the arms side by side at the final step
    scatter.png            2D mixtures: every scored sample of the final step over the mode centres
    coverage.png           per-class (or per-mode) share, arm x class, at the final step
    coverage_over_training.png   the same per evaluation point (when does collapse set in?)
    tsne.png               the t-SNE PNGs the ``tsne`` metric recorded (never computed here)
    dynamics.png           critic/generator losses, |grad D| at the interpolates, Wasserstein estimate

The page is the list ``SECTIONS``, each a function of the page's ``Context`` (what every section shares,
computed once) that adds its lines, files, figures and notes; a new section is a new function in the list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional

import pandas as pd

from benchmark.data import dataset_info
from benchmark.errors import UserError
from benchmark.evaluation.metrics import family
from benchmark.study import claims as claims_mod
from benchmark.study import figures, panels, registration, validity_page
from benchmark.study.claims import Claim, check_claims, decide
from benchmark.study.page import Page
from benchmark.study.records import StudyRecords
from benchmark.study.reference import Rows, levels, rows, scatter_panels
from benchmark.study.registration import Amendments
from benchmark.study.render import (
    NOT_LEARNED,
    NOT_VALID,
    budget_markdown,
    by_step_frame,
    claims_markdown,
    convergence_frame,
    md_table,
    per_seed_details,
    references_markdown,
    registration_cell,
    resolution_markdown,
    summary_csv,
    summary_latex,
    summary_markdown,
)
from benchmark.study.resolution import POWER, along_training, planned_tests, resolve
from benchmark.study.schema import StudySpec, report_options
from benchmark.study.tables import (
    budget_table,
    by_step_table,
    claims_frame,
    convergence_table,
    final_per_seed,
    metrics_of,
    ordered_metrics,
    reference_values,
    select_metrics,
    step_label,
    steps_by_arm,
    summary_table,
)
from benchmark.study.validity import Gate, Guards, Level, Separation


@dataclass(frozen=True, eq=False)
class Context:
    """What the sections of a GAN page share, computed once from the records."""

    recs: StudyRecords
    spec: StudySpec
    rep: Mapping[str, Any]  # the spec's ``report:`` (columns, claims, references, x, ...)
    df: pd.DataFrame  # the long scores frame
    order: List[str]  # the arms
    colours: Dict[str, Any]
    claims: List[Claim]
    budget: pd.DataFrame
    datasets: List[str]
    table: pd.DataFrame  # the summary table (arm x score)
    real: Rows  # the real-data and known-failure rows of the results table
    real_notes: List[str]
    tsne: bool  # show the t-SNE panels
    guards: Guards  # the levels and the arms' datasets: validity, the learned gate, saturation
    seps: List[Separation]  # each reported score's validity per dataset
    gates: Dict[str, List[Gate]]  # each arm's learned gate
    amendments: Amendments  # the claims against their registration

    @property
    def steps_of(self) -> Dict[str, List[int]]:
        return steps_by_arm(self.df, self.order)


def context(recs: StudyRecords, tsne: Optional[bool] = None) -> Context:
    """What every section needs, computed once; one line when the study has no scores or a claim is bad
    (before anything is drawn or written)."""
    spec, df, order = recs.spec, recs.scores, recs.order
    rep = report_options(spec.report)  # every key of ReportSpec, its defaults filled
    colours = figures.arm_colours(order)
    if df.empty:
        raise UserError(f"study '{spec.name}' has no scores yet; run 'ganbench study run' for it first")
    parsed = check_claims(rep, f"study '{spec.name}'", arms=order)
    b = budget_table(recs)
    if not b.empty:
        datasets = list(dict.fromkeys(b["dataset"]))
        data_root = next((c.get("data_root") for t in recs.trials if (c := t.config).get("data_root")), None)
    else:
        datasets, data_root = list(dict.fromkeys(r.get("dataset") for r in recs.used() if r.get("dataset"))), None
    table = summary_table(df, order, rep.get("columns"))
    lv, real_notes = levels(spec, datasets, recs.root, data_root)
    guards = make_guards(recs, b, lv, datasets)
    show_tsne = tsne if tsne is not None else rep.get("tsne", True)
    return Context(
        recs,
        spec,
        rep,
        df,
        order,
        colours,
        parsed,
        b,
        datasets,
        table,
        rows(lv, spec.split),
        real_notes,
        bool(show_tsne),
        guards,
        validity_page.separations(guards, metrics_of(table)),
        validity_page.gates_of(guards, df, order),
        registration.compare(recs.registration, spec, parsed),
    )


def make_guards(recs: StudyRecords, b: pd.DataFrame, lv: List[Level], datasets: List[str]) -> Guards:
    """The page's levels, and each arm's dataset (its config's, else its records'), family and class count."""
    arm_ds = {a: str(b[b["arm"] == a]["dataset"].iloc[0]) for a in recs.order if not b.empty and (b["arm"] == a).any()}
    for t in recs.trials:
        for r in t.used:
            if r.get("dataset"):
                arm_ds.setdefault(t.variant, r["dataset"])
    known = [d for d in dict.fromkeys([*datasets, *arm_ds.values()]) if d]
    fams, classes = {}, {}
    for d in known:
        try:
            fams[d], classes[d] = family(d), dataset_info(d)[1]
        except UserError:  # a dataset no longer registered: no gate there
            continue
    return Guards(tuple(lv), arm_ds, fams, classes)


def page(recs: StudyRecords, tsne: Optional[bool] = None) -> Page:
    """The GAN page of ``recs``: every section of ``SECTIONS`` in turn (``tsne``: override the spec's)."""
    ctx, out = context(recs, tsne), Page()
    for section in SECTIONS:
        section(ctx, out)
    return out


# ------------------------------------------------------------------------------------------------
# the sections, in page order


def budget(ctx: Context, page: Page) -> None:
    b = ctx.budget
    if b.empty:
        return
    page.file("budget.csv", b.to_csv(index=False))
    page.add(
        "## Budget and protocol",
        "",
        "Epochs are counted in batches drawn from the training set of N images (points: a nominal N): "
        "generator epochs = steps × batch / N; critic epochs = steps × n_critic × batch / N (each critic "
        "update draws one real batch). Wall time is the sum of the per-step training times in the log "
        "(mean over seeds) and the scoring time of the records.",
        "",
        budget_markdown(b, ctx.order, int(ctx.spec.num_samples)),
        "",
        "Per trial: [budget.csv](budget.csv)",
        "",
    )


def caption(ctx: Context) -> str:
    """The results table's caption: the statistic, the bold and italic rows, the preset, the evaluators."""
    spec = ctx.spec
    evs = sorted({json.dumps(r.get("evaluator"), sort_keys=True) for r in ctx.recs.used()})
    ev_text = "; ".join(
        f"{e.get('name')}"
        + (f" sha256 {str(e.get('sha256'))[:12]}" if e.get("sha256") else "")
        + (f", LPIPS backbone {e.get('lpips_backbone')}" if e.get("lpips_backbone") else "")
        for e in (json.loads(x) or {} for x in evs)
    )
    return (
        f"{spec.title or spec.name}: mean ± sample sd (ddof = 1) over n seeds at each trial's final "
        f"step; best arm per column in bold, among the arms that learned and not on a {NOT_VALID} score (↓ lower "
        f"is better, ↑ higher); a column with ∞ in any seed is "
        f"not averaged. Italic rows: real training images scored against the real {spec.split} "
        f"split under the same protocol (the floor/ceiling of each score), then the known failures under it; "
        f"{NOT_LEARNED}: the arm did not pass the learned gate; {NOT_VALID}: the score does not separate a "
        f"known failure from real data. Preset {spec.preset or 'default'}; evaluator: {ev_text}."
    )


def results(ctx: Context, page: Page) -> None:
    t, real, text = ctx.table, ctx.real, caption(ctx)
    for n in ctx.real_notes:
        page.note(n)
    learned = validity_page.learned(ctx.gates)
    arms = {a: NOT_LEARNED for a, ok in learned.items() if not ok}
    scores = validity_page.score_marks(ctx.seps)
    md = summary_markdown(t, real=real, arm_marks=arms, score_marks=scores)
    page.file("table.md", md + "\n\n" + text + "\n")
    page.file("table.csv", summary_csv(t, real, learned if ctx.gates else None))
    page.file("table.tex", summary_latex(t, text, real, arm_marks=arms, score_marks=scores))
    per_seed = ctx.df.drop(columns=["key"]).sort_values(["variant", "seed", "step", "metric"], kind="stable")
    page.file("per_seed.csv", per_seed.to_csv(index=False))
    page.add(
        "## Results",
        "",
        md,
        "",
        f"_{text}_",
        "",
        "Tables: [Markdown](table.md) · [CSV](table.csv) · [LaTeX](table.tex) · every seed and step: "
        "[per_seed.csv](per_seed.csv)",
        "",
    )


def without_scores(ctx: Context, page: Page) -> None:
    """The trials that failed or were never run, named under the results."""
    failed = [t for t in ctx.recs.trials if t.failed is not None]
    missing = [t for t in ctx.recs.trials if not t.scored and t.failed is None]
    if failed or missing:
        named = [f"{t.variant} seed {t.seed} (failed: {t.failed})" for t in failed]
        named += [f"{t.variant} seed {t.seed} (not run)" for t in missing]
        page.add("**Trials without scores:** " + ", ".join(named), "")


def per_seed(ctx: Context, page: Page) -> None:
    page.add(*per_seed_details(final_per_seed(ctx.df, metrics_of(ctx.table)), ctx.order))


def known_failures(ctx: Context, page: Page) -> None:
    validity_page.failures_section(page, ctx.guards, ctx.seps)


def learned_gate(ctx: Context, page: Page) -> None:
    validity_page.gate_section(page, ctx.gates)


def over_training(ctx: Context, page: Page) -> None:
    by_step = ctx.rep.get("by_step")
    if not by_step:
        return
    steps_of = ctx.steps_of
    labels = [step_label(ctx.budget, ctx.order, i, f, steps_of) for i, f in enumerate(sorted(set(ctx.spec.eval_at)))]
    bs = by_step_frame(by_step_table(ctx.df, ctx.order, by_step, labels), ctx.order, ctx.rep.get("notes") or {})
    md = md_table(bs)
    page.file("by_step.csv", bs.to_csv(index=False))
    page.file("by_step.md", md + "\n")
    page.add(
        "## Over training", "", "Mean ± sd over seeds at each evaluation point (epochs as defined above).", "", md, ""
    )


def convergence(ctx: Context, page: Page) -> None:
    heads = select_metrics(ordered_metrics(ctx.df), ctx.rep.get("figure_metrics") or ctx.rep.get("columns"))
    if not heads or not any(len(s) >= 2 for s in ctx.steps_of.values()):
        return
    c = claims_mod
    page.add(
        "## Convergence",
        "",
        f"Per arm and score: the slope over the last k = {c.CONVERGENCE_POINTS} evaluation points of each seed "
        "(fewer where there are fewer), fitted by least squares with one intercept per seed (each seed's own "
        "level is not noise), against its standard error (residuals of that fit). Shown as the fitted change Δ "
        "over that window ± its SE. |slope| > "
        f"{c.CONVERGENCE_Z:g} SE: still moving (**still improving** in the score's better direction, "
        "**still moving (worse)** in the other), else settled; too few points: one seed with two points (no "
        "SE). Claims on an arm still improving say so.",
        "",
        md_table(convergence_frame(convergence_table(ctx.df, ctx.order, heads))),
        "",
    )


def claims(ctx: Context, page: Page) -> None:
    if not ctx.claims:
        return
    eval_at, guards = ctx.spec.eval_at, ctx.guards
    decided = decide(ctx.claims, ctx.df, ctx.order, eval_at, guards)
    along = along_training(ctx.claims, ctx.df, ctx.order, eval_at, guards)
    resolutions = resolve(decided, along, sorted(float(f) for f in eval_at))
    planned = planned_tests(decided)  # m claims that are tests: Holm's strictest level α / m
    am = ctx.amendments
    reg = [registration_cell(st, am) for st in am.claims]
    md, resolve_md = claims_markdown(decided, reg), resolution_markdown(resolutions)
    page.file("claims.md", md + "\n\n" + resolve_md + "\n")
    frame = claims_frame(decided, resolutions)
    frame["registered"] = frame["claim"].map(dict(zip((c.text for c in ctx.claims), reg)))
    page.file("claims.csv", frame.to_csv(index=False))
    tested = sum(d.tested for d in decided)
    c = claims_mod
    page.add(
        "## Claims against measurements",
        "",
        *validity_page.registration_lines(am),
        f"Each claim is decided over seeds by its stated test: Welch's t-test; a bootstrap of the difference "
        f"of means ({c.BOOTSTRAP_RESAMPLES:,} resamples, seed {c.BOOTSTRAP_SEED}); or the rank test, "
        "Mann–Whitney U (`mannwhitney`: exact p without ties when an arm has at most 8 seeds, with ties a "
        f"permutation test over every split of the pooled seeds (up to {c.PERMUTATIONS:,}, else as many "
        "seeded resamples), else the tie-corrected normal approximation; its difference is the Hodges–Lehmann "
        "median of pairwise differences with its distribution-free interval, unbounded with 3 seeds per arm, "
        "where the smallest two-sided p is 0.1). A claim that names no test gets the rank test when its score "
        "is bounded (a declared bound: counts and shares such as classes covered, modes, hq, precision, "
        "recall, label agreement, unreadable share) or heavy-tailed (reverse KL, ∞ for a seed without a "
        f"high-quality sample), Welch's t-test otherwise and for a spread. α = {c.ALPHA}, Holm-corrected over "
        f"the {tested} tested claim(s) of this page. Intervals are 95 % (unadjusted). Fewer than "
        f"{c.MIN_SEEDS} seeds in an arm, or a non-finite value (a rank test ranks an ∞): not resolved. A claim "
        "against several arms holds only if it holds against each (its p is the largest). Claims that hold by "
        "construction are shown, not tested. **Ill-posed** (no test): the score does not separate a known "
        "failure that the learned gate does not rule out, or every seed of every arm sits at the score's "
        "bound (saturated). **Not decidable** (no test): an arm of the claim did not pass the learned gate.",
        "",
        md,
        "",
        "### Where the question resolves",
        "",
        "Each claim decided again as if the budget had ended at each evaluation point (the same test, "
        "learned gate and Holm correction over the page): S supported, C contradicted, · not resolved, "
        '– not a test, I ill-posed, N not decidable. "Resolves from" is the first point from which the final '
        "verdict holds to the end. For a claim not resolved whose observed difference has the claimed sign, "
        f"the seeds per arm a two-sample t-test would need for {POWER:.0%} power at "
        f"α / m = {c.ALPHA} / {planned} (the strictest level of Holm's procedure over this page's "
        f"{planned} claims that are tests) if the observed difference and pooled sd were the truth (for the "
        "rank test: that over its efficiency 3/π, and at least the seeds at which its exact p can reach α / m): "
        "a planning figure, not a verdict; a longer budget may change the difference itself. With the "
        "opposite sign there is no such figure.",
        "",
        resolve_md,
        "",
        "[claims.csv](claims.csv)",
        "",
    )


def references(ctx: Context, page: Page) -> None:
    refs = ctx.rep.get("references")
    if not refs:
        return
    page.add(
        "## Published reference figures (cited, not measured here)",
        "",
        "Beside each, the matching arm measured here in the same statistic (sd or se over its seeds).",
        "",
        references_markdown(refs, reference_values(refs, ctx.df)),
        "",
    )


def _shown(page: Page, name: str, fig: Any) -> Optional[str]:
    """Put ``fig`` on the page as ``name`` (None: nothing to draw, no file)."""
    if fig is None:
        return None
    page.figure(name, fig)
    return name


def figure_list(ctx: Context, page: Page) -> None:
    rep, df, order, colours, b = ctx.rep, ctx.df, ctx.order, ctx.colours, ctx.budget
    recs = ctx.recs
    fig_metrics = rep.get("figure_metrics") or metrics_of(ctx.table)[:6]
    seed0, _ = recs.first_seed()
    look = figures.Look(
        colours,
        dict(ctx.guards.arm_datasets),
        frozenset(a for a, ok in validity_page.learned(ctx.gates).items() if not ok),
        ctx.guards.levels,
    )
    figs = []
    if rep.get("x"):
        fig = figures.metric_vs_value(df, rep["x"], fig_metrics, rep.get("xscale", "linear"), colours, look)
        figs.append(("Scores against " + rep["x"], _shown(page, f"metric_vs_{rep['x']}.png", fig)))
    fig = figures.metrics_vs_step(df, order, fig_metrics, colours, look=look)
    figs.append(("Scores over training (each seed a dot, the mean a line)", _shown(page, "metrics_vs_step.png", fig)))
    if not b.empty and b["n_critic"].nunique() > 1:
        nc = {v: float(b[b["arm"] == v]["n_critic"].iloc[0]) for v in order if (b["arm"] == v).any()}
        fig = figures.metrics_vs_step(
            df, order, fig_metrics, colours, nc, "critic updates (generator step × n_critic)", look=look
        )
        title = "Scores against critic updates (matched critic compute)"
        figs.append((title, _shown(page, "metrics_vs_critic_updates.png", fig)))
    figs.append(("Samples (fixed noise, final step)", _shown(page, "samples.png", panels.samples(recs, order))))
    scatter, left_out = None, []
    if any(family(d) == "points" for d in ctx.datasets if d):
        drawn, left_out = scatter_panels(recs, order)
        scatter = _shown(page, "scatter.png", panels.mixture_scatter(drawn, seed0, colours))
        figs.append(("Every scored sample and the mode centres", scatter))
    figs.append(("Coverage", _shown(page, "coverage.png", panels.coverage(recs, order))))
    fig = panels.coverage_over_training(recs, order)
    figs.append(("Coverage over training", _shown(page, "coverage_over_training.png", fig)))
    if ctx.tsne:
        name = _shown(page, "tsne.png", panels.tsne(recs, order))
        figs.append(("t-SNE of classifier features (real | generated)", name))
        if name is None and any(r.get("dataset") not in ("ring8", "grid25") for r in recs.used()):
            page.note(
                "no t-SNE figure: no record of the `tsne` metric (score one with `ganbench evaluate RUN "
                "--metrics tsne`); the report never scores a run"
            )
    fig = figures.dynamics(recs, order, colours)
    figs.append((f"Training dynamics (seed {seed0} of each arm)", _shown(page, "dynamics.png", fig)))
    if any(d in ("ring8", "grid25") for d in ctx.datasets):
        page.note(points_note(scatter is not None, left_out))
    page.add(
        "## Figures",
        "",
        "One colour per arm in every panel (fixed from the arm order); each dataset in panels of its own; in "
        "the score figures, real data (dashed) and the known failures (dotted, labelled) as reference lines, "
        f"and arms that did not learn dashed ({NOT_LEARNED} in the legend).",
        "",
    )
    for title, name in figs:
        if name:
            page.add(f"### {title}", "", f"![{title}]({name})", "")


def points_note(scatter: bool, left_out: List[str]) -> str:
    """What the page shows of 2D samples: the fixed-noise grid, the scatter of the scored samples (regenerated
    from the stored generator), which arms it leaves out and why."""
    text = "2D points: samples.png shows the fixed-noise samples of the first seed beside the real points; "
    if scatter:
        text += (
            "scatter.png draws every sample the first seed scored at its last scored step (regenerated from its "
            "stored generator with the record's seed) over the mode centres"
        )
    else:
        text += "there is no scatter of the scored samples"
    if left_out:
        text += f"; left out of the scatter, no generator stored at the scored step: {', '.join(left_out)}"
    return text + "; the mode histograms are in coverage.png"


def notes(ctx: Context, page: Page) -> None:
    page.notes_section()


SECTIONS: List[Callable[[Context, Page], None]] = [
    budget,
    results,
    without_scores,
    per_seed,
    known_failures,
    learned_gate,
    over_training,
    convergence,
    claims,
    references,
    figure_list,
    notes,
]

__all__ = ["Context", "SECTIONS", "context", "page"]

"""Study kinds: what a trial of a study is, how it runs, and the page that shows it.

A study's ``kind:`` names a class registered in ``KINDS``::

    @kind("parallel-lines")
    class ParallelLinesKind(StudyKind):
        Params = ParallelLinesParams   # the spec's ``params:``, typed, frozen, checked

Each kind has a frozen ``Params`` dataclass (parsed with ``config.build``: an unknown key is a one-line
``UserError`` naming the valid ones; every number is checked finite and in range) and the methods

* ``check(spec, where)``: its part of the spec check (the spec is checked whole before anything runs);
* ``trials(spec, where)``: every trial, its config resolved once; the trial key names its directory;
* ``payload(trial, spec, data_root)``: what a worker needs (the resolved config as a dict: built once more,
  in the worker, and never again);
* ``run(d, payload)``: the worker side, inside the runner's trial lock; ``status(d, payload)``;
* ``page(records, tsne)``: its page (``StudyRecords -> Page``; ``table_file``: the per-trial table the
  records load for it, if it writes one), built from the report stage's rooms (records, tables, render,
  figures; the GAN page is ``gan_page.py``, the parallel-lines page ``parallel_lines_page.py``).

Adding a kind is one class here; ``spec.py``, ``runner.py`` and ``report.py`` dispatch through ``KINDS``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from benchmark import io, rundir
from benchmark.config import LIMITS, Limit, TrainConfig, build, make_config, steps_for_epochs
from benchmark.data import DATASETS
from benchmark.errors import UserError, quote
from benchmark.evaluation import diversity
from benchmark.evaluation.metrics import METRICS, evaluator_info, family, resolve_metrics
from benchmark.evaluation.runs import evaluate_run
from benchmark.models import import_user_model, is_user_model
from benchmark.registry import Registry
from benchmark.study import gan_page, parallel_lines, parallel_lines_page, store
from benchmark.study.page import Page
from benchmark.study.records import StudyRecords
from benchmark.study.schema import Budget, StudySpec, Trial, check_budget, check_number, report_spec
from benchmark.train import pick_device, train

KINDS = Registry("study kind")

MAX_TRIALS = 10_000  # a grid beyond this is a typo (an axis of 10^6 values), refused before anything runs
TSNE_SAMPLES = 2000  # generated samples of a t-SNE panel (at most; fewer when the study scores fewer)


def eval_schedule(steps: int, fractions: List[float]) -> Tuple[List[int], int]:
    """(scored steps, checkpoint_every): G is kept at the scored steps; a resumable checkpoint every 10 %."""
    return sorted({max(1, round(f * steps)) for f in fractions}), max(1, steps // 10)


class StudyKind:
    """The interface of a study kind (see the module docstring); subclasses set ``name`` and ``Params``."""

    name = ""
    table_file: Optional[str] = None  # a per-trial table the records load for the page (in the trial's folder)

    @dataclass(frozen=True)
    class Params:
        pass

    def params(self, spec: StudySpec, where: str = "study") -> Any:
        """The spec's ``params:`` as this kind's typed, checked ``Params`` (one line naming the key otherwise)."""
        try:
            names = [f.name for f in dataclasses.fields(self.Params)]
            if spec.params and not names:
                given = ", ".join(map(str, spec.params))
                raise UserError(f"study kind '{self.name}' takes no 'params' (got {given}); remove them")
            p = build(self.Params, spec.params or {}, prefix="params.")
            self.check_params(p)
        except UserError as e:
            raise UserError(f"{where}: {e}") from None
        return p

    def check_params(self, p: Any) -> None:
        pass

    def check(self, spec: StudySpec, where: str) -> List[Trial]:
        raise NotImplementedError

    def trials(self, spec: StudySpec, where: str = "study") -> List[Trial]:
        raise NotImplementedError

    def preflight(self, spec: StudySpec, ts: List[Trial]) -> None:
        """What the trials need from this machine (e.g. evaluator weights), checked before anything runs."""

    def payload(self, trial: Trial, spec: StudySpec, data_root: Optional[str], report: bool) -> Dict[str, Any]:
        """``report``: the study's report follows, so also score what its figures read (e.g. t-SNE)."""
        raise NotImplementedError

    def run(self, d: Path, payload: Dict[str, Any]) -> Dict[str, Any]:
        raise NotImplementedError

    def status(self, d: Path, payload: Dict[str, Any]) -> str:
        raise NotImplementedError

    def page(self, records: StudyRecords, tsne: Optional[bool] = None) -> Page:
        """The kind's page from the study's records (``tsne``: show the t-SNE panels, overriding the spec)."""
        raise NotImplementedError


def kind(name: str):
    """Class decorator: register an instance of a StudyKind subclass as study kind ``name``."""

    def deco(cls: type) -> type:
        cls.name = name
        KINDS.register(name)(cls())
        return cls

    return deco


# ------------------------------------------------------------------------------------------------
# gan: train and score GANs over a grid of config values and seeds


@kind("gan")
class GanKind(StudyKind):
    """Train (``ganbench train``) and score (``ganbench evaluate``) one run per variant and seed."""

    @dataclass(frozen=True)
    class Params:  # none: a GAN study's trials are set by base, axes, variants, budget
        pass

    def check(self, spec: StudySpec, where: str) -> List[Trial]:
        def bad(msg: str) -> UserError:
            return UserError(f"{where}: {msg}")

        self.params(spec, where)
        try:
            check_budget(spec.budget)
        except UserError as e:
            raise bad(str(e)) from None
        for k, vals in spec.axes.items():
            if not isinstance(vals, list) or not vals:
                raise bad(f"axis '{k}' must be a non-empty list of values")
            seen = [json.dumps(x, sort_keys=True, default=str) for x in vals]
            twice = next((x for i, x in enumerate(vals) if seen[i] in seen[:i]), None)
            if len(set(seen)) != len(seen):
                raise bad(f"axis '{k}' lists the value {quote(twice, 40)} twice (a duplicate arm); list each once")
        for i, v in enumerate(spec.variants):
            if not isinstance(v, dict) or set(v) - {"name", "set", "budget"} or "name" not in v:
                raise bad(
                    f"variants[{i}] must be a mapping with 'name', optional 'set' (config overrides) and optional "
                    "'budget' (steps or epochs, replacing the study's for this variant)"
                )
            if not isinstance(v.get("set") or {}, dict):
                raise bad(f"variants[{i}].set must be a mapping of config overrides")
            if "budget" in v:
                self._budget(v, where)
        names = [v["name"] for v in spec.variants]
        twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if twice is not None:
            raise bad(f"two variants are named {quote(twice, 40)} (a duplicate arm); give each variant its own name")
        size = max(1, len(spec.variants)) * math.prod(len(v) for v in spec.axes.values()) * len(spec.seeds)
        if size > MAX_TRIALS:
            raise bad(f"the study has {size} trials (variants x axes x seeds); at most {MAX_TRIALS}")
        ts = self.trials(spec, where)
        self._check_arms(ts, where)
        # a user's model ('package.module:function') resolves to a factory here, not in every trial
        for model in sorted({t.config.model for t in ts if is_user_model(t.config.model)}):
            try:
                import_user_model(model)
            except UserError as e:
                raise bad(f"'model': {e}") from None
        # the metrics asked for, against every trial's dataset (fid of ring8 fails here, not after training)
        for ds, cond in sorted({(t.config.dataset, t.config.conditional) for t in ts}):
            try:
                resolve_metrics(ds, spec.metrics, conditional=cond, run=True)
            except UserError as e:
                raise bad(f"'metrics': {e}") from None
        return ts

    @staticmethod
    def _check_arms(ts: List[Trial], where: str) -> None:
        """Every arm is its own: no two arms share a name, none trains the config of another (the same trial key:
        they would differ only in settings that do not change the numbers, and report one run twice)."""
        by_key: Dict[str, Trial] = {}
        by_name: Dict[Tuple[str, int], Trial] = {}
        for t in ts:
            other = by_key.setdefault(t.key, t)
            if other is not t:
                raise UserError(
                    f"{where}: arms {quote(other.variant, 60)} and {quote(t.variant, 60)} train the same config "
                    f"(trial {t.key}; they differ only in settings that do not change training): a duplicate arm; "
                    "remove one"
                )
            other = by_name.setdefault((t.variant, t.seed), t)
            if other is not t:
                raise UserError(f"{where}: two arms are named {quote(t.variant, 60)}; give the variants distinct names")

    def trials(self, spec: StudySpec, where: str = "study") -> List[Trial]:
        axis_keys = list(spec.axes)
        grid = [dict(zip(axis_keys, combo)) for combo in itertools.product(*(spec.axes[k] for k in axis_keys))]
        named = spec.variants or [{"name": "", "set": {}}]
        out: List[Trial] = []
        for v in named:
            for values in grid or [{}]:
                over = {**spec.base, **(v.get("set") or {}), **values}
                name = " / ".join(x for x in (v["name"], ", ".join(f"{k}={x}" for k, x in values.items())) if x)
                name = name or "base"
                for seed in spec.seeds:
                    try:
                        cfg = make_config({**over, "seed": seed})  # the one build of the trial's config
                        steps = self._steps(self._budget(v, where) or spec.budget, cfg)
                        check_number("budget (in steps)", steps, LIMITS["steps"])
                        eval_steps, every = eval_schedule(steps, spec.eval_at)
                        cfg = cfg.replace(steps=steps, epochs=None, checkpoint_every=every, checkpoint_at=eval_steps)
                    except UserError as e:
                        raise UserError(f"{where}: variant '{name}': {e}") from None
                    # a named variant's own settings are values too (the report's x may be one: n_critic)
                    vals = {"variant": v["name"], **(v.get("set") or {}), **values}
                    out.append(Trial(name, vals, seed, self.key(cfg), "gan", cfg, eval_steps))
        return out

    def preflight(self, spec: StudySpec, ts: List[Trial]) -> None:
        for ds, cond in sorted({(t.config.dataset, t.config.conditional) for t in ts}):
            try:  # an evaluator that cannot be had fails here, not after the trials have trained
                metrics = resolve_metrics(ds, spec.metrics, conditional=cond, run=True)
                evaluator_info(ds, "classifier", metrics)
            except UserError as e:
                raise UserError(f"study '{spec.name}': {e}") from None
            if "lpips" in metrics:
                diversity.say_backbone(ds)  # once, before the workers start (they inherit that it was said)

    @staticmethod
    def key(cfg: TrainConfig) -> str:
        """The trial key of the resolved config (seed and budget included): the trial's directory name."""
        return store.trial_key(cfg)

    @staticmethod
    def _budget(variant: Dict[str, Any], where: str) -> Any:
        """A variant's own budget (e.g. n_critic = 1 given 5x the generator steps: matched critic updates),
        typed and checked like the study's; None when it has none."""
        raw = variant.get("budget")
        if raw is None:
            return None
        name = variant.get("name", "?")
        try:
            if not isinstance(raw, dict):
                raise UserError("must be a mapping with one of steps or epochs")
            b = build(Budget, raw, prefix="budget.")
            check_budget(b)
        except UserError as e:
            raise UserError(f"{where}: variant '{name}' budget: {e}") from None
        return b

    @staticmethod
    def _steps(budget: Any, cfg: TrainConfig) -> int:
        if budget.steps is not None:
            return budget.steps
        return steps_for_epochs(budget.epochs, DATASETS.get(cfg.dataset).num_train, cfg.batch_size)

    def payload(self, trial: Trial, spec: StudySpec, data_root: Optional[str], report: bool) -> Dict[str, Any]:
        cfg = trial.config.replace(data_root=data_root) if data_root else trial.config
        # the report's t-SNE panels (first seed of each arm, image data): scored here, under the trial's lock,
        # so the report only reads records and two studies on one store never both add one
        tsne = (
            report
            and report_spec(spec.report).tsne
            and trial.seed == min(spec.seeds)
            and family(cfg.dataset) in METRICS.get("tsne").families
        )
        return {
            "config": cfg.to_dict(),
            "eval_steps": trial.eval_steps,
            "metrics": spec.metrics,
            "num_samples": spec.num_samples,
            "split": spec.split,
            "tsne_samples": min(TSNE_SAMPLES, spec.num_samples) if tsne else 0,
        }

    def run(self, d: Path, payload: Dict[str, Any]) -> Dict[str, Any]:
        cfg = make_config(payload["config"])  # the worker's one build of the config the client resolved
        run = d / store.RUN_DIR
        if not (d / store.TRIAL_FILE).exists():
            io.write_json(d / store.TRIAL_FILE, {"key": d.name, "config": cfg.to_dict()})
        if not (run / rundir.DONE_FILE).exists():
            store.attempt(d, "train", from_step=rundir.checkpoint_step(run), to_step=cfg.steps)
            train(cfg, run, progress=False)
        before = len(rundir.read_metrics(run))
        evaluate_run(
            run,
            steps=payload["eval_steps"],
            metrics=payload["metrics"],
            num_samples=payload["num_samples"],
            split=payload["split"],
            data_root=cfg.data_root,
            progress=False,
        )
        if payload.get("tsne_samples"):
            evaluate_run(
                run,
                steps=[max(payload["eval_steps"])],
                metrics=["tsne"],
                num_samples=payload["tsne_samples"],
                split=payload["split"],
                data_root=cfg.data_root,
                progress=False,
            )
        scored = len(rundir.read_metrics(run)) - before
        if scored:
            store.attempt(d, "evaluate", records=scored)
        return {"checkpoints": rundir.list_checkpoints(run)}

    def status(self, d: Path, payload: Dict[str, Any]) -> str:
        run = d / store.RUN_DIR
        if (run / rundir.DONE_FILE).exists():
            scored = {r.get("step") for r in rundir.read_metrics(run)}
            return "finished" if set(payload["eval_steps"]) <= scored else "partial"
        return "partial" if rundir.last_checkpoint_path(run).exists() else "missing"

    def page(self, records: StudyRecords, tsne: Optional[bool] = None) -> Page:
        return gan_page.page(records, tsne)


# ------------------------------------------------------------------------------------------------
# parallel-lines: the WGAN paper's Example 1 (JS vs EM), one table of θ per seed


@dataclass(frozen=True)
class ParallelLinesParams:
    thetas: List[float] = field(default_factory=lambda: list(parallel_lines.DEFAULT_THETAS))  # positions θ of Pθ
    steps: int = parallel_lines.DEFAULT_STEPS  # critic updates at each θ, for each of the two critics
    batch: int = 256  # samples of P0 and of Pθ per critic update
    lr: float = 1e-3  # Adam learning rate of both critics
    gp_lambda: float = 10.0  # weight of the WGAN-GP critic's gradient penalty
    eval_batch: int = 8192  # samples of the estimates and generator gradients after training


PARALLEL_LINES_LIMITS = {
    "thetas": Limit(-1000, 1000),
    "steps": Limit(1, 1_000_000),
    "batch": Limit(1, 65536),
    "lr": Limit(0, 10, lo_open=True),
    "gp_lambda": Limit(0, 1e6),
    "eval_batch": Limit(1, 1_000_000),
}
MAX_THETAS = 1000


@kind("parallel-lines")
class ParallelLinesKind(StudyKind):
    """One trial per seed: ``parallel_lines.run`` over ``params.thetas``, a CSV of one row per θ."""

    Params = ParallelLinesParams
    table_file = store.PARALLEL_LINES_FILE  # one row per θ

    def check_params(self, p: ParallelLinesParams) -> None:
        if not p.thetas or len(p.thetas) > MAX_THETAS:
            raise UserError(f"'params.thetas' must list 1 to {MAX_THETAS} values of θ, got {len(p.thetas)}")
        for k, lim in PARALLEL_LINES_LIMITS.items():
            for x in getattr(p, k) if k == "thetas" else [getattr(p, k)]:
                check_number(f"params.{k}", x, lim)

    def check(self, spec: StudySpec, where: str) -> List[Trial]:
        for k in ("base", "axes", "variants"):
            if getattr(spec, k):
                raise UserError(f"{where}: study kind '{self.name}' has no '{k}'; its grid is 'params.thetas'")
        if spec.budget.steps is not None or spec.budget.epochs is not None or spec.metrics is not None:
            raise UserError(f"{where}: study kind '{self.name}' takes no 'budget' or 'metrics'; set 'params.steps'")
        return self.trials(spec, where)

    def trials(self, spec: StudySpec, where: str = "study") -> List[Trial]:
        p = self.params(spec, where)
        given = [str(k).replace("-", "_") for k in spec.params or {}]
        # the key hashes the params as written (typed), so existing results keep their trial directories
        key_params = {k: getattr(p, k) for k in given}
        return [
            Trial(
                "parallel lines",
                {},
                seed,
                store.trial_key({"kind": self.name, "params": key_params, "seed": seed}),
                self.name,
                params=dataclasses.asdict(p),
            )
            for seed in spec.seeds
        ]

    def payload(self, trial: Trial, spec: StudySpec, data_root: Optional[str], report: bool) -> Dict[str, Any]:
        return {"params": trial.params}

    def run(self, d: Path, payload: Dict[str, Any]) -> Dict[str, Any]:
        out = d / self.table_file
        if not out.exists():
            p = ParallelLinesParams(**payload["params"])
            store.attempt(d, "train", thetas=len(p.thetas))
            df = parallel_lines.run(
                p.thetas,
                p.steps,
                batch=p.batch,
                seed=payload["seed"],
                progress=False,
                lr=p.lr,
                gp_lambda=p.gp_lambda,
                eval_batch=p.eval_batch,
            )
            # provenance in the same place as a GAN trial's, so the report names the code and the machine
            io.write_json(d / store.RUN_DIR / rundir.RUN_INFO_FILE, rundir.run_info(pick_device("cpu")))
            with io.atomic_path(out) as tmp:
                df.to_csv(tmp, index=False)
        return {}

    def status(self, d: Path, payload: Dict[str, Any]) -> str:
        return "finished" if (d / self.table_file).exists() else "missing"

    def page(self, records: StudyRecords, tsne: Optional[bool] = None) -> Page:
        return parallel_lines_page.page(records)


__all__ = [
    "KINDS",
    "MAX_TRIALS",
    "StudyKind",
    "GanKind",
    "ParallelLinesKind",
    "ParallelLinesParams",
    "eval_schedule",
    "kind",
]

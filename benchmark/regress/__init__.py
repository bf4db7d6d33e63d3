"""``ganbench regress``: a CI gate on metric scores, against a committed baseline.

A *suite* is a study spec like any other (``studies/ci.yaml``): a handful of short CPU trials. The gate
trains and scores every trial afresh in a temporary results root (never the cached trial store in
``./results``: a code change must be seen) with ``deterministic: true`` and one torch thread per trial,
so one machine gives bit-identical scores run after run. Each score of the final evaluation step is then
compared with the baseline (``benchmark/baselines/<suite>.json``)::

    ganbench regress --suite ci                       # compare; exit 1 on a regression
    ganbench regress --suite ci --junit out.xml       # ... and write JUnit XML (one testcase per score)
    ganbench regress --suite ci --set n_critic=1      # try a changed config (every trial) against it
    ganbench regress --suite ci --update              # accept the current scores (keeps tolerances)
    ganbench regress --suite ci --update --calibrate 5   # ... and re-derive tolerances over 5 seeds

Verdicts. Every gated score has a direction, declared by the metric that writes it
(``benchmark.evaluation.scores.direction``: lower FID is better, more modes is better), and a tolerance.
``now`` worse than the baseline by more than the tolerance is a REGRESSION, better by more than it an
*improvement* (accept it with ``--update``), else ok. A score in the baseline
that a trial no longer produces is *missing* and a trial that fails (diverges, raises) is an *error*;
both fail the gate like a regression. Scores not in the baseline are *new* (reported, not gated).

Scores with no preferred direction (``kid_std``, ``is_std``, ``lpips*``/``feat_div*``, the evaluators'
agreement, the training-dynamics figures)
are not gated and not stored: a change in them is neither worse nor better, and a two-sided test on them
would fail CI on every harmless change of a random stream. Only the final evaluation step of each trial
is compared.

Tolerances are measured, not guessed: ``--update --calibrate K`` runs every trial at K seeds (the
suite's seeds first) and sets, per trial and score, ``tolerance = max(3 * std, 2 % of |baseline|,
floor)`` where ``std`` is the sample standard deviation over the K seeds and ``floor`` a small absolute
floor by score (``ABS_FLOORS``: half a mode or class for counts, ...). A score that is non-finite on
some calibration seeds but not on others (e.g. ``rkl`` = inf when no sample is high-quality) is unstable
at the suite's budget and gets an infinite tolerance (recorded, never flagged). The rule, K, the seeds
and each score's spread are written into the baseline. ``--update`` without ``--calibrate`` keeps the
old tolerances and calibrates (K = 3) only the trials that have none.

The baseline also records its environment (torch, python, platform, CPU, device). Compared elsewhere the
command says so in one line and compares anyway. A changed evaluator (classifier sha256) is an error
(exit 2): its scores are not comparable; re-create the baseline with ``--update``. Trials whose data is
not there (MNIST without its files) are skipped, each with its reason, never silently.

A baseline is checked before anything runs: a NaN, negative or absurd tolerance (more than
``ABSURD_TOLERANCE`` times the score's own size), an infinite one that no calibration found necessary, a NaN
value, or a direction that disagrees with the score's declaration is refused with one line naming the entry
(exit 2): any of them would silently turn the gate off for that score.

The package: ``suite`` (preparing the suite, its trial list, running it), ``env`` (environment and
evaluators), ``baseline`` (format, tolerances, loading, building), ``compare`` (verdicts, table, JUnit
XML), ``command`` (the command line and ``--update``).
"""

from __future__ import annotations

from benchmark.regress.baseline import (
    ABS_FLOORS,
    ABSURD_TOLERANCE,
    DEFAULT_ABS_FLOOR,
    DEFAULT_CALIBRATE,
    FORMAT,
    K_SIGMA,
    REL_FLOOR,
    RULE,
    bad_entry,
    build_baseline,
    default_baseline,
    describe_changes,
    load_baseline,
    tolerance,
)
from benchmark.regress.command import UpdateOptions, add_parsers, cmd_regress
from benchmark.regress.compare import (
    VERDICT_FAILS,
    Row,
    compare,
    counts,
    gate_reference,
    gated,
    junit_xml,
    table,
    verdict,
)
from benchmark.regress.env import check_evaluators, env_difference, environment, evaluators
from benchmark.regress.suite import (
    FORCED,
    RESERVED,
    Suite,
    SuiteRun,
    calibration_seeds,
    load_suite,
    prepare,
    run_suite,
    suite_path,
    trial_id,
)

__all__ = [
    "ABS_FLOORS",
    "ABSURD_TOLERANCE",
    "DEFAULT_ABS_FLOOR",
    "DEFAULT_CALIBRATE",
    "FORCED",
    "FORMAT",
    "K_SIGMA",
    "REL_FLOOR",
    "RESERVED",
    "RULE",
    "VERDICT_FAILS",
    "Row",
    "gate_reference",
    "Suite",
    "SuiteRun",
    "UpdateOptions",
    "add_parsers",
    "bad_entry",
    "build_baseline",
    "calibration_seeds",
    "check_evaluators",
    "cmd_regress",
    "compare",
    "counts",
    "default_baseline",
    "describe_changes",
    "env_difference",
    "environment",
    "evaluators",
    "gated",
    "junit_xml",
    "load_baseline",
    "load_suite",
    "prepare",
    "run_suite",
    "suite_path",
    "table",
    "tolerance",
    "trial_id",
    "verdict",
]

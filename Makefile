# ganbench: every target sets itself up from a fresh clone (the virtualenv is a prerequisite).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
GANBENCH := $(VENV)/bin/ganbench
PRESET ?= quick
# Real MNIST: --data-root, else $GANBENCH_DATA, else ./data (downloaded). On the project's own
# machines it lies in ../shared/data; use it when it is there.
ifeq ($(GANBENCH_DATA),)
ifneq ($(wildcard ../shared/data/MNIST/raw),)
export GANBENCH_DATA := $(abspath ../shared/data)
endif
endif
# torch and torchvision must be a pair that works together; this pair was measured here.
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1

STUDIES := lambda variants critic-norm n-critic toy2d stacked-mnist js-vs-em
# Study workers: one per core of this machine unless told otherwise (make studies WORKERS=4).
WORKERS ?= $(shell nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)

.PHONY: venv test faults mutants lint format bench-train bench-eval study-lambda studies demo ci-regress clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q $(TORCH_PIN)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Two pytest-xdist workers (the suite is CPU-bound; measured 1.56x faster than one process on 2 cores).
TEST_WORKERS ?= 2
test: venv
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not slow" tests

# kill -9 of train, evaluate, study run and regress at seeded random moments, 10 times each (FAULT_KILLS):
# every resume must end bit-identical, with no temporary files and no process left behind. Minutes.
FAULT_KILLS ?= 10
faults: venv
	GANBENCH_FAULT_KILLS=$(FAULT_KILLS) $(PY) -m pytest -q -s -m slow tests/test_faults.py

bench-train: venv
	$(PY) -m benchmark.bench_train

bench-eval: venv
	$(PY) -m benchmark.bench_eval

# The main job: the lambda study at $(PRESET) (quick by default; PRESET=long for 100 epochs, 47 % of the paper's budget) and its report.
study-lambda: venv
	$(GANBENCH) study run studies/lambda.yaml --preset $(PRESET) --workers $(WORKERS)

# Every shipped study at $(PRESET).
studies: venv
	set -e; for s in $(STUDIES); do $(GANBENCH) study run studies/$$s.yaml --preset $(PRESET) --workers $(WORKERS); done

# A two-minute study on embedded data (ring8 and 8x8 digits): no download; prints where its report is.
demo: venv
	$(GANBENCH) study run studies/demo.yaml --preset quick --workers $(WORKERS)

# The metric regression gate: the suite studies/ci.yaml run afresh against benchmark/baselines/ci.json
# (exit 1 on a regression; JUnit XML for CI). Accept new scores with: $(GANBENCH) regress --suite ci --update
ci-regress: venv
	$(GANBENCH) regress --suite ci --workers $(WORKERS) --junit results/ci-junit.xml

# Lint and format check (rules in pyproject.toml [tool.ruff]); `make format` applies the fixes and the format.
lint: venv
	$(VENV)/bin/ruff check benchmark tests
	$(VENV)/bin/ruff format --check benchmark tests

format: venv
	$(VENV)/bin/ruff check --fix benchmark tests
	$(VENV)/bin/ruff format benchmark tests

# Mutation testing (mutmut 3, settings in pyproject.toml [tool.mutmut]): every mutant of the modules where a
# silent bug would falsify results, each run against the tests that execute it; then the share killed per module.
# One worker: the machine has 2 cores. Survivors and why they cannot change behaviour: tests/mutants_survivors.md.
# objectives and coverage whole; the trainer's critic step; of the report's claims and the gate, the functions
# that decide a verdict.
MUTANTS ?= benchmark.objectives.* benchmark.train.*critic_step* benchmark.evaluation.coverage.* \
  benchmark.study.claims.x_welch* benchmark.study.claims.x_bootstrap* benchmark.study.claims.x_holm* \
  benchmark.study.claims.x_decide* benchmark.study.claims.x_per_seed* benchmark.study.claims.x_convergence* \
  benchmark.study.claims.x_resolve_metric* benchmark.study.claims.x_metric_direction* \
  benchmark.regress.compare.x_verdict* benchmark.regress.compare.x_compare* benchmark.regress.compare.x_gated* \
  benchmark.regress.compare.x_counts*
mutants: venv
	rm -rf mutants  # a fresh run: mutmut's cached test-to-function map misses tests added since
	$(VENV)/bin/mutmut run --max-children 1 $(foreach m,$(MUTANTS),"$(m)") || true
	$(VENV)/bin/mutmut results --all true | awk -F': ' '$$2 != "not checked" {m = $$1; gsub(/ /, "", m); sub(/\.x(_|ǁ).*/, "", m); \
	  n[m]++; if ($$2 == "killed" || $$2 == "timeout") k[m]++; else if ($$2 == "survived") s[m]++} \
	  END {for (m in n) printf "%-32s %4d mutants  %4d killed  %4d survived  %5.1f%% killed\n", m, n[m], k[m], s[m], 100 * k[m] / n[m]}' | sort

clean:
	rm -rf $(VENV) build *.egg-info

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
WORKERS ?= 2

.PHONY: venv test bench-train bench-eval study-lambda studies demo ci-regress clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q $(TORCH_PIN)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest -q tests

bench-train: venv
	$(PY) -m benchmark.bench_train

bench-eval: venv
	$(PY) -m benchmark.bench_eval

# The main job: the lambda study at $(PRESET) (quick by default; PRESET=paper for the full one) and its report.
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

clean:
	rm -rf $(VENV) build *.egg-info

# ULTRA: `make setup` once, then `make test`, `make pretrain ENV=HalfCheetah`, `make bench`.
ENV ?= HalfCheetah
SEED ?= 0
STEPS ?=
DEVICE ?= auto
OUT ?= runs/pretrain-$(ENV)-s$(SEED)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU wheel on this machine; an unpinned torch would pull GBs of CUDA packages.
TORCH ?= torch==2.13.0

.PHONY: setup test test-ts test-py pretrain train doctor bench clean

setup: node_modules/.installed $(VENV)/.installed

node_modules/.installed: package.json package-lock.json
	npm ci
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# Both runners always run; the target fails if either failed.
test: setup
	@npm run --silent build
	@status=0; \
	npx vitest run || status=1; \
	$(PY) -m pytest -q || status=1; \
	exit $$status

test-ts: setup
	npx vitest run

test-py: setup
	$(PY) -m pytest -q

pretrain: setup
	npx ultra pretrain --env $(ENV) --seed $(SEED) --device $(DEVICE) --out $(OUT) $(if $(STEPS),--steps $(STEPS))

train: setup
	@echo "make train (identify + improve + evaluate + report) lands with the ULTRA issue; use make pretrain ENV=$(ENV) for now" >&2; exit 2

doctor: setup
	npx ultra doctor

bench: setup
	npx ultra bench bridge --json bench/results/bridge.json

clean:
	rm -rf dist node_modules $(VENV) .pytest_cache

# ULTRA: `make setup` once, then `make train ENV=HalfCheetah PROFILE=quick`, `make test`, `make bench`.
ENV ?= HalfCheetah
VARIANT ?= RA
SEED ?= 0
SEEDS ?=
PROFILE ?= paper
BASE ?=
ADVISER ?=
STEPS ?=
DEVICE ?= auto
OUT ?=
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU wheel on this machine; an unpinned torch would pull GBs of CUDA packages.
TORCH ?= torch==2.13.0

.PHONY: across format lint replicate setup test test-ts test-py pretrain train sweep doctor bench clean

setup: node_modules/.installed $(VENV)/.installed dist/.built

# Rebuild the CLI whenever a TS source changed (npm ci builds it once; a pull may change it).
dist/.built: node_modules/.installed tsconfig.json $(shell find ts -name '*.ts')
	npm run --silent build
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# Both runners and the lint always run; the target fails if any failed.
test: setup
	@status=0; \
	npx vitest run || status=1; \
	$(PY) -m pytest -q || status=1; \
	$(MAKE) --no-print-directory lint || status=1; \
	exit $$status

test-ts: setup
	npx vitest run

test-py: setup
	$(PY) -m pytest -q

pretrain: setup
	npx ultra pretrain --env $(ENV) --seed $(SEED) --device $(DEVICE) $(if $(OUT),--out $(OUT)) $(if $(STEPS),--steps $(STEPS))

train: setup
	npx ultra train --env $(ENV) --variant $(VARIANT) --profile $(PROFILE) --device $(DEVICE) \
	  $(if $(SEEDS),--seeds $(SEEDS),--seed $(SEED)) $(if $(BASE),--base $(BASE)) $(if $(ADVISER),--adviser $(ADVISER)) \
	  $(if $(OUT),--out $(OUT)) $(if $(RESUME),--resume)

# A grid on Ray (a local instance unless RAY=auto|ray://HOST:PORT): make sweep SWEEP=configs/sweeps/quick.yaml
SWEEP ?= configs/sweeps/quick.yaml
RAY ?=
sweep: setup
	npx ultra sweep --file $(SWEEP) $(if $(RAY),--ray $(RAY)) $(if $(OUT),--out $(OUT)) $(if $(RESUME),--resume)

# The replication (docs/results.md): RICE's agents (RICE=path to them, ../shared/rice/README.md) refined by every arm,
# resumable: re-run the same command after an interruption and finished trials are kept. Hours on a 2-core CPU.
# The embedded LLM's part is followed by its control: the same trials identified again with random picks (chance).
RICE ?= ../shared/rice
REPLICATE_OUT ?= runs/replicate
REPLICATE_PARTS ?= dense dense-local dense-walker2d dense-reacher sparse-hopper sparse-halfcheetah sparse-walker2d pong
# the Pong part's base, pretrained first in the same sitting (resumable: an interrupted pretraining continues from its
# last checkpoint; a sitting here does not keep runs/, so base and arms are sized to finish in one, docs/results.md)
PONG_BASE ?= $(REPLICATE_OUT)/pong-base
PONG_BASE_STEPS ?= 500000
# the parts put side by side at the end (docs/results/across/), those run so far; dense-local is left out: the same
# tasks as dense with another adviser would count twice
REPLICATE_ACROSS ?= dense dense-walker2d dense-reacher sparse-hopper sparse-halfcheetah sparse-walker2d pong
replicate: setup
	@for part in $(REPLICATE_PARTS); do \
	  if [ $$part = pong ] && [ ! -f $(PONG_BASE)/model.zip ]; then \
	    npx ultra pretrain --env Pong --steps $(PONG_BASE_STEPS) --seed 0 --out $(PONG_BASE) --resume || exit 1; \
	  fi; \
	  RICE=$(RICE) PONG_BASE=$(PONG_BASE) npx ultra sweep --file configs/sweeps/replicate-$$part.yaml --out $(REPLICATE_OUT)/$$part --resume $(if $(RAY),--ray $(RAY)); rc=$$?; \
	  [ -f $(REPLICATE_OUT)/$$part/report.md ] || exit $$rc; \
	  mkdir -p docs/results/$$part && cp $(REPLICATE_OUT)/$$part/report.md $(REPLICATE_OUT)/$$part/summary.json $(REPLICATE_OUT)/$$part/curves-*.png docs/results/$$part/ || exit 1; \
	  [ $$rc -eq 0 ] || exit $$rc; \
	  if [ $$part = dense-local ]; then \
	    npx ultra control --from $(REPLICATE_OUT)/$$part --adviser chance && \
	    cp $(REPLICATE_OUT)/$$part-chance/control.md $(REPLICATE_OUT)/$$part-chance/control.json docs/results/$$part/ || exit 1; \
	  fi; \
	done
	$(MAKE) --no-print-directory across

across: setup
	npx ultra across $(foreach p,$(REPLICATE_ACROSS),$(if $(wildcard docs/results/$(p)/summary.json),docs/results/$(p))) --out docs/results/across

# One look for both sides: prettier (ts/, test/, examples/; .prettierrc.json) and ruff (py/; pyproject.toml).
format: setup
	npx prettier --write "ts/**/*.ts" "test/**/*.ts" "examples/**/*.mjs" agents/pretrain.mjs
	$(PY) -m ruff format py

# What `make format` would change, and ruff's checks (pyproject.toml): none, or the target fails naming the files.
lint: setup
	npx prettier --check "ts/**/*.ts" "test/**/*.ts" "examples/**/*.mjs" agents/pretrain.mjs
	$(PY) -m ruff format --check py
	$(PY) -m ruff check py

doctor: setup
	npx ultra doctor

# The figures of bench/README.md: each writes bench/results/<name>.json (--record; without it `ultra bench` only
# prints); one to two hours on a 2-core CPU (Pong's CNN and the 50 kills of faults dominate). llm-<env>.json needs a
# run with recorded episodes: make bench LLM_RUN=DIR (without it that file is left as it is).
LLM_RUN ?=
bench: setup
	npx ultra bench determinism --env HalfCheetah --steps 4096 --record
	npx ultra bench determinism --env Pong --steps 8192 --record
	npx ultra bench overhead --env HalfCheetah --steps 10240 --repeats 6 --record
	npx ultra bench overhead --env Pong --steps 2048 --repeats 2 --record
	npx ultra bench scale --env HalfCheetah --steps 16384 --record
	npx ultra bench bridge --record
	npx ultra bench faults --kills 50 --record
	npx ultra bench sweep --env HalfCheetah --seeds 2 --record
	npx ultra bench snapshots --env Pong --record
	$(if $(LLM_RUN),npx ultra bench llm --run $(LLM_RUN) --episodes 3 --prompt-chars 5000 --record)

clean:
	rm -rf dist node_modules $(VENV) .pytest_cache

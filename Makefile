# Basis vault suite. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Project tools first: the venv (ape, vyper, pytest) and the pinned anvil from npm.
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
# The standalone node that scripts and the keeper share (ape network ethereum:local:node).
export BASIS_RPC_URL ?= http://127.0.0.1:8545
NODE_PORT ?= $(lastword $(subst :, ,$(BASIS_RPC_URL)))
# ape-vyper's settings model warns about itself on every run; it is not ours to fix.
export PYTHONWARNINGS ?= ignore:Field 'import_remapping'
TEST_NETWORK := ethereum:local:foundry

.PHONY: help setup test test-chain chain-halves soak compile lint format node bench demo demo-ops lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

setup: $(VENV)/.installed $(VENV)/.defaults node_modules/.installed ## create the venv and install pinned Python and npm dependencies (idempotent)

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "error: Python 3.11+ is required ('$(PYTHON)' is missing or older); install it or run make PYTHON=python3.11 ..." >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

# Defaults for running the venv's `ape` directly (the operator runbook), as make runs it:
# BASIS_RPC_URL for ethereum:local:node, and ape-vyper's warning about its own settings
# model silenced (PYTHONWARNINGS above does that for make's commands).
$(VENV)/.defaults: $(VENV)/.installed Makefile
	@echo "import os, warnings; os.environ.setdefault('BASIS_RPC_URL', 'http://127.0.0.1:8545'); warnings.filterwarnings('ignore', message=\"Field 'import_remapping'\")" \
	  > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/basis_rpc_default.pth"
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "error: Node.js with npm is required for the local chain (anvil); install Node 18+" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

compile: setup ## compile the contracts
	ape compile --force

# Offline tests (none of their fixtures reach ape's chain: tests/fixtures/isolation.py) run
# without ape's plugin and without a node; the chain tests on ape's anvil.
test: setup compile ## the whole suite: offline tests (no node), chain tests on anvil, then make lint
	pytest tests -p no:ape_test -m "not chain" -p no:cacheprovider -q
	@$(MAKE) --no-print-directory chain-halves
	$(MAKE) --no-print-directory lint

# The chain tests as two halves at once, each `ape test` on its own anvil (ape-foundry's
# `host: auto` gives each a free port): half A is CHAIN_A, half B everything else, so no
# test is left out. Each half's output is printed when both have ended; either failing
# fails the target.
CHAIN_A := tests/vault tests/replay
test-chain: setup compile ## the chain tests only, in two halves at once on their own anvils
	@$(MAKE) --no-print-directory chain-halves

chain-halves:
	@a=$$(mktemp); b=$$(mktemp); sa=0; sb=0; \
	trap 'echo "== interrupted: the halves so far"; cat "$$a" "$$b"; rm -f "$$a" "$$b"; exit 130' INT TERM; \
	ape test $(CHAIN_A) -m chain --network $(TEST_NETWORK) -p no:cacheprovider -q >"$$a" 2>&1 & pa=$$!; \
	ape test tests $(addprefix --ignore=,$(CHAIN_A)) -m chain --network $(TEST_NETWORK) -p no:cacheprovider -q \
	  >"$$b" 2>&1 & pb=$$!; \
	wait $$pa || sa=$$?; wait $$pb || sb=$$?; \
	echo "== chain tests, half A ($(CHAIN_A)): exit $$sa"; cat "$$a"; \
	echo "== chain tests, half B (the rest): exit $$sb"; cat "$$b"; rm -f "$$a" "$$b"; \
	test $$sa -eq 0 && test $$sb -eq 0

# SOAK=<factor> multiplies the examples of the chain property tests and state machines.
SOAK ?= 10
soak: setup compile ## the property tests and state machines with SOAK x the examples (BASIS_SOAK; ~1 h at 10)
	BASIS_SOAK=$(SOAK) KEEPER_STRESS_EXAMPLES=3000 ape test tests/vault/test_vault_stateful.py \
	  tests/vault/test_erc4626_properties.py tests/venues/test_perp_hypothesis.py \
	  tests/venues/test_spot_hypothesis.py tests/keeper/test_strategy_properties.py \
	  tests/scripts/test_demo_ops.py --network $(TEST_NETWORK) -p no:cacheprovider -q

lint: setup ## ruff (lint + format check), mypy on keeper/ and its layers (import-linter, pyproject.toml)
	ruff check .
	ruff format --check .
	mypy keeper
	lint-imports --no-cache

format: setup ## apply ruff's formatting and safe fixes
	ruff check --fix .
	ruff format .

node: setup ## run a standalone anvil for scripts and the keeper (Ctrl-C stops it)
	anvil --host 127.0.0.1 --port $(NODE_PORT)

bench: setup compile ## gas table (vault vs snekmate erc4626), keeper tick, replay speed and memory, sweep speed-up over serial -> reports/bench.json
	ape run bench --network $(TEST_NETWORK) -v WARNING

# DATA=<file> replays any supported funding file (PRICES=<file>, FROM=, TO= optional);
# SPOT=uniswap-v3 puts the spot leg on the official Uniswap v3 contracts (full range).
demo: setup compile ## own anvil, deploy, 3 depositors, a year replayed with the real keeper; report + charts in reports/demo
	basis-keeper demo $(if $(DATA),--data $(DATA)) $(if $(PRICES),--prices $(PRICES)) $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO)) $(if $(SPOT),--spot $(SPOT))

demo-ops: setup compile ## the operator tools by hand on a throwaway anvil: deploy, deposits, a rebalance, a week of prices
	ape run demo --network $(TEST_NETWORK) -v WARNING

lock: ## re-resolve and rewrite constraints.txt from pyproject.toml
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet -e '.[dev]'
	.lockenv/bin/pip freeze --exclude-editable > constraints.txt && rm -rf .lockenv

clean: ## remove build outputs and caches (keeps the venv and node_modules)
	rm -rf .build reports .pytest_cache .mypy_cache .ruff_cache .hypothesis

# The team's vocabulary. `make demo` and `make test` are the two commands a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.13 is the Lambda runtime and the version the tests run on: python3.13 on PATH, else pyenv's.
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
PY := $(VENV)/bin/python
SAM := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SAM_VENV)/bin/sam
TEMPLATE := template.yaml

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# Each install step says what it is when it starts and how long it took (scripts/timed-step).
# The installer is uv (pinned in requirements-uv.txt, in its own small venv .venv-uv, installed there by
# pip): one `uv pip install` per venv, the same pinned versions pip installed, in seconds instead of
# minutes. uv does not read pip.conf: it installs from PyPI, where every pin lives, and trusts the
# system's certificate store (--system-certs: a TLS-inspecting proxy's CA, like pip's `cert`). It
# compiles no .pyc ahead (pip compiled all 7,400 files of .venv; the suite imports ~900): Python
# compiles what is imported, once, on first use. The venvs are made by uv too (scripts/new-venv); .venv
# gets the pip its Python ships, as `python -m venv` gave it (the layer's build runs pip), the two
# tool venvs none (nothing runs pip there).
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
UV_INSTALL := $(UV) pip install --quiet --system-certs

$(UV_VENV)/.installed: requirements-uv.txt
	@[ -x $(UV_VENV)/bin/python ] || { py=$$(scripts/find-python313) && scripts/timed-step "creating $(UV_VENV) with $$py" "$$py" -m venv $(UV_VENV); }
	@scripts/timed-step "installing uv, the venvs' installer, into $(UV_VENV) (pip; a few seconds)" \
		$(UV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-uv.txt
	@touch $@

# Order-only on uv: a newer uv does not reinstall the venvs.
$(VENV)/.installed: requirements-dev.txt constraints.txt layers/shared/requirements.txt | $(UV_VENV)/.installed
	@[ -x $(PY) ] || { py=$$(scripts/find-python313) && scripts/timed-step "creating $(VENV) with $$py and the pip it ships" scripts/new-venv $(UV) "$$py" $(VENV) --with-pip; }
	@scripts/timed-step "installing the app and test dependencies into $(VENV) (uv pip install; seconds)" \
		$(UV_INSTALL) --python $(PY) -r requirements-dev.txt -c constraints.txt
	@touch $@

$(SAM_VENV)/.installed: requirements-sam.txt | $(UV_VENV)/.installed
	@[ -x $(SAM_VENV)/bin/python ] || { py=$$(scripts/find-python313) && scripts/timed-step "creating $(SAM_VENV) with $$py" scripts/new-venv $(UV) "$$py" $(SAM_VENV); }
	@scripts/timed-step "installing the SAM CLI into $(SAM_VENV) (uv pip install; seconds)" \
		$(UV_INSTALL) --python $(SAM_VENV)/bin/python -r requirements-sam.txt
	@touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt | $(UV_VENV)/.installed
	@[ -x $(CHECKOV_VENV)/bin/python ] || { py=$$(scripts/find-python313) && scripts/timed-step "creating $(CHECKOV_VENV) with $$py" scripts/new-venv $(UV) "$$py" $(CHECKOV_VENV); }
	@scripts/timed-step "installing checkov into $(CHECKOV_VENV) (uv pip install; seconds)" \
		$(UV_INSTALL) --python $(CHECKOV_VENV)/bin/python -r requirements-checkov.txt
	@touch $@

.PHONY: venvs
venvs: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed ## the three venvs (CI: make -j3 venvs, one uv install each, in parallel)

.PHONY: dev
dev: $(VENV)/.installed $(SAM_VENV)/.installed ## create both virtual environments (.venv for the app, .venv-sam for SAM tooling)

# ----------------------------------------------------------------------------------------------------
# Quality gates. `make test` is what CI runs (.ci/run), on a fresh machine, from nothing.
# ----------------------------------------------------------------------------------------------------
PY_SOURCES := layers/shared functions devtools tests scripts benchmarks
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= eu-west-1

.PHONY: lint
lint: $(VENV)/.installed ## ruff (lint + format check)
	$(VENV)/bin/ruff check $(PY_SOURCES)
	$(VENV)/bin/ruff format --check $(PY_SOURCES)

.PHONY: format
format: $(VENV)/.installed ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix $(PY_SOURCES)
	$(VENV)/bin/ruff format $(PY_SOURCES)

.PHONY: typecheck
typecheck: $(VENV)/.installed ## mypy --strict on the layer, functions, devtools and scripts
	$(VENV)/bin/mypy layers/shared/offergrid_integration functions devtools scripts benchmarks

.PHONY: imports
imports: $(VENV)/.installed ## import-linter: the layer's import contracts (pyproject.toml [tool.importlinter])
	PYTHONPATH=layers/shared $(VENV)/bin/lint-imports --no-cache

.PHONY: template-check
# `sam validate --lint` only: samconfig.toml sets `lint = true` for validate, so a plain `sam validate`
# ran the very same cfn-lint pass again (its offline-impossible basic check, which asks IAM for managed
# policies, never ran). scripts/check_template.py is that basic check offline: it translates the
# template and runs cfn-lint on the plain CloudFormation.
template-check: $(SAM_VENV)/.installed ## sam validate --lint, then cfn-lint of the template translated offline
	$(SAM) validate --lint --template $(TEMPLATE)
	$(SAM_VENV)/bin/python scripts/check_template.py $(TEMPLATE)

.PHONY: security-check
security-check: $(CHECKOV_VENV)/.installed ## checkov IaC scan (offline) of the stack and the pipeline bootstrap: fails on any check neither fixed nor skipped with a reason
	$(CHECKOV_VENV)/bin/python scripts/security_check.py $(TEMPLATE)
	$(CHECKOV_VENV)/bin/python scripts/security_check.py $(BOOTSTRAP_TEMPLATE)

# The deploy pipeline (docs/runbooks/pipeline.md): the GitHub Actions workflows and the bootstrap
# template each stage's roles and artifacts bucket come from.
WORKFLOWS := $(wildcard .github/workflows/*.yml)
BOOTSTRAP_TEMPLATE := pipeline/bootstrap.yaml
.PHONY: pipeline-check
pipeline-check: $(VENV)/.installed $(SAM_VENV)/.installed ## lint the pipeline: actionlint on .github/workflows, cfn-lint on pipeline/bootstrap.yaml
	$(VENV)/bin/actionlint -color=false $(WORKFLOWS)
	$(SAM_VENV)/bin/cfn-lint $(BOOTSTRAP_TEMPLATE)

# The layer's Makefile learns the architecture from LAYER_ARCHITECTURE (sam does not pass parameters
# to a makefile build); one cache per architecture, so a cached layer of the other one is never reused.
ARCHITECTURE ?= x86_64
.PHONY: build
build: $(VENV)/.installed $(SAM_VENV)/.installed ## sam build (no container) for ARCHITECTURE (x86_64 | arm64): functions + one precompiled layer
	LAYER_ARCHITECTURE=$(ARCHITECTURE) $(SAM) build --template $(TEMPLATE) --cached --parallel \
		--cache-dir .aws-sam/cache-$(ARCHITECTURE) --parameter-overrides Architecture=$(ARCHITECTURE)

# In parallel (pytest-xdist), one worker per CPU and one more: much of the suite's time is waiting
# (processes starting, local stacks, compressed clocks), which the extra worker fills (2 cores: pytest
# 199 s with 3 workers, 244 s with 2). --dist loadfile keeps each test file on one worker, so a
# file's module-scoped fixtures (local stacks on free ports, in temporary folders) start once.
# --no-loadscope-reorder: files go out in the order tests/conftest.py gives (files with slow tests
# first), not xdist's by number of tests, which left the few long tests to the end on one worker.
# Under CI the 15 slowest tests are listed, to see where the time goes.
PYTEST_WORKERS ?= $(shell $(PY) -c 'import os; print((os.process_cpu_count() or 1) + 1)')
PYTEST_DIST := --dist loadfile --no-loadscope-reorder
.PHONY: pytest
pytest: $(VENV)/.installed $(SAM_VENV)/.installed ## the test suite only, in parallel (PYTEST_WORKERS=N|auto|0, default CPUs + 1; sam regenerates events/sam_*.json to compare)
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_DIST) $(if $(CI),--durations=15)

# The suite by what it tests (README "Tests"): the product's logic, the product against moto and the
# fake (with the end-to-end runs), and the tooling (the Offergrid fake, the local stack, the Makefile).
.PHONY: test-unit
test-unit: $(VENV)/.installed ## the product's logic: tests/unit (no local stack)
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_DIST) tests/unit

.PHONY: test-integration
test-integration: $(VENV)/.installed $(SAM_VENV)/.installed ## the product against moto + the Offergrid fake: tests/integration and tests/e2e
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_DIST) tests/integration tests/e2e

.PHONY: test-tooling
test-tooling: $(VENV)/.installed $(SAM_VENV)/.installed ## the tools the tests stand on: tests/tooling (the fake, the local stack, the Makefile)
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_DIST) tests/tooling

# The gates are independent: lint, typecheck, imports, template-check, security-check, pipeline-check and build run in the
# background while pytest streams its progress; each then prints its output as one block with its
# time (scripts/gates). `make -k lint typecheck ...` runs them one after another instead.
TEST_GATES := lint typecheck imports template-check security-check pipeline-check build
.PHONY: test
test: $(VENV)/.installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed ## everything CI checks: lint, types, template, IaC scan, build, tests
	@MAKE="$(MAKE)" scripts/gates pytest $(TEST_GATES)

# The suite while the machine is kept busy (scripts/cpu_load.py: one CPU-burning process per core and
# one more, or STRESS_LOAD=N; stopped when the suite ends, fails or is interrupted), so a test that
# passes only on a quiet machine fails here before it fails in CI.
.PHONY: test-stress
test-stress: $(VENV)/.installed $(SAM_VENV)/.installed ## the test suite (make pytest) with the CPUs kept busy (STRESS_LOAD=N processes, default CPUs + 1)
	@$(PY) scripts/cpu_load.py $(if $(STRESS_LOAD),--load $(STRESS_LOAD)) -- $(MAKE) --no-print-directory pytest

.PHONY: test-deep
test-deep: $(VENV)/.installed ## the long property runs: order invariants, catalog corruption P1, webhook bodies P3, P2 full reads, listings P4, rate budget under skewed clocks P5 (nights, before a release; ~45 min)
	ORDER_INVARIANTS_PROFILE=deep $(PY) -m pytest tests/integration/test_order_invariants.py -p no:logging -s -q
	CATALOG_PROPERTIES_PROFILE=deep $(PY) -m pytest tests/integration/test_catalog_corruption.py -p no:logging -s -q
	ORDER_READS_PROFILE=deep $(PY) -m pytest tests/integration/test_order_reads_property.py -p no:logging -s -q
	INGRESS_PROPERTIES_PROFILE=deep $(PY) -m pytest tests/integration/test_ingress_properties.py -p no:logging -s -q
	PAGING_PROPERTIES_PROFILE=deep $(PY) -m pytest tests/unit/test_offergrid_client_paging_property.py -p no:logging -q \
		--hypothesis-show-statistics
	RATE_PROPERTIES_PROFILE=deep $(PY) -m pytest tests/integration/test_ratelimit_properties.py -p no:logging -q

# ----------------------------------------------------------------------------------------------------
# Benchmarks: scripts that print figures (never timed tests)
# ----------------------------------------------------------------------------------------------------
.PHONY: bench-webhook
bench-webhook: $(VENV)/.installed ## webhook ingress: cold start vs a bare baseline, warm overhead, peak RSS
	$(PY) benchmarks/bench_webhook.py

# ----------------------------------------------------------------------------------------------------
# Local stack: no AWS account, no Docker (moto in server mode + the Offergrid fake)
# ----------------------------------------------------------------------------------------------------
.PHONY: demo
demo: $(VENV)/.installed ## the whole integration on this machine (moto + Offergrid fake); exits 0 only if as expected
	$(PY) -m devtools.demo

# Ports: 3000 (API), 5000 (moto), 8900 (the fake) when free, else any free port; PORT=, MOTO_PORT=,
# FAKE_PORT= ask for one (0 = any), and a port asked for that is taken stops it at once, named.
# The ports taken go to .local/stack.json, which invoke and replay read.
.PHONY: local
local: $(VENV)/.installed ## the local stack until Ctrl-C (API :3000, moto :5000, fake :8900 when free; PORT= MOTO_PORT= FAKE_PORT= to choose)
	$(PY) -m devtools.local up $(if $(PORT),--port $(PORT)) $(if $(MOTO_PORT),--moto-port $(MOTO_PORT)) $(if $(FAKE_PORT),--fake-port $(FAKE_PORT))

# Without EVENT, the function's own sample event (devtools/local/events.py); EPHEMERAL=1 needs no `make local`.
FUNCTION ?= WebhookIngressFunction
EVENT ?=
.PHONY: invoke
invoke: $(VENV)/.installed ## `sam local invoke` without Docker: make invoke FUNCTION=OfferSyncFunction [EVENT=events/<file>.json] [EPHEMERAL=1]
	@$(PY) -m devtools.local invoke $(FUNCTION) $(if $(EVENT),-e $(EVENT)) $(if $(ENV_VARS),--env-vars $(ENV_VARS)) $(if $(EPHEMERAL),--ephemeral)

.PHONY: replay
replay: $(VENV)/.installed ## replay tool: make replay ARGS="webhook" | ARGS="dlq list" | ARGS="sync --dry-run"
	@$(PY) -m devtools.replay $(ARGS)

# ----------------------------------------------------------------------------------------------------
# Deploy and smoke test (docs/runbooks/first-deploy.md, docs/runbooks/pipeline.md). Every answer is in
# samconfig.toml; scripts/deploy.py merges PARAMS over the environment's saved parameter_overrides,
# lets prod show its change set and ask (not under CI=true), and checks the credentials before the
# build. The pipeline builds once (make build) and deploys that build (make deploy-built).
# ----------------------------------------------------------------------------------------------------
ENV ?=
PARAMS ?=
DEPLOY := $(PY) scripts/deploy.py --env "$(ENV)" --params "$(PARAMS)"

.PHONY: deploy
deploy: $(VENV)/.installed $(SAM_VENV)/.installed ## build, then deploy: make deploy ENV=dev|prod [PARAMS="Key=Value ..."] (DRY_RUN=1 prints the sam deploy command)
	@$(DEPLOY) check
	@$(if $(DRY_RUN),,$(MAKE) --no-print-directory build)
	@$(DEPLOY) deploy

.PHONY: deploy-built
deploy-built: $(VENV)/.installed $(SAM_VENV)/.installed ## deploy the build in .aws-sam/build as it is (the pipeline's): make deploy-built ENV=dev|prod
	@test -f .aws-sam/build/template.yaml || { echo "error: no .aws-sam/build/template.yaml: make build first (or make deploy, which builds)" >&2; exit 2; }
	@$(DEPLOY) check
	@$(DEPLOY) deploy

.PHONY: smoke
smoke: $(VENV)/.installed ## check a deployed stack without touching an order: make smoke ENV=dev|prod|local [DRAFT_OFFER=1]
	@$(PY) -m devtools.smoke --env "$(ENV)" $(if $(filter-out 0,$(DRAFT_OFFER)),--draft-offer) $(SMOKE_ARGS)

.PHONY: bench-sync
bench-sync: $(VENV)/.installed ## offer sync: API calls vs the naive sync, no-change run, plan time and memory (50k offers)
	$(PY) benchmarks/bench_sync.py

.PHONY: bench-cold
bench-cold: $(VENV)/.installed build ## cold starts of the 3 functions, from source and as built (python -B), vs bare handlers
	$(PY) benchmarks/bench_cold.py $(BENCH_ARGS)

.PHONY: bench-reconcile
bench-reconcile: $(VENV)/.installed ## reconciliation: Offergrid API calls per run for 1,000 open items, against the fake
	$(PY) benchmarks/bench_reconcile.py

.PHONY: bench-orders
bench-orders: $(VENV)/.installed ## order throughput: a 200-order burst via webhook -> SQS -> processor, idle and during a sync
	$(PY) benchmarks/bench_orders.py $(BENCH_ARGS)

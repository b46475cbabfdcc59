# qcn — two commands do all the set-up: `make demo` (the whole story on the embedded default) and `make test`.
SHELL := /bin/bash
PY := .venv/bin/python
UV_VERSION := 0.13.8

.PHONY: setup demo test test-fast lint bench clean-demo services

setup: .venv/.qcn-stamp node_modules/.qcn-stamp app/portal/static/dist/.stamp contracts/tools/slither/.venv/.qcn-stamp

.venv/.qcn-stamp: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	# bytecode compiled once here: every gateway, worker and CLI process would otherwise compile web3, pandas,
	# scipy... from source at each start where PYTHONDONTWRITEBYTECODE is set (4.4 s -> 1.6 s to import)
	uv sync --frozen --compile-bytecode
	@touch $@

# Slither in its own locked environment: slither-analyzer 0.11.6 pins web3 < 8, qcn runs web3 8
contracts/tools/slither/.venv/.qcn-stamp: contracts/tools/slither/pyproject.toml contracts/tools/slither/uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	uv sync --frozen --project contracts/tools/slither
	@touch $@

node_modules/.qcn-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# the portal's JavaScript, bundled from npm (ethers, merkle-tree, htmx): served by the gateway, no CDN
app/portal/static/dist/.stamp: node_modules/.qcn-stamp web/build.mjs $(wildcard web/src/*.js)
	node web/build.mjs
	@touch $@

demo: setup
	$(PY) -m app.cli demo

services:
	@bash scripts/ensure_services.sh

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	$(PY) scripts/check_artifacts.py

test: setup services lint
	.venv/bin/pytest -q -p no:cacheprovider -m "not bench"

test-fast: setup
	.venv/bin/pytest -q -m "not slow and not node and not postgres and not browser and not bench"

bench: setup
	uv sync --frozen --compile-bytecode --group bench
	@touch .venv/.qcn-stamp
	$(PY) scripts/bench.py
	$(PY) scripts/fuzz_api.py
	.venv/bin/pytest -q -p no:cacheprovider -m bench

clean-demo:
	-$(PY) -m app.cli chain down
	rm -rf .qcn

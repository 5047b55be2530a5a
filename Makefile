# Pricewire: every user-facing command. `make help` lists them.
SHELL := /bin/bash
PORT ?= 8000
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN := $(UV) run --frozen
PACKAGES := -p pricewire_contracts -p pricewire_common -p pricewire_edge -p pricewire_ingest \
            -p pricewire_registry -p pricewire_stats -p pricewire_dev

# Debian packages the browser and deployment tests use: command -> package
SYSTEM_TOOLS := promtool:prometheus nginx:nginx docker-compose:docker-compose chromium:chromium node:nodejs npm:npm
ASYNCAPI_SPECS := .tools/asyncapi/node_modules/@asyncapi/specs

.PHONY: help install system-deps run demo test test-fast lint fmt bench schemas clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.tools/bin/uv:
	$(PYTHON) -m venv .tools && .tools/bin/pip install --quiet uv

.venv/.synced: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml)
	$(UV) sync --frozen --all-packages --python $(PYTHON)
	@touch $@

install: .venv/.synced ## install Python packages and nats-server into .venv

system-deps: ## Chromium, Node.js, promtool, nginx, docker-compose (Debian) and the AsyncAPI schemas (npm)
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	@test -d $(ASYNCAPI_SPECS) || npm install --silent --no-save --no-audit --no-fund \
	  --prefix .tools/asyncapi @asyncapi/specs@6.11.1

run: install ## everything on http://localhost:$(PORT), polling the live providers
	$(RUN) python -m pricewire_dev run --providers live --port $(PORT)

demo: install ## everything on http://localhost:$(PORT), with simulated providers (offline)
	$(RUN) python -m pricewire_dev run --providers simulated --port $(PORT)

test: install system-deps ## the whole suite: unit, integration (real nats-server), end to end, browser
	PRICEWIRE_REQUIRE_BROWSER=1 $(RUN) pytest

test-fast: install ## unit and integration tests only (no slow or browser tests)
	$(RUN) pytest -m "not slow and not browser"

lint: install ## ruff and mypy (strict on source)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy $(PACKAGES)

fmt: install ## format and fix what ruff can
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

bench: install ## fan-out benchmark: edge vs a naive FastAPI manager vs nats-server's WebSocket listener
	$(RUN) python services/market-ingest/bench_polling.py
	$(RUN) python -m bench.ingest  # ingest: tick-to-client p50 / p99 at N ticks/s
	$(RUN) python -m bench  # prints the summary line last

schemas: install ## regenerate docs/asyncapi.yaml and the JSON Schemas of every contract
	$(RUN) python -m pricewire_contracts.asyncapi docs/asyncapi.yaml
	$(RUN) python -m pricewire_contracts.schema docs/schemas

clean: ## remove the venv, tool and run folders
	rm -rf .venv .tools .run logs

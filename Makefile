# The two commands of the quick start: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test install install-test lint web-test web-dist

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]'

serve: install web-dist
	$(BIN)/porch serve

# The browser app `porch serve` serves (web/dist, not committed): built again when any of its
# sources is newer than the last build. The server needs no Node.js at run time, so without
# Node.js 20 this says so in one sentence and `serve` runs the API alone.
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html \
	web/package.json web/package-lock.json web/vite.config.ts web/tsconfig.json
NODE_OK = command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && \
	node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)'

web-dist: web/dist/index.html

web/dist/index.html: $(WEB_SOURCES)
	@if $(NODE_OK); then \
	  cd web && { [ node_modules/.package-lock.json -nt package-lock.json ] || \
	    npm ci --no-audit --no-fund --loglevel=error; } && npm run --silent build; \
	else \
	  echo "porch: the browser app needs Node.js 20 and npm to build (apt-get install nodejs npm), so the server runs with the API only (or an earlier build of web/dist)."; \
	fi

# The browser client (web/): npm ci once, then type check, format check, Vitest (the shared
# vectors) and a production build. pytest's tests/interop need web/node_modules, so `test`
# runs this first. Without Node.js 20+ and npm it is skipped locally and fails under CI=true.
web-test:
	@if $(NODE_OK); then \
	  cd web && npm ci --no-audit --no-fund --loglevel=error && npm test && npm run --silent build; \
	elif [ -n "$$CI" ]; then \
	  echo "web-test: Node.js 20+ and npm are required under CI; install them (apt-get install nodejs npm)." >&2; \
	  exit 1; \
	else \
	  echo "web-test: skipped, Node.js 20+ and npm are not installed; install them (e.g. apt-get install nodejs npm) to run the browser client's tests."; \
	fi

test: install-test web-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# Quick start: `make demo` (install + run the offline demo) and `make test` (install + run every test).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

WEB_BUILD := src/perparb/api/static/index.html

.PHONY: setup demo test lint bench clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The dashboard (web/, Vite + TypeScript) builds into the package, which serves it at /.
$(WEB_BUILD): $(wildcard web/package.json web/package-lock.json web/index.html web/vite.config.* web/tsconfig*.json) $(shell find web/src -type f 2>/dev/null)
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build

ifneq ($(wildcard web/package.json),)
setup: $(STAMP) $(WEB_BUILD)
else
setup: $(STAMP)
endif

# Browser tests drive Debian's Chromium through Playwright; install it when missing (root).
browser:
	@command -v chromium >/dev/null 2>&1 || (command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)) || \
		echo "WARNING: chromium is not installed; browser tests will be skipped"

demo: setup
	$(BIN)/perparb demo --duration 20

test: setup browser
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

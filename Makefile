# Quick start: `make demo` (install + run the offline demo) and `make test` (install + run every test).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

WEB_BUILD := src/perparb/api/static/index.html

.PHONY: setup demo test lint bench clean browser postgres nats

$(STAMP): pyproject.toml setup.py src/perparb/_levels.c
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

# The ledger's PostgreSQL tests need a server on 127.0.0.1:5432; start the local cluster if it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || \
		(command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] && \
		 pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start && \
		 for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done) || \
		echo "WARNING: PostgreSQL is not running on 127.0.0.1:5432; the PostgreSQL ledger tests will fail under CI=true"

# The NATS bus tests start their own private nats-server (random port, own store); the
# machine's broker on 127.0.0.1:4222 (JetStream) is started too when it is down, for
# running perparb distributed by hand.
nats:
	@command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || \
		(command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
		 (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null)) || \
		echo "WARNING: nats-server is not installed; the NATS bus tests will fail under CI=true"
	@timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/4222' 2>/dev/null || \
		(command -v start-stop-daemon >/dev/null 2>&1 && [ -x /usr/sbin/nats-server ] && mkdir -p /var/lib/nats-server && \
		 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
		   -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log) || \
		echo "WARNING: no NATS broker on 127.0.0.1:4222"

test: setup browser postgres nats
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
	find src -name "*.so" -delete

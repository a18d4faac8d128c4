# The README's two commands: `make run` and `make test`. Everything else here is what they call.
SHELL := /bin/bash
# Development runs with DEBUG on (settings default it off, so production fails closed); override with DJANGO_DEBUG=0.
export DJANGO_DEBUG ?= 1
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8000
PG_URL ?= postgres://postgres@127.0.0.1:5432/retention
REDIS_URL_TEST ?= redis://127.0.0.1:6379/15
# pytest-xdist processes for tiers 1 and 2 (each has its own test database, test_<name>_gw0…; the files tests write
# under fixed names go to a folder per worker, see config/test_settings.py). TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 2

.PHONY: run test venv messages chromium compose migrate seed serve test-sqlite test-postgres test-redis lint bench bench-pipeline clean

# Development installs the dev lock (production + test tools, hashed); the image installs requirements.txt only.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing Python packages into $(VENV)…"
	@$(PIP) install --quiet --upgrade pip 2>&1 | grep -v "is ignored: it is neither" || true
	@$(PIP) install --quiet -r requirements-dev.txt 2>&1 | grep -v "is ignored: it is neither"; test $${PIPESTATUS[0]} -eq 0
	@touch $@

venv: $(VENV)/.installed

# gettext's msgfmt compiles the catalogues; install it from Debian when missing.
messages: venv
	@command -v msgfmt >/dev/null || { echo "Installing gettext (msgfmt)…"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null; }
	@if ls locale/*/LC_MESSAGES/django.po >/dev/null 2>&1; then $(PY) manage.py compilemessages --ignore=.venv -v 0; fi

# Browser tests drive Debian's chromium; Playwright's own browser download does not work offline.
chromium:
	@test -x /usr/bin/chromium || { echo "Installing chromium for browser tests…"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

migrate: venv
	@$(PY) manage.py migrate --noinput -v 0

seed: migrate
	@$(PY) manage.py bootstrap_demo --members 1500 --months 12 --seed 7

run: messages seed
	@$(PY) manage.py collectstatic --noinput -v 0
	@$(PY) manage.py demo_logins
	@echo "Site: http://127.0.0.1:$(PORT)/   admin: http://127.0.0.1:$(PORT)/admin/   reports: http://127.0.0.1:$(PORT)/staff/"
	@echo "Starting web, Celery worker and beat (Ctrl-C stops all three)…"
	@PORT=$(PORT) DEMO_FAST_BEAT=1 $(VENV)/bin/honcho start -f Procfile

# tests/config/test_deployment_files.py validates compose.yaml with `docker-compose config`: Debian's package.
compose:
	@command -v docker-compose >/dev/null || { echo "Installing docker-compose for the compose.yaml check…"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }

test: messages chromium compose
	@$(MAKE) --no-print-directory test-sqlite
	@$(MAKE) --no-print-directory test-postgres
	@$(MAKE) --no-print-directory test-redis

test-sqlite: venv
	@echo "== Tier 1: whole suite on SQLite =="
	@$(MAKE) --no-print-directory lint
	@$(PY) manage.py makemigrations --check --dry-run -v 0 || { echo "Models and migrations differ: run makemigrations"; exit 1; }
	@$(PY) manage.py check --database default --fail-level WARNING
	$(VENV)/bin/pytest -p no:cacheprovider -n $(TEST_WORKERS)

test-postgres: venv
	@if $(PY) -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then \
	  echo "== Tier 2: suite on PostgreSQL (127.0.0.1:5432), browser tests excluded =="; \
	  DATABASE_URL=$(PG_URL) $(VENV)/bin/pytest -p no:cacheprovider -n $(TEST_WORKERS) -m "not browser" ; \
	else echo "Tier 2 skipped: PostgreSQL is not answering on 127.0.0.1:5432"; fi

test-redis: venv
	@if $(PY) -c "import socket; socket.create_connection(('127.0.0.1', 6379), 1); socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then \
	  echo "== Tier 3: Celery with a real worker process on Redis + PostgreSQL =="; \
	  DATABASE_URL=$(PG_URL) TEST_CELERY_BROKER_URL=$(REDIS_URL_TEST) CELERY_TASK_ALWAYS_EAGER=0 RUN_WORKER_TESTS=1 \
	    $(VENV)/bin/pytest -p no:cacheprovider -m worker ; \
	else echo "Tier 3 skipped: Redis (127.0.0.1:6379) or PostgreSQL (127.0.0.1:5432) is not answering"; fi

# ruff and import-linter come from requirements-dev.txt (pinned), so a clean machine lints with the same versions as
# everyone else. lint-imports checks the contracts in .importlinter (the arrows in docs/ARCHITECTURE.md).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

# The quick benchmarks; the 100k-member import and pipeline benchmarks take longer (see docs/PERFORMANCE.md).
bench: venv
	$(PY) bench/bench_seed.py
	$(PY) bench/bench_api.py

# Import + nightly pipeline on 100k members / 1M orders / 5M events, SQLite and PostgreSQL (about 40 minutes the
# first time, which builds the history into /tmp/bench_pipeline_100k; later runs reuse it).
bench-pipeline: venv
	$(PY) bench/bench_pipeline.py

clean:
	rm -rf var/ test-artifacts/ $(VENV)

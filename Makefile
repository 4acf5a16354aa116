# The two commands of the README: `make run` and `make test`. Everything else is what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
# Every Python process of `make run` and `make test` (pytest workers, Celery workers, manage.py
# children) imports Django, DRF, pandas and scikit-learn: without bytecode caches each one compiles
# them again, ~9 s of CPU per process here. A caller's PYTHONDONTWRITEBYTECODE would force that.
unexport PYTHONDONTWRITEBYTECODE

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_WORKERS ?= 2

.PHONY: help install assets browser redis run test coverage-by-app coverage-gate audit lint format bench clean

help:
	@echo "make run    install, migrate, serve web + worker + beat; train the demo model and load demo data behind"
	@echo "make test   install (browser included), run the whole test suite, print the slowest tests and coverage per app"
	@echo "make lint   ruff (lint + format check) and mypy"
	@echo "make bench  run the benchmarks and write docs/benchmarks.md (make bench-full: full size)"

install: $(VENV)/.installed assets

# uv from PyPI with pip, then the locked environment on the selected CPython 3.13 (no downloads).
$(VENV)/.installed: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(PYTHON) -m uv sync --frozen --python "$$($(PYTHON) -c 'import sys; print(sys.executable)')"
	@touch $@

# Third-party CSS comes from the npm registry at build time; it is never committed.
assets: static/vendor/pico.min.css
static/vendor/pico.min.css: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor
	cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico.min.css

# Debian's Chromium for the Playwright browser tests (Playwright's own download cannot work here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: install
	$(PY) manage.py run_stack

# Debian's redis-server: the shared rate-limit bucket is tested (and benchmarked) on a real one.
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "Installing Debian's redis-server for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

test: install browser redis
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist worksteal --durations=10 --cov --cov-report=term:skip-covered --cov-report=xml
	@$(MAKE) --no-print-directory coverage-by-app

# Line coverage per app, from the last `make test`: `core` and the four apps each hold 90 %.
COVERED_APPS := core decisions risk records campaigns
COVERAGE_MIN := 90
coverage-by-app:
	@for app in $(COVERED_APPS); do \
		printf '%-10s %s %%\n' "$$app" "$$($(PY) -m coverage report --include="$$app/*" --format=total --precision=1)"; \
	done

# What .ci/run enforces: every app at COVERAGE_MIN or more (coverage exits 2 under it).
coverage-gate:
	@status=0; for app in $(COVERED_APPS); do \
		$(PY) -m coverage report --include="$$app/*" --format=total --precision=1 \
			--fail-under=$(COVERAGE_MIN) >/dev/null \
			|| { echo "Coverage of $$app is under $(COVERAGE_MIN) %"; status=1; }; \
	done; exit $$status

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Every benchmark at a size that finishes in minutes (`bench`), or at full size (`bench-full`);
# each writes bench/results/*.json and its section of docs/benchmarks.md. HTTP load uses
# Debian's wrk.
.PHONY: bench-full wrk
bench: install redis wrk
	$(PY) bench/run_all.py

bench-full: install redis wrk
	$(PY) bench/run_all.py --full

wrk:
	@command -v wrk >/dev/null 2>&1 || { \
		echo "Installing Debian's wrk for the HTTP benchmarks"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

clean:
	rm -rf $(VENV) node_modules static/vendor staticfiles .pytest_cache .mypy_cache coverage.xml .artifacts

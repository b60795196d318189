# Postmaster: `make run` to try it, `make test` to check it.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint bench install worker beat clean

run: $(STAMP)
	@scripts/run

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	@# Migrations first: one that would lock a busy table fails here (django-migration-linter).
	$(PY) -m pytest -q -p no:cacheprovider tests/core/test_migration_linter.py
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# On demand, never part of `make test`: BENCH_ARGS="--quick", "--json", "--recipients N".
bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m benchmarks $(BENCH_ARGS)

# A Celery worker, for when CELERY_BROKER_URL names a broker.
worker: $(STAMP)
	$(VENV)/bin/celery -A config worker --loglevel=INFO

# The periodic sweep (missed events, retries) and data retention; run exactly one.
beat: $(STAMP)
	$(VENV)/bin/celery -A config beat --loglevel=INFO

install: $(STAMP)

$(PY):
	@python=$$(scripts/find-python) || exit 1; \
	echo "Creating $(VENV) with $$python"; \
	"$$python" -m venv $(VENV)

$(STAMP): pyproject.toml requirements/dev.lock | $(PY)
	@scripts/install
	@touch $(STAMP)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

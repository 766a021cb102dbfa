# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test test-postgres lint check migrate bootstrap clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(PIP) install -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) scripts/serve.py

test: $(VENV)/.dev
	$(PY) -m pytest $(PYTEST_ARGS)

# The engine-dependent tests again on PostgreSQL (DATABASE_URL, or a throwaway cluster).
test-postgres: $(VENV)/.dev
	bash scripts/with_postgres.sh $(PY) -m pytest -m database $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

check: $(VENV)/.runtime
	$(PY) manage.py check

migrate: $(VENV)/.runtime
	$(PY) manage.py migrate --noinput

bootstrap: migrate
	$(PY) manage.py bootstrap

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

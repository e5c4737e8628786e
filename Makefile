SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATASET ?= small
SEED ?= 1
INTOAEC_DB_URL ?=

export TZ := UTC
export GX_ANALYTICS_ENABLED := false

.PHONY: install lock demo test sandbox airflow bench bench-scale lint clean

install: $(STAMP)

# Re-install only when the pins or the package metadata change. Bytecode is compiled at install
# time so that every Airflow task and test process imports fast, even where the environment
# forbids writing .pyc files (PYTHONDONTWRITEBYTECODE).
$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

lock:
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet uv; }
	$(BIN)/uv pip compile --python-version 3.11 requirements.in -o requirements.txt

# The demo's database: a SQLite file under var/ unless INTOAEC_DB_URL says otherwise.
demo: install
	@$(BIN)/python -m intoaec_xero.demo --dataset "$(DATASET)" --seed "$(SEED)" --db-url "$(INTOAEC_DB_URL)"

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

sandbox: install
	$(BIN)/python -m xero_sandbox --host 127.0.0.1 --port $(or $(PORT),5055) --dataset "$(DATASET)" --seed "$(SEED)"

AIRFLOW_UI_HOME := $(CURDIR)/.airflow/ui
airflow: install
	@mkdir -p $(AIRFLOW_UI_HOME)
	@PATH="$(CURDIR)/$(BIN):$$PATH" AIRFLOW_HOME=$(AIRFLOW_UI_HOME) \
	  AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins \
	  AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__PARALLELISM=4 AIRFLOW__CORE__TEST_CONNECTION=Enabled \
	  AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin INTOAEC_DATA_DIR=$(CURDIR)/var \
	  bash -c 'airflow db migrate >/dev/null && airflow pools set xero_api 5 "Xero API: concurrent calls per tenant" >/dev/null && \
	    echo "Airflow UI: http://127.0.0.1:8080 (user admin; password in $(AIRFLOW_UI_HOME)/simple_auth_manager_passwords.json.generated)" && \
	    exec airflow standalone'

# Benchmarks (not timed tests): each writes its own section of docs/benchmarks.md.
bench: install
	$(BIN)/python -m benchmarks.sync_large --dataset $(or $(BENCH_DATASET),large)
	$(BIN)/python -m benchmarks.quality_overhead --dataset large --backend sqlite --repeat 2
	$(BIN)/python -m benchmarks.journal_backfill

# 50 tenants under the real scheduler (CeleryExecutor on the local Redis; ~15 min).
bench-scale: install
	$(BIN)/python -m benchmarks.scale_50_tenants --faults --paced 5 --write-docs

lint: install
	$(BIN)/ruff check include dags plugins tests

clean:
	rm -rf var .airflow .pytest_cache

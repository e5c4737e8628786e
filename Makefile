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

.PHONY: install lock demo test test-fast sandbox airflow bench bench-scale lint clean

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
	$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 requirements.in -c requirements.txt \
	  -o requirements.hashes.txt

# The demo's database: a SQLite file under var/ unless INTOAEC_DB_URL says otherwise.
demo: install
	@$(BIN)/python -m intoaec_xero.demo --dataset "$(DATASET)" --seed "$(SEED)" --db-url "$(INTOAEC_DB_URL)" \
		$(if $(APP_WITHOUT_JOURNALS),--app-without-journals)

# The whole suite, in TEST_WORKERS processes (pytest-xdist): a test module (or the tests sharing
# one server) stays in one process, and the real-scheduler modules run one after the other,
# first (tests/conftest.py).
TEST_WORKERS ?= 3
XDIST = -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: install
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

# The inner loop, under 3 minutes: no real scheduler, no medium-sized data (markers in pyproject.toml).
test-fast: install
	$(BIN)/python -m pytest $(XDIST) -m "not scheduler and not slow" $(PYTEST_ARGS)

sandbox: install
	$(BIN)/python -m xero_sandbox --host 127.0.0.1 --port $(or $(PORT),5055) --dataset "$(DATASET)" --seed "$(SEED)"

AIRFLOW_UI_HOME := $(CURDIR)/.airflow/ui
# `make airflow PORT=8081`: the API server's port. Open the UI as localhost, the host Xero's redirect
# URI is registered with (Xero compares it character for character), and the page sends that back.
AIRFLOW_PORT = $(or $(PORT),8080)
airflow: install
	@mkdir -p $(AIRFLOW_UI_HOME)
	@PATH="$(CURDIR)/$(BIN):$$PATH" AIRFLOW_HOME=$(AIRFLOW_UI_HOME) \
	  AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins \
	  AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__PARALLELISM=4 AIRFLOW__CORE__TEST_CONNECTION=Enabled \
	  AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin INTOAEC_DATA_DIR=$(CURDIR)/var \
	  AIRFLOW__API__PORT=$(AIRFLOW_PORT) AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://localhost:$(AIRFLOW_PORT)/execution/ \
	  AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT=30 \
	  bash -c 'airflow db migrate >/dev/null && airflow pools set xero_api 5 "Xero API: concurrent calls per tenant" >/dev/null && \
	    echo "Airflow UI: http://localhost:$(AIRFLOW_PORT) (user admin; password in $(AIRFLOW_UI_HOME)/simple_auth_manager_passwords.json.generated)" && \
	    echo "Xero redirect URI (register it on the Xero app as is): http://localhost:$(AIRFLOW_PORT)/xero/callback" && \
	    exec airflow standalone'

# Benchmarks (not timed tests): each writes its own section of docs/benchmarks.md.
bench: install
	$(BIN)/python -m benchmarks.sync_large --dataset $(or $(BENCH_DATASET),large)
	$(BIN)/python -m benchmarks.sync_large --dataset $(or $(BENCH_DATASET),large) --app-without-journals --repeat 1
	$(BIN)/python -m benchmarks.quality_overhead --dataset large --backend sqlite --repeat 2
	$(BIN)/python -m benchmarks.journal_backfill

# 50 tenants under the real scheduler (CeleryExecutor on the local Redis; ~15 min).
bench-scale: install
	$(BIN)/python -m benchmarks.scale_50_tenants --faults --paced 5 --write-docs
	$(BIN)/python -m benchmarks.worker_loss --write-docs
	$(BIN)/python -m benchmarks.scale_firms --firms 500 --write-docs

# mypy's files and settings: [tool.mypy] in pyproject.toml.
lint: install
	$(BIN)/ruff check include dags plugins tests examples benchmarks
	$(BIN)/mypy

# Known vulnerabilities in the pinned dependencies: pip-audit (pinned, run by uv, so neither the
# venv nor requirements.txt grows) over requirements.txt. Exit status of the script: 0 clean,
# 1 vulnerable pins (listed), 3 NOT AUDITED (the vulnerability data is unreachable from here, or
# some pins were skipped); `make` reports it as "Error 1" / "Error 3".
.PHONY: audit
audit:
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet uv; }
	$(BIN)/python tools/audit.py --uv $(BIN)/uv requirements.txt

clean:
	rm -rf var .airflow .pytest_cache

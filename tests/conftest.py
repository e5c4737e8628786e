"""Shared test setup: an isolated Airflow home, UTC, and real databases created and dropped per test."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.harness.databases import (  # noqa: F401 - re-exported
    POSTGRES_ADMIN_URL,
    fresh_postgres,
    migrated_engine,
    migrated_postgres,
)

REPO = Path(__file__).resolve().parents[1]

# Before anything imports Airflow: its home, config and metadata DB belong to this test session.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="intoaec-airflow-"))
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ["TZ"] = "UTC"
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# The token store refuses to write without a key: the session and every process it starts share
# one (tests that start Airflow components with a key of their own drop this one).
os.environ.setdefault("INTOAEC_FERNET_KEY", Fernet.generate_key().decode())
# Data Docs and raw pages of tests that do not choose a directory go to this session's own, not
# the checkout's var/ (test processes running side by side would write the same files there).
os.environ.setdefault("INTOAEC_DATA_DIR", str(_AIRFLOW_HOME / "var"))


# The modules whose tests start the real Airflow components (marked ``scheduler``). Under
# pytest-xdist they share one worker, one after the other: two Airflow stacks at once on a 2-core
# machine only make each other miss their deadlines, while the other workers take everything else.
SCHEDULER_MODULES = ("tests/airflow/test_keepalive_scheduler.py", "tests/dags/test_xero_backfill_scheduler.py",
                     "tests/deploy/test_scheduler_smoke.py", "tests/plugins/test_first_hour.py")
# Modules that cannot carry the marker themselves whose tests take tens of seconds each: they run
# Airflow's CLI in subprocesses (a migrated metadata database per test) or its API server.
SLOW_MODULES = ("tests/airflow/test_cli.py", "tests/airflow/test_cli_stored_connections.py",
                "tests/airflow/test_connection_test_isolation.py", "tests/airflow/test_token_store_rules.py",
                "tests/plugins/")
# Where the tests that use the page tests' Airflow API server (a session fixture) live: one worker
# runs them all, so the server starts once.
SHARED_SERVER_PATHS = ("tests/plugins/", "tests/airflow/test_connection_test_isolation.py")
SHARED_SERVER_FIXTURES = ("airflow_ui", "airflow_ui_behind_tls")
# Longest first, so that under pytest-xdist the long tests do not start last.
RANK = {"scheduler": 0, "slow": 1}


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Markers for SCHEDULER_MODULES and SLOW_MODULES; the shared server's users must match
    SHARED_SERVER_PATHS; modules run longest first (by marker), each module's tests in their own order."""
    module_rank: dict[str, int] = {}
    for item in items:
        path = _module(item.nodeid)
        if path in SCHEDULER_MODULES:
            item.add_marker(pytest.mark.scheduler)
        elif item.get_closest_marker("scheduler"):
            raise pytest.UsageError(f"{path} starts the Airflow scheduler: list it in SCHEDULER_MODULES")
        if path.startswith(SLOW_MODULES):
            item.add_marker(pytest.mark.slow)
        if (any(f in getattr(item, "fixturenames", ()) for f in SHARED_SERVER_FIXTURES)
                and not path.startswith(SHARED_SERVER_PATHS)):
            raise pytest.UsageError(f"{path} uses the shared Airflow API server: list it in SHARED_SERVER_PATHS")
        rank = min((RANK[m.name] for m in item.iter_markers() if m.name in RANK), default=len(RANK))
        if path.startswith(SHARED_SERVER_PATHS):  # one long unit under xdist, like a slow module
            rank = min(rank, RANK["slow"])
        module_rank[path] = min(rank, module_rank.get(path, rank))
    order = {id(item): n for n, item in enumerate(items)}
    items.sort(key=lambda item: (module_rank[_module(item.nodeid)], order[id(item)]))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, with the scheduler modules as one unit and the shared server's users as one."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = _module(nodeid)
            if path in SCHEDULER_MODULES:
                return "scheduler"
            return "shared-server" if path.startswith(SHARED_SERVER_PATHS) else path

        def _reschedule(self, node) -> None:
            # The worker running the scheduler modules takes nothing else before their last test
            # (a worker holds back its last test until it is sent more work or told to stop).
            if list(self.assigned_work.get(node, {}).get("scheduler", {}).values()).count(False) > 1:
                return
            super()._reschedule(node)

    return Scheduling(config, log)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'intoaec.db'}"


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_postgres("intoaec_test") as (url,):
        yield url


@pytest.fixture
def migrated_postgres_url():
    """A fresh PostgreSQL database already holding IntoAEC's schema, dropped afterwards."""
    with migrated_postgres("intoaec_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test using this runs on both backends the product supports (PostgreSQL's already migrated;
    migrating again is a no-op, as it is for every process of the product)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'intoaec.db'}"
    return request.getfixturevalue("migrated_postgres_url")


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request, tmp_path):
    """Both backends, with no schema at all (for tests of the migrations themselves)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'intoaec.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(db_url):
    """IntoAEC's schema on each backend in turn (see ``db_url``)."""
    with migrated_engine(db_url) as engine:
        yield engine


@pytest.fixture
def sqlite_engine(sqlite_url):
    with migrated_engine(sqlite_url) as engine:
        yield engine


@pytest.fixture
def pg_engine(migrated_postgres_url):
    with migrated_engine(migrated_postgres_url) as engine:
        yield engine


@pytest.fixture(autouse=True)
def _fresh_token_masking():
    """Each test starts as a fresh process does: no token handed to the log maskers yet. A worker
    process runs hundreds of tests, and the per-process cap (tokens.MASKED_TOKENS_PER_PROCESS) would
    otherwise leave the later tests' tokens unmasked."""
    from intoaec_xero import tokens

    tokens._announced.clear()
    yield

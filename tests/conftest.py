"""Shared test setup: an isolated Airflow home, UTC, and real databases created and dropped per test."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

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

POSTGRES_ADMIN_URL = os.environ.get("INTOAEC_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'intoaec.db'}"


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"intoaec_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"PostgreSQL is required at {POSTGRES_ADMIN_URL} for this test: {error}")
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test using this runs on both backends the product supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'intoaec.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(db_url):
    from intoaec_xero import db

    engine = db.create_db_engine(db_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()

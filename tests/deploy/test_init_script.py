"""airflow-init's own Python, run against the local PostgreSQL as the init container runs it.

The init service creates the IntoAEC role and database only when they live on the same server
as Airflow's metadata database (the bundled PostgreSQL), idempotently, and leaves any other
server (IntoAEC's production PostgreSQL) to its DBA. Its heredocs are taken from
docker-compose.yaml itself, so the test cannot drift from what ships.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_ADMIN_URL
from tests.deploy.compose import ENV_EXAMPLE, read_env_file, resolved

pytestmark = pytest.mark.integration


def init_script() -> str:
    env = {**read_env_file(ENV_EXAMPLE), "FERNET_KEY": "x", "API_SECRET_KEY": "x", "JWT_SECRET": "x",
           "POSTGRES_PASSWORD": "x", "_AIRFLOW_WWW_USER_PASSWORD": "x",
           "INTOAEC_DB_URL": "postgresql+psycopg2://intoaec:x@postgres:5432/intoaec"}
    return resolved(env)["services"]["airflow-init"]["command"][-1]


def heredocs(script: str) -> list[str]:
    return re.findall(r"python - <<'PY'\n(.*?)\nPY\n", script, re.S)


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-"], input=code, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def intoaec_target():
    """A role and database name nobody else uses, removed afterwards."""
    name = f"intoaec_init_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
    admin.dispose()


def test_init_creates_the_intoaec_role_and_database_once_then_migrates_it(intoaec_target, tmp_path):
    create_db, _ = heredocs(init_script())
    admin = make_url(POSTGRES_ADMIN_URL)
    target = admin.set(username=intoaec_target, password="pw-1", database=intoaec_target)
    env = {"PATH": str(Path(sys.executable).parent), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
           admin.set(database="airflow").render_as_string(hide_password=False),
           "INTOAEC_DB_URL": target.render_as_string(hide_password=False)}

    first = run_python(create_db, env)
    assert first.returncode == 0, first.stderr
    assert f"role {intoaec_target}: created" in first.stdout and f"database {intoaec_target}: created" in first.stdout
    again = run_python(create_db, env)  # upgrades re-run init
    assert again.returncode == 0, again.stderr
    assert "password set" in again.stdout and "created" not in again.stdout

    engine = create_engine(POSTGRES_ADMIN_URL)
    with engine.connect() as conn:
        owner = conn.execute(text("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :d"),
                             {"d": intoaec_target}).scalar()
    engine.dispose()
    assert owner == intoaec_target

    # The init's next step, as written in the compose file, on the database it just made.
    migrate = subprocess.run([str(Path(sys.executable).with_name("intoaec-xero")), "--db-url",
                              env["INTOAEC_DB_URL"], "db", "upgrade"], capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert 'intoaec-xero --db-url "${INTOAEC_DB_URL}" db upgrade' in init_script()


def test_init_leaves_a_database_on_another_server_to_its_dba():
    create_db, _ = heredocs(init_script())
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow:x@postgres:5432/airflow",
           "INTOAEC_DB_URL": "postgresql+psycopg2://intoaec_sync:x@db.intoaec.internal:5432/intoaec"}
    done = run_python(create_db, env)
    assert done.returncode == 0, done.stderr
    assert "not on the bundled server" in done.stdout and "x@" not in done.stdout  # no password echoed


def test_init_refuses_the_placeholder_password_of_the_example():
    create_db, _ = heredocs(init_script())
    example = read_env_file(ENV_EXAMPLE)["INTOAEC_DB_URL"]
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow:x@postgres:5432/airflow",
           "INTOAEC_DB_URL": example}
    done = run_python(create_db, env)
    assert done.returncode != 0 and "placeholder password" in done.stderr


def test_init_writes_the_ui_password_from_the_env_file(tmp_path):
    _, write_password = heredocs(init_script())
    path = tmp_path / "passwords.json"
    done = run_python(write_password, {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(path),
                                       "_AIRFLOW_WWW_USER_USERNAME": "ops", "_AIRFLOW_WWW_USER_PASSWORD": "s3cret"})
    assert done.returncode == 0, done.stderr
    assert json.loads(path.read_text()) == {"ops": "s3cret"}
    assert path.stat().st_mode & 0o777 == 0o600

"""airflow-init's own Python, run against the local PostgreSQL as the init container runs it.

The init service connects as the PostgreSQL superuser and gives Airflow's metadata database
and (on the bundled server only) IntoAEC's database each a role of its own, neither of them a
superuser, idempotently; it hands a metadata database the superuser still owns over to
Airflow's role, and leaves any other server (IntoAEC's production PostgreSQL) to its DBA.
Airflow then migrates its database as that role. Its heredocs are taken from
docker-compose.yaml itself, so the test cannot drift from what ships.
"""

from __future__ import annotations

import json
import os
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

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # Airflow's db migrate

ADMIN = make_url(POSTGRES_ADMIN_URL)


def init_script() -> str:
    env = {**read_env_file(ENV_EXAMPLE), "FERNET_KEY": "x", "API_SECRET_KEY": "x", "JWT_SECRET": "x",
           "POSTGRES_PASSWORD": "x", "AIRFLOW_DB_PASSWORD": "x", "_AIRFLOW_WWW_USER_PASSWORD": "x",
           "FLOWER_BASIC_AUTH": "x:x", "INTOAEC_DB_URL": "postgresql+psycopg2://intoaec:x@postgres:5432/intoaec"}
    return resolved(env)["services"]["airflow-init"]["command"][-1]


def heredocs(script: str) -> list[str]:
    return re.findall(r"python - <<'PY'\n(.*?)\nPY\n", script, re.S)


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-"], input=code, env=env, capture_output=True, text=True, timeout=120)


def init_env(metadata_role: str, metadata_db: str, intoaec_url: str) -> dict[str, str]:
    """airflow-init's environment, pointed at the local server (whose superuser needs no password)."""
    metadata = ADMIN.set(username=metadata_role, password="meta-pw", database=metadata_db)
    return {"PATH": str(Path(sys.executable).parent), "POSTGRES_USER": ADMIN.username,
            "POSTGRES_PASSWORD": ADMIN.password or "",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.render_as_string(hide_password=False),
            "INTOAEC_DB_URL": intoaec_url}


def query(sql: str, database: str = "postgres", **params):
    engine = create_engine(ADMIN.set(database=database))
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).all()
    finally:
        engine.dispose()


@pytest.fixture
def scratch():
    """Role and database names nobody else uses; every database, then every role, dropped afterwards."""
    names: list[str] = []

    def make(prefix: str) -> str:
        names.append(f"{prefix}_{uuid.uuid4().hex[:8]}")
        return names[-1]

    yield make
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        for name in names:
            conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
    admin.dispose()


def owner_of(database: str) -> str:
    return query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :d", d=database)[0][0]


def role_flags(role: str) -> tuple:
    return tuple(query("SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles WHERE rolname = :r",
                       r=role)[0])


def test_init_creates_both_roles_and_databases_once_then_migrates_intoaec(scratch):
    create_db, _ = heredocs(init_script())
    meta, intoaec = scratch("airflow_init"), scratch("intoaec_init")
    target = ADMIN.set(username=intoaec, password="pw-1", database=intoaec)
    env = init_env(meta, meta, target.render_as_string(hide_password=False))

    first = run_python(create_db, env)
    assert first.returncode == 0, first.stderr
    for name in (meta, intoaec):
        assert f"role {name}: created" in first.stdout and f"database {name}: created, owned by {name}" in first.stdout
        assert owner_of(name) == name
        assert role_flags(name) == (False, False, False, True)  # logs in; no superuser, CREATEDB, CREATEROLE
    again = run_python(create_db, env)  # upgrades re-run init
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("password set") == 2 and "created" not in again.stdout

    # The init's next step, as written in the compose file, on the database it just made.
    migrate = subprocess.run([str(Path(sys.executable).with_name("intoaec-xero")), "--db-url",
                              env["INTOAEC_DB_URL"], "db", "upgrade"], capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert 'intoaec-xero --db-url "${INTOAEC_DB_URL}" db upgrade' in init_script()


def test_airflow_migrates_its_metadata_database_as_its_own_role(scratch, tmp_path):
    """`airflow db migrate` needs no superuser: the role init made owns everything it creates."""
    create_db, _ = heredocs(init_script())
    meta = scratch("airflow_migrate")
    env = init_env(meta, meta, "sqlite:////nonexistent/intoaec.db")
    done = run_python(create_db, env)
    assert done.returncode == 0, done.stderr

    airflow_env = {**{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
                   "AIRFLOW_HOME": str(tmp_path),
                   "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
                   "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    migrate = subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], env=airflow_env,
                             capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    assert "airflow db migrate" in init_script()
    owners = {row[0] for row in query("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'", meta)}
    assert owners == {meta} and role_flags(meta)[0] is False


def test_init_hands_a_metadata_database_the_superuser_owns_over_to_airflows_role(scratch):
    """The bundled server's superuser used to own Airflow's database; Airflow's role takes it over."""
    create_db, _ = heredocs(init_script())
    meta = scratch("airflow_legacy")
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{meta}"'))  # owned by the superuser
        # A role by that name that is a superuser is brought back in line too.
        conn.execute(text(f'CREATE ROLE "{meta}" LOGIN SUPERUSER'))
    admin.dispose()
    legacy = create_engine(ADMIN.set(database=meta), isolation_level="AUTOCOMMIT")
    with legacy.connect() as conn:
        for statement in ("CREATE TABLE dag (id serial PRIMARY KEY, name text)",
                          "CREATE VIEW dag_names AS SELECT name FROM dag",
                          "CREATE MATERIALIZED VIEW dag_count AS SELECT count(*) FROM dag",
                          "CREATE SEQUENCE free_standing",
                          "CREATE TYPE state AS ENUM ('queued', 'running')",
                          "CREATE DOMAIN positive AS integer CHECK (VALUE > 0)",
                          "CREATE SCHEMA extra", "CREATE TABLE extra.notes (id bigint GENERATED ALWAYS AS IDENTITY)"):
            conn.execute(text(statement))
    legacy.dispose()

    done = run_python(create_db, init_env(meta, meta, "sqlite:////nonexistent/intoaec.db"))
    assert done.returncode == 0, done.stderr
    assert f"role {meta}: superuser rights removed" in done.stdout
    assert f"database {meta}: handed over from {ADMIN.username} to {meta}" in done.stdout
    assert owner_of(meta) == meta and role_flags(meta) == (False, False, False, True)
    superuser_owned = query(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname IN ('public', 'extra') AND pg_get_userbyid(c.relowner) <> :r"
        " UNION ALL SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
        " WHERE n.nspname IN ('public', 'extra') AND pg_get_userbyid(t.typowner) <> :r"
        " UNION ALL SELECT nspname FROM pg_namespace WHERE nspname = 'extra' AND pg_get_userbyid(nspowner) <> :r",
        meta, r=meta)
    assert superuser_owned == []

    # A migration's kind of change, as the role: it owns what it alters.
    as_role = create_engine(ADMIN.set(username=meta, password="meta-pw", database=meta))
    with as_role.begin() as conn:
        conn.execute(text("ALTER TABLE dag ADD COLUMN paused boolean"))
        conn.execute(text("ALTER TYPE state ADD VALUE 'success'"))
        conn.execute(text("INSERT INTO dag (name) VALUES ('x')"))
        conn.execute(text("ALTER TABLE extra.notes ADD COLUMN body text"))
    as_role.dispose()
    assert run_python(create_db, init_env(meta, meta, "sqlite:////nonexistent/intoaec.db")).returncode == 0


def test_init_refuses_the_superuser_as_airflows_role():
    create_db, _ = heredocs(init_script())
    env = {"POSTGRES_USER": "airflow", "POSTGRES_PASSWORD": "x",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow:x@postgres:5432/airflow",
           "INTOAEC_DB_URL": "postgresql+psycopg2://intoaec:x@postgres:5432/intoaec"}
    done = run_python(create_db, env)
    assert done.returncode != 0 and "AIRFLOW_DB_USER is the PostgreSQL superuser" in done.stderr


@pytest.mark.parametrize("user", ["postgres", "airflow"])
def test_init_refuses_a_shared_role_for_intoaec_on_the_bundled_server(user):
    create_db, _ = heredocs(init_script())
    env = {"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "x",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow:x@postgres:5432/airflow",
           "INTOAEC_DB_URL": f"postgresql+psycopg2://{user}:x@postgres:5432/intoaec"}
    done = run_python(create_db, env)
    assert done.returncode != 0 and "IntoAEC needs a role of its own" in done.stderr


def test_init_leaves_a_database_on_another_server_to_its_dba(scratch):
    create_db, _ = heredocs(init_script())
    meta = scratch("airflow_init")
    env = init_env(meta, meta, "postgresql+psycopg2://intoaec_sync:x@db.intoaec.internal:5432/intoaec")
    done = run_python(create_db, env)
    assert done.returncode == 0, done.stderr
    assert "not on the bundled server" in done.stdout and "x@" not in done.stdout  # no password echoed
    assert f"role {meta}: created" in done.stdout and "intoaec_sync" not in {r[0] for r in query(
        "SELECT rolname FROM pg_roles")}


def test_init_refuses_the_placeholder_password_of_the_example():
    create_db, _ = heredocs(init_script())
    example = read_env_file(ENV_EXAMPLE)["INTOAEC_DB_URL"]
    env = {"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "x",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow:x@postgres:5432/airflow",
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

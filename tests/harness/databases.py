"""Fresh PostgreSQL databases (created for one user, dropped with FORCE after) and migrated engines."""

from __future__ import annotations

import atexit
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

POSTGRES_ADMIN_URL = os.environ.get("INTOAEC_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_postgres(*prefixes: str) -> Iterator[list[str]]:
    """One new database per prefix on the local PostgreSQL; their URLs, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = [f"{prefix}_{uuid.uuid4().hex[:10]}" for prefix in prefixes]
    created: list[str] = []
    try:
        try:
            with admin.connect() as conn:
                for name in names:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                    created.append(name)
        except Exception as error:
            raise RuntimeError(f"PostgreSQL is required at {POSTGRES_ADMIN_URL} for this test: {error}") from error
        yield [make_url(POSTGRES_ADMIN_URL).set(database=n).render_as_string(hide_password=False) for n in names]
    finally:
        with admin.connect() as conn:
            for name in created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# One migrated database per test process, copied by PostgreSQL for each test that wants IntoAEC's
# schema: a copy costs a third of running the migrations again.
_TEMPLATE_PREFIX = "intoaec_template_"
_template: str | None = None


def _url_of(name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _migrated_template(admin) -> str:
    """This process's template database, migrated to the latest revision on first use."""
    global _template
    if _template is not None:
        return _template
    from intoaec_xero import db
    from sqlalchemy import text

    with admin.connect() as conn:
        # Templates of test processes that died without dropping theirs.
        for (name,) in conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                                    {"p": _TEMPLATE_PREFIX + "%"}):
            match = re.fullmatch(_TEMPLATE_PREFIX + r"(\d+)_\w+", name)
            if match and not _alive(int(match.group(1))):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        name = f"{_TEMPLATE_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = db.create_db_engine(_url_of(name))
    try:
        db.upgrade(engine)
    finally:
        engine.dispose()
    atexit.register(_drop, name)
    _template = name
    return name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _drop(name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:  # noqa: BLE001 - the server may already be gone at exit; the next session drops it
        pass
    finally:
        admin.dispose()


# Databases a finished test handed back, emptied, for the next one in this process: creating and
# dropping a database makes PostgreSQL write and sync whole files, which is most of a small
# test's time once several test processes do it at once.
_spare: list[str] = []


@contextmanager
def migrated_postgres(prefix: str) -> Iterator[str]:
    """A database at IntoAEC's latest migration with no rows, for one test (a copy of this process's
    template, or one an earlier test used and that was emptied since)."""
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        if _spare:
            name = _spare.pop()
        else:
            name = f"{prefix}_{uuid.uuid4().hex[:10]}"
            try:
                template = _migrated_template(admin)
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
            except Exception as error:
                raise RuntimeError(f"PostgreSQL is required at {POSTGRES_ADMIN_URL} for this test: {error}") from error
            atexit.register(_drop, name)
        yield _url_of(name)
        try:
            _spare.append(_emptied(admin, name))
        except Exception:  # noqa: BLE001 - not reusable (a test changed it beyond rows): a new one next time
            _drop(name)
    finally:
        admin.dispose()


def _emptied(admin, name: str) -> str:
    """``name`` with every row of IntoAEC's tables gone and its sequences reset; whatever a test left
    connected to it (a killed process's session, a pool) is disconnected first."""
    from intoaec_xero.schema import metadata
    from sqlalchemy import create_engine, text

    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
    engine = create_engine(_url_of(name))
    try:
        with engine.begin() as conn:
            # Rows, not files: DELETE on a test's few rows is quicker than TRUNCATE's new files, and
            # nothing here needs to survive a crash of the server.
            conn.execute(text("SET LOCAL synchronous_commit TO off"))
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
            others = set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
            others -= {*metadata.tables, "alembic_version"}
            for table_name in others:  # a table the schema does not declare: emptied all the same
                conn.execute(text(f'DELETE FROM "{table_name}"'))
            conn.execute(text("SELECT setval(format('%I.%I', schemaname, sequencename), 1, false) "
                              "FROM pg_sequences WHERE schemaname = 'public'"))
    finally:
        engine.dispose()
    return name


@contextmanager
def migrated_engine(url: str):
    """An engine on ``url`` with IntoAEC's schema at the latest migration."""
    from intoaec_xero import db

    engine = db.create_db_engine(url)
    try:
        db.upgrade(engine)
        yield engine
    finally:
        engine.dispose()


class PrivatePostgres:
    """A PostgreSQL server of this test's own, so it can be restarted without touching anyone else's."""

    def __init__(self, data_dir: str, port: int, bin_dir: str, run_as: list[str]):
        self.data_dir, self.port, self.bin_dir, self.run_as = data_dir, port, bin_dir, run_as
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"

    def pg_ctl(self, *args: str, timeout: float = 60) -> None:
        import subprocess

        done = subprocess.run([*self.run_as, f"{self.bin_dir}/pg_ctl", "-D", self.data_dir, "-w", *args],
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {done.stdout}{done.stderr}")

    def restart(self) -> None:
        """What an operator's ``systemctl restart postgresql`` does: every session ends (fast shutdown)."""
        self.pg_ctl("restart", "-m", "fast", "-l", f"{self.data_dir}/server.log")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """initdb and start a throwaway cluster on a free port (as the postgres user when run as root)."""
    import glob
    import shutil
    import subprocess
    import tempfile

    from xero_sandbox.testing import free_port

    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or ([shutil.which("initdb")] if shutil.which(
        "initdb") else [])
    if not bins:
        raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl) are required for this test; "
                           "install the postgresql package.")
    bin_dir = os.path.dirname(bins[-1])
    # Not under pytest's tmp_path: its parents are private to this user, and the server may run as another.
    tmp_dir = tempfile.mkdtemp(prefix="intoaec-pg-")
    data_dir = os.path.join(tmp_dir, "pgdata")
    run_as: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        import pwd

        user = pwd.getpwnam("postgres")
        os.chown(tmp_dir, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    server = PrivatePostgres(data_dir, free_port(), bin_dir, run_as)
    started = False
    try:
        done = subprocess.run([*run_as, f"{bin_dir}/initdb", "-D", data_dir, "-U", "postgres", "--auth=trust",
                               "--no-sync", "-E", "UTF8"], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
        server.pg_ctl("start", "-l", f"{data_dir}/server.log",
                      "-o", f"-p {server.port} -k {data_dir} -c listen_addresses=127.0.0.1 -c fsync=off")
        started = True
        yield server
    finally:
        if started:
            try:
                server.pg_ctl("stop", "-m", "immediate")
            except RuntimeError:
                pass
        shutil.rmtree(tmp_dir, ignore_errors=True)

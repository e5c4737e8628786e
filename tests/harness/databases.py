"""Fresh PostgreSQL databases (created for one user, dropped with FORCE after) and migrated engines."""

from __future__ import annotations

import os
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

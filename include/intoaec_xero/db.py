"""The IntoAEC database: engines, schema upgrades and idempotent upserts.

Any SQLAlchemy URL works; SQLite is the embedded default and PostgreSQL production. Both get
the same schema and the same upsert (``INSERT … ON CONFLICT DO UPDATE``, which leaves a row
whose values did not change untouched).
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

import orjson
from sqlalchemy import (
    JSON,
    Engine,
    Table,
    and_,
    cast,
    create_engine,
    event,
    exc,
    func,
    inspect,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.sql.elements import ColumnElement

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

from intoaec_xero.errors import ConfigurationError, TargetDatabaseError

log = logging.getLogger(__name__)


class _AlembicPreamble(logging.Filter):
    """Drops what Alembic logs on every check ("Context impl …", "Will assume …", "setup plugin …"):
    every task checks the schema, and these would open every task log. Migrations that run are logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Context impl", "Will assume", "setup plugin"))


for _name in ("alembic.runtime.migration", "alembic.runtime.plugins"):
    logging.getLogger(_name).addFilter(_AlembicPreamble())

# SQLite stores NUMERIC as REAL; SQLAlchemy rounds it back to Decimal at the column's scale,
# which is exact for money of this size. Sums that must be exact go through money_sum().
warnings.filterwarnings("ignore", message=".*does \\*not\\* support Decimal objects natively.*")

UPSERT_BATCH = 1000


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: datetime | None) -> datetime | None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for timezone-aware columns; they were written as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def normalise_url(url: str) -> str:
    """Accept the URLs people paste: ``postgres://`` and plain ``postgresql://`` (psycopg2)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    return url


def create_db_engine(url: str) -> Engine:
    """An engine for the IntoAEC database, or one clear sentence saying what is wrong."""
    if not url:
        raise ConfigurationError(
            "No IntoAEC database URL: set the Airflow connection 'intoaec_db' or INTOAEC_DB_URL."
        )
    try:
        parsed = make_url(normalise_url(url))
    except exc.ArgumentError:
        raise ConfigurationError(
            f"The IntoAEC database URL {url!r} is not a SQLAlchemy URL "
            "(expected e.g. sqlite:///var/intoaec.db or postgresql://user@host:5432/dbname)."
        ) from None
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Several Airflow tasks share one SQLite file: wait for the writer instead of failing.
        kwargs["connect_args"] = {"timeout": 60}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (exc.NoSuchModuleError, ModuleNotFoundError) as error:
        raise ConfigurationError(f"No database driver for {parsed.drivername!r}: {error}.") from None
    if parsed.get_backend_name() == "sqlite":
        _sqlite_pragmas(engine)
    return engine


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every sqlite test
        # WAL lets readers (the UI, `status`) see the last commit while a load writes.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover
        # pysqlite's own transaction handling is off (isolation_level=None); begin explicitly
        # so each transaction is atomic, and as IMMEDIATE so two writers queue instead of
        # deadlocking on a lock upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def describe(engine: Engine) -> str:
    """The URL with its password hidden, for logs."""
    return engine.url.render_as_string(hide_password=True)


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except exc.OperationalError as error:
        raise TargetDatabaseError(
            f"Cannot connect to the IntoAEC database at {describe(engine)}: "
            f"{_first_line(error.orig)}. Check the URL in 'intoaec_db' / INTOAEC_DB_URL."
        ) from None


MIGRATIONS = Path(__file__).with_name("migrations")


def _alembic_config(connection: Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> list[str]:
    """Bring the schema to the newest Alembic revision; returns the tables it created.

    Safe to run on every DAG run and from several workers at once: the migration holds the
    database's write lock (an advisory lock on PostgreSQL) for its transaction.
    """
    from alembic import command

    check_connection(engine)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242042)")
        existing = set(inspect(conn).get_table_names())
        command.upgrade(_alembic_config(conn), "head")
        created = sorted(set(inspect(conn).get_table_names()) - existing - {"alembic_version"})
    if created:
        log.info("Created tables in %s: %s", describe(engine), ", ".join(created))
    return created


T = TypeVar("T")

# SQLSTATE classes and codes that say "try the same transaction again": connection exceptions
# (08…), serialization failure and deadlock (40001, 40P01), and the server shutting down or
# restarting (57P01-57P03).
_TRANSIENT_SQLSTATES = ("08", "40001", "40P01", "57P01", "57P02", "57P03")
TRANSIENT_RETRY_DELAYS = (0.5, 2.0, 5.0)


def is_transient(error: BaseException) -> bool:
    """A database error that a fresh try of the same transaction may not meet again."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    code = getattr(error.orig, "pgcode", None) or getattr(error.orig, "sqlstate", None) or ""
    if code and code.startswith(_TRANSIENT_SQLSTATES):
        return True
    text_ = str(error.orig).lower()
    return isinstance(error, OperationalError) and any(sign in text_ for sign in (
        "server closed the connection", "connection refused", "the database system is starting up",
        "the database system is shutting down", "terminating connection", "database is locked"))


def retry_transient(work: Callable[[], T], what: str, *, delays: tuple[float, ...] | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> T:
    """``work`` (one whole transaction), tried again after a transient database error, a few times."""
    waits = TRANSIENT_RETRY_DELAYS if delays is None else delays
    for attempt, delay in enumerate((*waits, None), start=1):
        try:
            return work()
        except DBAPIError as error:
            if delay is None or not is_transient(error):
                raise
            log.warning("%s: the database failed (%s); its transaction was rolled back, trying it again from the "
                        "start in %g s (try %d of %d).", what, str(error.orig).strip().splitlines()[0][:200],
                        delay, attempt + 1, len(waits) + 1)
            sleep(delay)
    raise AssertionError("unreachable")


def schema_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@dataclass
class UpsertChanges:
    """What upserts did to a table: rows whose key was new, and existing rows whose values changed.

    A row written again with the values it already has counts as neither.
    """

    inserted: int = 0
    updated: int = 0

    def add(self, offered: int, existing: int, written: int) -> None:
        """One statement: ``offered`` distinct keys, ``existing`` of them already there, ``written`` its rowcount."""
        new = offered - existing
        self.inserted += new
        self.updated += max(written - new, 0)


# Without it SQLAlchemy may drop an INSERT's rowcount (psycopg 3 reports -1).
_ROWCOUNT = {"preserve_rowcount": True}


def upsert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], *,
           changes: UpsertChanges | None = None, keys: Sequence[str] | None = None,
           where: ColumnElement[bool] | None = None) -> int:
    """Insert or update by primary key; a re-run with the same rows changes nothing.

    ``keys`` names the columns of a unique index to match on instead, for tables whose primary
    key is a surrogate (``dq_results``). Returns the number of distinct keys written. With
    ``changes``, also counts what was inserted and what updated, at the price of one extra
    query per batch. With ``where``, an existing row is updated only if it holds for the row as
    stored; decided by the database inside the statement, so a concurrent writer cannot slip
    between a check and the write.
    """
    if not rows:
        return 0
    dialect = conn.dialect.name
    keys = list(keys) if keys else [c.name for c in table.primary_key.columns]
    # A key twice in one statement is an error on PostgreSQL; the last version wins, as Xero's would.
    by_key = dict(zip(map(itemgetter(*keys), rows), rows, strict=True))
    if len(by_key) != len(rows):
        rows = list(by_key.values())
    columns = list(rows[0].keys())
    if dialect == "postgresql" and len(rows) >= COPY_THRESHOLD and where is None:
        _copy_upsert(conn, table, keys, columns, rows, changes)
        return len(rows)
    statement: PostgresInsert | SqliteInsert
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgres_insert
        statement = postgres_insert(table)
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        statement = sqlite_insert(table)
    else:  # pragma: no cover - guarded by the supported-backends docs
        raise ConfigurationError(f"Unsupported IntoAEC database backend {dialect!r}.")
    updates = {c: statement.excluded[c] for c in columns if c not in keys}
    differs = or_(*(_changed(table.c[c], statement.excluded[c], dialect) for c in updates))
    statement = (
        statement.on_conflict_do_update(
            index_elements=keys, set_=updates, where=differs if where is None else and_(where, differs))
        if updates
        else statement.on_conflict_do_nothing(index_elements=keys)
    )
    for start in range(0, len(rows), UPSERT_BATCH):
        batch = list(rows[start : start + UPSERT_BATCH])
        if changes is None:
            conn.execute(statement, batch)
            continue
        existing = _count_existing(conn, table, keys, batch)
        written = conn.execute(statement, batch, execution_options=_ROWCOUNT).rowcount
        changes.add(len(batch), existing, written)
    return len(rows)


def _changed(stored, incoming, dialect: str):
    """Null-safe "differs" (``IS NOT`` on SQLite); PostgreSQL's json has no equality, jsonb has.

    JSON's SQL NULL and JSON ``null`` read back alike (None); COPY writes the one, INSERT the other.
    """
    if not isinstance(stored.type, JSON):
        return stored.is_distinct_from(incoming)
    null: ColumnElement[Any]
    if dialect == "postgresql":
        stored, incoming, null = cast(stored, JSONB), cast(incoming, JSONB), literal_column("'null'::jsonb")
    else:
        null = literal_column("'null'")
    return func.coalesce(stored, null).is_distinct_from(func.coalesce(incoming, null))


def _count_existing(conn: Connection, table: Table, keys: list[str], rows: Sequence[Mapping[str, Any]]) -> int:
    """How many of these keys the table holds already; grouped by key prefix (the tenant) so the index serves it."""
    *prefix, last = [table.c[k] for k in keys]
    groups: dict[tuple, list[Any]] = {}
    for row in rows:
        groups.setdefault(tuple(row[c.name] for c in prefix), []).append(row[last.name])
    clauses = [and_(*(c == v for c, v in zip(prefix, values, strict=True)), last.in_(ids))
               for values, ids in groups.items()]
    return int(conn.execute(select(func.count()).select_from(table).where(or_(*clauses))).scalar_one())


# Below this many rows a plain INSERT … ON CONFLICT is as quick as staging through COPY.
COPY_THRESHOLD = 200


def _copy_upsert(conn: Connection, table: Table, keys: list[str], columns: list[str],
                 rows: Sequence[Mapping[str, Any]], changes: UpsertChanges | None = None) -> None:
    """PostgreSQL bulk upsert: COPY into a session temp table, then one INSERT … ON CONFLICT.

    COPY moves rows an order of magnitude faster than parameterised INSERTs; the final
    statement keeps the same upsert semantics, inside the caller's transaction. When the keys
    look new (a first sync, new history), the rows are first copied straight in, which halves
    the database's work; if one of them was there after all, that COPY rolls back to its
    savepoint and the upsert runs.
    """
    if _look_new(conn, table, keys, rows):
        try:
            with conn.begin_nested():  # a writer that got there first turns this into the upsert below
                _copy_in(conn, table.name, columns, rows)
        except (exc.IntegrityError, conn.dialect.loaded_dbapi.IntegrityError):  # COPY raises the driver's own
            pass
        else:
            if changes is not None:
                changes.add(len(rows), 0, len(rows))
            return
    stage = f"stage_{table.name}"
    column_list = ", ".join(f'"{c}"' for c in columns)
    updated = [c for c in columns if c not in keys]
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in updated)
    differs = " OR ".join(_changed_sql(table, c) for c in updated)
    conflict = f"DO UPDATE SET {updates} WHERE {differs}" if updates else "DO NOTHING"
    conn.exec_driver_sql(
        f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" (LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS'
    )
    conn.exec_driver_sql(f'TRUNCATE "{stage}"')
    _copy_in(conn, stage, columns, rows)
    key_list = ", ".join(f'"{k}"' for k in keys)
    existing = 0
    if changes is not None:
        existing = conn.exec_driver_sql(
            f'SELECT count(*) FROM "{stage}" JOIN "{table.name}" USING ({key_list})'
        ).scalar_one()
    result = conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({column_list}) SELECT {column_list} FROM "{stage}" '
        f"ON CONFLICT ({key_list}) {conflict}",
        execution_options=_ROWCOUNT,
    )
    if changes is not None:
        changes.add(len(rows), int(existing), result.rowcount)


def _look_new(conn: Connection, table: Table, keys: list[str], rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the rows look new to the table: none of a few sampled (tenant, id) keys is there.

    Checking every key costs the database an index probe per row, about as much as the upsert
    saves; a sample is enough to tell a first load from a re-read, and a wrong guess only
    costs a rolled-back COPY.
    """
    if len(keys) != 2:
        return False
    prefix, last = keys
    tenant = rows[0][prefix]
    step = max(1, len(rows) // PROBE_KEYS)
    sample = [row[last] for row in rows[::step]] + [rows[-1][last]]
    if any(row[prefix] != tenant for row in rows[::step]):
        return False
    found = conn.exec_driver_sql(
        f'SELECT EXISTS (SELECT 1 FROM "{table.name}" WHERE "{prefix}" = %(tenant)s AND "{last}" = ANY(%(ids)s))',
        {"tenant": tenant, "ids": sample},
    ).scalar_one()
    return not found


PROBE_KEYS = 16


def _copy_in(conn: Connection, table_name: str, columns: list[str], rows: Sequence[Mapping[str, Any]]) -> None:
    column_list = ", ".join(f'"{c}"' for c in columns)
    copy_sql = f'COPY "{table_name}" ({column_list}) FROM STDIN'
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is None:  # pragma: no cover - only a detached or invalidated connection has none
        raise RuntimeError("COPY needs a live database connection.")
    cursor = dbapi_connection.cursor()
    try:
        if hasattr(cursor, "copy_expert"):  # psycopg2
            cursor.copy_expert(copy_sql, _CopyReader(_copy_chunks(rows, columns)), size=1 << 20)
        else:  # psycopg 3
            with cursor.copy(copy_sql) as copy:
                for chunk in _copy_chunks(rows, columns):
                    copy.write(chunk)
    finally:
        cursor.close()


def _changed_sql(table: Table, column: str) -> str:
    """:func:`_changed` for the COPY path's statement."""
    stored, incoming = f'"{table.name}"."{column}"', f'EXCLUDED."{column}"'
    if isinstance(table.c[column].type, JSON):
        stored, incoming = (f"COALESCE({v}::jsonb, 'null'::jsonb)" for v in (stored, incoming))
    return f"{stored} IS DISTINCT FROM {incoming}"


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    # Most text has nothing to escape; testing first is cheaper than translating every value.
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _copy_json(value: Any) -> str:
    try:
        text = orjson.dumps(value, default=str).decode("utf-8")
    except TypeError:  # beyond what orjson writes (e.g. a 65-bit integer)
        text = json.dumps(value, default=str)
    return copy_text(text)


_COPY_FORMATTERS: dict[type, Any] = {
    str: copy_text,
    int: str,
    Decimal: str,
    bool: lambda v: "t" if v else "f",
    date: date.isoformat,
    datetime: datetime.isoformat,
    dict: _copy_json,
    list: _copy_json,
    bytes: lambda v: "\\\\x" + v.hex(),
}


# Rows formatted per slice: the whole COPY text of a large chunk never sits in memory at once.
COPY_SLICE_ROWS = 5000
_NULL = "\\N"


def _copy_chunks(rows: Sequence[Mapping[str, Any]], columns: list[str]) -> Iterator[bytes]:
    """The rows in COPY's text format, a slice at a time, formatted a column at a time.

    One formatter per column and slice instead of one type dispatch per value: the values of a
    column are nearly always of one type, and a list comprehension per column is several times
    quicker than a function call per value.
    """
    for start in range(0, len(rows), COPY_SLICE_ROWS):
        part = rows[start : start + COPY_SLICE_ROWS]
        formatted = [_copy_column([row[c] for row in part]) for c in columns]
        yield ("\n".join(map("\t".join, zip(*formatted, strict=True))) + "\n").encode("utf-8")


def _copy_column(values: list[Any]) -> list[str]:
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if not kinds:
        return [_NULL] * len(values)
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind is str:
            text = "\x00".join(filter(None, values))
            if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
                return [_NULL if v is None else v.translate(_COPY_ESCAPES) for v in values]
            return [_NULL if v is None else v for v in values]
        if kind is int or kind is Decimal:
            return [_NULL if v is None else str(v) for v in values]
        if kind is date or kind is datetime:
            return [_NULL if v is None else v.isoformat() for v in values]
    return [_copy_value(v) for v in values]


class _CopyReader:
    """A file-like view of the chunks for psycopg2's ``copy_expert`` (it sends what read returns)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks

    def read(self, size: int = -1) -> bytes:
        return next(self._chunks, b"")

    readline = read


def _copy_value(value: Any) -> str:
    """One value in COPY's text format (\\N is NULL)."""
    if value is None:
        return "\\N"
    formatter = _COPY_FORMATTERS.get(type(value))
    if formatter is None:  # subclasses (e.g. pendulum datetimes): find the base type once
        formatter = next((f for t, f in _COPY_FORMATTERS.items() if t is not bool and isinstance(value, t)), str)
        if isinstance(value, bool):
            formatter = _COPY_FORMATTERS[bool]
    return formatter(value)


def money_sum(column) -> Any:
    """An exact SQL sum of a 2-place money column on both backends.

    PostgreSQL sums NUMERIC exactly. SQLite holds REAL, so sum whole cents as integers.
    Returns an expression whose value is cents on SQLite; use :func:`cents_to_decimal`.
    """
    return func.sum(func.round(column * 100))


def cents_to_decimal(value: Any) -> Decimal:
    """The value of a :func:`money_sum` as an exact 2-place Decimal."""
    if value is None:
        return Decimal("0.00")
    return (Decimal(str(value)) / 100).quantize(Decimal("0.01"))


def count_rows(conn: Connection, table: Table, where: Iterable | None = None) -> int:
    query = select(func.count()).select_from(table)
    for clause in where or ():
        query = query.where(clause)
    return int(conn.execute(query).scalar_one())


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error else "unknown error"

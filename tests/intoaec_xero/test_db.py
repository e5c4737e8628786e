"""Schema and upserts behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from intoaec_xero import db
from intoaec_xero.errors import ConfigurationError, TargetDatabaseError
from intoaec_xero.schema import credit_notes, invoices, metadata
from sqlalchemy import func, select


def test_migrations_produce_exactly_the_declared_schema(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []
    assert db.schema_revision(engine) is not None


def test_upgrade_is_idempotent(engine):
    assert db.upgrade(engine) == []


def _invoice(total: str, status: str = "AUTHORISED"):
    return {"tenant_id": "t1", "invoice_id": "i1", "status": status, "total": Decimal(total),
            "date": date(2024, 2, 29), "updated_at": datetime(2024, 3, 1, 12, tzinfo=UTC)}


def test_upsert_inserts_then_updates_without_duplicates(engine):
    with engine.begin() as conn:
        db.upsert(conn, invoices, [_invoice("10.10")])
    with engine.begin() as conn:
        db.upsert(conn, invoices, [_invoice("10.10", "VOIDED"), _invoice("12.34", "PAID")])  # last one wins
    with engine.connect() as conn:
        rows = conn.execute(select(invoices.c.status, invoices.c.total, invoices.c.date)).all()
    assert rows == [("PAID", Decimal("12.34"), date(2024, 2, 29))]


def test_money_sums_are_exact_to_the_cent(engine):
    rows = [dict(_invoice("0.10"), invoice_id=f"i{n}") for n in range(1000)]
    rows += [dict(_invoice("1234567.89"), invoice_id=f"j{n}") for n in range(100)]
    with engine.begin() as conn:
        db.upsert(conn, invoices, rows)
        total = conn.execute(select(db.money_sum(invoices.c.total))).scalar_one()
    assert db.cents_to_decimal(total) == Decimal("100.00") + Decimal("123456789.00")


@pytest.mark.parametrize("url", ["", "not a url", "mysql+nosuchdriver://x/y"])
def test_bad_urls_are_one_sentence(url):
    with pytest.raises(ConfigurationError):
        db.create_db_engine(url)


def test_unreachable_database_is_one_sentence():
    engine = db.create_db_engine("postgresql://postgres@127.0.0.1:9/nothing")
    with pytest.raises(TargetDatabaseError, match="Cannot connect to the IntoAEC database"):
        db.upgrade(engine)


def test_bulk_upsert_round_trips_awkward_values(engine):
    """Above the COPY threshold PostgreSQL stages through COPY: escaping must be exact."""
    from intoaec_xero.schema import invoice_lines

    awkward = ["tab\there", "new\nline", "back\\slash", "CR\rLF", "ünïcødé — “quotes” ✓", "\\N", "", "'; DROP"]
    rows = [
        {"tenant_id": "t", "line_item_id": f"l{n}", "invoice_id": "i", "line_number": n,
         "description": awkward[n % len(awkward)] if n % 9 else None,
         "quantity": Decimal("1.2345"), "unit_amount": Decimal(f"{n}.0001"), "line_amount": Decimal("-0.01"),
         "project": None, "tracking": [{"category": "Project", "option": awkward[n % len(awkward)]}]}
        for n in range(db.COPY_THRESHOLD + 50)
    ]
    with engine.begin() as conn:
        db.upsert(conn, invoice_lines, rows)
    with engine.begin() as conn:  # again: an update through the same path
        db.upsert(conn, invoice_lines, rows)
    with engine.connect() as conn:
        stored = {r.line_item_id: r for r in conn.execute(select(invoice_lines))}
    assert len(stored) == len(rows)
    for row in rows:
        got = stored[row["line_item_id"]]
        assert got.description == row["description"]
        assert got.unit_amount == row["unit_amount"] and got.quantity == row["quantity"]
        assert got.tracking == row["tracking"]


def _credit_note(n: int, **changes):
    row = {"tenant_id": "t1", "credit_note_id": f"c{n}", "status": "AUTHORISED", "total": Decimal("10.00"),
           "date": date(2024, 2, 29), "allocations": [{"invoice_id": f"i{n}", "amount": "10.00"}],
           "updated_at": datetime(2024, 3, 1, 12, tzinfo=UTC)}
    return {**row, **changes}


def _assert_counts_changes(engine, size: int) -> None:
    """New keys are inserted, changed rows updated, rows written again with their own values neither."""

    def upsert(rows):
        changes = db.UpsertChanges()
        with engine.begin() as conn:
            assert db.upsert(conn, credit_notes, rows, changes=changes) == len({r["credit_note_id"] for r in rows})
        return changes.inserted, changes.updated

    first = [_credit_note(n) for n in range(size)]
    assert upsert(first) == (size, 0)
    assert upsert(first) == (0, 0)
    second = list(first)
    second[0] = _credit_note(0, total=Decimal("10.01"))  # money
    second[1] = _credit_note(1, status="PAID")  # text
    second[2] = _credit_note(2, allocations=[{"invoice_id": "i2", "amount": "4.00"}])  # JSON
    second[3] = _credit_note(3, allocations=None)  # to NULL
    second[4] = _credit_note(4, total=Decimal("10.0"))  # the same amount at another scale: unchanged
    second += [_credit_note(n) for n in range(size, size + 3)]
    second.append(_credit_note(size, status="DRAFT"))  # a key twice: its last version is the one written
    assert upsert(second) == (3, 4)
    assert upsert(second) == (0, 0)
    assert upsert([_credit_note(3, allocations=None)]) == (0, 0)  # NULL against NULL is no change
    with engine.connect() as conn:
        stored = {r.credit_note_id: r for r in conn.execute(select(credit_notes))}
    assert len(stored) == size + 3
    assert stored["c0"].total == Decimal("10.01") and stored["c1"].status == "PAID"
    assert stored["c2"].allocations[0]["amount"] == "4.00" and stored["c3"].allocations is None
    assert stored[f"c{size}"].status == "DRAFT"


@pytest.mark.parametrize("size", [5, db.COPY_THRESHOLD + 50], ids=["insert", "copy"])
def test_upsert_counts_inserted_and_updated_rows(engine, size):
    """Both statement paths (and on PostgreSQL the COPY staging path above the threshold)."""
    _assert_counts_changes(engine, size)


@pytest.mark.parametrize("size", [5, db.COPY_THRESHOLD + 50], ids=["insert", "copy"])
def test_upsert_counts_on_psycopg3(postgres_url, size):
    """Plain ``postgresql://`` URLs get psycopg 3, whose INSERT rowcount SQLAlchemy must be told to keep."""
    from sqlalchemy.engine import make_url

    engine = db.create_db_engine(make_url(postgres_url).set(drivername="postgresql+psycopg")
                                 .render_as_string(hide_password=False))
    db.upgrade(engine)
    try:
        _assert_counts_changes(engine, size)
    finally:
        engine.dispose()


def test_an_unchanged_row_is_not_rewritten(engine):
    """The upsert leaves a row alone when nothing differs, so the next statement sees it as it was."""
    with engine.begin() as conn:
        db.upsert(conn, invoices, [_invoice("10.10")])
        conn.execute(invoices.update().values(reference="set outside the upsert"))
        db.upsert(conn, invoices, [_invoice("10.10")])  # the reference is not among the upserted columns
        db.upsert(conn, invoices, [{**_invoice("10.10"), "reference": "set outside the upsert"}])
    with engine.connect() as conn:
        assert conn.execute(select(invoices.c.reference)).scalar_one() == "set outside the upsert"


def test_bulk_copy_in_several_slices_and_straight_into_an_empty_table(postgres_url, monkeypatch):
    """New keys go straight into the table; COPY text is sent in slices, each exact."""
    engine = db.create_db_engine(postgres_url)
    db.upgrade(engine)
    monkeypatch.setattr(db, "COPY_SLICE_ROWS", 7)
    rows = [_credit_note(n, status=["AUTHORISED", "PAID\tx", None][n % 3]) for n in range(db.COPY_THRESHOLD + 5)]
    copied_into = []
    original = db._copy_in
    monkeypatch.setattr(db, "_copy_in", lambda conn, name, *a: (copied_into.append(name), original(conn, name, *a)))
    try:
        changes = db.UpsertChanges()
        with engine.begin() as conn:
            db.upsert(conn, credit_notes, rows, changes=changes)
        assert copied_into == ["credit_notes"] and (changes.inserted, changes.updated) == (len(rows), 0)
        with engine.connect() as conn:
            stored = {r.credit_note_id: r.status for r in conn.execute(select(credit_notes))}
        assert stored == {r["credit_note_id"]: r["status"] for r in rows}
        # Existing keys: through the staging table and the upsert.
        with engine.begin() as conn:
            db.upsert(conn, credit_notes, rows)
        assert copied_into[1] == "stage_credit_notes"
    finally:
        engine.dispose()


def test_a_batch_that_looks_new_but_is_not_falls_back_to_the_upsert(postgres_url):
    """Only a sample of keys is looked up; one that slips through makes the COPY roll back, not fail."""
    engine = db.create_db_engine(postgres_url)
    db.upgrade(engine)
    rows = [_credit_note(n) for n in range(db.COPY_THRESHOLD + 5)]
    step = len(rows) // db.PROBE_KEYS
    unsampled = next(n for n in range(len(rows)) if n % step)
    try:
        with engine.begin() as conn:
            db.upsert(conn, credit_notes, [rows[unsampled]])
        changes = db.UpsertChanges()
        with engine.begin() as conn:
            batch = list(rows)
            batch[unsampled] = _credit_note(unsampled, status="PAID")
            db.upsert(conn, credit_notes, batch, changes=changes)
            assert conn.execute(select(func.count()).select_from(credit_notes)).scalar_one() == len(rows)
        assert (changes.inserted, changes.updated) == (len(rows) - 1, 1)
        with engine.connect() as conn:
            assert conn.execute(select(credit_notes.c.status).where(
                credit_notes.c.credit_note_id == f"c{unsampled}")).scalar_one() == "PAID"
    finally:
        engine.dispose()


def test_upsert_on_a_unique_index_replaces_instead_of_adding(engine):
    """dq_results' key is a surrogate id: a retried load matches its verdicts on (run, tenant, table, check)."""
    from intoaec_xero.schema import dq_results

    key = ("run_id", "tenant_id", "table_name", "check_name")

    def verdict(check: str, passed: bool) -> dict:
        return {"run_id": "r1", "tenant_id": "t1", "table_name": "invoices", "check_name": check,
                "severity": "hold", "passed": passed, "observed": f"{int(not passed)} of 3 rows",
                "failing_keys": None if passed else ["inv-2"], "checked_at": datetime(2024, 3, 1, tzinfo=UTC)}

    with engine.begin() as conn:
        db.upsert(conn, dq_results, [verdict("status_in_enum", False), verdict("key_present", True)], keys=key)
    with engine.begin() as conn:  # the retry: one verdict changed
        db.upsert(conn, dq_results, [verdict("status_in_enum", True), verdict("key_present", True)], keys=key)
    with engine.connect() as conn:
        rows = conn.execute(select(dq_results.c.check_name, dq_results.c.passed, dq_results.c.failing_keys)
                            .order_by(dq_results.c.check_name)).all()
    assert rows == [("key_present", True, None), ("status_in_enum", True, None)]


def test_the_upgrade_keeps_one_verdict_per_check_of_a_run(empty_db_url):
    """Databases written before verdicts were keyed may hold a retry's second set: the latest stays."""
    from alembic import command
    from sqlalchemy import text

    engine = db.create_db_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            command.upgrade(db._alembic_config(conn), "0002")
        with engine.begin() as conn:
            for n, passed in enumerate((False, True, True)):
                conn.execute(text(
                    "INSERT INTO dq_results (run_id, tenant_id, table_name, check_name, severity, passed, observed) "
                    "VALUES ('r1', 't1', 'invoices', :check, 'error', :passed, :observed)"),
                    {"check": "status_in_enum" if n < 2 else "key_present", "passed": passed, "observed": f"try {n}"})
        db.upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT check_name, observed FROM dq_results ORDER BY check_name")).all()
        assert [tuple(r) for r in rows] == [("key_present", "try 2"), ("status_in_enum", "try 1")]
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_a_schema_check_logs_only_the_migrations_it_runs(tmp_path, caplog):
    """Every task checks the schema: Alembic's preamble must not open every task log."""
    import logging

    caplog.set_level(logging.INFO)
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    db.upgrade(engine)
    first = [r.getMessage() for r in caplog.records if r.name.startswith("alembic")]
    assert first and all(m.startswith("Running upgrade") for m in first), first
    caplog.clear()
    db.upgrade(engine)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []


def test_a_transaction_whose_connection_is_terminated_is_tried_again_from_its_start(migrated_postgres_url, caplog):
    from sqlalchemy import text

    engine = db.create_db_engine(migrated_postgres_url)
    tries = []

    def work() -> int:
        with engine.begin() as conn:
            tries.append(conn.execute(text("SELECT pg_backend_pid()")).scalar())
            if len(tries) == 1:  # the server ends this connection mid-transaction, as a restart would
                conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
            return conn.execute(text("SELECT 42")).scalar()

    assert db.retry_transient(work, "Acme (t1): invoices load", sleep=lambda s: None) == 42
    assert len(tries) == 2 and tries[0] != tries[1]
    assert "Acme (t1): invoices load: the database failed" in caplog.text and "try 2 of 4" in caplog.text
    engine.dispose()


def test_only_transient_database_errors_are_tried_again_and_only_a_few_times():
    from sqlalchemy.exc import IntegrityError, OperationalError

    class Orig(Exception):
        def __init__(self, message: str, pgcode: str | None = None):
            super().__init__(message)
            self.pgcode = pgcode

    calls = []

    def failing(error):
        def work():
            calls.append(1)
            raise error
        return work

    restarting = OperationalError("COMMIT", {}, Orig("terminating connection due to administrator command", "57P01"))
    with pytest.raises(OperationalError):
        db.retry_transient(failing(restarting), "x", delays=(0, 0), sleep=lambda s: None)
    assert len(calls) == 3  # the first try and two more
    calls.clear()
    duplicate = IntegrityError("INSERT", {}, Orig("duplicate key value", "23505"))
    with pytest.raises(IntegrityError):
        db.retry_transient(failing(duplicate), "x", sleep=lambda s: None)
    assert len(calls) == 1  # a defect: trying again would only repeat it
    assert db.is_transient(OperationalError("SELECT", {}, Orig("could not serialize access", "40001")))
    assert not db.is_transient(ValueError("not a database error"))

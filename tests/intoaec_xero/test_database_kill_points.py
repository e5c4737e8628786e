"""PostgreSQL ends the sync's connection at chosen moments; the interrupted transaction is tried again whole.

At each kill point the server terminates the session (``pg_terminate_backend``, SQLSTATE
57P01, as a restart or an operator would) inside a transaction: during the write of a chunk
(COPY and upsert), during the watermark's update just before the commit, or while the extract
records its run. The transaction rolls back whole, it is tried again on a fresh connection, and
the run ends equal to the sandbox's truth with no run row left open and no duplicate. A real
restart of a server of the test's own ends every session while a load waits mid-transaction.
"""

from __future__ import annotations

import threading
import time

import pytest
from intoaec_xero import db, load, report, state
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import sync_runs
from sqlalchemy import create_engine, select, text

from tests.harness.databases import migrated_engine, private_postgres
from tests.harness.xero import connect
from tests.intoaec_xero.backfill.conftest import sync_client

pytestmark = pytest.mark.integration

ALL_TABLES = {"clients", "invoices", "invoice_lines", "payments", "credit_notes", "accounts", "tracking_categories",
              "tracking_options", "journals", "journal_lines"}


def _terminate_own_session(conn) -> None:
    conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))


@pytest.mark.parametrize(("kill_point", "stream"), [("copy", "invoices"), ("write", "invoices"), ("write", "journals"),
                                                    ("watermark", "payments"), ("run record", "credit_notes")])
def test_a_terminated_session_mid_load_is_loaded_again_and_equals_the_truth(migrated_postgres_url, tmp_path,
                                                                          monkeypatch, caplog, kill_point, stream):
    from xero_sandbox.testing import running_sandbox

    killed = []
    if kill_point == "copy":
        # Another session ends the load's while its COPY streams rows in.
        real_copy_in, real_chunks = db._copy_in, db._copy_chunks
        admin = create_engine(migrated_postgres_url, isolation_level="AUTOCOMMIT")

        def copy_in_then_die(conn, table_name, columns, rows):
            if table_name != stream or killed:
                return real_copy_in(conn, table_name, columns, rows)
            pid = conn.connection.dbapi_connection.get_backend_pid()

            def chunks(rows, columns):
                for number, chunk in enumerate(real_chunks(rows, columns)):
                    yield chunk
                    if number == 0:
                        killed.append(table_name)
                        with admin.connect() as other:
                            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                        yield b""  # the COPY goes on writing to a session that has ended

            monkeypatch.setattr(db, "_copy_chunks", chunks)
            try:
                return real_copy_in(conn, table_name, columns, rows)
            finally:
                monkeypatch.setattr(db, "_copy_chunks", real_chunks)

        monkeypatch.setattr(db, "_copy_in", copy_in_then_die)
    elif kill_point == "write":
        real_write = load._write

        def write_then_die(conn, target, tenant_id, *args, **kwargs):
            if target.name == stream and not killed:
                killed.append(tenant_id)
                real_write(conn, target, tenant_id, *args, **kwargs)  # the COPY and upsert went through ...
                _terminate_own_session(conn)  # ... and the session ends before the commit
            return real_write(conn, target, tenant_id, *args, **kwargs)

        monkeypatch.setattr(load, "_write", write_then_die)
    elif kill_point == "run record":
        real_record = state._record_run

        def record_then_die(conn, row):
            # The extract's "extracted" record, written between the calls to Xero and the load.
            if row["stream"] == stream and row.get("status") == "extracted" and not killed:
                killed.append(row["tenant_id"])
                real_record(conn, row)
                _terminate_own_session(conn)
            return real_record(conn, row)

        monkeypatch.setattr(state, "_record_run", record_then_die)
    else:
        real_advance = state.advance

        def advance_then_die(conn, tenant_id, name, **kwargs):
            real_advance(conn, tenant_id, name, **kwargs)
            if name == stream and not killed:
                killed.append(tenant_id)
                _terminate_own_session(conn)

        monkeypatch.setattr(state, "advance", advance_then_die)

    with (migrated_engine(migrated_postgres_url) as engine,
          running_sandbox(dataset="small", seed=21, limits=False) as sandbox):
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        summary = run_sync(sync_client(settings, store), settings, engine, RawStore(tmp_path / "raw"), "run-1")

        assert killed, f"the {kill_point} of {stream} was never reached"
        assert summary.ok, summary.failures
        what = f"{stream} run record of tenant {killed[0]}" if kill_point == "run record" else f"{stream} load"
        assert f"{what}: the database failed" in caplog.text and "trying it again from the start" in caplog.text
        assert report.compare_with_truth(engine, sandbox.truth(), ALL_TABLES) == []
        with engine.connect() as conn:
            assert conn.execute(select(sync_runs.c.stream).where(sync_runs.c.status.in_(state.UNFINISHED))).all() == []


def test_a_postgresql_restart_while_a_load_waits_mid_transaction_costs_nothing(tmp_path, caplog):
    """``pg_ctl restart -m fast`` with a load inside its transaction: the run retries and finishes whole.

    The test holds a lock on invoice_lines, so the invoices load has written its invoices and
    waits on the lines; the restart ends that session, the lock's and every pooled connection.
    """
    import psycopg2
    from xero_sandbox.testing import running_sandbox

    with (private_postgres() as server, migrated_engine(server.url) as engine,
          running_sandbox(dataset="small", seed=21, limits=False) as sandbox):
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        blocker = psycopg2.connect(host="127.0.0.1", port=server.port, user="postgres", dbname="postgres")
        blocker.cursor().execute("LOCK TABLE invoice_lines IN SHARE ROW EXCLUSIVE MODE")  # opens a transaction
        outcome: dict = {}

        def sync() -> None:
            try:
                outcome["summary"] = run_sync(sync_client(settings, store), settings, engine,
                                              RawStore(tmp_path / "raw"), "run-1")
            except BaseException as error:  # noqa: BLE001 - reported by the assertion below
                outcome["error"] = error

        worker = threading.Thread(target=sync, daemon=True)
        worker.start()
        watcher = psycopg2.connect(host="127.0.0.1", port=server.port, user="postgres", dbname="postgres")
        watcher.autocommit = True
        waiting = None
        deadline = time.monotonic() + 120
        while waiting is None and time.monotonic() < deadline and worker.is_alive():
            with watcher.cursor() as cur:
                cur.execute("SELECT query, xact_start FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND pid <> pg_backend_pid()")
                waiting = cur.fetchone()
            time.sleep(0.05)
        watcher.close()
        assert waiting is not None, f"no load waited on invoice_lines: {outcome}"
        assert "invoice_lines" in waiting[0] and waiting[1] is not None  # inside the load's transaction
        with engine.connect() as conn:  # the invoices written so far are not visible: nothing committed yet
            assert conn.execute(text("SELECT count(*) FROM invoices")).scalar() == 0

        restarted_at = time.monotonic()
        server.restart()
        assert blocker.closed or _closed(blocker)
        worker.join(timeout=300)

        assert not worker.is_alive(), "the sync did not finish after the restart"
        assert "error" not in outcome, outcome.get("error")
        summary = outcome["summary"]
        assert summary.ok, summary.failures
        assert "invoices load: the database failed" in caplog.text
        assert time.monotonic() - restarted_at < 120
        assert report.compare_with_truth(engine, sandbox.truth(), ALL_TABLES) == []
        with engine.connect() as conn:
            assert conn.execute(select(sync_runs.c.stream).where(sync_runs.c.status.in_(state.UNFINISHED))).all() == []


def _closed(connection) -> bool:
    """Whether the server ended this connection (psycopg2 learns it on the next use)."""
    try:
        connection.cursor().execute("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means the session is gone
        return True
    return False


def test_an_unexpected_error_in_one_tenant_never_stops_the_others(tmp_path, monkeypatch, caplog):
    """The CLI syncs tenants one after another: a defect in one is named, with its traceback, and the next runs."""
    from intoaec_xero import pipeline
    from xero_sandbox.testing import running_sandbox

    real_load = pipeline.load_tenant
    broken = []

    def load_or_break(engine, raw, manifest, **options):
        if not broken:
            broken.append(manifest["tenant_name"])
            raise KeyError("a field this code did not expect")
        return real_load(engine, raw, manifest, **options)

    monkeypatch.setattr(pipeline, "load_tenant", load_or_break)
    with (migrated_engine(f"sqlite:///{tmp_path / 'intoaec.db'}") as engine,
          running_sandbox(dataset="small", seed=21, limits=False) as sandbox):
        settings, store = connect(sandbox, engine, calls_per_minute=0)
        summary = run_sync(sync_client(settings, store), settings, engine, RawStore(tmp_path / "raw"), "run-1")
    [failure] = summary.failures
    assert failure.startswith(f"{broken[0]} (") and "a field this code did not expect" in failure
    synced = [t["tenant_name"] for t in summary.tenants]
    assert synced and broken[0] not in synced  # the next tenant was synced all the same
    assert "Traceback" in caplog.text

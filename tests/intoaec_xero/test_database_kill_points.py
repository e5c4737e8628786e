"""PostgreSQL ends the load's connection at chosen moments; the stream is loaded again from its start.

At each kill point the server terminates the session (``pg_terminate_backend``, SQLSTATE
57P01, as a restart or an operator would) inside the stream's transaction: during the write
of a chunk (COPY and upsert) or during the watermark's update just before the commit. The
transaction rolls back whole, the load tries the stream again on a fresh connection, and the
run ends equal to the sandbox's truth with no run row left open and no duplicate.
"""

from __future__ import annotations

import pytest
from intoaec_xero import load, report, state
from intoaec_xero.pipeline import run_sync
from intoaec_xero.rawstore import RawStore
from intoaec_xero.schema import sync_runs
from sqlalchemy import select, text

from tests.harness.databases import migrated_engine
from tests.harness.xero import connect
from tests.intoaec_xero.backfill.conftest import sync_client

pytestmark = pytest.mark.integration

ALL_TABLES = {"clients", "invoices", "invoice_lines", "payments", "credit_notes", "accounts", "tracking_categories",
              "tracking_options", "journals", "journal_lines"}


def _terminate_own_session(conn) -> None:
    conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))


@pytest.mark.parametrize(("kill_point", "stream"), [("write", "invoices"), ("write", "journals"),
                                                    ("watermark", "payments")])
def test_a_terminated_session_mid_load_is_loaded_again_and_equals_the_truth(migrated_postgres_url, tmp_path,
                                                                          monkeypatch, caplog, kill_point, stream):
    from xero_sandbox.testing import running_sandbox

    killed = []
    if kill_point == "write":
        real_write = load._write

        def write_then_die(conn, target, tenant_id, *args, **kwargs):
            if target.name == stream and not killed:
                killed.append(tenant_id)
                real_write(conn, target, tenant_id, *args, **kwargs)  # the COPY and upsert went through ...
                _terminate_own_session(conn)  # ... and the session ends before the commit
            return real_write(conn, target, tenant_id, *args, **kwargs)

        monkeypatch.setattr(load, "_write", write_then_die)
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
        assert f"{stream} load: the database failed" in caplog.text and "trying it again from the start" in caplog.text
        assert report.compare_with_truth(engine, sandbox.truth(), ALL_TABLES) == []
        with engine.connect() as conn:
            assert conn.execute(select(sync_runs.c.stream).where(sync_runs.c.status.in_(state.UNFINISHED))).all() == []


def test_an_unexpected_error_in_one_tenant_never_stops_the_others(tmp_path, monkeypatch, caplog):
    """The CLI syncs tenants one after another: a defect in one is named, with its traceback, and the next runs."""
    from intoaec_xero import pipeline
    from xero_sandbox.testing import running_sandbox

    real_load = pipeline.load_tenant
    broken = []

    def load_or_break(engine, raw, manifest):
        if not broken:
            broken.append(manifest["tenant_name"])
            raise KeyError("a field this code did not expect")
        return real_load(engine, raw, manifest)

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

"""xero_sync's and xero_keepalive's tasks cover every firm's grant beside the connections' own, and a
firm whose grant died fails alone, named."""

from __future__ import annotations

import pytest

from tests.harness.task_env import sandbox_connection, task_database

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.slow]  # DAG tasks over whole syncs


def test_the_sync_and_the_keepalive_cover_every_firm(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
    from intoaec_xero import firms
    from intoaec_xero.airflow import tasks
    from intoaec_xero.health import tenant_health
    from xero_sandbox.testing import running_sandbox

    from tests.harness.firms import connect_firm
    from tests.harness.xero import sandbox_settings

    engine = task_database(tmp_path, monkeypatch)
    monkeypatch.setenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS", "1")
    monkeypatch.delenv("INTOAEC_XERO_CONN_IDS", raising=False)
    with running_sandbox(dataset="small", seed=5, limits=False) as sandbox:
        # The data team's app: the connection holds no grant of its own, only the firms do.
        sandbox_connection(monkeypatch, "xero_default", sandbox)
        settings = sandbox_settings(sandbox, calls_per_minute=0)
        acme = connect_firm(engine, settings, "acme", 0).organisations[0]
        bravo = connect_firm(engine, settings, "bravo", 1).organisations[0]

        # Each on its own here (as xero_backfill maps them); batches are the next test's.
        mapped = tasks.prepare(batch=False)
        assert sorted((t["firm_id"], t["tenant_id"], t["conn_id"]) for t in mapped) == sorted(
            [("acme", acme["tenant_id"], "xero_default"), ("bravo", bravo["tenant_id"], "xero_default")])
        assert tasks.keepalive_grants() == ["xero_default", "firm:acme", "firm:bravo"]

        # bravo's grant lapses at Xero; acme's keeps working, and bravo's failure names bravo's organisation.
        sandbox.expire_grants("firm2@intoaec.test")
        by_firm = {t["firm_id"]: t for t in mapped}
        summary = tasks.load(tasks.extract(by_firm["acme"], run_id="r1"))
        assert summary["tenant_id"] == acme["tenant_id"]
        # Its access token was still fresh here, so the extract finds out from Xero and hands the load
        # nothing but failed streams; the load fails, naming them, with no retry (a person must act).
        failed = tasks.extract(by_firm["bravo"], run_id="r1")
        assert all("invalid_grant" in f["message"] for f in failed["failed"])
        with pytest.raises(AirflowFailException, match=bravo["tenant_name"]):
            tasks.load(failed)
        health = {h.tenant_id: h for h in tenant_health(engine)}
        assert health[acme["tenant_id"]].verdict == "healthy"
        assert health[bravo["tenant_id"]].connection_status == "Reconnect needed"
        assert firms.firm(engine, "bravo").to_api()["organisations"][0]["status"] == "Reconnect needed"

        # The keep-alive renews acme's grant and fails bravo's alone, with what to do; the app
        # connection itself has nothing to renew.
        renewed = tasks.keepalive_hook("firm:acme").keep_alive()
        assert renewed["firm_id"] == "acme" and renewed["refreshed"] is True
        with pytest.raises(AirflowFailException, match="firm:bravo"):
            tasks.keepalive_hook("firm:bravo").keep_alive()
        with pytest.raises(AirflowSkipException):
            tasks.keepalive_hook("xero_default").keep_alive()

        # Switched off by the firm: the next run does not map it at all.
        firms.set_sync(engine, "acme", acme["tenant_id"], False)
        assert [t.get("firm_id") for t in tasks.prepare(batch=False) if t["tenant_id"]] == ["bravo"]


def test_small_firm_organisations_share_a_task_and_fail_alone_within_it(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException
    from intoaec_xero.airflow import tasks
    from intoaec_xero.schema import sync_runs
    from sqlalchemy import select
    from xero_sandbox.testing import running_sandbox

    from tests.harness.firms import connect_firm
    from tests.harness.xero import sandbox_settings

    engine = task_database(tmp_path, monkeypatch)
    monkeypatch.setenv("INTOAEC_ALLOW_PLAINTEXT_TOKENS", "1")
    monkeypatch.delenv("INTOAEC_XERO_CONN_IDS", raising=False)
    with running_sandbox(dataset="many", seed=5, limits=False, extra_args=("--tenants", "3")) as sandbox:
        sandbox_connection(monkeypatch, "xero_default", sandbox)
        settings = sandbox_settings(sandbox, calls_per_minute=0)
        names = {}
        for index, firm_id in enumerate(("acme", "bravo", "charlie")):
            names[firm_id] = connect_firm(engine, settings, firm_id, index).organisations[0]["tenant_name"]

        # New organisations are batched too; a batch of one is a plain task.
        (onboarding,) = tasks.prepare()
        assert len(onboarding["batch"]) == 3
        tasks.load(tasks.extract(onboarding, run_id="r1"))
        first = onboarding["batch"]
        calls = tasks.previous_sync_calls(engine, [t["tenant_id"] for t in first])
        assert len(calls) == 3 and all(n > 0 for n in calls.values())

        # A limit below their calls gives each a task of its own; at it, one task for all three.
        monkeypatch.setenv("INTOAEC_SYNC_BATCH_MAX_CALLS", str(min(calls.values()) - 1))
        assert not any(t.get("batch") for t in tasks.prepare())
        monkeypatch.setenv("INTOAEC_SYNC_BATCH_MAX_CALLS", str(max(calls.values())))
        monkeypatch.setenv("INTOAEC_SYNC_BATCH_SIZE", "2")
        assert [len(t.get("batch") or [t]) for t in tasks.prepare()] == [2, 1]
        monkeypatch.setenv("INTOAEC_SYNC_BATCH_SIZE", "25")
        (batch,) = tasks.prepare()
        assert sorted(m["firm_id"] for m in batch["batch"]) == ["acme", "bravo", "charlie"]
        assert batch["tenant_name"].startswith("3 firm organisations")

        # bravo's grant lapses: the batch's task fails naming bravo's organisation only; the others landed.
        sandbox.activity(invoices=2)
        sandbox.expire_grants("firm2@intoaec.test")
        manifest = tasks.extract(batch, run_id="r2")
        assert len(manifest["batch"]) == 3
        with pytest.raises(AirflowFailException) as failed:
            tasks.load(manifest)
        label, _, why = str(failed.value).partition(" did not sync; the others did. ")
        assert label == f"1 organisation(s) of {batch['tenant_name']}"
        assert names["bravo"] in why and names["acme"] not in why and names["charlie"] not in why
        with engine.connect() as conn:
            outcome = conn.execute(select(sync_runs.c.tenant_id, sync_runs.c.status)
                                   .where(sync_runs.c.run_id == "r2", sync_runs.c.stream == "invoices")).all()
        by_tenant = dict(outcome)
        assert sorted(by_tenant.values()) == ["failed", "success", "success"]

"""One organisation reached through two Xero connections: the first keeps syncing it, the second's
task says why it will not, and neither connection's raw pages are shared or reset by the other."""

from __future__ import annotations

import json

import pytest

from tests.harness.task_env import task_database

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.slow]  # DAG tasks over two syncs


def test_the_second_connection_of_an_organisation_is_refused_until_the_first_lets_go(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException
    from intoaec_xero import oauth, tenants
    from intoaec_xero.airflow import backfill_tasks, tasks
    from intoaec_xero.health import tenant_health
    from intoaec_xero.schema import xero_tenants
    from intoaec_xero.settings import XeroSettings
    from intoaec_xero.tokens import TokenCipher, TokenStore
    from sqlalchemy import select
    from xero_sandbox.testing import running_sandbox, sign_in_and_consent

    engine = task_database(tmp_path, monkeypatch)
    monkeypatch.setenv("INTOAEC_XERO_CONN_IDS", "xero_firm_a,xero_firm_b")
    with running_sandbox(dataset="small", seed=21, limits=False) as sandbox:
        shared, other = sorted(sandbox.truth()["tenants"])
        # Firm A syncs one organisation; firm B's connection reaches that one and another.
        for conn_id, tenant_filter in (("xero_firm_a", shared), ("xero_firm_b", "")):
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({
                "conn_type": "xero", "login": "sandbox-client", "password": "sandbox-secret",
                "extra": {"api_base_url": f"{sandbox.base_url}/api.xro/2.0", "identity_base_url": sandbox.base_url,
                          "sandbox": True, "calls_per_minute": "0", "tenant_filter": tenant_filter}}))
            settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                                    client_secret="sandbox-secret", connection_key=conn_id)
            request = oauth.start_authorization(settings, "http://127.0.0.1:9/cb")
            tokens = oauth.finish_authorization(settings, request, sign_in_and_consent(request.url))
            TokenStore(engine, conn_id, TokenCipher.from_environment()).save(tokens)

        entries = tasks.prepare()
        by_conn = {(e["conn_id"], e["tenant_id"]): e for e in entries}
        assert set(by_conn) == {("xero_firm_a", shared), ("xero_firm_b", other), ("xero_firm_b", "")}
        refused = by_conn["xero_firm_b", ""]
        name = refused["tenant_name"].removesuffix(" (refused for xero_firm_b)")
        message = (f"Organisation '{name}' (tenant {shared}) is already connected through connection "
                   "'xero_firm_a'; disconnect it there first or remove it from connection 'xero_firm_b' (its "
                   "tenant filter, or Xero's connected apps).")
        assert refused["refused"] == message

        # The refused entry fails at once with that sentence, in the sync and in the backfill.
        with pytest.raises(AirflowFailException) as failed:
            tasks.extract(refused, run_id="r1")
        assert str(failed.value) == message
        with pytest.raises(AirflowFailException) as failed:
            backfill_tasks.extract_window(refused, "r1", "2025-01-01", "2025-02-01")
        assert str(failed.value) == message

        # Both connections sync what they hold, each into its own raw directory.
        for entry in (by_conn["xero_firm_a", shared], by_conn["xero_firm_b", other]):
            manifest = tasks.extract(entry, run_id="r1")
            assert manifest["connection_key"] == entry["conn_id"] and manifest["failed"] == []
            assert tasks.load(manifest)["failed"] == []
        raw = tmp_path / "var" / "raw"
        assert sorted(p.relative_to(raw).as_posix() for p in raw.glob("*/r1/*")) == [
            f"xero_firm_a/r1/{shared}", f"xero_firm_b/r1/{other}"]
        with engine.connect() as conn:
            holders = dict(conn.execute(select(xero_tenants.c.tenant_id, xero_tenants.c.connection_key)).all())
        assert holders == {shared: "xero_firm_a", other: "xero_firm_b"}
        verdicts = {h.tenant_id: h.verdict for h in tenant_health(engine)}
        assert verdicts == {shared: "healthy", other: "healthy"}

        # Firm A's connection is retired and the organisation disconnected there: firm B takes it over.
        tenants.mark_organisation_disconnected(engine, shared)
        monkeypatch.setenv("INTOAEC_XERO_CONN_IDS", "xero_firm_b")
        entries = tasks.prepare()
        assert sorted(e["tenant_id"] for e in entries) == sorted([shared, other])
        assert {e["conn_id"] for e in entries} == {"xero_firm_b"} and not any("refused" in e for e in entries)
        with engine.connect() as conn:
            holders = dict(conn.execute(select(xero_tenants.c.tenant_id, xero_tenants.c.connection_key)).all())
        assert holders == {shared: "xero_firm_b", other: "xero_firm_b"}

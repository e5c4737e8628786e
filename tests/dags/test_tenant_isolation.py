"""A revoked grant fails only its own tenants: the other connection's tenants keep syncing."""

from __future__ import annotations

import json

import pytest

from tests.harness.task_env import task_database

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.slow]  # DAG tasks over whole syncs


def test_a_revoked_connection_fails_alone(tmp_path, monkeypatch):
    from intoaec_xero.airflow import tasks
    from intoaec_xero.oauth import finish_authorization, start_authorization
    from intoaec_xero.settings import XeroSettings
    from intoaec_xero.tokens import TokenCipher, TokenStore
    from xero_sandbox.testing import running_sandbox, sign_in_and_consent

    engine = task_database(tmp_path, monkeypatch)
    monkeypatch.setenv("INTOAEC_XERO_CONN_IDS", "xero_firm_a,xero_firm_b")
    with running_sandbox(dataset="small", seed=21, limits=False) as sandbox:
        first, second = sorted(sandbox.truth()["tenants"])
        for conn_id, tenant in (("xero_firm_a", first), ("xero_firm_b", second)):
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({
                "conn_type": "xero", "login": "sandbox-client", "password": "sandbox-secret",
                "extra": {"api_base_url": f"{sandbox.base_url}/api.xro/2.0", "identity_base_url": sandbox.base_url,
                          "sandbox": True, "calls_per_minute": "0",
                          # one demo user consented to both: each connection syncs its own firm
                          "tenant_filter": tenant}}))
            settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                                    client_secret="sandbox-secret", connection_key=conn_id)
            request = start_authorization(settings, "http://127.0.0.1:9/cb")
            callback = sign_in_and_consent(request.url, tenant_ids=[tenant])
            TokenStore(engine, conn_id).save(finish_authorization(settings, request, callback))
        assert len(tasks.prepare()) == 2  # both connections known

        # firm A's grant dies: its refresh token no longer works and the access token has expired
        store = TokenStore(engine, "xero_firm_a", TokenCipher.from_environment())
        dead = store.load()
        dead.refresh_token, dead.expires_at = "revoked", 0
        store.save(dead)

        tenants = {t["conn_id"]: t for t in tasks.prepare()}
        # Nothing of the failure is frozen into the mapped input: each try reads the grant afresh.
        assert set(tenants["xero_firm_a"]) == {"tenant_id", "tenant_name", "conn_id"}
        from airflow.sdk.exceptions import AirflowFailException

        with pytest.raises(AirflowFailException, match="invalid_grant"):  # a person must act: no retries
            tasks.extract(tenants["xero_firm_a"], run_id="r1")
        manifest = tasks.extract(tenants["xero_firm_b"], run_id="r1")
        summary = tasks.load(manifest)
        assert all(s["status"] in ("success", "unavailable") for s in summary["streams"].values())
        from intoaec_xero.health import tenant_health

        verdicts = {h.tenant_id: h.verdict for h in tenant_health(engine)}
        assert verdicts[first] == "reconnect_needed"
        assert verdicts[second] == "healthy"

        # Firm A reconnects; a retry of the same task, with the same mapped input, now succeeds.
        settings = XeroSettings.for_single_host(sandbox.base_url, client_id="sandbox-client",
                                                client_secret="sandbox-secret", connection_key="xero_firm_a")
        request = start_authorization(settings, "http://127.0.0.1:9/cb")
        callback = sign_in_and_consent(request.url, tenant_ids=[first])
        TokenStore(engine, "xero_firm_a").save(finish_authorization(settings, request, callback))
        manifest = tasks.extract(tenants["xero_firm_a"], run_id="r1")
        assert manifest["failed"] == []
        assert tasks.load(manifest)["failed"] == []
        verdicts = {h.tenant_id: h.verdict for h in tenant_health(engine)}
        assert verdicts[first] == "healthy"

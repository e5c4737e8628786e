"""The connect API's committed OpenAPI document is the one the code serves, and says what IntoAEC relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow]

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "connect-api.openapi.json"


def test_the_committed_document_is_current():
    from intoaec_xero.airflow.connect_api import document

    assert json.loads(COMMITTED.read_text()) == document(), (
        "docs/connect-api.openapi.json is stale: python -m intoaec_xero.airflow.connect_api "
        "docs/connect-api.openapi.json")


def test_the_document_states_the_contract():
    spec = json.loads(COMMITTED.read_text())
    assert spec["servers"] == [{"url": "/xero/api/v1"}]
    assert spec["security"] == [{"intoaecApp": []}]
    assert spec["components"]["securitySchemes"]["intoaecApp"]["scheme"] == "bearer"
    paths = spec["paths"]
    assert paths["/callback"]["get"]["security"] == []  # the only public route
    assert set(paths["/firms/{firm_id}/connect-sessions"]) == {"post"}
    assert set(paths["/firms/{firm_id}/organisations/{tenant_id}/sync"]) == {"put"}
    organisation = spec["components"]["schemas"]["Organisation"]["properties"]
    assert {"tenant_id", "tenant_name", "status", "sync", "future_access"} <= set(organisation)
    error = spec["components"]["schemas"]["ErrorDetail"]["properties"]
    assert set(error) == {"code", "message"}

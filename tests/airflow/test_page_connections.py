"""Which connections the Xero page offers, and what it says about one set by an environment variable."""

from __future__ import annotations

import json
import os

import pytest
from intoaec_xero.airflow import page_connections

pytestmark = [pytest.mark.airflow]


def test_the_choice_keeps_the_shown_one_first_then_the_synced_ones_then_every_other_xero_connection():
    offered = page_connections.choices("xero_firm_b", ["xero_default", "xero_firm_b"], ["xero_firm_a", "xero_default"],
                                       ["xero_env"], may_see=lambda conn_id: True)
    assert offered == ["xero_firm_b", "xero_default", "xero_env", "xero_firm_a"]


def test_connections_the_user_may_not_see_are_not_offered():
    offered = page_connections.choices("xero_default", [], ["xero_secret_firm", "xero_firm_a"], [],
                                       may_see=lambda conn_id: conn_id != "xero_secret_firm")
    assert offered == ["xero_default", "xero_firm_a"]


def test_a_variable_that_shadows_a_stored_connection_is_named(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", "xero://id:secret@")
    shadowed = page_connections.source("xero_default", ["xero_default"])
    assert shadowed.env_var == "AIRFLOW_CONN_XERO_DEFAULT" and shadowed.stored
    assert "stored connection of that name is ignored" in shadowed.shadow_warning
    assert "AIRFLOW_CONN_XERO_DEFAULT is unset" in shadowed.shadow_warning
    only_env = page_connections.source("xero_default", [])
    assert "does not list it" in only_env.shadow_warning
    monkeypatch.delenv("AIRFLOW_CONN_XERO_DEFAULT")
    assert page_connections.source("xero_default", ["xero_default"]).shadow_warning is None


def test_xero_connections_set_by_variables_are_found_by_type(monkeypatch):
    for name in [n for n in os.environ if n.startswith("AIRFLOW_CONN_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AIRFLOW_CONN_XERO_FIRM_A", json.dumps({"conn_type": "xero", "login": "id"}))
    monkeypatch.setenv("AIRFLOW_CONN_INTOAEC_DB", json.dumps({"conn_type": "generic"}))
    monkeypatch.setenv("AIRFLOW_CONN_BROKEN", "{not json")
    assert page_connections.environment_xero_ids() == ["xero_firm_a"]

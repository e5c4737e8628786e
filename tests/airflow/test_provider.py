"""The ``xero`` connection type is registered through the package's provider entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from intoaec_xero.airflow.provider import get_provider_info
from intoaec_xero.settings import DEFAULT_SCOPES, XERO_EXTRA, XERO_EXTRAS

FORM_FIELDS = {extra.name for extra in XERO_EXTRAS if extra.in_form}

pytestmark = pytest.mark.airflow


def test_the_entry_point_names_this_distribution():
    ours = [ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("intoaec_xero.")]
    assert len(ours) == 1
    assert ours[0].load() is get_provider_info
    # Airflow refuses a provider whose package-name is not the distribution that declares it.
    assert ours[0].dist.name == get_provider_info()["package-name"] == "intoaec-xero"


def test_the_form_is_declarative_with_xeros_defaults():
    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == "xero"
    assert conn_type["hook-class-name"] == "intoaec_xero.airflow.hooks.XeroHook"
    assert conn_type["ui-field-behaviour"]["relabeling"] == {"login": "Client ID", "password": "Client Secret"}
    fields = conn_type["conn-fields"]
    assert set(fields) == FORM_FIELDS == {"scopes", "tenant_filter", "api_base_url", "identity_base_url", "sandbox",
                                          "grant_type", "calls_per_minute", "connect_timeout", "read_timeout"}
    assert fields["scopes"]["schema"]["default"].split() == list(DEFAULT_SCOPES)
    assert fields["api_base_url"]["schema"]["default"] == "https://api.xero.com/api.xro/2.0"
    assert fields["identity_base_url"]["schema"]["default"] == "https://identity.xero.com"
    assert fields["grant_type"]["schema"]["enum"] == ["authorization_code", "client_credentials"]
    assert fields["sandbox"]["schema"] == {"type": ["boolean", "null"], "default": False}
    assert fields["calls_per_minute"]["schema"] == {"type": ["integer", "null"], "minimum": 0, "default": 60}
    assert fields["read_timeout"]["schema"]["default"] == 60


def test_airflow_lists_the_hook_and_its_form_fields():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert manager.providers["intoaec-xero"].data["name"] == "IntoAEC Xero"
    hook = manager.hooks["xero"]
    assert hook.hook_class_name == "intoaec_xero.airflow.hooks.XeroHook"
    assert hook.connection_id_attribute_name == "xero_conn_id"
    widgets = {name for name in manager.connection_form_widgets if name.startswith("extra__xero__")}
    assert widgets == {f"extra__xero__{name}" for name in FORM_FIELDS}
    behaviour = manager.field_behaviours["xero"]
    assert set(behaviour["hidden_fields"]) == {"host", "port", "schema", "extra"}


def test_the_hook_keeps_every_declared_extra_out_of_the_http_headers():
    from intoaec_xero.airflow.hooks import XERO_EXTRA_KEYS

    assert XERO_EXTRA_KEYS == set(XERO_EXTRA)


@pytest.mark.slow  # Airflow's CLI in a subprocess
def test_airflow_providers_hooks_lists_xero(tmp_path):
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    airflow = Path(sys.executable).with_name("airflow")
    out = subprocess.run([str(airflow), "providers", "hooks"], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("xero "))
    assert "intoaec_xero.airflow.hooks.XeroHook" in line and "intoaec-xero" in line

"""The Airflow provider this package registers, so the ``xero`` connection type has a real form.

Airflow discovers connection types only through the ``apache_airflow_provider`` entry point
of an installed distribution (a plugin cannot add one), and since 3.2 the form is described
declaratively here rather than by hook methods. Nothing here imports Airflow, so reading the
provider info is cheap for the API server.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from intoaec_xero.settings import XERO_EXTRAS, ConnectionExtra

DISTRIBUTION = "intoaec-xero"  # must equal the installed distribution's name, or Airflow refuses it

# JSON-schema types of the form's fields, by the declared type of the extra.
_SCHEMA_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}


def conn_field(extra: ConnectionExtra) -> dict:
    """One ``conn-fields`` entry: Airflow stores the field's value in the extra under the same key."""
    schema: dict = {"type": [_SCHEMA_TYPES[extra.kind], "null"]}
    if extra.choices:
        schema["enum"] = list(extra.choices)
    if extra.kind in (int, float):
        schema["minimum"] = extra.minimum
    if extra.default is not None:
        schema["default"] = extra.default
    return {"label": extra.label, "description": extra.description, "schema": schema}


def conn_fields() -> dict[str, dict]:
    """The form's fields: every declared extra marked ``in_form``, in declaration order."""
    return {extra.name: conn_field(extra) for extra in XERO_EXTRAS if extra.in_form}


def get_provider_info() -> dict:
    try:
        package_version = version(DISTRIBUTION)
    except PackageNotFoundError:  # running from a source tree that was never installed
        package_version = "0.0.0"
    return {
        "package-name": DISTRIBUTION,
        "name": "IntoAEC Xero",
        "description": "Syncs Xero accounting data into IntoAEC: the Xero connection type and hook.",
        "versions": [package_version],
        "connection-types": [
            {
                "connection-type": "xero",
                "hook-class-name": "intoaec_xero.airflow.hooks.XeroHook",
                "hook-name": "Xero",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "port", "schema", "extra"],
                    "relabeling": {"login": "Client ID", "password": "Client Secret"},
                    "placeholders": {
                        "login": "the app's Client id (developer.xero.com > My Apps > Configuration)",
                        "password": "the app's Client secret",
                    },
                },
                "conn-fields": conn_fields(),
            }
        ],
    }

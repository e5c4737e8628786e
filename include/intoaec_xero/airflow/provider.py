"""The Airflow provider this package registers, so the ``xero`` connection type has a real form.

Airflow discovers connection types only through the ``apache_airflow_provider`` entry point
of an installed distribution (a plugin cannot add one), and since 3.2 the form is described
declaratively here rather than by hook methods. Nothing here imports Airflow, so reading the
provider info is cheap for the API server.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from intoaec_xero.settings import DEFAULT_SCOPES, XERO_API_BASE_URL, XERO_IDENTITY_BASE_URL

DISTRIBUTION = "intoaec-xero"  # must equal the installed distribution's name, or Airflow refuses it


def _text(label: str, description: str, default: str | None = None, **schema) -> dict:
    field_schema = {"type": ["string", "null"], **schema}
    if default is not None:
        field_schema["default"] = default
    return {"label": label, "description": description, "schema": field_schema}


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
                "conn-fields": {
                    "scopes": _text(
                        "Scopes",
                        "Space-separated. Apps created since March 2026 must use granular scopes; "
                        "offline_access is what lets the sync run without you.",
                        " ".join(DEFAULT_SCOPES),
                    ),
                    "tenant_filter": _text(
                        "Tenant filter",
                        "Organisations to sync, by name or tenant id, comma-separated. Empty: every "
                        "connected organisation.",
                    ),
                    "api_base_url": _text(
                        "API base URL",
                        "Xero's Accounting API; the local sandbox's /api.xro/2.0 for demos and tests.",
                        XERO_API_BASE_URL,
                    ),
                    "identity_base_url": _text(
                        "Identity base URL",
                        "Xero's identity service (token, revocation); the sandbox's address for demos "
                        "and tests, which then also serves sign-in and /connections.",
                        XERO_IDENTITY_BASE_URL,
                    ),
                    "sandbox": {
                        "label": "Local sandbox",
                        "description": "Tick only for the local Xero sandbox (demos and tests): a connection "
                                       "whose URLs are not Xero's is refused without it.",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                    "grant_type": _text(
                        "Grant type",
                        "authorization_code: a user signs in once (the Xero page or `intoaec-xero "
                        "connect`). client_credentials: a Xero custom connection (one organisation).",
                        "authorization_code",
                        enum=["authorization_code", "client_credentials"],
                    ),
                },
            }
        ],
    }

"""A sandbox organisation connected the way a user connects Xero: sign in, approve, keep the grant."""

from __future__ import annotations

from collections.abc import Sequence

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"  # the sandbox's public demo app
CORE_CLIENT_ID = "sandbox-client-core"
CORE_CLIENT_SECRET = "sandbox-secret-core"  # the same developer's Core-tier app: never served Journals
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never followed: the scripted user hands the code over


def sandbox_settings(sandbox, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET, **overrides):
    """The settings of an app registered with the sandbox, its one host standing in for all of Xero's."""
    from intoaec_xero.settings import XeroSettings

    return XeroSettings.for_single_host(sandbox.base_url, client_id=client_id, client_secret=client_secret,
                                        **overrides)


def connect(sandbox, engine, *, cipher=None, tenant_ids: Sequence[str] | None = None,
            redirect_uri: str = REDIRECT_URI, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET,
            **overrides):
    """Run the authorization-code flow with the sandbox's scripted user and save the grant.

    ``overrides`` are :class:`XeroSettings` fields (``calls_per_minute``, ``tenant_filter``,
    ``connection_key`` ...); ``tenant_ids`` limits which organisations the user approves;
    ``client_id``/``client_secret`` pick the app (``CORE_CLIENT_ID``: one Xero never serves Journals).
    Returns the settings and the token store holding the grant.
    """
    from intoaec_xero.oauth import finish_authorization, start_authorization
    from intoaec_xero.tokens import TokenStore
    from xero_sandbox.testing import sign_in_and_consent

    settings = sandbox_settings(sandbox, client_id=client_id, client_secret=client_secret, **overrides)
    store = (TokenStore(engine, settings.connection_key) if cipher is None
             else TokenStore(engine, settings.connection_key, cipher))
    request = start_authorization(settings, redirect_uri)
    store.save(finish_authorization(settings, request, sign_in_and_consent(request.url, tenant_ids=tenant_ids)))
    return settings, store


def tenants_of(sandbox) -> list[dict[str, str]]:
    """The sandbox's organisations as the pipeline names them, in /connections order."""
    return [{"tenant_id": t["tenantId"], "tenant_name": t["tenantName"]} for t in sandbox.health()["tenants"]]

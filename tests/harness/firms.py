"""A firm connected the way the connect API connects it, without the API server: session, the firm's
accountant at the sandbox's sign-in, the callback's checks, the grant stored under the firm."""

from __future__ import annotations

from intoaec_xero import firms, oauth
from intoaec_xero.client import build_client
from xero_sandbox.testing import firm_user, sign_in_and_consent

SECRET = b"connect-api-test-secret"
RETURN_URL = "http://127.0.0.1:9/integrations/xero/return"
REDIRECT_URI = "http://127.0.0.1:9/xero/api/v1/callback"  # never followed: the scripted browser hands it over


def connect_firm(engine, app_settings, firm_id: str, firm_index: int, *, allow_sharing: bool = False,
                 cipher=None) -> firms.Connected:
    """Firm ``firm_id`` signs in as the sandbox's ``firm{firm_index + 1}`` user and approves its organisation."""
    started = firms.start_session(engine, app_settings, firm_id, RETURN_URL, REDIRECT_URI, SECRET)
    email, password = firm_user(firm_index)
    callback = sign_in_and_consent(started.authorize_url, email=email, password=password)
    state = dict(part.split("=", 1) for part in callback.split("?", 1)[1].split("&"))["state"]
    claimed = firms.claim_session(engine, state, SECRET)
    return firms.finish_sign_in(
        engine, app_settings, claimed, callback, allow_sharing=allow_sharing,
        exchange=lambda code: oauth.exchange_code(app_settings, code, claimed.redirect_uri, claimed.verifier),
        client_for=lambda store: build_client(firms.firm_settings(app_settings, firm_id), store), cipher=cipher)

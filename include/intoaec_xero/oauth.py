"""The one-off OAuth 2.0 authorization-code flow (with PKCE and a state check).

Used by ``intoaec-xero connect`` and the Airflow UI's Xero page: build the sign-in URL, then
turn the redirect Xero sends back into a stored token set.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from intoaec_xero.errors import ConfigurationError, XeroAuthError, XeroUnavailable
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tokens import TokenSet


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str
    redirect_uri: str


def start_authorization(settings: XeroSettings, redirect_uri: str) -> AuthorizationRequest:
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(24)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(settings.scopes),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return AuthorizationRequest(f"{settings.authorize_url}?{query}", state, verifier, redirect_uri)


def finish_authorization(settings: XeroSettings, request: AuthorizationRequest, callback_url: str) -> TokenSet:
    """Check the redirect (state, error) and exchange its code for tokens."""
    query = parse_qs(urlparse(callback_url.strip()).query)
    if "error" in query:
        raise XeroAuthError(f"Xero sign-in was not completed: {query['error'][0]}"
                            + (f" ({query['error_description'][0]})" if "error_description" in query else ""))
    if query.get("state", [None])[0] != request.state:
        raise XeroAuthError("The sign-in answer's state does not match this request; it was refused.")
    code = query.get("code", [None])[0]
    if not code:
        raise XeroAuthError("The redirect URL carries no authorization code.")
    return exchange_code(settings, code, request.redirect_uri, request.code_verifier)


def exchange_code(settings: XeroSettings, code: str, redirect_uri: str, code_verifier: str | None) -> TokenSet:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    issued = time.time()
    try:
        response = requests.post(settings.token_url, data=form,
                                 auth=(settings.client_id, settings.client_secret), timeout=30)
    except requests.RequestException as error:
        raise XeroUnavailable(f"Cannot reach Xero's token endpoint at {settings.token_url}: "
                              f"{type(error).__name__}.") from None
    if response.status_code != 200:
        try:
            detail = response.json().get("error", "")
        except ValueError:
            detail = response.text[:200]
        if detail == "invalid_client":
            raise ConfigurationError("Xero rejected the client id/secret (invalid_client).")
        raise XeroAuthError(f"Xero refused the authorization code ({response.status_code} {detail}).")
    return TokenSet.from_response(response.json(), now=issued)

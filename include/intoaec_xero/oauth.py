"""The one-off connection setup: the OAuth 2.0 sign-in, revocation and disconnection at Xero.

Used by ``intoaec-xero connect`` / ``disconnect`` and by the Airflow UI's Xero page, so both
follow the same rules: the authorization-code flow with PKCE (S256) and a ``state`` that must
come back unchanged, tokens stored before anything uses them, the organisations re-read from
``/connections`` after every consent (a reconnect can change the tenant ids; what a grant
reaches is recorded by ``intoaec_xero.tenants``), and revocation or per-organisation
disconnection through Xero rather than just forgetting tokens locally.

HTTP to Xero's identity host goes through a ``requests`` session; the Airflow hook passes its
own (the connection's proxy and TLS settings), the CLI a plain one. Every call carries the
connection's (connect, read) timeout, so a host that accepts and never answers ends in
``XeroUnavailable`` instead of a page or task that hangs.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import requests
import requests.auth

from intoaec_xero.errors import ConfigurationError, XeroAuthError, XeroBadResponse, XeroError, XeroUnavailable
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tenants import record_connections
from intoaec_xero.tokens import TokenSet, TokenStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuthorizationRequest:
    """One sign-in in progress. The verifier is a secret: keep it server-side or encrypted."""

    url: str
    state: str
    code_verifier: str
    redirect_uri: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuthorizationRequest:
        return cls(url=data["url"], state=data["state"], code_verifier=data["code_verifier"],
                   redirect_uri=data["redirect_uri"])

    def __repr__(self) -> str:
        return f"AuthorizationRequest(redirect_uri={self.redirect_uri!r})"


def start_authorization(settings: XeroSettings, redirect_uri: str, state: str | None = None) -> AuthorizationRequest:
    """Xero's authorize URL with a fresh PKCE pair; ``state`` is random unless the caller signs its own."""
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = state or secrets.token_urlsafe(24)
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


def authorization_code(request: AuthorizationRequest, callback_url: str) -> str:
    """The code in Xero's redirect, after checking it answers this very request (``state``)."""
    query = parse_qs(urlparse(callback_url.strip()).query)
    if "error" in query:
        raise XeroAuthError(f"Xero sign-in was not completed: {query['error'][0]}"
                            + (f" ({query['error_description'][0]})" if "error_description" in query else ""))
    returned_state = query.get("state", [""])[0]
    if not secrets.compare_digest(returned_state.encode(), request.state.encode()):
        raise XeroAuthError("The sign-in answer's state does not match this request; it was refused.")
    code = query.get("code", [None])[0]
    if not code:
        raise XeroAuthError("The redirect URL carries no authorization code.")
    return code


def finish_authorization(settings: XeroSettings, request: AuthorizationRequest, callback_url: str,
                         session: requests.Session | None = None) -> TokenSet:
    """Check the redirect (state, error) and exchange its code for tokens."""
    code = authorization_code(request, callback_url)
    return exchange_code(settings, code, request.redirect_uri, request.code_verifier, session=session)


def exchange_code(settings: XeroSettings, code: str, redirect_uri: str, code_verifier: str | None,
                  session: requests.Session | None = None) -> TokenSet:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    issued = time.time()
    response = _post(settings, settings.token_url, form, session)
    if response.status_code != 200:
        detail = _oauth_error(response)
        if detail == "invalid_client":
            raise ConfigurationError("Xero rejected the client id/secret (invalid_client).")
        if response.status_code >= 500:
            raise XeroUnavailable(f"Xero's token endpoint answered {response.status_code}.",
                                  status=response.status_code, endpoint="/connect/token")
        raise XeroAuthError(f"Xero refused the authorization code ({response.status_code} {detail}).")
    return TokenSet.from_response(_token_json(response), now=issued, client_id=settings.client_id)


def check_client(settings: XeroSettings, session: requests.Session | None = None) -> str | None:
    """Whether Xero accepts the client id and secret, without touching any grant.

    The token endpoint authenticates the client before it looks at the grant type, so an
    unknown grant type answers ``invalid_client`` for a wrong secret and something else for a
    right one. No token is issued and no refresh token is spent. Returns why not, or None.
    """
    response = _post(settings, settings.token_url, {"grant_type": "urn:intoaec:client-check"}, session)
    if response.status_code == 401 or _oauth_error(response) == "invalid_client":
        return ("Xero rejected the Client ID / Client Secret (invalid_client): copy them again from "
                "the app's page at developer.xero.com/app/manage.")
    if response.status_code >= 500:
        raise XeroUnavailable(f"Xero's token endpoint answered {response.status_code}.")
    return None


def client_credentials_token(settings: XeroSettings, session: requests.Session | None = None) -> TokenSet:
    """A custom connection's token (one organisation, no refresh token): minted, not stored."""
    issued = time.time()
    response = _post(settings, settings.token_url, {"grant_type": "client_credentials"}, session)
    if response.status_code >= 500:
        raise XeroUnavailable(f"Xero's token endpoint answered {response.status_code}.",
                              status=response.status_code, endpoint="/connect/token")
    if response.status_code != 200:
        raise XeroAuthError(f"Xero refused a custom-connection token ({response.status_code} "
                            f"{_oauth_error(response)}).", status=response.status_code)
    return TokenSet.from_response(_token_json(response), now=issued, client_id=settings.client_id)


def list_connections(settings: XeroSettings, access_token: str,
                     session: requests.Session | None = None) -> list[dict[str, Any]]:
    http = session or requests
    try:
        response = http.get(settings.connections_url, auth=_Bearer(access_token),
                            headers={"Accept": "application/json"}, timeout=settings.http_timeout)
    except requests.RequestException as error:
        raise XeroUnavailable(f"Cannot reach Xero at {settings.connections_url}: {type(error).__name__}.") from None
    if response.status_code != 200:
        kind = XeroUnavailable if response.status_code >= 500 else XeroError
        raise kind(f"GET /connections answered {response.status_code}.", status=response.status_code,
                   endpoint="/connections")
    try:
        connections = response.json()
    except ValueError:
        connections = None
    if not isinstance(connections, list):
        raise XeroBadResponse("GET /connections did not return a JSON list.", endpoint="/connections")
    return connections


def revoke(settings: XeroSettings, refresh_token: str, session: requests.Session | None = None) -> None:
    """Revoke the grant at Xero: the refresh token dies and every organisation it reached is disconnected."""
    response = _post(settings, settings.revocation_url, {"token": refresh_token}, session)
    if response.status_code != 200:
        kind = XeroUnavailable if response.status_code >= 500 else XeroError
        raise kind(f"Xero refused to revoke the grant ({response.status_code} {_oauth_error(response)}).",
                   status=response.status_code, endpoint="/connect/revocation")


def delete_connection(client, connection_id: str, session: requests.Session | None = None) -> None:
    """DELETE /connections/{id}: Xero stops this organisation's access; the grant stays for the others.

    Goes around the SDK because it answers 204 with no body, which the JSON-reading client
    path would call a bad response. One 401 gets one refresh and one retry, as elsewhere.
    """
    client.current_tokens()
    tokens = client.refresh_tokens(force=False)
    http = session or requests
    url = f"{client.settings.connections_url}/{connection_id}"
    for attempt in (1, 2):
        try:
            response = http.delete(url, auth=_Bearer(tokens.access_token), timeout=client.settings.http_timeout)
        except requests.RequestException as error:
            raise XeroUnavailable(f"Cannot reach Xero at {url}: {type(error).__name__}.") from None
        if response.status_code == 401 and attempt == 1:
            tokens = client.refresh_tokens(force=True)
            continue
        if response.status_code in (200, 204, 404):  # 404: already gone, which is what was asked
            return
        raise XeroError(f"Xero refused to disconnect the organisation ({response.status_code}).",
                        status=response.status_code, endpoint="DELETE /connections")


def complete_sign_in(settings: XeroSettings, store: TokenStore, tokens: TokenSet, client) -> list[dict[str, Any]]:
    """Store a new grant (committed before first use), then read and record what it reaches.

    ``client`` is a fresh client on ``store``; it reads the grant only when it first calls Xero.
    """
    store.save(tokens)
    connections = client.connections()
    record_connections(store.engine, settings, connections)
    return connections


# -- internals ----------------------------------------------------------------------------------

class _Bearer(requests.auth.AuthBase):
    """The access token as the request's auth, so it replaces a session's client Basic auth."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_Bearer(***)"


def _post(settings: XeroSettings, url: str, form: dict[str, str], session: requests.Session | None):
    http = session or requests
    try:
        return http.post(url, data=form, auth=(settings.client_id, settings.client_secret),
                         timeout=settings.http_timeout)
    except requests.RequestException as error:
        raise XeroUnavailable(f"Cannot reach Xero's identity service at {url}: {type(error).__name__}.") from None


def _token_json(response: requests.Response) -> dict[str, Any]:
    """A token answer's JSON, or XeroBadResponse for a body that is not one (never echoed: it holds tokens)."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or not data.get("access_token"):
        raise XeroBadResponse("Xero's token endpoint answered 200 without a complete token response.",
                              endpoint="/connect/token")
    return data


def _oauth_error(response: requests.Response) -> str:
    """The ``error`` code of an OAuth error answer; never the body itself, which could echo input."""
    try:
        data = response.json()
    except ValueError:
        return ""
    return str(data.get("error", "")) if isinstance(data, dict) else ""


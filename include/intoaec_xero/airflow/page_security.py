"""What keeps the Xero page safe to use from a browser: its form tokens, its cookies, its framing.

A form token is signed (HMAC-SHA256, keyed from the API server's secret key) over a random
nonce, an expiry, the Airflow user and the page session it was issued to. The page session is
a random id in an HttpOnly cookie only this page sets, so a token copied out of one browser (a
saved page, a screenshot, a proxy log) is refused in any other, and any token stops working
after ``CSRF_SECONDS``. Nothing is kept server-side: any API-server worker can check a token.

Every response the page sends forbids framing by other sites (``frame-ancestors 'self'``, and
``X-Frame-Options`` for browsers that predate it), so its buttons cannot be clickjacked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from typing import TypeGuard
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "intoaec_xero_session"
CSRF_SECONDS = 4 * 3600  # long enough for a page left open over a meeting, short enough to bound a leak
FRAMING = {"Content-Security-Policy": "frame-ancestors 'self'", "X-Frame-Options": "SAMEORIGIN"}

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_TOKEN = re.compile(r"(?P<nonce>[0-9a-f]{32})\.(?P<expiry>[0-9]{1,12})\."
                    r"(?P<session>[0-9a-f]{32})\.(?P<mac>[0-9a-f]{64})")

NO_TOKEN = ("This form did not come from the Xero page: it carries no security token. "
            "Reload the Xero page and try again.")
NO_SESSION = ("This form came without the Xero page's session cookie, so it cannot be told apart from a "
              "forged one. Reload the Xero page (this site must be allowed to set cookies) and try again.")
TAMPERED = ("This form's security token is not valid: it was altered, or this server did not issue it to you. "
            "Reload the Xero page and try again.")
EXPIRED = (f"This form has expired: the Xero page's forms are good for {CSRF_SECONDS // 3600} hours. "
           "Reload the Xero page and try again.")
OTHER_SESSION = ("This form was issued to another session (another browser, or this one before its Xero page "
                 "session was renewed), so it was refused. Reload the Xero page and try again.")


class CsrfRefused(Exception):
    """A form token that must not be honoured; the message says why and what to do."""


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def is_session_id(value: str | None) -> TypeGuard[str]:
    return value is not None and _SESSION_ID.fullmatch(value) is not None


def issue_csrf(secret: bytes, session_id: str, user: str, *, now: float | None = None) -> str:
    """A fresh token for the forms of one rendered page: ``nonce.expiry.session-tag.mac``."""
    key = _key(secret)
    nonce = secrets.token_hex(16)
    expiry = int((time.time() if now is None else now) + CSRF_SECONDS)
    tag = _session_tag(key, session_id)
    return f"{nonce}.{expiry}.{tag}.{_mac(key, nonce, expiry, tag, user)}"


def check_csrf(secret: bytes, token: str | None, session_id: str | None, user: str, *,
               now: float | None = None) -> None:
    """Raise ``CsrfRefused`` unless ``token`` was issued by this server to ``user`` in this session and is current.

    The signature is checked before anything the token claims is believed, so its expiry and
    session tag cannot be edited into passing.
    """
    if not token:
        raise CsrfRefused(NO_TOKEN)
    if not is_session_id(session_id):
        raise CsrfRefused(NO_SESSION)
    parts = _TOKEN.fullmatch(token)
    if parts is None:
        raise CsrfRefused(TAMPERED)
    key = _key(secret)
    expiry = int(parts["expiry"])
    if not hmac.compare_digest(parts["mac"], _mac(key, parts["nonce"], expiry, parts["session"], user)):
        raise CsrfRefused(TAMPERED)
    if expiry <= (time.time() if now is None else now):
        raise CsrfRefused(EXPIRED)
    if not hmac.compare_digest(parts["session"], _session_tag(key, session_id)):
        raise CsrfRefused(OTHER_SESSION)


def _key(secret: bytes) -> bytes:
    # Its own key, so a value signed for another purpose with the same secret can never pass as a token.
    return hmac.new(secret, b"intoaec-xero-csrf-v1", hashlib.sha256).digest()


def _session_tag(key: bytes, session_id: str) -> str:
    # The page carries a tag of the session, not the id: the HttpOnly cookie stays out of reach of scripts.
    return hmac.new(key, b"session\0" + session_id.encode(), hashlib.sha256).hexdigest()[:32]


def _mac(key: bytes, nonce: str, expiry: int, session_tag: str, user: str) -> str:
    message = json.dumps([nonce, expiry, session_tag, user]).encode()  # unambiguous whatever the user name holds
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def cookies_secure(request_scheme: str, base_url: str | None) -> bool:
    """Whether the page's cookies must be ``Secure``.

    Behind a TLS-terminating proxy the request reaches the API server as plain http unless
    forwarded headers are trusted; Airflow's configured base URL says what the browser uses.
    """
    return request_scheme == "https" or urlsplit(base_url or "").scheme.lower() == "https"


class FrameGuard:
    """ASGI middleware: every response forbids being framed by another origin.

    A response that already has a Content-Security-Policy keeps it, with ``frame-ancestors``
    added when it has none.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                protect(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, guarded)


def protect(headers: MutableHeaders) -> None:
    policy = headers.get("content-security-policy")
    if not policy:
        headers["Content-Security-Policy"] = FRAMING["Content-Security-Policy"]
    elif "frame-ancestors" not in policy:
        headers["Content-Security-Policy"] = f"{policy.rstrip('; ')}; {FRAMING['Content-Security-Policy']}"
    if "x-frame-options" not in headers:
        headers["X-Frame-Options"] = FRAMING["X-Frame-Options"]

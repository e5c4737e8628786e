"""Makes Admin ▸ Connections' Test button work for Xero connections on Airflow 3.3.

The button in the connection list posts the listed connection with ``port: Number(port)``,
which is ``0`` for a connection without a port, and Airflow's test endpoint refuses any body
whose port differs from the stored one ("The host or port to test differs from the stored
connection", 400) unless it carries a real password, which the list never has (it shows
``***``). Xero connections have no host or port (their URLs are extras), so a port of 0 in a
test of a ``xero`` connection means "not set": this API-server middleware drops it before
Airflow reads the body. Every other request, and every other connection type, passes untouched.

Airflow then tests a copy of the connection under a temporary id, which holds no grant. The
middleware notes which saved connection an unchanged body names (``connections.testing_saved``),
so the hook can use that connection's grant when, and only when, the copy equals it field for
field: then the grant can only reach the hosts the saved connection names.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from intoaec_xero.airflow.connections import testing_saved

TEST_PATH = "/api/v2/connections/test"
XERO_CONN_TYPE = "xero"
MASKED = "***"  # how Airflow's UI shows (and sends back) a stored secret


def xero_test(body: bytes) -> dict[str, Any] | None:
    """The body of a test of a Xero connection, parsed; None for anything else."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) and payload.get("conn_type") == XERO_CONN_TYPE else None


def without_unset_port(body: bytes) -> bytes | None:
    """The test body with a Xero connection's ``port: 0`` removed; None when it needs no change."""
    payload = xero_test(body)
    if payload is None or "port" not in payload or payload["port"] not in (0, "0"):
        return None
    del payload["port"]
    return json.dumps(payload).encode()


def saved_under_test(body: bytes) -> str | None:
    """The saved connection a Test of an unchanged Xero connection names, else None.

    Only a body with the masked secret counts: Airflow restores the stored secret into it only
    after checking that the user may read that connection, so a copy equal to the saved one
    proves that check passed. A body that brings its own secret is a new form, tested as one.
    """
    payload = xero_test(body)
    if payload is None or payload.get("password") != MASKED:
        return None
    named = payload.get("connection_id")
    return named if isinstance(named, str) and named else None


class XeroTestButtonFix:
    """ASGI middleware on the API server's root app (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(TEST_PATH):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let Airflow see it as is
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        fixed = without_unset_port(body)
        if fixed is not None:
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
            scope = {**scope, "headers": [*headers, (b"content-length", str(len(fixed)).encode())]}
            body = fixed
        token = testing_saved.set(saved_under_test(body))
        try:
            await self.app(scope, _replay([{"type": "http.request", "body": body, "more_body": False}], receive),
                           send)
        finally:
            testing_saved.reset(token)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive callable that gives ``messages`` first, then defers to ``then`` (disconnects)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive

"""The token store: where the rotating Xero refresh token lives, with one writer at a time.

Xero rotates the refresh token on every refresh, and two workers refreshing the same grant
at once leave one of them holding a dead token. So a refresh happens only while holding a
row lock on the grant's row (``SELECT … FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite), the token is re-read after the lock is taken (another worker may have refreshed
already), and the new token set is committed before anyone uses it. The previous refresh
token is kept with it: if a crash loses Xero's answer, Xero still accepts the old one for
30 minutes.

Tokens live in the IntoAEC database (table ``xero_tokens``) because Airflow 3 tasks cannot
write connections, and a table gives a real row lock across processes and Celery workers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from intoaec_xero.db import upsert
from intoaec_xero.errors import XeroAuthError
from intoaec_xero.schema import xero_tokens

log = logging.getLogger(__name__)

# Refresh this long before expiry, so a token never expires in the middle of a page.
EXPIRY_MARGIN_SECONDS = 120
STATUS_ACTIVE = "active"
STATUS_RECONNECT = "reconnect_needed"
STATUS_DISCONNECTED = "disconnected"


@dataclass
class TokenSet:
    """What Xero's token endpoint returned, plus when it expires in epoch seconds."""

    access_token: str
    expires_at: float
    refresh_token: str | None = None
    scope: tuple[str, ...] = ()
    token_type: str = "Bearer"
    id_token: str | None = None
    previous_refresh_token: str | None = None

    @classmethod
    def from_response(cls, data: dict[str, Any], *, now: float | None = None, previous: str | None = None):
        issued = time.time() if now is None else now
        scope = data.get("scope") or ()
        if isinstance(scope, str):
            scope = scope.split()
        return cls(
            access_token=data["access_token"],
            expires_at=issued + float(data.get("expires_in") or 1800),
            refresh_token=data.get("refresh_token"),
            scope=tuple(scope),
            token_type=data.get("token_type") or "Bearer",
            id_token=data.get("id_token"),
            previous_refresh_token=previous,
        )

    def is_fresh(self, now: float | None = None) -> bool:
        return self.expires_at - EXPIRY_MARGIN_SECONDS > (time.time() if now is None else now)

    def to_sdk(self) -> dict[str, Any]:
        """The dict shape xero-python's OAuth2Token.update_token accepts (scope must be a list)."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "scope": list(self.scope),
            "expires_at": self.expires_at,
            "expires_in": max(0, int(self.expires_at - time.time())),
            "token_type": self.token_type,
            "id_token": self.id_token,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__ | {"scope": list(self.scope)}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> TokenSet:
        data = json.loads(raw)
        data["scope"] = tuple(data.get("scope") or ())
        return cls(**data)

    def __repr__(self) -> str:  # never print a token
        return f"TokenSet(expires_at={self.expires_at:.0f}, scope={' '.join(self.scope)!r})"


class TokenCipher:
    """Fernet encryption at rest with Airflow's Fernet key (or INTOAEC_FERNET_KEY) when set."""

    def __init__(self, key: str | None):
        self._fernet = None
        if key:
            from cryptography.fernet import Fernet, MultiFernet

            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in key.split(",") if k.strip()])

    @classmethod
    def from_environment(cls) -> TokenCipher:
        return cls(os.environ.get("INTOAEC_FERNET_KEY") or os.environ.get("AIRFLOW__CORE__FERNET_KEY"))

    @property
    def enabled(self) -> bool:
        return self._fernet is not None

    def encrypt(self, raw: bytes) -> bytes:
        return self._fernet.encrypt(raw) if self._fernet else raw

    def decrypt(self, stored: bytes, encrypted: bool) -> bytes:
        if not encrypted:
            return stored
        if not self._fernet:
            raise XeroAuthError(
                "The stored Xero token is encrypted but no Fernet key is set "
                "(AIRFLOW__CORE__FERNET_KEY or INTOAEC_FERNET_KEY)."
            )
        return self._fernet.decrypt(stored)


def fingerprint(secret: str | None) -> str:
    """A short stable tag for a secret, safe for logs (which token was used, not what it is)."""
    if not secret:
        return "none"
    return base64.b32encode(hashlib.sha256(secret.encode()).digest())[:8].decode().lower()


class TokenStore:
    """Token sets per connection key, with a locked refresh."""

    def __init__(self, engine: Engine, connection_key: str, cipher: TokenCipher | None = None):
        self.engine = engine
        self.connection_key = connection_key
        self.cipher = cipher or TokenCipher.from_environment()

    # -- reads and plain writes ------------------------------------------------------------
    def load(self) -> TokenSet | None:
        with self.engine.connect() as conn:
            return self._read(conn, lock=False)

    def status(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(xero_tokens.c.status).where(xero_tokens.c.connection_key == self.connection_key)
            ).first()
        return row[0] if row else None

    def save(self, tokens: TokenSet, status: str = STATUS_ACTIVE) -> None:
        with self.engine.begin() as conn:
            self._write(conn, tokens, status)

    def mark(self, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                xero_tokens.update()
                .where(xero_tokens.c.connection_key == self.connection_key)
                .values(status=status, updated_at=datetime.now(UTC))
            )

    # -- the single-writer refresh -----------------------------------------------------------
    def refresh(
        self,
        stale: TokenSet | None,
        fetch: Callable[[TokenSet], TokenSet],
        *,
        force: bool = False,
    ) -> TokenSet:
        """Return a fresh token set, refreshing at most once across every worker.

        ``stale`` is what the caller last used. Under the lock, if the stored set is no longer
        ``stale`` and still fresh, someone else refreshed: use theirs. Otherwise ``fetch`` asks
        Xero, and its answer is committed before this returns.
        """
        try:
            with self.engine.begin() as conn:
                current = self._read(conn, lock=True)
                if current is None:
                    raise XeroAuthError(
                        f"No Xero token stored for '{self.connection_key}': connect Xero first "
                        "(intoaec-xero connect, or the Xero page in the Airflow UI)."
                    )
                someone_else_refreshed = stale is None or current.access_token != stale.access_token
                if current.is_fresh() and (someone_else_refreshed or not force):
                    return current
                new = fetch(current)
                if not new.refresh_token:
                    new.refresh_token = current.refresh_token  # client_credentials grants have none
                new.previous_refresh_token = current.refresh_token
                self._write(conn, new, STATUS_ACTIVE)
        except XeroAuthError:
            # Outside the rolled-back transaction, so the verdict sticks.
            self.mark(STATUS_RECONNECT)
            raise
        log.info(
            "Refreshed the Xero access token for '%s' (refresh token %s -> %s).",
            self.connection_key,
            fingerprint(current.refresh_token),
            fingerprint(new.refresh_token),
        )
        return new

    # -- internals ---------------------------------------------------------------------------
    def _read(self, conn: Connection, lock: bool) -> TokenSet | None:
        query = select(xero_tokens).where(xero_tokens.c.connection_key == self.connection_key)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return TokenSet.from_json(self.cipher.decrypt(row["token"], row["encrypted"]))

    def _write(self, conn: Connection, tokens: TokenSet, status: str) -> None:
        now = datetime.now(UTC)
        upsert(
            conn,
            xero_tokens,
            [
                {
                    "connection_key": self.connection_key,
                    "token": self.cipher.encrypt(tokens.to_json()),
                    "encrypted": self.cipher.enabled,
                    "expires_at": datetime.fromtimestamp(tokens.expires_at, UTC),
                    "status": status,
                    "refreshed_at": now,
                    "updated_at": now,
                }
            ],
        )


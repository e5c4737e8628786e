"""The token store: where the rotating Xero refresh token lives, with one writer at a time.

Xero rotates the refresh token on every refresh, and two workers refreshing the same grant
at once leave one of them holding a dead token. So a refresh happens only while holding a
row lock on the grant's row (``SELECT … FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on
SQLite), the token is re-read after the lock is taken (another worker may have refreshed
already), and the new token set is committed before anyone uses it. The previous refresh
token is kept with it, with when it was rotated out: Xero still accepts it for 30 minutes.
A lost answer (a timeout, a cut transfer, a crash) leaves the old token stored, so the next
attempt simply sends it again; and if Xero refuses the stored token while the previous one is
inside its 30 minutes, the previous one is tried once before the grant is given up.

The call to Xero happens while the lock is held, so it must be bounded: the client gives
every token call a connect and a read timeout, and a failed call rolls back and releases the
lock before any retry.

Tokens live in the IntoAEC database (table ``xero_tokens``) because Airflow 3 tasks cannot
write connections, and a table gives a real row lock across processes and Celery workers.

Only ``invalid_grant`` means the grant is gone and the organisations must be reconnected; a
rejected client secret is a configuration problem and leaves the grant's status alone, so a
typo in a connection form cannot mark a working grant as dead.

Tokens are stored Fernet-encrypted. Without a key the store refuses to write (a refresh token
is as good as a password to the organisations) unless INTOAEC_ALLOW_PLAINTEXT_TOKENS=1 says
this is a throwaway demo; a plaintext row left from such a demo is encrypted in place the
first time a process with a key reads it.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from intoaec_xero.db import as_utc, upsert
from intoaec_xero.environment import RuntimeSettings, current
from intoaec_xero.errors import ConfigurationError, XeroAuthError
from intoaec_xero.schema import xero_tokens
from intoaec_xero.tenants import TenantStatus, mark_tenants

log = logging.getLogger(__name__)

# Refresh this long before expiry, so a token never expires in the middle of a page.
EXPIRY_MARGIN_SECONDS = 120
# Xero accepts a rotated-out refresh token again for 30 minutes; a minute less, for clock drift.
PREVIOUS_TOKEN_GRACE_SECONDS = 29 * 60
STATUS_ACTIVE = "active"
STATUS_RECONNECT = "reconnect_needed"
STATUS_DISCONNECTED = "disconnected"
# Set to 1 to let a process without a Fernet key store tokens in plaintext: throwaway demos only.
ALLOW_PLAINTEXT_ENV = "INTOAEC_ALLOW_PLAINTEXT_TOKENS"
# Waits between tries of saving a rotated token set on a fresh connection after the refresh's own
# transaction died: a restarting PostgreSQL is back within seconds.
RESCUE_RETRY_DELAYS = (0.0, 0.5, 1.0, 2.0, 4.0)

# What a grant's status makes every organisation it reaches read (an active grant changes none).
_TENANT_STATUS = {STATUS_RECONNECT: TenantStatus.RECONNECT_NEEDED, STATUS_DISCONNECTED: TenantStatus.DISCONNECTED}

# Callables told about the token values this process reads or writes, so a log masker
# (Airflow's, in task and API-server processes) can redact them wherever they might surface.
_secret_sinks: list[Callable[[str], None]] = []
# Airflow's maskers compile one regex over every value they hold each time one is added and run
# it over every log line, so thousands of tokens (a discovery over hundreds of firms' grants, an
# API server finishing firms' sign-ins for weeks) cost seconds a grant and a gigabyte. A process
# announces at most this many distinct values, refresh tokens first within each set. The masking is
# the second line of defence: this package never logs a token, only fingerprints of one.
MASKED_TOKENS_PER_PROCESS = 200
_announced: set[bytes] = set()


def register_secret_sink(sink: Callable[[str], None]) -> None:
    if sink not in _secret_sinks:
        _secret_sinks.append(sink)


def _announce_secrets(tokens: TokenSet) -> None:
    for value in (tokens.refresh_token, tokens.previous_refresh_token, tokens.access_token, tokens.id_token):
        if not value:
            continue
        seen = hashlib.sha256(value.encode()).digest()
        if seen in _announced:
            continue
        if len(_announced) >= MASKED_TOKENS_PER_PROCESS:
            if len(_announced) == MASKED_TOKENS_PER_PROCESS:
                _announced.add(b"")  # say it once per process
                log.info("This process has handed %d Xero token values to the log maskers; later ones are not "
                         "added (each costs every log line more). No token is ever logged here.",
                         MASKED_TOKENS_PER_PROCESS)
            return
        _announced.add(seen)
        for sink in _secret_sinks:
            sink(value)


def is_invalid_grant(error: BaseException) -> bool:
    """Xero's verdict that the refresh token (and so the grant) is dead, as opposed to a bad secret."""
    return isinstance(error, XeroAuthError) and "invalid_grant" in str(error)


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
    # Which Xero app issued the grant (shown, never used to find a grant: client ids are public).
    client_id: str | None = None
    # When previous_refresh_token was rotated out (epoch seconds): its grace window starts there.
    previous_rotated_at: float | None = None

    @classmethod
    def from_response(cls, data: dict[str, Any], *, now: float | None = None, previous: str | None = None,
                      client_id: str | None = None):
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
            client_id=client_id,
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
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})

    def __repr__(self) -> str:  # never print a token
        return f"TokenSet(expires_at={self.expires_at:.0f}, scope={' '.join(self.scope)!r})"


class TokenCipher:
    """Fernet encryption at rest with Airflow's Fernet key (or INTOAEC_FERNET_KEY); without a key nothing is stored.

    Every process touching the store (API server, workers, the CLI) must find the same key,
    whether it was given as an environment variable or generated into airflow.cfg, so the
    key is looked up in both places without importing Airflow.
    """

    def __init__(self, key: str | None):
        self._fernet = None
        if key:
            from cryptography.fernet import Fernet, MultiFernet

            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in key.split(",") if k.strip()])

    @classmethod
    def from_environment(cls, settings: RuntimeSettings | None = None) -> TokenCipher:
        """INTOAEC_FERNET_KEY (``settings``, else this process's), then Airflow's own key."""
        return cls((settings or current()).fernet_key or os.environ.get("AIRFLOW__CORE__FERNET_KEY")
                   or _airflow_cfg_fernet_key())

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
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(bytes(stored))
        except InvalidToken:
            raise XeroAuthError(
                "The stored Xero token was encrypted with a different Fernet key than this process has: "
                "give every Airflow component and the CLI the same key, or connect Xero again."
            ) from None


def plaintext_allowed(settings: RuntimeSettings | None = None) -> bool:
    """Whether this process was told it may store tokens unencrypted (a throwaway demo)."""
    return (settings or current()).allow_plaintext_tokens


def _airflow_cfg_fernet_key() -> str | None:
    """[core] fernet_key from the airflow.cfg Airflow itself would read (AIRFLOW_CONFIG, AIRFLOW_HOME)."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    path = os.environ.get("AIRFLOW_CONFIG") or os.path.join(home, "airflow.cfg")
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    return parser.get("core", "fernet_key", fallback="").strip() or None


def fingerprint(secret: str | None) -> str:
    """A short stable tag for a secret, safe for logs (which token was used, not what it is)."""
    if not secret:
        return "none"
    return base64.b32encode(hashlib.sha256(secret.encode()).digest())[:8].decode().lower()


@dataclass(frozen=True)
class GrantInfo:
    """What the UI and CLI may show about a stored grant: never a token."""

    connection_key: str
    status: str
    expires_at: datetime | None
    refreshed_at: datetime | None
    has_refresh_token: bool
    client_id: str | None

    def offline_access(self, custom_connection: bool = False) -> bool:
        """Whether the grant works and can mint access tokens without the user ("Future Access Saved").

        A custom connection mints them from the app's credentials alone, with no refresh token.
        """
        return self.status == STATUS_ACTIVE and (self.has_refresh_token or custom_connection)


class TokenStore:
    """Token sets per connection key, with a locked refresh."""

    def __init__(self, engine: Engine, connection_key: str, cipher: TokenCipher | None = None,
                 rescue_dir: Path | None = None):
        self.engine = engine
        self.connection_key = connection_key
        self.cipher = cipher or TokenCipher.from_environment()
        self._rescue_dir = rescue_dir  # None: <INTOAEC_DATA_DIR>/token-rescue, shared like the raw pages

    # -- reads and plain writes ------------------------------------------------------------
    def load(self) -> TokenSet | None:
        if self.rescue_path().exists():
            self.recover()
        with self.engine.connect() as conn:
            row = self._row(conn, lock=False)
        # Decoded after the read connection is closed: a plaintext row is rewritten on its own one.
        return self._decode(row) if row is not None else None

    def status(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(xero_tokens.c.status).where(xero_tokens.c.connection_key == self.connection_key)
            ).first()
        return row[0] if row else None

    def info(self) -> GrantInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(xero_tokens).where(xero_tokens.c.connection_key == self.connection_key)
            ).mappings().first()
        if row is None:
            return None
        tokens = self._decode(row)
        return GrantInfo(
            connection_key=self.connection_key,
            status=row["status"],
            expires_at=as_utc(row["expires_at"]),
            refreshed_at=as_utc(row["refreshed_at"]),
            has_refresh_token=bool(tokens.refresh_token),
            client_id=tokens.client_id,
        )

    def save(self, tokens: TokenSet, status: str = STATUS_ACTIVE) -> None:
        with self.engine.begin() as conn:
            self._write(conn, tokens, status)

    def mark(self, status: str) -> None:
        """Set the grant's status, and say the same of every organisation it reaches."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(
                xero_tokens.update()
                .where(xero_tokens.c.connection_key == self.connection_key)
                .values(status=status, updated_at=now)
            )
            if status in _TENANT_STATUS:
                mark_tenants(conn, self.connection_key, _TENANT_STATUS[status], now)

    def forget(self) -> None:
        """Drop the grant (after revoking it): nothing usable is kept, the organisations read Disconnected."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            conn.execute(xero_tokens.delete().where(xero_tokens.c.connection_key == self.connection_key))
            mark_tenants(conn, self.connection_key, TenantStatus.DISCONNECTED, now)

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

        def needs_refresh(current: TokenSet) -> bool:
            someone_else_refreshed = stale is None or current.access_token != stale.access_token
            return not (current.is_fresh() and (someone_else_refreshed or not force))

        return self._locked_refresh(needs_refresh, fetch)[0]

    def _locked_refresh(
        self, needs_refresh: Callable[[TokenSet], bool], fetch: Callable[[TokenSet], TokenSet]
    ) -> tuple[TokenSet, bool]:
        # Before Xero is asked: a rotated refresh token that cannot be stored would be lost.
        self.check_writable()
        if self.rescue_path().exists():
            self.recover()
        new: TokenSet | None = None
        replaced: str | None = None
        try:
            with self.engine.begin() as conn:
                row = self._row(conn, lock=True)
                if row is None:
                    raise XeroAuthError(
                        f"No Xero token stored for '{self.connection_key}': connect Xero first "
                        "(intoaec-xero connect, or the Xero page in the Airflow UI)."
                    )
                if row["status"] == STATUS_RECONNECT:
                    # Xero already said invalid_grant; asking again only adds failures to its logs.
                    raise XeroAuthError(
                        f"The Xero grant of '{self.connection_key}' needs reconnecting (invalid_grant "
                        "earlier): use Reconnect on the Xero page or run `intoaec-xero connect`."
                    )
                current = self._decode(row, conn)
                if not needs_refresh(current):
                    return current, False
                used = current
                try:
                    new = fetch(current)
                except XeroAuthError as error:
                    previous = self._previous_in_grace(current, row)
                    if not is_invalid_grant(error) or previous is None:
                        raise
                    log.warning("Xero refused the stored refresh token of '%s' (%s, invalid_grant); trying "
                                "the previous one (%s) once, still inside Xero's 30-minute grace window.",
                                self.connection_key, fingerprint(current.refresh_token),
                                fingerprint(previous.refresh_token))
                    used = previous
                    new = fetch(previous)
                rotated_at = time.time()
                if not new.refresh_token:
                    new.refresh_token = used.refresh_token  # client_credentials grants have none
                if used is current:
                    new.previous_refresh_token = current.refresh_token
                    new.previous_rotated_at = rotated_at if current.refresh_token else None
                else:
                    # The grace window of the token that worked started at its first rotation.
                    new.previous_refresh_token = used.refresh_token
                    new.previous_rotated_at = used.previous_rotated_at
                new.client_id = new.client_id or current.client_id
                replaced = current.refresh_token
                self._write(conn, new, STATUS_ACTIVE)
        except SQLAlchemyError as error:
            if new is None:  # Xero was not asked, or refused: nothing rotated, nothing to keep
                raise
            # Xero rotated; the old refresh token dies 30 minutes from now. Never lose the new one.
            self._keep_rotated(new, replaced, error)
        except XeroAuthError as error:
            if is_invalid_grant(error):
                # Outside the rolled-back transaction, so the verdict sticks.
                self.mark(STATUS_RECONNECT)
                log.error("Xero refused the refresh token of '%s' (invalid_grant): its organisations "
                          "need reconnecting.", self.connection_key)
            raise
        log.info(
            "Refreshed the Xero access token for '%s' (refresh token %s -> %s).",
            self.connection_key,
            fingerprint(used.refresh_token),
            fingerprint(new.refresh_token),
        )
        return new, True

    # -- a rotation the database could not take -----------------------------------------------
    def rescue_path(self) -> Path:
        folder = self._rescue_dir or (current().data_path() / "token-rescue")
        return folder / f"{hashlib.sha256(self.connection_key.encode()).hexdigest()[:32]}.token"

    def _keep_rotated(self, new: TokenSet, replaced: str | None, error: SQLAlchemyError) -> None:
        """Keep a rotated set that its transaction could not commit: on disk first, then in the database.

        The file (encrypted like the row, readable by its owner only) is what the next refresh or
        load of this connection, in any process sharing the data directory, recovers from if the
        database stays away; it is removed once the database holds the set.
        """
        path = self.rescue_path()
        kept = False
        try:
            self._write_rescue(path, new, replaced)
            kept = True
        except OSError as problem:
            log.error("Could not keep the rotated Xero token set of '%s' in %s either: %s", self.connection_key,
                      path, problem)
        last: Exception = error
        for delay in RESCUE_RETRY_DELAYS:
            time.sleep(delay)
            try:
                if kept:
                    self.recover()
                else:
                    self.save(new)
            except SQLAlchemyError as again:
                last = again
                continue
            log.warning("The database failed while saving the rotated Xero token set of '%s' (%s); it was saved "
                        "again on a fresh connection.", self.connection_key, type(error).__name__)
            return
        log.error("The rotated Xero token set of '%s' (refresh token %s) could not be saved to the IntoAEC "
                  "database (%s). %s", self.connection_key, fingerprint(new.refresh_token), last,
                  f"It is kept encrypted in {path}, and the next refresh of this connection saves it: do not delete "
                  "that file." if kept else "It is lost: this connection will need reconnecting once Xero's "
                  "30-minute grace for the previous refresh token has passed.")

    def _write_rescue(self, path: Path, tokens: TokenSet, replaced: str | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _announce_secrets(tokens)
        body = json.dumps({
            "connection_key": self.connection_key,
            "encrypted": self.cipher.enabled,
            "token": base64.b64encode(self.cipher.encrypt(tokens.to_json())).decode(),
            # The refresh token the set replaces: it is only saved over that one, never over a newer set.
            "replaces": fingerprint(replaced) if replaced else None,
        }).encode()
        staging = path.with_name(path.name + ".new")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)

    def recover(self) -> bool:
        """Save a kept rotated set into the database if the stored set is still the one it replaced;
        then drop the file. Returns whether it was saved. Database errors propagate (the file stays)."""
        path = self.rescue_path()
        try:
            kept = json.loads(path.read_bytes())
        except FileNotFoundError:
            return False
        rescued = TokenSet.from_json(self.cipher.decrypt(base64.b64decode(kept["token"]), kept["encrypted"]))
        _announce_secrets(rescued)
        with self.engine.begin() as conn:
            row = self._row(conn, lock=True)
            stored = self._decode(row, conn) if row is not None else None
            successor = stored is not None and kept.get("replaces") == fingerprint(stored.refresh_token)
            if successor:
                self._write(conn, rescued, STATUS_ACTIVE)
        path.unlink(missing_ok=True)
        if successor:
            log.warning("Saved the rotated Xero token set of '%s' (refresh token %s) kept in %s after the database "
                        "failed.", self.connection_key, fingerprint(rescued.refresh_token), path)
        else:
            log.info("Dropped the kept Xero token set of '%s': the database already holds a newer one.",
                     self.connection_key)
        return successor

    @staticmethod
    def _previous_in_grace(current: TokenSet, row) -> TokenSet | None:
        """The stored set with its previous refresh token in front, if Xero may still accept that."""
        previous = current.previous_refresh_token
        if not previous or previous == current.refresh_token:
            return None
        rotated_at = current.previous_rotated_at
        if rotated_at is None:  # sets stored before the field existed
            refreshed_at = as_utc(row["refreshed_at"])
            if refreshed_at is not None:
                rotated_at = refreshed_at.timestamp()
        if rotated_at is None or time.time() - rotated_at > PREVIOUS_TOKEN_GRACE_SECONDS:
            return None
        return replace(current, refresh_token=previous, previous_refresh_token=None,
                       previous_rotated_at=rotated_at)

    # -- internals ---------------------------------------------------------------------------
    def _row(self, conn: Connection, lock: bool):
        query = select(xero_tokens).where(xero_tokens.c.connection_key == self.connection_key)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return conn.execute(query).mappings().first()

    def check_writable(self) -> None:
        """Refuse to store tokens that could not be encrypted; callable before anything is spent (a refresh)."""
        if self.cipher.enabled or plaintext_allowed():
            return
        raise ConfigurationError(
            f"Refusing to store the Xero tokens of '{self.connection_key}' unencrypted: no Fernet key is set, so "
            "give every Airflow component and the CLI the same one as AIRFLOW__CORE__FERNET_KEY (or "
            "INTOAEC_FERNET_KEY, or [core] fernet_key in airflow.cfg), e.g. from `python -c \"from "
            "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"`, or set "
            f"{ALLOW_PLAINTEXT_ENV}=1 for a throwaway demo."
        )

    def _decode(self, row, conn: Connection | None = None) -> TokenSet:
        """The row's token set; a plaintext row is encrypted in place when this process has a key.

        ``conn`` is the caller's open transaction, if it holds one (the refresh's row lock).
        """
        tokens = TokenSet.from_json(self.cipher.decrypt(row["token"], row["encrypted"]))
        _announce_secrets(tokens)
        if not row["encrypted"]:
            self._encrypt_plaintext_row(row, conn)
        return tokens

    def _encrypt_plaintext_row(self, row, conn: Connection | None) -> None:
        if not self.cipher.enabled:
            log.warning("The Xero tokens of '%s' are stored unencrypted: set a Fernet key "
                        "(AIRFLOW__CORE__FERNET_KEY) and they are encrypted the next time they are read.",
                        self.connection_key)
            return
        update = (
            xero_tokens.update()
            .where(xero_tokens.c.connection_key == self.connection_key,
                   xero_tokens.c.encrypted.is_(False), xero_tokens.c.token == row["token"])
            .values(token=self.cipher.encrypt(bytes(row["token"])), encrypted=True)
        )
        # Only the row as read: if another process rewrote it meanwhile, theirs stands.
        if conn is not None:
            rewritten = conn.execute(update).rowcount
        else:
            with self.engine.begin() as own:
                rewritten = own.execute(update).rowcount
        if rewritten:
            log.warning("The Xero tokens of '%s' were stored unencrypted; encrypted them in place with this "
                        "process's Fernet key.", self.connection_key)

    def _write(self, conn: Connection, tokens: TokenSet, status: str) -> None:
        self.check_writable()
        if not self.cipher.enabled:
            log.warning("Storing the Xero tokens of '%s' unencrypted because %s=1: use that only for a "
                        "throwaway demo.", self.connection_key, ALLOW_PLAINTEXT_ENV)
        _announce_secrets(tokens)
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

"""Firms that connect their own Xero from IntoAEC: one Xero app, a grant per firm.

IntoAEC's web app starts a firm's sign-in through the connect API; the firm's accountant signs in
at Xero and approves; Xero sends the browser back to the API's callback, which stores the firm's
grant and records its organisations, then sends the browser back to IntoAEC. This module is that
flow without Airflow, so it is tested on its own and the API only routes and authenticates.

- A firm's grant is an ordinary token-store row keyed ``firm:<firm_id>``: the same single-writer
  refresh, the same sync, keep-alive and health as a grant stored for an Airflow connection. Its
  settings are the Xero app's connection (``xero_default``: client id and secret, URLs, scopes)
  under that key. Airflow connection ids cannot hold a colon, so no connection can collide.
- ``intoaec_firm_tenants`` maps firms to organisations for IntoAEC to join; each row's status is
  kept in step with ``xero_tenants`` by :mod:`intoaec_xero.tenants`.
- A sign-in in progress is a row of ``intoaec_connect_sessions``. The ``state`` Xero carries is the
  row's id with an HMAC over (id, firm, return URL, expiry), so the callback trusts only what the
  server wrote, any API-server worker can finish it, and claiming the row (an UPDATE that only one
  caller wins) makes it single-use. The PKCE verifier is stored encrypted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Engine, select, update

from intoaec_xero import oauth
from intoaec_xero import tenants as tenants_module
from intoaec_xero.db import as_utc, upsert
from intoaec_xero.errors import ConfigurationError, IntoAECXeroError, XeroAuthError, XeroUnavailable
from intoaec_xero.schema import intoaec_connect_sessions, intoaec_firm_tenants, xero_tenants, xero_tokens
from intoaec_xero.settings import XeroSettings
from intoaec_xero.tenants import TenantStatus, connection_rows, parse_connection_date, record_connections
from intoaec_xero.tokens import STATUS_ACTIVE, TokenSet, TokenStore

log = logging.getLogger(__name__)

FIRM_KEY_PREFIX = tenants_module.FIRM_KEY_PREFIX
# IntoAEC's firm ids: letters, digits, '_', '-', '.'; they name a token-store row and a URL segment.
FIRM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
SESSION_SECONDS = 900  # Xero's codes live 5 minutes; an accountant signing in may take longer
SYNC_ENABLED, SYNC_DISABLED = "Sync Enabled", "Sync Disabled"
FUTURE_ACCESS_SAVED, FUTURE_ACCESS_NOT_SAVED = "Future Access Saved", "Future Access Not Saved"


class ConnectError(IntoAECXeroError):
    """A connect-API refusal: a stable ``code`` IntoAEC's app can branch on, a sentence, an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def grant_key(firm_id: str) -> str:
    return FIRM_KEY_PREFIX + check_firm_id(firm_id)


def firm_of(connection_key: str | None) -> str | None:
    """The firm whose grant ``connection_key`` is, or None for an Airflow connection's grant."""
    if connection_key and connection_key.startswith(FIRM_KEY_PREFIX):
        return connection_key[len(FIRM_KEY_PREFIX):]
    return None


def check_firm_id(firm_id: str) -> str:
    if not isinstance(firm_id, str) or not FIRM_ID.match(firm_id):
        raise ConnectError("invalid_firm_id", "A firm id is 1 to 63 letters, digits, '_', '-' or '.', starting "
                                              "with a letter or digit.", 400)
    return firm_id


def firm_settings(app: XeroSettings, firm_id: str) -> XeroSettings:
    """The Xero app's settings for one firm's grant: every organisation the firm approved is synced
    (the app connection's tenant filter is the data team's choice for its own grant, not the firm's)."""
    return replace(app, connection_key=grant_key(firm_id), tenant_filter=())


def firm_ids(engine: Engine) -> list[str]:
    """Every firm holding a grant, in order: what ``xero_sync`` and ``xero_keepalive`` cover."""
    with engine.connect() as conn:
        keys = conn.execute(select(xero_tokens.c.connection_key)
                            .where(xero_tokens.c.connection_key.startswith(FIRM_KEY_PREFIX, autoescape=True))
                            .order_by(xero_tokens.c.connection_key)).scalars().all()
    return [key[len(FIRM_KEY_PREFIX):] for key in keys]


# -- return URLs ------------------------------------------------------------------------------

def return_url_allowed(url: str, prefixes: Sequence[str]) -> bool:
    """Whether ``url`` starts with an allow-listed prefix, at a boundary of the URL.

    A prefix ``https://app.intoaec.com`` must not let ``https://app.intoaec.com.evil.test/`` through,
    so the character after a prefix that does not end in '/' must end its host or path segment.
    """
    if not isinstance(url, str) or len(url) > 2000:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return False
    if any(ch in url for ch in "\\\r\n\t ") or parts.fragment:
        return False
    for prefix in prefixes:
        if not isinstance(prefix, str) or not prefix or not url.startswith(prefix):
            continue
        rest = url[len(prefix):]
        if prefix.endswith("/") or not rest or rest[0] in "/?":
            return True
    return False


def with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


# -- sessions ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StartedSession:
    session_id: str
    authorize_url: str
    expires_at: datetime

    def __repr__(self) -> str:  # the URL carries the state
        return f"StartedSession({self.session_id!r}, expires_at={self.expires_at.isoformat()})"


@dataclass(frozen=True)
class ClaimedSession:
    session_id: str
    firm_id: str
    return_url: str
    redirect_uri: str
    verifier: str


class _Seal:
    """The API server's secret, split into a signing key (state) and an encryption key (verifier)."""

    def __init__(self, secret: bytes):
        if not secret:
            raise ConfigurationError("The API server has no [api] secret_key to sign Xero sign-ins with.")
        self._sign = hashlib.sha256(b"intoaec-connect-state\0" + secret).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"intoaec-connect-verifier\0"
                                                                      + secret).digest()))

    def signature(self, session_id: str, firm_id: str, return_url: str, expires_at: datetime) -> str:
        message = "\0".join((session_id, firm_id, return_url, str(int(expires_at.timestamp())))).encode()
        return base64.urlsafe_b64encode(hmac.new(self._sign, message, hashlib.sha256).digest()).rstrip(b"=").decode()

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode())

    def decrypt(self, value: bytes) -> str:
        return self._fernet.decrypt(bytes(value)).decode()


def start_session(engine: Engine, settings: XeroSettings, firm_id: str, return_url: str, redirect_uri: str,
                  secret: bytes, *, now: datetime | None = None) -> StartedSession:
    """Record a firm's sign-in and return where to send its browser (Xero's authorize URL)."""
    check_firm_id(firm_id)
    seal = _Seal(secret)
    now = now or datetime.now(UTC)
    expires_at = (now + timedelta(seconds=SESSION_SECONDS)).replace(microsecond=0)
    session_id = secrets.token_urlsafe(24)
    state = f"{session_id}.{seal.signature(session_id, firm_id, return_url, expires_at)}"
    auth = oauth.start_authorization(settings, redirect_uri, state=state)
    forget_old_sessions(engine, now=now)
    with engine.begin() as conn:
        conn.execute(intoaec_connect_sessions.insert().values(
            session_id=session_id, firm_id=firm_id, return_url=return_url, redirect_uri=redirect_uri,
            verifier=seal.encrypt(auth.code_verifier), created_at=now, expires_at=expires_at))
    log.info("Firm %s started a Xero sign-in (session %s, until %s).", firm_id, session_id[:8],
             expires_at.isoformat())
    return StartedSession(session_id, auth.url, expires_at)


class SessionRefused(ConnectError):
    """A callback whose state cannot be used; ``return_url`` is set when the browser may be sent back."""

    def __init__(self, code: str, message: str, return_url: str | None = None):
        super().__init__(code, message, 400)
        self.return_url = return_url


def claim_session(engine: Engine, state: str | None, secret: bytes, *,
                  now: datetime | None = None) -> ClaimedSession:
    """The sign-in ``state`` names, checked and used up: only the first callback with it gets here.

    A state that does not verify is refused without a return URL (nothing it says can be trusted);
    an expired or already used one is refused with the session's own, allow-listed return URL.
    """
    seal = _Seal(secret)
    now = now or datetime.now(UTC)
    session_id, _, signature = (state or "").partition(".")
    if not session_id or not signature or len(session_id) > 64:
        raise SessionRefused("invalid_state", "This sign-in answer carries no state this server issued; it was "
                                              "refused. Start again from IntoAEC's Configure Xero page.")
    with engine.begin() as conn:
        row = conn.execute(select(intoaec_connect_sessions)
                           .where(intoaec_connect_sessions.c.session_id == session_id)).mappings().first()
        expected = row and seal.signature(row["session_id"], row["firm_id"], row["return_url"],
                                          as_utc(row["expires_at"]))
        if row is None or not hmac.compare_digest(str(expected).encode(), signature.encode()):
            raise SessionRefused("invalid_state", "This sign-in answer's state was not issued by this server or "
                                                  "was altered; it was refused. Start again from IntoAEC's "
                                                  "Configure Xero page.")
        if row["used_at"] is not None:
            raise SessionRefused("session_used", "This Xero sign-in was already finished; start a new one to "
                                                 "connect again.", row["return_url"])
        if as_utc(row["expires_at"]) <= now:
            raise SessionRefused("session_expired", f"This Xero sign-in started more than {SESSION_SECONDS // 60} "
                                                    "minutes ago and expired; start again.", row["return_url"])
        claimed = conn.execute(update(intoaec_connect_sessions)
                               .where(intoaec_connect_sessions.c.session_id == session_id,
                                      intoaec_connect_sessions.c.used_at.is_(None))
                               .values(used_at=now)).rowcount
    if claimed != 1:
        raise SessionRefused("session_used", "This Xero sign-in was already finished; start a new one to "
                                             "connect again.", row["return_url"])
    try:
        verifier = seal.decrypt(row["verifier"])
    except InvalidToken:
        raise SessionRefused("invalid_state", "This sign-in was started under another API-server secret; start "
                                              "again.", row["return_url"]) from None
    return ClaimedSession(row["session_id"], row["firm_id"], row["return_url"], row["redirect_uri"], verifier)


def record_outcome(engine: Engine, session_id: str, outcome: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(intoaec_connect_sessions).where(intoaec_connect_sessions.c.session_id == session_id)
                     .values(outcome=outcome[:64]))


def forget_old_sessions(engine: Engine, *, now: datetime | None = None, keep: timedelta = timedelta(days=7)) -> int:
    """Drop sessions that ended (or expired) over a week ago: nothing in them is needed after that."""
    cutoff = (now or datetime.now(UTC)) - keep
    with engine.begin() as conn:
        return conn.execute(intoaec_connect_sessions.delete()
                            .where(intoaec_connect_sessions.c.expires_at < cutoff)).rowcount


# -- the callback -----------------------------------------------------------------------------

@dataclass
class Connected:
    firm_id: str
    organisations: list[dict[str, Any]]  # tenant_id, tenant_name of each organisation taken
    refused: list[str] = field(default_factory=list)  # sentences, one per organisation not taken


def finish_sign_in(engine: Engine, settings: XeroSettings, claimed: ClaimedSession, callback_url: str, *,
                   allow_sharing: bool, exchange: Callable[[str], TokenSet],
                   client_for: Callable[[TokenStore], Any], cipher=None) -> Connected:
    """Exchange the code, store the firm's grant, record what it reaches and map it to the firm.

    ``exchange`` turns the code into tokens (the hook's HTTP session); ``client_for`` builds a
    client on the firm's token store. An organisation another firm (or an Airflow connection)
    already syncs is refused unless ``allow_sharing``; if every organisation is refused the grant is
    not kept, so nothing of this sign-in is synced.
    """
    query = dict(_query(callback_url))
    if query.get("error"):
        code = "access_denied" if query["error"] == "access_denied" else "xero_refused"
        raise ConnectError(code, "The sign-in at Xero was not approved." if code == "access_denied"
                           else f"Xero ended the sign-in with '{query['error']}'.")
    if not query.get("code"):
        raise ConnectError("xero_refused", "Xero's answer carries no authorization code.")
    tokens = _exchange(exchange, query["code"])
    firm_id = claimed.firm_id
    firm = firm_settings(settings, firm_id)
    store = TokenStore(engine, firm.connection_key, cipher) if cipher is not None \
        else TokenStore(engine, firm.connection_key)
    previous = store.load()
    store.save(tokens)
    try:
        connections = client_for(store).connections()
    except IntoAECXeroError as error:
        _restore(store, previous)
        raise ConnectError("xero_unavailable" if isinstance(error, XeroUnavailable) else "xero_refused",
                           f"Xero did not list the organisations this sign-in reaches: {error}", 502) from None
    rows = connection_rows(firm, connections, datetime.now(UTC))
    if not rows:
        _restore(store, previous)
        raise ConnectError("no_organisation", "The sign-in approved no Xero organisation; approve at least one.")
    holders = _holders(engine, [r["tenant_id"] for r in rows], firm.connection_key)
    refused = {r["tenant_id"]: _held_message(r["tenant_name"], holders[r["tenant_id"]])
               for r in rows if r["tenant_id"] in holders and not allow_sharing}
    if len(refused) == len(rows):
        _restore(store, previous)
        raise ConnectError("organisation_already_connected", " ".join(refused.values()), 409)
    record_connections(engine, firm, connections)
    taken = [r for r in rows if r["tenant_id"] not in refused]
    now = datetime.now(UTC)
    with engine.begin() as conn:
        upsert(conn, intoaec_firm_tenants, [
            {"firm_id": firm_id, "tenant_id": r["tenant_id"], "tenant_name": r["tenant_name"],
             "connection_id": r["connection_id"], "status": TenantStatus.CONNECTED.value,
             "connected_at": r["connected_at"], "updated_at": now}
            for r in taken])
        # Organisations the firm had that this consent no longer reaches were disconnected at Xero.
        conn.execute(update(intoaec_firm_tenants)
                     .where(intoaec_firm_tenants.c.firm_id == firm_id,
                            intoaec_firm_tenants.c.tenant_id.not_in([r["tenant_id"] for r in rows]))
                     .values(status=TenantStatus.DISCONNECTED.value, updated_at=now))
    for message in refused.values():
        log.warning("Firm %s: %s", firm_id, message)
    log.info("Firm %s connected %d Xero organisation(s): %s.", firm_id, len(taken),
             ", ".join(r["tenant_name"] for r in taken))
    return Connected(firm_id, [{"tenant_id": r["tenant_id"], "tenant_name": r["tenant_name"]} for r in taken],
                     list(refused.values()))


def _exchange(exchange: Callable[[str], TokenSet], code: str) -> TokenSet:
    try:
        return exchange(code)
    except XeroUnavailable as error:
        raise ConnectError("xero_unavailable", f"Xero could not be reached to finish the sign-in: {error}", 502) \
            from None
    except (XeroAuthError, ConfigurationError) as error:
        raise ConnectError("xero_refused", f"Xero refused to finish the sign-in: {error}", 502) from None


def _restore(store: TokenStore, previous: TokenSet | None) -> None:
    """Put back what the firm held before this sign-in (or nothing), so a refused one changes nothing."""
    if previous is None:
        with store.engine.begin() as conn:
            conn.execute(xero_tokens.delete().where(xero_tokens.c.connection_key == store.connection_key))
    else:
        store.save(previous)


def _holders(engine: Engine, tenant_ids: list[str], connection_key: str) -> dict[str, str]:
    """Organisations another grant holds (and has not lost): tenant id → the holder's key."""
    with engine.connect() as conn:
        rows = conn.execute(select(xero_tenants.c.tenant_id, xero_tenants.c.connection_key)
                            .where(xero_tenants.c.tenant_id.in_(tenant_ids),
                                   xero_tenants.c.connection_key != connection_key,
                                   xero_tenants.c.connection_status != TenantStatus.DISCONNECTED.value)).all()
    return {r.tenant_id: r.connection_key for r in rows}


def _held_message(tenant_name: str, holder: str) -> str:
    other = firm_of(holder)
    by = f"another IntoAEC firm ({other})" if other else f"the data team's Xero connection '{holder}'"
    return (f"The Xero organisation '{tenant_name}' is already connected to IntoAEC by {by}; it can be connected "
            "here only once it is disconnected there, or if the data team allows organisations to be shared.")


def _query(url: str) -> Iterable[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(urlsplit(url).query)


# -- what a firm and the data team read -------------------------------------------------------

@dataclass
class FirmOrganisation:
    firm_id: str
    tenant_id: str
    tenant_name: str
    status: str
    sync_enabled: bool
    future_access_saved: bool
    connected_at: datetime | None
    connection_id: str | None = None
    shared_with: str | None = None  # the grant that syncs it, when that is not this firm's
    last_successful_sync: str | None = None
    health: str | None = None
    health_reasons: list[str] = field(default_factory=list)
    backfill: dict[str, Any] | None = None

    def to_api(self) -> dict[str, Any]:
        """The connect API's organisation, in the help page's words."""
        return {
            "tenant_id": self.tenant_id,
            "tenant_name": self.tenant_name,
            "status": self.status,
            "sync": SYNC_ENABLED if self.sync_enabled else SYNC_DISABLED,
            "future_access": FUTURE_ACCESS_SAVED if self.future_access_saved else FUTURE_ACCESS_NOT_SAVED,
            "sync_enabled": self.sync_enabled,
            "future_access_saved": self.future_access_saved,
            "connected_at": _iso(self.connected_at),
            "last_successful_sync": self.last_successful_sync,
            "health": self.health,
            "health_reasons": list(self.health_reasons),
            "backfill": self.backfill,
        }


@dataclass
class Firm:
    firm_id: str
    grant_status: str | None  # active, reconnect_needed, … ; None: no grant stored
    organisations: list[FirmOrganisation]

    def to_api(self) -> dict[str, Any]:
        return {"firm_id": self.firm_id, "organisations": [o.to_api() for o in self.organisations]}


def firms(engine: Engine, firm_ids: Sequence[str] | None = None, *, with_health: bool = True) -> list[Firm]:
    """Firms with their organisations (all firms, or those named), health from the sync's own records.

    Each organisation's status is the firm's row's (see the module docstring); Sync Enabled and
    Future Access Saved hold only while it is Connected, and future access needs a working grant.
    """
    with engine.connect() as conn:
        query = (select(intoaec_firm_tenants, xero_tenants.c.tenant_name.label("xero_name"),
                        xero_tenants.c.connection_key, xero_tenants.c.connection_status,
                        xero_tenants.c.sync_enabled.label("xero_sync_enabled"))
                 .join(xero_tenants, xero_tenants.c.tenant_id == intoaec_firm_tenants.c.tenant_id, isouter=True)
                 .order_by(intoaec_firm_tenants.c.firm_id, intoaec_firm_tenants.c.tenant_name))
        if firm_ids is not None:
            query = query.where(intoaec_firm_tenants.c.firm_id.in_(list(firm_ids)))
        rows = conn.execute(query).mappings().all()
        grants = dict(conn.execute(select(xero_tokens.c.connection_key, xero_tokens.c.status)
                                   .where(xero_tokens.c.connection_key.startswith(FIRM_KEY_PREFIX,
                                                                                  autoescape=True))).all())
    wanted = list(firm_ids) if firm_ids is not None else sorted(
        {r["firm_id"] for r in rows} | {k[len(FIRM_KEY_PREFIX):] for k in grants})
    health = _health(engine, {r["tenant_id"] for r in rows}) if with_health and rows else {}
    by_firm: dict[str, list[FirmOrganisation]] = {firm_id: [] for firm_id in wanted}
    for row in rows:
        key = FIRM_KEY_PREFIX + row["firm_id"]
        grant = grants.get(key)
        connected = row["status"] == TenantStatus.CONNECTED.value
        tenant_health = health.get(row["tenant_id"])
        holder = row["connection_key"]
        by_firm.setdefault(row["firm_id"], []).append(FirmOrganisation(
            firm_id=row["firm_id"],
            tenant_id=row["tenant_id"],
            tenant_name=row["xero_name"] or row["tenant_name"] or row["tenant_id"],
            status=row["status"],
            sync_enabled=connected and bool(row["sync_enabled"]),
            future_access_saved=connected and grant == STATUS_ACTIVE,
            connected_at=parse_connection_date(row["connected_at"]),
            connection_id=row["connection_id"],
            shared_with=holder if holder and holder != key else None,
            last_successful_sync=tenant_health.last_success_at if tenant_health else None,
            health=tenant_health.verdict if tenant_health else None,
            health_reasons=list(tenant_health.reasons) if tenant_health else [],
            backfill=tenant_health.backfill if tenant_health else None,
        ))
    return [Firm(firm_id, grants.get(FIRM_KEY_PREFIX + firm_id), by_firm.get(firm_id, [])) for firm_id in wanted]


def firm(engine: Engine, firm_id: str) -> Firm:
    return firms(engine, [check_firm_id(firm_id)])[0]


def _health(engine: Engine, tenant_ids: set[str]) -> dict[str, Any]:
    from intoaec_xero.health import tenant_health

    return {h.tenant_id: h for h in tenant_health(engine, tenant_ids=tenant_ids)}


def owned(engine: Engine, firm_id: str, tenant_id: str) -> FirmOrganisation:
    """The firm's organisation, or 404: a firm never learns whether another firm's organisation exists."""
    for org in firm(engine, firm_id).organisations:
        if org.tenant_id == tenant_id:
            return org
    raise ConnectError("organisation_not_found", f"Firm {firm_id} has no Xero organisation {tenant_id!r}.", 404)


def set_sync(engine: Engine, firm_id: str, tenant_id: str, enabled: bool) -> FirmOrganisation:
    """The firm's Sync Enabled toggle: the next ``xero_sync`` run takes or skips the organisation."""
    org = owned(engine, firm_id, tenant_id)
    if enabled and org.status != TenantStatus.CONNECTED.value:
        raise ConnectError("organisation_not_connected", f"'{org.tenant_name}' is {org.status}: connect it again "
                                                         "before enabling its sync.", 409)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(update(intoaec_firm_tenants)
                     .where(intoaec_firm_tenants.c.firm_id == firm_id, intoaec_firm_tenants.c.tenant_id == tenant_id)
                     .values(sync_enabled=enabled, updated_at=now))
        conn.execute(update(xero_tenants)
                     .where(xero_tenants.c.tenant_id == tenant_id,
                            xero_tenants.c.connection_key == grant_key(firm_id),
                            xero_tenants.c.connection_status == TenantStatus.CONNECTED.value)
                     .values(sync_enabled=enabled, updated_at=now))
    log.info("Firm %s turned the sync of %s %s.", firm_id, org.tenant_name, "on" if enabled else "off")
    return owned(engine, firm_id, tenant_id)


def disconnect(engine: Engine, firm_id: str, tenant_id: str, delete_at_xero: Callable[[str], None]) -> FirmOrganisation:
    """Disconnect one of the firm's organisations: Xero's DELETE /connections/{id} with the firm's grant,
    then Disconnected here (its synced data stays). ``delete_at_xero`` takes the connection id."""
    org = owned(engine, firm_id, tenant_id)
    if org.connection_id and org.status != TenantStatus.DISCONNECTED.value:
        delete_at_xero(org.connection_id)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(update(intoaec_firm_tenants)
                     .where(intoaec_firm_tenants.c.firm_id == firm_id, intoaec_firm_tenants.c.tenant_id == tenant_id)
                     .values(status=TenantStatus.DISCONNECTED.value, updated_at=now))
        conn.execute(update(xero_tenants)
                     .where(xero_tenants.c.tenant_id == tenant_id, xero_tenants.c.connection_key == grant_key(firm_id))
                     .values(connection_status=TenantStatus.DISCONNECTED.value, sync_enabled=False, updated_at=now))
    log.info("Firm %s disconnected the Xero organisation %s (%s).", firm_id, org.tenant_name, tenant_id)
    return owned(engine, firm_id, tenant_id)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None

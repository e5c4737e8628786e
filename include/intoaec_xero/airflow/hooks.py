"""``XeroHook``: the ``xero`` connection type, as Airflow's UI, tasks and the plugin use it.

It builds on ``HttpHook`` so the connection's HTTP settings (proxies, TLS verification,
keep-alive) and client authentication apply to every call this package makes to Xero's
identity service, and so the connection form's Test button has something real to run. The
work itself stays in the Airflow-free package: the hook only turns a connection into
settings, a token store and a client.

Importing this module makes Airflow's secrets masker aware of every token the store reads or
writes in this process, so a token can never surface in a task log or an API-server log.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

from airflow.providers.http.hooks.http import HttpHook
from requests import Session
from sqlalchemy import Engine

from intoaec_xero import db, environment, firms, oauth, tenants
from intoaec_xero.airflow.connections import (
    DB_CONN_ID,
    XERO_CONN_ID,
    db_url,
    form_under_test,
    get_connection,
    same_connection,
    testing_saved,
    xero_settings,
)
from intoaec_xero.client import XeroClient, build_client
from intoaec_xero.errors import ConfigurationError, ConnectionMissing, IntoAECXeroError, XeroAuthError
from intoaec_xero.settings import XERO_EXTRA, XeroSettings
from intoaec_xero.tokens import STATUS_RECONNECT, TokenCipher, TokenStore, register_secret_sink

# Connection extras that configure Xero, not HTTP: HttpHook would otherwise send them as headers.
XERO_EXTRA_KEYS = frozenset(XERO_EXTRA)


def _mask(value: str) -> None:
    """Tell both of Airflow's maskers: the Task SDK's (task logs) and the core one (API server, CLI)."""
    from airflow.sdk.log import mask_secret

    mask_secret(value)
    try:
        from airflow._shared.secrets_masker import mask_secret as mask_in_core
    except ImportError:  # a worker-only install without airflow-core
        return
    mask_in_core(value)


register_secret_sink(_mask)


def token_cipher() -> TokenCipher:
    """The store's cipher; Airflow's configuration also covers keys given as ``fernet_key_cmd`` / ``_secret``."""
    cipher = TokenCipher.from_environment()
    if cipher.enabled:
        return cipher
    from airflow.configuration import conf

    return TokenCipher(conf.get("core", "fernet_key", fallback="") or None)


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def engine_for(db_conn_id: str = DB_CONN_ID) -> Engine:
    """The IntoAEC database: the ``intoaec_db`` connection, else INTOAEC_DB_URL.

    One engine per URL and process, brought up to the current schema once: the API server
    serves the Xero page for weeks, and may be the first to touch a fresh database.
    """
    try:
        url = db_url(get_connection(db_conn_id))
    except ConfigurationError:
        url = environment.current().db_url or ""
        if not url:
            raise
    with _engines_lock:
        if url not in _engines:
            engine = db.create_db_engine(url)
            db.upgrade(engine)
            _engines[url] = engine
        return _engines[url]


class XeroHook(HttpHook):
    """One Xero app grant (one ``xero`` connection) and the organisations it reaches."""

    conn_name_attr = "xero_conn_id"
    default_conn_name = XERO_CONN_ID
    conn_type = "xero"
    hook_name = "Xero"

    def __init__(self, xero_conn_id: str = default_conn_name, db_conn_id: str = DB_CONN_ID,
                 firm_id: str | None = None, **kwargs: Any):
        super().__init__(method="POST", http_conn_id=xero_conn_id, **kwargs)
        self.xero_conn_id = xero_conn_id
        self.db_conn_id = db_conn_id
        # A firm's grant: the connection's Xero app, the grant stored for the firm (intoaec_xero.firms).
        self.firm_id = firm_id

    # -- building blocks ---------------------------------------------------------------------
    @cached_property
    def settings(self) -> XeroSettings:
        settings = xero_settings(get_connection(self.xero_conn_id), self.xero_conn_id)
        return firms.firm_settings(settings, self.firm_id) if self.firm_id else settings

    @property
    def grant_name(self) -> str:
        """The grant as logs and errors name it: the connection id, or the firm."""
        return f"firm {self.firm_id}" if self.firm_id else f"'{self.xero_conn_id}'"

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None) -> Session:
        """A session for Xero's identity service: Basic client auth, the connection's HTTP settings."""
        session = super().get_conn(headers, extra_options)
        for key in list(session.headers):
            if key in XERO_EXTRA_KEYS or key.startswith("extra__"):
                del session.headers[key]
        return session

    @cached_property
    def engine(self):
        return engine_for(self.db_conn_id)

    def get_token_store(self) -> TokenStore:
        """The grant stored under this connection's own id: never another connection's."""
        return TokenStore(self.engine, self.settings.connection_key, token_cipher())

    def get_client(self) -> XeroClient:
        return build_client(self.settings, self.get_token_store())

    def client_for(self, settings: XeroSettings) -> XeroClient:
        """A client for another grant on this connection's app (a firm's: ``firms.firm_settings``)."""
        return build_client(settings, TokenStore(self.engine, settings.connection_key, self._cipher))

    @cached_property
    def _cipher(self) -> TokenCipher:
        return token_cipher()

    # -- the connection form's Test button -------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """Say "Connected to N organisations: …", or the one reason why not."""
        saved = self._saved_original()
        if saved is not None:
            return saved.test_connection()
        try:
            settings = self.settings
            problem = oauth.check_client(settings, self.get_conn())
            if problem:
                return False, problem
            if settings.grant_type == "client_credentials":
                tokens = oauth.client_credentials_token(settings, self.get_conn())
                connections = oauth.list_connections(settings, tokens.access_token, self.get_conn())
                if not connections:  # a custom connection is bound to its one organisation; Xero may not list it
                    return True, "Connected to Xero with a custom connection (one organisation)."
                return _connected_message(connections, " (custom connection)")
            return self._test_grant(settings)
        except IntoAECXeroError as error:
            return False, str(error)

    def _saved_original(self) -> XeroHook | None:
        """The saved connection that Admin ▸ Connections' Test button is testing, when this is an
        unchanged copy of it under Airflow's temporary id; otherwise None (see airflow/test_button.py)."""
        saved_id = testing_saved.get()
        if not saved_id or saved_id == self.xero_conn_id:
            return None
        try:
            if not same_connection(get_connection(self.xero_conn_id), get_connection(saved_id)):
                return None
        except IntoAECXeroError:
            return None
        return XeroHook(xero_conn_id=saved_id, db_conn_id=self.db_conn_id)

    def _test_grant(self, settings: XeroSettings) -> tuple[bool, str]:
        """Use the grant stored under this connection's own id, and only when Airflow holds no form for it.

        A grant is never looked up by client id (which is public) and a form under test never
        reads the stored grant: its URLs are whatever the person testing typed, and the grant's
        tokens must only ever reach the hosts the saved connection names.
        """
        conn_id = self.xero_conn_id
        if form_under_test(conn_id):
            return False, (f"Xero accepts the Client ID and secret; a connection form under test never uses the "
                           f"grant stored for '{conn_id}', so no organisation was checked: the Xero page (Admin > "
                           f"Xero) or `airflow connections test {conn_id}` shows the saved connection's "
                           "organisations.")
        store = self.get_token_store()
        status = store.status()
        if status is None:
            return False, (f"Xero accepts the Client ID and secret, but no grant is stored under the connection id "
                           f"'{conn_id}', so no organisation was checked: connect one on the Xero page (Admin > "
                           "Xero) or with `intoaec-xero connect`; the connection form's Test button runs under a "
                           "temporary id that never holds a grant, so the Xero page or `airflow connections test "
                           "<id>` shows a saved connection's organisations.")
        if status == STATUS_RECONNECT:
            return False, (f"The Xero grant of '{conn_id}' expired or was revoked (invalid_grant): use Reconnect on "
                           "the Xero page (Admin > Xero) or run `intoaec-xero connect`.")
        client = XeroClient(settings, store)
        try:
            connections = client.connections()
        except XeroAuthError as error:
            return False, str(error)
        return _connected_message(connections, "")

    # -- the daily keep-alive ----------------------------------------------------------------
    def keep_alive(self) -> dict[str, Any]:
        """Refresh the grant now, so its refresh token never sits unused for Xero's 60 days.

        Goes through the store's lock like any refresh: a sync running at the same time keeps
        working and picks up the new token set. Also re-reads ``/connections`` so organisations
        disconnected from Xero's side show as such.
        """
        from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

        try:
            try:
                settings = self.settings
            except ConnectionMissing as error:
                if self.xero_conn_id != XERO_CONN_ID:  # named on purpose: a missing one is a mistake
                    raise
                # A fresh install: nobody has set Xero up yet, which is not a failure.
                raise AirflowSkipException(f"Nothing to keep alive yet. {error}") from None
            if settings.grant_type == "client_credentials":
                return {"connection": self.xero_conn_id, "refreshed": False,
                        "reason": "custom connections have no refresh token to keep alive"}
            try:
                client = self.get_client()
            except ConnectionMissing as error:
                if self.db_conn_id != DB_CONN_ID:
                    raise
                # Set up half-way (the Xero connection added, IntoAEC's database not yet): no grant can exist.
                raise AirflowSkipException(f"Nothing to keep alive yet: IntoAEC's database is not set up. {error}") \
                    from None
            if client.store.load() is None:
                if self.firm_id:
                    raise AirflowSkipException(f"Firm {self.firm_id} holds no Xero grant any more (offboarded).")
                raise AirflowSkipException(
                    f"The Xero connection '{self.xero_conn_id}' has no grant yet, so there is nothing to keep "
                    "alive: connect it on the Xero page (Admin ▸ Xero) or with `intoaec-xero connect`.")
            before = client.current_tokens()
            after = client.refresh_tokens(force=True)
            connections = client.connections()
            tenants.record_connections(self.engine, settings, connections)
            info = client.store.info()
        except (XeroAuthError, ConfigurationError) as error:
            raise AirflowFailException(str(error)) from None  # retrying cannot bring a refused grant back
        except IntoAECXeroError as error:
            raise AirflowException(str(error)) from None
        self.log.info("Kept the Xero grant of %s alive: refreshed, %d organisation(s) reachable.",
                      self.grant_name, len(connections))
        return {
            "connection": self.xero_conn_id,
            "firm_id": self.firm_id,
            "refreshed": after.access_token != before.access_token,
            "organisations": sorted(c.get("tenantName") or c["tenantId"] for c in connections),
            "expires_at": info.expires_at.isoformat() if info and info.expires_at else None,
        }


def _connected_message(connections: list[dict[str, Any]], suffix: str) -> tuple[bool, str]:
    names = [c.get("tenantName") or c.get("tenantId", "?") for c in connections
             if c.get("tenantType", "ORGANISATION") == "ORGANISATION"]
    if not names:
        return False, ("The grant works but reaches no organisation" + suffix + ": use Connect to Xero on "
                       "the Xero page and allow access to at least one organisation.")
    noun = "organisation" if len(names) == 1 else "organisations"
    return True, f"Connected to {len(names)} {noun}: {', '.join(names)}{suffix}"

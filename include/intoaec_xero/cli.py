"""``intoaec-xero``: the data team's command line.

Settings come from the same places the DAG reads: the Airflow connections ``xero_default``
and ``intoaec_db`` (or ``--db-url`` / ``INTOAEC_DB_URL`` for the database), found wherever
Airflow keeps them, in Airflow's order: a secrets backend, ``AIRFLOW_CONN_*`` variables, then
the metadata database (Admin ▸ Connections, ``airflow connections add``) of ``AIRFLOW_HOME``.
Every failure ends with one sentence on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import webbrowser
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from intoaec_xero import db, environment, report
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.settings import DEFAULT_CONNECTION_KEY


def _engine(args):
    url = args.db_url or args.runtime.db_url
    if not url:
        from intoaec_xero.airflow.connections import DB_CONN_ID, db_url, get_connection

        url = db_url(get_connection(DB_CONN_ID))
    return db.create_db_engine(url)


def _settings(args):
    from intoaec_xero.airflow.connections import get_connection, xero_settings

    return xero_settings(get_connection(args.conn_id), args.conn_id)


def cmd_db_upgrade(args) -> int:
    engine = _engine(args)
    created = db.upgrade(engine)
    print(f"IntoAEC schema is up to date in {db.describe(engine)}"
          + (f" (created {', '.join(created)})" if created else ""))
    return 0


def _token_store(settings, engine):
    from intoaec_xero.airflow.hooks import token_cipher
    from intoaec_xero.tokens import TokenStore

    return TokenStore(engine, settings.connection_key, token_cipher())


def cmd_connect(args) -> int:
    from intoaec_xero import oauth, tenants
    from intoaec_xero.client import build_client

    settings = _settings(args)
    engine = _engine(args)
    db.upgrade(engine)
    store = _token_store(settings, engine)
    if settings.grant_type == "client_credentials":
        tokens = oauth.client_credentials_token(settings)
    else:
        request = oauth.start_authorization(settings, args.redirect_uri)
        tokens = oauth.finish_authorization(settings, request, _sign_in(args, request))
    oauth.complete_sign_in(settings, store, tokens, build_client(settings, store))
    custom = settings.grant_type == "client_credentials"
    orgs = tenants.organisations(engine, settings.connection_key, store.info(), custom_connection=custom)
    if custom and not orgs:
        print("Connected with a Xero custom connection (one organisation; Xero names it on the first API call).")
        return 0
    print(f"Connected{' with a Xero custom connection' if custom else ''} to {len(orgs)} "
          f"organisation{'s' if len(orgs) != 1 else ''}:")
    for org in orgs:
        flags = [org.status, "Sync Enabled" if org.sync_enabled else "Sync Disabled (tenant filter)",
                 "Future Access Saved" if org.future_access_saved else "No Future Access"]
        print(f"  {org.name}  ({org.tenant_id})  " + " · ".join(flags))
    return 0


def _sign_in(args, request) -> str:
    """The redirect Xero sent back: from the sandbox's scripted user, a local listener, or a paste."""
    if args.sandbox_user:
        from xero_sandbox.testing import sign_in_and_consent

        email, _, password = args.sandbox_user.partition(":")
        return sign_in_and_consent(request.url, email=email, password=password)
    print("Open this address, sign in to Xero and approve access:\n\n  " + request.url + "\n", flush=True)
    if not args.no_browser:
        listener = _CallbackListener.start(request)
        if webbrowser.open(request.url) and listener:
            print(f"Waiting for Xero to send your browser back to {request.redirect_uri} ...", flush=True)
            callback = listener.wait(args.timeout)
            if callback:
                return callback
            print("No answer arrived there.", flush=True)
        if listener:
            listener.stop()
        elif not args.no_browser:
            print(f"(Nothing can listen on {request.redirect_uri} from here, e.g. the Airflow UI holds the "
                  "port: finish in the browser, then copy the address it lands on.)", flush=True)
    return input("Paste the full address your browser was sent to: ")


class _CallbackListener:
    """A one-shot HTTP listener on the loopback redirect URI, so a browser sign-in needs no paste."""

    def __init__(self, server, thread):
        self._server, self._thread = server, thread

    @classmethod
    def start(cls, request):
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer
        from urllib.parse import parse_qs, urlparse

        target = urlparse(request.redirect_uri)
        if target.scheme != "http" or target.hostname not in ("localhost", "127.0.0.1") or not target.port:
            return None
        received = threading.Event()

        class Server(HTTPServer):
            callback_url: str | None
            received: threading.Event

        class Handler(BaseHTTPRequestHandler):
            server: Server

            def do_GET(self):  # noqa: N802 - http.server's name
                query = parse_qs(urlparse(self.path).query)
                if urlparse(self.path).path != target.path or query.get("state", [""])[0] != request.state:
                    self.send_error(400, "Not the sign-in this terminal is waiting for.")
                    return
                self.server.callback_url = f"{target.scheme}://{target.netloc}{self.path}"
                body = b"<!doctype html><p>Done: go back to the terminal. You can close this tab.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                received.set()

            def log_message(self, *args):  # the query carries the authorization code: keep it off stderr
                pass

        try:
            server = Server((target.hostname, target.port), Handler)
        except OSError:
            return None
        server.callback_url = None
        server.received = received
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return cls(server, thread)

    def wait(self, timeout: float) -> str | None:
        self._server.received.wait(timeout)
        self.stop()
        return self._server.callback_url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def cmd_disconnect(args) -> int:
    from intoaec_xero import oauth, tenants
    from intoaec_xero.client import build_client

    settings = _settings(args)
    engine = _engine(args)
    db.upgrade(engine)
    store = _token_store(settings, engine)
    if args.organisation:
        org = tenants.find_organisation(engine, settings.connection_key, args.organisation)
        if org is None or not org.connection_id:
            print(f"intoaec-xero: no organisation {args.organisation!r} is connected through "
                  f"'{settings.connection_key}'.", file=sys.stderr)
            return 1
        oauth.delete_connection(build_client(settings, store), org.connection_id)
        tenants.mark_organisation_disconnected(engine, org.tenant_id)
        print(f"Disconnected {org.name}; the other organisations stay connected.")
        return 0
    tokens = store.load()
    if tokens is None:
        print(f"Xero is not connected through '{settings.connection_key}'; nothing to revoke.")
        return 0
    orgs = [o for o in tenants.organisations(engine, settings.connection_key, None) if not o.disconnected]
    if tokens.refresh_token and settings.grant_type != "client_credentials":
        oauth.revoke(settings, tokens.refresh_token)
    store.forget()
    print(f"Revoked the Xero grant of '{settings.connection_key}'; disconnected "
          + (", ".join(o.name for o in orgs) or "no organisation") + ".")
    return 0


def cmd_sync(args) -> int:
    from intoaec_xero import firms
    from intoaec_xero.client import build_client
    from intoaec_xero.pipeline import run_sync
    from intoaec_xero.rawstore import RawStore
    from intoaec_xero.runtime import raw_dir

    settings = _settings(args)
    engine = _engine(args)
    db.upgrade(engine)
    run_id = args.run_id or "cli__" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    grants = [settings]
    if args.firm:
        wanted = list(dict.fromkeys(firms.check_firm_id(firm_id) for firm_id in args.firm))
        holding = set(firms.firm_ids(engine))
        missing = [firm_id for firm_id in wanted if firm_id not in holding]
        if missing:
            print(f"intoaec-xero: no Xero grant is held for firm {', '.join(missing)} (it has not connected "
                  "from IntoAEC, or was offboarded); nothing was synced.", file=sys.stderr)
            return 1
        grants = [firms.firm_settings(settings, firm_id) for firm_id in wanted]
    failures: list[str] = []
    for grant in grants:
        firm_id = firms.firm_of(grant.connection_key)
        try:
            summary = run_sync(build_client(grant, _token_store(grant, engine)), grant, engine,
                               RawStore(raw_dir(), grant.connection_key), run_id,
                               stream_names=args.stream or None, full=args.full)
        except IntoAECXeroError as error:
            if firm_id is None:
                raise
            failures.append(f"firm {firm_id}: {error}")  # the next firm is still synced
            continue
        failures.extend(f"firm {firm_id}: {failure}" if firm_id else failure for failure in summary.failures)
    print(report.format_counts(engine))
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def cmd_replay(args) -> int:
    from intoaec_xero.pipeline import replay_run
    from intoaec_xero.rawstore import RawStore
    from intoaec_xero.runtime import raw_dir

    engine = _engine(args)
    db.upgrade(engine)
    failed = []
    for summary in replay_run(engine, RawStore(raw_dir(), args.conn_id), args.run_id):
        for name, outcome in summary["streams"].items():
            print(f"{summary['tenant_name']:<30} {name:<20} {outcome['status']} {outcome.get('rows', '')}")
        failed.extend(summary["failed"])
    for failure in failed:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failed else 0


def cmd_status(args) -> int:
    from dataclasses import replace
    from datetime import timedelta

    from intoaec_xero.health import format_table, tenant_health

    engine = _engine(args)
    threshold = timedelta(minutes=args.stale_after) if args.stale_after else None
    tenant_ids = None
    if args.firm:
        tenant_ids = _firm_tenant_ids(engine, args.firm)
        if tenant_ids is None:
            print(f"intoaec-xero: no firm '{args.firm}' has connected through IntoAEC (see `intoaec-xero firms`).",
                  file=sys.stderr)
            return 1
    healths = tenant_health(engine, threshold=threshold, tenant_ids=tenant_ids)
    # Which firm's grant syncs each organisation: shown only where firms exist, so a deployment
    # without any reads exactly as before.
    firm_of = _firm_holders(engine)
    if args.json:
        print(json.dumps([h.to_dict() | ({"firm_id": firm_of.get(h.tenant_id)} if firm_of else {})
                          for h in healths], indent=2))
    elif not healths and args.firm:
        print(f"Firm {args.firm} has no Xero organisation yet.")
    elif not healths:
        print("No Xero organisations yet: connect Xero, then let xero_sync run.")
    else:
        print(format_table([replace(h, tenant_name=f"{h.tenant_name} (firm {firm_of[h.tenant_id]})")
                            if h.tenant_id in firm_of else h for h in healths]))
    # Non-zero when any tenant needs attention, so monitoring can run this command as a check.
    return 0 if healths and all(h.healthy or not h.sync_enabled for h in healths) else 2


def _firm_holders(engine) -> dict[str, str]:
    """tenant id → the firm whose grant syncs it, for the organisations a firm's grant holds."""
    from sqlalchemy import select

    from intoaec_xero.firms import FIRM_KEY_PREFIX, firm_of
    from intoaec_xero.schema import xero_tenants

    with engine.connect() as conn:
        rows = conn.execute(select(xero_tenants.c.tenant_id, xero_tenants.c.connection_key)
                            .where(xero_tenants.c.connection_key.startswith(FIRM_KEY_PREFIX, autoescape=True))).all()
    return {row.tenant_id: firm_of(row.connection_key) or "" for row in rows}


def _firm_tenant_ids(engine, firm_id: str) -> list[str] | None:
    """The organisations of one firm (mapped to it, or synced by its grant); None for a firm IntoAEC does not know."""
    from sqlalchemy import select

    from intoaec_xero.firms import grant_key
    from intoaec_xero.schema import intoaec_firm_tenants, xero_tenants, xero_tokens

    key = grant_key(firm_id)
    with engine.connect() as conn:
        mapped = set(conn.execute(select(intoaec_firm_tenants.c.tenant_id)
                                  .where(intoaec_firm_tenants.c.firm_id == firm_id)).scalars())
        held = set(conn.execute(select(xero_tenants.c.tenant_id)
                                .where(xero_tenants.c.connection_key == key)).scalars())
        has_grant = conn.execute(select(xero_tokens.c.connection_key)
                                 .where(xero_tokens.c.connection_key == key)).first() is not None
    if not (mapped or held or has_grant):
        return None
    return sorted(mapped | held)


# -- firms ------------------------------------------------------------------------------------

FIRMS_EPILOG = """\
Each firm that connected its own Xero through IntoAEC, with its grant and each organisation:
status, Sync Enabled/Disabled, Future Access Saved/Not Saved, last successful sync, health
(with the reasons) and backfill. A firm with no organisation is listed with its grant alone.

Exit status: 0 when the list (or "no firm has connected") was printed, also when --status or
--unhealthy matched nothing (nothing unhealthy is good news); 1 when --firm names a firm that
never connected, or on an error. `intoaec-xero status` remains the check for monitoring (exit 2
when an organisation is unhealthy); `status --firm ID` is that check for one firm.
"""


def _organisation_status(value: str) -> str:
    """--status: an organisation status in any case ("reconnect needed"), as the vocabulary spells it."""
    from intoaec_xero.tenants import TenantStatus

    for status in TenantStatus:
        if value.strip().lower() == status.value.lower():
            return status.value
    raise argparse.ArgumentTypeError(f"{value!r} is not an organisation status; use one of: "
                                     + ", ".join(repr(s.value) for s in TenantStatus) + ".")


def cmd_firms(args) -> int:
    from intoaec_xero import firms
    from intoaec_xero.airflow import page_view

    for firm_id in args.firm or ():
        firms.check_firm_id(firm_id)
    engine = _engine(args)
    every, kept = page_view.firm_overview(engine, firm_ids=args.firm or None, status=args.status or "",
                                          attention=args.unhealthy)
    unknown = [f["firm_id"] for f in every if f["grant_status"] is None and not f["organisations"]]
    if unknown:
        print(f"intoaec-xero: no firm {', '.join(repr(u) for u in unknown)} has connected through IntoAEC "
              "(`intoaec-xero firms` lists those that have).", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([_firm_json(firm) for firm in kept], indent=2, default=str))
    elif not every:
        print("No firm has connected through IntoAEC yet: firms connect their own Xero from IntoAEC's "
              "Configure Xero page.")
    elif not kept:
        wanted = [f"status {args.status}"] * bool(args.status) + ["needs attention"] * args.unhealthy
        print(f"No organisation of {'firm ' + ', '.join(args.firm) if args.firm else 'any firm'} matches "
              f"({' and '.join(wanted)}).")
    else:
        print(format_firms(kept))
    return 0


def _firm_json(firm: dict) -> dict:
    """A firm for --json: the plain data, without the page's badge tones."""
    def plain(item: dict) -> dict:
        return {k: v for k, v in item.items() if not k.endswith("_tone")}

    return plain(firm) | {"organisations": [plain(org) for org in firm["organisations"]]}


def format_firms(shown: list[dict]) -> str:
    """The firms as the data team reads them: a heading per firm, two lines per organisation."""
    from intoaec_xero.airflow.page_view import _when

    lines = []
    for firm in shown:
        count, total = len(firm["organisations"]), firm["organisation_count"]
        orgs = (f"{total} organisation{'s' if total != 1 else ''}" if count == total
                else f"{count} of {total} organisations shown") if total else "no organisation"
        lines.append(f"Firm {firm['firm_id']} · Xero grant: {firm['grant']} · {orgs}")
        for org in firm["organisations"]:
            lines.append(f"  {org['tenant_name']}  (tenant {org['tenant_id']})")
            flags = [org["status"], org["sync"], org["future_access"]]
            if org["shared_with_label"]:
                flags.append(f"synced through {org['shared_with_label']}")
            lines.append("    " + " · ".join(flags))
            last = _when(org["last_successful_sync"]) if org["last_successful_sync"] else "never"
            lines.append(f"    Last successful sync: {last} · Health: {org['health_label']} · "
                         f"Backfill: {org['backfill_label']}")
            lines.extend(f"      - {reason}" for reason in org["health_reasons"])
    return "\n".join(lines)


def cmd_firms_offboard(args) -> int:
    """Revoke a firm's grant at Xero, forget it, and mark the firm's organisations Disconnected."""
    from intoaec_xero import firms, oauth
    from intoaec_xero.airflow.hooks import token_cipher
    from intoaec_xero.errors import XeroError, XeroUnavailable
    from intoaec_xero.tenants import TenantStatus
    from intoaec_xero.tokens import TokenStore

    firm_id = firms.check_firm_id(args.firm_id)
    engine = _engine(args)
    db.upgrade(engine)
    firm = firms.firms(engine, [firm_id], with_health=False)[0]
    if firm.grant_status is None and not firm.organisations:
        print(f"intoaec-xero: no firm '{firm_id}' has connected through IntoAEC; nothing to offboard.",
              file=sys.stderr)
        return 1
    connected = [org for org in firm.organisations if org.status != TenantStatus.DISCONNECTED]
    if not args.yes and not _confirm_offboard(firm):
        return 1
    store = TokenStore(engine, firms.grant_key(firm_id), token_cipher())
    revoked = False
    if firm.grant_status is not None:
        try:
            tokens = store.load()
            if tokens is not None and tokens.refresh_token:
                oauth.revoke(firms.firm_settings(_settings(args), firm_id), tokens.refresh_token)
                revoked = True
        except IntoAECXeroError as error:
            why = ("Xero could not be reached" if isinstance(error, XeroUnavailable) else
                   "Xero refused" if isinstance(error, XeroError) else "it could not be read or sent")
            problem = f"firm {firm_id}'s Xero grant was not revoked ({why}: {str(error).rstrip('.')})."
            if not args.force:
                print(f"intoaec-xero: {problem} Nothing was changed here; try again, or add --force to forget the "
                      "grant here anyway (Xero then keeps it until the firm removes IntoAEC from its connected "
                      "apps at Xero).", file=sys.stderr)
                return 1
            print(f"intoaec-xero: {problem} Forgetting it here anyway (--force).", file=sys.stderr)
    store.forget()
    _disconnect_firm_here(engine, firm_id)
    names = ", ".join(org.tenant_name for org in connected) or "no organisation (none was connected)"
    done = ("revoked its Xero grant" if revoked else
            "forgot its Xero grant here (not revoked at Xero)" if firm.grant_status is not None else
            "it held no Xero grant here")
    print(f"Offboarded firm {firm_id}: {done}; disconnected {names}. Synced data stays in IntoAEC.")
    return 0


def _confirm_offboard(firm) -> bool:
    """Ask at a terminal, naming the firm and its organisations; refuse anywhere else."""
    if not sys.stdin.isatty():
        print(f"intoaec-xero: offboarding firm {firm.firm_id} needs confirmation: run it at a terminal or add --yes.",
              file=sys.stderr)
        return False
    print(f"Offboard firm {firm.firm_id}? IntoAEC revokes the firm's Xero grant at Xero and stops syncing:")
    for org in firm.organisations:
        print(f"  {org.tenant_name}  (tenant {org.tenant_id}, {org.status})")
    if not firm.organisations:
        print("  (no organisation)")
    print("Their synced data stays in IntoAEC. The firm can connect again from IntoAEC later.")
    if input(f"Offboard {firm.firm_id}? [y/N] ").strip().lower() in ("y", "yes"):
        return True
    print("Not offboarded.")
    return False


def _disconnect_firm_here(engine, firm_id: str) -> None:
    """Every organisation of the firm reads Disconnected, and no sign-in of it still in progress can finish.

    (``TokenStore.forget`` already marked the organisations its grant held; an organisation another
    grant syncs for the firm, or one the sync never recorded, is only in the firm's own rows.)
    """
    from sqlalchemy import update

    from intoaec_xero.schema import intoaec_connect_sessions, intoaec_firm_tenants
    from intoaec_xero.tenants import TenantStatus

    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(update(intoaec_firm_tenants).where(intoaec_firm_tenants.c.firm_id == firm_id)
                     .values(status=TenantStatus.DISCONNECTED.value, updated_at=now))
        conn.execute(update(intoaec_connect_sessions)
                     .where(intoaec_connect_sessions.c.firm_id == firm_id, intoaec_connect_sessions.c.used_at.is_(None))
                     .values(used_at=now, outcome="offboarded"))


def cmd_counts(args) -> int:
    engine = _engine(args)
    if args.json:
        print(json.dumps(report.row_counts(engine), indent=2))
    else:
        print(report.format_counts(engine))
    return 0


# Feature modules that add their own sub-commands: each has ``register(subparsers)``.
COMMAND_MODULES: tuple[str, ...] = ("intoaec_xero.backfill.cli", "intoaec_xero.quality.cli")


def build_parser(runtime: environment.RuntimeSettings | None = None) -> argparse.ArgumentParser:
    """The command line; ``runtime`` (the INTOAEC_* settings, else this process's) rides along as ``args.runtime``."""
    runtime = runtime or environment.current()
    parser = argparse.ArgumentParser(prog="intoaec-xero", description="IntoAEC's Xero sync.")
    parser.set_defaults(runtime=runtime)
    parser.add_argument("--db-url", default="", help="SQLAlchemy URL of the IntoAEC database "
                        "(default: INTOAEC_DB_URL, then the Airflow connection intoaec_db)")
    parser.add_argument("--conn-id", default=DEFAULT_CONNECTION_KEY,
                        help=f"the Airflow connection of type xero (default {DEFAULT_CONNECTION_KEY})")
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    db_parser = commands.add_parser("db", help="database schema")
    db_commands = db_parser.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="create or upgrade IntoAEC's tables").set_defaults(func=cmd_db_upgrade)

    connect = commands.add_parser("connect", help="the one-off Xero sign-in (OAuth), or a reconnect")
    connect.add_argument("--no-browser", action="store_true", help="print the URL; paste the redirect back")
    connect.add_argument("--redirect-uri",
                         default=runtime.xero_redirect_uri or environment.DEFAULT_REDIRECT_URI,
                         help="the redirect URI registered on the Xero app (default: the Airflow UI's, "
                              "or INTOAEC_XERO_REDIRECT_URI)")
    connect.add_argument("--timeout", type=float, default=600,
                         help="seconds to wait for the browser to come back (default 600)")
    connect.add_argument("--sandbox-user", default="", metavar="EMAIL:PASSWORD",
                         help="sign in to the local sandbox without a browser")
    connect.set_defaults(func=cmd_connect)

    disconnect = commands.add_parser("disconnect", help="revoke the Xero grant (or disconnect one organisation)")
    disconnect.add_argument("--organisation", default="", metavar="NAME_OR_TENANT_ID",
                            help="disconnect only this organisation; the grant stays for the others")
    disconnect.set_defaults(func=cmd_disconnect)

    sync = commands.add_parser("sync", help="sync every tenant of the connection's grant (or of --firm's) now, "
                                            "without Airflow")
    sync.add_argument("--firm", action="append", metavar="ID",
                      help="sync this firm's grant instead (repeatable); xero_sync covers every firm")
    sync.add_argument("--stream", action="append", help="only this stream (repeatable)")
    sync.add_argument("--full", action="store_true", help="ignore watermarks and read everything")
    sync.add_argument("--run-id", default="")
    sync.set_defaults(func=cmd_sync)

    replay = commands.add_parser("replay", help="re-run transform, checks and load of a past run from its raw pages")
    replay.add_argument("run_id")
    replay.set_defaults(func=cmd_replay)

    status = commands.add_parser("status", help="connection and sync health per tenant (exit 2 when unhealthy)")
    status.add_argument("--json", action="store_true")
    status.add_argument("--stale-after", type=float, default=0, metavar="MINUTES",
                        help="how old a tenant's data may be (default: INTOAEC_STALE_AFTER_MINUTES or 120)")
    status.add_argument("--firm", default="", metavar="ID",
                        help="only this firm's organisations (exit 1 if no such firm has connected)")
    status.set_defaults(func=cmd_status)

    firms_parser = commands.add_parser("firms", help="firms connected through IntoAEC, their organisations and health",
                                       epilog=FIRMS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    firms_parser.add_argument("--firm", action="append", metavar="ID", help="only this firm (repeatable)")
    firms_parser.add_argument("--status", type=_organisation_status, metavar="STATUS",
                              help='only organisations with this status, any case (e.g. "reconnect needed")')
    firms_parser.add_argument("--unhealthy", action="store_true",
                              help="only organisations not Healthy or not Connected (and firms with none)")
    firms_parser.add_argument("--json", action="store_true")
    firms_parser.set_defaults(func=cmd_firms)
    firm_commands = firms_parser.add_subparsers(dest="firms_command", metavar="{offboard}")
    offboard = firm_commands.add_parser(
        "offboard", help="revoke a firm's Xero grant and disconnect its organisations (synced data stays)",
        description="Revoke the firm's grant at Xero, forget it here and mark every organisation of the firm "
                    "Disconnected. Its synced data stays. Exit 1 when nothing was done.")
    offboard.add_argument("firm_id", metavar="FIRM")
    offboard.add_argument("--yes", action="store_true", help="do not ask (needed when not at a terminal)")
    offboard.add_argument("--force", action="store_true",
                          help="forget the grant here even when Xero cannot be reached or refuses to revoke it")
    offboard.set_defaults(func=cmd_firms_offboard)

    counts = commands.add_parser("counts", help="rows per tenant and table")
    counts.add_argument("--json", action="store_true")
    counts.set_defaults(func=cmd_counts)

    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        runtime = environment.current()  # every INTOAEC_* variable checked once, before anything runs
    except IntoAECXeroError as error:
        print(f"intoaec-xero: {error}", file=sys.stderr)
        return 1
    args = build_parser(runtime).parse_args(argv)
    # Airflow sets up its logging (INFO, on stdout) when a command first imports it: keep the
    # command's own output clean, for this command only.
    quiet = not args.verbose and "airflow" not in sys.modules and "AIRFLOW__LOGGING__LOGGING_LEVEL" not in os.environ
    if quiet:
        os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except IntoAECXeroError as error:
        print(f"intoaec-xero: {error}", file=sys.stderr)
        return 1
    except SQLAlchemyError as error:
        detail = str(getattr(error, "orig", error)).strip().splitlines()[0]
        hint = (" The schema is missing or old: run `intoaec-xero db upgrade`."
                if "no such table" in detail or "does not exist" in detail else "")
        print(f"intoaec-xero: the IntoAEC database answered: {detail}.{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("intoaec-xero: interrupted", file=sys.stderr)
        return 130
    finally:
        if quiet:
            os.environ.pop("AIRFLOW__LOGGING__LOGGING_LEVEL", None)


if __name__ == "__main__":
    sys.exit(main())

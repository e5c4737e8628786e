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
    from intoaec_xero.client import build_client
    from intoaec_xero.pipeline import run_sync
    from intoaec_xero.rawstore import RawStore
    from intoaec_xero.runtime import raw_dir

    settings = _settings(args)
    engine = _engine(args)
    db.upgrade(engine)
    run_id = args.run_id or "cli__" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    client = build_client(settings, _token_store(settings, engine))
    summary = run_sync(client, settings, engine, RawStore(raw_dir(), settings.connection_key), run_id,
                       stream_names=args.stream or None, full=args.full)
    print(report.format_counts(engine))
    for failure in summary.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 0 if summary.ok else 1


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
    from datetime import timedelta

    from intoaec_xero.health import format_table, tenant_health

    engine = _engine(args)
    threshold = timedelta(minutes=args.stale_after) if args.stale_after else None
    healths = tenant_health(engine, threshold=threshold)
    if args.json:
        print(json.dumps([h.to_dict() for h in healths], indent=2))
    elif not healths:
        print("No Xero organisations yet: connect Xero, then let xero_sync run.")
    else:
        print(format_table(healths))
    # Non-zero when any tenant needs attention, so monitoring can run this command as a check.
    return 0 if healths and all(h.healthy or not h.sync_enabled for h in healths) else 2


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

    sync = commands.add_parser("sync", help="sync every tenant now, without Airflow")
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
    status.set_defaults(func=cmd_status)

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

"""``intoaec-xero``: the data team's command line.

Settings come from the same places the DAG reads: the Airflow connections ``xero_default``
and ``intoaec_db`` (or ``--db-url`` / ``INTOAEC_DB_URL`` for the database). Every failure
ends with one sentence on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import webbrowser
from datetime import UTC, datetime

from intoaec_xero import db, report
from intoaec_xero.errors import IntoAECXeroError
from intoaec_xero.settings import DEFAULT_CONNECTION_KEY


def _engine(args):
    url = args.db_url or os.environ.get("INTOAEC_DB_URL")
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


def cmd_connect(args) -> int:
    from intoaec_xero.client import build_client
    from intoaec_xero.oauth import finish_authorization, start_authorization
    from intoaec_xero.tokens import TokenStore

    settings = _settings(args)
    engine = _engine(args)
    db.upgrade(engine)
    store = TokenStore(engine, settings.connection_key)
    if settings.grant_type == "client_credentials":
        store.save(build_client(settings, store)._client_credentials_token())
    else:
        request = start_authorization(settings, args.redirect_uri)
        if args.sandbox_user:
            from xero_sandbox.testing import sign_in_and_consent

            email, _, password = args.sandbox_user.partition(":")
            callback = sign_in_and_consent(request.url, email=email, password=password)
        else:
            print("Open this address, sign in to Xero and approve access:\n\n  " + request.url + "\n")
            if not args.no_browser:
                webbrowser.open(request.url)
            callback = input("Then paste the full address your browser was sent to: ")
        store.save(finish_authorization(settings, request, callback))
    client = build_client(settings, store)
    connections = client.connections()
    print(f"Connected to {len(connections)} organisation(s):")
    for connection in connections:
        print(f"  {connection.get('tenantName')}  ({connection.get('tenantId')})")
    return 0


def cmd_sync(args) -> int:
    from intoaec_xero.client import build_client
    from intoaec_xero.pipeline import run_sync
    from intoaec_xero.rawstore import RawStore
    from intoaec_xero.runtime import raw_dir
    from intoaec_xero.tokens import TokenStore

    settings = _settings(args)
    engine = _engine(args)
    db.upgrade(engine)
    run_id = args.run_id or "cli__" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    client = build_client(settings, TokenStore(engine, settings.connection_key))
    summary = run_sync(client, settings, engine, RawStore(raw_dir()), run_id,
                       stream_names=args.stream or None, full=args.full)
    print(report.format_counts(engine))
    for failure in summary.failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 0 if summary.ok else 1


def cmd_counts(args) -> int:
    engine = _engine(args)
    if args.json:
        print(json.dumps(report.row_counts(engine), indent=2))
    else:
        print(report.format_counts(engine))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intoaec-xero", description="IntoAEC's Xero sync.")
    parser.add_argument("--db-url", default="", help="SQLAlchemy URL of the IntoAEC database "
                        "(default: INTOAEC_DB_URL, then the Airflow connection intoaec_db)")
    parser.add_argument("--conn-id", default=DEFAULT_CONNECTION_KEY, help="the Airflow xero connection")
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    db_parser = commands.add_parser("db", help="database schema")
    db_commands = db_parser.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="create or upgrade IntoAEC's tables").set_defaults(func=cmd_db_upgrade)

    connect = commands.add_parser("connect", help="the one-off Xero sign-in (OAuth)")
    connect.add_argument("--no-browser", action="store_true", help="print the URL; paste the redirect back")
    connect.add_argument("--redirect-uri", default="http://localhost:8080/xero/callback",
                         help="the redirect URI registered on the Xero app")
    connect.add_argument("--sandbox-user", default="", metavar="EMAIL:PASSWORD",
                         help="sign in to the local sandbox without a browser")
    connect.set_defaults(func=cmd_connect)

    sync = commands.add_parser("sync", help="sync every tenant now, without Airflow")
    sync.add_argument("--stream", action="append", help="only this stream (repeatable)")
    sync.add_argument("--full", action="store_true", help="ignore watermarks and read everything")
    sync.add_argument("--run-id", default="")
    sync.set_defaults(func=cmd_sync)

    counts = commands.add_parser("counts", help="rows per tenant and table")
    counts.add_argument("--json", action="store_true")
    counts.set_defaults(func=cmd_counts)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except IntoAECXeroError as error:
        print(f"intoaec-xero: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("intoaec-xero: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``make demo``: sandbox → OAuth sign-in → the real ``xero_sync`` DAG → IntoAEC tables.

Starts the local Xero sandbox on a free port, stores the two Airflow connections with
``airflow connections add`` (as a user does, or Admin ▸ Connections), connects with
``intoaec-xero connect`` (the sandbox's scripted user stands in for the person at the
browser), runs ``airflow dags test xero_sync``, prints what landed per tenant and table and
whether it equals the sandbox's ground truth, then stops what it started. Run twice, it
leaves the same counts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from intoaec_xero import db, report
from intoaec_xero.errors import IntoAECXeroError, TargetDatabaseError
from intoaec_xero.oauth import finish_authorization, start_authorization
from intoaec_xero.settings import XeroSettings
from intoaec_xero.streams import STREAMS, get_stream
from intoaec_xero.tokens import TokenStore

REPO = Path(__file__).resolve().parents[2]
SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"  # the sandbox's public demo app, not a real secret
SANDBOX_USER = ("demo@intoaec.test", "sandbox")
# An AIRFLOW_CONN_* variable wins over the metadata database: from the shell, it would shadow
# the connections the demo stores. INTOAEC_DB_URL (the demo's --db-url under make) would bypass
# the stored intoaec_db.
SHADOWING = ("AIRFLOW_CONN_XERO_DEFAULT", "AIRFLOW_CONN_INTOAEC_DB")


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def ensure_postgres_database(url: str) -> None:
    """The demo creates its PostgreSQL database if it is missing (production never does)."""
    try:
        parsed = make_url(db.normalise_url(url))
    except Exception:  # noqa: BLE001 - create_db_engine words this one
        return
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": parsed.database}).first()
            if not exists:
                conn.exec_driver_sql(f'CREATE DATABASE "{parsed.database}"')
                say(f"created PostgreSQL database {parsed.database}")
    except Exception as error:  # noqa: BLE001 - turned into one sentence
        first = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise TargetDatabaseError(
            f"Cannot reach PostgreSQL at {parsed.render_as_string(hide_password=True)}: {first}."
        ) from None
    finally:
        admin.dispose()


def airflow_env(airflow_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*SHADOWING, "INTOAEC_DB_URL")}
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "INTOAEC_DATA_DIR": str(REPO / "var"),
            "TZ": "UTC",
            "GX_ANALYTICS_ENABLED": "false",
        }
    )
    return env


def run_airflow(args: list[str], env: dict[str, str], log_path: Path) -> int:
    airflow = Path(sys.executable).with_name("airflow")
    shown = ["***" if i and args[i - 1] == "--conn-password" else a for i, a in enumerate(args)]
    with open(log_path, "ab") as log:
        log.write(f"\n$ airflow {' '.join(shown)}\n".encode())
        log.flush()
        return subprocess.call([str(airflow), *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                               cwd=REPO)


def store_connections(base_url: str, db_url: str, env: dict[str, str], log_path: Path) -> bool:
    """``xero_default`` and ``intoaec_db`` in the metadata database, as the README's setup stores them.

    Replaced on every run: the sandbox listens on a new port each time.
    """
    connections = {
        "xero_default": ["--conn-type", "xero", "--conn-login", SANDBOX_CLIENT_ID,
                         "--conn-password", SANDBOX_CLIENT_SECRET,
                         "--conn-extra", json.dumps({"api_base_url": f"{base_url}/api.xro/2.0",
                                                     "identity_base_url": base_url, "sandbox": True})],
        "intoaec_db": ["--conn-type", "generic", "--conn-extra", json.dumps({"sqlalchemy_url": db_url})],
    }
    for conn_id, options in connections.items():
        run_airflow(["connections", "delete", conn_id], env, log_path)  # absent on the first run: fine
        if run_airflow(["connections", "add", conn_id, *options], env, log_path) != 0:
            return False
    return True


def connect(settings: XeroSettings, store: TokenStore) -> None:
    """The authorization-code flow with PKCE, in this process; the sandbox's scripted user signs in and approves."""
    from xero_sandbox.testing import sign_in_and_consent

    from intoaec_xero.client import XeroClient
    from intoaec_xero.oauth import complete_sign_in

    request = start_authorization(settings, redirect_uri="http://127.0.0.1:8765/xero/callback")
    callback = sign_in_and_consent(request.url, email=SANDBOX_USER[0], password=SANDBOX_USER[1])
    tokens = finish_authorization(settings, request, callback)
    # Stored before first use, then the organisations are recorded with their statuses.
    complete_sign_in(settings, store, tokens, XeroClient(settings, store))


def connect_with_cli(env: dict[str, str]) -> subprocess.CompletedProcess:
    """``intoaec-xero connect``: the same flow as a user runs it, reading the stored connections.

    The sandbox's scripted user signs in and approves; the tokens land in the token store,
    encrypted with this Airflow home's Fernet key, as the DAG's tasks read them.
    """
    cli = Path(sys.executable).with_name("intoaec-xero")
    env = {k: v for k, v in env.items() if k != "AIRFLOW__LOGGING__LOGGING_LEVEL"}  # the CLI's own quiet default
    return subprocess.run([str(cli), "connect", "--sandbox-user", ":".join(SANDBOX_USER)], env=env, cwd=REPO,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--dataset", default="small")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db-url", default="")
    parser.add_argument("--streams", default="", help="comma-separated stream names (default: all)")
    parser.add_argument("--app-without-journals", action="store_true",
                        help="the sandbox refuses Journals to the app, as Xero does below its Advanced tier: the "
                             "ledger is derived from the documents")
    args = parser.parse_args(argv)
    db_url = args.db_url or f"sqlite:///{REPO / 'var' / 'intoaec.db'}"
    airflow_home = REPO / ".airflow" / "demo"
    airflow_home.mkdir(parents=True, exist_ok=True)
    log_path = REPO / "var" / "demo.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("")
    started = time.monotonic()
    try:
        from xero_sandbox.testing import running_sandbox

        ensure_postgres_database(db_url)
        engine = db.create_db_engine(db_url)
        db.upgrade(engine)
        say(f"IntoAEC database: {db.describe(engine)}")
        with running_sandbox(dataset=args.dataset, seed=args.seed,
                             app_without_journals=args.app_without_journals) as sandbox:
            say(f"Xero sandbox ({args.dataset}, seed {args.seed}) on {sandbox.base_url}"
                + (", refusing Journals to the app (Xero below its Advanced tier)" if args.app_without_journals
                   else ""))
            for name in SHADOWING:
                if os.environ.get(name):
                    say(f"ignoring {name} from your shell: it would shadow the connections the demo stores")
            env = airflow_env(airflow_home)
            if run_airflow(["db", "migrate"], env, log_path) != 0:
                say(f"Airflow could not prepare its metadata database; see {log_path}")
                return 1
            if not store_connections(sandbox.base_url, db_url, env, log_path):
                say(f"Airflow could not store the connections; see {log_path}")
                return 1
            say(f"stored the Airflow connections xero_default and intoaec_db in {airflow_home.relative_to(REPO)} "
                "(airflow connections add)")
            run_airflow(["pools", "set", "xero_api", "5", "Xero API: concurrent calls per tenant"], env, log_path)
            connected = connect_with_cli(env)
            if connected.returncode != 0:
                say("intoaec-xero connect failed: " + (connected.stderr.strip() or connected.stdout.strip()))
                return 1
            say("connected to Xero through the OAuth sign-in (PKCE) and stored the tokens "
                "(intoaec-xero connect --sandbox-user):")
            print(connected.stdout.rstrip(), flush=True)
            say("running the xero_sync DAG (airflow dags test xero_sync) ...")
            code = run_airflow(["dags", "test", "xero_sync"], env, log_path)
            truth = sandbox.truth()
        say(f"stopped the sandbox; Airflow's log is in {log_path.relative_to(REPO)}")
        print()
        print(report.format_counts(engine))
        print()
        from intoaec_xero.quality import docs
        from intoaec_xero.quality.record import format_summary

        print(format_summary(engine))
        print(f"Data Docs: {docs.describe(docs.latest_index(REPO / 'var'))}")
        print()
        streams = [get_stream(s) for s in args.streams.split(",") if s] or list(STREAMS.values())
        tables = {t for s in streams for t in s.targets}
        differences = report.compare_with_truth(engine, truth, tables)
        if code != 0:
            say("the xero_sync run failed: " + _first_error(log_path))
            return 1
        if differences:
            say("what landed differs from the sandbox's truth:\n  " + "\n  ".join(differences))
            return 1
        say(f"counts and money totals equal the sandbox's truth for {', '.join(sorted(tables))}")
        if "journal_lines" in tables:
            derived = sum(1 for tid in truth.get("tenants", {}) if report.figures(engine, tid)["journals"]["derived"])
            say(f"the general ledger: {'derived from the documents' if derived else 'Xero journals'} for "
                f"{derived or len(truth.get('tenants', {}))} organisation(s); its net by account equals the books")
        from intoaec_xero.health import format_table, tenant_health

        print()
        say("intoaec-xero status:")
        print(format_table(tenant_health(engine)))
        print()
        say(f"done in {time.monotonic() - started:.0f} s")
        return 0
    except IntoAECXeroError as error:
        say(str(error))
        return 1


def _first_error(log_path: Path) -> str:
    for line in log_path.read_text(errors="replace").splitlines():
        if "AirflowException:" in line or "IntoAECXeroError" in line or "TenantSyncFailed" in line:
            return line.split("Exception:", 1)[-1].strip()
    return f"see {log_path}"


if __name__ == "__main__":
    sys.exit(main())

"""``intoaec-xero firms`` (and ``firms offboard``, ``status --firm``, ``sync --firm``): the data team's view of firms.

The listing tests build firms, grants and sync records directly in a migrated SQLite database
and run the command in-process; offboarding runs the installed command against the sandbox,
with grants from real sign-ins, as the data team runs it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from intoaec_xero import cli, oauth, tenants
from intoaec_xero.firms import grant_key
from intoaec_xero.schema import intoaec_connect_sessions, intoaec_firm_tenants, sync_runs, xero_tenants
from intoaec_xero.tenants import TenantStatus
from intoaec_xero.tokens import STATUS_ACTIVE, STATUS_RECONNECT, TokenSet, TokenStore
from sqlalchemy import select

from tests.airflow.conftest import CLIENT_ID, CLIENT_SECRET, airflow_connection_env
from tests.harness.databases import migrated_engine

CLI = str(Path(sys.executable).with_name("intoaec-xero"))
CONNECTED, RECONNECT, DISCONNECTED = (TenantStatus.CONNECTED.value, TenantStatus.RECONNECT_NEEDED.value,
                                      TenantStatus.DISCONNECTED.value)


# -- state, written as the connect API and the sync would have left it ----------------------------

def add_grant(engine, firm_id: str, status: str = STATUS_ACTIVE) -> None:
    tokens = TokenSet(access_token=f"access-{firm_id}-secret", refresh_token=f"refresh-{firm_id}-secret",
                      expires_at=time.time() + 1800)
    TokenStore(engine, grant_key(firm_id)).save(tokens, status=status)


def add_organisation(engine, firm_id: str, tenant_id: str, name: str, status: str = CONNECTED, *,
                     firm_sync: bool = True, synced_minutes_ago: float | None = None, held_by: str | None = None,
                     recorded: bool = True) -> None:
    """A firm's organisation: its firm row, its xero_tenants row (unless not ``recorded``) and a sync run."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(intoaec_firm_tenants.insert().values(
            firm_id=firm_id, tenant_id=tenant_id, tenant_name=name, connection_id=f"conn-{tenant_id}",
            status=status, sync_enabled=firm_sync, connected_at=now - timedelta(days=30), updated_at=now))
        if recorded:
            conn.execute(xero_tenants.insert().values(
                tenant_id=tenant_id, tenant_name=name, connection_id=f"conn-{tenant_id}",
                connection_key=held_by or grant_key(firm_id), connection_status=status,
                sync_enabled=firm_sync and status != DISCONNECTED, connected_at=now - timedelta(days=30),
                updated_at=now))
        if synced_minutes_ago is not None:
            finished = now - timedelta(minutes=synced_minutes_ago)
            conn.execute(sync_runs.insert().values(
                run_id=f"scheduled__{tenant_id}", tenant_id=tenant_id, stream="invoices", kind="sync",
                started_at=finished - timedelta(minutes=1), finished_at=finished, status="success",
                rows_loaded=12, api_calls=3))


def build_firms(engine) -> None:
    """Four firms in different states, and the data team's own organisation beside them.

    acme: a working grant; Harbourside syncs (Healthy), Meridian's sync the firm turned off (Never synced).
    beta: Xero refused its grant (Reconnect needed). gamma: a grant, no organisation.
    delta: offboarded (no grant, its organisation Disconnected).
    """
    add_grant(engine, "acme")
    add_organisation(engine, "acme", "t-harbour", "Harbourside Architects Ltd", synced_minutes_ago=10)
    add_organisation(engine, "acme", "t-meridian", "Meridian Structural Engineers", firm_sync=False)
    add_grant(engine, "beta", STATUS_RECONNECT)
    add_organisation(engine, "beta", "t-beta", "Beta Builders", RECONNECT, synced_minutes_ago=3 * 24 * 60)
    add_grant(engine, "gamma")
    add_organisation(engine, "delta", "t-delta", "Delta Design", DISCONNECTED)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(xero_tenants.insert().values(
            tenant_id="t-own", tenant_name="Own Practice", connection_key="xero_default",
            connection_status=CONNECTED, sync_enabled=True, connected_at=now, updated_at=now))
        conn.execute(sync_runs.insert().values(
            run_id="scheduled__own", tenant_id="t-own", stream="invoices", kind="sync", status="success",
            started_at=now - timedelta(minutes=6), finished_at=now - timedelta(minutes=5)))


@pytest.fixture
def firms_db(sqlite_url):
    with migrated_engine(sqlite_url) as engine:
        build_firms(engine)
        yield sqlite_url


def run(capsys, url: str, *args: str) -> tuple[int, str, str]:
    code = cli.main(["--db-url", url, *args])
    out, err = capsys.readouterr()
    return code, out, err


def blocks(out: str) -> dict[str, str]:
    """The listing split per firm: firm id → its heading and lines."""
    found: dict[str, str] = {}
    for block in ("\n" + out).split("\nFirm ")[1:]:
        found[block.split(" ", 1)[0]] = "Firm " + block
    return found


# -- listing ---------------------------------------------------------------------------------------

def test_every_firm_is_listed_with_its_grant_and_each_organisations_words(firms_db, capsys):
    code, out, err = run(capsys, firms_db, "firms")

    assert code == 0 and not err
    firms = blocks(out)
    assert list(firms) == ["acme", "beta", "delta", "gamma"]
    acme = firms["acme"]
    assert acme.startswith("Firm acme · Xero grant: Saved · 2 organisations")
    assert "Harbourside Architects Ltd  (tenant t-harbour)" in acme
    assert f"{CONNECTED} · Sync Enabled · Future Access Saved" in acme
    assert f"{CONNECTED} · Sync Disabled · Future Access Saved" in acme  # the firm turned Meridian's sync off
    assert "Health: Healthy · Backfill: -" in acme
    assert "Last successful sync: never · Health: Never synced" in acme
    # One firm's failure is shown in full without hiding another's.
    beta = firms["beta"]
    assert beta.startswith(f"Firm beta · Xero grant: {RECONNECT} · 1 organisation")
    assert f"{RECONNECT} · Sync Disabled · Future Access Not Saved" in beta  # Enabled only while Connected
    assert f"Health: {RECONNECT}" in beta
    assert "- the Xero grant expired or was revoked: reconnect Xero" in beta
    assert " UTC · Health:" in beta  # its last success, three days ago, is still shown
    assert firms["gamma"].strip() == "Firm gamma · Xero grant: Saved · no organisation"
    assert firms["delta"].startswith("Firm delta · Xero grant: Not connected · 1 organisation")
    assert f"{DISCONNECTED} · Sync Disabled · Future Access Not Saved" in firms["delta"]
    # The data team's own connection is not a firm; no token is ever printed.
    assert "Own Practice" not in out and "secret" not in out


def test_the_status_filter_matches_the_organisation_status_in_any_case(firms_db, capsys):
    code, out, _ = run(capsys, firms_db, "firms", "--status", "reconnect needed")
    assert code == 0 and list(blocks(out)) == ["beta"]

    code, out, _ = run(capsys, firms_db, "firms", "--status", "CONNECTED")
    assert code == 0 and list(blocks(out)) == ["acme"]
    assert "Harbourside" in out and "Meridian" in out

    code, out, _ = run(capsys, firms_db, "firms", "--firm", "gamma", "--status", "connected")
    assert code == 0 and out.strip() == f"No organisation of firm gamma matches (status {CONNECTED})."

    with pytest.raises(SystemExit) as usage:
        cli.main(["--db-url", firms_db, "firms", "--status", "broken"])
    assert usage.value.code == 2
    assert "'broken' is not an organisation status" in capsys.readouterr().err


def test_unhealthy_keeps_what_needs_someone_and_a_firm_with_no_organisation(firms_db, capsys):
    code, out, _ = run(capsys, firms_db, "firms", "--unhealthy")

    assert code == 0
    firms = blocks(out)
    assert list(firms) == ["acme", "beta", "delta", "gamma"]
    assert "1 of 2 organisations shown" in firms["acme"]
    assert "Meridian" in firms["acme"] and "Harbourside" not in firms["acme"]  # healthy and connected: left out
    assert "Beta Builders" in firms["beta"] and "Delta Design" in firms["delta"]
    assert "no organisation" in firms["gamma"]

    code, out, _ = run(capsys, firms_db, "firms", "--unhealthy", "--firm", "acme", "--status", "connected")
    assert code == 0 and "Meridian" in out and "Harbourside" not in out


def test_one_firm_by_id_and_an_unknown_or_malformed_id_is_an_error(firms_db, capsys):
    code, out, _ = run(capsys, firms_db, "firms", "--firm", "beta")
    assert code == 0 and list(blocks(out)) == ["beta"]

    code, out, err = run(capsys, firms_db, "firms", "--firm", "acme", "--firm", "nobody")
    assert code == 1 and not out
    assert err.strip() == ("intoaec-xero: no firm 'nobody' has connected through IntoAEC (`intoaec-xero firms` "
                           "lists those that have).")

    code, out, err = run(capsys, firms_db, "firms", "--firm", "../etc")
    assert code == 1 and err.startswith("intoaec-xero: A firm id is 1 to 63 letters") and "Traceback" not in err


def test_json_is_plain_data_per_firm_and_follows_the_filters(firms_db, capsys):
    code, out, _ = run(capsys, firms_db, "firms", "--json")
    assert code == 0
    firms = {f["firm_id"]: f for f in json.loads(out)}
    assert list(firms) == ["acme", "beta", "delta", "gamma"]
    assert set(firms["acme"]) == {"firm_id", "grant_status", "grant", "organisation_count", "organisations",
                                  "attention"}
    harbour, meridian = firms["acme"]["organisations"]
    assert set(harbour) == {"tenant_id", "tenant_name", "status", "sync", "sync_enabled", "future_access",
                            "future_access_saved", "connected_at", "last_successful_sync", "health", "health_label",
                            "health_reasons", "backfill", "backfill_label", "shared_with", "shared_with_label",
                            "attention"}
    assert harbour | {"connected_at": None, "last_successful_sync": None} == {
        "tenant_id": "t-harbour", "tenant_name": "Harbourside Architects Ltd", "status": CONNECTED,
        "sync": "Sync Enabled", "sync_enabled": True, "future_access": "Future Access Saved",
        "future_access_saved": True, "connected_at": None, "last_successful_sync": None, "health": "healthy",
        "health_label": "Healthy", "health_reasons": [], "backfill": None, "backfill_label": "-",
        "shared_with": None, "shared_with_label": None, "attention": False}
    assert datetime.fromisoformat(harbour["last_successful_sync"]) > datetime.now(UTC) - timedelta(hours=1)
    assert meridian["sync"] == "Sync Disabled" and meridian["health"] == "never_synced" and meridian["attention"]
    assert firms["beta"]["grant_status"] == STATUS_RECONNECT and firms["beta"]["grant"] == RECONNECT
    assert firms["beta"]["organisations"][0]["health"] == "reconnect_needed"
    assert firms["beta"]["organisations"][0]["health_reasons"][0].startswith("the Xero grant expired")
    assert firms["gamma"] == {"firm_id": "gamma", "grant_status": STATUS_ACTIVE, "grant": "Saved",
                              "organisation_count": 0, "organisations": [], "attention": True}
    assert firms["delta"]["grant_status"] is None and firms["delta"]["grant"] == "Not connected"

    code, out, _ = run(capsys, firms_db, "firms", "--json", "--status", "Reconnect Needed")
    assert code == 0 and [f["firm_id"] for f in json.loads(out)] == ["beta"]
    code, out, _ = run(capsys, firms_db, "firms", "--json", "--firm", "gamma", "--status", "connected")
    assert code == 0 and json.loads(out) == []


def test_no_firm_yet_says_so(sqlite_url, capsys):
    with migrated_engine(sqlite_url):
        pass
    code, out, err = run(capsys, sqlite_url, "firms")
    assert code == 0 and not err
    assert out.startswith("No firm has connected through IntoAEC yet")
    code, out, _ = run(capsys, sqlite_url, "firms", "--json")
    assert code == 0 and json.loads(out) == []


def test_an_organisation_another_grant_syncs_and_one_never_recorded_are_shown_as_such(sqlite_url, capsys):
    with migrated_engine(sqlite_url) as engine:
        add_grant(engine, "acme")
        add_grant(engine, "zeta")
        add_organisation(engine, "acme", "t-shared", "Shared Studio", synced_minutes_ago=5)
        add_organisation(engine, "zeta", "t-shared", "Shared Studio", recorded=False)  # acme's grant syncs it
        add_organisation(engine, "zeta", "t-new", "New Office", recorded=False)
    code, out, _ = run(capsys, sqlite_url, "firms", "--firm", "zeta")
    assert code == 0
    assert f"{CONNECTED} · Sync Enabled · Future Access Saved · synced through firm acme" in out
    assert "New Office  (tenant t-new)" in out and "Health: No sync record" in out


# -- status --firm -----------------------------------------------------------------------------------

def test_status_names_the_firm_of_each_organisation_and_filters_by_firm(firms_db, capsys):
    code, out, _ = run(capsys, firms_db, "status")
    assert code == 2  # beta needs a reconnect
    assert "Harbourside Architects Ltd (firm acme)" in out and "Beta Builders (firm beta)" in out
    assert "Own Practice " in out and "Own Practice (firm" not in out
    assert "Beta Builders (firm beta): the Xero grant expired or was revoked" in out

    code, out, _ = run(capsys, firms_db, "status", "--firm", "acme")
    assert code == 0  # Harbourside is healthy; Meridian's sync is off
    assert "Harbourside Architects Ltd (firm acme)" in out and "Meridian" in out
    assert "Beta Builders" not in out and "Own Practice" not in out

    code, out, _ = run(capsys, firms_db, "status", "--json")
    firm_of = {h["tenant_name"]: h["firm_id"] for h in json.loads(out)}
    assert firm_of == {"Beta Builders": "beta", "Delta Design": "delta", "Harbourside Architects Ltd": "acme",
                       "Meridian Structural Engineers": "acme", "Own Practice": None}

    code, out, _ = run(capsys, firms_db, "status", "--firm", "gamma")
    assert code == 2 and out.strip() == "Firm gamma has no Xero organisation yet."
    code, out, err = run(capsys, firms_db, "status", "--firm", "nobody")
    assert code == 1 and not out and "no firm 'nobody' has connected" in err


def test_status_reads_as_before_where_no_firm_exists(sqlite_url, capsys):
    with migrated_engine(sqlite_url) as engine:
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(xero_tenants.insert().values(
                tenant_id="t-own", tenant_name="Own Practice", connection_key="xero_default",
                connection_status=CONNECTED, sync_enabled=True, connected_at=now, updated_at=now))
    code, out, _ = run(capsys, sqlite_url, "status")
    assert "Own Practice" in out and "(firm" not in out
    code, out, _ = run(capsys, sqlite_url, "status", "--json")
    assert "firm_id" not in json.loads(out)[0]


# -- offboarding -----------------------------------------------------------------------------------

def record_firm(engine, settings, store: TokenStore, firm_id: str) -> None:
    """What the connect API records after a firm's sign-in: the grant's organisations and the firm's rows."""
    connections = oauth.list_connections(settings, store.load().access_token)
    tenants.record_connections(engine, settings, connections)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for c in connections:
            conn.execute(intoaec_firm_tenants.insert().values(
                firm_id=firm_id, tenant_id=c["tenantId"], tenant_name=c["tenantName"], connection_id=c["id"],
                status=CONNECTED, sync_enabled=True, connected_at=now, updated_at=now))


def sign_in_as(sandbox, engine, firm_id: str, user: tuple[str, str]):
    """A firm's sign-in by one of the sandbox's firm users (who sees only its own organisation)."""
    from xero_sandbox.testing import sign_in_and_consent

    from tests.harness.xero import REDIRECT_URI, sandbox_settings

    settings = sandbox_settings(sandbox, connection_key=grant_key(firm_id), tenant_filter=())
    store = TokenStore(engine, settings.connection_key)
    request = oauth.start_authorization(settings, REDIRECT_URI)
    email, password = user
    store.save(oauth.finish_authorization(settings, request,
                                          sign_in_and_consent(request.url, email=email, password=password)))
    return settings, store


@pytest.fixture
def two_firms(monkeypatch, sandbox, sqlite_url):
    """acme (the sandbox's demo user, approving Harbourside only) and beta (another Xero user, Meridian)."""
    from xero_sandbox.testing import firm_user

    from tests.harness.xero import connect, tenants_of

    airflow_connection_env(monkeypatch, sandbox, sqlite_url)
    harbour, meridian = tenants_of(sandbox)
    with migrated_engine(sqlite_url) as engine:
        acme_settings, acme = connect(sandbox, engine, connection_key=grant_key("acme"), tenant_filter=(),
                                      tenant_ids=[harbour["tenant_id"]])
        record_firm(engine, acme_settings, acme, "acme")
        beta_settings, beta = sign_in_as(sandbox, engine, "beta", firm_user(1))
        record_firm(engine, beta_settings, beta, "beta")
        yield engine, acme, beta, dict(os.environ)


def offboard(sqlite_url, env, *args: str, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "--db-url", sqlite_url, "firms", "offboard", *args], env=env, stdin=stdin,
                          capture_output=True, text=True, timeout=120)


def firm_statuses(engine) -> dict[tuple[str, str], str]:
    with engine.connect() as conn:
        return {(r.firm_id, r.tenant_name): r.status for r in conn.execute(select(intoaec_firm_tenants))}


def refresh_answer(sandbox, refresh_token: str) -> dict:
    return oauth.requests.post(f"{sandbox.base_url}/connect/token", auth=(CLIENT_ID, CLIENT_SECRET),
                               data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                               timeout=30).json()


@pytest.mark.integration
@pytest.mark.airflow
def test_offboarding_revokes_at_xero_and_disconnects_only_that_firm(two_firms, sqlite_url, sandbox):
    engine, acme, beta, env = two_firms
    tokens = acme.load()
    assert firm_statuses(engine) == {("acme", "Harbourside Architects Ltd"): CONNECTED,
                                     ("beta", "Meridian Structural Engineers Pty Ltd"): CONNECTED}
    with engine.begin() as conn:  # acme's accountant had started another sign-in
        conn.execute(intoaec_connect_sessions.insert().values(
            session_id="pending", firm_id="acme", return_url="https://app.intoaec.test/", redirect_uri="http://x/cb",
            verifier=b"x", created_at=datetime.now(UTC), expires_at=datetime.now(UTC) + timedelta(minutes=10)))

    done = offboard(sqlite_url, env, "acme", "--yes")

    assert done.returncode == 0, done.stderr
    # (Airflow may log a line of its own first when the command reads the xero_default connection.)
    assert done.stdout.splitlines()[-1] == ("Offboarded firm acme: revoked its Xero grant; disconnected Harbourside "
                                            "Architects Ltd. Synced data stays in IntoAEC.")
    assert refresh_answer(sandbox, tokens.refresh_token) == {"error": "invalid_grant"}  # revoked at Xero
    assert acme.load() is None
    assert firm_statuses(engine) == {("acme", "Harbourside Architects Ltd"): DISCONNECTED,
                                     ("beta", "Meridian Structural Engineers Pty Ltd"): CONNECTED}
    with engine.connect() as conn:
        held = dict(conn.execute(select(xero_tenants.c.connection_key, xero_tenants.c.connection_status)).all())
        pending = conn.execute(select(intoaec_connect_sessions)).mappings().one()
    assert held == {"firm:acme": DISCONNECTED, "firm:beta": CONNECTED}
    assert pending["used_at"] is not None and pending["outcome"] == "offboarded"  # it can no longer finish
    # beta's grant still reaches its organisation.
    assert [c["tenantName"] for c in oauth.list_connections(
        firm_settings(sandbox, "beta"), beta.load().access_token)] == ["Meridian Structural Engineers Pty Ltd"]
    listing = subprocess.run([CLI, "--db-url", sqlite_url, "firms"], env=env, capture_output=True, text=True,
                             timeout=120)
    assert "Firm acme · Xero grant: Not connected · 1 organisation" in listing.stdout
    assert f"{DISCONNECTED} · Sync Disabled · Future Access Not Saved" in listing.stdout
    printed = done.stdout + done.stderr + listing.stdout + listing.stderr
    for secret in (CLIENT_SECRET, tokens.access_token, tokens.refresh_token):
        assert secret not in printed

    again = offboard(sqlite_url, env, "nobody", "--yes")
    assert again.returncode == 1
    assert again.stderr.strip() == ("intoaec-xero: no firm 'nobody' has connected through IntoAEC; nothing to "
                                    "offboard.")


def firm_settings(sandbox, firm_id: str):
    from tests.harness.xero import sandbox_settings

    return sandbox_settings(sandbox, connection_key=grant_key(firm_id))


@pytest.mark.integration
@pytest.mark.airflow
def test_offboarding_asks_first_and_forgets_without_xero_only_when_forced(two_firms, sqlite_url, sandbox):
    engine, acme, _, env = two_firms
    tokens = acme.load()

    unasked = offboard(sqlite_url, env, "acme")
    assert unasked.returncode == 1 and not unasked.stdout
    assert unasked.stderr.strip() == ("intoaec-xero: offboarding firm acme needs confirmation: run it at a "
                                      "terminal or add --yes.")
    sandbox.faults(endpoint="connect/revocation", status=503)
    try:
        refused = offboard(sqlite_url, env, "acme", "--yes")
        assert refused.returncode == 1 and "Offboarded" not in refused.stdout
        assert refused.stderr.startswith("intoaec-xero: firm acme's Xero grant was not revoked (Xero could not be "
                                         "reached: ")
        assert "add --force to forget the grant here anyway" in refused.stderr
        assert acme.load() is not None and firm_statuses(engine)[("acme", "Harbourside Architects Ltd")] == CONNECTED

        forced = offboard(sqlite_url, env, "acme", "--yes", "--force")
    finally:
        sandbox.clear_faults()
    assert forced.returncode == 0, forced.stderr
    assert "Forgetting it here anyway (--force)." in forced.stderr
    assert forced.stdout.splitlines()[-1] == ("Offboarded firm acme: forgot its Xero grant here (not revoked at "
                                              "Xero); disconnected Harbourside Architects Ltd. Synced data stays in "
                                              "IntoAEC.")
    assert acme.load() is None
    assert firm_statuses(engine)[("acme", "Harbourside Architects Ltd")] == DISCONNECTED
    assert "access_token" in refresh_answer(sandbox, tokens.refresh_token)  # Xero was never told
    for secret in (tokens.access_token, tokens.refresh_token):
        assert secret not in unasked.stderr + refused.stderr + forced.stdout + forced.stderr


@pytest.mark.integration
@pytest.mark.airflow
def test_offboarding_at_a_terminal_names_the_firm_and_its_organisations_and_a_no_changes_nothing(
        firms_db, monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))

    code, out, _ = run(capsys, firms_db, "firms", "offboard", "acme")

    assert code == 1
    assert out.startswith("Offboard firm acme? IntoAEC revokes the firm's Xero grant at Xero and stops syncing:")
    assert f"  Harbourside Architects Ltd  (tenant t-harbour, {CONNECTED})" in out
    assert "Meridian Structural Engineers  (tenant t-meridian" in out
    assert "Offboard acme? [y/N] Not offboarded." in out
    code, out, _ = run(capsys, firms_db, "firms", "--firm", "acme")
    assert out.startswith("Firm acme · Xero grant: Saved")


def sync(sqlite_url, env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "--db-url", sqlite_url, "sync", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def synced_organisations(engine, run_id: str) -> dict[str, set[str]]:
    """Each organisation the run touched, with the statuses its streams ended in."""
    with engine.connect() as conn:
        rows = conn.execute(select(xero_tenants.c.tenant_name, sync_runs.c.status)
                            .join(xero_tenants, xero_tenants.c.tenant_id == sync_runs.c.tenant_id)
                            .where(sync_runs.c.run_id == run_id)).all()
    found: dict[str, set[str]] = {}
    for name, status in rows:
        found.setdefault(name, set()).add(status)
    return found


@pytest.mark.integration
@pytest.mark.airflow
def test_sync_of_one_firm_reads_only_its_grants_organisations(two_firms, sqlite_url):
    engine, _, beta, env = two_firms

    done = sync(sqlite_url, env, "--firm", "beta", "--run-id", "cli__beta")

    assert done.returncode == 0, done.stderr
    assert synced_organisations(engine, "cli__beta") == {"Meridian Structural Engineers Pty Ltd": {"success"}}
    unknown = sync(sqlite_url, env, "--firm", "nobody", "--run-id", "cli__nobody")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines()[-1] == (
        "intoaec-xero: no Xero grant is held for firm nobody (it has not connected from IntoAEC, or was "
        "offboarded); nothing was synced.")
    assert synced_organisations(engine, "cli__nobody") == {}
    tokens = beta.load()
    for secret in (CLIENT_SECRET, tokens.access_token, tokens.refresh_token):
        assert secret not in done.stdout + done.stderr


@pytest.mark.integration
@pytest.mark.airflow
def test_a_firm_whose_grant_lapsed_fails_the_sync_by_name_and_the_next_firm_is_still_synced(
        two_firms, sqlite_url, sandbox):
    from xero_sandbox.testing import firm_user

    engine, _, _, env = two_firms
    sandbox.expire_grants(firm_user(1)[0])  # beta's accountant's grant lapses at Xero

    done = sync(sqlite_url, env, "--firm", "beta", "--firm", "acme", "--run-id", "cli__both")

    assert done.returncode == 1
    failed = [line for line in done.stderr.splitlines() if line.startswith("FAILED: ")]
    assert failed and all(line.startswith("FAILED: firm beta: ") for line in failed), done.stderr
    assert "Traceback" not in done.stderr
    assert synced_organisations(engine, "cli__both").get("Harbourside Architects Ltd") == {"success"}

"""``intoaec-xero connect`` / ``disconnect`` as a user runs them, against the sandbox.

The client id and secret come from the ``xero_default`` Airflow connection (here from the
environment; ``test_cli_stored_connections`` stores them in Airflow's metadata database); the
person at the browser is the sandbox's scripted user.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from intoaec_xero import db, oauth, tenants
from intoaec_xero.schema import xero_tokens
from intoaec_xero.tokens import TokenCipher, TokenStore
from sqlalchemy import select

from tests.airflow.conftest import CLIENT_SECRET, airflow_connection_env

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

CLI = str(Path(sys.executable).with_name("intoaec-xero"))


@pytest.fixture
def cli_env(monkeypatch, sandbox, sqlite_url):
    airflow_connection_env(monkeypatch, sandbox, sqlite_url)
    monkeypatch.delenv("BROWSER", raising=False)
    return dict(os.environ)


def _store(sqlite_url) -> TokenStore:
    return TokenStore(db.create_db_engine(sqlite_url), "xero_default", TokenCipher.from_environment())


def _connect_by_pasting(env, sqlite_url, *extra: str) -> tuple[str, str]:
    from xero_sandbox.testing import sign_in_and_consent

    process = subprocess.Popen([CLI, "-v", "--db-url", sqlite_url, "connect", "--no-browser", *extra],
                               env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    printed = []
    for line in process.stdout:
        printed.append(line)
        if line.strip().startswith("http"):
            break
    else:
        pytest.fail("connect never printed the sign-in address: " + "".join(printed) + process.stderr.read())
    callback = sign_in_and_consent(line.strip())
    out, err = process.communicate(callback + "\n", timeout=120)
    assert process.returncode == 0, out + err
    return "".join(printed) + out, err


def test_connect_without_a_browser_prints_the_url_takes_the_pasted_redirect_and_encrypts_at_rest(
        cli_env, sqlite_url, tmp_path, monkeypatch):
    """With the Fernet key Airflow generated into airflow.cfg, as the API server and workers read it."""
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    home = tmp_path / "airflow-home"
    home.mkdir()
    (home / "airflow.cfg").write_text(f"[core]\nfernet_key = {key}\n")
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    monkeypatch.delenv("INTOAEC_FERNET_KEY")  # the session's key would win over airflow.cfg's
    env = {k: v for k, v in cli_env.items() if k != "INTOAEC_FERNET_KEY"}

    out, err = _connect_by_pasting(dict(env, AIRFLOW_HOME=str(home)), sqlite_url)

    assert "Connected to 2 organisations:" in out
    assert "Harbourside Architects Ltd" in out and "Meridian Structural Engineers Pty Ltd" in out
    assert out.count("Connected · Sync Enabled · Future Access Saved") == 2
    with db.create_db_engine(sqlite_url).connect() as conn:
        row = conn.execute(select(xero_tokens)).mappings().one()
    assert row["encrypted"] is True
    tokens = TokenStore(db.create_db_engine(sqlite_url), "xero_default", TokenCipher(key)).load()
    assert tokens.refresh_token.encode() not in bytes(row["token"])
    assert _store(sqlite_url).load().refresh_token == tokens.refresh_token  # the key found without Airflow
    with pytest.raises(Exception, match="different Fernet key"):
        TokenStore(db.create_db_engine(sqlite_url), "xero_default",
                   TokenCipher(Fernet.generate_key().decode())).load()


def test_connect_with_a_browser_catches_the_redirect_itself(cli_env, sqlite_url, tmp_path):
    from xero_sandbox.testing import free_port

    browser = tmp_path / "browser"
    browser.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys, requests
        from xero_sandbox.testing import sign_in_and_consent
        redirect = sign_in_and_consent(sys.argv[1])  # the user signs in and approves
        requests.get(redirect, timeout=30).raise_for_status()  # the browser follows Xero's redirect
    """))
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    env = dict(cli_env, BROWSER=str(browser))
    redirect_uri = f"http://127.0.0.1:{free_port()}/xero/callback"
    result = subprocess.run([CLI, "--db-url", sqlite_url, "connect", "--redirect-uri", redirect_uri],
                            env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Waiting for Xero to send your browser back" in result.stdout
    assert "Connected to 2 organisations:" in result.stdout


def test_disconnect_one_organisation_then_revoke_the_grant_with_no_secret_in_any_output(cli_env, sqlite_url,
                                                                                       sandbox):
    out, err = _connect_by_pasting(cli_env, sqlite_url)
    store = _store(sqlite_url)
    tokens = store.load()

    one = subprocess.run([CLI, "-v", "--db-url", sqlite_url, "disconnect", "--organisation",
                          "harbourside architects ltd"],
                         env=cli_env, capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr
    assert "Disconnected Harbourside Architects Ltd; the other organisations stay connected." in one.stdout
    statuses = {o.name: o.status for o in tenants.organisations(store.engine, "xero_default", store.info())}
    assert statuses == {"Harbourside Architects Ltd": "Disconnected",
                        "Meridian Structural Engineers Pty Ltd": "Connected"}

    unknown = subprocess.run([CLI, "--db-url", sqlite_url, "disconnect", "--organisation", "Nobody Ltd"],
                             env=cli_env, capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 1 and "no organisation 'Nobody Ltd'" in unknown.stderr

    everything = subprocess.run([CLI, "-v", "--db-url", sqlite_url, "disconnect"], env=cli_env,
                                capture_output=True, text=True, timeout=120)
    assert everything.returncode == 0, everything.stderr
    assert "Revoked the Xero grant of 'xero_default'; disconnected Meridian Structural Engineers Pty Ltd." \
        in everything.stdout
    assert store.load() is None
    refused = oauth.requests.post(f"{sandbox.base_url}/connect/token", auth=("sandbox-client", CLIENT_SECRET),
                                  data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token})
    assert refused.json() == {"error": "invalid_grant"}  # revoked at Xero, not just forgotten here
    printed = "".join([out, err, one.stdout, one.stderr, unknown.stdout, unknown.stderr, everything.stdout,
                       everything.stderr])
    for secret in (CLIENT_SECRET, tokens.access_token, tokens.refresh_token):
        assert secret not in printed


def test_a_custom_connection_connects_and_disconnects_without_a_browser(cli_env, monkeypatch, sandbox, sqlite_url):
    airflow_connection_env(monkeypatch, sandbox, sqlite_url, grant_type="client_credentials")
    env = dict(os.environ)
    connected = subprocess.run([CLI, "--db-url", sqlite_url, "connect"], env=env, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=120)
    assert connected.returncode == 0, connected.stderr
    assert "Connected with a Xero custom connection to 1 organisation:" in connected.stdout
    assert "Harbourside Architects Ltd" in connected.stdout and "Future Access Saved" in connected.stdout
    tokens = _store(sqlite_url).load()
    assert tokens.access_token and not tokens.refresh_token  # client_credentials: nothing to rotate
    gone = subprocess.run([CLI, "--db-url", sqlite_url, "disconnect"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert gone.returncode == 0, gone.stderr
    assert _store(sqlite_url).load() is None

"""IntoAEC's help page "Xero Integration", clicked through in headless Chromium against the connect API.

The stand-in for IntoAEC's web app (``examples/intoaec_app``) runs as its own process and calls
the real connect API on the real ``airflow api-server`` of ``airflow_ui``, with the bearer token
stored the way users store it (``airflow connections add intoaec_app``). A firm's accountant
(the sandbox's ``firm1@intoaec.test``, who sees one organisation):

Dashboard → Integrations → Account Software → the Xero card's Connect → Configure Xero →
Configure → Xero's sign-in → approve → back on Configure Xero reading Connected / Sync Enabled /
Future Access Saved → the sync switch off and on → Disconnect → Disconnected → Reconnect →
Connected → Xero lets the grant lapse and the keep-alive notices → Reconnect needed →
Reconnect, signing in again → Connected / Future Access Saved. The page is cross-checked with
``intoaec_firm_tenants``. And when the API refuses (a return URL it does not allow, a wrong
token), the page says the API's sentence, never a traceback.

Screenshots go to var/test-artifacts/ (and to docs/screenshots/ with INTOAEC_SAVE_SCREENSHOTS=1).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from tests.conftest import REPO
from tests.harness.browser import WAIT_SECONDS, chromium
from tests.plugins.conftest import wait_until_answers

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

FIRM_EMAIL, FIRM_PASSWORD = "firm1@intoaec.test", "sandbox"  # sees only the sandbox's first organisation
TOKEN_VARIABLE = "INTOAEC_CONNECT_API_TOKEN"
NOT_ALLOWED = "The return_url does not start with any of the intoaec_app connection's return_url_prefixes."


class Shots:
    """Numbered screenshots of the walk, kept where people look for them."""

    def __init__(self, browser, tmp_path: Path, start: int = 0):
        self.browser, self.tmp_path, self.count = browser, tmp_path, start

    def __call__(self, name: str) -> None:
        self.count += 1
        shot = self.tmp_path / f"intoaec-app-{self.count:02d}-{name}.png"
        self.browser.save_screenshot(str(shot))
        for folder in [REPO / "var" / "test-artifacts"] + (
                [REPO / "docs" / "screenshots"] if os.environ.get("INTOAEC_SAVE_SCREENSHOTS") == "1" else []):
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, folder / shot.name)


def _airflow(ui, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("airflow")), *args], env=ui.env, capture_output=True,
                          text=True, timeout=180)


@pytest.fixture(scope="module")
def intoaec_app(airflow_ui):
    """The ``intoaec_app`` connection, as a user adds it: a fresh token, one allow-listed stand-in port."""
    from xero_sandbox.testing import free_port

    token, port = secrets.token_urlsafe(32), free_port()
    _airflow(airflow_ui, "connections", "delete", "intoaec_app")  # a leftover of an interrupted run, if any
    added = _airflow(airflow_ui, "connections", "add", "intoaec_app", "--conn-type", "generic",
                     "--conn-password", token,
                     "--conn-extra", json.dumps({"return_url_prefixes": [f"http://127.0.0.1:{port}/"]}))
    assert added.returncode == 0, added.stderr
    try:
        yield token, port
    finally:
        deleted = _airflow(airflow_ui, "connections", "delete", "intoaec_app")
        assert deleted.returncode == 0, deleted.stderr


@contextmanager
def _stand_in(ui, port: int, token: str, firm_id: str, log_path: Path):
    """``python -m examples.intoaec_app`` on 127.0.0.1:port until the block ends; yields its base URL."""
    env = dict(os.environ, **{TOKEN_VARIABLE: token})
    with open(log_path, "wb") as log:
        app = subprocess.Popen([sys.executable, "-m", "examples.intoaec_app", "--host", "127.0.0.1", "--port",
                                str(port), "--api-url", f"{ui.base_url}/xero/api/v1", "--firm-id", firm_id,
                                "--firm-name", "Acme Architects"],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{base_url}/healthz", app, log_path, "the stand-in", timeout=60)
        yield base_url
    finally:
        if app.poll() is None:
            app.terminate()  # its own PID: uvicorn without workers is a single process
            try:
                app.wait(timeout=15)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait(timeout=10)
    assert token not in log_path.read_text(errors="replace"), "the stand-in logged the API's token"


def _forget_firm(engine, firm_id: str) -> None:
    from intoaec_xero.schema import intoaec_connect_sessions, intoaec_firm_tenants, xero_tokens

    with engine.begin() as conn:
        conn.execute(delete(intoaec_firm_tenants).where(intoaec_firm_tenants.c.firm_id == firm_id))
        conn.execute(delete(intoaec_connect_sessions).where(intoaec_connect_sessions.c.firm_id == firm_id))
        conn.execute(delete(xero_tokens).where(xero_tokens.c.connection_key == f"firm:{firm_id}"))


def _firm_rows(engine, firm_id: str) -> list[dict]:
    from intoaec_xero.schema import intoaec_firm_tenants

    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(intoaec_firm_tenants)
                                              .where(intoaec_firm_tenants.c.firm_id == firm_id)).mappings()]


def test_a_firm_connects_its_xero_from_intoaecs_integrations_page(airflow_ui, intoaec_app, tmp_path):
    from intoaec_xero import firms
    from intoaec_xero.client import build_client
    from intoaec_xero.errors import XeroAuthError
    from intoaec_xero.settings import XeroSettings
    from intoaec_xero.tokens import TokenCipher, TokenStore
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    ui, (token, port) = airflow_ui, intoaec_app
    firm_id = f"acme-{uuid.uuid4().hex[:8]}"
    organisation = ui.sandbox.health()["tenants"][0]  # the one firm1 may reach
    ui.reset()  # no other grant (another test's xero_default) holds that organisation
    try:
        with (_stand_in(ui, port, token, firm_id, tmp_path / "stand-in.log") as app,
              chromium(tmp_path / "chromium-profile", offline=True) as browser):
            wait = WebDriverWait(browser, WAIT_SECONDS)
            shot = Shots(browser, tmp_path)

            def click_and_wait_for_new_page(element) -> None:
                old = browser.find_element(By.TAG_NAME, "html")
                element.click()
                wait.until(ready.staleness_of(old))
                wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

            def organisation_card(status: str):
                card = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "article.organisation")))
                assert len(browser.find_elements(By.CSS_SELECTOR, "article.organisation")) == 1
                assert card.get_attribute("data-tenant-id") == organisation["tenantId"]
                assert card.find_element(By.CSS_SELECTOR, ".org-name").text == organisation["tenantName"]
                assert card.find_element(By.CSS_SELECTOR, ".org-status").text == status, card.text
                assert card.get_attribute("data-status") == status
                return card

            def badges(card) -> tuple[str, str, str]:
                return tuple(card.find_element(By.CSS_SELECTOR, f".org-{part}").text
                             for part in ("status", "sync", "future-access"))

            def notice() -> tuple[str, str]:
                banner = browser.find_element(By.ID, "notice")
                return banner.get_attribute("data-kind"), banner.text

            def sign_in_at_xero(name: str) -> None:
                """Xero's side: the sign-in (unless Xero still knows this browser), then approve."""
                wait.until(lambda d: d.find_elements(By.ID, "email")
                           or d.find_elements(By.CSS_SELECTOR, "button[value=allow]"))
                if browser.find_elements(By.ID, "email"):
                    browser.find_element(By.ID, "email").send_keys(FIRM_EMAIL)
                    browser.find_element(By.ID, "password").send_keys(FIRM_PASSWORD)
                    shot(f"{name}-xero-sign-in")
                    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
                allow = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "button[value=allow]")))
                offered = browser.find_element(By.ID, "organisations").text
                assert organisation["tenantName"] in offered and len(offered.splitlines()) == 1, offered
                shot(f"{name}-xero-consent")
                allow.click()
                wait.until(lambda d: d.current_url.startswith(f"{app}/integrations/xero")
                           and d.execute_script("return document.readyState") == "complete")
                wait.until(ready.text_to_be_present_in_element((By.ID, "page-title"), "Configure Xero"))

            # Dashboard → Integrations.
            browser.get(f"{app}/")
            wait.until(ready.text_to_be_present_in_element((By.ID, "page-title"), "Dashboard"))
            shot("dashboard")
            click_and_wait_for_new_page(browser.find_element(By.LINK_TEXT, "Integrations"))
            assert browser.find_element(By.ID, "page-title").text == "Integrations"
            tabs = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#integration-tabs [role=tab]")]
            assert tabs == ["Account Software", "All Integrations"], tabs
            shot("integrations")

            # Account Software → the Xero card → Connect → Configure Xero.
            click_and_wait_for_new_page(browser.find_element(By.ID, "tab-account-software"))
            assert browser.find_element(By.ID, "tab-account-software").get_attribute("aria-selected") == "true"
            card = browser.find_element(By.CSS_SELECTOR, "#tab-panel[data-tab=account-software] #xero-card")
            assert "Xero" in card.text
            shot("account-software")
            click_and_wait_for_new_page(card.find_element(By.ID, "xero-connect"))
            assert browser.find_element(By.ID, "page-title").text == "Configure Xero"
            assert browser.find_element(By.ID, "no-organisations").is_displayed()
            shot("configure-xero")

            # Configure → Xero's sign-in → approve → back, Connected / Sync Enabled / Future Access Saved.
            browser.find_element(By.ID, "configure").click()
            sign_in_at_xero("connect")
            assert notice() == ("notice", "Connected to Xero: 1 organisation.")
            card = organisation_card("Connected")
            assert badges(card) == ("Connected", "Sync Enabled", "Future Access Saved")
            assert browser.current_url == f"{app}/integrations/xero"  # the return's query is not kept
            shot("connected")
            [row] = _firm_rows(ui.engine, firm_id)
            assert (row["tenant_id"], row["status"], row["sync_enabled"]) == (organisation["tenantId"], "Connected",
                                                                               True)

            # The sync switch: off, then on again.
            click_and_wait_for_new_page(card.find_element(By.CSS_SELECTOR, "button.sync-toggle"))
            card = organisation_card("Connected")
            assert badges(card)[1] == "Sync Disabled"
            assert card.find_element(By.CSS_SELECTOR, "button.sync-toggle").get_attribute("aria-checked") == "false"
            assert _firm_rows(ui.engine, firm_id)[0]["sync_enabled"] is False
            shot("sync-off")
            click_and_wait_for_new_page(card.find_element(By.CSS_SELECTOR, "button.sync-toggle"))
            card = organisation_card("Connected")
            assert badges(card)[1] == "Sync Enabled"
            assert _firm_rows(ui.engine, firm_id)[0]["sync_enabled"] is True

            # Disconnect → Disconnected, with Reconnect offered.
            assert not card.find_elements(By.CSS_SELECTOR, "button.reconnect")
            click_and_wait_for_new_page(card.find_element(By.CSS_SELECTOR, "button.disconnect"))
            assert notice()[0] == "notice" and "disconnected" in notice()[1], notice()
            card = organisation_card("Disconnected")
            assert badges(card) == ("Disconnected", "Sync Disabled", "Future Access Not Saved")
            assert not card.find_elements(By.CSS_SELECTOR, "button.disconnect, button.sync-toggle")
            assert _firm_rows(ui.engine, firm_id)[0]["status"] == "Disconnected"
            shot("disconnected")

            # Reconnect (Xero still knows this browser: straight to approve) → Connected.
            card.find_element(By.CSS_SELECTOR, "button.reconnect").click()
            sign_in_at_xero("reconnect")
            assert notice() == ("notice", "Connected to Xero: 1 organisation.")
            card = organisation_card("Connected")
            assert badges(card) == ("Connected", "Sync Enabled", "Future Access Saved")
            assert _firm_rows(ui.engine, firm_id)[0]["status"] == "Connected"
            shot("reconnected")

            # Xero lets the grant lapse (60 days unused); the daily keep-alive's refresh is refused.
            ui.sandbox.expire_grants(FIRM_EMAIL)
            app_settings = XeroSettings.for_single_host(ui.sandbox.base_url, client_id="sandbox-client",
                                                        client_secret="sandbox-secret")
            settings = firms.firm_settings(app_settings, firm_id)
            store = TokenStore(ui.engine, settings.connection_key, TokenCipher(ui.fernet_key))
            client = build_client(settings, store)
            client.current_tokens()  # as the keep-alive does: what it holds, then a forced refresh
            with pytest.raises(XeroAuthError, match="invalid_grant"):
                client.refresh_tokens(force=True)
            browser.refresh()
            card = organisation_card("Reconnect needed")
            assert badges(card)[2] == "Future Access Not Saved"
            assert not browser.find_elements(By.ID, "notice")  # the earlier notice was shown once only
            reconnect = card.find_element(By.CSS_SELECTOR, "button.reconnect")
            assert reconnect.is_displayed()
            assert _firm_rows(ui.engine, firm_id)[0]["status"] == "Reconnect needed"
            shot("reconnect-needed")

            # Reconnect, signing in again (a new day, a new browser session at Xero) → Connected.
            browser.delete_cookie("xero_sandbox_session")
            reconnect.click()
            sign_in_at_xero("after-expiry")
            assert notice() == ("notice", "Connected to Xero: 1 organisation.")
            card = organisation_card("Connected")
            assert badges(card) == ("Connected", "Sync Enabled", "Future Access Saved")
            shot("connected-again")
            [row] = _firm_rows(ui.engine, firm_id)
            assert (row["status"], row["sync_enabled"]) == ("Connected", True)
            assert token not in browser.page_source
    finally:
        _forget_firm(ui.engine, firm_id)
        ui.reset()


def test_the_stand_in_shows_the_apis_refusals(airflow_ui, intoaec_app, tmp_path):
    """A stand-in on a port the connection does not allow-list, and one with a wrong token: the page
    says what the API said, in its words, and no traceback."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait
    from xero_sandbox.testing import free_port

    ui, (token, _) = airflow_ui, intoaec_app
    firm_id = f"acme-{uuid.uuid4().hex[:8]}"
    try:
        with (_stand_in(ui, free_port(), token, firm_id, tmp_path / "elsewhere.log") as elsewhere,
              _stand_in(ui, free_port(), "not-" + token, firm_id, tmp_path / "wrong-token.log") as wrong_token,
              chromium(tmp_path / "chromium-profile", offline=True) as browser):
            wait = WebDriverWait(browser, WAIT_SECONDS)
            shot = Shots(browser, tmp_path, start=20)

            browser.get(f"{elsewhere}/integrations/xero")
            wait.until(ready.presence_of_element_located((By.ID, "no-organisations")))
            old = browser.find_element(By.TAG_NAME, "html")
            browser.find_element(By.ID, "configure").click()
            wait.until(ready.staleness_of(old))
            banner = wait.until(ready.presence_of_element_located((By.ID, "notice")))
            assert banner.get_attribute("data-kind") == "error"
            assert banner.get_attribute("data-code") == "return_url_not_allowed"
            assert banner.text == NOT_ALLOWED
            assert browser.current_url == f"{elsewhere}/integrations/xero"  # never sent to Xero
            assert "Traceback" not in browser.page_source
            shot("return-url-not-allowed")

            browser.get(f"{wrong_token}/integrations/xero")
            problem = wait.until(ready.presence_of_element_located((By.ID, "api-error")))
            assert problem.get_attribute("data-code") == "unauthorized"
            assert "refused the call" in problem.text and "intoaec_app" in problem.text, problem.text
            assert "Traceback" not in browser.page_source
            shot("wrong-token")
        assert _firm_rows(ui.engine, firm_id) == []
    finally:
        _forget_firm(ui.engine, firm_id)

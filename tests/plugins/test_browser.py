"""A person in headless Chromium: open the Xero page, log in to Airflow, Connect to Xero, sign in
at Xero, approve, and land back on the page reading Connected / Sync Enabled / Future Access Saved;
then, after the demo's organisations have synced (once cleanly, once with Xero failing one of
them), the same page shows each organisation's sync health. And another site cannot show the
page in a frame, where its buttons could be clickjacked.

Uses Debian's ``chromium`` and ``chromium-driver`` (matching versions, no downloads); skipped
with the reason when either is missing. Screenshots of the page are kept in the test's
temporary directory and under var/test-artifacts/ (``xero-page-health.png`` is the whole page).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.harness.browser import WAIT_SECONDS, chromium, typed
from tests.plugins.conftest import PASSWORDS

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

@pytest.fixture
def browser(tmp_path):
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


def _save(browser, tmp_path, name: str, whole_page: bool = False) -> Path:
    if whole_page:  # headless Chromium shoots the viewport: make it as tall as the page (twice: it reflows)
        for _ in range(2):
            inner, page = browser.execute_script(
                "return [window.innerHeight, document.documentElement.scrollHeight]")
            browser.set_window_size(1400, browser.get_window_size()["height"] - inner + page)
    shot = tmp_path / name
    browser.save_screenshot(str(shot))
    artifacts = REPO / "var" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, artifacts / shot.name)
    return shot


def _sync(ui, run_id: str, **settings) -> None:
    """The demo's organisations through the real pipeline into the page's IntoAEC database."""
    from intoaec_xero.client import XeroClient
    from intoaec_xero.pipeline import run_sync
    from intoaec_xero.rawstore import RawStore
    from intoaec_xero.settings import XeroSettings

    from tests.plugins.conftest import CLIENT_ID, CLIENT_SECRET

    xero = XeroSettings.for_single_host(ui.sandbox.base_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                        **settings)
    store = ui.store()
    run_sync(XeroClient(xero, store), xero, ui.engine, RawStore(ui.data_dir / "raw"), run_id)
    ui.add_dag_run("xero_sync", run_id)


def _log_in_from_the_page(browser, wait, ui) -> None:
    """The Xero page refuses an anonymous visitor and points to Airflow's login, which brings them back."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready

    browser.get(f"{ui.base_url}/xero/")
    wait.until(ready.element_to_be_clickable((By.ID, "login"))).click()
    username = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "input[name=username]")))
    password = browser.find_element(By.CSS_SELECTOR, "input[name=password]")
    # The login form is a React app: type until its state has the values, then sign in when it allows.
    wait.until(lambda _: typed(username, "admin") and typed(password, PASSWORDS["admin"]))
    wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "button[type=submit]"))).click()
    wait.until(ready.presence_of_element_located((By.ID, "grant-state")))


def test_a_user_clicks_through_to_connected(airflow_ui, browser, tmp_path, monkeypatch):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    airflow_ui.reset()
    wait = WebDriverWait(browser, WAIT_SECONDS)

    _log_in_from_the_page(browser, wait, airflow_ui)
    wait.until(ready.text_to_be_present_in_element((By.ID, "grant-state"), "Not connected"))
    browser.find_element(By.ID, "connect").click()

    # Xero (the sandbox): sign in, then approve the consent listing scopes and organisations.
    wait.until(ready.presence_of_element_located((By.ID, "email"))).send_keys("demo@intoaec.test")
    browser.find_element(By.ID, "password").send_keys("sandbox")
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait.until(ready.presence_of_element_located((By.ID, "organisations")))
    assert "offline_access" in browser.find_element(By.ID, "scopes").text
    browser.find_element(By.CSS_SELECTOR, "button[value=allow]").click()

    # Back on the Xero page: every organisation Connected, Sync Enabled, Future Access Saved.
    wait.until(lambda driver: driver.current_url.startswith(f"{airflow_ui.base_url}/xero/"))
    assert "Connected to Xero." in browser.find_element(By.CSS_SELECTOR, ".banner.notice").text
    rows = wait.until(ready.presence_of_all_elements_located((By.CSS_SELECTOR, "#organisations tbody tr")))
    seen = {row.find_element(By.CSS_SELECTOR, ".name").text: (row.find_element(By.CSS_SELECTOR, ".status").text,
                                                              row.find_element(By.CSS_SELECTOR, ".sync").text,
                                                              row.find_element(By.CSS_SELECTOR, ".future").text)
            for row in rows}
    assert seen == {
        "Harbourside Architects Ltd": ("Connected", "Sync Enabled", "Future Access Saved"),
        "Meridian Structural Engineers Pty Ltd": ("Connected", "Sync Enabled", "Future Access Saved"),
    }
    assert "Saved" in browser.find_element(By.ID, "grant-state").text
    _save(browser, tmp_path, "xero-page-connected.png")
    assert airflow_ui.store().status() == "active"

    # Two syncs as xero_sync would run them: both organisations, then new activity while Xero
    # keeps failing Meridian's payments. Data Docs go where the API server serves them from.
    monkeypatch.setenv("INTOAEC_DATA_DIR", str(airflow_ui.data_dir))
    meridian = next(row.get_attribute("data-tenant-id") for row in rows if "Meridian" in row.text)
    _sync(airflow_ui, f"manual__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}+00:00")
    airflow_ui.sandbox.activity(invoices=4, payments=3)
    airflow_ui.sandbox.faults(endpoint="Payments", status=503, tenant_id=meridian)
    try:
        _sync(airflow_ui, f"scheduled__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S}+00:00", max_attempts=2)
    finally:
        airflow_ui.sandbox.clear_faults()

    browser.get(f"{airflow_ui.base_url}/xero/")
    cards = wait.until(ready.presence_of_all_elements_located((By.CSS_SELECTOR, "article.tenant")))
    health = {card.find_element(By.CSS_SELECTOR, ".tenant-name").text: (
        card.get_attribute("data-verdict"),
        card.find_element(By.CSS_SELECTOR, ".verdict").get_attribute("textContent").strip(),
        card.find_element(By.CSS_SELECTOR, ".connection").text,
        card.find_element(By.CSS_SELECTOR, ".sync").text,
    ) for card in cards}
    assert health == {
        "Harbourside Architects Ltd": ("healthy", "Healthy", "Connected", "Sync Enabled"),
        "Meridian Structural Engineers Pty Ltd": ("failing", "Failing", "Connected", "Sync Enabled"),
    }
    # The failing one comes first, says why, and its bar links to the run in Airflow. Its
    # payments extract failed and its other streams loaded: the run is partly failed.
    first = cards[0]
    assert first.find_element(By.CSS_SELECTOR, ".tenant-name").text.startswith("Meridian")
    assert "Xero answered 503" in first.find_element(By.CSS_SELECTOR, "ul.reasons").text
    assert len(first.find_elements(By.CSS_SELECTOR, "svg.chart rect.run")) == 2
    assert first.find_element(By.CSS_SELECTOR, "svg.chart rect.run.partial").is_displayed()
    failed_bar = first.find_element(By.CSS_SELECTOR, "svg.chart a:last-of-type")
    assert failed_bar.get_dom_attribute("href").startswith("/dags/xero_sync/runs/scheduled__")
    assert browser.find_element(By.ID, "data-docs").get_attribute("href").endswith("/xero/data-docs/")
    docs = airflow_ui.session().get(f"{airflow_ui.base_url}/xero/data-docs/")  # what the sync's checks built
    assert docs.status_code == 200 and "<html" in docs.text.lower()
    _save(browser, tmp_path, "xero-page-health.png", whole_page=True)


def _framed(browser, url: str) -> tuple[str, str | None]:
    """Put ``url`` in an iframe of the current page: what the frame holds (its address) and which Xero page
    element rendered in it (``grant-state`` signed in, ``refused`` when not), None when nothing did."""
    from selenium.webdriver.common.by import By

    browser.set_script_timeout(WAIT_SECONDS)
    browser.execute_async_script(
        "const [url, done] = arguments; const frame = document.createElement('iframe');"
        "frame.id = 'framed'; frame.width = 900; frame.height = 500; frame.onload = () => done(true);"
        "frame.src = url; document.body.appendChild(frame);", url)
    browser.switch_to.frame(browser.find_element(By.ID, "framed"))
    try:
        shown = next((id_ for id_ in ("grant-state", "refused") if browser.find_elements(By.ID, id_)), None)
        return browser.execute_script("return location.href"), shown
    finally:
        browser.switch_to.default_content()


def test_another_site_cannot_frame_the_page(airflow_ui, browser, tmp_path):
    """Signed in, the page renders in a frame of its own origin only; in another site's frame it is blocked."""
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS)
    _log_in_from_the_page(browser, wait, airflow_ui)
    page = f"{airflow_ui.base_url}/xero/"
    assert _framed(browser, page) == (page, "grant-state")  # same origin: allowed, and signed in

    # The sandbox is another origin on the same host (same site: the login cookie would be sent).
    browser.get(f"{airflow_ui.sandbox.base_url}/not-the-xero-page")
    where, shown = _framed(browser, page)
    assert shown is None and where.startswith("chrome-error://"), (where, shown)  # the browser refused to show it
    _save(browser, tmp_path, "xero-page-framed-elsewhere.png")



def test_the_page_picks_a_stored_connection_and_names_a_variable_that_sets_one(airflow_ui, browser):
    """A connection stored as users store it is offered beside the ones set by variables; the page says
    those are invisible in Admin ▸ Connections. (Its Test button: tests/plugins/test_first_hour.py.)"""
    import json
    import subprocess

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tests.plugins.conftest import CLIENT_ID, CLIENT_SECRET, _airflow

    extra = {"api_base_url": f"{airflow_ui.sandbox.base_url}/api.xro/2.0",
             "identity_base_url": airflow_ui.sandbox.base_url, "sandbox": True}
    conn_id = "xero_listed"
    subprocess.run([_airflow(), "connections", "add", conn_id, "--conn-type", "xero", "--conn-login", CLIENT_ID,
                    "--conn-password", CLIENT_SECRET, "--conn-extra", json.dumps(extra)],
                   env=airflow_ui.env, check=True, capture_output=True, timeout=120)
    wait = WebDriverWait(browser, WAIT_SECONDS)
    try:
        _log_in_from_the_page(browser, wait, airflow_ui)
        assert "AIRFLOW_CONN_XERO_DEFAULT" in browser.find_element(By.ID, "connection-source").text
        Select(browser.find_element(By.ID, "conn-id-choice")).select_by_value(conn_id)
        browser.find_element(By.ID, "show-connection").click()
        wait.until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, "p.sub"), conn_id))
        assert not browser.find_elements(By.ID, "connection-source")  # stored, not shadowed
        assert browser.find_element(By.ID, "connect").is_displayed()
        assert browser.current_url.endswith(f"conn_id={conn_id}")
    finally:
        subprocess.run([_airflow(), "connections", "delete", conn_id], env=airflow_ui.env, capture_output=True,
                       timeout=120)

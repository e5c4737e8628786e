"""A person in headless Chromium: open the Xero page, log in to Airflow, Connect to Xero, sign in
at Xero, approve, and land back on the page reading Connected / Sync Enabled / Future Access Saved.

Uses Debian's ``chromium`` and ``chromium-driver`` (matching versions, no downloads); skipped
with the reason when either is missing. A screenshot of the final page is kept in the test's
temporary directory and under var/test-artifacts/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.plugins.conftest import PASSWORDS

pytestmark = [pytest.mark.airflow, pytest.mark.integration]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_SECONDS = 60


@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                     f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def _typed(field, value: str) -> bool:
    if field.get_attribute("value") != value:
        field.clear()
        field.send_keys(value)
    return field.get_attribute("value") == value


def test_a_user_clicks_through_to_connected(airflow_ui, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    airflow_ui.reset()
    wait = WebDriverWait(browser, WAIT_SECONDS)

    # The Xero page refuses an anonymous visitor and points to Airflow's login, which brings them back.
    browser.get(f"{airflow_ui.base_url}/xero/")
    wait.until(ready.element_to_be_clickable((By.ID, "login"))).click()
    username = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "input[name=username]")))
    password = browser.find_element(By.CSS_SELECTOR, "input[name=password]")
    # The login form is a React app: type until its state has the values, then sign in when it allows.
    wait.until(lambda _: _typed(username, "admin") and _typed(password, PASSWORDS["admin"]))
    wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "button[type=submit]"))).click()

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

    shot = tmp_path / "xero-page-connected.png"
    browser.save_screenshot(str(shot))
    artifacts = REPO / "var" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, artifacts / shot.name)
    assert airflow_ui.store().status() == "active"

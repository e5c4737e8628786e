"""Debian's headless Chromium under Selenium, for the tests that click through the real UI.

``offline=True`` lets the browser resolve nothing but 127.0.0.1 (where Airflow and the
sandbox listen), so a page that needs a CDN shows it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_SECONDS = 60
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


@contextmanager
def chromium(profile: Path, *, offline: bool = False, arguments: tuple[str, ...] = (),
             console_log: bool = False) -> Iterator:
    """A headless Chromium session; ``arguments`` add to its command line, ``console_log`` keeps the
    browser console for ``driver.get_log("browser")``."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                     f"--user-data-dir={profile}", *([OFFLINE] if offline else []), *arguments):
        options.add_argument(argument)
    if console_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def typed(field, value: str) -> bool:
    """Type into a React input until its state holds the value."""
    if field.get_attribute("value") != value:
        field.clear()
        field.send_keys(value)
    return field.get_attribute("value") == value


def connection_test_in_admin(browser, wait, base_url: str, conn_id: str) -> str:
    """Admin ▸ Connections: the row of ``conn_id``, its Test button, and what Airflow's toast then says."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready

    browser.get(f"{base_url}/connections")
    row = wait.until(ready.presence_of_element_located((By.XPATH, f"//tr[.//*[text()='{conn_id}']]")))
    row.find_element(By.CSS_SELECTOR, "button[aria-label='Test Connection']").click()
    toast = wait.until(ready.visibility_of_element_located((By.CSS_SELECTOR, "[data-scope=toast][data-part=root]")))
    wait.until(lambda _: toast.text.strip())
    said = toast.text
    for close in browser.find_elements(By.CSS_SELECTOR, "[data-scope=toast] [data-part=close-trigger]"):
        close.click()
    return said


def sign_in_at_the_sandbox(browser, wait) -> None:
    """Xero's side of Connect, as the sandbox serves it: sign in, then allow every organisation."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready

    wait.until(ready.presence_of_element_located((By.ID, "email"))).send_keys("demo@intoaec.test")
    browser.find_element(By.ID, "password").send_keys("sandbox")
    browser.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "button[value=allow]"))).click()

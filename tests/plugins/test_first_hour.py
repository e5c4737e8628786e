"""A data team's first hour, in headless Chromium, against the real Airflow components and the sandbox.

Fresh install (api-server with the Xero plugin, dag-processor, scheduler with LocalExecutor
workers, PostgreSQL metadata) with ``xero_default`` and ``intoaec_db`` stored by ``airflow
connections add``, as the README says. The browser resolves only 127.0.0.1, so anything the
pages needed from the internet would be missing. Then, clicking the real buttons:

home shows no failed DAG → Admin ▸ Connections lists ``xero_default`` and its Test button says
why it cannot connect yet → the Xero page's Connect (sandbox sign-in, approve) → Test says
"Connected to 2 organisations" → Unpause and Sync now on the page → the grid names each
organisation while the run goes on, and the failing one (a sandbox 503) while it waits to retry
→ the page names the failed stream → Data Docs open from the page with their styles → the
batch the checks quarantined (the sandbox served an invoice whose total is not its parts) is
reviewed and released from the page → Disconnect asks first, names the organisation, and the
row offers Reconnect.

Screenshots go to var/test-artifacts/ (and to docs/screenshots/ with INTOAEC_SAVE_SCREENSHOTS=1).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet

from tests.conftest import REPO
from tests.harness.airflow import airflow_stack
from tests.harness.browser import WAIT_SECONDS, chromium, connection_test_in_admin, sign_in_at_the_sandbox
from tests.harness.databases import fresh_postgres, migrated_engine
from tests.harness.xero import CLIENT_ID, CLIENT_SECRET

pytestmark = [pytest.mark.airflow, pytest.mark.integration, pytest.mark.scheduler]

MERIDIAN, HARBOURSIDE = "Meridian Structural Engineers Pty Ltd", "Harbourside Architects Ltd"
RUNS = "SELECT {what} FROM dag_run WHERE dag_id = '{dag}'"
TASKS = ("SELECT {what} FROM task_instance WHERE dag_id = 'xero_sync' AND run_id = '{run_id}' "
         "AND task_id = '{task}'")


class Shots:
    """Numbered screenshots of the walk, kept where people look for them."""

    def __init__(self, browser, tmp_path: Path):
        self.browser, self.tmp_path, self.count = browser, tmp_path, 0

    def __call__(self, name: str) -> None:
        self.count += 1
        shot = self.tmp_path / f"first-hour-{self.count:02d}-{name}.png"
        self.browser.save_screenshot(str(shot))
        for folder in [REPO / "var" / "test-artifacts"] + (
                [REPO / "docs" / "screenshots"] if os.environ.get("INTOAEC_SAVE_SCREENSHOTS") == "1" else []):
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, folder / shot.name)


def test_a_data_teams_first_hour_in_the_airflow_ui(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait
    from xero_sandbox.testing import running_sandbox

    fernet_key = Fernet.generate_key().decode()
    with (fresh_postgres("first_hour_airflow", "first_hour_intoaec") as (metadata_url, intoaec_url),
          migrated_engine(intoaec_url),
          running_sandbox(dataset="small", seed=1, extra_args=["--minute-limit", "100000"]) as sandbox):
        env = {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled", "XERO_SYNC_SCHEDULE": "none",
               "INTOAEC_RETRY_DELAY_SECONDS": "20"}
        with (airflow_stack(tmp_path, dags=["xero_sync.py", "xero_keepalive.py", "xero_backfill.py"],
                            metadata_url=metadata_url, fernet_key=fernet_key, parallelism=4, env=env,
                            plugins=True, triggerer=True) as stack,
              chromium(tmp_path / "chromium-profile", offline=True) as browser):
            extra = {"api_base_url": f"{sandbox.base_url}/api.xro/2.0", "identity_base_url": sandbox.base_url,
                     "sandbox": True, "calls_per_minute": 0, "max_attempts": 1}
            stack.airflow("connections", "add", "xero_default", "--conn-type", "xero", "--conn-login", CLIENT_ID,
                          "--conn-password", CLIENT_SECRET, "--conn-extra", json.dumps(extra))
            stack.airflow("connections", "add", "intoaec_db", "--conn-type", "generic",
                          "--conn-extra", json.dumps({"sqlalchemy_url": intoaec_url}))
            base = f"http://127.0.0.1:{stack.api_port}"
            wait = WebDriverWait(browser, WAIT_SECONDS)
            shot = Shots(browser, tmp_path)

            # A fresh install: the keep-alive has run by itself and skipped, saying what to do.
            keepalive = stack.wait_for("xero_keepalive's first run", RUNS.format(
                what="max(state) FILTER (WHERE state IN ('success', 'failed'))", dag="xero_keepalive"))
            assert keepalive == "success", stack.logs()
            browser.get(f"{base}/")
            failed = wait.until(ready.presence_of_element_located(
                (By.CSS_SELECTOR, "a[href*='last_dag_run_state=failed'] [data-testid=state-badge]")))
            wait.until(lambda _: "Success" in browser.find_element(By.TAG_NAME, "body").text)
            assert failed.text.strip() == "0"
            shot("home")

            # Admin ▸ Connections lists the stored connection; Test says why it cannot connect yet.
            said = connection_test_in_admin(browser, wait, base, "xero_default")
            assert "no grant is stored under the connection id 'xero_default'" in said, said
            shot("test-before-connect")

            # The Xero page: Connect, sign in at the sandbox, approve.
            browser.get(f"{base}/xero/")
            wait.until(ready.element_to_be_clickable((By.ID, "connect"))).click()
            sign_in_at_the_sandbox(browser, wait)
            wait.until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, ".banner.notice"), "Connected to Xero."))
            shot("connected")
            said = connection_test_in_admin(browser, wait, base, "xero_default")
            assert "Connected to 2 organisations" in said, said
            shot("test-after-connect")

            # Xero will fail Meridian's payments, and serve Harbourside one invoice whose total is wrong.
            browser.get(f"{base}/xero/")
            rows = wait.until(ready.presence_of_all_elements_located((By.CSS_SELECTOR, "#organisations tbody tr")))
            tenant_ids = {r.find_element(By.CSS_SELECTOR, ".name").text: r.get_attribute("data-tenant-id")
                          for r in rows}
            sandbox.faults(endpoint="Payments", status=503, tenant_id=tenant_ids[MERIDIAN])
            sandbox.faults(endpoint="Invoices", mangle={"Total": 1234567.89}, count=1,
                           tenant_id=tenant_ids[HARBOURSIDE])

            # Unpause and Sync now, on the page (no schedule here: the run is the one clicked).
            unpause = wait.until(ready.element_to_be_clickable((By.ID, "unpause")))
            unpause.click()
            wait.until(ready.staleness_of(unpause))  # the page comes back; its Sync now is a new element
            wait.until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, ".banner.notice"), "unpaused"))
            wait.until(ready.element_to_be_clickable((By.ID, "sync-now"))).click()
            run_id = stack.wait_for("the run Sync now started", RUNS.format(
                what="max(run_id) FILTER (WHERE run_type = 'manual')", dag="xero_sync"))
            shot("sync-now")

            # The grid names each organisation while the run goes on; Meridian's extract waits to retry.
            stack.wait_for("Meridian's extract to wait for its retry", TASKS.format(
                what="max(map_index) FILTER (WHERE state = 'up_for_retry')", run_id=run_id, task="tenant.extract"))
            browser.get(f"{base}/dags/xero_sync/runs/{quote(run_id, safe='')}/tasks/tenant.extract/mapped")
            wait.until(lambda d: MERIDIAN in d.find_element(By.TAG_NAME, "body").text
                       and HARBOURSIDE in d.find_element(By.TAG_NAME, "body").text)
            meridian_row = browser.find_element(By.XPATH, f"//tr[.//*[contains(text(), '{MERIDIAN}')]]")
            assert "retry" in meridian_row.text.lower(), (meridian_row.text, stack.rows(TASKS.format(
                what="map_index, try_number, state, start_date, end_date", run_id=run_id, task="tenant.extract")))
            shot("grid-names-and-retry")

            finished = stack.wait_for("the run to finish", RUNS.format(
                what="max(state) FILTER (WHERE state IN ('success', 'failed') AND run_type = 'manual')",
                dag="xero_sync"))
            assert finished == "failed", stack.logs()  # one organisation failed, so the run did

            # The page names the failed stream on Meridian's card.
            browser.get(f"{base}/xero/")
            card = wait.until(ready.presence_of_element_located(
                (By.XPATH, f"//article[contains(@class, 'tenant')][.//*[contains(text(), '{MERIDIAN}')]]")))
            reasons = card.find_element(By.CSS_SELECTOR, "ul.reasons").text
            assert "payments" in reasons and "503" in reasons, reasons
            shot("failed-stream-named")

            # Data Docs, from the page's link, styled with nothing but what this server sends.
            docs = browser.find_element(By.ID, "data-docs").get_attribute("href")
            browser.get(docs)
            wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
            styled = browser.execute_script(
                "const row = document.querySelector('.row, .navbar');"
                "return [typeof window.jQuery, row ? getComputedStyle(row).display : null];")
            assert styled == ["function", "flex"], styled
            shot("data-docs-offline")

            # Harbourside's invoices were quarantined (a total that is not its parts): review and release them.
            browser.get(f"{base}/xero/")
            batch = wait.until(ready.presence_of_element_located(
                (By.XPATH, f"//table[@id='quarantined-batches']//tr[.//td[text()='{HARBOURSIDE}']]"
                           "[.//td[text()='invoices']]")))
            assert "total_equals_parts" in batch.text, batch.text
            shot("quarantine-listed")
            batch.find_element(By.CSS_SELECTOR, "a.review").click()
            wait.until(ready.presence_of_element_located((By.ID, "release-form")))
            assert "total_equals_parts" in browser.find_element(By.ID, "failing-checks").text
            offered = browser.find_elements(By.CSS_SELECTOR, "input[name=accept]")
            assert "total_equals_parts" in {box.get_attribute("value") for box in offered}
            for box in offered:  # the one wrong total breaks every check that adds it up
                box.click()
            shot("quarantine-review")
            held = browser.find_element(By.ID, "item-status")
            browser.find_element(By.ID, "release-button").click()
            wait.until(ready.staleness_of(held))  # the answer is a new page, not the review page still showing
            status = wait.until(ready.presence_of_element_located((By.ID, "item-status")))
            assert status.get_attribute("data-status") == "released", status.text
            shot("quarantine-released")
            browser.find_element(By.ID, "back").click()
            wait.until(ready.presence_of_element_located((By.ID, "quarantine")))
            assert not browser.find_elements(
                By.XPATH, f"//table[@id='quarantined-batches']//tr[.//td[text()='{HARBOURSIDE}']]")

            # Disconnect asks first and names the organisation; its row then offers Reconnect.
            browser.get(f"{base}/xero/")
            row = browser.find_element(By.XPATH, f"//tr[.//td[@class='name'][text()='{MERIDIAN}']]")
            row.find_element(By.CSS_SELECTOR, "button.disconnect").click()
            question = wait.until(ready.visibility_of_element_located((By.ID, "confirm-disconnect")))
            assert MERIDIAN in question.text
            shot("disconnect-asks")
            browser.find_element(By.ID, "confirm-disconnect-button").click()
            notice = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".banner.notice")))
            assert MERIDIAN in notice.text
            row = browser.find_element(By.XPATH, f"//tr[.//td[@class='name'][text()='{MERIDIAN}']]")
            assert row.find_element(By.CSS_SELECTOR, "button.reconnect").is_displayed()
            shot("disconnected-reconnect")

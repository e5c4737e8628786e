"""The token-store rules Xero imposes, each against the sandbox, with workers in separate processes.

Xero rotates the refresh token on every refresh; the old one works for 30 more minutes, then
answers invalid_grant. These tests use the sandbox's clock instead of sleeping, and its
``/_sandbox/stats`` to count what Xero actually saw.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from intoaec_xero.client import XeroClient
from intoaec_xero.errors import XeroAuthError
from intoaec_xero.tenants import TenantStatus, organisations
from intoaec_xero.tokens import STATUS_ACTIVE, STATUS_RECONNECT

from tests.airflow.conftest import connect
from tests.conftest import REPO

pytestmark = pytest.mark.integration

WORKERS = 8


def _spawn(db_url: str, sandbox, *flags: str, ready_dir: Path | None = None, key: str = "xero_default"):
    command = [sys.executable, "-m", "tests.airflow.token_worker", "--db-url", db_url,
               "--base-url", sandbox.base_url, "--key", key, *flags]
    if ready_dir is not None:
        command += ["--ready-dir", str(ready_dir)]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(worker: subprocess.Popen) -> dict:
    out, err = worker.communicate(timeout=120)
    lines = out.strip().splitlines()
    assert lines, f"worker {worker.pid} printed nothing (rc {worker.returncode}): {err[-2000:]}"
    return json.loads(lines[-1])


def _all_at_once(db_url: str, sandbox, ready_dir: Path) -> list[dict]:
    """Start the workers, wait until every one is ready, then release them together."""
    workers = [_spawn(db_url, sandbox, ready_dir=ready_dir) for _ in range(WORKERS)]
    deadline = time.monotonic() + 90
    while len(list(ready_dir.glob("ready.*"))) < WORKERS:
        assert time.monotonic() < deadline, "workers did not start"
        assert all(w.poll() is None for w in workers), [w.communicate() for w in workers if w.poll() is not None]
        time.sleep(0.02)
    (ready_dir / "go").touch()
    return [_result(w) for w in workers]


def test_eight_workers_whose_token_expired_at_xero_refresh_exactly_once(sandbox, db_url, engine, tmp_path):
    """Each worker gets a 401 at the same moment; the row lock lets one refresh, the others re-read."""
    _, store = connect(sandbox, engine)
    before = store.load()
    sandbox.advance_clock(31 * 60)  # the stored access token is dead at Xero, still "fresh" locally
    sandbox.reset_stats()

    results = _all_at_once(db_url, sandbox, tmp_path)

    assert all(r["ok"] and r["organisations"] == 2 for r in results), results
    stats = sandbox.stats()
    assert stats["token_refreshes"] == 1
    assert stats["invalid_grant"] == 0
    assert len({r["token"] for r in results}) == 1  # every worker ended on the one new token set
    after = store.load()
    assert after.refresh_token != before.refresh_token
    assert after.previous_refresh_token == before.refresh_token


def test_eight_workers_whose_token_expired_locally_refresh_exactly_once(sandbox, migrated_postgres_url, pg_engine,
                                                                      tmp_path):
    _, store = connect(sandbox, pg_engine)
    tokens = store.load()
    tokens.expires_at = time.time() - 5
    store.save(tokens)
    sandbox.reset_stats()

    results = _all_at_once(migrated_postgres_url, sandbox, tmp_path)

    assert all(r["ok"] for r in results), results
    assert sandbox.stats()["token_refreshes"] == 1
    assert sandbox.stats()["invalid_grant"] == 0


def test_a_worker_killed_between_xeros_answer_and_the_commit_is_recovered_within_the_grace_window(
        sandbox, db_url, engine):
    _, store = connect(sandbox, engine)
    before = store.load()
    sandbox.reset_stats()

    dead = _spawn(db_url, sandbox, "--refresh", "--die-after-xero-answers")
    dead.communicate(timeout=120)
    assert dead.returncode == -signal.SIGKILL
    assert sandbox.stats()["token_refreshes"] == 1  # Xero rotated the refresh token ...
    assert store.load().refresh_token == before.refresh_token  # ... and its answer was lost with the worker

    sandbox.advance_clock(20 * 60)  # inside Xero's 30-minute grace for the previous refresh token
    survivor = _result(_spawn(db_url, sandbox, "--refresh"))

    assert survivor["ok"], survivor
    assert sandbox.stats()["invalid_grant"] == 0
    assert store.status() == STATUS_ACTIVE
    assert store.load().refresh_token != before.refresh_token


def test_past_the_grace_window_the_grant_reads_reconnect_needed_and_other_connections_carry_on(
        sandbox, db_url, engine):
    from xero_sandbox.testing import running_sandbox

    with running_sandbox(dataset="small", seed=2) as other_xero:
        other_settings, other_store = connect(other_xero, engine, connection_key="xero_other")
        _, store = connect(sandbox, engine)
        dead = _spawn(db_url, sandbox, "--refresh", "--die-after-xero-answers")
        dead.communicate(timeout=120)
        sandbox.advance_clock(31 * 60)

        failed = _result(_spawn(db_url, sandbox, "--refresh"))

        assert not failed["ok"] and "invalid_grant" in failed["error"]
        assert store.status() == STATUS_RECONNECT
        orgs = organisations(engine, "xero_default", store.info())
        assert orgs and {o.status for o in orgs} == {TenantStatus.RECONNECT_NEEDED}
        assert not any(o.sync_enabled or o.future_access_saved for o in orgs)
        # Once refused, the store does not ask Xero again with a dead token.
        refused_before = sandbox.stats()["invalid_grant"]
        with pytest.raises(XeroAuthError, match="needs reconnecting"):
            XeroClient(_settings_of(sandbox), store, sleep=lambda s: None).refresh_tokens(force=True)
        assert sandbox.stats()["invalid_grant"] == refused_before
        # The other connection's organisations keep syncing.
        assert len(XeroClient(other_settings, other_store, sleep=lambda s: None).connections()) == 2
        assert {o.status for o in organisations(engine, "xero_other", other_store.info())} == {TenantStatus.CONNECTED}


def test_one_401_mid_run_is_one_refresh_and_one_retry_not_a_dead_run(sandbox, engine):
    settings, store = connect(sandbox, engine)
    client = XeroClient(settings, store, sleep=lambda s: None)
    assert len(client.connections()) == 2
    sandbox.advance_clock(31 * 60)
    sandbox.reset_stats()

    assert len(client.connections()) == 2

    stats = sandbox.stats()
    assert client.stats.token_refreshes == 1
    assert stats["token_refreshes"] == 1
    assert stats["requests"]["GET /connections"] == {"401": 1, "200": 1}


def _settings_of(sandbox):
    from tests.airflow.conftest import sandbox_settings

    return sandbox_settings(sandbox)
